//! IPv6 on berth's bridge networks through the `berth` binary against the
//! real kernel: dual-stack user networks (`network create --ipv6 --subnet
//! fd00:…/64`), `--ip6`, inspect's IPv6 fields, container to container and
//! host to container over IPv6, published ports on IPv6 addresses, AAAA
//! records from berth-dns, bad input, and nothing left behind.
//!
//! Traffic only ever goes to addresses of the tests' own bridges and
//! namespaces; the subnets are unique local ones (fd00::/8) the host has
//! no address in.
#![allow(clippy::unwrap_used)]

#[path = "common/api.rs"]
mod api;
mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::Value;

fn container(b: &Berth, name: &str) -> Value {
    let v: Value = serde_json::from_str(&b.ok(&["inspect", name])).unwrap();
    v[0].clone()
}

fn network(b: &Berth, name: &str) -> Value {
    let v: Value = serde_json::from_str(&b.ok(&["network", "inspect", name])).unwrap();
    v[0].clone()
}

/// A container's endpoint on network `net`.
fn endpoint(b: &Berth, name: &str, net: &str) -> Value {
    container(b, name)["NetworkSettings"]["Networks"][net].clone()
}

fn ip6_of(b: &Berth, name: &str, net: &str) -> String {
    endpoint(b, name, net)["GlobalIPv6Address"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A TCP server that answers every connection with `reply`.
fn tcp_server(b: &Berth, extra: &[&str], name: &str, port: u16, reply: &str) {
    let script = format!("while true; do echo {reply} | nc -l -p {port}; done");
    let mut args = vec!["run", "-d", "--name", name];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["busybox", "sh", "-c", &script]);
    b.ok(&args);
}

/// What a TCP server at `addr` answers ("" when it does not).
fn reply_of(addr: &str) -> String {
    let Ok(mut s) = TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(2))
    else {
        return String::new();
    };
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.write_all(b"hello\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn answers(addr: &str, want: &str) {
    wait_until(10, &format!("{addr} to answer {want}"), || {
        reply_of(addr).contains(want)
    });
}

/// Lines of `ip ARGS` on the host that mention `what`.
fn host_ip_lines(args: &[&str], what: &str) -> Vec<String> {
    let out = Command::new("ip").args(args).output().unwrap();
    text(&out.stdout)
        .lines()
        .filter(|l| l.contains(what))
        .map(str::to_owned)
        .collect()
}

/// The host's nftables ruleset lines that mention `what`.
fn nft_lines(what: &str) -> Vec<String> {
    let out = Command::new("nft")
        .args(["list", "ruleset"])
        .output()
        .unwrap();
    text(&out.stdout)
        .lines()
        .filter(|l| l.contains(what))
        .map(str::to_owned)
        .collect()
}

/// A dual-stack network: both IPAM configs and EnableIPv6 in its inspect;
/// containers get `::2` onwards (or their `--ip6`), a default route via
/// the gateway, inspect's IPv6 fields and a line in /etc/hosts, and reach
/// each other over IPv6 at once (no duplicate address detection to wait
/// for).
#[test]
fn dual_stack_network_inspect_and_container_to_container() {
    let b = Berth::with_busybox();
    b.ok(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "fd00:b1::/64",
        "ds",
    ]);
    let n = network(&b, "ds");
    assert_eq!(n["EnableIPv6"], true, "{n}");
    let configs = n["IPAM"]["Config"].as_array().unwrap();
    assert_eq!(configs.len(), 2, "{n}");
    assert_eq!(configs[1]["Subnet"], "fd00:b1::/64", "{n}");
    b.ok(&[
        "run",
        "-d",
        "--name",
        "one",
        "--network",
        "ds",
        "busybox",
        "sleep",
        "60",
    ]);
    let e = endpoint(&b, "one", "ds");
    assert_eq!(e["GlobalIPv6Address"], "fd00:b1::2", "{e}");
    assert_eq!(e["GlobalIPv6PrefixLen"], 64, "{e}");
    assert_eq!(e["IPv6Gateway"], "fd00:b1::1", "{e}");
    let n = network(&b, "ds");
    let c = n["Containers"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap();
    assert_eq!(c["IPv6Address"], "fd00:b1::2/64", "{n}");
    let out = b.ok(&[
        "run",
        "--rm",
        "--network",
        "ds",
        "--ip6",
        "fd00:b1::99",
        "busybox",
        "sh",
        "-c",
        "ip -6 addr show dev eth0; ip -6 route; cat /etc/hosts; ping -6 -c 1 -W 3 fd00:b1::2",
    ]);
    assert!(out.contains("inet6 fd00:b1::99/64"), "{out}");
    assert!(out.contains("default via fd00:b1::1"), "{out}");
    assert!(out.contains("fd00:b1::99\t"), "{out}");
    assert!(out.contains("1 packets received"), "{out}");
    // --ip6 shows in IPAMConfig, as Docker's.
    b.ok(&[
        "create",
        "--name",
        "fixed",
        "--network",
        "ds",
        "--ip6",
        "fd00:b1::77",
        "busybox",
        "true",
    ]);
    let e = endpoint(&b, "fixed", "ds");
    assert_eq!(e["IPAMConfig"]["IPv6Address"], "fd00:b1::77", "{e}");
    assert_eq!(e["GlobalIPv6Address"], "fd00:b1::77", "{e}");
    // network connect --ip6.
    b.ok(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "fd00:b7::/64",
        "ds2",
    ]);
    b.ok(&["network", "connect", "--ip6", "fd00:b7::42", "ds2", "one"]);
    let out = b.ok(&["exec", "one", "ip", "-6", "addr"]);
    assert!(out.contains("inet6 fd00:b7::42/64"), "{out}");
    assert_eq!(ip6_of(&b, "one", "ds2"), "fd00:b7::42");
    b.ok(&["rm", "-f", "one", "fixed"]);
    b.ok(&["network", "rm", "ds", "ds2"]);
}

/// The host reaches a container's IPv6 address through the bridge, which
/// has the gateway's address.
#[test]
fn the_host_reaches_a_container_over_ipv6() {
    let b = Berth::with_busybox();
    b.ok(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "fd00:b2::/64",
        "h6",
    ]);
    tcp_server(&b, &["--network", "h6"], "srv", 80, "over-six");
    let ip6 = ip6_of(&b, "srv", "h6");
    assert_eq!(ip6, "fd00:b2::2");
    let bridge = network(&b, "h6")["Options"]["com.docker.network.bridge.name"]
        .as_str()
        .unwrap()
        .to_owned();
    let addrs = host_ip_lines(&["-6", "addr", "show", "dev", &bridge], "fd00:b2::1/64");
    assert_eq!(addrs.len(), 1, "{addrs:?}");
    answers(&format!("[{ip6}]:80"), "over-six");
    b.ok(&["rm", "-f", "srv"]);
    b.ok(&["network", "rm", "h6"]);
}

/// berth-dns answers AAAA queries for containers of a dual-stack network:
/// a container reaches another by name over IPv6.
#[test]
fn names_resolve_to_ipv6_addresses() {
    let b = Berth::with_busybox();
    b.ok(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "fd00:b3::/64",
        "n6",
    ]);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "target",
        "--network",
        "n6",
        "--network-alias",
        "tgt",
        "busybox",
        "sleep",
        "60",
    ]);
    for name in ["target", "tgt"] {
        let out = b.ok(&[
            "run",
            "--rm",
            "--network",
            "n6",
            "busybox",
            "nslookup",
            "-type=aaaa",
            name,
        ]);
        assert!(out.contains("fd00:b3::2"), "{name}: {out}");
    }
    let out = b.ok(&[
        "run",
        "--rm",
        "--network",
        "n6",
        "busybox",
        "ping",
        "-6",
        "-c",
        "1",
        "-W",
        "3",
        "target",
    ]);
    assert!(out.contains("1 packets received"), "{out}");
    b.ok(&["rm", "-f", "target"]);
    b.ok(&["network", "rm", "n6"]);
}

/// A port published on a dual-stack network answers on the host's IPv6
/// addresses too (`-p PORT:CPORT`), or on the one given (`-p [ADDR]:…`);
/// the rules go with the container.
#[test]
fn published_ports_answer_on_ipv6_addresses() {
    let b = Berth::with_busybox();
    b.ok(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "fd00:b4::/64",
        "p6",
    ]);
    let (p1, p2) = (free_port(), free_port());
    let any = format!("{p1}:80");
    let one = format!("[fd00:b4::1]:{p2}:80");
    tcp_server(
        &b,
        &["--network", "p6", "-p", &any, "-p", &one],
        "web",
        80,
        "pub6",
    );
    // The bridge's address is one of the host's.
    answers(&format!("[fd00:b4::1]:{p1}"), "pub6");
    answers(&format!("127.0.0.1:{p1}"), "pub6");
    answers(&format!("[fd00:b4::1]:{p2}"), "pub6");
    // Shown on `::` too, as Docker shows a port published on every
    // address of a host with IPv6.
    let out = b.ok(&["port", "web"]);
    assert!(out.contains(&format!("0.0.0.0:{p1}")), "{out}");
    assert!(out.contains(&format!("[::]:{p1}")), "{out}");
    assert!(out.contains(&format!("[fd00:b4::1]:{p2}")), "{out}");
    let ports = &container(&b, "web")["NetworkSettings"]["Ports"]["80/tcp"];
    assert_eq!(ports.as_array().unwrap().len(), 3, "{ports}");
    // From another container of the network, through the host.
    let script = format!("echo hi | nc -w 3 fd00:b4::1 {p1}");
    let out = b.ok(&[
        "run",
        "--rm",
        "--network",
        "p6",
        "busybox",
        "sh",
        "-c",
        &script,
    ]);
    assert!(out.contains("pub6"), "{out}");
    b.ok(&["rm", "-f", "web"]);
    assert!(nft_lines(&format!("dport {p1}")).is_empty());
    b.ok(&["network", "rm", "p6"]);
}

/// Whether something listens on `[::1]:port` (a bind there fails).
fn loopback6_taken(port: u16) -> bool {
    std::net::TcpListener::bind(("::1", port)).is_err()
}

/// `-p [::1]:P:C` is answered on the host's IPv6 loopback, which the
/// kernel cannot NAT to a container: the container's monitor (or, for a
/// foreground `run`, berth itself) forwards it in user space, to the
/// container's IPv6 address, or to its IPv4 one on an IPv4-only network
/// (as Docker's docker-proxy does). A port published on every address of
/// a dual-stack container answers on [::1] too. The listener follows the
/// container: kept across restarts of its restart policy, gone with it.
#[test]
fn published_ports_answer_on_the_ipv6_loopback() {
    let b = Berth::with_busybox();
    b.ok(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "fd00:c1::/64",
        "lo6",
    ]);
    let (p1, p2, p3, p4, p5) = (
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
    );
    let one = format!("[::1]:{p1}:80");
    let any = format!("{p2}:80");
    tcp_server(
        &b,
        &["--network", "lo6", "-p", &one, "-p", &any],
        "web",
        80,
        "loop6",
    );
    answers(&format!("[::1]:{p1}"), "loop6");
    answers(&format!("[::1]:{p2}"), "loop6");
    answers(&format!("127.0.0.1:{p2}"), "loop6");
    // Only the loopback asked for: 127.0.0.1 is not.
    assert_eq!(reply_of(&format!("127.0.0.1:{p1}")), "");
    let ports = &container(&b, "web")["NetworkSettings"]["Ports"]["80/tcp"];
    assert!(
        ports
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["HostIp"] == "::1" && p["HostPort"] == p1.to_string().as_str()),
        "{ports}"
    );
    let out = b.ok(&["port", "web"]);
    assert!(out.contains(&format!("[::1]:{p1}")), "{out}");
    // An IPv4-only container: forwarded to its IPv4 address.
    let v4 = format!("[::1]:{p3}:80");
    tcp_server(&b, &["-p", &v4], "web4", 80, "loop4");
    answers(&format!("[::1]:{p3}"), "loop4");
    // A restart policy: the listener outlives each exit of the server.
    let once = format!("[::1]:{p4}:80");
    b.ok(&[
        "run",
        "-d",
        "--name",
        "again",
        "--restart",
        "always",
        "--network",
        "lo6",
        "-p",
        &once,
        "busybox",
        "sh",
        "-c",
        "echo again6 | nc -l -p 80",
    ]);
    answers(&format!("[::1]:{p4}"), "again6");
    answers(&format!("[::1]:{p4}"), "again6");
    // UDP: a datagram to [::1] reaches the container, its answer comes back
    // (busybox has no UDP server: a thread of this test serves in the
    // container's network namespace).
    let p6 = free_port();
    let udp = format!("[::1]:{p6}:5353/udp");
    b.ok(&[
        "run",
        "-d",
        "--name",
        "dgram",
        "--network",
        "lo6",
        "-p",
        &udp,
        "busybox",
        "sleep",
        "300",
    ]);
    let key = container(&b, "dgram")["NetworkSettings"]["SandboxKey"]
        .as_str()
        .unwrap()
        .to_owned();
    let server = std::thread::spawn(move || {
        let ns = std::fs::File::open(&key).unwrap();
        nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let s = std::net::UdpSocket::bind("[::]:5353").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut buf = [0u8; 64];
        let (n, from) = s.recv_from(&mut buf).unwrap();
        s.send_to(&buf[..n].to_ascii_uppercase(), from).unwrap();
    });
    let c = std::net::UdpSocket::bind("[::1]:0").unwrap();
    c.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut got = String::new();
    wait_until(15, "a UDP answer on [::1]", || {
        let _ = c.send_to(b"udp6", ("::1", p6));
        let mut buf = [0u8; 64];
        if let Ok(n) = c.recv(&mut buf) {
            got = String::from_utf8_lossy(&buf[..n]).into_owned();
        }
        !got.is_empty()
    });
    assert_eq!(got, "UDP6");
    server.join().unwrap();
    b.ok(&["rm", "-f", "dgram"]);
    assert!(
        std::net::UdpSocket::bind(("::1", p6)).is_ok(),
        "[::1]:{p6}/udp still bound after rm"
    );
    // The foreground `run`: berth itself forwards while it waits.
    let fg = format!("[::1]:{p5}:80");
    let mut child = b
        .cmd(&[
            "run",
            "--rm",
            "--network",
            "lo6",
            "-p",
            &fg,
            "busybox",
            "sh",
            "-c",
            "echo fg6 | nc -l -p 80",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    answers(&format!("[::1]:{p5}"), "fg6");
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(
        !loopback6_taken(p5),
        "[::1]:{p5} still bound after run --rm"
    );
    b.ok(&["rm", "-f", "web", "web4", "again"]);
    for p in [p1, p2, p3, p4] {
        assert!(!loopback6_taken(p), "[::1]:{p} still bound after rm");
    }
    b.ok(&["network", "rm", "lo6"]);
}

/// Docker 20.10 publishes a container's ports through one of its networks,
/// preferring a dual-stack one: `network connect` of a running container
/// on an IPv4-only network to a dual-stack network moves its published
/// ports there at once (the DNAT rules, and the [::1] forwards of its
/// monitor: a port published on every address answers on [::1] too, now
/// that the container has an IPv6 address), and `network disconnect`
/// moves them back.
#[test]
fn connecting_a_dual_stack_network_moves_the_published_ports_there() {
    let b = Berth::with_busybox();
    b.ok(&["network", "create", "four7"]);
    b.ok(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "fd00:c7::/64",
        "dual7",
    ]);
    let (p1, p2) = (free_port(), free_port());
    let one = format!("[::1]:{p1}:80");
    let any = format!("{p2}:80");
    tcp_server(
        &b,
        &["--network", "four7", "-p", &one, "-p", &any],
        "mover",
        80,
        "moved",
    );
    answers(&format!("[::1]:{p1}"), "moved");
    answers(&format!("127.0.0.1:{p2}"), "moved");
    assert!(
        !loopback6_taken(p2),
        "[::1]:{p2} bound for a v4-only container"
    );
    b.ok(&["network", "connect", "dual7", "mover"]);
    let ip6 = ip6_of(&b, "mover", "dual7");
    answers(&format!("[::1]:{p2}"), "moved");
    answers(&format!("[::1]:{p1}"), "moved");
    answers(&format!("127.0.0.1:{p2}"), "moved");
    assert!(
        nft_lines(&format!("dnat to [{ip6}]:80")).len()
            + nft_lines(&format!("dnat ip6 to [{ip6}]:80")).len()
            > 0,
        "no DNAT to {ip6}: {:?}",
        nft_lines("dnat")
    );
    let out = b.ok(&["port", "mover"]);
    assert!(out.contains(&format!("[::]:{p2}")), "{out}");
    b.ok(&["network", "disconnect", "dual7", "mover"]);
    wait_until(10, &format!("[::1]:{p2} to be closed"), || {
        !loopback6_taken(p2)
    });
    answers(&format!("[::1]:{p1}"), "moved");
    answers(&format!("127.0.0.1:{p2}"), "moved");
    assert!(nft_lines(&ip6).is_empty(), "{:?}", nft_lines(&ip6));
    b.ok(&["rm", "-f", "mover"]);
    for p in [p1, p2] {
        assert!(!loopback6_taken(p), "[::1]:{p} still bound after rm");
    }
    b.ok(&["network", "rm", "four7", "dual7"]);
}

/// The same move for a container run in the foreground, whose [::1]
/// forwards a thread of `berth run` serves (it has no monitor to signal):
/// the thread follows the `forwards` file the engine rewrites. After the
/// connect, the port published on every address answers on [::1] too;
/// after its IPv4-only network goes, `[::1]:P` still answers, through the
/// container's IPv6 address (the old forward's IPv4 target is gone).
#[test]
fn a_foreground_runs_ipv6_loopback_ports_follow_network_connect() {
    let b = Berth::with_busybox();
    b.ok(&["network", "create", "four8"]);
    b.ok(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "fd00:c8::/64",
        "dual8",
    ]);
    let (p1, p2) = (free_port(), free_port());
    let one = format!("[::1]:{p1}:80");
    let any = format!("{p2}:80");
    let mut child = b
        .cmd(&[
            "run",
            "--rm",
            "--name",
            "fgmover",
            "--network",
            "four8",
            "-p",
            &one,
            "-p",
            &any,
            "busybox",
            "sh",
            "-c",
            "while true; do echo fgmoved | nc -l -p 80; done",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    answers(&format!("[::1]:{p1}"), "fgmoved");
    assert!(
        !loopback6_taken(p2),
        "[::1]:{p2} bound for a v4-only container"
    );
    b.ok(&["network", "connect", "dual8", "fgmover"]);
    answers(&format!("[::1]:{p2}"), "fgmoved");
    answers(&format!("[::1]:{p1}"), "fgmoved");
    b.ok(&["network", "disconnect", "four8", "fgmover"]);
    answers(&format!("[::1]:{p1}"), "fgmoved");
    answers(&format!("[::1]:{p2}"), "fgmoved");
    // Back on an IPv4-only network alone: [::1]:P2 closes, [::1]:P1 answers
    // through the container's new IPv4 address.
    b.ok(&["network", "connect", "four8", "fgmover"]);
    b.ok(&["network", "disconnect", "dual8", "fgmover"]);
    wait_until(10, &format!("[::1]:{p2} to be closed"), || {
        !loopback6_taken(p2)
    });
    answers(&format!("[::1]:{p1}"), "fgmoved");
    b.ok(&["stop", "-t", "1", "fgmover"]);
    let _ = child.wait().unwrap();
    for p in [p1, p2] {
        assert!(!loopback6_taken(p), "[::1]:{p} still bound after run --rm");
    }
    b.ok(&["network", "rm", "four8", "dual8"]);
}

/// Each bad IPv6 input is one line, a non-zero exit, and nothing made.
#[test]
fn bad_ipv6_input_is_refused_cleanly() {
    let b = Berth::with_busybox();
    b.ok(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "fd00:b5::/64",
        "good6",
    ]);
    b.ok(&["network", "create", "plain4"]);
    let one_line = |e: &str| assert_eq!(e.trim().lines().count(), 1, "{e}");
    for (args, says) in [
        (
            vec!["network", "create", "--subnet", "fd00:b6::/64", "x1"],
            "without --ipv6",
        ),
        (
            vec!["network", "create", "--ipv6", "x2"],
            "could not find an available, non-overlapping IPv6 address pool",
        ),
        (
            vec![
                "network",
                "create",
                "--ipv6",
                "--subnet",
                "fd00:b5::/80",
                "x3",
            ],
            "Pool overlaps",
        ),
        (
            vec![
                "network",
                "create",
                "--ipv6",
                "--subnet",
                "fd00:b5:0:0:1::/80",
                "x4",
            ],
            "overlaps network good6",
        ),
        (
            vec![
                "network",
                "create",
                "--ipv6",
                "--subnet",
                "fd00:b6::1/64",
                "x5",
            ],
            "invalid subnet",
        ),
        (
            vec![
                "network",
                "create",
                "--ipv6",
                "--subnet",
                "fd00:b6::/64",
                "--gateway",
                "fd00:b9::1",
                "x6",
            ],
            "not a host address",
        ),
    ] {
        let e = b.fails(&args, 1);
        one_line(&e);
        assert!(e.contains(says), "{args:?}: {e}");
    }
    // A subnet of one of the host's own addresses (when it has a global
    // one; link-local and loopback addresses never count).
    let host6 = host_ip_lines(&["-6", "-o", "addr", "show", "scope", "global"], "inet6");
    if let Some(addr) = host6
        .first()
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|a| a.parse::<ipnet::Ipv6Net>().ok())
    {
        let subnet = addr.trunc().to_string();
        let e = b.fails(
            &["network", "create", "--ipv6", "--subnet", &subnet, "x8"],
            1,
        );
        one_line(&e);
        assert!(e.contains("on the host"), "{subnet}: {e}");
    }
    let l = b.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!l.contains('x'), "{l}");
    for (args, says) in [
        (
            vec![
                "run",
                "--rm",
                "--network",
                "good6",
                "--ip6",
                "fd00:b9::5",
                "busybox",
                "true",
            ],
            "no configured subnet contains IP address fd00:b9::5",
        ),
        (
            vec![
                "run",
                "--rm",
                "--network",
                "good6",
                "--ip6",
                "fd00:b5::1",
                "busybox",
                "true",
            ],
            "Address already in use",
        ),
        (
            vec![
                "run",
                "--rm",
                "--network",
                "good6",
                "--ip6",
                "zz",
                "busybox",
                "true",
            ],
            "invalid IPv6 address: zz",
        ),
        (
            vec![
                "run",
                "--rm",
                "--network",
                "plain4",
                "--ip6",
                "fd00:b5::5",
                "busybox",
                "true",
            ],
            "has no IPv6",
        ),
        (
            vec![
                "run",
                "--rm",
                "--network",
                "plain4",
                "-p",
                "[fd00:b5::1]:8080:80",
                "busybox",
                "true",
            ],
            "has no IPv6",
        ),
        (
            vec!["run", "--rm", "--ip6", "fd00:b5::5", "busybox", "true"],
            "user specified IP address is supported on user defined networks only",
        ),
    ] {
        let e = b.fails(&args, 125);
        one_line(&e);
        assert!(e.contains(says), "{args:?}: {e}");
    }
    let l = b.ok(&["ps", "-aq"]);
    assert_eq!(l.trim(), "", "{l}");
    b.ok(&["network", "rm", "good6", "plain4"]);
}

/// daemon.json's `ipv6` and `fixed-cidr-v6` (Docker's keys) make the
/// default bridge dual-stack: containers get an address of the subnet made
/// of their MAC (Docker's for a /80 or shorter), inspect's top-level IPv6
/// fields, and reach each other over IPv6. `ipv6` without the subnet is
/// Docker's error, one line, nothing made.
#[test]
fn daemon_json_makes_the_default_bridge_dual_stack() {
    let b = Berth::with_busybox();
    let cfg = b.scratch().join("daemon.json");
    let with_cfg = |args: &[&str]| {
        let mut c = b.cmd(args);
        c.env("BERTH_DAEMON_JSON", &cfg);
        c.output().unwrap()
    };
    std::fs::write(&cfg, r#"{"ipv6": true}"#).unwrap();
    let out = with_cfg(&["run", "--rm", "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125));
    let err = text(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("Please specify a IPv6 subnet using --fixed-cidr-v6"),
        "{err}"
    );
    assert_eq!(b.ok(&["ps", "-aq"]), "");

    std::fs::write(&cfg, r#"{"ipv6": true, "fixed-cidr-v6": "fd00:ba::/64"}"#).unwrap();
    let out = with_cfg(&["run", "-d", "--name", "d6", "busybox", "sleep", "60"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = &container(&b, "d6")["NetworkSettings"];
    let mac = s["MacAddress"].as_str().unwrap().replace(':', "");
    let want = format!(
        "fd00:ba::{:x}:{:x}:{:x}",
        u16::from_str_radix(&mac[0..4], 16).unwrap(),
        u16::from_str_radix(&mac[4..8], 16).unwrap(),
        u16::from_str_radix(&mac[8..12], 16).unwrap()
    );
    assert_eq!(s["GlobalIPv6Address"], want.as_str(), "{s}");
    assert_eq!(s["GlobalIPv6PrefixLen"], 64, "{s}");
    assert_eq!(s["IPv6Gateway"], "fd00:ba::1", "{s}");
    assert_eq!(
        s["Networks"]["bridge"]["GlobalIPv6Address"],
        want.as_str(),
        "{s}"
    );
    let out = with_cfg(&["network", "inspect", "bridge"]);
    let n: Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    assert_eq!(n[0]["EnableIPv6"], true, "{n}");
    assert_eq!(n[0]["IPAM"]["Config"][1]["Subnet"], "fd00:ba::/64", "{n}");
    let out = with_cfg(&[
        "run", "--rm", "busybox", "ping", "-6", "-c", "1", "-W", "3", &want,
    ]);
    assert!(
        text(&out.stdout).contains("1 packets received"),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    b.ok(&["rm", "-f", "d6"]);
    let out = with_cfg(&["system", "reset", "-f"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// Through the Engine API with Docker's own CLI: `network create --ipv6`
/// with both subnets (EnableIPv6, two IPAM configs), `run --ip6` (the
/// endpoint's IPAMConfig.IPv6Address) and `network connect --ip6`.
#[test]
fn the_docker_cli_makes_dual_stack_networks_through_the_api() {
    let (b, s) = api::busybox_service();
    s.ok(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "10.231.19.0/24",
        "--subnet",
        "fd00:bb::/64",
        "apiv6",
    ]);
    let v: Value = serde_json::from_str(&s.ok(&["network", "inspect", "apiv6"])).unwrap();
    assert_eq!(v[0]["EnableIPv6"], true, "{v}");
    assert_eq!(v[0]["IPAM"]["Config"][1]["Subnet"], "fd00:bb::/64", "{v}");
    s.run_d(
        "a6",
        &[
            "--network",
            "apiv6",
            "--ip6",
            "fd00:bb::10",
            "busybox",
            "sleep",
            "60",
        ],
    );
    let e = endpoint(&b, "a6", "apiv6");
    assert_eq!(e["GlobalIPv6Address"], "fd00:bb::10", "{e}");
    assert_eq!(e["IPAMConfig"]["IPv6Address"], "fd00:bb::10", "{e}");
    s.ok(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "fd00:bc::/64",
        "apiv6b",
    ]);
    s.ok(&["network", "connect", "--ip6", "fd00:bc::9", "apiv6b", "a6"]);
    assert_eq!(ip6_of(&b, "a6", "apiv6b"), "fd00:bc::9");
    // --ipv6 without an IPv6 subnet: dockerd 20.10's words.
    let e = s.fails(&["network", "create", "--ipv6", "nov6"], 1);
    assert!(e.contains("non-overlapping IPv6 address pool"), "{e}");
    s.ok(&["rm", "-f", "a6"]);
    s.ok(&["network", "rm", "apiv6", "apiv6b"]);
}

/// A container whose first network is IPv4 only takes its IPv6 default
/// route from the first of its networks with IPv6.
#[test]
fn the_ipv6_default_route_comes_from_the_first_network_with_ipv6() {
    let b = Berth::with_busybox();
    b.ok(&["network", "create", "only4"]);
    b.ok(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "fd00:bd::/64",
        "also6",
    ]);
    let out = b.ok(&[
        "run",
        "--rm",
        "--network",
        "only4",
        "--network",
        "also6",
        "busybox",
        "sh",
        "-c",
        "ip route; ip -6 route",
    ]);
    assert!(out.contains("default via fd00:bd::1 dev eth1"), "{out}");
    assert_eq!(out.matches("default via").count(), 2, "{out}");
    assert!(!out.contains("default via fd00:bd::1 dev eth0"), "{out}");
    b.ok(&["network", "rm", "only4", "also6"]);
}

/// After a reboot (the bridge and the tables gone while the database
/// remembers them), starting a container remakes the bridge with its IPv6
/// gateway address and the `ip6` table: the container answers over IPv6
/// again, on its address and on its published port.
#[test]
fn start_remakes_the_ipv6_half_of_a_lost_bridge() {
    let b = Berth::with_busybox();
    b.ok(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "fd00:be::/64",
        "r6",
    ]);
    let p = free_port();
    let publish = format!("{p}:80");
    tcp_server(
        &b,
        &["--network", "r6", "-p", &publish],
        "back",
        80,
        "again6",
    );
    answers(&format!("[fd00:be::1]:{p}"), "again6");
    b.ok(&["stop", "-t", "0", "back"]);
    let bridge = network(&b, "r6")["Options"]["com.docker.network.bridge.name"]
        .as_str()
        .unwrap()
        .to_owned();
    // (this root's table: named as its default bridge, `berth_HASH`)
    let table = network(&b, "bridge")["Options"]["com.docker.network.bridge.name"]
        .as_str()
        .unwrap()
        .replace("berth-", "berth_");
    assert!(Command::new("ip")
        .args(["link", "del", &bridge])
        .status()
        .unwrap()
        .success());
    assert!(Command::new("nft")
        .args(["delete", "table", "ip6", &table])
        .status()
        .unwrap()
        .success());
    b.ok(&["start", "back"]);
    answers("[fd00:be::2]:80", "again6");
    answers(&format!("[fd00:be::1]:{p}"), "again6");
    b.ok(&["rm", "-f", "back"]);
    b.ok(&["network", "rm", "r6"]);
}
