//! systemd socket activation (`sd_listen_fds`): the listening sockets a
//! service manager handed this process as fds 3.. with `LISTEN_PID` naming
//! it and `LISTEN_FDS` counting them. The one place the API server takes
//! ownership of a raw descriptor.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

const FIRST: RawFd = 3;

/// The inherited listeners, if `LISTEN_PID` is this process (else none:
/// the variables were meant for another). The variables are removed so a
/// child does not take them for its own.
pub fn listen_fds() -> Vec<OwnedFd> {
    let pid_ok = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.trim().parse::<u32>().ok())
        == Some(std::process::id());
    let n = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.trim().parse::<RawFd>().ok())
        .unwrap_or(0);
    std::env::remove_var("LISTEN_PID");
    std::env::remove_var("LISTEN_FDS");
    std::env::remove_var("LISTEN_FDNAMES");
    if !pid_ok || n <= 0 {
        return Vec::new();
    }
    (FIRST..FIRST + n)
        .filter(|fd| nix::fcntl::fcntl(*fd, nix::fcntl::FcntlArg::F_GETFD).is_ok())
        .map(|fd| {
            // Close-on-exec, as every descriptor berth holds: the runtime
            // and monitors it starts must not inherit the API socket.
            let _ = nix::fcntl::fcntl(
                fd,
                nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
            );
            // SAFETY: LISTEN_PID names this process, so the service manager
            // passed fds FIRST..FIRST+n to it for it to own; F_GETFD just
            // showed this one is open, and nothing else in this process
            // takes ownership of it (the variables are gone).
            unsafe { OwnedFd::from_raw_fd(fd) }
        })
        .collect()
}
