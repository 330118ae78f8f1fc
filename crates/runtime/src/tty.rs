//! Terminals: the container side allocates a pty in its own devpts and sends
//! the master over the console socket (runc's protocol: one SCM_RIGHTS
//! message); the runtime side can also receive one and relay it to its own
//! stdio for a foreground `run -t` without a console socket.

use crate::error::{Context, Result, RuntimeError};
use crate::sys;
use nix::fcntl::OFlag;
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use oci_spec::runtime::Process;
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// Opens a pty, makes its slave our stdio and controlling terminal, and sends
/// the master over `socket`. The caller already leads its own session
/// (see [`crate::init`]), which has no terminal yet.
pub fn setup_console(socket: RawFd, process: &Process, mount_console: bool) -> Result<()> {
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .context(|| "open /dev/ptmx".to_owned())?;
    grantpt(&master).context(|| "grantpt".to_owned())?;
    unlockpt(&master).context(|| "unlockpt".to_owned())?;
    let name = ptsname_r(&master).context(|| "ptsname".to_owned())?;
    if let Some(size) = process.console_size() {
        let _ = sys::set_window_size(
            master.as_raw_fd(),
            size.height() as u16,
            size.width() as u16,
        );
    }
    let slave = nix::fcntl::open(
        name.as_str(),
        OFlag::O_RDWR | OFlag::O_NOCTTY,
        nix::sys::stat::Mode::empty(),
    )
    .context(|| format!("open {name}"))?;
    if mount_console {
        // /dev/console is the pty's slave, as in runc.
        if std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open("/dev/console")
            .is_ok()
        {
            let _ = nix::mount::mount(
                Some(name.as_str()),
                "/dev/console",
                None::<&str>,
                nix::mount::MsFlags::MS_BIND,
                None::<&str>,
            );
        }
    }
    sys::set_controlling_tty(slave).context(|| "set controlling terminal".to_owned())?;
    for fd in 0..3 {
        nix::unistd::dup2(slave, fd).context(|| "dup2 pty".to_owned())?;
    }
    if slave > 2 {
        let _ = nix::unistd::close(slave);
    }
    send_fd(socket, master.as_raw_fd(), &name)
}

pub fn send_fd(socket: RawFd, fd: RawFd, name: &str) -> Result<()> {
    let fds = [fd];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [IoSlice::new(name.as_bytes())];
    sendmsg::<()>(socket, &iov, &cmsg, MsgFlags::empty(), None)
        .context(|| "send pty master over the console socket".to_owned())
        .map(drop)
}

pub fn recv_fd(socket: RawFd) -> Result<OwnedFd> {
    let mut buf = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        socket,
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .context(|| "receive pty master".to_owned())?;
    for c in msg.cmsgs().context(|| "receive pty master".to_owned())? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                return Ok(sys::take_fd(fd));
            }
        }
    }
    Err(RuntimeError::Init("no pty master received".to_owned()))
}
