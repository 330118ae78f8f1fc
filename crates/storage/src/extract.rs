//! Applying a layer tar to a directory, safely.
//!
//! Every entry is created relative to a descriptor of the layer directory:
//! parents are opened with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`,
//! the entry itself with `*at` calls that never follow a final symlink, and an
//! existing entry is removed before a new one is created. So no entry can reach
//! outside the layer through `..`, an absolute path, or a symlink planted by an
//! earlier entry; such entries are refused.

use crate::node::{is_overlay_xattr, opaque_xattr};
use crate::sys;

/// The granularity at which a sparse entry's zeros become holes.
const SPARSE_BLOCK: usize = 4096;
static ZEROS: [u8; SPARSE_BLOCK] = [0; SPARSE_BLOCK];

/// Reads until `buf` is full or the end: block boundaries then fall at fixed
/// offsets whatever sizes the reader hands out.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
use crate::{Error, Result};
use berth_digest::{Digest, HashingReader};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{self, FchmodatFlags, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{self, Gid, Uid, UnlinkatFlags};
use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// How whiteouts in the tar are materialised.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Whiteouts {
    /// overlay: `.wh.NAME` → a 0/0 character device, `.wh..wh..opq` → the
    /// `trusted.overlay.opaque=y` xattr on the directory.
    Overlay,
    /// vfs: the directory holds a full copy of the parent, whiteouts delete.
    Delete,
    /// `cp` into a container: `.wh.` names are ordinary files.
    Literal,
}

const BUF_SIZE: usize = 1 << 20;

/// Why one entry failed.
enum EntryError {
    Unsafe(String),
    Io(io::Error),
}

impl From<io::Error> for EntryError {
    fn from(e: io::Error) -> Self {
        EntryError::Io(e)
    }
}

impl From<Errno> for EntryError {
    fn from(e: Errno) -> Self {
        EntryError::Io(e.into())
    }
}

type EResult<T> = std::result::Result<T, EntryError>;

/// The result of unpacking: digest and length of the tar, bytes of file data.
pub(crate) struct Unpacked {
    pub diff_id: Digest,
    pub tar_size: u64,
    pub size: u64,
}

/// Unpacks `tar` into `dir` (which exists). `layer` names the layer in errors.
pub(crate) fn unpack(
    dir: &Path,
    layer: &str,
    whiteouts: Whiteouts,
    tar: impl Read,
) -> Result<Unpacked> {
    let root: OwnedFd = File::open(dir).map_err(|e| Error::io(dir, e))?.into();
    let mut ex = Extractor {
        root,
        whiteouts,
        written: HashSet::new(),
        dir_times: Vec::new(),
        cache: None,
        buf: vec![0; BUF_SIZE],
        size: 0,
        opaque_dirs: Vec::new(),
    };
    let reader = BufReader::with_capacity(BUF_SIZE, HashingReader::new(tar));
    let mut archive = tar::Archive::new(reader);
    let tar_err = |e: io::Error| Error::Tar {
        layer: layer.to_owned(),
        source: e,
    };
    for entry in archive.entries().map_err(tar_err)? {
        let mut entry = entry.map_err(tar_err)?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        ex.entry(&mut entry).map_err(|e| match e {
            EntryError::Unsafe(reason) => Error::UnsafeEntry {
                layer: layer.to_owned(),
                entry: name.clone(),
                reason,
            },
            EntryError::Io(source) => Error::Entry {
                layer: layer.to_owned(),
                entry: name.clone(),
                source,
            },
        })?;
    }
    ex.finish_dirs().map_err(|source| Error::io(dir, source))?;
    // The diff_id covers the whole stream, including the end-of-archive blocks
    // and whatever padding follows them.
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(tar_err)?;
    let (diff_id, tar_size) = rest.into_inner().finish();
    Ok(Unpacked {
        diff_id,
        tar_size,
        size: ex.size,
    })
}

/// Hashes a tar stream without unpacking it (the layer exists already).
pub(crate) fn hash_only(tar: impl Read) -> io::Result<(Digest, u64)> {
    let mut r = HashingReader::new(tar);
    let mut buf = vec![0; BUF_SIZE];
    loop {
        if r.read(&mut buf)? == 0 {
            break;
        }
    }
    Ok(r.finish())
}

struct Extractor {
    root: OwnedFd,
    whiteouts: Whiteouts,
    /// Paths this layer wrote (vfs only: an opaque directory keeps them).
    written: HashSet<PathBuf>,
    /// Directories whose mtime is set once their contents are in place.
    dir_times: Vec<(PathBuf, TimeSpec)>,
    /// The last parent directory opened.
    cache: Option<(PathBuf, std::rc::Rc<OwnedFd>)>,
    buf: Vec<u8>,
    size: u64,
    /// overlay: directories made opaque (whiteouts inside them are dropped at the end).
    opaque_dirs: Vec<PathBuf>,
}

/// Splits a tar path into its components, refusing absolute paths and `..`.
/// `.` components and empty ones (`a//b`, a trailing `/`) are dropped.
pub(crate) fn clean(raw: &[u8]) -> EResultPath {
    if raw.first() == Some(&b'/') {
        return Err("absolute path".to_owned());
    }
    let mut out = PathBuf::new();
    for c in raw.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err("path contains \"..\"".to_owned()),
            c => out.push(OsStr::from_bytes(c)),
        }
    }
    Ok(out)
}

pub(crate) type EResultPath = std::result::Result<PathBuf, String>;

fn proc_path(fd: BorrowedFd<'_>, name: &OsStr) -> PathBuf {
    let mut p = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
    p.push(name);
    p
}

fn mtime_of(header: &tar::Header, pax_mtime: Option<TimeSpec>) -> TimeSpec {
    pax_mtime.unwrap_or_else(|| TimeSpec::new(header.mtime().unwrap_or(0) as i64, 0))
}

fn parse_pax_time(v: &[u8]) -> Option<TimeSpec> {
    let s = std::str::from_utf8(v).ok()?;
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = secs.parse().ok()?;
    let mut nanos: i64 = 0;
    for (i, d) in frac.bytes().take(9).enumerate() {
        if !d.is_ascii_digit() {
            return None;
        }
        nanos += i64::from(d - b'0') * 10i64.pow(8 - i as u32);
    }
    if secs < 0 && nanos > 0 {
        return Some(TimeSpec::new(secs - 1, 1_000_000_000 - nanos));
    }
    Some(TimeSpec::new(secs, nanos))
}

impl Extractor {
    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> EResult<()> {
        let path = clean(&entry.path_bytes()).map_err(EntryError::Unsafe)?;
        let header = entry.header().clone();
        let kind = header.entry_type();
        if kind.is_pax_global_extensions() || kind.is_gnu_longname() || kind.is_gnu_longlink() {
            return Ok(());
        }
        let mut xattrs: Vec<(OsString, Vec<u8>)> = Vec::new();
        let mut pax_mtime = None;
        if let Some(exts) = entry.pax_extensions()? {
            for ext in exts {
                let ext = ext?;
                let key = ext.key_bytes();
                if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                    // overlay's own attributes (opaque, redirect, metacopy...)
                    // are never taken from a tar.
                    if !is_overlay_xattr(name) {
                        xattrs.push((
                            OsStr::from_bytes(name).to_owned(),
                            ext.value_bytes().to_vec(),
                        ));
                    }
                } else if key == b"mtime" {
                    pax_mtime = parse_pax_time(ext.value_bytes());
                }
            }
        }
        let mtime = mtime_of(&header, pax_mtime);
        let Some(name) = path.file_name().map(OsStr::to_owned) else {
            // The layer's root itself ("./"): take its ownership and mode.
            if kind.is_dir() {
                let fd = self.root.as_fd();
                set_owner_mode(fd, &header)?;
            }
            return Ok(());
        };
        let parent_path = path.parent().unwrap_or(Path::new("")).to_owned();
        let name_bytes = name.as_bytes();

        if let Some(rest) = name_bytes.strip_prefix(b".wh.") {
            if self.whiteouts != Whiteouts::Literal {
                return self.whiteout(&parent_path, rest);
            }
        }

        let parent = self.open_parent(&parent_path)?;
        let pfd = parent.as_fd();
        let is_dir = kind.is_dir();
        let existing_dir = self.clear_target(pfd, &name, is_dir)?;
        if self.whiteouts == Whiteouts::Delete {
            self.written.insert(path.clone());
        }
        let uid = Uid::from_raw(header.uid()? as u32);
        let gid = Gid::from_raw(header.gid()? as u32);
        let mode = header.mode()? & 0o7777;

        if kind.is_file() || kind == tar::EntryType::Continuous || kind == tar::EntryType::GNUSparse
        {
            let fd = sys::open_at(
                pfd,
                Path::new(&name),
                OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL,
                0o600,
            )?;
            let mut file = File::from(fd);
            if kind == tar::EntryType::GNUSparse {
                // The tar crate reads a sparse entry's holes as zeros: write only
                // the blocks that are not all zeros, at their offsets, and set the
                // size, so holes stay holes (a 10 KB tar may hold a 2 GB file).
                use std::os::unix::fs::FileExt;
                let mut at: u64 = 0;
                loop {
                    let n = read_full(&mut *entry, &mut self.buf)?;
                    if n == 0 {
                        break;
                    }
                    for block in self.buf[..n].chunks(SPARSE_BLOCK) {
                        if block != &ZEROS[..block.len()] {
                            file.write_all_at(block, at)?;
                        }
                        at += block.len() as u64;
                    }
                    self.size += n as u64;
                }
                file.set_len(at)?;
            } else {
                loop {
                    let n = entry.read(&mut self.buf)?;
                    if n == 0 {
                        break;
                    }
                    file.write_all(&self.buf[..n])?;
                    self.size += n as u64;
                }
            }
            let fd = file.as_fd();
            unistd::fchown(fd.as_raw_fd(), Some(uid), Some(gid))?;
            stat::fchmod(fd.as_raw_fd(), Mode::from_bits_truncate(mode))?;
            for (k, v) in &xattrs {
                xattr::FileExt::set_xattr(&file, k, v)?;
            }
            stat::futimens(fd.as_raw_fd(), &mtime, &mtime)?;
        } else if is_dir {
            if !existing_dir {
                stat::mkdirat(
                    Some(pfd.as_raw_fd()),
                    Path::new(&name),
                    Mode::from_bits_truncate(0o700),
                )?;
            }
            let fd = sys::open_at(
                pfd,
                Path::new(&name),
                OFlag::O_RDONLY | OFlag::O_DIRECTORY,
                0,
            )?;
            unistd::fchown(fd.as_raw_fd(), Some(uid), Some(gid))?;
            stat::fchmod(fd.as_raw_fd(), Mode::from_bits_truncate(mode))?;
            let file = File::from(fd);
            for (k, v) in &xattrs {
                xattr::FileExt::set_xattr(&file, k, v)?;
            }
            self.dir_times.push((path.clone(), mtime));
        } else if kind.is_symlink() {
            let target = entry
                .link_name_bytes()
                .ok_or_else(|| EntryError::Unsafe("symlink without a target".to_owned()))?;
            unistd::symlinkat(
                OsStr::from_bytes(&target),
                Some(pfd.as_raw_fd()),
                Path::new(&name),
            )?;
            unistd::fchownat(
                Some(pfd.as_raw_fd()),
                Path::new(&name),
                Some(uid),
                Some(gid),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )?;
            let p = proc_path(pfd, &name);
            for (k, v) in &xattrs {
                xattr::set(&p, k, v)?;
            }
            stat::utimensat(
                Some(pfd.as_raw_fd()),
                Path::new(&name),
                &mtime,
                &mtime,
                UtimensatFlags::NoFollowSymlink,
            )?;
        } else if kind.is_hard_link() {
            let target = entry
                .link_name_bytes()
                .ok_or_else(|| EntryError::Unsafe("hard link without a target".to_owned()))?;
            let target =
                clean(&target).map_err(|r| EntryError::Unsafe(format!("hard link target: {r}")))?;
            let Some(tname) = target.file_name() else {
                return Err(EntryError::Unsafe("hard link to the layer root".to_owned()));
            };
            let tparent = target.parent().unwrap_or(Path::new(""));
            let tdir = self.open_existing(tparent).map_err(|e| match e {
                EntryError::Io(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                    EntryError::Unsafe(format!(
                        "hard link target {:?} is not in the layer",
                        target.display().to_string()
                    ))
                }
                e => e,
            })?;
            unistd::linkat(
                Some(tdir.as_raw_fd()),
                Path::new(tname),
                Some(pfd.as_raw_fd()),
                Path::new(&name),
                AtFlags::empty(),
            )
            .map_err(|e| match e {
                Errno::ENOENT => EntryError::Unsafe(format!(
                    "hard link target {:?} is not in the layer",
                    target.display().to_string()
                )),
                e => e.into(),
            })?;
        } else if kind.is_character_special() || kind.is_block_special() || kind.is_fifo() {
            let sflag = if kind.is_character_special() {
                SFlag::S_IFCHR
            } else if kind.is_block_special() {
                SFlag::S_IFBLK
            } else {
                SFlag::S_IFIFO
            };
            let major = header.device_major()?.unwrap_or(0);
            let minor = header.device_minor()?.unwrap_or(0);
            stat::mknodat(
                Some(pfd.as_raw_fd()),
                Path::new(&name),
                sflag,
                Mode::from_bits_truncate(0o600),
                stat::makedev(major.into(), minor.into()),
            )?;
            // The node is held by a descriptor and its type checked on it
            // before its metadata is set through that descriptor: in a
            // running container (`cp` in) it may have been replaced by a
            // symlink meanwhile, which must never be followed.
            let node = crate::node::Node::open(pfd, &name)?;
            let expected = if kind.is_character_special() {
                crate::node::Kind::Char
            } else if kind.is_block_special() {
                crate::node::Kind::Block
            } else {
                crate::node::Kind::Fifo
            };
            if node.kind() != expected {
                return Err(EntryError::Unsafe(
                    "the entry was replaced while it was written".to_owned(),
                ));
            }
            let p = node.proc_path();
            unistd::chown(&p, Some(uid), Some(gid))?;
            stat::fchmodat(
                None,
                &p,
                Mode::from_bits_truncate(mode),
                FchmodatFlags::FollowSymlink,
            )?;
            for (k, v) in &xattrs {
                xattr::set_deref(&p, k, v)?;
            }
            stat::utimensat(None, &p, &mtime, &mtime, UtimensatFlags::FollowSymlink)?;
        } else {
            return Err(EntryError::Unsafe(format!(
                "unsupported entry type {:?}",
                header.entry_type()
            )));
        }
        Ok(())
    }

    /// A `.wh.` entry: `rest` is what follows the prefix.
    fn whiteout(&mut self, parent_path: &Path, rest: &[u8]) -> EResult<()> {
        if rest == b".wh..opq" {
            let dir = self.open_parent(parent_path)?;
            match self.whiteouts {
                Whiteouts::Overlay => {
                    let p = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
                    xattr::set_deref(&p, opaque_xattr(), b"y")?;
                    self.opaque_dirs.push(parent_path.to_owned());
                }
                Whiteouts::Delete | Whiteouts::Literal => {
                    let fd = sys::open_beneath(
                        dir.as_fd(),
                        Path::new("."),
                        OFlag::O_RDONLY | OFlag::O_DIRECTORY,
                    )?;
                    self.cache = None;
                    self.empty_opaque(fd, parent_path)?;
                }
            }
            return Ok(());
        }
        if rest.starts_with(b".wh.") {
            // Other aufs metadata (.wh..wh.plnk, .wh..wh.aufs): not content.
            return Ok(());
        }
        if rest.is_empty() || rest == b"." || rest == b".." {
            return Err(EntryError::Unsafe("whiteout of an invalid name".to_owned()));
        }
        let name = OsStr::from_bytes(rest);
        match self.whiteouts {
            Whiteouts::Overlay => {
                let dir = self.open_parent(parent_path)?;
                self.clear_target(dir.as_fd(), name, false)?;
                stat::mknodat(
                    Some(dir.as_raw_fd()),
                    name,
                    SFlag::S_IFCHR,
                    Mode::empty(),
                    0,
                )?;
            }
            Whiteouts::Delete | Whiteouts::Literal => {
                let dir = match self.open_existing(parent_path) {
                    Ok(d) => d,
                    Err(EntryError::Io(e)) if e.raw_os_error() == Some(libc::ENOENT) => {
                        return Ok(())
                    }
                    Err(e) => return Err(e),
                };
                match stat::fstatat(Some(dir.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
                    Ok(_) => {
                        self.clear_target(dir.as_fd(), name, false)?;
                    }
                    Err(Errno::ENOENT) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }

    /// vfs opaque directory: remove what this layer did not write.
    fn empty_opaque(&self, dir: OwnedFd, rel: &Path) -> EResult<()> {
        let file = File::from(dir);
        let p = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
        let mut names: Vec<OsString> = std::fs::read_dir(&p)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<io::Result<_>>()?;
        names.sort();
        for name in names {
            let child = rel.join(&name);
            if !self.written.contains(&child) {
                remove_entry(file.as_fd(), &name)?;
            } else if let Ok(sub) = sys::open_at(
                file.as_fd(),
                Path::new(&name),
                OFlag::O_RDONLY | OFlag::O_DIRECTORY,
                0,
            ) {
                self.empty_opaque(sub, &child)?;
            }
        }
        Ok(())
    }

    /// Removes whatever is at `name` unless both it and the new entry are
    /// directories. Returns whether an existing directory was kept.
    fn clear_target(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        new_is_dir: bool,
    ) -> EResult<bool> {
        match stat::fstatat(Some(dir.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Err(Errno::ENOENT) => Ok(false),
            Err(e) => Err(e.into()),
            Ok(st) => {
                let is_dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
                if is_dir && new_is_dir {
                    return Ok(true);
                }
                if is_dir {
                    self.cache = None;
                }
                remove_entry(dir, name)?;
                Ok(false)
            }
        }
    }

    /// Opens the parent directory of an entry, creating missing directories
    /// (0755, root) as tar extractors do.
    fn open_parent(&mut self, rel: &Path) -> EResult<std::rc::Rc<OwnedFd>> {
        if let Some((p, fd)) = &self.cache {
            if p == rel {
                return Ok(std::rc::Rc::clone(fd));
            }
        }
        let fd = match sys::open_beneath(
            self.root.as_fd(),
            dot(rel),
            OFlag::O_PATH | OFlag::O_DIRECTORY,
        ) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => self.create_dirs(rel)?,
            Err(e) => return Err(map_resolve(e)),
        };
        let fd = std::rc::Rc::new(fd);
        self.cache = Some((rel.to_owned(), std::rc::Rc::clone(&fd)));
        Ok(fd)
    }

    fn open_existing(&self, rel: &Path) -> EResult<OwnedFd> {
        sys::open_beneath(
            self.root.as_fd(),
            dot(rel),
            OFlag::O_PATH | OFlag::O_DIRECTORY,
        )
        .map_err(map_resolve)
    }

    fn create_dirs(&mut self, rel: &Path) -> EResult<OwnedFd> {
        let mut cur: Option<OwnedFd> = None;
        let mut sofar = PathBuf::new();
        for comp in rel.iter() {
            sofar.push(comp);
            let base = match &cur {
                Some(fd) => fd.as_fd(),
                None => self.root.as_fd(),
            };
            let next = match sys::open_beneath(
                base,
                Path::new(comp),
                OFlag::O_PATH | OFlag::O_DIRECTORY,
            ) {
                Ok(fd) => fd,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                    match stat::mkdirat(
                        Some(base.as_raw_fd()),
                        comp,
                        Mode::from_bits_truncate(0o755),
                    ) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(e) => return Err(e.into()),
                    }
                    if self.whiteouts == Whiteouts::Delete {
                        self.written.insert(sofar.clone());
                    }
                    sys::open_beneath(base, Path::new(comp), OFlag::O_PATH | OFlag::O_DIRECTORY)
                        .map_err(map_resolve)?
                }
                Err(e) => return Err(map_resolve(e)),
            };
            cur = Some(next);
        }
        match cur {
            Some(fd) => Ok(fd),
            None => Ok(sys::open_beneath(
                self.root.as_fd(),
                Path::new("."),
                OFlag::O_PATH | OFlag::O_DIRECTORY,
            )?),
        }
    }

    /// Sets directories' times, deepest last-written first, now that nothing
    /// more is written into them.
    fn finish_dirs(&mut self) -> io::Result<()> {
        self.cache = None;
        // A whiteout inside an opaque directory hides nothing more, but
        // overlayfs would list it when reading a directory that only one
        // layer provides: drop it.
        for dir in std::mem::take(&mut self.opaque_dirs) {
            let Ok(fd) = sys::open_beneath(
                self.root.as_fd(),
                dot(&dir),
                OFlag::O_RDONLY | OFlag::O_DIRECTORY,
            ) else {
                continue;
            };
            let p = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
            for e in std::fs::read_dir(&p)? {
                let e = e?;
                if e.metadata()
                    .map(|m| crate::node::is_whiteout(&m))
                    .unwrap_or(false)
                {
                    unistd::unlinkat(
                        Some(fd.as_raw_fd()),
                        &e.file_name()[..],
                        UnlinkatFlags::NoRemoveDir,
                    )?;
                }
            }
        }
        for (path, mtime) in self.dir_times.iter().rev() {
            match sys::open_beneath(
                self.root.as_fd(),
                dot(path),
                OFlag::O_RDONLY | OFlag::O_DIRECTORY,
            ) {
                Ok(fd) => stat::futimens(fd.as_raw_fd(), mtime, mtime)?,
                // Replaced or deleted by a later entry.
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::ENOENT) | Some(libc::ENOTDIR) | Some(libc::ELOOP)
                    ) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

fn dot(p: &Path) -> &Path {
    if p.as_os_str().is_empty() {
        Path::new(".")
    } else {
        p
    }
}

fn map_resolve(e: io::Error) -> EntryError {
    match e.raw_os_error() {
        Some(libc::ELOOP) => EntryError::Unsafe("a parent directory is a symlink".to_owned()),
        Some(libc::EXDEV) => EntryError::Unsafe("path leaves the layer".to_owned()),
        Some(libc::ENOTDIR) => EntryError::Unsafe("a parent is not a directory".to_owned()),
        _ => EntryError::Io(e),
    }
}

fn set_owner_mode(fd: BorrowedFd<'_>, header: &tar::Header) -> EResult<()> {
    let f = sys::open_beneath(fd, Path::new("."), OFlag::O_RDONLY | OFlag::O_DIRECTORY)?;
    unistd::fchown(
        f.as_raw_fd(),
        Some(Uid::from_raw(header.uid()? as u32)),
        Some(Gid::from_raw(header.gid()? as u32)),
    )?;
    stat::fchmod(
        f.as_raw_fd(),
        Mode::from_bits_truncate(header.mode()? & 0o7777),
    )?;
    Ok(())
}

/// Removes `name` in `dir` (a whole tree if it is a directory), never following symlinks.
pub(crate) fn remove_entry(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    match unistd::unlinkat(Some(dir.as_raw_fd()), name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) => Ok(()),
        Err(Errno::EISDIR) => std::fs::remove_dir_all(proc_path(dir, name)),
        Err(e) => Err(e.into()),
    }
}
