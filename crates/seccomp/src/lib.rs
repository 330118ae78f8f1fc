//! seccomp for berth: compiles an OCI seccomp profile
//! ([`oci_spec::runtime::LinuxSeccomp`]) to a classic BPF program in pure
//! Rust (no libseccomp) and installs it.
//!
//! ```no_run
//! let profile = berth_seccomp::docker_default_profile();
//! let filter = berth_seccomp::compile(&profile)?;
//! for name in &filter.skipped {
//!     eprintln!("seccomp: unknown syscall {name}, skipped");
//! }
//! // In the container process, right before exec:
//! berth_seccomp::set_no_new_privs()?; // unless the process keeps CAP_SYS_ADMIN
//! filter.install()?;
//! # Ok::<(), berth_seccomp::SeccompError>(())
//! ```
//!
//! See [`compile`] for the exact semantics (architectures, x32, rule order,
//! unknown names) and [`BAD_ARCH_ACTION`].
//!
//! Installing a filter requires either `no_new_privs` (see
//! [`set_no_new_privs`]) or `CAP_SYS_ADMIN` in the caller's user namespace.
//! A runtime that drops capabilities before installing the filter must set
//! `no_new_privs` first, otherwise the kernel answers `EACCES`.

mod arch;
mod bpf;
mod cache;
mod compile;
mod docker;
mod error;
mod parse;
mod sys;

pub use bpf::BPF_MAXINSNS;
pub use cache::compile_cached;
pub use compile::{compile, flag, ret, Filter, BAD_ARCH_ACTION};
pub use docker::docker_default_profile;
pub use error::SeccompError;
pub use parse::parse_profile;

use libc::sock_filter;

/// Installs a classic BPF seccomp program on the calling thread (all
/// threads with [`flag::TSYNC`]) with `seccomp(SECCOMP_SET_MODE_FILTER)`,
/// falling back to `prctl(PR_SET_SECCOMP)` on kernels without `seccomp()`
/// (only possible when `flags` is 0).
///
/// The caller must hold `CAP_SYS_ADMIN` or have set `no_new_privs`
/// ([`set_no_new_privs`]). Does not allocate on success, so it may be called
/// between `fork` and `exec`.
pub fn install(prog: &[sock_filter], flags: u32) -> Result<(), SeccompError> {
    install_listener(prog, flags).map(drop)
}

/// [`install`], returning the user-notification descriptor the kernel gives
/// when `flags` has [`flag::NEW_LISTENER`].
pub fn install_listener(
    prog: &[sock_filter],
    flags: u32,
) -> Result<Option<std::os::fd::OwnedFd>, SeccompError> {
    if prog.is_empty() {
        return Err(SeccompError::invalid("linux.seccomp", "empty BPF program"));
    }
    if prog.len() > BPF_MAXINSNS {
        return Err(SeccompError::TooLong(prog.len()));
    }
    match sys::set_mode_filter(prog, flags) {
        sys::SetFilter::Ok => Ok(None),
        sys::SetFilter::Listener(fd) => Ok(Some(fd)),
        sys::SetFilter::TsyncFailed(tid) => Err(SeccompError::Tsync(tid)),
        sys::SetFilter::Err(source) => Err(SeccompError::Install { source }),
    }
}

/// Sets `no_new_privs` on the calling thread
/// (`prctl(PR_SET_NO_NEW_PRIVS, 1)`), which lets an unprivileged process
/// install seccomp filters. It is inherited and cannot be unset.
pub fn set_no_new_privs() -> Result<(), SeccompError> {
    sys::set_no_new_privs().map_err(SeccompError::NoNewPrivs)
}

impl Filter {
    /// Installs the filter with its flags; see [`install`].
    pub fn install(&self) -> Result<(), SeccompError> {
        install(&self.program, self.flags)
    }

    /// Installs the filter and returns its user-notification descriptor
    /// (`Some` when the filter has `SCMP_ACT_NOTIFY` rules).
    pub fn install_listener(&self) -> Result<Option<std::os::fd::OwnedFd>, SeccompError> {
        install_listener(&self.program, self.flags)
    }
}
