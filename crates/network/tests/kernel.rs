//! The network manager against the real kernel: bridges, veth pairs in
//! persistent namespaces, addresses, routes, nftables; traffic checked with
//! busybox run inside the namespaces by nsenter. Only addresses of the
//! test's own bridge and namespaces are used.
#![allow(clippy::unwrap_used)]

use std::process::Command;

use berth_network::{netlink::Netlink, parse_publish, Manager, NetworkOptions, Want};

struct Root {
    dir: tempfile::TempDir,
}

impl Root {
    fn new() -> Root {
        Root {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn manager(&self) -> Manager {
        Manager::open(self.dir.path(), &self.dir.path().join("run")).unwrap()
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        let mut m = self.manager();
        let _ = m.remove_everything();
    }
}

fn in_ns(ns: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new("nsenter")
        .arg(format!("--net={}", ns.display()))
        .arg("busybox")
        .args(args)
        .output()
        .unwrap()
}

fn links() -> Vec<String> {
    let mut v: Vec<String> = Netlink::open()
        .unwrap()
        .links()
        .unwrap()
        .into_iter()
        .map(|l| l.name)
        .collect();
    v.sort();
    v
}

fn nft_tables() -> String {
    String::from_utf8(
        Command::new("nft")
            .args(["list", "tables"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
}

#[test]
fn default_bridge_connects_two_namespaces_and_cleans_up() {
    let before = links();
    let root = Root::new();
    let mut m = root.manager();
    let net = m.ensure_default().unwrap();
    assert_eq!(net.name, "bridge");
    assert!(
        links().contains(&net.bridge),
        "bridge {} missing",
        net.bridge
    );
    let a = m.connect("aaaa", &net, Want::default(), None, &[]).unwrap();
    let b = m.connect("bbbb", &net, Want::default(), None, &[]).unwrap();
    assert_ne!(a.ip, b.ip);
    assert_eq!(a.ip, net.subnet.hosts().nth(1).unwrap());
    let sa = m.setup("aaaa", &[]).unwrap();
    let sb = m
        .setup("bbbb", &parse_publish("127.0.0.1:18099:80").unwrap())
        .unwrap();
    assert_eq!(sb.ports.len(), 1);
    // lo and eth0 up, address, default route.
    let out = in_ns(&sa.netns, &["ip", "addr"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("inet {}/", a.ip)), "{text}");
    let out = in_ns(&sa.netns, &["ip", "route"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("default via {}", net.gateway)));
    // a → b and a → gateway.
    for dst in [b.ip.to_string(), net.gateway.to_string()] {
        let out = in_ns(&sa.netns, &["ping", "-c", "1", "-W", "2", &dst]);
        assert!(
            out.status.success(),
            "ping {dst}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    assert!(nft_tables().contains(m.table()));
    m.teardown("aaaa").unwrap();
    m.teardown("bbbb").unwrap();
    assert!(!sa.netns.exists());
    m.release("aaaa").unwrap();
    m.release("bbbb").unwrap();
    m.remove_everything().unwrap();
    // The kernel dismantles the namespaces, and their veths, in the background.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while links() != before && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(links(), before);
    assert!(!nft_tables().contains(m.table()));
}

#[test]
fn user_network_options_are_checked() {
    let root = Root::new();
    let mut m = root.manager();
    let o = |name: &str, subnet: Option<&str>| NetworkOptions {
        name: name.into(),
        subnet: subnet.map(|s| s.parse().unwrap()),
        ..Default::default()
    };
    let n = m
        .create_network(&o("front", Some("10.231.7.0/24")))
        .unwrap();
    assert_eq!(n.gateway.to_string(), "10.231.7.1");
    assert!(m.create_network(&o("front", None)).is_err());
    let e = m
        .create_network(&o("other", Some("10.231.0.0/16")))
        .unwrap_err();
    assert!(e.to_string().contains("overlaps"), "{e}");
    assert!(m.create_network(&o("bad name", None)).is_err());
    let ep = m.connect("cccc", &n, v4("10.231.7.50"), None, &[]).unwrap();
    assert_eq!(ep.ip.to_string(), "10.231.7.50");
    assert!(m.connect("dddd", &n, v4("10.231.7.50"), None, &[]).is_err());
    assert!(m.connect("dddd", &n, v4("10.9.9.9"), None, &[]).is_err());
    let e = m.remove_network("front").unwrap_err();
    assert!(e.to_string().contains("active endpoints"), "{e}");
    m.release("cccc").unwrap();
    m.remove_network("front").unwrap();
    assert!(!links().contains(&n.bridge));
}

fn v4(ip: &str) -> Want {
    Want {
        ip: Some(ip.parse().unwrap()),
        ..Want::default()
    }
}
