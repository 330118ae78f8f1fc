//! The Docker-compatible lifecycle of detached containers, each under its
//! `berth-monitor`: run -d, ps, logs, stop/kill/restart/wait, exec, top,
//! pause, rename, prune, attach (pipes and a real pty), restart policies,
//! --rm, the truth after a monitor is SIGKILLed or the machine "reboots",
//! 50 runs at once, and bad input. Every test leaves no container, mount or
//! monitor behind (checked when its store is dropped).
#![allow(clippy::unwrap_used)]

mod common;

use common::{describe, is_hex64, monitor_pids, process_alive, text, wait_until, Berth, BERTH};
use serde_json::Value;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// `run -d ARGS`: asserts a 64-hex ID on one line, returns it.
fn run_d(b: &Berth, args: &[&str]) -> String {
    let mut a = vec!["run", "-d"];
    a.extend_from_slice(args);
    let out = b.run(&a);
    assert!(out.status.success(), "{}", describe(&a, &out));
    let id = text(&out.stdout).trim().to_owned();
    assert!(is_hex64(&id), "run -d printed {id:?}");
    assert!(
        out.stderr.is_empty(),
        "run -d wrote to stderr: {}",
        describe(&a, &out)
    );
    id
}

/// The STATUS column of `ps -a` for the container named `name` (None if absent).
fn status(b: &Berth, name: &str) -> Option<String> {
    let out = b.ok(&["ps", "-a", "--format", "{{.Names}}|{{.Status}}"]);
    out.lines().find_map(|l| {
        let (n, s) = l.split_once('|')?;
        (n == name).then(|| s.to_owned())
    })
}

fn names(b: &Berth) -> Vec<String> {
    let mut v: Vec<String> = b
        .ok(&["ps", "-a", "--format", "{{.Names}}"])
        .lines()
        .map(str::to_owned)
        .collect();
    v.sort();
    v
}

/// `logs NAME`: (stdout, stderr).
fn logs(b: &Berth, args: &[&str]) -> (String, String) {
    let mut a = vec!["logs"];
    a.extend_from_slice(args);
    let out = b.run(&a);
    assert!(out.status.success(), "{}", describe(&a, &out));
    (text(&out.stdout), text(&out.stderr))
}

fn count(hay: &str, line: &str) -> usize {
    hay.lines().filter(|l| l.trim_end() == line).count()
}

fn wait_log_line(b: &Berth, name: &str, line: &str, times: usize) {
    wait_until(
        20,
        &format!("{times}x {line:?} in the logs of {name}"),
        || count(&logs(b, &[name]).0, line) >= times,
    );
}

fn inspect(b: &Berth, name: &str) -> Value {
    let out = b.ok(&["inspect", name]);
    let v: Value = serde_json::from_str(&out).unwrap();
    v[0].clone()
}

fn run_dir(b: &Berth, id: &str) -> PathBuf {
    b.root().join("run/containers").join(id)
}

fn read_pid(p: &std::path::Path) -> i32 {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .parse()
        .unwrap()
}

/// A child's output, killing it if it does not finish within `secs`.
fn output_within(mut child: Child, secs: u64, what: &str) -> Output {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{what} did not finish within {secs}s; stdout {:?} stderr {:?}",
                text(&out.stdout),
                text(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Reads `r` in a thread, sending what arrives.
fn reader(mut r: impl Read + Send + 'static) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if tx.send(buf[..n].to_vec()).is_err() {
                        return;
                    }
                }
            }
        }
    });
    rx
}

/// Collects from `rx` into `acc` until `needle` is in it.
fn read_until(rx: &mpsc::Receiver<Vec<u8>>, acc: &mut String, needle: &str, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !acc.contains(needle) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(b) => acc.push_str(&text(&b)),
            Err(_) => panic!("{needle:?} never arrived; got {acc:?}"),
        }
    }
}

// ------------------------------------------------------------------ 1

#[test]
fn run_detached_ps_and_logs() {
    let b = Berth::with_busybox();
    let id = run_d(
        &b,
        &[
            "--name",
            "web",
            "busybox",
            "sh",
            "-c",
            "echo one; echo err1 >&2; sleep 2; echo two; echo three; sleep 1; echo four",
        ],
    );
    // Follow from the start: it must end by itself when the container exits.
    let follow = b
        .cmd(&["logs", "-f", "web"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let table = b.ok(&["ps"]);
    let row = table
        .lines()
        .find(|l| l.ends_with(" web"))
        .unwrap_or_else(|| panic!("web missing from ps:\n{table}"));
    assert!(row.starts_with(&id[..12]), "{table}");
    assert!(row.contains(" Up "), "{table}");
    assert!(status(&b, "web").unwrap().starts_with("Up"));

    wait_log_line(&b, "web", "one", 1);
    let (out, err) = logs(&b, &["web"]);
    assert!(out.starts_with("one\n"), "stdout {out:?}");
    assert!(!out.contains("err1"), "stderr line on stdout: {out:?}");
    assert_eq!(err, "err1\n");

    let f = output_within(follow, 30, "logs -f");
    assert!(f.status.success(), "logs -f: {:?}", f);
    assert_eq!(text(&f.stdout), "one\ntwo\nthree\nfour\n");
    assert_eq!(text(&f.stderr), "err1\n");
    // logs -f returned because the container is down, not before.
    assert_eq!(
        status(&b, "web").unwrap().split(')').next(),
        Some("Exited (0")
    );
    assert_eq!(b.ok(&["wait", "web"]).trim(), "0");

    let (out, err) = logs(&b, &["--tail", "2", "web"]);
    assert_eq!(out, "three\nfour\n");
    assert_eq!(err, "");
    let (out, _) = logs(&b, &["-n", "0", "web"]);
    assert_eq!(out, "");

    let (out, err) = logs(&b, &["-t", "web"]);
    let mut stamps = Vec::new();
    for l in out.lines().chain(err.lines()) {
        let (ts, rest) = l.split_once(' ').unwrap_or_else(|| panic!("{l:?}"));
        assert!(
            ts.len() >= 20 && ts.as_bytes()[10] == b'T' && ts.ends_with('Z'),
            "not an RFC 3339 timestamp: {l:?}"
        );
        assert!(!rest.is_empty());
        stamps.push((ts.to_owned(), rest.to_owned()));
    }
    assert_eq!(stamps.len(), 5, "{out}{err}");
    let two = stamps.iter().find(|(_, r)| r == "two").unwrap().0.clone();
    let one = stamps.iter().find(|(_, r)| r == "one").unwrap().0.clone();
    assert!(two > one, "{one} !< {two}");

    // --since the exact time of "two" keeps it (Docker drops only earlier lines).
    let (out, err) = logs(&b, &["--since", &two, "web"]);
    assert_eq!(out, "two\nthree\nfour\n", "--since {two}");
    assert_eq!(err, "");
    let (out, err) = logs(&b, &["--since", "1h", "web"]);
    assert_eq!(out, "one\ntwo\nthree\nfour\n");
    assert_eq!(err, "err1\n");
    let (out, _) = logs(&b, &["--until", &one, "web"]);
    assert_eq!(out, "one\n", "--until {one}");
    let far = (std::time::SystemTime::now() + Duration::from_secs(3600))
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    let (out, err) = logs(&b, &["--since", &far, "web"]);
    assert_eq!((out.as_str(), err.as_str()), ("", ""));

    b.ok(&["rm", "web"]);
    assert!(status(&b, "web").is_none());
}

// ------------------------------------------------------------------ 2

#[test]
fn stop_kill_restart() {
    let b = Berth::with_busybox();
    // PID 1 that ignores SIGTERM: stop -t 1 must SIGKILL it.
    run_d(
        &b,
        &[
            "--name",
            "stubborn",
            "busybox",
            "sh",
            "-c",
            "trap '' TERM; echo ready; while true; do sleep 1; done",
        ],
    );
    // A PID 1 that exits 0 on SIGTERM.
    run_d(
        &b,
        &[
            "--name",
            "polite",
            "busybox",
            "sh",
            "-c",
            "trap 'echo got-term; exit 0' TERM; echo ready; while true; do sleep 0.1; done",
        ],
    );
    run_d(
        &b,
        &[
            "--name",
            "usr1",
            "busybox",
            "sh",
            "-c",
            "trap 'echo got-usr1' USR1; echo ready; while true; do sleep 0.1; done",
        ],
    );
    for n in ["stubborn", "polite", "usr1"] {
        wait_log_line(&b, n, "ready", 1);
    }

    // It ignores TERM: stop kills it once the timeout is over (137, below).
    assert_eq!(b.ok(&["stop", "-t", "1", "stubborn"]).trim(), "stubborn");
    let st = status(&b, "stubborn").unwrap();
    assert!(st.starts_with("Exited (137)"), "{st}");
    assert_eq!(b.ok(&["wait", "stubborn"]).trim(), "137");
    assert_eq!(inspect(&b, "stubborn")["State"]["ExitCode"], 137);

    let t = Instant::now();
    b.ok(&["stop", "polite"]);
    let took = t.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "stop of a polite container took {took:?}"
    );
    let st = status(&b, "polite").unwrap();
    assert!(st.starts_with("Exited (0)"), "{st}");
    assert_eq!(b.ok(&["wait", "polite"]).trim(), "0");
    assert_eq!(count(&logs(&b, &["polite"]).0, "got-term"), 1);

    assert_eq!(b.ok(&["kill", "-s", "USR1", "usr1"]).trim(), "usr1");
    wait_log_line(&b, "usr1", "got-usr1", 1);
    assert!(status(&b, "usr1").unwrap().starts_with("Up"));
    b.ok(&["kill", "-s", "SIGUSR1", "usr1"]);
    wait_log_line(&b, "usr1", "got-usr1", 2);
    assert!(status(&b, "usr1").unwrap().starts_with("Up"));
    // kill's default is SIGKILL.
    b.ok(&["kill", "usr1"]);
    assert_eq!(b.ok(&["wait", "usr1"]).trim(), "137");
    assert!(status(&b, "usr1").unwrap().starts_with("Exited (137)"));

    // restart: a second start of the same container (same ID, same log).
    let id = run_d(
        &b,
        &[
            "--name",
            "again",
            "busybox",
            "sh",
            "-c",
            "trap 'exit 0' TERM; echo started; while true; do sleep 0.1; done",
        ],
    );
    wait_log_line(&b, "again", "started", 1);
    let pid1 = inspect(&b, "again")["State"]["Pid"].as_i64().unwrap();
    assert_eq!(b.ok(&["restart", "-t", "5", "again"]).trim(), "again");
    wait_log_line(&b, "again", "started", 2);
    let st = status(&b, "again").unwrap();
    assert!(st.starts_with("Up"), "{st}");
    let i = inspect(&b, "again");
    assert_eq!(i["Id"], id.as_str());
    assert!(i["State"]["Running"].as_bool().unwrap());
    assert_ne!(i["State"]["Pid"].as_i64().unwrap(), pid1);
    // restart of a stopped container starts it.
    b.ok(&["stop", "again"]);
    b.ok(&["restart", "again"]);
    wait_log_line(&b, "again", "started", 3);
    assert!(status(&b, "again").unwrap().starts_with("Up"));
    b.ok(&["stop", "again"]);
    assert!(status(&b, "again").unwrap().starts_with("Exited (0)"));

    b.ok(&["rm", "stubborn", "polite", "usr1", "again"]);
}

/// Start of a running container and stop of a stopped one have nothing to
/// do (the engine's NotModified, Docker's 304): the CLI prints the name and
/// exits 0, as Docker's does.
#[test]
fn start_running_and_stop_stopped_succeed() {
    let b = Berth::with_busybox();
    run_d(&b, &["--name", "idle", "busybox", "sleep", "300"]);
    assert_eq!(b.ok(&["start", "idle"]).trim(), "idle");
    assert!(status(&b, "idle").unwrap().starts_with("Up"));
    assert_eq!(b.ok(&["stop", "-t", "1", "idle"]).trim(), "idle");
    assert_eq!(b.ok(&["stop", "idle"]).trim(), "idle");
    assert_eq!(b.ok(&["container", "stop", "idle"]).trim(), "idle");
    assert!(status(&b, "idle").unwrap().starts_with("Exited"));
    b.ok(&["rm", "idle"]);
}

// ------------------------------------------------------------------ 3

#[test]
fn exec_top_pause_rename_prune() {
    let b = Berth::with_busybox();
    let id = run_d(&b, &["--name", "ex", "busybox", "sleep", "300"]);

    let out = b.run(&["exec", "ex", "echo", "hello"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(text(&out.stdout), "hello\n");
    let out = b.run(&["exec", "ex", "sh", "-c", "echo to-err >&2; exit 7"]);
    assert_eq!(out.status.code(), Some(7), "{out:?}");
    assert_eq!(text(&out.stderr), "to-err\n");
    assert_eq!(
        b.ok(&["exec", "-e", "FOO=bar baz", "ex", "sh", "-c", "echo $FOO"]),
        "bar baz\n"
    );
    assert_eq!(b.ok(&["exec", "-w", "/tmp", "ex", "pwd"]), "/tmp\n");
    assert_eq!(b.ok(&["exec", "-u", "65534", "ex", "id", "-u"]), "65534\n");
    assert_eq!(b.ok(&["exec", "ex", "id", "-u"]), "0\n");
    // The exec'd process is in the container's pid namespace.
    assert_eq!(
        b.ok(&["exec", "ex", "cat", "/proc/1/cmdline"]),
        "sleep\u{0}300\u{0}"
    );
    // By ID prefix too.
    assert_eq!(b.ok(&["exec", &id[..8], "echo", "prefix"]), "prefix\n");

    // The detached process waits for a file this test makes only after
    // `exec -d` returned: if exec -d waited for it, it would never return
    // (it is killed after 60 s and the test fails), whatever the machine's
    // load.
    let child = b
        .cmd(&[
            "exec",
            "-d",
            "ex",
            "sh",
            "-c",
            "while [ ! -e /tmp/go ]; do sleep 0.1; done; echo detached > /tmp/d",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn berth exec -d");
    let out = output_within(child, 60, "exec -d (it waited for its process)");
    assert!(out.status.success(), "exec -d: {out:?}");
    b.ok(&["exec", "ex", "touch", "/tmp/go"]);
    wait_until(15, "the detached exec's file", || {
        b.run(&["exec", "ex", "cat", "/tmp/d"]).stdout == b"detached\n"
    });

    let top = b.ok(&["top", "ex"]);
    assert!(top.lines().count() >= 2, "{top}");
    assert!(
        top.lines().skip(1).any(|l| l.contains("sleep 300")),
        "top: {top}"
    );

    b.ok(&["pause", "ex"]);
    let st = status(&b, "ex").unwrap();
    assert!(st.starts_with("Up") && st.ends_with("(Paused)"), "{st}");
    assert_eq!(inspect(&b, "ex")["State"]["Status"], "paused");
    b.ok(&["unpause", "ex"]);
    let st = status(&b, "ex").unwrap();
    assert!(st.starts_with("Up") && !st.contains("Paused"), "{st}");
    assert_eq!(b.ok(&["exec", "ex", "echo", "thawed"]), "thawed\n");

    b.ok(&["rename", "ex", "ex2"]);
    assert_eq!(names(&b), vec!["ex2"]);
    assert_eq!(b.ok(&["exec", "ex2", "echo", "renamed"]), "renamed\n");
    let out = b.run(&["exec", "ex", "true"]);
    assert!(!out.status.success(), "exec into the old name: {out:?}");

    // prune removes the exited ones only.
    let done = run_d(&b, &["--name", "done", "busybox", "true"]);
    let failed = run_d(&b, &["--name", "failed", "busybox", "sh", "-c", "exit 3"]);
    assert_eq!(b.ok(&["wait", "done", "failed"]), "0\n3\n");
    b.ok(&["create", "--name", "fresh", "busybox", "true"]);
    let out = b.ok(&["container", "prune", "-f"]);
    assert!(out.contains(&done), "{out}");
    assert!(out.contains(&failed), "{out}");
    assert!(
        !out.contains(&id),
        "prune removed the running container: {out}"
    );
    assert!(out.contains("Total reclaimed space:"), "{out}");
    let left = names(&b);
    assert!(left.contains(&"ex2".to_owned()), "{left:?}");
    assert!(!left.contains(&"done".to_owned()), "{left:?}");
    assert!(!left.contains(&"failed".to_owned()), "{left:?}");
    assert!(status(&b, "ex2").unwrap().starts_with("Up"));

    b.ok(&["rm", "-f", "ex2"]);
    let _ = b.run(&["rm", "-f", "fresh"]);
}

// ------------------------------------------------------------------ 4

#[test]
fn attach_pipes_and_detach_keys() {
    let b = Berth::with_busybox();
    run_d(
        &b,
        &[
            "--name",
            "talker",
            "busybox",
            "sh",
            "-c",
            "i=0; while true; do echo tick$i; echo tock$i >&2; i=$((i+1)); sleep 0.2; done",
        ],
    );
    wait_log_line(&b, "talker", "tick1", 1);
    let mut att = b
        .cmd(&["attach", "--no-stdin", "talker"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out_rx = reader(att.stdout.take().unwrap());
    let err_rx = reader(att.stderr.take().unwrap());
    let (mut out, mut err) = (String::new(), String::new());
    // Only output from after the attach, stdout and stderr kept apart.
    read_until(&out_rx, &mut out, "\n", 10);
    read_until(&err_rx, &mut err, "\n", 10);
    read_until(&out_rx, &mut out, "tick", 10);
    assert!(!out.contains("tick0\n"), "{out:?}");
    assert!(!out.contains("tock"), "stderr on stdout: {out:?}");
    assert!(err.starts_with("tock"), "{err:?}");
    let _ = att.kill();
    let _ = att.wait();
    // The attacher going away leaves the container running.
    std::thread::sleep(Duration::from_millis(300));
    assert!(status(&b, "talker").unwrap().starts_with("Up"));
    b.ok(&["rm", "-f", "talker"]);

    // -i: input goes to the container's stdin.
    run_d(&b, &["-i", "--name", "catter", "busybox", "cat"]);
    let mut att = b
        .cmd(&["attach", "catter"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out_rx = reader(att.stdout.take().unwrap());
    let mut input = att.stdin.take().unwrap();
    // The attach is connected once output flows back; send until the echo comes.
    let mut out = String::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut k = 0;
    while !out.contains("hello-in") {
        assert!(Instant::now() < deadline, "no echo through attach: {out:?}");
        if k % 10 == 0 {
            input.write_all(b"hello-in\n").unwrap();
        }
        k += 1;
        if let Ok(b) = out_rx.recv_timeout(Duration::from_millis(100)) {
            out.push_str(&text(&b));
        }
    }
    wait_log_line(&b, "catter", "hello-in", 1);
    input.write_all(b"second-line\n").unwrap();
    read_until(&out_rx, &mut out, "second-line\n", 10);
    wait_log_line(&b, "catter", "second-line", 1);
    // ctrl-p ctrl-q detaches: attach exits 0, the container keeps running.
    input.write_all(&[0x10, 0x11]).unwrap();
    let o = output_within(att, 10, "attach after ctrl-p ctrl-q");
    assert!(o.status.success(), "{o:?}");
    drop(input);
    std::thread::sleep(Duration::from_millis(200));
    assert!(status(&b, "catter").unwrap().starts_with("Up"));
    // Attach again: the stdin still reaches cat.
    let mut att = b
        .cmd(&["attach", "catter"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = att.stdin.take().unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut k = 0;
    while count(&logs(&b, &["catter"]).0, "third-line") == 0 {
        assert!(Instant::now() < deadline, "second attach sends nothing");
        if k % 10 == 0 {
            input.write_all(b"third-line\n").unwrap();
        }
        k += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    input.write_all(&[0x10, 0x11]).unwrap();
    let o = output_within(att, 10, "second attach after ctrl-p ctrl-q");
    assert!(o.status.success(), "{o:?}");
    assert!(status(&b, "catter").unwrap().starts_with("Up"));
    b.ok(&["rm", "-f", "catter"]);
}

#[test]
fn attach_through_a_pty() {
    let b = Berth::with_busybox();
    run_d(&b, &["-t", "-i", "--name", "tty", "busybox", "sh"]);
    assert!(status(&b, "tty").unwrap().starts_with("Up"));
    let cmdline = format!("{BERTH} --root {} attach tty", b.root().to_str().unwrap());
    let mut script = Command::new("script")
        .args(["-qec", &cmdline, "/dev/null"])
        .env("BERTH_RUNTIME", common::runtime())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out_rx = reader(script.stdout.take().unwrap());
    let mut input = script.stdin.take().unwrap();
    // Typed into the terminal; sh runs it once attach relays it.
    input.write_all(b"echo h''i-from-pty; exit 5\n").unwrap();
    let mut out = String::new();
    read_until(&out_rx, &mut out, "hi-from-pty", 20);
    let deadline = Instant::now() + Duration::from_secs(20);
    let st = loop {
        if let Some(st) = script.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = script.kill();
            panic!("attach through script did not end; output {out:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(input);
    // attach returns the container's status; script -e passes it on.
    assert_eq!(st.code(), Some(5), "output {out:?}");
    assert_eq!(b.ok(&["wait", "tty"]).trim(), "5");
    let s = status(&b, "tty").unwrap();
    assert!(s.starts_with("Exited (5)"), "{s}");
    // The pty's output is in the log, with the tty's CRLF.
    let (log, _) = logs(&b, &["tty"]);
    assert!(log.contains("hi-from-pty\r\n"), "{log:?}");
    b.ok(&["rm", "tty"]);
}

// ------------------------------------------------------------------ 5

#[test]
fn restart_policies() {
    let b = Berth::with_busybox();
    run_d(
        &b,
        &[
            "--name",
            "flaky",
            "--restart",
            "on-failure:2",
            "busybox",
            "sh",
            "-c",
            "echo start; exit 1",
        ],
    );
    run_d(
        &b,
        &[
            "--name",
            "forever",
            "--restart",
            "always",
            "busybox",
            "sh",
            "-c",
            "echo start; sleep 0.2; exit 0",
        ],
    );
    assert_eq!(b.ok(&["wait", "flaky"]).trim(), "1");
    let st = status(&b, "flaky").unwrap();
    assert!(st.starts_with("Exited (1)"), "{st}");
    assert_eq!(count(&logs(&b, &["flaky"]).0, "start"), 3);
    assert_eq!(inspect(&b, "flaky")["RestartCount"], 2);
    // No fourth run comes later.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(count(&logs(&b, &["flaky"]).0, "start"), 3);
    assert!(status(&b, "flaky").unwrap().starts_with("Exited (1)"));

    wait_log_line(&b, "forever", "start", 3);
    assert!(status(&b, "forever").unwrap().starts_with("Up"));
    b.ok(&["stop", "-t", "2", "forever"]);
    let st = status(&b, "forever").unwrap();
    assert!(st.starts_with("Exited"), "{st}");
    let n = count(&logs(&b, &["forever"]).0, "start");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        count(&logs(&b, &["forever"]).0, "start"),
        n,
        "restarted after stop"
    );
    assert!(status(&b, "forever").unwrap().starts_with("Exited"));

    // A started-again always container restarts again (stop is not sticky).
    b.ok(&["start", "forever"]);
    wait_log_line(&b, "forever", "start", n + 2);
    b.ok(&["rm", "-f", "forever"]);
    b.ok(&["rm", "flaky"]);
}

// ------------------------------------------------------------------ 6

#[test]
fn run_detached_rm_removes_itself() {
    let b = Berth::with_busybox();
    let id = run_d(
        &b,
        &[
            "--rm",
            "--name",
            "gone",
            "busybox",
            "sh",
            "-c",
            "sleep 1; exit 3",
        ],
    );
    assert!(status(&b, "gone").unwrap().starts_with("Up"));
    // wait reports the status although the container removes itself.
    assert_eq!(b.ok(&["wait", "gone"]).trim(), "3");
    wait_until(20, "the --rm container to remove itself", || {
        status(&b, "gone").is_none()
    });
    let out = b.run(&["inspect", "gone"]);
    assert!(!out.status.success());
    for d in ["containers", "storage/containers", "run/containers"] {
        let p = b.root().join(d).join(&id);
        assert!(!p.exists(), "{} left", p.display());
    }
    // The name is free again.
    run_d(&b, &["--rm", "--name", "gone", "busybox", "true"]);
    wait_until(20, "the second --rm container to remove itself", || {
        status(&b, "gone").is_none()
    });
}

/// `wait` on an --rm container reports its exit code even when the
/// container and its exit file are gone before `wait` reads them (a slow
/// `wait` on a loaded machine: here one stopped by SIGSTOP).
#[test]
fn wait_reports_the_code_of_an_rm_container_removed_before_it_reads() {
    let b = Berth::with_busybox();
    run_d(
        &b,
        &[
            "--rm",
            "--name",
            "late",
            "busybox",
            "sh",
            "-c",
            "while [ ! -e /go ]; do sleep 0.1; done; exit 3",
        ],
    );
    let wait = b
        .cmd(&["wait", "late"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = wait.id();
    // Connected to the monitor's attach socket: blocked until it hangs up.
    wait_until(30, "wait to connect to the monitor", || {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|d| {
                d.flatten().any(|e| {
                    std::fs::read_link(e.path())
                        .is_ok_and(|l| l.to_string_lossy().starts_with("socket:"))
                })
            })
            .unwrap_or(false)
    });
    let stop = |sig: &str| {
        assert!(Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .unwrap()
            .success());
    };
    stop("-STOP");
    b.ok(&["exec", "late", "touch", "/go"]);
    wait_until(30, "the --rm container to remove itself", || {
        status(&b, "late").is_none()
    });
    stop("-CONT");
    let out = wait.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", describe(&["wait"], &out));
    assert_eq!(text(&out.stdout).trim(), "3");
}

/// With `--runroot` (the volatile state elsewhere than ROOT/run), a detached
/// container's exit and removal find the runtime's state there: nothing of it
/// (cgroups, monitor, state) is left by `rm -f` or by its own exit.
#[test]
fn a_runroot_is_passed_to_the_monitor_and_its_exit_command() {
    let b = Berth::with_busybox();
    let runroot = b.root().join("elsewhere");
    let rr = runroot.to_str().unwrap();
    // `run -d --network none busybox CMD...` on that runroot: the ID.
    let run_d_there = |cmd: &[&str]| {
        let mut a = vec!["--runroot", rr, "run", "-d", "--network", "none", "busybox"];
        a.extend_from_slice(cmd);
        b.ok(&a).trim().to_owned()
    };
    let id = run_d_there(&["sleep", "1000"]);
    assert!(runroot.join("runtime").join(&id).exists());
    assert!(!cgroup_dirs(&id).is_empty());
    b.ok(&["--runroot", rr, "rm", "-f", &id]);
    wait_until(10, "the cgroups to go", || cgroup_dirs(&id).is_empty());
    // The container's own exit: its monitor's `container cleanup`.
    let id = run_d_there(&["true"]);
    wait_until(20, "the exit's cleanup", || {
        !runroot.join("runtime").join(&id).exists()
    });
    wait_until(10, "the cgroups to go", || cgroup_dirs(&id).is_empty());
    b.ok(&["--runroot", rr, "rm", &id]);
}

// ------------------------------------------------------------------ 7

#[test]
fn killed_monitor_keeps_the_truth() {
    let b = Berth::with_busybox();
    let id = run_d(
        &b,
        &[
            "--name",
            "orphan",
            "busybox",
            "sh",
            "-c",
            "trap 'touch /termed; exit 0' TERM; echo alive; while true; do sleep 0.1; done",
        ],
    );
    wait_log_line(&b, "orphan", "alive", 1);
    let mon = read_pid(&run_dir(&b, &id).join("monitor.pid"));
    assert_eq!(monitor_pids(b.root()), vec![mon]);
    let init = inspect(&b, "orphan")["State"]["Pid"].as_i64().unwrap() as i32;
    assert!(process_alive(init));
    // SAFETY: kill(2) of the monitor this test started.
    unsafe { libc::kill(mon, libc::SIGKILL) };
    wait_until(10, "the monitor to die", || !process_alive(mon));
    // The container does not depend on its monitor.
    for _ in 0..3 {
        let st = status(&b, "orphan").unwrap();
        assert!(st.starts_with("Up"), "{st}");
    }
    assert!(process_alive(init));
    assert_eq!(inspect(&b, "orphan")["State"]["Running"], true);
    assert_eq!(b.ok(&["exec", "orphan", "echo", "still"]), "still\n");
    b.ok(&["stop", "orphan"]);
    let st = status(&b, "orphan").unwrap();
    assert!(st.starts_with("Exited ("), "{st}");
    // Its TERM trap ran: stop signalled it, not only the kill after the timeout.
    assert!(b.ok(&["diff", "orphan"]).lines().any(|l| l == "A /termed"));
    wait_until(10, "the container's init to go", || !process_alive(init));
    assert!(common::mounts_mentioning(&b.root().join("storage")).is_empty());
    // And it starts again under a new monitor.
    b.ok(&["start", "orphan"]);
    wait_log_line(&b, "orphan", "alive", 2);
    assert!(status(&b, "orphan").unwrap().starts_with("Up"));
    b.ok(&["stop", "orphan"]);
    assert!(status(&b, "orphan").unwrap().starts_with("Exited (0)"));
    b.ok(&["rm", "orphan"]);
}

/// cgroup directories named `berth-ID` under /sys/fs/cgroup (any hierarchy).
fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    let name = format!("berth-{id}");
    let mut v = Vec::new();
    let top = PathBuf::from("/sys/fs/cgroup");
    let p = top.join(&name);
    if p.is_dir() {
        v.push(p);
    }
    for e in std::fs::read_dir(&top).into_iter().flatten().flatten() {
        let p = e.path().join(&name);
        if p.is_dir() {
            v.push(p);
        }
    }
    v
}

#[test]
fn reboot_keeps_the_writable_layer() {
    let b = Berth::with_busybox();
    let id = run_d(
        &b,
        &[
            "--name",
            "phoenix",
            "busybox",
            "sh",
            "-c",
            "if [ -f /data.txt ]; then echo found-$(cat /data.txt); \
             else echo first > /data.txt; echo wrote; fi; \
             trap 'exit 0' TERM; while true; do sleep 0.1; done",
        ],
    );
    wait_log_line(&b, "phoenix", "wrote", 1);
    let dir = run_dir(&b, &id);
    let mon = read_pid(&dir.join("monitor.pid"));
    let init = read_pid(&dir.join("pid"));
    assert_eq!(
        inspect(&b, "phoenix")["State"]["Pid"].as_i64(),
        Some(init as i64)
    );
    // The power goes: every process dies at once, ...
    for pid in [mon, init] {
        // SAFETY: kill(2) of processes this test started.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    wait_until(10, "monitor and init to die", || {
        !process_alive(mon) && !process_alive(init)
    });
    // ... mounts, cgroups and the volatile run directory are gone after boot.
    for m in common::mounts_mentioning(b.root()).iter().rev() {
        let c = std::ffi::CString::new(m.as_str()).unwrap();
        // SAFETY: a valid NUL-terminated path; MNT_DETACH only detaches it.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
    for cg in cgroup_dirs(&id) {
        wait_until(10, "the cgroup to empty", || {
            std::fs::remove_dir(&cg).is_ok() || !cg.exists()
        });
    }
    std::fs::remove_dir_all(b.root().join("run")).unwrap();

    let out = b.run(&["ps", "-a", "--format", "{{.Names}}|{{.Status}}"]);
    assert!(out.status.success(), "{out:?}");
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    let row = text(&out.stdout);
    assert!(row.starts_with("phoenix|Exited ("), "{row}");
    let out = b.run(&["ps"]);
    assert!(out.status.success() && out.stderr.is_empty(), "{out:?}");
    assert!(!text(&out.stdout).contains("phoenix"));
    let i = inspect(&b, "phoenix");
    assert_eq!(i["State"]["Running"], false);

    b.ok(&["start", "phoenix"]);
    wait_log_line(&b, "phoenix", "found-first", 1);
    assert!(status(&b, "phoenix").unwrap().starts_with("Up"));
    assert_eq!(b.ok(&["exec", "phoenix", "cat", "/data.txt"]), "first\n");
    b.ok(&["stop", "phoenix"]);
    assert!(status(&b, "phoenix").unwrap().starts_with("Exited (0)"));
    b.ok(&["rm", "phoenix"]);
    assert!(cgroup_dirs(&id).is_empty(), "{:?}", cgroup_dirs(&id));
}

// ------------------------------------------------------------------ 8

#[test]
fn fifty_detached_runs_at_once() {
    const N: usize = 50;
    let b = std::sync::Arc::new(Berth::with_busybox());
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let ps = {
        let b = b.clone();
        let done = done.clone();
        std::thread::spawn(move || {
            let mut runs = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                let out = b.run(&["ps", "-a"]);
                assert!(
                    out.status.success() && out.stderr.is_empty(),
                    "ps during the runs: {}",
                    describe(&["ps", "-a"], &out)
                );
                runs += 1;
            }
            runs
        })
    };
    let runs: Vec<_> = (0..N)
        .map(|_| {
            let b = b.clone();
            std::thread::spawn(move || b.run(&["run", "-d", "busybox", "sleep", "30"]))
        })
        .collect();
    let outs: Vec<Output> = runs.into_iter().map(|t| t.join().unwrap()).collect();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let ps_runs = ps.join().unwrap();
    let mut ids: Vec<String> = Vec::new();
    let mut failures = Vec::new();
    for o in &outs {
        if o.status.success() {
            ids.push(text(&o.stdout).trim().to_owned());
        } else {
            failures.push(describe(&["run", "-d", "busybox", "sleep", "30"], o));
        }
    }
    let cleanup: Vec<&str> = ids.iter().map(String::as_str).collect();
    let fail = |msg: String| {
        let mut a = vec!["rm", "-f"];
        a.extend(cleanup.iter().copied());
        let _ = b.run(&a);
        panic!("{msg}");
    };
    if !failures.is_empty() {
        fail(format!("{} runs failed: {}", failures.len(), failures[0]));
    }
    assert!(ps_runs >= 1);
    for id in &ids {
        if !is_hex64(id) {
            fail(format!("run -d printed {id:?}"));
        }
    }
    let mut uniq = ids.clone();
    uniq.sort();
    uniq.dedup();
    if uniq.len() != N {
        fail(format!("duplicate IDs: {ids:?}"));
    }
    let out = b.ok(&["ps", "--no-trunc", "--format", "{{.ID}} {{.Names}}"]);
    let mut seen_ids: Vec<&str> = Vec::new();
    let mut seen_names: Vec<&str> = Vec::new();
    for l in out.lines() {
        let (i, n) = l.split_once(' ').unwrap();
        seen_ids.push(i);
        seen_names.push(n);
    }
    seen_ids.sort();
    seen_names.sort();
    seen_names.dedup();
    if seen_ids != uniq.iter().map(String::as_str).collect::<Vec<_>>() || seen_names.len() != N {
        fail(format!(
            "ps does not show the {N} running containers:\n{out}"
        ));
    }
    assert_eq!(monitor_pids(b.root()).len(), N);
    let mut a = vec!["rm", "-f"];
    a.extend(cleanup.iter().copied());
    let out = b.run(&a);
    assert!(
        out.status.success(),
        "{}",
        describe(&["rm", "-f", "…"], &out)
    );
    assert_eq!(text(&out.stdout).lines().count(), N);
    assert_eq!(b.ok(&["ps", "-a", "-q"]), "");
}

// ------------------------------------------------------------------ 9

#[test]
fn bad_input() {
    let b = Berth::with_busybox();
    for (args, code) in [
        (vec!["start", "nosuch"], 1),
        (vec!["stop", "nosuch"], 1),
        (vec!["restart", "nosuch"], 1),
        (vec!["kill", "nosuch"], 1),
        (vec!["wait", "nosuch"], 1),
        (vec!["pause", "nosuch"], 1),
        (vec!["logs", "nosuch"], 1),
        (vec!["top", "nosuch"], 1),
        (vec!["rename", "nosuch", "other"], 1),
        (vec!["attach", "nosuch"], 1),
        (vec!["exec", "nosuch", "true"], 1),
    ] {
        let e = b.fails(&args, code);
        assert!(e.contains("nosuch"), "{args:?}: {e}");
        assert!(
            e.to_lowercase().contains("no such container"),
            "{args:?}: {e}"
        );
    }

    run_d(&b, &["--name", "stopped", "busybox", "true"]);
    assert_eq!(b.ok(&["wait", "stopped"]).trim(), "0");
    let e = b.fails(&["exec", "stopped", "true"], 1);
    assert!(e.contains("is not running"), "{e}");
    let e = b.fails(&["kill", "stopped"], 1);
    assert!(e.contains("is not running"), "{e}");
    let e = b.fails(&["kill", "-s", "USR1", "stopped"], 1);
    assert!(e.contains("is not running"), "{e}");
    let e = b.fails(&["attach", "stopped"], 1);
    assert!(e.contains("start it first"), "{e}");
    let e = b.fails(&["pause", "stopped"], 1);
    assert!(e.contains("is not running"), "{e}");
    // stop of a stopped container is fine, as in Docker.
    assert_eq!(b.ok(&["stop", "stopped"]).trim(), "stopped");

    run_d(&b, &["--name", "busy", "busybox", "sleep", "300"]);
    let e = b.fails(&["rename", "stopped", "busy"], 1);
    assert!(e.contains("busy") && e.contains("already in use"), "{e}");
    let e = b.fails(&["rename", "stopped", "bad name!"], 1);
    assert!(e.contains("bad name!"), "{e}");
    assert_eq!(names(&b), vec!["busy", "stopped"]);
    let e = b.fails(&["rm", "busy"], 1);
    assert!(e.contains("running"), "{e}");
    // Docker's exec says 126 for a missing program (its `run` says 127).
    let e = b.fails(&["exec", "busy", "nonexistent-cmd"], 126);
    assert!(e.contains("nonexistent-cmd"), "{e}");
    let e = b.fails(&["logs", "--tail", "x", "busy"], 1);
    assert!(e.contains("--tail"), "{e}");
    let e = b.fails(&["logs", "--since", "yesterday-ish", "busy"], 1);
    assert!(e.contains("yesterday-ish"), "{e}");
    assert!(status(&b, "busy").unwrap().starts_with("Up"));

    // --log-driver none: nothing to read, one error line.
    let out = b.run(&["run", "--help"]);
    if text(&out.stdout).contains("--log-driver") {
        let q = run_d(
            &b,
            &[
                "--log-driver",
                "none",
                "--name",
                "quiet",
                "busybox",
                "echo",
                "x",
            ],
        );
        assert_eq!(b.ok(&["wait", "quiet"]).trim(), "0");
        let e = b.fails(&["logs", "quiet"], 1);
        assert!(e.contains("does not support reading"), "{e}");
        let log = b
            .root()
            .join("containers")
            .join(&q)
            .join(format!("{q}-json.log"));
        assert!(
            !log.exists(),
            "{} written with --log-driver none",
            log.display()
        );
        b.ok(&["rm", "quiet"]);
    }
    b.ok(&["rm", "-f", "busy", "stopped"]);
}

#[test]
fn monitor_leftover_check_catches_a_leak() {
    // The store's drop check must see a live monitor of its root.
    let b = Berth::with_busybox();
    let id = run_d(&b, &["--name", "m1", "busybox", "sleep", "300"]);
    let mon = read_pid(&run_dir(&b, &id).join("monitor.pid"));
    assert_eq!(monitor_pids(b.root()), vec![mon]);
    b.ok(&["rm", "-f", "m1"]);
    wait_until(10, "the monitor to exit after rm -f", || {
        !process_alive(mon)
    });
    assert!(monitor_pids(b.root()).is_empty());
}

#[test]
fn attach_returns_the_status_and_paused_containers_stop() {
    let b = Berth::with_busybox();
    run_d(
        &b,
        &[
            "--name",
            "short",
            "busybox",
            "sh",
            "-c",
            "sleep 1; echo bye; echo bye-err >&2; exit 4",
        ],
    );
    let out = b.run(&["attach", "--no-stdin", "short"]);
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    assert_eq!(text(&out.stdout), "bye\n");
    assert_eq!(text(&out.stderr), "bye-err\n");
    assert!(status(&b, "short").unwrap().starts_with("Exited (4)"));
    // start -a: attached from the start, the container's status.
    let out = b.run(&["start", "-a", "short"]);
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    assert_eq!(text(&out.stdout), "bye\n");
    assert_eq!(count(&logs(&b, &["short"]).0, "bye"), 2);

    // A paused container still stops (thawed first) and is force-removed.
    run_d(&b, &["--name", "frozen", "busybox", "sleep", "300"]);
    b.ok(&["pause", "frozen"]);
    b.ok(&["stop", "-t", "1", "frozen"]);
    assert!(status(&b, "frozen").unwrap().starts_with("Exited (137)"));
    b.ok(&["start", "frozen"]);
    b.ok(&["pause", "frozen"]);
    let pid = inspect(&b, "frozen")["State"]["Pid"].as_i64().unwrap() as i32;
    b.ok(&["rm", "-f", "frozen"]);
    wait_until(10, "the paused container's init to die", || {
        !process_alive(pid)
    });
    b.ok(&["rm", "short"]);
}

#[test]
fn log_rotation() {
    let b = Berth::with_busybox();
    let id = run_d(
        &b,
        &[
            "--name",
            "chatty",
            "--log-opt",
            "max-size=2k",
            "--log-opt",
            "max-file=2",
            "busybox",
            "sh",
            "-c",
            "i=0; while [ $i -lt 300 ]; do echo line-$i; i=$((i+1)); done",
        ],
    );
    assert_eq!(b.ok(&["wait", "chatty"]).trim(), "0");
    let dir = b.root().join("containers").join(&id);
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("json.log"))
        .collect();
    files.sort();
    assert_eq!(
        files,
        vec![format!("{id}-json.log"), format!("{id}-json.log.1")]
    );
    for f in &files {
        let len = std::fs::metadata(dir.join(f)).unwrap().len();
        // A file is rotated once a write takes it past max-size.
        assert!(len <= 2048 + 100, "{f}: {len} bytes");
    }
    // What is left is the end of the output, whole lines, in order.
    let (out, _) = logs(&b, &["chatty"]);
    let nums: Vec<u32> = out
        .lines()
        .map(|l| l.strip_prefix("line-").unwrap().parse().unwrap())
        .collect();
    assert!(nums.len() > 20 && nums.len() < 300, "{} lines", nums.len());
    assert_eq!(*nums.last().unwrap(), 299);
    assert!(nums.windows(2).all(|w| w[1] == w[0] + 1), "{nums:?}");
    assert_eq!(
        logs(&b, &["--tail", "3", "chatty"]).0,
        "line-297\nline-298\nline-299\n"
    );
    b.ok(&["rm", "chatty"]);
}

/// A foreground `run` without `--rm` is Docker's: the container lives under
/// its monitor (so it has a log, and killing `berth` leaves it running),
/// `berth` relays its output and stdin (EOF included) and passes signals on.
#[test]
fn foreground_run_under_its_monitor() {
    let b = Berth::with_busybox();
    let out = b.run_stdin(
        &["run", "-i", "--name", "cat", "busybox", "cat"],
        b"line one\n",
    );
    assert!(out.status.success(), "{}", describe(&[], &out));
    assert_eq!(text(&out.stdout), "line one\n");
    assert_eq!(b.ok(&["logs", "cat"]), "line one\n");
    let out = b.run(&[
        "run",
        "--name",
        "both",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(text(&out.stdout), "out\n");
    assert_eq!(text(&out.stderr), "err\n");
    // A program that cannot run: 127/126 and one line, as with --rm.
    let e = b.fails(&["run", "--name", "bad", "busybox", "/etc/passwd"], 126);
    assert!(e.contains("/etc/passwd"), "{e}");
    // SIGTERM to berth reaches the container.
    let mut child = b
        .cmd(&[
            "run",
            "--name",
            "trap",
            "busybox",
            "sh",
            "-c",
            "trap 'exit 7' TERM; touch /tmp/trapped; sleep 100 & wait",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Once the trap is set (a TERM before it is discarded: the shell is
    // PID 1), berth, attached before the start, passes signals on.
    wait_until(20, "trap to be set", || {
        b.run(&["exec", "trap", "test", "-f", "/tmp/trapped"])
            .status
            .success()
    });
    // SAFETY: kill(2) of our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(child.wait().unwrap().code(), Some(7));
    // SIGKILL of berth: the container goes on.
    let mut child = b
        .cmd(&["run", "--name", "orphan", "busybox", "sleep", "100"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_until(10, "orphan to run", || {
        b.ok(&["ps", "--format", "{{.Names}}"]).contains("orphan")
    });
    child.kill().unwrap();
    child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let ps = b.ok(&["ps", "--format", "{{.Names}} {{.State}}"]);
    assert!(ps.contains("orphan running"), "{ps}");
    b.ok(&["rm", "-f", "cat", "both", "bad", "trap", "orphan"]);
    // The fast path (--rm) records its start and death too.
    b.ok(&["run", "--rm", "--name", "quick", "busybox", "true"]);
    let ev = b.ok(&[
        "events",
        "--since",
        "0",
        "--until",
        "0s",
        "--filter",
        "container=quick",
        "--format",
        "{{.Status}}",
    ]);
    let ev: Vec<&str> = ev.lines().collect();
    // (Docker's `run` attaches before it starts.)
    assert_eq!(
        ev,
        vec!["create", "attach", "start", "die", "destroy"],
        "{ev:?}"
    );
}

/// The runtime's compiled seccomp programs are found again by every start
/// of the same profile: the foreground run's (in berth) and the detached
/// runs' (berth-runtime re-executed from a sealed copy) share one entry.
#[test]
fn starts_of_one_profile_share_one_compiled_seccomp_program() {
    let b = Berth::with_busybox();
    b.ok(&["run", "--rm", "--network", "none", "busybox", "true"]);
    for name in ["s1", "s2"] {
        run_d(
            &b,
            &[
                "--name",
                name,
                "--network",
                "none",
                "busybox",
                "sleep",
                "100",
            ],
        );
    }
    let cache = b.root().join("run/runtime/@seccomp");
    let entries: Vec<_> = std::fs::read_dir(&cache).unwrap().flatten().collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    b.ok(&["rm", "-f", "s1", "s2"]);
}
