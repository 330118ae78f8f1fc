#![allow(clippy::unwrap_used)]

use berth_image::archive::{
    load_dir, load_path, load_tar, save_dir, save_tar, ArchiveFormat, Compression, Loaded,
    SaveFormat, SaveImage,
};
use berth_image::config::{import_rootfs_tar, ImportOptions};
use berth_image::{BlobStore, Digest, ImageDb, Reference};
use serde_json::json;
use std::io::{Read, Write};

fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.into_inner().unwrap()
}

fn symlink_entry(b: &mut tar::Builder<Vec<u8>>, name: &str, target: &str) {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    h.set_mode(0o777);
    b.append_link(&mut h, name, target).unwrap();
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn zstd_of(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 3).unwrap()
}

fn layers() -> Vec<Vec<u8>> {
    vec![
        tar_of(&[("etc/os-release", b"NAME=test\n"), ("bin/sh", b"#!fake\n")]),
        tar_of(&[("app/main", &[7u8; 5000][..])]),
        tar_of(&[("app/.wh.old", b"")]),
    ]
}

fn config_for(diff_ids: &[Digest]) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-05-06T07:08:09Z",
        "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>()},
        "history": [{"created_by": "ADD a"}, {"created_by": "ADD b"}, {"created_by": "RUN rm"}]
    }))
    .unwrap()
}

/// A classic docker-archive: `<id>/layer.tar` (plain, gzip, and a symlink to the first),
/// `<config>.json`, manifest.json, repositories, and v1 `json`/`VERSION` files.
fn docker_archive() -> (Vec<u8>, Vec<Digest>, Digest) {
    let l = layers();
    let diff_ids = vec![Digest::of(&l[0]), Digest::of(&l[1]), Digest::of(&l[0])];
    let config = config_for(&diff_ids);
    let cd = Digest::of(&config);
    let (id0, id1, id2) = ("a".repeat(64), "b".repeat(64), "c".repeat(64));
    let manifest = json!([{
        "Config": format!("{}.json", cd.hex()),
        "RepoTags": ["busybox:latest", "localhost:5000/app:v1"],
        "Layers": [format!("{id0}/layer.tar"), format!("{id1}/layer.tar"), format!("{id2}/layer.tar")],
    }]);
    let mut b = tar::Builder::new(Vec::new());
    let add = |b: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, name, data).unwrap();
    };
    add(&mut b, &format!("{id0}/VERSION"), b"1.0");
    add(&mut b, &format!("{id0}/json"), b"{}");
    add(&mut b, &format!("{id0}/layer.tar"), &l[0]);
    add(&mut b, &format!("{id1}/layer.tar"), &gzip(&l[1]));
    symlink_entry(
        &mut b,
        &format!("{id2}/layer.tar"),
        &format!("../{id0}/layer.tar"),
    );
    add(&mut b, &format!("{}.json", cd.hex()), &config);
    add(
        &mut b,
        "manifest.json",
        &serde_json::to_vec(&manifest).unwrap(),
    );
    add(&mut b, "repositories", br#"{"busybox":{"latest":"ccc"}}"#);
    (b.into_inner().unwrap(), diff_ids, cd)
}

struct Oci {
    files: Vec<(String, Vec<u8>)>,
}

impl Oci {
    /// An OCI layout: layers plain, gzip and zstd; index.json with containerd's name.
    fn new() -> (Oci, Vec<Digest>, Digest) {
        let l = layers();
        let diff_ids: Vec<Digest> = l.iter().map(|x| Digest::of(x)).collect();
        let blobs = [l[0].clone(), gzip(&l[1]), zstd_of(&l[2])];
        let types = [
            "application/vnd.oci.image.layer.v1.tar",
            "application/vnd.oci.image.layer.v1.tar+gzip",
            "application/vnd.oci.image.layer.v1.tar+zstd",
        ];
        let config = config_for(&diff_ids);
        let cd = Digest::of(&config);
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd.to_string(), "size": config.len()},
            "layers": blobs.iter().zip(types).map(|(b, t)| json!({"mediaType": t, "digest": Digest::of(b).to_string(), "size": b.len()})).collect::<Vec<_>>(),
        }))
        .unwrap();
        let md = Digest::of(&manifest);
        let index = json!({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md.to_string(), "size": manifest.len(),
            "annotations": {"io.containerd.image.name": "docker.io/user/app:v2", "org.opencontainers.image.ref.name": "v2"}
        }]});
        let mut files = vec![
            (
                "oci-layout".to_owned(),
                br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
            ),
            ("index.json".to_owned(), serde_json::to_vec(&index).unwrap()),
            (format!("blobs/sha256/{}", cd.hex()), config),
            (format!("blobs/sha256/{}", md.hex()), manifest),
        ];
        for b in blobs {
            files.push((format!("blobs/sha256/{}", Digest::of(&b).hex()), b));
        }
        (Oci { files }, diff_ids, md)
    }
    fn tar(&self) -> Vec<u8> {
        let v: Vec<(&str, &[u8])> = self
            .files
            .iter()
            .map(|(n, d)| (n.as_str(), d.as_slice()))
            .collect();
        tar_of(&v)
    }
    fn set(&mut self, name: &str, data: Vec<u8>) {
        match self.files.iter_mut().find(|(n, _)| n == name) {
            Some(f) => f.1 = data,
            None => self.files.push((name.to_owned(), data)),
        }
    }
    fn remove(&mut self, name: &str) {
        self.files.retain(|(n, _)| n != name);
    }
}

fn setup() -> (tempfile::TempDir, BlobStore, ImageDb) {
    let t = tempfile::tempdir().unwrap();
    let blobs = BlobStore::new(t.path()).unwrap();
    let db = ImageDb::open(t.path()).unwrap();
    (t, blobs, db)
}

/// What the engine does after a load: check every layer's uncompressed digest, register.
fn register(loaded: &Loaded, blobs: &BlobStore, db: &ImageDb) -> Vec<Digest> {
    let mut ids = Vec::new();
    for img in &loaded.images {
        for l in &img.layers {
            let mut r = l.open_uncompressed(blobs).unwrap();
            let mut v = Vec::new();
            r.read_to_end(&mut v).unwrap();
            assert_eq!(
                Digest::of(&v),
                l.diff_id,
                "uncompressed layer matches its diff_id"
            );
        }
        ids.push(db.add_image(&img.new_image(None)).unwrap());
    }
    ids
}

/// (config digest, config bytes, [(blob digest, diff_id)]) per image.
type Signature = Vec<(Digest, Vec<u8>, Vec<(Digest, Digest)>)>;

fn signature(l: &Loaded) -> Signature {
    l.images
        .iter()
        .map(|i| {
            (
                i.config_digest.clone(),
                i.config_bytes.clone(),
                i.layers
                    .iter()
                    .map(|l| (l.blob_digest.clone(), l.diff_id.clone()))
                    .collect(),
            )
        })
        .collect()
}

fn round_trip(loaded: &Loaded, blobs: &BlobStore, db: &ImageDb, id: &Digest) {
    let img = db.get(id).unwrap();
    let tags = img.repo_tags.clone();
    let items = [SaveImage {
        image: &img,
        tags: tags.clone(),
    }];
    for format in [SaveFormat::DockerArchive, SaveFormat::OciArchive] {
        let mut out = Vec::new();
        save_tar(&items, format, blobs, &mut out).unwrap();
        // Deterministic.
        let mut again = Vec::new();
        save_tar(&items, format, blobs, &mut again).unwrap();
        assert_eq!(out, again);
        // Deterministic headers: sorted paths, mtime 0, owned by 0:0.
        let mut names = Vec::new();
        for e in tar::Archive::new(&out[..]).entries().unwrap() {
            let e = e.unwrap();
            let h = e.header();
            assert_eq!(
                (h.mtime().unwrap(), h.uid().unwrap(), h.gid().unwrap()),
                (0, 0, 0)
            );
            names.push(e.path().unwrap().to_string_lossy().into_owned());
        }
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        // Into a fresh store.
        let t2 = tempfile::tempdir().unwrap();
        let b2 = BlobStore::new(t2.path()).unwrap();
        let re = load_tar(&out[..], &b2).unwrap();
        assert_eq!(signature(&re), signature(loaded), "{format:?}");
        let want = if format == SaveFormat::DockerArchive {
            ArchiveFormat::DockerArchive
        } else {
            ArchiveFormat::OciArchive
        };
        assert_eq!(re.format, want);
        let mut got_tags = re.images[0].repo_tags.clone();
        got_tags.sort();
        assert_eq!(got_tags, tags, "{format:?}");
        // The manifest survives as well (the first save generates one if there was none).
        if let Some((md, _)) = &loaded.images[0].manifest {
            assert_eq!(re.images[0].manifest.as_ref().unwrap().0, *md);
        }
        // Every blob in the archive is byte-identical.
        for l in &re.images[0].layers {
            assert_eq!(
                b2.read(&l.blob_digest).unwrap(),
                blobs.read(&l.blob_digest).unwrap()
            );
        }
    }
    let t3 = tempfile::tempdir().unwrap();
    let dir = t3.path().join("layout");
    save_dir(&items, blobs, &dir).unwrap();
    let b3 = BlobStore::new(&t3.path().join("store")).unwrap();
    let re = load_dir(&dir, &b3).unwrap();
    assert_eq!(re.format, ArchiveFormat::OciDir);
    assert_eq!(signature(&re), signature(loaded));
    let re = load_path(&dir, &b3).unwrap();
    assert_eq!(signature(&re), signature(loaded));
}

#[test]
fn docker_archive_loads_and_round_trips() {
    let (_t, blobs, db) = setup();
    let (tarball, diff_ids, cd) = docker_archive();
    let loaded = load_tar(&tarball[..], &blobs).unwrap();
    assert_eq!(loaded.format, ArchiveFormat::DockerArchive);
    let img = &loaded.images[0];
    assert_eq!(img.config_digest, cd);
    assert_eq!(
        img.layers
            .iter()
            .map(|l| l.diff_id.clone())
            .collect::<Vec<_>>(),
        diff_ids
    );
    assert_eq!(img.layers[0].compression, Compression::None);
    assert_eq!(img.layers[1].compression, Compression::Gzip);
    assert_eq!(
        img.layers[1].media_type,
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    );
    assert_eq!(
        img.layers[2].blob_digest, img.layers[0].blob_digest,
        "symlinked layer"
    );
    let tags: Vec<String> = img.repo_tags.iter().map(|r| r.to_string()).collect();
    assert_eq!(
        tags,
        ["docker.io/library/busybox:latest", "localhost:5000/app:v1"]
    );
    assert!(img.manifest.is_none());
    // Only the referenced blobs stay in the store (config + 2 layers).
    assert_eq!(blobs.list().unwrap().len(), 3);
    let ids = register(&loaded, &blobs, &db);
    assert_eq!(db.resolve("busybox").unwrap().id, ids[0]);
    // The same archive gzip-compressed as a whole loads the same.
    let again = load_tar(&gzip(&tarball)[..], &blobs).unwrap();
    assert_eq!(signature(&again), signature(&loaded));
    round_trip(&loaded, &blobs, &db, &ids[0]);
}

#[test]
fn oci_archive_loads_and_round_trips() {
    let (_t, blobs, db) = setup();
    let (oci, diff_ids, md) = Oci::new();
    let loaded = load_tar(&oci.tar()[..], &blobs).unwrap();
    assert_eq!(loaded.format, ArchiveFormat::OciArchive);
    let img = &loaded.images[0];
    assert_eq!(img.manifest.as_ref().unwrap().0, md);
    assert_eq!(
        img.layers
            .iter()
            .map(|l| l.diff_id.clone())
            .collect::<Vec<_>>(),
        diff_ids
    );
    assert_eq!(
        img.layers.iter().map(|l| l.compression).collect::<Vec<_>>(),
        [Compression::None, Compression::Gzip, Compression::Zstd]
    );
    assert_eq!(
        img.repo_tags,
        vec![Reference::parse("user/app:v2").unwrap()]
    );
    let ids = register(&loaded, &blobs, &db);
    let stored = db.get(&ids[0]).unwrap();
    assert_eq!(stored.manifest_digest.as_ref(), Some(&md));
    assert_eq!(
        stored.repo_digests()[0].to_string(),
        format!("docker.io/user/app@{md}")
    );
    assert_eq!(db.resolve(&format!("user/app@{md}")).unwrap().id, ids[0]);
    round_trip(&loaded, &blobs, &db, &ids[0]);

    // An OCI layout directory loads the same.
    let t = tempfile::tempdir().unwrap();
    for (name, data) in &oci.files {
        let p = t.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }
    let (_t2, b2, _db2) = setup();
    let from_dir = load_dir(t.path(), &b2).unwrap();
    assert_eq!(signature(&from_dir), signature(&loaded));
}

#[test]
fn imported_image_saves_with_a_generated_manifest() {
    let (_t, blobs, db) = setup();
    let rootfs = gzip(&tar_of(&[("hello", b"world")]));
    let opts = ImportOptions {
        changes: vec!["CMD [\"/hello\"]".into(), "ENV A=1".into()],
        message: Some("from test".into()),
        platform: None,
    };
    let imp = import_rootfs_tar(&rootfs[..], &blobs, &opts).unwrap();
    assert_eq!(imp.diff_id, Digest::of(&tar_of(&[("hello", b"world")])));
    assert_eq!(imp.image.layers[0].blob_digest, imp.diff_id);
    let mut new = imp.image.clone();
    new.tags = vec![Reference::parse("imported:1").unwrap()];
    let id = db.add_image(&new).unwrap();
    assert_eq!(id, imp.id);
    let img = db.resolve("imported:1").unwrap();
    let cfg = img.config().unwrap();
    assert_eq!(
        cfg.config().as_ref().unwrap().cmd().as_ref().unwrap(),
        &vec!["/hello".to_string()]
    );
    assert_eq!(
        cfg.history().as_ref().unwrap()[0].comment().as_deref(),
        Some("from test")
    );
    let mut out = Vec::new();
    save_tar(
        &[SaveImage {
            image: &img,
            tags: img.repo_tags.clone(),
        }],
        SaveFormat::DockerArchive,
        &blobs,
        &mut out,
    )
    .unwrap();
    let (_t2, b2, _) = setup();
    let re = load_tar(&out[..], &b2).unwrap();
    assert_eq!(re.images[0].config_digest, id);
    assert_eq!(re.images[0].layers[0].diff_id, imp.diff_id);
    assert!(
        re.images[0].manifest.is_some(),
        "Docker 25+ layout carries an OCI manifest"
    );

    // Not a tar: refused, and the blob is not kept.
    let (_t3, b3, _) = setup();
    let e = import_rootfs_tar(
        &gzip(b"this is not a tar archive, just text.....")[..],
        &b3,
        &ImportOptions::default(),
    )
    .unwrap_err();
    assert!(
        e.to_string().starts_with("import: not a valid tar archive"),
        "{e}"
    );
    assert!(b3.list().unwrap().is_empty());
    let e = import_rootfs_tar(&b""[..], &b3, &ImportOptions::default()).unwrap_err();
    assert!(e.to_string().contains("empty"), "{e}");
    let bad = ImportOptions {
        changes: vec!["RUN x".into()],
        ..Default::default()
    };
    assert!(import_rootfs_tar(&rootfs[..], &b3, &bad)
        .unwrap_err()
        .to_string()
        .contains("unsupported instruction"));
}

/// Each bad archive fails with one clear line, leaves no blob behind, and registers nothing.
fn assert_bad(archive: &[u8], msg: &str) {
    let (_t, blobs, db) = setup();
    let e = load_tar(archive, &blobs).expect_err(msg).to_string();
    assert!(e.contains(msg), "expected {msg:?} in {e:?}");
    assert!(!e.contains('\n'), "{e}");
    assert!(
        blobs.list().unwrap().is_empty(),
        "{msg}: blobs left: {:?}",
        blobs.list().unwrap()
    );
    assert!(db.list().unwrap().is_empty());
}

#[test]
fn bad_archives() {
    let (oci, _, _) = Oci::new();
    let layer0 = format!("blobs/sha256/{}", Digest::of(&layers()[0]).hex());
    let config_name = oci.files[2].0.clone();
    let manifest_name = oci.files[3].0.clone();

    let mut o = Oci {
        files: oci.files.clone(),
    };
    o.remove(&layer0);
    assert_bad(&o.tar(), "archive is missing blob");

    let mut o = Oci {
        files: oci.files.clone(),
    };
    o.set(&layer0, b"tampered".to_vec());
    assert_bad(&o.tar(), "digest mismatch: expected");

    let mut o = Oci {
        files: oci.files.clone(),
    };
    let mut m: serde_json::Value = serde_json::from_slice(&o.files[3].1).unwrap();
    m["layers"][0]["mediaType"] = json!("application/vnd.example.layer.v1.tar+lz4");
    let mb = serde_json::to_vec(&m).unwrap();
    let md = Digest::of(&mb);
    o.remove(&manifest_name);
    o.set(&format!("blobs/sha256/{}", md.hex()), mb.clone());
    o.set(
        "index.json",
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md.to_string(), "size": mb.len()}]})).unwrap(),
    );
    assert_bad(
        &o.tar(),
        "unknown media type \"application/vnd.example.layer.v1.tar+lz4\"",
    );

    let mut o = Oci {
        files: oci.files.clone(),
    };
    o.set("index.json", b"{\"manifests\": [".to_vec());
    assert_bad(&o.tar(), "malformed index.json");

    let mut o = Oci {
        files: oci.files.clone(),
    };
    let mb = b"{\"schemaVersion\": 2, \"layers\": 3}".to_vec();
    let md = Digest::of(&mb);
    o.set(&format!("blobs/sha256/{}", md.hex()), mb.clone());
    o.set(
        "index.json",
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md.to_string(), "size": mb.len()}]})).unwrap(),
    );
    assert_bad(&o.tar(), &format!("malformed manifest {md}"));

    let mut o = Oci {
        files: oci.files.clone(),
    };
    o.remove("oci-layout");
    assert_bad(&o.tar(), "oci-layout is missing");

    let mut o = Oci {
        files: oci.files.clone(),
    };
    o.set(&config_name, b"{\"rootfs\": 1".to_vec());
    // The config's name no longer matches its content.
    assert_bad(&o.tar(), "digest mismatch");

    // Truncated: cut in the middle of a blob, and in the middle of a header.
    let full = oci.tar();
    assert_bad(
        &full[..full.len() / 2 + 100],
        "corrupt or truncated archive",
    );
    assert_bad(&full[..700], "corrupt or truncated archive");
    // Not an archive at all.
    assert_bad(&[0x41u8; 4096], "corrupt or truncated archive");
    assert_bad(&tar_of(&[("hello.txt", b"hi")]), "not an image archive");

    // docker-archive: a Layers entry that is not in the archive, a malformed
    // manifest.json, a layer count that does not match the config.
    let (docker, _, _) = docker_archive();
    let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
    let mut a = tar::Archive::new(&docker[..]);
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        if e.header().entry_type().is_symlink() {
            continue;
        }
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let mut v = Vec::new();
        e.read_to_end(&mut v).unwrap();
        entries.push((name, v));
    }
    type Edit<'a> = &'a dyn Fn(&str, &[u8]) -> Option<Vec<u8>>;
    let rebuild = |f: Edit<'_>| {
        let v: Vec<(String, Vec<u8>)> = entries
            .iter()
            .filter_map(|(n, d)| f(n, d).map(|d| (n.clone(), d)))
            .collect();
        let refs: Vec<(&str, &[u8])> = v.iter().map(|(n, d)| (n.as_str(), d.as_slice())).collect();
        tar_of(&refs)
    };
    assert_bad(
        &rebuild(&|_, d| Some(d.to_vec())),
        "archive is missing cccccccc",
    );
    assert_bad(
        &rebuild(&|n, d| {
            Some(if n == "manifest.json" {
                b"[{\"Config\": 1}]".to_vec()
            } else {
                d.to_vec()
            })
        }),
        "malformed manifest.json",
    );
    assert_bad(
        &rebuild(&|n, d| {
            if n != "manifest.json" {
                return Some(d.to_vec());
            }
            let mut m: serde_json::Value = serde_json::from_slice(d).unwrap();
            m[0]["Layers"].as_array_mut().unwrap().pop();
            Some(serde_json::to_vec(&m).unwrap())
        }),
        "Layers lists 2 files but its config",
    );
    assert_bad(
        &rebuild(&|n, d| {
            if n != "manifest.json" {
                return Some(d.to_vec());
            }
            let mut m: serde_json::Value = serde_json::from_slice(d).unwrap();
            m[0]["RepoTags"] = json!(["Bad:Name:x"]);
            m[0]["Layers"][2] = m[0]["Layers"][0].clone();
            Some(serde_json::to_vec(&m).unwrap())
        }),
        "RepoTags entry",
    );
}

#[test]
fn failed_load_keeps_blobs_that_were_already_there() {
    let (_t, blobs, _db) = setup();
    let (oci, _, _) = Oci::new();
    load_tar(&oci.tar()[..], &blobs).unwrap();
    let before = blobs.list().unwrap();
    let mut o = Oci {
        files: oci.files.clone(),
    };
    o.set("index.json", b"nope".to_vec());
    assert!(load_tar(&o.tar()[..], &blobs).is_err());
    assert_eq!(blobs.list().unwrap(), before);
}

#[test]
fn real_podman_archive_if_available() {
    if !std::process::Command::new("sh")
        .args(["-c", "command -v podman"])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        eprintln!("podman is not installed: skipped");
        return;
    }
    // podman is present: a saved archive of ours must load back through podman's parser
    // without a registry (docker-archive), which needs no image of podman's own.
    let (_t, blobs, db) = setup();
    let (tarball, _, _) = docker_archive();
    let loaded = load_tar(&tarball[..], &blobs).unwrap();
    let ids = register(&loaded, &blobs, &db);
    let img = db.get(&ids[0]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.tar");
    let f = std::fs::File::create(&path).unwrap();
    save_tar(
        &[SaveImage {
            image: &img,
            tags: vec![Reference::parse("berth-test/roundtrip:1").unwrap()],
        }],
        SaveFormat::DockerArchive,
        &blobs,
        f,
    )
    .unwrap();
    let root = dir.path().join("podman-root");
    let runroot = dir.path().join("podman-run");
    let out = std::process::Command::new("podman")
        .arg("--root")
        .arg(&root)
        .arg("--runroot")
        .arg(&runroot)
        .arg("load")
        .arg("-i")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "podman load: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
