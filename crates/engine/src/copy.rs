//! `berth cp`: files between a container's filesystem and the host (or a
//! tar stream on stdin/stdout), in either direction. Inside the container
//! every path is resolved as if its rootfs were `/`, through its volumes and
//! bind mounts (a path in a volume reads and writes the volume, running or
//! not), and entries are written without following symlinks (the storage
//! crate does both: no symlink leads out of the container's view).

use crate::error::{Context, EngineError, Object, Result};
use crate::Engine;
use berth_storage::MountSource;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// One side of `cp`.
#[derive(Debug, Clone, PartialEq)]
pub enum CopyEnd {
    /// `-`: a tar stream on stdin or stdout.
    Stream,
    Host(PathBuf),
    Container(String, PathBuf),
}

impl CopyEnd {
    /// Docker's rule: `NAME:PATH` is a container path unless the part before
    /// the colon holds a `/` (then it is a local path such as `./a:b`).
    pub fn parse(s: &str) -> CopyEnd {
        if s == "-" {
            return CopyEnd::Stream;
        }
        match s.split_once(':') {
            Some((name, path)) if !name.is_empty() && !name.contains('/') => {
                let p = if path.starts_with('/') {
                    PathBuf::from(path)
                } else {
                    Path::new("/").join(path)
                };
                CopyEnd::Container(name.to_owned(), p)
            }
            _ => CopyEnd::Host(PathBuf::from(s)),
        }
    }
}

impl Engine {
    pub fn copy(
        &self,
        from: &CopyEnd,
        to: &CopyEnd,
        stdin: &mut dyn Read,
        stdout: &mut dyn Write,
    ) -> Result<()> {
        match (from, to) {
            (CopyEnd::Container(name, path), CopyEnd::Stream) => {
                let c = self.container(name)?;
                let mounts = copy_mounts(&c);
                self.layers
                    .copy_out(c.id.as_str(), path, &mounts, stdout)
                    .map_err(cp_err(name))
            }
            (CopyEnd::Container(name, path), CopyEnd::Host(dest)) => {
                let c = self.container(name)?;
                self.copy_to_host(name, c.id.as_str(), &copy_mounts(&c), path, dest)
            }
            (CopyEnd::Stream, CopyEnd::Container(name, dir)) => {
                let c = self.container(name)?;
                let mounts = copy_mounts(&c);
                self.layers
                    .copy_in(c.id.as_str(), dir, &mounts, stdin)
                    .map_err(cp_err(name))
            }
            (CopyEnd::Host(src), CopyEnd::Container(name, dest)) => {
                let c = self.container(name)?;
                self.copy_from_host(name, c.id.as_str(), &copy_mounts(&c), src, dest)
            }
            _ => Err(EngineError::Invalid(
                "copying between containers, or between two local paths, is not supported: one side must be CONTAINER:PATH".into(),
            )),
        }
    }

    /// `path` in container `name` as `docker cp` stats it (the last
    /// component not followed), resolved through its volumes and binds.
    pub fn path_stat(&self, name: &str, path: &Path) -> Result<berth_storage::PathStat> {
        let c = self.container(name)?;
        self.layers
            .path_stat(c.id.as_str(), path, &copy_mounts(&c))
            .map_err(cp_err(name))
    }

    fn copy_to_host(
        &self,
        user: &str,
        id: &str,
        mounts: &[MountSource],
        path: &Path,
        dest: &Path,
    ) -> Result<()> {
        let (into, rename_to) = if dest.is_dir() {
            (dest.to_path_buf(), None)
        } else {
            let parent = dest
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            if !parent.is_dir() {
                return Err(EngineError::Invalid(format!(
                    "local directory {} does not exist",
                    parent.display()
                )));
            }
            let tmp = tempfile::Builder::new()
                .prefix(".berth-cp-")
                .tempdir_in(parent)
                .context(|| format!("create a directory in {}", parent.display()))?;
            (tmp.keep(), Some(dest.to_path_buf()))
        };
        let (r, w) = std::io::pipe().context(|| "pipe".to_owned())?;
        let store = &self.layers;
        let res = std::thread::scope(|s| {
            let producer = s.spawn(move || {
                let mut w = std::io::BufWriter::new(w);
                let res = store.copy_out(id, path, mounts, &mut w);
                let _ = w.flush();
                res
            });
            let mut archive = tar::Archive::new(r);
            archive.set_preserve_permissions(true);
            archive.set_overwrite(true);
            let unpacked = archive
                .unpack(&into)
                .context(|| format!("write into {}", into.display()));
            let produced = producer.join().unwrap_or_else(|_| {
                Err(berth_storage::Error::Io {
                    path: path.to_owned(),
                    source: std::io::Error::other("copy panicked"),
                })
            });
            produced.map_err(cp_err(user)).and(unpacked)
        });
        if let Some(final_path) = rename_to {
            let base = path
                .file_name()
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("."));
            let out = res.and_then(|()| {
                std::fs::rename(into.join(&base), &final_path)
                    .context(|| format!("create {}", final_path.display()))
            });
            let _ = std::fs::remove_dir_all(&into);
            return out;
        }
        res
    }

    fn copy_from_host(
        &self,
        user: &str,
        id: &str,
        mounts: &[MountSource],
        src: &Path,
        dest: &Path,
    ) -> Result<()> {
        let md = std::fs::symlink_metadata(src).context(|| format!("lstat {}", src.display()))?;
        // `DIR/` (or `DIR/.`) asserts a directory: a file is never written in
        // its place (not over a symlink that leads nowhere either).
        let raw = dest.as_os_str().as_encoded_bytes();
        let asserts_dir = raw.ends_with(b"/") || raw.ends_with(b"/.");
        // Into an existing directory under the source's own name; otherwise
        // as `dest` itself, in its parent.
        let found = self
            .layers
            .path_is_dir(id, dest, mounts)
            .map_err(cp_err(user))?;
        if found.is_some_and(|(_, read_only)| read_only) {
            return Err(EngineError::Invalid(
                "mounted volume is marked read-only".into(),
            ));
        }
        // `SRC/.` (Docker): a directory's contents, not the directory, go
        // into an existing directory.
        let contents = md.is_dir() && src.as_os_str().as_encoded_bytes().ends_with(b"/.");
        let into_existing = found.is_some_and(|(is_dir, _)| is_dir) && contents;
        let (dir, name) = match found.map(|(is_dir, _)| is_dir) {
            Some(true) if into_existing => (dest.to_path_buf(), PathBuf::new()),
            Some(false) | None if asserts_dir && !md.is_dir() => {
                return Err(EngineError::Invalid("no such directory".into()))
            }
            Some(true) => (
                dest.to_path_buf(),
                src.file_name().map(PathBuf::from).ok_or_else(|| {
                    EngineError::Invalid(format!("cannot copy {}", src.display()))
                })?,
            ),
            Some(false) if md.is_dir() => {
                return Err(EngineError::Invalid(format!(
                    "cannot copy directory {} over the file {}",
                    src.display(),
                    dest.display()
                )))
            }
            _ => (
                dest.parent().unwrap_or(Path::new("/")).to_path_buf(),
                dest.file_name().map(PathBuf::from).ok_or_else(|| {
                    EngineError::Invalid(format!("cannot copy to {}", dest.display()))
                })?,
            ),
        };
        let (r, w) = std::io::pipe().context(|| "pipe".to_owned())?;
        let store = &self.layers;
        std::thread::scope(|s| {
            let producer = s.spawn(move || -> std::io::Result<()> {
                let mut b = tar::Builder::new(std::io::BufWriter::new(w));
                b.follow_symlinks(false);
                if into_existing {
                    for e in std::fs::read_dir(src)? {
                        let e = e?;
                        if e.file_type()?.is_dir() {
                            b.append_dir_all(e.file_name(), e.path())?;
                        } else {
                            b.append_path_with_name(e.path(), e.file_name())?;
                        }
                    }
                } else if md.is_dir() {
                    b.append_dir_all(&name, src)?;
                } else {
                    b.append_path_with_name(src, &name)?;
                }
                b.into_inner()?.flush()
            });
            let unpacked = store.copy_in(id, &dir, mounts, r);
            let produced = producer
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("copy panicked")));
            unpacked.map_err(cp_err(user))?;
            produced.context(|| format!("read {}", src.display()))
        })
    }
}

/// The container's volumes and binds as `cp` resolves paths through them
/// (tmpfs mounts live only in a running container's namespace: left out).
fn copy_mounts(c: &crate::containers::Container) -> Vec<MountSource> {
    c.config
        .host
        .mounts
        .iter()
        .filter(|m| matches!(m.typ.as_str(), "volume" | "bind") && !m.source.is_empty())
        .map(|m| MountSource {
            destination: PathBuf::from(&m.destination),
            source: PathBuf::from(&m.source),
            read_only: m.read_only,
        })
        .collect()
}

/// A storage error of `cp`, naming the container as the user did (Docker:
/// "Could not find the file /x in container NAME").
fn cp_err(user: &str) -> impl Fn(berth_storage::Error) -> EngineError + '_ {
    move |e| match e {
        berth_storage::Error::NoSuchPath { path, .. } => EngineError::not_found(
            Object::Path,
            format!("Could not find the file {path} in container {user}"),
        ),
        e => e.into(),
    }
}

impl Engine {
    /// The uid and gid that container `name`'s configured user (`USER`,
    /// `-u`) resolves to in its own /etc/passwd and /etc/group, as `docker
    /// cp -a` (the API's `copyUIDGID`) gives the files it copies in. The
    /// two files are read through the container's view (resolved inside
    /// its root, never following a symlink out); root when no user is set.
    pub fn container_user_ids(&self, name: &str) -> Result<(u32, u32)> {
        let c = self.container(name)?;
        if c.config.user.is_empty() {
            return Ok((0, 0));
        }
        let etc = tempfile::tempdir().context(|| "make a temporary directory".to_owned())?;
        std::fs::create_dir(etc.path().join("etc"))
            .context(|| "make a temporary directory".to_owned())?;
        for f in ["etc/passwd", "etc/group"] {
            let mut tar = Vec::new();
            let from = CopyEnd::Container(c.id.as_str().to_owned(), PathBuf::from("/").join(f));
            let mut text = String::new();
            if self
                .copy(&from, &CopyEnd::Stream, &mut std::io::empty(), &mut tar)
                .is_ok()
            {
                let mut a = tar::Archive::new(&tar[..]);
                if let Some(Ok(mut entry)) = a.entries().ok().and_then(|mut e| e.next()) {
                    if entry.header().entry_type().is_file() {
                        let _ = (&mut entry).take(16 << 20).read_to_string(&mut text);
                    }
                }
            }
            let path = etc.path().join(f);
            std::fs::write(&path, text).context(|| format!("write {}", path.display()))?;
        }
        let (uid, gid, _) = crate::spec::resolve_user(etc.path(), &c.config.user)?;
        Ok((uid, gid))
    }
}
