//! One module per subcommand; this file only routes.

mod checkpoint;
mod create;
mod delete;
mod events;
mod exec;
mod features;
mod kill;
mod list;
mod pause;
mod ps;
mod spec;
mod start;
mod state;
mod update;

use berth_runtime::{Result, Runtime};
use clap::Subcommand;
use std::path::Path;

#[derive(Subcommand)]
pub enum Command {
    /// Create a container (its init waits for `start`)
    Create(create::CreateArgs),
    /// Run the user's program in a created container
    Start(start::StartArgs),
    /// Create and start a container, and wait for it unless --detach
    Run(create::RunArgs),
    /// Print a container's state (runtime-spec JSON)
    State(state::StateArgs),
    /// Send a signal to a container's init (or all its processes)
    Kill(kill::KillArgs),
    /// Remove a container's resources
    Delete(delete::DeleteArgs),
    /// Run a new process inside a container
    Exec(exec::ExecArgs),
    /// List the processes in a container
    Ps(ps::PsArgs),
    /// Freeze every process of a container
    Pause(pause::PauseArgs),
    /// Thaw a paused container
    Resume(pause::PauseArgs),
    /// List containers
    List(list::ListArgs),
    /// Print a container's resource usage
    Events(events::EventsArgs),
    /// Write a default config.json
    Spec(spec::SpecArgs),
    /// Print the runtime's features (runtime-spec features.md)
    Features,
    /// Change a running container's resource limits
    Update(update::UpdateArgs),
    /// Checkpoint a running container (not supported: no CRIU)
    Checkpoint(checkpoint::CriuArgs),
    /// Restore a container from a checkpoint (not supported: no CRIU)
    Restore(checkpoint::CriuArgs),
}

/// Runs a command and returns the process exit code.
pub fn dispatch(root: &Path, cmd: Command) -> Result<i32> {
    match cmd {
        Command::Spec(a) => return spec::run(a),
        Command::Features => return features::run(),
        Command::Checkpoint(a) => return checkpoint::refuse("checkpoint", a),
        Command::Restore(a) => return checkpoint::refuse("restore", a),
        _ => {}
    }
    let rt = Runtime::new(root)?;
    match cmd {
        Command::Create(a) => create::create(&rt, a),
        Command::Run(a) => create::run(&rt, a),
        Command::Start(a) => start::run(&rt, a),
        Command::State(a) => state::run(&rt, a),
        Command::Kill(a) => kill::run(&rt, a),
        Command::Delete(a) => delete::run(&rt, a),
        Command::Exec(a) => exec::run(&rt, a),
        Command::Ps(a) => ps::run(&rt, a),
        Command::Pause(a) => pause::pause(&rt, a),
        Command::Resume(a) => pause::resume(&rt, a),
        Command::List(a) => list::run(&rt, a),
        Command::Events(a) => events::run(&rt, a),
        Command::Update(a) => update::run(&rt, a),
        Command::Spec(_) | Command::Features | Command::Checkpoint(_) | Command::Restore(_) => {
            Ok(0)
        }
    }
}
