//! Helpers shared by the storage tests: tar building, tree snapshots, mount checks.
#![allow(dead_code)]

use berth_digest::Digest;
use berth_storage::{DriverKind, InitFiles, LayerStore};
use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use tar::{Builder, EntryType, Header};

pub struct Store {
    pub dir: tempfile::TempDir,
    pub store: LayerStore,
}

impl Store {
    pub fn new(driver: DriverKind) -> Store {
        let dir = tempfile::tempdir().expect("tempdir");
        let store =
            LayerStore::open(&dir.path().join("storage"), Some(driver)).expect("open store");
        Store { dir, store }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // Do not leave mounts behind even when a test fails.
            if let Ok(names) = self.store.containers() {
                for n in names {
                    let _ = self.store.unmount_container(&n);
                }
            }
        }
    }
}

/// Asserts that nothing is mounted under `root`.
pub fn assert_nothing_mounted(root: &Path) {
    let info = fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let root = root.to_string_lossy();
    for line in info.lines() {
        assert!(!line.contains(root.as_ref()), "still mounted: {line}");
    }
}

pub fn id(name: &str) -> Digest {
    Digest::of(name.as_bytes())
}

pub fn init() -> InitFiles {
    InitFiles {
        hostname: "box".into(),
        hosts: "127.0.0.1 localhost\n10.0.0.2 box\n".into(),
        resolv_conf: "nameserver 10.0.0.1\n".into(),
    }
}

/// Builds a tar in memory.
pub struct TarB {
    b: Builder<Vec<u8>>,
}

fn header(kind: EntryType, mode: u32) -> Header {
    let mut h = Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_600_000_000);
    h.set_size(0);
    h
}

impl TarB {
    pub fn new() -> TarB {
        TarB {
            b: Builder::new(Vec::new()),
        }
    }
    pub fn dir(mut self, path: &str, mode: u32) -> Self {
        let mut h = header(EntryType::Directory, mode);
        self.b.append_data(&mut h, path, &[][..]).expect("dir");
        self
    }
    pub fn dir_mtime(mut self, path: &str, mode: u32, mtime: u64) -> Self {
        let mut h = header(EntryType::Directory, mode);
        h.set_mtime(mtime);
        self.b.append_data(&mut h, path, &[][..]).expect("dir");
        self
    }
    pub fn file(self, path: &str, data: &str) -> Self {
        self.file_with(path, data.as_bytes(), 0o644, 0, 0, 1_600_000_000)
    }
    pub fn file_with(
        mut self,
        path: &str,
        data: &[u8],
        mode: u32,
        uid: u64,
        gid: u64,
        mtime: u64,
    ) -> Self {
        let mut h = header(EntryType::Regular, mode);
        h.set_uid(uid);
        h.set_gid(gid);
        h.set_mtime(mtime);
        h.set_size(data.len() as u64);
        self.b.append_data(&mut h, path, data).expect("file");
        self
    }
    pub fn symlink(mut self, path: &str, target: &str) -> Self {
        let mut h = header(EntryType::Symlink, 0o777);
        self.b.append_link(&mut h, path, target).expect("symlink");
        self
    }
    /// A hard link, with the target written raw (no validation by the tar crate).
    pub fn raw_link(mut self, kind: EntryType, path: &str, target: &str) -> Self {
        let mut h = header(kind, 0o777);
        h.set_path(path).expect("path");
        let f = &mut h.as_old_mut().linkname;
        f[..target.len()].copy_from_slice(target.as_bytes());
        h.set_cksum();
        self.b.append(&h, &[][..]).expect("link");
        self
    }
    pub fn hardlink(self, path: &str, target: &str) -> Self {
        self.raw_link(EntryType::Link, path, target)
    }
    pub fn device(mut self, path: &str, kind: EntryType, major: u32, minor: u32) -> Self {
        let mut h = header(kind, 0o620);
        h.set_device_major(major).expect("major");
        h.set_device_minor(minor).expect("minor");
        self.b.append_data(&mut h, path, &[][..]).expect("device");
        self
    }
    /// An entry with a raw (unchecked) name.
    pub fn raw_file(mut self, path: &str, data: &str) -> Self {
        let mut h = header(EntryType::Regular, 0o644);
        let name = &mut h.as_old_mut().name;
        name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_size(data.len() as u64);
        h.set_cksum();
        self.b.append(&h, data.as_bytes()).expect("raw");
        self
    }
    /// PAX records for the next entry.
    pub fn pax(mut self, records: &[(&str, &[u8])]) -> Self {
        let mut body = Vec::new();
        for (k, v) in records {
            let base = k.len() + v.len() + 3;
            let mut len = base + 1;
            while base + len.to_string().len() != len {
                len = base + len.to_string().len();
            }
            body.extend_from_slice(format!("{len} {k}=").as_bytes());
            body.extend_from_slice(v);
            body.push(b'\n');
        }
        let mut h = header(EntryType::XHeader, 0o644);
        h.set_size(body.len() as u64);
        h.set_path("PaxHeader").expect("pax path");
        h.set_cksum();
        self.b.append(&h, &body[..]).expect("pax");
        self
    }
    pub fn whiteout(self, path: &str) -> Self {
        let (dir, name) = path
            .rsplit_once('/')
            .map(|(d, n)| (format!("{d}/"), n))
            .unwrap_or((String::new(), path));
        self.file(&format!("{dir}.wh.{name}"), "")
    }
    pub fn opaque(self, dir: &str) -> Self {
        self.file(&format!("{dir}/.wh..wh..opq"), "")
    }
    pub fn build(self) -> Vec<u8> {
        self.b.into_inner().expect("tar")
    }
}

/// A description of every entry under `root`: type, mode, owner, contents or
/// link target, and the mtime of non-directories.
pub fn snapshot(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    walk(root, Path::new(""), &mut out);
    out
}

fn walk(root: &Path, rel: &Path, out: &mut BTreeMap<String, String>) {
    let mut names: Vec<_> = fs::read_dir(root.join(rel))
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    names.sort();
    for n in names {
        let r = rel.join(&n);
        let p = root.join(&r);
        let m = fs::symlink_metadata(&p).unwrap_or_else(|e| panic!("lstat {}: {e}", p.display()));
        let ft = m.file_type();
        let what = if ft.is_dir() {
            "dir".to_string()
        } else if ft.is_symlink() {
            format!("link->{}", fs::read_link(&p).expect("readlink").display())
        } else if ft.is_file() {
            let mut s = String::new();
            fs::File::open(&p)
                .expect("open")
                .read_to_string(&mut s)
                .expect("read");
            format!("file:{s:?} mtime={}", m.mtime())
        } else if ft.is_char_device() || ft.is_block_device() {
            format!("dev:{:x}", m.rdev())
        } else {
            "other".to_string()
        };
        out.insert(
            r.display().to_string(),
            format!("{what} mode={:o} {}:{}", m.mode(), m.uid(), m.gid()),
        );
        if ft.is_dir() {
            walk(root, &r, out);
        }
    }
}

/// Names of the entries of a tar, in order.
pub fn tar_names(data: &[u8]) -> Vec<String> {
    let mut a = tar::Archive::new(data);
    a.entries()
        .expect("entries")
        .map(|e| {
            e.expect("entry")
                .path()
                .expect("path")
                .display()
                .to_string()
        })
        .collect()
}

/// Every path under `root` (recursive, relative).
pub fn all_paths(root: &Path) -> Vec<String> {
    snapshot(root).into_keys().collect()
}
