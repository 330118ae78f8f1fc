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

macro_rules! table_fn {
    ($name:ident, $ty:ty) => {
        pub(crate) fn $name() -> &'static Table {
            static T: OnceLock<Table> = OnceLock::new();
            T.get_or_init(|| {
                let first = <$ty>::first().id();
                let last = <$ty>::last().id();
                (first..=last)
                    .filter_map(|i| usize::try_from(i).ok().and_then(<$ty>::new))
                    .filter_map(|s| u32::try_from(s.id()).ok().map(|nr| (s.name(), nr)))
                    .collect()
            })
        }
    };
}

#[cfg(target_arch = "x86_64")]
table_fn!(native_table, syscalls::x86_64::Sysno);
#[cfg(target_arch = "x86_64")]
table_fn!(compat_table, syscalls::x86::Sysno);
#[cfg(target_arch = "aarch64")]
table_fn!(native_table, syscalls::aarch64::Sysno);
#[cfg(target_arch = "aarch64")]
table_fn!(compat_table, syscalls::arm::Sysno);

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
compile_error!("berth-seccomp supports x86_64 and aarch64 hosts only");

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

/// Whether the native architecture has an x32 sub-ABI (x86_64 only).
pub(crate) const HAS_X32: bool = cfg!(target_arch = "x86_64");

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
        }
    }
}
