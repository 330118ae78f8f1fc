//! berth's engine: the life of containers and images between the CLI and
//! the crates below it. It keeps container records beside the image
//! metadata (one SQLite file), assembles root filesystems with `storage`,
//! writes OCI bundles and drives an OCI runtime through its command line.

mod attach;
mod background;
mod binaries;
mod build_support;
mod check;
pub mod containers;
mod copy;
pub mod daemon_config;
pub mod error;
pub mod events;
mod exec;
pub mod filters;
mod images;
mod lifecycle;
pub mod model;
mod networking;
pub mod options;
pub mod registry;
mod rootless;
pub mod runtime;
pub mod spec;
mod stats;
mod summary;
pub mod system;
pub mod units;
mod volume_store;
mod volumes;
pub mod waiting;

pub use attach::{AttachStream, OutputFrame, OutputStream};
pub use background::{Live, LogOptions};
pub use berth_cgroups::Stats as CgroupStats;
pub use berth_network::{
    parse_exposed, parse_publish, NetworkOptions, NetworkRecord, PortBinding, PortSpec, Want,
};
pub use berth_storage::PathStat;
pub use build_support::{BuildNetwork, BuildRun, Committed, SecretFile, Workspace};
pub use check::{CheckOptions, CheckReport, Problem, ProblemKind};
pub use containers::ContainerId;
pub use containers::Event;
pub use copy::CopyEnd;
pub use daemon_config::DaemonConfig;
pub use error::{ConflictKind, EngineError, Object, Result};
pub use exec::{ExecIo, ExecOptions, ExecProcess, ExecProcessConfig, ExecRecord, ExecStartOptions};
pub use filters::{Filters, NetworkSummary};
pub use images::{
    DfContainer, DfImage, DfVolume, DiskUsage, HistoryRow, ImageSummary, LoadResult, RmiEvent,
};
pub use lifecycle::{human_duration, CreateOptions, PROXIED_SIGNALS};
pub use networking::{labels_text, pseudo_network_id, PSEUDO_NETWORKS};
pub use options::HostConfig;
pub use registry::{Progress, PullResult, PushResult, RegistryFlags};
pub use spec::RunOptions;
pub use stats::{NetCounters, RawStats, StatsSample};
pub use summary::{
    ContainerState, ContainerSummary, EndpointIpamConfig, EndpointSettings, ListOptions,
    MountSummary, Networks, Port, SummaryHostConfig, SummaryNetworkSettings,
};
pub use system::{ServerVersion, SystemInfo};
pub use volume_store::VolumeInfo;

use berth_image::{BlobStore, ImageDb};
use berth_storage::LayerStore;
use containers::ContainerDb;
use error::Context;
use std::path::{Path, PathBuf};

/// Where berth keeps its state, and which storage driver to use.
#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    /// `--root` / `BERTH_ROOT`: all state under this directory (volatile
    /// parts in `ROOT/run`). Default: /var/lib/berth and /run/berth.
    pub root: Option<PathBuf>,
    /// `--runroot` / `BERTH_RUNROOT`: the volatile state (default `ROOT/run`
    /// with `--root`, /run/berth without; rootless berth's command line
    /// gives `$XDG_RUNTIME_DIR/berth`).
    pub run: Option<PathBuf>,
    pub storage_driver: Option<String>,
}

/// The archive formats of `save`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveFormat {
    DockerArchive,
    OciArchive,
    OciDir,
}

impl std::str::FromStr for SaveFormat {
    type Err = EngineError;
    fn from_str(s: &str) -> Result<SaveFormat> {
        match s {
            "docker-archive" | "docker" => Ok(SaveFormat::DockerArchive),
            "oci-archive" | "oci" => Ok(SaveFormat::OciArchive),
            "oci-dir" => Ok(SaveFormat::OciDir),
            _ => Err(EngineError::Invalid(format!(
                "unknown format {s:?}: use docker-archive, oci-archive or oci-dir"
            ))),
        }
    }
}

pub struct Engine {
    opts: EngineOptions,
    root: PathBuf,
    run: PathBuf,
    blobs: BlobStore,
    images: ImageDb,
    layers: LayerStore,
    containers: ContainerDb,
    /// Opened on first use (see `networking.rs`).
    net: std::sync::Mutex<Option<berth_network::Manager>>,
    /// The journal of the build this process runs, if any (see
    /// `Engine::build_begin`).
    build_journal: std::sync::Mutex<Option<PathBuf>>,
    /// Running in rootless berth's user namespace (see `rootless.rs`).
    rootless: bool,
    /// The one-shot command line's deferred work: the database log's size,
    /// whose checkpoint goes to the detached worker with the trash (see
    /// `Drop`). None in a long-lived process (the API server), which
    /// checkpoints as SQLite does and deletes a budget of trash itself.
    wal_pages: Option<berth_db::WalPages>,
    /// The cgroup subtree delegated to the user when rootless, found when
    /// first asked (see `Engine::delegation`).
    delegation: std::sync::OnceLock<Option<berth_cgroups::delegation::Delegation>>,
}

/// Log pages past which the command line hands a checkpoint to its detached
/// worker (~5 `run --rm`). The log stays short: the first connection of
/// every berth process reads all of it to rebuild its index.
const CHECKPOINT_PAGES: i32 = 64;

impl From<berth_image::Error> for EngineError {
    fn from(e: berth_image::Error) -> Self {
        use berth_image::Error as E;
        let s = e.to_string();
        match e {
            E::NoSuchImage(_) => EngineError::not_found(Object::Image, s),
            E::Reference(_) | E::AmbiguousImage { .. } | E::Change { .. } | E::Import(_) => {
                EngineError::Invalid(s)
            }
            // Removal refused: the image is used by a container or a child,
            // or tagged in several repositories.
            E::Conflict(_) => {
                let kind = if s.contains("running container") {
                    ConflictKind::Running
                } else {
                    ConflictKind::InUse
                };
                EngineError::conflict(kind, s)
            }
            E::Io { .. }
            | E::DigestMismatch { .. }
            | E::BlobMissing(_)
            | E::Db { .. }
            | E::Archive(_)
            | E::Config { .. } => EngineError::Other(s),
        }
    }
}

impl From<berth_storage::Error> for EngineError {
    fn from(e: berth_storage::Error) -> Self {
        use berth_storage::Error as E;
        let s = e.to_string();
        match e {
            E::UnknownDriver(_) | E::DriverMismatch { .. } | E::InvalidName(_) => {
                EngineError::Invalid(s)
            }
            E::NoSuchPath { .. } => EngineError::not_found(Object::Path, s),
            E::ReadOnlyMount(_) => EngineError::Invalid(s),
            _ => EngineError::Other(s),
        }
    }
}

/// The tables every command opens, checked with one read of the database's
/// stamp (`berth_db::migrate_set`). The network's tables are made and
/// checked when a command first needs them, the build cache's by a build.
const STORE_SCHEMAS: &[&berth_db::Schema] = &[&berth_image::db::SCHEMA, &containers::SCHEMA];

impl Engine {
    /// Whether the root holds a store (its database), without making anything.
    pub fn root_exists(opts: &EngineOptions) -> bool {
        let root = match &opts.root {
            Some(r) => r.clone(),
            None => PathBuf::from("/var/lib/berth"),
        };
        root.join(berth_db::DB_FILE).exists()
    }

    pub fn open(opts: &EngineOptions) -> Result<Engine> {
        let (root, mut run) = match &opts.root {
            Some(r) => {
                let r = std::path::absolute(r).context(|| format!("--root {}", r.display()))?;
                (r.clone(), r.join("run"))
            }
            None => (PathBuf::from("/var/lib/berth"), PathBuf::from("/run/berth")),
        };
        if let Some(r) = &opts.run {
            run = std::path::absolute(r).context(|| format!("--runroot {}", r.display()))?;
        }
        for d in [&root, &run] {
            if private_dir(d)? {
                close_old_state(d);
            }
        }
        let driver = match &opts.storage_driver {
            Some(d) => Some(d.parse::<berth_storage::DriverKind>()?),
            None => None,
        };
        let conn = berth_db::open_shared(&root)
            .map_err(|e| EngineError::Other(format!("database: {e}")))?;
        berth_db::migrate_set(&mut berth_db::lock(&conn), STORE_SCHEMAS)
            .map_err(|e| EngineError::Other(format!("database: {e}")))?;
        let images = ImageDb::on(conn.clone(), &root);
        let containers = ContainerDb::on(conn)?;
        // The log is kept short (see CHECKPOINT_PAGES): checkpointed by a
        // detached process from the command line, by SQLite at the threshold
        // in a long-lived process (not at its default 1000 pages).
        let wal_pages = {
            let conn = images.connection();
            let mut conn = berth_db::lock(&conn);
            if IS_CLI.load(std::sync::atomic::Ordering::Relaxed) {
                Some(
                    berth_db::defer_checkpoints(&mut conn)
                        .map_err(|e| EngineError::Other(format!("database: {e}")))?,
                )
            } else {
                conn.pragma_update(None, "wal_autocheckpoint", CHECKPOINT_PAGES)
                    .map_err(|e| {
                        EngineError::Other(format!("database: wal_autocheckpoint: {e}"))
                    })?;
                None
            }
        };
        let engine = Engine {
            blobs: BlobStore::new(&root)?,
            images,
            layers: LayerStore::open(&root.join("storage"), driver)?,
            containers,
            net: std::sync::Mutex::new(None),
            build_journal: std::sync::Mutex::new(None),
            rootless: berth_runtime::rootless::in_user_namespace(),
            wal_pages,
            delegation: std::sync::OnceLock::new(),
            opts: opts.clone(),
            root,
            run,
        };
        // What a killed build left (one directory listing when nothing).
        engine.sweep_dead_builds();
        Ok(engine)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The options this engine was opened with (for commands that run
    /// berth again, such as a signal proxy).
    pub fn options(&self) -> &EngineOptions {
        &self.opts
    }

    /// The volatile directory (bundles, the runtime's state).
    pub fn run_dir(&self) -> &Path {
        &self.run
    }

    /// Whether this engine runs rootless (in rootless berth's user namespace).
    pub fn rootless(&self) -> bool {
        self.rootless
    }

    /// When rootless, the cgroup v2 subtree delegated to the user that this
    /// process runs in (its containers' cgroups go under it and limits
    /// work); `None` as root and where nothing is delegated.
    pub fn delegation(&self) -> Option<&berth_cgroups::delegation::Delegation> {
        if !self.rootless {
            return None;
        }
        self.delegation
            .get_or_init(berth_cgroups::delegation::detect)
            .as_ref()
    }

    pub fn storage_driver(&self) -> &'static str {
        self.layers.driver().name()
    }
}

impl Drop for Engine {
    /// Hands what the command moved into the storage's trash, and the
    /// database log's checkpoint once the log has grown, to a detached
    /// `berth system delete-trash` (see berth_storage::LayerStore::dispose),
    /// so that neither `rmi` of a big image nor a `run --rm` waits for the
    /// disk: removing a container's tree is ~20 metadata writes, a
    /// checkpoint two or three fsyncs. A long-lived process deletes a budget
    /// of the trash itself and leaves checkpoints to SQLite.
    fn drop(&mut self) {
        let _t = berth_trace::span(
            "storage",
            "hand the trash and the log's checkpoint to a detached process",
        );
        let checkpoint = self
            .wal_pages
            .as_ref()
            .is_some_and(|p| p.get() >= CHECKPOINT_PAGES)
            .then_some(self.root.as_path());
        let mut handed = false;
        self.layers.dispose(self.inline_delete_budget(), |paths| {
            spawn_deleter(paths, checkpoint)?;
            handed = true;
            Ok(())
        });
        if let (Some(root), false) = (checkpoint, handed) {
            if spawn_deleter(&[], Some(root)).is_err() {
                let _ = berth_db::checkpoint(root);
            }
        }
        if self.wal_pages.is_some() {
            // The command line exits right after: closing the connection
            // would free its parsed schema and pages one allocation at a
            // time (~80k instructions, an eighth of opening it), which the
            // exit does at once. It has nothing else to do at close (no
            // checkpoint on close, no transaction open between calls): its
            // locks go with its descriptors, as when a berth is killed.
            std::mem::forget(self.images.connection());
        }
    }
}

impl Engine {
    /// Trash entries this process deletes itself before handing the rest
    /// over: none from the one-shot command line (see
    /// berth_storage::INLINE_DELETE_BUDGET).
    pub(crate) fn inline_delete_budget(&self) -> u64 {
        if self.wal_pages.is_some() {
            0
        } else {
            berth_storage::INLINE_DELETE_BUDGET
        }
    }
}

/// The detached worker's work (`berth system delete-trash`): the trees (see
/// berth_storage::delete_trash), then the checkpoint of the database of
/// `checkpoint` (a root) if given.
pub fn delete_trash(paths: &[PathBuf], checkpoint: Option<&Path>) -> Result<()> {
    berth_storage::delete_trash(paths)?;
    if let Some(root) = checkpoint {
        berth_db::checkpoint(root).map_err(|e| EngineError::Other(format!("checkpoint: {e}")))?;
    }
    Ok(())
}

/// Children that outlive the call that started them (a container's monitor,
/// `system delete-trash`): no caller waits for them. The one-shot CLI leaves
/// them to init when it exits; a long-lived process (the API server) reaps
/// them with [`reap_detached`]. Only these: a blind `waitpid` of its zombies
/// would take the status of a child that a request thread is about to wait
/// for (an exec's runtime, whose wait then fails with ECHILD).
static DETACHED: std::sync::Mutex<Vec<std::process::Child>> = std::sync::Mutex::new(Vec::new());

/// Keeps `child`, which nobody waits for here, for [`reap_detached`].
pub(crate) fn detach_child(child: std::process::Child) {
    if let Ok(mut v) = DETACHED.lock() {
        v.push(child);
    }
}

/// Reaps the detached children that have exited (see `detach_child`).
pub fn reap_detached() {
    if let Ok(mut v) = DETACHED.lock() {
        v.retain_mut(|c| matches!(c.try_wait(), Ok(None)));
    }
}

static IS_CLI: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Tells the engine that this process is the `berth` command line, which
/// runs the detached deleter (`berth system delete-trash`) as
/// `/proc/self/exe`. Without it, `berth` is looked for beside this
/// executable, then on PATH.
pub fn set_cli_executable() {
    IS_CLI.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// The `berth` command line: this process's executable when it is the
/// CLI, else `berth` beside it (the API server), then on PATH.
pub(crate) fn cli_executable() -> PathBuf {
    if IS_CLI.load(std::sync::atomic::Ordering::Relaxed) {
        std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/proc/self/exe"))
    } else {
        binaries::companion_binary("BERTH_CLI", "berth")
    }
}

/// Hands `paths` (and the checkpoint of `checkpoint`'s database) to a
/// detached process, not waited for. A single-threaded process (the command
/// line) with no checkpoint to do forks it: the fork returns at once, where
/// starting `berth system delete-trash` waits for the child's execve of this
/// ~20 MB executable (1–3 ms of a `run --rm`). Otherwise (a checkpoint, the
/// API server's threads) it starts
/// `berth system delete-trash [--checkpoint ROOT] PATHS...` in a process group
/// of its own (a ^C at the terminal does not reach it).
fn spawn_deleter(paths: &[PathBuf], checkpoint: Option<&Path>) -> std::io::Result<()> {
    use std::os::unix::process::CommandExt;
    // Not with a checkpoint: SQLite's state of this process's open database
    // (its locks, its descriptors) must not cross a fork, so that one goes
    // to a new executable.
    if checkpoint.is_none() {
        let forked = berth_storage::fork_detached(|| match berth_storage::delete_trash(paths) {
            Ok(()) => 0,
            Err(_) => 1,
        });
        if let Ok(true) = forked {
            return Ok(());
        }
    }
    let exe = if IS_CLI.load(std::sync::atomic::Ordering::Relaxed) {
        PathBuf::from("/proc/self/exe")
    } else {
        binaries::companion_binary("BERTH_CLI", "berth")
    };
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["system", "delete-trash"]);
    if let Some(root) = checkpoint {
        cmd.arg("--checkpoint").arg(root);
    }
    cmd.arg("--")
        .args(paths)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .map(detach_child)
}

/// Makes `dir` (with missing parents) for the owner alone (0700): what berth keeps
/// there (containers' environment, logs, volumes, writable layers with what a
/// container put in them, setuid binaries included) is out of other users' reach,
/// as Docker's 0710/0701 keep /var/lib/docker. An existing directory open to others
/// (made by an older berth) is closed; true then, so its contents can be closed too.
/// The usual case costs the one `stat` a `create_dir_all` would.
pub(crate) fn private_dir(dir: &Path) -> Result<bool> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {
            // Group traversal (0710) is how `system service` lets its
            // socket's group reach the socket: nothing to close.
            if std::os::unix::fs::MetadataExt::mode(&m) & 0o067 == 0 {
                return Ok(false);
            }
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .context(|| format!("restrict {}", dir.display()))?;
            Ok(true)
        }
        _ => {
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)
                    .context(|| format!("create {}", parent.display()))?;
            }
            match std::fs::DirBuilder::new().mode(0o700).create(dir) {
                Ok(()) => Ok(false),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => private_dir(dir),
                Err(e) => Err(e).context(|| format!("create {}", dir.display())),
            }
        }
    }
}

/// Once, for a root (or its volatile part) an older berth left open: closes the
/// directories and files under it that hold containers' configuration, environment
/// and output (0700 and 0600), so they stay closed should the root be opened again.
fn close_old_state(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let set = |p: &Path, mode: u32| {
        let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode));
    };
    for f in ["berth.db", "berth.db-wal", "berth.db-shm"] {
        let p = dir.join(f);
        if p.exists() {
            set(&p, 0o600);
        }
    }
    for d in ["volumes", "storage", "containers", "runtime", "dns", "run"] {
        let p = dir.join(d);
        if p.is_dir() {
            set(&p, 0o700);
        }
    }
    // Each container's directory (logs, bundle, state) and the files in it.
    for parent in [dir.join("containers"), dir.join("runtime")] {
        for c in std::fs::read_dir(parent).into_iter().flatten().flatten() {
            let cdir = c.path();
            if !cdir.is_dir() {
                continue;
            }
            set(&cdir, 0o700);
            for f in std::fs::read_dir(&cdir).into_iter().flatten().flatten() {
                if f.file_type().is_ok_and(|t| t.is_file()) {
                    set(&f.path(), 0o600);
                }
            }
        }
    }
}

/// Creates (or truncates) `path` for the owner alone (0600) and writes `data`.
pub(crate) fn write_private(path: &Path, data: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(data))
        .context(|| format!("write {}", path.display()))
}

/// `dir` and its missing parents for the owner alone (0700); an existing one is
/// left as it is.
pub(crate) fn create_private_dir_all(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .context(|| format!("create {}", dir.display()))
}

/// Writes `path` through `write` into a temporary file beside it, renamed
/// over `path` only when `write` succeeded: a failure leaves no half file.
pub(crate) fn write_file_atomically(
    path: &Path,
    write: impl FnOnce(&mut dyn std::io::Write) -> Result<()>,
) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = tempfile::NamedTempFile::new_in(dir)
        .context(|| format!("create a file in {}", dir.display()))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, tmp.as_file());
    write(&mut w)?;
    std::io::Write::flush(&mut w).context(|| format!("write {}", path.display()))?;
    drop(w);
    tmp.persist(path)
        .map_err(|e| EngineError::Other(format!("write {}: {}", path.display(), e.error)))?;
    Ok(())
}
