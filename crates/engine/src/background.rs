//! Containers that live in the background, each under its own
//! `berth-monitor`: start, stop, kill, restart, wait, logs, attach, exec,
//! pause, top, rename, prune — and reconciling the database with what is
//! really running (a monitor that was killed, a machine that rebooted).
//!
//! The monitor writes files in the container's run directory; the database
//! is only ever written by `berth` commands, the last of which, for each
//! run of a container, is the monitor's exit command (`berth container
//! cleanup ID`).

use crate::containers::{Container, ContainerId, Intent, State};
use crate::error::{ConflictKind, Context, EngineError, Object, Result};
use crate::lifecycle::CreateOptions;
use crate::runtime::RuntimeStatus;
use crate::Engine;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// Where to find the monitor: `BERTH_MONITOR`, else beside this executable,
/// else on PATH.
fn monitor_binary() -> PathBuf {
    crate::binaries::companion_binary("BERTH_MONITOR", "berth-monitor")
}

fn now() -> String {
    humantime::format_rfc3339_nanos(SystemTime::now()).to_string()
}

/// What `berth logs` shows.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub follow: bool,
    /// Only the last N lines.
    pub tail: Option<usize>,
    pub timestamps: bool,
    pub since: Option<SystemTime>,
    pub until: Option<SystemTime>,
}

/// The run-time view of a container for `ps` and `inspect`.
#[derive(Debug, Clone, Default)]
pub struct Live {
    pub pid: i32,
    pub paused: bool,
    pub restarts: u32,
    pub oom_killed: bool,
}

fn process_alive(pid: i32) -> bool {
    // A zombie is dead for our purposes.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = &s[s.rfind(')')? + 2..];
            Some(!rest.starts_with('Z') && !rest.starts_with('X'))
        })
        .unwrap_or(false)
}

/// Whether process `pid` blocks `sig` (SigBlk in its status).
fn blocks_signal(pid: i32, sig: nix::sys::signal::Signal) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            let hex = s.lines().find_map(|l| l.strip_prefix("SigBlk:"))?.trim();
            u64::from_str_radix(hex, 16).ok()
        })
        .is_some_and(|mask| mask & (1u64 << (sig as i32 - 1)) != 0)
}

fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The lease prefix of a `starting` file's content.
const STARTER: &str = "start";

/// Whether the `berth start` named in `dir/starting` still runs.
fn starter_alive(dir: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(dir.join("starting")) else {
        return false;
    };
    let text = text.trim();
    match berth_lease::owner_of(text, STARTER) {
        Some(o) => o.is_alive(),
        // An older berth wrote its pid.
        None => text.parse().is_ok_and(process_alive),
    }
}

impl Engine {
    /// Records a container event (`berth events`); failures to record are
    /// not worth failing the operation for.
    pub(crate) fn event(&self, action: &str, c: &Container, extra: &[(&str, String)]) {
        let mut attrs = std::collections::BTreeMap::new();
        attrs.insert("name".to_owned(), c.name.clone());
        attrs.insert("image".to_owned(), c.image_ref.clone());
        for (k, v) in &c.config.labels {
            attrs.insert(k.clone(), v.clone());
        }
        for (k, v) in extra {
            attrs.insert((*k).to_owned(), v.clone());
        }
        let _ = self
            .containers
            .record_event("container", action, c.id.as_str(), &attrs);
    }

    /// Records an event of another type (`volume`, `network`, `image`)
    /// with Docker's attributes.
    pub(crate) fn object_event(
        &self,
        typ: &str,
        action: &str,
        actor: &str,
        attrs: &[(&str, String)],
    ) {
        let attrs: std::collections::BTreeMap<String, String> = attrs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        let _ = self.containers.record_event(typ, action, actor, &attrs);
    }

    /// Docker's volume `mount`/`unmount` events, one per volume of `c`.
    pub(crate) fn volume_events(&self, c: &Container, action: &str) {
        for m in &c.config.host.mounts {
            let (true, Some(n)) = (m.typ == "volume", &m.name) else {
                continue;
            };
            let mut attrs = vec![
                ("container", c.id.to_string()),
                ("driver", "local".to_owned()),
            ];
            if action == "mount" {
                let propagation = m
                    .options
                    .iter()
                    .find(|o| {
                        o.ends_with("private") || o.ends_with("shared") || o.ends_with("slave")
                    })
                    .cloned()
                    .unwrap_or_default();
                attrs.push(("destination", m.destination.clone()));
                attrs.push(("propagation", propagation));
                attrs.push(("read/write", (!m.read_only).to_string()));
            }
            self.object_event("volume", action, n, &attrs);
        }
    }

    /// The monitor's report of a health status change (Docker's
    /// `health_status: STATUS` event).
    pub fn health_event(&self, name: &str, status: &str) -> Result<()> {
        let c = self.containers.resolve(name)?;
        self.event(&format!("health_status: {status}"), &c, &[]);
        Ok(())
    }

    /// `berth events`: calls `each` for every event from `since` to `until`
    /// (nanoseconds) that passes `keep`; with `follow`, keeps polling for new
    /// ones until `until` passes (forever without one).
    pub fn events(
        &self,
        since: i64,
        until: Option<i64>,
        follow: bool,
        keep: &dyn Fn(&crate::containers::Event) -> bool,
        each: &mut dyn FnMut(&crate::containers::Event) -> bool,
    ) -> Result<()> {
        self.events_while(since, until, follow, keep, each, &|| true)
    }

    /// `events`, which also ends when `alive` says so (a streaming front
    /// end whose client went away while nothing happened).
    pub fn events_while(
        &self,
        since: i64,
        until: Option<i64>,
        follow: bool,
        keep: &dyn Fn(&crate::containers::Event) -> bool,
        each: &mut dyn FnMut(&crate::containers::Event) -> bool,
        alive: &dyn Fn() -> bool,
    ) -> Result<()> {
        let mut seq = 0;
        loop {
            if !alive() {
                return Ok(());
            }
            for e in self
                .containers
                .events(seq, since, until.unwrap_or(i64::MAX))?
            {
                seq = e.seq;
                if keep(&e) && !each(&e) {
                    return Ok(());
                }
            }
            let now = SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as i64)
                .unwrap_or(0);
            if !follow || until.is_some_and(|u| now > u) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Writes `RUN/containers/ID/starting`, naming this process as the one
    /// bringing the container up (mount, network, bundle, then a monitor or,
    /// on the foreground fast path, the container itself): while it lives no
    /// other command takes the container for abandoned; once it is gone the
    /// next one that reads the container releases what it left
    /// (`reconcile`). Returns the file's path, for its removal.
    pub(crate) fn claim_start(&self, id: &ContainerId) -> Result<PathBuf> {
        let dir = self.bundle_dir(id);
        let starting = dir.join("starting");
        crate::create_private_dir_all(&dir)?;
        let me = berth_lease::Owner::current().map_err(|e| EngineError::Other(e.to_string()))?;
        // Whole or absent (a reader must never see it empty: it would take
        // the starter for gone).
        let tmp = dir.join(me.name("starting.tmp"));
        std::fs::write(&tmp, me.name(STARTER))
            .and_then(|()| std::fs::rename(&tmp, &starting))
            .context(|| format!("write {}", starting.display()))?;
        Ok(starting)
    }

    /// Gives the forwarder of running container `id` new [::1] forwards
    /// (its published ports moved to another network): written to
    /// `forwards` in its run directory (whole, by rename); then its monitor
    /// is sent SIGUSR1, only one that handles it (blocked, for its
    /// signalfd; an older monitor would die of it), while a foreground
    /// `run` (named by `starting`) has its forwarding thread watch the
    /// file. Best effort: with neither there is nothing to tell.
    pub(crate) fn tell_forwarders(&self, id: &ContainerId, forwards: &[berth_forward::Forward]) {
        let dir = self.bundle_dir(id);
        let monitor = read_pid(&dir.join("monitor.pid")).filter(|p| process_alive(*p));
        let monitor = match monitor {
            Some(pid) if blocks_signal(pid, nix::sys::signal::Signal::SIGUSR1) => Some(pid),
            Some(_) => return,
            None if starter_alive(&dir) => None,
            None => return,
        };
        let text: String = forwards.iter().map(|f| format!("{f}\n")).collect();
        let tmp = dir.join("forwards.tmp");
        let written = std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, dir.join("forwards")))
            .is_ok();
        if let (true, Some(pid)) = (written, monitor) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGUSR1,
            );
        }
    }

    pub(crate) fn monitor_alive(&self, id: &ContainerId) -> bool {
        let dir = self.bundle_dir(id);
        // `starting` names the `berth start` that is bringing the container
        // up (mount, bundle, monitor): while it lives, it is in charge.
        read_pid(&dir.join("monitor.pid")).is_some_and(process_alive)
            || starter_alive(&dir)
            || self.find_monitor(id).is_some()
    }

    /// A live monitor of container `id` found among the processes: the rare
    /// case of a `berth start` killed between spawning its monitor and
    /// either of them writing `monitor.pid` (only looked for when a starter
    /// left its `starting` file behind).
    fn find_monitor(&self, id: &ContainerId) -> Option<i32> {
        if !self.bundle_dir(id).join("starting").exists() {
            return None;
        }
        let rd = std::fs::read_dir("/proc").ok()?;
        rd.flatten().find_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let mut args = cmd.split(|b| *b == 0);
            let exe = args.next()?;
            let is_monitor = exe.ends_with(b"berth-monitor");
            let mut prev: &[u8] = b"";
            let has_id = args.any(|a| {
                let hit = prev == b"--id" && a == id.as_str().as_bytes();
                prev = a;
                hit
            });
            (is_monitor && has_id && process_alive(pid)).then_some(pid)
        })
    }

    /// The runtime's state of the container, or None when the runtime has
    /// no such container.
    pub(crate) fn runtime_status(&self, c: &Container) -> Option<crate::runtime::RuntimeState> {
        self.runtime(c).state(c.id.as_str())
    }

    /// Brings a record in line with reality, cheaply (no I/O for a record
    /// at rest but a stat or two):
    /// - a removal or a creation whose berth was killed is finished (the
    ///   record goes: `reconcile` returns false), and so is a build's RUN
    ///   container whose build is gone;
    /// - a container marked running whose monitor is gone (killed, or the
    ///   machine rebooted) is cleaned up and shown as exited, with the
    ///   status its monitor recorded or 255;
    /// - a `berth start` killed before its monitor ran leaves the rootfs
    ///   mounted and the network set up: both are released.
    pub(crate) fn reconcile(&self, c: &mut Container) -> bool {
        if let Some(intent) = &c.intent {
            if !intent.owner().is_alive() {
                match intent {
                    Intent::Create(_) if self.has_layer_dir(&c.id) => {
                        // Killed while filling a volume from the image: the
                        // rootfs it mounted for that goes.
                        let _ = self.layers.unmount_container(c.id.as_str());
                        let _ = self.containers.clear_intent(&c.id);
                        c.intent = None;
                    }
                    _ => {
                        let _ = self.finish_removal(c);
                        return self.containers.resolve(c.id.as_str()).is_ok();
                    }
                }
            }
        }
        if c.state != State::Running {
            let starting = self.bundle_dir(&c.id).join("starting");
            if starting.exists() && !self.monitor_alive(&c.id) {
                self.network_stop(c);
                let _ = self.layers.unmount_container(c.id.as_str());
                let _ = std::fs::remove_file(&starting);
            }
            return true;
        }
        if self.monitor_alive(&c.id) {
            return true;
        }
        // Give a monitor that is just finishing its exit command a moment.
        if self.runtime_status(c).is_some_and(|st| st.status.is_live()) {
            return true;
        }
        // The exit is cleaned up once: by whoever holds its claim first (the
        // monitor's exit command, normally); not waited for here.
        let _ = self.cleanup_exit(c, false);
        match self.containers.resolve(c.id.as_str()) {
            Ok(fresh) => {
                *c = fresh;
                true
            }
            Err(_) => false,
        }
    }

    /// Whether the container's writable layer exists (a stat).
    fn has_layer_dir(&self, id: &ContainerId) -> bool {
        self.layers
            .root()
            .join("containers")
            .join(id.as_str())
            .is_dir()
    }

    /// Removes a container whose remover (or creator, or build) is gone:
    /// stops what may still run, then removes it as `rm -f` does.
    pub(crate) fn finish_removal(&self, c: &Container) -> Result<()> {
        let me = berth_lease::Owner::current().map_err(|e| EngineError::Other(e.to_string()))?;
        if !self.containers.claim_removal(&c.id, &me)? {
            return Ok(());
        }
        if c.state == State::Running || self.runtime_status(c).is_some() {
            let _ = std::fs::write(self.bundle_dir(&c.id).join("stop"), "");
            let _ = self.runtime_kill(c, "SIGKILL", true);
            // Its monitor (if any) records the exit and is gone before the
            // record goes, as after `rm -f`.
            self.wait_monitor_gone(&c.id, Duration::from_secs(10));
            self.runtime(c).delete_force(c.id.as_str());
        }
        self.network_stop(c);
        self.remove_container(&c.id)
    }

    /// The health file the monitor keeps (Docker's State.Health), if the
    /// container has a check.
    pub fn health(&self, c: &Container) -> Option<serde_json::Value> {
        if let Ok(text) = std::fs::read_to_string(self.bundle_dir(&c.id).join("health")) {
            return serde_json::from_str(&text).ok();
        }
        // Started, with a check, before the monitor's first write of its
        // health file: "starting", as Docker shows from the start (compose
        // v1 reads a missing State.Health as no healthcheck at all).
        let checked = c
            .config
            .healthcheck
            .as_ref()
            .is_some_and(|h| h.runs_a_check());
        (checked && c.state == State::Running)
            .then(|| serde_json::json!({"Status": "starting", "FailingStreak": 0, "Log": []}))
    }

    pub fn live(&self, c: &Container) -> Live {
        let dir = self.bundle_dir(&c.id);
        let mut l = Live {
            restarts: std::fs::read_to_string(dir.join("restarts"))
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0),
            oom_killed: dir.join("oom").exists(),
            ..Live::default()
        };
        if c.state == State::Running {
            if let Some(st) = self.runtime_status(c) {
                l.pid = st.pid;
                l.paused = st.status == RuntimeStatus::Paused;
            }
        }
        l
    }

    /// All containers, reconciled.
    pub fn container_records(&self) -> Result<Vec<Container>> {
        let mut list = self.containers.list()?;
        list.retain_mut(|c| self.reconcile(c));
        Ok(list)
    }

    pub fn container(&self, name: &str) -> Result<Container> {
        let mut c = self.containers.resolve(name)?;
        if !self.reconcile(&mut c) {
            return Err(EngineError::no_such(Object::Container, name));
        }
        Ok(c)
    }

    /// `berth run -d`: create and start under a monitor.
    pub fn run_detached(&self, opts: &CreateOptions) -> Result<ContainerId> {
        let id = self.create(opts)?;
        if let Err(e) = self.start(id.as_str()) {
            if opts.auto_remove {
                let c = self.containers.resolve(id.as_str()).ok();
                if self.remove_container(&id).is_ok() {
                    if let Some(c) = c {
                        self.remove_anonymous_volumes(&c);
                    }
                }
            }
            return Err(e);
        }
        Ok(id)
    }

    /// `berth start`: mounts the rootfs, writes the bundle and starts the
    /// container under a new monitor; returns once it runs. A running
    /// container: `NotModified` (Docker's 304).
    pub fn start(&self, name: &str) -> Result<ContainerId> {
        self.start_with(name, false)
    }

    /// `start`; with `attach_first` (`start -a`) the monitor answers once the
    /// container is created and starts it when the caller has attached, so
    /// not a byte of its output is missed.
    pub fn start_with(&self, name: &str, attach_first: bool) -> Result<ContainerId> {
        let c = self.container(name)?;
        if c.state == State::Running {
            return Err(EngineError::NotModified(
                "Container is already started".into(),
            ));
        }
        if attach_first {
            self.event("attach", &c, &[]);
        }
        let dir = self.bundle_dir(&c.id);
        // Leftovers of an earlier run (the runtime's state of a container
        // whose monitor died, old exit files).
        self.runtime(&c).delete_force(c.id.as_str());
        for f in [
            "exit",
            "stop",
            "oom",
            "monitor.pid",
            "pid",
            "restarts",
            "health",
            "error",
        ] {
            let _ = std::fs::remove_file(dir.join(f));
        }
        self.retire_execs(&c.id);
        // From here until the monitor has answered, `starting` names this
        // process: if it is killed, the next command that reads the
        // container releases the mount and the network (`reconcile`).
        let starting = self.claim_start(&c.id)?;
        let rootfs = match self.layers.mount_container(c.id.as_str()) {
            Ok(r) => r,
            Err(e) => {
                let _ = std::fs::remove_file(&starting);
                return Err(e.into());
            }
        };
        let bundle = match self.write_bundle(&c, &rootfs) {
            Ok(b) => b,
            Err(e) => {
                self.network_stop(&c);
                let _ = self.layers.unmount_container(c.id.as_str());
                let _ = std::fs::remove_file(&starting);
                return Err(e);
            }
        };
        let forwards = match self.loopback_forwards(&c) {
            Ok(f) => f,
            Err(e) => {
                self.network_stop(&c);
                let _ = self.layers.unmount_container(c.id.as_str());
                let _ = std::fs::remove_file(&starting);
                return Err(e);
            }
        };
        let log_path = self.log_path(&c.id);
        if let Some(d) = log_path.parent() {
            crate::create_private_dir_all(d)?;
        }
        // Health status changes are recorded by `berth container
        // health-event` (the API server is not that program).
        let exe = crate::cli_executable();
        let mut cmd = Command::new(monitor_binary());
        cmd.arg("--id")
            .arg(c.id.as_str())
            .arg("--dir")
            .arg(&bundle)
            .arg("--bundle")
            .arg(&bundle)
            .arg("--runtime")
            .arg(crate::binaries::container_runtime(&c.config.host)?)
            .arg("--runtime-root")
            .arg(self.run.join("runtime"))
            .arg("--restart")
            .arg(c.config.restart.as_deref().unwrap_or("no"));
        if c.config.log_driver.as_deref() != Some("none") {
            cmd.arg("--log").arg(&log_path);
        }
        if let Some(s) = c.config.log_max_size {
            cmd.arg("--log-max-size").arg(s.to_string());
        }
        if let Some(n) = c.config.log_max_files {
            cmd.arg("--log-max-files").arg(n.to_string());
        }
        if let Some(h) = &c.config.healthcheck {
            if h.runs_a_check() {
                for t in &h.test {
                    cmd.arg("--health-test").arg(t);
                }
                // The check runs as Docker runs it: an exec without a
                // terminal (no TERM), the container's user and variables.
                let check = match h.test.split_first() {
                    Some((kind, rest)) if kind == "CMD-SHELL" => {
                        vec!["/bin/sh".to_owned(), "-c".to_owned(), rest.join(" ")]
                    }
                    Some((_, rest)) => rest.to_vec(),
                    None => Vec::new(),
                };
                let probe = crate::ExecOptions {
                    cmd: check,
                    ..crate::ExecOptions::default()
                };
                let file = bundle.join("health-process.json");
                let written = self.exec_process(&c, &probe).and_then(|p| {
                    let json =
                        serde_json::to_vec(&p).map_err(|e| EngineError::Other(e.to_string()))?;
                    crate::write_private(&file, &json)
                });
                if written.is_ok() {
                    cmd.arg("--health-process").arg(&file);
                }
                for (flag, v) in [
                    ("--health-interval", h.interval),
                    ("--health-timeout", h.timeout),
                    ("--health-start-period", h.start_period),
                ] {
                    if v > 0 {
                        cmd.arg(flag).arg(v.to_string());
                    }
                }
                if h.retries > 0 {
                    cmd.arg("--health-retries").arg(h.retries.to_string());
                }
                // A status change is recorded by this berth, on this root.
                let mut event = vec![exe.clone().into_os_string()];
                event.extend(self.root_args());
                for a in ["container", "health-event", c.id.as_str()] {
                    event.push(a.into());
                }
                for a in event {
                    cmd.arg("--health-event-arg").arg(a);
                }
            }
        }
        for f in &forwards {
            cmd.arg("--forward").arg(f.to_string());
        }
        if c.config.tty {
            cmd.arg("--tty");
        }
        if c.config.interactive {
            cmd.arg("--stdin");
        }
        if attach_first {
            cmd.arg("--attach-first");
            if c.config.interactive {
                cmd.arg("--stdin-once");
            }
        }
        // The exit command: this berth, on this root.
        cmd.arg("--").arg(exe);
        cmd.args(self.root_args());
        cmd.args(["container", "cleanup", c.id.as_str()]);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        self.containers
            .set_state(&c.id, State::Running, None, &now())?;
        // A failed start: `starting` goes last. Until the record says how
        // the start failed, it reads running with its monitor gone, and
        // without `starting` a concurrent command's `reconcile` would clean
        // it up as an exit of unknown code (255) over this failure.
        let fail = |err: EngineError, code: i32| -> Result<ContainerId> {
            let recorded = self
                .containers
                .set_start_failed(&c.id, &c, code, &err.to_string());
            self.network_stop(&c);
            let _ = self.layers.unmount_container(c.id.as_str());
            let _ = std::fs::remove_file(&starting);
            recorded?;
            Err(err)
        };
        let mut child = match cmd.spawn() {
            Ok(ch) => {
                // The monitor writes it too, first thing; written here as
                // well so that the window in which a killed `start` leaves
                // a monitor nobody knows of is as short as can be (the rest
                // is covered by `find_monitor`).
                let _ = std::fs::write(bundle.join("monitor.pid"), ch.id().to_string());
                ch
            }
            Err(e) => {
                let err = EngineError::Other(format!(
                    "cannot run the monitor {}: {e}",
                    monitor_binary().display()
                ));
                return fail(err, 125);
            }
        };
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            let _ = std::io::BufReader::new(out).read_line(&mut line);
        }
        // The monitor lives on in its own session; we reap it only if it
        // already failed.
        if let Some(msg) = line.trim().strip_prefix("error: ") {
            let _ = child.wait();
            let err = crate::lifecycle::runtime_failure(msg.to_owned());
            let code = crate::lifecycle::start_failure_code(&err);
            return fail(err, code);
        }
        if !line.starts_with("ok") {
            let _ = child.wait();
            return fail(
                EngineError::Other("the container monitor failed to start".into()),
                125,
            );
        }
        crate::detach_child(child);
        self.volume_events(&c, "mount");
        self.event("start", &c, &[]);
        // Only now: the exit's cleanup waits for this (a container that
        // exits at once, or that an attached client ran at once, must not
        // record its die before its start).
        let _ = std::fs::remove_file(&starting);
        Ok(c.id)
    }

    /// Why the container's start failed after a client attached (the
    /// monitor writes it), as the error `run` would have given.
    pub fn start_error(&self, name: &str) -> Option<EngineError> {
        let c = self.containers.resolve(name).ok()?;
        let msg = std::fs::read_to_string(self.bundle_dir(&c.id).join("error")).ok()?;
        Some(crate::lifecycle::runtime_failure(msg.trim().to_owned()))
    }

    /// The monitor's exit command: records the exit, releases the runtime
    /// state and the mount, removes an `--rm` container.
    /// The global flags that put another berth on this engine's root and
    /// volatile directory (`--root`, `--runroot`): without the second, a
    /// monitor's exit command looked for the runtime's state in ROOT/run
    /// and left the container's cgroups behind.
    fn root_args(&self) -> Vec<std::ffi::OsString> {
        let mut args = Vec::new();
        if let Some(r) = &self.opts.root {
            args.push("--root".into());
            args.push(r.clone().into_os_string());
        }
        if self.opts.run.is_some() {
            args.push("--runroot".into());
            args.push(self.run.clone().into_os_string());
        }
        args
    }

    pub fn cleanup(&self, name: &str) -> Result<()> {
        let c = self.containers.resolve(name)?;
        self.cleanup_exit(&c, true)
    }

    /// Cleans up the exit of the run of `seen` exactly once, however many
    /// processes try (the monitor's exit command, and any command whose
    /// `reconcile` read the container as running before the exit command
    /// recorded the exit): under the exit claim, only a record that is still
    /// running, in the same run (its start time), is cleaned up; whoever
    /// comes later finds it exited or gone and does nothing. A cleaner that
    /// dies leaves the record running and the lock free: the next one takes
    /// over. With `wait` false, a claim held by another process means it is
    /// being done: nothing to do here.
    pub(crate) fn cleanup_exit(&self, seen: &Container, wait: bool) -> Result<()> {
        let Some(claim) = self.exit_claim(&seen.id, wait)? else {
            return Ok(());
        };
        let res = match self.containers.resolve(seen.id.as_str()) {
            Ok(c) if c.state == State::Running && c.started_at == seen.started_at => {
                self.cleanup_locked(c)
            }
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found(Object::Container) => Ok(()),
            Err(e) => Err(e),
        };
        claim.done();
        res
    }

    /// `cleanup` of an exit whose claim this process holds.
    fn cleanup_locked(&self, c: Container) -> Result<()> {
        let dir = self.bundle_dir(&c.id);
        // The start's events come first: its starter records them after the
        // monitor's answer, which a container that exits at once can beat.
        let deadline = Instant::now() + Duration::from_secs(30);
        while starter_alive(&dir) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        let (code, at) = match std::fs::read_to_string(dir.join("exit")) {
            Ok(t) => {
                let mut l = t.lines();
                (
                    l.next().and_then(|x| x.trim().parse().ok()).unwrap_or(255),
                    l.next().map(str::to_owned).unwrap_or_else(now),
                )
            }
            Err(_) => (255, now()),
        };
        // A start that failed after `start -a`/`run` attached: Docker's
        // 127/126 for a program that is missing or cannot run, recorded as
        // a start that failed.
        let failed = self.start_error(c.id.as_str());
        if self.oom_killed(&c) {
            let _ = std::fs::write(dir.join("oom"), "1");
        }
        self.runtime(&c).delete_force(c.id.as_str());
        // Its execs are no longer its (Docker's ExecIDs).
        self.retire_execs(&c.id);
        // Docker's order: die, then the network disconnects and the volume
        // unmounts (recorded as they are released). A start that failed after
        // the client attached had its start event: its die follows, with the
        // failure's code, which is also where the waiter of an --rm container
        // (gone by the time it looks) finds it.
        let die_code = failed
            .as_ref()
            .map_or(code, crate::lifecycle::start_failure_code);
        self.event("die", &c, &[("exitCode", die_code.to_string())]);
        self.network_stop(&c);
        if failed.is_none() {
            self.volume_events(&c, "unmount");
        }
        let _ = self.layers.unmount_container(c.id.as_str());
        let _ = std::fs::remove_file(dir.join("starting"));
        match failed {
            Some(err) => {
                // The record before the start is gone: a container that never
                // ran is `created` again, with no start time.
                let before = Container {
                    state: if c.finished_at.is_some() {
                        State::Exited
                    } else {
                        State::Created
                    },
                    started_at: c
                        .finished_at
                        .is_some()
                        .then(|| c.started_at.clone())
                        .flatten(),
                    ..c.clone()
                };
                self.containers.set_start_failed(
                    &c.id,
                    &before,
                    crate::lifecycle::start_failure_code(&err),
                    &err.to_string(),
                )?;
            }
            None => {
                self.containers
                    .set_state(&c.id, State::Exited, Some(code), &at)?;
            }
        }
        if c.config.auto_remove {
            self.remove_container(&c.id)?;
            // Docker removes an --rm container's anonymous volumes with it,
            // unless `rm` (without -v) is what removes it.
            if !matches!(c.intent, Some(crate::containers::Intent::Remove(_))) {
                self.remove_anonymous_volumes(&c);
            }
        }
        Ok(())
    }

    fn oom_killed(&self, c: &Container) -> bool {
        let path = format!("/berth-{}", c.id);
        berth_cgroups::open_manager(&path, c.id.as_str())
            .and_then(|m| m.oom_killed())
            .unwrap_or(false)
    }

    /// Waits (up to `limit`) until the container's monitor, if any, has
    /// exited: nothing writes into its run directory after that.
    fn wait_monitor_gone(&self, id: &ContainerId, limit: Duration) {
        let deadline = Instant::now() + limit;
        while read_pid(&self.bundle_dir(id).join("monitor.pid")).is_some_and(process_alive)
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until the container is no longer running (its cleanup done).
    fn wait_down(&self, id: &ContainerId, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            match self.containers.resolve(id.as_str()) {
                Ok(mut c) => {
                    self.reconcile(&mut c);
                    if c.state != State::Running {
                        return true;
                    }
                }
                Err(_) => return true, // removed (--rm)
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub(crate) fn runtime_kill(&self, c: &Container, signal: &str, all: bool) -> Result<()> {
        Ok(self.runtime(c).kill(c.id.as_str(), signal, all)?)
    }

    /// `berth stop [-t N]`: the stop signal, then SIGKILL after the timeout.
    /// A container that does not run: `NotModified` (Docker's 304).
    pub fn stop(&self, name: &str, timeout: Option<u64>) -> Result<ContainerId> {
        let c = self.container(name)?;
        if c.state != State::Running {
            return Err(EngineError::NotModified(
                "Container is already stopped".into(),
            ));
        }
        let _ = std::fs::write(self.bundle_dir(&c.id).join("stop"), "");
        let signal = c
            .config
            .stop_signal
            .clone()
            .unwrap_or_else(|| "SIGTERM".into());
        let secs = timeout.or(c.config.stop_timeout).unwrap_or(10);
        if self.live(&c).paused {
            let _ = self.runtime(&c).resume(c.id.as_str());
        }
        if self.runtime_kill(&c, &signal, false).is_ok() {
            self.event("kill", &c, &[("signal", signal_number(&signal))]);
        }
        if !self.wait_down(&c.id, Duration::from_secs(secs)) {
            if self.runtime_kill(&c, "SIGKILL", true).is_ok() {
                self.event("kill", &c, &[("signal", "9".to_owned())]);
            }
            if !self.wait_down(&c.id, Duration::from_secs(10)) {
                return Err(EngineError::Other(format!(
                    "container {} did not stop",
                    c.id.short()
                )));
            }
        }
        // Docker's `stop` follows the exit's die, disconnects and unmounts,
        // which the monitor's exit command records.
        self.wait_monitor_gone(&c.id, Duration::from_secs(10));
        self.event("stop", &c, &[]);
        Ok(c.id)
    }

    /// `berth kill [-s SIGNAL]`.
    pub fn kill(&self, name: &str, signal: &str) -> Result<ContainerId> {
        let c = self.container(name)?;
        if c.state != State::Running {
            return Err(EngineError::conflict(
                ConflictKind::NotRunning,
                format!(
                    "Cannot kill container: {name}: Container {} is not running",
                    c.id
                ),
            ));
        }
        let _ = std::fs::write(self.bundle_dir(&c.id).join("stop"), "");
        self.runtime_kill(&c, signal, false)?;
        self.event("kill", &c, &[("signal", signal_number(signal))]);
        Ok(c.id)
    }

    pub fn restart(&self, name: &str, timeout: Option<u64>) -> Result<ContainerId> {
        let id = match self.stop(name, timeout) {
            Ok(id) => id,
            Err(EngineError::NotModified(_)) => self.container(name)?.id,
            Err(e) => return Err(e),
        };
        self.start(id.as_str())
    }

    /// `berth wait`: blocks until the container exits; its status.
    pub fn wait(&self, name: &str) -> Result<i32> {
        let c = self.container(name)?;
        let dir = self.bundle_dir(&c.id);
        let exit_file = || -> Option<i32> {
            std::fs::read_to_string(dir.join("exit"))
                .ok()?
                .lines()
                .next()?
                .trim()
                .parse()
                .ok()
        };
        // Block as an attach client until the monitor hangs up: it writes
        // its exit file first and only then runs the exit command, which
        // removes an --rm container (and that file) with it.
        if c.state == State::Running {
            let conn = std::fs::File::open(&dir).and_then(|d| {
                use std::os::fd::AsRawFd;
                std::os::unix::net::UnixStream::connect(format!(
                    "/proc/self/fd/{}/attach.sock",
                    d.as_raw_fd()
                ))
            });
            if let Ok(mut s) = conn {
                let mut buf = [0u8; 8192];
                while matches!(std::io::Read::read(&mut s, &mut buf), Ok(n) if n > 0) {}
            }
        }
        let mut seen = None;
        loop {
            seen = exit_file().or(seen);
            match self.containers.resolve(c.id.as_str()) {
                Ok(mut now) => {
                    self.reconcile(&mut now);
                    if now.state != State::Running {
                        return Ok(now.exit_code.unwrap_or(0));
                    }
                }
                // Removed meanwhile (--rm): the status its monitor recorded,
                // in its exit file if this saw it, else in its `die` event
                // (the file goes with the container).
                Err(_) => {
                    let died = || self.containers.last_exit_code(&c.id).ok().flatten();
                    return Ok(seen.or_else(died).unwrap_or(0));
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The json-file log of a container (persistent, beside its layer).
    pub fn log_path(&self, id: &ContainerId) -> PathBuf {
        self.root
            .join("containers")
            .join(id.as_str())
            .join(format!("{}-json.log", id.as_str()))
    }

    /// `berth logs`: writes the container's log lines (stdout's to `out`,
    /// stderr's to `err`), following if asked until the container stops.
    pub fn logs(
        &self,
        name: &str,
        o: &LogOptions,
        out: &mut dyn Write,
        err: &mut dyn Write,
    ) -> Result<()> {
        let c = self.container(name)?;
        let path = self.log_path(&c.id);
        if c.config.log_driver.as_deref() == Some("none") {
            return Err(EngineError::Unsupported(
                "configured logging driver does not support reading".into(),
            ));
        }
        let max = c.config.log_max_files.unwrap_or(5);
        // The current file first, so that a rotation meanwhile leaves it among
        // the rotated ones (skipped there by its inode) rather than unread.
        let mut cur = LogFile::open(&path);
        let cur_ino = cur.as_ref().map(|f| f.ino);
        let mut lines: Vec<String> = Vec::new();
        // The newest file read when there is no current one (caught mid-rotation).
        let mut newest_read = None;
        for mut f in rotated_logs(&path, max) {
            if Some(f.ino) == cur_ino {
                continue;
            }
            lines.extend(f.read_lines());
            newest_read = Some(f.ino);
        }
        if let Some(f) = &mut cur {
            lines.extend(f.read_lines());
        }
        if let Some(n) = o.tail {
            let skip = lines.len().saturating_sub(n);
            lines.drain(..skip);
        }
        for l in &lines {
            emit(l, o, out, err);
        }
        if !o.follow {
            return Ok(());
        }
        // Follow: read what is new on the open file; when the log has rotated
        // (its name now holds another inode), read the old file to its end (the
        // monitor writes no more to it; an open descriptor reads it even once
        // deleted), then every file that came after it, oldest first.
        let mut finishing = false;
        loop {
            let mut progressed = false;
            if let Some(f) = &mut cur {
                for l in f.read_lines() {
                    emit(&l, o, out, err);
                    progressed = true;
                }
            }
            let name_ino = std::fs::metadata(&path)
                .ok()
                .map(|m| std::os::unix::fs::MetadataExt::ino(&m));
            let rotated = match (&cur, name_ino) {
                (None, Some(_)) => true,
                (Some(f), Some(ino)) => f.ino != ino,
                _ => false,
            };
            if rotated {
                // What was written before the rename is all in the old file.
                if let Some(f) = &mut cur {
                    for l in f.read_lines() {
                        emit(&l, o, out, err);
                    }
                }
                let after = cur.as_ref().map(|f| f.ino).or(newest_read);
                let mut next = log_successors(&path, max, after);
                let last = next.pop();
                for mut f in next {
                    for l in f.read_lines() {
                        emit(&l, o, out, err);
                    }
                }
                if last.is_some() {
                    cur = last;
                }
                continue;
            }
            if finishing {
                return Ok(());
            }
            let running = self
                .containers
                .resolve(c.id.as_str())
                .map(|mut x| {
                    self.reconcile(&mut x);
                    x.state == State::Running
                })
                .unwrap_or(false);
            if !running {
                // One more pass reads what was written before it stopped.
                finishing = true;
                continue;
            }
            if !progressed {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// Docker's `attach` event, for `berth attach` to a running container.
    pub fn attach_event(&self, name: &str) {
        if let Ok(c) = self.container(name) {
            if c.state == State::Running {
                self.event("attach", &c, &[]);
            }
        }
    }

    pub fn pause(&self, name: &str, pause: bool) -> Result<ContainerId> {
        let c = self.container(name)?;
        if c.state != State::Running {
            return Err(EngineError::conflict(
                ConflictKind::NotRunning,
                format!("Container {} is not running", c.id),
            ));
        }
        if self.rootless && self.delegation().is_none() {
            return Err(crate::rootless::no_freezer());
        }
        let rt = self.runtime(&c);
        let done = if pause {
            rt.pause(c.id.as_str())
        } else {
            rt.resume(c.id.as_str())
        };
        match done {
            Ok(()) => {}
            Err(e @ crate::runtime::RuntimeError::Failed(_)) => {
                return Err(EngineError::conflict(
                    crate::error::ConflictKind::Other,
                    e.to_string(),
                ))
            }
            Err(e) => return Err(e.into()),
        }
        self.event(if pause { "pause" } else { "unpause" }, &c, &[]);
        Ok(c.id)
    }

    /// `berth top`: `ps` of the container's processes.
    pub fn top(&self, name: &str, ps_args: &[String]) -> Result<String> {
        let c = self.container(name)?;
        if c.state != State::Running {
            return Err(EngineError::conflict(
                ConflictKind::NotRunning,
                format!("Container {} is not running", c.id),
            ));
        }
        Ok(self.runtime(&c).ps(c.id.as_str(), ps_args)?)
    }

    pub fn rename(&self, name: &str, new_name: &str) -> Result<()> {
        if name.is_empty() || new_name.is_empty() {
            return Err(EngineError::Invalid(
                "Neither old nor new names may be empty".into(),
            ));
        }
        let c = self.container(name)?;
        if c.name == new_name.strip_prefix('/').unwrap_or(new_name) {
            return Err(EngineError::Invalid(
                "Renaming a container with the same name as its current name".into(),
            ));
        }
        let new_name = crate::lifecycle::check_new_name(new_name)?;
        self.containers.rename(&c.id, new_name)?;
        // Docker's rename event carries the new name, and the old as oldName.
        let renamed = Container {
            name: new_name.to_owned(),
            ..c.clone()
        };
        self.event("rename", &renamed, &[("oldName", format!("/{}", c.name))]);
        self.network_renamed();
        Ok(())
    }

    /// `berth container prune`: removes every stopped container.
    pub fn container_prune(&self) -> Result<(Vec<String>, u64)> {
        let mut removed = Vec::new();
        let mut reclaimed = 0;
        for c in self.container_records()? {
            if c.state == State::Running {
                continue;
            }
            reclaimed += self.layers.container_size(c.id.as_str()).unwrap_or(0);
            self.remove_container(&c.id)?;
            removed.push(c.id.to_string());
        }
        Ok((removed, reclaimed))
    }

    /// `berth rm [-f]`.
    pub fn rm(&self, name: &str, force: bool, volumes: bool) -> Result<()> {
        let c = self.container(name)?;
        if c.state == State::Running && !force {
            return Err(EngineError::conflict(ConflictKind::Running, format!(
                "You cannot remove a running container {}. Stop the container before attempting removal or force remove",
                c.id
            )));
        }
        // Marked first: a `rm` killed from here on leaves a record whose
        // removal the next command finishes (`reconcile`), never a record
        // whose storage is gone. A second `rm` meanwhile is refused.
        let me = berth_lease::Owner::current().map_err(|e| EngineError::Other(e.to_string()))?;
        if !self.containers.claim_removal(&c.id, &me)? {
            return Err(EngineError::conflict(
                ConflictKind::InProgress,
                format!("removal of container {name} is already in progress"),
            ));
        }
        if c.state == State::Running {
            let _ = std::fs::write(self.bundle_dir(&c.id).join("stop"), "");
            if self.runtime_kill(&c, "SIGKILL", true).is_ok() {
                self.event("kill", &c, &[("signal", "9".to_owned())]);
            }
            self.wait_down(&c.id, Duration::from_secs(10));
            // The exit is recorded before the monitor ends: a health check it
            // was running may still write into the run directory.
            self.wait_monitor_gone(&c.id, Duration::from_secs(10));
        }
        // Concurrent removals of one container: one of them wins, the others
        // wait for it and then find no container (Docker's "No such container").
        let claim = self.removal_claim(&c.id)?;
        if self.containers.resolve(c.id.as_str()).is_err() {
            drop(claim);
            // An --rm container may have removed itself meanwhile: that is the
            // removal asked for. Anything else was another `rm`'s.
            if c.config.auto_remove {
                return Ok(());
            }
            return Err(EngineError::no_such(Object::Container, name));
        }
        let removed = self.remove_container(&c.id);
        // Whether or not it worked: no lock file is left in RUN/locks.
        claim.done();
        removed?;
        if volumes {
            // `rm -v`: the container's anonymous volumes; named ones stay,
            // as in Docker (an --rm container removed by `rm` without -v
            // keeps them too).
            self.remove_anonymous_volumes(&c);
        }
        Ok(())
    }
}

/// Held while a container is being removed: an exclusive lock on
/// `RUN/locks/rm-ID` (released if the remover dies).
pub(crate) struct RemovalClaim {
    file: nix::fcntl::Flock<std::fs::File>,
    path: PathBuf,
}

impl RemovalClaim {
    /// The container is gone: the lock file goes too (whoever still waits on it
    /// finds no record once it has it, which is what decides).
    fn done(self) {
        let _ = std::fs::remove_file(&self.path);
        drop(self.file);
    }
}

/// Held while an exit of a container is cleaned up: an exclusive lock on
/// `RUN/locks/exit-ID` (released if the cleaner dies).
pub(crate) struct ExitClaim(RemovalClaim);

impl ExitClaim {
    /// The exit is recorded (or the container gone): whoever still waits on
    /// the lock finds that once it has it, which is what decides.
    fn done(self) {
        self.0.done();
    }
}

impl Engine {
    /// Takes the claim on cleaning up `id`'s exit: waits for it, or with
    /// `wait` false gives up (None) when another process holds it.
    pub(crate) fn exit_claim(&self, id: &ContainerId, wait: bool) -> Result<Option<ExitClaim>> {
        let how = if wait {
            nix::fcntl::FlockArg::LockExclusive
        } else {
            nix::fcntl::FlockArg::LockExclusiveNonblock
        };
        Ok(self
            .lock_in_locks(&format!("exit-{}", id.as_str()), how)?
            .map(ExitClaim))
    }

    /// An exclusive flock on `RUN/locks/NAME` (created if need be); None
    /// when it is held elsewhere and `how` does not wait.
    fn lock_in_locks(&self, name: &str, how: nix::fcntl::FlockArg) -> Result<Option<RemovalClaim>> {
        let dir = self.run.join("locks");
        crate::create_private_dir_all(&dir)?;
        let path = dir.join(name);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .context(|| format!("open {}", path.display()))?;
        match nix::fcntl::Flock::lock(file, how) {
            Ok(file) => Ok(Some(RemovalClaim { file, path })),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
            Err((_, e)) => Err(EngineError::Other(format!("lock {}: {e}", path.display()))),
        }
    }

    /// Waits for and takes the removal claim on `id`.
    pub(crate) fn removal_claim(&self, id: &ContainerId) -> Result<RemovalClaim> {
        self.lock_in_locks(
            &format!("rm-{}", id.as_str()),
            nix::fcntl::FlockArg::LockExclusive,
        )?
        .ok_or_else(|| EngineError::Other("the removal lock was not taken".into()))
    }
}

/// A signal as Docker's kill event names it: its number ("15").
fn signal_number(signal: &str) -> String {
    berth_runtime::container::parse_signal(signal)
        .map(|s| (s as i32).to_string())
        .unwrap_or_else(|_| signal.to_owned())
}

/// One json-file log line, shown as `docker logs` does.
/// An open log file being read: its inode (what tells it apart across renames)
/// and the unterminated end of what was read so far.
struct LogFile {
    file: std::fs::File,
    ino: u64,
    partial: Vec<u8>,
}

impl LogFile {
    fn open(path: &Path) -> Option<LogFile> {
        let file = std::fs::File::open(path).ok()?;
        let ino = std::os::unix::fs::MetadataExt::ino(&file.metadata().ok()?);
        Some(LogFile {
            file,
            ino,
            partial: Vec::new(),
        })
    }

    /// The whole lines written since the last call.
    fn read_lines(&mut self) -> Vec<String> {
        use std::io::Read;
        let _ = self.file.read_to_end(&mut self.partial);
        let Some(end) = self.partial.iter().rposition(|&b| b == b'\n') else {
            return Vec::new();
        };
        let rest = self.partial.split_off(end + 1);
        let whole = std::mem::replace(&mut self.partial, rest);
        String::from_utf8_lossy(&whole)
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// `PATH.1`, `PATH.2`, … as far as they go (at most `max - 1`), opened, oldest
/// first. A rotation renames them one by one from the oldest, so at most one
/// name in the run is missing at any moment: the scan stops at two.
fn rotated_logs(path: &Path, max: u32) -> Vec<LogFile> {
    let mut files = Vec::new();
    let mut missing = 0;
    for i in 1..max {
        match LogFile::open(Path::new(&format!("{}.{i}", path.display()))) {
            Some(f) => {
                missing = 0;
                files.push(f);
            }
            None => {
                missing += 1;
                if missing == 2 {
                    break;
                }
            }
        }
    }
    files.reverse();
    files
}

/// The log files that came after the one whose inode is `after` (all of them
/// when it is gone, or None), oldest first, ending with the current file: a
/// consistent view, taken again while a rotation moves the names.
fn log_successors(path: &Path, max: u32, after: Option<u64>) -> Vec<LogFile> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut files = rotated_logs(path, max);
        files.extend(LogFile::open(path));
        // Stable if the names still hold what was opened.
        let names = files.len();
        let again: Vec<u64> = rotated_logs(path, max)
            .into_iter()
            .chain(LogFile::open(path))
            .map(|f| f.ino)
            .collect();
        let stable = again.len() == names && again.iter().zip(&files).all(|(a, f)| *a == f.ino);
        if stable || attempt >= 20 {
            let start = after
                .and_then(|ino| files.iter().position(|f| f.ino == ino))
                .map_or(0, |p| p + 1);
            return files.split_off(start);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn emit(line: &str, o: &LogOptions, out: &mut dyn Write, err: &mut dyn Write) {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
        return;
    };
    let time = v["time"].as_str().unwrap_or("");
    if o.since.is_some() || o.until.is_some() {
        // To the nanosecond: `--since` the time of a line keeps that line.
        let t = humantime::parse_rfc3339_weak(time.trim_end_matches('Z'))
            .unwrap_or(SystemTime::UNIX_EPOCH);
        if o.since.is_some_and(|s| t < s) || o.until.is_some_and(|u| t > u) {
            return;
        }
    }
    let text = v["log"].as_str().unwrap_or("");
    let w: &mut dyn Write = if v["stream"] == "stderr" { err } else { out };
    if o.timestamps {
        let _ = write!(w, "{time} ");
    }
    let _ = w.write_all(text.as_bytes());
}
