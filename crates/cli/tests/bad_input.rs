//! Bad input: each case fails with one clear `Error:` line and a non-zero exit,
//! leaves nothing half-written (no image, blob, layer or temporary file it added)
//! and the store stays usable. Also: SIGKILL during `load`, then `load` again.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::time::{Duration, Instant};

/// What the store holds, to compare before and after a failed command.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    images: Vec<String>,
    blobs: Vec<String>,
    blob_dir: Vec<String>,
    layers: Vec<String>,
    layer_dir: Vec<String>,
}

fn snapshot(b: &Berth) -> Snapshot {
    let all = |d: &str| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(b.root().join(d))
            .map(|rd| {
                rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    Snapshot {
        images: b.image_ids(),
        blobs: b.blobs(),
        blob_dir: all("blobs/sha256"),
        layers: b.layer_dirs(),
        layer_dir: all("storage/layers"),
    }
}

fn good_image() -> ImageSpec {
    let l2 = layer_tar(&[dir("good"), file("good/file", b"good\n")]);
    ImageSpec::new("good:1", vec![Layer::busybox(), Layer::gz(l2)])
}

/// Loads `archive` (from a file), expects a one-line error containing `want`,
/// and checks the store is unchanged and still works.
fn refused(b: &Berth, name: &str, archive: &[u8], want: &str) {
    let before = snapshot(b);
    let path = b.scratch().join(format!("{name}.tar"));
    std::fs::write(&path, archive).unwrap();
    let args = ["load", "-i", path.to_str().unwrap()];
    let out = b.run(&args);
    assert_ne!(
        out.status.code(),
        Some(0),
        "{name}: {}",
        describe(&args, &out)
    );
    let line = check_failure(&args, &out, 1);
    assert!(
        line.contains(want),
        "{name}: the error should mention {want:?}: {line}"
    );
    assert_eq!(
        snapshot(b),
        before,
        "{name}: the failed load left something"
    );
    // From stdin too.
    let out = b.run_stdin(&["load"], archive);
    let line2 = check_failure(&["load"], &out, 1);
    assert!(line2.contains(want), "{name} (stdin): {line2}");
    assert_eq!(
        snapshot(b),
        before,
        "{name} (stdin): the failed load left something"
    );
    std::fs::remove_file(&path).unwrap();
}

fn still_works(b: &Berth) {
    b.ok(&["images"]);
    b.ok(&["system", "df"]);
    let path = b.scratch().join("good.tar");
    std::fs::write(&path, docker_archive(&[good_image()])).unwrap();
    assert_eq!(
        b.ok(&["load", "-i", path.to_str().unwrap()]),
        "Loaded image: good:1\n"
    );
    assert_eq!(
        b.ok(&["run", "--rm", "good:1", "cat", "/good/file"]),
        "good\n"
    );
    b.ok(&["rmi", "good:1"]);
}

fn union_layers() -> Vec<Layer> {
    vec![
        Layer::busybox(),
        Layer::gz(layer_tar(&[dir("a"), file("a/x", &noise(1, 300_000))])),
        Layer::plain(layer_tar(&[dir("b"), file("b/y", b"y")])),
    ]
}

#[test]
fn truncated_and_garbage_archives() {
    let b = Berth::with_busybox();
    let full = docker_archive(&[ImageSpec::new("t:1", union_layers())]);
    // Cut inside the busybox layer, inside the gzip layer, before manifest.json.
    for cut in [full.len() / 3, full.len() - 200_000, full.len() - 1100] {
        refused(&b, &format!("truncated-{cut}"), &full[..cut], "truncated");
    }
    let oci = oci_archive(&[ImageSpec::new("t:1", union_layers())]);
    refused(&b, "truncated-oci", &oci[..oci.len() / 2], "truncated");
    refused(&b, "garbage", &noise(7, 100_000), "");
    refused(&b, "empty", b"", "");
    // A tar that is no image archive.
    refused(
        &b,
        "plain-tar",
        &layer_tar(&[file("hello", b"x")]),
        "not an image archive",
    );
    still_works(&b);
}

#[test]
fn corrupt_gzip_layer() {
    let b = Berth::with_busybox();
    let mut layers = union_layers();
    let good_gz = layers[1].blob();
    // Valid gzip header, garbage after it.
    let mut bad = good_gz[..20].to_vec();
    bad.extend(noise(3, 5000));
    let img = ImageSpec::new("cg:1", layers.clone());
    let t = Tamper {
        replace: vec![(hex(&good_gz), bad.clone())],
        ..Tamper::default()
    };
    refused(
        &b,
        "corrupt-gzip-docker",
        &docker_archive_with(std::slice::from_ref(&img), &t),
        "",
    );
    // A gzip stream cut short.
    let t = Tamper {
        replace: vec![(hex(&good_gz), good_gz[..good_gz.len() / 2].to_vec())],
        ..Tamper::default()
    };
    refused(
        &b,
        "short-gzip-docker",
        &docker_archive_with(std::slice::from_ref(&img), &t),
        "",
    );
    // In an OCI archive the blob name is its digest: a mismatch.
    let t = Tamper {
        replace: vec![(hex(&good_gz), bad)],
        ..Tamper::default()
    };
    refused(
        &b,
        "corrupt-gzip-oci",
        &oci_archive_with(&[img], &t),
        "digest",
    );
    // The gzip layer's uncompressed tar corrupt (valid gzip of garbage).
    layers[1] = Layer::gz(noise(9, 10_000));
    let mut img = ImageSpec::new("cg:2", layers);
    img.diff_ids = None;
    refused(&b, "gzip-of-garbage", &docker_archive(&[img]), "");
    still_works(&b);
}

#[test]
fn diff_id_mismatch() {
    let b = Berth::with_busybox();
    let layers = union_layers();
    let mut img = ImageSpec::new("dm:1", layers.clone());
    let mut ids: Vec<String> = layers.iter().map(Layer::diff_id).collect();
    ids[2] = sha(b"something else");
    img.diff_ids = Some(ids.clone());
    refused(
        &b,
        "diff-id-mismatch-docker",
        &docker_archive(std::slice::from_ref(&img)),
        "diff_id",
    );
    refused(&b, "diff-id-mismatch-oci", &oci_archive(&[img]), "diff_id");
    // The bottom layer's diff_id wrong (a layer the store already has otherwise).
    let mut img = ImageSpec::new("dm:2", layers.clone());
    let mut ids: Vec<String> = layers.iter().map(Layer::diff_id).collect();
    ids[0] = sha(b"wrong bottom");
    img.diff_ids = Some(ids);
    refused(
        &b,
        "diff-id-mismatch-bottom",
        &docker_archive(&[img]),
        "diff_id",
    );
    still_works(&b);
}

#[test]
fn missing_blobs_and_bad_manifests() {
    let b = Berth::with_busybox();
    let layers = union_layers();
    let img = ImageSpec::new("mb:1", layers.clone());
    let missing = Tamper {
        omit: vec![hex(&layers[2].blob())],
        ..Tamper::default()
    };
    refused(
        &b,
        "missing-layer-docker",
        &docker_archive_with(std::slice::from_ref(&img), &missing),
        "missing",
    );
    refused(
        &b,
        "missing-layer-oci",
        &oci_archive_with(std::slice::from_ref(&img), &missing),
        "missing",
    );
    let no_config = Tamper {
        omit: vec![hex(&img.config())],
        ..Tamper::default()
    };
    refused(
        &b,
        "missing-config-docker",
        &docker_archive_with(std::slice::from_ref(&img), &no_config),
        "missing",
    );
    refused(
        &b,
        "missing-config-oci",
        &oci_archive_with(std::slice::from_ref(&img), &no_config),
        "missing",
    );
    // Unknown layer media type.
    let mut weird = img.clone();
    weird.media_types = Some(vec![
        "application/vnd.oci.image.layer.v1.tar".into(),
        "application/vnd.example.weird".into(),
        "application/vnd.oci.image.layer.v1.tar".into(),
    ]);
    refused(
        &b,
        "unknown-media-type",
        &oci_archive(&[weird]),
        "media type",
    );
    // Fewer diff_ids than layers.
    let mut short = img.clone();
    short.diff_ids = Some(vec![layers[0].diff_id()]);
    refused(
        &b,
        "too-few-diff-ids",
        &docker_archive(&[short]),
        "diff_ids",
    );
    still_works(&b);
}

#[test]
fn bad_references_and_unknown_images() {
    let b = Berth::with_busybox();
    let before = snapshot(&b);
    let e = b.fails(&["tag", "busybox", "Bad:Ref:x"], 1);
    assert!(e.contains("invalid reference format"), "{e}");
    let e = b.fails(&["tag", "busybox", "UPPER:1"], 1);
    assert!(e.contains("lowercase"), "{e}");
    let e = b.fails(&["run", "--rm", "UPPER"], 125);
    assert!(e.contains("invalid reference format"), "{e}");
    let e = b.fails(&["tag", "nosuch", "x:1"], 1);
    assert!(e.contains("No such image"), "{e}");
    let e = b.fails(&["run", "--rm", "nosuch:1", "true"], 125);
    assert!(e.contains("Unable to find image"), "{e}");
    let e = b.fails(&["create", "nosuch:1", "true"], 1);
    assert!(e.contains("Unable to find image"), "{e}");
    let e = b.fails(&["rmi", "nosuch:1"], 1);
    assert!(e.contains("No such image"), "{e}");
    let e = b.fails(&["image", "inspect", "nosuch:1"], 1);
    assert!(e.contains("nosuch"), "{e}");
    let e = b.fails(&["history", "nosuch:1"], 1);
    assert!(e.contains("No such image"), "{e}");
    let tar = b.scratch().join("bb.tar");
    std::fs::write(&tar, busybox_tar()).unwrap();
    let e = b.fails(&["import", tar.to_str().unwrap(), "Bad:Ref:x"], 1);
    assert!(e.contains("invalid reference format"), "{e}");
    let e = b.fails(&["import", "/nonexistent/file.tar", "x:1"], 1);
    assert!(e.contains("/nonexistent/file.tar"), "{e}");
    // import of something that is not a tar.
    std::fs::write(&tar, noise(5, 10_000)).unwrap();
    b.fails(&["import", tar.to_str().unwrap(), "x:1"], 1);
    let e = b.fails(&["load", "-i", "/nonexistent/file.tar"], 1);
    assert!(e.contains("/nonexistent/file.tar"), "{e}");
    let e = b.fails(
        &[
            "save",
            "-o",
            b.scratch().join("s.tar").to_str().unwrap(),
            "nosuch:1",
        ],
        1,
    );
    assert!(e.contains("No such image"), "{e}");
    assert!(
        !b.scratch().join("s.tar").exists(),
        "a failed save left its file"
    );
    let e = b.fails(
        &["save", "--format", "zip", "-o", "/dev/null", "busybox"],
        1,
    );
    assert!(e.contains("zip"), "{e}");
    assert_eq!(snapshot(&b), before);
    assert_eq!(
        b.ok(&["ps", "-a", "-q"]),
        "",
        "a failed run left a container"
    );
}

#[test]
fn exit_codes_of_run() {
    let b = Berth::with_busybox();
    let e = b.fails(&["run", "--rm", "busybox", "nonexistent-cmd"], 127);
    assert!(e.contains("nonexistent-cmd"), "{e}");
    let e = b.fails(&["run", "--rm", "busybox", "/etc/passwd"], 126);
    assert!(e.contains("/etc/passwd"), "{e}");
    let e = b.fails(&["run", "--rm", "busybox", "/etc"], 126);
    assert!(e.contains("/etc"), "{e}");
    let out = b.run(&["run", "--rm", "busybox", "sh", "-c", "exit 42"]);
    assert_eq!(out.status.code(), Some(42));
    let e = b.fails(&["run", "--x", "busybox"], 125);
    assert_eq!(e, "unknown flag: --x");
    let out = b.run(&["run", "--x", "busybox"]);
    assert!(
        text(&out.stderr).contains("See 'berth run --help'."),
        "{}",
        text(&out.stderr)
    );
    let e = b.fails(&["images", "--bogus"], 125);
    assert_eq!(e, "unknown flag: --bogus");
    // A failed run removes its --rm container; without --rm it stays, exited.
    assert_eq!(b.ok(&["ps", "-a", "-q"]), "");
    b.fails(
        &["run", "--name", "kept", "busybox", "nonexistent-cmd"],
        127,
    );
    let ps = b.ok(&["ps", "-a"]);
    assert!(ps.contains("kept"), "{ps}");
    b.ok(&["rm", "kept"]);
}

#[test]
fn rmi_of_an_image_in_use() {
    let b = Berth::with_busybox();
    let id = b.image_id("busybox");
    let cid = b
        .ok(&["create", "--name", "user1", "busybox", "true"])
        .trim()
        .to_owned();
    let e = b.fails(&["rmi", "busybox"], 1);
    assert!(e.contains(&cid[..12]), "the error names the container: {e}");
    assert_eq!(b.image_ids(), vec![id.clone()], "nothing removed");
    b.ok(&["run", "--rm", "busybox", "true"]);
    let e = b.fails(&["rmi", &id[7..19]], 1);
    assert!(e.contains(&cid[..12]), "{e}");
    // image prune -a keeps it too.
    b.ok(&["image", "prune", "-a", "-f"]);
    assert_eq!(b.image_ids(), vec![id.clone()]);
    // -f: Docker untags an image a stopped container uses, and keeps it.
    let out = b.ok(&["rmi", "-f", "busybox"]);
    assert!(out.contains("Untagged: busybox:latest"), "{out}");
    assert_eq!(
        b.image_ids(),
        vec![id.clone()],
        "the container still needs it"
    );
    // The container still works from its image (diff, export, commit).
    b.ok(&["diff", "user1"]);
    let exp = b.cmd(&["export", "user1"]).output().unwrap();
    assert!(exp.status.success());
    assert!(tar_names(&exp.stdout).iter().any(|n| n == "bin/busybox"));
    // Once the container is gone the image can go.
    b.ok(&["rm", "user1"]);
    let out = b.ok(&["rmi", &id]);
    assert!(out.contains(&format!("Deleted: {id}")), "{out}");
    assert!(b.blobs().is_empty(), "{:?}", b.blobs());
    assert!(b.layer_dirs().is_empty(), "{:?}", b.layer_dirs());
}

/// Every blob in the store hashes to its name (a killed load never leaves a half blob
/// under a digest name).
fn blobs_verify(b: &Berth) {
    for name in b.blobs() {
        let data = std::fs::read(b.root().join("blobs/sha256").join(&name)).unwrap();
        assert_eq!(hex(&data), name, "blob {name} does not match its digest");
    }
}

#[test]
fn sigkill_during_load_then_load_again() {
    let b = Berth::new();
    let mut layers = vec![Layer::busybox()];
    for i in 0..6u64 {
        layers.push(Layer::plain(layer_tar(&[
            dir(&format!("big{i}")),
            file(&format!("big{i}/data"), &noise(100 + i, 8 << 20)),
        ])));
    }
    let img = ImageSpec::new("big:1", layers);
    let archive = docker_archive(&[img]);
    assert!(archive.len() > 50_000_000, "{}", archive.len());
    let path = b.scratch().join("big.tar");
    std::fs::write(&path, &archive).unwrap();
    drop(archive);

    // Kill at several points: once something is in the blob directory, then later.
    let mut killed = 0;
    for delay_ms in [0u64, 150, 400] {
        let mut child = b
            .cmd(&["load", "-i", path.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        while b.blob_dir_entries().is_empty() && start.elapsed() < Duration::from_secs(20) {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let st = child.wait().unwrap();
        if std::os::unix::process::ExitStatusExt::signal(&st) == Some(libc::SIGKILL) {
            killed += 1;
        }
        blobs_verify(&b);
        // The store answers.
        b.ok(&["images"]);
        b.ok(&["system", "df"]);
    }
    assert!(killed >= 1, "load was never killed mid-way");
    assert_eq!(
        b.ok(&["images", "-q"]).lines().count(),
        0,
        "a killed load registered an image"
    );

    let out = b.ok(&["load", "-i", path.to_str().unwrap()]);
    assert_eq!(out, "Loaded image: big:1\n");
    assert_eq!(
        b.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]),
        "big:1\n"
    );
    assert_eq!(b.image_ids().len(), 1);
    blobs_verify(&b);
    assert_eq!(
        b.ok(&[
            "run",
            "--rm",
            "big:1",
            "sh",
            "-c",
            "ls / | grep -c big; wc -c < /big5/data"
        ]),
        format!("6\n{}\n", 8 << 20)
    );
    b.ok(&["system", "df"]);
    // Removing it frees everything, leftovers of the killed loads included.
    b.ok(&["rmi", "big:1"]);
    assert!(b.blobs().is_empty(), "blobs left: {:?}", b.blobs());
    assert!(
        b.layer_dirs().is_empty(),
        "layers left: {:?}",
        b.layer_dirs()
    );
}
