//! The message channel between the runtime and the container init it clones:
//! a SOCK_SEQPACKET socketpair, so every message arrives whole. The init's end
//! is close-on-exec, so end-of-file after `start` means exec succeeded.

use crate::error::{Context, Result, RuntimeError};
use nix::sys::socket::{recv, send, socketpair, AddressFamily, MsgFlags, SockFlag, SockType};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// One message between the runtime and the init.
#[derive(Debug, PartialEq, Eq)]
pub enum Msg {
    /// runtime → init: ids are mapped and the cgroup joined; go on.
    Go,
    /// init → runtime: mounts are ready; run prestart/createRuntime hooks.
    HooksPoint,
    /// runtime → init: hooks done; pivot and finish.
    Continue,
    /// init → runtime: created, waiting for start.
    Ready,
    /// runtime → init (foreground `run`): start now.
    Start,
    /// either way: a failure, as one line.
    Error(String),
    /// the other end closed (for the init: it exec'd).
    Closed,
}

pub struct Channel {
    fd: OwnedFd,
}

pub fn pair() -> Result<(Channel, Channel)> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .context(|| "socketpair".to_owned())?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    pub fn send(&self, msg: &Msg) -> Result<()> {
        let bytes: Vec<u8> = match msg {
            Msg::Go => b"G".to_vec(),
            Msg::HooksPoint => b"H".to_vec(),
            Msg::Continue => b"C".to_vec(),
            Msg::Ready => b"R".to_vec(),
            Msg::Start => b"S".to_vec(),
            Msg::Error(m) => {
                let mut v = b"E".to_vec();
                v.extend_from_slice(m.as_bytes());
                v
            }
            Msg::Closed => return Ok(()),
        };
        send(self.fd.as_raw_fd(), &bytes, MsgFlags::MSG_NOSIGNAL)
            .context(|| "send to container init".to_owned())
            .map(drop)
    }

    pub fn recv(&self) -> Result<Msg> {
        let mut buf = [0u8; 4096];
        let n = loop {
            match recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Err(nix::errno::Errno::EINTR) => continue,
                r => break r.context(|| "receive from container init".to_owned())?,
            }
        };
        Ok(match &buf[..n] {
            [] => Msg::Closed,
            b"G" => Msg::Go,
            b"H" => Msg::HooksPoint,
            b"C" => Msg::Continue,
            b"R" => Msg::Ready,
            b"S" => Msg::Start,
            [b'E', rest @ ..] => Msg::Error(String::from_utf8_lossy(rest).into_owned()),
            other => {
                return Err(RuntimeError::Init(format!(
                    "unexpected message {:?}",
                    String::from_utf8_lossy(other)
                )))
            }
        })
    }

    /// Receives and insists on `want`; an error message from the other side
    /// becomes the error.
    pub fn expect(&self, want: Msg) -> Result<()> {
        match self.recv()? {
            m if m == want => Ok(()),
            Msg::Error(e) => Err(RuntimeError::Init(e)),
            Msg::Closed => Err(RuntimeError::Init(
                "container init exited unexpectedly".to_owned(),
            )),
            m => Err(RuntimeError::Init(format!("expected {want:?}, got {m:?}"))),
        }
    }
}
