//! The content-addressed blob store: `<root>/blobs/sha256/<hex>`.
//!
//! A blob is streamed into a temporary file in `<root>/blobs/staging/` while it is hashed,
//! fsynced, verified, and only then renamed to its digest: a crash leaves at most a staging
//! file, never a half blob under a digest name. A staging file's name carries its owner
//! (berth-lease: `blob-<pid>-<start>-…`), so opening the store removes those of dead
//! processes with one readdir of that (usually empty) directory. Resumable downloads are
//! `sha256/.partial-<hex>`, flock'ed by their puller ([`BlobStore::partial`]); an older
//! berth's `sha256/.tmp-*` files and stale partials go with [`BlobStore::clean_temp`].

use crate::{Error, Result};
use berth_digest::{Digest, HashingWriter};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct BlobStore {
    dir: PathBuf,
    staging: PathBuf,
}

/// The name prefix of a blob being written in `blobs/staging/`.
pub const STAGE_BLOB: &str = "blob";

/// What [`BlobStore::clean_temp`] found or removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TempFiles {
    /// Files (old-style `.tmp-*`, stale or all `.partial-*`, orphaned staging files).
    pub paths: Vec<PathBuf>,
    /// Their allocated bytes.
    pub bytes: u64,
}

fn allocated(m: &fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    m.blocks() * 512
}

impl BlobStore {
    /// Opens (creating if needed) the store under `<root>/blobs/sha256`, and removes the
    /// staging files of processes that are gone (one readdir of `blobs/staging`).
    pub fn new(root: &Path) -> Result<BlobStore> {
        let dir = root.join("blobs").join("sha256");
        let staging = root.join("blobs").join("staging");
        // The owner's alone, as the rest of the root: `system service` may
        // open the root to its socket's group for traversal.
        for d in [&dir, &staging] {
            use std::os::unix::fs::DirBuilderExt;
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(d)
                .map_err(|e| Error::io(d, "create blob directory", e))?;
        }
        // Each is one file: removing them is one unlink each.
        let _ = berth_lease::sweep(&staging, STAGE_BLOB);
        Ok(BlobStore { dir, staging })
    }

    /// A new staging file of this process (removed when dropped unless persisted).
    fn staging_file(&self) -> Result<tempfile::NamedTempFile> {
        let me = berth_lease::Owner::current().map_err(|e| Error::Io {
            path: self.staging.display().to_string(),
            op: "name a temporary blob",
            source: io::Error::other(e.to_string()),
        })?;
        tempfile::Builder::new()
            .prefix(&me.name(STAGE_BLOB))
            .tempfile_in(&self.staging)
            .map_err(|e| Error::io(&self.staging, "create temporary blob", e))
    }

    /// The staging directory (`blobs/staging`).
    pub fn staging_dir(&self) -> &Path {
        &self.staging
    }

    /// The directory holding the blobs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the blob `d` lives (whether or not it exists).
    pub fn path(&self, d: &Digest) -> PathBuf {
        self.dir.join(d.hex())
    }

    pub fn has(&self, d: &Digest) -> bool {
        self.path(d).is_file()
    }

    /// Streams `reader` into the store and returns its digest and size. With `expected`,
    /// content that hashes differently is refused (`digest mismatch`) and nothing is kept.
    pub fn put(&self, reader: impl Read, expected: Option<&Digest>) -> Result<(Digest, u64)> {
        self.put_tracked(reader, expected).map(|(d, n, _)| (d, n))
    }

    /// [`BlobStore::put`], also telling whether the blob is new (`false`: it was there).
    pub fn put_tracked(
        &self,
        reader: impl Read,
        expected: Option<&Digest>,
    ) -> Result<(Digest, u64, bool)> {
        let mut reader = reader;
        let tmp = self.staging_file()?;
        let mut w = HashingWriter::new(io::BufWriter::with_capacity(1 << 16, tmp));
        io::copy(&mut reader, &mut w).map_err(|e| Error::Io {
            path: self.dir.display().to_string(),
            op: "write blob",
            source: e,
        })?;
        let (buf, digest, size) = w.finish();
        let tmp = buf
            .into_inner()
            .map_err(|e| Error::io(&self.dir, "write blob", e.into_error()))?;
        if let Some(exp) = expected {
            if *exp != digest {
                // `tmp` is removed when dropped.
                return Err(Error::DigestMismatch {
                    what: "blob".into(),
                    expected: exp.clone(),
                    got: digest,
                });
            }
        }
        tmp.as_file()
            .sync_all()
            .map_err(|e| Error::io(tmp.path(), "fsync blob", e))?;
        let dest = self.path(&digest);
        let created = !dest.exists();
        tmp.persist(&dest)
            .map_err(|e| Error::io(&dest, "rename blob into place", e.error))?;
        sync_dir(&self.dir)?;
        Ok((digest, size, created))
    }

    /// Stores `data` (a config, a manifest).
    pub fn put_bytes(&self, data: &[u8], expected: Option<&Digest>) -> Result<Digest> {
        if let Some(exp) = expected {
            if self.has(exp) && Digest::of(data) == *exp {
                return Ok(exp.clone());
            }
        }
        Ok(self.put(data, expected)?.0)
    }

    pub fn open(&self, d: &Digest) -> Result<File> {
        let p = self.path(d);
        File::open(&p).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => Error::BlobMissing(d.clone()),
            _ => Error::io(&p, "open blob", e),
        })
    }

    pub fn read(&self, d: &Digest) -> Result<Vec<u8>> {
        let mut v = Vec::new();
        let p = self.path(d);
        self.open(d)?
            .read_to_end(&mut v)
            .map_err(|e| Error::io(&p, "read blob", e))?;
        Ok(v)
    }

    pub fn size(&self, d: &Digest) -> Result<u64> {
        Ok(self
            .open(d)?
            .metadata()
            .map_err(|e| Error::io(&self.path(d), "stat blob", e))?
            .len())
    }

    /// Re-hashes the blob and fails if its content no longer matches its name.
    pub fn verify(&self, d: &Digest) -> Result<()> {
        let mut r = berth_digest::HashingReader::new(self.open(d)?);
        io::copy(&mut r, &mut io::sink()).map_err(|e| Error::io(&self.path(d), "read blob", e))?;
        let (got, _) = r.finish();
        if got != *d {
            return Err(Error::DigestMismatch {
                what: format!("blob {}", self.path(d).display()),
                expected: d.clone(),
                got,
            });
        }
        Ok(())
    }

    /// Removes the blob; a blob that is already gone is not an error.
    pub fn remove(&self, d: &Digest) -> Result<()> {
        let p = self.path(d);
        match fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(&p, "remove blob", e)),
        }
    }

    /// Every blob in the store (temporary files are not blobs).
    pub fn list(&self) -> Result<Vec<Digest>> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.dir).map_err(|e| Error::io(&self.dir, "list blobs", e))? {
            let e = e.map_err(|e| Error::io(&self.dir, "list blobs", e))?;
            if let Some(d) = e
                .file_name()
                .to_str()
                .and_then(|n| Digest::from_hex(n).ok())
            {
                out.push(d);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Temporary files: an older berth's `sha256/.tmp-*`, staging files whose owner is
    /// gone, and resumable downloads (`.partial-*`) older than `partial_age` that no pull
    /// holds (`None`: none of those). With `remove`, they are removed. Counts the
    /// allocated bytes.
    pub fn clean_temp(
        &self,
        partial_age: Option<std::time::Duration>,
        remove: bool,
    ) -> Result<TempFiles> {
        let mut out = TempFiles::default();
        for e in fs::read_dir(&self.dir).map_err(|e| Error::io(&self.dir, "list blobs", e))? {
            let e = e.map_err(|e| Error::io(&self.dir, "list blobs", e))?;
            let name = e.file_name().to_string_lossy().into_owned();
            let Ok(meta) = e.metadata() else { continue };
            let garbage = if name.starts_with(".tmp-") {
                true
            } else if name.starts_with(".partial-") {
                let old_enough = partial_age.is_some_and(|min| {
                    meta.modified()
                        .ok()
                        .and_then(|t| t.elapsed().ok())
                        .is_some_and(|age| age >= min)
                });
                // A pull that appends to it holds its lock.
                old_enough
                    && File::open(e.path())
                        .ok()
                        .and_then(|f| {
                            nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock)
                                .ok()
                        })
                        .is_some()
            } else {
                false
            };
            if garbage {
                out.bytes += allocated(&meta);
                out.paths.push(e.path());
            }
        }
        for p in berth_lease::orphans(&self.staging, STAGE_BLOB).map_err(|e| Error::Io {
            path: self.staging.display().to_string(),
            op: "list",
            source: io::Error::other(e.to_string()),
        })? {
            out.bytes += fs::symlink_metadata(&p).map(|m| allocated(&m)).unwrap_or(0);
            out.paths.push(p);
        }
        if remove {
            for p in &out.paths {
                let _ = fs::remove_file(p);
            }
        }
        Ok(out)
    }

    /// Removes every staging file and every partial download not held by a pull
    /// (`system reset`); returns the bytes freed.
    pub fn remove_all_temp(&self) -> Result<u64> {
        let mut bytes = self
            .clean_temp(Some(std::time::Duration::ZERO), true)?
            .bytes;
        if let Ok(rd) = fs::read_dir(&self.staging) {
            for e in rd.flatten() {
                bytes += e.metadata().map(|m| allocated(&m)).unwrap_or(0);
                let _ = fs::remove_file(e.path());
            }
        }
        Ok(bytes)
    }

    /// Allocated bytes of blob `d` (0 if it is missing).
    pub fn allocated(&self, d: &Digest) -> u64 {
        fs::symlink_metadata(self.path(d))
            .map(|m| allocated(&m))
            .unwrap_or(0)
    }
}

/// A blob being downloaded into `.partial-<hex>`, kept across interrupted pulls so that
/// the next one resumes it. An exclusive `flock` makes one process at a time append to
/// it; a second process downloading the same blob meanwhile writes a private temporary
/// file instead. [`PartialBlob::finish`] verifies and renames it to its digest.
pub struct PartialBlob {
    dir: PathBuf,
    digest: Digest,
    path: PathBuf,
    file: PartialFile,
    /// Bytes that were there when it was opened.
    existing: u64,
    written: u64,
}

enum PartialFile {
    Locked(nix::fcntl::Flock<File>),
    Private(tempfile::NamedTempFile),
}

impl PartialFile {
    fn file(&self) -> &File {
        match self {
            PartialFile::Locked(f) => f,
            PartialFile::Private(t) => t.as_file(),
        }
    }
}

impl BlobStore {
    /// Opens (or creates) the partial download of blob `d`.
    pub fn partial(&self, d: &Digest) -> Result<PartialBlob> {
        let path = self.dir.join(format!(".partial-{}", d.hex()));
        let f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(&path)
            .map_err(|e| Error::io(&path, "open partial blob", e))?;
        let file = match nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock) {
            Ok(l) => PartialFile::Locked(l),
            Err(_) => PartialFile::Private(self.staging_file()?),
        };
        let path = match &file {
            PartialFile::Locked(_) => path,
            PartialFile::Private(t) => t.path().to_owned(),
        };
        let existing = file
            .file()
            .metadata()
            .map_err(|e| Error::io(&path, "stat partial blob", e))?
            .len();
        Ok(PartialBlob {
            dir: self.dir.clone(),
            digest: d.clone(),
            path,
            file,
            existing,
            written: 0,
        })
    }
}

impl PartialBlob {
    /// Bytes a previous download left (to be read back with [`PartialBlob::read_existing`]
    /// and resumed from there).
    pub fn existing(&self) -> u64 {
        self.existing
    }

    /// Reads back what a previous download left, from its start.
    pub fn read_existing(&self) -> Result<impl Read + Send> {
        let f =
            File::open(&self.path).map_err(|e| Error::io(&self.path, "open partial blob", e))?;
        Ok(f.take(self.existing))
    }

    /// Appends downloaded bytes.
    pub fn append(&mut self, data: &[u8]) -> io::Result<()> {
        let mut f = self.file.file();
        f.write_all(data)?;
        self.written += data.len() as u64;
        Ok(())
    }

    /// Drops what was downloaded (it was wrong); the next pull starts afresh.
    pub fn discard(self) {
        let _ = fs::remove_file(&self.path);
    }

    /// The whole blob is there and hashed to `got`: fsync and rename it to its digest.
    /// A mismatch removes it. Returns whether the blob is new in the store.
    pub fn finish(self, got: &Digest) -> Result<bool> {
        if *got != self.digest {
            let _ = fs::remove_file(&self.path);
            return Err(Error::DigestMismatch {
                what: format!("blob {}", self.digest),
                expected: self.digest.clone(),
                got: got.clone(),
            });
        }
        self.file
            .file()
            .sync_all()
            .map_err(|e| Error::io(&self.path, "fsync blob", e))?;
        let dest = self.dir.join(self.digest.hex());
        let created = !dest.exists();
        match self.file {
            PartialFile::Locked(_) => fs::rename(&self.path, &dest)
                .map_err(|e| Error::io(&dest, "rename blob into place", e))?,
            PartialFile::Private(t) => {
                t.persist(&dest)
                    .map_err(|e| Error::io(&dest, "rename blob into place", e.error))?;
            }
        }
        sync_dir(&self.dir)?;
        Ok(created)
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io(dir, "fsync directory", e))
}

/// Writes `data` to `path` atomically (temp file in the same directory, fsync, rename).
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(|e| Error::io(dir, "create temporary file", e))?;
    tmp.write_all(data)
        .and_then(|_| tmp.as_file().sync_all())
        .map_err(|e| Error::io(path, "write", e))?;
    tmp.persist(path)
        .map_err(|e| Error::io(path, "rename into place", e.error))?;
    sync_dir(dir)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn put_open_verify_remove() {
        let t = tempfile::tempdir().unwrap();
        let s = BlobStore::new(t.path()).unwrap();
        let data = vec![42u8; 300_000];
        let (d, n) = s.put(&data[..], None).unwrap();
        assert_eq!((d.clone(), n), (Digest::of(&data), 300_000));
        assert!(s.has(&d));
        assert_eq!(s.path(&d), t.path().join("blobs/sha256").join(d.hex()));
        assert_eq!(s.size(&d).unwrap(), 300_000);
        assert_eq!(s.read(&d).unwrap(), data);
        s.verify(&d).unwrap();
        // Putting it again with the right expectation is fine (idempotent).
        assert_eq!(s.put(&data[..], Some(&d)).unwrap().0, d);
        assert_eq!(s.put_bytes(&data, Some(&d)).unwrap(), d);
        assert_eq!(s.list().unwrap(), vec![d.clone()]);
        s.remove(&d).unwrap();
        s.remove(&d).unwrap();
        assert!(!s.has(&d));
        assert!(matches!(s.open(&d), Err(Error::BlobMissing(_))));
        assert!(s.open(&d).unwrap_err().to_string().contains(d.hex()));
    }

    #[test]
    fn mismatch_leaves_nothing() {
        let t = tempfile::tempdir().unwrap();
        let s = BlobStore::new(t.path()).unwrap();
        let wrong = Digest::of(b"other");
        let e = s.put(&b"content"[..], Some(&wrong)).unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with("digest mismatch"), "{msg}");
        assert!(
            msg.contains(&wrong.to_string()) && msg.contains(&Digest::of(b"content").to_string())
        );
        assert_eq!(
            fs::read_dir(s.dir()).unwrap().count(),
            0,
            "temp file removed"
        );
    }

    #[test]
    fn failing_reader_leaves_nothing_and_corruption_is_detected() {
        struct Bad(usize);
        impl Read for Bad {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0 == 0 {
                    return Err(io::Error::other("boom"));
                }
                self.0 -= 1;
                buf[0] = 1;
                Ok(1)
            }
        }
        let t = tempfile::tempdir().unwrap();
        let s = BlobStore::new(t.path()).unwrap();
        assert!(s.put(Bad(1000), None).is_err());
        assert_eq!(fs::read_dir(s.dir()).unwrap().count(), 0);
        // A leftover temp file (as after a crash) is never listed as a blob.
        fs::write(s.dir().join(".tmp-crash"), b"half").unwrap();
        assert!(s.list().unwrap().is_empty());
        let t1 = s.clean_temp(None, true).unwrap();
        assert_eq!(t1.paths.len(), 1);
        assert!(!s.dir().join(".tmp-crash").exists());
        // A blob whose content changed on disk fails verification.
        let (d, _) = s.put(&b"abc"[..], None).unwrap();
        fs::write(s.path(&d), b"abd").unwrap();
        assert!(s
            .verify(&d)
            .unwrap_err()
            .to_string()
            .contains("digest mismatch"));
    }

    #[test]
    fn atomic_write() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("f");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::read_dir(t.path()).unwrap().count(), 1);
    }
}
