//! The `berth-dns` process: one thread, one `poll` over the signalfd, a UDP
//! socket and a TCP listener per network gateway, the TCP clients, and the
//! queries being forwarded upstream.

use crate::records::{Index, RecordsFile};
use crate::wire::{self, Header, Message};
use crate::{parse_resolv_conf, resolve, Outcome, DNS_PORT};
use nix::fcntl::{Flock, FlockArg};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long one upstream server gets to answer before the next is tried.
pub const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);
/// A TCP client connection idle this long is closed.
const TCP_IDLE: Duration = Duration::from_secs(10);
const MAX_TCP_CLIENTS: usize = 128;
const MAX_FORWARDS: usize = 512;
/// How often a listener that could not be bound is tried again.
const BIND_RETRY: Duration = Duration::from_secs(1);

/// `berth-dns`'s command line.
#[derive(Debug, Clone)]
pub struct Config {
    pub records: PathBuf,
    pub resolv_conf: PathBuf,
    pub pid_file: Option<PathBuf>,
}

fn log(msg: impl std::fmt::Display) {
    eprintln!("berth-dns: {msg}");
}

/// What identifies a version of a file: an atomic rename changes the inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp(Option<(u64, u64, i64, i64, u64)>);

impl Stamp {
    fn of(path: &Path) -> Stamp {
        Stamp(
            std::fs::metadata(path)
                .ok()
                .map(|m| (m.dev(), m.ino(), m.mtime(), m.mtime_nsec(), m.len())),
        )
    }
}

struct Listener {
    network: String,
    udp: UdpSocket,
    tcp: TcpListener,
}

struct Conn {
    stream: TcpStream,
    network: String,
    peer: IpAddr,
    input: Vec<u8>,
    output: Vec<u8>,
    /// The client closed its side: close once answered.
    eof: bool,
    forwards: usize,
    deadline: Instant,
}

#[derive(Debug, Clone, Copy)]
enum Client {
    Udp {
        listener: Ipv4Addr,
        peer: SocketAddr,
    },
    Tcp {
        conn: u64,
    },
}

enum Transport {
    Udp(UdpSocket),
    Tcp {
        stream: TcpStream,
        /// Length-prefixed query, and how much of it is written.
        out: Vec<u8>,
        written: usize,
        input: Vec<u8>,
    },
}

struct Forward {
    client: Client,
    client_id: u16,
    /// The query as sent upstream (our id in it).
    query: Vec<u8>,
    question: wire::Question,
    our_id: u16,
    next_upstream: usize,
    deadline: Instant,
    transport: Option<Transport>,
}

#[derive(Debug, Clone, Copy)]
enum Token {
    Signal,
    Udp(Ipv4Addr),
    Tcp(Ipv4Addr),
    Conn(u64),
    Forward(u64),
}

struct Server {
    cfg: Config,
    index: Index,
    records_stamp: Stamp,
    resolv_stamp: Stamp,
    upstreams: Vec<SocketAddr>,
    /// Upstreams whose socket could not be opened (logged once).
    failing_upstreams: HashSet<SocketAddr>,
    listeners: BTreeMap<Ipv4Addr, Listener>,
    /// Listen addresses that could not be bound (logged once each).
    unbound: HashSet<Ipv4Addr>,
    next_bind_retry: Instant,
    conns: HashMap<u64, Conn>,
    forwards: HashMap<u64, Forward>,
    next_token: u64,
    rng: u64,
    scratch: Vec<u8>,
}

/// A UDP socket and a TCP listener on `addr:53`. IP_FREEBIND lets them bind
/// before the bridge has its address (the engine may write the records
/// first); SO_REUSEADDR lets a restarted berth-dns listen at once.
fn bind(addr: Ipv4Addr) -> std::io::Result<(UdpSocket, TcpListener)> {
    let sa = SockAddr::from(SocketAddrV4::new(addr, DNS_PORT));
    let udp = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    udp.set_freebind(true)?;
    udp.set_nonblocking(true)?;
    udp.bind(&sa)?;
    let tcp = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    tcp.set_freebind(true)?;
    tcp.set_reuse_address(true)?;
    tcp.set_nonblocking(true)?;
    tcp.bind(&sa)?;
    tcp.listen(64)?;
    Ok((udp.into(), tcp.into()))
}

fn seed() -> u64 {
    let mut b = [0u8; 8];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_err()
    {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        b = (t.as_nanos() as u64 ^ ((std::process::id() as u64) << 32)).to_ne_bytes();
    }
    u64::from_ne_bytes(b) | 1
}

impl Server {
    fn random_id(&mut self) -> u16 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng >> 24) as u16
    }

    fn token(&mut self) -> u64 {
        self.next_token += 1;
        self.next_token
    }

    /// Re-reads the records file; a bad one keeps the records in force and
    /// is reported once (one line on stderr).
    fn load_records(&mut self) {
        self.records_stamp = Stamp::of(&self.cfg.records);
        match RecordsFile::read(&self.cfg.records) {
            Ok(f) => {
                if f != *self.index.file() {
                    self.index = Index::new(f);
                }
                self.sync_listeners();
            }
            Err(e) => log(format_args!("reload: {e} (keeping the previous records)")),
        }
    }

    fn load_resolv(&mut self) {
        self.resolv_stamp = Stamp::of(&self.cfg.resolv_conf);
        match std::fs::read_to_string(&self.cfg.resolv_conf) {
            Ok(t) => {
                self.upstreams = parse_resolv_conf(&t);
                self.failing_upstreams.clear();
            }
            Err(e) => {
                log(format_args!("{}: {e}", self.cfg.resolv_conf.display()));
                self.upstreams.clear();
            }
        }
    }

    /// Reloads whichever file changed since it was read.
    fn refresh(&mut self) {
        if Stamp::of(&self.cfg.records) != self.records_stamp {
            self.load_records();
        }
        if Stamp::of(&self.cfg.resolv_conf) != self.resolv_stamp {
            self.load_resolv();
        }
    }

    /// Opens the listeners of new `listen` lines, closes those of removed
    /// ones, and follows a gateway that moved to another network.
    fn sync_listeners(&mut self) {
        let wanted: HashMap<Ipv4Addr, String> = self
            .index
            .file()
            .listens()
            .iter()
            .map(|l| (l.addr, l.network.clone()))
            .collect();
        self.listeners.retain(|a, _| wanted.contains_key(a));
        self.unbound.retain(|a| wanted.contains_key(a));
        for (addr, network) in wanted {
            if let Some(l) = self.listeners.get_mut(&addr) {
                l.network = network;
                continue;
            }
            match bind(addr) {
                Ok((udp, tcp)) => {
                    self.unbound.remove(&addr);
                    self.listeners.insert(addr, Listener { network, udp, tcp });
                }
                Err(e) => {
                    if self.unbound.insert(addr) {
                        log(format_args!("listen on {addr}:{DNS_PORT} ({network}): {e}"));
                    }
                }
            }
        }
        self.next_bind_retry = Instant::now() + BIND_RETRY;
    }

    fn upstream_allowed(&self, up: &SocketAddr) -> bool {
        // Never forward to ourselves.
        !matches!(up.ip(), IpAddr::V4(a) if self.listeners.contains_key(&a) && up.port() == DNS_PORT)
    }

    /// Handles one query from a client; returns the immediate answer if any
    /// (forwarded queries are answered later).
    fn query(
        &mut self,
        buf: &[u8],
        network: &str,
        client: Client,
        peer: IpAddr,
    ) -> Option<Vec<u8>> {
        let header = Header::parse(buf).ok()?;
        if header.is_response() {
            return None;
        }
        if header.opcode() != 0 {
            return Some(wire::error_reply(&header, wire::RCODE_NOTIMP));
        }
        let Ok(msg) = Message::parse(buf) else {
            return Some(wire::error_reply(&header, wire::RCODE_FORMERR));
        };
        let limit = match client {
            Client::Udp { .. } => wire::UDP_LIMIT,
            Client::Tcp { .. } => u16::MAX as usize,
        };
        if let Outcome::Answer(a) = resolve(&self.index, network, peer, &msg, limit) {
            return Some(a);
        }
        if self.forwards.len() >= MAX_FORWARDS {
            return Some(wire::error_answer(&msg, wire::RCODE_SERVFAIL));
        }
        let our_id = self.random_id();
        let mut query = buf.to_vec();
        wire::set_id(&mut query, our_id);
        let mut fwd = Forward {
            client,
            client_id: header.id,
            query,
            question: msg.question.clone(),
            our_id,
            next_upstream: 0,
            deadline: Instant::now(),
            transport: None,
        };
        if !self.start_attempt(&mut fwd) {
            return Some(wire::error_answer(&msg, wire::RCODE_SERVFAIL));
        }
        if let Client::Tcp { conn } = client {
            if let Some(c) = self.conns.get_mut(&conn) {
                c.forwards += 1;
            }
        }
        let t = self.token();
        self.forwards.insert(t, fwd);
        None
    }

    /// Sends the query to the next upstream that takes it; false when none
    /// is left.
    fn start_attempt(&mut self, fwd: &mut Forward) -> bool {
        fwd.transport = None;
        while fwd.next_upstream < self.upstreams.len() {
            let up = self.upstreams[fwd.next_upstream];
            fwd.next_upstream += 1;
            if !self.upstream_allowed(&up) {
                continue;
            }
            let tcp = matches!(fwd.client, Client::Tcp { .. });
            match open_upstream(up, &fwd.query, tcp) {
                Ok(t) => {
                    self.failing_upstreams.remove(&up);
                    fwd.transport = Some(t);
                    fwd.deadline = Instant::now() + UPSTREAM_TIMEOUT;
                    return true;
                }
                // Once per upstream until it works again or resolv.conf is read anew.
                Err(e) => {
                    if self.failing_upstreams.insert(up) {
                        log(format_args!("upstream {up}: {e}"));
                    }
                }
            }
        }
        false
    }

    /// Checks an upstream's answer and gives it to the client.
    fn upstream_answer(&mut self, token: u64, mut answer: Vec<u8>) -> bool {
        let Some(fwd) = self.forwards.get(&token) else {
            return true;
        };
        let Ok(h) = Header::parse(&answer) else {
            return false;
        };
        if h.id != fwd.our_id || !h.is_response() {
            return false;
        }
        match Message::parse(&answer) {
            Ok(m) => {
                let q = &m.question;
                if q.qtype != fwd.question.qtype
                    || q.qclass != fwd.question.qclass
                    || q.name.to_lower() != fwd.question.name.to_lower()
                {
                    return false;
                }
            }
            // An error answer may come without the question.
            Err(_) if h.qdcount == 0 && h.rcode() != 0 => {}
            Err(_) => return false,
        }
        wire::set_id(&mut answer, fwd.client_id);
        let client = fwd.client;
        self.finish(token, client, answer);
        true
    }

    fn finish(&mut self, token: u64, client: Client, answer: Vec<u8>) {
        self.forwards.remove(&token);
        if let Client::Tcp { conn } = client {
            if let Some(c) = self.conns.get_mut(&conn) {
                c.forwards = c.forwards.saturating_sub(1);
            }
        }
        self.send(client, &answer);
        if let Client::Tcp { conn } = client {
            self.close_done(conn);
        }
    }

    fn send(&mut self, client: Client, msg: &[u8]) {
        match client {
            Client::Udp { listener, peer } => {
                if let Some(l) = self.listeners.get(&listener) {
                    let _ = l.udp.send_to(msg, peer);
                }
            }
            Client::Tcp { conn } => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.output
                        .extend_from_slice(&(msg.len() as u16).to_be_bytes());
                    c.output.extend_from_slice(msg);
                    c.deadline = Instant::now() + TCP_IDLE;
                    flush(c);
                }
            }
        }
    }

    fn on_udp(&mut self, addr: Ipv4Addr) {
        // Queries arrived: files changed since they were read are read again
        // (once per batch, not per query: two stat calls).
        self.refresh();
        let mut buf = [0u8; 4096];
        // A bounded batch, so that a flood on one network does not starve the others.
        for _ in 0..64 {
            let Some(l) = self.listeners.get(&addr) else {
                return;
            };
            let (n, peer) = match l.udp.recv_from(&mut buf) {
                Ok(r) => r,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(_) => continue,
            };
            let network = l.network.clone();
            let client = Client::Udp {
                listener: addr,
                peer,
            };
            if let Some(a) = self.query(&buf[..n], &network, client, peer.ip()) {
                self.send(client, &a);
            }
        }
    }

    fn on_accept(&mut self, addr: Ipv4Addr) {
        for _ in 0..16 {
            let Some(l) = self.listeners.get(&addr) else {
                return;
            };
            let (stream, peer) = match l.tcp.accept() {
                Ok(r) => r,
                Err(_) => return,
            };
            if self.conns.len() >= MAX_TCP_CLIENTS || stream.set_nonblocking(true).is_err() {
                continue;
            }
            let conn = Conn {
                stream,
                network: l.network.clone(),
                peer: peer.ip(),
                input: Vec::new(),
                output: Vec::new(),
                eof: false,
                forwards: 0,
                deadline: Instant::now() + TCP_IDLE,
            };
            let t = self.token();
            self.conns.insert(t, conn);
        }
    }

    fn on_conn(&mut self, token: u64, flags: PollFlags) {
        // Both directions closed, or reset: no answer can reach the client
        // any more (and a socket in that state would wake every poll).
        if flags.intersects(PollFlags::POLLHUP | PollFlags::POLLERR) {
            self.conns.remove(&token);
            return;
        }
        let mut msgs = Vec::new();
        if let Some(c) = self.conns.get_mut(&token) {
            if flags.contains(PollFlags::POLLIN) {
                let mut buf = [0u8; 4096];
                loop {
                    match c.stream.read(&mut buf) {
                        Ok(0) => {
                            c.eof = true;
                            break;
                        }
                        Ok(n) => c.input.extend_from_slice(&buf[..n]),
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        Err(_) => {
                            c.eof = true;
                            c.output.clear();
                            break;
                        }
                    }
                    if c.input.len() > 70_000 {
                        break;
                    }
                }
                c.deadline = Instant::now() + TCP_IDLE;
                while c.input.len() >= 2 {
                    let len = u16::from_be_bytes([c.input[0], c.input[1]]) as usize;
                    if c.input.len() < 2 + len {
                        break;
                    }
                    msgs.push(c.input[2..2 + len].to_vec());
                    c.input.drain(..2 + len);
                }
            }
            if flags.contains(PollFlags::POLLOUT) {
                flush(c);
            }
        }
        let Some((network, peer)) = self.conns.get(&token).map(|c| (c.network.clone(), c.peer))
        else {
            return;
        };
        if !msgs.is_empty() {
            self.refresh();
        }
        for m in msgs {
            let client = Client::Tcp { conn: token };
            if let Some(a) = self.query(&m, &network, client, peer) {
                self.send(client, &a);
            }
        }
        self.close_done(token);
    }

    fn close_done(&mut self, token: u64) {
        if let Some(c) = self.conns.get(&token) {
            if c.eof && c.output.is_empty() && c.forwards == 0 {
                self.conns.remove(&token);
            }
        }
    }

    fn on_forward(&mut self, token: u64) {
        // One buffer for every upstream answer: not 64 KiB zeroed each time.
        let mut buf = std::mem::take(&mut self.scratch);
        buf.resize(65535, 0);
        self.forward_ready(token, &mut buf);
        self.scratch = buf;
    }

    fn forward_ready(&mut self, token: u64, buf: &mut [u8]) {
        let Some(fwd) = self.forwards.get_mut(&token) else {
            return;
        };
        let mut answers = Vec::new();
        let mut failed = false;
        match &mut fwd.transport {
            Some(Transport::Udp(sock)) => {
                loop {
                    match sock.recv(buf) {
                        Ok(n) => answers.push(buf[..n].to_vec()),
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        // ICMP port unreachable (ECONNREFUSED) and the like.
                        Err(_) => {
                            failed = true;
                            break;
                        }
                    }
                }
            }
            Some(Transport::Tcp {
                stream,
                out,
                written,
                input,
            }) => {
                while *written < out.len() {
                    match stream.write(&out[*written..]) {
                        Ok(n) => *written += n,
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(_) => {
                            failed = true;
                            break;
                        }
                    }
                }
                let mut buf = [0u8; 4096];
                while !failed {
                    match stream.read(&mut buf) {
                        Ok(0) => {
                            failed = true;
                        }
                        Ok(n) => input.extend_from_slice(&buf[..n]),
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(_) => failed = true,
                    }
                }
                if input.len() >= 2 {
                    let len = u16::from_be_bytes([input[0], input[1]]) as usize;
                    if input.len() >= 2 + len {
                        answers.push(input[2..2 + len].to_vec());
                        failed = false;
                    }
                }
            }
            None => failed = true,
        }
        for a in answers {
            if self.upstream_answer(token, a) {
                return;
            }
        }
        if failed {
            self.next_attempt(token);
        }
    }

    /// The current upstream failed or timed out: the next one, or SERVFAIL.
    fn next_attempt(&mut self, token: u64) {
        let Some(mut fwd) = self.forwards.remove(&token) else {
            return;
        };
        if self.start_attempt(&mut fwd) {
            self.forwards.insert(token, fwd);
            return;
        }
        let q = Message {
            header: Header {
                id: fwd.client_id,
                flags: u16::from_be_bytes([fwd.query[2], fwd.query[3]]),
                qdcount: 1,
                ancount: 0,
                nscount: 0,
                arcount: 0,
            },
            question: fwd.question.clone(),
        };
        let client = fwd.client;
        self.forwards.insert(token, fwd);
        self.finish(token, client, wire::error_answer(&q, wire::RCODE_SERVFAIL));
    }

    fn timeouts(&mut self) {
        let now = Instant::now();
        let expired: Vec<u64> = self
            .forwards
            .iter()
            .filter(|(_, f)| f.deadline <= now)
            .map(|(t, _)| *t)
            .collect();
        for t in expired {
            self.next_attempt(t);
        }
        self.conns.retain(|_, c| c.deadline > now || c.forwards > 0);
        if !self.unbound.is_empty() && now >= self.next_bind_retry {
            self.sync_listeners();
        }
    }

    fn poll_timeout(&self) -> PollTimeout {
        let now = Instant::now();
        let mut next: Option<Instant> = None;
        let mut at = |t: Instant| next = Some(next.map_or(t, |n: Instant| n.min(t)));
        self.forwards.values().for_each(|f| at(f.deadline));
        self.conns.values().for_each(|c| at(c.deadline));
        if !self.unbound.is_empty() {
            at(self.next_bind_retry);
        }
        match next {
            None => PollTimeout::NONE,
            Some(t) => {
                let ms = t.saturating_duration_since(now).as_millis().min(60_000) as u16;
                PollTimeout::from(ms.saturating_add(1))
            }
        }
    }
}

fn flush(c: &mut Conn) {
    while !c.output.is_empty() {
        match c.stream.write(&c.output) {
            Ok(0) => break,
            Ok(n) => {
                c.output.drain(..n);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(_) => {
                c.output.clear();
                c.eof = true;
            }
        }
    }
}

fn open_upstream(up: SocketAddr, query: &[u8], tcp: bool) -> std::io::Result<Transport> {
    let domain = Domain::for_address(up);
    if tcp {
        let s = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
        s.set_nonblocking(true)?;
        match s.connect(&up.into()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => return Err(e),
        }
        let mut out = (query.len() as u16).to_be_bytes().to_vec();
        out.extend_from_slice(query);
        Ok(Transport::Tcp {
            stream: s.into(),
            out,
            written: 0,
            input: Vec::new(),
        })
    } else {
        let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
        s.set_nonblocking(true)?;
        s.connect(&up.into())?;
        let s: UdpSocket = s.into();
        s.send(query)?;
        Ok(Transport::Udp(s))
    }
}

/// The pid file, locked for the life of the process (a second berth-dns on
/// the same pid file refuses to start) and written in place once the
/// listeners are open.
struct PidFile {
    path: PathBuf,
    lock: Flock<std::fs::File>,
}

impl PidFile {
    fn create(path: &Path) -> Result<PidFile, String> {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let lock = Flock::lock(f, FlockArg::LockExclusiveNonblock)
            .map_err(|(_, e)| format!("{}: another berth-dns holds it ({e})", path.display()))?;
        lock.set_len(0)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(PidFile {
            path: path.to_path_buf(),
            lock,
        })
    }

    /// Writes the pid: from then on the process counts as serving.
    fn write_pid(&mut self) -> Result<(), String> {
        let text = format!("{}\n", std::process::id());
        self.lock
            .write_all(text.as_bytes())
            .map_err(|e| format!("{}: {e}", self.path.display()))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Keeps only CAP_NET_BIND_SERVICE (to listen on port 53 of gateways that
/// come later), in every set including the bounding set, and sets
/// no_new_privs: the process that parses what containers send holds no
/// other privilege. Best effort for a caller that is not root.
fn confine() -> Result<(), String> {
    use caps::{CapSet, Capability, CapsHashSet};
    let err = |e: caps::errors::CapsError| format!("drop capabilities: {e}");
    let have = caps::read(None, CapSet::Permitted).map_err(err)?;
    let keep: CapsHashSet = [Capability::CAP_NET_BIND_SERVICE]
        .into_iter()
        .filter(|c| have.contains(c))
        .collect();
    // Needs CAP_SETPCAP, so before the effective set shrinks; a capability
    // the kernel does not know fails harmlessly.
    for cap in caps::all() {
        if !keep.contains(&cap) {
            let _ = caps::drop(None, CapSet::Bounding, cap);
        }
    }
    let _ = caps::clear(None, CapSet::Ambient);
    caps::clear(None, CapSet::Inheritable).map_err(err)?;
    caps::set(None, CapSet::Effective, &keep).map_err(err)?;
    caps::set(None, CapSet::Permitted, &keep).map_err(err)?;
    nix::sys::prctl::set_no_new_privs().map_err(|e| format!("no_new_privs: {e}"))
}

/// Runs berth-dns until SIGTERM or SIGINT. Errors before serving (bad
/// records file, pid file held) are returned; afterwards problems are
/// logged to stderr and it keeps serving.
pub fn run(cfg: Config) -> Result<(), String> {
    // Its own session: the berth command that started it may exit at once.
    let _ = nix::unistd::setsid();
    if let Err(e) = confine() {
        log(e);
    }
    // Room for many networks' sockets beside the clients and forwards.
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
    let mut mask = SigSet::empty();
    for s in [Signal::SIGHUP, Signal::SIGTERM, Signal::SIGINT] {
        mask.add(s);
    }
    mask.thread_block()
        .map_err(|e| format!("block signals: {e}"))?;
    let sfd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(|e| format!("signalfd: {e}"))?;
    let file = RecordsFile::read(&cfg.records).map_err(|e| e.to_string())?;
    let mut pid_file = match &cfg.pid_file {
        Some(p) => Some(PidFile::create(p)?),
        None => None,
    };
    let mut s = Server {
        records_stamp: Stamp::of(&cfg.records),
        resolv_stamp: Stamp(None),
        index: Index::new(file),
        cfg,
        upstreams: Vec::new(),
        failing_upstreams: HashSet::new(),
        listeners: BTreeMap::new(),
        unbound: HashSet::new(),
        next_bind_retry: Instant::now(),
        conns: HashMap::new(),
        forwards: HashMap::new(),
        next_token: 0,
        rng: seed(),
        scratch: Vec::new(),
    };
    s.load_resolv();
    s.sync_listeners();
    if let Some(p) = &mut pid_file {
        p.write_pid()?;
    }
    loop {
        let timeout = s.poll_timeout();
        let mut tokens = vec![Token::Signal];
        let mut fds: Vec<PollFd> = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        // The borrow of `s` ends with `fds`, before any handler runs.
        for (a, l) in &s.listeners {
            fds.push(PollFd::new(l.udp.as_fd(), PollFlags::POLLIN));
            tokens.push(Token::Udp(*a));
            fds.push(PollFd::new(l.tcp.as_fd(), PollFlags::POLLIN));
            tokens.push(Token::Tcp(*a));
        }
        for (t, c) in &s.conns {
            // At end of input a socket stays readable: a client that closed
            // its side is not polled for input, or the loop would spin.
            let mut f = if c.eof {
                PollFlags::empty()
            } else {
                PollFlags::POLLIN
            };
            if !c.output.is_empty() {
                f |= PollFlags::POLLOUT;
            }
            fds.push(PollFd::new(c.stream.as_fd(), f));
            tokens.push(Token::Conn(*t));
        }
        for (t, f) in &s.forwards {
            let (fd, flags) = match &f.transport {
                Some(Transport::Udp(u)) => (u.as_fd(), PollFlags::POLLIN),
                Some(Transport::Tcp {
                    stream,
                    out,
                    written,
                    ..
                }) if *written < out.len() => (stream.as_fd(), PollFlags::POLLOUT),
                Some(Transport::Tcp { stream, .. }) => (stream.as_fd(), PollFlags::POLLIN),
                None => continue,
            };
            fds.push(PollFd::new(fd, flags));
            tokens.push(Token::Forward(*t));
        }
        match poll(&mut fds, timeout) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(format!("poll: {e}")),
        }
        let ready: Vec<(Token, PollFlags)> = fds
            .iter()
            .zip(tokens)
            .filter_map(|(fd, t)| fd.revents().filter(|r| !r.is_empty()).map(|r| (t, r)))
            .collect();
        drop(fds);
        for (t, flags) in ready {
            match t {
                Token::Signal => {
                    while let Ok(Some(info)) = sfd.read_signal() {
                        match Signal::try_from(info.ssi_signo as i32) {
                            Ok(Signal::SIGHUP) => {
                                s.load_records();
                                s.load_resolv();
                            }
                            Ok(Signal::SIGTERM | Signal::SIGINT) => return Ok(()),
                            _ => {}
                        }
                    }
                }
                Token::Udp(a) => s.on_udp(a),
                Token::Tcp(a) => s.on_accept(a),
                Token::Conn(c) => s.on_conn(c, flags),
                Token::Forward(f) => s.on_forward(f),
            }
        }
        s.timeouts();
    }
}
