//! User-space forwarding of published ports that the kernel cannot NAT.
//!
//! berth publishes ports with nftables DNAT rules, in the kernel. One case
//! is out of the kernel's reach: the host's IPv6 loopback. A packet to
//! `[::1]` that is DNATed to a container leaves, but its reply, un-NATed
//! back to `::1` on its way in, finds no route (IPv6 has no
//! `route_localnet`) and is dropped. Docker answers there with
//! docker-proxy, one process per published port; berth adds no process:
//! a [`Forwarder`] lives in a process the container already has, its
//! monitor (driven by the monitor's own `poll` loop), or, for a container
//! run in the foreground, a thread of the `berth` that waits for it (only
//! while such a port is published).
//!
//! A [`Forward`] listens on one host address and port and connects each
//! client to the container's address; bytes are copied both ways through
//! a small buffer per direction, half-closes are passed on, and an error
//! on either side ends the pair. A UDP forward relays each client's
//! datagrams through a socket of its own connected to the container (its
//! answers go back from the host's port), forgotten after 90 s idle.
//! Everything is non-blocking: no call here waits.
//!
//! The forwards change while the container runs when its published ports
//! move to another network (`network connect`/`disconnect`): the engine
//! writes the new ones to a file, `forwards` in the container's run
//! directory (whole, by rename), and tells the monitor with SIGUSR1; the
//! thread beside a foreground container, which must not take signals from
//! `berth run`'s own (they are the container's), watches that file with
//! inotify instead ([`Watch`]). Either way the forwarder is
//! [`replace`](Forwarder::replace)d.

use std::ffi::OsString;
use std::fmt;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use nix::sys::socket::{self, AddressFamily, SockFlag, SockType, SockaddrStorage};

/// Bytes buffered per direction of a connection.
const BUF: usize = 16 * 1024;

/// Connections beyond this many are closed at once (each holds two
/// descriptors of the monitor's).
const MAX_CONNECTIONS: usize = 512;

/// One port to forward: TCP (or UDP) from `listen` (on the host) to
/// `target` (the container). `required`: a failure to listen is an error; otherwise the
/// forward is skipped (a host without IPv6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forward {
    /// UDP (datagrams relayed per client) rather than TCP.
    pub udp: bool,
    pub listen: SocketAddr,
    pub target: SocketAddr,
    pub required: bool,
}

impl fmt::Display for Forward {
    /// `tcp,[::1]:8080,[fd00::2]:80` (`udp,…`, and `,optional`): the text the
    /// monitor is given.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let proto = if self.udp { "udp" } else { "tcp" };
        write!(f, "{proto},{},{}", self.listen, self.target)?;
        if !self.required {
            f.write_str(",optional")?;
        }
        Ok(())
    }
}

/// A forward's text that does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadForward(pub String);

impl fmt::Display for BadForward {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bad forward {:?}: want tcp|udp,LISTEN,TARGET[,optional]",
            self.0
        )
    }
}

impl std::error::Error for BadForward {}

impl FromStr for Forward {
    type Err = BadForward;

    fn from_str(s: &str) -> Result<Forward, BadForward> {
        let bad = || BadForward(s.to_owned());
        let mut parts = s.split(',');
        let udp = match parts.next() {
            Some("tcp") => false,
            Some("udp") => true,
            _ => return Err(bad()),
        };
        let listen = parts.next().and_then(|a| a.parse().ok()).ok_or_else(bad)?;
        let target = parts.next().and_then(|a| a.parse().ok()).ok_or_else(bad)?;
        let required = match parts.next() {
            None => true,
            Some("optional") => false,
            Some(_) => return Err(bad()),
        };
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(Forward {
            udp,
            listen,
            target,
            required,
        })
    }
}

/// The forwards of a `forwards` file (one a line, as [`Forward`]'s text),
/// each optional: a port that cannot be listened on again after a move is
/// skipped, never an error of a container that already runs. None when
/// the file cannot be read.
pub fn read_forwards(path: &Path) -> Option<Vec<Forward>> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(
        text.lines()
            .filter_map(|l| l.parse::<Forward>().ok())
            .map(|f| Forward {
                required: false,
                ..f
            })
            .collect(),
    )
}

/// A `forwards` file watched for its replacement (inotify on its
/// directory: the engine renames a new file over it). Made before the
/// forwards it follows are read, so that no change is missed.
pub struct Watch {
    inotify: Inotify,
    path: PathBuf,
    name: OsString,
}

impl Watch {
    /// Watches `path` (its directory must exist).
    pub fn file(path: &Path) -> std::io::Result<Watch> {
        let dir = path.parent().ok_or(ErrorKind::InvalidInput)?;
        let name = path.file_name().ok_or(ErrorKind::InvalidInput)?;
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)?;
        inotify.add_watch(
            dir,
            AddWatchFlags::IN_MOVED_TO | AddWatchFlags::IN_CLOSE_WRITE,
        )?;
        Ok(Watch {
            inotify,
            path: path.to_owned(),
            name: name.to_owned(),
        })
    }

    /// The new forwards when the file was replaced since the last call
    /// (every waiting event is taken), else None.
    fn take(&self) -> Option<Vec<Forward>> {
        let mut changed = false;
        while let Ok(events) = self.inotify.read_events() {
            if events.is_empty() {
                break;
            }
            changed |= events
                .iter()
                .any(|e| e.name.as_deref() == Some(self.name.as_os_str()));
        }
        changed.then(|| read_forwards(&self.path)).flatten()
    }
}

/// Why listening failed, in Docker's words for a taken port.
#[derive(Debug)]
pub struct BindError {
    pub listen: SocketAddr,
    pub source: std::io::Error,
}

impl fmt::Display for BindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let why = if self.source.kind() == ErrorKind::AddrInUse {
            "port is already allocated".to_owned()
        } else {
            self.source.to_string()
        };
        write!(f, "Bind for {} failed: {why}", self.listen)
    }
}

impl std::error::Error for BindError {}

/// Bytes read from one side, not yet written to the other.
struct Half {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    /// The source sent its FIN.
    eof: bool,
    /// The FIN was passed on (the destination's write side is shut).
    shut: bool,
}

impl Half {
    fn new() -> Half {
        Half {
            buf: vec![0u8; BUF].into_boxed_slice(),
            start: 0,
            end: 0,
            eof: false,
            shut: false,
        }
    }

    fn wants_read(&self) -> bool {
        !self.eof && self.end < self.buf.len()
    }

    fn pending(&self) -> bool {
        self.start < self.end
    }

    /// Reads what `src` has (room permitting); false on an error.
    fn fill(&mut self, src: &mut TcpStream) -> bool {
        while self.wants_read() {
            match src.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        true
    }

    /// Writes what is buffered to `dst`, and the FIN after it; false on an
    /// error.
    fn drain(&mut self, dst: &mut TcpStream) -> bool {
        while self.pending() {
            match dst.write(&self.buf[self.start..self.end]) {
                Ok(0) => return false,
                Ok(n) => self.start += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        self.start = 0;
        self.end = 0;
        if self.eof && !self.shut {
            self.shut = true;
            if dst.shutdown(Shutdown::Write).is_err() {
                return false;
            }
        }
        true
    }
}

/// A client and its connection to the container.
struct Conn {
    client: TcpStream,
    upstream: TcpStream,
    /// The connection to the container is established.
    connected: bool,
    /// Client to container.
    up: Half,
    /// Container to client.
    down: Half,
}

impl Conn {
    fn client_interest(&self) -> PollFlags {
        let mut f = PollFlags::empty();
        if self.connected && self.up.wants_read() {
            f |= PollFlags::POLLIN;
        }
        if self.down.pending() {
            f |= PollFlags::POLLOUT;
        }
        f
    }

    fn upstream_interest(&self) -> PollFlags {
        if !self.connected {
            return PollFlags::POLLOUT;
        }
        let mut f = PollFlags::empty();
        if self.down.wants_read() {
            f |= PollFlags::POLLIN;
        }
        if self.up.pending() {
            f |= PollFlags::POLLOUT;
        }
        f
    }

    /// Moves what can be moved; false when the pair is over (an error, or
    /// both directions closed).
    fn pump(&mut self) -> bool {
        if !self.connected {
            match self.upstream.take_error() {
                Ok(None) => {}
                _ => return false,
            }
            // Still in progress (a spurious wake-up) until it has a peer.
            if self.upstream.peer_addr().is_err() {
                return true;
            }
            self.connected = true;
        }
        let ok = self.up.fill(&mut self.client)
            && self.up.drain(&mut self.upstream)
            && self.down.fill(&mut self.upstream)
            && self.down.drain(&mut self.client);
        ok && !(self.up.shut && self.down.shut)
    }
}

/// A UDP client's flow: a socket of its own connected to the container,
/// whose answers go back to the client from the listening socket.
struct Flow {
    client: SocketAddr,
    sock: UdpSocket,
    last: Instant,
}

/// A UDP port: its socket on the host and the flows of its clients.
struct UdpRelay {
    sock: UdpSocket,
    target: SocketAddr,
    flows: Vec<Flow>,
}

/// A UDP flow without traffic for this long is forgotten (docker-proxy's
/// UDP conntrack timeout).
const UDP_IDLE: Duration = Duration::from_secs(90);

/// Flows per UDP port beyond which the oldest goes.
const MAX_FLOWS: usize = 256;

/// What one entry of the poll set is.
#[derive(Clone, Copy)]
enum Slot {
    Listener(usize),
    Client(usize),
    Upstream(usize),
    Udp(usize),
    Flow(usize, usize),
}

/// The listeners of a container's forwards and their connections.
pub struct Forwarder {
    listeners: Vec<(TcpListener, SocketAddr)>,
    conns: Vec<Conn>,
    udp: Vec<UdpRelay>,
    /// One datagram (allocated with the first UDP port).
    datagram: Vec<u8>,
    plan: Vec<(Slot, PollFlags)>,
}

impl Forwarder {
    /// Listens on every forward's address (non-blocking); the first
    /// required one that cannot be bound is the error.
    pub fn bind(forwards: &[Forward]) -> Result<Forwarder, BindError> {
        let mut listeners = Vec::new();
        let mut udp = Vec::new();
        for f in forwards {
            let bound = if f.udp {
                UdpSocket::bind(f.listen).and_then(|u| {
                    u.set_nonblocking(true)?;
                    udp.push(UdpRelay {
                        sock: u,
                        target: f.target,
                        flows: Vec::new(),
                    });
                    Ok(())
                })
            } else {
                TcpListener::bind(f.listen).and_then(|l| {
                    l.set_nonblocking(true)?;
                    listeners.push((l, f.target));
                    Ok(())
                })
            };
            match bound {
                Ok(()) => {}
                Err(source) if f.required => {
                    return Err(BindError {
                        listen: f.listen,
                        source,
                    })
                }
                Err(_) => {}
            }
        }
        let datagram = if udp.is_empty() {
            Vec::new()
        } else {
            vec![0u8; 65536]
        };
        Ok(Forwarder {
            listeners,
            conns: Vec::new(),
            udp,
            datagram,
            plan: Vec::new(),
        })
    }

    /// Listens on `forwards` instead: the old listeners go first, with
    /// their connections (as Docker's docker-proxy is replaced), so that
    /// the same host ports can be listened on again; a forward that cannot
    /// be listened on is skipped (see [`read_forwards`]).
    pub fn replace(&mut self, forwards: &[Forward]) {
        self.listeners.clear();
        self.conns.clear();
        self.udp.clear();
        self.plan.clear();
        if let Ok(f) = Forwarder::bind(forwards) {
            *self = f;
        }
    }

    /// Whether there is nothing to forward.
    pub fn is_empty(&self) -> bool {
        self.listeners.is_empty() && self.udp.is_empty()
    }

    /// The descriptors to poll and what for, until the next
    /// [`ready`](Self::ready). A descriptor with nothing to wait for is
    /// left out (a hung-up socket would wake `poll` at once, forever).
    pub fn poll_fds(&mut self) -> Vec<PollFd<'_>> {
        self.plan.clear();
        for i in 0..self.listeners.len() {
            self.plan.push((Slot::Listener(i), PollFlags::POLLIN));
        }
        for (i, r) in self.udp.iter().enumerate() {
            self.plan.push((Slot::Udp(i), PollFlags::POLLIN));
            for j in 0..r.flows.len() {
                self.plan.push((Slot::Flow(i, j), PollFlags::POLLIN));
            }
        }
        for (k, c) in self.conns.iter().enumerate() {
            let f = c.client_interest();
            if !f.is_empty() {
                self.plan.push((Slot::Client(k), f));
            }
            let f = c.upstream_interest();
            if !f.is_empty() {
                self.plan.push((Slot::Upstream(k), f));
            }
        }
        self.plan
            .iter()
            .map(|(slot, flags)| {
                let fd: BorrowedFd<'_> = match *slot {
                    Slot::Listener(i) => self.listeners[i].0.as_fd(),
                    Slot::Client(k) => self.conns[k].client.as_fd(),
                    Slot::Upstream(k) => self.conns[k].upstream.as_fd(),
                    Slot::Udp(i) => self.udp[i].sock.as_fd(),
                    Slot::Flow(i, j) => self.udp[i].flows[j].sock.as_fd(),
                };
                PollFd::new(fd, *flags)
            })
            .collect()
    }

    /// Acts on what `poll` reported for the descriptors of the last
    /// [`poll_fds`](Self::poll_fds), in the same order.
    pub fn ready(&mut self, revents: &[PollFlags]) {
        let plan = std::mem::take(&mut self.plan);
        let mut touched = vec![false; self.conns.len()];
        for ((slot, _), r) in plan.iter().zip(revents) {
            if r.is_empty() {
                continue;
            }
            match *slot {
                Slot::Listener(i) => self.accept(i),
                Slot::Client(k) | Slot::Upstream(k) => touched[k] = true,
                Slot::Udp(i) => self.relay_in(i),
                Slot::Flow(i, j) => self.relay_out(i, j),
            }
        }
        // Idle flows go (checked whenever anything happens).
        let now = Instant::now();
        for r in &mut self.udp {
            r.flows.retain(|f| now.duration_since(f.last) < UDP_IDLE);
        }
        let mut k = 0;
        self.conns.retain_mut(|c| {
            let keep = !touched.get(k).copied().unwrap_or(false) || c.pump();
            k += 1;
            keep
        });
        self.plan = plan;
        self.plan.clear();
    }

    /// Takes the waiting clients of listener `i`, each with a connection
    /// to the container under way.
    fn accept(&mut self, i: usize) {
        let (listener, target) = &self.listeners[i];
        for _ in 0..64 {
            let Ok((client, _)) = listener.accept() else {
                return;
            };
            if self.conns.len() >= MAX_CONNECTIONS || client.set_nonblocking(true).is_err() {
                continue;
            }
            if let Ok(upstream) = connect_nonblocking(*target) {
                let _ = client.set_nodelay(true);
                let _ = upstream.set_nodelay(true);
                self.conns.push(Conn {
                    client,
                    upstream,
                    connected: false,
                    up: Half::new(),
                    down: Half::new(),
                });
            }
            // (else the client is closed: the container is not there)
        }
    }

    /// Relays the datagrams waiting on UDP port `i` to the container, each
    /// through its client's flow (made on its first datagram).
    fn relay_in(&mut self, i: usize) {
        let r = &mut self.udp[i];
        for _ in 0..64 {
            let Ok((n, client)) = r.sock.recv_from(&mut self.datagram) else {
                return;
            };
            let k = match r.flows.iter().position(|f| f.client == client) {
                Some(k) => k,
                None => {
                    let Ok(sock) = udp_flow(r.target) else {
                        continue;
                    };
                    if r.flows.len() >= MAX_FLOWS {
                        r.flows.remove(0);
                    }
                    r.flows.push(Flow {
                        client,
                        sock,
                        last: Instant::now(),
                    });
                    r.flows.len() - 1
                }
            };
            let f = &mut r.flows[k];
            f.last = Instant::now();
            let _ = f.sock.send(&self.datagram[..n]);
        }
    }

    /// Relays the container's answers on flow `j` of UDP port `i` back to
    /// its client.
    fn relay_out(&mut self, i: usize, j: usize) {
        let r = &mut self.udp[i];
        let Some(f) = r.flows.get_mut(j) else { return };
        for _ in 0..64 {
            match f.sock.recv(&mut self.datagram) {
                Ok(n) => {
                    f.last = Instant::now();
                    let _ = r.sock.send_to(&self.datagram[..n], f.client);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                // (an ICMP error of the container's: the next datagram may pass)
                Err(_) => return,
            }
        }
    }

    /// Serves until `stop` becomes readable or hangs up (its writer wrote
    /// or closed): the loop of a thread beside a foreground container.
    /// With `watch`, the forwards are replaced whenever its file is.
    pub fn serve_until(mut self, stop: BorrowedFd<'_>, watch: Option<Watch>) {
        loop {
            let mut fds = self.poll_fds();
            fds.push(PollFd::new(stop, PollFlags::POLLIN));
            if let Some(w) = &watch {
                fds.push(PollFd::new(w.inotify.as_fd(), PollFlags::POLLIN));
            }
            match nix::poll::poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return,
            }
            let revents: Vec<PollFlags> = fds
                .iter()
                .map(|f| f.revents().unwrap_or(PollFlags::empty()))
                .collect();
            drop(fds);
            let extra = 1 + usize::from(watch.is_some());
            let (mine, ours) = revents.split_at(revents.len().saturating_sub(extra));
            if ours.first().is_some_and(|r| !r.is_empty()) {
                return;
            }
            self.ready(mine);
            let replaced = ours.get(1).is_some_and(|r| !r.is_empty());
            if let Some(forwards) = watch.as_ref().filter(|_| replaced).and_then(Watch::take) {
                self.replace(&forwards);
            }
        }
    }
}

/// A non-blocking UDP socket connected to `target`.
fn udp_flow(target: SocketAddr) -> std::io::Result<UdpSocket> {
    let any: SocketAddr = match target {
        SocketAddr::V4(_) => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let sock = UdpSocket::bind(any)?;
    sock.connect(target)?;
    sock.set_nonblocking(true)?;
    Ok(sock)
}

/// A non-blocking TCP socket whose connection to `target` is under way.
fn connect_nonblocking(target: SocketAddr) -> std::io::Result<TcpStream> {
    let (family, addr) = match target {
        SocketAddr::V4(a) => (AddressFamily::Inet, SockaddrStorage::from(a)),
        SocketAddr::V6(a) => (AddressFamily::Inet6, SockaddrStorage::from(a)),
    };
    let fd: OwnedFd = socket::socket(
        family,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    match socket::connect(std::os::fd::AsRawFd::as_raw_fd(&fd), &addr) {
        Ok(()) | Err(nix::errno::Errno::EINPROGRESS) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(TcpStream::from(fd))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn text_round_trip() {
        let f: Forward = "tcp,[::1]:8080,[fd00::2]:80".parse().unwrap();
        assert_eq!(f.listen, "[::1]:8080".parse().unwrap());
        assert_eq!(f.target, "[fd00::2]:80".parse().unwrap());
        assert!(f.required);
        assert_eq!(f.to_string(), "tcp,[::1]:8080,[fd00::2]:80");
        let g: Forward = "tcp,[::1]:1,10.0.0.2:2,optional".parse().unwrap();
        let u: Forward = "udp,[::1]:53,[fd00::2]:53".parse().unwrap();
        assert!(u.udp && !g.udp);
        assert_eq!(u.to_string(), "udp,[::1]:53,[fd00::2]:53");
        assert!(!g.required);
        assert_eq!(g.to_string().parse::<Forward>().unwrap(), g);
        for bad in [
            "",
            "sctp,[::1]:1,[::2]:2",
            "tcp,[::1]:1",
            "tcp,::1:1,[::2]:2",
            "tcp,[::1]:1,[::2]:2,maybe",
            "tcp,[::1]:1,[::2]:2,optional,x",
        ] {
            assert!(bad.parse::<Forward>().is_err(), "{bad:?}");
        }
    }

    /// A forwarder on the loopback to an echo server (upper-cased), with a
    /// half-close passed on: the client's FIN reaches the server, whose
    /// answer and FIN come back.
    #[test]
    fn forwards_both_ways_and_passes_half_closes_on() {
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let target = server.local_addr().unwrap();
        let echo = std::thread::spawn(move || {
            let (mut s, _) = server.accept().unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).unwrap();
            s.write_all(&got.to_ascii_uppercase()).unwrap();
        });
        let probe = TcpListener::bind("127.0.0.1:0").unwrap();
        let listen = probe.local_addr().unwrap();
        drop(probe);
        let fwd = Forwarder::bind(&[Forward {
            udp: false,
            listen,
            target,
            required: true,
        }])
        .unwrap();
        let (stop_r, stop_w) = nix::unistd::pipe().unwrap();
        let t = std::thread::spawn(move || fwd.serve_until(stop_r.as_fd(), None));
        let mut c = TcpStream::connect(listen).unwrap();
        let big: Vec<u8> = (0..200_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        c.write_all(&big).unwrap();
        c.shutdown(Shutdown::Write).unwrap();
        let mut back = Vec::new();
        c.read_to_end(&mut back).unwrap();
        assert_eq!(back, big.to_ascii_uppercase());
        echo.join().unwrap();
        drop(stop_w);
        t.join().unwrap();
        // The listener went with the forwarder.
        TcpListener::bind(listen).unwrap();
    }

    #[test]
    fn a_taken_port_is_an_error_unless_optional() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let listen = taken.local_addr().unwrap();
        let f = Forward {
            udp: false,
            listen,
            target: listen,
            required: true,
        };
        let e = Forwarder::bind(&[f]).err().unwrap();
        assert_eq!(
            e.to_string(),
            format!("Bind for {listen} failed: port is already allocated")
        );
        let fwd = Forwarder::bind(&[Forward {
            required: false,
            ..f
        }])
        .unwrap();
        assert!(fwd.is_empty());
    }

    /// A target nobody listens on: the client is closed, nothing kept.
    #[test]
    fn a_refused_target_closes_the_client() {
        let gone = TcpListener::bind("127.0.0.1:0").unwrap();
        let target = gone.local_addr().unwrap();
        drop(gone);
        let probe = TcpListener::bind("127.0.0.1:0").unwrap();
        let listen = probe.local_addr().unwrap();
        drop(probe);
        let mut fwd = Forwarder::bind(&[Forward {
            udp: false,
            listen,
            target,
            required: true,
        }])
        .unwrap();
        let mut c = TcpStream::connect(listen).unwrap();
        c.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let reader = std::thread::spawn(move || {
            let mut b = Vec::new();
            let _ = c.read_to_end(&mut b);
            b
        });
        for _ in 0..50 {
            let mut fds = fwd.poll_fds();
            let _ = nix::poll::poll(&mut fds, PollTimeout::from(100u16));
            let r: Vec<PollFlags> = fds
                .iter()
                .map(|f| f.revents().unwrap_or(PollFlags::empty()))
                .collect();
            drop(fds);
            fwd.ready(&r);
            if reader.is_finished() {
                break;
            }
        }
        assert!(reader.join().unwrap().is_empty());
        assert!(fwd.conns.is_empty());
    }

    /// UDP: each client's datagrams reach the container from a flow of
    /// its own, and the answers come back to that client.
    #[test]
    fn udp_datagrams_go_both_ways_per_client() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let target = server.local_addr().unwrap();
        let echo = std::thread::spawn(move || {
            let mut b = [0u8; 100];
            for _ in 0..2 {
                let (n, from) = server.recv_from(&mut b).unwrap();
                server.send_to(&b[..n].to_ascii_uppercase(), from).unwrap();
            }
        });
        let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
        let listen = probe.local_addr().unwrap();
        drop(probe);
        let fwd = Forwarder::bind(&[Forward {
            udp: true,
            listen,
            target,
            required: true,
        }])
        .unwrap();
        let (stop_r, stop_w) = nix::unistd::pipe().unwrap();
        let t = std::thread::spawn(move || fwd.serve_until(stop_r.as_fd(), None));
        for word in [&b"one"[..], b"two"] {
            let c = UdpSocket::bind("127.0.0.1:0").unwrap();
            c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            c.send_to(word, listen).unwrap();
            let mut b = [0u8; 100];
            let (n, from) = c.recv_from(&mut b).unwrap();
            assert_eq!(&b[..n], word.to_ascii_uppercase());
            assert_eq!(from, listen);
        }
        echo.join().unwrap();
        drop(stop_w);
        t.join().unwrap();
        UdpSocket::bind(listen).unwrap();
    }

    /// A watched `forwards` file replaced by rename: the thread listens on
    /// its forwards instead of the old ones.
    #[test]
    fn a_replaced_forwards_file_is_followed() {
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let target = server.local_addr().unwrap();
        let echo = std::thread::spawn(move || {
            let (mut s, _) = server.accept().unwrap();
            s.write_all(b"moved").unwrap();
        });
        let port = |_| {
            let probe = TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap()
        };
        let (old, new) = (port(0), port(1));
        let dir = std::env::temp_dir().join(format!("berth-forward-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("forwards");
        let watch = Watch::file(&file).unwrap();
        let f = |listen| Forward {
            udp: false,
            listen,
            target,
            required: true,
        };
        let fwd = Forwarder::bind(&[f(old)]).unwrap();
        let (stop_r, stop_w) = nix::unistd::pipe().unwrap();
        let t = std::thread::spawn(move || fwd.serve_until(stop_r.as_fd(), Some(watch)));
        std::fs::write(dir.join("forwards.tmp"), format!("{}\n", f(new))).unwrap();
        std::fs::rename(dir.join("forwards.tmp"), &file).unwrap();
        let mut got = String::new();
        for _ in 0..100 {
            if let Ok(mut c) = TcpStream::connect(new) {
                c.read_to_string(&mut got).unwrap();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(got, "moved");
        echo.join().unwrap();
        // The old listener went.
        TcpListener::bind(old).unwrap();
        drop(stop_w);
        t.join().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
