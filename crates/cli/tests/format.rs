//! Go templates in `--format` / `-f`, on real containers: `inspect -f` with
//! nested fields, range, index, json, if/else and Docker's functions; list
//! commands with `table` (a header and Docker's tabwriter alignment), `json`
//! and templates; and every kind of bad template (parse errors exit 64 for
//! inspect as Docker's, execution errors 1, list commands 1).
#![allow(clippy::unwrap_used)]

mod common;

use common::{describe, is_hex64, text, Berth};
use serde_json::Value;

fn run_d(b: &Berth, args: &[&str]) -> String {
    let mut a = vec!["run", "-d"];
    a.extend_from_slice(args);
    let out = b.run(&a);
    assert!(out.status.success(), "{}", describe(&a, &out));
    let id = text(&out.stdout).trim().to_owned();
    assert!(is_hex64(&id), "run -d printed {id:?}");
    id
}

/// `inspect -f TEMPLATE NAME`, without the newline inspect adds.
fn fmt(b: &Berth, t: &str, name: &str) -> String {
    let out = b.ok(&["inspect", "-f", t, name]);
    out.strip_suffix('\n')
        .unwrap_or_else(|| panic!("{t}: no newline at the end of {out:?}"))
        .to_owned()
}

#[test]
fn inspect_templates_on_containers() {
    let b = Berth::with_busybox();
    let data = b.scratch().join("data");
    std::fs::create_dir(&data).unwrap();
    let bind = format!("{}:/data", data.display());
    let id = run_d(
        &b,
        &[
            "--name",
            "web",
            "--label",
            "com.example.x=hello",
            "--label",
            "tier=front",
            "-v",
            &bind,
            "-v",
            "named:/vol",
            "busybox",
            "sleep",
            "60",
        ],
    );

    // Nested fields, typed values printed as Go does.
    assert_eq!(fmt(&b, "{{.State.Status}}", "web"), "running");
    assert_eq!(fmt(&b, "{{.State.Running}}", "web"), "true");
    assert_eq!(fmt(&b, "{{.State.ExitCode}}", "web"), "0");
    let pid: u32 = fmt(&b, "{{.State.Pid}}", "web").parse().unwrap();
    assert!(pid > 1);
    assert_eq!(fmt(&b, "{{.Config.Image}}", "web"), "busybox");
    assert_eq!(fmt(&b, "{{.Id}}", "web"), id);
    assert_eq!(fmt(&b, "{{.Name}}", "web"), "/web");
    assert_eq!(fmt(&b, "{{.Config.Cmd}}", "web"), "[sleep 60]");
    assert_eq!(fmt(&b, "{{.Nothing.Here}}", "web"), "<no value>");

    // json of a part and of the whole: the same document inspect prints.
    assert_eq!(fmt(&b, "{{json .Config.Cmd}}", "web"), r#"["sleep","60"]"#);
    let whole: Value = serde_json::from_str(&fmt(&b, "{{json .}}", "web")).unwrap();
    let plain = b.inspect("web");
    assert_eq!(whole["Id"], plain["Id"]);
    assert_eq!(whole["Config"], plain["Config"]);
    assert_eq!(whole["Mounts"], plain["Mounts"]);
    let labels: Value = serde_json::from_str(&fmt(&b, "{{json .Config.Labels}}", "web")).unwrap();
    assert_eq!(
        labels,
        serde_json::json!({"com.example.x": "hello", "tier": "front"})
    );

    // range over a map (sorted keys, with $k/$v), over a list, with else.
    assert_eq!(
        fmt(
            &b,
            "{{range $k, $v := .Config.Labels}}{{$k}}={{$v}} {{end}}",
            "web"
        ),
        "com.example.x=hello tier=front "
    );
    let mounts = fmt(
        &b,
        r#"{{range .Mounts}}{{.Source}}:{{.Destination}}{{"\n"}}{{end}}"#,
        "web",
    );
    let mut lines: Vec<&str> = mounts.lines().collect();
    lines.sort();
    assert_eq!(lines.len(), 2, "{mounts}");
    assert_eq!(lines[0], bind, "{mounts}");
    assert!(lines[1].ends_with("/named/_data:/vol"), "{mounts}");
    assert_eq!(
        fmt(
            &b,
            "{{range .Mounts}}{{if .Name}}{{.Name}}{{end}}{{end}}",
            "web"
        ),
        "named"
    );
    assert_eq!(
        fmt(
            &b,
            "{{range .Config.Entrypoint}}x{{else}}none{{end}}",
            "web"
        ),
        "none"
    );

    // index, also nested and with a field after it.
    assert_eq!(
        fmt(&b, r#"{{index .Config.Labels "com.example.x"}}"#, "web"),
        "hello"
    );
    assert_eq!(fmt(&b, r#"{{index .Config.Labels "absent"}}"#, "web"), "");
    assert_eq!(fmt(&b, "{{index .Config.Cmd 1}}", "web"), "60");
    assert_eq!(fmt(&b, "{{(index .Mounts 0).RW}}", "web"), "true");

    // Conditions and Docker's functions.
    assert_eq!(
        fmt(&b, "{{if .State.Running}}up{{else}}down{{end}}", "web"),
        "up"
    );
    assert_eq!(
        fmt(&b, r#"{{if eq .State.Status "running"}}yes{{end}}"#, "web"),
        "yes"
    );
    assert_eq!(
        fmt(&b, "{{if not .State.Paused}}not paused{{end}}", "web"),
        "not paused"
    );
    assert_eq!(
        fmt(
            &b,
            "{{if and .State.Running (eq .State.ExitCode 0)}}ok{{end}}",
            "web"
        ),
        "ok"
    );
    assert_eq!(fmt(&b, r#"{{join .Config.Cmd " "}}"#, "web"), "sleep 60");
    assert_eq!(fmt(&b, "{{.Name | upper}}", "web"), "/WEB");
    assert_eq!(fmt(&b, "{{truncate .Id 12}}", "web"), &id[..12]);
    assert_eq!(
        fmt(
            &b,
            r#"{{printf "%s:%d" .State.Status .State.ExitCode}}"#,
            "web"
        ),
        "running:0"
    );
    assert_eq!(
        fmt(
            &b,
            "{{- $s := .State -}} {{$s.Status}} {{- /* done */ -}}",
            "web"
        ),
        "running"
    );

    // A container that exited by itself.
    let out = b.run(&["run", "--name", "done", "busybox", "sh", "-c", "exit 3"]);
    assert_eq!(out.status.code(), Some(3), "{}", describe(&[], &out));
    assert_eq!(fmt(&b, "{{.State.ExitCode}}", "done"), "3");
    assert_eq!(
        fmt(
            &b,
            "{{if .State.Running}}up{{else}}down ({{.State.Status}}){{end}}",
            "done"
        ),
        "down (exited)"
    );

    // One line per object, images and volumes too.
    assert_eq!(
        b.ok(&["inspect", "-f", "{{.Name}}", "web", "done"]),
        "/web\n/done\n"
    );
    assert_eq!(
        b.ok(&["container", "inspect", "-f", "{{.State.Status}}", "done"]),
        "exited\n"
    );
    let image = b.image_id("busybox");
    assert_eq!(
        b.ok(&["image", "inspect", "-f", "{{.Id}}", "busybox"]),
        format!("{image}\n")
    );
    assert_eq!(
        b.ok(&["inspect", "-f", "{{index .RepoTags 0}}", "busybox"]),
        "busybox:latest\n"
    );
    let mp = b.ok(&[
        "volume",
        "inspect",
        "-f",
        "{{.Name}} {{.Mountpoint}}",
        "named",
    ]);
    assert!(
        mp.starts_with("named /") && mp.ends_with("/named/_data\n"),
        "{mp}"
    );

    // -f json: the documents on one line.
    let compact = b.ok(&["inspect", "-f", "json", "web", "done"]);
    assert_eq!(compact.lines().count(), 1, "{compact}");
    let docs: Vec<Value> = serde_json::from_str(&compact).unwrap();
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0]["Id"], id.as_str());

    b.ok(&["rm", "-f", "web", "done"]);
    b.ok(&["volume", "rm", "named"]);
}

#[test]
fn bad_templates() {
    let b = Berth::with_busybox();
    b.ok(&["create", "--name", "c1", "busybox", "true"]);

    // Parse errors: Docker's words and status 64 for inspect, nothing on stdout.
    for (t, msg) in [
        ("{{.Bad", "template: :1: unclosed action"),
        (
            "{{.State.Status}",
            r#"template: :1: unexpected "}" in operand"#,
        ),
        (
            "{{nosuch .Id}}",
            r#"template: :1: function "nosuch" not defined"#,
        ),
        ("{{if .Id}}x", "template: :1: unexpected EOF"),
        ("{{end}}", "template: :1: unexpected {{end}}"),
        ("{{$x}}", r#"template: :1: undefined variable "$x""#),
    ] {
        let out = b.run(&["inspect", "-f", t, "c1"]);
        let e = common::check_failure(&["inspect", "-f", t], &out, 64);
        assert_eq!(e, format!("Error: template parsing error: {msg}"), "{t}");
        assert_eq!(text(&out.stdout), "", "{t}");
    }
    // Parsed before anything is looked up.
    let e = b.fails(&["inspect", "-f", "{{.Bad", "no-such-thing"], 64);
    assert!(e.contains("unclosed action"), "{e}");

    // Execution errors: status 1, Go's words with the place.
    for (t, msg) in [
        (
            "{{index .Config.Cmd 5}}",
            r#"template: :1:2: executing "" at <index .Config.Cmd 5>: error calling index: index out of range: 5"#,
        ),
        (
            "{{range .State.Status}}x{{end}}",
            r#"template: :1:8: executing "" at <.State.Status>: range can't iterate over created"#,
        ),
        (
            "{{.State.Status.Deeper}}",
            r#"template: :1:2: executing "" at <.State.Status.Deeper>: can't evaluate field Deeper in type string"#,
        ),
        (
            "{{index .State.Running 0}}",
            r#"template: :1:2: executing "" at <index .State.Running 0>: error calling index: can't index item of type bool"#,
        ),
        (
            "{{upper .State.Running}}",
            r#"template: :1:2: executing "" at <upper .State.Running>: wrong type for value; expected string; got bool"#,
        ),
    ] {
        let e = b.fails(&["inspect", "-f", t, "c1"], 1);
        assert_eq!(e, format!("Error: template parsing error: {msg}"), "{t}");
    }
    // The objects it works on still print; the status says one failed.
    b.ok(&["create", "--name", "long", "busybox", "sleep", "1"]);
    let out = b.run(&["inspect", "-f", "{{index .Config.Cmd 1}}", "long", "c1"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&[], &out));
    assert_eq!(text(&out.stdout), "1\n");
    assert!(text(&out.stderr).contains("index out of range: 1"));

    // List commands: a bad template is an error (status 1), before any output.
    let e = b.fails(&["ps", "-a", "--format", "{{.ID"], 1);
    assert_eq!(
        e,
        "Error: template parsing error: template: :1: unclosed action"
    );
    let e = b.fails(&["ps", "-a", "--format", "{{.Nope}}"], 1);
    assert_eq!(
        e,
        r#"Error: template: :1:2: executing "" at <.Nope>: can't evaluate field Nope in type *formatter.ContainerContext"#
    );
    let e = b.fails(&["images", "--format", "{{range .ID}}{{end}}"], 1);
    assert!(e.contains("range can't iterate over"), "{e}");
    let e = b.fails(&["images", "--format", "table {{lower}}"], 1);
    assert!(
        e.contains("wrong number of args for lower: want 1 got 0"),
        "{e}"
    );
    let e = b.fails(&["volume", "ls", "--format", "{{nope}}"], 1);
    assert!(e.contains(r#"function "nope" not defined"#), "{e}");
    let e = b.fails(&["volume", "inspect", "-f", "{{.X", "v"], 64);
    assert!(e.contains("unclosed action"), "{e}");
    let e = b.fails(&["system", "df", "--format", "{{.Type"], 1);
    assert!(e.contains("unclosed action"), "{e}");
    let e = b.fails(&["history", "--format", "{{.Nope}}", "busybox"], 1);
    assert!(e.contains("can't evaluate field Nope"), "{e}");
    let e = b.fails(&["stats", "--no-stream", "--format", "{{.X", "c1"], 1);
    assert!(e.contains("unclosed action"), "{e}");
    let e = b.fails(
        &[
            "events",
            "--since",
            "1h",
            "--until",
            "0s",
            "--format",
            "{{.Action",
        ],
        1,
    );
    assert!(e.contains("unclosed action"), "{e}");
    let e = b.fails(
        &[
            "events",
            "--since",
            "1h",
            "--until",
            "0s",
            "--format",
            "{{.Nope}}",
        ],
        1,
    );
    assert!(
        e.contains("can't evaluate field Nope in type events.Message"),
        "{e}"
    );

    b.ok(&["rm", "c1", "long"]);
}

#[test]
fn list_commands_format() {
    let b = Berth::with_busybox();
    let web = run_d(
        &b,
        &[
            "--name",
            "web",
            "--label",
            "tier=front",
            "busybox",
            "sleep",
            "60",
        ],
    );
    b.ok(&["run", "--name", "done", "busybox", "true"]);
    let done = b
        .ok(&["inspect", "-f", "{{.Id}}", "done"])
        .trim()
        .to_owned();

    // table: Docker's headers, columns as its tabwriter aligns them (at
    // least 10 wide, 3 spaces past the widest cell; the last not padded).
    let t = b.ok(&[
        "ps",
        "-a",
        "--format",
        r#"table {{.ID}}\t{{.Names}}\t{{.Label "tier"}}"#,
    ]);
    assert_eq!(
        t,
        format!(
            "CONTAINER ID   NAMES     LABEL\n{}   done      \n{}   web       front\n",
            &done[..12],
            &web[..12]
        )
    );
    assert_eq!(
        b.ok(&["ps", "-a", "--format", "table {{.Names}}\t{{.State}}"]),
        "NAMES     STATE\ndone      exited\nweb       running\n"
    );
    // Without table, tabs stay tabs and there is no header.
    assert_eq!(
        b.ok(&["ps", "-a", "--format", r"{{.Names}}\t{{.State}}"]),
        "done\texited\nweb\trunning\n"
    );
    assert_eq!(
        b.ok(&[
            "ps",
            "--format",
            r#"{{.Names}} {{.Label "tier"}} {{.Labels}}"#
        ]),
        "web front tier=front\n"
    );
    assert_eq!(
        b.ok(&[
            "ps",
            "-a",
            "--format",
            r#"{{if eq .State "running"}}{{.Names | upper}}{{else}}-{{end}}"#
        ]),
        "-\nWEB\n"
    );
    // json: one object per line, Docker's field names.
    let j = b.ok(&["ps", "-a", "--format", "json"]);
    let docs: Vec<Value> = j
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(docs.len(), 2, "{j}");
    assert_eq!(docs[0]["Names"], "done");
    assert_eq!(docs[1]["Names"], "web");
    assert_eq!(docs[1]["State"], "running");
    assert_eq!(docs[1]["Labels"], "tier=front");
    assert_eq!(docs[1]["ID"], &web[..12]);
    let same: Vec<Value> = b
        .ok(&["ps", "-a", "--format", "{{json .}}"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(same.len(), 2);
    assert_eq!(same[1]["Names"], "web");
    // A format showing .Size has the size computed, as Docker does.
    let size = b.ok(&["ps", "--format", "{{.Size}}"]);
    assert!(size.trim_end().ends_with('B'), "{size:?}");
    // "table" alone is the command's own table.
    assert!(b
        .ok(&["ps", "--format", "table"])
        .starts_with("CONTAINER ID"));

    // images, volumes, history, system df, stats.
    assert_eq!(
        b.ok(&["images", "--format", r"table {{.Repository}}\t{{.Tag}}"]),
        "REPOSITORY   TAG\nbusybox      latest\n"
    );
    // The default table is Docker's default template, to the space. Its
    // CREATED column moves with the clock ("Less than a second ago", "1
    // second ago"): a pair of calls that a second's change fell between is
    // taken again.
    let pair = || {
        (
            b.ok(&["images"]),
            b.ok(&[
                "images",
                "--format",
                r"table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}",
            ]),
        )
    };
    let (mut default, mut templated) = pair();
    for _ in 0..3 {
        if default == templated {
            break;
        }
        (default, templated) = pair();
    }
    assert_eq!(default, templated);
    let img: Value = serde_json::from_str(b.ok(&["images", "--format", "json"]).trim()).unwrap();
    assert_eq!(img["Repository"], "busybox");
    b.ok(&["volume", "create", "vol1"]);
    assert_eq!(
        b.ok(&["volume", "ls", "--format", "{{.Driver}} {{.Name}}"]),
        "local vol1\n"
    );
    assert_eq!(
        b.ok(&["volume", "ls", "--format", r"table {{.Name}}\t{{.Driver}}"]),
        "VOLUME NAME   DRIVER\nvol1          local\n"
    );
    let hist = b.ok(&["history", "--format", "{{.ID}}|{{.Size}}", "busybox"]);
    assert!(
        !hist.is_empty() && hist.lines().all(|l| l.contains('|')),
        "{hist}"
    );
    let df = b.ok(&["system", "df", "--format", "{{.Type}}={{.TotalCount}}"]);
    assert_eq!(
        df.lines().take(2).collect::<Vec<_>>(),
        ["Images=1", "Containers=2"]
    );
    let df = b.ok(&["system", "df", "--format", "table {{.Type}}\t{{.Active}}"]);
    // "Local Volumes" is the widest cell of the first column.
    assert!(
        df.starts_with("TYPE            ACTIVE\nImages          1\nContainers      1\n"),
        "{df}"
    );
    assert_eq!(
        b.ok(&[
            "stats",
            "--no-stream",
            "--format",
            "{{.Name}}:{{.PIDs}}",
            "web"
        ]),
        "web:1\n"
    );
    let st = b.ok(&[
        "stats",
        "--no-stream",
        "--format",
        r"table {{.Name}}\t{{.PIDs}}",
        "web",
    ]);
    assert_eq!(st, "NAME      PIDS\nweb       1\n");

    // events: Go's field names in a template, JSON's in json.
    let ev = b.ok(&[
        "events",
        "--since",
        "1h",
        "--until",
        "0s",
        "--filter",
        "container=done",
        "--format",
        r#"{{.Type}} {{.Status}} {{.Actor.Attributes.name}} {{json .Actor.Attributes.name}}"#,
    ]);
    assert!(
        ev.lines().any(|l| l == r#"container create done "done""#),
        "{ev}"
    );
    let ev = b.ok(&[
        "events",
        "--since",
        "1h",
        "--until",
        "0s",
        "--filter",
        "container=done",
        "--filter",
        "event=create",
        "--format",
        "{{json .}}",
    ]);
    let e: Value = serde_json::from_str(ev.trim()).unwrap();
    assert_eq!(e["status"], "create");
    assert_eq!(e["Actor"]["ID"], done.as_str());

    b.ok(&["rm", "-f", "web", "done"]);
    b.ok(&["volume", "rm", "vol1"]);
}

#[test]
fn inspect_network_settings() {
    let b = Berth::with_busybox();
    run_d(
        &b,
        &[
            "--name",
            "net",
            "-p",
            "127.0.0.1::80",
            "busybox",
            "sleep",
            "60",
        ],
    );
    let ip = fmt(&b, "{{.NetworkSettings.IPAddress}}", "net");
    assert!(ip.parse::<std::net::Ipv4Addr>().is_ok(), "{ip:?}");
    assert_eq!(
        fmt(
            &b,
            "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
            "net"
        ),
        ip
    );
    assert_eq!(
        fmt(
            &b,
            "{{range $name, $ep := .NetworkSettings.Networks}}{{$name}}{{end}}",
            "net"
        ),
        "bridge"
    );
    // The published port, as scripts read it from Docker.
    let port = b.ok(&["port", "net", "80"]);
    let host_port = port.trim().rsplit(':').next().unwrap().to_owned();
    assert_eq!(
        fmt(
            &b,
            r#"{{(index (index .NetworkSettings.Ports "80/tcp") 0).HostPort}}"#,
            "net"
        ),
        host_port
    );
    assert_eq!(
        fmt(
            &b,
            r#"{{range $p, $conf := .NetworkSettings.Ports}}{{$p}} -> {{(index $conf 0).HostIp}}:{{(index $conf 0).HostPort}}{{end}}"#,
            "net"
        ),
        format!("80/tcp -> 127.0.0.1:{host_port}")
    );
    assert_eq!(
        fmt(&b, r#"{{index .NetworkSettings.Ports "80/tcp"}}"#, "net"),
        format!("[map[HostIp:127.0.0.1 HostPort:{host_port}]]")
    );
    let ports = b.ok(&["ps", "--format", "{{.Names}} {{.Ports}}"]);
    assert!(
        ports.starts_with("net ") && ports.contains(&host_port),
        "{ports}"
    );
    b.ok(&["rm", "-f", "net"]);
}
