//! Paths inside a container as `cp` sees them: its root filesystem with its
//! volumes and bind mounts over it, whether it runs or not. A path is
//! resolved one component at a time, each opened relative to its
//! directory's descriptor with `O_PATH | O_NOFOLLOW`; a symlink is read and
//! its target resolved the same way from the container's `/` (never the
//! host's), `..` goes back up the container path (out of a volume into the
//! directory it is mounted on, never above `/`), and a component whose
//! container path is a mount's destination continues in the mount's source.
//! So a symlink planted in a volume or in the rootfs leads only to places
//! the container itself sees.

use crate::node::{self, Kind};
use crate::sys;
use nix::fcntl::OFlag;
use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

/// A container's volume or bind mount: what it sees at `destination` is the
/// host's `source`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSource {
    pub destination: PathBuf,
    pub source: PathBuf,
    pub read_only: bool,
}

/// Linux's limit on symlinks followed in one lookup.
const MAX_LINKS: usize = 40;

/// What a path names: the entry `name` in the directory `parent` (`.` when
/// it is the directory itself: `/`, or a mount's root).
pub(crate) struct Found {
    pub parent: OwnedFd,
    pub name: OsString,
    /// The container path reached, symlinks resolved.
    pub path: PathBuf,
    /// Whether the entry is in (or is) a read-only mount.
    pub read_only: bool,
}

/// The container's root directory and its mounts.
pub(crate) struct View {
    pub root: OwnedFd,
    pub mounts: Vec<MountSource>,
}

struct Step {
    name: OsString,
    fd: OwnedFd,
    read_only: bool,
}

pub(crate) fn clean(p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

impl View {
    /// The view of `root` with `mounts`, each destination resolved as the
    /// runtime mounts it: through the symlinks of the rootfs and of the
    /// mounts before it (`-v v:/var/run` over a `/var/run -> /run` is seen
    /// at `/run`).
    pub fn new(root: OwnedFd, mounts: &[MountSource]) -> View {
        let mut view = View {
            root,
            mounts: Vec::new(),
        };
        for m in mounts {
            let mut m = m.clone();
            let dest = clean(&m.destination);
            m.destination = match view.resolve(&dest, true) {
                Ok(found) => found.path,
                // A mount point the runtime has not made yet.
                Err(_) => match (dest.parent(), dest.file_name()) {
                    (Some(parent), Some(n)) => view
                        .resolve(parent, true)
                        .map(|f| f.path.join(n))
                        .unwrap_or(dest),
                    _ => dest,
                },
            };
            view.mounts.push(m);
        }
        view
    }

    /// The mount whose destination is container path `p` (the last one
    /// given wins, as the later mount covers the earlier).
    fn mount_at(&self, p: &Path) -> Option<&MountSource> {
        self.mounts
            .iter()
            .rev()
            .find(|m| clean(&m.destination) == p)
    }

    /// Whether a mount lies strictly below container path `p`.
    pub fn mounts_below(&self, p: &Path) -> bool {
        self.mounts.iter().any(|m| {
            let d = clean(&m.destination);
            d != p && d.starts_with(p)
        })
    }

    /// A mount's root, opened on the host (its source is berth's volume
    /// directory or the path the user bound, symlinks there resolved as
    /// the mount itself resolved them): a directory as itself (`.`), a file
    /// as its name in its directory.
    pub(crate) fn open_mount(m: &MountSource) -> io::Result<(OwnedFd, OsString)> {
        let src = std::fs::canonicalize(&m.source)?;
        let open = |p: &Path| {
            std::fs::File::options()
                .read(true)
                .custom_flags(libc::O_PATH)
                .open(p)
                .map(OwnedFd::from)
        };
        if src.is_dir() {
            return Ok((open(&src)?, OsString::from(".")));
        }
        match (src.parent(), src.file_name()) {
            (Some(dir), Some(name)) => Ok((open(dir)?, name.to_owned())),
            _ => Err(io::Error::from_raw_os_error(libc::ENOTDIR)),
        }
    }

    /// Resolves container path `path`; the last component is followed if it
    /// is a symlink only when `follow_last`.
    pub fn resolve(&self, path: &Path, follow_last: bool) -> io::Result<Found> {
        let mut todo: VecDeque<OsString> = VecDeque::new();
        push_front(&mut todo, path);
        let mut stack: Vec<Step> = Vec::new();
        let mut links = 0;
        let here = |stack: &[Step]| -> PathBuf {
            let mut p = PathBuf::from("/");
            for s in stack {
                p.push(&s.name);
            }
            p
        };
        while let Some(c) = todo.pop_front() {
            if c == ".." {
                stack.pop();
                continue;
            }
            let last = todo.is_empty();
            let mut cpath = here(&stack);
            cpath.push(&c);
            let read_only = stack.last().is_some_and(|s| s.read_only);
            if let Some(m) = self.mount_at(&cpath) {
                let (fd, name) = Self::open_mount(m)?;
                if last {
                    return Ok(Found {
                        parent: fd,
                        name,
                        path: cpath,
                        read_only: m.read_only,
                    });
                }
                if name != "." {
                    return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
                }
                stack.push(Step {
                    name: c,
                    fd,
                    read_only: m.read_only,
                });
                continue;
            }
            let dir: BorrowedFd<'_> = match stack.last() {
                Some(s) => s.fd.as_fd(),
                None => self.root.as_fd(),
            };
            let fd = sys::open_at(dir, Path::new(&c), OFlag::O_PATH, 0)?;
            let st = nix::sys::stat::fstat(fd.as_raw_fd())?;
            let kind = node::kind_of(&st);
            if kind == Kind::Symlink && (!last || follow_last) {
                links += 1;
                if links > MAX_LINKS {
                    return Err(io::Error::from_raw_os_error(libc::ELOOP));
                }
                let target = PathBuf::from(nix::fcntl::readlinkat(Some(fd.as_raw_fd()), "")?);
                if target.is_absolute() {
                    stack.clear();
                }
                push_front(&mut todo, &target);
                continue;
            }
            if last {
                return Ok(Found {
                    parent: dir.try_clone_to_owned()?,
                    name: c,
                    path: cpath,
                    read_only,
                });
            }
            if kind != Kind::Dir {
                return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
            }
            stack.push(Step {
                name: c,
                fd,
                read_only,
            });
        }
        // The path ends at a directory already reached (`/`, `..`, or a
        // symlink to a directory that was followed).
        let path = here(&stack);
        let (fd, read_only) = match stack.last() {
            Some(s) => (s.fd.try_clone()?, s.read_only),
            None => (self.root.try_clone()?, false),
        };
        Ok(Found {
            parent: fd,
            name: OsString::from("."),
            path,
            read_only,
        })
    }
}

/// Puts `p`'s components (names and `..`) before what is left to resolve.
fn push_front(todo: &mut VecDeque<OsString>, p: &Path) {
    let comps: Vec<OsString> = node::walk_components(p).collect();
    for c in comps.into_iter().rev() {
        todo.push_front(c);
    }
}

impl Found {
    /// The entry itself, opened with `flags` (no symlink followed).
    pub fn open(&self, flags: OFlag) -> io::Result<OwnedFd> {
        sys::open_at(self.parent.as_fd(), Path::new(&self.name), flags, 0)
    }

    pub fn name(&self) -> &OsStr {
        &self.name
    }
}

/// [`diff::write_tree`](crate::diff::write_tree) for a directory below which
/// mounts lie: an entry at a mount's destination is the mount's root (a
/// volume's contents, not the empty directory under it).
pub(crate) fn write_tree<W: std::io::Write>(
    view: &View,
    tw: &mut crate::diff::TarWriter<W>,
    dir: BorrowedFd<'_>,
    rel: &Path,
    cpath: &Path,
) -> io::Result<()> {
    if !view.mounts_below(cpath) {
        return crate::diff::write_tree(tw, dir, rel);
    }
    let mut names = node::list(dir)?;
    // A mount point a container that never ran does not have yet.
    for m in &view.mounts {
        let d = clean(&m.destination);
        if let (Some(parent), Some(n)) = (d.parent(), d.file_name()) {
            if parent == cpath {
                names.insert(n.to_owned());
            }
        }
    }
    for name in names {
        let r = rel.join(&name);
        let c = cpath.join(&name);
        let res = match view.mount_at(&c) {
            Some(m) => View::open_mount(m).and_then(|(fd, n)| tw.entry(&r, fd.as_fd(), &n)),
            None => tw.entry(&r, dir, &name),
        };
        match res {
            Ok(Some(sub)) => write_tree(view, tw, sub.as_fd(), &r, &c)?,
            Ok(None) => {}
            Err(e) if node::vanished(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Where an entry of a tar unpacked at container path `top` belongs: the
/// index of the deepest region (a container path) holding it, and its path
/// below that region's root (empty for the root itself).
fn region_of(regions: &[PathBuf], top: &Path, rel: &Path) -> Option<(usize, PathBuf)> {
    let cpath = clean(&top.join(rel));
    let (i, root) = regions
        .iter()
        .enumerate()
        .filter(|(_, r)| cpath.starts_with(r))
        .max_by_key(|(_, r)| r.components().count())?;
    cpath
        .strip_prefix(root)
        .ok()
        .map(|sub| (i, sub.to_path_buf()))
}

/// Splits the tar `spool` (to be unpacked at container path `top`) into one
/// tar per region: entries in a region (and not in a deeper one) with their
/// paths made relative to its root. A region's root entry itself is left
/// out (a volume keeps its own owner and mode), as is a hard link to
/// another region.
pub(crate) fn split_tar(
    spool: &mut std::fs::File,
    top: &Path,
    regions: &[PathBuf],
) -> io::Result<Vec<Option<std::fs::File>>> {
    use std::io::{Seek, SeekFrom};
    spool.seek(SeekFrom::Start(0))?;
    let mut builders: Vec<Option<tar::Builder<std::fs::File>>> =
        regions.iter().map(|_| None).collect();
    let mut archive = tar::Archive::new(&mut *spool);
    for e in archive.entries()? {
        let mut e = e?;
        let rel = e.path()?.into_owned();
        let Some((i, sub)) = region_of(regions, top, &rel) else {
            continue;
        };
        if sub.as_os_str().is_empty() {
            continue;
        }
        let b = match &mut builders[i] {
            Some(b) => b,
            slot => slot.insert(tar::Builder::new(tempfile::tempfile()?)),
        };
        let mut h = e.header().clone();
        match h.entry_type() {
            tar::EntryType::Symlink => {
                let target = e.link_name()?.map(|t| t.into_owned()).unwrap_or_default();
                b.append_link(&mut h, &sub, &target)?;
            }
            tar::EntryType::Link => {
                let target = e.link_name()?.map(|t| t.into_owned()).unwrap_or_default();
                match region_of(regions, top, &target) {
                    Some((j, t)) if j == i && !t.as_os_str().is_empty() => {
                        b.append_link(&mut h, &sub, &t)?
                    }
                    _ => continue,
                }
            }
            _ => b.append_data(&mut h, &sub, &mut e)?,
        }
    }
    builders
        .into_iter()
        .map(|b| {
            b.map(|b| {
                let mut f = b.into_inner()?;
                f.seek(SeekFrom::Start(0))?;
                Ok(f)
            })
            .transpose()
        })
        .collect()
}
