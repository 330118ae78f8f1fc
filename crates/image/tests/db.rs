#![allow(clippy::unwrap_used)]

use berth_image::db::{chain_ids, ContainerUse, NewImage, NewLayer};
use berth_image::{Digest, Error, ImageDb, ImageId, Reference};
use std::sync::Arc;

fn r(s: &str) -> Reference {
    Reference::parse(s).unwrap()
}

fn d(s: &str) -> Digest {
    Digest::of(s.as_bytes())
}

/// An image whose layers have diff_ids sha256(name) for each name.
fn image(layers: &[&str], created: &str, tags: &[&str]) -> NewImage {
    let diff_ids: Vec<String> = layers.iter().map(|l| d(l).to_string()).collect();
    let config = serde_json::json!({
        "created": created,
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": layers.iter().map(|l| serde_json::json!({"created_by": format!("ADD {l}")})).chain(
            [serde_json::json!({"created_by": "CMD [\"sh\"]", "empty_layer": true})]).collect::<Vec<_>>(),
    });
    NewImage {
        config_json: serde_json::to_vec(&config).unwrap(),
        manifest: None,
        layers: layers
            .iter()
            .map(|l| NewLayer {
                diff_id: d(l),
                blob_digest: d(&format!("blob-{l}")),
                media_type: "application/vnd.oci.image.layer.v1.tar".into(),
                size: 100,
            })
            .collect(),
        parent: None,
        tags: tags.iter().map(|t| r(t)).collect(),
        digest_refs: Vec::new(),
    }
}

fn unused(_: &ImageId) -> Option<ContainerUse> {
    None
}

#[test]
fn chain_id_rule() {
    let a = d("a");
    let b = d("b");
    let c = chain_ids(&[a.clone(), b.clone()]);
    assert_eq!(c[0], a);
    assert_eq!(c[1], Digest::of(format!("{a} {b}").as_bytes()));
    assert!(chain_ids(&[]).is_empty());
}

#[test]
fn add_tag_resolve_list() {
    let t = tempfile::tempdir().unwrap();
    let db = ImageDb::open(t.path()).unwrap();
    assert!(t.path().join("berth.db").exists());
    let img = image(
        &["base", "app"],
        "2024-01-02T03:04:05Z",
        &["busybox", "user/app:v1"],
    );
    let id = db.add_image(&img).unwrap();
    assert_eq!(id, Digest::of(&img.config_json));
    // Idempotent: adding again only adds tags, layers are not counted twice.
    let mut again = img.clone();
    again.tags = vec![r("localhost:5000/x:y")];
    assert_eq!(db.add_image(&again).unwrap(), id);
    assert!(db.layers().unwrap().iter().all(|l| l.refcount == 1));

    for s in [
        "busybox",
        "busybox:latest",
        "docker.io/library/busybox",
        "user/app:v1",
        "localhost:5000/x:y",
        &id.to_string(),
        id.hex(),
        &id.hex()[..4],
        &id.hex()[..12],
        &format!("sha256:{}", &id.hex()[..6]),
    ] {
        assert_eq!(db.resolve(s).unwrap().id, id, "{s}");
    }
    let got = db.resolve("busybox").unwrap();
    assert_eq!(got.layers.len(), 2);
    assert_eq!(got.size, 200);
    assert_eq!(got.created.as_deref(), Some("2024-01-02T03:04:05Z"));
    assert_eq!(got.layers[1].chain_id, chain_ids(&[d("base"), d("app")])[1]);
    assert_eq!(got.top_chain_id(), Some(&got.layers[1].chain_id));
    assert_eq!(got.config_json, img.config_json);
    assert_eq!(got.repo_tags.len(), 3);

    for bad in ["nothere", "busybox:1", "abc", "sha256:zz", "ffff"] {
        let e = db.resolve(bad).unwrap_err();
        assert_eq!(e.to_string(), format!("No such image: {bad}"), "{bad}");
    }

    let rows = db.list().unwrap();
    let mut names: Vec<(String, String)> = rows
        .iter()
        .map(|r| (r.repository.clone(), r.tag.clone()))
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            ("busybox".into(), "latest".into()),
            ("localhost:5000/x".into(), "y".into()),
            ("user/app".into(), "v1".into())
        ]
    );
    // Moving a tag leaves the old image dangling: it shows as <none>.
    let other = db
        .add_image(&image(&["other"], "2025-01-01T00:00:00Z", &[]))
        .unwrap();
    db.tag(&r("busybox"), &other).unwrap();
    assert_eq!(db.resolve("busybox").unwrap().id, other);
    db.untag(&r("user/app:v1")).unwrap();
    db.untag(&r("localhost:5000/x:y")).unwrap();
    let rows = db.list().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].id, other, "newest first");
    assert_eq!(
        (rows[1].repository.as_str(), rows[1].tag.as_str()),
        ("<none>", "<none>")
    );
    assert!(matches!(
        db.untag(&r("user/app:v1")),
        Err(Error::NoSuchImage(_))
    ));
    let missing = d("no image");
    assert!(matches!(
        db.tag(&r("a"), &missing),
        Err(Error::NoSuchImage(_))
    ));

    // History: newest first, sizes from the layers, the ID on the first line.
    let h = db.history(&id.to_string()).unwrap();
    assert_eq!(h.len(), 3);
    assert_eq!(h[0].id.as_ref(), Some(&id));
    assert!(h[0].empty_layer && h[0].size == 0);
    assert_eq!((h[1].created_by.as_str(), h[1].size), ("ADD app", 100));
    assert_eq!(h[2].id, None);
}

#[test]
fn short_id_ambiguity() {
    let t = tempfile::tempdir().unwrap();
    let db = ImageDb::open(t.path()).unwrap();
    // Add images until two share a first hex digit... and then use 1-digit prefixes
    // through the sha256: form (which is never a reference).
    let mut ids: Vec<ImageId> = Vec::new();
    for i in 0..40 {
        ids.push(
            db.add_image(&image(&[&format!("l{i}")], "2024-01-01T00:00:00Z", &[]))
                .unwrap(),
        );
    }
    let first = &ids[0].hex()[..1];
    let count = ids.iter().filter(|i| i.hex().starts_with(first)).count();
    let p = format!("sha256:{first}");
    if count > 1 {
        let e = db.resolve(&p).unwrap_err();
        assert!(matches!(e, Error::AmbiguousImage { .. }), "{e}");
        assert!(e.to_string().contains("ambiguous"), "{e}");
        assert!(e.to_string().contains(&count.to_string()), "{e}");
    }
    // A 4-hex prefix that is unique resolves; shorter bare hex is not an ID.
    for id in &ids {
        let unique = ids
            .iter()
            .filter(|o| o.hex().starts_with(&id.hex()[..4]))
            .count()
            == 1;
        if unique {
            assert_eq!(db.resolve(&id.hex()[..4]).unwrap().id, *id);
        }
        assert!(db.resolve(&id.hex()[..3]).is_err());
    }
}

#[test]
fn remove_and_shared_layers() {
    let t = tempfile::tempdir().unwrap();
    let db = ImageDb::open(t.path()).unwrap();
    let a = db
        .add_image(&image(
            &["base", "a"],
            "2024-01-01T00:00:00Z",
            &["a:1", "a:2"],
        ))
        .unwrap();
    let b = db
        .add_image(&image(&["base", "b"], "2024-01-01T00:00:00Z", &["b"]))
        .unwrap();
    let base_chain = d("base");
    let refcount = |c: &Digest| {
        db.layers()
            .unwrap()
            .iter()
            .find(|l| &l.chain_id == c)
            .map(|l| l.refcount)
    };
    assert_eq!(refcount(&base_chain), Some(2));
    assert_eq!(
        db.list()
            .unwrap()
            .iter()
            .find(|s| s.id == a)
            .unwrap()
            .shared_size,
        100
    );

    // By tag with another tag left: only untagged.
    let rm = db.remove("a:1", false, &unused).unwrap();
    assert_eq!(rm.untagged, vec![r("a:1")]);
    assert!(rm.deleted.is_empty() && rm.layers_to_remove.is_empty());

    // Last tag, but a container uses it: refused without force, untag-only with force.
    let used_by = |id: &ImageId| {
        (id == &a).then(|| ContainerUse {
            container: "c0ffee".into(),
            running: false,
        })
    };
    let e = db.remove("a:2", false, &used_by).unwrap_err();
    assert!(e.to_string().starts_with("conflict: unable to remove repository reference \"a:2\" (must force) - container c0ffee"), "{e}");
    let e = db.remove(&a.to_string(), false, &used_by).unwrap_err();
    assert!(
        e.to_string()
            .contains("(must be forced) - image is being used by stopped container c0ffee"),
        "{e}"
    );
    let running = |_: &ImageId| {
        Some(ContainerUse {
            container: "c0ffee".into(),
            running: true,
        })
    };
    let e = db.remove(&a.to_string(), true, &running).unwrap_err();
    assert!(e.to_string().contains("cannot be forced"), "{e}");

    // Last tag: untag and delete; only the unshared layer is released.
    let rm = db.remove("a:2", false, &unused).unwrap();
    assert_eq!(rm.deleted, vec![a.clone()]);
    assert_eq!(rm.layers_to_remove.len(), 1);
    assert_eq!(rm.layers_to_remove[0].diff_id, d("a"));
    assert_eq!(
        rm.layers_to_remove[0].parent_chain_id,
        Some(base_chain.clone())
    );
    assert!(rm.blobs_to_remove.contains(&a) && rm.blobs_to_remove.contains(&d("blob-a")));
    assert!(!rm.blobs_to_remove.contains(&d("blob-base")));
    assert_eq!(refcount(&base_chain), Some(1));
    assert!(matches!(
        db.resolve(&a.to_string()),
        Err(Error::NoSuchImage(_))
    ));

    // Two repositories: by ID needs force.
    db.tag(&r("other/b:x"), &b).unwrap();
    let e = db.remove(&b.hex()[..12], false, &unused).unwrap_err();
    assert!(
        e.to_string()
            .contains("referenced in multiple repositories"),
        "{e}"
    );
    let rm = db.remove(&b.hex()[..12], true, &unused).unwrap();
    assert_eq!(rm.untagged.len(), 2);
    assert_eq!(rm.deleted, vec![b.clone()]);
    assert_eq!(rm.layers_to_remove.len(), 2, "both layers, top first");
    assert_eq!(rm.layers_to_remove[0].diff_id, d("b"));
    assert_eq!(rm.layers_to_remove[1].chain_id, base_chain);
    assert!(db.layers().unwrap().is_empty());
    assert!(db.referenced_blobs().unwrap().is_empty());
    assert!(matches!(
        db.remove("nothing", false, &unused),
        Err(Error::NoSuchImage(_))
    ));
}

#[test]
fn children_and_prune() {
    let t = tempfile::tempdir().unwrap();
    let db = ImageDb::open(t.path()).unwrap();
    let base = db
        .add_image(&image(&["base"], "2024-01-01T00:00:00Z", &[]))
        .unwrap();
    let mut child = image(&["base", "c"], "2024-01-02T00:00:00Z", &["child"]);
    child.parent = Some(base.clone());
    let child = db.add_image(&child).unwrap();
    let dangling = db
        .add_image(&image(&["x"], "2024-01-03T00:00:00Z", &[]))
        .unwrap();
    let used = db
        .add_image(&image(&["y"], "2024-01-03T00:00:00Z", &[]))
        .unwrap();
    let in_use = |id: &ImageId| {
        (id == &used).then(|| ContainerUse {
            container: "c1".into(),
            running: true,
        })
    };

    let e = db.remove(&base.to_string(), false, &unused).unwrap_err();
    assert!(e.to_string().contains("dependent child images"), "{e}");

    // Dangling prune: the untagged leaf only (base has a child, used is in use).
    let rm = db.prune(false, &in_use).unwrap();
    assert_eq!(rm.deleted, vec![dangling.clone()]);
    assert_eq!(rm.layers_to_remove.len(), 1);
    // Prune all: child first, which frees base.
    let rm = db.prune(true, &in_use).unwrap();
    assert_eq!(rm.deleted.len(), 2);
    assert!(rm.deleted.contains(&child) && rm.deleted.contains(&base));
    assert_eq!(rm.untagged, vec![r("child")]);
    assert_eq!(rm.layers_to_remove.len(), 2);
    assert_eq!(db.list().unwrap().len(), 1);
}

#[test]
fn bad_new_images_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let db = ImageDb::open(t.path()).unwrap();
    let mut img = image(&["a", "b"], "2024-01-01T00:00:00Z", &[]);
    img.layers.pop();
    let e = db.add_image(&img).unwrap_err();
    assert!(
        e.to_string()
            .contains("rootfs.diff_ids lists 2 layers but 1 were given"),
        "{e}"
    );
    let mut img = image(&["a"], "2024-01-01T00:00:00Z", &[]);
    img.layers[0].diff_id = d("zzz");
    assert!(db
        .add_image(&img)
        .unwrap_err()
        .to_string()
        .contains("diff_id"));
    let mut img = image(&["a"], "2024-01-01T00:00:00Z", &[]);
    img.config_json = b"{not json".to_vec();
    assert!(db
        .add_image(&img)
        .unwrap_err()
        .to_string()
        .contains("malformed JSON"));
    assert!(db.list().unwrap().is_empty());
    assert!(db.layers().unwrap().is_empty());
}

#[test]
fn concurrent_writers_wait_instead_of_failing() {
    let t = tempfile::tempdir().unwrap();
    let root = Arc::new(t.path().to_owned());
    let threads: Vec<_> = (0..4)
        .map(|n| {
            let root = root.clone();
            std::thread::spawn(move || {
                // Each thread opens its own connection, as separate berth processes do.
                let db = ImageDb::open(&root).unwrap();
                for i in 0..25 {
                    let img = image(
                        &["shared", &format!("t{n}-{i}")],
                        "2024-01-01T00:00:00Z",
                        &[&format!("t{n}:{i}")],
                    );
                    db.add_image(&img).unwrap();
                    if i % 5 == 0 {
                        db.list().unwrap();
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let db = ImageDb::open(&root).unwrap();
    assert_eq!(db.list().unwrap().len(), 100);
    let shared = db
        .layers()
        .unwrap()
        .into_iter()
        .find(|l| l.chain_id == d("shared"))
        .unwrap();
    assert_eq!(shared.refcount, 100);
}

#[test]
fn migrations_are_recorded_per_component() {
    let t = tempfile::tempdir().unwrap();
    drop(ImageDb::open(t.path()).unwrap());
    let mut conn = berth_db::open_connection(t.path()).unwrap();
    berth_db::migrate(
        &mut conn,
        "engine",
        &["CREATE TABLE containers (id TEXT PRIMARY KEY)"],
    )
    .unwrap();
    // Running again is a no-op; a second step applies only itself.
    berth_db::migrate(
        &mut conn,
        "engine",
        &[
            "CREATE TABLE containers (id TEXT PRIMARY KEY)",
            "ALTER TABLE containers ADD COLUMN name TEXT",
        ],
    )
    .unwrap();
    let v: Vec<(String, i64)> = conn
        .prepare("SELECT component, version FROM schema_version ORDER BY component")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(v, vec![("engine".into(), 2), ("image".into(), 2)]);
    let journal: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(journal, "wal");
    // A database newer than this code is refused.
    assert!(berth_db::migrate(&mut conn, "engine", &["SELECT 1"]).is_err());
    drop(conn);
    ImageDb::open(t.path()).unwrap();
}

/// A database at image schema version 1 (no `digest_refs`) is migrated on open, keeps its
/// images, and then records digest references: RepoDigests, `images` rows, resolve, rmi.
#[test]
fn digest_references_after_migrating_from_version_1() {
    let t = tempfile::tempdir().unwrap();
    let db = ImageDb::open(t.path()).unwrap();
    let id = db
        .add_image(&image(&["a"], "2024-01-01T00:00:00Z", &["keep:1"]))
        .unwrap();
    drop(db);
    let conn = berth_db::open_connection(t.path()).unwrap();
    conn.execute_batch(
        "DROP TABLE digest_refs; UPDATE schema_version SET version = 1 WHERE component = 'image'",
    )
    .unwrap();
    drop(conn);

    let db = ImageDb::open(t.path()).unwrap();
    assert_eq!(db.resolve("keep:1").unwrap().id, id);
    let md = d("manifest");
    let by_digest = r(&format!("reg.example:5000/bb@{md}"));
    let mut new = image(&["a"], "2024-01-01T00:00:00Z", &[]);
    new.manifest = Some((md.clone(), b"{}".to_vec()));
    new.digest_refs = vec![by_digest.clone()];
    assert_eq!(db.add_image(&new).unwrap(), id);
    let img = db.resolve(&by_digest.to_string()).unwrap();
    assert_eq!(img.digest_refs, vec![by_digest.clone()]);
    assert_eq!(
        img.repo_digests(),
        vec![r(&format!("keep@{md}")), by_digest.clone()]
    );
    let rows: Vec<(String, String, Option<Digest>)> = db
        .list()
        .unwrap()
        .into_iter()
        .map(|s| (s.repository, s.tag, s.digest))
        .collect();
    assert_eq!(
        rows,
        vec![
            ("keep".into(), "1".into(), Some(md.clone())),
            (
                "reg.example:5000/bb".into(),
                "<none>".into(),
                Some(md.clone())
            ),
        ]
    );
    // A tag with a digest, or a digest reference with a tag, is refused.
    let mut bad = image(&["a"], "2024-01-01T00:00:00Z", &[]);
    bad.digest_refs = vec![r("bb:1")];
    assert!(db.add_image(&bad).is_err());
    // Another repository with that digest is not that reference.
    assert!(matches!(
        db.resolve(&format!("other@{md}")),
        Err(Error::NoSuchImage(_))
    ));
    // rmi of the digest reference untags it alone; then of the tag deletes the image.
    let out = db.remove(&by_digest.to_string(), false, &unused).unwrap();
    assert_eq!(out.untagged, vec![by_digest.clone()]);
    assert!(out.deleted.is_empty());
    assert!(matches!(
        db.remove(&by_digest.to_string(), false, &unused),
        Err(Error::NoSuchImage(_))
    ));
    let out = db.remove("keep:1", false, &unused).unwrap();
    assert_eq!(out.deleted, vec![id]);
}
