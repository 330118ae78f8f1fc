//! Docker's `run`/`create` options past the basics: resources, security,
//! namespaces, mounts, devices, restart/log/health policies. Each parser
//! takes the flag's text as Docker's CLI does and fails with one line
//! (`EngineError::Invalid`, exit 125). What they produce is stored with the
//! container (`ContainerConfig::host` and friends) and turned into the OCI
//! spec by `spec::container_spec` each time the container starts.

use crate::error::{EngineError, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// An I/O error without Rust's " (os error N)" tail, as Go prints it.
pub(crate) fn io_reason(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_ascii_lowercase(),
        None => s,
    }
}

fn invalid(msg: impl Into<String>) -> EngineError {
    EngineError::Invalid(msg.into())
}

/// Docker's message for a flag value that does not parse.
fn bad_arg(flag: &str, value: &str, why: impl std::fmt::Display) -> EngineError {
    invalid(format!(
        "invalid argument {value:?} for \"{flag}\" flag: {why}"
    ))
}

/// Seccomp as asked with `--security-opt` (the profile's JSON is read at
/// create time and kept, as Docker does).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SeccompMode {
    #[default]
    Default,
    Unconfined,
    Profile(String),
}

/// One `--ulimit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ulimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

/// One `--device HOST[:CONTAINER][:PERMS]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceMapping {
    pub host: String,
    pub container: String,
    pub permissions: String,
}

/// One mount of `-v`, `--mount`, `--tmpfs` or an image's `Volumes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountPoint {
    /// bind | volume | tmpfs
    pub typ: String,
    /// bind: the host path; volume: the volume's name (empty: anonymous)
    /// until create gives it its directory; tmpfs: empty.
    pub source: String,
    pub destination: String,
    pub read_only: bool,
    /// Extra mount options (propagation, tmpfs size/mode/flags).
    #[serde(default)]
    pub options: Vec<String>,
    /// A volume's name (named or generated); None for binds and tmpfs.
    #[serde(default)]
    pub name: Option<String>,
    /// Whether a missing bind source is created (`-v`) or an error (`--mount`).
    #[serde(default)]
    pub create_source: bool,
    /// `nocopy` / `volume-nocopy`: a new volume is not populated from the
    /// image.
    #[serde(default)]
    pub no_copy: bool,
}

/// `--restart`: Docker's RestartPolicy (stored as its text in
/// `ContainerConfig::restart`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartPolicy {
    /// "no" (or empty), "always", "unless-stopped", "on-failure".
    pub name: String,
    pub maximum_retry_count: i64,
}

/// `--log-driver` and `--log-opt`: Docker's LogConfig (stored as
/// `ContainerConfig::log_*`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogConfig {
    pub typ: String,
    pub config: BTreeMap<String, String>,
}

impl RestartPolicy {
    /// As `--restart` writes it: `no`, `always`, `on-failure:3`, ...
    pub fn text(&self) -> String {
        if self.name == "on-failure" && self.maximum_retry_count > 0 {
            format!("on-failure:{}", self.maximum_retry_count)
        } else {
            self.name.clone()
        }
    }
}

impl LogConfig {
    /// max-size in bytes (None: unlimited).
    pub fn max_size(&self) -> Option<u64> {
        self.config
            .get("max-size")
            .and_then(|v| parse_bytes(v).ok())
            .filter(|n| *n > 0)
            .map(|n| n as u64)
    }

    pub fn max_files(&self) -> Option<u32> {
        self.config.get("max-file").and_then(|v| v.parse().ok())
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            typ: "json-file".into(),
            config: BTreeMap::new(),
        }
    }
}

/// Docker's HealthConfig (durations in nanoseconds; 0 = inherit/default).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Healthcheck {
    /// ["NONE"], ["CMD", ...], ["CMD-SHELL", cmd]; empty: inherit the image's.
    pub test: Vec<String>,
    pub interval: i64,
    pub timeout: i64,
    pub start_period: i64,
    pub retries: i64,
}

impl Healthcheck {
    /// Whether this runs a check (`CMD` or `CMD-SHELL`), rather than
    /// disabling (`NONE`) or inheriting the image's (empty).
    pub fn runs_a_check(&self) -> bool {
        self.test
            .first()
            .is_some_and(|t| t == "CMD" || t == "CMD-SHELL")
    }
}

/// What the container runs with beyond its process: Docker's HostConfig
/// (the parts berth implements). Stored with the container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HostConfig {
    pub memory: Option<i64>,
    pub memory_swap: Option<i64>,
    pub memory_reservation: Option<i64>,
    pub nano_cpus: Option<i64>,
    pub cpu_shares: Option<u64>,
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<u64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub pids_limit: Option<i64>,
    pub blkio_weight: Option<u16>,
    /// `--shm-size` in bytes: the size of /dev/shm's tmpfs (None: Docker's
    /// 64 MiB).
    pub shm_size: Option<i64>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub privileged: bool,
    pub no_new_privileges: bool,
    pub seccomp: SeccompMode,
    pub ulimits: Vec<Ulimit>,
    pub sysctls: BTreeMap<String, String>,
    pub devices: Vec<DeviceMapping>,
    pub group_add: Vec<String>,
    /// "" (private), "private", "shareable", "none", "host", "container:X".
    pub ipc: String,
    /// "" or "host" or "container:X".
    pub pid: String,
    /// "" or "host".
    pub uts: String,
    /// "" or "host".
    pub userns: String,
    pub mounts: Vec<MountPoint>,
    /// `--init`: the host's init binary, bind-mounted at /sbin/docker-init
    /// (Some("") from the CLI: find one at create).
    pub init: Option<String>,
    /// `--runtime`: a path or a name looked up in PATH; None: berth-runtime.
    pub runtime: Option<String>,
    /// `--network`: "" (the default bridge), "bridge", "none", "host",
    /// "container:X" or a user network's name.
    pub network: String,
    /// `-p`: ports to publish (host ports chosen at start when absent).
    pub publish: Vec<berth_network::PortSpec>,
    /// `-P`: publish every exposed port to a free host port.
    pub publish_all: bool,
    /// `--expose`: ports exposed beyond the image's ("80/tcp").
    pub expose: Vec<String>,
    /// `--ip`: the address on a user network.
    pub ip: Option<std::net::Ipv4Addr>,
    /// `--ip6`: the IPv6 address on a user network with IPv6.
    pub ip6: Option<std::net::Ipv6Addr>,
    /// `--network-alias`: more names on a user network.
    pub network_aliases: Vec<String>,
    /// `--dns`, `--dns-search`, `--dns-option`.
    pub dns: Vec<std::net::IpAddr>,
    pub dns_search: Vec<String>,
    pub dns_options: Vec<String>,
    /// `--add-host NAME:IP` ("host-gateway" for the bridge's address).
    pub extra_hosts: Vec<(String, String)>,
    /// `--domainname`.
    pub domainname: String,
    /// `--link NAME[:ALIAS]`: (the linked container as given, the alias).
    pub links: Vec<(String, String)>,
    /// `--mac-address`: the MAC of the container's interface on its first
    /// network (checked: six bytes, unicast).
    pub mac_address: Option<String>,
    /// `--network name=N,driver-opt=K=V`: the first network's endpoint
    /// options (kept for inspect's DriverOpts; the bridge driver uses none).
    pub network_driver_opts: BTreeMap<String, String>,
    /// The networks after the first (`--network` given again, the API's
    /// NetworkingConfig with several endpoints; Docker 25+): `eth1`, `eth2`…
    /// in this order.
    pub more_networks: Vec<NetworkAttachment>,
}

/// One `--network` (Docker's long syntax `name=N,alias=A,ip=IP,driver-opt=K=V`
/// or a bare name), or one endpoint of the API's NetworkingConfig.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkAttachment {
    /// The network's name or ID (or `bridge`, `host`, `none`, `container:X`).
    pub network: String,
    pub aliases: Vec<String>,
    pub ip: Option<std::net::Ipv4Addr>,
    pub ip6: Option<std::net::Ipv6Addr>,
    pub driver_opts: BTreeMap<String, String>,
    /// The endpoint's MAC (`mac-address=`, EndpointSettings.MacAddress),
    /// as [`mac_address`] writes it.
    pub mac_address: Option<String>,
}

/// Docker's `--network` value: a name, or the long syntax when it holds a
/// `word=word` pair (Docker's CLI test): comma-separated `name=`, `alias=`
/// (repeated), `ip=`, `driver-opt=K=V` (keys case-insensitive).
pub fn network_attachment(s: &str) -> Result<NetworkAttachment> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let long = s
        .char_indices()
        .any(|(i, c)| c == '=' && s[..i].ends_with(word) && s[i + 1..].starts_with(word));
    if !long {
        return Ok(NetworkAttachment {
            network: s.to_owned(),
            ..Default::default()
        });
    }
    let bad = |why: String| bad_arg("--network", s, why);
    let mut a = NetworkAttachment::default();
    for field in s.split(',') {
        let Some((k, v)) = field.split_once('=') else {
            return Err(bad(format!("invalid field {field}")));
        };
        let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
        match k.as_str() {
            "" => return Err(bad(format!("invalid field {field}"))),
            "name" => a.network = v.to_owned(),
            "alias" => a.aliases.push(v.to_owned()),
            "ip" => {
                a.ip = Some(
                    v.parse()
                        .map_err(|_| invalid(format!("invalid IPv4 address: {v}")))?,
                )
            }
            "driver-opt" => {
                let (dk, dv) = v
                    .split_once('=')
                    .filter(|(dk, _)| !dk.trim().is_empty())
                    .ok_or_else(|| bad("invalid key value pair format in driver options".into()))?;
                a.driver_opts
                    .insert(dk.trim().to_ascii_lowercase(), dv.trim().to_owned());
            }
            "ip6" => {
                a.ip6 = Some(
                    v.parse()
                        .map_err(|_| invalid(format!("invalid IPv6 address: {v}")))?,
                )
            }
            "mac-address" => a.mac_address = Some(mac_address(v)?),
            "link-local-ip" => {
                return Err(bad(format!(
                    "{k}: berth's networks have no link-local addresses"
                )))
            }
            _ => return Err(bad(format!("invalid field key {k}"))),
        }
    }
    if a.network.is_empty() {
        return Err(bad("network name/id is not specified".into()));
    }
    Ok(a)
}

/// Whether Docker calls a `--network` value user-defined: not one of its
/// predefined modes.
pub fn user_defined_network(n: &str) -> bool {
    !matches!(n, "" | "default" | "bridge" | "host" | "none") && !n.starts_with("container:")
}

/// Every `--network` of a `run`/`create`, with `--network-alias`, `--ip`
/// and `--mac-address` (already in `h`) (which apply to the first), into `h`, with the checks and words of
/// Docker's CLI (25+, which attaches to several networks at create).
pub fn apply_networks(
    h: &mut HostConfig,
    networks: Vec<NetworkAttachment>,
    aliases: &[String],
    ip: Option<std::net::Ipv4Addr>,
    ip6: Option<std::net::Ipv6Addr>,
) -> Result<()> {
    let mut seen: Vec<&str> = Vec::new();
    for n in &networks {
        if seen.contains(&n.network.as_str()) {
            return Err(invalid(format!(
                "network {:?} is specified multiple times",
                n.network
            )));
        }
        seen.push(&n.network);
    }
    let users = networks
        .iter()
        .filter(|n| user_defined_network(&n.network))
        .count();
    if users > 0 && users < networks.len() {
        return Err(invalid(
            "conflicting options: cannot attach both user-defined and non-user-defined network-modes",
        ));
    }
    let mut list = networks.into_iter();
    let mut first = list.next().unwrap_or_default();
    if !aliases.is_empty() {
        if !first.aliases.is_empty() {
            return Err(invalid(
                "conflicting options: cannot specify both --network-alias and per-network alias",
            ));
        }
        if !user_defined_network(&first.network) {
            return Err(invalid(
                "network-scoped aliases are only supported for user-defined networks",
            ));
        }
        first.aliases = aliases.to_vec();
    }
    if let Some(ip) = ip {
        if first.ip.is_some() {
            return Err(invalid(
                "conflicting options: cannot specify both --ip and per-network IPv4 address",
            ));
        }
        first.ip = Some(ip);
    }
    if let Some(ip6) = ip6 {
        if first.ip6.is_some() {
            return Err(invalid(
                "conflicting options: cannot specify both --ip6 and per-network IPv6 address",
            ));
        }
        first.ip6 = Some(ip6);
    }
    if let Some(mac) = first.mac_address.take() {
        if h.mac_address.is_some() {
            return Err(invalid(
                "conflicting options: cannot specify both --mac-address and per-network MAC address",
            ));
        }
        h.mac_address = Some(mac);
    }
    h.network = network_mode(&first.network)?;
    h.network_aliases = first.aliases;
    h.ip = first.ip;
    h.ip6 = first.ip6;
    h.network_driver_opts = first.driver_opts;
    h.more_networks = list.collect();
    check_networks(h)
}

/// Several networks only when they are all user networks: Docker's
/// words for the rest (also for the API's NetworkingConfig).
pub fn check_networks(h: &HostConfig) -> Result<()> {
    if h.more_networks.is_empty() {
        return Ok(());
    }
    let all: Vec<&str> = std::iter::once(if h.network.is_empty() {
        "bridge"
    } else {
        h.network.as_str()
    })
    .chain(h.more_networks.iter().map(|n| n.network.as_str()))
    .collect();
    let users = all.iter().filter(|n| user_defined_network(n)).count();
    if users == 0 {
        return Err(invalid(format!(
            "Container cannot be connected to network endpoints: {}",
            all.join(", ")
        )));
    }
    if users < all.len() {
        return Err(invalid(
            "conflicting options: cannot attach both user-defined and non-user-defined network-modes",
        ));
    }
    for (i, n) in all.iter().enumerate() {
        if all[..i].contains(n) {
            return Err(invalid(format!(
                "network {n:?} is specified multiple times"
            )));
        }
    }
    Ok(())
}

/// Docker's `--add-host HOST:IP` (IP may be `host-gateway`).
pub fn add_host(s: &str) -> Result<(String, String)> {
    let bad = || invalid(format!("bad format for add-host: {s:?}"));
    let (name, ip) = s.split_once(':').ok_or_else(bad)?;
    let name = name.trim();
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(bad());
    }
    let addr = ip.trim_start_matches('[').trim_end_matches(']');
    if ip != "host-gateway" && addr.parse::<std::net::IpAddr>().is_err() {
        return Err(invalid(format!("invalid IP address in add-host: {ip:?}")));
    }
    Ok((name.to_owned(), addr.to_owned()))
}

/// `--mac-address`, lower-case with colons.
pub fn mac_address(s: &str) -> Result<String> {
    let mac = berth_network::parse_unicast_mac(s).map_err(|e| invalid(e.to_string()))?;
    Ok(berth_network::mac_text(&mac))
}

/// Docker's `--link NAME[:ALIAS]` (the alias is the name when not given).
pub fn link(s: &str) -> Result<(String, String)> {
    let (name, alias) = s.split_once(':').unwrap_or((s, s));
    let name = name.trim_start_matches('/');
    let alias = alias.trim_start_matches('/');
    let fine = |x: &str| {
        !x.is_empty()
            && x.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    };
    if !fine(name) || !fine(alias) {
        return Err(invalid(format!("bad format for links: {s}")));
    }
    Ok((name.to_owned(), alias.to_owned()))
}

/// `--network`: Docker's names for the default network, or anything else
/// (a user network, checked at create).
pub fn network_mode(s: &str) -> Result<String> {
    match s {
        "" | "default" | "bridge" => Ok(String::new()),
        "none" | "host" => Ok(s.to_owned()),
        _ => {
            if let Some(c) = s.strip_prefix("container:") {
                if c.is_empty() {
                    return Err(invalid("--network container: needs a container name or ID"));
                }
            }
            Ok(s.to_owned())
        }
    }
}

// ------------------------------------------------------------- numbers

/// go-units' RAMInBytes: `16m`, `1.5g`, `512k`, `100` (bytes), binary units.
pub fn parse_bytes(s: &str) -> std::result::Result<i64, String> {
    let t = s.trim();
    let num_end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(num_end);
    let unit = unit.strip_prefix(' ').unwrap_or(unit).to_ascii_lowercase();
    let bad = || format!("invalid size: '{s}'");
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') {
        return Err(bad());
    }
    let value: f64 = num.parse().map_err(|_| bad())?;
    let (letter, rest) = match unit.chars().next() {
        Some(c @ ('k' | 'm' | 'g' | 't' | 'p')) => (Some(c), &unit[1..]),
        _ => (None, unit.as_str()),
    };
    let rest = rest.strip_prefix('i').unwrap_or(rest);
    if !(rest.is_empty() || rest == "b") {
        return Err(bad());
    }
    let mult: f64 = match letter {
        None => 1.0,
        Some('k') => 1024.0,
        Some('m') => 1024.0 * 1024.0,
        Some('g') => 1024.0 * 1024.0 * 1024.0,
        Some('t') => 1024f64.powi(4),
        _ => 1024f64.powi(5),
    };
    let v = value * mult;
    if !v.is_finite() || v >= i64::MAX as f64 {
        return Err(bad());
    }
    Ok(v as i64)
}

/// A size flag (`-m`, `--memory-reservation`, ...).
pub fn size_flag(flag: &str, s: &str) -> Result<i64> {
    parse_bytes(s).map_err(|e| bad_arg(flag, s, e))
}

/// `--memory-swap`: a size or -1 (unlimited).
pub fn swap_flag(s: &str) -> Result<i64> {
    if s.trim() == "-1" {
        return Ok(-1);
    }
    size_flag("--memory-swap", s)
}

/// An integer flag, with Go's strconv wording on failure.
pub fn int_flag<T: std::str::FromStr>(flag: &str, s: &str) -> Result<T> {
    s.trim().parse::<T>().map_err(|_| {
        bad_arg(
            flag,
            s,
            format!("strconv.ParseInt: parsing {s:?}: invalid syntax"),
        )
    })
}

/// `--cpus 1.5` → nano CPUs.
pub fn cpus_flag(s: &str) -> Result<i64> {
    let t = s.trim();
    let bad = || bad_arg("--cpus", s, "failed to parse as a rational number");
    // A negative count parses (as Docker's big.Rat does) and is refused by the
    // range check with Docker's words.
    let (negative, t) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t),
    };
    if t.is_empty()
        || !t.chars().all(|c| c.is_ascii_digit() || c == '.')
        || t.matches('.').count() > 1
    {
        return Err(bad());
    }
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    if frac.len() > 9 {
        return Err(bad_arg("--cpus", s, "value is too precise"));
    }
    let int: i64 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| bad())?
    };
    let frac_n: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().map_err(|_| bad())?
    };
    int.checked_mul(1_000_000_000)
        .and_then(|v| v.checked_add(frac_n))
        .map(|v| if negative { -v } else { v })
        .ok_or_else(bad)
}

/// Go's time.ParseDuration, in nanoseconds.
pub fn parse_duration(s: &str) -> std::result::Result<i64, String> {
    let bad = || format!("time: invalid duration {s:?}");
    let mut t = s.trim();
    let neg = if let Some(r) = t.strip_prefix('-') {
        t = r;
        true
    } else {
        t = t.strip_prefix('+').unwrap_or(t);
        false
    };
    if t == "0" {
        return Ok(0);
    }
    if t.is_empty() {
        return Err(bad());
    }
    let mut total: f64 = 0.0;
    while !t.is_empty() {
        let n = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("time: missing unit in duration {s:?}"))?;
        if n == 0 {
            return Err(bad());
        }
        let v: f64 = t[..n].parse().map_err(|_| bad())?;
        t = &t[n..];
        let u = t
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(t.len());
        let mult = match &t[..u] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            other => return Err(format!("time: unknown unit {other:?} in duration {s:?}")),
        };
        total += v * mult;
        t = &t[u..];
    }
    if total >= i64::MAX as f64 {
        return Err(bad());
    }
    Ok(if neg { -(total as i64) } else { total as i64 })
}

pub fn duration_flag(flag: &str, s: &str) -> Result<i64> {
    parse_duration(s).map_err(|e| bad_arg(flag, s, e))
}

// ------------------------------------------------------------- security

/// Capability names by number, as the kernel numbers them.
pub const ALL_CAPS: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// The capabilities both berth and the running kernel know (Docker's
/// GetAllCapabilities), without the CAP_ prefix, limited to this process's
/// bounding set: a capability berth itself cannot hold (inside another
/// container, say) cannot be given either.
pub fn host_caps() -> Vec<&'static str> {
    let last = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .unwrap_or(ALL_CAPS.len() - 1);
    let bounding = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX);
    ALL_CAPS
        .iter()
        .enumerate()
        .take(last.saturating_add(1))
        .filter(|(i, _)| bounding & (1u64 << i) != 0)
        .map(|(_, c)| *c)
        .collect()
}

/// `--cap-add`/`--cap-drop` names: any case, with or without CAP_, or ALL.
/// Returns the normalised name (`CAP_X` or `ALL`).
pub fn normalize_cap(s: &str) -> Result<String> {
    let up = s.trim().to_ascii_uppercase();
    if up == "ALL" {
        return Ok(up);
    }
    let bare = up.strip_prefix("CAP_").unwrap_or(&up);
    if ALL_CAPS.contains(&bare) {
        Ok(format!("CAP_{bare}"))
    } else {
        Err(invalid(format!("unknown capability: \"CAP_{bare}\"")))
    }
}

/// Docker's TweakCapabilities: the process's capabilities (without CAP_).
pub fn effective_caps(defaults: &[&str], h: &HostConfig) -> Vec<String> {
    let all = host_caps();
    if h.privileged {
        return all.iter().map(|c| (*c).to_owned()).collect();
    }
    let strip = |c: &String| c.strip_prefix("CAP_").unwrap_or(c).to_owned();
    let add: Vec<String> = h.cap_add.iter().map(strip).collect();
    let drop: Vec<String> = h.cap_drop.iter().map(strip).collect();
    let mut caps: Vec<String> = if add.iter().any(|c| c == "ALL") {
        all.iter()
            .filter(|c| !drop.iter().any(|d| d == *c))
            .map(|c| (*c).to_owned())
            .collect()
    } else if drop.iter().any(|c| c == "ALL") {
        add
    } else {
        let mut v: Vec<String> = defaults
            .iter()
            .filter(|c| !drop.iter().any(|d| d == *c))
            .map(|c| (*c).to_owned())
            .collect();
        v.extend(add);
        v
    };
    let mut seen = std::collections::HashSet::new();
    caps.retain(|c| seen.insert(c.clone()));
    caps
}

/// One `--security-opt`.
pub fn security_opt(h: &mut HostConfig, s: &str) -> Result<()> {
    let (k, v) = match s.split_once(['=', ':']) {
        Some((k, v)) => (k, Some(v)),
        None => (s, None),
    };
    match (k, v) {
        ("no-new-privileges", None) => h.no_new_privileges = true,
        ("no-new-privileges", Some(v)) => {
            h.no_new_privileges = match v {
                "true" | "1" | "t" | "T" | "TRUE" | "True" => true,
                "false" | "0" | "f" | "F" | "FALSE" | "False" => false,
                _ => {
                    return Err(invalid(format!(
                        "invalid --security-opt 2: {s:?}: no-new-privileges takes true or false"
                    )))
                }
            }
        }
        ("seccomp", Some("unconfined")) => h.seccomp = SeccompMode::Unconfined,
        ("seccomp", Some(path)) if !path.is_empty() => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                invalid(format!(
                    "opening seccomp profile ({path}) failed: {}",
                    io_reason(&e)
                ))
            })?;
            berth_seccomp::parse_profile(&text)
                .map_err(|e| invalid(format!("decoding seccomp profile failed: {e}")))?;
            h.seccomp = SeccompMode::Profile(text);
        }
        ("label" | "apparmor", Some(_)) => {} // no LSM support: accepted, as Docker does without one
        _ => {
            return Err(invalid(format!(
                "invalid --security-opt: {s:?}: berth supports no-new-privileges[=true|false], seccomp=unconfined and seccomp=PROFILE.json"
            )))
        }
    }
    Ok(())
}

const ULIMITS: [&str; 15] = [
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

/// `--ulimit name=soft[:hard]`.
pub fn ulimit(s: &str) -> Result<Ulimit> {
    let bad = |why: String| bad_arg("--ulimit", s, why);
    let (name, vals) = s
        .split_once('=')
        .ok_or_else(|| bad(format!("invalid ulimit argument: {s}")))?;
    if !ULIMITS.contains(&name) {
        return Err(bad(format!("invalid ulimit type: {name}")));
    }
    let num = |v: &str| {
        v.parse::<i64>()
            .map_err(|_| bad(format!("invalid ulimit value {v:?}")))
    };
    let (soft, hard) = match vals.split_once(':') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => {
            let v = num(vals)?;
            (v, v)
        }
    };
    if soft as u64 > hard as u64 {
        return Err(bad(format!(
            "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
        )));
    }
    Ok(Ulimit {
        name: name.to_owned(),
        soft,
        hard,
    })
}

/// `--sysctl key=value`.
pub fn sysctl(s: &str) -> Result<(String, String)> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
        _ => Err(bad_arg(
            "--sysctl",
            s,
            format!("invalid sysctl value {s:?}"),
        )),
    }
}

fn valid_device_mode(m: &str) -> bool {
    !m.is_empty()
        && m.len() <= 3
        && m.chars().all(|c| matches!(c, 'r' | 'w' | 'm'))
        && m.chars().collect::<std::collections::HashSet<_>>().len() == m.len()
}

/// `--device HOST[:CONTAINER][:PERMS]`.
pub fn device(s: &str) -> Result<DeviceMapping> {
    let parts: Vec<&str> = s.split(':').collect();
    let (src, dst, perms) = match parts.as_slice() {
        [src] => (*src, *src, "rwm"),
        [src, p] if valid_device_mode(p) => (*src, *src, *p),
        [src, dst] => (*src, *dst, "rwm"),
        [src, dst, p] => {
            if !valid_device_mode(p) {
                return Err(bad_arg("--device", s, format!("invalid device mode: {p}")));
            }
            (*src, *dst, *p)
        }
        _ => {
            return Err(bad_arg(
                "--device",
                s,
                format!("invalid device specification: {s}"),
            ))
        }
    };
    for p in [src, dst] {
        if !p.starts_with('/') {
            return Err(bad_arg(
                "--device",
                s,
                format!("{p} is not an absolute path"),
            ));
        }
    }
    Ok(DeviceMapping {
        host: src.to_owned(),
        container: dst.to_owned(),
        permissions: perms.to_owned(),
    })
}

// ------------------------------------------------------------- namespaces

pub fn ipc_mode(s: &str) -> Result<String> {
    match s {
        "" | "private" | "shareable" | "none" | "host" => Ok(s.to_owned()),
        _ if s.strip_prefix("container:").is_some_and(|c| !c.is_empty()) => Ok(s.to_owned()),
        _ => Err(invalid(format!("invalid IPC mode: {s}"))),
    }
}

pub fn pid_mode(s: &str) -> Result<String> {
    match s {
        "" | "host" => Ok(s.to_owned()),
        _ if s.strip_prefix("container:").is_some_and(|c| !c.is_empty()) => Ok(s.to_owned()),
        _ => Err(invalid(format!("--pid: invalid PID mode: {s}"))),
    }
}

pub fn uts_mode(s: &str) -> Result<String> {
    match s {
        "" | "host" => Ok(s.to_owned()),
        _ => Err(invalid(format!("--uts: invalid UTS mode: {s}"))),
    }
}

pub fn userns_mode(s: &str) -> Result<String> {
    match s {
        "" | "host" => Ok(s.to_owned()),
        _ => Err(invalid(format!(
            "--userns {s}: only \"host\" is supported (berth does not remap users yet)"
        ))),
    }
}

// ------------------------------------------------------------- mounts

fn valid_volume_name(n: &str) -> bool {
    let mut b = n.bytes();
    n.len() >= 2
        && b.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && b.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

const PROPAGATIONS: [&str; 6] = [
    "shared", "rshared", "slave", "rslave", "private", "rprivate",
];

/// A mount's destination, checked and made clean as Docker stores it (`path.Clean`):
/// absolute, and never `/` once `.` and `..` are applied.
fn check_destination(typ: &str, d: &str) -> Result<String> {
    if !d.starts_with('/') {
        return Err(invalid(format!(
            "invalid mount config for type \"{typ}\": invalid mount path: '{d}' mount path must be absolute"
        )));
    }
    let clean = berth_runtime::rootfs::clean_absolute(d);
    if clean == "/" {
        return Err(invalid(format!(
            "invalid mount config for type \"{typ}\": invalid specification: destination can't be '/'"
        )));
    }
    Ok(clean)
}

/// runc's rule for mounts on /proc (see `berth_runtime::rootfs::check_proc_mount`),
/// applied at create so that such a container is never made.
pub fn check_proc_mount(m: &MountPoint) -> Result<()> {
    berth_runtime::rootfs::check_proc_mount(&m.destination, false, || {
        m.typ == "bind" && berth_runtime::rootfs::on_procfs(std::path::Path::new(&m.source))
    })
    .map_err(|e| invalid(format!("invalid mount config for type \"{}\": {e}", m.typ)))
}

/// `-v HOST:CONTAINER[:OPTS]`, `-v NAME:CONTAINER[:OPTS]`, `-v CONTAINER`.
pub fn volume(s: &str) -> Result<MountPoint> {
    let parts: Vec<&str> = s.split(':').collect();
    let (src, dst, mode) = match parts.as_slice() {
        [d] => ("", *d, ""),
        [a, b] => (*a, *b, ""),
        [a, b, m] => (*a, *b, *m),
        _ => return Err(invalid(format!("invalid volume specification: '{s}'"))),
    };
    if dst.is_empty() {
        return Err(invalid(format!("invalid volume specification: '{s}'")));
    }
    let bind = src.starts_with('/');
    let typ = if bind { "bind" } else { "volume" };
    let dst = check_destination(typ, dst)
        .map_err(|e| invalid(format!("invalid volume specification: '{s}': {e}")))?;
    let dst = dst.as_str();
    if !src.is_empty() && !bind && !valid_volume_name(src) {
        return Err(invalid(format!(
            "\"{src}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
        )));
    }
    let mut m = MountPoint {
        typ: typ.into(),
        source: src.into(),
        destination: dst.into(),
        read_only: false,
        options: Vec::new(),
        name: (!bind && !src.is_empty()).then(|| src.to_owned()),
        create_source: true,
        no_copy: false,
    };
    let mut rw_given = false;
    for o in mode.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" | "rw" if rw_given => {
                return Err(invalid(format!("invalid mode: {mode}")));
            }
            "ro" => {
                m.read_only = true;
                rw_given = true;
            }
            "rw" => rw_given = true,
            "nocopy" => m.no_copy = true,
            "z" | "Z" | "copy" => {}
            p if PROPAGATIONS.contains(&p) && bind => m.options.push(p.to_owned()),
            _ => return Err(invalid(format!("invalid mode: {mode}"))),
        }
    }
    Ok(m)
}

fn parse_bool(key: &str, v: &str) -> Result<bool> {
    match v {
        "" | "1" | "true" | "True" | "TRUE" | "t" => Ok(true),
        "0" | "false" | "False" | "FALSE" | "f" => Ok(false),
        _ => Err(invalid(format!("invalid value for {key}: {v}"))),
    }
}

/// `--mount type=bind|volume|tmpfs,source=…,target=…,readonly,…`.
pub fn mount(s: &str) -> Result<MountPoint> {
    let mut typ = "volume".to_owned();
    let (mut src, mut dst) = (String::new(), String::new());
    let mut ro = false;
    let mut no_copy = false;
    let mut options = Vec::new();
    let mut tmpfs_opts = Vec::new();
    for field in s.split(',').filter(|f| !f.is_empty()) {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), v.trim()),
            None => (field.trim().to_ascii_lowercase(), ""),
        };
        let has_value = field.contains('=');
        match k.as_str() {
            "readonly" | "ro" => ro = parse_bool(&k, v)?,
            "volume-nocopy" => no_copy = parse_bool(&k, v)?,
            _ if !has_value => {
                return Err(invalid(format!(
                    "invalid field '{field}' must be a key=value pair"
                )))
            }
            "type" => typ = v.to_owned(),
            "source" | "src" => src = v.to_owned(),
            "target" | "destination" | "dst" => dst = v.to_owned(),
            "bind-propagation" if PROPAGATIONS.contains(&v) => options.push(v.to_owned()),
            "bind-propagation" => {
                return Err(invalid(format!("invalid value for {k}: {v}")));
            }
            "consistency" | "bind-nonrecursive" | "volume-label" => {}
            "volume-driver" if v == "local" => {}
            "volume-driver" => {
                return Err(invalid(format!(
                    "volume driver {v:?} is not supported: berth has only the local driver"
                )))
            }
            "tmpfs-size" => {
                let n = parse_bytes(v)
                    .map_err(|e| invalid(format!("invalid value for {k}: {v}: {e}")))?;
                tmpfs_opts.push(format!("size={n}"));
            }
            "tmpfs-mode" => {
                let n = u32::from_str_radix(v, 8)
                    .map_err(|_| invalid(format!("invalid value for {k}: {v}")))?;
                tmpfs_opts.push(format!("mode={n:o}"));
            }
            _ => return Err(invalid(format!("unexpected key '{k}' in '{field}'"))),
        }
    }
    if !matches!(typ.as_str(), "bind" | "volume" | "tmpfs") {
        return Err(invalid(format!(
            "invalid mount config: mount type {typ:?} is not supported (use bind, volume or tmpfs)"
        )));
    }
    if dst.is_empty() {
        return Err(invalid(format!(
            "invalid mount config for type \"{typ}\": field Target must not be empty"
        )));
    }
    let dst = check_destination(&typ, &dst)?;
    match typ.as_str() {
        "bind" if src.is_empty() => {
            return Err(invalid(
                "invalid mount config for type \"bind\": field Source must not be empty",
            ))
        }
        "bind" if !src.starts_with('/') => {
            return Err(invalid(format!(
                "invalid mount config for type \"bind\": invalid mount path: '{src}' mount path must be absolute"
            )))
        }
        "volume" if !src.is_empty() && !valid_volume_name(&src) => {
            return Err(invalid(format!(
                "\"{src}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed"
            )))
        }
        "tmpfs" if !src.is_empty() => {
            return Err(invalid(
                "invalid mount config for type \"tmpfs\": field Source must not be specified",
            ))
        }
        _ => {}
    }
    if typ == "tmpfs" {
        let mut o: Vec<String> = vec!["noexec".into(), "nosuid".into(), "nodev".into()];
        o.extend(tmpfs_opts);
        options = o;
    } else if !tmpfs_opts.is_empty() {
        return Err(invalid(format!(
            "invalid mount config for type \"{typ}\": tmpfs options are only for type tmpfs"
        )));
    }
    let no_copy = no_copy && typ == "volume";
    Ok(MountPoint {
        name: (typ == "volume" && !src.is_empty()).then(|| src.clone()),
        typ,
        source: src,
        destination: dst,
        read_only: ro,
        options,
        create_source: false,
        no_copy,
    })
}

/// `--tmpfs /path[:opts]`.
pub fn tmpfs(s: &str) -> Result<MountPoint> {
    let (dst, opts) = s.split_once(':').unwrap_or((s, ""));
    let dst = check_destination("tmpfs", dst)?;
    let mut options: Vec<String> = vec!["noexec".into(), "nosuid".into(), "nodev".into()];
    let mut ro = false;
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => ro = true,
            "rw" => ro = false,
            "exec" | "suid" | "dev" => {
                let neg = format!("no{o}");
                options.retain(|x| *x != neg);
            }
            "noexec" | "nosuid" | "nodev" => {
                if !options.iter().any(|x| x == o) {
                    options.push(o.to_owned())
                }
            }
            _ => {
                let known = [
                    "size=",
                    "mode=",
                    "uid=",
                    "gid=",
                    "nr_inodes=",
                    "nr_blocks=",
                    "mpol=",
                ];
                let ok = known.iter().any(|k| o.starts_with(k))
                    || matches!(
                        o,
                        "atime"
                            | "noatime"
                            | "relatime"
                            | "norelatime"
                            | "strictatime"
                            | "nostrictatime"
                            | "diratime"
                            | "nodiratime"
                            | "sync"
                            | "async"
                            | "dirsync"
                            | "mand"
                            | "nomand"
                    );
                if !ok {
                    return Err(invalid(format!("invalid tmpfs option {o:?} in {s:?}")));
                }
                if let Some(sz) = o.strip_prefix("size=") {
                    let n = parse_bytes(sz).map_err(|e| invalid(format!("--tmpfs {s}: {e}")))?;
                    options.push(format!("size={n}"));
                } else {
                    options.push(o.to_owned());
                }
            }
        }
    }
    Ok(MountPoint {
        typ: "tmpfs".into(),
        source: String::new(),
        destination: dst.to_owned(),
        read_only: ro,
        options,
        name: None,
        create_source: false,
        no_copy: false,
    })
}

// ------------------------------------------------------------- policies

/// `--restart no|always|unless-stopped|on-failure[:N]`.
pub fn restart(s: &str) -> Result<RestartPolicy> {
    let (name, count) = match s.split_once(':') {
        Some(("", _)) => {
            return Err(invalid(
                "invalid restart policy format: no policy provided before colon",
            ))
        }
        Some((n, c)) => (
            n,
            Some(c.parse::<i64>().map_err(|_| {
                invalid("invalid restart policy format: maximum retry count must be an integer")
            })?),
        ),
        None => (s, None),
    };
    match (name, count) {
        ("" | "no" | "always" | "unless-stopped", None | Some(0)) => {}
        ("on-failure", Some(n)) if n < 0 => {
            return Err(invalid(
                "invalid restart policy: maximum retry count cannot be negative",
            ))
        }
        ("on-failure", _) => {}
        ("no" | "always" | "unless-stopped", Some(_)) => {
            return Err(invalid(
                "invalid restart policy: maximum retry count can only be used with 'on-failure'",
            ))
        }
        _ => {
            return Err(invalid(format!(
                "invalid restart policy: unknown policy '{name}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"
            )))
        }
    }
    Ok(RestartPolicy {
        name: if name.is_empty() { "no" } else { name }.to_owned(),
        maximum_retry_count: count.unwrap_or(0),
    })
}

/// `--log-driver` with its `--log-opt`s.
pub fn log_config(driver: Option<&str>, opts: &[String]) -> Result<LogConfig> {
    let typ = driver.unwrap_or("json-file");
    let allowed: &[&str] = match typ {
        "json-file" => &[
            "max-size",
            "max-file",
            "compress",
            "labels",
            "labels-regex",
            "env",
            "env-regex",
            "tag",
        ],
        "none" => &[],
        _ => {
            return Err(invalid(format!(
                "unknown log driver {typ:?}: berth supports json-file and none"
            )))
        }
    };
    let mut config = BTreeMap::new();
    for o in opts {
        let (k, v) = o
            .split_once('=')
            .ok_or_else(|| invalid(format!("invalid --log-opt {o:?}: expected key=value")))?;
        if !allowed.contains(&k) {
            return Err(invalid(format!(
                "unknown log opt '{k}' for {typ} log driver"
            )));
        }
        match k {
            "max-size" if v != "-1" => {
                let n = parse_bytes(v).map_err(|e| invalid(format!("--log-opt {o}: {e}")))?;
                if n <= 0 {
                    return Err(invalid(format!("--log-opt {o}: max-size must be positive")));
                }
            }
            "max-file" => match v.parse::<i64>() {
                Ok(n) if n >= 1 => {}
                Ok(_) => return Err(invalid("max-file cannot be less than 1")),
                Err(_) => {
                    return Err(invalid(format!(
                        "--log-opt {o}: strconv.Atoi: parsing {v:?}: invalid syntax"
                    )))
                }
            },
            "compress" => {
                parse_bool("compress", v)?;
            }
            _ => {}
        }
        config.insert(k.to_owned(), v.to_owned());
    }
    Ok(LogConfig {
        typ: typ.to_owned(),
        config,
    })
}

/// The `--health-*` flags (already-parsed durations, ns).
#[derive(Debug, Clone, Default)]
pub struct HealthFlags {
    pub cmd: Option<String>,
    pub interval: i64,
    pub timeout: i64,
    pub start_period: i64,
    pub retries: i64,
    pub none: bool,
}

/// Docker's healthcheck from the flags: None when no flag was given.
pub fn healthcheck(f: &HealthFlags) -> Result<Option<Healthcheck>> {
    let any = f.cmd.is_some()
        || f.interval != 0
        || f.timeout != 0
        || f.start_period != 0
        || f.retries != 0;
    if f.none {
        if any {
            return Err(invalid(
                "--no-healthcheck conflicts with --health-* options",
            ));
        }
        return Ok(Some(Healthcheck {
            test: vec!["NONE".into()],
            ..Default::default()
        }));
    }
    if !any {
        return Ok(None);
    }
    for (flag, v) in [
        ("--health-interval", f.interval),
        ("--health-timeout", f.timeout),
        ("--health-start-period", f.start_period),
    ] {
        if v < 0 {
            return Err(invalid(format!("{flag} cannot be negative")));
        }
        if v != 0 && v < 1_000_000 {
            return Err(invalid(format!("{flag} cannot be less than 1ms")));
        }
    }
    if f.retries < 0 {
        return Err(invalid("--health-retries cannot be negative"));
    }
    Ok(Some(Healthcheck {
        test: f
            .cmd
            .iter()
            .map(|c| vec!["CMD-SHELL".to_owned(), c.clone()])
            .next()
            .unwrap_or_default(),
        interval: f.interval,
        timeout: f.timeout,
        start_period: f.start_period,
        retries: f.retries,
    }))
}

/// Docker's merge of the user's healthcheck over the image's.
pub fn merge_healthcheck(
    user: Option<&Healthcheck>,
    image: Option<&Healthcheck>,
) -> Option<Healthcheck> {
    match (user, image) {
        (None, i) => i.cloned(),
        (Some(u), None) => Some(u.clone()),
        (Some(u), Some(i)) => {
            let pick = |a: i64, b: i64| if a != 0 { a } else { b };
            Some(Healthcheck {
                test: if u.test.is_empty() {
                    i.test.clone()
                } else {
                    u.test.clone()
                },
                interval: pick(u.interval, i.interval),
                timeout: pick(u.timeout, i.timeout),
                start_period: pick(u.start_period, i.start_period),
                retries: pick(u.retries, i.retries),
            })
        }
    }
}

/// Signal names and numbers Docker accepts for `--stop-signal`.
pub fn stop_signal(s: &str) -> Result<String> {
    let up = s.to_ascii_uppercase();
    let bare = up.strip_prefix("SIG").unwrap_or(&up);
    let ok = match bare.parse::<i32>() {
        Ok(n) => (1..=64).contains(&n),
        Err(_) => {
            nix::sys::signal::Signal::iterator().any(|sig| sig.as_str() == format!("SIG{bare}"))
                || bare
                    .strip_prefix("RTMIN+")
                    .or_else(|| bare.strip_prefix("RTMAX-"))
                    .is_some_and(|n| n.parse::<u8>().is_ok_and(|n| n <= 30))
                || bare == "RTMIN"
                || bare == "RTMAX"
        }
    };
    if ok {
        Ok(s.to_owned())
    } else {
        Err(invalid(format!("Invalid signal: {s}")))
    }
}

/// `-l key[=value]`.
pub fn label(s: &str) -> Result<(String, String)> {
    let (k, v) = s.split_once('=').unwrap_or((s, ""));
    if k.trim().is_empty() {
        return Err(invalid(format!("invalid label '{s}': empty name")));
    }
    Ok((k.to_owned(), v.to_owned()))
}

/// The host's platform, as Docker names it.
pub fn host_platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    };
    format!("linux/{arch}")
}

/// `--platform`: only the host's own.
pub fn platform(s: &str) -> Result<()> {
    let host = host_platform();
    let want = s.trim().to_ascii_lowercase();
    let want = if want.contains('/') || want == "linux" {
        want
    } else {
        format!("linux/{want}")
    };
    if want == host || want == "linux" || want.starts_with(&format!("{host}/")) {
        Ok(())
    } else {
        Err(invalid(format!(
            "platform {s:?} is not supported: this host runs {host} and berth does not emulate other platforms"
        )))
    }
}

/// Cross-checks Docker makes between resource flags, and the ranges it
/// enforces.
pub fn validate(h: &HostConfig) -> Result<()> {
    check_networks(h)?;
    if let Some(m) = h.memory {
        if m != 0 && m < 6 * 1024 * 1024 {
            return Err(invalid("Minimum memory limit allowed is 6MB"));
        }
    }
    if let Some(s) = h.memory_swap {
        if s != -1 && s != 0 {
            match h.memory {
                None | Some(0) => return Err(invalid(
                    "You should always set the Memory limit when using Memoryswap limit, see usage",
                )),
                Some(m) if s < m => {
                    return Err(invalid(
                        "Minimum memoryswap limit should be larger than memory limit, see usage",
                    ))
                }
                _ => {}
            }
        }
    }
    if let (Some(m), Some(r)) = (h.memory, h.memory_reservation) {
        if m > 0 && r > m {
            return Err(invalid(
                "Minimum memory limit can not be less than memory reservation limit, see usage",
            ));
        }
    }
    if let Some(r) = h.memory_reservation {
        if r != 0 && r < 6 * 1024 * 1024 {
            return Err(invalid("Minimum memory reservation allowed is 6MB"));
        }
    }
    if let Some(n) = h.nano_cpus {
        if h.cpu_period.is_some() {
            return Err(invalid(
                "Conflicting options: Nano CPUs and CPU Period cannot both be set",
            ));
        }
        if h.cpu_quota.is_some() {
            return Err(invalid(
                "Conflicting options: Nano CPUs and CPU Quota cannot both be set",
            ));
        }
        let ncpu = std::thread::available_parallelism()
            .map(|n| n.get() as i64)
            .unwrap_or(1);
        if n != 0 && (n < 10_000_000 || n > ncpu * 1_000_000_000) {
            return Err(invalid(format!(
                "Range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available"
            )));
        }
    }
    if let Some(p) = h.cpu_period {
        if p != 0 && !(1000..=1_000_000).contains(&p) {
            return Err(invalid(
                "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
            ));
        }
    }
    if let Some(q) = h.cpu_quota {
        if q > 0 && q < 1000 {
            return Err(invalid(
                "CPU cfs quota can not be less than 1ms (i.e. 1000)",
            ));
        }
    }
    if let Some(w) = h.blkio_weight {
        if w != 0 && !(10..=1000).contains(&w) {
            return Err(invalid("Range of blkio weight is from 10 to 1000"));
        }
    }
    for (flag, v) in [
        ("--cpuset-cpus", &h.cpuset_cpus),
        ("--cpuset-mems", &h.cpuset_mems),
    ] {
        if let Some(v) = v {
            if !valid_cpuset(v) {
                return Err(invalid(format!("Invalid value {v} for {flag}")));
            }
        }
    }
    if let Some(v) = &h.cpuset_cpus {
        if let Ok(online) = std::fs::read_to_string("/sys/devices/system/cpu/online") {
            let have = cpuset_members(online.trim());
            if let Some(missing) = cpuset_members(v).iter().find(|c| !have.contains(c)) {
                let _ = missing;
                return Err(invalid(format!(
                    "Requested CPUs are not available - requested {v}, available: {}",
                    online.trim()
                )));
            }
        }
    }
    Ok(())
}

fn valid_cpuset(s: &str) -> bool {
    !s.is_empty()
        && s.split(',').all(|part| {
            let mut it = part.splitn(2, '-');
            let a = it.next().and_then(|a| a.parse::<u32>().ok());
            match (a, it.next()) {
                (Some(_), None) => true,
                (Some(a), Some(b)) => b.parse::<u32>().is_ok_and(|b| b >= a),
                _ => false,
            }
        })
}

fn cpuset_members(s: &str) -> Vec<u32> {
    let mut v = Vec::new();
    for part in s.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<u32>(), b.parse::<u32>()) {
                    v.extend(a..=b.min(a.saturating_add(4096)));
                }
            }
            None => v.extend(part.parse::<u32>().ok()),
        }
    }
    v
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_parse_as_docker_does() {
        assert_eq!(parse_bytes("16m").unwrap(), 16 << 20);
        assert_eq!(parse_bytes("1.5g").unwrap(), 3 << 29);
        assert_eq!(parse_bytes("512").unwrap(), 512);
        assert_eq!(parse_bytes("10MB").unwrap(), 10 << 20);
        assert_eq!(parse_bytes("4kib").unwrap(), 4096);
        assert!(parse_bytes("abc").is_err());
        assert!(parse_bytes("-1").is_err());
        assert!(parse_bytes("12q").is_err());
        assert_eq!(cpus_flag("1.5").unwrap(), 1_500_000_000);
        assert_eq!(cpus_flag(".25").unwrap(), 250_000_000);
        assert!(cpus_flag("x").is_err());
        // Parsed as Docker's big.Rat does; the range check refuses it.
        assert_eq!(cpus_flag("-1").unwrap(), -1_000_000_000);
        assert!(cpus_flag("--1").is_err());
        assert_eq!(parse_duration("1m30s").unwrap(), 90_000_000_000);
        assert_eq!(parse_duration("500ms").unwrap(), 500_000_000);
        assert_eq!(parse_duration("0").unwrap(), 0);
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("1x").is_err());
    }

    #[test]
    fn flags_parse() {
        assert_eq!(
            ulimit("nofile=1024:2048").unwrap(),
            Ulimit {
                name: "nofile".into(),
                soft: 1024,
                hard: 2048
            }
        );
        assert!(ulimit("nofile=4:2").is_err());
        assert!(ulimit("bogus=1").is_err());
        assert_eq!(device("/dev/null:/dev/x:r").unwrap().permissions, "r");
        assert_eq!(device("/dev/null:rw").unwrap().container, "/dev/null");
        assert!(device("/dev/null:/dev/x:q").is_err());
        let v = volume("/a:/b:ro,z").unwrap();
        assert!(v.read_only && v.typ == "bind");
        assert_eq!(volume("data:/d").unwrap().name.as_deref(), Some("data"));
        assert!(volume("./rel:/d").is_err());
        assert!(volume("/a:rel").is_err());
        assert!(volume("/a:/b:bogus").is_err());
        let m = mount("type=tmpfs,target=/t,tmpfs-size=1m").unwrap();
        assert!(m.options.contains(&"size=1048576".to_owned()));
        assert!(mount("type=bind,target=/t").is_err());
        assert!(mount("type=foo,target=/t").is_err());
        assert!(mount("type=bind,src=/a,dst=/b,bogus=1").is_err());
        assert!(mount("type=bind,src=/a,dst=/b,readonly").unwrap().read_only);
        assert_eq!(restart("on-failure:3").unwrap().maximum_retry_count, 3);
        assert!(restart("always:3").is_err());
        assert!(restart("sometimes").is_err());
        assert!(restart("on-failure:x").is_err());
        assert!(log_config(Some("syslog"), &[]).is_err());
        assert!(log_config(None, &["max-size=10m".into(), "max-file=3".into()]).is_ok());
        assert!(log_config(None, &["max-file=0".into()]).is_err());
        assert!(log_config(Some("none"), &["max-size=1m".into()]).is_err());
        assert!(stop_signal("SIGUSR1").is_ok());
        assert!(stop_signal("term").is_ok());
        assert!(stop_signal("9").is_ok());
        assert!(stop_signal("SIGFOO").is_err());
        assert_eq!(normalize_cap("net_admin").unwrap(), "CAP_NET_ADMIN");
        assert!(normalize_cap("CAP_FOO").is_err());
    }

    #[test]
    fn caps_follow_docker() {
        let h = HostConfig {
            cap_drop: vec!["ALL".into()],
            cap_add: vec!["CAP_KILL".into()],
            ..Default::default()
        };
        assert_eq!(effective_caps(&["CHOWN"], &h), ["KILL"]);
        let h = HostConfig {
            cap_drop: vec!["CAP_CHOWN".into()],
            cap_add: vec!["CAP_SYS_ADMIN".into()],
            ..Default::default()
        };
        assert_eq!(
            effective_caps(&["CHOWN", "KILL"], &h),
            ["KILL", "SYS_ADMIN"]
        );
    }

    #[test]
    fn health_flags() {
        let f = HealthFlags {
            cmd: Some("true".into()),
            none: true,
            ..Default::default()
        };
        assert!(healthcheck(&f).is_err());
        let f = HealthFlags {
            interval: 5,
            ..Default::default()
        };
        assert!(healthcheck(&f).is_err());
        let img = Healthcheck {
            test: vec!["CMD".into(), "x".into()],
            interval: 7,
            ..Default::default()
        };
        let u = Healthcheck {
            retries: 2,
            ..Default::default()
        };
        let m = merge_healthcheck(Some(&u), Some(&img)).unwrap();
        assert_eq!((m.test[1].as_str(), m.interval, m.retries), ("x", 7, 2));
    }
}
