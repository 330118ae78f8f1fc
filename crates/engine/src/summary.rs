//! The container list (`ps`, `GET /containers/json`): one typed row per
//! container in the shape of Docker's ContainerSummary (API v1.44), which
//! serializes to Docker's JSON as it is; front ends format the columns.

use crate::containers::{ContainerId, State};
use crate::filters::Filters;
use crate::images::parse_time;
use crate::options::HostConfig;
use crate::Engine;
use crate::Result;
use berth_network::Proto;
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

/// A container's state as the list names it (Docker's `State`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerState {
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl ContainerState {
    pub fn as_str(self) -> &'static str {
        match self {
            ContainerState::Created => "created",
            ContainerState::Running => "running",
            ContainerState::Paused => "paused",
            ContainerState::Restarting => "restarting",
            ContainerState::Removing => "removing",
            ContainerState::Exited => "exited",
            ContainerState::Dead => "dead",
        }
    }

    /// Docker's state names, as the `status=` filter accepts them.
    pub fn parse(s: &str) -> Option<ContainerState> {
        Some(match s {
            "created" => ContainerState::Created,
            "running" => ContainerState::Running,
            "paused" => ContainerState::Paused,
            "restarting" => ContainerState::Restarting,
            "removing" => ContainerState::Removing,
            "exited" => ContainerState::Exited,
            "dead" => ContainerState::Dead,
            _ => return None,
        })
    }
}

impl std::fmt::Display for ContainerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A port of the list (Docker's `Port`): an exposed port, with the host
/// address and port when it is published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Port {
    #[serde(rename = "IP", skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(rename = "PrivatePort")]
    pub private_port: u16,
    #[serde(rename = "PublicPort", skip_serializing_if = "Option::is_none")]
    pub public_port: Option<u16>,
    #[serde(rename = "Type")]
    pub typ: Proto,
}

impl std::fmt::Display for Port {
    /// The PORTS column's words for one port: `0.0.0.0:8080->80/tcp`, or
    /// `80/tcp` for one that is only exposed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.public_port {
            Some(public) => write!(
                f,
                "{}:{public}->{}/{}",
                self.ip.as_deref().unwrap_or("0.0.0.0"),
                self.private_port,
                self.typ
            ),
            None => write!(f, "{}/{}", self.private_port, self.typ),
        }
    }
}

/// `IPAMConfig` of an endpoint: the address asked for with `--ip`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EndpointIpamConfig {
    #[serde(rename = "IPv4Address", skip_serializing_if = "String::is_empty")]
    pub ipv4_address: String,
    #[serde(rename = "IPv6Address", skip_serializing_if = "String::is_empty")]
    pub ipv6_address: String,
}

/// A container's endpoint on one network (Docker's EndpointSettings).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EndpointSettings {
    #[serde(rename = "IPAMConfig")]
    pub ipam_config: Option<EndpointIpamConfig>,
    #[serde(rename = "Links")]
    pub links: Option<Vec<String>>,
    #[serde(rename = "Aliases")]
    pub aliases: Option<Vec<String>>,
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    #[serde(rename = "Gateway")]
    pub gateway: String,
    #[serde(rename = "IPAddress")]
    pub ip_address: String,
    #[serde(rename = "IPPrefixLen")]
    pub ip_prefix_len: u8,
    #[serde(rename = "IPv6Gateway")]
    pub ipv6_gateway: String,
    #[serde(rename = "GlobalIPv6Address")]
    pub global_ipv6_address: String,
    #[serde(rename = "GlobalIPv6PrefixLen")]
    pub global_ipv6_prefix_len: u8,
    #[serde(rename = "MacAddress")]
    pub mac_address: String,
    #[serde(rename = "DriverOpts")]
    pub driver_opts: Option<BTreeMap<String, String>>,
}

impl EndpointSettings {
    /// The endpoint of a network berth keeps no record of (`host`, `none`):
    /// only its ID.
    pub fn pseudo(network_id: String) -> EndpointSettings {
        EndpointSettings {
            network_id,
            ..EndpointSettings::default()
        }
    }
}

/// The networks of a container by name, in the order it joined them
/// (a JSON object, as Docker's map).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Networks(pub Vec<(String, EndpointSettings)>);

impl Networks {
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(n, _)| n.as_str())
    }

    pub fn get(&self, name: &str) -> Option<&EndpointSettings> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, e)| e)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for Networks {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// `NetworkSettings` of the list: only the networks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SummaryNetworkSettings {
    #[serde(rename = "Networks")]
    pub networks: Networks,
}

/// `HostConfig` of the list: only the network mode.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SummaryHostConfig {
    /// "bridge" (the default network, also when none was asked for), a user
    /// network's name, "host", "none" or "container:ID".
    #[serde(rename = "NetworkMode")]
    pub network_mode: String,
}

/// A bind or volume mount (Docker's MountPoint); tmpfs mounts are not
/// listed, as Docker lists them in HostConfig.Tmpfs only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MountSummary {
    /// bind | volume
    #[serde(rename = "Type")]
    pub typ: String,
    /// A volume's name (none for binds).
    #[serde(rename = "Name", skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(rename = "Source")]
    pub source: String,
    #[serde(rename = "Destination")]
    pub destination: String,
    /// A volume's driver (none for binds).
    #[serde(rename = "Driver", skip_serializing_if = "String::is_empty")]
    pub driver: String,
    /// "ro" or "".
    #[serde(rename = "Mode")]
    pub mode: String,
    #[serde(rename = "RW")]
    pub rw: bool,
    /// "rprivate" for binds, "" for volumes.
    #[serde(rename = "Propagation")]
    pub propagation: String,
}

/// The bind and volume mounts of a container's HostConfig.
pub(crate) fn mount_points(h: &HostConfig) -> Vec<MountSummary> {
    h.mounts
        .iter()
        .filter(|m| m.typ != "tmpfs")
        .map(|m| MountSummary {
            typ: m.typ.clone(),
            name: m.name.clone().unwrap_or_default(),
            source: m.source.clone(),
            destination: m.destination.clone(),
            driver: if m.name.is_some() {
                "local".into()
            } else {
                String::new()
            },
            mode: if m.read_only { "ro" } else { "" }.into(),
            rw: !m.read_only,
            propagation: if m.typ == "bind" { "rprivate" } else { "" }.into(),
        })
        .collect()
}

/// One row of the container list (Docker's ContainerSummary).
#[derive(Debug, Clone, Serialize)]
pub struct ContainerSummary {
    #[serde(rename = "Id")]
    pub id: ContainerId,
    /// The name with a leading "/".
    #[serde(rename = "Names")]
    pub names: Vec<String>,
    /// The image as the container was created from it (name or ID).
    #[serde(rename = "Image")]
    pub image: String,
    /// `sha256:…`
    #[serde(rename = "ImageID")]
    pub image_id: String,
    /// Docker's COMMAND: the program and its arguments, those with a space
    /// in single quotes.
    #[serde(rename = "Command")]
    pub command: String,
    /// Unix seconds.
    #[serde(rename = "Created")]
    pub created: i64,
    #[serde(rename = "Ports")]
    pub ports: Vec<Port>,
    /// The writable layer's size (only when asked for: it walks the layer).
    #[serde(rename = "SizeRw", skip_serializing_if = "Option::is_none")]
    pub size_rw: Option<u64>,
    #[serde(rename = "Labels")]
    pub labels: BTreeMap<String, String>,
    #[serde(rename = "State")]
    pub state: ContainerState,
    /// "Up 2 minutes", "Exited (1) 3 seconds ago".
    #[serde(rename = "Status")]
    pub status: String,
    #[serde(rename = "HostConfig")]
    pub host_config: SummaryHostConfig,
    #[serde(rename = "NetworkSettings")]
    pub network_settings: SummaryNetworkSettings,
    #[serde(rename = "Mounts")]
    pub mounts: Vec<MountSummary>,
    /// Not in Docker's shape: the exit code of an exited container (what
    /// the `exited=` filter compares).
    #[serde(skip)]
    pub exit_code: Option<i32>,
    /// Not in Docker's shape: the health status ("starting", "healthy",
    /// "unhealthy") of a container with a healthcheck that runs.
    #[serde(skip)]
    pub health: Option<String>,
}

impl ContainerSummary {
    /// The name without its leading "/".
    pub fn name(&self) -> &str {
        self.names
            .first()
            .map_or("", |n| n.strip_prefix('/').unwrap_or(n))
    }

    /// `Created` as a time.
    pub fn created_time(&self) -> SystemTime {
        UNIX_EPOCH + std::time::Duration::from_secs(self.created.max(0).unsigned_abs())
    }
}

/// Docker's ContainerList options (`ps -a`, `-n`, `-s`, `--filter`).
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// Stopped containers too (else only running and paused ones, unless a
    /// `status=` or `exited=` filter or a limit asks for them).
    pub all: bool,
    /// The newest N only (any state).
    pub limit: Option<usize>,
    /// Measure each writable layer.
    pub size: bool,
    pub filters: Filters,
}

fn unix_seconds(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl Engine {
    /// Every container, reconciled, newest first; `sizes` also measures
    /// each writable layer.
    pub fn containers(&self, sizes: bool) -> Result<Vec<ContainerSummary>> {
        Ok(self
            .container_records()?
            .into_iter()
            .map(|c| {
                let paused = c.state == State::Running && self.live(&c).paused;
                let health = if c.state == State::Running {
                    self.health(&c)
                        .and_then(|h| h["Status"].as_str().map(str::to_owned))
                } else {
                    None
                };
                let (state, status) = match c.state {
                    State::Created => (ContainerState::Created, "Created".to_owned()),
                    State::Running => {
                        let up = format!(
                            "Up {}",
                            crate::lifecycle::humantime_ago(parse_time(c.started_at.as_deref()))
                        );
                        let up = match health.as_deref() {
                            Some("starting") => format!("{up} (health: starting)"),
                            Some(h) => format!("{up} ({h})"),
                            None => up,
                        };
                        if paused {
                            (ContainerState::Paused, format!("{up} (Paused)"))
                        } else {
                            (ContainerState::Running, up)
                        }
                    }
                    State::Exited => (
                        ContainerState::Exited,
                        format!(
                            "Exited ({}) {} ago",
                            c.exit_code.unwrap_or(0),
                            crate::lifecycle::humantime_ago(parse_time(c.finished_at.as_deref()))
                        ),
                    ),
                };
                let (network_mode, networks) = self.summary_networks(&c);
                ContainerSummary {
                    command: crate::lifecycle::ps_command(&c.config.args),
                    created: unix_seconds(parse_time(Some(&c.created))),
                    image: c.image_ref.clone(),
                    image_id: c.image_id.clone(),
                    names: vec![format!("/{}", c.name)],
                    state,
                    status,
                    exit_code: c.exit_code,
                    health,
                    labels: c.config.labels.clone(),
                    size_rw: sizes.then(|| self.layers.container_size(c.id.as_str()).unwrap_or(0)),
                    ports: self.summary_ports(&c),
                    host_config: SummaryHostConfig { network_mode },
                    network_settings: SummaryNetworkSettings { networks },
                    mounts: mount_points(&c.config.host),
                    id: c.id,
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_serializes_in_dockers_shape() {
        let s = ContainerSummary {
            id: ContainerId::parse(&"a".repeat(64)).expect("id"),
            names: vec!["/web".into()],
            image: "busybox".into(),
            image_id: "sha256:00".into(),
            command: "sleep 9".into(),
            created: 1_700_000_000,
            ports: vec![
                Port {
                    ip: Some("0.0.0.0".into()),
                    private_port: 80,
                    public_port: Some(8080),
                    typ: Proto::Tcp,
                },
                Port {
                    ip: None,
                    private_port: 53,
                    public_port: None,
                    typ: Proto::Udp,
                },
            ],
            size_rw: None,
            labels: BTreeMap::from([("a".to_owned(), "b".to_owned())]),
            state: ContainerState::Running,
            status: "Up 2 seconds".into(),
            host_config: SummaryHostConfig {
                network_mode: "net1".into(),
            },
            network_settings: SummaryNetworkSettings {
                networks: Networks(vec![
                    (
                        "net1".into(),
                        EndpointSettings {
                            network_id: "n1".into(),
                            ip_address: "10.0.0.2".into(),
                            ..Default::default()
                        },
                    ),
                    ("alpha".into(), EndpointSettings::pseudo("n0".into())),
                ]),
            },
            mounts: vec![MountSummary {
                typ: "volume".into(),
                name: "data".into(),
                source: "/var/lib/berth/volumes/data/_data".into(),
                destination: "/data".into(),
                driver: "local".into(),
                mode: String::new(),
                rw: true,
                propagation: String::new(),
            }],
            exit_code: None,
            health: None,
        };
        let v = serde_json::to_value(&s).expect("json");
        assert_eq!(v["Id"], "a".repeat(64));
        assert_eq!(v["Names"], serde_json::json!(["/web"]));
        assert_eq!(v["Created"], 1_700_000_000);
        assert_eq!(v["State"], "running");
        assert_eq!(
            v["Ports"],
            serde_json::json!([
                {"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
                {"PrivatePort": 53, "Type": "udp"}
            ])
        );
        assert!(v.get("SizeRw").is_none());
        assert_eq!(v["HostConfig"]["NetworkMode"], "net1");
        let n = &v["NetworkSettings"]["Networks"]["net1"];
        assert_eq!(n["NetworkID"], "n1");
        assert_eq!(n["IPAddress"], "10.0.0.2");
        assert_eq!(n["EndpointID"], "");
        assert_eq!(n["Aliases"], serde_json::Value::Null);
        assert_eq!(v["Mounts"][0]["Name"], "data");
        assert_eq!(v["Mounts"][0]["RW"], true);
        assert!(v.get("exit_code").is_none() && v.get("health").is_none());
        // The networks keep the order the container joined them in.
        let text = serde_json::to_string(&s.network_settings).expect("json");
        assert!(text.find("net1") < text.find("alpha"), "{text}");
        assert_eq!(s.name(), "web");
        assert_eq!(s.ports[0].to_string(), "0.0.0.0:8080->80/tcp");
        assert_eq!(s.ports[1].to_string(), "53/udp");
    }
}
