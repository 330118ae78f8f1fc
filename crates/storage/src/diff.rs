//! What a container changed, and writing it (or a whole tree) as a layer tar.
//!
//! The "old" side is the image as the container saw it when created: a list of
//! directories in priority order (the init layer, then the image layers top
//! first). With overlay semantics a whiteout (0/0 character device) hides the
//! name below it and an opaque directory hides everything below it.
//! The "new" side is either the overlay upper directory (a delta: what is
//! absent did not change) or, for vfs, the container's full rootfs.

use crate::node::{self, is_whiteout, stat_is_whiteout, Kind, Node};
use crate::sys;
use berth_digest::{Digest, HashingWriter};
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::FileStat;
use std::collections::{BTreeSet, HashMap};
use std::ffi::{OsStr, OsString};
use std::fs::{self, Metadata};
use std::io::{self, BufWriter, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Files of the init layer: written per container, never reported nor committed.
pub(crate) const INIT_FILES: [&str; 3] = ["etc/hostname", "etc/hosts", "etc/resolv.conf"];

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChangeKind {
    Added,
    Changed,
    Deleted,
}

impl ChangeKind {
    /// `A`, `C` or `D`, as `docker diff` prints them.
    pub fn letter(self) -> char {
        match self {
            ChangeKind::Added => 'A',
            ChangeKind::Changed => 'C',
            ChangeKind::Deleted => 'D',
        }
    }
}

/// One entry of `docker diff`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Change {
    pub kind: ChangeKind,
    /// Absolute path in the container, e.g. `/etc/passwd`.
    pub path: String,
}

pub(crate) struct DiffEntry {
    pub rel: PathBuf,
    pub kind: ChangeKind,
    /// A directory: it is opaque (hides what the image had below it).
    /// Deleted: implied by an opaque parent, so no whiteout of its own.
    pub opaque: bool,
}

fn is_opaque(p: &Path) -> bool {
    matches!(xattr::get(p, node::opaque_xattr()), Ok(Some(v)) if v == b"y")
}

fn lstat(p: &Path) -> Option<Metadata> {
    fs::symlink_metadata(p).ok()
}

/// The image as the container saw it.
pub(crate) struct OldView {
    pub overlay: bool,
}

impl OldView {
    /// The entry `name` among `dirs` (all views of one directory, in priority order).
    fn lookup(&self, dirs: &[PathBuf], name: &OsStr) -> Option<Metadata> {
        for d in dirs {
            if let Some(m) = lstat(&d.join(name)) {
                if self.overlay && is_whiteout(&m) {
                    return None;
                }
                return Some(m);
            }
        }
        None
    }

    /// The entry at the relative path `rel` (several components).
    pub fn lookup_path(&self, dirs: &[PathBuf], rel: &Path) -> Option<Metadata> {
        let mut dirs = dirs.to_vec();
        let comps: Vec<&OsStr> = rel.iter().collect();
        let (last, parents) = comps.split_last()?;
        for c in parents {
            dirs = self.subdirs(&dirs, c);
        }
        self.lookup(&dirs, last)
    }

    /// The views of directory `name` among `dirs` that contribute to it.
    fn subdirs(&self, dirs: &[PathBuf], name: &OsStr) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for d in dirs {
            let p = d.join(name);
            match lstat(&p) {
                None => continue,
                Some(m) if m.is_dir() => {
                    let opaque = self.overlay && is_opaque(&p);
                    out.push(p);
                    if opaque {
                        break;
                    }
                }
                Some(_) => break,
            }
        }
        out
    }

    /// Names visible in the directory made of `dirs`.
    fn children(&self, dirs: &[PathBuf]) -> io::Result<BTreeSet<OsString>> {
        let mut seen = BTreeSet::new();
        let mut hidden = BTreeSet::new();
        for d in dirs {
            for e in fs::read_dir(d)? {
                let e = e?;
                let name = e.file_name();
                if hidden.contains(&name) || seen.contains(&name) {
                    continue;
                }
                if self.overlay && e.metadata().map(|m| is_whiteout(&m)).unwrap_or(false) {
                    hidden.insert(name);
                } else {
                    seen.insert(name);
                }
            }
        }
        Ok(seen)
    }
}

fn excluded(rel: &Path) -> bool {
    INIT_FILES.iter().any(|f| rel == Path::new(f))
}

fn meta_differs(n: &FileStat, o: &Metadata) -> bool {
    n.st_mode != o.mode() || n.st_uid != o.uid() || n.st_gid != o.gid()
}

fn file_differs(
    n: &FileStat,
    new_link: Option<PathBuf>,
    old_path: Option<&Path>,
    o: &Metadata,
) -> bool {
    if meta_differs(n, o)
        || n.st_size.max(0) as u64 != o.len()
        || n.st_mtime != o.mtime()
        || n.st_mtime_nsec != o.mtime_nsec()
    {
        return true;
    }
    let kind = node::kind_of(n);
    if matches!(kind, Kind::Char | Kind::Block) && n.st_rdev != o.rdev() {
        return true;
    }
    if kind == Kind::Symlink {
        if let Some(op) = old_path {
            return new_link != fs::read_link(op).ok();
        }
    }
    false
}

/// `name` in the directory held by `dir`, not followed; None if it is gone.
fn lstat_at(dir: BorrowedFd<'_>, name: &OsStr) -> Option<FileStat> {
    nix::sys::stat::fstatat(Some(dir.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW).ok()
}

/// Whether `name` in `dir` is an opaque directory (the xattr read without following it).
fn is_opaque_at(dir: BorrowedFd<'_>, name: &OsStr) -> bool {
    matches!(xattr::get(node::at_path(dir, name), node::opaque_xattr()), Ok(Some(v)) if v == b"y")
}

/// Opens the directory `name` in `dir` for walking it; None when it is no
/// longer a directory (changed under the walk).
fn open_subdir(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<Option<OwnedFd>> {
    match sys::open_at(
        dir,
        Path::new(name),
        OFlag::O_RDONLY | OFlag::O_DIRECTORY,
        0,
    ) {
        Ok(fd) => Ok(Some(fd)),
        Err(e) if node::vanished(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Walks the changes of the directory held by `new` against `old_dirs`.
/// `full`: `new` is a whole tree (vfs), so a name absent from it was deleted.
/// The new side may be changing (a running container's): every entry is
/// looked at through its directory's descriptor, never followed.
pub(crate) fn walk(
    view: &OldView,
    new: BorrowedFd<'_>,
    old_dirs: &[PathBuf],
    full: bool,
    rel: &Path,
    out: &mut Vec<DiffEntry>,
) -> io::Result<()> {
    let new_names = node::list(new)?;
    let mut names = new_names.clone();
    if full {
        names.extend(view.children(old_dirs)?);
    }
    for name in names {
        let r = rel.join(&name);
        if excluded(&r) {
            continue;
        }
        let n = if new_names.contains(&name) {
            lstat_at(new, &name)
        } else {
            None
        };
        let o = view.lookup(old_dirs, &name);
        match (n, o) {
            (None, None) => {}
            (None, Some(_)) => out.push(DiffEntry {
                rel: r,
                kind: ChangeKind::Deleted,
                opaque: false,
            }),
            (Some(n), o) if !full && stat_is_whiteout(&n) => {
                if o.is_some() {
                    out.push(DiffEntry {
                        rel: r,
                        kind: ChangeKind::Deleted,
                        opaque: false,
                    });
                }
            }
            (Some(n), None) => {
                let is_dir = node::kind_of(&n) == Kind::Dir;
                let opaque = !full && is_dir && is_opaque_at(new, &name);
                out.push(DiffEntry {
                    rel: r.clone(),
                    kind: ChangeKind::Added,
                    opaque,
                });
                if is_dir {
                    if let Some(sub) = open_subdir(new, &name)? {
                        walk(view, sub.as_fd(), &[], full, &r, out)?;
                    }
                }
            }
            (Some(n), Some(o)) => {
                if node::kind_of(&n) == Kind::Dir {
                    let Some(sub_fd) = open_subdir(new, &name)? else {
                        continue;
                    };
                    let opaque = !full && is_opaque_at(new, &name);
                    let sub_old = if o.is_dir() && !opaque {
                        view.subdirs(old_dirs, &name)
                    } else {
                        Vec::new()
                    };
                    let mut sub = Vec::new();
                    walk(view, sub_fd.as_fd(), &sub_old, full, &r, &mut sub)?;
                    if opaque && o.is_dir() {
                        // Everything the image had there and the container lacks is gone.
                        let kept = node::list(sub_fd.as_fd())?;
                        for gone in view.children(&view.subdirs(old_dirs, &name))? {
                            if !kept.contains(&gone) && !excluded(&r.join(&gone)) {
                                // Implied by the opaque directory: no whiteout is written.
                                sub.push(DiffEntry {
                                    rel: r.join(&gone),
                                    kind: ChangeKind::Deleted,
                                    opaque: true,
                                });
                            }
                        }
                        sub.sort_by(|a, b| a.rel.cmp(&b.rel));
                    }
                    if !sub.is_empty() || !o.is_dir() || opaque || meta_differs(&n, &o) {
                        out.push(DiffEntry {
                            rel: r,
                            kind: ChangeKind::Changed,
                            opaque,
                        });
                        out.append(&mut sub);
                    }
                } else {
                    let changed = if full {
                        let op = old_dirs
                            .iter()
                            .map(|d| d.join(&name))
                            .find(|p| lstat(p).is_some());
                        let new_link = if node::kind_of(&n) == Kind::Symlink {
                            nix::fcntl::readlinkat(Some(new.as_raw_fd()), name.as_os_str())
                                .ok()
                                .map(PathBuf::from)
                        } else {
                            None
                        };
                        (n.st_mode & libc::S_IFMT) != (o.mode() & libc::S_IFMT)
                            || file_differs(&n, new_link, op.as_deref(), &o)
                    } else {
                        true
                    };
                    if changed {
                        out.push(DiffEntry {
                            rel: r,
                            kind: ChangeKind::Changed,
                            opaque: false,
                        });
                    }
                }
            }
        }
    }
    Ok(())
}

/// Writes reproducible layer tars: entries in the order given, ustar headers,
/// numeric owners only, mtimes in whole seconds and no atime/ctime, PAX
/// records only for long names, big ids and xattrs.
pub(crate) struct TarWriter<W: Write> {
    out: BufWriter<HashingWriter<W>>,
    links: HashMap<(u64, u64), PathBuf>,
    pub unpacked: u64,
    /// Mtimes later than this are written as this (SOURCE_DATE_EPOCH).
    pub clamp_mtime: Option<u64>,
}

impl<W: Write> TarWriter<W> {
    pub fn new(out: W) -> Self {
        TarWriter {
            out: BufWriter::with_capacity(1 << 20, HashingWriter::new(out)),
            links: HashMap::new(),
            unpacked: 0,
            clamp_mtime: None,
        }
    }

    /// The end-of-archive blocks; returns the digest and length of the tar.
    pub fn finish(mut self) -> io::Result<(Digest, u64)> {
        self.out.write_all(&[0u8; 1024])?;
        let hw = self.out.into_inner().map_err(|e| e.into_error())?;
        let (mut w, d, n) = hw.finish();
        w.flush()?;
        Ok((d, n))
    }

    /// A whiteout for `rel`.
    pub fn whiteout(&mut self, rel: &Path) -> io::Result<()> {
        let name = rel.file_name().unwrap_or_default();
        let mut wh = OsString::from(".wh.");
        wh.push(name);
        let p = rel.parent().unwrap_or(Path::new("")).join(wh);
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(0);
        h.set_mtime(0);
        self.header(&p, None, &mut h, &[])?;
        Ok(())
    }

    /// The opaque marker inside directory `rel`.
    pub fn opaque(&mut self, rel: &Path) -> io::Result<()> {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(0);
        h.set_mtime(0);
        self.header(&rel.join(".wh..wh..opq"), None, &mut h, &[])
    }

    /// The entry `name` of the directory held by `dir`, as tar entry `rel`.
    /// It is opened without following it and its type is taken from the
    /// opened descriptor, so a symlink is written as a symlink whatever is
    /// swapped in meanwhile. Returns a directory's descriptor, to walk it.
    pub fn entry(
        &mut self,
        rel: &Path,
        dir: BorrowedFd<'_>,
        name: &OsStr,
    ) -> io::Result<Option<OwnedFd>> {
        let node = Node::open(dir, name)?;
        let m = &node.st;
        let kind = node.kind();
        // Only these are opened for reading; the descriptor is the inode stat'ed.
        let (file, dirfd) = match kind {
            Kind::File => (Some(node.open_file()?), None),
            Kind::Dir => (None, Some(node.open_dir()?)),
            _ => (None, None),
        };
        let mut h = tar::Header::new_ustar();
        h.set_mode(m.st_mode & 0o7777);
        let mtime = m.st_mtime.max(0) as u64;
        h.set_mtime(self.clamp_mtime.map_or(mtime, |c| mtime.min(c)));
        h.set_size(0);
        let xattrs = match (&file, &dirfd) {
            (Some(f), _) => node::fd_xattrs(f.as_fd()),
            (_, Some(d)) => node::fd_xattrs(d.as_fd()),
            _ => node::xattrs(dir, name),
        }?;
        let mut records: Vec<(Vec<u8>, Vec<u8>)> = xattrs
            .into_iter()
            .map(|(k, v)| ([b"SCHILY.xattr.".as_slice(), &k].concat(), v))
            .collect();
        let (uid, gid) = (u64::from(m.st_uid), u64::from(m.st_gid));
        const MAX_OCTAL: u64 = 0o7777777;
        if uid > MAX_OCTAL {
            records.push((b"uid".to_vec(), uid.to_string().into_bytes()));
        }
        if gid > MAX_OCTAL {
            records.push((b"gid".to_vec(), gid.to_string().into_bytes()));
        }
        h.set_uid(uid.min(MAX_OCTAL));
        h.set_gid(gid.min(MAX_OCTAL));
        let size = m.st_size.max(0) as u64;
        let mut link = None;
        match kind {
            Kind::Dir => h.set_entry_type(tar::EntryType::Directory),
            Kind::Symlink => {
                h.set_entry_type(tar::EntryType::Symlink);
                link = Some(node.read_link()?);
            }
            Kind::File => {
                if m.st_nlink > 1 {
                    let key = (m.st_dev, m.st_ino);
                    if let Some(first) = self.links.get(&key) {
                        h.set_entry_type(tar::EntryType::Link);
                        let first = first.clone();
                        self.header(rel, Some(&first), &mut h, &records)?;
                        return Ok(None);
                    }
                    self.links.insert(key, rel.to_owned());
                }
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(size);
            }
            // Sockets cannot be archived; skip them as tar does.
            Kind::Socket => return Ok(None),
            Kind::Char | Kind::Block | Kind::Fifo => {
                h.set_entry_type(match kind {
                    Kind::Char => tar::EntryType::Char,
                    Kind::Block => tar::EntryType::Block,
                    _ => tar::EntryType::Fifo,
                });
                h.set_device_major(nix::sys::stat::major(m.st_rdev) as u32)?;
                h.set_device_minor(nix::sys::stat::minor(m.st_rdev) as u32)?;
            }
        }
        self.header(rel, link.as_deref(), &mut h, &records)?;
        if let Some(f) = file {
            // The file may change while it is read: write exactly the size
            // announced, padding with zeros if it shrank.
            let mut r = f.take(size).chain(io::repeat(0)).take(size);
            io::copy(&mut r, &mut self.out)?;
            let pad = (512 - (size % 512) as usize) % 512;
            self.out.write_all(&[0u8; 512][..pad])?;
            self.unpacked += size;
        }
        Ok(dirfd)
    }

    /// Writes `h` for `rel` (a directory gets a trailing `/`), with a PAX
    /// header first when the name, link target or records need one.
    fn header(
        &mut self,
        rel: &Path,
        link: Option<&Path>,
        h: &mut tar::Header,
        records: &[(Vec<u8>, Vec<u8>)],
    ) -> io::Result<()> {
        let mut name = rel.as_os_str().as_bytes().to_vec();
        if h.entry_type().is_dir() {
            name.push(b'/');
        }
        let mut pax: Vec<(Vec<u8>, Vec<u8>)> = records.to_vec();
        if set_ustar_path(h, &name).is_err() {
            pax.push((b"path".to_vec(), name.clone()));
            let short: Vec<u8> = name.iter().rev().take(99).rev().copied().collect();
            let short = String::from_utf8_lossy(&short).replace('/', "_");
            h.set_path(short.trim_start_matches('.'))?;
        }
        if let Some(l) = link {
            let lb = l.as_os_str().as_bytes();
            if lb.len() > 100 {
                pax.push((b"linkpath".to_vec(), lb.to_vec()));
                h.as_old_mut().linkname.fill(0);
            } else {
                let field = &mut h.as_old_mut().linkname;
                field.fill(0);
                field[..lb.len()].copy_from_slice(lb);
            }
        }
        if !pax.is_empty() {
            pax.sort();
            let mut body = Vec::new();
            for (k, v) in &pax {
                body.extend_from_slice(&pax_record(k, v));
            }
            let mut ph = tar::Header::new_ustar();
            ph.set_entry_type(tar::EntryType::XHeader);
            ph.set_path("PaxHeader")?;
            ph.set_mode(0o644);
            ph.set_mtime(0);
            ph.set_size(body.len() as u64);
            ph.set_cksum();
            self.out.write_all(ph.as_bytes())?;
            self.out.write_all(&body)?;
            let pad = (512 - body.len() % 512) % 512;
            self.out.write_all(&[0u8; 512][..pad])?;
        }
        h.set_cksum();
        self.out.write_all(h.as_bytes())
    }
}

/// Puts `name` in the ustar name (and prefix) fields, raw bytes; fails if it does not fit.
fn set_ustar_path(h: &mut tar::Header, name: &[u8]) -> Result<(), ()> {
    let ustar = h.as_ustar_mut().ok_or(())?;
    ustar.name.fill(0);
    ustar.prefix.fill(0);
    if name.len() <= 100 {
        ustar.name[..name.len()].copy_from_slice(name);
        return Ok(());
    }
    // Split at a '/' so that the prefix is at most 155 bytes and the name at most 100.
    let body = name.strip_suffix(b"/").unwrap_or(name);
    for (i, &b) in body.iter().enumerate().rev() {
        if b != b'/' {
            continue;
        }
        let (pre, rest) = (&name[..i], &name[i + 1..]);
        if rest.len() > 100 {
            return Err(());
        }
        if pre.len() <= 155 && !pre.is_empty() {
            ustar.prefix[..pre.len()].copy_from_slice(pre);
            ustar.name[..rest.len()].copy_from_slice(rest);
            return Ok(());
        }
    }
    Err(())
}

fn pax_record(k: &[u8], v: &[u8]) -> Vec<u8> {
    let base = k.len() + v.len() + 3;
    let mut len = base + 1;
    while base + len.to_string().len() != len {
        len = base + len.to_string().len();
    }
    let mut r = format!("{len} ").into_bytes();
    r.extend_from_slice(k);
    r.push(b'=');
    r.extend_from_slice(v);
    r.push(b'\n');
    r
}

/// Writes every entry of the directory held by `dir` (sorted, depth first,
/// names under `rel`), for `export` and `cp`. Each directory is read and
/// descended into through its own descriptor; an entry removed meanwhile is
/// skipped.
pub(crate) fn write_tree<W: Write>(
    tw: &mut TarWriter<W>,
    dir: BorrowedFd<'_>,
    rel: &Path,
) -> io::Result<()> {
    for name in node::list(dir)? {
        let r = rel.join(&name);
        match tw.entry(&r, dir, &name) {
            Ok(Some(sub)) => write_tree(tw, sub.as_fd(), &r)?,
            Ok(None) => {}
            Err(e) if node::vanished(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
