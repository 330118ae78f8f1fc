//! The default network of rootless containers: pasta (Debian's `passt`
//! package), one process per container, attached to the container's
//! namespace file. It gives the namespace an interface with the host's
//! address and default route (`--config-net`), carries the container's
//! connections out through ordinary sockets of the user's, maps the
//! gateway's address to the host's loopback, and forwards every published
//! port itself (no proxy process per port).
//!
//! pasta daemonizes once the namespace is configured: the first process's
//! exit says whether it worked (its stderr why not), the daemon writes its
//! pid to a file of ours. It quits by itself when the namespace file it was
//! given is removed (it watches the directory), and is killed by its pid at
//! teardown too.

use std::io::Read;
use std::net::Ipv4Addr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::{Error, PortBinding, Proto, Result};

/// The program looked up on $PATH.
pub const PROGRAM: &str = "pasta";

/// The address inside a pasta's namespace whose DNS queries (UDP port 53)
/// pasta forwards to the host's first resolver (`--dns-forward`, podman's
/// address): from its own sockets on the host, so a loopback resolver of
/// the host's (systemd-resolved's 127.0.0.53), which no address inside
/// the namespace reaches, answers through it.
pub const DNS_FORWARD: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 1);

/// pasta on $PATH, or the one line saying it is missing.
pub fn find() -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(PROGRAM))
        .find(|p| {
            std::fs::metadata(p)
                .map(|m| m.is_file() && m.mode() & 0o111 != 0)
                .unwrap_or(false)
        })
        .ok_or_else(|| {
            Error::Invalid(
                "rootless networking needs pasta: pasta not found in $PATH (install the passt package, or use --network none or --network host)"
                    .into(),
            )
        })
}

/// pasta's arguments for namespace `netns` (IPv4 only unless `ipv6`), its pid written to `pidfile`,
/// forwarding `ports` (TCP with `-t`, UDP with `-u`; `none` for neither)
/// and nothing from the namespace's loopback to the host's (`-T`/`-U`);
/// DNS queries to [`DNS_FORWARD`] go to the host's resolver.
pub fn args(
    netns: &Path,
    pidfile: &Path,
    ports: &[PortBinding],
    ipv6: bool,
) -> Vec<std::ffi::OsString> {
    // IPv4 only when the host has no IPv6 for pasta to copy (pasta starts
    // ~25 ms sooner without its IPv6 side); no DHCP server, the interface
    // being configured from outside.
    let mut a: Vec<std::ffi::OsString> =
        ["--config-net", "--quiet"].iter().map(Into::into).collect();
    if !ipv6 {
        a.push("-4".into());
    }
    for w in ["--no-dhcp", "--dns-forward"] {
        a.push(w.into());
    }
    a.push(DNS_FORWARD.to_string().into());
    a.push("--netns".into());
    a.push(netns.into());
    a.push("--pid".into());
    a.push(pidfile.into());
    push_ports(&mut a, ports, port_spec);
    a
}

/// pasta's `-t`/`-u` options for `ports` (each as `spec` writes it; `none`
/// for a protocol without any), and no port forwarded from the namespace
/// to the host (`-T none -U none`).
fn push_ports(
    a: &mut Vec<std::ffi::OsString>,
    ports: &[PortBinding],
    spec: impl Fn(&PortBinding) -> String,
) {
    for (flag, proto) in [("-t", Proto::Tcp), ("-u", Proto::Udp)] {
        let mut any = false;
        for b in ports.iter().filter(|b| b.proto == proto) {
            a.push(flag.into());
            a.push(spec(b).into());
            any = true;
        }
        if !any {
            a.push(flag.into());
            a.push("none".into());
        }
    }
    for f in ["-T", "none", "-U", "none"] {
        a.push(f.into());
    }
}

/// `[ADDRESS/]HOSTPORT:CONTAINERPORT`, pasta's form of one binding.
fn port_spec(b: &PortBinding) -> String {
    match b.host_ip {
        Some(ip) => format!("{ip}/{}:{}", b.host_port, b.container_port),
        None => format!("{}:{}", b.host_port, b.container_port),
    }
}

/// pasta's arguments for a port forwarder into the rootless network
/// namespace `netns` (see `rootless_netns`), which another pasta already
/// configured: no configuration, its own (unused, down) interface `ifname`
/// beside that one's, and each of `ports` forwarded from the host to the
/// same port on the namespace's loopback, where berth's DNAT rules take it
/// to the container (as they take a root host's loopback connection).
pub fn forwarder_args(
    netns: &Path,
    pidfile: &Path,
    ifname: &str,
    ports: &[PortBinding],
) -> Vec<std::ffi::OsString> {
    let mut a: Vec<std::ffi::OsString> = ["--quiet", "-4", "--no-dhcp", "--netns"]
        .iter()
        .map(Into::into)
        .collect();
    a.push(netns.into());
    for w in [
        "--pid".as_ref(),
        pidfile.as_os_str(),
        "-I".as_ref(),
        ifname.as_ref(),
    ] {
        a.push(w.into());
    }
    push_ports(&mut a, ports, |b| {
        port_spec(&PortBinding {
            container_port: b.host_port,
            ..*b
        })
    });
    a
}

/// Starts pasta (`exe`) on namespace `netns` with `ports` and returns the
/// daemon's pid, once the namespace is configured; pasta's own last line
/// of error otherwise.
/// `ipv6`: give the namespace the host's IPv6 side too (when the host has
/// one to copy, see [`host_ipv6`]).
pub fn start(
    exe: &Path,
    netns: &Path,
    pidfile: &Path,
    ports: &[PortBinding],
    ipv6: bool,
) -> Result<i32> {
    let ipv6 = ipv6 && host_ipv6().is_some();
    start_with(exe, netns, pidfile, args(netns, pidfile, ports, ipv6))
}

/// [`start`] with arguments of the caller's ([`forwarder_args`]).
pub fn start_with(
    exe: &Path,
    netns: &Path,
    pidfile: &Path,
    args: Vec<std::ffi::OsString>,
) -> Result<i32> {
    let _t = berth_trace::span("network", "pasta: configure the namespace, forward ports")
        .detail(|| netns.display().to_string());
    private_parent(pidfile)?;
    let _ = std::fs::remove_file(pidfile);
    let mut child = Command::new(exe)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Io(format!("run {}", exe.display()), e))?;
    let status = child
        .wait()
        .map_err(|e| Error::Io(format!("wait for {}", exe.display()), e))?;
    // What the first process wrote is in the pipe; the daemon does not
    // keep it (its stdio is /dev/null), but it is read without blocking
    // all the same.
    let mut err = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = nix::fcntl::fcntl(
            std::os::fd::AsRawFd::as_raw_fd(&pipe),
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        );
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        err = String::from_utf8_lossy(&buf).into_owned();
    }
    if !status.success() {
        let line = err
            .lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty() && !l.contains("to syslog"))
            .map(str::to_owned)
            .unwrap_or_else(|| status.to_string());
        return Err(Error::Invalid(format!("pasta failed: {line}")));
    }
    read_pid(pidfile).ok_or_else(|| {
        Error::Invalid(format!(
            "pasta failed: it wrote no pid to {}",
            pidfile.display()
        ))
    })
}

fn read_pid(pidfile: &Path) -> Option<i32> {
    std::fs::read_to_string(pidfile)
        .ok()?
        .trim()
        .parse::<i32>()
        .ok()
        .filter(|p| *p > 0)
}

/// Ends the pasta of namespace `netns` whose pid is in `pidfile` (only
/// when that process's command line names the namespace: a pid reused
/// since is left alone) and removes the file. A pasta already gone is fine.
pub fn stop(pidfile: &Path, netns: &Path) {
    if let Some(pid) = read_pid(pidfile) {
        if names(pid, netns) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
    let _ = std::fs::remove_file(pidfile);
}

/// Whether process `pid`'s command line names namespace `netns` (a pasta
/// of ours, not a process that reused its pid).
fn names(pid: i32, netns: &Path) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
        let want = netns.as_os_str().as_encoded_bytes();
        c.split(|b| *b == 0).any(|w| w == want)
    })
}

/// Whether the pasta of namespace `netns` whose pid is in `pidfile` runs.
pub fn running(pidfile: &Path, netns: &Path) -> bool {
    read_pid(pidfile).is_some_and(|pid| names(pid, netns))
}

/// The host's IPv4 default gateway (`/proc/net/route`), which pasta gives
/// the container as its gateway and maps to the host's loopback: where a
/// rootless container reaches the host (`host-gateway`).
pub fn host_gateway() -> Option<Ipv4Addr> {
    let text = std::fs::read_to_string("/proc/net/route").ok()?;
    text.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() < 3 || f[1] != "00000000" {
            return None;
        }
        let gw = u32::from_str_radix(f[2], 16).ok()?;
        // (the file prints the network-order address's memory as a
        // native-endian word)
        Some(Ipv4Addr::from(gw.to_ne_bytes()))
    })
}

/// The host's IPv4 address towards its default gateway (the one the
/// kernel picks as source for it: the default route's interface's), which
/// pasta copies into the container's namespace. A UDP socket's `connect`
/// sends nothing.
pub fn host_address() -> Option<Ipv4Addr> {
    let gw = host_gateway()?;
    let s = std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
    s.connect((gw, 9)).ok()?;
    match s.local_addr().ok()?.ip() {
        std::net::IpAddr::V4(a) if !a.is_unspecified() => Some(a),
        _ => None,
    }
}

/// The host's IPv6 side pasta copies into a container's namespace: the
/// first global address (with its prefix) of the interface of the host's
/// IPv6 default route, and that route's gateway. None when the host has no
/// such route or address (pasta then runs IPv4 only).
pub fn host_ipv6() -> Option<((std::net::Ipv6Addr, u8), std::net::Ipv6Addr)> {
    let routes = std::fs::read_to_string("/proc/net/ipv6_route").ok()?;
    let addrs = std::fs::read_to_string("/proc/net/if_inet6").ok()?;
    host_ipv6_of(&routes, &addrs)
}

/// [`host_ipv6`] from the texts of /proc/net/ipv6_route and if_inet6.
fn host_ipv6_of(
    routes: &str,
    addrs: &str,
) -> Option<((std::net::Ipv6Addr, u8), std::net::Ipv6Addr)> {
    let hex6 = |t: &str| {
        u128::from_str_radix(t, 16)
            .ok()
            .map(std::net::Ipv6Addr::from)
    };
    // (dest, dest prefix, src, src prefix, next hop, metric, refs, use,
    // flags, device); RTF_REJECT (0x200) marks the unreachable ones.
    let (dev, gw) = routes.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let flags = u32::from_str_radix(f.get(8)?, 16).ok()?;
        let default = f[0].bytes().all(|b| b == b'0') && f[1] == "00";
        (default && flags & 0x200 == 0 && f[9] != "lo").then(|| (f[9], hex6(f[4])))
    })?;
    // (address, index, prefix, scope, flags, device); scope 00 is global.
    let ip = addrs.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() == 6 && f[5] == dev && f[3] == "00")
            .then(|| Some((hex6(f[0])?, u8::from_str_radix(f[2], 16).ok()?)))
            .flatten()
    })?;
    Some((ip, gw?))
}

/// What pasta (or slirp4netns) gave a container's namespace: its
/// interface's IPv4 address, global IPv6 address (each with its prefix)
/// and MAC address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Addresses {
    pub ip: Option<(Ipv4Addr, u8)>,
    pub ip6: Option<(std::net::Ipv6Addr, u8)>,
    pub mac: Option<[u8; 6]>,
}

/// Reads [`Addresses`] in namespace `netns` (on a thread that enters it).
pub fn addresses(netns: &Path) -> Result<Addresses> {
    crate::netns::run_in(netns, || {
        let mut nl = crate::netlink::Netlink::open()?;
        let ip = nl.addresses()?.into_iter().find(|(a, _)| !a.is_loopback());
        let ip6 = nl.addresses6()?.into_iter().find(|(a, _)| {
            // (not the loopback, not link-local fe80::/10)
            !a.is_loopback() && a.segments()[0] & 0xffc0 != 0xfe80
        });
        let mac = nl
            .links()?
            .into_iter()
            .filter(|l| l.name != "lo")
            .find_map(|l| l.mac);
        Ok(Addresses { ip, ip6, mac })
    })
}

/// Creates the directory of `pidfile` (0700) when missing: the pid and
/// log files of pasta and slirp4netns.
pub(crate) fn private_parent(pidfile: &Path) -> Result<()> {
    if let Some(dir) = pidfile.parent() {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| Error::Io(format!("create {}", dir.display()), e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::net::IpAddr;

    #[test]
    fn ports_become_pasta_specs() {
        let b = |ip: Option<IpAddr>, h, c, proto| PortBinding {
            host_ip: ip,
            host_port: h,
            container_port: c,
            proto,
        };
        let a = args(
            Path::new("/run/ns/x"),
            Path::new("/run/p/x.pid"),
            &[
                b(None, 8080, 80, Proto::Tcp),
                b(Some("127.0.0.1".parse().unwrap()), 9000, 90, Proto::Tcp),
            ],
            false,
        );
        let a: Vec<String> = a.iter().map(|s| s.to_string_lossy().into_owned()).collect();
        assert_eq!(
            a.join(" "),
            "--config-net --quiet -4 --no-dhcp --dns-forward 169.254.1.1 --netns /run/ns/x --pid /run/p/x.pid -t 8080:80 -t 127.0.0.1/9000:90 -u none -T none -U none"
        );
        // With IPv6 on the host: both families.
        let a = args(Path::new("/run/ns/x"), Path::new("/run/p/x.pid"), &[], true);
        let a: Vec<String> = a.iter().map(|s| s.to_string_lossy().into_owned()).collect();
        assert_eq!(
            a.join(" "),
            "--config-net --quiet --no-dhcp --dns-forward 169.254.1.1 --netns /run/ns/x --pid /run/p/x.pid -t none -u none -T none -U none"
        );
        // A forwarder into the rootless namespace: no configuration, its
        // own interface, each host port to the same port inside.
        let f = forwarder_args(
            Path::new("/run/rootless-netns/net"),
            Path::new("/run/p/y.pid"),
            "bp0123456789ab",
            &[
                b(None, 8080, 80, Proto::Tcp),
                b(Some("127.0.0.1".parse().unwrap()), 5353, 53, Proto::Udp),
            ],
        );
        let f: Vec<String> = f.iter().map(|s| s.to_string_lossy().into_owned()).collect();
        assert_eq!(
            f.join(" "),
            "--quiet -4 --no-dhcp --netns /run/rootless-netns/net --pid /run/p/y.pid -I bp0123456789ab -t 8080:8080 -u 127.0.0.1/5353:5353 -T none -U none"
        );
    }

    #[test]
    fn the_host_s_ipv6_is_its_default_route_s_interface_s() {
        let routes = "\
fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000001 00000000 00000003     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo
";
        let addrs = "\
fe8000000000000000fc00fffe000001 04 40 20 80     eth0
fd000000000000000000000000000002 04 40 00 82     eth0
00000000000000000000000000000001 01 80 10 80       lo
";
        assert_eq!(
            host_ipv6_of(routes, addrs),
            Some((("fd00::2".parse().unwrap(), 64), "fd00::1".parse().unwrap()))
        );
        // Only the unreachable default (loopback-only IPv6): none.
        let lo_only = routes.lines().nth(2).unwrap();
        assert_eq!(host_ipv6_of(lo_only, addrs), None);
    }
}
