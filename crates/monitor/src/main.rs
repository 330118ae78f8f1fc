//! `berth-monitor`: one small process per running container (the role of
//! podman's conmon or containerd's shim), so that no daemon is needed and the
//! `berth` command that started a container may exit at any time.
//!
//! It makes itself a session leader and a child subreaper, creates the
//! container's stdio (pipes, or a pty received over a console socket), has the
//! OCI runtime create and start the container, tells its caller "ok" on
//! stdout, and then, single-threaded around one `poll`:
//! - copies the container's output into the json-file log (Docker's line
//!   format, rotated by size) and to attached clients,
//! - passes attached clients' input to the container's stdin,
//! - answers the published ports the kernel cannot forward (the host's IPv6
//!   loopback, `--forward`) in user space: berth_forward's listeners and
//!   connections, polled with the rest, kept across restarts,
//! - reaps the container's init, writes `exit` (status and time), applies the
//!   restart policy, and finally runs the exit command (`berth container
//!   cleanup ID`), which records the exit and releases the container's
//!   resources.
//!
//! Files in the container's run directory (`--dir`): `monitor.pid`, `pid`
//! (the init), `attach.sock`, `console.sock` (tty only), `runtime.log`,
//! `exit`, `restarts`; `stop` is written by `berth stop` so that a stopped
//! container is not restarted; `forwards` is written by the engine before
//! it sends SIGUSR1 (the published ports moved to another network).

mod args;
mod health;
mod log;
mod sys;

use args::Args;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The container's stdio as the monitor holds it.
struct Stdio3 {
    /// Output: (stream number as in Docker's stdcopy: 1 stdout, 2 stderr, fd).
    outputs: Vec<(u8, OwnedFd)>,
    /// Where attached clients' input goes (the pty master or a pipe), if any.
    input: Option<OwnedFd>,
}

fn fail(msg: &str) -> ! {
    // Before "ok" stdout is the caller's pipe: it reads this line.
    answer(&format!("error: {msg}"));
    std::process::exit(1);
}

/// Writes one line of the answer to the caller on stdout. The caller may
/// have been killed at any moment before reading it: a broken pipe (EPIPE;
/// SIGPIPE is blocked) or any other failure is ignored, never a panic as
/// `println!` would make it, so that the container keeps its monitor.
fn answer(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(format!("{line}\n").as_bytes());
    let _ = out.flush();
}

/// Whether process `pid`, a child of this monitor (a subreaper), has ended,
/// without reaping it: the main loop collects its status later.
fn exited(pid: i32) -> bool {
    use nix::sys::wait::{waitid, Id};
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
    match waitid(Id::Pid(Pid::from_raw(pid)), flags) {
        Ok(WaitStatus::StillAlive) => false,
        Ok(_) => true,
        // Not our child (no subreaper): alive while it can be signalled.
        Err(_) => nix::sys::signal::kill(Pid::from_raw(pid), None).is_err(),
    }
}

fn runtime_error(args: &Args) -> Option<String> {
    let text = std::fs::read_to_string(args.dir.join("runtime.log")).ok()?;
    text.lines().rev().find_map(|l| {
        if !l.contains("\"level\":\"error\"") {
            return None;
        }
        let start = l.find("\"msg\":\"")? + 7;
        let rest = &l[start..];
        let end = rest.find("\",\"")?;
        Some(rest[..end].replace("\\\"", "\""))
    })
}

fn runtime(args: &Args) -> Command {
    let mut c = Command::new(&args.runtime);
    sys::clean_signals_on_spawn(&mut c);
    // The runtime's stderr is the container's (its log): berth-runtime's
    // errors are read from --log only (runc's go to both).
    c.env("BERTH_RUNTIME_LOG_ONLY", "1")
        .arg("--root")
        .arg(&args.runtime_root)
        .arg("--log")
        .arg(args.dir.join("runtime.log"))
        .arg("--log-format")
        .arg("json");
    c
}

/// Binds a Unix socket at `path` however long it is: through the parent
/// directory's descriptor (`/proc/self/fd/N/name`), since a socket address
/// holds at most 107 bytes and a run directory under a long `--root` is longer.
fn bind_unix(path: &Path) -> std::io::Result<UnixListener> {
    let dir = std::fs::File::open(path.parent().unwrap_or(Path::new("/")))?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    UnixListener::bind(format!("/proc/self/fd/{}/{name}", dir.as_raw_fd()))
}

fn nonblocking(fd: &impl AsRawFd) {
    let _ = nix::fcntl::fcntl(
        fd.as_raw_fd(),
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    );
}

/// Creates and starts the container; returns its stdio and init pid.
/// Creates and starts the container; with `early`, answers the caller once
/// it is created and waits for the first attach client (returned) before
/// starting it.
/// Starts the container; an error says whether the caller already had its
/// "ok" (with `--attach-first`, before the start). None: a stop came while
/// it waited for that first client, and the container was not started.
fn launch(args: &Args, early: Option<&UnixListener>) -> Result<Option<Launched>, (String, bool)> {
    let mut answered = false;
    launch_steps(args, early, &mut answered).map_err(|e| (e, answered))
}

/// A started container: its stdio, its init, the first attach client.
type Launched = (Stdio3, Pid, Option<UnixStream>);

/// Whether `stop`, `kill` or `rm -f` asked for the container's end (the
/// file they write before they signal it).
fn stop_requested(args: &Args) -> bool {
    args.dir.join("stop").exists()
}

fn launch_steps(
    args: &Args,
    early: Option<&UnixListener>,
    answered: &mut bool,
) -> Result<Option<Launched>, String> {
    let _ = std::fs::remove_file(args.dir.join("runtime.log"));
    let pid_file = args.dir.join("pid");
    let _ = std::fs::remove_file(&pid_file);
    let mut create = runtime(args);
    create
        .arg("create")
        .arg("--bundle")
        .arg(&args.bundle)
        .arg("--pid-file")
        .arg(&pid_file);
    let mut io = Stdio3 {
        outputs: Vec::new(),
        input: None,
    };
    let console = if args.tty {
        let path = args.dir.join("console.sock");
        let _ = std::fs::remove_file(&path);
        let l = bind_unix(&path).map_err(|e| format!("console socket: {e}"))?;
        create.arg("--console-socket").arg(&path);
        create
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        Some(l)
    } else {
        let (out_r, out_w) = nix::unistd::pipe().map_err(|e| format!("pipe: {e}"))?;
        let (err_r, err_w) = nix::unistd::pipe().map_err(|e| format!("pipe: {e}"))?;
        if args.stdin {
            let (in_r, in_w) = nix::unistd::pipe().map_err(|e| format!("pipe: {e}"))?;
            create.stdin(Stdio::from(in_r));
            io.input = Some(in_w);
        } else {
            create.stdin(Stdio::null());
        }
        create.stdout(Stdio::from(out_w)).stderr(Stdio::from(err_w));
        io.outputs.push((1, out_r));
        io.outputs.push((2, err_r));
        None
    };
    create.arg(&args.id);
    let status = create
        .status()
        .map_err(|e| format!("run {}: {e}", args.runtime.display()))?;
    drop(create);
    if !status.success() {
        return Err(
            runtime_error(args).unwrap_or_else(|| format!("runtime create failed: {status}"))
        );
    }
    if let Some(l) = console {
        let (conn, _) = l.accept().map_err(|e| format!("console socket: {e}"))?;
        let master = recv_fd(&conn).ok_or("no pty master received")?;
        let dup = nix::unistd::dup(master.as_raw_fd()).map_err(|e| format!("dup: {e}"))?;
        io.outputs.push((0, master));
        io.input = Some(sys::take_fd(dup));
        let _ = std::fs::remove_file(args.dir.join("console.sock"));
    }
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or("the runtime wrote no pid file")?;
    let mut first_client = None;
    if let Some(listener) = early {
        answer(&format!("ok {pid}"));
        *answered = true;
        // The caller connects right after the answer; give up after a
        // minute, or as soon as the init is gone (the caller was killed
        // before it connected and the container was removed meanwhile:
        // waiting on would keep this monitor alive for nothing).
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while std::time::Instant::now() < deadline && !exited(pid) {
            // `rm -f`, `stop` or `kill` while the caller never connected
            // (killed): their kill may have come before the runtime had
            // created the container and found nothing to kill. The
            // container is not started; its exit is that of a kill.
            if stop_requested(args) {
                let _ = runtime(args)
                    .args(["delete", "--force", &args.id])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
                return Ok(None);
            }
            let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(200u16)) {
                Ok(0) | Err(nix::errno::Errno::EINTR) => {}
                Ok(_) => {
                    first_client = listener.accept().ok().map(|(s, _)| s);
                    break;
                }
                Err(_) => break,
            }
        }
    }
    let status = runtime(args)
        .arg("start")
        .arg(&args.id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("run {}: {e}", args.runtime.display()))?;
    if !status.success() {
        let _ = runtime(args)
            .args(["delete", "--force", &args.id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        return Err(
            runtime_error(args).unwrap_or_else(|| format!("runtime start failed: {status}"))
        );
    }
    for (_, fd) in &io.outputs {
        nonblocking(fd);
    }
    Ok(Some((io, Pid::from_raw(pid), first_client)))
}

fn recv_fd(conn: &UnixStream) -> Option<OwnedFd> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut buf = [0u8; 1024];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .ok()?;
    for c in msg.cmsgs().ok()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            return fds.first().map(|fd| sys::take_fd(*fd));
        }
    }
    None
}

/// An attached client: gets the container's output, may send input.
struct Client {
    stream: UnixStream,
    /// False once its input ended (a half-close): it still gets output.
    input_open: bool,
}

/// Sends `data` of `stream` to every client: raw on a tty, otherwise with
/// Docker's 8-byte stdcopy header so stdout and stderr stay apart.
fn broadcast(clients: &mut Vec<Client>, stream: u8, data: &[u8]) {
    clients.retain_mut(|c| {
        let ok = if stream == 0 {
            c.stream.write_all(data)
        } else {
            let len = (data.len() as u32).to_be_bytes();
            let header = [stream, 0, 0, 0, len[0], len[1], len[2], len[3]];
            c.stream
                .write_all(&header)
                .and_then(|()| c.stream.write_all(data))
        };
        ok.is_ok()
    });
}

/// Replaces `path` with `text` (a temporary file renamed over it), for root
/// alone (0600): what the monitor writes may hold a container's output.
pub(crate) fn write_atomic(path: &Path, text: &str) {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(text.as_bytes()));
    if written.is_ok() {
        let _ = std::fs::rename(&tmp, path);
    }
}

fn exit_code(ws: WaitStatus) -> Option<i32> {
    match ws {
        WaitStatus::Exited(_, c) => Some(c),
        WaitStatus::Signaled(_, s, _) => Some(128 + s as i32),
        _ => None,
    }
}

/// Serves the container until its init exits; returns the exit code.
#[allow(clippy::too_many_arguments)]
fn serve(
    args: &Args,
    health: &mut Option<health::Health>,
    io: &mut Stdio3,
    init: Pid,
    sfd: &SignalFd,
    listener: &UnixListener,
    log: &mut log::JsonLog,
    clients: &mut Vec<Client>,
    forwarder: &mut berth_forward::Forwarder,
) -> i32 {
    let mut buf = vec![0u8; 32 * 1024];
    let mut open: Vec<bool> = io.outputs.iter().map(|_| true).collect();
    loop {
        let mut fds = vec![
            PollFd::new(sfd.as_fd(), PollFlags::POLLIN),
            PollFd::new(listener.as_fd(), PollFlags::POLLIN),
        ];
        let outs: Vec<usize> = (0..io.outputs.len()).filter(|i| open[*i]).collect();
        for i in &outs {
            fds.push(PollFd::new(io.outputs[*i].1.as_fd(), PollFlags::POLLIN));
        }
        let first_client = fds.len();
        let polled: Vec<usize> = (0..clients.len())
            .filter(|k| clients[*k].input_open)
            .collect();
        for k in &polled {
            fds.push(PollFd::new(clients[*k].stream.as_fd(), PollFlags::POLLIN));
        }
        let first_forward = fds.len();
        fds.extend(forwarder.poll_fds());
        let timeout = match health {
            Some(h) => PollTimeout::try_from(h.timeout().as_millis().min(i32::MAX as u128) as i32)
                .unwrap_or(PollTimeout::MAX),
            None => PollTimeout::NONE,
        };
        if poll(&mut fds, timeout).is_err() {
            continue;
        }
        if let Some(h) = health {
            h.tick(&mut || {
                let mut c = runtime(args);
                c.arg("exec");
                if let Some(p) = &args.health_process {
                    c.arg("--process").arg(p);
                }
                c.arg(&args.id);
                c
            });
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| {
                f.revents().is_some_and(|r| {
                    r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR)
                })
            })
            .collect();
        let forward_events: Vec<PollFlags> = fds[first_forward..]
            .iter()
            .map(|f| f.revents().unwrap_or(PollFlags::empty()))
            .collect();
        drop(fds);
        forwarder.ready(&forward_events);
        // Output first, so that nothing written before exit is lost.
        for (k, i) in outs.iter().enumerate() {
            if !ready[2 + k] {
                continue;
            }
            let (stream, fd) = &io.outputs[*i];
            match nix::unistd::read(fd.as_raw_fd(), &mut buf) {
                Ok(0) => open[*i] = false,
                Ok(n) => {
                    log.write(if *stream == 2 { "stderr" } else { "stdout" }, &buf[..n]);
                    broadcast(clients, *stream, &buf[..n]);
                }
                Err(nix::errno::Errno::EAGAIN) | Err(nix::errno::Errno::EINTR) => {}
                Err(_) => open[*i] = false,
            }
        }
        // Clients' input, or their hang-up.
        let mut gone = Vec::new();
        for (j, k) in polled.iter().enumerate() {
            if !ready[first_client + j] {
                continue;
            }
            let c = &mut clients[*k];
            match c.stream.read(&mut buf) {
                // The client's input ended; it may still be reading.
                Ok(0) => {
                    c.input_open = false;
                    if args.stdin_once {
                        io.input = None;
                    }
                }
                Err(_) => gone.push(*k),
                Ok(n) => {
                    if let Some(input) = &io.input {
                        let _ = nix::unistd::write(input, &buf[..n]);
                    }
                }
            }
        }
        for k in gone.into_iter().rev() {
            clients.remove(k);
        }
        if ready[1] {
            if let Ok((s, _)) = listener.accept() {
                let _ = s.set_write_timeout(Some(Duration::from_secs(5)));
                clients.push(Client {
                    stream: s,
                    input_open: true,
                });
            }
        }
        if ready[0] {
            while let Ok(Some(info)) = sfd.read_signal() {
                match Signal::try_from(info.ssi_signo as i32) {
                    Ok(Signal::SIGCHLD) => {}
                    // The engine rewrote `forwards` (`network connect`).
                    Ok(Signal::SIGUSR1) => reload_forwards(&args.dir, forwarder),
                    // SIGTERM to the monitor: pass it to the container.
                    Ok(s) => {
                        let _ = nix::sys::signal::kill(init, s);
                    }
                    Err(_) => {}
                }
            }
            // Reap everything (we are a subreaper); note the init's end.
            let mut code = None;
            loop {
                match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::StillAlive) | Err(_) => break,
                    Ok(ws) => {
                        if ws.pid() == Some(init) {
                            code = exit_code(ws);
                        } else if let (Some(h), Some(pid), Some(c)) =
                            (health.as_mut(), ws.pid(), exit_code(ws))
                        {
                            h.reaped(pid, c);
                        }
                    }
                }
            }
            if let Some(code) = code {
                // Drain what is left in the pipes before reporting the exit.
                for (i, (stream, fd)) in io.outputs.iter().enumerate() {
                    if !open[i] {
                        continue;
                    }
                    loop {
                        match nix::unistd::read(fd.as_raw_fd(), &mut buf) {
                            Ok(n) if n > 0 => {
                                log.write(
                                    if *stream == 2 { "stderr" } else { "stdout" },
                                    &buf[..n],
                                );
                                broadcast(clients, *stream, &buf[..n]);
                            }
                            _ => break,
                        }
                    }
                }
                log.flush();
                return code;
            }
        }
    }
}

/// The health checker of `args`, if the container has a check.
fn health_for(args: &Args) -> Option<health::Health> {
    let (kind, rest) = args.health_test.split_first()?;
    let argv: Vec<String> = match kind.as_str() {
        "CMD" => rest.to_vec(),
        "CMD-SHELL" => vec!["/bin/sh".into(), "-c".into(), rest.join(" ")],
        _ => return None,
    };
    if argv.is_empty() {
        return None;
    }
    Some(health::Health::new(
        health::HealthConfig {
            argv,
            interval: Duration::from_nanos(args.health_interval_ns.max(1_000_000)),
            timeout: Duration::from_nanos(args.health_timeout_ns.max(1_000_000)),
            start_period: Duration::from_nanos(args.health_start_period_ns),
            retries: args.health_retries,
            event_command: args.health_event_command.clone(),
            argv_in_process: args.health_process.is_some(),
        },
        args.dir.join("health"),
    ))
}

/// Docker's restart decision after an exit with `code`, the `restarts` so far.
fn should_restart(policy: &str, code: i32, restarts: u32, stop_requested: bool) -> bool {
    if stop_requested {
        return false;
    }
    match policy.split_once(':') {
        Some(("on-failure", max)) => code != 0 && max.parse::<u32>().map_or(true, |m| restarts < m),
        _ => match policy {
            "always" | "unless-stopped" => true,
            "on-failure" => code != 0,
            _ => false,
        },
    }
}

/// SIGUSR1: the container's published ports moved to another network
/// (`network connect`/`disconnect`); the engine wrote the new forwards,
/// one a line, to `forwards` in the run directory (see berth_forward).
fn reload_forwards(dir: &Path, forwarder: &mut berth_forward::Forwarder) {
    if let Some(forwards) = berth_forward::read_forwards(&dir.join("forwards")) {
        forwarder.replace(&forwards);
    }
}

fn main() {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => fail(&e),
    };
    // Our own session (no terminal's signals), and the parent of every
    // orphan of the container, so that its init's exit reaches us.
    let _ = nix::unistd::setsid();
    let _ = nix::sys::prctl::set_child_subreaper(true);
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGCHLD,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGUSR1,
    ] {
        set.add(s);
    }
    let _ = set.thread_block();
    // SIGPIPE from a client that went away must not kill us.
    let mut pipe = SigSet::empty();
    pipe.add(Signal::SIGPIPE);
    let _ = pipe.thread_block();
    let sfd = match SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK) {
        Ok(s) => s,
        Err(e) => fail(&format!("signalfd: {e}")),
    };
    write_atomic(
        &args.dir.join("monitor.pid"),
        &std::process::id().to_string(),
    );
    let _ = std::fs::remove_file(args.dir.join("exit"));
    let attach_path = args.dir.join("attach.sock");
    let _ = std::fs::remove_file(&attach_path);
    let listener = match bind_unix(&attach_path) {
        Ok(l) => l,
        Err(e) => fail(&format!("attach socket {}: {e}", attach_path.display())),
    };
    nonblocking(&listener);
    // Before the container starts (and before "ok"): a port that cannot
    // be listened on fails the start.
    let mut forwarder = match berth_forward::Forwarder::bind(&args.forwards) {
        Ok(f) => f,
        Err(e) => fail(&e.to_string()),
    };
    let mut log = log::JsonLog::open(&args.log, args.log_max_size, args.log_max_files);
    let mut clients: Vec<Client> = Vec::new();
    let mut restarts: u32 = 0;
    let mut first = true;
    let code = loop {
        let early = (first && args.attach_first).then_some(&listener);
        let (mut io, init) = match launch(&args, early) {
            // Ended by a kill before it started (the caller never came).
            Ok(None) => break 128 + Signal::SIGKILL as i32,
            Ok(Some((io, init, client))) => {
                if let Some(c) = client {
                    let _ = c.set_write_timeout(Some(Duration::from_secs(5)));
                    clients.push(Client {
                        stream: c,
                        input_open: true,
                    });
                }
                (io, init)
            }
            Err((e, false)) if first => fail(&e),
            Err((e, _)) => {
                // The caller is attached (or gone): the reason goes where
                // `berth` reads it when the container is down.
                write_atomic(&args.dir.join("error"), &e);
                break 125;
            }
        };
        write_atomic(&args.dir.join("restarts"), &restarts.to_string());
        if first {
            // The caller is waiting for this line; after it, stdout and
            // stderr lead nowhere (the caller may be gone).
            if !args.attach_first {
                answer(&format!("ok {init}"));
            }
            if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
                let _ = nix::unistd::dup2(null.as_raw_fd(), 1);
                let _ = nix::unistd::dup2(null.as_raw_fd(), 2);
            }
            first = false;
            // `--trace` (berth-trace's BERTH_TRACE) followed the first
            // start only: a restart must not write a trace file nobody reads.
            std::env::remove_var("BERTH_TRACE");
            // Start-up is over: an idle monitor need not keep its code.
            sys::drop_executable_pages();
        }
        let mut health = health_for(&args);
        let code = serve(
            &args,
            &mut health,
            &mut io,
            init,
            &sfd,
            &listener,
            &mut log,
            &mut clients,
            &mut forwarder,
        );
        drop(io);
        if let Some(h) = &mut health {
            h.abandon();
        }
        if !should_restart(&args.restart, code, restarts, stop_requested(&args)) {
            break code;
        }
        let _ = runtime(&args)
            .args(["delete", "--force", &args.id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        // Docker's back-off: 100 ms doubling, at most a minute.
        let delay = Duration::from_millis(100u64.saturating_mul(1 << restarts.min(10)))
            .min(Duration::from_secs(60));
        std::thread::sleep(delay);
        restarts += 1;
        if stop_requested(&args) {
            break code;
        }
    };
    write_atomic(
        &args.dir.join("exit"),
        &format!("{code}\n{}\n", log::rfc3339_now()),
    );
    drop(clients);
    drop(listener);
    // The published ports are free once the container is down.
    drop(forwarder);
    let _ = std::fs::remove_file(&attach_path);
    if let Some((cmd, rest)) = args.exit_command.split_first() {
        let _ = Command::new(cmd)
            .args(rest)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

#[cfg(test)]
mod tests {
    use super::should_restart;

    #[test]
    fn restart_policies() {
        assert!(!should_restart("no", 1, 0, false));
        assert!(should_restart("always", 0, 5, false));
        assert!(!should_restart("always", 0, 5, true));
        assert!(should_restart("unless-stopped", 3, 0, false));
        assert!(should_restart("on-failure", 1, 9, false));
        assert!(!should_restart("on-failure", 0, 0, false));
        assert!(should_restart("on-failure:2", 1, 1, false));
        assert!(!should_restart("on-failure:2", 1, 2, false));
    }
}
