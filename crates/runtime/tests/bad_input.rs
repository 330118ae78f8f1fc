//! Bad input: each case fails with a non-zero exit, one clear line on
//! stderr naming the field or file, and nothing left behind.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Ctr, Rt};
use serde_json::json;

/// Creates `c`, expects the failure, checks that the line contains every
/// `needle` and that nothing is left.
#[track_caller]
fn create_fails(rt: &Rt, c: &Ctr, needles: &[&str]) -> String {
    let out = rt.create(c, &[]);
    let line = out.fails_one_line();
    for n in needles {
        assert!(line.contains(n), "{n:?} not in {line:?}");
    }
    assert!(rt.status(&c.id).is_none(), "state exists after failure");
    c.assert_nothing_left();
    rt.assert_empty();
    line
}

#[test]
fn malformed_config_json() {
    let rt = Rt::new();
    let c = Ctr::sh(&rt, "true");
    let text = std::fs::read(c.bundle.config_path()).unwrap();
    std::fs::write(c.bundle.config_path(), &text[..text.len() / 2]).unwrap();
    create_fails(&rt, &c, &["config.json"]);
}

#[test]
fn missing_rootfs() {
    let rt = Rt::new();
    let c = Ctr::sh(&rt, "true");
    std::fs::remove_dir_all(c.rootfs()).unwrap();
    create_fails(&rt, &c, &["root.path", "rootfs"]);
}

#[test]
fn missing_config_json() {
    let rt = Rt::new();
    let c = Ctr::sh(&rt, "true");
    std::fs::remove_file(c.bundle.config_path()).unwrap();
    create_fails(&rt, &c, &["config.json"]);
}

#[test]
fn unknown_namespace_type() {
    let rt = Rt::new();
    let mut c = Ctr::sh(&rt, "true");
    let path = c.bundle.config_path();
    c.edit(|_| {});
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    v["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "foo"}));
    std::fs::write(&path, v.to_string()).unwrap();
    create_fails(&rt, &c, &["linux.namespaces", "foo"]);
}

#[test]
fn blkio_leaf_weight_unsupported() {
    let rt = Rt::new();
    let mut c = Ctr::sh(&rt, "true");
    c.edit_json(|v| v["linux"]["resources"]["blockIO"] = json!({"leafWeight": 500}));
    create_fails(&rt, &c, &["linux.resources.blockIO.leafWeight"]);
}

#[test]
fn net_cls_class_id_unsupported() {
    assert!(
        !std::path::Path::new("/sys/fs/cgroup/net_cls").exists(),
        "this host has net_cls: the case does not apply"
    );
    let rt = Rt::new();
    let mut c = Ctr::sh(&rt, "true");
    c.edit_json(|v| v["linux"]["resources"]["network"] = json!({"classID": 1048577}));
    create_fails(&rt, &c, &["linux.resources.network.classID"]);
}

#[test]
fn invalid_container_id() {
    let rt = Rt::new();
    let mut c = Ctr::sh(&rt, "true");
    c.id = "a/b".into();
    let line = create_fails(&rt, &c, &["a/b"]);
    assert!(line.contains("invalid container id"), "{line}");
    assert!(!rt.root().join("a").exists());
}

#[test]
fn duplicate_id() {
    let rt = Rt::new();
    let first = Ctr::new(&rt, &["sleep", "1000"]);
    rt.create(&first, &[]).ok();
    let pid = rt.pid(&first.id);
    let mut second = Ctr::sh(&rt, "true");
    second.id = first.id.clone();
    let out = rt.create(&second, &[]);
    let line = out.fails_one_line();
    assert!(line.contains("already exists"), "{line}");
    assert!(line.contains(&first.id), "{line}");
    // The second's cgroup was never made; the first is untouched.
    assert!(common::cgroup_dirs(&second.cgpath).is_empty());
    assert!(common::mounts_mentioning(second.bundle.path()).is_empty());
    let st = rt.state(&first.id);
    assert_eq!(st["status"], "created");
    assert_eq!(st["pid"], pid);
    assert!(!common::cgroup_dirs(&first.cgpath).is_empty());
    // Its Drop deletes the container of its ID (the first's): point it at
    // an ID that never existed so that only its bundle directory goes.
    second.id = format!("{}-never", first.id);
    drop(second);
    first.finish();
    rt.assert_empty();
}

#[test]
fn missing_program() {
    let rt = Rt::new();
    let c = Ctr::new(&rt, &["/nope"]);
    create_fails(&rt, &c, &["/nope"]);
    let c = Ctr::new(&rt, &["nope-not-in-path"]);
    create_fails(&rt, &c, &["nope-not-in-path"]);
}

#[test]
fn unknown_id_commands() {
    let rt = Rt::new();
    for args in [
        &["start", "ghost"][..],
        &["kill", "ghost", "KILL"],
        &["delete", "ghost"],
        &["state", "ghost"],
        &["pause", "ghost"],
        &["exec", "ghost", "true"],
    ] {
        let out = rt.out(args);
        let line = out.fails_one_line();
        assert!(
            line.contains("ghost") && line.contains("does not exist"),
            "{args:?}: {line}"
        );
    }
    rt.assert_empty();
}

#[test]
fn systemd_cgroup_refused() {
    let rt = Rt::new();
    let c = Ctr::sh(&rt, "true");
    let out = rt.create(&c, &["--systemd-cgroup"]);
    let line = out.fails_one_line();
    assert!(line.contains("--systemd-cgroup"), "{line}");
    c.assert_nothing_left();
    rt.assert_empty();

    let mut c = Ctr::sh(&rt, "true");
    c.edit_json(|v| v["linux"]["cgroupsPath"] = json!("system.slice:berth:abc"));
    create_fails(&rt, &c, &["linux.cgroupsPath"]);
}

#[test]
fn bad_signal_and_bad_status() {
    let rt = Rt::new();
    let c = Ctr::new(&rt, &["sleep", "1000"]);
    rt.create(&c, &[]).ok();
    let line = rt.out(&["kill", &c.id, "SIGNOPE"]).fails_one_line();
    assert!(line.contains("SIGNOPE"), "{line}");
    let line = rt.out(&["pause", &c.id]).fails_one_line();
    assert!(line.contains("created"), "{line}");
    assert_eq!(rt.state(&c.id)["status"], "created");
    c.finish();
    rt.assert_empty();
}

/// Masked or read-only paths without a mount namespace: refused in runc's
/// words (they would be mounted over the host's /proc and /sys).
#[test]
fn masked_paths_without_a_mount_namespace() {
    let rt = Rt::new();
    for field in ["maskedPaths", "readonlyPaths"] {
        let mut c = Ctr::sh(&rt, "true");
        c.edit_json(|v| {
            let ns = v["linux"]["namespaces"].as_array_mut().unwrap();
            ns.retain(|n| n["type"] != "mount");
            v["linux"]["maskedPaths"] = json!([]);
            v["linux"]["readonlyPaths"] = json!([]);
            v["linux"][field] = json!(["/proc/kcore"]);
        });
        create_fails(
            &rt,
            &c,
            &[
                &format!("linux.{field}"),
                "unable to restrict sys entries without a private MNT namespace",
            ],
        );
    }
}
