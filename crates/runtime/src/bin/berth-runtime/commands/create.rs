use berth_runtime::{CreateOptions, Result, Runtime};
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct CreateArgs {
    /// The bundle directory (holding config.json)
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
    /// Write the init's pid here
    #[arg(long)]
    pid_file: Option<PathBuf>,
    /// Unix socket to send the pty master to (process.terminal)
    #[arg(long)]
    console_socket: Option<PathBuf>,
    /// Use chroot instead of pivot_root
    #[arg(long)]
    no_pivot: bool,
    /// Accepted for runc compatibility (no session keyring is created)
    #[arg(long)]
    no_new_keyring: bool,
    /// Pass this many extra descriptors (from 3) to the container
    #[arg(long, default_value_t = 0)]
    preserve_fds: u32,
    /// The container ID
    id: String,
}

#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    create: CreateArgs,
    /// Do not wait for the container: return once it runs
    #[arg(short, long)]
    detach: bool,
    /// Keep the container's state after it exits (accepted; ignored)
    #[arg(long, hide = true)]
    keep: bool,
}

fn options(a: &CreateArgs) -> CreateOptions {
    CreateOptions {
        bundle: a.bundle.clone(),
        pid_file: a.pid_file.clone(),
        console_socket: a.console_socket.clone(),
        no_pivot: a.no_pivot,
        preserve_fds: a.preserve_fds,
        listen_fds: listen_fds(),
    }
}

/// The socket-activation descriptors passed to us (systemd's protocol:
/// `LISTEN_FDS` of them from 3, for the process `LISTEN_PID`), as runc
/// passes them on to the container.
fn listen_fds() -> u32 {
    let ours = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        == Some(std::process::id());
    if !ours {
        return 0;
    }
    std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

pub fn create(rt: &Runtime, a: CreateArgs) -> Result<i32> {
    rt.create(&a.id, &options(&a))?;
    Ok(0)
}

pub fn run(rt: &Runtime, a: RunArgs) -> Result<i32> {
    rt.run(&a.create.id, &options(&a.create), a.detach)
}
