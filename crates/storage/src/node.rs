//! Reading a tree that someone else may be changing (a running container's
//! rootfs or upper directory) without ever leaving it: every entry is opened
//! relative to the descriptor of its directory with `O_PATH | O_NOFOLLOW`,
//! its type comes from `fstat` on that descriptor, and only a regular file is
//! then reopened for reading (through its own descriptor, so it is the same
//! inode) and only a directory is descended into (`openat(fd, ".")`). A
//! symlink swapped in at any moment is read as a symlink, never followed.

use crate::sys;
pub use crate::sys::{open_beneath, open_in_root};
use nix::dir::Dir;
use nix::fcntl::OFlag;
use nix::sys::stat::{FileStat, Mode};
use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// A path's components as a walk inside a root takes them, one at a time: its names
/// and `..` (a root or `.` adds nothing: the walk starts at the root).
pub fn walk_components(p: &Path) -> impl Iterator<Item = OsString> + '_ {
    p.components().filter_map(|c| match c {
        Component::Normal(n) => Some(n.to_owned()),
        Component::ParentDir => Some(OsString::from("..")),
        _ => None,
    })
}

/// The kinds of entry a tree holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Char,
    Block,
    Fifo,
    Socket,
}

pub fn kind_of(st: &FileStat) -> Kind {
    match st.st_mode & libc::S_IFMT {
        libc::S_IFREG => Kind::File,
        libc::S_IFDIR => Kind::Dir,
        libc::S_IFLNK => Kind::Symlink,
        libc::S_IFCHR => Kind::Char,
        libc::S_IFBLK => Kind::Block,
        libc::S_IFIFO => Kind::Fifo,
        _ => Kind::Socket,
    }
}

/// A 0/0 character device: overlay's whiteout.
pub fn stat_is_whiteout(st: &FileStat) -> bool {
    kind_of(st) == Kind::Char && st.st_rdev == 0
}

/// A 0/0 character device (as `lstat` saw it): overlay's whiteout.
pub(crate) fn is_whiteout(m: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    m.file_type().is_char_device() && m.rdev() == 0
}

/// Whether this process runs in a user namespace other than the initial
/// one (rootless berth): overlay then keeps its attributes in `user.overlay.*`
/// (the `userxattr` mount option), since `trusted.*` needs CAP_SYS_ADMIN in
/// the initial namespace. Read once.
pub(crate) fn userxattr() -> bool {
    static ROOTLESS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ROOTLESS.get_or_init(|| match std::fs::read_to_string("/proc/self/uid_map") {
        Ok(m) => m.split_whitespace().collect::<Vec<_>>() != ["0", "0", "4294967295"],
        Err(_) => false,
    })
}

/// The xattr that makes an overlay directory opaque (value `y`):
/// `trusted.overlay.opaque`, `user.overlay.opaque` rootless.
pub(crate) fn opaque_xattr() -> &'static str {
    if userxattr() {
        "user.overlay.opaque"
    } else {
        "trusted.overlay.opaque"
    }
}

/// overlay's own attributes (opaque, redirect, metacopy, …) in either
/// namespace: never content, never taken from a tar or written into one.
pub(crate) fn is_overlay_xattr(name: &[u8]) -> bool {
    name.starts_with(b"trusted.overlay.") || name.starts_with(b"user.overlay.")
}

/// One entry, held by an `O_PATH` descriptor of the entry itself.
pub struct Node {
    fd: OwnedFd,
    pub st: FileStat,
}

impl Node {
    /// Opens `name` in `dir` without following it (a symlink is opened as
    /// itself) and stats the descriptor.
    pub fn open(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<Node> {
        let fd = sys::open_at(dir, Path::new(name), OFlag::O_PATH, 0)?;
        let st = nix::sys::stat::fstat(fd.as_raw_fd())?;
        Ok(Node { fd, st })
    }

    /// `/proc/self/fd/N` of the descriptor: for the calls that take only a
    /// path, followed (the magic link leads to this very inode, whatever
    /// its name now names).
    pub fn proc_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.fd.as_raw_fd()))
    }

    pub fn kind(&self) -> Kind {
        kind_of(&self.st)
    }

    /// A directory's descriptor for reading it and opening its entries.
    pub fn open_dir(&self) -> io::Result<OwnedFd> {
        if self.kind() != Kind::Dir {
            return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
        }
        sys::open_at(
            self.fd.as_fd(),
            Path::new("."),
            OFlag::O_RDONLY | OFlag::O_DIRECTORY,
            0,
        )
    }

    /// A regular file opened for reading: the very inode that was stat'ed.
    pub fn open_file(&self) -> io::Result<File> {
        if self.kind() != Kind::File {
            return Err(io::Error::other("not a regular file"));
        }
        sys::reopen(self.fd.as_fd(), OFlag::O_RDONLY | OFlag::O_NOCTTY).map(File::from)
    }

    /// A symlink's target, read from the descriptor.
    pub fn read_link(&self) -> io::Result<PathBuf> {
        if self.kind() != Kind::Symlink {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        Ok(PathBuf::from(nix::fcntl::readlinkat(
            Some(self.fd.as_raw_fd()),
            "",
        )?))
    }
}

/// `/proc/self/fd/<dir>/<name>`: `name` in the directory held by `dir`, for
/// the calls that take only a path; used with calls that do not follow the
/// last component (`lgetxattr`, `llistxattr`).
pub fn at_path(dir: BorrowedFd<'_>, name: &OsStr) -> PathBuf {
    let mut p = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
    p.push(name);
    p
}

/// `name`'s extended attributes (without following it), sorted, overlay's
/// own left out.
pub fn xattrs(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let p = at_path(dir, name);
    keep_xattrs(xattr::list(&p)?, |n| xattr::get(&p, n))
}

/// The extended attributes of an open file or directory, as [`xattrs`].
pub fn fd_xattrs(fd: BorrowedFd<'_>) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let f = File::from(fd.try_clone_to_owned()?);
    keep_xattrs(xattr::FileExt::list_xattr(&f)?, |n| {
        xattr::FileExt::get_xattr(&f, n)
    })
}

fn keep_xattrs(
    names: xattr::XAttrs,
    get: impl Fn(&OsStr) -> io::Result<Option<Vec<u8>>>,
) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = Vec::new();
    for n in names {
        let nb = n.as_bytes();
        if is_overlay_xattr(nb) {
            continue;
        }
        if let Some(v) = get(&n)? {
            out.push((nb.to_vec(), v));
        }
    }
    out.sort();
    Ok(out)
}

/// The names in the directory held by `dir`, sorted (`.` and `..` left out).
pub fn list(dir: BorrowedFd<'_>) -> io::Result<BTreeSet<OsString>> {
    let mut d = Dir::openat(
        Some(dir.as_raw_fd()),
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let mut out = BTreeSet::new();
    for e in d.iter() {
        let e = e?;
        let n = e.file_name().to_bytes();
        if n != b"." && n != b".." {
            out.insert(OsStr::from_bytes(n).to_owned());
        }
    }
    Ok(out)
}

/// Whether an error means the entry changed under the reader (removed, or
/// replaced by something of another type): the walk skips such an entry.
pub fn vanished(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOENT) | Some(libc::ENOTDIR) | Some(libc::ELOOP) | Some(libc::EXDEV)
    )
}
