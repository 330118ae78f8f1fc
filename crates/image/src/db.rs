//! Image metadata in SQLite: `<root>/berth.db`, shared with the engine's own tables.
//!
//! The file is opened in WAL mode with a 10 s busy timeout, so concurrent berth processes
//! wait for each other instead of failing, and every change runs in one `BEGIN IMMEDIATE`
//! transaction (taking the write lock up front, so a reader never has to upgrade and fail
//! with SQLITE_BUSY). Each component migrates its own tables through `berth_db::migrate`,
//! recorded in `schema_version(component, version)`.
//!
//! Schema, component `image` (version 1, then 2 added `digest_refs`):
//! ```sql
//! images(id TEXT PRIMARY KEY,          -- sha256:… of the config: the image ID
//!        manifest_digest TEXT,         -- the manifest it came with (NULL if built here)
//!        manifest_json BLOB,           -- that manifest, byte for byte
//!        config_json BLOB NOT NULL,    -- the config, byte for byte
//!        created TEXT,                 -- the config's `created` (RFC 3339)
//!        size INTEGER NOT NULL,        -- sum of the layers' sizes
//!        parent TEXT,                  -- the image it was committed/built from, if any
//!        added_at INTEGER NOT NULL)    -- unix seconds when first added here
//! tags(name TEXT PRIMARY KEY,          -- full reference, docker.io/library/busybox:latest
//!      image_id TEXT NOT NULL REFERENCES images(id), added_at INTEGER NOT NULL)
//! layers(chain_id TEXT PRIMARY KEY, diff_id TEXT NOT NULL, parent_chain_id TEXT,
//!        blob_digest TEXT NOT NULL, media_type TEXT NOT NULL, size INTEGER NOT NULL,
//!        refcount INTEGER NOT NULL)    -- how many images use this layer
//! image_layers(image_id REFERENCES images(id), idx, chain_id REFERENCES layers(chain_id),
//!              diff_id, blob_digest, media_type, size, PRIMARY KEY(image_id, idx))
//! digest_refs(name TEXT PRIMARY KEY,   -- repository@manifest-digest, as pulled by digest:
//!             image_id TEXT NOT NULL REFERENCES images(id),  -- docker.io/library/busybox@sha256:…
//!             added_at INTEGER NOT NULL)
//! ```

use crate::reference::Reference;
use crate::{Error, ImageId, Result};
use berth_digest::Digest;
use oci_spec::image::ImageConfiguration;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

pub use berth_db::{SharedConnection, BUSY_TIMEOUT, DB_FILE};

/// The image tables' component in `schema_version` and its migrations.
pub const SCHEMA: berth_db::Schema = berth_db::Schema {
    component: "image",
    steps: MIGRATIONS,
    unversioned: None,
};

const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE images (
    id TEXT PRIMARY KEY,
    manifest_digest TEXT,
    manifest_json BLOB,
    config_json BLOB NOT NULL,
    created TEXT,
    size INTEGER NOT NULL,
    parent TEXT,
    added_at INTEGER NOT NULL
);
CREATE INDEX images_manifest ON images(manifest_digest);
CREATE INDEX images_parent ON images(parent);
CREATE TABLE tags (
    name TEXT PRIMARY KEY,
    image_id TEXT NOT NULL REFERENCES images(id),
    added_at INTEGER NOT NULL
);
CREATE INDEX tags_image ON tags(image_id);
CREATE TABLE layers (
    chain_id TEXT PRIMARY KEY,
    diff_id TEXT NOT NULL,
    parent_chain_id TEXT,
    blob_digest TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    refcount INTEGER NOT NULL CHECK (refcount >= 0)
);
CREATE TABLE image_layers (
    image_id TEXT NOT NULL REFERENCES images(id),
    idx INTEGER NOT NULL,
    chain_id TEXT NOT NULL REFERENCES layers(chain_id),
    diff_id TEXT NOT NULL,
    blob_digest TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    PRIMARY KEY (image_id, idx)
);
CREATE INDEX image_layers_blob ON image_layers(blob_digest);
CREATE INDEX image_layers_chain ON image_layers(chain_id);
"#,
    r#"
CREATE TABLE digest_refs (
    name TEXT PRIMARY KEY,
    image_id TEXT NOT NULL REFERENCES images(id),
    added_at INTEGER NOT NULL
);
CREATE INDEX digest_refs_image ON digest_refs(image_id);
"#,
];

/// chain_id(0) = diff_id(0); chain_id(n) = sha256(chain_id(n-1) + " " + diff_id(n)).
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => Digest::of(format!("{prev} {d}").as_bytes()),
        };
        out.push(next);
    }
    out
}

/// A layer of an image being added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLayer {
    /// Digest of the uncompressed tar (from the config's rootfs.diff_ids).
    pub diff_id: Digest,
    /// The blob as stored (maybe compressed).
    pub blob_digest: Digest,
    pub media_type: String,
    /// Size of the layer: the uncompressed size when the engine knows it (storage measures
    /// it while applying), else the blob's size.
    pub size: u64,
}

/// An image to register.
#[derive(Debug, Clone, Default)]
pub struct NewImage {
    /// The config, byte for byte; its digest is the image ID.
    pub config_json: Vec<u8>,
    /// The manifest it came with, if any.
    pub manifest: Option<(Digest, Vec<u8>)>,
    /// One entry per `rootfs.diff_ids` of the config, in order.
    pub layers: Vec<NewLayer>,
    /// The image it was committed from.
    pub parent: Option<ImageId>,
    /// Tags to point at it (moved away from other images, as `docker tag` does).
    pub tags: Vec<Reference>,
    /// Digest references (`name@sha256:…` of the manifest it was pulled by) to record.
    pub digest_refs: Vec<Reference>,
}

/// A layer as the layer table holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerRecord {
    pub chain_id: Digest,
    pub diff_id: Digest,
    pub parent_chain_id: Option<Digest>,
    pub blob_digest: Digest,
    pub media_type: String,
    pub size: u64,
    pub refcount: u64,
}

/// One layer of one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageLayer {
    pub chain_id: Digest,
    pub diff_id: Digest,
    pub blob_digest: Digest,
    pub media_type: String,
    pub size: u64,
}

/// An image with everything the engine needs for `inspect`, `run`, `save`, `history`.
#[derive(Debug, Clone)]
pub struct Image {
    pub id: ImageId,
    pub manifest_digest: Option<Digest>,
    pub manifest_json: Option<Vec<u8>>,
    pub config_json: Vec<u8>,
    pub created: Option<String>,
    pub size: u64,
    pub parent: Option<ImageId>,
    /// Unix seconds when it was added to this store.
    pub added_at: i64,
    /// Its tags, full references, sorted.
    pub repo_tags: Vec<Reference>,
    /// The digest references recorded for it (pulled by digest), sorted.
    pub digest_refs: Vec<Reference>,
    pub layers: Vec<ImageLayer>,
}

impl Image {
    pub fn config(&self) -> Result<ImageConfiguration> {
        parse_config(&self.config_json, &self.id.to_string())
    }
    /// Docker's RepoDigests: its recorded digest references (pulled by digest) and
    /// `name@manifest-digest` for every repository it is tagged in.
    pub fn repo_digests(&self) -> Vec<Reference> {
        let mut v: Vec<Reference> = self.digest_refs.clone();
        if let Some(md) = &self.manifest_digest {
            v.extend(self.repo_tags.iter().map(|r| r.with_digest(md.clone())));
        }
        v.sort();
        v.dedup();
        v
    }
    /// The chain ID of its top layer (what storage mounts), if it has layers.
    pub fn top_chain_id(&self) -> Option<&Digest> {
        self.layers.last().map(|l| &l.chain_id)
    }
}

/// One row of `berth images`: an image once per tag, or once with `<none>` if dangling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSummary {
    pub id: ImageId,
    /// Familiar repository name (`busybox`), `<none>` for a dangling image.
    pub repository: String,
    /// The tag, `<none>` for a dangling image.
    pub tag: String,
    /// The manifest digest, if known (`--digests`).
    pub digest: Option<Digest>,
    pub created: Option<String>,
    pub size: u64,
    /// Bytes of its layers that other images share too (for `system df`).
    pub shared_size: u64,
    pub repo_tags: Vec<Reference>,
    pub repo_digests: Vec<Reference>,
}

/// A container that uses an image, as the engine reports it to [`ImageDb::remove`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerUse {
    /// The container's (short) ID, for messages.
    pub container: String,
    pub running: bool,
}

/// What `rmi`/`prune` did. The caller removes `layers_to_remove` from storage (in order:
/// children before parents) and `blobs_to_remove` from the blob store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemovedImage {
    pub untagged: Vec<Reference>,
    pub deleted: Vec<ImageId>,
    pub layers_to_remove: Vec<LayerRecord>,
    pub blobs_to_remove: Vec<Digest>,
}

impl RemovedImage {
    fn merge(&mut self, other: RemovedImage) {
        self.untagged.extend(other.untagged);
        self.deleted.extend(other.deleted);
        self.layers_to_remove.extend(other.layers_to_remove);
        self.blobs_to_remove.extend(other.blobs_to_remove);
    }
}

/// One line of `berth history`, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The image ID on the first (newest) line, `None` (`<missing>`) below it.
    pub id: Option<ImageId>,
    pub created: Option<String>,
    pub created_by: String,
    pub size: u64,
    pub comment: String,
    pub empty_layer: bool,
}

/// The image tables of `<root>/berth.db`.
pub struct ImageDb {
    conn: SharedConnection,
    path: PathBuf,
}

type Tx<'a> = rusqlite::Transaction<'a>;

impl ImageDb {
    /// Opens (creating and migrating as needed) the database under `root`.
    pub fn open(root: &Path) -> Result<ImageDb> {
        let mut conn = berth_db::open_connection(root)?;
        SCHEMA.migrate(&mut conn)?;
        Ok(ImageDb::on(Arc::new(Mutex::new(conn)), root))
    }

    /// The image tables on a connection to `root`'s `berth.db` whose
    /// [`SCHEMA`] is up to date (see `berth_db::migrate_set`).
    pub fn on(conn: SharedConnection, root: &Path) -> ImageDb {
        ImageDb {
            conn,
            path: root.join(DB_FILE),
        }
    }

    /// The connection, for the process's other records in the same file.
    /// Whoever shares it must not call back into this `ImageDb` while
    /// holding its lock.
    pub fn connection(&self) -> SharedConnection {
        Arc::clone(&self.conn)
    }

    fn dberr(&self, op: impl Into<String>) -> impl FnOnce(rusqlite::Error) -> Error {
        let path = self.path.display().to_string();
        let op = op.into();
        move |source| Error::Db { path, op, source }
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        berth_db::lock(&self.conn)
    }

    /// Runs `f` in one immediate transaction, committed if it succeeds.
    fn write<T>(&self, op: &str, f: impl FnOnce(&Tx<'_>) -> Result<T>) -> Result<T> {
        let mut conn = self.lock();
        // Image records are committed with a sync of the log even when the
        // shared connection's other users chose less (containers: NORMAL).
        let before: i64 = conn
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .map_err(self.dberr("read synchronous"))?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(self.dberr("synchronous"))?;
        let res = (|| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(self.dberr(format!("begin {op}")))?;
            let v = f(&tx)?;
            tx.commit().map_err(self.dberr(format!("commit {op}")))?;
            Ok(v)
        })();
        let _ = conn.pragma_update(None, "synchronous", before);
        res
    }

    fn read<T>(&self, op: &str, f: impl FnOnce(&Tx<'_>) -> Result<T>) -> Result<T> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Deferred)
            .map_err(self.dberr(format!("begin {op}")))?;
        f(&tx)
    }

    /// Registers an image (its layers counted once more each) and points `tags` at it.
    /// Adding an image that exists only adds the tags. Returns the image ID.
    pub fn add_image(&self, img: &NewImage) -> Result<ImageId> {
        let id = Digest::of(&img.config_json);
        let config = parse_config(&img.config_json, &id.to_string())?;
        let diff_ids = config_diff_ids(&config, &id)?;
        if diff_ids.len() != img.layers.len() {
            return Err(Error::Config {
                what: id.to_string(),
                msg: format!(
                    "rootfs.diff_ids lists {} layers but {} were given",
                    diff_ids.len(),
                    img.layers.len()
                ),
            });
        }
        for (i, (l, d)) in img.layers.iter().zip(&diff_ids).enumerate() {
            if l.diff_id != *d {
                return Err(Error::Config {
                    what: id.to_string(),
                    msg: format!(
                        "layer {i} has diff_id {} but rootfs.diff_ids[{i}] is {d}",
                        l.diff_id
                    ),
                });
            }
        }
        for t in &img.tags {
            check_taggable(t)?;
        }
        for d in &img.digest_refs {
            check_digest_ref(d)?;
        }
        let chains = chain_ids(&diff_ids);
        let created = config.created().clone();
        let size: u64 = img.layers.iter().map(|l| l.size).sum();
        let now = now_unix();
        self.write("add image", |tx| {
            let e = |op: &str| self.dberr(format!("add image {id}: {op}"));
            let exists: bool = tx
                .query_row("SELECT 1 FROM images WHERE id = ?1", [id.to_string()], |_| Ok(()))
                .optional()
                .map_err(e("look up"))?
                .is_some();
            if exists {
                if let Some((md, mj)) = &img.manifest {
                    tx.execute(
                        "UPDATE images SET manifest_digest = ?2, manifest_json = ?3
                         WHERE id = ?1 AND manifest_digest IS NULL",
                        params![id.to_string(), md.to_string(), mj],
                    )
                    .map_err(e("record manifest"))?;
                }
            } else {
                tx.execute(
                    "INSERT INTO images (id, manifest_digest, manifest_json, config_json, created, size, parent, added_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![
                        id.to_string(),
                        img.manifest.as_ref().map(|m| m.0.to_string()),
                        img.manifest.as_ref().map(|m| &m.1),
                        img.config_json,
                        created,
                        size as i64,
                        img.parent.as_ref().map(|p| p.to_string()),
                        now,
                    ],
                )
                .map_err(e("insert"))?;
                for (i, (l, chain)) in img.layers.iter().zip(&chains).enumerate() {
                    let parent = if i == 0 { None } else { Some(chains[i - 1].to_string()) };
                    tx.execute(
                        "INSERT INTO layers (chain_id, diff_id, parent_chain_id, blob_digest, media_type, size, refcount)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1)
                         ON CONFLICT(chain_id) DO UPDATE SET refcount = refcount + 1",
                        params![
                            chain.to_string(),
                            l.diff_id.to_string(),
                            parent,
                            l.blob_digest.to_string(),
                            l.media_type,
                            l.size as i64
                        ],
                    )
                    .map_err(e("count layer"))?;
                    tx.execute(
                        "INSERT INTO image_layers (image_id, idx, chain_id, diff_id, blob_digest, media_type, size)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                        params![
                            id.to_string(),
                            i as i64,
                            chain.to_string(),
                            l.diff_id.to_string(),
                            l.blob_digest.to_string(),
                            l.media_type,
                            l.size as i64
                        ],
                    )
                    .map_err(e("insert layer"))?;
                }
            }
            for t in &img.tags {
                set_tag(tx, t, &id, now).map_err(e("tag"))?;
            }
            for d in &img.digest_refs {
                tx.execute(
                    "INSERT INTO digest_refs (name, image_id, added_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT(name) DO UPDATE SET image_id = excluded.image_id",
                    params![d.to_string(), id.to_string(), now],
                )
                .map_err(e("record digest reference"))?;
            }
            Ok(())
        })?;
        Ok(id)
    }

    /// Records the manifest an image was pushed with, if it had none (its RepoDigests).
    pub fn record_manifest(&self, id: &ImageId, digest: &Digest, json: &[u8]) -> Result<()> {
        self.write("record manifest", |tx| {
            tx.execute(
                "UPDATE images SET manifest_digest = ?2, manifest_json = ?3
                 WHERE id = ?1 AND manifest_digest IS NULL",
                params![id.to_string(), digest.to_string(), json],
            )
            .map_err(self.dberr(format!("record manifest of {id}")))?;
            Ok(())
        })
    }

    /// Points `reference` at `image` (moving it from another image, as `docker tag`).
    pub fn tag(&self, reference: &Reference, image: &ImageId) -> Result<()> {
        check_taggable(reference)?;
        self.write("tag", |tx| {
            let exists = tx
                .query_row(
                    "SELECT 1 FROM images WHERE id = ?1",
                    [image.to_string()],
                    |_| Ok(()),
                )
                .optional()
                .map_err(self.dberr("tag: look up image"))?
                .is_some();
            if !exists {
                return Err(Error::NoSuchImage(image.to_string()));
            }
            set_tag(tx, reference, image, now_unix())
                .map_err(self.dberr(format!("tag {reference}")))
        })
    }

    /// Removes the tag `reference`; returns the image it pointed at.
    pub fn untag(&self, reference: &Reference) -> Result<ImageId> {
        self.write("untag", |tx| {
            let id = tag_target(tx, reference).map_err(self.dberr("untag: look up"))?;
            let Some(id) = id else {
                return Err(Error::NoSuchImage(reference.familiar()));
            };
            tx.execute("DELETE FROM tags WHERE name = ?1", [reference.to_string()])
                .map_err(self.dberr("untag"))?;
            Ok(id)
        })
    }

    /// Finds an image by reference (`busybox`, `user/app:v1`, `name@sha256:…` = manifest
    /// digest) or by ID (full or a unique prefix of at least 4 hex digits, with or without
    /// `sha256:`), as Docker does.
    pub fn resolve(&self, name_or_id: &str) -> Result<Image> {
        self.read("resolve", |tx| {
            let (id, _) = self.resolve_in(tx, name_or_id)?;
            self.load_image(tx, &id)
        })
    }

    /// The ID of the image `name_or_id` names ([`ImageDb::resolve`] without
    /// reading the image: one statement for a tag instead of five).
    pub fn resolve_id(&self, name_or_id: &str) -> Result<ImageId> {
        self.read("resolve", |tx| Ok(self.resolve_in(tx, name_or_id)?.0))
    }

    /// The image with exactly this ID.
    pub fn get(&self, id: &ImageId) -> Result<Image> {
        self.read("get image", |tx| self.load_image(tx, id))
    }

    fn resolve_in(&self, tx: &Tx<'_>, s: &str) -> Result<(ImageId, Option<Reference>)> {
        let e = || self.dberr(format!("resolve {s}"));
        let not_found = || Error::NoSuchImage(s.to_owned());
        if let Some(hex) = s.strip_prefix("sha256:") {
            return Ok((self.by_id_prefix(tx, s, hex)?, None));
        }
        if let Ok(d) = Digest::from_hex(s) {
            return match image_exists(tx, &d).map_err(e())? {
                true => Ok((d, None)),
                false => Err(not_found()),
            };
        }
        let parsed = Reference::parse(s);
        if let Ok(r) = &parsed {
            if let Some(d) = r.digest() {
                // A digest reference recorded by a pull by digest.
                let recorded: Option<String> = tx
                    .query_row(
                        "SELECT image_id FROM digest_refs WHERE name = ?1",
                        [r.to_string()],
                        |row| row.get(0),
                    )
                    .optional()
                    .map_err(e())?;
                if let Some(id) = recorded {
                    return Ok((parse_digest_col(&id)?, Some(r.clone())));
                }
                // name@digest: the image with that manifest tagged in that repository (its
                // RepoDigests say so), or with that ID.
                let mut stmt = tx
                    .prepare(
                        "SELECT i.id FROM images i
                         WHERE (i.manifest_digest = ?1
                                AND EXISTS (SELECT 1 FROM tags t WHERE t.image_id = i.id AND t.name LIKE ?2 || ':%'))
                            OR i.id = ?1
                         ORDER BY i.added_at DESC",
                    )
                    .map_err(e())?;
                let found: Option<String> = stmt
                    .query_row(params![d.to_string(), r.name()], |row| row.get(0))
                    .optional()
                    .map_err(e())?;
                return match found {
                    Some(id) => Ok((parse_digest_col(&id)?, None)),
                    None => Err(not_found()),
                };
            }
            if let Some(id) = tag_target(tx, r).map_err(e())? {
                return Ok((id, Some(r.clone())));
            }
        }
        if s.len() >= 4
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Ok((self.by_id_prefix(tx, s, s)?, None));
        }
        // Neither an ID nor a reference: say why it does not parse rather
        // than that no such image exists.
        parsed?;
        Err(not_found())
    }

    fn by_id_prefix(&self, tx: &Tx<'_>, s: &str, hex: &str) -> Result<ImageId> {
        if hex.is_empty()
            || hex.len() > 64
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(Error::NoSuchImage(s.to_owned()));
        }
        let mut stmt = tx
            .prepare("SELECT id FROM images WHERE id LIKE ?1 LIMIT 3")
            .map_err(self.dberr("find image by ID"))?;
        let ids: Vec<String> = stmt
            .query_map([format!("sha256:{hex}%")], |r| r.get(0))
            .and_then(|rows| rows.collect())
            .map_err(self.dberr("find image by ID"))?;
        match ids.len() {
            0 => Err(Error::NoSuchImage(s.to_owned())),
            1 => parse_digest_col(&ids[0]),
            _ => {
                let count: i64 = tx
                    .query_row(
                        "SELECT count(*) FROM images WHERE id LIKE ?1",
                        [format!("sha256:{hex}%")],
                        |r| r.get(0),
                    )
                    .map_err(self.dberr("find image by ID"))?;
                Err(Error::AmbiguousImage {
                    prefix: s.to_owned(),
                    count: count as usize,
                })
            }
        }
    }

    fn load_image(&self, tx: &Tx<'_>, id: &ImageId) -> Result<Image> {
        let e = || self.dberr(format!("read image {id}"));
        let row = tx
            .query_row(
                "SELECT manifest_digest, manifest_json, config_json, created, size, parent, added_at FROM images WHERE id = ?1",
                [id.to_string()],
                |r| {
                    Ok((
                        r.get::<_, Option<String>>(0)?,
                        r.get::<_, Option<Vec<u8>>>(1)?,
                        r.get::<_, Vec<u8>>(2)?,
                        r.get::<_, Option<String>>(3)?,
                        r.get::<_, i64>(4)?,
                        r.get::<_, Option<String>>(5)?,
                        r.get::<_, i64>(6)?,
                    ))
                },
            )
            .optional()
            .map_err(e())?;
        let Some((md, mj, cj, created, size, parent, added_at)) = row else {
            return Err(Error::NoSuchImage(id.to_string()));
        };
        let mut stmt = tx
            .prepare("SELECT chain_id, diff_id, blob_digest, media_type, size FROM image_layers WHERE image_id = ?1 ORDER BY idx")
            .map_err(e())?;
        let rows: Vec<(String, String, String, String, i64)> = stmt
            .query_map([id.to_string()], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .and_then(|rows| rows.collect())
            .map_err(e())?;
        let mut layers = Vec::with_capacity(rows.len());
        for (c, d, b, m, s) in rows {
            layers.push(ImageLayer {
                chain_id: parse_digest_col(&c)?,
                diff_id: parse_digest_col(&d)?,
                blob_digest: parse_digest_col(&b)?,
                media_type: m,
                size: s as u64,
            });
        }
        Ok(Image {
            id: id.clone(),
            manifest_digest: md.as_deref().map(parse_digest_col).transpose()?,
            manifest_json: mj,
            config_json: cj,
            created,
            size: size as u64,
            parent: parent.as_deref().map(parse_digest_col).transpose()?,
            added_at,
            repo_tags: tags_of(tx, id).map_err(e())?,
            digest_refs: digest_refs_of(tx, id).map_err(e())?,
            layers,
        })
    }

    /// Every image, for `berth images`: one row per tag, dangling images once with
    /// `<none>`; newest first.
    pub fn list(&self) -> Result<Vec<ImageSummary>> {
        self.read("list images", |tx| {
            let e = || self.dberr("list images");
            let mut stmt = tx
                .prepare("SELECT id FROM images ORDER BY created DESC, added_at DESC, id")
                .map_err(e())?;
            let ids: Vec<String> = stmt
                .query_map([], |r| r.get(0))
                .and_then(|rows| rows.collect())
                .map_err(e())?;
            let mut out = Vec::new();
            for id in ids {
                let img = self.load_image(tx, &parse_digest_col(&id)?)?;
                let shared: i64 = tx
                    .query_row(
                        "SELECT coalesce(sum(l.size), 0) FROM image_layers il JOIN layers l ON l.chain_id = il.chain_id
                         WHERE il.image_id = ?1 AND l.refcount > 1",
                        [&id],
                        |r| r.get(0),
                    )
                    .map_err(e())?;
                let repo_digests = img.repo_digests();
                let row = |repository: String, tag: String, digest: Option<Digest>| ImageSummary {
                    id: img.id.clone(),
                    repository,
                    tag,
                    digest,
                    created: img.created.clone(),
                    size: img.size,
                    shared_size: shared as u64,
                    repo_tags: img.repo_tags.clone(),
                    repo_digests: repo_digests.clone(),
                };
                // As Docker's CLI: a row per tag, with its repository's digest; a row
                // `<none>` per digest reference whose repository has no tag; one row
                // `<none> <none>` for an image with neither.
                if img.repo_tags.is_empty() && img.digest_refs.is_empty() {
                    out.push(row("<none>".into(), "<none>".into(), img.manifest_digest.clone()));
                }
                for t in &img.repo_tags {
                    let digest = img
                        .digest_refs
                        .iter()
                        .find(|d| d.name() == t.name())
                        .and_then(|d| d.digest().cloned())
                        .or_else(|| img.manifest_digest.clone());
                    out.push(row(t.familiar_name(), t.tag().unwrap_or("<none>").to_owned(), digest));
                }
                for d in &img.digest_refs {
                    if !img.repo_tags.iter().any(|t| t.name() == d.name()) {
                        out.push(row(d.familiar_name(), "<none>".into(), d.digest().cloned()));
                    }
                }
            }
            Ok(out)
        })
    }

    /// The images that are the parent of another (built or committed from).
    pub fn parents(&self) -> Result<HashSet<ImageId>> {
        self.read("list parents", |tx| {
            let e = || self.dberr("list parents");
            let mut stmt = tx
                .prepare("SELECT DISTINCT parent FROM images WHERE parent IS NOT NULL")
                .map_err(e())?;
            let rows: Vec<String> = stmt
                .query_map([], |r| r.get(0))
                .and_then(|rows| rows.collect())
                .map_err(e())?;
            rows.iter().map(|s| parse_digest_col(s)).collect()
        })
    }

    /// Every layer record (for `system df` and storage garbage collection).
    pub fn layers(&self) -> Result<Vec<LayerRecord>> {
        self.read("list layers", |tx| {
            let mut stmt = tx
                .prepare("SELECT chain_id, diff_id, parent_chain_id, blob_digest, media_type, size, refcount FROM layers ORDER BY chain_id")
                .map_err(self.dberr("list layers"))?;
            let rows = stmt
                .query_map([], layer_row)
                .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                .map_err(self.dberr("list layers"))?;
            rows.into_iter().map(layer_record).collect()
        })
    }

    /// Every blob an image still needs (configs, manifests, layer blobs): what a blob-store
    /// garbage collection must keep.
    pub fn referenced_blobs(&self) -> Result<BTreeSet<Digest>> {
        self.read("list referenced blobs", |tx| {
            let mut stmt = tx
                .prepare(
                    "SELECT id FROM images UNION SELECT manifest_digest FROM images WHERE manifest_digest IS NOT NULL
                     UNION SELECT blob_digest FROM image_layers",
                )
                .map_err(self.dberr("list referenced blobs"))?;
            let rows: Vec<String> = stmt
                .query_map([], |r| r.get(0))
                .and_then(|rows| rows.collect())
                .map_err(self.dberr("list referenced blobs"))?;
            rows.iter().map(|s| parse_digest_col(s)).collect()
        })
    }

    /// `docker rmi`: by tag, removes the tag and deletes the image when it was its last;
    /// by ID, removes its tags and deletes it. An image used by a container (`in_use`) is
    /// refused unless `force`, and even with `force` it is only untagged, never deleted, so
    /// the container's layers stay. Images with child images are untagged, not deleted.
    pub fn remove(
        &self,
        name_or_id: &str,
        force: bool,
        in_use: &dyn Fn(&ImageId) -> Option<ContainerUse>,
    ) -> Result<RemovedImage> {
        self.write("remove image", |tx| {
            let (id, by_ref) = self.resolve_in(tx, name_or_id)?;
            let e = || self.dberr(format!("remove image {id}"));
            let tags = tags_of(tx, &id).map_err(e())?;
            let digests = digest_refs_of(tx, &id).map_err(e())?;
            let user = in_use(&id);
            let has_children = has_children(tx, &id).map_err(e())?;
            let mut out = RemovedImage::default();
            let short = id.short().to_owned();
            let untag = |r: &Reference, out: &mut RemovedImage| -> Result<()> {
                tx.execute("DELETE FROM tags WHERE name = ?1", [r.to_string()])
                    .map_err(e())?;
                tx.execute("DELETE FROM digest_refs WHERE name = ?1", [r.to_string()])
                    .map_err(e())?;
                out.untagged.push(r.clone());
                Ok(())
            };
            if let Some(r) = by_ref {
                // Removing a repository's last tag also removes its digest references,
                // as Docker does.
                let mut gone = vec![r.clone()];
                if r.digest().is_none() && !tags.iter().any(|t| *t != r && t.name() == r.name()) {
                    gone.extend(digests.iter().filter(|d| d.name() == r.name()).cloned());
                }
                if gone.len() < tags.len() + digests.len() {
                    for g in &gone {
                        untag(g, &mut out)?;
                    }
                    return Ok(out);
                }
                if let Some(c) = &user {
                    if !force {
                        return Err(Error::Conflict(format!(
                            "unable to remove repository reference {name_or_id:?} (must force) - container {} is using its referenced image {short}",
                            c.container
                        )));
                    }
                }
                for g in &gone {
                    untag(g, &mut out)?;
                }
                if user.is_none() && !has_children {
                    self.delete_image(tx, &id, &mut out)?;
                }
                return Ok(out);
            }
            if let Some(c) = &user {
                if c.running {
                    return Err(Error::Conflict(format!(
                        "unable to delete {short} (cannot be forced) - image is being used by running container {}",
                        c.container
                    )));
                }
                if !force {
                    return Err(Error::Conflict(format!(
                        "unable to delete {short} (must be forced) - image is being used by stopped container {}",
                        c.container
                    )));
                }
            }
            let repos: HashSet<String> = tags.iter().chain(&digests).map(|t| t.name()).collect();
            if repos.len() > 1 && !force {
                return Err(Error::Conflict(format!(
                    "unable to delete {short} (must be forced) - image is referenced in multiple repositories"
                )));
            }
            if has_children && user.is_none() {
                return Err(Error::Conflict(format!(
                    "unable to delete {short} (cannot be forced) - image has dependent child images"
                )));
            }
            for t in tags.iter().chain(&digests) {
                untag(t, &mut out)?;
            }
            if user.is_none() {
                self.delete_image(tx, &id, &mut out)?;
            }
            Ok(out)
        })
    }

    /// `docker image prune`: deletes dangling images (untagged, no children; as in Docker
    /// 20.10 an image with only digest references counts, and they are untagged), or with `all`
    /// every image no container uses; repeats while deleting frees parents.
    pub fn prune(
        &self,
        all: bool,
        in_use: &dyn Fn(&ImageId) -> Option<ContainerUse>,
    ) -> Result<RemovedImage> {
        self.write("prune images", |tx| {
            let e = || self.dberr("prune images");
            let mut out = RemovedImage::default();
            loop {
                let mut stmt = tx
                    .prepare(
                        "SELECT i.id FROM images i
                         WHERE NOT EXISTS (SELECT 1 FROM images c WHERE c.parent = i.id)
                           AND (?1 OR NOT EXISTS (SELECT 1 FROM tags t WHERE t.image_id = i.id))
                         ORDER BY i.id",
                    )
                    .map_err(e())?;
                let ids: Vec<String> = stmt
                    .query_map([all], |r| r.get(0))
                    .and_then(|rows| rows.collect())
                    .map_err(e())?;
                let mut progressed = false;
                for id in ids {
                    let id = parse_digest_col(&id)?;
                    if in_use(&id).is_some() {
                        continue;
                    }
                    let mut one = RemovedImage::default();
                    for t in tags_of(tx, &id).map_err(e())? {
                        tx.execute("DELETE FROM tags WHERE name = ?1", [t.to_string()])
                            .map_err(e())?;
                        one.untagged.push(t);
                    }
                    for d in digest_refs_of(tx, &id).map_err(e())? {
                        tx.execute("DELETE FROM digest_refs WHERE name = ?1", [d.to_string()])
                            .map_err(e())?;
                        one.untagged.push(d);
                    }
                    self.delete_image(tx, &id, &mut one)?;
                    out.merge(one);
                    progressed = true;
                }
                if !progressed {
                    return Ok(out);
                }
            }
        })
    }

    /// Deletes the image rows, counts its layers down, and records what is now unused.
    fn delete_image(&self, tx: &Tx<'_>, id: &ImageId, out: &mut RemovedImage) -> Result<()> {
        let e = || self.dberr(format!("delete image {id}"));
        let img = self.load_image(tx, id)?;
        tx.execute("DELETE FROM tags WHERE image_id = ?1", [id.to_string()])
            .map_err(e())?;
        tx.execute(
            "DELETE FROM digest_refs WHERE image_id = ?1",
            [id.to_string()],
        )
        .map_err(e())?;
        tx.execute(
            "DELETE FROM image_layers WHERE image_id = ?1",
            [id.to_string()],
        )
        .map_err(e())?;
        tx.execute("DELETE FROM images WHERE id = ?1", [id.to_string()])
            .map_err(e())?;
        for l in img.layers.iter().rev() {
            tx.execute(
                "UPDATE layers SET refcount = refcount - 1 WHERE chain_id = ?1",
                [l.chain_id.to_string()],
            )
            .map_err(e())?;
            let rec = tx
                .query_row(
                    "SELECT chain_id, diff_id, parent_chain_id, blob_digest, media_type, size, refcount FROM layers WHERE chain_id = ?1",
                    [l.chain_id.to_string()],
                    layer_row,
                )
                .optional()
                .map_err(e())?;
            if let Some(rec) = rec {
                let rec = layer_record(rec)?;
                if rec.refcount == 0 {
                    tx.execute(
                        "DELETE FROM layers WHERE chain_id = ?1",
                        [l.chain_id.to_string()],
                    )
                    .map_err(e())?;
                    out.layers_to_remove.push(rec);
                }
            }
        }
        let mut candidates: Vec<Digest> = vec![id.clone()];
        candidates.extend(img.manifest_digest.clone());
        candidates.extend(img.layers.iter().map(|l| l.blob_digest.clone()));
        let mut seen = HashSet::new();
        for b in candidates {
            if !seen.insert(b.clone()) {
                continue;
            }
            let used: bool = tx
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM images WHERE id = ?1 OR manifest_digest = ?1)
                         OR EXISTS (SELECT 1 FROM image_layers WHERE blob_digest = ?1)",
                    [b.to_string()],
                    |r| r.get(0),
                )
                .map_err(e())?;
            if !used {
                out.blobs_to_remove.push(b);
            }
        }
        out.deleted.push(id.clone());
        Ok(())
    }

    /// `docker history`: the config's history, newest first, with the size of the layer
    /// each non-empty entry made.
    pub fn history(&self, name_or_id: &str) -> Result<Vec<HistoryEntry>> {
        let img = self.resolve(name_or_id)?;
        history_of(&img)
    }
}

/// The history lines of `img` (see [`ImageDb::history`]).
pub fn history_of(img: &Image) -> Result<Vec<HistoryEntry>> {
    let config = img.config()?;
    let mut layers = img.layers.iter();
    let mut out = Vec::new();
    match config.history() {
        Some(h) if !h.is_empty() => {
            for e in h {
                let empty = e.empty_layer().unwrap_or(false);
                let size = if empty {
                    0
                } else {
                    layers.next().map_or(0, |l| l.size)
                };
                out.push(HistoryEntry {
                    id: None,
                    created: e.created().clone(),
                    created_by: e.created_by().clone().unwrap_or_default(),
                    size,
                    comment: e.comment().clone().unwrap_or_default(),
                    empty_layer: empty,
                });
            }
        }
        _ => {
            for l in &img.layers {
                out.push(HistoryEntry {
                    id: None,
                    created: config.created().clone(),
                    created_by: String::new(),
                    size: l.size,
                    comment: String::new(),
                    empty_layer: false,
                });
            }
        }
    }
    out.reverse();
    if let Some(first) = out.first_mut() {
        first.id = Some(img.id.clone());
    }
    Ok(out)
}

pub fn parse_config(bytes: &[u8], what: &str) -> Result<ImageConfiguration> {
    serde_json::from_slice(bytes).map_err(|e| Error::Config {
        what: what.to_owned(),
        msg: format!("malformed JSON: {e}"),
    })
}

pub fn config_diff_ids(config: &ImageConfiguration, id: &Digest) -> Result<Vec<Digest>> {
    config
        .rootfs()
        .diff_ids()
        .iter()
        .enumerate()
        .map(|(i, d)| {
            d.parse::<Digest>().map_err(|e| Error::Config {
                what: id.to_string(),
                msg: format!("rootfs.diff_ids[{i}]: {e}"),
            })
        })
        .collect()
}

fn check_taggable(r: &Reference) -> Result<()> {
    if r.digest().is_some() || r.tag().is_none() {
        return Err(Error::Reference(crate::reference::ReferenceError::Format(
            format!("{r} (refusing to create a tag with a digest reference)"),
        )));
    }
    Ok(())
}

fn check_digest_ref(r: &Reference) -> Result<()> {
    if r.digest().is_none() || r.tag().is_some() {
        return Err(Error::Reference(crate::reference::ReferenceError::Format(
            format!("{r} (a digest reference is name@digest)"),
        )));
    }
    Ok(())
}

fn set_tag(tx: &Tx<'_>, r: &Reference, id: &ImageId, now: i64) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO tags (name, image_id, added_at) VALUES (?1, ?2, ?3)
         ON CONFLICT(name) DO UPDATE SET image_id = excluded.image_id, added_at = excluded.added_at",
        params![r.to_string(), id.to_string(), now],
    )?;
    Ok(())
}

fn tag_target(tx: &Tx<'_>, r: &Reference) -> rusqlite::Result<Option<ImageId>> {
    let s: Option<String> = tx
        .query_row(
            "SELECT image_id FROM tags WHERE name = ?1",
            [r.to_string()],
            |row| row.get(0),
        )
        .optional()?;
    Ok(s.and_then(|s| s.parse().ok()))
}

fn tags_of(tx: &Tx<'_>, id: &ImageId) -> rusqlite::Result<Vec<Reference>> {
    references_of(
        tx,
        "SELECT name FROM tags WHERE image_id = ?1 ORDER BY name",
        id,
    )
}

fn digest_refs_of(tx: &Tx<'_>, id: &ImageId) -> rusqlite::Result<Vec<Reference>> {
    references_of(
        tx,
        "SELECT name FROM digest_refs WHERE image_id = ?1 ORDER BY name",
        id,
    )
}

/// The references `query` (names of image `?1`) finds, in its order.
fn references_of(tx: &Tx<'_>, query: &str, id: &ImageId) -> rusqlite::Result<Vec<Reference>> {
    let mut stmt = tx.prepare(query)?;
    let names: Vec<String> = stmt
        .query_map([id.to_string()], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(names
        .iter()
        .filter_map(|n| Reference::parse(n).ok())
        .collect())
}

fn image_exists(tx: &Tx<'_>, id: &ImageId) -> rusqlite::Result<bool> {
    tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM images WHERE id = ?1)",
        [id.to_string()],
        |r| r.get(0),
    )
}

fn has_children(tx: &Tx<'_>, id: &ImageId) -> rusqlite::Result<bool> {
    tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM images WHERE parent = ?1)",
        [id.to_string()],
        |r| r.get(0),
    )
}

type LayerRow = (String, String, Option<String>, String, String, i64, i64);

fn layer_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<LayerRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

fn layer_record((c, d, p, b, m, s, n): LayerRow) -> Result<LayerRecord> {
    Ok(LayerRecord {
        chain_id: parse_digest_col(&c)?,
        diff_id: parse_digest_col(&d)?,
        parent_chain_id: p.as_deref().map(parse_digest_col).transpose()?,
        blob_digest: parse_digest_col(&b)?,
        media_type: m,
        size: s as u64,
        refcount: n as u64,
    })
}

fn parse_digest_col(s: &str) -> Result<Digest> {
    s.parse().map_err(|e| Error::Config {
        what: "in the image database".into(),
        msg: format!("{e}"),
    })
}

pub(crate) fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
