//! The container life cycle as the runc-compatible CLI exposes it:
//! create, start, run, exec, kill, delete, state, pause/resume, ps, update.
//!
//! One process does the work (no re-exec): the runtime clones the init
//! directly into its new namespaces, talks to it over a socketpair, and
//! either exits (`create`), or waits for it (`run`).

use crate::channel::{self, Channel, Msg};
use crate::error::{Context, Result, RuntimeError};
use crate::hooks::{self, HookContext, HookKind};
use crate::id::ContainerId;
use crate::init::{self, InitContext, StartSignal};
use crate::spec::Bundle;
use crate::state::{now_rfc3339, process_start, ContainerState, StateRoot, Status};
use crate::stdio::Stdio;
use crate::{sys, tty};
use berth_cgroups::CgroupManager;
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxNamespaceType, Process, Spec};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub struct Runtime {
    store: StateRoot,
}

#[derive(Default, Clone)]
pub struct CreateOptions {
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub no_pivot: bool,
    pub preserve_fds: u32,
    /// Socket-activation descriptors (systemd's `LISTEN_FDS`) to pass on:
    /// descriptors 3.. before the preserved ones, and `LISTEN_FDS=N`,
    /// `LISTEN_PID=1` in the process's environment, as runc does.
    pub listen_fds: u32,
}

#[derive(Clone)]
pub struct ExecOptions {
    pub process: Process,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub preserve_fds: u32,
    /// Exec into a paused container too (runc's `--ignore-paused`): the
    /// process joins the frozen cgroup and runs once it is thawed.
    pub ignore_paused: bool,
}

#[derive(PartialEq, Clone, Copy)]
enum Mode {
    Create,
    Foreground,
}

/// Undoes a half-made container when creation fails part way, and then
/// runs its poststop hooks (runtime spec, lifecycle steps 12 and 13; runc
/// runs them after any failure of `create`).
struct Cleanup<'a> {
    store: &'a StateRoot,
    id: &'a ContainerId,
    child: Option<Pid>,
    cgroup: Option<Box<dyn CgroupManager>>,
    /// The spec, once `linux.netDevices` were moved into the child's
    /// namespace: a create that fails moves them back before the child is
    /// killed (nothing of a failed create is left changed; a successful
    /// one leaves them to the namespace's owner, even at delete, as runc).
    net_devices: Option<Spec>,
    /// The rootfs bound onto itself (no mount namespace) and the bind's ID.
    rootfs_bind: Option<(&'a Path, u64)>,
    hooks: Option<&'a oci_spec::runtime::Hooks>,
    bundle: &'a Path,
    annotations: Option<&'a std::collections::HashMap<String, String>>,
    armed: bool,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(pid) = self.child {
            if let Some(spec) = &self.net_devices {
                let _ = crate::netdev::move_out(spec, pid.as_raw());
            }
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
        }
        if let Some((rootfs, id)) = self.rootfs_bind {
            crate::rootfs::unbind_in_place(rootfs, id);
        }
        if let Some(cg) = &self.cgroup {
            let _ = cg.destroy();
        }
        let _ = self.store.remove(self.id);
        if self.hooks.is_some_and(|h| h.poststop().is_some()) {
            let mut state = serde_json::json!({
                "ociVersion": "1.2.0",
                "id": self.id.as_str(),
                "status": Status::Stopped.to_string(),
                "pid": 0,
                "bundle": self.bundle,
            });
            if let Some(a) = self.annotations {
                state["annotations"] = serde_json::json!(a);
            }
            warn_all(hooks::run_poststop(
                self.hooks,
                &state,
                runtime_hook_context(self.bundle),
            ));
        }
    }
}

/// Where the hooks of the runtime namespace run: in the bundle directory
/// (as runc's), with the runtime's environment unless they name one.
fn runtime_hook_context(bundle: &Path) -> HookContext<'_> {
    HookContext {
        env: None,
        cwd: Some(bundle),
    }
}

fn warn_all(errors: Vec<RuntimeError>) {
    for e in errors {
        eprintln!("berth-runtime: warning: {e}");
    }
}

/// The namespaces this process gives its children (pid, time), saved before
/// the runtime enters the container's so that it can go back to its own
/// once the init is cloned: the hooks of the runtime namespace (and, for a
/// library caller, every later child) must not be born in the container's.
struct ChildNamespaces {
    saved: Vec<(LinuxNamespaceType, OwnedFd)>,
}

impl ChildNamespaces {
    fn save(types: &[LinuxNamespaceType]) -> Result<ChildNamespaces> {
        let mut saved = Vec::new();
        for t in types {
            let name = match t {
                LinuxNamespaceType::Pid => "pid_for_children",
                LinuxNamespaceType::Time => "time_for_children",
                _ => continue,
            };
            saved.push((*t, open_ns(Path::new(&format!("/proc/self/ns/{name}")))?));
        }
        Ok(ChildNamespaces { saved })
    }

    fn restore(&mut self) -> Result<()> {
        for (t, fd) in self.saved.drain(..) {
            setns(fd, init::ns_flag(t))
                .context(|| format!("return to the runtime's {t} namespace"))?;
        }
        Ok(())
    }
}

impl Drop for ChildNamespaces {
    fn drop(&mut self) {
        let _ = self.restore();
    }
}

/// A container whose init is waiting for start, with the runtime still its
/// parent.
struct Launched {
    pid: Pid,
    chan: Channel,
    state: ContainerState,
    cgroup: Box<dyn CgroupManager>,
    console: Option<OwnedFd>,
}

/// A path to `file` inside `dir` short enough for a unix socket address
/// (108 bytes), through an open descriptor of the directory.
struct ShortPath {
    _dir: OwnedFd,
    path: String,
}

fn short_path(full: &Path) -> Result<ShortPath> {
    let dir = full.parent().unwrap_or(Path::new("/"));
    let name = full
        .file_name()
        .ok_or_else(|| RuntimeError::Other(format!("{}: not a socket path", full.display())))?;
    let fd = nix::fcntl::open(
        dir,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .context(|| format!("open {}", dir.display()))?;
    let fd = sys::take_fd(fd);
    let path = format!(
        "/proc/self/fd/{}/{}",
        fd.as_raw_fd(),
        name.to_string_lossy()
    );
    Ok(ShortPath { _dir: fd, path })
}

/// The console socket the container side sends its pty master over: the
/// caller's (`--console-socket`), or, for a terminal without one, our own
/// pair, whose other end we keep to receive the master and relay it.
fn console_for(
    socket: Option<&Path>,
    terminal: bool,
) -> Result<(Option<OwnedFd>, Option<UnixStream>)> {
    if !terminal {
        return Ok((None, None));
    }
    match socket {
        Some(p) => {
            let sp = short_path(p)?;
            let s = UnixStream::connect(&sp.path)
                .context(|| format!("connect console socket {}", p.display()))?;
            Ok((Some(OwnedFd::from(s)), None))
        }
        None => {
            let (a, b) = UnixStream::pair().context(|| "socketpair".to_owned())?;
            Ok((Some(OwnedFd::from(a)), Some(b)))
        }
    }
}

fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let tmp = path.with_extension("tmp-berth");
    std::fs::write(&tmp, pid.to_string()).context(|| format!("write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).context(|| format!("write {}", path.display()))
}

fn write_id_maps(pid: Pid, spec: &Spec) -> Result<()> {
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    for (file, maps) in [
        ("uid_map", linux.uid_mappings()),
        ("gid_map", linux.gid_mappings()),
    ] {
        let text: String = maps
            .iter()
            .flatten()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect();
        let path = format!("/proc/{pid}/{file}");
        std::fs::write(&path, text).map_err(|e| {
            crate::error::spec_err(
                if file == "uid_map" {
                    "linux.uidMappings"
                } else {
                    "linux.gidMappings"
                },
                e.to_string(),
            )
        })?;
    }
    Ok(())
}

/// Connects to `linux.seccomp.listenerPath` when the filter has
/// `SCMP_ACT_NOTIFY` rules: the container process sends its notification
/// descriptor there once its filter is installed.
fn connect_seccomp_listener(
    linux: &oci_spec::runtime::Linux,
    filter: Option<&berth_seccomp::Filter>,
) -> Result<Option<UnixStream>> {
    let Some(f) = filter.filter(|f| f.flags & berth_seccomp::flag::NEW_LISTENER != 0) else {
        return Ok(None);
    };
    let _ = f;
    let Some(path) = linux
        .seccomp()
        .as_ref()
        .and_then(|s| s.listener_path().as_ref())
    else {
        return Ok(None);
    };
    let sp = short_path(path)?;
    UnixStream::connect(&sp.path).map(Some).map_err(|e| {
        crate::error::spec_err(
            "linux.seccomp.listenerPath",
            format!("connect {}: {e}", path.display()),
        )
    })
}

fn open_ns(path: &Path) -> Result<OwnedFd> {
    let fd = nix::fcntl::open(
        path,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .context(|| format!("open namespace {}", path.display()))?;
    Ok(sys::take_fd(fd))
}

/// Clones a container process (see [`sys::clone_process`]) placed in the
/// cgroup2 directory of `cg`: born there when the kernel can
/// (`CLONE_INTO_CGROUP`), else (no such kernel, a cgroup it refuses) moved
/// there by pid right after, the child killed if that fails. The v1
/// hierarchies are left to the child (`enter_v1_self`) or, for a child in a
/// new user namespace, to the caller.
fn clone_in_cgroup(
    cg: &dyn CgroupManager,
    flags: CloneFlags,
    what: impl FnOnce() -> String,
) -> Result<Option<nix::unistd::Pid>> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = cg.unified_dir().and_then(|d| {
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY)
            .open(d)
            .ok()
    });
    if let Some(fd) = &dir {
        if let Ok(child) = sys::clone_into_cgroup(flags, fd.as_fd()) {
            return Ok(child);
        }
    }
    let child = sys::clone_process(flags).context(what)?;
    if let Some(pid) = child {
        if let Err(e) = cg.add_task_unified(pid.as_raw()) {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
            return Err(e.into());
        }
    }
    Ok(child)
}

/// A process's `execCPUAffinity` (runtime spec, config.md): CPU lists for
/// the exec'd process before and after it joins the container's cgroup.
struct ExecAffinity {
    initial: Option<nix::sched::CpuSet>,
    fin: Option<nix::sched::CpuSet>,
}

impl ExecAffinity {
    fn parse(p: &Process) -> Result<ExecAffinity> {
        let a = p.exec_cpu_affinity().as_ref();
        let list = |field: &str, v: Option<&String>| -> Result<Option<nix::sched::CpuSet>> {
            match v.map(|s| s.trim()).filter(|s| !s.is_empty()) {
                None => Ok(None),
                Some(s) => cpu_list(s).map(Some).map_err(|e| {
                    crate::error::spec_err(
                        format!("process.execCPUAffinity.{field}"),
                        format!("{s:?}: {e}"),
                    )
                }),
            }
        };
        Ok(ExecAffinity {
            initial: list("initial", a.and_then(|a| a.initial().as_ref()))?,
            fin: list("final", a.and_then(|a| a.cpu_affinity_final().as_ref()))?,
        })
    }

    /// Sets the initial affinity on this thread; returns the one to put back.
    fn enter_initial(&self) -> Result<Option<nix::sched::CpuSet>> {
        let Some(set) = &self.initial else {
            return Ok(None);
        };
        let me = Pid::from_raw(0);
        let prev = nix::sched::sched_getaffinity(me).context(|| "sched_getaffinity".to_owned())?;
        nix::sched::sched_setaffinity(me, set).map_err(|e| {
            crate::error::spec_err("process.execCPUAffinity.initial", e.to_string())
        })?;
        Ok(Some(prev))
    }

    fn apply_final(&self) -> Result<()> {
        match &self.fin {
            None => Ok(()),
            Some(set) => nix::sched::sched_setaffinity(Pid::from_raw(0), set).map_err(|e| {
                crate::error::spec_err("process.execCPUAffinity.final", e.to_string())
            }),
        }
    }
}

/// A CPU list such as `0-3,7`.
fn cpu_list(s: &str) -> std::result::Result<nix::sched::CpuSet, String> {
    let mut set = nix::sched::CpuSet::new();
    for part in s.split(',').map(str::trim) {
        let num = |t: &str| {
            t.trim()
                .parse::<usize>()
                .map_err(|_| format!("{t:?} is not a CPU number"))
        };
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => (num(part)?, num(part)?),
        };
        if lo > hi {
            return Err(format!("range {part:?} runs backwards"));
        }
        for cpu in lo..=hi {
            set.set(cpu)
                .map_err(|_| format!("CPU {cpu} is out of range"))?;
        }
    }
    Ok(set)
}

/// Orders namespace joins: user first (it grants the rights for the rest),
/// mount last (it changes our root).
fn join_order(t: LinuxNamespaceType) -> u8 {
    match t {
        LinuxNamespaceType::User => 0,
        LinuxNamespaceType::Mount => 9,
        _ => 5,
    }
}

/// Signals a foreground runtime forwards to the container.
fn forwarded_signals() -> SigSet {
    let mut set = SigSet::all();
    for s in [
        Signal::SIGKILL,
        Signal::SIGSTOP,
        Signal::SIGSEGV,
        Signal::SIGBUS,
        Signal::SIGILL,
        Signal::SIGFPE,
        Signal::SIGTRAP,
        Signal::SIGABRT,
        Signal::SIGSYS,
    ] {
        set.remove(s);
    }
    set
}

/// The spec's resources with device rules that always let the container use
/// its default devices, ptys, and mknod (the node's use is what the rules
/// guard), after the spec's own rules. The devices the spec lists in
/// `linux.devices` get no rule of their own, as with runc: whoever writes
/// the spec allows them in `linux.resources.devices` (berth's engine does,
/// as Docker does, one rule per `--device`).
fn with_default_devices(linux: &oci_spec::runtime::Linux) -> oci_spec::runtime::LinuxResources {
    use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};
    let mut r = linux.resources().clone().unwrap_or_default();
    let mut rules = r.devices().clone().unwrap_or_default();
    let rule = |typ: LinuxDeviceType, major: Option<i64>, minor: Option<i64>, access: &str| {
        let mut d = LinuxDeviceCgroup::default();
        d.set_allow(true);
        d.set_typ(Some(typ));
        d.set_major(major);
        d.set_minor(minor);
        d.set_access(Some(access.to_owned()));
        d
    };
    rules.push(rule(LinuxDeviceType::C, None, None, "m"));
    rules.push(rule(LinuxDeviceType::B, None, None, "m"));
    for d in crate::rootfs::default_devices() {
        rules.push(rule(d.typ(), Some(d.major()), Some(d.minor()), "rwm"));
    }
    rules.push(rule(LinuxDeviceType::C, Some(5), Some(2), "rwm")); // /dev/ptmx
    rules.push(rule(LinuxDeviceType::C, Some(136), None, "rwm")); // /dev/pts/*
    rules.push(rule(LinuxDeviceType::C, Some(5), Some(1), "rwm")); // /dev/console
                                                                   // /dev/net/tun, which runc 1.1 allows (Docker 20.10's users make it with
                                                                   // --cap-add NET_ADMIN for VPNs; runc 1.2 dropped it and Docker 25 put it
                                                                   // back in its own rules).
    rules.push(rule(LinuxDeviceType::C, Some(10), Some(200), "rwm"));
    r.set_devices(Some(rules));
    r
}

/// Whether the container's processes are in a pid namespace it created.
fn own_pid_namespace(spec: &Spec) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| {
            ns.iter()
                .any(|n| n.typ() == LinuxNamespaceType::Pid && n.path().is_none())
        })
}

pub fn parse_signal(s: &str) -> Result<Signal> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n)
            .map_err(|_| RuntimeError::Other(format!("unknown signal {s:?}")));
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    name.parse::<Signal>()
        .map_err(|_| RuntimeError::Other(format!("unknown signal {s:?}")))
}

impl Runtime {
    pub fn new(root: &Path) -> Result<Runtime> {
        Ok(Runtime {
            store: StateRoot::new(root)?,
        })
    }

    /// The container's cgroup: `linux.cgroupsPath`, or without one (as runc
    /// 1.1 with cgroupfs) a cgroup named after the ID under the runtime's own
    /// cgroup in each hierarchy, those parents returned to be remembered in
    /// the state.
    fn cgroup_path(spec: &Spec) -> Result<(String, Option<BTreeMap<String, PathBuf>>)> {
        let path = spec
            .linux()
            .as_ref()
            .and_then(|l| l.cgroups_path().as_ref())
            .map(|p| p.to_string_lossy().into_owned())
            .filter(|p| !p.is_empty());
        Ok(match path {
            Some(p) => (p, None),
            None if crate::rootless::in_user_namespace() => (String::new(), None),
            None => (String::new(), Some(berth_cgroups::own_cgroups()?)),
        })
    }

    fn cgroup_manager(
        id: &str,
        path: &str,
        parents: Option<&BTreeMap<String, PathBuf>>,
    ) -> Result<Box<dyn CgroupManager>> {
        // Rootless (in a user namespace that cannot write the host's
        // cgroups): the cgroup in the subtree delegated to the user, else
        // no cgroup, and limits refused (see NoCgroup).
        if crate::rootless::in_user_namespace() {
            return Ok(berth_cgroups::delegated_manager(path, id)?
                .unwrap_or_else(|| Box::new(berth_cgroups::NoCgroup)));
        }
        Ok(match parents {
            Some(p) => berth_cgroups::create_manager_under(p, id)?,
            None => berth_cgroups::create_manager(path, id)?,
        })
    }

    /// Whether the container has no cgroup: rootless, and its cgroup is not
    /// in a subtree delegated to the user.
    fn cgroupless(st: &ContainerState) -> bool {
        crate::rootless::in_user_namespace() && !berth_cgroups::delegation::usable(&st.cgroups_path)
    }

    fn cgroup(&self, st: &ContainerState) -> Result<Box<dyn CgroupManager>> {
        Self::cgroup_manager(&st.id, &st.cgroups_path, st.cgroup_parents.as_ref())
    }

    pub fn status(&self, st: &ContainerState) -> Status {
        if !st.init_alive() {
            return Status::Stopped;
        }
        if !st.started {
            return Status::Created;
        }
        match self.cgroup(st).and_then(|c| Ok(c.freezer_state()?)) {
            Ok(berth_cgroups::FreezerState::Frozen) => Status::Paused,
            _ => Status::Running,
        }
    }

    pub fn load(&self, id: &str) -> Result<(ContainerId, ContainerState)> {
        let id = ContainerId::new(id)?;
        let st = self.store.load(&id)?;
        Ok((id, st))
    }

    fn launch(
        &self,
        id: &ContainerId,
        bundle: Bundle,
        opts: &CreateOptions,
        mode: Mode,
        stdio: [Option<std::os::fd::RawFd>; 3],
    ) -> Result<Launched> {
        let mut bundle = bundle;
        if opts.listen_fds > 0 {
            if let Some(p) = bundle.spec.process_mut() {
                let mut env = p.env().clone().unwrap_or_default();
                env.retain(|e| !e.starts_with("LISTEN_FDS=") && !e.starts_with("LISTEN_PID="));
                env.push(format!("LISTEN_FDS={}", opts.listen_fds));
                env.push("LISTEN_PID=1".to_owned());
                p.set_env(Some(env));
            }
        }
        let bundle = bundle;
        let spec = &bundle.spec;
        let linux = bundle.linux()?;
        let process = bundle.process()?;
        let terminal = process.terminal().unwrap_or(false);
        if terminal && opts.console_socket.is_none() && mode == Mode::Create {
            return Err(RuntimeError::Other(
                "process.terminal is set: --console-socket is required to receive the pty".into(),
            ));
        }
        let seccomp = match linux.seccomp() {
            Some(s) => {
                let mut t = berth_trace::span("seccomp", "compile profile to BPF");
                let f = berth_seccomp::compile_cached(s, &self.store.seccomp_cache())?;
                t.set_detail(|| {
                    format!(
                        "{} syscall rules",
                        s.syscalls().as_ref().map_or(0, Vec::len)
                    )
                });
                Some(f)
            }
            None => None,
        };
        let seccomp_listener = connect_seccomp_listener(linux, seccomp.as_ref())?;
        let idmap_userns = crate::rootfs::idmap_namespaces(spec)?;
        let dir = {
            let _t = berth_trace::span("runtime", "reserve state directory")
                .detail(|| self.store.dir(id).display().to_string());
            self.store.reserve(id)?
        };
        let mut cleanup = Cleanup {
            store: &self.store,
            id,
            child: None,
            cgroup: None,
            net_devices: None,
            rootfs_bind: None,
            hooks: spec.hooks().as_ref(),
            bundle: &bundle.dir,
            annotations: spec.annotations().as_ref(),
            armed: true,
        };
        let (cg_path, cg_parents) = Self::cgroup_path(spec)?;
        let cg = Self::cgroup_manager(id.as_str(), &cg_path, cg_parents.as_ref())?;
        let cg_span = berth_trace::span("cgroup", "create cgroup and write limits")
            .detail(|| cg_path.clone());
        cg.create()?;
        cleanup.cgroup = Some(Self::cgroup_manager(
            id.as_str(),
            &cg_path,
            cg_parents.as_ref(),
        )?);
        cg.apply(&with_default_devices(linux))?;
        cg_span.end();

        // Namespaces: which to create with clone, which to join in the child,
        // and the two (pid, time) that only apply to children and so must be
        // entered here before cloning.
        let mut flags = CloneFlags::empty();
        let mut joins = Vec::new();
        let mut unshare_cgroup = false;
        let mut new_user_ns = false;
        let mut new_mount_ns = false;
        let mut new_net_ns = false;
        // The pid namespace by path and the time namespace change what our
        // children are born in (see below).
        let mut own_child_ns = ChildNamespaces::save(
            &linux
                .namespaces()
                .iter()
                .flatten()
                .filter(|n| match n.typ() {
                    LinuxNamespaceType::Pid => n.path().is_some(),
                    LinuxNamespaceType::Time => true,
                    _ => false,
                })
                .map(|n| n.typ())
                .collect::<Vec<_>>(),
        )?;
        for ns in linux.namespaces().iter().flatten() {
            let t = ns.typ();
            match (t, ns.path()) {
                (LinuxNamespaceType::Pid | LinuxNamespaceType::Time, Some(p)) => {
                    setns(open_ns(p)?, init::ns_flag(t))
                        .context(|| format!("join {t} namespace {}", p.display()))?;
                }
                (LinuxNamespaceType::Time, None) => {
                    unshare(init::ns_flag(t)).context(|| "unshare time namespace".to_owned())?;
                    let text: String = linux
                        .time_offsets()
                        .iter()
                        .flatten()
                        .map(|(clock, o)| {
                            format!(
                                "{clock} {} {}\n",
                                o.secs().unwrap_or(0),
                                o.nanosecs().unwrap_or(0)
                            )
                        })
                        .collect();
                    if !text.is_empty() {
                        std::fs::write("/proc/self/timens_offsets", text).map_err(|e| {
                            crate::error::spec_err("linux.timeOffsets", e.to_string())
                        })?;
                    }
                }
                (LinuxNamespaceType::Cgroup, None) => unshare_cgroup = true,
                (t, None) => {
                    flags |= init::ns_flag(t);
                    new_user_ns |= t == LinuxNamespaceType::User;
                    new_mount_ns |= t == LinuxNamespaceType::Mount;
                    new_net_ns |= t == LinuxNamespaceType::Network;
                }
                (t, Some(p)) => {
                    joins.push((t, open_ns(p)?));
                }
            }
        }
        joins.sort_by_key(|(t, _)| join_order(*t));
        let mut rootfs_bind = None;
        if !linux
            .namespaces()
            .iter()
            .flatten()
            .any(|n| n.typ() == LinuxNamespaceType::Mount)
        {
            let mnt = crate::rootfs::bind_in_place(&bundle.rootfs)?;
            cleanup.rootfs_bind = Some((&bundle.rootfs, mnt));
            rootfs_bind = Some(mnt);
        }

        let start = match mode {
            Mode::Create => {
                let sp = short_path(&dir.join("start.sock"))?;
                StartSignal::Socket(
                    UnixListener::bind(&sp.path).context(|| "bind start socket".to_owned())?,
                )
            }
            Mode::Foreground => StartSignal::Channel,
        };
        // The console socket: the caller's, or (foreground run with a
        // terminal) our own pair whose other end we relay.
        let (console, console_ours) = console_for(opts.console_socket.as_deref(), terminal)?;
        let (ours, theirs) = channel::pair()?;
        let clone_start = berth_trace::now();
        match clone_in_cgroup(&*cg, flags, || format!("clone with namespaces {flags:?}"))? {
            None => {
                berth_trace::set_process(berth_trace::Process::Init);
                drop(ours);
                init::run(InitContext {
                    id: id.as_str(),
                    bundle: &bundle,
                    chan: theirs,
                    start,
                    console,
                    no_pivot: opts.no_pivot,
                    joins,
                    // Born in a new user namespace, the init may not write
                    // the host's cgroup files: the runtime moves it then.
                    enter_cgroup: (!new_user_ns).then_some(&*cg),
                    new_user_ns,
                    new_mount_ns,
                    new_net_ns,
                    unshare_cgroup,
                    seccomp,
                    seccomp_listener,
                    idmap_userns,
                    preserve_fds: opts.listen_fds + opts.preserve_fds,
                    stdio,
                })
            }
            Some(pid) => {
                berth_trace::record("process", "clone3", clone_start, || {
                    format!("{flags:?} into the cgroup: init is pid {pid}")
                });
                cleanup.child = Some(pid);
                own_child_ns.restore()?;
                drop(theirs);
                drop(start);
                drop(console);
                if new_user_ns {
                    let _t = berth_trace::span("process", "write uid_map and gid_map")
                        .detail(|| format!("/proc/{pid}/uid_map, /proc/{pid}/gid_map"));
                    write_id_maps(pid, spec)?;
                    cg.add_task_v1(pid.as_raw())?;
                }
                if !crate::netdev::devices(spec).is_empty() {
                    crate::netdev::move_in(spec, pid.as_raw())?;
                    cleanup.net_devices = Some(spec.clone());
                }
                if let Some(adj) = process.oom_score_adj() {
                    std::fs::write(format!("/proc/{pid}/oom_score_adj"), adj.to_string()).map_err(
                        |e| crate::error::spec_err("process.oomScoreAdj", e.to_string()),
                    )?;
                }
                let wait = berth_trace::span("runtime", "wait for the init's mounts");
                ours.send(&Msg::Go)?;
                ours.expect(Msg::HooksPoint)?;
                wait.end();
                let mut state = ContainerState {
                    id: id.to_string(),
                    pid: pid.as_raw(),
                    pid_start: process_start(pid.as_raw()).map(|s| s.0).unwrap_or(0),
                    bundle: bundle.dir.clone(),
                    rootfs: bundle.rootfs.clone(),
                    created: now_rfc3339(),
                    started: false,
                    cgroups_path: cg_path,
                    cgroup_parents: cg_parents,
                    owner: String::new(),
                    spec: bundle.spec.clone(),
                    rootfs_bind,
                };
                // The environment is created (lifecycle step 2): the
                // runtime spec's "created", which the prestart hooks of
                // runtime-tools' validation expect too.
                let s = state.oci_state(Status::Created);
                let ctx = runtime_hook_context(&bundle.dir);
                hooks::run_hooks(HookKind::Prestart, spec.hooks().as_ref(), &s, ctx)?;
                hooks::run_hooks(HookKind::CreateRuntime, spec.hooks().as_ref(), &s, ctx)?;
                let wait = berth_trace::span("runtime", "wait for the init's pivot_root");
                ours.send(&Msg::Continue)?;
                ours.expect(Msg::Ready)?;
                wait.end();
                let console = match console_ours {
                    Some(s) => Some(tty::recv_fd(s.as_raw_fd())?),
                    None => None,
                };
                state.owner = "root".into();
                self.store.save(&state)?;
                if let Some(p) = &opts.pid_file {
                    write_pid_file(p, pid.as_raw())?;
                }
                cleanup.armed = false;
                Ok(Launched {
                    pid,
                    chan: ours,
                    state,
                    cgroup: cg,
                    console,
                })
            }
        }
    }

    pub fn create(&self, id: &str, opts: &CreateOptions) -> Result<()> {
        let id = ContainerId::new(id)?;
        crate::sealed::reexec_sealed()?;
        let bundle = Bundle::load(&opts.bundle)?;
        self.launch(&id, bundle, opts, Mode::Create, [None; 3])
            .map(drop)
    }

    pub fn start(&self, id: &str) -> Result<()> {
        let (id, mut st) = self.load(id)?;
        // runc's words for each status.
        match self.status(&st) {
            Status::Created => {}
            Status::Stopped => {
                return Err(RuntimeError::Other(
                    "cannot start a container that has stopped".into(),
                ))
            }
            Status::Running => {
                return Err(RuntimeError::Other(
                    "cannot start an already running container".into(),
                ))
            }
            s => {
                return Err(RuntimeError::Other(format!(
                    "cannot start a container in the {s} state"
                )))
            }
        }
        let sp = short_path(&self.store.dir(&id).join("start.sock"))?;
        let mut conn = UnixStream::connect(&sp.path)
            .context(|| "connect to the container's init".to_owned())?;
        let t = berth_trace::span("runtime", "start: the init's last steps and execve");
        conn.write_all(b"s").context(|| "signal start".to_owned())?;
        let mut reply = Vec::new();
        let _ = conn.read_to_end(&mut reply);
        t.end();
        if reply == init::PROCESS_ENDED {
            // Started, and already ending with its reason on its stderr:
            // answer once it is gone, so the container reads stopped.
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while st.init_alive() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
        } else if !reply.is_empty() {
            return Err(RuntimeError::Init(
                String::from_utf8_lossy(&reply).into_owned(),
            ));
        }
        st.started = true;
        self.store.save(&st)?;
        self.poststart(&id, &st)
    }

    /// Runs the poststart hooks of a container that has just started. One
    /// that fails stops the container, which is then destroyed (poststop
    /// hooks included) and the failure returned (runtime spec, lifecycle
    /// step 9; runc does the same).
    fn poststart(&self, id: &ContainerId, st: &ContainerState) -> Result<()> {
        let Err(e) = hooks::run_hooks(
            HookKind::Poststart,
            st.spec.hooks().as_ref(),
            &st.oci_state(Status::Running),
            runtime_hook_context(&st.bundle),
        ) else {
            return Ok(());
        };
        let cg = self.cgroup(st)?;
        if let Err(k) = self.kill_and_wait(st, &*cg) {
            eprintln!("berth-runtime: warning: {k}");
        }
        self.destroy(id, st, &*cg);
        Err(e)
    }

    /// `run`: create, start and (unless detached) wait, returning the
    /// container's exit code. The container gets the caller's stdio.
    pub fn run(&self, id: &str, opts: &CreateOptions, detach: bool) -> Result<i32> {
        self.run_with_stdio(id, opts, detach, Stdio::inherit())
    }

    /// [`run`](Self::run) with the stdio `stdio` gives the container; a
    /// foreground run relays its pipes while it waits.
    pub fn run_with_stdio(
        &self,
        id: &str,
        opts: &CreateOptions,
        detach: bool,
        stdio: Stdio,
    ) -> Result<i32> {
        self.run_spec_with_stdio(id, opts, None, detach, stdio)
    }

    /// [`run_with_stdio`](Self::run_with_stdio) with the bundle's spec as
    /// the caller in this process wrote it to config.json, if given (the
    /// engine's foreground run: ~0.25 ms of parsing less).
    pub fn run_spec_with_stdio(
        &self,
        id: &str,
        opts: &CreateOptions,
        spec: Option<Spec>,
        detach: bool,
        mut stdio: Stdio,
    ) -> Result<i32> {
        let cid = ContainerId::new(id)?;
        let bundle = match spec {
            Some(spec) => Bundle::from_spec(opts.bundle.clone(), spec)?,
            None => {
                let _t = berth_trace::span("runtime", "load config.json")
                    .detail(|| opts.bundle.join("config.json").display().to_string());
                Bundle::load(&opts.bundle)?
            }
        };
        // A foreground run whose init is born in a new pid namespace needs
        // no sealed copy: until it execs the user's program no process of
        // the container exists that could open its /proc/PID/exe (see
        // sealed.rs). Anything else (detached, or a shared pid namespace)
        // does.
        let new_pid_ns = bundle
            .linux()?
            .namespaces()
            .iter()
            .flatten()
            .any(|n| n.typ() == LinuxNamespaceType::Pid && n.path().is_none());
        if detach || !new_pid_ns {
            crate::sealed::reexec_sealed()?;
        }
        if detach {
            self.launch(&cid, bundle, opts, Mode::Create, stdio.child_fds())?;
            stdio.close_child();
            if let Err(e) = self.start(id) {
                let _ = self.delete(id, true);
                return Err(e);
            }
            return Ok(0);
        }
        let forwarded = forwarded_signals();
        forwarded
            .thread_block()
            .context(|| "block signals".to_owned())?;
        let mut l = self.launch(&cid, bundle, opts, Mode::Foreground, stdio.child_fds())?;
        stdio.close_child();
        let exec = berth_trace::span("runtime", "start: the init's last steps and execve");
        l.chan.send(&Msg::Start)?;
        match l.chan.recv()? {
            Msg::Closed => {
                exec.end();
                berth_trace::started();
            }
            Msg::Error(e) => {
                let _ = waitpid(l.pid, None);
                self.destroy(&cid, &l.state, &*l.cgroup);
                return Err(RuntimeError::Init(e));
            }
            m => {
                let _ = kill(l.pid, Signal::SIGKILL);
                let _ = waitpid(l.pid, None);
                self.destroy(&cid, &l.state, &*l.cgroup);
                return Err(RuntimeError::Init(format!("unexpected {m:?}")));
            }
        }
        let t = berth_trace::span("runtime", "record the state: running");
        l.state.started = true;
        self.store.save(&l.state)?;
        t.end();
        self.poststart(&cid, &l.state)?;
        let t = berth_trace::span("runtime", "relay stdio and signals until the init exits");
        let code = crate::wait::wait_forwarding(
            l.pid,
            &forwarded,
            l.console.as_ref().map(|c| c.as_fd()),
            &mut stdio,
        )?;
        t.end();
        self.destroy(&cid, &l.state, &*l.cgroup);
        Ok(code)
    }

    /// After the init is gone: poststop hooks, cgroup, state.
    fn destroy(&self, id: &ContainerId, st: &ContainerState, cg: &dyn CgroupManager) {
        // The init is gone, but without a pid namespace of its own its
        // children may live on in the cgroup: killed, as runc does (in a new
        // pid namespace the kernel killed them with the init).
        if !own_pid_namespace(&st.spec) {
            let _ = cg.kill_all(Signal::SIGKILL);
            let _ = cg.thaw();
        }
        let t = berth_trace::span("cgroup", "remove the cgroup directories");
        if let Err(e) = cg.destroy() {
            eprintln!("berth-runtime: warning: {e}");
        }
        t.end();
        if let Some(mnt) = st.rootfs_bind {
            crate::rootfs::unbind_in_place(&st.rootfs, mnt);
        }
        let t = berth_trace::span("runtime", "remove the state directory");
        if let Err(e) = self.store.remove(id) {
            eprintln!("berth-runtime: warning: {e}");
        }
        t.end();
        // After the container is gone (runtime spec, lifecycle step 13):
        // every poststop hook runs, a failing one is a warning.
        warn_all(hooks::run_poststop(
            st.spec.hooks().as_ref(),
            &st.oci_state(Status::Stopped),
            runtime_hook_context(&st.bundle),
        ));
    }

    pub fn state(&self, id: &str) -> Result<serde_json::Value> {
        let (_, st) = self.load(id)?;
        Ok(st.oci_state(self.status(&st)))
    }

    pub fn kill(&self, id: &str, signal: Signal, all: bool) -> Result<()> {
        self.signal(id, Some(signal), all)
    }

    /// `kill` as runc does it: `signal` (None: signal 0, which only checks)
    /// to the init of a created, running or paused container ("container
    /// not running" once it is gone), or with `all` to every process left in
    /// its cgroup, which succeeds whatever the status (containerd's shim
    /// runs `kill --all ID 9` after the init has exited).
    pub fn signal(&self, id: &str, signal: Option<Signal>, all: bool) -> Result<()> {
        let (_, st) = self.load(id)?;
        let status = self.status(&st);
        // Without a cgroup (rootless, nothing delegated) `--all` reaches
        // the processes of the init's pid namespace, or its descendants
        // when it shares ours (see rootless::container_pids).
        if all && Self::cgroupless(&st) {
            if status == Status::Stopped {
                return Ok(());
            }
            for pid in crate::rootless::container_pids(st.pid) {
                match kill(Pid::from_raw(pid), signal) {
                    Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
                    Err(e) => return Err(e).context(|| format!("kill {pid}")),
                }
            }
            return Ok(());
        }
        if all {
            let cg = self.cgroup(&st)?;
            if status == Status::Stopped && !cg.exists() {
                return Ok(());
            }
            match signal {
                Some(signal) => {
                    cg.kill_all(signal)?;
                    if status == Status::Paused && signal == Signal::SIGKILL {
                        cg.thaw()?;
                    }
                }
                None => {
                    for pid in cg.pids()? {
                        let _ = kill(Pid::from_raw(pid), None);
                    }
                }
            }
            return Ok(());
        }
        if status == Status::Stopped {
            return Err(RuntimeError::NotRunning);
        }
        match kill(Pid::from_raw(st.pid), signal) {
            Ok(()) => Ok(()),
            // Gone between the status check and the signal.
            Err(nix::errno::Errno::ESRCH) => Err(RuntimeError::NotRunning),
            Err(e) => Err(e).context(|| format!("kill {}", st.pid)),
        }
    }

    pub fn delete(&self, id: &str, force: bool) -> Result<()> {
        let cid = ContainerId::new(id)?;
        let st = match self.store.load(&cid) {
            Ok(st) => st,
            Err(RuntimeError::NotFound(n)) => {
                // As runc: a creation that died half way left only the
                // directory, which goes; the container does not exist
                // either way, which --force makes a success.
                self.store.remove(&cid)?;
                return if force {
                    Ok(())
                } else {
                    Err(RuntimeError::NotFound(n))
                };
            }
            Err(e) => return Err(e),
        };
        let status = self.status(&st);
        let cg = self.cgroup(&st)?;
        match status {
            Status::Stopped => {}
            Status::Created => self.kill_and_wait(&st, &*cg)?,
            _ if force => self.kill_and_wait(&st, &*cg)?,
            _ => {
                return Err(RuntimeError::Other(format!(
                    "cannot delete container {id} that is not stopped: {status}"
                )))
            }
        }
        self.destroy(&cid, &st, &*cg);
        Ok(())
    }

    fn kill_and_wait(&self, st: &ContainerState, cg: &dyn CgroupManager) -> Result<()> {
        // linux.netDevices stay where they are, as with runc: the network
        // namespace's owner controls their lifecycle (a joined namespace
        // keeps them; a namespace of the container's own gives physical
        // devices back to the host and takes virtual ones with it).
        let _ = kill(Pid::from_raw(st.pid), Signal::SIGKILL);
        let _ = cg.kill_all(Signal::SIGKILL);
        let _ = cg.thaw();
        let deadline = Instant::now() + Duration::from_secs(10);
        while st.init_alive() {
            // Our own child (a foreground run in this process) must be reaped.
            let _ = waitpid(Pid::from_raw(st.pid), Some(WaitPidFlag::WNOHANG));
            if Instant::now() > deadline {
                return Err(RuntimeError::Other(format!(
                    "container init {} did not die after SIGKILL",
                    st.pid
                )));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }

    /// Loads a container that must be in status `want`.
    fn load_in(&self, id: &str, want: Status, what: &'static str) -> Result<ContainerState> {
        let (id, st) = self.load(id)?;
        let status = self.status(&st);
        if status != want {
            return Err(RuntimeError::BadStatus {
                id: id.to_string(),
                status: status.to_string(),
                what,
            });
        }
        Ok(st)
    }

    pub fn pause(&self, id: &str) -> Result<()> {
        let st = self.load_in(
            id,
            Status::Running,
            "only a running container can be paused",
        )?;
        Ok(self.cgroup(&st)?.freeze()?)
    }

    pub fn resume(&self, id: &str) -> Result<()> {
        let st = self.load_in(id, Status::Paused, "only a paused container can be resumed")?;
        Ok(self.cgroup(&st)?.thaw()?)
    }

    pub fn pids(&self, id: &str) -> Result<Vec<i32>> {
        let (_, st) = self.load(id)?;
        if Self::cgroupless(&st) {
            if !st.init_alive() {
                return Ok(Vec::new());
            }
            return Ok(crate::rootless::container_pids(st.pid));
        }
        Ok(self.cgroup(&st)?.pids()?)
    }

    pub fn stats(&self, id: &str) -> Result<serde_json::Value> {
        let (_, st) = self.load(id)?;
        let stats = self.cgroup(&st)?.stats()?;
        Ok(serde_json::json!({"type": "stats", "id": st.id, "data": stats}))
    }

    pub fn update(&self, id: &str, resources: &oci_spec::runtime::LinuxResources) -> Result<()> {
        let (_, st) = self.load(id)?;
        Ok(self.cgroup(&st)?.apply(resources)?)
    }

    pub fn list(&self) -> Result<Vec<(ContainerState, Status)>> {
        let mut out = Vec::new();
        for id in self.store.list()? {
            if let Ok(st) = self.store.load(&id) {
                let s = self.status(&st);
                out.push((st, s));
            }
        }
        Ok(out)
    }

    /// Runs a new process inside a running container.
    pub fn exec(&self, id: &str, opts: &ExecOptions) -> Result<i32> {
        let (_, st) = self.load(id)?;
        crate::sealed::reexec_sealed()?;
        // runc's refusals, word for word.
        match self.status(&st) {
            Status::Stopped => {
                return Err(RuntimeError::Other(
                    "cannot exec in a stopped container".into(),
                ))
            }
            Status::Paused if !opts.ignore_paused => {
                return Err(RuntimeError::Other(
                    "cannot exec in a paused container (use --ignore-paused to override)".into(),
                ))
            }
            _ => {}
        }
        let affinity = ExecAffinity::parse(&opts.process)?;
        let linux = st.spec.linux().clone().unwrap_or_default();
        let terminal = opts.process.terminal().unwrap_or(false);
        let seccomp = match linux.seccomp() {
            Some(s) => Some(berth_seccomp::compile_cached(
                s,
                &self.store.seccomp_cache(),
            )?),
            None => None,
        };
        let seccomp_listener = connect_seccomp_listener(&linux, seccomp.as_ref())?;
        let mut joins = Vec::new();
        let mut in_user_ns = false;
        for ns in linux.namespaces().iter().flatten() {
            let t = ns.typ();
            let name = match t {
                LinuxNamespaceType::Mount => "mnt",
                LinuxNamespaceType::Network => "net",
                LinuxNamespaceType::Time => "time_for_children",
                LinuxNamespaceType::Pid => "pid",
                LinuxNamespaceType::User => "user",
                LinuxNamespaceType::Uts => "uts",
                LinuxNamespaceType::Ipc => "ipc",
                LinuxNamespaceType::Cgroup => "cgroup",
            };
            let theirs = PathBuf::from(format!("/proc/{}/ns/{name}", st.pid));
            let same = match (
                std::fs::metadata(&theirs),
                std::fs::metadata(format!("/proc/self/ns/{name}")),
            ) {
                (Ok(a), Ok(b)) => {
                    use std::os::unix::fs::MetadataExt;
                    a.ino() == b.ino() && a.dev() == b.dev()
                }
                _ => false,
            };
            if same {
                continue;
            }
            in_user_ns |= t == LinuxNamespaceType::User;
            let fd = open_ns(&theirs)?;
            if matches!(t, LinuxNamespaceType::Pid | LinuxNamespaceType::Time) {
                setns(fd, init::ns_flag(t)).context(|| format!("join {t} namespace"))?;
            } else {
                joins.push((t, fd));
            }
        }
        joins.sort_by_key(|(t, _)| join_order(*t));
        let cg = self.cgroup(&st)?;
        let forwarded = forwarded_signals();
        if !opts.detach {
            forwarded
                .thread_block()
                .context(|| "block signals".to_owned())?;
        }
        if terminal && opts.detach && opts.console_socket.is_none() {
            return Err(RuntimeError::Other(
                "--tty with --detach needs --console-socket".into(),
            ));
        }
        let (console, console_ours) = console_for(opts.console_socket.as_deref(), terminal)?;
        let (ours, theirs) = channel::pair()?;
        // execCPUAffinity.initial: where the process runs while it moves
        // into the container's cgroup (set on this thread for the clone to
        // inherit, then put back).
        let restore = affinity.enter_initial()?;
        let cloned = clone_in_cgroup(&*cg, CloneFlags::empty(), || "fork".to_owned());
        if let Some(prev) = restore {
            let _ = nix::sched::sched_setaffinity(Pid::from_raw(0), &prev);
        }
        match cloned? {
            None => {
                berth_trace::set_process(berth_trace::Process::Exec);
                drop(ours);
                let r = (|| -> Result<()> {
                    init::leave_callers_session(&[None; 3])?;
                    // Still in the host's user namespace: allowed to.
                    cg.enter_v1_self()?;
                    // In the cgroup now: execCPUAffinity.final.
                    affinity.apply_final()?;
                    theirs.expect(Msg::Go)?;
                    let listener = seccomp_listener.map(|conn| init::NotifyListener {
                        conn,
                        message: init::notify_message(
                            &st.spec,
                            &st.id,
                            &st.bundle,
                            init::host_pid(),
                            "running",
                        ),
                    });
                    let t = berth_trace::span("process", "setns").detail(|| {
                        let names: Vec<String> = joins.iter().map(|(t, _)| t.to_string()).collect();
                        names.join(", ")
                    });
                    init::join_namespaces(&joins)?;
                    t.end();
                    if let Some(c) = &console {
                        tty::setup_console(c.as_raw_fd(), &opts.process, false)?;
                    }
                    drop(console);
                    // The container's execution domain, as runc 1.2+'s
                    // setns init sets it (the init's is not inherited: this
                    // process comes from the runtime).
                    crate::procattr::apply_personality(&linux)?;
                    let program = crate::process::resolve_program(&opts.process)?;
                    let setgroups_ok = !in_user_ns || init::setgroups_allowed();
                    match init::finalize(
                        &opts.process,
                        seccomp.as_ref(),
                        listener.as_ref(),
                        setgroups_ok,
                        opts.preserve_fds,
                        &program,
                    )? {}
                })();
                match r {
                    Err(RuntimeError::ProcessEnded(msg)) => init::exit_with_message(&msg),
                    r => {
                        let msg = r.err().map(|e| e.to_string()).unwrap_or_default();
                        let _ = theirs.send(&Msg::Error(msg));
                        sys::exit_now(126)
                    }
                }
            }
            Some(pid) => {
                drop(theirs);
                drop(console);
                ours.send(&Msg::Go)?;
                let master = match console_ours {
                    Some(s) => match tty::recv_fd(s.as_raw_fd()) {
                        Ok(m) => Some(m),
                        Err(e) => {
                            let _ = waitpid(pid, None);
                            return Err(match ours.recv() {
                                Ok(Msg::Error(m)) => RuntimeError::Init(m),
                                _ => e,
                            });
                        }
                    },
                    None => None,
                };
                match ours.recv()? {
                    // The process runs its program (`--trace` marks it).
                    Msg::Closed => berth_trace::started(),
                    Msg::Error(e) => {
                        let _ = waitpid(pid, None);
                        return Err(RuntimeError::Init(e));
                    }
                    m => return Err(RuntimeError::Init(format!("unexpected {m:?}"))),
                }
                if let Some(p) = &opts.pid_file {
                    write_pid_file(p, pid.as_raw())?;
                }
                if opts.detach {
                    return Ok(0);
                }
                crate::wait::wait_forwarding(
                    pid,
                    &forwarded,
                    master.as_ref().map(|m| m.as_fd()),
                    &mut Stdio::inherit(),
                )
            }
        }
    }
}
