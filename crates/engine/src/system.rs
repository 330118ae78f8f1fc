//! `version` and `info`: what Docker's `/version` and `/info` say, in
//! Docker's model (its JSON key names), about berth and this host. berth has
//! no daemon: the "server" is the engine in this process, its version
//! berth's own.

use crate::error::Result;
use crate::Engine;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// The version of berth (every program of it shares the workspace's).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The Docker API version berth's behaviour follows (Docker 20.10's).
pub const API_VERSION: &str = "1.41";
/// The oldest API version Docker 20.10 accepts.
pub const MIN_API_VERSION: &str = "1.12";

/// A component of the server in `version` (Docker: Engine, containerd,
/// runc, docker-init).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ComponentVersion {
    pub name: String,
    pub version: String,
    pub details: BTreeMap<String, String>,
}

/// Docker's `types.Version` (the server half of `docker version`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServerVersion {
    pub platform: BTreeMap<String, String>,
    pub components: Vec<ComponentVersion>,
    pub version: String,
    pub api_version: String,
    #[serde(rename = "MinAPIVersion")]
    pub min_api_version: String,
    pub os: String,
    pub arch: String,
    pub kernel_version: String,
}

/// Go's names of this machine's architecture (GOARCH).
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "arm" => "arm",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}

fn uname() -> (String, String, String) {
    match nix::sys::utsname::uname() {
        Ok(u) => (
            u.release().to_string_lossy().into_owned(),
            u.machine().to_string_lossy().into_owned(),
            u.nodename().to_string_lossy().into_owned(),
        ),
        Err(_) => Default::default(),
    }
}

/// The server half of `version`: the engine, and the runtime it drives.
pub fn server_version() -> ServerVersion {
    let (kernel, _, _) = uname();
    let engine = ComponentVersion {
        name: "Engine".into(),
        version: VERSION.into(),
        details: [
            ("ApiVersion", API_VERSION),
            ("Arch", go_arch()),
            ("Experimental", "false"),
            ("KernelVersion", kernel.as_str()),
            ("MinAPIVersion", MIN_API_VERSION),
            ("Os", std::env::consts::OS),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect(),
    };
    let runtime = ComponentVersion {
        name: "berth-runtime".into(),
        version: VERSION.into(),
        details: BTreeMap::new(),
    };
    ServerVersion {
        platform: [("Name".to_owned(), "berth".to_owned())].into(),
        components: vec![engine, runtime],
        version: VERSION.into(),
        api_version: API_VERSION.into(),
        min_api_version: MIN_API_VERSION.into(),
        os: std::env::consts::OS.into(),
        arch: go_arch().into(),
        kernel_version: kernel,
    }
}

/// Docker's `types.PluginsInfo`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PluginsInfo {
    pub volume: Vec<String>,
    pub network: Vec<String>,
    pub authorization: Option<Vec<String>>,
    pub log: Vec<String>,
}

/// Docker's `registry.ServiceConfig`.
#[derive(Debug, Clone, Serialize)]
pub struct RegistryConfig {
    #[serde(rename = "AllowNondistributableArtifactsCIDRs")]
    pub allow_nondistributable_artifacts_cidrs: Vec<String>,
    #[serde(rename = "AllowNondistributableArtifactsHostnames")]
    pub allow_nondistributable_artifacts_hostnames: Vec<String>,
    #[serde(rename = "InsecureRegistryCIDRs")]
    pub insecure_registry_cidrs: Vec<String>,
    #[serde(rename = "IndexConfigs")]
    pub index_configs: BTreeMap<String, serde_json::Value>,
    #[serde(rename = "Mirrors")]
    pub mirrors: Vec<String>,
}

/// Docker's `swarm.Info` of a node outside any swarm.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SwarmInfo {
    #[serde(rename = "NodeID")]
    pub node_id: String,
    pub node_addr: String,
    pub local_node_state: String,
    pub control_available: bool,
    pub error: String,
    pub remote_managers: Option<Vec<String>>,
}

/// Docker's `types.Commit`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Commit {
    #[serde(rename = "ID")]
    pub id: String,
    pub expected: String,
}

/// Docker's `types.Runtime`.
#[derive(Debug, Clone, Serialize)]
pub struct RuntimeInfo {
    pub path: String,
}

/// Docker's `types.Info`, the model of `docker info` (its keys, in its
/// order).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SystemInfo {
    #[serde(rename = "ID")]
    pub id: String,
    pub containers: usize,
    pub containers_running: usize,
    pub containers_paused: usize,
    pub containers_stopped: usize,
    pub images: usize,
    pub driver: String,
    pub driver_status: Vec<[String; 2]>,
    pub plugins: PluginsInfo,
    pub memory_limit: bool,
    pub swap_limit: bool,
    pub kernel_memory: bool,
    #[serde(rename = "KernelMemoryTCP")]
    pub kernel_memory_tcp: bool,
    pub cpu_cfs_period: bool,
    pub cpu_cfs_quota: bool,
    #[serde(rename = "CPUShares")]
    pub cpu_shares: bool,
    #[serde(rename = "CPUSet")]
    pub cpu_set: bool,
    pub pids_limit: bool,
    #[serde(rename = "IPv4Forwarding")]
    pub ipv4_forwarding: bool,
    pub bridge_nf_iptables: bool,
    pub bridge_nf_ip6tables: bool,
    pub debug: bool,
    #[serde(rename = "NFd")]
    pub nfd: usize,
    pub oom_kill_disable: bool,
    pub n_goroutines: usize,
    pub system_time: String,
    pub logging_driver: String,
    pub cgroup_driver: String,
    pub cgroup_version: String,
    pub n_events_listener: usize,
    pub kernel_version: String,
    pub operating_system: String,
    #[serde(rename = "OSVersion")]
    pub os_version: String,
    #[serde(rename = "OSType")]
    pub os_type: String,
    pub architecture: String,
    pub index_server_address: String,
    pub registry_config: RegistryConfig,
    #[serde(rename = "NCPU")]
    pub ncpu: usize,
    pub mem_total: u64,
    pub generic_resources: Option<Vec<String>>,
    pub docker_root_dir: String,
    pub http_proxy: String,
    pub https_proxy: String,
    pub no_proxy: String,
    pub name: String,
    pub labels: Vec<String>,
    pub experimental_build: bool,
    pub server_version: String,
    pub runtimes: BTreeMap<String, RuntimeInfo>,
    pub default_runtime: String,
    pub swarm: SwarmInfo,
    pub live_restore_enabled: bool,
    pub isolation: String,
    pub init_binary: String,
    pub containerd_commit: Commit,
    pub runc_commit: Commit,
    pub init_commit: Commit,
    pub security_options: Vec<String>,
    pub warnings: Option<Vec<String>>,
    /// berth's own: running rootless (podman's `host.security.rootless`);
    /// absent for root, so root's document is Docker's.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub rootless: bool,
    /// berth's own: the user namespace's uid and gid maps when rootless
    /// (podman's `host.idMappings`).
    #[serde(rename = "IDMappings", skip_serializing_if = "Option::is_none")]
    pub id_mappings: Option<IdMappings>,
    /// berth's own: what gives rootless containers their default network,
    /// `pasta`, or `none` when it is not on $PATH (podman's
    /// `host.rootlessNetworkCmd`); absent for root.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rootless_network_cmd: Option<String>,
}

/// The uid and gid maps of rootless berth's user namespace, as
/// `CONTAINER_ID:HOST_ID:SIZE` ranges.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct IdMappings {
    #[serde(rename = "UIDMap")]
    pub uid_map: Vec<String>,
    #[serde(rename = "GIDMap")]
    pub gid_map: Vec<String>,
}

/// Docker's `graphdriver` name of a filesystem (statfs magic).
fn backing_filesystem(p: &Path) -> String {
    let Ok(fs) = nix::sys::statfs::statfs(p) else {
        return "unknown".into();
    };
    match fs.filesystem_type().0 as u64 {
        0xEF53 => "extfs",
        0x5846_5342 => "xfs",
        0x9123_683E => "btrfs",
        0x0102_1994 => "tmpfs",
        0x794C_7630 => "overlayfs",
        0x2FC1_2FC1 => "zfs",
        0x6969 => "nfs",
        0xF2F5_2010 => "f2fs",
        _ => "unknown",
    }
    .into()
}

/// `KEY="value"` of /etc/os-release.
fn os_release(key: &str) -> Option<String> {
    let text = std::fs::read_to_string("/etc/os-release")
        .or_else(|_| std::fs::read_to_string("/usr/lib/os-release"))
        .ok()?;
    text.lines().find_map(|l| {
        let v = l.strip_prefix(key)?.strip_prefix('=')?;
        Some(v.trim_matches('"').to_owned())
    })
}

fn proc_flag(path: &str) -> bool {
    std::fs::read_to_string(path).is_ok_and(|s| s.trim() == "1")
}

fn mem_total() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// The CPUs this process may run on (Go's runtime.NumCPU).
fn ncpu() -> usize {
    nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0))
        .map(|set| {
            (0..nix::sched::CpuSet::count())
                .filter(|&i| set.is_set(i).unwrap_or(false))
                .count()
        })
        .unwrap_or(1)
        .max(1)
}

fn env_any(names: &[&str]) -> String {
    names
        .iter()
        .find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()))
        .unwrap_or_default()
}

impl Engine {
    /// This store's identity (Docker's engine ID): made once, kept in
    /// `ROOT/engine-id`.
    fn engine_id(&self) -> String {
        let path = self.root.join("engine-id");
        if let Ok(s) = std::fs::read_to_string(&path) {
            if !s.trim().is_empty() {
                return s.trim().to_owned();
            }
        }
        let mut b = [0u8; 16];
        if getrandom::fill(&mut b).is_err() {
            return String::new();
        }
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
        let id = format!(
            "{}-{}-{}-{}-{}",
            &h[..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..]
        );
        // Another command may have written it meanwhile: the first one wins.
        let tmp = self
            .root
            .join(format!("engine-id.{}.tmp", std::process::id()));
        let written = {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)
                .and_then(|mut f| f.write_all(id.as_bytes()))
        };
        if written.is_ok() {
            let _ = std::fs::hard_link(&tmp, &path);
            let _ = std::fs::remove_file(&tmp);
        }
        std::fs::read_to_string(&path)
            .map(|s| s.trim().to_owned())
            .unwrap_or(id)
    }

    /// `docker info`'s model for this store and host.
    pub fn info(&self, debug: bool) -> Result<SystemInfo> {
        let containers = self.containers(false)?;
        let count = |s: &str| containers.iter().filter(|c| c.state.as_str() == s).count();
        let running = count("running");
        let paused = count("paused");
        let mut image_ids: Vec<String> =
            self.images(None, true)?.into_iter().map(|i| i.id).collect();
        image_ids.sort();
        image_ids.dedup();
        let cgroup_v2 = berth_cgroups::create_manager("", "info")
            .map(|m| m.version() == berth_cgroups::CgroupVersion::V2)
            .unwrap_or(false);
        let (kernel, machine, hostname) = uname();
        let config = crate::DaemonConfig::load().unwrap_or_default();
        let mut insecure = vec!["127.0.0.0/8".to_owned()];
        insecure.extend(
            config
                .insecure_registries
                .iter()
                .filter(|r| r.contains('/') && r.parse::<std::net::Ipv4Addr>().is_err())
                .cloned(),
        );
        let mut index_configs = BTreeMap::new();
        index_configs.insert(
            "docker.io".to_owned(),
            serde_json::json!({"Name": "docker.io", "Mirrors": [], "Secure": true, "Official": true}),
        );
        for r in config
            .insecure_registries
            .iter()
            .filter(|r| !r.contains('/'))
        {
            index_configs.insert(
                r.clone(),
                serde_json::json!({"Name": r, "Mirrors": [], "Secure": false, "Official": false}),
            );
        }
        let runtime = crate::binaries::runtime_binary();
        let mut runtimes = BTreeMap::new();
        runtimes.insert(
            "berth-runtime".to_owned(),
            RuntimeInfo {
                path: runtime.to_string_lossy().into_owned(),
            },
        );
        for name in ["runc", "crun"] {
            if let Ok(Some(p)) = crate::binaries::resolve_runtime(Some(name)) {
                runtimes.insert(
                    name.to_owned(),
                    RuntimeInfo {
                        path: p.to_string_lossy().into_owned(),
                    },
                );
            }
        }
        let mut security = vec!["name=seccomp,profile=default".to_owned()];
        // Docker's place for it: after seccomp, before cgroupns.
        let rootless = self.rootless;
        if rootless {
            security.push("name=rootless".to_owned());
        }
        let id_mappings = rootless
            .then(berth_runtime::rootless::current_mapping)
            .and_then(|m| m.ok())
            .map(|(u, g)| {
                let text = |m: Vec<berth_runtime::rootless::IdRange>| {
                    m.iter()
                        .map(|r| format!("{}:{}:{}", r.inside, r.outside, r.count))
                        .collect()
                };
                IdMappings {
                    uid_map: text(u),
                    gid_map: text(g),
                }
            });
        // Without a delegated cgroup no limit can be set (Docker rootless
        // on cgroup v1 says the same); with one, those of its controllers.
        let delegation = self.delegation();
        let has = |c: &str| !rootless || delegation.is_some_and(|d| d.has(c));
        let limits = !rootless || delegation.is_some();
        if cgroup_v2 {
            security.push("name=cgroupns".to_owned());
        }
        let nfd = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count());
        let threads = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Threads:"))
                    .and_then(|n| n.trim().parse().ok())
            })
            .unwrap_or(1);
        let no_commit = || Commit {
            id: String::new(),
            expected: String::new(),
        };
        let storage = self.root.join("storage");
        Ok(SystemInfo {
            id: self.engine_id(),
            containers: containers.len(),
            containers_running: running,
            containers_paused: paused,
            containers_stopped: containers.len() - running - paused,
            images: image_ids.len(),
            driver: self.storage_driver().to_owned(),
            driver_status: vec![[
                "Backing Filesystem".to_owned(),
                backing_filesystem(if storage.exists() {
                    &storage
                } else {
                    &self.root
                }),
            ]],
            plugins: PluginsInfo {
                volume: vec!["local".into()],
                network: vec!["bridge".into(), "host".into(), "null".into()],
                authorization: None,
                log: vec!["json-file".into(), "none".into()],
            },
            memory_limit: has("memory"),
            swap_limit: has("memory"),
            kernel_memory: limits && !cgroup_v2,
            kernel_memory_tcp: limits && !cgroup_v2,
            cpu_cfs_period: has("cpu"),
            cpu_cfs_quota: has("cpu"),
            cpu_shares: has("cpu"),
            cpu_set: has("cpuset"),
            pids_limit: has("pids"),
            ipv4_forwarding: proc_flag("/proc/sys/net/ipv4/ip_forward"),
            bridge_nf_iptables: proc_flag("/proc/sys/net/bridge/bridge-nf-call-iptables"),
            bridge_nf_ip6tables: proc_flag("/proc/sys/net/bridge/bridge-nf-call-ip6tables"),
            debug,
            nfd,
            oom_kill_disable: limits && !cgroup_v2,
            n_goroutines: threads,
            system_time: humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string(),
            logging_driver: "json-file".into(),
            cgroup_driver: if limits { "cgroupfs" } else { "none" }.into(),
            cgroup_version: if cgroup_v2 { "2" } else { "1" }.into(),
            n_events_listener: 0,
            kernel_version: kernel,
            operating_system: os_release("PRETTY_NAME").unwrap_or_else(|| "Linux".into()),
            os_version: os_release("VERSION_ID").unwrap_or_default(),
            os_type: std::env::consts::OS.into(),
            architecture: machine,
            index_server_address: "https://index.docker.io/v1/".into(),
            registry_config: RegistryConfig {
                allow_nondistributable_artifacts_cidrs: vec![],
                allow_nondistributable_artifacts_hostnames: vec![],
                insecure_registry_cidrs: insecure,
                index_configs,
                mirrors: vec![],
            },
            ncpu: ncpu(),
            mem_total: mem_total(),
            generic_resources: None,
            docker_root_dir: self.root.to_string_lossy().into_owned(),
            http_proxy: env_any(&["HTTP_PROXY", "http_proxy"]),
            https_proxy: env_any(&["HTTPS_PROXY", "https_proxy"]),
            no_proxy: env_any(&["NO_PROXY", "no_proxy"]),
            name: hostname,
            labels: vec![],
            experimental_build: false,
            server_version: VERSION.into(),
            runtimes,
            default_runtime: "berth-runtime".into(),
            swarm: SwarmInfo {
                node_id: String::new(),
                node_addr: String::new(),
                local_node_state: "inactive".into(),
                control_available: false,
                error: String::new(),
                remote_managers: None,
            },
            // Containers outlive every berth process (each has its monitor).
            live_restore_enabled: true,
            isolation: String::new(),
            init_binary: "docker-init".into(),
            containerd_commit: no_commit(),
            runc_commit: no_commit(),
            init_commit: no_commit(),
            security_options: security,
            // Docker rootless's words on a host without cgroup v2.
            warnings: (!limits).then(|| {
                vec!["WARNING: Running in rootless-mode without cgroups. To enable cgroups in rootless-mode, you need to boot the system in cgroup v2 mode.".to_owned()]
            }),
            rootless,
            id_mappings,
            rootless_network_cmd: rootless.then(|| {
                match berth_network::slirp::Backend::find() {
                    Ok(b) => b.name(),
                    Err(_) => "none",
                }
                .to_owned()
            }),
        })
    }
}
