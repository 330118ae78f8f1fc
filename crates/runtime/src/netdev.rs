//! `linux.netDevices` (runtime-spec 1.2): host network interfaces moved into
//! the container's network namespace at create (renamed when the entry has
//! a `name`), and moved back to the host under their own names at delete,
//! while the container's namespace still exists. One rtnetlink request per
//! device, only for specs that list devices.

use crate::error::{spec_err, Context, Result, RuntimeError};
use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_REQUEST,
};
use netlink_packet_route::link::{LinkAttribute, LinkMessage};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use oci_spec::runtime::Spec;
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

    /// One request; its first reply message (or none), or the kernel's errno.
    fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> std::result::Result<Option<RouteNetlinkMessage>, nix::errno::Errno> {
        let mut req = NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::from(msg));
        req.header.flags = NLM_F_REQUEST | flags;
        self.seq = self.seq.wrapping_add(1);
        req.header.sequence_number = self.seq;
        req.finalize();
        let mut buf = vec![0u8; req.header.length as usize];
        req.serialize(&mut buf);
        let io =
            |e: std::io::Error| nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO));
        self.socket.send(&buf, 0).map_err(io)?;
        loop {
            let (data, _) = self.socket.recv_from_full().map_err(io)?;
            let mut off = 0;
            while off < data.len() {
                let Ok(msg) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[off..])
                else {
                    return Err(nix::errno::Errno::EBADMSG);
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
                            None => Ok(None),
                            Some(code) => Err(nix::errno::Errno::from_raw(-code.get())),
                        }
                    }
                    NetlinkPayload::InnerMessage(m) => return Ok(Some(m)),
                    NetlinkPayload::Done(_) => return Ok(None),
                    _ => {}
                }
            }
        }
    }

    fn index_of(&mut self, name: &str) -> std::result::Result<u32, nix::errno::Errno> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
        match self.request(RouteNetlinkMessage::GetLink(msg), 0)? {
            Some(RouteNetlinkMessage::NewLink(l)) => Ok(l.header.index),
            _ => Err(nix::errno::Errno::ENODEV),
        }
    }

    /// Moves link `index` into the namespace open on `netns`, named `name` there.
    fn move_link(
        &mut self,
        index: u32,
        netns: &OwnedFd,
        name: &str,
    ) -> std::result::Result<(), nix::errno::Errno> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.attributes
            .push(LinkAttribute::NetNsFd(netns.as_raw_fd()));
        msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
        self.request(RouteNetlinkMessage::SetLink(msg), NLM_F_ACK)
            .map(drop)
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

/// Moves the spec's devices from the runtime's network namespace into
/// process `pid`'s. A failure names the device; the ones already moved are
/// moved back.
pub fn move_in(spec: &Spec, pid: i32) -> Result<()> {
    let devs = devices(spec);
    if devs.is_empty() {
        return Ok(());
    }
    let netns = open_netns(&format!("/proc/{pid}/ns/net"))?;
    let mut nl = Rtnl::open()?;
    for (i, (host, inside)) in devs.iter().enumerate() {
        let r = nl
            .index_of(host)
            .and_then(|index| nl.move_link(index, &netns, inside));
        if let Err(e) = r {
            let _ = move_out_of(&netns, &devs[..i]);
            return Err(spec_err(
                format!("linux.netDevices.{host}"),
                format!("move {host} into the container as {inside}: {e}"),
            ));
        }
    }
    Ok(())
}

/// Moves the spec's devices back from process `pid`'s network namespace
/// (best effort: a namespace gone took its virtual devices with it and gave
/// the physical ones back already).
pub fn move_out(spec: &Spec, pid: i32) -> Result<()> {
    let devs = devices(spec);
    if devs.is_empty() {
        return Ok(());
    }
    let netns = open_netns(&format!("/proc/{pid}/ns/net"))?;
    move_out_of(&netns, &devs)
}

fn move_out_of(netns: &OwnedFd, devs: &[(String, String)]) -> Result<()> {
    let host = open_netns("/proc/self/ns/net")?;
    // A socket made inside the container's namespace stays bound to it.
    nix::sched::setns(netns, nix::sched::CloneFlags::CLONE_NEWNET)
        .context(|| "enter the container's network namespace".to_owned())?;
    let nl = Rtnl::open();
    nix::sched::setns(&host, nix::sched::CloneFlags::CLONE_NEWNET)
        .context(|| "return to the host's network namespace".to_owned())?;
    let mut nl = nl?;
    let mut first_err = None;
    for (host_name, inside) in devs {
        let r = nl
            .index_of(inside)
            .and_then(|index| nl.move_link(index, &host, host_name));
        if let Err(e) = r {
            first_err.get_or_insert_with(|| {
                RuntimeError::Other(format!(
                    "move {inside} back to the host as {host_name}: {e}"
                ))
            });
        }
    }
    first_err.map_or(Ok(()), Err)
}
