//! Issue 13: who may reach berth's API. TLS on a TCP listener in Docker's `--tlsverify`
//! model (certificates made with `openssl` in the test's scratch directory; the docker
//! CLI 28 with and without a client certificate), its bad input, and the unix socket's
//! group (`-G, --group`, dockerd's flag): a member of the group reaches the default
//! socket, anyone else does not, and the state under the root stays private. Nothing
//! listens on anything but 127.0.0.1.
#![allow(clippy::unwrap_used)]

#[path = "common/api.rs"]
mod api;
mod common;

use api::Service;
use common::{wait_until, Berth};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A CA, a server certificate for IP 127.0.0.1 and a client certificate signed by it,
/// plus a client certificate from another CA.
struct Certs {
    dir: PathBuf,
}

impl Certs {
    fn new(b: &Berth) -> Certs {
        let dir = b.scratch().join("tls");
        std::fs::create_dir_all(&dir).unwrap();
        let ssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(&dir)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "openssl {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        };
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=IP:127.0.0.1,IP:10.213.0.1\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        for ca in ["ca", "other-ca"] {
            let mut a = vec!["req", "-x509"];
            a.extend_from_slice(&ec);
            let (key, crt, subj) = (
                format!("{ca}-key.pem"),
                format!("{ca}.pem"),
                format!("/CN={ca}"),
            );
            a.extend_from_slice(&["-keyout", &key, "-out", &crt, "-days", "2", "-subj", &subj]);
            ssl(&a);
        }
        for (name, ca, ext) in [
            ("server", "ca", "server.ext"),
            ("client", "ca", "client.ext"),
            ("stranger", "other-ca", "client.ext"),
        ] {
            let (key, csr, crt) = (
                format!("{name}-key.pem"),
                format!("{name}.csr"),
                format!("{name}-cert.pem"),
            );
            let subj = format!("/CN={name}");
            let mut a = vec!["req"];
            a.extend_from_slice(&ec);
            a.extend_from_slice(&["-keyout", &key, "-out", &csr, "-subj", &subj]);
            ssl(&a);
            let (cacrt, cakey) = (format!("{ca}.pem"), format!("{ca}-key.pem"));
            ssl(&[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                &cacrt,
                "-CAkey",
                &cakey,
                "-CAcreateserial",
                "-out",
                &crt,
                "-days",
                "2",
                "-extfile",
                ext,
            ]);
        }
        Certs { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).to_str().unwrap().to_owned()
    }

    /// The service's flags.
    fn server_flags(&self) -> Vec<String> {
        vec![
            "--tlsverify".into(),
            "--tlscacert".into(),
            self.path("ca.pem"),
            "--tlscert".into(),
            self.path("server-cert.pem"),
            "--tlskey".into(),
            self.path("server-key.pem"),
        ]
    }

    /// The docker client's flags, with the client certificate `who` (None: none).
    fn client_flags(&self, who: Option<&str>) -> Vec<String> {
        let mut f = vec![
            "--tlsverify".into(),
            "--tlscacert".into(),
            self.path("ca.pem"),
        ];
        if let Some(w) = who {
            f.extend([
                "--tlscert".into(),
                self.path(&format!("{w}-cert.pem")),
                "--tlskey".into(),
                self.path(&format!("{w}-key.pem")),
            ]);
        }
        f
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The service with TLS on tcp://127.0.0.1:PORT, up when it answers plain HTTP as an
/// HTTPS server does.
fn start_tls(b: &Berth, certs: &Certs) -> Service {
    let host = format!("tcp://127.0.0.1:{}", free_port());
    let mut args: Vec<String> = vec![
        "system".into(),
        "service".into(),
        "--time".into(),
        "0".into(),
    ];
    args.extend(certs.server_flags());
    args.push(host.clone());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut s = Service::spawn(b, &args, None, host);
    wait_until(60, "the TLS service to answer", || {
        if let Some(c) = s.child.as_mut() {
            if let Ok(Some(st)) = c.try_wait() {
                panic!("the service exited ({st}): {}", s.log_text());
            }
        }
        s.request("GET", "/_ping", &[], b"")
            .is_some_and(|r| r.status == 400)
    });
    s
}

fn docker_as(s: &Service, flags: &[String], args: &[&str]) -> std::process::Output {
    let mut all: Vec<&str> = flags.iter().map(String::as_str).collect();
    all.extend_from_slice(args);
    s.docker(&all)
}

#[test]
fn tls_serves_clients_with_a_certificate_and_refuses_others() {
    let b = Berth::with_busybox();
    let certs = Certs::new(&b);
    let s = start_tls(&b, &certs);
    let me = certs.client_flags(Some("client"));

    // A client of the CA: a run (attach hijacked over TLS), exec, ps.
    let out = docker_as(&s, &me, &["run", "--rm", "busybox", "echo", "hi"]);
    assert!(out.status.success(), "{}", s.describe(&["run"], &out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");
    let out = docker_as(
        &s,
        &me,
        &["run", "-d", "--name", "tlsbox", "busybox", "sleep", "600"],
    );
    assert!(out.status.success(), "{}", s.describe(&["run", "-d"], &out));
    let out = docker_as(&s, &me, &["exec", "tlsbox", "sh", "-c", "echo ex; exit 3"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        s.describe(&["exec"], &out)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ex\n");
    let out = docker_as(&s, &me, &["ps", "--format", "{{.Names}}"]);
    assert!(out.status.success(), "{}", s.describe(&["ps"], &out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "tlsbox\n");
    let out = docker_as(&s, &me, &["rm", "-f", "tlsbox"]);
    assert!(out.status.success(), "{}", s.describe(&["rm"], &out));

    // No client certificate, or one of another CA: the handshake fails, nothing runs.
    for who in [None, Some("stranger")] {
        let flags = certs.client_flags(who);
        let out = docker_as(
            &s,
            &flags,
            &["run", "--name", "nope", "busybox", "echo", "no"],
        );
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        // 125: docker run's code for a daemon it cannot talk to (as with dockerd).
        assert_eq!(
            out.status.code(),
            Some(125),
            "{who:?}: {}",
            s.describe(&["run"], &out)
        );
        assert!(err.contains("tls:"), "{who:?}: {err}");
        assert_eq!(b.ok(&["ps", "-aq"]), "", "{who:?}");
    }
    // Plain HTTP: Go's answer, as dockerd gives it.
    let out = s.docker(&["ps"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("Client sent an HTTP request to an HTTPS server."),
        "{}",
        s.describe(&["ps"], &out)
    );
    assert!(s.alive(), "{}", s.log_text());
}

/// A network namespace of the test's own (held by a `sleep` in it; gone with it) with
/// 10.213.0.1: an address that is not loopback, reachable from nowhere else.
struct PrivateNet(std::process::Child);

impl PrivateNet {
    fn new() -> PrivateNet {
        let holder = Command::new("unshare")
            .args(["--net", "sleep", "600"])
            .spawn()
            .unwrap();
        let n = PrivateNet(holder);
        wait_until(30, "the namespace", || {
            std::fs::read_link(format!("/proc/{}/ns/net", n.0.id())).ok()
                != std::fs::read_link("/proc/self/ns/net").ok()
        });
        // On lo (this kernel has no dummy links): still an address that is not loopback's.
        for args in ["link set lo up", "addr add 10.213.0.1/32 dev lo"] {
            let st = n.cmd("ip").args(args.split(' ')).status().unwrap();
            assert!(st.success(), "ip {args}");
        }
        n
    }

    /// `prog` run in the namespace.
    fn cmd(&self, prog: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/proc/{}/ns/net", self.0.id()))
            .arg("--")
            .arg(prog);
        c
    }
}

impl Drop for PrivateNet {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn tls_allows_an_address_other_than_loopback() {
    let b = Berth::new();
    let certs = Certs::new(&b);
    let net = PrivateNet::new();
    let service = |extra: &[String], addr: &str| {
        let mut c = net.cmd(common::BERTH);
        c.arg("--root")
            .arg(b.root())
            .args(["system", "service", "--time", "0"])
            .args(extra)
            .arg(addr)
            .env("BERTH_API", api::api_bin())
            .env("BERTH_RUNTIME", common::runtime())
            .env_remove("BERTH_ROOT")
            .env("BERTH_DAEMON_JSON", "/nonexistent/berth-daemon.json")
            .stdin(std::process::Stdio::null());
        c
    };
    // Without TLS: refused, though the address could be bound.
    let out = service(&[], "tcp://10.213.0.1:2375").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("loopback"), "{err}");
    // With TLS: served, to a client with a certificate of the CA.
    let mut child = service(&certs.server_flags(), "tcp://10.213.0.1:2376")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let docker = |args: &[&str]| {
        let mut c = net.cmd(api::DOCKER28);
        c.args(certs.client_flags(Some("client")))
            .args(["-H", "tcp://10.213.0.1:2376"])
            .args(args)
            .env("DOCKER_CONFIG", b.scratch().join(".docker28"))
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT");
        api::output_within(c, 120)
    };
    let mut last = None;
    wait_until(60, "the service on 10.213.0.1", || {
        assert!(child.try_wait().unwrap().is_none(), "the service exited");
        let out = docker(&["version", "--format", "{{.Server.APIVersion}}"]);
        let ok = out.status.success();
        last = Some(out);
        ok
    });
    assert_eq!(String::from_utf8_lossy(&last.unwrap().stdout), "1.44\n");
    let out = docker(&["ps", "-a", "--format", "{{.ID}}"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
    // SAFETY: kill(2) on our own child's PID.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let st = child.wait().unwrap();
    assert!(st.success(), "{st}");
}

/// `system service ARGS` fails with one line containing `want`.
fn refused(b: &Berth, args: &[String], want: &str) {
    let mut all = vec!["system", "service", "--time", "0"];
    all.extend(args.iter().map(String::as_str));
    let out = b.run(&all);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{args:?}: {err}");
    assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    assert!(err.contains(want), "{args:?}: want {want:?} in {err}");
}

#[test]
fn tls_bad_input_is_one_line_and_leaves_nothing() {
    let b = Berth::new();
    let certs = Certs::new(&b);
    let tcp = format!("tcp://127.0.0.1:{}", free_port());
    let p = |n: &str| certs.path(n);
    let with = |ca: String, cert: String, key: String| -> Vec<String> {
        vec![
            "--tlsverify".into(),
            "--tlscacert".into(),
            ca,
            "--tlscert".into(),
            cert,
            "--tlskey".into(),
            key,
            tcp.clone(),
        ]
    };
    refused(
        &b,
        &["--tlsverify".into(), tcp.clone()],
        "--tlsverify needs --tlscacert, --tlscert, --tlskey",
    );
    refused(
        &b,
        &[
            "--tlsverify".into(),
            "--tlscacert".into(),
            p("ca.pem"),
            tcp.clone(),
        ],
        "--tlsverify needs --tlscert, --tlskey",
    );
    let mut no_verify = certs.server_flags();
    no_verify.remove(0);
    no_verify.push(tcp.clone());
    refused(&b, &no_verify, "need --tlsverify");
    refused(
        &b,
        &with(p("missing.pem"), p("server-cert.pem"), p("server-key.pem")),
        "could not read CA certificate",
    );
    refused(
        &b,
        &with(p("server.ext"), p("server-cert.pem"), p("server-key.pem")),
        "failed to append certificates from PEM file",
    );
    refused(
        &b,
        &with(p("ca.pem"), p("missing.pem"), p("server-key.pem")),
        "could not load X509 key pair",
    );
    // A key that cannot be read (root reads any file: a directory).
    refused(
        &b,
        &with(
            p("ca.pem"),
            p("server-cert.pem"),
            certs.dir.to_str().unwrap().into(),
        ),
        "could not load X509 key pair",
    );
    refused(
        &b,
        &with(p("ca.pem"), p("server-cert.pem"), p("server.ext")),
        "no unencrypted private key",
    );
    refused(
        &b,
        &with(p("ca.pem"), p("server-cert.pem"), p("client-key.pem")),
        "private key does not match public key",
    );
    // A unix socket, given or the default one: refused, and no socket made.
    let sock = b.scratch().join("tls.sock");
    let mut unix = certs.server_flags();
    unix.push(format!("unix://{}", sock.display()));
    refused(&b, &unix, "are for a tcp:// address");
    assert!(!sock.exists());
    refused(&b, &certs.server_flags(), "are for a tcp:// address");
    assert!(!b.root().join("run/docker.sock").exists());
}

/// A group made for one test, removed when dropped (a failed test included).
struct TempGroup {
    name: String,
    gid: u32,
}

impl TempGroup {
    fn new() -> TempGroup {
        let name = format!("bt{}x{}", std::process::id(), rand_suffix());
        let out = Command::new("groupadd").arg(&name).output().unwrap();
        assert!(
            out.status.success(),
            "groupadd: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = Command::new("getent")
            .args(["group", &name])
            .output()
            .unwrap();
        let line = String::from_utf8_lossy(&out.stdout).into_owned();
        let gid = line.split(':').nth(2).unwrap().trim().parse().unwrap();
        TempGroup { name, gid }
    }
}

fn rand_suffix() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
        % 100_000
}

impl Drop for TempGroup {
    fn drop(&mut self) {
        let _ = Command::new("groupdel").arg(&self.name).status();
    }
}

/// `curl --unix-socket SOCK http://x/PATH` as uid `uid`, with `groups` as its only groups.
fn curl_as(uid: u32, groups: Option<u32>, sock: &Path, path: &str) -> std::process::Output {
    let mut c = Command::new("setpriv");
    c.arg(format!("--reuid={uid}"))
        .arg(format!("--regid={uid}"));
    match groups {
        Some(g) => c.arg(format!("--groups={g}")),
        None => c.arg("--clear-groups"),
    };
    c.args(["curl", "-sS", "--max-time", "60", "--unix-socket"])
        .arg(sock)
        .arg(format!("http://x{path}"))
        .env("HOME", "/")
        .output()
        .unwrap()
}

fn mode(p: &Path) -> (u32, u32) {
    let m = std::fs::metadata(p).unwrap();
    (m.mode() & 0o7777, m.gid())
}

#[test]
fn the_socket_group_reaches_the_default_socket_and_nothing_else() {
    let b = Berth::with_busybox();
    let g = TempGroup::new();
    // An unused uid (no passwd entry is needed to be one).
    let uid = 3_900_000 + std::process::id() % 10_000;
    // The test's own scratch directory must be passable to reach the root in it.
    std::fs::set_permissions(
        b.scratch(),
        std::os::unix::fs::PermissionsExt::from_mode(0o711),
    )
    .unwrap();
    let root = b.root().to_path_buf();
    let run = root.join("run");
    let sock = run.join("docker.sock");
    let host = format!("unix://{}", sock.display());

    // A group that does not exist: one line, no socket.
    let out = b.run(&[
        "system",
        "service",
        "--time",
        "0",
        "-G",
        "nosuchgroup-berth-test",
    ]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{err}");
    assert_eq!(
        err.trim_end(),
        "Error: group nosuchgroup-berth-test not found"
    );
    assert!(!sock.exists());

    let mut s = Service::spawn(
        &b,
        &["system", "service", "--time", "0", "--group", &g.name],
        Some(sock.clone()),
        host.clone(),
    );
    s.wait_up();
    assert_eq!(mode(&sock), (0o660, g.gid));
    assert_eq!(mode(&run), (0o710, g.gid));
    assert_eq!(mode(&root), (0o710, g.gid));

    // A member: the API (a request that opens the engine on the root, too).
    let out = curl_as(uid, Some(g.gid), &sock, "/_ping");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "OK", "{out:?}");
    let out = curl_as(uid, Some(g.gid), &sock, "/containers/json");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "[]\n", "{out:?}");
    s.ok(&["run", "--rm", "busybox", "true"]);
    // ...and nothing else: the directories cannot be listed, the state stays private.
    let mut ls = Command::new("setpriv");
    ls.arg(format!("--reuid={uid}"))
        .arg(format!("--regid={uid}"))
        .arg(format!("--groups={}", g.gid))
        .args(["cat"])
        .arg(root.join("berth.db"));
    assert!(!ls.output().unwrap().status.success());
    for d in [&root, &run] {
        let out = Command::new("setpriv")
            .arg(format!("--reuid={uid}"))
            .arg(format!("--regid={uid}"))
            .arg(format!("--groups={}", g.gid))
            .arg("ls")
            .arg(d)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{}: {out:?}", d.display());
    }
    assert_eq!(
        mode(&run),
        (0o710, g.gid),
        "an engine opened on the root closed it"
    );
    assert_eq!(mode(&root), (0o710, g.gid));
    for d in ["containers", "storage", "run/containers", "run/runtime"] {
        assert_eq!(mode(&root.join(d)).0, 0o700, "{d}");
    }
    assert_eq!(mode(&root.join("berth.db")).0, 0o600);
    // What the two directories hold directly is the owner's alone (the socket and the
    // run directory aside),
    // a container on a user network (its namespace, the resolver) included.
    b.ok(&["network", "create", "gnet"]);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "gc",
        "--network",
        "gnet",
        "busybox",
        "sleep",
        "600",
    ]);
    for d in [&root, &run] {
        for e in std::fs::read_dir(d).unwrap().flatten() {
            let m = std::fs::symlink_metadata(e.path()).unwrap();
            if e.path() == sock || e.path() == run || m.file_type().is_symlink() {
                continue;
            }
            assert_eq!(
                m.mode() & 0o077,
                0,
                "{} is {:o}",
                e.path().display(),
                m.mode() & 0o7777
            );
        }
    }
    b.ok(&["rm", "-f", "gc"]);
    b.ok(&["network", "rm", "gnet"]);

    // Not a member: refused at the directory.
    let out = curl_as(uid, None, &sock, "/_ping");
    assert!(!out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");

    // Without a group the directories are private again.
    drop(s);
    let mut s = Service::spawn(
        &b,
        &["system", "service", "--time", "0", "--group", ""],
        Some(sock.clone()),
        host,
    );
    s.wait_up();
    assert_eq!(mode(&run).0, 0o700);
    assert_eq!(mode(&root).0, 0o700);
    assert_eq!(mode(&sock), (0o660, 0));
    let out = curl_as(uid, Some(g.gid), &sock, "/_ping");
    assert!(!out.status.success(), "{out:?}");
}

#[test]
fn an_activated_socket_in_the_run_directory_reaches_its_group() {
    let b = Berth::with_busybox();
    let g = TempGroup::new();
    let uid = 3_800_000 + std::process::id() % 10_000;
    std::fs::set_permissions(
        b.scratch(),
        std::os::unix::fs::PermissionsExt::from_mode(0o711),
    )
    .unwrap();
    let root = b.root().to_path_buf();
    let run = root.join("run");
    let sock = run.join("docker.sock");
    let mut c = Command::new("systemd-socket-activate");
    c.arg("-l")
        .arg(&sock)
        .arg(common::BERTH)
        .arg("--root")
        .arg(&root)
        .args(["system", "service", "--time", "0"])
        .env("BERTH_API", api::api_bin())
        .env("BERTH_RUNTIME", common::runtime())
        .env("BERTH_DAEMON_JSON", "/nonexistent/berth-daemon.json")
        .env_remove("BERTH_ROOT")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let child = c.spawn().unwrap();
    let mut s = Service::adopt(
        &b,
        child,
        Some(sock.clone()),
        format!("unix://{}", sock.display()),
    );
    wait_until(60, "the activation socket", || sock.exists());
    // What berth.socket's SocketGroup= and SocketMode= do.
    nix::unistd::chown(&sock, None, Some(nix::unistd::Gid::from_raw(g.gid))).unwrap();
    std::fs::set_permissions(&sock, std::os::unix::fs::PermissionsExt::from_mode(0o660)).unwrap();
    s.wait_up();
    s.ok(&["ps"]);
    assert_eq!(mode(&run), (0o710, g.gid));
    assert_eq!(mode(&root), (0o710, g.gid));
    let out = curl_as(uid, Some(g.gid), &sock, "/containers/json");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "[]\n", "{out:?}");
    let out = curl_as(uid, None, &sock, "/_ping");
    assert!(!out.status.success(), "{out:?}");
    let st = s.signal_and_wait(libc::SIGTERM);
    assert!(st.success(), "{st}");
}
