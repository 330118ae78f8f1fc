//! The Engine API's networks, volumes, `docker cp` (archive), stats and
//! `system df`, driven by the real docker CLI (28, /usr/local/bin/docker)
//! against `berth system service` on the test's own root and socket.
//! Each test stops its service and leaves nothing behind (the store's drop
//! resets the root and checks; the bridges it made are checked gone).
//!
//! The service is `berth-api` (common/api.rs builds it when missing).
#![allow(clippy::unwrap_used)]

#[path = "common/api.rs"]
mod api;
mod common;

use common::*;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};

fn bridge_exists(name: &str) -> bool {
    Command::new("ip")
        .args(["link", "show", name])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

#[test]
fn api_networks_docker_cli() {
    let (b, s) = api::busybox_service();
    let id = s
        .ok(&[
            "network",
            "create",
            "--label",
            "com.docker.compose.project=p",
            "--label",
            "com.docker.compose.network=default",
            "--subnet",
            "10.231.7.0/24",
            "apinet",
        ])
        .trim()
        .to_owned();
    assert!(is_hex64(&id), "{id}");
    // A name in use, an unknown network: Docker's status and words.
    let err = s.fails(&["network", "create", "apinet"], 1);
    assert!(
        err.contains("network with name apinet already exists"),
        "{err}"
    );
    let err = s.fails(&["network", "inspect", "nope"], 1);
    assert!(err.contains("network nope not found"), "{err}");
    let err = s.fails(&["network", "rm", "nope"], 1);
    assert!(err.contains("network nope not found"), "{err}");
    // Compose's lookups: inspect by name, list with a name filter.
    let v: Value = serde_json::from_str(&s.ok(&["network", "inspect", "apinet"])).unwrap();
    assert_eq!(v[0]["Id"], id.as_str());
    assert_eq!(v[0]["Labels"]["com.docker.compose.project"], "p");
    assert_eq!(v[0]["Labels"]["com.docker.compose.network"], "default");
    assert_eq!(v[0]["IPAM"]["Config"][0]["Subnet"], "10.231.7.0/24");
    let bridge = v[0]["Options"]["com.docker.network.bridge.name"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(bridge_exists(&bridge));
    let (code, body) = s.call(
        "GET",
        "/v1.44/networks?filters=%7B%22name%22%3A%7B%22apinet%22%3Atrue%7D%7D",
        b"",
    );
    assert_eq!(code, 200, "{body}");
    let l: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(l.as_array().unwrap().len(), 1, "{body}");
    assert_eq!(l[0]["Labels"]["com.docker.compose.project"], "p");
    let ls = s.ok(&["network", "ls", "--format", "{{.Name}}"]);
    for n in ["apinet", "bridge", "host", "none"] {
        assert!(ls.lines().any(|l| l == n), "{ls}");
    }
    // A container on the network resolves another by name.
    s.run_d("srv", &["--network", "apinet", "busybox", "sleep", "300"]);
    let out = s.ok(&[
        "run",
        "--rm",
        "--network",
        "apinet",
        "busybox",
        "ping",
        "-c",
        "1",
        "-W",
        "5",
        "srv",
    ]);
    assert!(out.contains("10.231.7."), "{out}");
    // Connect with an alias, then disconnect.
    s.run_d("cli", &["busybox", "sleep", "300"]);
    s.ok(&[
        "network",
        "connect",
        "--alias",
        "other",
        "--ip",
        "10.231.7.77",
        "apinet",
        "cli",
    ]);
    let v: Value = serde_json::from_str(&s.ok(&["network", "inspect", "apinet"])).unwrap();
    let ips: Vec<String> = v[0]["Containers"]
        .as_object()
        .unwrap()
        .values()
        .map(|c| c["IPv4Address"].as_str().unwrap().to_owned())
        .collect();
    assert!(ips.iter().any(|ip| ip == "10.231.7.77/24"), "{ips:?}");
    // (berth's own exec: the API's exec is not this file's.)
    let out = b.ok(&["exec", "srv", "ping", "-c", "1", "-W", "5", "other"]);
    assert!(out.contains("10.231.7.77"), "{out}");
    s.ok(&["network", "disconnect", "apinet", "cli"]);
    let err = s.fails(&["network", "disconnect", "apinet", "cli"], 1);
    assert!(err.contains("not connected"), "{err}");
    let err = s.fails(&["network", "connect", "apinet", "nosuch"], 1);
    assert!(err.contains("No such container: nosuch"), "{err}");
    // In use: not removed, not pruned.
    let err = s.fails(&["network", "rm", "apinet"], 1);
    assert!(err.contains("has active endpoints"), "{err}");
    // Docker answers 403 (Forbidden) here, not 409.
    let (code, body) = s.call("DELETE", "/v1.44/networks/apinet", b"");
    assert_eq!(code, 403, "{body}");
    s.ok(&["network", "create", "spare"]);
    let out = s.ok(&["network", "prune", "-f"]);
    assert!(out.contains("spare") && !out.contains("apinet"), "{out}");
    s.ok(&["rm", "-f", "srv", "cli"]);
    assert_eq!(s.ok(&["network", "rm", "apinet"]).trim(), "apinet");
    assert!(!bridge_exists(&bridge), "{bridge} left after network rm");
    // Bad input: one line, Docker's status.
    let (code, body) = s.call("POST", "/v1.44/networks/create", b"{\"Name\":");
    assert_eq!(code, 400, "{body}");
    let (code, body) = s.call(
        "POST",
        "/v1.44/networks/create",
        b"{\"Name\":\"x\",\"Driver\":\"overlay\"}",
    );
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("plugin \\\"overlay\\\" not found"), "{body}");
    let (code, body) = s.call(
        "POST",
        "/v1.44/networks/create",
        b"{\"Name\":\"v6\",\"EnableIPv6\":true}",
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("IPv6"), "{body}");
    let (code, _) = s.call("DELETE", "/v1.44/networks/bridge", b"");
    assert_eq!(code, 403);
    let l = s.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!l.contains("v6") && !l.contains("x\n"), "{l}");
    drop(s);
    drop(b);
    assert!(!bridge_exists(&bridge));
}

#[test]
fn api_volumes_docker_cli() {
    let (_b, s) = api::busybox_service();
    assert_eq!(
        s.ok(&["volume", "create", "--label", "k=v", "apivol"])
            .trim(),
        "apivol"
    );
    let v: Value = serde_json::from_str(&s.ok(&["volume", "inspect", "apivol"])).unwrap();
    assert_eq!(v[0]["Name"], "apivol");
    assert_eq!(v[0]["Driver"], "local");
    assert_eq!(v[0]["Labels"]["k"], "v");
    let err = s.fails(&["volume", "inspect", "nope"], 1);
    assert!(err.contains("get nope: no such volume"), "{err}");
    let ls = s.ok(&[
        "volume",
        "ls",
        "--filter",
        "label=k=v",
        "--format",
        "{{.Name}}",
    ]);
    assert_eq!(ls.trim(), "apivol");
    // One container writes, another reads.
    s.ok(&[
        "run",
        "--rm",
        "-v",
        "apivol:/data",
        "busybox",
        "sh",
        "-c",
        "echo written > /data/f",
    ]);
    let out = s.ok(&["run", "--rm", "-v", "apivol:/d", "busybox", "cat", "/d/f"]);
    assert_eq!(out, "written\n");
    // In use: 409 with Docker's words.
    s.run_d("user", &["-v", "apivol:/d", "busybox", "sleep", "300"]);
    let (code, body) = s.call("DELETE", "/v1.44/volumes/apivol", b"");
    assert_eq!(code, 409, "{body}");
    assert!(body.contains("volume is in use"), "{body}");
    let err = s.fails(&["volume", "rm", "apivol"], 1);
    assert!(err.contains("remove apivol: volume is in use"), "{err}");
    // Prune: unused anonymous volumes only, named ones with --all.
    s.ok(&["volume", "create", "unused"]);
    s.ok(&["run", "--name", "anon", "-v", "/x", "busybox", "true"]);
    s.ok(&["rm", "anon"]);
    let anon: Vec<String> = s
        .ok(&["volume", "ls", "-q"])
        .lines()
        .filter(|n| is_hex64(n))
        .map(str::to_owned)
        .collect();
    assert_eq!(anon.len(), 1, "{anon:?}");
    let out = s.ok(&["volume", "prune", "-f"]);
    assert!(out.contains(&anon[0]) && !out.contains("unused"), "{out}");
    let out = s.ok(&["volume", "prune", "-f", "--all"]);
    assert!(out.contains("unused") && !out.contains("apivol"), "{out}");
    s.ok(&["rm", "-f", "user"]);
    assert_eq!(s.ok(&["volume", "rm", "apivol"]).trim(), "apivol");
    assert_eq!(s.ok(&["volume", "ls", "-q"]).trim(), "");
    // Bad input.
    let (code, body) = s.call("POST", "/v1.44/volumes/create", b"[1,2");
    assert_eq!(code, 400, "{body}");
    let (code, body) = s.call("POST", "/v1.44/volumes/create", b"{\"Name\":\"a/b\"}");
    assert_eq!(code, 400, "{body}");
    let (code, body) = s.call(
        "POST",
        "/v1.44/volumes/create",
        b"{\"Name\":\"d\",\"Driver\":\"nfs\"}",
    );
    assert_eq!(code, 404, "{body}");
    let (code, _) = s.call("PUT", "/v1.44/volumes/d", b"{}");
    assert_eq!(code, 503);
    assert_eq!(s.ok(&["volume", "ls", "-q"]).trim(), "");
}

#[test]
fn api_cp_both_ways_without_escaping() {
    let (b, s) = api::busybox_service();
    s.run_d("c1", &["busybox", "sleep", "300"]);
    let scratch = b.scratch();
    // Into the container: a file and a directory.
    let src = scratch.join("in.txt");
    std::fs::write(&src, "from host\n").unwrap();
    s.ok(&["cp", src.to_str().unwrap(), "c1:/"]);
    assert_eq!(b.ok(&["exec", "c1", "cat", "/in.txt"]), "from host\n");
    let dir = scratch.join("tree");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("sub/f"), "deep\n").unwrap();
    s.ok(&["cp", dir.to_str().unwrap(), "c1:/bin/"]);
    assert_eq!(b.ok(&["exec", "c1", "cat", "/bin/tree/sub/f"]), "deep\n");
    // Out of the container.
    let out = scratch.join("out.txt");
    s.ok(&["cp", "c1:/in.txt", out.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "from host\n");
    let outdir = scratch.join("outtree");
    s.ok(&["cp", "c1:/bin/tree", outdir.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(outdir.join("sub/f")).unwrap(),
        "deep\n"
    );
    let err = s.fails(&["cp", "c1:/nope", out.to_str().unwrap()], 1);
    assert!(
        err.contains("Could not find the file /nope in container c1"),
        "{err}"
    );
    // Symlinks in the container lead nowhere outside it: a link to the
    // host's /etc/shadow is copied as a link, followed (-L) it is the
    // container's (missing) /etc/shadow; a write through a link to / stays
    // in the container's root.
    b.ok(&["exec", "c1", "ln", "-s", "/etc/shadow", "/evil"]);
    b.ok(&["exec", "c1", "ln", "-s", "/", "/rootlink"]);
    let got = scratch.join("evil");
    s.ok(&["cp", "c1:/evil", got.to_str().unwrap()]);
    let md = std::fs::symlink_metadata(&got).unwrap();
    assert!(md.file_type().is_symlink());
    let got2 = scratch.join("evil2");
    let err = s.fails(&["cp", "-L", "c1:/evil", got2.to_str().unwrap()], 1);
    assert!(err.contains("/etc/shadow"), "{err}");
    assert!(!got2.exists());
    let marker = format!("berth-cp-escape-{}", std::process::id());
    let mfile = scratch.join(&marker);
    std::fs::write(&mfile, "x").unwrap();
    s.ok(&["cp", mfile.to_str().unwrap(), "c1:/rootlink/"]);
    assert!(
        !Path::new("/").join(&marker).exists(),
        "escaped to the host"
    );
    assert_eq!(b.ok(&["exec", "c1", "cat", &format!("/{marker}")]), "x");
    // docker cp's noOverwriteDirNonDir: a file never replaces a directory,
    // nor a directory a file; nothing is written.
    let clash = scratch.join("clash");
    std::fs::create_dir_all(&clash).unwrap();
    std::fs::write(clash.join("bin"), "not a dir").unwrap();
    let err = s.fails(&["cp", clash.join("bin").to_str().unwrap(), "c1:/"], 1);
    assert!(err.contains("cannot overwrite directory"), "{err}");
    std::fs::create_dir_all(clash.join("in.txt/sub")).unwrap();
    let err = s.fails(&["cp", clash.join("in.txt").to_str().unwrap(), "c1:/"], 1);
    assert!(err.contains("cannot overwrite non-directory"), "{err}");
    assert_eq!(b.ok(&["exec", "c1", "cat", "/in.txt"]), "from host\n");
    assert_eq!(b.ok(&["exec", "c1", "echo", "ok"]), "ok\n");
    // The stat header of HEAD, and bad input.
    let (code, _) = s.call("HEAD", "/v1.44/containers/c1/archive?path=/in.txt", b"");
    assert_eq!(code, 200);
    let (code, body) = s.call("GET", "/v1.44/containers/c1/archive", b"");
    assert_eq!(code, 400, "{body}");
    let (code, body) = s.call("PUT", "/v1.44/containers/c1/archive?path=/in.txt", b"x");
    assert_eq!(code, 400, "{body}");
    assert!(
        body.contains("extraction point is not a directory"),
        "{body}"
    );
    let (code, _) = s.call("GET", "/v1.44/containers/nosuch/archive?path=/", b"");
    assert_eq!(code, 404);
    s.ok(&["rm", "-f", "c1"]);
}

#[test]
fn api_stats_and_system_df() {
    let (_b, s) = api::busybox_service();
    s.ok(&["volume", "create", "dfvol"]);
    s.run_d("st", &["-v", "dfvol:/v", "busybox", "sleep", "300"]);
    let out = s.ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}}|{{.MemUsage}}|{{.PIDs}}|{{.NetIO}}",
        "st",
    ]);
    let f: Vec<&str> = out.trim().split('|').collect();
    assert_eq!(f[0], "st", "{out}");
    assert!(f[1].contains(" / ") && !f[1].starts_with("0B"), "{out}");
    assert_eq!(f[2], "1", "{out}");
    assert!(f[3].contains(" / "), "{out}");
    // The raw shape.
    let (code, body) = s.call("GET", "/v1.44/containers/st/stats?stream=0&one-shot=1", b"");
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["name"], "/st");
    assert!(v["cpu_stats"]["cpu_usage"]["total_usage"].as_u64().unwrap() > 0);
    assert!(v["cpu_stats"]["online_cpus"].as_u64().unwrap() >= 1);
    assert!(v["memory_stats"]["limit"].as_u64().unwrap() > 0);
    assert_eq!(v["pids_stats"]["current"], 1);
    let df = s.ok(&["system", "df"]);
    let lines: Vec<&str> = df.lines().collect();
    assert!(lines[0].starts_with("TYPE"), "{df}");
    let row = |t: &str| -> Vec<String> {
        let l = lines.iter().find(|l| l.starts_with(t)).unwrap();
        l[t.len()..].split_whitespace().map(str::to_owned).collect()
    };
    assert_eq!(&row("Images")[..2], ["1", "1"], "{df}");
    assert_eq!(&row("Containers")[..2], ["1", "1"], "{df}");
    assert_eq!(&row("Local Volumes")[..2], ["1", "1"], "{df}");
    let (code, body) = s.call("GET", "/v1.44/system/df?type=volume", b"");
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["Volumes"][0]["UsageData"]["RefCount"], 1, "{body}");
    assert!(v.get("Images").is_none(), "{body}");
    let (code, _) = s.call("GET", "/v1.44/system/df?type=bogus", b"");
    assert_eq!(code, 400);
    let (code, body) = s.call("GET", "/v1.44/containers/nosuch/stats?stream=0", b"");
    assert_eq!(code, 404, "{body}");
    s.ok(&["rm", "-f", "st"]);
    s.ok(&["volume", "rm", "dfvol"]);
}

/// POST /containers/create with two endpoints in NetworkingConfig (Docker
/// 25+, API 1.44): eth0 on NetworkMode's network with the default route,
/// eth1 on the other, each with its address and aliases; the docker CLI
/// 28's `--network a --network name=b,alias=x` sends the same; a mix with
/// a predefined mode is refused (400) and creates nothing.
#[test]
fn api_create_with_two_endpoints() {
    let (b, s) = api::busybox_service();
    s.ok(&["network", "create", "--subnet", "10.241.13.0/24", "e1"]);
    s.ok(&["network", "create", "--subnet", "10.241.14.0/24", "e2"]);
    let body = br#"{"Image":"busybox","Cmd":["sleep","300"],
        "HostConfig":{"NetworkMode":"e1"},
        "NetworkingConfig":{"EndpointsConfig":{
          "e1":{"Aliases":["one"],"IPAMConfig":{"IPv4Address":"10.241.13.9"}},
          "e2":{"Aliases":["two"],"IPAMConfig":{"IPv4Address":"10.241.14.9"}}}}}"#;
    let (code, out) = s.call("POST", "/v1.44/containers/create?name=both", body);
    assert_eq!(code, 201, "{out}");
    let (code, out) = s.call("POST", "/v1.44/containers/both/start", b"");
    assert_eq!(code, 204, "{out}");
    let addrs = b.ok(&["exec", "both", "ip", "-4", "-o", "addr"]);
    assert!(
        addrs.contains("eth0    inet 10.241.13.9/24")
            && addrs.contains("eth1    inet 10.241.14.9/24"),
        "{addrs}"
    );
    let routes = b.ok(&["exec", "both", "ip", "route"]);
    assert!(
        routes.contains("default via 10.241.13.1 dev eth0"),
        "{routes}"
    );
    let (code, out) = s.call("GET", "/v1.44/containers/both/json", b"");
    assert_eq!(code, 200, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let nets = &v["NetworkSettings"]["Networks"];
    assert_eq!(nets["e1"]["IPAddress"], "10.241.13.9");
    assert_eq!(nets["e2"]["IPAddress"], "10.241.14.9");
    assert_eq!(nets["e2"]["Gateway"], "10.241.14.1");
    assert_eq!(nets["e2"]["IPAMConfig"]["IPv4Address"], "10.241.14.9");
    assert_eq!(nets["e2"]["Aliases"][0], "two");
    // The docker CLI 28 (API 1.44): several --network, the long syntax.
    s.run_d(
        "cli",
        &[
            "--network",
            "e2",
            "--network",
            "name=e1,alias=uno",
            "busybox",
            "sleep",
            "300",
        ],
    );
    let v: Value = serde_json::from_str(&s.ok(&["inspect", "cli"])).unwrap();
    let nets = v[0]["NetworkSettings"]["Networks"].as_object().unwrap();
    assert_eq!(nets.len(), 2, "{nets:?}");
    assert_eq!(nets["e1"]["Aliases"][0], "uno");
    let out = b.ok(&["exec", "both", "ping", "-c", "1", "-W", "5", "uno"]);
    assert!(out.contains("10.241.13."), "{out}");
    let routes = b.ok(&["exec", "cli", "ip", "route"]);
    assert!(
        routes.contains("default via 10.241.14.1 dev eth0"),
        "{routes}"
    );
    // A predefined mode with a user network: 400, nothing created.
    let (code, out) = s.call(
        "POST",
        "/v1.44/containers/create?name=mixed",
        br#"{"Image":"busybox","Cmd":["true"],"HostConfig":{"NetworkMode":"host"},
            "NetworkingConfig":{"EndpointsConfig":{"host":{},"e1":{}}}}"#,
    );
    assert_eq!(code, 400, "{out}");
    assert!(
        out.contains("cannot attach both user-defined and non-user-defined network-modes"),
        "{out}"
    );
    let (code, _) = s.call("GET", "/v1.44/containers/mixed/json", b"");
    assert_eq!(code, 404);
    // An alias on the default bridge: dockerd's words.
    let (code, out) = s.call(
        "POST",
        "/v1.44/containers/create?name=aliased",
        br#"{"Image":"busybox","Cmd":["true"],"HostConfig":{"NetworkMode":"bridge"},
            "NetworkingConfig":{"EndpointsConfig":{"bridge":{"Aliases":["x"]}}}}"#,
    );
    assert_eq!(code, 400, "{out}");
    assert!(
        out.contains(
            "network-scoped alias is supported only for containers in user defined networks"
        ),
        "{out}"
    );
    let (code, _) = s.call("GET", "/v1.44/containers/aliased/json", b"");
    assert_eq!(code, 404);
    s.ok(&["rm", "-f", "both", "cli"]);
    s.ok(&["network", "rm", "e1", "e2"]);
}
