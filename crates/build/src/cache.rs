//! The build cache: a table in berth.db (component `build`) from a step's
//! key — the parent image, the instruction with everything it depends on,
//! the digest of the files it copies — to the image the step made.

use berth_digest::Digest;
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;

const COMPONENT: &str = "build";
const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE build_cache (
    key TEXT PRIMARY KEY,
    image_id TEXT NOT NULL,
    created INTEGER NOT NULL
);
CREATE INDEX build_cache_image ON build_cache(image_id);
"#];

pub struct Cache {
    conn: Connection,
}

#[derive(Debug, thiserror::Error)]
#[error("build cache: {0}")]
pub struct CacheError(String);

impl Cache {
    pub fn open(root: &Path) -> Result<Cache, CacheError> {
        let mut conn =
            berth_image::db::open_connection(root).map_err(|e| CacheError(e.to_string()))?;
        berth_image::db::migrate(&mut conn, COMPONENT, MIGRATIONS)
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
}
