//! The engine's typed API for an API server, used directly (not through the
//! `berth` command): execs created, started with the caller's pipes or a pty,
//! and inspected by ID from a second engine (as a server's `GET /exec/ID/json`
//! in another process would); attach as a stream handle.
#![allow(clippy::unwrap_used)]

mod common;

use berth_engine::{
    Engine, EngineError, EngineOptions, ExecIo, ExecOptions, ExecProcess, ExecStartOptions,
    OutputStream,
};
use common::Berth;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::time::{Duration, Instant};

fn engine(b: &Berth) -> Engine {
    Engine::open(&EngineOptions {
        root: Some(b.root().to_path_buf()),
        run: None,
        storage_driver: None,
    })
    .unwrap()
}

fn exec_opts(cmd: &[&str]) -> ExecOptions {
    ExecOptions {
        cmd: cmd.iter().map(|s| s.to_string()).collect(),
        attach_stdout: true,
        attach_stderr: true,
        ..ExecOptions::default()
    }
}

fn pipe() -> (std::fs::File, OwnedFd) {
    let (r, w) = nix::unistd::pipe().unwrap();
    (std::fs::File::from(r), w)
}

/// `run -d --network none --name NAME FLAGS busybox sleep 1000`: a container to exec in.
fn sleeper(b: &Berth, name: &str, flags: &[&str]) {
    let mut a = vec!["run", "-d", "--network", "none", "--name", name];
    a.extend_from_slice(flags);
    a.extend_from_slice(&["busybox", "sleep", "1000"]);
    b.ok(&a);
}

/// Starts exec `id` on a pty of `size`: the process and the pty's master.
fn start_on_pty<'e>(
    e: &'e Engine,
    id: &str,
    size: Option<(u16, u16)>,
) -> (ExecProcess<'e>, std::fs::File) {
    let mut p = e
        .exec_start(
            id,
            ExecIo::Pty,
            &ExecStartOptions {
                detach: false,
                console_size: size,
                watch_detached: false,
            },
        )
        .unwrap();
    let master = std::fs::File::from(p.take_pty_master().expect("a pty master"));
    (p, master)
}

/// Reads the pty's master until `done` holds for what was read, or until the process has
/// ended and the slave is closed (EIO).
fn read_pty_until(master: &mut std::fs::File, done: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    while let Ok(n) = master.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        if done(&out) {
            break;
        }
    }
    out
}

/// Starts exec `id` with `stdin` and pipes for its output: the process and the read ends
/// of its stdout and stderr.
fn start_with_pipes<'e>(
    e: &'e Engine,
    id: &str,
    stdin: Option<OwnedFd>,
) -> (ExecProcess<'e>, std::fs::File, std::fs::File) {
    let (out_r, out_w) = pipe();
    let (err_r, err_w) = pipe();
    let p = e
        .exec_start(
            id,
            ExecIo::Streams {
                stdin,
                stdout: Some(out_w),
                stderr: Some(err_w),
            },
            &ExecStartOptions::default(),
        )
        .unwrap();
    (p, out_r, err_r)
}

fn read_all(mut f: std::fs::File) -> String {
    let mut s = String::new();
    f.read_to_string(&mut s).unwrap();
    s
}

/// Runs `cmd` in container `name` with pipes, waits, and returns the exit
/// code (or the start's error), the exec's ID and its stdout.
fn run_exec(e: &Engine, name: &str, cmd: &[&str]) -> (Result<i32, EngineError>, String, String) {
    let id = e.exec_create(name, &exec_opts(cmd)).unwrap();
    let (p, out, err) = start_with_pipes(e, &id, None);
    let code = p.wait();
    let out = read_all(out);
    read_all(err);
    (code, id, out)
}

#[test]
fn exec_with_pipes_is_recorded_for_another_engine() {
    let b = Berth::with_busybox();
    sleeper(&b, "c1", &[]);
    let e = engine(&b);
    let id = e
        .exec_create(
            "c1",
            &ExecOptions {
                interactive: true,
                ..exec_opts(&[
                    "sh",
                    "-c",
                    "echo out; echo err >&2; read x; echo got $x; exit 3",
                ])
            },
        )
        .unwrap();
    // Created, not started: a second engine (another process's view) sees it.
    let other = engine(&b);
    let rec = other.exec_inspect(&id).unwrap();
    assert!(!rec.running && rec.exit_code.is_none() && rec.open_stdin);
    assert_eq!(rec.process_config.entrypoint, "sh");
    assert_eq!(other.exec_ids("c1").unwrap(), vec![id.clone()]);

    let (in_r, in_w) = pipe();
    let (p, out_r, err_r) = start_with_pipes(&e, &id, Some(OwnedFd::from(in_r)));
    // Running, with its pid once the runtime has written it.
    let deadline = Instant::now() + Duration::from_secs(30);
    let rec = loop {
        let rec = other.exec_inspect(&id).unwrap();
        assert!(rec.running, "{rec:?}");
        if rec.pid > 0 || Instant::now() > deadline {
            break rec;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(rec.pid > 0, "{rec:?}");
    // An exec starts once.
    let again = e.exec_start(&id, ExecIo::Pty, &ExecStartOptions::default());
    assert!(
        matches!(again, Err(EngineError::Conflict { .. })),
        "{again:?}"
    );

    let mut input = std::fs::File::from(in_w);
    input.write_all(b"hello\n").unwrap();
    drop(input);
    assert_eq!(p.wait().unwrap(), 3);
    assert_eq!(
        (read_all(out_r).as_str(), read_all(err_r).as_str()),
        ("out\ngot hello\n", "err\n")
    );

    // The exit code is there for another process as soon as wait returned.
    let rec = other.exec_inspect(&id).unwrap();
    assert!(!rec.running, "{rec:?}");
    assert_eq!(rec.exit_code, Some(3));
    assert!(rec.pid > 0);

    // No such exec; nothing that is not an ID names a file.
    for bad in ["0".repeat(64), "../../x".to_owned(), String::new()] {
        let r = other.exec_inspect(&bad);
        assert!(
            matches!(r, Err(EngineError::NotFound { .. })),
            "{bad}: {r:?}"
        );
    }

    // Once the container stopped its execs are no longer its, but they can
    // be inspected until it is removed (dockerd 20.10 the same).
    b.ok(&["stop", "-t", "0", "c1"]);
    let e2 = engine(&b);
    assert_eq!(e2.exec_ids("c1").unwrap(), Vec::<String>::new());
    assert_eq!(e2.exec_inspect(&id).unwrap().exit_code, Some(3));
    b.ok(&["start", "c1"]);
    assert_eq!(e2.exec_inspect(&id).unwrap().exit_code, Some(3));
    b.ok(&["rm", "-f", "c1"]);
    let r = e2.exec_inspect(&id);
    assert!(matches!(r, Err(EngineError::NotFound { .. })), "{r:?}");
}

#[test]
fn exec_exit_codes_are_recorded() {
    let b = Berth::with_busybox();
    sleeper(&b, "c1", &[]);
    let e = engine(&b);
    let other = engine(&b);
    for (cmd, want) in [
        (&["true"][..], 0),
        (&["false"][..], 1),
        (&["sh", "-c", "no-such-command"][..], 127),
    ] {
        let (code, id, _) = run_exec(&e, "c1", cmd);
        assert_eq!(code.unwrap(), want, "{cmd:?}");
        assert_eq!(other.exec_inspect(&id).unwrap().exit_code, Some(want));
    }
    let (_, id, out) = run_exec(&e, "c1", &["echo", "a", "b"]);
    assert_eq!(out, "a b\n");
    assert_eq!(other.exec_inspect(&id).unwrap().exit_code, Some(0));
    // A program that cannot be run: Docker's 126, also in the record.
    for cmd in [&["/etc/passwd"][..], &["no-such-program"][..]] {
        let (code, id, _) = run_exec(&e, "c1", cmd);
        assert!(
            matches!(code, Err(EngineError::CannotExecute(_))),
            "{cmd:?}: {code:?}"
        );
        let rec = other.exec_inspect(&id).unwrap();
        assert!(!rec.running);
        assert_eq!(rec.exit_code, Some(126), "{cmd:?}");
    }
    // Not running: no exec is created.
    b.ok(&["stop", "-t", "0", "c1"]);
    let r = e.exec_create("c1", &exec_opts(&["true"]));
    assert!(matches!(r, Err(EngineError::Conflict { .. })), "{r:?}");
    b.ok(&["rm", "c1"]);
}

#[test]
fn exec_with_a_pty_hands_back_its_master() {
    let b = Berth::with_busybox();
    sleeper(&b, "c1", &[]);
    let e = engine(&b);
    let id = e
        .exec_create(
            "c1",
            &ExecOptions {
                tty: true,
                ..exec_opts(&["sh", "-c", "stty size; tty"])
            },
        )
        .unwrap();
    // A start refused before the runtime ran leaves the exec startable.
    let wrong = e.exec_start(
        &id,
        ExecIo::Streams {
            stdin: None,
            stdout: None,
            stderr: None,
        },
        &ExecStartOptions::default(),
    );
    assert!(matches!(wrong, Err(EngineError::Invalid(_))), "{wrong:?}");
    let rec = engine(&b).exec_inspect(&id).unwrap();
    assert!(!rec.running && !rec.started, "{rec:?}");
    let (p, mut master) = start_on_pty(&e, &id, Some((33, 101)));
    let out = read_pty_until(&mut master, |o| {
        String::from_utf8_lossy(o).contains("/dev/pts/")
    });
    assert_eq!(p.wait().unwrap(), 0);
    let out = String::from_utf8_lossy(&out);
    assert!(out.starts_with("33 101\r\n"), "{out:?}");
    assert!(out.contains("/dev/pts/"), "{out:?}");
    assert_eq!(engine(&b).exec_inspect(&id).unwrap().exit_code, Some(0));
    b.ok(&["rm", "-f", "c1"]);
}

#[test]
fn attach_handle_reads_a_running_containers_output() {
    let b = Berth::with_busybox();
    b.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "a1",
        "busybox",
        "sh",
        "-c",
        "while true; do echo out; echo err >&2; sleep 0.1; done",
    ]);
    let e = engine(&b);
    let mut s = e.attach_stream("a1").unwrap();
    assert!(!s.tty());
    let (mut out, mut err) = (false, false);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(out && err) && Instant::now() < deadline {
        let f = s.read_frame().unwrap().expect("output before the exit");
        match f.stream {
            OutputStream::Stdout => out |= f.data == b"out\n",
            OutputStream::Stderr => err |= f.data == b"err\n",
        }
    }
    assert!(out && err);
    // The container ends: the stream ends.
    b.ok(&["kill", "a1"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match s.read_frame().unwrap() {
            None => break,
            Some(_) => assert!(Instant::now() < deadline, "no end of stream"),
        }
    }
    // Attaching to a stopped container is refused.
    b.ok(&["wait", "a1"]);
    let r = e.attach_stream("a1");
    assert!(matches!(r, Err(EngineError::Conflict { .. })), "{r:?}");
    b.ok(&["rm", "a1"]);
}

#[test]
fn resize_sets_a_running_containers_terminal_size() {
    let b = Berth::with_busybox();
    b.ok(&[
        "run",
        "-d",
        "-t",
        "--network",
        "none",
        "--name",
        "t1",
        "busybox",
        "sh",
        "-c",
        "while true; do stty size; sleep 0.1; done",
    ]);
    let e = engine(&b);
    e.resize("t1", 41, 123).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !b.ok(&["logs", "t1"]).contains("41 123") {
        assert!(Instant::now() < deadline, "{}", b.ok(&["logs", "t1"]));
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut s = e.attach_stream("t1").unwrap();
    assert!(s.tty());
    let f = s.read_frame().unwrap().expect("output");
    assert_eq!(f.stream, OutputStream::Stdout);
    s.detach();
    b.ok(&["rm", "-f", "t1"]);
}

#[test]
fn an_exec_whose_starter_was_killed_runs_as_long_as_its_process() {
    let b = Berth::with_busybox();
    sleeper(&b, "c1", &[]);
    let mut cli = b.cmd(&["exec", "c1", "sleep", "1000"]).spawn().unwrap();
    let e = engine(&b);
    let deadline = Instant::now() + Duration::from_secs(30);
    let rec = loop {
        let ids = e.exec_ids("c1").unwrap();
        if let Some(id) = ids.first() {
            let rec = e.exec_inspect(id).unwrap();
            if rec.pid > 0 {
                break rec;
            }
        }
        assert!(Instant::now() < deadline, "the exec never ran");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(rec.running);
    // The `berth exec` that waits for it is killed: the process runs on.
    cli.kill().unwrap();
    cli.wait().unwrap();
    let rec = e.exec_inspect(&rec.id).unwrap();
    assert!(rec.running, "{rec:?}");
    // Its process ends: nobody recorded an exit code, but it no longer runs.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(rec.pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while e.exec_inspect(&rec.id).unwrap().running {
        assert!(Instant::now() < deadline, "still running");
        std::thread::sleep(Duration::from_millis(10));
    }
    b.ok(&["rm", "-f", "c1"]);
}

/// The same API over runc's command line (runc is the other backend a
/// container can have: `--runtime runc`).
#[test]
fn exec_through_runc() {
    if !Path::new("/usr/sbin/runc").exists() && !Path::new("/usr/bin/runc").exists() {
        eprintln!("no runc on this machine: skipped");
        return;
    }
    let b = Berth::with_busybox();
    sleeper(&b, "r1", &["--runtime", "runc"]);
    let e = engine(&b);
    let (code, id, out) = run_exec(&e, "r1", &["sh", "-c", "echo hi; exit 4"]);
    assert_eq!((code.unwrap(), out.as_str()), (4, "hi\n"));
    assert_eq!(engine(&b).exec_inspect(&id).unwrap().exit_code, Some(4));
    let (code, id, _) = run_exec(&e, "r1", &["no-such-program"]);
    assert!(
        matches!(code, Err(EngineError::CannotExecute(_))),
        "{code:?}"
    );
    assert_eq!(engine(&b).exec_inspect(&id).unwrap().exit_code, Some(126));
    let id = e
        .exec_create(
            "r1",
            &ExecOptions {
                tty: true,
                ..exec_opts(&["stty", "size"])
            },
        )
        .unwrap();
    let (p, mut master) = start_on_pty(&e, &id, Some((27, 91)));
    let out = read_pty_until(&mut master, |o| o.ends_with(b"\n"));
    assert_eq!(p.wait().unwrap(), 0);
    assert_eq!(String::from_utf8_lossy(&out), "27 91\r\n");
    b.ok(&["rm", "-f", "r1"]);
}

#[test]
fn exec_resize_sets_a_running_execs_terminal_size() {
    let b = Berth::with_busybox();
    sleeper(&b, "c1", &[]);
    let e = engine(&b);
    let id = e
        .exec_create(
            "c1",
            &ExecOptions {
                tty: true,
                interactive: true,
                ..exec_opts(&["sh", "-c", "read x; stty size"])
            },
        )
        .unwrap();
    let (p, mut master) = start_on_pty(&e, &id, None);
    let other = engine(&b);
    // Right after the start, as Docker's client does: waited for until it runs.
    other.exec_resize(&id, 50, 60).unwrap();
    master.write_all(b"\n").unwrap();
    let out = read_pty_until(&mut master, |o| {
        String::from_utf8_lossy(o).contains("50 60")
    });
    assert_eq!(p.wait().unwrap(), 0);
    assert!(String::from_utf8_lossy(&out).contains("50 60"), "{out:?}");
    // An exec that has ended cannot be resized (dockerd 20.10: 404 "no such exec").
    let r = other.exec_resize(&id, 10, 10);
    assert!(matches!(r, Err(EngineError::NotFound { .. })), "{r:?}");
    b.ok(&["rm", "-f", "c1"]);
}
