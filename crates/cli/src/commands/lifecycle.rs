//! The background life of containers: start, stop, restart, kill, wait,
//! logs, attach, exec, pause/unpause, top, rename, container prune; and
//! what `run` shares with `start -a` and `exec`: attaching until the exit,
//! the `-it` terminal check and the exit codes of a failed start. The
//! container group (`container.rs`) uses this file, never the reverse.

use crate::format::human_size_prec;
use berth_engine::{Engine, EngineError, ExecOptions, LogOptions, OutputStream, Result};
use clap::Args;
use std::io::{Read, Write};

#[derive(Args)]
pub struct StartArgs {
    /// Print each step of the container's start with its duration (FILE: Chrome trace JSON)
    #[arg(long, value_name = "FILE", num_args = 0..=1, require_equals = true, default_missing_value = "-")]
    pub trace: Option<std::path::PathBuf>,
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short, long)]
    attach: bool,
    /// Attach the container's STDIN
    #[arg(short, long)]
    interactive: bool,
    #[arg(required = true)]
    containers: Vec<String>,
}

pub fn start(engine: &Engine, a: StartArgs) -> Result<i32> {
    if a.attach || a.interactive {
        let name = &a.containers[0];
        let id = match engine.start_with(name, true) {
            Ok(id) => id,
            // Running already: attach to it.
            Err(EngineError::NotModified(_)) => match engine.container(name) {
                Ok(c) => c.id,
                Err(e) => return Ok(start_failure(e)),
            },
            Err(e) => return Ok(start_failure(e)),
        };
        return attach_until_exit(engine, id.as_str(), a.interactive)
            .or_else(|e| Ok(start_failure(e)));
    }
    let mut code = 0;
    for c in &a.containers {
        match engine.start(c) {
            Ok(_) | Err(EngineError::NotModified(_)) => println!("{c}"),
            Err(e) => {
                eprintln!("Error: {e}");
                code = 1;
            }
        }
    }
    Ok(code)
}

#[derive(Args)]
pub struct StopArgs {
    /// Seconds to wait before killing the container
    #[arg(short, long)]
    time: Option<u64>,
    /// Signal to send (default: the container's stop signal)
    #[arg(short, long)]
    signal: Option<String>,
    #[arg(required = true)]
    containers: Vec<String>,
}

/// An error about a container (not its usage): one line, status 1, as
/// Docker's client exits on an error from the daemon.
fn failed(e: EngineError) -> i32 {
    eprintln!("Error: {}", crate::one_line(&e));
    1
}

fn each(names: &[String], mut f: impl FnMut(&str) -> Result<()>) -> Result<i32> {
    let mut code = 0;
    for n in names {
        match f(n) {
            Ok(()) => println!("{n}"),
            Err(e) => {
                eprintln!("Error: {e}");
                code = 1;
            }
        }
    }
    Ok(code)
}

pub fn stop(engine: &Engine, a: StopArgs) -> Result<i32> {
    each(&a.containers, |c| {
        if let Some(s) = &a.signal {
            engine.kill(c, s)?;
        }
        match engine.stop(c, a.time) {
            Ok(_) | Err(EngineError::NotModified(_)) => Ok(()),
            Err(e) => Err(e),
        }
    })
}

pub fn restart(engine: &Engine, a: StopArgs) -> Result<i32> {
    each(&a.containers, |c| engine.restart(c, a.time).map(drop))
}

#[derive(Args)]
pub struct KillArgs {
    /// Signal to send to the container
    #[arg(short, long, default_value = "KILL")]
    signal: String,
    #[arg(required = true)]
    containers: Vec<String>,
}

pub fn kill(engine: &Engine, a: KillArgs) -> Result<i32> {
    each(&a.containers, |c| engine.kill(c, &a.signal).map(drop))
}

#[derive(Args)]
pub struct NamesArgs {
    #[arg(required = true)]
    containers: Vec<String>,
}

pub fn wait(engine: &Engine, a: NamesArgs) -> Result<i32> {
    let mut code = 0;
    for c in &a.containers {
        match engine.wait(c) {
            Ok(status) => println!("{status}"),
            Err(e) => {
                eprintln!("Error: {e}");
                code = 1;
            }
        }
    }
    Ok(code)
}

pub fn pause(engine: &Engine, a: NamesArgs) -> Result<i32> {
    each(&a.containers, |c| engine.pause(c, true).map(drop))
}

pub fn unpause(engine: &Engine, a: NamesArgs) -> Result<i32> {
    each(&a.containers, |c| engine.pause(c, false).map(drop))
}

#[derive(Args)]
pub struct LogsArgs {
    /// Follow log output
    #[arg(short, long)]
    follow: bool,
    /// Number of lines to show from the end ("all" for all)
    #[arg(short = 'n', long, default_value = "all")]
    tail: String,
    /// Show timestamps
    #[arg(short, long)]
    timestamps: bool,
    /// Show logs since a time (RFC 3339, Unix seconds, or a duration such as 10m)
    #[arg(long)]
    since: Option<String>,
    /// Show logs before a time
    #[arg(long)]
    until: Option<String>,
    /// Show extra details (accepted)
    #[arg(long)]
    details: bool,
    container: String,
}

pub fn logs(engine: &Engine, a: LogsArgs) -> Result<i32> {
    let tail = if a.tail == "all" || a.tail == "-1" {
        None
    } else {
        Some(a.tail.parse::<usize>().map_err(|_| {
            EngineError::Invalid(format!("invalid --tail {:?}: a number or \"all\"", a.tail))
        })?)
    };
    let o = LogOptions {
        follow: a.follow,
        tail,
        timestamps: a.timestamps,
        since: a
            .since
            .as_deref()
            .map(crate::format::parse_when)
            .transpose()?,
        until: a
            .until
            .as_deref()
            .map(crate::format::parse_when)
            .transpose()?,
    };
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    match engine.logs(&a.container, &o, &mut stdout.lock(), &mut stderr.lock()) {
        Ok(()) => Ok(0),
        Err(e) => Ok(failed(e)),
    }
}

#[derive(Args)]
pub struct AttachArgs {
    /// Do not attach STDIN
    #[arg(long)]
    no_stdin: bool,
    /// Override the key sequence for detaching (accepted: ctrl-p,ctrl-q)
    #[arg(long)]
    detach_keys: Option<String>,
    /// Proxy signals (accepted)
    #[arg(long)]
    sig_proxy: Option<bool>,
    container: String,
}

pub fn attach(engine: &Engine, a: AttachArgs) -> Result<i32> {
    engine.attach_event(&a.container);
    attach_until_exit(engine, &a.container, !a.no_stdin).or_else(|e| Ok(failed(e)))
}

/// Docker's `--sig-proxy`: the signals berth receives while attached go to
/// the container (SIGINT as ctrl-c, SIGTERM from a CI runner…). They are
/// blocked in this thread before any other starts, so only the proxy
/// thread sees them; it asks `berth kill` (a process of its own, since the
/// engine is not shared between threads) to deliver each.
fn proxy_signals(engine: &Engine, id: &str) {
    use nix::sys::signal::SigSet;
    let mut set = SigSet::empty();
    for s in berth_engine::PROXIED_SIGNALS {
        set.add(s);
    }
    if set.thread_block().is_err() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut base: Vec<std::ffi::OsString> = Vec::new();
    if let Some(r) = &engine.options().root {
        base.push("--root".into());
        base.push(r.clone().into_os_string());
    }
    let id = id.to_owned();
    std::thread::spawn(move || {
        while let Ok(sig) = set.wait() {
            let _ = std::process::Command::new(&exe)
                .args(&base)
                .args(["kill", "-s", sig.as_str(), &id])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        }
    });
}

/// Whether berth's standard input is a terminal.
pub(crate) fn stdin_is_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stdin().is_terminal()
}

/// Docker's refusal of `-it` when the input is not a terminal (its CLI's
/// CheckTty): its words, exit 1, nothing created.
pub(crate) fn not_a_tty() -> i32 {
    eprintln!("the input device is not a TTY");
    1
}

/// Docker's exit codes for a container that could not start: 125 for the
/// engine, 126 when the command cannot be executed, 127 when it is not found.
pub fn start_failure(e: EngineError) -> i32 {
    eprintln!("Error: {}", crate::one_line(&e));
    e.exit_code()
}

/// Connects to the container's monitor and relays until the container
/// exits (its status is returned) or the user detaches with ctrl-p ctrl-q.
pub(crate) fn attach_until_exit(engine: &Engine, name: &str, stdin: bool) -> Result<i32> {
    let mut stream = engine.attach_stream(name)?;
    let id = stream.container().id.clone();
    proxy_signals(engine, id.as_str());
    let detached = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    if stdin {
        let mut to = stream.try_clone()?;
        let flag = detached.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let mut last_ctrl_p = false;
            let mut input = std::io::stdin();
            loop {
                let n = match input.read(&mut buf) {
                    Ok(0) | Err(_) => {
                        // End of input: the container's stdin closes too.
                        let _ = to.close_stdin();
                        return;
                    }
                    Ok(n) => n,
                };
                // Docker's detach keys: ctrl-p then ctrl-q.
                for &b in &buf[..n] {
                    if last_ctrl_p && b == 0x11 {
                        flag.store(true, std::sync::atomic::Ordering::SeqCst);
                        to.detach();
                        return;
                    }
                    last_ctrl_p = b == 0x10;
                }
                if to.write_stdin(&buf[..n]).is_err() {
                    return;
                }
            }
        });
    }
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    while let Ok(Some(frame)) = stream.read_frame() {
        if frame.stream == OutputStream::Stderr {
            let _ = stderr.lock().write_all(&frame.data);
        } else {
            let mut o = stdout.lock();
            let _ = o.write_all(&frame.data);
            let _ = o.flush();
        }
    }
    if detached.load(std::sync::atomic::Ordering::SeqCst) {
        return Ok(0);
    }
    let code = engine.wait(id.as_str())?;
    match engine.start_error(id.as_str()) {
        Some(e) => Err(e),
        None => Ok(code),
    }
}

#[derive(Args)]
#[command(
    disable_help_flag = true,
    override_usage = "berth exec [OPTIONS] CONTAINER COMMAND [ARG...]"
)]
pub struct ExecArgs {
    /// Print each step of the container's start with its duration (FILE: Chrome trace JSON)
    #[arg(long, value_name = "FILE", num_args = 0..=1, require_equals = true, default_missing_value = "-")]
    pub trace: Option<std::path::PathBuf>,
    /// Print help
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
    /// Keep STDIN open
    #[arg(short, long)]
    interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    tty: bool,
    /// Run the command in the background
    #[arg(short, long)]
    detach: bool,
    /// Set environment variables
    #[arg(short, long)]
    env: Vec<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short, long)]
    user: Option<String>,
    /// Working directory inside the container
    #[arg(short, long)]
    workdir: Option<String>,
    /// Give extended privileges to the command
    #[arg(long)]
    privileged: bool,
    /// The container, then the command and its arguments. As Docker's,
    /// flag parsing stops at the container: all that follows is the
    /// command's (`exec C ls -l` is not a flag -l).
    #[arg(num_args = 1.., trailing_var_arg = true, value_name = "CONTAINER")]
    container_and_command: Vec<String>,
}

pub fn exec(engine: &Engine, a: ExecArgs) -> Result<i32> {
    let [container, command @ ..] = a.container_and_command.as_slice() else {
        return Ok(exec_usage());
    };
    if command.is_empty() {
        return Ok(exec_usage());
    }
    if a.tty && a.interactive && !a.detach && !stdin_is_terminal() {
        return Ok(not_a_tty());
    }
    // Docker's ValidateEnv: a variable needs a name (a flag error: 125).
    if let Some(kv) = a.env.iter().find(|kv| kv.split('=').next() == Some("")) {
        eprintln!(
            "Error: invalid argument {kv:?} for \"-e, --env\" flag: invalid environment variable: {kv}"
        );
        return Ok(125);
    }
    let o = ExecOptions {
        cmd: command.to_vec(),
        env: a
            .env
            .iter()
            .map(|kv| {
                if kv.contains('=') {
                    kv.clone()
                } else {
                    format!("{kv}={}", std::env::var(kv).unwrap_or_default())
                }
            })
            .collect(),
        workdir: a.workdir,
        user: a.user,
        tty: a.tty,
        interactive: a.interactive,
        detach: a.detach,
        privileged: a.privileged,
        attach_stdout: !a.detach,
        attach_stderr: !a.detach,
    };
    match engine.exec(container, &o) {
        Ok(code) => Ok(code),
        // Docker's exec: 126/127 when the command cannot run, 1 for the
        // rest (no such container, not running), unlike run's 125.
        Err(e) => Ok(match start_failure(e) {
            125 => 1,
            code => code,
        }),
    }
}

/// Docker's answer to `exec` without a command: a usage error, exit 1.
fn exec_usage() -> i32 {
    eprintln!("Error: \"berth exec\" requires at least 2 arguments.");
    eprintln!("See 'berth exec --help'.");
    1
}

#[derive(Args)]
#[command(override_usage = "berth top CONTAINER [ps OPTIONS]")]
pub struct TopArgs {
    /// The container, then options for ps: as Docker's, flag parsing stops
    /// at the container (`top C -h` is ps's -h)
    #[arg(required = true, num_args = 1.., trailing_var_arg = true, value_name = "CONTAINER")]
    container_and_ps_args: Vec<String>,
}

pub fn top(engine: &Engine, a: TopArgs) -> Result<i32> {
    let (container, ps_args) = match a.container_and_ps_args.split_first() {
        Some((c, rest)) => (c.as_str(), rest.to_vec()),
        None => ("", Vec::new()),
    };
    match engine.top(container, &ps_args) {
        Ok(t) => {
            print!("{t}");
            Ok(0)
        }
        Err(e) => Ok(failed(e)),
    }
}

#[derive(Args)]
pub struct RenameArgs {
    container: String,
    new_name: String,
}

pub fn rename(engine: &Engine, a: RenameArgs) -> Result<i32> {
    match engine.rename(&a.container, &a.new_name) {
        Ok(()) => Ok(0),
        Err(e) => Ok(failed(e)),
    }
}

#[derive(Args)]
pub struct PruneArgs {
    /// Do not prompt for confirmation
    #[arg(short, long)]
    force: bool,
}

pub fn prune(engine: &Engine, _a: PruneArgs) -> Result<i32> {
    let (ids, reclaimed) = engine.container_prune()?;
    super::print_deleted("Containers", &ids);
    println!("Total reclaimed space: {}", human_size_prec(reclaimed, 4));
    Ok(0)
}

#[derive(Args)]
pub struct CleanupArgs {
    container: String,
}

#[derive(Args)]
pub struct HealthEventArgs {
    container: String,
    status: String,
}

/// The monitor's report of a health status change (not for users).
pub fn health_event(engine: &Engine, a: HealthEventArgs) -> Result<i32> {
    engine.health_event(&a.container, &a.status)?;
    Ok(0)
}

/// The monitor's exit command (not for users).
pub fn cleanup(engine: &Engine, a: CleanupArgs) -> Result<i32> {
    engine.cleanup(&a.container)?;
    Ok(0)
}
