//! berth's OCI runtime: executes a runtime-spec bundle with namespaces,
//! cgroups, a pivoted root filesystem, capabilities and seccomp.
//!
//! The `berth-runtime` binary exposes it with runc's command line, so
//! containerd's runc shim (and berth's own engine) can drive it.

pub mod channel;
pub mod container;
pub mod error;
pub mod hooks;
pub mod id;
pub mod init;
mod netdev;
mod procattr;
pub mod process;
pub mod rootfs;
pub mod rootless;
pub mod sealed;
pub mod spec;
pub mod state;
pub mod stdio;
mod sys;
pub mod tty;
mod wait;

pub use container::{CreateOptions, ExecOptions, Runtime};
pub use error::{Result, RuntimeError};
pub use id::ContainerId;
pub use stdio::Stdio;
pub use sys::clean_signals_on_spawn;

/// The size (rows, columns) of the terminal on `fd`, if it is one.
pub fn terminal_size(fd: &impl std::os::fd::AsRawFd) -> Option<(u16, u16)> {
    sys::window_size(fd.as_raw_fd())
}

/// Sets the size of the terminal on `fd` (a pty's master or slave; the
/// foreground process group of the slave gets SIGWINCH).
pub fn set_terminal_size(
    fd: &impl std::os::fd::AsRawFd,
    rows: u16,
    cols: u16,
) -> std::io::Result<()> {
    sys::set_window_size(fd.as_raw_fd(), rows, cols).map_err(std::io::Error::from)
}
