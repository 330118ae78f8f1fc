//! The content-addressed blob store: `<root>/blobs/sha256/<hex>`.
//!
//! A blob is streamed into a temporary file (`.tmp-*`) in the same directory while it is
//! hashed, fsynced, verified, and only then renamed to its digest: a crash leaves at most a
//! `.tmp-*` file, never a half blob under a digest name. [`BlobStore::clean_temp`] removes
//! such leftovers.

use crate::{Error, Result};
use berth_digest::{Digest, HashingWriter};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct BlobStore {
    dir: PathBuf,
}

impl BlobStore {
    /// Opens (creating if needed) the store under `<root>/blobs/sha256`.
    pub fn new(root: &Path) -> Result<BlobStore> {
        let dir = root.join("blobs").join("sha256");
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, "create blob directory", e))?;
        Ok(BlobStore { dir })
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
        let tmp = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(&self.dir)
            .map_err(|e| Error::io(&self.dir, "create temporary blob", e))?;
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

    /// Removes temporary files left by interrupted writes (and partial downloads) older
    /// than `min_age`.
    pub fn clean_temp(&self, min_age: std::time::Duration) -> Result<usize> {
        let mut n = 0;
        for e in fs::read_dir(&self.dir).map_err(|e| Error::io(&self.dir, "list blobs", e))? {
            let e = e.map_err(|e| Error::io(&self.dir, "list blobs", e))?;
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age >= min_age);
            let name = e.file_name().to_string_lossy().into_owned();
            if (name.starts_with(".tmp-") || name.starts_with(".partial-")) && old {
                let _ = fs::remove_file(e.path());
                n += 1;
            }
        }
        Ok(n)
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
            Err(_) => PartialFile::Private(
                tempfile::Builder::new()
                    .prefix(".tmp-")
                    .tempfile_in(&self.dir)
                    .map_err(|e| Error::io(&self.dir, "create temporary blob", e))?,
            ),
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
        assert_eq!(s.clean_temp(std::time::Duration::ZERO).unwrap(), 1);
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
