//! Rootless berth (issue 16): an unprivileged user the test makes (useradd,
//! with a subordinate id range of its own) runs berth with the same
//! commands; the user, its processes and its state are removed afterwards.
#![allow(clippy::unwrap_used)]

#[path = "common/api.rs"]
mod api;
mod common;
#[path = "common/user.rs"]
mod user;

use common::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use user::*;

#[test]
fn a_user_runs_a_container_with_state_in_its_own_directories() {
    let u = User::new();
    let id = u.import_busybox();
    assert!(id.starts_with("sha256:"), "{id}");
    assert_eq!(
        u.ok(&["run", "--rm", "--network", "none", "busybox", "echo", "hi"]),
        "hi\n"
    );
    // The container's root is the user's own id mapped to 0.
    assert_eq!(
        u.ok(&["run", "--rm", "--network", "none", "busybox", "id", "-u"]),
        "0\n"
    );
    // State in XDG_DATA_HOME's default and XDG_RUNTIME_DIR, the user's.
    let db = u.data_dir().join("berth.db");
    assert_eq!(std::fs::metadata(&db).unwrap().uid(), u.uid);
    let run = std::fs::metadata(u.run_dir()).unwrap();
    assert_eq!((run.uid(), run.mode() & 0o777), (u.uid, 0o700));
    let info = u.ok(&["info", "--format", "{{.DockerRootDir}} {{.Driver}}"]);
    assert_eq!(
        info.trim(),
        format!("{} overlay", u.data_dir().display()),
        "native overlay in the user namespace"
    );
    // The same namespace is joined, not made again.
    let pause = u.pause_pid().expect("a pause process");
    u.ok(&["images"]);
    assert_eq!(u.pause_pid(), Some(pause));
    assert!(process_alive(pause));
}

#[test]
fn detached_container_exec_logs_stop_rm() {
    let u = User::new();
    u.import_busybox();
    let id = u.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "c1",
        "busybox",
        "sh",
        "-c",
        "echo started; exec sleep 1000",
    ]);
    assert!(is_hex64(id.trim()), "{id}");
    wait_until(30, "the log line", || u.ok(&["logs", "c1"]) == "started\n");
    assert_eq!(
        u.ok(&["exec", "c1", "cat", "/proc/1/cmdline"]),
        "sleep\u{0}1000\u{0}"
    );
    assert!(u.ok(&["ps"]).contains("c1"));
    assert_eq!(u.ok(&["stop", "-t", "1", "c1"]).trim(), "c1");
    assert_eq!(
        u.ok(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            "c1"
        ])
        .trim(),
        "exited 137"
    );
    assert_eq!(u.ok(&["rm", "c1"]).trim(), "c1");
    assert_eq!(u.ok(&["ps", "-aq"]), "");
    // Nothing of the container runs: the pause process alone is left.
    let pause = u.pause_pid().unwrap();
    wait_until(10, "the monitor to go", || u.processes() == vec![pause]);
}

/// `layers:latest`: busybox, then a layer with a directory and a file, then
/// one that whites the file out and makes the other directory opaque.
fn whiteout_image() -> ImageSpec {
    let lower = Layer::plain(layer_tar(&[
        dir("d"),
        file("d/a", b"a"),
        dir("o"),
        file("o/old", b"old"),
    ]));
    let upper = Layer::plain(layer_tar(&[
        whiteout("d/a"),
        dir("o"),
        opaque("o"),
        file("o/new", b"new"),
    ]));
    ImageSpec::new("layers:latest", vec![Layer::busybox(), lower, upper])
}

#[test]
fn rootless_load_gives_root_s_image_ids_and_whiteouts_work() {
    let u = User::new();
    let archive = docker_archive(&[whiteout_image()]);
    u.file("img.tar", &archive);
    u.ok(&["load", "-i", "img.tar"]);
    let root = Berth::new();
    let p = root.scratch().join("img.tar");
    std::fs::write(&p, &archive).unwrap();
    root.ok(&["load", "-i", p.to_str().unwrap()]);
    let id = |out: String| out.trim().to_owned();
    assert_eq!(
        id(u.ok(&["images", "-q", "--no-trunc", "layers"])),
        id(root.ok(&["images", "-q", "--no-trunc", "layers"]))
    );
    assert_eq!(
        u.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "layers",
            "sh",
            "-c",
            "ls -A /d; ls -A /o",
        ]),
        "new\n"
    );
}

#[test]
fn without_a_subordinate_range_one_line_names_it() {
    let u = User::without_range();
    let err = u.fails(&["images"], 1);
    assert!(
        err.contains(&format!(
            "no subuid ranges found for user \"{}\" in /etc/subuid",
            u.name
        )),
        "{err}"
    );
    let err = u.fails(
        &["run", "--rm", "--network", "none", "busybox", "true"],
        125,
    );
    assert!(err.contains("/etc/subuid"), "{err}");
    assert_eq!(u.pause_pid(), None);
    assert!(u.processes().is_empty());
}

#[test]
fn without_newuidmap_one_line_names_the_package() {
    let u = User::new();
    let mut c = u.cmd(&["images"]);
    c.env("PATH", "/nonexistent");
    let out = c.output().unwrap();
    let err = check_failure(&["images"], &out, 1);
    assert!(
        err.contains("newuidmap not found") && err.contains("uidmap package"),
        "{err}"
    );
    assert!(u.processes().is_empty());
}

#[test]
fn resource_limits_and_user_networks_are_refused_clearly() {
    let u = User::new();
    u.import_busybox();
    for (flags, word) in [
        (&["-m", "64m"][..], "--memory"),
        (&["--cpus", "1"][..], "--cpus"),
        (&["--pids-limit", "10"][..], "--pids-limit"),
    ] {
        let mut args = vec!["run", "--rm", "--network", "none"];
        args.extend_from_slice(flags);
        args.extend(["busybox", "true"]);
        let err = u.fails(&args, 125);
        assert!(
            err.contains(word) && err.contains("rootless") && err.contains("cgroup"),
            "{err}"
        );
    }
    // A user-defined network that does not exist, in Docker's words.
    let err = u.fails(&["run", "--rm", "--network", "n1", "busybox", "true"], 125);
    assert!(err.contains("network n1 not found"), "{err}");
    let err = u.fails(&["create", "--network", "n1", "busybox", "true"], 1);
    assert!(err.contains("network n1 not found"), "{err}");
    // Nothing was created.
    assert_eq!(u.ok(&["ps", "-aq"]), "");
    u.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "up",
        "busybox",
        "sleep",
        "1000",
    ]);
    assert_eq!(
        u.fails(&["update", "-m", "64m", "up"], 1),
        "Error: rootless berth cannot update resource limits: this host delegates no cgroup to the user"
    );
    u.ok(&["rm", "-f", "up"]);
    // --network host works.
    assert_eq!(
        u.ok(&["run", "--rm", "--network", "host", "busybox", "echo", "ok"]),
        "ok\n"
    );
}

#[test]
fn info_says_rootless_and_the_mapping() {
    let u = User::new();
    let start = u.range.unwrap();
    let out = u.ok(&["info"]);
    assert!(out.contains("\n Rootless: true\n"), "{out}");
    assert!(
        out.contains(&format!("\n  UID Map: 0:{}:1, 1:{start}:65536\n", u.uid)),
        "{out}"
    );
    assert!(
        out.contains(&format!("\n  GID Map: 0:{}:1, 1:{start}:65536\n", u.gid)),
        "{out}"
    );
    assert!(out.contains("\n Cgroup Driver: none\n"), "{out}");
    assert!(out.contains("\n  Network Command: pasta\n"), "{out}");
    assert_eq!(
        u.ok(&["info", "-f", "{{.RootlessNetworkCmd}}"]).trim(),
        "pasta"
    );
    let sec = u.ok(&["info", "-f", "{{json .SecurityOptions}}"]);
    assert!(sec.contains("\"name=rootless\""), "{sec}");
    // Root's says so too, without the mapping.
    let root = Berth::new();
    let out = root.ok(&["info"]);
    assert!(out.contains("\n Rootless: false\n"), "{out}");
    assert!(!out.contains("UID Map"), "{out}");
    assert!(!root
        .ok(&["info", "-f", "{{json .SecurityOptions}}"])
        .contains("rootless"));
}

#[test]
fn a_rootless_container_cannot_write_what_the_user_cannot() {
    let u = User::new();
    u.import_busybox();
    // Root's file, readable by all, in a directory the user can reach.
    let f = u.base.join("roots-file");
    std::fs::write(&f, "root's\n").unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
    let secret = u.base.join("roots-secret");
    std::fs::write(&secret, "secret\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let v = format!("{}:/f", f.display());
    let out = u.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &v,
        "busybox",
        "sh",
        "-c",
        "cat /f; echo changed > /f",
    ]);
    assert!(!out.status.success(), "{}", describe(&["run"], &out));
    assert_eq!(text(&out.stdout), "root's\n");
    assert_eq!(std::fs::read_to_string(&f).unwrap(), "root's\n");
    let v = format!("{}:/s", secret.display());
    let out = u.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &v,
        "busybox",
        "cat",
        "/s",
    ]);
    assert!(!out.status.success(), "{}", describe(&["run"], &out));
    assert!(!text(&out.stdout).contains("secret"));
    // Root's store is out of the user's reach, and the user's is not root's.
    let root = Berth::with_busybox();
    let err = u.fails(&["--root", root.root().to_str().unwrap(), "images"], 1);
    assert!(err.contains("ermission denied"), "{err}");
    assert!(!root.ok(&["images"]).contains("layers"));
}

#[test]
fn a_dead_pause_process_is_replaced_and_nothing_is_left_at_the_end() {
    let mut u = User::new();
    u.import_busybox();
    let first = u.pause_pid().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_until(10, "the pause process to go", || !process_alive(first));
    assert_eq!(
        u.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "echo",
            "again"
        ]),
        "again\n"
    );
    let second = u.pause_pid().unwrap();
    assert_ne!(first, second);
    u.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "bg",
        "busybox",
        "sleep",
        "1000",
    ]);
    // Its rootfs is mounted in the user's mount namespace only.
    let ns_mounts = std::fs::read_to_string(format!("/proc/{second}/mountinfo")).unwrap();
    assert!(
        ns_mounts.contains(&format!("{}/storage/containers/", u.data_dir().display())),
        "{ns_mounts}"
    );
    assert!(mounts_mentioning(&u.base).is_empty());
    // The teardown (what a user's logout would do) leaves nothing.
    let problems = u.teardown();
    assert!(problems.is_empty(), "{problems:?}");
    assert!(!process_alive(second));
    assert!(nix::unistd::User::from_name(&u.name).unwrap().is_none());
    assert!(!u.base.exists());
}

#[test]
fn without_xdg_runtime_dir_the_volatile_state_is_in_tmp() {
    let u = User::new();
    let mut c = u.cmd(&["images", "-q"]);
    c.env_remove("XDG_RUNTIME_DIR");
    let out = c.output().unwrap();
    assert!(out.status.success(), "{}", describe(&["images"], &out));
    let dir = PathBuf::from(format!("/tmp/berth-{}", u.uid));
    let m = std::fs::metadata(&dir).unwrap();
    assert_eq!((m.uid(), m.mode() & 0o777), (u.uid, 0o700));
    assert!(dir.join("pause.pid").exists());
}

#[test]
fn xdg_data_home_holds_the_state_and_device_nodes_are_the_host_s() {
    let u = User::new();
    let data = u.home().join("data");
    std::fs::create_dir(&data).unwrap();
    u.chown(&data);
    let with_data = |args: &[&str]| {
        let mut c = u.cmd(args);
        c.env("XDG_DATA_HOME", &data);
        let out = c.output().unwrap();
        assert!(out.status.success(), "{}", describe(args, &out));
        text(&out.stdout)
    };
    u.file("bb.tar", busybox_tar());
    with_data(&["import", "bb.tar", "busybox"]);
    assert_eq!(
        with_data(&["info", "--format", "{{.DockerRootDir}}"]).trim(),
        data.join("berth").to_str().unwrap()
    );
    assert_eq!(
        std::fs::metadata(data.join("berth/berth.db"))
            .unwrap()
            .uid(),
        u.uid
    );
    assert!(!u.data_dir().exists());
    // No mknod in a user namespace: /dev's nodes are the host's, bound,
    // and work.
    let out = with_data(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "for d in null zero full random urandom tty; do stat -c '%n %F %t,%T' /dev/$d; done; \
         echo x > /dev/null && head -c 5 /dev/zero | wc -c && head -c 5 /dev/urandom | wc -c",
    ]);
    assert_eq!(
        out,
        "/dev/null character special file 1,3\n/dev/zero character special file 1,5\n\
         /dev/full character special file 1,7\n/dev/random character special file 1,8\n\
         /dev/urandom character special file 1,9\n/dev/tty character special file 5,0\n5\n5\n"
    );
}

/// Where overlay cannot be mounted in the user namespace (a root on ramfs,
/// which keeps no extended attributes), the store is vfs, and works.
#[test]
fn where_overlay_cannot_work_the_store_is_vfs() {
    let u = User::new();
    let root = u.home().join("ram");
    std::fs::create_dir(&root).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "ramfs", "berth-test-ramfs"])
        .arg(&root)
        .status()
        .unwrap();
    assert!(mounted.success());
    u.chown(&root);
    let r = root.to_str().unwrap();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        u.file("img.tar", &docker_archive(&[whiteout_image()]));
        u.ok(&["--root", r, "load", "-i", "img.tar"]);
        assert_eq!(
            u.ok(&[
                "--root",
                r,
                "run",
                "--rm",
                "--network",
                "none",
                "layers",
                "sh",
                "-c",
                "ls -A /d; ls -A /o; echo hi > /f && cat /f"
            ]),
            "new\nhi\n"
        );
        assert_eq!(
            u.ok(&["--root", r, "info", "--format", "{{.Driver}}"])
                .trim(),
            "vfs"
        );
        u.ok(&["--root", r, "system", "reset", "-f"]);
    }));
    let _ = Command::new("umount").arg("-l").arg(&root).status();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

#[test]
fn first_commands_at_once_make_one_namespace() {
    let u = User::new();
    let children: Vec<_> = (0..4)
        .map(|_| {
            u.cmd(&["images", "-q"])
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", describe(&["images"], &out));
    }
    let pause = u.pause_pid().unwrap();
    // One pause process, and every command was in its namespace: the store
    // they made is one (one database, the user's).
    assert_eq!(u.processes(), vec![pause]);
    let ns = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/user")).unwrap();
    assert_ne!(ns(&pause.to_string()), ns("self"));
}

#[test]
fn network_commands_and_reset_work_without_networks() {
    let u = User::new();
    u.import_busybox();
    // Only host and none (no default bridge), and no host lock or nft needed.
    let names = u.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert_eq!(names, "host\nnone\n");
    let err = u.fails(&["network", "create", "-d", "ipvlan", "n1"], 1);
    assert!(err.contains("rootless") && err.contains("ipvlan"), "{err}");
    let out = u.run(&["network", "inspect", "bridge"]);
    assert_eq!(
        check_failure(&["network", "inspect"], &out, 1),
        "Error: No such network: bridge"
    );
    u.ok(&["network", "prune", "-f"]);
    u.ok(&["system", "prune", "-f"]);
    u.ok(&["run", "-d", "--network", "none", "busybox", "sleep", "1000"]);
    u.ok(&["system", "reset", "-f"]);
    assert_eq!(u.ok(&["ps", "-aq"]), "");
    assert_eq!(u.ok(&["images", "-q"]), "");
    assert!(u.ok(&["system", "check"]).contains("No problems found"));
}

#[test]
fn host_pid_and_ipc_namespaces_work_rootless() {
    let u = User::new();
    u.import_busybox();
    // procfs of the host's pid namespace cannot be mounted from the user
    // namespace: the host's /proc is bound (still read-only where Docker's
    // spec says so).
    let out = u.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--pid",
        "host",
        "busybox",
        "sh",
        "-c",
        "test -d /proc/1 && echo proc; echo 1 > /proc/sys/kernel/ns_last_pid || echo ro",
    ]);
    assert_eq!(out, "proc\nro\n");
    assert_eq!(
        u.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--ipc",
            "host",
            "busybox",
            "echo",
            "ipc"
        ]),
        "ipc\n"
    );
}

#[test]
fn containers_stay_reachable_when_the_pause_process_dies() {
    let u = User::new();
    u.import_busybox();
    u.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "k1",
        "busybox",
        "sleep",
        "1000",
    ]);
    let first = u.pause_pid().unwrap();
    let ns = |pid: i32| std::fs::read_link(format!("/proc/{pid}/ns/user")).unwrap();
    let old_ns = ns(first);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_until(10, "the pause process to go", || !process_alive(first));
    // The next command finds the namespace through the container's monitor
    // and gives it a new pause process: the container is still its.
    assert_eq!(u.ok(&["exec", "k1", "echo", "reached"]), "reached\n");
    let second = u.pause_pid().unwrap();
    assert_ne!(first, second);
    assert_eq!(ns(second), old_ns);
    u.ok(&["rm", "-f", "k1"]);
    wait_until(10, "the monitor to go", || u.processes() == vec![second]);
}

#[test]
fn pause_and_a_pausing_commit_are_refused_clearly() {
    let u = User::new();
    u.import_busybox();
    u.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "p1",
        "busybox",
        "sleep",
        "1000",
    ]);
    for args in [
        &["pause", "p1"][..],
        &["unpause", "p1"][..],
        &["commit", "p1", "x1"][..],
    ] {
        let err = u.fails(args, 1);
        assert_eq!(
            err,
            "Error: rootless berth cannot pause a container: this host delegates no cgroup to the user"
        );
    }
    assert_eq!(
        u.ok(&["inspect", "-f", "{{.State.Status}}", "p1"]).trim(),
        "running"
    );
    // Without the pause the commit is made.
    let id = u.ok(&["commit", "-p=false", "p1", "x1"]);
    assert!(id.starts_with("sha256:"), "{id}");
    u.ok(&["rm", "-f", "p1"]);
}

#[test]
fn top_lists_the_container_s_processes_without_a_cgroup() {
    let u = User::new();
    u.import_busybox();
    u.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "t1",
        "busybox",
        "sh",
        "-c",
        "sleep 1001 & exec sleep 1002",
    ]);
    wait_until(10, "both sleeps", || {
        let top = u.ok(&["top", "t1"]);
        top.contains("sleep 1001") && top.contains("sleep 1002")
    });
    assert_eq!(u.ok(&["top", "t1"]).lines().count(), 3);
    u.ok(&["rm", "-f", "t1"]);
}

impl User {
    /// `prog ARGS` as the user, with the environment `cmd` gives berth.
    fn prog(&self, prog: &str, args: &[&str]) -> Command {
        let berth = self.cmd(args);
        // setpriv --reuid … -- BERTH ARGS: PROG in BERTH's place.
        let mut argv: Vec<std::ffi::OsString> = berth.get_args().map(|a| a.to_owned()).collect();
        let at = argv.iter().position(|a| a == "--").unwrap() + 1;
        argv[at] = prog.into();
        let mut c = Command::new(berth.get_program());
        c.args(argv).env_clear();
        for (k, v) in berth.get_envs() {
            if let Some(v) = v {
                c.env(k, v);
            }
        }
        c.current_dir(self.home()).stdin(Stdio::null());
        c
    }

    /// A rootless run with no network, its output.
    fn sh(&self, extra: &[&str], script: &str) -> Output {
        let mut args = vec!["run", "--rm", "--network", "none"];
        args.extend_from_slice(extra);
        args.extend(["busybox", "sh", "-c", script]);
        self.run(&args)
    }
}

#[test]
fn a_named_volume_is_shared_by_the_user_s_containers() {
    let u = User::new();
    u.import_busybox();
    assert_eq!(u.ok(&["volume", "create", "v1"]), "v1\n");
    let out = u.sh(
        &["-v", "v1:/data"],
        "echo kept > /data/f && chown 1:2 /data/f && echo written",
    );
    assert!(out.status.success(), "{}", describe(&["run"], &out));
    assert_eq!(text(&out.stdout), "written\n");
    // Another container reads it, owned by the ids it was given.
    let out = u.sh(
        &["-v", "v1:/data:ro"],
        "stat -c '%u:%g' /data/f; cat /data/f",
    );
    assert!(out.status.success(), "{}", describe(&["run"], &out));
    assert_eq!(text(&out.stdout), "1:2\nkept\n");
    // On the host the file belongs to the user's subordinate ids 1 and 2.
    let mp = u.ok(&["volume", "inspect", "-f", "{{.Mountpoint}}", "v1"]);
    let mp = PathBuf::from(mp.trim());
    assert!(mp.starts_with(u.data_dir()), "{}", mp.display());
    let m = std::fs::metadata(mp.join("f")).unwrap();
    let start = u.range.unwrap();
    assert_eq!((m.uid(), m.gid()), (start, start + 1));
    assert_eq!(u.ok(&["volume", "ls", "-q"]), "v1\n");
    assert_eq!(u.ok(&["volume", "rm", "v1"]), "v1\n");
    assert_eq!(u.ok(&["volume", "ls", "-q"]), "");
    assert!(!mp.exists(), "{} left", mp.display());
}

#[test]
fn a_user_cannot_see_or_open_another_user_s_state() {
    let a = User::new();
    let b = User::new();
    // Homes others may enter: the state directories themselves must be closed.
    for u in [&a, &b] {
        std::fs::set_permissions(u.home(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(u.xdg(), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    a.import_busybox();
    b.import_busybox();
    let id = a.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "mine",
        "busybox",
        "sleep",
        "1000",
    ]);
    let id = id.trim();
    assert_eq!(b.ok(&["ps", "-aq"]), "");
    let err = b.fails(&["inspect", id], 1);
    assert!(err.contains("No such object"), "{err}");
    let err = b.fails(&["exec", id, "true"], 1);
    assert!(err.contains("No such container"), "{err}");
    for d in [a.data_dir(), a.run_dir()] {
        let m = std::fs::metadata(&d).unwrap();
        assert_eq!(
            (m.uid(), m.mode() & 0o077),
            (a.uid, 0),
            "{} is open to others",
            d.display()
        );
        let out = b.prog("/bin/ls", &[d.to_str().unwrap()]).output().unwrap();
        assert!(!out.status.success(), "{}", describe(&["ls"], &out));
    }
    // Nor through berth with a's directories.
    let err = b.fails(&["--root", a.data_dir().to_str().unwrap(), "ps", "-a"], 1);
    assert!(err.contains("ermission denied"), "{err}");
    // Nor by signalling a's container.
    let pid = a.ok(&["inspect", "-f", "{{.State.Pid}}", "mine"]);
    let out = b.prog("/bin/kill", &["-0", pid.trim()]).output().unwrap();
    assert!(!out.status.success(), "{}", describe(&["kill"], &out));
    assert_eq!(
        a.ok(&["inspect", "-f", "{{.State.Status}}", "mine"]).trim(),
        "running"
    );
    a.ok(&["rm", "-f", "mine"]);
}

#[test]
fn seccomp_and_capabilities_hold_in_the_user_namespace() {
    let u = User::new();
    u.import_busybox();
    let status = "grep -E '^(CapEff|Seccomp):' /proc/self/status | tr -s '\\t' ' '";
    let out = u.sh(&[], status);
    assert!(out.status.success(), "{}", describe(&["run"], &out));
    // Docker's default capabilities, within the user namespace.
    assert_eq!(text(&out.stdout), "CapEff: 00000000a80425fb\nSeccomp: 2\n");
    let out = u.sh(&["--cap-drop", "NET_RAW"], status);
    assert_eq!(text(&out.stdout), "CapEff: 00000000a80405fb\nSeccomp: 2\n");
    // A dropped capability is refused; kept, it works.
    let chown = "touch /f && chown 5:5 /f && echo chowned";
    let out = u.sh(&[], chown);
    assert_eq!(
        text(&out.stdout),
        "chowned\n",
        "{}",
        describe(&["run"], &out)
    );
    let out = u.sh(&["--cap-drop", "CHOWN"], chown);
    assert!(!out.status.success(), "{}", describe(&["run"], &out));
    assert!(
        text(&out.stderr).contains("Operation not permitted"),
        "{}",
        describe(&["run"], &out)
    );
    // unshare(2) needs no capability for a user namespace, but Docker's
    // default profile refuses it without CAP_SYS_ADMIN.
    let unshare = "unshare -U true && echo unshared";
    let out = u.sh(&[], unshare);
    assert!(!out.status.success(), "{}", describe(&["run"], &out));
    assert!(
        text(&out.stderr).contains("Operation not permitted"),
        "{}",
        describe(&["run"], &out)
    );
    let out = u.sh(&["--security-opt", "seccomp=unconfined"], unshare);
    assert_eq!(
        text(&out.stdout),
        "unshared\n",
        "{}",
        describe(&["run"], &out)
    );
}

/// The same build context and the same base image (loaded from one archive)
/// built by root and by a user: the same image ID (SOURCE_DATE_EPOCH pins
/// the times); a commit's layer and a saved archive carry the same ids.
#[test]
fn build_commit_and_save_give_root_s_image_ids() {
    let u = User::new();
    let root = Berth::new();
    let base = docker_archive(&[ImageSpec::new("base:latest", vec![Layer::busybox()])]);
    u.file("base.tar", &base);
    u.ok(&["load", "-i", "base.tar"]);
    let p = root.scratch().join("base.tar");
    std::fs::write(&p, &base).unwrap();
    root.ok(&["load", "-i", p.to_str().unwrap()]);
    let dockerfile = "FROM base\nCOPY f /f\nRUN echo hi > /hi && chown 1:2 /hi && mkdir -p /d/e && rm -rf /etc\nENV A=b\nCMD [\"cat\", \"/hi\"]\n";
    let ctx_root = root.scratch().join("ctx");
    let ctx_user = u.home().join("ctx");
    for ctx in [&ctx_root, &ctx_user] {
        std::fs::create_dir(ctx).unwrap();
        std::fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
        std::fs::write(ctx.join("f"), "context file\n").unwrap();
        std::fs::set_permissions(ctx.join("f"), std::fs::Permissions::from_mode(0o640)).unwrap();
    }
    for p in [
        ctx_user.clone(),
        ctx_user.join("Dockerfile"),
        ctx_user.join("f"),
    ] {
        u.chown(&p);
    }
    let build = |run: &dyn Fn(&[&str]) -> String, ctx: &Path| {
        run(&[
            "build",
            "-q",
            "--network",
            "none",
            "--build-arg",
            "SOURCE_DATE_EPOCH=1700000000",
            "-t",
            "built",
            ctx.to_str().unwrap(),
        ])
        .trim()
        .to_owned()
    };
    let user_id = build(&|a| u.ok(a), &ctx_user);
    let root_id = build(&|a| root.ok(a), &ctx_root);
    assert!(user_id.starts_with("sha256:"), "{user_id}");
    assert_eq!(
        user_id, root_id,
        "a rootless build's image differs from root's"
    );
    assert_eq!(
        u.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "built",
            "sh",
            "-c",
            "cat /hi; stat -c %u:%g /hi /f; test -e /etc/passwd || echo no-passwd"
        ]),
        "hi\n1:2\n0:0\nno-passwd\n"
    );
    // A commit: the layer of the same change is the same.
    let layers = |run: &dyn Fn(&[&str]) -> String| {
        run(&[
            "run",
            "--network",
            "none",
            "--name",
            "cm",
            "built",
            "sh",
            "-c",
            "echo x > /x && chown 3:4 /x && touch -d '2001-01-01 00:00:00' /x /",
        ]);
        run(&["commit", "-p=false", "cm", "committed"]);
        run(&["rm", "cm"]);
        run(&["inspect", "-f", "{{json .RootFS.Layers}}", "committed"])
    };
    assert_eq!(layers(&|a| u.ok(a)), layers(&|a| root.ok(a)));
    // A saved archive loads into root's store with the user's IDs.
    u.ok(&["save", "-o", "saved.tar", "built", "committed"]);
    let saved = u.home().join("saved.tar");
    let fresh = Berth::new();
    fresh.ok(&["load", "-i", saved.to_str().unwrap()]);
    for name in ["built", "committed"] {
        let id = |b: &dyn Fn(&[&str]) -> String| b(&["images", "-q", "--no-trunc", name]);
        assert_eq!(id(&|a| u.ok(a)), id(&|a| fresh.ok(a)), "{name}");
    }
}

#[test]
fn the_api_socket_serves_the_user_in_its_runtime_directory() {
    let u = User::new();
    u.import_busybox();
    let mut service = u
        .cmd(&["system", "service", "--time", "0"])
        .spawn()
        .unwrap();
    let sock = u.run_dir().join("docker.sock");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !sock.exists() {
        if let Some(st) = service.try_wait().unwrap() {
            panic!("the API server ended: {st}");
        }
        assert!(Instant::now() < deadline, "no socket at {}", sock.display());
        std::thread::sleep(Duration::from_millis(50));
    }
    let m = std::fs::symlink_metadata(&sock).unwrap();
    assert_eq!(m.uid(), u.uid);
    assert_eq!(
        m.mode() & 0o007,
        0,
        "the socket is open to all: {:o}",
        m.mode()
    );
    let d = std::fs::metadata(u.run_dir()).unwrap();
    assert_eq!(
        d.mode() & 0o077,
        0,
        "{} is open to others",
        u.run_dir().display()
    );
    let host = format!("unix://{}", sock.display());
    let curl = |path: &str| {
        let out = u
            .prog(
                "/usr/bin/curl",
                &[
                    "-sS",
                    "--unix-socket",
                    sock.to_str().unwrap(),
                    &format!("http://d{path}"),
                ],
            )
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", describe(&["curl", path], &out));
        text(&out.stdout)
    };
    let wait = Instant::now() + Duration::from_secs(30);
    loop {
        let out = u
            .prog(
                "/usr/bin/curl",
                &[
                    "-sS",
                    "--unix-socket",
                    sock.to_str().unwrap(),
                    "http://d/_ping",
                ],
            )
            .output()
            .unwrap();
        if text(&out.stdout) == "OK" {
            break;
        }
        assert!(Instant::now() < wait, "{}", describe(&["curl"], &out));
        std::thread::sleep(Duration::from_millis(100));
    }
    u.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "api1",
        "busybox",
        "sleep",
        "1000",
    ]);
    let list = curl("/containers/json");
    assert!(list.contains("\"/api1\""), "{list}");
    let docker = |args: &[&str]| {
        let mut a = vec!["-H", host.as_str()];
        a.extend_from_slice(args);
        let out = u.prog("/usr/local/bin/docker", &a).output().unwrap();
        assert!(out.status.success(), "{}", describe(args, &out));
        text(&out.stdout)
    };
    assert_eq!(
        docker(&[
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "echo",
            "via the API"
        ]),
        "via the API\n"
    );
    assert_eq!(docker(&["ps", "--format", "{{.Names}}"]), "api1\n");
    let info = docker(&["info", "--format", "{{json .SecurityOptions}}"]);
    assert!(info.contains("name=rootless"), "{info}");
    // Another user cannot reach it.
    let other = User::new();
    std::fs::set_permissions(u.xdg(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = other
        .prog(
            "/usr/bin/curl",
            &[
                "-sS",
                "--unix-socket",
                sock.to_str().unwrap(),
                "http://d/_ping",
            ],
        )
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", describe(&["curl"], &out));
    docker(&["rm", "-f", "api1"]);
    let _ = service.kill();
    let _ = service.wait();
}

/// The user's processes that are pasta (it runs as `passt.avx2` or
/// `passt` once re-executed).
fn pasta_processes(u: &User) -> Vec<i32> {
    u.processes()
        .into_iter()
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.starts_with("pasta") || c.starts_with("passt"))
        })
        .collect()
}

/// Nothing of a rootless container's network is left: no pasta, no
/// namespace file, no pid file.
fn assert_no_network_left(u: &User) {
    wait_until(10, "pasta to go", || pasta_processes(u).is_empty());
    for d in ["netns", "pasta"] {
        let dir = u.run_dir().join(d);
        let left: Vec<_> = std::fs::read_dir(&dir)
            .map(|r| r.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "{}: {left:?}", dir.display());
    }
    let pause = u.pause_pid().unwrap();
    let ns_mounts = std::fs::read_to_string(format!("/proc/{pause}/mountinfo")).unwrap();
    let netns = u.run_dir().join("netns");
    assert!(!ns_mounts.contains(netns.to_str().unwrap()), "{ns_mounts}");
}

/// A listener on the host's loopback answering each connection with
/// `reply` after reading a line; returns its port and what it read.
fn host_listener(reply: &'static str) -> (u16, std::sync::mpsc::Receiver<String>) {
    use std::io::{BufRead, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut line = String::new();
            let _ = std::io::BufReader::new(&s).read_line(&mut line);
            let _ = s.write_all(reply.as_bytes());
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    (port, rx)
}

/// Connects to `port` on the host's loopback and reads until the peer
/// closes; None while nothing answers (the container not listening yet).
fn fetch(port: u16) -> Option<String> {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    (!out.is_empty()).then_some(out)
}

#[test]
fn the_default_network_reaches_the_host_through_pasta() {
    let u = User::new();
    u.import_busybox();
    let (port, rx) = host_listener("HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\npong\n");
    // An interface with an address, a default route, a resolv.conf; the
    // gateway's address is the host's loopback (pasta maps it), so the
    // host's listener on 127.0.0.1 answers. No packet leaves the machine.
    // (wget, not `echo | nc`: Debian 12's pasta mishandles a connection
    // the container half-closes before the answer.)
    let script = format!(
        "ip -4 addr show | grep -q 'inet .* scope global' && echo addr; \
         grep -q '^nameserver ' /etc/resolv.conf && echo resolv; \
         gw=$(ip route | awk '/^default/ {{print $3}}'); \
         wget -q -O- http://$gw:{port}/first"
    );
    let out = u.ok(&["run", "--rm", "busybox", "sh", "-c", &script]);
    assert_eq!(out, "addr\nresolv\npong\n");
    let got = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(got.starts_with("GET /first "), "{got}");
    // --add-host X:host-gateway names the same address.
    let out = u.ok(&[
        "run",
        "--rm",
        "--add-host",
        "hostbox:host-gateway",
        "busybox",
        "wget",
        "-q",
        "-O-",
        &format!("http://hostbox:{port}/second"),
    ]);
    assert_eq!(out, "pong\n");
    let got = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(got.starts_with("GET /second "), "{got}");
    assert_no_network_left(&u);
}

#[test]
fn published_ports_are_answered_from_the_host_and_go_with_the_container() {
    let u = User::new();
    u.import_busybox();
    let fixed = free_port();
    let p = format!("127.0.0.1:{fixed}:80");
    let serve = "while true; do echo hello | nc -l -p 80; done";
    u.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        &p,
        "-p",
        "81",
        "busybox",
        "sh",
        "-c",
        &format!("{serve} & while true; do echo other | nc -l -p 81; done"),
    ]);
    wait_until(30, "the published port to answer", || {
        fetch(fixed).as_deref() == Some("hello\n")
    });
    // A second connection: pasta forwards every one, no proxy per port.
    wait_until(10, "a second answer", || {
        fetch(fixed).as_deref() == Some("hello\n")
    });
    // `-p 81`: a host port berth picked, shown by `port`, `ps` and inspect.
    let shown = u.ok(&["port", "web", "81"]);
    let picked: u16 = shown
        .trim()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("{shown}"));
    assert!(shown.starts_with("0.0.0.0:"), "{shown}");
    wait_until(30, "the picked port to answer", || {
        fetch(picked).as_deref() == Some("other\n")
    });
    assert_eq!(
        u.ok(&["port", "web", "80"]).trim(),
        format!("127.0.0.1:{fixed}")
    );
    assert!(u
        .ok(&["ps", "--format", "{{.Ports}}"])
        .contains(&format!("127.0.0.1:{fixed}->80/tcp")));
    // One pasta for the container, whatever the number of ports.
    assert_eq!(pasta_processes(&u).len(), 1);
    // A port already taken is refused in one line, nothing left running.
    let err = u.fails(
        &[
            "run", "-d", "--name", "clash", "-p", &p, "busybox", "sleep", "100",
        ],
        125,
    );
    assert!(err.contains("port is already allocated"), "{err}");
    assert_eq!(pasta_processes(&u).len(), 1);
    u.ok(&["rm", "-f", "clash"]);
    u.ok(&["stop", "-t", "1", "web"]);
    assert!(fetch(fixed).is_none());
    wait_until(10, "pasta to go at stop", || pasta_processes(&u).is_empty());
    u.ok(&["rm", "web"]);
    assert_no_network_left(&u);
}

#[test]
fn without_pasta_the_default_network_is_one_line_and_nothing_is_made() {
    let u = User::new();
    u.import_busybox();
    // A PATH with the uid mappers and nothing else.
    let bin = u.base.join("bin");
    std::fs::create_dir(&bin).unwrap();
    for h in ["newuidmap", "newgidmap"] {
        std::os::unix::fs::symlink(format!("/usr/bin/{h}"), bin.join(h)).unwrap();
    }
    let run = |args: &[&str]| {
        let mut c = u.cmd(args);
        c.env("PATH", &bin);
        c.output().unwrap()
    };
    let args = ["run", "--rm", "busybox", "true"];
    let err = check_failure(&args, &run(&args), 125);
    assert!(
        err.contains("pasta not found") && err.contains("passt package"),
        "{err}"
    );
    let args = ["create", "--name", "c", "-p", "8080:80", "busybox"];
    let err = check_failure(&args, &run(&args), 1);
    assert!(err.contains("pasta not found"), "{err}");
    assert_eq!(u.ok(&["ps", "-aq"]), "");
    // --network none needs no pasta.
    let out = run(&["run", "--rm", "--network", "none", "busybox", "echo", "ok"]);
    assert_eq!(text(&out.stdout), "ok\n", "{}", describe(&["run"], &out));
    assert_eq!(
        text(&run(&["info", "-f", "{{.RootlessNetworkCmd}}"]).stdout).trim(),
        "none"
    );
    assert_no_network_left(&u);
}

#[test]
fn a_killed_berth_leaves_no_pasta_the_next_command_does_not_end() {
    let u = User::new();
    u.import_busybox();
    // A foreground container, its berth killed while it runs.
    let mut child = u
        .cmd(&["run", "--name", "fg", "busybox", "sleep", "1000"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until(30, "the container to run with its pasta", || {
        u.ok(&["ps", "-q"]).trim().len() == 12 && pasta_processes(&u).len() == 1
    });
    child.kill().unwrap();
    child.wait().unwrap();
    u.ok(&["rm", "-f", "fg"]);
    assert_no_network_left(&u);
    // A detached one whose monitor is killed.
    let id = u.ok(&[
        "run", "-d", "--name", "bg", "-p", "80", "busybox", "sleep", "1000",
    ]);
    assert_eq!(pasta_processes(&u).len(), 1);
    let monitors: Vec<i32> = u
        .processes()
        .into_iter()
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                c.split('\0')
                    .next()
                    .is_some_and(|a| a.ends_with("/berth-monitor"))
                    && c.contains(id.trim())
            })
        })
        .collect();
    assert_eq!(monitors.len(), 1, "{monitors:?}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(monitors[0]),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_until(10, "the monitor to go", || !process_alive(monitors[0]));
    u.ok(&["rm", "-f", "bg"]);
    assert_no_network_left(&u);
}

/// `PROG ARGS` run by the test (root) inside the user's rootless network
/// namespace, which is kept in its pause process's mount namespace only.
fn in_rootless_netns(u: &User, prog_args: &[&str]) -> String {
    let pause = u.pause_pid().unwrap();
    let ns = u.run_dir().join("rootless-netns/net");
    let out = Command::new("nsenter")
        .arg(format!("--mount=/proc/{pause}/ns/mnt"))
        .arg("--")
        .arg("nsenter")
        .arg(format!("--net={}", ns.display()))
        .arg("--")
        .args(prog_args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(prog_args, &out));
    text(&out.stdout)
}

/// The user's processes whose program (argv[0]'s file name) is `name`.
fn processes_named(u: &User, name: &str) -> Vec<i32> {
    u.processes()
        .into_iter()
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                c.split(|b| *b == 0)
                    .next()
                    .and_then(|a| a.rsplit(|b| *b == b'/').next())
                    == Some(name.as_bytes())
            })
        })
        .collect()
}

#[test]
fn a_user_network_resolves_and_pings_by_name_and_rm_leaves_nothing() {
    let u = User::new();
    u.import_busybox();
    let id = u.ok(&["network", "create", "n1"]);
    assert_eq!(id.trim().len(), 64, "{id}");
    let names = u.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert_eq!(names, "host\nn1\nnone\n");
    let subnet = u.ok(&[
        "network",
        "inspect",
        "-f",
        "{{range .IPAM.Config}}{{.Subnet}}{{end}}",
        "n1",
    ]);
    let subnet = subnet.trim().to_owned();
    assert!(subnet.contains('/'), "{subnet}");
    for name in ["c1", "c2"] {
        u.ok(&[
            "run",
            "-d",
            "--network",
            "n1",
            "--name",
            name,
            "busybox",
            "sleep",
            "1000",
        ]);
    }
    // Each resolves the other through berth-dns (their /etc/hosts name
    // only themselves) and reaches it across the bridge.
    for (from, to) in [("c1", "c2"), ("c2", "c1")] {
        let hosts = u.ok(&["exec", from, "cat", "/etc/hosts"]);
        assert!(!hosts.contains(&format!("\t{to}\n")), "{hosts}");
        let out = u.ok(&["exec", from, "ping", "-c", "1", "-W", "5", to]);
        assert!(out.contains("1 packets received"), "{out}");
    }
    let resolv = u.ok(&["exec", "c1", "cat", "/etc/resolv.conf"]);
    let gateway = u.ok(&[
        "network",
        "inspect",
        "-f",
        "{{range .IPAM.Config}}{{.Gateway}}{{end}}",
        "n1",
    ]);
    assert!(
        resolv.contains(&format!("nameserver {}", gateway.trim())),
        "{resolv}"
    );
    assert_eq!(processes_named(&u, "berth-dns").len(), 1);
    // The bridge, its veths and the NAT are in the rootless namespace, not
    // on the host.
    let links = in_rootless_netns(&u, &["ip", "-o", "link"]);
    assert_eq!(links.matches("master ").count(), 2, "{links}");
    let rules = in_rootless_netns(&u, &["nft", "list", "ruleset"]);
    assert!(rules.contains(&subnet), "{rules}");
    // Bad input: one line, non-zero, nothing made.
    let err = u.fails(&["network", "create", "--subnet", &subnet, "n2"], 1);
    assert!(err.contains("Pool overlaps"), "{err}");
    let err = u.fails(&["network", "rm", "n1"], 1);
    assert!(
        err.contains("error while removing network") && err.contains("active endpoints"),
        "{err}"
    );
    let err = u.fails(
        &[
            "run",
            "--rm",
            "--network",
            "n1",
            "-p",
            "10.1.2.3:8080:80",
            "busybox",
            "true",
        ],
        125,
    );
    assert!(
        err.contains("rootless") && err.contains("10.1.2.3"),
        "{err}"
    );
    let err = u.fails(&["network", "create", "-d", "macvlan", "m1"], 1);
    assert!(err.contains("rootless") && err.contains("macvlan"), "{err}");
    assert_eq!(u.ok(&["network", "ls", "-q"]).lines().count(), 3);
    // rm of the containers, then of the network: no link but lo and
    // pasta's, no rule, no resolver, no namespace of a container.
    u.ok(&["rm", "-f", "c1", "c2"]);
    u.ok(&["network", "rm", "n1"]);
    assert_eq!(
        u.ok(&["network", "ls", "--format", "{{.Name}}"]),
        "host\nnone\n"
    );
    let links = in_rootless_netns(&u, &["ip", "-o", "link"]);
    assert_eq!(links.lines().count(), 2, "{links}");
    assert!(
        !links.contains("master ") && !links.contains("@"),
        "{links}"
    );
    let rules = in_rootless_netns(&u, &["nft", "list", "ruleset"]);
    assert!(!rules.contains("table"), "{rules}");
    wait_until(10, "berth-dns to go", || {
        processes_named(&u, "berth-dns").is_empty()
    });
    for d in ["netns", "pasta"] {
        let left: Vec<_> = std::fs::read_dir(u.run_dir().join(d))
            .map(|r| r.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "{d}: {left:?}");
    }
    // What stays while the pause process lives (as podman's rootless
    // namespace): the namespace and its one pasta; `system reset` ends both.
    assert_eq!(pasta_processes(&u).len(), 1);
    u.ok(&["system", "reset", "-f"]);
    assert_no_network_left(&u);
    let pause = u.pause_pid().unwrap();
    let ns_mounts = std::fs::read_to_string(format!("/proc/{pause}/mountinfo")).unwrap();
    assert!(!ns_mounts.contains("rootless-netns"), "{ns_mounts}");
}

#[test]
fn the_rootless_network_namespace_goes_with_its_pause_process() {
    let u = User::new();
    u.import_busybox();
    u.ok(&["network", "create", "n1"]);
    let first = u.pause_pid().unwrap();
    let pasta = pasta_processes(&u);
    assert_eq!(pasta.len(), 1, "{pasta:?}");
    // The keeper goes (as a user's logout takes it): the next command makes
    // a new namespace and the old one's pasta (which held it) goes.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_until(10, "the pause process to go", || !process_alive(first));
    u.ok(&["images", "-q"]);
    assert_ne!(u.pause_pid().unwrap(), first);
    wait_until(10, "the old pasta to go", || !process_alive(pasta[0]));
    // The network is the user's still: its bridge is made again in the new
    // rootless namespace.
    u.ok(&[
        "run",
        "-d",
        "--network",
        "n1",
        "--name",
        "c1",
        "busybox",
        "sleep",
        "1000",
    ]);
    let out = u.ok(&[
        "run",
        "--rm",
        "--network",
        "n1",
        "busybox",
        "ping",
        "-c",
        "1",
        "-W",
        "5",
        "c1",
    ]);
    assert!(out.contains("1 packets received"), "{out}");
    u.ok(&["rm", "-f", "c1"]);
    // A container that exits by itself: its monitor's exit command undoes
    // its network in the rootless namespace (and stops the resolver).
    u.ok(&[
        "run",
        "-d",
        "--network",
        "n1",
        "--name",
        "short",
        "busybox",
        "true",
    ]);
    wait_until(30, "its namespace and resolver to go", || {
        std::fs::read_dir(u.run_dir().join("netns")).map_or(true, |mut d| d.next().is_none())
            && processes_named(&u, "berth-dns").is_empty()
    });
    // (its exit is recorded after its network is undone)
    wait_until(30, "it to be recorded exited", || {
        u.ok(&["inspect", "-f", "{{.State.Status}}", "short"])
            .trim()
            == "exited"
    });
    u.ok(&["rm", "short"]);
    u.ok(&["network", "rm", "n1"]);
    u.ok(&["system", "reset", "-f"]);
    wait_until(10, "the rootless namespace's pasta to go", || {
        pasta_processes(&u).is_empty()
    });
}

/// A DNS server on `addr`:53 (UDP), an address of the host's loopback
/// as systemd-resolved's 127.0.0.53 is: an A query for `name` gets
/// `answer`, any other query NOERROR without records. Returns how many
/// queries for `name` it answered. (It serves until the tests end.)
fn loopback_resolver(
    addr: std::net::Ipv4Addr,
    name: &'static str,
    answer: [u8; 4],
) -> std::sync::Arc<std::sync::atomic::AtomicUsize> {
    let sock = std::net::UdpSocket::bind((addr, 53)).unwrap();
    let asked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = asked.clone();
    std::thread::spawn(move || loop {
        let mut buf = [0u8; 512];
        let Ok((n, from)) = sock.recv_from(&mut buf) else {
            return;
        };
        let q = &buf[..n];
        // The question: labels from byte 12 to a zero, then type and class.
        let Some(end) = q.get(12..).and_then(|b| b.iter().position(|x| *x == 0)) else {
            continue;
        };
        let end = 12 + end + 5;
        if n < end {
            continue;
        }
        let (mut labels, mut i) = (Vec::new(), 12);
        while q[i] != 0 {
            let len = q[i] as usize;
            labels.push(String::from_utf8_lossy(&q[i + 1..i + 1 + len]).to_lowercase());
            i += 1 + len;
        }
        let mut r = q[..end].to_vec();
        r[2] |= 0x80;
        r[3] = 0x80;
        r[6..12].copy_from_slice(&[0, 0, 0, 0, 0, 0]);
        if labels.join(".") == name {
            if q[end - 4..end - 2] == [0, 1] {
                r[7] = 1;
                r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
                r.extend_from_slice(&answer);
            }
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        let _ = sock.send_to(&r, from);
    });
    asked
}

/// A user with busybox whose berth sees a resolv.conf naming only
/// [`loopback_resolver`] at `addr` (answering `outside.test` with
/// 192.0.2.7), and the count of the queries it answered.
fn user_with_loopback_resolver(
    addr: std::net::Ipv4Addr,
) -> (User, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let asked = loopback_resolver(addr, "outside.test", [192, 0, 2, 7]);
    let mut u = User::new();
    let rc = u.base.join("resolv.conf");
    std::fs::write(&rc, format!("nameserver {addr}\n")).unwrap();
    u.resolv_conf = Some(rc);
    u.import_busybox();
    (u, asked)
}

#[test]
fn a_user_network_resolves_through_a_loopback_resolver_of_the_host() {
    // The host's only resolver is on its loopback (as systemd-resolved's
    // 127.0.0.53): a responder of the test's, so no packet leaves the
    // machine, named by the resolv.conf the user's berth sees.
    let addr = std::net::Ipv4Addr::new(127, 53, 16, 53);
    let (u, asked) = user_with_loopback_resolver(addr);
    assert_eq!(
        u.ok(&[
            "run",
            "--rm",
            "--network",
            "host",
            "busybox",
            "cat",
            "/etc/resolv.conf"
        ]),
        format!("nameserver {addr}\n")
    );
    u.ok(&["network", "create", "n1"]);
    u.ok(&[
        "run",
        "-d",
        "--network",
        "n1",
        "--name",
        "c1",
        "busybox",
        "sleep",
        "1000",
    ]);
    // berth-dns, in the rootless network namespace where that address is
    // the namespace's own loopback, reaches the host's through pasta; the
    // container's names still answer from berth-dns itself.
    let out = u.run(&["exec", "c1", "nslookup", "outside.test"]);
    assert!(
        text(&out.stdout).contains("192.0.2.7"),
        "{}",
        describe(&["nslookup"], &out)
    );
    assert!(asked.load(std::sync::atomic::Ordering::SeqCst) >= 1);
    let out = u.ok(&["exec", "c1", "nslookup", "c1"]);
    assert!(out.contains("Name:"), "{out}");
    u.ok(&["rm", "-f", "c1"]);
    u.ok(&["system", "reset", "-f"]);
    assert_no_network_left(&u);
}

#[test]
fn the_default_network_resolves_through_a_loopback_resolver_of_the_host() {
    // As above, on the default network: pasta's, then slirp4netns's.
    let addr = std::net::Ipv4Addr::new(127, 53, 16, 54);
    let (u, asked) = user_with_loopback_resolver(addr);
    let bin = u.base.join("bin");
    std::fs::create_dir(&bin).unwrap();
    for h in ["newuidmap", "newgidmap", "slirp4netns"] {
        std::os::unix::fs::symlink(format!("/usr/bin/{h}"), bin.join(h)).unwrap();
    }
    for (path, via) in [(None, "169.254.1.1"), (Some(&bin), "10.0.2.3")] {
        let run = |args: &[&str]| {
            let mut c = u.cmd(args);
            if let Some(p) = path {
                c.env("PATH", p);
            }
            c.output().unwrap()
        };
        // The address the network forwards to the host's resolver, not a
        // public resolver (checked first: nothing is asked off the host).
        let args = ["run", "--rm", "busybox", "cat", "/etc/resolv.conf"];
        let out = run(&args);
        assert_eq!(
            text(&out.stdout),
            format!("nameserver {via}\n"),
            "{}",
            describe(&args, &out)
        );
        let before = asked.load(std::sync::atomic::Ordering::SeqCst);
        let args = ["run", "--rm", "busybox", "nslookup", "outside.test"];
        let out = run(&args);
        assert!(
            text(&out.stdout).contains("192.0.2.7"),
            "{}",
            describe(&args, &out)
        );
        assert!(asked.load(std::sync::atomic::Ordering::SeqCst) > before);
    }
    assert_no_network_left(&u);
}

#[test]
fn a_user_network_s_published_ports_are_answered_from_the_host() {
    let u = User::new();
    u.import_busybox();
    u.ok(&["network", "create", "n1"]);
    let fixed = free_port();
    let p = format!("127.0.0.1:{fixed}:80");
    u.ok(&[
        "run",
        "-d",
        "--network",
        "n1",
        "--name",
        "web",
        "-p",
        &p,
        "-p",
        "81",
        "busybox",
        "sh",
        "-c",
        "(while true; do echo other | nc -l -p 81; done) & while true; do echo hello | nc -l -p 80; done",
    ]);
    // From the host's loopback: pasta into the rootless namespace, berth's
    // DNAT there to the container.
    wait_until(30, "the published port to answer", || {
        fetch(fixed).as_deref() == Some("hello\n")
    });
    let shown = u.ok(&["port", "web", "81"]);
    let picked: u16 = shown
        .trim()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("{shown}"));
    wait_until(30, "the picked port to answer", || {
        fetch(picked).as_deref() == Some("other\n")
    });
    // A port already taken on the host: one line, nothing left running.
    let err = u.fails(
        &[
            "run",
            "-d",
            "--network",
            "n1",
            "--name",
            "clash",
            "-p",
            &p,
            "busybox",
            "sleep",
            "100",
        ],
        125,
    );
    assert!(err.contains("port is already allocated"), "{err}");
    // The rootless namespace's pasta and the container's forwarder.
    assert_eq!(pasta_processes(&u).len(), 2);
    u.ok(&["rm", "-f", "clash"]);
    u.ok(&["stop", "-t", "1", "web"]);
    assert!(fetch(fixed).is_none());
    wait_until(10, "the forwarder to go at stop", || {
        pasta_processes(&u).len() == 1
    });
    let rules = in_rootless_netns(&u, &["nft", "list", "ruleset"]);
    assert!(!rules.contains(&format!("dport {fixed}")), "{rules}");
    u.ok(&["rm", "web"]);
    u.ok(&["network", "rm", "n1"]);
    u.ok(&["system", "reset", "-f"]);
    assert_no_network_left(&u);
}

#[test]
fn without_pasta_slirp4netns_carries_the_default_network() {
    let u = User::new();
    u.import_busybox();
    // A PATH with the uid mappers and slirp4netns, no pasta.
    let bin = u.base.join("bin");
    std::fs::create_dir(&bin).unwrap();
    for h in ["newuidmap", "newgidmap", "slirp4netns"] {
        std::os::unix::fs::symlink(format!("/usr/bin/{h}"), bin.join(h)).unwrap();
    }
    let run = |args: &[&str]| {
        let mut c = u.cmd(args);
        c.env("PATH", &bin);
        let out = c.output().unwrap();
        assert!(out.status.success(), "{}", describe(args, &out));
        text(&out.stdout)
    };
    let slirps = || processes_named(&u, "slirp4netns");
    assert_eq!(
        run(&["info", "-f", "{{.RootlessNetworkCmd}}"]).trim(),
        "slirp4netns"
    );
    // Its gateway (host-gateway) is the host's loopback.
    let (port, rx) = host_listener("HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\npong\n");
    let out = run(&[
        "run",
        "--rm",
        "--add-host",
        "hostbox:host-gateway",
        "busybox",
        "wget",
        "-q",
        "-O-",
        &format!("http://hostbox:{port}/slirp"),
    ]);
    assert_eq!(out, "pong\n");
    let got = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(got.starts_with("GET /slirp "), "{got}");
    // -p through its API: one slirp4netns per container, no proxy per port.
    let fixed = free_port();
    run(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        &format!("127.0.0.1:{fixed}:80"),
        "-p",
        "81",
        "busybox",
        "sh",
        "-c",
        "(while true; do echo other | nc -l -p 81; done) & while true; do echo hello | nc -l -p 80; done",
    ]);
    wait_until(30, "the published port to answer", || {
        fetch(fixed).as_deref() == Some("hello\n")
    });
    let shown = run(&["port", "web", "81"]);
    let picked: u16 = shown.trim().rsplit(':').next().unwrap().parse().unwrap();
    wait_until(30, "the picked port to answer", || {
        fetch(picked).as_deref() == Some("other\n")
    });
    assert_eq!(slirps().len(), 1);
    assert!(pasta_processes(&u).is_empty());
    run(&["stop", "-t", "1", "web"]);
    assert!(fetch(fixed).is_none());
    wait_until(10, "slirp4netns to go at stop", || slirps().is_empty());
    run(&["rm", "web"]);
    assert_no_network_left(&u);
}

/// The container's interface as it sees it: "ADDRESS/PREFIX GATEWAY MAC".
fn seen_inside(u: &User, name: &str) -> String {
    let script = "a=$(ip -4 -o addr show scope global | awk '{print $4}' | head -1); \
                  g=$(ip route | awk '/^default/ {print $3}'); \
                  m=$(ip link | awk '/link\\/ether/ {print $2}' | head -1); \
                  echo \"$a $g $m\"";
    u.ok(&["exec", name, "sh", "-c", script]).trim().to_owned()
}

/// `inspect`'s NetworkSettings of container `name`.
fn network_settings(u: &User, name: &str) -> serde_json::Value {
    let out = u.ok(&["inspect", "-f", "{{json .NetworkSettings}}", name]);
    serde_json::from_str(out.trim()).unwrap()
}

#[test]
fn hosts_names_a_default_network_container_at_its_address() {
    let u = User::new();
    u.import_busybox();
    // pasta copies the host's address: the container's /etc/hosts names it
    // there, as Docker's (and root's bridge container's) does.
    let id = u.ok(&["run", "-d", "--name", "p1", "busybox", "sleep", "1000"]);
    let short = &id.trim()[..12];
    let inside = seen_inside(&u, "p1");
    let ip = inside.split('/').next().unwrap();
    assert!(!ip.is_empty(), "{inside}");
    let hosts = u.ok(&["exec", "p1", "cat", "/etc/hosts"]);
    assert!(hosts.contains(&format!("{ip}\t{short}\n")), "{hosts}");
    u.ok(&["rm", "-f", "p1"]);
    assert_no_network_left(&u);
}

#[test]
fn inspect_and_hosts_give_a_rootless_container_s_address() {
    let u = User::new();
    u.import_busybox();
    // The default network (pasta): the address pasta copied from the host,
    // under "bridge" as Docker's default network, and at the top level.
    u.ok(&["run", "-d", "--name", "p1", "busybox", "sleep", "1000"]);
    let inside = seen_inside(&u, "p1");
    let s = network_settings(&u, "p1");
    let e = &s["Networks"]["bridge"];
    let shown = format!(
        "{}/{} {} {}",
        e["IPAddress"].as_str().unwrap(),
        e["IPPrefixLen"],
        e["Gateway"].as_str().unwrap(),
        e["MacAddress"].as_str().unwrap()
    );
    assert_eq!(shown, inside, "{s}");
    assert!(!e["IPAddress"].as_str().unwrap().is_empty(), "{s}");
    for k in ["IPAddress", "IPPrefixLen", "Gateway", "MacAddress"] {
        assert_eq!(s[k], e[k], "{k}: {s}");
    }
    // Stopped: the entry stays, without an address (Docker's).
    u.ok(&["stop", "-t", "0", "p1"]);
    let s = network_settings(&u, "p1");
    assert_eq!(s["Networks"]["bridge"]["IPAddress"], "", "{s}");
    assert_eq!(s["IPAddress"], "", "{s}");
    u.ok(&["rm", "p1"]);
    assert_no_network_left(&u);
    // A user network: the same fields as root's.
    u.ok(&["network", "create", "n1"]);
    let id = u.ok(&[
        "run",
        "-d",
        "--network",
        "n1",
        "--name",
        "u1",
        "busybox",
        "sleep",
        "1000",
    ]);
    let short = &id.trim()[..12];
    let inside = seen_inside(&u, "u1");
    let s = network_settings(&u, "u1");
    let e = &s["Networks"]["n1"];
    let shown = format!(
        "{}/{} {} {}",
        e["IPAddress"].as_str().unwrap(),
        e["IPPrefixLen"],
        e["Gateway"].as_str().unwrap(),
        e["MacAddress"].as_str().unwrap()
    );
    assert_eq!(shown, inside, "{s}");
    let ip = e["IPAddress"].as_str().unwrap();
    let hosts = u.ok(&["exec", "u1", "cat", "/etc/hosts"]);
    assert!(hosts.contains(&format!("{ip}\t{short}\n")), "{hosts}");
    u.ok(&["rm", "-f", "u1"]);
    u.ok(&["network", "rm", "n1"]);
    u.ok(&["system", "reset", "-f"]);
    wait_until(10, "the rootless namespace's pasta to go", || {
        pasta_processes(&u).is_empty()
    });
}

#[test]
fn under_a_custom_root_the_next_command_ends_a_dead_namespace_s_network() {
    a_dead_namespace_s_network_under_a_custom_root_ends(true);
}

#[test]
fn under_another_root_the_next_command_ends_a_dead_namespace_s_network() {
    a_dead_namespace_s_network_under_a_custom_root_ends(false);
}

/// A user network's processes under `--root` (its pasta and berth-dns)
/// outlive the user namespace they served (its pause process and every
/// monitor gone): the next command that makes a new namespace ends them,
/// under that root (`same_root`) or any other.
fn a_dead_namespace_s_network_under_a_custom_root_ends(same_root: bool) {
    let u = User::new();
    let root = u.home().join("custom");
    let r = root.to_str().unwrap();
    u.file("bb.tar", busybox_tar());
    u.ok(&["--root", r, "import", "bb.tar", "busybox"]);
    u.ok(&["--root", r, "network", "create", "n1"]);
    u.ok(&[
        "--root",
        r,
        "run",
        "-d",
        "--network",
        "n1",
        "--name",
        "c1",
        "busybox",
        "sleep",
        "1000",
    ]);
    // A container of the default network with a published port (its own
    // pasta) and one of the user network with one (a forwarder pasta).
    for net in ["bridge", "n1"] {
        u.ok(&[
            "--root",
            r,
            "run",
            "-d",
            "--network",
            net,
            "-p",
            "127.0.0.1::80",
            "busybox",
            "sleep",
            "1000",
        ]);
    }
    let pasta = pasta_processes(&u);
    assert_eq!(pasta.len(), 3, "{pasta:?}");
    let dns = processes_named(&u, "berth-dns");
    assert_eq!(dns.len(), 1, "{dns:?}");
    assert!(root.join("run/rootless-netns/pasta.pid").exists());
    // The keeper goes, and with it every process of the namespace but the
    // pastas and berth-dns (as a logout takes them): the next command,
    // which uses no network, ends those too.
    let first = u.pause_pid().unwrap();
    let mut doomed = vec![first];
    doomed.extend(processes_named(&u, "berth-monitor"));
    doomed.extend(processes_named(&u, "sleep"));
    for pid in &doomed {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(*pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    wait_until(10, "the namespace's processes to go", || {
        doomed.iter().all(|p| !process_alive(*p))
    });
    if same_root {
        u.ok(&["--root", r, "images", "-q"]);
    } else {
        u.ok(&["images", "-q"]);
    }
    assert_ne!(u.pause_pid().unwrap(), first);
    wait_until(10, "the old pastas and berth-dns to go", || {
        !pasta.iter().any(|p| process_alive(*p)) && !process_alive(dns[0])
    });
    let ids = u.ok(&["--root", r, "ps", "-aq"]);
    let mut rm = vec!["--root", r, "rm", "-f"];
    rm.extend(ids.lines());
    u.ok(&rm);
    u.ok(&["--root", r, "system", "reset", "-f"]);
    wait_until(10, "the user's pasta to go", || {
        pasta_processes(&u).is_empty()
    });
}

/// The host's "ADDRESS/PREFIX" pasta copies for IPv6 (the first global
/// address of its IPv6 default route's interface) and that route's
/// gateway, or why there is none.
fn host_ipv6() -> Result<(String, String), String> {
    let ip = |args: &[&str]| text(&Command::new("ip").args(args).output().unwrap().stdout);
    let route = ip(&["-6", "route", "show", "default"]);
    let words: Vec<&str> = route.split_whitespace().collect();
    let after = |w: &str| words.iter().position(|x| *x == w).map(|i| words[i + 1]);
    let (Some(gw), Some(dev)) = (after("via"), after("dev")) else {
        return Err(format!("the host has no IPv6 default route ({route:?})"));
    };
    let addrs = ip(&["-6", "-o", "addr", "show", "dev", dev, "scope", "global"]);
    let Some(addr) = addrs.split_whitespace().nth(3) else {
        return Err(format!("the host has no global IPv6 address on {dev}"));
    };
    Ok((addr.to_owned(), gw.to_owned()))
}

#[test]
fn the_default_network_has_the_host_s_ipv6_when_it_has_one() {
    let (addr, gw) = match host_ipv6() {
        Ok(v) => v,
        Err(why) => {
            // (pasta has no IPv6 to copy: the network is IPv4 only)
            eprintln!("skipped: {why}");
            return;
        }
    };
    let u = User::new();
    u.import_busybox();
    let v6_inside = |name: &str| {
        u.ok(&[
            "exec",
            name,
            "sh",
            "-c",
            "ip -6 -o addr show scope global | awk '{print $4}'; ip -6 route | awk '/^default/ {print $3}'",
        ])
    };
    // As Docker's default network: IPv4 only unless daemon.json says `ipv6`.
    u.ok(&["run", "-d", "--name", "p4", "busybox", "sleep", "1000"]);
    assert_eq!(v6_inside("p4"), "");
    assert!(network_settings(&u, "p4")["GlobalIPv6Address"]
        .as_str()
        .unwrap_or("")
        .is_empty());
    u.ok(&["rm", "-f", "p4"]);
    let config = u.file(
        "daemon.json",
        br#"{"ipv6": true, "fixed-cidr-v6": "fd7c:1::/64"}"#,
    );
    let out = u
        .cmd(&["run", "-d", "--name", "p6", "busybox", "sleep", "1000"])
        .env("BERTH_DAEMON_JSON", &config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = String::from_utf8_lossy(&out.stdout).into_owned();
    let short = &id.trim()[..12];
    assert_eq!(v6_inside("p6"), format!("{addr}\n{gw}\n"));
    let s = network_settings(&u, "p6");
    let (ip6, prefix) = addr.split_once('/').unwrap();
    let e = &s["Networks"]["bridge"];
    assert_eq!(e["GlobalIPv6Address"], ip6, "{s}");
    assert_eq!(e["GlobalIPv6PrefixLen"].to_string(), prefix, "{s}");
    assert_eq!(e["IPv6Gateway"], gw.as_str(), "{s}");
    assert_eq!(s["GlobalIPv6Address"], ip6, "{s}");
    let hosts = u.ok(&["exec", "p6", "cat", "/etc/hosts"]);
    assert!(hosts.contains(&format!("{ip6}\t{short}\n")), "{hosts}");
    u.ok(&["rm", "-f", "p6"]);
    assert_no_network_left(&u);
}
