//! The life cycle as runc 1.1 behaves, case by case: `delete`, `kill`,
//! `start` and `state` on each status, their exit statuses and the error
//! lines tools match ("does not exist", "container not running", "is not
//! stopped"), errors on stderr as well as in `--log`, and the call sequence
//! of containerd's runc-v2 shim. Each expectation was checked against
//! /usr/sbin/runc on the same bundle.
#![allow(clippy::unwrap_used)]

mod common;

use common::{poll, Ctr, Out, Rt};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

/// Whether process `pid` is gone or a zombie.
fn dead(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

/// The error records of a `--log-format json` log.
fn json_errors(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["level"] == "error")
        .map(|v| {
            assert!(v["time"].is_string(), "{v}");
            v["msg"].as_str().unwrap().to_owned()
        })
        .collect()
}

#[test]
fn delete_of_an_unknown_id_fails_unless_forced() {
    let rt = Rt::new();
    let line = rt.out(&["delete", "nosuch"]).fails_one_line();
    assert!(line.contains("does not exist"), "{line}");
    rt.out(&["delete", "--force", "nosuch"]).ok();

    // A creation that died before writing its state: runc removes the
    // directory, and still says the container does not exist.
    std::fs::create_dir(rt.root().join("half")).unwrap();
    let line = rt.out(&["delete", "half"]).fails_one_line();
    assert!(line.contains("does not exist"), "{line}");
    assert!(!rt.root().join("half").exists());
    std::fs::create_dir(rt.root().join("half")).unwrap();
    rt.out(&["delete", "--force", "half"]).ok();
    rt.assert_empty();
}

#[test]
fn delete_in_each_state() {
    let rt = Rt::new();
    // created: delete kills the waiting init, without --force (as runc).
    let c = Ctr::new(&rt, &["sleep", "1000"]);
    rt.create(&c, &[]).ok();
    let pid = rt.pid(&c.id);
    rt.out(&["delete", &c.id]).ok();
    assert!(
        dead(pid),
        "init {pid} survived delete of a created container"
    );
    let line = rt.out(&["state", &c.id]).fails_one_line();
    assert!(line.contains("does not exist"), "{line}");
    c.finish();

    // running: refused without --force, in runc's words, and left running.
    let c = Ctr::new(&rt, &["sleep", "1000"]);
    rt.create(&c, &[]).ok();
    rt.out(&["start", &c.id]).ok();
    let line = rt.out(&["delete", &c.id]).fails_one_line();
    assert!(
        line.contains(&format!(
            "cannot delete container {} that is not stopped: running",
            c.id
        )),
        "{line}"
    );
    assert_eq!(rt.state(&c.id)["status"], "running");
    rt.out(&["delete", "--force", &c.id]).ok();
    assert!(rt.status(&c.id).is_none());
    c.finish();

    // paused: the same refusal; --force kills (thawing it) and deletes.
    let c = Ctr::new(&rt, &["sleep", "1000"]);
    rt.create(&c, &[]).ok();
    rt.out(&["start", &c.id]).ok();
    rt.out(&["pause", &c.id]).ok();
    let pid = rt.pid(&c.id);
    let line = rt.out(&["delete", &c.id]).fails_one_line();
    assert!(line.contains("that is not stopped: paused"), "{line}");
    rt.out(&["kill", &c.id, "TERM"]).ok();
    assert_eq!(rt.state(&c.id)["status"], "paused");
    rt.out(&["delete", "--force", &c.id]).ok();
    assert!(rt.status(&c.id).is_none());
    assert!(
        poll(Duration::from_secs(10), || dead(pid)),
        "init {pid} lives"
    );
    c.finish();

    // stopped: deleted without --force; state then says it does not exist.
    let c = Ctr::new(&rt, &["true"]);
    rt.create(&c, &[]).ok();
    rt.out(&["start", &c.id]).ok();
    rt.wait_status(&c.id, "stopped");
    assert_eq!(rt.state(&c.id)["pid"], 0);
    rt.out(&["delete", &c.id]).ok();
    let line = rt.out(&["state", &c.id]).fails_one_line();
    assert!(line.contains("does not exist"), "{line}");
    c.finish();
    rt.assert_empty();
}

#[test]
fn kill_errors_as_runc() {
    let rt = Rt::new();
    for args in [
        &["kill", "nosuch"][..],
        &["kill", "nosuch", "9"],
        &["kill", "--all", "nosuch", "9"],
    ] {
        let line = rt.out(args).fails_one_line();
        assert!(line.contains("does not exist"), "{args:?}: {line}");
    }
    let line = rt.out(&["kill", ""]).fails_one_line();
    assert!(line.contains("container id cannot be empty"), "{line}");

    // A stopped container: the init cannot be signalled ("container not
    // running", which containerd's shim recognises), but --all signals
    // whatever is left in its cgroup, which is nothing: success.
    let c = Ctr::new(&rt, &["true"]);
    rt.create(&c, &[]).ok();
    rt.out(&["start", &c.id]).ok();
    rt.wait_status(&c.id, "stopped");
    for sig in ["TERM", "9", "0"] {
        let line = rt.out(&["kill", &c.id, sig]).fails_one_line();
        assert!(line.contains("container not running"), "{sig}: {line}");
    }
    rt.out(&["kill", "--all", &c.id, "9"]).ok();
    rt.out(&["kill", "--all", &c.id, "TERM"]).ok();
    assert_eq!(rt.state(&c.id)["status"], "stopped");
    c.finish();
    rt.assert_empty();
}

#[test]
fn a_signal_without_effect_keeps_the_state() {
    let rt = Rt::new();
    let c = Ctr::new(&rt, &["sleep", "1000"]);
    rt.create(&c, &[]).ok();
    let pid = rt.pid(&c.id);
    // Signal 0 only checks that the process exists; SIGCONT does nothing to
    // a process that is not stopped.
    for sig in ["0", "CONT", "SIGCONT", "18"] {
        rt.out(&["kill", &c.id, sig]).ok();
        assert_eq!(rt.state(&c.id)["status"], "created", "after {sig}");
    }
    rt.out(&["kill", "--all", &c.id, "0"]).ok();
    assert_eq!(rt.state(&c.id)["status"], "created");
    rt.out(&["start", &c.id]).ok();
    rt.out(&["kill", &c.id, "0"]).ok();
    rt.out(&["kill", "--all", &c.id, "CONT"]).ok();
    assert_eq!(rt.state(&c.id)["status"], "running");
    assert_eq!(rt.pid(&c.id), pid);
    // KILL to the init of a created container stops it, as in runc.
    let c2 = Ctr::new(&rt, &["sleep", "1000"]);
    rt.create(&c2, &[]).ok();
    rt.out(&["kill", "--all", &c2.id, "KILL"]).ok();
    rt.wait_status(&c2.id, "stopped");
    rt.out(&["delete", &c2.id]).ok();
    c2.finish();
    c.finish();
    rt.assert_empty();
}

#[test]
fn start_twice_fails_as_runc() {
    let rt = Rt::new();
    let c = Ctr::new(&rt, &["sleep", "1000"]);
    rt.create(&c, &[]).ok();
    rt.out(&["start", &c.id]).ok();
    let line = rt.out(&["start", &c.id]).fails_one_line();
    assert!(
        line.contains("cannot start an already running container"),
        "{line}"
    );
    assert_eq!(rt.state(&c.id)["status"], "running");
    rt.out(&["kill", &c.id, "KILL"]).ok();
    rt.wait_status(&c.id, "stopped");
    let line = rt.out(&["start", &c.id]).fails_one_line();
    assert!(
        line.contains("cannot start a container that has stopped"),
        "{line}"
    );
    assert_eq!(rt.state(&c.id)["status"], "stopped");
    let line = rt.out(&["start", "nosuch"]).fails_one_line();
    assert!(line.contains("does not exist"), "{line}");
    c.finish();
    rt.assert_empty();
}

/// runc prints every error on stderr, and with `--log` also writes it there
/// (as JSON with `--log-format json`): containerd's shim puts the stderr
/// text in its error and matches it ("container not running", "does not
/// exist"), and reads the log for create/start.
#[test]
fn errors_go_to_stderr_and_to_the_log() {
    let rt = Rt::new();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.json");
    let l = log.to_str().unwrap();
    let out = rt.out(&["--log", l, "--log-format", "json", "kill", "nosuch", "9"]);
    let line = out.fails_one_line();
    assert!(line.contains("does not exist"), "{line}");
    let logged = json_errors(&log);
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert!(logged[0].contains("does not exist"), "{logged:?}");

    // Text logs hold runc's (logrus's) text line.
    let text = dir.path().join("log.txt");
    let out = rt.out(&["--log", text.to_str().unwrap(), "delete", "nosuch"]);
    assert!(out.fails_one_line().contains("does not exist"));
    let t = std::fs::read_to_string(&text).unwrap();
    assert!(
        t.starts_with("time=\"")
            && t.contains(" level=error msg=\"")
            && t.contains("does not exist"),
        "{t:?}"
    );
}

/// What containerd 1.6's runc-v2 shim runs to create, start, stop and remove
/// a container (CRI's StopContainer then RemoveContainer): create with a pid
/// file and a JSON log, start, SIGTERM to the init, wait for its exit, then
/// `kill --all ID 9` (which must succeed once the process is gone: the shim
/// and the pod would be stuck otherwise), delete; after which `state` says
/// the container does not exist.
#[test]
fn containerd_shim_sequence() {
    let rt = Rt::new();
    let c = Ctr::sh(
        &rt,
        "trap 'echo got-term; exit 0' TERM; echo up; while :; do sleep 0.1; done",
    );
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.json");
    let pid_file = dir.path().join("init.pid");
    let runtime = |args: &[&str]| -> Out {
        let mut a = vec!["--log", log.to_str().unwrap(), "--log-format", "json"];
        a.extend_from_slice(args);
        let stdout = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(c.out_file())
            .unwrap();
        let stderr = tempfile::NamedTempFile::new().unwrap();
        let status = rt
            .cmd(&a)
            .stdout(stdout)
            .stderr(stderr.reopen().unwrap())
            .status()
            .unwrap();
        Out {
            code: status.code(),
            stdout: String::new(),
            stderr: std::fs::read_to_string(stderr.path()).unwrap(),
        }
    };
    runtime(&[
        "create",
        "--bundle",
        c.bundle_path_str(),
        "--pid-file",
        pid_file.to_str().unwrap(),
        &c.id,
    ])
    .ok();
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(rt.pid(&c.id), pid);
    runtime(&["start", &c.id]).ok();
    c.wait_output("up");
    assert_eq!(rt.state(&c.id)["status"], "running");

    // Stop: SIGTERM to the init, no --all.
    runtime(&["kill", &c.id, "15"]).ok();
    c.wait_output("got-term");
    assert!(
        poll(Duration::from_secs(10), || dead(pid)),
        "init {pid} ignored SIGTERM"
    );
    rt.wait_status(&c.id, "stopped");

    // After the exit: a signal to the init is "container not running" on
    // stderr (the shim maps it to NotFound)...
    let out = runtime(&["kill", &c.id, "9"]);
    assert!(
        out.fails_one_line().contains("container not running"),
        "{out:#?}"
    );
    // ...and kill --all succeeds.
    runtime(&["kill", "--all", &c.id, "9"]).ok();
    runtime(&["delete", &c.id]).ok();
    let out = runtime(&["state", &c.id]);
    assert!(out.fails_one_line().contains("does not exist"), "{out:#?}");
    let logged = json_errors(&log);
    assert_eq!(logged.len(), 2, "{logged:?}");
    assert!(logged[0].contains("container not running"), "{logged:?}");
    assert!(logged[1].contains("does not exist"), "{logged:?}");
    c.finish();
    rt.assert_empty();
}

/// The caller's cgroup per hierarchy, from /proc/PID/cgroup: (controllers,
/// path) pairs, controllers as the file names them ("" for cgroup2).
fn cgroups_of(pid: &str) -> Vec<(String, String)> {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap()
        .lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
            Some((ctrls.to_owned(), path.to_owned()))
        })
        .collect()
}

/// Without `linux.cgroupsPath` runc 1.1 (cgroupfs driver) puts the container
/// in a cgroup named after its ID under the runtime's own cgroup, in every
/// hierarchy (a relative path: `<own>/<id>`), which tools that look a
/// container's cgroup up by ID rely on; delete removes it.
#[test]
fn default_cgroup_is_the_id_under_the_callers_cgroup() {
    let rt = Rt::new();
    let mut c = Ctr::new(&rt, &["sleep", "1000"]);
    c.edit_json(|v| {
        v["linux"].as_object_mut().unwrap().remove("cgroupsPath");
    });
    rt.create(&c, &[]).ok();
    let pid = rt.pid(&c.id).to_string();
    let mine = cgroups_of("self");
    let theirs = cgroups_of(&pid);
    assert_eq!(mine.len(), theirs.len(), "{mine:?} / {theirs:?}");
    let mut dirs = Vec::new();
    for ((ctrls, own), (ctrls2, path)) in mine.iter().zip(&theirs) {
        assert_eq!(ctrls, ctrls2);
        let want = format!("{}/{}", own.trim_end_matches('/'), c.id);
        assert_eq!(path, &want, "hierarchy {ctrls:?}: {theirs:?}");
        let mount = if ctrls.is_empty() {
            "unified".to_owned()
        } else {
            ctrls.trim_start_matches("name=").to_owned()
        };
        let base = Path::new("/sys/fs/cgroup");
        let dir = if base.join("cgroup.controllers").exists() {
            base.join(path.trim_start_matches('/'))
        } else {
            base.join(&mount).join(path.trim_start_matches('/'))
        };
        if dir.parent().is_some_and(|p| p.exists()) {
            assert!(dir.is_dir(), "{} missing", dir.display());
            dirs.push(dir);
        }
    }
    assert!(!dirs.is_empty());
    rt.out(&["start", &c.id]).ok();
    rt.out(&["kill", "--all", &c.id, "KILL"]).ok();
    rt.wait_status(&c.id, "stopped");
    rt.out(&["delete", &c.id]).ok();
    for d in &dirs {
        assert!(!d.exists(), "{} left behind", d.display());
    }
    c.finish();
    rt.assert_empty();
}

/// A terminating signal to a created container ends it, as in runc (whose
/// waiting init dies of it): the container is then stopped, and the user's
/// program never ran. Signals that do not terminate leave it created.
#[test]
fn sigterm_to_a_created_container_stops_it() {
    let rt = Rt::new();
    for sig in ["TERM", "SIGINT", "1"] {
        let c = Ctr::sh(&rt, "echo ran");
        rt.create(&c, &[]).ok();
        let pid = rt.pid(&c.id);
        rt.out(&["kill", &c.id, "WINCH"]).ok();
        assert_eq!(rt.state(&c.id)["status"], "created");
        rt.out(&["kill", &c.id, sig]).ok();
        assert!(
            poll(Duration::from_secs(10), || dead(pid)),
            "{sig}: init {pid} lives"
        );
        rt.wait_status(&c.id, "stopped");
        let line = rt.out(&["start", &c.id]).fails_one_line();
        assert!(
            line.contains("cannot start a container that has stopped"),
            "{line}"
        );
        rt.out(&["delete", &c.id]).ok();
        assert_eq!(c.stdout(), "", "the program ran");
        c.finish();
    }
    rt.assert_empty();
}

/// A container without its own pid namespace whose init exits while a child
/// lives on: `delete` of the stopped container kills what is left in its
/// cgroup and removes the cgroup, as runc does (the kernel only does that
/// for a pid namespace whose init dies).
#[test]
fn delete_kills_what_a_stopped_container_left_in_its_cgroup() {
    let rt = Rt::new();
    let mut c = Ctr::sh(&rt, "sleep 1000 & echo $! ; exit 0");
    c.edit_json(|v| {
        let ns = v["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "pid");
    });
    rt.create(&c, &[]).ok();
    rt.out(&["start", &c.id]).ok();
    let out = c.wait_output("\n");
    let orphan: i32 = out.trim().parse().unwrap();
    rt.wait_status(&c.id, "stopped");
    assert!(!dead(orphan), "the child {orphan} died with the init");
    rt.out(&["delete", &c.id]).ok();
    assert!(
        poll(Duration::from_secs(10), || dead(orphan)),
        "{orphan} survived delete"
    );
    c.finish();

    // The same at the end of a foreground `run`.
    let mut c = Ctr::sh(&rt, "sleep 1000 >/dev/null 2>&1 & echo $! ; exit 0");
    c.edit_json(|v| {
        let ns = v["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "pid");
    });
    let out = rt.run(&c);
    let orphan: i32 = out.ok().trim().parse().unwrap();
    assert!(
        poll(Duration::from_secs(10), || dead(orphan)),
        "{orphan} survived run"
    );
    c.finish();
    rt.assert_empty();
}
