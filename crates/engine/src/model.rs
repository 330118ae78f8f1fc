//! Docker's container model as its Engine API carries it: the body of
//! `POST /containers/create` (ContainerConfig with HostConfig and
//! NetworkingConfig inline, moby api v1.44), turned into the engine's
//! `CreateOptions` here, in the engine, with the same checks and words as
//! the command line's flags get. A front end (the API server) only decodes
//! JSON into these types; what a value means is decided once, here.
//!
//! Go clients send `null` for empty lists and maps, hence `Option` around
//! every collection; unknown keys are ignored as Go's decoder ignores them.

use crate::error::{EngineError, Result};
use crate::lifecycle::CreateOptions;
use crate::options::{self as o, DeviceMapping, Healthcheck, MountPoint, Ulimit};
use crate::spec::RunOptions;
use serde::Deserialize;
use std::collections::BTreeMap;

/// Docker's strslice: a JSON string or a list of strings.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum StrSlice {
    One(String),
    Many(Vec<String>),
}

impl StrSlice {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            StrSlice::One(s) => vec![s],
            StrSlice::Many(v) => v,
        }
    }
}

/// `Healthcheck` of ContainerConfig (durations in nanoseconds).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HealthConfig {
    pub test: Option<Vec<String>>,
    pub interval: i64,
    pub timeout: i64,
    pub start_period: i64,
    pub retries: i64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RestartPolicyModel {
    pub name: String,
    pub maximum_retry_count: i64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PortBindingModel {
    pub host_ip: String,
    pub host_port: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct UlimitModel {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DeviceModel {
    pub path_on_host: String,
    pub path_in_container: String,
    pub cgroup_permissions: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct LogConfigModel {
    #[serde(rename = "Type")]
    pub typ: String,
    pub config: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct BindOptionsModel {
    pub propagation: String,
    pub create_mountpoint: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VolumeOptionsModel {
    pub no_copy: bool,
    pub labels: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TmpfsOptionsModel {
    pub size_bytes: i64,
    pub mode: u32,
}

/// One entry of HostConfig.Mounts (`--mount` as structured data).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct MountModel {
    #[serde(rename = "Type")]
    pub typ: String,
    pub source: String,
    pub target: String,
    pub read_only: bool,
    pub bind_options: Option<BindOptionsModel>,
    pub volume_options: Option<VolumeOptionsModel>,
    pub tmpfs_options: Option<TmpfsOptionsModel>,
}

/// Docker's HostConfig (the parts berth implements; the rest is ignored as
/// an unknown key would be).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HostConfigModel {
    pub binds: Option<Vec<String>>,
    pub mounts: Option<Vec<MountModel>>,
    pub tmpfs: Option<BTreeMap<String, String>>,
    pub port_bindings: Option<BTreeMap<String, Option<Vec<PortBindingModel>>>>,
    pub publish_all_ports: bool,
    pub network_mode: String,
    pub restart_policy: Option<RestartPolicyModel>,
    pub auto_remove: bool,
    pub log_config: Option<LogConfigModel>,
    pub memory: i64,
    pub memory_swap: i64,
    pub memory_reservation: i64,
    pub nano_cpus: i64,
    pub cpu_shares: i64,
    pub cpu_quota: i64,
    pub cpu_period: i64,
    pub cpuset_cpus: String,
    pub cpuset_mems: String,
    pub pids_limit: Option<i64>,
    pub blkio_weight: u16,
    pub shm_size: i64,
    pub cap_add: Option<Vec<String>>,
    pub cap_drop: Option<Vec<String>>,
    pub privileged: bool,
    pub readonly_rootfs: bool,
    pub security_opt: Option<Vec<String>>,
    pub ulimits: Option<Vec<UlimitModel>>,
    pub sysctls: Option<BTreeMap<String, String>>,
    pub devices: Option<Vec<DeviceModel>>,
    pub group_add: Option<Vec<String>>,
    pub ipc_mode: String,
    pub pid_mode: String,
    #[serde(rename = "UTSMode")]
    pub uts_mode: String,
    pub userns_mode: String,
    pub init: Option<bool>,
    pub runtime: String,
    pub dns: Option<Vec<String>>,
    pub dns_search: Option<Vec<String>>,
    pub dns_options: Option<Vec<String>>,
    pub extra_hosts: Option<Vec<String>>,
    pub links: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct IpamConfigModel {
    #[serde(rename = "IPv4Address")]
    pub ipv4_address: String,
    #[serde(rename = "IPv6Address")]
    pub ipv6_address: String,
}

/// One entry of NetworkingConfig.EndpointsConfig.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EndpointModel {
    #[serde(rename = "IPAMConfig")]
    pub ipam_config: Option<IpamConfigModel>,
    pub aliases: Option<Vec<String>>,
    pub mac_address: String,
    pub driver_opts: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkingConfigModel {
    pub endpoints_config: Option<BTreeMap<String, Option<EndpointModel>>>,
}

/// The body of `POST /containers/create`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerCreateRequest {
    pub hostname: String,
    pub domainname: String,
    pub user: String,
    pub attach_stdin: bool,
    pub tty: bool,
    pub open_stdin: bool,
    pub stdin_once: bool,
    pub env: Option<Vec<String>>,
    pub cmd: Option<StrSlice>,
    pub entrypoint: Option<StrSlice>,
    pub image: String,
    pub labels: Option<BTreeMap<String, String>>,
    pub working_dir: String,
    pub stop_signal: String,
    pub stop_timeout: Option<i64>,
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    pub volumes: Option<BTreeMap<String, serde_json::Value>>,
    pub healthcheck: Option<HealthConfig>,
    pub mac_address: String,
    pub host_config: Option<HostConfigModel>,
    pub networking_config: Option<NetworkingConfigModel>,
}

fn invalid(msg: impl Into<String>) -> EngineError {
    EngineError::Invalid(msg.into())
}

fn positive(v: i64) -> Option<i64> {
    (v > 0).then_some(v)
}

impl MountModel {
    fn into_mount_point(self) -> Result<MountPoint> {
        let typ = if self.typ.is_empty() {
            "volume".to_owned()
        } else {
            self.typ.to_ascii_lowercase()
        };
        if self.target.is_empty() {
            return Err(invalid("invalid mount config: Target must not be empty"));
        }
        let mut options = Vec::new();
        let mut no_copy = false;
        let (source, name) = match typ.as_str() {
            "bind" => {
                if self.source.is_empty() {
                    return Err(invalid(
                        "invalid mount config for type \"bind\": field Source must not be empty",
                    ));
                }
                if let Some(b) = &self.bind_options {
                    if !b.propagation.is_empty() {
                        options.push(b.propagation.clone());
                    }
                }
                (self.source.clone(), None)
            }
            "volume" => {
                if let Some(v) = &self.volume_options {
                    no_copy = v.no_copy;
                }
                (self.source.clone(), Some(self.source.clone()))
            }
            "tmpfs" => {
                if !self.source.is_empty() {
                    return Err(invalid(
                        "invalid mount config for type \"tmpfs\": field Source must not be specified",
                    ));
                }
                if let Some(t) = &self.tmpfs_options {
                    if t.size_bytes > 0 {
                        options.push(format!("size={}", t.size_bytes));
                    }
                    if t.mode > 0 {
                        options.push(format!("mode={:o}", t.mode));
                    }
                }
                (String::new(), None)
            }
            other => return Err(invalid(format!("mount type unknown: {other:?}"))),
        };
        let m = MountPoint {
            typ,
            source,
            destination: self.target,
            read_only: self.read_only,
            options,
            name: name.filter(|n| !n.is_empty()),
            create_source: false,
            no_copy,
        };
        o::check_proc_mount(&m)?;
        Ok(m)
    }
}

/// Removes every `null` member of every object: Go's and Python's
/// clients send null for any unset field, numbers and strings included,
/// and Docker reads null as the field's zero value.
pub fn drop_nulls(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            m.retain(|_, x| !x.is_null());
            m.values_mut().for_each(drop_nulls);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

impl ContainerCreateRequest {
    /// Decodes a create body as dockerd does: unknown keys ignored, nulls
    /// taken for zero values; a malformed body is `Invalid` (400).
    pub fn from_json(body: &[u8]) -> Result<ContainerCreateRequest> {
        let mut v: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| invalid(format!("invalid JSON: {e}")))?;
        drop_nulls(&mut v);
        serde_json::from_value(v).map_err(|e| invalid(format!("invalid JSON: {e}")))
    }

    /// The engine's options for this request, with `name` from the query.
    /// Every value is checked as the matching flag is.
    pub fn into_create_options(self, name: Option<String>) -> Result<CreateOptions> {
        if self.image.is_empty() {
            return Err(invalid("No image specified"));
        }
        let hc = self.host_config.unwrap_or_default();
        let mut run = RunOptions {
            cmd: self.cmd.map(StrSlice::into_vec).unwrap_or_default(),
            entrypoint: self.entrypoint.map(StrSlice::into_vec),
            env: self.env.unwrap_or_default(),
            workdir: Some(self.working_dir).filter(|w| !w.is_empty()),
            user: Some(self.user).filter(|u| !u.is_empty()),
            hostname: Some(self.hostname).filter(|h| !h.is_empty()),
            tty: self.tty,
            read_only: hc.readonly_rootfs,
            labels: self.labels.unwrap_or_default(),
            ..Default::default()
        };
        for e in &run.env {
            if e.is_empty() || e.starts_with('=') {
                return Err(invalid(format!("invalid environment variable: {e}")));
            }
        }
        let h = &mut run.host;
        h.memory = positive(hc.memory);
        h.memory_swap = (hc.memory_swap != 0).then_some(hc.memory_swap);
        h.memory_reservation = positive(hc.memory_reservation);
        h.nano_cpus = positive(hc.nano_cpus);
        h.cpu_shares = u64::try_from(hc.cpu_shares).ok().filter(|v| *v > 0);
        h.cpu_quota = positive(hc.cpu_quota);
        h.cpu_period = u64::try_from(hc.cpu_period).ok().filter(|v| *v > 0);
        h.cpuset_cpus = Some(hc.cpuset_cpus).filter(|s| !s.is_empty());
        h.cpuset_mems = Some(hc.cpuset_mems).filter(|s| !s.is_empty());
        h.pids_limit = hc.pids_limit.filter(|v| *v != 0);
        h.blkio_weight = (hc.blkio_weight > 0).then_some(hc.blkio_weight);
        h.shm_size = positive(hc.shm_size);
        h.cap_add = hc
            .cap_add
            .unwrap_or_default()
            .iter()
            .map(|c| o::normalize_cap(c))
            .collect::<Result<_>>()?;
        h.cap_drop = hc
            .cap_drop
            .unwrap_or_default()
            .iter()
            .map(|c| o::normalize_cap(c))
            .collect::<Result<_>>()?;
        h.privileged = hc.privileged;
        for s in hc.security_opt.unwrap_or_default() {
            o::security_opt(h, &s)?;
        }
        h.ulimits = hc
            .ulimits
            .unwrap_or_default()
            .into_iter()
            .map(|u| Ulimit {
                name: u.name,
                soft: u.soft,
                hard: u.hard,
            })
            .collect();
        h.sysctls = hc.sysctls.unwrap_or_default();
        h.devices = hc
            .devices
            .unwrap_or_default()
            .into_iter()
            .map(|d| {
                let container = if d.path_in_container.is_empty() {
                    d.path_on_host.clone()
                } else {
                    d.path_in_container
                };
                let perms = if d.cgroup_permissions.is_empty() {
                    "rwm".to_owned()
                } else {
                    d.cgroup_permissions
                };
                o::device(&format!("{}:{container}:{perms}", d.path_on_host))
                    .map(|m: DeviceMapping| m)
            })
            .collect::<Result<_>>()?;
        h.group_add = hc.group_add.unwrap_or_default();
        h.ipc = o::ipc_mode(&hc.ipc_mode)?;
        h.pid = o::pid_mode(&hc.pid_mode)?;
        h.uts = o::uts_mode(&hc.uts_mode)?;
        h.userns = o::userns_mode(&hc.userns_mode)?;
        for b in hc.binds.unwrap_or_default() {
            h.mounts.push(o::volume(&b)?);
        }
        for m in hc.mounts.unwrap_or_default() {
            h.mounts.push(m.into_mount_point()?);
        }
        for (dst, opts) in hc.tmpfs.unwrap_or_default() {
            let spec = if opts.is_empty() {
                dst
            } else {
                format!("{dst}:{opts}")
            };
            h.mounts.push(o::tmpfs(&spec)?);
        }
        // Anonymous volumes of Config.Volumes (`-v /path` sends them here).
        for dst in self.volumes.unwrap_or_default().into_keys() {
            if !h.mounts.iter().any(|m| m.destination == dst) {
                h.mounts.push(o::volume(&dst)?);
            }
        }
        h.init = hc.init.filter(|i| *i).map(|_| String::new());
        h.runtime = Some(hc.runtime).filter(|r| !r.is_empty() && r != "runc");
        // The default network: Docker's API says "default" or "bridge".
        let mode = match hc.network_mode.as_str() {
            "default" => "",
            m => m,
        };
        h.network = o::network_mode(mode)?;
        for (port, bindings) in hc.port_bindings.unwrap_or_default() {
            let bindings = bindings.unwrap_or_default();
            if bindings.is_empty() {
                h.publish.extend(parse_publish(&port)?);
            }
            for b in bindings {
                let spec = match (b.host_ip.as_str(), b.host_port.as_str()) {
                    ("", "") => port.clone(),
                    ("", hp) => format!("{hp}:{port}"),
                    (ip, hp) => format!("{ip}:{hp}:{port}"),
                };
                h.publish.extend(parse_publish(&spec)?);
            }
        }
        h.publish_all = hc.publish_all_ports;
        for p in self.exposed_ports.unwrap_or_default().into_keys() {
            crate::parse_exposed(&p).map_err(|e| invalid(e.to_string()))?;
            let p = if p.contains('/') {
                p
            } else {
                format!("{p}/tcp")
            };
            if !h.expose.contains(&p) {
                h.expose.push(p);
            }
        }
        h.dns = hc
            .dns
            .unwrap_or_default()
            .iter()
            .map(|d| {
                d.parse()
                    .map_err(|_| invalid(format!("{d} is not an ip address")))
            })
            .collect::<Result<_>>()?;
        h.dns_search = hc.dns_search.unwrap_or_default();
        h.dns_options = hc.dns_options.unwrap_or_default();
        h.extra_hosts = hc
            .extra_hosts
            .unwrap_or_default()
            .iter()
            .map(|a| o::add_host(a))
            .collect::<Result<_>>()?;
        // The API's links are "/target:/me/alias" or "target:alias".
        h.links = hc
            .links
            .unwrap_or_default()
            .iter()
            .map(|l| {
                let (target, alias) = l.split_once(':').unwrap_or((l, l));
                let target = target.trim_start_matches('/');
                let alias = alias.rsplit('/').next().unwrap_or(alias);
                o::link(&format!("{target}:{alias}"))
            })
            .collect::<Result<_>>()?;
        h.domainname = self.domainname;
        // Endpoint settings: those of NetworkMode's network go with the
        // first network (eth0), the others (Docker 25+) follow in name order.
        let mut mac = Some(self.mac_address).filter(|m| !m.is_empty());
        if let Some(eps) = self.networking_config.and_then(|n| n.endpoints_config) {
            if h.network.is_empty() {
                if let Some(net) = eps.keys().find(|n| o::user_defined_network(n)) {
                    h.network = o::network_mode(net)?;
                }
            }
            let primary = if h.network.is_empty() {
                "bridge"
            } else {
                h.network.as_str()
            }
            .to_owned();
            for (net, ep) in eps {
                let ep = ep.unwrap_or_default();
                let ipam = ep.ipam_config.unwrap_or_default();
                let ip = match ipam.ipv4_address {
                    ip if !ip.is_empty() => Some(
                        ip.parse()
                            .map_err(|_| invalid(format!("invalid IPv4 address: {ip}")))?,
                    ),
                    _ => None,
                };
                let ip6 = match ipam.ipv6_address {
                    ip if !ip.is_empty() => Some(
                        ip.parse()
                            .map_err(|_| invalid(format!("invalid IPv6 address: {ip}")))?,
                    ),
                    _ => None,
                };
                let is_primary = net == primary || (primary == "bridge" && net == "default");
                if !is_primary {
                    h.more_networks.push(o::NetworkAttachment {
                        network: net,
                        aliases: ep.aliases.unwrap_or_default(),
                        ip,
                        ip6,
                        driver_opts: ep.driver_opts.unwrap_or_default(),
                        mac_address: Some(ep.mac_address)
                            .filter(|m| !m.is_empty())
                            .as_deref()
                            .map(o::mac_address)
                            .transpose()?,
                    });
                    continue;
                }
                h.network_aliases.extend(ep.aliases.unwrap_or_default());
                if ip.is_some() {
                    h.ip = ip;
                }
                if ip6.is_some() {
                    h.ip6 = ip6;
                }
                h.network_driver_opts = ep.driver_opts.unwrap_or_default();
                if !ep.mac_address.is_empty() {
                    mac = Some(ep.mac_address);
                }
            }
        }
        h.mac_address = mac.as_deref().map(o::mac_address).transpose()?;
        o::validate(h)?;
        run.stop_signal = Some(self.stop_signal)
            .filter(|s| !s.is_empty())
            .as_deref()
            .map(o::stop_signal)
            .transpose()?;
        run.stop_timeout = self.stop_timeout.filter(|t| *t >= 0).map(|t| t as u64);
        if let Some(r) = hc.restart_policy.filter(|r| !r.name.is_empty()) {
            let text = if r.name == "on-failure" && r.maximum_retry_count > 0 {
                format!("on-failure:{}", r.maximum_retry_count)
            } else {
                r.name
            };
            let p = o::restart(&text)?;
            if hc.auto_remove && !matches!(p.name.as_str(), "" | "no") {
                return Err(invalid(
                    "conflicting options: cannot specify both --restart and --rm",
                ));
            }
            run.restart = Some(p.text());
        }
        if let Some(l) = hc.log_config.filter(|l| !l.typ.is_empty()) {
            let opts: Vec<String> = l
                .config
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let lc = o::log_config(Some(&l.typ), &opts)?;
            run.log_max_size = lc.max_size();
            run.log_max_files = lc.max_files();
            run.log_driver = Some(lc.typ);
        }
        if let Some(hc) = self.healthcheck {
            run.healthcheck = Some(Healthcheck {
                test: hc.test.unwrap_or_default(),
                interval: hc.interval,
                timeout: hc.timeout,
                start_period: hc.start_period,
                retries: hc.retries,
            });
        }
        Ok(CreateOptions {
            name: name.filter(|n| !n.is_empty()),
            image: self.image,
            run,
            auto_remove: hc.auto_remove,
            interactive: self.open_stdin,
        })
    }
}

fn parse_publish(spec: &str) -> Result<Vec<crate::PortSpec>> {
    crate::parse_publish(spec).map_err(|e| invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(json: &str) -> Result<CreateOptions> {
        let r: ContainerCreateRequest =
            serde_json::from_str(json).map_err(|e| invalid(e.to_string()))?;
        r.into_create_options(None)
    }

    #[test]
    fn docker_cli_bodies_with_nulls_decode() {
        let o = req(
            r#"{"Image":"busybox","Cmd":["true"],"Env":null,"Entrypoint":null,
            "HostConfig":{"Binds":null,"NetworkMode":"default","PortBindings":{},
            "RestartPolicy":{"Name":"no","MaximumRetryCount":0},"AutoRemove":true,
            "LogConfig":{"Type":"","Config":{}}},
            "NetworkingConfig":{"EndpointsConfig":{}}}"#,
        )
        .expect("decodes");
        assert_eq!(o.image, "busybox");
        assert_eq!(o.run.cmd, vec!["true"]);
        assert!(o.auto_remove);
        assert_eq!(o.run.host.network, "");
    }

    #[test]
    fn cmd_as_a_string_is_one_argument() {
        let o = req(r#"{"Image":"busybox","Cmd":"true"}"#).expect("decodes");
        assert_eq!(o.run.cmd, vec!["true"]);
    }

    #[test]
    fn port_bindings_become_publications() {
        let o = req(r#"{"Image":"b","HostConfig":{"PortBindings":
            {"80/tcp":[{"HostIp":"127.0.0.1","HostPort":""}],"53/udp":[{"HostIp":"","HostPort":"5353"}]}}}"#)
        .expect("decodes");
        assert_eq!(o.run.host.publish.len(), 2);
    }

    #[test]
    fn bad_values_are_refused_with_the_flags_words() {
        let e = req(r#"{"Image":"b","HostConfig":{"RestartPolicy":{"Name":"sometimes"}}}"#)
            .expect_err("refused");
        assert!(matches!(e, EngineError::Invalid(_)), "{e}");
        let e =
            req(r#"{"Image":"b","HostConfig":{"Binds":["/a:/b:bogus"]}}"#).expect_err("refused");
        assert!(matches!(e, EngineError::Invalid(_)), "{e}");
        let e = req(r#"{"Image":"","Cmd":["x"]}"#).expect_err("refused");
        assert_eq!(e.to_string(), "No image specified");
        let e = req(
            r#"{"Image":"b","HostConfig":{"AutoRemove":true,"RestartPolicy":{"Name":"always"}}}"#,
        )
        .expect_err("refused");
        assert!(e.to_string().contains("--restart and --rm"), "{e}");
    }

    #[test]
    fn endpoint_settings_name_the_network_and_aliases() {
        let o = req(r#"{"Image":"b","HostConfig":{"NetworkMode":"proj_default"},
            "NetworkingConfig":{"EndpointsConfig":{"proj_default":{"Aliases":["web"],"IPAMConfig":null}}}}"#)
        .expect("decodes");
        assert_eq!(o.run.host.network, "proj_default");
        assert_eq!(o.run.host.network_aliases, vec!["web"]);
    }

    /// Several endpoints (Docker 25+): NetworkMode's first, the others in
    /// name order, each with its aliases and address; mixing a predefined
    /// mode with user networks is refused with Docker's words.
    #[test]
    fn several_endpoints() {
        let o = req(r#"{"Image":"b","HostConfig":{"NetworkMode":"zz"},
            "NetworkingConfig":{"EndpointsConfig":{
              "zz":{"Aliases":["first"],"IPAMConfig":{"IPv4Address":"10.1.0.5"}},
              "bb":{"Aliases":["x","y"]},
              "aa":{"IPAMConfig":{"IPv4Address":"10.2.0.9"},"DriverOpts":{"k":"v"}}}}}"#)
        .expect("decodes");
        let h = &o.run.host;
        assert_eq!(h.network, "zz");
        assert_eq!(h.network_aliases, ["first"]);
        assert_eq!(h.ip, Some(std::net::Ipv4Addr::new(10, 1, 0, 5)));
        let names: Vec<&str> = h.more_networks.iter().map(|n| n.network.as_str()).collect();
        assert_eq!(names, ["aa", "bb"]);
        assert_eq!(
            h.more_networks[0].ip,
            Some(std::net::Ipv4Addr::new(10, 2, 0, 9))
        );
        assert_eq!(h.more_networks[0].driver_opts["k"], "v");
        assert_eq!(h.more_networks[1].aliases, ["x", "y"]);
        // A MAC on another network than the first: that endpoint's.
        let o = req(r#"{"Image":"b","HostConfig":{"NetworkMode":"zz"},
            "NetworkingConfig":{"EndpointsConfig":{"zz":{},
              "aa":{"MacAddress":"02:42:0A:02:00:09"}}}}"#)
        .expect("decodes");
        assert_eq!(o.run.host.mac_address, None);
        assert_eq!(
            o.run.host.more_networks[0].mac_address.as_deref(),
            Some("02:42:0a:02:00:09")
        );
        for (body, says) in [
            (
                r#"{"Image":"b","HostConfig":{"NetworkMode":"host"},
                   "NetworkingConfig":{"EndpointsConfig":{"host":{},"aa":{}}}}"#,
                "conflicting options: cannot attach both user-defined and non-user-defined network-modes",
            ),
            (
                r#"{"Image":"b","HostConfig":{"NetworkMode":"host"},
                   "NetworkingConfig":{"EndpointsConfig":{"host":{},"none":{}}}}"#,
                "Container cannot be connected to network endpoints: host, none",
            ),
            (
                r#"{"Image":"b","NetworkingConfig":{"EndpointsConfig":{"aa":{},"bb":{"IPAMConfig":{"IPv4Address":"bogus"}}}}}"#,
                "invalid IPv4 address: bogus",
            ),
            (
                r#"{"Image":"b","NetworkingConfig":{"EndpointsConfig":{"aa":{},"bb":{"MacAddress":"zz"}}}}"#,
                "zz is not a valid mac address",
            ),
        ] {
            let e = req(body).expect_err("refused");
            assert_eq!(e.to_string(), says);
        }
    }
}
