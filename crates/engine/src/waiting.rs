//! Docker's `POST /containers/{id}/wait?condition=`: block until the
//! container is not running, until its next exit, or until it is removed,
//! and report the exit status. The status outlives an `--rm` container in
//! its `die` event, so a waiter that comes back after the record is gone
//! still learns it (podman loses it there: its #18889).

use crate::containers::State;
use crate::error::{EngineError, Result};
use crate::{ContainerId, Engine};
use std::time::{Duration, SystemTime};

/// What a waiter waits for (Docker's `container.WaitCondition`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitCondition {
    /// Return at once for a container that is not running (the default).
    NotRunning,
    /// The exit after this call, even of a container not yet started.
    NextExit,
    /// The exit, and then the record's removal (`run --rm`).
    Removed,
}

impl WaitCondition {
    /// The API's words; anything else is Docker's 400.
    pub fn parse(s: &str) -> Result<WaitCondition> {
        match s {
            "" | "not-running" => Ok(WaitCondition::NotRunning),
            "next-exit" => Ok(WaitCondition::NextExit),
            "removed" => Ok(WaitCondition::Removed),
            other => Err(EngineError::Invalid(format!(
                "invalid condition: \"{other}\""
            ))),
        }
    }
}

/// Where a wait begins: taken before the caller answers, so an exit that
/// happens while the answer's headers travel still counts.
#[derive(Debug, Clone)]
pub struct WaitStart {
    id: ContainerId,
    since_ns: i64,
    state: State,
    exit_code: i32,
    /// The start error recorded when the wait began (a new one means a
    /// start that failed meanwhile: that is the exit waited for).
    error: Option<String>,
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

impl Engine {
    /// Notes the first die of the waited-for container among `events`: the
    /// exit waited for (the die of an exit is recorded once, by the cleanup
    /// that wins it).
    fn first_die(
        w: &WaitStart,
        events: Vec<crate::containers::Event>,
        after_seq: &mut i64,
        died: &mut Option<i32>,
    ) {
        for e in events {
            *after_seq = e.seq;
            if died.is_none()
                && e.typ == "container"
                && e.action == "die"
                && e.actor == w.id.as_str()
            {
                *died = e.attributes.get("exitCode").and_then(|c| c.parse().ok());
            }
        }
    }

    /// Resolves the container (a 404 before anything is sent) and notes the
    /// moment the wait starts.
    pub fn wait_start(&self, name: &str) -> Result<WaitStart> {
        let c = self.container(name)?;
        Ok(WaitStart {
            id: c.id,
            since_ns: now_ns(),
            state: c.state,
            exit_code: c.exit_code.unwrap_or(0),
            error: c.error,
        })
    }

    /// Blocks until `cond` holds; the container's exit status.
    pub fn wait_until(&self, w: &WaitStart, cond: WaitCondition) -> Result<i32> {
        self.wait_until_or_cancel(w, cond, &std::sync::atomic::AtomicBool::new(false))
    }

    /// `wait_until`, ended early (an error) once `cancel` is set: the API
    /// server's waiter whose client went away.
    pub fn wait_until_or_cancel(
        &self,
        w: &WaitStart,
        cond: WaitCondition,
        cancel: &std::sync::atomic::AtomicBool,
    ) -> Result<i32> {
        if cond == WaitCondition::NotRunning && w.state != State::Running {
            return Ok(w.exit_code);
        }
        let mut after_seq = 0;
        let mut died: Option<i32> = None;
        let mut last_code = w.exit_code;
        let mut polls = 0u32;
        let mut polls_since_die = 0u32;
        let mut transient = 0u32;
        loop {
            // A read that fails (the database busy past its timeout under
            // many writers) is tried again: a waiter outlives hiccups.
            let events = match self.containers.events(after_seq, w.since_ns, i64::MAX) {
                Ok(ev) => ev,
                Err(e) => {
                    transient += 1;
                    if transient > 200 {
                        return Err(e);
                    }
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
            };
            Self::first_die(w, events, &mut after_seq, &mut died);
            match self.containers.resolve(w.id.as_str()) {
                Ok(mut now) => {
                    self.reconcile(&mut now);
                    last_code = now.exit_code.unwrap_or(last_code);
                    let failed_start =
                        now.state != State::Running && now.error.is_some() && now.error != w.error;
                    if let Some(code) = died {
                        // Docker's wait answers once the container is down
                        // (its cleanup follows the die event, and takes its
                        // time on a loaded machine); a restart policy may
                        // run it again at once, hence the bound there.
                        polls_since_die += 1;
                        let restarts = now
                            .config
                            .restart
                            .as_deref()
                            .is_some_and(|r| !r.is_empty() && r != "no");
                        if cond != WaitCondition::Removed
                            && (now.state != State::Running || (restarts && polls_since_die > 100))
                        {
                            return Ok(code);
                        }
                    } else if (failed_start && cond != WaitCondition::Removed)
                        || (cond == WaitCondition::NotRunning && now.state != State::Running)
                    {
                        return Ok(last_code);
                    }
                }
                Err(e) if e.is_not_found(crate::error::Object::Container) => {
                    // Removed since the events were read: its die (recorded
                    // before the removal) is among the events that came
                    // meanwhile.
                    if died.is_none() {
                        if let Ok(events) = self.containers.events(after_seq, w.since_ns, i64::MAX)
                        {
                            Self::first_die(w, events, &mut after_seq, &mut died);
                        }
                    }
                    return Ok(died.unwrap_or(last_code));
                }
                Err(e) => {
                    transient += 1;
                    if transient > 200 {
                        return Err(e);
                    }
                }
            }
            // Polled, not attached to the monitor: a waiter must never be
            // the first attach client that a `start` with an attach
            // pending waits for (Docker's CLI waits before it starts).
            polls += 1;
            if cancel.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(EngineError::Other("the wait was cancelled".into()));
            }
            std::thread::sleep(Duration::from_millis(if polls < 200 { 5 } else { 50 }));
        }
    }
}
