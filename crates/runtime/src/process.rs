//! Turning the prepared init (or an exec'd process) into the container's
//! program: limits, identity, capabilities, no_new_privs, seccomp, then exec.

use crate::error::{spec_err, Context, Result, RuntimeError};
use nix::sys::resource::{setrlimit, Resource};
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::{Capabilities, LinuxCapabilities, PosixRlimitType, Process};
use std::collections::HashSet;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What execve needs, resolved before the container is reported created, so
/// that a missing program fails `create` (as runc does) rather than `start`.
pub struct Program {
    pub path: CString,
    pub argv: Vec<CString>,
    pub env: Vec<CString>,
}

fn cstring(s: &str, field: &str) -> Result<CString> {
    CString::new(s).map_err(|_| spec_err(field, "contains a NUL byte"))
}

/// Resolves `args[0]` against PATH (from the process's env) as seen from the
/// current root, which is the container's by now.
pub fn resolve_program(p: &Process) -> Result<Program> {
    let args = p
        .args()
        .as_ref()
        .filter(|a| !a.is_empty())
        .ok_or_else(|| spec_err("process.args", "must name a program to run"))?;
    let env: Vec<String> = p.env().clone().unwrap_or_default();
    let path_var = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    let prog = &args[0];
    let found: PathBuf = if prog.contains('/') {
        PathBuf::from(prog)
    } else {
        path_var
            .split(':')
            .map(|d| Path::new(if d.is_empty() { "." } else { d }).join(prog))
            .find(|c| is_executable(c))
            .ok_or_else(|| {
                RuntimeError::Other(format!(
                    "exec: {prog:?}: executable file not found in $PATH"
                ))
            })?
    };
    match std::fs::metadata(&found) {
        Ok(m) if m.is_dir() => {
            return Err(RuntimeError::Other(format!(
                "exec: {}: is a directory",
                found.display()
            )))
        }
        // Not executable by anyone: runc's `exec.LookPath` refuses it at
        // create, with Go's words (the caller's 126 then comes with the
        // start's error, not after it).
        Ok(m) if std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 == 0 => {
            return Err(RuntimeError::Other(format!(
                "exec: {prog:?}: permission denied"
            )))
        }
        Ok(_) => {}
        Err(e) => {
            return Err(RuntimeError::Other(format!(
                "exec: {}: {e}",
                found.display()
            )))
        }
    }
    Ok(Program {
        path: CString::new(found.as_os_str().as_bytes())
            .map_err(|_| spec_err("process.args[0]", "contains a NUL byte"))?,
        argv: args
            .iter()
            .map(|a| cstring(a, "process.args"))
            .collect::<Result<_>>()?,
        env: with_home(env, p.user().uid())
            .iter()
            .map(|e| cstring(e, "process.env"))
            .collect::<Result<_>>()?,
    })
}

/// `env` with HOME set, as runc sets it when the process's environment
/// has none: the home of `uid` in the container's /etc/passwd (read from
/// the current root, the container's), else `/`.
fn with_home(mut env: Vec<String>, uid: u32) -> Vec<String> {
    if env.iter().any(|e| e.starts_with("HOME=")) {
        return env;
    }
    let home = std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|text| {
            text.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() >= 7 && f[2].parse::<u32>().ok() == Some(uid)).then(|| f[5].to_owned())
            })
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "/".to_owned());
    env.push(format!("HOME={home}"));
    env
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

fn resource(t: PosixRlimitType) -> Resource {
    match t {
        PosixRlimitType::RlimitCpu => Resource::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => Resource::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => Resource::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => Resource::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => Resource::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => Resource::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => Resource::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => Resource::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => Resource::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => Resource::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => Resource::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => Resource::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => Resource::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => Resource::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => Resource::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => Resource::RLIMIT_RTTIME,
    }
}

pub fn apply_rlimits(p: &Process) -> Result<()> {
    for r in p.rlimits().iter().flatten() {
        let res = resource(r.typ());
        if let Err(e) = setrlimit(res, r.soft(), r.hard()) {
            let (_, host_hard) = nix::sys::resource::getrlimit(res).unwrap_or((0, 0));
            let why = if e == nix::errno::Errno::EPERM && r.hard() > host_hard {
                format!(
                    "hard limit {} is above the host's {} and the runtime lacks CAP_SYS_RESOURCE",
                    r.hard(),
                    host_hard
                )
            } else {
                e.to_string()
            };
            return Err(spec_err(format!("process.rlimits[{}]", r.typ()), why));
        }
    }
    Ok(())
}

fn to_caps(set: &Option<Capabilities>) -> Result<HashSet<caps::Capability>> {
    set.iter()
        .flatten()
        .map(|c| {
            let name = format!("CAP_{c}");
            name.parse::<caps::Capability>()
                .map_err(|_| spec_err("process.capabilities", format!("unknown {name}")))
        })
        .collect()
}

/// The capability sets the kernel will refuse, found before the init
/// reports ready: runc 1.1's init applies them before `create` answers
/// ("unable to apply caps: operation not permitted"), so such a spec fails
/// `create`, not `start`. Checked again when they are set.
pub fn check_capabilities(c: Option<&LinuxCapabilities>) -> Result<()> {
    check_grantable(c)?;
    let Some(c) = c else {
        return Ok(());
    };
    // What stays in the bounding set once it is dropped to the spec's.
    let bounding = to_caps(c.bounding())?;
    for cap in to_caps(c.inheritable())? {
        let kept = bounding.contains(&cap)
            && caps::has_cap(None, caps::CapSet::Bounding, cap).unwrap_or(true);
        if !kept && !caps::has_cap(None, caps::CapSet::Inheritable, cap).unwrap_or(true) {
            return Err(not_inheritable(cap));
        }
    }
    Ok(())
}

/// capset's EPERM for an inheritable capability outside the bounding set
/// (and not inheritable already), naming it (runc's words do not).
fn not_inheritable(cap: caps::Capability) -> RuntimeError {
    spec_err(
        "process.capabilities.inheritable",
        format!("{cap} is not in the bounding set, so it cannot be inheritable: unable to apply caps: operation not permitted"),
    )
}

/// A bounding set can only shrink: a capability outside the runtime's own
/// (the host's) cannot be granted, and capset's bare EPERM would not say
/// which one.
fn check_grantable(c: Option<&LinuxCapabilities>) -> Result<()> {
    let empty = LinuxCapabilities::default();
    let spec = c.unwrap_or(&empty);
    for (name, field) in [
        ("permitted", spec.permitted()),
        ("effective", spec.effective()),
    ] {
        for cap in to_caps(field)? {
            if !caps::has_cap(None, caps::CapSet::Bounding, cap).unwrap_or(true) {
                return Err(spec_err(
                    format!("process.capabilities.{name}"),
                    format!("{cap} is not in the bounding set (the host lacks it): it cannot be granted"),
                ));
            }
        }
    }
    Ok(())
}

/// Drops the bounding set before the uid change (it needs CAP_SETPCAP).
pub fn drop_bounding(c: Option<&LinuxCapabilities>) -> Result<()> {
    check_grantable(c)?;
    // One in the spec's permitted set but outside its bounding set is set
    // (the permitted set is the runtime's own) and gone after the exec, as
    // with runc.
    let keep = match c {
        Some(c) => to_caps(c.bounding())?,
        None => HashSet::new(),
    };
    for cap in caps::all() {
        if !keep.contains(&cap) && caps::has_cap(None, caps::CapSet::Bounding, cap).unwrap_or(false)
        {
            caps::drop(None, caps::CapSet::Bounding, cap)
                .map_err(|e| RuntimeError::Other(format!("drop {cap} from bounding set: {e}")))?;
        }
    }
    Ok(())
}

/// Switches uid/gid/groups, keeping capabilities across the uid change so
/// that they can then be set exactly to the spec's.
pub fn switch_user(p: &Process, setgroups_allowed: bool) -> Result<()> {
    let user = p.user();
    nix::sys::prctl::set_keepcaps(true).context(|| "prctl(PR_SET_KEEPCAPS)".to_owned())?;
    if setgroups_allowed {
        let groups: Vec<Gid> = user
            .additional_gids()
            .iter()
            .flatten()
            .map(|g| Gid::from_raw(*g))
            .collect();
        nix::unistd::setgroups(&groups)
            .map_err(|e| spec_err("process.user.additionalGids", e.to_string()))?;
    }
    let gid = Gid::from_raw(user.gid());
    nix::unistd::setresgid(gid, gid, gid)
        .map_err(|e| spec_err("process.user.gid", format!("setgid {}: {e}", user.gid())))?;
    let uid = Uid::from_raw(user.uid());
    nix::unistd::setresuid(uid, uid, uid)
        .map_err(|e| spec_err("process.user.uid", format!("setuid {}: {e}", user.uid())))?;
    nix::sys::prctl::set_keepcaps(false).context(|| "prctl(PR_SET_KEEPCAPS)".to_owned())?;
    if let Some(mask) = user.umask() {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
    }
    Ok(())
}

pub fn set_capabilities(c: Option<&LinuxCapabilities>) -> Result<()> {
    // No capabilities in the spec: none at all (oci-spec's Default is
    // runc's default set, which a process without the field must not get).
    let mut empty = LinuxCapabilities::default();
    empty.set_bounding(None);
    empty.set_effective(None);
    empty.set_inheritable(None);
    empty.set_permitted(None);
    empty.set_ambient(None);
    let c = c.unwrap_or(&empty);
    let set = |which: caps::CapSet, field: &Option<Capabilities>, name: &str| -> Result<()> {
        let v = to_caps(field)?;
        caps::set(None, which, &v)
            .map_err(|e| spec_err(format!("process.capabilities.{name}"), e.to_string()))
    };
    // Order matters: every capset must leave effective within permitted,
    // so shrink inheritable and effective while permitted is still whole.
    // Ambient needs both permitted and inheritable.
    // The kernel keeps an inheritable capability only if it is in the
    // bounding set or already inheritable: say which one capset's EPERM
    // is about (runc fails there too, without naming it).
    for cap in to_caps(c.inheritable())? {
        if !caps::has_cap(None, caps::CapSet::Bounding, cap).unwrap_or(true)
            && !caps::has_cap(None, caps::CapSet::Inheritable, cap).unwrap_or(true)
        {
            return Err(not_inheritable(cap));
        }
    }
    set(caps::CapSet::Inheritable, c.inheritable(), "inheritable")?;
    set(caps::CapSet::Effective, c.effective(), "effective")?;
    set(caps::CapSet::Permitted, c.permitted(), "permitted")?;
    // The kernel only lets a capability be ambient if it is both permitted
    // and inheritable; runc's default spec lists ambient capabilities with
    // an empty inheritable set (since CVE-2022-29162), and runc skips those.
    let permitted = to_caps(c.permitted())?;
    let inheritable = to_caps(c.inheritable())?;
    let ambient: HashSet<caps::Capability> = to_caps(c.ambient())?
        .into_iter()
        .filter(|cap| permitted.contains(cap) && inheritable.contains(cap))
        .collect();
    caps::clear(None, caps::CapSet::Ambient)
        .map_err(|e| spec_err("process.capabilities.ambient", e.to_string()))?;
    for cap in ambient {
        caps::raise(None, caps::CapSet::Ambient, cap)
            .map_err(|e| spec_err("process.capabilities.ambient", format!("{cap}: {e}")))?;
    }
    Ok(())
}
