//! OCI lifecycle hooks: each runs with the container's state JSON on stdin,
//! its own args and env, and an optional timeout.
//!
//! As runc's: a hook's stdout and stderr are captured (the stderr of a
//! failing hook is part of the error), a hook without `env` gets the
//! environment of the process that runs it (the runtime's for the hooks of
//! the runtime namespace, the container process's for createContainer and
//! startContainer, which the init runs), and the hooks of the runtime
//! namespace run in the bundle directory. A hook runs in a process group of
//! its own, which a timeout kills whole.

use crate::error::{Context, Result, RuntimeError};
use nix::sys::memfd::{memfd_create, MemFdCreateFlag};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use oci_spec::runtime::Hook;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The kinds of hooks, in the order the lifecycle runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookKind {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl HookKind {
    /// The name of the kind in config.json.
    pub fn name(self) -> &'static str {
        match self {
            HookKind::Prestart => "prestart",
            HookKind::CreateRuntime => "createRuntime",
            HookKind::CreateContainer => "createContainer",
            HookKind::StartContainer => "startContainer",
            HookKind::Poststart => "poststart",
            HookKind::Poststop => "poststop",
        }
    }

    /// The hooks of this kind in `hooks`.
    pub fn of(self, hooks: &oci_spec::runtime::Hooks) -> Option<&Vec<Hook>> {
        match self {
            HookKind::Prestart => hooks.prestart().as_ref(),
            HookKind::CreateRuntime => hooks.create_runtime().as_ref(),
            HookKind::CreateContainer => hooks.create_container().as_ref(),
            HookKind::StartContainer => hooks.start_container().as_ref(),
            HookKind::Poststart => hooks.poststart().as_ref(),
            HookKind::Poststop => hooks.poststop().as_ref(),
        }
    }
}

/// Where and with what a hook runs, beyond what the hook itself says.
#[derive(Default, Clone, Copy)]
pub struct HookContext<'a> {
    /// The environment of a hook that has no `env`; `None`: this process's.
    pub env: Option<&'a [String]>,
    /// The working directory (when it exists); `None`: this process's.
    pub cwd: Option<&'a Path>,
}

/// Runs the hooks of `kind` in `hooks` in order, stopping at the first that
/// fails (which is the error).
pub fn run_hooks(
    kind: HookKind,
    hooks: Option<&oci_spec::runtime::Hooks>,
    state: &serde_json::Value,
    ctx: HookContext,
) -> Result<()> {
    let Some(list) = hooks.and_then(|h| kind.of(h)) else {
        return Ok(());
    };
    let input = state.to_string();
    for (n, h) in list.iter().enumerate() {
        run_hook(kind, n, h, &input, ctx)?;
    }
    Ok(())
}

/// Runs every poststop hook, whatever the others did, and returns the
/// failures (the runtime spec makes them warnings).
pub fn run_poststop(
    hooks: Option<&oci_spec::runtime::Hooks>,
    state: &serde_json::Value,
    ctx: HookContext,
) -> Vec<RuntimeError> {
    let Some(list) = hooks.and_then(|h| HookKind::Poststop.of(h)) else {
        return Vec::new();
    };
    let input = state.to_string();
    list.iter()
        .enumerate()
        .filter_map(|(n, h)| run_hook(HookKind::Poststop, n, h, &input, ctx).err())
        .collect()
}

/// An anonymous file holding `data`, positioned at its start.
fn memfile(name: &std::ffi::CStr, data: &[u8]) -> Result<File> {
    let fd =
        memfd_create(name, MemFdCreateFlag::MFD_CLOEXEC).context(|| "memfd_create".to_owned())?;
    let mut f = File::from(fd);
    f.write_all(data)
        .and_then(|()| f.seek(SeekFrom::Start(0)).map(drop))
        .context(|| "write a hook's stdin".to_owned())?;
    Ok(f)
}

/// At most 4 KiB of what a hook wrote to `f`, trimmed.
fn captured(f: &mut File) -> String {
    let mut buf = Vec::new();
    let _ = f.seek(SeekFrom::Start(0));
    let _ = f.take(4096).read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).trim().to_owned()
}

fn run_hook(kind: HookKind, n: usize, h: &Hook, input: &str, ctx: HookContext) -> Result<()> {
    let err = |msg: String| RuntimeError::Hook {
        kind: kind.name(),
        index: n + 1,
        path: h.path().clone(),
        msg,
    };
    let mut cmd = Command::new(h.path());
    if let Some(args) = h.args() {
        if let Some((argv0, rest)) = args.split_first() {
            cmd.arg0(argv0).args(rest);
        }
    }
    if let Some(env) = h.env().as_deref().or(ctx.env) {
        cmd.env_clear();
        for kv in env {
            if let Some((k, v)) = kv.split_once('=') {
                cmd.env(k, v);
            }
        }
    }
    if let Some(dir) = ctx.cwd.filter(|d| d.is_dir()) {
        cmd.current_dir(dir);
    }
    let stdin = memfile(c"berth-hook-state", input.as_bytes())?;
    let mut out = memfile(c"berth-hook-stdout", b"")?;
    let mut errf = memfile(c"berth-hook-stderr", b"")?;
    let clone = |f: &File| f.try_clone().context(|| "dup a hook's output".to_owned());
    cmd.stdin(Stdio::from(stdin))
        .stdout(Stdio::from(clone(&out)?))
        .stderr(Stdio::from(clone(&errf)?))
        .process_group(0);
    crate::sys::clean_signals_on_spawn(&mut cmd);
    let mut child = cmd.spawn().map_err(|e| err(e.to_string()))?;
    drop(cmd);
    let deadline = h
        .timeout()
        .filter(|t| *t > 0)
        .map(|t| Instant::now() + Duration::from_secs(t as u64));
    let status = match deadline {
        None => child.wait().map_err(|e| err(e.to_string()))?,
        Some(deadline) => loop {
            if let Some(s) = child.try_wait().map_err(|e| err(e.to_string()))? {
                break s;
            }
            if Instant::now() >= deadline {
                // The whole group: what the hook started goes too.
                let pgid = Pid::from_raw(child.id() as i32);
                let _ = killpg(pgid, Signal::SIGKILL);
                let _ = child.wait();
                return Err(err(format!(
                    "ran past its timeout of {}s",
                    h.timeout().unwrap_or_default()
                )));
            }
            std::thread::sleep(Duration::from_millis(2));
        },
    };
    if status.success() {
        return Ok(());
    }
    let what = match (
        status.code(),
        std::os::unix::process::ExitStatusExt::signal(&status),
    ) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        _ => status.to_string(),
    };
    let stdout = captured(&mut out);
    let stderr = captured(&mut errf);
    Err(err(format!(
        "{what}, stdout: {stdout:?}, stderr: {stderr:?}"
    )))
}
