//! Volumes as Docker 20.10 handles them (checked against a dockerd): a new
//! (empty) volume is populated from the image at create, `nocopy` and binds
//! never are; `run --rm` removes the container's anonymous volumes; `cp`
//! reads and writes through volumes and binds without a symlink leading out
//! of the container's view; `system df` counts volumes.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;

/// busybox plus `/data` (999:999, 0700, holding `f` and `sub/g`),
/// `/vol/imgfile` and `/varrun -> /rundir`, imported as `vimg` with
/// `VOLUME /vol`.
fn with_volume_image() -> Berth {
    let b = Berth::new();
    let mut out = tar::Builder::new(Vec::new());
    let mut bb = tar::Archive::new(busybox_tar());
    for e in bb.entries().unwrap() {
        let mut e = e.unwrap();
        let mut h = e.header().clone();
        let path = e.path().unwrap().into_owned();
        if h.entry_type() == tar::EntryType::Symlink {
            let target = e.link_name().unwrap().unwrap().into_owned();
            out.append_link(&mut h, &path, &target).unwrap();
        } else {
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut data).unwrap();
            out.append_data(&mut h, &path, &data[..]).unwrap();
        }
    }
    let mut add = |path: &str, dir: bool, data: &[u8], uid: u64, mode: u32| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(if dir {
            tar::EntryType::Directory
        } else {
            tar::EntryType::Regular
        });
        h.set_mode(mode);
        h.set_uid(uid);
        h.set_gid(uid);
        h.set_mtime(1_700_000_000);
        h.set_size(data.len() as u64);
        out.append_data(&mut h, path, data).unwrap();
    };
    add("data", true, b"", 999, 0o700);
    add("data/f", false, b"hello\n", 999, 0o644);
    add("data/sub", true, b"", 999, 0o755);
    add("data/sub/g", false, b"x\n", 999, 0o644);
    add("vol", true, b"", 0, 0o755);
    add("vol/imgfile", false, b"img\n", 0, 0o644);
    add("rundir", true, b"", 0, 0o755);
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_mode(0o777);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h.set_size(0);
    out.append_link(&mut h, "varrun", "/rundir").unwrap();
    let tar = b.scratch().join("vimg.tar");
    std::fs::write(&tar, out.into_inner().unwrap()).unwrap();
    b.ok(&[
        "import",
        "--change",
        "VOLUME /vol",
        tar.to_str().unwrap(),
        "vimg",
    ]);
    std::fs::remove_file(&tar).unwrap();
    b
}

fn volumes(b: &Berth) -> Vec<String> {
    let mut v: Vec<String> = b
        .ok(&["volume", "ls", "-q"])
        .lines()
        .map(str::to_owned)
        .collect();
    v.sort();
    v
}

const SHOW_DATA: &str = "stat -c '%u:%g %a' /data; ls /data; cat /data/f /data/sub/g 2>&1";

#[test]
fn a_new_volume_is_populated_from_the_image() {
    let b = with_volume_image();
    // Docker: the image's contents, and the directory's owner and mode.
    let populated = "999:999 700\nf\nsub\nhello\nx\n";
    let out = b.ok(&[
        "run",
        "--rm",
        "-v",
        "named:/data",
        "vimg",
        "sh",
        "-c",
        SHOW_DATA,
    ]);
    assert_eq!(out, populated);
    // An anonymous one too, and the image's VOLUME.
    let out = b.ok(&["run", "--rm", "-v", "/data", "vimg", "sh", "-c", SHOW_DATA]);
    assert_eq!(out, populated);
    let out = b.ok(&["run", "--rm", "vimg", "cat", "/vol/imgfile"]);
    assert_eq!(out, "img\n");
    // A volume made empty by `volume create` is populated at its first use.
    b.ok(&["volume", "create", "made"]);
    let out = b.ok(&[
        "run",
        "--rm",
        "-v",
        "made:/data",
        "vimg",
        "sh",
        "-c",
        SHOW_DATA,
    ]);
    assert_eq!(out, populated);
    // The data is the volume's: a volume that is not empty is left as it is.
    b.ok(&["run", "--rm", "-v", "named:/data", "vimg", "rm", "/data/f"]);
    let out = b.ok(&["run", "--rm", "-v", "named:/data", "vimg", "ls", "/data"]);
    assert_eq!(out, "sub\n");
    // nocopy (both spellings): the volume stays empty, root:root 0755.
    let empty = "0:0 755\ncat: can't open '/data/f': No such file or directory\ncat: can't open '/data/sub/g': No such file or directory\n";
    let out = b.run(&[
        "run",
        "--rm",
        "-v",
        "nc1:/data:nocopy",
        "vimg",
        "sh",
        "-c",
        SHOW_DATA,
    ]);
    assert_eq!(text(&out.stdout), empty);
    let out = b.run(&[
        "run",
        "--rm",
        "--mount",
        "type=volume,src=nc2,dst=/data,volume-nocopy",
        "vimg",
        "sh",
        "-c",
        SHOW_DATA,
    ]);
    assert_eq!(text(&out.stdout), empty);
    // A bind mount is never populated.
    let host = b.scratch().join("bind");
    std::fs::create_dir(&host).unwrap();
    let v = format!("{}:/data", host.display());
    let out = b.ok(&["run", "--rm", "-v", &v, "vimg", "ls", "-A", "/data"]);
    assert_eq!(out, "");
    for v in volumes(&b) {
        b.ok(&["volume", "rm", &v]);
    }
}

#[test]
fn run_rm_removes_the_anonymous_volumes() {
    let b = with_volume_image();
    // Foreground --rm: the image's VOLUME and `-v /path` go, a named one stays.
    b.ok(&["run", "--rm", "-v", "/x", "-v", "keep:/y", "vimg", "true"]);
    assert_eq!(volumes(&b), ["keep"]);
    // Detached --rm: removed when the monitor removes the container.
    b.ok(&[
        "run", "-d", "--rm", "-v", "/x", "-v", "keep:/y", "vimg", "true",
    ]);
    wait_until(30, "the --rm container to go", || {
        b.ok(&["ps", "-aq"]).trim().is_empty()
    });
    wait_until(30, "its anonymous volumes to go", || {
        volumes(&b) == ["keep"]
    });
    // `rm -f` of an --rm container without -v keeps them (Docker 20.10 too).
    b.ok(&["run", "-d", "--rm", "--name", "rr", "vimg", "sleep", "100"]);
    b.ok(&["rm", "-f", "rr"]);
    assert_eq!(volumes(&b).len(), 2);
    b.ok(&["volume", "prune", "-f"]);
    assert_eq!(volumes(&b), ["keep"]);
    // Without --rm they stay until `rm -v`.
    b.ok(&["run", "--name", "c1", "-v", "/x", "vimg", "true"]);
    assert_eq!(volumes(&b).len(), 3);
    b.ok(&["rm", "-v", "c1"]);
    assert_eq!(volumes(&b), ["keep"]);
    b.ok(&["volume", "rm", "keep"]);
}

#[test]
fn cp_goes_through_volumes_and_binds() {
    let b = with_volume_image();
    let host = b.scratch().join("bind");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("hostfile"), "from the host\n").unwrap();
    let bind = format!("{}:/b", host.display());
    let ro = format!("{}:/robind:ro", host.display());
    b.ok(&[
        "create",
        "--name",
        "c1",
        "-v",
        "cpv:/data",
        "-v",
        &bind,
        "-v",
        &ro,
        "vimg",
        "sleep",
        "100",
    ]);
    // Stopped: reads the volume (populated from the image) and the bind.
    let out = b.ok(&["cp", "c1:/data/f", "-"]);
    assert_eq!(tar_names(out.as_bytes()), ["f"]);
    assert!(out.contains("hello\n"));
    let out = b.ok(&["cp", "c1:/b/hostfile", "-"]);
    assert!(out.contains("from the host\n"), "{out}");
    // The whole tree, with the volumes' contents under their mount points.
    let out = b.run(&["cp", "c1:/", "-"]);
    assert!(out.status.success());
    let names = tar_names(&out.stdout);
    assert!(names.iter().any(|n| n.ends_with("data/sub/g")), "{names:?}");
    assert!(names.iter().any(|n| n.ends_with("b/hostfile")), "{names:?}");
    // Writes go into the volume and the bind, seen by the container.
    let f = b.scratch().join("new");
    std::fs::write(&f, "copied in\n").unwrap();
    b.ok(&["cp", f.to_str().unwrap(), "c1:/data/"]);
    b.ok(&["cp", f.to_str().unwrap(), "c1:/b/"]);
    assert_eq!(
        std::fs::read_to_string(host.join("new")).unwrap(),
        "copied in\n"
    );
    // Docker's words for a missing path, naming the container as given.
    let e = b.fails(&["cp", "c1:/data/nosuch", "-"], 1);
    assert_eq!(
        e,
        "Error: Could not find the file /data/nosuch in container c1"
    );
    // Not into a read-only mount.
    let e = b.fails(&["cp", f.to_str().unwrap(), "c1:/robind/"], 1);
    assert!(e.contains("mounted volume is marked read-only"), "{e}");
    b.ok(&["start", "c1"]);
    let out = b.ok(&["exec", "c1", "cat", "/data/new", "/b/new"]);
    assert_eq!(out, "copied in\ncopied in\n");
    // Running: both directions again.
    std::fs::write(&f, "while running\n").unwrap();
    b.ok(&["cp", f.to_str().unwrap(), "c1:/data/new"]);
    assert_eq!(b.ok(&["exec", "c1", "cat", "/data/new"]), "while running\n");
    let dest = b.scratch().join("out");
    b.ok(&["cp", "c1:/data/sub", dest.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(dest.join("g")).unwrap(), "x\n");
    // A symlink in a volume leads where it leads inside the container,
    // never to the host's path it names.
    let secret = b.scratch().join("secret");
    std::fs::create_dir(&secret).unwrap();
    std::fs::write(secret.join("s"), "host only\n").unwrap();
    let abs = format!("ln -s {} /data/esc", secret.display());
    let rel = format!(
        "ln -s ../../../../../../../../..{} /data/esc2",
        secret.display()
    );
    b.ok(&["exec", "c1", "sh", "-c", &format!("{abs}; {rel}")]);
    for l in ["esc", "esc2"] {
        let out = b.run(&["cp", &format!("c1:/data/{l}/s"), "-"]);
        assert!(!out.status.success(), "{l}: {}", text(&out.stdout));
        assert!(!text(&out.stdout).contains("host only"));
        let out = b.run(&["cp", f.to_str().unwrap(), &format!("c1:/data/{l}/")]);
        assert!(!out.status.success(), "{l}");
    }
    assert_eq!(
        std::fs::read_dir(&secret).unwrap().count(),
        1,
        "cp wrote on the host through a symlink"
    );
    // A tree copied in across a mount point: the part under the volume
    // goes into the volume (Docker's cp too).
    let tree = b.scratch().join("tree");
    std::fs::create_dir_all(tree.join("data")).unwrap();
    std::fs::create_dir_all(tree.join("top")).unwrap();
    std::fs::write(tree.join("data/across"), "a\n").unwrap();
    std::fs::write(tree.join("top/t"), "t\n").unwrap();
    b.ok(&["cp", &format!("{}/.", tree.display()), "c1:/"]);
    assert_eq!(
        b.ok(&["exec", "c1", "cat", "/data/across", "/top/t"]),
        "a\nt\n"
    );
    b.ok(&["rm", "-f", "c1"]);
    let out = b.ok(&["run", "--rm", "-v", "cpv:/x", "vimg", "cat", "/x/across"]);
    assert_eq!(out, "a\n");
    // A volume mounted through a symlink (/varrun -> /rundir) is where the
    // container sees it, for cp as well.
    b.ok(&[
        "create",
        "--name",
        "s1",
        "-v",
        "symv:/varrun",
        "vimg",
        "true",
    ]);
    b.ok(&["cp", f.to_str().unwrap(), "s1:/rundir/"]);
    b.ok(&["cp", f.to_str().unwrap(), "s1:/varrun/other"]);
    let out = b.ok(&["run", "--rm", "-v", "symv:/x", "vimg", "ls", "/x"]);
    assert_eq!(out, "new\nother\n");
    b.ok(&["rm", "s1"]);
    b.ok(&["volume", "rm", "cpv", "symv"]);
}

/// The RECLAIMABLE cell of `system df`'s row `kind`, without its share.
fn df_reclaimable(b: &Berth, kind: &str) -> String {
    let out = b.ok(&["system", "df", "--format", "{{.Type}}={{.Reclaimable}}"]);
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{kind}=")))
        .unwrap_or_else(|| panic!("no {kind} in {out}"))
        .split(' ')
        .next()
        .unwrap()
        .to_owned()
}

fn total_reclaimed(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("Total reclaimed space: "))
        .unwrap_or_else(|| panic!("no total in {out}"))
        .to_owned()
}

#[test]
fn system_df_counts_volumes_and_what_prune_frees() {
    let b = with_volume_image();
    b.ok(&[
        "run",
        "--rm",
        "-v",
        "dfv:/data",
        "vimg",
        "sh",
        "-c",
        "head -c 100000 /dev/zero > /data/z",
    ]);
    // `used` (empty: nothing at /nothing in the image) and the anonymous
    // volume of the image's VOLUME (4 bytes) are in use.
    b.ok(&[
        "create",
        "--name",
        "c1",
        "-v",
        "used:/nothing",
        "vimg",
        "true",
    ]);
    let out = b.ok(&["system", "df"]);
    let row = out
        .lines()
        .find(|l| l.starts_with("Local Volumes"))
        .unwrap();
    let cols: Vec<&str> = row.split_whitespace().collect();
    // TYPE (2 words) TOTAL ACTIVE SIZE RECLAIMABLE (PCT)
    assert_eq!(cols[2..], ["3", "2", "100kB", "100kB", "(99%)"], "{out}");
    let out = b.ok(&[
        "system",
        "df",
        "--format",
        "{{.Type}} {{.TotalCount}} {{.Active}}",
    ]);
    assert!(out.contains("Local Volumes 3 2\n"), "{out}");
    let out = b.ok(&["system", "df", "-v"]);
    for section in [
        "Images space usage:\n\nREPOSITORY   TAG       IMAGE ID       CREATED",
        "\n\nContainers space usage:\n\nCONTAINER ID   IMAGE     COMMAND   LOCAL VOLUMES   SIZE",
        "\n\nLocal Volumes space usage:\n\nVOLUME NAME",
        "\n\nBuild cache usage: 0B\n\nCACHE ID   CACHE TYPE   SIZE      CREATED   LAST USED   USAGE     SHARED\n",
    ] {
        assert!(out.contains(section), "{section:?} in {out}");
    }
    let rows: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    for want in [
        vec!["dfv", "0", "100kB"],
        vec!["used", "1", "0B"],
        vec!["vimg", "latest"],
    ] {
        assert!(
            rows.iter().any(|r| r.starts_with(&want)),
            "{want:?} in {out}"
        );
    }
    let c = rows.iter().find(|r| r.last() == Some(&"c1")).unwrap();
    assert_eq!(c[1..4], ["vimg", "\"true\"", "2"], "{out}");
    // Reclaimable is what the prunes then free.
    b.ok(&["rm", "c1"]);
    let images = df_reclaimable(&b, "Images");
    let volumes = df_reclaimable(&b, "Local Volumes");
    assert_ne!(images, "0B");
    assert_eq!(
        total_reclaimed(&b.ok(&["image", "prune", "-a", "-f"])),
        images
    );
    assert_eq!(
        total_reclaimed(&b.ok(&["volume", "prune", "-a", "-f"])),
        volumes
    );
    assert!(b.ok(&["volume", "ls", "-q"]).is_empty());
}
