//! A foreground container's stdio. A container never gets a descriptor of
//! a terminal its caller was given: with one, it could push input into the
//! caller's shell (TIOCSTI) or read what the user types next. Where the
//! caller's stdio is a terminal the container gets a pipe instead and the
//! caller copies the bytes (as the docker CLI does); pipes and files are
//! passed as they are (no copy, no extra work). Its stdin is /dev/null
//! unless it asked for input (`-i`).
//!
//! The relays are driven by the caller's wait loop ([`Stdio::wanted`],
//! [`Stdio::ready`], [`Stdio::finish`]): no thread, no extra process.

use crate::error::{Context, Result};
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::io::IsTerminal;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

/// The descriptors a container process gets as 0, 1 and 2, and the copies
/// the caller makes between them and its own.
#[derive(Default)]
pub struct Stdio {
    child: [Option<OwnedFd>; 3],
    relays: Vec<Relay>,
    /// With a pty whose master the runtime holds: do not copy the caller's
    /// stdin into it (`-t` without `-i`).
    no_terminal_input: bool,
}

/// Copies `from` to `to` until `from` ends; dropping `to` then (a
/// container's stdin sees its end).
struct Relay {
    from: OwnedFd,
    to: Option<OwnedFd>,
    buf: Vec<u8>,
    off: usize,
    /// Whether `from` is ours (a nonblocking pipe) rather than the
    /// caller's terminal, whose flags are shared with the caller's shell
    /// and never changed.
    from_is_ours: bool,
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).context(|| "pipe".to_owned())
}

fn set_nonblocking(fd: &OwnedFd) -> Result<()> {
    fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK))
        .context(|| "set O_NONBLOCK".to_owned())
        .map(drop)
}

fn dup(fd: BorrowedFd) -> Result<OwnedFd> {
    fd.try_clone_to_owned().context(|| "dup".to_owned())
}

fn dev_null() -> Result<OwnedFd> {
    std::fs::File::open("/dev/null")
        .map(OwnedFd::from)
        .context(|| "open /dev/null".to_owned())
}

impl Stdio {
    /// The caller's stdio as it is (the runtime's own behaviour, as runc's:
    /// its caller decides what the container gets).
    pub fn inherit() -> Stdio {
        Stdio::default()
    }

    /// A container with a terminal of its own (`-t`) whose pty the runtime
    /// relays: the caller's input is copied into it only if `stdin` (`-i`).
    pub fn terminal(stdin: bool) -> Stdio {
        Stdio {
            no_terminal_input: !stdin,
            ..Stdio::default()
        }
    }

    /// Whether the caller's stdin goes into the container's pty.
    pub fn terminal_input(&self) -> bool {
        !self.no_terminal_input
    }

    /// The caller's (this process's) stdio: stdin only if `stdin`, and
    /// through a pipe wherever it is a terminal.
    pub fn caller(stdin: bool) -> Result<Stdio> {
        let mut s = Stdio::default();
        let input = std::io::stdin();
        if !stdin {
            s.child[0] = Some(dev_null()?);
        } else if input.is_terminal() {
            let (r, w) = pipe()?;
            set_nonblocking(&w)?;
            s.child[0] = Some(r);
            s.relays.push(Relay::new(dup(input.as_fd())?, w, false));
        }
        let out = std::io::stdout();
        let err = std::io::stderr();
        for (n, fd) in [(1, out.as_fd()), (2, err.as_fd())] {
            if fd.is_terminal() {
                let (r, w) = pipe()?;
                set_nonblocking(&r)?;
                s.child[n] = Some(w);
                s.relays.push(Relay::new(r, dup(fd)?, true));
            }
        }
        Ok(s)
    }

    /// No input; stdout and stderr both to `out` (through a pipe if it is
    /// a terminal).
    pub fn output(out: OwnedFd) -> Result<Stdio> {
        let mut s = Stdio::default();
        s.child[0] = Some(dev_null()?);
        if out.as_fd().is_terminal() {
            let (r, w) = pipe()?;
            set_nonblocking(&r)?;
            s.child[2] = Some(dup(w.as_fd())?);
            s.child[1] = Some(w);
            s.relays.push(Relay::new(r, out, true));
        } else {
            s.child[2] = Some(dup(out.as_fd())?);
            s.child[1] = Some(out);
        }
        Ok(s)
    }

    /// The container's descriptors (None: inherit the caller's).
    pub fn child_fds(&self) -> [Option<RawFd>; 3] {
        [0, 1, 2].map(|n| self.child[n].as_ref().map(|f| f.as_raw_fd()))
    }

    /// Takes the container's descriptors (to hand them to a program).
    pub fn take_child(&mut self) -> [Option<OwnedFd>; 3] {
        std::mem::take(&mut self.child)
    }

    /// Closes our copies of the container's descriptors, once it has its own.
    pub fn close_child(&mut self) {
        self.child = Default::default();
    }

    /// The descriptors to poll, and for what, in the order
    /// [`Stdio::ready`] expects.
    pub fn wanted(&self) -> Vec<(BorrowedFd<'_>, PollFlags)> {
        self.relays
            .iter()
            .filter_map(|r| {
                let to = r.to.as_ref()?;
                Some(if r.off < r.buf.len() {
                    (to.as_fd(), PollFlags::POLLOUT)
                } else {
                    (r.from.as_fd(), PollFlags::POLLIN)
                })
            })
            .collect()
    }

    /// Moves bytes for the descriptors `poll` found ready (`ready[i]` for
    /// the i-th of [`Stdio::wanted`]).
    pub fn ready(&mut self, ready: &[bool]) {
        let live = self.relays.iter_mut().filter(|r| r.to.is_some());
        for (r, &go) in live.zip(ready) {
            if go {
                r.step();
            }
        }
    }

    /// After the container has exited: copies out what it wrote that is
    /// still in the pipes and closes everything.
    pub fn finish(&mut self) {
        for r in &mut self.relays {
            r.drain();
        }
        self.relays.clear();
        self.child = Default::default();
    }
}

impl Relay {
    fn new(from: OwnedFd, to: OwnedFd, from_is_ours: bool) -> Relay {
        Relay {
            from,
            to: Some(to),
            buf: Vec::new(),
            off: 0,
            from_is_ours,
        }
    }

    /// One read (or the write of what is pending).
    fn step(&mut self) {
        if self.off >= self.buf.len() {
            self.buf.resize(16384, 0);
            self.off = 0;
            match nix::unistd::read(self.from.as_raw_fd(), &mut self.buf) {
                Ok(0) => return self.end(),
                Ok(n) => self.buf.truncate(n),
                Err(Errno::EAGAIN | Errno::EINTR) => {
                    self.buf.clear();
                    return;
                }
                Err(_) => return self.end(),
            }
        }
        self.write_pending();
    }

    fn write_pending(&mut self) {
        let Some(to) = &self.to else { return };
        while self.off < self.buf.len() {
            match nix::unistd::write(to, &self.buf[self.off..]) {
                Ok(n) => self.off += n,
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => return,
                Err(_) => return self.end(),
            }
        }
    }

    fn end(&mut self) {
        self.to = None;
        self.buf.clear();
        self.off = 0;
    }

    /// Copies what `from` (one of our pipes) holds now, waiting for `to`
    /// when it is full; input from the caller is not read any more.
    fn drain(&mut self) {
        if !self.from_is_ours {
            return self.end();
        }
        while self.to.is_some() {
            if self.off < self.buf.len() {
                if let Some(to) = &self.to {
                    let mut fds = [PollFd::new(to.as_fd(), PollFlags::POLLOUT)];
                    if poll(&mut fds, PollTimeout::NONE).is_err() {
                        return self.end();
                    }
                }
                self.write_pending();
                continue;
            }
            self.buf.resize(16384, 0);
            self.off = 0;
            match nix::unistd::read(self.from.as_raw_fd(), &mut self.buf) {
                Ok(0) | Err(_) => return self.end(),
                Ok(n) => self.buf.truncate(n),
            }
            self.write_pending();
        }
    }
}
