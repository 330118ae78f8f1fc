//! The default network of rootless containers where pasta is not
//! installed: slirp4netns (as podman falls back to it), one process per
//! container attached to the container's namespace file
//! (`--netns-type=path`), chosen automatically.
//!
//! It gives the namespace `tap0` with 10.0.2.100/24 and a default route
//! through 10.0.2.2 (`--configure`), which is the host's loopback from
//! inside (host-gateway), and resolvers at 10.0.2.3. It stays in the
//! foreground: berth starts it in a process group of its own, waits until
//! its API socket answers (the interface is configured before), records
//! its pid, and publishes each `-p` port through that socket
//! (`add_hostfwd`: slirp4netns listens on the host itself, no proxy
//! process per port). It is killed by its pid at teardown, as pasta is.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{pasta, Error, PortBinding, Result};

/// The program looked up on $PATH.
pub const PROGRAM: &str = "slirp4netns";

/// The gateway slirp4netns gives the namespace: the host's loopback.
pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 2);

/// The address slirp4netns gives the container (`--configure`).
pub const ADDRESS: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 100);

/// slirp4netns's resolver: it forwards to the host's resolvers from the
/// host's namespace (a loopback one included).
pub const DNS: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 3);

/// slirp4netns on $PATH.
pub fn find() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(PROGRAM))
        .find(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0))
}

/// What carries the rootless default network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    Pasta(PathBuf),
    Slirp4netns(PathBuf),
}

impl Backend {
    /// pasta when installed, else slirp4netns; pasta's line (which names
    /// the passt package) when neither is.
    pub fn find() -> Result<Backend> {
        match pasta::find() {
            Ok(p) => Ok(Backend::Pasta(p)),
            Err(e) => find().map(Backend::Slirp4netns).ok_or(e),
        }
    }

    /// The program's name (`info`'s RootlessNetworkCmd).
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Pasta(_) => pasta::PROGRAM,
            Backend::Slirp4netns(_) => PROGRAM,
        }
    }

    /// The IPv4 address the container's interface gets: pasta's is the
    /// host's (see [`pasta::host_address`]), slirp4netns's its own.
    pub fn container_address(&self) -> Option<Ipv4Addr> {
        match self {
            Backend::Pasta(_) => pasta::host_address(),
            Backend::Slirp4netns(_) => Some(ADDRESS),
        }
    }

    /// Where the container reaches the host (`host-gateway`).
    pub fn host_gateway(&self) -> Option<Ipv4Addr> {
        match self {
            Backend::Pasta(_) => pasta::host_gateway(),
            Backend::Slirp4netns(_) => Some(GATEWAY),
        }
    }

    /// The address inside whose DNS queries reach the host's resolver,
    /// a loopback one too: pasta's [`pasta::DNS_FORWARD`], slirp4netns's
    /// [`DNS`].
    pub fn dns_forward(&self) -> Ipv4Addr {
        match self {
            Backend::Pasta(_) => pasta::DNS_FORWARD,
            Backend::Slirp4netns(_) => DNS,
        }
    }
}

/// slirp4netns's arguments for namespace `netns` with API socket `api`.
pub fn args(netns: &Path, api: &Path) -> Vec<std::ffi::OsString> {
    let mut a: Vec<std::ffi::OsString> = [
        "--configure",
        "--mtu=65520",
        "--netns-type=path",
        "--api-socket",
    ]
    .iter()
    .map(Into::into)
    .collect();
    a.push(api.into());
    a.push(netns.into());
    a.push("tap0".into());
    a
}

/// Starts slirp4netns (`exe`) on namespace `netns`, its pid written to
/// `pidfile`, its API socket at `api`; once it answers, publishes `ports`
/// through it. Its last line of error otherwise (it is then ended).
pub fn start(
    exe: &Path,
    netns: &Path,
    pidfile: &Path,
    api: &Path,
    ports: &[PortBinding],
) -> Result<i32> {
    let _t = berth_trace::span(
        "network",
        "slirp4netns: configure the namespace, forward ports",
    )
    .detail(|| netns.display().to_string());
    crate::pasta::private_parent(pidfile)?;
    let _ = std::fs::remove_file(api);
    let log = pidfile.with_extension("log");
    let err_file = std::fs::File::create(&log)
        .map_err(|e| Error::Io(format!("create {}", log.display()), e))?;
    let mut child = Command::new(exe)
        .args(args(netns, api))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err_file)
        .process_group(0)
        .spawn()
        .map_err(|e| Error::Io(format!("run {}", exe.display()), e))?;
    let pid = child.id() as i32;
    let last_line = || {
        std::fs::read_to_string(&log).ok().and_then(|t| {
            t.lines()
                .map(str::trim)
                .rfind(|l| !l.is_empty())
                .map(str::to_owned)
        })
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let line = last_line().unwrap_or_else(|| status.to_string());
            let _ = std::fs::remove_file(&log);
            return Err(Error::Invalid(format!("slirp4netns failed: {line}")));
        }
        if std::os::unix::net::UnixStream::connect(api).is_ok() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_file(&log);
            return Err(Error::Invalid(
                "slirp4netns failed: its API socket never answered".into(),
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = std::fs::remove_file(&log);
    // Nobody waits for it: it outlives this command (killed by its pid).
    drop(child);
    std::fs::write(pidfile, format!("{pid}\n"))
        .map_err(|e| Error::Io(format!("write {}", pidfile.display()), e))?;
    for b in ports {
        if let Err(e) = add_hostfwd(api, b) {
            pasta::stop(pidfile, netns);
            return Err(e);
        }
    }
    Ok(pid)
}

/// One `add_hostfwd` request on the API socket.
fn add_hostfwd(api: &Path, b: &PortBinding) -> Result<()> {
    let host = b.host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let req = serde_json::json!({
        "execute": "add_hostfwd",
        "arguments": {
            "proto": b.proto.to_string(),
            "host_addr": host.to_string(),
            "host_port": b.host_port,
            "guest_port": b.container_port,
        }
    });
    let io = |e: std::io::Error| Error::Io(format!("slirp4netns API {}", api.display()), e);
    let mut s = std::os::unix::net::UnixStream::connect(api).map_err(io)?;
    s.write_all(req.to_string().as_bytes()).map_err(io)?;
    s.shutdown(std::net::Shutdown::Write).map_err(io)?;
    let mut out = String::new();
    s.read_to_string(&mut out).map_err(io)?;
    let v: serde_json::Value = serde_json::from_str(&out)
        .map_err(|e| Error::Invalid(format!("slirp4netns answered {out:?}: {e}")))?;
    if let Some(desc) = v.get("error") {
        let desc = desc
            .get("desc")
            .and_then(|d| d.as_str())
            .unwrap_or("failed");
        return Err(Error::Conflict(format!(
            "Bind for {host}:{} failed: {desc}",
            b.host_port
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn slirp4netns_is_given_the_namespace_file_and_an_api_socket() {
        let a = args(Path::new("/run/netns/x"), Path::new("/run/pasta/x.sock"));
        let a: Vec<String> = a.iter().map(|s| s.to_string_lossy().into_owned()).collect();
        assert_eq!(
            a.join(" "),
            "--configure --mtu=65520 --netns-type=path --api-socket /run/pasta/x.sock /run/netns/x tap0"
        );
    }
}
