//! Attributes of the container's process that runtime-spec 1.2 adds and the
//! kernel keeps across execve: `linux.personality`, `linux.memoryPolicy`,
//! `process.ioPriority`, `process.scheduler`. Each is a single system call,
//! made only when the spec asks for it.

use crate::error::{spec_err, Result};
use crate::sys;
use oci_spec::runtime::{
    IOPriorityClass, Linux, LinuxPersonalityDomain, LinuxSchedulerFlag, LinuxSchedulerPolicy,
    MemoryPolicyFlagType, MemoryPolicyModeType, Process,
};

/// `linux.personality`: the execution domain (flags: the spec defines none;
/// ignored, as runc does).
pub fn apply_personality(linux: &Linux) -> Result<()> {
    let Some(p) = linux.personality() else {
        return Ok(());
    };
    const PER_LINUX: u32 = 0x0000;
    const PER_LINUX32: u32 = 0x0008;
    let persona = match p.domain() {
        LinuxPersonalityDomain::PerLinux => PER_LINUX,
        LinuxPersonalityDomain::PerLinux32 => PER_LINUX32,
    };
    sys::personality(persona)
        .map(drop)
        .map_err(|e| spec_err("linux.personality", format!("personality: {e}")))
}

/// Parses a node list ("0-3,5") into a bitmask of 64-bit words.
fn parse_nodes(text: &str) -> std::result::Result<Vec<u64>, String> {
    const MAX_NODES: u32 = 4096;
    let mut mask: Vec<u64> = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let parse = |s: &str| {
            s.trim()
                .parse::<u32>()
                .ok()
                .filter(|n| *n < MAX_NODES)
                .ok_or_else(|| format!("invalid node {s:?} in {text:?}"))
        };
        let (a, b) = (parse(a)?, parse(b)?);
        if a > b {
            return Err(format!("invalid range {part:?} in {text:?}"));
        }
        for n in a..=b {
            let word = (n / 64) as usize;
            if mask.len() <= word {
                mask.resize(word + 1, 0);
            }
            mask[word] |= 1 << (n % 64);
        }
    }
    Ok(mask)
}

/// `linux.memoryPolicy`: set_mempolicy(2) with the mode, flags and nodes.
pub fn apply_memory_policy(linux: &Linux) -> Result<()> {
    let Some(p) = linux.memory_policy() else {
        return Ok(());
    };
    let field = "linux.memoryPolicy";
    let mode = match p.mode() {
        MemoryPolicyModeType::MpolDefault => 0,
        MemoryPolicyModeType::MpolPreferred => 1,
        MemoryPolicyModeType::MpolBind => 2,
        MemoryPolicyModeType::MpolInterleave => 3,
        MemoryPolicyModeType::MpolLocal => 4,
        MemoryPolicyModeType::MpolPreferredMany => 5,
        MemoryPolicyModeType::MpolWeightedInterleave => 6,
    };
    let mut flags = 0;
    for f in p.flags().iter().flatten() {
        flags |= match f {
            MemoryPolicyFlagType::MpolFNumaBalancing => 1 << 13,
            MemoryPolicyFlagType::MpolFRelativeNodes => 1 << 14,
            MemoryPolicyFlagType::MpolFStaticNodes => 1 << 15,
        };
    }
    let mask = parse_nodes(p.nodes().as_deref().unwrap_or("")).map_err(|e| spec_err(field, e))?;
    sys::set_mempolicy(mode | flags, &mask).map_err(|e| {
        spec_err(
            field,
            format!(
                "set_mempolicy {} nodes {:?}: {e}",
                p.mode(),
                p.nodes().as_deref().unwrap_or("")
            ),
        )
    })
}

/// `process.ioPriority`: ioprio_set(2) on the process.
pub fn apply_io_priority(process: &Process) -> Result<()> {
    let Some(io) = process.io_priority() else {
        return Ok(());
    };
    let class = match io.class() {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    let level = u32::try_from(io.priority())
        .ok()
        .filter(|p| *p < 8)
        .ok_or_else(|| {
            spec_err(
                "process.ioPriority.priority",
                format!("{} is out of range 0..=7", io.priority()),
            )
        })?;
    sys::ioprio_set_self(class, level)
        .map_err(|e| spec_err("process.ioPriority", format!("ioprio_set: {e}")))
}

/// `process.scheduler`: sched_setattr(2) on the process.
pub fn apply_scheduler(process: &Process) -> Result<()> {
    let Some(s) = process.scheduler() else {
        return Ok(());
    };
    let field = "process.scheduler";
    let policy = match *s.policy() {
        LinuxSchedulerPolicy::SchedOther => 0,
        LinuxSchedulerPolicy::SchedFifo => 1,
        LinuxSchedulerPolicy::SchedRr => 2,
        LinuxSchedulerPolicy::SchedBatch => 3,
        LinuxSchedulerPolicy::SchedIdle => 5,
        LinuxSchedulerPolicy::SchedDeadline => 6,
        LinuxSchedulerPolicy::SchedIso => {
            return Err(spec_err(
                "process.scheduler.policy",
                "SCHED_ISO is not implemented by Linux",
            ))
        }
    };
    let mut flags = 0u64;
    for f in s.flags().iter().flatten() {
        flags |= match f {
            LinuxSchedulerFlag::SchedResetOnFork => 0x01,
            LinuxSchedulerFlag::SchedFlagReclaim => 0x02,
            LinuxSchedulerFlag::SchedFlagDLOverrun => 0x04,
            LinuxSchedulerFlag::SchedFlagKeepPolicy => 0x08,
            LinuxSchedulerFlag::SchedFlagKeepParams => 0x10,
            LinuxSchedulerFlag::SchedFlagUtilClampMin => 0x20,
            LinuxSchedulerFlag::SchedFlagUtilClampMax => 0x40,
        };
    }
    let priority = u32::try_from(s.priority().unwrap_or(0))
        .map_err(|_| spec_err("process.scheduler.priority", "must not be negative"))?;
    let attr = sys::SchedAttr {
        policy,
        flags,
        nice: s.nice().unwrap_or(0),
        priority,
        runtime: s.runtime().unwrap_or(0),
        deadline: s.deadline().unwrap_or(0),
        period: s.period().unwrap_or(0),
        ..Default::default()
    };
    sys::sched_setattr_self(&attr).map_err(|e| {
        spec_err(
            field,
            format!("sched_setattr {}: {e}", policy_name(*s.policy())),
        )
    })
}

fn policy_name(p: LinuxSchedulerPolicy) -> &'static str {
    match p {
        LinuxSchedulerPolicy::SchedOther => "SCHED_OTHER",
        LinuxSchedulerPolicy::SchedFifo => "SCHED_FIFO",
        LinuxSchedulerPolicy::SchedRr => "SCHED_RR",
        LinuxSchedulerPolicy::SchedBatch => "SCHED_BATCH",
        LinuxSchedulerPolicy::SchedIso => "SCHED_ISO",
        LinuxSchedulerPolicy::SchedIdle => "SCHED_IDLE",
        LinuxSchedulerPolicy::SchedDeadline => "SCHED_DEADLINE",
    }
}

#[cfg(test)]
mod tests {
    use super::parse_nodes;

    #[test]
    fn node_lists() {
        assert_eq!(parse_nodes("0"), Ok(vec![1]));
        assert_eq!(parse_nodes("0-2,5"), Ok(vec![0b100111]));
        assert_eq!(parse_nodes("64"), Ok(vec![0, 1]));
        assert_eq!(parse_nodes(""), Ok(vec![]));
        assert!(parse_nodes("3-1").is_err());
        assert!(parse_nodes("x").is_err());
    }
}
