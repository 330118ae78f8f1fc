//! The container side: what the cloned child does between `clone` and
//! `execve` of the user's program. It runs in the runtime's own (single)
//! thread, born in its new namespaces, and reports every failure to the
//! runtime over its channel before exiting.

use crate::channel::{Channel, Msg};
use crate::error::{Context, Result, RuntimeError};
use crate::hooks::{HookContext, HookKind};
use crate::process::{self, Program};
use crate::rootfs::{self, RootfsSetup};
use crate::spec::Bundle;
use crate::sys;
use nix::sched::{setns, unshare, CloneFlags};
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::{LinuxNamespaceType, Process};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};

/// How `start` reaches a created container.
pub enum StartSignal {
    /// `create`: wait for a connection on the state dir's start socket.
    Socket(UnixListener),
    /// foreground `run`: wait for `Msg::Start` on the channel.
    Channel,
}

pub struct InitContext<'a> {
    pub id: &'a str,
    pub bundle: &'a Bundle,
    pub chan: Channel,
    pub start: StartSignal,
    pub console: Option<OwnedFd>,
    pub no_pivot: bool,
    /// Existing namespaces to join, in the order to join them.
    pub joins: Vec<(LinuxNamespaceType, OwnedFd)>,
    /// The cgroup to move ourselves into (v1 hierarchies) first thing; see
    /// `CgroupManager::enter_v1_self`.
    pub enter_cgroup: Option<&'a dyn berth_cgroups::CgroupManager>,
    pub new_user_ns: bool,
    pub new_mount_ns: bool,
    /// Born in a new network namespace: its `lo` is brought up.
    pub new_net_ns: bool,
    /// The cgroup namespace is unshared only once the runtime has moved us
    /// into the container's cgroup, so that it becomes the namespace's root.
    pub unshare_cgroup: bool,
    pub seccomp: Option<berth_seccomp::Filter>,
    /// The connection to `linux.seccomp.listenerPath`, when the filter has
    /// `SCMP_ACT_NOTIFY` rules (made by the runtime before the clone).
    pub seccomp_listener: Option<UnixStream>,
    /// User namespaces of the idmapped mounts (`rootfs::idmap_namespaces`).
    pub idmap_userns: Vec<(usize, OwnedFd)>,
    pub preserve_fds: u32,
    /// Descriptors to make the init's 0, 1 and 2 (see [`leave_callers_session`]).
    pub stdio: [Option<RawFd>; 3],
}

/// Runs the init; never returns.
pub fn run(mut ctx: InitContext) -> ! {
    match init(&mut ctx) {
        Ok(never) => match never {},
        Err(e) => {
            // In create mode the runtime may be gone by now: then the start
            // connection has carried the error instead.
            let _ = ctx.chan.send(&Msg::Error(e.to_string()));
            sys::exit_now(1)
        }
    }
}

pub fn ns_flag(t: LinuxNamespaceType) -> CloneFlags {
    match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

pub fn join_namespaces(joins: &[(LinuxNamespaceType, OwnedFd)]) -> Result<()> {
    for (t, fd) in joins {
        setns(fd, ns_flag(*t)).context(|| format!("join {t} namespace"))?;
    }
    Ok(())
}

/// The first thing a container process does (runc's init and exec do the
/// same): lead a session of its own, so that it has no controlling terminal
/// (the caller's stays the caller's: no signals from it, no /dev/tty, no
/// TIOCSTI into it), and take the stdio the caller prepared (`stdio[n]`
/// becomes descriptor n; None keeps what was inherited).
pub fn leave_callers_session(stdio: &[Option<RawFd>; 3]) -> Result<()> {
    nix::unistd::setsid().context(|| "setsid".to_owned())?;
    for (n, fd) in stdio.iter().enumerate() {
        if let Some(fd) = fd {
            nix::unistd::dup2(*fd, n as RawFd).context(|| format!("dup2 onto {n}"))?;
        }
    }
    Ok(())
}

/// A value that cannot exist: the result of a function that only returns on error.
pub enum Never {}

fn init(ctx: &mut InitContext) -> Result<Never> {
    let spec = &ctx.bundle.spec;
    let process = ctx.bundle.process()?;
    leave_callers_session(&ctx.stdio)?;
    if let Some(cg) = ctx.enter_cgroup {
        cg.enter_v1_self()?;
    }
    ctx.chan.expect(Msg::Go)?;
    if ctx.new_user_ns {
        // We are now mapped; become root of the new user namespace.
        nix::unistd::setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0))
            .context(|| "setgid 0 in user namespace".to_owned())?;
        nix::unistd::setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0))
            .context(|| "setuid 0 in user namespace".to_owned())?;
    }
    if !ctx.joins.is_empty() {
        let _t = berth_trace::span("process", "setns").detail(|| {
            let names: Vec<String> = ctx.joins.iter().map(|(t, _)| t.to_string()).collect();
            names.join(", ")
        });
        join_namespaces(&ctx.joins)?;
    }
    if ctx.unshare_cgroup {
        unshare(CloneFlags::CLONE_NEWCGROUP).context(|| "unshare cgroup namespace".to_owned())?;
    }
    if ctx.new_net_ns {
        let _t = berth_trace::span("network", "bring lo up (SIOCSIFFLAGS)");
        crate::sys::loopback_up().context(|| "bring up lo".to_owned())?;
    }
    // Rootless berth runs the runtime itself in a user namespace.
    let in_user_ns = ctx.new_user_ns
        || ctx
            .joins
            .iter()
            .any(|(t, _)| *t == LinuxNamespaceType::User)
        || crate::rootless::in_user_namespace();
    let hooks = spec.hooks().as_ref();
    let host_pid = host_pid();
    if ctx.new_mount_ns {
        let setup = RootfsSetup {
            spec,
            bundle_dir: &ctx.bundle.dir,
            rootfs: &ctx.bundle.rootfs,
            in_user_ns,
            idmap_userns: &ctx.idmap_userns,
            // A cgroup namespace joined by path is one as well: cgroupfs is
            // mounted (its root the namespace's), never the host's path bound.
            new_cgroup_ns: ctx.unshare_cgroup
                || ctx
                    .joins
                    .iter()
                    .any(|(t, _)| *t == LinuxNamespaceType::Cgroup),
        };
        let _t = berth_trace::span("mount", "rootfs mounts, in spec order")
            .detail(|| ctx.bundle.rootfs.display().to_string());
        setup.prepare()?;
    }
    ctx.chan.send(&Msg::HooksPoint)?;
    ctx.chan.expect(Msg::Continue)?;
    // The hooks run here are in the container's namespaces: the state's
    // pid is the one the container sees (runtime spec, "State"), and a hook
    // without env gets the container process's (as runc's).
    let state = hook_state(ctx.id, ctx.bundle, nix::unistd::getpid().as_raw());
    let process_env = process.env().as_deref().unwrap_or_default();
    crate::hooks::run_hooks(
        HookKind::CreateContainer,
        hooks,
        &state,
        HookContext {
            env: Some(process_env),
            cwd: Some(&ctx.bundle.rootfs),
        },
    )?;
    if ctx.new_mount_ns {
        let _t = berth_trace::span("mount", "pivot_root").detail(|| {
            format!(
                "pivot_root(\".\", \".\") in {}, old root detached",
                ctx.bundle.rootfs.display()
            )
        });
        rootfs::enter(&ctx.bundle.rootfs, ctx.no_pivot)?;
    } else {
        nix::unistd::chroot(&ctx.bundle.rootfs).context(|| "chroot".to_owned())?;
        nix::unistd::chdir("/").context(|| "chdir /".to_owned())?;
    }
    if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(h).context(|| format!("sethostname {h:?}"))?;
    }
    if let Some(d) = spec.domainname().as_deref().filter(|d| !d.is_empty()) {
        sys::setdomainname(d).context(|| format!("setdomainname {d:?}"))?;
    }
    // Sysctls go in while /proc/sys is still writable: the read-only paths
    // (which include it by default) come after.
    write_sysctls(ctx.bundle)?;
    if ctx.new_mount_ns {
        let _t = berth_trace::span("mount", "masked and read-only paths").detail(|| {
            let l = spec.linux().as_ref();
            format!(
                "{} masked, {} read-only",
                l.and_then(|l| l.masked_paths().as_ref())
                    .map_or(0, Vec::len),
                l.and_then(|l| l.readonly_paths().as_ref())
                    .map_or(0, Vec::len)
            )
        });
        rootfs::finish(spec)?;
    }
    let console = ctx.console.take();
    if process.terminal().unwrap_or(false) {
        let console = console.as_ref().ok_or_else(|| {
            RuntimeError::Other("process.terminal is set but no console socket was given".into())
        })?;
        crate::tty::setup_console(console.as_raw_fd(), process, true)?;
    }
    drop(console);
    let program = {
        let _t = berth_trace::span("process", "resolve the program in PATH");
        process::resolve_program(process)?
    };
    // Like a missing program, rlimits the kernel refuses must fail `create`
    // (as in runc), not a later `start`: apply them now (finalize applies
    // them again, which changes nothing).
    process::apply_rlimits(process)?;
    process::check_capabilities(process.capabilities().as_ref())?;
    if let Some(linux) = spec.linux() {
        crate::procattr::apply_personality(linux)?;
        crate::procattr::apply_memory_policy(linux)?;
    }
    // A filter whose descriptor goes to a listener is installed now, before
    // the create answers, so the listener has it while the container is
    // created (runc 1.1 does the same, with or without noNewPrivileges: its
    // init installs the filter before it closes its pipe to `create`).
    // What follows (the wait for start, startContainer hooks, the last
    // steps) then runs under it, as in runc. Without a listener the filter
    // is installed in the last steps (`finalize`).
    let mut seccomp = ctx.seccomp.as_ref();
    if let (Some(f), Some(conn)) = (seccomp, ctx.seccomp_listener.take()) {
        if process.no_new_privileges().unwrap_or(false) {
            nix::sys::prctl::set_no_new_privs()
                .context(|| "prctl(PR_SET_NO_NEW_PRIVS)".to_owned())?;
        }
        let listener = NotifyListener {
            conn,
            message: notify_message(spec, ctx.id, &ctx.bundle.dir, host_pid, "creating"),
        };
        berth_trace::instant(
            "process",
            "seccomp filter, descriptor to the listener",
            || {
                format!(
                    "{} BPF instructions; no trace past this point",
                    f.program.len()
                )
            },
        );
        // Even the trace's write(2) could be a notified call now.
        berth_trace::stop();
        install_seccomp(f, Some(&listener))?;
        seccomp = None;
    }
    ctx.chan.send(&Msg::Ready)?;
    // Wait for start.
    let mut conn = None;
    match &ctx.start {
        StartSignal::Channel => ctx.chan.expect(Msg::Start)?,
        StartSignal::Socket(l) => {
            // Created: `kill ID TERM` ends the container, as in runc.
            sys::die_on_terminating_signals().context(|| "signal handlers".to_owned())?;
            let (mut c, _) = l.accept().context(|| "wait for start".to_owned())?;
            let mut b = [0u8; 1];
            let _ = c.read(&mut b);
            conn = Some(c);
        }
    }
    // The program's environment (HOME added as for the program itself).
    let program_env: Vec<String> = program
        .env
        .iter()
        .map(|e| e.to_string_lossy().into_owned())
        .collect();
    // A failing startContainer hook ends the container as runc does
    // (runtime spec, lifecycle step 7): `start` has succeeded, the reason
    // goes to the container's stderr and it exits 1.
    let result = match crate::hooks::run_hooks(
        HookKind::StartContainer,
        hooks,
        &state,
        HookContext {
            env: Some(&program_env),
            cwd: None,
        },
    ) {
        Err(e) => Err(RuntimeError::ProcessEnded(e.to_string())),
        Ok(()) => finalize(
            process,
            seccomp,
            None,
            !in_user_ns || setgroups_allowed(),
            ctx.preserve_fds,
            &program,
        ),
    };
    match result {
        Ok(never) => match never {},
        Err(RuntimeError::ProcessEnded(msg)) => {
            // `start` waits for this process to be gone before it answers,
            // so that a `delete` right after `start` (the conformance
            // suites' sequence) finds the container stopped.
            if let Some(mut c) = conn {
                let _ = c.write_all(PROCESS_ENDED);
            }
            exit_with_message(&msg)
        }
        Err(e) => {
            if let Some(mut c) = conn {
                let _ = c.write_all(e.to_string().as_bytes());
            }
            Err(e)
        }
    }
}

/// What the init answers on the start connection when its process ends
/// instead of becoming the program ([`RuntimeError::ProcessEnded`]); an
/// error text never starts with a NUL.
pub const PROCESS_ENDED: &[u8] = b"\0process ended";

/// Whether setgroups(2) is allowed in our user namespace (it is denied
/// when the namespace's creator wrote "deny" to /proc/PID/setgroups).
pub fn setgroups_allowed() -> bool {
    std::fs::read_to_string("/proc/self/setgroups")
        .map(|s| s.trim() == "allow")
        .unwrap_or(true)
}

/// The state the createContainer and startContainer hooks read: the
/// container is created (the environment is made; runtime spec, "State").
fn hook_state(id: &str, b: &Bundle, pid: i32) -> serde_json::Value {
    let mut v = serde_json::json!({
        "ociVersion": "1.2.0",
        "id": id,
        "status": "created",
        "pid": pid,
        "bundle": b.dir,
    });
    if let Some(a) = b.spec.annotations() {
        v["annotations"] = serde_json::json!(a);
    }
    v
}

fn write_sysctls(b: &Bundle) -> Result<()> {
    for (k, v) in b
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.sysctl().as_ref())
        .into_iter()
        .flatten()
    {
        let path = format!("/proc/sys/{}", k.replace('.', "/"));
        std::fs::write(&path, v)
            .map_err(|e| crate::error::spec_err(format!("linux.sysctl.{k}"), e.to_string()))?;
    }
    Ok(())
}

/// Where a seccomp filter's notification descriptor goes: the connection to
/// the listener socket and the message runc sends with the descriptor.
pub struct NotifyListener {
    pub conn: UnixStream,
    pub message: Vec<u8>,
}

/// runc's message to a seccomp listener (runtime-spec "container process
/// state"): the descriptor's name, the process's host pid, the
/// `listenerMetadata` and the container's state. The init's state says
/// "creating" and an exec's "running", as runc's do.
pub fn notify_message(
    spec: &oci_spec::runtime::Spec,
    id: &str,
    bundle: &std::path::Path,
    pid: i32,
    status: &str,
) -> Vec<u8> {
    let metadata = spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
        .and_then(|s| s.listener_metadata().clone())
        .unwrap_or_default();
    let mut state = serde_json::json!({
        "ociVersion": "1.2.0",
        "id": id,
        "status": status,
        "pid": pid,
        "bundle": bundle,
    });
    if let Some(a) = spec.annotations() {
        state["annotations"] = serde_json::json!(a);
    }
    let v = serde_json::json!({
        "ociVersion": "1.2.0",
        "fds": ["seccompFd"],
        "pid": pid,
        "metadata": metadata,
        "state": state,
    });
    serde_json::to_vec(&v).unwrap_or_default()
}

/// Installs `f`; a notification descriptor goes to the listener.
fn install_seccomp(f: &berth_seccomp::Filter, listener: Option<&NotifyListener>) -> Result<()> {
    let Some(fd) = f.install_listener()? else {
        return Ok(());
    };
    let Some(l) = listener else {
        return Ok(());
    };
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let fds = [fd.as_raw_fd()];
    let iov = [std::io::IoSlice::new(&l.message)];
    sendmsg::<()>(
        l.conn.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(|e| {
        crate::error::spec_err(
            "linux.seccomp.listenerPath",
            format!("send the notification descriptor: {e}"),
        )
    })?;
    Ok(())
}

/// This process's pid as the host's procfs shows it (before the pivot).
pub fn host_pid() -> i32 {
    std::fs::read_link("/proc/self")
        .ok()
        .and_then(|p| p.to_str()?.parse::<i32>().ok())
        .unwrap_or(0)
}

/// The last steps, shared by the init and `exec`: limits, identity,
/// signal dispositions and mask, limits, identity, capabilities,
/// no_new_privs, seccomp, descriptors, exec.
pub fn finalize(
    process: &Process,
    seccomp: Option<&berth_seccomp::Filter>,
    listener: Option<&NotifyListener>,
    setgroups_allowed: bool,
    preserve_fds: u32,
    program: &Program,
) -> Result<Never> {
    // Default dispositions and an empty mask first: nothing the runtime
    // ignores or blocks (SIGPIPE, the signals it forwards) reaches the
    // program, and a seccomp profile cannot stop the reset.
    let t = berth_trace::span("process", "signals to SIG_DFL, empty mask");
    sys::reset_signals().context(|| "reset signal dispositions and mask".to_owned())?;
    t.end();
    let t = berth_trace::span("process", "setrlimit").detail(|| {
        let names: Vec<String> = process
            .rlimits()
            .iter()
            .flatten()
            .map(|r| format!("{:?}={}:{}", r.typ(), r.soft(), r.hard()))
            .collect();
        names.join(" ")
    });
    process::apply_rlimits(process)?;
    t.end();
    crate::procattr::apply_io_priority(process)?;
    crate::procattr::apply_scheduler(process)?;
    let caps = process.capabilities().as_ref();
    let t = berth_trace::span("process", "drop the bounding set").detail(|| {
        format!(
            "{} kept",
            caps.and_then(|c| c.bounding().as_ref())
                .map_or(0, |b| b.len())
        )
    });
    process::drop_bounding(caps)?;
    t.end();
    let t = berth_trace::span("process", "setgroups, setgid, setuid").detail(|| {
        let u = process.user();
        format!("uid {} gid {}", u.uid(), u.gid())
    });
    process::switch_user(process, setgroups_allowed)?;
    t.end();
    let cwd = process.cwd();
    nix::unistd::chdir(cwd)
        .map_err(|e| crate::error::spec_err("process.cwd", format!("{}: {e}", cwd.display())))?;
    // A cwd through a descriptor leaked into the runtime (/proc/self/fd/N)
    // can land outside the container's root (CVE-2024-21626): the kernel
    // then reports the cwd as unreachable, which getcwd turns into ENOENT.
    if !nix::unistd::getcwd().is_ok_and(|p| p.is_absolute()) {
        return Err(crate::error::spec_err(
            "process.cwd",
            format!("{}: outside the container's root", cwd.display()),
        ));
    }
    let nnp = process.no_new_privileges().unwrap_or(false);
    // The last steps are announced before they happen: once the seccomp
    // filter is in, even a write(2) of the trace could be what it forbids.
    if berth_trace::enabled() {
        let filter = || {
            berth_trace::instant("process", "seccomp filter", || {
                format!(
                    "{} BPF instructions",
                    seccomp.map_or(0, |f| f.program.len())
                )
            })
        };
        let capabilities = || {
            berth_trace::instant("process", "capabilities", || {
                format!(
                    "{} effective",
                    caps.and_then(|c| c.effective().as_ref())
                        .map_or(0, |e| e.len())
                )
            })
        };
        if nnp {
            berth_trace::instant("process", "no_new_privs", String::new);
            capabilities();
            if seccomp.is_some() {
                filter();
            }
        } else {
            if seccomp.is_some() {
                filter();
            }
            capabilities();
        }
        berth_trace::instant("process", "execve", || {
            format!("{} {:?}", program.path.to_string_lossy(), program.argv)
        });
    }
    if nnp {
        nix::sys::prctl::set_no_new_privs().context(|| "prctl(PR_SET_NO_NEW_PRIVS)".to_owned())?;
    }
    // Without no_new_privs, installing a filter needs CAP_SYS_ADMIN: install
    // it while we still have it. With it, install as late as possible so the
    // filter need not allow the runtime's own setup calls.
    if let (Some(f), false) = (seccomp, nnp) {
        // switch_user kept the permitted set, but a uid change away from 0
        // empties the effective set: raise CAP_SYS_ADMIN back for the
        // filter (set_capabilities below sets the spec's sets exactly).
        if !nix::unistd::geteuid().is_root() {
            let _ = ::caps::raise(
                None,
                ::caps::CapSet::Effective,
                ::caps::Capability::CAP_SYS_ADMIN,
            );
        }
        install_seccomp(f, listener)?;
    }
    process::set_capabilities(caps)?;
    if let (Some(f), true) = (seccomp, nnp) {
        install_seccomp(f, listener)?;
    }
    sys::cloexec_from(3 + preserve_fds).context(|| "close inherited descriptors".to_owned())?;
    let e = nix::unistd::execve(&program.path, &program.argv, &program.env)
        .err()
        .unwrap_or(nix::errno::Errno::UnknownErrno);
    // The program was found and may be executed (checked at create), but
    // the kernel refused it (a bad format, a missing interpreter): as in
    // runc, the process itself says so on its stderr and exits 1, and the
    // start or exec that launched it has succeeded (Docker shows the line
    // in the logs and the exit code 1).
    Err(RuntimeError::ProcessEnded(format!(
        "exec {}: {}",
        program.path.to_string_lossy(),
        go_errno_text(e)
    )))
}

/// The wording of Go's syscall errors (runc's): strerror with a lower-case
/// first letter ("exec format error").
fn go_errno_text(e: nix::errno::Errno) -> String {
    let desc = e.desc();
    let mut chars = desc.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => e.to_string(),
    }
}

/// Ends a started process that could not become its program: the reason on
/// its own stderr (the container's), exit status 1.
pub fn exit_with_message(msg: &str) -> ! {
    let _ = nix::unistd::write(std::io::stderr(), format!("{msg}\n").as_bytes());
    sys::exit_now(1)
}
