//! Docker parity of the command line itself: where flag parsing stops
//! (issue 12, defect 1), the terminal of `run -it` (defect 10), and the
//! commands and filters Docker has (defect 11: version, info, completion,
//! system events, `-f` of images, volumes and networks). The expected
//! outputs were taken from dockerd 20.10 and its client.
#![allow(clippy::unwrap_used)]

mod common;

use common::{text, Berth};
use serde_json::Value;

/// Docker stops parsing flags at the image: what follows is the command's,
/// even when it looks like one of run's flags (-c is --cpu-shares, -l
/// --label, -e --env).
#[test]
fn run_passes_everything_after_the_image_to_the_command() {
    let b = Berth::with_busybox();
    let out = b.ok(&[
        "run",
        "--rm",
        "--entrypoint",
        "echo",
        "busybox",
        "-c",
        "x",
        "-l",
        "-e",
        "X=1",
    ]);
    assert_eq!(out, "-c x -l -e X=1\n");
    let out = b.ok(&[
        "run",
        "--rm",
        "--entrypoint",
        "sh",
        "busybox",
        "-c",
        "echo inside",
    ]);
    assert_eq!(out, "inside\n");
    // `--entrypoint ls IMG -l /`: -l is ls's long listing, not --label.
    let out = b.ok(&[
        "run",
        "--rm",
        "--entrypoint",
        "ls",
        "busybox",
        "-l",
        "-d",
        "/tmp",
    ]);
    assert!(
        out.starts_with('d') && out.trim_end().ends_with("/tmp"),
        "{out}"
    );
    // A flag after the image is the command: Docker's exec fails, 127.
    let err = b.fails(&["run", "--rm", "busybox", "-e", "X=1"], 127);
    assert!(err.contains("-e"), "{err}");
    // `--` after the image is the command's too (Docker passes it on).
    let out = b.ok(&["run", "--rm", "busybox", "echo", "--", "-x"]);
    assert_eq!(out, "-- -x\n");
    // Before the image, `--` still ends the flags.
    let out = b.ok(&["run", "--rm", "--", "busybox", "echo", "-n", "y"]);
    assert_eq!(out, "y");
    // A detached run with the postgres image's usage: `IMG -c key=value`.
    let id = b.ok(&["run", "-d", "busybox", "sh", "-c", "echo \"[$0]\"", "-c"]);
    let id = id.trim();
    common::wait_until(30, "the container to exit", || {
        b.ok(&["inspect", "-f", "{{.State.Status}}", id]).trim() == "exited"
    });
    assert_eq!(b.ok(&["logs", id]), "[-c]\n");
    let inspect = b.inspect(id);
    assert_eq!(
        inspect["Config"]["Cmd"],
        serde_json::json!(["sh", "-c", "echo \"[$0]\"", "-c"])
    );
    assert_eq!(inspect["HostConfig"]["CpuShares"], 0);
    b.ok(&["rm", id]);
    // Flags before the image still work, of course.
    let out = b.ok(&["run", "--rm", "-e", "X=1", "busybox", "sh", "-c", "echo $X"]);
    assert_eq!(out, "1\n");
    // No image: Docker's usage error, 125.
    for cmd in ["run", "create"] {
        let err = b.fails(&[cmd], 125);
        assert_eq!(
            err,
            format!("Error: \"berth {cmd}\" requires at least 1 argument.")
        );
    }
    // `container run` is the same command.
    let out = b.ok(&[
        "container",
        "run",
        "--rm",
        "--entrypoint",
        "echo",
        "busybox",
        "-l",
        "-c",
    ]);
    assert_eq!(out, "-l -c\n");
}

#[test]
fn create_keeps_what_follows_the_image_as_the_command() {
    let b = Berth::with_busybox();
    for create in [&["create"][..], &["container", "create"][..]] {
        let mut args = create.to_vec();
        args.extend(["--entrypoint", "echo", "busybox", "-l", "a=b", "-e", "X=1"]);
        let id = b.ok(&args);
        let id = id.trim();
        let i = b.inspect(id);
        assert_eq!(
            i["Config"]["Cmd"],
            serde_json::json!(["-l", "a=b", "-e", "X=1"])
        );
        // null (Docker's) when neither the image nor the user set a variable.
        let env: Vec<String> =
            serde_json::from_value::<Option<Vec<String>>>(i["Config"]["Env"].clone())
                .unwrap()
                .unwrap_or_default();
        assert!(!env.iter().any(|e| e == "X=1"), "{env:?}");
        assert!(
            i["Config"]["Labels"]
                .as_object()
                .is_none_or(|l| l.is_empty()),
            "{}",
            i["Config"]["Labels"]
        );
        assert_eq!(b.ok(&["start", "-a", id]), "-l a=b -e X=1\n");
        b.ok(&["rm", id]);
    }
}

#[test]
fn exec_passes_everything_after_the_container_to_the_command() {
    let b = Berth::with_busybox();
    let id = b.ok(&["run", "-d", "busybox", "sleep", "300"]);
    let id = id.trim();
    let out = b.ok(&["exec", id, "echo", "-x", "-e", "Y=1", "-u", "nobody", "-d"]);
    assert_eq!(out, "-x -e Y=1 -u nobody -d\n");
    let out = b.ok(&["exec", "-e", "Y=2", id, "sh", "-c", "echo $Y"]);
    assert_eq!(out, "2\n");
    let out = b.ok(&["container", "exec", id, "echo", "-i", "-t"]);
    assert_eq!(out, "-i -t\n");
    // A flag where the command belongs is the command: not found, as
    // `exec C nosuchcommand` (Docker's exec says 126 for any start failure).
    let out = b.run(&["exec", id, "-e", "Y=1"]);
    assert_eq!(out.status.code(), Some(126), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("-e"), "{}", text(&out.stderr));
    // `top C ARGS`: what follows the container is ps's, -h included.
    let out = b.run(&["top", id, "-h"]);
    assert!(
        !text(&out.stdout).contains("Usage:"),
        "{}",
        text(&out.stdout)
    );
    let out = b.ok(&["top", id, "-o", "pid,comm"]);
    assert!(
        out.starts_with("  PID COMMAND\n") || out.contains("COMMAND"),
        "{out}"
    );
    // No command at all (or nothing): Docker's usage error, exit 1.
    let out = b.run(&["exec"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("requires at least 2 arguments"));
    let out = b.run(&["exec", id]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("requires at least 2 arguments"),
        "{}",
        text(&out.stderr)
    );
    b.ok(&["rm", "-f", id]);
}

#[allow(dead_code)]
fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

/// `berth ARGS` under a real pty (`script`, as a user's shell runs it), the
/// terminal's input open and nothing typed until berth ends: the bytes the
/// terminal showed.
fn on_a_terminal(b: &Berth, args: &[&str]) -> Vec<u8> {
    let (status, out) = b.typed_on_a_terminal(args, b"");
    assert!(status.success(), "berth {args:?}: {status}: {}", text(&out));
    out
}

/// Defect 10: berth itself writes no NUL into the container's terminal or
/// the user's, with and without --rm, for run and exec. (The `^@` the issue
/// saw comes from `script` whose own input ends: it then types its
/// end-of-input byte, a NUL once berth made its terminal raw, and berth,
/// like docker 20.10 — `^@hi` there too —, passes what is typed to the
/// container, whose terminal echoes it.)
#[test]
fn run_it_shows_no_nul_on_the_terminal() {
    let b = Berth::with_busybox();
    let runs: [&[&str]; 3] = [
        &["run", "-it", "--rm", "busybox", "echo", "hi"],
        &["run", "-it", "--name", "t1", "busybox", "echo", "hi"],
        &["run", "-t", "--rm", "busybox", "echo", "hi"],
    ];
    for args in runs {
        let out = on_a_terminal(&b, args);
        let shown = text(&out).replace('\r', "");
        assert!(!out.contains(&0), "{args:?}: {out:?}");
        assert!(!shown.contains("^@"), "{args:?}: {shown:?}");
        assert_eq!(shown, "hi\n", "{args:?}");
    }
    b.ok(&["rm", "t1"]);
    let id = b.ok(&["run", "-d", "busybox", "sleep", "300"]);
    let id = id.trim();
    let out = on_a_terminal(&b, &["exec", "-it", id, "echo", "hi"]);
    assert!(!out.contains(&0) && !text(&out).contains("^@"), "{out:?}");
    assert_eq!(text(&out).replace('\r', ""), "hi\n");
    b.ok(&["rm", "-f", id]);
}

/// `berth version`: Docker's Client and Server sections, and its data for
/// `--format` (`{{.Client.Version}}`, `{{json .}}`).
#[test]
fn version_has_dockers_sections_and_format() {
    let b = Berth::new();
    let out = b.ok(&["version"]);
    let v = env!("CARGO_PKG_VERSION");
    assert!(out.starts_with("Client:\n Version:           "), "{out}");
    assert!(
        out.contains(&format!("\n Version:           {v}\n")),
        "{out}"
    );
    assert!(
        out.contains("\nServer:\n Engine:\n  Version:          "),
        "{out}"
    );
    assert!(
        out.contains("  API version:      1.41 (minimum version 1.12)\n"),
        "{out}"
    );
    assert_eq!(
        b.ok(&["version", "--format", "{{.Client.Version}}"]),
        format!("{v}\n")
    );
    assert_eq!(
        b.ok(&["version", "-f", "{{.Server.Version}}"]),
        format!("{v}\n")
    );
    let j = json(&b.ok(&["version", "--format", "{{json .}}"]));
    for k in [
        "Version",
        "ApiVersion",
        "DefaultAPIVersion",
        "Os",
        "Arch",
        "Context",
    ] {
        assert!(j["Client"].get(k).is_some(), "Client.{k}: {j}");
    }
    for k in [
        "Platform",
        "Components",
        "Version",
        "ApiVersion",
        "MinAPIVersion",
        "Os",
        "Arch",
        "KernelVersion",
    ] {
        assert!(j["Server"].get(k).is_some(), "Server.{k}: {j}");
    }
    assert_eq!(j["Server"]["Components"][0]["Name"], "Engine");
    // A field version's data lacks: Docker's error, exit 1.
    let err = b.fails(&["version", "--format", "{{.Nope}}"], 1);
    assert!(
        err.contains("can't evaluate field Nope in type system.versionInfo"),
        "{err}"
    );
}

/// The keys of Docker 20.10's `info --format '{{json .}}'`.
const INFO_KEYS: &[&str] = &[
    "ID",
    "Containers",
    "ContainersRunning",
    "ContainersPaused",
    "ContainersStopped",
    "Images",
    "Driver",
    "DriverStatus",
    "Plugins",
    "MemoryLimit",
    "SwapLimit",
    "KernelMemory",
    "KernelMemoryTCP",
    "CpuCfsPeriod",
    "CpuCfsQuota",
    "CPUShares",
    "CPUSet",
    "PidsLimit",
    "IPv4Forwarding",
    "BridgeNfIptables",
    "BridgeNfIp6tables",
    "Debug",
    "NFd",
    "OomKillDisable",
    "NGoroutines",
    "SystemTime",
    "LoggingDriver",
    "CgroupDriver",
    "CgroupVersion",
    "NEventsListener",
    "KernelVersion",
    "OperatingSystem",
    "OSVersion",
    "OSType",
    "Architecture",
    "IndexServerAddress",
    "RegistryConfig",
    "NCPU",
    "MemTotal",
    "GenericResources",
    "DockerRootDir",
    "HttpProxy",
    "HttpsProxy",
    "NoProxy",
    "Name",
    "Labels",
    "ExperimentalBuild",
    "ServerVersion",
    "Runtimes",
    "DefaultRuntime",
    "Swarm",
    "LiveRestoreEnabled",
    "Isolation",
    "InitBinary",
    "ContainerdCommit",
    "RuncCommit",
    "InitCommit",
    "SecurityOptions",
    "Warnings",
    "ClientInfo",
];

/// `berth info` and `berth system info`: Docker's layout, and Docker's keys
/// for `--format`.
#[test]
fn info_has_dockers_layout_keys_and_counts() {
    let b = Berth::with_busybox();
    let id = b.ok(&["create", "busybox", "true"]);
    let id = id.trim();
    let root = b.root().to_str().unwrap().to_owned();
    for info in [&["info"][..], &["system", "info"][..]] {
        let out = b.ok(info);
        assert!(out.starts_with("Client:\n Context:    default\n Debug Mode: false\n\nServer:\n Containers: 1\n  Running: 0\n  Paused: 0\n  Stopped: 1\n Images: 1\n"), "{out}");
        for line in [
            "\n Storage Driver: ",
            "\n Cgroup Driver: cgroupfs\n",
            "\n Kernel Version: ",
            "\n CPUs: ",
            "\n Total Memory: ",
            "\n Live Restore Enabled: ",
        ] {
            assert!(out.contains(line), "{line:?} in {out}");
        }
        assert!(
            out.contains(&format!("\n Docker Root Dir: {root}\n")),
            "{out}"
        );
        let mut args = info.to_vec();
        args.extend(["--format", "{{json .}}"]);
        let j = json(&b.ok(&args));
        for k in INFO_KEYS {
            assert!(j.get(k).is_some(), "{k} missing: {j}");
        }
        assert_eq!(j["Containers"], 1);
        assert_eq!(j["ContainersStopped"], 1);
        assert_eq!(j["Images"], 1);
        assert_eq!(j["DockerRootDir"], root.as_str());
    }
    let driver = b.ok(&["info", "--format", "{{.Driver}}"]);
    assert!(driver == "overlay\n" || driver == "vfs\n", "{driver}");
    let ncpu: usize = b.ok(&["info", "-f", "{{.NCPU}}"]).trim().parse().unwrap();
    assert!(ncpu >= 1);
    // The engine's identity stays the same from one command to the next.
    assert_eq!(
        b.ok(&["info", "-f", "{{.ID}}"]),
        b.ok(&["system", "info", "-f", "{{.ID}}"])
    );
    let err = b.fails(&["info", "--format", "{{.Nope}}"], 1);
    assert!(
        err.contains("can't evaluate field Nope in type system.info"),
        "{err}"
    );
    b.ok(&["rm", id]);
}

/// `info --format` sees Docker's Go struct: its Go field names where they
/// differ from the JSON keys (`CPUCfsQuota`, not `CpuCfsQuota`, as Docker
/// 20.10 answers), and its fields that the JSON leaves out when empty;
/// `json .` keeps the JSON keys. The Go names were refused.
#[test]
fn info_format_takes_dockers_go_field_names() {
    let b = Berth::new();
    let j = json(&b.ok(&["info", "--format", "{{json .}}"]));
    for (go, key) in [
        ("CPUCfsPeriod", "CpuCfsPeriod"),
        ("CPUCfsQuota", "CpuCfsQuota"),
        ("BridgeNfIP6tables", "BridgeNfIp6tables"),
        ("HTTPProxy", "HttpProxy"),
        ("HTTPSProxy", "HttpsProxy"),
    ] {
        let want = match &j[key] {
            serde_json::Value::String(s) => s.clone(),
            v => v.to_string(),
        };
        assert_eq!(
            b.ok(&["info", "--format", &format!("{{{{.{go}}}}}")]),
            format!("{want}\n"),
            "{go}"
        );
        let err = b.fails(&["info", "--format", &format!("{{{{.{key}}}}}")], 1);
        assert!(
            err.contains(&format!("can't evaluate field {key} in type system.info")),
            "{err}"
        );
        assert!(j.get(go).is_none(), "{go} in {j}");
    }
    assert_eq!(
        b.ok(&[
            "info",
            "--format",
            "{{.ClusterStore}}|{{.ClusterAdvertise}}|{{.ProductLicense}}|{{.DefaultAddressPools}}|{{.ServerErrors}}|{{.Swarm.Nodes}}|{{.Swarm.Managers}}",
        ]),
        "|||[]|[]|0|0\n"
    );
    assert!(j.get("ServerErrors").is_none(), "{j}");
    let runtime = b.ok(&[
        "info",
        "--format",
        "{{range .Runtimes}}{{.Path}} {{.Args}}{{end}}",
    ]);
    assert!(
        runtime.trim().ends_with(" []") && runtime.len() > 4,
        "{runtime}"
    );
    let default = j["DefaultRuntime"].as_str().unwrap();
    let path = j["Runtimes"][default]["path"].as_str().unwrap();
    assert_eq!(
        b.ok(&[
            "info",
            "-f",
            &format!("{{{{(index .Runtimes \"{default}\").Path}}}}")
        ]),
        format!("{path}\n")
    );
    assert_eq!(b.ok(&["info", "-f", "{{.ClientInfo.Debug}}"]), "false\n");
}

/// `berth system events` is `berth events`.
#[test]
fn system_events_is_events() {
    let b = Berth::with_busybox();
    b.ok(&["run", "--rm", "--name", "ev1", "busybox", "true"]);
    let until = b.ok(&["info", "-f", "{{.SystemTime}}"]);
    let args = |sys: bool| {
        let mut a: Vec<&str> = if sys {
            vec!["system", "events"]
        } else {
            vec!["events"]
        };
        a.extend([
            "--since",
            "0",
            "--until",
            until.trim(),
            "--format",
            "{{.Action}} {{.Actor.Attributes.name}}",
        ]);
        a.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let plain = args(false);
    let sys = args(true);
    let a: Vec<&str> = plain.iter().map(String::as_str).collect();
    let s: Vec<&str> = sys.iter().map(String::as_str).collect();
    let events = b.ok(&a);
    assert!(events.contains("start ev1\n"), "{events}");
    assert_eq!(b.ok(&s), events);
}

/// `berth completion bash|zsh|fish|powershell`, as `docker completion`.
#[test]
fn completion_scripts_for_each_shell() {
    let b = Berth::new();
    for (shell, mark) in [
        ("bash", "complete -F _berth"),
        ("zsh", "#compdef berth"),
        ("fish", "complete -c berth"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let out = b.ok(&["completion", shell]);
        assert!(out.contains(mark), "{shell}: no {mark:?}");
        // Docker's commands are there (run, and system's info).
        assert!(out.contains("run") && out.contains("info"), "{shell}");
    }
    let out = b.run(&["completion", "tcsh"]);
    assert!(!out.status.success());
}

/// The lines of `berth ARGS`, sorted.
fn sorted_lines(b: &Berth, args: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = b.ok(args).lines().map(str::to_owned).collect();
    v.sort();
    v
}

/// `images -f` as dockerd 20.10 answers the same scenario: dangling,
/// reference (path.Match), before/since, label; the errors.
#[test]
fn images_filters_are_dockers() {
    let b = Berth::with_busybox();
    let cc = b.ok(&["create", "busybox", "true"]);
    let cc = cc.trim();
    b.ok(&["commit", "-c", "LABEL a=b", cc, "lab:1"]);
    let dangling = b.ok(&["commit", cc]);
    let dangling = dangling.trim();
    b.ok(&["commit", "-c", "LABEL a=c", cc, "lab:2"]);
    // `before`/`since` compare creation times: make them differ.
    let f = ["--format", "{{.Repository}}:{{.Tag}}"];
    let images = |filters: &[&str]| {
        let mut args = vec!["images"];
        for x in filters {
            args.extend(["-f", x]);
        }
        args.extend(f);
        sorted_lines(&b, &args)
    };
    assert_eq!(images(&["dangling=true"]), ["<none>:<none>"]);
    assert_eq!(
        images(&["dangling=false"]),
        ["busybox:latest", "lab:1", "lab:2"]
    );
    assert_eq!(images(&["reference=lab"]), ["lab:1", "lab:2"]);
    assert_eq!(images(&["reference=lab:1"]), ["lab:1"]);
    assert_eq!(images(&["reference=bus*"]), ["busybox:latest"]);
    assert_eq!(images(&["reference=*:latest"]), ["busybox:latest"]);
    assert_eq!(
        images(&["reference=lab:1", "reference=bus*"]),
        ["busybox:latest", "lab:1"]
    );
    assert_eq!(images(&["label=a"]), ["lab:1", "lab:2"]);
    assert_eq!(images(&["label=a=b"]), ["lab:1"]);
    assert_eq!(images(&["label=a", "label=a=c"]), ["lab:2"]);
    assert_eq!(images(&["label=a", "dangling=true"]), Vec::<String>::new());
    assert_eq!(
        b.ok(&["images", "-q", "--no-trunc", "-f", "dangling=true"])
            .trim(),
        dangling
    );
    // before/since: by creation time, to the nanosecond (the images were
    // made in this order).
    assert_eq!(
        images(&["before=lab:2"]),
        ["<none>:<none>", "busybox:latest", "lab:1"]
    );
    assert_eq!(images(&["before=lab:1"]), ["busybox:latest"]);
    assert_eq!(images(&["since=lab:1"]), ["<none>:<none>", "lab:2"]);
    assert_eq!(images(&["since=lab:1", "before=lab:2"]), ["<none>:<none>"]);
    // The errors: Docker's words and exit codes.
    let err = b.fails(&["images", "-f", "x=1"], 1);
    assert_eq!(err, "Error: invalid filter 'x'");
    let err = b.fails(&["images", "-f", "dangling=maybe"], 1);
    assert_eq!(err, "Error: invalid filter 'dangling=[maybe]'");
    let err = b.fails(&["images", "-f", "noequals"], 125);
    assert!(
        err.contains("bad format of filter (expected name=value)"),
        "{err}"
    );
    let err = b.fails(&["images", "-f", "before=nosuch"], 1);
    assert!(err.contains("No such image"), "{err}");
    b.ok(&["rm", cc]);
}

/// `volume ls -f`: dangling (true/1, false/0), name (a regex), driver,
/// label; the errors.
#[test]
fn volume_ls_filters_are_dockers() {
    let b = Berth::with_busybox();
    for v in ["v1", "v2", "vol3"] {
        b.ok(&["volume", "create", v]);
    }
    let c = b.ok(&["create", "-v", "v1:/x", "busybox", "true"]);
    let c = c.trim();
    let ls = |filters: &[&str]| {
        let mut args = vec!["volume", "ls", "-q"];
        for x in filters {
            args.extend(["-f", x]);
        }
        sorted_lines(&b, &args)
    };
    assert_eq!(ls(&["dangling=true"]), ["v2", "vol3"]);
    assert_eq!(ls(&["dangling=1"]), ["v2", "vol3"]);
    assert_eq!(ls(&["dangling=false"]), ["v1"]);
    assert_eq!(ls(&["dangling=0"]), ["v1"]);
    assert_eq!(ls(&["name=v"]), ["v1", "v2", "vol3"]);
    assert_eq!(ls(&["name=^vol"]), ["vol3"]);
    assert_eq!(ls(&["name=v1", "name=v2"]), ["v1", "v2"]);
    assert_eq!(ls(&["dangling=true", "name=v"]), ["v2", "vol3"]);
    assert_eq!(ls(&["driver=local"]), ["v1", "v2", "vol3"]);
    assert!(ls(&["driver=loc"]).is_empty());
    assert!(ls(&["label=a"]).is_empty());
    let err = b.fails(&["volume", "ls", "-f", "x=1"], 1);
    assert_eq!(err, "Error: invalid filter 'x'");
    let err = b.fails(&["volume", "ls", "-f", "dangling=maybe"], 1);
    assert_eq!(err, "Error: invalid filter 'dangling=[maybe]'");
    b.fails(&["volume", "ls", "-f", "noequals"], 125);
    b.ok(&["rm", c]);
    for v in ["v1", "v2", "vol3"] {
        b.ok(&["volume", "rm", v]);
    }
}

/// `network ls -f`: name and id (regexes), driver, label, type, dangling;
/// the errors.
#[test]
fn network_ls_filters_are_dockers() {
    let b = Berth::with_busybox();
    let n1 = b.ok(&["network", "create", "--label", "a=b", "pf-n1"]);
    let n1 = n1.trim();
    b.ok(&["network", "create", "pf-n2"]);
    let c = b.ok(&["run", "-d", "--network", "pf-n1", "busybox", "sleep", "300"]);
    let c = c.trim();
    let ls = |filters: &[&str]| {
        let mut args = vec!["network", "ls", "--format", "{{.Name}}"];
        for x in filters {
            args.extend(["-f", x]);
        }
        sorted_lines(&b, &args)
    };
    assert_eq!(ls(&["type=custom"]), ["pf-n1", "pf-n2"]);
    assert_eq!(ls(&["type=builtin"]), ["bridge", "host", "none"]);
    assert_eq!(ls(&["dangling=true"]), ["pf-n2"]);
    assert_eq!(ls(&["dangling=1"]), ["pf-n2"]);
    assert_eq!(ls(&["dangling=false"]), ["bridge", "host", "none", "pf-n1"]);
    assert_eq!(ls(&["name=pf-"]), ["pf-n1", "pf-n2"]);
    assert_eq!(ls(&["name=^pf-n1$"]), ["pf-n1"]);
    assert_eq!(ls(&[&format!("id={}", &n1[..6])]), ["pf-n1"]);
    assert_eq!(ls(&["driver=null"]), ["none"]);
    assert_eq!(ls(&["driver=bridge", "name=pf"]), ["pf-n1", "pf-n2"]);
    assert_eq!(ls(&["label=a"]), ["pf-n1"]);
    assert_eq!(ls(&["label=a=b"]), ["pf-n1"]);
    assert!(ls(&["label=a=c"]).is_empty());
    let err = b.fails(&["network", "ls", "-f", "x=1"], 1);
    assert_eq!(err, "Error: invalid filter 'x'");
    let err = b.fails(&["network", "ls", "-f", "type=weird"], 1);
    assert_eq!(err, "Error: invalid filter: 'type'='weird'");
    let err = b.fails(&["network", "ls", "-f", "dangling=maybe"], 1);
    assert_eq!(
        err,
        "Error: invalid value for filter 'dangling', must be \"true\" (or \"1\"), or \"false\" (or \"0\")"
    );
    b.fails(&["network", "ls", "-f", "noequals"], 125);
    b.fails(&["ps", "-f", "noequals"], 125);
    b.ok(&["rm", "-f", c]);
    b.ok(&["network", "rm", "pf-n1", "pf-n2"]);
}

/// `-it` when berth's input is not a terminal: Docker's CLI refuses before
/// creating anything ("the input device is not a TTY", exit 1); `-t` alone
/// and `-d -it` are fine.
#[test]
fn it_without_a_terminal_is_refused_as_docker_does() {
    let b = Berth::with_busybox();
    let out = b.run(&["run", "-it", "--rm", "busybox", "true"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "the input device is not a TTY\n");
    assert_eq!(b.ok(&["ps", "-aq"]), "");
    assert_eq!(
        b.ok(&["run", "-t", "--rm", "busybox", "echo", "hi"]),
        "hi\r\n"
    );
    let id = b.ok(&["run", "-d", "-it", "busybox", "sleep", "300"]);
    let id = id.trim();
    let out = b.run(&["exec", "-it", id, "true"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "the input device is not a TTY\n");
    b.ok(&["rm", "-f", id]);
}
