//! berth-dns as a process: real sockets on loopback addresses, real local
//! upstream servers. Each test uses its own 127.T.x.x range (see common).
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use nix::sys::signal::Signal;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

const NOERROR: u8 = 0;
const FORMERR: u8 = 1;
const SERVFAIL: u8 = 2;
const NXDOMAIN: u8 = 3;

fn records(f: impl FnOnce(&mut RecordsFile)) -> RecordsFile {
    let mut r = RecordsFile::new();
    f(&mut r);
    r
}

#[test]
fn answers_names_aliases_aaaa_and_ptr() {
    let t = 20;
    let gw = ip(t, 0, 1);
    let client = ip(t, 0, 9);
    let rec = records(|r| {
        r.listen("front", gw)
            .unwrap()
            .host("front", ip(t, 0, 2), "web", &["www", "0123456789ab"])
            .unwrap()
            .host("front", ip(t, 0, 3), "db", &["data"])
            .unwrap();
    });
    let _dns = Dns::start(&rec, &[]);
    let web = vec![ip(t, 0, 2).to_string()];
    assert_eq!(a(client, gw, "web"), Ok(web.clone()));
    assert_eq!(a(client, gw, "www"), Ok(web.clone()));
    assert_eq!(a(client, gw, "0123456789ab"), Ok(web.clone()));
    assert_eq!(a(client, gw, "data"), Ok(vec![ip(t, 0, 3).to_string()]));
    // Case-insensitive, with or without the trailing dot; the question comes
    // back with the client's case.
    let r = ask(client, gw, "WeB.", A);
    assert_eq!(r.answers, vec![(A, ip(t, 0, 2).to_string())]);
    assert_eq!(r.qname, "WeB");
    // AAAA of a known name: NOERROR without records.
    let r = ask(client, gw, "web", AAAA);
    assert_eq!((r.rcode, r.answers.len(), r.qtype), (NOERROR, 0, AAAA));
    // NAME.NETWORK, as in Docker, for names and aliases.
    assert_eq!(a(client, gw, "web.front"), Ok(web.clone()));
    assert_eq!(a(client, gw, "WWW.Front."), Ok(web.clone()));
    // PTR of a container address: NAME.NETWORK (Docker's answer).
    let o = ip(t, 0, 3).octets();
    let rev = format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0]);
    let r = ask(client, gw, &rev, PTR);
    assert_eq!(r.answers, vec![(PTR, "db.front".to_string())]);
    // An unknown name with no upstream: SERVFAIL (as Docker's, whose
    // forwarding found no server).
    assert_eq!(a(client, gw, "nope"), Err(SERVFAIL));
}

/// A dual-stack container (a line per family): A and AAAA, asked over the
/// IPv4 listener; a name with an IPv6 address only has an empty A; the
/// ip6.arpa name of its address gives NAME.NETWORK.
#[test]
fn dual_stack_names_answer_a_and_aaaa() {
    let t = 38;
    let gw = ip(t, 0, 1);
    let client = ip(t, 0, 9);
    let rec = records(|r| {
        r.listen("ds", gw)
            .unwrap()
            .host("ds", ip(t, 0, 2), "web", &["www"])
            .unwrap()
            .host(
                "ds",
                "fd00:27::2".parse::<std::net::Ipv6Addr>().unwrap(),
                "web",
                &["www"],
            )
            .unwrap()
            .host(
                "ds",
                "fd00:27::3".parse::<std::net::Ipv6Addr>().unwrap(),
                "six",
                &[] as &[&str],
            )
            .unwrap();
    });
    let _dns = Dns::start(&rec, &[]);
    assert_eq!(a(client, gw, "www"), Ok(vec![ip(t, 0, 2).to_string()]));
    let r = ask(client, gw, "www", AAAA);
    assert_eq!(r.answers, vec![(AAAA, "fd00:27::2".to_string())]);
    let r = ask(client, gw, "six.ds", AAAA);
    assert_eq!(r.answers, vec![(AAAA, "fd00:27::3".to_string())]);
    let r = ask(client, gw, "six", A);
    assert_eq!((r.rcode, r.answers.len()), (NOERROR, 0));
    let rev = "3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.7.2.0.0.0.0.d.f.ip6.arpa";
    let r = ask(client, gw, rev, PTR);
    assert_eq!(r.answers, vec![(PTR, "six.ds".to_string())]);
}

#[test]
fn one_name_on_several_containers_gives_every_address() {
    let t = 21;
    let gw = ip(t, 0, 1);
    let rec = records(|r| {
        r.listen("n", gw).unwrap();
        for h in 2..5 {
            r.host("n", ip(t, 0, h), &format!("c{h}"), &["svc"])
                .unwrap();
        }
    });
    let _dns = Dns::start(&rec, &[]);
    let mut got = a(ip(t, 0, 9), gw, "svc").unwrap();
    got.sort();
    let want: Vec<String> = (2..5).map(|h| ip(t, 0, h).to_string()).collect();
    assert_eq!(got, want);
}

#[test]
fn networks_are_isolated_and_a_container_on_two_sees_both() {
    let t = 22;
    let (gw_a, gw_b) = (ip(t, 0, 1), ip(t, 1, 1));
    let up = ip(t, 3, 53);
    let _upstream = Upstream::start(up, false);
    let rec = records(|r| {
        r.listen("a", gw_a)
            .unwrap()
            .listen("b", gw_b)
            .unwrap()
            .host("a", ip(t, 0, 2), "only-a", &[] as &[&str])
            .unwrap()
            .host("b", ip(t, 1, 2), "only-b", &["b-alias"])
            .unwrap()
            // "both" is attached to a and b, with an address on each.
            .host("a", ip(t, 0, 3), "both", &[] as &[&str])
            .unwrap()
            .host("b", ip(t, 1, 3), "both", &[] as &[&str])
            .unwrap();
    });
    let _dns = Dns::start(&rec, &[up]);
    let (on_a, on_b) = (ip(t, 0, 2), ip(t, 1, 2));
    assert_eq!(a(on_a, gw_a, "only-a"), Ok(vec![on_a.to_string()]));
    // Names of b are unknown on a: forwarded, and the upstream does not
    // know them either.
    assert_eq!(a(on_a, gw_a, "only-b"), Err(NXDOMAIN));
    assert_eq!(a(on_a, gw_a, "b-alias"), Err(NXDOMAIN));
    assert_eq!(a(on_b, gw_b, "only-a"), Err(NXDOMAIN));
    assert_eq!(a(on_b, gw_b, "b-alias"), Ok(vec![on_b.to_string()]));
    // Asking b's listener from a's container does not open b's names.
    assert_eq!(a(on_a, gw_b, "only-b"), Err(NXDOMAIN));
    // "both" is seen on each network with that network's address only...
    assert_eq!(a(on_a, gw_a, "both"), Ok(vec![ip(t, 0, 3).to_string()]));
    // ...and itself resolves names of both networks, from either address.
    for (src, gw) in [(ip(t, 0, 3), gw_a), (ip(t, 1, 3), gw_b)] {
        assert_eq!(a(src, gw, "only-a"), Ok(vec![on_a.to_string()]));
        assert_eq!(a(src, gw, "only-b"), Ok(vec![on_b.to_string()]));
        let mut both = a(src, gw, "both").unwrap();
        both.sort();
        assert_eq!(both, vec![ip(t, 0, 3).to_string(), ip(t, 1, 3).to_string()]);
    }
    // PTR follows the same rule.
    let o = on_b.octets();
    let rev = format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0]);
    assert_eq!(ask(on_a, gw_a, &rev, PTR).rcode, NXDOMAIN);
    assert_eq!(
        ask(ip(t, 0, 3), gw_a, &rev, PTR).answers,
        vec![(PTR, "only-b.b".to_string())]
    );
    // NAME.NETWORK only for the client's own networks.
    assert_eq!(a(on_a, gw_a, "only-b.b"), Err(NXDOMAIN));
    assert_eq!(a(on_a, gw_a, "both.b"), Err(NXDOMAIN));
    assert_eq!(
        a(ip(t, 0, 3), gw_a, "both.b"),
        Ok(vec![ip(t, 1, 3).to_string()])
    );
}

#[test]
fn forwards_unknown_names_and_other_types_to_upstream() {
    let t = 23;
    let gw = ip(t, 0, 1);
    let up = ip(t, 3, 53);
    let upstream = Upstream::start(up, false);
    let rec = records(|r| {
        r.listen("n", gw)
            .unwrap()
            .host("n", ip(t, 0, 2), "web", &[] as &[&str])
            .unwrap();
    });
    let _dns = Dns::start(&rec, &[up]);
    let client = ip(t, 0, 9);
    // The upstream's answer comes back with the client's id (checked in ask).
    let r = ask(client, gw, "Upstream.Test", A);
    assert_eq!(r.answers, vec![(A, "192.0.2.7".to_string())]);
    assert_eq!(r.qname, "Upstream.Test");
    assert_eq!(upstream.count(), 1);
    assert_eq!(a(client, gw, "missing.test"), Err(NXDOMAIN));
    // A local name answers without the upstream; other types of it go there.
    assert_eq!(a(client, gw, "web"), Ok(vec![ip(t, 0, 2).to_string()]));
    assert_eq!(upstream.count(), 2);
    assert_eq!(ask(client, gw, "web", MX).rcode, NXDOMAIN);
    assert_eq!(upstream.count(), 3);
    // Over TCP, forwarded over TCP.
    let r = tcp_many(client, gw, &[query(77, "upstream.test", A)]);
    assert_eq!(r[0].id, 77);
    assert_eq!(r[0].answers, vec![(A, "192.0.2.7".to_string())]);
    assert_eq!(upstream.count(), 4);
}

#[test]
fn silent_upstream_times_out_to_servfail_or_the_next_server() {
    let t = 24;
    let gw = ip(t, 0, 1);
    let (silent, good) = (ip(t, 3, 53), ip(t, 3, 54));
    let s = Upstream::start(silent, true);
    let g = Upstream::start(good, false);
    let rec = records(|r| {
        r.listen("n", gw).unwrap();
    });
    let dns = Dns::start(&rec, &[silent]);
    let client = ip(t, 0, 9);
    assert_eq!(a(client, gw, "upstream.test"), Err(SERVFAIL));
    assert_eq!(s.count(), 1);
    // Silent first, then a working one: its answer after the timeout.
    std::fs::write(
        &dns.resolv,
        format!("nameserver {silent}\nnameserver {good}\n"),
    )
    .unwrap();
    dns.signal(Signal::SIGHUP);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(a(client, gw, "upstream.test"), Ok(vec!["192.0.2.7".into()]));
    assert_eq!((s.count(), g.count()), (2, 1));
    // A nameserver that is not listening at all (port unreachable) is
    // skipped at once.
    std::fs::write(
        &dns.resolv,
        format!("nameserver {}\nnameserver {good}\n", ip(t, 3, 99)),
    )
    .unwrap();
    dns.signal(Signal::SIGHUP);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(a(client, gw, "upstream.test"), Ok(vec!["192.0.2.7".into()]));
}

#[test]
fn tcp_queries_several_on_one_connection() {
    let t = 25;
    let gw = ip(t, 0, 1);
    let rec = records(|r| {
        r.listen("n", gw)
            .unwrap()
            .host("n", ip(t, 0, 2), "web", &[] as &[&str])
            .unwrap()
            .host("n", ip(t, 0, 3), "db", &[] as &[&str])
            .unwrap();
        // More addresses than a 512-byte UDP answer holds.
        for h in 10..60 {
            r.host("n", ip(t, 0, h), &format!("m{h}"), &["many"])
                .unwrap();
        }
    });
    let _dns = Dns::start(&rec, &[]);
    let client = ip(t, 0, 9);
    let r = tcp_many(
        client,
        gw,
        &[query(1, "web", A), query(2, "DB", A), query(3, "many", A)],
    );
    assert_eq!(r[0].answers, vec![(A, ip(t, 0, 2).to_string())]);
    assert_eq!((r[1].id, r[1].answers.len()), (2, 1));
    assert_eq!(
        (r[2].id, r[2].answers.len(), r[2].truncated),
        (3, 50, false)
    );
    // Over UDP the same answer is truncated (TC) so that clients retry on TCP.
    let u = ask(client, gw, "many", A);
    assert!(u.truncated);
    assert!(u.answers.is_empty());
}

#[test]
fn reload_on_sighup_and_on_a_changed_file() {
    let t = 26;
    let (gw, gw2) = (ip(t, 0, 1), ip(t, 1, 1));
    let client = ip(t, 0, 9);
    let mut rec = records(|r| {
        r.listen("n", gw)
            .unwrap()
            .host("n", ip(t, 0, 2), "web", &[] as &[&str])
            .unwrap();
    });
    let dns = Dns::start(&rec, &[]);
    assert_eq!(a(client, gw, "new"), Err(SERVFAIL));
    // SIGHUP: a new host and a new listener.
    rec.host("n", ip(t, 0, 3), "new", &[] as &[&str]).unwrap();
    rec.listen("n2", gw2).unwrap();
    rec.host("n2", ip(t, 1, 2), "other", &[] as &[&str])
        .unwrap();
    dns.reload(&rec);
    wait_until("the new name", Duration::from_secs(5), || {
        a(client, gw, "new").is_ok()
    });
    assert_eq!(
        a(ip(t, 1, 9), gw2, "other"),
        Ok(vec![ip(t, 1, 2).to_string()])
    );
    // No signal: the changed file is read when a query arrives.
    let rec2 = records(|r| {
        r.listen("n", gw)
            .unwrap()
            .host("n", ip(t, 0, 4), "web", &[] as &[&str])
            .unwrap();
    });
    rec2.write(&dns.records).unwrap();
    assert_eq!(a(client, gw, "web"), Ok(vec![ip(t, 0, 4).to_string()]));
    assert_eq!(a(client, gw, "new"), Err(SERVFAIL));
    // The removed listener is closed: nothing answers there any more.
    let q = query(9, "other", A);
    assert_eq!(
        udp_raw(ip(t, 1, 9), gw2, &q, Duration::from_millis(300)),
        None
    );
    assert!(std::net::TcpStream::connect((gw2, 53)).is_err());
    // A bad file keeps the records in force and says so once on stderr.
    std::fs::write(&dns.records, "listen n\n").unwrap();
    dns.signal(Signal::SIGHUP);
    assert_eq!(a(client, gw, "web"), Ok(vec![ip(t, 0, 4).to_string()]));
    assert_eq!(a(client, gw, "web"), Ok(vec![ip(t, 0, 4).to_string()]));
    wait_until("the log line", Duration::from_secs(5), || {
        dns.stderr()
            .contains("line 1: expected: listen NETWORK GATEWAY_IP")
    });
    let err = dns.stderr();
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].starts_with("berth-dns: reload: ")
            && lines[0].ends_with("(keeping the previous records)"),
        "{err}"
    );
    // No listen line: it stays up, serving nothing.
    RecordsFile::new().write(&dns.records).unwrap();
    dns.signal(Signal::SIGHUP);
    wait_until("the listener to close", Duration::from_secs(5), || {
        std::net::TcpStream::connect((gw, 53)).is_err()
    });
    assert!(alive(dns.child.id() as i32));
}

#[test]
fn malformed_packets_are_ignored_or_refused() {
    let t = 27;
    let gw = ip(t, 0, 1);
    let client = ip(t, 0, 9);
    let rec = records(|r| {
        r.listen("n", gw)
            .unwrap()
            .host("n", ip(t, 0, 2), "web", &[] as &[&str])
            .unwrap();
    });
    let dns = Dns::start(&rec, &[]);
    let quick = Duration::from_millis(200);
    // Shorter than a header, or a response: no answer at all.
    assert_eq!(udp_raw(client, gw, &[1, 2, 3], quick), None);
    let mut resp = query(5, "web", A);
    resp[2] |= 0x80;
    assert_eq!(udp_raw(client, gw, &resp, quick), None);
    // A header with a broken question: FORMERR with the same id.
    let mut bad = query(6, "web", A);
    bad.truncate(14);
    let r = parse(&udp_raw(client, gw, &bad, quick).unwrap());
    assert_eq!((r.id, r.rcode), (6, FORMERR));
    // A pointer loop in the name.
    let mut lp = query(8, "x", A)[..12].to_vec();
    lp.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
    assert_eq!(
        parse(&udp_raw(client, gw, &lp, quick).unwrap()).rcode,
        FORMERR
    );
    // Another opcode (NOTIFY): NOTIMP.
    let mut notify = query(10, "web", A);
    notify[2] = 0x20;
    assert_eq!(
        parse(&udp_raw(client, gw, &notify, quick).unwrap()).rcode,
        4
    );
    // Random bytes and every truncation of a query, over UDP and TCP.
    let mut x: u64 = 0x2545f4914f6cdd1d;
    let sock = std::net::UdpSocket::bind((client, 0)).unwrap();
    for i in 0..2000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let len = (x % 300) as usize;
        let b: Vec<u8> = (0..len).map(|j| (x >> (j % 56)) as u8 ^ j as u8).collect();
        sock.send_to(&b, (gw, 53)).unwrap();
        let q = query(i, "some.name.web", A);
        sock.send_to(&q[..(i as usize) % q.len()], (gw, 53))
            .unwrap();
    }
    {
        use std::io::Write;
        let mut c = std::net::TcpStream::connect((gw, 53)).unwrap();
        let _ = c.write_all(&[0, 40, 1, 2, 3]);
        let mut c2 = std::net::TcpStream::connect((gw, 53)).unwrap();
        let _ = c2.write_all(&[0, 3, 0xff, 0xff, 0xff, 0, 0]);
    }
    // Still serving (once through the backlog: a query that finds the
    // socket's buffer full is dropped, as UDP goes, so ask a few times).
    let q = query(12, "web", A);
    let answered = (0..10).any(|_| udp_raw(client, gw, &q, Duration::from_secs(1)).is_some());
    assert!(answered, "{}", dns.stderr());
    assert_eq!(a(client, gw, "web"), Ok(vec![ip(t, 0, 2).to_string()]));
    let r = tcp_many(client, gw, &[query(11, "web", A)]);
    assert_eq!(r[0].answers.len(), 1);
    assert!(alive(dns.child.id() as i32));
}

#[test]
fn sigterm_removes_the_pid_file_and_exits() {
    let t = 28;
    let gw = ip(t, 0, 1);
    let rec = records(|r| {
        r.listen("n", gw).unwrap();
    });
    let mut dns = Dns::start(&rec, &[]);
    dns.signal(Signal::SIGTERM);
    let end = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(s) = dns.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < end, "still running");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "{status}");
    assert!(!dns.pid_file.exists());
    assert!(common::process_gone(dns.child.id() as i32));
    assert_eq!(dns.stderr(), "");
}

#[test]
fn bad_command_lines_and_files_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(BIN)
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let o = run(&["--records"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr)
        .starts_with("berth-dns: --records needs a value\nusage:"));
    let o = run(&["--records", "r"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--resolv-conf is required"));
    let o = run(&["--bogus"]);
    assert_eq!(o.status.code(), Some(2));
    // A missing or bad records file: exit 1, one line naming the problem.
    let o = run(&["--records", "r", "--resolv-conf", "c", "--pid-file", "p"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(err.starts_with("berth-dns: r: No such file"), "{err}");
    std::fs::write(dir.path().join("r"), "listen n 10.0.0.1\nhost n 10.0.0.2\n").unwrap();
    let o = run(&["--records", "r", "--resolv-conf", "c", "--pid-file", "p"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(
        err,
        "berth-dns: r: line 2: expected: host NETWORK IP NAME [ALIAS...]\n"
    );
    assert!(!dir.path().join("p").exists());
}

#[test]
fn a_second_instance_on_the_same_pid_file_refuses() {
    let t = 29;
    let rec = records(|r| {
        r.listen("n", ip(t, 0, 1)).unwrap();
    });
    let dns = Dns::start(&rec, &[]);
    let o = std::process::Command::new(BIN)
        .arg("--records")
        .arg(&dns.records)
        .arg("--resolv-conf")
        .arg(&dns.resolv)
        .arg("--pid-file")
        .arg(&dns.pid_file)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("another berth-dns holds it"));
    // The first one's pid file is intact.
    assert_eq!(
        std::fs::read_to_string(&dns.pid_file).unwrap().trim(),
        dns.child.id().to_string()
    );
}

#[test]
fn dig_agrees() {
    let t = 30;
    let gw = ip(t, 0, 1);
    let rec = records(|r| {
        r.listen("n", gw)
            .unwrap()
            .host("n", ip(t, 0, 2), "web", &["alias"])
            .unwrap();
    });
    let _dns = Dns::start(&rec, &[]);
    let dig = |args: &[&str]| {
        let o = std::process::Command::new("dig")
            .arg(format!("@{gw}"))
            .args([
                "-b",
                &ip(t, 0, 9).to_string(),
                "+short",
                "+tries=1",
                "+time=3",
            ])
            .args(args)
            .output()
            .expect("dig (bind9-dnsutils) is installed");
        assert!(o.status.success());
        String::from_utf8(o.stdout).unwrap()
    };
    let want = format!("{}\n", ip(t, 0, 2));
    assert_eq!(dig(&["web"]), want);
    assert_eq!(dig(&["+tcp", "ALIAS."]), want);
    assert_eq!(dig(&["web", "AAAA"]), "");
    assert_eq!(dig(&["-x", &ip(t, 0, 2).to_string()]), "web.n.\n");
    assert_eq!(dig(&["alias.n"]), want);
}

#[test]
fn listens_before_the_address_exists() {
    // IP_FREEBIND: an address on no interface (TEST-NET-2) can be listened
    // on; the engine may write the records before the bridge is up.
    let gw: Ipv4Addr = "198.51.100.231".parse().unwrap();
    let rec = records(|r| {
        r.listen("n", gw).unwrap();
    });
    let dns = Dns::start(&rec, &[]);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(dns.stderr(), "");
    // One UDP socket and one TCP listener; none after the listen line goes.
    assert_eq!(sockets(dns.child.id()), 2);
    RecordsFile::new().write(&dns.records).unwrap();
    dns.signal(Signal::SIGHUP);
    wait_until("the sockets to close", Duration::from_secs(5), || {
        sockets(dns.child.id()) == 0
    });
}

#[test]
fn idles_without_listen_lines_until_one_comes() {
    let t = 31;
    let gw = ip(t, 0, 1);
    let dns = Dns::start(&RecordsFile::new(), &[]);
    assert_eq!(sockets(dns.child.id()), 0);
    assert!(alive(dns.child.id() as i32));
    let rec = records(|r| {
        r.listen("n", gw)
            .unwrap()
            .host("n", ip(t, 0, 2), "web", &[] as &[&str])
            .unwrap();
    });
    dns.reload(&rec);
    wait_until("the listener", Duration::from_secs(5), || {
        sockets(dns.child.id()) == 2
    });
    assert_eq!(a(ip(t, 0, 9), gw, "web"), Ok(vec![ip(t, 0, 2).to_string()]));
}

#[test]
fn upstream_answers_that_do_not_match_the_query_are_ignored() {
    let t = 32;
    let gw = ip(t, 0, 1);
    let up = ip(t, 3, 53);
    // A server that first sends an answer with another id, then one for
    // another name, then the right one: only the last may reach the client.
    let sock = std::net::UdpSocket::bind((up, 53)).unwrap();
    let server = std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        let (n, from) = sock.recv_from(&mut buf).unwrap();
        let q = &buf[..n];
        let answer = |q: &[u8], ip: [u8; 4]| {
            let mut r = q.to_vec();
            r[2] |= 0x80;
            r[7] = 1;
            r[10] = 0;
            r[11] = 0;
            let end = 12 + q[12..].iter().position(|b| *b == 0).unwrap() + 5;
            r.truncate(end);
            r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
            r.extend_from_slice(&ip);
            r
        };
        let mut wrong_id = answer(q, [192, 0, 2, 66]);
        wrong_id[0] ^= 0x55;
        sock.send_to(&wrong_id, from).unwrap();
        let other = query(u16::from_be_bytes([q[0], q[1]]), "other.test", A);
        sock.send_to(&answer(&other, [192, 0, 2, 67]), from)
            .unwrap();
        sock.send_to(&answer(q, [192, 0, 2, 7]), from).unwrap();
    });
    let rec = records(|r| {
        r.listen("n", gw).unwrap();
    });
    let _dns = Dns::start(&rec, &[up]);
    assert_eq!(
        a(ip(t, 0, 9), gw, "real.test"),
        Ok(vec!["192.0.2.7".to_string()])
    );
    server.join().unwrap();
}

#[test]
fn tcp_forwarding_to_a_closed_port_fails_over_at_once() {
    let t = 33;
    let gw = ip(t, 0, 1);
    let good = ip(t, 3, 54);
    let _g = Upstream::start(good, false);
    let rec = records(|r| {
        r.listen("n", gw).unwrap();
    });
    let dns = Dns::start(&rec, &[ip(t, 3, 99)]);
    let client = ip(t, 0, 9);
    let r = tcp_many(client, gw, &[query(1, "upstream.test", A)]);
    assert_eq!(r[0].rcode, SERVFAIL);
    // resolv.conf changed, no signal: read again when the next query comes.
    std::fs::write(
        &dns.resolv,
        format!("nameserver {}\nnameserver {good}\n", ip(t, 3, 99)),
    )
    .unwrap();
    let r = tcp_many(client, gw, &[query(2, "upstream.test", A)]);
    assert_eq!(r[0].answers, vec![(A, "192.0.2.7".to_string())]);
}

#[test]
fn an_upstream_that_cannot_be_used_is_logged_once() {
    let t = 34;
    let gw = ip(t, 0, 1);
    let rec = records(|r| {
        r.listen("n", gw).unwrap();
    });
    let dns = Dns::start(&rec, &[]);
    // A link-local address without its interface: connect() refuses it
    // (nothing is sent anywhere).
    std::fs::write(&dns.resolv, "nameserver fe80::1\n").unwrap();
    for _ in 0..3 {
        assert_eq!(a(ip(t, 0, 9), gw, "upstream.test"), Err(SERVFAIL));
    }
    let err = dns.stderr();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("berth-dns: upstream [fe80::1]:53: "),
        "{err}"
    );
}

#[test]
fn holds_no_capability_but_binding_port_53() {
    let t = 35;
    let dns = Dns::start(&RecordsFile::new(), &[]);
    let status = std::fs::read_to_string(format!("/proc/{}/status", dns.child.id())).unwrap();
    let field = |k: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .unwrap()
            .trim()
            .to_string()
    };
    // Bit 10: CAP_NET_BIND_SERVICE.
    for k in ["CapEff:", "CapPrm:", "CapBnd:"] {
        assert_eq!(field(k), "0000000000000400", "{k}");
    }
    assert_eq!(field("CapInh:"), "0000000000000000");
    assert_eq!(field("NoNewPrivs:"), "1");
    // And it can still listen on port 53 of a gateway that comes later.
    let gw = ip(t, 0, 1);
    let rec = records(|r| {
        r.listen("n", gw)
            .unwrap()
            .host("n", ip(t, 0, 2), "web", &[] as &[&str])
            .unwrap();
    });
    dns.reload(&rec);
    wait_until("the listener", Duration::from_secs(5), || {
        sockets(dns.child.id()) == 2
    });
    assert_eq!(a(ip(t, 0, 9), gw, "web"), Ok(vec![ip(t, 0, 2).to_string()]));
    assert_eq!(dns.stderr(), "");
}

/// CPU time (user + system, clock ticks) of a process.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = stat.rsplit_once(')').unwrap().1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the command: state is field 3, utime 14, stime 15 (1-based).
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

#[test]
fn a_tcp_client_that_half_closes_waits_without_spinning() {
    use std::io::{Read, Write};
    let t = 36;
    let gw = ip(t, 0, 1);
    let silent = ip(t, 3, 53);
    let _s = Upstream::start(silent, true);
    let rec = records(|r| {
        r.listen("n", gw).unwrap();
    });
    let dns = Dns::start(&rec, &[silent]);
    let mut c = std::net::TcpStream::connect((gw, 53)).unwrap();
    let q = query(42, "upstream.test", A);
    let mut out = (q.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(&q);
    c.write_all(&out).unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    let before = cpu_ticks(dns.child.id());
    std::thread::sleep(Duration::from_millis(1000));
    let spent = cpu_ticks(dns.child.id()) - before;
    assert!(spent < 10, "{spent} ticks of CPU in 1 s while waiting");
    // The answer still comes (SERVFAIL after the upstream's 2 s).
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut len = [0u8; 2];
    c.read_exact(&mut len).unwrap();
    let mut b = vec![0u8; u16::from_be_bytes(len) as usize];
    c.read_exact(&mut b).unwrap();
    let r = parse(&b);
    assert_eq!((r.id, r.rcode), (42, SERVFAIL));
    // Then the connection is closed.
    assert_eq!(c.read(&mut len).unwrap(), 0);
}

#[test]
fn a_tcp_client_that_goes_away_is_forgotten_without_spinning() {
    use std::io::Write;
    let t = 37;
    let gw = ip(t, 0, 1);
    let silent = ip(t, 3, 53);
    let _s = Upstream::start(silent, true);
    let rec = records(|r| {
        r.listen("n", gw)
            .unwrap()
            .host("n", ip(t, 0, 2), "web", &[] as &[&str])
            .unwrap();
    });
    let dns = Dns::start(&rec, &[silent]);
    for reset in [false, true] {
        let c = std::net::TcpStream::connect((gw, 53)).unwrap();
        let q = query(43, "upstream.test", A);
        let mut out = (q.len() as u16).to_be_bytes().to_vec();
        out.extend_from_slice(&q);
        (&c).write_all(&out).unwrap();
        if reset {
            // SO_LINGER 0: close() sends a reset.
            socket2::SockRef::from(&c)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
        }
        std::thread::sleep(Duration::from_millis(100));
        drop(c);
        let before = cpu_ticks(dns.child.id());
        std::thread::sleep(Duration::from_millis(1000));
        let spent = cpu_ticks(dns.child.id()) - before;
        assert!(spent < 10, "{spent} ticks of CPU in 1 s (reset: {reset})");
    }
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(a(ip(t, 0, 9), gw, "web"), Ok(vec![ip(t, 0, 2).to_string()]));
    assert!(alive(dns.child.id() as i32));
}
