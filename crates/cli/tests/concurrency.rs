//! Concurrent `berth` processes on one store: no daemon, so they coordinate through
//! SQLite and the file system only.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::process::Output;

fn spawn_all(b: &Berth, n: usize, args: &[&str]) -> Vec<Output> {
    let children: Vec<_> = (0..n)
        .map(|_| {
            b.cmd(args)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect()
}

#[test]
fn eight_runs_at_once() {
    let b = Berth::with_busybox();
    let outs = spawn_all(
        &b,
        8,
        &["run", "--rm", "busybox", "sh", "-c", "echo $HOSTNAME; true"],
    );
    let mut hosts = Vec::new();
    for o in &outs {
        assert!(
            o.status.success(),
            "{}",
            describe(&["run", "--rm", "busybox", "true"], o)
        );
        hosts.push(text(&o.stdout));
    }
    hosts.sort();
    hosts.dedup();
    assert_eq!(hosts.len(), 8, "each container is its own: {hosts:?}");
    assert_eq!(b.ok(&["ps", "-a", "-q"]), "");
    let outs = spawn_all(&b, 8, &["run", "--rm", "busybox", "true"]);
    for o in &outs {
        assert!(
            o.status.success(),
            "{}",
            describe(&["run", "--rm", "busybox", "true"], o)
        );
    }
    assert_eq!(b.ok(&["ps", "-a", "-q"]), "");
}

#[test]
fn concurrent_loads_of_one_archive() {
    let b = Berth::new();
    let l2 = layer_tar(&[dir("x"), file("x/data", &noise(11, 2 << 20))]);
    let l3 = layer_tar(&[dir("y"), file("y/data", b"y\n")]);
    let img = ImageSpec::new(
        "conc:1",
        vec![Layer::busybox(), Layer::gz(l2), Layer::plain(l3)],
    );
    for (kind, archive) in [
        ("docker", docker_archive(std::slice::from_ref(&img))),
        ("oci", oci_archive(std::slice::from_ref(&img))),
    ] {
        let path = b.scratch().join(format!("{kind}.tar"));
        std::fs::write(&path, &archive).unwrap();
        let outs = spawn_all(&b, 3, &["load", "-i", path.to_str().unwrap()]);
        for o in &outs {
            assert!(o.status.success(), "{kind}: {}", describe(&["load"], o));
            assert_eq!(text(&o.stdout), "Loaded image: conc:1\n");
        }
        assert_eq!(
            b.image_ids(),
            vec![sha(&img.config())],
            "{kind}: stored once"
        );
        assert_eq!(
            b.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]),
            "conc:1\n"
        );
        assert_eq!(b.layer_dirs().len(), 3, "{kind}: {:?}", b.layer_dirs());
        assert_eq!(
            b.ok(&[
                "run",
                "--rm",
                "conc:1",
                "sh",
                "-c",
                "cat /y/data; wc -c < /x/data"
            ]),
            format!("y\n{}\n", 2 << 20)
        );
        let out = b.ok(&["rmi", "conc:1"]);
        assert!(out.contains("Deleted:"), "{out}");
        assert!(b.blobs().is_empty(), "{kind}: {:?}", b.blobs());
        assert!(b.layer_dirs().is_empty(), "{kind}: {:?}", b.layer_dirs());
    }
}

#[test]
fn concurrent_imports_tags_and_runs() {
    let b = Berth::with_busybox();
    let tar = b.scratch().join("bb.tar");
    std::fs::write(&tar, busybox_tar()).unwrap();
    let t = tar.to_str().unwrap().to_owned();
    let mut children = Vec::new();
    for i in 0..4 {
        children.push(
            b.cmd(&["import", &t, &format!("imp:{i}")])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap(),
        );
        children.push(
            b.cmd(&["tag", "busybox", &format!("tagged:{i}")])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap(),
        );
        children.push(
            b.cmd(&["run", "--rm", "busybox", "true"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap(),
        );
    }
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", describe(&["(concurrent)"], &o));
    }
    let out = b.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    let mut names: Vec<&str> = out.lines().collect();
    names.sort();
    assert_eq!(
        names,
        [
            "busybox:latest",
            "imp:0",
            "imp:1",
            "imp:2",
            "imp:3",
            "tagged:0",
            "tagged:1",
            "tagged:2",
            "tagged:3"
        ]
    );
    // The same tarball imported with the same layer: one layer on disk.
    assert_eq!(b.layer_dirs().len(), 1, "{:?}", b.layer_dirs());
    assert_eq!(b.ok(&["ps", "-a", "-q"]), "");
}

/// `ps` (any command that reads containers) beside foreground runs: a record
/// marked running without a monitor is the fast path's own (`starting` names the
/// running `berth run`), never an abandoned container to tear down. Before, about
/// half the runs failed with a vanished mount, network namespace or runtime state.
#[test]
fn foreground_runs_beside_readers() {
    let b = Berth::with_busybox();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let stop = stop.clone();
            let mut cmd = b.cmd(&["ps", "-a"]);
            cmd.stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
            let prog = cmd.get_program().to_owned();
            let args: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) && n < 2000 {
                    let _ = std::process::Command::new(&prog)
                        .args(&args)
                        .stdout(std::process::Stdio::null())
                        .stderr(std::process::Stdio::null())
                        .status();
                    n += 1;
                }
            })
        })
        .collect();
    let mut failed = Vec::new();
    for net in ["none", "bridge"] {
        for _ in 0..6 {
            let args = ["run", "--rm", "--network", net, "busybox", "true"];
            let o = b.run(&args);
            if !o.status.success() {
                failed.push(describe(&args, &o));
            }
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for r in readers {
        r.join().unwrap();
    }
    assert!(failed.is_empty(), "{failed:#?}");
    assert_eq!(b.ok(&["ps", "-a", "-q"]), "");
}
