//! Helpers for the berth-dns tests: a running `berth-dns` with its records
//! in a temporary directory, a small DNS client written independently of
//! the crate's own wire code, and real local upstream servers.
//!
//! Every address is on 127/8 (loopback): 127.T.P.H where T is the test's
//! own number, P comes from the test process id (so parallel runs of the
//! suite do not collide) and H is the host.
#![allow(clippy::unwrap_used, dead_code)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use berth_dns::RecordsFile;

pub const BIN: &str = env!("CARGO_BIN_EXE_berth-dns");

/// 127.T.N.H: test T, "network" N (0..3), host H.
pub fn ip(test: u8, net: u8, host: u8) -> Ipv4Addr {
    let p = (std::process::id() % 60) as u8;
    Ipv4Addr::new(127, test, p * 4 + net, host)
}

pub fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A berth-dns started by the test (killed on drop if still running).
pub struct Dns {
    pub dir: tempfile::TempDir,
    pub child: Child,
    pub records: PathBuf,
    pub resolv: PathBuf,
    pub pid_file: PathBuf,
    pub stderr: PathBuf,
}

impl Dns {
    pub fn start(records: &RecordsFile, nameservers: &[Ipv4Addr]) -> Dns {
        let dir = tempfile::tempdir().unwrap();
        let rec = dir.path().join("records");
        records.write(&rec).unwrap();
        let resolv = dir.path().join("resolv.conf");
        let text: String = nameservers
            .iter()
            .map(|n| format!("nameserver {n}\n"))
            .collect();
        std::fs::write(&resolv, format!("# test\n{text}")).unwrap();
        let pid_file = dir.path().join("dns.pid");
        let stderr = dir.path().join("stderr");
        let child = Command::new(BIN)
            .arg("--records")
            .arg(&rec)
            .arg("--resolv-conf")
            .arg(&resolv)
            .arg("--pid-file")
            .arg(&pid_file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let d = Dns {
            dir,
            child,
            records: rec,
            resolv,
            pid_file,
            stderr,
        };
        let pid = d.child.id().to_string();
        wait_until("the pid file", Duration::from_secs(5), || {
            std::fs::read_to_string(&d.pid_file).is_ok_and(|s| s.trim() == pid)
        });
        d
    }

    pub fn pid(&self) -> nix::unistd::Pid {
        nix::unistd::Pid::from_raw(self.child.id() as i32)
    }

    pub fn signal(&self, s: nix::sys::signal::Signal) {
        nix::sys::signal::kill(self.pid(), s).unwrap();
    }

    /// Writes new records and sends SIGHUP.
    pub fn reload(&self, records: &RecordsFile) {
        records.write(&self.records).unwrap();
        self.signal(nix::sys::signal::Signal::SIGHUP);
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap()
    }
}

impl Drop for Dns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub const A: u16 = 1;
pub const PTR: u16 = 12;
pub const MX: u16 = 15;
pub const AAAA: u16 = 28;

/// A query, built here byte by byte.
pub fn query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut q = vec![
        (id >> 8) as u8,
        id as u8,
        0x01,
        0x00,
        0,
        1,
        0,
        0,
        0,
        0,
        0,
        0,
    ];
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&[0, 1]);
    q
}

/// What the tests look at in an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub id: u16,
    pub rcode: u8,
    pub truncated: bool,
    pub qname: String,
    pub qtype: u16,
    /// (type, data: dotted IPv4 for A, a name for PTR, hex otherwise).
    pub answers: Vec<(u16, String)>,
}

fn name_at(b: &[u8], mut pos: usize) -> (String, usize) {
    let mut labels = Vec::new();
    let mut end = None;
    for _ in 0..64 {
        let n = b[pos] as usize;
        if n == 0 {
            return (labels.join("."), end.unwrap_or(pos + 1));
        }
        if n & 0xc0 == 0xc0 {
            end.get_or_insert(pos + 2);
            pos = ((n & 0x3f) << 8) | b[pos + 1] as usize;
            continue;
        }
        labels.push(String::from_utf8_lossy(&b[pos + 1..pos + 1 + n]).to_string());
        pos += 1 + n;
    }
    panic!("name loops");
}

pub fn parse(b: &[u8]) -> Reply {
    assert!(b.len() >= 12, "short reply {b:?}");
    assert!(b[2] & 0x80 != 0, "not a response");
    let qd = u16::from_be_bytes([b[4], b[5]]);
    let an = u16::from_be_bytes([b[6], b[7]]);
    let (mut qname, mut qtype, mut pos) = (String::new(), 0, 12);
    if qd == 1 {
        let (n, p) = name_at(b, 12);
        qname = n;
        qtype = u16::from_be_bytes([b[p], b[p + 1]]);
        pos = p + 4;
    }
    let mut answers = Vec::new();
    for _ in 0..an {
        let (_, p) = name_at(b, pos);
        let t = u16::from_be_bytes([b[p], b[p + 1]]);
        let len = u16::from_be_bytes([b[p + 8], b[p + 9]]) as usize;
        let data = &b[p + 10..p + 10 + len];
        let text = match t {
            A => Ipv4Addr::new(data[0], data[1], data[2], data[3]).to_string(),
            AAAA if len == 16 => {
                let mut o = [0u8; 16];
                o.copy_from_slice(data);
                std::net::Ipv6Addr::from(o).to_string()
            }
            PTR => name_at(b, p + 10).0,
            _ => data.iter().map(|x| format!("{x:02x}")).collect(),
        };
        answers.push((t, text));
        pos = p + 10 + len;
    }
    Reply {
        id: u16::from_be_bytes([b[0], b[1]]),
        rcode: b[3] & 0x0f,
        truncated: b[2] & 0x02 != 0,
        qname,
        qtype,
        answers,
    }
}

/// Sends `msg` from `src` (port chosen by the kernel) to `server`:53 over
/// UDP; the raw reply, or None after `wait`.
pub fn udp_raw(src: Ipv4Addr, server: Ipv4Addr, msg: &[u8], wait: Duration) -> Option<Vec<u8>> {
    let s = UdpSocket::bind((src, 0)).unwrap();
    s.set_read_timeout(Some(wait)).unwrap();
    s.send_to(msg, (server, 53)).unwrap();
    let mut buf = [0u8; 65535];
    match s.recv_from(&mut buf) {
        Ok((n, from)) => {
            assert_eq!(from, SocketAddr::from((server, 53)), "reply from elsewhere");
            Some(buf[..n].to_vec())
        }
        Err(_) => None,
    }
}

static ID: AtomicUsize = AtomicUsize::new(0x1200);

fn next_id() -> u16 {
    ID.fetch_add(7, Ordering::Relaxed) as u16
}

/// Asks `name`/`qtype` over UDP; panics without an answer in 5 s.
pub fn ask(src: Ipv4Addr, server: Ipv4Addr, name: &str, qtype: u16) -> Reply {
    let id = next_id();
    let raw = udp_raw(src, server, &query(id, name, qtype), Duration::from_secs(5))
        .unwrap_or_else(|| panic!("no answer from {server} for {name}"));
    let r = parse(&raw);
    assert_eq!(r.id, id);
    r
}

/// The A records of `name` as text, or the rcode if not NOERROR.
pub fn a(src: Ipv4Addr, server: Ipv4Addr, name: &str) -> Result<Vec<String>, u8> {
    let r = ask(src, server, name, A);
    if r.rcode != 0 {
        return Err(r.rcode);
    }
    Ok(r.answers.into_iter().map(|(_, t)| t).collect())
}

/// Sends several queries on one TCP connection (all written first), and
/// reads as many answers.
pub fn tcp_many(src: Ipv4Addr, server: Ipv4Addr, msgs: &[Vec<u8>]) -> Vec<Reply> {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(&SocketAddr::from((src, 0)).into()).unwrap();
    sock.connect(&SocketAddr::from((server, 53)).into())
        .unwrap();
    let mut s: TcpStream = sock.into();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut out = Vec::new();
    for m in msgs {
        out.extend_from_slice(&(m.len() as u16).to_be_bytes());
        out.extend_from_slice(m);
    }
    s.write_all(&out).unwrap();
    (0..msgs.len())
        .map(|_| {
            let mut len = [0u8; 2];
            s.read_exact(&mut len).unwrap();
            let mut b = vec![0u8; u16::from_be_bytes(len) as usize];
            s.read_exact(&mut b).unwrap();
            parse(&b)
        })
        .collect()
}

/// A real DNS server for the forwarding tests, on `addr`:53 (UDP and
/// TCP): `upstream.test` → 192.0.2.7 (and the query's type echoed in an
/// `A` answer's address for other names under `echo.test`), NXDOMAIN for
/// anything else; `silent` servers read and never answer. Counts queries.
pub struct Upstream {
    pub queries: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

fn upstream_answer(q: &[u8]) -> Option<Vec<u8>> {
    if q.len() < 12 {
        return None;
    }
    let (name, p) = name_at(q, 12);
    let end = p + 4;
    let mut r = q[..end.min(q.len())].to_vec();
    r[2] = 0x81; // QR, RD
    r[3] = 0x80; // RA
    r[10] = 0;
    r[11] = 0; // no additional records
    if name.eq_ignore_ascii_case("upstream.test") {
        r[7] = 1;
        r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 7]);
    } else {
        r[3] |= 3; // NXDOMAIN
    }
    Some(r)
}

impl Upstream {
    pub fn start(addr: Ipv4Addr, silent: bool) -> Upstream {
        let queries = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let udp = UdpSocket::bind((addr, 53)).unwrap();
        udp.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let tcp = TcpListener::bind((addr, 53)).unwrap();
        tcp.set_nonblocking(true).unwrap();
        let (q1, s1) = (queries.clone(), stop.clone());
        let t1 = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !s1.load(Ordering::Relaxed) {
                if let Ok((n, from)) = udp.recv_from(&mut buf) {
                    q1.fetch_add(1, Ordering::Relaxed);
                    if !silent {
                        if let Some(r) = upstream_answer(&buf[..n]) {
                            let _ = udp.send_to(&r, from);
                        }
                    }
                }
            }
        });
        let (q2, s2) = (queries.clone(), stop.clone());
        let t2 = std::thread::spawn(move || {
            // A silent server keeps its connections open, unanswered.
            let mut held = Vec::new();
            while !s2.load(Ordering::Relaxed) {
                let Ok((mut c, _)) = tcp.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                c.set_nonblocking(false).unwrap();
                c.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
                let mut len = [0u8; 2];
                if c.read_exact(&mut len).is_err() {
                    continue;
                }
                let mut b = vec![0u8; u16::from_be_bytes(len) as usize];
                if c.read_exact(&mut b).is_err() {
                    continue;
                }
                q2.fetch_add(1, Ordering::Relaxed);
                if silent {
                    held.push(c);
                    continue;
                }
                if let Some(r) = upstream_answer(&b) {
                    let mut out = (r.len() as u16).to_be_bytes().to_vec();
                    out.extend_from_slice(&r);
                    let _ = c.write_all(&out);
                }
            }
        });
        Upstream {
            queries,
            stop,
            threads: vec![t1, t2],
        }
    }

    pub fn count(&self) -> usize {
        self.queries.load(Ordering::Relaxed)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

pub fn process_gone(pid: i32) -> bool {
    !Path::new(&format!("/proc/{pid}")).exists()
}

/// Running (not a zombie).
pub fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(')').map(|(_, r)| r.trim_start().to_string()))
        .is_some_and(|r| !r.starts_with('Z'))
}

/// How many sockets process `pid` has open.
pub fn sockets(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|l| l.to_string_lossy().starts_with("socket:"))
        .count()
}
