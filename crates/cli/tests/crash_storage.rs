//! What a killed berth leaves in storage (staging areas, trash, temporary files,
//! half-removed containers and images), made by hand as a crash leaves it: the next
//! command sweeps what has no live owner, prune and `system reset` count and remove
//! it, and `system check [--repair]` reports and mends every kind.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::fs;
use std::path::{Path, PathBuf};

/// A pid that no process has any more (a child that ran and was reaped).
fn dead_pid() -> u32 {
    let mut c = std::process::Command::new("true").spawn().unwrap();
    let pid = c.id();
    c.wait().unwrap();
    pid
}

/// The name a staging area of a process that is gone carries (berth-lease's shape).
fn dead_name(prefix: &str) -> String {
    format!("{prefix}-{}-12345-1f00", dead_pid())
}

/// A directory tree of `n` files of 4 KiB under `dir`.
fn tree(dir: &Path, n: usize) {
    fs::create_dir_all(dir.join("diff/etc")).unwrap();
    for i in 0..n {
        fs::write(dir.join(format!("diff/etc/f{i}")), vec![7u8; 4096]).unwrap();
    }
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn check(b: &Berth, args: &[&str]) -> (i32, String) {
    let mut all = vec!["system", "check"];
    all.extend_from_slice(args);
    let out = b.run(&all);
    (out.status.code().unwrap_or(-1), text(&out.stdout))
}

/// `system check` finds something (exit 1, naming it), `--repair` mends it, and a
/// second check finds nothing (exit 0).
fn check_repair_clean(b: &Berth, extra: &[&str], expect: &[&str]) -> String {
    let (code, out) = check(b, extra);
    assert_eq!(code, 1, "check should find problems:\n{out}");
    for e in expect {
        assert!(out.contains(e), "check output lacks {e:?}:\n{out}");
    }
    assert!(out.contains("run 'berth system check --repair'"), "{out}");
    let mut rep = vec!["--repair"];
    rep.extend_from_slice(extra);
    let (code, repaired) = check(b, &rep);
    assert_eq!(code, 0, "repair should mend everything:\n{repaired}");
    for e in expect {
        assert!(
            repaired.contains(e),
            "repair output lacks {e:?}:\n{repaired}"
        );
    }
    assert!(repaired.contains(": repaired"), "{repaired}");
    let (code, again) = check(b, extra);
    assert_eq!(code, 0, "check after repair:\n{again}");
    assert_eq!(again.trim(), "No problems found");
    repaired
}

/// The store still works: a container runs and an image loads.
fn still_usable(b: &Berth) {
    assert_eq!(b.ok(&["run", "--rm", "busybox", "echo", "ok"]).trim(), "ok");
    let tar = b.scratch().join("again.tar");
    fs::write(&tar, busybox_tar()).unwrap();
    b.ok(&["import", tar.to_str().unwrap(), "again:1"]);
    b.ok(&["rmi", "again:1"]);
}

#[test]
fn next_command_sweeps_staging_and_trash_of_dead_processes() {
    let b = Berth::with_busybox();
    let storage = b.root().join("storage");
    let layer = storage.join("staging").join(dead_name("layer"));
    let ctr = storage.join("staging").join(dead_name("ctr"));
    let trash = storage.join("trash").join(dead_name("trash"));
    let blob = b.root().join("blobs/staging").join(dead_name("blob"));
    for d in [&layer, &ctr, &trash] {
        tree(d, 20);
    }
    fs::write(&blob, vec![1u8; 1 << 20]).unwrap();
    // A live owner's staging area (this test process) is left alone.
    let live =
        storage
            .join("staging")
            .join(format!("layer-{}-{}-1", std::process::id(), start_time()));
    tree(&live, 2);

    b.ok(&["images"]);
    assert_eq!(entries(&storage.join("staging")), vec![live_name(&live)]);
    wait_until(30, "trash emptied", || {
        entries(&storage.join("trash")).is_empty()
    });
    assert!(entries(&b.root().join("blobs/staging")).is_empty());
    fs::remove_dir_all(&live).unwrap();
    still_usable(&b);
}

fn live_name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

/// This process's start time (field 22 of /proc/self/stat).
fn start_time() -> u64 {
    let s = fs::read_to_string("/proc/self/stat").unwrap();
    let after = &s[s.rfind(')').unwrap() + 1..];
    after.split_whitespace().nth(19).unwrap().parse().unwrap()
}

#[test]
fn prune_removes_and_counts_old_style_temporary_files() {
    let b = Berth::with_busybox();
    // What an older berth killed during a load left.
    let tmp_layer = b.root().join("storage/layers/.tmp-ABCDEFGHIJKLMNOP");
    tree(&tmp_layer, 256);
    let tmp_blob = b.root().join("blobs/sha256/.tmp-XyZ123");
    fs::write(&tmp_blob, vec![3u8; 2 << 20]).unwrap();
    let out = b.ok(&["system", "prune", "-a", "-f"]);
    assert!(!tmp_layer.exists() && !tmp_blob.exists(), "{out}");
    let last = out.lines().last().unwrap_or("");
    assert!(last.starts_with("Total reclaimed space: "), "{out}");
    assert_ne!(last, "Total reclaimed space: 0B", "{out}");
    // At least the 3 MiB of the two leftovers.
    assert!(last.ends_with("MB") || last.ends_with("GB"), "{out}");
    assert!(b.image_ids().is_empty());
}

#[test]
fn image_prune_removes_and_counts_stale_partial_downloads() {
    let b = Berth::with_busybox();
    // A pull killed two hours ago; no pull holds it now.
    let partial = b
        .root()
        .join(format!("blobs/sha256/.partial-{}", "aa".repeat(32)));
    fs::write(&partial, vec![5u8; 3 << 20]).unwrap();
    set_old(&partial);
    // A recent one is a pull to resume: kept.
    let recent = b
        .root()
        .join(format!("blobs/sha256/.partial-{}", "bb".repeat(32)));
    fs::write(&recent, vec![5u8; 1 << 20]).unwrap();
    let out = b.ok(&["image", "prune", "-f"]);
    assert!(!partial.exists(), "{out}");
    assert!(recent.exists(), "{out}");
    let last = out.lines().last().unwrap_or("");
    assert!(last.starts_with("Total reclaimed space: 3."), "{out}");
    assert!(last.ends_with("MB"), "{out}");
}

/// Sets `p`'s mtime two hours back.
fn set_old(p: &Path) {
    let t = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    let f = fs::File::options().write(true).open(p).unwrap();
    f.set_modified(t).unwrap();
}

#[test]
fn system_reset_removes_staging_trash_and_partial_downloads() {
    let b = Berth::with_busybox();
    let staging = b.root().join("storage/staging").join(dead_name("layer"));
    let old_tmp = b.root().join("storage/layers/.tmp-OLDOLDOLD");
    let partial = b.root().join(
        "blobs/sha256/.partial-00000000000000000000000000000000000000000000000000000000000000bb",
    );
    let old_blob = b.root().join("blobs/sha256/.tmp-old");
    tree(&staging, 5);
    tree(&old_tmp, 5);
    fs::write(&partial, b"half a blob").unwrap();
    fs::write(&old_blob, b"half a blob").unwrap();
    b.ok(&["system", "reset", "-f"]);
    for p in [&staging, &old_tmp, &partial, &old_blob] {
        assert!(!p.exists(), "{} survived system reset", p.display());
    }
    wait_until(30, "trash emptied", || {
        entries(&b.root().join("storage/trash")).is_empty()
    });
    assert!(entries(&b.root().join("storage/layers")).is_empty());
    assert!(entries(&b.root().join("storage/staging")).is_empty());
    assert!(
        b.blob_dir_entries().is_empty(),
        "{:?}",
        b.blob_dir_entries()
    );
}

#[test]
fn rmi_of_a_big_image_leaves_nothing_once_its_deleter_is_done() {
    let b = Berth::with_busybox();
    // More files than the command deletes itself: the rest goes to a deleter.
    let entries_: Vec<Entry> = (0..3000)
        .map(|i| file(&format!("d{}/f{i}", i % 30), b"x"))
        .collect();
    let tar = b.scratch().join("big.tar");
    fs::write(&tar, layer_tar(&entries_)).unwrap();
    b.ok(&["import", tar.to_str().unwrap(), "big:1"]);
    let before = b.layer_dirs();
    b.ok(&["rmi", "big:1"]);
    // The layer is gone for every reader at once.
    assert_eq!(b.layer_dirs().len(), before.len() - 1);
    wait_until(60, "the detached deleter to finish", || {
        entries(&b.root().join("storage/trash")).is_empty()
    });
    still_usable(&b);
}

#[test]
fn check_finds_and_repairs_staging_leftovers() {
    let b = Berth::with_busybox();
    let stage = b.root().join("storage/staging").join(dead_name("layer"));
    let old = b.root().join("storage/layers/.tmp-QWERTYUIOPASDFGH");
    let blob = b.root().join("blobs/sha256/.tmp-crashed");
    // Made by hand after the last command: a check opens the store, whose sweep
    // adopts the staging area; the check then reports what remains.
    tree(&old, 3);
    fs::write(&blob, vec![1u8; 100_000]).unwrap();
    let link = b.root().join("storage/l/DANGLINGXX");
    std::os::unix::fs::symlink("../layers/0000/diff", &link).unwrap();
    tree(&stage, 3);
    // A fresh dangling link may be a load's that is about to commit its
    // layer: only older ones are garbage (here: any age).
    let (code, out) = check(&b, &["--quick"]);
    assert!(!out.contains("DANGLINGXX"), "{out}");
    assert_eq!(code, 1, "{out}");
    let out = check_repair_clean(
        &b,
        &["--max", "0s"],
        &[
            "storage/layers/.tmp-QWERTYUIOPASDFGH: temporary directory",
            "blobs/sha256/.tmp-crashed: temporary file",
            "l/DANGLINGXX: link to a layer that does not exist",
        ],
    );
    assert!(!old.exists() && !blob.exists() && !stage.exists(), "{out}");
    still_usable(&b);
}

#[test]
fn check_repairs_a_layer_without_a_record_and_an_image_without_its_layer() {
    let b = Berth::with_busybox();
    // A layer a killed load committed but never registered.
    let stray = b.root().join("storage/layers").join("ab".repeat(32));
    tree(&stray, 3);
    fs::write(stray.join("size"), "12288").unwrap();
    let out = check_repair_clean(
        &b,
        &["--max", "0s"],
        &[&format!(
            "layer {}: in storage, but no image uses it",
            &"ab".repeat(6)
        )],
    );
    assert!(!stray.exists(), "{out}");

    // An image whose layer directory is gone.
    let tar = b.scratch().join("x.tar");
    fs::write(&tar, layer_tar(&[file("x", b"1")])).unwrap();
    let before = b.layer_dirs();
    b.ok(&["import", tar.to_str().unwrap(), "x:1"]);
    let new: Vec<String> = b
        .layer_dirs()
        .into_iter()
        .filter(|l| !before.contains(l))
        .collect();
    assert_eq!(new.len(), 1);
    fs::remove_dir_all(b.root().join("storage/layers").join(&new[0])).unwrap();
    let id = b.image_id("x:1");
    let short = &id["sha256:".len().."sha256:".len() + 12];
    check_repair_clean(&b, &[], &[&format!("image {short}: layer 1 (")]);
    assert!(!b.image_ids().contains(&id));
    still_usable(&b);
}

#[test]
fn check_repairs_an_image_in_use_only_with_force() {
    let b = Berth::with_busybox();
    let tar = b.scratch().join("y.tar");
    // A layer of its own (busybox's is shared with the store's busybox).
    fs::write(&tar, layer_tar(&[file("y", b"only in y")])).unwrap();
    b.ok(&["import", tar.to_str().unwrap(), "y:1"]);
    let id = b.image_id("y:1");
    let cid = b.ok(&["create", "y:1", "true"]).trim().to_owned();
    // Its layer's blob is lost (a config blob is no damage: the config
    // lives in the database, and built or committed images have none).
    let layer = b.diff_ids("y:1")[0].clone();
    let blob = b
        .root()
        .join("blobs/sha256")
        .join(&layer["sha256:".len()..]);
    fs::remove_file(&blob).unwrap();
    let (code, out) = check(&b, &["--repair"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("is missing: not repaired: "), "{out}");
    assert!(out.contains("--force"), "{out}");
    assert!(b.image_ids().contains(&id));
    check_repair_clean(&b, &["--force"], &["is missing"]);
    assert!(!b.image_ids().contains(&id));
    assert!(b.run(&["inspect", &cid]).status.code() != Some(0));
    still_usable(&b);
}

#[test]
fn check_finds_a_corrupt_blob_unless_quick() {
    let b = Berth::with_busybox();
    let tar = b.scratch().join("z.tar");
    fs::write(&tar, layer_tar(&[file("z", b"1")])).unwrap();
    b.ok(&["import", tar.to_str().unwrap(), "z:1"]);
    let layer_blob = b.diff_ids("z:1")[0]["sha256:".len()..].to_owned();
    fs::write(b.root().join("blobs/sha256").join(&layer_blob), b"rot").unwrap();
    assert_eq!(check(&b, &["--quick"]).0, 0);
    check_repair_clean(&b, &[], &["does not match its digest"]);
    still_usable(&b);
}

#[test]
fn check_repairs_a_container_without_storage_and_storage_without_a_container() {
    let b = Berth::with_busybox();
    let cid = b.ok(&["create", "busybox", "true"]).trim().to_owned();
    fs::remove_dir_all(b.root().join("storage/containers").join(&cid)).unwrap();
    // A killed `rm -f` the other way round, and a killed build's work area.
    let orphan = b.root().join("storage/containers").join("cd".repeat(32));
    tree(&orphan, 3);
    let ws = b.root().join("storage/containers").join(dead_name("build"));
    tree(&ws, 3);
    check_repair_clean(
        &b,
        &[],
        &[
            &format!("container {} (", &cid[..12]),
            "its storage is gone",
            "a container's storage without a container",
            "a build's work area whose build is gone",
        ],
    );
    assert!(b.ok(&["ps", "-aq"]).trim().is_empty());
    assert!(!orphan.exists() && !ws.exists());
    still_usable(&b);
}

#[test]
fn check_unmounts_a_mount_of_no_container() {
    let b = Berth::with_busybox();
    let orphan = b.root().join("storage/containers").join("ef".repeat(32));
    let merged = orphan.join("merged");
    fs::create_dir_all(&merged).unwrap();
    let st = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "tmpfs"])
        .arg(&merged)
        .status()
        .unwrap();
    assert!(st.success());
    check_repair_clean(
        &b,
        &[],
        &[
            "merged: mounted, but no container uses it",
            "a container's storage without a container",
        ],
    );
    assert!(mounts_mentioning(b.root()).is_empty());
    assert!(!orphan.exists());
    still_usable(&b);
}

#[test]
fn check_cleans_up_a_running_container_whose_monitor_is_gone() {
    let b = Berth::with_busybox();
    let cid = b
        .ok(&["run", "-d", "busybox", "sleep", "1000"])
        .trim()
        .to_owned();
    let mons = monitor_pids(b.root());
    assert_eq!(mons.len(), 1);
    // SAFETY: kill(2) with a plain pid and signal number.
    unsafe { libc::kill(mons[0], libc::SIGKILL) };
    wait_until(10, "monitor gone", || monitor_pids(b.root()).is_empty());
    check_repair_clean(
        &b,
        &[],
        &[&format!("container {}: ", &cid[..12]), "monitor"],
    );
    let state = b.ok(&["inspect", "-f", "{{.State.Status}}", &cid]);
    assert_eq!(state.trim(), "exited");
    b.ok(&["rm", &cid]);
    still_usable(&b);
}

/// The cgroup directories `berth` makes for container `id` (every v1 hierarchy,
/// or the one v2 tree).
fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    if root.join("cgroup.controllers").exists() {
        return vec![root.join(format!("berth-{id}"))];
    }
    fs::read_dir(root)
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path().join(format!("berth-{id}")))
        .collect()
}

#[test]
fn check_removes_the_cgroup_of_a_container_that_does_not_run() {
    let b = Berth::with_busybox();
    let cid = b.ok(&["create", "busybox", "true"]).trim().to_owned();
    // What a container killed with its monitor keeps.
    let dirs = cgroup_dirs(&cid);
    for d in &dirs {
        fs::create_dir(d).unwrap();
    }
    let out = check_repair_clean(&b, &[], &[&format!("cgroup /berth-{cid} left")]);
    for d in &dirs {
        assert!(!d.exists(), "{} left:\n{out}", d.display());
    }
    b.ok(&["rm", &cid]);
    still_usable(&b);
}

#[test]
fn check_releases_the_network_endpoint_of_a_container_that_is_gone() {
    let b = Berth::with_busybox();
    let net = format!("chk{}", std::process::id());
    b.ok(&["network", "create", &net]);
    let cid = b
        .ok(&["create", "--network", &net, "busybox", "true"])
        .trim()
        .to_owned();
    // A removal killed after the record went: its address is still leased.
    let db = rusqlite::Connection::open(b.root().join("berth.db")).unwrap();
    db.execute("DELETE FROM containers WHERE id = ?1", [&cid])
        .unwrap();
    drop(db);
    check_repair_clean(
        &b,
        &[],
        &[
            &format!("of container {}, which does not exist", &cid[..12]),
            "a container's storage without a container",
        ],
    );
    b.ok(&["network", "rm", &net]);
    still_usable(&b);
}
