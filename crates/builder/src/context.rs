//! Files for COPY and ADD: finding sources (globs, `.dockerignore`),
//! their content digest for the cache, placing them under the
//! destination, and the tar stream that writes them into a layer.
//! Paths inside a root (the context, an image's rootfs) are resolved with
//! symlinks kept inside that root, and every file is read through
//! descriptors relative to the root's: a directory is walked through its
//! own descriptor, an entry opened without following it, and a file read
//! is reopened beneath the root with no symlink on the way
//! (`openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`), its type checked on
//! the opened descriptor. A file replaced by a symlink meanwhile fails the
//! copy; nothing outside the root is ever read.

use crate::ignore::{clean, match_component, Ignore};
use berth_digest::{Digest, Hasher};
use berth_storage::node::{self as fsnode, Kind as NodeKind, Node};
use nix::fcntl::{AtFlags, OFlag};
use std::collections::{BTreeMap, VecDeque};
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The directory `rel` beneath `root` (`""`: the root itself), with no
/// symlink and no `..` on the way.
fn open_dir_beneath(root: BorrowedFd<'_>, rel: &Path) -> io::Result<OwnedFd> {
    let p = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    fsnode::open_beneath(root, p, OFlag::O_PATH | OFlag::O_DIRECTORY)
}

/// The entry `rel` beneath `root`, not followed, with its parent's
/// descriptor; `""` is the root itself.
fn node_beneath(root: BorrowedFd<'_>, rel: &Path) -> io::Result<Node> {
    match rel.file_name() {
        None => Node::open(root, OsStr::new(".")),
        Some(name) => {
            let dir = open_dir_beneath(root, rel.parent().unwrap_or(Path::new("")))?;
            Node::open(dir.as_fd(), name)
        }
    }
}

/// Resolves `path` inside `root` as if `root` were `/`: symlinks are
/// followed (the last component's only with `follow_last`) but never lead
/// out of `root`. Returns the path relative to `root`; components that do
/// not exist are kept as written.
pub fn resolve_in_root(root: &Path, path: &Path, follow_last: bool) -> io::Result<PathBuf> {
    let fd: OwnedFd = fs::File::open(root)?.into();
    resolve_beneath(fd.as_fd(), path, follow_last)
}

/// [`resolve_in_root`] for the directory held by `root`: each component is
/// looked at (and a symlink read) through its parent's descriptor.
pub fn resolve_beneath(
    root: BorrowedFd<'_>,
    path: &Path,
    follow_last: bool,
) -> io::Result<PathBuf> {
    let mut done: Vec<OsString> = Vec::new();
    let mut todo: VecDeque<OsString> = fsnode::walk_components(path).collect();
    let mut links = 0;
    while let Some(c) = todo.pop_front() {
        if c == ".." {
            done.pop();
            continue;
        }
        let last = todo.is_empty();
        let parent: PathBuf = done.iter().collect();
        let found = open_dir_beneath(root, &parent).ok().and_then(|d| {
            nix::sys::stat::fstatat(
                Some(d.as_raw_fd()),
                c.as_os_str(),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .ok()
            .map(|st| (d, st))
        });
        match found {
            Some((d, st))
                if fsnode::kind_of(&st) == NodeKind::Symlink && (!last || follow_last) =>
            {
                links += 1;
                if links > 40 {
                    return Err(io::Error::other(format!(
                        "too many levels of symbolic links: {}",
                        path.display()
                    )));
                }
                let target =
                    PathBuf::from(nix::fcntl::readlinkat(Some(d.as_raw_fd()), c.as_os_str())?);
                if target.is_absolute() {
                    done.clear();
                }
                let mut front: Vec<OsString> = fsnode::walk_components(&target).collect();
                front.extend(todo.drain(..));
                todo = front.into();
            }
            _ => done.push(c),
        }
    }
    Ok(done.iter().collect())
}

/// Whether `s` has glob characters.
pub fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// A file of a tree, read only through the tree's root descriptor.
#[derive(Debug, Clone)]
pub struct TreeFile {
    root: Arc<OwnedFd>,
    /// Relative to the tree's root.
    pub rel: PathBuf,
    /// For messages and the digest cache's key.
    pub abs: PathBuf,
}

impl TreeFile {
    /// Opens the regular file beneath the root (no symlink, no `..` on
    /// the way, the last component not followed) and returns it with its
    /// metadata, both from the opened descriptor.
    pub fn open(&self) -> io::Result<(fs::File, fs::Metadata)> {
        let node = node_beneath(self.root.as_fd(), &self.rel)?;
        if node.kind() != NodeKind::File {
            return Err(io::Error::other(format!(
                "{}: not a regular file",
                self.abs.display()
            )));
        }
        let f = node.open_file()?;
        let m = f.metadata()?;
        Ok((f, m))
    }
}

/// What one entry of a copy is made from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A file, directory or symlink of a tree (the context or a mounted image).
    Path(TreeFile),
    /// Bytes (a heredoc).
    Bytes(Vec<u8>),
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub source: Source,
    /// Where it goes, relative to the image's root.
    pub dest: PathBuf,
    pub kind: Kind,
    pub mode: u32,
    pub mtime: i64,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink(PathBuf),
}

/// A tree to copy from: the build context (with its .dockerignore) or an
/// image's root filesystem, held by a descriptor of its root.
pub struct Tree<'a> {
    pub root: PathBuf,
    fd: Arc<OwnedFd>,
    pub ignore: Option<&'a Ignore>,
}

impl<'a> Tree<'a> {
    /// Opens the tree at `root` (a directory the user or the builder named).
    pub fn open(root: &Path, ignore: Option<&'a Ignore>) -> io::Result<Tree<'a>> {
        let fd: OwnedFd = fs::File::open(root)?.into();
        Ok(Tree {
            root: root.to_owned(),
            fd: Arc::new(fd),
            ignore,
        })
    }

    fn excluded(&self, rel: &str) -> bool {
        self.ignore.is_some_and(|i| i.excluded(rel))
    }

    /// The file `rel` of the tree (for reading it through the root's descriptor).
    pub fn file(&self, rel: &Path) -> TreeFile {
        TreeFile {
            root: Arc::clone(&self.fd),
            rel: rel.to_owned(),
            abs: self.root.join(rel),
        }
    }

    /// Relative paths (resolved inside the tree) that `src` names: itself,
    /// or every path matching it as a glob. Excluded paths do not exist.
    pub fn matches(&self, src: &str) -> io::Result<Vec<String>> {
        let cleaned = clean(src);
        if !has_glob(&cleaned) {
            let rel = resolve_beneath(self.fd.as_fd(), Path::new(&cleaned), true)?;
            let rel_s = rel.to_string_lossy().into_owned();
            let exists = node_beneath(self.fd.as_fd(), &rel).is_ok();
            if !exists || self.excluded(&rel_s) {
                return Ok(Vec::new());
            }
            return Ok(vec![rel_s]);
        }
        let parts: Vec<&str> = cleaned.split('/').collect();
        let mut out = Vec::new();
        self.glob(&parts, String::new(), &mut out)?;
        out.sort();
        Ok(out)
    }

    fn glob(&self, parts: &[&str], prefix: String, out: &mut Vec<String>) -> io::Result<()> {
        let Some((p, rest)) = parts.split_first() else {
            return Ok(());
        };
        let names = match open_dir_beneath(self.fd.as_fd(), Path::new(&prefix))
            .and_then(|d| fsnode::list(d.as_fd()))
        {
            Ok(names) => names,
            Err(_) => return Ok(()),
        };
        for n in names {
            let name = n.to_string_lossy();
            if !match_component(p, &name) {
                continue;
            }
            let rel = if prefix.is_empty() {
                name.into_owned()
            } else {
                format!("{prefix}/{name}")
            };
            if self.excluded(&rel) {
                continue;
            }
            if rest.is_empty() {
                out.push(rel);
            } else {
                self.glob(rest, rel, out)?;
            }
        }
        Ok(())
    }

    /// The entries copying `rel` to `dest` makes: a file or symlink as
    /// `dest`, a directory's contents (recursively) below `dest`.
    pub fn entries(&self, rel: &str, dest: &Path, out: &mut Vec<Entry>) -> io::Result<()> {
        let relp = Path::new(rel);
        let node = node_beneath(self.fd.as_fd(), relp)?;
        out.push(self.entry_of(relp, &node, dest.to_owned())?);
        if node.kind() == NodeKind::Dir {
            let dir = node.open_dir()?;
            self.walk(rel, relp, dir.as_fd(), dest, out)?;
        }
        Ok(())
    }

    /// The entries below the directory held by `dir` (`rel` in the tree).
    fn walk(
        &self,
        rel: &str,
        relp: &Path,
        dir: BorrowedFd<'_>,
        dest: &Path,
        out: &mut Vec<Entry>,
    ) -> io::Result<()> {
        for n in fsnode::list(dir)? {
            let crel = if rel.is_empty() {
                n.to_string_lossy().into_owned()
            } else {
                format!("{rel}/{}", n.to_string_lossy())
            };
            let crelp = relp.join(&n);
            let node = match Node::open(dir, &n) {
                Ok(node) => node,
                // Removed since the directory was read.
                Err(e) if e.raw_os_error() == Some(nix::libc::ENOENT) => continue,
                Err(e) => return Err(e),
            };
            let is_dir = node.kind() == NodeKind::Dir;
            if self.excluded(&crel) {
                // An exception may re-include something below.
                if is_dir && self.ignore.is_some_and(Ignore::has_exceptions) {
                    let sub = node.open_dir()?;
                    self.walk(&crel, &crelp, sub.as_fd(), &dest.join(&n), out)?;
                }
                continue;
            }
            let cdest = dest.join(&n);
            out.push(self.entry_of(&crelp, &node, cdest.clone())?);
            if is_dir {
                let sub = node.open_dir()?;
                self.walk(&crel, &crelp, sub.as_fd(), &cdest, out)?;
            }
        }
        Ok(())
    }

    fn entry_of(&self, rel: &Path, node: &Node, dest: PathBuf) -> io::Result<Entry> {
        let file = self.file(rel);
        let kind = match node.kind() {
            NodeKind::Dir => Kind::Dir,
            NodeKind::Symlink => Kind::Symlink(node.read_link()?),
            NodeKind::File => Kind::File,
            _ => {
                return Err(io::Error::other(format!(
                    "{}: only files, directories and symlinks can be copied",
                    file.abs.display()
                )))
            }
        };
        let st = &node.st;
        Ok(Entry {
            source: Source::Path(file),
            dest,
            size: if kind == Kind::File {
                st.st_size.max(0) as u64
            } else {
                0
            },
            kind,
            mode: st.st_mode & 0o7777,
            mtime: st.st_mtime,
        })
    }
}

/// The sha256 of what `r` reads.
pub fn hash_reader(r: &mut dyn Read) -> io::Result<Digest> {
    let mut h = Hasher::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok(h.finish());
        }
        h.update(&buf[..n]);
    }
}

/// The digest of what a copy writes: each entry's destination, kind, mode
/// and content (not mtimes, as Docker's cache ignores them). A file's
/// content digest comes from `file_digest` (which may remember it), given
/// the file's name, its metadata and the file opened through its tree.
pub fn digest_entries(
    entries: &[Entry],
    file_digest: &mut dyn FnMut(&Path, &fs::Metadata, &mut fs::File) -> io::Result<Digest>,
) -> io::Result<Digest> {
    let mut h = Hasher::new();
    for e in entries {
        h.update(e.dest.as_os_str().as_bytes());
        h.update(b"\0");
        match &e.kind {
            Kind::File => h.update(b"f"),
            Kind::Dir => h.update(b"d"),
            Kind::Symlink(t) => {
                h.update(b"l");
                h.update(t.as_os_str().as_bytes());
            }
        }
        h.update(format!(" {:o} {}\0", e.mode, e.size).as_bytes());
        if e.kind == Kind::File {
            match &e.source {
                Source::Bytes(b) => h.update(b),
                Source::Path(p) => {
                    let (mut f, m) = p.open()?;
                    h.update(file_digest(&p.abs, &m, &mut f)?.hex().as_bytes());
                }
            }
        }
    }
    Ok(h.finish())
}

/// Owner and mode overrides of a copy.
#[derive(Debug, Clone, Copy, Default)]
pub struct Meta {
    pub uid: u32,
    pub gid: u32,
    pub chmod: Option<u32>,
    /// SOURCE_DATE_EPOCH: later mtimes are written as this.
    pub clamp_mtime: Option<i64>,
}

/// Writes `entries` as a tar (names relative to the image's root) with
/// the owner and mode overrides. Sizes are as measured: a file that
/// changed since is padded or cut, never a broken archive.
pub fn write_tar(entries: &[Entry], meta: Meta, out: impl Write) -> io::Result<()> {
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_uid(u64::from(meta.uid));
        h.set_gid(u64::from(meta.gid));
        h.set_mode(meta.chmod.unwrap_or(e.mode));
        let mtime = match meta.clamp_mtime {
            Some(c) => e.mtime.min(c),
            None => e.mtime,
        };
        h.set_mtime(mtime.max(0) as u64);
        match &e.kind {
            Kind::Dir => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
                b.append_data(&mut h, &e.dest, io::empty())?;
            }
            Kind::Symlink(t) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                h.set_mode(0o777);
                b.append_link(&mut h, &e.dest, t)?;
            }
            Kind::File => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(e.size);
                match &e.source {
                    Source::Bytes(bytes) => b.append_data(&mut h, &e.dest, &bytes[..])?,
                    Source::Path(p) => {
                        let (f, _) = p.open()?;
                        let r = f.take(e.size).chain(io::repeat(0)).take(e.size);
                        b.append_data(&mut h, &e.dest, r)?
                    }
                }
            }
        }
    }
    b.into_inner()?.flush()
}

/// Looks up `--chown=USER[:GROUP]` in the image's /etc/passwd and
/// /etc/group (numbers need no lookup; a user alone gives the group of
/// the same number, or the user's primary group for a name).
pub fn resolve_chown(rootfs: &Path, spec: &str) -> Result<(u32, u32), String> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let read = |f: &str| -> BTreeMap<String, (u32, u32)> {
        // Through openat2 RESOLVE_IN_ROOT: no window between resolving
        // and reading for a symlink to swap in.
        let text = berth_storage::read_config_file(rootfs, f, 16 << 20);
        text.lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                let id = f.get(2)?.parse().ok()?;
                let gid = f.get(3).and_then(|g| g.parse().ok()).unwrap_or(id);
                Some((f[0].to_owned(), (id, gid)))
            })
            .collect()
    };
    let (uid, primary) = match user.parse::<u32>() {
        Ok(n) => (n, n),
        Err(_) => *read("/etc/passwd").get(user).ok_or_else(|| {
            format!("unable to find user {user}: no matching entries in passwd file")
        })?,
    };
    let gid = match group {
        None => primary,
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                read("/etc/group")
                    .get(g)
                    .ok_or_else(|| {
                        format!("unable to find group {g}: no matching entries in group file")
                    })?
                    .0
            }
        },
    };
    Ok((uid, gid))
}

/// A path as bytes for messages.
pub fn show(p: &Path) -> String {
    String::from_utf8_lossy(p.as_os_str().as_bytes()).into_owned()
}

/// Joins `rel` under `dir` for a heredoc or file name.
pub fn os(s: &str) -> OsString {
    OsString::from_vec(s.as_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn symlinks_stay_inside_the_root() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        fs::create_dir_all(r.join("usr/bin")).unwrap();
        std::os::unix::fs::symlink("/usr/bin", r.join("bin")).unwrap();
        std::os::unix::fs::symlink("../../../../etc", r.join("usr/up")).unwrap();
        std::os::unix::fs::symlink("loop", r.join("loop")).unwrap();
        assert_eq!(
            resolve_in_root(r, Path::new("/bin/x"), true).unwrap(),
            PathBuf::from("usr/bin/x")
        );
        assert_eq!(
            resolve_in_root(r, Path::new("/bin"), false).unwrap(),
            PathBuf::from("bin")
        );
        assert_eq!(
            resolve_in_root(r, Path::new("/usr/up/passwd"), true).unwrap(),
            PathBuf::from("etc/passwd")
        );
        assert_eq!(
            resolve_in_root(r, Path::new("../../a/./b"), true).unwrap(),
            PathBuf::from("a/b")
        );
        assert!(resolve_in_root(r, Path::new("/loop"), true).is_err());
    }

    #[test]
    fn globs_and_ignore_in_a_tree() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        for f in ["a.txt", "b.txt", "c.md", "sub/d.txt", "sub/e.log", "skip/x"] {
            let p = r.join(f);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, f).unwrap();
        }
        let ig = Ignore::parse("b.txt\nskip\nsub/*.log\n");
        let t = Tree::open(r, Some(&ig)).unwrap();
        assert_eq!(t.matches("*.txt").unwrap(), vec!["a.txt"]);
        assert_eq!(t.matches("*/*.txt").unwrap(), vec!["sub/d.txt"]);
        assert!(t.matches("b.txt").unwrap().is_empty());
        assert!(t.matches("nope").unwrap().is_empty());
        assert_eq!(t.matches("./sub/../c.md").unwrap(), vec!["c.md"]);
        let mut e = Vec::new();
        t.entries("", Path::new("app"), &mut e).unwrap();
        let names: Vec<String> = e.iter().map(|e| show(&e.dest)).collect();
        assert_eq!(
            names,
            vec!["app", "app/a.txt", "app/c.md", "app/sub", "app/sub/d.txt"]
        );
        let plain = &mut |_: &Path, _: &fs::Metadata, f: &mut fs::File| hash_reader(f);
        let d1 = digest_entries(&e, plain).unwrap();
        fs::write(r.join("c.md"), "changed").unwrap();
        let mut e2 = Vec::new();
        t.entries("", Path::new("app"), &mut e2).unwrap();
        assert_ne!(d1, digest_entries(&e2, plain).unwrap());
    }

    #[test]
    fn chown_lookup() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        fs::create_dir_all(r.join("etc")).unwrap();
        fs::write(
            r.join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nwww:x:33:34::/:/bin/false\n",
        )
        .unwrap();
        fs::write(r.join("etc/group"), "root:x:0:\nstaff:x:50:\n").unwrap();
        assert_eq!(resolve_chown(r, "www").unwrap(), (33, 34));
        assert_eq!(resolve_chown(r, "www:staff").unwrap(), (33, 50));
        assert_eq!(resolve_chown(r, "10").unwrap(), (10, 10));
        assert_eq!(resolve_chown(r, "10:7").unwrap(), (10, 7));
        assert!(resolve_chown(r, "nobody")
            .unwrap_err()
            .contains("unable to find user nobody"));
        assert!(resolve_chown(r, "0:nogroup").is_err());
    }
}
