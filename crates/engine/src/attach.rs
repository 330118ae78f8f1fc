//! Attaching to a running container: a connection to its monitor's attach
//! socket as a typed stream handle, which the CLI relays to its own stdio
//! and an API server over a hijacked HTTP connection.
//!
//! The monitor sends the container's output to every attached client: raw
//! bytes with a terminal, else Docker's stdcopy frames (`[stream 1|2, 0, 0,
//! 0, length u32 big-endian]` then the data). What a client writes goes to
//! the container's stdin (when it was started with `-i`); a client that
//! shuts its write side ends that input.

use crate::containers::{Container, State};
use crate::error::{EngineError, Result};
use crate::Engine;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

/// Which of the container's outputs a frame is from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputStream {
    Stdout,
    Stderr,
}

impl OutputStream {
    /// Docker's stream byte of a multiplexed frame (1, 2).
    pub fn docker_byte(self) -> u8 {
        match self {
            OutputStream::Stdout => 1,
            OutputStream::Stderr => 2,
        }
    }
}

/// A piece of the container's output (with a terminal: all of it is
/// `Stdout`, in the pieces it came in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputFrame {
    pub stream: OutputStream,
    pub data: Vec<u8>,
}

/// A connection to a running container's monitor.
#[derive(Debug)]
pub struct AttachStream {
    container: Container,
    stream: UnixStream,
    tty: bool,
}

impl AttachStream {
    /// The container attached to.
    pub fn container(&self) -> &Container {
        &self.container
    }

    /// Whether the container has a terminal (its output is then raw, not
    /// multiplexed).
    pub fn tty(&self) -> bool {
        self.tty
    }

    /// A second handle on the same connection: one thread writes the input
    /// while another reads the output.
    pub fn try_clone(&self) -> Result<AttachStream> {
        Ok(AttachStream {
            container: self.container.clone(),
            stream: self.stream.try_clone().map_err(attach_error)?,
            tty: self.tty,
        })
    }

    /// The next piece of output; None once the monitor hung up (the
    /// container exited, or the connection was closed).
    pub fn read_frame(&mut self) -> Result<Option<OutputFrame>> {
        if self.tty {
            let mut buf = vec![0u8; 16384];
            return match self.stream.read(&mut buf) {
                Ok(0) => Ok(None),
                Ok(n) => {
                    buf.truncate(n);
                    Ok(Some(OutputFrame {
                        stream: OutputStream::Stdout,
                        data: buf,
                    }))
                }
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Ok(None),
                Err(e) => Err(attach_error(e)),
            };
        }
        let mut header = [0u8; 8];
        match self.stream.read_exact(&mut header) {
            Ok(()) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
                ) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(attach_error(e)),
        }
        let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
        let mut data = vec![0u8; len];
        match self.stream.read_exact(&mut data) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(attach_error(e)),
        }
        Ok(Some(OutputFrame {
            stream: if header[0] == 2 {
                OutputStream::Stderr
            } else {
                OutputStream::Stdout
            },
            data,
        }))
    }

    /// Writes `data` to the container's stdin.
    pub fn write_stdin(&mut self, data: &[u8]) -> Result<()> {
        self.stream.write_all(data).map_err(attach_error)
    }

    /// The caller's input ended: the container's stdin is closed (its
    /// output keeps coming).
    pub fn close_stdin(&self) -> Result<()> {
        match self.stream.shutdown(std::net::Shutdown::Write) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotConnected => Ok(()),
            Err(e) => Err(attach_error(e)),
        }
    }

    /// Detaches: the connection closes both ways (the container runs on).
    pub fn detach(&self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }
}

fn attach_error(e: std::io::Error) -> EngineError {
    EngineError::Other(format!("attach: {e}"))
}

impl Engine {
    /// Attaches to running container `name`: a connection to its monitor
    /// (Docker's `POST /containers/ID/attach`, `berth attach`). Records no
    /// event (see [`attach_event`](Self::attach_event)).
    pub fn attach_stream(&self, name: &str) -> Result<AttachStream> {
        let c = self.container(name)?;
        if c.state != State::Running {
            return Err(EngineError::conflict(
                crate::error::ConflictKind::NotRunning,
                "You cannot attach to a stopped container, start it first",
            ));
        }
        let dir = self.bundle_dir(&c.id);
        // Through the directory's descriptor: a socket address holds at most
        // 107 bytes and the run directory under a long --root is longer.
        let stream = std::fs::File::open(&dir)
            .and_then(|d| {
                use std::os::fd::AsRawFd;
                UnixStream::connect(format!("/proc/self/fd/{}/attach.sock", d.as_raw_fd()))
            })
            .map_err(|e| {
                EngineError::Other(format!("attach {}: {e}", dir.join("attach.sock").display()))
            })?;
        let tty = c.config.tty;
        Ok(AttachStream {
            container: c,
            stream,
            tty,
        })
    }

    /// Docker's `POST /containers/ID/resize`: the size of a running
    /// container's terminal (nothing for one without a terminal). Records
    /// Docker's `resize` event.
    pub fn resize(&self, name: &str, rows: u16, cols: u16) -> Result<()> {
        let c = self.container(name)?;
        if c.state != State::Running {
            return Err(EngineError::conflict(
                crate::error::ConflictKind::NotRunning,
                format!("Container {} is not running", c.id),
            ));
        }
        if !c.config.tty {
            return Ok(());
        }
        let pid = self.live(&c).pid;
        if pid <= 0 {
            return Err(EngineError::conflict(
                crate::error::ConflictKind::NotRunning,
                format!("Container {} is not running", c.id),
            ));
        }
        crate::exec::resize_process_terminal(pid, rows, cols)?;
        self.event(
            "resize",
            &c,
            &[("height", rows.to_string()), ("width", cols.to_string())],
        );
        Ok(())
    }
}
