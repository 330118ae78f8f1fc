//! berth's API server for the tests of issue 13: `berth system service` on a test's root and a
//! socket in its scratch directory ([`Service`]), the docker CLI 28 pointed at it, and a tiny
//! raw HTTP client for requests no client would send ([`raw`]).
//!
//! The service binary (`berth-api`) lives in another package: cargo does not build it for
//! berth-cli's tests, so [`api_bin`] builds it once when it is missing or older than its
//! sources, as `common::runtime()` does for the runtime and the monitor.
#![allow(dead_code)]

use crate::common::{process_alive, Berth};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The docker CLI 28 (the client issue 13 is about).
pub const DOCKER28: &str = "/usr/local/bin/docker";

/// `target/<profile>/berth-api`, built if missing or stale.
pub fn api_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let dir = Path::new(crate::common::BERTH)
            .parent()
            .unwrap()
            .to_path_buf();
        let bin = dir.join("berth-api");
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .join("api")
            .join("src");
        let newest = std::fs::read_dir(&src)
            .unwrap()
            .flatten()
            .filter_map(|e| e.metadata().ok()?.modified().ok())
            .max();
        let built = std::fs::metadata(&bin).and_then(|m| m.modified()).ok();
        if built.is_none() || newest > built {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let st = Command::new(cargo)
                .args(["build", "-p", "berth-api", "--bin", "berth-api"])
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .status()
                .unwrap();
            assert!(st.success(), "cargo build -p berth-api failed");
        }
        assert!(bin.is_file(), "{} is missing", bin.display());
        bin
    })
}

/// A running `berth system service` on a test's root. Dropped: SIGTERM, then SIGKILL if it
/// has not exited in 20 s (declare it after the `Berth`, so that it stops first).
pub struct Service {
    pub child: Option<Child>,
    /// The unix socket (None for TCP).
    pub sock: Option<PathBuf>,
    /// `unix:///…` or `tcp://127.0.0.1:PORT`
    pub host: String,
    pub log: PathBuf,
    docker_config: PathBuf,
}

/// A store with busybox and a service on it; bound as `let (b, s) = …` the service drops
/// first.
pub fn busybox_service() -> (Berth, Service) {
    let b = Berth::with_busybox();
    let s = Service::start(&b);
    (b, s)
}

static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl Service {
    /// `system service --time 0 unix://SCRATCH/dN.sock`, up when /_ping answers.
    pub fn start(b: &Berth) -> Service {
        Service::start_with(b, &["--time", "0"])
    }

    /// `system service ARGS unix://SCRATCH/dN.sock`.
    pub fn start_with(b: &Berth, args: &[&str]) -> Service {
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let sock = b.scratch().join(format!("d{n}.sock"));
        let host = format!("unix://{}", sock.display());
        let mut a = vec!["system", "service"];
        a.extend_from_slice(args);
        a.push(&host);
        let mut s = Service::spawn(b, &a, Some(sock), host.clone());
        s.wait_up();
        s
    }

    /// Spawns `berth ARGS` (a service) without waiting for it.
    pub fn spawn(b: &Berth, args: &[&str], sock: Option<PathBuf>, host: String) -> Service {
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let log = b.scratch().join(format!("service{n}.log"));
        let mut c = b.cmd(args);
        c.env("BERTH_API", api_bin())
            .stdout(Stdio::from(std::fs::File::create(&log).unwrap()))
            .stderr(Stdio::from(
                std::fs::OpenOptions::new().append(true).open(&log).unwrap(),
            ));
        let child = c.spawn().unwrap();
        Service {
            child: Some(child),
            sock,
            host,
            log,
            docker_config: b.scratch().join(".docker28"),
        }
    }

    /// A service started some other way (systemd-socket-activate).
    pub fn adopt(b: &Berth, child: Child, sock: Option<PathBuf>, host: String) -> Service {
        Service {
            child: Some(child),
            sock,
            host,
            log: b.scratch().join("adopted.log"),
            docker_config: b.scratch().join(".docker28"),
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(-1)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (60 s at most) until `/_ping` answers OK.
    pub fn wait_up(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if self.ping() {
                return;
            }
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    panic!(
                        "the service exited ({st}) before answering: {}",
                        self.log_text()
                    );
                }
            }
            assert!(
                Instant::now() < deadline,
                "the service did not answer /_ping in 60 s: {}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn ping(&self) -> bool {
        match self.request("GET", "/_ping", &[], b"") {
            Some(r) => r.status == 200 && r.body == b"OK",
            None => false,
        }
    }

    /// One raw HTTP/1.1 request on a fresh connection (`Connection: close`).
    pub fn request(&self, method: &str, path: &str, headers: &[&str], body: &[u8]) -> Option<Raw> {
        let mut s = self.connect()?;
        raw(&mut s, method, path, headers, body)
    }

    /// [`Service::request`] with a JSON content type, for a test that wants the status and
    /// the body's text; panics when the service does not answer.
    pub fn call(&self, method: &str, path: &str, body: &[u8]) -> (u16, String) {
        let r = self
            .request(method, path, &["Content-Type: application/json"], body)
            .unwrap_or_else(|| panic!("{method} {path}: no answer: {}", self.log_text()));
        (r.status, r.text())
    }

    /// A fresh connection to the service (unix or TCP).
    pub fn connect(&self) -> Option<Box<dyn ReadWrite>> {
        if let Some(sock) = &self.sock {
            let s = UnixStream::connect(sock).ok()?;
            s.set_read_timeout(Some(Duration::from_secs(60))).ok()?;
            return Some(Box::new(s));
        }
        let addr = self.host.strip_prefix("tcp://")?;
        let s = std::net::TcpStream::connect(addr).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(60))).ok()?;
        Some(Box::new(s))
    }

    /// The docker CLI 28 against this service (stdin empty).
    pub fn docker_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(DOCKER28);
        c.arg("-H")
            .arg(&self.host)
            .args(args)
            .env("DOCKER_CONFIG", &self.docker_config)
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_API_VERSION")
            // `docker build` with the classic builder (BuildKit's sessions are not served)
            .env("DOCKER_BUILDKIT", "0")
            .stdin(Stdio::null());
        c
    }

    /// Runs docker; one that has not ended after 120 s is killed (a hang fails the test
    /// with what it printed, instead of hanging it).
    pub fn docker(&self, args: &[&str]) -> Output {
        output_within(self.docker_cmd(args), 120)
    }

    /// Runs docker, asserts success, returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(out.status.success(), "{}", self.describe(args, &out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `docker run -d --name NAME ARGS`, which must succeed; its stdout (the ID).
    pub fn run_d(&self, name: &str, args: &[&str]) -> String {
        let mut a = vec!["run", "-d", "--name", name];
        a.extend_from_slice(args);
        self.ok(&a)
    }

    /// Runs docker, asserts the exit code, returns stderr.
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.docker(args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{}",
            self.describe(args, &out)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    pub fn describe(&self, args: &[&str], out: &Output) -> String {
        format!(
            "docker {}: {}\n--- stdout:\n{}\n--- stderr:\n{}\n--- service log:\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log_text()
        )
    }

    /// Sends `sig` and waits (60 s at most) for the exit; returns its status.
    pub fn signal_and_wait(&mut self, sig: i32) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("service already stopped");
        // SAFETY: kill(2) on the PID of a child this test spawned and has not reaped.
        unsafe { libc::kill(c.id() as i32, sig) };
        wait_child(&mut c, 60).unwrap_or_else(|| {
            let _ = c.kill();
            panic!("the service did not exit in 60 s after signal {sig}")
        })
    }

    /// Waits (`secs` at most) for the service to exit by itself.
    pub fn wait_exit(&mut self, secs: u64) -> Option<std::process::ExitStatus> {
        let st = wait_child(self.child.as_mut()?, secs)?;
        self.child = None;
        Some(st)
    }

    pub fn alive(&self) -> bool {
        process_alive(self.pid())
    }
}

/// `cmd`'s output; killed (SIGKILL) when it has not ended after `secs`.
pub fn output_within(mut cmd: Command, secs: u64) -> Output {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let o = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let e = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let status = match wait_child(&mut child, secs) {
        Some(st) => st,
        None => {
            let _ = child.kill();
            child.wait().unwrap()
        }
    };
    Output {
        status,
        stdout: o.join().unwrap(),
        stderr: e.join().unwrap(),
    }
}

fn wait_child(c: &mut Child, secs: u64) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Ok(Some(st)) = c.try_wait() {
            return Some(st);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: kill(2) on our own child's PID.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            if wait_child(&mut c, 20).is_none() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

pub trait ReadWrite: Read + Write + Send {}
impl<T: Read + Write + Send> ReadWrite for T {}

/// A response as read off the wire.
#[derive(Debug)]
pub struct Raw {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Raw {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }
}

/// Writes one request (`Connection: close`) and reads the whole answer (chunked bodies
/// decoded).
pub fn raw(
    s: &mut dyn ReadWrite,
    method: &str,
    path: &str,
    headers: &[&str],
    body: &[u8],
) -> Option<Raw> {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n");
    for h in headers {
        req += h;
        req += "\r\n";
    }
    if !body.is_empty() || method == "POST" {
        req += &format!("Content-Length: {}\r\n", body.len());
    }
    req += "\r\n";
    s.write_all(req.as_bytes()).ok()?;
    // The server may answer (and close) before it reads a body it does not need: what it
    // answered is what counts.
    let _ = s.write_all(body);
    let mut all = Vec::new();
    s.read_to_end(&mut all).ok()?;
    parse_response(&all)
}

pub fn parse_response(all: &[u8]) -> Option<Raw> {
    let end = all.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&all[..end]).into_owned();
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let mut body = all[end + 4..].to_vec();
    let chunked = head
        .lines()
        .any(|l| l.to_ascii_lowercase().starts_with("transfer-encoding:") && l.contains("chunked"));
    if chunked {
        let mut out = Vec::new();
        let mut rest = &body[..];
        while let Some(i) = rest.windows(2).position(|w| w == b"\r\n") {
            let n = usize::from_str_radix(String::from_utf8_lossy(&rest[..i]).trim(), 16).ok()?;
            if n == 0 {
                break;
            }
            out.extend_from_slice(rest.get(i + 2..i + 2 + n)?);
            rest = rest.get(i + 4 + n..).unwrap_or(&[]);
        }
        body = out;
    }
    Some(Raw { status, head, body })
}

/// Docker's stdcopy frames split into (stdout, stderr).
pub fn demux(mut b: &[u8]) -> (String, String) {
    let (mut o, mut e) = (Vec::new(), Vec::new());
    while b.len() >= 8 {
        let n = u32::from_be_bytes([b[4], b[5], b[6], b[7]]) as usize;
        let payload = &b[8..(8 + n).min(b.len())];
        match b[0] {
            2 => e.extend_from_slice(payload),
            _ => o.extend_from_slice(payload),
        }
        b = &b[(8 + n).min(b.len())..];
    }
    (
        String::from_utf8_lossy(&o).into_owned(),
        String::from_utf8_lossy(&e).into_owned(),
    )
}
