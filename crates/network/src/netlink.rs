//! rtnetlink requests over a plain blocking socket: the handful of link,
//! address and route operations berth needs. The messages come from
//! `netlink-packet-route` (no hand-packed structs); the request/ack loop is
//! synchronous because each operation is one round trip and berth's
//! network setup runs in short-lived single-threaded commands.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage,
};
use netlink_packet_route::link::{
    InfoData, InfoIpVlan, InfoKind, InfoMacVlan, InfoVeth, InfoVlan, IpVlanFlags, IpVlanMode,
    LinkAttribute, LinkFlags, LinkInfo, LinkMessage, MacVlanMode,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteMetric, RouteProtocol,
    RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use crate::{Error, Result};

/// One NETLINK_ROUTE socket, bound to the network namespace it was made in.
pub struct Netlink {
    socket: Socket,
    seq: u32,
}

/// What a link dump tells about one interface.
#[derive(Debug, Clone)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub kind: Option<String>,
    pub up: bool,
    /// Its hardware address, when it has an Ethernet one.
    pub mac: Option<[u8; 6]>,
}

fn nl_err(what: &str, e: std::io::Error) -> Error {
    Error::Netlink(format!("{what}: {e}"))
}

impl Netlink {
    /// A socket in the calling thread's network namespace.
    pub fn open() -> Result<Netlink> {
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(|e| nl_err("netlink socket", e))?;
        socket
            .bind_auto()
            .map_err(|e| nl_err("bind netlink socket", e))?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(|e| nl_err("connect netlink socket", e))?;
        // Errors carry the kernel's extended-ack text when it has one.
        let _ = socket.set_ext_ack(true);
        Ok(Netlink { socket, seq: 1 })
    }

    /// Sends one request and reads replies until its ack (or the end of a
    /// dump), returning the inner messages received.
    fn request(
        &mut self,
        what: &str,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>> {
        let _t = berth_trace::span("network", "rtnetlink").detail(|| what.to_owned());
        let mut req = NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::from(msg));
        req.header.flags = NLM_F_REQUEST | flags;
        self.seq = self.seq.wrapping_add(1);
        req.header.sequence_number = self.seq;
        req.finalize();
        let mut buf = vec![0u8; req.header.length as usize];
        req.serialize(&mut buf);
        self.socket
            .send(&buf, 0)
            .map_err(|e| nl_err(&format!("{what}: send"), e))?;
        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        let mut out = Vec::new();
        loop {
            let (data, _) = self
                .socket
                .recv_from_full()
                .map_err(|e| nl_err(&format!("{what}: receive"), e))?;
            let mut off = 0;
            while off < data.len() {
                let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[off..])
                    .map_err(|e| Error::Netlink(format!("{what}: bad reply: {e}")))?;
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
                            None => Ok(out),
                            Some(code) => Err(Error::Kernel {
                                what: what.to_owned(),
                                errno: -code.get(),
                            }),
                        };
                    }
                    NetlinkPayload::Done(_) => return Ok(out),
                    NetlinkPayload::InnerMessage(m) => {
                        out.push(m);
                        if !dump && flags & NLM_F_ACK == 0 {
                            return Ok(out);
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    pub fn links(&mut self) -> Result<Vec<Link>> {
        let msgs = self.request(
            "list links",
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            NLM_F_DUMP,
        )?;
        Ok(msgs
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(link_of(&l)),
                _ => None,
            })
            .collect())
    }

    pub fn link_by_name(&mut self, name: &str) -> Result<Option<Link>> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
        match self.request(
            &format!("find link {name}"),
            RouteNetlinkMessage::GetLink(msg),
            0,
        ) {
            Ok(msgs) => Ok(msgs.iter().find_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(link_of(l)),
                _ => None,
            })),
            Err(Error::Kernel { errno, .. }) if errno == libc::ENODEV => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates a bridge; `Error::Kernel` with EEXIST when the name is taken.
    pub fn create_bridge(&mut self, name: &str, mtu: u32) -> Result<()> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
        msg.attributes.push(LinkAttribute::Mtu(mtu));
        msg.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::Bridge,
            )]));
        self.request(
            &format!("create bridge {name}"),
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        )?;
        Ok(())
    }

    /// Creates a veth pair: `host_name` here, attached to `master` and up;
    /// the peer named `peer_name` directly inside the namespace `netns`
    /// (so it never appears on the host and its name cannot collide).
    pub fn create_veth(
        &mut self,
        host_name: &str,
        peer_name: &str,
        netns: &impl AsRawFd,
        master: u32,
        peer_mac: Option<[u8; 6]>,
        mtu: u32,
    ) -> Result<()> {
        let mut peer = LinkMessage::default();
        peer.attributes
            .push(LinkAttribute::IfName(peer_name.to_owned()));
        peer.attributes.push(LinkAttribute::Mtu(mtu));
        peer.attributes
            .push(LinkAttribute::NetNsFd(netns.as_raw_fd()));
        if let Some(mac) = peer_mac {
            peer.attributes.push(LinkAttribute::Address(mac.to_vec()));
        }
        let mut msg = LinkMessage::default();
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        msg.attributes
            .push(LinkAttribute::IfName(host_name.to_owned()));
        msg.attributes.push(LinkAttribute::Mtu(mtu));
        msg.attributes.push(LinkAttribute::Controller(master));
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
        ]));
        self.request(
            &format!("create veth {host_name}"),
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        )?;
        Ok(())
    }

    /// Creates a sub-interface of the link `parent` (an index in this
    /// namespace) of the given kind, born inside the namespace `netns` as
    /// `name` (so no temporary name on the host, nothing to rename), with
    /// `mac` when given and `mtu` when given (else the parent's).
    pub fn create_sub_interface(
        &mut self,
        kind: &SubInterface,
        name: &str,
        parent: u32,
        netns: &impl AsRawFd,
        mac: Option<[u8; 6]>,
        mtu: Option<u32>,
    ) -> Result<()> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
        msg.attributes.push(LinkAttribute::Link(parent));
        msg.attributes
            .push(LinkAttribute::NetNsFd(netns.as_raw_fd()));
        if let Some(m) = mtu {
            msg.attributes.push(LinkAttribute::Mtu(m));
        }
        if let Some(mac) = mac {
            msg.attributes.push(LinkAttribute::Address(mac.to_vec()));
        }
        msg.attributes.push(LinkAttribute::LinkInfo(kind.info()));
        self.request(
            &format!("create {} {name}", kind.name()),
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        )?;
        Ok(())
    }

    /// Creates the 802.1q link `name` with VLAN `id` on `parent` here, up.
    pub fn create_vlan(&mut self, name: &str, parent: u32, id: u16) -> Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
        msg.attributes.push(LinkAttribute::Link(parent));
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Vlan),
            LinkInfo::Data(InfoData::Vlan(vec![InfoVlan::Id(id)])),
        ]));
        self.request(
            &format!("create vlan {name}"),
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        )?;
        Ok(())
    }

    /// Creates a dummy link `name` here, up (Docker's parent of a macvlan
    /// or ipvlan network given none).
    pub fn create_dummy(&mut self, name: &str) -> Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
        msg.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::Dummy,
            )]));
        self.request(
            &format!("create dummy {name}"),
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        )?;
        Ok(())
    }

    pub fn set_up(&mut self, index: u32) -> Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        self.request(
            &format!("set link {index} up"),
            RouteNetlinkMessage::SetLink(msg),
            NLM_F_ACK,
        )?;
        Ok(())
    }

    pub fn delete_link(&mut self, index: u32) -> Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        self.request(
            &format!("delete link {index}"),
            RouteNetlinkMessage::DelLink(msg),
            NLM_F_ACK,
        )?;
        Ok(())
    }

    /// Deletes the link called `name` if there is one.
    pub fn delete_link_by_name(&mut self, name: &str) -> Result<bool> {
        match self.link_by_name(name)? {
            Some(l) => match self.delete_link(l.index) {
                Ok(()) => Ok(true),
                Err(Error::Kernel { errno, .. }) if errno == libc::ENODEV => Ok(false),
                Err(e) => Err(e),
            },
            None => Ok(false),
        }
    }

    pub fn add_address(&mut self, index: u32, addr: Ipv4Addr, prefix: u8) -> Result<()> {
        let mut msg = AddressMessage::default();
        msg.header.family = AddressFamily::Inet;
        msg.header.prefix_len = prefix;
        msg.header.index = index;
        msg.attributes
            .push(AddressAttribute::Local(std::net::IpAddr::V4(addr)));
        msg.attributes
            .push(AddressAttribute::Address(std::net::IpAddr::V4(addr)));
        if prefix < 31 {
            let host_bits = 32 - u32::from(prefix);
            let bcast = u32::from(addr) | ((1u32 << host_bits) - 1);
            msg.attributes
                .push(AddressAttribute::Broadcast(Ipv4Addr::from(bcast)));
        }
        self.request(
            &format!("add address {addr}/{prefix}"),
            RouteNetlinkMessage::NewAddress(msg),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        )?;
        Ok(())
    }

    /// An IPv6 address, usable at once: no duplicate address detection
    /// (the addresses come from berth's IPAM, and a tentative address
    /// could not be bound or answer for a second or two).
    pub fn add_address6(&mut self, index: u32, addr: Ipv6Addr, prefix: u8) -> Result<()> {
        let mut msg = AddressMessage::default();
        msg.header.family = AddressFamily::Inet6;
        msg.header.prefix_len = prefix;
        msg.header.index = index;
        msg.header.flags = AddressHeaderFlags::Nodad;
        msg.attributes
            .push(AddressAttribute::Local(std::net::IpAddr::V6(addr)));
        msg.attributes
            .push(AddressAttribute::Address(std::net::IpAddr::V6(addr)));
        msg.attributes
            .push(AddressAttribute::Flags(AddressFlags::Nodad));
        self.request(
            &format!("add address {addr}/{prefix}"),
            RouteNetlinkMessage::NewAddress(msg),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        )?;
        Ok(())
    }

    /// Every IPv6 address on this namespace's links, with its prefix.
    pub fn addresses6(&mut self) -> Result<Vec<(Ipv6Addr, u8)>> {
        Ok(self
            .addresses_of(AddressFamily::Inet6)?
            .into_iter()
            .filter_map(|(ip, p)| match ip {
                std::net::IpAddr::V6(ip) => Some((ip, p)),
                std::net::IpAddr::V4(_) => None,
            })
            .collect())
    }

    /// Every address of `family` on this namespace's links, with its prefix.
    fn addresses_of(&mut self, family: AddressFamily) -> Result<Vec<(std::net::IpAddr, u8)>> {
        let mut q = AddressMessage::default();
        q.header.family = family;
        let msgs = self.request(
            "list addresses",
            RouteNetlinkMessage::GetAddress(q),
            NLM_F_DUMP,
        )?;
        Ok(msgs
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewAddress(a) => a.attributes.iter().find_map(|at| match at {
                    AddressAttribute::Address(ip) => Some((*ip, a.header.prefix_len)),
                    _ => None,
                }),
                _ => None,
            })
            .collect())
    }

    /// The IPv6 default route via `gateway` (see [`Netlink::add_default_route`]).
    pub fn add_default_route6(&mut self, gateway: Ipv6Addr, mtu: Option<u32>) -> Result<()> {
        self.add_default_route_via(std::net::IpAddr::V6(gateway), mtu)
    }

    /// The default route of `gateway`'s family via it (an MTU for it too).
    fn add_default_route_via(&mut self, gateway: std::net::IpAddr, mtu: Option<u32>) -> Result<()> {
        let mut msg = RouteMessage::default();
        let (family, via) = match gateway {
            std::net::IpAddr::V4(g) => (AddressFamily::Inet, RouteAddress::Inet(g)),
            std::net::IpAddr::V6(g) => (AddressFamily::Inet6, RouteAddress::Inet6(g)),
        };
        msg.header.address_family = family;
        msg.header.table = RouteHeader::RT_TABLE_MAIN;
        msg.header.protocol = RouteProtocol::Boot;
        msg.header.scope = RouteScope::Universe;
        msg.header.kind = RouteType::Unicast;
        msg.attributes.push(RouteAttribute::Gateway(via));
        if let Some(m) = mtu {
            msg.attributes
                .push(RouteAttribute::Metrics(vec![RouteMetric::Mtu(m)]));
        }
        self.request(
            &format!("add default route via {gateway}"),
            RouteNetlinkMessage::NewRoute(msg),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        )?;
        Ok(())
    }

    /// Every IPv4 address on this namespace's links, with its prefix.
    pub fn addresses(&mut self) -> Result<Vec<(Ipv4Addr, u8)>> {
        Ok(self
            .addresses_of(AddressFamily::Inet)?
            .into_iter()
            .filter_map(|(ip, p)| match ip {
                std::net::IpAddr::V4(ip) => Some((ip, p)),
                std::net::IpAddr::V6(_) => None,
            })
            .collect())
    }

    /// Whether the main table has an IPv6 default route.
    pub fn has_default_route6(&mut self) -> Result<bool> {
        let mut q = RouteMessage::default();
        q.header.address_family = AddressFamily::Inet6;
        let msgs = self.request("list routes", RouteNetlinkMessage::GetRoute(q), NLM_F_DUMP)?;
        Ok(msgs.into_iter().any(|m| match m {
            RouteNetlinkMessage::NewRoute(r) => {
                r.header.table == RouteHeader::RT_TABLE_MAIN
                    && r.header.destination_prefix_length == 0
                    && r.header.kind == RouteType::Unicast
            }
            _ => false,
        }))
    }

    /// Every IPv4 route destination of the main table, with its prefix
    /// (default routes, prefix 0, included).
    pub fn routes(&mut self) -> Result<Vec<(Ipv4Addr, u8)>> {
        let mut q = RouteMessage::default();
        q.header.address_family = AddressFamily::Inet;
        let msgs = self.request("list routes", RouteNetlinkMessage::GetRoute(q), NLM_F_DUMP)?;
        Ok(msgs
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewRoute(r) => {
                    if r.header.table != RouteHeader::RT_TABLE_MAIN {
                        return None;
                    }
                    let dst = r
                        .attributes
                        .iter()
                        .find_map(|a| match a {
                            RouteAttribute::Destination(RouteAddress::Inet(ip)) => Some(*ip),
                            _ => None,
                        })
                        .unwrap_or(Ipv4Addr::UNSPECIFIED);
                    Some((dst, r.header.destination_prefix_length))
                }
                _ => None,
            })
            .collect())
    }

    /// A default route through the link `index` itself, no gateway (an
    /// ipvlan in l3 mode: the parent routes).
    pub fn add_default_route_dev(&mut self, index: u32) -> Result<()> {
        self.add_default_route_dev_of(AddressFamily::Inet, index)
    }

    /// The IPv6 default route through link `index` itself (on-link).
    pub fn add_default_route6_dev(&mut self, index: u32) -> Result<()> {
        self.add_default_route_dev_of(AddressFamily::Inet6, index)
    }

    fn add_default_route_dev_of(&mut self, family: AddressFamily, index: u32) -> Result<()> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = family;
        msg.header.table = RouteHeader::RT_TABLE_MAIN;
        msg.header.protocol = RouteProtocol::Boot;
        msg.header.scope = RouteScope::Link;
        msg.header.kind = RouteType::Unicast;
        msg.attributes.push(RouteAttribute::Oif(index));
        self.request(
            &format!("add default route dev {index}"),
            RouteNetlinkMessage::NewRoute(msg),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        )?;
        Ok(())
    }

    /// A route to `dst`/`prefix` through the link `index` (on-link).
    pub fn add_route_dev(&mut self, dst: Ipv4Addr, prefix: u8, index: u32) -> Result<()> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = AddressFamily::Inet;
        msg.header.table = RouteHeader::RT_TABLE_MAIN;
        msg.header.protocol = RouteProtocol::Boot;
        msg.header.scope = RouteScope::Link;
        msg.header.kind = RouteType::Unicast;
        msg.header.destination_prefix_length = prefix;
        msg.attributes
            .push(RouteAttribute::Destination(RouteAddress::Inet(dst)));
        msg.attributes.push(RouteAttribute::Oif(index));
        self.request(
            &format!("add route {dst}/{prefix} dev {index}"),
            RouteNetlinkMessage::NewRoute(msg),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        )?;
        Ok(())
    }

    /// The default route via `gateway`, with `mtu` as its path MTU when
    /// given (smaller than the link's: see `NetworkRecord::route_mtu`).
    pub fn add_default_route(&mut self, gateway: Ipv4Addr, mtu: Option<u32>) -> Result<()> {
        self.add_default_route_via(std::net::IpAddr::V4(gateway), mtu)
    }
}

/// A macvlan or ipvlan sub-interface and its mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubInterface {
    Macvlan(MacvlanMode),
    Ipvlan(IpvlanMode, IpvlanFlag),
}

/// `macvlan_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MacvlanMode {
    #[default]
    Bridge,
    Private,
    Vepa,
    Passthru,
}

/// `ipvlan_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IpvlanMode {
    #[default]
    L2,
    L3,
    L3s,
}

/// `ipvlan_flag`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IpvlanFlag {
    #[default]
    Bridge,
    Private,
    Vepa,
}

impl SubInterface {
    fn name(&self) -> &'static str {
        match self {
            SubInterface::Macvlan(_) => "macvlan",
            SubInterface::Ipvlan(..) => "ipvlan",
        }
    }

    fn info(&self) -> Vec<LinkInfo> {
        match self {
            SubInterface::Macvlan(m) => vec![
                LinkInfo::Kind(InfoKind::MacVlan),
                LinkInfo::Data(InfoData::MacVlan(vec![InfoMacVlan::Mode(match m {
                    MacvlanMode::Bridge => MacVlanMode::Bridge,
                    MacvlanMode::Private => MacVlanMode::Private,
                    MacvlanMode::Vepa => MacVlanMode::Vepa,
                    MacvlanMode::Passthru => MacVlanMode::Passthrough,
                })])),
            ],
            SubInterface::Ipvlan(m, f) => vec![
                LinkInfo::Kind(InfoKind::IpVlan),
                LinkInfo::Data(InfoData::IpVlan(vec![
                    InfoIpVlan::Mode(match m {
                        IpvlanMode::L2 => IpVlanMode::L2,
                        IpvlanMode::L3 => IpVlanMode::L3,
                        IpvlanMode::L3s => IpVlanMode::L3S,
                    }),
                    InfoIpVlan::Flags(match f {
                        IpvlanFlag::Bridge => IpVlanFlags::empty(),
                        IpvlanFlag::Private => IpVlanFlags::Private,
                        IpvlanFlag::Vepa => IpVlanFlags::Vepa,
                    }),
                ])),
            ],
        }
    }
}

fn link_of(l: &LinkMessage) -> Link {
    let mut name = String::new();
    let mut kind = None;
    let mut mac = None;
    for a in &l.attributes {
        match a {
            LinkAttribute::IfName(n) => name = n.clone(),
            LinkAttribute::Address(a) => mac = <[u8; 6]>::try_from(a.as_slice()).ok(),
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    if let LinkInfo::Kind(k) = i {
                        kind = Some(k.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    Link {
        index: l.header.index,
        name,
        kind,
        up: l.header.flags.contains(LinkFlags::Up),
        mac,
    }
}
