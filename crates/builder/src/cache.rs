//! The build cache: a table in berth.db (component `build`) from a step's
//! key — the parent image, the instruction with everything it depends on,
//! the digest of the files it copies — to the image the step made; and
//! the content digests of context files by their identity and times, so a
//! rebuild of a big unchanged context does not read it again.

use berth_digest::Digest;
use rusqlite::{params, Connection, OptionalExtension};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

const COMPONENT: &str = "build";
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE build_cache (
    key TEXT PRIMARY KEY,
    image_id TEXT NOT NULL,
    created INTEGER NOT NULL
);
CREATE INDEX build_cache_image ON build_cache(image_id);
"#,
    r#"
CREATE TABLE build_file_digests (
    path BLOB PRIMARY KEY,
    dev INTEGER NOT NULL,
    ino INTEGER NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL,
    digest TEXT NOT NULL
);
"#,
];

/// A file changed this recently may change again within the clock's
/// granularity without its times moving: its digest is not remembered.
const SETTLED_NS: i128 = 2_000_000_000;

pub struct Cache {
    conn: Connection,
}

#[derive(Debug, thiserror::Error)]
#[error("build cache: {0}")]
pub struct CacheError(String);

impl Cache {
    pub fn open(root: &Path) -> Result<Cache, CacheError> {
        let mut conn = berth_db::open_connection(root).map_err(|e| CacheError(e.to_string()))?;
        berth_db::migrate(&mut conn, COMPONENT, MIGRATIONS)
            .map_err(|e| CacheError(e.to_string()))?;
        Ok(Cache { conn })
    }

    /// The key of a step: its parent image and what else it depends on.
    pub fn key(parent: Option<&Digest>, parts: &[&str]) -> Digest {
        let mut s = parent.map_or_else(|| "scratch".to_owned(), |p| p.to_string());
        for p in parts {
            s.push('\n');
            s.push_str(p);
        }
        Digest::of(s.as_bytes())
    }

    pub fn get(&self, key: &Digest) -> Result<Option<Digest>, CacheError> {
        let v: Option<String> = self
            .conn
            .query_row(
                "SELECT image_id FROM build_cache WHERE key = ?1",
                [key.to_string()],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| CacheError(e.to_string()))?;
        Ok(v.and_then(|s| s.parse().ok()))
    }

    pub fn put(&self, key: &Digest, image: &Digest) -> Result<(), CacheError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        self.conn
            .execute(
                "INSERT INTO build_cache (key, image_id, created) VALUES (?1, ?2, ?3)
                 ON CONFLICT(key) DO UPDATE SET image_id = excluded.image_id, created = excluded.created",
                params![key.to_string(), image.to_string(), now],
            )
            .map_err(|e| CacheError(e.to_string()))?;
        Ok(())
    }

    /// The content digest of the regular file `path` (open as `file`,
    /// whose metadata is `m`): remembered when its device, inode, size, mtime and ctime are
    /// those recorded, else hashed (and recorded once it has settled).
    pub fn file_digest(
        &self,
        path: &Path,
        m: &std::fs::Metadata,
        file: &mut std::fs::File,
    ) -> std::io::Result<Digest> {
        let abs = std::path::absolute(path)?;
        let key = abs.as_os_str().as_bytes();
        let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
        let (mtime, ctime) = (ns(m.mtime(), m.mtime_nsec()), ns(m.ctime(), m.ctime_nsec()));
        let row: Option<(i64, i64, i64, String, String, String)> = self
            .conn
            .prepare_cached(
                "SELECT dev, ino, size, CAST(mtime_ns AS TEXT), CAST(ctime_ns AS TEXT), digest
                 FROM build_file_digests WHERE path = ?1",
            )
            .and_then(|mut st| {
                st.query_row([key], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ))
                })
                .optional()
            })
            .ok()
            .flatten();
        if let Some((dev, ino, size, mt, ct, digest)) = row {
            let same = dev as u64 == m.dev()
                && ino as u64 == m.ino()
                && size as u64 == m.len()
                && mt == mtime.to_string()
                && ct == ctime.to_string();
            if same {
                if let Ok(d) = digest.parse() {
                    return Ok(d);
                }
            }
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i128);
        let digest = crate::context::hash_reader(file)?;
        if now - mtime.max(ctime) > SETTLED_NS {
            let _ = self.conn.prepare_cached(
                "INSERT INTO build_file_digests (path, dev, ino, size, mtime_ns, ctime_ns, digest)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT(path) DO UPDATE SET dev = excluded.dev, ino = excluded.ino,
                   size = excluded.size, mtime_ns = excluded.mtime_ns,
                   ctime_ns = excluded.ctime_ns, digest = excluded.digest",
            )
            .and_then(|mut st| {
                st.execute(params![
                    key,
                    m.dev() as i64,
                    m.ino() as i64,
                    m.len() as i64,
                    mtime.to_string(),
                    ctime.to_string(),
                    digest.to_string()
                ])
            });
        }
        Ok(digest)
    }

    /// Empties the cache (`docker builder prune`): every step entry and
    /// every remembered file digest. Returns the entries, key and image.
    pub fn clear(&self) -> Result<Vec<(String, String)>, CacheError> {
        let err = |e: rusqlite::Error| CacheError(e.to_string());
        let tx = self.conn.unchecked_transaction().map_err(err)?;
        let rows: Vec<(String, String)> = {
            let mut st = tx
                .prepare("SELECT key, image_id FROM build_cache ORDER BY key")
                .map_err(err)?;
            let rows = st
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .and_then(|rows| rows.collect());
            rows.map_err(err)?
        };
        tx.execute("DELETE FROM build_cache", []).map_err(err)?;
        tx.execute("DELETE FROM build_file_digests", [])
            .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(rows)
    }

    /// Forgets an entry whose image is gone.
    pub fn forget(&self, key: &Digest) {
        let _ = self
            .conn
            .execute("DELETE FROM build_cache WHERE key = ?1", [key.to_string()]);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn put_get_forget() {
        let d = tempfile::tempdir().unwrap();
        let c = Cache::open(d.path()).unwrap();
        let k = Cache::key(None, &["RUN x"]);
        assert_ne!(k, Cache::key(None, &["RUN y"]));
        assert_ne!(k, Cache::key(Some(&Digest::of(b"p")), &["RUN x"]));
        assert_eq!(c.get(&k).unwrap(), None);
        let img = Digest::of(b"img");
        c.put(&k, &img).unwrap();
        // A second connection (another berth process) sees it.
        let c2 = Cache::open(d.path()).unwrap();
        assert_eq!(c2.get(&k).unwrap(), Some(img));
        c.forget(&k);
        assert_eq!(c2.get(&k).unwrap(), None);
    }

    #[test]
    fn file_digests_are_remembered_only_while_the_file_is_unchanged() {
        let d = tempfile::tempdir().unwrap();
        let c = Cache::open(&d.path().join("root")).unwrap();
        let f = d.path().join("f");
        std::fs::write(&f, "one").unwrap();
        let meta = || std::fs::metadata(&f).unwrap();
        // Just written: hashed, not recorded.
        assert_eq!(
            c.file_digest(&f, &meta(), &mut std::fs::File::open(&f).unwrap())
                .unwrap(),
            Digest::of(b"one")
        );
        let count = || -> i64 {
            c.conn
                .query_row("SELECT count(*) FROM build_file_digests", [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(count(), 0);
        let m = meta();
        // A recorded digest that disagrees with the content proves it is used
        // only while the identity and times match.
        c.conn
            .execute(
                "INSERT OR REPLACE INTO build_file_digests VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    std::path::absolute(&f).unwrap().as_os_str().as_bytes(),
                    m.dev() as i64,
                    m.ino() as i64,
                    m.len() as i64,
                    (i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()))
                        .to_string(),
                    (i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec()))
                        .to_string(),
                    Digest::of(b"remembered").to_string()
                ],
            )
            .unwrap();
        assert_eq!(
            c.file_digest(&f, &m, &mut std::fs::File::open(&f).unwrap())
                .unwrap(),
            Digest::of(b"remembered")
        );
        std::fs::write(&f, "two").unwrap();
        assert_eq!(
            c.file_digest(&f, &meta(), &mut std::fs::File::open(&f).unwrap())
                .unwrap(),
            Digest::of(b"two")
        );
    }
}
