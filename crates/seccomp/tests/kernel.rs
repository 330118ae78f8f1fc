//! Real-kernel tests: each test forks a child that installs a filter and
//! checks the behaviour of raw syscalls, reporting through its exit code.
//! Everything the child needs is prepared before `fork`; the child only
//! makes raw syscalls and leaves with `_exit`.

use std::io;

use berth_seccomp::{compile, docker_default_profile, parse_profile, Filter};
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult};

/// Runs `body` in a forked child after installing `filter` (with
/// no_new_privs). Exit codes 100/101 mean no_new_privs/install failed.
fn in_child(filter: &Filter, body: impl FnOnce() -> i32) -> WaitStatus {
    // SAFETY: the child only makes raw syscalls (prctl, seccomp, the ones in
    // `body`) on memory prepared before the fork and leaves with `_exit`;
    // it neither allocates nor takes locks another thread might hold.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            let code = if berth_seccomp::set_no_new_privs().is_err() {
                100
            } else if filter.install().is_err() {
                101
            } else {
                body()
            };
            // SAFETY: _exit is async-signal-safe and never returns.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => waitpid(child, None).expect("waitpid"),
    }
}

fn assert_exit0(st: WaitStatus) {
    match st {
        WaitStatus::Exited(_, 0) => {}
        WaitStatus::Exited(_, c) => panic!("child failed check #{c}"),
        other => panic!("child ended with {other:?}"),
    }
}

/// Raw syscall; returns `Ok(ret)` or `Err(errno)`. No allocation.
fn sys(nr: libc::c_long, a: [u64; 6]) -> Result<libc::c_long, i32> {
    // SAFETY: the tests only call syscalls whose arguments are plain
    // integers or pointers prepared by the caller.
    let r = unsafe { libc::syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]) };
    if r == -1 {
        Err(io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        Ok(r)
    }
}

fn profile(v: serde_json::Value) -> Filter {
    compile(&parse_profile(&v.to_string()).expect("profile parses")).expect("profile compiles")
}

#[test]
fn default_allow_getpid_errno() {
    let f = profile(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1234}]
    }));
    assert_exit0(in_child(&f, || {
        if sys(libc::SYS_getpid, [0; 6]) != Err(1234) {
            return 1;
        }
        if sys(libc::SYS_getppid, [0; 6]).is_err() {
            return 2;
        }
        0
    }));
}

#[test]
fn default_errno_allow_list_blocks_mkdir() {
    let f = profile(serde_json::json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"],
        "syscalls": [{"names": ["exit_group", "exit", "rt_sigreturn", "getpid", "write"],
                      "action": "SCMP_ACT_ALLOW"}]
    }));
    let path = b"/tmp/berth-seccomp-should-not-exist\0";
    assert_exit0(in_child(&f, || {
        if sys(libc::SYS_getpid, [0; 6]).is_err() {
            return 1;
        }
        let r = sys(
            libc::SYS_mkdirat,
            [libc::AT_FDCWD as u64, path.as_ptr() as u64, 0o700, 0, 0, 0],
        );
        if r != Err(libc::EPERM) {
            return 2;
        }
        if sys(libc::SYS_getppid, [0; 6]) != Err(libc::EPERM) {
            return 3;
        }
        0
    }));
}

/// getpgid rule `arg0 <op> value` → ERRNO(77); each case checks whether
/// the rule matched.
fn check_op(op: &str, value: u64, value_two: Option<u64>, cases: &[(u64, bool)]) {
    let mut arg = serde_json::json!({"index": 0, "value": value, "op": op});
    if let Some(v2) = value_two {
        arg["valueTwo"] = v2.into();
    }
    let f = profile(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getpgid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 77,
                      "args": [arg]}]
    }));
    let st = in_child(&f, || {
        for (i, (x, matches)) in cases.iter().enumerate() {
            let hit = sys(libc::SYS_getpgid, [*x, 0, 0, 0, 0, 0]) == Err(77);
            if hit != *matches {
                return i as i32 + 1;
            }
        }
        0
    });
    match st {
        WaitStatus::Exited(_, 0) => {}
        WaitStatus::Exited(_, c) => panic!(
            "{op} {value:#x}: case {:?} wrong",
            cases.get(c as usize - 1)
        ),
        other => panic!("child ended with {other:?}"),
    }
}

const BIG: u64 = 0x1_0000_0005;

#[test]
fn op_eq() {
    check_op(
        "SCMP_CMP_EQ",
        5,
        None,
        &[(5, true), (4, false), (6, false), (BIG, false)],
    );
    check_op(
        "SCMP_CMP_EQ",
        BIG,
        None,
        &[
            (BIG, true),
            (5, false),
            (0x2_0000_0005, false),
            (BIG + 1, false),
        ],
    );
}

#[test]
fn op_ne() {
    check_op(
        "SCMP_CMP_NE",
        5,
        None,
        &[(5, false), (4, true), (6, true), (BIG, true)],
    );
    check_op(
        "SCMP_CMP_NE",
        BIG,
        None,
        &[(BIG, false), (5, true), (BIG - 1, true)],
    );
}

#[test]
fn op_gt() {
    check_op(
        "SCMP_CMP_GT",
        BIG,
        None,
        &[
            (BIG, false),
            (BIG + 1, true),
            (BIG - 1, false),
            (0xffff_ffff, false),
            (6, false),
            (0x2_0000_0000, true),
            (u64::MAX, true),
        ],
    );
    check_op(
        "SCMP_CMP_GT",
        5,
        None,
        &[(5, false), (6, true), (4, false), (BIG, true)],
    );
}

#[test]
fn op_ge() {
    check_op(
        "SCMP_CMP_GE",
        BIG,
        None,
        &[
            (BIG, true),
            (BIG + 1, true),
            (BIG - 1, false),
            (6, false),
            (0x2_0000_0000, true),
        ],
    );
}

#[test]
fn op_lt() {
    check_op(
        "SCMP_CMP_LT",
        BIG,
        None,
        &[
            (BIG, false),
            (BIG - 1, true),
            (BIG + 1, false),
            (0xffff_ffff, true),
            (6, true),
            (0, true),
            (0x2_0000_0000, false),
        ],
    );
}

#[test]
fn op_le() {
    check_op(
        "SCMP_CMP_LE",
        BIG,
        None,
        &[
            (BIG, true),
            (BIG + 1, false),
            (BIG - 1, true),
            (5, true),
            (u64::MAX, false),
        ],
    );
    check_op(
        "SCMP_CMP_LE",
        5,
        None,
        &[(5, true), (6, false), (0, true), (BIG, false)],
    );
}

#[test]
fn op_masked_eq() {
    check_op(
        "SCMP_CMP_MASKED_EQ",
        0x1_0000_00f0,
        Some(0x1_0000_0010),
        &[
            (0x1_0000_0010, true),
            (0x1_0000_001f, true),
            (0xff_0000_0013, true),
            (0x10, false),
            (0x1_0000_0020, false),
            (0x2_0000_0010, false),
        ],
    );
    // Docker's clone rule shape: no namespace flag set.
    check_op(
        "SCMP_CMP_MASKED_EQ",
        0x7e02_0000,
        Some(0),
        &[
            (0x11, true),
            (0x1000_0000, false),
            (0x2_0000, false),
            (0x1_0000_0000, true),
        ],
    );
}

#[test]
fn args_are_anded_and_rules_tried_in_order() {
    let f = profile(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["getpgid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 77,
             "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                      {"index": 1, "value": 9, "op": "SCMP_CMP_EQ"}]},
            {"names": ["getpgid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 78,
             "args": [{"index": 0, "value": 10, "op": "SCMP_CMP_LE"}]},
            {"names": ["getpgid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 79}
        ]
    }));
    assert_exit0(in_child(&f, || {
        let call = |a: u64, b: u64| sys(libc::SYS_getpgid, [a, b, 0, 0, 0, 0]);
        if call(1, 9) != Err(77) {
            return 1;
        }
        if call(1, 8) != Err(78) {
            return 2;
        }
        if call(10, 9) != Err(78) {
            return 3;
        }
        if call(11, 9) != Err(79) {
            return 4;
        }
        0
    }));
}

#[test]
fn kill_process_kills_with_sigsys() {
    let f = profile(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_KILL_PROCESS"}]
    }));
    let st = in_child(&f, || {
        let _ = sys(libc::SYS_getppid, [0; 6]);
        0
    });
    assert!(
        matches!(st, WaitStatus::Signaled(_, Signal::SIGSYS, _)),
        "{st:?}"
    );
}

#[test]
fn trap_and_default_kill_thread() {
    let f = profile(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_TRAP"}]
    }));
    let st = in_child(&f, || {
        let _ = sys(libc::SYS_getppid, [0; 6]);
        0
    });
    assert!(
        matches!(st, WaitStatus::Signaled(_, Signal::SIGSYS, _)),
        "{st:?}"
    );
}

#[test]
fn docker_profile_needs_long_jumps_and_works() {
    let f = compile(&docker_default_profile()).expect("docker profile compiles");
    assert!(f.program.len() > 300, "{} insns", f.program.len());
    assert!(
        f.program.iter().any(|i| i.code == 0x05),
        "expected long jumps (BPF_JMP|BPF_JA)"
    );
    let devnull = b"/dev/null\0";
    assert_exit0(in_child(&f, || {
        if sys(libc::SYS_getpid, [0; 6]).is_err() {
            return 1;
        }
        if sys(
            libc::SYS_unshare,
            [libc::CLONE_NEWUSER as u64, 0, 0, 0, 0, 0],
        ) != Err(libc::EPERM)
        {
            return 2;
        }
        let Ok(fd) = sys(
            libc::SYS_openat,
            [
                libc::AT_FDCWD as u64,
                devnull.as_ptr() as u64,
                libc::O_RDONLY as u64,
                0,
                0,
                0,
            ],
        ) else {
            return 3;
        };
        if sys(libc::SYS_close, [fd as u64, 0, 0, 0, 0, 0]).is_err() {
            return 4;
        }
        // clone with a namespace flag: denied; plain fork-like clone: allowed.
        let newns = (libc::CLONE_NEWNS | libc::SIGCHLD) as u64;
        if sys(libc::SYS_clone, [newns, 0, 0, 0, 0, 0]) != Err(libc::EPERM) {
            return 5;
        }
        match sys(libc::SYS_clone, [libc::SIGCHLD as u64, 0, 0, 0, 0, 0]) {
            Ok(0) => {
                // SAFETY: grandchild leaves immediately.
                unsafe { libc::_exit(7) }
            }
            Ok(pid) => {
                let mut status = 0i32;
                let st = &mut status as *mut i32 as u64;
                if sys(libc::SYS_wait4, [pid as u64, st, 0, 0, 0, 0]) != Ok(pid) {
                    return 6;
                }
                if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 7 {
                    return 7;
                }
            }
            Err(_) => return 8,
        }
        // clone3 → ENOSYS so libc falls back to clone.
        if sys(libc::SYS_clone3, [0; 6]) != Err(libc::ENOSYS) {
            return 9;
        }
        // personality: query allowed, other values denied.
        if sys(libc::SYS_personality, [0xffff_ffff, 0, 0, 0, 0, 0]).is_err() {
            return 10;
        }
        if sys(libc::SYS_personality, [0x0040_0000, 0, 0, 0, 0, 0]) != Err(libc::EPERM) {
            return 11;
        }
        // socket: AF_VSOCK denied, AF_UNIX allowed.
        if sys(
            libc::SYS_socket,
            [libc::AF_VSOCK as u64, libc::SOCK_STREAM as u64, 0, 0, 0, 0],
        ) != Err(libc::EPERM)
        {
            return 12;
        }
        match sys(
            libc::SYS_socket,
            [libc::AF_UNIX as u64, libc::SOCK_STREAM as u64, 0, 0, 0, 0],
        ) {
            Ok(s) => {
                let _ = sys(libc::SYS_close, [s as u64, 0, 0, 0, 0, 0]);
            }
            Err(_) => return 13,
        }
        // Denied outright: mount, setns, reboot-class calls.
        if sys(libc::SYS_setns, [0, 0, 0, 0, 0, 0]) != Err(libc::EPERM) {
            return 14;
        }
        #[cfg(target_arch = "x86_64")]
        {
            // x32 numbers: SCMP_ARCH_X32 is listed → x32 rules. getpid is
            // allowed (the kernel answers, ENOSYS if x32 is disabled),
            // unshare is denied by the filter.
            if sys(0x4000_0000 | libc::SYS_getpid, [0; 6]) == Err(libc::EPERM) {
                return 15;
            }
            let unshare = [libc::CLONE_NEWUSER as u64, 0, 0, 0, 0, 0];
            if sys(0x4000_0000 | libc::SYS_unshare, unshare) != Err(libc::EPERM) {
                return 16;
            }
        }
        0
    }));
}

#[cfg(target_arch = "x86_64")]
#[test]
fn x32_numbers_do_not_slip_past_when_x32_not_listed() {
    // Deny-list profile: x32 calls must not bypass it; x32 is not listed,
    // so they take the bad-arch action (kill the process).
    let f = profile(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ERRNO"}]
    }));
    let st = in_child(&f, || {
        if sys(libc::SYS_getpid, [0; 6]) != Err(libc::EPERM) {
            return 1;
        }
        let _ = sys(0x4000_0000 | libc::SYS_getpid, [0; 6]);
        2
    });
    assert!(
        matches!(st, WaitStatus::Signaled(_, Signal::SIGSYS, _)),
        "{st:?}"
    );
}

#[test]
fn unknown_names_are_skipped_and_reported() {
    let f = profile(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["definitely_not_a_syscall", "getpid", "definitely_not_a_syscall"],
                      "action": "SCMP_ACT_ERRNO", "errnoRet": 55}]
    }));
    assert_eq!(f.skipped, vec!["definitely_not_a_syscall".to_owned()]);
    assert_exit0(in_child(&f, || {
        if sys(libc::SYS_getpid, [0; 6]) != Err(55) {
            return 1;
        }
        0
    }));
}

#[test]
fn log_action_and_flags() {
    let f = profile(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_LOG"}]
    }));
    assert_eq!(
        f.flags,
        berth_seccomp::flag::TSYNC | berth_seccomp::flag::SPEC_ALLOW
    );
    assert_exit0(in_child(&f, || {
        if sys(libc::SYS_getppid, [0; 6]).is_err() {
            return 1;
        }
        0
    }));
}

/// An i386 syscall from 64-bit code (`int 0x80`), seen by seccomp as
/// AUDIT_ARCH_I386. Returns the raw result (negative errno on failure).
#[cfg(target_arch = "x86_64")]
fn int80(nr: u32, a0: u32) -> i32 {
    let ret: i32;
    // SAFETY: `int 0x80` enters the kernel's ia32 syscall path; the calls
    // made here take integer arguments only. rbx (reserved by LLVM) is
    // swapped in and out around the call; r8-r11 may be clobbered.
    unsafe {
        std::arch::asm!(
            "xchg rbx, {b}",
            "int 0x80",
            "xchg rbx, {b}",
            b = inout(reg) u64::from(a0) => _,
            inlateout("eax") nr as i32 => ret,
            out("r8") _, out("r9") _, out("r10") _, out("r11") _,
            options(nostack),
        );
    }
    ret
}

/// Whether this kernel runs i386 syscalls from 64-bit processes.
#[cfg(target_arch = "x86_64")]
fn ia32_works() -> bool {
    // SAFETY: see `in_child`; without ia32 emulation `int 0x80` kills only
    // the child.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            let ok = int80(20, 0) == nix::unistd::getpid().as_raw();
            // SAFETY: _exit never returns.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) }
        }
        ForkResult::Parent { child } => {
            matches!(waitpid(child, None), Ok(WaitStatus::Exited(_, 0)))
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[test]
fn i386_calls_use_compat_rules() {
    if !ia32_works() {
        eprintln!("kernel without ia32 emulation, skipping");
        return;
    }
    const I386_GETPID: u32 = 20;
    const I386_PERSONALITY: u32 = 136;
    const I386_UNSHARE: u32 = 310;
    let f = compile(&docker_default_profile()).expect("compiles");
    assert_exit0(in_child(&f, || {
        if int80(I386_GETPID, 0) <= 0 {
            return 1;
        }
        if int80(I386_UNSHARE, libc::CLONE_NEWUSER as u32) != -libc::EPERM {
            return 2;
        }
        if int80(I386_PERSONALITY, 0xffff_ffff) < 0 {
            return 3;
        }
        if int80(I386_PERSONALITY, 0x0040_0000) != -libc::EPERM {
            return 4;
        }
        0
    }));

    // i386 not listed: bad arch, the process is killed.
    let f = profile(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"]
    }));
    let st = in_child(&f, || {
        let _ = int80(I386_GETPID, 0);
        1
    });
    assert!(
        matches!(st, WaitStatus::Signaled(_, Signal::SIGSYS, _)),
        "{st:?}"
    );
}
