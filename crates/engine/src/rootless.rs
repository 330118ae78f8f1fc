//! What a rootless engine (one running in the user namespace of rootless
//! berth, see `berth_runtime::rootless`) refuses rather than ignores.

use berth_cgroups::delegation::Delegation;

use crate::networking::NetMode;
use crate::options::HostConfig;
use crate::{EngineError, Result};

/// Refuses, with one line, what a rootless container cannot have here: a
/// resource limit whose controller no cgroup delegated to the user offers
/// (`delegation`: see `berth_cgroups::delegation`), the default network
/// (pasta's) or a user network (in the rootless network namespace, which
/// pasta joins to the host) without pasta, the default network together
/// with a user network, and a port published from a user network.
pub(crate) fn check_create(h: &HostConfig, delegation: Option<&Delegation>) -> Result<()> {
    let limits: [(&str, &str, bool); 10] = [
        ("-m/--memory", "memory", h.memory.is_some_and(|v| v > 0)),
        (
            "--memory-swap",
            "memory",
            h.memory_swap.is_some_and(|v| v != 0),
        ),
        (
            "--memory-reservation",
            "memory",
            h.memory_reservation.is_some_and(|v| v > 0),
        ),
        ("--cpus", "cpu", h.nano_cpus.is_some_and(|v| v > 0)),
        (
            "-c/--cpu-shares",
            "cpu",
            h.cpu_shares.is_some_and(|v| v > 0),
        ),
        ("--cpu-quota", "cpu", h.cpu_quota.is_some_and(|v| v != 0)),
        ("--cpu-period", "cpu", h.cpu_period.is_some_and(|v| v > 0)),
        (
            "--cpuset-cpus/--cpuset-mems",
            "cpuset",
            h.cpuset_cpus.as_deref().is_some_and(|v| !v.is_empty())
                || h.cpuset_mems.as_deref().is_some_and(|v| !v.is_empty()),
        ),
        ("--pids-limit", "pids", h.pids_limit.is_some_and(|v| v > 0)),
        (
            "--blkio-weight",
            "io",
            h.blkio_weight.is_some_and(|v| v > 0),
        ),
    ];
    for (flag, controller, set) in limits {
        if !set {
            continue;
        }
        match delegation {
            None => {
                return Err(EngineError::Unsupported(format!(
                    "rootless berth cannot apply {flag}: this host delegates no cgroup to the user"
                )))
            }
            Some(d) if !d.has(controller) => {
                return Err(EngineError::Unsupported(format!(
                    "rootless berth cannot apply {flag}: the cgroup delegated to the user (/{}) has no {controller} controller",
                    d.base.display()
                )))
            }
            Some(_) => {}
        }
    }
    let mode = NetMode::of(h);
    if !h.more_networks.is_empty() && mode == NetMode::Bridge(None) {
        return Err(EngineError::Invalid(
            "rootless berth cannot attach the default network (pasta's) and a user-defined network together".into(),
        ));
    }
    match mode {
        NetMode::None | NetMode::Host | NetMode::Container(_) => Ok(()),
        // The default network is pasta's (slirp4netns's without it):
        // without either, one line now rather than a container that
        // cannot start.
        NetMode::Bridge(None) => {
            if h.mac_address.is_some() {
                return Err(EngineError::Invalid(
                    "rootless berth cannot set --mac-address on the default network".into(),
                ));
            }
            berth_network::slirp::Backend::find()?;
            Ok(())
        }
        NetMode::Bridge(Some(_)) => {
            // pasta forwards them from the host into the rootless network
            // namespace's loopback, where the DNAT rules match them.
            if let Some(ip) = h
                .publish
                .iter()
                .filter_map(|p| p.host_ip)
                .find(|ip| !ip.is_ipv4() || !(ip.is_unspecified() || ip.is_loopback()))
            {
                return Err(EngineError::Unsupported(format!(
                    "rootless berth publishes a user-defined network's ports on 127.0.0.1 or on every IPv4 address, not on {ip}"
                )));
            }
            berth_network::pasta::find()?;
            Ok(())
        }
    }
}

/// `network create` asked of rootless berth: bridges only (a macvlan or
/// ipvlan link needs the host's parent interface, which the rootless
/// network namespace does not have), and pasta to join them to the host.
pub(crate) fn check_network(o: &berth_network::NetworkOptions) -> Result<()> {
    let driver = o.driver.as_deref().unwrap_or("bridge");
    if driver == "macvlan" || driver == "ipvlan" {
        return Err(EngineError::Unsupported(format!(
            "rootless berth cannot create a {driver} network: its parent interface is the host's (use the bridge driver)"
        )));
    }
    berth_network::pasta::find()?;
    Ok(())
}

/// `network connect` of a container on the default network (pasta's,
/// which has no bridge to join the user's networks through).
pub(crate) fn no_connect_default(name: &str) -> EngineError {
    EngineError::Unsupported(format!(
        "rootless berth cannot connect container {name} to a user-defined network: it is on the default network (pasta's)"
    ))
}

/// `pause`/`unpause` (and a commit that pauses) asked of rootless berth:
/// the freezer is a cgroup's.
pub(crate) fn no_freezer() -> EngineError {
    EngineError::Unsupported(
        "rootless berth cannot pause a container: this host delegates no cgroup to the user".into(),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn host(f: impl FnOnce(&mut HostConfig)) -> HostConfig {
        let mut h = HostConfig {
            network: "none".into(),
            ..HostConfig::default()
        };
        f(&mut h);
        h
    }

    #[test]
    fn limits_need_a_delegated_controller() {
        let d = Delegation {
            base: "user.slice/user-1000".into(),
            controllers: vec!["cpu".into(), "memory".into(), "pids".into()],
        };
        let mem = host(|h| h.memory = Some(32 << 20));
        let err = check_create(&mem, None).unwrap_err().to_string();
        assert!(
            err.ends_with("cannot apply -m/--memory: this host delegates no cgroup to the user"),
            "{err}"
        );
        check_create(&mem, Some(&d)).unwrap();
        check_create(&host(|h| h.pids_limit = Some(10)), Some(&d)).unwrap();
        check_create(&host(|h| h.nano_cpus = Some(500_000_000)), Some(&d)).unwrap();
        let cpuset = host(|h| h.cpuset_cpus = Some("0".into()));
        let err = check_create(&cpuset, Some(&d)).unwrap_err().to_string();
        assert!(
            err.ends_with("cannot apply --cpuset-cpus/--cpuset-mems: the cgroup delegated to the user (/user.slice/user-1000) has no cpuset controller"),
            "{err}"
        );
        check_create(&host(|_| {}), None).unwrap();
    }
}
