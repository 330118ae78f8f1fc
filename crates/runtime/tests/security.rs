//! Security properties and regressions: leaked descriptors and cwd
//! (CVE-2024-21626), the sealed runtime binary (CVE-2019-5736), symlinks at
//! mount targets (CVE-2021-30465), read-only root, masked and read-only
//! paths, mount options, capabilities, no_new_privs, seccomp.
#![allow(clippy::unwrap_used)]

mod common;

use common::{mounts_mentioning, Ctr, Out, Rt, BIN};
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Stdio};

/// Runs `berth-runtime --root R run --bundle B ID` from a host shell that
/// first opens `dir` as descriptor 5 without close-on-exec, the way a leaky
/// caller would.
fn run_with_fd5(rt: &Rt, c: &Ctr, dir: &Path) -> Out {
    let out = Command::new("/bin/sh")
        .arg("-c")
        .arg(r#"exec 5<"$1"; shift; exec "$@""#)
        .arg("sh")
        .arg(dir)
        .arg(BIN)
        .arg("--root")
        .arg(rt.root())
        .args(["run", "--bundle", c.bundle_path_str(), &c.id])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Out::from_output(out)
}

#[test]
fn cve_2024_21626_no_leaked_fds_and_cwd_inside() {
    let rt = Rt::new();
    let host_dir = tempfile::tempdir().unwrap();
    std::fs::write(host_dir.path().join("host-marker"), "x").unwrap();
    let mut c = Ctr::sh(
        &rt,
        "ls /proc/self/fd | tr '\\n' ' '; echo; pwd; readlink /proc/self/cwd; exec ls /proc/self/fd",
    );
    c.edit_json(|v| v["process"]["cwd"] = json!("/tmp"));
    std::fs::write(c.rootfs().join("tmp/inside-marker"), "y").unwrap();
    let out = run_with_fd5(&rt, &c, host_dir.path());
    let lines: Vec<&str> = out.ok().lines().collect();
    // ls's own descriptor for /proc/self/fd is 3.
    assert_eq!(lines[0].trim(), "0 1 2 3", "{out:#?}");
    assert_eq!(lines[1], "/tmp", "{out:#?}");
    assert_eq!(lines[2], "/tmp", "{out:#?}");
    // What the shell (the init) holds, seen by the program it becomes:
    // listing it from a command of the shell would show the shell's own
    // transient descriptors (a pipeline's pipe, a saved stdout).
    assert_eq!(
        lines[3..].join(" "),
        "0 1 2 3",
        "the shell holds extra fds: {out:#?}"
    );
    c.finish();
    rt.assert_empty();
}

/// The attack itself: a cwd of /proc/self/fd/5 where the runtime leaked a
/// host directory as fd 5. The container must not get a cwd on the host.
#[test]
fn cve_2024_21626_cwd_through_leaked_fd() {
    let rt = Rt::new();
    let host_dir = tempfile::tempdir().unwrap();
    std::fs::write(host_dir.path().join("host-marker"), "x").unwrap();
    let mut c = Ctr::sh(
        &rt,
        "ls; cat ../../../../host-marker ./host-marker 2>&1; true",
    );
    c.edit_json(|v| v["process"]["cwd"] = json!("/proc/self/fd/5"));
    let out = run_with_fd5(&rt, &c, host_dir.path());
    assert!(
        !out.stdout.contains("host-marker") && !out.stdout.contains('x'),
        "the container reached the host directory: {out:#?}"
    );
    let line = out.fails_one_line();
    assert!(line.contains("process.cwd"), "{line}");
    assert!(line.contains("outside"), "{line}");
    c.finish();
    rt.assert_empty();
}

/// A missing cwd is made inside the root (as runc does), never through a symlink out of
/// the root or a descriptor leaked to the runtime.
#[test]
fn a_missing_cwd_is_made_inside_the_root_only() {
    let rt = Rt::new();
    let c = {
        let mut c = Ctr::sh(&rt, "pwd; stat -c '%u:%g %a' .");
        c.edit_json(|v| v["process"]["cwd"] = json!("/made/here"));
        c
    };
    let out = rt.run(&c);
    assert_eq!(out.ok(), "/made/here\n0:0 755\n");
    assert!(c.rootfs().join("made/here").is_dir());
    c.finish();
    // Through a leaked descriptor: nothing is made on the host.
    let host_dir = tempfile::tempdir().unwrap();
    let mut c = Ctr::sh(&rt, "pwd");
    c.edit_json(|v| v["process"]["cwd"] = json!("/proc/self/fd/5/made-on-host"));
    let out = run_with_fd5(&rt, &c, host_dir.path());
    let line = out.fails_one_line();
    assert!(line.contains("process.cwd"), "{line}");
    assert!(!host_dir.path().join("made-on-host").exists());
    c.finish();
    // Through a symlink in the image that leaves the root: made inside, not on the host.
    let mut c = Ctr::sh(&rt, "pwd");
    std::os::unix::fs::symlink(host_dir.path(), c.rootfs().join("out")).unwrap();
    c.edit_json(|v| v["process"]["cwd"] = json!("/out/made"));
    let _ = rt.run(&c);
    assert!(!host_dir.path().join("made").exists());
    c.finish();
    rt.assert_empty();
}

#[test]
fn cve_2019_5736_runtime_is_a_sealed_memfd() {
    use nix::fcntl::{fcntl, FcntlArg, SealFlag};
    use std::os::fd::AsRawFd;
    let bin_before = std::fs::read(BIN).unwrap();
    let rt = Rt::new();
    let c = Ctr::new(&rt, &["true"]);
    rt.create(&c, &[]).ok();
    let pid = rt.pid(&c.id);
    // The created init still runs the runtime, waiting for start.
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert!(
        exe.to_string_lossy().starts_with("/memfd:"),
        "init runs {}",
        exe.display()
    );
    let w = std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/proc/{pid}/exe"));
    let err = w.expect_err("the runtime's exe opened for writing");
    assert!(
        matches!(err.raw_os_error(), Some(libc::ETXTBSY | libc::EPERM)),
        "{err}"
    );
    let r = std::fs::File::open(format!("/proc/{pid}/exe")).unwrap();
    let seals = SealFlag::from_bits_truncate(fcntl(r.as_raw_fd(), FcntlArg::F_GET_SEALS).unwrap());
    assert!(
        seals.contains(SealFlag::F_SEAL_WRITE | SealFlag::F_SEAL_SEAL),
        "{seals:?}"
    );
    drop(r);
    // Even a writable mapping-free open through the fd path fails.
    let again = std::fs::OpenOptions::new()
        .append(true)
        .open(format!("/proc/{pid}/exe"));
    assert!(again.is_err());
    rt.out(&["start", &c.id]).ok();
    rt.wait_status(&c.id, "stopped");
    assert_eq!(std::fs::read(BIN).unwrap(), bin_before);
    c.finish();
    rt.assert_empty();
}

/// A host directory under /tmp the symlink tests aim at, with one marker.
struct HostTarget {
    dir: tempfile::TempDir,
}

impl HostTarget {
    fn new() -> HostTarget {
        let dir = tempfile::Builder::new()
            .prefix("berth-evil-")
            .tempdir_in("/tmp")
            .unwrap();
        std::fs::write(dir.path().join("marker"), "host").unwrap();
        HostTarget { dir }
    }

    fn name(&self) -> String {
        self.dir
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned()
    }

    #[track_caller]
    fn assert_untouched(&self) {
        let entries: Vec<_> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(entries, ["marker"], "host directory changed");
        assert!(
            mounts_mentioning(self.dir.path()).is_empty(),
            "a mount landed on the host directory"
        );
    }
}

fn symlink_mount_case(link_target: &str, host: &HostTarget, precreate: bool) {
    let rt = Rt::new();
    let name = host.name();
    let mut c = Ctr::sh(
        &rt,
        &format!(
            "grep ' /tmp/{name} ' /proc/self/mounts; touch /evil/written && ls /tmp/{name}; echo done"
        ),
    );
    std::os::unix::fs::symlink(link_target, c.rootfs().join("evil")).unwrap();
    if precreate {
        std::fs::create_dir(c.rootfs().join("tmp").join(&name)).unwrap();
    }
    c.edit_json(|v| {
        v["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/evil",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["size=1m"]
        }));
    });
    let out = rt.run(&c);
    host.assert_untouched();
    if precreate || out.code == Some(0) {
        let text = out.ok();
        assert!(
            text.contains(&format!("tmpfs /tmp/{name} tmpfs")),
            "the tmpfs is not at the symlink's target inside the rootfs: {out:#?}"
        );
        assert!(text.contains("written\n"), "{out:#?}");
        assert!(text.ends_with("done\n"), "{out:#?}");
    } else {
        // Refusing the dangling symlink is also safe: one clear line.
        let line = out.fails_one_line();
        assert!(line.contains("/evil"), "{line}");
    }
    // Nothing leaked onto the host's view of the rootfs either.
    assert!(!c.rootfs().join("tmp").join(&name).join("written").exists());
    c.finish();
    rt.assert_empty();
}

#[test]
fn cve_2021_30465_absolute_symlink_mount_target() {
    let host = HostTarget::new();
    let target = host.dir.path().to_str().unwrap().to_owned();
    symlink_mount_case(&target, &host, true);
    symlink_mount_case(&target, &host, false);
}

#[test]
fn cve_2021_30465_relative_symlink_mount_target() {
    let host = HostTarget::new();
    let target = format!("../../../../../../../../tmp/{}", host.name());
    symlink_mount_case(&target, &host, true);
    symlink_mount_case(&target, &host, false);
}

#[test]
fn readonly_root() {
    let rt = Rt::new();
    let mut c = Ctr::sh(&rt, "touch /x; echo rc=$?; touch /tmp/y; echo rc=$?");
    c.edit_json(|v| v["root"]["readonly"] = json!(true));
    let out = rt.run(&c);
    let text = out.ok();
    assert!(text.contains("rc=1\nrc=1\n"), "{out:#?}");
    assert!(out.stderr.contains("Read-only file system"), "{out:#?}");
    assert!(!c.rootfs().join("x").exists());
    c.finish();
    rt.assert_empty();
}

#[test]
fn masked_paths_read_empty() {
    let rt = Rt::new();
    // Both default masked paths used are non-empty on the host.
    assert!(!std::fs::read_to_string("/proc/timer_list")
        .unwrap()
        .is_empty());
    assert!(std::fs::read_dir("/sys/firmware").unwrap().next().is_some());
    let mut c = Ctr::sh(
        &rt,
        "echo [$(cat /etc/secret)]; ls -A /etc/secretdir | wc -l; echo [$(head -c 10 /proc/timer_list | wc -c)]; ls -A /sys/firmware | wc -l",
    );
    std::fs::write(c.rootfs().join("etc/secret"), "top secret").unwrap();
    std::fs::create_dir(c.rootfs().join("etc/secretdir")).unwrap();
    std::fs::write(c.rootfs().join("etc/secretdir/f"), "x").unwrap();
    c.edit_json(|v| {
        let m = v["linux"]["maskedPaths"].as_array_mut().unwrap();
        assert!(m.contains(&json!("/proc/timer_list")));
        assert!(m.contains(&json!("/sys/firmware")));
        m.push(json!("/etc/secret"));
        m.push(json!("/etc/secretdir"));
    });
    let out = rt.run(&c);
    let lines: Vec<&str> = out.ok().lines().collect();
    assert_eq!(lines[0], "[]", "{out:#?}");
    assert_eq!(lines[1].trim(), "0", "{out:#?}");
    assert_eq!(lines[2], "[0]", "/proc/timer_list readable: {out:#?}");
    assert_eq!(lines[3].trim(), "0", "/sys/firmware not empty: {out:#?}");
    // The files themselves are intact.
    assert_eq!(
        std::fs::read_to_string(c.rootfs().join("etc/secret")).unwrap(),
        "top secret"
    );
    c.finish();
    rt.assert_empty();
}

#[test]
fn readonly_paths() {
    let rt = Rt::new();
    let mut c = Ctr::sh(
        &rt,
        "echo 1 > /proc/sys/kernel/domainname; echo rc=$?; touch /data/f; echo rc=$?; touch /other/f; echo rc=$?",
    );
    std::fs::create_dir(c.rootfs().join("data")).unwrap();
    std::fs::create_dir(c.rootfs().join("other")).unwrap();
    c.edit_json(|v| {
        let r = v["linux"]["readonlyPaths"].as_array_mut().unwrap();
        assert!(r.contains(&json!("/proc/sys")));
        r.push(json!("/data"));
    });
    let out = rt.run(&c);
    assert_eq!(out.ok(), "rc=1\nrc=1\nrc=0\n", "{out:#?}");
    assert!(out.stderr.contains("Read-only file system"), "{out:#?}");
    assert!(!c.rootfs().join("data/f").exists());
    assert!(c.rootfs().join("other/f").exists());
    c.finish();
    rt.assert_empty();
}

#[test]
fn bind_mounts_and_options() {
    let rt = Rt::new();
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("hello"), "from host").unwrap();
    let mut c = Ctr::sh(
        &rt,
        "cat /ro/hello; echo; echo x > /ro/new; echo rc=$?; \
         grep ' /ro ' /proc/mounts; grep ' /opts ' /proc/mounts",
    );
    let src = host.path().to_str().unwrap().to_owned();
    c.edit_json(|v| {
        let m = v["mounts"].as_array_mut().unwrap();
        m.push(json!({"destination": "/ro", "type": "bind", "source": src, "options": ["rbind", "ro"]}));
        m.push(json!({"destination": "/opts", "type": "tmpfs", "source": "tmpfs",
            "options": ["nosuid", "nodev", "noexec", "size=1m"]}));
    });
    let out = rt.run(&c);
    let lines: Vec<&str> = out.ok().lines().collect();
    assert_eq!(lines[0], "from host", "{out:#?}");
    assert_eq!(lines[1], "rc=1", "{out:#?}");
    let opts = |l: &str| -> Vec<String> {
        l.split_whitespace()
            .nth(3)
            .unwrap()
            .split(',')
            .map(str::to_owned)
            .collect()
    };
    assert!(opts(lines[2]).contains(&"ro".to_owned()), "{out:#?}");
    let o = opts(lines[3]);
    for f in ["rw", "nosuid", "nodev", "noexec"] {
        assert!(o.contains(&f.to_owned()), "{f} missing: {out:#?}");
    }
    assert!(!host.path().join("new").exists());
    c.finish();
    // The bind is gone with the container.
    assert!(mounts_mentioning(host.path()).is_empty());
    rt.assert_empty();
}

fn cap_line(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap()
        .trim()
        .to_owned()
}

#[test]
fn default_capabilities_and_no_new_privs() {
    let rt = Rt::new();
    let c = Ctr::sh(&rt, "grep -E '^(Cap|NoNewPrivs)' /proc/self/status");
    let spec: Value = serde_json::to_value(c.bundle.spec()).unwrap();
    assert_eq!(spec["process"]["noNewPrivileges"], true);
    let out = rt.run(&c);
    let text = out.ok();
    // AUDIT_WRITE (29), KILL (5), NET_BIND_SERVICE (10).
    let expected = format!("{:016x}", (1u64 << 29) | (1 << 5) | (1 << 10));
    assert_eq!(cap_line(text, "CapEff"), expected, "{text}");
    assert_eq!(cap_line(text, "CapPrm"), expected, "{text}");
    assert_eq!(cap_line(text, "CapBnd"), expected, "{text}");
    assert_eq!(cap_line(text, "NoNewPrivs"), "1", "{text}");

    // Without noNewPrivileges the flag is clear.
    let mut c2 = Ctr::sh(&rt, "grep NoNewPrivs /proc/self/status");
    c2.edit_json(|v| v["process"]["noNewPrivileges"] = json!(false));
    let out = rt.run(&c2);
    assert_eq!(cap_line(out.ok(), "NoNewPrivs"), "0");
    c.finish();
    c2.finish();
    rt.assert_empty();
}

#[test]
fn seccomp_errno_for_mkdir() {
    let rt = Rt::new();
    let mut c = Ctr::sh(
        &rt,
        "mkdir /tmp/x; echo rc=$?; touch /tmp/y && echo touched; grep Seccomp: /proc/self/status",
    );
    c.edit_json(|v| {
        v["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
        });
    });
    let out = rt.run(&c);
    let text = out.ok();
    assert!(text.contains("rc=1\n"), "{out:#?}");
    assert!(text.contains("touched\n"), "{out:#?}");
    assert!(text.contains("Seccomp:\t2"), "{out:#?}");
    assert!(out.stderr.contains("Operation not permitted"), "{out:#?}");
    assert!(!c.rootfs().join("tmp/x").exists());
    assert!(c.rootfs().join("tmp/y").exists());
    c.finish();
    rt.assert_empty();
}

/// The default spec mounts /sys and /sys/fs/cgroup read-only: the container
/// can neither write sysfs nor make cgroups on the host.
#[test]
fn sys_and_cgroup_mounts_read_only() {
    let rt = Rt::new();
    let dir = common::unique("berth-escape");
    let c = Ctr::sh(
        &rt,
        &format!(
            "mkdir /sys/fs/cgroup/pids/{dir}; echo rc=$?; mkdir /sys/fs/cgroup/memory/{dir}; echo rc=$?; \
             echo 1 > /sys/kernel/profiling; echo rc=$?; \
             grep -E ' /sys(/fs/cgroup(/[a-z,]+)?)? ' /proc/self/mounts"
        ),
    );
    let out = rt.run(&c);
    let text = out.ok();
    assert!(text.starts_with("rc=1\nrc=1\nrc=1\n"), "{out:#?}");
    for line in text.lines().skip(3) {
        let opts: Vec<&str> = line.split_whitespace().nth(3).unwrap().split(',').collect();
        assert!(opts.contains(&"ro"), "not read-only: {line}");
    }
    assert!(
        text.lines().any(|l| l.contains(" /sys/fs/cgroup/pids ")),
        "{out:#?}"
    );
    assert!(common::cgroup_dirs(&format!("/{dir}")).is_empty());
    c.finish();
    rt.assert_empty();
}

/// runc's checkProcMount: nothing but a procfs on /proc, nothing under it but the
/// files lxcfs emulates, whether the destination is written so or a symlink in the
/// image leads there.
#[test]
fn mounts_on_proc_are_refused_as_runc_refuses_them() {
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("cpuinfo"), "fake cpuinfo\n").unwrap();
    let dir = host.path().to_str().unwrap().to_owned();
    let bind = |dest: &str, src: &str| json!({"destination": dest, "type": "bind", "source": src, "options": ["rbind"]});
    let tmpfs = |dest: &str| json!({"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]});
    let cases = [
        (
            bind("/proc/sys", &dir),
            None,
            "\"/proc/sys\" cannot be mounted because it is inside /proc",
        ),
        (
            tmpfs("/proc/sys/kernel"),
            None,
            "\"/proc/sys/kernel\" cannot be mounted because it is inside /proc",
        ),
        (
            bind("/proc", &dir),
            None,
            "\"/proc\" cannot be mounted because it is not of type proc",
        ),
        (
            tmpfs("/evil"),
            Some("/proc/sys"),
            "\"/proc/sys\" cannot be mounted because it is inside /proc",
        ),
        (
            tmpfs("/evil"),
            Some("../proc/1"),
            "\"/proc/1\" cannot be mounted because it is inside /proc",
        ),
    ];
    let rt = Rt::new();
    for (mount, link, want) in cases {
        let mut c = Ctr::sh(&rt, "echo ran");
        if let Some(l) = link {
            std::os::unix::fs::symlink(l, c.rootfs().join("evil")).unwrap();
        }
        c.edit_json(|v| v["mounts"].as_array_mut().unwrap().push(mount.clone()));
        let out = rt.run(&c);
        let line = out.fails_one_line();
        assert!(line.contains(want), "{mount}: {line}");
        c.finish();
    }
    // Allowed: a file over /proc/cpuinfo, and the host's procfs over /proc.
    let mut c = Ctr::sh(
        &rt,
        "cat /proc/cpuinfo; test -e /proc/1/status && echo proc",
    );
    let file = host.path().join("cpuinfo");
    c.edit_json(|v| {
        let m = v["mounts"].as_array_mut().unwrap();
        m.push(bind("/proc/cpuinfo", file.to_str().unwrap()));
    });
    assert_eq!(rt.run(&c).ok(), "fake cpuinfo\nproc\n");
    c.finish();
    assert!(mounts_mentioning(host.path()).is_empty());
    rt.assert_empty();
}
