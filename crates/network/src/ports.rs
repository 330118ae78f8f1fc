//! `-p [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTO]` as Docker parses it,
//! with ranges on both sides.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }

    pub fn parse(s: &str) -> Result<Proto> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Ok(Proto::Tcp),
            "udp" => Ok(Proto::Udp),
            other => Err(Error::Invalid(format!("invalid proto: {other}"))),
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One requested publication of a container port. `host_port` None means
/// "any free port" (`-p 80`, `-P`); `host_ip` None every address of the
/// host (IPv4, and IPv6 for a container with an IPv6 address).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PortSpec {
    pub host_ip: Option<IpAddr>,
    pub host_port: Option<u16>,
    pub container_port: u16,
    pub proto: Proto,
}

/// A publication in force: the host port is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PortBinding {
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    pub container_port: u16,
    pub proto: Proto,
}

impl PortBinding {
    /// Docker's HostIp text: "0.0.0.0" for all addresses.
    pub fn host_ip_text(&self) -> String {
        self.host_ip
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
            .to_string()
    }

    /// `ADDR:PORT` as `port` prints it: an IPv6 address in brackets.
    pub fn host_addr_text(&self) -> String {
        match self.host_ip {
            Some(IpAddr::V6(a)) => format!("[{a}]:{}", self.host_port),
            _ => format!("{}:{}", self.host_ip_text(), self.host_port),
        }
    }
}

fn port_range(s: &str, what: &str, whole: &str) -> Result<(u16, u16)> {
    let bad = || Error::Invalid(format!("invalid {what} port: {s} (in {whole})"));
    let one = |p: &str| -> Result<u16> {
        match p.parse::<u16>() {
            Ok(0) | Err(_) => Err(bad()),
            Ok(n) => Ok(n),
        }
    };
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (one(a)?, one(b)?);
            if b < a {
                return Err(bad());
            }
            Ok((a, b))
        }
        None => {
            let p = one(s)?;
            Ok((p, p))
        }
    }
}

/// Parses one `-p` value into one spec per port of its range.
pub fn parse_publish(s: &str) -> Result<Vec<PortSpec>> {
    let (addr_ports, proto) = match s.rsplit_once('/') {
        Some((a, p)) => (a, Proto::parse(p)?),
        None => (s, Proto::Tcp),
    };
    let parts: Vec<&str> = addr_ports.rsplitn(3, ':').collect();
    let (ip, host, container) = match parts.as_slice() {
        [c] => (None, None, *c),
        [c, h] => (None, Some(*h), *c),
        [c, h, ip] => (Some(*ip), Some(*h), *c),
        _ => return Err(Error::Invalid(format!("invalid port specification: {s:?}"))),
    };
    if container.is_empty() {
        return Err(Error::Invalid(format!("no port specified: {s}<empty>")));
    }
    let host_ip = match ip {
        None | Some("") => None,
        Some(ip) => {
            let ip = ip.trim_start_matches('[').trim_end_matches(']');
            let a: IpAddr = ip.parse().map_err(|_| {
                Error::Invalid(format!(
                    "invalid IP address {ip:?} in port specification {s:?}"
                ))
            })?;
            Some(a).filter(|a| *a != IpAddr::V4(Ipv4Addr::UNSPECIFIED))
        }
    };
    let (c0, c1) = port_range(container, "container", s)?;
    let host = host.filter(|h| !h.is_empty());
    let mut out = Vec::new();
    match host {
        None => {
            for p in c0..=c1 {
                out.push(PortSpec {
                    host_ip,
                    host_port: None,
                    container_port: p,
                    proto,
                });
            }
        }
        Some(h) => {
            let (h0, h1) = port_range(h, "host", s)?;
            let n_c = c1 - c0;
            let n_h = h1 - h0;
            if n_c == n_h {
                for i in 0..=n_c {
                    out.push(PortSpec {
                        host_ip,
                        host_port: Some(h0 + i),
                        container_port: c0 + i,
                        proto,
                    });
                }
            } else if n_c == 0 {
                // Docker: one container port, a host range: the first free one.
                return Err(Error::Invalid(format!(
                    "invalid port specification {s:?}: a host port range needs a container range of the same size"
                )));
            } else {
                return Err(Error::Invalid(format!(
                    "invalid ranges specified for container and host Ports: {container} and {h}"
                )));
            }
        }
    }
    Ok(out)
}

/// The published ports the kernel cannot forward, to be forwarded in user
/// space (see berth_forward): those on the host's IPv6 loopback. A port
/// published on `[::1]` goes to the container's IPv6 address, or to its
/// IPv4 one when it has none (as Docker's docker-proxy does); a port
/// published on every address (`-p P:C`, `-p [::]:P:C`) of a container
/// with an IPv6 address answers on `[::1]` too when the host has that
/// address free (docker-proxy listens on `[::]`). TCP and UDP.
pub fn loopback_forwards(
    bindings: &[PortBinding],
    ip: Ipv4Addr,
    ip6: Option<Ipv6Addr>,
) -> Vec<berth_forward::Forward> {
    let mut out = Vec::new();
    for b in bindings {
        let required = match b.host_ip {
            Some(IpAddr::V6(a)) if a == Ipv6Addr::LOCALHOST => true,
            None if ip6.is_some() => false,
            Some(IpAddr::V6(a)) if a.is_unspecified() && ip6.is_some() => false,
            _ => continue,
        };
        let target = match ip6 {
            Some(a) => SocketAddr::from((a, b.container_port)),
            None => SocketAddr::from((ip, b.container_port)),
        };
        out.push(berth_forward::Forward {
            udp: b.proto == Proto::Udp,
            listen: SocketAddr::from((Ipv6Addr::LOCALHOST, b.host_port)),
            target,
            required,
        });
    }
    out
}

/// `EXPOSE`/`--expose` keys such as "80/tcp", "53/udp", "8000-8002".
pub fn parse_exposed(s: &str) -> Result<Vec<(u16, Proto)>> {
    let (p, proto) = match s.rsplit_once('/') {
        Some((p, pr)) => (p, Proto::parse(pr)?),
        None => (s, Proto::Tcp),
    };
    let (a, b) = port_range(p, "exposed", s)?;
    Ok((a..=b).map(|n| (n, proto)).collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn docker_forms() {
        let p = parse_publish("8080:80").unwrap();
        assert_eq!(
            p,
            vec![PortSpec {
                host_ip: None,
                host_port: Some(8080),
                container_port: 80,
                proto: Proto::Tcp
            }]
        );
        let p = parse_publish("127.0.0.1:8080:80/udp").unwrap();
        assert_eq!(p[0].host_ip, Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        assert_eq!(p[0].proto, Proto::Udp);
        let p = parse_publish("80").unwrap();
        assert_eq!(p[0].host_port, None);
        let p = parse_publish("127.0.0.1::80").unwrap();
        assert_eq!(
            (p[0].host_ip, p[0].host_port),
            (Some(IpAddr::V4(Ipv4Addr::LOCALHOST)), None)
        );
        let p = parse_publish("9000-9002:80-82/tcp").unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!((p[2].host_port, p[2].container_port), (Some(9002), 82));
        let p = parse_publish("0.0.0.0:1:2").unwrap();
        assert_eq!(p[0].host_ip, None);
        let p = parse_publish("[fd00::1]:8080:80").unwrap();
        assert_eq!(p[0].host_ip, Some("fd00::1".parse().unwrap()));
        let p = parse_publish("[::]:8080:80").unwrap();
        assert_eq!(p[0].host_ip, Some("::".parse().unwrap()));
        let p = parse_publish("[::1]:8080:80").unwrap();
        assert_eq!(p[0].host_ip, Some(IpAddr::V6(Ipv6Addr::LOCALHOST)));
        let p = parse_publish("[::1]:53:53/udp").unwrap();
        assert_eq!(p[0].proto, Proto::Udp);
        let p = parse_publish("7000-7001").unwrap();
        assert_eq!(p.len(), 2);
    }

    #[test]
    fn garbage_is_refused() {
        for bad in [
            "",
            "abc",
            "80:abc",
            "0:80",
            "80:0",
            "70000:80",
            "80/sctpx",
            "1.2.3:80:80",
            "9000-9001:80-82",
            "82-80",
            ":",
            "a:b:c:d",
            "8080:",
        ] {
            assert!(parse_publish(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn loopback_forwards_go_to_the_containers_address() {
        let b = |ip: Option<&str>, port: u16, proto: Proto| PortBinding {
            host_ip: ip.map(|a| a.parse().unwrap()),
            host_port: port,
            container_port: 80,
            proto,
        };
        let bindings = [
            b(Some("::1"), 8001, Proto::Tcp),
            b(None, 8002, Proto::Tcp),
            b(Some("::"), 8003, Proto::Tcp),
            b(Some("127.0.0.1"), 8004, Proto::Tcp),
            b(Some("fd00::1"), 8005, Proto::Tcp),
            b(None, 8006, Proto::Udp),
        ];
        let v4: Ipv4Addr = "10.0.0.2".parse().unwrap();
        let v6: Ipv6Addr = "fd00::2".parse().unwrap();
        let f: Vec<String> = loopback_forwards(&bindings, v4, Some(v6))
            .iter()
            .map(|f| f.to_string())
            .collect();
        assert_eq!(
            f,
            [
                "tcp,[::1]:8001,[fd00::2]:80",
                "tcp,[::1]:8002,[fd00::2]:80,optional",
                "tcp,[::1]:8003,[fd00::2]:80,optional",
                "udp,[::1]:8006,[fd00::2]:80,optional",
            ]
        );
        // IPv4 only: the loopback asked for, to the IPv4 address.
        let f: Vec<String> = loopback_forwards(&bindings, v4, None)
            .iter()
            .map(|f| f.to_string())
            .collect();
        assert_eq!(f, ["tcp,[::1]:8001,10.0.0.2:80"]);
    }

    #[test]
    fn exposed() {
        assert_eq!(parse_exposed("80").unwrap(), vec![(80, Proto::Tcp)]);
        assert_eq!(parse_exposed("53/udp").unwrap(), vec![(53, Proto::Udp)]);
        assert_eq!(parse_exposed("1-3/tcp").unwrap().len(), 3);
        assert!(parse_exposed("x").is_err());
    }
}
