//! `berth` container commands end to end: import --change and the run options,
//! create, diff, commit, export, history of a commit, reproducible commits.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;

fn import_with_changes(b: &Berth) {
    let tar = b.scratch().join("bb.tar");
    std::fs::write(&tar, busybox_tar()).unwrap();
    b.ok(&[
        "import",
        "--change",
        r#"CMD ["echo","hi"]"#,
        "--change",
        "ENV A=b",
        "--change",
        "WORKDIR /tmp",
        tar.to_str().unwrap(),
        "chg:1",
    ]);
}

#[test]
fn import_changes_and_run_options() {
    let b = Berth::new();
    import_with_changes(&b);
    let cfg = &b.inspect("chg:1")["Config"];
    assert_eq!(cfg["Cmd"], serde_json::json!(["echo", "hi"]), "{cfg}");
    assert_eq!(cfg["WorkingDir"], "/tmp", "{cfg}");
    assert!(
        cfg["Env"].as_array().unwrap().iter().any(|e| e == "A=b"),
        "{cfg}"
    );

    // The image's CMD.
    assert_eq!(b.ok(&["run", "--rm", "chg:1"]), "hi\n");
    // Arguments replace CMD; ENV and WORKDIR apply.
    assert_eq!(
        b.ok(&["run", "--rm", "chg:1", "sh", "-c", "echo $A; pwd"]),
        "b\n/tmp\n"
    );
    // -e overrides and adds, -w replaces the workdir.
    assert_eq!(
        b.ok(&[
            "run",
            "--rm",
            "-e",
            "A=override",
            "-e",
            "NEW=1",
            "-w",
            "/etc",
            "chg:1",
            "sh",
            "-c",
            "echo $A $NEW; pwd"
        ]),
        "override 1\n/etc\n"
    );
    // -u
    assert_eq!(
        b.ok(&["run", "--rm", "-u", "65534", "chg:1", "id", "-u"]),
        "65534\n"
    );
    assert_eq!(
        b.ok(&[
            "run",
            "--rm",
            "-u",
            "65534:65534",
            "chg:1",
            "sh",
            "-c",
            "id -u; id -g"
        ]),
        "65534\n65534\n"
    );
    // --entrypoint replaces ENTRYPOINT and drops the image's CMD…
    assert_eq!(
        b.ok(&["run", "--rm", "--entrypoint", "pwd", "chg:1"]),
        "/tmp\n"
    );
    // …and arguments become its arguments.
    assert_eq!(
        b.ok(&["run", "--rm", "--entrypoint", "echo", "chg:1", "x", "y"]),
        "x y\n"
    );
    // -h sets the hostname, /etc/hostname and /etc/hosts.
    assert_eq!(
        b.ok(&[
            "run",
            "--rm",
            "-h",
            "boxname",
            "chg:1",
            "sh",
            "-c",
            "hostname; cat /etc/hostname; grep -c boxname /etc/hosts"
        ]),
        "boxname\nboxname\n1\n"
    );
    // --hostname long form, -e KEY taken from here.
    let out = b
        .cmd(&[
            "run",
            "--rm",
            "--hostname",
            "other",
            "-e",
            "FROM_HOST",
            "chg:1",
            "sh",
            "-c",
            "hostname; echo $FROM_HOST",
        ])
        .env("FROM_HOST", "passed")
        .output()
        .unwrap();
    assert_eq!(
        text(&out.stdout),
        "other\npassed\n",
        "{}",
        describe(&["run"], &out)
    );

    // An image with an ENTRYPOINT: arguments replace only CMD.
    let tar = b.scratch().join("bb.tar");
    b.ok(&[
        "import",
        "-c",
        r#"ENTRYPOINT ["echo","ep"]"#,
        "-c",
        r#"CMD ["default"]"#,
        tar.to_str().unwrap(),
        "ep:1",
    ]);
    assert_eq!(b.ok(&["run", "--rm", "ep:1"]), "ep default\n");
    // import -m: the image's Comment and its history.
    b.ok(&[
        "import",
        "-m",
        "imported here",
        tar.to_str().unwrap(),
        "msg:1",
    ]);
    assert_eq!(b.inspect("msg:1")["Comment"], "imported here");
    assert!(b
        .ok(&["history", "msg:1"])
        .lines()
        .nth(1)
        .unwrap()
        .ends_with("imported here"));
    assert_eq!(b.ok(&["run", "--rm", "ep:1", "given"]), "ep given\n");
    assert_eq!(
        b.ok(&["run", "--rm", "--entrypoint", "echo", "ep:1"]),
        "\n",
        "--entrypoint drops the image's CMD"
    );
}

/// Runs a change in a named container (kept), returns nothing; the change adds
/// /added, changes /etc/passwd, deletes /bin/ls's neighbour /etc/group.
const CHANGE: &str = "echo added > /added && echo 'x:x:1:1::/:/bin/sh' >> /etc/passwd && rm /etc/group && mkdir -p /newdir/sub && echo deep > /newdir/sub/f";

fn diff_commit_export(b: &Berth) {
    let out = b.run(&["run", "--name", "x1", "busybox", "sh", "-c", CHANGE]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&["run"], &out));
    // ps -a shows it exited.
    let ps = b.ok(&["ps", "-a"]);
    assert!(
        ps.lines()
            .any(|l| l.ends_with(" x1") && l.contains("Exited (0)")),
        "{ps}"
    );

    let diff = b.ok(&["diff", "x1"]);
    let mut lines: Vec<&str> = diff.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "A /added",
            "A /newdir",
            "A /newdir/sub",
            "A /newdir/sub/f",
            "C /etc",
            "C /etc/passwd",
            "D /etc/group",
        ],
        "diff of x1 (init files must not appear):\n{diff}"
    );

    // export: the flattened filesystem.
    let exported = b.cmd(&["export", "x1"]).output().unwrap();
    assert!(
        exported.status.success(),
        "{}",
        describe(&["export", "x1"], &exported)
    );
    let names = tar_names(&exported.stdout);
    assert!(names.iter().any(|n| n == "added"), "{names:?}");
    assert!(names.iter().any(|n| n == "newdir/sub/f"), "{names:?}");
    assert!(names.iter().any(|n| n == "bin/busybox"), "{names:?}");
    assert!(
        !names.iter().any(|n| n == "etc/group"),
        "deleted file exported: {names:?}"
    );
    assert!(!names.iter().any(|n| n.contains(".wh.")), "{names:?}");
    let mut a = tar::Archive::new(&exported.stdout[..]);
    let mut passwd = String::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_string_lossy().trim_start_matches("./") == "etc/passwd" {
            std::io::Read::read_to_string(&mut e, &mut passwd).unwrap();
        }
    }
    assert!(passwd.ends_with("x:x:1:1::/:/bin/sh\n"), "{passwd}");
    // export -o
    let file = b.scratch().join("x.tar");
    b.ok(&["export", "-o", file.to_str().unwrap(), "x1"]);
    assert_eq!(tar_names(&std::fs::read(&file).unwrap()), names);

    // commit
    let id = b
        .ok(&[
            "commit",
            "-m",
            "my message",
            "-c",
            r#"CMD ["cat","/added"]"#,
            "x1",
            "new:1",
        ])
        .trim()
        .to_owned();
    assert!(id.starts_with("sha256:"), "{id}");
    assert_eq!(b.image_id("new:1"), id);
    assert_eq!(b.ok(&["run", "--rm", "new:1"]), "added\n");
    assert_eq!(
        b.ok(&[
            "run",
            "--rm",
            "new:1",
            "sh",
            "-c",
            "cat /newdir/sub/f; test -e /etc/group || echo nogroup; tail -n1 /etc/passwd"
        ]),
        "deep\nnogroup\nx:x:1:1::/:/bin/sh\n"
    );
    let v = b.inspect("new:1");
    assert_eq!(v["Comment"], "my message");
    assert_eq!(v["Config"]["Cmd"], serde_json::json!(["cat", "/added"]));
    let layers = b.diff_ids("new:1");
    assert_eq!(layers.len(), 2);
    assert_eq!(layers[0], b.diff_ids("busybox")[0]);

    // The committed layer: the changes, no init files.
    let saved = b.scratch().join("new.tar");
    b.ok(&["save", "-o", saved.to_str().unwrap(), "new:1"]);
    let archive = std::fs::read(&saved).unwrap();
    let mut a = tar::Archive::new(&archive[..]);
    let top_layer;
    let manifest: serde_json::Value = {
        let mut m = None;
        let mut blobs = std::collections::HashMap::new();
        for e in a.entries().unwrap() {
            let mut e = e.unwrap();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut data).unwrap();
            if name == "manifest.json" {
                m = Some(serde_json::from_slice(&data).unwrap());
            } else {
                blobs.insert(name, data);
            }
        }
        let m: serde_json::Value = m.unwrap();
        let last = m[0]["Layers"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .as_str()
            .unwrap()
            .to_owned();
        top_layer = blobs.remove(&last);
        m
    };
    let top = top_layer.unwrap_or_else(|| panic!("top layer missing: {manifest}"));
    assert_eq!(sha(&top), layers[1], "the saved layer is the diff_id's tar");
    let mut names = tar_names(&top);
    names.sort();
    let names: Vec<&str> = names.iter().map(|n| n.trim_end_matches('/')).collect();
    assert_eq!(
        names,
        [
            "added",
            "etc",
            "etc/.wh.group",
            "etc/passwd",
            "newdir",
            "newdir/sub",
            "newdir/sub/f"
        ],
        "committed layer"
    );

    // history: the commit on top, then (as Docker shows) its parent's ID
    // on the parent's own last row, <missing> below.
    let out = b.ok(&["history", "new:1"]);
    let rows: Vec<&str> = out.lines().collect();
    assert!(rows[0].starts_with("IMAGE"), "{out}");
    assert!(rows[1].starts_with(&id[7..19]), "{out}");
    assert!(rows[1].trim_end().ends_with("my message"), "{out}");
    assert!(rows.len() >= 3, "{out}");
    let parent = b.image_id("busybox");
    assert!(rows[2].starts_with(&parent[7..19]), "{out}");
    for r in &rows[3..] {
        assert!(r.starts_with("<missing>"), "{out}");
    }
    let q = b.ok(&["history", "-q", "new:1"]);
    assert_eq!(q.lines().next().unwrap(), &id[7..19], "{q}");

    assert_eq!(b.ok(&["rm", "x1"]), "x1\n");
    assert_eq!(b.ok(&["ps", "-a", "-q"]), "");
    // The new image stays usable without its container.
    assert_eq!(b.ok(&["run", "--rm", "new:1"]), "added\n");
}

#[test]
fn diff_commit_export_history_overlay() {
    let b = Berth::with_busybox();
    diff_commit_export(&b);
}

#[test]
fn diff_commit_export_history_vfs() {
    let b = Berth::with_driver("vfs");
    b.import_busybox();
    diff_commit_export(&b);
}

#[test]
fn create_then_diff_is_empty_and_rm() {
    let b = Berth::with_busybox();
    let id = b
        .ok(&["create", "--name", "c1", "busybox", "true"])
        .trim()
        .to_owned();
    assert_eq!(id.len(), 64, "{id}");
    let ps = b.ok(&["ps", "-a", "--no-trunc"]);
    assert!(
        ps.lines()
            .any(|l| l.starts_with(&id) && l.contains("Created")),
        "{ps}"
    );
    assert_eq!(
        b.ok(&["diff", "c1"]),
        "",
        "a created container has no changes (init files excluded)"
    );
    // A second container with the same name is refused.
    let err = b.fails(&["create", "--name", "c1", "busybox", "true"], 1);
    assert!(err.contains("c1"), "{err}");
    assert_eq!(b.ok(&["rm", &id[..12]]), format!("{}\n", &id[..12]));
    assert_eq!(b.ok(&["ps", "-a", "-q"]), "");
}

/// A `create` killed between its record and its writable layer leaves a
/// record without a layer (found by SIGKILLing `berth run` a few
/// milliseconds in: rm said "not found"). The record carries its creator
/// (intent `create <owner>`): once that process is gone, the next command
/// drops it, whichever it is.
#[test]
fn a_container_without_its_layer_is_dropped_by_the_next_command() {
    let b = Berth::with_busybox();
    for (name, next) in [
        ("c1", &["ps", "-a"][..]),
        ("c2", &["start", "c2"][..]),
        ("c3", &["system", "reset", "-f"][..]),
    ] {
        let id = b
            .ok(&["create", "--name", name, "busybox", "true"])
            .trim()
            .to_owned();
        let layer = b.root().join("storage").join("containers").join(&id);
        assert!(layer.is_dir(), "{}", layer.display());
        std::fs::remove_dir_all(&layer).unwrap();
        let _ = b.run(next);
        assert_eq!(b.ok(&["ps", "-a", "-q"]), "", "after {next:?}");
        assert!(!b.root().join("run/containers").join(&id).exists());
    }
}

#[test]
fn same_change_commits_to_the_same_layer() {
    let b = Berth::with_busybox();
    // The same content and the same mtimes (layer tars keep whole-second mtimes),
    // made at different times by different containers.
    let change =
        "mkdir -p /app && echo same > /app/file && echo v >> /etc/profile && rm /etc/group \
                  && touch -d '2020-01-01 00:00:00' /app/file /app /etc/profile /etc";
    for name in ["r1", "r2"] {
        b.ok(&["run", "--name", name, "busybox", "sh", "-c", change]);
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    b.ok(&["commit", "r1", "same:1"]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    b.ok(&["commit", "-m", "other message", "r2", "same:2"]);
    let l1 = b.diff_ids("same:1");
    let l2 = b.diff_ids("same:2");
    assert_eq!(l1.len(), 2);
    assert_eq!(
        l1.last(),
        l2.last(),
        "the same change gives the same diff_id"
    );
    b.ok(&["rm", "r1", "r2"]);
    // The shared layer is stored once: busybox + the commit.
    assert_eq!(b.layer_dirs().len(), 2, "{:?}", b.layer_dirs());
}

/// inspect's GraphDriver (overlay) and the init files name berth's real
/// directories and files: the container's init layer and the image's layer
/// below it, the writable layer, overlay's work directory and mount point.
#[test]
fn inspect_names_the_real_overlay_directories_and_init_files() {
    let b = Berth::with_busybox();
    let c = b.ok(&["create", "busybox", "true"]);
    let i = b.inspect(c.trim());
    let g = &i["GraphDriver"];
    assert_eq!(g["Name"], "overlay", "{g}");
    let dir = |k: &str| std::path::PathBuf::from(g["Data"][k].as_str().unwrap());
    for k in ["UpperDir", "WorkDir", "MergedDir"] {
        assert!(dir(k).is_dir(), "{k}: {g}");
    }
    let lower: Vec<&str> = g["Data"]["LowerDir"].as_str().unwrap().split(':').collect();
    assert_eq!(lower.len(), 2, "{g}");
    assert!(lower[0].ends_with("/init"), "{g}");
    assert!(
        lower.iter().all(|p| std::path::Path::new(p).is_dir()),
        "{g}"
    );
    let img = b.inspect("busybox");
    assert_eq!(img["GraphDriver"]["Data"]["UpperDir"], lower[1], "{img}");
    for (key, file, want) in [
        ("HostnamePath", "hostname", format!("{}\n", &c.trim()[..12])),
        ("HostsPath", "hosts", String::new()),
        ("ResolvConfPath", "resolv.conf", String::new()),
    ] {
        let p = i[key].as_str().unwrap();
        assert_eq!(p, format!("{}/etc/{file}", lower[0]), "{key}");
        let text = std::fs::read_to_string(p).unwrap();
        assert!(text.starts_with(&want), "{key}: {text:?}");
    }
    b.ok(&["rm", c.trim()]);
}
