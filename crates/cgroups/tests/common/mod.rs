//! Shared helpers for the cgroup integration tests (real kernel, root).
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use berth_cgroups::CgroupManager;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A unique cgroups path like "/berth-test-<pid>-<n>".
pub fn unique_path() -> String {
    format!(
        "/berth-test-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn fs_magic(path: &str) -> Option<nix::sys::statfs::FsType> {
    nix::sys::statfs::statfs(path)
        .ok()
        .map(|s| s.filesystem_type())
}

/// True when /sys/fs/cgroup holds cgroup v1 hierarchies (tmpfs).
pub fn host_is_v1() -> bool {
    is_root() && fs_magic("/sys/fs/cgroup") == Some(nix::sys::statfs::TMPFS_MAGIC)
}

/// A cgroup2 mount to test the v2 backend on: /sys/fs/cgroup on a pure v2
/// host, /sys/fs/cgroup/unified on a hybrid one.
pub fn v2_mount() -> Option<&'static str> {
    if !is_root() {
        return None;
    }
    ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
        .into_iter()
        .find(|p| fs_magic(p) == Some(nix::sys::statfs::CGROUP2_SUPER_MAGIC))
}

/// A child started as `sh -c 'read x; <script>'`: it waits on stdin until
/// `go()` so the test can move it into a cgroup first.
pub struct Proc {
    pub child: Child,
}

impl Proc {
    pub fn spawn(script: &str) -> Proc {
        let child = Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("read x; {script}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Proc { child }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Lets the script run.
    pub fn go(&mut self) {
        let mut stdin = self.child.stdin.take().unwrap();
        stdin.write_all(b"go\n").unwrap();
    }

    /// Waits for exit; returns status, stdout, stderr.
    pub fn wait(mut self) -> (ExitStatus, String, String) {
        let st = self.child.wait().unwrap();
        let mut out = String::new();
        let mut err = String::new();
        if let Some(mut o) = self.child.stdout.take() {
            o.read_to_string(&mut out).unwrap();
        }
        if let Some(mut e) = self.child.stderr.take() {
            e.read_to_string(&mut err).unwrap();
        }
        (st, out, err)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn killed_by(st: &ExitStatus) -> Option<i32> {
    st.signal()
}

/// Removes the cgroup on drop (even when the test panics): kills whatever is
/// still inside, then destroys.
pub struct Guard {
    pub mgr: Box<dyn CgroupManager>,
}

/// Live guards, and what the hybrid host's unified root had enabled before
/// the first of them: a v2 manager enables controllers there, and the tests
/// must leave the host as they found it.
static LIVE: std::sync::Mutex<(usize, Option<String>)> = std::sync::Mutex::new((0, None));
const HYBRID_ROOT: &str = "/sys/fs/cgroup/unified";

impl Guard {
    pub fn new(mgr: Box<dyn CgroupManager>) -> Guard {
        if let Ok(mut live) = LIVE.lock() {
            if live.0 == 0 {
                live.1 =
                    std::fs::read_to_string(format!("{HYBRID_ROOT}/cgroup.subtree_control")).ok();
            }
            live.0 += 1;
        }
        Guard { mgr }
    }
}

impl std::ops::Deref for Guard {
    type Target = dyn CgroupManager;
    fn deref(&self) -> &Self::Target {
        &*self.mgr
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.mgr.thaw();
        let _ = self.mgr.kill_all(nix::sys::signal::Signal::SIGKILL);
        let _ = self.mgr.destroy();
        if let Ok(mut live) = LIVE.lock() {
            live.0 -= 1;
            if live.0 == 0 {
                if let Some(before) = live.1.take() {
                    let path = format!("{HYBRID_ROOT}/cgroup.subtree_control");
                    let now = std::fs::read_to_string(&path).unwrap_or_default();
                    for c in now.split_whitespace() {
                        if !before.split_whitespace().any(|b| b == c) {
                            let _ = std::fs::write(&path, format!("-{c}"));
                        }
                    }
                }
            }
        }
    }
}

/// Asserts that no directory of the manager is left.
pub fn assert_gone(mgr: &dyn CgroupManager) {
    for (k, p) in mgr.paths() {
        assert!(!p.exists(), "{k}: {} left behind", p.display());
    }
}
