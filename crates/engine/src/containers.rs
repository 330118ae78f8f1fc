//! Container records in the engine's SQLite database (the same file as the
//! image metadata, its own table). Names are unique (the database enforces
//! it, so concurrent `create`s cannot both take one); a unique prefix of an
//! ID resolves.

use crate::error::{ConflictKind, EngineError, Object, Result};
use berth_db::SharedConnection;
use rusqlite::config::DbConfig;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::{Deserialize, Serialize};

/// A container ID: 64 lowercase hex digits, as Docker's.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ContainerId(String);

impl ContainerId {
    pub fn random() -> Result<ContainerId> {
        let mut b = [0u8; 32];
        getrandom::fill(&mut b).map_err(|e| EngineError::Other(format!("random id: {e}")))?;
        Ok(ContainerId(b.iter().map(|x| format!("{x:02x}")).collect()))
    }

    pub fn parse(s: &str) -> Option<ContainerId> {
        (s.len() == 64
            && s.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
        .then(|| ContainerId(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn short(&self) -> &str {
        &self.0[..12]
    }
}

impl std::fmt::Display for ContainerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Created,
    Running,
    Exited,
}

impl State {
    fn as_str(self) -> &'static str {
        match self {
            State::Created => "created",
            State::Running => "running",
            State::Exited => "exited",
        }
    }
    fn parse(s: &str) -> State {
        match s {
            "running" => State::Running,
            "exited" => State::Exited,
            _ => State::Created,
        }
    }
}

/// What a container runs: fixed at create time.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ContainerConfig {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
    pub user: String,
    pub hostname: String,
    pub tty: bool,
    pub read_only: bool,
    pub entrypoint: Option<String>,
    pub cmd: Vec<String>,
    /// `--rm`: remove the container when it exits.
    #[serde(default)]
    pub auto_remove: bool,
    /// `-i`: keep stdin open (attach can write to it).
    #[serde(default)]
    pub interactive: bool,
    /// `--restart`: no, always, unless-stopped, on-failure[:N].
    #[serde(default)]
    pub restart: Option<String>,
    /// `--stop-signal`, or the image's StopSignal.
    #[serde(default)]
    pub stop_signal: Option<String>,
    /// `--stop-timeout` in seconds.
    #[serde(default)]
    pub stop_timeout: Option<u64>,
    /// `--log-driver`: json-file (default) or none.
    #[serde(default)]
    pub log_driver: Option<String>,
    /// `--log-opt max-size` in bytes.
    #[serde(default)]
    pub log_max_size: Option<u64>,
    /// `--log-opt max-file`.
    #[serde(default)]
    pub log_max_files: Option<u32>,
    /// Resources, security, namespaces, mounts (volumes resolved to their
    /// directories), devices, runtime, init: Docker's HostConfig.
    #[serde(default)]
    pub host: crate::options::HostConfig,
    /// Docker's Config.Labels: the image's labels under `-l`/`--label-file`.
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    /// The `--health-*` flags merged over the image's Healthcheck; test
    /// ["NONE"] disables it (`--no-healthcheck`); None: no healthcheck.
    #[serde(default)]
    pub healthcheck: Option<crate::options::Healthcheck>,
    /// The image's ExposedPorts ("80/tcp").
    #[serde(default)]
    pub exposed_ports: Vec<String>,
    /// Docker's Config.Volumes: the image's VOLUMEs and the anonymous
    /// volumes of `-v /path`.
    #[serde(default)]
    pub volumes: Vec<String>,
}

/// A berth process in the middle of changing a container (the `intent`
/// column): while it lives nobody else finishes its work; once it is gone
/// (SIGKILL, a crash) the next command that reads the record does
/// (`Engine::reconcile`). The owner is a lease name (`berth_lease`), so a
/// reused pid is another process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Intent {
    /// `create` is making its writable layer: a record without one whose
    /// creator is gone is removed.
    Create(Owner),
    /// `rm` is removing it: a removal whose remover is gone is finished.
    Remove(Owner),
    /// A build's RUN step: removed once its build is gone.
    Build(Owner),
}

pub use berth_lease::Owner;

/// The prefix of the lease names in the `intent` column.
const LEASE: &str = "berth";

impl Intent {
    fn to_text(&self) -> String {
        let (kind, o) = match self {
            Intent::Create(o) => ("create", o),
            Intent::Remove(o) => ("remove", o),
            Intent::Build(o) => ("build", o),
        };
        format!("{kind} {}", o.name(LEASE))
    }

    fn parse(s: &str) -> Option<Intent> {
        let (kind, name) = s.split_once(' ')?;
        let o = berth_lease::owner_of(name, LEASE)?;
        match kind {
            "create" => Some(Intent::Create(o)),
            "remove" => Some(Intent::Remove(o)),
            "build" => Some(Intent::Build(o)),
            _ => None,
        }
    }

    pub fn owner(&self) -> &Owner {
        match self {
            Intent::Create(o) | Intent::Remove(o) | Intent::Build(o) => o,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Container {
    pub id: ContainerId,
    pub name: String,
    pub image_id: String,
    pub image_ref: String,
    pub created: String,
    pub config: ContainerConfig,
    pub state: State,
    pub exit_code: Option<i32>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// Why its last start failed (Docker's `State.Error`), until a start works.
    pub error: Option<String>,
    /// Who is creating or removing it, if anyone (see [`Intent`]).
    pub intent: Option<Intent>,
}

pub struct ContainerDb {
    conn: SharedConnection,
    /// Events recorded while batching (see [`ContainerDb::batch_events`]),
    /// written with this process's next write.
    pending: std::sync::Mutex<PendingEvents>,
}

#[derive(Default)]
struct PendingEvents {
    batching: bool,
    events: Vec<PendingEvent>,
}

struct PendingEvent {
    time_nano: i64,
    typ: String,
    action: String,
    actor: String,
    attributes: String,
}

/// While it lives, the events of [`ContainerDb::record_event`] wait for the
/// next write of the container tables and are committed with it; what is
/// left is written when it is dropped.
pub struct EventBatch<'a> {
    db: &'a ContainerDb,
}

impl Drop for EventBatch<'_> {
    fn drop(&mut self) {
        let _ = self.db.flush_events();
        self.db.pending_events().batching = false;
    }
}

/// The container tables' component in `schema_version`. Version 1 is
/// the tables as they were before versions were recorded (all `IF NOT
/// EXISTS`, so an older database is adopted as it is).
pub const SCHEMA: berth_db::Schema = berth_db::Schema {
    component: "containers",
    steps: &[TABLES, INTENT, ERROR],
    unversioned: None,
};

const TABLES: &str = "
CREATE TABLE IF NOT EXISTS containers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    image_id TEXT NOT NULL,
    image_ref TEXT NOT NULL,
    created TEXT NOT NULL,
    config TEXT NOT NULL,
    state TEXT NOT NULL,
    exit_code INTEGER,
    started_at TEXT,
    finished_at TEXT
);
CREATE INDEX IF NOT EXISTS containers_image ON containers(image_id);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    time_nano INTEGER NOT NULL,
    type TEXT NOT NULL,
    action TEXT NOT NULL,
    actor TEXT NOT NULL,
    attributes TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_time ON events(time_nano);
";

/// Version 2: who is creating or removing a container (see [`Intent`]).
const INTENT: &str = "ALTER TABLE containers ADD COLUMN intent TEXT;";

/// Version 3: why the last start failed (`State.Error`).
const ERROR: &str = "ALTER TABLE containers ADD COLUMN error TEXT;";

fn db_err(what: &str, e: rusqlite::Error) -> EngineError {
    EngineError::Other(format!("container database: {what}: {e}"))
}

impl ContainerDb {
    /// A connection of its own to `root/berth.db` (tests).
    pub fn open(root: &std::path::Path) -> Result<ContainerDb> {
        let conn = berth_db::open_shared(root)
            .map_err(|e| EngineError::Other(format!("container database: {e}")))?;
        SCHEMA
            .migrate(&mut berth_db::lock(&conn))
            .map_err(|e| EngineError::Other(format!("container database: {e}")))?;
        ContainerDb::on(conn)
    }

    /// The container tables on the process's shared connection to
    /// `berth.db` (see `berth_db::SharedConnection`), whose [`SCHEMA`] is
    /// up to date (see `berth_db::migrate_set`).
    pub fn on(shared: SharedConnection) -> Result<ContainerDb> {
        let db = ContainerDb {
            conn: shared,
            pending: Default::default(),
        };
        {
            let conn = db.conn();
            // Container records change several times per `run` (create,
            // running, exited, events, removal): with WAL, NORMAL syncs the
            // log only at checkpoints instead of at every commit. A crash of
            // berth or of the kernel's page cache owner loses nothing; a
            // power loss may lose the last few commits (image records are
            // still committed FULL: see `ImageDb`).
            conn.pragma_update(None, "synchronous", "NORMAL")
                .map_err(|e| db_err("synchronous", e))?;
            // This connection is normally the last one of a berth process
            // to close: without this it would checkpoint the log into the
            // database (two fsyncs), delete the -wal and -shm files, and the
            // next berth would create and size them again. The log is
            // checkpointed as it grows instead (see `Engine::open`).
            conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
                .map_err(|e| db_err("no checkpoint on close", e))?;
        }
        Ok(db)
    }

    /// The shared connection, locked.
    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        berth_db::lock(&self.conn)
    }

    fn pending_events(&self) -> std::sync::MutexGuard<'_, PendingEvents> {
        match self.pending.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Batches this process's events until the batch is dropped: a
    /// foreground `run --rm` records seven (create, attach, connect, start,
    /// die, disconnect, destroy), each its own commit of three pages to
    /// the log (the row, its index, AUTOINCREMENT's sequence); batched,
    /// they ride on the state's commits. The caller flushes before anything
    /// that waits (see [`ContainerDb::flush_events`]); a crash loses the
    /// unwritten ones, as a crash of Docker's daemon loses its events.
    pub fn batch_events(&self) -> EventBatch<'_> {
        self.pending_events().batching = true;
        EventBatch { db: self }
    }

    /// Writes the batched events now, in one transaction.
    pub fn flush_events(&self) -> Result<()> {
        self.write("record events", |_| Ok(()))
    }

    /// Runs `f` on the connection, in one transaction with the batched
    /// events when there are any (they stay batched if it fails).
    fn write<T>(
        &self,
        what: &str,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let mut pending = self.pending_events();
        let mut conn = self.conn();
        if pending.events.is_empty() {
            return f(&conn).map_err(|e| db_err(what, e));
        }
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| db_err(what, e))?;
        let res = Self::insert_events(&tx, &pending.events).and_then(|()| f(&tx));
        let res = match res {
            Ok(v) => tx.commit().map(|()| v),
            Err(e) => Err(e),
        };
        if res.is_ok() {
            pending.events.clear();
        }
        res.map_err(|e| db_err(what, e))
    }

    fn insert_events(conn: &Connection, events: &[PendingEvent]) -> rusqlite::Result<()> {
        let mut stmt = conn.prepare_cached(
            "INSERT INTO events (time_nano, type, action, actor, attributes) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for e in events {
            stmt.execute(params![e.time_nano, e.typ, e.action, e.actor, e.attributes])?;
        }
        // Events older than a week go on the way, so the table does not
        // grow without bound.
        let week: i64 = 7 * 24 * 3600 * 1_000_000_000;
        if let Some(last) = events.last() {
            conn.execute(
                "DELETE FROM events WHERE time_nano < ?1",
                params![last.time_nano - week],
            )?;
        }
        Ok(())
    }

    pub fn insert(&self, c: &Container) -> Result<()> {
        let config =
            serde_json::to_string(&c.config).map_err(|e| EngineError::Other(e.to_string()))?;
        // The lock goes before a conflict is looked into (name_in_use takes it again).
        let mut conflict = false;
        let res = self.write("insert", |conn| {
            let res = conn.execute(
                "INSERT INTO containers (id, name, image_id, image_ref, created, config, state, intent) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![c.id.as_str(), c.name, c.image_id, c.image_ref, c.created, config, c.state.as_str(), c.intent.as_ref().map(Intent::to_text)],
            );
            conflict = matches!(&res, Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation);
            res
        });
        match res {
            Ok(_) => Ok(()),
            Err(_) if conflict => Err(self.name_in_use(&c.name)),
            Err(e) => Err(e),
        }
    }

    fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Container> {
        let config: String = r.get(5)?;
        let state: String = r.get(6)?;
        let id: String = r.get(0)?;
        Ok(Container {
            id: ContainerId(id),
            name: r.get(1)?,
            image_id: r.get(2)?,
            image_ref: r.get(3)?,
            created: r.get(4)?,
            config: serde_json::from_str(&config).unwrap_or_default(),
            state: State::parse(&state),
            exit_code: r.get(7)?,
            started_at: r.get(8)?,
            finished_at: r.get(9)?,
            intent: r
                .get::<_, Option<String>>(10)?
                .as_deref()
                .and_then(Intent::parse),
            error: r.get(11)?,
        })
    }

    const COLS: &'static str =
        "id, name, image_id, image_ref, created, config, state, exit_code, started_at, finished_at, intent, error";

    /// By full ID, unique ID prefix, or name (with or without a leading /).
    pub fn resolve(&self, key: &str) -> Result<Container> {
        let name = key.trim_start_matches('/');
        let q = format!(
            "SELECT {} FROM containers WHERE name = ?1 OR id = ?1",
            Self::COLS
        );
        let conn = self.conn();
        if let Some(c) = conn
            .query_row(&q, params![name], Self::row)
            .optional()
            .map_err(|e| db_err("lookup", e))?
        {
            return Ok(c);
        }
        let not_found = || EngineError::no_such(Object::Container, key);
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(not_found());
        }
        let q = format!(
            "SELECT {} FROM containers WHERE id LIKE ?1 || '%' LIMIT 2",
            Self::COLS
        );
        let mut stmt = conn.prepare(&q).map_err(|e| db_err("lookup", e))?;
        let found: Vec<Container> = stmt
            .query_map(params![key.to_ascii_lowercase()], Self::row)
            .map_err(|e| db_err("lookup", e))?
            .collect::<rusqlite::Result<_>>()
            .map_err(|e| db_err("lookup", e))?;
        match found.len() {
            1 => Ok(found.into_iter().next().ok_or_else(not_found)?),
            0 => Err(not_found()),
            _ => Err(EngineError::Invalid(format!(
                "multiple IDs found with provided prefix: {key}"
            ))),
        }
    }

    pub fn list(&self) -> Result<Vec<Container>> {
        let q = format!(
            "SELECT {} FROM containers ORDER BY created DESC",
            Self::COLS
        );
        let conn = self.conn();
        let mut stmt = conn.prepare(&q).map_err(|e| db_err("list", e))?;
        let rows = stmt
            .query_map([], Self::row)
            .map_err(|e| db_err("list", e))?
            .collect::<rusqlite::Result<_>>()
            .map_err(|e| db_err("list", e));
        rows
    }

    pub fn set_state(
        &self,
        id: &ContainerId,
        state: State,
        exit_code: Option<i32>,
        at: &str,
    ) -> Result<()> {
        let sql = match state {
            State::Running => {
                // A creator's intent ends here (its layer is there).
                "UPDATE containers SET state = ?2, started_at = ?4, exit_code = ?3, error = NULL, intent = CASE WHEN intent LIKE 'create %' THEN NULL ELSE intent END WHERE id = ?1"
            }
            _ => "UPDATE containers SET state = ?2, finished_at = ?4, exit_code = ?3 WHERE id = ?1",
        };
        self.write("update", |conn| {
            conn.execute(sql, params![id.as_str(), state.as_str(), exit_code, at])
        })
        .map(drop)
    }

    /// A start that failed (Docker's `containerStart` on error): the state
    /// and start time are what they were before it (`created` for a new
    /// container), the exit code the failure's, `error` its text.
    pub fn set_start_failed(
        &self,
        id: &ContainerId,
        before: &Container,
        exit_code: i32,
        error: &str,
    ) -> Result<()> {
        self.write("update", |conn| {
            conn.execute(
                "UPDATE containers SET state = ?2, started_at = ?3, exit_code = ?4, error = ?5, intent = CASE WHEN intent LIKE 'create %' THEN NULL ELSE intent END WHERE id = ?1",
                params![
                    id.as_str(),
                    before.state.as_str(),
                    before.started_at,
                    exit_code,
                    error
                ],
            )
        })
        .map(drop)
    }

    /// Marks the container as being removed by `me`: false when another
    /// live process is removing it already. A removal whose remover is gone
    /// is taken over (compare and swap on the column).
    pub fn claim_removal(&self, id: &ContainerId, me: &Owner) -> Result<bool> {
        let mine = Intent::Remove(*me).to_text();
        let conn = self.conn();
        let old: Option<Option<String>> = conn
            .query_row(
                "SELECT intent FROM containers WHERE id = ?1",
                params![id.as_str()],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| db_err("lookup", e))?;
        let Some(old) = old else {
            return Err(EngineError::no_such(Object::Container, id.as_str()));
        };
        if let Some(Intent::Remove(o)) = old.as_deref().and_then(Intent::parse) {
            if o != *me && o.is_alive() {
                return Ok(false);
            }
        }
        let n = conn
            .execute(
                "UPDATE containers SET intent = ?2 WHERE id = ?1 AND intent IS ?3",
                params![id.as_str(), mine, old],
            )
            .map_err(|e| db_err("update", e))?;
        Ok(n == 1)
    }

    /// Forgets a finished creator's intent (its layer is there).
    pub fn clear_intent(&self, id: &ContainerId) -> Result<()> {
        self.write("update", |conn| {
            conn.execute(
                "UPDATE containers SET intent = NULL WHERE id = ?1",
                params![id.as_str()],
            )
        })
        .map(drop)
    }

    pub fn rename(&self, id: &ContainerId, name: &str) -> Result<()> {
        let res = self.conn().execute(
            "UPDATE containers SET name = ?2 WHERE id = ?1",
            params![id.as_str(), name],
        );
        match res {
            Ok(_) => Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Err(EngineError::conflict(
                    ConflictKind::NameInUse,
                    format!("Error when allocating new name: {}", self.name_in_use(name)),
                ))
            }
            Err(e) => Err(db_err("rename", e)),
        }
    }

    /// Docker's conflict error, naming the container that holds `name`.
    fn name_in_use(&self, name: &str) -> EngineError {
        let holder: Option<String> = self
            .conn()
            .query_row(
                "SELECT id FROM containers WHERE name = ?1",
                params![name],
                |r| r.get(0),
            )
            .ok();
        let by = holder
            .map(|id| format!(" by container \"{id}\""))
            .unwrap_or_default();
        EngineError::conflict(ConflictKind::NameInUse, format!(
            "Conflict. The container name \"/{name}\" is already in use{by}. You have to remove (or rename) that container to be able to reuse that name."
        ))
    }

    pub fn remove(&self, id: &ContainerId) -> Result<()> {
        self.write("remove", |conn| {
            conn.execute("DELETE FROM containers WHERE id = ?1", params![id.as_str()])
        })
        .map(drop)
    }
}

/// One entry of `berth events`.
#[derive(Clone, Debug)]
pub struct Event {
    pub seq: i64,
    pub time_nano: i64,
    pub typ: String,
    pub action: String,
    pub actor: String,
    /// name, image, exitCode…
    pub attributes: std::collections::BTreeMap<String, String>,
}

impl ContainerDb {
    /// Appends an event (batched while a [`ContainerDb::batch_events`]
    /// lives).
    pub fn record_event(
        &self,
        typ: &str,
        action: &str,
        actor: &str,
        attributes: &std::collections::BTreeMap<String, String>,
    ) -> Result<()> {
        let time_nano = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as i64)
            .unwrap_or(0);
        let event = PendingEvent {
            time_nano,
            typ: typ.to_owned(),
            action: action.to_owned(),
            actor: actor.to_owned(),
            attributes: serde_json::to_string(attributes).unwrap_or_else(|_| "{}".into()),
        };
        {
            let mut pending = self.pending_events();
            if pending.batching {
                pending.events.push(event);
                return Ok(());
            }
        }
        Self::insert_events(&self.conn(), std::slice::from_ref(&event))
            .map_err(|e| db_err("record event", e))
    }

    /// The exit code of container `id`'s last `die` event (the status of
    /// a container removed since: `wait` on an --rm container).
    pub fn last_exit_code(&self, id: &ContainerId) -> Result<Option<i32>> {
        let attrs: Option<String> = self
            .conn()
            .query_row(
                "SELECT attributes FROM events WHERE actor = ?1 AND type = 'container' AND action = 'die' ORDER BY seq DESC LIMIT 1",
                params![id.as_str()],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| db_err("events", e))?;
        Ok(attrs.and_then(|a| {
            serde_json::from_str::<std::collections::BTreeMap<String, String>>(&a)
                .ok()?
                .get("exitCode")?
                .parse()
                .ok()
        }))
    }

    /// Events after `after_seq`, from `since` (ns) to `until` (ns).
    pub fn events(&self, after_seq: i64, since: i64, until: i64) -> Result<Vec<Event>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT seq, time_nano, type, action, actor, attributes FROM events \
                 WHERE seq > ?1 AND time_nano >= ?2 AND time_nano <= ?3 ORDER BY seq",
            )
            .map_err(|e| db_err("events", e))?;
        let rows = stmt
            .query_map(params![after_seq, since, until], |r| {
                let attrs: String = r.get(5)?;
                Ok(Event {
                    seq: r.get(0)?,
                    time_nano: r.get(1)?,
                    typ: r.get(2)?,
                    action: r.get(3)?,
                    actor: r.get(4)?,
                    attributes: serde_json::from_str(&attrs).unwrap_or_default(),
                })
            })
            .map_err(|e| db_err("events", e))?
            .collect::<rusqlite::Result<_>>()
            .map_err(|e| db_err("events", e));
        rows
    }
}

/// A Docker-style random name: adjective_surname.
pub fn random_name() -> String {
    const ADJ: [&str; 24] = [
        "admiring",
        "brave",
        "clever",
        "dazzling",
        "eager",
        "festive",
        "gallant",
        "happy",
        "inspiring",
        "jolly",
        "keen",
        "loving",
        "modest",
        "nifty",
        "optimistic",
        "peaceful",
        "quirky",
        "relaxed",
        "serene",
        "tender",
        "upbeat",
        "vibrant",
        "wizardly",
        "zealous",
    ];
    const NAMES: [&str; 24] = [
        "agnesi",
        "babbage",
        "curie",
        "darwin",
        "euler",
        "feynman",
        "galileo",
        "hopper",
        "ishizaka",
        "jennings",
        "knuth",
        "lovelace",
        "meitner",
        "noether",
        "ohm",
        "pasteur",
        "ritchie",
        "shannon",
        "turing",
        "varahamihira",
        "wozniak",
        "yalow",
        "zhukovsky",
        "lamarr",
    ];
    let mut b = [0u8; 4];
    let _ = getrandom::fill(&mut b);
    format!(
        "{}_{}",
        ADJ[b[0] as usize % ADJ.len()],
        NAMES[b[1] as usize % NAMES.len()]
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn c(name: &str) -> Container {
        Container {
            id: ContainerId::random().unwrap(),
            name: name.into(),
            image_id: "sha256:x".into(),
            image_ref: "busybox".into(),
            created: "2026-01-01T00:00:00Z".into(),
            config: ContainerConfig::default(),
            state: State::Created,
            exit_code: None,
            started_at: None,
            finished_at: None,
            error: None,
            intent: None,
        }
    }

    #[test]
    fn names_unique_and_prefixes_resolve() {
        let d = tempfile::tempdir().unwrap();
        let db = ContainerDb::open(d.path()).unwrap();
        let a = c("alpha");
        db.insert(&a).unwrap();
        let e = db.insert(&c("alpha")).unwrap_err();
        assert!(
            matches!(
                e,
                EngineError::Conflict {
                    kind: ConflictKind::NameInUse,
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(e.http_status(), 409);
        let e = e.to_string();
        assert!(e.contains("is already in use"), "{e}");
        assert_eq!(db.resolve("alpha").unwrap().id, a.id);
        assert_eq!(db.resolve("/alpha").unwrap().id, a.id);
        assert_eq!(db.resolve(&a.id.as_str()[..6]).unwrap().id, a.id);
        let e = db.resolve("nope").unwrap_err();
        assert!(e.is_not_found(Object::Container), "{e:?}");
        assert_eq!(e.to_string(), "No such container: nope");
        db.set_state(&a.id, State::Exited, Some(3), "now").unwrap();
        assert_eq!(db.resolve("alpha").unwrap().exit_code, Some(3));
        db.remove(&a.id).unwrap();
        assert!(db.resolve("alpha").is_err());
    }

    /// A store made by an older berth (image tables at version 1, container
    /// tables at 2, no stamp) is migrated by `Engine::open`, which then
    /// stamps it so that the next open checks with one read; its records
    /// are kept.
    #[test]
    fn engine_open_migrates_an_older_store_then_stamps_it() {
        let d = tempfile::tempdir().unwrap();
        {
            let mut conn = berth_db::open_connection(d.path()).unwrap();
            berth_db::migrate(&mut conn, "image", &berth_image::db::SCHEMA.steps[..1]).unwrap();
            berth_db::migrate(&mut conn, "containers", &SCHEMA.steps[..2]).unwrap();
            conn.execute(
                "INSERT INTO containers (id, name, image_id, image_ref, created, config, state) VALUES ('x', 'old', 'i', 'r', 'now', '{}', 'exited')",
                [],
            )
            .unwrap();
        }
        let opts = crate::EngineOptions {
            root: Some(d.path().to_owned()),
            run: Some(d.path().join("run")),
            storage_driver: Some("vfs".into()),
        };
        for _ in 0..2 {
            let engine = crate::Engine::open(&opts).unwrap();
            let conn = engine.images.connection();
            let conn = berth_db::lock(&conn);
            assert!(berth_db::has_column(&conn, "containers", "error").unwrap());
            let refs: i64 = conn
                .query_row("SELECT count(*) FROM digest_refs", [], |r| r.get(0))
                .unwrap();
            assert_eq!(refs, 0);
            let stamp: i32 = conn
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .unwrap();
            assert_eq!(stamp, berth_db::stamp(crate::STORE_SCHEMAS));
            drop(conn);
            assert_eq!(engine.containers.resolve("old").unwrap().name, "old");
        }
    }
}
