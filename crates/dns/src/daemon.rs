//! The engine's handles on the `berth-dns` process of a berth root: start it
//! when missing, tell it to reload, stop it. The pid file names it; a pid
//! counts only while /proc shows a berth-dns with that same `--pid-file`,
//! so a stale file or a recycled pid is never signalled.

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::Pid;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long `ensure_running` waits for a new berth-dns to be serving, and
/// `stop` for one to exit before SIGKILL.
const WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("start {}: {source}", binary.display())]
    Spawn {
        binary: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("berth-dns exited at start: {0}")]
    Exited(String),
    #[error("berth-dns did not write its pid file {} in time", .0.display())]
    Timeout(PathBuf),
    #[error("signal berth-dns ({pid}): {source}")]
    Signal {
        pid: Pid,
        #[source]
        source: Errno,
    },
}

/// Where a berth-dns started by [`ensure_running`] writes its stderr: the
/// pid file's name with `.log` (`dns.pid` → `dns.log`).
pub fn log_path(pid_file: &Path) -> PathBuf {
    pid_file.with_extension("log")
}

fn is_zombie(pid: Pid) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next().map(|st| st == "Z"))
        })
        .unwrap_or(true)
}

/// The berth-dns that serves with this pid file, if it is alive.
pub fn running(pid_file: &Path) -> Option<Pid> {
    let pid: i32 = std::fs::read_to_string(pid_file)
        .ok()?
        .trim()
        .parse()
        .ok()?;
    if pid <= 0 {
        return None;
    }
    let pid = Pid::from_raw(pid);
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let is_dns = args
        .first()
        .and_then(|a0| Path::new(std::ffi::OsStr::from_bytes(a0)).file_name())
        .is_some_and(|n| n.as_bytes().starts_with(b"berth-dns"));
    let ours = args
        .windows(2)
        .any(|w| w[0] == b"--pid-file" && w[1] == pid_file.as_os_str().as_bytes());
    (is_dns && ours && !is_zombie(pid)).then_some(pid)
}

/// Starts `binary` (berth-dns) for these files unless it already runs, and
/// returns its pid once it serves (its pid file written, its listeners
/// open). It runs in its own session, stdin and stdout on /dev/null, stderr
/// appended to [`log_path`]. Concurrent callers serialise on the pid
/// file's `.lock` sibling (`dns.pid` → `dns.lock`).
pub fn ensure_running(
    binary: &Path,
    records: &Path,
    resolv: &Path,
    pid_file: &Path,
) -> Result<Pid, DaemonError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DaemonError::Io { path, source }
    };
    let lock_path = pid_file.with_extension("lock");
    let lock_file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(io(&lock_path))?;
    let _lock = Flock::lock(lock_file, FlockArg::LockExclusive)
        .map_err(|(_, e)| io(&lock_path)(std::io::Error::from(e)))?;
    if let Some(pid) = running(pid_file) {
        return Ok(pid);
    }
    let log = log_path(pid_file);
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .map_err(io(&log))?;
    let log_start = log_file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut child = Command::new(binary)
        .arg("--records")
        .arg(records)
        .arg("--resolv-conf")
        .arg(resolv)
        .arg("--pid-file")
        .arg(pid_file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log_file))
        .spawn()
        .map_err(|source| DaemonError::Spawn {
            binary: binary.to_path_buf(),
            source,
        })?;
    let pid = Pid::from_raw(child.id() as i32);
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let text = std::fs::read(&log).unwrap_or_default();
            let tail = text.get(log_start as usize..).unwrap_or_default();
            let line = String::from_utf8_lossy(tail)
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .map(|l| l.trim_start_matches("berth-dns: ").to_string());
            return Err(DaemonError::Exited(
                line.unwrap_or_else(|| status.to_string()),
            ));
        }
        if running(pid_file) == Some(pid) {
            return Ok(pid);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(DaemonError::Timeout(pid_file.to_path_buf()));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Sends SIGHUP (re-read the records and resolv.conf); false if no
/// berth-dns runs with this pid file.
pub fn reload(pid_file: &Path) -> Result<bool, DaemonError> {
    let Some(pid) = running(pid_file) else {
        return Ok(false);
    };
    kill(pid, Signal::SIGHUP).map_err(|source| DaemonError::Signal { pid, source })?;
    Ok(true)
}

fn gone(pid: Pid) -> bool {
    // Reap it if it is our child (the engine that started it may still run).
    let _ = waitpid(pid, Some(WaitPidFlag::WNOHANG));
    kill(pid, None) == Err(Errno::ESRCH) || is_zombie(pid)
}

/// Stops the berth-dns of this pid file (SIGTERM, then SIGKILL after 5 s)
/// and waits until it is gone; false if none ran. The pid file is removed.
pub fn stop(pid_file: &Path) -> Result<bool, DaemonError> {
    let Some(pid) = running(pid_file) else {
        let _ = std::fs::remove_file(pid_file);
        return Ok(false);
    };
    match kill(pid, Signal::SIGTERM) {
        Ok(()) | Err(Errno::ESRCH) => {}
        Err(source) => return Err(DaemonError::Signal { pid, source }),
    }
    let deadline = Instant::now() + WAIT;
    while !gone(pid) {
        if Instant::now() > deadline {
            let _ = kill(pid, Signal::SIGKILL);
            let until = Instant::now() + WAIT;
            while !gone(pid) && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(5));
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = std::fs::remove_file(pid_file);
    Ok(true)
}
