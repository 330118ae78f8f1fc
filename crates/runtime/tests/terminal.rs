//! Terminal mode: the pty master arrives over `--console-socket` (one
//! SCM_RIGHTS message, runc's protocol) and the container's stdio is the
//! slave; a foreground `run` without a socket relays the pty itself.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Ctr, Rt};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use serde_json::json;
use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixListener;
use std::sync::mpsc;
use std::time::Duration;

/// Receives one descriptor sent with SCM_RIGHTS on an accepted connection.
fn recv_fd(listener: &UnixListener) -> RawFd {
    let (conn, _) = listener.accept().unwrap();
    let mut buf = [0u8; 256];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .unwrap();
    for c in msg.cmsgs().unwrap() {
        if let ControlMessageOwned::ScmRights(fds) = c {
            assert_eq!(fds.len(), 1, "{fds:?}");
            return fds[0];
        }
    }
    panic!("no descriptor received on the console socket");
}

/// Reads the master until the slave side is gone (EIO) in a thread; the
/// text arrives on the returned channel.
fn read_master(fd: RawFd) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match nix::unistd::read(fd, &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => all.extend_from_slice(&buf[..n]),
            }
        }
        let _ = nix::unistd::close(fd);
        let _ = tx.send(String::from_utf8_lossy(&all).into_owned());
    });
    rx
}

#[test]
fn console_socket_receives_the_pty() {
    let rt = Rt::new();
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let mut c = Ctr::sh(
        &rt,
        "tty; test -t 0 && echo stdin-is-tty; test -t 1 && echo stdout-is-tty; \
         stty size",
    );
    c.edit_json(|v| {
        v["process"]["terminal"] = json!(true);
        v["process"]["consoleSize"] = json!({"height": 33, "width": 111});
    });
    rt.create(&c, &["--console-socket", sock.to_str().unwrap()])
        .ok();
    let master = recv_fd(&listener);
    let text = read_master(master);
    rt.out(&["start", &c.id]).ok();
    let out = text
        .recv_timeout(Duration::from_secs(20))
        .expect("the pty never closed");
    let lines: Vec<&str> = out.lines().map(|l| l.trim_end_matches('\r')).collect();
    assert_eq!(lines[0], "/dev/pts/0", "{out:?}");
    assert!(lines.contains(&"stdin-is-tty"), "{out:?}");
    assert!(lines.contains(&"stdout-is-tty"), "{out:?}");
    assert!(
        lines.contains(&"33 111"),
        "console size not applied: {out:?}"
    );
    // Nothing went to the runtime's own stdout.
    assert_eq!(c.stdout(), "");
    rt.wait_status(&c.id, "stopped");
    c.finish();
    rt.assert_empty();
}

#[test]
fn create_with_terminal_needs_console_socket() {
    let rt = Rt::new();
    let mut c = Ctr::sh(&rt, "true");
    c.edit_json(|v| v["process"]["terminal"] = json!(true));
    let line = rt.create(&c, &[]).fails_one_line();
    assert!(line.contains("--console-socket"), "{line}");
    c.assert_nothing_left();
    rt.assert_empty();
}

#[test]
fn foreground_run_relays_the_pty() {
    let rt = Rt::new();
    let mut c = Ctr::sh(&rt, "tty; test -t 1 && echo stdout-is-tty; exit 5");
    c.edit_json(|v| v["process"]["terminal"] = json!(true));
    let out = rt.run(&c);
    assert_eq!(out.code, Some(5), "{out:#?}");
    let lines: Vec<&str> = out
        .stdout
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .collect();
    assert_eq!(lines[0], "/dev/pts/0", "{out:#?}");
    assert!(lines.contains(&"stdout-is-tty"), "{out:#?}");
    c.finish();
    rt.assert_empty();
}

#[test]
fn exec_with_tty() {
    let rt = Rt::new();
    let c = Ctr::new(&rt, &["sleep", "1000"]);
    rt.run_detached(&c).ok();
    let out = rt.out(&["exec", "-t", &c.id, "sh", "-c", "tty; exit 3"]);
    assert_eq!(out.code, Some(3), "{out:#?}");
    assert!(out.stdout.trim_end().starts_with("/dev/pts/"), "{out:#?}");
    c.finish();
    rt.assert_empty();
}
