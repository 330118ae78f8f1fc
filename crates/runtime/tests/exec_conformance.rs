//! `exec` as containerd and the conformance suites drive it: `--process`
//! JSON with every field, `--cap`, `--ignore-paused`, `execCPUAffinity`,
//! refusals and exit statuses. Where the runtime spec is silent the
//! expected values are what runc 1.1 prints for the same bundle.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Ctr, Out, Rt};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// The value of `key:` in a /proc/PID/status dump.
fn field(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|| panic!("no {key} in {text:?}"))
}

/// A running `sleep` container with `caps` as its process capabilities.
fn running_with_caps(rt: &Rt, caps: Value, nnp: bool) -> Ctr {
    let mut c = Ctr::new(rt, &["sleep", "1000"]);
    c.edit_json(|v| {
        v["process"]["capabilities"] = caps;
        v["process"]["noNewPrivileges"] = json!(nnp);
    });
    rt.run_detached(&c).ok();
    c
}

/// Writes `process` as a process.json beside the bundle.
fn process_file(c: &Ctr, process: &Value) -> PathBuf {
    let p = c.bundle.path().join("process.json");
    std::fs::write(&p, serde_json::to_vec(process).unwrap()).unwrap();
    p
}

fn exec_process(rt: &Rt, c: &Ctr, p: &Path) -> Out {
    rt.out(&["exec", "--process", p.to_str().unwrap(), &c.id])
}

/// `--cap` adds to the bounding, effective and permitted sets, not to the
/// inheritable one, and to ambient only where the kernel allows (already
/// inheritable); runc prints exactly these masks.
#[test]
fn exec_cap_does_not_fill_the_inheritable_set() {
    let rt = Rt::new();
    let c = running_with_caps(
        &rt,
        json!({
            "bounding": ["CAP_KILL", "CAP_CHOWN", "CAP_SYSLOG"],
            "effective": [],
            "inheritable": ["CAP_CHOWN"],
            "permitted": ["CAP_KILL", "CAP_CHOWN"],
            "ambient": ["CAP_CHOWN"],
        }),
        false,
    );
    let out = rt.out(&[
        "exec",
        "--cap",
        "CAP_SYSLOG",
        &c.id,
        "cat",
        "/proc/self/status",
    ]);
    let text = out.ok();
    assert_eq!(field(text, "CapInh"), "0000000000000001", "{out:#?}");
    assert_eq!(field(text, "CapAmb"), "0000000000000001", "{out:#?}");
    assert_eq!(field(text, "CapBnd"), "0000000400000021", "{out:#?}");
    assert_eq!(field(text, "CapPrm"), "0000000400000021", "{out:#?}");
    assert_eq!(field(text, "CapEff"), "0000000400000021", "{out:#?}");
    c.finish();

    let c = running_with_caps(
        &rt,
        json!({"bounding": [], "effective": [], "inheritable": [], "permitted": [], "ambient": []}),
        false,
    );
    let out = rt.out(&[
        "exec",
        "--cap=CAP_KILL",
        "--cap=CAP_AUDIT_WRITE",
        &c.id,
        "cat",
        "/proc/self/status",
    ]);
    let text = out.ok();
    assert_eq!(field(text, "CapInh"), "0000000000000000", "{out:#?}");
    assert_eq!(field(text, "CapAmb"), "0000000000000000", "{out:#?}");
    assert_eq!(field(text, "CapBnd"), "0000000020000020", "{out:#?}");
    assert_eq!(field(text, "CapPrm"), "0000000020000020", "{out:#?}");
    assert_eq!(field(text, "CapEff"), "0000000020000020", "{out:#?}");
    c.finish();
    rt.assert_empty();
}

/// Every field of a process.json: args, env (exactly the file's), cwd,
/// user with additionalGids, capabilities with inheritable and ambient
/// sets, rlimits, noNewPrivileges; an apparmorProfile is ignored (this
/// runtime has no AppArmor, as `features` says). Values as runc's.
#[test]
fn exec_process_json_with_every_field() {
    let rt = Rt::new();
    let c = running_with_caps(
        &rt,
        json!({"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]}),
        false,
    );
    std::fs::create_dir_all(c.rootfs().join("work")).unwrap();
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let p = process_file(
        &c,
        &json!({
            "terminal": false,
            "args": ["sh", "-c", "id; echo \"foo=$FOO spec=$SPEC\"; pwd; ulimit -n; cat /proc/self/status"],
            "env": ["PATH=/bin", "FOO=bar"],
            "cwd": "/work",
            "user": {"uid": 1000, "gid": 1000, "additionalGids": [5, 6]},
            "capabilities": {
                "bounding": caps, "effective": caps, "permitted": caps,
                "inheritable": ["CAP_KILL"], "ambient": caps,
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 321, "soft": 123}],
            "noNewPrivileges": true,
            "apparmorProfile": "berth-test-profile",
        }),
    );
    let out = exec_process(&rt, &c, &p);
    let text = out.ok();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("uid=1000 gid=1000 groups=5") && lines[0].ends_with(",6"),
        "{out:#?}"
    );
    assert_eq!(lines[1], "foo=bar spec=", "{out:#?}");
    assert_eq!(lines[2], "/work", "{out:#?}");
    assert_eq!(lines[3], "123", "{out:#?}");
    // Not root: only the ambient capabilities (those also inheritable)
    // survive execve.
    assert_eq!(field(text, "CapInh"), "0000000000000020", "{out:#?}");
    assert_eq!(field(text, "CapAmb"), "0000000000000020", "{out:#?}");
    assert_eq!(field(text, "CapPrm"), "0000000000000020", "{out:#?}");
    assert_eq!(field(text, "CapEff"), "0000000000000020", "{out:#?}");
    assert_eq!(field(text, "CapBnd"), "0000000020000420", "{out:#?}");
    assert_eq!(field(text, "NoNewPrivs"), "1", "{out:#?}");
    c.finish();
    rt.assert_empty();
}

/// A process.json that leaves out capabilities, noNewPrivileges and rlimits
/// gets the container's (runc's exec does the same); it used to fail,
/// granting oci-spec's default set after dropping every bounding
/// capability.
#[test]
fn exec_process_json_without_capabilities_gets_the_containers() {
    let rt = Rt::new();
    let c = running_with_caps(
        &rt,
        json!({
            "bounding": ["CAP_KILL", "CAP_CHOWN", "CAP_SYSLOG"],
            "effective": [],
            "inheritable": ["CAP_CHOWN"],
            "permitted": ["CAP_KILL", "CAP_CHOWN"],
            "ambient": ["CAP_CHOWN"],
        }),
        true,
    );
    let p = process_file(
        &c,
        &json!({"args": ["cat", "/proc/self/status"], "cwd": "/", "env": ["PATH=/bin"],
                "user": {"uid": 0, "gid": 0}}),
    );
    let out = exec_process(&rt, &c, &p);
    let text = out.ok();
    assert_eq!(field(text, "CapInh"), "0000000000000001", "{out:#?}");
    assert_eq!(field(text, "CapAmb"), "0000000000000001", "{out:#?}");
    assert_eq!(field(text, "CapBnd"), "0000000400000021", "{out:#?}");
    assert_eq!(field(text, "NoNewPrivs"), "1", "{out:#?}");
    // An inheritable capability outside the bounding set: refused (runc
    // too), naming it.
    let p = process_file(
        &c,
        &json!({"args": ["true"], "cwd": "/", "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0},
                "capabilities": {"bounding": ["CAP_KILL"], "inheritable": ["CAP_SYS_ADMIN"]}}),
    );
    let out = exec_process(&rt, &c, &p);
    assert_eq!(out.code, Some(255), "{out:#?}");
    let line = out.fails_one_line();
    assert!(
        line.contains("inheritable") && line.contains("CAP_SYS_ADMIN"),
        "{line}"
    );
    c.finish();
    rt.assert_empty();
}

/// Exec into a paused container is refused unless --ignore-paused, into a
/// stopped one always: runc's words and its status, 255; so is a program
/// that cannot be run. The process's own status is passed on.
#[test]
fn exec_refusals_and_statuses() {
    let rt = Rt::new();
    let c = Ctr::new(&rt, &["sleep", "1000"]);
    rt.run_detached(&c).ok();
    let out = rt.out(&["exec", &c.id, "sh", "-c", "exit 7"]);
    assert_eq!(out.code, Some(7), "{out:#?}");
    let out = rt.out(&["exec", &c.id, "no-such-program"]);
    assert_eq!(out.code, Some(255), "{out:#?}");
    out.fails_one_line();

    rt.out(&["pause", &c.id]).ok();
    let out = rt.out(&["exec", &c.id, "true"]);
    assert_eq!(out.code, Some(255), "{out:#?}");
    let line = out.fails_one_line();
    assert!(
        line.ends_with("cannot exec in a paused container (use --ignore-paused to override)"),
        "{line}"
    );
    rt.out(&["resume", &c.id]).ok();

    rt.out(&["kill", &c.id, "KILL"]).ok();
    rt.wait_status(&c.id, "stopped");
    let out = rt.out(&["exec", &c.id, "true"]);
    assert_eq!(out.code, Some(255), "{out:#?}");
    let line = out.fails_one_line();
    assert!(
        line.ends_with("cannot exec in a stopped container"),
        "{line}"
    );
    c.finish();
    rt.assert_empty();
}

/// `exec --ignore-paused` (runc's): the process joins the frozen container
/// and runs once it is resumed.
#[test]
fn exec_ignore_paused_runs_once_resumed() {
    let rt = Rt::new();
    let c = Ctr::new(&rt, &["sleep", "1000"]);
    rt.run_detached(&c).ok();
    rt.out(&["pause", &c.id]).ok();
    let marker = c.rootfs().join("tmp/ran");
    let child = rt
        .cmd(&[
            "exec",
            "--ignore-paused",
            &c.id,
            "sh",
            "-c",
            "echo yes > /tmp/ran",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    assert_eq!(rt.status(&c.id).as_deref(), Some("paused"));
    assert!(!marker.exists(), "ran in a frozen container");
    rt.out(&["resume", &c.id]).ok();
    let out = Out::from_output(child.wait_with_output().unwrap());
    out.ok();
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "yes\n");
    c.finish();
    rt.assert_empty();
}

/// The number of CPUs this process may run on.
fn usable_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// `execCPUAffinity.final` is the exec'd process's affinity inside the
/// container's cgroup, from a process.json or from config.json's process
/// (the init ignores it); `initial` only applies while it moves there. A
/// list that is not one is refused, naming the field.
#[test]
fn exec_cpu_affinity() {
    if usable_cpus() < 2 {
        eprintln!("skipped: execCPUAffinity needs two CPUs to show");
        return;
    }
    let rt = Rt::new();
    let mut c = Ctr::new(&rt, &["sleep", "1000"]);
    c.edit_json(|v| {
        v["process"]["execCPUAffinity"] = json!({"initial": "0", "final": "1"});
    });
    rt.run_detached(&c).ok();
    let pid = rt.pid(&c.id);
    assert_ne!(common::proc_status(pid, "Cpus_allowed_list"), "1");
    let out = rt.out(&[
        "exec",
        &c.id,
        "grep",
        "Cpus_allowed_list",
        "/proc/self/status",
    ]);
    assert_eq!(out.ok().trim(), "Cpus_allowed_list:\t1", "{out:#?}");

    let process = |affinity: Value| {
        json!({"args": ["grep", "Cpus_allowed_list", "/proc/self/status"], "cwd": "/",
               "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}, "execCPUAffinity": affinity})
    };
    let p = process_file(&c, &process(json!({"initial": "1", "final": "0"})));
    let out = exec_process(&rt, &c, &p);
    assert_eq!(out.ok().trim(), "Cpus_allowed_list:\t0", "{out:#?}");
    // Only initial: the kernel decides after the move (the cgroup's CPUs).
    let p = process_file(&c, &process(json!({"initial": "1"})));
    exec_process(&rt, &c, &p).ok();
    let p = process_file(&c, &process(json!({"final": "1-0"})));
    let out = exec_process(&rt, &c, &p);
    assert_eq!(out.code, Some(255), "{out:#?}");
    let line = out.fails_one_line();
    assert!(line.contains("execCPUAffinity"), "{line}");
    c.finish();
    rt.assert_empty();
}

/// Environment merging: the container's env, then `--env` replacing a
/// variable of the same name or adding one (runc's order).
#[test]
fn exec_env_merging() {
    let rt = Rt::new();
    let mut c = Ctr::new(&rt, &["sleep", "1000"]);
    c.edit_json(|v| {
        v["process"]["env"] = json!(["PATH=/bin", "KEEP=kept", "OVER=spec"]);
    });
    rt.run_detached(&c).ok();
    let out = rt.out(&[
        "exec",
        "--env",
        "OVER=cli",
        "--env",
        "NEW=added",
        &c.id,
        "sh",
        "-c",
        "echo $KEEP $OVER $NEW",
    ]);
    assert_eq!(out.ok(), "kept cli added\n", "{out:#?}");
    c.finish();
    rt.assert_empty();
}

/// A process whose environment has no HOME gets one, as runc gives it: the
/// user's home in the container's /etc/passwd, else `/`; one given is kept.
#[test]
fn home_is_set_when_the_environment_has_none() {
    let rt = Rt::new();
    let mut c = Ctr::sh(&rt, "echo \"init=$HOME\"; sleep 1000");
    c.edit_json(|v| {
        v["process"]["env"] = json!(["PATH=/bin"]);
    });
    rt.run_detached(&c).ok();
    c.wait_output("init=/root");
    let out = rt.out(&["exec", &c.id, "sh", "-c", "echo $HOME"]);
    assert_eq!(out.ok(), "/root\n", "{out:#?}");
    let out = rt.out(&["exec", "--user", "4321", &c.id, "sh", "-c", "echo $HOME"]);
    assert_eq!(out.ok(), "/\n", "{out:#?}");
    let out = rt.out(&[
        "exec",
        "--env",
        "HOME=/mine",
        &c.id,
        "sh",
        "-c",
        "echo $HOME",
    ]);
    assert_eq!(out.ok(), "/mine\n", "{out:#?}");
    c.finish();
    rt.assert_empty();
}

/// A program the kernel will not execute (a bad format: found and
/// executable, so `create` accepts it): as runc 1.1, `start` and `exec`
/// succeed, the process says `exec PATH: exec format error` on its stderr
/// and exits 1 (Docker then shows exit code 1 and the line in the logs).
#[test]
fn a_program_of_a_bad_format_exits_1_with_runcs_message() {
    use std::os::unix::fs::PermissionsExt;
    let bad = |c: &Ctr| {
        let p = c.rootfs().join("bin/badformat");
        std::fs::write(&p, b"not a program\n\x00\x01").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    let want = "exec /bin/badformat: exec format error";
    let rt = Rt::new();
    // create + start.
    let c = Ctr::new(&rt, &["/bin/badformat"]);
    bad(&c);
    rt.create(&c, &[]).ok();
    rt.out(&["start", &c.id]).ok();
    assert!(
        common::poll(std::time::Duration::from_secs(20), || rt
            .status(&c.id)
            .as_deref()
            == Some("stopped")),
        "still {:?}",
        rt.status(&c.id)
    );
    assert_eq!(c.stderr().trim(), want);
    c.finish();
    // run: the program's status.
    let c = Ctr::new(&rt, &["/bin/badformat"]);
    bad(&c);
    let out = rt.run(&c);
    assert_eq!(out.code, Some(1), "{out:#?}");
    assert_eq!(out.stderr.trim(), want, "{out:#?}");
    c.finish();
    // exec: the same, and --detach succeeds.
    let c = Ctr::new(&rt, &["sleep", "1000"]);
    bad(&c);
    rt.run_detached(&c).ok();
    let out = rt.out(&["exec", &c.id, "/bin/badformat"]);
    assert_eq!(out.code, Some(1), "{out:#?}");
    assert_eq!(out.stderr.trim(), want, "{out:#?}");
    rt.out(&["exec", "--detach", &c.id, "/bin/badformat"]).ok();
    c.finish();
    rt.assert_empty();
}
