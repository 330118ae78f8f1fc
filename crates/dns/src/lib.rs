//! berth's embedded DNS resolver for user-defined networks (Docker's
//! embedded DNS at 127.0.0.11, here one process per berth root listening on
//! each user network's gateway address).
//!
//! - [`RecordsFile`]: the file the engine writes and `berth-dns` serves.
//! - [`resolve`]: what a query gets: a local answer or "forward it".
//! - [`server`]: the `berth-dns` process (single-threaded, one `poll`).
//! - [`ensure_running`], [`reload`], [`stop`]: the engine's handles on it.
//!
//! Only exact names are answered locally: a container's name, its network
//! aliases, its short ID, and as in Docker each of them followed by
//! `.NETWORK`; no search-domain suffixes (`web.corp.example` is forwarded).

mod daemon;
pub mod records;
pub mod server;
pub mod wire;

pub use daemon::{ensure_running, log_path, reload, running, stop, DaemonError};
pub use records::{Index, RecordsError, RecordsFile};

use std::net::{IpAddr, SocketAddr};
use wire::{Message, Rdata, CLASS_IN, RCODE_NOERROR, TYPE_A, TYPE_AAAA, TYPE_PTR};

/// The port berth-dns serves on, on each gateway address.
pub const DNS_PORT: u16 = 53;

/// What to do with a query.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Answer it with this message.
    Answer(Vec<u8>),
    /// Not a local name: ask the host's resolvers.
    Forward,
}

/// Answers `query`, received on the listener of `network` from `src`, from
/// the records, or says to forward it. `limit` is the largest answer the
/// transport takes (512 over UDP).
pub fn resolve(
    index: &Index,
    network: &str,
    src: IpAddr,
    query: &Message,
    limit: usize,
) -> Outcome {
    let q = &query.question;
    if q.qclass != CLASS_IN {
        return Outcome::Forward;
    }
    let name = q.name.to_lower();
    let nets = index.networks_for(network, src);
    // A known name without an address of the family asked for gets an
    // empty answer ("no AAAA"), not "no such name".
    let records = match q.qtype {
        TYPE_A => index.lookup(&name, &nets).map(|ips| {
            ips.into_iter()
                .filter_map(|ip| match ip {
                    IpAddr::V4(a) => Some(Rdata::A(a)),
                    IpAddr::V6(_) => None,
                })
                .collect()
        }),
        TYPE_AAAA => index.lookup(&name, &nets).map(|ips| {
            ips.into_iter()
                .filter_map(|ip| match ip {
                    IpAddr::V6(a) => Some(Rdata::Aaaa(a)),
                    IpAddr::V4(_) => None,
                })
                .collect()
        }),
        TYPE_PTR => wire::reverse_v4(&name)
            .map(IpAddr::V4)
            .or_else(|| wire::reverse_v6(&name).map(IpAddr::V6))
            .and_then(|ip| index.lookup_ptr(ip, &nets)),
        _ => None,
    };
    match records {
        Some(r) => Outcome::Answer(wire::answer(query, RCODE_NOERROR, &r, limit)),
        None => Outcome::Forward,
    }
}

/// The `nameserver` addresses of a resolv.conf, port 53, in order.
/// Addresses with a zone (`fe80::1%eth0`) and malformed ones are skipped.
pub fn parse_resolv_conf(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next()? == "nameserver")
                .then(|| w.next())
                .flatten()
                .and_then(|a| a.parse::<IpAddr>().ok())
                .map(|ip| SocketAddr::new(ip, DNS_PORT))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use wire::{Header, TYPE_AAAA};

    fn ix() -> Index {
        Index::new(
            RecordsFile::parse(
                "listen n1 10.0.0.1\nhost n1 10.0.0.2 Web alias1\nhost n2 10.5.0.2 other\n",
            )
            .unwrap(),
        )
    }

    fn ask(name: &str, qtype: u16) -> Outcome {
        let q = Message::parse(&wire::query(3, name, qtype).unwrap()).unwrap();
        resolve(&ix(), "n1", "10.0.0.9".parse().unwrap(), &q, 512)
    }

    fn answer_count(o: Outcome) -> u16 {
        match o {
            Outcome::Answer(a) => {
                let h = Header::parse(&a).unwrap();
                assert_eq!(h.rcode(), 0);
                h.ancount
            }
            Outcome::Forward => panic!("forwarded"),
        }
    }

    #[test]
    fn local_answers_and_forwards() {
        assert_eq!(answer_count(ask("web", TYPE_A)), 1);
        assert_eq!(answer_count(ask("WEB.", TYPE_A)), 1);
        assert_eq!(answer_count(ask("Alias1", TYPE_A)), 1);
        assert_eq!(answer_count(ask("web", TYPE_AAAA)), 0);
        assert_eq!(answer_count(ask("2.0.0.10.in-addr.arpa", TYPE_PTR)), 1);
        // Names of another network, unknown names, other types: forwarded.
        assert_eq!(ask("other", TYPE_A), Outcome::Forward);
        assert_eq!(ask("2.0.5.10.in-addr.arpa", TYPE_PTR), Outcome::Forward);
        assert_eq!(ask("nope", TYPE_A), Outcome::Forward);
        assert_eq!(ask("nope", TYPE_AAAA), Outcome::Forward);
        assert_eq!(ask("web", 15), Outcome::Forward);
        assert_eq!(answer_count(ask("web.n1", TYPE_A)), 1);
        assert_eq!(ask("web.n2", TYPE_A), Outcome::Forward);
        assert_eq!(ask("web.n1.example", TYPE_A), Outcome::Forward);
    }

    /// AAAA from a host's IPv6 line, an empty A for a name with IPv6 only,
    /// and PTR of an ip6.arpa name.
    #[test]
    fn aaaa_and_ip6_arpa() {
        let ix = Index::new(
            RecordsFile::parse("listen n 10.8.0.1\nhost n 10.8.0.2 web\nhost n fd00:8::2 web\nhost n fd00:8::3 six\n")
                .unwrap(),
        );
        let ask = |name: &str, qtype: u16| {
            let q = Message::parse(&wire::query(4, name, qtype).unwrap()).unwrap();
            resolve(&ix, "n", "fd00:8::2".parse().unwrap(), &q, 512)
        };
        assert_eq!(answer_count(ask("web", TYPE_A)), 1);
        assert_eq!(answer_count(ask("web", TYPE_AAAA)), 1);
        assert_eq!(answer_count(ask("six", TYPE_AAAA)), 1);
        assert_eq!(answer_count(ask("six", TYPE_A)), 0);
        let rev = "3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.0.0.0.0.0.d.f.ip6.arpa";
        assert_eq!(answer_count(ask(rev, TYPE_PTR)), 1);
        match ask("six", TYPE_AAAA) {
            Outcome::Answer(a) => assert_eq!(
                &a[a.len() - 16..],
                &"fd00:8::3".parse::<std::net::Ipv6Addr>().unwrap().octets()
            ),
            Outcome::Forward => panic!("forwarded"),
        }
        assert_eq!(wire::reverse_v6(rev), Some("fd00:8::3".parse().unwrap()));
        assert_eq!(wire::reverse_v6("3.0.ip6.arpa"), None);
        assert_eq!(wire::reverse_v6(&rev.replace("d.f.", "df.0.")), None);
    }

    #[test]
    fn resolv_conf() {
        let text = "# c\nsearch example\nnameserver 127.0.0.53\nnameserver ::1\n\
                    nameserver fe80::1%eth0\nnameserver\nnameserver bogus\noptions edns0\n";
        assert_eq!(
            parse_resolv_conf(text),
            vec![
                "127.0.0.53:53".parse::<SocketAddr>().unwrap(),
                "[::1]:53".parse().unwrap()
            ]
        );
    }
}
