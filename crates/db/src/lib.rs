//! `<root>/berth.db`: one SQLite file for images, containers and networks.
//!
//! It is opened in WAL mode with a busy timeout, so concurrent berth processes wait for
//! each other instead of failing; a process opens it once and its components share that
//! connection ([`SharedConnection`]). Each component (`image`, `engine`, `network`, …) owns
//! its tables and brings them up to date through [`migrate`], recorded in
//! `schema_version(component, version)`.

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// The file's name under the root.
pub const DB_FILE: &str = "berth.db";

/// How long a statement waits for another process's write lock.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The process's connection, shared by its components (images, containers, networks):
/// SQLite parses the whole schema once per connection, and each extra connection cost
/// every berth command ~0.3 ms. Whoever holds the lock must not call into another
/// component that takes it (the mutex is not reentrant).
pub type SharedConnection = Arc<Mutex<Connection>>;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("{op} {path}: {source}")]
    Io {
        path: String,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("database {path}: {op}: {source}")]
    Sqlite {
        path: String,
        op: String,
        #[source]
        source: rusqlite::Error,
    },
}

pub type Result<T> = std::result::Result<T, DbError>;

fn sqlite_err(path: &str, op: impl Into<String>) -> impl FnOnce(rusqlite::Error) -> DbError {
    let path = path.to_owned();
    let op = op.into();
    move |source| DbError::Sqlite { path, op, source }
}

/// Opens `<root>/berth.db` with berth's settings (WAL, busy timeout, foreign keys,
/// synchronous FULL), creating the root if needed. Of these only WAL costs a
/// statement: the busy timeout and foreign keys are set through SQLite's C
/// interface, and FULL is the bundled SQLite's default (a test holds it to
/// that).
pub fn open_connection(root: &Path) -> Result<Connection> {
    std::fs::create_dir_all(root).map_err(|source| DbError::Io {
        path: root.display().to_string(),
        op: "create root",
        source,
    })?;
    let path = root.join(DB_FILE);
    let p = path.display().to_string();
    let conn = open_private(&path).map_err(sqlite_err(&p, "open"))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(sqlite_err(&p, "set busy timeout"))?;
    // Switching to WAL needs a moment of exclusive access: retry while another process
    // opening the same file at the same time holds it.
    let mut tries = 0;
    loop {
        match conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get::<_, String>(0)) {
            Ok(_) => break,
            Err(e) if tries < 100 && is_busy(&e) => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => return Err(sqlite_err(&p, "enable WAL")(e)),
        }
    }
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_FKEY,
        true,
    )
    .map_err(sqlite_err(&p, "enable foreign keys"))?;
    Ok(conn)
}

/// Opens the database file, creating it for root alone (0600) when missing: it holds
/// containers' environment, and SQLite gives its `-wal` and `-shm` files the mode of
/// the database. An existing file costs no more than a plain open.
fn open_private(path: &Path) -> rusqlite::Result<Connection> {
    use rusqlite::OpenFlags;
    use std::os::unix::fs::OpenOptionsExt;
    let flags = OpenFlags::default();
    match Connection::open_with_flags(path, flags - OpenFlags::SQLITE_OPEN_CREATE) {
        Ok(c) => Ok(c),
        Err(e) => {
            // Missing (or any other trouble, which the next open reports).
            let created = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path);
            match created {
                Ok(_) => Connection::open_with_flags(path, flags),
                Err(c) if c.kind() == std::io::ErrorKind::AlreadyExists => {
                    Connection::open_with_flags(path, flags)
                }
                Err(_) => Err(e),
            }
        }
    }
}

/// [`open_connection`], ready to share.
pub fn open_shared(root: &Path) -> Result<SharedConnection> {
    open_connection(root).map(|c| Arc::new(Mutex::new(c)))
}

/// The shared connection, locked. A poisoned lock is still usable: no transaction spans
/// a panic (SQLite rolls back what was open when its `Transaction` is dropped).
pub fn lock(shared: &SharedConnection) -> MutexGuard<'_, Connection> {
    match shared.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// Pages in the write-ahead log after this connection's last commit (see
/// [`defer_checkpoints`]).
#[derive(Clone, Debug, Default)]
pub struct WalPages(Arc<AtomicI32>);

impl WalPages {
    /// The count after the last commit (0 before any).
    pub fn get(&self) -> i32 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Turns off SQLite's automatic checkpoint on `conn` and counts the log's pages
/// instead, for a caller that checkpoints elsewhere ([`checkpoint`], in a detached
/// process): an automatic checkpoint runs inside the commit that crosses its
/// threshold and syncs the log and the database there (two or three fsyncs, 5–15 ms
/// each on a busy ext4), in the middle of whatever command committed.
pub fn defer_checkpoints(conn: &mut Connection) -> Result<WalPages> {
    let pages = WalPages::default();
    let seen = pages.0.clone();
    let path = conn.path().unwrap_or("").to_owned();
    conn.wal_hook(Some(
        move |_: &mut rusqlite::hooks::Wal, n: std::ffi::c_int| {
            seen.store(n, Ordering::Relaxed);
            Ok(())
        },
    ))
    .map_err(sqlite_err(&path, "set the log hook"))?;
    Ok(pages)
}

/// Checkpoints `<root>/berth.db`'s write-ahead log into the database and
/// truncates the log, syncing both as berth's settings say. It waits for
/// nobody: with another process reading or writing, it copies what it can
/// (as PASSIVE) and leaves the rest for the next one. An empty log is what
/// makes the next berth's open cheap: the first connection of a process
/// rebuilds the log's index by reading every frame of it.
pub fn checkpoint(root: &Path) -> Result<()> {
    let conn = open_connection(root)?;
    let p = root.join(DB_FILE).display().to_string();
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
        true,
    )
    .map_err(sqlite_err(&p, "no checkpoint on close"))?;
    // TRUNCATE waits for readers and blocks new writers while it waits,
    // through the busy handler: none here.
    conn.busy_timeout(Duration::ZERO)
        .map_err(sqlite_err(&p, "set busy timeout"))?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .map_err(sqlite_err(&p, "checkpoint"))
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.code == rusqlite::ErrorCode::DatabaseBusy || f.code == rusqlite::ErrorCode::DatabaseLocked)
}

/// One component's tables in `berth.db`: its name in `schema_version` and
/// the steps that bring them from each version to the next (see [`migrate`]).
pub struct Schema {
    pub component: &'static str,
    pub steps: &'static [&'static str],
    /// For a component whose tables existed before it recorded versions:
    /// which version a database without its record is at (see
    /// [`migrate_adopting`]).
    pub unversioned: Option<fn(&Connection) -> rusqlite::Result<usize>>,
}

impl Schema {
    /// [`migrate`] (or [`migrate_adopting`]) with this schema's steps.
    pub fn migrate(&self, conn: &mut Connection) -> Result<()> {
        match self.unversioned {
            Some(f) => migrate_adopting(conn, self.component, self.steps, f),
            None => migrate(conn, self.component, self.steps),
        }
    }
}

/// What `PRAGMA user_version` holds once every schema of `set` is at its
/// latest version ([`migrate_set`]): a hash (FNV-1a) of their names and
/// versions, never 0 (SQLite's value in a new file). Another berth, older or
/// newer, knows other versions and so another stamp.
pub const fn stamp(set: &[&Schema]) -> i32 {
    const PRIME: u32 = 0x0100_0193;
    let mut h: u32 = 0x811c_9dc5;
    let mut i = 0;
    while i < set.len() {
        let name = set[i].component.as_bytes();
        let mut j = 0;
        while j < name.len() {
            h = (h ^ name[j] as u32).wrapping_mul(PRIME);
            j += 1;
        }
        // A separator, then the version's four bytes.
        h = h.wrapping_mul(PRIME);
        let v = (set[i].steps.len() as u32).to_le_bytes();
        let mut k = 0;
        while k < 4 {
            h = (h ^ v[k] as u32).wrapping_mul(PRIME);
            k += 1;
        }
        i += 1;
    }
    match (h & 0x7fff_ffff) as i32 {
        0 => 1,
        v => v,
    }
}

/// Brings every schema of `set` up to date ([`Schema::migrate`]), with one
/// read of the database header when nothing needs doing: the file's
/// `user_version` holds [`stamp`]`(set)` once all of them are at the versions
/// known here, and then no `schema_version` row is read. Any other value (a
/// new file, an older berth's database, a newer berth's stamp) takes the
/// checks of [`migrate`], which migrate an older database and refuse a newer
/// one, and then records the stamp. Only one set may stamp a file: the
/// components outside it (the network's tables, the build cache) keep
/// [`migrate`]'s own check.
pub fn migrate_set(conn: &mut Connection, set: &[&Schema]) -> Result<()> {
    let want = stamp(set);
    let have = conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i32>(0));
    if matches!(have, Ok(v) if v == want) {
        return Ok(());
    }
    for s in set {
        s.migrate(conn)?;
    }
    let path = conn.path().unwrap_or("").to_owned();
    // The stamp is written under the write lock after the versions are read
    // again: a newer berth may have moved one meanwhile, and then the stamp
    // would claim what is not (this process goes on as before the stamp
    // existed; the next check finds the newer version and refuses it).
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sqlite_err(&path, "begin recording the schema stamp"))?;
    for s in set {
        let v = read_version(&tx, s.component).map_err(sqlite_err(&path, "read schema_version"))?;
        if v != Some(s.steps.len()) {
            return Ok(());
        }
    }
    tx.pragma_update(None, "user_version", want)
        .map_err(sqlite_err(&path, "record the schema stamp"))?;
    tx.commit()
        .map_err(sqlite_err(&path, "commit the schema stamp"))
}

fn read_version(c: &Connection, component: &str) -> rusqlite::Result<Option<usize>> {
    c.query_row(
        "SELECT version FROM schema_version WHERE component = ?1",
        [component],
        |r| r.get::<_, i64>(0),
    )
    .optional()
    .map(|v| v.map(|v| usize::try_from(v).unwrap_or(usize::MAX)))
}

/// Brings `component`'s tables to version `steps.len()`: step `i` (0-based) moves version
/// `i` to `i + 1`. All pending steps run in one transaction; a database newer than the
/// steps known here is refused. An up-to-date database costs one read and no write lock.
pub fn migrate(conn: &mut Connection, component: &str, steps: &[&str]) -> Result<()> {
    migrate_adopting(conn, component, steps, |_| Ok(0))
}

/// [`migrate`] for a component whose tables existed before it recorded versions:
/// `unversioned` tells, inside the migration's transaction, which version a database
/// without a record for `component` is at (0 when its tables are not there).
pub fn migrate_adopting(
    conn: &mut Connection,
    component: &str,
    steps: &[&str],
    unversioned: impl FnOnce(&Connection) -> rusqlite::Result<usize>,
) -> Result<()> {
    let path = conn.path().unwrap_or("").to_owned();
    let read = |c: &Connection| read_version(c, component);
    // The common case, without the write lock: the table is there and up to date.
    if let Ok(Some(v)) = read(conn) {
        if v == steps.len() {
            return Ok(());
        }
    }
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_version (component TEXT PRIMARY KEY, version INTEGER NOT NULL)",
    )
    .map_err(sqlite_err(&path, "create schema_version"))?;
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sqlite_err(&path, "begin migration"))?;
    let current = match read(&tx).map_err(sqlite_err(&path, "read schema_version"))? {
        Some(v) => v,
        None => unversioned(&tx).map_err(sqlite_err(&path, format!("version of {component}")))?,
    };
    if current > steps.len() {
        return Err(DbError::Sqlite {
            path: path.clone(),
            op: format!("schema of {component}"),
            source: rusqlite::Error::InvalidParameterName(format!(
                "version {current} is newer than this berth knows ({})",
                steps.len()
            )),
        });
    }
    for (i, step) in steps.iter().enumerate().skip(current) {
        tx.execute_batch(step).map_err(sqlite_err(
            &path,
            format!("migrate {component} to version {}", i + 1),
        ))?;
    }
    tx.execute(
        "INSERT INTO schema_version (component, version) VALUES (?1, ?2)
         ON CONFLICT(component) DO UPDATE SET version = excluded.version",
        params![component, steps.len() as i64],
    )
    .map_err(sqlite_err(&path, "write schema_version"))?;
    tx.commit().map_err(sqlite_err(&path, "commit migration"))
}

/// Whether `table` has a column called `column` (for [`migrate_adopting`]'s probes).
pub fn has_column(conn: &Connection, table: &str, column: &str) -> rusqlite::Result<bool> {
    let mut st = conn.prepare("SELECT name FROM pragma_table_info(?1)")?;
    let names = st.query_map([table], |r| r.get::<_, String>(0))?;
    for n in names {
        if n? == column {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn version(conn: &Connection, component: &str) -> i64 {
        conn.query_row(
            "SELECT version FROM schema_version WHERE component = ?1",
            [component],
            |r| r.get(0),
        )
        .unwrap()
    }

    fn wal_len(dir: &Path) -> u64 {
        std::fs::metadata(dir.join(format!("{DB_FILE}-wal")))
            .map(|m| m.len())
            .unwrap_or(0)
    }

    /// The detached checkpoint leaves an empty log (the next process's open
    /// has nothing to read back), and with a reader in the log it copies
    /// what it can without waiting, losing nothing.
    #[test]
    fn checkpoint_truncates_the_log_and_waits_for_no_reader() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open_connection(dir.path()).unwrap();
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            true,
        )
        .unwrap();
        let pages = defer_checkpoints(&mut conn).unwrap();
        conn.execute_batch("CREATE TABLE t (a INTEGER)").unwrap();
        for i in 0..20 {
            conn.execute("INSERT INTO t VALUES (?1)", [i]).unwrap();
        }
        assert!(pages.get() > 0);
        assert!(wal_len(dir.path()) > 0);
        checkpoint(dir.path()).unwrap();
        assert_eq!(wal_len(dir.path()), 0);

        conn.execute("INSERT INTO t VALUES (20)", []).unwrap();
        let reader = open_connection(dir.path()).unwrap();
        reader.execute_batch("BEGIN").unwrap();
        let seen: i64 = reader
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(seen, 21);
        // Returns although the reader holds the log.
        checkpoint(dir.path()).unwrap();
        assert!(wal_len(dir.path()) > 0);
        reader.execute_batch("COMMIT").unwrap();
        conn.execute("INSERT INTO t VALUES (21)", []).unwrap();
        drop(conn);
        checkpoint(dir.path()).unwrap();
        assert_eq!(wal_len(dir.path()), 0);
        let n: i64 = reader
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 22);
    }

    #[test]
    fn steps_run_once_in_order_and_a_newer_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open_connection(dir.path()).unwrap();
        let v1 = ["CREATE TABLE t (a INTEGER)"];
        migrate(&mut conn, "c", &v1).unwrap();
        migrate(&mut conn, "c", &v1).unwrap();
        let v2 = [v1[0], "ALTER TABLE t ADD COLUMN b INTEGER"];
        migrate(&mut conn, "c", &v2).unwrap();
        assert!(has_column(&conn, "t", "b").unwrap());
        assert_eq!(version(&conn, "c"), 2);
        let e = migrate(&mut conn, "c", &v1).unwrap_err().to_string();
        assert!(
            e.contains("version 2 is newer than this berth knows (1)"),
            "{e}"
        );
        // A failing step leaves the version where it was.
        let bad = [v2[0], v2[1], "NOT SQL"];
        assert!(migrate(&mut conn, "c", &bad).is_err());
        assert_eq!(version(&conn, "c"), 2);
    }

    #[test]
    fn unversioned_tables_are_adopted_at_the_version_they_are() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open_connection(dir.path()).unwrap();
        conn.execute_batch("CREATE TABLE t (a INTEGER, b INTEGER)")
            .unwrap();
        let steps = [
            "CREATE TABLE IF NOT EXISTS t (a INTEGER)",
            "ALTER TABLE t ADD COLUMN b INTEGER",
        ];
        migrate_adopting(&mut conn, "c", &steps, |c| {
            Ok(if has_column(c, "t", "b")? { 2 } else { 0 })
        })
        .unwrap();
        assert_eq!(version(&conn, "c"), 2);
    }
}
