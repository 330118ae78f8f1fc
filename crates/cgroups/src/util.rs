//! Small filesystem helpers shared by both backends.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::CgroupError;

/// How long `destroy` keeps retrying rmdir on EBUSY.
pub(crate) const RMDIR_TIMEOUT: Duration = Duration::from_millis(500);
/// How long freeze waits for the kernel to report the cgroup frozen.
pub(crate) const FREEZE_TIMEOUT: Duration = Duration::from_secs(2);

/// Writes `value` to `dir/file` in one write(2).
pub(crate) fn write_raw(dir: &Path, file: &str, value: &str) -> io::Result<()> {
    let _t = berth_trace::span("cgroup", "write")
        .detail(|| format!("{:?} > {}", value.trim_end(), dir.join(file).display()));
    let mut f = fs::OpenOptions::new().write(true).open(dir.join(file))?;
    f.write_all(value.as_bytes())
}

/// Writes a limit: a missing file means the host cannot enforce `field`.
pub(crate) fn set(
    dir: &Path,
    controller: &str,
    file: &str,
    value: &str,
    what: &str,
    field: &str,
) -> Result<(), CgroupError> {
    write_raw(dir, file, value).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            CgroupError::Unsupported {
                field: field.to_string(),
                reason: format!("the host's {controller} controller has no {file}"),
            }
        } else {
            CgroupError::Io {
                action: format!("{what} ({field})"),
                dir: dir.to_path_buf(),
                op: format!("write {file}"),
                source: e,
            }
        }
    })
}

/// Writes a control file (not a limit); errors name the file.
pub(crate) fn write_ctl(
    dir: &Path,
    file: &str,
    value: &str,
    what: &str,
) -> Result<(), CgroupError> {
    write_raw(dir, file, value).map_err(|e| io_err(what, dir, format!("write {file}"), e))
}

pub(crate) fn io_err(what: &str, dir: &Path, op: String, source: io::Error) -> CgroupError {
    CgroupError::Io {
        action: what.to_string(),
        dir: dir.to_path_buf(),
        op,
        source,
    }
}

pub(crate) fn read(dir: &Path, file: &str) -> io::Result<String> {
    fs::read_to_string(dir.join(file))
}

pub(crate) fn read_ctl(dir: &Path, file: &str, what: &str) -> Result<String, CgroupError> {
    read(dir, file).map_err(|e| io_err(what, dir, format!("read {file}"), e))
}

/// Reads a single number; "max" and missing files read as `None`.
pub(crate) fn read_u64(dir: &Path, file: &str) -> Option<u64> {
    let s = read(dir, file).ok()?;
    s.trim().parse().ok()
}

/// Parses "key value" lines (memory.stat, cpu.stat, memory.events...).
pub(crate) fn parse_flat_keyed(s: &str) -> BTreeMap<String, u64> {
    s.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let k = it.next()?;
            let v = it.next()?.parse().ok()?;
            Some((k.to_string(), v))
        })
        .collect()
}

pub(crate) fn flat_keyed(dir: &Path, file: &str) -> BTreeMap<String, u64> {
    read(dir, file)
        .map(|s| parse_flat_keyed(&s))
        .unwrap_or_default()
}

/// Creates `mount/rel` and missing ancestors, appending the directories it
/// created (outermost first) to `created`, also when it fails midway.
/// `on_level(dir, created)` runs for each level from the first component down
/// to the leaf, parents first.
pub(crate) fn mkdir_levels(
    mount: &Path,
    rel: &Path,
    created: &mut Vec<PathBuf>,
    mut on_level: impl FnMut(&Path, bool) -> Result<(), CgroupError>,
) -> Result<(), CgroupError> {
    let mut cur = mount.to_path_buf();
    for comp in rel.components() {
        cur.push(comp);
        let mut tries = 0;
        let mut t = berth_trace::span("cgroup", "mkdir");
        let made = loop {
            match fs::create_dir(&cur) {
                Ok(()) => break true,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => break false,
                // An empty parent removed concurrently by another destroy: retry.
                Err(e) if e.kind() == io::ErrorKind::NotFound && tries < 3 => {
                    tries += 1;
                    if let Some(parent) = cur.parent() {
                        let _ = fs::create_dir_all(parent);
                    }
                }
                Err(e) => {
                    return Err(io_err("create cgroup", &cur, "mkdir".into(), e));
                }
            }
        };
        t.set_detail(|| format!("{}{}", cur.display(), if made { "" } else { " (exists)" }));
        t.end();
        if made {
            created.push(cur.clone());
        }
        on_level(&cur, made)?;
    }
    Ok(())
}

/// Appends the pids in `dir/cgroup.procs` and in every descendant cgroup.
pub(crate) fn collect_pids(dir: &Path, out: &mut Vec<i32>) -> io::Result<()> {
    let procs = match read(dir, "cgroup.procs") {
        Ok(s) => s,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    out.extend(procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            collect_pids(&entry.path(), out)?;
        }
    }
    Ok(())
}

/// Removes `dir` and its descendant cgroups, retrying on EBUSY until `deadline`.
/// A missing directory is not an error.
pub(crate) fn remove_cgroup(dir: &Path, deadline: Instant) -> Result<(), CgroupError> {
    if let Ok(rd) = fs::read_dir(dir) {
        for entry in rd.flatten() {
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_cgroup(&entry.path(), deadline)?;
            }
        }
    }
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => return Err(io_err("remove cgroup", dir, "rmdir".into(), e)),
        }
    }
}

/// Best-effort removal of ancestors this manager created (innermost first),
/// stopping at the first one that is still in use.
pub(crate) fn remove_created_ancestors(created: &[PathBuf], leaf: &Path) {
    for dir in created.iter().rev() {
        if dir == leaf {
            continue;
        }
        if fs::remove_dir(dir).is_err() {
            break;
        }
    }
}

/// Sends `signal` to every pid, ignoring processes that already exited.
pub(crate) fn signal_all(pids: &[i32], signal: nix::sys::signal::Signal) -> io::Result<()> {
    for &pid in pids {
        match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
            Err(e) => return Err(io::Error::from(e)),
        }
    }
    Ok(())
}

/// Hugepage sizes of the host in the cgroup file naming ("2MB", "1GB").
pub(crate) fn hugepage_sizes() -> Vec<String> {
    let Ok(rd) = fs::read_dir("/sys/kernel/mm/hugepages") else {
        return Vec::new();
    };
    let mut v: Vec<String> = rd
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let kb: u64 = name
                .strip_prefix("hugepages-")?
                .strip_suffix("kB")?
                .parse()
                .ok()?;
            Some(size_name(kb))
        })
        .collect();
    v.sort();
    v
}

fn size_name(kb: u64) -> String {
    if kb >= 1 << 20 && kb.is_multiple_of(1 << 20) {
        format!("{}GB", kb >> 20)
    } else if kb >= 1 << 10 && kb.is_multiple_of(1 << 10) {
        format!("{}MB", kb >> 10)
    } else {
        format!("{kb}KB")
    }
}

/// Validates an OCI hugepage size ("2MB") so it is safe to use in a file name.
pub(crate) fn check_page_size(s: &str, field: &str) -> Result<(), CgroupError> {
    let ok = !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric())
        && s.ends_with('B')
        && s.starts_with(|c: char| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(CgroupError::InvalidValue {
            field: field.to_string(),
            reason: format!("{s:?} is not a hugepage size like \"2MB\""),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(size_name(2048), "2MB");
        assert_eq!(size_name(1048576), "1GB");
        assert_eq!(size_name(64), "64KB");
        assert!(check_page_size("2MB", "f").is_ok());
        assert!(check_page_size("../x", "f").is_err());
    }

    #[test]
    fn flat() {
        let m = parse_flat_keyed("a 1\nb 2\nbad\n");
        assert_eq!(m.get("b"), Some(&2));
        assert_eq!(m.len(), 2);
    }
}
