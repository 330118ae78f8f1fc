//! `pull`, `push`, `login`, `logout` against a real registry: Debian's `docker-registry`
//! (CNCF distribution) started here on 127.0.0.1 with its storage in a temporary
//! directory — plain, with htpasswd auth, with TLS (a CA made by the test) — and a small
//! TCP proxy in front of it that cuts or stalls blob downloads.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tempfile::TempDir;

const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

#[derive(Default)]
struct RegOpts {
    htpasswd: Option<(&'static str, &'static str)>,
    tls: bool,
    /// Token auth: the token server's address and its signing certificate.
    token: Option<(String, PathBuf)>,
}

/// A `docker-registry` on 127.0.0.1:<free port>, killed (and its storage removed) on drop.
struct Registry {
    child: Child,
    dir: TempDir,
    addr: String,
    /// The CA that signed its certificate (TLS only).
    ca: Option<PathBuf>,
}

fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

impl Registry {
    fn start(o: RegOpts) -> Registry {
        assert!(
            Path::new(REGISTRY_BIN).exists(),
            "{REGISTRY_BIN} is missing: apt-get install docker-registry"
        );
        let dir = tempfile::Builder::new()
            .prefix("berth-registry-")
            .tempdir()
            .unwrap();
        let d = dir.path();
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let mut conf = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
            d.join("data").display()
        );
        if let Some((user, pass)) = o.htpasswd {
            let out = run_ok(Command::new("htpasswd").args(["-Bbn", user, pass]));
            std::fs::write(d.join("htpasswd"), &out.stdout).unwrap();
            conf.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                d.join("htpasswd").display()
            ));
        }
        if let Some((addr, cert)) = &o.token {
            conf.push_str(&format!(
                "auth:\n  token:\n    realm: http://{addr}/token\n    service: berth-test-registry\n    issuer: berth-test-issuer\n    rootcertbundle: {}\n",
                cert.display()
            ));
        }
        let mut ca = None;
        if o.tls {
            make_certs(d);
            conf.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                d.join("server.crt").display(),
                d.join("server.key").display()
            ));
            ca = Some(d.join("ca.crt"));
        }
        std::fs::write(d.join("config.yml"), conf).unwrap();
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(d.join("config.yml"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("registry.log")).unwrap())
            .spawn()
            .unwrap();
        let r = Registry {
            child,
            dir,
            addr,
            ca,
        };
        wait_until(20, "the registry to listen", || {
            TcpStream::connect(&r.addr).is_ok()
        });
        r
    }

    /// The registry's own file for blob `hex` (distribution's filesystem layout).
    fn blob_file(&self, hex: &str) -> PathBuf {
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A CA and a server certificate for 127.0.0.1 signed by it (openssl CLI).
fn make_certs(d: &Path) {
    let ossl = |args: &[&str]| {
        run_ok(Command::new("openssl").args(args).current_dir(d));
    };
    ossl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=berth test CA",
    ]);
    ossl(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        d.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    ossl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
}

/// Runs berth with a private Docker config directory (and extra environment).
fn berth(b: &Berth, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut c = b.cmd(args);
    c.env("DOCKER_CONFIG", b.scratch().join("docker-config"));
    c.env_remove("BERTH_CERTS_D");
    c.env_remove("BERTH_INSECURE_REGISTRIES");
    c.env_remove("BERTH_PUSH_CHUNK_SIZE");
    c.env("BERTH_DAEMON_JSON", "/nonexistent");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn ok(b: &Berth, env: &[(&str, &str)], args: &[&str]) -> String {
    let out = berth(b, env, args);
    assert!(out.status.success(), "{}", describe(args, &out));
    text(&out.stdout)
}

fn fails(b: &Berth, env: &[(&str, &str)], args: &[&str], code: i32) -> String {
    let out = berth(b, env, args);
    check_failure(args, &out, code)
}

/// Every blob hashes to its name, no temporary or partial file is left, every layer
/// directory belongs to a registered image and every image's layers are there.
fn fsck(b: &Berth) {
    fsck_with(b, false)
}

/// [`fsck`]; `killed`: a killed pull may leave staging areas (whole layers being
/// unpacked), which the next command that opens the store removes.
fn fsck_with(b: &Berth, killed: bool) {
    let dir = b.root().join("blobs/sha256");
    for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        assert!(!name.starts_with('.'), "left in the blob store: {name}");
        let data = std::fs::read(e.path()).unwrap();
        assert_eq!(hex(&data), name, "blob {name} is corrupt");
    }
    let mut want = std::collections::BTreeSet::new();
    for id in b.image_ids() {
        let diff_ids = b.diff_ids(&id);
        let mut prev: Option<String> = None;
        for d in diff_ids {
            let chain = match &prev {
                None => d.clone(),
                Some(p) => sha(format!("{p} {d}").as_bytes()),
            };
            want.insert(chain.trim_start_matches("sha256:").to_owned());
            prev = Some(chain);
        }
    }
    let have: std::collections::BTreeSet<String> = b.layer_dirs().into_iter().collect();
    assert_eq!(have, want, "layer directories vs registered images");
    let tmp: Vec<_> = ["storage/layers", "storage/staging", "blobs/staging"]
        .iter()
        .flat_map(|d| {
            std::fs::read_dir(b.root().join(d))
                .into_iter()
                .flatten()
                .flatten()
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.chars().all(|c| c.is_ascii_hexdigit()))
        .collect();
    assert!(killed || tmp.is_empty(), "temporary layers left: {tmp:?}");
}

/// The last line of `out`.
fn last_line(out: &str) -> &str {
    out.lines().last().unwrap_or("")
}

/// A store with busybox imported and tagged `REG/bb:1`.
fn busybox_store(reg: &Registry) -> Berth {
    let b = Berth::with_busybox();
    ok(&b, &[], &["tag", "busybox", &format!("{}/bb:1", reg.addr)]);
    b
}

#[test]
fn push_rmi_pull_run_round_trip() {
    let reg = Registry::start(RegOpts::default());
    let b = busybox_store(&reg);
    let name = format!("{}/bb:1", reg.addr);
    let id = b.image_id(&name);
    let diff_ids = b.diff_ids(&name);

    let out = ok(&b, &[], &["push", &name]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        format!("The push refers to repository [{}/bb]", reg.addr),
        "{out}"
    );
    assert!(lines.iter().any(|l| l.ends_with(": Pushed")), "{out}");
    let last = last_line(&out);
    let rest = last.strip_prefix("1: digest: sha256:").expect(&out);
    let (mhex, size) = rest.split_once(" size: ").unwrap();
    assert!(is_hex64(mhex), "{out}");
    let digest = format!("sha256:{mhex}");
    // The registry serves exactly that manifest.
    let manifest = std::fs::read(reg.blob_file(mhex)).unwrap();
    assert_eq!(manifest.len().to_string(), size);
    assert_eq!(
        b.inspect(&name)["RepoDigests"][0],
        format!("{}/bb@{digest}", reg.addr)
    );

    // Again: nothing to upload.
    let out = ok(&b, &[], &["push", &name]);
    assert!(out.contains(": Layer already exists"), "{out}");
    assert!(!out.contains(": Pushed"), "{out}");
    assert!(last_line(&out).contains(&digest), "{out}");
    // Another repository of the same registry: the layer is mounted, not uploaded.
    let other = format!("{}/other/bb:2", reg.addr);
    ok(&b, &[], &["tag", &name, &other]);
    let out = ok(&b, &[], &["push", &other]);
    assert!(out.contains(": Mounted from bb"), "{out}");
    assert!(last_line(&out).starts_with("2: digest: "), "{out}");

    ok(&b, &[], &["rmi", &name, &other, "busybox"]);
    assert!(b.image_ids().is_empty());
    let out = ok(&b, &[], &["pull", &name]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1: Pulling from bb", "{out}");
    assert!(
        lines.iter().any(|l| l.ends_with(": Pulling fs layer")),
        "{out}"
    );
    assert!(
        lines.iter().any(|l| l.ends_with(": Pull complete")),
        "{out}"
    );
    let n = lines.len();
    assert_eq!(lines[n - 3], format!("Digest: {digest}"), "{out}");
    assert_eq!(
        lines[n - 2],
        format!("Status: Downloaded newer image for {name}"),
        "{out}"
    );
    assert_eq!(lines[n - 1], name, "{out}");
    assert_eq!(
        b.image_id(&name),
        id,
        "the image ID survives the round trip"
    );
    assert_eq!(b.diff_ids(&name), diff_ids);
    assert_eq!(
        b.inspect(&name)["RepoDigests"][0],
        format!("{}/bb@{digest}", reg.addr)
    );
    assert_eq!(
        ok(&b, &[], &["run", "--rm", &name, "echo", "pulled"]),
        "pulled\n"
    );
    fsck(&b);

    // Pulled again: up to date; -q prints the reference only.
    let out = ok(&b, &[], &["pull", &name]);
    assert!(
        out.contains(&format!("Status: Image is up to date for {name}")),
        "{out}"
    );
    assert_eq!(ok(&b, &[], &["pull", "-q", &name]), format!("{name}\n"));
    // By digest, through the image alias.
    let by_digest = format!("{}/bb@{digest}", reg.addr);
    let out = ok(&b, &[], &["image", "pull", &by_digest]);
    assert_eq!(last_line(&out), by_digest, "{out}");
    // A tag-less name gets :latest, as Docker says.
    let e = fails(&b, &[], &["pull", &format!("{}/bb", reg.addr)], 1);
    assert!(e.contains("manifest unknown"), "{e}");

    // A committed image (its config is only in the database) round-trips too.
    ok(
        &b,
        &[],
        &[
            "run",
            "--name",
            "mk",
            &name,
            "sh",
            "-c",
            "echo committed > /c",
        ],
    );
    let committed = format!("{}/committed:1", reg.addr);
    ok(&b, &[], &["commit", "mk", &committed]);
    ok(&b, &[], &["rm", "mk"]);
    ok(&b, &[], &["push", &committed]);
    let d = Berth::new();
    assert_eq!(
        ok(&d, &[], &["run", "--rm", &committed, "cat", "/c"]),
        "committed\n"
    );
    assert_eq!(d.image_id(&committed), b.image_id(&committed));
    assert_eq!(d.diff_ids(&committed), b.diff_ids(&committed));

    // save reproduces what was pulled.
    let tar = b.scratch().join("s.tar");
    ok(&b, &[], &["save", "-o", tar.to_str().unwrap(), &name]);
    let c = Berth::new();
    ok(&c, &[], &["load", "-i", tar.to_str().unwrap()]);
    assert_eq!(c.image_id(&name), id);
}

/// `images` rows as (repository, tag, digest) from `images --digests`.
fn digest_rows(b: &Berth) -> Vec<(String, String, String)> {
    ok(b, &[], &["images", "--digests"])
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[0].to_owned(), f[1].to_owned(), f[2].to_owned())
        })
        .collect()
}

/// A pull by digest records `repo@digest` (RepoDigests, an `images` row with tag
/// `<none>`), which `run`, `tag`, `inspect` and `rmi` accept, as Docker 20.10 does.
#[test]
fn pull_by_digest_records_a_digest_reference() {
    let reg = Registry::start(RegOpts::default());
    let b = busybox_store(&reg);
    let name = format!("{}/bb:1", reg.addr);
    let out = ok(&b, &[], &["push", &name]);
    let digest = last_line(&out)
        .split_whitespace()
        .nth(2)
        .expect(&out)
        .to_owned();
    let repo = format!("{}/bb", reg.addr);
    let by_digest = format!("{repo}@{digest}");
    let id = b.image_id(&name);

    // Present by tag: up to date, and the digest reference is recorded.
    let out = ok(&b, &[], &["pull", &by_digest]);
    assert!(
        out.contains(&format!("Status: Image is up to date for {by_digest}")),
        "{out}"
    );
    assert_eq!(b.inspect(&name)["RepoDigests"][0], by_digest.as_str());
    // Removing the repository's last tag removes its digest references too.
    let out = ok(&b, &[], &["rmi", &name, "busybox"]);
    assert!(out.contains(&format!("Untagged: {name}\n")), "{out}");
    assert!(out.contains(&format!("Untagged: {by_digest}\n")), "{out}");
    assert!(b.image_ids().is_empty(), "{out}");

    // Pulled by digest alone.
    ok(&b, &[], &["pull", &by_digest]);
    let images = ok(&b, &[], &["images"]);
    let row: Vec<&str> = images
        .lines()
        .nth(1)
        .expect(&images)
        .split_whitespace()
        .collect();
    assert_eq!(row[..3], [repo.as_str(), "<none>", &id[7..19]], "{images}");
    assert_eq!(images.lines().count(), 2, "{images}");
    assert_eq!(
        digest_rows(&b),
        vec![(repo.clone(), "<none>".to_owned(), digest.clone())]
    );
    assert_eq!(
        ok(
            &b,
            &[],
            &[
                "inspect",
                "-f",
                "{{json .RepoTags}} {{json .RepoDigests}}",
                &by_digest
            ]
        ),
        format!("[] [\"{by_digest}\"]\n")
    );
    // Untagged, it counts as dangling, as in Docker 20.10.
    assert_eq!(
        ok(
            &b,
            &[],
            &["images", "-q", "--no-trunc", "-f", "dangling=true"]
        ),
        format!("{id}\n")
    );
    assert_eq!(
        ok(&b, &[], &["run", "--rm", &by_digest, "echo", "hi"]),
        "hi\n"
    );
    ok(&b, &[], &["tag", &by_digest, "new:tag"]);
    assert_eq!(b.image_id("new:tag"), id);
    let rows = digest_rows(&b);
    assert!(
        rows.contains(&(repo.clone(), "<none>".to_owned(), digest.clone())),
        "{rows:?}"
    );
    assert!(
        rows.iter().any(|r| r.0 == "new" && r.1 == "tag"),
        "{rows:?}"
    );
    let rd = b.inspect("new:tag")["RepoDigests"].clone();
    assert!(rd.as_array().unwrap().contains(&json!(by_digest)), "{rd}");

    // rmi REPO@DIGEST untags only that reference while a tag remains (event `untag`).
    let untags = || {
        ok(
            &b,
            &[],
            &[
                "events",
                "--since",
                "1h",
                "--until",
                "0s",
                "--filter",
                "event=untag",
                "--format",
                "{{.Type}} {{.Action}} {{.Actor.ID}}",
            ],
        )
    };
    let before = untags();
    assert_eq!(
        ok(&b, &[], &["rmi", &by_digest]),
        format!("Untagged: {by_digest}\n")
    );
    assert_eq!(untags(), format!("{before}image untag {id}\n"));
    assert_eq!(b.image_id("new:tag"), id);
    let rd = b.inspect("new:tag")["RepoDigests"].clone();
    assert!(!rd.as_array().unwrap().contains(&json!(by_digest)), "{rd}");
    assert!(!ok(&b, &[], &["images"]).contains(&repo));
    // Gone now: Docker's error line.
    let e = fails(&b, &[], &["rmi", &by_digest], 1);
    assert!(e.ends_with(&format!("No such image: {by_digest}")), "{e}");
    let unknown = format!("{repo}@sha256:{}", "0".repeat(64));
    let e = fails(&b, &[], &["rmi", &unknown], 1);
    assert!(e.ends_with(&format!("No such image: {unknown}")), "{e}");

    // The only reference: rmi REPO@DIGEST deletes the image.
    ok(&b, &[], &["rmi", "new:tag"]);
    ok(&b, &[], &["pull", &by_digest]);
    let out = ok(&b, &[], &["rmi", &by_digest]);
    assert!(
        out.starts_with(&format!("Untagged: {by_digest}\nDeleted: {id}\n")),
        "{out}"
    );
    assert!(b.image_ids().is_empty());
    // `image prune` removes an image that has only a digest reference, as Docker 20.10.
    ok(&b, &[], &["pull", &by_digest]);
    let out = ok(&b, &[], &["image", "prune", "-f"]);
    assert!(out.contains(&format!("untagged: {by_digest}\n")), "{out}");
    assert!(b.image_ids().is_empty());
    fsck(&b);
}

#[test]
fn gzip_layers_chunked_push_and_run_pull() {
    let reg = Registry::start(RegOpts::default());
    let a = Berth::new();
    let name = format!("{}/multi/layer:v1", reg.addr);
    // Three gzip layers (one of 3 MB of noise), loaded from a docker-archive.
    let img = ImageSpec::new(
        &name,
        vec![
            Layer::busybox(),
            Layer::gz(layer_tar(&[
                dir("data"),
                file("data/noise", &noise(7, 3 << 20)),
            ])),
            Layer::gz(layer_tar(&[file("data/hello", b"hello from layer 3\n")])),
        ],
    );
    a.run_stdin(&["load"], &docker_archive(std::slice::from_ref(&img)));
    let id = a.image_id(&name);
    // Chunked uploads (PATCH of 1 MiB, then PUT), as a registry that asks gets them.
    let out = ok(
        &a,
        &[("BERTH_PUSH_CHUNK_SIZE", "1048576")],
        &["push", &name],
    );
    assert_eq!(out.matches(": Pushed").count(), 3, "{out}");

    // A fresh store: run pulls what is missing (progress and Docker's notice on stderr).
    let b = Berth::new();
    let out = berth(&b, &[], &["run", "--rm", &name, "cat", "/data/hello"]);
    assert!(out.status.success(), "{}", describe(&["run"], &out));
    assert_eq!(text(&out.stdout), "hello from layer 3\n");
    let err = text(&out.stderr);
    assert!(
        err.starts_with(&format!("Unable to find image '{name}' locally\n")),
        "{err}"
    );
    assert!(err.contains("Status: Downloaded newer image"), "{err}");
    assert_eq!(b.image_id(&name), id);
    assert_eq!(b.diff_ids(&name), a.diff_ids(&name));
    // Present: no pull; --pull always asks the registry again; never does not.
    let out = berth(&b, &[], &["run", "--rm", &name, "true"]);
    assert_eq!(text(&out.stderr), "");
    let out = berth(&b, &[], &["run", "--rm", "--pull", "always", &name, "true"]);
    assert!(out.status.success());
    assert!(text(&out.stderr).contains("Image is up to date"));
    let c = Berth::new();
    let e = fails(
        &c,
        &[],
        &["run", "--rm", "--pull", "never", &name, "true"],
        125,
    );
    // Docker's words when nothing may be pulled.
    assert!(e.contains(&format!("No such image: {name}")), "{e}");
    let e = fails(&c, &[], &["create", "--pull", "sometimes", &name], 125);
    assert!(e.contains("invalid pull option"), "{e}");
    fsck(&b);
    // vfs: layers download in parallel, then unpack in order on their parents.
    let v = Berth::with_driver("vfs");
    ok(&v, &[], &["pull", &name]);
    assert_eq!(v.image_id(&name), id);
    assert_eq!(
        ok(&v, &[], &["run", "--rm", &name, "cat", "/data/hello"]),
        "hello from layer 3\n"
    );
    fsck(&v);
}

#[test]
fn htpasswd_login_push_pull_logout() {
    let reg = Registry::start(RegOpts {
        htpasswd: Some(("berth", "s3cret")),
        ..RegOpts::default()
    });
    let b = busybox_store(&reg);
    let name = format!("{}/bb:1", reg.addr);
    let config = b.scratch().join("docker-config/config.json");
    let e = fails(&b, &[], &["push", &name], 1);
    assert!(e.contains("unauthorized"), "{e}");
    let e = fails(&b, &[], &["pull", &name], 1);
    assert!(e.contains("unauthorized"), "{e}");

    // A wrong password: one clear line, nothing stored.
    let login = |pw: &str| {
        let mut c = b.cmd(&["login", "-u", "berth", "--password-stdin", &reg.addr]);
        c.env("DOCKER_CONFIG", b.scratch().join("docker-config"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{pw}\n").as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let out = login("wrong");
    let e = check_failure(&["login"], &out, 1);
    assert!(e.contains("unauthorized"), "{e}");
    assert!(!config.exists(), "a failed login stored something");
    let e = fails(&b, &[], &["login", &reg.addr], 1);
    assert!(e.contains("--password-stdin"), "{e}");

    let out = login("s3cret");
    assert!(out.status.success(), "{}", describe(&["login"], &out));
    assert_eq!(text(&out.stdout), "Login Succeeded\n");
    let v: Value = serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
    assert_eq!(
        v["auths"][&reg.addr]["auth"], "YmVydGg6czNjcmV0",
        "base64 of berth:s3cret"
    );

    let out = ok(&b, &[], &["push", &name]);
    assert!(out.contains(": Pushed"), "{out}");
    let c = Berth::new();
    ok(
        &c,
        &[(
            "DOCKER_CONFIG",
            b.scratch().join("docker-config").to_str().unwrap(),
        )],
        &["pull", &name],
    );
    assert_eq!(c.image_id(&name), b.image_id(&name));

    assert_eq!(
        ok(&b, &[], &["logout", &reg.addr]),
        format!("Removing login credentials for {}\n", reg.addr)
    );
    assert_eq!(
        ok(&b, &[], &["logout", &reg.addr]),
        format!("Not logged in to {}\n", reg.addr)
    );
    let e = fails(&b, &[], &["pull", &name], 1);
    assert!(e.contains("unauthorized"), "{e}");
}

#[test]
fn tls_with_a_private_ca() {
    let reg = Registry::start(RegOpts {
        tls: true,
        ..RegOpts::default()
    });
    let b = busybox_store(&reg);
    let name = format!("{}/bb:1", reg.addr);
    // Not trusted: refused, and no fallback to plain HTTP helps a TLS-only registry.
    let e = fails(&b, &[], &["push", &name], 1);
    assert!(
        e.to_lowercase().contains("certificate") || e.contains("UnknownIssuer"),
        "{e}"
    );
    // Trusted through certs.d/HOST:PORT/ca.crt.
    let certs = b.scratch().join("certs.d");
    std::fs::create_dir_all(certs.join(&reg.addr)).unwrap();
    std::fs::copy(
        reg.ca.as_ref().unwrap(),
        certs.join(&reg.addr).join("ca.crt"),
    )
    .unwrap();
    let env = [("BERTH_CERTS_D", certs.to_str().unwrap())];
    let out = ok(&b, &env, &["push", &name]);
    assert!(out.contains(": Pushed"), "{out}");
    let c = Berth::new();
    ok(&c, &env, &["pull", &name]);
    assert_eq!(c.image_id(&name), b.image_id(&name));
    // --tls-verify=false: no CA needed.
    let d = Berth::new();
    ok(&d, &[], &["pull", "--tls-verify=false", &name]);
    assert_eq!(d.image_id(&name), b.image_id(&name));
    // In daemon.json's insecure-registries: the certificate is not checked (Docker's
    // "ignore the certificate error"); a daemon.json that is not JSON is one line.
    let cfg = b.scratch().join("daemon.json");
    std::fs::write(
        &cfg,
        format!(r#"{{"insecure-registries": ["{}"]}}"#, reg.addr),
    )
    .unwrap();
    let e = Berth::new();
    ok(
        &e,
        &[("BERTH_DAEMON_JSON", cfg.to_str().unwrap())],
        &["pull", &name],
    );
    assert_eq!(e.image_id(&name), b.image_id(&name));
    std::fs::write(&cfg, "{").unwrap();
    let f = Berth::new();
    let err = fails(
        &f,
        &[("BERTH_DAEMON_JSON", cfg.to_str().unwrap())],
        &["pull", &name],
        1,
    );
    assert!(err.contains("daemon.json: EOF while parsing"), "{err}");
    assert!(f.image_ids().is_empty());
    // A certs.d file that is not a certificate is an error that names it.
    std::fs::write(certs.join(&reg.addr).join("bad.crt"), "junk").unwrap();
    let e = fails(&c, &env, &["pull", &name], 1);
    assert!(e.contains("bad.crt"), "{e}");
}

// ------------------------------------------------------------ raw registry API

/// One HTTP/1.1 request to the registry without auth: (status, headers, body).
fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    let split = resp.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&resp[..split]).into_owned();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head, resp[split + 4..].to_vec())
}

fn header<'a>(head: &'a str, name: &str) -> &'a str {
    head.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
        .unwrap()
}

fn put_blob(addr: &str, repo: &str, data: &[u8]) -> String {
    let (st, head, _) = http(
        addr,
        "POST",
        &format!("/v2/{repo}/blobs/uploads/"),
        &[],
        b"",
    );
    assert_eq!(st, 202, "{head}");
    let loc = header(&head, "location");
    let path = loc.strip_prefix(&format!("http://{addr}")).unwrap_or(loc);
    let sep = if path.contains('?') { '&' } else { '?' };
    let d = sha(data);
    let (st, head, _) = http(
        addr,
        "PUT",
        &format!("{path}{sep}digest={d}"),
        &[("Content-Type", "application/octet-stream")],
        data,
    );
    assert_eq!(st, 201, "{head}");
    d
}

fn put_manifest(addr: &str, repo: &str, tag: &str, mt: &str, m: &[u8]) {
    let (st, head, body) = http(
        addr,
        "PUT",
        &format!("/v2/{repo}/manifests/{tag}"),
        &[("Content-Type", mt)],
        m,
    );
    assert_eq!(st, 201, "{head} {}", String::from_utf8_lossy(&body));
}

/// Pushes a one-layer image for `arch` by hand; returns (manifest bytes, config digest).
fn push_arch_image(addr: &str, repo: &str, arch: &str, content: &[u8]) -> (Vec<u8>, String) {
    let tar = layer_tar(&[file("arch", content)]);
    let layer = put_blob(addr, repo, &tar);
    let config = serde_json::to_vec(&json!({
        "architecture": arch, "os": "linux",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [sha(&tar)]},
    }))
    .unwrap();
    let cd = put_blob(addr, repo, &config);
    let m = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": tar.len()}],
    }))
    .unwrap();
    put_manifest(
        addr,
        repo,
        &format!("{arch}-only"),
        "application/vnd.oci.image.manifest.v1+json",
        &m,
    );
    (m, cd)
}

#[test]
fn multi_arch_index_and_platform() {
    let reg = Registry::start(RegOpts::default());
    let (host_arch, other_arch) = if cfg!(target_arch = "aarch64") {
        ("arm64", "amd64")
    } else {
        ("amd64", "arm64")
    };
    let (mh, ch) = push_arch_image(&reg.addr, "multi", host_arch, b"host\n");
    let (mo, co) = push_arch_image(&reg.addr, "multi", other_arch, b"other\n");
    let mut other_platform = json!({"os": "linux", "architecture": other_arch});
    if other_arch == "arm64" {
        other_platform["variant"] = "v8".into();
    }
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(&mo), "size": mo.len(), "platform": other_platform},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(&mh), "size": mh.len(), "platform": {"os": "linux", "architecture": host_arch}},
        ],
    }))
    .unwrap();
    put_manifest(
        &reg.addr,
        "multi",
        "idx",
        "application/vnd.oci.image.index.v1+json",
        &index,
    );
    let name = format!("{}/multi:idx", reg.addr);

    let b = Berth::new();
    let out = ok(&b, &[], &["pull", &name]);
    assert!(
        out.contains(&format!("Digest: {}", sha(&index))),
        "the index digest: {out}"
    );
    assert_eq!(b.image_id(&name), ch, "the host's platform");
    assert_eq!(b.inspect(&name)["Architecture"], host_arch);

    let c = Berth::new();
    ok(
        &c,
        &[],
        &["pull", "--platform", &format!("linux/{other_arch}"), &name],
    );
    assert_eq!(c.image_id(&name), co, "--platform chose the other entry");
    assert_eq!(c.inspect(&name)["Architecture"], other_arch);

    let e = fails(&c, &[], &["pull", "--platform", "linux/s390x", &name], 1);
    assert!(e.contains("no matching manifest for linux/s390x"), "{e}");
    let e = fails(&c, &[], &["pull", "--platform", "Linux//x", &name], 1);
    assert!(e.contains("invalid platform"), "{e}");
    // A single-platform manifest that is not the one asked for.
    let e = fails(
        &c,
        &[],
        &[
            "pull",
            "--platform",
            &format!("linux/{other_arch}"),
            &format!("{}/multi:{host_arch}-only", reg.addr),
        ],
        1,
    );
    assert!(e.contains("does not match the specified platform"), "{e}");
    fsck(&c);
}

#[test]
fn concurrent_pulls_store_the_image_once() {
    let reg = Registry::start(RegOpts::default());
    let a = Berth::new();
    let name = format!("{}/conc:1", reg.addr);
    let img = ImageSpec::new(
        &name,
        vec![
            Layer::busybox(),
            Layer::gz(layer_tar(&[file("n1", &noise(1, 2 << 20))])),
            Layer::gz(layer_tar(&[file("n2", &noise(2, 2 << 20))])),
        ],
    );
    a.run_stdin(&["load"], &docker_archive(std::slice::from_ref(&img)));
    ok(&a, &[], &["push", &name]);

    let b = Berth::new();
    let children: Vec<Child> = (0..2)
        .map(|_| {
            let mut c = b.cmd(&["pull", "-q", &name]);
            c.env("DOCKER_CONFIG", b.scratch().join("docker-config"));
            c.stdout(Stdio::piped()).stderr(Stdio::piped());
            c.spawn().unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", describe(&["pull"], &out));
        assert_eq!(text(&out.stdout), format!("{name}\n"));
    }
    assert_eq!(b.image_ids(), vec![a.image_id(&name)]);
    assert_eq!(b.layer_dirs().len(), 3);
    // Three layer blobs, the config, the manifest.
    assert_eq!(b.blobs().len(), 5, "{:?}", b.blobs());
    fsck(&b);
    assert_eq!(ok(&b, &[], &["run", "--rm", &name, "true"]), "");
    ok(&b, &[], &["rmi", &name]);
    assert!(b.layer_dirs().is_empty());
    assert!(b.blobs().is_empty());
}

// ------------------------------------------------------------ a proxy that breaks

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Pass,
    /// Close the connection after this many response bytes of a blob GET (once).
    Cut(u64),
    /// Stop forwarding after this many response bytes of a blob GET.
    Stall(u64),
}

/// A TCP proxy on 127.0.0.1 in front of the registry that breaks blob downloads of
/// `target` (a digest hex) as its mode says, and records the requests it forwards.
struct Proxy {
    addr: String,
    mode: Arc<Mutex<Mode>>,
    requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    cuts: Arc<AtomicUsize>,
    /// Forward requests without their `Range` header (a registry that ignores ranges).
    strip_range: Arc<AtomicBool>,
    /// Answer a GET of the target blob with a 307 to this address instead of forwarding.
    redirect_to: Arc<Mutex<Option<String>>>,
}

impl Proxy {
    fn start(upstream: &str, target: &str) -> Proxy {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        l.set_nonblocking(true).unwrap();
        let p = Proxy {
            addr,
            mode: Arc::new(Mutex::new(Mode::Pass)),
            requests: Arc::new(Mutex::new(Vec::new())),
            stop: Arc::new(AtomicBool::new(false)),
            cuts: Arc::new(AtomicUsize::new(0)),
            strip_range: Arc::new(AtomicBool::new(false)),
            redirect_to: Arc::new(Mutex::new(None)),
        };
        let (mode, requests, stop, cuts) = (
            p.mode.clone(),
            p.requests.clone(),
            p.stop.clone(),
            p.cuts.clone(),
        );
        let (strip_range, redirect_to) = (p.strip_range.clone(), p.redirect_to.clone());
        let upstream = upstream.to_owned();
        let target = target.to_owned();
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let client = match l.accept() {
                    Ok((c, _)) => c,
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    }
                };
                client.set_nonblocking(false).unwrap();
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let armed = Arc::new(AtomicBool::new(false));
                let sent = Arc::new(AtomicU64::new(0));
                // Client to server: record requests, arm on a GET of the target blob.
                {
                    let (mut c, mut s) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                    let (requests, armed, sent, target) = (
                        requests.clone(),
                        armed.clone(),
                        sent.clone(),
                        target.clone(),
                    );
                    let (strip_range, redirect_to) = (strip_range.clone(), redirect_to.clone());
                    let mut reply = client.try_clone().unwrap();
                    std::thread::spawn(move || {
                        let mut buf = vec![0; 65536];
                        while let Ok(n) = c.read(&mut buf) {
                            if n == 0 {
                                break;
                            }
                            let chunk = String::from_utf8_lossy(&buf[..n]).into_owned();
                            if chunk.starts_with("GET ")
                                || chunk.starts_with("HEAD ")
                                || chunk.starts_with("PUT ")
                                || chunk.starts_with("POST ")
                                || chunk.starts_with("PATCH ")
                            {
                                let is_target = chunk.starts_with("GET ")
                                    && chunk.contains(&format!("/blobs/sha256:{target}"));
                                armed.store(is_target, Ordering::SeqCst);
                                sent.store(0, Ordering::SeqCst);
                                requests.lock().unwrap().push(chunk.clone());
                                let to = redirect_to.lock().unwrap().clone();
                                if let (true, Some(to)) = (is_target, to) {
                                    let path = chunk.split(' ').nth(1).unwrap_or("/");
                                    let _ = write!(reply, "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://{to}{path}\r\nContent-Length: 0\r\n\r\n");
                                    continue;
                                }
                                if strip_range.load(Ordering::SeqCst)
                                    && chunk.contains("\r\nRange: ")
                                {
                                    let rewritten =
                                        chunk.replacen("\r\nRange: ", "\r\nX-Dropped-Range: ", 1);
                                    if s.write_all(rewritten.as_bytes()).is_err() {
                                        break;
                                    }
                                    continue;
                                }
                            }
                            if s.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = s.shutdown(std::net::Shutdown::Write);
                    });
                }
                // Server to client: break the armed response.
                let (mut c, mut s) = (client, server);
                let (mode, stop, cuts) = (mode.clone(), stop.clone(), cuts.clone());
                std::thread::spawn(move || {
                    let mut buf = vec![0; 16384];
                    while let Ok(n) = s.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        if armed.load(Ordering::SeqCst) {
                            let total = sent.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
                            let m = *mode.lock().unwrap();
                            match m {
                                Mode::Cut(limit) if total > limit => {
                                    *mode.lock().unwrap() = Mode::Pass;
                                    cuts.fetch_add(1, Ordering::SeqCst);
                                    let _ = c.shutdown(std::net::Shutdown::Both);
                                    let _ = s.shutdown(std::net::Shutdown::Both);
                                    return;
                                }
                                Mode::Stall(limit) if total > limit => {
                                    cuts.fetch_add(1, Ordering::SeqCst);
                                    while !stop.load(Ordering::SeqCst)
                                        && *mode.lock().unwrap() != Mode::Pass
                                    {
                                        std::thread::sleep(Duration::from_millis(20));
                                    }
                                    let _ = c.shutdown(std::net::Shutdown::Both);
                                    return;
                                }
                                _ => {}
                            }
                        }
                        if c.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = c.shutdown(std::net::Shutdown::Write);
                });
            }
        });
        p
    }

    fn set(&self, m: Mode) {
        *self.mode.lock().unwrap() = m;
    }

    fn range_requests(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter_map(|r| {
                r.lines()
                    .find(|l| l.to_ascii_lowercase().starts_with("range:"))
                    .map(str::to_owned)
            })
            .collect()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// A registry holding an image whose second layer is 4 MB of noise; returns its name
/// under the proxy's address, the noise layer's blob hex and the image ID.
fn big_layer_image(reg: &Registry) -> (Berth, String, String) {
    let a = Berth::new();
    let noise_layer = Layer::gz(layer_tar(&[file("big", &noise(3, 4 << 20))]));
    let blob_hex = hex(&noise_layer.blob());
    let name = format!("{}/big:1", reg.addr);
    let img = ImageSpec::new(&name, vec![Layer::busybox(), noise_layer]);
    a.run_stdin(&["load"], &docker_archive(std::slice::from_ref(&img)));
    ok(&a, &[], &["push", &name]);
    (a, name, blob_hex)
}

#[test]
fn a_cut_connection_is_resumed_with_range() {
    let reg = Registry::start(RegOpts::default());
    let (a, name, blob_hex) = big_layer_image(&reg);
    let proxy = Proxy::start(&reg.addr, &blob_hex);
    let via = name.replacen(&reg.addr, &proxy.addr, 1);
    proxy.set(Mode::Cut(1 << 20));
    let b = Berth::new();
    ok(&b, &[], &["pull", &via]);
    assert_eq!(
        proxy.cuts.load(Ordering::SeqCst),
        1,
        "the proxy cut a download"
    );
    let ranges = proxy.range_requests();
    assert_eq!(ranges.len(), 1, "one resumed request: {ranges:?}");
    assert_ne!(ranges[0].to_lowercase(), "range: bytes=0-", "{ranges:?}");
    assert_eq!(b.image_id(&via), a.image_id(&name));
    fsck(&b);
    assert_eq!(ok(&b, &[], &["run", "--rm", &via, "true"]), "");
}

#[test]
fn redirects_and_a_registry_without_ranges() {
    let reg = Registry::start(RegOpts::default());
    let (a, name, blob_hex) = big_layer_image(&reg);
    let proxy = Proxy::start(&reg.addr, &blob_hex);
    let via = name.replacen(&reg.addr, &proxy.addr, 1);
    // The big blob is served by "another host" (the registry itself) through a 307.
    *proxy.redirect_to.lock().unwrap() = Some(reg.addr.clone());
    let b = Berth::new();
    ok(&b, &[], &["pull", &via]);
    assert_eq!(b.image_id(&via), a.image_id(&name));
    assert!(proxy
        .requests
        .lock()
        .unwrap()
        .iter()
        .any(|r| r.contains(&format!("/blobs/sha256:{blob_hex}"))));
    fsck(&b);
    // A cut download from a registry that ignores Range: read again from the start,
    // what was already delivered skipped.
    *proxy.redirect_to.lock().unwrap() = None;
    proxy.strip_range.store(true, Ordering::SeqCst);
    proxy.set(Mode::Cut(1 << 20));
    let c = Berth::new();
    ok(&c, &[], &["pull", &via]);
    assert_eq!(proxy.cuts.load(Ordering::SeqCst), 1);
    assert_eq!(
        proxy.range_requests().len(),
        1,
        "asked for a range (that was dropped)"
    );
    assert_eq!(c.image_id(&via), a.image_id(&name));
    fsck(&c);
    assert_eq!(ok(&c, &[], &["run", "--rm", &via, "true"]), "");
}

#[test]
fn a_killed_pull_resumes_in_the_next_one() {
    let reg = Registry::start(RegOpts::default());
    let (a, name, blob_hex) = big_layer_image(&reg);
    let proxy = Proxy::start(&reg.addr, &blob_hex);
    let via = name.replacen(&reg.addr, &proxy.addr, 1);
    proxy.set(Mode::Stall(1 << 20));
    let b = Berth::new();
    let mut c = b.cmd(&["pull", &via]);
    c.env("DOCKER_CONFIG", b.scratch().join("docker-config"))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = c.spawn().unwrap();
    let partial = b.root().join(format!("blobs/sha256/.partial-{blob_hex}"));
    wait_until(60, "the download to stall", || {
        proxy.cuts.load(Ordering::SeqCst) > 0
            && std::fs::metadata(&partial).is_ok_and(|m| m.len() > 0)
    });
    std::thread::sleep(Duration::from_millis(200));
    child.kill().unwrap();
    child.wait().unwrap();
    let had = std::fs::metadata(&partial).unwrap().len();
    assert!(had > 0 && had < 4 << 20, "partial download of {had} bytes");
    // Nothing registered, nothing corrupt.
    assert!(b.image_ids().is_empty());
    proxy.set(Mode::Pass);
    ok(&b, &[], &["pull", &via]);
    let ranges = proxy.range_requests();
    assert!(
        ranges
            .iter()
            .any(|r| r.to_lowercase() == format!("range: bytes={had}-")),
        "resumed from byte {had}: {ranges:?}"
    );
    assert!(!partial.exists());
    assert_eq!(b.image_id(&via), a.image_id(&name));
    fsck_with(&b, true);
}

#[test]
fn bad_inputs_are_one_line_and_leave_nothing() {
    let reg = Registry::start(RegOpts::default());
    let b = busybox_store(&reg);
    let name = format!("{}/bb:1", reg.addr);
    ok(&b, &[], &["push", &name]);
    let c = Berth::new();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["pull".into(), "x/UPPER".into()],
            "invalid reference format",
        ),
        (
            vec!["pull".into(), format!("{}/bb:nope", reg.addr)],
            "manifest unknown",
        ),
        (
            vec!["pull".into(), format!("{}/nosuch/repo:1", reg.addr)],
            "not found",
        ),
        (
            vec![
                "pull".into(),
                format!("{}/bb@sha256:{}", reg.addr, "0".repeat(64)),
            ],
            "not found",
        ),
        (
            vec!["pull".into(), format!("127.0.0.1:{}/bb:1", free_port())],
            "Connection",
        ),
        (vec!["pull".into(), "busybox".into()], "not on this machine"),
        (
            vec!["push".into(), format!("{}/none:1", reg.addr)],
            "An image does not exist locally with the tag",
        ),
        (
            vec!["push".into(), "busybox".into()],
            "An image does not exist locally",
        ),
        (
            vec![
                "login".into(),
                "-u".into(),
                "x".into(),
                "--password-stdin".into(),
                "bad host/x".into(),
            ],
            "invalid registry address",
        ),
    ];
    for (args, want) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let e = fails(&c, &[], &args, 1);
        assert!(e.contains(want), "{args:?}: {e}");
        assert!(c.image_ids().is_empty());
        fsck(&c);
    }
    // A usage error is clap's (exit 125).
    assert_eq!(berth(&c, &[], &["pull"]).status.code(), Some(125));

    // A blob whose content changed in the registry: the digest check catches it and
    // nothing of it stays (not the blob, not its layer, not a partial file).
    let layer_hex = b.inspect(&name)["RootFS"]["Layers"][0]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_owned();
    let f = reg.blob_file(&layer_hex);
    let mut data = std::fs::read(&f).unwrap();
    let mid = data.len() / 2;
    data[mid] ^= 0xff;
    std::fs::write(&f, &data).unwrap();
    let e = fails(&c, &[], &["pull", &name], 1);
    assert!(e.contains("digest mismatch"), "{e}");
    assert!(c.image_ids().is_empty());
    assert!(c.blobs().iter().all(|h| *h != layer_hex), "{:?}", c.blobs());
    fsck(&c);
    assert!(c.layer_dirs().is_empty());
}

// ------------------------------------------------------------ token auth

fn b64(data: &[u8], url: bool) -> String {
    const STD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..=c.len() {
            out.push(STD[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
        if !url {
            for _ in c.len()..3 {
                out.push('=');
            }
        }
    }
    if url {
        out = out.replace('+', "-").replace('/', "_");
    }
    out
}

/// A token server as the distribution spec describes (Docker Hub's auth.docker.io role):
/// checks Basic credentials, grants what is asked for, signs an RS256 JWT with a key
/// whose self-signed certificate the registry trusts (`rootcertbundle`). Records the
/// scopes asked for.
struct TokenServer {
    addr: String,
    scopes: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl TokenServer {
    fn start(dir: &Path, user: &'static str, pass: &'static str) -> TokenServer {
        let ossl = |args: &[&str]| {
            run_ok(Command::new("openssl").args(args).current_dir(dir));
        };
        ossl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "token.key",
            "-out",
            "token.crt",
            "-days",
            "2",
            "-subj",
            "/CN=berth test token signer",
        ]);
        ossl(&[
            "x509",
            "-in",
            "token.crt",
            "-outform",
            "DER",
            "-out",
            "token.der",
        ]);
        let der = std::fs::read(dir.join("token.der")).unwrap();
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let t = TokenServer {
            addr: l.local_addr().unwrap().to_string(),
            scopes: Arc::new(Mutex::new(Vec::new())),
            stop: Arc::new(AtomicBool::new(false)),
        };
        let (scopes, stop, dir) = (t.scopes.clone(), t.stop.clone(), dir.to_owned());
        let good = format!("Basic {}", b64(format!("{user}:{pass}").as_bytes(), false));
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                let Ok((mut s, _)) = l.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                s.set_nonblocking(false).unwrap();
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && s.read(&mut byte).unwrap_or(0) == 1 {
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let path = head.split(' ').nth(1).unwrap_or("").to_owned();
                let query = path.split_once('?').map(|q| q.1).unwrap_or("");
                let asked: Vec<String> = query
                    .split('&')
                    .filter_map(|kv| kv.strip_prefix("scope="))
                    .map(|v| {
                        v.replace("%3A", ":")
                            .replace("%2F", "/")
                            .replace("%2C", ",")
                    })
                    .collect();
                scopes.lock().unwrap().extend(asked.iter().cloned());
                let auth = head
                    .lines()
                    .find_map(|l| {
                        l.strip_prefix("Authorization: ")
                            .or_else(|| l.strip_prefix("authorization: "))
                    })
                    .unwrap_or("");
                if auth != good {
                    let body = r#"{"details":"incorrect username or password"}"#;
                    let _ = write!(s, "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
                    continue;
                }
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs();
                let access: Vec<Value> = asked
                    .iter()
                    .filter_map(|sc| {
                        let mut p = sc.splitn(3, ':');
                        let (typ, name, actions) = (p.next()?, p.next()?, p.next()?);
                        Some(json!({"type": typ, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}))
                    })
                    .collect();
                n += 1;
                let header = json!({"alg": "RS256", "typ": "JWT", "x5c": [b64(&der, false)]});
                let claims = json!({
                    "iss": "berth-test-issuer", "sub": user, "aud": "berth-test-registry",
                    "exp": now + 600, "nbf": now - 60, "iat": now, "jti": format!("t{n}"),
                    "access": access,
                });
                let input = format!(
                    "{}.{}",
                    b64(&serde_json::to_vec(&header).unwrap(), true),
                    b64(&serde_json::to_vec(&claims).unwrap(), true)
                );
                std::fs::write(dir.join("jwt.in"), &input).unwrap();
                run_ok(
                    Command::new("openssl")
                        .args([
                            "dgst",
                            "-sha256",
                            "-sign",
                            "token.key",
                            "-out",
                            "jwt.sig",
                            "jwt.in",
                        ])
                        .current_dir(&dir),
                );
                let sig = std::fs::read(dir.join("jwt.sig")).unwrap();
                let body =
                    json!({"token": format!("{input}.{}", b64(&sig, true)), "expires_in": 600})
                        .to_string();
                let _ = write!(s, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
            }
        });
        t
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

#[test]
fn bearer_token_auth() {
    let tdir = tempfile::Builder::new()
        .prefix("berth-token-")
        .tempdir()
        .unwrap();
    let ts = TokenServer::start(tdir.path(), "tok", "en");
    let reg = Registry::start(RegOpts {
        token: Some((ts.addr.clone(), tdir.path().join("token.crt"))),
        ..RegOpts::default()
    });
    let b = busybox_store(&reg);
    let name = format!("{}/tok/bb:1", reg.addr);
    ok(&b, &[], &["tag", "busybox", &name]);
    // Anonymous: the token server refuses.
    let e = fails(&b, &[], &["push", &name], 1);
    assert!(e.contains("unauthorized"), "{e}");
    let login = |pw: &str| {
        let mut c = b.cmd(&["login", "-u", "tok", "--password-stdin", &reg.addr]);
        c.env("DOCKER_CONFIG", b.scratch().join("docker-config"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(pw.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let e = check_failure(&["login"], &login("wrong"), 1);
    assert!(
        e.contains("unauthorized") && e.contains("incorrect username or password"),
        "{e}"
    );
    let out = login("en");
    assert!(out.status.success(), "{}", describe(&["login"], &out));
    ts.scopes.lock().unwrap().clear();
    let out = ok(&b, &[], &["push", &name]);
    assert!(out.contains(": Pushed"), "{out}");
    assert!(
        ts.scopes
            .lock()
            .unwrap()
            .contains(&"repository:tok/bb:pull,push".to_owned()),
        "{:?}",
        ts.scopes.lock().unwrap()
    );
    let c = Berth::new();
    let cfg = b.scratch().join("docker-config");
    ok(
        &c,
        &[("DOCKER_CONFIG", cfg.to_str().unwrap())],
        &["pull", &name],
    );
    assert_eq!(c.image_id(&name), b.image_id(&name));
    assert!(ts
        .scopes
        .lock()
        .unwrap()
        .contains(&"repository:tok/bb:pull".to_owned()));
}
