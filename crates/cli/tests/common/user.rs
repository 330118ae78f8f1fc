//! An unprivileged user made for a rootless test (useradd with a
//! subordinate id range of its own), and berth run as that user: shared by
//! rootless.rs and rootless_registry.rs (`#[path]`-included beside `common`).
#![allow(dead_code)]

use crate::common::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub static NEXT: AtomicU32 = AtomicU32::new(0);

/// The berth under test (`BERTH_BIN` overrides it, to run these tests
/// against another build).
pub fn berth_bin() -> PathBuf {
    std::env::var_os("BERTH_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(BERTH))
}

/// Runs a user-administration command, again while another one holds the
/// password files' lock (tests run in parallel).
pub fn admin(args: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
        if out.status.success() {
            return;
        }
        let err = text(&out.stderr);
        assert!(
            Instant::now() < deadline && (err.contains("lock") || err.contains("try again")),
            "{args:?}: {}: {err}",
            out.status
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A user made for one test: no home in /etc/passwd's sense (`-M`), its
/// HOME and XDG_RUNTIME_DIR directories of its own under a scratch
/// directory, a subordinate uid/gid range of 65536 ids that no other test
/// user has (from the pid and a counter). Dropping it kills its processes
/// (the pause process, monitors, containers: all run as its uid), removes
/// the user and its ranges, and its directories.
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub base: PathBuf,
    pub range: Option<u32>,
    pub dropped: bool,
    /// A file the user's berth sees as /etc/resolv.conf: each command runs
    /// in a mount namespace of its own where it is bound over the host's
    /// (the first one's is what the pause process, and so every later
    /// command, keeps).
    pub resolv_conf: Option<PathBuf>,
}

impl User {
    pub fn new() -> User {
        User::make(true)
    }

    pub fn without_range() -> User {
        User::make(false)
    }

    pub fn make(with_range: bool) -> User {
        runtime();
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let name = format!("brl{pid}x{n}");
        admin(&[
            "useradd",
            "-M",
            "-s",
            "/usr/sbin/nologin",
            "-K",
            "SUB_UID_COUNT=0",
            "-K",
            "SUB_GID_COUNT=0",
            &name,
        ]);
        let range = with_range.then(|| 1_000_000 + ((pid * 16 + n) % 60_000) * 65_536);
        if let Some(start) = range {
            let ids = format!("{start}-{}", start + 65_535);
            admin(&[
                "usermod",
                "--add-subuids",
                &ids,
                "--add-subgids",
                &ids,
                &name,
            ]);
        }
        let user = nix::unistd::User::from_name(&name).unwrap().unwrap();
        let base = PathBuf::from(format!("/tmp/berth-rootless-{name}"));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir(&base).unwrap();
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o755)).unwrap();
        let u = User {
            name,
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
            base,
            range,
            dropped: false,
            resolv_conf: None,
        };
        for d in [u.home(), u.xdg()] {
            std::fs::create_dir(&d).unwrap();
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
            u.chown(&d);
        }
        u
    }

    pub fn home(&self) -> PathBuf {
        self.base.join("home")
    }

    pub fn xdg(&self) -> PathBuf {
        self.base.join("xdg")
    }

    pub fn chown(&self, p: &Path) {
        std::os::unix::fs::chown(p, Some(self.uid), Some(self.gid)).unwrap();
    }

    /// `berth ARGS` as the user, in its home, with its HOME and
    /// XDG_RUNTIME_DIR and nothing else of the test's environment.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = match &self.resolv_conf {
            None => Command::new("/usr/bin/setpriv"),
            Some(f) => {
                let mut c = Command::new("/usr/bin/unshare");
                c.args(["--mount", "--propagation", "private", "--", "/bin/sh", "-c"])
                    .arg(
                        "/bin/mount --bind \"$0\" /etc/resolv.conf && exec /usr/bin/setpriv \"$@\"",
                    )
                    .arg(f);
                c
            }
        };
        c.arg(format!("--reuid={}", self.uid))
            .arg(format!("--regid={}", self.gid))
            .arg("--init-groups")
            .arg("--")
            .arg(berth_bin())
            .args(args)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", self.home())
            .env("XDG_RUNTIME_DIR", self.xdg())
            .env("BERTH_DAEMON_JSON", "/nonexistent/berth-daemon.json")
            .env("BERTH_LOOPBACK_REGISTRIES_ONLY", "1")
            .current_dir(self.home())
            .stdin(Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "{}", describe(args, &out));
        text(&out.stdout)
    }

    pub fn fails(&self, args: &[&str], code: i32) -> String {
        check_failure(args, &self.run(args), code)
    }

    /// Writes `data` into the user's home as `name`, the user's.
    pub fn file(&self, name: &str, data: &[u8]) -> PathBuf {
        let p = self.home().join(name);
        std::fs::write(&p, data).unwrap();
        self.chown(&p);
        p
    }

    pub fn import_busybox(&self) -> String {
        self.file("bb.tar", busybox_tar());
        self.ok(&["import", "bb.tar", "busybox"]).trim().to_owned()
    }

    /// The state directories rootless berth uses by default.
    pub fn data_dir(&self) -> PathBuf {
        self.home().join(".local/share/berth")
    }

    pub fn run_dir(&self) -> PathBuf {
        self.xdg().join("berth")
    }

    pub fn pause_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.run_dir().join("pause.pid"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }

    /// Live processes running as the user (none belong to anyone else).
    pub fn processes(&self) -> Vec<i32> {
        let mut v = Vec::new();
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            if e.metadata().is_ok_and(|m| m.uid() == self.uid) && process_alive(pid) {
                v.push(pid);
            }
        }
        v
    }

    /// Kills the user's processes (each by its pid: all of them were started
    /// by this test), waits for them to go, then removes the user, its
    /// ranges and its directories. Returns what was not clean.
    pub fn teardown(&mut self) -> Vec<String> {
        self.dropped = true;
        let mut problems = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = self.processes();
            if left.is_empty() {
                break;
            }
            if Instant::now() > deadline {
                problems.push(format!("processes of {} left: {left:?}", self.name));
                break;
            }
            for pid in left {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        admin(&["userdel", &self.name]);
        for f in ["/etc/subuid", "/etc/subgid"] {
            let t = std::fs::read_to_string(f).unwrap_or_default();
            if t.lines().any(|l| l.starts_with(&format!("{}:", self.name))) {
                problems.push(format!("{} still in {f}", self.name));
            }
        }
        let mounts = mounts_mentioning(&self.base);
        if !mounts.is_empty() {
            problems.push(format!("mounts left: {mounts:?}"));
        }
        let fallback = PathBuf::from(format!("/tmp/berth-{}", self.uid));
        if fallback.exists() {
            let _ = std::fs::remove_dir_all(&fallback);
        }
        if let Err(e) = std::fs::remove_dir_all(&self.base) {
            problems.push(format!("cannot remove {}: {e}", self.base.display()));
        }
        problems
    }
}

impl Drop for User {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        let problems = self.teardown();
        if !problems.is_empty() && !std::thread::panicking() {
            panic!("rootless user not left clean: {}", problems.join("; "));
        }
    }
}
