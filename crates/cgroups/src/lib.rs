//! Control groups for berth.
//!
//! One object-safe trait, [`CgroupManager`], with two backends:
//! [`v1::V1Manager`] (cgroup v1, including the "hybrid" layout where a cgroup2
//! hierarchy is mounted at `/sys/fs/cgroup/unified`) and [`v2::V2Manager`]
//! (unified hierarchy). [`create_manager`] picks the backend from what the host
//! mounts; a manager holds nothing but paths, so another process (runtime
//! `kill`, `pause`, `delete`) gets an equivalent manager by calling
//! [`open_manager`] with the same `cgroupsPath`.
//!
//! Typical use: `create()`, `apply(resources)` (on error: `destroy()`),
//! `add_task(pid)`; later `freeze()`/`thaw()`, `stats()`, `kill_all()`, and
//! finally `destroy()`.

use std::collections::BTreeMap;
use std::io;
use std::path::{Component, Path, PathBuf};

use nix::sys::signal::Signal;
use oci_spec::runtime::LinuxResources;

pub mod delegation;
mod devices;
mod mountinfo;
mod stats;
mod sys;
mod util;
pub mod v1;
pub mod v2;

pub use stats::{
    BlkioEntry, BlkioStats, CpuStats, CpuUsage, HugetlbStats, MemoryEntry, MemoryStats, PidsStats,
    Stats, Throttling,
};

/// Where the cgroup filesystems are expected.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Errors. Each message is one line naming the cgroup file and/or OCI field.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// A systemd-style "slice:prefix:name" cgroupsPath.
    #[error("cgroup: systemd cgroupsPath {0:?} (\"slice:prefix:name\") is not supported; use a path such as \"/berth/<id>\"")]
    SystemdUnsupported(String),
    /// A cgroupsPath that cannot be used.
    #[error("cgroup: invalid cgroupsPath {path:?}: {reason}")]
    InvalidPath { path: String, reason: String },
    /// The host's cgroup layout could not be determined.
    #[error("cgroup: {0}")]
    Detect(String),
    /// A file operation failed, e.g. `cgroup: cannot set memory limit
    /// (linux.resources.memory.limit) in /sys/fs/cgroup/memory/berth/x: write
    /// memory.limit_in_bytes: Device or resource busy`.
    #[error("cgroup: cannot {action} in {}: {op}: {}", dir.display(), errno_text(source))]
    Io {
        action: String,
        dir: PathBuf,
        op: String,
        #[source]
        source: io::Error,
    },
    /// A requested limit the host cannot enforce (controller not mounted, file
    /// missing), e.g. `linux.resources.blockIO.leafWeight: the host's blkio
    /// controller has no blkio.leaf_weight`.
    #[error("{field}: {reason}")]
    Unsupported { field: String, reason: String },
    /// A requested value that is out of range or malformed.
    #[error("{field}: invalid value: {reason}")]
    InvalidValue { field: String, reason: String },
    /// A bounded wait ran out (freezing, for instance).
    #[error("cgroup: {what} in {}: timed out after {ms} ms", dir.display())]
    Timeout { what: String, dir: PathBuf, ms: u64 },
    /// Loading or attaching the cgroup v2 eBPF device filter failed.
    #[error("cgroup: cannot {action} (linux.resources.devices) on {}: {}{}", dir.display(), errno_text(source), if log.is_empty() { String::new() } else { format!(" (verifier: {log})") })]
    Bpf {
        action: String,
        dir: PathBuf,
        #[source]
        source: io::Error,
        log: String,
    },
}

/// "Device or resource busy" rather than "... (os error 16)".
fn errno_text(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => nix::errno::Errno::from_raw(n).desc().to_string(),
        None => e.to_string(),
    }
}

/// Result of [`CgroupManager::freezer_state`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FreezerState {
    /// Running (also reported while a freeze is still in progress).
    Thawed,
    /// Every process of the cgroup is frozen.
    Frozen,
}

/// Which cgroup version a manager drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    /// cgroup v1 (possibly hybrid with a cgroup2 mount for hugetlb/devices).
    V1,
    /// Unified cgroup v2 hierarchy.
    V2,
}

/// Operations on one container's cgroup (in every hierarchy).
///
/// A manager is cheap: it holds paths only. No method moves the calling
/// process into the cgroup.
pub trait CgroupManager: std::fmt::Debug + Send + Sync {
    /// The cgroup version driven.
    fn version(&self) -> CgroupVersion;

    /// Creates the cgroup directory (and missing ancestors) in every
    /// hierarchy, preparing what is needed before a task can join (cpuset
    /// cpus/mems in v1, `cgroup.subtree_control` of ancestors in v2).
    /// Existing directories are fine.
    fn create(&self) -> Result<(), CgroupError>;

    /// Moves process `pid` (all its threads) into the cgroup in every
    /// hierarchy by writing `cgroup.procs`.
    fn add_task(&self, pid: i32) -> Result<(), CgroupError> {
        self.add_task_v1(pid)?;
        self.add_task_unified(pid)
    }

    /// `add_task` for the v1 hierarchies only (nothing on a v2 host).
    fn add_task_v1(&self, pid: i32) -> Result<(), CgroupError>;

    /// `add_task` for the cgroup2 hierarchy only (the unified hierarchy of a
    /// hybrid host; nothing when there is none).
    fn add_task_unified(&self, pid: i32) -> Result<(), CgroupError>;

    /// The cgroup2 directory of this cgroup, where a new process can be born
    /// with `clone3(CLONE_INTO_CGROUP)`; `None` when the host has no cgroup2
    /// hierarchy.
    fn unified_dir(&self) -> Option<PathBuf>;

    /// Moves the calling thread, which must be the only thread of its
    /// process, into the cgroup in every v1 hierarchy by writing "0" to
    /// `tasks` (nothing on a v2 host).
    ///
    /// Why not `add_task` from the parent: moving a whole process (any write
    /// to `cgroup.procs`, or another task's pid to `tasks`) takes the
    /// kernel's global threadgroup lock, whose write side waits for an RCU
    /// grace period: about 6 ms on a 2-vCPU VM, once per container start. A
    /// thread moving itself needs no such lock.
    fn enter_v1_self(&self) -> Result<(), CgroupError>;

    /// Writes the limits of `resources`. Anything requested that the host
    /// cannot enforce is an error naming the OCI field; the caller should then
    /// `destroy()`.
    fn apply(&self, resources: &LinuxResources) -> Result<(), CgroupError>;

    /// Freezes every process of the cgroup and waits (bounded) until the kernel
    /// reports the cgroup frozen.
    fn freeze(&self) -> Result<(), CgroupError>;

    /// Thaws the cgroup.
    fn thaw(&self) -> Result<(), CgroupError>;

    /// Whether the cgroup is frozen.
    fn freezer_state(&self) -> Result<FreezerState, CgroupError>;

    /// Every process in the cgroup and its descendants.
    fn pids(&self) -> Result<Vec<i32>, CgroupError>;

    /// Resource usage.
    fn stats(&self) -> Result<Stats, CgroupError>;

    /// Number of processes the kernel OOM killer killed in this cgroup
    /// (v1 `memory.oom_control` `oom_kill`, v2 `memory.events` `oom_kill`);
    /// 0 when the host does not report it.
    fn oom_kill_count(&self) -> Result<u64, CgroupError>;

    /// Whether the OOM killer killed a process of this cgroup.
    fn oom_killed(&self) -> Result<bool, CgroupError> {
        Ok(self.oom_kill_count()? > 0)
    }

    /// Sends `signal` to every process of the cgroup (v2 with SIGKILL uses
    /// `cgroup.kill`; v1 with SIGKILL freezes first so nothing escapes by
    /// forking). Does not wait for the processes to exit.
    fn kill_all(&self, signal: Signal) -> Result<(), CgroupError>;

    /// Removes the cgroup directory (and descendant cgroups) in every
    /// hierarchy, retrying briefly on EBUSY while the last processes exit.
    /// Missing directories are fine. Ancestors created by `create()` of this
    /// same manager value are removed too when empty; pre-existing ones never.
    fn destroy(&self) -> Result<(), CgroupError>;

    /// The cgroup directory per hierarchy, keyed by controller list (v1, e.g.
    /// "cpu,cpuacct", "name=systemd", "unified") or "unified" (v2).
    fn paths(&self) -> BTreeMap<String, PathBuf>;

    /// Whether the cgroup directory exists (in the primary hierarchy).
    fn exists(&self) -> bool {
        self.paths().values().next().is_some_and(|p| p.exists())
    }
}

/// Normalizes an OCI `linux.cgroupsPath` into a path relative to the root of
/// each hierarchy. Empty → "berth/<container_id>". Absolute and relative
/// paths are both taken relative to the hierarchy roots.
pub fn normalize_cgroups_path(
    cgroups_path: &str,
    container_id: &str,
) -> Result<PathBuf, CgroupError> {
    let invalid = |reason: &str| CgroupError::InvalidPath {
        path: cgroups_path.to_string(),
        reason: reason.to_string(),
    };
    if cgroups_path.is_empty() {
        if container_id.is_empty()
            || container_id.contains('/')
            || container_id == "."
            || container_id == ".."
        {
            return Err(CgroupError::InvalidPath {
                path: String::new(),
                reason: format!("empty, and container id {container_id:?} cannot name a cgroup"),
            });
        }
        return Ok(Path::new("berth").join(container_id));
    }
    if cgroups_path.contains(':') {
        return Err(CgroupError::SystemdUnsupported(cgroups_path.to_string()));
    }
    if cgroups_path.contains('\0') {
        return Err(invalid("contains a NUL byte"));
    }
    let mut rel = PathBuf::new();
    for c in Path::new(cgroups_path).components() {
        match c {
            Component::Normal(n) => rel.push(n),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir => return Err(invalid("\"..\" is not allowed")),
            Component::Prefix(_) => return Err(invalid("unexpected prefix")),
        }
    }
    if rel.as_os_str().is_empty() {
        return Err(invalid("names the root cgroup"));
    }
    Ok(rel)
}

/// Creates a manager for `cgroups_path` (OCI `linux.cgroupsPath`; empty means
/// "/berth/<container_id>"), choosing v1 or v2 from the filesystem mounted at
/// /sys/fs/cgroup. Nothing is created on disk until [`CgroupManager::create`].
pub fn create_manager(
    cgroups_path: &str,
    container_id: &str,
) -> Result<Box<dyn CgroupManager>, CgroupError> {
    let rel = normalize_cgroups_path(cgroups_path, container_id)?;
    let root = Path::new(CGROUP_ROOT);
    let fs = nix::sys::statfs::statfs(root)
        .map_err(|e| CgroupError::Detect(format!("cannot statfs {CGROUP_ROOT}: {}", e.desc())))?;
    let ty = fs.filesystem_type();
    if ty == nix::sys::statfs::CGROUP2_SUPER_MAGIC {
        Ok(Box::new(v2::V2Manager::with_rel(root, rel)))
    } else if ty == nix::sys::statfs::TMPFS_MAGIC {
        Ok(Box::new(v1::V1Manager::with_rel(rel)?))
    } else {
        Err(CgroupError::Detect(format!(
            "{CGROUP_ROOT} is neither a cgroup2 mount nor a tmpfs holding cgroup v1 hierarchies (filesystem magic {:#x})",
            ty.0 as u64
        )))
    }
}

/// The calling process's cgroup in each hierarchy, from /proc/self/cgroup:
/// keyed by the controller list as that file names it ("cpu,cpuacct",
/// "name=systemd"; "" for the cgroup2 hierarchy), each path relative to the
/// hierarchy's root ("" for the root, and for a path that is not plain, such
/// as one outside our cgroup namespace).
pub fn own_cgroups() -> Result<BTreeMap<String, PathBuf>, CgroupError> {
    let text = std::fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| CgroupError::Detect(format!("cannot read /proc/self/cgroup: {e}")))?;
    Ok(parse_proc_cgroup(&text))
}

fn parse_proc_cgroup(text: &str) -> BTreeMap<String, PathBuf> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let mut f = line.splitn(3, ':');
        let (Some(_), Some(ctrls), Some(path)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let mut rel = PathBuf::new();
        for c in Path::new(path).components() {
            match c {
                Component::Normal(n) => rel.push(n),
                Component::RootDir | Component::CurDir => {}
                _ => {
                    rel = PathBuf::new();
                    break;
                }
            }
        }
        out.insert(ctrls.to_owned(), rel);
    }
    out
}

/// A manager for the cgroup `name` (one path component) under `parents` in
/// each hierarchy, as [`own_cgroups`] returns them (a hierarchy without an
/// entry: under its root). This is runc 1.1's cgroup for a container without
/// `cgroupsPath`: its ID under the runtime's own cgroup, hierarchy by
/// hierarchy.
pub fn create_manager_under(
    parents: &BTreeMap<String, PathBuf>,
    name: &str,
) -> Result<Box<dyn CgroupManager>, CgroupError> {
    let single = matches!(
        Path::new(name).components().collect::<Vec<_>>()[..],
        [Component::Normal(_)]
    );
    if !single || name.contains('/') {
        return Err(CgroupError::InvalidPath {
            path: name.to_string(),
            reason: "not a single cgroup name".into(),
        });
    }
    let root = Path::new(CGROUP_ROOT);
    let fs = nix::sys::statfs::statfs(root)
        .map_err(|e| CgroupError::Detect(format!("cannot statfs {CGROUP_ROOT}: {}", e.desc())))?;
    let ty = fs.filesystem_type();
    if ty == nix::sys::statfs::CGROUP2_SUPER_MAGIC {
        let parent = parents.get("").cloned().unwrap_or_default();
        Ok(Box::new(v2::V2Manager::with_rel(root, parent.join(name))))
    } else if ty == nix::sys::statfs::TMPFS_MAGIC {
        Ok(Box::new(v1::V1Manager::with_parents(name.into(), parents)?))
    } else {
        Err(CgroupError::Detect(format!(
            "{CGROUP_ROOT} is neither a cgroup2 mount nor a tmpfs holding cgroup v1 hierarchies (filesystem magic {:#x})",
            ty.0 as u64
        )))
    }
}

/// The manager of a rootless container's cgroup `cgroups_path` in a subtree
/// delegated to the user (see [`delegation`]); `None` when the path is not
/// in one this process may write (nothing delegated: [`NoCgroup`]).
pub fn delegated_manager(
    cgroups_path: &str,
    container_id: &str,
) -> Result<Option<Box<dyn CgroupManager>>, CgroupError> {
    if !delegation::usable(cgroups_path) {
        return Ok(None);
    }
    let rel = normalize_cgroups_path(cgroups_path, container_id)?;
    Ok(Some(Box::new(v2::V2Manager::delegated(
        Path::new(CGROUP_ROOT),
        rel,
    ))))
}

/// Reconstructs the manager of an existing container cgroup from the same
/// `cgroups_path` (and container id) that was given to [`create_manager`].
pub fn open_manager(
    cgroups_path: &str,
    container_id: &str,
) -> Result<Box<dyn CgroupManager>, CgroupError> {
    create_manager(cgroups_path, container_id)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(
            normalize_cgroups_path("/berth/abc", "x").unwrap(),
            Path::new("berth/abc")
        );
        assert_eq!(
            normalize_cgroups_path("a/b/", "x").unwrap(),
            Path::new("a/b")
        );
        assert_eq!(
            normalize_cgroups_path("", "id1").unwrap(),
            Path::new("berth/id1")
        );
        assert!(matches!(
            normalize_cgroups_path("system.slice:berth:abc", "x"),
            Err(CgroupError::SystemdUnsupported(_))
        ));
        assert!(normalize_cgroups_path("/a/../b", "x").is_err());
        assert!(normalize_cgroups_path("/", "x").is_err());
        assert!(normalize_cgroups_path("", "").is_err());
    }

    #[test]
    fn proc_cgroup() {
        let m = parse_proc_cgroup("4:memory:/a/b\n1:cpu,cpuacct:/\n9:name=systemd:/../x\n0::/c\n");
        assert_eq!(m["memory"], Path::new("a/b"));
        assert_eq!(m["cpu,cpuacct"], Path::new(""));
        assert_eq!(m["name=systemd"], Path::new(""));
        assert_eq!(m[""], Path::new("c"));
    }

    #[test]
    fn io_error_message() {
        let e = CgroupError::Io {
            action: "set memory limit (linux.resources.memory.limit)".into(),
            dir: "/sys/fs/cgroup/memory/berth/x".into(),
            op: "write memory.limit_in_bytes".into(),
            source: io::Error::from_raw_os_error(libc::EBUSY),
        };
        assert_eq!(e.to_string(), "cgroup: cannot set memory limit (linux.resources.memory.limit) in /sys/fs/cgroup/memory/berth/x: write memory.limit_in_bytes: Device or resource busy");
    }
}

/// The manager of a rootless container on a host that delegates no cgroup
/// to its user: nothing is created, joined or written, and any limit asked
/// for is refused (device rules are not limits: in a user namespace no
/// device node can be made, only the host's bound).
#[derive(Debug, Default)]
pub struct NoCgroup;

/// Why [`NoCgroup`] refuses a limit.
pub const NO_DELEGATION: &str =
    "rootless: no cgroup is delegated to this user, so resource limits cannot be set";

/// Why [`NoCgroup`] cannot freeze.
pub const NO_FREEZER: &str =
    "rootless: no cgroup is delegated to this user, so a container cannot be paused";

impl NoCgroup {
    fn refuse(field: &str) -> CgroupError {
        CgroupError::Unsupported {
            field: format!("linux.resources.{field}"),
            reason: NO_DELEGATION.to_owned(),
        }
    }
}

impl CgroupManager for NoCgroup {
    fn version(&self) -> CgroupVersion {
        CgroupVersion::V2
    }
    fn create(&self) -> Result<(), CgroupError> {
        Ok(())
    }
    fn add_task_v1(&self, _pid: i32) -> Result<(), CgroupError> {
        Ok(())
    }
    fn add_task_unified(&self, _pid: i32) -> Result<(), CgroupError> {
        Ok(())
    }
    fn unified_dir(&self) -> Option<PathBuf> {
        None
    }
    fn enter_v1_self(&self) -> Result<(), CgroupError> {
        Ok(())
    }
    fn apply(&self, r: &LinuxResources) -> Result<(), CgroupError> {
        if let Some(m) = r.memory() {
            if m.limit().is_some() || m.reservation().is_some() || m.swap().is_some() {
                return Err(Self::refuse("memory"));
            }
        }
        if let Some(c) = r.cpu() {
            if c.quota().is_some()
                || c.shares().is_some()
                || c.cpus().is_some()
                || c.mems().is_some()
                || c.realtime_runtime().is_some()
            {
                return Err(Self::refuse("cpu"));
            }
        }
        if r.pids().as_ref().is_some_and(|p| p.limit() > 0) {
            return Err(Self::refuse("pids"));
        }
        if let Some(b) = r.block_io() {
            if b.weight().is_some()
                || b.weight_device().as_ref().is_some_and(|v| !v.is_empty())
                || b.throttle_read_bps_device()
                    .as_ref()
                    .is_some_and(|v| !v.is_empty())
                || b.throttle_write_bps_device()
                    .as_ref()
                    .is_some_and(|v| !v.is_empty())
                || b.throttle_read_iops_device()
                    .as_ref()
                    .is_some_and(|v| !v.is_empty())
                || b.throttle_write_iops_device()
                    .as_ref()
                    .is_some_and(|v| !v.is_empty())
            {
                return Err(Self::refuse("blockIO"));
            }
        }
        if r.hugepage_limits().as_ref().is_some_and(|v| !v.is_empty()) {
            return Err(Self::refuse("hugepageLimits"));
        }
        Ok(())
    }
    fn freeze(&self) -> Result<(), CgroupError> {
        Err(CgroupError::Detect(format!(
            "cannot freeze: {NO_DELEGATION}"
        )))
    }
    fn thaw(&self) -> Result<(), CgroupError> {
        Err(CgroupError::Unsupported {
            field: "resume".into(),
            reason: NO_FREEZER.into(),
        })
    }
    fn freezer_state(&self) -> Result<FreezerState, CgroupError> {
        Ok(FreezerState::Thawed)
    }
    fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        Ok(Vec::new())
    }
    fn stats(&self) -> Result<Stats, CgroupError> {
        Ok(Stats::default())
    }
    fn oom_kill_count(&self) -> Result<u64, CgroupError> {
        Ok(0)
    }
    fn kill_all(&self, _signal: Signal) -> Result<(), CgroupError> {
        Ok(())
    }
    fn destroy(&self) -> Result<(), CgroupError> {
        Ok(())
    }
    fn paths(&self) -> BTreeMap<String, PathBuf> {
        BTreeMap::new()
    }
    fn exists(&self) -> bool {
        false
    }
}
