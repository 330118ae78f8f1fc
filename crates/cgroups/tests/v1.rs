//! cgroup v1 backend against the real kernel (skipped unless the host mounts
//! cgroup v1 hierarchies at /sys/fs/cgroup and we are root).
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::time::Duration;

use berth_cgroups::{create_manager, open_manager, CgroupError, CgroupVersion, FreezerState};
use common::{assert_gone, host_is_v1, unique_path, Guard, Proc};
use nix::sys::signal::Signal;
use oci_spec::runtime::*;

macro_rules! require_v1 {
    () => {
        if !host_is_v1() {
            eprintln!("skipped: host is not cgroup v1 or not root");
            return;
        }
    };
}

fn new_cgroup(path: &str) -> Guard {
    let m = Guard::new(create_manager(path, "x").unwrap());
    assert_eq!(m.version(), CgroupVersion::V1);
    m.create().unwrap();
    m
}

fn read(mgr: &Guard, controller: &str, file: &str) -> String {
    let dir = mgr
        .paths()
        .into_iter()
        .find(|(k, _)| k.split(',').any(|c| c == controller))
        .map(|(_, p)| p)
        .unwrap();
    fs::read_to_string(dir.join(file))
        .unwrap()
        .trim()
        .to_string()
}

fn resources(f: impl FnOnce(LinuxResourcesBuilder) -> LinuxResourcesBuilder) -> LinuxResources {
    f(LinuxResourcesBuilder::default()).build().unwrap()
}

/// A single-threaded process moves itself into every v1 hierarchy ("0"
/// into `tasks`, as the runtime's init does, without the kernel's global
/// lock) and leaves its cgroup2 place alone (the runtime's clone3 sets that).
#[test]
fn a_process_enters_the_v1_hierarchies_by_itself() {
    require_v1!();
    let path = unique_path();
    let m = new_cgroup(&path);
    let before = fs::read_to_string("/proc/self/cgroup").unwrap();
    let unified_before = before
        .lines()
        .find(|l| l.starts_with("0::"))
        .map(str::to_owned);
    // SAFETY: the child only calls enter_v1_self, reads one file and leaves
    // with _exit, never returning into the (multithreaded) test harness;
    // glibc's fork leaves malloc usable in the child.
    match unsafe { nix::unistd::fork() }.unwrap() {
        nix::unistd::ForkResult::Child => {
            let ok = m.enter_v1_self().is_ok()
                && fs::read_to_string("/proc/self/cgroup").is_ok_and(|mine| {
                    mine.lines().all(|l| match l.starts_with("0::") {
                        true => Some(l.to_owned()) == unified_before,
                        false => l.ends_with(&path),
                    })
                });
            // SAFETY: _exit ends the child without running the parent's
            // atexit handlers or destructors.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            let st = nix::sys::wait::waitpid(child, None).unwrap();
            assert_eq!(st, nix::sys::wait::WaitStatus::Exited(child, 0));
        }
    }
    m.destroy().unwrap();
}

#[test]
fn create_add_task_destroy() {
    require_v1!();
    let path = unique_path();
    let m = new_cgroup(&path);
    let paths = m.paths();
    assert!(paths.contains_key("memory"));
    assert!(paths.contains_key("name=systemd"));
    for p in paths.values() {
        assert!(p.is_dir(), "{} missing", p.display());
    }
    let mut p = Proc::spawn("exec sleep 30");
    m.add_task(p.pid()).unwrap();
    p.go();
    assert_eq!(m.pids().unwrap(), vec![p.pid()]);
    // Every hierarchy (and the unified one on hybrid hosts) holds the process.
    for (k, dir) in m.paths() {
        let procs = fs::read_to_string(dir.join("cgroup.procs")).unwrap();
        assert!(procs.contains(&p.pid().to_string()), "{k}: {procs:?}");
    }
    // Another process reconstructs the manager from the path alone.
    let again = open_manager(&path, "x").unwrap();
    assert_eq!(again.paths(), m.paths());
    assert_eq!(again.pids().unwrap(), vec![p.pid()]);
    again.kill_all(Signal::SIGKILL).unwrap();
    let (st, _, _) = p.wait();
    assert_eq!(common::killed_by(&st), Some(9));
    again.destroy().unwrap();
    assert_gone(&*m);
    // Destroying twice is fine.
    m.destroy().unwrap();
}

#[test]
fn memory_limit_read_back() {
    require_v1!();
    let m = new_cgroup(&unique_path());
    let r = resources(|b| {
        b.memory(
            LinuxMemoryBuilder::default()
                .limit(32 << 20)
                .swap(64 << 20)
                .reservation(16 << 20)
                .swappiness(10u64)
                .build()
                .unwrap(),
        )
    });
    m.apply(&r).unwrap();
    assert_eq!(
        read(&m, "memory", "memory.limit_in_bytes"),
        (32u64 << 20).to_string()
    );
    assert_eq!(
        read(&m, "memory", "memory.memsw.limit_in_bytes"),
        (64u64 << 20).to_string()
    );
    assert_eq!(
        read(&m, "memory", "memory.soft_limit_in_bytes"),
        (16u64 << 20).to_string()
    );
    assert_eq!(read(&m, "memory", "memory.swappiness"), "10");
    // Lowering both (order matters for the kernel) and raising again.
    for (l, s) in [(8i64 << 20, 8i64 << 20), (128 << 20, 256 << 20), (-1, -1)] {
        let r = resources(|b| {
            b.memory(
                LinuxMemoryBuilder::default()
                    .limit(l)
                    .swap(s)
                    .build()
                    .unwrap(),
            )
        });
        m.apply(&r).unwrap();
    }
    let st = m.stats().unwrap();
    assert!(st.memory.usage.limit > 1 << 40, "{:?}", st.memory.usage);
    let json = serde_json::to_value(&st).unwrap();
    assert!(json["memory"]["usage"].get("limit").is_some());
    m.destroy().unwrap();
    assert_gone(&*m);
}

#[test]
fn oom_kill_is_reported() {
    require_v1!();
    let m = new_cgroup(&unique_path());
    let r = resources(|b| {
        b.memory(
            LinuxMemoryBuilder::default()
                .limit(16 << 20)
                .swap(16 << 20)
                .build()
                .unwrap(),
        )
    });
    m.apply(&r).unwrap();
    assert!(!m.oom_killed().unwrap());
    // dd allocates and fills a 64 MiB buffer.
    let mut p = Proc::spawn("exec dd if=/dev/zero of=/dev/null bs=64M count=1");
    m.add_task(p.pid()).unwrap();
    p.go();
    let (st, _, err) = p.wait();
    assert_eq!(common::killed_by(&st), Some(9), "{st:?} {err}");
    assert!(m.oom_killed().unwrap());
    assert!(m.oom_kill_count().unwrap() >= 1);
    let mem = m.stats().unwrap().memory;
    // (failcnt stays 0 on some kernels; the peak shows the limit was hit.)
    assert!(mem.usage.max >= 15 << 20, "{mem:?}");
    m.destroy().unwrap();
    assert_gone(&*m);
}

#[test]
fn pids_limit_stops_fork_loop() {
    require_v1!();
    let m = new_cgroup(&unique_path());
    let r = resources(|b| b.pids(LinuxPidsBuilder::default().limit(5).build().unwrap()));
    m.apply(&r).unwrap();
    assert_eq!(read(&m, "pids", "pids.max"), "5");
    let mut p = Proc::spawn("for i in 1 2 3 4 5 6 7 8 9 10; do sleep 30 </dev/null >/dev/null 2>&1 & done; echo loop-finished");
    m.add_task(p.pid()).unwrap();
    p.go();
    let (st, out, err) = p.wait();
    // dash exits with 2 when fork fails (EAGAIN from the pids controller).
    assert_eq!(st.code(), Some(2), "{out} {err}");
    assert!(err.contains("Cannot fork"), "{err}");
    assert!(!out.contains("loop-finished"));
    assert!(read(&m, "pids", "pids.events").contains("max"));
    let s = m.stats().unwrap();
    assert_eq!(s.pids.limit, 5);
    assert!(s.pids.current >= 1);
    // The orphaned sleeps are still inside: kill them all, then destroy.
    assert!(!m.pids().unwrap().is_empty());
    m.kill_all(Signal::SIGKILL).unwrap();
    m.destroy().unwrap();
    assert_gone(&*m);
    // "max" for limits <= 0.
    let m = new_cgroup(&unique_path());
    let r = resources(|b| b.pids(LinuxPidsBuilder::default().limit(0).build().unwrap()));
    m.apply(&r).unwrap();
    assert_eq!(read(&m, "pids", "pids.max"), "max");
}

#[test]
fn cpu_quota_throttles() {
    require_v1!();
    let m = new_cgroup(&unique_path());
    let r = resources(|b| {
        b.cpu(
            LinuxCpuBuilder::default()
                .shares(512u64)
                .quota(10_000i64)
                .period(100_000u64)
                .build()
                .unwrap(),
        )
    });
    m.apply(&r).unwrap();
    assert_eq!(read(&m, "cpu", "cpu.cfs_quota_us"), "10000");
    assert_eq!(read(&m, "cpu", "cpu.cfs_period_us"), "100000");
    assert_eq!(read(&m, "cpu", "cpu.shares"), "512");
    let mut p = Proc::spawn("while :; do :; done");
    m.add_task(p.pid()).unwrap();
    p.go();
    std::thread::sleep(Duration::from_millis(450));
    let s = m.stats().unwrap();
    assert!(s.cpu.throttling.periods > 0, "{:?}", s.cpu);
    assert!(s.cpu.throttling.throttled_periods > 0, "{:?}", s.cpu);
    assert!(s.cpu.throttling.throttled_time > 0, "{:?}", s.cpu);
    assert!(s.cpu.usage.total > 0, "{:?}", s.cpu);
    // 10% of one CPU for ~450ms: well under 200ms of CPU time.
    assert!(s.cpu.usage.total < 200_000_000, "{:?}", s.cpu);
    m.kill_all(Signal::SIGKILL).unwrap();
    drop(p);
    m.destroy().unwrap();
    assert_gone(&*m);
}

#[test]
fn cpuset_on_fresh_nested_path() {
    require_v1!();
    let top = unique_path();
    let m = new_cgroup(&format!("{top}/a/b"));
    let r = resources(|b| {
        b.cpu(
            LinuxCpuBuilder::default()
                .cpus("0")
                .mems("0")
                .build()
                .unwrap(),
        )
    });
    m.apply(&r).unwrap();
    assert_eq!(read(&m, "cpuset", "cpuset.cpus"), "0");
    let mut p = Proc::spawn("grep Cpus_allowed_list /proc/self/status");
    m.add_task(p.pid()).unwrap();
    p.go();
    let (st, out, _) = p.wait();
    assert!(st.success());
    assert!(out.contains("Cpus_allowed_list:\t0\n"), "{out}");
    m.destroy().unwrap();
    assert_gone(&*m);
    // Ancestors created by this manager went too.
    assert!(!std::path::Path::new(&format!("/sys/fs/cgroup/cpuset{top}")).exists());
    assert!(!std::path::Path::new(&format!("/sys/fs/cgroup/memory{top}")).exists());
}

#[test]
fn freeze_and_thaw() {
    require_v1!();
    let m = new_cgroup(&unique_path());
    let mut p = Proc::spawn("exec sleep 30");
    m.add_task(p.pid()).unwrap();
    p.go();
    assert_eq!(m.freezer_state().unwrap(), FreezerState::Thawed);
    m.freeze().unwrap();
    assert_eq!(m.freezer_state().unwrap(), FreezerState::Frozen);
    assert_eq!(read(&m, "freezer", "freezer.state"), "FROZEN");
    m.thaw().unwrap();
    assert_eq!(m.freezer_state().unwrap(), FreezerState::Thawed);
    // kill_all on a frozen cgroup still kills (it thaws afterwards).
    m.freeze().unwrap();
    m.thaw().unwrap();
    m.kill_all(Signal::SIGKILL).unwrap();
    let (st, _, _) = p.wait();
    assert_eq!(common::killed_by(&st), Some(9));
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

#[test]
fn devices_deny_all_allow_null() {
    require_v1!();
    let m = new_cgroup(&unique_path());
    let r = resources(|b| {
        b.devices(vec![
            dev_rule(false, LinuxDeviceType::A, None, None, "rwm"),
            dev_rule(true, LinuxDeviceType::C, Some(1), Some(3), "rwm"),
        ])
    });
    m.apply(&r).unwrap();
    assert_eq!(read(&m, "devices", "devices.list"), "c 1:3 rwm");
    let mut p = Proc::spawn(
        "(exec 3</dev/null) && echo null-ok; (exec 3</dev/zero) 2>/dev/null || echo zero-denied",
    );
    m.add_task(p.pid()).unwrap();
    p.go();
    let (_, out, _) = p.wait();
    assert_eq!(out, "null-ok\nzero-denied\n");
    m.destroy().unwrap();
    assert_gone(&*m);
}

/// A hugetlb limit on a hybrid host never changes the unified hierarchy's
/// root: `+hugetlb` in its `cgroup.subtree_control` binds the controller to
/// cgroup2 for the whole host (no v1 hugetlb hierarchy can be mounted any
/// more, and crun refuses the host), and nothing takes it back. As runc,
/// berth uses the v1 hugetlb hierarchy, or the unified one only where the
/// host itself enabled hugetlb in its root.
#[test]
fn hugetlb_limit_leaves_the_unified_root_alone() {
    require_v1!();
    let ctl = "/sys/fs/cgroup/unified/cgroup.subtree_control";
    let Ok(before) = fs::read_to_string(ctl) else {
        eprintln!("skipped: the host has no unified (cgroup2) hierarchy");
        return;
    };
    let m = new_cgroup(&unique_path());
    let r = resources(|b| {
        b.hugepage_limits(vec![LinuxHugepageLimitBuilder::default()
            .page_size("2MB")
            .limit(4i64 << 20)
            .build()
            .unwrap()])
    });
    let res = m.apply(&r);
    let during = fs::read_to_string(ctl).unwrap();
    m.destroy().unwrap();
    let after = fs::read_to_string(ctl).unwrap();
    assert_eq!(during, before, "apply changed {ctl}");
    assert_eq!(after, before, "destroy left {ctl} changed");
    if let Err(e) = res {
        let s = e.to_string();
        assert!(s.starts_with("linux.resources.hugepageLimits: "), "{s}");
    }
    assert_gone(&*m);
}

#[test]
fn hugetlb_limit_on_hybrid_host() {
    require_v1!();
    let sizes: Vec<_> = fs::read_dir("/sys/kernel/mm/hugepages")
        .map(|d| d.count())
        .into_iter()
        .collect();
    if sizes.first().copied().unwrap_or(0) == 0 {
        return;
    }
    let m = new_cgroup(&unique_path());
    let r = resources(|b| {
        b.hugepage_limits(vec![LinuxHugepageLimitBuilder::default()
            .page_size("2MB")
            .limit(4i64 << 20)
            .build()
            .unwrap()])
    });
    match m.apply(&r) {
        Ok(()) => {
            let paths = m.paths();
            let file = if paths.contains_key("hugetlb") {
                paths["hugetlb"].join("hugetlb.2MB.limit_in_bytes")
            } else {
                paths["unified"].join("hugetlb.2MB.max")
            };
            assert_eq!(
                fs::read_to_string(file).unwrap().trim(),
                (4u64 << 20).to_string()
            );
            assert!(m.stats().unwrap().hugetlb.contains_key("2MB"));
        }
        Err(e) => {
            let s = e.to_string();
            assert!(s.starts_with("linux.resources.hugepageLimits"), "{s}");
        }
    }
    m.destroy().unwrap();
    assert_gone(&*m);
}

#[test]
fn systemd_path_is_rejected() {
    let e = create_manager("system.slice:berth:abc", "abc").unwrap_err();
    assert!(matches!(e, CgroupError::SystemdUnsupported(_)));
    assert!(e.to_string().contains("not supported"), "{e}");
}

#[test]
fn unsupported_limits_are_clear_errors() {
    require_v1!();
    let mounted = |c: &str| {
        fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .any(|l| {
                l.contains(" - cgroup ") && l.rsplit(' ').next().unwrap().split(',').any(|o| o == c)
            })
    };
    let m = new_cgroup(&unique_path());
    if !mounted("net_cls") {
        let r = resources(|b| {
            b.network(
                LinuxNetworkBuilder::default()
                    .class_id(0x10001u32)
                    .build()
                    .unwrap(),
            )
        });
        let e = m.apply(&r).unwrap_err();
        assert_eq!(
            e.to_string(),
            "linux.resources.network.classID: the host has no net_cls cgroup controller mounted"
        );
    }
    let blkio = m.paths().get("blkio").cloned().unwrap();
    if !blkio.join("blkio.leaf_weight").exists() {
        let r = resources(|b| {
            b.block_io(
                LinuxBlockIoBuilder::default()
                    .leaf_weight(100u16)
                    .build()
                    .unwrap(),
            )
        });
        let e = m.apply(&r).unwrap_err();
        assert_eq!(
            e.to_string(),
            "linux.resources.blockIO.leafWeight: the host's blkio controller has no blkio.leaf_weight"
        );
    }
    let weight = resources(|b| {
        b.block_io(
            LinuxBlockIoBuilder::default()
                .weight(500u16)
                .build()
                .unwrap(),
        )
    });
    match m.apply(&weight) {
        Ok(()) => {
            let f = ["blkio.weight", "blkio.bfq.weight"]
                .into_iter()
                .find(|f| blkio.join(f).exists())
                .unwrap();
            assert!(fs::read_to_string(blkio.join(f)).unwrap().contains("500"));
        }
        Err(e) => assert!(
            e.to_string().starts_with(
                "linux.resources.blockIO.weight: the host's blkio controller has no blkio.weight"
            ),
            "{e}"
        ),
    }
    let mut unified = std::collections::HashMap::new();
    unified.insert("memory.max".to_string(), "1000000".to_string());
    let e = m.apply(&resources(|b| b.unified(unified))).unwrap_err();
    assert!(e.to_string().starts_with("linux.resources.unified:"), "{e}");
    // A bad device rule names its index.
    let bad = resources(|b| {
        b.devices(vec![dev_rule(
            true,
            LinuxDeviceType::C,
            Some(1),
            Some(3),
            "rwz",
        )])
    });
    let e = m.apply(&bad).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("linux.resources.devices[0].access"),
        "{e}"
    );
    m.destroy().unwrap();
    assert_gone(&*m);
}

#[test]
fn write_errors_name_file_and_field() {
    require_v1!();
    let m = new_cgroup(&unique_path());
    // A period below the kernel minimum (1ms) is rejected with EINVAL.
    let r = resources(|b| b.cpu(LinuxCpuBuilder::default().period(10u64).build().unwrap()));
    let e = m.apply(&r).unwrap_err().to_string();
    assert!(
        e.starts_with(
            "cgroup: cannot set cpu period (linux.resources.cpu.period) in /sys/fs/cgroup/cpu"
        ),
        "{e}"
    );
    assert!(
        e.ends_with("write cpu.cfs_period_us: Invalid argument"),
        "{e}"
    );
    m.destroy().unwrap();
    assert_gone(&*m);
}

#[test]
fn lifecycle_repeats_cleanly() {
    require_v1!();
    let r = resources(|b| {
        b.memory(
            LinuxMemoryBuilder::default()
                .limit(64 << 20)
                .build()
                .unwrap(),
        )
        .pids(LinuxPidsBuilder::default().limit(100).build().unwrap())
        .cpu(LinuxCpuBuilder::default().shares(512u64).build().unwrap())
    });
    for _ in 0..5 {
        let m = Guard::new(create_manager(&unique_path(), "x").unwrap());
        m.create().unwrap();
        m.apply(&r).unwrap();
        m.destroy().unwrap();
        assert_gone(&*m);
    }
}
