//! `berth-runtime features` (runtime spec, features.md and
//! features-linux.md) states what works, and only that: each claim is
//! checked against a container here.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Ctr, Rt};
use serde_json::{json, Value};

fn features() -> Value {
    let out = std::process::Command::new(common::BIN)
        .arg("features")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn features_name_every_hook_and_the_linux_sections() {
    let f = features();
    assert_eq!(
        strings(&f["hooks"]),
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop"
        ]
    );
    let linux = &f["linux"];
    for (section, key) in [
        ("cgroup", "v1"),
        ("cgroup", "v2"),
        ("cgroup", "systemd"),
        ("cgroup", "systemdUser"),
        ("cgroup", "rdma"),
        ("seccomp", "enabled"),
        ("apparmor", "enabled"),
        ("selinux", "enabled"),
        ("intelRdt", "enabled"),
        ("netDevices", "enabled"),
    ] {
        assert!(
            linux[section][key].is_boolean(),
            "linux.{section}.{key}: {f}"
        );
    }
    assert!(
        linux["mountExtensions"]["idmap"]["enabled"].is_boolean(),
        "{f}"
    );
    let known = strings(&linux["seccomp"]["knownFlags"]);
    for flag in strings(&linux["seccomp"]["supportedFlags"]) {
        assert!(known.contains(&flag), "{flag} supported but not known");
    }
}

/// A busybox `true` with a seccomp profile allowing everything but `acct`,
/// which gets `action`, with `flags`.
fn seccomp_ctr(rt: &Rt, action: &str, flags: &[String]) -> Ctr {
    let mut c = Ctr::sh(rt, "true");
    c.edit_json(|v| {
        v["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "flags": flags,
            "syscalls": [{"names": ["acct"], "action": action}],
        });
    });
    c
}

/// Every listed seccomp action is accepted (SCMP_ACT_NOTIFY given a
/// listener; without one it is refused), every supported flag works, and
/// an action that is not listed is refused.
#[test]
fn every_listed_seccomp_action_and_flag_works() {
    let f = features();
    let seccomp = &f["linux"]["seccomp"];
    let rt = Rt::new();
    let actions = strings(&seccomp["actions"]);
    for action in &actions {
        if action == "SCMP_ACT_NOTIFY" {
            // Works only with a listener (linux_features.rs
            // `seccomp_notify_reaches_the_listener`); without one, refused.
            let c = seccomp_ctr(&rt, action, &[]);
            let line = rt.run(&c).fails_one_line();
            assert!(line.contains("listenerPath"), "{line}");
            c.assert_nothing_left();
            continue;
        }
        let c = seccomp_ctr(&rt, action, &[]);
        let out = rt.run(&c);
        assert_eq!(out.code, Some(0), "{action}: {out:#?}");
        c.finish();
    }
    if !actions.iter().any(|a| a == "SCMP_ACT_NOTIFY") {
        let c = seccomp_ctr(&rt, "SCMP_ACT_NOTIFY", &[]);
        rt.run(&c).fails_one_line();
        c.assert_nothing_left();
    }
    for flag in strings(&seccomp["supportedFlags"]) {
        let c = seccomp_ctr(&rt, "SCMP_ACT_ERRNO", std::slice::from_ref(&flag));
        let out = rt.run(&c);
        assert_eq!(out.code, Some(0), "{flag}: {out:#?}");
        c.finish();
    }
    rt.assert_empty();
}

/// `mountExtensions.idmap.enabled` says whether an id-mapped mount works.
#[test]
fn idmap_mounts_as_features_says() {
    let f = features();
    let enabled = f["linux"]["mountExtensions"]["idmap"]["enabled"]
        .as_bool()
        .unwrap();
    let rt = Rt::new();
    let dir = tempfile::tempdir().unwrap();
    let mut c = Ctr::sh(&rt, "true");
    c.edit_json(|v| {
        v["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/mapped",
            "type": "bind",
            "source": dir.path(),
            "options": ["bind", "idmap"],
            "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
            "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
        }));
    });
    let out = rt.run(&c);
    if enabled {
        assert_eq!(out.code, Some(0), "{out:#?}");
        c.finish();
    } else {
        out.fails_one_line();
        c.assert_nothing_left();
    }
    rt.assert_empty();
}

/// What this host cannot show: checkpoint/restore needs CRIU, which
/// berth-runtime does not use. `features` says so with runc's annotation,
/// and `checkpoint`/`restore` (with runc's options) fail with one line
/// saying why, on stderr, instead of a usage text.
#[test]
fn checkpoint_and_restore_say_they_are_not_supported() {
    let f = features();
    assert_eq!(
        f["annotations"]["org.opencontainers.runc.checkpoint.enabled"],
        "false"
    );
    let rt = Rt::new();
    for cmd in ["checkpoint", "restore"] {
        let line = rt
            .out(&[
                cmd,
                "--image-path",
                "/nonexistent/ckpt",
                "--leave-running",
                "some-id",
            ])
            .fails_one_line();
        assert!(line.contains(&format!("{cmd} is not supported")), "{line}");
        assert!(line.contains("CRIU"), "{line}");
    }
}
