//! The few raw system calls nix has no safe wrapper for. Everything unsafe in
//! the runtime is in this module.

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::unistd::Pid;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

/// `clone(2)` used like `fork(2)` but with namespace flags, so that the child
/// is born in its new namespaces (a new pid namespace makes it PID 1, and a new
/// user namespace owns every other namespace created with it).
/// Returns `None` in the child and the child's pid in the parent.
///
/// The caller must be single-threaded (the runtime is): the child is a copy of
/// the calling thread only.
pub fn clone_process(flags: CloneFlags) -> nix::Result<Option<Pid>> {
    // SAFETY: with a null stack pointer and no CLONE_VM, clone behaves as fork:
    // the child gets a copy-on-write copy of this (single-threaded) process and
    // continues from this point, so no Rust invariant about shared memory is
    // broken. The remaining pointer arguments are unused for these flags.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags.bits() as libc::c_ulong) | (libc::SIGCHLD as libc::c_ulong),
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::null_mut::<libc::c_int>(),
            std::ptr::null_mut::<libc::c_int>(),
            0 as libc::c_ulong,
        )
    };
    match Errno::result(ret)? {
        0 => Ok(None),
        pid => Ok(Some(Pid::from_raw(pid as libc::pid_t))),
    }
}

/// `clone3(2)` used like [`clone_process`], with the child born in the
/// cgroup2 directory open on `cgroup` (`CLONE_INTO_CGROUP`, Linux 5.7): no
/// process has to be moved there afterwards, which would take the kernel's
/// global threadgroup lock. Fails (ENOSYS, E2BIG, EINVAL, EOPNOTSUPP…) on
/// kernels or cgroups that cannot do it; nothing is created then.
///
/// The caller must be single-threaded, as for [`clone_process`].
pub fn clone_into_cgroup(flags: CloneFlags, cgroup: BorrowedFd) -> nix::Result<Option<Pid>> {
    /// `struct clone_args` up to `cgroup` (CLONE_ARGS_SIZE_VER2, 88 bytes).
    #[repr(C)]
    #[derive(Default)]
    struct CloneArgs {
        flags: u64,
        pidfd: u64,
        child_tid: u64,
        parent_tid: u64,
        exit_signal: u64,
        stack: u64,
        stack_size: u64,
        tls: u64,
        set_tid: u64,
        set_tid_size: u64,
        cgroup: u64,
    }
    const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
    let args = CloneArgs {
        flags: (flags.bits() as u32 as u64) | CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup.as_raw_fd() as u64,
        ..CloneArgs::default()
    };
    // SAFETY: `args` is a valid clone_args of the size passed, alive for the
    // call; with no stack and no CLONE_VM the child is a copy-on-write copy of
    // this single-threaded process continuing from here, as with fork, so no
    // Rust invariant about shared memory is broken.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match Errno::result(ret)? {
        0 => Ok(None),
        pid => Ok(Some(Pid::from_raw(pid as libc::pid_t))),
    }
}

pub fn setdomainname(name: &str) -> nix::Result<()> {
    // SAFETY: the pointer and length describe `name`'s bytes, which outlive
    // the call; the kernel copies them and keeps no reference.
    let ret = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    Errno::result(ret).map(drop)
}

/// Marks every descriptor from `first` on close-on-exec, so that nothing the
/// runtime (or whoever started it) had open leaks into the container
/// (CVE-2024-21626). The runtime's own descriptors keep working until exec.
pub fn cloexec_from(first: u32) -> nix::Result<()> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range only changes descriptor flags; it touches no memory.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            libc::c_uint::MAX,
            CLOSE_RANGE_CLOEXEC,
        )
    };
    if ret == 0 {
        return Ok(());
    }
    // Kernels before 5.11: do it one descriptor at a time.
    let fds: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")
        .map_err(|_| Errno::last())?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&fd: &RawFd| fd >= first as RawFd)
        .collect();
    for fd in fds {
        // SAFETY: F_SETFD only sets the descriptor flag; an fd that closed
        // meanwhile just returns EBADF, which we ignore.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    Ok(())
}

/// Makes the terminal open on `fd` the controlling terminal of this session.
pub fn set_controlling_tty(fd: RawFd) -> nix::Result<()> {
    // SAFETY: TIOCSCTTY takes an integer argument, no pointers.
    let ret = unsafe { libc::ioctl(fd, libc::TIOCSCTTY, 0) };
    Errno::result(ret).map(drop)
}

pub fn set_window_size(fd: RawFd, rows: u16, cols: u16) -> nix::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a `winsize` from the pointer, which points at a
    // live, initialised struct for the duration of the call.
    let ret = unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) };
    Errno::result(ret).map(drop)
}

pub fn window_size(fd: RawFd) -> Option<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a `winsize` through the pointer, which points
    // at a live struct we own.
    let ret = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) };
    (ret == 0).then_some((ws.ws_row, ws.ws_col))
}

/// Ends the process at once, without running destructors or atexit handlers:
/// what a forked child must do when it cannot exec.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and is async-signal-safe.
    unsafe { libc::_exit(code) }
}

/// Takes ownership of a descriptor the kernel has just handed to the caller
/// (the result of openat2, or one received with SCM_RIGHTS). Only call it with
/// such a fresh descriptor, which nothing else in the process refers to.
pub fn take_fd(fd: RawFd) -> std::os::fd::OwnedFd {
    use std::os::fd::FromRawFd;
    // SAFETY: per this function's contract the descriptor is open and owned
    // by no other object, so the OwnedFd becomes its only owner.
    unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) }
}

/// Gives the calling process what a freshly started program expects:
/// every signal at its default disposition and none blocked, as Docker's
/// containers start (SigIgn and SigBlk 0). A process inherits ignored
/// signals and its mask across execve; the runtime is a Rust program,
/// which ignores SIGPIPE, and whoever started it may have ignored or
/// blocked more (the real-time signals 32 and 33 included, which glibc's
/// wrappers refuse to touch, hence the raw system calls).
///
/// Only raw system calls: safe between fork and exec.
pub fn reset_signals() -> nix::Result<()> {
    // The kernel's `struct sigaction` with SIG_DFL (0), no flags, no
    // restorer and an empty mask is all zeroes on every architecture;
    // four words cover its largest layout.
    let dfl = [0u64; 4];
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: rt_sigaction reads a kernel sigaction from `dfl`, which is
        // zeroed and larger than that struct, and writes nothing (the old
        // action pointer is null); the sigset size is the kernel's (8).
        let ret = unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig as libc::c_long,
                dfl.as_ptr(),
                std::ptr::null_mut::<libc::c_void>(),
                8 as libc::size_t,
            )
        };
        Errno::result(ret)?;
    }
    let empty: u64 = 0;
    // SAFETY: rt_sigprocmask reads an 8-byte kernel sigset from `empty`,
    // which lives across the call, and writes nothing (null old set).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK as libc::c_long,
            &empty as *const u64,
            std::ptr::null_mut::<u64>(),
            8 as libc::size_t,
        )
    };
    Errno::result(ret).map(drop)
}

/// Makes `cmd`'s child start with every signal at its default disposition
/// and an empty mask ([`reset_signals`]), whatever this process ignores or
/// blocks: what a runtime (runc, crun) we start passes on to its container.
pub fn clean_signals_on_spawn(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child before exec and only
    // makes raw system calls (async-signal-safe): no allocation, no lock.
    unsafe {
        cmd.pre_exec(|| reset_signals().map_err(std::io::Error::from));
    }
}

/// `struct mount_attr` of mount_setattr(2) (MOUNT_ATTR_SIZE_VER0).
#[repr(C)]
#[derive(Default, Debug, Clone, Copy, PartialEq)]
pub struct MountAttr {
    pub attr_set: u64,
    pub attr_clr: u64,
    pub propagation: u64,
    pub userns_fd: u64,
}

/// `mount_setattr(fd, "", AT_EMPTY_PATH | (AT_RECURSIVE if recursive), attr)`:
/// changes the mount open on `fd` (and, recursive, every mount under it).
pub fn mount_setattr(fd: BorrowedFd, recursive: bool, attr: &MountAttr) -> nix::Result<()> {
    const AT_RECURSIVE: libc::c_uint = 0x8000;
    let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= AT_RECURSIVE;
    }
    // SAFETY: the path is a static NUL-terminated empty string and `attr`
    // points at a live `mount_attr` of the size passed; the kernel only reads
    // both during the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    Errno::result(ret).map(drop)
}

/// `personality(persona)`; returns the previous persona.
pub fn personality(persona: u32) -> nix::Result<i32> {
    // SAFETY: personality takes an integer and touches no memory of ours.
    let ret = unsafe { libc::personality(persona as libc::c_ulong) };
    Errno::result(ret)
}

/// `ioprio_set(IOPRIO_WHO_PROCESS, 0, class << 13 | level)` on this process.
pub fn ioprio_set_self(class: u32, level: u32) -> nix::Result<()> {
    const IOPRIO_WHO_PROCESS: libc::c_int = 1;
    let prio = ((class << 13) | level) as libc::c_int;
    // SAFETY: integer arguments only; no memory is read or written.
    let ret = unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, prio) };
    Errno::result(ret).map(drop)
}

/// `struct sched_attr` of sched_setattr(2) (SCHED_ATTR_SIZE_VER0).
#[repr(C)]
#[derive(Default, Debug, Clone, Copy)]
pub struct SchedAttr {
    pub size: u32,
    pub policy: u32,
    pub flags: u64,
    pub nice: i32,
    pub priority: u32,
    pub runtime: u64,
    pub deadline: u64,
    pub period: u64,
}

/// `sched_setattr(0, attr, 0)` on this thread (the process: it has one).
pub fn sched_setattr_self(attr: &SchedAttr) -> nix::Result<()> {
    let attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        ..*attr
    };
    // SAFETY: `attr` is a live, initialised sched_attr whose `size` field is
    // its size; the kernel only reads it during the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_sched_setattr,
            0 as libc::pid_t,
            &attr as *const SchedAttr,
            0 as libc::c_uint,
        )
    };
    Errno::result(ret).map(drop)
}

/// `set_mempolicy(mode | flags, nodemask, maxnode)`, the mask given as
/// 64-bit words (node n is bit n % 64 of word n / 64).
pub fn set_mempolicy(mode: i32, mask: &[u64]) -> nix::Result<()> {
    let (ptr, maxnode) = if mask.is_empty() {
        (std::ptr::null(), 0)
    } else {
        // The kernel reads maxnode - 1 bits.
        (mask.as_ptr(), mask.len() as libc::c_ulong * 64 + 1)
    };
    // SAFETY: `ptr` is null with maxnode 0, or points at `mask`, which holds
    // maxnode - 1 bits and lives across the call; the kernel only reads it.
    let ret = unsafe { libc::syscall(libc::SYS_set_mempolicy, mode, ptr, maxnode) };
    Errno::result(ret).map(drop)
}

/// `open_tree(AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC |
/// (AT_RECURSIVE if recursive))`: a detached copy of the mount (tree) at
/// `path`, not yet attached anywhere.
pub fn open_tree_clone(
    path: &std::path::Path,
    recursive: bool,
) -> nix::Result<std::os::fd::OwnedFd> {
    use std::os::unix::ffi::OsStrExt;
    const OPEN_TREE_CLONE: libc::c_uint = 1;
    const AT_RECURSIVE: libc::c_uint = 0x8000;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    let mut flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint;
    if recursive {
        flags |= AT_RECURSIVE;
    }
    // SAFETY: `path` is a NUL-terminated string alive across the call, read
    // only by the kernel; the result is a new descriptor we take ownership of.
    let ret = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags) };
    Errno::result(ret).map(|fd| take_fd(fd as RawFd))
}

/// `move_mount(from, "", to, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH)`:
/// attaches the detached tree open on `from` onto the directory open on `to`.
pub fn move_mount_fds(from: BorrowedFd, to: BorrowedFd) -> nix::Result<()> {
    const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x04;
    const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;
    // SAFETY: both paths are static empty NUL-terminated strings; the kernel
    // reads them and the two descriptors only.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from.as_raw_fd(),
            c"".as_ptr(),
            to.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    Errno::result(ret).map(drop)
}

extern "C" fn die_of(sig: libc::c_int) {
    // SAFETY: _exit is async-signal-safe and never returns.
    unsafe { libc::_exit(128 + sig) }
}

/// Makes the signals that end a process by default end this one (exit
/// status 128+N), unblocked, even as PID 1 of a pid namespace, where the
/// kernel drops a signal that has no handler: a created container's init,
/// waiting for `start`, then dies of `kill ID TERM` as runc's (a Go program,
/// which handles them all) does. The program's exec resets them
/// ([`reset_signals`]).
pub fn die_on_terminating_signals() -> nix::Result<()> {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let act = SigAction::new(SigHandler::Handler(die_of), SaFlags::empty(), SigSet::all());
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGHUP,
        Signal::SIGINT,
        Signal::SIGQUIT,
        Signal::SIGTERM,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGALRM,
        Signal::SIGVTALRM,
        Signal::SIGXCPU,
        Signal::SIGXFSZ,
        Signal::SIGPWR,
    ] {
        // SAFETY: the handler only calls _exit, which is async-signal-safe;
        // the previous action is not needed.
        unsafe { sigaction(s, &act) }?;
        set.add(s);
    }
    set.thread_unblock()
}

/// The ID of the mount `path` is on (`statx`'s `stx_mnt_id`, not following
/// a final symlink): the 64-bit unique one where the kernel has it (Linux
/// 6.8+), else the reusable one. None when statx fails.
pub fn mount_id(path: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    const STATX_MNT_ID: libc::c_uint = 0x1000;
    const STATX_MNT_ID_UNIQUE: libc::c_uint = 0x4000;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: an all-zero statx is a valid value (integers only).
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a live NUL-terminated path and `stx` a live statx the
    // kernel writes into during the call only.
    let ret = unsafe {
        libc::statx(
            libc::AT_FDCWD,
            c.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW | libc::AT_NO_AUTOMOUNT,
            STATX_MNT_ID | STATX_MNT_ID_UNIQUE,
            &mut stx,
        )
    };
    (ret == 0 && stx.stx_mask & (STATX_MNT_ID | STATX_MNT_ID_UNIQUE) != 0).then_some(stx.stx_mnt_id)
}

/// Makes `cmd`'s child a session leader, and with `unshare` one in a new
/// user namespace with a new mount namespace it owns (`unshare(CLONE_NEWUSER
/// | CLONE_NEWNS)` before exec): rootless berth's pause process, mapped by
/// its parent afterwards.
pub fn pause_on_spawn(cmd: &mut std::process::Command, unshare: bool) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child before exec and only
    // makes raw system calls (setsid, unshare: async-signal-safe); it
    // allocates nothing and takes no lock.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if unshare && libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Brings `lo` up in the calling process's network namespace, as runc and
/// crun do for a network namespace they create (Docker's `--network none`
/// is such a namespace with only `lo`, up): `SIOCGIFFLAGS`, then
/// `SIOCSIFFLAGS` with `IFF_UP`, on a datagram socket. nix wraps neither.
pub fn loopback_up() -> std::io::Result<()> {
    use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    // SAFETY: ifreq is plain old data (a name and a union of integers and
    // addresses), for which all zero bytes are a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    req.ifr_name[0] = b'l' as libc::c_char;
    req.ifr_name[1] = b'o' as libc::c_char;
    // SAFETY: SIOCGIFFLAGS reads the NUL-terminated name and writes the
    // flags member of `req`, which lives for the call; the socket is open.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    if flags & libc::IFF_UP as libc::c_short != 0 {
        return Ok(());
    }
    req.ifr_ifru.ifru_flags = flags | libc::IFF_UP as libc::c_short;
    // SAFETY: as above; SIOCSIFFLAGS only reads `req`.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
