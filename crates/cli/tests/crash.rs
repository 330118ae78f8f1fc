//! SIGKILL at any moment loses nothing and leaks nothing: each operation (load,
//! import, pull, commit, build, run -d, rm -f, network create, volume rm) is
//! killed at moments spread over its duration, then the next berth command runs
//! and the store is checked against the kernel and the file system, mostly
//! without asking berth (see [`check`]).
//!
//! Kill points: the operation runs once uninterrupted and its duration T is
//! measured; then it is killed right after its start (0), 1 ms in, and at k/N of
//! T for k = 1..N-1. The times only choose the kill points: nothing asserts a
//! duration, and on a slower machine the points still spread over the operation.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Kill points per operation: 0, 1 ms and k/N of the measured duration.
const N: u32 = 6;

/// Invariant checks made (for the summary each test prints).
static CHECKS: AtomicUsize = AtomicUsize::new(0);

fn checked() {
    CHECKS.fetch_add(1, Ordering::Relaxed);
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The kill delays for an operation that took `t` uninterrupted.
fn kill_points(t: Duration) -> Vec<Duration> {
    let mut v = vec![Duration::ZERO, Duration::from_millis(1)];
    for k in 1..N {
        v.push(t * k / N);
    }
    v
}

/// Runs `cmd` and SIGKILLs it `after` its start (unless it ended before);
/// whether it was killed.
fn kill_after(mut cmd: Command, after: Duration) -> bool {
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    if !after.is_zero() {
        std::thread::sleep(after);
    }
    let killed = child.try_wait().unwrap().is_none();
    // SAFETY: kill(2) of the child this test spawned (not yet reaped).
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().unwrap();
    killed
}

/// A condition [`kill_when`] polls.
type Cond<'a> = Box<dyn Fn() -> bool + 'a>;

/// Runs `cmd` and SIGKILLs it as soon as `cond` holds (polled every
/// millisecond): a kill at a syscall-level point, whatever the timing.
/// Whether it was killed mid-way.
fn kill_when(mut cmd: Command, mut cond: impl FnMut() -> bool) -> bool {
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond() && child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    let killed = child.try_wait().unwrap().is_none();
    // SAFETY: kill(2) of the child this test spawned (not yet reaped).
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().unwrap();
    killed
}

/// Runs `cmd` to its end; how long it took.
fn timed(mut cmd: Command) -> Duration {
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    let t = Instant::now();
    let out = cmd.output().unwrap();
    let d = t.elapsed();
    assert!(out.status.success(), "{cmd:?}: {}", text(&out.stderr));
    d
}

/// Names in `dir` (none if it is missing).
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// A container as `ps -a` shows it: full ID, state, name.
#[derive(Debug, Clone)]
struct Rec {
    id: String,
    running: bool,
}

fn records(b: &Berth) -> Vec<Rec> {
    let out = b.ok(&[
        "ps",
        "-a",
        "--no-trunc",
        "--format",
        "{{.ID}} {{.State}} {{.Names}}",
    ]);
    out.lines()
        .map(|l| {
            let mut f = l.split_whitespace();
            let id = f.next().unwrap().to_owned();
            let state = f.next().unwrap_or("");
            Rec {
                id,
                running: state == "running",
            }
        })
        .collect()
}

/// The `--id` of each live berth-monitor of this root.
fn monitor_ids(root: &Path) -> Vec<String> {
    monitor_pids(root)
        .into_iter()
        .filter_map(|pid| {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let args: Vec<String> = cmd
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            let i = args.iter().position(|a| a == "--id")?;
            args.get(i + 1).cloned()
        })
        .collect()
}

/// Live processes whose command line contains `marker` (zombies excluded).
fn marked_processes(marker: &str) -> Vec<(i32, String)> {
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains(marker) && process_alive(pid) {
            let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
            v.push((pid, cg));
        }
    }
    v
}

/// What one test's checks need to know besides the store.
#[derive(Default)]
struct Ctx {
    /// A token in the command line of every container process the test starts.
    marker: String,
    /// Host ports the test's containers publish.
    ports: Vec<u16>,
    /// Every container ID the test has seen (for the cgroup check).
    seen: BTreeSet<String>,
}

/// The next command after a kill, then every invariant:
/// 1. every container record has its writable layer and every layer
///    (storage/containers/*) its record; no build work area is left;
/// 2. every image's layers exist (chain IDs from its diff IDs) and every blob
///    hashes to its name;
/// 3. no mount under the root but the rootfs and network namespace of a
///    running container (from /proc/self/mountinfo);
/// 4. no cgroup `berth-ID` of this root's containers unless it runs;
/// 5. no network namespace file of the root unless its container runs;
/// 6. no DNAT rule (nft ruleset) for a port of a container that is not running;
/// 7. no berth-monitor of this root without a running record, and a running
///    container always has its monitor;
/// 8. no container process (marked) outside a running container's cgroup;
/// 9. no staging file left (`.tmp*`, `.rm*` in blobs, layers, containers,
///    volumes; a build journal);
/// 10. usable: the image loaded before still runs, a container is created,
///     started and removed; `system check` reports nothing.
fn check(b: &Berth, ctx: &mut Ctx, what: &str) {
    let root = b.root().to_path_buf();
    // The next commands.
    let recs = records(b);
    let images = b.image_ids();
    b.ok(&["volume", "ls"]);
    b.ok(&["network", "ls"]);
    let ids: BTreeSet<String> = recs.iter().map(|r| r.id.clone()).collect();
    let running: BTreeSet<String> = recs
        .iter()
        .filter(|r| r.running)
        .map(|r| r.id.clone())
        .collect();
    ctx.seen.extend(ids.iter().cloned());
    ctx.seen.extend(names(&root.join("run/containers")));
    ctx.seen.extend(names(&root.join("storage/containers")));

    // 1. records <-> writable layers.
    let layers: BTreeSet<String> = names(&root.join("storage/containers"))
        .into_iter()
        .filter(|n| !n.starts_with('.'))
        .collect();
    assert_eq!(ids, layers, "{what}: container records vs writable layers");
    checked();

    // 2. images' layers and blobs.
    for id in &images {
        let mut prev: Option<String> = None;
        for d in b.diff_ids(id) {
            let chain = match &prev {
                None => d.clone(),
                Some(p) => sha(format!("{p} {d}").as_bytes()),
            };
            let dir = root
                .join("storage/layers")
                .join(chain.trim_start_matches("sha256:"))
                .join("diff");
            assert!(dir.is_dir(), "{what}: image {id} lacks layer {chain}");
            prev = Some(chain);
        }
    }
    let blobs = b.blobs();
    if !blobs.is_empty() {
        // sha256sum(1): independent of berth's own hashing (and fast).
        let out = Command::new("sha256sum")
            .args(&blobs)
            .current_dir(root.join("blobs/sha256"))
            .output()
            .unwrap();
        for l in text(&out.stdout).lines() {
            let (sum, name) = l.split_once("  ").unwrap();
            assert_eq!(sum, name, "{what}: blob {name} is corrupt");
        }
        assert!(
            out.status.success(),
            "{what}: sha256sum: {}",
            text(&out.stderr)
        );
    }
    checked();

    // 3. mounts.
    for m in mounts_mentioning(&root) {
        let ok = running.iter().any(|id| {
            m == s(&root.join("storage/containers").join(id).join("merged"))
                || m == s(&root.join("run/netns").join(id))
        });
        assert!(ok, "{what}: mount {m} without a running container");
    }
    checked();

    // 4. cgroups.
    for id in &ctx.seen {
        if running.contains(id) {
            continue;
        }
        for top in ["/sys/fs/cgroup".to_owned()].into_iter().chain(
            names(Path::new("/sys/fs/cgroup"))
                .into_iter()
                .map(|n| format!("/sys/fs/cgroup/{n}")),
        ) {
            let p = PathBuf::from(top).join(format!("berth-{id}"));
            assert!(
                !p.exists(),
                "{what}: cgroup {} of a container not running",
                p.display()
            );
        }
    }
    checked();

    // 5. network namespaces.
    for n in names(&root.join("run/netns")) {
        assert!(
            running.contains(&n),
            "{what}: network namespace {n} without a running container"
        );
    }
    checked();

    // 6. published ports.
    if !ctx.ports.is_empty() {
        let rules = Command::new("nft")
            .args(["list", "ruleset"])
            .output()
            .unwrap();
        let rules = text(&rules.stdout);
        for p in &ctx.ports {
            // Every container of the test that publishes uses these ports.
            let owner_runs = !running.is_empty();
            if !owner_runs {
                assert!(
                    !rules.contains(&format!("dport {p} ")),
                    "{what}: a DNAT rule for port {p} of no running container"
                );
            }
        }
    }
    checked();

    // 7. monitors.
    let monitors = monitor_ids(&root);
    for m in &monitors {
        assert!(
            running.contains(m),
            "{what}: a monitor of {m}, which is not running"
        );
    }
    for r in &running {
        assert!(
            monitors.contains(r),
            "{what}: running container {r} has no monitor"
        );
    }
    checked();

    // 8. container processes.
    if !ctx.marker.is_empty() {
        for (pid, cg) in marked_processes(&ctx.marker) {
            // berth itself (an `exec`-less check) never carries the marker.
            let inside = running.iter().any(|id| cg.contains(&format!("berth-{id}")));
            assert!(
                inside,
                "{what}: process {pid} ({cg}) outside any running container"
            );
        }
    }
    checked();

    // 9. staging files.
    for d in [
        "blobs/sha256",
        "storage/layers",
        "storage/containers",
        "volumes",
    ] {
        for n in names(&root.join(d)) {
            // A killed pull's `.partial-<digest>` is kept on purpose: the
            // next pull resumes it (checked at the end of `sigkill_pull`).
            if d == "blobs/sha256" && n.starts_with(".partial-") {
                continue;
            }
            assert!(
                !n.starts_with('.') && !n.starts_with("build-"),
                "{what}: staging entry {d}/{n} left after the next command"
            );
        }
    }
    for d in ["storage/staging", "builds"] {
        let left = names(&root.join(d));
        assert!(
            left.is_empty(),
            "{what}: {d}/{left:?} left after the next command"
        );
    }
    // The trash is deleted by a detached process after the command: it goes.
    wait_until(
        30,
        &format!("{what}: the storage trash to be deleted"),
        || names(&root.join("storage/trash")).is_empty(),
    );
    checked();

    // 10. usable.
    assert_eq!(
        b.ok(&["run", "--rm", "busybox", "echo", "ok"]),
        "ok\n",
        "{what}"
    );
    let id = b.ok(&["create", "busybox", "true"]).trim().to_owned();
    b.ok(&["start", "-a", &id]);
    b.ok(&["rm", &id]);
    if system_check_exists(b) {
        assert_eq!(
            b.ok(&["system", "check"]),
            "No problems found\n",
            "{what}: system check"
        );
    }
    checked();
}

/// Whether this berth has `system check` (the storage side's command).
fn system_check_exists(b: &Berth) -> bool {
    static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAS.get_or_init(|| b.run(&["system", "check", "--help"]).status.success())
}

/// Kills `make_cmd()` at every kill point, with `before` run ahead of each try
/// and `after` (given whether it was killed) after the check; returns how many
/// points killed it.
fn suite(
    b: &Berth,
    ctx: &mut Ctx,
    op: &str,
    mut before: impl FnMut(&Berth, usize),
    mut make_cmd: impl FnMut(&Berth, usize) -> Command,
    mut after: impl FnMut(&Berth, usize),
) {
    before(b, 0);
    let t = timed(make_cmd(b, 0));
    after(b, 0);
    check(b, ctx, &format!("{op} (uninterrupted)"));
    let points = kill_points(t);
    let mut killed = 0;
    for (k, at) in points.iter().enumerate() {
        let i = k + 1;
        before(b, i);
        if kill_after(make_cmd(b, i), *at) {
            killed += 1;
        }
        check(
            b,
            ctx,
            &format!("{op} killed at {at:?} (point {k} of {})", points.len()),
        );
        after(b, i);
    }
    eprintln!(
        "crash suite: {op}: {} kill points ({killed} killed mid-way, T = {t:?}), {} invariant checks so far, 0 failures",
        points.len(),
        CHECKS.load(Ordering::Relaxed)
    );
}

/// A store with busybox and the test's marker.
fn store() -> (Berth, Ctx) {
    let b = Berth::with_busybox();
    // Not a substring of the root's path (which every berth process and
    // monitor has in its command line), only of the containers' commands.
    let marker = format!(
        "cm{}",
        b.scratch()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .trim_start_matches("berth-cli-test-")
    );
    let ctx = Ctx {
        marker,
        ..Ctx::default()
    };
    (b, ctx)
}

/// An image of busybox and an 8 MiB layer of noise (slow enough to kill mid-way).
fn big_archive(seed: u64) -> Vec<u8> {
    let big = layer_tar(&[dir("data"), file("data/noise", &noise(seed, 8 << 20))]);
    docker_archive(&[ImageSpec::new(
        "big:1",
        vec![Layer::busybox(), Layer::plain(big)],
    )])
}

fn rm_image(b: &Berth, name: &str) {
    let _ = b.run(&["rmi", "-f", name]);
}

#[test]
fn sigkill_load() {
    let (b, mut ctx) = store();
    let tar = b.scratch().join("big.tar");
    std::fs::write(&tar, big_archive(1)).unwrap();
    suite(
        &b,
        &mut ctx,
        "load",
        |_, _| {},
        |b, _| b.cmd(&["load", "-i", s(&tar)]),
        |b, _| rm_image(b, "big:1"),
    );
}

#[test]
fn sigkill_import() {
    let (b, mut ctx) = store();
    let tar = b.scratch().join("rootfs.tar");
    let data = layer_tar(&[dir("data"), file("data/noise", &noise(2, 8 << 20))]);
    std::fs::write(&tar, &data).unwrap();
    suite(
        &b,
        &mut ctx,
        "import",
        |_, _| {},
        |b, i| b.cmd(&["import", s(&tar), &format!("imp:{i}")]),
        |b, i| rm_image(b, &format!("imp:{i}")),
    );
}

#[test]
fn sigkill_commit() {
    let (b, mut ctx) = store();
    b.ok(&[
        "run",
        "--name",
        "src",
        "busybox",
        "sh",
        "-c",
        "head -c 8388608 /dev/urandom > /big",
    ]);
    suite(
        &b,
        &mut ctx,
        "commit",
        |_, _| {},
        |b, i| b.cmd(&["commit", "src", &format!("com:{i}")]),
        |b, i| rm_image(b, &format!("com:{i}")),
    );
    b.ok(&["rm", "src"]);
}

#[test]
fn sigkill_build() {
    let (b, mut ctx) = store();
    let ctxdir = b.scratch().join("ctx");
    std::fs::create_dir_all(&ctxdir).unwrap();
    std::fs::write(ctxdir.join("big"), noise(3, 2 << 20)).unwrap();
    std::fs::write(
        ctxdir.join("Dockerfile"),
        format!(
            // The second step is a compound command: busybox's sh execs a
            // lone one (`sh -c 'sleep 0.3' MARK` became `sleep 0.3` at once),
            // and the marker must stay visible while the step runs.
            "FROM busybox\nCOPY big /big\nRUN cp /big /big2 && echo {} > /m\nRUN sleep 0.3 && echo {} > /dev/null\n",
            ctx.marker, ctx.marker
        ),
    )
    .unwrap();
    suite(
        &b,
        &mut ctx,
        "build",
        |_, _| {},
        |b, i| {
            b.cmd(&[
                "build",
                "--no-cache",
                "-t",
                &format!("built:{i}"),
                s(&ctxdir),
            ])
        },
        |b, i| {
            rm_image(b, &format!("built:{i}"));
            // What a finished build keeps (the parents of its image) goes
            // with it; a killed one's must be gone already: only busybox.
            let all = b.ok(&["images", "-a", "-q", "--no-trunc"]);
            assert_eq!(all.lines().count(), 1, "images after build {i}: {all}");
        },
    );
    // And killed the moment its work area is mounted, and the moment a RUN
    // step's process (marked) runs.
    let containers = b.root().join("storage/containers");
    let marker = ctx.marker.clone();
    let conds: [(&str, Cond); 2] = [
        (
            "its work area is mounted",
            Box::new(|| {
                names(&containers).iter().any(|n| {
                    n.starts_with("build-") && containers.join(n).join("merged/bin").exists()
                })
            }),
        ),
        (
            "a RUN step runs",
            // (In its cgroup: `berth run` itself has the marker too.)
            Box::new(|| {
                marked_processes(&marker)
                    .iter()
                    .any(|(_, cg)| cg.contains("berth-"))
            }),
        ),
    ];
    for (what, cond) in conds {
        let cmd = b.cmd(&["build", "--no-cache", "-t", "built:x", s(&ctxdir)]);
        assert!(kill_when(cmd, cond), "the build ended before {what}");
        check(&b, &mut ctx, &format!("build killed once {what}"));
        let all = b.ok(&["images", "-a", "-q", "--no-trunc"]);
        assert_eq!(
            all.lines().count(),
            1,
            "images after a build killed once {what}: {all}"
        );
    }
}

#[test]
fn sigkill_run_detached() {
    let (b, mut ctx) = store();
    let port = free_port();
    ctx.ports.push(port);
    let marker = ctx.marker.clone();
    suite(
        &b,
        &mut ctx,
        "run -d",
        |_, _| {},
        |b, i| {
            b.cmd(&[
                "run",
                "-d",
                "--name",
                &format!("r{i}"),
                "-p",
                &format!("127.0.0.1:{port}:80"),
                "-v",
                "vol:/v",
                "busybox",
                "sh",
                "-c",
                "while :; do sleep 1; done",
                &marker,
            ])
        },
        |b, i| {
            let _ = b.run(&["rm", "-f", &format!("r{i}")]);
        },
    );
    b.ok(&["volume", "rm", "vol"]);
}

#[test]
fn sigkill_rm() {
    let (b, mut ctx) = store();
    let marker = ctx.marker.clone();
    suite(
        &b,
        &mut ctx,
        "rm -f",
        |b, i| {
            b.ok(&[
                "run",
                "-d",
                "--name",
                &format!("x{i}"),
                "busybox",
                "sh",
                "-c",
                "while :; do sleep 1; done",
                &marker,
            ]);
        },
        |b, i| b.cmd(&["rm", "-f", &format!("x{i}")]),
        |b, i| {
            let _ = b.run(&["rm", "-f", &format!("x{i}")]);
        },
    );
}

#[test]
fn sigkill_network_create() {
    let (b, mut ctx) = store();
    let tag = format!("{:05}", std::process::id() % 100000);
    let bridge = |i: usize| format!("bc{tag}x{i}");
    let mut created = Vec::new();
    suite(
        &b,
        &mut ctx,
        "network create",
        |_, _| {},
        |b, i| {
            b.cmd(&[
                "network",
                "create",
                "-o",
                &format!("com.docker.network.bridge.name={}", bridge(i)),
                &format!("n{i}"),
            ])
        },
        |b, i| {
            // Complete or absent: a record, or no bridge of that name.
            let ls = b.ok(&["network", "ls", "--format", "{{.Name}}"]);
            let link = Command::new("ip")
                .args(["link", "show", &bridge(i)])
                .stderr(Stdio::null())
                .output()
                .unwrap();
            if ls.lines().any(|l| l == format!("n{i}")) {
                // Usable: a container runs on it.
                b.ok(&[
                    "run",
                    "--rm",
                    "--network",
                    &format!("n{i}"),
                    "busybox",
                    "true",
                ]);
                created.push(format!("n{i}"));
                b.ok(&["network", "rm", &format!("n{i}")]);
            } else {
                assert!(
                    !link.status.success(),
                    "bridge {} without its network",
                    bridge(i)
                );
            }
            checked();
        },
    );
}

#[test]
fn sigkill_volume_rm() {
    let (b, mut ctx) = store();
    let files = 1000;
    suite(
        &b,
        &mut ctx,
        "volume rm",
        |b, i| {
            let name = format!("v{i}");
            b.ok(&["volume", "create", &name]);
            let data = b.root().join("volumes").join(&name).join("_data");
            for f in 0..files {
                std::fs::write(data.join(format!("f{f}")), b"x").unwrap();
            }
        },
        |b, i| b.cmd(&["volume", "rm", &format!("v{i}")]),
        |b, i| {
            // Whole or gone.
            let name = format!("v{i}");
            let data = b.root().join("volumes").join(&name).join("_data");
            if b.run(&["volume", "inspect", &name]).status.success() {
                assert_eq!(names(&data).len(), files, "volume {name} is half removed");
                b.ok(&["volume", "rm", &name]);
            } else {
                assert!(
                    !b.root().join("volumes").join(&name).exists(),
                    "{name} half removed"
                );
            }
            checked();
        },
    );
    // And killed the moment its staging tree (`volumes/.rm-<owner>`) exists.
    for i in 100..103 {
        let name = format!("v{i}");
        b.ok(&["volume", "create", &name]);
        let data = b.root().join("volumes").join(&name).join("_data");
        for f in 0..files {
            std::fs::write(data.join(format!("f{f}")), b"x").unwrap();
        }
        let vols = b.root().join("volumes");
        let killed = kill_when(b.cmd(&["volume", "rm", &name]), || {
            names(&vols).iter().any(|n| n.starts_with(".rm"))
        });
        assert!(killed, "volume rm ended before its staging tree was seen");
        check(
            &b,
            &mut ctx,
            &format!("volume rm killed once {name} was set aside"),
        );
        assert!(!vols.join(&name).exists(), "{name} half removed");
    }
}

#[test]
fn sigkill_pull() {
    let reg = Registry::start();
    let (b, mut ctx) = store();
    let tar = b.scratch().join("big.tar");
    std::fs::write(&tar, big_archive(4)).unwrap();
    b.ok(&["load", "-i", s(&tar)]);
    let name = format!("{}/big:1", reg.addr);
    b.ok(&["tag", "big:1", &name]);
    b.ok(&["push", &name]);
    rm_image(&b, "big:1");
    rm_image(&b, &name);
    suite(
        &b,
        &mut ctx,
        "pull",
        |_, _| {},
        |b, _| b.cmd(&["pull", &name]),
        |b, _| {
            // Pulled whole or not at all; then gone for the next try.
            if b.run(&["image", "inspect", &name]).status.success() {
                b.ok(&["run", "--rm", &name, "true"]);
            }
            rm_image(b, &name);
        },
    );
    // A whole pull after the killed ones resumes or drops their partial
    // downloads: nothing is left.
    b.ok(&["pull", &name]);
    b.ok(&["run", "--rm", &name, "true"]);
    rm_image(&b, &name);
    let partial: Vec<String> = names(&b.root().join("blobs/sha256"))
        .into_iter()
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(partial.is_empty(), "left after a whole pull: {partial:?}");
}

/// The launcher of a monitor is killed before it reads the monitor's answer
/// (deterministically: a wrapper kills it, then runs the monitor): the answer
/// meets a broken pipe. The monitor used `println!`, which panicked there and
/// left the container running with no monitor; it must live on.
#[test]
fn a_launcher_killed_before_the_answer_keeps_the_monitor() {
    let (b, mut ctx) = store();
    let real = Path::new(BERTH).parent().unwrap().join("berth-monitor");
    let wrapper = b.scratch().join("monitor-wrapper");
    std::fs::write(
        &wrapper,
        format!(
            // No waiting for berth's end (it sleeps on the answer pipe, so
            // the KILL takes it at once): while this shell ran instead of
            // the monitor, the test's own next command found no monitor
            // (not yet a berth-monitor process, no monitor.pid) and
            // rightly tore the start down as abandoned.
            "#!/bin/sh\nkill -9 $PPID\nexec {} \"$@\"\n",
            real.display()
        ),
    )
    .unwrap();
    let mut perms = std::fs::metadata(&wrapper).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&wrapper, perms).unwrap();
    let out = b
        .cmd(&[
            "run",
            "-d",
            "--name",
            "orphaned",
            "busybox",
            "sh",
            "-c",
            "while :; do sleep 1; done",
            &ctx.marker.clone(),
        ])
        .env("BERTH_MONITOR", &wrapper)
        .output()
        .unwrap();
    assert!(!out.status.success(), "berth was not killed");
    // The monitor runs the container and stays.
    wait_until(20, "the container to run", || {
        records(&b).iter().any(|r| r.running)
    });
    std::thread::sleep(Duration::from_millis(300));
    check(&b, &mut ctx, "launcher killed before the answer");
    b.ok(&["rm", "-f", "orphaned"]);
}

/// A foreground `run` (no `--rm`, so under a monitor that waits for it to
/// attach before starting the container) is killed at moments of its start:
/// right after it spawned the monitor (the runtime still creating the
/// container), once the container is created, and once it runs. `rm -f` then
/// leaves no monitor and no container process. Killed before the container was
/// created, the kill of `rm -f` found nothing to kill and the monitor waited a
/// minute for an attach that never came, then started the container of a
/// removed record. With `--network none` and the default bridge.
#[test]
fn a_foreground_run_killed_during_its_start_is_removed_whole() {
    let (b, mut ctx) = store();
    let marker = ctx.marker.clone();
    let root = b.root().to_path_buf();
    let run_dirs = root.join("run/containers");
    type When<'a> = (&'a str, Box<dyn Fn() -> bool + 'a>);
    let points: Vec<When> = vec![
        (
            "the monitor is spawned",
            Box::new(|| !monitor_pids(&root).is_empty()),
        ),
        (
            "the container is created",
            Box::new(|| {
                names(&run_dirs)
                    .iter()
                    .any(|d| run_dirs.join(d).join("pid").exists())
            }),
        ),
        (
            "the container runs",
            // (In its cgroup: `berth run` itself has the marker too.)
            Box::new(|| {
                marked_processes(&marker)
                    .iter()
                    .any(|(_, cg)| cg.contains("berth-"))
            }),
        ),
    ];
    let mut i = 0;
    // The default network (the bridge), then none.
    for net in [&[][..], &["--network", "none"][..]] {
        for (when, cond) in &points {
            i += 1;
            let name = format!("fg{i}");
            let mut args = vec!["run", "--name", &name];
            args.extend(net);
            args.extend(["busybox", "sleep", "1000", &marker]);
            assert!(
                kill_when(b.cmd(&args), cond),
                "{args:?} ended before the kill"
            );
            b.ok(&["rm", "-f", &name]);
            let what = format!("{args:?} killed once {when}, then rm -f");
            wait_until(30, &format!("no monitor after {what}"), || {
                monitor_pids(b.root()).is_empty()
            });
            assert!(
                marked_processes(&marker).is_empty(),
                "container processes left after {what}"
            );
            check(&b, &mut ctx, &what);
        }
    }
}
