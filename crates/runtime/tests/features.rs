//! Spec features the other files do not reach: --no-pivot, sysctls,
//! oomScoreAdj, a time namespace with offsets, domainname, cpuset, groups,
//! umask, --pid-file, kill --all, --preserve-fds, blkio throttling.
#![allow(clippy::unwrap_used)]

mod common;

use common::{poll, Ctr, Rt};
use serde_json::json;
use std::time::Duration;

#[test]
fn no_pivot_chroots_into_the_rootfs() {
    let rt = Rt::new();
    let c = Ctr::sh(&rt, "ls /bin/busybox && cat /proc/self/mountinfo | wc -l");
    let out = rt.out(&["run", "--no-pivot", "--bundle", c.bundle_path_str(), &c.id]);
    let text = out.ok();
    assert!(text.starts_with("/bin/busybox\n"), "{out:#?}");
    c.finish();
    rt.assert_empty();
}

#[test]
fn sysctls_domainname_and_oom_score_adj() {
    let rt = Rt::new();
    let mut c = Ctr::sh(
        &rt,
        "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni /proc/self/oom_score_adj /proc/sys/kernel/domainname",
    );
    c.edit_json(|v| {
        v["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1", "kernel.shmmni": "1234"});
        v["process"]["oomScoreAdj"] = json!(321);
        v["domainname"] = json!("example.test");
    });
    let out = rt.run(&c);
    assert_eq!(out.ok(), "1\n1234\n321\nexample.test\n", "{out:#?}");
    // The host's values are untouched.
    assert_ne!(
        std::fs::read_to_string("/proc/sys/kernel/shmmni")
            .unwrap()
            .trim(),
        "1234"
    );
    c.finish();
    rt.assert_empty();
}

#[test]
fn a_sysctl_that_is_not_namespaced_is_refused() {
    let rt = Rt::new();
    let mut c = Ctr::sh(&rt, "true");
    c.edit_json(|v| v["linux"]["sysctl"] = json!({"vm.swappiness": "10"}));
    let out = rt.run(&c);
    let line = out.fails_one_line();
    assert!(line.contains("linux.sysctl.vm.swappiness"), "{line}");
    c.assert_nothing_left();
    rt.assert_empty();
}

#[test]
fn time_namespace_with_offsets() {
    if !std::path::Path::new("/proc/self/ns/time").exists() {
        eprintln!("skipped: no time namespaces on this kernel");
        return;
    }
    let rt = Rt::new();
    let mut c = Ctr::sh(&rt, "cut -d. -f1 /proc/uptime; readlink /proc/self/ns/time");
    c.edit_json(|v| {
        v["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "time"}));
        v["linux"]["timeOffsets"] = json!({"boottime": {"secs": 864000, "nanosecs": 0}});
    });
    let host_uptime: f64 = std::fs::read_to_string("/proc/uptime")
        .unwrap()
        .split('.')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let out = rt.run(&c);
    let lines: Vec<&str> = out.ok().lines().collect();
    let inner: f64 = lines[0].parse().unwrap();
    assert!(
        inner >= host_uptime + 864000.0 - 5.0,
        "uptime inside {inner}, host {host_uptime}: {out:#?}"
    );
    assert_ne!(lines[1], common::ns_of("self", "time"));
    c.finish();
    rt.assert_empty();
}

#[test]
fn cpuset_additional_groups_and_umask() {
    let rt = Rt::new();
    let mut c = Ctr::sh(
        &rt,
        "grep Cpus_allowed_list /proc/self/status; id -G; umask",
    );
    c.edit_json(|v| {
        v["linux"]["resources"]["cpu"] = json!({"cpus": "0"});
        v["process"]["user"] = json!({"uid": 0, "gid": 0, "additionalGids": [10, 20], "umask": 23});
    });
    let out = rt.run(&c);
    let lines: Vec<&str> = out.ok().lines().collect();
    assert!(lines[0].ends_with("\t0"), "{out:#?}");
    assert_eq!(lines[1], "0 10 20", "{out:#?}");
    assert_eq!(lines[2], "0027", "{out:#?}");
    c.finish();
    rt.assert_empty();
}

#[test]
fn pid_file_and_kill_all() {
    let rt = Rt::new();
    let c = Ctr::sh(&rt, "sleep 100 & sleep 100 & echo started; wait");
    let pid_file = c.bundle.path().join("init.pid");
    let out = rt.create(&c, &["--pid-file", pid_file.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{out:#?}");
    let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    assert_eq!(pid, rt.pid(&c.id));
    rt.out(&["start", &c.id]).ok();
    c.wait_output("started");
    let pids = || -> Vec<i64> {
        serde_json::from_str(rt.out(&["ps", "--format", "json", &c.id]).ok()).unwrap()
    };
    assert!(
        poll(Duration::from_secs(5), || pids().len() == 3),
        "{:?}",
        pids()
    );
    rt.out(&["kill", "--all", &c.id, "KILL"]).ok();
    rt.wait_status(&c.id, "stopped");
    assert!(poll(Duration::from_secs(5), || {
        let o = rt.out(&["ps", "--format", "json", &c.id]);
        o.stdout.trim() == "[]"
    }));
    c.finish();
    rt.assert_empty();
}

#[test]
fn preserve_fds_passes_exactly_the_extra_descriptors() {
    let rt = Rt::new();
    let c = Ctr::sh(
        &rt,
        "for f in /proc/self/fd/*; do echo \"${f##*/} $(readlink $f)\"; done; cat <&3",
    );
    let extra = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(extra.path(), "through fd 3").unwrap();
    let leak_dir = tempfile::Builder::new()
        .prefix("berth-leak-")
        .tempdir()
        .unwrap();
    // A host shell opens the file as fd 3 and a host directory as fd 4,
    // without close-on-exec, then becomes the runtime.
    let mut cmd = std::process::Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(r#"exec 3<"$1" 4<"$2"; shift 2; exec "$@""#)
        .arg("sh")
        .arg(extra.path())
        .arg(leak_dir.path())
        .arg(common::BIN)
        .arg("--root")
        .arg(rt.root())
        .args([
            "run",
            "--preserve-fds",
            "1",
            "--bundle",
            c.bundle_path_str(),
            &c.id,
        ])
        .stdin(std::process::Stdio::null());
    let out = common::Out::from_output(cmd.output().unwrap());
    let text = out.ok();
    assert!(
        text.contains(&format!("3 {}", extra.path().display())),
        "{out:#?}"
    );
    assert!(!text.contains("berth-leak-"), "fd 4 leaked: {out:#?}");
    assert!(text.ends_with("through fd 3"), "{out:#?}");
    c.finish();
    rt.assert_empty();
}

/// The major:minor of the block device holding /.
fn root_block_device() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let line = text.lines().find(|l| l.split(' ').nth(4) == Some("/"))?;
    let (maj, min) = line.split(' ').nth(2)?.split_once(':')?;
    let (maj, min): (u64, u64) = (maj.parse().ok()?, min.parse().ok()?);
    // Only whole disks take throttle rules; partitions and virtual devices don't.
    std::path::Path::new(&format!("/sys/dev/block/{maj}:{min}/queue"))
        .exists()
        .then_some((maj, min))
}

#[test]
fn blkio_throttle_is_written() {
    let Some((maj, min)) = root_block_device() else {
        eprintln!("skipped: / is not on a whole block device");
        return;
    };
    if !std::path::Path::new("/sys/fs/cgroup/blkio").exists() {
        eprintln!("skipped: no v1 blkio hierarchy");
        return;
    }
    let rt = Rt::new();
    let mut c = Ctr::sh(&rt, "echo up; sleep 100");
    c.edit_json(|v| {
        v["linux"]["resources"]["blockIO"] = json!({
            "throttleReadBpsDevice": [{"major": maj, "minor": min, "rate": 1048576}],
            "throttleWriteIOPSDevice": [{"major": maj, "minor": min, "rate": 100}],
        });
    });
    assert_eq!(rt.create(&c, &[]).code, Some(0));
    let dir = format!("/sys/fs/cgroup/blkio{}", c.cgpath);
    let read = std::fs::read_to_string(format!("{dir}/blkio.throttle.read_bps_device")).unwrap();
    let iops = std::fs::read_to_string(format!("{dir}/blkio.throttle.write_iops_device")).unwrap();
    assert_eq!(read.trim(), format!("{maj}:{min} 1048576"));
    assert_eq!(iops.trim(), format!("{maj}:{min} 100"));
    c.finish();
    rt.assert_empty();
}
