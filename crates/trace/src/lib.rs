//! berth-trace: the timeline behind `--trace`.
//!
//! Several processes take part in starting a container: berth itself (the
//! engine, storage, network), berth-runtime (in berth's process on the
//! foreground fast path, a program otherwise), the container's init (a
//! child of the runtime until it execs the user's program) and the monitor.
//! Each appends one JSON line per step to the file named by [`ENV`], opened
//! once with `O_APPEND` and close-on-exec: the kernel makes each such write
//! of a line whole (the lines are short), so the processes need no other
//! coordination, and a child born by fork or clone writes through the
//! descriptor it inherited (the container's init does so after pivot_root,
//! where the path no longer resolves). Times are the realtime clock in ns, one
//! clock for every process. The front end reads the file back ([`read`]), prints
//! a timeline ([`timeline`]) or writes Chrome's trace-event JSON
//! ([`chrome_json`]).
//!
//! Off (no [`ENV`] in the environment when [`init_from_env`] ran) every step
//! costs one relaxed atomic load: details are closures, never formatted.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU8, Ordering};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// The environment variable naming the trace file of a command and of every
/// process it starts.
pub const ENV: &str = "BERTH_TRACE";

static ON: AtomicBool = AtomicBool::new(false);
static FILE: OnceLock<File> = OnceLock::new();
static PROCESS: AtomicU8 = AtomicU8::new(Process::Berth as u8);
static ON_STARTED: OnceLock<fn()> = OnceLock::new();
/// The pid as the host sees it, once this process is in a pid namespace of
/// its own (where getpid says 1); 0: getpid's.
static HOST_PID: AtomicU32 = AtomicU32::new(0);

/// Which of berth's processes a step ran in: a track of its own in the
/// trace viewer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[repr(u8)]
pub enum Process {
    Berth = 0,
    Runtime = 1,
    Init = 2,
    Monitor = 3,
    Exec = 4,
}

impl Process {
    fn from_u8(v: u8) -> Process {
        match v {
            1 => Process::Runtime,
            2 => Process::Init,
            3 => Process::Monitor,
            4 => Process::Exec,
            _ => Process::Berth,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Process::Berth => "berth",
            Process::Runtime => "runtime",
            Process::Init => "init",
            Process::Monitor => "monitor",
            Process::Exec => "exec",
        }
    }
}

/// One step: when it began (ns since the epoch), how long it took, in
/// which process, what it was and what it concerned (the file, the system
/// call's arguments).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub ts: u64,
    pub dur: u64,
    pub pid: u32,
    /// The thread (steps of two threads of one process overlap).
    #[serde(default)]
    pub tid: u32,
    pub process: Process,
    pub cat: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// Whether steps are being recorded.
#[inline]
pub fn enabled() -> bool {
    ON.load(Ordering::Relaxed)
}

/// Starts recording if [`ENV`] names a file (created if missing, 0600).
/// Called once at the start of each of berth's programs; later calls do
/// nothing. An unusable file leaves tracing off: a trace never fails the
/// command it observes.
pub fn init_from_env(process: Process) {
    set_process(process);
    if FILE.get().is_some() {
        return;
    }
    let Some(path) = std::env::var_os(ENV).filter(|p| !p.is_empty()) else {
        return;
    };
    let file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path);
    if let Ok(f) = file {
        if FILE.set(f).is_ok() {
            ON.store(true, Ordering::Relaxed);
        }
    }
}

/// Stops recording in this process (the container's init once a seccomp
/// filter is in: the filter may forbid or notify the trace's writes).
pub fn stop() {
    ON.store(false, Ordering::Relaxed);
}

/// Names the process the following steps run in (the runtime's child says
/// it is the container's init right after the clone, while /proc is still
/// the host's: its pid is read there, since getpid answers in the
/// container's pid namespace).
pub fn set_process(process: Process) {
    PROCESS.store(process as u8, Ordering::Relaxed);
    if enabled() && matches!(process, Process::Init | Process::Exec) {
        let host = std::fs::read_link("/proc/self")
            .ok()
            .and_then(|p| p.to_str().and_then(|s| s.parse().ok()))
            .unwrap_or(0);
        HOST_PID.store(host, Ordering::Relaxed);
    }
}

fn pid() -> u32 {
    match HOST_PID.load(Ordering::Relaxed) {
        0 => std::process::id(),
        p => p,
    }
}

/// Now, in nanoseconds since the epoch: the clock every process shares
/// (CLOCK_REALTIME through the vDSO; NTP slews it by microseconds per
/// second at most, nothing over a container's start).
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A step under way: recorded when it ends ([`Span::end`] or drop).
#[must_use = "a span records its step when dropped"]
pub struct Span(Option<Open>);

struct Open {
    start: u64,
    cat: &'static str,
    name: &'static str,
    detail: String,
}

/// Begins a step of category `cat` (engine, storage, network, cgroup,
/// runtime, mount, process...).
#[inline]
pub fn span(cat: &'static str, name: &'static str) -> Span {
    if !enabled() {
        return Span(None);
    }
    Span(Some(Open {
        start: now(),
        cat,
        name,
        detail: String::new(),
    }))
}

impl Span {
    /// What the step concerns; `f` runs only while tracing.
    #[inline]
    pub fn detail(mut self, f: impl FnOnce() -> String) -> Span {
        if let Some(o) = &mut self.0 {
            o.detail = f();
        }
        self
    }

    /// Sets the detail once it is known (the step's result).
    #[inline]
    pub fn set_detail(&mut self, f: impl FnOnce() -> String) {
        if let Some(o) = &mut self.0 {
            o.detail = f();
        }
    }

    /// Ends the step now.
    pub fn end(self) {}
}

impl Drop for Span {
    fn drop(&mut self) {
        if let Some(o) = self.0.take() {
            emit(o.cat, o.name, o.start, now(), o.detail);
        }
    }
}

/// Records a step without duration (the last one before execve, a
/// decision).
#[inline]
pub fn instant(cat: &'static str, name: &'static str, detail: impl FnOnce() -> String) {
    if !enabled() {
        return;
    }
    let at = now();
    emit(cat, name, at, at, detail());
}

/// The instant [`started`] records.
pub const STARTED: &str = "container started";

/// What the front end does when the container's program has started in
/// this process (a foreground run prints the timeline then).
pub fn on_started(f: fn()) {
    let _ = ON_STARTED.set(f);
}

/// The container's program runs (its execve succeeded): marks the moment
/// and runs what [`on_started`] registered.
pub fn started() {
    if !enabled() {
        return;
    }
    instant("runtime", STARTED, String::new);
    if let Some(f) = ON_STARTED.get() {
        f();
    }
}

/// Records a step measured by the caller (from `start`, a [`now`], to now).
pub fn record(cat: &'static str, name: &'static str, start: u64, detail: impl FnOnce() -> String) {
    if !enabled() {
        return;
    }
    emit(cat, name, start, now(), detail());
}

/// Writes the step from `start` to `end` of this process and thread.
fn emit(cat: &str, name: &str, start: u64, end: u64, detail: String) {
    write_event(&Event {
        ts: start,
        dur: end.saturating_sub(start),
        pid: pid(),
        tid: tid(),
        process: Process::from_u8(PROCESS.load(Ordering::Relaxed)),
        cat: cat.to_owned(),
        name: name.to_owned(),
        detail,
    });
}

fn tid() -> u32 {
    // A process in its own pid namespace (init, exec) has one thread.
    match HOST_PID.load(Ordering::Relaxed) {
        0 => u32::try_from(nix::unistd::gettid().as_raw()).unwrap_or(0),
        p => p,
    }
}

fn write_event(e: &Event) {
    let Some(mut f) = FILE.get() else {
        return;
    };
    if let Ok(mut line) = serde_json::to_vec(e) {
        line.push(b'\n');
        // One write(2) per line: O_APPEND keeps it whole among the other
        // processes' lines.
        let _ = f.write_all(&line);
    }
}

/// The events of a trace file, in time order (a line cut short by a
/// killed process is skipped).
pub fn read(path: &Path) -> std::io::Result<Vec<Event>> {
    let f = File::open(path)?;
    let mut events: Vec<Event> = BufReader::new(f)
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| serde_json::from_str(&l).ok())
        .collect();
    sort(&mut events);
    Ok(events)
}

/// Time order; at the same start the longer (enclosing) step first.
fn sort(events: &mut [Event]) {
    events.sort_by(|a, b| a.ts.cmp(&b.ts).then(b.dur.cmp(&a.dur)));
}

/// Each event's depth: how many steps of the same thread enclose it.
fn depths(events: &[Event]) -> Vec<usize> {
    let mut open: Vec<(u32, u64)> = Vec::new(); // (tid, end) of enclosing steps
    events
        .iter()
        .map(|e| {
            open.retain(|&(tid, end)| tid != e.tid || end > e.ts);
            let depth = open
                .iter()
                .filter(|&&(tid, end)| tid == e.tid && end >= e.ts + e.dur)
                .count();
            if e.dur > 0 {
                open.push((e.tid, e.ts + e.dur));
            }
            depth
        })
        .collect()
}

fn ms(ns: u64) -> String {
    format!("{:.3}", ns as f64 / 1e6)
}

/// The timeline berth prints on stderr: one line per step, from `origin`
/// (the command's start), its duration, the process, and the step indented
/// under the steps that enclose it.
pub fn timeline(events: &[Event], origin: u64) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>9} {:>9}  {:<8} {:<8} STEP",
        "AT(ms)", "TOOK(ms)", "PROCESS", "KIND"
    );
    for (e, depth) in events.iter().zip(depths(events)) {
        let step = format!("{}{}", "  ".repeat(depth), e.name);
        let _ = write!(
            out,
            "{:>9} {:>9}  {:<8} {:<8} {}",
            ms(e.ts.saturating_sub(origin)),
            if e.dur == 0 {
                "-".to_owned()
            } else {
                ms(e.dur)
            },
            e.process.name(),
            e.cat,
            step
        );
        if !e.detail.is_empty() {
            let _ = write!(out, "  {}", e.detail);
        }
        out.push('\n');
    }
    out
}

/// Chrome's trace-event format (Perfetto and chrome://tracing open it):
/// complete events ("X") in microseconds from `origin`, one track per
/// process, named.
pub fn chrome_json(events: &[Event], origin: u64) -> serde_json::Value {
    let us = |ns: u64| ns as f64 / 1000.0;
    let mut out: Vec<serde_json::Value> = Vec::new();
    let mut named: Vec<u32> = Vec::new();
    for e in events {
        if !named.contains(&e.pid) {
            named.push(e.pid);
            let name = format!("{} (pid {})", e.process.name(), e.pid);
            out.push(serde_json::json!({
                "ph": "M", "name": "process_name", "pid": e.pid, "tid": e.pid,
                "args": { "name": name }
            }));
            out.push(serde_json::json!({
                "ph": "M", "name": "process_sort_index", "pid": e.pid, "tid": e.pid,
                "args": { "sort_index": named.len() }
            }));
        }
        let mut ev = serde_json::json!({
            "name": e.name,
            "cat": e.cat,
            "ph": if e.dur == 0 { "i" } else { "X" },
            "ts": us(e.ts.saturating_sub(origin)),
            "pid": e.pid,
            "tid": e.tid,
        });
        if e.dur > 0 {
            ev["dur"] = serde_json::json!(us(e.dur));
        } else {
            ev["s"] = serde_json::json!("t");
        }
        if !e.detail.is_empty() {
            ev["args"] = serde_json::json!({ "detail": e.detail });
        }
        out.push(ev);
    }
    serde_json::json!({ "traceEvents": out, "displayTimeUnit": "ms" })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(ts: u64, dur: u64, pid: u32, name: &str) -> Event {
        Event {
            ts,
            dur,
            pid,
            tid: pid,
            process: Process::Berth,
            cat: "engine".into(),
            name: name.into(),
            detail: String::new(),
        }
    }

    #[test]
    fn enclosed_steps_are_indented_per_process() {
        let mut events = vec![
            ev(10, 5, 1, "inner"),
            ev(0, 100, 1, "outer"),
            ev(20, 1, 2, "other process"),
            ev(200, 1, 1, "after"),
        ];
        sort(&mut events);
        let names: Vec<&str> = events.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["outer", "inner", "other process", "after"]);
        assert_eq!(depths(&events), [0, 1, 0, 0]);
        let t = timeline(&events, 0);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[1].ends_with("engine   outer"), "{t}");
        assert!(lines[2].ends_with("engine     inner"), "{t}");
    }

    #[test]
    fn chrome_json_has_complete_events_and_named_tracks() {
        let events = vec![ev(1_000, 2_000, 7, "a"), ev(5_000, 0, 8, "b")];
        let j = chrome_json(&events, 1_000);
        let evs = j["traceEvents"].as_array().expect("array");
        let a = evs.iter().find(|e| e["name"] == "a").expect("a");
        assert_eq!(a["ph"], "X");
        assert_eq!(a["ts"], 0.0);
        assert_eq!(a["dur"], 2.0);
        let b = evs.iter().find(|e| e["name"] == "b").expect("b");
        assert_eq!(b["ph"], "i");
        assert!(evs
            .iter()
            .any(|e| e["ph"] == "M" && e["pid"] == 8 && e["args"]["name"] == "berth (pid 8)"));
    }

    #[test]
    fn a_line_cut_short_is_skipped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("t");
        let good = serde_json::to_string(&ev(5, 1, 1, "x")).expect("json");
        std::fs::write(&p, format!("{good}\n{{\"ts\":3,\"du")).expect("write");
        let events = read(&p).expect("read");
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].name, "x");
    }
}
