//! berth's container networking: bridges, veth pairs, address leases,
//! nftables NAT and published ports, for Docker's `bridge` driver; macvlan
//! and ipvlan sub-interfaces of a parent link for its `macvlan` and
//! `ipvlan` drivers; and the `none`/`host`/`container:` modes (which need
//! no state here beyond a namespace with `lo` up).
//!
//! Per berth root: a default network `bridge` (bridge `berth0` for the
//! default root), user networks (`br-<id>`), one nftables table, and a
//! directory of persistent network namespaces, one per running container.

pub mod activation;
pub mod db;
pub mod netlink;
pub mod netns;
pub mod nft;
pub mod pasta;
pub mod ports;
pub mod rootless_netns;
pub mod slirp;

use std::collections::BTreeMap;
use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use ipnet::{Ipv4Net, Ipv6Net};

pub use db::{
    mac_text, parse_unicast_mac, publishing_endpoint, Endpoint, Ipv6Config, NetworkDb,
    NetworkRecord, Want, DEFAULT_ROUTE_MTU, LOCAL_LINK_MTU,
};
pub use ports::{parse_exposed, parse_publish, PortBinding, PortSpec, Proto};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("netlink: {0}")]
    Netlink(String),
    #[error("{what}: {}", std::io::Error::from_raw_os_error(*errno))]
    Kernel { what: String, errno: i32 },
    #[error("network namespace: {0}")]
    Namespace(String),
    #[error("{0}")]
    Nft(String),
    #[error("network database: {0}")]
    Db(String),
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

/// The name of the default network, as in Docker.
pub const DEFAULT_NETWORK: &str = "bridge";

/// One of the pools networks take their subnets from: `base` cut into
/// subnets of prefix length `size` (Docker's `default-address-pools`
/// entry `{"base": "10.10.0.0/16", "size": 24}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressPool {
    base: Ipv4Net,
    size: u8,
}

impl AddressPool {
    /// Refuses a base that is not a network address and a size that does
    /// not cut it (smaller than its prefix, or over 30: no room for a
    /// gateway and a container).
    pub fn new(base: Ipv4Net, size: u8) -> Result<AddressPool> {
        if base != base.trunc() {
            return Err(Error::Invalid(format!(
                "address pool {base}: the base should be {}",
                base.trunc()
            )));
        }
        if size < base.prefix_len() || size > 30 {
            return Err(Error::Invalid(format!(
                "address pool {base}: size {size} must be between {} and 30",
                base.prefix_len()
            )));
        }
        Ok(AddressPool { base, size })
    }

    /// `BASE/LEN:SIZE[,…]` (`BERTH_DEFAULT_ADDRESS_POOL`).
    pub fn parse_list(spec: &str) -> Result<Vec<AddressPool>> {
        let mut out = Vec::new();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let bad = || Error::Invalid(format!("{part:?} is not BASE/LEN:SIZE"));
            let (base, size) = part.split_once(':').ok_or_else(bad)?;
            let base: Ipv4Net = base.parse().map_err(|_| bad())?;
            let size: u8 = size.parse().map_err(|_| bad())?;
            out.push(AddressPool::new(base, size)?);
        }
        Ok(out)
    }

    fn subnets(&self) -> impl Iterator<Item = Ipv4Net> {
        // `new` checked that size cuts base.
        self.base.subnets(self.size).into_iter().flatten()
    }
}

/// Docker's default address pools: 172.17.0.0/16 … 172.31.0.0/16, then
/// 192.168.0.0/16 cut into /20s.
fn docker_pools() -> Vec<AddressPool> {
    let mut out: Vec<AddressPool> = (17..=31u8)
        .map(|b| AddressPool {
            base: Ipv4Net::new_assert(Ipv4Addr::new(172, b, 0, 0), 16),
            size: 16,
        })
        .collect();
    out.push(AddressPool {
        base: Ipv4Net::new_assert(Ipv4Addr::new(192, 168, 0, 0), 16),
        size: 20,
    });
    out
}

/// The subnets new networks are picked from, in order:
/// `BERTH_DEFAULT_ADDRESS_POOL` (`BASE/LEN:SIZE[,…]`, e.g. `10.200.0.0/16:24`)
/// when set, else `configured` (daemon.json's `default-address-pools`) when
/// not empty, else Docker's defaults.
fn address_pool(configured: &[AddressPool]) -> Result<Vec<Ipv4Net>> {
    let pools = match std::env::var("BERTH_DEFAULT_ADDRESS_POOL") {
        Ok(spec) => AddressPool::parse_list(&spec)
            .map_err(|e| Error::Invalid(format!("BERTH_DEFAULT_ADDRESS_POOL: {e}")))?,
        Err(_) if !configured.is_empty() => configured.to_vec(),
        Err(_) => docker_pools(),
    };
    Ok(pools.iter().flat_map(AddressPool::subnets).collect())
}

fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// A short hex digest of `s` (FNV-1a, 64-bit): names derived from IDs and
/// roots that must fit Linux's 15-byte interface names.
fn short_hash(s: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

fn write_sysctl(path: &str, value: &str) -> Result<()> {
    match std::fs::read_to_string(path) {
        Ok(v) if v.trim() == value => Ok(()),
        _ => std::fs::write(path, value).map_err(|e| Error::Io(format!("write {path}"), e)),
    }
}

/// An exclusive `flock` held until dropped.
struct Lock(#[allow(dead_code)] nix::fcntl::Flock<File>);

impl Lock {
    fn take(path: &Path) -> Result<Lock> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::Io(format!("create {}", dir.display()), e))?;
        }
        use std::os::unix::fs::OpenOptionsExt;
        let f = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| Error::Io(format!("open {}", path.display()), e))?;
        nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
            .map(Lock)
            .map_err(|(_, e)| Error::Io(format!("lock {}", path.display()), e.into()))
    }
}

/// What `network create` asks for.
#[derive(Debug, Clone, Default)]
pub struct NetworkOptions {
    pub name: String,
    pub driver: Option<String>,
    pub subnet: Option<Ipv4Net>,
    pub gateway: Option<Ipv4Addr>,
    pub ip_range: Option<Ipv4Net>,
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
    /// The bridge's and its veths' MTU (68..=65535); `None`: see
    /// [`NetworkRecord::link_mtu`].
    pub mtu: Option<u32>,
    /// The bridge's name (`com.docker.network.bridge.name`); `None`:
    /// `br-` and the network ID's first 12 characters.
    pub bridge_name: Option<String>,
    /// `com.docker.network.bridge.enable_ip_masquerade=false`: outgoing
    /// traffic keeps the containers' addresses (a routed network).
    pub no_masquerade: bool,
    /// `com.docker.network.bridge.enable_icc=false`: containers of the
    /// network reach the gateway and beyond, not each other.
    pub no_icc: bool,
    /// The driver options of a macvlan or ipvlan network (`-o parent=eth0`,
    /// `macvlan_mode`, `ipvlan_mode`, `ipvlan_flag`; others are kept and
    /// shown, as Docker does).
    pub options: BTreeMap<String, String>,
    /// `--aux-address NAME=IP`: addresses of the subnet no container gets.
    pub aux_addresses: BTreeMap<String, Ipv4Addr>,
    /// `--ipv6`: a dual-stack network; it needs `subnet6`.
    pub ipv6: bool,
    /// The IPv6 `--subnet`, with its `--gateway` and `--ip-range`.
    pub subnet6: Option<Ipv6Net>,
    pub gateway6: Option<Ipv6Addr>,
    pub ip_range6: Option<Ipv6Net>,
}

/// One of Docker's driver options (`network create -o KEY=VALUE`, the
/// API's `Options`), parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriverOption {
    /// `com.docker.network.driver.mtu` (podman's `mtu` too).
    Mtu(u32),
    /// `com.docker.network.bridge.name`.
    BridgeName(String),
    /// `com.docker.network.bridge.enable_ip_masquerade`.
    Masquerade(bool),
    /// `com.docker.network.bridge.enable_icc`.
    Icc(bool),
    /// `com.docker.network.bridge.host_binding_ipv4=0.0.0.0`: what
    /// Docker's default bridge says of itself, true of every berth bridge.
    HostBindingAny,
    /// Any option of a macvlan/ipvlan network (`parent`, `macvlan_mode`…,
    /// checked when the network is made; the rest kept and shown, as
    /// Docker does).
    Other(String, String),
}

/// Go's strconv.ParseBool.
fn parse_go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

impl DriverOption {
    /// `key`=`value` of a network of `driver` (None: bridge), in Docker's
    /// words where it has them.
    pub fn parse(driver: Option<&str>, key: &str, value: &str) -> Result<DriverOption> {
        let bridge = driver.is_none_or(|d| d == "bridge");
        let kv = format!("{key}={value}");
        Ok(match key {
            "com.docker.network.driver.mtu" | "mtu" => {
                DriverOption::Mtu(value.parse().map_err(|_| {
                    Error::Invalid(format!(
                        "invalid network option {kv}: the MTU must be a number"
                    ))
                })?)
            }
            _ if !bridge => DriverOption::Other(key.to_owned(), value.to_owned()),
            "com.docker.network.bridge.name" => DriverOption::BridgeName(value.to_owned()),
            "com.docker.network.bridge.enable_ip_masquerade" => {
                DriverOption::Masquerade(parse_go_bool(value).ok_or_else(|| {
                    Error::Invalid(format!(
                        "invalid network option {kv}: expected true or false"
                    ))
                })?)
            }
            "com.docker.network.bridge.enable_icc" => {
                DriverOption::Icc(parse_go_bool(value).ok_or_else(|| {
                    Error::Invalid(format!(
                        "failed to parse {key} value: {value} (strconv.ParseBool: parsing {value:?}: invalid syntax)"
                    ))
                })?)
            }
            "com.docker.network.bridge.host_binding_ipv4" if value == "0.0.0.0" => {
                DriverOption::HostBindingAny
            }
            _ => {
                return Err(Error::Invalid(format!(
                    "unsupported network option {key:?}: the bridge driver takes com.docker.network.driver.mtu, com.docker.network.bridge.name, com.docker.network.bridge.enable_ip_masquerade and com.docker.network.bridge.enable_icc"
                )))
            }
        })
    }
}

impl NetworkOptions {
    /// Applies Docker's driver options (`-o KEY=VALUE`, the API's
    /// `Options`) for this network's driver: the one parser of the CLI and
    /// the API. A macvlan/ipvlan network keeps every option it is given
    /// (its MTU parsed as well).
    pub fn apply_driver_options<'a>(
        &mut self,
        opts: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<()> {
        let bridge = self.driver.as_deref().is_none_or(|d| d == "bridge");
        for (k, v) in opts {
            if !bridge {
                self.options.insert(k.to_owned(), v.to_owned());
            }
            match DriverOption::parse(self.driver.as_deref(), k, v)? {
                DriverOption::Mtu(m) => self.mtu = Some(m),
                DriverOption::BridgeName(b) => self.bridge_name = Some(b),
                DriverOption::Masquerade(on) => self.no_masquerade = !on,
                DriverOption::Icc(on) => self.no_icc = !on,
                DriverOption::HostBindingAny | DriverOption::Other(..) => {}
            }
        }
        Ok(())
    }
}

/// The IPv6 half of a network being made, checked: `None` without
/// `--ipv6`. Docker 20.10 has no pool of IPv6 subnets to pick from; its
/// words for `--ipv6` without an IPv6 `--subnet`.
fn ipv6_config(o: &NetworkOptions) -> Result<Option<Ipv6Config>> {
    if !o.ipv6 {
        if let Some(s) = o.subnet6 {
            return Err(Error::Invalid(format!(
                "IPv6 subnet {s} given without --ipv6 (enable IPv6 on the network with --ipv6)"
            )));
        }
        if o.gateway6.is_some() || o.ip_range6.is_some() {
            return Err(Error::Invalid(
                "an IPv6 --gateway or --ip-range needs --ipv6 and an IPv6 --subnet".into(),
            ));
        }
        return Ok(None);
    }
    let Some(subnet) = o.subnet6 else {
        if o.gateway6.is_some() || o.ip_range6.is_some() {
            return Err(Error::Invalid(
                "--gateway and --ip-range need --subnet".into(),
            ));
        }
        return Err(Error::Invalid(
            "could not find an available, non-overlapping IPv6 address pool among the defaults to assign to the network".into(),
        ));
    };
    if subnet != subnet.trunc() {
        return Err(Error::Invalid(format!(
            "invalid subnet {subnet}: it should be {}",
            subnet.trunc()
        )));
    }
    if subnet.prefix_len() > 126 {
        return Err(Error::Invalid(format!("subnet {subnet} is too small")));
    }
    if let Some(r) = o.ip_range6 {
        if r != r.trunc()
            || !(subnet.contains(&r.network()) && r.prefix_len() >= subnet.prefix_len())
        {
            return Err(Error::Invalid(format!(
                "ip-range {r} is not within subnet {subnet}"
            )));
        }
    }
    let gateway = match o.gateway6 {
        Some(g) => {
            if !subnet.contains(&g) || g == subnet.network() {
                return Err(Error::Invalid(format!(
                    "gateway {g} is not a host address of subnet {subnet}"
                )));
            }
            g
        }
        // The first address of the range (of the subnet without one), as
        // for IPv4; never the subnet-router anycast address.
        None => o
            .ip_range6
            .map(|r| r.network())
            .filter(|a| *a != subnet.network())
            .unwrap_or_else(|| Ipv6Addr::from(u128::from(subnet.network()) + 1)),
    };
    Ok(Some(Ipv6Config {
        subnet,
        gateway,
        ip_range: o.ip_range6,
        gateway_given: o.gateway6.is_some(),
        from_mac: false,
    }))
}

fn overlaps6(a: &Ipv6Net, b: &Ipv6Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// The drivers berth has.
pub const DRIVERS: [&str; 3] = ["bridge", "macvlan", "ipvlan"];

/// The sub-interface a macvlan or ipvlan network's options ask for, with
/// Docker's words for a bad mode.
pub fn sub_interface_of(
    driver: &str,
    options: &BTreeMap<String, String>,
) -> Result<Option<netlink::SubInterface>> {
    use netlink::{IpvlanFlag, IpvlanMode, MacvlanMode, SubInterface};
    let opt = |k: &str| options.get(k).map(String::as_str).unwrap_or("");
    Ok(Some(match driver {
        "macvlan" => SubInterface::Macvlan(match opt("macvlan_mode") {
            "" | "bridge" => MacvlanMode::Bridge,
            "private" => MacvlanMode::Private,
            "vepa" => MacvlanMode::Vepa,
            "passthru" => MacvlanMode::Passthru,
            m => {
                return Err(Error::Invalid(format!(
                    "requested macvlan mode '{m}' is not valid, 'bridge' mode is the macvlan driver default"
                )))
            }
        }),
        "ipvlan" => SubInterface::Ipvlan(
            match opt("ipvlan_mode") {
                "" | "l2" => IpvlanMode::L2,
                "l3" => IpvlanMode::L3,
                "l3s" => IpvlanMode::L3s,
                m => {
                    return Err(Error::Invalid(format!(
                        "requested ipvlan mode '{m}' is not valid, 'l2' mode is the ipvlan driver default"
                    )))
                }
            },
            match opt("ipvlan_flag") {
                "" | "bridge" => IpvlanFlag::Bridge,
                "private" => IpvlanFlag::Private,
                "vepa" => IpvlanFlag::Vepa,
                f => {
                    return Err(Error::Invalid(format!(
                        "requested ipvlan flag '{f}' is not valid, 'bridge' is the ipvlan driver default"
                    )))
                }
            },
        ),
        _ => return Ok(None),
    }))
}

impl NetworkRecord {
    /// A bridge network (its `bridge` is a link of the host's).
    pub fn is_bridge(&self) -> bool {
        self.driver == "bridge"
    }

    /// The sub-interface each container gets on a macvlan or ipvlan
    /// network (`None`: a bridge network).
    pub fn sub_interface(&self) -> Option<netlink::SubInterface> {
        sub_interface_of(&self.driver, &self.options).ok().flatten()
    }

    /// The parent link of a macvlan or ipvlan network.
    pub fn parent(&self) -> Option<&str> {
        self.options
            .get("parent")
            .filter(|p| !p.is_empty())
            .or(self.created_parent.as_ref())
            .map(String::as_str)
    }

    /// The host links that go with the network: its bridge, or the host
    /// shim and the parent berth made for a macvlan/ipvlan network.
    fn own_links(&self) -> Vec<String> {
        if self.is_bridge() {
            return vec![self.bridge.clone()];
        }
        let mut out: Vec<String> = self.created_parent.iter().cloned().collect();
        if self.wants_host_shim() {
            out.insert(0, host_shim_name(&self.id));
        }
        out
    }

    /// `-o berth.macvlan_host_shim=true`: the host reaches the network's
    /// containers through a macvlan of its own on the parent.
    fn wants_host_shim(&self) -> bool {
        self.options.get(HOST_SHIM_OPTION).map(String::as_str) == Some("true")
    }

    /// Whether containers get a default route through this network: not
    /// an `--internal` one, nor a macvlan/ipvlan network on a dummy parent
    /// (Docker's no-parent network reaches nothing beyond itself).
    fn routes_out(&self) -> bool {
        !self.internal && (self.is_bridge() || self.options.contains_key("parent"))
    }
}

/// Which default routes an endpoint gives its container.
#[derive(Debug, Clone, Copy, Default)]
struct Routes {
    v4: bool,
    v6: bool,
}

/// A container's network namespace once set up.
#[derive(Debug, Clone)]
pub struct Sandbox {
    pub netns: PathBuf,
    pub ports: Vec<PortBinding>,
}

/// The networks of one berth root.
pub struct Manager {
    db: NetworkDb,
    run_dir: PathBuf,
    /// nftables table of this root.
    table: String,
    /// Bridge of the default network.
    default_bridge: String,
    /// What daemon.json says of networks.
    defaults: NetworkDefaults,
    /// The lock serializing changes to the host's links across roots
    /// (`/run/berth-network.lock`; rootless: the user's, see
    /// [`Manager::set_rootless`]).
    host_lock: PathBuf,
}

/// What the host's configuration (daemon.json) says of networks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkDefaults {
    /// The default network's MTU (`mtu`); `None`: see
    /// [`NetworkRecord::link_mtu`].
    pub mtu: Option<u32>,
    /// Where new networks take their subnets (`default-address-pools`);
    /// empty: Docker's pools.
    pub address_pools: Vec<AddressPool>,
    /// The default bridge's address and subnet (`bip`, `192.168.77.1/24`).
    pub bip: Option<Ipv4Net>,
    /// The range the default bridge's containers get addresses from
    /// (`fixed-cidr`); without `bip`, the subnet too.
    pub fixed_cidr: Option<Ipv4Net>,
    /// The default route of the default bridge's containers
    /// (`default-gateway`; the bridge's address when unset). Never leased.
    pub default_gateway: Option<Ipv4Addr>,
    /// The default bridge's IPv6 subnet (`ipv6` and `fixed-cidr-v6`);
    /// `None`: IPv4 only.
    pub fixed_cidr_v6: Option<Ipv6Net>,
}

impl NetworkDefaults {
    /// The default network's subnet, gateway and range as configured
    /// (`None`: from the pools).
    fn default_layout(&self) -> Option<(Ipv4Net, Option<Ipv4Addr>, Option<Ipv4Net>)> {
        match (self.bip, self.fixed_cidr) {
            (Some(b), f) => Some((b.trunc(), Some(b.addr()), f.map(|f| f.trunc()))),
            (None, Some(f)) => Some((f.trunc(), None, None)),
            (None, None) => None,
        }
    }
}

impl Manager {
    /// Whether the default network has IPv6 (daemon.json's `ipv6` with
    /// `fixed-cidr-v6`): rootless, whether pasta copies the host's IPv6
    /// side too (IPv4 only otherwise, as Docker's default network; the IPv6
    /// side costs pasta ~25 ms of its start here).
    pub fn default_ipv6(&self) -> bool {
        self.defaults.fixed_cidr_v6.is_some()
    }

    /// `root` is the berth root (its `berth.db` holds the tables), `run_dir`
    /// its volatile directory (namespaces and locks).
    pub fn open(root: &Path, run_dir: &Path) -> Result<Manager> {
        let shared = berth_db::open_shared(root).map_err(|e| Error::Db(e.to_string()))?;
        Manager::on(shared, root, run_dir)
    }

    /// [`Manager::open`] on the process's shared connection to `root`'s
    /// `berth.db`.
    pub fn on(shared: berth_db::SharedConnection, root: &Path, run_dir: &Path) -> Result<Manager> {
        let db = NetworkDb::on(shared)?;
        let canonical = root.canonicalize().unwrap_or_else(|_| root.to_owned());
        let (table, default_bridge) = if canonical == Path::new("/var/lib/berth") {
            ("berth".to_owned(), "berth0".to_owned())
        } else {
            let h = short_hash(&canonical.to_string_lossy());
            (format!("berth_{}", &h[..8]), format!("berth-{}", &h[..8]))
        };
        Ok(Manager {
            db,
            run_dir: run_dir.to_owned(),
            table,
            default_bridge,
            defaults: NetworkDefaults::default(),
            host_lock: PathBuf::from("/run/berth-network.lock"),
        })
    }

    /// Rootless berth: the "host" of this root's bridges is the user's
    /// rootless network namespace (see [`rootless_netns`]), which only this
    /// user's berth changes: the host-wide lock is the user's own.
    pub fn set_rootless(&mut self) {
        self.host_lock = self.run_dir.join("network-host.lock");
    }

    fn host_lock(&self) -> Result<Lock> {
        Lock::take(&self.host_lock)
    }

    /// The host's settings from now on: the default network's MTU applies
    /// when [`Manager::ensure_default`] next runs, the pools to networks
    /// made after.
    pub fn set_defaults(&mut self, defaults: NetworkDefaults) {
        self.defaults = defaults;
    }

    pub fn db(&self) -> &NetworkDb {
        &self.db
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub fn netns_path(&self, container_id: &str) -> PathBuf {
        netns::path_for(&self.run_dir, container_id)
    }

    fn root_lock(&self) -> Result<Lock> {
        Lock::take(&self.run_dir.join("network.lock"))
    }

    /// A subnet from the pool that overlaps no address or route of the host
    /// and no network of this root. Called under the host-wide lock.
    fn pick_subnet(&self, host: &mut netlink::Netlink) -> Result<Ipv4Net> {
        let mut used: Vec<Ipv4Net> = Vec::new();
        for (a, p) in host.addresses()? {
            if let Ok(n) = Ipv4Net::new(a, p) {
                used.push(n.trunc());
            }
        }
        for (a, p) in host.routes()? {
            if p > 0 {
                if let Ok(n) = Ipv4Net::new(a, p) {
                    used.push(n.trunc());
                }
            }
        }
        used.extend(self.db.networks()?.iter().map(|n| n.subnet));
        address_pool(&self.defaults.address_pools)?
            .into_iter()
            .find(|c| !used.iter().any(|u| overlaps(c, u)))
            .ok_or_else(|| {
                Error::Conflict(
                    "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network".into(),
                )
            })
    }

    fn check_subnet(
        &self,
        subnet: &Ipv4Net,
        host: &mut netlink::Netlink,
        with_host: bool,
    ) -> Result<()> {
        for n in self.db.networks()? {
            if overlaps(&n.subnet, subnet) {
                return Err(Error::Conflict(format!(
                    "invalid pool request: Pool overlaps with other one on this address space ({subnet} overlaps network {})",
                    n.name
                )));
            }
        }
        for (a, p) in host.addresses()?.into_iter().filter(|_| with_host) {
            if let Ok(n) = Ipv4Net::new(a, p) {
                if overlaps(&n.trunc(), subnet) {
                    return Err(Error::Conflict(format!(
                        "invalid pool request: Pool overlaps with other one on this address space ({subnet} overlaps {a}/{p} on the host)"
                    )));
                }
            }
        }
        Ok(())
    }

    /// An IPv6 subnet must overlap no other network's, nor an address of
    /// the host's (Docker's words).
    fn check_subnet6(
        &self,
        subnet: &Ipv6Net,
        host: &mut netlink::Netlink,
        host_addresses: bool,
    ) -> Result<()> {
        let clash = |what: String| {
            Error::Conflict(format!(
                "invalid pool request: Pool overlaps with other one on this address space ({subnet} overlaps {what})"
            ))
        };
        for n in self.db.networks()? {
            if n.ipv6.is_some_and(|v6| overlaps6(&v6.subnet, subnet)) {
                return Err(clash(format!("network {}", n.name)));
            }
        }
        if !host_addresses {
            return Ok(());
        }
        for (a, p) in host.addresses6()? {
            // (link-local and loopback addresses are every link's)
            if a.is_loopback() || a.segments()[0] & 0xffc0 == 0xfe80 {
                continue;
            }
            if let Ok(n) = Ipv6Net::new(a, p) {
                if overlaps6(&n.trunc(), subnet) {
                    return Err(clash(format!("{a}/{p} on the host")));
                }
            }
        }
        Ok(())
    }

    /// The default network, created (with its bridge) on first use.
    /// Its MTU follows [`Manager::set_defaults`] (containers already
    /// running keep theirs).
    pub fn ensure_default(&mut self) -> Result<NetworkRecord> {
        let layout = self.defaults.default_layout();
        if let Some(n) = self.db.network_by_name(DEFAULT_NETWORK)? {
            // daemon.json's `bip`/`fixed-cidr` changed: the default network
            // is made again, once no container holds an address on it.
            let stale = layout.is_some_and(|(subnet, gw, range)| {
                n.subnet != subnet || gw.is_some_and(|g| g != n.gateway) || n.ip_range != range
            }) || n.ipv6.map(|v6| v6.subnet) != self.defaults.fixed_cidr_v6;
            if stale {
                let _l = self.root_lock()?;
                // (checked again under the lock: another berth may have
                // made it again already, or leased an address on it)
                let same = self
                    .db
                    .network_by_name(DEFAULT_NETWORK)?
                    .is_some_and(|again| again.id == n.id);
                if same && self.db.endpoints_of_network(&n.id)?.is_empty() {
                    self.db.delete_network(&n.id)?;
                    let mut host = netlink::Netlink::open()?;
                    host.delete_link_by_name(&n.bridge)?;
                    self.apply_rules()?;
                }
            }
        }
        if let Some(mut n) = self.db.network_by_name(DEFAULT_NETWORK)? {
            self.check_default_gateway(&n)?;
            if n.mtu != self.defaults.mtu {
                check_mtu(self.defaults.mtu)?;
                self.db.set_mtu(&n.id, self.defaults.mtu)?;
                n.mtu = self.defaults.mtu;
            }
            return Ok(n);
        }
        let mut opts = NetworkOptions {
            name: DEFAULT_NETWORK.into(),
            mtu: self.defaults.mtu,
            ..Default::default()
        };
        if let Some((subnet, gateway, range)) = layout {
            opts.subnet = Some(subnet);
            opts.gateway = gateway;
            opts.ip_range = range;
        }
        if let Some(v6) = self.defaults.fixed_cidr_v6 {
            opts.ipv6 = true;
            opts.subnet6 = Some(v6);
        }
        match self.create_network(&opts) {
            Ok(n) => {
                if let Err(e) = self.check_default_gateway(&n) {
                    let _ = self.remove_default(&n);
                    return Err(e);
                }
                Ok(n)
            }
            // Another berth made it at the same time.
            Err(Error::Conflict(_)) => self
                .db
                .network_by_name(DEFAULT_NETWORK)?
                .ok_or_else(|| Error::NotFound("network bridge not found".into())),
            Err(e) => Err(e),
        }
    }

    /// daemon.json's `default-gateway` must be a host address of the
    /// default network's subnet (Docker's words).
    fn check_default_gateway(&self, n: &NetworkRecord) -> Result<()> {
        match self.defaults.default_gateway {
            Some(g)
                if !n.subnet.contains(&g)
                    || g == n.subnet.network()
                    || g == n.subnet.broadcast() =>
            {
                Err(Error::Invalid(format!(
                    "default-gateway: auxiliary address: (DefaultGatewayIPv4:{g}) must belong to the master pool: {}",
                    n.subnet
                )))
            }
            _ => Ok(()),
        }
    }

    /// Removes the default network made a moment ago (with a bad
    /// `default-gateway`): nothing is left of it.
    fn remove_default(&mut self, n: &NetworkRecord) -> Result<()> {
        let _l = self.root_lock()?;
        self.db.delete_network(&n.id)?;
        netlink::Netlink::open()?.delete_link_by_name(&n.bridge)?;
        self.apply_rules()
    }

    /// Where containers of `n` route what leaves their subnet: its
    /// gateway, or daemon.json's `default-gateway` on the default network.
    pub fn route_gateway(&self, n: &NetworkRecord) -> Ipv4Addr {
        match self.defaults.default_gateway {
            Some(g) if n.name == DEFAULT_NETWORK => g,
            _ => n.gateway,
        }
    }

    /// A network by name or ID; `bridge`, the default network, is made on
    /// first use as everywhere else.
    pub fn network(&mut self, key: &str) -> Result<NetworkRecord> {
        if key == DEFAULT_NETWORK {
            self.ensure_default()
        } else {
            self.db.resolve(key)
        }
    }

    /// `network create`: records the network, makes its bridge (address,
    /// up, forwarding) and rewrites the rules. Nothing is left on failure.
    pub fn create_network(&mut self, o: &NetworkOptions) -> Result<NetworkRecord> {
        let driver = o.driver.clone().unwrap_or_else(|| "bridge".into());
        if !DRIVERS.contains(&driver.as_str()) {
            return Err(Error::Invalid(format!(
                "plugin \"{driver}\" not found: berth has the bridge, macvlan and ipvlan drivers"
            )));
        }
        let sub = sub_interface_of(&driver, &o.options)?;
        let mut ipv6 = ipv6_config(o)?;
        if let Some(v6) = ipv6.as_mut() {
            // Docker's default bridge: with room for them, containers'
            // IPv6 addresses are made of their MAC (`…::242:ac11:2`).
            v6.from_mac = o.name == DEFAULT_NETWORK && v6.subnet.prefix_len() <= 80;
        }
        if o.name.is_empty()
            || !o
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
            || !o.name.starts_with(|c: char| c.is_ascii_alphanumeric())
        {
            return Err(Error::Invalid(format!(
                "invalid network name {:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
                o.name
            )));
        }
        check_mtu(o.mtu)?;
        if let Some(b) = &o.bridge_name {
            check_bridge_name(b)?;
            if self.db.networks()?.iter().any(|n| &n.bridge == b) {
                return Err(Error::Conflict(format!(
                    "bridge name {b} is used by another network"
                )));
            }
        }
        if ["host", "none"].contains(&o.name.as_str()) {
            return Err(Error::Conflict(format!(
                "network with name {} already exists",
                o.name
            )));
        }
        if o.subnet.is_none() && (o.gateway.is_some() || o.ip_range.is_some()) {
            return Err(Error::Invalid(
                "--gateway and --ip-range need --subnet".into(),
            ));
        }
        if self.db.network_by_name(&o.name)?.is_some() {
            return Err(Error::Conflict(format!(
                "network with name {} already exists",
                o.name
            )));
        }
        let _host_lock = self.host_lock()?;
        let mut host = netlink::Netlink::open()?;
        if sub.is_some() {
            if o.bridge_name.is_some() || o.no_masquerade {
                return Err(Error::Invalid(format!(
                    "the com.docker.network.bridge options are the bridge driver's, not {driver}'s"
                )));
            }
            self.check_parent(o, &mut host)?;
        }
        if let Some(b) = &o.bridge_name {
            // An interface berth did not make is never taken over (its
            // removal with the network would take the host's with it).
            if host.link_by_name(b)?.is_some() {
                return Err(Error::Conflict(format!(
                    "bridge name {b} is in use on the host"
                )));
            }
        }
        let subnet = match o.subnet {
            Some(s) => {
                if s.prefix_len() > 30 {
                    return Err(Error::Invalid(format!("subnet {s} is too small")));
                }
                if s != s.trunc() {
                    return Err(Error::Invalid(format!(
                        "invalid subnet {s}: it should be {}",
                        s.trunc()
                    )));
                }
                // A macvlan/ipvlan subnet is the parent's network: the
                // host has an address there, as Docker allows.
                self.check_subnet(&s, &mut host, sub.is_none())?;
                s
            }
            None => self.pick_subnet(&mut host)?,
        };
        if let Some(v6) = &ipv6 {
            // (a macvlan subnet is the parent's network, as for IPv4)
            self.check_subnet6(&v6.subnet, &mut host, sub.is_none())?;
        }
        let gateway = match o.gateway {
            Some(g) => {
                if !subnet.contains(&g) || g == subnet.network() || g == subnet.broadcast() {
                    return Err(Error::Invalid(format!(
                        "gateway {g} is not a host address of subnet {subnet}"
                    )));
                }
                g
            }
            // Docker's IPAM gives the gateway the first address of the
            // range (of the subnet without one).
            None => o
                .ip_range
                .map(|r| r.network())
                .filter(|a| subnet.contains(a) && *a != subnet.network())
                .or_else(|| subnet.hosts().next())
                .ok_or_else(|| Error::Invalid(format!("subnet {subnet} has no addresses")))?,
        };
        if let Some(r) = o.ip_range {
            if !(subnet.contains(&r.network()) && r.prefix_len() >= subnet.prefix_len()) {
                return Err(Error::Invalid(format!(
                    "ip-range {r} is not within subnet {subnet}"
                )));
            }
        }
        for (k, a) in &o.aux_addresses {
            if !subnet.contains(a) {
                return Err(Error::Invalid(format!(
                    "auxiliary address {k}={a} is not within subnet {subnet}"
                )));
            }
        }
        let id = random_id()?;
        let bridge = if sub.is_some() {
            // Not a link (':' is in no interface name): unique, and never
            // looked for on the host.
            format!("{driver}:{}", &id[..12])
        } else if o.name == DEFAULT_NETWORK {
            self.default_bridge.clone()
        } else if let Some(b) = &o.bridge_name {
            b.clone()
        } else {
            format!("br-{}", &id[..12])
        };
        let rec = NetworkRecord {
            id,
            name: o.name.clone(),
            driver,
            subnet,
            gateway,
            ip_range: o.ip_range,
            bridge,
            internal: o.internal,
            labels: o.labels.clone(),
            created: now_rfc3339(),
            mtu: o.mtu,
            masquerade: !o.no_masquerade,
            icc: !o.no_icc,
            options: if sub.is_some() {
                o.options.clone()
            } else {
                BTreeMap::new()
            },
            aux_addresses: o.aux_addresses.clone(),
            gateway_implicit: sub.is_some() && o.gateway.is_none(),
            created_parent: None,
            ipv6,
        };
        if sub.is_some() {
            return self.create_sub_interface_network(rec, &mut host);
        }
        self.db.insert_network(&rec)?;
        let made = self.bring_up(&rec, &mut host).and_then(|_| {
            let _l = self.root_lock()?;
            self.apply_rules()
        });
        if let Err(e) = made {
            let _ = host.delete_link_by_name(&rec.bridge);
            let _ = self.db.delete_network(&rec.id);
            let _l = self.root_lock();
            let _ = self.apply_rules();
            return Err(e);
        }
        Ok(rec)
    }

    /// A macvlan/ipvlan network's parent: not `lo`, used by no other
    /// network of this root (Docker's one network per parent), and either
    /// there or an 802.1q name (`eth0.10`) whose link exists.
    fn check_parent(&self, o: &NetworkOptions, host: &mut netlink::Netlink) -> Result<()> {
        let Some(parent) = o.options.get("parent").filter(|p| !p.is_empty()) else {
            return Ok(());
        };
        if parent == "lo" {
            return Err(Error::Invalid(format!(
                "loopback interface is not a valid {} parent link",
                o.driver.as_deref().unwrap_or_default()
            )));
        }
        if parent.len() > 15 || parent.contains(['/', ':']) || parent.contains(char::is_whitespace)
        {
            return Err(Error::Invalid(format!(
                "invalid parent interface name {parent:?}"
            )));
        }
        if let Some(n) = self
            .db
            .networks()?
            .iter()
            .find(|n| n.parent() == Some(parent.as_str()))
        {
            return Err(Error::Conflict(format!(
                "network dm-{} is already using parent interface {parent}",
                &n.id[..12.min(n.id.len())]
            )));
        }
        // A parent that is down carries nothing: its sub-interfaces would
        // have no carrier and the containers no network, without a word.
        let down = |name: &str| {
            Error::Invalid(format!(
                "-o parent interface {name} is down: bring it up first (ip link set {name} up)"
            ))
        };
        match host.link_by_name(parent)? {
            Some(l) if !l.up => return Err(down(parent)),
            Some(_) => {}
            None => {
                let (base, _) = vlan_of(parent)?;
                match host.link_by_name(base)? {
                    None => {
                        return Err(Error::NotFound(format!(
                            "-o parent interface was not found on the host: {base}"
                        )))
                    }
                    Some(l) if !l.up => return Err(down(base)),
                    Some(_) => {}
                }
            }
        }
        Ok(())
    }

    /// Records a macvlan/ipvlan network and makes the parent link it
    /// needs when missing: `eth0.10` on `eth0`, or a dummy `dm-ID` for a
    /// network given no parent. Nothing is left on failure.
    fn create_sub_interface_network(
        &mut self,
        mut rec: NetworkRecord,
        host: &mut netlink::Netlink,
    ) -> Result<NetworkRecord> {
        let made = match rec.options.get("parent").filter(|p| !p.is_empty()) {
            None => {
                let name = format!("dm-{}", &rec.id[..12]);
                host.create_dummy(&name)?;
                Some(name)
            }
            Some(p) if host.link_by_name(p)?.is_none() => {
                let (base, vid) = vlan_of(p)?;
                let base = host.link_by_name(base)?.ok_or_else(|| {
                    Error::NotFound(format!(
                        "-o parent interface was not found on the host: {base}"
                    ))
                })?;
                host.create_vlan(p, base.index, vid)?;
                Some(p.clone())
            }
            Some(_) => None,
        };
        rec.created_parent = made;
        let undo = |host: &mut netlink::Netlink, rec: &NetworkRecord| {
            for l in rec.own_links() {
                let _ = host.delete_link_by_name(&l);
            }
        };
        if rec.wants_host_shim() {
            if let Err(e) = prepare_host_shim(&mut rec).and_then(|_| make_host_shim(&rec, host)) {
                undo(host, &rec);
                return Err(e);
            }
        }
        if let Err(e) = self.db.insert_network(&rec) {
            undo(host, &rec);
            return Err(e);
        }
        Ok(rec)
    }

    /// Makes sure the network's bridge exists with its address and is up
    /// (after a reboot it is gone while the database remembers it).
    /// Returns the bridge's index and whether it had to be made.
    fn bring_up(&self, n: &NetworkRecord, host: &mut netlink::Netlink) -> Result<(u32, bool)> {
        if let Some(l) = host.link_by_name(&n.bridge)? {
            if l.up {
                return Ok((l.index, false));
            }
        }
        match host.create_bridge(&n.bridge, n.link_mtu()) {
            Ok(()) => {}
            Err(Error::Kernel { errno, .. }) if errno == libc::EEXIST => {}
            Err(e) => return Err(e),
        }
        let link = host
            .link_by_name(&n.bridge)?
            .ok_or_else(|| Error::Netlink(format!("bridge {} vanished", n.bridge)))?;
        match host.add_address(link.index, n.gateway, n.subnet.prefix_len()) {
            Ok(()) => {}
            Err(Error::Kernel { errno, .. }) if errno == libc::EEXIST => {}
            Err(e) => return Err(e),
        }
        if let Some(v6) = &n.ipv6 {
            let conf = format!("/proc/sys/net/ipv6/conf/{}/disable_ipv6", n.bridge);
            if std::fs::read_to_string(&conf).is_ok_and(|v| v.trim() != "0") {
                write_sysctl(&conf, "0")?;
            }
            match host.add_address6(link.index, v6.gateway, v6.subnet.prefix_len()) {
                Ok(()) => {}
                Err(Error::Kernel { errno, .. }) if errno == libc::EEXIST => {}
                Err(e) => return Err(e),
            }
        }
        host.set_up(link.index)?;
        write_sysctl("/proc/sys/net/ipv4/ip_forward", "1")?;
        if n.ipv6.is_some() && !n.internal {
            // What leaves the subnet is routed by the host, as Docker
            // turns IPv6 forwarding on for its IPv6 networks.
            write_sysctl("/proc/sys/net/ipv6/conf/all/forwarding", "1")?;
        }
        // 127.0.0.1:PORT → container: packets from the loopback address
        // may then be routed out of the bridge (and are masqueraded).
        write_sysctl(
            &format!("/proc/sys/net/ipv4/conf/{}/route_localnet", n.bridge),
            "1",
        )?;
        Ok((link.index, true))
    }

    /// Rewrites this root's nftables table from the database. Callers hold
    /// the root lock, so two writers cannot interleave read and write.
    fn apply_rules(&self) -> Result<()> {
        self.apply_rules_with(false)
    }

    /// [`Manager::apply_rules`]; `drop_bridge`: a network without icc was
    /// removed, its bridge-family rules may be the last.
    fn apply_rules_with(&self, drop_bridge: bool) -> Result<()> {
        // macvlan/ipvlan networks have no rules: their traffic never
        // passes the host's stack (no NAT, no published ports).
        let networks: Vec<NetworkRecord> = self
            .db
            .networks()?
            .into_iter()
            .filter(NetworkRecord::is_bridge)
            .collect();
        let endpoints = self.db.all_endpoints()?;
        let mut dnats = Vec::new();
        for (cid, b) in self.db.ports()? {
            // The container's address on its publishing network.
            if let Some(ep) =
                db::publishing_endpoint(endpoints.iter().filter(|e| e.container_id == cid))
            {
                dnats.push(nft::Dnat {
                    binding: b,
                    container_ip: ep.ip,
                    container_ip6: ep.ip6,
                });
            }
        }
        nft::apply_with(&self.table, &networks, &dnats, drop_bridge)
    }

    /// Rewrites the rules (after a crash or reboot: `system prune`, start).
    pub fn reconcile_rules(&self) -> Result<()> {
        let _l = self.root_lock()?;
        self.apply_rules()
    }

    /// `network rm`: refused while containers are attached; the default
    /// network cannot be removed.
    pub fn remove_network(&mut self, key: &str) -> Result<NetworkRecord> {
        if ["host", "none", DEFAULT_NETWORK].contains(&key) {
            return Err(Error::Invalid(format!(
                "{key} is a pre-defined network and cannot be removed"
            )));
        }
        let n = self.db.resolve(key)?;
        if !self.db.endpoints_of_network(&n.id)?.is_empty() {
            return Err(Error::Conflict(format!(
                "error while removing network: network {} id {} has active endpoints",
                n.name, n.id
            )));
        }
        let _l = self.root_lock()?;
        self.db.delete_network(&n.id)?;
        // A macvlan/ipvlan network has no rules: its removal needs no nft
        // (a host without nftables can have those networks). The links go
        // even when the rules could not be written: the record is gone.
        let rules = if n.is_bridge() {
            self.apply_rules_with(!n.icc)
        } else {
            Ok(())
        };
        let mut host = netlink::Netlink::open()?;
        for l in n.own_links() {
            host.delete_link_by_name(&l)?;
        }
        rules?;
        Ok(n)
    }

    /// Removes every network, bridge and rule of this root (the default
    /// network too): `system reset`, and tests cleaning up.
    pub fn remove_everything(&mut self) -> Result<()> {
        let _l = self.root_lock()?;
        let mut host = netlink::Netlink::open()?;
        // Goes on past a failure so that one stuck piece does not leave
        // the rest behind; the first failure is reported.
        let mut first = None;
        for n in self.db.networks()? {
            for ep in self.db.endpoints_of_network(&n.id)? {
                let _ = host.delete_link_by_name(&host_veth_name(&ep.container_id, &n.id));
            }
            for r in [
                self.db.release_network(&n.id),
                self.db.delete_network(&n.id),
                n.own_links()
                    .iter()
                    .try_for_each(|l| host.delete_link_by_name(l).map(|_| ())),
            ] {
                if let Err(e) = r {
                    first.get_or_insert(e);
                }
            }
        }
        if let Err(e) = nft::remove(&self.table) {
            first.get_or_insert(e);
        }
        match first {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Attaches a container to a network: its address lease (kept until the
    /// container is removed or disconnected).
    pub fn connect(
        &mut self,
        container_id: &str,
        net: &NetworkRecord,
        want: Want,
        mac: Option<[u8; 6]>,
        aliases: &[String],
    ) -> Result<Endpoint> {
        if mac.is_some() && net.driver == "ipvlan" {
            // Docker's words: an ipvlan has its parent's MAC.
            return Err(Error::Invalid(
                "ipvlan interfaces do not support custom mac address assignment".into(),
            ));
        }
        let avoid: Vec<Ipv4Addr> = if net.name == DEFAULT_NETWORK {
            self.defaults.default_gateway.into_iter().collect()
        } else {
            Vec::new()
        };
        self.db
            .lease_avoiding(net, container_id, want, mac, aliases, &avoid)
    }

    /// Detaches a container from a network: its lease, and in a running
    /// container the interface; a default route that went with it is
    /// given by the next routed network (the one a restart would use).
    pub fn disconnect(&mut self, container_id: &str, net: &NetworkRecord) -> Result<()> {
        self.disconnect_link(container_id, net)?;
        self.db.release(container_id, Some(&net.id))?;
        if let Ok(ns) = netns::open(&self.netns_path(container_id)) {
            let _ = self.reroute(container_id, &ns);
        }
        Ok(())
    }

    /// Gives a running container the default routes it lacks, through
    /// its first routed network of each family.
    fn reroute(&self, container_id: &str, ns: &netns::NetNs) -> Result<()> {
        let mut endpoints = self.db.endpoints_of_container(container_id)?;
        endpoints.sort_by_key(|e| e.index);
        let networks = self.db.networks()?;
        let mut inside = ns.netlink()?;
        let mut have = Routes {
            v4: inside.routes()?.iter().any(|(_, p)| *p == 0),
            v6: inside.has_default_route6()?,
        };
        for ep in &endpoints {
            let Some(net) = networks.iter().find(|n| n.id == ep.network_id) else {
                continue;
            };
            let want = Self::routes_missing(&networks, &[], ep, net);
            let routes = Routes {
                v4: want.v4 && !have.v4,
                v6: want.v6 && !have.v6,
            };
            if !(routes.v4 || routes.v6) {
                continue;
            }
            let Some(link) = inside.link_by_name(&format!("eth{}", ep.index))? else {
                continue;
            };
            self.add_default_routes(&mut inside, link.index, ep, net, routes)?;
            have.v4 |= routes.v4;
            have.v6 |= routes.v6;
        }
        Ok(())
    }

    /// The interface of `net` in container `container_id`, if running.
    fn disconnect_link(&mut self, container_id: &str, net: &NetworkRecord) -> Result<()> {
        if net.is_bridge() {
            let mut host = netlink::Netlink::open()?;
            let _ = host.delete_link_by_name(&host_veth_name(container_id, &net.id));
        } else if let Ok(ns) = netns::open(&self.netns_path(container_id)) {
            // The sub-interface lives in the container's namespace only.
            let ep = self
                .db
                .endpoints_of_container(container_id)?
                .into_iter()
                .find(|e| e.network_id == net.id);
            if let (Some(ep), Ok(mut inside)) = (ep, ns.netlink()) {
                let _ = inside.delete_link_by_name(&format!("eth{}", ep.index));
            }
        }
        Ok(())
    }

    /// Forgets a removed container: its leases and port bindings.
    pub fn release(&mut self, container_id: &str) -> Result<()> {
        let had_ports = self.db.unbind_ports(container_id)? > 0;
        self.db.release(container_id, None)?;
        if had_ports {
            self.reconcile_rules()?;
        }
        Ok(())
    }

    /// At start: a new network namespace with `lo` up, and for each of the
    /// container's endpoints a veth pair (`ethN` inside, on the network's
    /// bridge outside) with its address, the default route via the first
    /// network's gateway, and the published ports.
    pub fn setup(&mut self, container_id: &str, publish: &[PortSpec]) -> Result<Sandbox> {
        let path = self.netns_path(container_id);
        let ns = netns::create_fresh(&path)?;
        match self.setup_in(container_id, &ns, publish) {
            Ok(ports) => Ok(Sandbox { netns: path, ports }),
            Err(e) => {
                let _ = self.teardown(container_id);
                Err(e)
            }
        }
    }

    fn setup_in(
        &mut self,
        container_id: &str,
        ns: &netns::NetNs,
        publish: &[PortSpec],
    ) -> Result<Vec<PortBinding>> {
        let endpoints = self.db.endpoints_of_container(container_id)?;
        if endpoints.is_empty() {
            return Ok(Vec::new());
        }
        let networks = self.db.networks()?;
        let mut host = netlink::Netlink::open()?;
        let mut inside = ns.netlink()?;
        let mut rules_stale = false;
        let mut routed = false;
        // (the IPv6 default route: through the first routed network with
        // IPv6, which may come after the IPv4 one)
        let mut routed6 = false;
        for ep in &endpoints {
            let net = networks
                .iter()
                .find(|n| n.id == ep.network_id)
                .ok_or_else(|| Error::NotFound(format!("network {} not found", ep.network_id)))?;
            let route = !routed && net.routes_out();
            let route6 = !routed6 && net.routes_out() && net.ipv6.is_some() && ep.ip6.is_some();
            let routes = Routes {
                v4: route,
                v6: route6,
            };
            rules_stale |= self.attach_endpoint(&mut host, &mut inside, ns, ep, net, routes)?;
            routed |= route;
            routed6 |= route6;
        }
        // Docker ignores `-p` on a macvlan/ipvlan network: nothing on the
        // host forwards to such a container.
        let first_is_bridge = db::publishing_endpoint(&endpoints)
            .and_then(|ep| networks.iter().find(|n| n.id == ep.network_id))
            .is_some_and(NetworkRecord::is_bridge);
        let publish = if first_is_bridge { publish } else { &[] };
        if publish.is_empty() && !rules_stale {
            return Ok(Vec::new());
        }
        let _l = self.root_lock()?;
        let wanted: Vec<_> = publish
            .iter()
            .map(|p| (p.host_ip, p.host_port, p.container_port, p.proto))
            .collect();
        let bindings = if wanted.is_empty() {
            Vec::new()
        } else {
            for (ip, port, _, proto) in &wanted {
                if let Some(p) = port {
                    check_host_port(*proto, *ip, *p)?;
                }
            }
            self.db
                .bind_ports(container_id, &wanted, &mut |proto, ip, taken| {
                    free_host_port(proto, ip, taken)
                })?
        };
        if let Err(e) = self.apply_rules() {
            let _ = self.db.unbind_ports(container_id);
            return Err(e);
        }
        Ok(bindings)
    }

    /// One veth pair for `ep`: `ethN` inside with the address(es) (and
    /// the default routes `routes` asks for), the host end on the
    /// network's bridge.
    /// Returns whether the bridge had to be made (the rules are then stale).
    fn attach_endpoint(
        &self,
        host: &mut netlink::Netlink,
        inside: &mut netlink::Netlink,
        ns: &netns::NetNs,
        ep: &Endpoint,
        net: &NetworkRecord,
        routes: Routes,
    ) -> Result<bool> {
        if let Some(kind) = net.sub_interface() {
            self.attach_sub_interface(host, inside, ns, ep, net, kind, routes)?;
            return Ok(false);
        }
        let (bridge, made) = self.bring_up(net, host)?;
        let host_name = host_veth_name(&ep.container_id, &net.id);
        let inner = format!("eth{}", ep.index);
        let mtu = port_mtu(&net.bridge, net.link_mtu());
        let create = |host: &mut netlink::Netlink| {
            host.create_veth(&host_name, &inner, ns.file(), bridge, Some(ep.mac), mtu)
        };
        match create(host) {
            // The host end of an earlier start whose namespace is still
            // being dismantled by the kernel.
            Err(Error::Kernel { errno, .. }) if errno == libc::EEXIST => {
                host.delete_link_by_name(&host_name)?;
                create(host)?;
            }
            r => r?,
        }
        let link = inside
            .link_by_name(&inner)?
            .ok_or_else(|| Error::Netlink(format!("{inner} missing in the container")))?;
        inside.add_address(link.index, ep.ip, net.subnet.prefix_len())?;
        let v6 = net.ipv6.zip(ep.ip6);
        if let Some((v6, ip6)) = v6 {
            inside.add_address6(link.index, ip6, v6.subnet.prefix_len())?;
        }
        inside.set_up(link.index)?;
        self.add_default_routes(inside, link.index, ep, net, routes)?;
        Ok(made)
    }

    /// The default routes `routes` asks for through `ep`'s link `index`
    /// in the container: IPv4 via the network's gateway (through the link
    /// itself for ipvlan l3/l3s: the parent's host routes), IPv6 via its
    /// IPv6 gateway when the endpoint has an IPv6 address.
    fn add_default_routes(
        &self,
        inside: &mut netlink::Netlink,
        index: u32,
        ep: &Endpoint,
        net: &NetworkRecord,
        routes: Routes,
    ) -> Result<()> {
        // (a bridge's routes carry its MTU; a sub-interface's is the link's)
        let mtu = if net.is_bridge() {
            net.route_mtu()
        } else {
            None
        };
        if routes.v4 {
            match net.sub_interface() {
                Some(netlink::SubInterface::Ipvlan(
                    netlink::IpvlanMode::L3 | netlink::IpvlanMode::L3s,
                    _,
                )) => inside.add_default_route_dev(index)?,
                Some(_) => inside.add_default_route(net.gateway, None)?,
                None => inside.add_default_route(self.route_gateway(net), mtu)?,
            }
        }
        if let Some(v6) = net.ipv6.filter(|_| routes.v6 && ep.ip6.is_some()) {
            match net.sub_interface() {
                Some(netlink::SubInterface::Ipvlan(
                    netlink::IpvlanMode::L3 | netlink::IpvlanMode::L3s,
                    _,
                )) => inside.add_default_route6_dev(index)?,
                _ => inside.add_default_route6(v6.gateway, mtu)?,
            }
        }
        Ok(())
    }

    /// Which default routes endpoint `ep` of `net` gives a container whose
    /// other endpoints are `others`: those of a family no other routed
    /// network gives (the first routed network's, as at start).
    fn routes_missing(
        networks: &[NetworkRecord],
        others: &[&Endpoint],
        ep: &Endpoint,
        net: &NetworkRecord,
    ) -> Routes {
        let routed = |v6: bool| {
            others.iter().any(|e| {
                networks.iter().any(|n| {
                    n.id == e.network_id
                        && n.routes_out()
                        && (!v6 || (n.ipv6.is_some() && e.ip6.is_some()))
                })
            })
        };
        Routes {
            v4: net.routes_out() && !routed(false),
            v6: net.routes_out() && net.ipv6.is_some() && ep.ip6.is_some() && !routed(true),
        }
    }

    /// A macvlan/ipvlan sub-interface of the network's parent for `ep`,
    /// born in the container's namespace as `ethN` (a macvlan with the
    /// endpoint's MAC; an ipvlan shares the parent's), with the address
    /// and, as `routes` asks, the default routes: via the gateway, or
    /// through the link itself for ipvlan l3/l3s (the parent's host
    /// routes); on a macvlan/ipvlan network with IPv6 also its IPv6
    /// address and route via the IPv6 gateway (the LAN's router), or
    /// through the link for ipvlan l3/l3s.
    #[allow(clippy::too_many_arguments)]
    fn attach_sub_interface(
        &self,
        host: &mut netlink::Netlink,
        inside: &mut netlink::Netlink,
        ns: &netns::NetNs,
        ep: &Endpoint,
        net: &NetworkRecord,
        kind: netlink::SubInterface,
        routes: Routes,
    ) -> Result<()> {
        let parent_name = net
            .parent()
            .ok_or_else(|| Error::Invalid(format!("network {} has no parent", net.name)))?;
        let parent = match host.link_by_name(parent_name)? {
            Some(l) => l,
            None => {
                // After a reboot: the parent berth made is made again.
                if net.created_parent.as_deref() == Some(parent_name) {
                    let _host_lock = self.host_lock()?;
                    if host.link_by_name(parent_name)?.is_none() {
                        if net.options.contains_key("parent") {
                            let (base, vid) = vlan_of(parent_name)?;
                            if let Some(b) = host.link_by_name(base)? {
                                host.create_vlan(parent_name, b.index, vid)?;
                            }
                        } else {
                            host.create_dummy(parent_name)?;
                        }
                    }
                }
                host.link_by_name(parent_name)?.ok_or_else(|| {
                    Error::NotFound(format!(
                        "network {}: parent interface {parent_name} not found on the host",
                        net.name
                    ))
                })?
            }
        };
        if net.wants_host_shim() && host.link_by_name(&host_shim_name(&net.id))?.is_none() {
            // After a reboot: the host's shim is made again.
            let _host_lock = self.host_lock()?;
            if host.link_by_name(&host_shim_name(&net.id))?.is_none() {
                make_host_shim(net, host)?;
            }
        }
        let inner = format!("eth{}", ep.index);
        let mac = match kind {
            netlink::SubInterface::Macvlan(_) => Some(ep.mac),
            netlink::SubInterface::Ipvlan(..) => None,
        };
        host.create_sub_interface(&kind, &inner, parent.index, ns.file(), mac, net.mtu)?;
        let link = inside
            .link_by_name(&inner)?
            .ok_or_else(|| Error::Netlink(format!("{inner} missing in the container")))?;
        // The previous holder of this address (and so of this MAC) may be
        // a sub-interface in a namespace the kernel is still dismantling
        // (a `run --rm` right after another): the parent refuses a second
        // one with the same MAC (macvlan, at up) or address (ipvlan) until
        // it is gone.
        while_busy(|| inside.add_address(link.index, ep.ip, net.subnet.prefix_len()))?;
        if let Some((v6, ip6)) = net.ipv6.zip(ep.ip6) {
            while_busy(|| inside.add_address6(link.index, ip6, v6.subnet.prefix_len()))?;
        }
        while_busy(|| inside.set_up(link.index))?;
        self.add_default_routes(inside, link.index, ep, net, routes)
    }

    /// `network connect` of a running container: its new endpoint now,
    /// with the default routes the container has none of (an IPv4 one
    /// when it was on internal networks only, an IPv6 one when this is
    /// its first network with IPv6): what its next start would give it.
    /// (Docker 20.10 moves the default route to the best network by its
    /// own order, dual-stack ones first, then by name.)
    pub fn attach_running(&mut self, container_id: &str, net: &NetworkRecord) -> Result<()> {
        let ns = netns::open(&self.netns_path(container_id))?;
        let endpoints = self.db.endpoints_of_container(container_id)?;
        let ep = endpoints
            .iter()
            .find(|e| e.network_id == net.id)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("no endpoint on {}", net.name)))?;
        let others: Vec<&Endpoint> = endpoints
            .iter()
            .filter(|e| e.network_id != net.id)
            .collect();
        let routes = Self::routes_missing(&self.db.networks()?, &others, &ep, net);
        let mut host = netlink::Netlink::open()?;
        let mut inside = ns.netlink()?;
        if self.attach_endpoint(&mut host, &mut inside, &ns, &ep, net, routes)? {
            self.reconcile_rules()?;
        }
        Ok(())
    }

    /// The container's published ports to forward in user space (the
    /// host's IPv6 loopback, see [`ports::loopback_forwards`]), to its
    /// address on its publishing network ([`db::publishing_endpoint`]).
    pub fn loopback_forwards(&self, container_id: &str) -> Result<Vec<berth_forward::Forward>> {
        let bindings = self.db.ports_of(container_id)?;
        if bindings.is_empty() {
            return Ok(Vec::new());
        }
        let endpoints = self.db.endpoints_of_container(container_id)?;
        let Some(ep) = db::publishing_endpoint(&endpoints) else {
            return Ok(Vec::new());
        };
        Ok(ports::loopback_forwards(&bindings, ep.ip, ep.ip6))
    }

    /// After `network connect`/`disconnect` of a container: its published
    /// ports follow its publishing network (the DNAT rules are rewritten).
    /// Whether it has any.
    pub fn republish(&self, container_id: &str) -> Result<bool> {
        if self.db.ports_of(container_id)?.is_empty() {
            return Ok(false);
        }
        self.reconcile_rules()?;
        Ok(true)
    }

    /// Where the pid of container `container_id`'s pasta is kept.
    pub fn pasta_pidfile(&self, container_id: &str) -> PathBuf {
        self.run_dir
            .join("pasta")
            .join(format!("{container_id}.pid"))
    }

    /// The API socket of container `container_id`'s slirp4netns (short:
    /// a socket's path has at most 107 bytes).
    fn slirp_api(&self, container_id: &str) -> PathBuf {
        self.run_dir.join("pasta").join(format!(
            "{}.sock",
            &container_id[..12.min(container_id.len())]
        ))
    }

    /// Rootless: a fresh namespace for the container joined to the host
    /// by pasta (see [`pasta`]), which forwards `publish` (host ports
    /// checked and recorded as root's are, so `port`, `ps` and `inspect`
    /// show them). pasta missing is one line, before anything is made.
    pub fn setup_pasta(&mut self, container_id: &str, publish: &[PortSpec]) -> Result<Sandbox> {
        // (slirp4netns when pasta is not installed)
        let backend = slirp::Backend::find()?;
        let path = self.netns_path(container_id);
        netns::create_fresh(&path)?;
        let made = (|| {
            let bindings = if publish.is_empty() {
                Vec::new()
            } else {
                let _l = self.root_lock()?;
                for p in publish {
                    if let Some(port) = p.host_port {
                        check_host_port(p.proto, p.host_ip, port)?;
                    }
                }
                let wanted: Vec<_> = publish
                    .iter()
                    .map(|p| (p.host_ip, p.host_port, p.container_port, p.proto))
                    .collect();
                self.db
                    .bind_ports(container_id, &wanted, &mut |proto, ip, taken| {
                        free_host_port(proto, ip, taken)
                    })?
            };
            let pidfile = self.pasta_pidfile(container_id);
            match &backend {
                slirp::Backend::Pasta(exe) => {
                    pasta::start(exe, &path, &pidfile, &bindings, self.default_ipv6())?
                }
                slirp::Backend::Slirp4netns(exe) => {
                    let api = self.slirp_api(container_id);
                    slirp::start(exe, &path, &pidfile, &api, &bindings)?
                }
            };
            Ok(bindings)
        })();
        match made {
            Ok(ports) => Ok(Sandbox { netns: path, ports }),
            Err(e) => {
                let _ = self.teardown_pasta(container_id);
                Err(e)
            }
        }
    }

    /// Rootless, a container on a user network: the host side of
    /// `publish`, checked in this thread's namespace (the host's) before
    /// [`Manager::setup`] binds them in the rootless network namespace:
    /// each host port free on the host, one picked for those without.
    pub fn rootless_host_ports(&self, publish: &[PortSpec]) -> Result<Vec<PortSpec>> {
        let mut out = Vec::new();
        for p in publish {
            let port = match p.host_port {
                Some(port) => {
                    check_host_port(p.proto, p.host_ip, port)?;
                    port
                }
                None => free_host_port(p.proto, p.host_ip, &|port| {
                    out.iter()
                        .any(|o: &PortSpec| o.proto == p.proto && o.host_port == Some(port))
                })?,
            };
            out.push(PortSpec {
                host_port: Some(port),
                ..*p
            });
        }
        Ok(out)
    }

    /// Rootless, a container on a user network: a pasta forwarding its
    /// published `bindings` from the host into the rootless network
    /// namespace `netns` (see [`pasta::forwarder_args`]), its pid in the
    /// container's pasta pid file. None without bindings.
    pub fn start_port_forwarder(
        &self,
        container_id: &str,
        netns: &Path,
        bindings: &[PortBinding],
    ) -> Result<()> {
        if bindings.is_empty() {
            return Ok(());
        }
        let exe = pasta::find()?;
        let pidfile = self.pasta_pidfile(container_id);
        let ifname = format!("bp{}", &container_id[..12.min(container_id.len())]);
        let args = pasta::forwarder_args(netns, &pidfile, &ifname, bindings);
        pasta::start_with(&exe, netns, &pidfile, args).map(drop)
    }

    /// Ends the port forwarder [`Manager::start_port_forwarder`] started
    /// (none is fine).
    pub fn stop_port_forwarder(&self, container_id: &str, netns: &Path) {
        pasta::stop(&self.pasta_pidfile(container_id), netns);
    }

    /// At stop of a rootless container on the default network: its port
    /// records, its namespace and its pasta go.
    pub fn teardown_pasta(&mut self, container_id: &str) -> Result<()> {
        let unbound = self.db.unbind_ports(container_id).map(drop);
        let path = self.netns_path(container_id);
        let removed = netns::remove(&path);
        pasta::stop(&self.pasta_pidfile(container_id), &path);
        let _ = std::fs::remove_file(self.slirp_api(container_id));
        unbound.and(removed)
    }

    /// At stop: the published ports and the namespace (with the veth
    /// pairs) go. Leases stay (the address is the container's until
    /// it is removed).
    pub fn teardown(&mut self, container_id: &str) -> Result<()> {
        let mut first_err = None;
        match self.db.unbind_ports(container_id) {
            Ok(0) => {}
            Ok(_) => {
                if let Err(e) = self.reconcile_rules() {
                    first_err.get_or_insert(e);
                }
            }
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
        // The veth pairs are not deleted one by one: an RTM_DELLINK of a
        // veth waits for an RCU grace period (~25 ms here). Unmounting the
        // namespace lets the kernel dismantle it, and its veths with it, in
        // the background once the container's processes are gone.
        if let Err(e) = netns::remove(&self.netns_path(container_id)) {
            first_err.get_or_insert(e);
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// The option asking for a host shim on a macvlan network.
pub const HOST_SHIM_OPTION: &str = "berth.macvlan_host_shim";

/// The auxiliary address the host shim takes.
const HOST_SHIM_AUX: &str = "berth-host-shim";

/// The host shim of network `id`: `bms-` and 11 characters of the ID.
fn host_shim_name(id: &str) -> String {
    format!("bms-{}", &id[..11.min(id.len())])
}

/// Checks a host shim is possible (a macvlan network in bridge mode: the
/// other modes keep siblings apart) and reserves its address: the highest
/// of the subnet that is not the gateway, an auxiliary address or in the
/// range containers are given.
fn prepare_host_shim(rec: &mut NetworkRecord) -> Result<()> {
    use netlink::{MacvlanMode, SubInterface};
    if rec.sub_interface() != Some(SubInterface::Macvlan(MacvlanMode::Bridge))
        || rec.created_parent.is_some() && !rec.options.contains_key("parent")
    {
        return Err(Error::Invalid(format!(
            "{HOST_SHIM_OPTION} needs a macvlan network in bridge mode on a parent"
        )));
    }
    let hosts: Vec<Ipv4Addr> = rec.subnet.hosts().collect();
    let free = hosts.iter().rev().find(|a| {
        **a != rec.gateway
            && !rec.aux_addresses.values().any(|x| x == *a)
            && !rec.ip_range.is_some_and(|r| r.contains(*a))
    });
    let addr = free.ok_or_else(|| {
        Error::Conflict(format!(
            "no address of {} is left for the host shim",
            rec.subnet
        ))
    })?;
    rec.aux_addresses.insert(HOST_SHIM_AUX.into(), *addr);
    Ok(())
}

/// The host shim: a bridge-mode macvlan of the parent in the host's
/// namespace with its reserved address (/32) and a route to the
/// containers' range (or the subnet) through it.
fn make_host_shim(rec: &NetworkRecord, host: &mut netlink::Netlink) -> Result<()> {
    let name = host_shim_name(&rec.id);
    let parent = rec
        .parent()
        .and_then(|p| host.link_by_name(p).transpose())
        .transpose()?
        .ok_or_else(|| Error::NotFound(format!("network {}: no parent", rec.name)))?;
    let here = File::open("/proc/thread-self/ns/net")
        .map_err(|e| Error::Io("open /proc/thread-self/ns/net".into(), e))?;
    let kind = netlink::SubInterface::Macvlan(netlink::MacvlanMode::Bridge);
    host.create_sub_interface(&kind, &name, parent.index, &here, None, rec.mtu)?;
    let link = host
        .link_by_name(&name)?
        .ok_or_else(|| Error::Netlink(format!("{name} vanished")))?;
    let addr = rec
        .aux_addresses
        .get(HOST_SHIM_AUX)
        .copied()
        .ok_or_else(|| Error::Invalid("the host shim has no address".into()))?;
    host.add_address(link.index, addr, 32)?;
    host.set_up(link.index)?;
    let dst = rec.ip_range.unwrap_or(rec.subnet);
    match host.add_route_dev(dst.network(), dst.prefix_len(), link.index) {
        Err(Error::Kernel { errno, .. }) if errno == libc::EEXIST => Err(Error::Conflict(format!(
            "{HOST_SHIM_OPTION}: the host has a route to {dst} already (give the containers an --ip-range of their own)"
        ))),
        r => r,
    }
}

/// Runs `f` again while it fails with EADDRINUSE, for up to 5 s, every
/// millisecond: the previous holder of the MAC or address goes with its
/// namespace, which the kernel dismantles a few RCU grace periods after
/// the unmount (a `run --rm` right after another waits for it; a coarser
/// step would add up to its length to each such wait). A try is one
/// netlink request.
fn while_busy(mut f: impl FnMut() -> Result<()>) -> Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match f() {
            Err(Error::Kernel { errno, .. })
                if errno == libc::EADDRINUSE && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(1))
            }
            r => return r,
        }
    }
}

/// `eth0.10` → (`eth0`, 10), in Docker's words when the name is not one.
fn vlan_of(name: &str) -> Result<(&str, u16)> {
    let bad = || {
        Error::NotFound(format!(
            "invalid subinterface vlan name {name}, example formatting is eth0.10"
        ))
    };
    let (base, vid) = name.rsplit_once('.').ok_or_else(bad)?;
    let vid: u16 = vid.parse().map_err(|_| bad())?;
    if base.is_empty() || !(1..=4094).contains(&vid) {
        return Err(bad());
    }
    Ok((base, vid))
}

/// The MTU of a new port of `bridge` that wants `want`: no larger than the
/// ports already there. A bridge whose containers were started with
/// smaller links (by an older berth, or before daemon.json's `mtu` was
/// dropped) keeps one MTU across its ports until they are gone: a larger
/// port would send them datagrams they must drop. (The kernel keeps the
/// bridge's own MTU at the smallest of its ports', 1500 with none.)
fn port_mtu(bridge: &str, want: u32) -> u32 {
    let sys = Path::new("/sys/class/net").join(bridge);
    let has_ports = std::fs::read_dir(sys.join("brif"))
        .map(|mut d| d.next().is_some())
        .unwrap_or(false);
    let current = std::fs::read_to_string(sys.join("mtu"))
        .ok()
        .and_then(|m| m.trim().parse::<u32>().ok());
    match current {
        Some(m) if has_ports => want.min(m),
        _ => want,
    }
}

/// A bridge name berth accepts: a Linux interface name (1 to 15 bytes,
/// not `.` or `..`) of letters, digits, `_`, `.` and `-` only, so that it
/// stands in nftables rules without quoting surprises.
fn check_bridge_name(b: &str) -> Result<()> {
    let fine = !b.is_empty()
        && b.len() <= 15
        && b != "."
        && b != ".."
        && b.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if fine {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "invalid bridge name {b:?}: 1 to 15 letters, digits, '_', '.' or '-'"
        )))
    }
}

/// The MTUs the kernel takes for a bridge and a veth.
pub const MTU_RANGE: std::ops::RangeInclusive<u32> = 68..=65535;

fn check_mtu(mtu: Option<u32>) -> Result<()> {
    match mtu {
        Some(m) if !MTU_RANGE.contains(&m) => Err(Error::Invalid(format!(
            "invalid MTU {m}: it must be between {} and {}",
            MTU_RANGE.start(),
            MTU_RANGE.end()
        ))),
        _ => Ok(()),
    }
}

/// The host end of a container's veth on a network: stable, so cleanup
/// can find it from the database alone.
pub fn host_veth_name(container_id: &str, network_id: &str) -> String {
    format!(
        "veth{}",
        &short_hash(&format!("{container_id}/{network_id}"))[..11]
    )
}

/// Binds `addr` with `proto` and lets go at once; returns the port bound
/// (the kernel's choice for port 0).
fn bind_for_a_moment(proto: Proto, addr: (IpAddr, u16)) -> std::io::Result<u16> {
    match proto {
        Proto::Tcp => std::net::TcpListener::bind(addr).and_then(|l| l.local_addr()),
        Proto::Udp => std::net::UdpSocket::bind(addr).and_then(|l| l.local_addr()),
    }
    .map(|a| a.port())
}

/// Docker refuses a host port that something on the host already listens
/// on; so does berth, by trying to bind it for a moment.
fn check_host_port(proto: Proto, ip: Option<IpAddr>, port: u16) -> Result<()> {
    let addr = (ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)), port);
    bind_for_a_moment(proto, addr).map(drop).map_err(|e| {
        Error::Conflict(format!(
            "Bind for {}:{port} failed: {}",
            addr.0,
            if e.kind() == std::io::ErrorKind::AddrInUse {
                "port is already allocated".to_owned()
            } else {
                e.to_string()
            }
        ))
    })
}

/// A free host port for `-P`/`-p CPORT`: one the kernel hands out as
/// ephemeral (so nothing listens on it) that no berth container holds.
fn free_host_port(proto: Proto, ip: Option<IpAddr>, taken: &dyn Fn(u16) -> bool) -> Result<u16> {
    let addr = (ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)), 0);
    for _ in 0..64 {
        let port = bind_for_a_moment(proto, addr)
            .map_err(|e| Error::Io("find a free host port".into(), e))?;
        if !taken(port) {
            return Ok(port);
        }
    }
    Err(Error::Conflict("no free host port found".into()))
}

fn random_id() -> Result<String> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| {
        Error::Io(
            "random network ID".into(),
            std::io::Error::other(e.to_string()),
        )
    })?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn driver_options_of_each_driver() {
        let mut o = NetworkOptions::default();
        o.apply_driver_options([
            ("com.docker.network.driver.mtu", "1400"),
            ("com.docker.network.bridge.name", "br-x"),
            ("com.docker.network.bridge.enable_ip_masquerade", "false"),
            ("com.docker.network.bridge.enable_icc", "0"),
            ("com.docker.network.bridge.host_binding_ipv4", "0.0.0.0"),
        ])
        .unwrap();
        assert_eq!(o.mtu, Some(1400));
        assert_eq!(o.bridge_name.as_deref(), Some("br-x"));
        assert!(o.no_masquerade && o.no_icc);
        assert!(o.options.is_empty());
        for (k, v, says) in [
            (
                "mtu",
                "big",
                "invalid network option mtu=big: the MTU must be a number",
            ),
            (
                "com.docker.network.bridge.enable_ip_masquerade",
                "perhaps",
                "expected true or false",
            ),
            (
                "com.docker.network.bridge.enable_icc",
                "x",
                "strconv.ParseBool",
            ),
            ("parent", "eth0", "unsupported network option \"parent\""),
            (
                "com.docker.network.bridge.host_binding_ipv4",
                "10.0.0.1",
                "unsupported",
            ),
        ] {
            let e = NetworkOptions::default()
                .apply_driver_options([(k, v)])
                .unwrap_err()
                .to_string();
            assert!(e.contains(says), "{k}={v}: {e}");
        }
        let mut m = NetworkOptions {
            driver: Some("macvlan".into()),
            ..Default::default()
        };
        m.apply_driver_options([("parent", "eth0"), ("mtu", "1400"), ("x", "y")])
            .unwrap();
        assert_eq!(m.mtu, Some(1400));
        assert_eq!(m.options.len(), 3);
    }

    #[test]
    fn pool_and_names() {
        let p = address_pool(&[]).unwrap();
        assert_eq!(p[0].to_string(), "172.17.0.0/16");
        assert_eq!(p[15].to_string(), "192.168.0.0/20");
        assert!(host_veth_name("a", "b").len() <= 15);
        assert!(overlaps(
            &"10.0.0.0/8".parse().unwrap(),
            &"10.1.0.0/16".parse().unwrap()
        ));
        assert!(!overlaps(
            &"10.0.0.0/16".parse().unwrap(),
            &"10.1.0.0/16".parse().unwrap()
        ));
    }
}
