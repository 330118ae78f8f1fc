//! Docker parity, checked against what dockerd 20.10 does for the same
//! commands: the environment a container and an exec see, the state a failed
//! start records, and the events the commands emit.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::Value;

/// `env` output as lines, the terminal's carriage returns dropped.
fn env_lines(out: &str) -> Vec<String> {
    out.lines()
        .map(|l| l.trim_end_matches('\r').to_owned())
        .collect()
}

/// The lines with the value of HOSTNAME (a container ID) masked.
fn masked(lines: Vec<String>, id: &str) -> Vec<String> {
    lines
        .into_iter()
        .map(|l| {
            if l == format!("HOSTNAME={}", &id[..12]) {
                "HOSTNAME=ID".to_owned()
            } else {
                l
            }
        })
        .collect()
}

const PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// `run` (in berth's own process and through the monitor) with the
/// variables Docker sets: PATH, HOSTNAME, TERM with -t, the user's and the
/// image's variables in Docker's order, HOME from the user's passwd entry
/// (`/` without one) unless set.
#[test]
fn run_environment_is_dockers() {
    let b = Berth::with_busybox();
    // An image with variables of its own (Docker puts the user's first).
    let tar = b.scratch().join("bb.tar");
    std::fs::write(&tar, busybox_tar()).unwrap();
    b.ok(&[
        "import",
        "-c",
        "ENV FOO=bar PATH=/usr/bin:/bin",
        tar.to_str().unwrap(),
        "envimg",
    ]);
    let run = |args: &[&str]| -> Vec<String> {
        let mut a = vec!["run", "--name", "envc"];
        a.extend_from_slice(args);
        let out = b.ok(&a);
        let id = b.ok(&["inspect", "-f", "{{.Id}}", "envc"]);
        b.ok(&["rm", "envc"]);
        masked(env_lines(&out), id.trim())
    };
    let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        run(&["busybox", "env"]),
        s(&[PATH, "HOSTNAME=ID", "HOME=/root"])
    );
    assert_eq!(
        run(&["-u", "nobody", "busybox", "env"]),
        s(&[PATH, "HOSTNAME=ID", "HOME=/nonexistent"])
    );
    assert_eq!(
        run(&["-u", "1234", "busybox", "env"]),
        s(&[PATH, "HOSTNAME=ID", "HOME=/"])
    );
    assert_eq!(
        run(&["-e", "HOME=/x", "busybox", "env"]),
        s(&[PATH, "HOSTNAME=ID", "HOME=/x"])
    );
    assert_eq!(
        run(&["-t", "busybox", "env"]),
        s(&[PATH, "HOSTNAME=ID", "TERM=xterm", "HOME=/root"])
    );
    assert_eq!(
        run(&["-t", "-e", "TERM=vt100", "busybox", "env"]),
        s(&[PATH, "HOSTNAME=ID", "TERM=vt100", "HOME=/root"])
    );
    assert_eq!(
        run(&["-h", "myhost", "busybox", "env"]),
        s(&[PATH, "HOSTNAME=myhost", "HOME=/root"])
    );
    assert_eq!(
        run(&["envimg", "env"]),
        s(&["PATH=/usr/bin:/bin", "HOSTNAME=ID", "FOO=bar", "HOME=/root"])
    );
    assert_eq!(
        run(&["-e", "A=1", "-e", "B=2", "-e", "A=3", "envimg", "env"]),
        s(&[
            "PATH=/usr/bin:/bin",
            "HOSTNAME=ID",
            "A=3",
            "B=2",
            "FOO=bar",
            "HOME=/root"
        ])
    );
    assert_eq!(
        run(&["-e", "HOME=/x", "envimg", "env"]),
        s(&["PATH=/usr/bin:/bin", "HOSTNAME=ID", "HOME=/x", "FOO=bar"])
    );
    // Config.Env as Docker stores it: the user's, then the image's others.
    b.ok(&["create", "--name", "envc", "-e", "A=1", "envimg", "env"]);
    let v: Value = serde_json::from_str(&b.ok(&["container", "inspect", "envc"])).unwrap();
    assert_eq!(
        v[0]["Config"]["Env"],
        serde_json::json!(["A=1", "FOO=bar", "PATH=/usr/bin:/bin"])
    );
    // Through the monitor: the same.
    let out = b.ok(&["start", "-a", "envc"]);
    let id = b.ok(&["inspect", "-f", "{{.Id}}", "envc"]);
    assert_eq!(
        masked(env_lines(&out), id.trim()),
        s(&[
            "PATH=/usr/bin:/bin",
            "HOSTNAME=ID",
            "A=1",
            "FOO=bar",
            "HOME=/root"
        ])
    );
    b.ok(&["rm", "envc"]);
    // Detached, -t: the log holds the terminal's output.
    b.ok(&[
        "run", "-d", "-t", "--name", "envd", "-u", "nobody", "busybox", "env",
    ]);
    b.ok(&["wait", "envd"]);
    let id = b.ok(&["inspect", "-f", "{{.Id}}", "envd"]);
    let out = b.ok(&["logs", "envd"]);
    assert_eq!(
        masked(env_lines(&out), id.trim()),
        s(&[PATH, "HOSTNAME=ID", "TERM=xterm", "HOME=/nonexistent"])
    );
    b.ok(&["rm", "envd"]);
    // The host's network: the host's name (Docker); the host's UTS
    // namespace: the container's own name in HOSTNAME and /etc/hostname.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let host = host.trim();
    let out = b.ok(&[
        "run",
        "--rm",
        "--network",
        "host",
        "busybox",
        "sh",
        "-c",
        "echo $HOSTNAME; cat /etc/hostname; hostname",
    ]);
    assert_eq!(out, format!("{host}\n{host}\n{host}\n"));
    b.ok(&[
        "run",
        "--name",
        "utsc",
        "--uts",
        "host",
        "busybox",
        "sh",
        "-c",
        "echo $HOSTNAME; cat /etc/hostname; hostname",
    ]);
    let id = b.ok(&["inspect", "-f", "{{.Id}}", "utsc"]);
    let short = &id.trim()[..12];
    assert_eq!(
        b.ok(&["logs", "utsc"]),
        format!("{short}\n{short}\n{host}\n")
    );
    b.ok(&["rm", "utsc"]);
    // A terminal program finds its terminal type.
    b.ok(&["run", "--rm", "-t", "busybox", "clear"]);
}

/// `exec` gets Docker's environment for its own user and terminal: TERM
/// only with its -t (not the container's), HOME from its -u.
#[test]
fn exec_environment_is_dockers() {
    let b = Berth::with_busybox();
    let id = b.ok(&[
        "run", "-d", "-t", "--name", "ex", "-e", "A=1", "-u", "nobody", "busybox", "sleep", "1000",
    ]);
    let id = id.trim();
    let exec = |args: &[&str]| -> Vec<String> {
        let mut a = vec!["exec"];
        a.extend_from_slice(args);
        masked(env_lines(&b.ok(&a)), id)
    };
    let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        exec(&["ex", "env"]),
        s(&[PATH, "HOSTNAME=ID", "A=1", "HOME=/nonexistent"])
    );
    assert_eq!(
        exec(&["-t", "ex", "env"]),
        s(&[
            PATH,
            "HOSTNAME=ID",
            "TERM=xterm",
            "A=1",
            "HOME=/nonexistent"
        ])
    );
    assert_eq!(
        exec(&["-u", "root", "ex", "env"]),
        s(&[PATH, "HOSTNAME=ID", "A=1", "HOME=/root"])
    );
    assert_eq!(
        exec(&["-u", "1234", "ex", "env"]),
        s(&[PATH, "HOSTNAME=ID", "A=1", "HOME=/"])
    );
    assert_eq!(
        exec(&["-e", "HOME=/y", "ex", "env"]),
        s(&[PATH, "HOSTNAME=ID", "A=1", "HOME=/y"])
    );
    assert_eq!(
        exec(&["-e", "B=2", "-e", "A=5", "ex", "env"]),
        s(&[PATH, "HOSTNAME=ID", "A=5", "B=2", "HOME=/nonexistent"])
    );
    assert_eq!(exec(&["-u", "1234", "ex", "id", "-u"]), s(&["1234"]));
    b.ok(&["rm", "-f", "ex"]);
    // A health check is an exec without a terminal (Docker): no TERM in a
    // -t container's check.
    let id = b.ok(&[
        "run",
        "-d",
        "-t",
        "--name",
        "hc",
        "--health-cmd",
        "env > /hc.env",
        "--health-interval",
        "1s",
        "busybox",
        "sleep",
        "1000",
    ]);
    wait_until(60, "the check to run", || {
        b.run(&["exec", "hc", "test", "-s", "/hc.env"])
            .status
            .success()
    });
    let mut got = masked(
        env_lines(&b.ok(&["exec", "hc", "cat", "/hc.env"])),
        id.trim(),
    );
    got.retain(|l| !l.starts_with("SHLVL=") && !l.starts_with("PWD="));
    assert_eq!(got, s(&["HOSTNAME=ID", "HOME=/root", PATH]));
    b.ok(&["rm", "-f", "hc"]);
}

/// A start that fails (a missing program: 127, one that cannot be executed:
/// 126) leaves the container `created`, with the exit code and the error
/// text in its state and no start time, as Docker; for `run -d`, `run`
/// (in berth's process and through the monitor) and `start`.
#[test]
fn failed_start_records_dockers_state() {
    let b = Berth::with_busybox();
    let state = |name: &str| -> Value {
        let v: Value = serde_json::from_str(&b.ok(&["container", "inspect", name])).unwrap();
        v[0]["State"].clone()
    };
    let check = |name: &str, code: i64, text: &str| {
        let s = state(name);
        assert_eq!(s["Status"], "created", "{name}: {s}");
        assert_eq!(s["ExitCode"], code, "{name}: {s}");
        assert_eq!(s["Running"], false, "{name}: {s}");
        assert_eq!(s["StartedAt"], "0001-01-01T00:00:00Z", "{name}: {s}");
        let err = s["Error"].as_str().unwrap();
        assert!(err.contains(text), "{name}: {s}");
    };
    let out = b.run(&["run", "-d", "--name", "bad", "busybox", "nosuchcmd"]);
    assert_eq!(out.status.code(), Some(127), "{}", text(&out.stderr));
    check("bad", 127, "nosuchcmd");
    let out = b.run(&["start", "bad"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    check("bad", 127, "nosuchcmd");
    b.ok(&["create", "--name", "noexec", "busybox", "/etc/passwd"]);
    let out = b.run(&["start", "noexec"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    check("noexec", 126, "/etc/passwd");
    let out = b.run(&["run", "--name", "fg", "busybox", "/etc/passwd"]);
    assert_eq!(out.status.code(), Some(126), "{}", text(&out.stderr));
    check("fg", 126, "/etc/passwd");
    let out = b.run(&["run", "-i", "--name", "mon", "busybox", "nosuchcmd"]);
    assert_eq!(out.status.code(), Some(127), "{}", text(&out.stderr));
    check("mon", 127, "nosuchcmd");
    let ps = b.ok(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
    assert!(ps.lines().all(|l| l.ends_with(" Created")), "{ps}");
    // A start that works clears the error.
    b.ok(&["create", "--name", "later", "busybox", "true"]);
    b.ok(&["start", "-a", "later"]);
    assert_eq!(state("later")["Error"], "");
    b.ok(&["rm", "bad", "noexec", "fg", "mon", "later"]);
}

fn resolv(b: &Berth, name: &str) -> String {
    b.ok(&["exec", name, "cat", "/etc/resolv.conf"])
}

fn gateway_of(b: &Berth, net: &str) -> String {
    b.ok(&[
        "network",
        "inspect",
        "-f",
        "{{(index .IPAM.Config 0).Gateway}}",
        net,
    ])
    .trim()
    .to_owned()
}

fn ip_on(b: &Berth, name: &str, net: &str) -> String {
    let f = format!("{{{{(index .NetworkSettings.Networks \"{net}\").IPAddress}}}}");
    b.ok(&["inspect", "-f", &f, name]).trim().to_owned()
}

/// A container on the default bridge connected to a user network switches
/// to the network's resolver (Docker: its embedded DNS) and resolves the
/// names of that network's containers; running or stopped when connected;
/// disconnected, it goes back to the host's resolvers.
#[test]
fn network_connect_switches_to_the_networks_dns() {
    let b = Berth::with_busybox();
    b.ok(&["network", "create", "appnet"]);
    for n in ["web", "db"] {
        b.ok(&[
            "run",
            "-d",
            "--name",
            n,
            "--network",
            "appnet",
            "busybox",
            "sleep",
            "1000",
        ]);
    }
    b.ok(&["run", "-d", "--name", "late", "busybox", "sleep", "1000"]);
    let before = resolv(&b, "late");
    let gw = gateway_of(&b, "appnet");
    assert!(!before.contains(&gw), "{before}");
    b.ok(&["network", "connect", "appnet", "late"]);
    let after = resolv(&b, "late");
    assert!(after.contains(&format!("nameserver {gw}\n")), "{after}");
    assert_eq!(after.matches("nameserver").count(), 1, "{after}");
    let db_ip = ip_on(&b, "db", "appnet");
    let out = b.ok(&["exec", "late", "nslookup", "db"]);
    assert!(out.contains(&format!("Address: {db_ip}")), "{out}");
    b.ok(&["exec", "late", "ping", "-c", "1", "-W", "5", "web"]);
    // And the network's containers resolve it.
    let late_ip = ip_on(&b, "late", "appnet");
    let out = b.ok(&["exec", "web", "nslookup", "late"]);
    assert!(out.contains(&format!("Address: {late_ip}")), "{out}");
    // Disconnected: the host's resolvers again.
    b.ok(&["network", "disconnect", "appnet", "late"]);
    assert_eq!(resolv(&b, "late"), before);
    // Connected while stopped, then started.
    b.ok(&["create", "--name", "cold", "busybox", "sleep", "1000"]);
    b.ok(&["network", "connect", "appnet", "cold"]);
    b.ok(&["start", "cold"]);
    let out = resolv(&b, "cold");
    assert!(out.contains(&format!("nameserver {gw}\n")), "{out}");
    let out = b.ok(&["exec", "cold", "nslookup", "web"]);
    assert!(
        out.contains(&format!("Address: {}", ip_on(&b, "web", "appnet"))),
        "{out}"
    );
    b.ok(&["rm", "-f", "web", "db", "late", "cold"]);
    b.ok(&["network", "rm", "appnet"]);
}

/// One event as `events --format '{{json .}}'` prints it, normalised:
/// type, action, the actor (IDs masked) and its attributes, and which of
/// Docker's legacy fields (status, id, from) it has.
fn event_line(l: &str) -> String {
    let v: Value = serde_json::from_str(l).unwrap();
    let mask = |s: &str| -> String {
        let hex = |t: &str| t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit());
        if hex(s) {
            "ID".into()
        } else if s.strip_prefix("sha256:").is_some_and(hex) {
            "IMG".into()
        } else {
            s.to_owned()
        }
    };
    let attrs: Vec<String> = v["Actor"]["Attributes"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, a)| format!("{k}={}", mask(a.as_str().unwrap())))
        .collect();
    let legacy: Vec<&str> = ["status", "id", "from"]
        .into_iter()
        .filter(|k| v.get(*k).is_some())
        .collect();
    format!(
        "{} {} {} [{}] {}",
        v["Type"].as_str().unwrap(),
        v["Action"].as_str().unwrap(),
        mask(v["Actor"]["ID"].as_str().unwrap()),
        attrs.join(","),
        legacy.join(",")
    )
}

/// The events of a sequence of commands are Docker 20.10's for the same
/// sequence (recorded with `docker events --since 0 --until now --format
/// '{{json .}}'`; IDs masked). Intentional differences: Docker also emits
/// exec_create/exec_start/exec_die for every health check it runs, and
/// emits `network disconnect` twice for one `network disconnect`; berth
/// emits neither.
#[test]
fn events_are_dockers() {
    let b = Berth::with_busybox();
    b.ok(&["volume", "create", "v1"]);
    b.ok(&["network", "create", "n1"]);
    b.ok(&["network", "create", "n2"]);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "c1",
        "--network",
        "n1",
        "-v",
        "v1:/data",
        "--health-cmd",
        "true",
        "--health-interval",
        "1s",
        "busybox",
        "sleep",
        "1000",
    ]);
    wait_until(60, "c1 to be healthy", || {
        b.ok(&["inspect", "-f", "{{.State.Health.Status}}", "c1"])
            .trim()
            == "healthy"
    });
    b.ok(&["exec", "c1", "true"]);
    // An exec that cannot start: created and started, no exec_die.
    b.run(&["exec", "c1", "nosuch", "x"]);
    b.ok(&["network", "connect", "n2", "c1"]);
    b.ok(&["network", "disconnect", "n2", "c1"]);
    b.ok(&["kill", "-s", "USR1", "c1"]);
    b.ok(&["commit", "c1", "img1"]);
    b.ok(&["stop", "-t", "1", "c1"]);
    b.ok(&["rm", "c1"]);
    b.ok(&["volume", "rm", "v1"]);
    b.ok(&["network", "rm", "n1", "n2"]);
    b.ok(&["run", "--name", "c2", "busybox", "true"]);
    b.ok(&["rm", "c2"]);
    // rm -f of a running container kills it (signal 9); a disconnect of a
    // stopped container is announced too.
    b.ok(&["network", "create", "n3"]);
    b.ok(&[
        "create",
        "--name",
        "c3",
        "--network",
        "n3",
        "busybox",
        "sleep",
        "1000",
    ]);
    b.ok(&["network", "disconnect", "n3", "c3"]);
    b.ok(&["rm", "c3"]);
    b.ok(&["run", "-d", "--name", "c4", "busybox", "sleep", "1000"]);
    b.ok(&["rm", "-f", "c4"]);
    let out = b.ok(&[
        "events",
        "--since",
        "0",
        "--until",
        "0s",
        "--format",
        "{{json .}}",
    ]);
    let got: Vec<String> = out.lines().map(event_line).collect();
    let c = "image=busybox,name=c1";
    let want: Vec<String> = [
        "volume create v1 [driver=local] ".to_owned(),
        "network create ID [name=n1,type=bridge] ".into(),
        "network create ID [name=n2,type=bridge] ".into(),
        "volume create v1 [driver=local] ".into(),
        format!("container create ID [{c}] status,id,from"),
        "network connect ID [container=ID,name=n1,type=bridge] ".into(),
        "volume mount v1 [container=ID,destination=/data,driver=local,propagation=,read/write=true] ".into(),
        format!("container start ID [{c}] status,id,from"),
        format!("container health_status: healthy ID [{c}] status,id,from"),
        format!("container exec_create: true  ID [execID=ID,{c}] status,id,from"),
        format!("container exec_start: true  ID [execID=ID,{c}] status,id,from"),
        format!("container exec_die ID [execID=ID,exitCode=0,{c}] status,id,from"),
        format!("container exec_create: nosuch x ID [execID=ID,{c}] status,id,from"),
        format!("container exec_start: nosuch x ID [execID=ID,{c}] status,id,from"),
        "network connect ID [container=ID,name=n2,type=bridge] ".into(),
        "network disconnect ID [container=ID,name=n2,type=bridge] ".into(),
        format!("container kill ID [{c},signal=10] status,id,from"),
        format!("container pause ID [{c}] status,id,from"),
        "image tag IMG [name=img1:latest] status,id".into(),
        format!("container commit ID [comment=,{c},imageID=IMG,imageRef=img1:latest] status,id,from").replace("[comment=,image=busybox,name=c1,", "[comment=,image=busybox,").replace("imageRef=img1:latest]", "imageRef=img1:latest,name=c1]"),
        format!("container unpause ID [{c}] status,id,from"),
        format!("container kill ID [{c},signal=15] status,id,from"),
        format!("container kill ID [{c},signal=9] status,id,from"),
        format!("container die ID [exitCode=137,{c}] status,id,from"),
        "network disconnect ID [container=ID,name=n1,type=bridge] ".into(),
        "volume unmount v1 [container=ID,driver=local] ".into(),
        format!("container stop ID [{c}] status,id,from"),
        format!("container destroy ID [{c}] status,id,from"),
        "volume destroy v1 [driver=local] ".into(),
        "network destroy ID [name=n1,type=bridge] ".into(),
        "network destroy ID [name=n2,type=bridge] ".into(),
        "container create ID [image=busybox,name=c2] status,id,from".into(),
        "container attach ID [image=busybox,name=c2] status,id,from".into(),
        // On the default bridge (the oracle ran with --bridge=none, where
        // Docker announces the "none"/"host" network alike).
        "network connect ID [container=ID,name=bridge,type=bridge] ".into(),
        "container start ID [image=busybox,name=c2] status,id,from".into(),
        "container die ID [exitCode=0,image=busybox,name=c2] status,id,from".into(),
        "network disconnect ID [container=ID,name=bridge,type=bridge] ".into(),
        "container destroy ID [image=busybox,name=c2] status,id,from".into(),
        "network create ID [name=n3,type=bridge] ".into(),
        "container create ID [image=busybox,name=c3] status,id,from".into(),
        "network disconnect ID [container=ID,name=n3,type=bridge] ".into(),
        "container destroy ID [image=busybox,name=c3] status,id,from".into(),
        "container create ID [image=busybox,name=c4] status,id,from".into(),
        "network connect ID [container=ID,name=bridge,type=bridge] ".into(),
        "container start ID [image=busybox,name=c4] status,id,from".into(),
        "container kill ID [image=busybox,name=c4,signal=9] status,id,from".into(),
        "container die ID [exitCode=137,image=busybox,name=c4] status,id,from".into(),
        "network disconnect ID [container=ID,name=bridge,type=bridge] ".into(),
        "container destroy ID [image=busybox,name=c4] status,id,from".into(),
    ]
    .into_iter()
    .collect();
    assert_eq!(got, want, "\n{}", got.join("\n"));
    // Filters by the new types and actions.
    let count = |f: &[&str]| {
        let mut a = vec!["events", "--since", "0", "--until", "0s"];
        for x in f {
            a.extend_from_slice(&["--filter", x]);
        }
        b.ok(&a).lines().count()
    };
    assert_eq!(count(&["event=health_status"]), 1);
    assert_eq!(count(&["event=exec_create"]), 2);
    assert_eq!(count(&["event=exec_die"]), 1);
    assert_eq!(count(&["type=volume"]), 5);
    assert_eq!(count(&["type=network"]), 14);
    assert_eq!(count(&["type=network", "event=connect"]), 4);
    assert_eq!(count(&["volume=v1"]), 5);
    assert_eq!(count(&["network=n1"]), 4);
    b.ok(&["network", "rm", "n3"]);
}

/// `run -t` on a terminal: Docker's client sizes the container's terminal
/// once it runs, a `resize` event with the terminal's height and width.
#[test]
fn run_on_a_terminal_records_the_resize() {
    let b = Berth::with_busybox();
    let line = format!(
        "stty rows 30 cols 100; {} --root '{}' run --rm -t --name rz busybox true",
        env!("CARGO_BIN_EXE_berth"),
        b.root().display()
    );
    let out = b.script_cmd(&line).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let ev = b.ok(&[
        "events",
        "--since",
        "0",
        "--until",
        "0s",
        "--format",
        "{{.Action}} {{.Actor.Attributes.height}} {{.Actor.Attributes.width}}",
    ]);
    let acts: Vec<&str> = ev.lines().collect();
    assert_eq!(
        acts,
        [
            "create <no value> <no value>",
            "attach <no value> <no value>",
            "connect <no value> <no value>",
            "start <no value> <no value>",
            "resize 30 100",
            "die <no value> <no value>",
            "disconnect <no value> <no value>",
            "destroy <no value> <no value>",
        ],
        "{ev}"
    );
}

/// A foreground `run` batches its events with its state's commits, but
/// what happened up to the start is seen while the container runs, and
/// the rest when the command ends.
#[test]
fn foreground_run_events_are_seen_while_it_runs() {
    let b = Berth::with_busybox();
    let mut run = b
        .cmd(&[
            "run", "--rm", "-i", "--name", "fg", "busybox", "head", "-c", "1",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let actions = || {
        b.ok(&[
            "events",
            "--since",
            "0",
            "--until",
            "0s",
            "--format",
            "{{.Action}}",
        ])
    };
    wait_until(60, "the start event while fg runs", || {
        actions().lines().any(|l| l == "start")
    });
    assert_eq!(
        actions().lines().collect::<Vec<_>>(),
        ["create", "attach", "connect", "start"]
    );
    use std::io::Write;
    let mut stdin = run.stdin.take().unwrap();
    stdin.write_all(b"x").unwrap();
    drop(stdin);
    assert!(run.wait().unwrap().success());
    assert_eq!(
        actions().lines().collect::<Vec<_>>(),
        [
            "create",
            "attach",
            "connect",
            "start",
            "die",
            "disconnect",
            "destroy"
        ]
    );
}
