//! The Linux features of runtime-spec 1.1/1.2 and runc's behaviour around
//! them: `personality`, the capabilities bounding set, `linux.devices` of
//! type `p`, seccomp `SCMP_ACT_NOTIFY` with a listener socket,
//! `ioPriority`, `scheduler`, `memoryPolicy`, namespaces joined by path.
//!
//! Each case was run through runc 1.1 on the same bundle where runc has the
//! feature; those runc 1.1 lacks (personality, ioPriority, scheduler,
//! memoryPolicy) follow the spec (and runc 1.2+, which applies them in its
//! init before the exec).
#![allow(clippy::unwrap_used)]

mod common;

use common::{Ctr, Rt};
use serde_json::{json, Value};
use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixListener;

/// `linux.personality` LINUX32: `uname -m` says i686 on x86_64 (it was
/// ignored: x86_64).
#[test]
fn personality_linux32_is_applied() {
    if std::env::consts::ARCH != "x86_64" {
        eprintln!("skipped: LINUX32 is checked on x86_64 hosts only");
        return;
    }
    let rt = Rt::new();
    let mut c = Ctr::sh(&rt, "uname -m");
    c.edit_json(|v| v["linux"]["personality"] = json!({"domain": "LINUX32"}));
    assert_eq!(rt.run(&c).ok(), "i686\n");
    c.finish();
    let mut c = Ctr::sh(&rt, "uname -m");
    c.edit_json(|v| v["linux"]["personality"] = json!({"domain": "LINUX"}));
    assert_eq!(rt.run(&c).ok(), "x86_64\n");
    c.finish();
    rt.assert_empty();
}

fn cap_line(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap()
        .trim()
        .to_owned()
}

/// A bounding set smaller than the effective and permitted sets: the
/// container starts (it was refused), and what is outside the bounding set
/// is gone after the exec, as with runc (CapEff = CapBnd = CAP_KILL).
#[test]
fn bounding_set_smaller_than_effective_starts_as_with_runc() {
    let rt = Rt::new();
    let mut c = Ctr::sh(&rt, "grep Cap /proc/self/status");
    c.edit_json(|v| {
        v["process"]["capabilities"] = json!({
            "bounding": ["CAP_KILL"],
            "effective": ["CAP_KILL", "CAP_CHOWN"],
            "permitted": ["CAP_KILL", "CAP_CHOWN"],
            "inheritable": [],
            "ambient": []
        })
    });
    let out = rt.run(&c);
    let text = out.ok();
    assert_eq!(cap_line(text, "CapBnd"), "0000000000000020", "{text}");
    assert_eq!(cap_line(text, "CapEff"), "0000000000000020", "{text}");
    assert_eq!(cap_line(text, "CapPrm"), "0000000000000020", "{text}");
    c.finish();
    rt.assert_empty();
}

/// An empty bounding set with an inheritable CAP_SYS_ADMIN cannot be set
/// (capset: an inheritable capability must be in the bounding set): the
/// container fails to start, as with runc ("unable to apply caps:
/// operation not permitted"), with one line and nothing left.
#[test]
fn empty_bounding_set_with_an_inheritable_capability_fails() {
    let rt = Rt::new();
    for caps in [
        json!({"bounding": [], "inheritable": ["CAP_SYS_ADMIN"]}),
        json!({"bounding": [], "effective": [], "permitted": [], "inheritable": ["CAP_SYS_ADMIN"]}),
    ] {
        let mut c = Ctr::sh(&rt, "echo started");
        c.edit_json(|v| v["process"]["capabilities"] = caps.clone());
        let out = rt.run(&c);
        let line = out.fails_one_line();
        assert!(line.contains("inheritable"), "{caps}: {line}");
        assert!(!out.stdout.contains("started"), "{out:#?}");
        c.assert_nothing_left();
    }
    rt.assert_empty();
}

/// Capabilities the kernel will refuse fail `create`, as with runc 1.1
/// (its init applies them before `create` answers: "unable to apply caps:
/// operation not permitted"), not `start`: youki's contest
/// (`bounding_unset_with_other_caps_fails_test`) gives no bounding set and
/// CAP_SYS_ADMIN in the other sets, reads `create`'s stderr and looks for
/// EPERM. berth's create succeeded and only `start` failed, with words
/// that did not say EPERM.
#[test]
fn unset_bounding_with_an_inheritable_capability_fails_at_create() {
    let rt = Rt::new();
    let mut c = Ctr::sh(&rt, "echo started");
    c.edit_json(|v| {
        v["process"]["capabilities"] = json!({
            "effective": ["CAP_SYS_ADMIN"],
            "inheritable": ["CAP_SYS_ADMIN"],
            "permitted": ["CAP_SYS_ADMIN"],
            "ambient": []
        })
    });
    let out = rt.create(&c, &[]);
    let line = out.fails_one_line();
    assert!(line.contains("operation not permitted"), "{line}");
    assert!(line.contains("inheritable"), "{line}");
    assert!(!out.stdout.contains("started"), "{out:#?}");
    c.assert_nothing_left();
    rt.assert_empty();
}

/// A fifo in `linux.devices` is made (it was refused: its cgroup rule of
/// type "p" was invalid); a cgroup rule of type "p" stays refused, as runc
/// refuses it ("invalid cgroup device type").
#[test]
fn fifo_devices() {
    let rt = Rt::new();
    let mut c = Ctr::sh(&rt, "test -p /dev/myfifo && stat -c '%a %u' /dev/myfifo");
    c.edit_json(|v| {
        v["linux"]["devices"] = json!([{"path": "/dev/myfifo", "type": "p", "major": 0,
                                         "minor": 0, "fileMode": 0o640, "uid": 5}])
    });
    assert_eq!(rt.run(&c).ok(), "640 5\n");
    c.finish();
    let mut c = Ctr::sh(&rt, "true");
    c.edit_json(|v| {
        v["linux"]["resources"]["devices"]
            .as_array_mut()
            .unwrap()
            .push(json!({"allow": true, "type": "p", "access": "rwm"}))
    });
    let line = rt.run(&c).fails_one_line();
    assert!(line.contains("\"p\""), "{line}");
    c.assert_nothing_left();
    rt.assert_empty();
}

/// Receives one message and the descriptors passed with it (SCM_RIGHTS).
fn recv_with_fds(fd: i32) -> (Vec<u8>, Vec<RawFd>) {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut buf = vec![0u8; 65536];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([i32; 4]);
    let msg = recvmsg::<()>(fd, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC).unwrap();
    let mut fds = Vec::new();
    for c in msg.cmsgs().unwrap() {
        if let ControlMessageOwned::ScmRights(v) = c {
            fds.extend(v);
        }
    }
    let n = msg.bytes;
    buf.truncate(n);
    (buf, fds)
}

/// seccomp `SCMP_ACT_NOTIFY` with `listenerPath`: the runtime connects to the
/// listener and sends runc's message (the container process state: `fds`
/// `["seccompFd"]`, `pid`, `metadata`, `state`) with the notify descriptor
/// (SCM_RIGHTS). Before, the profile was refused. The listener here closes
/// the descriptor, so the notified call fails with ENOSYS, as the kernel
/// answers a notification nobody listens to.
#[test]
fn seccomp_notify_reaches_the_listener() {
    let rt = Rt::new();
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("listener.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let mut c = Ctr::sh(&rt, "mkdir /tmp/x 2>&1; echo rc=$?");
    c.edit_json(|v| {
        v["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": sock.to_str().unwrap(),
            "listenerMetadata": "meta-data-1",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
        })
    });
    listener.set_nonblocking(true).unwrap();
    let agent = std::thread::spawn(move || {
        let mut conn = None;
        // The runtime connects while it creates the container (or never).
        common::poll(std::time::Duration::from_secs(30), || {
            conn = listener.accept().ok().map(|(c, _)| c);
            conn.is_some()
        });
        let conn = conn.expect("the runtime never connected to the listener");
        conn.set_nonblocking(false).unwrap();
        let (msg, fds) = recv_with_fds(conn.as_raw_fd());
        let v: Value = serde_json::from_slice(&msg).unwrap();
        let kind = fds
            .first()
            .map(|f| std::fs::read_link(format!("/proc/self/fd/{f}")).unwrap())
            .unwrap();
        // Nobody answers: closing the descriptor fails the pending calls.
        for f in &fds {
            nix::unistd::close(*f).unwrap();
        }
        (v, fds.len(), kind)
    });
    let out = rt.run(&c);
    let (v, nfds, kind) = agent.join().unwrap();
    assert_eq!(nfds, 1, "{v}");
    assert_eq!(kind.to_str().unwrap(), "anon_inode:seccomp notify");
    assert_eq!(v["fds"], json!(["seccompFd"]), "{v}");
    assert_eq!(v["metadata"], json!("meta-data-1"), "{v}");
    assert_eq!(v["state"]["id"], json!(c.id), "{v}");
    assert!(v["pid"].as_i64().unwrap() > 0, "{v}");
    assert_eq!(v["state"]["pid"], v["pid"], "{v}");
    assert!(v["ociVersion"].is_string(), "{v}");
    let text = out.ok();
    assert!(text.contains("Function not implemented"), "{text}");
    assert!(text.ends_with("rc=1\n"), "{text}");
    c.finish();
    // Without a listener path the action cannot work: refused, one line.
    let mut c = Ctr::sh(&rt, "true");
    c.edit_json(|v| {
        v["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
        })
    });
    let line = rt.run(&c).fails_one_line();
    assert!(line.contains("listenerPath"), "{line}");
    c.assert_nothing_left();
    rt.assert_empty();
}

/// `process.ioPriority`: the class and level reach the process (busybox
/// `ionice` prints its own).
#[test]
fn io_priority_is_applied() {
    let rt = Rt::new();
    for (class, prio, want) in [
        ("IOPRIO_CLASS_BE", 6, "best-effort: prio 6\n"),
        ("IOPRIO_CLASS_IDLE", 0, "idle\n"),
    ] {
        let mut c = Ctr::sh(&rt, "ionice");
        c.edit_json(|v| v["process"]["ioPriority"] = json!({"class": class, "priority": prio}));
        assert_eq!(rt.run(&c).ok(), want, "{class}");
        c.finish();
    }
    rt.assert_empty();
}

/// Field `n` (1-based, as proc(5) counts) of /proc/self/stat text.
fn stat_field(stat: &str, n: usize) -> String {
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    after.split(' ').nth(n - 3).unwrap().to_owned()
}

/// `process.scheduler`: policy and nice reach the process (/proc/self/stat
/// fields 19 and 41), and a bad one fails with one line.
#[test]
fn scheduler_is_applied() {
    let rt = Rt::new();
    let mut c = Ctr::sh(&rt, "cat /proc/self/stat");
    c.edit_json(|v| v["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 7}));
    let out = rt.run(&c);
    let stat = out.ok();
    assert_eq!(stat_field(stat, 19), "7", "{stat}");
    assert_eq!(stat_field(stat, 41), "3", "{stat}");
    c.finish();
    let mut c = Ctr::sh(&rt, "cat /proc/self/stat");
    c.edit_json(|v| v["process"]["scheduler"] = json!({"policy": "SCHED_IDLE"}));
    let out = rt.run(&c);
    assert_eq!(stat_field(out.ok(), 41), "5");
    c.finish();
    // SCHED_OTHER takes no priority: the kernel's EINVAL, named.
    let mut c = Ctr::sh(&rt, "true");
    c.edit_json(|v| v["process"]["scheduler"] = json!({"policy": "SCHED_OTHER", "priority": 5}));
    let line = rt.run(&c).fails_one_line();
    assert!(line.contains("process.scheduler"), "{line}");
    c.assert_nothing_left();
    rt.assert_empty();
}

/// `linux.memoryPolicy`: the task's policy (shown by numa_maps for
/// mappings without their own) is the one asked; nodes the host lacks fail
/// with one line.
#[test]
fn memory_policy_is_applied() {
    if !std::path::Path::new("/sys/devices/system/node/node0").exists() {
        eprintln!("skipped: the host has no NUMA node 0");
        return;
    }
    let rt = Rt::new();
    let mut c = Ctr::sh(&rt, "head -1 /proc/self/numa_maps");
    c.edit_json(|v| v["linux"]["memoryPolicy"] = json!({"mode": "MPOL_BIND", "nodes": "0"}));
    let out = rt.run(&c);
    assert!(out.ok().contains(" bind:0 "), "{out:#?}");
    c.finish();
    let mut c = Ctr::sh(&rt, "true");
    c.edit_json(|v| v["linux"]["memoryPolicy"] = json!({"mode": "MPOL_BIND", "nodes": "1000"}));
    let line = rt.run(&c).fails_one_line();
    assert!(line.contains("linux.memoryPolicy"), "{line}");
    c.assert_nothing_left();
    rt.assert_empty();
}

/// `linux.namespaces` of type time and cgroup given by path: the second
/// container is in the first's namespaces.
#[test]
fn time_and_cgroup_namespaces_joined_by_path() {
    let rt = Rt::new();
    let mut a = Ctr::sh(&rt, "sleep 60");
    a.edit_json(|v| {
        let ns = v["linux"]["namespaces"].as_array_mut().unwrap();
        ns.push(json!({"type": "time"}));
        ns.retain(|n| n["type"] != "cgroup");
        ns.push(json!({"type": "cgroup"}));
    });
    a.edit_json(|v| v["linux"]["timeOffsets"] = json!({"boottime": {"secs": 86400}}));
    rt.create(&a, &[]).ok();
    rt.out(&["start", &a.id]).ok();
    let pa = rt.pid(&a.id);
    let mut b = Ctr::sh(
        &rt,
        "readlink /proc/self/ns/time; readlink /proc/self/ns/cgroup; cut -d. -f1 /proc/uptime",
    );
    b.edit_json(|v| {
        let ns = v["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "cgroup");
        ns.push(json!({"type": "time", "path": format!("/proc/{pa}/ns/time")}));
        ns.push(json!({"type": "cgroup", "path": format!("/proc/{pa}/ns/cgroup")}));
    });
    let out = rt.run(&b);
    let lines: Vec<&str> = out.ok().lines().collect();
    assert_eq!(lines[0], common::ns_of(&pa.to_string(), "time"), "{out:#?}");
    assert_eq!(
        lines[1],
        common::ns_of(&pa.to_string(), "cgroup"),
        "{out:#?}"
    );
    assert!(lines[2].parse::<u64>().unwrap() >= 86400, "{out:#?}");
    b.finish();
    a.finish();
    rt.assert_empty();
}

/// Runs `berth-runtime run` from a shell that opens two files as
/// descriptors 3 and 4 first, with `env` set for the runtime (`$$` in a
/// value is the runtime's pid: the shell execs it).
fn run_with_fds(rt: &Rt, c: &Ctr, extra: &[&str], env: &str) -> common::Out {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f3"), "three\n").unwrap();
    std::fs::write(dir.path().join("f4"), "four\n").unwrap();
    let script = format!(r#"exec 3<"$1/f3" 4<"$1/f4"; shift; {env} exec "$@""#);
    let out = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(script)
        .arg("sh")
        .arg(dir.path())
        .arg(common::BIN)
        .arg("--root")
        .arg(rt.root())
        .arg("run")
        .args(extra)
        .args(["--bundle", c.bundle_path_str(), &c.id])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    common::Out::from_output(out)
}

/// `--preserve-fds N` passes descriptors 3..3+N (and no more); systemd's
/// `LISTEN_FDS` (for the runtime's pid) passes that many and sets
/// `LISTEN_FDS=N` and `LISTEN_PID=1` in the container, as runc does (it was
/// ignored: the descriptors were closed).
#[test]
fn preserve_fds_and_listen_fds() {
    let rt = Rt::new();
    let script = "env | grep ^LISTEN_ | sort; cat <&3; cat <&4 2>/dev/null || echo no-4";
    let c = Ctr::sh(&rt, script);
    let out = run_with_fds(&rt, &c, &["--preserve-fds", "1"], "");
    assert_eq!(out.ok(), "three\nno-4\n");
    c.finish();
    let c = Ctr::sh(&rt, script);
    let out = run_with_fds(&rt, &c, &[], "LISTEN_FDS=2 LISTEN_PID=$$");
    assert_eq!(out.ok(), "LISTEN_FDS=2\nLISTEN_PID=1\nthree\nfour\n");
    c.finish();
    // LISTEN_FDS meant for another process is not ours.
    let c = Ctr::sh(&rt, script);
    let out = run_with_fds(&rt, &c, &[], "LISTEN_FDS=2 LISTEN_PID=1");
    assert_eq!(out.ok(), "no-4\n");
    c.finish();
    rt.assert_empty();
}

/// A link on the host for `linux.netDevices` tests: one end of a veth pair
/// (this kernel lacks the dummy driver runc's tests use), uniquely named,
/// down; both ends are deleted when dropped (whichever namespace they are
/// in: a pair dies with either end).
struct Dummy(String);

impl Dummy {
    fn new() -> Option<Dummy> {
        let name = common::unique("bd").replace('-', "");
        let name: String = name.chars().take(14).collect();
        let peer = format!("{name}p");
        let ok = std::process::Command::new("ip")
            .args(["link", "add", &name, "type", "veth", "peer", "name", &peer])
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Dummy(name))
    }

    fn on_host(&self) -> bool {
        std::path::Path::new("/sys/class/net")
            .join(&self.0)
            .exists()
    }

    /// `ip ARGS` on the host, which must succeed.
    fn ip(&self, args: &[&str]) {
        host_ip(args);
    }
}

impl Drop for Dummy {
    fn drop(&mut self) {
        for n in [self.0.clone(), format!("{}p", self.0)] {
            let _ = std::process::Command::new("ip")
                .args(["link", "del", &n])
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

/// `ip ARGS` on the host; panics unless it succeeds.
#[track_caller]
fn host_ip(args: &[&str]) -> String {
    let out = std::process::Command::new("ip")
        .args(args)
        .output()
        .unwrap();
    let out = common::Out::from_output(out);
    out.ok().to_owned()
}

/// A named network namespace (`ip netns add`), deleted when dropped.
struct NetNs(String);

impl NetNs {
    fn new() -> NetNs {
        let name = common::unique("berth-nd");
        host_ip(&["netns", "add", &name]);
        NetNs(name)
    }

    fn path(&self) -> String {
        format!("/run/netns/{}", self.0)
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.0])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// Runs `script` in a container that gets `dev` as `netDevices` entry
/// `entry`; its output.
fn run_with_net_device(rt: &Rt, dev: &Dummy, entry: Value, script: &str) -> String {
    let mut c = Ctr::sh(rt, script);
    c.edit_json(|v| v["linux"]["netDevices"] = json!({ dev.0.clone(): entry }));
    let out = rt.run(&c);
    let text = out.ok().to_owned();
    c.finish();
    text
}

/// Whether `ip link`/`ip address` output shows link `name` (a veth shows
/// as `NAME@ifN:` or `NAME@NONE:`).
fn shows_link(text: &str, name: &str) -> bool {
    text.contains(&format!(": {name}:")) || text.contains(&format!(": {name}@"))
}

/// The flags of `ip link`/`ip address` output's first line (`<...>`).
fn link_flags(text: &str) -> Vec<&str> {
    text.split_once('<')
        .and_then(|(_, r)| r.split_once('>'))
        .map(|(f, _)| f.split(',').collect())
        .unwrap_or_default()
}

/// `linux.netDevices` into the container's own new network namespace
/// (runc's "move network device to precreated container network namespace"
/// with a new one): `ip address show dev NAME` works inside, the link is up
/// there, and it is gone from the host. Without a network namespace entry,
/// or with a bad name, the spec is refused before anything is made.
#[test]
fn net_devices_move_into_a_new_netns() {
    let Some(dev) = Dummy::new() else {
        eprintln!("skipped: cannot create a veth pair with `ip`");
        return;
    };
    let rt = Rt::new();
    let script = format!("ip address show dev {0} && ls /sys/class/net/{0}/", dev.0);
    let out = run_with_net_device(&rt, &dev, json!({}), &script);
    assert!(shows_link(&out, &dev.0), "{out}");
    assert!(link_flags(&out).contains(&"UP"), "not up inside: {out}");
    // Refused before anything is made.
    for (ns, devs, want) in [
        (false, json!({ dev.0.clone(): {} }), "linux.netDevices"),
        (
            true,
            json!({ dev.0.clone(): {"name": "a/b"} }),
            "not a valid interface name",
        ),
        (
            true,
            json!({ "no-such-link0": {} }),
            "linux.netDevices.no-such-link0",
        ),
    ] {
        let mut c = Ctr::sh(&rt, "true");
        c.edit_json(|v| {
            v["linux"]["netDevices"] = devs.clone();
            if !ns {
                v["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .retain(|n| n["type"] != "network");
            }
        });
        let line = rt.run(&c).fails_one_line();
        assert!(line.contains(want), "{devs}: {line}");
        c.assert_nothing_left();
    }
    rt.assert_empty();
}

/// A container that joins a precreated network namespace (`ip netns add`)
/// and gets a device: after `delete --force` the device is still in that
/// namespace, as with runc ("the network namespace owner controls the
/// lifecycle of the interface"; runc's test then moves it out with `ip netns
/// exec NS ip link set dev X netns 1`). berth moved it back at delete.
#[test]
fn net_devices_stay_in_a_joined_netns_after_delete() {
    let Some(dev) = Dummy::new() else {
        eprintln!("skipped: cannot create a veth pair with `ip`");
        return;
    };
    let ns = NetNs::new();
    let rt = Rt::new();
    let mut c = Ctr::sh(&rt, "echo up; sleep 60");
    c.edit_json(|v| {
        v["linux"]["netDevices"] = json!({ dev.0.clone(): {} });
        for n in v["linux"]["namespaces"].as_array_mut().unwrap() {
            if n["type"] == "network" {
                n["path"] = json!(ns.path());
            }
        }
    });
    rt.create(&c, &[]).ok();
    rt.out(&["start", &c.id]).ok();
    c.wait_output("up\n");
    assert!(!dev.on_host());
    rt.out(&["delete", "--force", &c.id]).ok();
    assert!(!dev.on_host(), "{} moved back to the host at delete", dev.0);
    host_ip(&[
        "netns", "exec", &ns.0, "ip", "link", "set", "dev", &dev.0, "netns", "1",
    ]);
    assert!(dev.on_host());
    c.finish();
    rt.assert_empty();
}

/// The permanent addresses of global scope move with the device (runc
/// sets it down, lists them, and adds them again inside); one of host
/// scope (127.0.0.33) does not.
#[test]
fn net_devices_keep_global_addresses() {
    let Some(dev) = Dummy::new() else {
        eprintln!("skipped: cannot create a veth pair with `ip`");
        return;
    };
    dev.ip(&["address", "add", "169.254.169.77/32", "dev", &dev.0]);
    dev.ip(&[
        "address",
        "add",
        "127.0.0.33/32",
        "dev",
        &dev.0,
        "scope",
        "host",
    ]);
    dev.ip(&["link", "set", "dev", &dev.0, "up"]);
    let rt = Rt::new();
    let out = run_with_net_device(
        &rt,
        &dev,
        json!({}),
        &format!("ip -4 address show dev {}", dev.0),
    );
    assert!(out.contains("inet 169.254.169.77/32 scope global"), "{out}");
    assert!(!out.contains("127.0.0.33"), "{out}");
    rt.assert_empty();
}

/// MTU and MAC address survive the move by themselves.
#[test]
fn net_devices_keep_mtu_and_mac() {
    let Some(dev) = Dummy::new() else {
        eprintln!("skipped: cannot create a veth pair with `ip`");
        return;
    };
    dev.ip(&["link", "set", "dev", &dev.0, "mtu", "1789"]);
    dev.ip(&["link", "set", "dev", &dev.0, "address", "00:11:22:33:44:55"]);
    let rt = Rt::new();
    let out = run_with_net_device(&rt, &dev, json!({}), &format!("ip link show dev {}", dev.0));
    assert!(out.contains(" mtu 1789 "), "{out}");
    assert!(out.contains("link/ether 00:11:22:33:44:55 "), "{out}");
    rt.assert_empty();
}

/// A rename (`name`: ctr_dummyN) together with an MTU, a MAC address and
/// IPv4 and IPv6 global addresses: all of it arrives under the new name,
/// up.
#[test]
fn net_devices_rename_with_mtu_mac_and_addresses() {
    let Some(dev) = Dummy::new() else {
        eprintln!("skipped: cannot create a veth pair with `ip`");
        return;
    };
    dev.ip(&["link", "set", "dev", &dev.0, "mtu", "1789"]);
    dev.ip(&["link", "set", "dev", &dev.0, "address", "00:11:22:33:44:55"]);
    dev.ip(&["address", "add", "169.254.169.77/32", "dev", &dev.0]);
    dev.ip(&["address", "add", "2001:db8::77/64", "dev", &dev.0, "nodad"]);
    let rt = Rt::new();
    let out = run_with_net_device(
        &rt,
        &dev,
        json!({"name": "ctr_dummy0"}),
        "ip address show dev ctr_dummy0",
    );
    assert!(shows_link(&out, "ctr_dummy0"), "{out}");
    assert!(link_flags(&out).contains(&"UP"), "not up inside: {out}");
    assert!(out.contains(" mtu 1789 "), "{out}");
    assert!(out.contains("link/ether 00:11:22:33:44:55 "), "{out}");
    assert!(out.contains("inet 169.254.169.77/32 scope global"), "{out}");
    assert!(out.contains("inet6 2001:db8::77/64 scope global"), "{out}");
    assert!(!dev.on_host());
    rt.assert_empty();
}

/// Device cgroup rules with wildcards (a major with any minor): the rule
/// decides whether a node made inside can be opened (runc: the same).
#[test]
fn device_rules_with_wildcards() {
    if !std::path::Path::new("/dev/loop-control").exists() {
        eprintln!("skipped: the host has no /dev/loop-control (10:237) to open");
        return;
    }
    let rt = Rt::new();
    for (major, want) in [(10, "opened\n"), (1, "refused\n")] {
        let mut c = Ctr::sh(
            &rt,
            "mknod /tmp/lc c 10 237 && { (echo -n > /tmp/lc) 2>/dev/null && echo opened || echo refused; }",
        );
        c.edit_json(|v| {
            v["linux"]["resources"]["devices"] = json!([
                {"allow": false, "access": "rwm"},
                {"allow": true, "type": "c", "major": major, "access": "rw"}
            ]);
            let all = json!(["CAP_MKNOD", "CAP_DAC_OVERRIDE"]);
            v["process"]["capabilities"] =
                json!({"bounding": all, "effective": all, "permitted": all});
        });
        assert_eq!(rt.run(&c).ok(), want, "c {major}:*");
        c.finish();
    }
    rt.assert_empty();
}

/// hugetlb limits (and their reservation files, `rsvd`) need the hugetlb
/// controller: where the host has none the test says so.
#[test]
fn hugetlb_limits() {
    let v1 = std::path::Path::new("/sys/fs/cgroup/hugetlb").exists();
    let v2 = std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
        .is_ok_and(|c| c.split_whitespace().any(|c| c == "hugetlb"));
    // A hybrid host's unified hierarchy is used only where the host
    // enabled hugetlb in its root (berth never does: see berth_cgroups).
    let v2_unified = std::fs::read_to_string("/sys/fs/cgroup/unified/cgroup.subtree_control")
        .is_ok_and(|c| c.split_whitespace().any(|c| c == "hugetlb"));
    if !(v1 || v2 || v2_unified) {
        eprintln!("skipped: this host has no usable hugetlb cgroup controller (v1 or v2)");
        return;
    }
    let rt = Rt::new();
    let mut c = Ctr::sh(&rt, "sleep 60");
    c.edit_json(|v| {
        v["linux"]["resources"]["hugepageLimits"] = json!([{"pageSize": "2MB", "limit": 4194304}])
    });
    rt.create(&c, &[]).ok();
    let rel = c.cgpath.trim_start_matches('/');
    let dir = [
        std::path::Path::new("/sys/fs/cgroup/hugetlb").join(rel),
        std::path::Path::new("/sys/fs/cgroup/unified").join(rel),
        std::path::Path::new("/sys/fs/cgroup").join(rel),
    ]
    .into_iter()
    .find(|d| d.join("hugetlb.2MB.max").exists() || d.join("hugetlb.2MB.limit_in_bytes").exists())
    .expect("no hugetlb directory for the container");
    let read = |f: &str| {
        std::fs::read_to_string(dir.join(f))
            .ok()
            .map(|s| s.trim().to_owned())
    };
    let (max, rsvd) = if v1 {
        (
            "hugetlb.2MB.limit_in_bytes",
            "hugetlb.2MB.rsvd.limit_in_bytes",
        )
    } else {
        ("hugetlb.2MB.max", "hugetlb.2MB.rsvd.max")
    };
    assert_eq!(read(max).as_deref(), Some("4194304"));
    // The reservation limit too, where the kernel has one (Linux 5.7+).
    if dir.join(rsvd).exists() {
        assert_eq!(read(rsvd).as_deref(), Some("4194304"));
    } else {
        eprintln!("no {rsvd}: the kernel has no hugetlb reservation accounting");
    }
    c.finish();
    rt.assert_empty();
}

/// An `exec` into a container whose profile notifies also hands its own
/// descriptor to the listener (state "running", the exec's pid), as runc's
/// exec does.
#[test]
fn seccomp_notify_for_an_exec() {
    let rt = Rt::new();
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("listener.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    listener.set_nonblocking(true).unwrap();
    let mut c = Ctr::sh(&rt, "echo up; sleep 60");
    c.edit_json(|v| {
        v["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": sock.to_str().unwrap(),
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
        })
    });
    let agent = std::thread::spawn(move || {
        let mut got = Vec::new();
        while got.len() < 2 {
            let mut conn = None;
            if !common::poll(std::time::Duration::from_secs(30), || {
                conn = listener.accept().ok().map(|(c, _)| c);
                conn.is_some()
            }) {
                break;
            }
            let conn = conn.unwrap();
            conn.set_nonblocking(false).unwrap();
            let (msg, fds) = recv_with_fds(conn.as_raw_fd());
            for f in &fds {
                nix::unistd::close(*f).unwrap();
            }
            got.push((serde_json::from_slice::<Value>(&msg).unwrap(), fds.len()));
        }
        got
    });
    rt.create(&c, &[]).ok();
    rt.out(&["start", &c.id]).ok();
    c.wait_output("up\n");
    let e = rt.out(&["exec", &c.id, "sh", "-c", "mkdir /tmp/y 2>&1; echo rc=$?"]);
    let got = agent.join().unwrap();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].0["state"]["status"], json!("creating"), "{got:?}");
    assert_eq!(got[1].0["state"]["status"], json!("running"), "{got:?}");
    assert_eq!(got[1].1, 1);
    assert_ne!(got[1].0["pid"], got[0].0["pid"], "{got:?}");
    let text = e.ok();
    assert!(text.contains("Function not implemented"), "{text}");
    c.finish();
    rt.assert_empty();
}

/// `linux.devices` entries get no device cgroup rule of their own, as with
/// runc 1.1 (checked on this host): with the default-deny rule and no allow
/// rule for the node, opening it inside fails with EPERM (berth used to
/// allow every listed device). With an allow rule in
/// `linux.resources.devices` it opens.
#[test]
fn linux_devices_get_no_implicit_cgroup_rule() {
    if !std::path::Path::new("/dev/loop-control").exists() {
        eprintln!("skipped: the host has no /dev/loop-control (10:237) to open");
        return;
    }
    let rt = Rt::new();
    for (allow, want) in [(false, "Operation not permitted"), (true, "rc=0")] {
        let mut c = Ctr::sh(
            &rt,
            "test -c /dev/mylc && { (echo -n > /dev/mylc) 2>&1; echo rc=$?; }",
        );
        c.edit_json(|v| {
            v["linux"]["devices"] = json!([{"path": "/dev/mylc", "type": "c", "major": 10,
                                             "minor": 237, "fileMode": 0o666}]);
            let mut rules = vec![json!({"allow": false, "access": "rwm"})];
            if allow {
                rules.push(
                    json!({"allow": true, "type": "c", "major": 10, "minor": 237,
                                  "access": "rw"}),
                );
            }
            v["linux"]["resources"]["devices"] = json!(rules);
        });
        let out = rt.run(&c);
        let text = out.ok();
        assert!(text.contains(want), "allow rule {allow}: {text}");
        if !allow {
            assert!(text.ends_with("rc=1\n"), "{text}");
        }
        c.finish();
    }
    rt.assert_empty();
}

/// /dev/net/tun (c 10:200) is among the devices always allowed, as in
/// runc 1.1 (its default rules, which Docker 20.10 users rely on to make the
/// node for a VPN): under a default-deny spec the node made inside opens
/// (ENODEV at most: no tun driver needed, only the cgroup's verdict), where
/// berth said "Operation not permitted".
#[test]
fn tun_is_allowed_as_in_runc() {
    let rt = Rt::new();
    let mut c = Ctr::sh(
        &rt,
        "mkdir -p /dev/net && mknod /dev/net/tun c 10 200 && (echo -n > /dev/net/tun) 2>&1; echo done",
    );
    c.edit_json(|v| {
        v["linux"]["resources"]["devices"] = json!([{"allow": false, "access": "rwm"}]);
        let caps = &mut v["process"]["capabilities"];
        for set in ["bounding", "effective", "permitted"] {
            caps[set].as_array_mut().unwrap().push(json!("CAP_MKNOD"));
        }
    });
    let out = rt.run(&c);
    let text = out.ok();
    assert!(
        text.ends_with(
            "done
"
        ),
        "{text}"
    );
    assert!(!text.contains("Operation not permitted"), "{text}");
    c.finish();
    rt.assert_empty();
}

/// `linux.personality` applies to processes started by `exec` too, as
/// runc 1.2+ does (setns_init applies it before the exec): `uname -m` says
/// i686 in an exec'd process under LINUX32 (it said x86_64).
#[test]
fn personality_applies_to_exec() {
    if std::env::consts::ARCH != "x86_64" {
        eprintln!("skipped: LINUX32 is checked on x86_64 hosts only");
        return;
    }
    let rt = Rt::new();
    for (domain, want) in [("LINUX32", "i686\n"), ("LINUX", "x86_64\n")] {
        let mut c = Ctr::sh(&rt, "echo up; sleep 60");
        c.edit_json(|v| v["linux"]["personality"] = json!({"domain": domain}));
        rt.create(&c, &[]).ok();
        rt.out(&["start", &c.id]).ok();
        c.wait_output("up\n");
        assert_eq!(
            rt.out(&["exec", &c.id, "uname", "-m"]).ok(),
            want,
            "{domain}"
        );
        c.finish();
    }
    rt.assert_empty();
}

/// The state letter of /proc/PID/stat ("S", "D", ...).
fn proc_state(pid: u32) -> String {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rfind(')')
        .and_then(|i| stat.get(i + 2..i + 3))
        .unwrap_or("")
        .to_owned()
}

/// `SECCOMP_IOCTL_NOTIF_RECV` on a notify descriptor: the notification's
/// id and the notifying process's pid.
fn notif_recv(fd: RawFd) -> (u64, u32) {
    // SAFETY: an all-zero seccomp_notif is a valid value (plain integers),
    // and a zeroed one is what the kernel requires for this ioctl.
    let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    // SAFETY: `req` is a live seccomp_notif the kernel writes into; the
    // descriptor is ours.
    let r = unsafe { libc::ioctl(fd, libc::SECCOMP_IOCTL_NOTIF_RECV, &mut req) };
    assert_eq!(r, 0, "NOTIF_RECV: {}", std::io::Error::last_os_error());
    (req.id, req.pid)
}

/// `SECCOMP_IOCTL_NOTIF_SEND`: fails notification `id` with `errno`; the
/// ioctl's result.
fn notif_send_error(fd: RawFd, id: u64, errno: i32) -> i32 {
    // SAFETY: an all-zero seccomp_notif_resp is a valid value (integers).
    let mut resp: libc::seccomp_notif_resp = unsafe { std::mem::zeroed() };
    resp.id = id;
    resp.error = -errno;
    // SAFETY: `resp` is a live seccomp_notif_resp the kernel reads; the
    // descriptor is ours.
    unsafe { libc::ioctl(fd, libc::SECCOMP_IOCTL_NOTIF_SEND, &mut resp) }
}

/// seccomp flag `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV` (with a notify
/// rule and `listenerPath`) reaches the kernel: once the listener has
/// received a notification, a non-fatal signal (SIGSTOP) no longer
/// interrupts the notifying process, which waits on killably (state "D" in
/// /proc; without the flag it stops, "T"), and the listener's answer
/// (EPERM) reaches it. Before, the flag was ignored. An unknown flag is
/// still refused with one line.
#[test]
fn seccomp_wait_killable_recv_flag() {
    let rt = Rt::new();
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("listener.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    listener.set_nonblocking(true).unwrap();
    let mut c = Ctr::sh(&rt, "mkdir /tmp/x 2>&1; echo rc=$?");
    c.edit_json(|v| {
        v["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": sock.to_str().unwrap(),
            "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
        })
    });
    let agent = std::thread::spawn(move || {
        let mut conn = None;
        common::poll(std::time::Duration::from_secs(30), || {
            conn = listener.accept().ok().map(|(c, _)| c);
            conn.is_some()
        });
        let conn = conn.expect("the runtime never connected to the listener");
        conn.set_nonblocking(false).unwrap();
        let (_, fds) = recv_with_fds(conn.as_raw_fd());
        let fd = fds[0];
        let (id, pid) = notif_recv(fd);
        // A non-fatal signal after the receive: with the flag the task
        // goes on waiting, killably ("D"); without it the signal interrupts
        // the call (which restarts after SIGCONT, notifying again).
        let task = nix::unistd::Pid::from_raw(pid as i32);
        nix::sys::signal::kill(task, nix::sys::signal::Signal::SIGSTOP).unwrap();
        let mut state = String::new();
        let killable = common::poll(std::time::Duration::from_secs(10), || {
            state = proc_state(pid);
            state == "D"
        });
        let sent = notif_send_error(fd, id, libc::EPERM);
        nix::sys::signal::kill(task, nix::sys::signal::Signal::SIGCONT).unwrap();
        for f in &fds {
            nix::unistd::close(*f).unwrap();
        }
        (killable, state, sent)
    });
    let out = rt.run(&c);
    let (killable, state, sent) = agent.join().unwrap();
    assert!(killable, "notifying process in state {state:?}, not D");
    assert_eq!(sent, 0);
    let text = out.ok();
    assert!(text.contains("Operation not permitted"), "{text}");
    assert!(text.ends_with("rc=1\n"), "{text}");
    c.finish();
    // An unknown flag: refused, one line naming it.
    let mut c = Ctr::sh(&rt, "true");
    c.edit_json(|v| {
        v["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": []})
    });
    let mut spec: Value = serde_json::from_str(
        &std::fs::read_to_string(c.bundle.path().join("config.json")).unwrap(),
    )
    .unwrap();
    spec["linux"]["seccomp"]["flags"] = json!(["SECCOMP_FILTER_FLAG_NO_SUCH"]);
    std::fs::write(
        c.bundle.path().join("config.json"),
        serde_json::to_string(&spec).unwrap(),
    )
    .unwrap();
    let line = rt.run(&c).fails_one_line();
    assert!(line.contains("SECCOMP_FILTER_FLAG_NO_SUCH"), "{line}");
    c.assert_nothing_left();
    rt.assert_empty();
}

/// `SECCOMP_IOCTL_NOTIF_SEND` with `SECCOMP_USER_NOTIF_FLAG_CONTINUE`: the
/// notified call goes on as if nothing had stopped it.
fn notif_send_continue(fd: RawFd, id: u64) -> i32 {
    // SAFETY: an all-zero seccomp_notif_resp is a valid value (integers).
    let mut resp: libc::seccomp_notif_resp = unsafe { std::mem::zeroed() };
    resp.id = id;
    resp.flags = libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32;
    // SAFETY: `resp` is a live seccomp_notif_resp the kernel reads; the
    // descriptor is ours.
    unsafe { libc::ioctl(fd, libc::SECCOMP_IOCTL_NOTIF_SEND, &mut resp) }
}

/// Answers the notifications on `fd` until every process under the filter
/// is gone (POLLHUP) or `stop` is set: getcwd goes on, anything else fails
/// with EPERM. Returns how many getcwd calls it let through.
fn serve_notifications(fd: RawFd, stop: &std::sync::atomic::AtomicBool) -> usize {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::BorrowedFd;
    let mut getcwds = 0;
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        // SAFETY: `fd` stays open for the whole loop (closed by our caller).
        let bfd = unsafe { BorrowedFd::borrow_raw(fd) };
        let mut p = [PollFd::new(bfd, PollFlags::POLLIN)];
        if poll(&mut p, PollTimeout::from(100u16)).unwrap_or(0) == 0 {
            continue;
        }
        let ev = p[0].revents().unwrap_or(PollFlags::empty());
        if ev.contains(PollFlags::POLLIN) {
            // SAFETY: as in `notif_recv`.
            let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
            // SAFETY: as in `notif_recv`.
            if unsafe { libc::ioctl(fd, libc::SECCOMP_IOCTL_NOTIF_RECV, &mut req) } != 0 {
                continue;
            }
            if i64::from(req.data.nr) == libc::SYS_getcwd {
                getcwds += 1;
                notif_send_continue(fd, req.id);
            } else {
                notif_send_error(fd, req.id, libc::EPERM);
            }
        } else if ev.intersects(PollFlags::POLLHUP | PollFlags::POLLERR) {
            break;
        }
    }
    getcwds
}

/// seccomp `SCMP_ACT_NOTIFY` with `listenerPath` and a created container:
/// the listener gets the descriptor and the container process state
/// (status "creating", the pid `state` reports, the metadata) while
/// `create` runs, with or without noNewPrivileges, as runc 1.1 does (checked
/// by hand: runc installs the filter before the create answers). Before, the
/// filter was installed only after `start`, so a caller that waits for the
/// descriptor between create and start (youki's contest) hung. After `start`
/// everything the init does under the filter still works: the notified
/// getcwd calls (the init's own cwd check, then the shell's) are let
/// through by the agent, a notified mkdir fails with its answer.
#[test]
fn seccomp_listener_gets_the_descriptor_at_create() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{mpsc, Arc};
    let rt = Rt::new();
    for nnp in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("listener.sock");
        let listener = UnixListener::bind(&sock).unwrap();
        listener.set_nonblocking(true).unwrap();
        let mut c = Ctr::sh(&rt, "cd /tmp && pwd; mkdir /tmp/x 2>&1; echo rc=$?");
        c.edit_json(|v| {
            v["process"]["noNewPrivileges"] = json!(nnp);
            v["linux"]["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "listenerPath": sock.to_str().unwrap(),
                "listenerMetadata": "meta at create",
                "syscalls": [{"names": ["getcwd", "mkdir", "mkdirat"],
                              "action": "SCMP_ACT_NOTIFY"}]
            })
        });
        let (tx, rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let agent_stop = stop.clone();
        let agent = std::thread::spawn(move || {
            let mut conn = None;
            common::poll(std::time::Duration::from_secs(30), || {
                conn = listener.accept().ok().map(|(c, _)| c);
                conn.is_some()
            });
            let conn = conn.expect("the runtime never connected to the listener");
            conn.set_nonblocking(false).unwrap();
            let (msg, fds) = recv_with_fds(conn.as_raw_fd());
            tx.send((msg, fds.len())).unwrap();
            let getcwds = fds
                .first()
                .map(|f| serve_notifications(*f, &agent_stop))
                .unwrap_or(0);
            for f in &fds {
                nix::unistd::close(*f).unwrap();
            }
            getcwds
        });
        rt.create(&c, &[]).ok();
        // The descriptor arrives during create, before any start.
        let (msg, nfds) = rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("nnp {nnp}: no descriptor after create"));
        let v: Value = serde_json::from_slice(&msg).unwrap();
        assert_eq!(nfds, 1, "{v}");
        assert_eq!(v["fds"], json!(["seccompFd"]), "{v}");
        assert_eq!(v["metadata"], json!("meta at create"), "{v}");
        assert_eq!(v["state"]["id"], json!(c.id), "{v}");
        assert_eq!(v["state"]["status"], json!("creating"), "{v}");
        assert_eq!(v["pid"], json!(rt.pid(&c.id)), "{v}");
        assert_eq!(v["state"]["pid"], v["pid"], "{v}");
        rt.out(&["start", &c.id]).ok();
        let text = c.wait_output("rc=");
        rt.wait_status(&c.id, "stopped");
        stop.store(true, Ordering::SeqCst);
        let getcwds = agent.join().unwrap();
        assert!(text.starts_with("/tmp\n"), "nnp {nnp}: {text}");
        assert!(
            text.contains("Operation not permitted"),
            "nnp {nnp}: {text}"
        );
        assert!(getcwds >= 1, "nnp {nnp}: {getcwds} getcwd notified");
        c.finish();
    }
    rt.assert_empty();
}

/// The mount points of the host's mountinfo at exactly `path`.
fn mount_points_at(path: &std::path::Path) -> usize {
    let want = path.to_str().unwrap();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.split(' ').nth(4) == Some(want))
        .count()
}

/// Without a mount namespace (youki's contest `ns_itype`), runc 1.1 still
/// binds the rootfs onto itself in the runtime's mount namespace (checked by
/// hand; its prepareRoot), and callers rely on it: the contest unmounts
/// `bundle/rootfs` after create (EINVAL when it is no mount point: the
/// group aborted). berth makes that bind (not runc's other changes to the
/// host's namespace), the init's root is it, and `delete` removes it when
/// the caller has not (runc leaves it).
#[test]
fn without_a_mount_namespace_the_rootfs_is_a_mount_point() {
    let rt = Rt::new();
    for caller_unmounts in [true, false] {
        let mut c = Ctr::sh(&rt, "echo up; sleep 60");
        c.edit_json(|v| {
            let ns = v["linux"]["namespaces"].as_array_mut().unwrap();
            ns.retain(|n| n["type"] != "mount");
            v["linux"]["maskedPaths"] = json!([]);
            v["linux"]["readonlyPaths"] = json!([]);
        });
        let rootfs = std::fs::canonicalize(c.rootfs()).unwrap();
        assert_eq!(mount_points_at(&rootfs), 0);
        rt.create(&c, &[]).ok();
        assert_eq!(mount_points_at(&rootfs), 1, "no mount at {rootfs:?}");
        let pid = rt.pid(&c.id);
        assert_eq!(
            std::fs::read_link(format!("/proc/{pid}/root")).unwrap(),
            rootfs
        );
        rt.out(&["start", &c.id]).ok();
        c.wait_output("up\n");
        if caller_unmounts {
            nix::mount::umount2(&rootfs, nix::mount::MntFlags::MNT_DETACH).unwrap();
        }
        c.finish();
    }
    rt.assert_empty();
}
