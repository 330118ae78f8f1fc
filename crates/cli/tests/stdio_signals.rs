//! What a container process starts with (issue 11, holes 1 and 5): never the
//! caller's terminal or session (its own session, no controlling terminal,
//! no descriptor of a terminal berth was given: berth copies the bytes
//! through pipes), stdin only with `-i`, and every signal at its default
//! disposition with an empty mask — in `run --rm` (berth's own process),
//! `run` under a monitor, `start -a`, `exec` (with and without -i/-d),
//! build RUN steps and health checks.
#![allow(clippy::unwrap_used)]

mod common;

use common::{describe, text, wait_until, Berth};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A static program that reports what a container could do to a terminal:
/// TIOCSTI on its descriptors 0-2 and on /dev/tty, whether they are
/// terminals, whether it leads its own session, and its tty_nr.
const PROBE_C: &str = r#"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
int main(void) {
    char c = '#';
    for (int fd = 0; fd < 3; fd++) {
        int r = ioctl(fd, TIOCSTI, &c);
        printf("sti%d=%s isatty%d=%d\n", fd, r == 0 ? "ok" : strerror(errno), fd, isatty(fd));
    }
    int t = open("/dev/tty", O_RDWR | O_NOCTTY);
    if (t < 0) {
        printf("devtty=%s\n", strerror(errno));
    } else {
        int r = ioctl(t, TIOCSTI, &c);
        printf("devtty=open sti=%s\n", r == 0 ? "ok" : strerror(errno));
    }
    printf("sid_is_self=%d\n", getsid(0) == getpid());
    char buf[1024] = {0};
    int s = open("/proc/self/stat", O_RDONLY);
    int n = s < 0 ? -1 : (int)read(s, buf, sizeof buf - 1);
    char *p = n > 0 ? strrchr(buf, ')') : NULL;
    int ppid = 0, pgrp = 0, sid = 0, tty = -1;
    char st;
    if (p) sscanf(p + 2, "%c %d %d %d %d", &st, &ppid, &pgrp, &sid, &tty);
    printf("tty_nr=%d\n", tty);
    fflush(stdout);
    return 0;
}
"#;

/// Compiles the probe (`cc -static`) into `dir` and returns its path.
fn probe(dir: &Path) -> PathBuf {
    let src = dir.join("probe.c");
    let bin = dir.join("probe");
    std::fs::write(&src, PROBE_C).unwrap();
    let out = Command::new("cc")
        .args(["-static", "-O", "-o"])
        .arg(&bin)
        .arg(&src)
        .output()
        .unwrap();
    assert!(out.status.success(), "cc: {}", text(&out.stderr));
    bin
}

/// Runs `berth ARGS` with a pty as its stdin, stdout, stderr and controlling
/// terminal (`script`, as a user's shell would), and returns what the
/// terminal showed, CRs removed. The terminal's input stays open (nothing
/// typed) until berth ends; a run that does not end in 60 s fails.
fn on_a_terminal(b: &Berth, args: &[&str]) -> String {
    typed_on_a_terminal(b, args, b"")
}

/// [`on_a_terminal`] with `typed` typed into the terminal at once.
fn typed_on_a_terminal(b: &Berth, args: &[&str], typed: &[u8]) -> String {
    let (status, out) = b.typed_on_a_terminal(args, typed);
    let out = text(&out).replace('\r', "");
    assert!(
        status.success(),
        "berth {args:?}: {status}; terminal:\n{out}"
    );
    out
}

/// Asserts the probe's report: nothing it holds is a terminal, TIOCSTI
/// fails everywhere, it has no controlling terminal and leads its own
/// session.
#[track_caller]
fn assert_isolated(what: &str, out: &str) {
    for fd in 0..3 {
        assert!(
            out.contains(&format!("isatty{fd}=0")),
            "{what}: fd {fd} is a terminal:\n{out}"
        );
        assert!(
            out.lines()
                .any(|l| l.starts_with(&format!("sti{fd}=")) && !l.contains("=ok")),
            "{what}: TIOCSTI on fd {fd} worked:\n{out}"
        );
    }
    assert!(
        out.contains("devtty=No such device or address"),
        "{what}: /dev/tty opens:\n{out}"
    );
    assert!(
        out.contains("sid_is_self=1"),
        "{what}: not its own session:\n{out}"
    );
    assert!(
        out.contains("tty_nr=0"),
        "{what}: has a controlling tty:\n{out}"
    );
}

/// Hole 1: a container never gets berth's terminal, in any path.
#[test]
fn containers_never_get_the_callers_terminal() {
    let b = Berth::with_busybox();
    let dir = b.scratch();
    let bin = probe(&dir);
    let vol = format!("{}:/probe:ro", bin.display());

    // The foreground fast path (the runtime in berth's process), without
    // and with -i (stdin then comes through a pipe), and privileged (TIOCSTI
    // on a terminal that is not one's own needs CAP_SYS_ADMIN, which it has:
    // only not holding one protects).
    for extra in [&[][..], &["-i"][..], &["--privileged"][..]] {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["-v", &vol, "busybox", "/probe"]);
        let out = on_a_terminal(&b, &args);
        assert_isolated(&format!("run --rm {extra:?}"), &out);
    }

    // Under a monitor: run (attached) and start -a.
    let out = on_a_terminal(
        &b,
        &["run", "--name", "mon", "-v", &vol, "busybox", "/probe"],
    );
    assert_isolated("run", &out);
    let out = on_a_terminal(&b, &["start", "-a", "mon"]);
    assert_isolated("start -a", &out);
    b.ok(&["rm", "mon"]);

    // exec, without and with -i.
    b.ok(&[
        "run", "-d", "--name", "box", "-v", &vol, "busybox", "sleep", "600",
    ]);
    for extra in [&[][..], &["-i"][..]] {
        let mut args = vec!["exec"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["box", "/probe"]);
        let out = on_a_terminal(&b, &args);
        assert_isolated(&format!("exec {extra:?}"), &out);
    }
    // exec -d: its report goes to a file in the container.
    on_a_terminal(
        &b,
        &["exec", "-d", "box", "sh", "-c", "/probe > /tmp/report"],
    );
    let mut report = String::new();
    wait_until(20, "exec -d's report", || {
        report = b.ok(&["exec", "box", "cat", "/tmp/report"]);
        report.contains("tty_nr=")
    });
    assert_isolated("exec -d", &report);
    b.ok(&["rm", "-f", "box"]);

    // -t: the container's own pty, in its own session, never berth's.
    let out = on_a_terminal(&b, &["run", "--rm", "-t", "-v", &vol, "busybox", "/probe"]);
    assert!(out.contains("sid_is_self=1"), "run -t:\n{out}");
    assert!(out.contains("isatty1=1"), "run -t:\n{out}");

    // -t without -i: what is typed does not reach the container (Docker
    // attaches no stdin); with -i it does.
    let read = |secs: &str| format!("read -t {secs} x; echo \"got:$x.\"");
    let out = typed_on_a_terminal(
        &b,
        &["run", "--rm", "-t", "busybox", "sh", "-c", &read("3")],
        b"typed\n",
    );
    assert!(out.contains("got:."), "run -t read the terminal:\n{out}");
    let out = typed_on_a_terminal(
        &b,
        &[
            "run",
            "--rm",
            "-t",
            "-i",
            "busybox",
            "sh",
            "-c",
            &read("60"),
        ],
        b"typed\n",
    );
    assert!(out.contains("got:typed."), "run -t -i:\n{out}");

    // A build's RUN step.
    let ctx = dir.join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::copy(&bin, ctx.join("probe")).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nCOPY probe /probe\nRUN /probe\n",
    )
    .unwrap();
    let out = on_a_terminal(&b, &["build", "-t", "probed", ctx.to_str().unwrap()]);
    assert_isolated("build RUN", &out);
    b.ok(&["rmi", "probed"]);
}

/// Runs `berth ARGS` with `input` on a pipe as stdin, 60 s at most.
fn with_input(b: &Berth, args: &[&str], input: &[u8]) -> Output {
    let out = b.run_stdin(args, input);
    assert!(out.status.success(), "{}", describe(args, &out));
    out
}

/// Hole 1: stdin reaches a container only with -i (Docker: /dev/null).
#[test]
fn stdin_only_with_i() {
    let b = Berth::with_busybox();
    let out = with_input(&b, &["run", "--rm", "busybox", "cat"], b"x\n");
    assert_eq!(text(&out.stdout), "", "run --rm without -i read stdin");
    let out = with_input(&b, &["run", "--rm", "-i", "busybox", "cat"], b"x\n");
    assert_eq!(text(&out.stdout), "x\n");
    let out = with_input(&b, &["run", "--name", "att", "busybox", "cat"], b"x\n");
    assert_eq!(text(&out.stdout), "", "run without -i read stdin");
    b.ok(&["rm", "att"]);
    b.ok(&["run", "-d", "--name", "box", "busybox", "sleep", "600"]);
    let out = with_input(&b, &["exec", "box", "cat"], b"x\n");
    assert_eq!(text(&out.stdout), "", "exec without -i read stdin");
    let out = with_input(&b, &["exec", "-i", "box", "cat"], b"x\n");
    assert_eq!(text(&out.stdout), "x\n");
    b.ok(&["rm", "-f", "box"]);
}

/// (A shell command never ends with the grep: busybox sh runs a last
/// simple command in its own process, keeping the SIGQUIT it ignores, as
/// it would under Docker.)
const CLEAN: &str = "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n";
const SIGS: [&str; 4] = ["grep", "-E", "^Sig(Ign|Blk)", "/proc/self/status"];

/// Hole 5: every container process starts with default dispositions and an
/// empty signal mask.
#[test]
fn container_processes_start_with_default_signals() {
    let b = Berth::with_busybox();
    let mut args = vec!["run", "--rm", "busybox"];
    args.extend_from_slice(&SIGS);
    assert_eq!(b.ok(&args), CLEAN, "run --rm");

    let mut args = vec!["run", "-d", "--name", "d1", "busybox"];
    args.extend_from_slice(&SIGS);
    b.ok(&args);
    b.ok(&["wait", "d1"]);
    let logs = b.run(&["logs", "d1"]);
    assert_eq!(text(&logs.stdout), CLEAN, "run -d");
    b.ok(&["rm", "d1"]);

    b.ok(&[
        "run",
        "-d",
        "--name",
        "box",
        "--health-cmd",
        "grep -E '^Sig(Ign|Blk)' /proc/self/status; true",
        "--health-interval",
        "200ms",
        "busybox",
        "sleep",
        "600",
    ]);
    let mut args = vec!["exec", "box"];
    args.extend_from_slice(&SIGS);
    assert_eq!(b.ok(&args), CLEAN, "exec");
    b.ok(&[
        "exec",
        "-d",
        "box",
        "sh",
        "-c",
        "grep -E '^Sig(Ign|Blk)' /proc/self/status > /tmp/sigs; true",
    ]);
    let mut sigs = String::new();
    wait_until(20, "exec -d's output", || {
        sigs = b.ok(&["exec", "box", "cat", "/tmp/sigs"]);
        !sigs.is_empty()
    });
    assert_eq!(sigs, CLEAN, "exec -d");
    let mut health = Value::Null;
    wait_until(20, "a health check's result", || {
        let v: Value = serde_json::from_str(&b.ok(&["inspect", "box"])).unwrap();
        health = v[0]["State"]["Health"]["Log"][0].clone();
        !health.is_null()
    });
    assert_eq!(health["Output"], CLEAN, "health check: {health}");
    b.ok(&["rm", "-f", "box"]);

    let ctx = b.scratch().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nRUN grep -E '^Sig(Ign|Blk)' /proc/self/status; true\n",
    )
    .unwrap();
    let out = b.ok(&["build", "-t", "sigs", ctx.to_str().unwrap()]);
    assert!(out.contains(CLEAN), "build RUN:\n{out}");
    b.ok(&["rmi", "sigs"]);

    // SIGPIPE ends a writer whose reader is gone, as on the host.
    let args = ["run", "--rm", "busybox", "sh", "-c", "yes | head -n1"];
    let mut child = b
        .cmd(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`yes | head -n1` never ended (SIGPIPE ignored)");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(text(&out.stdout), "y\n", "{}", describe(&args, &out));
    assert_eq!(text(&out.stderr), "", "{}", describe(&args, &out));
    assert!(out.status.success(), "{}", describe(&args, &out));
}

/// Hole 5, for runtimes that pass on what they inherit (runc, crun): berth
/// and the monitor start a `--runtime` program with default dispositions
/// and an empty mask, even when berth itself was started with signals
/// ignored (as a shell's background job is).
#[test]
fn runtime_programs_start_with_default_signals() {
    let b = Berth::with_busybox();
    let dir = b.scratch();
    let sigs = dir.join("sigs");
    let rt = dir.join("rt");
    std::fs::write(
        &rt,
        format!(
            "#!/bin/sh\ngrep -E '^Sig(Ign|Blk)' /proc/self/status >> {}\nexec {} \"$@\"\n",
            sigs.display(),
            common::runtime().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&rt, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let rt = rt.to_str().unwrap();
    // berth started with SIGINT and SIGQUIT ignored.
    let ignoring = |args: &[&str]| {
        let c = b.cmd(args);
        let berth = c.get_program().to_owned();
        let all: Vec<std::ffi::OsString> = c.get_args().map(|a| a.to_owned()).collect();
        let mut sh = Command::new("sh");
        sh.args(["-c", "trap '' INT QUIT; exec \"$@\"", "sh"])
            .arg(berth)
            .args(all);
        for (k, v) in c.get_envs() {
            match v {
                Some(v) => sh.env(k, v),
                None => sh.env_remove(k),
            };
        }
        let out = sh.stdin(Stdio::null()).output().unwrap();
        assert!(out.status.success(), "{}", describe(args, &out));
        text(&out.stdout)
    };
    ignoring(&["run", "--rm", "--runtime", rt, "busybox", "true"]);
    ignoring(&[
        "run",
        "-d",
        "--name",
        "box",
        "--runtime",
        rt,
        "busybox",
        "sleep",
        "600",
    ]);
    ignoring(&["exec", "box", "true"]);
    b.ok(&["rm", "-f", "box"]);
    let seen = std::fs::read_to_string(&sigs).unwrap();
    let bad: Vec<&str> = seen
        .lines()
        .filter(|l| !l.ends_with("\t0000000000000000"))
        .collect();
    assert!(
        seen.lines().count() >= 8 && bad.is_empty(),
        "runtime programs started with signals ignored or blocked:\n{seen}"
    );
}
