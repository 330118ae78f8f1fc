//! Copying a directory tree with everything a layer holds (the vfs driver):
//! ownership, modes, times, xattrs, hard links, symlinks and device nodes.
//! Both trees belong to the store, so paths are used directly; no symlink is
//! ever followed.

use nix::sys::stat::{self, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use std::collections::HashMap;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{symlink, DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Copies the contents of directory `src` into the existing directory `dst`,
/// and `src`'s own metadata onto `dst`.
pub(crate) fn copy_tree(src: &Path, dst: &Path) -> io::Result<()> {
    let mut links = HashMap::new();
    copy_dir_contents(src, dst, &mut links)?;
    let meta = fs::symlink_metadata(src)?;
    set_meta(src, dst, &meta)
}

/// Docker's population of a new volume: the contents of the directory
/// `src` into the empty directory `dst`, then `src`'s owner and mode (not
/// its times or xattrs) onto `dst`. `src` may be a `/proc/self/fd/N` path.
pub(crate) fn populate(src: &Path, dst: &Path, uid: u32, gid: u32, mode: u32) -> io::Result<()> {
    let mut links = HashMap::new();
    copy_dir_contents(src, dst, &mut links)?;
    std::os::unix::fs::chown(dst, Some(uid), Some(gid))?;
    fs::set_permissions(dst, fs::Permissions::from_mode(mode & 0o7777))
}

fn copy_dir_contents(
    src: &Path,
    dst: &Path,
    links: &mut HashMap<(u64, u64), std::path::PathBuf>,
) -> io::Result<()> {
    for entry in fs::read_dir(src)? {
        let entry = entry?;
        let s = entry.path();
        let d = dst.join(entry.file_name());
        let meta = fs::symlink_metadata(&s)?;
        let ft = meta.file_type();
        if ft.is_dir() {
            fs::DirBuilder::new().mode(0o700).create(&d)?;
            copy_dir_contents(&s, &d, links)?;
        } else if ft.is_file() {
            if meta.nlink() > 1 {
                if let Some(first) = links.get(&(meta.dev(), meta.ino())) {
                    fs::hard_link(first, &d)?;
                    continue;
                }
                links.insert((meta.dev(), meta.ino()), d.clone());
            }
            let mut from = File::open(&s)?;
            let mut to = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&d)?;
            if meta.blocks() * 512 < meta.len() {
                copy_sparse(&from, &to, meta.len())?;
            } else {
                io::copy(&mut from, &mut to)?;
            }
        } else if ft.is_symlink() {
            symlink(fs::read_link(&s)?, &d)?;
        } else {
            let kind = SFlag::from_bits_truncate(meta.mode() & libc::S_IFMT);
            stat::mknod(&d, kind, Mode::from_bits_truncate(0o600), meta.rdev())?;
        }
        set_meta(&s, &d, &meta)?;
    }
    Ok(())
}

/// Copies a file with holes as it is: its data segments (`SEEK_DATA`/`SEEK_HOLE`)
/// at their offsets, then the size, so the holes stay holes.
fn copy_sparse(from: &File, to: &File, len: u64) -> io::Result<()> {
    use nix::unistd::{lseek, Whence};
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0; 1 << 20];
    let mut pos = 0;
    loop {
        let data = match lseek(from.as_raw_fd(), pos, Whence::SeekData) {
            Ok(d) => d,
            Err(nix::errno::Errno::ENXIO) => break,
            Err(e) => return Err(e.into()),
        };
        let hole = lseek(from.as_raw_fd(), data, Whence::SeekHole)?;
        let mut off = data;
        while off < hole {
            let n = buf.len().min((hole - off) as usize);
            from.read_exact_at(&mut buf[..n], off as u64)?;
            to.write_all_at(&buf[..n], off as u64)?;
            off += n as i64;
        }
        pos = hole;
    }
    to.set_len(len)
}

/// Copies ownership, mode, xattrs and times of `src` (described by `meta`) onto `dst`.
pub(crate) fn set_meta(src: &Path, dst: &Path, meta: &fs::Metadata) -> io::Result<()> {
    std::os::unix::fs::lchown(dst, Some(meta.uid()), Some(meta.gid()))?;
    let is_link = meta.file_type().is_symlink();
    if !is_link {
        fs::set_permissions(dst, fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    }
    for name in xattr::list(src)? {
        if let Some(v) = xattr::get(src, &name)? {
            xattr::set(dst, &name, &v)?;
        }
    }
    let atime = TimeSpec::new(meta.atime(), meta.atime_nsec());
    let mtime = TimeSpec::new(meta.mtime(), meta.mtime_nsec());
    stat::utimensat(None, dst, &atime, &mtime, UtimensatFlags::NoFollowSymlink)?;
    Ok(())
}
