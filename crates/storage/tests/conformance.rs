//! The conformance suite: one set of tests over the store and its
//! `LayerDriver`, run against each driver (as containerd runs its Snapshotter
//! suite per backend): as root, on the real kernel, each test with its own
//! store in a tempdir, leaving no mount behind. Nothing here asks which
//! driver it is; what differs is read from the driver's own answers.

mod common;

use berth_storage::{Change, ChangeKind, DriverKind, Error};
use common::*;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use tar::EntryType;

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod overlay {
            $(#[test] fn $name() { super::$name(berth_storage::DriverKind::Overlay) })*
        }
        mod vfs {
            $(#[test] fn $name() { super::$name(berth_storage::DriverKind::Vfs) })*
        }
    };
}

conformance!(
    union_with_whiteouts_and_opaque_dirs,
    metadata_is_preserved,
    many_layers_mount,
    hostile_tars_are_refused,
    concurrent_apply_of_one_layer,
    changes_report_a_c_d,
    write_diff_is_reproducible_and_reapplies,
    deleting_a_lower_file_writes_a_whiteout,
    init_files_are_in_the_rootfs_only,
    export_is_the_merged_tree,
    mount_and_unmount_are_idempotent,
    remove_container_leaves_nothing,
    bad_input_gives_clear_errors,
    reapplying_an_existing_layer_keeps_it,
    diff_round_trips_long_names_big_ids_and_hard_links,
    sparse_files_stay_sparse,
    writes_go_to_the_container_layer_only,
    sizes_count_file_data,
    staging_follows_the_driver,
    graph_and_init_paths_agree_with_the_rootfs,
    pooled_skeletons_make_containers_as_new_ones,
);

fn base_tar() -> Vec<u8> {
    TarB::new()
        .dir("etc", 0o755)
        .file("etc/a", "a1")
        .file("etc/b", "b1")
        .dir("d", 0o755)
        .file("d/x", "x")
        .file("d/y", "y")
        .dir("keep", 0o755)
        .file("keep/k", "k")
        .build()
}

/// A two-layer image: base, then a layer deleting etc/b, making d opaque, adding files.
fn image(s: &Store) -> berth_digest::Digest {
    let l1 = id("base");
    let l2 = id("top");
    s.store
        .apply_layer(&l1, None, &base_tar()[..])
        .expect("base");
    let t2 = TarB::new()
        .dir("etc", 0o755)
        .whiteout("etc/b")
        .file("etc/c", "c2")
        .dir("d", 0o755)
        .whiteout("d/y")
        .opaque("d")
        .file("d/z", "z")
        .build();
    s.store.apply_layer(&l2, Some(&l1), &t2[..]).expect("top");
    l2
}

fn union_with_whiteouts_and_opaque_dirs(driver: DriverKind) {
    let s = Store::new(driver);
    let top = image(&s);
    assert_eq!(
        s.store.layer_chain(&top).expect("chain"),
        vec![id("top"), id("base")]
    );
    // No .wh. entry is ever stored in a layer.
    for l in [id("base"), id("top")] {
        for p in all_paths(&s.store.layer_diff(&l)) {
            assert!(!p.contains(".wh."), "{p} in layer diff");
        }
    }
    s.store
        .create_container("c1", Some(&top), &init())
        .expect("create");
    let root = s.store.mount_container("c1").expect("mount");
    let names = all_paths(&root);
    for want in ["etc/a", "etc/c", "d/z", "keep/k"] {
        assert!(
            names.contains(&want.to_string()),
            "{want} missing from {names:?}"
        );
    }
    for gone in ["etc/b", "d/x", "d/y"] {
        assert!(
            !names.contains(&gone.to_string()),
            "{gone} still in {names:?}"
        );
    }
    assert_eq!(fs::read_to_string(root.join("etc/a")).expect("read"), "a1");
    s.store.remove_container("c1").expect("rm");
    assert_nothing_mounted(s.dir.path());
}

fn metadata_is_preserved(driver: DriverKind) {
    let s = Store::new(driver);
    let t = TarB::new()
        .dir("bin", 0o755)
        .file_with("bin/su", b"suid", 0o4755, 1234, 5678, 1_000_000)
        .dir("tmp", 0o1777)
        .pax(&[
            ("SCHILY.xattr.user.note", b"hello"),
            (
                "SCHILY.xattr.security.capability",
                b"\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
            ),
        ])
        .file_with("bin/ping", b"ping", 0o755, 0, 0, 1_500_000_000)
        .hardlink("bin/su2", "bin/su")
        .symlink("bin/sh", "busybox")
        .dir("dev", 0o755)
        .device("dev/null", EntryType::Char, 1, 3)
        .device("dev/sda", EntryType::Block, 8, 0)
        .device("dev/fifo", EntryType::Fifo, 0, 0)
        .dir_mtime("old", 0o700, 42)
        .file_with("old/f", b"f", 0o600, 7, 7, 1_000)
        .build();
    let l = id("meta");
    s.store.apply_layer(&l, None, &t[..]).expect("apply");
    s.store
        .create_container("c", Some(&l), &init())
        .expect("create");
    let root = s.store.mount_container("c").expect("mount");
    let su = fs::symlink_metadata(root.join("bin/su")).expect("su");
    assert_eq!(
        (su.mode() & 0o7777, su.uid(), su.gid(), su.mtime()),
        (0o4755, 1234, 5678, 1_000_000)
    );
    let tmp = fs::symlink_metadata(root.join("tmp")).expect("tmp");
    assert_eq!(tmp.mode() & 0o7777, 0o1777);
    assert_eq!(
        fs::symlink_metadata(root.join("old")).expect("old").mtime(),
        42
    );
    assert_eq!(
        xattr::get(root.join("bin/ping"), "user.note").expect("xattr"),
        Some(b"hello".to_vec())
    );
    assert!(xattr::get(root.join("bin/ping"), "security.capability")
        .expect("cap")
        .is_some());
    let su2 = fs::symlink_metadata(root.join("bin/su2")).expect("su2");
    assert_eq!(su2.ino(), su.ino(), "hard link");
    assert_eq!(
        fs::read_link(root.join("bin/sh")).expect("link").to_str(),
        Some("busybox")
    );
    let null = fs::symlink_metadata(root.join("dev/null")).expect("null");
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), nix::sys::stat::makedev(1, 3));
    assert_eq!(null.mode() & 0o777, 0o620);
    assert!(fs::symlink_metadata(root.join("dev/sda"))
        .expect("sda")
        .file_type()
        .is_block_device());
    assert!(fs::symlink_metadata(root.join("dev/fifo"))
        .expect("fifo")
        .file_type()
        .is_fifo());
    s.store.remove_container("c").expect("rm");
    assert_nothing_mounted(s.dir.path());
}

fn many_layers_mount(driver: DriverKind) {
    let s = Store::new(driver);
    let mut parent = None;
    for i in 0..128 {
        let l = id(&format!("layer{i}"));
        let t = TarB::new()
            .dir("files", 0o755)
            .file(&format!("files/f{i}"), &i.to_string())
            .build();
        s.store
            .apply_layer(&l, parent.as_ref(), &t[..])
            .expect("apply");
        parent = Some(l);
    }
    let top = parent.expect("top");
    assert_eq!(s.store.layer_chain(&top).expect("chain").len(), 128);
    s.store
        .create_container("c128", Some(&top), &init())
        .expect("create");
    let root = s.store.mount_container("c128").expect("mount 128 layers");
    for i in [0, 63, 127] {
        assert_eq!(
            fs::read_to_string(root.join(format!("files/f{i}"))).expect("read"),
            i.to_string()
        );
    }
    assert_eq!(fs::read_dir(root.join("files")).expect("dir").count(), 128);
    s.store.remove_container("c128").expect("rm");
    assert_nothing_mounted(s.dir.path());
}

fn assert_store_clean(s: &Store) {
    let root = s.store.root();
    let layers: Vec<_> = fs::read_dir(root.join("layers")).expect("layers").collect();
    assert!(layers.is_empty(), "leftovers in layers/: {layers:?}");
    let links: Vec<_> = fs::read_dir(root.join("l")).expect("l").collect();
    assert!(links.is_empty(), "leftovers in l/: {links:?}");
}

fn hostile_tars_are_refused(driver: DriverKind) {
    let s = Store::new(driver);
    let outside = s.dir.path().join("outside");
    fs::create_dir(&outside).expect("outside");
    fs::write(outside.join("secret"), "secret").expect("secret");
    let out = outside.to_str().expect("utf8").to_owned();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "dotdot",
            TarB::new().file("ok", "1").raw_file("../evil", "x").build(),
            "../evil",
        ),
        (
            "nested dotdot",
            TarB::new().raw_file("a/../../evil", "x").build(),
            "a/../../evil",
        ),
        (
            "pax dotdot",
            TarB::new()
                .pax(&[("path", b"../paxevil")])
                .file("innocent", "x")
                .build(),
            "../paxevil",
        ),
        (
            "absolute",
            TarB::new().raw_file("/tmp/evil", "x").build(),
            "/tmp/evil",
        ),
        (
            "through symlink",
            TarB::new()
                .symlink("a", &out)
                .file("a/planted", "x")
                .build(),
            "a/planted",
        ),
        (
            "through relative symlink",
            TarB::new()
                .dir("d", 0o755)
                .symlink("d/up", "../..")
                .file("d/up/planted", "x")
                .build(),
            "d/up/planted",
        ),
        (
            "hardlink dotdot",
            TarB::new().hardlink("h", "../../etc/shadow").build(),
            "h",
        ),
        (
            "hardlink absolute",
            TarB::new().hardlink("h", &format!("{out}/secret")).build(),
            "h",
        ),
        (
            "hardlink via symlink",
            TarB::new()
                .symlink("s", &out)
                .hardlink("h", "s/secret")
                .build(),
            "h",
        ),
        (
            "whiteout through symlink",
            TarB::new().symlink("s", &out).whiteout("s/secret").build(),
            "s/.wh.secret",
        ),
        (
            "opaque through symlink",
            TarB::new().symlink("s", &out).opaque("s").build(),
            "s/.wh..wh..opq",
        ),
    ];
    for (what, tar, entry) in cases {
        let err = s
            .store
            .apply_layer(&id(what), None, &tar[..])
            .expect_err(what);
        let msg = err.to_string();
        assert!(matches!(err, Error::UnsafeEntry { .. }), "{what}: {msg}");
        assert!(
            msg.contains(&format!("{entry:?}")),
            "{what}: error does not name {entry}: {msg}"
        );
        assert!(!msg.contains('\n'), "one line: {msg}");
        assert!(!s.store.has_layer(&id(what)), "{what}");
        assert_store_clean(&s);
        let names: Vec<_> = fs::read_dir(&outside)
            .expect("outside")
            .map(|e| e.expect("e").file_name())
            .collect();
        assert_eq!(
            names,
            vec![std::ffi::OsString::from("secret")],
            "{what} wrote outside"
        );
        assert_eq!(
            fs::read_to_string(outside.join("secret")).expect("secret"),
            "secret"
        );
    }
    assert!(!Path::new("/tmp/evil").exists());
    // A truncated tar is an error too, and leaves nothing.
    let mut t = TarB::new().file("big", &"x".repeat(5000)).build();
    t.truncate(1024);
    let err = s
        .store
        .apply_layer(&id("truncated"), None, &t[..])
        .expect_err("truncated");
    assert!(
        err.to_string().contains("big") || err.to_string().contains("tar"),
        "{err}"
    );
    assert_store_clean(&s);
}

fn concurrent_apply_of_one_layer(driver: DriverKind) {
    let s = Store::new(driver);
    let mut b = TarB::new().dir("data", 0o755);
    for i in 0..200 {
        b = b.file(&format!("data/f{i}"), &"payload".repeat(100));
    }
    let t = b.build();
    let l = id("shared");
    let results: Vec<_> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..2)
            .map(|_| sc.spawn(|| s.store.apply_layer(&l, None, &t[..])))
            .collect();
        hs.into_iter().map(|h| h.join().expect("thread")).collect()
    });
    let want = berth_digest::Digest::of(&t);
    for r in results {
        assert_eq!(r.expect("apply").diff_id, want);
    }
    let layers: Vec<_> = fs::read_dir(s.store.root().join("layers"))
        .expect("layers")
        .map(|e| e.expect("e").file_name())
        .collect();
    assert_eq!(layers, vec![std::ffi::OsString::from(l.hex())]);
    assert_eq!(
        fs::read_dir(s.store.root().join("l")).expect("l").count(),
        1
    );
    assert_eq!(
        fs::read_dir(s.store.layer_diff(&l).join("data"))
            .expect("data")
            .count(),
        200
    );
}

fn changes_report_a_c_d(driver: DriverKind) {
    let s = Store::new(driver);
    let top = image(&s);
    s.store
        .create_container("c", Some(&top), &init())
        .expect("create");
    assert_eq!(s.store.changes("c").expect("changes"), vec![]);
    let root = s.store.mount_container("c").expect("mount");
    fs::write(root.join("etc/a"), "changed").expect("write");
    fs::write(root.join("etc/new"), "new").expect("add");
    fs::remove_file(root.join("keep/k")).expect("rm");
    fs::create_dir_all(root.join("newdir/sub")).expect("mkdir");
    fs::write(root.join("newdir/sub/f"), "f").expect("f");
    let got: Vec<String> = s
        .store
        .changes("c")
        .expect("changes")
        .iter()
        .map(|c| format!("{} {}", c.kind.letter(), c.path))
        .collect();
    assert_eq!(
        got,
        vec![
            "C /etc",
            "C /etc/a",
            "A /etc/new",
            "C /keep",
            "D /keep/k",
            "A /newdir",
            "A /newdir/sub",
            "A /newdir/sub/f"
        ]
    );
    assert!(s.store.container_size("c").expect("size") >= 10);
    s.store.remove_container("c").expect("rm");
    assert_nothing_mounted(s.dir.path());
}

/// Makes the same changes in container `name` with fixed mtimes.
fn make_changes(s: &Store, name: &str) {
    let root = s.store.mount_container(name).expect("mount");
    fs::write(root.join("etc/a"), "changed").expect("write");
    fs::set_permissions(root.join("etc/c"), fs::Permissions::from_mode(0o600)).expect("chmod");
    fs::remove_file(root.join("etc/a2")).ok();
    fs::remove_dir_all(root.join("keep")).expect("rm keep");
    fs::create_dir(root.join("keep")).expect("mkdir keep");
    fs::write(root.join("keep/fresh"), "fresh").expect("fresh");
    fs::remove_file(root.join("d/z")).expect("rm z");
    fs::create_dir_all(root.join("n/m")).expect("n/m");
    fs::write(root.join("n/m/deep"), "deep").expect("deep");
    std::os::unix::fs::symlink("../etc/a", root.join("n/link")).expect("symlink");
    std::os::unix::fs::chown(root.join("n/m/deep"), Some(1000), Some(1000)).expect("chown");
    xattr::set(root.join("n/m/deep"), "user.k", b"v").expect("xattr");
    fs::write(root.join("etc/hosts"), "edited by the container").expect("hosts");
    let t = nix::sys::time::TimeSpec::new(1_700_000_000, 0);
    for p in [
        "etc/a",
        "etc/c",
        "keep/fresh",
        "n/m/deep",
        "n/link",
        "keep",
        "n/m",
        "n",
        "etc",
        "d",
        "",
    ] {
        nix::sys::stat::utimensat(
            None,
            &root.join(p),
            &t,
            &t,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )
        .expect("utimes");
    }
}

fn write_diff_is_reproducible_and_reapplies(driver: DriverKind) {
    let s = Store::new(driver);
    let top = image(&s);
    let mut digests = Vec::new();
    let mut tars = Vec::new();
    for name in ["one", "two"] {
        s.store
            .create_container(name, Some(&top), &init())
            .expect("create");
        make_changes(&s, name);
        let mut out = Vec::new();
        let d = s.store.write_diff(name, &mut out).expect("diff");
        assert_eq!(d.diff_id, berth_digest::Digest::of(&out));
        assert_eq!(d.tar_size, out.len() as u64);
        let mut again = Vec::new();
        assert_eq!(
            s.store.write_diff(name, &mut again).expect("diff").diff_id,
            d.diff_id
        );
        digests.push(d.diff_id);
        tars.push(out);
    }
    assert_eq!(digests[0], digests[1], "same change, same digest");
    let names = tar_names(&tars[0]);
    assert!(!names.iter().any(|n| n.contains("hosts")), "{names:?}");
    // uname/gname empty, no atime/ctime: plain ustar headers.
    let mut a = tar::Archive::new(&tars[0][..]);
    for e in a.entries().expect("entries") {
        let e = e.expect("entry");
        assert_eq!(e.header().username_bytes().map(|b| b.len()), Some(0));
    }
    // Committing the diff as a layer and mounting it gives the container's tree.
    let committed = id("committed");
    s.store
        .apply_layer(&committed, Some(&top), &tars[0][..])
        .expect("reapply");
    eprintln!("DBG names {:?}", tar_names(&tars[0]));
    let kd = s.store.layer_diff(&committed).join("keep");
    eprintln!(
        "DBG xattrs {:?} {:?}",
        xattr::list(&kd).map(|l| l.collect::<Vec<_>>()),
        all_paths(&s.store.layer_diff(&committed))
    );
    s.store
        .create_container("from-commit", Some(&committed), &init())
        .expect("create");
    let mut want = snapshot(&s.store.mount_container("one").expect("mount"));
    let mut got = snapshot(&s.store.mount_container("from-commit").expect("mount"));
    // The init files are written per container (their mtimes differ).
    for m in [&mut want, &mut got] {
        for f in ["etc/hosts", "etc/hostname", "etc/resolv.conf"] {
            m.remove(f);
        }
    }
    assert_eq!(got, want);
    assert_eq!(s.store.changes("from-commit").expect("changes"), vec![]);
    for n in ["one", "two", "from-commit"] {
        s.store.remove_container(n).expect("rm");
    }
    assert_nothing_mounted(s.dir.path());
}

fn deleting_a_lower_file_writes_a_whiteout(driver: DriverKind) {
    let s = Store::new(driver);
    let top = image(&s);
    s.store
        .create_container("c", Some(&top), &init())
        .expect("create");
    let root = s.store.mount_container("c").expect("mount");
    fs::remove_file(root.join("etc/a")).expect("rm");
    assert!(s.store.changes("c").expect("changes").contains(&Change {
        kind: ChangeKind::Deleted,
        path: "/etc/a".into()
    }));
    let mut out = Vec::new();
    s.store.write_diff("c", &mut out).expect("diff");
    assert_eq!(tar_names(&out), vec!["etc/", "etc/.wh.a"]);
    s.store.remove_container("c").expect("rm");
    assert_nothing_mounted(s.dir.path());
}

fn init_files_are_in_the_rootfs_only(driver: DriverKind) {
    let s = Store::new(driver);
    check_init_files(&s);
}

/// Containers made from the pool's skeletons (berth_storage::fill_pool, as
/// the detached deleter leaves them) are as new ones: the same init files,
/// the image's /etc metadata, nothing in their diff. The vfs store has no
/// pool.
fn pooled_skeletons_make_containers_as_new_ones(driver: DriverKind) {
    let s = Store::new(driver);
    let root = s.store.root().to_path_buf();
    // Nobody asked for a pool yet: none is made.
    berth_storage::fill_pool(&root).expect("fill the pool");
    assert!(!root.join("pool").exists());
    // A container's creation asks for one.
    s.store
        .create_container("asks", None, &init())
        .expect("create");
    s.store.remove_container("asks").expect("rm");
    berth_storage::fill_pool(&root).expect("fill the pool");
    let pooled = || fs::read_dir(root.join("pool")).map_or(0, |d| d.count());
    let stacked = s.store.driver().stacks_layers();
    assert_eq!(pooled(), if stacked { berth_storage::POOL_SIZE } else { 0 });
    // Both containers of check_init_files take one (POOL_SIZE is 2).
    check_init_files(&s);
    assert_eq!(pooled(), 0);
    // A filler killed halfway leaves its staging area, which is a leftover.
    if stacked {
        let dead = root
            .join("staging")
            .join(format!("{}-4194305-1-x", berth_storage::STAGE_SKELETON));
        fs::create_dir(&dead).expect("dead skeleton");
        let left = s.store.leftovers().expect("leftovers");
        assert!(left.iter().any(|l| l.path == dead), "{left:?}");
        s.store.remove_leftovers(&left).expect("remove");
        assert!(!dead.exists());
    }
}

fn check_init_files(s: &Store) {
    // An image without /etc and one with its own /etc/hosts.
    let bare = id("bare");
    s.store
        .apply_layer(&bare, None, &TarB::new().file("f", "f").build()[..])
        .expect("bare");
    let with = id("with-hosts");
    s.store
        .apply_layer(
            &with,
            None,
            &TarB::new()
                .dir("etc", 0o750)
                .file("etc/hosts", "image hosts")
                .build()[..],
        )
        .expect("with");
    for (name, top) in [("bare", &bare), ("with", &with)] {
        s.store
            .create_container(name, Some(top), &init())
            .expect("create");
        let root = s.store.mount_container(name).expect("mount");
        assert_eq!(
            fs::read_to_string(root.join("etc/hostname")).expect("hostname"),
            "box\n"
        );
        assert_eq!(
            fs::read_to_string(root.join("etc/hosts")).expect("hosts"),
            init().hosts
        );
        assert_eq!(
            fs::read_to_string(root.join("etc/resolv.conf")).expect("resolv"),
            init().resolv_conf
        );
        assert_eq!(s.store.changes(name).expect("changes"), vec![], "{name}");
        fs::write(root.join("etc/resolv.conf"), "nameserver 1.1.1.1\n").expect("edit");
        assert_eq!(
            s.store.changes(name).expect("changes"),
            vec![],
            "{name} after editing"
        );
        let mut out = Vec::new();
        s.store.write_diff(name, &mut out).expect("diff");
        assert!(tar_names(&out).is_empty(), "{name}: {:?}", tar_names(&out));
    }
    let etc =
        fs::symlink_metadata(s.store.mount_container("with").expect("m").join("etc")).expect("etc");
    assert_eq!(etc.mode() & 0o777, 0o750, "the image's /etc keeps its mode");
    // The layer itself is untouched.
    assert_eq!(
        fs::read_to_string(s.store.layer_diff(&with).join("etc/hosts")).expect("layer"),
        "image hosts"
    );
    for n in ["bare", "with"] {
        s.store.remove_container(n).expect("rm");
    }
    assert_nothing_mounted(s.dir.path());
}

fn export_is_the_merged_tree(driver: DriverKind) {
    let s = Store::new(driver);
    let top = image(&s);
    s.store
        .create_container("c", Some(&top), &init())
        .expect("create");
    let root = s.store.mount_container("c").expect("mount");
    fs::write(root.join("added"), "added").expect("add");
    let mut want: Vec<String> = all_paths(&root);
    want.sort();
    s.store.unmount_container("c").expect("unmount");
    let mut out = Vec::new();
    s.store.export("c", &mut out).expect("export");
    assert_nothing_mounted(s.dir.path());
    let mut got: Vec<String> = tar_names(&out)
        .into_iter()
        .map(|n| n.trim_end_matches('/').to_owned())
        .collect();
    got.sort();
    assert_eq!(got, want);
    for p in ["added", "etc/hosts", "etc/a", "d/z"] {
        assert!(got.contains(&p.to_string()), "{p}");
    }
    assert!(!got.contains(&"etc/b".to_string()));
    // The exported tar unpacks as a layer with the same tree.
    let flat = id("flat");
    s.store
        .apply_layer(&flat, None, &out[..])
        .expect("apply export");
    assert_eq!(all_paths(&s.store.layer_diff(&flat)), want);
    s.store.remove_container("c").expect("rm");
    assert_nothing_mounted(s.dir.path());
}

fn mount_and_unmount_are_idempotent(driver: DriverKind) {
    let s = Store::new(driver);
    let top = image(&s);
    s.store
        .create_container("c", Some(&top), &init())
        .expect("create");
    let a = s.store.mount_container("c").expect("mount");
    let b = s.store.mount_container("c").expect("mount again");
    assert_eq!(a, b);
    // A driver that mounts mounts once; one that does not leaves no mount.
    let info = fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let mounts = info
        .lines()
        .filter(|l| l.contains(a.to_str().expect("utf8")))
        .count();
    let want = usize::from(s.store.container_mounted("c"));
    assert_eq!(mounts, want, "mounted once (or never)");
    s.store.unmount_container("c").expect("unmount");
    s.store.unmount_container("c").expect("unmount again");
    assert_nothing_mounted(s.dir.path());
    // Empty image: only the init layer.
    s.store
        .create_container("empty", None, &init())
        .expect("create empty");
    let r = s.store.mount_container("empty").expect("mount empty");
    assert_eq!(
        all_paths(&r),
        vec!["etc", "etc/hostname", "etc/hosts", "etc/resolv.conf"]
    );
    s.store.remove_container("empty").expect("rm");
    s.store.remove_container("c").expect("rm");
    assert_nothing_mounted(s.dir.path());
}

fn remove_container_leaves_nothing(driver: DriverKind) {
    let s = Store::new(driver);
    let top = image(&s);
    s.store
        .create_container("c", Some(&top), &init())
        .expect("create");
    let root = s.store.mount_container("c").expect("mount");
    fs::write(root.join("junk"), "junk").expect("junk");
    s.store.remove_container("c").expect("rm while mounted");
    assert_nothing_mounted(s.dir.path());
    assert_eq!(
        fs::read_dir(s.store.root().join("containers"))
            .expect("containers")
            .count(),
        0
    );
    assert_eq!(s.store.containers().expect("list"), Vec::<String>::new());
    // Layers removed too: nothing left but the empty directories.
    for l in s.store.layers().expect("layers") {
        s.store.remove_layer(&l).expect("remove layer");
    }
    assert_store_clean(&s);
}

fn bad_input_gives_clear_errors(driver: DriverKind) {
    let s = Store::new(driver);
    let msg = |e: Error| {
        let m = e.to_string();
        assert!(!m.contains('\n'), "one line: {m}");
        m
    };
    assert!(msg("zfs".parse::<DriverKind>().expect_err("zfs")).contains("\"zfs\""));
    assert_eq!(
        "overlay2".parse::<DriverKind>().expect("overlay2"),
        DriverKind::Overlay
    );
    let e = s
        .store
        .apply_layer(&id("child"), Some(&id("nope")), &TarB::new().build()[..])
        .expect_err("parent");
    assert!(msg(e).contains(&id("nope").to_string()));
    assert_store_clean(&s);
    let e = s
        .store
        .create_container("c", Some(&id("nope")), &init())
        .expect_err("image");
    assert!(msg(e).contains(&id("nope").to_string()));
    assert_eq!(
        fs::read_dir(s.store.root().join("containers"))
            .expect("c")
            .count(),
        0
    );
    assert!(msg(s.store.remove_container("ghost").expect_err("ghost")).contains("\"ghost\""));
    assert!(msg(s.store.mount_container("ghost").expect_err("ghost")).contains("\"ghost\""));
    assert!(msg(s.store.changes("ghost").expect_err("ghost")).contains("\"ghost\""));
    assert!(msg(s.store.remove_layer(&id("nope")).expect_err("layer"))
        .contains(&id("nope").to_string()));
    for bad in ["", "../x", "a/b", "a:b", ".hidden", "a,b"] {
        assert!(
            matches!(
                s.store.create_container(bad, None, &init()),
                Err(Error::InvalidName(_))
            ),
            "{bad:?}"
        );
    }
    s.store
        .create_container("c", None, &init())
        .expect("create");
    assert!(msg(s
        .store
        .create_container("c", None, &init())
        .expect_err("dup"))
    .contains("already exists"));
    s.store.remove_container("c").expect("rm");
    // The store keeps the driver it was created with.
    let other = if driver == DriverKind::Overlay {
        DriverKind::Vfs
    } else {
        DriverKind::Overlay
    };
    let e = berth_storage::LayerStore::open(s.store.root(), Some(other)).expect_err("mismatch");
    assert!(msg(e).contains(driver.as_str()));
    assert_eq!(
        berth_storage::LayerStore::open(s.store.root(), None)
            .expect("reopen")
            .driver()
            .kind(),
        driver
    );
    assert_eq!(s.store.driver().name(), driver.as_str());
    assert_nothing_mounted(s.dir.path());
}

fn reapplying_an_existing_layer_keeps_it(driver: DriverKind) {
    let s = Store::new(driver);
    let t = base_tar();
    let a = s
        .store
        .apply_layer(&id("base"), None, &t[..])
        .expect("first");
    let b = s
        .store
        .apply_layer(&id("base"), None, &t[..])
        .expect("second");
    assert_eq!(a, b);
    assert_eq!(a.diff_id, berth_digest::Digest::of(&t));
    assert_eq!(s.store.layer_size(&id("base")).expect("size"), a.size);
    assert_eq!(s.store.layers().expect("layers"), vec![id("base")]);
}

fn diff_round_trips_long_names_big_ids_and_hard_links(driver: DriverKind) {
    let s = Store::new(driver);
    let top = image(&s);
    s.store
        .create_container("c", Some(&top), &init())
        .expect("create");
    let root = s.store.mount_container("c").expect("mount");
    let long_dir = format!("deep/{}", "d".repeat(120));
    let long = format!("{long_dir}/{}", "f".repeat(200));
    fs::create_dir_all(root.join(&long_dir)).expect("mkdir");
    fs::write(root.join(&long), "long").expect("long");
    std::os::unix::fs::chown(root.join(&long), Some(3_000_000), Some(4_000_000)).expect("chown");
    std::os::unix::fs::symlink("t".repeat(150), root.join("deep/longlink")).expect("symlink");
    fs::write(root.join("deep/one"), "shared").expect("one");
    fs::hard_link(root.join("deep/one"), root.join("deep/two")).expect("link");
    let mut out = Vec::new();
    s.store.write_diff("c", &mut out).expect("diff");
    // GNU tar reads it the same way.
    if Path::new("/usr/bin/tar").exists() {
        let mut child = std::process::Command::new("/usr/bin/tar")
            .args(["--numeric-owner", "-tvf", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("tar");
        std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), &out).expect("feed tar");
        let res = child.wait_with_output().expect("tar output");
        assert!(res.status.success(), "GNU tar rejects the diff");
        let listing = String::from_utf8_lossy(&res.stdout);
        assert!(listing.contains(&long), "{listing}");
        assert!(listing.contains("3000000/4000000"), "{listing}");
        assert!(listing.contains("deep/two link to deep/one"), "{listing}");
    }
    let committed = id("committed");
    s.store
        .apply_layer(&committed, Some(&top), &out[..])
        .expect("reapply");
    s.store
        .create_container("c2", Some(&committed), &init())
        .expect("create");
    let r2 = s.store.mount_container("c2").expect("mount");
    let m = fs::symlink_metadata(r2.join(&long)).expect("long file");
    assert_eq!((m.uid(), m.gid()), (3_000_000, 4_000_000));
    assert_eq!(fs::read_to_string(r2.join(&long)).expect("read"), "long");
    assert_eq!(
        fs::read_link(r2.join("deep/longlink"))
            .expect("readlink")
            .to_str()
            .map(str::len),
        Some(150)
    );
    let (a, b) = (
        fs::symlink_metadata(r2.join("deep/one")).expect("one"),
        fs::symlink_metadata(r2.join("deep/two")).expect("two"),
    );
    assert_eq!(a.ino(), b.ino(), "hard link kept");
    let mut want = snapshot(&root);
    let mut got = snapshot(&r2);
    // The init files are written per container (their mtimes differ).
    for m in [&mut want, &mut got] {
        for f in ["etc/hosts", "etc/hostname", "etc/resolv.conf"] {
            m.remove(f);
        }
    }
    assert_eq!(got, want);
    for n in ["c", "c2"] {
        s.store.remove_container(n).expect("rm");
    }
    assert_nothing_mounted(s.dir.path());
}

/// A GNU sparse entry (10 KB of tar for a 2 GiB file) is unpacked with its holes
/// kept: its data segments at their offsets, the size set, nothing else allocated.
fn sparse_files_stay_sparse(driver: DriverKind) {
    use std::os::unix::fs::FileExt;
    const SIZE: u64 = 2 << 30;
    let segments: [(u64, &[u8]); 3] = [(0, b"head"), (1 << 30, b"middle"), (SIZE - 4, b"tail")];
    let src = tempfile::tempdir().expect("tempdir");
    let f = fs::File::create(src.path().join("big")).expect("create");
    f.set_len(SIZE).expect("set_len");
    for (at, data) in segments {
        f.write_all_at(data, at).expect("write");
    }
    drop(f);
    let tar = src.path().join("sparse.tar");
    let st = std::process::Command::new("tar")
        .args(["--format=gnu", "-S", "-cf"])
        .arg(&tar)
        .arg("-C")
        .arg(src.path())
        .arg("big")
        .status()
        .expect("GNU tar");
    assert!(st.success());
    let data = fs::read(&tar).expect("tar");
    assert!(
        data.len() < 64 * 1024,
        "the tar is not sparse: {} bytes",
        data.len()
    );
    let s = Store::new(driver);
    let l = id("sparse");
    s.store.apply_layer(&l, None, &data[..]).expect("apply");
    fn find(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for e in fs::read_dir(dir).expect("read_dir").flatten() {
            let p = e.path();
            if e.file_type().expect("type").is_dir() {
                find(&p, out);
            } else if p.ends_with("diff/big") {
                out.push(p);
            }
        }
    }
    let mut found = Vec::new();
    find(s.dir.path(), &mut found);
    assert_eq!(found.len(), 1, "{found:?}");
    let path = found[0].clone();
    let m = fs::metadata(&path).expect("big");
    assert_eq!(m.len(), SIZE);
    assert!(
        m.blocks() * 512 < 4 << 20,
        "{} bytes allocated for a file of 3 data segments",
        m.blocks() * 512
    );
    let f = fs::File::open(&path).expect("open");
    for (at, want) in segments {
        let mut got = vec![0; want.len()];
        f.read_exact_at(&mut got, at).expect("read");
        assert_eq!(got, want, "at {at}");
    }
    let mut gap = [1u8; 4096];
    f.read_exact_at(&mut gap, 1 << 29).expect("read a hole");
    assert!(gap.iter().all(|b| *b == 0));
    // A container over it (vfs: a copy of the layer) keeps it sparse too.
    s.store
        .create_container("c", Some(&l), &init())
        .expect("create");
    let root = s.store.mount_container("c").expect("mount");
    let m = fs::metadata(root.join("big")).expect("big in the container");
    assert_eq!(m.len(), SIZE);
    assert!(
        m.blocks() * 512 < 4 << 20,
        "{} bytes allocated",
        m.blocks() * 512
    );
    let f = fs::File::open(root.join("big")).expect("open");
    for (at, want) in segments {
        let mut got = vec![0; want.len()];
        f.read_exact_at(&mut got, at).expect("read");
        assert_eq!(got, want, "at {at}");
    }
    drop(f);
    s.store.remove_container("c").expect("rm");
    assert_nothing_mounted(s.dir.path());
}

/// What a container writes lands in its own layer: the image's layers and a
/// second container over the same image see none of it, and it outlives an
/// unmount.
fn writes_go_to_the_container_layer_only(driver: DriverKind) {
    let s = Store::new(driver);
    let top = image(&s);
    let layers_before: Vec<_> = [id("base"), id("top")]
        .iter()
        .map(|l| snapshot(&s.store.layer_diff(l)))
        .collect();
    for c in ["w", "other"] {
        s.store
            .create_container(c, Some(&top), &init())
            .expect("create");
    }
    let root = s.store.mount_container("w").expect("mount");
    fs::write(root.join("etc/a"), "mine").expect("modify");
    fs::write(root.join("etc/new"), "new").expect("add");
    fs::remove_file(root.join("keep/k")).expect("delete");
    fs::remove_dir_all(root.join("d")).expect("delete dir");
    fs::create_dir(root.join("d")).expect("recreate dir");
    // The writable side holds the new file: overlay's upper directory (as
    // GraphDriver.Data names it), vfs's copy (the rootfs itself).
    let upper = match s.store.container_graph("w").expect("graph") {
        Some(g) => g.upper,
        None => root.clone(),
    };
    assert_eq!(
        fs::read_to_string(upper.join("etc/new")).expect("upper"),
        "new"
    );
    let layers_after: Vec<_> = [id("base"), id("top")]
        .iter()
        .map(|l| snapshot(&s.store.layer_diff(l)))
        .collect();
    assert_eq!(layers_before, layers_after, "image layers changed");
    let other = s.store.mount_container("other").expect("mount other");
    assert_eq!(fs::read_to_string(other.join("etc/a")).expect("a"), "a1");
    assert!(!other.join("etc/new").exists());
    assert!(other.join("keep/k").exists());
    assert!(other.join("d/z").exists());
    s.store.unmount_container("w").expect("unmount");
    let root = s.store.mount_container("w").expect("remount");
    assert_eq!(fs::read_to_string(root.join("etc/a")).expect("a"), "mine");
    assert!(!root.join("keep/k").exists());
    assert_eq!(fs::read_dir(root.join("d")).expect("d").count(), 0);
    for c in ["w", "other"] {
        s.store.remove_container(c).expect("rm");
    }
    assert_nothing_mounted(s.dir.path());
}

/// A layer's size is its regular files' bytes (a hard link counted once),
/// its tar's length and digest are the stream's; a container's size is the
/// bytes of what it added or changed.
fn sizes_count_file_data(driver: DriverKind) {
    let s = Store::new(driver);
    let t1 = TarB::new()
        .dir("data", 0o755)
        .file("data/ten", "0123456789")
        .hardlink("data/ten2", "data/ten")
        .file("data/three", "abc")
        .symlink("data/link", "ten")
        .device("data/fifo", EntryType::Fifo, 0, 0)
        .build();
    let l1 = id("sized");
    let a = s.store.apply_layer(&l1, None, &t1[..]).expect("apply");
    assert_eq!(a.size, 13);
    assert_eq!(a.tar_size, t1.len() as u64);
    assert_eq!(a.diff_id, berth_digest::Digest::of(&t1));
    assert_eq!(s.store.layer_size(&l1).expect("size"), 13);
    // A layer over it counts only its own files.
    let t2 = TarB::new()
        .dir("data", 0o755)
        .file("data/four", "wxyz")
        .whiteout("data/three")
        .build();
    let l2 = id("sized2");
    let a2 = s.store.apply_layer(&l2, Some(&l1), &t2[..]).expect("apply");
    assert_eq!(a2.size, 4);
    assert_eq!(s.store.layer_size(&l2).expect("size"), 4);
    s.store
        .create_container("c", Some(&l2), &init())
        .expect("create");
    assert_eq!(s.store.container_size("c").expect("size"), 0);
    let root = s.store.mount_container("c").expect("mount");
    fs::write(root.join("data/new"), "12345").expect("add");
    fs::write(root.join("data/four"), "ab").expect("change");
    fs::remove_file(root.join("data/link")).expect("delete");
    assert_eq!(s.store.container_size("c").expect("size"), 7);
    s.store.remove_container("c").expect("rm");
    assert_nothing_mounted(s.dir.path());
}

/// A driver whose layers stage independently stages a child before its
/// parent (committing it then waits for the parent); one that copies the
/// parent refuses at once. Either way a failed or dropped stage leaves nothing.
fn staging_follows_the_driver(driver: DriverKind) {
    let s = Store::new(driver);
    let (p, c) = (id("parent"), id("child"));
    let child_tar = TarB::new().dir("etc", 0o755).file("etc/c", "c").build();
    let staged = s.store.stage_layer(&c, Some(&p), &child_tar[..]);
    if s.store.driver().stages_independently() {
        let staged = staged.expect("stage before the parent");
        assert_eq!(
            staged.applied().diff_id,
            berth_digest::Digest::of(&child_tar)
        );
        // Dropping a staged layer removes it.
        drop(staged);
        assert_store_clean(&s);
        let staged = s
            .store
            .stage_layer(&c, Some(&p), &child_tar[..])
            .expect("stage again");
        s.store
            .apply_layer(&p, None, &base_tar()[..])
            .expect("parent");
        staged.commit().expect("commit after the parent");
    } else {
        assert!(matches!(staged, Err(Error::MissingParent { .. })));
        assert_store_clean(&s);
        s.store
            .apply_layer(&p, None, &base_tar()[..])
            .expect("parent");
        s.store
            .stage_layer(&c, Some(&p), &child_tar[..])
            .expect("stage over the parent")
            .commit()
            .expect("commit");
    }
    assert_eq!(s.store.layer_chain(&c).expect("chain"), vec![c.clone(), p]);
    s.store
        .create_container("x", Some(&c), &init())
        .expect("create");
    let root = s.store.mount_container("x").expect("mount");
    assert_eq!(fs::read_to_string(root.join("etc/c")).expect("c"), "c");
    assert_eq!(fs::read_to_string(root.join("etc/a")).expect("a"), "a1");
    s.store.remove_container("x").expect("rm");
    for l in s.store.layers().expect("layers") {
        s.store.remove_layer(&l).expect("remove layer");
    }
    assert_store_clean(&s);
    let staging: Vec<_> = fs::read_dir(s.store.root().join("staging"))
        .expect("staging")
        .collect();
    assert!(staging.is_empty(), "left in staging/: {staging:?}");
}

/// The paths the driver reports (GraphDriver.Data, the init files on the
/// host) are those the container's rootfs is made of.
fn graph_and_init_paths_agree_with_the_rootfs(driver: DriverKind) {
    let s = Store::new(driver);
    let top = image(&s);
    s.store
        .create_container("c", Some(&top), &init())
        .expect("create");
    let root = s.store.mount_container("c").expect("mount");
    let hosts = s.store.init_file_path("c", "hosts").expect("hosts path");
    assert_eq!(fs::read_to_string(&hosts).expect("hosts"), init().hosts);
    s.store
        .rewrite_init_file("c", "hosts", "10.9.9.9 new\n")
        .expect("rewrite");
    assert_eq!(
        fs::read_to_string(root.join("etc/hosts")).expect("hosts"),
        "10.9.9.9 new\n"
    );
    let c_graph = s.store.container_graph("c").expect("graph");
    let l_graph = s.store.layer_graph(&top).expect("layer graph");
    // Both or neither: a driver reports GraphDriver.Data for all or none.
    assert_eq!(c_graph.is_some(), l_graph.is_some());
    if let (Some(g), Some(l)) = (c_graph, l_graph) {
        assert_eq!(g.merged, root);
        assert!(g.lower[0].join("etc/hosts").is_file(), "init layer first");
        assert_eq!(
            g.lower[1..].to_vec(),
            vec![
                s.store.layer_diff(&id("top")),
                s.store.layer_diff(&id("base"))
            ]
        );
        assert_eq!(l.upper, s.store.layer_diff(&id("top")));
        assert_eq!(l.lower, vec![s.store.layer_diff(&id("base"))]);
        assert!(s.store.driver().is_mounted(g.merged.parent().expect("dir")));
    }
    s.store.remove_container("c").expect("rm");
    assert_nothing_mounted(s.dir.path());
}
