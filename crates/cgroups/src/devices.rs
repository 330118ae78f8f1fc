//! Device access rules: OCI `linux.resources.devices` turned into cgroup v1
//! `devices.allow`/`devices.deny` lines or into a cgroup v2 eBPF device filter.

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use crate::CgroupError;

const FIELD: &str = "linux.resources.devices";

/// Access bits as in `struct bpf_cgroup_dev_ctx` (`BPF_DEVCG_ACC_*`).
const ACC_MKNOD: u32 = 1;
const ACC_READ: u32 = 2;
const ACC_WRITE: u32 = 4;
const ACC_ALL: u32 = ACC_MKNOD | ACC_READ | ACC_WRITE;
/// Device types as in `struct bpf_cgroup_dev_ctx` (`BPF_DEVCG_DEV_*`).
const DEV_BLOCK: u32 = 1;
const DEV_CHAR: u32 = 2;

/// One validated device rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rule {
    pub allow: bool,
    /// 'a', 'b' or 'c'.
    pub typ: char,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    /// Subset of `ACC_*`.
    pub access: u32,
}

fn dev_num(v: Option<i64>, what: &str, i: usize) -> Result<Option<u32>, CgroupError> {
    match v {
        None | Some(-1) => Ok(None),
        Some(n) => i32::try_from(n)
            .ok()
            .filter(|n| *n >= 0)
            .map(|n| Some(n as u32))
            .ok_or_else(|| CgroupError::InvalidValue {
                field: format!("{FIELD}[{i}].{what}"),
                reason: format!("{n} is not a valid device number"),
            }),
    }
}

/// Validates the OCI rules.
pub(crate) fn parse_rules(rules: &[LinuxDeviceCgroup]) -> Result<Vec<Rule>, CgroupError> {
    rules
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let typ = match r.typ().unwrap_or(LinuxDeviceType::A) {
                LinuxDeviceType::A => 'a',
                LinuxDeviceType::B => 'b',
                LinuxDeviceType::C | LinuxDeviceType::U => 'c',
                LinuxDeviceType::P => {
                    return Err(CgroupError::InvalidValue {
                        field: format!("{FIELD}[{i}].type"),
                        reason: "type \"p\" (fifo) cannot be used in a device cgroup rule".into(),
                    })
                }
            };
            let mut access = 0;
            let acc = r.access().as_deref().unwrap_or("rwm");
            let acc = if acc.is_empty() { "rwm" } else { acc };
            for ch in acc.chars() {
                access |= match ch {
                    'r' => ACC_READ,
                    'w' => ACC_WRITE,
                    'm' => ACC_MKNOD,
                    _ => {
                        return Err(CgroupError::InvalidValue {
                            field: format!("{FIELD}[{i}].access"),
                            reason: format!("{acc:?} is not a combination of \"r\", \"w\", \"m\""),
                        })
                    }
                };
            }
            Ok(Rule {
                allow: r.allow(),
                typ,
                major: dev_num(r.major(), "major", i)?,
                minor: dev_num(r.minor(), "minor", i)?,
                access,
            })
        })
        .collect()
}

impl Rule {
    /// The cgroup v1 line for `devices.allow` / `devices.deny`, e.g. `c 1:3 rwm`.
    pub(crate) fn v1_line(&self) -> String {
        let num = |n: Option<u32>| n.map_or_else(|| "*".to_string(), |n| n.to_string());
        let mut acc = String::with_capacity(3);
        if self.access & ACC_READ != 0 {
            acc.push('r');
        }
        if self.access & ACC_WRITE != 0 {
            acc.push('w');
        }
        if self.access & ACC_MKNOD != 0 {
            acc.push('m');
        }
        format!(
            "{} {}:{} {}",
            self.typ,
            num(self.major),
            num(self.minor),
            acc
        )
    }
}

// eBPF instruction encoding (struct bpf_insn: u8 code; u8 dst:4, src:4; s16 off; s32 imm).
fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> u64 {
    let regs = (dst & 0x0f) | ((src & 0x0f) << 4);
    let bytes = [
        code,
        regs,
        off.to_ne_bytes()[0],
        off.to_ne_bytes()[1],
        imm.to_ne_bytes()[0],
        imm.to_ne_bytes()[1],
        imm.to_ne_bytes()[2],
        imm.to_ne_bytes()[3],
    ];
    u64::from_ne_bytes(bytes)
}
const LDX_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const ALU32_AND_K: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const ALU32_RSH_K: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
const ALU32_MOV_X: u8 = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
const ALU64_MOV_K: u8 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
const JEQ_K: u8 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

/// Assembles a `BPF_PROG_TYPE_CGROUP_DEVICE` program implementing `rules`
/// with OCI semantics: the last matching rule wins, default deny.
///
/// Registers: r2 = device type, r3 = requested access, r4 = major, r5 = minor.
/// Rules are emitted in reverse order so the first match (= last rule) decides.
/// An allow rule matches when every requested access bit is in the rule; a
/// deny rule matches when any requested bit is in the rule.
pub(crate) fn bpf_program(rules: &[Rule]) -> Vec<u64> {
    let mut p = vec![
        insn(LDX_W, 2, 1, 0, 0),
        insn(ALU32_AND_K, 2, 0, 0, 0xffff),
        insn(LDX_W, 3, 1, 0, 0),
        insn(ALU32_RSH_K, 3, 0, 0, 16),
        insn(LDX_W, 4, 1, 4, 0),
        insn(LDX_W, 5, 1, 8, 0),
    ];
    for r in rules.iter().rev() {
        // Conditions jump to the end of this block ("next") when they fail.
        let mut block: Vec<Option<u64>> = Vec::new(); // None = placeholder jump to next
        let mut jumps: Vec<(usize, u8, u8, i32)> = Vec::new();
        let typ = match r.typ {
            'b' => Some(DEV_BLOCK),
            'c' => Some(DEV_CHAR),
            _ => None,
        };
        if let Some(t) = typ {
            jumps.push((block.len(), JNE_K, 2, t as i32));
            block.push(None);
        }
        if r.access != ACC_ALL {
            block.push(Some(insn(ALU32_MOV_X, 1, 3, 0, 0)));
            if r.allow {
                // requested & ~rule != 0 -> not covered -> next
                block.push(Some(insn(
                    ALU32_AND_K,
                    1,
                    0,
                    0,
                    (!r.access & ACC_ALL) as i32,
                )));
                jumps.push((block.len(), JNE_K, 1, 0));
            } else {
                // requested & rule == 0 -> untouched -> next
                block.push(Some(insn(ALU32_AND_K, 1, 0, 0, r.access as i32)));
                jumps.push((block.len(), JEQ_K, 1, 0));
            }
            block.push(None);
        }
        if r.typ != 'a' {
            if let Some(m) = r.major {
                jumps.push((block.len(), JNE_K, 4, m as i32));
                block.push(None);
            }
            if let Some(m) = r.minor {
                jumps.push((block.len(), JNE_K, 5, m as i32));
                block.push(None);
            }
        }
        block.push(Some(insn(ALU64_MOV_K, 0, 0, 0, i32::from(r.allow))));
        block.push(Some(insn(EXIT, 0, 0, 0, 0)));
        let len = block.len();
        // A rule matching everything decides alone: what precedes it (earlier
        // rules, the default) would be unreachable, which the verifier rejects.
        let unconditional = jumps.is_empty();
        for (idx, code, dst, imm) in jumps {
            let off = (len - idx - 1) as i16;
            block[idx] = Some(insn(code, dst, 0, off, imm));
        }
        p.extend(block.into_iter().flatten());
        if unconditional {
            return p;
        }
    }
    p.push(insn(ALU64_MOV_K, 0, 0, 0, 0));
    p.push(insn(EXIT, 0, 0, 0, 0));
    p
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxDeviceCgroupBuilder;

    #[test]
    fn v1_lines() {
        let rules = vec![
            LinuxDeviceCgroupBuilder::default()
                .allow(false)
                .access("rwm")
                .build()
                .unwrap(),
            LinuxDeviceCgroupBuilder::default()
                .allow(true)
                .typ(LinuxDeviceType::C)
                .major(1)
                .minor(3)
                .access("rw")
                .build()
                .unwrap(),
            LinuxDeviceCgroupBuilder::default()
                .allow(true)
                .typ(LinuxDeviceType::B)
                .major(8)
                .build()
                .unwrap(),
        ];
        let r = parse_rules(&rules).unwrap();
        let lines: Vec<_> = r.iter().map(Rule::v1_line).collect();
        assert_eq!(lines, ["a *:* rwm", "c 1:3 rw", "b 8:* rwm"]);
        // 6 prologue + 2 exit + blocks
        assert!(bpf_program(&r).len() > 8);
    }

    #[test]
    fn unconditional_rule_ends_program() {
        let all = Rule {
            allow: true,
            typ: 'a',
            major: None,
            minor: None,
            access: ACC_ALL,
        };
        let deny = Rule {
            allow: false,
            typ: 'c',
            major: Some(1),
            minor: Some(7),
            access: ACC_ALL,
        };
        // Last rule unconditional: prologue + mov + exit only.
        assert_eq!(bpf_program(&[deny.clone(), all.clone()]).len(), 8);
        // Unconditional first: the deny block, then allow-all, no default.
        let p = bpf_program(&[all, deny]);
        assert_eq!(p.len(), 6 + 5 + 2);
        assert_eq!(p[p.len() - 2], insn(ALU64_MOV_K, 0, 0, 0, 1));
    }

    #[test]
    fn bad_access() {
        let rules = vec![LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .access("rwx")
            .build()
            .unwrap()];
        let e = parse_rules(&rules).unwrap_err().to_string();
        assert!(e.contains("linux.resources.devices[0].access"), "{e}");
    }
}
