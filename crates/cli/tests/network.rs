//! Networking through the `berth` binary against the real kernel: the
//! default bridge, user networks, published ports, the none/host/container
//! modes, concurrency, bad input, and that berth leaves the host's links,
//! addresses and nftables rules exactly as it found them.
//!
//! Traffic only ever goes to loopback and to addresses of the tests' own
//! bridges and namespaces.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::process::Command;
use std::sync::RwLock;
use std::time::Duration;

use common::*;
use serde_json::Value;

/// The test that compares the host before and after takes this for
/// writing; every other test for reading, so none runs during it.
static HOST: RwLock<()> = RwLock::new(());

fn shared() -> std::sync::RwLockReadGuard<'static, ()> {
    HOST.read().unwrap_or_else(|e| e.into_inner())
}

fn container(b: &Berth, name: &str) -> Value {
    let out = b.ok(&["inspect", name]);
    let v: Value = serde_json::from_str(&out).unwrap();
    v[0].clone()
}

fn ip_of(b: &Berth, name: &str) -> String {
    let v = container(b, name);
    let nets = v["NetworkSettings"]["Networks"].as_object().unwrap();
    nets.values().next().unwrap()["IPAddress"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn network(b: &Berth, name: &str) -> Value {
    let out = b.ok(&["network", "inspect", name]);
    let v: Value = serde_json::from_str(&out).unwrap();
    v[0].clone()
}

fn gateway(b: &Berth, name: &str) -> String {
    network(b, name)["IPAM"]["Config"][0]["Gateway"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Runs a one-shot TCP client in a container: sends `msg`, prints the reply.
fn tcp_from(b: &Berth, extra: &[&str], dst: &str, port: u16, msg: &str) -> std::process::Output {
    let script = format!("echo {msg} | nc -w 3 {dst} {port}");
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["busybox", "sh", "-c", &script]);
    b.run(&args)
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

/// Waits until the server at `addr` answers with `want` (the servers are
/// one-connection-at-a-time loops, briefly away between connections).
fn answers(addr: &str, want: &str) {
    wait_until(10, &format!("{addr} to answer {want}"), || {
        reply_of(addr).contains(want)
    });
}

/// A UDP receiver inside a container's network namespace (busybox has no
/// UDP server): a thread of this test enters the namespace, binds `port`
/// and returns the first datagram.
fn udp_receiver(b: &Berth, name: &str, port: u16) -> std::thread::JoinHandle<Vec<u8>> {
    let key = container(b, name)["NetworkSettings"]["SandboxKey"]
        .as_str()
        .unwrap()
        .to_owned();
    let (tx, rx) = std::sync::mpsc::channel();
    let h = std::thread::spawn(move || {
        let ns = std::fs::File::open(&key).unwrap();
        use std::os::fd::AsRawFd;
        // SAFETY: setns(2) on an open nsfs descriptor; it changes only this
        // thread's network namespace.
        let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {key}");
        let sock = UdpSocket::bind(("0.0.0.0", port)).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        tx.send(()).unwrap();
        let mut buf = [0u8; 2048];
        let (n, _) = sock.recv_from(&mut buf).expect("no datagram arrived");
        buf[..n].to_vec()
    });
    rx.recv().unwrap();
    h
}

/// `ps`'s PORTS as Docker's CLI writes them (checked against dockerd 20.10
/// and its CLI): sorted, consecutive exposed ports as a range, published
/// ports last; nothing for a container that does not run.
#[test]
fn ps_ports_column_is_dockers() {
    let _g = shared();
    let b = Berth::with_busybox();
    b.ok(&[
        "run",
        "-d",
        "--name",
        "pp",
        "--expose",
        "53/udp",
        "--expose",
        "7000-7001",
        "-p",
        "127.0.0.1::80",
        "busybox",
        "sleep",
        "60",
    ]);
    let p80 = b.ok(&["port", "pp", "80"]);
    let p80 = p80.trim().rsplit(':').next().unwrap().to_owned();
    assert_eq!(
        b.ok(&["ps", "--format", "{{.Ports}}"]).trim(),
        format!("53/udp, 7000-7001/tcp, 127.0.0.1:{p80}->80/tcp")
    );
    b.ok(&["stop", "-t", "0", "pp"]);
    assert_eq!(
        b.ok(&["ps", "-a", "--format", "{{.Names}}|{{.Ports}}"])
            .trim(),
        "pp|"
    );
    b.ok(&["rm", "pp"]);
}

#[test]
fn default_bridge_tcp_and_udp_between_containers() {
    let _g = shared();
    let b = Berth::with_busybox();
    tcp_server(&b, &[], "srv", 5000, "pong");
    b.ok(&["run", "-d", "--name", "usrv", "busybox", "sleep", "60"]);
    let srv = ip_of(&b, "srv");
    let usrv = ip_of(&b, "usrv");
    assert_ne!(srv, usrv);
    let gw = gateway(&b, "bridge");
    let mut reply = String::new();
    wait_until(10, "the TCP server to answer", || {
        let out = tcp_from(&b, &[], &srv, 5000, "ping");
        reply = text(&out.stdout);
        reply.contains("pong")
    });
    // UDP: a DNS query (busybox's nslookup is its UDP client) from another
    // container arrives in usrv's namespace.
    let got = udp_receiver(&b, "usrv", 53);
    b.run(&["run", "--rm", "busybox", "nslookup", "probe.test", &usrv]);
    let got = got.join().unwrap();
    assert!(got.windows(5).any(|w| w == b"probe"), "{got:?}");
    // Each container: lo and eth0 with its address, default route via the
    // bridge, hosts naming itself.
    let out = b.ok(&["exec", "srv", "ip", "route"]);
    assert!(out.contains(&format!("default via {gw}")), "{out}");
    let out = b.ok(&["exec", "srv", "cat", "/etc/hosts"]);
    assert!(out.contains(&srv), "{out}");
    let v = container(&b, "srv");
    assert_eq!(v["NetworkSettings"]["IPAddress"], srv.as_str());
    assert_eq!(v["NetworkSettings"]["Gateway"], gw.as_str());
    assert_eq!(v["HostConfig"]["NetworkMode"], "bridge");
    let mac = v["NetworkSettings"]["MacAddress"].as_str().unwrap();
    assert!(mac.starts_with("02:42:"), "{mac}");
    b.ok(&["rm", "-f", "srv", "usrv"]);
}

#[test]
fn published_ports_answer_on_loopback_gateway_and_from_containers() {
    let _g = shared();
    let b = Berth::with_busybox();
    // Host ports chosen by the kernel, so parallel tests never collide.
    tcp_server(
        &b,
        &["-p", "127.0.0.1::80", "-p", "7070"],
        "web",
        80,
        "hi-there",
    );
    let port = |spec: &str| -> u16 {
        let out = b.ok(&["port", "web", spec]);
        out.trim().rsplit(':').next().unwrap().parse().unwrap()
    };
    let p80 = port("80");
    let p7070 = port("7070/tcp");
    let out = b.ok(&["port", "web"]);
    assert!(out.contains(&format!("80/tcp -> 127.0.0.1:{p80}")), "{out}");
    assert!(
        out.contains(&format!("7070/tcp -> 0.0.0.0:{p7070}")),
        "{out}"
    );
    let ps = b.ok(&["ps"]);
    assert!(ps.contains(&format!("127.0.0.1:{p80}->80/tcp")), "{ps}");
    answers(&format!("127.0.0.1:{p80}"), "hi-there");
    // On the bridge's own address: only the 0.0.0.0 publication.
    let gw = gateway(&b, "bridge");
    let v = container(&b, "web");
    assert_eq!(
        v["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"],
        p80.to_string()
    );
    // From another container through the host (hairpin NAT).
    let out = tcp_from(&b, &[], &gw, p80, "x");
    assert!(
        !text(&out.stdout).contains("hi-there"),
        "a 127.0.0.1 publication answered on the gateway"
    );
    b.ok(&["rm", "-f", "web"]);
    tcp_server(&b, &["-p", "0.0.0.0::80"], "web2", 80, "again");
    let p = port2(&b, "web2", "80");
    answers(&format!("127.0.0.1:{p}"), "again");
    answers(&format!("{gw}:{p}"), "again");
    wait_until(10, "the port through the gateway from a container", || {
        text(&tcp_from(&b, &[], &gw, p, "x").stdout).contains("again")
    });
    // UDP through a published port.
    b.ok(&[
        "run",
        "-d",
        "--name",
        "u1",
        "-p",
        "127.0.0.1::9999/udp",
        "busybox",
        "sleep",
        "60",
    ]);
    let up = port2(&b, "u1", "9999/udp");
    let got = udp_receiver(&b, "u1", 9999);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.send_to(b"via-udp\n", ("127.0.0.1", up)).unwrap();
    assert_eq!(got.join().unwrap(), b"via-udp\n");
    // Stopped: the rules go.
    b.ok(&["stop", "-t", "0", "web2"]);
    assert_eq!(b.ok(&["port", "web2"]), "");
    assert!(TcpStream::connect_timeout(
        &format!("127.0.0.1:{p}").parse().unwrap(),
        Duration::from_millis(500)
    )
    .is_err());
    b.ok(&["rm", "-f", "web2", "u1"]);
}

fn port2(b: &Berth, name: &str, spec: &str) -> u16 {
    let out = b.ok(&["port", name, spec]);
    out.trim().rsplit(':').next().unwrap().parse().unwrap()
}

#[test]
fn publish_all_uses_the_exposed_ports() {
    let _g = shared();
    let b = Berth::with_busybox();
    tcp_server(
        &b,
        &["-P", "--expose", "8081", "--expose", "9000-9001/udp"],
        "all",
        8081,
        "p",
    );
    let out = b.ok(&["port", "all"]);
    for k in [
        "8081/tcp -> 0.0.0.0:",
        "9000/udp -> 0.0.0.0:",
        "9001/udp -> 0.0.0.0:",
    ] {
        assert!(out.contains(k), "{out}");
    }
    let p = port2(&b, "all", "8081");
    answers(&format!("127.0.0.1:{p}"), "p");
    b.ok(&["rm", "-f", "all"]);
}

#[test]
fn user_networks_connect_by_address_and_are_isolated() {
    let _g = shared();
    let b = Berth::with_busybox();
    let id = b.ok(&["network", "create", "--label", "team=a", "front"]);
    assert!(is_hex64(id.trim()), "{id}");
    b.ok(&["network", "create", "back"]);
    let ls = b.ok(&["network", "ls", "--format", "{{.Name}} {{.Driver}}"]);
    for n in [
        "bridge bridge",
        "front bridge",
        "back bridge",
        "host host",
        "none null",
    ] {
        assert!(ls.contains(n), "{ls}");
    }
    let out = b.ok(&["network", "ls", "-q", "--filter", "label=team=a"]);
    assert_eq!(out.trim(), &id.trim()[..12]);
    tcp_server(
        &b,
        &["--network", "front", "--network-alias", "api"],
        "a1",
        6000,
        "from-a1",
    );
    let a1 = ip_of(&b, "a1");
    let v = container(&b, "a1");
    let aliases = &v["NetworkSettings"]["Networks"]["front"]["Aliases"];
    assert!(
        aliases.as_array().unwrap().iter().any(|a| a == "api"),
        "{aliases}"
    );
    // Same network: reachable.
    let mut ok = false;
    wait_until(10, "a1 to answer on front", || {
        ok =
            text(&tcp_from(&b, &["--network", "front"], &a1, 6000, "x").stdout).contains("from-a1");
        ok
    });
    // Another user network, and the default bridge: not reachable.
    let out = tcp_from(&b, &["--network", "back"], &a1, 6000, "x");
    assert!(!text(&out.stdout).contains("from-a1"), "back reached front");
    let out = tcp_from(&b, &[], &a1, 6000, "x");
    assert!(
        !text(&out.stdout).contains("from-a1"),
        "bridge reached front"
    );
    // --ip picks the address; network inspect lists the containers.
    b.ok(&[
        "run",
        "-d",
        "--name",
        "fixed",
        "--network",
        "back",
        "--ip",
        &subnet_host(&b, "back", 77),
        "busybox",
        "sleep",
        "60",
    ]);
    assert_eq!(ip_of(&b, "fixed"), subnet_host(&b, "back", 77));
    let n = network(&b, "back");
    assert_eq!(n["Containers"].as_object().unwrap().len(), 1);
    assert_eq!(n["Labels"], serde_json::json!({}));
    // connect: a running container gets a second interface at once.
    b.ok(&["network", "connect", "front", "fixed"]);
    let out = b.ok(&["exec", "fixed", "ip", "-o", "-4", "addr"]);
    assert!(out.contains("eth1"), "{out}");
    let v = container(&b, "fixed");
    assert_eq!(
        v["NetworkSettings"]["Networks"].as_object().unwrap().len(),
        2
    );
    wait_until(10, "fixed to reach a1 over front", || {
        let script = format!("echo y | nc -w 3 {a1} 6000");
        text(&b.run(&["exec", "fixed", "sh", "-c", &script]).stdout).contains("from-a1")
    });
    b.ok(&["network", "disconnect", "front", "fixed"]);
    let out = b.ok(&["exec", "fixed", "ip", "-o", "-4", "addr"]);
    assert!(!out.contains("eth1"), "{out}");
    // In use: refused; after rm: removed, with its bridge.
    let bridge = network(&b, "front")["Options"]["com.docker.network.bridge.name"]
        .as_str()
        .unwrap()
        .to_owned();
    let e = b.fails(&["network", "rm", "front"], 1);
    assert!(e.contains("active endpoints"), "{e}");
    b.ok(&["rm", "-f", "a1", "fixed"]);
    assert_eq!(b.ok(&["network", "rm", "front"]).trim(), "front");
    assert!(!host_links().contains(&bridge), "bridge {bridge} left");
    let out = b.ok(&["network", "prune", "-f"]);
    assert!(out.contains("back"), "{out}");
}

fn subnet_host(b: &Berth, net: &str, n: u8) -> String {
    let subnet = network(b, net)["IPAM"]["Config"][0]["Subnet"]
        .as_str()
        .unwrap()
        .to_owned();
    let base = subnet.split('/').next().unwrap();
    let mut o: Vec<u8> = base.split('.').map(|x| x.parse().unwrap()).collect();
    o[3] = n;
    format!("{}.{}.{}.{}", o[0], o[1], o[2], o[3])
}

/// The path MTU the kernel of container `name`'s network namespace uses
/// towards `dst`: a UDP socket connected there (connect sends nothing)
/// answers IP_MTU from the route it looked up.
fn path_mtu(b: &Berth, name: &str, dst: &str) -> u32 {
    let key = container(b, name)["NetworkSettings"]["SandboxKey"]
        .as_str()
        .unwrap()
        .to_owned();
    let dst: std::net::Ipv4Addr = dst.parse().unwrap();
    std::thread::spawn(move || {
        use std::os::fd::AsRawFd;
        let ns = std::fs::File::open(&key).unwrap();
        // SAFETY: setns(2) on an open nsfs descriptor; it changes only this
        // thread's network namespace.
        let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {key}");
        let sock = UdpSocket::bind(("0.0.0.0", 0)).unwrap();
        sock.connect((dst, 9)).unwrap();
        let mut mtu: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: getsockopt(2) writes at most `len` bytes into `mtu`, an
        // int that outlives the call.
        let rc = unsafe {
            libc::getsockopt(
                sock.as_raw_fd(),
                libc::IPPROTO_IP,
                libc::IP_MTU,
                (&mut mtu as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        assert_eq!(rc, 0, "IP_MTU towards {dst}");
        mtu as u32
    })
    .join()
    .unwrap()
}

/// An address that is never on this machine (TEST-NET-1): only the route
/// towards it is looked up, no packet is sent.
const ELSEWHERE: &str = "192.0.2.1";

/// Without an MTU asked, the links of a network are 65520 (traffic
/// between containers and with the host stays on this machine and uses
/// loopback-sized segments) while the default route says 1500, Docker's
/// MTU for whatever leaves the host.
#[test]
fn local_links_are_large_and_the_way_out_is_1500() {
    let _g = shared();
    let b = Berth::with_busybox();
    b.ok(&["run", "-d", "--name", "m1", "busybox", "sleep", "300"]);
    b.ok(&["run", "-d", "--name", "m2", "busybox", "sleep", "300"]);
    let m2 = ip_of(&b, "m2");
    let gw = gateway(&b, "bridge");
    let out = b.ok(&["exec", "m1", "cat", "/sys/class/net/eth0/mtu"]);
    assert_eq!(out.trim(), "65520");
    assert_eq!(path_mtu(&b, "m1", &m2), 65520);
    assert_eq!(path_mtu(&b, "m1", &gw), 65520);
    assert_eq!(path_mtu(&b, "m1", ELSEWHERE), 1500);
    // The host reaches the containers over the bridge at the same size.
    let options = network(&b, "bridge")["Options"].clone();
    let bridge = options["com.docker.network.bridge.name"]
        .as_str()
        .unwrap()
        .to_owned();
    // (Docker's default bridge options are shown, no MTU: none was asked.)
    assert_eq!(options["com.docker.network.bridge.default_bridge"], "true");
    assert_eq!(
        options["com.docker.network.bridge.enable_ip_masquerade"],
        "true"
    );
    assert!(
        options["com.docker.network.driver.mtu"].is_null(),
        "{options}"
    );
    let mtu = std::fs::read_to_string(format!("/sys/class/net/{bridge}/mtu")).unwrap();
    assert_eq!(mtu.trim(), "65520");
    // A TCP stream between the two crosses the large links whole (a
    // mismatch of MTUs would drop its large segments and stall it).
    // (busybox's nc closes the connection at the end of its stdin: the
    // server's is kept open by sleep)
    b.ok(&[
        "exec",
        "-d",
        "m2",
        "sh",
        "-c",
        "sleep 60 | nc -l -p 7000 > /got",
    ]);
    wait_until(10, "m2 to listen on 7000", || {
        b.run(&["exec", "m2", "sh", "-c", "netstat -ltn | grep -q :7000"])
            .status
            .success()
    });
    b.ok(&[
        "exec",
        "m1",
        "sh",
        "-c",
        &format!("head -c 4194304 /dev/zero | nc -w 1 {m2} 7000"),
    ]);
    wait_until(10, "m2 to have received 4 MiB", || {
        b.ok(&["exec", "m2", "wc", "-c", "/got"])
            .contains("4194304")
    });
    b.ok(&["rm", "-f", "m1", "m2"]);
}

/// `-o com.docker.network.driver.mtu=N` sets the MTU of the bridge and of
/// both ends of every veth on the network, and the default route has no
/// smaller MTU of its own (Docker's option, Docker's behaviour).
#[test]
fn network_mtu_option() {
    let _g = shared();
    let b = Berth::with_busybox();
    b.ok(&[
        "network",
        "create",
        "-o",
        "com.docker.network.driver.mtu=9000",
        "jumbo",
    ]);
    let n = network(&b, "jumbo");
    assert_eq!(n["Options"]["com.docker.network.driver.mtu"], "9000", "{n}");
    let out = b.ok(&[
        "run",
        "--rm",
        "--network",
        "jumbo",
        "busybox",
        "cat",
        "/sys/class/net/eth0/mtu",
    ]);
    assert_eq!(out.trim(), "9000");
    let bridge = n["Options"]["com.docker.network.bridge.name"]
        .as_str()
        .unwrap()
        .to_owned();
    b.ok(&[
        "run",
        "-d",
        "--name",
        "j1",
        "--network",
        "jumbo",
        "busybox",
        "sleep",
        "300",
    ]);
    let mtu = |dev: &str| {
        std::fs::read_to_string(format!("/sys/class/net/{dev}/mtu"))
            .unwrap()
            .trim()
            .to_owned()
    };
    assert_eq!(mtu(&bridge), "9000");
    let ports: Vec<String> = std::fs::read_dir(format!("/sys/class/net/{bridge}/brif"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(ports.len(), 1, "{ports:?}");
    assert_eq!(mtu(&ports[0]), "9000");
    assert_eq!(path_mtu(&b, "j1", &gateway(&b, "jumbo")), 9000);
    assert_eq!(path_mtu(&b, "j1", ELSEWHERE), 9000);
    b.ok(&["rm", "-f", "j1"]);
    b.ok(&["network", "rm", "jumbo"]);
    // Docker's 1500 asked for: 1500 everywhere, as under Docker.
    b.ok(&[
        "network",
        "create",
        "-o",
        "com.docker.network.driver.mtu=1500",
        "classic",
    ]);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "c1",
        "--network",
        "classic",
        "busybox",
        "sleep",
        "300",
    ]);
    assert_eq!(path_mtu(&b, "c1", &gateway(&b, "classic")), 1500);
    assert_eq!(path_mtu(&b, "c1", ELSEWHERE), 1500);
    b.ok(&["rm", "-f", "c1"]);
    b.ok(&["network", "rm", "classic"]);
}

/// Runs berth with `cfg` as its daemon.json (and no pool from the
/// environment).
fn with_daemon_json(b: &Berth, cfg: &std::path::Path, args: &[&str]) -> std::process::Output {
    let mut c = b.cmd(args);
    c.env("BERTH_DAEMON_JSON", cfg);
    c.env_remove("BERTH_DEFAULT_ADDRESS_POOL");
    c.output().unwrap()
}

/// daemon.json's `mtu` (Docker's key) gives the default network that MTU,
/// links and way out alike; a bad value is one clear line and changes
/// nothing; without the key the local links come back for new containers
/// once the bridge's smaller ports are gone.
#[test]
fn daemon_json_mtu_sets_the_default_bridge() {
    let _g = shared();
    let b = Berth::with_busybox();
    let cfg = b.scratch().join("daemon.json");
    let with_cfg = |args: &[&str]| with_daemon_json(&b, &cfg, args);
    for (bad, says) in [
        (
            r#"{"mtu": 10}"#,
            "mtu: 10 is not a number between 68 and 65535",
        ),
        (r#"{"mtu": "1500"}"#, "mtu: \"1500\" is not a number"),
        ("{", "daemon.json: EOF while parsing"),
    ] {
        std::fs::write(&cfg, bad).unwrap();
        let out = with_cfg(&["run", "--rm", "--name", "bad", "busybox", "true"]);
        assert_eq!(out.status.code(), Some(125), "{bad}");
        let err = text(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(says), "{bad}: {err}");
        assert_eq!(b.ok(&["ps", "-aq"]), "", "{bad}");
    }

    std::fs::write(&cfg, r#"{"mtu": 1500, "log-level": "warn"}"#).unwrap();
    let out = with_cfg(&["run", "-d", "--name", "d1", "busybox", "sleep", "300"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let eth0_mtu = |c: &str| {
        b.ok(&["exec", c, "cat", "/sys/class/net/eth0/mtu"])
            .trim()
            .to_owned()
    };
    assert_eq!(eth0_mtu("d1"), "1500");
    assert_eq!(path_mtu(&b, "d1", &gateway(&b, "bridge")), 1500);
    assert_eq!(path_mtu(&b, "d1", ELSEWHERE), 1500);
    // (every berth command reads daemon.json: this inspect too)
    let out = with_cfg(&["network", "inspect", "bridge"]);
    let n: Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    assert_eq!(
        n[0]["Options"]["com.docker.network.driver.mtu"], "1500",
        "{n}"
    );
    let bridge = n[0]["Options"]["com.docker.network.bridge.name"]
        .as_str()
        .unwrap()
        .to_owned();

    // Without the key: while d1's 1500-byte port is on the bridge, a new
    // container gets 1500 too (one MTU across the bridge's ports); once
    // the bridge is empty, the local links.
    std::fs::remove_file(&cfg).unwrap();
    let out = with_cfg(&["run", "-d", "--name", "d2", "busybox", "sleep", "300"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(eth0_mtu("d2"), "1500");
    b.ok(&["rm", "-f", "d1", "d2"]);
    // (the kernel dismantles a removed container's namespace, veth pair
    // included, in the background)
    wait_until(20, "the bridge to lose its ports", || {
        std::fs::read_dir(format!("/sys/class/net/{bridge}/brif"))
            .map(|mut d| d.next().is_none())
            .unwrap_or(true)
    });
    let out = with_cfg(&["run", "--rm", "busybox", "cat", "/sys/class/net/eth0/mtu"]);
    assert_eq!(text(&out.stdout).trim(), "65520", "{}", text(&out.stderr));
    assert!(network(&b, "bridge")["Options"]["com.docker.network.driver.mtu"].is_null());
}

/// daemon.json's `default-address-pools` (Docker's key) is where new
/// networks, the default one included, take their subnets; a bad pool is
/// one line and makes nothing.
#[test]
fn daemon_json_address_pools() {
    let _g = shared();
    let b = Berth::with_busybox();
    let cfg = b.scratch().join("daemon.json");
    let with_cfg = |args: &[&str]| with_daemon_json(&b, &cfg, args);
    let subnet_of = |net: &str| {
        let out = with_cfg(&[
            "network",
            "inspect",
            "-f",
            "{{range .IPAM.Config}}{{.Subnet}}{{end}}",
            net,
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout).trim().to_owned()
    };
    std::fs::write(
        &cfg,
        r#"{"default-address-pools": [{"base": "10.213.0.0/16", "size": 24}]}"#,
    )
    .unwrap();
    let out = with_cfg(&["network", "create", "pooled"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let pooled = subnet_of("pooled");
    assert!(
        pooled.starts_with("10.213.") && pooled.ends_with(".0/24"),
        "{pooled}"
    );
    let out = with_cfg(&["network", "create", "pooled2"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let pooled2 = subnet_of("pooled2");
    assert!(
        pooled2.starts_with("10.213.") && pooled2 != pooled,
        "{pooled2}"
    );
    // The default network is made on first use: from the pool too.
    let default = subnet_of("bridge");
    assert!(default.starts_with("10.213."), "{default}");
    std::fs::write(
        &cfg,
        r#"{"default-address-pools": [{"base": "10.213.0.0/16", "size": 12}]}"#,
    )
    .unwrap();
    let out = with_cfg(&["network", "create", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("size 12 must be between 16 and 30"), "{err}");
    assert!(b.run(&["network", "inspect", "nope"]).status.code() != Some(0));
    b.ok(&["network", "rm", "pooled", "pooled2"]);
}

/// `--link NAME[:ALIAS]` (Docker's legacy links): on the default bridge the
/// alias, the linked container's hostname and name in /etc/hosts, Docker's
/// link variables, and the alias reaches it; on a user network the hosts
/// line only. A linked container must exist and run (at `run`, and again
/// at `start`); bad forms and modes are one line and make nothing.
#[test]
fn legacy_links() {
    let _g = shared();
    let b = Berth::with_busybox();
    tcp_server(
        &b,
        &["--expose", "5432", "-e", "SECRET=s3"],
        "db",
        5432,
        "pong",
    );
    let db_ip = ip_of(&b, "db");
    let db_id = b.ok(&["inspect", "-f", "{{.Id}}", "db"]).trim().to_owned();
    let out = b.ok(&[
        "run",
        "--rm",
        "--name",
        "app",
        "--link",
        "db:database",
        "busybox",
        "sh",
        "-c",
        "cat /etc/hosts; env | sort",
    ]);
    assert!(
        out.contains(&format!("{db_ip}\tdatabase {} db\n", &db_id[..12])),
        "{out}"
    );
    for want in [
        "DATABASE_NAME=/app/database".to_owned(),
        format!("DATABASE_PORT=tcp://{db_ip}:5432"),
        format!("DATABASE_PORT_5432_TCP=tcp://{db_ip}:5432"),
        format!("DATABASE_PORT_5432_TCP_ADDR={db_ip}"),
        "DATABASE_PORT_5432_TCP_PORT=5432".to_owned(),
        "DATABASE_PORT_5432_TCP_PROTO=tcp".to_owned(),
        "DATABASE_ENV_SECRET=s3".to_owned(),
    ] {
        assert!(out.lines().any(|l| l == want), "{want} missing: {out}");
    }
    assert!(!out.contains("DATABASE_ENV_PATH"), "{out}");
    wait_until(10, "db to answer through its alias", || {
        text(&tcp_from(&b, &["--link", "db:database"], "database", 5432, "x").stdout)
            .contains("pong")
    });
    // inspect shows Docker's form; a created container's link is checked
    // again when it starts.
    b.ok(&[
        "create", "--name", "later", "--link", "db", "busybox", "true",
    ]);
    assert_eq!(
        b.ok(&["inspect", "-f", "{{json .HostConfig.Links}}", "later"])
            .trim(),
        r#"["/db:/later/db"]"#
    );
    b.ok(&["stop", "-t", "0", "db"]);
    let e = b.fails(&["start", "later"], 1);
    assert!(
        e.contains("Cannot link to a non running container: /db AS /later/db"),
        "{e}"
    );
    let before = b.ok(&["ps", "-aq"]);
    let e = b.fails(&["run", "--rm", "--link", "db", "busybox", "true"], 125);
    assert!(e.contains("Cannot link to a non running container"), "{e}");
    for (args, says) in [
        (
            vec!["--link", "nosuch"],
            "could not get container for nosuch",
        ),
        (vec!["--link", "a:b:c"], "bad format for links: a:b:c"),
        (vec!["--link", ":x"], "bad format for links"),
        (
            vec!["--network", "host", "--link", "db"],
            "host type networking can't be used with links",
        ),
    ] {
        let mut a = vec!["run", "--rm"];
        a.extend(args);
        a.extend(["busybox", "true"]);
        let e = b.fails(&a, 125);
        assert!(e.contains(says), "{a:?}: {e}");
    }
    assert_eq!(b.ok(&["ps", "-aq"]), before);
    // A user network: the hosts line, no variables.
    b.ok(&["start", "db"]);
    b.ok(&["network", "create", "linked"]);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "udb",
        "--network",
        "linked",
        "busybox",
        "sleep",
        "300",
    ]);
    let uip = ip_of(&b, "udb");
    let out = b.ok(&[
        "run",
        "--rm",
        "--network",
        "linked",
        "--link",
        "udb:mydb",
        "busybox",
        "sh",
        "-c",
        "grep mydb /etc/hosts; env",
    ]);
    assert!(out.starts_with(&format!("{uip}\tmydb ")), "{out}");
    assert!(!out.contains("MYDB_"), "{out}");
    b.ok(&["rm", "-f", "db", "udb", "later"]);
    b.ok(&["network", "rm", "linked"]);
}

/// `--mac-address`: the container's eth0 has it and inspect shows it; a
/// malformed or multicast one, or one without a network of berth's, is one
/// line and makes nothing.
#[test]
fn mac_address_flag() {
    let _g = shared();
    let b = Berth::with_busybox();
    let out = b.ok(&[
        "run",
        "--rm",
        "--mac-address",
        "92:D0:C6:0A:29:33",
        "busybox",
        "cat",
        "/sys/class/net/eth0/address",
    ]);
    assert_eq!(out.trim(), "92:d0:c6:0a:29:33");
    b.ok(&[
        "run",
        "-d",
        "--name",
        "m1",
        "--mac-address",
        "02-42-ac-11-00-99",
        "busybox",
        "sleep",
        "300",
    ]);
    assert_eq!(
        b.ok(&["inspect", "-f", "{{.NetworkSettings.MacAddress}}", "m1"])
            .trim(),
        "02:42:ac:11:00:99"
    );
    b.ok(&["rm", "-f", "m1"]);
    for (args, says) in [
        (
            vec!["--mac-address", "01:00:5e:00:00:01"],
            "is not a valid mac address",
        ),
        (
            vec!["--mac-address", "92:d0:c6:0a:29"],
            "is not a valid mac address",
        ),
        (
            vec!["--network", "none", "--mac-address", "92:d0:c6:0a:29:33"],
            "conflicting options: mac-address and the network mode",
        ),
    ] {
        let mut a = vec!["run", "--rm"];
        a.extend(args);
        a.extend(["busybox", "true"]);
        let e = b.fails(&a, 125);
        assert!(e.contains(says), "{a:?}: {e}");
    }
    assert_eq!(b.ok(&["ps", "-aq"]), "");
}

/// `-o com.docker.network.bridge.name=NAME`: the network's bridge has that
/// name (and goes with the network); a bad name, one in use on the host or
/// by another network is one line and makes nothing.
#[test]
fn network_bridge_name_option() {
    let _g = shared();
    let b = Berth::with_busybox();
    let name = format!("bnm{}", std::process::id() % 100_000);
    let opt = format!("com.docker.network.bridge.name={name}");
    b.ok(&["network", "create", "-o", &opt, "named"]);
    assert_eq!(
        network(&b, "named")["Options"]["com.docker.network.bridge.name"],
        name.as_str()
    );
    assert!(std::path::Path::new(&format!("/sys/class/net/{name}/bridge")).exists());
    tcp_server(&b, &["--network", "named"], "n1", 6200, "named-ok");
    let n1 = ip_of(&b, "n1");
    wait_until(10, "n1 to answer on the named bridge", || {
        text(&tcp_from(&b, &["--network", "named"], &n1, 6200, "x").stdout).contains("named-ok")
    });
    let before = b.ok(&["network", "ls", "-q"]);
    for (bad, says) in [
        (opt.clone(), "is used by another network"),
        (
            "com.docker.network.bridge.name=lo".to_owned(),
            "bridge name lo is in use on the host",
        ),
        (
            "com.docker.network.bridge.name=much-too-long-name".to_owned(),
            "invalid bridge name",
        ),
        (
            "com.docker.network.bridge.name=a\"b".to_owned(),
            "invalid bridge name",
        ),
        (
            "com.docker.network.bridge.name=".to_owned(),
            "invalid bridge name",
        ),
    ] {
        let e = b.fails(&["network", "create", "-o", &bad, "other"], 1);
        assert!(e.contains(says), "{bad}: {e}");
    }
    assert_eq!(b.ok(&["network", "ls", "-q"]), before);
    b.ok(&["rm", "-f", "n1"]);
    b.ok(&["network", "rm", "named"]);
    assert!(!std::path::Path::new(&format!("/sys/class/net/{name}")).exists());
}

/// `-o com.docker.network.bridge.enable_ip_masquerade=false`: no
/// masquerade of what leaves the network (the rule a network has by
/// default is absent from berth's table), shown in inspect; a value that
/// is not a boolean is one line.
#[test]
fn network_masquerade_option() {
    let _g = shared();
    let b = Berth::with_busybox();
    b.ok(&["network", "create", "natted"]);
    b.ok(&[
        "network",
        "create",
        "-o",
        "com.docker.network.bridge.enable_ip_masquerade=false",
        "routed",
    ]);
    let rule_of = |net: &str| {
        let n = network(&b, net);
        format!(
            "ip saddr {} oifname != \"{}\" masquerade",
            n["IPAM"]["Config"][0]["Subnet"].as_str().unwrap(),
            n["Options"]["com.docker.network.bridge.name"]
                .as_str()
                .unwrap()
        )
    };
    let ruleset = std::process::Command::new("nft")
        .args(["list", "ruleset"])
        .output()
        .unwrap();
    let ruleset = text(&ruleset.stdout);
    assert!(ruleset.contains(&rule_of("natted")), "{ruleset}");
    assert!(!ruleset.contains(&rule_of("routed")), "{ruleset}");
    assert_eq!(
        network(&b, "routed")["Options"]["com.docker.network.bridge.enable_ip_masquerade"],
        "false"
    );
    let e = b.fails(
        &[
            "network",
            "create",
            "-o",
            "com.docker.network.bridge.enable_ip_masquerade=perhaps",
            "other",
        ],
        1,
    );
    assert!(e.contains("expected true or false"), "{e}");
    // The option Docker's default bridge shows of itself is taken, by the
    // CLI as by the API (one parser for both).
    b.ok(&[
        "network",
        "create",
        "-o",
        "com.docker.network.bridge.host_binding_ipv4=0.0.0.0",
        "anyhost",
    ]);
    b.ok(&["network", "rm", "natted", "routed", "anyhost"]);
}

#[test]
fn internal_networks_have_no_route_out() {
    let _g = shared();
    let b = Berth::with_busybox();
    b.ok(&["network", "create", "--internal", "priv"]);
    let out = b.ok(&["run", "--rm", "--network", "priv", "busybox", "ip", "route"]);
    assert!(!out.contains("default"), "{out}");
    tcp_server(&b, &["--network", "priv"], "p1", 6100, "inside");
    let p1 = ip_of(&b, "p1");
    wait_until(10, "p1 to answer inside priv", || {
        text(&tcp_from(&b, &["--network", "priv"], &p1, 6100, "x").stdout).contains("inside")
    });
    // The default bridge cannot reach into it.
    let out = tcp_from(&b, &[], &p1, 6100, "x");
    assert!(!text(&out.stdout).contains("inside"));
    b.ok(&["rm", "-f", "p1"]);
    b.ok(&["network", "rm", "priv"]);
}

#[test]
fn none_host_and_container_modes() {
    let _g = shared();
    let b = Berth::with_busybox();
    let out = b.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "ip",
        "-o",
        "link",
    ]);
    let links: Vec<&str> = out.lines().collect();
    assert_eq!(links.len(), 1, "{out}");
    assert!(links[0].contains("lo:") && links[0].contains("UP"), "{out}");
    let v: Value = {
        b.ok(&[
            "create",
            "--name",
            "n1",
            "--network",
            "none",
            "busybox",
            "true",
        ]);
        container(&b, "n1")
    };
    assert_eq!(v["HostConfig"]["NetworkMode"], "none");
    assert!(v["NetworkSettings"]["Networks"]["none"].is_object());
    b.ok(&["rm", "n1"]);
    // host: the host's interfaces.
    let out = b.ok(&[
        "run",
        "--rm",
        "--network",
        "host",
        "busybox",
        "ip",
        "-o",
        "link",
    ]);
    assert!(out.lines().count() >= host_links().len().min(2), "{out}");
    // container:X shares X's namespace: same address, and X's ports on lo.
    tcp_server(&b, &[], "x1", 6200, "shared-lo");
    let xip = ip_of(&b, "x1");
    let out = b.ok(&[
        "run",
        "--rm",
        "--network",
        "container:x1",
        "busybox",
        "ip",
        "-o",
        "-4",
        "addr",
    ]);
    assert!(out.contains(&xip), "{out}");
    wait_until(10, "x's port on the shared lo", || {
        text(&tcp_from(&b, &["--network", "container:x1"], "127.0.0.1", 6200, "y").stdout)
            .contains("shared-lo")
    });
    let e = b.fails(
        &[
            "run",
            "--rm",
            "--network",
            "container:x1",
            "-p",
            "80",
            "busybox",
            "true",
        ],
        125,
    );
    assert!(e.contains("conflicting options"), "{e}");
    b.ok(&["stop", "-t", "0", "x1"]);
    let e = b.fails(
        &[
            "run",
            "--rm",
            "--network",
            "container:x1",
            "busybox",
            "true",
        ],
        125,
    );
    assert!(e.contains("non running"), "{e}");
    b.ok(&["rm", "-f", "x1"]);
}

#[test]
fn names_and_files() {
    let _g = shared();
    let b = Berth::with_busybox();
    let out = b.ok(&[
        "run",
        "--rm",
        "-h",
        "box1",
        "--domainname",
        "example.test",
        "--dns",
        "10.1.2.3",
        "--dns-search",
        "corp.test",
        "--dns-option",
        "ndots:2",
        "--add-host",
        "db:10.9.8.7",
        "--add-host",
        "gw:host-gateway",
        "busybox",
        "sh",
        "-c",
        "hostname; cat /proc/sys/kernel/domainname /etc/resolv.conf /etc/hosts",
    ]);
    assert!(out.starts_with("box1\nexample.test\n"), "{out}");
    assert!(out.contains("nameserver 10.1.2.3\n"), "{out}");
    assert!(out.contains("search corp.test\n"), "{out}");
    assert!(out.contains("options ndots:2\n"), "{out}");
    assert!(out.contains("10.9.8.7\tdb\n"), "{out}");
    let gw = gateway(&b, "bridge");
    assert!(out.contains(&format!("{gw}\tgw\n")), "{out}");
    // No loopback resolver of the host is copied into a namespace of its own.
    let out = b.ok(&["run", "--rm", "busybox", "cat", "/etc/resolv.conf"]);
    for l in out.lines().filter(|l| l.starts_with("nameserver")) {
        assert!(!l.contains(" 127."), "{out}");
    }
    // The host's network: the host's files.
    let out = b.ok(&[
        "run",
        "--rm",
        "--network",
        "host",
        "busybox",
        "cat",
        "/etc/resolv.conf",
    ]);
    assert_eq!(
        out,
        std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default()
    );
}

#[test]
fn fifty_concurrent_runs_get_fifty_addresses() {
    let _g = shared();
    let b = Berth::with_busybox();
    let handles: Vec<_> = (0..50)
        .map(|i| {
            let mut c = b.cmd(&[
                "run",
                "-d",
                "--name",
                &format!("c{i}"),
                "busybox",
                "sleep",
                "60",
            ]);
            std::thread::spawn(move || c.output().unwrap())
        })
        .collect();
    for h in handles {
        let out = h.join().unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let mut ips: Vec<String> = (0..50).map(|i| ip_of(&b, &format!("c{i}"))).collect();
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 50, "{ips:?}");
    let names: Vec<String> = (0..50).map(|i| format!("c{i}")).collect();
    let mut args = vec!["rm", "-f"];
    args.extend(names.iter().map(String::as_str));
    b.ok(&args);
    let n = network(&b, "bridge");
    assert_eq!(n["Containers"], serde_json::json!({}), "leases left");
}

#[test]
fn bad_network_input_is_refused_cleanly() {
    let _g = shared();
    let b = Berth::with_busybox();
    for bad in [
        "abc",
        "80:abc",
        "0:80",
        "70000:80",
        "80/sctpx",
        "1.2.3:80:80",
        "9000-9001:80-82",
    ] {
        let e = b.fails(&["run", "--rm", "-p", bad, "busybox", "true"], 125);
        let l = e.to_lowercase();
        assert!(
            l.contains("port") || l.contains("proto") || l.contains("ip"),
            "{bad}: {e}"
        );
    }
    let e = b.fails(
        &["run", "--rm", "--network", "nosuch", "busybox", "true"],
        125,
    );
    assert!(e.contains("network nosuch not found"), "{e}");
    let e = b.fails(
        &["run", "--rm", "--ip", "172.17.0.9", "busybox", "true"],
        125,
    );
    assert!(e.contains("user defined networks"), "{e}");
    let e = b.fails(
        &["run", "--rm", "--add-host", "nocolon", "busybox", "true"],
        125,
    );
    assert!(e.contains("add-host"), "{e}");
    let e = b.fails(
        &["run", "--rm", "--dns", "not-an-ip", "busybox", "true"],
        125,
    );
    assert!(e.contains("not-an-ip"), "{e}");
    b.ok(&["network", "create", "--subnet", "10.237.0.0/16", "n1"]);
    let e = b.fails(&["network", "create", "--subnet", "10.237.5.0/24", "n2"], 1);
    assert!(e.contains("overlaps"), "{e}");
    let e = b.fails(&["network", "create", "n1"], 1);
    assert!(e.contains("already exists"), "{e}");
    let e = b.fails(&["network", "create", "--subnet", "10.300.0.0/16", "n3"], 1);
    assert!(e.contains("subnet"), "{e}");
    let e = b.fails(
        &[
            "network",
            "create",
            "--subnet",
            "10.238.0.0/16",
            "--gateway",
            "10.9.0.1",
            "n3",
        ],
        1,
    );
    assert!(e.contains("gateway"), "{e}");
    let e = b.fails(&["network", "create", "-d", "overlay", "n3"], 1);
    assert!(e.contains("overlay"), "{e}");
    let e = b.fails(&["network", "create", "bad name"], 1);
    assert!(e.contains("invalid network name"), "{e}");
    for (opt, want) in [
        ("com.docker.network.driver.mtu=abc", "must be a number"),
        ("com.docker.network.driver.mtu=67", "between 68 and 65535"),
        ("mtu=70000", "between 68 and 65535"),
        (
            "com.docker.network.bridge.enable_icc=bogus",
            "failed to parse com.docker.network.bridge.enable_icc value: bogus",
        ),
        (
            "com.docker.network.bridge.nosuch=1",
            "unsupported network option",
        ),
    ] {
        let e = b.fails(&["network", "create", "-o", opt, "n4"], 1);
        assert!(e.contains(want), "{opt}: {e}");
    }
    let e = b.fails(&["network", "rm", "bridge"], 1);
    assert!(e.contains("pre-defined"), "{e}");
    // Docker's words (the docker_parity harness compares them).
    let e = b.fails(&["network", "rm", "nosuch"], 1);
    assert!(e.contains("No such network: nosuch"), "{e}");
    let e = b.fails(&["network", "inspect", "nosuch"], 1);
    assert!(e.contains("No such network: nosuch"), "{e}");
    // A taken --ip, and a host port already published.
    b.ok(&[
        "run",
        "-d",
        "--name",
        "a1",
        "--network",
        "n1",
        "--ip",
        "10.237.0.10",
        "busybox",
        "sleep",
        "60",
    ]);
    let e = b.fails(
        &[
            "run",
            "--rm",
            "--network",
            "n1",
            "--ip",
            "10.237.0.10",
            "busybox",
            "true",
        ],
        125,
    );
    assert!(e.contains("already in use"), "{e}");
    let e = b.fails(
        &[
            "run",
            "--rm",
            "--network",
            "n1",
            "--ip",
            "10.1.1.1",
            "busybox",
            "true",
        ],
        125,
    );
    assert!(e.contains("subnet"), "{e}");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = listener.local_addr().unwrap().port().to_string();
    let spec = format!("127.0.0.1:{taken}:80");
    let e = b.fails(
        &[
            "run", "-d", "--name", "clash", "-p", &spec, "busybox", "sleep", "60",
        ],
        125,
    );
    assert!(e.contains("already allocated"), "{e}");
    drop(listener);
    let e = b.fails(&["network", "rm", "n1"], 1);
    assert!(e.contains("active endpoints"), "{e}");
    // Nothing half-made: only `a1` and `clash` (created, never started) exist,
    // `clash` holds no port and n1 only `a1`'s lease.
    let ps = b.ok(&["ps", "-a", "--format", "{{.Names}}"]);
    let mut names: Vec<&str> = ps.lines().collect();
    names.sort();
    assert_eq!(names, vec!["a1", "clash"], "{ps}");
    assert_eq!(b.ok(&["port", "clash"]), "");
    assert_eq!(
        network(&b, "n1")["Containers"].as_object().unwrap().len(),
        1
    );
    b.ok(&["rm", "-f", "a1", "clash"]);
    b.ok(&["network", "rm", "n1"]);
}

fn host_links() -> Vec<String> {
    let out = Command::new("ip").args(["-o", "link"]).output().unwrap();
    let mut v: Vec<String> = text(&out.stdout)
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_owned())
        .collect();
    v.sort();
    v
}

fn host_state() -> (Vec<String>, Vec<String>, String) {
    let out = Command::new("ip").args(["-o", "addr"]).output().unwrap();
    let mut addrs: Vec<String> = text(&out.stdout)
        .lines()
        .map(|l| l.split_whitespace().take(4).collect::<Vec<_>>().join(" "))
        .collect();
    // (and the routes of both families, with the addresses)
    for family in ["-4", "-6"] {
        let out = Command::new("ip")
            .args([family, "route", "show", "table", "all"])
            .output()
            .unwrap();
        addrs.extend(text(&out.stdout).lines().map(|l| format!("route {l}")));
    }
    addrs.sort();
    let rules = Command::new("nft")
        .args(["list", "ruleset"])
        .output()
        .unwrap();
    // (counters of other tools' rules move while the test runs)
    let rules: Vec<String> = text(&rules.stdout)
        .lines()
        .map(|l| {
            let mut out = Vec::new();
            let mut words = l.split_whitespace();
            while let Some(w) = words.next() {
                if w == "packets" || w == "bytes" {
                    words.next();
                } else {
                    out.push(w);
                }
            }
            out.join(" ")
        })
        .collect();
    (host_links(), addrs, rules.join("\n"))
}

/// Everything berth made on the host goes when its containers and networks
/// do: links, addresses and nftables rules are exactly as before.
#[test]
fn the_host_is_left_as_it_was() {
    let _g = HOST.write().unwrap_or_else(|e| e.into_inner());
    let before = host_state();
    {
        let b = Berth::with_busybox();
        b.ok(&["network", "create", "u1"]);
        // enable_icc=false adds a bridge-family table: gone with the network.
        b.ok(&[
            "network",
            "create",
            "-o",
            "com.docker.network.bridge.enable_icc=false",
            "u2",
        ]);
        // A dual-stack network: its IPv6 addresses, routes and the ip6
        // table go with it.
        b.ok(&[
            "network",
            "create",
            "--ipv6",
            "--subnet",
            "fd00:b8::/64",
            "u3",
        ]);
        tcp_server(&b, &["--network", "u3", "-p", "80"], "w3", 80, "z");
        b.ok(&["rm", "-f", "w3"]);
        b.ok(&["network", "rm", "u3"]);
        tcp_server(&b, &["-p", "127.0.0.1::80"], "w1", 80, "x");
        tcp_server(
            &b,
            &["--network", "u1", "-P", "--expose", "81"],
            "w2",
            81,
            "y",
        );
        b.ok(&["run", "--rm", "--network", "none", "busybox", "true"]);
        b.ok(&[
            "run",
            "--rm",
            "--network",
            "container:w1",
            "busybox",
            "true",
        ]);
        b.ok(&["stop", "-t", "0", "w2"]);
        b.ok(&["start", "w2"]);
        b.ok(&[
            "run",
            "--rm",
            "--network",
            "u1",
            "--network",
            "u2",
            "busybox",
            "true",
        ]);
        b.ok(&["rm", "-f", "w1", "w2"]);
        b.ok(&["network", "rm", "u1", "u2"]);
        // The default bridge stays until the root is reset (as docker0 does).
        b.ok(&["system", "reset", "-f"]);
    }
    // The kernel dismantles a container's namespace, and its veth pair,
    // in the background once the namespace is unmounted.
    let mut after = host_state();
    wait_until(10, "the veths of removed namespaces to go", || {
        after = host_state();
        after.0 == before.0
    });
    assert_eq!(before.0, after.0, "links differ");
    assert_eq!(before.1, after.1, "addresses differ");
    assert_eq!(before.2, after.2, "nftables rules differ");
}

/// After a crash and reboot (processes, mounts, the run directory, the
/// bridge and the nftables table all gone), `ps` shows the truth and
/// `start` brings the bridge, its rules and the published port back.
#[test]
fn a_reboot_loses_bridges_and_rules_and_start_remakes_them() {
    let _g = shared();
    let b = Berth::with_busybox();
    tcp_server(&b, &["-p", "127.0.0.1::80"], "web", 80, "back-again");
    let ip = ip_of(&b, "web");
    let bridge = network(&b, "bridge")["Options"]["com.docker.network.bridge.name"]
        .as_str()
        .unwrap()
        .to_owned();
    let table = bridge.replace("berth-", "berth_");
    let v = container(&b, "web");
    let init = v["State"]["Pid"].as_i64().unwrap() as i32;
    let id = v["Id"].as_str().unwrap().to_owned();
    let mon: i32 = std::fs::read_to_string(
        b.root()
            .join("run/containers")
            .join(&id)
            .join("monitor.pid"),
    )
    .unwrap()
    .trim()
    .parse()
    .unwrap();
    for pid in [mon, init] {
        // SAFETY: kill(2) of processes this test started.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    wait_until(10, "monitor and init to die", || {
        !process_alive(mon) && !process_alive(init)
    });
    for m in mounts_mentioning(b.root()).iter().rev() {
        let c = std::ffi::CString::new(m.as_str()).unwrap();
        // SAFETY: a valid NUL-terminated path; MNT_DETACH only detaches it.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
    std::fs::remove_dir_all(b.root().join("run")).unwrap();
    assert!(Command::new("ip")
        .args(["link", "del", &bridge])
        .status()
        .unwrap()
        .success());
    assert!(Command::new("nft")
        .args(["delete", "table", "ip", &table])
        .status()
        .unwrap()
        .success());
    let ps = b.ok(&["ps", "-a", "--format", "{{.Names}} {{.State}}"]);
    assert_eq!(ps.trim(), "web exited", "{ps}");
    b.ok(&["start", "web"]);
    assert!(host_links().contains(&bridge), "the bridge was not remade");
    assert_eq!(ip_of(&b, "web"), ip, "the lease survives");
    let p = port2(&b, "web", "80");
    answers(&format!("127.0.0.1:{p}"), "back-again");
    b.ok(&["rm", "-f", "web"]);
}

/// Containers on a user network find each other by name, alias and short
/// ID through berth's resolver on the gateway; other networks' names stay
/// unknown; a rename and a stop are seen at once.
#[test]
fn user_networks_resolve_names() {
    let _g = shared();
    let b = Berth::with_busybox();
    b.ok(&["network", "create", "dnsnet"]);
    b.ok(&["network", "create", "othernet"]);
    let id = b.ok(&[
        "run",
        "-d",
        "--name",
        "db",
        "--network",
        "dnsnet",
        "--network-alias",
        "database",
        "busybox",
        "sleep",
        "60",
    ]);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "elsewhere",
        "--network",
        "othernet",
        "busybox",
        "sleep",
        "60",
    ]);
    let db_ip = ip_of(&b, "db");
    let gw = gateway(&b, "dnsnet");
    let lookup = |net: &str, name: &str| -> String {
        let out = b.run(&["run", "--rm", "--network", net, "busybox", "nslookup", name]);
        text(&out.stdout)
    };
    let out = b.ok(&[
        "run",
        "--rm",
        "--network",
        "dnsnet",
        "busybox",
        "cat",
        "/etc/resolv.conf",
    ]);
    assert!(out.contains(&format!("nameserver {gw}")), "{out}");
    for name in ["db", "database", "DB", "db.dnsnet", &id.trim()[..12]] {
        let out = lookup("dnsnet", name);
        assert!(out.contains(&format!("Address: {db_ip}")), "{name}: {out}");
    }
    // By name it reaches it too.
    let out = b.ok(&[
        "run",
        "--rm",
        "--network",
        "dnsnet",
        "busybox",
        "ping",
        "-c",
        "1",
        "-W",
        "2",
        "database",
    ]);
    assert!(out.contains(&db_ip), "{out}");
    // Another network does not see db, nor db elsewhere.
    assert!(!lookup("othernet", "db").contains(&db_ip));
    assert!(
        !lookup("dnsnet", "elsewhere").contains("Address: 1"),
        "leaked across networks"
    );
    b.ok(&["rename", "db", "store"]);
    assert!(lookup("dnsnet", "store").contains(&db_ip));
    b.ok(&["stop", "-t", "0", "store"]);
    wait_until(10, "a stopped container to leave the resolver", || {
        !lookup("dnsnet", "store").contains(&db_ip)
    });
    b.ok(&["rm", "-f", "store", "elsewhere"]);
    b.ok(&["network", "rm", "dnsnet", "othernet"]);
    // No resolver is left running for this root.
    let pid = b.root().join("run/dns/dns.pid");
    wait_until(10, "berth-dns to stop", || !pid.exists());
}
