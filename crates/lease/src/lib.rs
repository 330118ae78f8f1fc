//! Staging areas owned by a live process.
//!
//! Everything berth writes before it is complete (a layer being unpacked, a blob being
//! received, a build's work area, a layer moved aside for deletion) lives under a name that
//! carries its owner from the moment it exists: `PREFIX-<pid>-<start time>-<random>`, where
//! the start time is the owner's, in clock ticks since boot (`/proc/PID/stat`, field 22).
//! The pair names one process for the life of the boot: a reused pid has another start
//! time. So there is no window between making an area and claiming it (as there would be
//! with a lock taken after `mkdir`), and no clock: an area whose owner is not alive is
//! garbage, whatever its age, and the next berth command that sweeps its directory
//! removes it ([`sweep`]). A process hands an area to another one (a detached deleter) by
//! renaming it to a name of the new owner ([`Owner::rename_to`]).

use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

type Result<T> = std::result::Result<T, LeaseError>;

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> LeaseError + 'a {
    move |source| LeaseError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// A process, named so that a later process with the same pid is a different owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner {
    pid: u32,
    start: u64,
}

impl Owner {
    /// This process.
    pub fn current() -> Result<Owner> {
        static ME: OnceLock<(u32, u64)> = OnceLock::new();
        let pid = std::process::id();
        // A forked child has another pid: recompute rather than trust the cache.
        if let Some(&(p, start)) = ME.get() {
            if p == pid {
                return Ok(Owner { pid, start });
            }
        }
        let start = start_time(pid)
            .map_err(io_err("read start time of", Path::new("/proc/self/stat")))?
            .ok_or_else(|| LeaseError::Io {
                op: "read start time of",
                path: PathBuf::from("/proc/self/stat"),
                source: io::Error::from(io::ErrorKind::NotFound),
            })?;
        let _ = ME.set((pid, start));
        Ok(Owner { pid, start })
    }

    /// Whether the process still runs (a zombie counts as gone: it owns nothing any more).
    pub fn is_alive(&self) -> bool {
        match start_time(self.pid) {
            Ok(Some(start)) => start == self.start,
            Ok(None) => false,
            // Cannot tell (e.g. /proc unreadable): never remove what may be in use.
            Err(_) => true,
        }
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// A fresh name for a staging area of this owner: `PREFIX-<pid>-<start>-<n>`.
    pub fn name(&self, prefix: &str) -> String {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        format!("{prefix}-{}-{}-{n:x}{nanos:08x}", self.pid, self.start)
    }

    /// Renames `from` (a staging area in `dir`) to a fresh name of this owner, so that it
    /// stays protected when the previous owner exits. Returns the new path.
    pub fn rename_to(&self, from: &Path, prefix: &str) -> Result<PathBuf> {
        let dir = from.parent().unwrap_or(Path::new("."));
        self.move_into(from, dir, prefix)
    }

    /// Renames `from` into `dir` (on the same filesystem) under a fresh name of this
    /// owner: how a finished layer is set aside for deletion, or an orphan adopted.
    pub fn move_into(&self, from: &Path, dir: &Path, prefix: &str) -> Result<PathBuf> {
        let to = dir.join(self.name(prefix));
        fs::rename(from, &to).map_err(io_err("rename", from))?;
        Ok(to)
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pid {} (start {})", self.pid, self.start)
    }
}

/// The owner a staging name carries, if it has the `PREFIX-<pid>-<start>-<n>` shape.
pub fn owner_of(name: &str, prefix: &str) -> Option<Owner> {
    let rest = name.strip_prefix(prefix)?.strip_prefix('-')?;
    let mut parts = rest.splitn(3, '-');
    let pid = parts.next()?.parse().ok()?;
    let start = parts.next()?.parse().ok()?;
    parts.next().filter(|s| !s.is_empty())?;
    Some(Owner { pid, start })
}

/// Field 22 of `/proc/PID/stat` (the start time), or None when there is no such process
/// or it is a zombie.
fn start_time(pid: u32) -> io::Result<Option<u64>> {
    let stat = match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(3) => return Ok(None), // ESRCH: exited meanwhile
        Err(e) => return Err(e),
    };
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    let after = stat
        .rfind(')')
        .map(|i| &stat[i + 1..])
        .ok_or_else(|| io::Error::other("malformed stat"))?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // after[0] is field 3 (state); field 22 is after[19].
    if fields.first() == Some(&"Z") || fields.first() == Some(&"X") {
        return Ok(None);
    }
    let start = fields
        .get(19)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other("malformed stat"))?;
    Ok(Some(start))
}

/// What a sweep removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// Staging areas (files or directory trees) removed.
    pub entries: u64,
    /// Bytes of disk they held (allocated blocks).
    pub bytes: u64,
}

impl std::ops::AddAssign for Swept {
    fn add_assign(&mut self, o: Swept) {
        self.entries += o.entries;
        self.bytes += o.bytes;
    }
}

/// Lists the staging areas in `dir` named with `prefix` whose owner is gone (names of
/// that prefix without an owner, from older versions, count as orphans too).
pub fn orphans(dir: &Path, prefix: &str) -> Result<Vec<PathBuf>> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("list", dir)(e)),
    };
    let mut out = Vec::new();
    for e in rd {
        let e = e.map_err(io_err("list", dir))?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.starts_with(prefix) {
            continue;
        }
        match owner_of(name, prefix) {
            Some(o) if o.is_alive() => {}
            _ => out.push(e.path()),
        }
    }
    out.sort();
    Ok(out)
}

/// Removes the staging areas in `dir` named with `prefix` whose owner is gone, and says
/// how much that freed. Another process sweeping at the same time is harmless (whatever
/// is already gone is skipped).
pub fn sweep(dir: &Path, prefix: &str) -> Result<Swept> {
    let mut swept = Swept::default();
    for p in orphans(dir, prefix)? {
        swept += remove(&p)?;
    }
    Ok(swept)
}

/// Removes a file or a whole tree, counting the disk it held (entries already gone, by a
/// concurrent remover, are not an error).
pub fn remove(path: &Path) -> Result<Swept> {
    let bytes = disk_usage(path);
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Swept::default()),
        Err(e) => return Err(io_err("inspect", path)(e)),
    };
    let r = if meta.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    };
    match r {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err("remove", path)(e)),
    }
    Ok(Swept { entries: 1, bytes })
}

/// Removes a file or tree, but at most `budget` entries of it (each unlink or rmdir
/// takes one): returns true when it is all gone, false when the budget ran out first
/// (what remains is still a tree, to be removed later or by another process).
/// Entries already gone are not an error.
pub fn remove_within(path: &Path, budget: &mut u64) -> Result<bool> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(true),
        Err(e) => return Err(io_err("inspect", path)(e)),
    };
    if meta.is_dir() {
        let rd = match fs::read_dir(path) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(true),
            Err(e) => return Err(io_err("list", path)(e)),
        };
        for e in rd {
            let e = e.map_err(io_err("list", path))?;
            if !remove_within(&e.path(), budget)? {
                return Ok(false);
            }
        }
    }
    if *budget == 0 {
        return Ok(false);
    }
    *budget -= 1;
    let r = if meta.is_dir() {
        fs::remove_dir(path)
    } else {
        fs::remove_file(path)
    };
    match r {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(io_err("remove", path)(e)),
    }
}

/// Allocated bytes of a file or tree (hard links counted once per walk is not attempted:
/// staging areas have none across entries). Unreadable parts count as 0.
pub fn disk_usage(path: &Path) -> u64 {
    let Ok(m) = fs::symlink_metadata(path) else {
        return 0;
    };
    let mut total = m.blocks() * 512;
    if m.is_dir() {
        if let Ok(rd) = fs::read_dir(path) {
            for e in rd.flatten() {
                total += disk_usage(&e.path());
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn names_carry_their_owner() {
        let me = Owner::current().expect("owner");
        assert_eq!(me.pid(), std::process::id());
        let n = me.name(".tmp");
        assert_eq!(owner_of(&n, ".tmp"), Some(me));
        assert_ne!(me.name(".tmp"), n);
        assert!(me.is_alive());
        assert_eq!(owner_of(".tmp-12-x", ".tmp"), None);
        assert_eq!(owner_of(".tmp-12-34-", ".tmp"), None);
        assert_eq!(owner_of("other-1-2-3", ".tmp"), None);
    }

    #[test]
    fn a_dead_owners_areas_are_swept_a_live_ones_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let me = Owner::current().expect("owner");
        let mine = dir.path().join(me.name(".tmp"));
        fs::create_dir(&mine).expect("mkdir");
        fs::write(mine.join("f"), vec![1u8; 64 * 1024]).expect("write");

        // A real process that exits: its areas are orphans once it is reaped.
        let mut child = Command::new("true").spawn().expect("spawn true");
        let pid = child.id();
        let start = start_time(pid).expect("stat").unwrap_or(0);
        child.wait().expect("wait");
        let dead = Owner { pid, start };
        assert!(!dead.is_alive());
        let theirs = dir.path().join(dead.name(".tmp"));
        fs::create_dir(&theirs).expect("mkdir");
        fs::write(theirs.join("f"), vec![1u8; 64 * 1024]).expect("write");
        // A name without an owner (an older berth's) is an orphan too.
        let old = dir.path().join(".tmp-abcdef");
        fs::write(&old, b"half").expect("write");
        // Another prefix is not touched.
        let other = dir.path().join("keep");
        fs::write(&other, b"x").expect("write");

        assert_eq!(orphans(dir.path(), ".tmp").expect("orphans"), {
            let mut v = vec![theirs.clone(), old.clone()];
            v.sort();
            v
        });
        let swept = sweep(dir.path(), ".tmp").expect("sweep");
        assert_eq!(swept.entries, 2);
        assert!(swept.bytes >= 64 * 1024, "{swept:?}");
        assert!(mine.exists() && other.exists());
        assert!(!theirs.exists() && !old.exists());
        assert_eq!(sweep(dir.path(), ".tmp").expect("sweep"), Swept::default());
    }

    #[test]
    fn a_reused_pid_is_another_owner() {
        let me = Owner::current().expect("owner");
        let impostor = Owner {
            pid: me.pid,
            start: me.start + 1,
        };
        assert!(!impostor.is_alive());
    }

    #[test]
    fn handing_over_renames_to_the_new_owner() {
        let dir = tempfile::tempdir().expect("tempdir");
        let me = Owner::current().expect("owner");
        let a = dir.path().join(me.name(".trash"));
        fs::create_dir(&a).expect("mkdir");
        let b = me.rename_to(&a, ".trash").expect("rename");
        assert!(!a.exists() && b.exists());
        let name = b.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        assert_eq!(owner_of(name, ".trash"), Some(me));
    }

    #[test]
    fn removal_within_a_budget_stops_and_resumes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tree = dir.path().join("t");
        for i in 0..10 {
            let d = tree.join(format!("d{i}"));
            fs::create_dir_all(&d).expect("mkdir");
            for j in 0..10 {
                fs::write(d.join(format!("f{j}")), b"x").expect("write");
            }
        }
        let mut budget = 25;
        assert!(!remove_within(&tree, &mut budget).expect("remove"));
        assert_eq!(budget, 0);
        assert!(tree.exists());
        let mut budget = 1000;
        assert!(remove_within(&tree, &mut budget).expect("remove"));
        assert!(!tree.exists());
        // 111 entries in all: 25 went first.
        assert_eq!(1000 - budget, 111 - 25);
        let mut budget = 0;
        assert!(remove_within(&tree, &mut budget).expect("gone"));
    }

    #[test]
    fn moving_into_another_dir_names_the_owner() {
        let dir = tempfile::tempdir().expect("tempdir");
        let me = Owner::current().expect("owner");
        let a = dir.path().join("a");
        fs::create_dir(&a).expect("mkdir");
        let trash = dir.path().join("trash");
        fs::create_dir(&trash).expect("mkdir");
        let b = me.move_into(&a, &trash, "trash").expect("move");
        assert_eq!(b.parent(), Some(trash.as_path()));
        let name = b.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        assert_eq!(owner_of(name, "trash"), Some(me));
    }

    #[test]
    fn sweeping_a_missing_dir_is_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(
            sweep(&dir.path().join("nope"), ".tmp").expect("sweep"),
            Swept::default()
        );
    }
}
