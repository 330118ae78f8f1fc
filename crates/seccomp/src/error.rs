//! Error type of the crate.

use std::io;

/// Everything that can go wrong while parsing, compiling or installing a
/// seccomp profile. Every message is one line; profile errors name the
/// offending field (`linux.seccomp.syscalls[3].args[0].op: ...`).
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// A field of the profile has a value we cannot compile.
    #[error("{field}: {message}")]
    Invalid {
        /// Path of the field, e.g. `linux.seccomp.syscalls[3].args[0].index`.
        field: String,
        /// What is wrong with it.
        message: String,
    },

    /// The profile is not valid JSON or does not have the OCI shape.
    #[error("linux.seccomp: {0}")]
    Json(#[from] serde_json::Error),

    /// The compiled program exceeds the kernel's BPF_MAXINSNS.
    #[error(
        "linux.seccomp: compiled program has {0} instructions, more than the kernel limit of 4096 (BPF_MAXINSNS)"
    )]
    TooLong(usize),

    /// `prctl(PR_SET_NO_NEW_PRIVS)` failed.
    #[error("prctl(PR_SET_NO_NEW_PRIVS): {0}")]
    NoNewPrivs(#[source] io::Error),

    /// `seccomp(SECCOMP_SET_MODE_FILTER)` (or the prctl fallback) failed.
    #[error("installing seccomp filter: {source}{}", install_hint(.source))]
    Install {
        /// The OS error.
        #[source]
        source: io::Error,
    },

    /// With `SECCOMP_FILTER_FLAG_TSYNC`, another thread could not be
    /// synchronised to the new filter.
    #[error("installing seccomp filter: thread {0} could not be synchronised (SECCOMP_FILTER_FLAG_TSYNC)")]
    Tsync(i64),
}

fn install_hint(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::EACCES) => {
            " (the caller needs no_new_privs set, see set_no_new_privs(), or CAP_SYS_ADMIN)"
        }
        Some(libc::EINVAL) => " (flag or program rejected by this kernel)",
        _ => "",
    }
}

impl SeccompError {
    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        SeccompError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}
