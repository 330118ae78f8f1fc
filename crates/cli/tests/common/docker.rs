//! The oracle of issue 12: a private Docker 20.10 daemon (Debian's docker.io) per test, and
//! a differential runner that plays the same scenarios through `docker` and `berth` and
//! compares normalised results.
//!
//! The daemon: containerd with its own config (root, state, grpc socket, CRI off) and dockerd
//! with its own data root, exec root, pid file, unix socket, `--config-file` (`{}`),
//! `--bridge=none --iptables=false`, `--default-ulimit nofile=20000:20000` and a cgroup parent
//! of its own, both inside a network namespace made for the test (only `lo`, up: no route
//! out) and a private mount namespace (`unshare --mount --propagation slave nsenter --net=`;
//! not `ip netns exec`, which remounts /sys and hides the cgroup mounts). Everything lives in
//! a directory of its own; [`Dockerd`]'s drop stops it all, even after a failed assertion:
//! containers removed, dockerd and containerd killed by PID, shims found by their working
//! directory, mounts under the directory unmounted, the cgroup parent, the namespace and the
//! directory removed.
//!
//! The scenarios are data ([`Scenario`], [`Step`]): arguments as a docker user types them and
//! what to compare, so that the same list can be played through any [`Engine`] (issue 13:
//! the docker CLI against berth's API socket).
#![allow(dead_code)]

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The docker.io 20.10 client (on CI the only one; `/usr/local/bin/docker` may be another).
pub const DOCKER: &str = "/usr/bin/docker";

/// Something that takes docker's command line: `docker -H …`, `berth --root …`.
pub trait Engine {
    fn label(&self) -> &'static str;
    /// Runs one command (stdin empty) and returns what it did.
    fn exec(&self, args: &[String]) -> Output;
    /// A directory on the host for files the scenarios bind (`{tmp}`).
    fn scratch(&self) -> PathBuf;
}

impl Engine for crate::common::Berth {
    fn label(&self) -> &'static str {
        "berth"
    }
    fn exec(&self, args: &[String]) -> Output {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        self.run(&a)
    }
    fn scratch(&self) -> PathBuf {
        crate::common::Berth::scratch(self).join("parity")
    }
}

/// The docker client against any socket that speaks Docker's API (issue 13 plays the
/// scenarios with it against berth's own socket: `compare(&scenarios, &dockerd, &client,
/// &known)`).
pub struct DockerClient {
    /// `unix:///path/to.sock`
    pub host: String,
    /// Where `{tmp}` points: a directory the daemon behind `host` can read.
    pub scratch: PathBuf,
    pub label: &'static str,
}

impl Engine for DockerClient {
    fn label(&self) -> &'static str {
        self.label
    }
    fn exec(&self, args: &[String]) -> Output {
        Command::new(DOCKER)
            .arg("-H")
            .arg(&self.host)
            .args(args)
            .env("DOCKER_CONFIG", self.scratch.join(".docker-client"))
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
    fn scratch(&self) -> PathBuf {
        self.scratch.clone()
    }
}

/// A private dockerd 20.10 with its own containerd, in a network namespace of its own.
pub struct Dockerd {
    dir: PathBuf,
    netns: String,
    cgroup: String,
    sock: PathBuf,
}

fn must(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

impl Dockerd {
    /// Starts the daemon; panics (the test fails, it never skips) when docker.io is missing.
    pub fn start() -> Dockerd {
        for bin in ["/usr/sbin/dockerd", "/usr/bin/containerd", DOCKER] {
            assert!(
                Path::new(bin).is_file(),
                "{bin} is missing: the Docker parity test needs Debian's docker.io 20.10 \
                 (apt-get install docker.io; scripts/packages-test.txt lists it)"
            );
        }
        static N: AtomicUsize = AtomicUsize::new(0);
        let tag = format!(
            "bdk{}x{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        // Short: unix socket paths are limited to 108 bytes.
        let dir = PathBuf::from(format!("/tmp/{tag}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let d = Dockerd {
            sock: dir.join("d.sock"),
            dir,
            netns: tag.clone(),
            cgroup: tag.clone(),
        };
        must(Command::new("ip").args(["netns", "add", &d.netns]));
        must(Command::new("ip").args(["-n", &d.netns, "link", "set", "lo", "up"]));
        let p = |f: &str| d.dir.join(f).to_string_lossy().into_owned();
        std::fs::write(
            d.dir.join("ctd.toml"),
            format!(
                "version = 2\nroot = \"{}\"\nstate = \"{}\"\n\
                 disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]\n  address = \"{}\"\n",
                p("ctd-root"),
                p("ctd-state"),
                p("ctd.sock")
            ),
        )
        .unwrap();
        std::fs::write(d.dir.join("d.json"), "{}\n").unwrap();
        let script = format!(
            "containerd --config {ctdconf} >{ctdlog} 2>&1 & echo $! > {ctdpid}\n\
             i=0; while [ ! -S {ctdsock} ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done\n\
             dockerd --config-file {dconf} --data-root {data} --exec-root {exec} --pidfile {dpid} \
               -H unix://{sock} --containerd {ctdsock} --bridge=none --iptables=false \
               --default-ulimit nofile=20000:20000 --cgroup-parent /{cg} >{dlog} 2>&1 &\n",
            ctdconf = p("ctd.toml"),
            ctdlog = p("ctd.log"),
            ctdpid = p("ctd.pid"),
            ctdsock = p("ctd.sock"),
            dconf = p("d.json"),
            data = p("data"),
            exec = p("exec"),
            dpid = p("d.pid"),
            sock = d.sock.display(),
            cg = d.cgroup,
            dlog = p("d.log"),
        );
        must(
            Command::new("unshare")
                .args(["--mount", "--propagation", "slave", "nsenter"])
                .arg(format!("--net=/run/netns/{}", d.netns))
                .args(["--", "sh", "-c", &script])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = d.run(&["version", "--format", "{{.Server.Version}}"]);
            if out.status.success() {
                let v = String::from_utf8_lossy(&out.stdout).into_owned();
                assert!(v.starts_with("20.10"), "dockerd is {v}, not 20.10");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "dockerd did not come up in 60 s: {}\n--- dockerd log:\n{}\n--- containerd log:\n{}",
                String::from_utf8_lossy(&out.stderr),
                std::fs::read_to_string(d.dir.join("d.log")).unwrap_or_default(),
                std::fs::read_to_string(d.dir.join("ctd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        d
    }

    pub fn socket(&self) -> &Path {
        &self.sock
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(DOCKER);
        c.arg("-H")
            .arg(format!("unix://{}", self.sock.display()))
            .args(args)
            .env("DOCKER_CONFIG", self.dir.join("client"))
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .stdin(Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn pid(&self, file: &str) -> Option<i32> {
        std::fs::read_to_string(self.dir.join(file))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    fn wait_gone(pid: i32, secs: u64) -> bool {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while crate::common::process_alive(pid) {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        true
    }

    fn kill(pid: i32, sig: i32, secs: u64) {
        // SAFETY: kill(2) with a PID this test started; no memory is shared.
        unsafe { libc::kill(pid, sig) };
        if !Self::wait_gone(pid, secs) {
            // SAFETY: as above.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            Self::wait_gone(pid, 10);
        }
    }

    /// PIDs whose working directory is under the daemon's directory (containerd's shims).
    fn shims(&self) -> Vec<i32> {
        let mut v = Vec::new();
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            if let Ok(cwd) = std::fs::read_link(format!("/proc/{pid}/cwd")) {
                if cwd.starts_with(&self.dir) {
                    v.push(pid);
                }
            }
        }
        v
    }
}

impl Engine for Dockerd {
    fn label(&self) -> &'static str {
        "docker"
    }
    fn exec(&self, args: &[String]) -> Output {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        self.run(&a)
    }
    fn scratch(&self) -> PathBuf {
        self.dir.join("parity")
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        // Containers first (dockerd would wait for each on shutdown).
        let out = self.run(&["ps", "-aq"]);
        let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        if !ids.is_empty() {
            let mut a = vec!["rm", "-fv"];
            a.extend(ids.iter().map(String::as_str));
            let _ = self.run(&a);
        }
        if let Some(pid) = self.pid("d.pid") {
            Self::kill(pid, libc::SIGTERM, 20);
        }
        for pid in self.shims() {
            Self::kill(pid, libc::SIGKILL, 5);
        }
        if let Some(pid) = self.pid("ctd.pid") {
            Self::kill(pid, libc::SIGTERM, 10);
        }
        let mut mounts = crate::common::mounts_mentioning(&self.dir);
        mounts.sort();
        for m in mounts.iter().rev() {
            let _ = Command::new("umount").args(["-l", m]).status();
        }
        // The cgroup parent, in every hierarchy (v1) or the unified one.
        let cg = &self.cgroup;
        if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
            for e in rd.flatten() {
                let _ = std::fs::remove_dir(e.path().join(cg));
            }
        }
        let _ = std::fs::remove_dir(Path::new("/sys/fs/cgroup").join(cg));
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ---------------------------------------------------------------------------------------
// Scenarios

/// What a step's outputs are compared on.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Check {
    /// Must succeed in both engines; nothing compared (preparation).
    Setup,
    /// Run; outcome ignored (clean-up, or a step whose effect a later step compares).
    Ignore,
    /// Exit status only.
    Exit,
    /// Exit status and normalised stdout.
    Out,
    /// Exit status and normalised stdout, lines sorted.
    Sorted,
    /// Exit status, normalised stdout and stderr.
    OutErr,
    /// Exit status and /proc/self/mountinfo reduced to mount point, type and options, sorted.
    Mountinfo,
    /// Exit status and the first line of stderr (prefixes `docker:`, `Error:`, `Error
    /// response from daemon:` and the command name stripped).
    Err,
    /// Exit status and the shape of the JSON on stdout: every key path with its value's
    /// type; each differing path is its own difference (`step:path`).
    Shape,
}

#[derive(Clone, Debug)]
pub struct Step {
    /// Unique within its scenario; `scenario/label` names a difference. Empty for
    /// Setup/Ignore steps.
    pub label: &'static str,
    /// docker's arguments. `{tmp}` becomes the engine's scratch directory.
    pub args: Vec<String>,
    pub check: Check,
}

#[derive(Clone, Debug)]
pub struct Scenario {
    pub name: &'static str,
    pub steps: Vec<Step>,
}

impl Scenario {
    pub fn new(name: &'static str) -> Scenario {
        Scenario {
            name,
            steps: Vec::new(),
        }
    }
    /// A step given as words.
    pub fn step(mut self, label: &'static str, check: Check, args: &[&str]) -> Scenario {
        self.steps.push(Step {
            label,
            args: args.iter().map(|s| s.to_string()).collect(),
            check,
        });
        self
    }
    pub fn setup(self, args: &[&str]) -> Scenario {
        self.step("", Check::Setup, args)
    }
    pub fn ignore(self, args: &[&str]) -> Scenario {
        self.step("", Check::Ignore, args)
    }
    /// A pause of a little over a second (for `--since`/`--until`).
    pub fn sleep(mut self) -> Scenario {
        self.steps.push(Step {
            label: "",
            args: vec!["{sleep}".into()],
            check: Check::Ignore,
        });
        self
    }
    /// `run --rm [opts] busybox sh -c SCRIPT`.
    pub fn sh(self, label: &'static str, check: Check, opts: &[&str], script: &str) -> Scenario {
        let mut a = vec!["run", "--rm"];
        a.extend_from_slice(opts);
        a.extend_from_slice(&["busybox", "sh", "-c", script]);
        self.step(label, check, &a)
    }
}

/// Why a difference is accepted.
#[derive(Clone, Copy, Debug)]
pub enum Why {
    /// A defect of issue 12 being fixed by another change (its number); the lead removes
    /// the entry when the fix is merged.
    Pending(u8, &'static str),
    /// berth differs on purpose.
    Intentional(&'static str),
    /// Not fixed yet.
    Todo(&'static str),
}

/// An accepted difference: `key` is `scenario/label`, or `scenario/label:path` (a Shape
/// path; a prefix of the path covers the subtree).
#[derive(Clone, Debug)]
pub struct Known {
    pub key: String,
    pub why: Why,
}

/// One entry per key, each `prefix` + `path` (`paths` empty: the prefixes themselves).
pub fn known(prefixes: &[&str], paths: &[&str], why: Why) -> Vec<Known> {
    let mut v = Vec::new();
    for p in prefixes {
        if paths.is_empty() {
            v.push(Known {
                key: p.to_string(),
                why,
            });
        }
        for q in paths {
            v.push(Known {
                key: format!("{p}{q}"),
                why,
            });
        }
    }
    v
}

/// One step's normalised result in one engine.
#[derive(Clone, Debug, PartialEq)]
struct Result1 {
    code: i32,
    text: String,
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// `{tmp}`: the engine's scratch directory; `{t0}`: the first whole second after the
/// scenario started (Unix time); `{now}`: the Unix time now (whole seconds).
fn expand(args: &[String], e: &dyn Engine, t0: u64) -> Vec<String> {
    let tmp = e.scratch().to_string_lossy().into_owned();
    let now = format!("{}", unix_now() as u64);
    args.iter()
        .map(|a| {
            a.replace("{tmp}", &tmp)
                .replace("{t0}", &t0.to_string())
                .replace("{now}", &now)
        })
        .collect()
}

fn observe(step: &Step, out: &Output, e: &dyn Engine) -> Result1 {
    let code = out.status.code().unwrap_or(-1);
    let tmp = e.scratch().to_string_lossy().into_owned();
    let clean = |b: &[u8]| {
        String::from_utf8_lossy(b)
            .replace('\r', "")
            .replace(&tmp, "{tmp}")
    };
    let stdout = clean(&out.stdout);
    let stderr = clean(&out.stderr);
    let text = match step.check {
        Check::Setup | Check::Ignore | Check::Exit => String::new(),
        Check::Out => mask(&stdout),
        Check::Sorted => sorted(&mask(&stdout)),
        Check::OutErr => format!("{}\n--- stderr:\n{}", mask(&stdout), mask(&stderr)),
        Check::Mountinfo => mountinfo(&stdout),
        Check::Err => first_error_line(&stderr),
        Check::Shape => match serde_json::from_str::<Value>(&stdout) {
            Ok(v) => {
                let mut paths = BTreeSet::new();
                shape(&v, "", &mut paths);
                paths.into_iter().collect::<Vec<_>>().join("\n")
            }
            Err(_) => format!("(not JSON) {}", mask(&stdout)),
        },
    };
    Result1 { code, text }
}

/// The differences found, and the report.
pub struct Outcome {
    /// All differences with their classification, for printing.
    pub report: String,
    /// Differences no Known entry covers.
    pub unexplained: usize,
    /// Known entries no difference matched any more.
    pub stale: Vec<String>,
    pub compared: usize,
}

/// Plays every scenario through `a` (the oracle, docker) and `b`, step by step, and
/// classifies each difference with `known`.
pub fn compare(scenarios: &[Scenario], a: &dyn Engine, b: &dyn Engine, known: &[Known]) -> Outcome {
    for e in [a, b] {
        let s = e.scratch();
        std::fs::create_dir_all(s.join("hostdir")).unwrap();
        std::fs::write(s.join("hostfile"), "from the host\n").unwrap();
        std::fs::write(s.join("hostdir/inside"), "inside\n").unwrap();
    }
    let mut diffs: Vec<(String, String)> = Vec::new(); // (key, detail)
    let mut compared = 0;
    let mut setup_failures = String::new();
    for sc in scenarios {
        // The next whole second: a scenario that uses it starts with `sleep()`, so that
        // nothing of the scenarios before falls after it.
        let t0 = unix_now() as u64 + 1;
        for step in &sc.steps {
            if step.args.first().is_some_and(|a| a == "{sleep}") {
                std::thread::sleep(Duration::from_millis(1100));
                continue;
            }
            let oa = a.exec(&expand(&step.args, a, t0));
            let ob = b.exec(&expand(&step.args, b, t0));
            match step.check {
                Check::Ignore => continue,
                Check::Setup => {
                    for (e, o) in [(a, &oa), (b, &ob)] {
                        if !o.status.success() {
                            setup_failures += &format!(
                                "  {}: {} {:?} failed: {}\n",
                                sc.name,
                                e.label(),
                                step.args,
                                String::from_utf8_lossy(&o.stderr).trim()
                            );
                        }
                    }
                    continue;
                }
                _ => {}
            }
            compared += 1;
            let key = format!("{}/{}", sc.name, step.label);
            let ra = observe(step, &oa, a);
            let rb = observe(step, &ob, b);
            if ra == rb {
                continue;
            }
            let cmd = format!("$ {}", step.args.join(" "));
            if matches!(step.check, Check::Shape | Check::Mountinfo) && ra.code == rb.code {
                // One difference per JSON path / mount point.
                let item = |l: &str| -> String {
                    match step.check {
                        Check::Shape => l.rsplit_once(" = ").map_or(l, |x| x.0).to_owned(),
                        _ => l.split(' ').next().unwrap_or("").to_owned(),
                    }
                };
                let la: BTreeSet<&str> = ra.text.lines().collect();
                let lb: BTreeSet<&str> = rb.text.lines().collect();
                let paths: BTreeSet<String> =
                    la.symmetric_difference(&lb).map(|l| item(l)).collect();
                for p in paths {
                    let pick = |s: &BTreeSet<&str>| -> String {
                        let v: Vec<&str> = s.iter().filter(|l| item(l) == p).copied().collect();
                        if v.is_empty() {
                            "(absent)".into()
                        } else {
                            v.join(", ")
                        }
                    };
                    diffs.push((
                        format!("{key}:{p}"),
                        format!(
                            "{cmd}\n      docker: {}\n      berth:  {}",
                            pick(&la),
                            pick(&lb)
                        ),
                    ));
                }
                continue;
            }
            let mut detail = cmd;
            if ra.code != rb.code {
                detail += &format!("\n      exit: docker {} berth {}", ra.code, rb.code);
            }
            if ra.text != rb.text {
                detail += &line_diff(&ra.text, &rb.text);
            }
            diffs.push((key, detail));
        }
    }
    let mut report = String::new();
    let mut unexplained = 0;
    let mut used = BTreeSet::new();
    let mut sections: [(String, String); 4] = Default::default();
    for (key, detail) in &diffs {
        let k = known.iter().find(|k| {
            *key == k.key
                || (key.starts_with(&k.key)
                    && matches!(key.as_bytes().get(k.key.len()), Some(b':' | b'.' | b'[')))
        });
        let (i, why) = match k {
            None => {
                unexplained += 1;
                (0, String::new())
            }
            Some(k) => {
                used.insert(k.key.as_str());
                match k.why {
                    Why::Pending(n, r) => (1, format!("defect {n}: {r}")),
                    Why::Todo(r) => (2, r.to_owned()),
                    Why::Intentional(r) => (3, r.to_owned()),
                }
            }
        };
        sections[i].1 += &format!("  {key}  [{why}]\n    {detail}\n");
    }
    let titles = [
        "UNEXPLAINED (neither fixed nor listed)",
        "PENDING (fixed by another change of issue 12)",
        "KNOWN-TODO",
        "INTENTIONAL",
    ];
    for (i, (_, body)) in sections.iter().enumerate() {
        if !body.is_empty() {
            report += &format!("=== {}:\n{body}", titles[i]);
        }
    }
    if !setup_failures.is_empty() {
        report = format!("=== SETUP STEPS THAT FAILED:\n{setup_failures}{report}");
        unexplained += 1;
    }
    let stale: Vec<String> = known
        .iter()
        .map(|k| k.key.clone())
        .filter(|k| !used.contains(k.as_str()))
        .collect();
    Outcome {
        report,
        unexplained,
        stale,
        compared,
    }
}

/// Runs `compare` for one test function's scenarios and fails (after printing every
/// difference) on an unexplained difference or a stale entry of `known`.
pub fn check_parity(
    test: &str,
    scenarios: &[Scenario],
    known: &[Known],
    berth: &crate::common::Berth,
) {
    let d = Dockerd::start();
    load_images(&d, berth);
    let o = compare(scenarios, &d, berth, known);
    // Entries of other test functions are not stale here.
    let mine: BTreeSet<&str> = scenarios.iter().map(|s| s.name).collect();
    let stale: Vec<&String> = o
        .stale
        .iter()
        .filter(|k| mine.contains(k.split('/').next().unwrap_or("")))
        .collect();
    eprintln!(
        "\n##### Docker parity, {test}: {} scenarios, {} compared steps\n{}",
        scenarios.len(),
        o.compared,
        o.report
    );
    if !stale.is_empty() {
        eprintln!("=== STALE entries (no difference any more: remove them):\n  {stale:?}");
    }
    assert!(
        o.unexplained == 0 && stale.is_empty(),
        "{test}: {} unexplained difference(s), {} stale entr(y/ies); see the report above",
        o.unexplained,
        stale.len()
    );
}

/// The images every scenario may use, identical in both engines: `busybox:latest`
/// (the fixture, `berth import`ed, `berth save`d, `docker load`ed) and `bbvol:latest`
/// (busybox plus a layer with `/data` owned by nobody, mode 0700, holding a file,
/// `/etc/conf.d/app.conf`, and `VOLUME /data` in its config), loaded into both.
pub fn load_images(d: &Dockerd, b: &crate::common::Berth) {
    b.import_busybox();
    let dir = b.scratch();
    let bb = dir.join("bb-save.tar");
    b.ok(&["save", "busybox", "-o", bb.to_str().unwrap()]);
    must(&mut d.cmd(&["load", "-i", bb.to_str().unwrap()]));
    let vol = dir.join("bbvol.tar");
    std::fs::write(&vol, bbvol_archive()).unwrap();
    b.ok(&["load", "-i", vol.to_str().unwrap()]);
    must(&mut d.cmd(&["load", "-i", vol.to_str().unwrap()]));
    std::fs::remove_file(&bb).unwrap();
    std::fs::remove_file(&vol).unwrap();
}

fn bbvol_archive() -> Vec<u8> {
    let mut t = tar::Builder::new(Vec::new());
    let mut add = |path: &str, kind: tar::EntryType, mode: u32, uid: u64, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(uid);
        h.set_gid(uid);
        h.set_size(data.len() as u64);
        h.set_mtime(1_700_000_000);
        t.append_data(&mut h, path, data).unwrap();
    };
    add("data/", tar::EntryType::Directory, 0o700, 65534, b"");
    add(
        "data/seed",
        tar::EntryType::Regular,
        0o640,
        65534,
        b"seeded\n",
    );
    add("etc/conf.d/", tar::EntryType::Directory, 0o755, 0, b"");
    add(
        "etc/conf.d/app.conf",
        tar::EntryType::Regular,
        0o644,
        0,
        b"x=1\n",
    );
    let layer = t.into_inner().unwrap();
    let base = crate::common::busybox_tar().to_vec();
    let diff_ids = [crate::common::sha(&base), crate::common::sha(&layer)];
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": if cfg!(target_arch = "aarch64") { "arm64" } else { "amd64" },
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": {
            "Cmd": ["sh"],
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Volumes": {"/data": {}},
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [
            {"created": "2024-01-01T00:00:00Z", "created_by": "busybox"},
            {"created": "2024-01-01T00:00:00Z", "created_by": "VOLUME /data"},
        ],
    }))
    .unwrap();
    let mut a = tar::Builder::new(Vec::new());
    let mut put = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_mtime(1_700_000_000);
        a.append_data(&mut h, name, data).unwrap();
    };
    let ch = crate::common::hex(&config);
    put(&format!("{ch}.json"), &config);
    let l0 = format!("{}/layer.tar", crate::common::hex(&base));
    let l1 = format!("{}/layer.tar", crate::common::hex(&layer));
    put(&l0, &base);
    put(&l1, &layer);
    let manifest = serde_json::json!([{
        "Config": format!("{ch}.json"),
        "RepoTags": ["bbvol:latest"],
        "Layers": [l0, l1],
    }]);
    put("manifest.json", &serde_json::to_vec(&manifest).unwrap());
    a.into_inner().unwrap()
}

// ---------------------------------------------------------------------------------------
// Normalisation

/// Masks what differs between any two runs: hex IDs (12 or 64 lowercase hex digits), RFC 3339 times, relative times, sizes, IPv4 addresses.
pub fn mask(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        // RFC 3339 / docker's time: 2024-01-01T00:00:00(.nnn)(Z|+00:00)
        if let Some(n) = time_at(&b[i..]) {
            out.push_str("<TIME>");
            i += n;
            continue;
        }
        let boundary = i == 0 || !b[i - 1].is_ascii_alphanumeric();
        if boundary && b[i].is_ascii_hexdigit() {
            let n = b[i..].iter().take_while(|c| c.is_ascii_hexdigit()).count();
            let after_ok = b.get(i + n).is_none_or(|c| !c.is_ascii_alphanumeric());
            let word = &s[i..i + n];
            let lower = word.bytes().all(|c| !c.is_ascii_uppercase());
            if after_ok && lower && (n == 12 || n == 64) {
                out.push_str("<ID>");
                i += n;
                continue;
            }
        }
        if boundary && b[i].is_ascii_digit() {
            if let Some(n) = ipv4_at(&b[i..]) {
                out.push_str("<IP>");
                i += n;
                continue;
            }
            if let Some(n) = size_at(&b[i..]) {
                out.push_str("<SIZE>");
                i += n;
                continue;
            }
        }
        let c = s[i..].chars().next().unwrap_or(' ');
        out.push(c);
        i += c.len_utf8();
    }
    let out = relative_times(&out);
    // Table columns: their widths follow the masked values.
    let mut lines = Vec::new();
    for line in out.split('\n') {
        let mut r = String::with_capacity(line.len());
        let mut spaces = 0;
        for c in line.chars() {
            if c == ' ' {
                spaces += 1;
                continue;
            }
            if spaces > 0 {
                r.push_str(if spaces > 1 { "  " } else { " " });
                spaces = 0;
            }
            r.push(c);
        }
        lines.push(r);
    }
    lines.join("\n")
}

fn digits(b: &[u8]) -> usize {
    b.iter().take_while(|c| c.is_ascii_digit()).count()
}

fn time_at(b: &[u8]) -> Option<usize> {
    let shape = b"dddd-dd-ddTdd:dd:dd";
    if b.len() < shape.len() {
        return None;
    }
    for (c, s) in b.iter().zip(shape) {
        let ok = if *s == b'd' {
            c.is_ascii_digit()
        } else {
            *s == b'T' && (*c == b'T' || *c == b' ') || c == s
        };
        if !ok {
            return None;
        }
    }
    let mut n = shape.len();
    if b.get(n) == Some(&b'.') {
        n += 1 + digits(&b[n + 1..]);
    }
    match b.get(n) {
        Some(b'Z') => n += 1,
        Some(b'+' | b'-') if b.len() >= n + 6 && b[n + 3] == b':' => n += 6,
        Some(b' ') if b[n + 1..].starts_with(b"+0000 UTC") => n += 10,
        Some(b' ') if b[n + 1..].starts_with(b"+0000") => n += 6,
        _ => {}
    }
    Some(n)
}

fn ipv4_at(b: &[u8]) -> Option<usize> {
    let mut n = 0;
    for part in 0..4 {
        let d = digits(&b[n..]);
        if d == 0 || d > 3 {
            return None;
        }
        n += d;
        if part < 3 {
            if b.get(n) != Some(&b'.') {
                return None;
            }
            n += 1;
        }
    }
    if b.get(n) == Some(&b'/') {
        n += 1 + digits(&b[n + 1..]);
    }
    Some(n)
}

fn size_at(b: &[u8]) -> Option<usize> {
    let mut n = digits(b);
    if b.get(n) == Some(&b'.') && b.get(n + 1).is_some_and(u8::is_ascii_digit) {
        n += 1 + digits(&b[n + 1..]);
    }
    let rest = &b[n..];
    for unit in ["B", "kB", "KB", "MB", "GB", "KiB", "MiB", "GiB"] {
        if rest.starts_with(unit.as_bytes())
            && rest
                .get(unit.len())
                .is_none_or(|c| !c.is_ascii_alphanumeric())
        {
            return Some(n + unit.len());
        }
    }
    None
}

/// "3 seconds ago", "About a minute ago", "Less than a second ago", "Up 2 seconds".
fn relative_times(s: &str) -> String {
    let mut out = s.to_owned();
    for (from, to) in [
        ("Less than a second", "<AGO>"),
        ("About a minute", "<AGO>"),
        ("About an hour", "<AGO>"),
    ] {
        out = out.replace(from, to);
    }
    let words: Vec<&str> = out.split(' ').collect();
    let mut r: Vec<String> = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let unit = words.get(i + 1).map(|w| {
            w.trim_end_matches(|c: char| !c.is_ascii_alphabetic())
                .trim_end_matches('s')
                .to_owned()
        });
        let is_num = !words[i].is_empty() && words[i].bytes().all(|c| c.is_ascii_digit())
            || words[i] == "a"
            || words[i] == "an";
        if is_num
            && unit
                .as_deref()
                .is_some_and(|u| ["second", "minute", "hour", "day", "week"].contains(&u))
        {
            let w = words[i + 1];
            let tail = &w[w.trim_end_matches(|c: char| !c.is_ascii_alphabetic()).len()..];
            r.push(format!("<AGO>{tail}"));
            i += 2;
            continue;
        }
        r.push(words[i].to_owned());
        i += 1;
    }
    r.join(" ")
}

fn sorted(s: &str) -> String {
    let mut v: Vec<&str> = s.lines().collect();
    v.sort();
    v.join("\n")
}

/// mountinfo lines reduced to `mountpoint type options superoptions`, sorted; overlay's
/// layer paths masked.
pub fn mountinfo(s: &str) -> String {
    let mut v: Vec<String> = s
        .lines()
        .filter_map(|l| {
            let (a, b) = l.split_once(" - ")?;
            let f: Vec<&str> = a.split(' ').collect();
            let g: Vec<&str> = b.split(' ').collect();
            let super_opts: Vec<&str> = g
                .get(2)
                .unwrap_or(&"")
                .split(',')
                .filter(|o| {
                    !o.starts_with("lowerdir=")
                        && !o.starts_with("upperdir=")
                        && !o.starts_with("workdir=")
                })
                .collect();
            Some(format!(
                "{} {} {} {}",
                f.get(4)?,
                g.first()?,
                f.get(5)?,
                mask(&super_opts.join(","))
            ))
        })
        .collect();
    v.sort();
    v.join("\n")
}

/// The first line of stderr, with the program's and the daemon's prefixes stripped.
pub fn first_error_line(s: &str) -> String {
    let mut l = s.lines().next().unwrap_or("").trim().to_owned();
    loop {
        let before = l.len();
        for p in [
            "docker: ",
            "berth: ",
            "Error: ",
            "Error response from daemon: ",
        ] {
            if let Some(r) = l.strip_prefix(p) {
                l = r.to_owned();
            }
        }
        if l.len() == before {
            break;
        }
    }
    // `docker run` ends the daemon's message with a full stop.
    let l = l.strip_suffix('.').unwrap_or(&l);
    mask(
        &l.replace("'docker ", "'CMD ")
            .replace("'berth ", "'CMD ")
            .replace(" a docker command", " a CMD command")
            .replace(" a berth command", " a CMD command"),
    )
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(a) if a.is_empty() => "[]",
        Value::Array(_) => "array",
        Value::Object(o) if o.is_empty() => "{}",
        Value::Object(_) => "object",
    }
}

/// Every key path of `v` with its value's type; arrays by their elements' union.
pub fn shape(v: &Value, path: &str, out: &mut BTreeSet<String>) {
    out.insert(format!("{path} = {}", kind(v)));
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                // Keys that are data (paths, addresses, IDs) are masked.
                shape(x, &format!("{path}.{}", mask(k)), out);
            }
        }
        Value::Array(a) => {
            for x in a {
                shape(x, &format!("{path}[]"), out);
            }
        }
        _ => {}
    }
}

/// A line diff: lines only in docker's output (`-`), only in berth's (`+`).
pub fn line_diff(a: &str, b: &str) -> String {
    let la: Vec<&str> = a.lines().collect();
    let lb: Vec<&str> = b.lines().collect();
    // Longest common subsequence (outputs are short).
    let (n, m) = (la.len(), lb.len());
    let mut t = vec![vec![0u16; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            t[i][j] = if la[i] == lb[j] {
                t[i + 1][j + 1] + 1
            } else {
                t[i + 1][j].max(t[i][j + 1])
            };
        }
    }
    let mut s = String::new();
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && la[i] == lb[j] {
            i += 1;
            j += 1;
        } else if j < m && (i == n || t[i][j + 1] >= t[i + 1][j]) {
            s += &format!("\n      + {}", lb[j]);
            j += 1;
        } else {
            s += &format!("\n      - {}", la[i]);
            i += 1;
        }
    }
    s
}
