//! `berth-runtime`: an OCI runtime with runc's command line.

mod commands;
mod log;

use clap::Parser;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "berth-runtime",
    version,
    about = "berth's OCI container runtime (runc-compatible CLI)"
)]
pub struct Cli {
    /// Directory for the runtime's container state
    #[arg(long, global = true, default_value = berth_runtime::state::DEFAULT_ROOT)]
    root: PathBuf,
    /// Also write errors (and debug output) to this file
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    /// Format of --log: text or json
    #[arg(long, global = true, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    /// Print debug output
    #[arg(long, global = true)]
    debug: bool,
    /// Manage cgroups through systemd (not supported: refused with an error)
    #[arg(long, global = true)]
    systemd_cgroup: bool,
    /// Accepted for runc compatibility; ignored
    #[arg(long, global = true, hide = true)]
    criu: Option<String>,
    #[command(subcommand)]
    command: commands::Command,
}

fn main() {
    berth_trace::init_from_env(berth_trace::Process::Runtime);
    let cli = Cli::parse();
    let logger = log::Logger::new(cli.log.as_deref(), &cli.log_format, cli.debug);
    if cli.systemd_cgroup {
        logger.error("--systemd-cgroup is not supported: berth-runtime manages cgroupfs directly");
        std::process::exit(1);
    }
    // runc's status for an exec that failed (its process's own status is
    // passed on as is).
    let failed = if matches!(cli.command, commands::Command::Exec(_)) {
        255
    } else {
        1
    };
    let code = match commands::dispatch(&cli.root, cli.command) {
        Ok(code) => code,
        Err(e) => {
            logger.error(&e.to_string());
            failed
        }
    };
    std::process::exit(code);
}
