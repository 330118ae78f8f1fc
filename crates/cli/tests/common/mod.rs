//! Shared support for the `berth` command's integration tests: a private store per
//! test (a fresh `--root`, checked and removed on drop), the busybox image, and
//! archives (docker-archive, OCI) built here with the tar crate.
#![allow(dead_code)]

use berth_digest::Digest;
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use tempfile::TempDir;

pub const BERTH: &str = env!("CARGO_BIN_EXE_berth");

/// The OCI runtime `berth` drives: `target/<profile>/berth-runtime`, built (with
/// `berth-monitor`, which `berth` also finds beside itself) once if missing or older
/// than its sources (cargo builds only the binaries of the package under test).
pub fn runtime() -> &'static Path {
    static RT: OnceLock<PathBuf> = OnceLock::new();
    RT.get_or_init(|| {
        let dir = Path::new(BERTH).parent().unwrap().to_path_buf();
        let crates = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let mut build = Vec::new();
        for (pkg, src) in [
            ("berth-runtime", "runtime"),
            ("berth-monitor", "monitor"),
            ("berth-dns", "dns"),
        ] {
            if pkg == "berth-runtime" && std::env::var_os("BERTH_RUNTIME").is_some() {
                continue;
            }
            if stale(&dir.join(pkg), &crates.join(src).join("src")) {
                build.extend(["-p", pkg, "--bin", pkg]);
            }
        }
        if !build.is_empty() {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let st = Command::new(cargo)
                .arg("build")
                .args(&build)
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .status()
                .unwrap();
            assert!(st.success(), "cargo build {build:?} failed");
        }
        for pkg in ["berth-runtime", "berth-monitor", "berth-dns"] {
            let p = dir.join(pkg);
            assert!(p.is_file(), "{} is missing", p.display());
        }
        match std::env::var_os("BERTH_RUNTIME") {
            Some(p) => PathBuf::from(p),
            None => dir.join("berth-runtime"),
        }
    })
}

/// Whether `bin` is missing or older than a file under `src`.
fn stale(bin: &Path, src: &Path) -> bool {
    fn newest(d: &Path) -> std::time::SystemTime {
        let mut t = std::time::UNIX_EPOCH;
        for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
            let m = match e.metadata() {
                Ok(m) => m,
                Err(_) => continue,
            };
            let et = if m.is_dir() {
                newest(&e.path())
            } else {
                m.modified().unwrap_or(t)
            };
            t = t.max(et);
        }
        t
    }
    match std::fs::metadata(bin).and_then(|m| m.modified()) {
        Ok(built) => newest(src) > built,
        Err(_) => true,
    }
}

/// Live processes (zombies excluded) whose command line mentions `root` and
/// whose arguments `is` accepts.
fn processes_of(root: &Path, is: impl Fn(&[String]) -> bool) -> Vec<i32> {
    let r = root.to_string_lossy().into_owned();
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if is(&args) && args.iter().any(|a| a.contains(&r)) && process_alive(pid) {
            pids.push(pid);
        }
    }
    pids
}

/// Live `berth-monitor` processes (zombies excluded) whose command line mentions `root`.
pub fn monitor_pids(root: &Path) -> Vec<i32> {
    processes_of(root, |args| {
        args.first()
            .is_some_and(|a| a.rsplit('/').next() == Some("berth-monitor"))
    })
}

/// The detached workers still working on the store at `root`: a command
/// hands its trash and the database's checkpoint to one and returns before
/// it is done. Started as `berth system delete-trash [--checkpoint ROOT]
/// PATHS`, or forked by the command line (named `berth-deleter`, with the
/// command's arguments).
pub fn detached_worker_pids(root: &Path) -> Vec<i32> {
    let mut pids = processes_of(root, |args| args.iter().any(|a| a == "delete-trash"));
    pids.extend(processes_of(root, |_| true).into_iter().filter(|pid| {
        std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .is_ok_and(|c| c.trim() == "berth-deleter")
    }));
    pids
}

/// Waits (up to two minutes) for [`detached_worker_pids`] of `root` to end:
/// a worker still checkpointing would make the database's `-wal` and `-shm`
/// files again under a directory being removed. True when none is left.
pub fn wait_detached_workers(root: &Path) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !detached_worker_pids(root).is_empty() {
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    true
}

/// Whether `pid` exists and is not a zombie.
pub fn process_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = s[s.rfind(')')? + 1..].trim_start().to_owned();
            Some(!rest.starts_with('Z') && !rest.starts_with('X'))
        })
        .unwrap_or(false)
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn describe(args: &[&str], out: &Output) -> String {
    format!(
        "berth {}: {}\n--- stdout:\n{}\n--- stderr:\n{}",
        args.join(" "),
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    )
}

/// Mount points (decoded from /proc/self/mountinfo) whose path or source mentions `dir`.
pub fn mounts_mentioning(dir: &Path) -> Vec<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let d = dir.to_string_lossy().into_owned();
    info.lines()
        .filter(|l| unescape(l).contains(&d))
        .map(|l| {
            let mp = l.split(' ').nth(4).unwrap_or("");
            unescape(mp)
        })
        .collect()
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            if let Ok(v) =
                u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 4]).unwrap_or("x"), 8)
            {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A private berth store. On drop (unless the test already panicked) it asserts
/// that no container is left, that no mount mentions the root, then deletes the root
/// and asserts that it is gone.
pub struct Berth {
    dir: Option<TempDir>,
    root: PathBuf,
    pub driver: Option<&'static str>,
}

impl Berth {
    pub fn new() -> Berth {
        runtime();
        let dir = tempfile::Builder::new()
            .prefix("berth-cli-test-")
            .tempdir()
            .unwrap();
        let root = dir.path().join("root");
        Berth {
            dir: Some(dir),
            root,
            driver: None,
        }
    }

    pub fn with_driver(driver: &'static str) -> Berth {
        let mut b = Berth::new();
        b.driver = Some(driver);
        b
    }

    /// A store with `busybox:latest` imported.
    pub fn with_busybox() -> Berth {
        let b = Berth::new();
        b.import_busybox();
        b
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A scratch directory beside the root (removed with it).
    pub fn scratch(&self) -> PathBuf {
        self.dir.as_ref().unwrap().path().to_path_buf()
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BERTH);
        c.arg("--root").arg(&self.root);
        if let Some(d) = self.driver {
            c.arg("--storage-driver").arg(d);
        }
        c.args(args);
        c.env("BERTH_RUNTIME", runtime());
        c.env_remove("BERTH_ROOT");
        c.env_remove("BERTH_STORAGE_DRIVER");
        // The host's /etc/berth/daemon.json is not the test's.
        c.env("BERTH_DAEMON_JSON", "/nonexistent/berth-daemon.json");
        // A test never reaches a registry that is not on this machine (docker.io).
        c.env("BERTH_LOOPBACK_REGISTRIES_ONLY", "1");
        c.stdin(Stdio::null());
        c
    }

    /// Runs berth, whatever its outcome.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Runs berth with `input` on stdin.
    /// Runs `berth ARGS` with a pty as its stdin, stdout, stderr and
    /// controlling terminal (`script`, as a user's shell would), `typed`
    /// typed into the terminal at once; returns how it ended and what the
    /// terminal showed. The terminal's input stays open until berth ends; a
    /// run that does not end in 60 s fails.
    #[allow(dead_code)]
    pub fn typed_on_a_terminal(
        &self,
        args: &[&str],
        typed: &[u8],
    ) -> (std::process::ExitStatus, Vec<u8>) {
        use std::io::Read;
        use std::time::{Duration, Instant};
        let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
        let mut line = format!("{BERTH} --root {}", quote(self.root.to_str().unwrap()));
        for a in args {
            line.push(' ');
            line.push_str(&quote(a));
        }
        let mut child = self
            .script_cmd(&line)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take();
        if let Some(i) = &mut input {
            i.write_all(typed).unwrap();
        }
        let mut stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = stdout.read_to_end(&mut v);
            v
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break st;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("berth {args:?} on a terminal did not end");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        drop(input);
        (status, reader.join().unwrap())
    }

    /// `script -qec LINE /dev/null` (a shell line on a pty) with the
    /// environment berth's tests give berth; LINE names the binary itself.
    #[allow(dead_code)]
    pub fn script_cmd(&self, line: &str) -> Command {
        let mut c = Command::new("script");
        c.args(["-qec", line, "/dev/null"])
            .env("BERTH_RUNTIME", runtime())
            .env("BERTH_DAEMON_JSON", "/nonexistent/berth-daemon.json")
            .env("BERTH_LOOPBACK_REGISTRIES_ONLY", "1")
            .env_remove("BERTH_ROOT")
            .env_remove("BERTH_STORAGE_DRIVER")
            .stdin(Stdio::piped());
        c
    }

    pub fn run_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        let mut c = self.cmd(args);
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_vec();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        out
    }

    /// Runs berth, asserts success, returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "{}", describe(args, &out));
        text(&out.stdout)
    }

    /// Runs berth, asserts it fails with `code`, a single `Error: ` line on stderr
    /// (extra lines only if they are Docker's "See 'berth … --help'." pointer) and
    /// returns that line.
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.run(args);
        check_failure(args, &out, code)
    }

    pub fn import_busybox(&self) -> String {
        let tar = self.scratch().join("busybox.tar");
        std::fs::write(&tar, busybox_tar()).unwrap();
        let out = self.ok(&["import", tar.to_str().unwrap(), "busybox:latest"]);
        std::fs::remove_file(&tar).unwrap();
        let id = out.trim().to_owned();
        assert!(
            id.starts_with("sha256:") && id.len() == 71,
            "import printed {out:?}"
        );
        id
    }

    /// `images -q --no-trunc`, sorted, each once (an image with two tags has two rows).
    pub fn image_ids(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .ok(&["images", "-q", "--no-trunc"])
            .lines()
            .map(str::to_owned)
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// The blobs in the store, sorted (hex names; temporary files excluded).
    pub fn blobs(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.root.join("blobs/sha256"))
            .map(|rd| {
                rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .filter(|n| !n.starts_with('.'))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Every entry in the blob directory, temporary files included.
    pub fn blob_dir_entries(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.root.join("blobs/sha256"))
            .map(|rd| {
                rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// The directories in `storage/layers` (not temporary ones).
    pub fn layer_dirs(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.root.join("storage/layers"))
            .map(|rd| {
                rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .filter(|n| !n.starts_with('.'))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// `inspect` of one image (or container), parsed.
    pub fn inspect(&self, name: &str) -> Value {
        let out = self.ok(&["inspect", name]);
        let v: Value = serde_json::from_str(&out).unwrap();
        let arr = v.as_array().unwrap();
        assert_eq!(arr.len(), 1, "{out}");
        arr[0].clone()
    }

    pub fn diff_ids(&self, name: &str) -> Vec<String> {
        self.inspect(name)["RootFS"]["Layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap().to_owned())
            .collect()
    }

    pub fn image_id(&self, name: &str) -> String {
        self.inspect(name)["Id"].as_str().unwrap().to_owned()
    }
}

impl Default for Berth {
    fn default() -> Self {
        Berth::new()
    }
}

pub fn check_failure(args: &[&str], out: &Output, code: i32) -> String {
    let what = describe(args, out);
    assert_eq!(out.status.code(), Some(code), "{what}");
    let err = text(&out.stderr);
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| !l.starts_with("See 'berth"))
        .collect();
    assert_eq!(lines.len(), 1, "expected one error line: {what}");
    assert!(
        lines[0].starts_with("Error: ") || lines[0].starts_with("unknown flag: "),
        "{what}"
    );
    lines[0].to_owned()
}

impl Drop for Berth {
    fn drop(&mut self) {
        let panicking = std::thread::panicking();
        let mut problems = Vec::new();
        if self.root.join("berth.db").exists() {
            let out = self.run(&["ps", "-a", "-q", "--no-trunc"]);
            let left = text(&out.stdout);
            if !left.trim().is_empty() {
                problems.push(format!("containers left: {left}"));
                for id in left.split_whitespace() {
                    let _ = self.run(&["rm", "-f", id]);
                }
            }
        }
        // Networks of this root: bridges, rules, namespaces.
        if self.root.join("berth.db").exists() {
            let out = self.run(&["system", "reset", "-f"]);
            if !out.status.success() {
                problems.push(format!("system reset failed: {}", text(&out.stderr)));
            }
            let netns = self.root.join("run").join("netns");
            if let Ok(d) = std::fs::read_dir(&netns) {
                let left: Vec<_> = d.flatten().map(|e| e.file_name()).collect();
                if !left.is_empty() {
                    problems.push(format!("network namespaces left: {left:?}"));
                }
            }
        }
        // A monitor outlives the command that stopped its container by the
        // moment its exit command takes; one still there after that is a leak.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut monitors = monitor_pids(&self.root);
        while !monitors.is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(50));
            monitors = monitor_pids(&self.root);
        }
        if !monitors.is_empty() {
            problems.push(format!("berth-monitor processes left: {monitors:?}"));
            for pid in monitors {
                // SAFETY: kill(2) with a plain pid and signal number.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        // Big trees (more than a command deletes itself) go to a detached
        // `berth system delete-trash`: let it finish before the root goes.
        let trash = self.root.join("storage").join("trash");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        let trash_left = || std::fs::read_dir(&trash).map_or(0, |d| d.count());
        while trash_left() > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        if trash_left() > 0 {
            problems.push(format!("{} not emptied", trash.display()));
        }
        if !wait_detached_workers(&self.root) {
            problems.push("detached delete-trash workers still running".into());
        }
        let mounts = mounts_mentioning(&self.root);
        if !mounts.is_empty() {
            problems.push(format!("mounts left: {mounts:?}"));
            for m in mounts.iter().rev() {
                let c = std::ffi::CString::new(m.as_str()).unwrap();
                // SAFETY: a valid NUL-terminated path; MNT_DETACH only detaches it.
                unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            }
        }
        let dir = self.dir.take().unwrap();
        let path = dir.path().to_path_buf();
        if let Err(e) = std::fs::remove_dir_all(&path) {
            problems.push(format!("cannot remove {}: {e}", path.display()));
        }
        drop(dir);
        if path.exists() {
            problems.push(format!("{} still exists", path.display()));
        }
        if !problems.is_empty() && !panicking {
            panic!("store not left clean: {}", problems.join("; "));
        }
    }
}

// ---------------------------------------------------------------- fixtures

/// A tarball of the busybox rootfs (built once per test binary).
pub fn busybox_tar() -> &'static [u8] {
    static TAR: OnceLock<Vec<u8>> = OnceLock::new();
    TAR.get_or_init(|| {
        let dir = TempDir::new().unwrap();
        berth_fixtures::busybox_rootfs(dir.path()).unwrap();
        let mut b = tar::Builder::new(Vec::new());
        b.follow_symlinks(false);
        b.mode(tar::HeaderMode::Deterministic);
        b.append_dir_all(".", dir.path()).unwrap();
        b.into_inner().unwrap()
    })
}

/// One entry of a layer tar made by hand.
#[derive(Clone, Debug)]
pub enum Entry {
    Dir(String),
    File(String, Vec<u8>),
    Symlink(String, String),
}

pub fn dir(p: &str) -> Entry {
    Entry::Dir(p.to_owned())
}
pub fn file(p: &str, data: &[u8]) -> Entry {
    Entry::File(p.to_owned(), data.to_vec())
}
/// A `.wh.` whiteout of `p` (`a/b` → `a/.wh.b`).
pub fn whiteout(p: &str) -> Entry {
    let (parent, name) = match p.rsplit_once('/') {
        Some((a, b)) => (format!("{a}/"), b),
        None => (String::new(), p),
    };
    Entry::File(format!("{parent}.wh.{name}"), Vec::new())
}
/// Marks directory `d` opaque.
pub fn opaque(d: &str) -> Entry {
    Entry::File(format!("{d}/.wh..wh..opq"), Vec::new())
}

pub fn layer_tar(entries: &[Entry]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        match e {
            Entry::Dir(p) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, p, std::io::empty()).unwrap();
            }
            Entry::File(p, data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, p, &data[..]).unwrap();
            }
            Entry::Symlink(p, t) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, p, t).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn sha(data: &[u8]) -> String {
    Digest::of(data).to_string()
}

pub fn hex(data: &[u8]) -> String {
    Digest::of(data).hex().to_owned()
}

/// A layer of an archive: its uncompressed tar and whether to gzip it.
#[derive(Clone)]
pub struct Layer {
    pub tar: Vec<u8>,
    pub gzip: bool,
}

impl Layer {
    pub fn plain(tar: Vec<u8>) -> Layer {
        Layer { tar, gzip: false }
    }
    pub fn gz(tar: Vec<u8>) -> Layer {
        Layer { tar, gzip: true }
    }
    pub fn busybox() -> Layer {
        Layer::plain(busybox_tar().to_vec())
    }
    pub fn blob(&self) -> Vec<u8> {
        if self.gzip {
            gzip(&self.tar)
        } else {
            self.tar.clone()
        }
    }
    pub fn diff_id(&self) -> String {
        sha(&self.tar)
    }
}

/// An image to put in an archive.
#[derive(Clone)]
pub struct ImageSpec {
    pub tags: Vec<String>,
    pub layers: Vec<Layer>,
    pub cmd: Vec<String>,
    /// Replaces the diff_ids the config would declare.
    pub diff_ids: Option<Vec<String>>,
    /// OCI only: replaces the layer media types.
    pub media_types: Option<Vec<String>>,
}

impl ImageSpec {
    pub fn new(tag: &str, layers: Vec<Layer>) -> ImageSpec {
        ImageSpec {
            tags: if tag.is_empty() {
                Vec::new()
            } else {
                vec![tag.to_owned()]
            },
            layers,
            cmd: vec!["sh".into()],
            diff_ids: None,
            media_types: None,
        }
    }

    pub fn config(&self) -> Vec<u8> {
        let diff_ids: Vec<String> = self
            .diff_ids
            .clone()
            .unwrap_or_else(|| self.layers.iter().map(Layer::diff_id).collect());
        let history: Vec<Value> = self
            .layers
            .iter()
            .enumerate()
            .map(|(i, _)| json!({"created": "2024-01-01T00:00:00Z", "created_by": format!("layer {i}")}))
            .collect();
        let arch = if cfg!(target_arch = "aarch64") {
            "arm64"
        } else {
            "amd64"
        };
        serde_json::to_vec(&json!({
            "architecture": arch,
            "os": "linux",
            "created": "2024-01-01T00:00:00Z",
            "config": {"Cmd": self.cmd, "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": history,
        }))
        .unwrap()
    }
}

fn append(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    h.set_mtime(1_700_000_000);
    b.append_data(&mut h, path, data).unwrap();
}

/// Hooks to break an archive on purpose.
#[derive(Default, Clone)]
pub struct Tamper {
    /// Blob digests (hex) to leave out of the archive.
    pub omit: Vec<String>,
    /// Replace a blob's bytes (by hex digest) while keeping its name.
    pub replace: Vec<(String, Vec<u8>)>,
}

/// A classic docker-archive (`docker save`): `<hex>.json` configs, `<hex>/layer.tar`.
pub fn docker_archive(images: &[ImageSpec]) -> Vec<u8> {
    docker_archive_with(images, &Tamper::default())
}

pub fn docker_archive_with(images: &[ImageSpec], t: &Tamper) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut manifest = Vec::new();
    let mut written = std::collections::HashSet::new();
    for img in images {
        let config = img.config();
        let config_name = format!("{}.json", hex(&config));
        let mut layer_names = Vec::new();
        let mut files: Vec<(String, String, Vec<u8>)> =
            vec![(hex(&config), config_name.clone(), config)];
        for l in &img.layers {
            let blob = l.blob();
            let h = hex(&blob);
            let name = format!("{h}/layer.tar");
            layer_names.push(name.clone());
            files.push((h, name, blob));
        }
        for (h, name, data) in files {
            if t.omit.contains(&h) || !written.insert(name.clone()) {
                continue;
            }
            let data = t
                .replace
                .iter()
                .find(|(r, _)| *r == h)
                .map(|(_, d)| d.clone())
                .unwrap_or(data);
            append(&mut b, &name, &data);
        }
        manifest.push(json!({"Config": config_name, "RepoTags": img.tags, "Layers": layer_names}));
    }
    append(
        &mut b,
        "manifest.json",
        &serde_json::to_vec(&manifest).unwrap(),
    );
    b.into_inner().unwrap()
}

/// An OCI image layout in a tar (`oci-archive`).
pub fn oci_archive(images: &[ImageSpec]) -> Vec<u8> {
    oci_archive_with(images, &Tamper::default())
}

pub fn oci_archive_with(images: &[ImageSpec], t: &Tamper) -> Vec<u8> {
    let mut blobs: Vec<(String, Vec<u8>)> = Vec::new();
    let mut index = Vec::new();
    for img in images {
        let config = img.config();
        let mut layers = Vec::new();
        for (i, l) in img.layers.iter().enumerate() {
            let blob = l.blob();
            let mt = match &img.media_types {
                Some(m) => m[i].clone(),
                None if l.gzip => "application/vnd.oci.image.layer.v1.tar+gzip".into(),
                None => "application/vnd.oci.image.layer.v1.tar".into(),
            };
            layers.push(json!({"mediaType": mt, "digest": sha(&blob), "size": blob.len()}));
            blobs.push((hex(&blob), blob));
        }
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": sha(&config), "size": config.len()},
            "layers": layers,
        }))
        .unwrap();
        blobs.push((hex(&config), config));
        let mut desc = json!({"mediaType": "application/vnd.oci.image.manifest.v1+json",
                              "digest": sha(&manifest), "size": manifest.len()});
        if let Some(tag) = img.tags.first() {
            desc["annotations"] = json!({"io.containerd.image.name": tag,
                                         "org.opencontainers.image.ref.name": tag.rsplit(':').next()});
        }
        index.push(desc);
        blobs.push((hex(&manifest), manifest));
    }
    let mut b = tar::Builder::new(Vec::new());
    append(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    let mut written = std::collections::HashSet::new();
    for (h, data) in blobs {
        if t.omit.contains(&h) || !written.insert(h.clone()) {
            continue;
        }
        let data = t
            .replace
            .iter()
            .find(|(r, _)| *r == h)
            .map(|(_, d)| d.clone())
            .unwrap_or(data);
        append(&mut b, &format!("blobs/sha256/{h}"), &data);
    }
    let idx = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                     "manifests": index});
    append(&mut b, "index.json", &serde_json::to_vec(&idx).unwrap());
    b.into_inner().unwrap()
}

/// Names in a tar stream.
pub fn tar_names(data: &[u8]) -> Vec<String> {
    let mut a = tar::Archive::new(data);
    a.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            e.path()
                .unwrap()
                .to_string_lossy()
                .trim_start_matches("./")
                .to_owned()
        })
        .collect()
}

/// Deterministic pseudo-random bytes (incompressible).
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

/// Polls `f` until it holds; panics with `what` after `secs`.
pub fn wait_until(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !f() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A full container or image ID: 64 lowercase hex digits.
pub fn is_hex64(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A build context under the store's scratch directory.
pub fn context(b: &Berth, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = b.scratch().join(name);
    for (path, data) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A free TCP port on 127.0.0.1 (bound, then released for the caller).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A plain-HTTP docker-registry (Debian's, CNCF distribution) on 127.0.0.1 with its
/// storage in a temporary directory; killed on drop. registry.rs has its own, with auth
/// and TLS.
pub struct Registry {
    child: std::process::Child,
    _dir: TempDir,
    pub addr: String,
}

impl Registry {
    pub fn start() -> Registry {
        let dir = tempfile::Builder::new()
            .prefix("berth-registry-")
            .tempdir()
            .unwrap();
        let addr = format!("127.0.0.1:{}", free_port());
        let conf = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
            dir.path().join("data").display()
        );
        std::fs::write(dir.path().join("config.yml"), conf).unwrap();
        let child = Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let r = Registry {
            child,
            _dir: dir,
            addr,
        };
        wait_until(20, "the registry to listen", || {
            std::net::TcpStream::connect(&r.addr).is_ok()
        });
        r
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
