//! Protection against overwriting the runtime's binary from inside a
//! container through /proc/PID/exe (CVE-2019-5736): before any process enters
//! a container, the runtime re-executes itself from a sealed memfd copy, so
//! the only file a container could reach is an unwritable anonymous one.
//!
//! The attack needs a process of the container that can see the runtime
//! while it runs inside: during `create` (the init waits for `start`, and
//! `exec` may run processes beside it), during `exec`, and whenever the pid
//! namespace is shared. A foreground `run` into a new pid namespace has no
//! such window: the init is alone in its namespace until it execs the
//! user's program, and it skips the copy (about 3 ms of a run).

use crate::error::{Context, Result};
use nix::fcntl::{fcntl, FcntlArg, SealFlag};
use nix::sys::memfd::{memfd_create, MemFdCreateFlag};
use std::ffi::CString;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;

const SEALS: SealFlag = SealFlag::F_SEAL_SEAL
    .union(SealFlag::F_SEAL_SHRINK)
    .union(SealFlag::F_SEAL_GROW)
    .union(SealFlag::F_SEAL_WRITE);

/// Whether this process already runs from a sealed copy.
pub fn is_sealed() -> bool {
    File::open("/proc/self/exe")
        .ok()
        .and_then(|f| fcntl(f.as_raw_fd(), FcntlArg::F_GET_SEALS).ok())
        .is_some_and(|s| SealFlag::from_bits_truncate(s).contains(SEALS))
}

/// Re-executes the running binary from a sealed memfd unless it already is
/// one. Returns only on failure.
pub fn reexec_sealed() -> Result<()> {
    if is_sealed() {
        return Ok(());
    }
    let mut exe = File::open("/proc/self/exe").context(|| "open /proc/self/exe".to_owned())?;
    let name = c"berth-runtime";
    let fd = memfd_create(
        name,
        MemFdCreateFlag::MFD_CLOEXEC | MemFdCreateFlag::MFD_ALLOW_SEALING,
    )
    .context(|| "memfd_create".to_owned())?;
    let mut copy = File::from(fd);
    // Plain reads and writes: std::io::copy would splice (sendfile), and
    // pages still referenced by a splice make the write seal fail with
    // EBUSY (the kernel waits only briefly for such pins).
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = exe
            .read(&mut buf)
            .context(|| "read /proc/self/exe".to_owned())?;
        if n == 0 {
            break;
        }
        copy.write_all(&buf[..n])
            .context(|| "copy the runtime into a memfd".to_owned())?;
    }
    let mut tries = 0;
    loop {
        match fcntl(copy.as_raw_fd(), FcntlArg::F_ADD_SEALS(SEALS)) {
            Err(nix::errno::Errno::EBUSY) if tries < 50 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            r => {
                r.context(|| "seal the memfd".to_owned())?;
                break;
            }
        }
    }
    let args: Vec<CString> = std::env::args_os()
        .filter_map(|a| CString::new(a.as_bytes()).ok())
        .collect();
    let env: Vec<CString> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv).ok()
        })
        .collect();
    let e = nix::unistd::fexecve(copy.as_raw_fd(), &args, &env)
        .err()
        .unwrap_or(nix::errno::Errno::UnknownErrno);
    Err(e).context(|| "re-exec from the sealed memfd".to_owned())
}
