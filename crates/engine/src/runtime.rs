//! The OCI runtime seam: every operation the engine asks of a runtime, behind
//! one trait with two backends.
//!
//! - [`ExecRuntime`] drives a runtime program through runc's command line
//!   (`berth-runtime`, runc, crun): `--root RUN/runtime`, one process per
//!   operation, failures read from its `--log-format json` log or stderr.
//! - [`InProcessRuntime`] links berth-runtime as a library: the foreground
//!   `run --rm` fast path (no exec of the runtime program, no JSON round
//!   trip), and `state` (asked for every running container by `ps`), `kill`,
//!   `pause` and `resume` of containers under berth's own runtime. What must
//!   be a process of its own (exec re-executes a sealed copy of the runtime
//!   program; delete's hooks and warnings; the rare `ps` and `update`) goes
//!   to the program.
//!
//! The runtime's `state` document is read into one typed [`RuntimeState`]
//! (oci-spec's `State` has no `paused`, which runc and berth-runtime report).

use crate::containers::Container;
use crate::error::EngineError;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A runtime's status of a container (the runtime-spec's, plus runc's
/// `paused`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeStatus {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl RuntimeStatus {
    /// Whether a process of the container may still run (created, running,
    /// paused).
    pub fn is_live(self) -> bool {
        matches!(
            self,
            RuntimeStatus::Created | RuntimeStatus::Running | RuntimeStatus::Paused
        )
    }
}

/// The runtime-spec `state` of a container, as `RUNTIME state ID` prints it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct RuntimeState {
    pub id: String,
    pub status: RuntimeStatus,
    /// The init's pid (0 once stopped).
    #[serde(default)]
    pub pid: i32,
    #[serde(default)]
    pub bundle: PathBuf,
}

/// A runtime operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The runtime program could not be run at all.
    #[error("cannot run the OCI runtime {}: {source}", path.display())]
    Spawn {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The runtime's own one-line message (its program name trimmed).
    #[error("{0}")]
    Failed(String),
}

impl From<RuntimeError> for EngineError {
    fn from(e: RuntimeError) -> Self {
        EngineError::Other(e.to_string())
    }
}

pub type RuntimeResult<T> = std::result::Result<T, RuntimeError>;

/// What the runtime program runs for an exec: `exec --process FILE`.
#[derive(Debug, Clone)]
pub struct ExecSpawn<'a> {
    /// The runtime-spec process (JSON) to run.
    pub process: &'a Path,
    /// Where the runtime logs its failures (`--log`, JSON).
    pub log: &'a Path,
    /// `--detach`: the runtime returns once the process runs.
    pub detach: bool,
    /// `--console-socket`: the pty master is sent there (with a terminal).
    pub console_socket: Option<&'a Path>,
    /// `--pid-file`: the process's pid is written there once it runs.
    pub pid_file: Option<&'a Path>,
}

/// The stdio the runtime process of an exec is given: None inherits
/// this process's.
#[derive(Debug, Default)]
pub struct ChildStdio {
    pub stdin: Option<Stdio>,
    pub stdout: Option<Stdio>,
    pub stderr: Option<Stdio>,
}

/// The operations the engine asks of an OCI runtime.
pub trait Runtime {
    /// `state ID`: None when the runtime has no such container.
    fn state(&self, id: &str) -> Option<RuntimeState>;
    /// `kill [--all] ID SIGNAL`.
    fn kill(&self, id: &str, signal: &str, all: bool) -> RuntimeResult<()>;
    /// `delete --force ID`: what is left of the container goes; nothing to
    /// delete is no failure worth reporting.
    fn delete_force(&self, id: &str);
    /// `pause ID`.
    fn pause(&self, id: &str) -> RuntimeResult<()>;
    /// `resume ID`.
    fn resume(&self, id: &str) -> RuntimeResult<()>;
    /// `ps ID ARGS…`: its output.
    fn ps(&self, id: &str, args: &[String]) -> RuntimeResult<String>;
    /// `update --resources - ID`, the resources as the runtime-spec's JSON.
    fn update(&self, id: &str, resources: &serde_json::Value) -> RuntimeResult<()>;
    /// `run --bundle DIR ID` in the foreground with `stdio`, relaying it and
    /// passing on the signals this process receives: the container's exit
    /// code. `log` is where a runtime program logs its failures.
    fn run(
        &self,
        id: &str,
        bundle: &Path,
        spec: Option<oci_spec::runtime::Spec>,
        log: &Path,
        stdio: berth_runtime::Stdio,
    ) -> RuntimeResult<i32>;
    /// Whether a foreground `exec --tty` sends the pty master to
    /// `--console-socket` (berth-runtime); runc refuses a console socket
    /// without `--detach` and relays a pty of its own to its stdio instead.
    fn console_socket_in_foreground(&self) -> bool {
        false
    }
    /// `exec … ID`: the runtime process that runs (and, unless detached,
    /// waits for) the exec's process.
    fn exec(
        &self,
        id: &str,
        spawn: &ExecSpawn<'_>,
        stdio: ChildStdio,
    ) -> RuntimeResult<std::process::Child>;
}

/// A runtime program driven through runc's command line.
#[derive(Debug, Clone)]
pub struct ExecRuntime {
    binary: PathBuf,
    root: PathBuf,
}

impl ExecRuntime {
    /// The runtime program `binary` with its state under `root`.
    pub fn new(binary: PathBuf, root: PathBuf) -> ExecRuntime {
        ExecRuntime { binary, root }
    }

    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// The program with `--root`, and default signal dispositions and an
    /// empty mask (a runtime passes what it inherits on to the processes it
    /// starts).
    fn command(&self) -> Command {
        let mut c = Command::new(&self.binary);
        berth_runtime::clean_signals_on_spawn(&mut c);
        c.arg("--root").arg(&self.root);
        c
    }

    fn spawn_error(&self, source: std::io::Error) -> RuntimeError {
        RuntimeError::Spawn {
            path: self.binary.clone(),
            source,
        }
    }

    /// Runs `args`, stdout discarded: Ok, or the runtime's stderr.
    fn simple(&self, args: &[&str]) -> RuntimeResult<()> {
        let out = self
            .command()
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .output()
            .map_err(|e| self.spawn_error(e))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(failure(&out.stderr))
        }
    }
}

/// A runtime's stderr as one line: the message of a logrus text line
/// (`time="…" level=error msg="…"`, what runc and berth-runtime print without
/// `--log`), else the text with a "berth-runtime: " prefix trimmed.
fn failure(stderr: &[u8]) -> RuntimeError {
    let text = String::from_utf8_lossy(stderr);
    let text = text.trim();
    let msg = text
        .lines()
        .find_map(logrus_error_msg)
        .unwrap_or_else(|| text.trim_start_matches("berth-runtime: ").to_owned());
    RuntimeError::Failed(msg)
}

/// The message of a logrus text line at level error, its quoting undone.
fn logrus_error_msg(line: &str) -> Option<String> {
    let quoted = line
        .strip_prefix("time=\"")?
        .split_once(" level=error msg=")?
        .1;
    serde_json::from_str::<String>(quoted).ok()
}

/// Tells berth-runtime to write an error only to its `--log` (read from
/// there), not also to stderr as runc does: `run` and `exec` give it the
/// container's stderr.
const LOG_ONLY: &str = "BERTH_RUNTIME_LOG_ONLY";

/// The exit code of a finished process (128 + N for a signal).
pub(crate) fn exit_code(s: std::process::ExitStatus) -> i32 {
    s.code()
        .unwrap_or(128 + std::os::unix::process::ExitStatusExt::signal(&s).unwrap_or(0))
}

impl Runtime for ExecRuntime {
    fn console_socket_in_foreground(&self) -> bool {
        self.binary.file_name() == Some(std::ffi::OsStr::new("berth-runtime"))
    }

    fn state(&self, id: &str) -> Option<RuntimeState> {
        let out = self
            .command()
            .args(["state", id])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    fn kill(&self, id: &str, signal: &str, all: bool) -> RuntimeResult<()> {
        if all {
            self.simple(&["kill", "--all", id, signal])
        } else {
            self.simple(&["kill", id, signal])
        }
    }

    fn delete_force(&self, id: &str) {
        let _ = self
            .command()
            .args(["delete", "--force", id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    fn pause(&self, id: &str) -> RuntimeResult<()> {
        self.simple(&["pause", id])
    }

    fn resume(&self, id: &str) -> RuntimeResult<()> {
        self.simple(&["resume", id])
    }

    fn ps(&self, id: &str, args: &[String]) -> RuntimeResult<String> {
        let out = self
            .command()
            .args(["ps", id])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| self.spawn_error(e))?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn update(&self, id: &str, resources: &serde_json::Value) -> RuntimeResult<()> {
        let out = self
            .command()
            .args(["update", "--resources", "-", id])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .and_then(|mut ch| {
                use std::io::Write;
                if let Some(mut i) = ch.stdin.take() {
                    i.write_all(resources.to_string().as_bytes())?;
                }
                ch.wait_with_output()
            })
            .map_err(|e| self.spawn_error(e))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(failure(&out.stderr))
        }
    }

    fn run(
        &self,
        id: &str,
        bundle: &Path,
        _spec: Option<oci_spec::runtime::Spec>,
        log: &Path,
        mut stdio: berth_runtime::Stdio,
    ) -> RuntimeResult<i32> {
        let _ = std::fs::remove_file(log);
        let mut cmd = self.command();
        set_stdio(&mut cmd, &mut stdio);
        let status = cmd
            .env(LOG_ONLY, "1")
            .arg("--log")
            .arg(log)
            .arg("--log-format")
            .arg("json")
            .arg("run")
            .arg("--bundle")
            .arg(bundle)
            .arg(id)
            .spawn()
            .and_then(|child| crate::lifecycle::wait_forwarding_signals(child, &mut stdio))
            .map_err(|e| self.spawn_error(e))?;
        // The runtime logs its own failures; without one, the code is the
        // container's.
        match runtime_log_error(log) {
            Some(msg) => Err(RuntimeError::Failed(msg)),
            None => Ok(exit_code(status)),
        }
    }

    fn exec(
        &self,
        id: &str,
        spawn: &ExecSpawn<'_>,
        stdio: ChildStdio,
    ) -> RuntimeResult<std::process::Child> {
        let _ = std::fs::remove_file(spawn.log);
        let mut cmd = self.command();
        cmd.env(LOG_ONLY, "1")
            .arg("--log")
            .arg(spawn.log)
            .arg("--log-format")
            .arg("json")
            .arg("exec");
        if spawn.detach {
            cmd.arg("--detach");
        }
        if let Some(s) = spawn.console_socket {
            cmd.arg("--console-socket").arg(s);
        }
        if let Some(p) = spawn.pid_file {
            cmd.arg("--pid-file").arg(p);
        }
        cmd.arg("--process").arg(spawn.process).arg(id);
        if let Some(s) = stdio.stdin {
            cmd.stdin(s);
        }
        if let Some(s) = stdio.stdout {
            cmd.stdout(s);
        }
        if let Some(s) = stdio.stderr {
            cmd.stderr(s);
        }
        cmd.spawn().map_err(|e| self.spawn_error(e))
    }
}

/// berth-runtime's code in this process; what needs a process of its own goes
/// to the program (`program`).
pub struct InProcessRuntime {
    root: PathBuf,
    program: ExecRuntime,
}

impl InProcessRuntime {
    pub fn new(root: PathBuf, program: ExecRuntime) -> InProcessRuntime {
        InProcessRuntime { root, program }
    }

    fn library(&self) -> RuntimeResult<berth_runtime::Runtime> {
        berth_runtime::Runtime::new(&self.root).map_err(|e| RuntimeError::Failed(e.to_string()))
    }
}

impl Runtime for InProcessRuntime {
    fn console_socket_in_foreground(&self) -> bool {
        true
    }

    fn state(&self, id: &str) -> Option<RuntimeState> {
        let v = self.library().ok()?.state(id).ok()?;
        serde_json::from_value(v).ok()
    }

    fn kill(&self, id: &str, signal: &str, all: bool) -> RuntimeResult<()> {
        let sig = berth_runtime::container::parse_signal(signal)
            .map_err(|e| RuntimeError::Failed(e.to_string()))?;
        self.library()?
            .kill(id, sig, all)
            .map_err(|e| RuntimeError::Failed(e.to_string()))
    }

    /// The program: the library's delete reports its poststop hooks' and
    /// cgroup's warnings on this process's stderr.
    fn delete_force(&self, id: &str) {
        self.program.delete_force(id)
    }

    fn pause(&self, id: &str) -> RuntimeResult<()> {
        self.library()?
            .pause(id)
            .map_err(|e| RuntimeError::Failed(e.to_string()))
    }

    fn resume(&self, id: &str) -> RuntimeResult<()> {
        self.library()?
            .resume(id)
            .map_err(|e| RuntimeError::Failed(e.to_string()))
    }

    fn ps(&self, id: &str, args: &[String]) -> RuntimeResult<String> {
        self.program.ps(id, args)
    }

    fn update(&self, id: &str, resources: &serde_json::Value) -> RuntimeResult<()> {
        self.program.update(id, resources)
    }

    /// `berth-runtime run --bundle DIR ID` inside this process (with the
    /// spec the engine wrote there, when given, not read back): the
    /// container's init is forked from it (so only while it has a single
    /// thread, see `Engine::foreground_runtime`). The signal mask the runtime
    /// sets up to forward signals to the container is undone.
    fn run(
        &self,
        id: &str,
        bundle: &Path,
        spec: Option<oci_spec::runtime::Spec>,
        _log: &Path,
        stdio: berth_runtime::Stdio,
    ) -> RuntimeResult<i32> {
        let mask = nix::sys::signal::SigSet::thread_get_mask()
            .map_err(|e| RuntimeError::Failed(e.to_string()))?;
        let opts = berth_runtime::CreateOptions {
            bundle: bundle.to_path_buf(),
            pid_file: None,
            console_socket: None,
            no_pivot: false,
            preserve_fds: 0,
            listen_fds: 0,
        };
        let res = self.library().and_then(|rt| {
            rt.run_spec_with_stdio(id, &opts, spec, false, stdio)
                .map_err(|e| RuntimeError::Failed(e.to_string()))
        });
        let _ = mask.thread_set_mask();
        res
    }

    /// The library's exec re-executes a sealed copy of the running program,
    /// which must be the runtime program: the program runs it.
    fn exec(
        &self,
        id: &str,
        spawn: &ExecSpawn<'_>,
        stdio: ChildStdio,
    ) -> RuntimeResult<std::process::Child> {
        self.program.exec(id, spawn, stdio)
    }
}

/// Gives `cmd` the container's descriptors of `stdio` (the rest inherited).
pub(crate) fn set_stdio(cmd: &mut Command, stdio: &mut berth_runtime::Stdio) {
    let [i, o, e] = stdio.take_child();
    if let Some(fd) = i {
        cmd.stdin(fd);
    }
    if let Some(fd) = o {
        cmd.stdout(fd);
    }
    if let Some(fd) = e {
        cmd.stderr(fd);
    }
}

/// The error line the runtime logged with `--log-format json`, if any.
pub(crate) fn runtime_log_error(log: &Path) -> Option<String> {
    std::fs::read_to_string(log).ok().and_then(|t| {
        t.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| v["level"] == "error")
            .and_then(|v| v["msg"].as_str().map(str::to_owned))
    })
}

/// Whether a container runs under berth's own runtime (no `--runtime`, the
/// program named berth-runtime): then its code may run in this process.
fn is_berth_runtime(c: &Container, program: &Path) -> bool {
    c.config.host.runtime.is_none()
        && program.file_name() == Some(std::ffi::OsStr::new("berth-runtime"))
}

/// Whether this process has one thread (`Threads:` of /proc/self/status).
fn single_threaded() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Threads:"))
            .is_some_and(|n| n.trim() == "1")
    })
}

impl crate::Engine {
    /// The runtime program container `c` was created with (`--runtime`),
    /// with the root all of berth's containers share; berth's own when its
    /// `--runtime` no longer resolves.
    pub(crate) fn runtime_program(&self, c: &Container) -> ExecRuntime {
        let bin = crate::binaries::container_runtime(&c.config.host)
            .unwrap_or_else(|_| crate::binaries::runtime_binary());
        ExecRuntime::new(bin, self.run.join("runtime"))
    }

    /// The runtime for the operations on container `c`: berth-runtime's
    /// code in this process for a container under berth's own runtime (whose
    /// `state` is then a file read, not a process), else the program.
    pub(crate) fn runtime(&self, c: &Container) -> Box<dyn Runtime> {
        let program = self.runtime_program(c);
        if is_berth_runtime(c, program.binary()) {
            Box::new(InProcessRuntime::new(self.run.join("runtime"), program))
        } else {
            Box::new(program)
        }
    }

    /// The runtime that runs container `c` in the foreground: in this
    /// process (crun's one-process fast path, which saves an exec, a
    /// dynamic-linker start and a JSON round trip: about 1.5 ms of a 13 ms
    /// `run --rm` on a 2-vCPU VM) when it is berth's own, the container has
    /// a pid namespace of its own (with a shared one the runtime first
    /// re-executes itself from a sealed copy, see berth_runtime::sealed,
    /// which must be the runtime program, not berth) and this process has a
    /// single thread (the container's init is forked from it).
    pub(crate) fn foreground_runtime(
        &self,
        c: &Container,
        in_process_allowed: bool,
    ) -> crate::error::Result<Box<dyn Runtime>> {
        let program = ExecRuntime::new(
            crate::binaries::container_runtime(&c.config.host)?,
            self.run.join("runtime"),
        );
        let own_pid_ns = c.config.host.pid.is_empty();
        if in_process_allowed
            && is_berth_runtime(c, program.binary())
            && own_pid_ns
            && single_threaded()
        {
            return Ok(Box::new(InProcessRuntime::new(
                self.run.join("runtime"),
                program,
            )));
        }
        Ok(Box::new(program))
    }
}

/// A descriptor given by a caller as a child's stdio; none: /dev/null.
pub(crate) fn stdio_of(fd: Option<OwnedFd>) -> Stdio {
    match fd {
        Some(fd) => Stdio::from(fd),
        None => Stdio::null(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn failure_reads_logrus_lines() {
        let msg = |s: &str| match failure(s.as_bytes()) {
            RuntimeError::Failed(m) => m,
            e => panic!("{e:?}"),
        };
        assert_eq!(
            msg("time=\"2026-12-07T09:17:05Z\" level=error msg=\"container \\\"x\\\" does not exist\"\n"),
            "container \"x\" does not exist"
        );
        assert_eq!(
            msg("berth-runtime: container not running\n"),
            "container not running"
        );
        assert_eq!(msg("plain text"), "plain text");
    }
}
