//! `berth` image commands end to end: import, images, tag, rmi, load, save, history,
//! inspect, prune, system df, and running what was loaded.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::Value;

/// The header of a Docker table and the column each cell of `row` starts at.
fn columns(header: &str) -> Vec<(String, usize)> {
    let mut cols = Vec::new();
    let mut start = None;
    let b = header.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b' ' {
            if start.is_none() {
                start = Some(i);
            }
            i += 1;
            continue;
        }
        // One space inside a name ("IMAGE ID"), two or more between columns.
        if i + 1 < b.len() && b[i + 1] != b' ' && start.is_some() {
            i += 1;
            continue;
        }
        if let Some(s) = start.take() {
            cols.push((header[s..i].to_owned(), s));
        }
        i += 1;
    }
    if let Some(s) = start {
        cols.push((header[s..].to_owned(), s));
    }
    cols
}

fn cell(row: &str, cols: &[(String, usize)], name: &str) -> String {
    let k = cols.iter().position(|(n, _)| n == name).unwrap();
    let start = cols[k].1;
    let end = cols.get(k + 1).map(|c| c.1).unwrap_or(row.len());
    row.get(start..end.min(row.len()))
        .unwrap_or("")
        .trim()
        .to_owned()
}

#[test]
fn import_images_run_tag_rmi() {
    let b = Berth::new();
    let id = b.import_busybox();
    let hex = id.trim_start_matches("sha256:");

    // The table.
    let out = b.ok(&["images"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    let cols = columns(lines[0]);
    let names: Vec<&str> = cols.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"],
        "{out}"
    );
    assert_eq!(cell(lines[1], &cols, "REPOSITORY"), "busybox");
    assert_eq!(cell(lines[1], &cols, "TAG"), "latest");
    assert_eq!(cell(lines[1], &cols, "IMAGE ID"), &hex[..12]);
    assert!(cell(lines[1], &cols, "CREATED").ends_with("ago"), "{out}");
    let size = cell(lines[1], &cols, "SIZE");
    assert!(size.ends_with("MB"), "busybox is megabytes: {out}");

    // -q: the short ID; --no-trunc: the full one.
    assert_eq!(b.ok(&["images", "-q"]), format!("{}\n", &hex[..12]));
    assert_eq!(b.ok(&["images", "-q", "--no-trunc"]), format!("{id}\n"));
    assert_eq!(b.ok(&["image", "ls", "-q"]), format!("{}\n", &hex[..12]));

    // --digests adds a DIGEST column (an imported image has none).
    let out = b.ok(&["images", "--digests"]);
    let lines: Vec<&str> = out.lines().collect();
    let cols = columns(lines[0]);
    let names: Vec<&str> = cols.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["REPOSITORY", "TAG", "DIGEST", "IMAGE ID", "CREATED", "SIZE"],
        "{out}"
    );
    assert_eq!(cell(lines[1], &cols, "DIGEST"), "<none>");
    assert_eq!(cell(lines[1], &cols, "IMAGE ID"), &hex[..12]);

    // --format json: one object per line.
    let out = b.ok(&["images", "--format", "json"]);
    assert_eq!(out.lines().count(), 1, "{out}");
    let v: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(v["Repository"], "busybox");
    assert_eq!(v["Tag"], "latest");
    assert_eq!(v["ID"], &hex[..12]);
    assert_eq!(v["Size"].as_str().unwrap(), size);

    // A template.
    assert_eq!(
        b.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]),
        "busybox:latest\n"
    );

    // run --rm prints the output and returns the exit code.
    let out = b.run(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo hello from busybox; exit 7",
    ]);
    assert_eq!(out.status.code(), Some(7), "{}", describe(&["run"], &out));
    assert_eq!(text(&out.stdout), "hello from busybox\n");
    let out = b.run(&["run", "--rm", "busybox", "true"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(b.ok(&["ps", "-a", "-q"]), "", "--rm left a container");

    // tag, then both names list the same ID.
    b.ok(&["tag", "busybox", "mine/box:v1"]);
    let out = b.ok(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]);
    let mut rows: Vec<&str> = out.lines().collect();
    rows.sort();
    assert_eq!(
        rows,
        [
            format!("busybox:latest {}", &hex[..12]),
            format!("mine/box:v1 {}", &hex[..12])
        ],
        "{out}"
    );
    // -q lists one line per row, as Docker does: the image twice, once per tag.
    assert_eq!(b.ok(&["images", "-q"]), format!("{0}\n{0}\n", &hex[..12]));
    // Filter by repository.
    assert_eq!(
        b.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}", "mine/box"]),
        "mine/box:v1\n"
    );
    b.ok(&["run", "--rm", "mine/box:v1", "true"]);

    // rmi of one of two tags only untags.
    let out = b.ok(&["rmi", "busybox"]);
    assert_eq!(out, "Untagged: busybox:latest\n");
    assert_eq!(b.image_ids(), vec![id.clone()]);
    let out = b.run(&["run", "--rm", "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125));
    // rmi of the last tag deletes.
    let out = b.ok(&["rmi", "mine/box:v1"]);
    assert_eq!(out, format!("Untagged: mine/box:v1\nDeleted: {id}\n"));
    assert_eq!(b.ok(&["images", "-q"]), "");
    assert!(b.blobs().is_empty(), "blobs left: {:?}", b.blobs());
    assert!(
        b.layer_dirs().is_empty(),
        "layers left: {:?}",
        b.layer_dirs()
    );
    // The header stays.
    assert_eq!(b.ok(&["images"]).lines().count(), 1);
}

/// A 3-layer docker-archive with a whiteout and an opaque dir.
fn union_image(tag: &str) -> ImageSpec {
    let l2 = layer_tar(&[
        dir("data"),
        file("data/keep", b"keep\n"),
        file("data/gone", b"gone\n"),
        dir("data/sub"),
        file("data/sub/old1", b"1\n"),
        file("data/sub/old2", b"2\n"),
        file("etc/motd", b"hello\n"),
    ]);
    let l3 = layer_tar(&[
        dir("data"),
        whiteout("data/gone"),
        dir("data/sub"),
        opaque("data/sub"),
        file("data/sub/new", b"new\n"),
        file("data/added", b"added\n"),
    ]);
    let mut img = ImageSpec::new(tag, vec![Layer::busybox(), Layer::gz(l2), Layer::plain(l3)]);
    img.cmd = vec!["sh".into(), "-c".into(), "cat /data/added".into()];
    img
}

const UNION_SCRIPT: &str = "cd /data && find . | sort && cat keep sub/new /etc/motd";
const UNION_EXPECTED: &str = ".\n./added\n./keep\n./sub\n./sub/new\nkeep\nnew\nhello\n";

fn check_union_fs(b: &Berth, name: &str) {
    let out = b.run(&["run", "--rm", name, "sh", "-c", UNION_SCRIPT]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        describe(&["run", name], &out)
    );
    let got = text(&out.stdout);
    assert_eq!(got, UNION_EXPECTED, "{}", describe(&["run", name], &out));
}

fn check_union(b: &Berth, name: &str) {
    check_union_fs(b, name);
    // The image's Cmd.
    let out = b.run(&["run", "--rm", name]);
    assert_eq!(
        text(&out.stdout),
        "added\n",
        "{}",
        describe(&["run", name], &out)
    );
}

#[test]
fn load_docker_archive_with_whiteouts_save_and_reload() {
    let b = Berth::new();
    let img = union_image("union:1");
    let archive = docker_archive(std::slice::from_ref(&img));
    let path = b.scratch().join("union.tar");
    std::fs::write(&path, &archive).unwrap();
    let out = b.ok(&["load", "-i", path.to_str().unwrap()]);
    assert_eq!(out, "Loaded image: union:1\n");
    let config = img.config();
    let id = sha(&config);
    assert_eq!(
        b.image_id("union:1"),
        id,
        "the image ID is the config digest"
    );
    let diff_ids: Vec<String> = img.layers.iter().map(Layer::diff_id).collect();
    assert_eq!(b.diff_ids("union:1"), diff_ids);
    check_union(&b, "union:1");

    for (format, file) in [
        ("docker-archive", "s-docker.tar"),
        ("oci-archive", "s-oci.tar"),
        ("oci-dir", "s-oci-dir"),
    ] {
        let saved = b.scratch().join(file);
        b.ok(&[
            "save",
            "--format",
            format,
            "-o",
            saved.to_str().unwrap(),
            "union:1",
        ]);
        if format == "oci-dir" {
            assert!(saved.join("index.json").is_file());
            assert!(saved.join("oci-layout").is_file());
        } else {
            let names = tar_names(&std::fs::read(&saved).unwrap());
            let want = if format == "docker-archive" {
                "manifest.json"
            } else {
                "index.json"
            };
            assert!(names.iter().any(|n| n == want), "{format}: {names:?}");
        }
        let out = b.ok(&["rmi", "union:1"]);
        assert!(out.contains(&format!("Deleted: {id}")), "{out}");
        assert_eq!(b.ok(&["images", "-q"]), "");
        assert!(
            b.blobs().is_empty(),
            "{format}: rmi left blobs {:?}",
            b.blobs()
        );
        let out = b.ok(&["load", "-i", saved.to_str().unwrap()]);
        assert_eq!(out, "Loaded image: union:1\n", "{format}");
        assert_eq!(b.image_id("union:1"), id, "{format}: the image ID survives");
        assert_eq!(
            b.diff_ids("union:1"),
            diff_ids,
            "{format}: the diff_ids survive"
        );
        check_union(&b, "union:1");
    }
}

#[test]
fn load_oci_archive_from_stdin_and_save_to_stdout() {
    let b = Berth::new();
    let img = union_image("example.com/team/union:2");
    let archive = oci_archive(std::slice::from_ref(&img));
    let out = b.run_stdin(&["load"], &archive);
    assert!(out.status.success(), "{}", describe(&["load"], &out));
    assert_eq!(
        text(&out.stdout),
        "Loaded image: example.com/team/union:2\n"
    );
    assert_eq!(b.image_id("example.com/team/union:2"), sha(&img.config()));
    check_union(&b, "example.com/team/union:2");
    // An OCI archive has a manifest: --digests shows its digest.
    let d = b.ok(&["images", "--digests", "--format", "{{.Digest}}"]);
    assert!(d.starts_with("sha256:") && d.trim().len() == 71, "{d}");

    // save to stdout, load from stdin (quietly) into a second store.
    let out = b
        .cmd(&["save", "example.com/team/union:2"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&["save"], &out));
    let c = Berth::new();
    let l = c.run_stdin(&["load", "-q"], &out.stdout);
    assert!(l.status.success(), "{}", describe(&["load", "-q"], &l));
    assert_eq!(text(&l.stdout), "");
    assert_eq!(c.image_id("example.com/team/union:2"), sha(&img.config()));
    check_union(&c, "example.com/team/union:2");
}

#[test]
fn save_two_images_in_one_archive() {
    let b = Berth::with_busybox();
    let union = union_image("union:1");
    let path = b.scratch().join("u.tar");
    std::fs::write(&path, docker_archive(&[union])).unwrap();
    b.ok(&["load", "-i", path.to_str().unwrap()]);
    let ids = b.image_ids();
    assert_eq!(ids.len(), 2);
    for format in ["docker-archive", "oci-archive"] {
        let both = b.scratch().join(format!("both-{format}.tar"));
        b.ok(&[
            "save",
            "--format",
            format,
            "-o",
            both.to_str().unwrap(),
            "busybox",
            "union:1",
        ]);
        let c = Berth::new();
        let out = c.ok(&["load", "-i", both.to_str().unwrap()]);
        let mut lines: Vec<&str> = out.lines().collect();
        lines.sort();
        assert_eq!(
            lines,
            ["Loaded image: busybox:latest", "Loaded image: union:1"],
            "{format}"
        );
        assert_eq!(c.image_ids(), ids, "{format}");
        check_union(&c, "union:1");
        assert_eq!(c.ok(&["run", "--rm", "busybox", "echo", "ok"]), "ok\n");
        // The layer they share (busybox's) is stored once.
        assert_eq!(c.layer_dirs().len(), 3, "{format}: {:?}", c.layer_dirs());
    }
}

#[test]
fn inspect_history_prune_df() {
    let b = Berth::with_busybox();
    let union = union_image("union:1");
    let path = b.scratch().join("u.tar");
    std::fs::write(&path, docker_archive(std::slice::from_ref(&union))).unwrap();
    b.ok(&["load", "-i", path.to_str().unwrap()]);

    let v = b.inspect("union:1");
    assert_eq!(v["Id"], sha(&union.config()));
    assert_eq!(v["RepoTags"], serde_json::json!(["union:1"]));
    assert_eq!(
        v["Config"]["Cmd"],
        serde_json::json!(["sh", "-c", "cat /data/added"])
    );
    assert_eq!(v["RootFS"]["Type"], "layers");
    assert_eq!(v["RootFS"]["Layers"].as_array().unwrap().len(), 3);
    assert_eq!(v["Os"], "linux");
    let size = v["Size"].as_u64().unwrap();
    assert!(size > busybox_tar().len() as u64 / 2, "Size {size}");
    // `inspect` (not `image inspect`) finds images too.
    let top: Value = serde_json::from_str(&b.ok(&["inspect", "union:1"])).unwrap();
    assert_eq!(top[0]["Id"], v["Id"]);
    // --format
    assert_eq!(
        b.ok(&["image", "inspect", "--format", "{{.Id}}", "union:1"]),
        format!("{}\n", v["Id"].as_str().unwrap())
    );

    // history: columns, newest first, one row per history entry.
    let out = b.ok(&["history", "union:1"]);
    let lines: Vec<&str> = out.lines().collect();
    let cols = columns(lines[0]);
    let names: Vec<&str> = cols.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"],
        "{out}"
    );
    assert_eq!(lines.len(), 4, "{out}");
    assert_eq!(
        cell(lines[1], &cols, "IMAGE"),
        &v["Id"].as_str().unwrap()[7..19]
    );
    assert_eq!(cell(lines[1], &cols, "CREATED BY"), "layer 2", "{out}");
    assert_eq!(cell(lines[3], &cols, "CREATED BY"), "layer 0", "{out}");
    assert_eq!(cell(lines[2], &cols, "IMAGE"), "<missing>", "{out}");
    assert_eq!(cell(lines[3], &cols, "IMAGE"), "<missing>", "{out}");

    // system df: four rows.
    let out = b.ok(&["system", "df"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 5, "{out}");
    let cols = columns(lines[0]);
    let names: Vec<&str> = cols.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"],
        "{out}"
    );
    let types: Vec<String> = lines[1..].iter().map(|l| cell(l, &cols, "TYPE")).collect();
    assert_eq!(
        types,
        ["Images", "Containers", "Local Volumes", "Build Cache"],
        "{out}"
    );
    assert_eq!(cell(lines[1], &cols, "TOTAL"), "2", "{out}");
    assert_eq!(cell(lines[2], &cols, "TOTAL"), "0", "{out}");

    // prune: nothing dangling yet.
    let out = b.ok(&["image", "prune", "-f"]);
    assert!(!out.contains("Deleted"), "{out}");
    assert_eq!(b.image_ids().len(), 2);
    // Untag union:1 while another name keeps it; then make a dangling image by
    // loading a second image under the same tag.
    let mut other = union_image("union:1");
    other.cmd = vec!["true".into()];
    std::fs::write(&path, docker_archive(std::slice::from_ref(&other))).unwrap();
    b.ok(&["load", "-i", path.to_str().unwrap()]);
    assert_eq!(b.image_id("union:1"), sha(&other.config()));
    let out = b.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(
        out.lines().any(|l| l == "<none>:<none>"),
        "the old image is dangling: {out}"
    );
    let out = b.ok(&["image", "prune", "-f"]);
    assert!(
        out.contains(&format!("deleted: {}", sha(&union.config()))),
        "{out}"
    );
    assert!(out.contains("Total reclaimed space:"), "{out}");
    let mut want = vec![b.image_id("busybox"), sha(&other.config())];
    want.sort();
    assert_eq!(b.image_ids(), want);
    // The new image shares all layers with the pruned one: they stay.
    check_union_fs(&b, "union:1");
}

#[test]
fn a_hundred_and_twenty_layers() {
    let b = Berth::new();
    let mut layers = vec![Layer::busybox()];
    for i in 0..119 {
        layers.push(Layer::plain(layer_tar(&[
            dir("l"),
            file(&format!("l/f{i:03}"), format!("{i}\n").as_bytes()),
        ])));
    }
    let img = ImageSpec::new("many:layers", layers);
    let path = b.scratch().join("many.tar");
    std::fs::write(&path, docker_archive(&[img])).unwrap();
    b.ok(&["load", "-i", path.to_str().unwrap()]);
    assert_eq!(b.diff_ids("many:layers").len(), 120);
    let out = b.run(&[
        "run",
        "--rm",
        "many:layers",
        "sh",
        "-c",
        "ls /l | wc -l; cat /l/f000 /l/f118",
    ]);
    assert_eq!(
        text(&out.stdout).split_whitespace().collect::<Vec<_>>(),
        ["119", "0", "118"],
        "{}",
        describe(&["run", "many:layers"], &out)
    );
    assert_eq!(out.status.code(), Some(0));
    b.ok(&["rmi", "many:layers"]);
    assert!(b.layer_dirs().is_empty());
}

#[test]
fn vfs_driver_import_run_tag_rmi() {
    let b = Berth::with_driver("vfs");
    let id = b.import_busybox();
    assert_eq!(b.inspect("busybox")["GraphDriver"]["Name"], "vfs");
    // Docker's vfs driver reports no directories.
    assert!(b.inspect("busybox")["GraphDriver"]["Data"].is_null());
    let c = b.ok(&["create", "busybox", "true"]);
    let ci = b.inspect(c.trim());
    assert_eq!(ci["GraphDriver"]["Name"], "vfs");
    assert!(ci["GraphDriver"]["Data"].is_null(), "{}", ci["GraphDriver"]);
    // The files berth wrote into the container's tree at create.
    for (key, want) in [("HostnamePath", "hostname"), ("HostsPath", "hosts")] {
        let p = ci[key].as_str().unwrap();
        assert!(p.ends_with(&format!("/etc/{want}")), "{key}: {p}");
        assert!(std::path::Path::new(p).is_file(), "{key}: {p}");
    }
    b.ok(&["rm", c.trim()]);
    let out = b.run(&["run", "--rm", "busybox", "sh", "-c", "echo vfs; exit 3"]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(text(&out.stdout), "vfs\n");
    b.ok(&["tag", "busybox", "other:1"]);
    assert_eq!(b.ok(&["rmi", "busybox"]), "Untagged: busybox:latest\n");
    assert_eq!(
        b.ok(&["rmi", "other:1"]),
        format!("Untagged: other:1\nDeleted: {id}\n")
    );
    assert!(b.layer_dirs().is_empty());
    // A 3-layer image with whiteouts on vfs.
    let path = b.scratch().join("u.tar");
    std::fs::write(&path, docker_archive(&[union_image("union:1")])).unwrap();
    b.ok(&["load", "-i", path.to_str().unwrap()]);
    check_union(&b, "union:1");
}
