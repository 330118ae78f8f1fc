//! `--trace` on run, create, start and exec (issue 17): every step of the
//! container's start, in order, from each process that takes part.

#![allow(clippy::unwrap_used)]

mod common;

use common::{text, Berth};
use serde_json::Value;
use std::path::Path;
use std::process::Output;

/// `berth ARGS` with TMPDIR in the test's scratch directory (where the
/// trace's events file lives while the command runs).
fn traced(b: &Berth, tmp: &Path, args: &[&str]) -> Output {
    let mut c = b.cmd(args);
    c.env("TMPDIR", tmp);
    c.output().unwrap()
}

fn tmp_dir(b: &Berth) -> std::path::PathBuf {
    let d = b.scratch().join("tmp");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The steps of a timeline on stderr, in order: (process, step) with the
/// step's indentation removed.
fn steps(stderr: &str) -> Vec<(String, String)> {
    stderr
        .lines()
        .skip_while(|l| !l.contains("AT(ms)"))
        .skip(1)
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            (cols.len() >= 5).then(|| (cols[2].to_owned(), cols[4..].join(" ")))
        })
        .collect()
}

fn position(steps: &[(String, String)], process: &str, step: &str) -> usize {
    steps
        .iter()
        .position(|(p, s)| p == process && s.starts_with(step))
        .unwrap_or_else(|| panic!("no step {process}/{step} in {steps:#?}"))
}

#[test]
fn run_prints_every_step_in_order_and_leaves_no_file() {
    let b = Berth::with_busybox();
    let tmp = tmp_dir(&b);
    let out = traced(
        &b,
        &tmp,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "--trace",
            "busybox",
            "echo",
            "hi",
        ],
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    // The container's output is untouched: the timeline goes to stderr.
    assert_eq!(text(&out.stdout), "hi\n");
    let s = steps(&err);
    let order = [
        ("berth", "image lookup"),
        ("berth", "writable layer and init layer"),
        ("berth", "mount overlay"),
        ("berth", "write the OCI bundle"),
        ("berth", "compile profile to BPF"),
        ("berth", "mkdir"),
        ("berth", "clone3"),
        ("init", "rootfs mounts, in spec order"),
        ("init", "mount proc on /proc type proc"),
        ("init", "pivot_root"),
        ("init", "masked and read-only paths"),
        ("init", "signals to SIG_DFL, empty mask"),
        ("init", "setrlimit"),
        ("init", "seccomp filter"),
        ("init", "execve /bin/echo"),
        ("berth", "container started"),
        ("berth", "remove the container (--rm)"),
    ];
    let at: Vec<usize> = order.iter().map(|(p, st)| position(&s, p, st)).collect();
    assert!(
        at.windows(2).all(|w| w[0] < w[1]),
        "out of order: {order:?} at {at:?}\n{err}"
    );
    // Details name what each step concerns.
    assert!(err.contains("lowerdir="), "{err}");
    assert!(err.contains("CLONE_NEWPID"), "{err}");
    assert!(err.contains("BPF instructions"), "{err}");
    // The header once, though the timeline comes in two parts (at the start
    // and at the end).
    assert_eq!(err.matches("AT(ms)").count(), 1, "{err}");
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
}

#[test]
fn trace_file_is_chrome_trace_json_with_a_track_per_process() {
    let b = Berth::with_busybox();
    let tmp = tmp_dir(&b);
    let file = b.scratch().join("trace.json");
    let arg = format!("--trace={}", file.display());
    let out = traced(&b, &tmp, &["run", "--rm", &arg, "busybox", "true"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // Nothing on stderr: the trace went to the file.
    assert_eq!(text(&out.stderr), "");
    let v: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let events = v["traceEvents"].as_array().unwrap();
    let names: Vec<String> = events
        .iter()
        .filter(|e| e["ph"] == "M" && e["name"] == "process_name")
        .map(|e| e["args"]["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        names.iter().any(|n| n.starts_with("berth (pid ")),
        "{names:?}"
    );
    assert!(
        names.iter().any(|n| n.starts_with("init (pid ")),
        "{names:?}"
    );
    // The init's pid is the host's, not 1 of its own pid namespace.
    assert!(!names.iter().any(|n| n == "init (pid 1)"), "{names:?}");
    let complete: Vec<&Value> = events.iter().filter(|e| e["ph"] == "X").collect();
    for name in [
        "mount overlay",
        "pivot_root",
        "clone3",
        "rtnetlink",
        "nft -f -",
    ] {
        assert!(
            complete.iter().any(|e| e["name"] == name),
            "no {name} in {complete:#?}"
        );
    }
    assert!(complete
        .iter()
        .all(|e| e["ts"].as_f64().unwrap() >= 0.0 && e["dur"].as_f64().unwrap() >= 0.0));
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
}

#[test]
fn create_start_and_exec_trace_their_own_steps() {
    let b = Berth::with_busybox();
    let tmp = tmp_dir(&b);
    let out = traced(
        &b,
        &tmp,
        &[
            "create",
            "--name",
            "tr",
            "--network",
            "none",
            "--trace",
            "busybox",
            "sleep",
            "60",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let s = steps(&text(&out.stderr));
    position(&s, "berth", "writable layer and init layer");
    let out = traced(&b, &tmp, &["start", "--trace", "tr"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(text(&out.stdout), "tr\n");
    // Started through the runtime program under the monitor.
    let s = steps(&err);
    let clone = position(&s, "runtime", "clone3");
    let exec = position(&s, "init", "execve /bin/sleep");
    assert!(clone < exec, "{err}");
    let out = traced(&b, &tmp, &["exec", "--trace", "tr", "echo", "inside"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(text(&out.stdout), "inside\n");
    let s = steps(&err);
    let join = position(&s, "exec", "setns");
    let exec = position(&s, "exec", "execve /bin/echo");
    assert!(join < exec, "{err}");
    b.ok(&["rm", "-f", "tr"]);
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
}

#[test]
fn a_restarted_container_writes_no_trace() {
    // The monitor passes --trace on to the first start only: a restart
    // must not make a trace file that no command reads.
    let b = Berth::with_busybox();
    let tmp = tmp_dir(&b);
    let out = traced(
        &b,
        &tmp,
        &[
            "run",
            "-d",
            "--name",
            "again",
            "--network",
            "none",
            "--restart",
            "always",
            "--trace",
            "busybox",
            "sh",
            "-c",
            "sleep 0.2; exit 3",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let n = b.inspect("again")["RestartCount"].as_u64().unwrap_or(0);
        if n >= 2 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no restarts");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    b.ok(&["rm", "-f", "again"]);
    let left: Vec<_> = std::fs::read_dir(&tmp).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn an_unwritable_trace_file_fails_before_anything_is_made() {
    let b = Berth::with_busybox();
    let tmp = tmp_dir(&b);
    let args = [
        "run",
        "--rm",
        "--trace=/nonexistent/dir/t.json",
        "busybox",
        "true",
    ];
    let out = traced(&b, &tmp, &args);
    let line = common::check_failure(&args, &out, 125);
    assert!(line.contains("--trace: /nonexistent/dir/t.json"), "{line}");
    assert_eq!(b.ok(&["ps", "-aq"]), "");
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
}

#[test]
fn without_trace_nothing_is_printed() {
    let b = Berth::with_busybox();
    let out = b.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "echo",
        "quiet",
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), "quiet\n");
    assert_eq!(text(&out.stderr), "");
}

/// `exec --trace`: the timeline is printed when the exec'd process has
/// started (here while it waits for a file only the test makes), not when
/// the command ends.
#[test]
fn exec_prints_its_timeline_when_its_process_starts() {
    use std::io::BufRead;
    let b = Berth::with_busybox();
    let tmp = tmp_dir(&b);
    b.ok(&["run", "-d", "--name", "tx", "busybox", "sleep", "1000"]);
    let mut child = b
        .cmd(&[
            "exec",
            "--trace",
            "tx",
            "sh",
            "-c",
            "while [ ! -e /go ]; do sleep 0.1; done",
        ])
        .env("TMPDIR", &tmp)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let execve = loop {
        match rx.recv_timeout(std::time::Duration::from_secs(60)) {
            Ok(l) => {
                let done = l.contains("container started");
                seen.push(l);
                if done {
                    break true;
                }
            }
            Err(_) => break false,
        }
    };
    // Still running: it ends only once /go exists.
    assert!(execve, "no start in the timeline while it runs: {seen:?}");
    assert!(seen
        .iter()
        .any(|l| l.contains("execve") && l.contains("/bin/sh")));
    assert!(child.try_wait().unwrap().is_none());
    b.ok(&["exec", "tx", "touch", "/go"]);
    assert!(child.wait().unwrap().success());
    b.ok(&["rm", "-f", "tx"]);
}
