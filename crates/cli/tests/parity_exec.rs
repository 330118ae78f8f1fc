//! Docker parity of `exec` and its neighbours, each checked against what a
//! dockerd 20.10 does for the same commands: `exec --privileged`'s
//! capabilities, the supplementary groups of `-u USER`, the size of an
//! `exec -t`'s terminal, volume labels, and `--version`.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::Value;

/// The `Cap*:` lines of `grep Cap /proc/self/status` as (name, mask).
fn caps(out: &str) -> Vec<(String, u64)> {
    out.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.trim().to_owned(), u64::from_str_radix(v.trim(), 16).ok()?))
        })
        .collect()
}

fn cap(set: &[(String, u64)], name: &str) -> u64 {
    set.iter().find(|(k, _)| k == name).unwrap().1
}

/// Docker: an `exec --privileged` in an ordinary container gets every
/// capability (runc's exec starts from the runtime's own bounding set, on
/// this machine the host's): CapPrm = CapEff = CapBnd = all the host has,
/// CapInh empty (20.10.14 on). berth failed in the runtime with a capset
/// EPERM: it asked for capabilities the host's bounding set lacks.
#[test]
fn exec_privileged_gets_the_hosts_capabilities() {
    let b = Berth::with_busybox();
    b.ok(&["run", "-d", "--name", "pc", "busybox", "sleep", "1000"]);
    let host = caps(&std::fs::read_to_string("/proc/self/status").unwrap());
    let plain = caps(&b.ok(&["exec", "pc", "grep", "Cap", "/proc/self/status"]));
    let privileged = caps(&b.ok(&[
        "exec",
        "--privileged",
        "pc",
        "grep",
        "Cap",
        "/proc/self/status",
    ]));
    let all = cap(&host, "CapBnd");
    assert_eq!(cap(&privileged, "CapBnd"), all, "{privileged:?}");
    assert_eq!(cap(&privileged, "CapPrm"), all, "{privileged:?}");
    assert_eq!(cap(&privileged, "CapEff"), all, "{privileged:?}");
    assert_eq!(cap(&privileged, "CapInh"), 0, "{privileged:?}");
    assert_eq!(cap(&privileged, "CapAmb"), 0, "{privileged:?}");
    // An exec without it keeps the container's (Docker's default 14).
    assert_eq!(cap(&plain, "CapEff"), 0xa80425fb, "{plain:?}");
    b.ok(&["rm", "-f", "pc"]);
}

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nu1:x:1000:1000::/home/u1:/bin/sh\n";
const GROUP: &str = "root:x:0:\nu1:x:1000:\ng2:x:2000:u1\ng3:x:3000:u1,root\n";

/// The `groups=` part of `id`'s output.
fn groups(id: &str) -> String {
    id.trim()
        .split(' ')
        .find(|f| f.starts_with("groups="))
        .unwrap_or("groups=")
        .to_owned()
}

/// Docker (20.10, with the passwd and group files above):
/// `exec -u u1 C id` → groups=1000(u1),2000(g2),3000(g3); `exec C id` →
/// groups=0(root),3000(g3); `exec -u u1:g2` → groups=2000(g2) (a group
/// given: no lookup); `exec -u 4242` → groups=0(root); the same for `run`.
/// berth gave an exec no supplementary groups, and `run` left the primary
/// group out of them (and looked them up with a group given).
#[test]
fn user_gets_the_groups_of_etc_group_in_exec_and_run() {
    let b = Berth::with_busybox();
    b.ok(&["run", "-d", "--name", "gc", "busybox", "sleep", "1000"]);
    b.ok(&[
        "exec",
        "gc",
        "sh",
        "-c",
        &format!("printf '{PASSWD}' > /etc/passwd; printf '{GROUP}' > /etc/group"),
    ]);
    b.ok(&["commit", "gc", "grp:latest"]);
    b.ok(&["rm", "-f", "gc"]);
    b.ok(&["run", "-d", "--name", "gc", "grp", "sleep", "1000"]);
    let cases = [
        (Some("u1"), "groups=1000(u1),2000(g2),3000(g3)"),
        (Some("1000"), "groups=1000(u1),2000(g2),3000(g3)"),
        (Some("u1:g2"), "groups=2000(g2)"),
        (Some("1000:3000"), "groups=3000(g3)"),
        (Some("4242"), "groups=0(root)"),
        (Some("4242:77"), "groups=77"),
        (None, "groups=0(root),3000(g3)"),
    ];
    for (user, want) in cases {
        let mut args = vec!["exec"];
        if let Some(u) = user {
            args.extend(["-u", u]);
        }
        args.extend(["gc", "id"]);
        assert_eq!(groups(&b.ok(&args)), want, "exec -u {user:?}");
    }
    for (user, want) in cases {
        let mut args = vec!["run", "--rm"];
        if let Some(u) = user {
            args.extend(["-u", u]);
        }
        args.extend(["grp", "id"]);
        assert_eq!(groups(&b.ok(&args)), want, "run -u {user:?}");
    }
    assert_eq!(
        groups(&b.ok(&["run", "--rm", "-u", "u1", "--group-add", "77", "grp", "id"])),
        "groups=77,1000(u1),2000(g2),3000(g3)"
    );
    b.ok(&["rm", "-f", "gc"]);
    b.ok(&["rmi", "grp"]);
}

/// Docker sizes an exec's pty from the client's terminal: `stty size` in
/// `exec -t` prints the caller's rows and columns (in `exec -it` Docker's
/// client resizes after the start, a race a short command can lose; berth
/// sizes the pty before the command runs, for both). berth's `exec -t`
/// printed "stty: standard input" (no size), its `exec -it` raced.
#[test]
fn exec_tty_gets_the_callers_window_size() {
    let b = Berth::with_busybox();
    b.ok(&["run", "-d", "--name", "tc", "busybox", "sleep", "1000"]);
    let line = format!(
        "stty rows 31 cols 101; {0} --root '{1}' exec -t tc stty size; \
         {0} --root '{1}' exec -it tc stty size",
        env!("CARGO_BIN_EXE_berth"),
        b.root().display()
    );
    let out = b.script_cmd(&line).output().unwrap();
    let s = text(&out.stdout);
    assert!(out.status.success(), "{s} {}", text(&out.stderr));
    // (A `^@` may precede a line: script's end of input, echoed.)
    assert_eq!(s.matches("31 101\r").count(), 2, "{s:?}");
    b.ok(&["rm", "-f", "tc"]);
}

/// Docker: `volume create --label k=v --label flag NAME`; inspect shows
/// `"Labels": {"flag": "", "k": "v"}` (null without labels), and `volume ls
/// -f label=k`, `-f label=k=v` list it while `-f label=k=w` does not.
#[test]
fn volume_labels_are_kept_shown_and_filtered() {
    let b = Berth::with_busybox();
    b.ok(&[
        "volume", "create", "--label", "k=v", "--label", "flag", "lv",
    ]);
    b.ok(&["volume", "create", "plain"]);
    let v: Value = serde_json::from_str(&b.ok(&["volume", "inspect", "lv"])).unwrap();
    assert_eq!(
        v[0]["Labels"],
        serde_json::json!({"flag": "", "k": "v"}),
        "{v}"
    );
    let v: Value = serde_json::from_str(&b.ok(&["volume", "inspect", "plain"])).unwrap();
    // Docker 20.10's CLI sends empty maps, which its daemon shows as {}
    // (the v28 CLI sends none: null); a volume made by `-v` has null.
    assert_eq!(v[0]["Labels"], serde_json::json!({}), "{v}");
    assert_eq!(v[0]["Options"], serde_json::json!({}), "{v}");
    b.ok(&["run", "--rm", "-v", "byrun:/x", "busybox", "true"]);
    let v: Value = serde_json::from_str(&b.ok(&["volume", "inspect", "byrun"])).unwrap();
    assert_eq!(v[0]["Labels"], Value::Null, "{v}");
    assert_eq!(v[0]["Options"], Value::Null, "{v}");
    let ls = |f: &str| b.ok(&["volume", "ls", "-q", "-f", f]);
    assert_eq!(ls("label=k"), "lv\n");
    assert_eq!(ls("label=k=v"), "lv\n");
    assert_eq!(ls("label=flag"), "lv\n");
    assert_eq!(ls("label=k=w"), "");
    assert_eq!(
        b.ok(&[
            "volume",
            "ls",
            "--format",
            "{{.Name}} {{.Labels}}",
            "-f",
            "label=k"
        ]),
        "lv flag=,k=v\n"
    );
    b.ok(&["volume", "rm", "lv", "plain"]);
}

/// Docker: `docker --version` → "Docker version 20.10.24+dfsg1, build
/// 297e128"; berth: "berth version 0.1.0, build <commit or unknown>".
#[test]
fn version_flag_prints_dockers_shape() {
    let b = Berth::new();
    for flag in ["--version", "-v"] {
        let out = b.ok(&[flag]);
        let rest = out
            .strip_prefix(&format!(
                "berth version {}, build ",
                env!("CARGO_PKG_VERSION")
            ))
            .unwrap_or_else(|| panic!("{out:?}"));
        let build = rest.trim_end_matches('\n');
        assert!(
            build == "unknown"
                || (build.len() == 7 && build.bytes().all(|c| c.is_ascii_hexdigit())),
            "{out:?}"
        );
    }
}

/// A program the kernel will not execute (found and executable, but of a
/// bad format), as dockerd 20.10 with runc: the container starts, says
/// `exec /bad: exec format error` on its stderr (so in its logs) and exits 1;
/// `run -d` succeeds; `exec` exits 1 with the same line, `exec -d` 0.
/// berth failed the start with 125 and its own wording.
#[test]
fn a_program_of_a_bad_format_exits_1_as_in_docker() {
    use std::os::unix::fs::PermissionsExt;
    let b = Berth::with_busybox();
    let file = b.scratch().join("bad");
    std::fs::write(&file, b"not a program\n\x00\x01").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).unwrap();
    let file = file.to_str().unwrap();
    let want = "exec /bad: exec format error";
    b.ok(&[
        "create",
        "--name",
        "fmt",
        "--network",
        "none",
        "busybox",
        "/bad",
    ]);
    b.ok(&["cp", file, "fmt:/bad"]);
    let out = b.run(&["start", "-a", "fmt"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&["start"], &out));
    assert_eq!(text(&out.stderr).trim(), want);
    assert_eq!(
        b.ok(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            "fmt"
        ]),
        "exited 1\n"
    );
    assert_eq!(b.ok(&["logs", "fmt"]), "");
    let logs = b.run(&["logs", "fmt"]);
    assert_eq!(text(&logs.stderr).trim(), want);
    b.ok(&["rm", "fmt"]);
    // exec into a running container.
    b.ok(&[
        "run",
        "-di",
        "--name",
        "up",
        "--network",
        "none",
        "busybox",
        "cat",
    ]);
    b.ok(&["cp", file, "up:/bad"]);
    let out = b.run(&["exec", "up", "/bad"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&["exec"], &out));
    assert_eq!(text(&out.stderr).trim(), want);
    b.ok(&["exec", "-d", "up", "/bad"]);
    b.ok(&["rm", "-f", "up"]);
}
