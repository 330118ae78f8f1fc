//! `berth build` end to end on a busybox base: instructions, multi-stage
//! builds, the cache, .dockerignore, reproducibility, and what a failed
//! build leaves (nothing).
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::path::PathBuf;

/// `build` that must succeed: its stdout.
fn build(b: &Berth, args: &[&str]) -> String {
    let mut all = vec!["build"];
    all.extend_from_slice(args);
    b.ok(&all)
}

/// Every image ID, intermediate ones included.
fn all_images(b: &Berth) -> Vec<String> {
    let mut v: Vec<String> = b
        .ok(&["images", "-a", "-q", "--no-trunc"])
        .lines()
        .map(str::to_owned)
        .collect();
    v.sort();
    v.dedup();
    v
}

#[test]
fn multi_stage_build_with_every_run_form_then_run_it() {
    let b = Berth::with_busybox();
    let df = r#"# syntax=docker/dockerfile:1
FROM busybox AS builder
RUN mkdir -p /out && echo shell > /out/shell
RUN ["sh", "-c", "echo exec > /out/exec"]
RUN <<EOF
echo heredoc-script > /out/script
echo second line >> /out/script
EOF
RUN cat <<-X > /out/fed && \
    echo done
	fed through stdin
	X
RUN <<EOF
#!/usr/bin/awk -f
BEGIN { print "awk ran" > "/out/awk" }
EOF

FROM busybox
COPY --from=builder /out/ /got/
COPY --from=0 /out/shell /one-file
COPY --from=busybox:latest /etc/passwd /passwd-from-image
CMD ["cat", "/got/shell", "/got/exec", "/got/script", "/got/fed", "/got/awk", "/one-file"]
"#;
    let ctx = context(&b, "ctx", &[("Dockerfile", df)]);
    let out = build(&b, &["-t", "ms:1", s(&ctx)]);
    assert!(
        out.starts_with("Step 1/11 : FROM busybox AS builder\n ---> "),
        "{out}"
    );
    assert!(
        out.contains(
            "Step 3/11 : RUN [\"sh\", \"-c\", \"echo exec > /out/exec\"]\n ---> Running in "
        ),
        "{out}"
    );
    assert!(
        out.contains("\ndone\n ---> Removed intermediate container "),
        "{out}"
    );
    assert!(
        out.contains("Step 8/11 : COPY --from=builder /out/ /got/\n"),
        "{out}"
    );
    let id_line = out
        .lines()
        .find(|l| l.starts_with("Successfully built "))
        .unwrap();
    let short = id_line.trim_start_matches("Successfully built ");
    assert_eq!(short.len(), 12);
    assert!(
        out.trim_end().ends_with("Successfully tagged ms:1"),
        "{out}"
    );
    assert!(b.image_id("ms:1").starts_with(&format!("sha256:{short}")));
    let run = b.ok(&["run", "--rm", "ms:1"]);
    assert_eq!(
        run,
        "shell\nexec\nheredoc-script\nsecond line\nfed through stdin\nawk ran\nshell\n"
    );
    let passwd = b.ok(&[
        "run",
        "--rm",
        "ms:1",
        "head",
        "-c",
        "10",
        "/passwd-from-image",
    ]);
    assert_eq!(passwd, "root:x:0:0");
    // `image build` is the same command; -q prints the ID only.
    let out = b.ok(&["image", "build", "-q", s(&ctx)]);
    assert_eq!(out.trim(), b.image_id("ms:1"));
}

#[test]
fn metadata_instructions_show_in_inspect_and_history() {
    let b = Berth::with_busybox();
    let df = r#"FROM busybox
MAINTAINER someone
ENV A=1 B="two words"
ENV C ${A}-${B:+set}-${NOPE:-dflt}
LABEL org.example.k="v 1" other=x
USER nobody
WORKDIR /srv
WORKDIR app
EXPOSE 80 53/udp 8000-8001
VOLUME ["/data", "/cache"]
STOPSIGNAL SIGINT
HEALTHCHECK --interval=5s --timeout=2s --retries=4 CMD test -e /srv
SHELL ["/bin/sh", "-ec"]
ENTRYPOINT ["/bin/sh"]
CMD ["-c", "echo hi"]
ONBUILD RUN echo triggered
"#;
    let ctx = context(&b, "ctx", &[("Dockerfile", df)]);
    build(&b, &["-t", "meta", "--label", "from.cli=yes", s(&ctx)]);
    let v = b.inspect("meta");
    let c = &v["Config"];
    assert_eq!(v["Author"], "someone");
    assert_eq!(
        c["Env"],
        // The default PATH first, as Docker's builder adds it at FROM.
        serde_json::json!([
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "A=1",
            "B=two words",
            "C=1-set-dflt"
        ])
    );
    assert_eq!(c["Labels"]["org.example.k"], "v 1");
    assert_eq!(c["Labels"]["other"], "x");
    assert_eq!(c["Labels"]["from.cli"], "yes");
    assert_eq!(c["User"], "nobody");
    assert_eq!(c["WorkingDir"], "/srv/app");
    let ports: Vec<&String> = c["ExposedPorts"].as_object().unwrap().keys().collect();
    assert_eq!(ports, vec!["53/udp", "80/tcp", "8000/tcp", "8001/tcp"]);
    let vols: Vec<&String> = c["Volumes"].as_object().unwrap().keys().collect();
    assert_eq!(vols, vec!["/cache", "/data"]);
    assert_eq!(c["StopSignal"], "SIGINT");
    assert_eq!(
        c["Healthcheck"],
        serde_json::json!({"Test": ["CMD-SHELL", "test -e /srv"], "Interval": 5_000_000_000i64, "Timeout": 2_000_000_000i64, "Retries": 4})
    );
    assert_eq!(c["Shell"], serde_json::json!(["/bin/sh", "-ec"]));
    assert_eq!(c["Entrypoint"], serde_json::json!(["/bin/sh"]));
    assert_eq!(c["Cmd"], serde_json::json!(["-c", "echo hi"]));
    assert_eq!(c["OnBuild"], serde_json::json!(["RUN echo triggered"]));
    // WORKDIR made its directories (as root).
    let out = b.ok(&[
        "run",
        "--rm",
        "--entrypoint",
        "find",
        "meta",
        "/srv/app",
        "-maxdepth",
        "0",
        "-user",
        "root",
        "-perm",
        "755",
    ]);
    assert_eq!(out, "/srv/app\n");
    assert_eq!(b.ok(&["run", "--rm", "meta"]), "hi\n");
    let hist = b.ok(&["history", "--no-trunc", "meta"]);
    assert!(
        hist.contains("/bin/sh -c #(nop)  ENV A=1 B=two words"),
        "{hist}"
    );
    assert!(
        hist.contains("/bin/sh -ec #(nop)  CMD [\"-c\", \"echo hi\"]"),
        "{hist}"
    );
    // The trigger runs in a build FROM this image, and is not inherited.
    let child = context(
        &b,
        "child",
        &[("Dockerfile", "FROM meta\nRUN echo after\n")],
    );
    let out = build(&b, &["-t", "child", s(&child)]);
    assert!(out.contains("# Executing 1 build trigger\n"), "{out}");
    assert!(out.contains("\ntriggered\n"), "{out}");
    assert!(b.inspect("child")["Config"]["OnBuild"].is_null());
    // A new ENTRYPOINT drops the CMD it inherits.
    let ep = context(
        &b,
        "ep",
        &[("Dockerfile", "FROM meta\nENTRYPOINT [\"echo\"]\n")],
    );
    build(&b, &["-t", "ep", s(&ep)]);
    assert!(b.inspect("ep")["Config"]["Cmd"].is_null());
}

#[test]
fn run_sees_user_workdir_env_and_build_args() {
    let b = Berth::with_busybox();
    let df = r#"ARG TAG=latest
FROM --platform=$BUILDPLATFORM busybox:${TAG}
ARG TARGETARCH
RUN test -n "$TARGETARCH" && test "$TARGETARCH" != "$TARGETOS"
ARG TAG
ARG GREETING=hello
ARG FROM_CLI
ENV WHO=world
WORKDIR /work
RUN echo "$GREETING $WHO tag=$TAG cli=$FROM_CLI in $(pwd) as $(id -u)" > /work/out && chmod 777 /work
USER nobody
RUN echo "again as $(id -u)" >> /work/out2
ENV GREETING=env-wins
RUN echo "$GREETING" > /work/out3
"#;
    let ctx = context(&b, "ctx", &[("Dockerfile", df)]);
    let out = build(
        &b,
        &[
            "-t",
            "args",
            "--build-arg",
            "FROM_CLI=given",
            "--build-arg",
            "NOT_DECLARED=x",
            s(&ctx),
        ],
    );
    assert!(
        out.contains("[Warning] One or more build-args [NOT_DECLARED] were not consumed"),
        "{out}"
    );
    let got = b.ok(&[
        "run",
        "--rm",
        "args",
        "cat",
        "/work/out",
        "/work/out2",
        "/work/out3",
    ]);
    assert_eq!(
        got,
        "hello world tag=latest cli=given in /work as 0\nagain as 65534\nenv-wins\n"
    );
    // Build args are not kept in the image's environment.
    let env = b.inspect("args")["Config"]["Env"].to_string();
    assert!(!env.contains("FROM_CLI") && !env.contains("TAG"), "{env}");
    // The history records the args a RUN saw, as Docker's does.
    let hist = b.ok(&["history", "--no-trunc", "args"]);
    assert!(
        hist.contains("|4 TARGETARCH=")
            && hist.contains(" TAG=latest GREETING=hello FROM_CLI=given /bin/sh -c echo"),
        "{hist}"
    );
    // A different value is a different step: the RUN runs again.
    let out = build(&b, &["--build-arg", "FROM_CLI=other", s(&ctx)]);
    assert!(out.contains("Running in"), "{out}");
}

#[test]
fn copy_chown_chmod_globs_and_destinations() {
    let b = Berth::with_busybox();
    let df = "FROM busybox
WORKDIR /dst
COPY --chown=nobody:nogroup --chmod=640 a.txt owned.txt
COPY --chown=1234 a.txt /numeric
COPY *.md docs/
COPY dir /tree
COPY dir/ rel/
COPY a.txt file-dest
COPY <<EOF /etc/generated
name=${NAME:-gen}
EOF
";
    let ctx = context(
        &b,
        "ctx",
        &[
            ("Dockerfile", df),
            ("a.txt", "A\n"),
            ("x.md", "x\n"),
            ("y.md", "y\n"),
            ("dir/sub/deep.txt", "deep\n"),
            ("dir/top.txt", "top\n"),
        ],
    );
    std::os::unix::fs::symlink("sub", ctx.join("dir/link")).unwrap();
    build(&b, &["-t", "cp", s(&ctx)]);
    let run = |cmd: &str| b.ok(&["run", "--rm", "cp", "sh", "-c", cmd]);
    assert_eq!(
        run("stat -c '%u:%g %a' /dst/owned.txt /numeric"),
        "65534:65534 640\n1234:1234 644\n"
    );
    assert_eq!(run("cat /dst/docs/x.md /dst/docs/y.md"), "x\ny\n");
    assert_eq!(
        run("cat /tree/sub/deep.txt /tree/top.txt /dst/rel/top.txt"),
        "deep\ntop\ntop\n"
    );
    assert_eq!(run("readlink /tree/link"), "sub\n");
    assert_eq!(run("cat /dst/file-dest /etc/generated"), "A\nname=gen\n");
    // Several sources need a directory destination.
    let bad = context(
        &b,
        "bad",
        &[
            ("Dockerfile", "FROM busybox\nCOPY a b /file\n"),
            ("a", ""),
            ("b", ""),
        ],
    );
    let e = b.fails(&["build", s(&bad)], 1);
    assert!(
        e.contains("the destination must be a directory and end with a /"),
        "{e}"
    );
    let bad = context(
        &b,
        "bad2",
        &[
            ("Dockerfile", "FROM busybox\nCOPY --chown=nosuchuser a /\n"),
            ("a", ""),
        ],
    );
    let e = b.fails(&["build", s(&bad)], 1);
    assert!(e.contains("unable to find user nosuchuser"), "{e}");
}

#[test]
fn the_cache_skips_unchanged_steps_and_reruns_from_a_changed_file() {
    let b = Berth::with_busybox();
    let df = "FROM busybox\nRUN echo one > /one\nCOPY a.txt /a.txt\nRUN cat /a.txt > /copy\nCOPY b.txt /b.txt\nCMD [\"cat\", \"/copy\"]\n";
    let ctx = context(
        &b,
        "ctx",
        &[("Dockerfile", df), ("a.txt", "first\n"), ("b.txt", "b\n")],
    );
    let creates = || {
        b.ok(&[
            "events",
            "--since",
            "10m",
            "--until",
            "0s",
            "--filter",
            "event=create",
        ])
        .lines()
        .count()
    };
    let first = build(&b, &["-t", "c", s(&ctx)]);
    assert_eq!(first.matches("Running in").count(), 2, "{first}");
    assert_eq!(creates(), 2, "one container per RUN");
    let id = b.image_id("c");
    let images = all_images(&b);
    let again = build(&b, &["-t", "c", s(&ctx)]);
    assert_eq!(again.matches(" ---> Using cache").count(), 5, "{again}");
    assert!(!again.contains("Running in"), "{again}");
    assert_eq!(b.image_id("c"), id);
    assert_eq!(all_images(&b), images, "a cached build adds no image");
    assert_eq!(creates(), 2, "a cached build creates no container");
    // Rewriting a file with the same content keeps the cache.
    std::fs::write(ctx.join("a.txt"), "first\n").unwrap();
    let again = build(&b, &[s(&ctx)]);
    assert!(!again.contains("Running in"), "{again}");
    // A changed file re-runs from its COPY on.
    std::fs::write(ctx.join("a.txt"), "second\n").unwrap();
    let out = build(&b, &["-t", "c", s(&ctx)]);
    let steps: Vec<&str> = out.split("Step ").skip(1).collect();
    assert!(steps[1].contains("Using cache"), "{out}");
    assert!(!steps[2].contains("Using cache"), "{out}");
    assert!(steps[3].contains("Running in"), "{out}");
    assert!(
        !steps[4].contains("Using cache") && !steps[5].contains("Using cache"),
        "{out}"
    );
    assert_eq!(b.ok(&["run", "--rm", "c"]), "second\n");
    // --no-cache runs everything.
    let out = build(&b, &["--no-cache", s(&ctx)]);
    assert!(
        !out.contains("Using cache") && out.matches("Running in").count() == 2,
        "{out}"
    );
}

#[test]
fn intermediate_images_are_hidden_and_released_with_the_final_one() {
    let b = Berth::with_busybox();
    let layers_before = b.layer_dirs();
    let blobs_before = b.blobs();
    let ctx = context(
        &b,
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM busybox\nRUN echo 1 > /1\nENV X=1\nCOPY f /f\nRUN echo 2 > /2\n",
            ),
            ("f", "f"),
        ],
    );
    build(&b, &["-t", "final", s(&ctx)]);
    let listed = b.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert_eq!(listed, "final:latest\nbusybox:latest\n");
    // history names every step's image, as Docker's does for local builds.
    let hist = b.ok(&["history", "final"]);
    assert_eq!(hist.lines().count(), 6, "{hist}");
    assert!(!hist.contains("<missing>"), "{hist}");
    let busybox = b.image_id("busybox");
    assert!(
        hist.lines().last().unwrap().starts_with(&busybox[7..19]),
        "{hist}"
    );
    assert_eq!(all_images(&b).len(), 5);
    let out = b.ok(&["rmi", "final"]);
    assert!(out.starts_with("Untagged: final:latest\n"), "{out}");
    assert_eq!(out.matches("Deleted: ").count(), 4, "{out}");
    assert_eq!(all_images(&b).len(), 1);
    assert_eq!(b.layer_dirs(), layers_before);
    assert_eq!(b.blobs(), blobs_before);
    // A rebuild after a change leaves the old final image dangling (shown
    // as <none>); prune removes it and the steps only it needed.
    build(&b, &["-t", "final", s(&ctx)]);
    std::fs::write(ctx.join("f"), "changed").unwrap();
    build(&b, &["-t", "final", s(&ctx)]);
    let listed = b.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert_eq!(listed, "final:latest\n<none>:<none>\nbusybox:latest\n");
    assert_eq!(all_images(&b).len(), 7);
    b.ok(&["image", "prune", "-f"]);
    assert_eq!(all_images(&b).len(), 5);
    b.ok(&["rmi", "final"]);
    assert_eq!(b.layer_dirs(), layers_before);
    assert_eq!(b.blobs(), blobs_before);
}

#[test]
fn dockerignore_hides_files_from_copy() {
    let b = Berth::with_busybox();
    let ctx = context(
        &b,
        "ctx",
        &[
            ("Dockerfile", "FROM busybox\nCOPY . /ctx/\n"),
            (
                ".dockerignore",
                "# comment\n*.log\nsecret\nnode_modules/**\n!node_modules/keep.js\n**/*.tmp\n",
            ),
            ("a.txt", "a"),
            ("x.log", "x"),
            ("sub/y.log", "kept: *.log is for the top only"),
            ("secret/key", "k"),
            ("node_modules/m.js", "m"),
            ("node_modules/keep.js", "k"),
            ("deep/er/z.tmp", "z"),
        ],
    );
    build(&b, &["-t", "ign", s(&ctx)]);
    let listed = b.ok(&[
        "run",
        "--rm",
        "ign",
        "sh",
        "-c",
        "cd /ctx && find . -type f | sort",
    ]);
    assert_eq!(
        listed,
        "./.dockerignore\n./Dockerfile\n./a.txt\n./node_modules/keep.js\n./sub/y.log\n"
    );
    // A Dockerfile's own NAME.dockerignore wins over the context's.
    std::fs::write(ctx.join("other.df"), "FROM busybox\nCOPY . /ctx/\n").unwrap();
    std::fs::write(ctx.join("other.df.dockerignore"), "*\n!a.txt\n").unwrap();
    let iid = b.scratch().join("iid");
    build(
        &b,
        &["-f", "other.df", "-t", "own", "--iidfile", s(&iid), s(&ctx)],
    );
    assert_eq!(std::fs::read_to_string(&iid).unwrap(), b.image_id("own"));
    let listed = b.ok(&["run", "--rm", "own", "find", "/ctx", "-type", "f"]);
    assert_eq!(listed, "/ctx/a.txt\n");
    let bad = context(
        &b,
        "ctx2",
        &[
            ("Dockerfile", "FROM busybox\nCOPY secret/key /\n"),
            (".dockerignore", "secret\n"),
            ("secret/key", "k"),
        ],
    );
    let e = b.fails(&["build", s(&bad)], 1);
    assert_eq!(e, "Error: COPY failed: file not found in build context or excluded by .dockerignore: stat secret/key: file does not exist");
}

#[test]
fn add_extracts_local_tars_and_refuses_urls() {
    let b = Berth::with_busybox();
    let tar = layer_tar(&[dir("pkg/"), file("pkg/hello.txt", b"hello from tar\n")]);
    let ctx = context(
        &b,
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM busybox\nADD plain.tar /opt/\nADD packed.tar.gz /gz\nADD notes.txt /notes.txt\n",
            ),
            ("notes.txt", "plain file\n"),
        ],
    );
    std::fs::write(ctx.join("plain.tar"), &tar).unwrap();
    std::fs::write(ctx.join("packed.tar.gz"), gzip(&tar)).unwrap();
    build(&b, &["-t", "add", s(&ctx)]);
    let out = b.ok(&[
        "run",
        "--rm",
        "add",
        "cat",
        "/opt/pkg/hello.txt",
        "/gz/pkg/hello.txt",
        "/notes.txt",
    ]);
    assert_eq!(out, "hello from tar\nhello from tar\nplain file\n");
    let url = context(
        &b,
        "url",
        &[(
            "Dockerfile",
            "FROM busybox\nADD http://127.0.0.1:9/file /file\n",
        )],
    );
    let e = b.fails(&["build", s(&url)], 1);
    assert_eq!(e, "Error: ADD failed: http://127.0.0.1:9/file: ADD from a URL is not supported: this builder has no network to fetch it");
}

#[test]
fn target_stops_at_the_named_stage() {
    let b = Berth::with_busybox();
    let df = "FROM busybox AS base\nRUN echo base > /stage\nFROM base AS test\nRUN echo test > /stage\nFROM busybox\nRUN exit 1\n";
    let ctx = context(&b, "ctx", &[("Dockerfile", df)]);
    let out = build(&b, &["--target", "test", "-t", "t", s(&ctx)]);
    assert!(out.contains("Step 4/4 : RUN echo test > /stage"), "{out}");
    assert_eq!(b.ok(&["run", "--rm", "t", "cat", "/stage"]), "test\n");
    let out = build(&b, &["--target", "BASE", "-t", "t", s(&ctx)]);
    assert!(out.contains("Step 2/2"), "{out}");
    let e = b.fails(&["build", "--target", "nope", s(&ctx)], 1);
    assert_eq!(e, "Error: target stage \"nope\" could not be found");
}

#[test]
fn reproducible_with_source_date_epoch() {
    let b = Berth::with_busybox();
    let df = "FROM busybox\nRUN echo data > /data && mkdir /d && touch /d/f\nCOPY f /f\nENV X=1\n";
    let ctx = context(&b, "ctx", &[("Dockerfile", df), ("f", "content")]);
    let once = || {
        let args = ["build", "-q", "--no-cache", s(&ctx)];
        let out = b
            .cmd(&args)
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", describe(&args, &out));
        text(&out.stdout).trim().to_owned()
    };
    let first = once();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let second = once();
    assert!(is_hex64(first.trim_start_matches("sha256:")), "{first}");
    assert_eq!(first, second);
    assert_eq!(b.inspect(&first)["Created"], "2023-11-14T22:13:20Z");
    // The layers' mtimes are clamped to the epoch.
    let tar = b.scratch().join("img.tar");
    b.ok(&["save", "-o", s(&tar), &first]);
    let mut newest = 0;
    let mut outer = tar::Archive::new(std::fs::File::open(&tar).unwrap());
    for e in outer.entries().unwrap() {
        let mut e = e.unwrap();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        let mut inner = tar::Archive::new(&data[..]);
        let Ok(entries) = inner.entries() else {
            continue;
        };
        for ie in entries.flatten() {
            let name = ie.path().unwrap().to_string_lossy().into_owned();
            if ["data", "d/f", "f"].contains(&name.as_str()) {
                newest = newest.max(ie.header().mtime().unwrap());
            }
        }
    }
    assert!(newest > 0 && newest <= 1_700_000_000, "{newest}");
    // The same through --build-arg SOURCE_DATE_EPOCH.
    let out = b.ok(&[
        "build",
        "-q",
        "--no-cache",
        "--build-arg",
        "SOURCE_DATE_EPOCH=1700000000",
        s(&ctx),
    ]);
    assert_eq!(out.trim(), first);
    // Without the epoch a --no-cache rebuild gets new created times.
    let out = b.ok(&["build", "-q", "--no-cache", s(&ctx)]);
    assert_ne!(out.trim(), first);
}

#[test]
fn a_failing_run_shows_its_output_and_leaves_nothing() {
    let b = Berth::with_busybox();
    let images = all_images(&b);
    let layers = b.layer_dirs();
    let blobs = b.blobs();
    let ctx = context(
        &b,
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM busybox\nRUN echo kept-step > /k\nCOPY f /f\nRUN echo to-stdout; echo to-stderr >&2; exit 3\nRUN echo never\n",
            ),
            ("f", "f"),
        ],
    );
    let out = b.run(&["build", "-t", "broken", s(&ctx)]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&["build"], &out));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(" ---> Running in ") && stdout.contains("to-stdout\nto-stderr\n"),
        "{stdout}"
    );
    assert!(!stdout.contains("never"), "{stdout}");
    assert_eq!(
        text(&out.stderr),
        "Error: The command '/bin/sh -c echo to-stdout; echo to-stderr >&2; exit 3' returned a non-zero code: 3\n"
    );
    assert_eq!(all_images(&b), images);
    assert_eq!(b.layer_dirs(), layers);
    assert_eq!(b.blobs(), blobs);
    assert!(b.ok(&["ps", "-a", "-q"]).is_empty());
    assert_eq!(
        b.run(&["image", "inspect", "broken"]).status.code(),
        Some(1)
    );
    let containers = std::fs::read_dir(b.root().join("storage/containers"))
        .unwrap()
        .count();
    assert_eq!(containers, 0);
    // -q: the output only when the step fails, on stderr.
    let out = b.run(&["build", "-q", s(&ctx)]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "");
    assert!(
        text(&out.stderr).contains("to-stdout\nto-stderr\nError: The command"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(all_images(&b), images);
}

#[test]
fn bad_dockerfiles_and_flags_fail_clearly() {
    let b = Berth::with_busybox();
    let ctx = context(
        &b,
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox\n\n# a comment\nRUN echo ok \\\n  && true\nRUNN echo\n",
        )],
    );
    assert_eq!(
        b.fails(&["build", s(&ctx)], 1),
        "Error: Dockerfile:6: unknown instruction: RUNN"
    );
    let cases: &[(&str, &str)] = &[
        ("FROM busybox\nENV\n", "Error: Dockerfile:2: ENV requires at least one argument"),
        ("FROM busybox\nCOPY onlyone\n", "Error: Dockerfile:2: COPY requires at least two arguments, but only 1 provided"),
        ("FROM busybox\nRUN --mount=type=nfs,target=/x true\n", "Error: Dockerfile:2: RUN --mount=type=nfs,target=/x: unsupported mount type \"nfs\": bind, cache, tmpfs, secret or ssh"),
        ("FROM busybox\nRUN <<EOF\necho\n", "Error: Dockerfile:2: unterminated heredoc EOF: no line 'EOF' follows"),
        ("RUN true\nFROM busybox\n", "Error: Dockerfile:1: RUN before the first FROM: only ARG may come before it"),
        ("# just a comment\n", "Error: Dockerfile: no FROM instruction: the Dockerfile has no stage to build"),
        ("FROM busybox\nENV A=${B\n", "Error: Dockerfile:2: missing '}' in variable substitution"),
        ("FROM busybox\nEXPOSE 99999\n", "Error: Dockerfile:2: invalid containerPort: 99999"),
        ("FROM busybox\nCOPY --chmod=999 x /\n", "Error: Dockerfile:2: invalid chmod parameter: \"999\""),
        ("FROM no-such-image:1\n", "Error: Unable to find image 'no-such-image:1' locally: "),
        ("FROM busybox\nCOPY missing /\n", "Error: COPY failed: file not found in build context or excluded by .dockerignore: stat missing: file does not exist"),
        ("FROM busybox\nCOPY --from=nowhere /x /\n", "Error: Unable to find image 'nowhere' locally: "),
        ("FROM busybox\nRUN --network=overlay true\n", "Error: network mode \"overlay\" is not supported for builds: use bridge, none or host"),
        ("FROM busybox\nRUN no-such-program\n", "Error: The command '/bin/sh -c no-such-program' returned a non-zero code: 127"),
    ];
    for (i, (df, want)) in cases.iter().enumerate() {
        let c = context(&b, &format!("case{i}"), &[("Dockerfile", df)]);
        let e = b.fails(&["build", s(&c)], 1);
        // A missing base is pulled; the reason it cannot be follows.
        if want.ends_with("locally: ") {
            assert!(e.starts_with(want), "{df}: {e}");
        } else {
            assert_eq!(&e, want, "{df}");
        }
    }
    // Another file name is named as such.
    let c = context(&b, "named", &[("build.df", "FROM busybox\nFROOM x\n")]);
    assert_eq!(
        b.fails(&["build", "-f", "build.df", s(&c)], 1),
        "Error: build.df:2: unknown instruction: FROOM"
    );
    assert!(b
        .fails(&["build", "-f", "missing.df", s(&c)], 1)
        .starts_with("Error: failed to read the Dockerfile "));
    let e = b.fails(&["build", s(&b.scratch().join("no-dir"))], 1);
    assert!(e.contains("no-dir"), "{e}");
    // Usage errors: 125 with Docker's pointer to --help.
    let out = b.run(&["build", "-t", "Bad:Tag:x", s(&ctx)]);
    assert_eq!(out.status.code(), Some(125));
    assert!(text(&out.stderr).starts_with(
        "invalid argument \"Bad:Tag:x\" for \"-t, --tag\" flag: invalid reference format\n"
    ));
    let out = b.run(&["build", "--network", "overlay", s(&ctx)]);
    assert_eq!(out.status.code(), Some(125));
    let c = context(&b, "ok", &[("Dockerfile", "FROM busybox\n")]);
    let e = b.fails(&["build", "--platform", "windows/amd64", s(&c)], 1);
    assert!(
        e.starts_with("Error: platform \"windows/amd64\" is not supported"),
        "{e}"
    );
    // Nothing was left by any of these.
    assert_eq!(all_images(&b).len(), 1);
}

#[test]
fn dockerfile_from_stdin_and_scratch_images() {
    let b = Berth::with_busybox();
    let ctx = context(&b, "ctx", &[("payload", "p\n")]);
    let out = b.run_stdin(
        &["build", "-q", "-f", "-", "-t", "fromstdin", s(&ctx)],
        b"FROM scratch\nCOPY payload /payload\nCMD [\"/payload\"]\n",
    );
    assert!(out.status.success(), "{}", describe(&["build"], &out));
    // `build -`: the Dockerfile on stdin, no context.
    let out = b.run_stdin(
        &["build", "-q", "-t", "nocontext", "-"],
        b"FROM busybox\nRUN echo hi > /hi\n",
    );
    assert!(out.status.success(), "{}", describe(&["build", "-"], &out));
    assert_eq!(b.ok(&["run", "--rm", "nocontext", "cat", "/hi"]), "hi\n");
    let out = b.run_stdin(&["build", "-"], b"FROM busybox\nCOPY x /x\n");
    assert_eq!(
        check_failure(&["build", "-"], &out, 1),
        "Error: COPY failed: file not found in build context or excluded by .dockerignore: stat x: file does not exist"
    );
    let out = b.run_stdin(
        &["build", "-"],
        &layer_tar(&[file("Dockerfile", b"FROM busybox\n")]),
    );
    assert!(check_failure(&["build", "-"], &out, 1).contains("a context on stdin is not supported"));
    assert!(std::fs::read_dir(b.root().join("run"))
        .unwrap()
        .flatten()
        .all(|e| !e
            .file_name()
            .to_string_lossy()
            .starts_with("build-context-")));
    let v = b.inspect("fromstdin");
    assert_eq!(v["RootFS"]["Layers"].as_array().unwrap().len(), 1);
    let tar = b.scratch().join("x.tar");
    b.ok(&["create", "--name", "x1", "fromstdin"]);
    b.ok(&["export", "-o", s(&tar), "x1"]);
    b.ok(&["rm", "x1"]);
    let names = tar_names(&std::fs::read(&tar).unwrap());
    assert!(names.iter().any(|n| n == "payload"), "{names:?}");
}

#[test]
fn builds_on_the_vfs_driver() {
    let b = Berth::with_driver("vfs");
    b.import_busybox();
    let ctx = context(
        &b,
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM busybox\nCOPY f /f\nRUN cat /f > /g && rm /bin/true\n",
            ),
            ("f", "vfs\n"),
        ],
    );
    build(&b, &["-t", "v", s(&ctx)]);
    assert_eq!(
        b.ok(&[
            "run",
            "--rm",
            "v",
            "sh",
            "-c",
            "cat /g; test -e /bin/true || echo gone"
        ]),
        "vfs\ngone\n"
    );
    let again = build(&b, &["-t", "v", s(&ctx)]);
    assert!(!again.contains("Running in"), "{again}");
    b.ok(&["rmi", "v"]);
}

#[test]
fn run_steps_are_on_the_default_bridge_unless_asked() {
    let b = Berth::with_busybox();
    // The names of the interfaces a RUN step sees.
    let interfaces = |args: &[&str]| -> Vec<String> {
        let ctx = context(
            &b,
            &format!("net{}", args.len()),
            &[(
                "Dockerfile",
                "FROM busybox\nRUN echo interfaces=$(sed -n 's/^ *\\([^:]*\\):.*/\\1/p' /proc/net/dev | sort | tr '\\n' ,)\n",
            )],
        );
        let mut all = vec!["--no-cache"];
        all.extend_from_slice(args);
        all.push(s(&ctx));
        let out = build(&b, &all);
        let line = out.lines().find(|l| l.starts_with("interfaces=")).unwrap();
        line.trim_start_matches("interfaces=")
            .split(',')
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(
        interfaces(&[]),
        vec!["eth0", "lo"],
        "lo and eth0 on the default bridge"
    );
    // The host's network: the default bridge itself is among its links.
    let v: serde_json::Value =
        serde_json::from_str(&b.ok(&["network", "inspect", "bridge"])).unwrap();
    let bridge = v[0]["Options"]["com.docker.network.bridge.name"]
        .as_str()
        .unwrap();
    let host = interfaces(&["--network", "host"]);
    assert!(host.iter().any(|n| n == bridge), "{host:?}");
    assert_eq!(interfaces(&["--network", "none"]), vec!["lo"]);
}

#[test]
fn a_signal_stops_the_build_and_leaves_nothing() {
    use std::io::BufRead;
    let b = Berth::with_busybox();
    let images = all_images(&b);
    let layers = b.layer_dirs();
    let ctx = context(
        &b,
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM busybox\nCOPY f /f\nRUN echo started; sleep 2\nRUN echo never\n",
            ),
            ("f", "f"),
        ],
    );
    let mut child = b
        .cmd(&["build", s(&ctx)])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        assert!(out.read_line(&mut line).unwrap() > 0, "{seen}");
        seen.push_str(&line);
        if line == "started\n" {
            break;
        }
    }
    // The step's shell (PID 1 in its namespace) ignores SIGTERM: the step
    // ends by itself, then the build stops.
    // SAFETY: kill(2) of the child this test spawned.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(143), "{seen}{err}");
    assert_eq!(err, "Error: build interrupted (SIGTERM)\n");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    assert!(!rest.contains("never"), "{rest}");
    assert_eq!(all_images(&b), images);
    assert_eq!(b.layer_dirs(), layers);
    assert_eq!(
        std::fs::read_dir(b.root().join("storage/containers"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn the_next_command_removes_the_work_area_of_a_killed_build() {
    let b = Berth::with_busybox();
    let ctx = context(
        &b,
        "ctx",
        &[("Dockerfile", "FROM busybox\nCOPY big /big\n")],
    );
    std::fs::write(ctx.join("big"), noise(7, 64 << 20)).unwrap();
    let containers = b.root().join("storage/containers");
    let work_area = || -> Option<PathBuf> {
        std::fs::read_dir(&containers)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("build-")
            })
    };
    let mut found = None;
    for _ in 0..5 {
        let mut child = b
            .cmd(&["build", "--no-cache", s(&ctx)])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let t0 = std::time::Instant::now();
        while found.is_none() && t0.elapsed() < std::time::Duration::from_secs(60) {
            found = work_area().filter(|p| p.join("merged").is_dir());
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        // SAFETY: kill(2) of the child this test spawned.
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        child.wait().unwrap();
        if found.is_some() {
            break;
        }
    }
    let dir = found.expect("a build's work area while it copies");
    // Its owner (the build) is gone: the next command takes it, mounted or
    // not, whatever its age.
    b.ok(&["images"]);
    assert!(!dir.exists());
    assert!(mounts_mentioning(b.root()).is_empty());
    assert_eq!(
        std::fs::read_dir(b.root().join("builds")).unwrap().count(),
        0
    );
}
