//! The layer store and rootfs assembly of berth: the filesystem mechanics
//! under `<berth root>/storage` (the image crate keeps metadata and reference
//! counts and calls this crate).
//!
//! Layout under the store root:
//! ```text
//! driver                  "overlay" or "vfs": chosen once, when the store is created
//! layers/<id hex>/diff/   the unpacked layer (vfs: a full copy of its parent plus its changes)
//!                 link    short name of the layer's symlink under l/
//!                 parent  parent layer id hex (absent for a base layer)
//!                 size    bytes of file data the layer's tar unpacked
//! l/<short>            -> ../layers/<id hex>/diff (keeps overlay mount options short)
//! containers/<name>/diff/    overlay: upper dir; vfs: the container's whole rootfs
//!                   work/    overlay work dir
//!                   merged/  overlay mount point
//!                   init/    the init layer: etc/hosts, etc/hostname, etc/resolv.conf
//!                   layer    the image's top layer id hex (empty: no image layers)
//! staging/<owner name>/      a layer or container being made (`layer-…`, `ctr-…`)
//! trash/<owner name>/        a layer or container set aside for deletion (`trash-…`)
//! ```
//! How layers stack into a rootfs is the [`LayerDriver`]'s (`driver/`:
//! overlay or vfs, chosen once from `driver`); everything above is the
//! store's, the same for both.
//!
//! Layers and containers appear atomically: each is built in `staging/`
//! under a name that carries its owner (berth-lease: pid and start time) and
//! renamed into place when complete. Removal renames into `trash/` (instant)
//! and deletes the tree later: after the command's work, within a small
//! budget of entries, the rest in a detached process. Whatever a killed
//! process left in `staging/` or `trash/` has no live owner: the next store
//! that opens finds it with one readdir of each (usually empty) directory,
//! adopts it and deletes it the same way.

mod copy;
mod diff;
mod driver;
mod extract;
mod inside;
mod layout;
pub mod node;
mod sys;

pub use diff::{Change, ChangeKind};
pub use driver::LayerDriver;
pub use inside::MountSource;
pub use sys::fork_detached;

/// A path in a container as `docker cp` stats it (see [`LayerStore::path_stat`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathStat {
    /// The last component (`/` for the root).
    pub name: String,
    pub size: i64,
    /// st_mode: type and permission bits.
    pub mode: u32,
    pub mtime_secs: i64,
    pub mtime_nsecs: i64,
    /// For a symlink: the container path it resolves to; empty otherwise.
    pub link_target: PathBuf,
}

use berth_digest::Digest;
use diff::{DiffEntry, OldView, TarWriter};
use extract::Whiteouts;
use layout::{read_trimmed, Layout};
use nix::errno::Errno;
use nix::fcntl::{OFlag, RenameFlags};
use nix::mount::MntFlags;
use std::ffi::OsStr;
use std::fmt;
use std::fs;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

/// Everything that can go wrong; each renders as one line naming the layer,
/// container, entry or file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unknown storage driver {0:?} (expected overlay, overlay2 or vfs)")]
    UnknownDriver(String),
    #[error("storage at {root} uses the {recorded} driver, not {requested}")]
    DriverMismatch {
        root: PathBuf,
        recorded: DriverKind,
        requested: DriverKind,
    },
    #[error("layer {0} not found")]
    LayerNotFound(Digest),
    #[error("cannot apply layer {layer}: parent layer {parent} not found")]
    MissingParent { layer: Digest, parent: Digest },
    #[error("container {0:?} not found")]
    ContainerNotFound(String),
    #[error("container {0:?} already exists")]
    ContainerExists(String),
    #[error("invalid container name {0:?}: use 1-128 characters [A-Za-z0-9_.-], starting with a letter or digit")]
    InvalidName(String),
    #[error("layer {layer}: refusing tar entry {entry:?}: {reason}")]
    UnsafeEntry {
        layer: String,
        entry: String,
        reason: String,
    },
    #[error("layer {layer}: tar entry {entry:?}: {source}")]
    Entry {
        layer: String,
        entry: String,
        source: io::Error,
    },
    #[error("layer {layer}: reading the tar: {source}")]
    Tar { layer: String, source: io::Error },
    #[error("mounting the rootfs of container {name:?} at {path}: {source}")]
    Mount {
        name: String,
        path: PathBuf,
        source: io::Error,
    },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("Could not find the file {path} in container {name}")]
    NoSuchPath { name: String, path: String },
    /// The path (as the container sees it) in a read-only volume or bind.
    #[error("mounted volume is marked read-only")]
    ReadOnlyMount(String),
}

impl Error {
    fn io(path: impl Into<PathBuf>, source: impl Into<io::Error>) -> Error {
        Error::Io {
            path: path.into(),
            source: source.into(),
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// Which [`LayerDriver`] stacks layers into a rootfs (what the store's
/// `driver` file records).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DriverKind {
    /// overlayfs: layers are shared, a container gets an upper dir.
    Overlay,
    /// Plain copies: each layer and container holds a whole tree. Works anywhere.
    Vfs,
}

impl DriverKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DriverKind::Overlay => "overlay",
            DriverKind::Vfs => "vfs",
        }
    }
}

impl fmt::Display for DriverKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DriverKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<DriverKind> {
        match s {
            "overlay" | "overlay2" => Ok(DriverKind::Overlay),
            "vfs" => Ok(DriverKind::Vfs),
            _ => Err(Error::UnknownDriver(s.to_owned())),
        }
    }
}

/// What applying a layer (or writing a diff) produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppliedLayer {
    /// sha256 of the uncompressed tar, as the image config's `rootfs.diff_ids` lists it.
    pub diff_id: Digest,
    /// Length of the tar in bytes.
    pub tar_size: u64,
    /// Bytes of regular file data in the layer (hard links counted once).
    pub size: u64,
}

impl From<extract::Unpacked> for AppliedLayer {
    fn from(u: extract::Unpacked) -> AppliedLayer {
        AppliedLayer {
            diff_id: u.diff_id,
            tar_size: u.tar_size,
            size: u.size,
        }
    }
}

/// A layer unpacked by [`LayerStore::stage_layer`] but not yet in place.
pub struct StagedLayer<'a> {
    store: &'a LayerStore,
    id: Digest,
    parent: Option<Digest>,
    applied: AppliedLayer,
    /// `None`: the layer existed already (only its tar was hashed).
    tmp: Option<TempDir>,
    /// Its `l/` symlink, removed unless the layer is committed.
    link: Option<String>,
}

impl Drop for StagedLayer<'_> {
    fn drop(&mut self) {
        if let Some(link) = self.link.take() {
            let _ = fs::remove_file(self.store.layout.root.join("l").join(link));
        }
    }
}

impl StagedLayer<'_> {
    /// What unpacking measured (the diff_id, to check before committing).
    pub fn applied(&self) -> &AppliedLayer {
        &self.applied
    }

    /// Renames the layer into place. Its parent must be in place by now. If
    /// another process applied the same layer first, its copy is kept.
    pub fn commit(mut self) -> Result<AppliedLayer> {
        let Some(tmp) = self.tmp.take() else {
            return Ok(self.applied.clone());
        };
        let Some(tmp_path) = tmp.0.clone() else {
            return Ok(self.applied.clone());
        };
        let store = self.store;
        if let Some(p) = &self.parent {
            if !store.has_layer(p) {
                return Err(Error::MissingParent {
                    layer: self.id.clone(),
                    parent: p.clone(),
                });
            }
        }
        let dest = store.layer_dir(&self.id);
        match nix::fcntl::renameat2(None, &tmp_path, None, &dest, RenameFlags::RENAME_NOREPLACE) {
            Ok(()) => {
                tmp.keep();
                self.link = None;
                Ok(self.applied.clone())
            }
            // Another process applied the same layer first: keep its copy
            // (drop removes this one's link).
            Err(Errno::EEXIST) | Err(Errno::ENOTEMPTY) => Ok(self.applied.clone()),
            Err(e) => Err(Error::io(&dest, e)),
        }
    }
}

/// The contents of the init layer's files.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InitFiles {
    pub hostname: String,
    pub hosts: String,
    pub resolv_conf: String,
}

/// A container's or an image's directories as overlay stacks them
/// ([`LayerStore::container_graph`], [`LayerStore::layer_graph`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphDirs {
    /// The read-only layers, top first (overlay's lowerdir order).
    pub lower: Vec<PathBuf>,
    pub merged: PathBuf,
    pub upper: PathBuf,
    pub work: PathBuf,
}

/// A layer store rooted at one directory.
#[derive(Debug, Clone)]
pub struct LayerStore {
    layout: Layout,
    /// Chosen once, from the `driver` file.
    driver: Arc<dyn LayerDriver>,
    /// Trees this process moved into `trash/` (or adopted there), to delete
    /// in [`LayerStore::dispose`].
    pending: std::sync::Arc<std::sync::Mutex<Vec<PathBuf>>>,
}

/// Name prefixes of the owned areas (see berth-lease).
pub const STAGE_LAYER: &str = "layer";
pub const STAGE_CONTAINER: &str = "ctr";
/// A container skeleton being made for the pool (see [`fill_pool`]).
pub const STAGE_SKELETON: &str = "skel";
pub const TRASH: &str = "trash";
/// Empty container skeletons kept ready in `pool/` (see [`fill_pool`]).
pub const POOL_SIZE: usize = 2;
/// Entries a long-lived process (the API server) deletes itself before the
/// rest of the trash goes to a detached deleter: a `run --rm`'s writable
/// layer fits. The one-shot CLI hands all of it over (budget 0): each entry
/// costs ~65 µs on ext4 with `discard`, ~20 for a `run --rm`, more than
/// starting the deleter.
pub const INLINE_DELETE_BUDGET: u64 = 256;

/// A staging area or trash entry whose owner is gone, or an old-style
/// temporary directory, found by [`LayerStore::leftovers`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leftover {
    pub path: PathBuf,
    pub kind: LeftoverKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeftoverKind {
    /// In `staging/`: a layer or container that was being made.
    Staging,
    /// In `trash/`: a tree being deleted.
    Trash,
    /// `layers/.tmp-*`, `containers/.tmp-*`, `.rm-*`: an older berth's.
    OldTemp,
}

fn lease_err(e: berth_lease::LeaseError) -> Error {
    match e {
        berth_lease::LeaseError::Io { path, source, .. } => Error::Io { path, source },
    }
}

/// A directory removed on drop unless kept.
struct TempDir(Option<PathBuf>);

impl TempDir {
    fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = fs::remove_dir_all(p);
        }
    }
}

/// `n` random characters from a base32 alphabet.
pub(crate) fn random_name(n: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bytes = vec![0u8; n];
    if fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .is_err()
    {
        // Fall back to the hasher's per-process random keys.
        use std::hash::{BuildHasher, Hasher};
        for (i, b) in bytes.iter_mut().enumerate() {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_usize(i);
            *b = h.finish() as u8;
        }
    }
    bytes
        .iter()
        .map(|b| ALPHABET[(*b % 32) as usize] as char)
        .collect()
}

pub(crate) fn mkdir(p: &Path, mode: u32) -> Result<()> {
    fs::create_dir(p).map_err(|e| Error::io(p, e))?;
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).map_err(|e| Error::io(p, e))
}

/// Whether `p` is the root of a mount: another device than its parent.
pub(crate) fn is_mounted(p: &Path) -> bool {
    let parent = p.parent().unwrap_or(Path::new("/"));
    match (fs::symlink_metadata(p), fs::symlink_metadata(parent)) {
        (Ok(a), Ok(b)) => a.dev() != b.dev(),
        _ => false,
    }
}

/// The image's top layer under the container in `dir` (its `layer` file).
pub(crate) fn container_top(dir: &Path) -> Result<Option<Digest>> {
    let p = dir.join("layer");
    let s = read_trimmed(&p)?;
    if s.is_empty() {
        return Ok(None);
    }
    Digest::from_hex(&s)
        .map(Some)
        .map_err(|e| Error::io(&p, io::Error::new(io::ErrorKind::InvalidData, e)))
}

fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
        && name.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidName(name.to_owned()))
    }
}

impl LayerStore {
    /// Opens (creating if needed) the store at `root`. The driver is chosen
    /// when the store is created and recorded in `root/driver`: `None` picks
    /// overlay if a test overlay mount under `root` works, else vfs. Asking an
    /// existing store for another driver is an error.
    pub fn open(root: &Path, driver: Option<DriverKind>) -> Result<LayerStore> {
        // The store itself is for root alone (0700): the containers' writable
        // layers and merged trees hold whatever they put there, setuid binaries
        // included, and nobody else may reach them.
        {
            use std::os::unix::fs::DirBuilderExt;
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(root)
                .map_err(|e| Error::io(root, e))?;
        }
        for d in ["layers", "l", "containers", "staging", "trash"] {
            let p = root.join(d);
            fs::create_dir_all(&p).map_err(|e| Error::io(&p, e))?;
        }
        let root = fs::canonicalize(root).map_err(|e| Error::io(root, e))?;
        let record = root.join("driver");
        let driver = match fs::read_to_string(&record) {
            Ok(s) => {
                let recorded: DriverKind = s.trim().parse()?;
                if let Some(requested) = driver {
                    if requested != recorded {
                        return Err(Error::DriverMismatch {
                            root,
                            recorded,
                            requested,
                        });
                    }
                }
                recorded
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let d = match driver {
                    Some(d) => d,
                    None if driver::overlay_works(&root) => DriverKind::Overlay,
                    None => DriverKind::Vfs,
                };
                let tmp = root.join(format!(".driver-{}", random_name(10)));
                fs::write(&tmp, d.as_str()).map_err(|e| Error::io(&tmp, e))?;
                // Two processes creating the store at once: the first name wins.
                match nix::fcntl::renameat2(
                    None,
                    &tmp,
                    None,
                    &record,
                    RenameFlags::RENAME_NOREPLACE,
                ) {
                    Ok(()) => d,
                    Err(Errno::EEXIST) => {
                        let _ = fs::remove_file(&tmp);
                        return LayerStore::open(&root, driver);
                    }
                    Err(e) => {
                        let _ = fs::remove_file(&tmp);
                        return Err(Error::io(&record, e));
                    }
                }
            }
            Err(e) => return Err(Error::io(&record, e)),
        };
        let layout = Layout { root };
        let store = LayerStore {
            driver: driver.driver(layout.clone()),
            layout,
            pending: Default::default(),
        };
        store.adopt_orphans();
        Ok(store)
    }

    /// One readdir of `staging/` and of `trash/` (both usually empty): what
    /// a killed process left there is renamed to this process's name in
    /// `trash/` and deleted by [`LayerStore::dispose`]. Never fails: what
    /// cannot be adopted now is found next time.
    fn adopt_orphans(&self) {
        let trash = self.layout.root.join("trash");
        let mut found = Vec::new();
        for prefix in [STAGE_LAYER, STAGE_CONTAINER, STAGE_SKELETON] {
            found.extend(
                berth_lease::orphans(&self.layout.root.join("staging"), prefix).unwrap_or_default(),
            );
        }
        found.extend(berth_lease::orphans(&trash, TRASH).unwrap_or_default());
        if found.is_empty() {
            return;
        }
        let Ok(me) = berth_lease::Owner::current() else {
            return;
        };
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        for p in found {
            // A layer being made may have made its `l/` link (its name is
            // recorded first): it goes with the layer.
            let is_layer = p
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(STAGE_LAYER));
            if is_layer {
                if let Ok(short) = fs::read_to_string(p.join("link")) {
                    let short = short.trim();
                    if !short.is_empty() && !short.contains('/') {
                        let _ = fs::remove_file(self.layout.root.join("l").join(short));
                    }
                }
            }
            // Gone meanwhile: another process adopted it.
            if let Ok(to) = me.move_into(&p, &trash, TRASH) {
                pending.push(to);
            }
        }
    }

    /// Moves `dir` (a layer or container tree) into `trash/` under this
    /// process's name and queues it for [`LayerStore::dispose`].
    fn trash(&self, dir: &Path) -> Result<()> {
        let me = berth_lease::Owner::current().map_err(lease_err)?;
        let to = me
            .move_into(dir, &self.layout.root.join("trash"), TRASH)
            .map_err(lease_err)?;
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(to);
        Ok(())
    }

    /// Deletes what this process put in `trash/`: up to `inline_budget`
    /// entries here (see [`INLINE_DELETE_BUDGET`]), the rest handed to `detach`
    /// (which starts a process that renames each tree to its own name and
    /// deletes it: see [`delete_trash`]). If `detach` fails, the rest is
    /// deleted here. Called when the engine is done with the store.
    pub fn dispose(&self, inline_budget: u64, detach: impl FnOnce(&[PathBuf]) -> io::Result<()>) {
        let pending = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        if pending.is_empty() {
            return;
        }
        let mut budget = inline_budget;
        let mut rest = Vec::new();
        if budget == 0 {
            // Not even a look inside: that is what the deleter is for.
            rest = pending;
        } else {
            for p in pending {
                match berth_lease::remove_within(&p, &mut budget) {
                    Ok(true) => {}
                    Ok(false) => rest.push(p),
                    Err(_) => rest.push(p),
                }
            }
        }
        if rest.is_empty() || detach(&rest).is_ok() {
            return;
        }
        for p in rest {
            let _ = berth_lease::remove(&p);
        }
    }

    /// Whether this process has trash waiting for [`LayerStore::dispose`].
    pub fn has_pending_trash(&self) -> bool {
        !self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }

    /// What a killed process left: staging areas and trash whose owner is
    /// gone, and an older berth's temporary directories in `layers/` and
    /// `containers/` (this reads those two directories: not for the fast path).
    pub fn leftovers(&self) -> Result<Vec<Leftover>> {
        let mut out = Vec::new();
        let staging = self.layout.root.join("staging");
        for prefix in [STAGE_LAYER, STAGE_CONTAINER, STAGE_SKELETON] {
            for path in berth_lease::orphans(&staging, prefix).map_err(lease_err)? {
                out.push(Leftover {
                    path,
                    kind: LeftoverKind::Staging,
                });
            }
        }
        for path in
            berth_lease::orphans(&self.layout.root.join("trash"), TRASH).map_err(lease_err)?
        {
            out.push(Leftover {
                path,
                kind: LeftoverKind::Trash,
            });
        }
        for d in ["layers", "containers"] {
            for prefix in [".tmp-", ".rm-"] {
                for path in
                    berth_lease::orphans(&self.layout.root.join(d), prefix).map_err(lease_err)?
                {
                    out.push(Leftover {
                        path,
                        kind: LeftoverKind::OldTemp,
                    });
                }
            }
        }
        Ok(out)
    }

    /// Removes leftovers (see [`LayerStore::leftovers`]) now, in this
    /// process, and says how much disk that freed.
    pub fn remove_leftovers(&self, list: &[Leftover]) -> Result<berth_lease::Swept> {
        let mut swept = berth_lease::Swept::default();
        for l in list {
            swept += berth_lease::remove(&l.path).map_err(lease_err)?;
        }
        Ok(swept)
    }

    /// Dangling `l/` symlinks older than `min_age` (a killed load's, whose
    /// layer never came; a staged layer's link dangles until it is committed,
    /// hence the age).
    pub fn dangling_links(&self, min_age: std::time::Duration) -> Result<Vec<PathBuf>> {
        let dir = self.layout.root.join("l");
        let mut out = Vec::new();
        for name in list_dir(&dir)? {
            let p = dir.join(&name);
            if fs::metadata(&p).is_ok() {
                continue;
            }
            let old = fs::symlink_metadata(&p)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age >= min_age);
            if old {
                out.push(p);
            }
        }
        out.sort();
        Ok(out)
    }

    /// The image's top layer under container `name`'s writable layer.
    pub fn container_top_layer(&self, name: &str) -> Result<Option<Digest>> {
        let dir = self.existing_container(name)?;
        container_top(&dir)
    }

    /// Whether container `name`'s rootfs is mounted.
    pub fn container_mounted(&self, name: &str) -> bool {
        validate_name(name).is_ok() && self.driver.is_mounted(&self.container_dir(name))
    }

    /// The driver that stacks this store's layers.
    pub fn driver(&self) -> &dyn LayerDriver {
        &*self.driver
    }

    pub fn root(&self) -> &Path {
        &self.layout.root
    }

    /// Takes a ready skeleton out of `pool/` by renaming it to `to` (this
    /// process's staging area): true if one was there. Two processes never
    /// get the same one (the rename of the loser fails).
    fn claim_skeleton(&self, to: &Path) -> bool {
        let _t = berth_trace::span("storage", "take a skeleton from the pool");
        let pool = self.layout.root.join(POOL);
        match fs::read_dir(&pool) {
            Ok(dir) => dir.flatten().any(|e| fs::rename(e.path(), to).is_ok()),
            Err(_) => {
                // No pool yet (or `system reset` emptied it): asked for
                // here, filled by the next deleter.
                let _ = fs::create_dir(&pool);
                false
            }
        }
    }

    /// Moves the pool of skeletons into the trash (`system reset`): the
    /// deleter fills none until a container's creation asks again.
    pub fn empty_pool(&self) -> Result<()> {
        let pool = self.layout.root.join(POOL);
        if pool.exists() {
            self.trash(&pool)?;
        }
        Ok(())
    }

    /// A fresh name in `staging/` owned by this process.
    fn staging_path(&self, prefix: &str) -> Result<PathBuf> {
        let me = berth_lease::Owner::current().map_err(lease_err)?;
        Ok(self.layout.root.join("staging").join(me.name(prefix)))
    }

    fn layer_dir(&self, id: &Digest) -> PathBuf {
        self.layout.layer_dir(id)
    }

    /// The unpacked directory of layer `id` (vfs: the whole tree up to it).
    pub fn layer_diff(&self, id: &Digest) -> PathBuf {
        self.layout.layer_diff(id)
    }

    fn container_dir(&self, name: &str) -> PathBuf {
        self.layout.container_dir(name)
    }

    pub fn has_layer(&self, id: &Digest) -> bool {
        self.layout.has_layer(id)
    }

    /// Unpacks an uncompressed layer tar (the caller decompresses) as layer
    /// `id` on top of `parent`, in one streaming pass. Returns the diff_id
    /// (sha256 of the tar bytes as read) and the sizes.
    ///
    /// Atomic: the layer is unpacked in `layers/.tmp-*` and renamed into
    /// place; on any error the temporary directory is removed and nothing else
    /// changed. A tar whose entries would reach outside the layer (`..`, an
    /// absolute path, through a symlink, a hard link out of the layer) is
    /// refused with an error naming the entry. If the layer exists already
    /// (or another process wins the race to create it) the tar is only
    /// hashed and the existing copy kept.
    pub fn apply_layer(
        &self,
        id: &Digest,
        parent: Option<&Digest>,
        tar: impl Read,
    ) -> Result<AppliedLayer> {
        self.stage_layer(id, parent, tar)?.commit()
    }

    /// The first half of [`LayerStore::apply_layer`]: unpacks the tar into a
    /// temporary directory (synced to disk) without making the layer visible;
    /// [`StagedLayer::commit`] renames it into place, dropping it removes it.
    ///
    /// With overlay a layer's directory does not depend on its parent's, so
    /// the layers of an image can be staged in parallel, in any order, and
    /// then committed bottom first (commit checks that the parent exists).
    /// With vfs the parent must exist already: its tree is copied first.
    pub fn stage_layer(
        &self,
        id: &Digest,
        parent: Option<&Digest>,
        tar: impl Read,
    ) -> Result<StagedLayer<'_>> {
        if self.has_layer(id) {
            let applied = self.existing(id, tar)?;
            return Ok(StagedLayer {
                store: self,
                id: id.clone(),
                parent: parent.cloned(),
                applied,
                tmp: None,
                link: None,
            });
        }
        let tmp_path = self.staging_path(STAGE_LAYER)?;
        mkdir(&tmp_path, 0o700)?;
        let tmp = TempDir(Some(tmp_path.clone()));
        let diff = tmp_path.join("diff");
        mkdir(&diff, 0o755)?;
        let mut tar = tar;
        let applied = self.driver.unpack_layer(&diff, id, parent, &mut tar)?;
        if let Some(p) = parent {
            write_file(&tmp_path.join("parent"), p.hex())?;
        }
        write_file(&tmp_path.join("size"), &applied.size.to_string())?;
        let mut staged = StagedLayer {
            store: self,
            id: id.clone(),
            parent: parent.cloned(),
            applied,
            tmp: Some(tmp),
            link: None,
        };
        // The link's name is recorded in the staging area before the link
        // exists: a process killed from here on leaves a staging area whose
        // sweep (`adopt_orphans`) removes the link too, never a dangling one.
        let link = self.make_link_recorded(id, &tmp_path.join("link"))?;
        staged.link = Some(link.clone());
        // The layer's data reaches the disk before its name appears: a crash
        // can leave a temporary directory, never a half-written layer.
        let dirf = fs::File::open(&tmp_path).map_err(|e| Error::io(&tmp_path, e))?;
        nix::unistd::syncfs(dirf.as_raw_fd()).map_err(|e| Error::io(&tmp_path, e))?;
        Ok(staged)
    }

    fn existing(&self, id: &Digest, tar: impl Read) -> Result<AppliedLayer> {
        let (diff_id, tar_size) = extract::hash_only(tar).map_err(|source| Error::Tar {
            layer: id.short().to_owned(),
            source,
        })?;
        Ok(AppliedLayer {
            diff_id,
            tar_size,
            size: self.layer_size(id)?,
        })
    }

    /// Creates `l/<short>` → `../layers/<id>/diff` under a fresh random
    /// name, each name tried written to `record` first.
    fn make_link_recorded(&self, id: &Digest, record: &Path) -> Result<String> {
        let target = Path::new("../layers").join(id.hex()).join("diff");
        loop {
            let short = random_name(10);
            write_file(record, &short)?;
            let p = self.layout.root.join("l").join(&short);
            match std::os::unix::fs::symlink(&target, &p) {
                Ok(()) => return Ok(short),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(Error::io(&p, e)),
            }
        }
    }

    /// Removes layer `id`: its directory goes into `trash/` at once (the
    /// layer is gone for every reader), its tree is deleted by
    /// [`LayerStore::dispose`]. The caller tracks which layers and containers
    /// use it; this does not check.
    pub fn remove_layer(&self, id: &Digest) -> Result<()> {
        let dir = self.layer_dir(id);
        if !dir.is_dir() {
            return Err(Error::LayerNotFound(id.clone()));
        }
        let link = fs::read_to_string(dir.join("link")).ok();
        self.trash(&dir)?;
        if let Some(link) = link {
            let l = self.layout.root.join("l").join(link.trim());
            if !link.trim().is_empty() {
                let _ = fs::remove_file(l);
            }
        }
        Ok(())
    }

    /// The chain `id`, parent, grandparent... down to the base layer.
    pub fn layer_chain(&self, id: &Digest) -> Result<Vec<Digest>> {
        self.layout.layer_chain(id)
    }

    /// Bytes of file data layer `id` unpacked.
    pub fn layer_size(&self, id: &Digest) -> Result<u64> {
        if !self.has_layer(id) {
            return Err(Error::LayerNotFound(id.clone()));
        }
        let p = self.layer_dir(id).join("size");
        read_trimmed(&p)?.parse().map_err(|_| {
            Error::io(
                &p,
                io::Error::new(io::ErrorKind::InvalidData, "not a number"),
            )
        })
    }

    /// All layers in the store.
    pub fn layers(&self) -> Result<Vec<Digest>> {
        let dir = self.layout.root.join("layers");
        let mut out: Vec<Digest> = list_dir(&dir)?
            .into_iter()
            .filter_map(|n| Digest::from_hex(&n).ok())
            .collect();
        out.sort();
        Ok(out)
    }

    /// All containers in the store.
    pub fn containers(&self) -> Result<Vec<String>> {
        let dir = self.layout.root.join("containers");
        let mut out: Vec<String> = list_dir(&dir)?
            .into_iter()
            .filter(|n| !n.starts_with('.'))
            .collect();
        out.sort();
        Ok(out)
    }

    fn existing_container(&self, name: &str) -> Result<PathBuf> {
        validate_name(name)?;
        let dir = self.container_dir(name);
        if dir.is_dir() {
            Ok(dir)
        } else {
            Err(Error::ContainerNotFound(name.to_owned()))
        }
    }

    /// The directories of container `name` as Docker's overlay2 driver names
    /// them in inspect's `GraphDriver.Data` (overlay: the init layer and the
    /// image's layers below the writable one, top first; the mount point and
    /// overlay's work directory); None with vfs, whose Docker driver reports
    /// no data.
    pub fn container_graph(&self, name: &str) -> Result<Option<GraphDirs>> {
        let dir = self.existing_container(name)?;
        self.driver
            .container_graph(&dir, container_top(&dir)?.as_ref())
    }

    /// Docker's overlay2 `GraphDriver.Data` of an image whose top layer is
    /// `top`: its diff directory as the upper one, the layers below it as
    /// the lower ones (top first), and where a mount of the image would be
    /// made and its work directory (paths in the layer's directory that, as
    /// Docker's, exist only while the layer is mounted: berth never mounts an
    /// image layer); None with vfs.
    pub fn layer_graph(&self, top: &Digest) -> Result<Option<GraphDirs>> {
        self.driver.layer_graph(top)
    }

    /// Where container `name`'s init file `etc/FILE` (`hostname`, `hosts`,
    /// `resolv.conf`) is on the host: the init layer's copy (vfs: the
    /// container's tree).
    pub fn init_file_path(&self, name: &str, file: &str) -> Result<PathBuf> {
        let dir = self.existing_container(name)?;
        Ok(self.driver.init_dir(&dir).join("etc").join(file))
    }

    /// Creates container `name`'s writable layer on top of the image whose top
    /// layer is `image_top` (None: an empty image), with the init layer's files.
    pub fn create_container(
        &self,
        name: &str,
        image_top: Option<&Digest>,
        init: &InitFiles,
    ) -> Result<()> {
        validate_name(name)?;
        let dest = self.container_dir(name);
        if dest.exists() {
            return Err(Error::ContainerExists(name.to_owned()));
        }
        // The image's layers as the driver stacks them (a missing layer
        // fails here, before anything is made).
        let old_dirs = self.driver.image_dirs(image_top)?;
        let tmp_path = self.staging_path(STAGE_CONTAINER)?;
        let from_pool = self.driver.stacks_layers() && self.claim_skeleton(&tmp_path);
        if !from_pool {
            mkdir(&tmp_path, 0o700)?;
        }
        let tmp = TempDir(Some(tmp_path.clone()));
        write_file(
            &tmp_path.join("layer"),
            image_top.map(Digest::hex).unwrap_or(""),
        )?;
        let init_dir = tmp_path.join("init");
        let diff = tmp_path.join("diff");
        if !from_pool {
            mkdir(&init_dir, 0o755)?;
            mkdir(&diff, 0o755)?;
        }
        // The image's /etc (as the container sees it), whose metadata the init layer's etc keeps.
        let view = OldView {
            overlay: self.driver.stacks_layers(),
        };
        let etc_meta = view.lookup_path(&old_dirs, Path::new("etc"));
        write_init(&init_dir, init, etc_meta.as_ref(), from_pool)?;
        self.driver
            .prepare_container(&tmp_path, image_top, init, etc_meta.as_ref())?;
        match nix::fcntl::renameat2(None, &tmp_path, None, &dest, RenameFlags::RENAME_NOREPLACE) {
            Ok(()) => {
                tmp.keep();
                Ok(())
            }
            Err(Errno::EEXIST) | Err(Errno::ENOTEMPTY) => {
                Err(Error::ContainerExists(name.to_owned()))
            }
            Err(e) => Err(Error::io(&dest, e)),
        }
    }

    /// Rewrites container `name`'s init file `etc/FILE` (`hosts`,
    /// `resolv.conf`) in place where the container sees it: its own copy in
    /// the writable layer if it made one, else the init layer's (overlay
    /// reads a lower file through the same inode, so a running container
    /// sees the new text). Nothing is written where the container removed
    /// the file or put anything but a regular file (no path is followed).
    pub fn rewrite_init_file(&self, name: &str, file: &str, contents: &str) -> Result<()> {
        let dir = self.existing_container(name)?;
        // The container's own layer first, then the init layer if that is
        // another directory (vfs: the same).
        let mut bases = vec![dir.join("diff")];
        let init_dir = self.driver.init_dir(&dir);
        if !bases.contains(&init_dir) {
            bases.push(init_dir);
        }
        let rel = Path::new("etc").join(file);
        for base in bases {
            let base_fd = fs::File::open(&base).map_err(|e| Error::io(&base, e))?;
            let p = base.join(&rel);
            let fd = match sys::open_beneath(base_fd.as_fd(), &rel, OFlag::O_PATH) {
                Ok(fd) => fd,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
                // A symlink or a non-directory on the way: the container's own.
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::ELOOP) | Some(libc::ENOTDIR) | Some(libc::EXDEV)
                    ) =>
                {
                    return Ok(())
                }
                Err(e) => return Err(Error::io(&p, e)),
            };
            let st = nix::sys::stat::fstat(fd.as_raw_fd())
                .map_err(|e| Error::io(&p, io::Error::from(e)))?;
            if st.st_mode & libc::S_IFMT != libc::S_IFREG {
                return Ok(());
            }
            let f = sys::reopen(fd.as_fd(), OFlag::O_WRONLY | OFlag::O_TRUNC)
                .map_err(|e| Error::io(&p, e))?;
            let mut f = fs::File::from(f);
            f.write_all(contents.as_bytes())
                .map_err(|e| Error::io(&p, e))?;
            return Ok(());
        }
        Ok(())
    }

    /// Assembles container `name`'s rootfs and returns its path. Idempotent:
    /// an already mounted rootfs is returned as it is. vfs: the container's
    /// own directory, nothing is mounted.
    pub fn mount_container(&self, name: &str) -> Result<PathBuf> {
        self.mount_container_with(name, false)
    }

    /// [`mount_container`](Self::mount_container) with overlay's `volatile`
    /// option, for a container whose writable layer is removed right after it
    /// exits (`run --rm`): nothing of the upper layer is synced, not even at
    /// unmount (~0.5 ms less here), and overlay refuses any later mount of
    /// that work directory. Kernels before 5.10 mount it the usual way.
    pub fn mount_container_volatile(&self, name: &str) -> Result<PathBuf> {
        self.mount_container_with(name, true)
    }

    fn mount_container_with(&self, name: &str, volatile: bool) -> Result<PathBuf> {
        let dir = self.existing_container(name)?;
        self.driver.mount(name, &dir, volatile)
    }

    /// Unmounts container `name`'s rootfs if it is mounted.
    pub fn unmount_container(&self, name: &str) -> Result<()> {
        let dir = self.existing_container(name)?;
        self.driver.unmount(name, &dir)
    }

    /// Unmounts container `name`'s rootfs and moves its layers into `trash/`
    /// (deleted by [`LayerStore::dispose`]).
    pub fn remove_container(&self, name: &str) -> Result<()> {
        let dir = self.existing_container(name)?;
        self.driver.unmount(name, &dir)?;
        self.trash(&dir)
    }

    /// The container's changes, and a descriptor of its new side (the
    /// overlay upper directory or the vfs tree) that the entries are relative to.
    fn diff_entries(&self, name: &str) -> Result<(PathBuf, std::os::fd::OwnedFd, Vec<DiffEntry>)> {
        let dir = self.existing_container(name)?;
        let top = container_top(&dir)?;
        let mut old_dirs = vec![dir.join("init")];
        old_dirs.extend(self.driver.image_dirs(top.as_ref())?);
        let stacked = self.driver.stacks_layers();
        let view = OldView { overlay: stacked };
        let new = dir.join("diff");
        let new_fd: std::os::fd::OwnedFd =
            fs::File::open(&new).map_err(|e| Error::io(&new, e))?.into();
        let mut out = Vec::new();
        diff::walk(
            &view,
            new_fd.as_fd(),
            &old_dirs,
            !stacked,
            Path::new(""),
            &mut out,
        )
        .map_err(|e| Error::io(&new, e))?;
        Ok((new, new_fd, out))
    }

    /// What the container changed, as `docker diff` shows it: sorted by path,
    /// parents of changed entries reported as changed, the init layer's files
    /// left out.
    pub fn changes(&self, name: &str) -> Result<Vec<Change>> {
        let (_, _, entries) = self.diff_entries(name)?;
        let mut out: Vec<Change> = entries
            .into_iter()
            .map(|e| Change {
                kind: e.kind,
                path: format!("/{}", e.rel.display()),
            })
            .collect();
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// Bytes of file data the container added or changed (`SIZE` in `docker ps -s`).
    pub fn container_size(&self, name: &str) -> Result<u64> {
        let (_, root, entries) = self.diff_entries(name)?;
        let mut parents = ParentCache::default();
        let mut total = 0;
        for e in entries.iter().filter(|e| e.kind != ChangeKind::Deleted) {
            let Some((dir, base)) = parents.open(root.as_fd(), &e.rel) else {
                continue;
            };
            if let Ok(st) = nix::sys::stat::fstatat(
                Some(dir.as_raw_fd()),
                base,
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            ) {
                if st.st_mode & libc::S_IFMT == libc::S_IFREG {
                    total += st.st_size.max(0) as u64;
                }
            }
        }
        Ok(total)
    }

    /// Writes the container's changes as a layer tar (whiteouts as `.wh.`
    /// entries, opaque directories as `.wh..wh..opq`), reproducibly: the same
    /// change gives the same bytes. The init layer's files are left out.
    pub fn write_diff(&self, name: &str, out: impl Write) -> Result<AppliedLayer> {
        self.write_diff_clamped(name, out, None)
    }

    /// [`write_diff`](Self::write_diff) with every mtime later than
    /// `clamp_mtime` written as `clamp_mtime` (a build's SOURCE_DATE_EPOCH),
    /// so that the same change gives the same layer whenever it is made.
    pub fn write_diff_clamped(
        &self,
        name: &str,
        out: impl Write,
        clamp_mtime: Option<u64>,
    ) -> Result<AppliedLayer> {
        let (new, root, entries) = self.diff_entries(name)?;
        let mut tw = TarWriter::new(out);
        tw.clamp_mtime = clamp_mtime;
        let mut parents = ParentCache::default();
        for e in &entries {
            let res = match e.kind {
                ChangeKind::Deleted if e.opaque => Ok(()),
                ChangeKind::Deleted => tw.whiteout(&e.rel),
                _ => {
                    // Each entry is opened beneath the upper directory's
                    // descriptor with no symlink in its parents: one swapped
                    // in since the walk makes the entry skipped, never followed.
                    match parents.open(root.as_fd(), &e.rel) {
                        None => Ok(()),
                        Some((dir, base)) => match tw.entry(&e.rel, dir, base) {
                            Ok(_) if e.opaque => tw.opaque(&e.rel),
                            Ok(_) => Ok(()),
                            Err(err) if node::vanished(&err) => Ok(()),
                            Err(err) => Err(err),
                        },
                    }
                }
            };
            res.map_err(|source| Error::io(new.join(&e.rel), source))?;
        }
        let size = tw.unpacked;
        let (diff_id, tar_size) = tw.finish().map_err(|e| Error::io(&new, e))?;
        Ok(AppliedLayer {
            diff_id,
            tar_size,
            size,
        })
    }

    /// Opens `path` (as the container sees it) inside container `name`'s
    /// mounted root filesystem, resolving symlinks as if that were `/`: a
    /// symlink the container planted can never lead out of it.
    fn open_in_rootfs(
        &self,
        name: &str,
        rootfs: &Path,
        path: &Path,
        flags: OFlag,
    ) -> Result<std::os::fd::OwnedFd> {
        let root = fs::File::open(rootfs).map_err(|e| Error::io(rootfs, e))?;
        let rel: PathBuf = path
            .components()
            .filter(|c| matches!(c, std::path::Component::Normal(_)))
            .collect();
        let rel = if rel.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            rel
        };
        match sys::open_in_root(std::os::fd::AsFd::as_fd(&root), &rel, flags) {
            Ok(fd) => Ok(fd),
            Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => Err(Error::NoSuchPath {
                name: name.to_owned(),
                path: path.display().to_string(),
            }),
            Err(e) => Err(Error::io(path, io::Error::from(e))),
        }
    }

    /// Container `name`'s filesystem as `cp` sees it: the mounted rootfs
    /// with `mounts` over it.
    fn view(&self, name: &str, mounts: &[MountSource]) -> Result<inside::View> {
        let rootfs = self.mount_container(name)?;
        let root = fs::File::open(&rootfs).map_err(|e| Error::io(&rootfs, e))?;
        Ok(inside::View::new(root.into(), mounts))
    }

    /// A path that is not there is `NoSuchPath`.
    fn lookup_error(name: &str, path: &Path, e: io::Error) -> Error {
        match e.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::ENOTDIR) => Error::NoSuchPath {
                name: name.to_owned(),
                path: path.display().to_string(),
            },
            _ => Error::io(path, e),
        }
    }

    /// Whether `path` exists in container `name` (with its `mounts`) and is
    /// a directory (symlinks resolved inside the container); None when it
    /// does not exist. The bool says whether it is in a read-only mount.
    pub fn path_is_dir(
        &self,
        name: &str,
        path: &Path,
        mounts: &[MountSource],
    ) -> Result<Option<(bool, bool)>> {
        let view = self.view(name, mounts)?;
        let found = match view.resolve(path, true) {
            Ok(f) => f,
            Err(e) => {
                return match Self::lookup_error(name, path, e) {
                    Error::NoSuchPath { .. } => Ok(None),
                    e => Err(e),
                }
            }
        };
        match found.open(OFlag::O_PATH) {
            Ok(fd) => {
                let st = nix::sys::stat::fstat(fd.as_raw_fd())
                    .map_err(|e| Error::io(path, io::Error::from(e)))?;
                Ok(Some((
                    st.st_mode & libc::S_IFMT == libc::S_IFDIR,
                    found.read_only,
                )))
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// What `docker cp` asks of a path before it copies (the archive API's
    /// `X-Docker-Container-Path-Stat`): the entry itself (a symlink is not
    /// followed), and for a symlink where it leads inside the container
    /// (resolved as the container sees it; never outside its root).
    pub fn path_stat(&self, name: &str, path: &Path, mounts: &[MountSource]) -> Result<PathStat> {
        let view = self.view(name, mounts)?;
        let found = view
            .resolve(path, false)
            .map_err(|e| Self::lookup_error(name, path, e))?;
        let st = nix::sys::stat::fstatat(
            Some(found.parent.as_raw_fd()),
            found.name(),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| Self::lookup_error(name, path, io::Error::from(e)))?;
        let link_target = if st.st_mode & libc::S_IFMT == libc::S_IFLNK {
            match view.resolve(path, true) {
                Ok(f) => f.path,
                // A link that leads nowhere (yet): where it points, read
                // as the container would (Docker resolves it in scope
                // without needing the target).
                Err(_) => {
                    let t = nix::fcntl::readlinkat(Some(found.parent.as_raw_fd()), found.name())
                        .map(PathBuf::from)
                        .unwrap_or_default();
                    let parent = found.path.parent().unwrap_or(Path::new("/"));
                    inside::clean(&Path::new("/").join(parent).join(t))
                }
            }
        } else {
            PathBuf::new()
        };
        Ok(PathStat {
            name: path
                .file_name()
                .map_or_else(|| "/".to_owned(), |n| n.to_string_lossy().into_owned()),
            size: st.st_size,
            mode: st.st_mode,
            mtime_secs: st.st_mtime,
            mtime_nsecs: st.st_mtime_nsec,
            link_target,
        })
    }

    /// `docker cp - CONTAINER:DIR`: unpacks `tar` into the directory `dir`
    /// of the container (resolved through its `mounts`: a volume's or a
    /// bind's directory is written, not the layer under it), with the same
    /// safety as a layer (every entry beneath the directory, no symlink
    /// followed) and `.wh.` names taken literally.
    pub fn copy_in(
        &self,
        name: &str,
        dir: &Path,
        mounts: &[MountSource],
        tar: impl Read,
    ) -> Result<()> {
        let view = self.view(name, mounts)?;
        let found = view
            .resolve(dir, true)
            .map_err(|e| Self::lookup_error(name, dir, e))?;
        if found.read_only {
            return Err(Error::ReadOnlyMount(found.path.display().to_string()));
        }
        let fd = found
            .open(OFlag::O_PATH | OFlag::O_DIRECTORY)
            .map_err(|e| Self::lookup_error(name, dir, e))?;
        let at = |fd: &std::os::fd::OwnedFd| {
            PathBuf::from(format!(
                "/proc/self/fd/{}",
                std::os::fd::AsRawFd::as_raw_fd(fd)
            ))
        };
        if !view.mounts_below(&found.path) {
            return extract::unpack(&at(&fd), "copy", Whiteouts::Literal, tar).map(drop);
        }
        // Directory mounts below the target: the tar is spooled, then each
        // part unpacked where the container sees it (a volume's part into
        // the volume). A file bound below is written as Docker's would not
        // either (it replaces the file in the layer under the bind).
        let mut tar = tar;
        let mut spool = tempfile::tempfile().map_err(|e| Error::io(dir, e))?;
        io::copy(&mut tar, &mut spool).map_err(|e| Error::io(dir, e))?;
        let mut regions = vec![found.path.clone()];
        let mut fds = vec![(fd, false)];
        for m in &view.mounts {
            let d = m.destination.clone();
            if d == found.path || !d.starts_with(&found.path) || regions.contains(&d) {
                continue;
            }
            if let Ok((mfd, n)) = inside::View::open_mount(m) {
                if n == "." {
                    regions.push(d);
                    fds.push((mfd, m.read_only));
                }
            }
        }
        let parts =
            inside::split_tar(&mut spool, &found.path, &regions).map_err(|e| Error::io(dir, e))?;
        if let Some(i) = parts
            .iter()
            .zip(&fds)
            .position(|(p, (_, ro))| p.is_some() && *ro)
        {
            return Err(Error::ReadOnlyMount(regions[i].display().to_string()));
        }
        for (part, (fd, _)) in parts.into_iter().zip(&fds) {
            if let Some(part) = part {
                extract::unpack(&at(fd), "copy", Whiteouts::Literal, part)?;
            }
        }
        Ok(())
    }

    /// `docker cp CONTAINER:PATH -`: `path` (a file, a symlink as such, or a
    /// directory with everything below it, mounts included) as a tar whose
    /// entries start with its last component. The path is resolved through
    /// the container's `mounts`.
    pub fn copy_out(
        &self,
        name: &str,
        path: &Path,
        mounts: &[MountSource],
        out: impl Write,
    ) -> Result<()> {
        let view = self.view(name, mounts)?;
        let base = path
            .file_name()
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."));
        // The last component is taken as itself (a symlink is copied as a
        // symlink).
        let found = view
            .resolve(path, false)
            .map_err(|e| Self::lookup_error(name, path, e))?;
        let mut tw = TarWriter::new(out);
        let res = match tw.entry(&base, found.parent.as_fd(), found.name()) {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                return Err(Error::NoSuchPath {
                    name: name.to_owned(),
                    path: path.display().to_string(),
                })
            }
            Err(e) => Err(e),
            Ok(sub) => sub
                .map_or(Ok(()), |d| {
                    if view.mounts_below(&found.path) {
                        inside::write_tree(&view, &mut tw, d.as_fd(), &base, &found.path)
                    } else {
                        diff::write_tree(&mut tw, d.as_fd(), &base)
                    }
                })
                .and_then(|()| tw.finish().map(drop)),
        };
        res.map_err(|e| Error::io(path, e))
    }

    /// Docker's population of a new volume at create: when container
    /// `name`'s filesystem holds a directory at `path` (symlinks resolved
    /// inside it), its contents go into `dst` (an empty directory) and `dst`
    /// takes its owner and mode. Returns whether there was a directory.
    /// Mounts the rootfs for the time it takes if needed.
    pub fn populate_volume(&self, name: &str, path: &Path, dst: &Path) -> Result<bool> {
        let dir = self.existing_container(name)?;
        let was_mounted = self.driver.is_mounted(&dir);
        let rootfs = self.mount_container(name)?;
        let res = match self.open_in_rootfs(name, &rootfs, path, OFlag::O_PATH) {
            Err(Error::NoSuchPath { .. }) => Ok(false),
            Err(e) => Err(e),
            Ok(fd) => nix::sys::stat::fstat(fd.as_raw_fd())
                .map_err(io::Error::from)
                .and_then(|st| {
                    if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
                        return Ok(false);
                    }
                    let src = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
                    copy::populate(&src, dst, st.st_uid, st.st_gid, st.st_mode).map(|()| true)
                })
                .map_err(|e| Error::io(dst, e)),
        };
        if !was_mounted {
            self.driver.unmount(name, &dir)?;
        }
        res
    }

    /// Writes the container's whole filesystem (the merged view) as a tar, as
    /// `docker export` does. Mounts the rootfs for the time it takes if needed.
    pub fn export(&self, name: &str, out: impl Write) -> Result<()> {
        let dir = self.existing_container(name)?;
        let was_mounted = self.driver.is_mounted(&dir);
        let rootfs = self.mount_container(name)?;
        let mut tw = TarWriter::new(out);
        let res = fs::File::open(&rootfs)
            .and_then(|root| diff::write_tree(&mut tw, root.as_fd(), Path::new("")))
            .and_then(|()| tw.finish().map(|_| ()))
            .map_err(|e| Error::io(&rootfs, e));
        if !was_mounted {
            self.driver.unmount(name, &dir)?;
        }
        res
    }
}

/// Unmounts whatever is mounted at `path` (lazily when busy), as often as
/// it is mounted there.
pub fn unmount_all(path: &Path) -> Result<()> {
    for _ in 0..64 {
        match nix::mount::umount2(path, MntFlags::empty()) {
            Ok(()) => continue,
            Err(Errno::EBUSY) => {
                nix::mount::umount2(path, MntFlags::MNT_DETACH).map_err(|e| Error::io(path, e))?
            }
            // Not (or no longer) a mount point.
            Err(Errno::EINVAL) | Err(Errno::ENOENT) => return Ok(()),
            Err(e) => return Err(Error::io(path, e)),
        }
    }
    Ok(())
}

/// The detached deleter's work (`berth` runs it in a process of its own):
/// each path, a tree in some store's `trash/`, is renamed to this process's
/// name first (so that a sweep leaves it alone while this runs, and finds it
/// if this is killed), then deleted. Paths already gone are skipped.
pub fn delete_trash(paths: &[PathBuf]) -> Result<()> {
    let me = berth_lease::Owner::current().map_err(lease_err)?;
    let mut mine = Vec::new();
    for p in paths {
        let in_trash = p
            .parent()
            .and_then(|d| d.file_name())
            .is_some_and(|n| n == "trash");
        let named = p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(TRASH));
        if !in_trash || !named {
            return Err(Error::io(
                p,
                io::Error::new(io::ErrorKind::InvalidInput, "not a trash entry"),
            ));
        }
        match me.rename_to(p, TRASH) {
            Ok(to) => mine.push(to),
            Err(berth_lease::LeaseError::Io { source, .. })
                if source.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(lease_err(e)),
        }
    }
    // The store's pool of container skeletons first, for the next command
    // (and so that an empty trash means this worker made them all). A pool
    // that cannot be filled (a full disk) never keeps the trash from going.
    if let Some(store) = paths
        .first()
        .and_then(|p| p.parent())
        .and_then(Path::parent)
    {
        let _ = fill_pool(store);
    }
    // Nothing to count here: as `rm -rf`, no walk but the removal's.
    for p in &mine {
        let mut unlimited = u64::MAX;
        berth_lease::remove_within(p, &mut unlimited).map_err(lease_err)?;
    }
    Ok(())
}

/// The pool of container skeletons: `create_container` renames one into
/// its staging area instead of making the directories and files itself.
const POOL: &str = "pool";

/// Tops up the pool of the overlay store at `root` (a store's `storage`
/// directory), once a container's creation asked for one (made `pool/`),
/// to [`POOL_SIZE`] empty container skeletons: the directories
/// and empty files `create_container` makes (`layer`, `init/etc/{hostname,
/// hosts,resolv.conf}`, `diff`, `work`, `merged`), made here by the detached
/// deleter rather than on a command's path. Why: on ext4 without a journal
/// (this project's VMs) every new inode is found by stepping over each one
/// freed in the last 30 s to 5 min (`recently_deleted`), so after many
/// containers came and went ten mkdirs and creates cost milliseconds; a
/// `run --rm` that takes a skeleton makes none of them. Each is made in
/// `staging/` under this process's name, then renamed into `pool/` complete:
/// a killed filler leaves an orphan that the next command sweeps. Stores
/// of the vfs driver have no pool.
pub fn fill_pool(root: &Path) -> Result<()> {
    match fs::read_to_string(root.join("driver")) {
        Ok(d) if d.trim() == DriverKind::Overlay.as_str() => {}
        _ => return Ok(()),
    }
    let pool = root.join(POOL);
    let have = match fs::read_dir(&pool) {
        Ok(d) => d.count(),
        // Nobody asked for one (see LayerStore::claim_skeleton).
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(&pool, e)),
    };
    use std::os::unix::fs::OpenOptionsExt;
    let me = berth_lease::Owner::current().map_err(lease_err)?;
    for _ in have..POOL_SIZE {
        let tmp = root.join("staging").join(me.name(STAGE_SKELETON));
        let made = TempDir(Some(tmp.clone()));
        mkdir(&tmp, 0o700)?;
        write_file(&tmp.join("layer"), "")?;
        for (d, mode) in [
            ("init", 0o755),
            ("init/etc", 0o755),
            ("diff", 0o755),
            ("work", 0o700),
            ("merged", 0o755),
        ] {
            mkdir(&tmp.join(d), mode)?;
        }
        for f in ["hostname", "hosts", "resolv.conf"] {
            let p = tmp.join("init/etc").join(f);
            fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o644)
                .open(&p)
                .map_err(|e| Error::io(&p, e))?;
        }
        let ready = pool.join(format!("{STAGE_SKELETON}-{}", random_name(16)));
        fs::rename(&tmp, &ready).map_err(|e| Error::io(&ready, e))?;
        made.keep();
    }
    Ok(())
}

/// The parent directory of a path in a tree, opened beneath the tree's
/// root with no symlink and no `..` on the way (`openat2` with
/// `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`); the last one is kept, since
/// entries come sorted.
#[derive(Default)]
struct ParentCache {
    last: Option<(PathBuf, Option<std::os::fd::OwnedFd>)>,
}

impl ParentCache {
    /// The parent's descriptor and the last component of `rel`; None when
    /// the parent is gone or is no longer a plain directory.
    fn open<'a>(
        &'a mut self,
        root: std::os::fd::BorrowedFd<'a>,
        rel: &'a Path,
    ) -> Option<(std::os::fd::BorrowedFd<'a>, &'a OsStr)> {
        let base = rel.file_name()?;
        let parent = rel.parent().unwrap_or(Path::new(""));
        let hit = matches!(&self.last, Some((p, _)) if p == parent);
        if !hit {
            let fd = if parent.as_os_str().is_empty() {
                None
            } else {
                sys::open_beneath(root, parent, OFlag::O_PATH | OFlag::O_DIRECTORY).ok()
            };
            // An empty parent is the root itself.
            if fd.is_none() && !parent.as_os_str().is_empty() {
                self.last = Some((parent.to_owned(), None));
                return None;
            }
            self.last = Some((parent.to_owned(), fd));
        }
        match &self.last {
            Some((_, Some(fd))) => Some((fd.as_fd(), base)),
            Some((p, None)) if p.as_os_str().is_empty() => Some((root, base)),
            _ => None,
        }
    }
}

fn list_dir(dir: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let e = e.map_err(|e| Error::io(dir, e))?;
        if let Some(s) = e.file_name().to_str() {
            out.push(s.to_owned());
        }
    }
    Ok(out)
}

fn write_file(p: &Path, contents: &str) -> Result<()> {
    fs::write(p, contents).map_err(|e| Error::io(p, e))
}

/// Writes the init files under `dir/etc`, creating `etc` with the image's
/// metadata if it is missing. `etc` must not be a symlink.
pub(crate) fn write_init(
    dir: &Path,
    init: &InitFiles,
    etc_meta: Option<&fs::Metadata>,
    from_pool: bool,
) -> Result<()> {
    let root = fs::File::open(dir).map_err(|e| Error::io(dir, e))?;
    let etc = dir.join("etc");
    let open_etc = || {
        sys::open_beneath(
            root.as_fd(),
            Path::new("etc"),
            OFlag::O_RDONLY | OFlag::O_DIRECTORY,
        )
    };
    // Whether etc is the init layer's own (made here, or the skeleton's
    // 0755 root one): it then gets the image's /etc metadata.
    let (etc_fd, own_etc) = match open_etc() {
        Ok(fd) => (fd, from_pool),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
            fs::create_dir(&etc).map_err(|e| Error::io(&etc, e))?;
            (open_etc().map_err(|e| Error::io(&etc, e))?, true)
        }
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(Error::io(
                &etc,
                io::Error::other("the image's /etc is a symlink; cannot write the init files"),
            ))
        }
        Err(e) => return Err(Error::io(&etc, e)),
    };
    if own_etc {
        let (mode, uid, gid) = etc_meta
            .map(|m| (m.mode() & 0o7777, m.uid(), m.gid()))
            .unwrap_or((0o755, 0, 0));
        nix::sys::stat::fchmod(
            etc_fd.as_raw_fd(),
            nix::sys::stat::Mode::from_bits_truncate(mode),
        )
        .map_err(|e| Error::io(&etc, io::Error::from(e)))?;
        nix::unistd::fchown(
            etc_fd.as_raw_fd(),
            Some(nix::unistd::Uid::from_raw(uid)),
            Some(nix::unistd::Gid::from_raw(gid)),
        )
        .map_err(|e| Error::io(&etc, io::Error::from(e)))?;
    }
    for (name, contents) in [
        ("hostname", format!("{}\n", init.hostname.trim_end())),
        ("hosts", init.hosts.clone()),
        ("resolv.conf", init.resolv_conf.clone()),
    ] {
        let p = etc.join(name);
        // A skeleton's empty file is written over (no new inode: see
        // fill_pool); anything else is replaced by a new file.
        let reused = if from_pool {
            match sys::open_at(
                etc_fd.as_fd(),
                Path::new(name),
                OFlag::O_WRONLY | OFlag::O_TRUNC,
                0,
            ) {
                Ok(fd) => Some(fd),
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => None,
                Err(e) => return Err(Error::io(&p, e)),
            }
        } else {
            None
        };
        let fd = match reused {
            Some(fd) => fd,
            None => {
                match extract::remove_entry(etc_fd.as_fd(), OsStr::new(name)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::io(&p, e)),
                }
                sys::open_at(
                    etc_fd.as_fd(),
                    Path::new(name),
                    OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL,
                    0o644,
                )
                .map_err(|e| Error::io(&p, e))?
            }
        };
        let mut f = fs::File::from(fd);
        f.write_all(contents.as_bytes())
            .map_err(|e| Error::io(&p, e))?;
        nix::sys::stat::fchmod(
            f.as_raw_fd(),
            nix::sys::stat::Mode::from_bits_truncate(0o644),
        )
        .map_err(|e| Error::io(&p, e))?;
    }
    if let Some(m) = etc_meta {
        // Keep the image's mtime on etc so that it does not show as changed.
        let t = nix::sys::time::TimeSpec::new(m.mtime(), m.mtime_nsec());
        nix::sys::stat::futimens(etc_fd.as_raw_fd(), &t, &t).map_err(|e| Error::io(&etc, e))?;
    }
    Ok(())
}

/// The text of the regular file `path` inside the root filesystem `rootfs`,
/// resolved as if `rootfs` were `/` (a symlink an image or a container made
/// cannot lead out of it), at most `limit` bytes; empty when it is missing,
/// not a regular file, or not readable (what /etc/passwd lookups want).
pub fn read_config_file(rootfs: &Path, path: &str, limit: u64) -> String {
    let Ok(root) = fs::File::open(rootfs) else {
        return String::new();
    };
    // Non-blocking: a FIFO planted at the path must not hang the reader.
    let Ok(fd) = sys::open_in_root(
        root.as_fd(),
        Path::new(path.trim_start_matches('/')),
        OFlag::O_RDONLY | OFlag::O_NONBLOCK,
    ) else {
        return String::new();
    };
    let file = fs::File::from(fd);
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        return String::new();
    }
    let mut text = String::new();
    let _ = file.take(limit).read_to_string(&mut text);
    text
}
