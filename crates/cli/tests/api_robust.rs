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
    s.run_d("z1", &["busybox", "sleep", "300"]);
    s.ok(&["rm", "-f", "z1"]);
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

/// How long the stress workload runs: `BERTH_STRESS_SECS` (60 unless set, as issue 13 asks).
fn stress_secs() -> u64 {
    std::env::var("BERTH_STRESS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60)
}

/// The service's open file descriptors, and what each one is.
fn fds(pid: i32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.flatten()
                .map(|e| {
                    std::fs::read_link(e.path())
                        .map(|l| l.display().to_string())
                        .unwrap_or_default()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The body of a raw answer as JSON, asserting its status.
fn json_of(r: &api::Raw, status: u16, what: &str) -> Result<serde_json::Value, String> {
    if r.status != status {
        return Err(format!("{what}: {} {}", r.status, r.text()));
    }
    if r.body.is_empty() {
        return Ok(serde_json::Value::Null);
    }
    serde_json::from_slice(&r.body).map_err(|e| format!("{what}: {e}: {}", r.text()))
}

/// One round of the docker CLI client `t`: `run --rm` (output checked), then `run -d`,
/// `logs`, `exec` (output and exit code) and `rm -f`.
fn cli_round(s: &Service, t: usize, i: usize, net: &str) -> Result<(), String> {
    let run = |args: &[&str], want_code: i32, want_out: &str| -> Result<(), String> {
        let out = s.docker(args);
        let got = String::from_utf8_lossy(&out.stdout);
        if out.status.code() != Some(want_code) || got != want_out {
            return Err(format!(
                "docker {} (wanted {want_code} and {want_out:?}): {}: {got:?} {:?}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(())
    };
    let word = format!("w{t}-{i}");
    run(
        &["run", "--rm", "--network", net, "busybox", "echo", &word],
        0,
        &format!("{word}\n"),
    )?;
    let name = format!("c{t}-{i}");
    let script = format!("echo ready-{t}-{i}; exec sleep 300");
    let out = s.docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        net,
        "busybox",
        "sh",
        "-c",
        &script,
    ]);
    if !out.status.success() || String::from_utf8_lossy(&out.stdout).trim().len() != 64 {
        return Err(s.describe(&["run", "-d", &name], &out));
    }
    // The container prints as soon as it runs: its log has the line shortly after.
    let want = format!("ready-{t}-{i}\n");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let out = s.docker(&["logs", &name]);
        let got = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() || (got != want && !got.is_empty()) {
            return Err(format!("docker logs {name}: {}: {got:?}", out.status));
        }
        if got == want {
            break;
        }
        if std::time::Instant::now() > deadline {
            return Err(format!("docker logs {name}: still empty"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let ex = format!("echo ex-{t}-{i}; exit 7");
    run(
        &["exec", &name, "sh", "-c", &ex],
        7,
        &format!("ex-{t}-{i}\n"),
    )?;
    run(&["exec", &name, "cat", "/proc/1/comm"], 0, "sleep\n")?;
    run(&["rm", "-f", &name], 0, &format!("{name}\n"))
}

/// One round of the raw HTTP client `t`: an `AutoRemove` container waited for with
/// `condition=removed` (its exit code checked), then create/start/wait/logs, an exec
/// (output and exit code) and a forced delete.
fn raw_round(s: &Service, t: usize, i: usize, net: &str) -> Result<(), String> {
    let req = |m: &str, p: &str, body: &[u8]| -> Result<api::Raw, String> {
        s.request(m, p, &[JSON], body)
            .ok_or_else(|| format!("{m} {p}: no answer"))
    };
    let create = |name: &str, cmd: &str, auto_remove: bool| -> Result<String, String> {
        let body = serde_json::json!({
            "Image": "busybox",
            "Cmd": ["sh", "-c", cmd],
            "HostConfig": {"NetworkMode": net, "AutoRemove": auto_remove},
        });
        let r = req(
            "POST",
            &format!("/v1.44/containers/create?name={name}"),
            body.to_string().as_bytes(),
        )?;
        let v = json_of(&r, 201, "create")?;
        Ok(v["Id"].as_str().unwrap_or_default().to_owned())
    };
    // run --rm as the docker CLI does it: the wait is sent before the start.
    let name = format!("r{t}-{i}");
    let id = create(&name, &format!("exit {}", 3 + i % 5), true)?;
    let mut w = s.connect().ok_or("connect")?;
    w.write_all(
        format!(
            "POST /v1.44/containers/{id}/wait?condition=removed HTTP/1.1\r\nHost: d\r\n\
             Connection: close\r\nContent-Length: 0\r\n\r\n"
        )
        .as_bytes(),
    )
    .map_err(|e| e.to_string())?;
    // The wait's headers come first (the CLI starts only after them).
    let mut head = [0u8; 12];
    w.read_exact(&mut head).map_err(|e| e.to_string())?;
    let r = req("POST", &format!("/v1.44/containers/{id}/start"), b"")?;
    json_of(&r, 204, "start")?;
    let mut all = head.to_vec();
    w.read_to_end(&mut all).map_err(|e| e.to_string())?;
    let r = parse_response(&all).ok_or("wait: no answer")?;
    let v = json_of(&r, 200, "wait")?;
    if v["StatusCode"] != 3 + i % 5 {
        return Err(format!("wait {name}: {v} (wanted {})", 3 + i % 5));
    }
    let r = req("GET", &format!("/v1.44/containers/{id}/json"), b"")?;
    if r.status != 404 {
        return Err(format!(
            "{name} is still there after its wait: {}",
            r.text()
        ));
    }
    // Detached, then logs and an exec.
    let name = format!("d{t}-{i}");
    let id = create(&name, &format!("echo log-{t}-{i}; exec sleep 300"), false)?;
    let r = req("POST", &format!("/v1.44/containers/{id}/start"), b"")?;
    json_of(&r, 204, "start")?;
    let want = format!("log-{t}-{i}\n");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let r = req(
            "GET",
            &format!("/v1.44/containers/{id}/logs?stdout=1&stderr=1"),
            b"",
        )?;
        if r.status != 200 {
            return Err(format!("logs {name}: {} {}", r.status, r.text()));
        }
        let (out, err) = api::demux(&r.body);
        if out == want && err.is_empty() {
            break;
        }
        if !out.is_empty() || !err.is_empty() || std::time::Instant::now() > deadline {
            return Err(format!("logs {name}: {out:?} {err:?}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let body = serde_json::json!({
        "AttachStdout": true, "AttachStderr": true,
        "Cmd": ["sh", "-c", format!("echo x-{t}-{i}; echo y >&2; exit 5")],
    });
    let r = req(
        "POST",
        &format!("/v1.44/containers/{id}/exec"),
        body.to_string().as_bytes(),
    )?;
    let exec = json_of(&r, 201, "exec create")?["Id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let r = req(
        "POST",
        &format!("/v1.44/exec/{exec}/start"),
        br#"{"Detach":false,"Tty":false}"#,
    )?;
    if r.status != 200 {
        return Err(format!("exec start: {} {}", r.status, r.text()));
    }
    let (out, err) = api::demux(&r.body);
    if out != format!("x-{t}-{i}\n") || err != "y\n" {
        return Err(format!("exec {name}: {out:?} {err:?}"));
    }
    let r = req("GET", &format!("/v1.44/exec/{exec}/json"), b"")?;
    let v = json_of(&r, 200, "exec inspect")?;
    if v["ExitCode"] != 5 || v["Running"] != false {
        return Err(format!("exec {name}: {v}"));
    }
    let r = req("DELETE", &format!("/v1.44/containers/{id}?force=1"), b"")?;
    json_of(&r, 204, "rm -f")?;
    Ok(())
}

/// Issue 13: 50 concurrent clients (half the docker CLI 28, half raw HTTP) run, wait,
/// read logs, exec and remove for BERTH_STRESS_SECS (60 s) — a workload length, not an
/// assertion. Every answer must be right; afterwards no container, monitor, mount,
/// cgroup, veth, bridge or nftables table of this root is left, every container's
/// events hold one die per start and nothing after its destroy, the service's
/// descriptors are back to what they were and it still answers.
#[test]
fn fifty_clients_for_a_minute_leave_nothing() {
    let (b, s) = api::busybox_service();
    let pid = s.pid();
    // Warm up: the default bridge exists, the service's pools are up.
    assert_eq!(s.ok(&["run", "--rm", "busybox", "echo", "warm"]), "warm\n");
    s.ok(&["ps", "-a"]);
    let bridge = s
        .ok(&[
            "network",
            "inspect",
            "bridge",
            "-f",
            "{{index .Options \"com.docker.network.bridge.name\"}}",
        ])
        .trim()
        .to_owned();
    assert!(bridge.starts_with("berth-"), "{bridge}");
    let table = bridge.replacen("berth-", "berth_", 1);
    let fds_before = fds(pid);
    let end = std::time::Instant::now() + Duration::from_secs(stress_secs());
    let failures = std::sync::Mutex::new(Vec::<String>::new());
    let rounds = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|sc| {
        for t in 0..50 {
            let (s, failures, rounds) = (&s, &failures, &rounds);
            sc.spawn(move || {
                // Most without a network (2 cores); one client in ten on the default bridge.
                let net = if t % 10 == 0 { "bridge" } else { "none" };
                let mut i = 0;
                while std::time::Instant::now() < end {
                    let r = if t % 2 == 0 {
                        cli_round(s, t, i, net)
                    } else {
                        raw_round(s, t, i, net)
                    };
                    if let Err(e) = r {
                        failures
                            .lock()
                            .unwrap()
                            .push(format!("client {t} round {i}: {e}"));
                        return;
                    }
                    rounds.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    i += 1;
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} failures (of {} rounds done):\n{}\n--- service log:\n{}",
        failures.len(),
        rounds.load(std::sync::atomic::Ordering::SeqCst),
        failures.join("\n"),
        s.log_text()
    );
    assert!(rounds.into_inner() >= 50, "every client finished a round");
    assert_eq!(s.ok(&["ps", "-aq"]), "");
    // Events (all of this new root's): every container made was started, died once
    // per start, and was destroyed last.
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1;
    let events = s.ok(&[
        "events",
        "--since",
        "0",
        "--until",
        &until.to_string(),
        "--filter",
        "type=container",
        "--format",
        "{{.ID}} {{.Action}}",
    ]);
    let mut by_id: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for l in events.lines() {
        let (id, action) = l.split_once(' ').unwrap();
        by_id.entry(id).or_default().push(action);
    }
    assert!(by_id.len() >= 50, "{events}");
    for (id, actions) in &by_id {
        let count = |a: &str| actions.iter().filter(|x| x.starts_with(a)).count();
        assert_eq!(actions.first(), Some(&"create"), "{id}: {actions:?}");
        assert_eq!(actions.last(), Some(&"destroy"), "{id}: {actions:?}");
        assert_eq!(count("destroy"), 1, "{id}: {actions:?}");
        assert_eq!(count("start"), 1, "{id}: {actions:?}");
        assert_eq!(count("die"), 1, "{id}: {actions:?}");
    }
    // Nothing of the containers is left: monitors, mounts, cgroups, veths.
    wait_until(60, "the monitors to exit", || {
        common::monitor_pids(b.root()).is_empty()
    });
    assert_eq!(common::mounts_mentioning(b.root()), Vec::<String>::new());
    for id in by_id.keys() {
        let full = s
            .request("GET", &format!("/containers/{id}/json"), &[], b"")
            .unwrap();
        assert_eq!(full.status, 404, "{id}: {}", full.text());
    }
    let cgroups: Vec<String> = std::fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| by_id.keys().any(|id| n.starts_with(&format!("berth-{id}"))))
        .collect();
    assert!(cgroups.is_empty(), "cgroups left: {cgroups:?}");
    let ports = std::process::Command::new("ip")
        .args(["-o", "link", "show", "master", &bridge])
        .output()
        .unwrap();
    assert_eq!(common::text(&ports.stdout), "", "veths left on {bridge}");
    // The service's descriptors are back (a few may be in flight for a moment).
    let mut now = fds(pid);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while now.len() > fds_before.len() + 4 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        now = fds(pid);
    }
    assert!(
        now.len() <= fds_before.len() + 4,
        "descriptors of the service: {} before, {} after:\n{fds_before:?}\n{now:?}",
        fds_before.len(),
        now.len()
    );
    wait_until(30, "the service to reap its children", || {
        zombie_children(pid).is_empty()
    });
    assert!(s.ping());
    assert_eq!(
        s.ok(&["run", "--rm", "busybox", "echo", "after"]),
        "after\n"
    );
    // The root's network goes with a reset: no bridge, no nftables table.
    drop(s);
    b.ok(&["system", "reset", "-f"]);
    let link = std::process::Command::new("ip")
        .args(["link", "show", &bridge])
        .output()
        .unwrap();
    assert!(!link.status.success(), "{bridge} is left");
    let nft = std::process::Command::new("nft")
        .args(["list", "table", "ip", &table])
        .output()
        .unwrap();
    assert!(!nft.status.success(), "nft table {table} is left");
}

/// `{{.Action}} {{.Actor.Attributes.exitCode}}` of the container events of `id` so far.
fn actions_of(b: &Berth, id: &str) -> Vec<String> {
    let until = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1)
    .to_string();
    b.ok(&[
        "events",
        "--since",
        "0",
        "--until",
        &until,
        "--filter",
        &format!("container={id}"),
        "--format",
        "{{.Action}} {{.Actor.Attributes.exitCode}}",
    ])
    .lines()
    .map(|l| l.trim_end_matches(" <no value>").trim().to_owned())
    .filter(|l| !l.starts_with("exec_") && l != "attach")
    .collect()
}

/// An exit is cleaned up once: the monitor's exit command (`berth container cleanup ID`)
/// and any other process that read the container as running before the exit was recorded
/// (a stale `reconcile` in another command or in the API server) may both try; exactly one
/// `die` is recorded per exit, never one after the `destroy` (it was a second die with
/// 255 for the exit file the first cleanup had removed).
#[test]
fn one_die_per_exit_however_many_cleanups() {
    let b = Berth::with_busybox();
    // A late cleanup of an exit already recorded does nothing.
    let out = b.run(&[
        "run",
        "--name",
        "once",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3));
    let id = b
        .ok(&["inspect", "-f", "{{.Id}}", "once"])
        .trim()
        .to_owned();
    std::thread::scope(|sc| {
        for _ in 0..3 {
            sc.spawn(|| b.run(&["container", "cleanup", &id]));
        }
    });
    b.run(&["container", "cleanup", &id]);
    assert_eq!(
        actions_of(&b, &id),
        ["create", "start", "die 3"],
        "one die for one exit"
    );
    assert_eq!(
        b.ok(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            "once"
        ]),
        "exited 3\n"
    );
    b.ok(&["rm", "once"]);
    // Cleanups racing the monitor's own, for --rm containers: the moment the monitor has
    // written the exit (just before its exit command), three more try.
    for i in 0..10 {
        let id = b
            .ok(&[
                "run",
                "-d",
                "--rm",
                "--network",
                "none",
                "busybox",
                "sh",
                "-c",
                "sleep 0.3; exit 4",
            ])
            .trim()
            .to_owned();
        let exit = b
            .root()
            .join("run")
            .join("containers")
            .join(&id)
            .join("exit");
        wait_until(60, "the exit file", || {
            exit.exists() || b.run(&["inspect", &id]).status.code() == Some(1)
        });
        std::thread::scope(|sc| {
            for _ in 0..3 {
                sc.spawn(|| b.run(&["container", "cleanup", &id]));
            }
        });
        wait_until(60, "the removal", || {
            b.run(&["inspect", &id]).status.code() == Some(1)
        });
        assert_eq!(
            actions_of(&b, &id),
            ["create", "start", "die 4", "destroy"],
            "round {i}"
        );
    }
}

/// A command that cannot run, through the socket: the docker CLI exits 126 (not
/// executable) or 127 (missing) with Docker's message, every time (it was a race: the
/// start answered before the exec failed, and the --rm record went before the waiter
/// read its code: 0, and no message). Without --rm the client ends too, with the code.
#[test]
fn a_command_that_cannot_run_is_126_or_127_every_time() {
    let (_b, s) = api::busybox_service();
    for i in 0..10 {
        let out = s.docker(&["run", "--rm", "--network", "none", "busybox", "/etc/group"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(126),
            "round {i}: {}",
            s.describe(&["run", "/etc/group"], &out)
        );
        assert!(
            err.contains(r#"exec: "/etc/group": permission denied"#),
            "round {i}: {err}"
        );
        let err = s.fails(
            &["run", "--rm", "--network", "none", "busybox", "nosuchcmd"],
            127,
        );
        assert!(
            err.contains(r#"exec: "nosuchcmd": executable file not found in $PATH"#),
            "round {i}: {err}"
        );
    }
    let err = s.fails(
        &[
            "run",
            "--name",
            "kept",
            "--network",
            "none",
            "busybox",
            "/etc/group",
        ],
        126,
    );
    assert!(err.contains("permission denied"), "{err}");
    assert_eq!(
        s.ok(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            "kept"
        ]),
        "created 126\n"
    );
    s.ok(&["rm", "kept"]);
    assert_eq!(s.ok(&["ps", "-aq"]), "");
}
