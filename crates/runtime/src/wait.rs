//! The foreground runtime's loop: forward signals to the container's process,
//! relay its pty (when the runtime holds the master), and return its exit
//! code when it is reaped.

use crate::error::{Context, Result};
use crate::stdio::Stdio;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::termios::{self, SetArg};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

/// Restores the terminal's mode when dropped.
struct RawMode {
    saved: Option<termios::Termios>,
}

impl RawMode {
    fn enter() -> RawMode {
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(stdin.as_fd()).ok();
        if let Some(t) = &saved {
            let mut raw = t.clone();
            termios::cfmakeraw(&mut raw);
            let _ = termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw);
        }
        RawMode { saved }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, t);
        }
    }
}

fn copy(from: BorrowedFd, to: BorrowedFd) -> bool {
    let mut buf = [0u8; 16384];
    match nix::unistd::read(from.as_raw_fd(), &mut buf) {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            let mut off = 0;
            while off < n {
                match nix::unistd::write(to, &buf[off..n]) {
                    Ok(w) => off += w,
                    Err(nix::errno::Errno::EINTR) => {}
                    Err(_) => return false,
                }
            }
            true
        }
    }
}

/// A reaped process's exit code as Docker reports it: its status, or 128 +
/// the signal that killed it; `None` for a stop or continue.
fn exit_code(status: WaitStatus) -> Option<i32> {
    match status {
        WaitStatus::Exited(_, c) => Some(c),
        WaitStatus::Signaled(_, s, _) => Some(128 + s as i32),
        _ => None,
    }
}

fn sync_window(master: BorrowedFd) {
    if let Some((rows, cols)) = crate::sys::window_size(std::io::stdin().as_raw_fd()) {
        let _ = crate::sys::set_window_size(master.as_raw_fd(), rows, cols);
    }
}

/// `signals` must already be blocked in this thread. `stdio`'s relays run
/// until the process has exited, and are then drained and closed.
pub fn wait_forwarding(
    pid: Pid,
    signals: &SigSet,
    master: Option<BorrowedFd>,
    stdio: &mut Stdio,
) -> Result<i32> {
    let sfd = SignalFd::with_flags(signals, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .context(|| "signalfd".to_owned())?;
    // The caller's terminal is raw only when its input goes to the
    // container (as the docker CLI: `-t` without `-i` leaves it cooked, so
    // ^C stays a signal to forward).
    let _raw = master.map(|m| {
        sync_window(m);
        stdio.terminal_input().then(RawMode::enter)
    });
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let mut stdin_open = master.is_some() && stdio.terminal_input();
    let mut master_open = master.is_some();
    loop {
        // Reap first: SIGCHLD may have been consumed already.
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {}
            Ok(ws) => {
                if let Some(code) = exit_code(ws) {
                    if let (Some(m), true) = (master, master_open) {
                        // Drain what the program wrote before it exited.
                        let _ = nix::fcntl::fcntl(
                            m.as_raw_fd(),
                            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
                        );
                        while copy(m, stdout.as_fd()) {}
                    }
                    stdio.finish();
                    return Ok(code);
                }
            }
            Err(nix::errno::Errno::ECHILD) => {
                stdio.finish();
                return Ok(0);
            }
            Err(e) => return Err(e).context(|| "waitpid".to_owned()),
        }
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        if let Some(m) = master {
            if master_open {
                fds.push(PollFd::new(m, PollFlags::POLLIN));
            }
            if stdin_open {
                fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            }
        }
        let first_relay = fds.len();
        fds.extend(
            stdio
                .wanted()
                .into_iter()
                .map(|(fd, flags)| PollFd::new(fd, flags)),
        );
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e).context(|| "poll".to_owned()),
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| {
                f.revents().is_some_and(|r| {
                    r.intersects(
                        PollFlags::POLLIN
                            | PollFlags::POLLOUT
                            | PollFlags::POLLHUP
                            | PollFlags::POLLERR,
                    )
                })
            })
            .collect();
        drop(fds);
        stdio.ready(&ready[first_relay..]);
        if ready[0] {
            while let Ok(Some(info)) = sfd.read_signal() {
                let Ok(sig) = Signal::try_from(info.ssi_signo as i32) else {
                    continue;
                };
                match sig {
                    Signal::SIGCHLD => {}
                    Signal::SIGWINCH => {
                        if let Some(m) = master {
                            sync_window(m);
                        }
                    }
                    s => {
                        let _ = kill(pid, s);
                    }
                }
            }
        }
        if let Some(m) = master {
            let mut i = 1;
            if master_open {
                if ready[i] && !copy(m, stdout.as_fd()) {
                    master_open = false;
                }
                i += 1;
            }
            if stdin_open && ready.get(i).copied().unwrap_or(false) && !copy(stdin.as_fd(), m) {
                stdin_open = false;
            }
        }
    }
}
