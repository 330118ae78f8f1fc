//! Execs, as Docker's API has them: created with an ID (`exec_create`),
//! started with the stdio the caller gives (`exec_start`: this process's
//! own, pipes or files, or a pty whose master is handed back), inspected by
//! ID from any process (`exec_inspect`), resized (`exec_resize`).
//!
//! Each exec is a small record, `RUN/containers/ID/execs/EXEC.json` (0600 in
//! 0700 directories: the environment is in it), replaced whole on each
//! change; the exit code is written before `ExecProcess::wait` returns, so
//! an API server can close the start stream after it and a client's
//! `GET /exec/ID/json` sees it. When the container stops its execs are no
//! longer listed as its (`execs/ended/`) but can still be inspected by ID
//! until it is removed, as Docker's.

use crate::containers::{Container, ContainerId, State};
use crate::error::{Context, EngineError, Result};
use crate::runtime::{exit_code, runtime_log_error, stdio_of, ChildStdio, ExecSpawn};
use crate::Engine;
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// An exec's configuration (Docker's ExecConfig; `berth exec`'s flags).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct ExecOptions {
    pub cmd: Vec<String>,
    /// `-e`: NAME=VALUE.
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub tty: bool,
    /// `-i`, AttachStdin: the process reads the caller's input.
    pub interactive: bool,
    /// `-d`: the exec runs in the background, its output discarded.
    pub detach: bool,
    pub privileged: bool,
    /// AttachStdout, AttachStderr (what the record shows as OpenStdout,
    /// OpenStderr).
    #[serde(default)]
    pub attach_stdout: bool,
    #[serde(default)]
    pub attach_stderr: bool,
}

/// Docker's ProcessConfig of an exec's inspect.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExecProcessConfig {
    pub tty: bool,
    pub entrypoint: String,
    pub arguments: Vec<String>,
    pub privileged: bool,
    /// Absent when empty, as Docker's.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user: String,
}

/// The persistent record of an exec (Docker's `GET /exec/ID/json` fields).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ExecRecord {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "ContainerID")]
    pub container_id: String,
    pub running: bool,
    /// None until the process has ended (or while a detached one may run).
    pub exit_code: Option<i32>,
    /// The process's pid on the host (0 until it runs).
    pub pid: i32,
    pub open_stdin: bool,
    pub open_stdout: bool,
    pub open_stderr: bool,
    pub process_config: ExecProcessConfig,
    /// Whether `exec_start` was called (an exec starts once).
    #[serde(default)]
    pub started: bool,
    /// Started detached: the runtime returned once it ran.
    #[serde(default)]
    pub detached: bool,
    /// The process that started it and waits for it (its berth-lease
    /// name): once it is gone, the exec runs only as long as its pid does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starter: Option<String>,
    /// The configuration it was created with.
    pub config: ExecOptions,
    /// The runtime-spec process made at creation (the user, directory and
    /// environment resolved then, as Docker resolves them at create).
    pub process: oci_spec::runtime::Process,
}

/// Where an exec's process reads and writes.
#[derive(Debug)]
pub enum ExecIo {
    /// This process's own stdio, as `berth exec` has always had it: with a
    /// terminal the runtime relays its own pty (input only with `-i`);
    /// otherwise stdin only with `-i`, relayed through pipes by this
    /// process where its stdio is a terminal, and the signals this process
    /// receives are passed on while it waits.
    Caller,
    /// Descriptors the caller provides (pipes, files, sockets), for an exec
    /// without a terminal: no stdin reads nothing, no stdout/stderr
    /// discards it.
    Streams {
        stdin: Option<OwnedFd>,
        stdout: Option<OwnedFd>,
        stderr: Option<OwnedFd>,
    },
    /// A pty, for an exec with a terminal: its master is handed back
    /// ([`ExecProcess::take_pty_master`]) for the caller to relay.
    Pty,
}

/// Docker's `POST /exec/ID/start` options.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExecStartOptions {
    /// Return once the process runs (its output discarded).
    pub detach: bool,
    /// The terminal's size (rows, columns) before the command runs; for
    /// [`ExecIo::Caller`] the caller's own terminal's when None.
    pub console_size: Option<(u16, u16)>,
    /// A detached exec (no terminal) whose end the caller waits for with
    /// [`ExecProcess::wait`] (a long-lived server, as dockerd): the runtime
    /// runs it in the foreground, its output discarded, and its exit code
    /// is recorded as an attached exec's is.
    pub watch_detached: bool,
}

/// A started exec. [`wait`](Self::wait) records its exit code (dropping it
/// waits too).
pub struct ExecProcess<'e> {
    engine: &'e Engine,
    container: Container,
    record: ExecRecord,
    dir: PathBuf,
    child: Option<std::process::Child>,
    /// [`ExecIo::Caller`]: the relays, and the signals are passed on.
    relay: Option<berth_runtime::Stdio>,
    master: Option<OwnedFd>,
}

/// Whether `id` is an exec ID (64 lowercase hex digits): anything else
/// names no file.
fn valid_exec_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The lease prefix of an exec's starter.
const STARTER: &str = "exec";

fn no_such_exec(id: &str) -> EngineError {
    EngineError::not_found(
        crate::error::Object::Exec,
        format!("No such exec instance: {id}"),
    )
}

fn process_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = &s[s.rfind(')')? + 2..];
            Some(!rest.starts_with('Z') && !rest.starts_with('X'))
        })
        .unwrap_or(false)
}

fn read_record(path: &Path) -> Result<ExecRecord> {
    let text = std::fs::read(path).context(|| format!("read {}", path.display()))?;
    serde_json::from_slice(&text)
        .map_err(|e| EngineError::Other(format!("{}: {e}", path.display())))
}

fn write_record(dir: &Path, rec: &ExecRecord) -> Result<()> {
    let path = dir.join(format!("{}.json", rec.id));
    crate::write_file_atomically(&path, |w| {
        serde_json::to_writer(w, rec).map_err(|e| EngineError::Other(e.to_string()))
    })
}

/// The pid the runtime wrote for the exec, once it runs.
fn read_pid_file(dir: &Path, id: &str) -> Option<i32> {
    std::fs::read_to_string(dir.join(format!("{id}.pid")))
        .ok()?
        .trim()
        .parse()
        .ok()
        .filter(|p| *p > 0)
}

impl Engine {
    /// The directory of container `id`'s exec records.
    fn execs_dir(&self, id: &ContainerId) -> PathBuf {
        self.bundle_dir(id).join("execs")
    }

    /// Container `id` stopped: its execs are no longer its (Docker's ExecIDs
    /// is empty again) but stay inspectable by ID until the container is
    /// removed (with its run directory), as Docker's: their records move to
    /// `execs/ended/`.
    pub(crate) fn retire_execs(&self, id: &ContainerId) {
        let dir = self.execs_dir(id);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return;
        };
        let ended = dir.join("ended");
        let mut made = false;
        for e in entries.flatten() {
            let name = e.file_name();
            let Some(n) = name.to_str() else { continue };
            let record = n.ends_with(".json") && !n.ends_with(".process.json");
            if !record && !n.ends_with(".started") {
                continue;
            }
            if !made {
                if crate::create_private_dir_all(&ended).is_err() {
                    return;
                }
                made = true;
            }
            let _ = std::fs::rename(e.path(), ended.join(n));
        }
    }

    /// Docker's `POST /containers/ID/exec`: records an exec of `e` in
    /// running container `name` and returns its ID. The user, directory
    /// and environment are resolved now. Records Docker's `exec_create`.
    pub fn exec_create(&self, name: &str, e: &ExecOptions) -> Result<String> {
        let c = self.container(name)?;
        if c.state != State::Running {
            return Err(EngineError::conflict(
                crate::error::ConflictKind::NotRunning,
                format!("Container {} is not running", c.id),
            ));
        }
        if e.cmd.is_empty() {
            return Err(EngineError::Invalid("No exec command specified".into()));
        }
        // The whole process is given (as Docker gives runc): its environment
        // is Docker's for this exec (TERM only with its own -t, HOME of its
        // user), not the container's process's with variables added.
        let process = self.exec_process(&c, e)?;
        let id = ContainerId::random()?.to_string();
        let (entrypoint, arguments) = match e.cmd.split_first() {
            Some((first, rest)) => (first.clone(), rest.to_vec()),
            None => (String::new(), Vec::new()),
        };
        let rec = ExecRecord {
            id: id.clone(),
            container_id: c.id.to_string(),
            running: false,
            exit_code: None,
            pid: 0,
            open_stdin: e.interactive,
            open_stdout: e.attach_stdout,
            open_stderr: e.attach_stderr,
            process_config: ExecProcessConfig {
                tty: e.tty,
                entrypoint,
                arguments,
                privileged: e.privileged,
                user: e.user.clone().unwrap_or_default(),
            },
            started: false,
            detached: false,
            starter: None,
            config: e.clone(),
            process,
        };
        let dir = self.execs_dir(&c.id);
        crate::create_private_dir_all(&dir)?;
        write_record(&dir, &rec)?;
        // Docker's exec events: "exec_create: CMD ARGS…", then exec_start and
        // (unless detached) exec_die with the exit code, all with the exec's ID.
        self.event(
            &format!("exec_create: {}", shown(e)),
            &c,
            &[("execID", id.clone())],
        );
        Ok(id)
    }

    /// Finds exec `id`: the directory of its record (a container's
    /// `execs`, or `execs/ended` once the container stopped) and the record.
    fn find_exec(&self, id: &str) -> Result<(PathBuf, ExecRecord)> {
        if !valid_exec_id(id) {
            return Err(no_such_exec(id));
        }
        let file = format!("{id}.json");
        let entries = std::fs::read_dir(self.run.join("containers")).into_iter();
        for e in entries.flatten().flatten() {
            let execs = e.path().join("execs");
            for dir in [execs.clone(), execs.join("ended")] {
                let path = dir.join(&file);
                if path.exists() {
                    return Ok((dir, read_record(&path)?));
                }
            }
        }
        Err(no_such_exec(id))
    }

    /// Docker's `GET /exec/ID/json`: the exec's record, as any process
    /// sees it (its pid once it runs; a detached one whose process has
    /// ended is no longer running).
    pub fn exec_inspect(&self, id: &str) -> Result<ExecRecord> {
        let (dir, mut rec) = self.find_exec(id)?;
        if rec.running && rec.pid == 0 {
            rec.pid = read_pid_file(&dir, id).unwrap_or(0);
        }
        // Nobody waits to record its end (a detached exec, or one whose
        // starter was killed): it runs as long as its process does.
        let unwatched = rec.detached
            || rec
                .starter
                .as_deref()
                .and_then(|s| berth_lease::owner_of(s, STARTER))
                .is_some_and(|o| !o.is_alive());
        if rec.running && unwatched && !(rec.pid > 0 && process_alive(rec.pid)) {
            rec.running = false;
        }
        Ok(rec)
    }

    /// The IDs of container `name`'s execs (Docker's ExecIDs).
    pub fn exec_ids(&self, name: &str) -> Result<Vec<String>> {
        let c = self.containers.resolve(name)?;
        let mut ids: Vec<String> = std::fs::read_dir(self.execs_dir(&c.id))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let n = e.file_name().into_string().ok()?;
                let id = n.strip_suffix(".json")?;
                valid_exec_id(id).then(|| id.to_owned())
            })
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// Docker's `POST /exec/ID/resize`: the size of a running exec's
    /// terminal. As Docker's, an exec not yet running is waited for (a
    /// client resizes right after the start), up to 10 s; one that has
    /// ended is "no such exec".
    pub fn exec_resize(&self, id: &str, rows: u16, cols: u16) -> Result<()> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let rec = self.exec_inspect(id)?;
            if rec.started && !rec.running {
                return Err(EngineError::not_found(
                    crate::error::Object::Exec,
                    "no such exec",
                ));
            }
            if rec.running && rec.pid > 0 {
                if !rec.process_config.tty {
                    return Ok(());
                }
                return resize_process_terminal(rec.pid, rows, cols);
            }
            if std::time::Instant::now() > deadline {
                return Err(EngineError::Other(
                    "timeout waiting for exec session ready".into(),
                ));
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// Docker's `POST /exec/ID/start`: runs exec `id` with the stdio `io`
    /// gives it. Returns once the process runs (with [`ExecIo::Pty`], once
    /// its master is here); [`ExecProcess::wait`] waits for it and records
    /// its exit code. Records Docker's `exec_start`.
    pub fn exec_start(
        &self,
        id: &str,
        io: ExecIo,
        opts: &ExecStartOptions,
    ) -> Result<ExecProcess<'_>> {
        let (dir, mut rec) = self.find_exec(id)?;
        // An exec starts once: the first to make this file.
        let claim = dir.join(format!("{id}.started"));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&claim)
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(EngineError::conflict(
                    crate::error::ConflictKind::InProgress,
                    if rec.exit_code.is_some() {
                        format!("Error: Exec command {id} has already run")
                    } else {
                        format!("Error: Exec command {id} is already running")
                    },
                ));
            }
            Err(e) => return Err(e).context(|| format!("create {}", claim.display())),
        }
        // Until the runtime is spawned, a failure leaves the exec as it was
        // (not started: a start may be tried again).
        let mut unclaim = Unclaim {
            claim,
            dir: dir.clone(),
            before: Some(rec.clone()),
        };
        let c = self.container(&rec.container_id)?;
        if c.state != State::Running {
            return Err(EngineError::conflict(
                crate::error::ConflictKind::NotRunning,
                format!("Container {} is not running", c.id),
            ));
        }
        let tty = rec.config.tty;
        match (&io, tty) {
            (ExecIo::Streams { .. }, true) => {
                return Err(EngineError::Invalid(
                    "an exec with a terminal takes a pty, not streams".into(),
                ))
            }
            (ExecIo::Pty, false) => {
                return Err(EngineError::Invalid(
                    "an exec without a terminal takes streams, not a pty".into(),
                ))
            }
            _ => {}
        }
        let detach = opts.detach || rec.config.detach;
        // Whether the runtime returns at once, leaving the process to
        // nobody (and its exit code unknown).
        let unwatched = detach && (tty || !opts.watch_detached);
        // Docker's client sizes the exec's terminal from its own before
        // the command runs (`stty size` in `exec -it` works at once).
        let size = opts.console_size.or_else(|| {
            (tty && matches!(io, ExecIo::Caller))
                .then(|| {
                    berth_runtime::terminal_size(&std::io::stdin())
                        .or_else(|| berth_runtime::terminal_size(&std::io::stdout()))
                })
                .flatten()
        });
        let mut process = rec.process.clone();
        if let Some((rows, cols)) = size.filter(|_| tty) {
            if let Ok(b) = oci_spec::runtime::BoxBuilder::default()
                .height(u64::from(rows))
                .width(u64::from(cols))
                .build()
            {
                process.set_console_size(Some(b));
            }
        }
        let process_file = dir.join(format!("{id}.process.json"));
        let json = serde_json::to_vec(&process).map_err(|e| EngineError::Other(e.to_string()))?;
        // The environment is in it: 0600.
        crate::write_private(&process_file, &json)?;
        let log = dir.join(format!("{id}.log"));
        let pid_file = dir.join(format!("{id}.pid"));
        let socket = dir.join(format!("{id}.sock"));
        rec.started = true;
        rec.running = true;
        rec.detached = unwatched;
        rec.starter = berth_lease::Owner::current().ok().map(|o| o.name(STARTER));
        write_record(&dir, &rec)?;
        self.event(
            &format!("exec_start: {}", shown(&rec.config)),
            &c,
            &[("execID", id.to_owned())],
        );
        let runtime = self.runtime(&c);
        let mut relay = None;
        let mut listener = None;
        let mut own_pty = None;
        let stdio = match io {
            // Docker discards a detached exec's output: holding the caller's
            // stdout would keep `$(berth exec -d …)` waiting.
            _ if detach && !matches!(io, ExecIo::Pty) => ChildStdio {
                stdin: Some(Stdio::null()),
                stdout: Some(Stdio::null()),
                stderr: Some(Stdio::null()),
            },
            // The process never gets a terminal berth was given: with -t the
            // runtime relays its own pty; otherwise berth relays through pipes
            // where its stdio is a terminal (see berth_runtime::stdio).
            ExecIo::Caller if tty => {
                relay = Some(berth_runtime::Stdio::inherit());
                ChildStdio {
                    stdin: (!rec.config.interactive).then(Stdio::null),
                    ..ChildStdio::default()
                }
            }
            ExecIo::Caller => {
                let mut s = berth_runtime::Stdio::caller(rec.config.interactive)
                    .map_err(|err| EngineError::Other(err.to_string()))?;
                let [i, o, e] = s.take_child();
                relay = Some(s);
                ChildStdio {
                    stdin: i.map(Stdio::from),
                    stdout: o.map(Stdio::from),
                    stderr: e.map(Stdio::from),
                }
            }
            ExecIo::Streams {
                stdin,
                stdout,
                stderr,
            } => ChildStdio {
                stdin: Some(stdio_of(stdin)),
                stdout: Some(stdio_of(stdout)),
                stderr: Some(stdio_of(stderr)),
            },
            // A runtime that relays a pty of its own (runc without
            // --detach): its stdio is a pty made here, of the asked size.
            ExecIo::Pty if !detach && !runtime.console_socket_in_foreground() => {
                let ws = size.map(|(rows, cols)| nix::pty::Winsize {
                    ws_row: rows,
                    ws_col: cols,
                    ws_xpixel: 0,
                    ws_ypixel: 0,
                });
                let pty = nix::pty::openpty(ws.as_ref(), None)
                    .map_err(|e| EngineError::Other(format!("open a pty: {e}")))?;
                let slave = |fd: &OwnedFd| {
                    fd.try_clone()
                        .map(Stdio::from)
                        .context(|| "open a pty".to_owned())
                };
                let stdio = ChildStdio {
                    stdin: Some(slave(&pty.slave)?),
                    stdout: Some(slave(&pty.slave)?),
                    stderr: Some(Stdio::from(pty.slave)),
                };
                own_pty = Some(pty.master);
                stdio
            }
            ExecIo::Pty => {
                listener = Some(ConsoleListener::bind(&socket)?);
                ChildStdio {
                    stdin: Some(Stdio::null()),
                    stdout: Some(Stdio::null()),
                    stderr: Some(Stdio::null()),
                }
            }
        };
        let spawn = ExecSpawn {
            process: &process_file,
            log: &log,
            detach: unwatched,
            console_socket: listener.as_ref().map(|_| socket.as_path()),
            pid_file: Some(&pid_file),
        };
        unclaim.before = None;
        let child = runtime.exec(c.id.as_str(), &spawn, stdio);
        let mut exec = ExecProcess {
            engine: self,
            container: c,
            record: rec,
            dir,
            child: None,
            relay,
            master: own_pty,
        };
        match child {
            Ok(ch) => exec.child = Some(ch),
            Err(e) => {
                exec.record_end(Some(126));
                return Err(e.into());
            }
        }
        if let Some(l) = listener {
            match l.receive(exec.child.as_mut()) {
                Some(master) => exec.master = Some(master),
                // The runtime ended without sending it: its failure.
                None => {
                    return match exec.finish() {
                        Ok(_) => Err(EngineError::Other(
                            "the runtime sent no terminal for the exec".into(),
                        )),
                        Err(e) => Err(e),
                    };
                }
            }
        }
        Ok(exec)
    }

    /// `berth exec`: creates exec `e` in container `name` and runs it with
    /// this process's stdio ([`ExecIo::Caller`]); its exit code.
    pub fn exec(&self, name: &str, e: &ExecOptions) -> Result<i32> {
        let id = self.exec_create(name, e)?;
        self.exec_start(&id, ExecIo::Caller, &ExecStartOptions::default())?
            .wait()
    }

    /// The runtime-spec process of an exec: the container's process (its
    /// capabilities, rlimits, security settings) with the exec's command,
    /// terminal, directory, user and Docker's environment for it.
    pub(crate) fn exec_process(
        &self,
        c: &Container,
        e: &ExecOptions,
    ) -> Result<oci_spec::runtime::Process> {
        let config = self.bundle_dir(&c.id).join("config.json");
        let spec: oci_spec::runtime::Spec = std::fs::read(&config)
            .context(|| format!("read {}", config.display()))
            .and_then(|b| {
                serde_json::from_slice(&b)
                    .map_err(|err| EngineError::Other(format!("{}: {err}", config.display())))
            })?;
        let mut p = spec.process().clone().unwrap_or_default();
        p.set_args(Some(e.cmd.clone()));
        p.set_terminal(Some(e.tty));
        if let Some(w) = &e.workdir {
            p.set_cwd(PathBuf::from(w));
        }
        let rootfs = self.layers.mount_container(c.id.as_str())?;
        let mut user = p.user().clone();
        if let Some(u) = &e.user {
            let (uid, gid, memberships) = crate::spec::resolve_user(&rootfs, u)?;
            user.set_uid(uid);
            user.set_gid(gid);
            // The user's own groups (of /etc/group too), not the container's
            // process's; --group-add's as well, as Docker's exec.
            user.set_additional_gids(Some(crate::spec::supplementary_gids(
                &rootfs,
                gid,
                memberships,
                &c.config.host.group_add,
            )?));
        }
        p.set_env(Some(crate::spec::process_env(
            &c.config.env,
            &c.config.hostname,
            e.tty,
            &e.env,
            &crate::spec::passwd_home(&rootfs, user.uid()),
        )));
        p.set_user(user);
        if e.privileged {
            // Docker gives a privileged exec every capability: bounding,
            // permitted and effective (not inheritable, 20.10.14 on,
            // CVE-2022-24769). Every one the host has, that is: a bounding
            // set can only shrink, and the runtime can grant no capability
            // its own bounding set lacks (capset fails with EPERM), so the
            // list is the host's, as for `run --privileged`.
            let all: oci_spec::runtime::Capabilities = crate::options::host_caps()
                .iter()
                .filter_map(|n| n.parse().ok())
                .collect();
            let mut caps = p.capabilities().clone().unwrap_or_default();
            caps.set_bounding(Some(all.clone()));
            caps.set_effective(Some(all.clone()));
            caps.set_permitted(Some(all));
            p.set_capabilities(Some(caps));
        }
        Ok(p)
    }
}

/// Undoes an exec's start claim and record unless disarmed (`before`
/// taken): a start that failed before the runtime ran.
struct Unclaim {
    claim: PathBuf,
    dir: PathBuf,
    before: Option<ExecRecord>,
}

impl Drop for Unclaim {
    fn drop(&mut self) {
        if let Some(rec) = self.before.take() {
            let _ = write_record(&self.dir, &rec);
            let _ = std::fs::remove_file(&self.claim);
            let id = &rec.id;
            for f in [format!("{id}.process.json"), format!("{id}.sock")] {
                let _ = std::fs::remove_file(self.dir.join(f));
            }
        }
    }
}

/// "CMD ARGS…" as Docker's exec events show it.
fn shown(e: &ExecOptions) -> String {
    match e.cmd.split_first() {
        Some((first, rest)) => format!("{first} {}", rest.join(" ")),
        None => String::new(),
    }
}

/// Sets the size of the terminal process `pid` has on its stdin (a pty's
/// slave: the size is the pty's, and its foreground group gets SIGWINCH).
pub(crate) fn resize_process_terminal(pid: i32, rows: u16, cols: u16) -> Result<()> {
    let path = format!("/proc/{pid}/fd/0");
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(&path)
        .context(|| format!("open {path}"))?;
    berth_runtime::set_terminal_size(&f, rows, cols)
        .map_err(|e| EngineError::Other(format!("resize the terminal: {e}")))
}

/// The console socket an exec's runtime sends its pty master over.
struct ConsoleListener {
    listener: std::os::unix::net::UnixListener,
    path: PathBuf,
}

impl ConsoleListener {
    /// Listens on `path` (bound through its directory's descriptor: a socket
    /// address holds at most 107 bytes and a run directory under a long
    /// --root is longer).
    fn bind(path: &Path) -> Result<ConsoleListener> {
        use std::os::fd::AsRawFd;
        let dir = path.parent().unwrap_or(Path::new("/"));
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let _ = std::fs::remove_file(path);
        let listener = std::fs::File::open(dir)
            .and_then(|d| {
                std::os::unix::net::UnixListener::bind(format!(
                    "/proc/self/fd/{}/{name}",
                    d.as_raw_fd()
                ))
            })
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .context(|| format!("listen on {}", path.display()))?;
        Ok(ConsoleListener {
            listener,
            path: path.to_path_buf(),
        })
    }

    /// The master the runtime sends, or None once `child` (the runtime)
    /// ended without sending one.
    fn receive(self, mut child: Option<&mut std::process::Child>) -> Option<OwnedFd> {
        use std::os::fd::AsRawFd;
        let got = loop {
            match self.listener.accept() {
                Ok((conn, _)) => {
                    let _ = conn.set_nonblocking(false);
                    break berth_runtime::tty::recv_fd(conn.as_raw_fd()).ok();
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    let ended = match child.as_deref_mut() {
                        Some(ch) => !matches!(ch.try_wait(), Ok(None)),
                        None => true,
                    };
                    if ended {
                        break None;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                Err(_) => break None,
            }
        };
        let _ = std::fs::remove_file(&self.path);
        got
    }
}

impl ExecProcess<'_> {
    /// The exec's ID.
    pub fn id(&self) -> &str {
        &self.record.id
    }

    /// With [`ExecIo::Pty`]: the pty's master, the process's terminal, for
    /// the caller to read its output from and write its input to.
    pub fn take_pty_master(&mut self) -> Option<OwnedFd> {
        self.master.take()
    }

    /// The pid of the runtime process that runs (and waits for) the exec.
    pub fn runtime_pid(&self) -> Option<u32> {
        self.child.as_ref().map(std::process::Child::id)
    }

    /// Waits for the exec's process (a detached one: until it runs) and
    /// records its end: its exit code, Docker's `exec_die`. A process the
    /// runtime could not start is Docker's 126 (whatever stopped it: a
    /// missing program or directory too).
    pub fn wait(mut self) -> Result<i32> {
        self.finish()
    }

    fn finish(&mut self) -> Result<i32> {
        let Some(child) = self.child.take() else {
            return Err(EngineError::Other("the exec was already waited for".into()));
        };
        let status = match self.relay.as_mut() {
            Some(relay) => crate::lifecycle::wait_forwarding_signals(child, relay),
            None => {
                let mut child = child;
                child.wait()
            }
        };
        let log = self.dir.join(format!("{}.log", self.record.id));
        let failure = runtime_log_error(&log);
        let _ = std::fs::remove_file(&log);
        let _ = std::fs::remove_file(self.dir.join(format!("{}.process.json", self.record.id)));
        let status = match status {
            Ok(s) => s,
            Err(e) => {
                self.record_end(Some(126));
                return Err(e).context(|| "run the runtime".to_owned());
            }
        };
        if let Some(msg) = failure {
            self.record_end(Some(126));
            let _ = std::fs::remove_file(self.dir.join(format!("{}.pid", self.record.id)));
            // Looked at only after a failure: a paused container is rare, and
            // asking the runtime first would cost every exec a process.
            if self.engine.live(&self.container).paused {
                return Err(EngineError::conflict(
                    crate::error::ConflictKind::Paused,
                    format!(
                        "Container {} is paused, unpause the container before exec",
                        self.container.name
                    ),
                ));
            }
            // (An exec that could not start has no exec_die in Docker.)
            return Err(EngineError::CannotExecute(
                crate::lifecycle::runtime_failure(msg).to_string(),
            ));
        }
        let code = exit_code(status);
        if self.record.detached {
            // Running on: the record keeps its pid for `exec_inspect`.
            self.record.pid = read_pid_file(&self.dir, &self.record.id).unwrap_or(0);
            let _ = write_record(&self.dir, &self.record);
            return Ok(code);
        }
        self.record_end(Some(code));
        self.engine.event(
            "exec_die",
            &self.container,
            &[
                ("execID", self.record.id.clone()),
                ("exitCode", code.to_string()),
            ],
        );
        Ok(code)
    }

    /// Records that the exec ended with `code`.
    fn record_end(&mut self, code: Option<i32>) {
        if self.record.pid == 0 {
            self.record.pid = read_pid_file(&self.dir, &self.record.id).unwrap_or(0);
        }
        self.record.running = false;
        self.record.exit_code = code;
        // Where the record is now: the container may have stopped meanwhile
        // (its records moved to `ended`) or been removed (nothing to write).
        let file = format!("{}.json", self.record.id);
        let ended = self.dir.join("ended");
        if self.dir.join(&file).exists() {
            let _ = write_record(&self.dir, &self.record);
        } else if ended.join(&file).exists() {
            let _ = write_record(&ended, &self.record);
        }
        let _ = std::fs::remove_file(self.dir.join(format!("{}.pid", self.record.id)));
    }
}

impl std::fmt::Debug for ExecProcess<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecProcess")
            .field("id", &self.record.id)
            .field("container", &self.container.id)
            .field("runtime_pid", &self.runtime_pid())
            .field("pty_master", &self.master)
            .finish_non_exhaustive()
    }
}

impl Drop for ExecProcess<'_> {
    /// An exec not waited for is waited for here, so that its end is
    /// recorded all the same.
    fn drop(&mut self) {
        if self.child.is_some() {
            let _ = self.finish();
        }
    }
}
