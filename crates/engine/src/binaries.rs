//! Where berth finds the programs it runs: its own (the runtime, the
//! monitor, the DNS server, the CLI), beside this executable or named by an
//! environment variable, and the host's (`--runtime`, `--init`) in PATH.

use crate::error::{EngineError, Result};
use crate::options;
use std::path::{Path, PathBuf};

fn invalid(msg: impl Into<String>) -> EngineError {
    EngineError::Invalid(msg.into())
}

/// Where to find the OCI runtime: `BERTH_RUNTIME`, else `berth-runtime`
/// beside this executable, else on PATH.
pub(crate) fn runtime_binary() -> PathBuf {
    companion_binary("BERTH_RUNTIME", "berth-runtime")
}

/// One of berth's other programs: the path in `env`, else the file beside
/// this executable (or one directory up, where test binaries live), else
/// the bare name for PATH.
pub(crate) fn companion_binary(env: &str, name: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env) {
        return PathBuf::from(p);
    }
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            for cand in [dir.join(name), dir.join("..").join(name)] {
                if cand.is_file() {
                    return cand;
                }
            }
        }
    }
    PathBuf::from(name)
}

/// An executable called `name` in PATH (or the standard places).
fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(
            [
                "/usr/local/sbin",
                "/usr/local/bin",
                "/usr/sbin",
                "/usr/bin",
                "/sbin",
                "/bin",
            ]
            .map(PathBuf::from),
        )
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `--runtime`: None for berth's own runtime, else the executable to run
/// (a path, or a name such as runc or crun looked up in PATH).
pub(crate) fn resolve_runtime(name: Option<&str>) -> Result<Option<PathBuf>> {
    match name {
        None | Some("" | "berth-runtime" | "berth") => Ok(None),
        Some(n) if n.contains('/') => {
            let p = PathBuf::from(n);
            if is_executable(&p) {
                Ok(Some(p))
            } else {
                Err(invalid(format!(
                    "unknown or invalid runtime name: {n}: not an executable file"
                )))
            }
        }
        Some(n) => find_in_path(n).map(Some).ok_or_else(|| {
            invalid(format!(
                "unknown or invalid runtime name: {n}: not found in PATH"
            ))
        }),
    }
}

/// The runtime a container runs under: `--runtime`, else berth-runtime.
pub(crate) fn container_runtime(h: &options::HostConfig) -> Result<PathBuf> {
    Ok(resolve_runtime(h.runtime.as_deref())?.unwrap_or_else(runtime_binary))
}

/// The init binary `--init` bind-mounts at /sbin/docker-init: a static
/// catatonit or tini from the host.
pub(crate) fn find_init() -> Result<PathBuf> {
    for name in ["catatonit", "tini-static", "docker-init", "tini"] {
        if let Some(p) = find_in_path(name) {
            return Ok(p);
        }
    }
    for p in [
        "/usr/libexec/podman/catatonit",
        "/usr/libexec/docker/docker-init",
    ] {
        if is_executable(Path::new(p)) {
            return Ok(PathBuf::from(p));
        }
    }
    Err(invalid(
        "--init is not supported on this host: no init binary found (install catatonit or tini)",
    ))
}
