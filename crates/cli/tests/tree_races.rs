//! Reading a running container's files while the container (here: this test,
//! acting on the container's own merged directory, which is what a process in
//! the container does) swaps a file and a symlink to a host path with
//! `renameat2(RENAME_EXCHANGE)`: `cp` out, `commit`, `export` and `diff` never
//! follow the symlink onto the host. Also: `commit` pauses the container
//! (Docker's `-p/--pause`, default true), and `cp FILE C:DIR/` needs DIR.
#![allow(clippy::unwrap_used)]

mod common;

use common::{describe, is_hex64, text, Berth};
use nix::fcntl::{renameat2, RenameFlags};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// `run -d ARGS`: returns the container's ID.
fn run_d(b: &Berth, args: &[&str]) -> String {
    let mut a = vec!["run", "-d"];
    a.extend_from_slice(args);
    let out = b.run(&a);
    assert!(out.status.success(), "{}", describe(&a, &out));
    let id = text(&out.stdout).trim().to_owned();
    assert!(is_hex64(&id), "run -d printed {id:?}");
    id
}

fn exec(b: &Berth, name: &str, script: &str) -> String {
    b.ok(&["exec", name, "sh", "-c", script])
}

/// Exchanges `a` and `b` in `dir` again and again until `stop`.
struct Swapper {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<u64>>,
}

impl Swapper {
    fn start(dir: &Path, pairs: &[(&str, &str)]) -> Swapper {
        Swapper::start_paced(dir, pairs, None)
    }

    /// As `start`, resting `pause` after each round of exchanges.
    fn start_paced(dir: &Path, pairs: &[(&str, &str)], pause: Option<Duration>) -> Swapper {
        let stop = Arc::new(AtomicBool::new(false));
        let dir = std::fs::File::open(dir).unwrap();
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect();
        let s = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let fd = Some(dir.as_raw_fd());
            let mut n = 0u64;
            while !s.load(Ordering::Relaxed) {
                for (a, b) in &pairs {
                    if renameat2(fd, a.as_str(), fd, b.as_str(), RenameFlags::RENAME_EXCHANGE)
                        .is_ok()
                    {
                        n += 1;
                    }
                }
                if let Some(p) = pause {
                    std::thread::sleep(p);
                }
            }
            n
        });
        Swapper {
            stop,
            thread: Some(thread),
        }
    }

    fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for Swapper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// A host directory with a secret file; the same absolute path does not
/// exist in the container.
fn host_secret(b: &Berth, marker: &str) -> PathBuf {
    let dir = b.scratch().join("host-secret");
    std::fs::create_dir_all(dir.join("hostdir")).unwrap();
    std::fs::write(dir.join("secret"), marker).unwrap();
    std::fs::write(dir.join("hostdir").join(marker), marker).unwrap();
    dir
}

/// A running container `c` with `/data/f` (a file longer than the secret:
/// what is read through a symlink is cut to the size stat'ed first),
/// `/data/l` -> the host's secret file, `/data/d` (a directory) and
/// `/data/dl` -> a host directory holding a file named after the secret,
/// and a thread exchanging the `pairs` (f with l, d with dl) in the
/// container's merged directory. Returns the marker and the swapper.
fn racing_container(b: &Berth, pairs: &[(&str, &str)]) -> (String, Swapper) {
    let id = run_d(b, &["--name", "c1", "busybox", "sleep", "600"]);
    let marker = format!("HOST-SECRET-{}-x7q", std::process::id());
    let host = host_secret(b, &marker);
    let secret = host.join("secret");
    let hostdir = host.join("hostdir");
    exec(
        b,
        "c1",
        &format!(
            "mkdir -p /data/d && echo inner > /data/d/inner \
             && i=0 && while [ $i -lt 32 ]; do echo -n innocent; i=$((i+1)); done > /data/f \
             && ln -s {} /data/l && ln -s {} /data/dl",
            secret.display(),
            hostdir.display()
        ),
    );
    let merged = b
        .root()
        .join("storage/containers")
        .join(&id)
        .join("merged/data");
    assert_eq!(std::fs::metadata(merged.join("f")).unwrap().len(), 256);
    let swapper = Swapper::start(&merged, pairs);
    (marker, swapper)
}

fn finish_race(b: &Berth, marker: &str, swapper: Swapper) {
    let swaps = swapper.stop();
    assert!(swaps > 0, "the swapper never swapped");
    // The container is still usable and its files are its own.
    let f = exec(b, "c1", "cat /data/f /data/l 2>/dev/null; true");
    assert!(!f.contains(marker), "{f}");
    b.ok(&["rm", "-f", "c1"]);
}

#[test]
fn cp_out_of_a_running_container_never_follows_a_swapped_in_symlink_to_the_host() {
    let b = Berth::with_busybox();
    let (marker, swapper) = racing_container(&b, &[("f", "l"), ("d", "dl")]);
    let out = b.scratch().join("out");
    std::fs::create_dir_all(&out).unwrap();
    for i in 0..60 {
        let o = b.run(&["cp", "c1:/data/f", "-"]);
        assert!(
            !contains(&o.stdout, marker.as_bytes()),
            "cp c1:/data/f - gave the host file (round {i})"
        );
        let dest = out.join(format!("f{i}"));
        let _ = b.run(&["cp", "c1:/data/f", dest.to_str().unwrap()]);
        // A symlink copied as such may name the host path: never read through it.
        if let Ok(m) = std::fs::symlink_metadata(&dest) {
            if m.is_file() {
                let got = std::fs::read(&dest).unwrap();
                assert!(
                    !contains(&got, marker.as_bytes()),
                    "cp c1:/data/f {} gave the host file (round {i})",
                    dest.display()
                );
            }
        }
        let o = b.run(&["cp", "c1:/data", "-"]);
        assert!(
            !contains(&o.stdout, marker.as_bytes()),
            "cp c1:/data - read the host (round {i})"
        );
    }
    finish_race(&b, &marker, swapper);
}

#[test]
fn export_of_a_running_container_never_follows_a_swapped_in_symlink_to_the_host() {
    let b = Berth::with_busybox();
    let (marker, swapper) = racing_container(&b, &[("f", "l"), ("d", "dl")]);
    for i in 0..60 {
        let o = b.run(&["export", "c1"]);
        assert!(
            !contains(&o.stdout, marker.as_bytes()),
            "export read the host (round {i})"
        );
    }
    finish_race(&b, &marker, swapper);
}

#[test]
fn diff_of_a_running_container_never_follows_a_swapped_in_symlink_to_the_host() {
    let b = Berth::with_busybox();
    let (marker, swapper) = racing_container(&b, &[("d", "dl")]);
    for i in 0..150 {
        let o = b.run(&["diff", "c1"]);
        assert!(
            !contains(&o.stdout, marker.as_bytes()),
            "diff listed the host directory (round {i}): {}",
            text(&o.stdout)
        );
    }
    finish_race(&b, &marker, swapper);
}

#[test]
fn commit_of_a_running_container_never_captures_host_files() {
    let b = Berth::with_busybox();
    let (marker, swapper) = racing_container(&b, &[("f", "l")]);
    // The swapper runs on the host side, so the freezer does not stop it:
    // this is the descriptor-relative reading at work.
    let mut failed = Vec::new();
    for i in 0..30 {
        let o = b.run(&["commit", "c1"]);
        if !o.status.success() {
            failed.push(text(&o.stderr));
            continue;
        }
        let img = text(&o.stdout).trim().to_owned();
        // The committed layer, as `save` writes it.
        let saved = b.run(&["save", &img]);
        assert!(saved.status.success(), "{}", describe(&["save"], &saved));
        assert!(
            !contains(&saved.stdout, marker.as_bytes()),
            "commit captured the host's files (round {i})"
        );
        b.ok(&["rmi", &img]);
    }
    // A file swapped meanwhile is no reason to fail.
    assert!(failed.is_empty(), "commits failed: {failed:?}");
    finish_race(&b, &marker, swapper);
}

#[test]
fn cp_copies_a_symlink_as_a_link_and_resolves_paths_through_it_inside_the_container() {
    let b = Berth::with_busybox();
    run_d(&b, &["--name", "c1", "busybox", "sleep", "600"]);
    let marker = format!("HOST-ONLY-{}", std::process::id());
    let host = host_secret(&b, &marker);
    let hostdir = host.join("hostdir");
    // The same absolute path inside the container holds the container's own file.
    exec(
        &b,
        "c1",
        &format!(
            "mkdir -p {d} && echo container-side > {d}/{m} && ln -s {d} /link",
            d = hostdir.display(),
            m = marker
        ),
    );
    let out = b.scratch().join("out");
    std::fs::create_dir_all(&out).unwrap();
    // The link itself is copied as a link (Docker's default, no -L).
    let dest = out.join("link");
    b.ok(&["cp", "c1:/link", dest.to_str().unwrap()]);
    let m = std::fs::symlink_metadata(&dest).unwrap();
    assert!(m.file_type().is_symlink(), "{m:?}");
    assert_eq!(std::fs::read_link(&dest).unwrap(), hostdir);
    // A path through the link resolves inside the container.
    let through = format!("c1:/link/{marker}");
    let o = b.run(&["cp", &through, "-"]);
    assert!(o.status.success(), "{}", describe(&["cp", &through], &o));
    assert!(contains(&o.stdout, b"container-side\n"));
    let dest = out.join("through");
    b.ok(&["cp", &through, dest.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), "container-side\n");
    // Copying into the container through the link writes the container's directory.
    let src = b.scratch().join("newfile");
    std::fs::write(&src, "planted\n").unwrap();
    b.ok(&["cp", src.to_str().unwrap(), "c1:/link/"]);
    assert!(
        !hostdir.join("newfile").exists(),
        "cp wrote the host directory"
    );
    assert_eq!(
        exec(&b, "c1", &format!("cat {}/newfile", hostdir.display())),
        "planted\n"
    );
    b.ok(&["rm", "-f", "c1"]);
}

#[test]
fn cp_into_a_dangling_link_with_a_trailing_slash_fails() {
    let b = Berth::with_busybox();
    run_d(&b, &["--name", "c1", "busybox", "sleep", "600"]);
    exec(&b, "c1", "ln -s /nonexistent /dangling && echo x > /file");
    let src = b.scratch().join("f.txt");
    std::fs::write(&src, "data\n").unwrap();
    for dest in ["c1:/dangling/", "c1:/missing/", "c1:/file/"] {
        let e = b.fails(&["cp", src.to_str().unwrap(), dest], 1);
        assert_eq!(e, "Error: no such directory", "{dest}");
    }
    // Nothing changed: the link is still a link, nothing was created.
    assert_eq!(exec(&b, "c1", "readlink /dangling"), "/nonexistent\n");
    exec(
        &b,
        "c1",
        "test ! -e /nonexistent && test ! -e /missing && test -f /file",
    );
    // Without the slash the link is a file name: replaced, as Docker does.
    b.ok(&["cp", src.to_str().unwrap(), "c1:/dangling"]);
    assert_eq!(exec(&b, "c1", "cat /dangling"), "data\n");
    b.ok(&["rm", "-f", "c1"]);
}

#[test]
fn commit_pauses_a_running_container_unless_told_not_to() {
    let b = Berth::with_busybox();
    run_d(&b, &["--name", "c1", "busybox", "sleep", "600"]);
    let actions = |b: &Berth| -> Vec<String> {
        b.ok(&[
            "events",
            "--since",
            "10m",
            "--until",
            "0s",
            "--filter",
            "container=c1",
            "--format",
            "{{.Action}}",
        ])
        .lines()
        .filter(|l| matches!(*l, "pause" | "unpause"))
        .map(str::to_owned)
        .collect()
    };
    b.ok(&["commit", "c1", "img1"]);
    assert_eq!(actions(&b), ["pause", "unpause"]);
    assert_eq!(b.inspect("c1")["State"]["Status"], "running");
    for flag in ["--pause=false", "-p=false"] {
        b.ok(&["commit", flag, "c1"]);
    }
    // No more pauses.
    assert_eq!(actions(&b), ["pause", "unpause"]);
    // A paused container stays paused.
    b.ok(&["pause", "c1"]);
    b.ok(&["commit", "c1", "img2"]);
    assert_eq!(b.inspect("c1")["State"]["Status"], "paused");
    b.ok(&["unpause", "c1"]);
    // A failed commit resumes the container too.
    let e = b.fails(&["commit", "c1", "Bad:Ref"], 1);
    assert!(e.starts_with("Error: "), "{e}");
    assert_eq!(b.inspect("c1")["State"]["Status"], "running");
    b.ok(&["rm", "-f", "c1"]);
}

#[test]
fn build_never_reads_a_host_file_swapped_into_the_context() {
    let b = Berth::with_busybox();
    let marker = format!("HOST-SECRET-{}-ctx", std::process::id());
    let host = host_secret(&b, &marker);
    let ctx = b.scratch().join("ctx");
    std::fs::create_dir_all(ctx.join("sub")).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nCOPY f /f\nCOPY . /ctx/\n",
    )
    .unwrap();
    std::fs::write(ctx.join(".dockerignore"), "Dockerfile\n").unwrap();
    // Longer than the secret: a read through the link is cut to the size stat'ed.
    std::fs::write(ctx.join("f"), "innocent".repeat(32)).unwrap();
    std::fs::write(ctx.join("sub/inner"), "inner").unwrap();
    std::os::unix::fs::symlink(host.join("secret"), ctx.join("l")).unwrap();
    std::os::unix::fs::symlink(host.join("hostdir"), ctx.join("dl")).unwrap();
    // Paced: a build that meets a file turned symlink fails (in one line),
    // and on a loaded machine an unpaced swapper made every build fail;
    // builds that succeed are what shows nothing of the host is read.
    let swapper = Swapper::start_paced(
        &ctx,
        &[("f", "l"), ("sub", "dl")],
        Some(Duration::from_micros(200)),
    );
    let mut failed = Vec::new();
    let mut built = 0;
    for i in 0..100 {
        if built >= 10 {
            break;
        }
        let o = b.run(&["build", "-q", "--no-cache", ctx.to_str().unwrap()]);
        if !o.status.success() {
            failed.push(text(&o.stderr));
            continue;
        }
        built += 1;
        let img = text(&o.stdout).trim().to_owned();
        let saved = b.run(&["save", &img]);
        assert!(saved.status.success(), "{}", describe(&["save"], &saved));
        assert!(
            !contains(&saved.stdout, marker.as_bytes()),
            "the build read the host through the context (round {i})"
        );
        b.ok(&["rmi", &img]);
    }
    assert!(swapper.stop() > 0, "the swapper never swapped");
    // A file that changed into a symlink mid-build may fail the build with
    // one clear line; it never reads the host.
    for e in &failed {
        assert_eq!(e.lines().count(), 1, "{e}");
    }
    assert!(built > 0, "every build failed: {failed:?}");
}

#[test]
fn cp_of_a_fifo_into_a_running_container_never_changes_a_host_file() {
    use std::os::unix::fs::PermissionsExt;
    let b = Berth::with_busybox();
    let id = run_d(&b, &["--name", "c1", "busybox", "sleep", "600"]);
    exec(&b, "c1", "mkdir /data");
    let victim = b.scratch().join("victim");
    std::fs::write(&victim, "host").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o600)).unwrap();
    // A tar with one fifo, mode 0666.
    let mut tb = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Fifo);
    h.set_mode(0o666);
    h.set_size(0);
    tb.append_data(&mut h, "p", std::io::empty()).unwrap();
    let t = tb.into_inner().unwrap();
    // The container (here: this thread, in its merged directory) keeps a
    // symlink to the host file beside the fifo and exchanges the two.
    let dir = b
        .root()
        .join("storage/containers")
        .join(&id)
        .join("merged/data");
    let stop = Arc::new(AtomicBool::new(false));
    let s = Arc::clone(&stop);
    let target = victim.clone();
    let swapper = std::thread::spawn(move || {
        let d = std::fs::File::open(&dir).unwrap();
        let fd = Some(d.as_raw_fd());
        while !s.load(Ordering::Relaxed) {
            let _ = std::os::unix::fs::symlink(&target, dir.join("l"));
            let _ = renameat2(fd, "p", fd, "l", RenameFlags::RENAME_EXCHANGE);
        }
    });
    for i in 0..100 {
        let _ = b.run_stdin(&["cp", "-", "c1:/data"], &t);
        let mode = std::fs::metadata(&victim).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o600, "cp changed the host file's mode (round {i})");
    }
    stop.store(true, Ordering::Relaxed);
    swapper.join().unwrap();
    b.ok(&["rm", "-f", "c1"]);
}

#[test]
fn user_lookups_read_the_images_passwd_never_a_host_file_it_links_to() {
    let b = Berth::with_busybox();
    // A host file in passwd's shape that the image's /etc/passwd points at.
    let host = b.scratch().join("hostpasswd");
    std::fs::write(&host, "evil:x:4242:4242::/leaked-home:/bin/sh\n").unwrap();
    std::fs::write(b.scratch().join("hostgroup"), "evilgroup:x:4343:evil\n").unwrap();
    let ctx = b.scratch().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM busybox\nRUN mkdir -p /etc && ln -sf {} /etc/passwd && ln -sf {} /etc/group\n",
            host.display(),
            b.scratch().join("hostgroup").display()
        ),
    )
    .unwrap();
    b.ok(&["build", "-q", "-t", "linked", ctx.to_str().unwrap()]);
    // The name exists only in the host file: not found, as runc finds it.
    let out = b.run(&["run", "--rm", "-u", "evil", "linked", "true"]);
    assert!(!out.status.success(), "a host file named the user");
    assert!(
        text(&out.stderr).contains("unable to find user evil"),
        "{}",
        text(&out.stderr)
    );
    // HOME does not come from the host file either.
    let env = b.ok(&["run", "--rm", "-u", "4242", "linked", "env"]);
    assert!(env.contains("HOME=/\n"), "{env}");
    assert!(!env.contains("leaked"), "{env}");
    let out = b.run(&["run", "--rm", "--group-add", "evilgroup", "linked", "true"]);
    assert!(!out.status.success(), "a host file named the group");
}
