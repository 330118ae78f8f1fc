//! Architectures: audit values and syscall-name tables.
//!
//! Rules are compiled for the native architecture of the build and for its
//! 32-bit compat architecture (i386 on x86_64, arm on aarch64) when the
//! profile lists it. On x86_64, x32 syscalls arrive under AUDIT_ARCH_X86_64
//! with `__X32_SYSCALL_BIT` set in the number; see `compile.rs`.

use std::collections::HashMap;
use std::sync::OnceLock;

use oci_spec::runtime::Arch;

// Only the ones of the build's architectures are used.
#[allow(dead_code)]
pub(crate) const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
#[allow(dead_code)]
pub(crate) const AUDIT_ARCH_I386: u32 = 0x4000_0003;
#[allow(dead_code)]
pub(crate) const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
#[allow(dead_code)]
pub(crate) const AUDIT_ARCH_ARM: u32 = 0x4000_0028;
/// `__X32_SYSCALL_BIT`: x32 syscall numbers have this bit set.
pub(crate) const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// Name → number.
pub(crate) type Table = HashMap<&'static str, u32>;

/// Syscalls newer than the `syscalls` crate's tables. Since Linux 5.x new
/// syscalls get the same number on every architecture (x86_64, i386, x32
/// (plus the x32 bit), arm, aarch64).
const NEWER_COMMON: [(&str, u32); 8] = [
    ("mseal", 462),
    ("setxattrat", 463),
    ("getxattrat", 464),
    ("listxattrat", 465),
    ("removexattrat", 466),
    ("open_tree_attr", 467),
    ("file_getattr", 468),
    ("file_setattr", 469),
];

macro_rules! table_fn {
    ($name:ident, $ty:ty, $extra:expr) => {
        pub(crate) fn $name() -> &'static Table {
            static T: OnceLock<Table> = OnceLock::new();
            T.get_or_init(|| {
                let first = <$ty>::first().id();
                let last = <$ty>::last().id();
                let mut t: Table = (first..=last)
                    .filter_map(|i| usize::try_from(i).ok().and_then(<$ty>::new))
                    .filter_map(|s| u32::try_from(s.id()).ok().map(|nr| (s.name(), nr)))
                    .collect();
                for (name, nr) in NEWER_COMMON.iter().chain($extra) {
                    t.entry(name).or_insert(*nr);
                }
                t
            })
        }
    };
}

#[cfg(target_arch = "x86_64")]
table_fn!(
    native_table,
    syscalls::x86_64::Sysno,
    // x86_64 only (Linux 6.11).
    &[("uretprobe", 335)]
);
#[cfg(target_arch = "x86_64")]
table_fn!(compat_table, syscalls::x86::Sysno, &[]);
#[cfg(target_arch = "aarch64")]
table_fn!(native_table, syscalls::aarch64::Sysno, &[]);
#[cfg(target_arch = "aarch64")]
table_fn!(compat_table, syscalls::arm::Sysno, &[]);

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
compile_error!("berth-seccomp supports x86_64 and aarch64 hosts only");

/// x32 syscalls that have their own numbers (`__X32_SYSCALL_BIT + 512..`),
/// in order from 512; the x86_64 numbers of these names are not x32 calls.
#[cfg(target_arch = "x86_64")]
const X32_OWN: [&str; 36] = [
    "rt_sigaction",
    "rt_sigreturn",
    "ioctl",
    "readv",
    "writev",
    "recvfrom",
    "sendmsg",
    "recvmsg",
    "execve",
    "ptrace",
    "rt_sigpending",
    "rt_sigtimedwait",
    "rt_sigqueueinfo",
    "sigaltstack",
    "timer_create",
    "mq_notify",
    "kexec_load",
    "waitid",
    "set_robust_list",
    "get_robust_list",
    "vmsplice",
    "move_pages",
    "preadv",
    "pwritev",
    "rt_tgsigqueueinfo",
    "recvmmsg",
    "sendmmsg",
    "process_vm_readv",
    "process_vm_writev",
    "setsockopt",
    "getsockopt",
    "io_setup",
    "io_submit",
    "execveat",
    "preadv2",
    "pwritev2",
];

/// x86_64 syscalls that x32 does not have.
#[cfg(target_arch = "x86_64")]
const NOT_X32: [&str; 11] = [
    "_sysctl",
    "create_module",
    "epoll_ctl_old",
    "epoll_wait_old",
    "get_kernel_syms",
    "get_thread_area",
    "nfsservctl",
    "query_module",
    "set_thread_area",
    "uselib",
    "vserver",
];

/// The x32 table: the x86_64 numbers with `__X32_SYSCALL_BIT` set, except
/// for [`X32_OWN`] (512..) and [`NOT_X32`] (absent).
#[cfg(target_arch = "x86_64")]
pub(crate) fn x32_table() -> &'static Table {
    static T: OnceLock<Table> = OnceLock::new();
    T.get_or_init(|| {
        native_table()
            .iter()
            .filter(|(name, _)| !NOT_X32.contains(name))
            .map(|(name, nr)| {
                let nr = match X32_OWN.iter().position(|n| n == name) {
                    Some(i) => 512 + i as u32,
                    None => *nr,
                };
                (*name, nr | X32_SYSCALL_BIT)
            })
            .collect()
    })
}

/// x32 (x86_64 only): calls arrive under AUDIT_ARCH_X86_64 with
/// `__X32_SYSCALL_BIT` set; pointers and longs are 32 bits, so only the low
/// halves of arguments are compared, as libseccomp does.
#[cfg(target_arch = "x86_64")]
pub(crate) fn x32() -> Option<ArchSpec> {
    Some(ArchSpec {
        scmp: Arch::ScmpArchX32,
        audit: AUDIT_ARCH_X86_64,
        table: x32_table,
        args_64bit: false,
    })
}

/// No x32 outside x86_64.
#[cfg(not(target_arch = "x86_64"))]
pub(crate) fn x32() -> Option<ArchSpec> {
    None
}

/// An architecture we compile rules for.
#[derive(Clone, Copy)]
pub(crate) struct ArchSpec {
    /// The OCI name of the architecture.
    pub scmp: Arch,
    /// `seccomp_data.arch` as reported by the kernel.
    pub audit: u32,
    /// Syscall names of this architecture.
    pub table: fn() -> &'static Table,
    /// Whether syscall arguments are 64 bits wide (otherwise only the low
    /// 32 bits are meaningful and compared, like libseccomp does).
    pub args_64bit: bool,
}

/// The architecture of this build.
pub(crate) fn native() -> ArchSpec {
    #[cfg(target_arch = "x86_64")]
    return ArchSpec {
        scmp: Arch::ScmpArchX86_64,
        audit: AUDIT_ARCH_X86_64,
        table: native_table,
        args_64bit: true,
    };
    #[cfg(target_arch = "aarch64")]
    return ArchSpec {
        scmp: Arch::ScmpArchAarch64,
        audit: AUDIT_ARCH_AARCH64,
        table: native_table,
        args_64bit: true,
    };
}

/// The 32-bit compat architecture the native kernel can run.
pub(crate) fn compat() -> ArchSpec {
    #[cfg(target_arch = "x86_64")]
    return ArchSpec {
        scmp: Arch::ScmpArchX86,
        audit: AUDIT_ARCH_I386,
        table: compat_table,
        args_64bit: false,
    };
    #[cfg(target_arch = "aarch64")]
    return ArchSpec {
        scmp: Arch::ScmpArchArm,
        audit: AUDIT_ARCH_ARM,
        table: compat_table,
        args_64bit: false,
    };
}

/// The `seccomp_data.arch` value of an OCI architecture, or `None` for
/// the pseudo-architectures (native, x32) that have none of their own.
pub(crate) fn audit_value(a: Arch) -> Option<u32> {
    match a {
        Arch::ScmpArchNative | Arch::ScmpArchX32 => None,
        // The remaining OCI values are the kernel's AUDIT_ARCH_* values.
        other => Some(other as u32),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_resolve() {
        let n = native_table();
        assert!(n.len() > 300);
        #[cfg(target_arch = "x86_64")]
        {
            assert_eq!(n.get("read"), Some(&0));
            assert_eq!(n.get("getpid"), Some(&39));
            let c = compat_table();
            assert_eq!(c.get("getpid"), Some(&20));
            assert_eq!(c.get("_llseek"), Some(&140));
            assert_eq!(audit_value(Arch::ScmpArchX86), Some(AUDIT_ARCH_I386));
            assert_eq!(audit_value(Arch::ScmpArchAarch64), Some(AUDIT_ARCH_AARCH64));
            assert_eq!(audit_value(Arch::ScmpArchArm), Some(AUDIT_ARCH_ARM));
            let x = x32_table();
            assert_eq!(x.get("getpid"), Some(&(X32_SYSCALL_BIT | 39)));
            assert_eq!(x.get("ioctl"), Some(&(X32_SYSCALL_BIT | 514)));
            assert_eq!(x.get("pwritev2"), Some(&(X32_SYSCALL_BIT | 547)));
            assert_eq!(x.get("uselib"), None);
        }
    }

    /// Checks the x32 table against the kernel UAPI header when installed.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn x32_table_matches_uapi_header() {
        let Ok(h) = std::fs::read_to_string("/usr/include/x86_64-linux-gnu/asm/unistd_x32.h")
        else {
            eprintln!("no unistd_x32.h, skipping");
            return;
        };
        let x = x32_table();
        let mut checked = 0;
        for line in h.lines() {
            let mut w = line.split_whitespace();
            let (Some("#define"), Some(name), Some("(__X32_SYSCALL_BIT"), Some("+"), Some(nr)) =
                (w.next(), w.next(), w.next(), w.next(), w.next())
            else {
                continue;
            };
            let Some(name) = name.strip_prefix("__NR_") else {
                continue;
            };
            let nr: u32 = nr.trim_end_matches(')').parse().expect("number");
            if let Some(ours) = x.get(name) {
                assert_eq!(*ours, X32_SYSCALL_BIT | nr, "{name}");
                checked += 1;
            } else {
                // Only names newer than the syscalls crate may be missing.
                assert!(native_table().get(name).is_none(), "{name} missing");
            }
        }
        assert!(checked > 300, "{checked}");
    }
}
