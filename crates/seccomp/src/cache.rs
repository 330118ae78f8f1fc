//! Compiled filters kept on disk between runs.
//!
//! Compiling Docker's default profile costs ~0.75 ms of a container's start
//! (the syscall tables of three ABIs built, ~1650 instructions laid out);
//! the same profile compiles to the same program every time, so a runtime
//! keeps each program in a directory of its own state (0700, files 0600)
//! and reads it back in ~30 µs.
//!
//! An entry is found by the sha256 of the compiler's identity (a hash of
//! this crate's sources and syscall tables, made at build time: a berth
//! whose compiler changed compiles again; the executable's own identity
//! would not do, as a runtime re-executes itself from a new sealed copy
//! each time) and the profile's JSON, and holds that JSON too, compared
//! byte for byte before the program is used. Anything wrong with an entry
//! (short, foreign, another profile) is a miss: the profile is compiled and
//! the entry written again. The cache never makes a start fail.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use libc::sock_filter;
use oci_spec::runtime::LinuxSeccomp;

use crate::{compile, Filter, SeccompError};

const MAGIC: &[u8; 8] = b"BSECBPF1";

/// Entries kept: past this, a write first clears the directory (profiles
/// of older executables, one-off profiles).
const MAX_ENTRIES: usize = 64;

/// [`compile`], through the cache in `dir` (created 0700 when missing).
pub fn compile_cached(profile: &LinuxSeccomp, dir: &Path) -> Result<Filter, SeccompError> {
    let Some((json, path)) = entry_path(profile, dir) else {
        return compile(profile);
    };
    if let Some(f) = read_entry(&path, &json) {
        return Ok(f);
    }
    let filter = compile(profile)?;
    write_entry(dir, &path, &json, &filter);
    Ok(filter)
}

fn entry_path(profile: &LinuxSeccomp, dir: &Path) -> Option<(Vec<u8>, PathBuf)> {
    let json = serde_json::to_vec(profile).ok()?;
    let mut h = berth_digest::Hasher::new();
    h.update(env!("BERTH_SECCOMP_SOURCE_ID").as_bytes());
    h.update(&json);
    Some((json, dir.join(h.finish().hex())))
}

/// Layout: MAGIC, flags (u32 LE), JSON length (u32 LE), the JSON, the
/// number of skipped names (u32 LE) and each (u32 LE length, bytes), then
/// the program's instructions (code u16, jt u8, jf u8, k u32; LE).
fn read_entry(path: &Path, json: &[u8]) -> Option<Filter> {
    let data = std::fs::read(path).ok()?;
    let mut r = Reader(&data);
    if r.take(MAGIC.len())? != MAGIC {
        return None;
    }
    let flags = r.u32()?;
    let n = r.u32()? as usize;
    if r.take(n)? != json {
        return None;
    }
    let mut skipped = Vec::new();
    for _ in 0..r.u32()? {
        let n = r.u32()? as usize;
        skipped.push(String::from_utf8(r.take(n)?.to_vec()).ok()?);
    }
    let rest = r.0;
    if rest.is_empty() || rest.len() % 8 != 0 || rest.len() / 8 > crate::BPF_MAXINSNS {
        return None;
    }
    let program = rest
        .chunks_exact(8)
        .map(|c| sock_filter {
            code: u16::from_le_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect();
    Some(Filter {
        program,
        flags,
        skipped,
    })
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }

    fn u32(&mut self) -> Option<u32> {
        let b = self.take(4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// Writes the entry through a temporary file renamed into place; any
/// failure leaves no entry (the next start compiles again).
fn write_entry(dir: &Path, path: &Path, json: &[u8], f: &Filter) {
    let mut data = Vec::with_capacity(32 + json.len() + f.program.len() * 8);
    data.extend_from_slice(MAGIC);
    let len = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes();
    data.extend_from_slice(&f.flags.to_le_bytes());
    data.extend_from_slice(&len(json.len()));
    data.extend_from_slice(json);
    data.extend_from_slice(&len(f.skipped.len()));
    for s in &f.skipped {
        data.extend_from_slice(&len(s.len()));
        data.extend_from_slice(s.as_bytes());
    }
    for i in &f.program {
        data.extend_from_slice(&i.code.to_le_bytes());
        data.push(i.jt);
        data.push(i.jf);
        data.extend_from_slice(&i.k.to_le_bytes());
    }
    if std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .is_err()
    {
        return;
    }
    if std::fs::read_dir(dir).is_ok_and(|d| d.count() >= MAX_ENTRIES) {
        if let Ok(d) = std::fs::read_dir(dir) {
            for e in d.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut file| file.write_all(&data));
    if written.is_err() || std::fs::rename(&tmp, path).is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn same(a: &Filter, b: &Filter) -> bool {
        a.flags == b.flags
            && a.skipped == b.skipped
            && a.program.len() == b.program.len()
            && a.program
                .iter()
                .zip(&b.program)
                .all(|(x, y)| (x.code, x.jt, x.jf, x.k) == (y.code, y.jt, y.jf, y.k))
    }

    #[test]
    fn a_cached_program_is_the_compiled_one_and_private() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("cache");
        let profile = crate::docker_default_profile();
        let want = compile(&profile).unwrap();
        let first = compile_cached(&profile, &dir).unwrap();
        assert!(same(&first, &want));
        let entries: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
        assert_eq!(entries.len(), 1);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&entries[0].path()), 0o600);
        let again = compile_cached(&profile, &dir).unwrap();
        assert!(same(&again, &want));
        // The program comes from the entry, not from a compile: a change
        // to the entry's last instruction shows.
        let path = entries[0].path();
        let mut data = std::fs::read(&path).unwrap();
        let n = data.len();
        data[n - 4..].copy_from_slice(&0x7fff_0000u32.to_le_bytes());
        std::fs::write(&path, &data).unwrap();
        let read = compile_cached(&profile, &dir).unwrap();
        assert_eq!(read.program.last().unwrap().k, 0x7fff_0000);
        assert!(!same(&read, &want));
    }

    #[test]
    fn a_bad_or_foreign_entry_is_a_miss_and_rewritten() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().to_owned();
        let profile = crate::docker_default_profile();
        let want = compile(&profile).unwrap();
        let (_, path) = entry_path(&profile, &dir).unwrap();
        for junk in [
            &b""[..],
            b"BSECBPF1",
            b"garbage that is not an entry at all",
        ] {
            std::fs::write(&path, junk).unwrap();
            assert!(same(&compile_cached(&profile, &dir).unwrap(), &want));
            assert!(read_entry(&path, &serde_json::to_vec(&profile).unwrap()).is_some());
        }
        // Another profile's entry under this profile's name is not used.
        let mut other = profile.clone();
        other.set_syscalls(None);
        let other_f = compile(&other).unwrap();
        let (other_json, _) = entry_path(&other, &dir).unwrap();
        write_entry(&dir, &path, &other_json, &other_f);
        let got = compile_cached(&profile, &dir).unwrap();
        assert!(same(&got, &want));
        assert!(!same(&got, &other_f));
    }

    #[test]
    fn an_unwritable_cache_still_compiles() {
        let profile = crate::docker_default_profile();
        let want = compile(&profile).unwrap();
        let got = compile_cached(&profile, Path::new("/proc/no/such/dir")).unwrap();
        assert!(same(&got, &want));
    }
}
