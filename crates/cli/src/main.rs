//! `berth`: Docker's command line, without a daemon.

mod commands;
mod format;
mod trace;

use clap::Parser;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "berth",
    // Docker's shape: "Docker version 20.10.24+dfsg1, build 297e128".
    version = concat!(
        "version ",
        env!("CARGO_PKG_VERSION"),
        ", build ",
        env!("BERTH_GIT_COMMIT")
    ),
    disable_version_flag = true,
    about = "A daemonless, Docker-compatible container engine",
    disable_help_subcommand = true
)]
pub struct Cli {
    /// Where berth keeps its state (default /var/lib/berth; volatile parts in /run/berth)
    #[arg(long, global = true, env = "BERTH_ROOT")]
    root: Option<PathBuf>,
    /// Where berth keeps its volatile state (default ROOT/run with --root, /run/berth without; $XDG_RUNTIME_DIR/berth rootless)
    #[arg(long, global = true, env = "BERTH_RUNROOT")]
    runroot: Option<PathBuf>,
    /// Layer storage driver: overlay or vfs (default: overlay when the kernel has it)
    #[arg(long, global = true, env = "BERTH_STORAGE_DRIVER")]
    storage_driver: Option<String>,
    /// Enable debug output
    #[arg(short = 'D', long, global = true)]
    debug: bool,
    /// Print version information and quit
    #[arg(short = 'v', long, action = clap::ArgAction::Version)]
    version: Option<bool>,
    #[command(subcommand)]
    command: commands::Command,
}

/// An error as the single line berth prints: control characters (newlines
/// from a tar header full of garbage, say) are escaped.
pub fn one_line(e: &impl std::fmt::Display) -> String {
    e.to_string()
        .chars()
        .flat_map(|c| {
            let esc: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            esc
        })
        .collect()
}

/// The subcommand words of the command line (`image build`), up to the
/// unknown flag `arg`: the words that name a subcommand of the one before,
/// so that a flag's value (`build -t t2 --bogus`) is not taken for one.
fn subcommand_path(arg: &str) -> Vec<String> {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    let mut path: Vec<String> = Vec::new();
    let mut skip_value = false;
    for a in std::env::args().skip(1) {
        if a == arg {
            break;
        }
        if std::mem::take(&mut skip_value) {
            continue;
        }
        if path.is_empty() && (a == "--root" || a == "--runroot" || a == "--storage-driver") {
            skip_value = true;
            continue;
        }
        if a.starts_with('-') {
            continue;
        }
        // Not a subcommand: a flag's value or an argument; the path ends
        // at a command without subcommands.
        if !cmd.has_subcommands() {
            break;
        }
        if let Some(sub) = cmd.find_subcommand(&a).cloned() {
            path.push(a);
            cmd = sub;
        }
    }
    path
}

/// Started by a user other than root: state under the user's own
/// directories (`$XDG_DATA_HOME/berth`, `$XDG_RUNTIME_DIR/berth`) unless
/// `--root` says otherwise, and this process inside the user's namespace
/// (made once, then joined). Everything berth starts from here on (monitors,
/// runtimes, the exit command) inherits the namespace, and the paths
/// through the environment.
fn enter_rootless(opts: &mut berth_engine::EngineOptions) -> Result<(), String> {
    use berth_runtime::rootless;
    let uid = nix::unistd::Uid::effective();
    if uid.is_root() {
        return Ok(());
    }
    let uid = uid.as_raw();
    let user_run = rootless::default_run_dir(uid);
    let err = |e: rootless::RootlessError| one_line(&e);
    if opts.root.is_none() {
        opts.root = Some(rootless::default_data_dir(uid).map_err(err)?);
        if opts.run.is_none() {
            opts.run = Some(user_run.clone());
        }
    }
    for p in [&mut opts.root, &mut opts.run].into_iter().flatten() {
        if let Ok(a) = std::path::absolute(&*p) {
            *p = a;
        }
    }
    // (the run directory the engine will use: its stale rootless network
    // namespace's processes are ended when a new namespace is made)
    let state_run = match (&opts.run, &opts.root) {
        (Some(r), _) => r.clone(),
        (None, Some(root)) => root.join("run"),
        (None, None) => user_run.clone(),
    };
    rootless::enter(&user_run, &state_run).map_err(err)?;
    // Still one thread: the environment is ours to change.
    if let Some(r) = &opts.root {
        std::env::set_var("BERTH_ROOT", r);
    }
    if let Some(r) = &opts.run {
        std::env::set_var("BERTH_RUNROOT", r);
    }
    Ok(())
}

fn main() {
    let origin = berth_trace::now();
    // Rootless berth's pause process (see berth_runtime::rootless).
    if std::env::args_os().nth(1).as_deref() == Some(berth_runtime::rootless::PAUSE_ARG.as_ref()) {
        berth_runtime::rootless::pause_forever();
    }
    // Output into a closed pipe (`berth images | head -1`) ends berth quietly,
    // as SIGPIPE ends docker, instead of a panic report: Rust ignores
    // SIGPIPE, so println! panics with EPIPE.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.contains("Broken pipe") {
            std::process::exit(141);
        }
        default_hook(info);
    }));
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ContextKind;
            use clap::error::ErrorKind;
            match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    let _ = e.print();
                    std::process::exit(0);
                }
                // Docker's shape: one line, a pointer to --help, exit 125.
                ErrorKind::UnknownArgument => {
                    let arg = e
                        .get(ContextKind::InvalidArg)
                        .map(|a| a.to_string())
                        .unwrap_or_default();
                    let cmd = subcommand_path(&arg);
                    eprintln!("unknown flag: {arg}");
                    let words: Vec<&str> = std::iter::once("berth")
                        .chain(cmd.iter().map(String::as_str))
                        .collect();
                    eprintln!("See '{} --help'.", words.join(" "));
                }
                // Docker's words for a command it does not have, exit 1.
                ErrorKind::InvalidSubcommand => {
                    let word = e
                        .get(ContextKind::InvalidSubcommand)
                        .map(|a| a.to_string())
                        .unwrap_or_default();
                    let words: Vec<String> = std::iter::once("berth".to_owned())
                        .chain(subcommand_path(&word))
                        .collect();
                    eprintln!("berth: '{word}' is not a {} command.", words.join(" "));
                    eprintln!("See '{} --help'", words.join(" "));
                    std::process::exit(1);
                }
                _ => {
                    let _ = e.print();
                }
            }
            std::process::exit(125);
        }
    };
    let mut opts = berth_engine::EngineOptions {
        root: cli.root,
        run: cli.runroot,
        storage_driver: cli.storage_driver,
    };
    if let Err(e) = enter_rootless(&mut opts) {
        eprintln!("Error: {e}");
        std::process::exit(cli.command.failure_status());
    }
    // The detached deleter of storage trash is this program.
    berth_engine::set_cli_executable();
    commands::set_debug(cli.debug);
    let failure_status = cli.command.failure_status();
    let trace = match trace::Session::begin(origin, cli.command.trace()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("Error: {}", crate::one_line(&e));
            std::process::exit(failure_status);
        }
    };
    if let (Some(t), true) = (&trace, cli.command.is_exec()) {
        t.watch_for_start();
    }
    let code = match commands::dispatch(&opts, cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("Error: {}", crate::one_line(&e));
            failure_status
        }
    };
    if let Some(t) = trace {
        t.finish();
    }
    std::process::exit(code);
}

#[cfg(test)]
mod tests {
    #[test]
    fn command_line_definition_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
