use super::lifecycle::{attach_until_exit, not_a_tty, start_failure, stdin_is_terminal};
use crate::format::{ago, table};
use berth_engine::{CreateOptions, Engine, EngineError, Result, RunOptions};
use clap::{Args, Subcommand};
use std::path::PathBuf;

// The flags `create` and `run` share.
#[derive(Args, Clone)]
pub struct ContainerFlags {
    /// Print each step of the container's start with its duration (FILE: Chrome trace JSON)
    #[arg(long, value_name = "FILE", num_args = 0..=1, require_equals = true, default_missing_value = "-")]
    pub trace: Option<std::path::PathBuf>,
    /// Assign a name to the container
    #[arg(long)]
    name: Option<String>,
    /// Set environment variables (KEY=VALUE, or KEY to take it from here)
    #[arg(short, long)]
    env: Vec<String>,
    /// Read environment variables from a file
    #[arg(long)]
    env_file: Vec<PathBuf>,
    /// Working directory inside the container
    #[arg(short, long)]
    workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short, long)]
    user: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long)]
    entrypoint: Option<String>,
    /// Container host name
    #[arg(short = 'h', long)]
    hostname: Option<String>,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    tty: bool,
    /// Keep STDIN open
    #[arg(short, long)]
    interactive: bool,
    /// Mount the container's root filesystem as read only
    #[arg(long)]
    read_only: bool,
    #[command(flatten)]
    host: HostFlags,
    /// The image, then the command and its arguments. As Docker's, flag
    /// parsing stops at the image: all that follows is the command's, even
    /// what looks like one of berth's flags (`IMG -c x` is not --cpu-shares).
    #[arg(num_args = 1.., trailing_var_arg = true, value_name = "IMAGE")]
    image_and_command: Vec<String>,
}

// Resources, security, namespaces, mounts and policies (Docker's
// HostConfig flags). Values are parsed by `berth_engine::options`, so a
// malformed one is one line and exit 125.
#[derive(Args, Clone, Default)]
pub struct HostFlags {
    /// Memory limit (e.g. 512m, 1g)
    #[arg(short = 'm', long, allow_hyphen_values = true)]
    memory: Option<String>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap
    #[arg(long, allow_hyphen_values = true)]
    memory_swap: Option<String>,
    /// Memory soft limit
    #[arg(long, allow_hyphen_values = true)]
    memory_reservation: Option<String>,
    /// Number of CPUs
    #[arg(long, allow_hyphen_values = true)]
    cpus: Option<String>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long, allow_hyphen_values = true)]
    cpu_shares: Option<String>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long, allow_hyphen_values = true)]
    cpu_quota: Option<String>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long, allow_hyphen_values = true)]
    cpu_period: Option<String>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long)]
    cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long)]
    cpuset_mems: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long, allow_hyphen_values = true)]
    pids_limit: Option<String>,
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable
    #[arg(long, allow_hyphen_values = true)]
    blkio_weight: Option<String>,
    /// Size of /dev/shm
    #[arg(long, allow_hyphen_values = true)]
    shm_size: Option<String>,
    /// Add Linux capabilities
    #[arg(long)]
    cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long)]
    cap_drop: Vec<String>,
    /// Give extended privileges to this container
    #[arg(long)]
    privileged: bool,
    /// Security options (no-new-privileges, seccomp=unconfined|PROFILE.json)
    #[arg(long)]
    security_opt: Vec<String>,
    /// Ulimit options (name=soft[:hard])
    #[arg(long)]
    ulimit: Vec<String>,
    /// Sysctl options (key=value)
    #[arg(long)]
    sysctl: Vec<String>,
    /// Add a host device to the container (HOST[:CONTAINER][:rwm])
    #[arg(long)]
    device: Vec<String>,
    /// Add additional groups to join
    #[arg(long)]
    group_add: Vec<String>,
    /// IPC mode to use (private, shareable, none, host, container:NAME)
    #[arg(long)]
    ipc: Option<String>,
    /// Connect the container to a network (bridge, none, host, container:NAME, a network's name, or name=NET,alias=A,ip=IP,driver-opt=K=V); repeat for several networks
    #[arg(long, visible_alias = "net")]
    network: Vec<String>,
    /// Publish a container's port(s) to the host ([HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTO])
    #[arg(short = 'p', long)]
    publish: Vec<String>,
    /// Publish all exposed ports to free host ports
    #[arg(short = 'P', long)]
    publish_all: bool,
    /// Expose a port or a range of ports
    #[arg(long)]
    expose: Vec<String>,
    /// IPv4 address on a user network
    #[arg(long)]
    ip: Option<String>,
    /// IPv6 address on a user network with IPv6
    #[arg(long)]
    ip6: Option<String>,
    /// Add a network-scoped alias for the container
    #[arg(long, visible_alias = "net-alias")]
    network_alias: Vec<String>,
    /// Set custom DNS servers
    #[arg(long)]
    dns: Vec<String>,
    /// Set custom DNS search domains
    #[arg(long)]
    dns_search: Vec<String>,
    /// Set DNS options
    #[arg(long, visible_alias = "dns-opt")]
    dns_option: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip, or host:host-gateway)
    #[arg(long)]
    add_host: Vec<String>,
    /// Add link to another container (name[:alias])
    #[arg(long)]
    link: Vec<String>,
    /// Container MAC address (e.g., 92:d0:c6:0a:29:33)
    #[arg(long)]
    mac_address: Option<String>,
    /// Container NIS domain name
    #[arg(long)]
    domainname: Option<String>,
    /// PID namespace to use (host, container:NAME)
    #[arg(long)]
    pid: Option<String>,
    /// UTS namespace to use (host)
    #[arg(long)]
    uts: Option<String>,
    /// User namespace to use (host)
    #[arg(long)]
    userns: Option<String>,
    /// Bind mount a volume (HOST:CONTAINER[:ro|rw|z|Z], NAME:CONTAINER, CONTAINER)
    #[arg(short = 'v', long)]
    volume: Vec<String>,
    /// Attach a filesystem mount (type=bind|volume|tmpfs,source=…,target=…,readonly)
    #[arg(long)]
    mount: Vec<String>,
    /// Mount a tmpfs directory (PATH[:OPTIONS])
    #[arg(long)]
    tmpfs: Vec<String>,
    /// Set meta data on a container
    #[arg(short = 'l', long)]
    label: Vec<String>,
    /// Read in a line delimited file of labels
    #[arg(long)]
    label_file: Vec<PathBuf>,
    /// Signal to stop the container
    #[arg(long)]
    stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(long, allow_hyphen_values = true)]
    stop_timeout: Option<String>,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long)]
    init: bool,
    /// Restart policy to apply when a container exits (no, always, unless-stopped, on-failure[:N])
    #[arg(long)]
    restart: Option<String>,
    /// Logging driver for the container (json-file, none)
    #[arg(long)]
    log_driver: Option<String>,
    /// Log driver options (max-size=10m, max-file=3)
    #[arg(long)]
    log_opt: Vec<String>,
    /// Command to run to check health
    #[arg(long)]
    health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h)
    #[arg(long, allow_hyphen_values = true)]
    health_interval: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h)
    #[arg(long, allow_hyphen_values = true)]
    health_timeout: Option<String>,
    /// Consecutive failures needed to report unhealthy
    #[arg(long, allow_hyphen_values = true)]
    health_retries: Option<String>,
    /// Start period for the container to initialize before starting health-retries countdown (ms|s|m|h)
    #[arg(long, allow_hyphen_values = true)]
    health_start_period: Option<String>,
    /// Disable any container-specified HEALTHCHECK
    #[arg(long)]
    no_healthcheck: bool,
    /// Runtime to use for this container (a path, or runc, crun, ...)
    #[arg(long)]
    runtime: Option<String>,
    /// Set platform if server is multi-platform capable (only the host's)
    #[arg(long)]
    platform: Option<String>,
    /// Pull image before running (always, missing, never)
    #[arg(long)]
    pull: Option<String>,
}

impl HostFlags {
    /// Fills `run` with what these flags say.
    fn apply(&self, run: &mut RunOptions) -> Result<()> {
        use berth_engine::options as o;
        let h = &mut run.host;
        h.memory = self
            .memory
            .as_deref()
            .map(|v| o::size_flag("-m, --memory", v))
            .transpose()?;
        h.memory_swap = self.memory_swap.as_deref().map(o::swap_flag).transpose()?;
        h.memory_reservation = self
            .memory_reservation
            .as_deref()
            .map(|v| o::size_flag("--memory-reservation", v))
            .transpose()?;
        h.nano_cpus = self.cpus.as_deref().map(o::cpus_flag).transpose()?;
        h.cpu_shares = self
            .cpu_shares
            .as_deref()
            .map(|v| o::int_flag::<u64>("--cpu-shares", v))
            .transpose()?;
        h.cpu_quota = self
            .cpu_quota
            .as_deref()
            .map(|v| o::int_flag::<i64>("--cpu-quota", v))
            .transpose()?;
        h.cpu_period = self
            .cpu_period
            .as_deref()
            .map(|v| o::int_flag::<u64>("--cpu-period", v))
            .transpose()?;
        h.cpuset_cpus = self.cpuset_cpus.clone();
        h.cpuset_mems = self.cpuset_mems.clone();
        h.pids_limit = self
            .pids_limit
            .as_deref()
            .map(|v| o::int_flag::<i64>("--pids-limit", v))
            .transpose()?;
        // Docker: 0 means its default size.
        h.shm_size = self
            .shm_size
            .as_deref()
            .map(|v| o::size_flag("--shm-size", v))
            .transpose()?
            .filter(|&n| n > 0);
        h.blkio_weight = self
            .blkio_weight
            .as_deref()
            .map(|v| o::int_flag::<u16>("--blkio-weight", v))
            .transpose()?;
        h.cap_add = self
            .cap_add
            .iter()
            .map(|c| o::normalize_cap(c))
            .collect::<Result<_>>()?;
        h.cap_drop = self
            .cap_drop
            .iter()
            .map(|c| o::normalize_cap(c))
            .collect::<Result<_>>()?;
        h.privileged = self.privileged;
        for s in &self.security_opt {
            o::security_opt(h, s)?;
        }
        h.ulimits = self
            .ulimit
            .iter()
            .map(|u| o::ulimit(u))
            .collect::<Result<_>>()?;
        for s in &self.sysctl {
            let (k, v) = o::sysctl(s)?;
            h.sysctls.insert(k, v);
        }
        h.devices = self
            .device
            .iter()
            .map(|d| o::device(d))
            .collect::<Result<_>>()?;
        h.group_add = self.group_add.clone();
        h.ipc = o::ipc_mode(self.ipc.as_deref().unwrap_or(""))?;
        h.pid = o::pid_mode(self.pid.as_deref().unwrap_or(""))?;
        h.uts = o::uts_mode(self.uts.as_deref().unwrap_or(""))?;
        h.userns = o::userns_mode(self.userns.as_deref().unwrap_or(""))?;
        for v in &self.volume {
            h.mounts.push(o::volume(v)?);
        }
        for m in &self.mount {
            h.mounts.push(o::mount(m)?);
        }
        for t in &self.tmpfs {
            h.mounts.push(o::tmpfs(t)?);
        }
        h.init = self.init.then(String::new);
        h.runtime = self.runtime.clone();
        for p in &self.publish {
            h.publish.extend(
                berth_engine::parse_publish(p).map_err(|e| EngineError::Invalid(e.to_string()))?,
            );
        }
        h.publish_all = self.publish_all;
        for e in &self.expose {
            berth_engine::parse_exposed(e).map_err(|e| EngineError::Invalid(e.to_string()))?;
            h.expose.push(if e.contains('/') {
                e.clone()
            } else {
                format!("{e}/tcp")
            });
        }
        let ip = self
            .ip
            .as_deref()
            .map(|ip| {
                ip.parse()
                    .map_err(|_| EngineError::Invalid(format!("invalid IPv4 address: {ip}")))
            })
            .transpose()?;
        let networks = self
            .network
            .iter()
            .map(|n| o::network_attachment(n))
            .collect::<Result<Vec<_>>>()?;
        let ip6 = self
            .ip6
            .as_deref()
            .map(|ip| {
                ip.parse()
                    .map_err(|_| EngineError::Invalid(format!("invalid IPv6 address: {ip}")))
            })
            .transpose()?;
        h.mac_address = self
            .mac_address
            .as_deref()
            .map(o::mac_address)
            .transpose()?;
        o::apply_networks(h, networks, &self.network_alias, ip, ip6)?;
        h.dns = self
            .dns
            .iter()
            .map(|d| {
                d.parse()
                    .map_err(|_| EngineError::Invalid(format!("{d} is not an ip address")))
            })
            .collect::<Result<_>>()?;
        h.dns_search = self.dns_search.clone();
        h.dns_options = self.dns_option.clone();
        h.extra_hosts = self
            .add_host
            .iter()
            .map(|a| o::add_host(a))
            .collect::<Result<_>>()?;
        h.links = self
            .link
            .iter()
            .map(|l| o::link(l))
            .collect::<Result<_>>()?;
        if let Some(d) = &self.domainname {
            h.domainname = d.clone();
        }
        for f in &self.label_file {
            let text = std::fs::read_to_string(f)
                .map_err(|e| EngineError::Invalid(format!("open {}: {e}", f.display())))?;
            for line in text.lines() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let (k, v) = o::label(line)?;
                run.labels.insert(k, v);
            }
        }
        for l in &self.label {
            let (k, v) = o::label(l)?;
            run.labels.insert(k, v);
        }
        run.stop_signal = self
            .stop_signal
            .as_deref()
            .map(o::stop_signal)
            .transpose()?;
        run.stop_timeout = self
            .stop_timeout
            .as_deref()
            .map(|v| o::int_flag::<u64>("--stop-timeout", v))
            .transpose()?;
        run.restart = self
            .restart
            .as_deref()
            .map(|r| o::restart(r).map(|p| p.text()))
            .transpose()?;
        let log = o::log_config(self.log_driver.as_deref(), &self.log_opt)?;
        run.log_max_size = log.max_size();
        run.log_max_files = log.max_files();
        run.log_driver = self.log_driver.as_ref().map(|_| log.typ.clone());
        let dur = |flag: &str, v: &Option<String>| {
            v.as_deref()
                .map(|v| o::duration_flag(flag, v))
                .transpose()
                .map(Option::unwrap_or_default)
        };
        run.healthcheck = o::healthcheck(&o::HealthFlags {
            cmd: self.health_cmd.clone(),
            interval: dur("--health-interval", &self.health_interval)?,
            timeout: dur("--health-timeout", &self.health_timeout)?,
            start_period: dur("--health-start-period", &self.health_start_period)?,
            retries: self
                .health_retries
                .as_deref()
                .map(|v| o::int_flag::<i64>("--health-retries", v))
                .transpose()?
                .unwrap_or_default(),
            none: self.no_healthcheck,
        })?;
        if let Some(p) = &self.platform {
            o::platform(p)?;
        }
        match self.pull.as_deref() {
            None | Some("missing" | "never" | "always") => {}
            Some(p) => {
                return Err(EngineError::Invalid(format!(
                "invalid pull option: '{p}': must be one of \"always\", \"missing\" or \"never\""
            )))
            }
        }
        Ok(())
    }
}

/// A `-e` value as Docker's ValidateEnv takes it: `KEY=VALUE` as it is, `KEY` from
/// berth's environment (left out when unset); an empty name is refused.
fn env_value(kv: &str) -> Result<Option<String>> {
    let key = kv.split_once('=').map_or(kv, |(k, _)| k);
    if key.is_empty() {
        return Err(EngineError::Invalid(format!(
            "invalid argument {kv:?} for \"-e, --env\" flag: invalid environment variable: {kv}"
        )));
    }
    Ok(if kv.contains('=') {
        Some(kv.to_owned())
    } else {
        std::env::var(kv).ok().map(|v| format!("{kv}={v}"))
    })
}

impl ContainerFlags {
    /// The image (the first positional argument).
    fn image(&self) -> &str {
        self.image_and_command.first().map_or("", String::as_str)
    }

    /// The command and its arguments: everything after the image.
    fn command(&self) -> Vec<String> {
        self.image_and_command.iter().skip(1).cloned().collect()
    }

    fn options(&self) -> Result<CreateOptions> {
        let mut env = Vec::new();
        for f in &self.env_file {
            let text = std::fs::read_to_string(f)
                .map_err(|e| EngineError::Invalid(format!("open {}: {e}", f.display())))?;
            for line in text.lines() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                // Docker's env-file parser: a line needs a name.
                if line.starts_with('=') {
                    return Err(EngineError::Invalid(format!(
                        "poorly formatted environment: no variable name on line '{line}'"
                    )));
                }
                env.extend(env_value(line)?);
            }
        }
        for kv in &self.env {
            env.extend(env_value(kv)?);
        }
        let mut o = CreateOptions {
            interactive: self.interactive,
            auto_remove: false,
            name: self.name.clone(),
            image: self.image().to_owned(),
            run: RunOptions {
                cmd: self.command(),
                entrypoint: self.entrypoint.clone().map(|e| vec![e]),
                env,
                workdir: self.workdir.clone(),
                user: self.user.clone(),
                hostname: self.hostname.clone(),
                tty: self.tty,
                read_only: self.read_only,
                ..Default::default()
            },
        };
        self.host.apply(&mut o.run)?;
        Ok(o)
    }
}

// Docker's -h is --hostname, so help is only --help.
#[derive(Args)]
#[command(
    disable_help_flag = true,
    override_usage = "berth create [OPTIONS] IMAGE [COMMAND] [ARG...]"
)]
pub struct CreateArgs {
    /// Print help
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
    #[command(flatten)]
    flags: ContainerFlags,
}

/// `--pull`: fetch the image first when the policy says so.
fn pull_image(engine: &Engine, f: &ContainerFlags) -> Result<()> {
    super::registry::pull_for_run(
        engine,
        f.image(),
        f.host.pull.as_deref(),
        f.host.platform.as_deref(),
    )
}

/// Docker's answer to `run`/`create` without an image: a usage error, 125.
fn no_image(command: &str) -> i32 {
    eprintln!("Error: \"berth {command}\" requires at least 1 argument.");
    eprintln!("See 'berth {command} --help'.");
    125
}

pub fn create(engine: &Engine, a: CreateArgs) -> Result<i32> {
    if a.flags.image_and_command.is_empty() {
        return Ok(no_image("create"));
    }
    // A flag that does not parse is a usage error (125); what the engine
    // refuses is `create`'s plain failure, exit 1 (Docker's daemon errors).
    let opts = match a.flags.options() {
        Ok(o) => o,
        Err(e) => return Ok(start_failure(e)),
    };
    match pull_image(engine, &a.flags).and_then(|_| engine.create(&opts)) {
        Ok(id) => {
            println!("{id}");
            Ok(0)
        }
        Err(e) => {
            eprintln!("Error: {}", crate::one_line(&e));
            Ok(1)
        }
    }
}

#[derive(Args)]
#[command(
    disable_help_flag = true,
    override_usage = "berth run [OPTIONS] IMAGE [COMMAND] [ARG...]"
)]
pub struct RunArgs {
    /// Print help
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
    /// Remove the container when it exits
    #[arg(long)]
    rm: bool,
    /// Run in the background and print the container ID
    #[arg(short, long)]
    detach: bool,
    #[command(flatten)]
    flags: ContainerFlags,
}

impl RunArgs {
    pub fn trace(&self) -> Option<&std::path::PathBuf> {
        self.flags.trace.as_ref()
    }
}

impl CreateArgs {
    pub fn trace(&self) -> Option<&std::path::PathBuf> {
        self.flags.trace.as_ref()
    }
}

pub fn run(engine: &Engine, a: RunArgs) -> Result<i32> {
    if a.flags.image_and_command.is_empty() {
        return Ok(no_image("run"));
    }
    if a.flags.tty && a.flags.interactive && !a.detach && !stdin_is_terminal() {
        return Ok(not_a_tty());
    }
    let opts = match a.flags.options() {
        Ok(mut o) => {
            o.auto_remove = a.rm;
            o
        }
        Err(e) => return Ok(start_failure(e)),
    };
    if let Err(e) = pull_image(engine, &a.flags) {
        return Ok(start_failure(e));
    }
    if a.rm && opts.run.restart.as_deref().is_some_and(|r| r != "no") {
        return Ok(start_failure(EngineError::Invalid(
            "Conflicting options: --restart and --rm".into(),
        )));
    }
    if a.detach {
        // Under its own monitor; berth returns once it runs.
        return match engine.run_detached(&opts) {
            Ok(id) => {
                println!("{id}");
                Ok(0)
            }
            Err(e) => Ok(start_failure(e)),
        };
    }
    if !a.rm && !opts.run.tty {
        // Docker's foreground run: the container lives under its own monitor
        // (its log, its restart policy; killing berth leaves it running),
        // berth attached to it before it starts, passing signals on.
        let id = match engine.create(&opts) {
            Ok(id) => id,
            Err(e) => return Ok(start_failure(e)),
        };
        if let Err(e) = engine.start_with(id.as_str(), true) {
            return Ok(start_failure(e));
        }
        return attach_until_exit(engine, id.as_str(), opts.interactive)
            .or_else(|e| Ok(start_failure(e)));
    }
    // `--rm` (nothing outlives the run, its log included) and `-t` (the
    // runtime relays the terminal itself): the runtime in the foreground,
    // no monitor — the fast path.
    match engine.run(&opts, a.rm) {
        Ok(code) => Ok(code),
        Err(e) => Ok(start_failure(e)),
    }
}

#[derive(Args)]
pub struct RmArgs {
    /// Force the removal of a running container
    #[arg(short, long)]
    force: bool,
    /// Remove the container's anonymous volumes
    #[arg(short, long)]
    volumes: bool,
    #[arg(required = true)]
    containers: Vec<String>,
}

pub fn rm(engine: &Engine, a: RmArgs) -> Result<i32> {
    let mut code = 0;
    for c in &a.containers {
        match engine.rm(c, a.force, a.volumes) {
            Ok(()) => println!("{c}"),
            Err(e) => {
                eprintln!("Error: {}", crate::one_line(&e));
                code = 1;
            }
        }
    }
    Ok(code)
}

#[derive(Args)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    all: bool,
    /// Only display container IDs
    #[arg(short, long)]
    quiet: bool,
    /// Don't truncate output
    #[arg(long)]
    no_trunc: bool,
    /// Show the n last created containers (includes all states)
    #[arg(short = 'n', long)]
    last: Option<usize>,
    /// Show the latest created container (includes all states)
    #[arg(short, long)]
    latest: bool,
    /// Display total file sizes
    #[arg(short, long)]
    size: bool,
    /// Filter: status=, name=, label=KEY[=VALUE], ancestor=, exited=, id=
    #[arg(short, long)]
    filter: Vec<String>,
    /// table, json, or a Go template such as 'table {{.ID}}\t{{.Names}}'
    #[arg(long)]
    format: Option<String>,
}

/// Docker's column headers of `ps --format 'table …'`.
const PS_COLUMNS: crate::format::Columns = crate::format::Columns {
    type_name: "*formatter.ContainerContext",
    headers: &[
        ("ID", "CONTAINER ID"),
        ("Image", "IMAGE"),
        ("Command", "COMMAND"),
        ("CreatedAt", "CREATED AT"),
        ("RunningFor", "CREATED"),
        ("Ports", "PORTS"),
        ("State", "STATE"),
        ("Status", "STATUS"),
        ("Size", "SIZE"),
        ("Names", "NAMES"),
        ("Labels", "LABELS"),
        ("Mounts", "MOUNTS"),
        ("Networks", "NETWORKS"),
    ],
};

/// `ps`'s PORTS column as Docker's CLI writes it (its DisplayablePorts):
/// the ports sorted; runs of consecutive ports of one kind (exposed of a
/// protocol, or published on the same port of one address) as ranges,
/// in the order the kinds first appear ("53/udp, 7000-7001/tcp"); then the
/// ports published on another host port ("127.0.0.1:32768->80/tcp").
fn ports_column(c: &berth_engine::ContainerSummary) -> String {
    let mut ports = c.ports.clone();
    ports.sort_by(|a, b| {
        (a.private_port, &a.ip, a.public_port, a.typ.as_str()).cmp(&(
            b.private_port,
            &b.ip,
            b.public_port,
            b.typ.as_str(),
        ))
    });
    // Per kind (the protocol, or ADDRESS/protocol): its current run.
    let mut groups: Vec<(String, u16, u16)> = Vec::new();
    let mut result = Vec::new();
    let mut mappings = Vec::new();
    let form = |key: &str, first: u16, last: u16| {
        let (ip, typ) = match key.split_once('/') {
            Some((ip, typ)) => (Some(ip), typ),
            None => (None, key),
        };
        let mut g = first.to_string();
        if first != last {
            g = format!("{g}-{last}");
        }
        if let Some(ip) = ip {
            g = format!("{ip}:{g}->{g}");
        }
        format!("{g}/{typ}")
    };
    for p in &ports {
        let key = match (&p.ip, p.public_port) {
            (Some(_), Some(public)) if public != p.private_port => {
                mappings.push(p.to_string());
                continue;
            }
            (Some(ip), _) => format!("{ip}/{}", p.typ),
            (None, _) => p.typ.to_string(),
        };
        match groups.iter_mut().find(|(k, _, _)| *k == key) {
            None => groups.push((key, p.private_port, p.private_port)),
            Some(g) if g.2.checked_add(1) == Some(p.private_port) => g.2 = p.private_port,
            Some(g) => {
                result.push(form(&g.0, g.1, g.2));
                g.1 = p.private_port;
                g.2 = p.private_port;
            }
        }
    }
    for (key, first, last) in &groups {
        result.push(form(key, *first, *last));
    }
    result.extend(mappings);
    result.join(", ")
}

/// `ps --format {{.Networks}}`: the networks by name in the order joined;
/// for `container:X` (which has none of its own) the network mode.
fn networks_column(c: &berth_engine::ContainerSummary) -> String {
    let nets = &c.network_settings.networks;
    if nets.is_empty() {
        c.host_config.network_mode.clone()
    } else {
        nets.names().collect::<Vec<_>>().join(",")
    }
}

/// `ps --format {{.Mounts}}`: each volume's name or bind's source, cut to
/// 15 characters (with "…") unless `--no-trunc`, as Docker's CLI.
fn mounts_column(c: &berth_engine::ContainerSummary, trunc: bool) -> String {
    c.mounts
        .iter()
        .map(|m| {
            let name = if m.name.is_empty() {
                &m.source
            } else {
                &m.name
            };
            if trunc && name.chars().count() > 15 {
                name.chars().take(14).collect::<String>() + "…"
            } else {
                name.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

pub fn ps(engine: &Engine, a: PsArgs) -> Result<i32> {
    let filters = match super::parse_filters(&a.filter, "ps") {
        Ok(f) => f,
        Err(code) => return Ok(code),
    };
    let format = super::image::list_format(a.format.as_deref())?;
    // As Docker: a format that shows .Size has the sizes computed.
    let size = a.size || a.format.as_deref().is_some_and(|f| f.contains(".Size"));
    let list = engine.container_list(&berth_engine::ListOptions {
        all: a.all,
        limit: if a.latest { Some(1) } else { a.last },
        size,
        filters,
    })?;
    let id_of = |c: &berth_engine::ContainerSummary| {
        if a.no_trunc {
            c.id.to_string()
        } else {
            c.id.short().to_owned()
        }
    };
    if a.quiet {
        for c in &list {
            println!("{}", id_of(c));
        }
        return Ok(0);
    }
    let fields = |c: &berth_engine::ContainerSummary| -> Vec<(&'static str, String)> {
        let cmd = format!("\"{}\"", c.command);
        let cmd = if a.no_trunc || cmd.chars().count() <= 20 {
            cmd
        } else {
            cmd.chars().take(19).collect::<String>() + "…"
        };
        let size = c.size_rw.map(crate::format::human_size).unwrap_or_default();
        vec![
            ("ID", id_of(c)),
            ("Image", c.image.clone()),
            ("Command", cmd),
            (
                "CreatedAt",
                humantime::format_rfc3339_seconds(c.created_time()).to_string(),
            ),
            ("RunningFor", ago(c.created_time())),
            ("Ports", ports_column(c)),
            ("State", c.state.to_string()),
            ("Status", c.status.clone()),
            ("Size", size),
            ("Names", c.name().to_owned()),
            ("Labels", berth_engine::labels_text(&c.labels)),
            ("Mounts", mounts_column(c, !a.no_trunc)),
            ("Networks", networks_column(c)),
        ]
    };
    match format {
        crate::format::ListFormat::Default => {
            let mut header = vec![
                "CONTAINER ID",
                "IMAGE",
                "COMMAND",
                "CREATED",
                "STATUS",
                "PORTS",
                "NAMES",
            ];
            if a.size {
                header.push("SIZE");
            }
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|c| {
                    let f = fields(c);
                    let get = |k: &str| {
                        f.iter()
                            .find(|(n, _)| *n == k)
                            .map(|(_, v)| v.clone())
                            .unwrap_or_default()
                    };
                    let mut r = vec![
                        get("ID"),
                        get("Image"),
                        get("Command"),
                        get("RunningFor"),
                        get("Status"),
                        get("Ports"),
                        get("Names"),
                    ];
                    if a.size {
                        r.push(get("Size"));
                    }
                    r
                })
                .collect();
            print!("{}", table(&header, &rows));
        }
        f => {
            let rows: Vec<serde_json::Value> =
                list.iter().map(|c| super::image::row(&fields(c))).collect();
            let labels = |i: usize| list[i].labels.clone();
            let out = f
                .render(&rows, &PS_COLUMNS, Some(&labels))
                .map_err(|e| EngineError::Invalid(e.to_string()))?;
            print!("{out}");
        }
    }
    Ok(0)
}

#[derive(Args)]
pub struct ExportArgs {
    /// Write to a file instead of stdout
    #[arg(short, long)]
    output: Option<PathBuf>,
    container: String,
}

pub fn export(engine: &Engine, a: ExportArgs) -> Result<i32> {
    use std::io::IsTerminal;
    match &a.output {
        Some(p) => engine.export_file(&a.container, p)?,
        None => {
            let out = std::io::stdout();
            if out.is_terminal() {
                return Err(EngineError::Invalid(
                    "cowardly refusing to save to a terminal. Use the -o flag or redirect".into(),
                ));
            }
            engine.export(&a.container, out.lock())?
        }
    }
    Ok(0)
}

#[derive(Args)]
pub struct CommitArgs {
    /// Commit message
    #[arg(short, long)]
    message: Option<String>,
    /// Author (e.g. "Jane Doe <jane@example.com>")
    #[arg(short, long)]
    author: Option<String>,
    /// Apply a Dockerfile instruction to the created image
    #[arg(short, long)]
    change: Vec<String>,
    /// Pause container during commit
    #[arg(short, long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pause: bool,
    container: String,
    reference: Option<String>,
}

pub fn commit(engine: &Engine, a: CommitArgs) -> Result<i32> {
    let id = engine.commit(
        &a.container,
        a.reference.as_deref(),
        a.message.as_deref(),
        a.author.as_deref(),
        &a.change,
        a.pause,
    )?;
    println!("{id}");
    Ok(0)
}

#[derive(Args)]
pub struct DiffArgs {
    container: String,
}

pub fn diff(engine: &Engine, a: DiffArgs) -> Result<i32> {
    for (kind, path) in engine.diff(&a.container)? {
        println!("{kind} {path}");
    }
    Ok(0)
}

#[derive(Subcommand)]
#[command(defer = true)]
pub enum ContainerCommand {
    /// Create a container
    Create(CreateArgs),
    /// Run a command in a new container
    Run(RunArgs),
    /// Remove containers
    Rm(RmArgs),
    /// List containers
    #[command(alias = "ps", alias = "list")]
    Ls(PsArgs),
    /// Export a container's filesystem
    Export(ExportArgs),
    /// Create a new image from a container's changes
    Commit(CommitArgs),
    /// Show a container's filesystem changes
    Diff(DiffArgs),
    /// Show low-level information about containers
    Inspect(super::image::InspectArgs),
    /// Start stopped containers
    Start(super::lifecycle::StartArgs),
    /// Stop running containers
    Stop(super::lifecycle::StopArgs),
    /// Restart containers
    Restart(super::lifecycle::StopArgs),
    /// Kill running containers
    Kill(super::lifecycle::KillArgs),
    /// Block until containers stop
    Wait(super::lifecycle::NamesArgs),
    /// Fetch the logs of a container
    Logs(super::lifecycle::LogsArgs),
    /// Attach to a running container
    Attach(super::lifecycle::AttachArgs),
    /// Run a command in a running container
    Exec(super::lifecycle::ExecArgs),
    /// Pause containers
    Pause(super::lifecycle::NamesArgs),
    /// Unpause containers
    Unpause(super::lifecycle::NamesArgs),
    /// Display the running processes of a container
    Top(super::lifecycle::TopArgs),
    /// Rename a container
    Rename(super::lifecycle::RenameArgs),
    /// Remove all stopped containers
    Prune(super::lifecycle::PruneArgs),
    /// Record a container's exit (run by its monitor)
    #[command(hide = true)]
    Cleanup(super::lifecycle::CleanupArgs),
    /// Record a health status change (run by its monitor)
    #[command(hide = true)]
    HealthEvent(super::lifecycle::HealthEventArgs),
}

pub fn dispatch(engine: &Engine, c: ContainerCommand) -> Result<i32> {
    match c {
        ContainerCommand::Create(a) => create(engine, a),
        ContainerCommand::Run(a) => run(engine, a),
        ContainerCommand::Rm(a) => rm(engine, a),
        ContainerCommand::Ls(a) => ps(engine, a),
        ContainerCommand::Export(a) => export(engine, a),
        ContainerCommand::Commit(a) => commit(engine, a),
        ContainerCommand::Diff(a) => diff(engine, a),
        ContainerCommand::Inspect(a) => {
            super::image::inspect_with(engine, a, Engine::container_inspect)
        }
        ContainerCommand::Start(a) => super::lifecycle::start(engine, a),
        ContainerCommand::Stop(a) => super::lifecycle::stop(engine, a),
        ContainerCommand::Restart(a) => super::lifecycle::restart(engine, a),
        ContainerCommand::Kill(a) => super::lifecycle::kill(engine, a),
        ContainerCommand::Wait(a) => super::lifecycle::wait(engine, a),
        ContainerCommand::Logs(a) => super::lifecycle::logs(engine, a),
        ContainerCommand::Attach(a) => super::lifecycle::attach(engine, a),
        ContainerCommand::Exec(a) => super::lifecycle::exec(engine, a),
        ContainerCommand::Pause(a) => super::lifecycle::pause(engine, a),
        ContainerCommand::Unpause(a) => super::lifecycle::unpause(engine, a),
        ContainerCommand::Top(a) => super::lifecycle::top(engine, a),
        ContainerCommand::Rename(a) => super::lifecycle::rename(engine, a),
        ContainerCommand::Prune(a) => super::lifecycle::prune(engine, a),
        ContainerCommand::Cleanup(a) => super::lifecycle::cleanup(engine, a),
        ContainerCommand::HealthEvent(a) => super::lifecycle::health_event(engine, a),
    }
}
