//! What a rootless engine (one running in the user namespace of rootless
//! berth, see `berth_runtime::rootless`) refuses rather than ignores.

use crate::networking::NetMode;
use crate::options::HostConfig;
use crate::{EngineError, Result};

/// Refuses, with one line, what a rootless container cannot have here: a
/// resource limit (no cgroup is delegated to the user), a user-defined
/// network, or the default network (pasta's) without pasta.
pub(crate) fn check_create(h: &HostConfig) -> Result<()> {
    let limits: [(&str, bool); 10] = [
        ("-m/--memory", h.memory.is_some_and(|v| v > 0)),
        ("--memory-swap", h.memory_swap.is_some_and(|v| v != 0)),
        (
            "--memory-reservation",
            h.memory_reservation.is_some_and(|v| v > 0),
        ),
        ("--cpus", h.nano_cpus.is_some_and(|v| v > 0)),
        ("-c/--cpu-shares", h.cpu_shares.is_some_and(|v| v > 0)),
        ("--cpu-quota", h.cpu_quota.is_some_and(|v| v != 0)),
        ("--cpu-period", h.cpu_period.is_some_and(|v| v > 0)),
        (
            "--cpuset-cpus/--cpuset-mems",
            h.cpuset_cpus.as_deref().is_some_and(|v| !v.is_empty())
                || h.cpuset_mems.as_deref().is_some_and(|v| !v.is_empty()),
        ),
        ("--pids-limit", h.pids_limit.is_some_and(|v| v > 0)),
        ("--blkio-weight", h.blkio_weight.is_some_and(|v| v > 0)),
    ];
    if let Some((flag, _)) = limits.iter().find(|(_, set)| *set) {
        return Err(EngineError::Unsupported(format!(
            "rootless berth cannot apply {flag}: this host delegates no cgroup to the user"
        )));
    }
    if !h.more_networks.is_empty() {
        return Err(no_networks());
    }
    match NetMode::of(h) {
        NetMode::None | NetMode::Host | NetMode::Container(_) => Ok(()),
        // The default network is pasta's: without it, one line now
        // rather than a container that cannot start.
        NetMode::Bridge(None) => {
            if h.mac_address.is_some() {
                return Err(EngineError::Invalid(
                    "rootless berth cannot set --mac-address on the default network".into(),
                ));
            }
            berth_network::pasta::find()?;
            Ok(())
        }
        NetMode::Bridge(Some(_)) => Err(no_networks()),
    }
}

/// A user-defined network asked of rootless berth.
pub(crate) fn no_networks() -> EngineError {
    EngineError::Unsupported(
        "rootless berth has no user-defined networks yet: use the default network, --network none or --network host".into(),
    )
}

/// `pause`/`unpause` (and a commit that pauses) asked of rootless berth:
/// the freezer is a cgroup's.
pub(crate) fn no_freezer() -> EngineError {
    EngineError::Unsupported(
        "rootless berth cannot pause a container: this host delegates no cgroup to the user".into(),
    )
}
