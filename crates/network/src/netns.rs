//! Persistent network namespaces: a namespace made by berth lives in a
//! bind mount of its nsfs file (as `ip netns add` does), so it exists
//! before the container starts (its veth and address are set up first),
//! outlives restarts of the container's processes, and can be joined by
//! `--network container:X` and by `exec`.
//!
//! A namespace is entered only by a short-lived helper thread: network
//! namespaces are per thread, so the calling thread never changes, and a
//! netlink socket made in the helper stays bound to the namespace.

use std::fs::File;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};

use crate::netlink::Netlink;
use crate::{Error, Result};

fn ns_err(what: String, e: nix::Error) -> Error {
    Error::Namespace(format!("{what}: {e}"))
}

/// Runs `f` on a new thread, returning what it returns; a panic on that
/// thread becomes an error rather than unwinding into the caller.
fn on_thread<T: Send>(f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    #[cfg(test)]
    HELPERS.with(|n| n.set(n.get() + 1));
    std::thread::scope(|s| {
        s.spawn(f)
            .join()
            .unwrap_or_else(|_| Err(Error::Namespace("namespace helper thread panicked".into())))
    })
}

#[cfg(test)]
thread_local! {
    /// Helper threads started by this thread (tests).
    static HELPERS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Where container `container_id`'s namespace is kept under berth's
/// volatile directory `run_dir`.
pub fn path_for(run_dir: &Path, container_id: &str) -> PathBuf {
    run_dir.join("netns").join(container_id)
}

/// [`create`] at `path`, making its directory first and removing a
/// namespace left there by a container that died without cleanup.
pub fn create_fresh(path: &Path) -> Result<NetNs> {
    let _t = berth_trace::span(
        "network",
        "network namespace (unshare CLONE_NEWNET, bind-mounted)",
    )
    .detail(|| path.display().to_string());
    if let Some(dir) = path.parent() {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| Error::Io(format!("create {}", dir.display()), e))?;
    }
    remove(path)?;
    create(path)
}

/// A new, empty network namespace kept at `path` (created; its parent must
/// exist). Its `lo` is brought up, as Docker does for every container.
/// The netlink socket that did it, made inside the new namespace, comes
/// with the returned [`NetNs`]: its first [`NetNs::netlink`] needs no
/// second helper thread to enter the namespace.
pub fn create(path: &Path) -> Result<NetNs> {
    File::create(path).map_err(|e| Error::Io(format!("create {}", path.display()), e))?;
    let made = on_thread(|| {
        unshare(CloneFlags::CLONE_NEWNET)
            .map_err(|e| ns_err("unshare network namespace".into(), e))?;
        mount(
            Some("/proc/thread-self/ns/net"),
            path,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| ns_err(format!("bind-mount the namespace on {}", path.display()), e))?;
        // This thread is in the new namespace: bring its lo up here.
        let mut nl = Netlink::open()?;
        if let Some(lo) = nl.link_by_name("lo")? {
            nl.set_up(lo.index)?;
        }
        Ok(nl)
    });
    let nl = match made {
        Ok(nl) => nl,
        Err(e) => {
            let _ = umount2(path, MntFlags::MNT_DETACH);
            let _ = std::fs::remove_file(path);
            return Err(e);
        }
    };
    let ns = open(path)?;
    ns.inside.set(Some(nl));
    Ok(ns)
}

/// The namespace kept at `path`.
pub fn open(path: &Path) -> Result<NetNs> {
    let file = File::open(path).map_err(|e| Error::Io(format!("open {}", path.display()), e))?;
    Ok(NetNs {
        path: path.to_owned(),
        file,
        inside: std::cell::Cell::new(None),
    })
}

/// Unmounts and removes a namespace made by `create`; a missing one is
/// fine. The namespace itself ends when no process is left in it, taking
/// the container ends of its veth pairs (and so the host ends) with it.
pub fn remove(path: &Path) -> Result<()> {
    match umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => {}
        Err(e) => return Err(ns_err(format!("unmount {}", path.display()), e)),
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::Io(format!("remove {}", path.display()), e)),
    }
}

/// An open network namespace.
pub struct NetNs {
    path: PathBuf,
    file: File,
    /// A netlink socket already inside (the one [`create`] made).
    inside: std::cell::Cell<Option<Netlink>>,
}

impl NetNs {
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn file(&self) -> &File {
        &self.file
    }

    /// A netlink socket inside this namespace: the one [`create`] made,
    /// else a new one, opened by a helper thread that enters it.
    pub fn netlink(&self) -> Result<Netlink> {
        if let Some(nl) = self.inside.take() {
            return Ok(nl);
        }
        let (file, path) = (&self.file, &self.path);
        on_thread(|| {
            setns(file, CloneFlags::CLONE_NEWNET)
                .map_err(|e| ns_err(format!("enter {}", path.display()), e))?;
            Netlink::open()
        })
    }
}

/// Whether `path` holds a network namespace (a bind mount of one, as
/// [`create`] makes): an ordinary file, or nothing, is not one.
pub fn is_netns(path: &Path) -> bool {
    let Ok(file) = File::open(path) else {
        return false;
    };
    on_thread(|| {
        setns(&file, CloneFlags::CLONE_NEWNET)
            .map_err(|e| ns_err(format!("enter {}", path.display()), e))
    })
    .is_ok()
}

/// Runs `f` on a helper thread inside the namespace kept at `path`: what
/// it opens (netlink sockets), writes (`/proc/sys/net`) and starts (nft, a
/// daemon) is that namespace's. The calling thread's namespace never
/// changes (one left for a namespace owned by a user namespace cannot be
/// entered again from inside it).
pub fn run_in<T: Send, E: Send + From<Error>>(
    path: &Path,
    f: impl FnOnce() -> std::result::Result<T, E> + Send,
) -> std::result::Result<T, E> {
    let file = File::open(path).map_err(|e| Error::Io(format!("open {}", path.display()), e))?;
    std::thread::scope(|s| {
        s.spawn(|| {
            setns(&file, CloneFlags::CLONE_NEWNET)
                .map_err(|e| ns_err(format!("enter {}", path.display()), e))?;
            f()
        })
        .join()
        .unwrap_or_else(|_| Err(Error::Namespace("namespace helper thread panicked".into()).into()))
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A new namespace's first netlink socket is the one that brought its
    /// lo up, inside it (one helper thread in all); a later one enters it
    /// on a helper thread of its own.
    #[test]
    fn a_new_namespace_comes_with_its_netlink_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ns");
        // Unmounted even when an assertion fails (a bind-mounted namespace
        // would outlive the test's directory).
        struct Unmount<'a>(&'a Path);
        impl Drop for Unmount<'_> {
            fn drop(&mut self) {
                let _ = remove(self.0);
            }
        }
        let _unmount = Unmount(&path);
        let before = HELPERS.with(std::cell::Cell::get);
        let ns = create(&path).unwrap();
        let mut nl = ns.netlink().unwrap();
        assert_eq!(HELPERS.with(std::cell::Cell::get) - before, 1);
        let names = |nl: &mut Netlink| -> Vec<String> {
            nl.links().unwrap().into_iter().map(|l| l.name).collect()
        };
        assert_eq!(names(&mut nl), ["lo"]);
        assert!(nl.link_by_name("lo").unwrap().unwrap().up);
        let mut again = ns.netlink().unwrap();
        assert_eq!(HELPERS.with(std::cell::Cell::get) - before, 2);
        assert_eq!(names(&mut again), ["lo"]);
        drop((nl, again, ns));
        remove(&path).unwrap();
    }
}
