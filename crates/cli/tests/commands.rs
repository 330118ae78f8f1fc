//! The commands added for the Docker-compatible lifecycle beyond run/stop:
//! `ps` flags and filters, `events`, `cp` (both directions, streams, and
//! symlinks that must not lead out of the container), `volume`, `stats`,
//! `update`, health checks, `port` and `inspect` of a running container.
//! Every test leaves no container, mount or monitor behind (checked when its
//! store is dropped).
#![allow(clippy::unwrap_used)]

mod common;

use common::{describe, is_hex64, layer_tar, process_alive, tar_names, text, wait_until, Berth};
use serde_json::Value;
use std::io::Read;
use std::path::Path;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// `run -d ARGS`: asserts a 64-hex ID on one line, returns it.
fn run_d(b: &Berth, args: &[&str]) -> String {
    let mut a = vec!["run", "-d"];
    a.extend_from_slice(args);
    let out = b.run(&a);
    assert!(out.status.success(), "{}", describe(&a, &out));
    let id = text(&out.stdout).trim().to_owned();
    assert!(is_hex64(&id), "run -d printed {id:?}");
    id
}

/// Runs berth, asserts it fails (any non-zero status) with a single
/// `Error: ` line on stderr, and returns that line.
fn fails(b: &Berth, args: &[&str]) -> String {
    let out = b.run(args);
    let what = describe(args, &out);
    assert!(!out.status.success(), "{what}");
    assert!(out.status.code().is_some(), "{what}");
    let err = text(&out.stderr);
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| !l.starts_with("See 'berth"))
        .collect();
    assert_eq!(lines.len(), 1, "expected one error line: {what}");
    assert!(lines[0].starts_with("Error: "), "{what}");
    lines[0].to_owned()
}

/// The STATUS column of `ps -a` for the container named `name` (None if absent).
fn status(b: &Berth, name: &str) -> Option<String> {
    let out = b.ok(&["ps", "-a", "--format", "{{.Names}}|{{.Status}}"]);
    out.lines().find_map(|l| {
        let (n, s) = l.split_once('|')?;
        (n == name).then(|| s.to_owned())
    })
}

fn inspect(b: &Berth, name: &str) -> Value {
    let out = b.ok(&["inspect", name]);
    let v: Value = serde_json::from_str(&out).unwrap();
    v[0].clone()
}

/// The output lines of `ps ARGS`, in order.
fn ps_lines(b: &Berth, args: &[&str]) -> Vec<String> {
    let mut a = vec!["ps"];
    a.extend_from_slice(args);
    b.ok(&a).lines().map(str::to_owned).collect()
}

/// `ps --format {{.Names}} ARGS`, sorted.
fn ps_names(b: &Berth, args: &[&str]) -> Vec<String> {
    let mut a = vec!["--format", "{{.Names}}"];
    a.extend_from_slice(args);
    let mut v = ps_lines(b, &a);
    v.sort();
    v
}

/// Reads `r` in a thread, sending what arrives.
fn reader(mut r: impl Read + Send + 'static) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if tx.send(buf[..n].to_vec()).is_err() {
                        return;
                    }
                }
            }
        }
    });
    rx
}

fn exec_out(b: &Berth, name: &str, cmd: &[&str]) -> String {
    let mut a = vec!["exec", name];
    a.extend_from_slice(cmd);
    b.ok(&a)
}

// ------------------------------------------------------------------ ps

#[test]
fn ps_flags_filters_and_formats() {
    let b = Berth::with_busybox();
    let made = b.ok(&[
        "create", "--name", "made", "-l", "tier=db", "busybox", "true",
    ]);
    let made = made.trim().to_owned();
    assert!(is_hex64(&made), "{made}");
    let out = b.run(&[
        "run", "--name", "three", "-l", "tier=web", "busybox", "sh", "-c", "exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    b.ok(&[
        "run",
        "--name",
        "zero",
        "busybox",
        "sh",
        "-c",
        "head -c 300000 /dev/zero > /big",
    ]);
    let up = run_d(
        &b,
        &[
            "--name",
            "up",
            "-l",
            "tier=web",
            "-l",
            "owner=me",
            "busybox",
            "sh",
            "-c",
            "sleep 60; echo a-rather-long-command-line",
        ],
    );

    // Running only by default; newest first with -a.
    assert_eq!(ps_names(&b, &[]), ["up"]);
    assert_eq!(
        ps_lines(&b, &["-a", "--format", "{{.Names}}"]),
        ["up", "zero", "three", "made"]
    );
    let table = b.ok(&["ps"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2, "{table}");
    for h in [
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "NAMES",
    ] {
        assert!(lines[0].contains(h), "{table}");
    }
    assert!(!lines[0].contains("SIZE"), "{table}");
    assert!(lines[1].starts_with(&up[..12]), "{table}");
    assert!(
        !lines[1].contains(&up[..13]),
        "truncated ID expected: {table}"
    );
    assert!(
        !lines[1].contains("a-rather-long-command-line"),
        "command not truncated: {table}"
    );
    assert!(lines[1].ends_with(" up"), "{table}");

    // -q, --no-trunc
    assert_eq!(ps_lines(&b, &["-q"]), [up[..12].to_owned()]);
    let all_ids = ps_lines(&b, &["-a", "-q", "--no-trunc"]);
    assert_eq!(all_ids.len(), 4, "{all_ids:?}");
    assert!(all_ids.iter().all(|i| is_hex64(i)), "{all_ids:?}");
    assert_eq!(all_ids[0], up);
    assert_eq!(all_ids[3], made);
    let full = b.ok(&["ps", "--no-trunc"]);
    assert!(full.contains(&up), "{full}");
    assert!(full.contains("a-rather-long-command-line"), "{full}");

    // -n, -l: the last created, whatever their state.
    assert_eq!(ps_lines(&b, &["-n", "1", "--format", "{{.Names}}"]), ["up"]);
    assert_eq!(
        ps_lines(&b, &["-n", "2", "--format", "{{.Names}}"]),
        ["up", "zero"]
    );
    assert_eq!(ps_lines(&b, &["-l", "-q"]), [up[..12].to_owned()]);
    b.ok(&["create", "--name", "newest", "busybox", "true"]);
    assert_eq!(ps_lines(&b, &["-l", "--format", "{{.Names}}"]), ["newest"]);
    b.ok(&["rm", "newest"]);

    // -s: a SIZE column, and the writable layer's size.
    let sized = b.ok(&["ps", "-a", "-s"]);
    let header = sized.lines().next().unwrap();
    assert!(header.contains("SIZE"), "{sized}");
    let zero_row = sized.lines().find(|l| l.contains(" zero ")).unwrap();
    let size = zero_row.split_whitespace().last().unwrap();
    assert!(
        size.ends_with("kB") && size.trim_end_matches("kB").parse::<f64>().unwrap() >= 300.0,
        "the 300 kB written by zero not in its SIZE: {sized}"
    );
    let sz = b.ok(&["ps", "-a", "-s", "--format", "{{.Names}} {{.Size}}"]);
    assert!(
        sz.lines()
            .any(|l| l.starts_with("zero ") && l.ends_with("kB")),
        "{sz}"
    );

    // Filters.
    let f = |args: &[&str]| {
        let mut a = Vec::new();
        for x in args {
            a.push("--filter");
            a.push(*x);
        }
        ps_names(&b, &a)
    };
    assert_eq!(f(&["status=exited"]), ["three", "zero"]);
    assert_eq!(f(&["status=running"]), ["up"]);
    assert_eq!(f(&["status=created"]), ["made"]);
    assert_eq!(f(&["name=thr"]), Vec::<String>::new(), "name= without -a");
    assert_eq!(ps_names(&b, &["-a", "--filter", "name=thr"]), ["three"]);
    assert_eq!(
        ps_names(&b, &["-a", "--filter", "label=tier"]),
        ["made", "three", "up"]
    );
    assert_eq!(
        ps_names(&b, &["-a", "--filter", "label=tier=web"]),
        ["three", "up"]
    );
    assert_eq!(ps_names(&b, &["-a", "--filter", "label=owner=me"]), ["up"]);
    assert_eq!(
        ps_names(&b, &["-a", "--filter", "label=owner=you"]),
        Vec::<String>::new()
    );
    assert_eq!(
        ps_names(&b, &["-a", "--filter", "ancestor=busybox"]),
        ["made", "three", "up", "zero"]
    );
    assert_eq!(
        ps_names(&b, &["-a", "--filter", "ancestor=busybox:latest"]),
        ["made", "three", "up", "zero"]
    );
    assert_eq!(
        ps_names(&b, &["-a", "--filter", "ancestor=alpine"]),
        Vec::<String>::new()
    );
    assert_eq!(f(&["exited=3"]), ["three"]);
    assert_eq!(f(&["exited=0"]), ["zero"]);
    assert_eq!(f(&["exited=137"]), Vec::<String>::new());
    assert_eq!(
        ps_names(&b, &["-a", "--filter", &format!("id={}", &made[..10])]),
        ["made"]
    );
    assert_eq!(
        ps_names(&b, &["-a", "--filter", &format!("id={made}")]),
        ["made"]
    );
    // Same key ORs, different keys AND.
    assert_eq!(
        f(&["status=exited", "status=created"]),
        ["made", "three", "zero"]
    );
    assert_eq!(f(&["exited=0", "exited=3"]), ["three", "zero"]);
    assert_eq!(f(&["status=exited", "label=tier=web"]), ["three"]);
    assert_eq!(f(&["status=running", "label=tier=web"]), ["up"]);
    assert_eq!(
        f(&["status=created", "label=tier=web"]),
        Vec::<String>::new()
    );
    assert_eq!(
        ps_names(
            &b,
            &["-a", "--filter", "label=tier=web", "--filter", "name=up"]
        ),
        ["up"]
    );

    // Bad filters.
    let e = fails(&b, &["ps", "--filter", "colour=red"]);
    assert!(e.contains("colour"), "{e}");
    let e = fails(&b, &["ps", "--filter", "status=sleeping"]);
    assert!(e.contains("sleeping"), "{e}");
    fails(&b, &["ps", "--filter", "status"]);
    fails(&b, &["ps", "--filter", "exited=x"]);

    // Formats.
    let t = b.ok(&["ps", "-a", "--format", "{{.ID}} {{.Names}}"]);
    let want: Vec<String> = all_ids
        .iter()
        .zip(["up", "zero", "three", "made"])
        .map(|(i, n)| format!("{} {n}", &i[..12]))
        .collect();
    assert_eq!(t.lines().collect::<Vec<_>>(), want);
    let j = b.ok(&["ps", "-a", "--format", "json"]);
    let docs: Vec<Value> = j
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect();
    assert_eq!(docs.len(), 4, "{j}");
    for (d, n) in docs.iter().zip(["up", "zero", "three", "made"]) {
        assert_eq!(d["Names"], n, "{d}");
        assert!(d["ID"].as_str().unwrap().len() == 12, "{d}");
        assert!(d["Status"].is_string(), "{d}");
    }
    assert_eq!(docs[0]["State"], "running");
    assert_eq!(docs[1]["State"], "exited");
    assert_eq!(docs[3]["State"], "created");
    assert!(docs[0]["Status"].as_str().unwrap().starts_with("Up "));
    assert!(docs[2]["Status"]
        .as_str()
        .unwrap()
        .starts_with("Exited (3)"));
    assert_eq!(docs[3]["Status"], "Created");

    b.ok(&["rm", "-f", "up", "zero", "three", "made"]);
}

// ------------------------------------------------------------------ events

/// The filters of `ps` that dockerd has beyond the first six, and its
/// words for bad values (each checked against dockerd 20.10).
#[test]
fn ps_filters_as_dockerd() {
    let b = Berth::with_busybox();
    let out = b.run(&[
        "run",
        "--name",
        "three",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    b.ok(&[
        "create",
        "--name",
        "mid",
        "-v",
        "data:/data",
        "busybox",
        "true",
    ]);
    let last = b.ok(&[
        "create",
        "--name",
        "last",
        "--network",
        "none",
        "busybox",
        "true",
    ]);
    let last = last.trim().to_owned();
    let names = |f: &[&str]| {
        let mut a = vec!["-a"];
        for x in f {
            a.push("--filter");
            a.push(x);
        }
        ps_lines(&b, &[&a[..], &["--format", "{{.Names}}"]].concat())
    };
    // before/since: by place in the newest-first list.
    assert_eq!(names(&["before=last"]), ["mid", "three"]);
    assert_eq!(names(&["since=three"]), ["last", "mid"]);
    assert_eq!(names(&["since=three", "before=last"]), ["mid"]);
    // name: a regex on "/NAME"; id: a prefix, not any part.
    assert_eq!(names(&["name=^/la"]), ["last"]);
    assert_eq!(names(&[&format!("id={}", &last[..8])]), ["last"]);
    assert!(names(&[&format!("id={}", &last[5..15])]).is_empty());
    // network by name, volume by name or destination.
    assert_eq!(names(&["network=none"]), ["last", "three"]);
    assert_eq!(names(&["volume=data"]), ["mid"]);
    assert_eq!(names(&["volume=/data"]), ["mid"]);
    assert!(names(&["volume=other"]).is_empty());
    // Nothing runs a healthcheck; berth runs no swarm tasks.
    assert_eq!(names(&["health=none"]), ["last", "mid", "three"]);
    assert!(names(&["health=healthy"]).is_empty());
    assert!(names(&["is-task=true"]).is_empty());
    assert_eq!(names(&["is-task=false"]).len(), 3);
    // dockerd's words for bad values and unknown containers.
    assert_eq!(
        fails(&b, &["ps", "--filter", "status=sleeping"]),
        "Error: invalid filter 'status=sleeping'"
    );
    assert_eq!(
        fails(&b, &["ps", "--filter", "exited=x"]),
        "Error: strconv.Atoi: parsing \"x\": invalid syntax"
    );
    assert_eq!(
        fails(&b, &["ps", "--filter", "health=bad"]),
        "Error: Unrecognised filter value for health: bad"
    );
    assert_eq!(
        fails(&b, &["ps", "--filter", "is-task=maybe"]),
        "Error: invalid filter 'is-task=[maybe]'"
    );
    assert_eq!(
        fails(&b, &["ps", "--filter", "before=nope"]),
        "Error: no such container nope"
    );
    assert_eq!(
        fails(&b, &["ps", "--filter", "colour=red"]),
        "Error: invalid filter 'colour'"
    );
    // MOUNTS: a volume's name, a bind's source cut to 15 characters.
    let src = b.scratch().join("a-long-bind-source");
    std::fs::create_dir(&src).unwrap();
    let bind = format!("{}:/x", src.display());
    b.ok(&[
        "create", "--name", "binds", "-v", "data:/d", "-v", &bind, "busybox", "true",
    ]);
    let m = ps_lines(
        &b,
        &["-a", "--filter", "name=binds", "--format", "{{.Mounts}}"],
    );
    let cut: String = src.display().to_string().chars().take(14).collect();
    assert_eq!(m, [format!("data,{cut}…")]);
    let m = ps_lines(
        &b,
        &[
            "-a",
            "--no-trunc",
            "--filter",
            "name=binds",
            "--format",
            "{{.Mounts}}",
        ],
    );
    assert_eq!(m, [format!("data,{}", src.display())]);
    b.ok(&["rm", "three", "mid", "last", "binds"]);
    b.ok(&["volume", "rm", "data"]);
}

/// The `events` default lines about container `id` (container events):
/// (action, attributes).
fn actions_of(events: &str, id: &str) -> Vec<(String, String)> {
    events
        .lines()
        .filter_map(|l| {
            let mut w = l.splitn(5, ' ');
            let _time = w.next()?;
            // (Network and volume events name the container in an attribute.)
            if w.next()? != "container" {
                return None;
            }
            let action = w.next()?.to_owned();
            let actor = w.next()?;
            (actor == id).then(|| (action, w.next().unwrap_or("").to_owned()))
        })
        .collect()
}

#[test]
fn events_history_filters_and_stream() {
    let b = Berth::with_busybox();
    let brief = run_d(
        &b,
        &["--rm", "--name", "brief", "busybox", "sh", "-c", "exit 4"],
    );
    wait_until(20, "brief removed", || status(&b, "brief").is_none());
    let other = run_d(&b, &["--name", "other", "busybox", "sleep", "60"]);
    b.ok(&["pause", "other"]);
    b.ok(&["unpause", "other"]);
    b.ok(&["rename", "other", "other2"]);
    b.ok(&["kill", "other2"]);
    wait_until(20, "other2 exited", || {
        status(&b, "other2").is_some_and(|s| s.starts_with("Exited"))
    });

    let all = b.ok(&["events", "--since", "1m", "--until", "0s"]);
    let seen = actions_of(&all, &brief);
    let acts: Vec<&str> = seen.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(acts, ["create", "start", "die", "destroy"], "{all}");
    assert!(seen[2].1.contains("exitCode=4"), "{all}");
    assert!(seen[0].1.contains("name=brief"), "{all}");
    assert!(seen[0].1.contains("image=busybox"), "{all}");
    let seen = actions_of(&all, &other);
    let acts: Vec<&str> = seen.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(
        acts,
        ["create", "start", "pause", "unpause", "rename", "kill", "die"],
        "{all}"
    );
    assert!(seen[4].1.contains("oldName=/other"), "{all}");
    assert!(seen[4].1.contains("name=other2"), "{all}");
    assert!(seen[5].1.contains("signal="), "{all}");
    assert!(seen[6].1.contains("exitCode=137"), "{all}");
    // Timestamps in order.
    let times: Vec<&str> = all.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{all}");

    let dies = b.ok(&[
        "events",
        "--since",
        "1m",
        "--until",
        "0s",
        "--filter",
        "event=die",
    ]);
    assert_eq!(dies.lines().count(), 2, "{dies}");
    assert!(
        dies.lines().all(|l| l.split(' ').nth(2) == Some("die")),
        "{dies}"
    );
    let only = b.ok(&[
        "events",
        "--since",
        "1m",
        "--until",
        "0s",
        "--filter",
        "container=brief",
    ]);
    assert_eq!(actions_of(&only, &brief).len(), 4, "{only}");
    assert_eq!(only.lines().count(), 4, "{only}");
    let acts = b.ok(&[
        "events",
        "--since",
        "1m",
        "--until",
        "0s",
        "--filter",
        "container=brief",
        "--format",
        "{{.Action}}",
    ]);
    assert_eq!(acts, "create\nstart\ndie\ndestroy\n");
    let two = b.ok(&[
        "events",
        "--since",
        "1m",
        "--until",
        "0s",
        "--filter",
        "container=brief",
        "--filter",
        "event=die",
        "--filter",
        "event=create",
        "--format",
        "{{.Action}} {{.ID}}",
    ]);
    assert_eq!(two, format!("create {brief}\ndie {brief}\n"));
    // Nothing before the window.
    assert_eq!(b.ok(&["events", "--since", "1h", "--until", "59m"]), "");
    fails(&b, &["events", "--filter", "colour=red", "--until", "0s"]);

    // A live stream: a start after it began shows up promptly.
    let mut child = b
        .cmd(&["events"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = reader(child.stdout.take().unwrap());
    std::thread::sleep(Duration::from_millis(800));
    let live = run_d(&b, &["--name", "live", "busybox", "sleep", "60"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = String::new();
    let found = loop {
        if got
            .lines()
            .any(|l| l.contains(" start ") && l.contains(&live))
        {
            break true;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(b) => got.push_str(&text(&b)),
            Err(_) => break false,
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(found, "no start line for {live} in the stream: {got:?}");
    assert!(!got.contains(&brief), "history without --since: {got}");

    b.ok(&["rm", "-f", "live", "other2"]);
}

// ------------------------------------------------------------------ cp

/// The single regular file in a tar stream: (name, contents).
fn tar_files(data: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut a = tar::Archive::new(data);
    let mut out = Vec::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        if e.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let mut v = Vec::new();
        e.read_to_end(&mut v).unwrap();
        out.push((name, v));
    }
    out
}

#[test]
fn cp_both_ways_and_streams() {
    let b = Berth::with_busybox();
    run_d(&b, &["--name", "c1", "busybox", "sleep", "60"]);
    let s = b.scratch();
    let s_str = |p: &Path| p.to_str().unwrap().to_owned();

    // Host file → container dir (keeps its name).
    let hello = s.join("hello.txt");
    std::fs::write(&hello, "hi there\n").unwrap();
    b.ok(&["cp", &s_str(&hello), "c1:/tmp/"]);
    assert_eq!(exec_out(&b, "c1", &["cat", "/tmp/hello.txt"]), "hi there\n");
    // Host file → a new container path (renamed).
    b.ok(&["cp", &s_str(&hello), "c1:/tmp/renamed"]);
    assert_eq!(exec_out(&b, "c1", &["cat", "/tmp/renamed"]), "hi there\n");

    // Host dir → new container path.
    let tree = s.join("tree");
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    std::fs::write(tree.join("a.txt"), "A").unwrap();
    std::fs::write(tree.join("sub/b.txt"), "B").unwrap();
    b.ok(&["cp", &s_str(&tree), "c1:/newtree"]);
    assert_eq!(exec_out(&b, "c1", &["cat", "/newtree/a.txt"]), "A");
    assert_eq!(exec_out(&b, "c1", &["cat", "/newtree/sub/b.txt"]), "B");
    // … and into an existing container dir: under its own name.
    b.ok(&["cp", &s_str(&tree), "c1:/tmp"]);
    assert_eq!(exec_out(&b, "c1", &["cat", "/tmp/tree/sub/b.txt"]), "B");

    // Container dir → host, as a new name.
    exec_out(&b, "c1", &["sh", "-c", "echo C > /newtree/sub/c.txt"]);
    let out1 = s.join("out1");
    b.ok(&["cp", "c1:/newtree", &s_str(&out1)]);
    assert_eq!(std::fs::read_to_string(out1.join("a.txt")).unwrap(), "A");
    assert_eq!(
        std::fs::read_to_string(out1.join("sub/c.txt")).unwrap(),
        "C\n"
    );
    assert!(!out1.join("newtree").exists());
    // … into an existing host dir, under its own name.
    let exist = s.join("exist");
    std::fs::create_dir(&exist).unwrap();
    b.ok(&["cp", "c1:/newtree", &s_str(&exist)]);
    assert_eq!(
        std::fs::read_to_string(exist.join("newtree/sub/b.txt")).unwrap(),
        "B"
    );
    // A container file → a host file path.
    b.ok(&["cp", "c1:/tmp/hello.txt", &s_str(&s.join("back.txt"))]);
    assert_eq!(
        std::fs::read_to_string(s.join("back.txt")).unwrap(),
        "hi there\n"
    );
    // No temporary directories left in the host dirs.
    for d in [&s, &exist] {
        for e in std::fs::read_dir(d).unwrap() {
            let n = e.unwrap().file_name().to_string_lossy().into_owned();
            assert!(!n.starts_with(".berth-cp"), "{n} left in {}", d.display());
        }
    }

    // Container path → a tar on stdout.
    let out = b.run(&["cp", "c1:/newtree", "-"]);
    assert!(out.status.success(), "{}", describe(&["cp"], &out));
    let mut names = tar_names(&out.stdout);
    names.iter_mut().for_each(|n| {
        let t = n.trim_end_matches('/').to_owned();
        *n = t;
    });
    names.sort();
    assert_eq!(
        names,
        [
            "newtree",
            "newtree/a.txt",
            "newtree/sub",
            "newtree/sub/b.txt",
            "newtree/sub/c.txt"
        ]
    );
    let files = tar_files(&out.stdout);
    assert!(
        files.contains(&("newtree/a.txt".to_owned(), b"A".to_vec())),
        "{files:?}"
    );

    // A tar on stdin → container dir.
    let t = layer_tar(&[
        common::dir("fromtar"),
        common::file("fromtar/x.txt", b"tarred\n"),
        common::file("top.txt", b"top\n"),
    ]);
    let out = b.run_stdin(&["cp", "-", "c1:/tmp"], &t);
    assert!(out.status.success(), "{}", describe(&["cp", "-"], &out));
    assert_eq!(
        exec_out(&b, "c1", &["cat", "/tmp/fromtar/x.txt"]),
        "tarred\n"
    );
    assert_eq!(exec_out(&b, "c1", &["cat", "/tmp/top.txt"]), "top\n");

    // Missing paths: one line, non-zero.
    let e = fails(&b, &["cp", "c1:/no/such/file", "-"]);
    assert!(
        e.starts_with("Error: Could not find the file /no/such/file in container"),
        "{e}"
    );
    fails(&b, &["cp", "c1:/nosuch", &s_str(&s.join("never"))]);
    assert!(!s.join("never").exists());
    fails(&b, &["cp", &s_str(&s.join("absent")), "c1:/tmp/"]);
    fails(&b, &["cp", &s_str(&hello), "nosuchcontainer:/tmp/"]);

    b.ok(&["rm", "-f", "c1"]);
}

#[test]
fn cp_does_not_follow_container_symlinks_to_the_host() {
    let b = Berth::with_busybox();
    run_d(&b, &["--name", "c1", "busybox", "sleep", "60"]);
    exec_out(&b, "c1", &["ln", "-s", "/etc", "/tmp/esc"]);
    exec_out(&b, "c1", &["ln", "-s", "../../../../../../etc", "/tmp/rel"]);
    exec_out(
        &b,
        "c1",
        &[
            "sh",
            "-c",
            "echo 'root:x:0:0:container-marker:/root:/bin/sh' > /etc/passwd",
        ],
    );
    let s = b.scratch();
    let name = format!("berth-cp-escape-{}", std::process::id());
    let src = s.join(&name);
    std::fs::write(&src, "planted\n").unwrap();
    let host_etc = Path::new("/etc").join(&name);
    assert!(!host_etc.exists());
    let host_passwd = std::fs::read("/etc/passwd").unwrap();

    for link in ["esc", "rel"] {
        let dest = format!("c1:/tmp/{link}/");
        let out = b.run(&["cp", src.to_str().unwrap(), &dest]);
        let host_hit = host_etc.exists();
        let _ = std::fs::remove_file(&host_etc);
        assert!(!host_hit, "cp through /tmp/{link} wrote the host's /etc");
        assert!(out.status.success(), "{}", describe(&["cp", &dest], &out));
        // It landed in the container's /etc instead.
        assert_eq!(
            exec_out(&b, "c1", &["cat", &format!("/etc/{name}")]),
            "planted\n"
        );
        exec_out(&b, "c1", &["rm", &format!("/etc/{name}")]);

        // Reading through the link reads the container's /etc/passwd.
        let from = format!("c1:/tmp/{link}/passwd");
        let out = b.run(&["cp", &from, "-"]);
        assert!(out.status.success(), "{}", describe(&["cp", &from], &out));
        let files = tar_files(&out.stdout);
        assert_eq!(files.len(), 1, "{files:?}");
        assert_eq!(files[0].0, "passwd");
        assert_eq!(
            text(&files[0].1),
            "root:x:0:0:container-marker:/root:/bin/sh\n",
            "cp {from} - did not read the container's file"
        );
        let to = s.join(format!("passwd-{link}"));
        b.ok(&["cp", &from, to.to_str().unwrap()]);
        assert_eq!(
            std::fs::read_to_string(&to).unwrap(),
            "root:x:0:0:container-marker:/root:/bin/sh\n"
        );
    }
    assert_eq!(std::fs::read("/etc/passwd").unwrap(), host_passwd);
    // The link itself, copied out, stays a link.
    let out = b.run(&["cp", "c1:/tmp/esc", "-"]);
    assert!(out.status.success(), "{}", describe(&["cp"], &out));
    let mut a = tar::Archive::new(&out.stdout[..]);
    let e = a.entries().unwrap().next().unwrap().unwrap();
    assert_eq!(e.header().entry_type(), tar::EntryType::Symlink);
    assert_eq!(e.link_name().unwrap().unwrap(), Path::new("/etc"));
    // A tar on stdin cannot climb out either.
    let t = layer_tar(&[common::file(&format!("esc/{name}"), b"via tar\n")]);
    let _ = b.run_stdin(&["cp", "-", "c1:/tmp"], &t);
    let host_hit = host_etc.exists();
    let _ = std::fs::remove_file(&host_etc);
    assert!(!host_hit, "a tar through /tmp/esc wrote the host's /etc");

    b.ok(&["rm", "-f", "c1"]);
}

#[test]
fn cp_on_a_created_container() {
    let b = Berth::with_busybox();
    b.ok(&["create", "--name", "cold", "busybox", "cat", "/tmp/in.txt"]);
    let s = b.scratch();
    let f = s.join("in.txt");
    std::fs::write(&f, "cold copy\n").unwrap();
    b.ok(&["cp", f.to_str().unwrap(), "cold:/tmp/"]);
    let out = b.run(&["cp", "cold:/tmp/in.txt", "-"]);
    assert!(out.status.success(), "{}", describe(&["cp"], &out));
    assert_eq!(
        tar_files(&out.stdout),
        [("in.txt".to_owned(), b"cold copy\n".to_vec())]
    );
    let back = s.join("passwd");
    b.ok(&["cp", "cold:/etc/passwd", back.to_str().unwrap()]);
    assert!(std::fs::read_to_string(&back).unwrap().starts_with("root:"));
    // What was copied in is there when it starts (`start` then `wait`:
    // `start -a` races a fast container, see below).
    assert_eq!(b.ok(&["start", "cold"]), "cold\n");
    assert_eq!(b.ok(&["wait", "cold"]), "0\n");
    assert_eq!(b.ok(&["logs", "cold"]), "cold copy\n");
    b.ok(&["rm", "cold"]);
}

// ------------------------------------------------------------------ volumes

#[test]
fn volumes() {
    let b = Berth::with_busybox();
    assert_eq!(b.ok(&["volume", "create", "data1"]), "data1\n");
    let anon = b.ok(&["volume", "create"]).trim().to_owned();
    assert!(is_hex64(&anon), "{anon}");
    let mut q: Vec<String> = b
        .ok(&["volume", "ls", "-q"])
        .lines()
        .map(str::to_owned)
        .collect();
    q.sort();
    let mut want = vec![anon.clone(), "data1".to_owned()];
    want.sort();
    assert_eq!(q, want);
    let ls = b.ok(&["volume", "ls"]);
    let lines: Vec<&str> = ls.lines().collect();
    assert_eq!(lines.len(), 3, "{ls}");
    assert!(
        lines[0].starts_with("DRIVER") && lines[0].contains("VOLUME NAME"),
        "{ls}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["local", "data1"]),
        "{ls}"
    );

    let v: Value = serde_json::from_str(&b.ok(&["volume", "inspect", "data1"])).unwrap();
    let v = v.as_array().unwrap();
    assert_eq!(v.len(), 1);
    assert_eq!(v[0]["Name"], "data1");
    assert_eq!(v[0]["Driver"], "local");
    assert_eq!(v[0]["Scope"], "local");
    let mp = Path::new(v[0]["Mountpoint"].as_str().unwrap()).to_path_buf();
    assert!(mp.starts_with(b.root()), "{mp:?}");
    assert!(mp.is_dir(), "{mp:?}");
    let out = b.run(&["volume", "inspect", "nosuch"]);
    assert!(!out.status.success());

    // Data outlives the containers that wrote it.
    b.ok(&[
        "run",
        "--rm",
        "-v",
        "data1:/data",
        "busybox",
        "sh",
        "-c",
        "echo persisted > /data/f",
    ]);
    assert_eq!(
        b.ok(&[
            "run",
            "--rm",
            "-v",
            "data1:/data",
            "busybox",
            "cat",
            "/data/f"
        ]),
        "persisted\n"
    );
    assert_eq!(
        std::fs::read_to_string(mp.join("f")).unwrap(),
        "persisted\n"
    );
    // A named volume that does not exist is created by run.
    b.ok(&["run", "--rm", "-v", "auto1:/d", "busybox", "true"]);
    assert!(b.ok(&["volume", "ls", "-q"]).lines().any(|l| l == "auto1"));

    // In use: rm fails naming the container, works once it is gone.
    let user = b
        .ok(&[
            "create",
            "--name",
            "user",
            "-v",
            "data1:/data",
            "busybox",
            "true",
        ])
        .trim()
        .to_owned();
    let e = fails(&b, &["volume", "rm", "data1"]);
    assert!(e.contains("in use") && e.contains(&user[..12]), "{e}");
    assert!(b.ok(&["volume", "ls", "-q"]).lines().any(|l| l == "data1"));
    // prune -a leaves a volume in use alone.
    let pruned = b.ok(&["volume", "prune", "-a", "-f"]);
    assert!(!pruned.contains("data1"), "{pruned}");
    assert!(pruned.contains("auto1"), "{pruned}");
    assert!(mp.join("f").is_file());
    b.ok(&["rm", "user"]);
    assert_eq!(b.ok(&["volume", "rm", "data1"]), "data1\n");
    assert!(!b.ok(&["volume", "ls", "-q"]).lines().any(|l| l == "data1"));
    assert!(!mp.exists());
    fails(&b, &["volume", "rm", "data1"]);

    // rm -f removes one in use.
    b.ok(&["volume", "create", "data2"]);
    b.ok(&[
        "create",
        "--name",
        "user2",
        "-v",
        "data2:/data",
        "busybox",
        "true",
    ]);
    fails(&b, &["volume", "rm", "data2"]);
    assert_eq!(b.ok(&["volume", "rm", "-f", "data2"]), "data2\n");
    assert!(!b.ok(&["volume", "ls", "-q"]).lines().any(|l| l == "data2"));
    b.ok(&["rm", "user2"]);

    // prune: anonymous volumes only; -a every unused one.
    b.ok(&["volume", "create", "keep"]);
    let anon2 = b.ok(&["volume", "create"]).trim().to_owned();
    let p = b.ok(&["volume", "prune", "-f"]);
    assert!(p.contains(&anon2), "{p}");
    assert!(!p.contains("keep"), "{p}");
    assert!(p.contains("Total reclaimed space:"), "{p}");
    assert_eq!(b.ok(&["volume", "ls", "-q"]), "keep\n");
    let p = b.ok(&["volume", "prune", "-a", "-f"]);
    assert!(p.contains("keep"), "{p}");
    assert_eq!(b.ok(&["volume", "ls", "-q"]), "");
    let _ = anon;

    // Bad names.
    for bad in ["bad/name", "_lead", "a", "sp ace", ".."] {
        let e = fails(&b, &["volume", "create", bad]);
        assert!(e.contains(bad), "{e}");
    }
    fails(&b, &["volume", "create", "--driver", "nfs", "x1"]);
    assert_eq!(b.ok(&["volume", "ls", "-q"]), "");
}

// ------------------------------------------------------------------ stats and update

fn cpu_of(b: &Berth, name: &str) -> f64 {
    let out = b.ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.CPUPerc}}",
        name,
    ]);
    let (n, p) = out.trim().split_once(' ').unwrap();
    assert_eq!(n, name, "{out}");
    p.strip_suffix('%').unwrap().parse().unwrap()
}

#[test]
fn stats_and_update() {
    let b = Berth::with_busybox();
    let idle = run_d(
        &b,
        &[
            "--name", "idle", "--memory", "64m", "busybox", "sleep", "60",
        ],
    );
    let out = b.ok(&["stats", "--no-stream", "idle"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    for h in [
        "CONTAINER ID",
        "NAME",
        "CPU %",
        "MEM USAGE / LIMIT",
        "MEM %",
        "PIDS",
    ] {
        assert!(lines[0].contains(h), "{out}");
    }
    assert!(lines[1].starts_with(&idle[..12]), "{out}");
    let cols: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(cols[1], "idle", "{out}");
    assert!(cols[2].ends_with('%'), "{out}");
    assert_eq!(cols[4], "/", "{out}");
    assert_eq!(cols[5], "64MiB", "the --memory limit: {out}");
    assert_eq!(*cols.last().unwrap(), "1", "one process: {out}");
    assert_eq!(
        b.ok(&[
            "stats",
            "--no-stream",
            "--format",
            "{{.Name}} {{.PIDs}}",
            "idle"
        ]),
        "idle 1\n"
    );
    assert!(cpu_of(&b, "idle") < 5.0);

    run_d(
        &b,
        &[
            "--name",
            "busy",
            "busybox",
            "sh",
            "-c",
            "while :; do :; done",
        ],
    );
    std::thread::sleep(Duration::from_millis(300));
    let pct = cpu_of(&b, "busy");
    assert!(pct > 20.0, "busy loop at {pct}%");
    // Without names: every running container.
    let all = b.ok(&["stats", "--no-stream", "--format", "{{.Name}}"]);
    let mut n: Vec<&str> = all.lines().collect();
    n.sort();
    assert_eq!(n, ["busy", "idle"]);

    assert_eq!(b.ok(&["update", "--cpus", "0.2", "busy"]), "busy\n");
    std::thread::sleep(Duration::from_millis(300));
    let pct = cpu_of(&b, "busy");
    assert!(pct < 40.0, "busy loop at {pct}% after update --cpus 0.2");

    assert_eq!(b.ok(&["update", "--pids-limit", "5", "idle"]), "idle\n");
    assert_eq!(
        exec_out(&b, "idle", &["cat", "/sys/fs/cgroup/pids/pids.max"]).trim(),
        "5"
    );
    // The limit holds: a sixth process cannot be forked.
    let out = b.run(&[
        "exec",
        "idle",
        "sh",
        "-c",
        "sleep 5 & sleep 5 & sleep 5 & sleep 5 & sleep 5 & wait",
    ]);
    assert!(!out.status.success(), "{}", describe(&["exec"], &out));
    assert_eq!(b.ok(&["update", "--memory", "32m", "idle"]), "idle\n");
    let out = b.ok(&["stats", "--no-stream", "idle"]);
    assert!(out.contains("/ 32MiB"), "{out}");

    b.ok(&["create", "--name", "cold", "busybox", "true"]);
    let e = fails(&b, &["update", "--cpus", "1", "cold"]);
    assert!(e.contains("not running"), "{e}");
    fails(&b, &["update", "idle"]);
    fails(&b, &["update", "--cpus", "1", "nosuch"]);
    fails(&b, &["stats", "--no-stream", "nosuch"]);

    b.ok(&["rm", "-f", "idle", "busy", "cold"]);
}

// ------------------------------------------------------------------ health

#[test]
fn health_checks() {
    let b = Berth::with_busybox();
    run_d(
        &b,
        &[
            "--name",
            "doc",
            "--health-cmd",
            "test -f /tmp/ok",
            "--health-interval",
            "200ms",
            "--health-retries",
            "2",
            // Failures in the first 3 s do not count: the status stays
            // "starting" long enough to be seen on a loaded machine.
            "--health-start-period",
            "3s",
            "busybox",
            "sleep",
            "60",
        ],
    );
    let st = status(&b, "doc").unwrap();
    assert!(
        st.starts_with("Up ") && st.ends_with("(health: starting)"),
        "{st}"
    );
    let h = inspect(&b, "doc")["State"]["Health"].clone();
    assert_eq!(h["Status"], "starting", "{h}");
    wait_until(20, "doc unhealthy", || {
        status(&b, "doc").unwrap().ends_with("(unhealthy)")
    });
    let h = inspect(&b, "doc")["State"]["Health"].clone();
    assert_eq!(h["Status"], "unhealthy", "{h}");
    assert!(h["FailingStreak"].as_u64().unwrap() >= 2, "{h}");
    let log = h["Log"].as_array().unwrap();
    assert!(log.len() >= 2, "{h}");
    assert!(log.iter().all(|e| e["ExitCode"] == 1), "{h}");
    assert!(
        log[0]["Start"].is_string() && log[0]["End"].is_string(),
        "{h}"
    );

    exec_out(&b, "doc", &["touch", "/tmp/ok"]);
    wait_until(20, "doc healthy", || {
        status(&b, "doc").unwrap().ends_with("(healthy)")
    });
    let h = inspect(&b, "doc")["State"]["Health"].clone();
    assert_eq!(h["Status"], "healthy", "{h}");
    assert_eq!(h["FailingStreak"], 0, "{h}");
    let log = h["Log"].as_array().unwrap();
    assert_eq!(log.last().unwrap()["ExitCode"], 0, "{h}");
    assert!(log.len() <= 5, "Docker keeps the last 5 results: {h}");

    run_d(
        &b,
        &[
            "--name",
            "nohc",
            "--no-healthcheck",
            "busybox",
            "sleep",
            "60",
        ],
    );
    run_d(&b, &["--name", "plain", "busybox", "sleep", "60"]);
    std::thread::sleep(Duration::from_millis(500));
    for n in ["nohc", "plain"] {
        let st = status(&b, n).unwrap();
        assert!(!st.contains("health"), "{st}");
        let s = inspect(&b, n)["State"].clone();
        assert!(s.get("Health").is_none_or(Value::is_null), "{s}");
    }
    fails(
        &b,
        &[
            "run",
            "-d",
            "--no-healthcheck",
            "--health-cmd",
            "true",
            "busybox",
            "true",
        ],
    );

    b.ok(&["rm", "-f", "doc", "nohc", "plain"]);

    // A check still running when the container is killed: its runtime
    // process wrote into the run directory while `rm -f` emptied it
    // ("Directory not empty").
    for round in 0..3 {
        let name = format!("slowhc{round}");
        run_d(
            &b,
            &[
                "--name",
                &name,
                "--health-cmd",
                "touch /tmp/probing; sleep 30",
                "--health-interval",
                "100ms",
                "busybox",
                "sleep",
                "60",
            ],
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while !b
            .run(&["exec", &name, "test", "-e", "/tmp/probing"])
            .status
            .success()
        {
            assert!(Instant::now() < deadline, "the check never started");
            std::thread::sleep(Duration::from_millis(50));
        }
        b.ok(&["rm", "-f", &name]);
        assert!(b.run(&["inspect", &name]).status.code() == Some(1));
    }
}

// ------------------------------------------------------------------ port and inspect

#[test]
fn port_and_inspect_running() {
    let b = Berth::with_busybox();
    let id = run_d(&b, &["--name", "p1", "busybox", "sleep", "60"]);
    assert_eq!(b.ok(&["port", "p1"]), "");
    let e = fails(&b, &["port", "p1", "80"]);
    assert_eq!(e, "Error: No public port '80/tcp' published for p1");
    let e = fails(&b, &["port", "p1", "53/udp"]);
    assert_eq!(e, "Error: No public port '53/udp' published for p1");
    fails(&b, &["port", "nosuch"]);

    let v = inspect(&b, "p1");
    assert_eq!(v["Id"], id);
    assert_eq!(v["Name"], "/p1");
    assert_eq!(v["State"]["Status"], "running");
    assert_eq!(v["State"]["Running"], true);
    let pid = v["State"]["Pid"].as_i64().unwrap();
    assert!(pid > 0, "{v}");
    assert!(process_alive(pid as i32));
    assert_eq!(v["RestartCount"], 0, "{v}");
    assert!(v["State"]["StartedAt"].as_str().unwrap().starts_with("20"));

    b.ok(&["stop", "-t", "0", "p1"]);
    let v = inspect(&b, "p1");
    assert_eq!(v["State"]["Running"], false);
    assert_eq!(v["State"]["Pid"], 0);
    assert!(!process_alive(pid as i32));
    b.ok(&["rm", "p1"]);
}

/// `start -a` of a container that writes and exits at once must show its
/// output and status, as Docker's (which attaches before starting) does:
/// the monitor starts the container only once `start -a` has attached.
#[test]
fn start_attach_of_a_fast_container_keeps_its_output() {
    let b = Berth::with_busybox();
    for i in 0..15 {
        let n = format!("s{i}");
        b.ok(&["create", "--name", &n, "busybox", "echo", "hi"]);
        let out = b.run(&["start", "-a", &n]);
        b.ok(&["rm", &n]);
        assert!(out.status.success(), "{}", describe(&["start", "-a"], &out));
        assert_eq!(text(&out.stdout), "hi\n", "run {i}");
    }
}
