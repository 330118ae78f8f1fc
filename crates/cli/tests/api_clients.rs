//! Real Docker API clients against `berth system service`: docker-py's
//! scenarios (pytest, crates/cli/tests/clients/test_docker_py.py) and a
//! two-service compose project brought up and down by Debian's
//! docker-compose 1.29 and by compose v2. The clients come from
//! scripts/install-clients.sh (run by scripts/test.sh) and Debian's
//! packages; each test runs its own service on its own root and socket.
#![allow(clippy::unwrap_used)]

#[path = "common/api.rs"]
mod api;
mod common;

use api::Service;
use common::{text, Berth};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const CLIENTS: &str = "/opt/berth-clients";

/// A client command with DOCKER_HOST set to the service.
fn client(svc: &Service, program: impl AsRef<std::ffi::OsStr>, dir: &Path) -> Command {
    let mut c = Command::new(program);
    c.env("DOCKER_HOST", &svc.host)
        .env("DOCKER_CONFIG", dir.join(".docker-client"))
        .env_remove("DOCKER_CONTEXT")
        .env("DOCKER_BUILDKIT", "0")
        .env("COMPOSE_DOCKER_CLI_BUILD", "0")
        .current_dir(dir)
        .stdin(Stdio::null());
    c
}

fn need(path: &str) -> PathBuf {
    let p = PathBuf::from(path);
    assert!(
        p.exists(),
        "{path} is missing: run scripts/install-clients.sh (scripts/test.sh does)"
    );
    p
}

fn show(what: &str, out: &Output) -> String {
    format!(
        "{what}: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    )
}

#[test]
fn docker_py_scenarios_pass() {
    let python = need(&format!("{CLIENTS}/venv/bin/python"));
    let b = Berth::with_busybox();
    let svc = Service::start(&b);
    let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/test_docker_py.py");
    let out = client(&svc, &python, &b.scratch())
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "-x"])
        .arg(&tests)
        .output()
        .expect("run pytest");
    assert!(out.status.success(), "{}", show("pytest", &out));
    drop(svc);
}

const COMPOSE_FILE: &str = r#"
services:
  web:
    image: busybox
    command: ["sh", "-c", "mkdir -p /www && echo hello-from-web > /www/index.html && echo web-up && exec httpd -f -p 80 -h /www"]
    volumes:
      - data:/data
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1/"]
      interval: 1s
      timeout: 3s
      retries: 60
  client:
    image: busybox
    command: ["sh", "-c", "wget -q -O - http://web/ && exec sleep 300"]
    depends_on:
      web:
        condition: service_healthy
volumes:
  data:
"#;

/// Brings the project up, checks ps/logs/exec, brings it down with its
/// volume, and checks nothing of it is left in the root.
fn compose_project(program: &Path, project: &str) {
    let b = Berth::with_busybox();
    let svc = Service::start(&b);
    let dir = b.scratch().join(project);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("docker-compose.yml"), COMPOSE_FILE).unwrap();
    let compose = |args: &[&str]| -> Output {
        client(&svc, program, &dir)
            .arg("-p")
            .arg(project)
            .args(args)
            .output()
            .expect("run compose")
    };
    let up = compose(&["up", "-d"]);
    assert!(up.status.success(), "{}", show("up -d", &up));
    let ps = compose(&["ps"]);
    assert!(ps.status.success(), "{}", show("ps", &ps));
    let listing = text(&ps.stdout);
    assert!(
        listing.contains("web") && listing.contains("client"),
        "{listing}"
    );
    // The client reached the web service by its name once it was healthy.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let logs = compose(&["logs", "client"]);
        if text(&logs.stdout).contains("hello-from-web") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{}",
            show("logs client (never saw the web page)", &logs)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let exec = compose(&["exec", "-T", "web", "cat", "/www/index.html"]);
    assert!(exec.status.success(), "{}", show("exec", &exec));
    assert_eq!(text(&exec.stdout), "hello-from-web\n");
    let down = compose(&["down", "-v", "-t", "1"]);
    assert!(down.status.success(), "{}", show("down -v", &down));
    let left = b.ok(&["ps", "-a", "-q"]);
    assert_eq!(left.trim(), "", "containers left");
    let nets = b.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!nets.contains(project), "networks left: {nets}");
    let vols = b.ok(&["volume", "ls", "-q"]);
    assert_eq!(vols.trim(), "", "volumes left");
    drop(svc);
}

#[test]
fn compose_v1_brings_a_project_up_and_down() {
    let program = need("/usr/bin/docker-compose");
    compose_project(&program, "berthv1");
}

#[test]
fn compose_v2_brings_a_project_up_and_down() {
    let program = need(&format!("{CLIENTS}/docker-compose-v2"));
    compose_project(&program, "berthv2");
}
