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
/// synchronous FULL), creating the root if needed.
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
    conn.execute_batch("PRAGMA foreign_keys=ON; PRAGMA synchronous=FULL;")
        .map_err(sqlite_err(&p, "set pragmas"))?;
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
    let read = |c: &Connection| -> rusqlite::Result<Option<usize>> {
        c.query_row(
            "SELECT version FROM schema_version WHERE component = ?1",
            [component],
            |r| r.get::<_, i64>(0),
        )
        .optional()
        .map(|v| v.map(|v| usize::try_from(v).unwrap_or(usize::MAX)))
    };
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
