//! The monitor's unsafe operations.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// Takes ownership of a descriptor the kernel has just handed to the
/// caller (from dup or SCM_RIGHTS); nothing else may refer to it.
pub fn take_fd(fd: RawFd) -> OwnedFd {
    // SAFETY: per this function's contract the descriptor is open and owned
    // by nothing else, so the OwnedFd becomes its only owner.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Unmaps from this process the pages of its own executable that are
/// never written, the code (`r-xp`) and the read-only data at the start of
/// the file (`r--p` at offset 0), so that an idle monitor does not keep
/// the code of its start-up resident: the kernel maps a whole binary that
/// sits in the page cache around every fault (fault-around), ~1.1 MiB for
/// the static monitor. Whatever runs next faults its pages back in from
/// the page cache; nothing is read from disk and nothing changes for other
/// processes. The written segments (RELRO, data, bss) are left alone.
pub fn drop_executable_pages() {
    let mut buf = [0u8; 8192];
    let Ok(mut maps) = std::fs::File::open("/proc/self/maps") else {
        return;
    };
    let mut len = 0;
    while len < buf.len() {
        match std::io::Read::read(&mut maps, &mut buf[len..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => len += n,
        }
    }
    drop(maps);
    let here = drop_executable_pages as fn() as usize;
    let lines = || {
        buf[..len].split(|b| *b == b'\n').filter_map(|l| {
            // start-end perms offset dev inode path
            let mut f = l.split(|b| *b == b' ').filter(|f| !f.is_empty());
            let range = std::str::from_utf8(f.next()?).ok()?;
            let perms = f.next()?;
            let offset = f.next()?;
            let dev = f.next()?;
            let inode = f.next()?;
            let (start, end) = range.split_once('-')?;
            let start = usize::from_str_radix(start, 16).ok()?;
            let end = usize::from_str_radix(end, 16).ok()?;
            Some((start, end, perms, offset, (dev, inode)))
        })
    };
    // Our executable is the file mapped where this function's code is.
    let Some(exe) = lines()
        .find(|(s, e, ..)| (*s..*e).contains(&here))
        .map(|m| m.4)
    else {
        return;
    };
    if exe.1 == b"0" {
        return;
    }
    for (start, end, perms, offset, file) in lines() {
        let read_only = perms == b"r-xp" || (perms == b"r--p" && offset.iter().all(|b| *b == b'0'));
        if file != exe || !read_only {
            continue;
        }
        // SAFETY: [start, end) is a private mapping of the monitor's own
        // executable that is not writable and was never written (code, or
        // the read-only segment at offset 0: headers, relocation tables,
        // constants; RELRO is mapped from a later offset). Its pages equal
        // the file's, and the file cannot change while it runs (ETXTBSY),
        // so MADV_DONTNEED only drops the page table entries: later
        // accesses fault the same bytes back in from the page cache. No
        // Rust reference is invalidated.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
        }
    }
}

/// Makes `cmd`'s child (the OCI runtime: berth-runtime, runc, crun) start
/// with every signal at its default disposition and an empty mask, so that
/// neither what the monitor blocks (SIGCHLD, SIGTERM, SIGINT, SIGHUP,
/// SIGPIPE) nor what it inherited ignored reaches a container through a
/// runtime that passes it on. Raw system calls: glibc's wrappers refuse
/// the real-time signals 32 and 33.
pub fn clean_signals_on_spawn(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    fn reset() -> std::io::Result<()> {
        // The kernel's `struct sigaction` for SIG_DFL with no flags and an
        // empty mask is all zeroes; four words cover its largest layout.
        let dfl = [0u64; 4];
        for sig in 1..=64 {
            if sig == libc::SIGKILL || sig == libc::SIGSTOP {
                continue;
            }
            // SAFETY: rt_sigaction reads a zeroed kernel sigaction from
            // `dfl` (larger than that struct) and writes nothing (null old
            // action); 8 is the kernel's sigset size.
            let ret = unsafe {
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    sig as libc::c_long,
                    dfl.as_ptr(),
                    std::ptr::null_mut::<libc::c_void>(),
                    8 as libc::size_t,
                )
            };
            if ret != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        let empty: u64 = 0;
        // SAFETY: rt_sigprocmask reads an 8-byte sigset from `empty`, alive
        // for the call, and writes nothing (null old set).
        let ret = unsafe {
            libc::syscall(
                libc::SYS_rt_sigprocmask,
                libc::SIG_SETMASK as libc::c_long,
                &empty as *const u64,
                std::ptr::null_mut::<u64>(),
                8 as libc::size_t,
            )
        };
        if ret != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
    // SAFETY: the closure runs in the forked child before exec and makes
    // only raw system calls (async-signal-safe): no allocation, no lock.
    unsafe {
        cmd.pre_exec(reset);
    }
}
