//! Containers on networks: the `--network` modes, address leases at
//! create, namespaces, veth pairs and published ports at start, their
//! removal at stop, /etc/hosts and /etc/resolv.conf, `inspect`'s
//! NetworkSettings and the `network` commands. The kernel work is in the
//! `berth-network` crate.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use berth_network::{
    mac_text, Endpoint, Manager, NetworkOptions, NetworkRecord, PortBinding, PortSpec, Proto,
    DEFAULT_NETWORK,
};
use serde_json::json;

use crate::containers::{Container, ContainerId, State};
use crate::daemon_config::DaemonConfig;
use crate::options::HostConfig;
use crate::{ConflictKind, Engine, EngineError, Object, Result};

impl From<berth_network::Error> for EngineError {
    fn from(e: berth_network::Error) -> Self {
        match e {
            berth_network::Error::Invalid(m) => EngineError::Invalid(m),
            berth_network::Error::NotFound(m) => EngineError::not_found(Object::Network, m),
            berth_network::Error::Conflict(m) => {
                // Docker's words for a network with endpoints, and for a
                // taken name; the rest (an address, a port) is some other
                // conflict.
                let kind = if m.contains("has active endpoints") {
                    ConflictKind::InUse
                } else if m.contains("already exists") {
                    ConflictKind::NameInUse
                } else {
                    ConflictKind::Other
                };
                EngineError::conflict(kind, m)
            }
            other => EngineError::Other(other.to_string()),
        }
    }
}

/// A container's `--network`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NetMode {
    /// The default network (None) or a user network.
    Bridge(Option<String>),
    None,
    Host,
    Container(String),
}

impl NetMode {
    pub(crate) fn of(h: &HostConfig) -> NetMode {
        match h.network.as_str() {
            "" | "bridge" | "default" => NetMode::Bridge(None),
            "none" => NetMode::None,
            "host" => NetMode::Host,
            s => match s.strip_prefix("container:") {
                Some(c) => NetMode::Container(c.to_owned()),
                None => NetMode::Bridge(Some(s.to_owned())),
            },
        }
    }

    /// Docker's HostConfig.NetworkMode.
    fn docker_name(&self) -> String {
        match self {
            NetMode::Bridge(None) => "bridge".into(),
            NetMode::Bridge(Some(n)) => n.clone(),
            NetMode::None => "none".into(),
            NetMode::Host => "host".into(),
            NetMode::Container(c) => format!("container:{c}"),
        }
    }
}

const LOCALHOST_LINES: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n";

/// The host's resolv.conf split into nameservers, search and options.
struct Resolv {
    nameservers: Vec<String>,
    search: Vec<String>,
    options: Vec<String>,
}

fn host_resolv() -> Resolv {
    let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let mut r = Resolv {
        nameservers: Vec::new(),
        search: Vec::new(),
        options: Vec::new(),
    };
    for l in text.lines() {
        let mut w = l.split_whitespace();
        match w.next() {
            Some("nameserver") => r.nameservers.extend(w.next().map(str::to_owned)),
            Some("search") | Some("domain") => r.search = w.map(str::to_owned).collect(),
            Some("options") => r.options.extend(w.map(str::to_owned)),
            _ => {}
        }
    }
    r
}

/// A container's /etc/resolv.conf: the user's `--dns*`, else the host's
/// resolvers on a bridge (a loopback one left out, or replaced by
/// `loopback_via`: rootless, the address pasta or slirp4netns forwards to
/// the host's resolver), or berth's resolver on the gateway of the user
/// network `user_gateway` (Docker's embedded DNS).
fn resolv_conf(
    h: &HostConfig,
    mode: &NetMode,
    user_gateway: Option<Ipv4Addr>,
    loopback_via: Option<Ipv4Addr>,
) -> String {
    let host = host_resolv();
    let mut nameservers: Vec<String> = if !h.dns.is_empty() {
        h.dns.iter().map(|a| a.to_string()).collect()
    } else if *mode == NetMode::Host {
        host.nameservers.clone()
    } else if let Some(gw) = user_gateway {
        // berth's resolver for the network answers on its gateway.
        vec![gw.to_string()]
    } else {
        let ns: Vec<String> = host
            .nameservers
            .iter()
            .filter_map(|n| match (is_loopback(n), loopback_via) {
                (false, _) => Some(n.clone()),
                (true, Some(via)) => Some(via.to_string()),
                (true, None) => None,
            })
            .collect();
        if ns.is_empty() {
            // Docker's fallback when the host has only loopback resolvers.
            vec!["8.8.8.8".into(), "8.8.4.4".into()]
        } else {
            ns
        }
    };
    nameservers.dedup();
    let search = if h.dns_search.is_empty() {
        host.search
    } else {
        h.dns_search.iter().filter(|s| *s != ".").cloned().collect()
    };
    let mut options = if h.dns_options.is_empty() {
        host.options
    } else {
        h.dns_options.clone()
    };
    // Docker's embedded DNS comes with `ndots:0` (unless an ndots is
    // given): names without dots go to the resolver as they are, which
    // knows the network's containers by them.
    if user_gateway.is_some()
        && h.dns.is_empty()
        && !options.iter().any(|o| o.starts_with("ndots:"))
    {
        options.push("ndots:0".into());
    }
    let mut resolv = String::new();
    if !search.is_empty() {
        resolv.push_str(&format!("search {}\n", search.join(" ")));
    }
    for n in &nameservers {
        resolv.push_str(&format!("nameserver {n}\n"));
    }
    if !options.is_empty() {
        resolv.push_str(&format!("options {}\n", options.join(" ")));
    }
    resolv
}

fn is_loopback(ns: &str) -> bool {
    ns.parse::<IpAddr>().is_ok_and(|a| a.is_loopback())
}

/// The host's resolv.conf `text` as berth-dns in the rootless network
/// namespace uses it: each loopback `nameserver` becomes pasta's DNS
/// forwarding address (once), the other lines stay.
fn rootless_upstreams(text: &str) -> String {
    let forward = format!("nameserver {}", berth_network::pasta::DNS_FORWARD);
    let mut out = String::new();
    let mut forwarded = false;
    for l in text.lines() {
        let mut w = l.split_whitespace();
        if w.next() == Some("nameserver") && w.next().is_some_and(is_loopback) {
            if !forwarded {
                out.push_str(&forward);
                out.push('\n');
                forwarded = true;
            }
            continue;
        }
        out.push_str(l);
        out.push('\n');
    }
    out
}

impl Engine {
    /// berth-dns's records file and pid file (one resolver per root).
    fn dns_files(&self) -> (std::path::PathBuf, std::path::PathBuf) {
        let dir = self.run.join("dns");
        (dir.join("records"), dir.join("dns.pid"))
    }

    /// Rewrites the resolver's records from the database — a `listen` line
    /// per user network (on its gateway), a `host` line per running
    /// container on one (its name first, then its aliases and short ID) —
    /// and makes berth-dns re-read them. `start` lets it start berth-dns
    /// when a container needs it (only `berth` commands do: a daemon started
    /// by a monitor's exit command would become the monitor's child); with
    /// no container left on a user network it is stopped.
    fn dns_refresh(&self, m: &Manager, start: bool) -> Result<()> {
        let (records, pid) = self.dns_files();
        if !start && !records.exists() {
            // No resolver runs for this root (it exists only with its
            // records): nothing to update, and nothing to start here.
            return Ok(());
        }
        let nets: Vec<NetworkRecord> = m
            .db()
            .networks()?
            .into_iter()
            // (macvlan/ipvlan containers cannot reach the host: their
            // names go into their /etc/hosts, see `sync_peer_hosts`)
            .filter(|n| n.name != DEFAULT_NETWORK && n.is_bridge())
            .collect();
        let dns_err = |e: berth_dns::RecordsError| EngineError::Other(format!("dns: {e}"));
        let mut file = berth_dns::RecordsFile::new();
        let mut hosts = 0;
        for n in &nets {
            file.listen(&n.name, n.gateway).map_err(dns_err)?;
            for ep in m.db().endpoints_of_network(&n.id)? {
                if !berth_network::netns::path_for(&self.run, &ep.container_id).exists() {
                    continue;
                }
                let Ok(c) = self.containers.resolve(&ep.container_id) else {
                    continue;
                };
                file.host(&n.name, ep.ip, &c.name, &ep.aliases)
                    .map_err(dns_err)?;
                // (its AAAA records on a network with IPv6)
                if let Some(ip6) = ep.ip6 {
                    file.host(&n.name, ip6, &c.name, &ep.aliases)
                        .map_err(dns_err)?;
                }
                hosts += 1;
            }
        }
        let daemon_err = |e: berth_dns::DaemonError| {
            EngineError::Other(format!("the network's DNS resolver: {e}"))
        };
        if hosts == 0 {
            berth_dns::stop(&pid).map_err(daemon_err)?;
            let _ = std::fs::remove_file(&records);
            return Ok(());
        }
        if let Some(dir) = records.parent() {
            crate::create_private_dir_all(dir)?;
        }
        file.write(&records).map_err(dns_err)?;
        let upstreams = self.dns_upstreams()?;
        if berth_dns::running(&pid).is_some() {
            berth_dns::reload(&pid).map_err(daemon_err)?;
        } else if start {
            let bin = crate::binaries::companion_binary("BERTH_DNS", "berth-dns");
            berth_dns::ensure_running(&bin, &records, &upstreams, &pid).map_err(daemon_err)?;
        }
        Ok(())
    }

    /// Rootless, the default network: the address through which its pasta
    /// (or slirp4netns) forwards DNS to the host's resolver, which a
    /// loopback resolver of the host's becomes in the container's
    /// resolv.conf (it is the container's own loopback there).
    fn loopback_dns(&self, mode: &NetMode) -> Option<Ipv4Addr> {
        if !self.rootless || *mode != NetMode::Bridge(None) {
            return None;
        }
        berth_network::slirp::Backend::find()
            .ok()
            .map(|b| b.dns_forward())
    }

    /// The resolv.conf whose nameservers berth-dns forwards to: the host's;
    /// rootless, where berth-dns runs in the rootless network namespace, a
    /// copy of it (`RUN/dns/resolv.conf`, rewritten at each refresh) whose
    /// loopback resolvers, unreachable from that namespace, are replaced by
    /// the address its pasta forwards to the host's resolver (as podman's
    /// rootless namespace does).
    fn dns_upstreams(&self) -> Result<std::path::PathBuf> {
        let host = std::path::Path::new("/etc/resolv.conf");
        if !self.rootless {
            return Ok(host.to_path_buf());
        }
        let text = std::fs::read_to_string(host).unwrap_or_default();
        let copy = rootless_upstreams(&text);
        let path = self.run.join("dns").join("resolv.conf");
        if std::fs::read_to_string(&path).ok().as_deref() != Some(copy.as_str()) {
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, &copy)
                .and_then(|()| std::fs::rename(&tmp, &path))
                .map_err(|e| EngineError::Other(format!("write {}: {e}", path.display())))?;
        }
        Ok(path)
    }

    /// Name resolution on macvlan/ipvlan networks: their containers cannot
    /// reach berth-dns on the host (a macvlan's parent does not hand its
    /// children's traffic to the host), so each running container of such
    /// a network that `container_id` is (or was) on gets, below a marker
    /// line of its /etc/hosts, a line per other running container of its
    /// macvlan/ipvlan networks: address, name, aliases, short ID. Best
    /// effort: a container whose file cannot be rewritten keeps the old.
    /// `container_id` None: every such container (after a disconnect).
    fn sync_peer_hosts(&self, m: &Manager, container_id: Option<&str>) {
        let Ok(nets) = m.db().networks() else { return };
        let sub: Vec<&NetworkRecord> = nets.iter().filter(|n| !n.is_bridge()).collect();
        if sub.is_empty() {
            return;
        }
        let running = |id: &str| berth_network::netns::path_for(&self.run, id).exists();
        // Every running container on those networks, with its endpoints there.
        let mut members: BTreeMap<String, Vec<Endpoint>> = BTreeMap::new();
        for n in &sub {
            for ep in m.db().endpoints_of_network(&n.id).unwrap_or_default() {
                if running(&ep.container_id) || Some(ep.container_id.as_str()) == container_id {
                    members.entry(ep.container_id.clone()).or_default().push(ep);
                }
            }
        }
        if container_id.is_some_and(|c| !members.contains_key(c)) {
            return;
        }
        let names: BTreeMap<&String, String> = members
            .keys()
            .filter_map(|id| Some((id, self.containers.resolve(id).ok()?.name)))
            .collect();
        for (id, eps) in &members {
            if !running(id) {
                continue;
            }
            let mut lines = String::new();
            for (other, oeps) in &members {
                if other == id || !running(other) {
                    continue;
                }
                for oep in oeps {
                    if !eps.iter().any(|e| e.network_id == oep.network_id) {
                        continue;
                    }
                    let mut words = vec![names.get(other).cloned().unwrap_or_default()];
                    words.extend(oep.aliases.iter().cloned());
                    words.retain(|w| !w.is_empty());
                    words.dedup();
                    lines.push_str(&format!("{}\t{}\n", oep.ip, words.join(" ")));
                    // (and its IPv6 address: AAAA by name, as on bridges)
                    if let Some(ip6) = oep.ip6 {
                        lines.push_str(&format!("{ip6}\t{}\n", words.join(" ")));
                    }
                }
            }
            let path = self
                .layers
                .root()
                .join("containers")
                .join(id)
                .join("init")
                .join("etc")
                .join("hosts");
            let Ok(old) = std::fs::read_to_string(&path) else {
                continue;
            };
            let mut text = match old.find(PEER_HOSTS_MARK) {
                Some(i) => old[..i].to_owned(),
                None => old,
            };
            if !lines.is_empty() {
                text.push_str(PEER_HOSTS_MARK);
                text.push_str(&lines);
            }
            let _ = self.layers.rewrite_init_file(id, "hosts", &text);
        }
    }

    /// Adds (`add`) or removes the lines of endpoint `ep`'s addresses for
    /// the container's own name in its /etc/hosts: added after its other
    /// own lines (before the peers' section). Best effort, as
    /// [`sync_peer_hosts`](Self::sync_peer_hosts).
    fn edit_own_hosts(&self, c: &Container, ep: &Endpoint, add: bool) {
        let path = self
            .layers
            .root()
            .join("containers")
            .join(c.id.as_str())
            .join("init")
            .join("etc")
            .join("hosts");
        let Ok(old) = std::fs::read_to_string(&path) else {
            return;
        };
        let hostname = &c.config.hostname;
        let lines = own_hosts_lines(ep, hostname);
        let text = if add {
            let own = format!("\t{hostname}\n");
            let head = old.find(PEER_HOSTS_MARK).unwrap_or(old.len());
            // After the last own line, else after the localhost lines.
            let at = old[..head]
                .match_indices(&own)
                .last()
                .map(|(i, m)| i + m.len())
                .or_else(|| {
                    old.starts_with(LOCALHOST_LINES)
                        .then_some(LOCALHOST_LINES.len())
                })
                .unwrap_or(head);
            format!("{}{lines}{}", &old[..at], &old[at..])
        } else {
            let mine: Vec<&str> = lines.lines().collect();
            let mut kept = String::new();
            for l in old.split_inclusive('\n') {
                if !mine.contains(&l.trim_end_matches('\n')) {
                    kept.push_str(l);
                }
            }
            kept
        };
        if text != old {
            let _ = self.layers.rewrite_init_file(c.id.as_str(), "hosts", &text);
        }
    }

    /// Where container `id`'s network namespace is kept.
    fn netns_path(&self, id: &ContainerId) -> std::path::PathBuf {
        berth_network::netns::path_for(&self.run, id.as_str())
    }

    /// Runs `f` with this root's network manager (opened on first use: a
    /// container that never touches networking never opens it).
    pub(crate) fn with_net<T>(&self, f: impl FnOnce(&mut Manager) -> Result<T>) -> Result<T> {
        let mut guard = self
            .net
            .lock()
            .map_err(|_| EngineError::Other("network manager poisoned".into()))?;
        if guard.is_none() {
            let mut m = Manager::on(self.images.connection(), &self.root, &self.run)?;
            m.set_defaults(DaemonConfig::load()?.network_defaults());
            if self.rootless {
                m.set_rootless();
            }
            *guard = Some(m);
        }
        match guard.as_mut() {
            Some(m) => f(m),
            None => Err(EngineError::Other("network manager unavailable".into())),
        }
    }

    /// Runs `f` with the network manager where this root's bridges are:
    /// on the host, or rootless in the user's rootless network namespace
    /// (made with its pasta on first use, see
    /// `berth_network::rootless_netns`), on a thread of this process that
    /// entered it (and so do the nft, berth-dns… that `f` starts).
    fn with_bridges<T: Send>(&self, f: impl FnOnce(&mut Manager) -> Result<T> + Send) -> Result<T> {
        if !self.rootless {
            return self.with_net(f);
        }
        let (path, made) = berth_network::rootless_netns::ensure(&self.run)?;
        if made {
            // A resolver left by an earlier namespace (its pause process
            // gone) listens in none of this one's bridges.
            let _ = berth_dns::stop(&self.dns_files().1);
        }
        berth_network::netns::run_in(&path, || self.with_net(f))
    }

    /// Rootless: whether the user has networks of its own (bridges in the
    /// rootless network namespace); root: always (the default network).
    fn has_bridges(&self) -> Result<bool> {
        if !self.rootless {
            return Ok(true);
        }
        self.with_net(|m| Ok(!m.db().networks()?.is_empty()))
    }

    fn network_of_mode(&self, m: &mut Manager, mode: &NetMode) -> Result<Option<NetworkRecord>> {
        match mode {
            NetMode::Bridge(None) => Ok(Some(m.ensure_default()?)),
            NetMode::Bridge(Some(n)) => Ok(Some(m.db().resolve(n).map_err(|e| match e {
                berth_network::Error::NotFound(_) => {
                    EngineError::not_found(Object::Network, format!("network {n} not found"))
                }
                e => e.into(),
            })?)),
            _ => Ok(None),
        }
    }

    /// `--link`s of a container to be created as `linker`: each linked
    /// container must exist and run. Returns the /etc/hosts lines (the
    /// linked container's address, then the alias, its hostname and its
    /// name) and, on the default bridge, Docker's legacy link variables
    /// (`ALIAS_NAME`, `ALIAS_PORT_5432_TCP_ADDR`…, `ALIAS_ENV_…`).
    pub(crate) fn links_for_create(
        &self,
        h: &HostConfig,
        linker: &str,
    ) -> Result<(Vec<String>, Vec<String>)> {
        if h.links.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let mode = NetMode::of(h);
        match mode {
            NetMode::Host => {
                return Err(EngineError::Invalid(
                    "conflicting options: host type networking can't be used with links".into(),
                ))
            }
            NetMode::Container(_) => {
                return Err(EngineError::Invalid(
                    "conflicting options: container type network can't be used with links".into(),
                ))
            }
            _ => {}
        }
        let linked = h
            .links
            .iter()
            .map(|(name, alias)| Ok((self.running_link(name, alias, linker)?, alias)))
            .collect::<Result<Vec<_>>>()?;
        // Each one's address on the linker's network, else its first one.
        let ips = self.with_net(|m| {
            let mine = self.network_of_mode(m, &mode)?.map(|n| n.id);
            linked
                .iter()
                .map(|(other, _)| {
                    let eps = m.db().endpoints_of_container(other.id.as_str())?;
                    Ok(eps
                        .iter()
                        .find(|e| Some(&e.network_id) == mine.as_ref())
                        .or(eps.first())
                        .map(|e| e.ip))
                })
                .collect::<Result<Vec<_>>>()
        })?;
        let mut hosts = Vec::new();
        let mut env = Vec::new();
        for ((other, alias), ip) in linked.iter().zip(ips) {
            let Some(ip) = ip else { continue };
            let mut names = vec![alias.as_str()];
            for n in [other.config.hostname.as_str(), other.name.as_str()] {
                if !names.contains(&n) {
                    names.push(n);
                }
            }
            hosts.push(format!("{ip}\t{}\n", names.join(" ")));
            if mode == NetMode::Bridge(None) {
                env.extend(link_env(
                    alias,
                    linker,
                    ip,
                    &self.exposed(other),
                    &other.config.env,
                ));
            }
        }
        Ok((hosts, env))
    }

    /// The container `name` linked as `alias`, which must be running.
    fn running_link(&self, name: &str, alias: &str, linker: &str) -> Result<Container> {
        let mut other = self.containers.resolve(name).map_err(|_| {
            EngineError::not_found(
                Object::Container,
                format!("could not get container for {name}"),
            )
        })?;
        self.reconcile(&mut other);
        if other.state != State::Running {
            return Err(EngineError::Invalid(format!(
                "Cannot link to a non running container: /{} AS /{linker}/{alias}",
                other.name
            )));
        }
        Ok(other)
    }

    /// At create: checks the mode's options, leases the address, and
    /// returns the container's /etc/hosts and /etc/resolv.conf.
    pub(crate) fn network_for_create(
        &self,
        id: &ContainerId,
        h: &HostConfig,
        hostname: &str,
        link_hosts: &[String],
    ) -> Result<(String, String)> {
        let mode = NetMode::of(h);
        let user_net = matches!(mode, NetMode::Bridge(Some(_)));
        if (h.ip.is_some() || h.ip6.is_some()) && !user_net {
            return Err(EngineError::Invalid(
                "user specified IP address is supported on user defined networks only".into(),
            ));
        }
        if !h.network_aliases.is_empty() && !user_net {
            return Err(EngineError::Invalid(
                "network-scoped alias is supported only for containers in user defined networks"
                    .into(),
            ));
        }
        if h.mac_address.is_some() && !matches!(mode, NetMode::Bridge(_)) {
            return Err(EngineError::Invalid(
                "conflicting options: mac-address and the network mode".into(),
            ));
        }
        if let NetMode::Container(x) = &mode {
            if !h.publish.is_empty() || h.publish_all {
                return Err(EngineError::Invalid(
                    "conflicting options: port publishing and the container type network mode"
                        .into(),
                ));
            }
            if !h.dns.is_empty() || !h.extra_hosts.is_empty() {
                return Err(EngineError::Invalid(
                    "conflicting options: dns and the network mode".into(),
                ));
            }
            // The other container's files: it shares its network.
            let other = self.containers.resolve(x)?;
            let init = self
                .layers
                .root()
                .join("containers")
                .join(other.id.as_str())
                .join("init")
                .join("etc");
            let read = |f: &str| std::fs::read_to_string(init.join(f)).unwrap_or_default();
            return Ok((read("hosts"), read("resolv.conf")));
        }
        let needs_gateway = h.extra_hosts.iter().any(|(_, ip)| ip == "host-gateway");
        let needs_db = needs_gateway || matches!(mode, NetMode::Bridge(_));
        let mut more_eps = Vec::new();
        let (endpoint, network, gateway) = if self.rootless && !user_net {
            // No bridge and no lease: pasta gives the default network's
            // container the host's address and gateway, the gateway being
            // the host's loopback from inside.
            let gateway = if needs_gateway {
                // (slirp4netns's gateway is the host's loopback: 10.0.2.2)
                let backend = berth_network::slirp::Backend::find().ok();
                let gw = match backend {
                    Some(b) if mode == NetMode::Bridge(None) => b.host_gateway(),
                    _ => berth_network::pasta::host_gateway(),
                };
                Some(gw.ok_or_else(|| {
                    EngineError::Invalid(
                        "host-gateway: the host has no IPv4 default route for pasta's gateway"
                            .into(),
                    )
                })?)
            } else {
                None
            };
            (None, None, gateway)
        } else if !needs_db {
            (None, None, None)
        } else {
            self.with_net(|m| {
                let net = self.network_of_mode(m, &mode)?;
                let gateway = match (&net, needs_gateway) {
                    (_, false) => None,
                    // (rootless: the rootless namespace's pasta maps the
                    // host's gateway to the host's loopback, as for the
                    // default network)
                    (_, true) if self.rootless => Some(
                        berth_network::pasta::host_gateway().ok_or_else(|| {
                            EngineError::Invalid(
                                "host-gateway: the host has no IPv4 default route for pasta's gateway"
                                    .into(),
                            )
                        })?,
                    ),
                    (Some(n), true) if n.name == DEFAULT_NETWORK => Some(n.gateway),
                    (_, true) => Some(m.ensure_default()?.gateway),
                };
                let ep = match &net {
                    Some(n) => {
                        // (the IPv6 loopback is forwarded in user space, to
                        // the IPv4 address on such a network, as Docker does)
                        let v6_only = |a: std::net::IpAddr| a.is_ipv6() && !a.is_loopback();
                        if n.ipv6.is_none() && h.publish.iter().any(|p| p.host_ip.is_some_and(v6_only)) {
                            return Err(EngineError::Invalid(format!(
                                "cannot publish a port on an IPv6 address: network {} has no IPv6 (create it with --ipv6)",
                                n.name
                            )));
                        }
                        let mut aliases = h.network_aliases.clone();
                        if user_net {
                            aliases.push(id.short().to_owned());
                        }
                        let mac = match &h.mac_address {
                            Some(t) => Some(berth_network::parse_unicast_mac(t)?),
                            None => None,
                        };
                        let want = berth_network::Want {
                            ip: h.ip,
                            ip6: h.ip6,
                        };
                        Some(m.connect(id.as_str(), n, want, mac, &aliases)?)
                    }
                    None => None,
                };
                // The other networks (Docker 25+), eth1… in order.
                for more in &h.more_networks {
                    let n = self
                        .network_of_mode(m, &NetMode::Bridge(Some(more.network.clone())))?
                        .ok_or_else(|| {
                            EngineError::Other(format!("network {} not found", more.network))
                        })?;
                    if n.name == DEFAULT_NETWORK {
                        return Err(EngineError::Invalid(
                            "conflicting options: cannot attach both user-defined and non-user-defined network-modes".into(),
                        ));
                    }
                    let mut aliases = more.aliases.clone();
                    aliases.push(id.short().to_owned());
                    let want = berth_network::Want {
                        ip: more.ip,
                        ip6: more.ip6,
                    };
                    let mac = match &more.mac_address {
                        Some(t) => Some(berth_network::parse_unicast_mac(t)?),
                        None => None,
                    };
                    more_eps.push(m.connect(id.as_str(), &n, want, mac, &aliases)?);
                }
                Ok((ep, net, gateway))
            })?
        };
        let mut hosts = if mode == NetMode::Host {
            std::fs::read_to_string("/etc/hosts").unwrap_or_else(|_| LOCALHOST_LINES.to_owned())
        } else {
            LOCALHOST_LINES.to_owned()
        };
        // Without an address (`none`, `host`) the hostname gets no line, as in Docker.
        // A line per network, in order (as Docker's file has).
        for ep in endpoint.iter().chain(&more_eps) {
            hosts.push_str(&own_hosts_lines(ep, hostname));
        }
        // Rootless, the default network: the address pasta will copy from
        // the host (slirp4netns's own), as Docker writes the container's.
        // (and the host's IPv6 address, which pasta copies too when the
        // default network has IPv6: daemon.json's `ipv6`)
        if self.rootless && mode == NetMode::Bridge(None) {
            let backend = berth_network::slirp::Backend::find().ok();
            if let Some(ip) = backend.as_ref().and_then(|b| b.container_address()) {
                hosts.push_str(&format!("{ip}\t{hostname}\n"));
            }
            let ipv6 = self.with_net(|m| Ok(m.default_ipv6())).unwrap_or(false);
            if let (Some(berth_network::slirp::Backend::Pasta(_)), true) = (backend, ipv6) {
                if let Some(((ip6, _), _)) = berth_network::pasta::host_ipv6() {
                    hosts.push_str(&format!("{ip6}\t{hostname}\n"));
                }
            }
        }
        for line in link_hosts {
            hosts.push_str(line);
        }
        for (name, ip) in &h.extra_hosts {
            let ip = if ip == "host-gateway" {
                gateway.map(|g| g.to_string()).unwrap_or_default()
            } else {
                ip.clone()
            };
            hosts.push_str(&format!("{ip}\t{name}\n"));
        }
        let user_gateway = network
            .as_ref()
            .filter(|n| user_net && n.is_bridge())
            .map(|n| n.gateway);
        let resolv = resolv_conf(h, &mode, user_gateway, self.loopback_dns(&mode));
        Ok((hosts, resolv))
    }

    /// At start: the namespace (and, on networks, the veth pairs and
    /// published ports). Returns the namespace path for the spec, None
    /// for the host's network.
    pub(crate) fn network_start(&self, c: &Container) -> Result<Option<String>> {
        for (name, alias) in &c.config.host.links {
            self.running_link(name, alias, &c.name)?;
        }
        match NetMode::of(&c.config.host) {
            NetMode::Host => {
                self.pseudo_network_event("connect", "host", c);
                Ok(None)
            }
            NetMode::Container(x) => {
                let other = self.containers.resolve(&x)?;
                if other.state != State::Running {
                    return Err(EngineError::conflict(
                        ConflictKind::NotRunning,
                        format!("cannot join network of a non running container: {x}"),
                    ));
                }
                let path = self.netns_path(&other.id);
                if path.exists() {
                    Ok(Some(path.to_string_lossy().into_owned()))
                } else {
                    // A container on the host's network or an older one:
                    // its init's namespace.
                    let pid = self.running_init_pid(&x)?;
                    Ok(Some(format!("/proc/{pid}/ns/net")))
                }
            }
            NetMode::None => {
                // A namespace with lo up; nothing in the database.
                let path = self.netns_path(&c.id);
                berth_network::netns::create_fresh(&path)?;
                self.pseudo_network_event("connect", "none", c);
                Ok(Some(path.to_string_lossy().into_owned()))
            }
            mode => {
                let mut publish: Vec<PortSpec> = Vec::new();
                if matches!(mode, NetMode::Bridge(_)) {
                    publish = c.config.host.publish.clone();
                    if c.config.host.publish_all {
                        for (port, proto) in self.exposed(c) {
                            if !publish
                                .iter()
                                .any(|p| p.container_port == port && p.proto == proto)
                            {
                                publish.push(PortSpec {
                                    host_ip: None,
                                    host_port: None,
                                    container_port: port,
                                    proto,
                                });
                            }
                        }
                    }
                }
                if self.rootless && mode == NetMode::Bridge(None) {
                    // The default network: pasta (or slirp4netns).
                    let sandbox = self.with_net(|m| Ok(m.setup_pasta(c.id.as_str(), &publish)?))?;
                    return Ok(Some(sandbox.netns.to_string_lossy().into_owned()));
                }
                let user_net = matches!(mode, NetMode::Bridge(Some(_)));
                // Rootless: the ports are the host's (checked here, in its
                // namespace), forwarded by a pasta into the rootless one.
                let forwarded = self.rootless && !publish.is_empty();
                if forwarded {
                    publish = self.with_net(|m| Ok(m.rootless_host_ports(&publish)?))?;
                }
                let sandbox = self.with_bridges(|m| {
                    let sandbox = m.setup(c.id.as_str(), &publish)?;
                    self.endpoint_events(m, c.id.as_str(), "connect");
                    if user_net || m.db().endpoints_of_container(c.id.as_str())?.len() > 1 {
                        if let Err(e) = self.dns_refresh(m, true) {
                            let _ = m.teardown(c.id.as_str());
                            return Err(e);
                        }
                        self.sync_peer_hosts(m, Some(c.id.as_str()));
                    }
                    Ok(sandbox)
                })?;
                if forwarded {
                    let ns = berth_network::rootless_netns::path(&self.run);
                    let started = self.with_net(|m| {
                        Ok(m.start_port_forwarder(c.id.as_str(), &ns, &sandbox.ports)?)
                    });
                    if let Err(e) = started {
                        let _ = self.with_bridges(|m| {
                            let _ = m.teardown(c.id.as_str());
                            self.dns_refresh(m, false)
                        });
                        return Err(e);
                    }
                }
                Ok(Some(sandbox.netns.to_string_lossy().into_owned()))
            }
        }
    }

    /// The container's published ports berth answers in user space (the
    /// host's IPv6 loopback, see berth_forward), once `network_start` has
    /// bound them: for its monitor, or for the thread beside a foreground
    /// run. None without published ports (no database read then).
    pub(crate) fn loopback_forwards(&self, c: &Container) -> Result<Vec<berth_forward::Forward>> {
        if !self.may_forward(c) {
            return Ok(Vec::new());
        }
        self.with_net(|m| Ok(m.loopback_forwards(c.id.as_str())?))
    }

    /// Whether container `c` may have [`loopback_forwards`](Self::loopback_forwards):
    /// published ports on bridge networks, as root.
    fn may_forward(&self, c: &Container) -> bool {
        let h = &c.config.host;
        // (rootless: pasta forwards every published port, IPv4 only)
        (h.publish_all || !h.publish.is_empty())
            && matches!(NetMode::of(h), NetMode::Bridge(_))
            && !self.rootless
    }

    /// Runs `f` (the foreground container) with the container's
    /// [`loopback_forwards`](Self::loopback_forwards) answered by a thread
    /// of this process, which ends with `f`. Without any, no thread. The
    /// thread follows `forwards` in the run directory (rewritten when a
    /// `network connect`/`disconnect` moves the published ports, see
    /// `tell_forwarders`), watched from before the forwards are read.
    pub(crate) fn forwarding_loopback<T>(
        &self,
        c: &Container,
        f: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        if !self.may_forward(c) {
            return f();
        }
        let watch = berth_forward::Watch::file(&self.bundle_dir(&c.id).join("forwards")).ok();
        let forwards = self.loopback_forwards(c)?;
        if forwards.is_empty() {
            return f();
        }
        let forwarder = berth_forward::Forwarder::bind(&forwards)
            .map_err(|e| EngineError::conflict(ConflictKind::Other, e.to_string()))?;
        let (stop_r, stop_w) =
            nix::unistd::pipe().map_err(|e| EngineError::Other(format!("pipe: {e}")))?;
        let thread = std::thread::Builder::new()
            .name("forward".into())
            .spawn(move || forwarder.serve_until(std::os::fd::AsFd::as_fd(&stop_r), watch))
            .map_err(|e| EngineError::Other(format!("forwarding thread: {e}")))?;
        let res = f();
        // The write end's close wakes the thread, which closes the
        // listeners as it ends.
        drop(stop_w);
        let _ = thread.join();
        res
    }

    /// The image's and `--expose`'s ports.
    fn exposed(&self, c: &Container) -> Vec<(u16, Proto)> {
        let mut out: Vec<(u16, Proto)> = c
            .config
            .exposed_ports
            .iter()
            .chain(c.config.host.expose.iter())
            .filter_map(|p| berth_network::parse_exposed(p).ok())
            .flatten()
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// At stop: the namespace, veth pairs and published ports go (errors
    /// are ignored: what is already gone is fine).
    pub(crate) fn network_stop(&self, c: &Container) {
        let id = &c.id;
        let ns = self.netns_path(id);
        match NetMode::of(&c.config.host) {
            NetMode::None => {
                // Only a namespace with lo: no database to open.
                if ns.exists() {
                    self.pseudo_network_event("disconnect", "none", c);
                }
                let _ = berth_network::netns::remove(&ns);
                return;
            }
            NetMode::Host => {
                if c.state == State::Running {
                    self.pseudo_network_event("disconnect", "host", c);
                }
                return;
            }
            NetMode::Bridge(None) if self.rootless => {
                let _ = self.with_net(|m| Ok(m.teardown_pasta(id.as_str())?));
                return;
            }
            NetMode::Bridge(Some(_)) if self.rootless => {
                // Its port forwarder (from the host into the rootless
                // namespace) first; a container that never started has
                // nothing in the rootless namespace to undo.
                let rootless_ns = berth_network::rootless_netns::path(&self.run);
                let _ = self.with_net(|m| {
                    m.stop_port_forwarder(id.as_str(), &rootless_ns);
                    Ok(())
                });
                if !ns.exists() {
                    return;
                }
            }
            _ => {}
        }
        let _ = self.with_bridges(|m| {
            if ns.exists() || !m.db().ports_of(id.as_str())?.is_empty() {
                if ns.exists() {
                    self.endpoint_events(m, id.as_str(), "disconnect");
                }
                let torn = m.teardown(id.as_str());
                self.dns_refresh(m, false)?;
                self.sync_peer_hosts(m, Some(id.as_str()));
                torn?;
            }
            Ok(())
        });
    }

    /// At removal: the address leases.
    pub(crate) fn network_release(&self, c: &Container) -> Result<()> {
        if matches!(
            NetMode::of(&c.config.host),
            NetMode::Host | NetMode::Container(_)
        ) {
            return Ok(());
        }
        self.network_stop(c);
        if NetMode::of(&c.config.host) == NetMode::None {
            return Ok(());
        }
        self.with_net(|m| Ok(m.release(c.id.as_str())?))
    }

    /// The host ports a running container's ports are published on.
    pub fn published_ports(&self, name: &str) -> Result<Vec<PortBinding>> {
        let c = self.container(name)?;
        if c.state != State::Running {
            return Ok(Vec::new());
        }
        self.with_net(|m| shown_bindings(m, c.id.as_str()))
    }

    /// `inspect`'s NetworkSettings and the network parts of HostConfig.
    pub(crate) fn network_inspect_into(&self, v: &mut serde_json::Value, c: &Container) {
        let mode = NetMode::of(&c.config.host);
        let h = &c.config.host;
        let running = c.state == State::Running;
        let (endpoints, networks, bindings, route_gateways) = match mode {
            NetMode::Bridge(_) => self
                .with_net(|m| {
                    let networks = m.db().networks()?;
                    // (daemon.json's `default-gateway` on the default network)
                    let route_gateways: Vec<Ipv4Addr> =
                        networks.iter().map(|n| m.route_gateway(n)).collect();
                    Ok((
                        m.db().endpoints_of_container(c.id.as_str())?,
                        networks,
                        if running {
                            shown_bindings(m, c.id.as_str())?
                        } else {
                            Vec::new()
                        },
                        route_gateways,
                    ))
                })
                .unwrap_or_default(),
            _ => Default::default(),
        };
        let mut ports = serde_json::Map::new();
        for (p, proto) in self.exposed(c) {
            ports.insert(format!("{p}/{proto}"), serde_json::Value::Null);
        }
        for p in &h.publish {
            ports
                .entry(format!("{}/{}", p.container_port, p.proto))
                .or_insert(serde_json::Value::Null);
        }
        for b in &bindings {
            let key = format!("{}/{}", b.container_port, b.proto);
            let entry = json!({"HostIp": b.host_ip_text(), "HostPort": b.host_port.to_string()});
            push_binding(&mut ports, key, entry);
        }
        let mut nets = serde_json::Map::new();
        let empty_ep = |name: &str| {
            json!({"IPAMConfig": null, "Links": null, "Aliases": null, "NetworkID": name,
                   "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0,
                   "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
                   "MacAddress": "", "DriverOpts": null})
        };
        let mut top = json!({"Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "MacAddress": ""});
        match &mode {
            NetMode::None => {
                nets.insert("none".into(), empty_ep("none"));
            }
            NetMode::Host => {
                nets.insert("host".into(), empty_ep("host"));
            }
            _ => {}
        }
        if self.rootless && mode == NetMode::Bridge(None) {
            // The default network (pasta's, or slirp4netns's): no bridge and
            // no lease, so what the running container's namespace has: the
            // host's address copied by pasta (slirp4netns's 10.0.2.100).
            let mut e = empty_ep(DEFAULT_NETWORK);
            let sandbox = self.netns_path(&c.id);
            let found = (running && sandbox.exists())
                .then(|| berth_network::pasta::addresses(&sandbox).ok())
                .flatten();
            if let Some(a) = found {
                let gateway = berth_network::slirp::Backend::find()
                    .ok()
                    .and_then(|b| b.host_gateway())
                    .map(|g| g.to_string())
                    .unwrap_or_default();
                let mac = a.mac.map(|m| mac_text(&m)).unwrap_or_default();
                if let Some((ip, prefix)) = a.ip {
                    e["IPAddress"] = json!(ip.to_string());
                    e["IPPrefixLen"] = json!(prefix);
                    e["Gateway"] = json!(gateway);
                    e["MacAddress"] = json!(mac);
                    top = json!({"Gateway": gateway, "IPAddress": ip.to_string(),
                                 "IPPrefixLen": prefix, "MacAddress": mac});
                }
                if let Some((ip6, prefix)) = a.ip6 {
                    // (pasta's IPv6 gateway is the host's)
                    let gateway6 = berth_network::pasta::host_ipv6()
                        .map(|(_, g)| g.to_string())
                        .unwrap_or_default();
                    for x in [&mut e, &mut top] {
                        x["GlobalIPv6Address"] = json!(ip6.to_string());
                        x["GlobalIPv6PrefixLen"] = json!(prefix);
                        x["IPv6Gateway"] = json!(gateway6);
                    }
                }
            }
            nets.insert(DEFAULT_NETWORK.into(), e);
        }
        for ep in &endpoints {
            let Some(i) = networks.iter().position(|n| n.id == ep.network_id) else {
                continue;
            };
            let n = &networks[i];
            let mut e = endpoint_json(ep, n, h);
            let gateway = route_gateways.get(i).copied().unwrap_or(n.gateway);
            if !n.internal {
                e["Gateway"] = json!(gateway.to_string());
            }
            if n.name == DEFAULT_NETWORK {
                top = json!({"Gateway": gateway.to_string(), "IPAddress": ep.ip.to_string(),
                             "IPPrefixLen": n.subnet.prefix_len(), "MacAddress": mac_text(&ep.mac)});
                if let (Some(v6), Some(ip6)) = (n.ipv6, ep.ip6) {
                    top["GlobalIPv6Address"] = json!(ip6.to_string());
                    top["GlobalIPv6PrefixLen"] = json!(v6.subnet.prefix_len());
                    top["IPv6Gateway"] = json!(v6.gateway.to_string());
                }
            }
            nets.insert(n.name.clone(), e);
        }
        let sandbox = self.netns_path(&c.id);
        let mut settings = json!({
            "Bridge": "",
            "SandboxID": if running { c.id.to_string() } else { String::new() },
            "SandboxKey": if running && sandbox.exists() { sandbox.to_string_lossy().into_owned() } else { String::new() },
            "HairpinMode": false,
            "LinkLocalIPv6Address": "",
            "LinkLocalIPv6PrefixLen": 0,
            "Ports": ports,
            "SecondaryIPAddresses": null,
            "SecondaryIPv6Addresses": null,
            "EndpointID": "",
            "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0,
            "IPv6Gateway": "",
            "Networks": nets,
        });
        if let (Some(s), Some(t)) = (settings.as_object_mut(), top.as_object()) {
            for (k, val) in t {
                s.insert(k.clone(), val.clone());
            }
        }
        v["NetworkSettings"] = settings;
        let mut port_bindings = serde_json::Map::new();
        for p in &h.publish {
            let key = format!("{}/{}", p.container_port, p.proto);
            let entry = json!({"HostIp": p.host_ip.map(|a| a.to_string()).unwrap_or_default(),
                               "HostPort": p.host_port.map(|n| n.to_string()).unwrap_or_default()});
            push_binding(&mut port_bindings, key, entry);
        }
        if let Some(hc) = v.get_mut("HostConfig").and_then(|x| x.as_object_mut()) {
            hc.insert("NetworkMode".into(), json!(mode.docker_name()));
            hc.insert("PortBindings".into(), json!(port_bindings));
            hc.insert("PublishAllPorts".into(), json!(h.publish_all));
            hc.insert("Dns".into(), json!(h.dns));
            hc.insert("DnsSearch".into(), json!(h.dns_search));
            hc.insert("DnsOptions".into(), json!(h.dns_options));
            let extra: Vec<String> = h
                .extra_hosts
                .iter()
                .map(|(n, ip)| format!("{n}:{ip}"))
                .collect();
            hc.insert("ExtraHosts".into(), crate::volumes::list_or_null(&extra));
            let links: Vec<String> = h
                .links
                .iter()
                .map(|(n, a)| format!("/{n}:/{}/{a}", c.name))
                .collect();
            hc.insert(
                "Links".into(),
                if links.is_empty() {
                    json!(null)
                } else {
                    json!(links)
                },
            );
        }
    }

    /// The list's ports of a container, as Docker's (the running
    /// container's network settings): while it runs on a bridge network,
    /// those published, then those only exposed; none otherwise.
    pub(crate) fn summary_ports(&self, c: &Container) -> Vec<crate::Port> {
        if c.state != State::Running || !matches!(NetMode::of(&c.config.host), NetMode::Bridge(_)) {
            return Vec::new();
        }
        let bindings = self
            .with_net(|m| shown_bindings(m, c.id.as_str()))
            .unwrap_or_default();
        let mut out: Vec<crate::Port> = bindings
            .iter()
            .map(|b| crate::Port {
                ip: Some(b.host_ip_text()),
                private_port: b.container_port,
                public_port: Some(b.host_port),
                typ: b.proto,
            })
            .collect();
        for (p, proto) in self.exposed(c) {
            if !bindings
                .iter()
                .any(|b| b.container_port == p && b.proto == proto)
            {
                out.push(crate::Port {
                    ip: None,
                    private_port: p,
                    public_port: None,
                    typ: proto,
                });
            }
        }
        out
    }

    /// The list's network mode and networks of a container: its endpoints
    /// in the order it joined them; `host` and `none` as Docker names them;
    /// none for `container:X` (it has the other's).
    pub(crate) fn summary_networks(&self, c: &Container) -> (String, crate::Networks) {
        let mode = NetMode::of(&c.config.host);
        let networks = match &mode {
            NetMode::Bridge(_) => self
                .with_net(|m| {
                    let mut eps = m.db().endpoints_of_container(c.id.as_str())?;
                    eps.sort_by_key(|ep| ep.index);
                    let nets = m.db().networks()?;
                    Ok(eps
                        .iter()
                        .filter_map(|ep| {
                            let n = nets.iter().find(|n| n.id == ep.network_id)?;
                            Some((n.name.clone(), endpoint_settings(ep, n, &c.config.host)))
                        })
                        .collect())
                })
                .unwrap_or_default(),
            NetMode::Host | NetMode::None => {
                let name = mode.docker_name();
                let id = pseudo_network_id(&name);
                vec![(name, crate::EndpointSettings::pseudo(id))]
            }
            NetMode::Container(_) => Vec::new(),
        };
        (mode.docker_name(), crate::Networks(networks))
    }

    // ------------------------------------------------------ network commands

    pub fn network_create(&self, o: &NetworkOptions) -> Result<NetworkRecord> {
        if self.rootless {
            crate::rootless::check_network(o)?;
        }
        let n = self.with_bridges(|m| Ok(m.create_network(o)?))?;
        self.network_event("create", &n, None);
        Ok(n)
    }

    /// Docker's network event: the network's ID, its name and driver, and
    /// the container for connect/disconnect.
    fn network_event(&self, action: &str, n: &NetworkRecord, container: Option<&str>) {
        let mut attrs = Vec::new();
        if let Some(c) = container {
            attrs.push(("container", c.to_owned()));
        }
        attrs.push(("name", n.name.clone()));
        attrs.push(("type", n.driver.clone()));
        self.object_event("network", action, &n.id, &attrs);
    }

    /// Docker's connect/disconnect on its predefined `host` and `none`
    /// networks, which berth keeps no records of.
    pub(crate) fn pseudo_network_event(&self, action: &str, name: &str, c: &Container) {
        let typ = PSEUDO_NETWORKS
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(name, |(_, t)| *t);
        self.object_event(
            "network",
            action,
            &pseudo_network_id(name),
            &[
                ("container", c.id.to_string()),
                ("name", name.to_owned()),
                ("type", typ.to_owned()),
            ],
        );
    }

    /// `network_event` for every network container `id` has an endpoint on.
    fn endpoint_events(&self, m: &Manager, id: &str, action: &str) {
        let (Ok(mut eps), Ok(nets)) = (m.db().endpoints_of_container(id), m.db().networks()) else {
            return;
        };
        eps.sort_by_key(|ep| ep.index);
        for ep in eps {
            if let Some(n) = nets.iter().find(|n| n.id == ep.network_id) {
                self.network_event(action, n, Some(id));
            }
        }
    }

    /// Every network: the predefined `bridge` (made if missing), `host`
    /// and `none`, then user networks.
    pub fn networks(&self) -> Result<Vec<NetworkRecord>> {
        // Rootless: no default bridge (the default network is pasta's),
        // the user's networks only (their database records).
        if self.rootless {
            return self.with_net(|m| Ok(m.db().networks()?));
        }
        self.with_net(|m| {
            m.ensure_default()?;
            Ok(m.db().networks()?)
        })
    }

    pub fn network_inspect(&self, key: &str) -> Result<serde_json::Value> {
        if key == "host" || key == "none" {
            return Ok(json!({
                "Name": key, "Id": pseudo_network_id(key), "Created": "", "Scope": "local",
                "Driver": if key == "host" { "host" } else { "null" },
                "EnableIPv6": false, "IPAM": {"Driver": "default", "Options": null, "Config": []},
                "Internal": false, "Attachable": false, "Ingress": false,
                "ConfigFrom": {"Network": ""}, "ConfigOnly": false, "Containers": {},
                "Options": {}, "Labels": {}
            }));
        }
        if self.rootless && key == DEFAULT_NETWORK {
            return Err(EngineError::no_such(Object::Network, key));
        }
        let (n, eps, route) = self.with_net(|m| {
            let n = m.network(key).map_err(|e| match e {
                berth_network::Error::NotFound(_) => EngineError::no_such(Object::Network, key),
                e => e.into(),
            })?;
            let eps = m.db().endpoints_of_network(&n.id)?;
            let route = m.route_gateway(&n);
            Ok((n, eps, route))
        })?;
        let mut containers = serde_json::Map::new();
        for ep in &eps {
            let name = self
                .containers
                .resolve(&ep.container_id)
                .map(|c| c.name)
                .unwrap_or_default();
            containers.insert(
                ep.container_id.clone(),
                json!({"Name": name, "EndpointID": endpoint_id(ep),
                "MacAddress": mac_text(&ep.mac),
                "IPv4Address": format!("{}/{}", ep.ip, n.subnet.prefix_len()),
                "IPv6Address": match (n.ipv6, ep.ip6) {
                    (Some(v6), Some(ip6)) => format!("{ip6}/{}", v6.subnet.prefix_len()),
                    _ => String::new(),
                }}),
            );
        }
        let mut ipam = json!({"Subnet": n.subnet.to_string()});
        if let Some(r) = n.ip_range {
            ipam["IPRange"] = json!(r.to_string());
        }
        if !n.gateway_implicit {
            ipam["Gateway"] = json!(n.gateway.to_string());
        }
        let mut aux = serde_json::Map::new();
        for (k, v) in &n.aux_addresses {
            aux.insert(k.clone(), json!(v.to_string()));
        }
        if route != n.gateway {
            aux.insert("DefaultGatewayIPv4".into(), json!(route.to_string()));
        }
        if !aux.is_empty() {
            ipam["AuxiliaryAddresses"] = serde_json::Value::Object(aux);
        }
        let mut ipam_configs = vec![ipam];
        if let Some(v6) = n.ipv6 {
            let mut c = json!({"Subnet": v6.subnet.to_string()});
            if let Some(r) = v6.ip_range {
                c["IPRange"] = json!(r.to_string());
            }
            if v6.gateway_given {
                c["Gateway"] = json!(v6.gateway.to_string());
            }
            ipam_configs.push(c);
        }
        // A macvlan/ipvlan network shows the options it was given, as Docker's.
        let mut options = if n.is_bridge() {
            json!({"com.docker.network.bridge.name": n.bridge})
        } else {
            json!(n.options)
        };
        if n.name == DEFAULT_NETWORK {
            // What Docker's default bridge says of itself, all true of berth's.
            options["com.docker.network.bridge.default_bridge"] = json!("true");
            options["com.docker.network.bridge.enable_icc"] = json!("true");
            options["com.docker.network.bridge.enable_ip_masquerade"] = json!("true");
            options["com.docker.network.bridge.host_binding_ipv4"] = json!("0.0.0.0");
        }
        if !n.masquerade {
            options["com.docker.network.bridge.enable_ip_masquerade"] = json!("false");
        }
        if !n.icc {
            options["com.docker.network.bridge.enable_icc"] = json!("false");
        }
        if let Some(m) = n.mtu {
            options["com.docker.network.driver.mtu"] = json!(m.to_string());
        }
        Ok(json!({
            "Name": n.name, "Id": n.id, "Created": n.created, "Scope": "local",
            "Driver": n.driver, "EnableIPv6": n.ipv6.is_some(),
            "IPAM": {"Driver": "default", "Options": {}, "Config": ipam_configs},
            "Internal": n.internal, "Attachable": false, "Ingress": false,
            "ConfigFrom": {"Network": ""}, "ConfigOnly": false,
            "Containers": containers,
            "Options": options,
            "Labels": n.labels,
        }))
    }

    pub fn network_rm(&self, key: &str) -> Result<NetworkRecord> {
        // Docker's 403 for its predefined networks.
        if ["host", "none", DEFAULT_NETWORK].contains(&key) {
            return Err(EngineError::Forbidden(format!(
                "{key} is a pre-defined network and cannot be removed"
            )));
        }
        if !self.has_bridges()? {
            return Err(EngineError::no_such(Object::Network, key));
        }
        self.with_bridges(|m| {
            let n = m.remove_network(key).map_err(|e| match e {
                berth_network::Error::NotFound(_) => EngineError::no_such(Object::Network, key),
                e => e.into(),
            })?;
            self.network_event("destroy", &n, None);
            self.dns_refresh(m, false)?;
            Ok(n)
        })
    }

    /// `network prune`: user networks no container uses.
    pub fn network_prune(&self) -> Result<Vec<String>> {
        if !self.has_bridges()? {
            return Ok(Vec::new());
        }
        self.with_bridges(|m| {
            let mut out = Vec::new();
            for n in m.db().networks()? {
                if n.name == DEFAULT_NETWORK || !m.db().endpoints_of_network(&n.id)?.is_empty() {
                    continue;
                }
                m.remove_network(&n.id)?;
                self.network_event("destroy", &n, None);
                out.push(n.name);
            }
            if !out.is_empty() {
                self.dns_refresh(m, false)?;
            }
            Ok(out)
        })
    }

    /// `network connect`: a lease now; a running container gets its veth
    /// at once.
    pub fn network_connect(
        &self,
        network: &str,
        container: &str,
        want: berth_network::Want,
        aliases: &[String],
    ) -> Result<()> {
        let c = self.container(container)?;
        if !matches!(NetMode::of(&c.config.host), NetMode::Bridge(_)) {
            return Err(EngineError::Invalid(format!(
                "container {} is not on a bridge network ({}): cannot connect it",
                c.name,
                NetMode::of(&c.config.host).docker_name()
            )));
        }
        if self.rootless && NetMode::of(&c.config.host) == NetMode::Bridge(None) {
            return Err(crate::rootless::no_connect_default(&c.name));
        }
        self.with_bridges(|m| {
            let n = m.network(network)?;
            let mut aliases = aliases.to_vec();
            if n.name == DEFAULT_NETWORK {
                // Docker's words (its daemon's, at connect).
                if !aliases.is_empty() {
                    return Err(EngineError::Invalid(
                        "network-scoped alias is supported only for containers in user defined networks".into(),
                    ));
                }
                if want.ip.is_some() || want.ip6.is_some() {
                    return Err(EngineError::Invalid(
                        "user specified IP address is supported on user defined networks only"
                            .into(),
                    ));
                }
            } else {
                aliases.push(c.id.short().to_owned());
            }
            let before = m.loopback_forwards(c.id.as_str())?;
            let ep = m.connect(c.id.as_str(), &n, want, None, &aliases)?;
            // Its own name gets the new address too (as Docker's file).
            self.edit_own_hosts(&c, &ep, true);
            if c.state == State::Running {
                if let Err(e) = m.attach_running(c.id.as_str(), &n) {
                    let _ = m.disconnect(c.id.as_str(), &n);
                    self.edit_own_hosts(&c, &ep, false);
                    return Err(e.into());
                }
                self.network_event("connect", &n, Some(c.id.as_str()));
                self.dns_refresh(m, true)?;
                self.sync_peer_hosts(m, Some(c.id.as_str()));
                self.republish(m, &c, &before)?;
            }
            self.switch_dns(m, &c)
        })
    }

    pub fn network_disconnect(&self, network: &str, container: &str) -> Result<()> {
        let c = self.container(container)?;
        self.with_bridges(|m| {
            let n = m.network(network)?;
            let eps = m.db().endpoints_of_container(c.id.as_str())?;
            let Some(ep) = eps.iter().find(|e| e.network_id == n.id) else {
                return Err(EngineError::Invalid(format!(
                    "container {} is not connected to network {}",
                    c.name, n.name
                )));
            };
            // (the peers' /etc/hosts lose it)
            let peers_before = !n.is_bridge();
            let before = m.loopback_forwards(c.id.as_str())?;
            m.disconnect(c.id.as_str(), &n)?;
            // Only this network's lines (Docker 20.10 drops every line of
            // the container's name, a bug).
            self.edit_own_hosts(&c, ep, false);
            // (Docker announces it for a stopped container too.)
            self.network_event("disconnect", &n, Some(c.id.as_str()));
            self.dns_refresh(m, false)?;
            if peers_before {
                self.sync_peer_hosts(m, None);
            }
            self.republish(m, &c, &before)?;
            self.switch_dns(m, &c)
        })
    }

    /// After `network connect`/`disconnect`: the container's published
    /// ports follow its publishing network (Docker's gateway endpoint,
    /// which prefers a dual-stack network): the DNAT rules, and the [::1]
    /// forwards of a running container's monitor or foreground `run`.
    /// `before`: its forwards before the change (the monitor is told only
    /// of a change: it closes the old listeners' connections).
    fn republish(
        &self,
        m: &Manager,
        c: &Container,
        before: &[berth_forward::Forward],
    ) -> Result<()> {
        if !m.republish(c.id.as_str())? || c.state != State::Running {
            return Ok(());
        }
        let forwards = m.loopback_forwards(c.id.as_str())?;
        if forwards != before {
            self.tell_forwarders(&c.id, &forwards);
        }
        Ok(())
    }

    /// Leases of containers that no longer exist, bridges and rules rebuilt
    /// from the database: what `system prune` and recovery need.
    pub fn network_reconcile(&self) -> Result<usize> {
        // Rootless: nothing to rebuild without a network of the user's
        // (and no rootless namespace to make for it).
        if !self.has_bridges()? {
            return Ok(0);
        }
        let known: std::collections::BTreeSet<String> = self
            .container_records()?
            .into_iter()
            .map(|c| c.id.to_string())
            .collect();
        self.with_bridges(|m| {
            let mut n = 0;
            for ep in m.db().all_endpoints()? {
                if !known.contains(&ep.container_id) {
                    m.release(&ep.container_id)?;
                    n += 1;
                }
            }
            m.reconcile_rules()?;
            Ok(n)
        })
    }

    /// Removes every network, bridge and rule of this root (`system reset`).
    pub fn network_reset(&self) -> Result<()> {
        let (_, pid) = self.dns_files();
        if self.rootless {
            // The user's networks go with their rootless namespace.
            if self.has_bridges()? {
                self.with_bridges(|m| Ok(m.remove_everything()?))?;
            }
            let _ = berth_dns::stop(&pid);
            berth_network::rootless_netns::remove(&self.run)?;
            return Ok(());
        }
        let _ = berth_dns::stop(&pid);
        self.with_net(|m| Ok(m.remove_everything()?))
    }

    /// After `network connect`/`disconnect`: a container on the default
    /// bridge uses the resolver of the first user network it is connected
    /// to (Docker switches it to its embedded DNS), the host's resolvers
    /// again when it is on none; its resolv.conf is rewritten in place. A
    /// container started on a user network, or given `--dns`, keeps its own.
    fn switch_dns(&self, m: &Manager, c: &Container) -> Result<()> {
        let mode = NetMode::of(&c.config.host);
        if mode != NetMode::Bridge(None) || !c.config.host.dns.is_empty() {
            return Ok(());
        }
        let nets = m.db().networks()?;
        let mut eps = m.db().endpoints_of_container(c.id.as_str())?;
        eps.sort_by_key(|ep| ep.index);
        let gateway = eps
            .iter()
            .filter_map(|ep| {
                nets.iter()
                    .find(|n| n.id == ep.network_id && n.name != DEFAULT_NETWORK)
            })
            .map(|n| n.gateway)
            .next();
        let text = resolv_conf(&c.config.host, &mode, gateway, self.loopback_dns(&mode));
        self.layers
            .rewrite_init_file(c.id.as_str(), "resolv.conf", &text)?;
        Ok(())
    }

    /// After a rename: the resolver answers to the new name.
    pub(crate) fn network_renamed(&self) {
        // Checked before the network database is opened: most roots run
        // no resolver.
        if self.dns_files().0.exists() {
            let _ = self.with_bridges(|m| self.dns_refresh(m, false));
        }
    }
}

/// The line of /etc/hosts below which `sync_peer_hosts` keeps the other
/// containers of a macvlan/ipvlan network.
/// The /etc/hosts lines of a container's own name for endpoint `ep`: its
/// IPv4 address, and its IPv6 one if any.
fn own_hosts_lines(ep: &Endpoint, hostname: &str) -> String {
    let mut s = format!("{}\t{hostname}\n", ep.ip);
    if let Some(ip6) = ep.ip6 {
        s.push_str(&format!("{ip6}\t{hostname}\n"));
    }
    s
}

const PEER_HOSTS_MARK: &str = "# berth: containers of the same macvlan/ipvlan networks\n";

/// Adds one host binding under "PORT/PROTO" in Docker's map of lists
/// (a `null` left there for an exposed port becomes a list).
fn push_binding(
    map: &mut serde_json::Map<String, serde_json::Value>,
    key: String,
    entry: serde_json::Value,
) {
    match map.get_mut(&key) {
        Some(serde_json::Value::Array(a)) => a.push(entry),
        _ => {
            map.insert(key, json!([entry]));
        }
    }
}

/// A container's published ports as Docker shows them: a port published
/// on every address is shown on `::` too when the container has an IPv6
/// address on its publishing network (the `ip6` table forwards it there).
fn shown_bindings(m: &Manager, container_id: &str) -> Result<Vec<PortBinding>> {
    let bindings = m.db().ports_of(container_id)?;
    // (a container with IPv6 publishes through a network with it)
    let v6 = m
        .db()
        .endpoints_of_container(container_id)?
        .iter()
        .any(|e| e.ip6.is_some());
    let mut out = Vec::new();
    for b in bindings {
        out.push(b);
        if v6 && b.host_ip.is_none() {
            out.push(PortBinding {
                host_ip: Some(std::net::IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)),
                ..b
            });
        }
    }
    Ok(out)
}

fn endpoint_id(ep: &Endpoint) -> String {
    format!(
        "{}{}",
        &ep.container_id[..32.min(ep.container_id.len())],
        &ep.network_id[..32.min(ep.network_id.len())]
    )
}

/// What the container was created with for network `n`: its `--ip`,
/// `--ip6` and driver options (none for a network connected later).
fn configured<'a>(
    n: &NetworkRecord,
    ep: &Endpoint,
    h: &'a HostConfig,
) -> Option<(berth_network::Want, &'a BTreeMap<String, String>)> {
    let names = |key: &str| key == n.name || (key.len() >= 12 && n.id.starts_with(key));
    if ep.index == 0 && (names(&h.network) || h.network.is_empty()) {
        let want = berth_network::Want {
            ip: h.ip,
            ip6: h.ip6,
        };
        return Some((want, &h.network_driver_opts));
    }
    h.more_networks.iter().find(|a| names(&a.network)).map(|a| {
        let want = berth_network::Want {
            ip: a.ip,
            ip6: a.ip6,
        };
        (want, &a.driver_opts)
    })
}

fn endpoint_settings(ep: &Endpoint, n: &NetworkRecord, h: &HostConfig) -> crate::EndpointSettings {
    let user = n.name != DEFAULT_NETWORK;
    let given = configured(n, ep, h);
    crate::EndpointSettings {
        ipam_config: given
            .map(|(w, _)| w)
            .filter(|w| user && (w.ip.is_some() || w.ip6.is_some()))
            .map(|w| crate::EndpointIpamConfig {
                ipv4_address: w.ip.map(|a| a.to_string()).unwrap_or_default(),
                ipv6_address: w.ip6.map(|a| a.to_string()).unwrap_or_default(),
            }),
        driver_opts: given.map(|(_, o)| o).filter(|o| !o.is_empty()).cloned(),
        links: None,
        aliases: user.then(|| ep.aliases.clone()),
        network_id: n.id.clone(),
        endpoint_id: endpoint_id(ep),
        gateway: if n.internal {
            String::new()
        } else {
            n.gateway.to_string()
        },
        ip_address: ep.ip.to_string(),
        ip_prefix_len: n.subnet.prefix_len(),
        ipv6_gateway: match (n.ipv6, ep.ip6) {
            (Some(v6), Some(_)) if !n.internal => v6.gateway.to_string(),
            _ => String::new(),
        },
        global_ipv6_address: ep.ip6.map(|a| a.to_string()).unwrap_or_default(),
        global_ipv6_prefix_len: match (n.ipv6, ep.ip6) {
            (Some(v6), Some(_)) => v6.subnet.prefix_len(),
            _ => 0,
        },
        // (an ipvlan has its parent's MAC: Docker shows none)
        mac_address: if n.driver == "ipvlan" {
            String::new()
        } else {
            mac_text(&ep.mac)
        },
    }
}

fn endpoint_json(ep: &Endpoint, n: &NetworkRecord, h: &HostConfig) -> serde_json::Value {
    serde_json::to_value(endpoint_settings(ep, n, h)).unwrap_or_default()
}

/// Stable IDs for `host` and `none`, which have no record.
pub fn pseudo_network_id(name: &str) -> String {
    let d = berth_digest::Digest::of(format!("berth network {name}").as_bytes());
    d.hex().to_owned()
}

/// Names of the predefined networks `network ls` shows with the records.
pub const PSEUDO_NETWORKS: [(&str, &str); 2] = [("host", "host"), ("none", "null")];

/// Labels of a network as `key=value` pairs, for `network ls --filter`.
pub fn labels_text(l: &BTreeMap<String, String>) -> String {
    l.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Docker's legacy link variables for `alias` (on the default bridge):
/// the link's name, each exposed port's URL and parts, the first port's
/// URL, and the linked container's environment but HOME and PATH.
fn link_env(
    alias: &str,
    linker: &str,
    ip: std::net::Ipv4Addr,
    ports: &[(u16, Proto)],
    their_env: &[String],
) -> Vec<String> {
    let prefix = alias.to_uppercase().replace('-', "_");
    let mut env = vec![format!("{prefix}_NAME=/{linker}/{alias}")];
    if let Some((port, proto)) = ports.first() {
        env.push(format!("{prefix}_PORT={proto}://{ip}:{port}"));
    }
    for (port, proto) in ports {
        let p = format!("{prefix}_PORT_{port}_{}", proto.to_string().to_uppercase());
        env.push(format!("{p}={proto}://{ip}:{port}"));
        env.push(format!("{p}_ADDR={ip}"));
        env.push(format!("{p}_PORT={port}"));
        env.push(format!("{p}_PROTO={proto}"));
    }
    for kv in their_env {
        if let Some((k, v)) = kv.split_once('=') {
            if k != "HOME" && k != "PATH" {
                env.push(format!("{prefix}_ENV_{k}={v}"));
            }
        }
    }
    env
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn rootless_upstreams_reach_loopback_resolvers_through_pasta() {
        let host = "# systemd-resolved\nnameserver 127.0.0.53\nnameserver ::1\nnameserver 192.0.2.53\noptions edns0 trust-ad\nsearch example\n";
        assert_eq!(
            rootless_upstreams(host),
            "# systemd-resolved\nnameserver 169.254.1.1\nnameserver 192.0.2.53\noptions edns0 trust-ad\nsearch example\n"
        );
        let plain = "nameserver 192.0.2.53\n";
        assert_eq!(rootless_upstreams(plain), plain);
    }
}
