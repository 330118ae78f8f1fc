//! `fork_detached` for real: a single-threaded process (this test has no
//! harness, so no thread but main) forks a child that keeps nothing of the
//! caller's (session, terminal, descriptors, signal mask), and a process with
//! a second thread is refused.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn wait_for(path: &Path, secs: u64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !path.exists() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

/// What the child sees of itself: `key=value` lines.
fn report() -> String {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, r)| r.split_whitespace().collect())
        .unwrap_or_default();
    // Fields from 3 on: pid's session is field 6, tty_nr field 7.
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let sigblk = status
        .lines()
        .find_map(|l| l.strip_prefix("SigBlk:"))
        .unwrap_or("?")
        .trim()
        .to_owned();
    let mut fds = Vec::new();
    let dir = std::fs::read_dir("/proc/self/fd").expect("read /proc/self/fd");
    for e in dir.flatten() {
        let target = std::fs::read_link(e.path()).unwrap_or_default();
        fds.push(format!(
            "{}:{}",
            e.file_name().to_string_lossy(),
            target.display()
        ));
    }
    fds.sort();
    format!(
        "pid={}\nsid={}\ntty={}\nsigblk={sigblk}\ncomm={}\nfds={}\n",
        std::process::id(),
        fields.get(3).unwrap_or(&"?"),
        fields.get(4).unwrap_or(&"?"),
        std::fs::read_to_string("/proc/self/comm")
            .unwrap_or_default()
            .trim(),
        fds.join(",")
    )
}

fn field<'a>(report: &'a str, key: &str) -> &'a str {
    report
        .lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
        .unwrap_or_else(|| panic!("no {key} in {report}"))
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let go = dir.path().join("go");
    let out: PathBuf = dir.path().join("report");

    // A pipe whose write end this process keeps open across the fork (no
    // CLOEXEC), as a caller's stdout pipe is: the child must not hold it.
    let (r, w) = nix::unistd::pipe().expect("pipe");
    let mut reader = std::fs::File::from(r);
    // A signal blocked here must not be blocked in the child.
    let mut blocked = nix::sys::signal::SigSet::empty();
    blocked.add(nix::sys::signal::Signal::SIGTERM);
    nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_BLOCK,
        Some(&blocked),
        None,
    )
    .expect("sigprocmask");

    let (go_c, out_c) = (go.clone(), out.clone());
    let forked = berth_storage::fork_detached(move || {
        // Waits for the parent to have seen the pipe's end: that happens
        // only if this child does not hold its write end.
        if !wait_for(&go_c, 60) {
            return 2;
        }
        let tmp = out_c.with_extension("tmp");
        if std::fs::write(&tmp, report()).is_err() || std::fs::rename(&tmp, &out_c).is_err() {
            return 3;
        }
        0
    })
    .expect("fork_detached");
    assert!(forked, "a single-threaded process forks");

    drop(w);
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest).expect("read the pipe");
    // Only now may the child go on: had it kept the pipe, read_to_end would
    // still be waiting for its end (and the child would give up, status 2).
    std::fs::write(&go, b"").expect("write go");
    let status = nix::sys::wait::waitpid(None, None).expect("waitpid");
    assert!(
        matches!(status, nix::sys::wait::WaitStatus::Exited(_, 0)),
        "child: {status:?}"
    );
    let report = std::fs::read_to_string(&out).expect("the child's report");
    let me = std::process::id().to_string();
    let child = field(&report, "pid");
    assert_ne!(child, me, "{report}");
    assert_eq!(
        field(&report, "sid"),
        child,
        "a session of its own: {report}"
    );
    assert_eq!(
        field(&report, "tty"),
        "0",
        "no controlling terminal: {report}"
    );
    assert_eq!(
        field(&report, "sigblk"),
        "0000000000000000",
        "an empty signal mask: {report}"
    );
    assert_eq!(field(&report, "comm"), "berth-deleter", "{report}");
    // stdio on /dev/null; beyond those only the descriptor that read
    // /proc/self/fd itself.
    let fds: Vec<&str> = field(&report, "fds").split(',').collect();
    for std_fd in ["0:/dev/null", "1:/dev/null", "2:/dev/null"] {
        assert!(fds.contains(&std_fd), "{report}");
    }
    assert!(fds.len() <= 4, "no descriptor of the caller's: {report}");

    // With a second thread, no fork.
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let t = std::thread::spawn(move || {
        let _ = rx.recv();
    });
    let forked = berth_storage::fork_detached(|| 0).expect("fork_detached");
    assert!(!forked, "a process with two threads must not fork");
    let _ = tx.send(());
    let _ = t.join();
    println!("fork_detached: 2 passed, 0 failed");
}
