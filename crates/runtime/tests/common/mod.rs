//! Shared helpers of berth-runtime's integration tests.
//!
//! Every test makes its own [`Rt`] (a fresh temporary `--root`) and its
//! containers through [`Ctr`] (a busybox bundle with a unique ID and a unique
//! `linux.cgroupsPath`). A `Ctr` is deleted (`delete --force`) when dropped;
//! [`Ctr::finish`] deletes it and asserts that nothing is left behind: no
//! cgroup directory in any hierarchy, no mount mentioning the bundle, no
//! state directory.
#![allow(dead_code, clippy::unwrap_used)]

use berth_fixtures::Bundle;
use oci_spec::runtime::Spec;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_berth-runtime");

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A name unique in this test process and among concurrent test processes.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// The result of one runtime invocation.
#[derive(Debug)]
pub struct Out {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn from_output(o: Output) -> Out {
        Out {
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Asserts exit status 0 and returns stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(self.code, Some(0), "expected success: {self:#?}");
        &self.stdout
    }

    /// Asserts a failure with exactly one non-empty line on stderr, and
    /// returns that line (for runc's logrus text line, `time="…"
    /// level=error msg="…"`, the message, unquoted).
    #[track_caller]
    pub fn fails_one_line(&self) -> String {
        assert!(
            self.code.is_some_and(|c| c != 0),
            "expected failure: {self:#?}"
        );
        let lines: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        assert_eq!(lines.len(), 1, "expected one line on stderr: {self:#?}");
        logrus_msg(lines[0]).unwrap_or_else(|| lines[0].to_owned())
    }
}

/// The message of a logrus text line (`time="T" level=L msg="M"`).
pub fn logrus_msg(line: &str) -> Option<String> {
    let quoted = line.strip_prefix("time=\"")?.split_once(" msg=")?.1;
    serde_json::from_str(quoted).ok()
}

/// A runtime with its own temporary state root.
pub struct Rt {
    pub root: tempfile::TempDir,
}

impl Default for Rt {
    fn default() -> Self {
        Self::new()
    }
}

impl Rt {
    pub fn new() -> Rt {
        Rt {
            root: tempfile::Builder::new()
                .prefix("berth-rt-root-")
                .tempdir()
                .unwrap(),
        }
    }

    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// A `berth-runtime --root ROOT ARGS...` command, stdin from /dev/null.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--root").arg(self.root()).args(args);
        c.stdin(Stdio::null());
        c
    }

    /// Runs `berth-runtime ARGS` to completion, capturing its output. Do not
    /// use this for `create` / `run --detach`: the container inherits the
    /// pipes (see [`Rt::create`]).
    pub fn out(&self, args: &[&str]) -> Out {
        Out::from_output(self.cmd(args).output().unwrap())
    }

    /// `create --bundle B ID`, with the runtime's (and so the container's)
    /// stdout and stderr going to files (see [`Ctr::stdout`]): a pipe would
    /// stay open as long as the container lives.
    pub fn create(&self, c: &Ctr, extra: &[&str]) -> Out {
        let mut args = vec!["create", "--bundle", c.bundle_path_str()];
        args.extend_from_slice(extra);
        args.push(&c.id);
        self.with_files(c, &args)
    }

    /// `run --detach --bundle B ID`, output as for [`Rt::create`].
    pub fn run_detached(&self, c: &Ctr) -> Out {
        self.with_files(
            c,
            &["run", "--detach", "--bundle", c.bundle_path_str(), &c.id],
        )
    }

    fn with_files(&self, c: &Ctr, args: &[&str]) -> Out {
        let stdout = std::fs::File::create(c.out_file()).unwrap();
        let stderr = std::fs::File::create(c.err_file()).unwrap();
        let status = self
            .cmd(args)
            .stdout(stdout)
            .stderr(stderr)
            .status()
            .unwrap();
        Out {
            code: status.code(),
            stdout: c.stdout(),
            stderr: c.stderr(),
        }
    }

    /// `run --bundle B ID` in the foreground, waiting for the container.
    pub fn run(&self, c: &Ctr) -> Out {
        self.out(&["run", "--bundle", c.bundle_path_str(), &c.id])
    }

    /// `run` in the background, output captured.
    pub fn spawn_run(&self, c: &Ctr) -> Child {
        self.cmd(&["run", "--bundle", c.bundle_path_str(), &c.id])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// The parsed output of `state ID`; panics if it fails.
    #[track_caller]
    pub fn state(&self, id: &str) -> Value {
        let o = self.out(&["state", id]);
        serde_json::from_str(o.ok()).unwrap()
    }

    pub fn status(&self, id: &str) -> Option<String> {
        let o = self.out(&["state", id]);
        if o.code != Some(0) {
            return None;
        }
        let v: Value = serde_json::from_str(&o.stdout).ok()?;
        v["status"].as_str().map(str::to_owned)
    }

    /// Polls `state` until the status is `want` (10 s at most).
    #[track_caller]
    pub fn wait_status(&self, id: &str, want: &str) {
        let mut last = None;
        let ok = poll(Duration::from_secs(10), || {
            last = self.status(id);
            last.as_deref() == Some(want)
        });
        assert!(ok, "container {id} never became {want}: last {last:?}");
    }

    /// The init pid from `state`.
    #[track_caller]
    pub fn pid(&self, id: &str) -> i32 {
        let p = self.state(id)["pid"].as_i64().unwrap();
        assert!(p > 0, "pid {p}");
        p as i32
    }

    /// Asserts the state root has no container's entry left (the compiled
    /// seccomp programs' cache, `@seccomp`, stays by design: it is no
    /// container's and holds only programs, 0600 in a 0700 directory).
    #[track_caller]
    pub fn assert_empty(&self) {
        let left: Vec<_> = std::fs::read_dir(self.root())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n != "@seccomp")
            .collect();
        assert!(left.is_empty(), "state root not empty: {left:?}");
    }
}

/// Calls `f` every 5 ms until it returns true or `limit` passes.
pub fn poll(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A container: its bundle, ID, cgroupsPath and the runtime root it lives
/// in. Dropping it runs `delete --force`.
pub struct Ctr {
    pub id: String,
    pub cgpath: String,
    pub bundle: Bundle,
    root: PathBuf,
    /// Holds the output files of `create` (outside the bundle).
    files: tempfile::TempDir,
}

impl Ctr {
    /// A busybox bundle running `args`, with a unique ID and cgroupsPath.
    pub fn new(rt: &Rt, args: &[&str]) -> Ctr {
        let mut bundle = Bundle::busybox(args).unwrap();
        let cgpath = format!("/{}", unique("berth-test"));
        let mut linux = bundle.spec().linux().clone().unwrap();
        linux.set_cgroups_path(Some(PathBuf::from(&cgpath)));
        bundle.spec_mut().set_linux(Some(linux));
        bundle.save().unwrap();
        Ctr {
            id: unique("t"),
            cgpath,
            bundle,
            root: rt.root().to_owned(),
            files: tempfile::Builder::new()
                .prefix("berth-out-")
                .tempdir()
                .unwrap(),
        }
    }

    /// `sh -c SCRIPT`.
    pub fn sh(rt: &Rt, script: &str) -> Ctr {
        Self::new(rt, &["sh", "-c", script])
    }

    pub fn spec_mut(&mut self) -> &mut Spec {
        self.bundle.spec_mut()
    }

    /// Changes the spec and saves config.json.
    pub fn edit(&mut self, f: impl FnOnce(&mut Spec)) -> &mut Self {
        f(self.bundle.spec_mut());
        self.bundle.save().unwrap();
        self
    }

    /// Changes the spec as JSON (for fields oci-spec's setters make awkward).
    pub fn edit_json(&mut self, f: impl FnOnce(&mut Value)) -> &mut Self {
        let mut v = serde_json::to_value(self.bundle.spec()).unwrap();
        f(&mut v);
        let spec: Spec = serde_json::from_value(v).unwrap();
        *self.bundle.spec_mut() = spec;
        self.bundle.save().unwrap();
        self
    }

    pub fn bundle_path_str(&self) -> &str {
        self.bundle.path().to_str().unwrap()
    }

    pub fn rootfs(&self) -> PathBuf {
        self.bundle.rootfs()
    }

    pub fn out_file(&self) -> PathBuf {
        self.files.path().join("stdout")
    }

    pub fn err_file(&self) -> PathBuf {
        self.files.path().join("stderr")
    }

    /// What a created container (or `create` itself) wrote to stdout so far.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(self.out_file()).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.err_file()).unwrap_or_default()
    }

    /// Polls until the container's stdout contains `what`.
    #[track_caller]
    pub fn wait_output(&self, what: &str) -> String {
        let mut out = String::new();
        let ok = poll(Duration::from_secs(10), || {
            out = self.stdout();
            out.contains(what)
        });
        assert!(
            ok,
            "never printed {what:?}: stdout {out:?}, stderr {:?}",
            self.stderr()
        );
        out
    }

    /// Deletes the container and asserts that nothing of it is left.
    #[track_caller]
    pub fn finish(self) {
        force_delete(&self.root, &self.id);
        assert_clean(&self.root, &self.id, &self.cgpath, self.bundle.path());
    }

    /// Asserts nothing is left without deleting first (for failed creates).
    #[track_caller]
    pub fn assert_nothing_left(&self) {
        assert_clean(&self.root, &self.id, &self.cgpath, self.bundle.path());
    }
}

impl Drop for Ctr {
    fn drop(&mut self) {
        force_delete(&self.root, &self.id);
    }
}

fn force_delete(root: &Path, id: &str) {
    let _ = Command::new(BIN)
        .arg("--root")
        .arg(root)
        .args(["delete", "--force", id])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// The cgroup directories named `cgpath` that exist in any hierarchy.
pub fn cgroup_dirs(cgpath: &str) -> Vec<PathBuf> {
    let rel = cgpath.trim_start_matches('/');
    let mut found = Vec::new();
    for h in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let p = h.path().join(rel);
        if p.exists() {
            found.push(p);
        }
    }
    found
}

/// Lines of the host's mountinfo that mention `path`.
pub fn mounts_mentioning(path: &Path) -> Vec<String> {
    let needle = path.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(&needle))
        .map(str::to_owned)
        .collect()
}

#[track_caller]
pub fn assert_clean(root: &Path, id: &str, cgpath: &str, bundle: &Path) {
    let dirs = cgroup_dirs(cgpath);
    assert!(dirs.is_empty(), "cgroup directories left: {dirs:?}");
    let mounts = mounts_mentioning(bundle);
    assert!(mounts.is_empty(), "mounts left: {mounts:?}");
    let state = root.join(id);
    assert!(!state.exists(), "state dir left: {}", state.display());
}

/// The v1 hierarchy directory of a controller for `cgpath`.
pub fn v1_dir(controller: &str, cgpath: &str) -> PathBuf {
    Path::new("/sys/fs/cgroup")
        .join(controller)
        .join(cgpath.trim_start_matches('/'))
}

/// `readlink /proc/PID/ns/NAME`.
pub fn ns_of(pid: &str, name: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{name}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// A value of the `Key:` line of /proc/PID/status.
pub fn proc_status(pid: i32, key: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
}
