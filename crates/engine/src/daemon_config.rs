//! `/etc/berth/daemon.json`: the settings Docker users keep in Docker's
//! daemon.json, read in the same shape. berth has no daemon, so every
//! command that needs one of them reads the file itself; keys berth does
//! not know are left alone, as other tools may share the file.

use crate::error::{Context, EngineError, Result};
use berth_network::{AddressPool, NetworkDefaults};
use std::path::PathBuf;

/// What berth takes from daemon.json.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DaemonConfig {
    /// `insecure-registries`: reached over plain HTTP too.
    pub insecure_registries: Vec<String>,
    /// `mtu`: the MTU of the default network `bridge` (Docker's key; unset:
    /// berth's local links, see `berth_network::NetworkRecord::link_mtu`).
    pub mtu: Option<u32>,
    /// `default-address-pools`: where new networks take their subnets
    /// (IPv4 entries; berth's networks have no IPv6).
    pub address_pools: Vec<AddressPool>,
}

impl DaemonConfig {
    /// `BERTH_DAEMON_JSON`, or /etc/berth/daemon.json.
    pub fn path() -> PathBuf {
        std::env::var_os("BERTH_DAEMON_JSON")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/etc/berth/daemon.json"))
    }

    /// The file's settings; a missing file is an empty one. A file that is
    /// not JSON, or a known key of the wrong shape, is an error (Docker's
    /// daemon refuses to start on it).
    pub fn load() -> Result<DaemonConfig> {
        let path = Self::path();
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(DaemonConfig::default())
            }
            r => r.context(|| format!("read {}", path.display()))?,
        };
        Self::parse(&bytes).map_err(|e| EngineError::Invalid(format!("{}: {e}", path.display())))
    }

    fn parse(bytes: &[u8]) -> std::result::Result<DaemonConfig, String> {
        let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        let obj = v.as_object().ok_or("not a JSON object")?;
        let mut c = DaemonConfig::default();
        if let Some(list) = obj.get("insecure-registries") {
            let list = list
                .as_array()
                .ok_or("insecure-registries: not a list of strings")?;
            for r in list {
                let r = r
                    .as_str()
                    .ok_or("insecure-registries: not a list of strings")?;
                c.insecure_registries.push(r.to_owned());
            }
        }
        match obj.get("mtu") {
            None => {}
            // Docker's own default written out: the same as unset there.
            Some(m) if m.as_u64() == Some(0) => {}
            Some(m) => {
                let range = berth_network::MTU_RANGE;
                let n = m
                    .as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .filter(|n| range.contains(n))
                    .ok_or_else(|| {
                        format!(
                            "mtu: {m} is not a number between {} and {}",
                            range.start(),
                            range.end()
                        )
                    })?;
                c.mtu = Some(n);
            }
        }
        if let Some(pools) = obj.get("default-address-pools") {
            let pools = pools
                .as_array()
                .ok_or("default-address-pools: not a list")?;
            for p in pools {
                let base = p.get("base").and_then(|b| b.as_str());
                let size = p.get("size").and_then(|s| s.as_u64());
                let (Some(base), Some(size)) = (base, size) else {
                    return Err(format!(
                        "default-address-pools: {p} is not {{\"base\": \"CIDR\", \"size\": N}}"
                    ));
                };
                if base.contains(':') {
                    continue;
                }
                let net = base
                    .parse()
                    .map_err(|_| format!("default-address-pools: {base:?} is not an IPv4 CIDR"))?;
                let pool = u8::try_from(size)
                    .map_err(|_| {
                        format!("default-address-pools: size {size} is not a prefix length")
                    })
                    .and_then(|size| {
                        AddressPool::new(net, size)
                            .map_err(|e| format!("default-address-pools: {e}"))
                    })?;
                c.address_pools.push(pool);
            }
        }
        Ok(c)
    }

    /// What of it shapes networks.
    pub fn network_defaults(&self) -> NetworkDefaults {
        NetworkDefaults {
            mtu: self.mtu,
            address_pools: self.address_pools.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn keys_berth_knows_and_their_errors() {
        let c = DaemonConfig::parse(
            br#"{"mtu": 1400, "insecure-registries": ["r:5000"], "log-driver": "local"}"#,
        )
        .unwrap();
        assert_eq!(c.mtu, Some(1400));
        assert_eq!(c.insecure_registries, ["r:5000"]);
        assert_eq!(DaemonConfig::parse(b"{}").unwrap(), DaemonConfig::default());
        assert_eq!(DaemonConfig::parse(br#"{"mtu": 0}"#).unwrap().mtu, None);
        let c = DaemonConfig::parse(
            br#"{"default-address-pools": [{"base": "10.10.0.0/16", "size": 24},
                {"base": "fd00::/64", "size": 80}]}"#,
        )
        .unwrap();
        assert_eq!(
            c.address_pools,
            [AddressPool::new("10.10.0.0/16".parse().unwrap(), 24).unwrap()]
        );
        for (bad, says) in [
            (
                &br#"{"mtu": 10}"#[..],
                "mtu: 10 is not a number between 68 and 65535",
            ),
            (br#"{"mtu": "1500"}"#, "mtu: \"1500\" is not a number"),
            (br#"{"mtu": 70000}"#, "mtu: 70000"),
            (
                br#"{"insecure-registries": "r"}"#,
                "insecure-registries: not a list",
            ),
            (b"[1]", "not a JSON object"),
            (
                br#"{"default-address-pools": [{"base": "10.10.0.0/16"}]}"#,
                "is not {\"base\": \"CIDR\", \"size\": N}",
            ),
            (
                br#"{"default-address-pools": [{"base": "10.10.0.0/16", "size": 8}]}"#,
                "size 8 must be between 16 and 30",
            ),
            (
                br#"{"default-address-pools": [{"base": "10.10.0.1/16", "size": 24}]}"#,
                "the base should be 10.10.0.0/16",
            ),
            (
                br#"{"default-address-pools": [{"base": "nonsense", "size": 24}]}"#,
                "\"nonsense\" is not an IPv4 CIDR",
            ),
            (b"{", "EOF while parsing"),
        ] {
            let e = DaemonConfig::parse(bad).unwrap_err();
            assert!(e.contains(says), "{e}");
        }
    }
}
