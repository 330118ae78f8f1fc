//! Rootless berth: one user namespace (with a mount namespace it owns) per
//! user, mapped from /etc/subuid and /etc/subgid through newuidmap and
//! newgidmap, kept alive by a pause process and joined by every later
//! command, as podman's pause process keeps its namespace.
//!
//! The caller (berth's command line, first thing in `main`) must be
//! single-threaded: the kernel refuses `setns` into a user namespace
//! otherwise.

use nix::sched::{setns, CloneFlags};
use nix::unistd::{Gid, Pid, Uid};
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The argument that makes `berth` the pause process (see [`pause_forever`]).
pub const PAUSE_ARG: &str = "__berth_pause";

/// The pause process's pid, in the user's volatile directory.
pub const PAUSE_PID_FILE: &str = "pause.pid";

/// The other run directories (`--runroot`, `--root`'s `run`) the user's
/// commands used, one absolute path a line, in the user's volatile
/// directory: a new namespace ends the stale network processes of each.
pub const RUN_DIRS_FILE: &str = "run-dirs";

#[derive(Debug, thiserror::Error)]
pub enum RootlessError {
    #[error("cannot find mappings for user {user}: no {kind} ranges found for user {user:?} in {file} (add one: usermod --add-{kind}s START-END {user})")]
    NoRange {
        user: String,
        kind: &'static str,
        file: &'static str,
    },
    #[error("rootless: {0} not found in $PATH (install the uidmap package)")]
    HelperMissing(&'static str),
    #[error("rootless: {helper} failed: {msg}")]
    Helper { helper: &'static str, msg: String },
    #[error("rootless: {context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    #[error("rootless: {0}")]
    Other(String),
}

type Result<T> = std::result::Result<T, RootlessError>;

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> RootlessError {
    let context = context.into();
    move |source| RootlessError::Io { context, source }
}

fn nix_err(context: impl Into<String>) -> impl FnOnce(nix::errno::Errno) -> RootlessError {
    let context = context.into();
    move |e| RootlessError::Io {
        context,
        source: e.into(),
    }
}

/// One line of a uid_map or gid_map: `inside` … `inside+count` of the
/// namespace are `outside` … of its parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    pub inside: u32,
    pub outside: u32,
    pub count: u32,
}

/// Whether this process runs in a user namespace other than the initial one
/// (whose uid_map is the identity of all 2^32-1 ids). Read once: berth
/// enters its namespace before anything asks.
pub fn in_user_namespace() -> bool {
    static IN_USERNS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *IN_USERNS.get_or_init(|| match read_map("/proc/self/uid_map") {
        Ok(m) => {
            m != [IdRange {
                inside: 0,
                outside: 0,
                count: u32::MAX,
            }]
        }
        Err(_) => false,
    })
}

/// This process's uid and gid maps (`/proc/self/{uid,gid}_map`).
pub fn current_mapping() -> io::Result<(Vec<IdRange>, Vec<IdRange>)> {
    Ok((
        read_map("/proc/self/uid_map")?,
        read_map("/proc/self/gid_map")?,
    ))
}

fn read_map(path: &str) -> io::Result<Vec<IdRange>> {
    let text = std::fs::read_to_string(path)?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace().map(|w| w.parse::<u32>());
            match (w.next(), w.next(), w.next()) {
                (Some(Ok(inside)), Some(Ok(outside)), Some(Ok(count))) => Some(IdRange {
                    inside,
                    outside,
                    count,
                }),
                _ => None,
            }
        })
        .collect())
}

/// The subordinate ranges (start, count) of `/etc/subuid`-style `text` for
/// the user `name` or `id`.
pub fn parse_subids(text: &str, name: &str, id: u32) -> Vec<(u32, u32)> {
    let id = id.to_string();
    text.lines()
        .filter_map(|l| {
            let mut f = l.trim().split(':');
            let (who, start, count) = (f.next()?, f.next()?, f.next()?);
            if who != name && who != id {
                return None;
            }
            let start = start.trim().parse::<u32>().ok()?;
            let count = count.trim().parse::<u32>().ok()?;
            (count > 0).then_some((start, count))
        })
        .collect()
}

/// The map berth writes: the user's own id as 0, then the subordinate
/// ranges from 1 on.
fn mapping(own: u32, sub: &[(u32, u32)]) -> Vec<IdRange> {
    let mut v = vec![IdRange {
        inside: 0,
        outside: own,
        count: 1,
    }];
    let mut next = 1u32;
    for &(start, count) in sub {
        v.push(IdRange {
            inside: next,
            outside: start,
            count,
        });
        next = next.saturating_add(count);
    }
    v
}

/// The per-user volatile directory of a rootless berth: `$XDG_RUNTIME_DIR/berth`,
/// or `/tmp/berth-UID` without it.
pub fn default_run_dir(uid: u32) -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d).join("berth"),
        None => PathBuf::from(format!("/tmp/berth-{uid}")),
    }
}

/// The per-user state directory: `$XDG_DATA_HOME/berth`, by default
/// `~/.local/share/berth` (HOME, else the passwd entry's home).
pub fn default_data_dir(uid: u32) -> Result<PathBuf> {
    if let Some(d) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(d).join("berth"));
    }
    let home = match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        Some(h) => PathBuf::from(h),
        None => nix::unistd::User::from_uid(Uid::from_raw(uid))
            .ok()
            .flatten()
            .map(|u| u.dir)
            .ok_or_else(|| RootlessError::Other("HOME is not set and user has no home".into()))?,
    };
    Ok(home.join(".local/share/berth"))
}

/// Makes `dir` (0700, ours) if need be; refuses one another user owns or
/// others can enter (a squatted `/tmp/berth-UID`).
pub fn user_private_dir(dir: &Path) -> Result<()> {
    let uid = Uid::current().as_raw();
    match std::fs::symlink_metadata(dir) {
        Ok(m) => {
            if !m.is_dir() || m.uid() != uid {
                return Err(RootlessError::Other(format!(
                    "{} is not a directory owned by uid {uid}",
                    dir.display()
                )));
            }
            if m.mode() & 0o077 != 0 {
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                    .map_err(io_err(format!("chmod {}", dir.display())))?;
            }
            Ok(())
        }
        Err(_) => {
            if let Some(p) = dir.parent() {
                std::fs::create_dir_all(p).map_err(io_err(format!("create {}", p.display())))?;
            }
            match std::fs::DirBuilder::new().mode(0o700).create(dir) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => user_private_dir(dir),
                Err(e) => Err(io_err(format!("create {}", dir.display()))(e)),
            }
        }
    }
}

/// Finds `name` on $PATH.
fn on_path(name: &'static str) -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| {
            std::fs::metadata(p)
                .map(|m| m.is_file() && m.mode() & 0o111 != 0)
                .unwrap_or(false)
        })
        .ok_or(RootlessError::HelperMissing(name))
}

/// Whether `pid` is a live pause process of this user (its command line
/// says so and it runs as this uid).
fn is_pause(pid: i32) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let mut words = cmdline.split(|b| *b == 0);
    let _exe = words.next();
    if words.next() != Some(PAUSE_ARG.as_bytes()) {
        return false;
    }
    std::fs::metadata(format!("/proc/{pid}"))
        .map(|m| m.uid() == Uid::current().as_raw())
        .unwrap_or(false)
}

/// Reads the pause pid recorded in `run_dir`, if that process is alive.
pub fn live_pause(run_dir: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(run_dir.join(PAUSE_PID_FILE)).ok()?;
    let pid = text.trim().parse::<i32>().ok()?;
    is_pause(pid).then_some(pid)
}

/// Puts this process (single-threaded, not root) into the user's namespace:
/// joins the pause process recorded in `run_dir`, or makes a new one when
/// there is none or it is gone. Afterwards the process is uid 0 of that
/// namespace, in its mount namespace, in the directory it was in.
/// `state_run` is the command's run directory (`--runroot`, `--root`'s
/// `run`, else `run_dir`): a new namespace ends the stale network processes
/// recorded there too.
pub fn enter(run_dir: &Path, state_run: &Path) -> Result<()> {
    user_private_dir(run_dir)?;
    // One maker at a time: a second command waits, then joins.
    let lock_path = run_dir.join("pause.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&lock_path)
        .map_err(io_err(format!("open {}", lock_path.display())))?;
    let lock = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| nix_err(format!("lock {}", lock_path.display()))(e))?;
    if state_run != run_dir {
        remember_run_dir(run_dir, state_run)?;
    }
    if let Some(pid) = live_pause(run_dir) {
        drop(lock);
        return join(pid);
    }
    // The pause process is gone but containers still run in its namespace
    // (their monitors hold it): join that one, as podman joins a conmon's,
    // and give it a new pause process, so that they stay reachable.
    if let Some(pid) = orphaned_namespace() {
        join(pid)?;
        let exe = std::fs::read_link("/proc/self/exe").map_err(io_err("read /proc/self/exe"))?;
        let child = pause_command(&exe, false)
            .spawn()
            .map_err(io_err(format!("start the pause process {}", exe.display())))?;
        let pid = child.id() as i32;
        drop(child);
        return record_pause(run_dir, pid);
    }
    // Every run directory the user's commands used (the last namespace's
    // network may be under any of them), those since removed forgotten.
    end_stale_network(run_dir);
    let others = std::fs::read_to_string(run_dir.join(RUN_DIRS_FILE)).unwrap_or_default();
    let mut kept = String::new();
    for dir in others.lines().map(Path::new) {
        if dir.is_dir() {
            end_stale_network(dir);
            kept.push_str(&format!("{}\n", dir.display()));
        }
    }
    if kept != others {
        write_run_dirs(run_dir, &kept)?;
    }
    let pid = make_pause(run_dir)?;
    drop(lock);
    join(pid)
}

/// Adds `state_run` to the run directories recorded in `run_dir` (see
/// [`RUN_DIRS_FILE`]) when it is not there yet; under the pause lock.
fn remember_run_dir(run_dir: &Path, state_run: &Path) -> Result<()> {
    let file = run_dir.join(RUN_DIRS_FILE);
    let known = std::fs::read_to_string(&file).unwrap_or_default();
    if known.lines().any(|l| Path::new(l) == state_run) {
        return Ok(());
    }
    write_run_dirs(run_dir, &format!("{known}{}\n", state_run.display()))
}

fn write_run_dirs(run_dir: &Path, text: &str) -> Result<()> {
    let file = run_dir.join(RUN_DIRS_FILE);
    let tmp = run_dir.join(format!("{RUN_DIRS_FILE}.tmp"));
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, &file))
        .map_err(io_err(format!("write {}", file.display())))
}

/// The network processes of a user namespace now gone (its pause process
/// dead, no monitor left in it), recorded under `run_dir`: the pasta of its
/// rootless network namespace (`berth_network::rootless_netns`, which it
/// holds), its berth-dns, and each container's pasta, port forwarder or
/// slirp4netns (`RUN/pasta/*.pid`), which hold the namespace too while the
/// container's namespace file stays. Each is ended by its recorded pid, only
/// when that process is this user's and its command line names the file
/// (the namespace, or the pid file) or the program it should.
fn end_stale_network(run_dir: &Path) {
    let netns = run_dir.join("rootless-netns").join("net");
    let mut stale = vec![
        (
            run_dir.join("rootless-netns").join("pasta.pid"),
            vec![netns.into_os_string()],
        ),
        (
            run_dir.join("dns").join("dns.pid"),
            vec![std::ffi::OsString::from("berth-dns")],
        ),
    ];
    // RUN/pasta/ID.pid: pasta names it (`--pid`), slirp4netns the
    // container's namespace file RUN/netns/ID.
    if let Ok(entries) = std::fs::read_dir(run_dir.join("pasta")) {
        for e in entries.flatten() {
            let p = e.path();
            let Some(id) = p
                .file_stem()
                .filter(|_| p.extension().is_some_and(|x| x == "pid"))
            else {
                continue;
            };
            let ns = run_dir.join("netns").join(id);
            stale.push((p.clone(), vec![p.into_os_string(), ns.into_os_string()]));
        }
    }
    for (pidfile, marks) in stale {
        let Some(pid) = std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|t| t.trim().parse::<i32>().ok())
            .filter(|p| *p > 0)
        else {
            continue;
        };
        let ours = std::fs::metadata(format!("/proc/{pid}"))
            .is_ok_and(|m| m.uid() == Uid::current().as_raw());
        let named = std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
            c.split(|b| *b == 0).any(|w| {
                marks
                    .iter()
                    .map(|m| m.as_encoded_bytes())
                    .any(|want| w == want || w.rsplit(|b| *b == b'/').next() == Some(want))
            })
        });
        if ours && named {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
        let _ = std::fs::remove_file(&pidfile);
    }
}

/// A monitor of this user's (`berth-monitor`, running as this uid) in a
/// user namespace other than ours: the namespace of a pause process that
/// died.
fn orphaned_namespace() -> Option<i32> {
    let uid = Uid::current().as_raw();
    let ours = std::fs::read_link("/proc/self/ns/user").ok()?;
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid = e.file_name().to_str()?.parse::<i32>().ok()?;
        if e.metadata().ok()?.uid() != uid {
            return None;
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let argv0 = cmdline.split(|b| *b == 0).next()?;
        let name = argv0.rsplit(|b| *b == b'/').next()?;
        if name != b"berth-monitor" {
            return None;
        }
        let ns = std::fs::read_link(format!("/proc/{pid}/ns/user")).ok()?;
        (ns != ours).then_some(pid)
    })
}

/// `berth __berth_pause`, in a session of its own; with `unshare`, in new
/// user and mount namespaces too.
fn pause_command(exe: &Path, unshare: bool) -> Command {
    let mut cmd = Command::new(exe);
    cmd.arg0("berth")
        .arg(PAUSE_ARG)
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    crate::sys::pause_on_spawn(&mut cmd, unshare);
    cmd
}

/// Writes `pid` into `run_dir/pause.pid` (atomically).
fn record_pause(run_dir: &Path, pid: i32) -> Result<()> {
    let file = run_dir.join(PAUSE_PID_FILE);
    let tmp = run_dir.join(format!(".{PAUSE_PID_FILE}.{}", std::process::id()));
    let written = (|| -> io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&tmp)?;
        writeln!(f, "{pid}")?;
        std::fs::rename(&tmp, &file)
    })();
    written.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io_err(format!("write {}", file.display()))(e)
    })
}

/// Starts a new pause process in a new user and mount namespace, maps it
/// and records its pid.
fn make_pause(run_dir: &Path) -> Result<i32> {
    let uid = Uid::current().as_raw();
    let gid = Gid::current().as_raw();
    let name = nix::unistd::User::from_uid(Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| uid.to_string());
    let read = |f: &str| std::fs::read_to_string(f).unwrap_or_default();
    let subuids = parse_subids(&read("/etc/subuid"), &name, uid);
    if subuids.is_empty() {
        return Err(RootlessError::NoRange {
            user: name,
            kind: "subuid",
            file: "/etc/subuid",
        });
    }
    let subgids = parse_subids(&read("/etc/subgid"), &name, uid);
    if subgids.is_empty() {
        return Err(RootlessError::NoRange {
            user: name,
            kind: "subgid",
            file: "/etc/subgid",
        });
    }
    let newuidmap = on_path("newuidmap")?;
    let newgidmap = on_path("newgidmap")?;
    let exe = std::fs::read_link("/proc/self/exe").map_err(io_err("read /proc/self/exe"))?;
    let mut child = pause_command(&exe, true)
        .spawn()
        .map_err(io_err(format!("start the pause process {}", exe.display())))?;
    let pid = child.id() as i32;
    let fail = |child: &mut std::process::Child, e: RootlessError| {
        let _ = child.kill();
        let _ = child.wait();
        e
    };
    // The child unshared before its exec, which spawn waited for.
    for (helper, path, own, sub) in [
        ("newuidmap", &newuidmap, uid, &subuids),
        ("newgidmap", &newgidmap, gid, &subgids),
    ] {
        let mut c = Command::new(path);
        c.arg(pid.to_string());
        for r in mapping(own, sub) {
            c.args([
                r.inside.to_string(),
                r.outside.to_string(),
                r.count.to_string(),
            ]);
        }
        let out = match c.stdin(Stdio::null()).output() {
            Ok(o) => o,
            Err(e) => return Err(fail(&mut child, io_err(format!("run {helper}"))(e))),
        };
        if !out.status.success() {
            let msg = String::from_utf8_lossy(&out.stderr);
            let msg = msg.trim().lines().last().unwrap_or("").to_owned();
            let msg = if msg.is_empty() {
                out.status.to_string()
            } else {
                msg
            };
            return Err(fail(&mut child, RootlessError::Helper { helper, msg }));
        }
    }
    if let Err(e) = record_pause(run_dir, pid) {
        return Err(fail(&mut child, e));
    }
    // Nobody waits for it: it outlives this command.
    drop(child);
    Ok(pid)
}

use std::os::unix::process::CommandExt;

/// Joins the user and mount namespaces of `pid`, keeping the working
/// directory (setns into a mount namespace moves it to that root).
fn join(pid: i32) -> Result<()> {
    let cwd = std::env::current_dir().ok();
    let open = |ns: &str| {
        let p = format!("/proc/{pid}/ns/{ns}");
        File::open(&p).map_err(io_err(format!("open {p}")))
    };
    let user = open("user")?;
    let mnt = open("mnt")?;
    setns(&user, CloneFlags::CLONE_NEWUSER).map_err(nix_err("join the user namespace"))?;
    setns(&mnt, CloneFlags::CLONE_NEWNS).map_err(nix_err("join the mount namespace"))?;
    // Our own id is 0 in the namespace; supplementary groups are unmapped
    // there (nobody), so none are kept.
    let _ = nix::unistd::setgroups(&[]);
    nix::unistd::setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0))
        .map_err(nix_err("setgid 0 in the user namespace"))?;
    nix::unistd::setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0))
        .map_err(nix_err("setuid 0 in the user namespace"))?;
    if let Some(d) = cwd {
        let _ = std::env::set_current_dir(d);
    }
    Ok(())
}

/// The pause process: holds the namespaces until killed.
pub fn pause_forever() -> ! {
    let _ = std::env::set_current_dir("/");
    loop {
        nix::unistd::pause();
    }
}

/// The processes of a container whose init is `init`, where no cgroup
/// lists them (rootless): those of the init's pid namespace when it has one
/// of its own, else the init and its descendants.
pub fn container_pids(init: i32) -> Vec<i32> {
    let ns = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
    let init_ns = ns(&init.to_string());
    let own_ns = init_ns.is_some() && init_ns != ns("self");
    let mut procs: Vec<(i32, i32)> = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        if own_ns {
            if ns(&pid.to_string()) == init_ns {
                procs.push((pid, 0));
            }
            continue;
        }
        let ppid = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                let rest = s.get(s.rfind(')')? + 2..)?.to_owned();
                rest.split_whitespace().nth(1)?.parse::<i32>().ok()
            });
        if let Some(ppid) = ppid {
            procs.push((pid, ppid));
        }
    }
    if own_ns {
        return procs.into_iter().map(|(p, _)| p).collect();
    }
    let mut out = vec![init];
    let mut i = 0;
    while i < out.len() {
        let parent = out[i];
        out.extend(
            procs
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    out
}

/// Whether `pid` is alive (for tests and `info`).
pub fn pid_alive(pid: i32) -> bool {
    nix::sys::signal::kill(Pid::from_raw(pid), None).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subids_match_name_or_uid() {
        let t = "alice:100000:65536\nbob:200000:10\n1000:300000:5\nalice:400000:0\n";
        assert_eq!(parse_subids(t, "alice", 1001), vec![(100000, 65536)]);
        assert_eq!(parse_subids(t, "carol", 1000), vec![(300000, 5)]);
        assert!(parse_subids(t, "dave", 7).is_empty());
    }

    #[test]
    fn mapping_puts_own_id_at_zero() {
        let m = mapping(1000, &[(100000, 10), (500, 2)]);
        assert_eq!(
            m,
            vec![
                IdRange {
                    inside: 0,
                    outside: 1000,
                    count: 1
                },
                IdRange {
                    inside: 1,
                    outside: 100000,
                    count: 10
                },
                IdRange {
                    inside: 11,
                    outside: 500,
                    count: 2
                },
            ]
        );
    }
}
