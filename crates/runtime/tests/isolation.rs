//! Namespaces: uts, net, ipc, mount, joining another container's
//! namespaces, and a user namespace with id mappings.
#![allow(clippy::unwrap_used)]

mod common;

use common::{mounts_mentioning, ns_of, proc_status, Ctr, Rt};
use serde_json::{json, Value};

fn host_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_owned()
}

#[test]
fn uts_hostname_from_spec() {
    let rt = Rt::new();
    let name = common::unique("iso");
    assert_ne!(name, host_hostname());
    let mut c = Ctr::sh(&rt, "hostname; readlink /proc/self/ns/uts");
    c.edit(|s| {
        s.set_hostname(Some(name.clone()));
    });
    let out = rt.run(&c);
    let lines: Vec<String> = out.ok().lines().map(str::to_owned).collect();
    assert_eq!(lines[0], name, "{out:#?}");
    assert_ne!(lines[1], ns_of("self", "uts"), "{out:#?}");
    assert_ne!(host_hostname(), name, "the host's hostname changed");
    c.finish();
    rt.assert_empty();
}

#[test]
fn net_namespace_has_only_lo() {
    let rt = Rt::new();
    let c = Ctr::sh(
        &rt,
        "ls /sys/class/net; echo ---; tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '; echo ---; readlink /proc/self/ns/net",
    );
    let out = rt.run(&c);
    let parts: Vec<&str> = out.ok().split("---\n").collect();
    assert_eq!(parts[0], "lo\n", "{out:#?}");
    assert_eq!(parts[1], "lo\n", "{out:#?}");
    assert_ne!(parts[2].trim(), ns_of("self", "net"), "{out:#?}");
    c.finish();
    rt.assert_empty();
}

#[test]
fn ipc_namespace_is_private() {
    let rt = Rt::new();
    let c = Ctr::sh(
        &rt,
        "readlink /proc/self/ns/ipc; cat /proc/sys/kernel/shm_next_id 2>/dev/null; wc -l < /proc/sysvipc/shm",
    );
    let out = rt.run(&c);
    let lines: Vec<&str> = out.ok().lines().collect();
    assert!(lines[0].starts_with("ipc:["), "{out:#?}");
    assert_ne!(lines[0], ns_of("self", "ipc"), "{out:#?}");
    // A fresh ipc namespace has no shared memory segments: only the header.
    assert_eq!(lines.last().unwrap().trim(), "1", "{out:#?}");
    c.finish();
    rt.assert_empty();
}

#[test]
fn mounts_stay_in_the_container() {
    let rt = Rt::new();
    let mut c = Ctr::sh(&rt, "grep ' /inside ' /proc/self/mounts; exec sleep 1000");
    c.edit_json(|v| {
        v["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/inside",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["size=1m"]
        }));
    });
    rt.run_detached(&c).ok();
    let out = c.wait_output("/inside");
    assert!(out.contains("tmpfs /inside tmpfs"), "{out}");
    let pid = rt.pid(&c.id);
    assert_ne!(ns_of(&pid.to_string(), "mnt"), ns_of("self", "mnt"));
    // The container's mount table has it; the host's has nothing of the
    // container (not the tmpfs, not the rootfs bind, not /proc).
    let theirs = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    assert!(theirs.contains(" /inside "), "{theirs}");
    let ours = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!ours.contains("/inside"), "{ours}");
    assert!(mounts_mentioning(c.bundle.path()).is_empty(), "{ours}");
    c.finish();
    rt.assert_empty();
}

#[test]
fn join_another_containers_namespaces() {
    let rt = Rt::new();
    let mut first = Ctr::new(&rt, &["sleep", "1000"]);
    first.edit(|s| {
        s.set_hostname(Some("first-host".into()));
    });
    rt.run_detached(&first).ok();
    let pid = rt.pid(&first.id);

    let mut second = Ctr::sh(
        &rt,
        "hostname; readlink /proc/self/ns/net; readlink /proc/self/ns/uts; readlink /proc/self/ns/ipc",
    );
    second.edit_json(|v| {
        v["hostname"] = Value::Null;
        for ns in v["linux"]["namespaces"].as_array_mut().unwrap() {
            let name = match ns["type"].as_str().unwrap() {
                "network" => "net",
                "uts" => "uts",
                "ipc" => "ipc",
                _ => continue,
            };
            ns["path"] = json!(format!("/proc/{pid}/ns/{name}"));
        }
    });
    let out = rt.run(&second);
    let lines: Vec<&str> = out.ok().lines().collect();
    let p = pid.to_string();
    assert_eq!(lines[0], "first-host", "{out:#?}");
    assert_eq!(lines[1], ns_of(&p, "net"), "{out:#?}");
    assert_eq!(lines[2], ns_of(&p, "uts"), "{out:#?}");
    assert_eq!(lines[3], ns_of(&p, "ipc"), "{out:#?}");
    assert_ne!(lines[1], ns_of("self", "net"));
    second.finish();
    // The first container is unharmed.
    assert_eq!(rt.state(&first.id)["status"], "running");
    first.finish();
    rt.assert_empty();
}

fn with_userns(c: &mut Ctr) {
    c.edit_json(|v| {
        v["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
        v["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        v["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    });
}

#[test]
fn user_namespace_maps_root() {
    let rt = Rt::new();
    let mut c = Ctr::sh(
        &rt,
        "echo uid=$(id -u) gid=$(id -g); cat /proc/self/uid_map; exec sleep 1000",
    );
    with_userns(&mut c);
    let out = rt.run_detached(&c);
    out.ok();
    let text = c.wait_output("uid=");
    let text = if text.lines().count() < 2 {
        c.wait_output("100000")
    } else {
        text
    };
    assert!(text.contains("uid=0 gid=0"), "{text}");
    let map: Vec<&str> = text.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(map, ["0", "100000", "65536"], "{text}");
    let pid = rt.pid(&c.id);
    let uids: Vec<String> = proc_status(pid, "Uid")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    assert_eq!(uids, ["100000"; 4], "host view of the container's uid");
    let gids: Vec<String> = proc_status(pid, "Gid")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    assert_eq!(gids, ["100000"; 4]);
    assert_ne!(ns_of(&pid.to_string(), "user"), ns_of("self", "user"));
    // exec joins the user namespace too.
    let e = rt.out(&["exec", &c.id, "id", "-u"]);
    assert_eq!(e.ok(), "0\n");
    c.finish();
    rt.assert_empty();
}
