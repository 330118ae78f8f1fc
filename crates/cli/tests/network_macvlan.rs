//! The macvlan and ipvlan drivers against the real kernel, never on the
//! machine's NIC: each test makes its own "physical network", a veth pair
//! whose host end (in the host's namespace, where berth runs) is the
//! parent and whose other end sits in a namespace of the test's playing
//! another host of the LAN, on a subnet of its own (10.200-249.x.0/24) so
//! that tests run in parallel. Kernels without ipvlan, 802.1q or dummy
//! links skip the tests that need them (saying so).
#![allow(clippy::unwrap_used)]

#[path = "common/api.rs"]
mod api;
mod common;

use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use common::*;
use serde_json::Value;

fn sh(args: &[&str]) -> Output {
    Command::new(args[0]).args(&args[1..]).output().unwrap()
}

fn sh_ok(args: &[&str]) -> String {
    let out = sh(args);
    assert!(out.status.success(), "{}", describe(args, &out));
    text(&out.stdout)
}

/// A unique number per test of this process.
fn unique() -> u32 {
    static N: AtomicU32 = AtomicU32::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let mut h = (std::process::id() as u64) << 32 | u64::from(t);
    h = h.wrapping_add(u64::from(N.fetch_add(1, Ordering::SeqCst)) * 0x9E37_79B9);
    h ^= h >> 29;
    h = h.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    (h >> 32) as u32
}

/// The test's LAN: `parent` in the host's namespace, its peer in the
/// namespace `netns` with `PREFIX.1/24`. Removed on drop, whatever happened.
struct Lan {
    parent: String,
    netns: String,
    prefix: String,
    servers: Vec<Child>,
}

impl Lan {
    fn new() -> Lan {
        let u = unique();
        let tag = format!("{:06x}", u & 0xff_ffff);
        let prefix = format!("10.{}.{}", 200 + (u >> 24) % 50, (u >> 8) & 0xff);
        let lan = Lan {
            parent: format!("bmv{tag}"),
            netns: format!("bmvlan{tag}"),
            prefix,
            servers: Vec::new(),
        };
        let peer = format!("{}p", lan.parent);
        sh_ok(&["ip", "netns", "add", &lan.netns]);
        sh_ok(&[
            "ip",
            "link",
            "add",
            &lan.parent,
            "type",
            "veth",
            "peer",
            "name",
            &peer,
        ]);
        sh_ok(&["ip", "link", "set", &peer, "netns", &lan.netns]);
        sh_ok(&["ip", "link", "set", &lan.parent, "up"]);
        let addr = format!("{}.1/24", lan.prefix);
        lan.exec(&["ip", "addr", "add", &addr, "dev", &peer]);
        lan.exec(&["ip", "link", "set", &peer, "up"]);
        lan.exec(&["ip", "link", "set", "lo", "up"]);
        lan
    }

    fn subnet(&self) -> String {
        format!("{}.0/24", self.prefix)
    }

    fn host(&self) -> String {
        format!("{}.1", self.prefix)
    }

    fn exec(&self, args: &[&str]) -> String {
        let mut all = vec!["ip", "netns", "exec", &self.netns];
        all.extend_from_slice(args);
        sh_ok(&all)
    }

    /// A busybox httpd on the LAN host, port 8080, serving `body`.
    fn serve(&mut self, body: &str, scratch: &std::path::Path) {
        let dir = scratch.join(format!("www-{}", self.netns));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("index.html"), body).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.netns, "busybox", "httpd", "-f", "-p"])
            .arg("8080")
            .arg("-h")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.servers.push(child);
        let ns = self.netns.clone();
        wait_until(10, "the LAN host's httpd", || {
            let out = sh(&["ip", "netns", "exec", &ns, "busybox", "netstat", "-ltn"]);
            text(&out.stdout).contains(":8080")
        });
    }

    /// Links of the host whose parent is the LAN's link (`NAME@PARENT`).
    /// The parent's promiscuity: a macvlan port holds one while the parent
    /// has macvlan children, in whatever namespace they are.
    fn promiscuity(&self) -> u32 {
        let out = sh_ok(&["ip", "-d", "link", "show", &self.parent]);
        let mut w = out.split_whitespace();
        while let Some(x) = w.next() {
            if x == "promiscuity" {
                return w.next().unwrap().parse().unwrap();
            }
        }
        panic!("no promiscuity in {out}")
    }

    fn host_children(&self) -> Vec<String> {
        sh_ok(&["ip", "-o", "link"])
            .lines()
            .filter(|l| l.contains(&format!("@{}:", self.parent)))
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for c in &mut self.servers {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = sh(&["ip", "link", "del", &self.parent]);
        let _ = sh(&["ip", "netns", "del", &self.netns]);
    }
}

/// Whether the kernel makes links of `kind` on a parent (a throwaway veth).
fn kernel_has(kind: &str) -> bool {
    let u = unique();
    let a = format!("bmk{:06x}", u & 0xff_ffff);
    let b = format!("{a}p");
    if !sh(&["ip", "link", "add", &a, "type", "veth", "peer", "name", &b])
        .status
        .success()
    {
        return false;
    }
    let sub = format!("{a}s");
    let ok = match kind {
        "vlan" => sh(&[
            "ip", "link", "add", "link", &a, "name", &sub, "type", "vlan", "id", "7",
        ]),
        "dummy" => sh(&["ip", "link", "add", &sub, "type", "dummy"]),
        k => sh(&["ip", "link", "add", "link", &a, "name", &sub, "type", k]),
    }
    .status
    .success();
    let _ = sh(&["ip", "link", "del", &sub]);
    let _ = sh(&["ip", "link", "del", &a]);
    if !ok {
        eprintln!("skipped: this kernel has no {kind} links");
    }
    ok
}

/// `GET /` from the LAN host's httpd, from inside container `c` (with
/// nc: the test image's wget is not to be relied on).
fn fetch(b: &Berth, c: &str, host: &str) -> String {
    let script = format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 {host} 8080");
    b.ok(&["exec", c, "sh", "-c", &script])
}

fn inspect(b: &Berth, args: &[&str]) -> Value {
    let v: Value = serde_json::from_str(&b.ok(args)).unwrap();
    v[0].clone()
}

fn endpoint(b: &Berth, c: &str, net: &str) -> Value {
    inspect(b, &["inspect", c])["NetworkSettings"]["Networks"][net].clone()
}

/// Two containers on a `driver` network of the LAN: addresses of the
/// subnet, the LAN host reached, each other reached by name and alias,
/// nothing reached on the default bridge; afterwards nothing of theirs on
/// the host.
fn two_containers_on_the_lan(driver: &str, opts: &[&str]) {
    let mut lan = Lan::new();
    let b = Berth::with_busybox();
    lan.serve("hello from the lan\n", &b.scratch());
    let parent = format!("parent={}", lan.parent);
    let (subnet, gw) = (lan.subnet(), lan.host());
    let mut args = vec![
        "network",
        "create",
        "-d",
        driver,
        "-o",
        &parent,
        "--subnet",
        &subnet,
        "--gateway",
        &gw,
    ];
    for o in opts {
        args.extend(["-o", o]);
    }
    args.push("lan");
    b.ok(&args);
    let n = inspect(&b, &["network", "inspect", "lan"]);
    assert_eq!(n["Driver"], driver);
    assert_eq!(n["Options"]["parent"], lan.parent.as_str());
    assert_eq!(n["IPAM"]["Config"][0]["Subnet"], subnet.as_str());
    assert!(b
        .ok(&["network", "ls"])
        .lines()
        .any(|l| l.contains(" lan ") && l.contains(driver)));

    b.ok(&[
        "run",
        "-d",
        "--name",
        "c1",
        "--network",
        "lan",
        "busybox",
        "sleep",
        "300",
    ]);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "c2",
        "--network",
        "lan",
        "--network-alias",
        "db",
        "busybox",
        "sleep",
        "300",
    ]);
    b.ok(&["run", "-d", "--name", "other", "busybox", "sleep", "300"]);
    let ip1 = endpoint(&b, "c1", "lan")["IPAddress"]
        .as_str()
        .unwrap()
        .to_owned();
    let ip2 = endpoint(&b, "c2", "lan")["IPAddress"]
        .as_str()
        .unwrap()
        .to_owned();
    for ip in [&ip1, &ip2] {
        assert!(ip.starts_with(&format!("{}.", lan.prefix)), "{ip}");
    }
    let e1 = endpoint(&b, "c1", "lan");
    assert_eq!(e1["Gateway"], gw.as_str());
    let out = b.ok(&["exec", "c1", "ip", "-o", "link", "show", "eth0"]);
    if driver == "macvlan" {
        // Its own MAC, Docker's 02:42 and the address; not the parent's.
        let want = e1["MacAddress"].as_str().unwrap();
        assert!(want.starts_with("02:42:"), "{want}");
        assert!(out.contains(want), "{out}");
    }
    // The LAN host, by address, through the parent.
    let page = fetch(&b, "c1", &gw);
    assert!(page.ends_with("hello from the lan\n"), "{page}");
    // Each other, by name, alias and short ID.
    b.ok(&["exec", "c1", "ping", "-c", "1", "-W", "3", "c2"]);
    b.ok(&["exec", "c1", "ping", "-c", "1", "-W", "3", "db"]);
    b.ok(&["exec", "c2", "ping", "-c", "1", "-W", "3", "c1"]);
    let hosts = b.ok(&["exec", "c1", "cat", "/etc/hosts"]);
    assert!(hosts.contains(&format!("{ip2}\tc2 db")), "{hosts}");
    // The LAN host sees c1 at its address.
    lan.exec(&["busybox", "ping", "-c", "1", "-W", "3", &ip1]);
    // Nothing of the default bridge.
    let other = inspect(&b, &["inspect", "other"])["NetworkSettings"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = b.run(&["exec", "c1", "ping", "-c", "1", "-W", "1", &other]);
    assert!(!out.status.success(), "{}", text(&out.stdout));
    // Published ports are ignored on these drivers, as Docker does.
    b.ok(&[
        "run",
        "-d",
        "--name",
        "pub",
        "-p",
        "18089:80",
        "--network",
        "lan",
        "busybox",
        "sleep",
        "300",
    ]);
    assert_eq!(b.ok(&["port", "pub"]).trim(), "");
    // A stopped container leaves the others' /etc/hosts.
    b.ok(&["rm", "-f", "c2"]);
    let hosts = b.ok(&["exec", "c1", "cat", "/etc/hosts"]);
    assert!(!hosts.contains("\tc2 db"), "{hosts}");
    if driver == "macvlan" {
        assert!(lan.promiscuity() >= 1);
    }
    b.ok(&["rm", "-f", "c1", "pub", "other"]);
    b.ok(&["network", "rm", "lan"]);
    assert_eq!(lan.host_children(), Vec::<String>::new());
    // Every sub-interface gone (the kernel dismantles the namespaces in the
    // background): the parent has no macvlan port left.
    wait_until(20, "the parent's sub-interfaces to go", || {
        lan.promiscuity() == 0
    });
    assert!(
        sh(&["ip", "link", "show", &lan.parent]).status.success(),
        "the parent stays"
    );
}

#[test]
fn macvlan_containers_reach_the_lan_and_each_other() {
    two_containers_on_the_lan("macvlan", &[]);
}

#[test]
fn macvlan_private_mode() {
    // (private: no traffic between the children, the LAN host still answers)
    let mut lan = Lan::new();
    let b = Berth::with_busybox();
    lan.serve("private\n", &b.scratch());
    let parent = format!("parent={}", lan.parent);
    b.ok(&[
        "network",
        "create",
        "-d",
        "macvlan",
        "-o",
        &parent,
        "-o",
        "macvlan_mode=private",
        "--subnet",
        &lan.subnet(),
        "--gateway",
        &lan.host(),
        "priv",
    ]);
    let n = inspect(&b, &["network", "inspect", "priv"]);
    assert_eq!(n["Options"]["macvlan_mode"], "private");
    b.ok(&[
        "run",
        "-d",
        "--name",
        "p1",
        "--network",
        "priv",
        "busybox",
        "sleep",
        "300",
    ]);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "p2",
        "--network",
        "priv",
        "busybox",
        "sleep",
        "300",
    ]);
    let page = fetch(&b, "p1", &lan.host());
    assert!(page.ends_with("private\n"), "{page}");
    let out = b.run(&["exec", "p1", "ping", "-c", "1", "-W", "1", "p2"]);
    assert!(
        !out.status.success(),
        "private mode isolates: {}",
        text(&out.stdout)
    );
    b.ok(&["rm", "-f", "p1", "p2"]);
    b.ok(&["network", "rm", "priv"]);
}

#[test]
fn ipvlan_l2_containers_reach_the_lan_and_each_other() {
    if !kernel_has("ipvlan") {
        return;
    }
    two_containers_on_the_lan("ipvlan", &["ipvlan_mode=l2"]);
}

#[test]
fn a_dotted_parent_is_made_and_removed_with_the_network() {
    if !kernel_has("vlan") {
        return;
    }
    let lan = Lan::new();
    let b = Berth::with_busybox();
    let vlan = format!("{}.10", lan.parent);
    let parent = format!("parent={vlan}");
    b.ok(&[
        "network",
        "create",
        "-d",
        "macvlan",
        "-o",
        &parent,
        "--subnet",
        "10.199.10.0/24",
        "v10",
    ]);
    assert!(sh(&["ip", "link", "show", &vlan]).status.success());
    b.ok(&[
        "run",
        "--rm",
        "--network",
        "v10",
        "busybox",
        "ip",
        "addr",
        "show",
        "eth0",
    ]);
    b.ok(&["network", "rm", "v10"]);
    assert!(
        !sh(&["ip", "link", "show", &vlan]).status.success(),
        "{vlan} left"
    );
    // One the host had already stays.
    sh_ok(&[
        "ip",
        "link",
        "add",
        "link",
        &lan.parent,
        "name",
        &vlan,
        "type",
        "vlan",
        "id",
        "10",
    ]);
    b.ok(&[
        "network",
        "create",
        "-d",
        "macvlan",
        "-o",
        &parent,
        "--subnet",
        "10.199.10.0/24",
        "v10",
    ]);
    b.ok(&["network", "rm", "v10"]);
    assert!(
        sh(&["ip", "link", "show", &vlan]).status.success(),
        "{vlan} removed"
    );
}

#[test]
fn an_internal_network_without_a_parent_gets_a_dummy() {
    if !kernel_has("dummy") {
        return;
    }
    let b = Berth::with_busybox();
    let id = b
        .ok(&[
            "network",
            "create",
            "-d",
            "macvlan",
            "--internal",
            "--subnet",
            "10.199.11.0/24",
            "int",
        ])
        .trim()
        .to_owned();
    let dummy = format!("dm-{}", &id[..12]);
    assert!(sh(&["ip", "link", "show", &dummy]).status.success());
    let routes = b.ok(&["run", "--rm", "--network", "int", "busybox", "ip", "route"]);
    assert!(!routes.contains("default"), "{routes}");
    b.ok(&["network", "rm", "int"]);
    assert!(!sh(&["ip", "link", "show", &dummy]).status.success());
}

/// IPv6 on macvlan (`--ipv6 --subnet fd…::/64`): containers get an
/// address of the subnet (or their `--ip6`), a default route via the
/// IPv6 gateway (the LAN's router), inspect's IPv6 fields; they reach the
/// LAN host and each other over IPv6, by name through AAAA records, and
/// the LAN host reaches them. Nothing is left on the host.
#[test]
fn macvlan_containers_have_ipv6() {
    let lan = Lan::new();
    let b = Berth::with_busybox();
    let u = unique();
    let sub6 = format!("fd00:{:x}:{:x}::", u >> 16, u & 0xffff);
    let host6 = format!("{sub6}1");
    let peer = format!("{}p", lan.parent);
    let addr = format!("{host6}/64");
    lan.exec(&["ip", "-6", "addr", "add", &addr, "dev", &peer, "nodad"]);
    let parent = format!("parent={}", lan.parent);
    let (subnet, gw) = (lan.subnet(), lan.host());
    let subnet6 = format!("{sub6}/64");
    b.ok(&[
        "network",
        "create",
        "-d",
        "macvlan",
        "-o",
        &parent,
        "--subnet",
        &subnet,
        "--gateway",
        &gw,
        "--ipv6",
        "--subnet",
        &subnet6,
        "--gateway",
        &host6,
        "lan6",
    ]);
    let n = inspect(&b, &["network", "inspect", "lan6"]);
    assert_eq!(n["EnableIPv6"], true, "{n}");
    assert_eq!(n["IPAM"]["Config"][1]["Subnet"], subnet6.as_str(), "{n}");
    let fixed = format!("{sub6}20");
    b.ok(&[
        "run",
        "-d",
        "--name",
        "c1",
        "--network",
        "lan6",
        "busybox",
        "sleep",
        "300",
    ]);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "c2",
        "--network",
        "lan6",
        "--ip6",
        &fixed,
        "busybox",
        "sleep",
        "300",
    ]);
    let e1 = endpoint(&b, "c1", "lan6");
    let ip1 = e1["GlobalIPv6Address"].as_str().unwrap().to_owned();
    assert!(ip1.starts_with(&sub6) && ip1 != host6, "{e1}");
    assert_eq!(e1["GlobalIPv6PrefixLen"], 64, "{e1}");
    assert_eq!(e1["IPv6Gateway"], host6.as_str(), "{e1}");
    assert_eq!(
        endpoint(&b, "c2", "lan6")["GlobalIPv6Address"],
        fixed.as_str()
    );
    let addrs = b.ok(&["exec", "c1", "ip", "-6", "addr", "show", "eth0"]);
    assert!(addrs.contains(&format!("{ip1}/64")), "{addrs}");
    let routes = b.ok(&["exec", "c1", "ip", "-6", "route"]);
    assert!(routes.contains(&format!("default via {host6}")), "{routes}");
    // The LAN host both ways, and each other by name (AAAA).
    b.ok(&["exec", "c1", "ping", "-6", "-c", "1", "-W", "3", &host6]);
    lan.exec(&["busybox", "ping", "-6", "-c", "1", "-W", "3", &ip1]);
    lan.exec(&["busybox", "ping", "-6", "-c", "1", "-W", "3", &fixed]);
    b.ok(&["exec", "c1", "ping", "-6", "-c", "1", "-W", "3", "c2"]);
    b.ok(&["exec", "c2", "ping", "-6", "-c", "1", "-W", "3", "c1"]);
    let hosts = b.ok(&["exec", "c1", "cat", "/etc/hosts"]);
    assert!(hosts.contains(&ip1), "{hosts}");
    b.ok(&["rm", "-f", "c1", "c2"]);
    b.ok(&["network", "rm", "lan6"]);
    assert_eq!(lan.host_children(), Vec::<String>::new());
    wait_until(20, "the parent's sub-interfaces to go", || {
        lan.promiscuity() == 0
    });
}

#[test]
fn bad_input_is_refused_and_nothing_is_made() {
    let lan = Lan::new();
    let b = Berth::with_busybox();
    let parent = format!("parent={}", lan.parent);
    let subnet = lan.subnet();
    let count = |b: &Berth| b.ok(&["network", "ls", "-q"]).lines().count();
    let before = count(&b);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["-d", "macvlan", "-o", "parent=bmvnosuch", "--subnet", &subnet],
            "invalid subinterface vlan name bmvnosuch, example formatting is eth0.10",
        ),
        (
            vec!["-d", "macvlan", "-o", "parent=bmvnosuch.10", "--subnet", &subnet],
            "-o parent interface was not found on the host: bmvnosuch",
        ),
        (
            vec!["-d", "macvlan", "-o", "parent=lo", "--subnet", &subnet],
            "loopback interface is not a valid macvlan parent link",
        ),
        (
            vec!["-d", "macvlan", "-o", &parent, "-o", "macvlan_mode=bogus", "--subnet", &subnet],
            "requested macvlan mode 'bogus' is not valid, 'bridge' mode is the macvlan driver default",
        ),
        (
            vec!["-d", "ipvlan", "-o", &parent, "-o", "ipvlan_mode=bogus", "--subnet", &subnet],
            "requested ipvlan mode 'bogus' is not valid, 'l2' mode is the ipvlan driver default",
        ),
        (
            vec!["-d", "ipvlan", "-o", &parent, "-o", "ipvlan_flag=bogus", "--subnet", &subnet],
            "requested ipvlan flag 'bogus' is not valid, 'bridge' is the ipvlan driver default",
        ),
        (vec!["-d", "unknowndriver"], "plugin \"unknowndriver\" not found"),
    ];
    for (args, want) in &cases {
        let mut all = vec!["network", "create"];
        all.extend(args);
        all.push("bad");
        let err = b.fails(&all, 1);
        assert!(err.contains(want), "{all:?}: {err}");
    }
    assert_eq!(count(&b), before);
    assert!(!sh(&["ip", "link", "show", "bmvnosuch.10"]).status.success());
    // A parent that is down, and the base of a VLAN parent that is down.
    sh_ok(&["ip", "link", "set", &lan.parent, "down"]);
    let vlan = format!("parent={}.42", lan.parent);
    for (opt, down) in [(&parent, &lan.parent), (&vlan, &lan.parent)] {
        let err = b.fails(
            &[
                "network", "create", "-d", "macvlan", "-o", opt, "--subnet", &subnet, "bad",
            ],
            1,
        );
        assert!(
            err.contains(&format!("-o parent interface {down} is down")),
            "{opt}: {err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
    assert!(!sh(&["ip", "link", "show", &format!("{}.42", lan.parent)])
        .status
        .success());
    sh_ok(&["ip", "link", "set", &lan.parent, "up"]);
    assert_eq!(count(&b), before);
    // One network per parent (Docker's rule), whatever the mode or subnet.
    b.ok(&[
        "network", "create", "-d", "macvlan", "-o", &parent, "--subnet", &subnet, "first",
    ]);
    for mode in ["macvlan_mode=bridge", "macvlan_mode=private"] {
        let err = b.fails(
            &[
                "network",
                "create",
                "-d",
                "macvlan",
                "-o",
                &parent,
                "-o",
                mode,
                "--subnet",
                "10.199.12.0/24",
                "second",
            ],
            1,
        );
        assert!(
            err.contains(&format!("is already using parent interface {}", lan.parent)),
            "{err}"
        );
    }
    // An overlapping subnet on another parent.
    let other = Lan::new();
    let p2 = format!("parent={}", other.parent);
    let err = b.fails(
        &[
            "network", "create", "-d", "macvlan", "-o", &p2, "--subnet", &subnet, "third",
        ],
        1,
    );
    assert!(
        err.contains("Pool overlaps with other one on this address space"),
        "{err}"
    );
    assert_eq!(count(&b), before + 1);
    b.ok(&["network", "rm", "first"]);
    assert_eq!(count(&b), before);
    // An ipvlan has its parent's MAC (made at create: no ipvlan link needed).
    b.ok(&[
        "network", "create", "-d", "ipvlan", "-o", &parent, "--subnet", &subnet, "iv",
    ]);
    let err = b.fails(
        &[
            "create",
            "--network",
            "iv",
            "--mac-address",
            "02:42:0a:00:00:09",
            "busybox",
            "true",
        ],
        1,
    );
    assert!(
        err.contains("ipvlan interfaces do not support custom mac address assignment"),
        "{err}"
    );
    assert_eq!(b.ok(&["ps", "-aq"]).trim(), "");
    b.ok(&["network", "rm", "iv"]);
    assert_eq!(lan.host_children(), Vec::<String>::new());
}

/// Docker's known limit, and berth's remedy: without a shim the host has
/// no way to a macvlan container; with `-o berth.macvlan_host_shim=true`
/// it reaches it through a macvlan of its own, removed with the network.
#[test]
fn the_host_reaches_its_macvlan_containers_through_a_shim() {
    let lan = Lan::new();
    let b = Berth::with_busybox();
    let parent = format!("parent={}", lan.parent);
    let range = format!("{}.64/26", lan.prefix);
    // Only a bridge-mode macvlan network can have one.
    let err = b.fails(
        &[
            "network",
            "create",
            "-d",
            "macvlan",
            "-o",
            &parent,
            "-o",
            "macvlan_mode=private",
            "-o",
            "berth.macvlan_host_shim=true",
            "nope",
        ],
        1,
    );
    assert!(
        err.contains("berth.macvlan_host_shim needs a macvlan network in bridge mode"),
        "{err}"
    );
    let id = b
        .ok(&[
            "network",
            "create",
            "-d",
            "macvlan",
            "-o",
            &parent,
            "-o",
            "berth.macvlan_host_shim=true",
            "--subnet",
            &lan.subnet(),
            "--ip-range",
            &range,
            "shimmed",
        ])
        .trim()
        .to_owned();
    let shim = format!("bms-{}", &id[..11]);
    assert!(sh(&["ip", "link", "show", &shim]).status.success());
    let n = inspect(&b, &["network", "inspect", "shimmed"]);
    let shim_ip = format!("{}.254", lan.prefix);
    assert_eq!(
        n["IPAM"]["Config"][0]["AuxiliaryAddresses"]["berth-host-shim"],
        shim_ip.as_str()
    );
    b.ok(&[
        "run",
        "-d",
        "--name",
        "s1",
        "--network",
        "shimmed",
        "busybox",
        "sleep",
        "300",
    ]);
    let ip = endpoint(&b, "s1", "shimmed")["IPAddress"]
        .as_str()
        .unwrap()
        .to_owned();
    sh_ok(&["busybox", "ping", "-c", "1", "-W", "3", &ip]);
    b.ok(&["exec", "s1", "ping", "-c", "1", "-W", "3", &shim_ip]);
    b.ok(&["rm", "-f", "s1"]);
    b.ok(&["network", "rm", "shimmed"]);
    assert!(
        !sh(&["ip", "link", "show", &shim]).status.success(),
        "{shim} left"
    );
}

/// A container started right after another one left gets its address,
/// so its MAC, while the kernel may still be dismantling the other's
/// namespace and macvlan (`run --rm` after `run --rm`): here that
/// namespace is held open for a moment, and the new container must wait
/// for the old macvlan to go rather than fail with EADDRINUSE.
#[test]
fn a_new_container_waits_for_the_old_holder_of_its_mac() {
    let lan = Lan::new();
    let b = Berth::with_busybox();
    let parent = format!("parent={}", lan.parent);
    b.ok(&[
        "network",
        "create",
        "-d",
        "macvlan",
        "-o",
        &parent,
        "--subnet",
        &lan.subnet(),
        "rr",
    ]);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "old",
        "--network",
        "rr",
        "busybox",
        "sleep",
        "300",
    ]);
    let old_ip = endpoint(&b, "old", "rr")["IPAddress"]
        .as_str()
        .unwrap()
        .to_owned();
    let key = inspect(&b, &["inspect", "old"])["NetworkSettings"]["SandboxKey"]
        .as_str()
        .unwrap()
        .to_owned();
    let held = std::fs::File::open(&key).unwrap();
    b.ok(&["rm", "-f", "old"]);
    let release = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(500));
        drop(held);
    });
    let out = b.ok(&[
        "run",
        "--rm",
        "--network",
        "rr",
        "busybox",
        "ip",
        "-o",
        "addr",
        "show",
        "eth0",
    ]);
    assert!(out.contains(&format!("inet {old_ip}/")), "{out}");
    release.join().unwrap();
    b.ok(&["network", "rm", "rr"]);
}

/// The Engine API creates macvlan networks too (it answered `plugin
/// "macvlan" not found`): a raw create with the parent, a mode, an IPAM
/// config with an auxiliary address, then `docker` 28 runs a container on
/// it that gets a lease (never the auxiliary address) and reaches the LAN
/// host; inspect shows the options given. A bogus mode is 400 and makes
/// nothing.
#[test]
fn the_api_creates_macvlan_networks() {
    let lan = Lan::new();
    let (_b, s) = api::busybox_service();
    let aux = format!("{}.2", lan.prefix);
    let body = format!(
        r#"{{"Name":"amv","Driver":"macvlan","Options":{{"parent":"{}","macvlan_mode":"bridge"}},
            "IPAM":{{"Config":[{{"Subnet":"{}","Gateway":"{}","AuxiliaryAddresses":{{"host":"{aux}"}}}}]}}}}"#,
        lan.parent,
        lan.subnet(),
        lan.host()
    );
    let (code, out) = s.call("POST", "/v1.44/networks/create", body.as_bytes());
    assert_eq!(code, 201, "{out}");
    let bad = format!(
        r#"{{"Name":"amv2","Driver":"macvlan","Options":{{"parent":"{}","macvlan_mode":"bogus"}}}}"#,
        lan.parent
    );
    let (code, out) = s.call("POST", "/v1.44/networks/create", bad.as_bytes());
    assert_eq!(code, 400, "{out}");
    assert!(
        out.contains("requested macvlan mode 'bogus' is not valid"),
        "{out}"
    );
    let (code, out) = s.call("GET", "/v1.44/networks/amv", b"");
    assert_eq!(code, 200, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["Driver"], "macvlan");
    assert_eq!(v["Options"]["parent"], lan.parent.as_str());
    assert_eq!(v["Options"]["macvlan_mode"], "bridge");
    assert_eq!(
        v["IPAM"]["Config"][0]["AuxiliaryAddresses"]["host"],
        aux.as_str()
    );
    let out = s.docker(&[
        "run",
        "--rm",
        "--network",
        "amv",
        "busybox",
        "sh",
        "-c",
        &format!("ip -4 -o addr show eth0; ping -c 1 -W 5 {}", lan.host()),
    ]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains(&format!("inet {}.", lan.prefix)), "{text}");
    assert!(!text.contains(&format!("inet {aux}/")), "{text}");
    assert!(text.contains(" 0% packet loss"), "{text}");
    let (code, out) = s.call("DELETE", "/v1.44/networks/amv", b"");
    assert_eq!(code, 204, "{out}");
    let (_, out) = s.call("GET", "/v1.44/networks", b"");
    assert!(!out.contains("amv"), "{out}");
    assert_eq!(lan.promiscuity(), 0);
}
