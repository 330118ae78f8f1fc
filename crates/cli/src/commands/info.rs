//! `version`, `info` (`system info`) and `completion`, in Docker's shapes:
//! the same sections, labels and `--format` data (Docker's key names).

use berth_engine::system::{self, ServerVersion, SystemInfo};
use berth_engine::{Engine, EngineError, Result};
use clap::Args;

static DEBUG: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// berth's `-D`, as `info` reports it (Docker's "Debug Mode").
pub fn set_debug(on: bool) {
    DEBUG.store(on, std::sync::atomic::Ordering::Relaxed);
}

fn debug() -> bool {
    DEBUG.load(std::sync::atomic::Ordering::Relaxed)
}

#[derive(Args)]
pub struct FormatArgs {
    /// Format the output using a Go template ('{{json .}}', '{{.Server.Version}}')
    #[arg(short, long)]
    format: Option<String>,
}

/// Runs `format` on `data` as Docker's `version`/`info` do: the template's
/// output and a newline; a template that fails is exit 1 (64 when it does
/// not parse, as `inspect -f`).
fn print_template(format: &str, data: &serde_json::Value, root_type: &str) -> Result<i32> {
    print_template_json(format, data, data, root_type)
}

/// `print_template` on a template's `data` whose `json .` is `json`.
fn print_template_json(
    format: &str,
    data: &serde_json::Value,
    json: &serde_json::Value,
    root_type: &str,
) -> Result<i32> {
    let t = match berth_gotemplate::Template::parse(format) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("Error: {}", crate::one_line(&e));
            return Ok(64);
        }
    };
    let env = berth_gotemplate::Env {
        root_type: Some(root_type),
        root_json: Some(json),
        ..Default::default()
    };
    match t.execute(data, &env) {
        Ok(s) => {
            println!("{s}");
            Ok(0)
        }
        Err(e) => Err(EngineError::Invalid(e.to_string())),
    }
}

/// Docker's client half of `version`.
fn client_version() -> serde_json::Value {
    serde_json::json!({
        "Platform": {"Name": "berth"},
        "Version": system::VERSION,
        "ApiVersion": system::API_VERSION,
        "DefaultAPIVersion": system::API_VERSION,
        "Os": std::env::consts::OS,
        "Arch": system::go_arch(),
        "Context": "default",
        "Experimental": false,
    })
}

/// `berth version`: runs without opening a store (berth has no daemon to
/// ask; the server half is the engine in this program).
pub fn version(a: FormatArgs) -> Result<i32> {
    let server = system::server_version();
    let data = serde_json::json!({
        "Client": client_version(),
        "Server": serde_json::to_value(&server).map_err(|e| EngineError::Other(e.to_string()))?,
    });
    if let Some(f) = a.format.as_deref().filter(|f| !f.is_empty()) {
        if f == "json" {
            println!("{data}");
            return Ok(0);
        }
        return print_template(f, &data, "system.versionInfo");
    }
    print!("{}", version_text(&data, &server));
    Ok(0)
}

/// A label and its value, the value at column 20 as Docker aligns them.
fn field(indent: usize, label: &str, value: &str) -> String {
    let head = format!("{}{label}:", " ".repeat(indent));
    format!("{head:<20}{value}\n")
}

fn version_text(data: &serde_json::Value, server: &ServerVersion) -> String {
    let c = &data["Client"];
    let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
    let mut out = String::from("Client:\n");
    out += &field(1, "Version", &s(&c["Version"]));
    out += &field(1, "API version", &s(&c["ApiVersion"]));
    out += &field(1, "OS/Arch", &format!("{}/{}", s(&c["Os"]), s(&c["Arch"])));
    out += &field(1, "Context", &s(&c["Context"]));
    out += "\nServer:\n";
    for comp in &server.components {
        out += &format!(" {}:\n", comp.name);
        out += &field(2, "Version", &comp.version);
        if comp.name == "Engine" {
            out += &field(
                2,
                "API version",
                &format!(
                    "{} (minimum version {})",
                    server.api_version, server.min_api_version
                ),
            );
            out += &field(2, "OS/Arch", &format!("{}/{}", server.os, server.arch));
            out += &field(2, "Experimental", "false");
        } else {
            for (k, v) in &comp.details {
                out += &field(2, k, v);
            }
        }
    }
    out
}

/// Docker's units.BytesSize: binary units, four significant digits.
fn bytes_size(n: u64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    let int_digits = if v < 1.0 { 1 } else { v.log10() as usize + 1 };
    let decimals = 4usize.saturating_sub(int_digits);
    let mut s = format!("{v:.decimals$}");
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_owned();
    }
    format!("{s}{}", UNITS[i])
}

/// The fields a template of `docker info --format` sees: those of the Go
/// struct (the CLI's `info`: `types.Info`, `ClientInfo`, `ServerErrors`)
/// by their Go names, which for a few differ from the JSON keys
/// (`CPUCfsQuota` is `CpuCfsQuota` in JSON; a template knows only the
/// first), and the struct's fields that its JSON leaves out when empty.
fn go_fields(data: &serde_json::Value) -> serde_json::Value {
    use serde_json::{json, Value};
    let mut out = data.clone();
    let Some(o) = out.as_object_mut() else {
        return out;
    };
    for (json_key, go) in [
        ("CpuCfsPeriod", "CPUCfsPeriod"),
        ("CpuCfsQuota", "CPUCfsQuota"),
        ("BridgeNfIp6tables", "BridgeNfIP6tables"),
        ("HttpProxy", "HTTPProxy"),
        ("HttpsProxy", "HTTPSProxy"),
    ] {
        if let Some(v) = o.remove(json_key) {
            o.insert(go.into(), v);
        }
    }
    for (k, v) in [
        ("ClusterStore", json!("")),
        ("ClusterAdvertise", json!("")),
        ("ProductLicense", json!("")),
        ("DefaultAddressPools", json!([])),
        ("ServerErrors", json!([])),
    ] {
        o.entry(k).or_insert(v);
    }
    // `types.Runtime`: `Path` (`path`), `Args` (`runtimeArgs`).
    if let Some(Value::Object(rts)) = o.get_mut("Runtimes") {
        for rt in rts.values_mut() {
            if let Some(r) = rt.as_object_mut() {
                if let Some(p) = r.remove("path") {
                    r.insert("Path".into(), p);
                }
                let args = r.remove("runtimeArgs").unwrap_or_else(|| json!([]));
                r.insert("Args".into(), args);
            }
        }
    }
    // `swarm.Info`'s counts, zero outside a swarm.
    if let Some(Value::Object(sw)) = o.get_mut("Swarm") {
        for k in ["Nodes", "Managers"] {
            sw.entry(k).or_insert(json!(0));
        }
    }
    out
}

/// `berth info` / `berth system info`.
pub fn info(engine: &Engine, a: FormatArgs) -> Result<i32> {
    let info = engine.info(debug())?;
    let mut data = serde_json::to_value(&info).map_err(|e| EngineError::Other(e.to_string()))?;
    if let Some(o) = data.as_object_mut() {
        o.insert(
            "ClientInfo".into(),
            serde_json::json!({"Debug": debug(), "Context": "default", "Plugins": [], "Warnings": null}),
        );
    }
    if let Some(f) = a.format.as_deref().filter(|f| !f.is_empty()) {
        if f == "json" {
            println!("{data}");
            return Ok(0);
        }
        let fields = go_fields(&data);
        return print_template_json(f, &fields, &data, "system.info");
    }
    print!("{}", info_text(&info));
    Ok(0)
}

fn info_text(i: &SystemInfo) -> String {
    let yes_no = |b: bool| if b { "true" } else { "false" };
    let mut o = String::new();
    o += "Client:\n";
    o += " Context:    default\n";
    o += &format!(" Debug Mode: {}\n", yes_no(i.debug));
    o += "\nServer:\n";
    o += &format!(" Containers: {}\n", i.containers);
    o += &format!("  Running: {}\n", i.containers_running);
    o += &format!("  Paused: {}\n", i.containers_paused);
    o += &format!("  Stopped: {}\n", i.containers_stopped);
    o += &format!(" Images: {}\n", i.images);
    o += &format!(" Server Version: {}\n", i.server_version);
    o += &format!(" Storage Driver: {}\n", i.driver);
    for [k, v] in &i.driver_status {
        o += &format!("  {k}: {v}\n");
    }
    o += &format!(" Logging Driver: {}\n", i.logging_driver);
    o += &format!(" Cgroup Driver: {}\n", i.cgroup_driver);
    o += &format!(" Cgroup Version: {}\n", i.cgroup_version);
    o += " Plugins:\n";
    o += &format!("  Volume: {}\n", i.plugins.volume.join(" "));
    o += &format!("  Network: {}\n", i.plugins.network.join(" "));
    o += &format!("  Log: {}\n", i.plugins.log.join(" "));
    o += &format!(" Swarm: {}\n", i.swarm.local_node_state);
    let runtimes: Vec<&str> = i.runtimes.keys().map(String::as_str).collect();
    o += &format!(" Runtimes: {}\n", runtimes.join(" "));
    o += &format!(" Default Runtime: {}\n", i.default_runtime);
    o += &format!(" Init Binary: {}\n", i.init_binary);
    o += " Security Options:\n";
    for opt in &i.security_options {
        let mut parts = opt.split(',');
        let name = parts
            .next()
            .and_then(|p| p.strip_prefix("name="))
            .unwrap_or(opt);
        o += &format!("  {name}\n");
        for p in parts {
            if let Some((k, v)) = p.split_once('=') {
                let mut k = k.to_owned();
                if let Some(c) = k.get_mut(..1) {
                    c.make_ascii_uppercase();
                }
                o += &format!("   {k}: {v}\n");
            }
        }
    }
    // podman's `rootless:` and `idMappings`, in Docker's layout.
    o += &format!(" Rootless: {}\n", yes_no(i.rootless));
    if let Some(m) = &i.id_mappings {
        o += &format!("  UID Map: {}\n", m.uid_map.join(", "));
        o += &format!("  GID Map: {}\n", m.gid_map.join(", "));
    }
    if let Some(n) = &i.rootless_network_cmd {
        o += &format!("  Network Command: {n}\n");
    }
    o += &format!(" Kernel Version: {}\n", i.kernel_version);
    o += &format!(" Operating System: {}\n", i.operating_system);
    o += &format!(" OSType: {}\n", i.os_type);
    o += &format!(" Architecture: {}\n", i.architecture);
    o += &format!(" CPUs: {}\n", i.ncpu);
    o += &format!(" Total Memory: {}\n", bytes_size(i.mem_total));
    o += &format!(" Name: {}\n", i.name);
    o += &format!(" ID: {}\n", i.id);
    o += &format!(" Docker Root Dir: {}\n", i.docker_root_dir);
    o += &format!(" Debug Mode: {}\n", yes_no(i.debug));
    for (label, v) in [
        ("HTTP Proxy", &i.http_proxy),
        ("HTTPS Proxy", &i.https_proxy),
        ("No Proxy", &i.no_proxy),
    ] {
        if !v.is_empty() {
            o += &format!(" {label}: {v}\n");
        }
    }
    o += &format!(" Registry: {}\n", i.index_server_address);
    o += " Labels:\n";
    for l in &i.labels {
        o += &format!("  {l}\n");
    }
    o += &format!(" Experimental: {}\n", yes_no(i.experimental_build));
    o += " Insecure Registries:\n";
    let insecure_names = i
        .registry_config
        .index_configs
        .iter()
        .filter(|(_, v)| v["Secure"] == false)
        .map(|(k, _)| k.clone());
    for r in insecure_names.chain(i.registry_config.insecure_registry_cidrs.iter().cloned()) {
        o += &format!("  {r}\n");
    }
    o += &format!(
        " Live Restore Enabled: {}\n",
        yes_no(i.live_restore_enabled)
    );
    o += "\n";
    for w in i.warnings.iter().flatten() {
        o += &format!("{w}\n");
    }
    o
}

/// `berth completion SHELL`, as `docker completion`.
#[derive(clap::Subcommand)]
pub enum CompletionShell {
    /// Generate the autocompletion script for bash
    Bash,
    /// Generate the autocompletion script for fish
    Fish,
    /// Generate the autocompletion script for powershell
    Powershell,
    /// Generate the autocompletion script for zsh
    Zsh,
}

/// Prints the completion script of every berth command for `shell`.
pub fn completion(shell: CompletionShell) -> Result<i32> {
    use clap::CommandFactory;
    use clap_complete::Shell;
    let shell = match shell {
        CompletionShell::Bash => Shell::Bash,
        CompletionShell::Fish => Shell::Fish,
        CompletionShell::Powershell => Shell::PowerShell,
        CompletionShell::Zsh => Shell::Zsh,
    };
    let mut cmd = crate::Cli::command();
    clap_complete::generate(shell, &mut cmd, "berth", &mut std::io::stdout());
    Ok(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn bytes_size_is_dockers() {
        assert_eq!(super::bytes_size(25_276_194_816), "23.54GiB");
        assert_eq!(super::bytes_size(0), "0B");
        assert_eq!(super::bytes_size(1024), "1KiB");
        assert_eq!(super::bytes_size(1536), "1.5KiB");
        assert_eq!(super::bytes_size(999), "999B");
    }
}
