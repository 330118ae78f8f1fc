//! The state a container process starts in (issue 11, holes 1 and 5): its
//! own session with no controlling terminal (runc's init and exec call
//! setsid), every signal at its default disposition and an empty mask
//! (the runtime is a Rust program, which ignores SIGPIPE).
#![allow(clippy::unwrap_used)]

mod common;

use common::{Ctr, Rt};

const CLEAN: &str = "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n";

/// `sh -c` that prints the shell's pid, session and tty_nr
/// (/proc/self/stat read by the shell itself), then a child's signal state
/// (not the last command: busybox sh would run that in its own process,
/// with the SIGQUIT it ignores itself).
const REPORT: &str = "read -r s < /proc/self/stat; set -- ${s##*) }; \
     echo \"pid=$$ sid=$4 tty=$5\"; grep -E '^Sig(Ign|Blk)' /proc/self/status; true";

#[track_caller]
fn check(what: &str, out: &str) {
    let (first, sigs) = out.split_once('\n').unwrap_or((out, ""));
    let field = |k: &str| {
        first
            .split(' ')
            .find_map(|f| f.strip_prefix(k))
            .unwrap_or_else(|| panic!("{what}: no {k} in {out:?}"))
            .to_owned()
    };
    assert_eq!(
        field("pid="),
        field("sid="),
        "{what}: not its own session: {out:?}"
    );
    assert_eq!(
        field("tty="),
        "0",
        "{what}: has a controlling terminal: {out:?}"
    );
    assert_eq!(sigs, CLEAN, "{what}: {out:?}");
}

#[test]
fn init_and_exec_start_clean() {
    let rt = Rt::new();
    // Foreground run.
    let c = Ctr::sh(&rt, REPORT);
    let out = rt.run(&c);
    check("run", out.ok());
    c.finish();

    // Detached run, then exec (foreground and detached).
    let c = Ctr::sh(
        &rt,
        &format!("{{ {REPORT}; }} > /tmp/init; exec sleep 1000"),
    );
    rt.run_detached(&c).ok();
    let out = rt.out(&["exec", &c.id, "sh", "-c", REPORT]);
    check("exec", out.ok());
    let out = rt.out(&[
        "exec",
        "--detach",
        &c.id,
        "sh",
        "-c",
        &format!("{{ {REPORT}; }} > /tmp/exec-d"),
    ]);
    out.ok();
    for (what, file) in [
        ("run --detach", "/tmp/init"),
        ("exec --detach", "/tmp/exec-d"),
    ] {
        let mut report = String::new();
        let done = common::poll(std::time::Duration::from_secs(10), || {
            report = std::fs::read_to_string(c.rootfs().join(&file[1..])).unwrap_or_default();
            report.contains("SigBlk")
        });
        assert!(done, "{what}: no report: {report:?}");
        check(what, &report);
    }
    c.finish();
    rt.assert_empty();
}
