//! The OCI runtime spec of a container, made as Docker makes it: the image's
//! defaults (Entrypoint, Cmd, Env, WorkingDir, User) under the user's
//! options, Docker's default capabilities, masked and read-only paths,
//! devices, mounts and seccomp profile; then the user's `HostConfig`
//! (resources, capabilities, security options, namespaces, mounts, devices)
//! as Docker turns its HostConfig into a spec.

use crate::error::{EngineError, Result};
use crate::options::{Healthcheck, HostConfig, MountPoint, SeccompMode};
use oci_spec::runtime::{
    Capability, LinuxCapabilities, LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType, LinuxNamespace,
    LinuxNamespaceType, Mount, Process, Root, Spec, User,
};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Docker's default capability set.
pub const DEFAULT_CAPS: [&str; 14] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

pub const MASKED_PATHS: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Docker's size of a container's /dev/shm (HostConfig.ShmSize).
pub const DEFAULT_SHM_SIZE: i64 = 67_108_864;

pub const DEFAULT_PATH_ENV: &str =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What an image says about how to run it (the `config` of its config).
#[derive(Debug, Clone, Default)]
pub struct ImageDefaults {
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub stop_signal: Option<String>,
    pub healthcheck: Option<Healthcheck>,
    /// `Volumes`: paths that get an anonymous volume each.
    pub volumes: Vec<String>,
    /// `ExposedPorts` ("80/tcp"), kept for `-P` and inspect.
    pub exposed_ports: Vec<String>,
    pub labels: BTreeMap<String, String>,
}

impl ImageDefaults {
    /// The `config` object of an image's config JSON.
    pub fn from_config_json(config_json: &[u8]) -> Result<ImageDefaults> {
        let v: serde_json::Value = serde_json::from_slice(config_json)
            .map_err(|e| EngineError::Other(format!("image config: {e}")))?;
        let c = &v["config"];
        let strings = |k: &str| -> Option<Vec<String>> {
            c.get(k)?.as_array().map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            })
        };
        let string = |k: &str| c.get(k).and_then(|x| x.as_str()).map(str::to_owned);
        let keys = |k: &str| -> Vec<String> {
            c.get(k)
                .and_then(|x| x.as_object())
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default()
        };
        let h = &c["Healthcheck"];
        let healthcheck = h.is_object().then(|| Healthcheck {
            test: h["Test"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
            interval: h["Interval"].as_i64().unwrap_or(0),
            timeout: h["Timeout"].as_i64().unwrap_or(0),
            start_period: h["StartPeriod"].as_i64().unwrap_or(0),
            retries: h["Retries"].as_i64().unwrap_or(0),
        });
        Ok(ImageDefaults {
            entrypoint: strings("Entrypoint"),
            cmd: strings("Cmd"),
            env: strings("Env").unwrap_or_default(),
            working_dir: string("WorkingDir"),
            user: string("User"),
            stop_signal: string("StopSignal").filter(|s| !s.is_empty()),
            healthcheck,
            volumes: keys("Volumes"),
            exposed_ports: keys("ExposedPorts"),
            labels: c
                .get("Labels")
                .and_then(|x| x.as_object())
                .map(|o| {
                    o.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                        .collect()
                })
                .unwrap_or_default(),
        })
    }
}

/// What the user asked for on the command line.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Replaces the image's Cmd (arguments after the image name).
    pub cmd: Vec<String>,
    /// `--entrypoint` (one word) or the API's Entrypoint (a list): Some of
    /// an empty list (or of one empty word) clears the image's entrypoint.
    pub entrypoint: Option<Vec<String>>,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub hostname: Option<String>,
    pub tty: bool,
    pub read_only: bool,
    /// Resources, security, namespaces, mounts, devices, policies.
    pub host: HostConfig,
    /// `-l`/`--label-file` (the image's labels are merged in at create).
    pub labels: BTreeMap<String, String>,
    pub stop_signal: Option<String>,
    pub stop_timeout: Option<u64>,
    /// `--restart`, validated (`no`, `always`, `unless-stopped`, `on-failure[:N]`).
    pub restart: Option<String>,
    /// `--log-driver` (json-file or none) and its `--log-opt`s.
    pub log_driver: Option<String>,
    pub log_max_size: Option<u64>,
    pub log_max_files: Option<u32>,
    /// The `--health-*` flags (`test` empty: the image's command).
    pub healthcheck: Option<Healthcheck>,
    /// Namespaces joined by path ("ipc"/"pid" → /proc/PID/ns/…), filled in
    /// at start for `container:X` modes.
    pub ns_paths: BTreeMap<String, String>,
}

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Mount {
    let mut m = Mount::default();
    m.set_destination(PathBuf::from(dest));
    m.set_typ(Some(typ.to_owned()));
    m.set_source(Some(PathBuf::from(source)));
    m.set_options(Some(options.iter().map(|s| (*s).to_owned()).collect()));
    m
}

/// The argv Docker runs: Entrypoint + Cmd, where command-line arguments
/// replace Cmd and `--entrypoint` replaces Entrypoint (and drops the image's
/// Cmd unless arguments are given).
pub fn argv(image: &ImageDefaults, opts: &RunOptions) -> Result<Vec<String>> {
    let entrypoint: Vec<String> = match &opts.entrypoint {
        Some(e) if e.iter().all(|w| w.is_empty()) => Vec::new(),
        Some(e) => e.clone(),
        None => image.entrypoint.clone().unwrap_or_default(),
    };
    let cmd: Vec<String> = if !opts.cmd.is_empty() {
        opts.cmd.clone()
    } else if opts.entrypoint.is_some() {
        Vec::new()
    } else {
        image.cmd.clone().unwrap_or_default()
    };
    let argv: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if argv.is_empty() {
        return Err(EngineError::Invalid("no command specified".into()));
    }
    Ok(argv)
}

fn env_key(kv: &str) -> &str {
    kv.split('=').next().unwrap_or(kv)
}

/// Docker's `ReplaceOrAppendEnvValues`: a variable already in `env` is
/// replaced where it is, a new one appended; a bare `KEY` removes it.
fn replace_or_append(env: &mut Vec<String>, kv: &str) {
    let key = env_key(kv);
    if !kv.contains('=') {
        env.retain(|e| env_key(e) != key);
        return;
    }
    match env.iter_mut().find(|e| env_key(e) == key) {
        Some(e) => kv.clone_into(e),
        None => env.push(kv.to_owned()),
    }
}

/// A container's `Config.Env` as Docker stores it at create: the user's
/// variables (a repeated key replaced in place), then the image's whose
/// keys the user did not set.
pub fn merge_env(image: &[String], user: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for kv in user {
        let key = env_key(kv);
        match out.iter_mut().find(|e| env_key(e) == key) {
            Some(e) => kv.clone_into(e),
            None => out.push(kv.clone()),
        }
    }
    for kv in image {
        if !out.iter().any(|e| env_key(e) == env_key(kv)) {
            out.push(kv.clone());
        }
    }
    out
}

/// The environment of a container's process (and of an exec), as Docker
/// and runc make it: PATH, HOSTNAME and (with a terminal) TERM=xterm, then
/// `Config.Env` and the exec's own variables replacing or appending, then
/// HOME (the user's passwd entry in the container, `/` without one) when
/// still unset or empty.
pub fn process_env(
    config_env: &[String],
    hostname: &str,
    tty: bool,
    extra: &[String],
    home: &str,
) -> Vec<String> {
    let mut env = vec![DEFAULT_PATH_ENV.to_owned(), format!("HOSTNAME={hostname}")];
    if tty {
        env.push("TERM=xterm".to_owned());
    }
    for kv in config_env.iter().chain(extra) {
        replace_or_append(&mut env, kv);
    }
    if !env.iter().any(|e| e.len() > 5 && env_key(e) == "HOME") {
        replace_or_append(&mut env, &format!("HOME={home}"));
    }
    env
}

/// /etc/passwd or /etc/group of the container's root filesystem, read
/// without leaving it (an image's symlink to a host file resolves inside).
fn etc_file(rootfs: &Path, path: &str) -> String {
    berth_storage::read_config_file(rootfs, path, 16 << 20)
}

/// The home directory of `uid` in the rootfs's /etc/passwd (what runc sets
/// HOME to), `/` when it has no entry.
pub fn passwd_home(rootfs: &Path, uid: u32) -> String {
    let passwd = etc_file(rootfs, "etc/passwd");
    passwd
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 6 && f[2].parse::<u32>() == Ok(uid) && !f[5].is_empty())
                .then(|| f[5].to_owned())
        })
        .unwrap_or_else(|| "/".to_owned())
}

/// Resolves `user[:group]` (names or numbers) against the rootfs's
/// /etc/passwd and /etc/group, as Docker does; returns uid, gid and the
/// user's supplementary groups.
pub fn resolve_user(rootfs: &Path, spec: &str) -> Result<(u32, u32, Vec<u32>)> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let passwd = etc_file(rootfs, "etc/passwd");
    let groups = etc_file(rootfs, "etc/group");
    let entry = passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 4 && (f[0] == user || f[2] == user)).then(|| (f[0].to_owned(), f[2], f[3]))
    });
    let (name, uid, mut gid) = match (entry, user.parse::<u32>()) {
        (Some((n, u, g)), _) => (
            Some(n),
            u.parse()
                .map_err(|_| EngineError::Invalid(format!("bad uid in /etc/passwd for {user}")))?,
            g.parse().unwrap_or(0),
        ),
        (None, Ok(uid)) => (None, uid, 0),
        (None, Err(_)) => {
            return Err(EngineError::Invalid(format!(
                "unable to find user {user}: no matching entries in passwd file"
            )))
        }
    };
    if let Some(g) = group {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => groups
                .lines()
                .find_map(|l| {
                    let f: Vec<&str> = l.split(':').collect();
                    (f.len() >= 3 && f[0] == g)
                        .then(|| f[2].parse().ok())
                        .flatten()
                })
                .ok_or_else(|| {
                    EngineError::Invalid(format!(
                        "unable to find group {g}: no matching entries in group file"
                    ))
                })?,
        };
    }
    // Docker's (libcontainer's) supplementary groups: the primary group,
    // then, unless a group was given, those /etc/group lists the user in.
    let mut extra = vec![gid];
    if let (Some(n), None) = (name, group) {
        for l in groups.lines() {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() >= 4 && f[3].split(',').any(|m| m == n) {
                if let Ok(g) = f[2].parse::<u32>() {
                    if !extra.contains(&g) {
                        extra.push(g);
                    }
                }
            }
        }
    }
    Ok((uid, gid, extra))
}

/// A process's supplementary groups: the user's memberships (`memberships`, from
/// [`resolve_user`]), `--group-add`'s, and the primary group `gid` too, as in Docker
/// (containerd's fix of CVE-2023-25173: group permissions must not be escaped by a
/// process that lacks its own primary group in its list).
pub fn supplementary_gids(
    rootfs: &Path,
    gid: u32,
    memberships: Vec<u32>,
    group_add: &[String],
) -> Result<Vec<u32>> {
    let mut gids = memberships;
    for g in group_add {
        let n = resolve_group(rootfs, g)?;
        if !gids.contains(&n) {
            gids.push(n);
        }
    }
    if !gids.contains(&gid) {
        gids.push(gid);
    }
    Ok(gids)
}

/// The full runtime spec for a container whose root filesystem is `rootfs`.
pub fn container_spec(
    id: &str,
    rootfs: &Path,
    image: &ImageDefaults,
    opts: &RunOptions,
) -> Result<Spec> {
    let h = &opts.host;
    let mut spec = Spec::default();
    spec.set_version("1.0.2".to_owned());
    let mut root = Root::default();
    root.set_path(rootfs.to_owned());
    root.set_readonly(Some(opts.read_only));
    spec.set_root(Some(root));
    spec.set_hostname(if h.uts == "host" {
        None
    } else {
        Some(
            opts.hostname
                .clone()
                .unwrap_or_else(|| id.chars().take(12).collect()),
        )
    });
    if !h.domainname.is_empty() && h.uts != "host" {
        spec.set_domainname(Some(h.domainname.clone()));
    }

    let mut process = Process::default();
    let mut args = argv(image, opts)?;
    if h.init.is_some() {
        args.splice(0..0, [INIT_PATH.to_owned(), "--".to_owned()]);
    }
    process.set_args(Some(args));
    let cwd = opts
        .workdir
        .clone()
        .or_else(|| image.working_dir.clone())
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".to_owned());
    process.set_cwd(PathBuf::from(cwd));
    process.set_terminal(Some(opts.tty));
    let user_spec = opts
        .user
        .clone()
        .or_else(|| image.user.clone())
        .filter(|u| !u.is_empty())
        // Docker resolves the default user too (root's groups of /etc/group).
        .unwrap_or_else(|| "0".to_owned());
    let mut user = User::default();
    let (uid, gid, memberships) = resolve_user(rootfs, &user_spec)?;
    user.set_uid(uid);
    user.set_gid(gid);
    let gids = supplementary_gids(rootfs, gid, memberships, &h.group_add)?;
    user.set_additional_gids(Some(gids));
    let hostname = opts
        .hostname
        .clone()
        .unwrap_or_else(|| id.chars().take(12).collect());
    process.set_env(Some(process_env(
        &merge_env(&image.env, &opts.env),
        &hostname,
        opts.tty,
        &[],
        &passwd_home(rootfs, user.uid()),
    )));
    process.set_user(user);
    let caps: HashSet<Capability> = crate::options::effective_caps(&DEFAULT_CAPS, h)
        .iter()
        .filter_map(|c| Capability::from_str(c).ok())
        .collect();
    let mut lc = LinuxCapabilities::default();
    lc.set_bounding(Some(caps.clone()));
    lc.set_effective(Some(caps.clone()));
    lc.set_permitted(Some(caps));
    lc.set_inheritable(None);
    lc.set_ambient(None);
    process.set_capabilities(Some(lc));
    let rlimits = h
        .ulimits
        .iter()
        .map(|u| {
            let typ = serde_json::from_value(serde_json::Value::String(format!(
                "RLIMIT_{}",
                u.name.to_ascii_uppercase()
            )))
            .map_err(|_| EngineError::Invalid(format!("invalid ulimit type: {}", u.name)))?;
            oci_spec::runtime::PosixRlimitBuilder::default()
                .typ::<oci_spec::runtime::PosixRlimitType>(typ)
                .soft(u.soft as u64)
                .hard(u.hard as u64)
                .build()
                .map_err(|e| EngineError::Other(format!("rlimit: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    process.set_rlimits((!rlimits.is_empty()).then_some(rlimits));
    process.set_no_new_privileges(Some(h.no_new_privileges));
    spec.set_process(Some(process));

    let sys_ro: &[&str] = if h.privileged {
        &["nosuid", "noexec", "nodev"]
    } else {
        &["nosuid", "noexec", "nodev", "ro"]
    };
    let cgroup_opts: &[&str] = if h.privileged {
        &["rw", "nosuid", "noexec", "nodev"]
    } else {
        &["ro", "nosuid", "noexec", "nodev"]
    };
    let mut mounts = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount("/sys", "sysfs", "sysfs", sys_ro),
        mount("/sys/fs/cgroup", "cgroup", "cgroup", cgroup_opts),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
    ];
    match h.ipc.as_str() {
        "none" => {}
        "host" => mounts.push(mount(
            "/dev/shm",
            "bind",
            "/dev/shm",
            &["rbind", "rprivate"],
        )),
        _ => mounts.push(mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &[
                "nosuid",
                "noexec",
                "nodev",
                "mode=1777",
                &format!("size={}", h.shm_size.unwrap_or(DEFAULT_SHM_SIZE)),
            ],
        )),
    }
    // The user's mounts replace defaults at the same place; parents first.
    let mut user_mounts: Vec<&MountPoint> = h.mounts.iter().collect();
    user_mounts.sort_by_key(|m| m.destination.trim_end_matches('/').matches('/').count());
    for m in user_mounts {
        let dest = m.destination.trim_end_matches('/');
        mounts.retain(|d| d.destination() != Path::new(dest));
        mounts.push(user_mount(m)?);
    }
    if let Some(init) = &h.init {
        mounts.push(mount(INIT_PATH, "bind", init, &["bind", "ro", "rprivate"]));
    }
    spec.set_mounts(Some(mounts));

    let mut linux = oci_spec::runtime::Linux::default();
    let ns = |t: LinuxNamespaceType, path: Option<&String>| {
        let mut n = LinuxNamespace::default();
        n.set_typ(t);
        n.set_path(path.map(PathBuf::from));
        n
    };
    let mut namespaces = vec![ns(LinuxNamespaceType::Mount, None)];
    if h.network != "host" {
        namespaces.push(ns(LinuxNamespaceType::Network, opts.ns_paths.get("net")));
    }
    if h.uts != "host" {
        namespaces.push(ns(LinuxNamespaceType::Uts, None));
    }
    if h.pid != "host" {
        namespaces.push(ns(LinuxNamespaceType::Pid, opts.ns_paths.get("pid")));
    }
    if h.ipc != "host" {
        namespaces.push(ns(LinuxNamespaceType::Ipc, opts.ns_paths.get("ipc")));
    }
    namespaces.push(ns(LinuxNamespaceType::Cgroup, None));
    linux.set_namespaces(Some(namespaces));
    if !h.privileged {
        linux.set_masked_paths(Some(MASKED_PATHS.iter().map(|s| (*s).to_owned()).collect()));
        linux.set_readonly_paths(Some(
            READONLY_PATHS.iter().map(|s| (*s).to_owned()).collect(),
        ));
    }
    if !h.sysctls.is_empty() {
        linux.set_sysctl(Some(
            h.sysctls
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ));
    }
    let mut deny_all = LinuxDeviceCgroup::default();
    deny_all.set_allow(false);
    deny_all.set_access(Some("rwm".to_owned()));
    let mut rules = vec![deny_all];
    let mut devices = Vec::new();
    if h.privileged {
        let mut all = LinuxDeviceCgroup::default();
        all.set_allow(true);
        all.set_typ(Some(LinuxDeviceType::A));
        all.set_access(Some("rwm".to_owned()));
        rules.push(all);
        devices = host_devices(Path::new("/dev"), Path::new("/dev"))?;
    }
    for d in &h.devices {
        for dev in host_devices(Path::new(&d.host), Path::new(&d.container))? {
            let mut r = LinuxDeviceCgroup::default();
            r.set_allow(true);
            r.set_typ(Some(dev.typ()));
            r.set_major(Some(dev.major()));
            r.set_minor(Some(dev.minor()));
            r.set_access(Some(d.permissions.clone()));
            rules.push(r);
            devices.retain(|x: &LinuxDevice| x.path() != dev.path());
            devices.push(dev);
        }
    }
    if !devices.is_empty() {
        linux.set_devices(Some(devices));
    }
    linux.set_resources(Some(resources(h, rules)));
    // Flat, one directory per container: a shared parent would be left
    // behind by whichever container did not create it.
    linux.set_cgroups_path(Some(PathBuf::from(format!("/berth-{id}"))));
    match (&h.seccomp, h.privileged) {
        (SeccompMode::Unconfined, _) | (SeccompMode::Default, true) => {}
        (SeccompMode::Default, false) => {
            linux.set_seccomp(Some(berth_seccomp::docker_default_profile()));
        }
        (SeccompMode::Profile(json), _) => {
            linux
                .set_seccomp(Some(berth_seccomp::parse_profile(json).map_err(|e| {
                    EngineError::Invalid(format!("seccomp profile: {e}"))
                })?));
        }
    }
    spec.set_linux(Some(linux));
    Ok(spec)
}

/// Where `--init`'s binary appears in the container (Docker's place).
pub const INIT_PATH: &str = "/sbin/docker-init";

fn user_mount(m: &MountPoint) -> Result<Mount> {
    let dest = m.destination.trim_end_matches('/');
    let mut opts: Vec<String> = Vec::new();
    let (typ, source) = match m.typ.as_str() {
        "tmpfs" => {
            opts.extend(m.options.iter().cloned());
            ("tmpfs", "tmpfs".to_owned())
        }
        "bind" | "volume" => {
            if m.source.is_empty() {
                return Err(EngineError::Other(format!(
                    "volume for {dest} has no directory"
                )));
            }
            opts.push("rbind".into());
            let prop = m
                .options
                .iter()
                .find(|o| o.contains("shared") || o.contains("slave") || o.contains("private"))
                .cloned()
                .unwrap_or_else(|| "rprivate".into());
            opts.push(prop);
            ("bind", m.source.clone())
        }
        other => {
            return Err(EngineError::Invalid(format!("unknown mount type {other}")));
        }
    };
    if m.read_only {
        opts.push("ro".into());
    }
    let mut mt = Mount::default();
    mt.set_destination(PathBuf::from(dest));
    mt.set_typ(Some(typ.to_owned()));
    mt.set_source(Some(PathBuf::from(source)));
    mt.set_options(Some(opts));
    Ok(mt)
}

fn resources(h: &HostConfig, rules: Vec<LinuxDeviceCgroup>) -> oci_spec::runtime::LinuxResources {
    use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxPids};
    let mut res = oci_spec::runtime::LinuxResources::default();
    res.set_devices(Some(rules));
    let positive = |v: Option<i64>| v.filter(|v| *v > 0);
    if h.memory.is_some() || h.memory_reservation.is_some() || h.memory_swap.is_some() {
        let mut m = LinuxMemory::default();
        let limit = positive(h.memory);
        m.set_limit(limit);
        m.set_reservation(positive(h.memory_reservation));
        let swap_accounting = Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")
            .exists()
            || Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
        // Docker: without --memory-swap the container may swap as much as
        // its memory (swap = 2 x memory); -1 is unlimited swap.
        let swap = match (limit, h.memory_swap) {
            (Some(l), None | Some(0)) => Some(l.saturating_mul(2)),
            (Some(_), Some(s)) => Some(s),
            (None, _) => None,
        };
        if swap_accounting {
            m.set_swap(swap);
        }
        res.set_memory(Some(m));
    }
    let mut cpu = LinuxCpu::default();
    let mut any_cpu = false;
    if let Some(n) = h.nano_cpus.filter(|n| *n > 0) {
        cpu.set_period(Some(100_000));
        cpu.set_quota(Some(n / 10_000));
        any_cpu = true;
    }
    if let Some(p) = h.cpu_period.filter(|p| *p > 0) {
        cpu.set_period(Some(p));
        any_cpu = true;
    }
    if let Some(q) = h.cpu_quota.filter(|q| *q != 0) {
        cpu.set_quota(Some(q));
        any_cpu = true;
    }
    if let Some(s) = h.cpu_shares.filter(|s| *s > 0) {
        cpu.set_shares(Some(s));
        any_cpu = true;
    }
    if let Some(c) = &h.cpuset_cpus {
        cpu.set_cpus(Some(c.clone()));
        any_cpu = true;
    }
    if let Some(c) = &h.cpuset_mems {
        cpu.set_mems(Some(c.clone()));
        any_cpu = true;
    }
    if any_cpu {
        res.set_cpu(Some(cpu));
    }
    if let Some(p) = h.pids_limit {
        let mut pids = LinuxPids::default();
        pids.set_limit(if p <= 0 { -1 } else { p });
        res.set_pids(Some(pids));
    }
    if let Some(w) = h.blkio_weight.filter(|w| *w > 0) {
        let mut b = LinuxBlockIo::default();
        b.set_weight(Some(w));
        res.set_block_io(Some(b));
    }
    res
}

/// `--group-add`: a number, or a group name from the rootfs's /etc/group.
fn resolve_group(rootfs: &Path, g: &str) -> Result<u32> {
    if let Ok(n) = g.parse::<u32>() {
        return Ok(n);
    }
    let groups = etc_file(rootfs, "etc/group");
    groups
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 3 && f[0] == g)
                .then(|| f[2].parse().ok())
                .flatten()
        })
        .ok_or_else(|| {
            EngineError::Invalid(format!(
                "Unable to find group {g}: no matching entries in group file"
            ))
        })
}

/// The device nodes at `host` (a node, or a directory searched as runc's
/// HostDevices does), placed under `container` in the container.
pub fn host_devices(host: &Path, container: &Path) -> Result<Vec<LinuxDevice>> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let md = std::fs::metadata(host).map_err(|e| {
        EngineError::Invalid(format!(
            "error gathering device information while adding custom device {:?}: {}",
            host.display().to_string(),
            crate::options::io_reason(&e)
        ))
    })?;
    let ft = md.file_type();
    if ft.is_dir() {
        let mut out = Vec::new();
        let mut entries: Vec<_> = std::fs::read_dir(host)
            .map_err(|e| EngineError::Invalid(format!("read {}: {e}", host.display())))?
            .filter_map(|e| e.ok())
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name();
            let n = name.to_string_lossy();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                if matches!(
                    n.as_ref(),
                    "pts" | "shm" | "fd" | "mqueue" | ".lxc" | ".lxd-mounts" | ".udev"
                ) {
                    continue;
                }
                out.extend(host_devices(&e.path(), &container.join(&name))?);
            } else if (ft.is_char_device() || ft.is_block_device())
                && !(host == Path::new("/dev") && matches!(n.as_ref(), "console" | "ptmx"))
            {
                out.extend(host_devices(&e.path(), &container.join(&name))?);
            }
        }
        return Ok(out);
    }
    let typ = if ft.is_char_device() {
        LinuxDeviceType::C
    } else if ft.is_block_device() {
        LinuxDeviceType::B
    } else {
        return Err(EngineError::Invalid(format!(
            "error gathering device information while adding custom device {:?}: not a device node",
            host.display().to_string()
        )));
    };
    let rdev = md.rdev();
    let mut d = LinuxDevice::default();
    d.set_path(container.to_owned());
    d.set_typ(typ);
    d.set_major(nix::sys::stat::major(rdev) as i64);
    d.set_minor(nix::sys::stat::minor(rdev) as i64);
    d.set_file_mode(Some(md.mode() & 0o7777));
    d.set_uid(Some(md.uid()));
    d.set_gid(Some(md.gid()));
    Ok(vec![d])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn img(ep: Option<&[&str]>, cmd: Option<&[&str]>) -> ImageDefaults {
        ImageDefaults {
            entrypoint: ep.map(|v| v.iter().map(|s| s.to_string()).collect()),
            cmd: cmd.map(|v| v.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        }
    }

    #[test]
    fn argv_follows_docker() {
        let o = |cmd: &[&str], ep: Option<&str>| RunOptions {
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            entrypoint: ep.map(|e| vec![e.to_owned()]),
            ..Default::default()
        };
        let i = img(Some(&["/ep"]), Some(&["a", "b"]));
        assert_eq!(argv(&i, &o(&[], None)).unwrap(), ["/ep", "a", "b"]);
        assert_eq!(argv(&i, &o(&["x"], None)).unwrap(), ["/ep", "x"]);
        assert_eq!(argv(&i, &o(&[], Some("/e2"))).unwrap(), ["/e2"]);
        assert_eq!(argv(&i, &o(&["y"], Some(""))).unwrap(), ["y"]);
        assert!(argv(&img(None, None), &o(&[], None)).is_err());
    }

    #[test]
    fn env_merges_by_key() {
        let e = merge_env(
            &["A=1".into(), "B=2".into()],
            &["A=3".into(), "C=4".into(), "A=5".into()],
        );
        assert_eq!(e, ["A=5", "C=4", "B=2"]);
        let p = process_env(&e, "h", true, &["C".into(), "D=6".into()], "/r");
        assert_eq!(
            p,
            [
                DEFAULT_PATH_ENV,
                "HOSTNAME=h",
                "TERM=xterm",
                "A=5",
                "B=2",
                "D=6",
                "HOME=/r"
            ]
        );
        let p = process_env(&["HOME=".into()], "h", false, &[], "/r");
        assert_eq!(p, [DEFAULT_PATH_ENV, "HOSTNAME=h", "HOME=/r"]);
    }

    #[test]
    fn users_resolve_from_the_rootfs() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("etc")).unwrap();
        std::fs::write(
            d.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nbob:x:1000:1000::/home/bob:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            d.path().join("etc/group"),
            "root:x:0:\nbob:x:1000:\nwheel:x:10:bob\n",
        )
        .unwrap();
        assert_eq!(
            resolve_user(d.path(), "bob").unwrap(),
            (1000, 1000, vec![1000, 10])
        );
        assert_eq!(
            resolve_user(d.path(), "bob:wheel").unwrap(),
            (1000, 10, vec![10])
        );
        assert_eq!(
            resolve_user(d.path(), "4242:7").unwrap(),
            (4242, 7, vec![7])
        );
        assert!(resolve_user(d.path(), "alice").is_err());
        assert!(resolve_user(d.path(), "bob:nogroup").is_err());
    }
}
