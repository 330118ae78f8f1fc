//! OCI hooks: each kind runs at its point, in its namespaces, with the state
//! JSON on stdin (runtime spec, config.md "POSIX-platform Hooks" and
//! runtime.md "State"/"Lifecycle"); the failure rules of the lifecycle; what
//! runc does where the spec is silent (environment, working directory).
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

/// A hook running `/bin/sh -c SCRIPT` with no `env` of its own.
fn hook_no_env(script: &str) -> Value {
    json!({"path": "/bin/sh", "args": ["sh", "-c", script]})
}

/// A hook writing its stdin to `file`.
fn capture(file: &Path) -> Value {
    hook(&format!("cat > {}", file.display()))
}

/// A hook appending `word` to `file`, then exiting with `code`.
fn log_word(file: &Path, word: &str, code: i32) -> Value {
    hook(&format!(
        "echo {word} >> {}; echo {word}-complains >&2; exit {code}",
        file.display()
    ))
}

fn read_json(p: &Path) -> Value {
    let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}: {text:?}", p.display()))
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
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
        v["annotations"] = json!({"org.example.hooked": "yes"});
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
        // The environment is created: "created" (runtime.md, State), which
        // runtime-tools' validation expects of the prestart hook.
        assert_eq!(s["status"], "created", "{name}: {s}");
        // The pid as seen where the hook runs: the runtime's namespace, or
        // the container's (createContainer: pid 1 of its pid namespace).
        let want = if name == "createContainer" { 1 } else { pid };
        assert_eq!(s["pid"], want, "{name}: {s}");
        assert_eq!(
            s["annotations"],
            json!({"org.example.hooked": "yes"}),
            "{name}: {s}"
        );
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
    assert_eq!(sc["pid"], 1, "{sc}");
    assert_eq!(sc["status"], "created", "{sc}");
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
    assert_eq!(
        stop["annotations"],
        json!({"org.example.hooked": "yes"}),
        "{stop}"
    );
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

/// A failing prestart, createRuntime or createContainer hook fails
/// `create` with the hook's stderr in the one-line error; the container is
/// destroyed and its poststop hooks run (runtime.md, Lifecycle steps 3-5,
/// 12 and 13; runc does the same).
#[test]
fn failing_create_hooks_destroy_and_run_poststop() {
    for kind in ["prestart", "createRuntime", "createContainer"] {
        let rt = Rt::new();
        let out = tempfile::tempdir().unwrap();
        let log = out.path().join("log");
        let mut c = Ctr::sh(&rt, "echo must-not-run");
        c.edit_json(|v| {
            v["hooks"] = json!({
                kind: [log_word(&log, "failing", 3), log_word(&log, "after", 0)],
                "poststop": [log_word(&log, "poststop", 0)],
            });
        });
        let line = rt.create(&c, &[]).fails_one_line();
        assert!(line.contains(kind), "{kind}: {line}");
        assert!(line.contains("failing-complains"), "{kind}: {line}");
        assert_eq!(read(&log), "failing\npoststop\n", "{kind}");
        assert!(rt.status(&c.id).is_none(), "{kind}");
        assert!(!c.stdout().contains("must-not-run"), "{kind}");
        c.assert_nothing_left();
        rt.assert_empty();
    }
}

/// A failing poststart hook: `start` fails (exit 1, the hook named on
/// stderr), the later poststart hooks do not run, the container is stopped
/// and destroyed and its poststop hooks run (runtime.md, Lifecycle step 9).
#[test]
fn failing_poststart_stops_and_destroys_the_container() {
    let rt = Rt::new();
    let out = tempfile::tempdir().unwrap();
    let log = out.path().join("log");
    let mut c = Ctr::sh(&rt, "echo body; sleep 1000");
    c.edit_json(|v| {
        v["hooks"] = json!({
            "poststart": [log_word(&log, "one", 0), log_word(&log, "two", 1), log_word(&log, "three", 0)],
            "poststop": [log_word(&log, "poststop", 0)],
        });
    });
    rt.create(&c, &[]).ok();
    let pid = rt.pid(&c.id);
    let res = rt.out(&["start", &c.id]);
    assert_eq!(res.code, Some(1), "{res:#?}");
    let line = res.fails_one_line();
    assert!(
        line.contains("poststart") && line.contains("two-complains"),
        "{line}"
    );
    assert_eq!(read(&log), "one\ntwo\npoststop\n");
    assert!(rt.status(&c.id).is_none(), "the container is still there");
    assert!(
        poll(Duration::from_secs(10), || !Path::new(&format!(
            "/proc/{pid}"
        ))
        .exists()),
        "the init {pid} is still alive"
    );
    c.assert_nothing_left();
    rt.assert_empty();
}

/// The same in a foreground `run`: it fails instead of waiting.
#[test]
fn failing_poststart_fails_a_foreground_run() {
    let rt = Rt::new();
    let out = tempfile::tempdir().unwrap();
    let log = out.path().join("log");
    let mut c = Ctr::sh(&rt, "sleep 1000");
    c.edit_json(|v| {
        v["hooks"] = json!({
            "poststart": [log_word(&log, "poststart", 2)],
            "poststop": [log_word(&log, "poststop", 0)],
        });
    });
    let res = rt.run(&c);
    let line = res.fails_one_line();
    assert!(line.contains("poststart"), "{line}");
    assert_eq!(read(&log), "poststart\npoststop\n");
    c.assert_nothing_left();
    rt.assert_empty();
}

/// A failing poststop hook is a warning: `delete` succeeds and every
/// other poststop hook still runs (runtime.md, Lifecycle step 13).
#[test]
fn failing_poststop_is_a_warning_and_the_rest_run() {
    let rt = Rt::new();
    let out = tempfile::tempdir().unwrap();
    let log = out.path().join("log");
    let mut c = Ctr::sh(&rt, "true");
    c.edit_json(|v| {
        v["hooks"] = json!({
            "poststop": [log_word(&log, "one", 0), log_word(&log, "two", 1), log_word(&log, "three", 0)],
        });
    });
    rt.create(&c, &[]).ok();
    rt.out(&["start", &c.id]).ok();
    rt.wait_status(&c.id, "stopped");
    let res = rt.out(&["delete", &c.id]);
    assert_eq!(res.code, Some(0), "{res:#?}");
    assert!(
        res.stderr.contains("warning") && res.stderr.contains("two-complains"),
        "{res:#?}"
    );
    assert_eq!(read(&log), "one\ntwo\nthree\n");
    c.assert_nothing_left();
    rt.assert_empty();
}

/// A hook past its timeout fails `create`, and what it started dies with
/// it (it runs in a process group of its own).
#[test]
fn hook_timeout_fails_and_kills_what_the_hook_started() {
    let rt = Rt::new();
    let out = tempfile::tempdir().unwrap();
    let pidfile = out.path().join("pid");
    let mut c = Ctr::sh(&rt, "true");
    c.edit_json(|v| {
        let mut h = hook(&format!(
            "sleep 1000 & echo $! > {}; wait",
            pidfile.display()
        ));
        h["timeout"] = json!(1);
        v["hooks"] = json!({"createRuntime": [h]});
    });
    let line = rt.create(&c, &[]).fails_one_line();
    assert!(line.contains("timeout"), "{line}");
    let pid = read(&pidfile).trim().to_owned();
    assert!(!pid.is_empty());
    assert!(
        poll(Duration::from_secs(10), || {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map_or(true, |s| s.contains(") Z "))
        }),
        "the hook's child {pid} outlived the timeout"
    );
    c.assert_nothing_left();
    rt.assert_empty();
}

/// The hooks of the runtime namespace run in the runtime's namespaces even
/// when the container joins a pid namespace by path or has a time
/// namespace of its own (which the runtime enters for its children);
/// createContainer and startContainer run in the container's.
#[test]
fn hooks_run_in_their_namespaces() {
    if !Path::new("/proc/self/ns/time").exists() {
        eprintln!("skipped: no time namespaces on this kernel");
        return;
    }
    let rt = Rt::new();
    let out = tempfile::tempdir().unwrap();
    let o = out.path().to_owned();
    let ns = |file: &str| {
        format!(
            "for n in mnt pid net uts time; do echo $n $(readlink /proc/self/ns/$n); done > {file}"
        )
    };
    let mut c = Ctr::sh(&rt, "sleep 1000");
    c.edit_json(|v| {
        v["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "time"}));
        let mut hooks = serde_json::Map::new();
        for kind in [
            "prestart",
            "createRuntime",
            "createContainer",
            "poststart",
            "poststop",
        ] {
            hooks.insert(
                kind.into(),
                json!([hook(&ns(&o.join(kind).display().to_string()))]),
            );
        }
        hooks.insert(
            "startContainer".into(),
            json!([hook(&ns("/tmp/startContainer"))]),
        );
        v["hooks"] = Value::Object(hooks);
    });
    rt.create(&c, &[]).ok();
    rt.out(&["start", &c.id]).ok();
    let pid = rt.pid(&c.id).to_string();
    let host: String = ["mnt", "pid", "net", "uts", "time"]
        .iter()
        .map(|n| format!("{n} {}\n", common::ns_of("self", n)))
        .collect();
    let container: String = ["mnt", "pid", "net", "uts", "time"]
        .iter()
        .map(|n| format!("{n} {}\n", common::ns_of(&pid, n)))
        .collect();
    assert_ne!(host, container);
    rt.out(&["kill", &c.id, "KILL"]).ok();
    rt.wait_status(&c.id, "stopped");
    let sc = read(&c.rootfs().join("tmp/startContainer"));
    rt.out(&["delete", &c.id]).ok();
    for kind in ["prestart", "createRuntime", "poststart", "poststop"] {
        assert_eq!(read(&o.join(kind)), host, "{kind}");
    }
    assert_eq!(
        read(&o.join("createContainer")),
        container,
        "createContainer"
    );
    assert_eq!(sc, container, "startContainer");
    c.finish();
    rt.assert_empty();
}

/// A hook without `env`: the createContainer and startContainer hooks get
/// the container process's environment (runtime spec; runc), those of the
/// runtime namespace the runtime's (runc); and these run in the bundle
/// directory (runc). A hook with `env` gets exactly that.
#[test]
fn hook_environment_and_working_directory() {
    let rt = Rt::new();
    let out = tempfile::tempdir().unwrap();
    let o = out.path().to_owned();
    let mut c = Ctr::sh(&rt, "echo up; sleep 1000");
    let report = |file: String| {
        hook_no_env(&format!(
            "echo \"one=$ONE caller=$CALLER_VAR pwd=$(pwd)\" > {file}"
        ))
    };
    c.edit_json(|v| {
        v["process"]["env"]
            .as_array_mut()
            .unwrap()
            .push(json!("ONE=two"));
        v["hooks"] = json!({
            "prestart": [report(o.join("prestart").display().to_string())],
            "createContainer": [report(o.join("createContainer").display().to_string())],
            // Resolved in the container: its /bin/sh, its /tmp.
            "startContainer": [
                hook_no_env("test \"$ONE\" = two || exit 9; echo \"one=$ONE\" > /tmp/sc-env"),
                {"path": "/bin/sh", "args": ["sh", "-c", "test -z \"$ONE\" && test \"$HOOK_VAR\" = set || exit 9"],
                 "env": ["HOOK_VAR=set"]},
            ],
            "poststart": [report(o.join("poststart").display().to_string())],
        });
    });
    let status = rt
        .cmd(&["create", "--bundle", c.bundle_path_str(), &c.id])
        .env("CALLER_VAR", "from-caller")
        .current_dir("/")
        .stdout(std::fs::File::create(c.out_file()).unwrap())
        .stderr(std::fs::File::create(c.err_file()).unwrap())
        .status()
        .unwrap();
    assert!(status.success(), "{}", c.stderr());
    let res = rt
        .cmd(&["start", &c.id])
        .env("CALLER_VAR", "from-caller")
        .output()
        .unwrap();
    assert!(res.status.success(), "{res:?}");
    c.wait_output("up");
    let bundle = std::fs::canonicalize(c.bundle.path()).unwrap();
    let rootfs = std::fs::canonicalize(c.rootfs()).unwrap();
    assert_eq!(
        read(&o.join("prestart")).trim(),
        format!("one= caller=from-caller pwd={}", bundle.display())
    );
    assert_eq!(
        read(&o.join("poststart")).trim(),
        format!("one= caller=from-caller pwd={}", bundle.display())
    );
    assert_eq!(
        read(&o.join("createContainer")).trim(),
        format!("one=two caller= pwd={}", rootfs.display())
    );
    assert_eq!(read(&c.rootfs().join("tmp/sc-env")).trim(), "one=two");
    assert_eq!(rt.status(&c.id).as_deref(), Some("running"));
    c.finish();
    rt.assert_empty();
}

/// A failing startContainer hook ends the container before its program
/// runs, as runc 1.1 does: `start` has already succeeded (the hook runs
/// after the start signal), the reason is on the container's stderr and
/// its exit status is 1.
#[test]
fn failing_start_container_hook_ends_the_container() {
    let rt = Rt::new();
    let mut c = Ctr::sh(&rt, "echo must-not-run");
    c.edit_json(|v| {
        v["hooks"] = json!({"startContainer": [hook("exit 4")]});
    });
    rt.create(&c, &[]).ok();
    rt.out(&["start", &c.id]).ok();
    // `start` answers once the process is gone: a `delete` right after it
    // (youki's conformance `hooks` test) finds it stopped.
    assert_eq!(rt.status(&c.id).as_deref(), Some("stopped"));
    assert!(c.stderr().contains("hook"), "stderr: {:?}", c.stderr());
    assert!(!c.stdout().contains("must-not-run"));
    c.finish();
    rt.assert_empty();
    // `run`: the container's status is 1.
    let mut c = Ctr::sh(&rt, "echo must-not-run");
    c.edit_json(|v| {
        v["hooks"] = json!({"startContainer": [hook("exit 4")]});
    });
    let out = rt.run(&c);
    assert_eq!(out.code, Some(1), "{out:#?}");
    assert!(out.stderr.contains("hook"), "{out:#?}");
    assert!(!out.stdout.contains("must-not-run"), "{out:#?}");
    c.finish();
    rt.assert_empty();
}

/// A container joining another's pid namespace by path: its prestart and
/// poststop hooks are still born in the runtime's pid namespace.
#[test]
fn runtime_hooks_stay_in_the_runtime_pid_namespace() {
    let rt = Rt::new();
    let out = tempfile::tempdir().unwrap();
    let o = out.path().to_owned();
    let a = Ctr::new(&rt, &["sleep", "1000"]);
    rt.run_detached(&a).ok();
    let a_pid = rt.pid(&a.id).to_string();
    let mut b = Ctr::sh(&rt, "true");
    let ns = |file: &str| hook(&format!("readlink /proc/self/ns/pid > {file}"));
    b.edit_json(|v| {
        for n in v["linux"]["namespaces"].as_array_mut().unwrap() {
            if n["type"] == "pid" {
                n["path"] = json!(format!("/proc/{a_pid}/ns/pid"));
            }
        }
        v["hooks"] = json!({
            "prestart": [ns(&o.join("prestart").display().to_string())],
            "poststop": [ns(&o.join("poststop").display().to_string())],
        });
    });
    rt.run(&b).ok();
    let host = format!("{}\n", common::ns_of("self", "pid"));
    assert_ne!(host.trim(), common::ns_of(&a_pid, "pid"));
    assert_eq!(read(&o.join("prestart")), host);
    assert_eq!(read(&o.join("poststop")), host);
    b.finish();
    a.finish();
    rt.assert_empty();
}
