//! `berth run` flags past the basics, each group checked from inside the
//! container: resource limits in the container's own cgroup files, the OOM
//! kill, capabilities, --privileged, security options, ulimits, sysctls,
//! devices, groups, host namespaces, volumes and mounts; labels and
//! policies as `inspect` shows them; every malformed value exits 125 with
//! one error line.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;

fn status_field(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|| panic!("no {key} in {text}"))
}

fn host_status(key: &str) -> String {
    status_field(&std::fs::read_to_string("/proc/self/status").unwrap(), key)
}

/// Docker's default capability set as a CapEff mask.
const DEFAULT_CAPEFF: &str = "00000000a80425fb";

#[test]
fn resource_limits_are_in_the_containers_cgroup() {
    let b = Berth::with_busybox();
    let out = b.ok(&[
        "run",
        "--rm",
        "-m",
        "16m",
        "--memory-reservation",
        "8m",
        "--cpus",
        "1.5",
        "--cpu-shares",
        "512",
        "--pids-limit",
        "50",
        "--cpuset-cpus",
        "0",
        "busybox",
        "cat",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
        "/sys/fs/cgroup/memory/memory.soft_limit_in_bytes",
        "/sys/fs/cgroup/cpu/cpu.cfs_quota_us",
        "/sys/fs/cgroup/cpu/cpu.cfs_period_us",
        "/sys/fs/cgroup/cpu/cpu.shares",
        "/sys/fs/cgroup/pids/pids.max",
        "/sys/fs/cgroup/cpuset/cpuset.cpus",
    ]);
    let v: Vec<&str> = out.lines().collect();
    assert_eq!(
        v,
        ["16777216", "8388608", "150000", "100000", "512", "50", "0"],
        "{out}"
    );
    // --memory-swap is memory + swap; without it Docker allows as much swap
    // as memory.
    if std::path::Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists() {
        let f = "/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes";
        let out = b.ok(&[
            "run",
            "--rm",
            "-m",
            "16m",
            "--memory-swap",
            "48m",
            "busybox",
            "cat",
            f,
        ]);
        assert_eq!(out.trim(), (48u64 << 20).to_string());
        let out = b.ok(&["run", "--rm", "-m", "16m", "busybox", "cat", f]);
        assert_eq!(out.trim(), (32u64 << 20).to_string());
    }
    let out = b.ok(&[
        "run",
        "--rm",
        "--cpu-quota",
        "50000",
        "--cpu-period",
        "200000",
        "busybox",
        "cat",
        "/sys/fs/cgroup/cpu/cpu.cfs_quota_us",
        "/sys/fs/cgroup/cpu/cpu.cfs_period_us",
    ]);
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["50000", "200000"]
    );
}

#[test]
fn memory_limit_oom_kills_with_137() {
    let b = Berth::with_busybox();
    let args = [
        "run",
        "--rm",
        "--memory",
        "16m",
        "busybox",
        "sh",
        "-c",
        "head -c 100m /dev/zero | tail",
    ];
    let out = b.run(&args);
    assert_eq!(out.status.code(), Some(137), "{}", describe(&args, &out));
}

#[test]
fn capabilities_add_and_drop() {
    let b = Berth::with_busybox();
    let capeff = |extra: &[&str]| {
        let mut a = vec!["run", "--rm"];
        a.extend_from_slice(extra);
        a.extend_from_slice(&["busybox", "grep", "CapEff", "/proc/self/status"]);
        status_field(&b.ok(&a), "CapEff")
    };
    assert_eq!(capeff(&[]), DEFAULT_CAPEFF);
    assert_eq!(
        capeff(&["--cap-drop", "ALL", "--cap-add", "net_admin"]),
        "0000000000001000"
    );
    assert_eq!(capeff(&["--cap-add", "CAP_SYS_ADMIN"]), "00000000a82425fb");
    assert_eq!(capeff(&["--cap-drop", "chown"]), "00000000a80425fa");
    assert_eq!(capeff(&["--cap-add", "ALL", "--cap-drop", "KILL"]), {
        let bnd = u64::from_str_radix(&host_status("CapBnd"), 16).unwrap();
        format!("{:016x}", bnd & !(1 << 5))
    });
    // Without CAP_NET_RAW, ping cannot open its socket.
    let out = b.run(&[
        "run",
        "--rm",
        "--cap-drop",
        "NET_RAW",
        "busybox",
        "ping",
        "-c",
        "1",
        "127.0.0.1",
    ]);
    assert!(!out.status.success());
}

#[test]
fn privileged_has_all_caps_devices_and_no_confinement() {
    let b = Berth::with_busybox();
    let out = b.ok(&[
        "run",
        "--rm",
        "--privileged",
        "busybox",
        "sh",
        "-c",
        "cat /proc/self/status; mkdir -p /mnt && mount -t tmpfs none /mnt && echo MOUNTED; \
         grep ' /sys ' /proc/self/mounts; ls /dev; cat /proc/1/attr/current 2>/dev/null; true",
    ]);
    assert_eq!(status_field(&out, "CapEff"), host_status("CapBnd"), "{out}");
    assert_eq!(status_field(&out, "Seccomp"), "0", "{out}");
    assert!(out.contains("MOUNTED"), "{out}");
    assert!(
        out.lines().any(|l| l.starts_with("sysfs /sys sysfs rw")),
        "/sys is not read-write: {out}"
    );
    // The host's device nodes are there (loop devices and friends).
    let host_devs = std::fs::read_dir("/dev")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            use std::os::unix::fs::FileTypeExt;
            e.file_type().is_ok_and(|t| t.is_block_device())
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect::<Vec<_>>();
    for d in host_devs.iter().take(5) {
        assert!(out.lines().any(|l| l == d), "/dev/{d} missing: {out}");
    }
    // Not privileged: the mount fails.
    let out = b.run(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "mkdir -p /mnt && mount -t tmpfs none /mnt",
    ]);
    assert!(!out.status.success());
}

#[test]
fn security_opts() {
    let b = Berth::with_busybox();
    let status = |extra: &[&str]| {
        let mut a = vec!["run", "--rm"];
        a.extend_from_slice(extra);
        a.extend_from_slice(&["busybox", "cat", "/proc/self/status"]);
        b.ok(&a)
    };
    let s = status(&[]);
    assert_eq!(status_field(&s, "Seccomp"), "2");
    assert_eq!(status_field(&s, "NoNewPrivs"), "0");
    let s = status(&["--security-opt", "no-new-privileges"]);
    assert_eq!(status_field(&s, "NoNewPrivs"), "1");
    let s = status(&["--security-opt", "no-new-privileges=true"]);
    assert_eq!(status_field(&s, "NoNewPrivs"), "1");
    let s = status(&["--security-opt", "seccomp=unconfined"]);
    assert_eq!(status_field(&s, "Seccomp"), "0");
    // A Docker JSON profile that refuses mkdir.
    let prof = b.scratch().join("profile.json");
    std::fs::write(
        &prof,
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}"#,
    )
    .unwrap();
    let opt = format!("seccomp={}", prof.display());
    let out = b.run(&[
        "run",
        "--rm",
        "--security-opt",
        &opt,
        "busybox",
        "mkdir",
        "/x",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("not permitted"));
    b.ok(&[
        "run",
        "--rm",
        "--security-opt",
        &opt,
        "busybox",
        "touch",
        "/x",
    ]);
    std::fs::write(&prof, "{not json").unwrap();
    b.fails(
        &["run", "--rm", "--security-opt", &opt, "busybox", "true"],
        125,
    );
    b.fails(
        &[
            "run",
            "--rm",
            "--security-opt",
            "seccomp=/nonexistent.json",
            "busybox",
            "true",
        ],
        125,
    );
}

#[test]
fn ulimits_sysctls_devices_groups() {
    let b = Berth::with_busybox();
    let out = b.ok(&[
        "run",
        "--rm",
        "--ulimit",
        "nofile=1024:2048",
        "--ulimit",
        "nproc=77",
        "busybox",
        "sh",
        "-c",
        "ulimit -n; ulimit -Hn; ulimit -u",
    ]);
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["1024", "2048", "77"]
    );
    let out = b.ok(&[
        "run",
        "--rm",
        "--sysctl",
        "net.ipv4.ip_forward=1",
        "--sysctl",
        "kernel.shmmax=12345678",
        "busybox",
        "cat",
        "/proc/sys/net/ipv4/ip_forward",
        "/proc/sys/kernel/shmmax",
    ]);
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["1", "12345678"]
    );
    // A device node under another name, with its cgroup rule.
    let out = b.ok(&[
        "run",
        "--rm",
        "--device",
        "/dev/null:/dev/mynull:rw",
        "busybox",
        "sh",
        "-c",
        "stat -c '%t:%T %F' /dev/mynull; echo x > /dev/mynull && echo WROTE",
    ]);
    assert!(out.contains("1:3 character special file"), "{out}");
    assert!(out.contains("WROTE"), "{out}");
    // A block device the defaults do not allow: node present, rule "r".
    if std::path::Path::new("/dev/loop0").exists() {
        let out = b.ok(&[
            "run",
            "--rm",
            "--device",
            "/dev/loop0:/dev/xloop:r",
            "busybox",
            "sh",
            "-c",
            "stat -c '%t:%T' /dev/xloop; cat /sys/fs/cgroup/devices/devices.list",
        ]);
        assert!(out.lines().any(|l| l == "7:0"), "{out}");
        // The engine's own rule (as Docker's): berth-runtime, as runc, adds
        // none for the devices a spec lists, so the rule is exactly "r".
        assert!(out.lines().any(|l| l == "b 7:0 r"), "{out}");
    }
    let out = b.ok(&[
        "run",
        "--rm",
        "--group-add",
        "1234",
        "--group-add",
        "4321",
        "busybox",
        "id",
        "-G",
    ]);
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["0", "1234", "4321"]
    );
    b.fails(
        &[
            "run",
            "--rm",
            "--group-add",
            "nosuchgroup",
            "busybox",
            "true",
        ],
        125,
    );
}

#[test]
fn host_namespaces() {
    let b = Berth::with_busybox();
    for ns in ["ipc", "pid", "uts"] {
        let host = std::fs::read_link(format!("/proc/self/ns/{ns}")).unwrap();
        let host = host.to_string_lossy();
        let flag = format!("--{ns}");
        let inside = b.ok(&[
            "run",
            "--rm",
            &flag,
            "host",
            "busybox",
            "readlink",
            &format!("/proc/self/ns/{ns}"),
        ]);
        assert_eq!(inside.trim(), host, "{ns}");
        let own = b.ok(&[
            "run",
            "--rm",
            "busybox",
            "readlink",
            &format!("/proc/self/ns/{ns}"),
        ]);
        assert_ne!(own.trim(), host, "{ns}");
    }
    let host = nix_hostname();
    let out = b.ok(&["run", "--rm", "--uts", "host", "busybox", "hostname"]);
    assert_eq!(out.trim(), host);
    b.ok(&[
        "run", "--rm", "--userns", "host", "--ipc", "private", "busybox", "true",
    ]);
    let e = b.fails(
        &["run", "--rm", "--userns", "keep-id", "busybox", "true"],
        125,
    );
    assert!(e.contains("only \"host\""), "{e}");
    b.fails(
        &["run", "--rm", "--uts", "host", "-h", "x", "busybox", "true"],
        125,
    );
    b.fails(&["run", "--rm", "--ipc", "bogus", "busybox", "true"], 125);
    // container:X needs X running.
    b.ok(&["create", "--name", "idle", "busybox", "true"]);
    let e = b.fails(
        &["run", "--rm", "--ipc", "container:idle", "busybox", "true"],
        125,
    );
    assert!(e.contains("needs a running container"), "{e}");
    b.ok(&["rm", "idle"]);
}

fn nix_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_owned()
}

#[test]
fn volumes_binds_and_tmpfs() {
    let b = Berth::with_busybox();
    let host = b.scratch().join("share");
    // A missing host directory is made, as Docker does.
    let v = format!("{}:/data", host.display());
    b.ok(&[
        "run",
        "--rm",
        "-v",
        &v,
        "busybox",
        "sh",
        "-c",
        "echo hello > /data/f",
    ]);
    assert_eq!(std::fs::read_to_string(host.join("f")).unwrap(), "hello\n");
    let v_ro = format!("{}:/data:ro,z", host.display());
    let out = b.run(&[
        "run",
        "--rm",
        "-v",
        &v_ro,
        "busybox",
        "sh",
        "-c",
        "cat /data/f; echo x > /data/g",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "hello\n");
    assert!(!host.join("g").exists());
    // A named volume outlives the containers that use it.
    b.ok(&[
        "run",
        "--rm",
        "-v",
        "vol1:/v",
        "busybox",
        "sh",
        "-c",
        "echo kept > /v/k",
    ]);
    let out = b.ok(&["run", "--rm", "-v", "vol1:/v", "busybox", "cat", "/v/k"]);
    assert_eq!(out, "kept\n");
    assert!(b.root().join("volumes/vol1/_data/k").is_file());
    // --mount: bind (read-only), volume, tmpfs; --tmpfs.
    let m = format!("type=bind,source={},target=/m,readonly", host.display());
    let out = b.run(&[
        "run", "--rm", "--mount", &m, "--mount", "type=volume,source=vol1,target=/vv",
        "--mount", "type=tmpfs,target=/t,tmpfs-size=1m", "--tmpfs", "/run:size=2m",
        "busybox", "sh", "-c",
        "cat /m/f /vv/k; grep -E ' /(t|run) ' /proc/self/mounts; touch /t/ok /run/ok && echo TMPFS-OK; touch /m/z",
    ]);
    let o = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{o}");
    assert!(o.starts_with("hello\nkept\n"), "{o}");
    assert!(
        o.contains("tmpfs /t tmpfs rw,nosuid,nodev,noexec,relatime,size=1024k"),
        "{o}"
    );
    assert!(
        o.contains("tmpfs /run tmpfs rw,nosuid,nodev,noexec,relatime,size=2048k"),
        "{o}"
    );
    assert!(o.contains("TMPFS-OK"), "{o}");
    // --read-only with a writable tmpfs.
    let out = b.run(&[
        "run",
        "--rm",
        "--read-only",
        "--tmpfs",
        "/tmp",
        "busybox",
        "sh",
        "-c",
        "touch /tmp/x && echo OK; touch /nope",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "OK\n");
    // Bad specifications.
    b.fails(&["run", "--rm", "-v", "rel/dir:/d", "busybox", "true"], 125);
    b.fails(&["run", "--rm", "-v", "/tmp:d", "busybox", "true"], 125);
    b.fails(
        &["run", "--rm", "-v", "/tmp:/d:bogus", "busybox", "true"],
        125,
    );
    b.fails(
        &[
            "run",
            "--rm",
            "--mount",
            "type=bind,source=/no/such/dir,target=/m",
            "busybox",
            "true",
        ],
        125,
    );
    b.fails(
        &[
            "run",
            "--rm",
            "--mount",
            "type=nfs,target=/m",
            "busybox",
            "true",
        ],
        125,
    );
    b.fails(
        &[
            "run",
            "--rm",
            "--mount",
            "type=bind,target=/m",
            "busybox",
            "true",
        ],
        125,
    );
    b.fails(
        &["run", "--rm", "--tmpfs", "relative", "busybox", "true"],
        125,
    );
}

#[test]
fn labels_and_policies_are_stored() {
    let b = Berth::with_busybox();
    let lf = b.scratch().join("labels");
    std::fs::write(&lf, "# a comment\nfrom.file=yes\n\nbare\n").unwrap();
    let id = b.ok(&[
        "create",
        "-l",
        "a=b",
        "--label",
        "c=d=e",
        "--label-file",
        lf.to_str().unwrap(),
        "--restart",
        "on-failure:3",
        "--stop-signal",
        "SIGUSR1",
        "--stop-timeout",
        "7",
        "--log-driver",
        "json-file",
        "--log-opt",
        "max-size=10m",
        "--log-opt",
        "max-file=3",
        "--health-cmd",
        "true",
        "--health-interval",
        "5s",
        "--health-retries",
        "2",
        "-m",
        "64m",
        "--cap-add",
        "sys_admin",
        "busybox",
        "true",
    ]);
    let id = id.trim();
    let v: serde_json::Value = serde_json::from_str(&b.ok(&["inspect", id])).unwrap();
    let c = &v[0];
    assert_eq!(
        c["Config"]["Labels"],
        serde_json::json!({"a": "b", "c": "d=e", "from.file": "yes", "bare": ""})
    );
    assert_eq!(c["Config"]["StopSignal"], "SIGUSR1");
    assert_eq!(c["Config"]["StopTimeout"], 7);
    assert_eq!(
        c["Config"]["Healthcheck"]["Test"],
        serde_json::json!(["CMD-SHELL", "true"])
    );
    assert_eq!(c["Config"]["Healthcheck"]["Interval"], 5_000_000_000i64);
    assert_eq!(c["Config"]["Healthcheck"]["Retries"], 2);
    let h = &c["HostConfig"];
    assert_eq!(h["RestartPolicy"]["Name"], "on-failure");
    assert_eq!(h["RestartPolicy"]["MaximumRetryCount"], 3);
    assert_eq!(h["LogConfig"]["Type"], "json-file");
    assert_eq!(h["Memory"], 64 << 20);
    assert_eq!(h["CapAdd"], serde_json::json!(["CAP_SYS_ADMIN"]));
    b.ok(&["rm", id]);
    let id = b.ok(&[
        "create",
        "--no-healthcheck",
        "--log-driver",
        "none",
        "busybox",
        "true",
    ]);
    let v: serde_json::Value = serde_json::from_str(&b.ok(&["inspect", id.trim()])).unwrap();
    assert_eq!(
        v[0]["Config"]["Healthcheck"]["Test"],
        serde_json::json!(["NONE"])
    );
    assert_eq!(v[0]["HostConfig"]["LogConfig"]["Type"], "none");
    b.ok(&["rm", id.trim()]);
    // Accepted values that change nothing here.
    b.ok(&[
        "run",
        "--rm",
        "--platform",
        "linux",
        "--pull",
        "never",
        "busybox",
        "true",
    ]);
    b.ok(&[
        "run",
        "--rm",
        "--pull",
        "missing",
        "--restart",
        "no",
        "busybox",
        "true",
    ]);
}

#[test]
fn bad_values_exit_125_with_one_line() {
    let b = Berth::with_busybox();
    let cases: &[&[&str]] = &[
        &["-m", "abc"],
        &["-m", "12q"],
        &["-m", "1k"],
        &["--memory-swap", "x", "-m", "16m"],
        &["--memory-swap", "32m"],
        &["-m", "32m", "--memory-swap", "16m"],
        &["--memory-reservation", "x"],
        &["-m", "16m", "--memory-reservation", "32m"],
        &["--cpus", "x"],
        &["--cpus", "-1"],
        &["--cpus", "1000"],
        &["--cpus", "1", "--cpu-period", "100000"],
        &["-c", "x"],
        &["--cpu-shares", "1.5"],
        &["--cpu-quota", "x"],
        &["--cpu-quota", "10"],
        &["--cpu-period", "x"],
        &["--cpu-period", "10"],
        &["--cpuset-cpus", "x"],
        &["--cpuset-cpus", "1-0"],
        &["--cpuset-mems", "a"],
        &["--pids-limit", "x"],
        &["--blkio-weight", "x"],
        &["--blkio-weight", "5"],
        &["--blkio-weight", "70000"],
        &["--stop-timeout", "x"],
        &["--stop-signal", "SIGNOPE"],
        &["--health-interval", "10"],
        &["--health-interval", "1x"],
        &["--health-timeout", "-1s"],
        &["--health-start-period", "x"],
        &["--health-retries", "x"],
        &["--health-retries", "-1"],
        &["--health-interval", "10ns"],
        &["--no-healthcheck", "--health-cmd", "true"],
        &["--ulimit", "nofile=x"],
        &["--ulimit", "nofile=10:5"],
        &["--ulimit", "bogus=1"],
        &["--ulimit", "nofile"],
        &["--sysctl", "novalue"],
        &["--device", "relative"],
        &["--device", "/dev/null:/dev/x:xyz"],
        &["--device", "/dev/does-not-exist"],
        &["--cap-add", "CAP_NOPE"],
        &["--cap-drop", "nope"],
        &["--security-opt", "apparmor"],
        &["--security-opt", "no-new-privileges=maybe"],
        &["--restart", "sometimes"],
        &["--restart", "always:3"],
        &["--restart", "on-failure:x"],
        &["--restart", "on-failure:-1"],
        &["--restart", ":3"],
        &["--log-driver", "syslog"],
        &["--log-opt", "max-size=abc"],
        &["--log-opt", "max-file=0"],
        &["--log-opt", "max-file=x"],
        &["--log-opt", "nokey"],
        &["--log-opt", "bogus=1"],
        &["--log-driver", "none", "--log-opt", "max-size=1m"],
        &["--pid", "bogus"],
        &["--uts", "private"],
        &["--runtime", "/no/such/runtime"],
        &["--runtime", "no-such-runtime-binary"],
        &["--platform", "linux/s390x"],
        &["--pull", "always"],
        &["--pull", "sometimes"],
        &["--label", "=x"],
        &["--mount", "target"],
        &["--mount", "type=tmpfs,target=/t,tmpfs-size=x"],
    ];
    for c in cases {
        let mut a = vec!["run", "--rm"];
        a.extend_from_slice(c);
        a.extend_from_slice(&["busybox", "true"]);
        b.fails(&a, 125);
    }
    // create refuses them the same way and records nothing.
    b.fails(&["create", "-m", "abc", "busybox", "true"], 125);
    let e = b.fails(
        &["run", "--rm", "--restart", "always", "busybox", "true"],
        125,
    );
    assert!(e.contains("Conflicting options: --restart and --rm"), "{e}");
    assert_eq!(b.ok(&["ps", "-a", "-q"]), "");
}

#[test]
fn init_uses_the_hosts_init_or_says_it_cannot() {
    let b = Berth::with_busybox();
    let have = ["catatonit", "tini-static", "docker-init", "tini"]
        .iter()
        .any(|n| {
            std::env::var_os("PATH")
                .map(|p| std::env::split_paths(&p).any(|d| d.join(n).is_file()))
                .unwrap_or(false)
        });
    if have {
        let out = b.ok(&["run", "--rm", "--init", "busybox", "cat", "/proc/1/cmdline"]);
        assert!(out.starts_with("/sbin/docker-init"), "{out}");
        // The init forwards SIGTERM to the command, which as PID 1 of its
        // namespace would ignore it: it ends by the TERM (143), not by the
        // kill after -t (137).
        b.ok(&[
            "run", "-d", "--init", "--name", "i1", "busybox", "sleep", "300",
        ]);
        // A TERM that reaches the init before it has blocked its signals
        // is dropped by the kernel (PID 1 without a handler), in Docker
        // too: wait until it has forked the command, which it does after.
        common::wait_until(30, "the init's child", || {
            b.ok(&["top", "i1"]).contains("sleep 300")
        });
        b.ok(&["stop", "-t", "20", "i1"]);
        let v: serde_json::Value = serde_json::from_str(&b.ok(&["inspect", "i1"])).unwrap();
        assert_eq!(
            v[0]["State"]["ExitCode"], 143,
            "SIGTERM through the init: 128+15"
        );
        b.ok(&["rm", "i1"]);
    } else {
        let e = b.fails(&["run", "--rm", "--init", "busybox", "true"], 125);
        assert!(e.contains("--init is not supported"), "{e}");
    }
}

/// `--runtime PATH` runs the container through that program: output, exit
/// status and the 127 of a missing command come through it the same way.
/// Without it, a foreground `--rm` runs berth's runtime inside berth.
#[test]
fn runtime_flag_runs_the_named_program() {
    let b = Berth::with_busybox();
    // A wrapper that leaves a mark, so the test sees the program was run.
    let dir = b.scratch();
    let mark = dir.join("ran");
    // Named as berth's runtime, so that berth would use its in-process
    // fast path when it is only BERTH_RUNTIME.
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    let wrapper = dir.join("bin/berth-runtime");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\necho \"$@\" >> {}\nexec {} \"$@\"\n",
            mark.display(),
            common::runtime().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let rt = wrapper.to_str().unwrap().to_owned();
    let run = |args: &[&str]| {
        let mut all = vec![
            "run",
            "--rm",
            "--network",
            "none",
            "--runtime",
            &rt,
            "busybox",
        ];
        all.extend_from_slice(args);
        b.run(&all)
    };
    let out = run(&["echo", "ok"]);
    assert_eq!(text(&out.stdout), "ok\n", "{out:?}");
    assert_eq!(run(&["sh", "-c", "exit 3"]).status.code(), Some(3));
    let out = run(&["nosuch"]);
    assert_eq!(out.status.code(), Some(127), "{out:?}");
    assert!(b.ok(&["ps", "-aq"]).is_empty());
    let runs = std::fs::read_to_string(&mark).unwrap();
    assert_eq!(
        runs.lines().filter(|l| l.contains(" run ")).count(),
        3,
        "{runs}"
    );
    // Without --runtime, berth's own runtime (BERTH_RUNTIME) is run inside
    // berth for a foreground --rm: the program is not executed.
    std::fs::remove_file(&mark).unwrap();
    let out = b
        .cmd(&[
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "echo",
            "inside",
        ])
        .env("BERTH_RUNTIME", &wrapper)
        .output()
        .unwrap();
    assert_eq!(text(&out.stdout), "inside\n", "{out:?}");
    assert!(!mark.exists());
}
