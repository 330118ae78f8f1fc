//! The engine's helpers: ensure_running, reload, stop.
#![allow(clippy::unwrap_used)]

mod common;

use berth_dns::{ensure_running, log_path, reload, running, stop, DaemonError};
use common::*;
use std::path::Path;
use std::time::Duration;

#[test]
fn ensure_running_reload_and_stop() {
    let t = 40;
    let gw = ip(t, 0, 1);
    let client = ip(t, 0, 9);
    let dir = tempfile::tempdir().unwrap();
    let (rec, resolv, pid_file) = (
        dir.path().join("dns.records"),
        dir.path().join("resolv.conf"),
        dir.path().join("dns.pid"),
    );
    let mut r = RecordsFile::new();
    r.listen("n", gw)
        .unwrap()
        .host("n", ip(t, 0, 2), "web", &[] as &[&str])
        .unwrap();
    r.write(&rec).unwrap();
    std::fs::write(&resolv, "").unwrap();
    assert_eq!(running(&pid_file), None);
    assert!(!reload(&pid_file).unwrap());

    let pid = ensure_running(Path::new(BIN), &rec, &resolv, &pid_file).unwrap();
    // Serving as soon as it returns.
    assert_eq!(a(client, gw, "web"), Ok(vec![ip(t, 0, 2).to_string()]));
    assert_eq!(running(&pid_file), Some(pid));
    // A second call finds it.
    assert_eq!(
        ensure_running(Path::new(BIN), &rec, &resolv, &pid_file).unwrap(),
        pid
    );
    // Its own session.
    assert_eq!(nix::unistd::getsid(Some(pid)).unwrap(), pid);

    r.host("n", ip(t, 0, 3), "db", &[] as &[&str]).unwrap();
    r.write(&rec).unwrap();
    assert!(reload(&pid_file).unwrap());
    wait_until("the reload", Duration::from_secs(5), || {
        a(client, gw, "db").is_ok()
    });

    assert!(stop(&pid_file).unwrap());
    assert!(!alive(pid.as_raw()));
    assert!(!pid_file.exists());
    assert_eq!(running(&pid_file), None);
    assert!(!stop(&pid_file).unwrap());
    assert_eq!(std::fs::read_to_string(log_path(&pid_file)).unwrap(), "");
}

#[test]
fn a_stale_pid_file_is_not_trusted() {
    let t = 41;
    let dir = tempfile::tempdir().unwrap();
    let (rec, resolv, pid_file) = (
        dir.path().join("r"),
        dir.path().join("c"),
        dir.path().join("dns.pid"),
    );
    let mut r = RecordsFile::new();
    r.listen("n", ip(t, 0, 1)).unwrap();
    r.write(&rec).unwrap();
    std::fs::write(&resolv, "").unwrap();
    // Our own pid (not a berth-dns), then pid 1: neither is signalled.
    std::fs::write(&pid_file, format!("{}\n", std::process::id())).unwrap();
    assert_eq!(running(&pid_file), None);
    assert!(!reload(&pid_file).unwrap());
    std::fs::write(&pid_file, "1\n").unwrap();
    assert!(!stop(&pid_file).unwrap());
    assert!(!pid_file.exists());
    std::fs::write(&pid_file, "garbage").unwrap();
    let pid = ensure_running(Path::new(BIN), &rec, &resolv, &pid_file).unwrap();
    assert_eq!(
        std::fs::read_to_string(&pid_file).unwrap().trim(),
        pid.to_string()
    );
    assert!(stop(&pid_file).unwrap());
    assert!(!alive(pid.as_raw()));
}

#[test]
fn ensure_running_reports_why_it_could_not_start() {
    let dir = tempfile::tempdir().unwrap();
    let (rec, resolv, pid_file) = (
        dir.path().join("r"),
        dir.path().join("c"),
        dir.path().join("dns.pid"),
    );
    std::fs::write(&rec, "listen n\n").unwrap();
    let e = ensure_running(Path::new(BIN), &rec, &resolv, &pid_file).unwrap_err();
    assert!(matches!(e, DaemonError::Exited(_)), "{e:?}");
    assert_eq!(
        e.to_string(),
        format!(
            "berth-dns exited at start: {}: line 1: expected: listen NETWORK GATEWAY_IP",
            rec.display()
        )
    );
    assert!(!pid_file.exists());
    let e = ensure_running(&dir.path().join("nope"), &rec, &resolv, &pid_file).unwrap_err();
    assert!(e.to_string().starts_with("start "), "{e}");
}
