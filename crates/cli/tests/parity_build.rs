//! `berth build` against Docker 20.10's behaviour (issue 12): the default
//! PATH, the flags Docker's CLI has (and BuildKit's RUN --mount), and
//! their bad inputs.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::path::{Path, PathBuf};

/// A flag value Docker's CLI refuses: exit 125, `invalid argument ...`
/// and the pointer to the command's help.
fn flag_error(b: &Berth, args: &[&str], flag: &str) {
    let out = b.run(args);
    let what = describe(args, &out);
    assert_eq!(out.status.code(), Some(125), "{what}");
    let err = text(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{what}");
    assert!(
        lines[0].starts_with("invalid argument ") && lines[0].contains(&format!("{flag}\" flag: ")),
        "{what}"
    );
    assert_eq!(lines[1], "See 'berth build --help'.", "{what}");
}

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Docker's builder adds the default PATH at FROM when the base has none
/// (checked with dockerd 20.10: `FROM busybox` on an imported busybox
/// without Env, then `ENV PATH=/opt/bin:$PATH`).
#[test]
fn build_adds_the_default_path_when_the_base_has_none() {
    let b = Berth::with_busybox();
    assert!(b.inspect("busybox")["Config"]["Env"].is_null());
    let df = "FROM busybox\nENV PATH=/opt/bin:$PATH\nRUN echo \"path=$PATH\"\n";
    let ctx = context(&b, "ctx", &[("Dockerfile", df)]);
    let out = b.ok(&["build", "-t", "p:1", s(&ctx)]);
    assert!(
        out.contains(
            "path=/opt/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
        ),
        "{out}"
    );
    assert_eq!(
        b.inspect("p:1")["Config"]["Env"],
        serde_json::json!([format!("PATH=/opt/bin:{}", &DEFAULT_PATH[5..])])
    );
    // A step that does not touch ENV writes it too, as Docker's does.
    let ctx2 = context(&b, "ctx2", &[("Dockerfile", "FROM busybox\nLABEL a=b\n")]);
    b.ok(&["build", "-q", "-t", "p:2", s(&ctx2)]);
    assert_eq!(
        b.inspect("p:2")["Config"]["Env"],
        serde_json::json!([DEFAULT_PATH])
    );
    // A base PATH is kept as it is.
    let ctx3 = context(&b, "ctx3", &[("Dockerfile", "FROM p:1\nLABEL c=d\n")]);
    b.ok(&["build", "-q", "-t", "p:3", s(&ctx3)]);
    assert_eq!(
        b.inspect("p:3")["Config"]["Env"],
        b.inspect("p:1")["Config"]["Env"]
    );
}

/// An unknown flag after a flag's value: the pointer names the command
/// only (it said "See 'berth build t2 --help'").
#[test]
fn unknown_build_flag_points_to_the_commands_help() {
    let b = Berth::new();
    let out = b.run(&["build", "-t", "t2", "--bogus-flag", "."]);
    assert_eq!(out.status.code(), Some(125), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr),
        "unknown flag: --bogus-flag\nSee 'berth build --help'.\n"
    );
    let out = b.run(&["image", "build", "--tag", "x", "--nope", "."]);
    assert_eq!(
        text(&out.stderr),
        "unknown flag: --nope\nSee 'berth image build --help'.\n"
    );
    // No command: berth's own help, without a stray space.
    let out = b.run(&["--nope"]);
    assert_eq!(
        text(&out.stderr),
        "unknown flag: --nope\nSee 'berth --help'.\n"
    );
}

/// `--squash` needs Docker's experimental mode: refused in one line.
#[test]
fn build_squash_is_refused_in_one_line() {
    let b = Berth::with_busybox();
    let ctx = context(&b, "ctx", &[("Dockerfile", "FROM busybox\n")]);
    let err = b.fails(&["build", "--squash", s(&ctx)], 1);
    assert!(err.contains("--squash"), "{err}");
    assert!(b.ok(&["images", "-q"]).lines().count() == 1);
}

/// `--progress` takes Docker's values; anything else fails as BuildKit's CLI fails it.
#[test]
fn build_progress_flag() {
    let b = Berth::with_busybox();
    let ctx = context(&b, "ctx", &[("Dockerfile", "FROM busybox\nLABEL a=b\n")]);
    for p in ["auto", "plain", "tty"] {
        b.ok(&["build", "-q", "--progress", p, s(&ctx)]);
    }
    b.ok(&["build", "-q", "--progress=plain", s(&ctx)]);
    // As Docker 20.10's CLI with BuildKit says it.
    let err = b.fails(&["build", "--progress", "fancy", s(&ctx)], 1);
    assert_eq!(
        err,
        "Error: invalid value \"fancy\" passed to --progress, valid values are: auto, plain, tty"
    );
}

/// `--iidfile` holds the image ID, as `docker build --iidfile` writes it.
#[test]
fn build_iidfile_holds_the_image_id() {
    let b = Berth::with_busybox();
    let ctx = context(&b, "ctx", &[("Dockerfile", "FROM busybox\nLABEL a=b\n")]);
    let f = b.scratch().join("iid");
    b.ok(&["build", "-q", "-t", "iid:1", "--iidfile", s(&f), s(&ctx)]);
    let written = std::fs::read_to_string(&f).unwrap();
    assert_eq!(written, b.image_id("iid:1"));
    assert!(
        written.starts_with("sha256:") && written.len() == 71,
        "{written}"
    );
}

/// `--pull` with the base's registry out of reach: Docker fails; berth
/// too, in one line that names the registry.
#[test]
fn build_pull_with_the_registry_unreachable_fails_in_one_line() {
    let b = Berth::with_busybox();
    // Port 9 (discard) on loopback: nothing listens, connection refused.
    b.ok(&["tag", "busybox", "127.0.0.1:9/bb:latest"]);
    let ctx = context(
        &b,
        "ctx",
        &[("Dockerfile", "FROM 127.0.0.1:9/bb\nLABEL a=b\n")],
    );
    let err = b.fails(&["build", "-q", "--pull", s(&ctx)], 1);
    assert!(err.contains("127.0.0.1:9"), "{err}");
    assert!(err.contains("--pull"), "{err}");
    assert!(err.len() < 300, "{err}");
    // Without --pull the local image is used.
    b.ok(&["build", "-q", s(&ctx)]);
}

/// Whether `needle` occurs anywhere in the files under `dir` (not
/// following symlinks).
fn found_under(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut hits = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(m) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if m.is_dir() {
                todo.push(p);
            } else if m.is_file() {
                if let Ok(data) = std::fs::read(&p) {
                    if data.windows(needle.len()).any(|w| w == needle) {
                        hits.push(p);
                    }
                }
            }
        }
    }
    hits
}

/// `--add-host`, `--ulimit` and `-m` reach the RUN steps.
#[test]
fn build_run_steps_get_add_host_ulimit_and_memory() {
    let b = Berth::with_busybox();
    let df = "FROM busybox\nRUN grep buildhost /etc/hosts && echo nofile=$(ulimit -n) && \
              echo mem=$(cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes)\n";
    let ctx = context(&b, "ctx", &[("Dockerfile", df)]);
    let out = b.ok(&[
        "build",
        "--add-host",
        "buildhost:10.1.2.3",
        "--ulimit",
        "nofile=1234:1234",
        "-m",
        "64m",
        s(&ctx),
    ]);
    assert!(
        out.contains("10.1.2.3\tbuildhost") || out.contains("10.1.2.3 buildhost"),
        "{out}"
    );
    assert!(out.contains("nofile=1234\n"), "{out}");
    assert!(out.contains("mem=67108864\n"), "{out}");
    // --cpuset-cpus and --cpu-shares too (cgroup v2 files, v1's else).
    let df2 = "FROM busybox\nRUN echo cpus=$(cat /sys/fs/cgroup/cpuset.cpus 2>/dev/null || cat /sys/fs/cgroup/cpuset/cpuset.cpus)\n";
    let ctx2 = context(&b, "ctx2", &[("Dockerfile", df2)]);
    let out = b.ok(&[
        "build",
        "--cpuset-cpus",
        "0",
        "--cpu-shares",
        "512",
        s(&ctx2),
    ]);
    assert!(out.contains("cpus=0\n"), "{out}");
    // What Docker's daemon refuses: one line, exit 1.
    let err = b.fails(&["build", "-m", "1m", s(&ctx)], 1);
    assert_eq!(err, "Error: Minimum memory limit allowed is 6MB");
    let err = b.fails(
        &["build", "--security-opt", "seccomp=unconfined", s(&ctx)],
        1,
    );
    assert!(
        err.contains("does not support setting security options on build"),
        "{err}"
    );
    // Bad values: flag errors, as `run` gives them.
    for (flag, value, name) in [
        ("--add-host", "nocolon", "--add-host"),
        ("--add-host", "h:notanip", "--add-host"),
        ("--ulimit", "bogus=1", "--ulimit"),
        ("-m", "lots", "--memory"),
        ("--memory-swap", "lots", "--memory-swap"),
        ("--cpu-shares", "many", "--cpu-shares"),
    ] {
        flag_error(&b, &["build", flag, value, s(&ctx)], name);
    }
}

const SECRET: &str = "s3cr3t-Value-4711";

/// `--secret` and RUN --mount=type=secret: the file is there during the
/// step only; its content is in no layer, no history, no build output,
/// nowhere under the root.
#[test]
fn build_secret_mount_leaves_no_trace() {
    let b = Berth::with_busybox();
    let secret = b.scratch().join("token.txt");
    std::fs::write(&secret, SECRET).unwrap();
    let df = String::from(
        "# syntax=docker/dockerfile:1\nFROM busybox\n\
         RUN --mount=type=secret,id=tok grep -qx s3cr3t-Value-.... /run/secrets/tok && echo secret-ok\n\
         RUN --mount=type=secret,id=tok,target=/etc/tok,mode=0440 ls -ln /etc/tok && touch /made\n\
         RUN --mount=type=secret,id=absent test ! -e /run/secrets/absent && echo optional-ok\n"
    );
    let ctx = context(&b, "ctx", &[("Dockerfile", &df)]);
    let out = b.ok(&[
        "build",
        "-t",
        "sec:1",
        "--secret",
        &format!("id=tok,src={}", s(&secret)),
        s(&ctx),
    ]);
    assert!(out.contains("secret-ok\n"), "{out}");
    assert!(out.contains("optional-ok\n"), "{out}");
    assert!(out.contains("-r--r-----    1 0        0"), "{out}");
    assert!(!out.contains(SECRET), "{out}");
    // Not in the image: no /run/secrets, no /etc/tok (the mount points), /made is.
    let ls = b.ok(&[
        "run",
        "--rm",
        "sec:1",
        "sh",
        "-c",
        "ls -d /run/secrets /etc/tok /made 2>&1; true",
    ]);
    assert!(
        ls.contains("/run/secrets: No such file") && ls.contains("/etc/tok: No such file"),
        "{ls}"
    );
    assert!(ls.contains("\n/made") || ls.starts_with("/made"), "{ls}");
    let hist = b.ok(&["history", "--no-trunc", "sec:1"]);
    assert!(!hist.contains(SECRET), "{hist}");
    let tar = b.scratch().join("sec.tar");
    b.ok(&["save", "-o", s(&tar), "sec:1"]);
    assert!(
        found_under(b.scratch().as_path(), SECRET.as_bytes())
            .iter()
            .all(|p| p == &secret),
        "{:?}",
        found_under(b.scratch().as_path(), SECRET.as_bytes())
    );
    assert!(found_under(b.root(), SECRET.as_bytes()).is_empty());
    // A required secret not given fails the build in one line.
    let ctx2 = context(
        &b,
        "ctx2",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN --mount=type=secret,id=nope,required=true true\n",
        )],
    );
    let err = b.fails(&["build", "-q", s(&ctx2)], 1);
    assert!(err.contains("secret nope"), "{err}");
    // An env secret.
    let ctx3 = context(
        &b,
        "ctx3",
        &[("Dockerfile", "FROM busybox\nRUN --mount=type=secret,id=e test \"$(cat /run/secrets/e)\" = from-env && echo env-ok\n")],
    );
    let out = b
        .cmd(&["build", "--secret", "id=e,env=BERTH_TEST_SECRET", s(&ctx3)])
        .env("BERTH_TEST_SECRET", "from-env")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&["build"], &out));
    assert!(text(&out.stdout).contains("env-ok\n"));
}

/// Bad `--secret` values: one line, exit 1, nothing built.
#[test]
fn build_secret_bad_input() {
    let b = Berth::with_busybox();
    let ctx = context(&b, "ctx", &[("Dockerfile", "FROM busybox\nRUN true\n")]);
    let before = b.ok(&["images", "-a", "-q"]);
    for (spec, want) in [
        ("id=x,src=/nonexistent/secret", "/nonexistent/secret"),
        ("src=/etc/hostname", "no id"),
        ("id=x", "src=FILE"),
        ("id=x,bogus=1", "bogus"),
        ("id=x,env=BERTH_SURELY_UNSET_VAR", "BERTH_SURELY_UNSET_VAR"),
    ] {
        let err = b.fails(&["build", "--secret", spec, s(&ctx)], 1);
        assert!(err.contains(want), "{spec}: {err}");
    }
    assert_eq!(b.ok(&["images", "-a", "-q"]), before);
}

/// RUN --mount=type=cache: a directory kept across builds (not in the
/// layer); `builder prune` frees it.
#[test]
fn build_cache_mount_persists_until_pruned() {
    let b = Berth::with_busybox();
    let df = "FROM busybox\nRUN --mount=type=cache,target=/var/cache/x \
              echo run >> /var/cache/x/log && echo runs=$(wc -l < /var/cache/x/log)\n\
              RUN --mount=type=cache,id=owned,target=/c,uid=65534,mode=0700 stat -c owner=%u:%g:%a /c\n";
    let ctx = context(&b, "ctx", &[("Dockerfile", df)]);
    let out = b.ok(&["build", "--no-cache", "-t", "cm:1", s(&ctx)]);
    assert!(out.contains("runs=1\n"), "{out}");
    assert!(out.contains("owner=65534:0:700\n"), "{out}");
    let out = b.ok(&["build", "--no-cache", "-t", "cm:1", s(&ctx)]);
    assert!(out.contains("runs=2\n"), "{out}");
    let ls = b.ok(&[
        "run",
        "--rm",
        "cm:1",
        "sh",
        "-c",
        "ls -d /var/cache/x /var 2>&1; true",
    ]);
    assert!(ls.contains("No such file"), "{ls}");
    let pruned = b.ok(&["builder", "prune", "-f"]);
    assert!(pruned.starts_with("Total reclaimed space: "), "{pruned}");
    assert_ne!(pruned.trim(), "Total reclaimed space: 0B", "{pruned}");
    let out = b.ok(&["build", "--no-cache", "-t", "cm:1", s(&ctx)]);
    assert!(out.contains("runs=1\n"), "{out}");
    // system prune frees it too.
    b.ok(&["system", "prune", "-f"]);
    let out = b.ok(&["build", "--no-cache", "-t", "cm:1", s(&ctx)]);
    assert!(out.contains("runs=1\n"), "{out}");
}

/// RUN --mount=type=bind: the context (read-only by default) or another
/// stage's files; none of it in the layer; the step's cache follows the
/// bound files' content.
#[test]
fn build_bind_mounts_from_context_and_stage() {
    let b = Berth::with_busybox();
    let df = "FROM busybox AS first\nRUN echo staged > /f\n\
              FROM busybox\n\
              RUN --mount=type=bind,source=data.txt,target=/mnt/d.txt cat /mnt/d.txt\n\
              RUN --mount=type=bind,target=/ctx ls /ctx && (touch /ctx/x 2>/dev/null && echo writable || echo read-only)\n\
              RUN --mount=type=bind,from=first,source=/f,target=/g cat /g\n\
              RUN --mount=type=bind,from=first,target=/st,rw touch /st/scribble && echo rw-ok\n\
              RUN --mount=type=bind,target=/ctx,rw touch /ctx/x && echo ctx-rw-ok\n";
    let ctx = context(
        &b,
        "ctx",
        &[
            ("Dockerfile", df),
            ("data.txt", "bound-data-1\n"),
            ("secret.env", "hidden\n"),
            (".dockerignore", "secret.env\n"),
        ],
    );
    let out = b.ok(&["build", "-t", "bm:1", s(&ctx)]);
    assert!(out.contains("bound-data-1\n"), "{out}");
    assert!(out.contains("Dockerfile\ndata.txt\nread-only\n"), "{out}");
    assert!(out.contains("staged\n"), "{out}");
    assert!(out.contains("rw-ok\n"), "{out}");
    // rw: the writes are thrown away, the context is untouched; what
    // .dockerignore excludes is not there (`ls` above shows no secret.env).
    assert!(out.contains("ctx-rw-ok\n"), "{out}");
    assert!(!ctx.join("x").exists());
    let ls = b.ok(&[
        "run",
        "--rm",
        "bm:1",
        "sh",
        "-c",
        "ls -d /mnt /ctx /g /st 2>&1; true",
    ]);
    assert_eq!(ls.matches("No such file").count(), 4, "{ls}");
    // Changed content: the step runs again; unchanged: from the cache.
    std::fs::write(ctx.join("data.txt"), "bound-data-2\n").unwrap();
    let out = b.ok(&["build", "-t", "bm:1", s(&ctx)]);
    assert!(out.contains("bound-data-2\n"), "{out}");
    let out = b.ok(&["build", "-t", "bm:1", s(&ctx)]);
    assert!(
        !out.contains("bound-data-2\n") && out.contains("Using cache"),
        "{out}"
    );
}

/// Bad RUN --mount flags: the Dockerfile's line, one line, exit 1.
#[test]
fn build_run_mount_bad_input() {
    let b = Berth::with_busybox();
    for (df, want) in [
        (
            "FROM busybox\nRUN --mount=type=nfs,target=/x true\n",
            "Dockerfile:2: RUN --mount=type=nfs,target=/x: unsupported mount type \"nfs\"",
        ),
        (
            "FROM busybox\nRUN --mount=type=cache true\n",
            "Dockerfile:2:",
        ),
        (
            "FROM busybox\nRUN --mount=type=bind,target=/x,colour=red true\n",
            "unexpected key 'colour'",
        ),
        (
            "FROM busybox\nRUN --mount=type=bind,source=missing,target=/x true\n",
            "source \"missing\"",
        ),
        (
            "FROM busybox\nRUN --mount=type=bind,source=Dockerfile.ignored,target=/x true\n",
            "excluded by .dockerignore",
        ),
        (
            "FROM busybox\nRUN --mount=type=ssh,required=true true\n",
            "ssh",
        ),
        (
            "FROM busybox\nRUN --mount=type=tmpfs,target=/.. true\n",
            "invalid mount target \"/\"",
        ),
        (
            "FROM busybox\nRUN --mount=type=secret,id=x,env=X true\n",
            "env= is not supported",
        ),
        (
            "FROM busybox\nRUN --mount=type=cache,target=/x,size=1m true\n",
            "size= is for type=tmpfs",
        ),
        (
            "FROM busybox\nRUN --mount=type=tmpfs,target=/x,size=lots true\n",
            "size",
        ),
    ] {
        let ctx = context(
            &b,
            "ctx",
            &[
                ("Dockerfile", df),
                ("Dockerfile.ignored", ""),
                (".dockerignore", "*.ignored\n"),
            ],
        );
        let err = b.fails(&["build", "-q", s(&ctx)], 1);
        assert!(err.contains(want), "{df}: {err}");
    }
}

/// `-o DIR`, `--output type=local,dest=DIR`, `type=tar,dest=FILE`.
#[test]
fn build_output_local_and_tar() {
    let b = Berth::with_busybox();
    let df = "FROM busybox\nRUN mkdir /out && echo made > /out/file\n";
    let ctx = context(&b, "ctx", &[("Dockerfile", df)]);
    let d1 = b.scratch().join("o1");
    b.ok(&["build", "-q", "-o", s(&d1), s(&ctx)]);
    assert_eq!(
        std::fs::read_to_string(d1.join("out/file")).unwrap(),
        "made\n"
    );
    assert!(d1.join("bin/busybox").is_file());
    let d2 = b.scratch().join("o2");
    b.ok(&[
        "build",
        "-q",
        "--output",
        &format!("type=local,dest={}", s(&d2)),
        s(&ctx),
    ]);
    assert_eq!(
        std::fs::read_to_string(d2.join("out/file")).unwrap(),
        "made\n"
    );
    let t = b.scratch().join("o.tar");
    b.ok(&[
        "build",
        "-q",
        "--output",
        &format!("type=tar,dest={}", s(&t)),
        s(&ctx),
    ]);
    let mut ar = tar::Archive::new(std::fs::File::open(&t).unwrap());
    let names: Vec<String> = ar
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(
        names
            .iter()
            .any(|n| n.trim_start_matches("./") == "out/file"),
        "{names:?}"
    );
    for bad in [
        "type=registry",
        "type=local",
        "type=tar,dest=",
        "dest=/tmp/x",
        "type=local,dest=/x,foo=bar",
    ] {
        flag_error(
            &b,
            &["build", "-q", "--output", bad, s(&ctx)],
            "-o, --output",
        );
    }
}

/// `--ssh ID=SOCKET` and RUN --mount=type=ssh: the socket at
/// SSH_AUTH_SOCK during the step.
#[test]
fn build_ssh_mount_forwards_an_agent_socket() {
    let b = Berth::with_busybox();
    let sock = b.scratch().join("agent.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let df = "FROM busybox\nRUN --mount=type=ssh test -S \"$SSH_AUTH_SOCK\" && echo ssh-ok=$SSH_AUTH_SOCK\n";
    let ctx = context(&b, "ctx", &[("Dockerfile", df)]);
    let out = b.ok(&["build", "--ssh", &format!("default={}", s(&sock)), s(&ctx)]);
    assert!(out.contains("ssh-ok=/run/buildkit/ssh_agent.0\n"), "{out}");
    let err = b.fails(&["build", "--ssh", "default=/etc/hostname", s(&ctx)], 1);
    assert!(err.contains("not a socket"), "{err}");
    let err = b.fails(
        &["build", "--ssh", "default=/nonexistent/agent", s(&ctx)],
        1,
    );
    assert!(err.contains("/nonexistent/agent"), "{err}");
}

/// `--cache-from`: an absent image is named in a warning; the build goes on.
#[test]
fn build_cache_from_names_an_absent_image() {
    let b = Berth::with_busybox();
    let ctx = context(&b, "ctx", &[("Dockerfile", "FROM busybox\nLABEL a=b\n")]);
    let out = b.run(&[
        "build",
        "-q",
        "--cache-from",
        "busybox",
        "--cache-from",
        "nosuch:1",
        s(&ctx),
    ]);
    assert!(out.status.success(), "{}", describe(&["build"], &out));
    let err = text(&out.stderr);
    assert!(
        err.contains("nosuch:1") && !err.contains("busybox"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

/// `--cache-from` an image loaded from elsewhere (no intermediate images,
/// no step cache): its steps are reused as Docker's classic builder
/// reuses them, up to the same image ID; a changed step and those after
/// it run.
#[test]
fn build_cache_from_reuses_a_loaded_images_steps() {
    let a = Berth::with_busybox();
    let df = "FROM busybox\nRUN echo one > /one\nENV X=1\nCOPY f /f\nRUN echo two > /two\nCMD [\"cat\", \"/two\"]\n";
    let ctx = context(&a, "ctx", &[("Dockerfile", df), ("f", "file\n")]);
    a.ok(&["build", "-q", "-t", "app:1", s(&ctx)]);
    let app_id = a.image_id("app:1");
    let tar = a.scratch().join("all.tar");
    a.ok(&["save", "-o", s(&tar), "busybox", "app:1"]);

    let b = Berth::new();
    b.ok(&["load", "-i", s(&tar)]);
    let ctx_b = context(&b, "ctx", &[("Dockerfile", df), ("f", "file\n")]);
    // Without --cache-from every RUN runs.
    let out = b.ok(&["build", "--no-cache", "-t", "x:1", s(&ctx_b)]);
    assert!(out.contains("Running in"), "{out}");
    b.ok(&["rmi", "x:1"]);
    let out = b.ok(&["build", "--cache-from", "app:1", "-t", "app:2", s(&ctx_b)]);
    assert!(!out.contains("Running in"), "{out}");
    assert_eq!(out.matches("Using cache").count(), 5, "{out}");
    assert_eq!(b.image_id("app:2"), app_id);
    assert_eq!(b.ok(&["run", "--rm", "app:2"]), "two\n");
    // A changed instruction: from there on the steps run.
    let df2 = df.replace("echo two", "echo three");
    let ctx_c = context(&b, "ctx2", &[("Dockerfile", &df2), ("f", "file\n")]);
    let out = b.ok(&["build", "--cache-from", "app:1", "-t", "app:3", s(&ctx_c)]);
    assert_eq!(out.matches("Using cache").count(), 3, "{out}");
    assert_eq!(out.matches("Running in").count(), 1, "{out}");
    assert_eq!(
        b.ok(&["run", "--rm", "app:3", "cat", "/one", "/f", "/two"])
            .as_str(),
        "one\nfile\nthree\n"
    );
}

/// The rest of docker build's flags: the CFS quota reaches RUN steps;
/// --compress and --disable-content-trust are accepted; RUN
/// --mount=type=tmpfs is an empty tmpfs, not in the layer.
#[test]
fn build_cpu_quota_tmpfs_mount_and_accepted_flags() {
    let b = Berth::with_busybox();
    let df = "FROM busybox\n\
              RUN q=$(cat /sys/fs/cgroup/cpu.max 2>/dev/null) || q=$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us); echo quota=${q%% *}\n\
              RUN --mount=type=tmpfs,target=/scratch,size=1m grep -q ' /scratch tmpfs .*size=1024k' /proc/mounts && touch /scratch/x && echo tmpfs-ok\n";
    let ctx = context(&b, "ctx", &[("Dockerfile", df)]);
    let out = b.ok(&[
        "build",
        "--compress",
        "--disable-content-trust=false",
        "--cpu-period",
        "100000",
        "--cpu-quota",
        "50000",
        "-t",
        "q:1",
        s(&ctx),
    ]);
    assert!(out.contains("quota=50000\n"), "{out}");
    assert!(out.contains("tmpfs-ok\n"), "{out}");
    let ls = b.ok(&[
        "run",
        "--rm",
        "q:1",
        "sh",
        "-c",
        "ls -d /scratch 2>&1; true",
    ]);
    assert!(ls.contains("No such file"), "{ls}");
    flag_error(
        &b,
        &["build", "--cpu-quota", "half", s(&ctx)],
        "--cpu-quota",
    );
}

/// A build killed while a RUN step holds a secret: the secret's copy is
/// removed by the next command.
#[test]
fn a_killed_builds_secret_copy_is_removed_by_the_next_command() {
    let b = Berth::with_busybox();
    let secret = b.scratch().join("token.txt");
    std::fs::write(&secret, SECRET).unwrap();
    let df = "FROM busybox\nRUN --mount=type=secret,id=tok sleep 600\n";
    let ctx = context(&b, "ctx", &[("Dockerfile", df)]);
    let dir = b.root().join("run/build-secrets");
    let held = || -> Vec<PathBuf> {
        std::fs::read_dir(&dir)
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    };
    let mut child = b
        .cmd(&[
            "build",
            "--secret",
            &format!("id=tok,src={}", s(&secret)),
            s(&ctx),
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    while held().is_empty() && t0.elapsed() < std::time::Duration::from_secs(120) {
        assert!(child.try_wait().unwrap().is_none(), "the build ended early");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let files = held();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(std::fs::read_to_string(&files[0]).unwrap(), SECRET);
    // SAFETY: kill(2) of the child this test spawned.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().unwrap();
    b.ok(&["ps", "-a", "-q"]);
    assert!(held().is_empty(), "{:?}", held());
    assert!(found_under(b.root(), SECRET.as_bytes()).is_empty());
}
