//! cgroup v2 backend against a real cgroup2 mount: /sys/fs/cgroup on a pure
//! v2 host, /sys/fs/cgroup/unified on a hybrid one (where only the core
//! mechanics and hugetlb are available). Includes the eBPF device filter.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;

use berth_cgroups::v2::V2Manager;
use berth_cgroups::{CgroupManager, CgroupVersion, FreezerState};
use common::{assert_gone, unique_path, v2_mount, Guard, Proc};
use nix::sys::signal::Signal;
use oci_spec::runtime::*;

macro_rules! require_v2 {
    () => {
        match v2_mount() {
            Some(m) => m,
            None => {
                eprintln!("skipped: no cgroup2 mount or not root");
                return;
            }
        }
    };
}

fn new_cgroup(mount: &str, path: &str) -> Guard {
    let m = V2Manager::new(mount, path, "x").unwrap();
    let m = Guard::new(std::boxed::Box::new(m) as std::boxed::Box<dyn CgroupManager>);
    assert_eq!(m.version(), CgroupVersion::V2);
    m.create().unwrap();
    m
}

fn dir(m: &Guard) -> std::path::PathBuf {
    m.paths()["unified"].clone()
}

#[test]
fn mechanics_create_freeze_kill_destroy() {
    let mount = require_v2!();
    let top = unique_path();
    let m = new_cgroup(mount, &format!("{top}/leaf"));
    assert!(dir(&m).is_dir());
    let mut a = Proc::spawn("exec sleep 30");
    let mut b = Proc::spawn("exec sleep 30");
    m.add_task(a.pid()).unwrap();
    m.add_task(b.pid()).unwrap();
    a.go();
    b.go();
    let mut pids = m.pids().unwrap();
    pids.sort();
    let mut want = vec![a.pid(), b.pid()];
    want.sort();
    assert_eq!(pids, want);

    assert_eq!(m.freezer_state().unwrap(), FreezerState::Thawed);
    m.freeze().unwrap();
    assert_eq!(m.freezer_state().unwrap(), FreezerState::Frozen);
    assert_eq!(
        fs::read_to_string(dir(&m).join("cgroup.freeze"))
            .unwrap()
            .trim(),
        "1"
    );
    m.thaw().unwrap();
    assert_eq!(m.freezer_state().unwrap(), FreezerState::Thawed);

    m.kill_all(Signal::SIGKILL).unwrap();
    for p in [a, b] {
        let (st, _, _) = p.wait();
        assert_eq!(common::killed_by(&st), Some(9));
    }
    let _ = m.stats().unwrap();
    m.destroy().unwrap();
    assert_gone(&*m);
    // The ancestor created by this manager is removed too.
    assert!(!std::path::Path::new(&format!("{mount}{top}")).exists());
}

#[test]
fn kill_all_with_other_signal() {
    let mount = require_v2!();
    let m = new_cgroup(mount, &unique_path());
    let mut p = Proc::spawn("exec sleep 30");
    m.add_task(p.pid()).unwrap();
    p.go();
    m.kill_all(Signal::SIGTERM).unwrap();
    let (st, _, _) = p.wait();
    assert_eq!(common::killed_by(&st), Some(15));
    m.destroy().unwrap();
    assert_gone(&*m);
}

fn dev_rule(
    allow: bool,
    typ: LinuxDeviceType,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> LinuxDeviceCgroup {
    let mut b = LinuxDeviceCgroupBuilder::default()
        .allow(allow)
        .typ(typ)
        .access(access);
    if let Some(m) = major {
        b = b.major(m);
    }
    if let Some(m) = minor {
        b = b.minor(m);
    }
    b.build().unwrap()
}

fn devices(rules: Vec<LinuxDeviceCgroup>) -> LinuxResources {
    LinuxResourcesBuilder::default()
        .devices(rules)
        .build()
        .unwrap()
}

/// Runs `script` in the cgroup and returns its stdout.
fn run_in(m: &Guard, script: &str) -> String {
    let mut p = Proc::spawn(script);
    m.add_task(p.pid()).unwrap();
    p.go();
    let (_, out, _) = p.wait();
    out
}

const PROBE: &str = "for d in null zero full; do if (exec 3</dev/$d) 2>/dev/null; then echo $d-ok; else echo $d-denied; fi; done";

#[test]
fn ebpf_device_filter() {
    let mount = require_v2!();
    let m = new_cgroup(mount, &unique_path());
    let tmp = tempfile::tempdir().unwrap();
    let a = LinuxDeviceType::A;
    let c = LinuxDeviceType::C;

    // Deny all, allow /dev/null read/write but not mknod.
    m.apply(&devices(vec![
        dev_rule(false, a, None, None, "rwm"),
        dev_rule(true, c, Some(1), Some(3), "rw"),
    ]))
    .unwrap();
    let node = tmp.path().join("n1");
    let out = run_in(
        &m,
        &format!(
            "{PROBE}; mknod {} c 1 3 2>/dev/null && echo mknod-ok || echo mknod-denied",
            node.display()
        ),
    );
    assert_eq!(out, "null-ok\nzero-denied\nfull-denied\nmknod-denied\n");

    // Replacing the filter (runtime `update`): allow everything but /dev/full
    // (last matching rule wins), and mknod of 1:3 now allowed.
    m.apply(&devices(vec![
        dev_rule(true, a, None, None, "rwm"),
        dev_rule(false, c, Some(1), Some(7), "rwm"),
    ]))
    .unwrap();
    let node = tmp.path().join("n2");
    let out = run_in(
        &m,
        &format!(
            "{PROBE}; mknod {} c 1 3 2>/dev/null && echo mknod-ok || echo mknod-denied",
            node.display()
        ),
    );
    assert_eq!(out, "null-ok\nzero-ok\nfull-denied\nmknod-ok\n");

    // Later rules override earlier ones: deny 1:5, then allow char major 1.
    m.apply(&devices(vec![
        dev_rule(false, a, None, None, "rwm"),
        dev_rule(false, c, Some(1), Some(5), "rwm"),
        dev_rule(true, c, Some(1), None, "rw"),
    ]))
    .unwrap();
    assert_eq!(run_in(&m, PROBE), "null-ok\nzero-ok\nfull-ok\n");

    // Partial access: deny write on /dev/zero, read still fine.
    m.apply(&devices(vec![
        dev_rule(true, a, None, None, "rwm"),
        dev_rule(false, c, Some(1), Some(5), "w"),
    ]))
    .unwrap();
    let out = run_in(
        &m,
        "(exec 3</dev/zero) && echo read-ok; (exec 3>/dev/zero) 2>/dev/null || echo write-denied",
    );
    assert_eq!(out, "read-ok\nwrite-denied\n");

    m.destroy().unwrap();
    assert_gone(&*m);
}

#[test]
fn hugetlb_and_unknown_controllers() {
    let mount = require_v2!();
    let m = new_cgroup(mount, &unique_path());
    let available = fs::read_to_string(dir(&m).join("cgroup.controllers")).unwrap();
    let has_pages = fs::read_dir("/sys/kernel/mm/hugepages")
        .map(|d| d.flatten().any(|e| e.file_name() == "hugepages-2048kB"))
        .unwrap_or(false);
    if available.split_whitespace().any(|c| c == "hugetlb") && has_pages {
        let r = LinuxResourcesBuilder::default()
            .hugepage_limits(vec![LinuxHugepageLimitBuilder::default()
                .page_size("2MB")
                .limit(4i64 << 20)
                .build()
                .unwrap()])
            .build()
            .unwrap();
        m.apply(&r).unwrap();
        assert_eq!(
            fs::read_to_string(dir(&m).join("hugetlb.2MB.max"))
                .unwrap()
                .trim(),
            (4u64 << 20).to_string()
        );
        assert!(m.stats().unwrap().hugetlb.contains_key("2MB"));
    }
    if !available.split_whitespace().any(|c| c == "pids") {
        let r = LinuxResourcesBuilder::default()
            .pids(LinuxPidsBuilder::default().limit(5).build().unwrap())
            .build()
            .unwrap();
        let e = m.apply(&r).unwrap_err().to_string();
        assert_eq!(
            e,
            "linux.resources.pids.limit: the host's pids controller has no pids.max"
        );
    }
    // net_cls / net_prio do not exist in v2.
    let r = LinuxResourcesBuilder::default()
        .network(
            LinuxNetworkBuilder::default()
                .class_id(1u32)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let e = m.apply(&r).unwrap_err().to_string();
    assert!(e.starts_with("linux.resources.network:"), "{e}");
    // Unified keys must be plain interface file names.
    let mut u = std::collections::HashMap::new();
    u.insert("../cgroup.procs".to_string(), "1".to_string());
    let r = LinuxResourcesBuilder::default().unified(u).build().unwrap();
    let e = m.apply(&r).unwrap_err().to_string();
    assert!(e.contains("linux.resources.unified"), "{e}");
    m.destroy().unwrap();
    assert_gone(&*m);
}
