//! The container life cycle through the CLI: run, exit codes, signals,
//! create/start/state/kill/delete, pause/resume, list, ps, exec, update,
//! spec and features.
#![allow(clippy::unwrap_used)]

mod common;

use common::{poll, proc_status, v1_dir, Ctr, Rt};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use std::time::Duration;

#[test]
fn pid1_is_the_user_program() {
    let rt = Rt::new();
    let c = Ctr::sh(&rt, "echo pid=$$; tr '\\0' ' ' < /proc/1/cmdline; echo");
    let out = rt.run(&c);
    let stdout = out.ok();
    assert!(stdout.contains("pid=1\n"), "{out:#?}");
    assert!(
        stdout.contains("sh -c echo pid=$$;"),
        "/proc/1/cmdline is not the user program: {out:#?}"
    );
    c.finish();
    rt.assert_empty();
}

#[test]
fn exit_code_propagates() {
    let rt = Rt::new();
    let c = Ctr::sh(&rt, "exit 3");
    let out = rt.run(&c);
    assert_eq!(out.code, Some(3), "{out:#?}");
    c.finish();
    rt.assert_empty();
}

/// A process that kills itself with SIGKILL: `run` exits 128+9. In a pid
/// namespace the kernel ignores SIGKILL sent to PID 1 from inside, so this
/// spec shares the host's pid namespace.
#[test]
fn signal_death_gives_128_plus_n() {
    let rt = Rt::new();
    let mut c = Ctr::sh(&rt, "kill -9 $$; exit 5");
    c.edit(|s| {
        let mut linux = s.linux().clone().unwrap();
        let ns: Vec<_> = linux
            .namespaces()
            .clone()
            .unwrap()
            .into_iter()
            .filter(|n| n.typ() != oci_spec::runtime::LinuxNamespaceType::Pid)
            .collect();
        linux.set_namespaces(Some(ns));
        s.set_linux(Some(linux));
    });
    let out = rt.run(&c);
    assert_eq!(out.code, Some(137), "{out:#?}");
    c.finish();
    rt.assert_empty();
}

/// The container's init killed from the host (`kill ID KILL`) while `run`
/// waits: `run` exits 137.
#[test]
fn killed_init_gives_137() {
    let rt = Rt::new();
    let c = Ctr::sh(&rt, "echo ready; exec sleep 1000");
    let mut child = rt.spawn_run(&c);
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    assert_eq!(line, "ready\n");
    rt.out(&["kill", &c.id, "9"]).ok();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(137), "{out:?}");
    c.finish();
    rt.assert_empty();
}

#[test]
fn run_forwards_sigterm() {
    let rt = Rt::new();
    let c = Ctr::sh(
        &rt,
        "trap 'exit 42' TERM; echo ready; while :; do sleep 0.1; done",
    );
    let mut child = rt.spawn_run(&c);
    rt.wait_status(&c.id, "running");
    // The trap is set once "ready" is printed.
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    assert_eq!(line, "ready\n");
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(42),
        "stderr {:?}",
        String::from_utf8_lossy(&out.stderr)
    );
    c.finish();
    rt.assert_empty();
}

#[test]
fn create_start_kill_delete() {
    let rt = Rt::new();
    let c = Ctr::sh(&rt, "echo started; exec sleep 1000");
    rt.create(&c, &[]).ok();
    let st = rt.state(&c.id);
    assert_eq!(st["status"], "created", "{st}");
    assert_eq!(st["id"], c.id.as_str());
    let pid = rt.pid(&c.id);
    assert!(
        std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "init {pid} not alive"
    );
    assert_eq!(
        std::fs::canonicalize(st["bundle"].as_str().unwrap()).unwrap(),
        std::fs::canonicalize(c.bundle.path()).unwrap()
    );
    assert_eq!(c.stdout(), "", "the program ran before start");

    rt.out(&["start", &c.id]).ok();
    assert_eq!(rt.state(&c.id)["status"], "running");
    c.wait_output("started");
    assert_eq!(rt.pid(&c.id), pid, "the init pid changed at start");

    // A second start is refused.
    let again = rt.out(&["start", &c.id]);
    let line = again.fails_one_line();
    assert!(line.contains("running"), "{line}");

    rt.out(&["kill", &c.id, "KILL"]).ok();
    rt.wait_status(&c.id, "stopped");
    assert_eq!(rt.state(&c.id)["pid"], 0);

    rt.out(&["delete", &c.id]).ok();
    let gone = rt.out(&["state", &c.id]);
    let line = gone.fails_one_line();
    assert!(line.contains("does not exist"), "{line}");
    c.finish();
    rt.assert_empty();
}

#[test]
fn delete_running_needs_force() {
    let rt = Rt::new();
    let c = Ctr::new(&rt, &["sleep", "1000"]);
    rt.run_detached(&c).ok();
    assert_eq!(rt.state(&c.id)["status"], "running");
    let pid = rt.pid(&c.id);
    let line = rt.out(&["delete", &c.id]).fails_one_line();
    assert!(line.contains("is not stopped: running"), "{line}");
    assert_eq!(rt.state(&c.id)["status"], "running");
    rt.out(&["delete", "--force", &c.id]).ok();
    assert!(
        poll(Duration::from_secs(5), || !std::path::Path::new(&format!(
            "/proc/{pid}"
        ))
        .exists()
            || proc_status(pid, "State").starts_with('Z')),
        "init {pid} survived delete --force"
    );
    assert!(rt.status(&c.id).is_none());
    c.finish();
    rt.assert_empty();
}

#[test]
fn pause_and_resume() {
    let rt = Rt::new();
    let c = Ctr::new(&rt, &["sleep", "1000"]);
    rt.run_detached(&c).ok();
    let freezer = v1_dir("freezer", &c.cgpath).join("freezer.state");
    rt.out(&["pause", &c.id]).ok();
    assert_eq!(rt.state(&c.id)["status"], "paused");
    assert_eq!(std::fs::read_to_string(&freezer).unwrap().trim(), "FROZEN");
    // Pausing twice is refused.
    rt.out(&["pause", &c.id]).fails_one_line();
    rt.out(&["resume", &c.id]).ok();
    assert_eq!(rt.state(&c.id)["status"], "running");
    assert_eq!(std::fs::read_to_string(&freezer).unwrap().trim(), "THAWED");
    rt.out(&["resume", &c.id]).fails_one_line();
    // A paused container can be force-deleted.
    rt.out(&["pause", &c.id]).ok();
    rt.out(&["delete", "--force", &c.id]).ok();
    c.finish();
    rt.assert_empty();
}

#[test]
fn list_shows_the_container() {
    let rt = Rt::new();
    let c = Ctr::new(&rt, &["sleep", "1000"]);
    rt.run_detached(&c).ok();
    let pid = rt.pid(&c.id);

    let table = rt.out(&["list"]);
    let lines: Vec<&str> = table.ok().lines().collect();
    assert_eq!(lines.len(), 2, "{table:#?}");
    assert!(lines[0].starts_with("ID"), "{table:#?}");
    let cols: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(cols[0], c.id);
    assert_eq!(cols[1], pid.to_string());
    assert_eq!(cols[2], "running");

    let quiet = rt.out(&["list", "-q"]);
    assert_eq!(quiet.ok(), format!("{}\n", c.id));

    let json: Value = serde_json::from_str(rt.out(&["list", "--format", "json"]).ok()).unwrap();
    let arr = json.as_array().unwrap();
    assert_eq!(arr.len(), 1, "{json}");
    assert_eq!(arr[0]["id"], c.id.as_str());
    assert_eq!(arr[0]["pid"], pid);
    assert_eq!(arr[0]["status"], "running");
    c.finish();
    assert_eq!(rt.out(&["list", "-q"]).ok(), "");
    rt.assert_empty();
}

#[test]
fn ps_lists_the_init() {
    let rt = Rt::new();
    let c = Ctr::new(&rt, &["sleep", "1000"]);
    rt.run_detached(&c).ok();
    let pid = rt.pid(&c.id);
    let json: Value =
        serde_json::from_str(rt.out(&["ps", "--format", "json", &c.id]).ok()).unwrap();
    assert_eq!(json, serde_json::json!([pid]));
    c.finish();
    rt.assert_empty();
}

#[test]
fn exec_runs_inside_the_container() {
    let rt = Rt::new();
    let mut c = Ctr::new(&rt, &["sleep", "1000"]);
    c.edit(|s| {
        s.set_hostname(Some("exec-host".into()));
    });
    rt.run_detached(&c).ok();
    let init_pid = rt.pid(&c.id);

    let out = rt.out(&[
        "exec",
        &c.id,
        "sh",
        "-c",
        "hostname; tr '\\0' ' ' < /proc/1/cmdline; echo; echo self=$$",
    ]);
    let text = out.ok();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "exec-host", "{out:#?}");
    assert_eq!(lines[1].trim(), "sleep 1000", "{out:#?}");
    assert_ne!(lines[2], "self=1", "{out:#?}");
    // Same pid namespace as the init.
    let host_ns = common::ns_of(&init_pid.to_string(), "pid");
    assert_ne!(host_ns, common::ns_of("self", "pid"));

    let out = rt.out(&["exec", &c.id, "sh", "-c", "exit 7"]);
    assert_eq!(out.code, Some(7), "{out:#?}");

    // The exec'd process joins the container's cgroup.
    let mut child = rt
        .cmd(&[
            "exec",
            &c.id,
            "sh",
            "-c",
            "echo $$ > /tmp/execpid; exec sleep 1000",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let procs = v1_dir("pids", &c.cgpath).join("cgroup.procs");
    let memprocs = v1_dir("memory", &c.cgpath).join("cgroup.procs");
    let mut seen = String::new();
    let mut other = 0;
    let ok = poll(Duration::from_secs(10), || {
        seen = std::fs::read_to_string(&procs).unwrap_or_default();
        let pids: Vec<i32> = seen.lines().map(|l| l.parse().unwrap()).collect();
        match pids.iter().find(|p| **p != init_pid) {
            Some(p)
                if std::fs::read_to_string(format!("/proc/{p}/comm"))
                    .is_ok_and(|c| c.trim() == "sleep") =>
            {
                other = *p;
                true
            }
            _ => false,
        }
    });
    assert!(ok, "exec'd sleep not in {}: {seen:?}", procs.display());
    assert!(seen.lines().any(|l| l == init_pid.to_string()));
    assert!(std::fs::read_to_string(&memprocs)
        .unwrap()
        .lines()
        .any(|l| l == other.to_string()));
    kill(Pid::from_raw(other), Signal::SIGKILL).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(137));

    // exec into a stopped container is refused.
    rt.out(&["kill", &c.id, "KILL"]).ok();
    rt.wait_status(&c.id, "stopped");
    rt.out(&["exec", &c.id, "true"]).fails_one_line();
    c.finish();
    rt.assert_empty();
}

#[test]
fn update_pids_limit() {
    let rt = Rt::new();
    let c = Ctr::new(&rt, &["sleep", "1000"]);
    rt.run_detached(&c).ok();
    let max = v1_dir("pids", &c.cgpath).join("pids.max");
    rt.out(&["update", "--pids-limit", "17", &c.id]).ok();
    assert_eq!(std::fs::read_to_string(&max).unwrap().trim(), "17");
    rt.out(&["update", "--pids-limit", "33", &c.id]).ok();
    assert_eq!(std::fs::read_to_string(&max).unwrap().trim(), "33");
    c.finish();
    rt.assert_empty();
}

#[test]
fn spec_then_run() {
    let rt = Rt::new();
    let dir = tempfile::tempdir().unwrap();
    let out = common::Out::from_output(
        std::process::Command::new(common::BIN)
            .arg("spec")
            .current_dir(dir.path())
            .output()
            .unwrap(),
    );
    out.ok();
    let text = std::fs::read_to_string(dir.path().join("config.json")).unwrap();
    let mut spec: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(spec["root"]["path"], "rootfs");
    // Use that spec in a busybox bundle.
    let mut c = Ctr::sh(&rt, "true");
    let cgpath = c.cgpath.clone();
    spec["process"]["args"] = serde_json::json!(["sh", "-c", "echo from-spec"]);
    spec["process"]["terminal"] = Value::Bool(false);
    spec["linux"]["cgroupsPath"] = Value::String(cgpath);
    c.edit_json(|v| *v = spec);
    let out = rt.run(&c);
    assert_eq!(out.ok(), "from-spec\n");
    // Writing over an existing config.json is refused.
    let again = std::process::Command::new(common::BIN)
        .arg("spec")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!again.status.success());
    c.finish();
    rt.assert_empty();
}

#[test]
fn features_prints_json() {
    let out = std::process::Command::new(common::BIN)
        .arg("features")
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        v["ociVersionMax"]
            .as_str()
            .is_some_and(|s| s.starts_with("1.")),
        "{v}"
    );
    assert!(v["ociVersionMin"].is_string(), "{v}");
}
