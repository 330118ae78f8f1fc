//! One module per group of commands; this file only routes.

mod archive;
mod build;
mod container;
mod events;
mod image;
mod info;
mod lifecycle;
mod network;
mod registry;
mod system;
mod volume;

use berth_engine::{Engine, EngineOptions, Result};
use clap::Subcommand;

#[derive(Subcommand)]
#[command(defer = true)]
pub enum Command {
    /// Build an image from a Dockerfile
    Build(build::BuildArgs),
    /// Manage builds
    #[command(subcommand)]
    Builder(build::BuilderCommand),
    /// Download an image from a registry
    Pull(registry::PullArgs),
    /// Upload an image to a registry
    Push(registry::PushArgs),
    /// Log in to a registry
    Login(registry::LoginArgs),
    /// Log out from a registry
    Logout(registry::LogoutArgs),
    /// Load images from a tar archive (docker-archive or OCI) on stdin or -i
    Load(archive::LoadArgs),
    /// Save images to a tar archive (stdout or -o)
    Save(archive::SaveArgs),
    /// Import a root filesystem tarball as a one-layer image
    Import(archive::ImportArgs),
    /// List images
    Images(image::ImagesArgs),
    /// Manage images
    #[command(subcommand)]
    Image(image::ImageCommand),
    /// Add a name to an image
    Tag(image::TagArgs),
    /// Remove images
    Rmi(image::RmiArgs),
    /// Show an image's layers and how they were made
    History(image::HistoryArgs),
    /// Show low-level information about images or containers
    Inspect(image::InspectArgs),
    /// Create a container
    Create(container::CreateArgs),
    /// Run a command in a new container
    Run(container::RunArgs),
    /// Remove containers
    Rm(container::RmArgs),
    /// List containers
    Ps(container::PsArgs),
    /// Export a container's filesystem as a tar archive
    Export(container::ExportArgs),
    /// Create a new image from a container's changes
    Commit(container::CommitArgs),
    /// Show a container's filesystem changes
    Diff(container::DiffArgs),
    /// Start stopped containers
    Start(lifecycle::StartArgs),
    /// Stop running containers
    Stop(lifecycle::StopArgs),
    /// Restart containers
    Restart(lifecycle::StopArgs),
    /// Kill running containers
    Kill(lifecycle::KillArgs),
    /// Block until containers stop, then print their exit codes
    Wait(lifecycle::NamesArgs),
    /// Fetch the logs of a container
    Logs(lifecycle::LogsArgs),
    /// Attach to a running container's input and output
    Attach(lifecycle::AttachArgs),
    /// Run a command in a running container
    Exec(lifecycle::ExecArgs),
    /// Pause all processes within containers
    Pause(lifecycle::NamesArgs),
    /// Unpause all processes within containers
    Unpause(lifecycle::NamesArgs),
    /// Display the running processes of a container
    Top(lifecycle::TopArgs),
    /// Rename a container
    Rename(lifecycle::RenameArgs),
    /// Manage containers
    #[command(subcommand)]
    Container(container::ContainerCommand),
    /// Manage volumes
    #[command(subcommand)]
    Volume(volume::VolumeCommand),
    /// Manage networks
    #[command(subcommand)]
    Network(network::NetworkCommand),
    /// Display a live stream of container resource usage
    Stats(volume::StatsArgs),
    /// Update the resource limits of containers
    Update(volume::UpdateArgs),
    /// List port mappings of a container
    Port(volume::PortArgs),
    /// Copy files between a container and the local filesystem
    Cp(volume::CpArgs),
    /// Get real time events from berth
    Events(events::EventsArgs),
    /// Manage berth
    #[command(subcommand)]
    System(system::SystemCommand),
    /// Show the berth version information
    Version(info::FormatArgs),
    /// Display system-wide information
    Info(info::FormatArgs),
    /// Generate the autocompletion script for the specified shell
    #[command(subcommand)]
    Completion(info::CompletionShell),
}

pub use info::set_debug;

/// The `-f KEY=VALUE` flags of a list command as Docker's CLI reads them
/// (the key lower-cased, both sides trimmed). One without `=` is a flag
/// error as Docker's: one line, the pointer to --help, exit 125 (the `Err`).
pub fn parse_filters(
    flags: &[String],
    command: &str,
) -> std::result::Result<berth_engine::Filters, i32> {
    let mut f = berth_engine::Filters::new();
    for flag in flags {
        let Some((k, v)) = flag.split_once('=') else {
            eprintln!(
                "Error: invalid argument {flag:?} for \"-f, --filter\" flag: bad format of filter (expected name=value)"
            );
            eprintln!("See 'berth {command} --help'.");
            return Err(125);
        };
        f.add(&k.trim().to_lowercase(), v.trim());
    }
    Ok(f)
}

/// A prune's list as Docker prints it: a heading, a line each, a blank
/// line; nothing when nothing went.
pub fn print_deleted(heading: &str, items: &[String]) {
    if !items.is_empty() {
        println!("Deleted {heading}:");
        for i in items {
            println!("{i}");
        }
        println!();
    }
}

impl Command {
    /// The exit status of a failure of this command, as Docker's CLI gives it:
    /// `run` and `create` report their own failures with 125 (so they can be
    /// told from the container's status); every other command exits 1.
    pub fn failure_status(&self) -> i32 {
        match self {
            Command::Run(_)
            | Command::Create(_)
            | Command::Container(container::ContainerCommand::Run(_))
            | Command::Container(container::ContainerCommand::Create(_)) => 125,
            _ => 1,
        }
    }

    /// `exec` (its process is started by another process: see
    /// `trace::Session::watch_for_start`).
    pub fn is_exec(&self) -> bool {
        matches!(
            self,
            Command::Exec(_) | Command::Container(container::ContainerCommand::Exec(_))
        )
    }

    /// `--trace[=FILE]` of run, create, start and exec: `Some("-")` for the
    /// timeline on stderr.
    pub fn trace(&self) -> Option<&std::path::PathBuf> {
        use container::ContainerCommand as C;
        match self {
            Command::Run(a) | Command::Container(C::Run(a)) => a.trace(),
            Command::Create(a) | Command::Container(C::Create(a)) => a.trace(),
            Command::Start(a) | Command::Container(C::Start(a)) => a.trace.as_ref(),
            Command::Exec(a) | Command::Container(C::Exec(a)) => a.trace.as_ref(),
            _ => None,
        }
    }
}

pub fn dispatch(opts: &EngineOptions, cmd: Command) -> Result<i32> {
    // Credentials live in the Docker client's config, not under the root.
    let cmd = match cmd {
        Command::Login(a) => return registry::login(a),
        Command::Logout(a) => return registry::logout(a),
        // Neither needs a store (berth has no daemon to ask).
        Command::Version(a) => return info::version(a),
        Command::Completion(s) => return info::completion(s),
        // The detached deleter opens no engine (that would sweep again).
        Command::System(system::SystemCommand::DeleteTrash(a)) => return system::delete_trash(a),
        // The API server opens the engine per request.
        Command::System(system::SystemCommand::Service(a)) => return system::service(opts, a),
        // A monitor's exit command after its root was reset and removed (the
        // container was killed by that reset): there is nothing left to clean,
        // and opening an engine would make the root again.
        Command::Container(
            container::ContainerCommand::Cleanup(_) | container::ContainerCommand::HealthEvent(_),
        ) if !berth_engine::Engine::root_exists(opts) => return Ok(0),
        c => c,
    };
    let t = berth_trace::span("engine", "open the store (berth.db, layer store)");
    let engine = Engine::open(opts)?;
    t.end();
    match cmd {
        Command::Build(a) => build::build(&engine, a),
        Command::Builder(c) => build::builder(&engine, c),
        Command::Pull(a) => registry::pull(&engine, a),
        Command::Push(a) => registry::push(&engine, a),
        Command::Login(_) | Command::Logout(_) | Command::Version(_) | Command::Completion(_) => {
            Ok(0)
        }
        Command::Info(a) => info::info(&engine, a),
        Command::Load(a) => archive::load(&engine, a),
        Command::Save(a) => archive::save(&engine, a),
        Command::Import(a) => archive::import(&engine, a),
        Command::Images(a) => image::images(&engine, a),
        Command::Image(c) => image::dispatch(&engine, c),
        Command::Tag(a) => image::tag(&engine, a),
        Command::Rmi(a) => image::rmi(&engine, a),
        Command::History(a) => image::history(&engine, a),
        Command::Inspect(a) => image::inspect(&engine, a),
        Command::Create(a) => container::create(&engine, a),
        Command::Run(a) => container::run(&engine, a),
        Command::Rm(a) => container::rm(&engine, a),
        Command::Ps(a) => container::ps(&engine, a),
        Command::Export(a) => container::export(&engine, a),
        Command::Commit(a) => container::commit(&engine, a),
        Command::Diff(a) => container::diff(&engine, a),
        Command::Container(c) => container::dispatch(&engine, c),
        Command::Start(a) => lifecycle::start(&engine, a),
        Command::Stop(a) => lifecycle::stop(&engine, a),
        Command::Restart(a) => lifecycle::restart(&engine, a),
        Command::Kill(a) => lifecycle::kill(&engine, a),
        Command::Wait(a) => lifecycle::wait(&engine, a),
        Command::Logs(a) => lifecycle::logs(&engine, a),
        Command::Attach(a) => lifecycle::attach(&engine, a),
        Command::Exec(a) => lifecycle::exec(&engine, a),
        Command::Pause(a) => lifecycle::pause(&engine, a),
        Command::Unpause(a) => lifecycle::unpause(&engine, a),
        Command::Top(a) => lifecycle::top(&engine, a),
        Command::Rename(a) => lifecycle::rename(&engine, a),
        Command::System(c) => system::dispatch(&engine, c),
        Command::Events(a) => events::events(&engine, a),
        Command::Volume(c) => volume::volume(&engine, c),
        Command::Network(c) => network::dispatch(&engine, c),
        Command::Stats(a) => volume::stats(&engine, a),
        Command::Update(a) => volume::update(&engine, a),
        Command::Port(a) => volume::port(&engine, a),
        Command::Cp(a) => volume::cp(&engine, a),
    }
}
