//! Smaller defects of issue 11: negative numbers are values (refused with Docker's
//! words), empty variable names, mount destinations cleaned (never `/`), mounts on
//! /proc as runc allows them, `rename` to the same name, concurrent `rm -f`.
#![allow(clippy::unwrap_used)]

mod common;
use common::*;

fn s(p: &std::path::Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn negative_numbers_are_values_refused_with_dockers_words() {
    let b = Berth::with_busybox();
    let e = b.fails(&["create", "-m", "-5", "busybox", "true"], 125);
    assert!(
        e.contains(r#"invalid argument "-5" for "-m, --memory" flag: invalid size: '-5'"#),
        "{e}"
    );
    let e = b.fails(&["run", "--rm", "--memory", "-5", "busybox", "true"], 125);
    assert!(e.contains("invalid size: '-5'"), "{e}");
    let e = b.fails(&["create", "--cpus", "-1", "busybox", "true"], 1);
    assert!(e.contains("Range of CPUs is from 0.01 to "), "{e}");
    let e = b.fails(
        &["create", "--memory-reservation", "-1", "busybox", "true"],
        125,
    );
    assert!(e.contains("invalid size: '-1'"), "{e}");
    assert_eq!(b.ok(&["ps", "-a", "-q"]), "");
}

#[test]
fn empty_variable_names_are_refused() {
    let b = Berth::with_busybox();
    let e = b.fails(&["create", "-e", "=x", "busybox", "true"], 125);
    assert!(
        e.contains(
            r#"invalid argument "=x" for "-e, --env" flag: invalid environment variable: =x"#
        ),
        "{e}"
    );
    let e = b.fails(&["run", "--rm", "-e", "", "busybox", "true"], 125);
    assert!(
        e.contains(r#"invalid argument "" for "-e, --env" flag: invalid environment variable:"#),
        "{e}"
    );
    let f = b.scratch().join("env");
    std::fs::write(&f, "A=1\n=x\n").unwrap();
    let e = b.fails(&["create", "--env-file", s(&f), "busybox", "true"], 125);
    assert!(
        e.contains("poorly formatted environment: no variable name on line '=x'"),
        "{e}"
    );
    assert_eq!(b.ok(&["ps", "-a", "-q"]), "");
    // A name without a value still comes from berth's environment, and a value may be empty.
    let out = b.ok(&[
        "run",
        "--rm",
        "-e",
        "E=",
        "-e",
        "HOME",
        "busybox",
        "sh",
        "-c",
        "echo \"[$E]\"",
    ]);
    assert_eq!(out, "[]\n");
    // exec refuses them as well.
    b.ok(&["run", "-d", "--name", "e1", "busybox", "sleep", "1000"]);
    for bad in ["=x", ""] {
        let e = b.fails(&["exec", "-e", bad, "e1", "true"], 125);
        assert!(e.contains("invalid environment variable:"), "{e}");
    }
    b.ok(&["rm", "-f", "e1"]);
}

#[test]
fn mount_destinations_are_cleaned_and_never_the_root() {
    let b = Berth::with_busybox();
    let d = b.scratch().join("src");
    std::fs::create_dir(&d).unwrap();
    std::fs::write(d.join("marker"), "here\n").unwrap();
    for dest in ["/x/../../..", "/", "/x/.."] {
        let spec = format!("{}:{dest}", s(&d));
        let e = b.fails(&["create", "-v", &spec, "busybox", "true"], 125);
        assert!(
            e.contains(&format!(
                "invalid volume specification: '{spec}': invalid mount config for type \"bind\": invalid specification: destination can't be '/'"
            )),
            "{e}"
        );
    }
    let e = b.fails(&["create", "-v", "vol1:/a/..", "busybox", "true"], 125);
    assert!(
        e.contains("invalid mount config for type \"volume\": invalid specification: destination can't be '/'"),
        "{e}"
    );
    assert_eq!(b.ok(&["ps", "-a", "-q"]), "");
    // A destination with dots is the clean path, as Docker stores it.
    let spec = format!("{}:/x/y/../z/.", s(&d));
    b.ok(&[
        "create",
        "--name",
        "c1",
        "-v",
        &spec,
        "busybox",
        "cat",
        "/x/z/marker",
    ]);
    let dest = b.ok(&[
        "inspect",
        "-f",
        "{{range .Mounts}}{{.Destination}}{{end}}",
        "c1",
    ]);
    assert_eq!(dest.trim(), "/x/z");
    assert_eq!(b.ok(&["start", "-a", "c1"]), "here\n");
    b.ok(&["rm", "c1"]);
}

#[test]
fn mounts_on_proc_are_refused_as_runc_refuses_them() {
    let b = Berth::with_busybox();
    let d = b.scratch().join("src");
    std::fs::create_dir(&d).unwrap();
    std::fs::write(d.join("cpuinfo"), "fake cpuinfo\n").unwrap();
    let inside = |dest: &str| format!("\"{dest}\" cannot be mounted because it is inside /proc");
    for (args, want) in [
        (
            vec!["-v".to_owned(), format!("{}:/proc/sys", s(&d))],
            inside("/proc/sys"),
        ),
        (
            vec!["-v".to_owned(), format!("{}:/proc/sys/kernel/x", s(&d))],
            inside("/proc/sys/kernel/x"),
        ),
        (
            vec!["-v".to_owned(), format!("{}:/proc/x/../sys", s(&d))],
            inside("/proc/sys"),
        ),
        (
            vec!["--tmpfs".to_owned(), "/proc/sys".to_owned()],
            inside("/proc/sys"),
        ),
        (
            vec![
                "--mount".to_owned(),
                format!("type=bind,src={},dst=/proc/1", s(&d)),
            ],
            inside("/proc/1"),
        ),
        (
            vec!["-v".to_owned(), format!("{}:/proc", s(&d))],
            "\"/proc\" cannot be mounted because it is not of type proc".to_owned(),
        ),
        (
            vec!["-v".to_owned(), "anon:/proc".to_owned()],
            "\"/proc\" cannot be mounted because it is not of type proc".to_owned(),
        ),
    ] {
        let mut a = vec!["create"];
        a.extend(args.iter().map(String::as_str));
        a.extend(["busybox", "true"]);
        let e = b.fails(&a, 1);
        assert!(e.contains(&want), "{a:?}: {e}");
    }
    assert_eq!(b.ok(&["ps", "-a", "-q"]), "");
    // What runc lets through: lxcfs-style files over /proc entries.
    let spec = format!("{}:/proc/cpuinfo", s(&d.join("cpuinfo")));
    let out = b.ok(&[
        "run",
        "--rm",
        "-v",
        &spec,
        "busybox",
        "cat",
        "/proc/cpuinfo",
    ]);
    assert_eq!(out, "fake cpuinfo\n");
    // A procfs over /proc is what runc, and so Docker, accepts (monitoring agents).
    b.ok(&[
        "run",
        "--rm",
        "-v",
        "/proc:/proc",
        "busybox",
        "test",
        "-e",
        "/proc/1/status",
    ]);
    // An image's Volumes on /proc are refused at create too.
    for vol in ["/proc", "/proc/sys"] {
        let ctx = b.scratch().join(format!("ctx{}", vol.replace('/', "-")));
        std::fs::create_dir(&ctx).unwrap();
        std::fs::write(
            ctx.join("Dockerfile"),
            format!("FROM busybox\nVOLUME {vol}\n"),
        )
        .unwrap();
        let tag = format!("procvol{}", vol.replace('/', "-"));
        b.ok(&["build", "-q", "-t", &tag, s(&ctx)]);
        let e = b.fails(&["create", &tag, "true"], 1);
        assert!(e.contains(&format!("\"{vol}\" cannot be mounted")), "{e}");
        let e = b.fails(&["run", "--rm", &tag, "true"], 125);
        assert!(e.contains(&format!("\"{vol}\" cannot be mounted")), "{e}");
    }
    assert_eq!(b.ok(&["ps", "-a", "-q"]), "");
}

#[test]
fn rename_to_the_same_name_fails() {
    let b = Berth::with_busybox();
    b.ok(&["create", "--name", "c1", "busybox", "true"]);
    let e = b.fails(&["rename", "c1", "c1"], 1);
    assert!(
        e.contains("Renaming a container with the same name as its current name"),
        "{e}"
    );
    b.ok(&["rm", "c1"]);
}

/// Docker's `^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$` (dockerd 20.10): two characters at
/// least, one leading `/` allowed and dropped. `create` says so with status 1
/// (Docker's CLI too), `run` with 125; `rename` names the refused name in its
/// record form after "Error when allocating new name".
#[test]
fn container_names_have_two_characters_at_least() {
    let b = Berth::with_busybox();
    let refused = |n: &str| {
        format!("Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    };
    for n in ["x", "/y", "//ab", "/"] {
        let e = b.fails(&["create", "--name", n, "busybox", "true"], 1);
        assert_eq!(e, format!("Error: {}", refused(n)), "{n}");
        let e = b.fails(&["run", "--rm", "--name", n, "busybox", "true"], 125);
        assert_eq!(e, format!("Error: {}", refused(n)), "{n}");
    }
    assert_eq!(b.ok(&["ps", "-aq"]), "");
    // An empty name is none: one is drawn.
    let id = b.ok(&["create", "--name", "", "busybox", "true"]);
    let drawn = b.ok(&["inspect", "-f", "{{.Name}}", id.trim()]);
    assert!(drawn.len() > 3 && drawn.starts_with('/'), "{drawn}");
    b.ok(&["rm", id.trim()]);

    b.ok(&["create", "--name", "/ab2", "busybox", "true"]);
    assert_eq!(b.ok(&["inspect", "-f", "{{.Name}}", "ab2"]), "/ab2\n");
    assert_eq!(b.ok(&["ps", "-a", "--format", "{{.Names}}"]), "ab2\n");
    for (n, shown) in [("z", "/z"), ("/z", "/z"), ("a b", "/a b")] {
        let e = b.fails(&["rename", "ab2", n], 1);
        assert_eq!(
            e,
            format!("Error: Error when allocating new name: {}", refused(shown)),
            "{n}"
        );
    }
    let e = b.fails(&["rename", "ab2", ""], 1);
    assert_eq!(e, "Error: Neither old nor new names may be empty");
    let e = b.fails(&["rename", "ab2", "/ab2"], 1);
    assert!(
        e.contains("Renaming a container with the same name as its current name"),
        "{e}"
    );
    b.ok(&["rename", "ab2", "/cd"]);
    assert_eq!(b.ok(&["inspect", "-f", "{{.Name}}", "cd"]), "/cd\n");
    assert_eq!(b.ok(&["ps", "-a", "--format", "{{.Names}}"]), "cd\n");
    b.ok(&["rm", "cd"]);
}

#[test]
fn concurrent_rm_f_has_one_winner() {
    let b = Berth::with_busybox();
    for round in 0..3 {
        b.ok(&["run", "-d", "--name", "c1", "busybox", "sleep", "1000"]);
        let children: Vec<_> = (0..5)
            .map(|_| {
                let mut c = b.cmd(&["rm", "-f", "c1"]);
                c.stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped());
                c.spawn().unwrap()
            })
            .collect();
        let outs: Vec<_> = children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect();
        let won = outs.iter().filter(|o| o.status.success()).count();
        assert_eq!(
            won,
            1,
            "round {round}: {:?}",
            outs.iter()
                .map(|o| (o.status.code(), text(&o.stderr)))
                .collect::<Vec<_>>()
        );
        for o in outs.iter().filter(|o| !o.status.success()) {
            let e = check_failure(&["rm", "-f", "c1"], o, 1);
            assert!(
                e.contains("No such container: c1")
                    || e.contains("removal of container c1 is already in progress"),
                "{e}"
            );
        }
        assert_eq!(b.ok(&["ps", "-a", "-q"]), "");
    }
}
