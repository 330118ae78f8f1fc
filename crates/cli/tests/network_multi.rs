//! Several networks per container at create (Docker 25+'s `--network a
//! --network b`, the long syntax `name=a,alias=x,ip=…`), networks without
//! inter-container communication (`enable_icc=false`), and daemon.json's
//! `bip`, `fixed-cidr` and `default-gateway` for the default bridge,
//! through the `berth` binary against the real kernel.
//!
//! Every test uses subnets of its own (10.241.N.0/24, 10.242.N.0/24), so
//! they run in parallel; traffic only goes to the tests' own bridges.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::*;
use serde_json::Value;

fn inspect(b: &Berth, name: &str) -> Value {
    let v: Value = serde_json::from_str(&b.ok(&["inspect", name])).unwrap();
    v[0].clone()
}

fn sleeper(b: &Berth, name: &str, net_args: &[&str]) -> String {
    let mut args = vec!["run", "-d", "--name", name];
    args.extend_from_slice(net_args);
    args.extend_from_slice(&["busybox", "sleep", "300"]);
    b.ok(&args).trim().to_owned()
}

/// The bridge-family nftables rules of the whole host.
fn bridge_rules() -> String {
    let out = Command::new("nft")
        .args(["list", "ruleset", "bridge"])
        .output()
        .unwrap();
    text(&out.stdout)
}

/// A container on two user networks: eth0 on the first (with the default
/// route through its gateway), eth1 on the second with the asked address;
/// it reaches a container of each network, by name and by alias; each
/// alias is a name on its own network only; inspect and ps show both.
#[test]
fn a_container_on_two_networks() {
    let b = Berth::with_busybox();
    b.ok(&["network", "create", "--subnet", "10.241.1.0/24", "m1a"]);
    b.ok(&["network", "create", "--subnet", "10.241.2.0/24", "m1b"]);
    sleeper(&b, "sa", &["--network", "m1a", "--network-alias", "alpha"]);
    sleeper(&b, "sb", &["--network", "name=m1b,alias=beta"]);
    let id = sleeper(
        &b,
        "c1",
        &[
            "--network",
            "name=m1a,alias=ca",
            "--network",
            "name=m1b,alias=cb,alias=cb2,ip=10.241.2.50,driver-opt=com.example.x=1",
        ],
    );
    let addrs = b.ok(&["exec", "c1", "ip", "-4", "-o", "addr"]);
    assert!(
        addrs.contains("eth0    inet 10.241.1.") && addrs.contains("eth1    inet 10.241.2.50/24"),
        "{addrs}"
    );
    let routes = b.ok(&["exec", "c1", "ip", "route"]);
    assert!(
        routes.contains("default via 10.241.1.1 dev eth0"),
        "{routes}"
    );
    // A container of each network, by name and alias.
    for name in ["sa", "alpha", "sb", "beta"] {
        b.ok(&["exec", "c1", "ping", "-c", "1", "-W", "5", name]);
    }
    // And back, by c's alias on each one's own network.
    b.ok(&["exec", "sa", "ping", "-c", "1", "-W", "5", "ca"]);
    let out = b.ok(&["exec", "sb", "ping", "-c", "1", "-W", "5", "cb2"]);
    assert!(out.contains("10.241.2.50"), "{out}");
    // Each alias is a name on its own network only (berth-dns's records:
    // asking it about an unknown name would forward the query upstream).
    let records = std::fs::read_to_string(b.root().join("run/dns/records")).unwrap();
    let line = |net: &str| {
        records
            .lines()
            .find(|l| l.starts_with(&format!("host {net} ")) && l.contains(" c1 "))
            .unwrap_or_else(|| panic!("no line for c1 on {net}: {records}"))
            .to_owned()
    };
    let (on_a, on_b) = (line("m1a"), line("m1b"));
    assert!(on_a.contains(" ca") && !on_a.contains(" cb"), "{on_a}");
    assert!(
        on_b.contains("10.241.2.50 c1 cb cb2") && !on_b.contains(" ca"),
        "{on_b}"
    );
    // inspect: every network with its address, aliases, gateway and MAC.
    let v = inspect(&b, "c1");
    let nets = v["NetworkSettings"]["Networks"].as_object().unwrap();
    assert_eq!(nets.len(), 2, "{nets:?}");
    let a = &nets["m1a"];
    assert!(a["IPAddress"].as_str().unwrap().starts_with("10.241.1."));
    assert_eq!(a["Gateway"], "10.241.1.1");
    assert_eq!(a["Aliases"], serde_json::json!(["ca", &id[..12]]));
    assert!(a["MacAddress"]
        .as_str()
        .unwrap()
        .starts_with("02:42:0a:f1:01:"));
    let bb = &nets["m1b"];
    assert_eq!(bb["IPAddress"], "10.241.2.50");
    assert_eq!(bb["Gateway"], "10.241.2.1");
    assert_eq!(bb["IPAMConfig"]["IPv4Address"], "10.241.2.50");
    assert_eq!(bb["MacAddress"], "02:42:0a:f1:02:32");
    assert_eq!(bb["DriverOpts"]["com.example.x"], "1");
    assert_eq!(v["HostConfig"]["NetworkMode"], "m1a");
    let ps = b.ok(&["ps", "--format", "{{.Names}} {{.Networks}}"]);
    assert!(ps.lines().any(|l| l == "c1 m1a,m1b"), "{ps}");
    // Stopped and started again: the same two interfaces.
    b.ok(&["stop", "-t", "0", "c1"]);
    b.ok(&["start", "c1"]);
    let again = b.ok(&["exec", "c1", "ip", "-4", "-o", "addr"]);
    assert!(again.contains("eth1    inet 10.241.2.50/24"), "{again}");
    b.ok(&["rm", "-f", "c1", "sa", "sb"]);
    b.ok(&["network", "rm", "m1a", "m1b"]);
}

/// What Docker refuses (its words) is one line, a non-zero exit, and
/// nothing is created: no container, no lease left on the networks named before the
/// bad one.
#[test]
fn refused_network_combinations() {
    let b = Berth::with_busybox();
    b.ok(&["network", "create", "--subnet", "10.241.3.0/24", "m3a"]);
    b.ok(&["network", "create", "--subnet", "10.241.4.0/24", "m3b"]);
    let mixed =
        "conflicting options: cannot attach both user-defined and non-user-defined network-modes";
    let cases: &[(&[&str], &str)] = &[
        (&["--network", "host", "--network", "m3a"], mixed),
        (&["--network", "none", "--network", "m3a"], mixed),
        (&["--network", "m3a", "--network", "none"], mixed),
        (&["--network", "container:x", "--network", "m3a"], mixed),
        (&["--network", "bridge", "--network", "m3a"], mixed),
        (
            &["--network", "host", "--network", "none"],
            "Container cannot be connected to network endpoints: host, none",
        ),
        (
            &["--network", "m3a", "--network", "m3a"],
            "network \"m3a\" is specified multiple times",
        ),
        (
            &["--network-alias", "q", "--network", "name=m3a,alias=x"],
            "conflicting options: cannot specify both --network-alias and per-network alias",
        ),
        (
            &["--ip", "10.241.3.5", "--network", "name=m3a,ip=10.241.3.6"],
            "conflicting options: cannot specify both --ip and per-network IPv4 address",
        ),
        (
            &["--network", "name=m3a,foo=bar"],
            "invalid argument \"name=m3a,foo=bar\" for \"--network\" flag: invalid field key foo",
        ),
        (
            &["--network", "alias=x"],
            "for \"--network\" flag: network name/id is not specified",
        ),
        (
            &["--network", "name=m3a,alias"],
            "for \"--network\" flag: invalid field alias",
        ),
        (
            &["--network", "name=m3a,driver-opt=x"],
            "invalid key value pair format in driver options",
        ),
        (
            &["--network", "name=m3a,ip=bogus"],
            "invalid IPv4 address: bogus",
        ),
        (
            &["--network-alias", "x"],
            "network-scoped aliases are only supported for user-defined networks",
        ),
        (
            &["--network", "bridge", "--network-alias", "x"],
            "network-scoped aliases are only supported for user-defined networks",
        ),
        // Past the first network's lease: it is given back.
        (
            &["--network", "m3a", "--network", "nosuch"],
            "network nosuch not found",
        ),
        (
            &["--network", "m3a", "--network", "name=m3b,ip=10.9.9.9"],
            "no configured subnet contains IP address 10.9.9.9",
        ),
    ];
    for (net_args, says) in cases {
        let mut args = vec!["create", "--name", "bad"];
        args.extend_from_slice(net_args);
        args.extend_from_slice(&["busybox", "true"]);
        let out = b.run(&args);
        assert!(!out.status.success(), "{net_args:?}");
        let err = text(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{net_args:?}: {err}");
        assert!(err.contains(says), "{net_args:?}: {err}");
        assert_eq!(b.ok(&["ps", "-aq"]), "", "{net_args:?}");
        for n in ["m3a", "m3b"] {
            let v: Value = serde_json::from_str(&b.ok(&["network", "inspect", n])).unwrap();
            assert_eq!(
                v[0]["Containers"],
                serde_json::json!({}),
                "{net_args:?} left a lease on {n}"
            );
        }
    }
    b.ok(&["network", "rm", "m3a", "m3b"]);
}

/// `-o com.docker.network.bridge.enable_icc=false`: the network's
/// containers reach neither each other (by address or name) but reach the
/// gateway, and the host reaches them; the rule is a bridge-family one
/// (no br_netfilter needed), gone with the network. Another network's
/// containers still talk.
#[test]
fn icc_false_blocks_containers_but_not_the_gateway() {
    let b = Berth::with_busybox();
    b.ok(&[
        "network",
        "create",
        "--subnet",
        "10.241.5.0/24",
        "-o",
        "com.docker.network.bridge.enable_icc=false",
        "quiet",
    ]);
    b.ok(&["network", "create", "--subnet", "10.241.6.0/24", "chatty"]);
    let v: Value = serde_json::from_str(&b.ok(&["network", "inspect", "quiet"])).unwrap();
    assert_eq!(
        v[0]["Options"]["com.docker.network.bridge.enable_icc"],
        "false"
    );
    assert!(
        bridge_rules().contains("ip saddr 10.241.5.0/24 ip daddr 10.241.5.0/24 drop"),
        "{}",
        bridge_rules()
    );
    for (name, net) in [("q1", "quiet"), ("c1", "chatty")] {
        b.ok(&[
            "run",
            "-d",
            "--name",
            name,
            "--network",
            net,
            "busybox",
            "sh",
            "-c",
            "while true; do echo pong | nc -l -p 80; done",
        ]);
    }
    let q1 = inspect(&b, "q1")["NetworkSettings"]["Networks"]["quiet"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_owned();
    // The host reaches q1.
    wait_until(10, "q1 to answer the host", || {
        use std::io::{Read, Write};
        let addr = format!("{q1}:80").parse().unwrap();
        let Ok(mut s) =
            std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(2))
        else {
            return false;
        };
        s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let _ = s.write_all(b"hi\n");
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out.contains("pong")
    });
    let from = |net: &str, script: &str| {
        b.run(&[
            "run",
            "--rm",
            "--network",
            net,
            "busybox",
            "sh",
            "-c",
            script,
        ])
    };
    // The gateway answers (ping), the other container does not.
    let out = from("quiet", "ping -c 1 -W 3 10.241.5.1");
    assert!(out.status.success(), "{}", text(&out.stdout));
    for dst in [q1.as_str(), "q1"] {
        let out = from("quiet", &format!("echo hi | nc -w 3 {dst} 80"));
        assert!(!text(&out.stdout).contains("pong"), "{dst} reached");
        let out = from("quiet", &format!("ping -c 1 -W 2 {dst}"));
        assert!(!out.status.success(), "{dst} answered a ping");
    }
    // A network with icc: they talk.
    wait_until(10, "c1 to answer a container", || {
        text(&from("chatty", "echo hi | nc -w 3 c1 80").stdout).contains("pong")
    });
    b.ok(&["rm", "-f", "q1", "c1"]);
    b.ok(&["network", "rm", "quiet"]);
    assert!(
        !bridge_rules().contains("10.241.5.0/24"),
        "{}",
        bridge_rules()
    );
    b.ok(&["network", "rm", "chatty"]);
}

/// Runs berth with `cfg` as its daemon.json.
fn with_cfg(b: &Berth, cfg: &std::path::Path, args: &[&str]) -> std::process::Output {
    let mut c = b.cmd(args);
    c.env("BERTH_DAEMON_JSON", cfg);
    c.output().unwrap()
}

/// daemon.json's `bip` (the default bridge's address and subnet),
/// `fixed-cidr` (the containers' range) and `default-gateway` (their
/// default route) shape the default bridge of the test's root; a change
/// takes effect once no container holds an address on it; bad values are
/// one line and create nothing.
#[test]
fn daemon_json_bip_fixed_cidr_default_gateway() {
    let b = Berth::with_busybox();
    let cfg = b.scratch().join("daemon.json");
    for (bad, says) in [
        (r#"{"bip": "bogus"}"#, "bip: invalid CIDR address: bogus"),
        (
            r#"{"bip": "10.242.1.0/24"}"#,
            "bip: failed to allocate gateway (10.242.1.0): Address already in use",
        ),
        (
            r#"{"fixed-cidr": "10.242.1.0/33"}"#,
            "fixed-cidr: invalid CIDR address: 10.242.1.0/33",
        ),
        (
            r#"{"bip": "10.242.1.1/24", "fixed-cidr": "10.242.9.0/25"}"#,
            "fixed-cidr: 10.242.9.0/25 is not within bip's subnet 10.242.1.0/24",
        ),
        (
            r#"{"bip": "10.242.1.1/24", "default-gateway": "bogus"}"#,
            "default-gateway: invalid IP address: bogus",
        ),
        (
            r#"{"bip": "10.242.1.1/24", "default-gateway": "10.242.9.1"}"#,
            "auxiliary address: (DefaultGatewayIPv4:10.242.9.1) must belong to the master pool: 10.242.1.0/24",
        ),
    ] {
        std::fs::write(&cfg, bad).unwrap();
        let out = with_cfg(&b, &cfg, &["run", "-d", "--name", "bad", "busybox", "true"]);
        assert_eq!(out.status.code(), Some(125), "{bad}");
        let err = text(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{bad}: {err}");
        assert!(err.contains(says), "{bad}: {err}");
        assert_eq!(b.ok(&["ps", "-aq"]), "", "{bad}");
    }
    std::fs::write(
        &cfg,
        r#"{"bip": "10.242.1.1/24", "fixed-cidr": "10.242.1.128/25", "default-gateway": "10.242.1.200"}"#,
    )
    .unwrap();
    let run = |args: &[&str]| {
        let out = with_cfg(&b, &cfg, args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    };
    run(&["run", "-d", "--name", "d1", "busybox", "sleep", "300"]);
    // (every berth command reads daemon.json: inspect too)
    let v: Value = serde_json::from_str(&run(&["inspect", "d1"])).unwrap();
    let v = &v[0];
    // The range's first address (Docker's IPAM), the default route via
    // default-gateway.
    assert_eq!(v["NetworkSettings"]["IPAddress"], "10.242.1.128");
    assert_eq!(v["NetworkSettings"]["Gateway"], "10.242.1.200");
    let routes = run(&["exec", "d1", "ip", "route"]);
    assert!(
        routes.contains("default via 10.242.1.200 dev eth0"),
        "{routes}"
    );
    // The bridge holds bip's address: the container reaches it.
    run(&["exec", "d1", "ping", "-c", "1", "-W", "3", "10.242.1.1"]);
    let n: Value = serde_json::from_str(&run(&["network", "inspect", "bridge"])).unwrap();
    let ipam = &n[0]["IPAM"]["Config"][0];
    assert_eq!(ipam["Subnet"], "10.242.1.0/24");
    assert_eq!(ipam["Gateway"], "10.242.1.1");
    assert_eq!(ipam["IPRange"], "10.242.1.128/25");
    assert_eq!(
        ipam["AuxiliaryAddresses"]["DefaultGatewayIPv4"],
        "10.242.1.200"
    );
    let bridge = n[0]["Options"]["com.docker.network.bridge.name"]
        .as_str()
        .unwrap()
        .to_owned();
    let addr = |br: &str| {
        let out = Command::new("ip")
            .args(["-4", "-o", "addr", "show", "dev", br])
            .output()
            .unwrap();
        text(&out.stdout)
    };
    assert!(addr(&bridge).contains("10.242.1.1/24"), "{}", addr(&bridge));
    // A new bip: while d1 holds its address the bridge stays as it is;
    // once it is gone, the default network is made again with it.
    std::fs::write(&cfg, r#"{"bip": "10.242.2.1/24"}"#).unwrap();
    run(&["run", "-d", "--name", "d2", "busybox", "sleep", "300"]);
    assert_eq!(
        inspect(&b, "d2")["NetworkSettings"]["IPAddress"],
        "10.242.1.129"
    );
    run(&["rm", "-f", "d1", "d2"]);
    run(&["run", "-d", "--name", "d3", "busybox", "sleep", "300"]);
    assert_eq!(
        inspect(&b, "d3")["NetworkSettings"]["IPAddress"],
        "10.242.2.2"
    );
    let routes = run(&["exec", "d3", "ip", "route"]);
    assert!(
        routes.contains("default via 10.242.2.1 dev eth0"),
        "{routes}"
    );
    assert!(addr(&bridge).contains("10.242.2.1/24"), "{}", addr(&bridge));
    run(&["rm", "-f", "d3"]);
}

/// A container's interfaces keep distinct names after a disconnect and a
/// connect: the new network's endpoint comes after the last one (its index
/// was the count of endpoints, the name of one still there, and the start
/// failed on the clash).
#[test]
fn connect_after_disconnect_gets_a_new_interface() {
    let b = Berth::with_busybox();
    for (n, s) in [("m7a", 7), ("m7b", 8), ("m7c", 9), ("m7d", 10)] {
        b.ok(&[
            "network",
            "create",
            "--subnet",
            &format!("10.241.{s}.0/24"),
            n,
        ]);
    }
    b.ok(&[
        "create",
        "--name",
        "c1",
        "--network",
        "m7a",
        "--network",
        "m7b",
        "--network",
        "m7c",
        "busybox",
        "sleep",
        "300",
    ]);
    b.ok(&["network", "disconnect", "m7b", "c1"]);
    b.ok(&["network", "connect", "m7d", "c1"]);
    b.ok(&["start", "c1"]);
    let addrs = b.ok(&["exec", "c1", "ip", "-4", "-o", "addr"]);
    for (eth, net) in [
        ("eth0", "10.241.7."),
        ("eth2", "10.241.9."),
        ("eth3", "10.241.10."),
    ] {
        assert!(addrs.contains(&format!("{eth}    inet {net}")), "{addrs}");
    }
    b.ok(&["rm", "-f", "c1"]);
    b.ok(&["network", "rm", "m7a", "m7b", "m7c", "m7d"]);
}

/// `--ip-range` as Docker's IPAM hands it out: every address of the range
/// (its first too); without `--gateway`, the gateway is the range's first.
#[test]
fn ip_range_addresses_as_docker() {
    let b = Berth::with_busybox();
    b.ok(&[
        "network",
        "create",
        "--subnet",
        "10.241.11.0/24",
        "--ip-range",
        "10.241.11.128/25",
        "r1",
    ]);
    b.ok(&[
        "network",
        "create",
        "--subnet",
        "10.241.12.0/24",
        "--gateway",
        "10.241.12.1",
        "--ip-range",
        "10.241.12.128/25",
        "r2",
    ]);
    let v: Value = serde_json::from_str(&b.ok(&["network", "inspect", "r1"])).unwrap();
    assert_eq!(v[0]["IPAM"]["Config"][0]["Gateway"], "10.241.11.128");
    let ip = |net: &str| {
        b.ok(&[
            "run",
            "--rm",
            "--network",
            net,
            "busybox",
            "ip",
            "-4",
            "-o",
            "addr",
            "show",
            "eth0",
        ])
    };
    assert!(ip("r1").contains("inet 10.241.11.129/24"), "{}", ip("r1"));
    assert!(ip("r2").contains("inet 10.241.12.128/24"), "{}", ip("r2"));
    b.ok(&["network", "rm", "r1", "r2"]);
}

/// `network connect` to the default bridge takes no alias and no address,
/// as Docker's (its words; the container is left as it was).
#[test]
fn connect_to_the_default_bridge_takes_no_alias_or_ip() {
    let b = Berth::with_busybox();
    b.ok(&["network", "create", "--subnet", "10.241.15.0/24", "m15"]);
    b.ok(&[
        "create",
        "--name",
        "c1",
        "--network",
        "m15",
        "busybox",
        "true",
    ]);
    for (extra, says) in [
        (
            &["--alias", "x"][..],
            "network-scoped alias is supported only for containers in user defined networks",
        ),
        (
            &["--ip", "10.241.15.99"][..],
            "user specified IP address is supported on user defined networks only",
        ),
    ] {
        let mut args = vec!["network", "connect"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["bridge", "c1"]);
        let line = b.fails(&args, 1);
        assert!(line.contains(says), "{extra:?}: {line}");
        let v = inspect(&b, "c1");
        let nets = v["NetworkSettings"]["Networks"].as_object().unwrap();
        assert_eq!(nets.len(), 1, "{extra:?}: {nets:?}");
    }
    b.ok(&["network", "connect", "bridge", "c1"]);
    let v = inspect(&b, "c1");
    assert_eq!(
        v["NetworkSettings"]["Networks"]["bridge"]["Aliases"],
        Value::Null
    );
    b.ok(&["rm", "-f", "c1"]);
    b.ok(&["network", "rm", "m15"]);
}

/// The container's own /etc/hosts lines (its hostname's).
fn own_hosts_lines(b: &Berth, name: &str) -> Vec<String> {
    let host = inspect(b, name)["Config"]["Hostname"]
        .as_str()
        .unwrap()
        .to_owned();
    b.ok(&["exec", name, "cat", "/etc/hosts"])
        .lines()
        .filter(|l| l.ends_with(&format!("\t{host}")))
        .map(str::to_owned)
        .collect()
}

fn default_routes(b: &Berth, name: &str, family: &str) -> Vec<String> {
    b.ok(&["exec", name, "ip", family, "route"])
        .lines()
        .filter(|l| l.starts_with("default"))
        .map(|l| l.trim_end().to_owned())
        .collect()
}

/// /etc/hosts has a line per network the container is on, in order (as
/// Docker's), at create and as it is connected and disconnected while
/// running. `network connect` of a running container gives it a default
/// route (IPv4, IPv6) only when it had none of that family; disconnecting
/// the network that gave it passes it to the next routed network: what a
/// restart would make (the first routed network's).
#[test]
fn connect_while_running_adds_hosts_lines_and_missing_default_routes() {
    let b = Berth::with_busybox();
    b.ok(&[
        "network",
        "create",
        "--internal",
        "--subnet",
        "10.241.16.0/24",
        "m16i",
    ]);
    b.ok(&["network", "create", "--subnet", "10.241.17.0/24", "m16a"]);
    b.ok(&["network", "create", "--subnet", "10.241.18.0/24", "m16b"]);
    b.ok(&[
        "network",
        "create",
        "--subnet",
        "10.241.19.0/24",
        "--ipv6",
        "--subnet",
        "fd00:c2::/64",
        "m16c",
    ]);
    // At create: a line per network.
    sleeper(&b, "two", &["--network", "m16a", "--network", "m16b"]);
    let lines = own_hosts_lines(&b, "two");
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].starts_with("10.241.17."), "{lines:?}");
    assert!(lines[1].starts_with("10.241.18."), "{lines:?}");
    // Internal only: no default route, until connected to a routed network.
    sleeper(&b, "xc", &["--network", "m16i"]);
    assert_eq!(default_routes(&b, "xc", "-4"), Vec::<String>::new());
    b.ok(&["network", "connect", "m16a", "xc"]);
    assert_eq!(
        default_routes(&b, "xc", "-4"),
        ["default via 10.241.17.1 dev eth1"]
    );
    // A second routed network: the route stays.
    b.ok(&["network", "connect", "m16b", "xc"]);
    assert_eq!(
        default_routes(&b, "xc", "-4"),
        ["default via 10.241.17.1 dev eth1"]
    );
    // A dual-stack one: the IPv6 route it had none of.
    b.ok(&["network", "connect", "m16c", "xc"]);
    assert_eq!(
        default_routes(&b, "xc", "-4"),
        ["default via 10.241.17.1 dev eth1"]
    );
    let r6 = default_routes(&b, "xc", "-6");
    assert!(
        r6.len() == 1 && r6[0].starts_with("default via fd00:c2::1 dev eth3"),
        "{r6:?}"
    );
    let lines = own_hosts_lines(&b, "xc");
    assert_eq!(lines.len(), 5, "{lines:?}");
    for (line, net) in lines.iter().zip([
        "10.241.16.",
        "10.241.17.",
        "10.241.18.",
        "10.241.19.",
        "fd00:c2::",
    ]) {
        assert!(line.starts_with(net), "{lines:?}");
    }
    // The network of the route goes: the next routed one gives it.
    b.ok(&["network", "disconnect", "m16a", "xc"]);
    assert_eq!(
        default_routes(&b, "xc", "-4"),
        ["default via 10.241.18.1 dev eth2"]
    );
    let lines = own_hosts_lines(&b, "xc");
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert!(
        !lines.iter().any(|l| l.starts_with("10.241.17.")),
        "{lines:?}"
    );
    b.ok(&["network", "disconnect", "m16c", "xc"]);
    assert_eq!(default_routes(&b, "xc", "-6"), Vec::<String>::new());
    assert_eq!(own_hosts_lines(&b, "xc").len(), 2);
    b.ok(&["rm", "-f", "two", "xc"]);
    b.ok(&["network", "rm", "m16i", "m16a", "m16b", "m16c"]);
}

/// Two dual-stack networks: the default routes (both families) stay on
/// the first, `zeta`, when `alpha` is connected, across a restart and
/// after `alpha` is disconnected. Docker 20.10 moves both to the best
/// endpoint by its own order (non-internal, dual-stack, then the network's
/// name: alpha) at connect and at restart; berth keeps issue 15's "default
/// route through the first network" at every step instead (see
/// docs/architecture.md, Networking).
#[test]
fn connecting_a_second_dual_stack_network_keeps_the_default_routes() {
    let b = Berth::with_busybox();
    for (subnet, subnet6, name) in [
        ("10.241.20.0/24", "fd00:ca::/64", "m17zeta"),
        ("10.241.21.0/24", "fd00:cb::/64", "m17alpha"),
    ] {
        b.ok(&[
            "network", "create", "--subnet", subnet, "--ipv6", "--subnet", subnet6, name,
        ]);
    }
    sleeper(&b, "zc", &["--network", "m17zeta"]);
    let routes = |b: &Berth| {
        let r4 = default_routes(b, "zc", "-4");
        let r6 = default_routes(b, "zc", "-6");
        assert_eq!(r4, ["default via 10.241.20.1 dev eth0"], "{r6:?}");
        assert!(
            r6.len() == 1 && r6[0].starts_with("default via fd00:ca::1 dev eth0"),
            "{r6:?}"
        );
    };
    routes(&b);
    b.ok(&["network", "connect", "m17alpha", "zc"]);
    routes(&b);
    // What a restart makes is the same.
    b.ok(&["restart", "-t", "0", "zc"]);
    routes(&b);
    b.ok(&["network", "disconnect", "m17alpha", "zc"]);
    routes(&b);
    b.ok(&["rm", "-f", "zc"]);
    b.ok(&["network", "rm", "m17zeta", "m17alpha"]);
}

/// A MAC per network (Docker 25+'s `--network name=N,mac-address=M`, the
/// API's EndpointSettings.MacAddress), on the first network or another
/// one; `--mac-address` beside a per-network MAC of the first is Docker's
/// conflict.
#[test]
fn a_mac_address_per_network() {
    let b = Berth::with_busybox();
    b.ok(&["network", "create", "--subnet", "10.241.20.0/24", "m20a"]);
    b.ok(&["network", "create", "--subnet", "10.241.21.0/24", "m20b"]);
    sleeper(
        &b,
        "macs",
        &[
            "--network",
            "name=m20a,mac-address=02:42:0a:f1:14:07",
            "--network",
            "name=m20b,mac-address=02:42:0A:F1:15:09",
        ],
    );
    let nets = &inspect(&b, "macs")["NetworkSettings"]["Networks"];
    assert_eq!(nets["m20a"]["MacAddress"], "02:42:0a:f1:14:07", "{nets}");
    assert_eq!(nets["m20b"]["MacAddress"], "02:42:0a:f1:15:09", "{nets}");
    let out = b.ok(&["exec", "macs", "ip", "link", "show", "eth1"]);
    assert!(out.contains("02:42:0a:f1:15:09"), "{out}");
    for (args, says) in [
        (
            vec![
                "--mac-address",
                "02:42:0a:f1:14:08",
                "--network",
                "name=m20a,mac-address=02:42:0a:f1:14:07",
            ],
            "conflicting options: cannot specify both --mac-address and per-network MAC address",
        ),
        (
            vec!["--network", "m20a", "--network", "name=m20b,mac-address=zz"],
            "zz is not a valid mac address",
        ),
    ] {
        let mut all = vec!["create"];
        all.extend(args);
        all.extend(["busybox", "true"]);
        let out = b.run(&all);
        assert!(!out.status.success(), "{all:?}");
        let err = text(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(says), "{all:?}: {err}");
    }
    b.ok(&["rm", "-f", "macs"]);
    assert_eq!(b.ok(&["ps", "-aq"]), "");
    b.ok(&["network", "rm", "m20a", "m20b"]);
}
