//! What another local user can reach of berth's state (issue 11, holes 3 and 4): the
//! root and its volatile part are not traversable by other users (a setuid binary a
//! container leaves in a volume or its writable layer is out of their reach, the
//! CVE-2021-41091 class), and every file that holds a container's environment or output
//! is 0600. Each attack runs as `nobody`, with the test's scratch directory opened up
//! (0755) as /var/lib is, so only berth's own modes stand in the way.
#![allow(clippy::unwrap_used)]

mod common;
use common::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const NOBODY: u32 = 65534;

/// A store whose surroundings any user may traverse, as /var/lib's.
fn open_store() -> Berth {
    let b = Berth::with_busybox();
    std::fs::set_permissions(b.scratch(), std::fs::Permissions::from_mode(0o755)).unwrap();
    b
}

/// `cat path` as nobody: Ok(content) or the error it printed.
fn read_as_nobody(path: &Path) -> Result<Vec<u8>, String> {
    let out = Command::new("cat")
        .arg(path)
        .uid(NOBODY)
        .gid(NOBODY)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(text(&out.stderr))
    }
}

/// Every regular file under `dir` (symlinks not followed, other filesystems' mount
/// points included as berth made them).
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        let Ok(m) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if m.is_dir() {
            walk(&p, out);
        } else if m.is_file() {
            out.push(p);
        }
    }
}

/// Whether some directory on the way from `/` to `path` keeps other users out.
fn shut_on_the_way(path: &Path) -> bool {
    path.ancestors()
        .skip(1)
        .any(|d| std::fs::metadata(d).is_ok_and(|m| m.mode() & 0o001 == 0))
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn setuid_binary_in_volume_or_layer_is_out_of_other_users_reach() {
    let b = open_store();
    // A container leaves a setuid-root shell in a named volume ...
    b.ok(&[
        "run",
        "--rm",
        "-v",
        "vol:/v",
        "busybox",
        "sh",
        "-c",
        "cp /bin/busybox /v/bb && chmod 4755 /v/bb",
    ]);
    // ... and one in the writable layer of a running container.
    b.ok(&["run", "-d", "--name", "c1", "busybox", "sleep", "1000"]);
    b.ok(&[
        "exec",
        "c1",
        "sh",
        "-c",
        "cp /bin/busybox /bb && chmod 4755 /bb",
    ]);
    let mut files = Vec::new();
    walk(b.root(), &mut files);
    let planted: Vec<PathBuf> = files
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "bb"))
        .collect();
    assert!(
        planted
            .iter()
            .any(|p| p.to_string_lossy().contains("/volumes/"))
            && planted
                .iter()
                .any(|p| p.to_string_lossy().contains("/storage/")),
        "the planted binaries were not found: {planted:?}"
    );
    for p in &planted {
        let m = std::fs::metadata(p).unwrap();
        assert_eq!(m.mode() & 0o4000, 0o4000, "{} is not setuid", p.display());
        let exec = Command::new(p)
            .args(["id", "-u"])
            .uid(NOBODY)
            .gid(NOBODY)
            .stdin(Stdio::null())
            .output();
        match exec {
            Err(e) => assert_eq!(
                e.kind(),
                std::io::ErrorKind::PermissionDenied,
                "exec {} as nobody: {e}",
                p.display()
            ),
            Ok(out) => panic!(
                "nobody executed {} (id -u printed {:?})",
                p.display(),
                text(&out.stdout)
            ),
        }
        let read = read_as_nobody(p);
        assert!(
            read.as_ref()
                .is_err_and(|e| e.contains("Permission denied")),
            "nobody read {}: {:?}",
            p.display(),
            read.map(|v| v.len())
        );
    }
    // The root, its volatile part and the directories under them that hold
    // containers and volumes are closed to other users.
    for d in [
        "",
        "run",
        "volumes",
        "storage",
        "containers",
        "run/containers",
    ] {
        let p = b.root().join(d);
        if let Ok(m) = std::fs::metadata(&p) {
            assert_eq!(
                m.mode() & 0o077,
                0,
                "{} is {:o}",
                p.display(),
                m.mode() & 0o7777
            );
        }
    }
    b.ok(&["rm", "-f", "c1"]);
}

#[test]
fn secrets_are_readable_by_root_only() {
    let b = open_store();
    let secret = "berth-secret-5f0c1d2e";
    let env = format!("SECRET={secret}");
    b.ok(&[
        "run",
        "-d",
        "--name",
        "s1",
        "-e",
        &env,
        "--health-cmd",
        "echo $SECRET",
        "--health-interval",
        "1s",
        "--log-opt",
        "max-size=1k",
        "--log-opt",
        "max-file=3",
        "busybox",
        "sh",
        "-c",
        // Enough output for a rotated log file, then the secret again.
        "echo $SECRET; i=0; while [ $i -lt 40 ]; do echo $SECRET-$i; i=$((i+1)); done; sleep 1000",
    ]);
    let health = |b: &Berth| {
        let mut files = Vec::new();
        walk(b.root(), &mut files);
        files.iter().any(|p| {
            p.file_name().is_some_and(|n| n == "health")
                && std::fs::read_to_string(p).is_ok_and(|t| t.contains(secret))
        })
    };
    wait_for("the health check's output", || health(&b));
    wait_for("the log", || {
        text(&b.run(&["logs", "s1"]).stdout).contains(&format!("{secret}-39"))
    });
    let mut files = Vec::new();
    walk(b.root(), &mut files);
    let holders: Vec<PathBuf> = files
        .into_iter()
        .filter(|p| {
            std::fs::read(p).is_ok_and(|t| t.windows(secret.len()).any(|w| w == secret.as_bytes()))
        })
        .collect();
    let names: Vec<String> = holders
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for want in ["config.json", "state.json", "health"] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} not among {holders:?}"
        );
    }
    assert!(
        names.iter().any(|n| n.starts_with("berth.db")),
        "the database not among {holders:?}"
    );
    assert!(
        names.iter().any(|n| n.ends_with("-json.log.1")),
        "no rotated log among {holders:?}"
    );
    for p in &holders {
        let m = std::fs::metadata(p).unwrap();
        assert_eq!(
            m.mode() & 0o077,
            0,
            "{} holds the secret and is {:o}",
            p.display(),
            m.mode() & 0o7777
        );
        assert!(shut_on_the_way(p), "{} is reachable by others", p.display());
        let read = read_as_nobody(p);
        assert!(
            read.as_ref()
                .is_err_and(|e| e.contains("Permission denied")),
            "nobody read {}: {:?}",
            p.display(),
            read.map(|v| text(&v))
        );
    }
    b.ok(&["rm", "-f", "s1"]);
}

#[test]
fn a_root_made_open_is_closed_again_at_open() {
    let b = open_store();
    b.ok(&["volume", "create", "vv"]);
    // As an older berth left it.
    for d in ["", "run", "volumes", "storage"] {
        let p = b.root().join(d);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let db = b.root().join("berth.db");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    b.ok(&["ps"]);
    for d in ["", "run", "volumes", "storage"] {
        let p = b.root().join(d);
        let m = std::fs::metadata(&p).unwrap();
        assert_eq!(
            m.mode() & 0o077,
            0,
            "{} is {:o}",
            p.display(),
            m.mode() & 0o7777
        );
    }
    let m = std::fs::metadata(&db).unwrap();
    assert_eq!(m.mode() & 0o077, 0, "berth.db is {:o}", m.mode() & 0o7777);
}
