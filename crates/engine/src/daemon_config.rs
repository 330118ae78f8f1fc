//! `/etc/berth/daemon.json`: the settings Docker users keep in Docker's
//! daemon.json, read in the same shape. berth has no daemon, so every
//! command that needs one of them reads the file itself; keys berth does
//! not know are left alone, as other tools may share the file.

use crate::error::{Context, EngineError, Result};
use berth_network::{AddressPool, NetworkDefaults};
use ipnet::{Ipv4Net, Ipv6Net};
use std::net::Ipv4Addr;
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
    /// (IPv4 entries: an IPv6 network takes the subnet it is given).
    pub address_pools: Vec<AddressPool>,
    /// `bip`: the default bridge's address and subnet (`192.168.77.1/24`).
    pub bip: Option<Ipv4Net>,
    /// `fixed-cidr`: the range of the default bridge's container addresses
    /// (within `bip`'s subnet; without `bip`, the subnet itself).
    pub fixed_cidr: Option<Ipv4Net>,
    /// `default-gateway`: the default route of the default bridge's
    /// containers, in its subnet.
    pub default_gateway: Option<Ipv4Addr>,
    /// `ipv6`: the default bridge is dual-stack, with `fixed-cidr-v6` as
    /// its IPv6 subnet (required then, as by Docker).
    pub ipv6: bool,
    /// `fixed-cidr-v6`: the default bridge's IPv6 subnet (used with `ipv6`).
    pub fixed_cidr_v6: Option<Ipv6Net>,
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
        let text = |key: &str| -> std::result::Result<Option<&str>, String> {
            match obj.get(key) {
                None => Ok(None),
                Some(v) => v
                    .as_str()
                    .map(|s| Some(s).filter(|s| !s.is_empty()))
                    .ok_or_else(|| format!("{key}: {v} is not a string")),
            }
        };
        // Docker's words: Go's net.ParseCIDR and net.ParseIP.
        let cidr = |key: &str, v: &str| {
            v.parse::<Ipv4Net>()
                .map_err(|_| format!("{key}: invalid CIDR address: {v}"))
        };
        if let Some(v) = text("bip")? {
            let b = cidr("bip", v)?;
            if b.addr() == b.network() || b.addr() == b.broadcast() || b.prefix_len() > 30 {
                return Err(format!(
                    "bip: failed to allocate gateway ({}): Address already in use",
                    b.addr()
                ));
            }
            c.bip = Some(b);
        }
        if let Some(v) = text("fixed-cidr")? {
            let f = cidr("fixed-cidr", v)?.trunc();
            if let Some(b) = c.bip {
                if !(b.trunc().contains(&f.network()) && f.prefix_len() >= b.prefix_len()) {
                    return Err(format!(
                        "fixed-cidr: {f} is not within bip's subnet {}",
                        b.trunc()
                    ));
                }
            } else if f.prefix_len() > 30 {
                return Err(format!("fixed-cidr: {f} is too small for a subnet"));
            }
            c.fixed_cidr = Some(f);
        }
        match obj.get("ipv6") {
            None => {}
            Some(v) => {
                c.ipv6 = v
                    .as_bool()
                    .ok_or_else(|| format!("ipv6: {v} is not a boolean"))?
            }
        }
        if let Some(v) = text("fixed-cidr-v6")? {
            let f = v
                .parse::<Ipv6Net>()
                .map_err(|_| format!("fixed-cidr-v6: invalid CIDR address: {v}"))?
                .trunc();
            if f.prefix_len() > 126 {
                return Err(format!("fixed-cidr-v6: {f} is too small for a subnet"));
            }
            c.fixed_cidr_v6 = Some(f);
        }
        if c.ipv6 && c.fixed_cidr_v6.is_none() {
            // Docker's daemon does not start on it.
            return Err("Please specify a IPv6 subnet using --fixed-cidr-v6 when IPv6 is enabled on the default bridge".into());
        }
        if let Some(v) = text("default-gateway")? {
            c.default_gateway = Some(
                v.parse()
                    .map_err(|_| format!("default-gateway: invalid IP address: {v}"))?,
            );
        }
        Ok(c)
    }

    /// What of it shapes networks.
    pub fn network_defaults(&self) -> NetworkDefaults {
        NetworkDefaults {
            mtu: self.mtu,
            address_pools: self.address_pools.clone(),
            bip: self.bip,
            fixed_cidr: self.fixed_cidr,
            default_gateway: self.default_gateway,
            fixed_cidr_v6: self.fixed_cidr_v6.filter(|_| self.ipv6),
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
        let c = DaemonConfig::parse(
            br#"{"bip": "192.168.77.1/24", "fixed-cidr": "192.168.77.130/25",
                 "default-gateway": "192.168.77.200"}"#,
        )
        .unwrap();
        assert_eq!(c.bip, Some("192.168.77.1/24".parse().unwrap()));
        assert_eq!(c.fixed_cidr, Some("192.168.77.128/25".parse().unwrap()));
        assert_eq!(c.default_gateway, Some("192.168.77.200".parse().unwrap()));
        assert_eq!(DaemonConfig::parse(br#"{"mtu": 0}"#).unwrap().mtu, None);
        let c = DaemonConfig::parse(br#"{"ipv6": true, "fixed-cidr-v6": "fd00:d0::/64"}"#).unwrap();
        assert_eq!(
            c.network_defaults().fixed_cidr_v6,
            Some("fd00:d0::/64".parse().unwrap())
        );
        // (without `ipv6` the subnet is not used, as in Docker)
        let c = DaemonConfig::parse(br#"{"fixed-cidr-v6": "fd00:d0::/64"}"#).unwrap();
        assert_eq!(c.network_defaults().fixed_cidr_v6, None);
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
            (br#"{"bip": "bogus"}"#, "bip: invalid CIDR address: bogus"),
            (
                br#"{"bip": "192.168.77.1"}"#,
                "bip: invalid CIDR address: 192.168.77.1",
            ),
            (
                br#"{"bip": "192.168.77.0/24"}"#,
                "bip: failed to allocate gateway (192.168.77.0): Address already in use",
            ),
            (br#"{"bip": 5}"#, "bip: 5 is not a string"),
            (
                br#"{"fixed-cidr": "bogus"}"#,
                "fixed-cidr: invalid CIDR address: bogus",
            ),
            (
                br#"{"bip": "192.168.77.1/24", "fixed-cidr": "10.0.0.0/24"}"#,
                "fixed-cidr: 10.0.0.0/24 is not within bip's subnet 192.168.77.0/24",
            ),
            (
                br#"{"ipv6": true}"#,
                "Please specify a IPv6 subnet using --fixed-cidr-v6 when IPv6 is enabled on the default bridge",
            ),
            (br#"{"ipv6": "yes"}"#, "ipv6: \"yes\" is not a boolean"),
            (
                br#"{"ipv6": true, "fixed-cidr-v6": "bogus"}"#,
                "fixed-cidr-v6: invalid CIDR address: bogus",
            ),
            (
                br#"{"default-gateway": "bogus"}"#,
                "default-gateway: invalid IP address: bogus",
            ),
        ] {
            let e = DaemonConfig::parse(bad).unwrap_err();
            assert!(e.contains(says), "{e}");
        }
    }
}
