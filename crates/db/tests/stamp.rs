//! `migrate_set`'s fast path: the stamp in `user_version` stands for every
//! schema of the set at the version known here, and anything else takes
//! `migrate`'s checks (an older database migrated, a newer one refused).
#![allow(clippy::unwrap_used)]

use berth_db::{migrate_set, open_connection, stamp, Schema};
use rusqlite::Connection;

const A1: Schema = Schema {
    component: "a",
    steps: &["CREATE TABLE a (x INTEGER)"],
    unversioned: None,
};
const A2: Schema = Schema {
    component: "a",
    steps: &[
        "CREATE TABLE a (x INTEGER)",
        "ALTER TABLE a ADD COLUMN y INTEGER",
    ],
    unversioned: None,
};
const B1: Schema = Schema {
    component: "b",
    steps: &["CREATE TABLE b (x INTEGER)"],
    unversioned: None,
};

fn user_version(c: &Connection) -> i32 {
    c.query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

fn version(c: &Connection, component: &str) -> i64 {
    c.query_row(
        "SELECT version FROM schema_version WHERE component = ?1",
        [component],
        |r| r.get(0),
    )
    .unwrap()
}

#[test]
fn stamps_differ_by_versions_and_names_and_are_never_zero() {
    const S: i32 = stamp(&[&A1, &B1]);
    assert_ne!(S, 0);
    assert_ne!(S, stamp(&[&A2, &B1]));
    assert_ne!(S, stamp(&[&A1]));
    assert_ne!(stamp(&[&A1]), stamp(&[&B1]));
    assert_eq!(S, stamp(&[&A1, &B1]));
}

#[test]
fn an_older_database_is_migrated_and_stamped_and_a_newer_one_refused() {
    let dir = tempfile::tempdir().unwrap();
    // Made before stamps existed: versions recorded, user_version 0.
    let mut conn = open_connection(dir.path()).unwrap();
    A1.migrate(&mut conn).unwrap();
    assert_eq!(user_version(&conn), 0);

    migrate_set(&mut conn, &[&A2, &B1]).unwrap();
    assert_eq!(version(&conn, "a"), 2);
    assert_eq!(version(&conn, "b"), 1);
    assert!(berth_db::has_column(&conn, "a", "y").unwrap());
    assert_eq!(user_version(&conn), stamp(&[&A2, &B1]));
    drop(conn);

    // Stamped: the next open reads no version (a row changed behind the
    // stamp's back goes unnoticed: only migrate_set writes them here).
    let mut conn = open_connection(dir.path()).unwrap();
    conn.execute(
        "UPDATE schema_version SET version = 7 WHERE component = 'b'",
        [],
    )
    .unwrap();
    migrate_set(&mut conn, &[&A2, &B1]).unwrap();
    assert_eq!(version(&conn, "b"), 7);
    conn.execute(
        "UPDATE schema_version SET version = 1 WHERE component = 'b'",
        [],
    )
    .unwrap();

    // An older berth's set does not match the stamp: its checks refuse
    // the newer table and leave the stamp alone.
    let e = migrate_set(&mut conn, &[&A1, &B1]).unwrap_err().to_string();
    assert!(
        e.contains("version 2 is newer than this berth knows (1)"),
        "{e}"
    );
    assert_eq!(user_version(&conn), stamp(&[&A2, &B1]));
}

#[test]
fn a_stamp_left_by_another_set_takes_the_checks() {
    let dir = tempfile::tempdir().unwrap();
    let mut conn = open_connection(dir.path()).unwrap();
    migrate_set(&mut conn, &[&A1]).unwrap();
    assert_eq!(user_version(&conn), stamp(&[&A1]));
    migrate_set(&mut conn, &[&A1, &B1]).unwrap();
    assert_eq!(version(&conn, "b"), 1);
    assert_eq!(user_version(&conn), stamp(&[&A1, &B1]));
}

/// Many processes opening a new database at once: each migration and the
/// stamp are written under the write lock, once.
#[test]
fn concurrent_first_opens_migrate_once() {
    let dir = tempfile::tempdir().unwrap();
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let root = dir.path().to_owned();
            std::thread::spawn(move || {
                let mut conn = open_connection(&root).unwrap();
                migrate_set(&mut conn, &[&A2, &B1]).unwrap();
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let conn = open_connection(dir.path()).unwrap();
    assert_eq!(version(&conn, "a"), 2);
    assert_eq!(user_version(&conn), stamp(&[&A2, &B1]));
}

/// What open_connection no longer sets with a statement is still in force:
/// WAL, foreign keys, and synchronous FULL (the bundled SQLite's default).
#[test]
fn a_connection_has_berths_settings() {
    let dir = tempfile::tempdir().unwrap();
    let conn = open_connection(dir.path()).unwrap();
    let journal: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(journal, "wal");
    let fk: i64 = conn
        .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
        .unwrap();
    assert_eq!(fk, 1);
    let sync: i64 = conn
        .query_row("PRAGMA synchronous", [], |r| r.get(0))
        .unwrap();
    assert_eq!(sync, 2, "synchronous FULL");
    drop(conn);
    // And on the next open of the file.
    let conn = open_connection(dir.path()).unwrap();
    let journal: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(journal, "wal");
}
