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
