//! The rootless network namespace of user networks (as podman 5's): one
//! per user, made inside rootless berth's user namespace on first use and
//! kept (bind-mounted in the pause process's mount namespace, see
//! `berth_runtime::rootless`) while that namespace lives. It is the "host"
//! of the user's bridges: berth's bridge driver makes the bridges, veth
//! pairs, nftables NAT and addresses there exactly as root's on the host,
//! and berth-dns listens there. One pasta, attached to it, carries what
//! leaves it out through the user's sockets (`--config-net`: the host's
//! address and default route inside).
//!
//! Its pasta holds the namespace (and the user namespace) while it runs;
//! when the pause process's namespace is gone, the next command that needs
//! the namespace finds the file empty in its new mount namespace, ends the
//! old pasta (by its pid, when its command line names the file) and makes
//! a new namespace.

use std::path::{Path, PathBuf};

use crate::{netns, pasta, Lock, Result};

/// The directory of the namespace, its pasta's pid and the lock, under
/// rootless berth's volatile directory.
pub const DIR: &str = "rootless-netns";

/// Where the namespace is kept.
pub fn path(run_dir: &Path) -> PathBuf {
    run_dir.join(DIR).join("net")
}

fn pidfile(run_dir: &Path) -> PathBuf {
    run_dir.join(DIR).join("pasta.pid")
}

/// Whether the namespace exists with its pasta.
pub fn exists(run_dir: &Path) -> bool {
    let p = path(run_dir);
    netns::is_netns(&p) && pasta::running(&pidfile(run_dir), &p)
}

/// The namespace, made (with its pasta) if need be; `true` when made now
/// (nothing of an earlier one is there: no bridge, no resolver).
pub fn ensure(run_dir: &Path) -> Result<(PathBuf, bool)> {
    let p = path(run_dir);
    if exists(run_dir) {
        return Ok((p, false));
    }
    let exe = pasta::find()?;
    let _l = Lock::take(&run_dir.join(DIR).join("lock"))?;
    let pid = pidfile(run_dir);
    if netns::is_netns(&p) {
        if pasta::running(&pid, &p) {
            return Ok((p, false));
        }
        // Its pasta was killed: a new one for the same namespace (the
        // bridges and containers in it stay).
        pasta::start(&exe, &p, &pid, &[], false)?;
        return Ok((p, false));
    }
    // None yet, or that of a user namespace now gone: its pasta goes.
    pasta::stop(&pid, &p);
    netns::create_fresh(&p)?;
    if let Err(e) = pasta::start(&exe, &p, &pid, &[], false) {
        pasta::stop(&pid, &p);
        let _ = netns::remove(&p);
        return Err(e);
    }
    Ok((p, true))
}

/// Removes the namespace and ends its pasta (`system reset`).
pub fn remove(run_dir: &Path) -> Result<()> {
    let p = path(run_dir);
    pasta::stop(&pidfile(run_dir), &p);
    netns::remove(&p)
}
