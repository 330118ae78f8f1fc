use berth_runtime::Result;

/// The seccomp architectures this build compiles filters for.
#[cfg(target_arch = "x86_64")]
const SECCOMP_ARCHS: &[&str] = &["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"];
#[cfg(not(target_arch = "x86_64"))]
const SECCOMP_ARCHS: &[&str] = &["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"];

/// What this runtime implements, in the shape of the runtime-spec's
/// features document (features.md, features-linux.md): only what works.
pub fn run() -> Result<i32> {
    let mut mount_options: Vec<&str> = vec![
        "async",
        "atime",
        "bind",
        "defaults",
        "dev",
        "diratime",
        "dirsync",
        "exec",
        "idmap",
        "lazytime",
        "mand",
        "noatime",
        "nodev",
        "nodiratime",
        "noexec",
        "nomand",
        "norelatime",
        "nostrictatime",
        "nosuid",
        "private",
        "rbind",
        "relatime",
        "remount",
        "ridmap",
        "ro",
        "rprivate",
        "rshared",
        "rslave",
        "runbindable",
        "rw",
        "shared",
        "silent",
        "slave",
        "strictatime",
        "suid",
        "sync",
        "tmpcopyup",
        "unbindable",
    ];
    mount_options.extend(berth_runtime::rootfs::recursive_option_names());
    mount_options.sort_unstable();
    let v = serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.2.0",
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": mount_options,
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": caps::all().iter().map(|c| c.to_string()).collect::<Vec<_>>(),
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": true},
            "seccomp": {
                "enabled": true,
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                            "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE",
                            "SCMP_ACT_TRAP"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE",
                              "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
                "archs": SECCOMP_ARCHS,
                "knownFlags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                               "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
                // WAIT_KILLABLE_RECV: with SCMP_ACT_NOTIFY rules (Linux 5.19+).
                "supportedFlags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                                   "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]
            },
            "apparmor": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": true}},
            "netDevices": {"enabled": true},
            "memoryPolicy": {
                "modes": ["MPOL_BIND", "MPOL_DEFAULT", "MPOL_INTERLEAVE", "MPOL_LOCAL",
                          "MPOL_PREFERRED", "MPOL_PREFERRED_MANY", "MPOL_WEIGHTED_INTERLEAVE"],
                "flags": ["MPOL_F_NUMA_BALANCING", "MPOL_F_RELATIVE_NODES", "MPOL_F_STATIC_NODES"]
            },
            "selinux": {"enabled": false},
            "intelRdt": {"enabled": false}
        },
        "annotations": {"org.opencontainers.runc.checkpoint.enabled": "false"}
    });
    println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    Ok(0)
}
