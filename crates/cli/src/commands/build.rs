//! `berth build` (and `berth image build`): Docker's classic builder's flags.

use berth_build::{BuildError, BuildOptions};
use berth_engine::{BuildNetwork, Engine, Result};
use clap::Args;
use std::io::Read;
use std::path::PathBuf;

#[derive(Args)]
pub struct BuildArgs {
    /// Name and optionally a tag in the 'name:tag' format
    #[arg(short, long = "tag")]
    tag: Vec<String>,
    /// Name of the Dockerfile (default: 'PATH/Dockerfile'; '-' reads it from stdin)
    #[arg(short, long)]
    file: Option<String>,
    /// Set build-time variables (KEY=VALUE, or KEY to take it from the environment)
    #[arg(long = "build-arg")]
    build_arg: Vec<String>,
    /// Set the target build stage to build
    #[arg(long)]
    target: Option<String>,
    /// Do not use cache when building the image
    #[arg(long)]
    no_cache: bool,
    /// Always attempt to pull a newer version of the image (accepted; base images must be present locally for now)
    #[arg(long)]
    pull: bool,
    /// Set metadata for an image (KEY=VALUE)
    #[arg(long)]
    label: Vec<String>,
    /// Suppress the build output and print image ID on success
    #[arg(short, long)]
    quiet: bool,
    /// Set platform (only this host's, linux/ARCH)
    #[arg(long)]
    platform: Option<String>,
    /// Networking mode for the RUN instructions: bridge (the default), none or host
    #[arg(long)]
    network: Option<String>,
    /// Remove intermediate containers after a successful build (always done)
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    rm: bool,
    /// Write the image ID to the file
    #[arg(long)]
    iidfile: Option<PathBuf>,
    /// Always remove intermediate containers (always done)
    #[arg(long)]
    force_rm: bool,
    /// Build context: a directory, or - for a Dockerfile on stdin and no context
    context: String,
}

fn usage(msg: String) -> i32 {
    eprintln!("{msg}");
    eprintln!("See 'berth build --help'.");
    125
}

pub fn build(engine: &Engine, a: BuildArgs) -> Result<i32> {
    for t in &a.tag {
        if let Err(e) = berth_build::executor::check_tag(t) {
            return Ok(usage(format!(
                "invalid argument \"{t}\" for \"-t, --tag\" flag: {e}"
            )));
        }
    }
    let network: BuildNetwork = match a.network.as_deref().map(str::parse).transpose() {
        Ok(n) => n.unwrap_or_default(),
        Err(e) => {
            return Ok(usage(format!(
                "invalid argument \"{}\" for \"--network\" flag: {e}",
                a.network.as_deref().unwrap_or_default()
            )))
        }
    };
    let mut labels = Vec::new();
    for l in &a.label {
        let (k, v) = l.split_once('=').unwrap_or((l, ""));
        labels.push((k.to_owned(), v.to_owned()));
    }
    let build_args: Vec<(String, Option<String>)> = a
        .build_arg
        .iter()
        .map(|b| match b.split_once('=') {
            Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
            None => (b.clone(), None),
        })
        .collect();
    if a.context.contains("://") || a.context.starts_with("git@") {
        eprintln!(
            "Error: unable to prepare context: {}: only a local directory can be the build context",
            a.context
        );
        return Ok(1);
    }
    // `build -`: a Dockerfile on stdin and no context (an empty directory).
    let mut stdin_dockerfile = None;
    let empty_context = if a.context == "-" {
        let mut text = Vec::new();
        if let Err(e) = std::io::stdin().read_to_end(&mut text) {
            eprintln!("Error: read the Dockerfile from stdin: {e}");
            return Ok(1);
        }
        let tar_like =
            text.starts_with(&[0x1f, 0x8b]) || text.get(257..262).is_some_and(|m| m == b"ustar");
        if tar_like || a.file.as_deref() == Some("-") {
            eprintln!("Error: unable to prepare context: a context on stdin is not supported: give a directory (stdin can hold only the Dockerfile)");
            return Ok(1);
        }
        let Ok(text) = String::from_utf8(text) else {
            eprintln!("Error: the Dockerfile on stdin is not UTF-8 text");
            return Ok(1);
        };
        stdin_dockerfile = Some(text);
        match tempfile::Builder::new()
            .prefix("build-context-")
            .tempdir_in(engine.run_dir())
        {
            Ok(d) => Some(d),
            Err(e) => {
                eprintln!("Error: create an empty build context: {e}");
                return Ok(1);
            }
        }
    } else {
        None
    };
    let (dockerfile, dockerfile_text) = match a.file.as_deref() {
        _ if stdin_dockerfile.is_some() => (None, stdin_dockerfile),
        Some("-") => {
            let mut s = String::new();
            if let Err(e) = std::io::stdin().read_to_string(&mut s) {
                eprintln!("Error: read the Dockerfile from stdin: {e}");
                return Ok(1);
            }
            (None, Some(s))
        }
        Some(f) => (Some(PathBuf::from(f)), None),
        None => (None, None),
    };
    // SOURCE_DATE_EPOCH: as a build argument (BuildKit's way) or from the environment.
    let sde = build_args
        .iter()
        .rev()
        .find(|(k, _)| k == "SOURCE_DATE_EPOCH")
        .and_then(|(_, v)| v.clone())
        .or_else(|| std::env::var("SOURCE_DATE_EPOCH").ok())
        .filter(|s| !s.is_empty());
    let source_date_epoch = match sde.map(|s| s.parse::<i64>().map_err(|_| s)).transpose() {
        Ok(v) => v,
        Err(s) => {
            eprintln!("Error: invalid SOURCE_DATE_EPOCH {s:?}: not a number of seconds");
            return Ok(1);
        }
    };
    let opts = BuildOptions {
        context: empty_context
            .as_ref()
            .map_or_else(|| PathBuf::from(&a.context), |d| d.path().to_owned()),
        dockerfile,
        dockerfile_text,
        tags: a.tag.clone(),
        build_args,
        target: a.target.clone(),
        no_cache: a.no_cache,
        pull: a.pull,
        labels,
        quiet: a.quiet,
        platform: a.platform.clone(),
        network,
        source_date_epoch,
    };
    match berth_build::build(engine, &opts) {
        Ok(id) => {
            if let Some(f) = &a.iidfile {
                if let Err(e) = std::fs::write(f, id.to_string()) {
                    eprintln!("Error: write the image ID to {}: {e}", f.display());
                    return Ok(1);
                }
            }
            if a.quiet {
                println!("{id}");
            }
            Ok(0)
        }
        Err(e) => {
            let _ = std::io::Write::flush(&mut std::io::stdout());
            eprintln!("Error: {}", crate::one_line(&e));
            match e {
                // As a shell reports a command a signal ended.
                BuildError::Interrupted(sig) => Ok(128 + sig as i32),
                _ => Ok(1),
            }
        }
    }
}
