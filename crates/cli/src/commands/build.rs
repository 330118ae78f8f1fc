//! `berth build` (and `berth image build`): Docker's classic builder's flags.

use berth_builder::{BuildError, BuildOptions};
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
    /// Set type of progress output (auto, plain, tty): berth prints the classic builder's output
    #[arg(long, value_name = "string")]
    progress: Option<String>,
    /// Secret to expose to the build: id=ID,src=FILE or id=ID,env=VAR (RUN --mount=type=secret)
    #[arg(long, value_name = "stringArray")]
    secret: Vec<String>,
    /// SSH agent socket to expose to the build: default|ID[=SOCKET] (RUN --mount=type=ssh)
    #[arg(long, value_name = "stringArray")]
    ssh: Vec<String>,
    /// Images to consider as cache sources
    #[arg(long = "cache-from", value_name = "strings")]
    cache_from: Vec<String>,
    /// Output destination: DIR, type=local,dest=DIR or type=tar,dest=FILE
    #[arg(short, long, value_name = "stringArray")]
    output: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip) for the RUN steps
    #[arg(long = "add-host", value_name = "list")]
    add_host: Vec<String>,
    /// Ulimit options for the RUN steps
    #[arg(long, value_name = "ulimit")]
    ulimit: Vec<String>,
    /// Memory limit of the RUN steps
    #[arg(short, long, value_name = "bytes")]
    memory: Option<String>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap
    #[arg(long = "memory-swap", value_name = "bytes")]
    memory_swap: Option<String>,
    /// CPU shares (relative weight) of the RUN steps
    #[arg(short = 'c', long = "cpu-shares", value_name = "int")]
    cpu_shares: Option<String>,
    /// CPUs in which to allow the RUN steps' execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus", value_name = "string")]
    cpuset_cpus: Option<String>,
    /// MEMs in which to allow the RUN steps' execution (0-3, 0,1)
    #[arg(long = "cpuset-mems", value_name = "string")]
    cpuset_mems: Option<String>,
    /// Limit the CPU CFS (Completely Fair Scheduler) period of the RUN steps
    #[arg(long = "cpu-period", value_name = "int")]
    cpu_period: Option<String>,
    /// Limit the CPU CFS (Completely Fair Scheduler) quota of the RUN steps
    #[arg(long = "cpu-quota", value_name = "int")]
    cpu_quota: Option<String>,
    /// Security options (refused, as Docker's daemon refuses them on build)
    #[arg(long = "security-opt", value_name = "strings")]
    security_opt: Vec<String>,
    /// Compress the build context using gzip (accepted: the context is not sent anywhere)
    #[arg(long)]
    compress: bool,
    /// Skip image verification (accepted: berth does not verify signatures)
    #[arg(long = "disable-content-trust", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    disable_content_trust: bool,
    /// Squash newly built layers into a single new layer (refused: Docker needs experimental mode)
    #[arg(long)]
    squash: bool,
    /// Build context: a directory, or - for a Dockerfile on stdin and no context
    context: String,
}

#[derive(clap::Subcommand)]
pub enum BuilderCommand {
    /// Remove build cache (RUN --mount=type=cache directories)
    Prune(BuilderPruneArgs),
}

#[derive(Args)]
pub struct BuilderPruneArgs {
    /// Remove all unused build cache, not just dangling ones (all is removed)
    #[arg(short, long)]
    all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    force: bool,
}

pub fn builder(engine: &Engine, c: BuilderCommand) -> Result<i32> {
    match c {
        BuilderCommand::Prune(_) => {
            let bytes = engine.build_cache_prune()?;
            println!(
                "Total reclaimed space: {}",
                crate::format::human_size(bytes)
            );
            Ok(0)
        }
    }
}

fn usage(msg: String) -> i32 {
    eprintln!("{msg}");
    eprintln!("See 'berth build --help'.");
    125
}

pub fn build(engine: &Engine, a: BuildArgs) -> Result<i32> {
    for t in &a.tag {
        if let Err(e) = berth_builder::executor::check_tag(t) {
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
    if a.squash {
        eprintln!("Error: \"--squash\" is only supported on a Docker daemon with experimental features enabled (berth has none)");
        return Ok(1);
    }
    if let Some(p) = &a.progress {
        if !matches!(p.as_str(), "auto" | "plain" | "tty") {
            // BuildKit's CLI's words (the classic one ignores the flag).
            eprintln!(
                "Error: invalid value \"{p}\" passed to --progress, valid values are: auto, plain, tty"
            );
            return Ok(1);
        }
    }
    let mut run_host = berth_engine::options::HostConfig::default();
    let flag_values = (|| -> Result<()> {
        use berth_engine::options as o;
        for h in &a.add_host {
            // Docker's words: the flag, then the reason.
            let parsed = o::add_host(h).map_err(|e| {
                berth_engine::EngineError::Invalid(format!(
                    "invalid argument \"{h}\" for \"--add-host\" flag: {e}"
                ))
            })?;
            run_host.extra_hosts.push(parsed);
        }
        for u in &a.ulimit {
            run_host.ulimits.push(o::ulimit(u)?);
        }
        if let Some(m) = &a.memory {
            run_host.memory = Some(o::size_flag("--memory", m)?);
        }
        if let Some(m) = &a.memory_swap {
            run_host.memory_swap = Some(o::swap_flag(m)?);
        }
        if let Some(v) = &a.cpu_shares {
            run_host.cpu_shares = Some(o::int_flag::<u64>("--cpu-shares", v)?);
        }
        if let Some(v) = &a.cpu_period {
            run_host.cpu_period = Some(o::int_flag::<u64>("--cpu-period", v)?);
        }
        if let Some(v) = &a.cpu_quota {
            run_host.cpu_quota = Some(o::int_flag::<i64>("--cpu-quota", v)?);
        }
        run_host.cpuset_cpus = a.cpuset_cpus.clone();
        run_host.cpuset_mems = a.cpuset_mems.clone();
        Ok(())
    })();
    if let Err(e) = flag_values {
        return Ok(usage(e.to_string()));
    }
    // What Docker's daemon answers (exit 1, no pointer to --help).
    if !a.security_opt.is_empty() {
        eprintln!(
            "Error: The daemon on this platform does not support setting security options on build"
        );
        return Ok(1);
    }
    if let Err(e) = berth_engine::options::validate(&run_host) {
        eprintln!("Error: {e}");
        return Ok(1);
    }
    let output = match a.output.as_slice() {
        [] => None,
        [o] => match parse_output(o) {
            Ok(o) => Some(o),
            Err(e) => {
                return Ok(usage(format!(
                    "invalid argument \"{o}\" for \"-o, --output\" flag: {e}"
                )))
            }
        },
        _ => return Ok(usage("only one --output is supported".into())),
    };
    if matches!(output, Some(Output::Tar(None))) && !a.quiet {
        eprintln!("Error: --output to stdout needs -q: the build's progress is printed on stdout");
        return Ok(1);
    }
    let mut secrets = Vec::new();
    for spec in &a.secret {
        match parse_secret(spec) {
            Ok(s) => secrets.push(s),
            Err(e) => {
                eprintln!("Error: could not parse secrets: [{spec}]: {e}");
                return Ok(1);
            }
        }
    }
    let mut ssh = Vec::new();
    for spec in &a.ssh {
        match parse_ssh(spec) {
            Ok(s) => ssh.push(s),
            Err(e) => {
                eprintln!("Error: could not parse ssh: [{spec}]: {e}");
                return Ok(1);
            }
        }
    }
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
    for c in &a.cache_from {
        if engine.image_config(c).is_err() {
            // Docker's daemon logs these words; berth says them.
            eprintln!("[Warning] Could not look up {c} for cache resolution, skipping: No such image: {c}");
        }
    }
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
        run_host,
        secrets,
        ssh,
        cache_from: a.cache_from.clone(),
        sink: None,
    };
    match berth_builder::build(engine, &opts) {
        Ok(id) => {
            if let Some(f) = &a.iidfile {
                if let Err(e) = std::fs::write(f, id.to_string()) {
                    eprintln!("Error: write the image ID to {}: {e}", f.display());
                    return Ok(1);
                }
            }
            if let Some(o) = &output {
                if let Err(e) = write_output(engine, &id, o) {
                    eprintln!("Error: --output: {}", crate::one_line(&e));
                    return Ok(1);
                }
            }
            if a.quiet && !matches!(output, Some(Output::Tar(None))) {
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

/// `--output`: where the built image's files go.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Output {
    /// A directory (made if missing).
    Local(PathBuf),
    /// A tar file; None: stdout.
    Tar(Option<PathBuf>),
}

/// `DIR`, `-`, `type=local,dest=DIR`, `type=tar,dest=FILE`.
fn parse_output(s: &str) -> std::result::Result<Output, String> {
    if s == "-" {
        return Ok(Output::Tar(None));
    }
    if !s.contains('=') && !s.contains(',') {
        if s.is_empty() {
            return Err("an empty destination".into());
        }
        return Ok(Output::Local(PathBuf::from(s)));
    }
    let (mut typ, mut dest) = (None, None);
    for field in s.split(',') {
        match field.split_once('=') {
            Some(("type", t)) => typ = Some(t.to_owned()),
            Some(("dest", d)) => dest = Some(d.to_owned()),
            _ => {
                return Err(format!(
                    "unexpected field {field:?}: type=local|tar,dest=PATH"
                ))
            }
        }
    }
    let dest = dest.filter(|d| !d.is_empty());
    match typ.as_deref() {
        Some("local") => Ok(Output::Local(PathBuf::from(
            dest.ok_or("type=local needs dest=DIR")?,
        ))),
        Some("tar") => Ok(Output::Tar(
            match dest.ok_or("type=tar needs dest=FILE")? {
                d if d == "-" => None,
                d => Some(PathBuf::from(d)),
            },
        )),
        Some(t) => Err(format!(
            "output type {t:?} is not supported: local or tar (the image itself is always stored)"
        )),
        None => Err("no type= given: type=local,dest=DIR or type=tar,dest=FILE".into()),
    }
}

fn write_output(engine: &Engine, id: &berth_digest::Digest, o: &Output) -> Result<()> {
    match o {
        Output::Tar(Some(f)) => engine.build_export_file(id, f),
        Output::Tar(None) => {
            let stdout = std::io::stdout();
            let mut w = stdout.lock();
            engine.build_export(id, &mut w)?;
            std::io::Write::flush(&mut w)
                .map_err(|e| berth_engine::EngineError::Other(format!("stdout: {e}")))
        }
        Output::Local(dir) => {
            let fail = |e: std::io::Error| {
                berth_engine::EngineError::Other(format!("{}: {e}", dir.display()))
            };
            std::fs::create_dir_all(dir).map_err(fail)?;
            // The image's tar through a pipe, unpacked as it comes (the tar
            // crate keeps every entry inside the directory).
            let (r, w) = std::io::pipe().map_err(fail)?;
            let dir2 = dir.clone();
            let unpack = std::thread::spawn(move || {
                let mut ar = tar::Archive::new(r);
                ar.set_preserve_permissions(true);
                ar.set_preserve_mtime(true);
                ar.set_overwrite(true);
                ar.unpack(&dir2)
            });
            let res = engine.build_export(id, w);
            let unpacked = unpack
                .join()
                .map_err(|_| berth_engine::EngineError::Other("unpack failed".into()))?;
            res?;
            unpacked.map_err(fail)
        }
    }
}

/// `id=ID,src=FILE` (`source=`), `id=ID,env=VAR`, `type=file|env`.
fn parse_secret(s: &str) -> std::result::Result<berth_builder::BuildSecret, String> {
    use berth_builder::SecretSource;
    let (mut id, mut src, mut env, mut typ) = (None, None, None, None);
    for field in s.split(',') {
        match field.split_once('=') {
            Some(("id", v)) => id = Some(v.to_owned()),
            Some(("src" | "source", v)) => src = Some(v.to_owned()),
            Some(("env", v)) => env = Some(v.to_owned()),
            Some(("type", v)) => typ = Some(v.to_owned()),
            _ => {
                return Err(format!(
                    "unexpected field {field:?}: id=ID,src=FILE or id=ID,env=VAR"
                ))
            }
        }
    }
    let id = id.filter(|i| !i.is_empty()).ok_or("no id= given")?;
    let source = match (typ.as_deref(), src, env) {
        (None | Some("file"), Some(p), None) => {
            let p = PathBuf::from(p);
            match std::fs::metadata(&p) {
                Ok(m) if m.is_file() => SecretSource::File(p),
                Ok(_) => return Err(format!("{} is not a file", p.display())),
                Err(e) => {
                    return Err(format!(
                        "failed to stat {}: {}",
                        p.display(),
                        crate::one_line(&e)
                    ))
                }
            }
        }
        (None | Some("env"), None, Some(v)) | (Some("env"), Some(v), None) => {
            if std::env::var_os(&v).is_none() {
                return Err(format!("environment variable {v} is not set"));
            }
            SecretSource::Env(v)
        }
        (Some(t), _, _) if t != "file" && t != "env" => {
            return Err(format!("unsupported secret type {t:?}: file or env"))
        }
        _ => return Err("give one of src=FILE or env=VAR".into()),
    };
    Ok(berth_builder::BuildSecret { id, source })
}

/// `default` (the agent of $SSH_AUTH_SOCK), `ID=SOCKET`.
fn parse_ssh(s: &str) -> std::result::Result<(String, PathBuf), String> {
    let (id, path) = match s.split_once('=') {
        Some((id, p)) => (id, PathBuf::from(p)),
        None => (
            s,
            std::env::var_os("SSH_AUTH_SOCK")
                .map(PathBuf::from)
                .ok_or("SSH_AUTH_SOCK is not set: give the agent's socket as ID=SOCKET")?,
        ),
    };
    if id.is_empty() || path.as_os_str().is_empty() {
        return Err("expected default or ID=SOCKET".into());
    }
    if path.to_string_lossy().contains(',') {
        return Err("berth forwards one agent socket per id (no key files)".into());
    }
    use std::os::unix::fs::FileTypeExt;
    match std::fs::metadata(&path) {
        Ok(m) if m.file_type().is_socket() => Ok((id.to_owned(), path)),
        Ok(_) => Err(format!(
            "{} is not a socket: berth forwards ssh agents' sockets only, not key files",
            path.display()
        )),
        Err(e) => Err(format!("{}: {}", path.display(), crate::one_line(&e))),
    }
}
