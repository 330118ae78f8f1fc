//! Interoperability with podman, the acceptance test of issue 3: an image `podman save`d
//! (docker-archive and oci-archive) loads into berth and runs; an image `berth save`d
//! (both formats, including one berth committed itself) loads into podman and runs; the
//! image ID (the config digest) and the diff_ids survive every round trip unchanged.
//!
//! Self-contained on purpose (no shared test module). Needs root and podman (CI installs
//! it, see scripts/packages-test.txt); without podman the tests say so loudly and pass.
//! Each podman store is private to its test: `--root`, `--runroot`, `--tmpdir` and
//! `--network-config-dir` under a temporary directory, `CONTAINERS_CONF` with the ulimits
//! root can set here (root lacks CAP_SYS_RESOURCE), `--network none`, `--pull=never` and
//! `localhost/…` names only: nothing is ever pulled. podman runs containers with runc,
//! because crun 1.8 refuses a hybrid cgroup host. On drop the store is reset and anything
//! still mounted under it is unmounted; each test checks that no mount is left.
#![allow(clippy::unwrap_used)]

mod common;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;
use tempfile::TempDir;

const BERTH: &str = env!("CARGO_BIN_EXE_berth");

fn podman_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("podman"))
        .find(|p| p.is_file())
}

/// `None` (after a loud message) when podman is not installed.
fn podman_or_skip(test: &str) -> Option<PathBuf> {
    let p = podman_binary();
    if p.is_none() {
        eprintln!(
            "\n\n!!!!! SKIPPED {test}: podman is not installed (apt-get install podman runc); \
             the podman interoperability test did NOT run !!!!!\n"
        );
    }
    p
}

/// Runs `cmd`, panics with its output unless it succeeds.
fn ok(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Times one step of a test and prints it (`cargo test -- --nocapture` shows them).
fn step<T>(test: &str, what: &str, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let r = f();
    eprintln!("[{test}] {what}: {:.0} ms", t.elapsed().as_secs_f64() * 1e3);
    r
}

/// Mount points (decoded from /proc/self/mountinfo) at or under `dir`.
fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(unescape_octal(m)))
        .filter(|m| m.starts_with(dir))
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            let digits = std::str::from_utf8(&b[i + 1..i + 4]).unwrap_or("");
            if let Ok(v) = u8::from_str_radix(digits, 8) {
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

/// Unmounts (lazily, deepest first) whatever is still mounted under `dir`.
fn unmount_all_under(dir: &Path) {
    let mut left = mounts_under(dir);
    left.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for m in left {
        let _ = Command::new("umount").arg("-l").arg(&m).status();
    }
}

/// The filesystem type of the mount holding `dir`.
fn fs_type(dir: &Path) -> String {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mut best: Option<(usize, String)> = None;
    for l in info.lines() {
        let mut parts = l.split(" - ");
        let (Some(a), Some(b)) = (parts.next(), parts.next()) else {
            continue;
        };
        let Some(mp) = a.split(' ').nth(4) else {
            continue;
        };
        let mp = PathBuf::from(unescape_octal(mp));
        if dir.starts_with(&mp) {
            let len = mp.components().count();
            if best.as_ref().is_none_or(|(l, _)| len >= *l) {
                best = Some((len, b.split(' ').next().unwrap_or("").to_owned()));
            }
        }
    }
    best.map(|b| b.1).unwrap_or_default()
}

/// A private podman store under a temporary directory.
struct Podman {
    bin: PathBuf,
    dir: TempDir,
    driver: &'static str,
}

impl Podman {
    fn new(bin: &Path) -> Podman {
        let dir = tempfile::Builder::new()
            .prefix("berth-podman-")
            .tempdir()
            .unwrap();
        std::fs::write(
            dir.path().join("containers.conf"),
            "[containers]\n\
             default_ulimits = [\"nofile=20000:20000\",\"nproc=32768:32768\"]\n\
             [engine]\n\
             events_logger = \"file\"\n\
             cgroup_manager = \"cgroupfs\"\n",
        )
        .unwrap();
        // overlay cannot stack on overlay (a test run inside a container): vfs then.
        let driver = if fs_type(dir.path()) == "overlay" {
            "vfs"
        } else {
            "overlay"
        };
        Podman {
            bin: bin.to_owned(),
            dir,
            driver,
        }
    }

    fn cmd(&self) -> Command {
        let d = self.dir.path();
        let mut c = Command::new(&self.bin);
        c.env("CONTAINERS_CONF", d.join("containers.conf"))
            .env_remove("CONTAINER_HOST")
            .env_remove("CONTAINER_CONNECTION")
            .arg("--root")
            .arg(d.join("storage"))
            .arg("--runroot")
            .arg(d.join("run"))
            .arg("--tmpdir")
            .arg(d.join("tmp"))
            .arg("--network-config-dir")
            .arg(d.join("net"))
            .args(["--storage-driver", self.driver])
            .args(["--cgroup-manager", "cgroupfs"])
            .args(["--events-backend", "file"])
            .args(["--runtime", "runc"]);
        c
    }

    fn run(&self, args: &[&str]) -> String {
        stdout(&ok(self.cmd().args(args)))
    }

    /// The image's ID (podman's is the config digest's hex) and diff_ids.
    fn id_and_layers(&self, image: &str) -> (String, Vec<String>) {
        let out = self.run(&["image", "inspect", image]);
        let v: Value = serde_json::from_str(&out).unwrap();
        let img = &v[0];
        let id = img["Id"].as_str().unwrap().to_owned();
        let id = id.strip_prefix("sha256:").unwrap_or(&id).to_owned();
        (id, layers_of(img))
    }

    fn load(&self, archive: &Path) -> String {
        self.run(&["load", "-i", archive.to_str().unwrap()])
    }

    /// `podman run --rm` of `args` in `image`, never pulling, without a network.
    fn run_in(&self, image: &str, args: &[&str]) -> String {
        let mut a = vec!["run", "--rm", "--pull=never", "--network", "none", image];
        a.extend_from_slice(args);
        self.run(&a)
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.cmd().args(["system", "reset", "-f"]).output();
        // Big trees go to a detached `berth system delete-trash`: removing the
        // root while it renames and deletes in storage/trash would fail halfway.
        let trash = self.dir.path().join("root/storage/trash");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while std::fs::read_dir(&trash).map_or(0, |d| d.count()) > 0
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        // A worker still checkpointing the database writes its -wal again.
        common::wait_detached_workers(&self.dir.path().join("root"));
        unmount_all_under(self.dir.path());
    }
}

fn layers_of(img: &Value) -> Vec<String> {
    img["RootFS"]["Layers"]
        .as_array()
        .unwrap_or_else(|| panic!("no RootFS.Layers in {img}"))
        .iter()
        .map(|l| l.as_str().unwrap().to_owned())
        .collect()
}

/// A berth with its own `--root`.
struct Berth {
    dir: TempDir,
}

impl Berth {
    fn new() -> Berth {
        ensure_runtime();
        Berth {
            dir: tempfile::Builder::new()
                .prefix("berth-podman-b-")
                .tempdir()
                .unwrap(),
        }
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new(BERTH);
        c.arg("--root").arg(self.dir.path().join("root"));
        c
    }

    fn run(&self, args: &[&str]) -> String {
        stdout(&ok(self.cmd().args(args)))
    }

    fn id_and_layers(&self, image: &str) -> (String, Vec<String>) {
        let out = self.run(&["image", "inspect", image]);
        let v: Value = serde_json::from_str(&out).unwrap();
        let img = &v[0];
        let id = img["Id"].as_str().unwrap();
        let id = id
            .strip_prefix("sha256:")
            .unwrap_or_else(|| panic!("berth's image ID {id} lacks sha256:"))
            .to_owned();
        (id, layers_of(img))
    }
}

impl Drop for Berth {
    fn drop(&mut self) {
        // Its containers ran on the default bridge: the bridge and the
        // nftables table go with the store.
        let _ = self.cmd().args(["system", "reset", "-f"]).output();
        // Big trees go to a detached `berth system delete-trash`: removing the
        // root while it renames and deletes in storage/trash would fail halfway.
        let trash = self.dir.path().join("root/storage/trash");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while std::fs::read_dir(&trash).map_or(0, |d| d.count()) > 0
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        // A worker still checkpointing the database writes its -wal again.
        common::wait_detached_workers(&self.dir.path().join("root"));
        unmount_all_under(self.dir.path());
    }
}

/// `berth run` needs `berth-runtime` beside `berth` (cargo builds it with the workspace's
/// tests; `cargo test -p berth-cli` alone does not).
fn ensure_runtime() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let beside = Path::new(BERTH).with_file_name("berth-runtime");
        if beside.is_file() || std::env::var_os("BERTH_RUNTIME").is_some() {
            return;
        }
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut c = Command::new(cargo);
        c.args(["build", "-q", "-p", "berth-runtime"]);
        if Path::new(BERTH).parent().and_then(Path::file_name) == Some("release".as_ref()) {
            c.arg("--release");
        }
        ok(&mut c);
        assert!(
            beside.is_file(),
            "no {} after cargo build",
            beside.display()
        );
    });
}

/// A rootfs tarball of busybox (from the host's busybox-static) in `dir`, with a file
/// `/etc/doomed` for a later layer to delete.
fn busybox_tar(dir: &Path) -> PathBuf {
    let rootfs = dir.join("rootfs");
    berth_fixtures::busybox_rootfs(&rootfs).unwrap();
    std::fs::write(rootfs.join("etc/doomed"), "x\n").unwrap();
    let tar = dir.join("rootfs.tar");
    ok(Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&tar)
        .arg("."));
    tar
}

/// In podman's store: `localhost/bb:1` imported from a busybox rootfs, `localhost/bb:2` =
/// bb:1 + a layer with /l2 (made by `podman run` + `podman commit`).
fn podman_busybox(t: &str, p: &Podman, work: &Path) {
    let tar = busybox_tar(work);
    step(t, "podman import bb:1", || {
        p.run(&["import", tar.to_str().unwrap(), "localhost/bb:1"])
    });
    step(t, "podman run + commit bb:2", || {
        p.run(&[
            "run",
            "--name",
            "c",
            "--pull=never",
            "--network",
            "none",
            "localhost/bb:1",
            "sh",
            "-c",
            "echo layer2 > /l2",
        ]);
        p.run(&["commit", "-q", "c", "localhost/bb:2"]);
        p.run(&["rm", "c"]);
    });
}

fn assert_no_mounts(dirs: &[PathBuf]) {
    for d in dirs {
        let left = mounts_under(d);
        assert!(
            left.is_empty(),
            "mounts left under {}: {left:?}",
            d.display()
        );
    }
}

#[test]
fn podman_archives_load_into_berth_and_berth_archives_into_podman() {
    let t = "podman->berth->podman";
    let Some(bin) = podman_or_skip(t) else {
        return;
    };
    let start = Instant::now();
    let work = TempDir::new().unwrap();
    let mut dirs = Vec::new();
    {
        let p = Podman::new(&bin);
        dirs.push(p.dir.path().to_owned());
        podman_busybox(t, &p, work.path());
        let (pid, players) = p.id_and_layers("localhost/bb:2");
        assert_eq!(players.len(), 2, "bb:2 should have 2 layers: {players:?}");
        for pfmt in ["docker-archive", "oci-archive"] {
            let a = work.path().join(format!("podman-{pfmt}.tar"));
            step(t, &format!("podman save --format {pfmt}"), || {
                p.run(&[
                    "save",
                    "--format",
                    pfmt,
                    "-o",
                    a.to_str().unwrap(),
                    "localhost/bb:2",
                ])
            });
            let b = Berth::new();
            dirs.push(b.dir.path().to_owned());
            let out = step(t, &format!("berth load -i ({pfmt})"), || {
                b.run(&["load", "-i", a.to_str().unwrap()])
            });
            assert!(
                out.contains("localhost/bb:2"),
                "berth load of podman's {pfmt}: {out}"
            );
            let out = step(t, "berth run --rm bb:2 cat /l2", || {
                b.run(&["run", "--rm", "localhost/bb:2", "cat", "/l2"])
            });
            assert_eq!(out, "layer2\n", "berth run of podman's {pfmt}");
            let (bid, blayers) = b.id_and_layers("localhost/bb:2");
            assert_eq!(bid, pid, "image ID after podman {pfmt} -> berth");
            assert_eq!(blayers, players, "diff_ids after podman {pfmt} -> berth");

            for bfmt in ["docker-archive", "oci-archive"] {
                let a = work.path().join(format!("berth-{pfmt}-{bfmt}.tar"));
                step(t, &format!("berth save --format {bfmt}"), || {
                    b.run(&[
                        "save",
                        "--format",
                        bfmt,
                        "-o",
                        a.to_str().unwrap(),
                        "localhost/bb:2",
                    ])
                });
                let p2 = Podman::new(&bin);
                dirs.push(p2.dir.path().to_owned());
                let out = step(t, &format!("podman load -i ({bfmt})"), || p2.load(&a));
                assert!(
                    out.contains("localhost/bb:2"),
                    "podman load of berth's {bfmt} (from podman's {pfmt}): {out}"
                );
                let out = step(t, "podman run --rm bb:2 cat /l2", || {
                    p2.run_in("localhost/bb:2", &["cat", "/l2"])
                });
                assert_eq!(out, "layer2\n");
                let (id2, layers2) = p2.id_and_layers("localhost/bb:2");
                assert_eq!(
                    id2, pid,
                    "image ID after podman {pfmt} -> berth -> {bfmt} -> podman"
                );
                assert_eq!(
                    layers2, players,
                    "diff_ids after podman {pfmt} -> berth -> {bfmt} -> podman"
                );
            }
        }
    }
    assert_no_mounts(&dirs);
    eprintln!("[{t}] total: {:.1} s", start.elapsed().as_secs_f64());
}

#[test]
fn image_berth_committed_runs_in_podman() {
    let t = "berth commit->podman";
    let Some(bin) = podman_or_skip(t) else {
        return;
    };
    let start = Instant::now();
    let work = TempDir::new().unwrap();
    let mut dirs = Vec::new();
    {
        let b = Berth::new();
        dirs.push(b.dir.path().to_owned());
        let tar = busybox_tar(work.path());
        step(t, "berth import", || {
            b.run(&["import", tar.to_str().unwrap(), "localhost/bb:1"])
        });
        step(t, "berth run --name x1 + commit", || {
            b.run(&[
                "run",
                "--name",
                "x1",
                "localhost/bb:1",
                "sh",
                "-c",
                "mkdir -p /srv && echo mine > /srv/mine && rm /etc/doomed",
            ]);
            b.run(&["commit", "x1", "localhost/mine:1"]);
            b.run(&["rm", "x1"]);
        });
        let out = b.run(&["run", "--rm", "localhost/mine:1", "cat", "/srv/mine"]);
        assert_eq!(out, "mine\n");
        let (bid, blayers) = b.id_and_layers("localhost/mine:1");
        assert_eq!(blayers.len(), 2, "mine:1 should have 2 layers: {blayers:?}");
        for fmt in ["docker-archive", "oci-archive"] {
            let a = work.path().join(format!("mine-{fmt}.tar"));
            step(t, &format!("berth save --format {fmt}"), || {
                b.run(&[
                    "save",
                    "--format",
                    fmt,
                    "-o",
                    a.to_str().unwrap(),
                    "localhost/mine:1",
                ])
            });
            let p = Podman::new(&bin);
            dirs.push(p.dir.path().to_owned());
            let out = step(t, &format!("podman load -i ({fmt})"), || p.load(&a));
            assert!(out.contains("localhost/mine:1"), "podman load: {out}");
            let out = step(t, "podman run --rm mine:1", || {
                p.run_in(
                    "localhost/mine:1",
                    &[
                        "sh",
                        "-c",
                        "cat /srv/mine; test -e /etc/doomed || echo gone",
                    ],
                )
            });
            assert_eq!(out, "mine\ngone\n", "podman run of berth's {fmt}");
            let (pid, players) = p.id_and_layers("localhost/mine:1");
            assert_eq!(pid, bid, "image ID after berth {fmt} -> podman");
            assert_eq!(players, blayers, "diff_ids after berth {fmt} -> podman");

            // And back: podman's save of it loads into berth with the same identity.
            let back = work.path().join(format!("mine-back-{fmt}.tar"));
            p.run(&[
                "save",
                "--format",
                fmt,
                "-o",
                back.to_str().unwrap(),
                "localhost/mine:1",
            ]);
            let b2 = Berth::new();
            dirs.push(b2.dir.path().to_owned());
            b2.run(&["load", "-i", back.to_str().unwrap()]);
            assert_eq!(
                b2.id_and_layers("localhost/mine:1"),
                (bid.clone(), blayers.clone()),
                "identity after berth -> podman -> {fmt} -> berth"
            );
        }
    }
    assert_no_mounts(&dirs);
    eprintln!("[{t}] total: {:.1} s", start.elapsed().as_secs_f64());
}
