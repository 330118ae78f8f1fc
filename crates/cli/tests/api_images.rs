//! Issue 13: the image endpoints of Docker's Engine API (`berth system
//! service`) driven by the real docker CLI 28 on a temporary root and
//! socket: images, inspect, tag, rmi, history, save/load, import, commit,
//! build (classic, with its cache), pull and push against a local
//! docker-registry, and bad input answered with Docker's statuses and
//! one-line messages.
//!
//! The service is `berth-api` (common/api.rs builds it when missing).
#![allow(clippy::unwrap_used)]

#[path = "common/api.rs"]
mod api;
mod common;

use common::*;
use serde_json::Value;
use std::path::Path;

#[test]
fn api_images_list_inspect_tag_history_rmi() {
    let (b, s) = api::busybox_service();
    let id = b.image_id("busybox");
    let rows = s.ok(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]);
    assert_eq!(rows.trim(), format!("busybox:latest {}", &id[7..19]));
    assert_eq!(
        s.ok(&["image", "inspect", "-f", "{{.Id}} {{.RepoTags}}", "busybox"])
            .trim(),
        format!("{id} [busybox:latest]")
    );
    // A name with a registry and slashes, routed by its last word.
    s.ok(&["tag", "busybox", "localhost:5000/a/b:v1"]);
    assert_eq!(
        s.ok(&["image", "inspect", "-f", "{{.Id}}", "localhost:5000/a/b:v1"])
            .trim(),
        id
    );
    let filtered = s.ok(&[
        "images",
        "--filter",
        "reference=localhost:5000/a/*",
        "--format",
        "{{.Repository}}:{{.Tag}}",
    ]);
    assert_eq!(filtered.trim(), "localhost:5000/a/b:v1");
    assert_eq!(
        s.ok(&["images", "-q", "--filter", "dangling=true"]).trim(),
        ""
    );
    let hist = s.ok(&["history", "--format", "{{.CreatedBy}}|{{.Size}}", "busybox"]);
    assert!(hist.starts_with("import|"), "{hist}");
    assert_eq!(
        s.ok(&["rmi", "localhost:5000/a/b:v1"]).trim(),
        "Untagged: localhost:5000/a/b:v1"
    );
    // Docker's 404 words.
    let err = s.fails(&["rmi", "nope"], 1);
    assert!(err.contains("No such image: nope:latest"), "{err}");
    let err = s.fails(&["image", "inspect", "nope"], 1);
    assert!(err.contains("No such image: nope"), "{err}");
    let err = s.fails(&["tag", "nope", "x:1"], 1);
    assert!(err.contains("No such image: nope:latest"), "{err}");
    let err = s.fails(&["images", "--filter", "bogus=1"], 1);
    assert!(err.contains("invalid filter 'bogus'"), "{err}");
}

#[test]
fn api_save_load_round_trip_and_import() {
    let (b, s) = api::busybox_service();
    let id = b.image_id("busybox");
    let archive = b.scratch().join("bb.tar");
    s.ok(&["save", "-o", archive.to_str().unwrap(), "busybox"]);
    assert!(tar_names(&std::fs::read(&archive).unwrap()).contains(&"manifest.json".to_owned()));
    let rmi = s.ok(&["rmi", "busybox"]);
    assert!(rmi.contains(&format!("Deleted: {id}")), "{rmi}");
    let loaded = s.ok(&["load", "-i", archive.to_str().unwrap()]);
    assert_eq!(loaded.trim(), "Loaded image: busybox:latest");
    assert_eq!(b.image_id("busybox"), id);
    // A load of something that is not an archive: an error, nothing added.
    let junk = b.scratch().join("junk.tar");
    std::fs::write(&junk, b"not a tar at all").unwrap();
    s.fails(&["load", "-i", junk.to_str().unwrap()], 1);
    assert_eq!(b.image_ids().len(), 1);
    // import from the body (fromSrc=-) with a change.
    let rootfs = b.scratch().join("rootfs.tar");
    std::fs::write(&rootfs, busybox_tar()).unwrap();
    let imported = s.ok(&[
        "import",
        "-c",
        "CMD [\"sh\"]",
        rootfs.to_str().unwrap(),
        "imp:1",
    ]);
    assert!(imported.trim().starts_with("sha256:"), "{imported}");
    assert_eq!(
        s.ok(&["image", "inspect", "-f", "{{.Config.Cmd}}", "imp:1"])
            .trim(),
        "[sh]"
    );
    s.ok(&["rmi", "imp:1"]);
}

#[test]
fn api_commit() {
    let (b, s) = api::busybox_service();
    let c = b.ok(&["create", "busybox", "true"]);
    let c = c.trim();
    let out = s.ok(&[
        "commit",
        "-c",
        "ENV FOO=bar",
        "-m",
        "a message",
        "-a",
        "someone",
        c,
        "committed:1",
    ]);
    assert!(out.trim().starts_with("sha256:"), "{out}");
    let v: Value = serde_json::from_str(&s.ok(&["image", "inspect", "committed:1"])).unwrap();
    assert_eq!(v[0]["Comment"], "a message");
    assert_eq!(v[0]["Author"], "someone");
    let env = v[0]["Config"]["Env"].to_string();
    assert!(env.contains("FOO=bar"), "{env}");
    let err = s.fails(&["commit", "nope", "x:1"], 1);
    assert!(err.contains("No such container: nope"), "{err}");
    b.ok(&["rm", c]);
    s.ok(&["rmi", "committed:1"]);
}

#[test]
fn api_build_classic_with_cache() {
    let (b, s) = api::busybox_service();
    let dir = context(
        &b,
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM busybox\nCOPY a.txt /a.txt\nRUN cat /a.txt && echo ran\nLABEL x=y\n",
            ),
            ("a.txt", "from the context\n"),
        ],
    );
    let out = s.ok(&["build", "-t", "built:1", s_(&dir)]);
    assert!(out.contains("Step 1/4 : FROM busybox"), "{out}");
    assert!(out.contains("from the context\nran\n"), "{out}");
    assert!(out.contains("Successfully tagged built:1"), "{out}");
    let id = b.image_id("built:1");
    assert!(
        out.contains(&format!("Successfully built {}", &id[7..19])),
        "{out}"
    );
    assert_eq!(
        s.ok(&["image", "inspect", "-f", "{{.Config.Labels.x}}", "built:1"])
            .trim(),
        "y"
    );
    // The second build takes every step from the cache.
    let again = s.ok(&["build", "-t", "built:2", s_(&dir)]);
    assert_eq!(again.matches("Using cache").count(), 3, "{again}");
    assert_eq!(b.image_id("built:2"), id);
    // -q: the ID alone.
    let q = s.ok(&["build", "-q", s_(&dir)]);
    assert_eq!(q.trim(), id);
    // A failing RUN: Docker's words, its code as the CLI's exit status
    // (errorDetail.code), nothing tagged. Through a server whose other
    // threads take SIGCHLD, the step still ends (it hung before).
    let bad = context(&b, "bad", &[("Dockerfile", "FROM busybox\nRUN exit 3\n")]);
    let out = s.docker(&["build", "-t", "bad:1", s_(&bad)]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        s.describe(&["build"], &out)
    );
    assert!(
        text(&out.stderr).contains("The command '/bin/sh -c exit 3' returned a non-zero code: 3"),
        "{}",
        text(&out.stderr)
    );
    assert!(s
        .fails(&["image", "inspect", "bad:1"], 1)
        .contains("No such image"));
    // A Dockerfile that does not parse: a plain error before any output.
    let unparsable = context(
        &b,
        "unparsable",
        &[("Dockerfile", "FROM busybox\nFOO bar\n")],
    );
    let err = s.fails(&["build", s_(&unparsable)], 1);
    assert!(err.contains("unknown instruction"), "{err}");
    s.ok(&["rmi", "built:1", "built:2"]);
}

fn s_(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn api_push_pull_registry() {
    let reg = Registry::start();
    let (b, s) = api::busybox_service();
    let id = b.image_id("busybox");
    let name = format!("{}/bb:v1", reg.addr);
    s.ok(&["tag", "busybox", &name]);
    let pushed = s.ok(&["push", &name]);
    assert!(
        pushed.contains(&format!("The push refers to repository [{}/bb]", reg.addr)),
        "{pushed}"
    );
    assert!(pushed.contains("v1: digest: sha256:"), "{pushed}");
    s.ok(&["rmi", &name, "busybox"]);
    assert!(b.image_ids().is_empty());
    let pulled = s.ok(&["pull", &name]);
    assert!(pulled.contains("Pull complete"), "{pulled}");
    assert!(
        pulled.contains(&format!("Status: Downloaded newer image for {name}")),
        "{pulled}"
    );
    assert_eq!(b.image_id(&name), id);
    let again = s.ok(&["pull", &name]);
    assert!(
        again.contains(&format!("Status: Image is up to date for {name}")),
        "{again}"
    );
    // Unknown to the registry: the registry's words, nothing streamed.
    let err = s.fails(&["pull", &format!("{}/nope:v1", reg.addr)], 1);
    assert!(err.contains("not found"), "{err}");
    // A login the registry has no auth for succeeds, as Docker's.
    let login = s.ok(&["login", "-u", "u", "-p", "p", &reg.addr]);
    assert!(login.contains("Login Succeeded"), "{login}");
    s.ok(&["rmi", &name]);
}

#[test]
fn api_images_bad_input() {
    let (_b, s) = api::busybox_service();
    let (code, body) = s.call("GET", "/v1.44/images/nope/json", b"");
    assert_eq!(code, 404, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["message"], "No such image: nope:latest");
    let (code, body) = s.call("POST", "/v1.44/commit?container=x", b"{not json");
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("invalid JSON"), "{body}");
    let (code, body) = s.call("POST", "/v1.44/auth", b"[1,");
    assert_eq!(code, 400, "{body}");
    let (code, body) = s.call("POST", "/v1.44/build", b"garbage");
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("not a valid tar"), "{body}");
    let (code, body) = s.call("POST", "/v1.44/build?buildargs=%7Bnope", b"");
    assert_eq!(code, 400, "{body}");
    let (code, body) = s.call("POST", "/v1.44/images/load", b"junk");
    assert!(code >= 400, "{code} {body}");
    assert_eq!(body.trim().lines().count(), 1, "{body}");
    let (code, body) = s.call(
        "GET",
        "/v1.44/images/json?filters=%7B%22dangling%22%3A%7B%22maybe%22%3Atrue%7D%7D",
        b"",
    );
    assert_eq!(code, 400, "{body}");
    let (code, _) = s.call("GET", "/v1.44/images/search?term=x", b"");
    assert_eq!(code, 501);
}
