//! OCI seccomp profile → classic BPF program.
//!
//! Program layout:
//!
//! ```text
//!       ld  [arch]
//!       jeq NATIVE  -> native        ; rules compiled
//!       jeq COMPAT  -> compat        ; rules compiled, if the profile lists it
//!       jeq OTHER   -> default       ; any other listed arch: default action
//!       ret KILL_PROCESS             ; arch not in the profile
//! native:
//!       ld  [nr]
//!       jge 0x40000000 -> x32|bad    ; x32 numbers (x86_64 only)
//!       <binary search on nr; leaves: jeq nr -> action or rule body>
//!       <rule bodies: 64-bit argument comparisons, first matching rule wins>
//! x32:  ...same for x32 numbers, 32-bit argument comparisons...
//! compat:
//!       ...same, 32-bit argument comparisons...
//! default:
//!       ret DEFAULT
//! bad:  ret KILL_PROCESS             ; x32 call, x32 not in the profile
//! ```

use std::collections::{HashMap, HashSet};

use libc::sock_filter;
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};

use crate::arch::{self, ArchSpec, X32_SYSCALL_BIT};
use crate::bpf::{Asm, Cond, Label, Tgt};
use crate::SeccompError;

/// `SECCOMP_RET_*` values.
pub mod ret {
    /// Kill the whole process (Linux 4.14+).
    pub const KILL_PROCESS: u32 = 0x8000_0000;
    /// Kill the calling thread.
    pub const KILL_THREAD: u32 = 0x0000_0000;
    /// Send SIGSYS.
    pub const TRAP: u32 = 0x0003_0000;
    /// Fail with the errno in the low 16 bits.
    pub const ERRNO: u32 = 0x0005_0000;
    /// Hand over to a seccomp user-notification listener.
    pub const USER_NOTIF: u32 = 0x7fc0_0000;
    /// Notify a ptrace tracer with the low 16 bits as data.
    pub const TRACE: u32 = 0x7ff0_0000;
    /// Allow and log.
    pub const LOG: u32 = 0x7ffc_0000;
    /// Allow.
    pub const ALLOW: u32 = 0x7fff_0000;
}

/// `SECCOMP_FILTER_FLAG_*` values.
pub mod flag {
    /// Synchronise all threads of the process to the new filter.
    pub const TSYNC: u32 = 1 << 0;
    /// Log all actions except ALLOW.
    pub const LOG: u32 = 1 << 1;
    /// Disable the Speculative Store Bypass mitigation.
    pub const SPEC_ALLOW: u32 = 1 << 2;
    /// Return a user-notification descriptor (the filter has
    /// `SCMP_ACT_NOTIFY` rules).
    pub const NEW_LISTENER: u32 = 1 << 3;
    /// Once the listener has received a notification, the notifying task
    /// waits killably (only non-fatal signals are ignored); valid only with
    /// [`NEW_LISTENER`] (Linux 5.19+).
    pub const WAIT_KILLABLE_RECV: u32 = 1 << 5;
}

/// Action taken when `seccomp_data.arch` is not one the profile lists.
///
/// libseccomp's default "bad arch" action is `SCMP_ACT_KILL` (kill the
/// thread). We kill the whole process instead: a container process with a
/// thread silently gone is worse than a dead container, and a syscall made
/// under an unexpected ABI is an escape attempt rather than a mistake.
pub const BAD_ARCH_ACTION: u32 = ret::KILL_PROCESS;

/// A compiled seccomp filter, ready to install.
#[derive(Clone, Debug)]
pub struct Filter {
    /// The classic BPF program.
    pub program: Vec<sock_filter>,
    /// `SECCOMP_FILTER_FLAG_*` bits for `seccomp(SECCOMP_SET_MODE_FILTER)`.
    pub flags: u32,
    /// Syscall names that no compiled architecture knows; their rules were
    /// ignored (as libseccomp/runc do). Callers may log these at debug level.
    pub skipped: Vec<String>,
}

const EPERM: u32 = 1;
/// Entries per linear leaf of the binary search on the syscall number.
const LEAF: usize = 8;

#[cfg(target_endian = "little")]
const fn arg_offsets(index: u32) -> (u32, u32) {
    (16 + 8 * index, 20 + 8 * index)
}
#[cfg(target_endian = "big")]
const fn arg_offsets(index: u32) -> (u32, u32) {
    (20 + 8 * index, 16 + 8 * index)
}
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;

#[derive(Clone, Copy, Debug)]
struct ArgCmp {
    index: u32,
    op: LinuxSeccompOperator,
    value: u64,
    value_two: u64,
}

struct Rule<'a> {
    names: &'a [String],
    args: Vec<ArgCmp>,
    action: u32,
}

fn data(v: Option<u32>, field: &str) -> Result<u32, SeccompError> {
    let v = v.unwrap_or(EPERM);
    if v > 0xffff {
        return Err(SeccompError::invalid(
            field,
            format!("{v} is out of range 0..=65535"),
        ));
    }
    Ok(v)
}

/// The `SECCOMP_RET_*` value of an OCI action.
fn action_value(
    a: LinuxSeccompAction,
    errno: Option<u32>,
    field: &str,
    errno_field: &str,
) -> Result<u32, SeccompError> {
    use LinuxSeccompAction as A;
    Ok(match a {
        A::ScmpActKill | A::ScmpActKillThread => ret::KILL_THREAD,
        A::ScmpActKillProcess => ret::KILL_PROCESS,
        A::ScmpActTrap => ret::TRAP,
        A::ScmpActErrno => ret::ERRNO | data(errno, errno_field)?,
        A::ScmpActTrace => ret::TRACE | data(errno, errno_field)?,
        A::ScmpActLog => ret::LOG,
        A::ScmpActAllow => ret::ALLOW,
        // Whether a listener is given is checked by `compile`.
        A::ScmpActNotify => {
            let _ = field;
            ret::USER_NOTIF
        }
    })
}

/// Compiles an OCI seccomp profile to a classic BPF program.
///
/// * Rules are compiled for the native architecture and, if the profile
///   lists it, for the 32-bit compat architecture (`SCMP_ARCH_X86` on
///   x86_64, `SCMP_ARCH_ARM` on aarch64). The native architecture is always
///   included, like libseccomp does.
/// * Any other listed architecture gets the default action for every call.
/// * An architecture not listed gets [`BAD_ARCH_ACTION`] (kill the process).
/// * x32 calls (x86_64, syscall number with bit 30 set) are matched
///   against rules compiled for the x32 table if the profile lists
///   `SCMP_ARCH_X32`, and get [`BAD_ARCH_ACTION`] otherwise (as libseccomp
///   does), so they never slip past an allow-list or a deny-list.
/// * Rules for the same syscall are tried in profile order; the first whose
///   argument conditions (ANDed) all hold gives the action. If none holds,
///   the default action applies.
/// * Arguments are compared as 64-bit values on the native architecture;
///   on the 32-bit ones (i386, arm, x32) only the low 32 bits of the
///   argument are compared (the high half is taken as 0), like libseccomp.
/// * Names that no compiled architecture knows are skipped and reported in
///   [`Filter::skipped`]; names only some architectures know (e.g.
///   `chown32`) are compiled where they exist.
/// * `errnoRet` is used by `SCMP_ACT_ERRNO` and `SCMP_ACT_TRACE` (default
///   EPERM) and ignored for other actions.
/// * `SCMP_ACT_NOTIFY` needs `listenerPath` (the runtime hands the
///   notification descriptor to that socket) and cannot be the default
///   action (as runc); the filter then has [`flag::NEW_LISTENER`].
/// * `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV` is applied to a filter with
///   a listener (it has no meaning, and the kernel refuses it, without
///   one: a profile without `SCMP_ACT_NOTIFY` rules ignores it, as
///   libseccomp does).
pub fn compile(profile: &LinuxSeccomp) -> Result<Filter, SeccompError> {
    if profile.default_action() == LinuxSeccompAction::ScmpActNotify {
        return Err(SeccompError::invalid(
            "linux.seccomp.defaultAction",
            "SCMP_ACT_NOTIFY cannot be the default action",
        ));
    }
    let mut notify = false;
    for (i, sc) in profile.syscalls().iter().flatten().enumerate() {
        if sc.action() == LinuxSeccompAction::ScmpActNotify {
            if profile.listener_path().is_none() {
                return Err(SeccompError::invalid(
                    format!("linux.seccomp.syscalls[{i}].action"),
                    "SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath",
                ));
            }
            notify = true;
        }
    }
    let default = action_value(
        profile.default_action(),
        profile.default_errno_ret(),
        "linux.seccomp.defaultAction",
        "linux.seccomp.defaultErrnoRet",
    )?;

    let mut flags = 0;
    for f in profile.flags().iter().flatten() {
        flags |= match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => flag::TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => flag::LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => flag::SPEC_ALLOW,
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => flag::WAIT_KILLABLE_RECV,
        };
    }

    let syscalls = profile.syscalls().as_deref().unwrap_or(&[]);
    let mut rules = Vec::with_capacity(syscalls.len());
    for (i, sc) in syscalls.iter().enumerate() {
        let action = action_value(
            sc.action(),
            sc.errno_ret(),
            &format!("linux.seccomp.syscalls[{i}].action"),
            &format!("linux.seccomp.syscalls[{i}].errnoRet"),
        )?;
        let mut args = Vec::new();
        for (j, a) in sc.args().iter().flatten().enumerate() {
            let index = match u32::try_from(a.index()) {
                Ok(ix) if ix <= 5 => ix,
                _ => {
                    return Err(SeccompError::invalid(
                        format!("linux.seccomp.syscalls[{i}].args[{j}].index"),
                        format!("{} is out of range 0..=5", a.index()),
                    ))
                }
            };
            args.push(ArgCmp {
                index,
                op: a.op(),
                value: a.value(),
                value_two: a.value_two().unwrap_or(0),
            });
        }
        rules.push(Rule {
            names: sc.names(),
            args,
            action,
        });
    }

    let listed: &[Arch] = profile.architectures().as_deref().unwrap_or(&[]);
    let native = arch::native();
    let compat = arch::compat();
    let with_compat = listed.contains(&compat.scmp);
    let x32 = arch::x32();
    let x32_listed = x32.is_some() && listed.contains(&Arch::ScmpArchX32);
    let mut others: Vec<u32> = Vec::new();
    for a in listed {
        if let Some(v) = arch::audit_value(*a) {
            if v != native.audit && v != compat.audit && !others.contains(&v) {
                others.push(v);
            }
        }
    }

    let mut asm = Asm::with_capacity(1024);
    let bad = asm.label();
    let dflt = asm.label();
    let native_l = asm.label();
    let compat_l = asm.label();
    let x32_l = asm.label();

    asm.load(OFF_ARCH);
    asm.jump(Cond::Eq, native.audit, Tgt::To(native_l), Tgt::Next);
    if with_compat {
        asm.jump(Cond::Eq, compat.audit, Tgt::To(compat_l), Tgt::Next);
    }
    for v in &others {
        asm.jump(Cond::Eq, *v, Tgt::To(dflt), Tgt::Next);
    }
    asm.ret(BAD_ARCH_ACTION);

    asm.bind(native_l);
    asm.load(OFF_NR);
    if x32.is_some() {
        let to = if x32_listed { x32_l } else { bad };
        asm.jump(Cond::Ge, X32_SYSCALL_BIT, Tgt::To(to), Tgt::Next);
    }
    section(&mut asm, &native, &rules, default);
    if let (Some(x32), true) = (&x32, x32_listed) {
        // A still holds the syscall number.
        asm.bind(x32_l);
        section(&mut asm, x32, &rules, default);
    }

    if with_compat {
        asm.bind(compat_l);
        asm.load(OFF_NR);
        section(&mut asm, &compat, &rules, default);
    }

    asm.bind(dflt);
    asm.ret(default);
    if x32.is_some() && !x32_listed {
        // Jumps go forward only: a second copy for the native section.
        asm.bind(bad);
        asm.ret(BAD_ARCH_ACTION);
    }

    let program = asm.finish()?;

    // Names no compiled architecture knows.
    let mut seen = HashSet::new();
    let mut skipped = Vec::new();
    let nt = (native.table)();
    let ct = with_compat.then(compat.table);
    for r in &rules {
        for n in r.names {
            let known =
                nt.contains_key(n.as_str()) || ct.is_some_and(|t| t.contains_key(n.as_str()));
            if !known && seen.insert(n.as_str()) {
                skipped.push(n.clone());
            }
        }
    }

    if notify {
        flags |= flag::NEW_LISTENER;
    } else {
        flags &= !flag::WAIT_KILLABLE_RECV;
    }
    Ok(Filter {
        program,
        flags,
        skipped,
    })
}

/// What a syscall number leads to.
enum Target {
    /// A fixed action (first rule has no argument conditions).
    Ret(u32),
    /// The rules (indices) to try in order.
    Body(Vec<usize>),
}

/// Emits the per-syscall dispatch of one architecture; `A` holds the
/// syscall number on entry. Every path ends in a `ret`.
fn section(asm: &mut Asm, spec: &ArchSpec, rules: &[Rule<'_>], default: u32) {
    let table = (spec.table)();
    let mut per_nr: HashMap<u32, Vec<usize>> = HashMap::new();
    for (ri, rule) in rules.iter().enumerate() {
        for name in rule.names {
            let Some(&nr) = table.get(name.as_str()) else {
                continue;
            };
            let v = per_nr.entry(nr).or_default();
            // A rule after an unconditional one for the same syscall can
            // never match; the same rule listing a name twice is one rule.
            if v.last().is_some_and(|&l| rules[l].args.is_empty()) || v.contains(&ri) {
                continue;
            }
            v.push(ri);
        }
    }

    let mut entries: Vec<(u32, Target)> = per_nr
        .into_iter()
        .filter_map(|(nr, v)| {
            let first = &rules[*v.first()?];
            if first.args.is_empty() {
                (first.action != default).then_some((nr, Target::Ret(first.action)))
            } else if v.iter().all(|&r| rules[r].action == default) {
                None
            } else {
                Some((nr, Target::Body(v)))
            }
        })
        .collect();
    entries.sort_unstable_by_key(|e| e.0);

    let mut bodies: Vec<(Label, &[usize])> = Vec::new();
    let mut leaves: Vec<(u32, Tgt)> = Vec::with_capacity(entries.len());
    // Body labels are allocated up front so the tree can jump to them.
    let body_labels: Vec<Option<Label>> = entries
        .iter()
        .map(|(_, t)| match t {
            Target::Body(_) => Some(asm.label()),
            Target::Ret(_) => None,
        })
        .collect();
    for ((nr, t), bl) in entries.iter().zip(&body_labels) {
        if let (Target::Body(v), Some(l)) = (t, bl) {
            bodies.push((*l, v));
            leaves.push((*nr, Tgt::To(*l)));
        } else {
            leaves.push((*nr, Tgt::Next));
        }
    }
    tree(asm, &entries, &leaves, default);

    for (label, rs) in bodies {
        asm.bind(label);
        let mut last_unconditional = false;
        for &ri in rs {
            let rule = &rules[ri];
            let next = asm.label();
            for a in &rule.args {
                if spec.args_64bit {
                    cmp64(asm, a, next);
                } else {
                    cmp32(asm, a, next);
                }
            }
            asm.ret(rule.action);
            asm.bind(next);
            last_unconditional = rule.args.is_empty();
        }
        if !last_unconditional {
            asm.ret(default);
        }
    }
}

/// Binary search over sorted `entries`; `leaves[i].1` is the body label of
/// entry `i` (or `Next` when it is a plain action).
fn tree(asm: &mut Asm, entries: &[(u32, Target)], leaves: &[(u32, Tgt)], default: u32) {
    if entries.len() > LEAF {
        let mid = entries.len() / 2;
        let right = asm.label();
        asm.jump(Cond::Ge, entries[mid].0, Tgt::To(right), Tgt::Next);
        tree(asm, &entries[..mid], &leaves[..mid], default);
        asm.bind(right);
        tree(asm, &entries[mid..], &leaves[mid..], default);
        return;
    }
    // Linear leaf: one jeq per syscall to a shared `ret` per action.
    let mut rets: Vec<(u32, Label)> = Vec::new();
    for ((nr, t), (_, body)) in entries.iter().zip(leaves) {
        let to = match t {
            Target::Ret(action) => match rets.iter().find(|(a, _)| a == action) {
                Some((_, l)) => *l,
                None => {
                    let l = asm.label();
                    rets.push((*action, l));
                    l
                }
            },
            Target::Body(_) => match body {
                Tgt::To(l) => *l,
                Tgt::Next => continue,
            },
        };
        asm.jump(Cond::Eq, *nr, Tgt::To(to), Tgt::Next);
    }
    asm.ret(default);
    for (action, l) in rets {
        asm.bind(l);
        asm.ret(action);
    }
}

fn split(v: u64) -> (u32, u32) {
    ((v >> 32) as u32, v as u32)
}

/// Emits a 64-bit comparison of argument `a.index`; falls through when it
/// holds, jumps to `fail` otherwise.
fn cmp64(asm: &mut Asm, a: &ArgCmp, fail: Label) {
    use LinuxSeccompOperator as Op;
    let (lo_off, hi_off) = arg_offsets(a.index);
    let (vh, vl) = split(a.value);
    let f = Tgt::To(fail);
    let n = Tgt::Next;
    match a.op {
        Op::ScmpCmpEq => {
            asm.load(hi_off);
            asm.jump(Cond::Eq, vh, n, f);
            asm.load(lo_off);
            asm.jump(Cond::Eq, vl, n, f);
        }
        Op::ScmpCmpNe => {
            let ok = asm.label();
            asm.load(hi_off);
            asm.jump(Cond::Eq, vh, n, Tgt::To(ok));
            asm.load(lo_off);
            asm.jump(Cond::Eq, vl, f, n);
            asm.bind(ok);
        }
        Op::ScmpCmpGt | Op::ScmpCmpGe => {
            let ok = asm.label();
            asm.load(hi_off);
            asm.jump(Cond::Gt, vh, Tgt::To(ok), n);
            asm.jump(Cond::Eq, vh, n, f);
            asm.load(lo_off);
            let c = if a.op == Op::ScmpCmpGt {
                Cond::Gt
            } else {
                Cond::Ge
            };
            asm.jump(c, vl, n, f);
            asm.bind(ok);
        }
        Op::ScmpCmpLt | Op::ScmpCmpLe => {
            let ok = asm.label();
            asm.load(hi_off);
            asm.jump(Cond::Gt, vh, f, n);
            asm.jump(Cond::Eq, vh, n, Tgt::To(ok));
            asm.load(lo_off);
            // lo < vl  <=>  !(lo >= vl);  lo <= vl  <=>  !(lo > vl)
            let c = if a.op == Op::ScmpCmpLt {
                Cond::Ge
            } else {
                Cond::Gt
            };
            asm.jump(c, vl, f, n);
            asm.bind(ok);
        }
        Op::ScmpCmpMaskedEq => {
            let (mh, ml) = split(a.value);
            let (wh, wl) = split(a.value_two);
            masked_half(asm, hi_off, mh, wh, fail);
            masked_half(asm, lo_off, ml, wl, fail);
        }
    }
}

/// `(word & mask) == want`, or jump to `fail`.
fn masked_half(asm: &mut Asm, off: u32, mask: u32, want: u32, fail: Label) {
    if want & !mask != 0 {
        // Bits wanted outside the mask: can never hold.
        asm.ja(fail);
        return;
    }
    if mask == 0 {
        return; // 0 == 0
    }
    asm.load(off);
    if mask != u32::MAX {
        asm.and(mask);
    }
    asm.jump(Cond::Eq, want, Tgt::Next, Tgt::To(fail));
}

/// Like [`cmp64`] for 32-bit architectures: only the low half of the
/// argument is meaningful, the high half is taken as zero (as libseccomp
/// does), so comparisons against the high half of the value are decided
/// here at compile time.
fn cmp32(asm: &mut Asm, a: &ArgCmp, fail: Label) {
    use LinuxSeccompOperator as Op;
    let (lo_off, _) = arg_offsets(a.index);
    let (vh, vl) = split(a.value);
    let f = Tgt::To(fail);
    let n = Tgt::Next;
    // With hi(arg) == 0 < vh: arg < value for every arg.
    let arg_below = vh != 0;
    match a.op {
        Op::ScmpCmpEq | Op::ScmpCmpGt | Op::ScmpCmpGe if arg_below => asm.ja(fail),
        Op::ScmpCmpNe | Op::ScmpCmpLt | Op::ScmpCmpLe if arg_below => {}
        Op::ScmpCmpEq => {
            asm.load(lo_off);
            asm.jump(Cond::Eq, vl, n, f);
        }
        Op::ScmpCmpNe => {
            asm.load(lo_off);
            asm.jump(Cond::Eq, vl, f, n);
        }
        Op::ScmpCmpGt => {
            asm.load(lo_off);
            asm.jump(Cond::Gt, vl, n, f);
        }
        Op::ScmpCmpGe => {
            asm.load(lo_off);
            asm.jump(Cond::Ge, vl, n, f);
        }
        Op::ScmpCmpLt => {
            asm.load(lo_off);
            asm.jump(Cond::Ge, vl, f, n);
        }
        Op::ScmpCmpLe => {
            asm.load(lo_off);
            asm.jump(Cond::Gt, vl, f, n);
        }
        Op::ScmpCmpMaskedEq => {
            let (wh, wl) = split(a.value_two);
            if wh != 0 {
                asm.ja(fail);
            } else {
                masked_half(asm, lo_off, vl, wl, fail);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bpf::*;

    /// A classic BPF interpreter for the subset we emit.
    fn run(prog: &[sock_filter], nr: u32, arch: u32, args: [u64; 6]) -> u32 {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&nr.to_ne_bytes());
        data[4..8].copy_from_slice(&arch.to_ne_bytes());
        for (i, a) in args.iter().enumerate() {
            data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_ne_bytes());
        }
        let mut a: u32 = 0;
        let mut pc = 0usize;
        loop {
            let i = prog[pc];
            pc += 1;
            let k = i.k;
            match i.code {
                c if c == BPF_LD | BPF_W | BPF_ABS => {
                    let k = k as usize;
                    a = u32::from_ne_bytes(data[k..k + 4].try_into().expect("4 bytes"));
                }
                c if c == BPF_ALU | BPF_AND | BPF_K => a &= k,
                c if c == BPF_JMP | BPF_JA => pc += k as usize,
                c if c == BPF_JMP | BPF_JEQ | BPF_K => {
                    pc += usize::from(if a == k { i.jt } else { i.jf })
                }
                c if c == BPF_JMP | BPF_JGT | BPF_K => {
                    pc += usize::from(if a > k { i.jt } else { i.jf })
                }
                c if c == BPF_JMP | BPF_JGE | BPF_K => {
                    pc += usize::from(if a >= k { i.jt } else { i.jf })
                }
                c if c == BPF_RET | BPF_K => return k,
                c => panic!("unexpected opcode {c:#x} at {}", pc - 1),
            }
            assert!(pc < prog.len(), "fell off the program");
        }
    }

    const ERRNO_EPERM: u32 = ret::ERRNO | 1;

    fn docker_expected(name: &str, args: [u64; 6], arg_mask: u64) -> u32 {
        let a0 = args[0] & arg_mask;
        match name {
            "personality" => {
                if [0, 8, 0x20000, 0x20008, 0xffff_ffff].contains(&a0) {
                    ret::ALLOW
                } else {
                    ERRNO_EPERM
                }
            }
            "socket" if a0 != 40 => ret::ALLOW,
            "clone" if a0 & 0x7e02_0000 == 0 => ret::ALLOW,
            "clone3" => ret::ERRNO | libc::ENOSYS as u32,
            n if crate::docker::ALLOWED.contains(&n) => ret::ALLOW,
            _ => ERRNO_EPERM,
        }
    }

    #[test]
    fn docker_profile_exhaustive() {
        let f = compile(&crate::docker_default_profile()).expect("compiles");
        let samples: [[u64; 6]; 6] = [
            [0; 6],
            [8, 1, 2, 3, 4, 5],
            [0xffff_ffff, 0, 0, 0, 0, 0],
            [0x1_0000_0000, 0, 0, 0, 0, 0],
            [libc::CLONE_NEWUSER as u64 | 17, 0, 0, 0, 0, 0],
            [40, 1, 0, 0, 0, 0],
        ];
        let specs = [Some(arch::native()), Some(arch::compat()), arch::x32()];
        let mut checked = 0;
        for spec in specs.into_iter().flatten() {
            let mask = if spec.args_64bit {
                u64::MAX
            } else {
                0xffff_ffff
            };
            let table = (spec.table)();
            for (name, &nr) in table {
                for args in samples {
                    let got = run(&f.program, nr, spec.audit, args);
                    let want = docker_expected(name, args, mask);
                    assert_eq!(
                        got, want,
                        "{name} ({nr:#x}) {args:x?} arch {:#x}",
                        spec.audit
                    );
                    checked += 1;
                }
            }
            for nr in [1000, 0x3fff_ffff, 0x4000_0000 | 13, 0x4000_1000, u32::MAX] {
                assert_eq!(run(&f.program, nr, spec.audit, [0; 6]), ERRNO_EPERM);
            }
        }
        assert!(checked > 6 * 1000, "{checked}");
        // Unknown architecture.
        assert_eq!(run(&f.program, 0, 0xdead_beef, [0; 6]), BAD_ARCH_ACTION);
    }

    #[test]
    fn x32_unlisted_is_bad_arch() {
        let Some(x32) = arch::x32() else { return };
        let mut p = crate::docker_default_profile();
        p.set_architectures(Some(vec![arch::native().scmp]));
        let f = compile(&p).expect("compiles");
        let getpid = (x32.table)()["getpid"];
        assert_eq!(run(&f.program, getpid, x32.audit, [0; 6]), BAD_ARCH_ACTION);
        // and i386 is now a bad arch too
        let c = arch::compat();
        assert_eq!(run(&f.program, 20, c.audit, [0; 6]), BAD_ARCH_ACTION);
    }

    /// Deterministic xorshift generator.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    const INTERESTING: [u64; 10] = [
        0,
        1,
        5,
        0xff,
        0xffff_ffff,
        0x1_0000_0000,
        0x1_0000_0005,
        0xffff_ffff_0000_0000,
        u64::MAX,
        0x7e02_0000,
    ];

    fn op_holds(op: LinuxSeccompOperator, x: u64, v: u64, v2: u64) -> bool {
        use LinuxSeccompOperator as Op;
        match op {
            Op::ScmpCmpEq => x == v,
            Op::ScmpCmpNe => x != v,
            Op::ScmpCmpLt => x < v,
            Op::ScmpCmpLe => x <= v,
            Op::ScmpCmpGt => x > v,
            Op::ScmpCmpGe => x >= v,
            Op::ScmpCmpMaskedEq => x & v == v2,
        }
    }

    /// Random profiles, checked against a direct evaluation of the
    /// semantics (first matching rule wins, default otherwise).
    #[test]
    fn random_profiles_match_reference() {
        use oci_spec::runtime::{LinuxSeccompArgBuilder, LinuxSyscallBuilder};
        use LinuxSeccompOperator as Op;
        let ops = [
            Op::ScmpCmpEq,
            Op::ScmpCmpNe,
            Op::ScmpCmpLt,
            Op::ScmpCmpLe,
            Op::ScmpCmpGt,
            Op::ScmpCmpGe,
            Op::ScmpCmpMaskedEq,
        ];
        let actions = [
            (LinuxSeccompAction::ScmpActAllow, None),
            (LinuxSeccompAction::ScmpActErrno, Some(7)),
            (LinuxSeccompAction::ScmpActErrno, Some(9)),
            (LinuxSeccompAction::ScmpActLog, None),
            (LinuxSeccompAction::ScmpActTrap, None),
            (LinuxSeccompAction::ScmpActKillProcess, None),
        ];
        let native = arch::native();
        let compat = arch::compat();
        let x32 = arch::x32();
        let mut names: Vec<(&str, u32)> =
            (native.table)().iter().map(|(n, nr)| (*n, *nr)).collect();
        names.sort_unstable();
        // Few distinct syscalls in some profiles (many rules per syscall),
        // many in others (long programs).
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let (mut compiled, mut longest) = (0, 0);
        for round in 0..60 {
            let pool = 1 + rng.below(if round % 2 == 0 { 6 } else { names.len() });
            let nrules = 1 + rng.below(if round % 3 == 0 { 400 } else { 40 });
            let mut syscalls = Vec::new();
            for _ in 0..nrules {
                let nnames = 1 + rng.below(3);
                let rn: Vec<String> = (0..nnames)
                    .map(|_| names[rng.below(pool)].0.to_owned())
                    .collect();
                let nargs = rng.below(4);
                let args: Vec<_> = (0..nargs)
                    .map(|_| {
                        LinuxSeccompArgBuilder::default()
                            .index(rng.below(6))
                            .op(ops[rng.below(ops.len())])
                            .value(INTERESTING[rng.below(INTERESTING.len())])
                            .value_two(INTERESTING[rng.below(INTERESTING.len())])
                            .build()
                            .expect("arg")
                    })
                    .collect();
                let (act, errno) = actions[rng.below(actions.len())];
                let mut b = LinuxSyscallBuilder::default().names(rn).action(act);
                if let Some(e) = errno {
                    b = b.errno_ret(e);
                }
                if !args.is_empty() {
                    b = b.args(args);
                }
                syscalls.push(b.build().expect("syscall"));
            }
            let (dact, derr) = actions[rng.below(actions.len())];
            let mut p = LinuxSeccomp::default();
            p.set_default_action(dact);
            p.set_default_errno_ret(derr);
            let mut listed = vec![native.scmp, compat.scmp];
            listed.extend(x32.map(|x| x.scmp));
            p.set_architectures(Some(listed));
            p.set_syscalls(Some(syscalls));
            let f = match compile(&p) {
                Ok(f) => f,
                Err(SeccompError::TooLong(_)) => continue,
                Err(e) => panic!("{e}"),
            };
            compiled += 1;
            longest = longest.max(f.program.len());
            let default = action_value(dact, derr, "", "").expect("action");
            for spec in [Some(native), Some(compat), x32].into_iter().flatten() {
                let mask = if spec.args_64bit {
                    u64::MAX
                } else {
                    0xffff_ffff
                };
                let table = (spec.table)();
                for _ in 0..300 {
                    let name = names[rng.below(pool)].0;
                    let Some(&nr) = table.get(name) else { continue };
                    let mut args = [0u64; 6];
                    for a in &mut args {
                        let base = INTERESTING[rng.below(INTERESTING.len())];
                        *a = match rng.below(4) {
                            0 => base.wrapping_add(1),
                            1 => base.wrapping_sub(1),
                            _ => base,
                        };
                    }
                    let want = p
                        .syscalls()
                        .iter()
                        .flatten()
                        .find(|sc| {
                            sc.names()
                                .iter()
                                .any(|n| table.get(n.as_str()) == Some(&nr))
                                && sc.args().iter().flatten().all(|a| {
                                    op_holds(
                                        a.op(),
                                        args[a.index()] & mask,
                                        a.value(),
                                        a.value_two().unwrap_or(0),
                                    )
                                })
                        })
                        .map_or(default, |sc| {
                            action_value(sc.action(), sc.errno_ret(), "", "").expect("action")
                        });
                    let got = run(&f.program, nr, spec.audit, args);
                    assert_eq!(
                        got, want,
                        "round {round} {name} {args:x?} arch {:#x}",
                        spec.audit
                    );
                }
            }
        }
        eprintln!("{compiled} profiles compiled, longest program {longest}");
        assert!(compiled >= 40 && longest > 1000, "{compiled} {longest}");
    }
}
