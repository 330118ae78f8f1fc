//! `--trace` on run, create, start and exec: every step berth's processes
//! take, on stderr as a timeline when the container starts (the rest when
//! the command ends), or with `--trace=FILE` as Chrome's trace-event JSON.
//! The processes write to a private file through berth-trace; this module
//! owns that file and turns it into the output.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

/// The trace of this command: where its processes write, where it began,
/// and where the result goes (None: stderr).
pub struct Session {
    events: PathBuf,
    output: Option<PathBuf>,
}

struct Shared {
    events: PathBuf,
    origin: u64,
}

static SHARED: OnceLock<Shared> = OnceLock::new();
/// The events the timeline on stderr has shown (a step that began before
/// the start but ended after it is written later, out of time order).
static PRINTED: Mutex<Vec<berth_trace::Event>> = Mutex::new(Vec::new());
/// The command has ended ([`Session::watch_for_start`] stops).
static FINISHED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

impl Session {
    /// Begins tracing when `--trace` was given (`Some("-")`: to stderr,
    /// `Some(FILE)`: Chrome JSON to FILE). Must run while berth has a single
    /// thread: it sets the variable its child processes inherit.
    pub fn begin(origin: u64, request: Option<&PathBuf>) -> std::io::Result<Option<Session>> {
        let Some(request) = request else {
            return Ok(None);
        };
        let output = (request.as_os_str() != "-").then(|| request.clone());
        if let Some(out) = &output {
            // A FILE that cannot be written fails now, not after the run.
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(out)
                .map_err(|e| {
                    std::io::Error::new(e.kind(), format!("--trace: {}: {e}", out.display()))
                })?;
        }
        let events = std::env::temp_dir().join(format!(
            "berth-trace-{}-{}.jsonl",
            std::process::id(),
            origin
        ));
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&events)?;
        std::env::set_var(berth_trace::ENV, &events);
        berth_trace::init_from_env(berth_trace::Process::Berth);
        let _ = SHARED.set(Shared {
            events: events.clone(),
            origin,
        });
        if output.is_none() {
            berth_trace::on_started(print_so_far);
        }
        berth_trace::instant("engine", "berth started", || {
            std::env::args().collect::<Vec<_>>().join(" ")
        });
        Ok(Some(Session { events, output }))
    }

    /// For a command whose container process another process starts (an
    /// exec's runtime): a thread that watches the events file and prints
    /// the timeline so far once that process records its start. Only after
    /// the engine no longer needs a single thread (never on `run`).
    pub fn watch_for_start(&self) {
        if self.output.is_some() {
            return;
        }
        let events = self.events.clone();
        let _ = std::thread::Builder::new()
            .name("trace-watch".into())
            .spawn(move || {
                while !FINISHED.load(std::sync::atomic::Ordering::Relaxed) {
                    let seen = berth_trace::read(&events).unwrap_or_default();
                    if seen.iter().any(|e| e.name == berth_trace::STARTED) {
                        print_so_far();
                        return;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
            });
    }

    /// Ends the trace: the rest of the timeline on stderr, or the JSON
    /// file; the events file goes.
    pub fn finish(self) {
        FINISHED.store(true, std::sync::atomic::Ordering::Relaxed);
        berth_trace::instant("engine", "berth done", String::new);
        let origin = SHARED.get().map_or(0, |s| s.origin);
        let events = berth_trace::read(&self.events).unwrap_or_default();
        match &self.output {
            None => print_from(&events, origin),
            Some(out) => {
                let json = berth_trace::chrome_json(&events, origin);
                let written = serde_json::to_vec_pretty(&json)
                    .map_err(std::io::Error::other)
                    .and_then(|b| std::fs::write(out, b));
                if let Err(e) = written {
                    eprintln!("berth: --trace: {}: {e}", out.display());
                }
            }
        }
        let _ = std::fs::remove_file(&self.events);
    }
}

/// The timeline up to now (the container has just started).
fn print_so_far() {
    if let Some(s) = SHARED.get() {
        let events = berth_trace::read(&s.events).unwrap_or_default();
        print_from(&events, s.origin);
    }
}

/// Prints the events not shown yet.
fn print_from(events: &[berth_trace::Event], origin: u64) {
    let Ok(mut printed) = PRINTED.lock() else {
        return;
    };
    let new: Vec<berth_trace::Event> = events
        .iter()
        .filter(|e| !printed.contains(e))
        .cloned()
        .collect();
    if new.is_empty() {
        return;
    }
    let first = printed.is_empty();
    printed.extend(new.iter().cloned());
    let mut text = berth_trace::timeline(&new, origin);
    if !first {
        // The header once.
        text = text
            .split_once('\n')
            .map_or(text.clone(), |(_, rest)| rest.to_owned());
    }
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes());
    let _ = err.flush();
}
