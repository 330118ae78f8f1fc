//! Resource limits: cgroup v1 memory, pids and cpu controllers, `events
//! --stats`, and process rlimits.
#![allow(clippy::unwrap_used)]

mod common;

use common::{poll, v1_dir, Ctr, Rt};
use serde_json::{json, Value};
use std::time::Duration;

const MIB: i64 = 1024 * 1024;

fn memory_limit(c: &mut Ctr, bytes: i64) {
    c.edit_json(|v| {
        v["linux"]["resources"]["memory"] = json!({"limit": bytes, "swap": bytes});
    });
}

/// dd allocates its 64 MiB block at once: the kernel OOM-kills it inside a
/// 32 MiB cgroup, and `run` reports the SIGKILL as 137.
#[test]
fn memory_limit_oom_kills() {
    let rt = Rt::new();
    let mut c = Ctr::new(
        &rt,
        &["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"],
    );
    memory_limit(&mut c, 32 * MIB);
    let out = rt.run(&c);
    assert_eq!(out.code, Some(137), "{out:#?}");
    c.finish();
    rt.assert_empty();
}

/// The same OOM kill seen through `events --stats` of a created-and-started
/// container, before it is deleted.
#[test]
fn memory_stats_after_oom() {
    let rt = Rt::new();
    let mut c = Ctr::sh(
        &rt,
        "dd if=/dev/zero of=/dev/null bs=64M count=1; echo rc=$?; exec sleep 1000",
    );
    memory_limit(&mut c, 32 * MIB);
    rt.create(&c, &[]).ok();
    let dir = v1_dir("memory", &c.cgpath);
    assert_eq!(
        std::fs::read_to_string(dir.join("memory.limit_in_bytes"))
            .unwrap()
            .trim(),
        (32 * MIB).to_string()
    );
    rt.out(&["start", &c.id]).ok();
    let out = c.wait_output("rc=");
    assert!(out.contains("rc=137"), "{out} / {}", c.stderr());
    let ev: Value = serde_json::from_str(rt.out(&["events", "--stats", &c.id]).ok()).unwrap();
    assert_eq!(ev["type"], "stats", "{ev}");
    assert_eq!(ev["id"], c.id.as_str(), "{ev}");
    let mem = &ev["data"]["memory"];
    assert_eq!(mem["usage"]["limit"], 32 * MIB, "{ev}");
    assert!(mem["usage"]["usage"].as_u64().unwrap() > 0, "{ev}");
    // The usage reached the limit at some point.
    assert_eq!(mem["usage"]["max"], 32 * MIB, "{ev}");
    let oom_control = std::fs::read_to_string(dir.join("memory.oom_control")).unwrap();
    assert!(
        oom_control.contains("oom_kill ") && !oom_control.contains("oom_kill 0"),
        "{oom_control}"
    );
    c.finish();
    rt.assert_empty();
}

/// A fork bomb of 30 background sleeps under pids.max = 10: a fork fails
/// (busybox sh then exits), the kernel counts the refused forks, and the
/// container stops.
#[test]
fn pids_limit_stops_fork_bomb() {
    let rt = Rt::new();
    let mut c = Ctr::sh(
        &rt,
        "i=0; while [ $i -lt 30 ]; do sleep 1000 & i=$((i+1)); done; echo all-forked",
    );
    c.edit_json(|v| {
        v["linux"]["resources"]["pids"] = json!({"limit": 10});
    });
    rt.create(&c, &[]).ok();
    let dir = v1_dir("pids", &c.cgpath);
    assert_eq!(
        std::fs::read_to_string(dir.join("pids.max"))
            .unwrap()
            .trim(),
        "10"
    );
    rt.out(&["start", &c.id]).ok();
    rt.wait_status(&c.id, "stopped");
    assert!(
        !c.stdout().contains("all-forked"),
        "30 forks succeeded: {}",
        c.stdout()
    );
    assert!(
        c.stderr().contains("can't fork"),
        "no failed fork reported: {}",
        c.stderr()
    );
    let events = std::fs::read_to_string(dir.join("pids.events")).unwrap();
    let refused: u64 = events
        .lines()
        .find_map(|l| l.strip_prefix("max "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(refused > 0, "{events}");
    // The pid namespace died with its init: no sleep is left.
    assert!(
        poll(Duration::from_secs(5), || std::fs::read_to_string(
            dir.join("cgroup.procs")
        )
        .unwrap()
        .trim()
        .is_empty()),
        "processes left in the cgroup"
    );
    c.finish();
    rt.assert_empty();
}

/// A busy loop under a 10% CFS quota is throttled.
#[test]
fn cpu_quota_throttles() {
    let rt = Rt::new();
    let mut c = Ctr::sh(&rt, "while :; do :; done");
    c.edit_json(|v| {
        v["linux"]["resources"]["cpu"] = json!({"quota": 10000, "period": 100000});
    });
    rt.create(&c, &[]).ok();
    let dir = v1_dir("cpu", &c.cgpath);
    let read = |f: &str| {
        std::fs::read_to_string(dir.join(f))
            .unwrap()
            .trim()
            .to_owned()
    };
    assert_eq!(read("cpu.cfs_quota_us"), "10000");
    assert_eq!(read("cpu.cfs_period_us"), "100000");
    rt.out(&["start", &c.id]).ok();
    let mut stat = String::new();
    let throttled = poll(Duration::from_secs(10), || {
        stat = read("cpu.stat");
        stat.lines()
            .find_map(|l| l.strip_prefix("nr_throttled "))
            .and_then(|n| n.parse::<u64>().ok())
            .is_some_and(|n| n > 0)
    });
    assert!(throttled, "never throttled: {stat}");
    let ev: Value = serde_json::from_str(rt.out(&["events", "--stats", &c.id]).ok()).unwrap();
    let t = &ev["data"]["cpu"]["throttling"];
    assert!(t.is_object(), "{ev}");
    rt.out(&["kill", &c.id, "KILL"]).ok();
    rt.wait_status(&c.id, "stopped");
    c.finish();
    rt.assert_empty();
}

fn nofile(c: &mut Ctr, soft: u64, hard: u64) {
    c.edit_json(|v| {
        v["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": soft, "hard": hard}]);
    });
}

#[test]
fn rlimit_nofile() {
    let rt = Rt::new();
    let mut c = Ctr::sh(
        &rt,
        "ulimit -n; ulimit -Hn; grep 'open files' /proc/self/limits",
    );
    nofile(&mut c, 1000, 1010);
    let out = rt.run(&c);
    let lines: Vec<&str> = out.ok().lines().collect();
    assert_eq!(lines[0], "1000", "{out:#?}");
    assert_eq!(lines[1], "1010", "{out:#?}");
    let cols: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(cols[3..5], ["1000", "1010"], "{out:#?}");

    let mut c2 = Ctr::sh(&rt, "ulimit -n");
    nofile(&mut c2, 1024, 1024);
    assert_eq!(rt.run(&c2).ok(), "1024\n");
    c.finish();
    c2.finish();
    rt.assert_empty();
}

/// The host's hard RLIMIT_NOFILE is lower than asked and the runtime lacks
/// CAP_SYS_RESOURCE: `create` fails naming process.rlimits.
#[test]
fn rlimit_above_host_hard_limit_fails() {
    let (_, host_hard) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
    let has_sys_resource = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .map(|v| u64::from_str_radix(v.trim(), 16).unwrap() & (1 << 24) != 0)
        .unwrap();
    if has_sys_resource {
        eprintln!("skipped: this process has CAP_SYS_RESOURCE");
        return;
    }
    let rt = Rt::new();
    let mut c = Ctr::sh(&rt, "true");
    nofile(&mut c, 1024, host_hard + 10000);
    let out = rt.create(&c, &[]);
    let line = out.fails_one_line();
    assert!(line.contains("process.rlimits"), "{line}");
    assert!(line.contains("RLIMIT_NOFILE"), "{line}");
    assert!(rt.status(&c.id).is_none());
    c.assert_nothing_left();
    rt.assert_empty();
}
