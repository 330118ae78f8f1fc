//! The only unsafe code of the crate: the `seccomp(2)` and `prctl(2)` calls.
//!
//! Nothing here allocates, so these functions may be called in a child
//! between `fork` and `exec`.

use std::io;

use libc::{sock_filter, sock_fprog};

const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;
const SECCOMP_MODE_FILTER: libc::c_ulong = 2;

/// Outcome of a successful-or-not `seccomp(SECCOMP_SET_MODE_FILTER)`.
pub(crate) enum SetFilter {
    Ok,
    /// Installed with `SECCOMP_FILTER_FLAG_NEW_LISTENER`: the notification
    /// descriptor, owned by the caller.
    Listener(std::os::fd::OwnedFd),
    /// TSYNC failed: this thread could not be synchronised.
    TsyncFailed(i64),
    Err(io::Error),
}

/// Installs `prog` with `flags`; falls back to `prctl(PR_SET_SECCOMP)` when
/// the kernel lacks `seccomp()` and no flags are requested.
pub(crate) fn set_mode_filter(prog: &[sock_filter], flags: u32) -> SetFilter {
    let Ok(len) = u16::try_from(prog.len()) else {
        return SetFilter::Err(io::Error::from_raw_os_error(libc::EINVAL));
    };
    let fprog = sock_fprog {
        len,
        // The kernel only reads through this pointer.
        filter: prog.as_ptr().cast_mut(),
    };
    // SAFETY: `fprog` is a valid sock_fprog whose `filter` points to `len`
    // initialised sock_filter structs borrowed from `prog`, which outlives
    // the call; the kernel copies the program and does not keep the pointer.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            libc::c_ulong::from(flags),
            &fprog as *const sock_fprog,
        )
    };
    if r == 0 {
        return SetFilter::Ok;
    }
    if r > 0 && flags & crate::flag::NEW_LISTENER != 0 {
        use std::os::fd::FromRawFd;
        // SAFETY: with NEW_LISTENER a positive result is a descriptor the
        // kernel has just opened for us; nothing else refers to it.
        return SetFilter::Listener(unsafe { std::os::fd::OwnedFd::from_raw_fd(r as i32) });
    }
    if r > 0 {
        return SetFilter::TsyncFailed(r);
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() != Some(libc::ENOSYS) || flags != 0 {
        return SetFilter::Err(e);
    }
    // SAFETY: same pointer argument as above; PR_SET_SECCOMP with
    // SECCOMP_MODE_FILTER reads a sock_fprog and copies the program.
    let r = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            SECCOMP_MODE_FILTER,
            &fprog as *const sock_fprog,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    if r == 0 {
        SetFilter::Ok
    } else {
        SetFilter::Err(io::Error::last_os_error())
    }
}

/// `prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)`.
pub(crate) fn set_no_new_privs() -> io::Result<()> {
    // SAFETY: PR_SET_NO_NEW_PRIVS takes only integer arguments and touches
    // no memory of ours.
    let r = unsafe {
        libc::prctl(
            libc::PR_SET_NO_NEW_PRIVS,
            1 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
