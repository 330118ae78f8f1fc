//! A cgroup v2 subtree delegated to an unprivileged user (rootless berth).
//!
//! systemd's `user@UID.service` (`Delegate=yes`), or an administrator by
//! hand, gives a user the ownership of a cgroup: the directory and its
//! `cgroup.procs`, `cgroup.subtree_control` and `cgroup.threads`, with
//! controllers enabled in its parent's `cgroup.subtree_control`. A rootless
//! berth started inside such a subtree puts its containers under the
//! subtree's top ([`detect`]) and can limit them. cgroup v2 lets only a
//! cgroup without processes of its own hand controllers down, so the
//! processes found in the top itself (a shell moved there) are first moved
//! into its leaf `init` ([`prepare`]), as the docker-in-docker entrypoint
//! does with the root cgroup.

use std::io;
use std::path::{Path, PathBuf};

use crate::util::{self, read, write_raw};
use crate::{CgroupError, CGROUP_ROOT};

/// The leaf that the processes of the delegated cgroup's top are moved into.
pub const EVACUATED: &str = "init";

/// A delegated cgroup v2 subtree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delegation {
    /// The subtree's top (the highest cgroup the user may write, above the
    /// calling process's), relative to the cgroup2 root.
    pub base: PathBuf,
    /// The controllers it offers (its `cgroup.controllers`).
    pub controllers: Vec<String>,
}

impl Delegation {
    /// Whether controller `name` (`memory`, `cpu`, `pids`, …) is offered.
    pub fn has(&self, name: &str) -> bool {
        self.controllers.iter().any(|c| c == name)
    }

    /// The `cgroupsPath` of container `id`: `berth-<id>` under the top.
    pub fn container_path(&self, id: &str) -> String {
        format!("/{}/berth-{id}", self.base.display())
    }
}

fn is_cgroup2(dir: &Path) -> bool {
    nix::sys::statfs::statfs(dir)
        .is_ok_and(|fs| fs.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
}

/// Whether this process may manage the cgroup `dir`: write the directory
/// (make children), its `cgroup.procs` and its `cgroup.subtree_control`.
pub fn writable(dir: &Path) -> bool {
    use nix::unistd::{access, AccessFlags};
    ["", "cgroup.procs", "cgroup.subtree_control"]
        .iter()
        .all(|f| access(&dir.join(f), AccessFlags::W_OK).is_ok())
}

/// The subtree delegated to the calling process's user, if any: on a pure
/// cgroup v2 host, the highest cgroup at or above the process's own (from
/// `/proc/self/cgroup`) that it may write, offering at least one
/// controller. `None` on a v1 or hybrid host, and when the process's cgroup
/// is not its user's (a login session's scope is root's).
pub fn detect() -> Option<Delegation> {
    detect_in(
        Path::new(CGROUP_ROOT),
        &crate::own_cgroups().ok()?.get("")?.clone(),
    )
}

fn detect_in(root: &Path, own: &Path) -> Option<Delegation> {
    if !is_cgroup2(root) {
        return None;
    }
    let mut base = None;
    let mut cur = own.to_path_buf();
    while !cur.as_os_str().is_empty() && writable(&root.join(&cur)) {
        let parent = cur.parent().map(Path::to_path_buf).unwrap_or_default();
        base = Some(cur);
        cur = parent;
    }
    let base = base?;
    let controllers: Vec<String> = read(&root.join(&base), "cgroup.controllers")
        .ok()?
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    (!controllers.is_empty()).then_some(Delegation { base, controllers })
}

/// Whether `cgroups_path` (a container's, as [`Delegation::container_path`]
/// made it) lies in a delegated subtree this process may write: the host is
/// pure cgroup v2 and the container cgroup's parent is writable.
pub fn usable(cgroups_path: &str) -> bool {
    let root = Path::new(CGROUP_ROOT);
    let Ok(rel) = crate::normalize_cgroups_path(cgroups_path, "x") else {
        return false;
    };
    let Some(parent) = rel.parent().filter(|p| !p.as_os_str().is_empty()) else {
        return false;
    };
    is_cgroup2(root) && writable(&root.join(parent))
}

/// Enables in `dir`'s `cgroup.subtree_control` every controller it offers,
/// first moving the processes `dir` holds itself into `dir/init`: the
/// kernel refuses a domain controller (memory, io) to a cgroup with
/// processes (EBUSY), and once a threaded one (cpu, pids) is enabled beside
/// them, the domain ones for good (EOPNOTSUPP). A controller the kernel
/// refuses otherwise is left off: a limit that needs it fails naming its
/// field.
pub fn prepare(dir: &Path) -> Result<(), CgroupError> {
    let words = |f: &str| -> Vec<String> {
        read(dir, f)
            .map(|s| s.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default()
    };
    let mut enabled = words("cgroup.subtree_control");
    if !enabled.is_empty() && !words("cgroup.procs").is_empty() {
        // Threaded controllers enabled beside processes (by hand, or by
        // an older berth) make `dir` a thread root whose children cannot
        // take processes: off again, to be enabled after the move.
        for c in &enabled {
            let _ = write_raw(dir, "cgroup.subtree_control", &format!("-{c}"));
        }
        enabled = words("cgroup.subtree_control");
    }
    let missing: Vec<String> = words("cgroup.controllers")
        .into_iter()
        .filter(|c| !enabled.contains(c))
        .map(|c| format!("+{c}"))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    // New processes may be forked into `dir` meanwhile: a few rounds.
    for _ in 0..20 {
        evacuate(dir)?;
        match write_raw(dir, "cgroup.subtree_control", &missing.join(" ")) {
            Ok(()) => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => continue,
            Err(_) => break,
        }
    }
    for c in &missing {
        let _ = write_raw(dir, "cgroup.subtree_control", c);
    }
    Ok(())
}

/// Moves every process of `dir` itself into its leaf [`EVACUATED`] (made
/// when there is any).
fn evacuate(dir: &Path) -> Result<(), CgroupError> {
    let procs = read(dir, "cgroup.procs")
        .map_err(|e| util::io_err("list processes", dir, "read cgroup.procs".into(), e))?;
    if procs.trim().is_empty() {
        return Ok(());
    }
    let leaf = dir.join(EVACUATED);
    match std::fs::create_dir(&leaf) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(util::io_err(
                "make the leaf for its processes",
                dir,
                format!("mkdir {EVACUATED}"),
                e,
            ))
        }
    }
    for pid in procs.split_whitespace() {
        match write_raw(&leaf, "cgroup.procs", pid) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
            Err(e) => {
                return Err(util::io_err(
                    &format!("move process {pid} out of the delegated cgroup"),
                    &leaf,
                    "write cgroup.procs".into(),
                    e,
                ))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn container_path_is_under_the_top() {
        let d = Delegation {
            base: PathBuf::from("user.slice/user-1000.slice/user@1000.service"),
            controllers: vec!["memory".into(), "pids".into()],
        };
        assert_eq!(
            d.container_path("abc"),
            "/user.slice/user-1000.slice/user@1000.service/berth-abc"
        );
        assert!(d.has("pids") && !d.has("cpu"));
    }

    #[test]
    fn nothing_is_delegated_outside_cgroup2() {
        // /tmp is no cgroup2 mount.
        assert_eq!(detect_in(Path::new("/tmp"), Path::new("a/b")), None);
        assert!(!usable("/"));
    }
}
