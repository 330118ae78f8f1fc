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
    // Pulled by digest alone, as Docker 20.10 shows it: RepoTags null, one
    // `repo <none>` row, removable by its digest reference.
    let digest = pushed
        .split("v1: digest: ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap()
        .to_owned();
    let by_digest = format!("{}/bb@{digest}", reg.addr);
    s.ok(&["rmi", &name]);
    s.ok(&["pull", &by_digest]);
    assert_eq!(
        s.ok(&[
            "images",
            "--digests",
            "--format",
            "{{.Repository}} {{.Tag}} {{.Digest}}"
        ]),
        format!("{}/bb <none> {digest}\n", reg.addr)
    );
    assert_eq!(
        s.ok(&[
            "image",
            "inspect",
            "-f",
            "{{json .RepoTags}} {{json .RepoDigests}}",
            &by_digest
        ]),
        format!("[] [\"{by_digest}\"]\n")
    );
    // Engine API 1.41's summary: RepoTags null, no `<none>` placeholders.
    let (code, body) = s.call("GET", "/v1.41/images/json", b"");
    assert_eq!(code, 200, "{body}");
    let list: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(list[0]["RepoTags"], Value::Null, "{body}");
    assert_eq!(
        list[0]["RepoDigests"],
        serde_json::json!([by_digest]),
        "{body}"
    );
    let out = s.ok(&["rmi", &by_digest]);
    assert!(
        out.starts_with(&format!("Untagged: {by_digest}\nDeleted: {id}\n")),
        "{out}"
    );
    assert!(b.image_ids().is_empty());
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

#[test]
fn api_pull_progress_has_dockers_layer_sequence() {
    // dockerd 20.10 pulling a one-layer image from a local docker-registry streams, for the
    // layer: Pulling fs layer, Downloading {current,total}, Verifying Checksum, Download
    // complete, Extracting {current,total} (compressed bytes), Pull complete.
    let reg = Registry::start();
    let (b, s) = api::busybox_service();
    let name = format!("{}/bbp:v1", reg.addr);
    s.ok(&["tag", "busybox", &name]);
    s.ok(&["push", &name]);
    s.ok(&["rmi", &name, "busybox"]);
    assert!(b.image_ids().is_empty());
    let (status, text) = s.call(
        "POST",
        &format!("/v1.44/images/create?fromImage={}/bbp&tag=v1", reg.addr),
        b"",
    );
    assert_eq!(status, 200, "{text}");
    let msgs: Vec<Value> = text
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        msgs[0],
        serde_json::json!({"status": "Pulling from bbp", "id": "v1"})
    );
    let layer = msgs
        .iter()
        .find(|m| m["status"] == "Pulling fs layer")
        .and_then(|m| m["id"].as_str())
        .unwrap_or_else(|| panic!("{msgs:?}"))
        .to_owned();
    let mut seq: Vec<&str> = Vec::new();
    for m in msgs.iter().filter(|m| m["id"] == layer.as_str()) {
        let st = m["status"].as_str().unwrap();
        if seq.last() != Some(&st) {
            seq.push(st);
        }
        match st {
            "Downloading" | "Extracting" => {
                let total = m["progressDetail"]["total"].as_u64().unwrap();
                let current = m["progressDetail"]["current"].as_u64().unwrap();
                assert!(total > 0 && current <= total, "{m}");
                assert!(m["progress"].as_str().unwrap().starts_with('['), "{m}");
            }
            _ => assert_eq!(m["progressDetail"], serde_json::json!({}), "{m}"),
        }
    }
    assert_eq!(
        seq,
        [
            "Pulling fs layer",
            "Downloading",
            "Verifying Checksum",
            "Download complete",
            "Extracting",
            "Pull complete"
        ],
        "{msgs:?}"
    );
    let last = msgs
        .iter()
        .rev()
        .find(|m| m["id"] == layer.as_str())
        .unwrap();
    assert_eq!(last["status"], "Pull complete");
    // The docker CLI without a terminal prints the lines without a bar, as with dockerd.
    s.ok(&["rmi", &name]);
    let out = s.ok(&["pull", &name]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[1..5],
        [
            format!("{layer}: Pulling fs layer"),
            format!("{layer}: Verifying Checksum"),
            format!("{layer}: Download complete"),
            format!("{layer}: Pull complete"),
        ],
        "{out}"
    );
}

#[test]
fn api_image_prune_until_and_label_filters() {
    // dockerd 20.10's image prune: `label=K[=V]` prunes only matching images, `label!=K`
    // only the others, `until=T` only those created before T; `dangling=false` with them.
    let (b, s) = api::busybox_service();
    s.ok(&["create", "--name", "src", "busybox", "true"]);
    let commit = |label: &str| {
        let mut a = vec!["commit"];
        if !label.is_empty() {
            a.extend(["-c", label]);
        }
        a.push("src");
        s.ok(&a).trim().to_owned()
    };
    let kv = commit("LABEL k=v");
    let kw = commit("LABEL k=w");
    let none = commit("");
    let prune = |filters: &str| -> Vec<String> {
        let q = filters
            .replace('"', "%22")
            .replace('{', "%7B")
            .replace('}', "%7D");
        let (status, text) = s.call("POST", &format!("/v1.44/images/prune?filters={q}"), b"");
        assert_eq!(status, 200, "{filters}: {text}");
        let body = text.lines().find(|l| l.starts_with('{')).unwrap();
        let v: Value = serde_json::from_str(body).unwrap();
        v["ImagesDeleted"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|d| d["Deleted"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(prune(r#"{"label":["k=v"]}"#), [kv]);
    assert_eq!(prune(r#"{"label!":["k"]}"#), [none]);
    assert!(prune(r#"{"until":["1000"]}"#).is_empty());
    let later = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600)
        .to_string();
    assert_eq!(
        prune(&format!(r#"{{"until":["{later}"],"dangling":["true"]}}"#)),
        [kw]
    );
    // dangling=false with a label: an unused tagged image with the label goes.
    s.ok(&["rm", "src"]);
    s.ok(&["tag", "busybox", "keepme:1"]);
    assert!(prune(r#"{"dangling":["false"],"label":["nosuch"]}"#).is_empty());
    let all = prune(&format!(r#"{{"dangling":["false"],"until":["{later}"]}}"#));
    assert_eq!(all.len(), 1, "{all:?}");
    assert!(b.image_ids().is_empty());
    let (status, text) = s.call(
        "POST",
        "/v1.44/images/prune?filters=%7B%22until%22:[%22nonsense%22]%7D",
        b"",
    );
    assert_eq!(status, 400, "{text}");
    // A time past what nanoseconds hold: 400 too, not a dropped connection.
    let (status, text) = s.call(
        "POST",
        "/v1.44/images/prune?filters=%7B%22until%22:[%221000000000000%22]%7D",
        b"",
    );
    assert_eq!(status, 400, "{text}");
}

#[test]
fn api_build_prune_drops_the_build_cache() {
    // `docker builder prune -f` (POST /build/prune) empties berth's build cache: the
    // next build runs its steps again, and the images only the cache kept (an untagged
    // build's steps) are removed, their size reported.
    let (b, s) = api::busybox_service();
    let dir = context(
        &b,
        "pc",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN echo a > /a\nRUN echo b > /b\n",
        )],
    );
    s.ok(&["build", s_(&dir)]);
    let again = s.ok(&["build", s_(&dir)]);
    assert_eq!(again.matches("Using cache").count(), 2, "{again}");
    assert_eq!(b.image_ids().len(), 2, "busybox and the build");
    let out = s.ok(&["builder", "prune", "-f"]);
    let total = out
        .lines()
        .find_map(|l| l.strip_prefix("Total reclaimed space: "))
        .unwrap_or_else(|| panic!("{out}"));
    assert_ne!(total, "0B", "{out}");
    assert_eq!(b.image_ids().len(), 1, "busybox only");
    // A tagged build: its images stay, its cache goes.
    s.ok(&["build", "-t", "pc:1", s_(&dir)]);
    let out = s.ok(&["builder", "prune", "-f"]);
    assert!(out.contains("Total reclaimed space: 0B"), "{out}");
    assert_eq!(b.image_ids().len(), 2);
    let third = s.ok(&["build", "-t", "pc:1", s_(&dir)]);
    assert!(!third.contains("Using cache"), "{third}");
}
