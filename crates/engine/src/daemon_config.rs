//! `/etc/berth/daemon.json`: the settings Docker users keep in Docker's
//! daemon.json, read in the same shape. berth has no daemon, so every
//! command that needs one of them reads the file itself; keys berth does
//! not know are left alone, as other tools may share the file.

use crate::error::{Context, EngineError, Result};
use std::path::PathBuf;

/// What berth takes from daemon.json.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DaemonConfig {
    /// `insecure-registries`: reached over plain HTTP too.
    pub insecure_registries: Vec<String>,
    /// `mtu`: the MTU of the default network `bridge` (Docker's key; unset:
    /// berth's local links, see `berth_network::NetworkRecord::link_mtu`).
    pub mtu: Option<u32>,
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
                let n = m
                    .as_u64()
                    .filter(|n| (68..=65535).contains(n))
                    .ok_or_else(|| format!("mtu: {m} is not a number between 68 and 65535"))?;
                c.mtu = u32::try_from(n).ok();
            }
        }
        Ok(c)
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
            (b"{", "EOF while parsing"),
        ] {
            let e = DaemonConfig::parse(bad).unwrap_err();
            assert!(e.contains(says), "{e}");
        }
    }
}
