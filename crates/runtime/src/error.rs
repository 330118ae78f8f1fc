//! The runtime's error type: one variant per kind of failure, each rendering as
//! one line that names what went wrong and where.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(
        "invalid container id {0:?}: use letters, digits, '_', '+', '-' and '.' (at most 1024)"
    )]
    InvalidId(String),
    /// runc's words: tools match them.
    #[error("container id cannot be empty")]
    EmptyId,
    #[error("container {0:?} already exists")]
    Exists(String),
    #[error("container {0:?} does not exist")]
    NotFound(String),
    /// `kill` of a container whose init is gone, in runc's words (containerd's
    /// shim recognises "container not running").
    #[error("container not running")]
    NotRunning,
    #[error("container {id:?} is {status}: {what}")]
    BadStatus {
        id: String,
        status: String,
        what: &'static str,
    },
    #[error("{path}: {msg}")]
    Spec { path: String, msg: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{context}: {source}")]
    Sys {
        context: String,
        #[source]
        source: nix::Error,
    },
    #[error("{0}")]
    Cgroup(#[from] berth_cgroups::CgroupError),
    #[error("{0}")]
    Seccomp(#[from] berth_seccomp::SeccompError),
    #[error("container init failed: {0}")]
    Init(String),
    #[error("{kind} hook #{index} ({path}): {msg}", path = path.display())]
    Hook {
        kind: &'static str,
        index: usize,
        path: PathBuf,
        msg: String,
    },
    /// The started process could not become its program (a failing
    /// startContainer hook, an execve the kernel refused): as runc's, it
    /// says so on its own stderr and exits 1; `start`/`exec` succeed.
    #[error("{0}")]
    ProcessEnded(String),
    #[error("{0}")]
    Other(String),
}

pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;

/// Attaches a description of what was being done to an I/O or syscall error.
pub trait Context<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, std::io::Error> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| RuntimeError::Io {
            context: what(),
            source,
        })
    }
}

impl<T> Context<T> for std::result::Result<T, nix::Error> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| RuntimeError::Sys {
            context: what(),
            source,
        })
    }
}

pub fn spec_err(path: impl Into<String>, msg: impl Into<String>) -> RuntimeError {
    RuntimeError::Spec {
        path: path.into(),
        msg: msg.into(),
    }
}
