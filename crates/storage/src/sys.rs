//! The raw system calls nix returns bare descriptors for. Everything unsafe in
//! the storage crate is in this module.

use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;

/// Opens `path` relative to `dir` without ever leaving `dir` and without
/// following any symlink (`openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`):
/// a symlink anywhere in `path` fails with `ELOOP`, `..` out of `dir` with `EXDEV`.
pub fn open_beneath(dir: BorrowedFd<'_>, path: &Path, flags: OFlag) -> io::Result<OwnedFd> {
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW)
        .resolve(
            ResolveFlag::RESOLVE_BENEATH
                | ResolveFlag::RESOLVE_NO_SYMLINKS
                | ResolveFlag::RESOLVE_NO_MAGICLINKS,
        );
    let fd = nix::fcntl::openat2(dir.as_raw_fd(), path, how)?;
    // SAFETY: openat2 just returned this descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `openat(dir, name, flags | O_CLOEXEC | O_NOFOLLOW, mode)` as an owned descriptor.
pub fn open_at(dir: BorrowedFd<'_>, name: &Path, flags: OFlag, mode: u32) -> io::Result<OwnedFd> {
    let fd = nix::fcntl::openat(
        Some(dir.as_raw_fd()),
        name,
        flags | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
        Mode::from_bits_truncate(mode),
    )?;
    // SAFETY: openat just returned this descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens `path` relative to `dir` as if `dir` were the root directory
/// (`openat2` with `RESOLVE_IN_ROOT`): symlinks, absolute ones included,
/// resolve inside `dir`, so nothing outside it can be reached.
pub fn open_in_root(dir: BorrowedFd<'_>, path: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let fd = nix::fcntl::openat2(dir.as_raw_fd(), path, how)?;
    // SAFETY: openat2 just returned this descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens again, with `flags`, the inode an `O_PATH` descriptor holds, through
/// its `/proc/self/fd` magic link: the very inode, whatever its name now
/// names. The caller checks the type first (never a device or a fifo).
pub fn reopen(fd: BorrowedFd<'_>, flags: OFlag) -> io::Result<OwnedFd> {
    let p = format!("/proc/self/fd/{}", fd.as_raw_fd());
    let fd = nix::fcntl::open(p.as_str(), flags | OFlag::O_CLOEXEC, Mode::empty())?;
    // SAFETY: open just returned this descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Whether this process has one thread (`/proc/self/stat`'s `num_threads`).
fn single_threaded() -> bool {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return false;
    };
    // Fields after the command's closing parenthesis start at field 3
    // (state); num_threads is field 20.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(17))
        .is_some_and(|n| n == "1")
}

/// Runs `work` in a forked child that outlives this process, and returns
/// at once: `Ok(true)` once forked; `Ok(false)`, without forking, when this
/// process has more than one thread (a fork copies only the calling thread,
/// so a lock another thread held would stay held in the child for ever).
///
/// The child is detached from everything of the caller's: a session of its
/// own (no controlling terminal, no ^C from the caller's), stdin, stdout and
/// stderr on /dev/null (a caller reading this process's output sees its end
/// when this process exits), no other descriptor of this process (a lock held
/// through one is not kept by the child), an empty signal mask, the name
/// `berth-deleter` (`/proc/PID/comm`). It leaves
/// with `_exit(work())` (101 if `work` panics): nothing of the parent's
/// state is flushed or dropped twice. A child is not reaped: the one-shot
/// command line exits right after, and init reaps it.
pub fn fork_detached(work: impl FnOnce() -> i32) -> io::Result<bool> {
    if !single_threaded() {
        return Ok(false);
    }
    let devnull = nix::fcntl::open("/dev/null", OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty())?;
    // SAFETY: this process has a single thread (checked above, and nothing
    // here starts one in between), so the child is a consistent copy of it;
    // the child never returns into the caller's frames: it ends in `_exit`.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Parent { .. } => {
            let _ = nix::unistd::close(devnull);
            Ok(true)
        }
        nix::unistd::ForkResult::Child => {
            let _ = nix::unistd::setsid();
            // What `ps` and the tests' leak checks see (its arguments are
            // still the command's).
            let _ = nix::sys::prctl::set_name(c"berth-deleter");
            for fd in 0..3 {
                let _ = nix::unistd::dup2(devnull, fd);
            }
            // SAFETY: close_range only closes descriptors; none of them is
            // used again by the child (work opens its own).
            unsafe { libc::close_range(3, libc::c_uint::MAX, 0) };
            let _ = nix::sys::signal::sigprocmask(
                nix::sys::signal::SigmaskHow::SIG_SETMASK,
                Some(&nix::sys::signal::SigSet::empty()),
                None,
            );
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).unwrap_or(101);
            // SAFETY: _exit ends the child without running the parent's
            // exit handlers or destructors, which are the parent's to run.
            unsafe { libc::_exit(code) }
        }
    }
}
