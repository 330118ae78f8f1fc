//! Docker's health checks, run by the monitor: the check command is
//! exec'd in the container every interval through the runtime; its result
//! (with the last five outputs) is written to the run directory's `health`
//! file as JSON for `ps` and `inspect`.

use nix::unistd::Pid;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct HealthConfig {
    /// The check as the runtime's exec arguments.
    pub argv: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub start_period: Duration,
    pub retries: u32,
    /// Run with the new status appended when the status changes (berth's
    /// `container health-event ID`: Docker's `health_status` event).
    pub event_command: Vec<String>,
    /// The runtime is given the check as a process file: no arguments.
    pub argv_in_process: bool,
}

struct Probe {
    child: Child,
    started: Instant,
    started_at: String,
}

pub struct Health {
    cfg: HealthConfig,
    file: PathBuf,
    status: &'static str,
    streak: u32,
    log: Vec<String>,
    began: Instant,
    next: Instant,
    running: Option<Probe>,
}

fn json_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    crate::log::escape_into(&mut o, s);
    o
}

impl Health {
    pub fn new(cfg: HealthConfig, file: PathBuf) -> Health {
        let now = Instant::now();
        let h = Health {
            next: now + cfg.interval,
            cfg,
            file,
            status: "starting",
            streak: 0,
            log: Vec::new(),
            began: now,
            running: None,
        };
        h.save();
        h
    }

    /// How long `poll` may sleep before the next thing to do.
    pub fn timeout(&self) -> Duration {
        let now = Instant::now();
        let due = match &self.running {
            Some(p) => p.started + self.cfg.timeout,
            None => self.next,
        };
        due.saturating_duration_since(now)
    }

    /// Ends a check still running when the container has exited: its
    /// runtime process writes into the run directory, which must be quiet
    /// once the monitor reports the exit.
    pub fn abandon(&mut self) {
        if let Some(mut p) = self.running.take() {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
    }

    /// Starts a due check, or kills one that ran out of time.
    pub fn tick(&mut self, runtime: &mut dyn FnMut() -> Command) {
        let now = Instant::now();
        if let Some(p) = &mut self.running {
            if now >= p.started + self.cfg.timeout {
                let _ = p.child.kill();
                let pid = p.child.id() as i32;
                // The reaper in the main loop collects it; record it now.
                let started_at = p.started_at.clone();
                self.running = None;
                self.record(
                    &started_at,
                    -1,
                    &format!("Health check exceeded timeout ({:?})", self.cfg.timeout),
                );
                let _ = pid;
            }
            return;
        }
        if now < self.next {
            return;
        }
        self.next = now + self.cfg.interval;
        let mut cmd = runtime();
        if !self.cfg.argv_in_process {
            cmd.args(&self.cfg.argv);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        match cmd.spawn() {
            Ok(child) => {
                self.running = Some(Probe {
                    child,
                    started: now,
                    started_at: crate::log::rfc3339_now(),
                })
            }
            Err(e) => {
                let t = crate::log::rfc3339_now();
                self.record(&t, -1, &format!("cannot run the health check: {e}"));
            }
        }
    }

    /// Whether `pid` is the running check; if so, records its result.
    pub fn reaped(&mut self, pid: Pid, code: i32) -> bool {
        let Some(p) = &mut self.running else {
            return false;
        };
        if p.child.id() as i32 != pid.as_raw() {
            return false;
        }
        let mut out = String::new();
        if let Some(mut o) = p.child.stdout.take() {
            let _ = o.read_to_string(&mut out);
        }
        if let Some(mut e) = p.child.stderr.take() {
            let _ = e.read_to_string(&mut out);
        }
        out.truncate(4096);
        let started_at = p.started_at.clone();
        self.running = None;
        self.record(&started_at, code, &out);
        true
    }

    fn record(&mut self, started_at: &str, code: i32, output: &str) {
        let before = self.status;
        if code == 0 {
            self.status = "healthy";
            self.streak = 0;
        } else if self.began.elapsed() >= self.cfg.start_period {
            self.streak += 1;
            if self.streak >= self.cfg.retries.max(1) {
                self.status = "unhealthy";
            }
        }
        self.log.push(format!(
            "{{\"Start\":\"{started_at}\",\"End\":\"{}\",\"ExitCode\":{code},\"Output\":\"{}\"}}",
            crate::log::rfc3339_now(),
            json_escape(output)
        ));
        if self.log.len() > 5 {
            self.log.remove(0);
        }
        if self.status != before {
            // Recorded before the file shows the new status, so whoever
            // sees it finds the event too.
            self.report(self.status);
        }
        self.save();
    }

    /// Runs the event command for `status`, waiting a bounded time for it
    /// (the main loop's reaper collects it if it takes longer).
    fn report(&self, status: &str) {
        let Some((cmd, rest)) = self.cfg.event_command.split_first() else {
            return;
        };
        let Ok(mut child) = Command::new(cmd)
            .args(rest)
            .arg(status)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        else {
            return;
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            match child.try_wait() {
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                _ => return,
            }
        }
    }

    fn save(&self) {
        let text = format!(
            "{{\"Status\":\"{}\",\"FailingStreak\":{},\"Log\":[{}]}}\n",
            self.status,
            self.streak,
            self.log.join(",")
        );
        // The checks' output may hold secrets: 0600, as every monitor file.
        crate::write_atomic(&self.file, &text);
    }
}
