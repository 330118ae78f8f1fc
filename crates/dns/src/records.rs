//! The records file: what berth-dns serves, written by the engine.
//!
//! ```text
//! # comments and blank lines are ignored
//! listen NETWORK GATEWAY_IP
//! host NETWORK IP NAME [ALIAS...]
//! ```
//!
//! A host's IP is IPv4 or IPv6; a container of a dual-stack network has a
//! line for each (A and AAAA answers). Listeners are IPv4 (a network always
//! has an IPv4 gateway, as in Docker).
//!
//! [`RecordsFile`] both parses it and writes it, so the engine never formats
//! a line by hand. [`Index`] is the parsed file arranged for lookups, with
//! the rule that picks which networks a client may see.

use crate::wire::{Name, Rdata};
use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum RecordsError {
    #[error("line {line}: {msg}")]
    Line { line: usize, msg: String },
    #[error("{}: {source}", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: Box<RecordsError>,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

/// `listen NETWORK GATEWAY_IP`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listen {
    pub network: String,
    pub addr: Ipv4Addr,
}

/// `host NETWORK IP NAME [ALIAS...]`: `names[0]` is the container's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub network: String,
    pub ip: IpAddr,
    pub names: Vec<String>,
}

/// The contents of a records file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordsFile {
    listens: Vec<Listen>,
    hosts: Vec<Host>,
}

fn check_network(n: &str) -> Result<(), String> {
    if n.is_empty()
        || n.chars()
            .any(|c| c == '#' || c.is_whitespace() || c.is_control())
    {
        return Err(format!("invalid network name {n:?}"));
    }
    Ok(())
}

/// A name as a DNS name: labels of letters, digits, `-` and `_`, 1 to 63
/// bytes each, 253 in all (a trailing dot is allowed and dropped).
fn check_name(n: &str) -> Result<String, String> {
    let bare = n.strip_suffix('.').unwrap_or(n);
    let ok = !bare.is_empty()
        && bare.len() <= 253
        && bare.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if !ok {
        return Err(format!("invalid DNS name {n:?}"));
    }
    Ok(bare.to_string())
}

impl RecordsFile {
    pub fn new() -> RecordsFile {
        RecordsFile::default()
    }

    pub fn listens(&self) -> &[Listen] {
        &self.listens
    }

    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// Adds `listen NETWORK GATEWAY`: a network may have one gateway and
    /// two networks may not share one.
    pub fn listen(&mut self, network: &str, gateway: Ipv4Addr) -> Result<&mut Self, RecordsError> {
        self.add_listen(network, gateway)
            .map_err(RecordsError::Invalid)?;
        Ok(self)
    }

    fn add_listen(&mut self, network: &str, addr: Ipv4Addr) -> Result<(), String> {
        check_network(network)?;
        if addr.is_unspecified() || addr.is_broadcast() || addr.is_multicast() {
            return Err(format!("cannot listen on {addr}"));
        }
        if let Some(l) = self.listens.iter().find(|l| l.network == network) {
            return Err(format!("network {network} already listens on {}", l.addr));
        }
        if let Some(l) = self.listens.iter().find(|l| l.addr == addr) {
            return Err(format!(
                "{addr} is already the listener of network {}",
                l.network
            ));
        }
        self.listens.push(Listen {
            network: network.to_string(),
            addr,
        });
        Ok(())
    }

    /// Adds `host NETWORK IP NAME ALIAS...`; `name` is the container's name
    /// (unique in the engine: it identifies the container across networks).
    pub fn host<S: AsRef<str>>(
        &mut self,
        network: &str,
        ip: impl Into<IpAddr>,
        name: &str,
        aliases: &[S],
    ) -> Result<&mut Self, RecordsError> {
        let mut names = vec![name.to_string()];
        names.extend(aliases.iter().map(|a| a.as_ref().to_string()));
        self.add_host(network, ip.into(), names)
            .map_err(RecordsError::Invalid)?;
        Ok(self)
    }

    fn add_host(&mut self, network: &str, ip: IpAddr, names: Vec<String>) -> Result<(), String> {
        check_network(network)?;
        if ip.is_unspecified() || ip.is_multicast() {
            return Err(format!("{ip} cannot be a host's address"));
        }
        let mut checked: Vec<String> = Vec::with_capacity(names.len());
        for n in &names {
            let n = check_name(n)?;
            if !checked.iter().any(|c| c.eq_ignore_ascii_case(&n)) {
                checked.push(n);
            }
        }
        if checked.is_empty() {
            return Err("a host needs a name".into());
        }
        self.hosts.push(Host {
            network: network.to_string(),
            ip,
            names: checked,
        });
        Ok(())
    }

    /// Parses the text of a records file; an error names the line.
    pub fn parse(text: &str) -> Result<RecordsFile, RecordsError> {
        let mut r = RecordsFile::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("");
            let words: Vec<&str> = line.split_whitespace().collect();
            let err = |msg: String| RecordsError::Line { line: i + 1, msg };
            let ip = |s: &str| {
                s.parse::<Ipv4Addr>()
                    .map_err(|_| err(format!("invalid IPv4 address {s:?}")))
            };
            let host_ip = |s: &str| {
                s.parse::<IpAddr>()
                    .map_err(|_| err(format!("invalid IP address {s:?}")))
            };
            match words.as_slice() {
                [] => {}
                ["listen", net, addr] => r.add_listen(net, ip(addr)?).map_err(err)?,
                ["listen", ..] => return Err(err("expected: listen NETWORK GATEWAY_IP".into())),
                ["host", net, addr, names @ ..] if !names.is_empty() => r
                    .add_host(
                        net,
                        host_ip(addr)?,
                        names.iter().map(|s| s.to_string()).collect(),
                    )
                    .map_err(err)?,
                ["host", ..] => {
                    return Err(err("expected: host NETWORK IP NAME [ALIAS...]".into()))
                }
                [w, ..] => return Err(err(format!("unknown keyword {w:?}"))),
            }
        }
        Ok(r)
    }

    pub fn read(path: &Path) -> Result<RecordsFile, RecordsError> {
        let text = std::fs::read_to_string(path).map_err(|source| RecordsError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        RecordsFile::parse(&text).map_err(|e| RecordsError::File {
            path: path.to_path_buf(),
            source: Box::new(e),
        })
    }

    /// The file's text, one line per entry.
    pub fn to_text(&self) -> String {
        let mut s = String::from("# written by berth; read by berth-dns\n");
        for l in &self.listens {
            let _ = writeln!(s, "listen {} {}", l.network, l.addr);
        }
        for h in &self.hosts {
            let _ = writeln!(s, "host {} {} {}", h.network, h.ip, h.names.join(" "));
        }
        s
    }

    /// Writes the file atomically: a temporary file beside it, fsync, rename.
    pub fn write(&self, path: &Path) -> Result<(), RecordsError> {
        let io = |source| RecordsError::Io {
            path: path.to_path_buf(),
            source,
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut tmp = tempfile_in(dir, path).map_err(io)?;
        let result = (|| {
            tmp.1.write_all(self.to_text().as_bytes())?;
            tmp.1.sync_all()?;
            std::fs::rename(&tmp.0, path)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp.0);
        }
        result.map_err(io)
    }
}

/// A new file beside `path` named `.NAME.tmp-PID-N`.
fn tempfile_in(dir: &Path, path: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    use std::os::unix::fs::OpenOptionsExt;
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    Ok((tmp, f))
}

/// The records arranged for answering.
#[derive(Debug, Default)]
pub struct Index {
    file: RecordsFile,
    /// Lower-cased name → (network, address), in file order.
    names: HashMap<String, Vec<(usize, IpAddr)>>,
    /// Address → (network, container name).
    by_ip: HashMap<IpAddr, Vec<(usize, usize)>>,
    /// Network name → number; `containers[name]` → its networks.
    networks: HashMap<String, usize>,
    /// Lower-cased network name → networks (for `NAME.NETWORK`).
    net_by_lower: HashMap<String, Vec<usize>>,
    containers: HashMap<String, BTreeSet<usize>>,
}

impl Index {
    pub fn new(file: RecordsFile) -> Index {
        let mut ix = Index::default();
        let net_id = |n: &str, ix: &mut Index| {
            let len = ix.networks.len();
            *ix.networks.entry(n.to_string()).or_insert(len)
        };
        for l in &file.listens {
            net_id(&l.network, &mut ix);
        }
        for (hi, h) in file.hosts.iter().enumerate() {
            let net = net_id(&h.network, &mut ix);
            for n in &h.names {
                let v = ix.names.entry(n.to_ascii_lowercase()).or_default();
                if !v.contains(&(net, h.ip)) {
                    v.push((net, h.ip));
                }
            }
            ix.by_ip.entry(h.ip).or_default().push((net, hi));
            ix.containers
                .entry(h.names[0].to_ascii_lowercase())
                .or_default()
                .insert(net);
        }
        for (n, id) in &ix.networks {
            ix.net_by_lower
                .entry(n.to_ascii_lowercase())
                .or_default()
                .push(*id);
        }
        ix.file = file;
        ix
    }

    pub fn file(&self) -> &RecordsFile {
        &self.file
    }

    /// The networks whose names a client at `src`, asking on the listener of
    /// `network`, may resolve: every network of the container that has
    /// address `src` (on `network` if it has a line there, else anywhere:
    /// a container on two networks resolves the names of both, as in
    /// Docker), or `network` alone for an unknown client.
    pub fn networks_for(&self, network: &str, src: IpAddr) -> BTreeSet<usize> {
        let mut out = BTreeSet::new();
        let own = self.networks.get(network).copied();
        if let Some(entries) = self.by_ip.get(&src.to_canonical()) {
            let on_own: Vec<&(usize, usize)> =
                entries.iter().filter(|(n, _)| Some(*n) == own).collect();
            let chosen: Vec<&(usize, usize)> = if on_own.is_empty() {
                entries.iter().collect()
            } else {
                on_own
            };
            for (net, hi) in chosen {
                out.insert(*net);
                let container = self.file.hosts[*hi].names[0].to_ascii_lowercase();
                if let Some(nets) = self.containers.get(&container) {
                    out.extend(nets.iter().copied());
                }
            }
        }
        if out.is_empty() {
            out.extend(own);
        }
        out
    }

    /// The addresses (IPv4 and IPv6) of `name` (lower-cased, no trailing
    /// dot) in `networks`; `None` if it is not a known name there. As in
    /// Docker, `NAME.NETWORK` (a name or alias, then a network's name) is
    /// NAME looked up in that network alone, when it is one of `networks`.
    pub fn lookup(&self, name: &str, networks: &BTreeSet<usize>) -> Option<Vec<IpAddr>> {
        if let Some(v) = self.lookup_exact(name, networks) {
            return Some(v);
        }
        let mut end = name.len();
        while let Some(dot) = name[..end].rfind('.') {
            let (prefix, suffix) = (&name[..dot], &name[dot + 1..]);
            for net in self.net_by_lower.get(suffix).into_iter().flatten() {
                if networks.contains(net) {
                    if let Some(v) = self.lookup_exact(prefix, &BTreeSet::from([*net])) {
                        return Some(v);
                    }
                }
            }
            end = dot;
        }
        None
    }

    fn lookup_exact(&self, name: &str, networks: &BTreeSet<usize>) -> Option<Vec<IpAddr>> {
        let mut out: Vec<IpAddr> = Vec::new();
        for (net, ip) in self.names.get(name)? {
            if networks.contains(net) && !out.contains(ip) {
                out.push(*ip);
            }
        }
        (!out.is_empty()).then_some(out)
    }

    /// `NAME.NETWORK` of the containers that have address `ip` in `networks`
    /// (Docker's answer to a PTR query; NAME alone if that is no DNS name).
    pub fn lookup_ptr(&self, ip: IpAddr, networks: &BTreeSet<usize>) -> Option<Vec<Rdata>> {
        let mut out: Vec<Name> = Vec::new();
        for (net, hi) in self.by_ip.get(&ip)? {
            if !networks.contains(net) {
                continue;
            }
            let h = &self.file.hosts[*hi];
            let full = format!("{}.{}", h.names[0], h.network);
            let name = Name::from_dotted(&full)
                .or_else(|_| Name::from_dotted(&h.names[0]))
                .ok();
            if let Some(n) = name {
                if !out.contains(&n) {
                    out.push(n);
                }
            }
        }
        (!out.is_empty()).then(|| out.into_iter().map(Rdata::Ptr).collect())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const SAMPLE: &str = "\
# a comment
listen front 10.1.0.1
listen back 10.2.0.1   # trailing comment

host front 10.1.0.2 web web-alias 0123456789ab
host front 10.1.0.3 proxy
host back 10.2.0.2 web
host back 10.2.0.3 db database
host back 10.2.0.4 worker db
";

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_round_trips() {
        let f = RecordsFile::parse(SAMPLE).unwrap();
        assert_eq!(f.listens().len(), 2);
        assert_eq!(f.hosts().len(), 5);
        assert_eq!(f.hosts()[0].names, ["web", "web-alias", "0123456789ab"]);
        assert_eq!(RecordsFile::parse(&f.to_text()).unwrap(), f);
    }

    #[test]
    fn bad_lines_name_the_line() {
        let cases = [
            ("listen a\n", "line 1: expected: listen NETWORK GATEWAY_IP"),
            (
                "\n\nlisten a 1.2.3\n",
                "line 3: invalid IPv4 address \"1.2.3\"",
            ),
            (
                "host a 10.0.0.1\n",
                "line 1: expected: host NETWORK IP NAME [ALIAS...]",
            ),
            (
                "host a 10.0.0.1 bad_name!\n",
                "line 1: invalid DNS name \"bad_name!\"",
            ),
            (
                "nameserver 1.1.1.1\n",
                "line 1: unknown keyword \"nameserver\"",
            ),
            (
                "listen a 10.0.0.1\nlisten b 10.0.0.1\n",
                "line 2: 10.0.0.1 is already the listener of network a",
            ),
            (
                "listen a 10.0.0.1\nlisten a 10.0.0.2\n",
                "line 2: network a already listens on 10.0.0.1",
            ),
            ("listen a 0.0.0.0\n", "line 1: cannot listen on 0.0.0.0"),
            (
                &format!("host a 10.0.0.1 {}\n", "x".repeat(64)),
                "line 1: invalid DNS name",
            ),
        ];
        for (text, want) in cases {
            let e = RecordsFile::parse(text).unwrap_err().to_string();
            assert!(e.starts_with(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn builder_refuses_what_parse_refuses_and_writes_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("records");
        let mut f = RecordsFile::new();
        f.listen("net1", Ipv4Addr::new(10, 9, 0, 1))
            .unwrap()
            .host("net1", Ipv4Addr::new(10, 9, 0, 2), "web", &["www", "Web."])
            .unwrap();
        assert!(f.listen("net 2", Ipv4Addr::new(10, 8, 0, 1)).is_err());
        // '#' starts a comment in the file: not part of a name.
        assert!(f.listen("net#2", Ipv4Addr::new(10, 8, 0, 1)).is_err());
        assert!(f
            .host("net1", Ipv4Addr::new(10, 9, 0, 3), "a b", &[] as &[&str])
            .is_err());
        f.write(&path).unwrap();
        let back = RecordsFile::read(&path).unwrap();
        assert_eq!(back, f);
        assert_eq!(back.hosts()[0].names, ["web", "www"]);
        // Nothing but the file is left in the directory.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        std::fs::write(&path, "bogus line\n").unwrap();
        let e = RecordsFile::read(&path).unwrap_err().to_string();
        assert_eq!(
            e,
            format!("{}: line 1: unknown keyword \"bogus\"", path.display())
        );
    }

    #[test]
    fn network_selection() {
        let ix = Index::new(RecordsFile::parse(SAMPLE).unwrap());
        let net = |n: &str| ix.networks[n];
        let set = |v: &[&str]| v.iter().map(|n| net(n)).collect::<BTreeSet<_>>();
        // Unknown client: the listener's network only.
        assert_eq!(ix.networks_for("front", ip("10.1.0.99")), set(&["front"]));
        assert_eq!(ix.networks_for("back", ip("127.0.0.1")), set(&["back"]));
        // A client only on front sees front.
        assert_eq!(ix.networks_for("front", ip("10.1.0.3")), set(&["front"]));
        // "web" is on both networks (two addresses): it sees both, whichever
        // address it asks from.
        assert_eq!(
            ix.networks_for("front", ip("10.1.0.2")),
            set(&["front", "back"])
        );
        assert_eq!(
            ix.networks_for("back", ip("10.2.0.2")),
            set(&["front", "back"])
        );
        // A known client asking on another network's listener keeps its own.
        assert_eq!(ix.networks_for("back", ip("10.1.0.3")), set(&["front"]));
        // Unknown IPv6 sources see the listener's network.
        assert_eq!(ix.networks_for("back", ip("::1")), set(&["back"]));
    }

    #[test]
    fn lookups_respect_networks() {
        let ix = Index::new(RecordsFile::parse(SAMPLE).unwrap());
        let front = ix.networks_for("front", ip("10.1.0.3"));
        let both = ix.networks_for("front", ip("10.1.0.2"));
        let a = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(ix.lookup("web", &front), Some(vec![a("10.1.0.2")]));
        assert_eq!(ix.lookup("db", &front), None);
        assert_eq!(
            ix.lookup("web", &both),
            Some(vec![a("10.1.0.2"), a("10.2.0.2")])
        );
        assert_eq!(
            ix.lookup("db", &both),
            Some(vec![a("10.2.0.3"), a("10.2.0.4")])
        );
        assert_eq!(ix.lookup("0123456789ab", &front), Some(vec![a("10.1.0.2")]));
        assert_eq!(
            ix.lookup_ptr(a("10.2.0.4"), &both),
            Some(vec![Rdata::Ptr(Name::from_dotted("worker.back").unwrap())])
        );
        assert_eq!(ix.lookup_ptr(a("10.2.0.4"), &front), None);
        // NAME.NETWORK: that network's addresses only, if the client sees it.
        assert_eq!(ix.lookup("web.back", &both), Some(vec![a("10.2.0.2")]));
        assert_eq!(
            ix.lookup("web-alias.front", &both),
            Some(vec![a("10.1.0.2")])
        );
        assert_eq!(
            ix.lookup("db.back", &both),
            Some(vec![a("10.2.0.3"), a("10.2.0.4")])
        );
        assert_eq!(ix.lookup("web.back", &front), None);
        assert_eq!(ix.lookup("db.front", &both), None);
        assert_eq!(ix.lookup("web.nonet", &both), None);
    }

    #[test]
    fn name_dot_network_with_dots_in_names() {
        let ix = Index::new(
            RecordsFile::parse(
                "host my.net 10.3.0.2 a.b\nhost Other 10.4.0.2 c\nhost n 10.5.0.2 x.Other\n",
            )
            .unwrap(),
        );
        let all: BTreeSet<usize> = ix.networks.values().copied().collect();
        let a = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(ix.lookup("a.b", &all), Some(vec![a("10.3.0.2")]));
        assert_eq!(ix.lookup("a.b.my.net", &all), Some(vec![a("10.3.0.2")]));
        // Network names match case-insensitively, like the rest of the name.
        assert_eq!(ix.lookup("c.other", &all), Some(vec![a("10.4.0.2")]));
        // An exact name wins over a NAME.NETWORK reading.
        assert_eq!(ix.lookup("x.other", &all), Some(vec![a("10.5.0.2")]));
        assert_eq!(
            ix.lookup_ptr(a("10.3.0.2"), &all),
            Some(vec![Rdata::Ptr(Name::from_dotted("a.b.my.net").unwrap())])
        );
    }

    /// A dual-stack network: a line per family, both found by name and by
    /// address; an IPv6 client is known by its IPv6 address.
    #[test]
    fn dual_stack_hosts() {
        let f = RecordsFile::parse(
            "listen n 10.7.0.1\nhost n 10.7.0.2 web\nhost n fd00:7::2 web\nhost n fd00:7::3 v6only\n",
        )
        .unwrap();
        assert_eq!(RecordsFile::parse(&f.to_text()).unwrap(), f);
        let ix = Index::new(f);
        let n = ix.networks_for("n", ip("fd00:7::3"));
        assert_eq!(
            ix.lookup("web", &n),
            Some(vec![ip("10.7.0.2"), ip("fd00:7::2")])
        );
        assert_eq!(ix.lookup("v6only.n", &n), Some(vec![ip("fd00:7::3")]));
        assert_eq!(
            ix.lookup_ptr(ip("fd00:7::2"), &n),
            Some(vec![Rdata::Ptr(Name::from_dotted("web.n").unwrap())])
        );
        let e = RecordsFile::parse("host n fd00::zz web\n").unwrap_err();
        assert_eq!(e.to_string(), "line 1: invalid IP address \"fd00::zz\"");
        let e = RecordsFile::parse("host n :: web\n").unwrap_err();
        assert_eq!(e.to_string(), "line 1: :: cannot be a host's address");
    }
}
