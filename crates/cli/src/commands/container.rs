use crate::format::{ago, table};
use berth_engine::{CreateOptions, Engine, EngineError, Result, RunOptions};
use clap::{Args, Subcommand};
use std::path::PathBuf;

/// The flags `create` and `run` share.
#[derive(Args, Clone)]
pub struct ContainerFlags {
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
    /// The image to run
    image: String,
    /// The command and its arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

fn env_value(kv: &str) -> Option<String> {
    if kv.contains('=') {
        Some(kv.to_owned())
    } else {
        std::env::var(kv).ok().map(|v| format!("{kv}={v}"))
    }
}

impl ContainerFlags {
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
                env.extend(env_value(line));
            }
        }
        env.extend(self.env.iter().filter_map(|kv| env_value(kv)));
        Ok(CreateOptions {
            interactive: self.interactive,
            auto_remove: false,
            name: self.name.clone(),
            image: self.image.clone(),
            run: RunOptions {
                cmd: self.command.clone(),
                entrypoint: self.entrypoint.clone(),
                env,
                workdir: self.workdir.clone(),
                user: self.user.clone(),
                hostname: self.hostname.clone(),
                tty: self.tty,
                read_only: self.read_only,
                ..Default::default()
            },
        })
    }
}

/// Docker's -h is --hostname, so help is only --help.
#[derive(Args)]
#[command(disable_help_flag = true)]
pub struct CreateArgs {
    /// Print help
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
    #[command(flatten)]
    flags: ContainerFlags,
}

/// Docker's exit codes for a container that could not start: 125 for the
/// engine, 126 when the command cannot be executed, 127 when it is not found.
pub fn start_failure(e: EngineError) -> i32 {
    eprintln!("Error: {}", crate::one_line(&e));
    match e {
        EngineError::CommandNotFound(_) => 127,
        EngineError::CannotExecute(_) => 126,
        _ => 125,
    }
}

pub fn create(engine: &Engine, a: CreateArgs) -> Result<i32> {
    match a.flags.options().and_then(|o| engine.create(&o)) {
        Ok(id) => {
            println!("{id}");
            Ok(0)
        }
        Err(e) => Ok(start_failure(e)),
    }
}

#[derive(Args)]
#[command(disable_help_flag = true)]
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

pub fn run(engine: &Engine, a: RunArgs) -> Result<i32> {
    let opts = match a.flags.options() {
        Ok(mut o) => {
            o.auto_remove = a.rm;
            o
        }
        Err(e) => return Ok(start_failure(e)),
    };
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
    /// Remove anonymous volumes (accepted; berth has no volumes yet)
    #[arg(short, long)]
    volumes: bool,
    #[arg(required = true)]
    containers: Vec<String>,
}

pub fn rm(engine: &Engine, a: RmArgs) -> Result<i32> {
    let mut code = 0;
    for c in &a.containers {
        match engine.rm(c, a.force) {
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
}

pub fn ps(engine: &Engine, a: PsArgs) -> Result<i32> {
    let list: Vec<_> = engine
        .containers()?
        .into_iter()
        .filter(|c| a.all || c.status.starts_with("Up"))
        .collect();
    if a.quiet {
        for c in &list {
            println!(
                "{}",
                if a.no_trunc {
                    c.id.as_str()
                } else {
                    c.id.short()
                }
            );
        }
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|c| {
            let cmd = format!("\"{}\"", c.command);
            let cmd = if a.no_trunc || cmd.chars().count() <= 20 {
                cmd
            } else {
                cmd.chars().take(19).collect::<String>() + "…"
            };
            vec![
                if a.no_trunc {
                    c.id.to_string()
                } else {
                    c.id.short().to_owned()
                },
                c.image.clone(),
                cmd,
                ago(c.created),
                c.status.clone(),
                String::new(),
                c.name.clone(),
            ]
        })
        .collect();
    print!(
        "{}",
        table(
            &[
                "CONTAINER ID",
                "IMAGE",
                "COMMAND",
                "CREATED",
                "STATUS",
                "PORTS",
                "NAMES"
            ],
            &rows
        )
    );
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
    /// Pause the container during commit (accepted; containers do not run in the background yet)
    #[arg(short, long, default_value_t = true)]
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
        ContainerCommand::Inspect(a) => super::image::inspect(engine, a),
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
    }
}
