//! `berth network create|ls|inspect|rm|prune|connect|disconnect`.

use std::collections::BTreeMap;

use berth_engine::{Engine, EngineError, NetworkOptions, Result};
use clap::{Args, Subcommand};

use crate::format::table;

#[derive(Subcommand)]
#[command(defer = true)]
pub enum NetworkCommand {
    /// Create a network
    Create(CreateArgs),
    /// List networks
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more networks
    Inspect(InspectArgs),
    /// Remove one or more networks
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Remove all unused networks
    Prune(PruneArgs),
    /// Connect a container to a network
    Connect(ConnectArgs),
    /// Disconnect a container from a network
    Disconnect(DisconnectArgs),
}

#[derive(Args)]
pub struct CreateArgs {
    /// Driver to manage the network (bridge, macvlan, ipvlan)
    #[arg(short, long)]
    driver: Option<String>,
    /// Subnet in CIDR format (one IPv4, and one IPv6 with --ipv6)
    #[arg(long)]
    subnet: Vec<String>,
    /// IPv4 or IPv6 Gateway for the master subnet
    #[arg(long)]
    gateway: Vec<String>,
    /// Allocate container addresses from a sub-range
    #[arg(long)]
    ip_range: Vec<String>,
    /// Enable IPv6 networking
    #[arg(long)]
    ipv6: bool,
    /// Auxiliary IPv4 addresses used by Network driver (NAME=IP)
    #[arg(long)]
    aux_address: Vec<String>,
    /// Restrict external access to the network
    #[arg(long)]
    internal: bool,
    /// Set metadata on a network
    #[arg(long)]
    label: Vec<String>,
    /// Set driver specific options (com.docker.network.driver.mtu=N, com.docker.network.bridge.name=NAME; macvlan: parent=IFACE, macvlan_mode=MODE; ipvlan: parent=IFACE, ipvlan_mode=MODE, ipvlan_flag=FLAG)
    #[arg(short, long = "opt")]
    opt: Vec<String>,
    name: String,
}

#[derive(Args)]
pub struct LsArgs {
    /// Only display network IDs
    #[arg(short, long)]
    quiet: bool,
    /// Do not truncate the output
    #[arg(long)]
    no_trunc: bool,
    /// Filter output (name=, id=, driver=, label=, type=custom|builtin, dangling=)
    #[arg(short, long)]
    filter: Vec<String>,
    /// table, json, or a Go template such as '{{.ID}} {{.Name}} {{.Driver}}'
    #[arg(long)]
    format: Option<String>,
}

#[derive(Args)]
pub struct InspectArgs {
    /// Format the output with a Go template ('{{.IPAM.Config}}'), or json
    #[arg(short, long)]
    format: Option<String>,
    #[arg(required = true)]
    networks: Vec<String>,
}

#[derive(Args)]
pub struct RmArgs {
    /// Do not error if the network does not exist
    #[arg(short, long)]
    force: bool,
    #[arg(required = true)]
    networks: Vec<String>,
}

#[derive(Args)]
pub struct PruneArgs {
    /// Do not prompt for confirmation
    #[arg(short, long)]
    force: bool,
}

#[derive(Args)]
pub struct ConnectArgs {
    /// IPv4 address
    #[arg(long)]
    ip: Option<String>,
    /// IPv6 address
    #[arg(long)]
    ip6: Option<String>,
    /// Add network-scoped alias for the container
    #[arg(long)]
    alias: Vec<String>,
    network: String,
    container: String,
}

#[derive(Args)]
pub struct DisconnectArgs {
    /// Force the container to disconnect from a network
    #[arg(short, long)]
    force: bool,
    network: String,
    container: String,
}

fn invalid(m: String) -> EngineError {
    EngineError::Invalid(m)
}

pub fn dispatch(engine: &Engine, c: NetworkCommand) -> Result<i32> {
    match c {
        NetworkCommand::Create(a) => create(engine, a),
        NetworkCommand::Ls(a) => ls(engine, a),
        NetworkCommand::Inspect(a) => inspect(engine, a),
        NetworkCommand::Rm(a) => rm(engine, a),
        NetworkCommand::Prune(a) => prune(engine, a),
        NetworkCommand::Connect(a) => {
            let ip =
                a.ip.as_deref()
                    .map(|ip| {
                        ip.parse()
                            .map_err(|_| invalid(format!("invalid IPv4 address: {ip}")))
                    })
                    .transpose()?;
            let ip6 = a
                .ip6
                .as_deref()
                .map(|ip| {
                    ip.parse()
                        .map_err(|_| invalid(format!("invalid IPv6 address: {ip}")))
                })
                .transpose()?;
            let want = berth_engine::Want { ip, ip6 };
            engine.network_connect(&a.network, &a.container, want, &a.alias)?;
            Ok(0)
        }
        NetworkCommand::Disconnect(a) => {
            engine.network_disconnect(&a.network, &a.container)?;
            Ok(0)
        }
    }
}

fn create(engine: &Engine, a: CreateArgs) -> Result<i32> {
    let (subnet, subnet6) = by_family(&a.subnet, "subnet", |v| {
        v.parse::<ipnet::IpNet>().map_err(|_| {
            invalid(format!(
                "invalid subnet: {v} (expected CIDR, e.g. 10.1.0.0/16)"
            ))
        })
    })?;
    let (ip_range, ip_range6) = by_family(&a.ip_range, "ip-range", |v| {
        v.parse::<ipnet::IpNet>().map_err(|_| {
            invalid(format!(
                "invalid ip-range: {v} (expected CIDR, e.g. 10.1.0.0/16)"
            ))
        })
    })?;
    let (gateway, gateway6) = by_family(&a.gateway, "gateway", |v| {
        v.parse::<std::net::IpAddr>()
            .map_err(|_| invalid(format!("invalid gateway: {v}")))
    })?;
    let v4net = |n: Option<ipnet::IpNet>| match n {
        Some(ipnet::IpNet::V4(n)) => Some(n),
        _ => None,
    };
    let v6net = |n: Option<ipnet::IpNet>| match n {
        Some(ipnet::IpNet::V6(n)) => Some(n),
        _ => None,
    };
    let mut labels = BTreeMap::new();
    for l in &a.label {
        let (k, v) = berth_engine::options::label(l)?;
        labels.insert(k, v);
    }
    let mut aux_addresses = BTreeMap::new();
    for kv in &a.aux_address {
        let bad = || {
            invalid(format!(
                "invalid auxiliary address {kv}: expected NAME=IPv4"
            ))
        };
        let (k, v) = kv.split_once('=').ok_or_else(bad)?;
        aux_addresses.insert(k.to_owned(), v.parse().map_err(|_| bad())?);
    }
    let mut o = NetworkOptions {
        name: a.name,
        aux_addresses,
        driver: a.driver,
        subnet: v4net(subnet),
        gateway: match gateway {
            Some(std::net::IpAddr::V4(g)) => Some(g),
            _ => None,
        },
        ip_range: v4net(ip_range),
        internal: a.internal,
        labels,
        ipv6: a.ipv6,
        subnet6: v6net(subnet6),
        gateway6: match gateway6 {
            Some(std::net::IpAddr::V6(g)) => Some(g),
            _ => None,
        },
        ip_range6: v6net(ip_range6),
        ..NetworkOptions::default()
    };
    o.apply_driver_options(
        a.opt
            .iter()
            .map(|kv| kv.split_once('=').unwrap_or((kv.as_str(), ""))),
    )?;
    let n = engine.network_create(&o)?;
    println!("{}", n.id);
    Ok(0)
}

fn ls(engine: &Engine, a: LsArgs) -> Result<i32> {
    let filters = match super::parse_filters(&a.filter, "network ls") {
        Ok(f) => f,
        Err(code) => return Ok(code),
    };
    let mut rows = engine.network_list(&filters)?;
    rows.sort_by(|x, y| x.name.cmp(&y.name));
    let id = |r: &berth_engine::NetworkSummary| {
        if a.no_trunc {
            r.id.clone()
        } else {
            r.id.chars().take(12).collect()
        }
    };
    if a.quiet {
        for r in &rows {
            println!("{}", id(r));
        }
        return Ok(0);
    }
    let format = super::image::list_format(a.format.as_deref())?;
    if !matches!(format, crate::format::ListFormat::Default) {
        let docs: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                super::image::row(&[
                    ("ID", id(r)),
                    ("Name", r.name.clone()),
                    ("Driver", r.driver.clone()),
                    ("Scope", "local".to_owned()),
                    ("Labels", berth_engine::labels_text(&r.labels)),
                ])
            })
            .collect();
        let labels = |i: usize| rows[i].labels.clone();
        let out = format
            .render(&docs, &NETWORK_COLUMNS, Some(&labels))
            .map_err(|e| invalid(e.to_string()))?;
        print!("{out}");
        return Ok(0);
    }
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| vec![id(r), r.name.clone(), r.driver.clone(), "local".into()])
        .collect();
    print!(
        "{}",
        table(&["NETWORK ID", "NAME", "DRIVER", "SCOPE"], &body)
    );
    Ok(0)
}

/// Docker's column headers of `network ls --format 'table …'`.
const NETWORK_COLUMNS: crate::format::Columns = crate::format::Columns {
    type_name: "*formatter.networkContext",
    headers: &[
        ("ID", "NETWORK ID"),
        ("Name", "NAME"),
        ("Driver", "DRIVER"),
        ("Scope", "SCOPE"),
        ("Labels", "LABELS"),
    ],
};

fn inspect(engine: &Engine, a: InspectArgs) -> Result<i32> {
    let format = match super::image::InspectFormat::parse(a.format.as_deref()) {
        Ok(f) => f,
        Err(code) => return Ok(code),
    };
    let mut out = Vec::new();
    let mut code = 0;
    for n in &a.networks {
        match engine.network_inspect(n) {
            Ok(v) => out.push(v),
            Err(e) => {
                eprintln!("Error: {}", crate::one_line(&e));
                code = 1;
            }
        }
    }
    Ok(code.max(format.print(out)))
}

fn rm(engine: &Engine, a: RmArgs) -> Result<i32> {
    let mut code = 0;
    for n in &a.networks {
        match engine.network_rm(n) {
            Ok(_) => println!("{n}"),
            Err(EngineError::NotFound { .. }) if a.force => {}
            Err(e) => {
                eprintln!("Error: {}", crate::one_line(&e));
                code = 1;
            }
        }
    }
    Ok(code)
}

fn prune(engine: &Engine, _a: PruneArgs) -> Result<i32> {
    let removed = engine.network_prune()?;
    if !removed.is_empty() {
        println!("Deleted Networks:");
        for n in removed {
            println!("{n}");
        }
    }
    Ok(0)
}

/// Values of a flag given once per address family (`--subnet 10.1.0.0/16
/// --subnet fd00:1::/64`): the IPv4 one and the IPv6 one.
fn by_family<T: Copy>(
    values: &[String],
    flag: &str,
    parse: impl Fn(&str) -> Result<T>,
) -> Result<(Option<T>, Option<T>)> {
    let (mut v4, mut v6) = (None, None);
    for v in values {
        let slot = if v.contains(':') { &mut v6 } else { &mut v4 };
        if slot.is_some() {
            return Err(invalid(format!(
                "--{flag} is given twice for one address family: berth's networks have one IPv4 and one IPv6 {flag}"
            )));
        }
        *slot = Some(parse(v)?);
    }
    Ok((v4, v6))
}
