//! berth's nftables rules: one `ip` table per berth root (and an `ip6`
//! table of the same name while a network has IPv6), written whole from
//! the database each time networks or published ports change, and replaced
//! in one atomic `nft -f` transaction. berth never touches a rule it did not
//! make (it owns its table outright, and deleting it removes all of berth's
//! rules), and needs no rule handles: the table is always exactly what the
//! database says, which also makes recovery after a crash a rewrite.
//!
//! Containers without published ports change no rules at all.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::{Command, Stdio};

use crate::db::NetworkRecord;
use crate::ports::PortBinding;
use crate::{Error, Result};

/// One published port, with where it goes.
#[derive(Debug, Clone)]
pub struct Dnat {
    pub binding: PortBinding,
    pub container_ip: Ipv4Addr,
    /// The container's IPv6 address on the same network, if it has one.
    pub container_ip6: Option<Ipv6Addr>,
}

fn quote(name: &str) -> String {
    format!("\"{name}\"")
}

/// The table's full text (the part after `table ip NAME`).
pub fn ruleset(networks: &[NetworkRecord], dnats: &[Dnat]) -> String {
    let mut s = String::new();
    s.push_str("  chain prerouting {\n    type nat hook prerouting priority dstnat; policy accept;\n    fib daddr type local jump ports\n  }\n");
    s.push_str("  chain output {\n    type nat hook output priority -100; policy accept;\n    fib daddr type local jump ports\n  }\n");
    s.push_str("  chain ports {\n");
    for d in dnats {
        let b = &d.binding;
        let daddr = match b.host_ip {
            None => String::new(),
            Some(IpAddr::V4(ip)) => format!("ip daddr {ip} "),
            // (in the `ip6` table)
            Some(IpAddr::V6(_)) => continue,
        };
        let _ = writeln!(
            s,
            "    {daddr}{} dport {} dnat to {}:{}",
            b.proto, b.host_port, d.container_ip, b.container_port
        );
    }
    s.push_str("  }\n");
    s.push_str(
        "  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n",
    );
    for n in networks {
        let br = quote(&n.bridge);
        if !n.internal && n.masquerade {
            // Outgoing traffic leaves with the host's address.
            let _ = writeln!(
                s,
                "    ip saddr {} oifname != {br} masquerade",
                n.subnet.trunc()
            );
        }
        // A published port reached from the host's loopback, or from a
        // container of the same bridge through the host: the reply must
        // come back through the host to be un-NATed.
        let _ = writeln!(s, "    oifname {br} ip saddr 127.0.0.0/8 masquerade");
        let _ = writeln!(
            s,
            "    oifname {br} ip saddr {} ct status dnat masquerade",
            n.subnet.trunc()
        );
    }
    s.push_str("  }\n");
    s.push_str("  chain forward {\n    type filter hook forward priority filter; policy accept;\n");
    let bridges: Vec<String> = networks.iter().map(|n| quote(&n.bridge)).collect();
    for n in networks {
        let br = quote(&n.bridge);
        if n.internal {
            let _ = writeln!(s, "    iifname {br} oifname != {br} drop");
            let _ = writeln!(s, "    oifname {br} iifname != {br} drop");
        }
        let others: Vec<&String> = bridges.iter().filter(|b| **b != br).collect();
        if !others.is_empty() {
            let set = others
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            // Networks are isolated from each other, as Docker's are.
            let _ = writeln!(s, "    iifname {br} oifname {{ {set} }} drop");
        }
    }
    s.push_str("  }\n");
    s
}

/// The `ip6` table's text (the part after `table ip6 NAME`): the IPv6
/// half of [`ruleset`], for the networks with IPv6 (`None` when there are
/// none). Published ports bound to every address (or to an IPv6 one) go
/// to the container's IPv6 address, when it has one.
pub fn ruleset6(networks: &[NetworkRecord], dnats: &[Dnat]) -> Option<String> {
    let v6: Vec<(&NetworkRecord, ipnet::Ipv6Net)> = networks
        .iter()
        .filter_map(|n| n.ipv6.map(|c| (n, c.subnet)))
        .collect();
    if v6.is_empty() {
        return None;
    }
    let mut s = String::new();
    s.push_str("  chain prerouting {\n    type nat hook prerouting priority dstnat; policy accept;\n    fib daddr type local jump ports\n  }\n");
    s.push_str("  chain output {\n    type nat hook output priority -100; policy accept;\n    fib daddr type local jump ports\n  }\n");
    // The loopback is answered in user space (berth_forward): the kernel
    // drops the replies of a DNAT from `::1`.
    s.push_str("  chain ports {\n    ip6 daddr ::1 return\n");
    for d in dnats {
        let b = &d.binding;
        let Some(ip6) = d.container_ip6 else { continue };
        let daddr = match b.host_ip {
            None => String::new(),
            Some(IpAddr::V6(ip)) if ip.is_unspecified() => String::new(),
            Some(IpAddr::V6(ip)) if ip.is_loopback() => continue,
            Some(IpAddr::V6(ip)) => format!("ip6 daddr {ip} "),
            Some(IpAddr::V4(_)) => continue,
        };
        let _ = writeln!(
            s,
            "    {daddr}{} dport {} dnat to [{ip6}]:{}",
            b.proto, b.host_port, b.container_port
        );
    }
    s.push_str("  }\n");
    s.push_str(
        "  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n",
    );
    for (n, subnet) in &v6 {
        let br = quote(&n.bridge);
        if !n.internal && n.masquerade {
            let _ = writeln!(s, "    ip6 saddr {subnet} oifname != {br} masquerade");
        }
        let _ = writeln!(
            s,
            "    oifname {br} ip6 saddr {subnet} ct status dnat masquerade"
        );
    }
    s.push_str("  }\n");
    // The isolation of [`ruleset`]'s forward chain, for IPv6.
    s.push_str("  chain forward {\n    type filter hook forward priority filter; policy accept;\n");
    let bridges: Vec<String> = networks.iter().map(|n| quote(&n.bridge)).collect();
    for (n, _) in &v6 {
        let br = quote(&n.bridge);
        if n.internal {
            let _ = writeln!(s, "    iifname {br} oifname != {br} drop");
            let _ = writeln!(s, "    oifname {br} iifname != {br} drop");
        }
        let others: Vec<&str> = bridges
            .iter()
            .filter(|b| **b != br)
            .map(String::as_str)
            .collect();
        if !others.is_empty() {
            let _ = writeln!(
                s,
                "    iifname {br} oifname {{ {} }} drop",
                others.join(", ")
            );
        }
    }
    s.push_str("  }\n");
    Some(s)
}

/// `nft` on $PATH, else in the sbin directories (not on an ordinary
/// user's PATH on Debian, which rootless berth runs with).
fn program() -> std::path::PathBuf {
    static NFT: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    NFT.get_or_init(|| {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .chain(["/usr/sbin".into(), "/sbin".into()])
            .map(|d| d.join("nft"))
            .find(|p| p.is_file())
            .unwrap_or_else(|| "nft".into())
    })
    .clone()
}

fn nft(script: &str) -> Result<()> {
    let _t = berth_trace::span("network", "nft -f -")
        .detail(|| format!("a {}-line ruleset, one transaction", script.lines().count()));
    let mut child = Command::new(program())
        .arg("-f")
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Nft(format!("cannot run nft (install nftables): {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| Error::Nft(format!("write to nft: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Error::Nft(format!("wait for nft: {e}")))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let line = err
            .lines()
            .find(|l| l.starts_with("Error"))
            .or_else(|| err.lines().next())
            .unwrap_or("failed");
        return Err(Error::Nft(format!("nft: {line}")));
    }
    Ok(())
}

/// The `bridge` table's text (the part after `table bridge NAME`), for
/// networks made with `com.docker.network.bridge.enable_icc=false`; `None`
/// when there are none. What two containers of one bridge send each other
/// is bridged, not routed: the `ip` table's hooks see it only when the
/// host loads br_netfilter, which berth does not depend on. This table's
/// forward hook sees exactly those frames (what goes to the gateway, the
/// host, takes the input path): IPv4 between two addresses of the subnet
/// is dropped. (Subnets do not overlap across the host's bridges, and a
/// frame is only bridged between ports of one bridge.)
pub fn bridge_ruleset(networks: &[NetworkRecord]) -> Option<String> {
    let isolated: Vec<&NetworkRecord> = networks.iter().filter(|n| !n.icc).collect();
    if isolated.is_empty() {
        return None;
    }
    let mut s = String::from(
        "  chain forward {\n    type filter hook forward priority filter; policy accept;\n",
    );
    for n in isolated {
        let subnet = n.subnet.trunc();
        let _ = writeln!(s, "    ip saddr {subnet} ip daddr {subnet} drop");
        if let Some(v6) = n.ipv6 {
            let subnet = v6.subnet;
            let _ = writeln!(s, "    ip6 saddr {subnet} ip6 daddr {subnet} drop");
        }
    }
    s.push_str("  }\n");
    Some(s)
}

/// Replaces table `ip NAME` with the given contents (and table `bridge
/// NAME`, see [`apply_with`]), or removes them when there are no networks.
pub fn apply(table: &str, networks: &[NetworkRecord], dnats: &[Dnat]) -> Result<()> {
    apply_with(table, networks, dnats, false)
}

/// [`apply`]; table `bridge NAME` is written when a network has no icc
/// (see [`bridge_ruleset`]), and deleted when none has but `drop_bridge`
/// says one may be left (a network without icc was just removed). Table
/// `ip6 NAME` is written while a network has IPv6 (see [`ruleset6`]) and
/// deleted (when there) otherwise, in the same transaction.
pub fn apply_with(
    table: &str,
    networks: &[NetworkRecord],
    dnats: &[Dnat],
    drop_bridge: bool,
) -> Result<()> {
    if networks.is_empty() {
        return remove(table);
    }
    let mut script = format!(
        "table ip {table}\ndelete table ip {table}\ntable ip {table} {{\n{}}}\n",
        ruleset(networks, dnats)
    );
    // (declared first, so that deleting it never fails)
    script.push_str(&format!("table ip6 {table}\ndelete table ip6 {table}\n"));
    if let Some(r6) = ruleset6(networks, dnats) {
        script.push_str(&format!("table ip6 {table} {{\n{r6}}}\n"));
    }
    let bridge = bridge_ruleset(networks);
    if bridge.is_some() || drop_bridge {
        script.push_str(&format!(
            "table bridge {table}\ndelete table bridge {table}\n"
        ));
    }
    if let Some(b) = bridge {
        script.push_str(&format!("table bridge {table} {{\n{b}}}\n"));
    }
    nft(&script)
}

/// Deletes tables `ip NAME` and `ip6 NAME` if they exist, and table
/// `bridge NAME` (on a kernel without nftables' bridge family there is
/// none to delete).
pub fn remove(table: &str) -> Result<()> {
    nft(&format!(
        "table ip {table}\ndelete table ip {table}\ntable ip6 {table}\ndelete table ip6 {table}\n"
    ))?;
    let _ = nft(&format!(
        "table bridge {table}\ndelete table bridge {table}\n"
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::ports::Proto;

    fn net(name: &str, bridge: &str, subnet: &str, internal: bool) -> NetworkRecord {
        let subnet: ipnet::Ipv4Net = subnet.parse().unwrap();
        NetworkRecord {
            id: format!("{name}-id"),
            name: name.into(),
            driver: "bridge".into(),
            subnet,
            gateway: subnet.hosts().next().unwrap(),
            ip_range: None,
            bridge: bridge.into(),
            internal,
            labels: Default::default(),
            created: String::new(),
            mtu: None,
            masquerade: true,
            icc: true,
            options: Default::default(),
            aux_addresses: Default::default(),
            gateway_implicit: false,
            created_parent: None,
            ipv6: None,
        }
    }

    #[test]
    fn rules_follow_the_state() {
        let mut routed = net("routed", "br-2", "172.19.0.0/16", false);
        routed.masquerade = false;
        let nets = [
            net("bridge", "berth0", "172.17.0.0/16", false),
            net("int", "br-1", "172.18.0.0/16", true),
            routed,
        ];
        let dnats = [Dnat {
            binding: PortBinding {
                host_ip: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
                host_port: 8080,
                container_port: 80,
                proto: Proto::Tcp,
            },
            container_ip: "172.17.0.2".parse().unwrap(),
            container_ip6: None,
        }];
        let r = ruleset(&nets, &dnats);
        assert!(
            r.contains("ip daddr 127.0.0.1 tcp dport 8080 dnat to 172.17.0.2:80"),
            "{r}"
        );
        assert!(r.contains("ip saddr 172.17.0.0/16 oifname != \"berth0\" masquerade"));
        assert!(!r.contains("ip saddr 172.18.0.0/16 oifname != \"br-1\" masquerade"));
        // enable_ip_masquerade=false: no masquerade of what leaves, the
        // hairpin rules stay.
        assert!(!r.contains("ip saddr 172.19.0.0/16 oifname != \"br-2\" masquerade"));
        assert!(r.contains("oifname \"br-2\" ip saddr 172.19.0.0/16 ct status dnat masquerade"));
        assert!(r.contains("iifname \"br-1\" oifname != \"br-1\" drop"));
        assert!(r.contains("iifname \"berth0\" oifname { \"br-1\", \"br-2\" } drop"));
        assert_eq!(bridge_ruleset(&nets), None);
    }

    /// A dual-stack network: the `ip6` table masquerades its IPv6 subnet,
    /// isolates it, and sends ports published on every address (or on an
    /// IPv6 one) to the container's IPv6 address; the `ip` table leaves
    /// the IPv6 bindings alone. Without IPv6 networks there is no `ip6`
    /// table.
    #[test]
    fn ipv6_rules_go_to_the_ip6_table() {
        let mut ds = net("ds", "br-6", "172.20.0.0/16", false);
        ds.ipv6 = Some(crate::Ipv6Config {
            subnet: "fd00:1::/64".parse().unwrap(),
            gateway: "fd00:1::1".parse().unwrap(),
            ip_range: None,
            gateway_given: false,
            from_mac: false,
        });
        ds.icc = false;
        let plain = net("bridge", "berth0", "172.17.0.0/16", false);
        assert_eq!(ruleset6(std::slice::from_ref(&plain), &[]), None);
        let binding = |host_ip: Option<IpAddr>, port: u16| PortBinding {
            host_ip,
            host_port: port,
            container_port: 80,
            proto: Proto::Tcp,
        };
        let dnat = |b: PortBinding| Dnat {
            binding: b,
            container_ip: "172.20.0.2".parse().unwrap(),
            container_ip6: Some("fd00:1::2".parse().unwrap()),
        };
        let dnats = [
            dnat(binding(None, 8080)),
            dnat(binding(Some("fd00:1::1".parse().unwrap()), 8081)),
            dnat(binding(Some("127.0.0.1".parse().unwrap()), 8082)),
            dnat(binding(Some("::1".parse().unwrap()), 8083)),
        ];
        let nets = [plain, ds];
        let r6 = ruleset6(&nets, &dnats).unwrap();
        assert!(r6.contains("tcp dport 8080 dnat to [fd00:1::2]:80"), "{r6}");
        assert!(
            r6.contains("ip6 daddr fd00:1::1 tcp dport 8081 dnat to [fd00:1::2]:80"),
            "{r6}"
        );
        assert!(!r6.contains("8082"), "{r6}");
        // The loopback is left to user space: no DNAT from `::1`.
        assert!(!r6.contains("8083"), "{r6}");
        assert!(
            r6.contains("chain ports {\n    ip6 daddr ::1 return\n"),
            "{r6}"
        );
        assert!(r6.contains("ip6 saddr fd00:1::/64 oifname != \"br-6\" masquerade"));
        assert!(
            r6.contains("iifname \"br-6\" oifname { \"berth0\" } drop"),
            "{r6}"
        );
        let r = ruleset(&nets, &dnats);
        assert!(!r.contains("8081"), "{r}");
        assert!(r.contains("tcp dport 8080 dnat to 172.20.0.2:80"), "{r}");
        let b = bridge_ruleset(&nets).unwrap();
        assert!(
            b.contains("ip6 saddr fd00:1::/64 ip6 daddr fd00:1::/64 drop"),
            "{b}"
        );
    }

    /// enable_icc=false: IPv4 within the subnet is dropped where frames
    /// are bridged, for that network only.
    #[test]
    fn no_icc_is_a_bridge_rule() {
        let mut quiet = net("quiet", "br-q", "10.44.0.0/24", false);
        quiet.icc = false;
        let nets = [net("bridge", "berth0", "172.17.0.0/16", false), quiet];
        let b = bridge_ruleset(&nets).unwrap();
        assert!(
            b.contains("type filter hook forward priority filter"),
            "{b}"
        );
        assert!(
            b.contains("ip saddr 10.44.0.0/24 ip daddr 10.44.0.0/24 drop"),
            "{b}"
        );
        assert!(!b.contains("172.17.0.0"), "{b}");
    }
}
