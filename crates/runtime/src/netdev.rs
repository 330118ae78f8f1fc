//! `linux.netDevices` (runtime-spec 1.2), as runc 1.3 does it: at create,
//! each host interface is set down, its addresses are listed, it is moved
//! into the container's network namespace and renamed (when the entry has a
//! `name`) in one request, its permanent global addresses are added again
//! there, and it is set up. MTU and MAC address survive the move by
//! themselves. Nothing moves it back at delete: the network namespace's owner
//! controls the interface's lifecycle (a physical device returns to the host
//! when its namespace dies, a virtual one dies with it: the kernel's
//! business). Only a create that fails part way gives back what it moved.
//! rtnetlink requests, only for specs that list devices.

use crate::error::{spec_err, Context, Result, RuntimeError};
use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope,
};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use nix::errno::Errno;
use oci_spec::runtime::Spec;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, OwnedFd};

/// The devices to move: (host name, name in the container).
pub fn devices(spec: &Spec) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = spec
        .linux()
        .as_ref()
        .and_then(|l| l.net_devices().as_ref())
        .into_iter()
        .flatten()
        .map(|(host, d)| {
            let inside = d
                .name()
                .clone()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| host.clone());
            (host.clone(), inside)
        })
        .collect();
    v.sort();
    v
}

/// Checks the names (as the kernel's dev_valid_name does) before anything is made.
pub fn validate(spec: &Spec) -> Result<()> {
    for (host, inside) in devices(spec) {
        for (field, name) in [
            (format!("linux.netDevices.{host}"), &host),
            (format!("linux.netDevices.{host}.name"), &inside),
        ] {
            let bad = name.is_empty()
                || name.len() > 15
                || name == "."
                || name == ".."
                || name.contains(|c: char| c == '/' || c == ':' || c.is_whitespace());
            if bad {
                return Err(spec_err(
                    field,
                    format!("{name:?} is not a valid interface name"),
                ));
            }
        }
    }
    Ok(())
}

struct Rtnl {
    socket: Socket,
    seq: u32,
}

type NlResult<T> = std::result::Result<T, Errno>;

impl Rtnl {
    /// A NETLINK_ROUTE socket in the calling thread's network namespace.
    fn open() -> Result<Rtnl> {
        let mut socket = Socket::new(NETLINK_ROUTE).context(|| "netlink socket".to_owned())?;
        socket
            .bind_auto()
            .context(|| "bind netlink socket".to_owned())?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .context(|| "connect netlink socket".to_owned())?;
        Ok(Rtnl { socket, seq: 1 })
    }

    /// A NETLINK_ROUTE socket in the namespace open on `netns` (a socket
    /// stays bound to the namespace it was made in); the thread returns to
    /// `home`, its own namespace, before anything else.
    fn open_in(netns: &OwnedFd, home: &OwnedFd) -> Result<Rtnl> {
        nix::sched::setns(netns, nix::sched::CloneFlags::CLONE_NEWNET)
            .context(|| "enter the container's network namespace".to_owned())?;
        let nl = Rtnl::open();
        nix::sched::setns(home, nix::sched::CloneFlags::CLONE_NEWNET)
            .context(|| "return to the runtime's network namespace".to_owned())?;
        nl
    }

    /// Sends one request and reads its replies: the reply messages (all of
    /// a dump's, up to NLMSG_DONE; the first otherwise), or the kernel's
    /// errno.
    fn exchange(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> NlResult<Vec<RouteNetlinkMessage>> {
        let mut req = NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::from(msg));
        req.header.flags = NLM_F_REQUEST | flags;
        self.seq = self.seq.wrapping_add(1);
        req.header.sequence_number = self.seq;
        req.finalize();
        let mut buf = vec![0u8; req.header.length as usize];
        req.serialize(&mut buf);
        let io = |e: std::io::Error| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO));
        self.socket.send(&buf, 0).map_err(io)?;
        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        let mut replies = Vec::new();
        loop {
            let (data, _) = self.socket.recv_from_full().map_err(io)?;
            let mut off = 0;
            while off < data.len() {
                let Ok(msg) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[off..])
                else {
                    return Err(Errno::EBADMSG);
                };
                let len = msg.header.length as usize;
                if len == 0 {
                    break;
                }
                off += (len + 3) & !3;
                if msg.header.sequence_number != self.seq {
                    continue;
                }
                match msg.payload {
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            None => Ok(replies),
                            Some(code) => Err(Errno::from_raw(-code.get())),
                        }
                    }
                    NetlinkPayload::InnerMessage(m) => {
                        replies.push(m);
                        if !dump {
                            return Ok(replies);
                        }
                    }
                    NetlinkPayload::Done(_) => return Ok(replies),
                    _ => {}
                }
            }
        }
    }

    /// One request that is answered by an ack (or the kernel's errno).
    fn request(&mut self, msg: RouteNetlinkMessage, flags: u16) -> NlResult<()> {
        self.exchange(msg, NLM_F_ACK | flags).map(drop)
    }

    fn index_of(&mut self, name: &str) -> NlResult<u32> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
        match self.exchange(RouteNetlinkMessage::GetLink(msg), 0)?.pop() {
            Some(RouteNetlinkMessage::NewLink(l)) => Ok(l.header.index),
            _ => Err(Errno::ENODEV),
        }
    }

    /// Sets link `index` up or down.
    fn set_up(&mut self, index: u32, up: bool) -> NlResult<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.header.change_mask = LinkFlags::Up;
        if up {
            msg.header.flags = LinkFlags::Up;
        }
        self.request(RouteNetlinkMessage::SetLink(msg), 0)
    }

    /// The addresses of link `index` that move with it, as runc's: the
    /// permanent ones (configured, not dynamic) of global scope (not host-
    /// or link-specific).
    fn movable_addresses(&mut self, index: u32) -> NlResult<Vec<AddressMessage>> {
        let all = self.exchange(
            RouteNetlinkMessage::GetAddress(AddressMessage::default()),
            NLM_F_DUMP,
        )?;
        Ok(all
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewAddress(a) => Some(a),
                _ => None,
            })
            .filter(|a| a.header.index == index && a.header.scope == AddressScope::Universe)
            .filter(|a| {
                a.header.flags.contains(AddressHeaderFlags::Permanent)
                    || a.attributes.iter().any(|x| {
                        matches!(x, AddressAttribute::Flags(f) if f.contains(AddressFlags::Permanent))
                    })
            })
            .collect())
    }

    /// Adds the address (only its prefix: no label, flags or lifetimes) of
    /// `orig` to link `index`.
    fn add_address(&mut self, index: u32, orig: &AddressMessage) -> NlResult<()> {
        let ip = orig
            .attributes
            .iter()
            .find_map(|a| match a {
                AddressAttribute::Local(ip) => Some(*ip),
                _ => None,
            })
            .or_else(|| {
                orig.attributes.iter().find_map(|a| match a {
                    AddressAttribute::Address(ip) => Some(*ip),
                    _ => None,
                })
            })
            .ok_or(Errno::EINVAL)?;
        let mut msg = AddressMessage::default();
        msg.header.index = index;
        msg.header.prefix_len = orig.header.prefix_len;
        msg.header.scope = AddressScope::Universe;
        match ip {
            IpAddr::V4(v4) => {
                msg.header.family = AddressFamily::Inet;
                msg.attributes.push(AddressAttribute::Local(ip));
                msg.attributes.push(AddressAttribute::Address(ip));
                // The broadcast address of subnets that have one (runc's
                // netlink library adds it the same way).
                let prefix = u32::from(orig.header.prefix_len.min(32));
                if prefix < 31 {
                    let host_bits = u32::MAX.checked_shr(prefix).unwrap_or(0);
                    let brd = std::net::Ipv4Addr::from(u32::from(v4) | host_bits);
                    msg.attributes.push(AddressAttribute::Broadcast(brd));
                }
            }
            IpAddr::V6(_) => {
                msg.header.family = AddressFamily::Inet6;
                msg.attributes.push(AddressAttribute::Address(ip));
            }
        }
        self.request(
            RouteNetlinkMessage::NewAddress(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        )
    }

    /// Moves link `index` into the namespace open on `netns`, named `name`
    /// there, in one request (a rename after the move could clash with a
    /// name there, one before it with a name here).
    fn move_link(&mut self, index: u32, netns: &OwnedFd, name: &str) -> NlResult<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.attributes
            .push(LinkAttribute::NetNsFd(netns.as_raw_fd()));
        msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
        self.request(RouteNetlinkMessage::NewLink(msg), 0)
    }
}

fn open_netns(path: &str) -> Result<OwnedFd> {
    let fd = nix::fcntl::open(
        path,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .context(|| format!("open {path}"))?;
    Ok(crate::sys::take_fd(fd))
}

/// The container's network namespace: the one its spec joins by path, or
/// the one process `pid` was born in (the init joins a path only after the
/// runtime has gone on, so its own may still be the runtime's).
fn container_netns(spec: &Spec, pid: i32) -> Result<OwnedFd> {
    let joined = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .into_iter()
        .flatten()
        .find(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::Network)
        .and_then(|n| n.path().clone());
    match joined {
        Some(p) => open_netns(&p.to_string_lossy()),
        None => open_netns(&format!("/proc/{pid}/ns/net")),
    }
}

/// Moves the spec's devices from the runtime's network namespace into the
/// container's ([`container_netns`]), as runc 1.3 does (see the module's
/// comment). A failure
/// names the device and the step; the devices already moved are moved back
/// (the create fails: the caller asked for nothing to be left changed).
pub fn move_in(spec: &Spec, pid: i32) -> Result<()> {
    let devs = devices(spec);
    if devs.is_empty() {
        return Ok(());
    }
    let netns = container_netns(spec, pid)?;
    let home = open_netns("/proc/thread-self/ns/net")?;
    let mut outside = Rtnl::open()?;
    let mut inside = Rtnl::open_in(&netns, &home)?;
    for (i, (host, name)) in devs.iter().enumerate() {
        if let Err(f) = move_one(&mut outside, &mut inside, &netns, host, name) {
            let moved = if f.moved { i + 1 } else { i };
            let _ = move_back(&mut inside, &home, &devs[..moved]);
            let Failure { step, errno: e, .. } = f;
            return Err(spec_err(
                format!("linux.netDevices.{host}"),
                format!("move {host} into the container as {name}: {step}: {e}"),
            ));
        }
    }
    Ok(())
}

/// A step of [`move_one`] that failed.
struct Failure {
    step: &'static str,
    errno: Errno,
    /// Whether the device was in the container's namespace already.
    moved: bool,
}

/// One device: down, its addresses listed, moved and renamed, the
/// addresses added again inside, up.
fn move_one(
    outside: &mut Rtnl,
    inside: &mut Rtnl,
    netns: &OwnedFd,
    host: &str,
    name: &str,
) -> std::result::Result<(), Failure> {
    let before = |step| {
        move |errno| Failure {
            step,
            errno,
            moved: false,
        }
    };
    let after = |step| {
        move |errno| Failure {
            step,
            errno,
            moved: true,
        }
    };
    let index = outside.index_of(host).map_err(before("find it"))?;
    outside
        .set_up(index, false)
        .map_err(before("set it down"))?;
    let addrs = outside
        .movable_addresses(index)
        .map_err(before("list its addresses"))?;
    outside
        .move_link(index, netns, name)
        .map_err(before("move it"))?;
    let index = inside
        .index_of(name)
        .map_err(after("find it in the container"))?;
    for a in &addrs {
        inside
            .add_address(index, a)
            .map_err(after("add its address"))?;
    }
    inside.set_up(index, true).map_err(after("set it up"))
}

/// Moves the spec's devices back from process `pid`'s network namespace,
/// for a create that fails after they were moved (best effort: a namespace
/// gone took its virtual devices with it and gave the physical ones back
/// already). `delete` does not call this: as with runc, the namespace's
/// owner decides what becomes of them.
pub fn move_out(spec: &Spec, pid: i32) -> Result<()> {
    let devs = devices(spec);
    if devs.is_empty() {
        return Ok(());
    }
    let netns = container_netns(spec, pid)?;
    let home = open_netns("/proc/thread-self/ns/net")?;
    let mut inside = Rtnl::open_in(&netns, &home)?;
    move_back(&mut inside, &home, &devs)
}

/// Moves `devs` (host name, name inside) from the namespace `inside` talks
/// to into `home`, under their host names.
fn move_back(inside: &mut Rtnl, home: &OwnedFd, devs: &[(String, String)]) -> Result<()> {
    let mut first_err = None;
    for (host_name, name) in devs {
        let r = inside
            .index_of(name)
            .and_then(|index| inside.move_link(index, home, host_name));
        if let Err(e) = r {
            first_err.get_or_insert_with(|| {
                RuntimeError::Other(format!("move {name} back to the host as {host_name}: {e}"))
            });
        }
    }
    first_err.map_or(Ok(()), Err)
}
