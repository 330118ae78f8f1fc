//! Issue 13: berth's API server under bad input and rough handling. Malformed and
//! mistyped bodies, unknown fields, huge bodies, half-sent requests, dropped hijacked
//! connections, unknown routes and API versions; its life cycle (idle exit while a
//! container runs, a stream keeping it alive, SIGTERM, SIGKILL mid-stream and a new
//! server seeing everything, socket activation, TCP on loopback only); and concurrent
//! clients with nothing leaked. No test asserts a duration.
#![allow(clippy::unwrap_used)]

#[path = "common/api.rs"]
mod api;
mod common;

use api::{parse_response, raw, Service};
use common::{wait_until, Berth};
use std::io::{Read, Write};
use std::process::Stdio;
use std::time::Duration;

const JSON: &str = "Content-Type: application/json";

/// A response's error message, asserting Docker's JSON error shape on one line.
fn one_line_error(r: &api::Raw) -> String {
    assert_eq!(
        r.header("Content-Type").as_deref(),
        Some("application/json"),
        "{r:?}"
    );
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let m = v["message"].as_str().unwrap().to_owned();
    assert!(!m.is_empty() && !m.contains('\n'), "{m:?}");
    m
}

fn containers(b: &Berth) -> String {
    b.ok(&["ps", "-aq"])
}

#[test]
fn bad_bodies_get_400_and_make_nothing() {
    let (b, s) = api::busybox_service();
    let create = "/v1.44/containers/create";
    for body in [
        &b"{"[..],
        b"{\"Image\": \"busybox\", \"Cmd\": [\"true\"]",
        b"[1, 2]",
        b"\xff\xfe",
        b"{\"Image\": 5}",
        b"{\"Image\": \"busybox\", \"Cmd\": \"not-a-list\", \"Tty\": \"yes\"}",
        b"{\"Image\": \"busybox\", \"HostConfig\": {\"Memory\": \"lots\"}}",
        b"{\"Image\": \"busybox\", \"Env\": [1]}",
    ] {
        let r = s.request("POST", create, &[JSON], body).unwrap();
        assert_eq!(r.status, 400, "{} -> {r:?}", String::from_utf8_lossy(body));
        one_line_error(&r);
    }
    // A body that is JSON but not a valid container: 400 too (no image).
    let r = s.request("POST", create, &[JSON], b"{}").unwrap();
    assert!(r.status == 400 || r.status == 404, "{r:?}");
    one_line_error(&r);
    assert_eq!(containers(&b), "");
    // Unknown fields are ignored, as Docker's decoder does.
    let r = s
        .request(
            "POST",
            "/v1.44/containers/create?name=unk",
            &[JSON],
            br#"{"Image":"busybox","Cmd":["true"],"Bogus":1,"HostConfig":{"Nope":{"x":[1]}}}"#,
        )
        .unwrap();
    assert_eq!(r.status, 201, "{r:?}");
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["Id"].as_str().unwrap().len(), 64);
    // null for lists and maps, as Go clients send them.
    let r = s
        .request(
            "POST",
            "/v1.44/containers/create?name=nulls",
            &[JSON],
            br#"{"Image":"busybox","Cmd":["true"],"Entrypoint":null,"Env":null,"Labels":null,"HostConfig":{"Binds":null,"PortBindings":null},"NetworkingConfig":{"EndpointsConfig":null}}"#,
        )
        .unwrap();
    assert_eq!(r.status, 201, "{r:?}");
    // Bad queries.
    let r = s
        .request("GET", "/containers/json?filters=nope", &[], b"")
        .unwrap();
    assert_eq!(r.status, 400, "{r:?}");
    one_line_error(&r);
    let r = s
        .request("GET", "/containers/json?limit=many", &[], b"")
        .unwrap();
    assert_eq!(r.status, 400, "{r:?}");
    let r = s
        .request("POST", "/containers/unk/kill?signal=NOSUCH", &[], b"")
        .unwrap();
    assert!(r.status == 400 || r.status == 409, "{r:?}");
    one_line_error(&r);
    b.ok(&["rm", "unk", "nulls"]);
    assert!(s.ping());
}

#[test]
fn huge_and_half_sent_bodies() {
    let (b, s) = api::busybox_service();
    // 64 MiB announced and sent: refused with one line, long before the end.
    let mut c = s.connect().unwrap();
    let len = 64usize << 20;
    let head = format!(
        "POST /v1.44/containers/create HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {len}\r\n\r\n"
    );
    c.write_all(head.as_bytes()).unwrap();
    let mut chunk = b"{\"Image\":\"busybox\",\"Env\":[\"".to_vec();
    chunk.resize(1 << 20, b'a');
    let mut sent = 0;
    while sent < len {
        if c.write_all(&chunk).is_err() {
            break; // the server answered and closed: fine
        }
        sent += chunk.len();
    }
    let mut all = Vec::new();
    let _ = c.read_to_end(&mut all);
    let r = parse_response(&all).expect("an answer to a huge body");
    assert!(r.status == 413 || r.status == 400, "{r:?}");
    let m = one_line_error(&r);
    assert!(m.contains("larger than"), "{m}");
    // Half-sent: the client promises 1000 bytes, sends 10 and goes away.
    for _ in 0..5 {
        let mut c = s.connect().unwrap();
        c.write_all(
            b"POST /containers/create?name=half HTTP/1.1\r\nHost: d\r\n\
              Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"Image\":",
        )
        .unwrap();
        drop(c);
    }
    // Only headers, then gone.
    let mut c = s.connect().unwrap();
    c.write_all(b"GET /containers/json HTTP/1.1\r\nHost:")
        .unwrap();
    drop(c);
    assert!(s.ping());
    assert_eq!(containers(&b), "");
    assert!(s.alive());
}

#[test]
fn routes_and_versions() {
    let b = Berth::new();
    let s = Service::start(&b);
    let r = s.request("GET", "/v1.44/nosuch/route", &[], b"").unwrap();
    assert_eq!(r.status, 404);
    assert_eq!(one_line_error(&r), "page not found");
    let r = s
        .request("GET", "/containers/abc/nosuch", &[], b"")
        .unwrap();
    assert_eq!(r.status, 404);
    for v in ["/v1.24", "/v1.30", "/v1.41", "/v1.43", "/v1.44", ""] {
        let r = s.request("GET", &format!("{v}/_ping"), &[], b"").unwrap();
        assert_eq!((r.status, r.text().as_str()), (200, "OK"), "{v}: {r:?}");
        assert_eq!(r.header("Api-Version").as_deref(), Some("1.44"));
        let r = s.request("GET", &format!("{v}/version"), &[], b"").unwrap();
        assert_eq!(r.status, 200, "{v}: {r:?}");
    }
    let r = s.request("HEAD", "/_ping", &[], b"").unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Ostype").as_deref(), Some("linux"));
    for v in ["/v1.99", "/v2.0", "/v1.12"] {
        let r = s.request("GET", &format!("{v}/version"), &[], b"").unwrap();
        assert_eq!(r.status, 400, "{v}: {r:?}");
        let m = one_line_error(&r);
        assert!(m.contains("client version"), "{m}");
    }
    let r = s.request("GET", "/v1.44/swarm", &[], b"").unwrap();
    assert_eq!(r.status, 503);
    one_line_error(&r);
}

#[test]
fn dropped_hijacked_attach_leaves_the_container_running() {
    let (_b, s) = api::busybox_service();
    s.run_d(
        "hj",
        &[
            "-i",
            "busybox",
            "sh",
            "-c",
            "while true; do echo tick; sleep 0.1; done",
        ],
    );
    for _ in 0..3 {
        let mut c = s.connect().unwrap();
        c.write_all(
            b"POST /v1.44/containers/hj/attach?stream=1&stdin=1&stdout=1&stderr=1 HTTP/1.1\r\n\
              Host: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n",
        )
        .unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&got).contains("tick") {
            let n = c.read(&mut buf).unwrap();
            assert!(n > 0, "attach ended: {}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&buf[..n]);
        }
        assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 101"));
        // Gone mid-stream, without a word.
        drop(c);
    }
    // An attach request without the upgrade headers: an ordinary error.
    let r = s
        .request("POST", "/containers/hj/attach?stream=1&stdout=1", &[], b"")
        .unwrap();
    assert_eq!(r.status, 400, "{r:?}");
    assert!(s.ping());
    assert_eq!(
        s.ok(&["inspect", "-f", "{{.State.Status}}", "hj"]).trim(),
        "running"
    );
    let logs = s.ok(&["logs", "--tail", "1", "hj"]);
    assert_eq!(logs, "tick\n");
    s.ok(&["rm", "-f", "hj"]);
}

#[test]
fn idle_exit_keeps_containers_and_streams_keep_it_alive() {
    let b = Berth::with_busybox();
    let mut s = Service::start_with(&b, &["--time", "1"]);
    // An open connection is activity: held while the client runs, so that a slow
    // machine does not see the service leave before the run.
    let hold = s.connect().unwrap();
    // The docker CLI 28 asks for a wait even with -d and hangs up after the start: that
    // wait must not keep the service alive while the container runs.
    s.run_d("idle", &["busybox", "sh", "-c", "echo up; exec sleep 300"]);
    drop(hold);
    let st = s.wait_exit(60).expect("the idle service did not exit");
    assert!(st.success(), "{st}: {}", s.log_text());
    assert!(!s.sock.as_ref().unwrap().exists(), "the socket is left");
    assert_eq!(
        b.ok(&["inspect", "-f", "{{.State.Status}}", "idle"]).trim(),
        "running"
    );
    // A long `logs -f` is activity: the service stays while it streams and goes when the
    // stream ends with the container.
    let mut s = Service::start_with(&b, &["--time", "1"]);
    let hold = s.connect().unwrap();
    let mut logs = s.docker_cmd(&["logs", "-f", "idle"]);
    logs.stdout(Stdio::piped()).stderr(Stdio::null());
    let mut logs = logs.spawn().unwrap();
    let mut first = [0u8; 3];
    let mut out = logs.stdout.take().unwrap();
    out.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"up\n");
    drop(hold);
    // Several idle periods pass while the stream is open.
    for _ in 0..6 {
        std::thread::sleep(Duration::from_millis(500));
        assert!(s.alive(), "the service exited under an open stream");
        assert!(logs.try_wait().unwrap().is_none());
    }
    b.ok(&["kill", "idle"]);
    let st = logs.wait().unwrap();
    drop(out);
    assert!(st.success(), "{st}");
    let st = s
        .wait_exit(60)
        .expect("the service did not exit after the stream");
    assert!(st.success(), "{st}");
    b.ok(&["rm", "idle"]);
}

#[test]
fn sigterm_exits_cleanly() {
    let b = Berth::with_busybox();
    let mut s = Service::start(&b);
    s.ok(&["ps"]);
    let st = s.signal_and_wait(libc::SIGTERM);
    assert!(st.success(), "{st}: {}", s.log_text());
    assert!(!s.sock.as_ref().unwrap().exists());
}

#[test]
fn sigkill_mid_stream_and_a_new_server_sees_everything() {
    let b = Berth::with_busybox();
    let mut s = Service::start(&b);
    s.run_d(
        "sk",
        &[
            "busybox",
            "sh",
            "-c",
            "i=0; while true; do i=$((i+1)); echo n$i; sleep 0.1; done",
        ],
    );
    let mut logs = s.docker_cmd(&["logs", "-f", "sk"]);
    logs.stdout(Stdio::piped()).stderr(Stdio::null());
    let mut logs = logs.spawn().unwrap();
    let mut out = logs.stdout.take().unwrap();
    let mut buf = [0u8; 64];
    assert!(out.read(&mut buf).unwrap() > 0);
    let st = s.signal_and_wait(libc::SIGKILL);
    assert!(!st.success());
    // The client's stream ends (an error), the container runs on.
    let _ = std::io::copy(&mut out, &mut std::io::sink());
    logs.wait().unwrap();
    assert_eq!(
        b.ok(&["inspect", "-f", "{{.State.Status}}", "sk"]).trim(),
        "running"
    );
    // A new server on the same socket path (the dead one's socket file is still there).
    let path = s.sock.clone().unwrap();
    assert!(path.exists());
    let mut s2 = Service::spawn(
        &b,
        &["system", "service", "--time", "0", &s.host],
        Some(path),
        s.host.clone(),
    );
    s2.wait_up();
    assert_eq!(
        s2.ok(&["ps", "--format", "{{.Names}} {{.State}}"]),
        "sk running\n"
    );
    let l = s2.ok(&["logs", "--tail", "1", "sk"]);
    assert!(l.starts_with('n'), "{l}");
    s2.ok(&["rm", "-f", "sk"]);
}

#[test]
fn socket_activation() {
    let b = Berth::with_busybox();
    let sock = b.scratch().join("act.sock");
    let host = format!("unix://{}", sock.display());
    let mut c = std::process::Command::new("systemd-socket-activate");
    c.arg("-l")
        .arg(&sock)
        .arg(common::BERTH)
        .arg("--root")
        .arg(b.root())
        .args(["system", "service", "--time", "0"])
        .env("BERTH_API", api::api_bin())
        .env("BERTH_RUNTIME", common::runtime())
        .env("BERTH_DAEMON_JSON", "/nonexistent/berth-daemon.json")
        .env_remove("BERTH_ROOT")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let child = c.spawn().unwrap();
    let mut s = Service::adopt(&b, child, Some(sock.clone()), host);
    // systemd-socket-activate made the socket; the service starts on the first connection.
    wait_until(60, "the activation socket", || sock.exists());
    s.wait_up();
    assert_eq!(
        s.ok(&["run", "--rm", "busybox", "echo", "activated"]),
        "activated\n"
    );
    let st = s.signal_and_wait(libc::SIGTERM);
    assert!(st.success(), "{st}");
}

#[test]
fn tcp_on_loopback_only() {
    let b = Berth::with_busybox();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let host = format!("tcp://127.0.0.1:{port}");
    let mut s = Service::spawn(
        &b,
        &["system", "service", "--time", "0", &host],
        None,
        host.clone(),
    );
    s.wait_up();
    assert_eq!(
        s.ok(&["run", "--rm", "busybox", "echo", "over-tcp"]),
        "over-tcp\n"
    );
    drop(s);
    for addr in [
        "tcp://0.0.0.0:2375",
        "tcp://[::]:2375",
        "tcp://10.1.2.3:2375",
    ] {
        let out = b.run(&["system", "service", "--time", "0", addr]);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "{addr}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("loopback"), "{err}");
    }
    let out = b.run(&["system", "service", "--time", "0", "http://x"]);
    assert!(!out.status.success());
}

#[test]
fn concurrent_clients_leave_nothing() {
    let (_b, s) = api::busybox_service();
    s.run_d("base", &["busybox", "sh", "-c", "echo base; sleep 300"]);
    let t0 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 1;
    let threads = 20;
    let rounds = 2;
    std::thread::scope(|sc| {
        for t in 0..threads {
            let s = &s;
            sc.spawn(move || {
                for r in 0..rounds {
                    let word = format!("w{t}-{r}");
                    let out =
                        s.docker(&["run", "--rm", "--network", "none", "busybox", "echo", &word]);
                    assert!(
                        out.status.success(),
                        "{}",
                        s.describe(&["run", &word], &out)
                    );
                    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{word}\n"));
                    let out = s.docker(&["ps", "--format", "{{.Names}}"]);
                    assert!(out.status.success(), "{}", s.describe(&["ps"], &out));
                    assert!(String::from_utf8_lossy(&out.stdout).contains("base"));
                    let out = s.docker(&["logs", "base"]);
                    assert!(out.status.success(), "{}", s.describe(&["logs"], &out));
                    assert_eq!(String::from_utf8_lossy(&out.stdout), "base\n");
                }
            });
        }
    });
    s.ok(&["rm", "-f", "base"]);
    assert_eq!(s.ok(&["ps", "-aq"]), "");
    // Every container made here is gone with its cgroup.
    let now = (t0 + 3600).to_string();
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    let ids = s.ok(&[
        "events",
        "--since",
        &t0.to_string(),
        "--until",
        &until,
        "--filter",
        "event=create",
        "--format",
        "{{.ID}}",
    ]);
    let _ = now;
    assert_eq!(ids.lines().count(), threads * rounds + 1, "{ids}");
    for id in ids.lines() {
        let name = format!("berth-{id}");
        let left: Vec<String> = std::fs::read_dir("/sys/fs/cgroup")
            .unwrap()
            .flatten()
            .flat_map(|e| {
                [
                    e.path().join(&name),
                    std::path::PathBuf::from("/sys/fs/cgroup").join(&name),
                ]
            })
            .filter(|p| p.exists())
            .map(|p| p.display().to_string())
            .collect();
        assert!(left.is_empty(), "cgroups left: {left:?}");
    }
    assert!(s.ping());
    // Berth's drop checks mounts, monitors, namespaces and the root.
}

#[test]
fn a_raw_client_with_keep_alive() {
    // Several requests on one connection, as SDKs send them.
    let b = Berth::new();
    let s = Service::start(&b);
    let mut c = s.connect().unwrap();
    for _ in 0..3 {
        c.write_all(b"GET /v1.44/_ping HTTP/1.1\r\nHost: d\r\n\r\n")
            .unwrap();
        let mut buf = [0u8; 1024];
        let n = c.read(&mut buf).unwrap();
        let r = parse_response(&buf[..n]).unwrap();
        assert_eq!(r.status, 200);
    }
    let r = raw(&mut *c, "GET", "/version", &[], b"").unwrap();
    assert_eq!(r.status, 200);
}

/// Zombie children (exited, not reaped) of `pid`.
fn zombie_children(pid: i32) -> Vec<i32> {
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        let Some(i) = stat.rfind(')') else { continue };
        let f: Vec<&str> = stat[i + 1..].split_whitespace().collect();
        if f.first() == Some(&"Z") && f.get(1).and_then(|x| x.parse().ok()) == Some(pid) {
            v.push(p);
        }
    }
    v
}

#[test]
fn the_service_reaps_its_children() {
    // The monitors (and berth-dns) the engine starts are the long-lived service's children:
    // when they exit, it must reap them.
    let (_b, s) = api::busybox_service();
    for _ in 0..3 {
        assert_eq!(s.ok(&["run", "--rm", "busybox", "echo", "x"]), "x\n");
    }
    s.run_d("z", &["busybox", "sleep", "300"]);
    s.ok(&["rm", "-f", "z"]);
    let pid = s.pid();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !zombie_children(pid).is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        zombie_children(pid),
        Vec::<i32>::new(),
        "zombies of the service"
    );
}
