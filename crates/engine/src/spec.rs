//! The OCI runtime spec of a container, made as Docker makes it: the image's
//! defaults (Entrypoint, Cmd, Env, WorkingDir, User) under the user's
//! options, Docker's default capabilities, masked and read-only paths,
//! devices, mounts and seccomp profile.

use crate::error::{EngineError, Result};
use oci_spec::runtime::{
    Capability, LinuxCapabilities, LinuxDeviceCgroup, LinuxNamespace, LinuxNamespaceType, Mount,
    Process, Root, Spec, User,
};
use std::collections::HashSet;
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
}

/// What the user asked for on the command line.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Replaces the image's Cmd (arguments after the image name).
    pub cmd: Vec<String>,
    /// `--entrypoint`: Some("") clears the image's entrypoint.
    pub entrypoint: Option<String>,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub hostname: Option<String>,
    pub tty: bool,
    pub read_only: bool,
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
        Some(e) if e.is_empty() => Vec::new(),
        Some(e) => vec![e.clone()],
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

/// Merges environment lists: later entries replace earlier ones by key;
/// PATH is set when the image does not set it.
pub fn merge_env(image: &[String], user: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for kv in image.iter().chain(user) {
        let key = kv.split('=').next().unwrap_or(kv);
        out.retain(|e| e.split('=').next() != Some(key));
        out.push(kv.clone());
    }
    if !out.iter().any(|e| e.starts_with("PATH=")) {
        out.insert(0, DEFAULT_PATH_ENV.to_owned());
    }
    out
}

/// Resolves `user[:group]` (names or numbers) against the rootfs's
/// /etc/passwd and /etc/group, as Docker does; returns uid, gid and the
/// user's supplementary groups.
pub fn resolve_user(rootfs: &Path, spec: &str) -> Result<(u32, u32, Vec<u32>)> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap_or_default();
    let groups = std::fs::read_to_string(rootfs.join("etc/group")).unwrap_or_default();
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
    let mut extra = Vec::new();
    if let Some(n) = name {
        for l in groups.lines() {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() >= 4 && f[3].split(',').any(|m| m == n) {
                if let Ok(g) = f[2].parse::<u32>() {
                    if g != gid && !extra.contains(&g) {
                        extra.push(g);
                    }
                }
            }
        }
    }
    Ok((uid, gid, extra))
}

/// The full runtime spec for a container whose root filesystem is `rootfs`.
pub fn container_spec(
    id: &str,
    rootfs: &Path,
    image: &ImageDefaults,
    opts: &RunOptions,
) -> Result<Spec> {
    let mut spec = Spec::default();
    spec.set_version("1.0.2".to_owned());
    let mut root = Root::default();
    root.set_path(rootfs.to_owned());
    root.set_readonly(Some(opts.read_only));
    spec.set_root(Some(root));
    spec.set_hostname(Some(
        opts.hostname
            .clone()
            .unwrap_or_else(|| id.chars().take(12).collect()),
    ));

    let mut process = Process::default();
    process.set_args(Some(argv(image, opts)?));
    process.set_env(Some(merge_env(&image.env, &opts.env)));
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
        .filter(|u| !u.is_empty());
    let mut user = User::default();
    if let Some(u) = user_spec {
        let (uid, gid, extra) = resolve_user(rootfs, &u)?;
        user.set_uid(uid);
        user.set_gid(gid);
        if !extra.is_empty() {
            user.set_additional_gids(Some(extra));
        }
    }
    process.set_user(user);
    let caps: HashSet<Capability> = DEFAULT_CAPS
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
    process.set_rlimits(None);
    process.set_no_new_privileges(Some(false));
    spec.set_process(Some(process));

    spec.set_mounts(Some(vec![
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
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        ),
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["ro", "nosuid", "noexec", "nodev"],
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"],
        ),
    ]));

    let mut linux = oci_spec::runtime::Linux::default();
    let ns = |t: LinuxNamespaceType| {
        let mut n = LinuxNamespace::default();
        n.set_typ(t);
        n
    };
    linux.set_namespaces(Some(vec![
        ns(LinuxNamespaceType::Mount),
        ns(LinuxNamespaceType::Network),
        ns(LinuxNamespaceType::Uts),
        ns(LinuxNamespaceType::Pid),
        ns(LinuxNamespaceType::Ipc),
        ns(LinuxNamespaceType::Cgroup),
    ]));
    linux.set_masked_paths(Some(MASKED_PATHS.iter().map(|s| (*s).to_owned()).collect()));
    linux.set_readonly_paths(Some(
        READONLY_PATHS.iter().map(|s| (*s).to_owned()).collect(),
    ));
    let mut deny_all = LinuxDeviceCgroup::default();
    deny_all.set_allow(false);
    deny_all.set_access(Some("rwm".to_owned()));
    let mut res = oci_spec::runtime::LinuxResources::default();
    res.set_devices(Some(vec![deny_all]));
    linux.set_resources(Some(res));
    // Flat, one directory per container: a shared parent would be left
    // behind by whichever container did not create it.
    linux.set_cgroups_path(Some(PathBuf::from(format!("/berth-{id}"))));
    linux.set_seccomp(Some(berth_seccomp::docker_default_profile()));
    spec.set_linux(Some(linux));
    Ok(spec)
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
            entrypoint: ep.map(str::to_owned),
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
        let e = merge_env(&["A=1".into(), "B=2".into()], &["A=3".into()]);
        assert_eq!(e, [DEFAULT_PATH_ENV, "B=2", "A=3"]);
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
            (1000, 1000, vec![10])
        );
        assert_eq!(
            resolve_user(d.path(), "bob:wheel").unwrap(),
            (1000, 10, vec![])
        );
        assert_eq!(resolve_user(d.path(), "4242:7").unwrap(), (4242, 7, vec![]));
        assert!(resolve_user(d.path(), "alice").is_err());
        assert!(resolve_user(d.path(), "bob:nogroup").is_err());
    }
}
