//! Mounts as the runtime spec (v1.2) and runc define them: the recursive
//! mount attributes (`rro`, `rnosuid`, … applied to every submount with
//! mount_setattr(AT_RECURSIVE)), `rbind` with a propagation, the
//! rootfs propagation, proc and sysfs refused on anything but an ordinary
//! directory (runc's wording), tmpfs options and the bind of a file.
//!
//! Each case was run through runc 1.1 on the same bundle; where runc and the
//! spec differ (runc 1.1 cannot make the rootfs unbindable) the spec wins and
//! the test says so.
#![allow(clippy::unwrap_used)]

mod common;

use common::{mounts_mentioning, Ctr, Rt};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// A host directory with a tmpfs mounted on its `sub` directory, unmounted
/// when dropped: the source of a recursive bind.
struct TreeWithSubmount {
    dir: tempfile::TempDir,
}

impl TreeWithSubmount {
    fn new() -> TreeWithSubmount {
        let dir = tempfile::Builder::new()
            .prefix("berth-mnt-src-")
            .tempdir()
            .unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        nix::mount::mount(
            Some("tmpfs"),
            &sub,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            Some("size=1m"),
        )
        .unwrap();
        std::fs::write(sub.join("file"), "in the submount\n").unwrap();
        TreeWithSubmount { dir }
    }

    fn path(&self) -> &str {
        self.dir.path().to_str().unwrap()
    }
}

impl Drop for TreeWithSubmount {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(
            &self.dir.path().join("sub"),
            nix::mount::MntFlags::MNT_DETACH,
        );
    }
}

/// The per-mount options (6th field) of the mountinfo line whose mount
/// point (5th field) is `mp`, and its optional fields (propagation tags).
fn mountinfo_of(text: &str, mp: &str) -> Option<(Vec<String>, Vec<String>)> {
    text.lines().find_map(|l| {
        let (left, _) = l.split_once(" - ")?;
        let f: Vec<&str> = left.split(' ').collect();
        (f.get(4) == Some(&mp)).then(|| {
            (
                f[5].split(',').map(str::to_owned).collect(),
                f[6..].iter().map(|s| (*s).to_owned()).collect(),
            )
        })
    })
}

fn push_mount(c: &mut Ctr, m: Value) {
    c.edit_json(|v| v["mounts"].as_array_mut().unwrap().push(m));
}

/// `rro`, `rnosuid`, `rnodev`, `rnoexec`, `rnoatime`, `rnosymfollow` (and
/// `rnodiratime`, `rstrictatime`) reach the submounts of an rbind, as runc
/// applies them (mount_setattr with AT_RECURSIVE); before, they were passed
/// as filesystem data and ignored, even on the top mount.
#[test]
fn recursive_mount_attributes_reach_every_submount() {
    let tree = TreeWithSubmount::new();
    let rt = Rt::new();
    let mut c = Ctr::sh(
        &rt,
        "cat /proc/self/mountinfo; echo ===; cat /mnt/sub/file; touch /mnt/sub/new 2>&1 || echo refused",
    );
    push_mount(
        &mut c,
        json!({"destination": "/mnt", "type": "bind", "source": tree.path(),
               "options": ["rbind", "rro", "rnosuid", "rnodev", "rnoexec", "rnoatime", "rnosymfollow"]}),
    );
    push_mount(
        &mut c,
        json!({"destination": "/mnt2", "type": "bind", "source": tree.path(),
               "options": ["rbind", "rnodiratime", "rstrictatime"]}),
    );
    let out = rt.run(&c);
    let text = out.ok().to_owned();
    for mp in ["/mnt", "/mnt/sub"] {
        let (opts, _) = mountinfo_of(&text, mp).unwrap_or_else(|| panic!("no {mp}: {text}"));
        for want in ["ro", "nosuid", "nodev", "noexec", "noatime", "nosymfollow"] {
            assert!(
                opts.contains(&want.to_owned()),
                "{mp} lacks {want}: {opts:?}"
            );
        }
    }
    for mp in ["/mnt2", "/mnt2/sub"] {
        let (opts, _) = mountinfo_of(&text, mp).unwrap_or_else(|| panic!("no {mp}: {text}"));
        assert!(opts.contains(&"nodiratime".to_owned()), "{mp}: {opts:?}");
        assert!(opts.contains(&"rw".to_owned()), "{mp}: {opts:?}");
        // strictatime is the absence of relatime and noatime.
        assert!(
            !opts.iter().any(|o| o == "relatime" || o == "noatime"),
            "{mp}: {opts:?}"
        );
    }
    let after = text.split("===\n").nth(1).unwrap();
    assert!(after.starts_with("in the submount\n"), "{after}");
    assert!(after.contains("Read-only file system"), "{after}");
    c.finish();
    let src = tree.dir.path().to_owned();
    drop(tree);
    assert!(mounts_mentioning(&src).is_empty());
    rt.assert_empty();
}

/// A recursive attribute on a mount that is not a bind (a tmpfs) applies
/// too, and a bad combination fails with one line naming the mount.
#[test]
fn recursive_attributes_on_a_tmpfs() {
    let rt = Rt::new();
    let mut c = Ctr::sh(&rt, "cat /proc/self/mountinfo");
    push_mount(
        &mut c,
        json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
               "options": ["rro", "rnoexec", "size=64k"]}),
    );
    let out = rt.run(&c);
    let (opts, _) = mountinfo_of(out.ok(), "/scratch").unwrap();
    assert!(opts.contains(&"ro".to_owned()), "{opts:?}");
    assert!(opts.contains(&"noexec".to_owned()), "{opts:?}");
    c.finish();
    rt.assert_empty();
}

/// `rbind` with `rprivate` / `rshared` / `runbindable` / `rslave`: the
/// propagation is set on the bind and on its submounts (runc: the same).
#[test]
fn rbind_with_a_recursive_propagation() {
    let tree = TreeWithSubmount::new();
    let rt = Rt::new();
    for (prop, want) in [
        ("rshared", Some("shared:")),
        ("runbindable", Some("unbindable")),
        ("rprivate", None),
        // The host's tree is private here: a slave of a private mount is private.
        ("rslave", None),
    ] {
        let mut c = Ctr::sh(&rt, "cat /proc/self/mountinfo");
        push_mount(
            &mut c,
            json!({"destination": "/mnt", "type": "bind", "source": tree.path(),
                   "options": ["rbind", prop]}),
        );
        let out = rt.run(&c);
        for mp in ["/mnt", "/mnt/sub"] {
            let (_, tags) = mountinfo_of(out.ok(), mp).unwrap();
            match want {
                Some(w) => assert!(
                    tags.iter().any(|t| t.starts_with(w)),
                    "{prop} {mp}: {tags:?}"
                ),
                None => assert!(
                    !tags
                        .iter()
                        .any(|t| t.starts_with("shared:") || t == "unbindable"),
                    "{prop} {mp}: {tags:?}"
                ),
            }
        }
        c.finish();
    }
    let src = tree.dir.path().to_owned();
    drop(tree);
    assert!(mounts_mentioning(&src).is_empty());
    rt.assert_empty();
}

/// `linux.rootfsPropagation`: every value the spec lists starts (private and
/// unbindable failed with "make / a slave mount: EINVAL"); the root mount of
/// the container then has that propagation. runc 1.1 fails on `unbindable`
/// and `runbindable` (its bind of the rootfs meets an unbindable /): the
/// spec allows them, so berth-runtime makes the container's root unbindable.
#[test]
fn rootfs_propagation_every_value() {
    let rt = Rt::new();
    for (prop, want) in [
        ("private", None),
        ("rprivate", None),
        ("slave", None),
        ("rslave", None),
        ("shared", Some("shared:")),
        ("rshared", Some("shared:")),
        ("unbindable", Some("unbindable")),
        ("runbindable", Some("unbindable")),
    ] {
        let mut c = Ctr::sh(&rt, "cat /proc/self/mountinfo");
        c.edit_json(|v| v["linux"]["rootfsPropagation"] = json!(prop));
        let out = rt.run(&c);
        let (_, tags) = mountinfo_of(out.ok(), "/").unwrap();
        match want {
            Some(w) => assert!(tags.iter().any(|t| t.starts_with(w)), "{prop}: {tags:?}"),
            None => assert!(
                !tags
                    .iter()
                    .any(|t| t.starts_with("shared:") || t == "unbindable"),
                "{prop}: {tags:?}"
            ),
        }
        c.finish();
    }
    let mut c = Ctr::sh(&rt, "true");
    c.edit_json(|v| v["linux"]["rootfsPropagation"] = json!("sideways"));
    let line = rt.run(&c).fails_one_line();
    assert!(line.contains("linux.rootfsPropagation"), "{line}");
    c.assert_nothing_left();
    rt.assert_empty();
}

/// proc and sysfs are mounted only on an ordinary directory: a symlink (or a
/// file) at /proc or /sys in the image is refused with runc's message, never
/// followed (before, berth-runtime mounted proc where the symlink pointed).
#[test]
fn proc_and_sysfs_on_a_symlink_are_refused_as_runc_does() {
    let rt = Rt::new();
    for (dir, typ, link) in [
        ("proc", "proc", "realproc"),
        ("sys", "sysfs", "/realsys"),
        ("proc", "proc", "/tmp"),
    ] {
        let c = Ctr::sh(&rt, "echo ran");
        let rootfs = c.rootfs();
        let real = rootfs.join(format!("real{dir}"));
        let _ = std::fs::create_dir(&real);
        let _ = std::fs::remove_dir(rootfs.join(dir));
        std::os::unix::fs::symlink(link, rootfs.join(dir)).unwrap();
        let line = rt.run(&c).fails_one_line();
        assert!(
            line.contains(&format!(
                "filesystem \"{typ}\" must be mounted on ordinary directory"
            )),
            "{line}"
        );
        // Nothing was mounted where the link pointed.
        assert!(mounts_mentioning(&real).is_empty());
        c.assert_nothing_left();
    }
    // A regular file is refused the same way.
    let c = Ctr::sh(&rt, "echo ran");
    let rootfs = c.rootfs();
    let _ = std::fs::remove_dir(rootfs.join("proc"));
    std::fs::write(rootfs.join("proc"), "").unwrap();
    let line = rt.run(&c).fails_one_line();
    assert!(
        line.contains("filesystem \"proc\" must be mounted on ordinary directory"),
        "{line}"
    );
    c.assert_nothing_left();
    rt.assert_empty();
}

/// tmpfs options reach the filesystem (size, mode, uid, gid) and the
/// generic flags the mount (runc: the same line in mountinfo).
#[test]
fn tmpfs_options() {
    let rt = Rt::new();
    let mut c = Ctr::sh(&rt, "cat /proc/self/mountinfo; stat -c '%a %u %g' /scratch");
    push_mount(
        &mut c,
        json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "noexec", "nodev", "size=1m", "mode=1770", "uid=7", "gid=8"]}),
    );
    let out = rt.run(&c);
    let text = out.ok();
    let line = text
        .lines()
        .find(|l| l.split(' ').nth(4) == Some("/scratch"))
        .unwrap();
    let (opts, _) = mountinfo_of(text, "/scratch").unwrap();
    for want in ["nosuid", "noexec", "nodev", "rw"] {
        assert!(opts.contains(&want.to_owned()), "{line}");
    }
    let (_, sb) = line.split_once(" - ").unwrap();
    for want in ["size=1024k", "mode=1770", "uid=7", "gid=8"] {
        assert!(sb.contains(want), "{line}");
    }
    assert!(text.ends_with("1770 7 8\n"), "{text}");
    c.finish();
    rt.assert_empty();
}

/// A bind of a single file onto a path the image lacks: the file is made,
/// the bind is of the file, `ro` makes it read-only (runc: the same).
#[test]
fn bind_of_a_file() {
    let host = tempfile::tempdir().unwrap();
    let file: PathBuf = host.path().join("app.conf");
    std::fs::write(&file, "setting=1\n").unwrap();
    let rt = Rt::new();
    let mut c = Ctr::sh(
        &rt,
        "cat /etc/app/app.conf; echo x >> /etc/app/app.conf 2>/dev/null && echo wrote || echo refused; test -f /etc/app/app.conf && echo file",
    );
    push_mount(
        &mut c,
        json!({"destination": "/etc/app/app.conf", "type": "bind",
               "source": file.to_str().unwrap(), "options": ["bind", "ro"]}),
    );
    assert_eq!(rt.run(&c).ok(), "setting=1\nrefused\nfile\n");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "setting=1\n");
    c.finish();
    assert!(mounts_mentioning(Path::new(host.path())).is_empty());
    rt.assert_empty();
}

/// An id-mapped bind (`uidMappings`/`gidMappings` on the mount, runtime-spec
/// 1.2; runc 1.2+): files the source's owner 0 owns show as the mapped ids
/// through the mount, the source itself unchanged. Before, the mapping was
/// ignored (and the `idmap` option refused).
#[test]
fn idmapped_bind_mount() {
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("file"), "x").unwrap();
    std::os::unix::fs::chown(host.path().join("file"), Some(0), Some(0)).unwrap();
    let rt = Rt::new();
    for opts in [json!(["bind"]), json!(["rbind", "ridmap"])] {
        let mut c = Ctr::sh(&rt, "stat -c '%u %g' /mnt/file");
        push_mount(
            &mut c,
            json!({"destination": "/mnt", "type": "bind", "source": host.path().to_str().unwrap(),
                   "options": opts,
                   "uidMappings": [{"containerID": 0, "hostID": 1234, "size": 1}],
                   "gidMappings": [{"containerID": 0, "hostID": 4321, "size": 1}]}),
        );
        let out = rt.run(&c);
        if out.stderr.contains("EINVAL") && out.stderr.contains("idmap") {
            eprintln!(
                "skipped: the host's kernel or filesystem refuses id-mapped mounts: {}",
                out.stderr
            );
            return;
        }
        assert_eq!(out.ok(), "1234 4321\n", "{opts}");
        c.finish();
    }
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::metadata(host.path().join("file")).unwrap();
    assert_eq!((md.uid(), md.gid()), (0, 0));
    // Only a bind can be id-mapped: refused with one line, nothing left.
    let mut c = Ctr::sh(&rt, "true");
    push_mount(
        &mut c,
        json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["idmap"],
               "uidMappings": [{"containerID": 0, "hostID": 1234, "size": 1}],
               "gidMappings": [{"containerID": 0, "hostID": 4321, "size": 1}]}),
    );
    let line = rt.run(&c).fails_one_line();
    assert!(line.contains("only supported for bind mounts"), "{line}");
    c.assert_nothing_left();
    assert!(mounts_mentioning(host.path()).is_empty());
    rt.assert_empty();
}
