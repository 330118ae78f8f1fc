//! Networks, endpoints (address leases) and published ports in the root's
//! SQLite database (`berth.db`, beside images and containers). Allocation
//! happens inside `BEGIN IMMEDIATE` transactions, so concurrent `berth`
//! processes never hand out one address or host port twice.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::sync::MutexGuard;

use berth_db::SharedConnection;

use ipnet::{Ipv4Net, Ipv6Net};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::ports::{PortBinding, Proto};
use crate::{Error, Result};

fn db_err(op: &str) -> impl Fn(rusqlite::Error) -> Error + '_ {
    move |e| Error::Db(format!("{op}: {e}"))
}

/// The network tables' component in `schema_version`.
const COMPONENT: &str = "network";

/// Version 1: the tables as first released; 2: networks gain `mtu`; 3:
/// and `masquerade`; 4: and `icc`; 5: and `driver_state` (driver options,
/// auxiliary addresses, the parent link berth made: [`DriverState`] as JSON);
/// 6: networks gain `ipv6` ([`Ipv6Config`] as JSON, NULL without IPv6) and
/// endpoints `ip6` (their IPv6 address, NULL without).
const MIGRATIONS: &[&str] = &[
    "
CREATE TABLE IF NOT EXISTS networks (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    driver TEXT NOT NULL,
    subnet TEXT NOT NULL,
    gateway TEXT NOT NULL,
    ip_range TEXT,
    bridge TEXT NOT NULL UNIQUE,
    internal INTEGER NOT NULL,
    labels TEXT NOT NULL,
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS endpoints (
    container_id TEXT NOT NULL,
    network_id TEXT NOT NULL REFERENCES networks(id),
    ip TEXT NOT NULL,
    mac TEXT NOT NULL,
    aliases TEXT NOT NULL,
    idx INTEGER NOT NULL,
    PRIMARY KEY (container_id, network_id),
    UNIQUE (network_id, ip)
);
CREATE TABLE IF NOT EXISTS ports (
    container_id TEXT NOT NULL,
    proto TEXT NOT NULL,
    host_ip TEXT NOT NULL,
    host_port INTEGER NOT NULL,
    container_port INTEGER NOT NULL,
    UNIQUE (proto, host_ip, host_port)
);
",
    "ALTER TABLE networks ADD COLUMN mtu INTEGER",
    "ALTER TABLE networks ADD COLUMN masquerade INTEGER NOT NULL DEFAULT 1",
    "ALTER TABLE networks ADD COLUMN icc INTEGER NOT NULL DEFAULT 1",
    "ALTER TABLE networks ADD COLUMN driver_state TEXT NOT NULL DEFAULT '{}'",
    "ALTER TABLE networks ADD COLUMN ipv6 TEXT;
     ALTER TABLE endpoints ADD COLUMN ip6 TEXT;
     CREATE UNIQUE INDEX IF NOT EXISTS endpoints_ip6 ON endpoints (network_id, ip6);",
];

/// The IPv6 half of a dual-stack network (`network create --ipv6 --subnet
/// fd00:…/64`, or the default bridge with daemon.json's `fixed-cidr-v6`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Ipv6Config {
    pub subnet: Ipv6Net,
    /// The bridge's IPv6 address, the containers' IPv6 default route.
    pub gateway: Ipv6Addr,
    /// `--ip-range` for IPv6: where containers' addresses come from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<Ipv6Net>,
    /// `--gateway` was given: Docker's inspect then shows it (as for IPv4
    /// subnets the user gave).
    #[serde(default)]
    pub gateway_given: bool,
    /// Containers' addresses are the subnet's prefix and their MAC (the
    /// default bridge's, as Docker's `fixed-cidr-v6` of /80 or shorter).
    #[serde(default)]
    pub from_mac: bool,
}

/// What a network keeps beyond the columns of version 3, stored as JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct DriverState {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    options: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    aux_addresses: BTreeMap<String, Ipv4Addr>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    gateway_implicit: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    created_parent: Option<String>,
}

/// The version of network tables made before versions were recorded:
/// none (0), the first release (1: re-running its `IF NOT EXISTS` is
/// harmless), or with `mtu` already (2).
fn unversioned(conn: &Connection) -> rusqlite::Result<usize> {
    Ok(if berth_db::has_column(conn, "networks", "mtu")? {
        2
    } else {
        0
    })
}

/// A network as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkRecord {
    pub id: String,
    pub name: String,
    pub driver: String,
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
    pub ip_range: Option<Ipv4Net>,
    pub bridge: String,
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
    pub created: String,
    /// The MTU the user set (Docker's `com.docker.network.driver.mtu`);
    /// `None`: see [`NetworkRecord::link_mtu`] and [`NetworkRecord::route_mtu`].
    pub mtu: Option<u32>,
    /// Outgoing traffic leaves with the host's address (Docker's
    /// `com.docker.network.bridge.enable_ip_masquerade`, true unless asked).
    pub masquerade: bool,
    /// Containers of the network reach each other (Docker's
    /// `com.docker.network.bridge.enable_icc`, true unless asked).
    pub icc: bool,
    /// The driver options given at create (Docker's `Options`) of a
    /// macvlan or ipvlan network: `parent`, `macvlan_mode`, …
    pub options: BTreeMap<String, String>,
    /// `--aux-address NAME=IP`: addresses never leased to containers.
    pub aux_addresses: BTreeMap<String, Ipv4Addr>,
    /// The gateway was not given: Docker's macvlan/ipvlan networks then
    /// show none in their IPAM config (the bridge's always shows it).
    pub gateway_implicit: bool,
    /// The parent link berth made for a macvlan/ipvlan network (an 802.1q
    /// `eth0.10`, or a dummy for a network given no parent), removed with
    /// the network.
    pub created_parent: Option<String>,
    /// The network's IPv6 subnet and gateway (`EnableIPv6`); `None`: IPv4
    /// only.
    pub ipv6: Option<Ipv6Config>,
}

/// The MTU of the bridge and veths of a network without an MTU of its
/// own: traffic between containers and the host never leaves the machine,
/// so it may use segments as large as loopback's. At 1500 a TCP stream
/// between two containers reached only ~0.85 of loopback's throughput;
/// at this size it matches it. 65520 (not loopback's 65536) leaves room
/// for the Ethernet header within the 64 KiB an IP packet may carry.
pub const LOCAL_LINK_MTU: u32 = 65520;

/// The path MTU of a container's default route on a network without an
/// MTU of its own: what leaves the host meets Ethernet's 1500 bytes, as
/// it does under Docker (whose links are 1500).
pub const DEFAULT_ROUTE_MTU: u32 = 1500;

impl NetworkRecord {
    /// The MTU of the bridge and both ends of each veth: the user's, or
    /// [`LOCAL_LINK_MTU`].
    pub fn link_mtu(&self) -> u32 {
        self.mtu.unwrap_or(LOCAL_LINK_MTU)
    }

    /// The MTU metric of a container's default route through this network:
    /// `None` when the user set an MTU (the link's then rules, as in
    /// Docker), else [`DEFAULT_ROUTE_MTU`], so that only traffic to the
    /// subnet (other containers, the gateway) uses the large local links.
    pub fn route_mtu(&self) -> Option<u32> {
        match self.mtu {
            Some(_) => None,
            None => Some(DEFAULT_ROUTE_MTU),
        }
    }
}

/// A container's attachment to a network: its address lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub container_id: String,
    pub network_id: String,
    pub ip: Ipv4Addr,
    pub mac: [u8; 6],
    pub aliases: Vec<String>,
    /// Order of attachment (the first network is eth0).
    pub index: u32,
    /// Its IPv6 address on a network with IPv6.
    pub ip6: Option<Ipv6Addr>,
}

/// Of a container's endpoints, the one its published ports go to (DNAT
/// rules, [::1] forwards): as Docker's gateway endpoint, which prefers a
/// dual-stack network, the first (by attachment) with IPv6, else the first.
pub fn publishing_endpoint<'a>(
    eps: impl IntoIterator<Item = &'a Endpoint>,
) -> Option<&'a Endpoint> {
    eps.into_iter().min_by_key(|e| (e.ip6.is_none(), e.index))
}

/// Docker's MAC scheme: 02:42 and the IPv4 address.
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

pub fn mac_text(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// `--mac-address`: six hex bytes separated by `:` or `-`, a unicast
/// address (the kernel refuses a multicast one for an interface) and not
/// all zeros.
pub fn parse_unicast_mac(s: &str) -> Result<[u8; 6]> {
    let bad = || Error::Invalid(format!("{s} is not a valid mac address"));
    let parts: Vec<&str> = s.split([':', '-']).collect();
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut out = [0u8; 6];
    for (o, p) in out.iter_mut().zip(&parts) {
        if p.len() != 2 {
            return Err(bad());
        }
        *o = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    if out[0] & 1 == 1 || out == [0; 6] {
        return Err(bad());
    }
    Ok(out)
}

/// Chooses a host port for a binding without one: given the protocol, the
/// host address and a test for ports already held by containers.
pub type PortPicker<'a> =
    dyn FnMut(Proto, Option<IpAddr>, &dyn Fn(u16) -> bool) -> Result<u16> + 'a;

pub struct NetworkDb {
    conn: SharedConnection,
}

/// The addresses a container asks for on a network (`--ip`, `--ip6`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Want {
    pub ip: Option<Ipv4Addr>,
    pub ip6: Option<Ipv6Addr>,
}

/// An IPv6 address of `v6` for a container: `want` when free and in the
/// subnet, else the lowest free one of the range (of the subnet: `::2`
/// first, as Docker's IPAM hands them out), never the subnet-router
/// anycast address (`::`) or the gateway.
fn lease6(
    v6: &Ipv6Config,
    want: Option<Ipv6Addr>,
    used: &std::collections::BTreeSet<Ipv6Addr>,
    network: &str,
) -> Result<Ipv6Addr> {
    let reserved = |a: Ipv6Addr| a == v6.gateway || a == v6.subnet.network() || used.contains(&a);
    match want {
        Some(a) => {
            if !v6.subnet.contains(&a) {
                return Err(Error::Invalid(format!(
                    "no configured subnet contains IP address {a}"
                )));
            }
            if reserved(a) {
                return Err(Error::Conflict(format!("Address already in use: {a}")));
            }
            Ok(a)
        }
        None => {
            let range = v6.ip_range.unwrap_or(v6.subnet);
            let (first, last) = (u128::from(range.network()), u128::from(range.broadcast()));
            // At most one address per lease and the two reserved ones are
            // passed over before a free one.
            (first..=last)
                .take(used.len() + 3)
                .map(Ipv6Addr::from)
                .find(|a| v6.subnet.contains(a) && !reserved(*a))
                .ok_or_else(|| {
                    Error::Conflict(format!("no available IPv6 addresses on network {network}"))
                })
        }
    }
}

fn row_network(r: &rusqlite::Row<'_>) -> rusqlite::Result<NetworkRecord> {
    let subnet: String = r.get(3)?;
    let gateway: String = r.get(4)?;
    let ip_range: Option<String> = r.get(5)?;
    let labels: String = r.get(8)?;
    let state: String = r.get(13)?;
    let ipv6: Option<String> = r.get(14)?;
    let state: DriverState = serde_json::from_str(&state).unwrap_or_default();
    let bad = |c: usize, s: &str| {
        rusqlite::Error::FromSqlConversionFailure(
            c,
            rusqlite::types::Type::Text,
            format!("bad value {s:?}").into(),
        )
    };
    Ok(NetworkRecord {
        id: r.get(0)?,
        name: r.get(1)?,
        driver: r.get(2)?,
        subnet: subnet.parse().map_err(|_| bad(3, &subnet))?,
        gateway: gateway.parse().map_err(|_| bad(4, &gateway))?,
        ip_range: match ip_range {
            Some(s) => Some(s.parse().map_err(|_| bad(5, &s))?),
            None => None,
        },
        bridge: r.get(6)?,
        internal: r.get::<_, i64>(7)? != 0,
        labels: serde_json::from_str(&labels).unwrap_or_default(),
        created: r.get(9)?,
        mtu: r.get(10)?,
        masquerade: r.get::<_, i64>(11)? != 0,
        icc: r.get::<_, i64>(12)? != 0,
        options: state.options,
        aux_addresses: state.aux_addresses,
        gateway_implicit: state.gateway_implicit,
        created_parent: state.created_parent,
        ipv6: match ipv6 {
            Some(s) => Some(serde_json::from_str(&s).map_err(|_| bad(14, &s))?),
            None => None,
        },
    })
}

const NET_COLS: &str =
    "id, name, driver, subnet, gateway, ip_range, bridge, internal, labels, created, mtu, masquerade, icc, driver_state, ipv6";

fn row_endpoint(r: &rusqlite::Row<'_>) -> rusqlite::Result<Endpoint> {
    let ip: String = r.get(2)?;
    let mac: String = r.get(3)?;
    let aliases: String = r.get(4)?;
    let ip6: Option<String> = r.get(6)?;
    Ok(Endpoint {
        container_id: r.get(0)?,
        network_id: r.get(1)?,
        ip: ip.parse().unwrap_or(Ipv4Addr::UNSPECIFIED),
        // (written by `mac_text`: always six bytes, unicast)
        mac: parse_unicast_mac(&mac).unwrap_or_default(),
        aliases: serde_json::from_str(&aliases).unwrap_or_default(),
        index: r.get(5)?,
        ip6: ip6.and_then(|s| s.parse().ok()),
    })
}

const EP_COLS: &str = "container_id, network_id, ip, mac, aliases, idx, ip6";

impl NetworkDb {
    /// The network tables on the process's shared connection to `berth.db`
    /// (brought up to date first).
    pub fn on(shared: SharedConnection) -> Result<NetworkDb> {
        berth_db::migrate_adopting(
            &mut berth_db::lock(&shared),
            COMPONENT,
            MIGRATIONS,
            unversioned,
        )
        .map_err(|e| Error::Db(e.to_string()))?;
        Ok(NetworkDb { conn: shared })
    }

    /// A connection of its own to `root`'s `berth.db`.
    pub fn open(root: &Path) -> Result<NetworkDb> {
        NetworkDb::on(berth_db::open_shared(root).map_err(|e| Error::Db(e.to_string()))?)
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        berth_db::lock(&self.conn)
    }

    pub fn networks(&self) -> Result<Vec<NetworkRecord>> {
        let conn = self.conn();
        let mut st = conn
            .prepare_cached(&format!(
                "SELECT {NET_COLS} FROM networks ORDER BY created, name"
            ))
            .map_err(db_err("list networks"))?;
        let rows = st
            .query_map([], row_network)
            .map_err(db_err("list networks"))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(db_err("list networks"))
    }

    pub fn network_by_name(&self, name: &str) -> Result<Option<NetworkRecord>> {
        self.conn()
            .query_row(
                &format!("SELECT {NET_COLS} FROM networks WHERE name = ?1"),
                [name],
                row_network,
            )
            .optional()
            .map_err(db_err("find network"))
    }

    /// A network by name, full ID or unambiguous ID prefix.
    pub fn resolve(&self, key: &str) -> Result<NetworkRecord> {
        if let Some(n) = self.network_by_name(key)? {
            return Ok(n);
        }
        let mut matches: Vec<_> = self
            .networks()?
            .into_iter()
            .filter(|n| !key.is_empty() && n.id.starts_with(key))
            .collect();
        match matches.len() {
            0 => Err(Error::NotFound(format!("network {key} not found"))),
            1 => Ok(matches.remove(0)),
            n => Err(Error::Invalid(format!(
                "network {key} is ambiguous ({n} matches found based on ID prefix)"
            ))),
        }
    }

    /// Inserts a network; a taken name is `Conflict`.
    pub fn insert_network(&self, n: &NetworkRecord) -> Result<()> {
        let labels = serde_json::to_string(&n.labels).unwrap_or_else(|_| "{}".into());
        let state = DriverState {
            options: n.options.clone(),
            aux_addresses: n.aux_addresses.clone(),
            gateway_implicit: n.gateway_implicit,
            created_parent: n.created_parent.clone(),
        };
        let state = serde_json::to_string(&state).unwrap_or_else(|_| "{}".into());
        self.conn()
            .execute(
                &format!(
                    "INSERT INTO networks ({NET_COLS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15)"
                ),
                params![
                    n.id,
                    n.name,
                    n.driver,
                    n.subnet.to_string(),
                    n.gateway.to_string(),
                    n.ip_range.map(|r| r.to_string()),
                    n.bridge,
                    n.internal as i64,
                    labels,
                    n.created,
                    n.mtu,
                    n.masquerade as i64,
                    n.icc as i64,
                    state,
                    n.ipv6.and_then(|v| serde_json::to_string(&v).ok())
                ],
            )
            .map_err(|e| match e {
                rusqlite::Error::SqliteFailure(f, _)
                    if f.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    Error::Conflict(format!("network with name {} already exists", n.name))
                }
                e => Error::Db(format!("insert network: {e}")),
            })?;
        Ok(())
    }

    /// A network's MTU changed (the default network follows daemon.json's
    /// `mtu`): containers started from now on get it.
    pub fn set_mtu(&self, id: &str, mtu: Option<u32>) -> Result<()> {
        self.conn()
            .execute(
                "UPDATE networks SET mtu = ?2 WHERE id = ?1",
                params![id, mtu],
            )
            .map_err(db_err("change the network's MTU"))?;
        Ok(())
    }

    pub fn delete_network(&self, id: &str) -> Result<()> {
        self.conn()
            .execute("DELETE FROM networks WHERE id = ?1", [id])
            .map_err(db_err("delete network"))?;
        Ok(())
    }

    pub fn endpoints_of_network(&self, network_id: &str) -> Result<Vec<Endpoint>> {
        let conn = self.conn();
        let mut st = conn
            .prepare_cached(&format!(
                "SELECT {EP_COLS} FROM endpoints WHERE network_id = ?1 ORDER BY ip"
            ))
            .map_err(db_err("list endpoints"))?;
        let rows = st
            .query_map([network_id], row_endpoint)
            .map_err(db_err("list endpoints"))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(db_err("list endpoints"))
    }

    pub fn endpoints_of_container(&self, container_id: &str) -> Result<Vec<Endpoint>> {
        let conn = self.conn();
        let mut st = conn
            .prepare_cached(&format!(
                "SELECT {EP_COLS} FROM endpoints WHERE container_id = ?1 ORDER BY idx"
            ))
            .map_err(db_err("list endpoints"))?;
        let rows = st
            .query_map([container_id], row_endpoint)
            .map_err(db_err("list endpoints"))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(db_err("list endpoints"))
    }

    /// The names of the networks a container is attached to, in the order
    /// of attachment.
    pub fn network_names_of(&self, container_id: &str) -> Result<Vec<String>> {
        let conn = self.conn();
        let mut st = conn
            .prepare_cached(
                "SELECT n.name FROM endpoints e JOIN networks n ON n.id = e.network_id \
                 WHERE e.container_id = ?1 ORDER BY e.idx",
            )
            .map_err(db_err("list a container's networks"))?;
        let rows = st
            .query_map([container_id], |r| r.get(0))
            .map_err(db_err("list a container's networks"))?;
        rows.collect::<rusqlite::Result<Vec<String>>>()
            .map_err(db_err("list a container's networks"))
    }

    pub fn all_endpoints(&self) -> Result<Vec<Endpoint>> {
        let conn = self.conn();
        let mut st = conn
            .prepare_cached(&format!("SELECT {EP_COLS} FROM endpoints"))
            .map_err(db_err("list endpoints"))?;
        let rows = st
            .query_map([], row_endpoint)
            .map_err(db_err("list endpoints"))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(db_err("list endpoints"))
    }

    /// Leases an address on `net` to a container: `want` if given (refused
    /// when taken or outside the subnet), else the lowest free one of the
    /// range. Atomic with respect to other processes.
    pub fn lease(
        &mut self,
        net: &NetworkRecord,
        container_id: &str,
        want: Option<Ipv4Addr>,
        mac: Option<[u8; 6]>,
        aliases: &[String],
    ) -> Result<Endpoint> {
        let want = Want {
            ip: want,
            ..Want::default()
        };
        self.lease_avoiding(net, container_id, want, mac, aliases, &[])
    }

    /// [`NetworkDb::lease`], never handing out the addresses of `avoid`
    /// (an auxiliary address such as daemon.json's `default-gateway`).
    pub fn lease_avoiding(
        &mut self,
        net: &NetworkRecord,
        container_id: &str,
        want: Want,
        mac: Option<[u8; 6]>,
        aliases: &[String],
        avoid: &[Ipv4Addr],
    ) -> Result<Endpoint> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_err("begin lease"))?;
        if want.ip6.is_some() && net.ipv6.is_none() {
            return Err(Error::Invalid(format!(
                "network {} has no IPv6 (it was created without --ipv6): no IPv6 address can be given on it",
                net.name
            )));
        }
        let used6: std::collections::BTreeSet<Ipv6Addr> = match net.ipv6 {
            None => Default::default(),
            Some(_) => {
                let mut st = tx
                    .prepare_cached(
                        "SELECT ip6 FROM endpoints WHERE network_id = ?1 AND ip6 IS NOT NULL",
                    )
                    .map_err(db_err("read leases"))?;
                let rows = st
                    .query_map([&net.id], |r| r.get::<_, String>(0))
                    .map_err(db_err("read leases"))?;
                rows.filter_map(|r| r.ok().and_then(|s| s.parse().ok()))
                    .collect()
            }
        };
        let used: std::collections::BTreeSet<Ipv4Addr> = {
            let mut st = tx
                .prepare_cached("SELECT ip FROM endpoints WHERE network_id = ?1")
                .map_err(db_err("read leases"))?;
            let rows = st
                .query_map([&net.id], |r| r.get::<_, String>(0))
                .map_err(db_err("read leases"))?;
            rows.filter_map(|r| r.ok().and_then(|s| s.parse().ok()))
                .collect()
        };
        // After the last one (a count would repeat an index after a
        // disconnect: two `ethN` of one name).
        let index: u32 = tx
            .query_row(
                "SELECT COALESCE(MAX(idx) + 1, 0) FROM endpoints WHERE container_id = ?1",
                [container_id],
                |r| r.get(0),
            )
            .map_err(db_err("count endpoints"))?;
        let reserved = |a: Ipv4Addr| {
            a == net.gateway
                || a == net.subnet.network()
                || a == net.subnet.broadcast()
                || avoid.contains(&a)
                || net.aux_addresses.values().any(|x| *x == a)
        };
        let ip = match want.ip {
            Some(a) => {
                if !net.subnet.contains(&a) {
                    return Err(Error::Invalid(format!(
                        "no configured subnet contains IP address {a}"
                    )));
                }
                if reserved(a) || used.contains(&a) {
                    return Err(Error::Conflict(format!("Address already in use: {a}")));
                }
                a
            }
            None => {
                // Every address of the range (its own network and
                // broadcast addresses too, as Docker's IPAM), but the
                // subnet's reserved ones.
                let range = net.ip_range.unwrap_or(net.subnet);
                (u32::from(range.network())..=u32::from(range.broadcast()))
                    .map(Ipv4Addr::from)
                    .find(|a| net.subnet.contains(a) && !reserved(*a) && !used.contains(a))
                    .ok_or_else(|| {
                        Error::Conflict(format!(
                            "no available IPv4 addresses on network {}",
                            net.name
                        ))
                    })?
            }
        };
        let mac = mac.unwrap_or_else(|| mac_for(ip));
        let ip6 = match net.ipv6 {
            None => None,
            Some(v6) if v6.from_mac && want.ip6.is_none() => {
                let m = mac.iter().fold(0u128, |a, b| (a << 8) | u128::from(*b));
                let a = Ipv6Addr::from(u128::from(v6.subnet.network()) | m);
                Some(lease6(&v6, Some(a), &used6, &net.name)?)
            }
            Some(v6) => Some(lease6(&v6, want.ip6, &used6, &net.name)?),
        };
        let ep = Endpoint {
            container_id: container_id.to_owned(),
            network_id: net.id.clone(),
            ip,
            mac,
            aliases: aliases.to_vec(),
            index,
            ip6,
        };
        tx.execute(
            &format!("INSERT INTO endpoints ({EP_COLS}) VALUES (?1,?2,?3,?4,?5,?6,?7)"),
            params![
                ep.container_id,
                ep.network_id,
                ep.ip.to_string(),
                mac_text(&ep.mac),
                serde_json::to_string(&ep.aliases).unwrap_or_else(|_| "[]".into()),
                ep.index,
                ep.ip6.map(|a| a.to_string())
            ],
        )
        .map_err(|e| match e {
            rusqlite::Error::SqliteFailure(f, _)
                if f.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Error::Conflict(format!(
                    "endpoint with name {container_id} already exists in network {}",
                    net.name
                ))
            }
            e => Error::Db(format!("insert lease: {e}")),
        })?;
        tx.commit().map_err(db_err("commit lease"))?;
        Ok(ep)
    }

    pub fn release(&self, container_id: &str, network_id: Option<&str>) -> Result<()> {
        match network_id {
            Some(n) => self.conn().execute(
                "DELETE FROM endpoints WHERE container_id = ?1 AND network_id = ?2",
                [container_id, n],
            ),
            None => self.conn().execute(
                "DELETE FROM endpoints WHERE container_id = ?1",
                [container_id],
            ),
        }
        .map_err(db_err("release lease"))?;
        Ok(())
    }

    pub fn release_network(&self, network_id: &str) -> Result<()> {
        self.conn()
            .execute("DELETE FROM endpoints WHERE network_id = ?1", [network_id])
            .map_err(db_err("release leases"))?;
        Ok(())
    }

    pub fn ports(&self) -> Result<Vec<(String, PortBinding)>> {
        let conn = self.conn();
        let mut st = conn
            .prepare_cached(
                "SELECT container_id, proto, host_ip, host_port, container_port FROM ports ORDER BY host_port",
            )
            .map_err(db_err("list ports"))?;
        let rows = st
            .query_map([], |r| {
                let proto: String = r.get(1)?;
                let host_ip: String = r.get(2)?;
                Ok((
                    r.get::<_, String>(0)?,
                    PortBinding {
                        proto: Proto::parse(&proto).unwrap_or(Proto::Tcp),
                        host_ip: host_ip
                            .parse()
                            .ok()
                            .filter(|a: &IpAddr| *a != IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
                        host_port: r.get(3)?,
                        container_port: r.get(4)?,
                    },
                ))
            })
            .map_err(db_err("list ports"))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(db_err("list ports"))
    }

    pub fn ports_of(&self, container_id: &str) -> Result<Vec<PortBinding>> {
        Ok(self
            .ports()?
            .into_iter()
            .filter(|(c, _)| c == container_id)
            .map(|(_, b)| b)
            .collect())
    }

    /// Records a container's port bindings, all or none: a host port that
    /// another container holds (on the same or an overlapping address) is
    /// Docker's "port is already allocated". `pick` chooses a host port for
    /// bindings without one, given the ports already taken.
    pub fn bind_ports(
        &mut self,
        container_id: &str,
        wanted: &[(Option<IpAddr>, Option<u16>, u16, Proto)],
        pick: &mut PortPicker<'_>,
    ) -> Result<Vec<PortBinding>> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_err("begin port bindings"))?;
        let mut taken: Vec<(Proto, Option<IpAddr>, u16)> = {
            let mut st = tx
                .prepare_cached("SELECT proto, host_ip, host_port FROM ports")
                .map_err(db_err("read ports"))?;
            let rows = st
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, u16>(2)?,
                    ))
                })
                .map_err(db_err("read ports"))?;
            rows.filter_map(|r| r.ok())
                .map(|(p, ip, port)| {
                    (
                        Proto::parse(&p).unwrap_or(Proto::Tcp),
                        ip.parse()
                            .ok()
                            .filter(|a: &IpAddr| *a != IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
                        port,
                    )
                })
                .collect()
        };
        // (`::` is every IPv6 address of the host)
        let overlap = |a: Option<IpAddr>, b: Option<IpAddr>| match (a, b) {
            (None, _) | (_, None) => true,
            (Some(IpAddr::V6(x)), Some(IpAddr::V6(y))) => {
                x == y || x.is_unspecified() || y.is_unspecified()
            }
            (x, y) => x == y,
        };
        let clashes = |taken: &[(Proto, Option<IpAddr>, u16)],
                       proto: Proto,
                       ip: Option<IpAddr>,
                       port: u16| {
            taken
                .iter()
                .any(|(p, i, n)| *p == proto && *n == port && overlap(*i, ip))
        };
        let mut out = Vec::new();
        for (ip, host_port, container_port, proto) in wanted {
            let port = match host_port {
                Some(p) => {
                    if clashes(&taken, *proto, *ip, *p) {
                        return Err(Error::Conflict(format!(
                            "Bind for {}:{p} failed: port is already allocated",
                            ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
                        )));
                    }
                    *p
                }
                None => {
                    let snapshot = taken.clone();
                    pick(*proto, *ip, &|p| clashes(&snapshot, *proto, *ip, p))?
                }
            };
            taken.push((*proto, *ip, port));
            let b = PortBinding {
                host_ip: *ip,
                host_port: port,
                container_port: *container_port,
                proto: *proto,
            };
            tx.execute(
                "INSERT INTO ports (container_id, proto, host_ip, host_port, container_port) VALUES (?1,?2,?3,?4,?5)",
                params![container_id, proto.as_str(), b.host_ip_text(), port, container_port],
            )
            .map_err(db_err("record port"))?;
            out.push(b);
        }
        tx.commit().map_err(db_err("commit port bindings"))?;
        Ok(out)
    }

    pub fn unbind_ports(&self, container_id: &str) -> Result<usize> {
        self.conn()
            .execute("DELETE FROM ports WHERE container_id = ?1", [container_id])
            .map_err(db_err("remove port bindings"))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Published ports go through the first network with IPv6 (Docker's
    /// gateway endpoint prefers a dual-stack one), else the first.
    #[test]
    fn the_publishing_endpoint_prefers_ipv6() {
        let ep = |index: u32, ip6: Option<&str>| Endpoint {
            container_id: "c".into(),
            network_id: format!("n{index}"),
            ip: Ipv4Addr::new(10, 0, 0, index as u8 + 2),
            mac: [0; 6],
            aliases: Vec::new(),
            index,
            ip6: ip6.map(|a| a.parse().unwrap()),
        };
        let four = [ep(0, None), ep(1, None)];
        assert_eq!(publishing_endpoint(&four).unwrap().index, 0);
        let dual = [
            ep(0, None),
            ep(1, None),
            ep(2, Some("fd00::2")),
            ep(3, Some("fd01::2")),
        ];
        assert_eq!(publishing_endpoint(&dual).unwrap().index, 2);
        assert!(publishing_endpoint(&[]).is_none());
    }

    /// A database made before networks had an MTU gains the column, and its
    /// networks read back with the kernel's default (`None`).
    #[test]
    fn an_older_database_gains_the_mtu_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berth.db");
        let old = Connection::open(&path).unwrap();
        old.execute_batch(
            "CREATE TABLE networks (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE,
             driver TEXT NOT NULL, subnet TEXT NOT NULL, gateway TEXT NOT NULL, ip_range TEXT,
             bridge TEXT NOT NULL UNIQUE, internal INTEGER NOT NULL, labels TEXT NOT NULL,
             created TEXT NOT NULL);
             INSERT INTO networks VALUES ('n1', 'old', 'bridge', '10.9.0.0/16', '10.9.0.1',
             NULL, 'br-n1', 0, '{}', 'then');",
        )
        .unwrap();
        drop(old);
        let db = NetworkDb::open(dir.path()).unwrap();
        let n = db.network_by_name("old").unwrap().unwrap();
        assert_eq!(n.mtu, None);
        assert!(n.masquerade, "older networks masquerade, as they did");
        assert!(n.icc, "older networks let containers talk, as they did");
        assert_eq!((n.link_mtu(), n.route_mtu()), (LOCAL_LINK_MTU, Some(1500)));
        assert_eq!(n.bridge, "br-n1");
        // Opening again finds the column there.
        drop(db);
        let db = NetworkDb::open(dir.path()).unwrap();
        assert_eq!(db.networks().unwrap().len(), 1);
    }

    /// Tables made with the column but before versions were recorded are
    /// taken as version 2 (no second ALTER); a fresh database is made whole.
    #[test]
    fn unversioned_tables_with_the_column_are_adopted() {
        let dir = tempfile::tempdir().unwrap();
        let old = Connection::open(dir.path().join("berth.db")).unwrap();
        old.execute_batch(&MIGRATIONS[0].replace(
            "created TEXT NOT NULL",
            "created TEXT NOT NULL, mtu INTEGER",
        ))
        .unwrap();
        old.execute_batch(
            "INSERT INTO networks VALUES ('n1', 'j', 'bridge', '10.9.0.0/16', '10.9.0.1',
             NULL, 'br-n1', 0, '{}', 'then', 9000);",
        )
        .unwrap();
        drop(old);
        let db = NetworkDb::open(dir.path()).unwrap();
        assert_eq!(db.network_by_name("j").unwrap().unwrap().mtu, Some(9000));
        let fresh = tempfile::tempdir().unwrap();
        let db = NetworkDb::open(fresh.path()).unwrap();
        assert!(db.networks().unwrap().is_empty());
        let v: i64 = db
            .conn()
            .query_row(
                "SELECT version FROM schema_version WHERE component = 'network'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(v, MIGRATIONS.len() as i64);
    }

    /// An MTU asked for rules links and route alike; none asked: large
    /// links, Docker's 1500 on the way out.
    #[test]
    fn link_and_route_mtu() {
        let mut n = NetworkRecord {
            id: "n".into(),
            name: "n".into(),
            driver: "bridge".into(),
            subnet: "10.9.0.0/16".parse().unwrap(),
            gateway: "10.9.0.1".parse().unwrap(),
            ip_range: None,
            bridge: "br-n".into(),
            internal: false,
            labels: BTreeMap::new(),
            created: String::new(),
            mtu: None,
            masquerade: true,
            icc: true,
            options: BTreeMap::new(),
            aux_addresses: BTreeMap::new(),
            gateway_implicit: false,
            created_parent: None,
            ipv6: None,
        };
        assert_eq!((n.link_mtu(), n.route_mtu()), (65520, Some(1500)));
        n.mtu = Some(1400);
        assert_eq!((n.link_mtu(), n.route_mtu()), (1400, None));
    }

    #[test]
    fn unicast_macs_only() {
        assert_eq!(
            parse_unicast_mac("02:42:ac:11:00:99").unwrap(),
            [0x02, 0x42, 0xac, 0x11, 0x00, 0x99]
        );
        assert!(parse_unicast_mac("02-42-AC-11-00-99").is_ok());
        for bad in [
            "01:00:5e:00:00:01",
            "00:00:00:00:00:00",
            "02:42:ac:11:00",
            "02:42:ac:11:00:9",
            "zz:42:ac:11:00:99",
            "",
        ] {
            let e = parse_unicast_mac(bad).unwrap_err().to_string();
            assert!(e.ends_with("is not a valid mac address"), "{bad}: {e}");
        }
    }
}
