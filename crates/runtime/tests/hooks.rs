//! OCI hooks: each kind runs at its point with the state JSON on stdin; a
//! failing prestart hook fails `create` and leaves nothing behind.
#![allow(clippy::unwrap_used)]

mod common;

use common::{poll, Ctr, Rt};
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

const PATH: &str = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";

/// A hook running `/bin/sh -c SCRIPT` with PATH set.
fn hook(script: &str) -> Value {
    json!({"path": "/bin/sh", "args": ["sh", "-c", script], "env": [PATH]})
}

/// A hook writing its stdin to `file`.
fn capture(file: &Path) -> Value {
    hook(&format!("cat > {}", file.display()))
}

fn read_json(p: &Path) -> Value {
    let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}: {text:?}", p.display()))
}

#[test]
fn all_hooks_run_with_state() {
    let rt = Rt::new();
    let out = tempfile::tempdir().unwrap();
    let o = out.path().to_owned();
    let mut c = Ctr::sh(
        &rt,
        "cat /tmp/sc.json > /dev/null && echo sc-seen; sleep 1000",
    );
    c.edit_json(|v| {
        v["hooks"] = json!({
            "prestart": [capture(&o.join("prestart.json"))],
            "createRuntime": [capture(&o.join("createRuntime.json"))],
            "createContainer": [capture(&o.join("createContainer.json"))],
            // Resolved and run inside the container: /bin/sh of the rootfs,
            // writing into the container's /tmp.
            "startContainer": [hook("cat > /tmp/sc.json; hostname > /tmp/sc.host")],
            "poststart": [capture(&o.join("poststart.json"))],
            "poststop": [capture(&o.join("poststop.json"))],
        });
        v["hostname"] = json!("hooked");
    });
    rt.create(&c, &[]).ok();
    let pid = rt.pid(&c.id);
    for name in ["prestart", "createRuntime", "createContainer"] {
        let s = read_json(&o.join(format!("{name}.json")));
        assert_eq!(s["id"], c.id.as_str(), "{name}: {s}");
        assert_eq!(s["pid"], pid, "{name}: {s}");
        assert_eq!(
            std::fs::canonicalize(s["bundle"].as_str().unwrap()).unwrap(),
            std::fs::canonicalize(c.bundle.path()).unwrap(),
            "{name}: {s}"
        );
    }
    assert!(!o.join("poststart.json").exists(), "poststart before start");
    assert!(
        !c.rootfs().join("tmp/sc.json").exists(),
        "startContainer before start"
    );

    rt.out(&["start", &c.id]).ok();
    c.wait_output("sc-seen");
    let sc = read_json(&c.rootfs().join("tmp/sc.json"));
    assert_eq!(sc["id"], c.id.as_str(), "{sc}");
    assert_eq!(sc["pid"], pid, "{sc}");
    // It ran in the container's uts namespace, after the hostname was set.
    assert_eq!(
        std::fs::read_to_string(c.rootfs().join("tmp/sc.host"))
            .unwrap()
            .trim(),
        "hooked"
    );
    let ps = read_json(&o.join("poststart.json"));
    assert_eq!(ps["id"], c.id.as_str(), "{ps}");
    assert_eq!(ps["pid"], pid, "{ps}");
    assert_eq!(ps["status"], "running", "{ps}");
    assert!(!o.join("poststop.json").exists(), "poststop while running");

    rt.out(&["kill", &c.id, "KILL"]).ok();
    rt.wait_status(&c.id, "stopped");
    rt.out(&["delete", &c.id]).ok();
    assert!(poll(Duration::from_secs(5), || o
        .join("poststop.json")
        .exists()));
    let stop = read_json(&o.join("poststop.json"));
    assert_eq!(stop["id"], c.id.as_str(), "{stop}");
    assert_eq!(stop["status"], "stopped", "{stop}");
    c.finish();
    rt.assert_empty();
}

#[test]
fn hooks_in_foreground_run() {
    let rt = Rt::new();
    let out = tempfile::tempdir().unwrap();
    let o = out.path().to_owned();
    let mut c = Ctr::sh(&rt, "echo body");
    c.edit_json(|v| {
        v["hooks"] = json!({
            "prestart": [hook(&format!("echo prestart >> {}", o.join("order").display()))],
            "poststart": [hook(&format!("echo poststart >> {}", o.join("order").display()))],
            "poststop": [hook(&format!("echo poststop >> {}", o.join("order").display()))],
        });
    });
    assert_eq!(rt.run(&c).ok(), "body\n");
    assert_eq!(
        std::fs::read_to_string(o.join("order")).unwrap(),
        "prestart\npoststart\npoststop\n"
    );
    c.finish();
    rt.assert_empty();
}

#[test]
fn failing_prestart_fails_create() {
    let rt = Rt::new();
    let out = tempfile::tempdir().unwrap();
    let mut c = Ctr::sh(&rt, "true");
    let later = out.path().join("createRuntime.json");
    c.edit_json(|v| {
        v["hooks"] = json!({
            "prestart": [hook("cat > /dev/null; exit 3")],
            "createRuntime": [capture(&later)],
        });
    });
    let res = rt.create(&c, &[]);
    let line = res.fails_one_line();
    assert!(line.contains("hook") && line.contains("/bin/sh"), "{line}");
    assert!(!later.exists(), "a hook ran after the failed one");
    assert!(rt.status(&c.id).is_none());
    c.assert_nothing_left();
    rt.assert_empty();
}

#[test]
fn failing_start_container_hook_fails_start() {
    let rt = Rt::new();
    let mut c = Ctr::sh(&rt, "echo must-not-run");
    c.edit_json(|v| {
        v["hooks"] = json!({"startContainer": [hook("exit 4")]});
    });
    rt.create(&c, &[]).ok();
    let line = rt.out(&["start", &c.id]).fails_one_line();
    assert!(line.contains("hook"), "{line}");
    assert!(!c.stdout().contains("must-not-run"));
    c.finish();
    rt.assert_empty();
}
