//! Building the container's root filesystem inside its new mount namespace:
//! spec mounts in order, device nodes, /dev symlinks, pivot_root (or chroot),
//! then masked and read-only paths.
//!
//! Mount targets inside the rootfs are resolved with `openat2(RESOLVE_IN_ROOT)`
//! and mounted through `/proc/self/fd/N`, so a symlink planted in the rootfs
//! can never redirect a mount onto the host (the CVE-2021-30465 class).

use crate::error::{spec_err, Context, Result, RuntimeError};
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{mknod, Mode, SFlag};
use nix::unistd::{chdir, chown, fchdir, pivot_root, Gid, Uid};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Mount, Spec};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

/// Mount options split into flags to set, flags to clear, propagation flags
/// and the filesystem-specific data string.
#[derive(Debug, PartialEq)]
pub struct MountOptions {
    pub flags: MsFlags,
    pub clear: MsFlags,
    pub propagation: Vec<MsFlags>,
    pub data: Vec<String>,
    /// `MOUNT_ATTR_*` bits the recursive options (`rro`, `rnosuid`, …) set
    /// and clear on the mount and every mount under it.
    pub rec_set: u64,
    pub rec_clr: u64,
    /// `idmap` (Some(false)) or `ridmap` (Some(true)).
    pub idmap: Option<bool>,
}

/// mount_setattr(2)'s attributes.
pub mod attr {
    pub const RDONLY: u64 = 0x1;
    pub const NOSUID: u64 = 0x2;
    pub const NODEV: u64 = 0x4;
    pub const NOEXEC: u64 = 0x8;
    /// The access-time mode's bits (relatime is 0 in them).
    pub const ATIME_MASK: u64 = 0x70;
    pub const RELATIME: u64 = 0x0;
    pub const NOATIME: u64 = 0x10;
    pub const STRICTATIME: u64 = 0x20;
    pub const NODIRATIME: u64 = 0x80;
    pub const IDMAP: u64 = 0x10_0000;
    pub const NOSYMFOLLOW: u64 = 0x20_0000;
}

/// runc's recursive mount options: (name, clear?, attribute).
const RECURSIVE_OPTIONS: &[(&str, bool, u64)] = &[
    ("rro", false, attr::RDONLY),
    ("rrw", true, attr::RDONLY),
    ("rnosuid", false, attr::NOSUID),
    ("rsuid", true, attr::NOSUID),
    ("rnodev", false, attr::NODEV),
    ("rdev", true, attr::NODEV),
    ("rnoexec", false, attr::NOEXEC),
    ("rexec", true, attr::NOEXEC),
    ("rnodiratime", false, attr::NODIRATIME),
    ("rdiratime", true, attr::NODIRATIME),
    ("rrelatime", false, attr::RELATIME),
    ("rnorelatime", true, attr::RELATIME),
    ("rnoatime", false, attr::NOATIME),
    ("ratime", true, attr::NOATIME),
    ("rstrictatime", false, attr::STRICTATIME),
    ("rnostrictatime", true, attr::STRICTATIME),
    ("rnosymfollow", false, attr::NOSYMFOLLOW),
    ("rsymfollow", true, attr::NOSYMFOLLOW),
];

/// The names of the recursive mount options (for `features`).
pub fn recursive_option_names() -> impl Iterator<Item = &'static str> {
    RECURSIVE_OPTIONS.iter().map(|(n, _, _)| *n)
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            flags: MsFlags::empty(),
            clear: MsFlags::empty(),
            propagation: Vec::new(),
            data: Vec::new(),
            rec_set: 0,
            rec_clr: 0,
            idmap: None,
        }
    }
}

impl MountOptions {
    pub fn parse(options: &[String]) -> Result<MountOptions> {
        let mut o = MountOptions::default();
        for opt in options {
            if let Some(&(_, clear, bit)) = RECURSIVE_OPTIONS.iter().find(|(n, _, _)| n == opt) {
                // The access time is one mode in a field: setting a mode (or
                // leaving one) means clearing the whole field, as the kernel
                // requires (mount_setattr(2)); leaving one falls back to relatime.
                let atime = bit & attr::ATIME_MASK == bit;
                if clear {
                    o.rec_clr |= if atime { attr::ATIME_MASK } else { bit };
                    o.rec_set &= !bit;
                } else {
                    if atime {
                        o.rec_clr |= attr::ATIME_MASK;
                        o.rec_set &= !attr::ATIME_MASK;
                    } else {
                        o.rec_clr &= !bit;
                    }
                    o.rec_set |= bit;
                }
                continue;
            }
            let (set, clear): (MsFlags, MsFlags) = match opt.as_str() {
                "defaults" => (MsFlags::empty(), MsFlags::empty()),
                "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
                "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
                "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
                "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
                "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
                "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
                "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
                "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
                "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
                "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
                "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
                "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
                "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
                "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
                "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
                "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
                "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
                "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
                "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
                "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
                "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
                "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
                "lazytime" => (MsFlags::MS_LAZYTIME, MsFlags::empty()),
                "bind" => (MsFlags::MS_BIND, MsFlags::empty()),
                "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty()),
                "silent" => (MsFlags::MS_SILENT, MsFlags::empty()),
                "tmpcopyup" => (MsFlags::empty(), MsFlags::empty()),
                p @ ("private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave"
                | "unbindable" | "runbindable") => {
                    o.propagation
                        .push(propagation_flag(p).unwrap_or(MsFlags::MS_PRIVATE));
                    continue;
                }
                "idmap" | "ridmap" => {
                    o.idmap = Some(opt == "ridmap");
                    continue;
                }
                other => {
                    o.data.push(other.to_owned());
                    continue;
                }
            };
            o.flags |= set;
            o.flags &= !clear;
            o.clear |= clear;
        }
        Ok(o)
    }
}

pub fn propagation_flag(name: &str) -> Option<MsFlags> {
    Some(match name {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    })
}

/// What kind of object to create at a missing mount target.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Dir,
    File,
}

/// The container's root directory, held open.
pub struct Root {
    pub path: PathBuf,
    fd: OwnedFd,
}

fn in_root(flags: OFlag) -> OpenHow {
    OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS)
}

/// `openat2`, again while it says EAGAIN: with `RESOLVE_IN_ROOT` the kernel
/// refuses a lookup through `..` when any rename or mount happened meanwhile
/// anywhere on the machine (as runc's securejoin, retried).
fn openat2_retry(dirfd: i32, path: &Path, how: impl Fn() -> OpenHow) -> nix::Result<i32> {
    let mut tries = 0;
    loop {
        match openat2(dirfd, path, how()) {
            Err(nix::errno::Errno::EAGAIN) if tries < 128 => tries += 1,
            r => return r,
        }
    }
}

fn owned(fd: i32) -> OwnedFd {
    crate::sys::take_fd(fd)
}

impl Root {
    pub fn open(path: &Path) -> Result<Root> {
        let fd = nix::fcntl::open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .context(|| format!("open rootfs {}", path.display()))?;
        Ok(Root {
            path: path.to_owned(),
            fd: owned(fd),
        })
    }

    /// runc's rule for proc and sysfs: if `path` exists, its last component
    /// is a directory, not a symlink (never followed) nor anything else.
    fn check_ordinary_dir(&self, path: &Path, typ: &str) -> Result<()> {
        let rel: PathBuf = path
            .components()
            .filter(|c| matches!(c, Component::Normal(_)))
            .collect();
        if rel.as_os_str().is_empty() {
            return Ok(());
        }
        let how = || in_root(OFlag::O_PATH | OFlag::O_NOFOLLOW);
        let fd = match openat2_retry(self.fd.as_raw_fd(), &rel, how) {
            Ok(fd) => owned(fd),
            Err(nix::errno::Errno::ENOENT) => return Ok(()),
            Err(e) => return Err(e).context(|| format!("resolve {} in rootfs", path.display())),
        };
        if is_dir_fd(&fd) {
            return Ok(());
        }
        Err(RuntimeError::Other(format!(
            "filesystem {typ:?} must be mounted on ordinary directory"
        )))
    }

    /// Opens `path` (absolute, as seen inside the container) with symlinks
    /// resolved inside the rootfs, creating missing directories (and the
    /// last component as `kind`) on the way.
    fn open_target(&self, path: &Path, kind: Kind) -> Result<OwnedFd> {
        let rel: PathBuf = path
            .components()
            .filter(|c| matches!(c, Component::Normal(_)))
            .collect();
        let how = || in_root(OFlag::O_PATH);
        match openat2_retry(self.fd.as_raw_fd(), &rel, how) {
            Ok(fd) => return Ok(owned(fd)),
            Err(nix::errno::Errno::ENOENT) => {}
            Err(e) => return Err(e).context(|| format!("resolve {} in rootfs", path.display())),
        }
        let comps: Vec<_> = rel.components().collect();
        let mut prefix = PathBuf::new();
        for (i, c) in comps.iter().enumerate() {
            let last = i + 1 == comps.len();
            let parent = if prefix.as_os_str().is_empty() {
                nix::unistd::dup(self.fd.as_raw_fd()).map(owned)
            } else {
                openat2_retry(self.fd.as_raw_fd(), &prefix, || {
                    in_root(OFlag::O_PATH | OFlag::O_DIRECTORY)
                })
                .map(owned)
            }
            .context(|| format!("resolve {} in rootfs", prefix.display()))?;
            prefix.push(c);
            match openat2_retry(self.fd.as_raw_fd(), &prefix, how) {
                Ok(fd) if last => return Ok(owned(fd)),
                Ok(fd) => drop(owned(fd)),
                Err(nix::errno::Errno::ENOENT) => {
                    let name = c.as_os_str();
                    let created = if last && kind == Kind::File {
                        nix::fcntl::openat(
                            Some(parent.as_raw_fd()),
                            name,
                            OFlag::O_CREAT
                                | OFlag::O_EXCL
                                | OFlag::O_WRONLY
                                | OFlag::O_NOFOLLOW
                                | OFlag::O_CLOEXEC,
                            Mode::from_bits_truncate(0o644),
                        )
                        .map(|fd| drop(owned(fd)))
                    } else {
                        nix::sys::stat::mkdirat(
                            Some(parent.as_raw_fd()),
                            name,
                            Mode::from_bits_truncate(0o755),
                        )
                    };
                    match created {
                        Ok(()) => {}
                        // A dangling symlink: it points at something that
                        // does not exist inside the rootfs. Refuse rather than
                        // follow it anywhere.
                        Err(nix::errno::Errno::EEXIST) => {
                            return Err(RuntimeError::Other(format!(
                                "mount target {}: {} is a dangling symlink",
                                path.display(),
                                prefix.display()
                            )))
                        }
                        Err(e) => {
                            return Err(e)
                                .context(|| format!("create {} in rootfs", prefix.display()))
                        }
                    }
                    if last {
                        return openat2_retry(self.fd.as_raw_fd(), &prefix, how)
                            .map(owned)
                            .context(|| format!("open {} in rootfs", prefix.display()));
                    }
                }
                Err(e) => {
                    return Err(e).context(|| format!("resolve {} in rootfs", prefix.display()))
                }
            }
        }
        Err(RuntimeError::Other(format!(
            "mount target {} resolves to the rootfs itself",
            path.display()
        )))
    }
}

/// Whether mount `m` is idmapped: it has its own uid/gid mappings or the
/// `idmap`/`ridmap` option (which, alone, takes the container's mappings).
fn idmap_mappings(
    spec: &Spec,
    m: &Mount,
) -> Result<
    Option<(
        Vec<oci_spec::runtime::LinuxIdMapping>,
        Vec<oci_spec::runtime::LinuxIdMapping>,
    )>,
> {
    let opts = MountOptions::parse(m.options().as_deref().unwrap_or(&[]))?;
    let own = m.uid_mappings().as_ref().is_some_and(|v| !v.is_empty())
        || m.gid_mappings().as_ref().is_some_and(|v| !v.is_empty());
    if !own && opts.idmap.is_none() {
        return Ok(None);
    }
    let is_bind = opts.flags.contains(MsFlags::MS_BIND) || m.typ().as_deref() == Some("bind");
    if !is_bind {
        return Err(RuntimeError::Other(
            "id-mapped mounts are only supported for bind mounts".to_owned(),
        ));
    }
    let linux = spec.linux().as_ref();
    let pick = |own: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>,
                theirs: Option<&Option<Vec<oci_spec::runtime::LinuxIdMapping>>>| {
        own.clone()
            .filter(|v| !v.is_empty())
            .or_else(|| theirs.and_then(|t| t.clone()))
            .unwrap_or_default()
    };
    let uid = pick(m.uid_mappings(), linux.map(|l| l.uid_mappings()));
    let gid = pick(m.gid_mappings(), linux.map(|l| l.gid_mappings()));
    if uid.is_empty() || gid.is_empty() {
        return Err(RuntimeError::Other(
            "an id-mapped mount needs uidMappings and gidMappings (its own or the container's)"
                .to_owned(),
        ));
    }
    Ok(Some((uid, gid)))
}

/// The user namespaces the spec's idmapped mounts need, by mount index: each
/// made by a short-lived child (`CLONE_NEWUSER`) whose maps the runtime writes,
/// held open by descriptor. Made by the runtime before the clone, while its
/// /proc shows the pids it sees. Nothing is done for a spec without any.
pub fn idmap_namespaces(spec: &Spec) -> Result<Vec<(usize, OwnedFd)>> {
    let mut out = Vec::new();
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        let field = || format!("mounts[{i}] ({})", m.destination().display());
        let Some((uid, gid)) =
            idmap_mappings(spec, m).map_err(|e| spec_err(field(), e.to_string()))?
        else {
            continue;
        };
        let fd = userns_with(&uid, &gid).map_err(|e| spec_err(field(), e.to_string()))?;
        out.push((i, fd));
    }
    Ok(out)
}

fn userns_with(
    uid: &[oci_spec::runtime::LinuxIdMapping],
    gid: &[oci_spec::runtime::LinuxIdMapping],
) -> Result<OwnedFd> {
    let (r, w) = nix::unistd::pipe().context(|| "pipe".to_owned())?;
    let child = crate::sys::clone_process(nix::sched::CloneFlags::CLONE_NEWUSER)
        .context(|| "clone a user namespace for an id-mapped mount".to_owned())?;
    let Some(pid) = child else {
        // The child only holds the namespace until the runtime has opened it.
        drop(w);
        let mut b = [0u8; 1];
        let _ = nix::unistd::read(r.as_raw_fd(), &mut b);
        crate::sys::exit_now(0)
    };
    drop(r);
    let text = |maps: &[oci_spec::runtime::LinuxIdMapping]| -> String {
        maps.iter()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect()
    };
    let res = (|| -> Result<OwnedFd> {
        std::fs::write(format!("/proc/{pid}/uid_map"), text(uid))
            .context(|| "write the mount's uid mappings".to_owned())?;
        std::fs::write(format!("/proc/{pid}/gid_map"), text(gid))
            .context(|| "write the mount's gid mappings".to_owned())?;
        let fd = nix::fcntl::open(
            format!("/proc/{pid}/ns/user").as_str(),
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .context(|| "open the mount's user namespace".to_owned())?;
        Ok(owned(fd))
    })();
    drop(w);
    let _ = nix::sys::wait::waitpid(pid, None);
    res
}

/// The files under /proc a mount may cover (lxcfs emulates them), as runc allows.
const PROC_MOUNTS_ALLOWED: &[&str] = &[
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/net/dev",
    "/proc/sys/kernel/ns_last_pid",
];

/// `path` made lexically clean, as Go's `path.Clean` of an absolute path: no `.`,
/// no empty components, `..` applied (never above `/`).
pub fn clean_absolute(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

/// runc's checkProcMount: on /proc itself only a procfs (a `proc` mount, or a bind
/// of a procfs), and under it nothing but the few files lxcfs emulates. `dest` is
/// the clean destination inside the container; the error is runc's.
pub fn check_proc_mount(
    dest: &str,
    is_proc_mount: bool,
    source_is_proc: impl FnOnce() -> bool,
) -> std::result::Result<(), String> {
    if dest == "/proc" {
        if is_proc_mount || source_is_proc() {
            return Ok(());
        }
        return Err(format!(
            "{dest:?} cannot be mounted because it is not of type proc"
        ));
    }
    if !dest.starts_with("/proc/") || PROC_MOUNTS_ALLOWED.contains(&dest) {
        return Ok(());
    }
    Err(format!(
        "{dest:?} cannot be mounted because it is inside /proc"
    ))
}

/// Whether `path` is on a procfs.
pub fn on_procfs(path: &Path) -> bool {
    nix::sys::statfs::statfs(path)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC)
}

fn fd_path(fd: &OwnedFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

fn is_dir_fd(fd: &OwnedFd) -> bool {
    nix::sys::stat::fstat(fd.as_raw_fd())
        .map(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR)
        .unwrap_or(false)
}

/// Everything up to (not including) pivot_root.
pub struct RootfsSetup<'a> {
    pub spec: &'a Spec,
    pub bundle_dir: &'a Path,
    pub rootfs: &'a Path,
    pub in_user_ns: bool,
    pub new_cgroup_ns: bool,
    /// The user namespaces of the idmapped mounts, by mount index
    /// ([`idmap_namespaces`]).
    pub idmap_userns: &'a [(usize, OwnedFd)],
}

impl RootfsSetup<'_> {
    pub fn prepare(&self) -> Result<Root> {
        let linux = self.spec.linux().as_ref();
        let root_prop = match linux.and_then(|l| l.rootfs_propagation().as_deref()) {
            Some(p) if !p.is_empty() => propagation_flag(p)
                .ok_or_else(|| spec_err("linux.rootfsPropagation", format!("unknown {p:?}")))?,
            _ => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        };
        // Nothing we mount may propagate back to the host: every mount of
        // the new namespace becomes a slave of the host's (private when
        // private is asked; never shared with the host).
        let base = if root_prop.contains(MsFlags::MS_PRIVATE) {
            MsFlags::MS_PRIVATE
        } else {
            MsFlags::MS_SLAVE
        };
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            base | MsFlags::MS_REC,
            None::<&str>,
        )
        .context(|| "make / a slave mount".to_owned())?;
        let t = berth_trace::span("mount", "bind the rootfs onto itself").detail(|| {
            format!(
                "{} (MS_BIND|MS_REC), / made MS_SLAVE",
                self.rootfs.display()
            )
        });
        mount(
            Some(self.rootfs),
            self.rootfs,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .context(|| format!("bind {} onto itself", self.rootfs.display()))?;
        t.end();
        // Then the container's root gets the propagation asked (shared,
        // private, unbindable; a slave it already is). Unbindable is set on
        // the bind, not on the host's / (runc 1.1 does the latter, and its
        // bind of the rootfs then fails with EINVAL).
        if root_prop.intersects(MsFlags::MS_SHARED | MsFlags::MS_PRIVATE | MsFlags::MS_UNBINDABLE) {
            mount(
                None::<&str>,
                self.rootfs,
                None::<&str>,
                root_prop,
                None::<&str>,
            )
            .context(|| "set rootfs propagation".to_owned())?;
        }
        let root = Root::open(self.rootfs)?;
        let mut dev_is_bind = false;
        for (i, m) in self.spec.mounts().iter().flatten().enumerate() {
            let userns = self
                .idmap_userns
                .iter()
                .find(|(j, _)| *j == i)
                .map(|(_, fd)| fd);
            let _t = berth_trace::span("mount", "mount").detail(|| {
                format!(
                    "{} on {} type {} ({})",
                    m.source()
                        .as_ref()
                        .map_or_else(|| "none".into(), |s| s.display().to_string()),
                    m.destination().display(),
                    m.typ().as_deref().unwrap_or("bind"),
                    m.options()
                        .as_ref()
                        .map_or_else(String::new, |o| o.join(","))
                )
            });
            self.mount_one(&root, m, userns).map_err(|e| {
                spec_err(
                    format!("mounts[{i}] ({})", m.destination().display()),
                    e.to_string(),
                )
            })?;
            if m.destination() == Path::new("/dev")
                && m.typ().as_deref().is_none_or(|t| t == "bind")
                && m.options()
                    .iter()
                    .flatten()
                    .any(|o| o == "bind" || o == "rbind")
            {
                dev_is_bind = true;
            }
        }
        if !dev_is_bind {
            let _t = berth_trace::span("mount", "device nodes in /dev");
            self.create_devices(&root)?;
        }
        // A missing working directory is made (root's, 0755), as runc does; resolved in
        // the rootfs like a mount target (never through a symlink out of it or a magic
        // link such as /proc/self/fd/N). A failure shows at the chdir before the exec.
        if let Some(cwd) = self.spec.process().as_ref().map(|p| p.cwd()) {
            if cwd.is_absolute() && cwd.components().count() > 1 {
                let _ = root.open_target(cwd, Kind::Dir);
            }
        }
        Ok(root)
    }

    /// Refuses what runc's checkProcMount refuses, for the destination as written
    /// and, when the target opened turns out to be on a procfs (a symlink in the
    /// image led there), as resolved.
    fn check_proc(&self, m: &Mount, target: Option<&OwnedFd>, is_bind: bool) -> Result<()> {
        let typ = m.typ().as_deref().unwrap_or("");
        let source_is_proc = || {
            is_bind
                && m.source().as_ref().is_some_and(|s| {
                    on_procfs(&if s.is_absolute() {
                        s.clone()
                    } else {
                        self.bundle_dir.join(s)
                    })
                })
        };
        let dest = match target {
            None => clean_absolute(&m.destination().to_string_lossy()),
            Some(fd) => {
                let on_proc = nix::sys::statfs::fstatfs(fd)
                    .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC);
                if !on_proc {
                    return Ok(());
                }
                let host = std::fs::read_link(fd_path(fd)).unwrap_or_default();
                let root = std::fs::canonicalize(self.rootfs).unwrap_or_default();
                match host.strip_prefix(&root) {
                    Ok(rel) => clean_absolute(&format!("/{}", rel.display())),
                    // Outside the rootfs cannot be: treat it as under /proc.
                    Err(_) => "/proc/?".to_owned(),
                }
            }
        };
        check_proc_mount(&dest, typ == "proc", source_is_proc).map_err(RuntimeError::Other)
    }

    fn mount_one(&self, root: &Root, m: &Mount, userns: Option<&OwnedFd>) -> Result<()> {
        let opts = MountOptions::parse(m.options().as_deref().unwrap_or(&[]))?;
        self.mount_plain(root, m, &opts, userns)?;
        if opts.rec_set == 0 && opts.rec_clr == 0 {
            return Ok(());
        }
        // The recursive options: on the mount just made and every mount
        // under it (an rbind's submounts), as runc applies them. Reopened:
        // an earlier descriptor names the directory under the new mount.
        let target = root.open_target(m.destination(), Kind::Dir)?;
        let a = crate::sys::MountAttr {
            attr_set: opts.rec_set,
            attr_clr: opts.rec_clr,
            ..Default::default()
        };
        crate::sys::mount_setattr(target.as_fd(), true, &a)
            .context(|| "mount_setattr (recursive mount options)".to_owned())
    }

    fn mount_plain(
        &self,
        root: &Root,
        m: &Mount,
        opts: &MountOptions,
        userns: Option<&OwnedFd>,
    ) -> Result<()> {
        let typ = m.typ().as_deref().unwrap_or("");
        let is_bind = opts.flags.contains(MsFlags::MS_BIND) || typ == "bind";
        self.check_proc(m, None, is_bind)?;
        let data = opts.data.join(",");
        let data = (!data.is_empty()).then_some(data.as_str());
        if is_bind {
            let src = m
                .source()
                .as_ref()
                .ok_or_else(|| RuntimeError::Other("bind mount without a source".to_owned()))?;
            let src = if src.is_absolute() {
                src.clone()
            } else {
                self.bundle_dir.join(src)
            };
            let meta =
                std::fs::metadata(&src).context(|| format!("bind source {}", src.display()))?;
            let kind = if meta.is_dir() { Kind::Dir } else { Kind::File };
            let target = root.open_target(m.destination(), kind)?;
            self.check_proc(m, Some(&target), is_bind)?;
            let tp = fd_path(&target);
            if let Some(userns) = userns {
                // An idmapped bind: a detached copy of the source, the
                // mapping set on it, then attached on the target.
                let tree = crate::sys::open_tree_clone(&src, opts.flags.contains(MsFlags::MS_REC))
                    .context(|| format!("open_tree {}", src.display()))?;
                let a = crate::sys::MountAttr {
                    attr_set: attr::IDMAP,
                    userns_fd: userns.as_raw_fd() as u64,
                    ..Default::default()
                };
                crate::sys::mount_setattr(tree.as_fd(), opts.idmap == Some(true), &a)
                    .context(|| format!("idmap the bind of {}", src.display()))?;
                crate::sys::move_mount_fds(tree.as_fd(), target.as_fd())
                    .context(|| format!("attach the idmapped bind of {}", src.display()))?;
            } else {
                mount(
                    Some(&src),
                    tp.as_str(),
                    None::<&str>,
                    MsFlags::MS_BIND | (opts.flags & MsFlags::MS_REC),
                    None::<&str>,
                )
                .context(|| format!("bind {}", src.display()))?;
            }
            // The target fd still names the directory *under* the new mount:
            // reopen it to reach the mount itself for the remount.
            let target = root.open_target(m.destination(), kind)?;
            let tp = fd_path(&target);
            let extra = opts.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
            if !extra.is_empty() {
                let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | extra;
                if let Err(e) = mount(None::<&str>, tp.as_str(), None::<&str>, flags, None::<&str>)
                {
                    // In a user namespace the source's locked flags must be kept.
                    let locked = locked_flags(&tp);
                    mount(
                        None::<&str>,
                        tp.as_str(),
                        None::<&str>,
                        flags | locked,
                        None::<&str>,
                    )
                    .map_err(|_| e)
                    .context(|| "remount bind with its options".to_owned())?;
                }
            }
            for p in &opts.propagation {
                mount(None::<&str>, tp.as_str(), None::<&str>, *p, None::<&str>)
                    .context(|| "set propagation".to_owned())?;
            }
            return Ok(());
        }
        if typ == "cgroup" || typ == "cgroup2" {
            return self.mount_cgroup(root, m, opts);
        }
        if typ == "proc" || typ == "sysfs" {
            root.check_ordinary_dir(m.destination(), typ)?;
        }
        let target = root.open_target(m.destination(), Kind::Dir)?;
        self.check_proc(m, Some(&target), is_bind)?;
        if !is_dir_fd(&target) && typ != "bind" {
            return Err(RuntimeError::Other(format!(
                "{} is not a directory",
                m.destination().display()
            )));
        }
        let tp = fd_path(&target);
        let source = m
            .source()
            .as_ref()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| typ.to_owned());
        let flags = opts.flags & !MsFlags::MS_REMOUNT;
        let res = mount(Some(source.as_str()), tp.as_str(), Some(typ), flags, data);
        match res {
            Ok(()) => {}
            // sysfs cannot be mounted from a user namespace that does not own
            // the network namespace: bind the host's instead, as runc does.
            Err(nix::errno::Errno::EPERM) if typ == "sysfs" && self.in_user_ns => {
                mount(
                    Some("/sys"),
                    tp.as_str(),
                    None::<&str>,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None::<&str>,
                )
                .context(|| "bind /sys".to_owned())?;
            }
            // procfs likewise needs a pid namespace the user namespace owns
            // (rootless with `--pid host`): the host's, bound recursively.
            Err(nix::errno::Errno::EPERM) if typ == "proc" && self.in_user_ns => {
                mount(
                    Some("/proc"),
                    tp.as_str(),
                    None::<&str>,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None::<&str>,
                )
                .context(|| "bind /proc".to_owned())?;
            }
            // mqueue likewise needs an ipc namespace the user namespace owns;
            // a host without /dev/mqueue leaves the directory empty (message
            // queues are system calls: nothing but their listing is lost).
            Err(nix::errno::Errno::EPERM)
                if typ == "mqueue" && self.in_user_ns && !Path::new("/dev/mqueue").exists() => {}
            Err(nix::errno::Errno::EPERM) if typ == "mqueue" && self.in_user_ns => {
                mount(
                    Some("/dev/mqueue"),
                    tp.as_str(),
                    None::<&str>,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None::<&str>,
                )
                .context(|| "bind /dev/mqueue".to_owned())?;
            }
            Err(e) => return Err(e).context(|| format!("mount {typ}")),
        }
        if !opts.propagation.is_empty() {
            let target = root.open_target(m.destination(), Kind::Dir)?;
            for p in &opts.propagation {
                mount(
                    None::<&str>,
                    fd_path(&target).as_str(),
                    None::<&str>,
                    *p,
                    None::<&str>,
                )
                .context(|| "set propagation".to_owned())?;
            }
        }
        Ok(())
    }

    /// A `cgroup` mount: the container sees its own cgroup as the root when
    /// it has a cgroup namespace; otherwise the host's hierarchies, read-only
    /// if asked.
    fn mount_cgroup(&self, root: &Root, m: &Mount, opts: &MountOptions) -> Result<()> {
        let flags = opts.flags & !MsFlags::MS_REMOUNT;
        let target = root.open_target(m.destination(), Kind::Dir)?;
        let tp = fd_path(&target);
        if host_cgroup_mounts()?
            .iter()
            .any(|h| h.is_v2 && h.mountpoint == Path::new("/sys/fs/cgroup"))
        {
            if self.new_cgroup_ns {
                return mount(
                    Some("cgroup2"),
                    tp.as_str(),
                    Some("cgroup2"),
                    flags,
                    None::<&str>,
                )
                .context(|| "mount cgroup2".to_owned());
            }
            let own = Path::new("/sys/fs/cgroup").join(own_cgroup(None)?);
            mount(
                Some(&own),
                tp.as_str(),
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .context(|| format!("bind {}", own.display()))?;
            // Reopen: the old descriptor names the directory under the mount.
            let target = root.open_target(m.destination(), Kind::Dir)?;
            return remount_bind(&fd_path(&target), flags);
        }
        mount(
            Some("tmpfs"),
            tp.as_str(),
            Some("tmpfs"),
            flags & !MsFlags::MS_RDONLY,
            Some("mode=755"),
        )
        .context(|| "mount tmpfs for cgroups".to_owned())?;
        let base = m.destination().clone();
        for h in host_cgroup_mounts()? {
            let Some(name) = h.mountpoint.file_name() else {
                continue;
            };
            let dest = base.join(name);
            let t = root.open_target(&dest, Kind::Dir)?;
            let tp = fd_path(&t);
            if self.new_cgroup_ns {
                let fstype = if h.is_v2 { "cgroup2" } else { "cgroup" };
                let data = (!h.is_v2).then(|| h.options.clone());
                mount(
                    Some("cgroup"),
                    tp.as_str(),
                    Some(fstype),
                    flags,
                    data.as_deref(),
                )
                .context(|| format!("mount cgroup {}", dest.display()))?;
            } else {
                // Only the container's own cgroup, as runc does.
                let own = if h.is_v2 {
                    own_cgroup(None)?
                } else {
                    own_cgroup(Some(&h.options))?
                };
                let src = h.mountpoint.join(own);
                mount(
                    Some(&src),
                    tp.as_str(),
                    None::<&str>,
                    MsFlags::MS_BIND,
                    None::<&str>,
                )
                .context(|| format!("bind {}", src.display()))?;
                let t = root.open_target(&dest, Kind::Dir)?;
                remount_bind(&fd_path(&t), flags)?;
            }
        }
        if flags.contains(MsFlags::MS_RDONLY) {
            let target = root.open_target(m.destination(), Kind::Dir)?;
            mount(
                None::<&str>,
                fd_path(&target).as_str(),
                None::<&str>,
                MsFlags::MS_REMOUNT | flags,
                Some("mode=755"),
            )
            .context(|| "remount cgroup tmpfs read-only".to_owned())?;
        }
        Ok(())
    }

    fn create_devices(&self, root: &Root) -> Result<()> {
        let mut devices: Vec<LinuxDevice> = default_devices();
        for d in self
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.devices().as_ref())
            .into_iter()
            .flatten()
        {
            devices.retain(|x| x.path() != d.path());
            devices.push(d.clone());
        }
        for (i, d) in devices.iter().enumerate() {
            self.create_device(root, d).map_err(|e| {
                spec_err(
                    format!("linux.devices ({})", d.path().display()),
                    format!("{e} (#{i})"),
                )
            })?;
        }
        let dev = root.open_target(Path::new("/dev"), Kind::Dir)?;
        for (link, to) in [
            ("fd", "/proc/self/fd"),
            ("stdin", "/proc/self/fd/0"),
            ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"),
            ("ptmx", "pts/ptmx"),
        ] {
            match nix::unistd::symlinkat(to, Some(dev.as_raw_fd()), link) {
                Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
                Err(e) => return Err(e).context(|| format!("symlink /dev/{link}")),
            }
        }
        if Path::new("/proc/kcore").exists() {
            let _ = nix::unistd::symlinkat("/proc/kcore", Some(dev.as_raw_fd()), "core");
        }
        Ok(())
    }

    fn create_device(&self, root: &Root, d: &LinuxDevice) -> Result<()> {
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            LinuxDeviceType::A => {
                return Err(RuntimeError::Other("type \"a\" is not a device".to_owned()))
            }
        };
        let mode = Mode::from_bits_truncate(d.file_mode().unwrap_or(0o666));
        let dev = nix::sys::stat::makedev(d.major() as u64, d.minor() as u64);
        let parent = d.path().parent().unwrap_or(Path::new("/dev"));
        let name = d
            .path()
            .file_name()
            .ok_or_else(|| RuntimeError::Other("device path has no file name".to_owned()))?;
        let dir = root.open_target(parent, Kind::Dir)?;
        let dir_path = fd_path(&dir);
        let path = Path::new(&dir_path).join(name);
        if !self.in_user_ns {
            match mknod(&path, kind, mode, dev) {
                Ok(()) => {
                    // mknod applies the umask: set the mode exactly.
                    nix::sys::stat::fchmodat(
                        Some(dir.as_raw_fd()),
                        name,
                        mode,
                        nix::sys::stat::FchmodatFlags::FollowSymlink,
                    )
                    .context(|| "chmod device".to_owned())?;
                    chown(
                        &path,
                        d.uid().map(Uid::from_raw),
                        d.gid().map(Gid::from_raw),
                    )
                    .context(|| "chown device".to_owned())?;
                    return Ok(());
                }
                Err(nix::errno::Errno::EEXIST) => return Ok(()),
                Err(nix::errno::Errno::EPERM) => {}
                Err(e) => return Err(e).context(|| "mknod".to_owned()),
            }
        }
        // No mknod in a user namespace: bind the host's node instead.
        let target = root.open_target(d.path(), Kind::File)?;
        mount(
            Some(d.path()),
            fd_path(&target).as_str(),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .context(|| format!("bind host {}", d.path().display()))
    }
}

/// A cgroup filesystem mounted on the host under /sys/fs/cgroup.
struct CgroupMount {
    mountpoint: PathBuf,
    /// Super options (the controllers, `name=systemd`).
    options: String,
    is_v2: bool,
}

/// This process's cgroup (relative to the hierarchy's root) in the v1
/// hierarchy with these super options, or in the unified one for `None`.
fn own_cgroup(options: Option<&str>) -> Result<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/cgroup")
        .context(|| "read /proc/self/cgroup".to_owned())?;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let matches = match options {
            None => ctrls.is_empty(),
            Some(opts) => {
                !ctrls.is_empty() && {
                    let want: Vec<&str> = opts.split(',').collect();
                    ctrls.split(',').all(|c| want.contains(&c))
                }
            }
        };
        if matches {
            return Ok(PathBuf::from(path.trim_start_matches('/')));
        }
    }
    Ok(PathBuf::new())
}

fn host_cgroup_mounts() -> Result<Vec<CgroupMount>> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")
        .context(|| "read /proc/self/mountinfo".to_owned())?;
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mut r = right.split(' ');
        let (Some(fstype), Some(_src), Some(sopts)) = (r.next(), r.next(), r.next()) else {
            continue;
        };
        let Some(mp) = left.split(' ').nth(4) else {
            continue;
        };
        if !mp.starts_with("/sys/fs/cgroup") || !(fstype == "cgroup" || fstype == "cgroup2") {
            continue;
        }
        let options = sopts
            .split(',')
            .filter(|o| *o != "rw" && *o != "ro")
            .collect::<Vec<_>>()
            .join(",");
        out.push(CgroupMount {
            mountpoint: PathBuf::from(mp),
            options,
            is_v2: fstype == "cgroup2",
        });
    }
    Ok(out)
}

fn remount_bind(target: &str, flags: MsFlags) -> Result<()> {
    let extra = flags & !(MsFlags::MS_BIND | MsFlags::MS_REC);
    if extra.is_empty() {
        return Ok(());
    }
    mount(
        None::<&str>,
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | extra,
        None::<&str>,
    )
    .context(|| format!("remount {target}"))
}

fn locked_flags(path: &str) -> MsFlags {
    use nix::sys::statvfs::{statvfs, FsFlags};
    let Ok(st) = statvfs(path) else {
        return MsFlags::empty();
    };
    let f = st.flags();
    let mut m = MsFlags::empty();
    for (fs, ms) in [
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f.contains(fs) {
            m |= ms;
        }
    }
    m
}

/// The devices every container gets (runtime-spec "Default Devices").
pub fn default_devices() -> Vec<LinuxDevice> {
    [
        ("/dev/null", 1, 3),
        ("/dev/zero", 1, 5),
        ("/dev/full", 1, 7),
        ("/dev/random", 1, 8),
        ("/dev/urandom", 1, 9),
        ("/dev/tty", 5, 0),
    ]
    .into_iter()
    .map(|(path, major, minor)| {
        let mut d = LinuxDevice::default();
        d.set_path(PathBuf::from(path));
        d.set_typ(LinuxDeviceType::C);
        d.set_major(major);
        d.set_minor(minor);
        d.set_file_mode(Some(0o666));
        d.set_uid(Some(0));
        d.set_gid(Some(0));
        d
    })
    .collect()
}

/// Without a mount namespace (none new, none joined) runc 1.1 still binds
/// the rootfs onto itself in the runtime's mount namespace (its
/// prepareRoot), which callers rely on (youki's contest unmounts it). berth
/// makes that bind, a slave so that nothing mounted under it propagates
/// back to the host, but none of runc's other changes there (runc also
/// makes the host's / a recursive slave and mounts the spec's mounts in
/// the host's namespace). Returns the bind's mount ID, for [`unbind_in_place`].
pub fn bind_in_place(rootfs: &Path) -> Result<u64> {
    mount(
        Some(rootfs),
        rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .context(|| format!("bind {} onto itself", rootfs.display()))?;
    let made = mount(
        None::<&str>,
        rootfs,
        None::<&str>,
        MsFlags::MS_SLAVE,
        None::<&str>,
    )
    .context(|| format!("make {} a slave mount", rootfs.display()))
    .and_then(|()| {
        crate::sys::mount_id(rootfs)
            .ok_or_else(|| RuntimeError::Other(format!("no mount ID for {}", rootfs.display())))
    });
    if made.is_err() {
        let _ = umount2(rootfs, MntFlags::MNT_DETACH);
    }
    made
}

/// Undoes [`bind_in_place`]: unmounts the rootfs if the mount there is
/// still the bind made (`id`); one its caller unmounted already, or another
/// mounted over it, is left alone.
pub fn unbind_in_place(rootfs: &Path, id: u64) {
    if crate::sys::mount_id(rootfs) == Some(id) {
        let _ = umount2(rootfs, MntFlags::MNT_DETACH);
    }
}

/// Makes `rootfs` the process's root. With `no_pivot`, or where pivot_root is
/// impossible (a rootfs on the initramfs), moves it over / and chroots.
pub fn enter(rootfs: &Path, no_pivot: bool) -> Result<()> {
    chdir(rootfs).context(|| format!("chdir {}", rootfs.display()))?;
    if !no_pivot {
        let old_root = nix::fcntl::open(
            "/",
            OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .context(|| "open old root".to_owned())?;
        let old_root = owned(old_root);
        match pivot_root(".", ".") {
            Ok(()) => {
                // The old root is now mounted on top of the new one; detach
                // it without letting the unmount propagate to the host.
                fchdir(old_root.as_raw_fd()).context(|| "fchdir old root".to_owned())?;
                mount(
                    None::<&str>,
                    ".",
                    None::<&str>,
                    MsFlags::MS_SLAVE | MsFlags::MS_REC,
                    None::<&str>,
                )
                .context(|| "make old root a slave".to_owned())?;
                umount2(".", MntFlags::MNT_DETACH).context(|| "detach old root".to_owned())?;
                chdir("/").context(|| "chdir /".to_owned())?;
                return Ok(());
            }
            Err(nix::errno::Errno::EINVAL) => {}
            Err(e) => return Err(e).context(|| "pivot_root".to_owned()),
        }
    }
    mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
        .context(|| "move rootfs to /".to_owned())?;
    nix::unistd::chroot(".").context(|| "chroot".to_owned())?;
    chdir("/").context(|| "chdir /".to_owned())
}

/// After the pivot: the root read-only if asked, masked and read-only paths.
pub fn finish(spec: &Spec) -> Result<()> {
    let linux = spec.linux().as_ref();
    for p in linux
        .and_then(|l| l.masked_paths().as_ref())
        .into_iter()
        .flatten()
    {
        mask_path(p).map_err(|e| spec_err("linux.maskedPaths", e.to_string()))?;
    }
    for p in linux
        .and_then(|l| l.readonly_paths().as_ref())
        .into_iter()
        .flatten()
    {
        readonly_path(p).map_err(|e| spec_err("linux.readonlyPaths", e.to_string()))?;
    }
    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
        if mount(None::<&str>, "/", None::<&str>, flags, None::<&str>).is_err() {
            mount(
                None::<&str>,
                "/",
                None::<&str>,
                flags | locked_flags("/"),
                None::<&str>,
            )
            .context(|| "remount / read-only".to_owned())?;
        }
    }
    Ok(())
}

fn mask_path(p: &str) -> Result<()> {
    let md = match std::fs::symlink_metadata(p) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).context(|| format!("mask {p}")),
    };
    if md.is_dir() {
        mount(
            Some("tmpfs"),
            p,
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .context(|| format!("mask {p}"))
    } else {
        mount(
            Some("/dev/null"),
            p,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .context(|| format!("mask {p}"))
    }
}

fn readonly_path(p: &str) -> Result<()> {
    match mount(
        Some(p),
        p,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    ) {
        Ok(()) => {}
        Err(nix::errno::Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(e).context(|| format!("read-only {p}")),
    }
    // The remount keeps the mount's own flags (nosuid, nodev, noexec of /proc), as runc
    // does: a remount without them would clear them (or fail where they are locked).
    let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_REC;
    mount(
        None::<&str>,
        p,
        None::<&str>,
        flags | locked_flags(p),
        None::<&str>,
    )
    .context(|| format!("remount {p} read-only"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_options() {
        let o = MountOptions::parse(&[
            "nosuid".into(),
            "rbind".into(),
            "ro".into(),
            "rslave".into(),
            "mode=755".into(),
        ])
        .unwrap_or_default();
        assert!(o.flags.contains(
            MsFlags::MS_NOSUID | MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY
        ));
        assert_eq!(o.propagation, vec![MsFlags::MS_SLAVE | MsFlags::MS_REC]);
        assert_eq!(o.data, vec!["mode=755".to_owned()]);
        assert_eq!(
            MountOptions::parse(&["ridmap".into()])
                .map(|o| o.idmap)
                .ok(),
            Some(Some(true))
        );
    }
}
