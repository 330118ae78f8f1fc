//! Running a parsed Dockerfile: one image per step (a layer for RUN, COPY,
//! ADD and a WORKDIR that creates its directory; the config only for the
//! others), each looked up in the cache first. Output in the shape of
//! Docker's classic builder.

mod cache_from;
mod copy;
mod mounts;

pub use mounts::{BuildSecret, SecretSource};

use crate::cache::Cache;
use crate::ignore::{clean, Ignore};
use crate::parser::{self, Command, HealthArgs, Instruction, ShellOrExec};
use crate::shell::{self, Vars};
use berth_digest::Digest;
use berth_engine::{BuildNetwork, BuildRun, Engine, EngineError};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A Dockerfile that does not parse: names the file and line.
    #[error("{file}:{line}: {msg}")]
    Parse {
        file: String,
        line: usize,
        msg: String,
    },
    /// A RUN step that exited non-zero (Docker's words).
    #[error("The command '{cmd}' returned a non-zero code: {code}")]
    RunFailed { cmd: String, code: i32 },
    /// A signal stopped the build (after cleaning up); exit 128 + its number.
    #[error("build interrupted ({0})")]
    Interrupted(nix::sys::signal::Signal),
    #[error("{0}")]
    Engine(#[from] EngineError),
    #[error("{0}")]
    Other(String),
}

type Result<T, E = BuildError> = std::result::Result<T, E>;

fn other(msg: impl Into<String>) -> BuildError {
    BuildError::Other(msg.into())
}

/// What a build tells its front end when it does not print on stdout.
#[derive(Debug, Clone, Copy)]
pub enum BuildEvent<'a> {
    /// Text as the classic builder prints it (a whole line with its
    /// newline, or a chunk of a RUN step's output).
    Output(&'a str),
    /// The image is built (before `Successfully built`: the API's `aux`).
    Built(&'a Digest),
}

/// Where a build's output goes: a function given each [`BuildEvent`] (the
/// API server); the build then leaves the process's signals alone and
/// stops between steps once `cancel` is set (its client went away).
#[derive(Clone)]
pub struct BuildSink {
    pub each: std::sync::Arc<dyn Fn(BuildEvent<'_>) + Send + Sync>,
    pub cancel: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl std::fmt::Debug for BuildSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BuildSink")
    }
}

/// What `berth build` was asked.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    pub context: PathBuf,
    /// `-f`: None is CONTEXT/Dockerfile.
    pub dockerfile: Option<PathBuf>,
    /// The Dockerfile's text when it came on stdin (`-f -`).
    pub dockerfile_text: Option<String>,
    pub tags: Vec<String>,
    /// `--build-arg K=V` (or `K`: the value from berth's environment).
    pub build_args: Vec<(String, Option<String>)>,
    pub target: Option<String>,
    pub no_cache: bool,
    pub pull: bool,
    pub labels: Vec<(String, String)>,
    pub quiet: bool,
    pub platform: Option<String>,
    pub network: BuildNetwork,
    /// SOURCE_DATE_EPOCH: created times, and layer mtimes clamped to it.
    pub source_date_epoch: Option<i64>,
    /// What RUN steps get besides their network: `--add-host`,
    /// `--ulimit`, `-m`/`--memory-swap`.
    pub run_host: berth_engine::options::HostConfig,
    /// `--secret`: what RUN --mount=type=secret mounts.
    pub secrets: Vec<BuildSecret>,
    /// `--ssh ID=SOCKET`: the agents RUN --mount=type=ssh mounts.
    pub ssh: Vec<(String, PathBuf)>,
    /// `--cache-from`: images the steps' results may be taken from.
    pub cache_from: Vec<String>,
    /// None: output on stdout, signals stop the build (the CLI).
    pub sink: Option<BuildSink>,
}

/// Whether `t` can tag an image (`-t`): Docker's reference grammar, a tag
/// and no digest.
pub fn check_tag(t: &str) -> std::result::Result<(), String> {
    match berth_image::Reference::parse(t) {
        Ok(r) if r.digest().is_some() => Err("invalid reference format".into()),
        Ok(_) => Ok(()),
        Err(_) => Err("invalid reference format".into()),
    }
}

/// The platform builds are for: this host's.
fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        a => a,
    }
}

fn check_platform(p: &str) -> Result<()> {
    let mut it = p.split('/');
    let os = it.next().unwrap_or("");
    let arch = it.next();
    if os == "linux" && arch.is_none_or(|a| a == host_arch()) {
        Ok(())
    } else {
        Err(other(format!(
            "platform {p:?} is not supported: berth builds for this host's platform, linux/{}",
            host_arch()
        )))
    }
}

/// One stage's state between steps.
struct Stage {
    name: Option<String>,
    image: Option<Digest>,
    config: Value,
    /// ARGs declared in this stage, with their values (None: declared,
    /// without a value).
    args: Vec<(String, Option<String>)>,
    /// CMD was set in this stage (ENTRYPOINT then keeps it).
    cmd_set: bool,
}

impl Stage {
    fn cfg(&mut self) -> &mut Value {
        if !self.config["config"].is_object() {
            self.config["config"] = json!({});
        }
        &mut self.config["config"]
    }

    fn env(&self) -> Vec<String> {
        self.config["config"]["Env"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// What substitution sees: the ARGs in scope, then ENV over them.
    fn vars(&self) -> Vars {
        let mut v: Vars = self
            .args
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.clone()?)))
            .collect();
        for e in self.env() {
            if let Some((k, val)) = e.split_once('=') {
                v.insert(k.to_owned(), val.to_owned());
            }
        }
        v
    }

    fn shell(&self) -> Vec<String> {
        self.config["config"]["Shell"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect::<Vec<_>>()
            })
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()])
    }

    fn workdir(&self) -> String {
        self.config["config"]["WorkingDir"]
            .as_str()
            .filter(|w| !w.is_empty())
            .unwrap_or("/")
            .to_owned()
    }

    fn set_env(&mut self, k: &str, v: &str) {
        let mut env = self.env();
        let entry = format!("{k}={v}");
        match env.iter_mut().find(|e| e.split('=').next() == Some(k)) {
            Some(e) => *e = entry,
            None => env.push(entry),
        }
        self.cfg()["Env"] = json!(env);
    }
}

struct Builder<'a> {
    engine: &'a Engine,
    opts: &'a BuildOptions,
    cache: Cache,
    escape: char,
    file: String,
    ignore: Ignore,
    /// Images this build made (removed if it fails).
    created: Vec<Digest>,
    /// Finished stages: name (or None) and final image/config.
    stages: Vec<(Option<String>, Option<Digest>, Value)>,
    /// ARGs before the first FROM, with --build-arg applied.
    meta_args: Vec<(String, Option<String>)>,
    build_args: BTreeMap<String, String>,
    used_args: std::collections::BTreeSet<String>,
    step: usize,
    total: usize,
    interrupts: Option<&'a Interrupts>,
    /// A line printed before the next step's ` ---> ID`.
    note: Option<String>,
    /// The signal that stopped the build.
    interrupted: Option<nix::sys::signal::Signal>,
    /// `--cache-from` images found here: ID and config.
    sources: Vec<(Digest, Value)>,
}

/// Ctrl-C (and SIGTERM, SIGHUP, SIGQUIT) during a build: held back and
/// noticed between steps, so the build stops through its usual failure
/// path (work areas unmounted, its images removed) with
/// [`BuildError::Interrupted`]. During a RUN step the engine forwards the
/// signal to the step's container instead.
struct Interrupts {
    set: nix::sys::signal::SigSet,
    fd: Option<nix::sys::signalfd::SignalFd>,
}

impl Interrupts {
    fn new() -> Interrupts {
        use nix::sys::signal::{SigSet, Signal};
        use nix::sys::signalfd::{SfdFlags, SignalFd};
        let mut set = SigSet::empty();
        for s in [
            Signal::SIGINT,
            Signal::SIGTERM,
            Signal::SIGHUP,
            Signal::SIGQUIT,
        ] {
            set.add(s);
        }
        let fd = set.thread_block().ok().and_then(|()| {
            SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC).ok()
        });
        Interrupts { set, fd }
    }

    /// Blocks the signals again (a RUN step unblocks them when it ends).
    fn reblock(&self) {
        let _ = self.set.thread_block();
    }

    /// A signal that arrived since the last look.
    fn take(&self) -> Option<nix::sys::signal::Signal> {
        let info = self.fd.as_ref()?.read_signal().ok()??;
        nix::sys::signal::Signal::try_from(info.ssi_signo as i32).ok()
    }

    fn finish(self) {
        drop(self.fd);
        let _ = self.set.thread_unblock();
    }
}

/// Runs a build; prints progress on stdout as Docker's classic builder
/// does (nothing with `quiet`); returns the image ID. A failure removes every image
/// this build made, and its containers and work areas.
pub fn build(engine: &Engine, opts: &BuildOptions) -> Result<Digest> {
    if let Some(p) = &opts.platform {
        check_platform(p)?;
    }
    let df_path = opts
        .dockerfile
        .clone()
        .map(|f| {
            if f.is_absolute() || f.exists() {
                f
            } else {
                opts.context.join(f)
            }
        })
        .unwrap_or_else(|| opts.context.join("Dockerfile"));
    let text = match &opts.dockerfile_text {
        Some(t) => t.clone(),
        None => std::fs::read_to_string(&df_path).map_err(|e| {
            other(format!(
                "failed to read the Dockerfile {}: {e}",
                df_path.display()
            ))
        })?,
    };
    if !opts.context.is_dir() {
        return Err(other(format!(
            "unable to prepare context: path {:?} not found",
            opts.context.display().to_string()
        )));
    }
    let file = match &opts.dockerfile_text {
        Some(_) => "Dockerfile".to_owned(),
        None => df_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "Dockerfile".into()),
    };
    let parse_err = |e: parser::ParseError| BuildError::Parse {
        file: file.clone(),
        line: e.line,
        msg: e.msg,
    };
    let df = parser::parse(&text).map_err(parse_err)?;
    // Every instruction parses before anything runs.
    let mut steps: Vec<(Instruction, Command)> = Vec::new();
    for ins in &df.instructions {
        let c = ins.command(df.escape).map_err(parse_err)?;
        steps.push((ins.clone(), c));
    }
    // BuildKit's rule: `NAME.dockerignore` beside the Dockerfile wins over
    // the context's `.dockerignore`.
    let own_ignore = match &opts.dockerfile_text {
        Some(_) => None,
        None => {
            let mut name = df_path.clone().into_os_string();
            name.push(".dockerignore");
            std::fs::read_to_string(PathBuf::from(name)).ok()
        }
    };
    let ignore = match own_ignore
        .or_else(|| std::fs::read_to_string(opts.context.join(".dockerignore")).ok())
    {
        Some(t) => Ignore::parse(&t),
        None => Ignore::default(),
    };
    let mut build_args = BTreeMap::new();
    for (k, v) in &opts.build_args {
        let v = match v {
            Some(v) => Some(v.clone()),
            None => std::env::var(k).ok(),
        };
        if let Some(v) = v {
            build_args.insert(k.clone(), v);
        }
    }
    let mut b = Builder {
        engine,
        opts,
        cache: Cache::open(engine.root()).map_err(|e| other(e.to_string()))?,
        escape: df.escape,
        file,
        ignore,
        created: Vec::new(),
        stages: Vec::new(),
        meta_args: Vec::new(),
        build_args,
        used_args: Default::default(),
        step: 0,
        total: 0,
        interrupts: None,
        note: None,
        interrupted: None,
        sources: Vec::new(),
    };
    for name in &opts.cache_from {
        if let Ok((id, cfg)) = engine.image_config(name) {
            if let Ok(v) = serde_json::from_slice(&cfg) {
                b.sources.push((id, v));
            }
        }
    }
    // From here what the build makes is owned by this process: killed, it
    // is removed by the next berth command.
    engine.build_begin().map_err(|e| other(e.to_string()))?;
    // A server's thread leaves signals to the server.
    let interrupts = opts.sink.is_none().then(Interrupts::new);
    b.interrupts = interrupts.as_ref();
    let res = b.run(steps);
    let taken = b.interrupted;
    let res = match res {
        Ok(id) => Ok(id),
        Err(e) => {
            let _ = std::io::stdout().flush();
            engine.build_discard(&b.created);
            Err(e)
        }
    };
    drop(b);
    engine.build_end();
    if let Some(i) = interrupts {
        i.finish();
    }
    match (res, taken) {
        (Err(_), Some(sig)) => Err(BuildError::Interrupted(sig)),
        (res, _) => res,
    }
}

impl Builder<'_> {
    fn say(&self, s: impl std::fmt::Display) {
        if !self.opts.quiet {
            self.emit(&format!("{s}\n"));
        }
    }

    /// Output text, to the sink or stdout.
    fn emit(&self, s: &str) {
        emit(self.opts.sink.as_ref(), s);
    }

    fn line_err(&self, line: usize, msg: impl Into<String>) -> BuildError {
        BuildError::Parse {
            file: self.file.clone(),
            line,
            msg: msg.into(),
        }
    }

    fn run(&mut self, steps: Vec<(Instruction, Command)>) -> Result<Digest> {
        // Stages: the instructions from each FROM on; ARGs before the first
        // FROM are the meta args.
        let first_from = steps
            .iter()
            .position(|(_, c)| matches!(c, Command::From { .. }))
            .ok_or_else(|| {
                other(format!(
                    "{}: no FROM instruction: the Dockerfile has no stage to build",
                    self.file
                ))
            })?;
        for (ins, c) in &steps[..first_from] {
            if !matches!(c, Command::Arg(_)) {
                return Err(self.line_err(
                    ins.line,
                    format!(
                        "{} before the first FROM: only ARG may come before it",
                        ins.keyword
                    ),
                ));
            }
        }
        let mut stages: Vec<Vec<(Instruction, Command)>> = Vec::new();
        for s in &steps[first_from..] {
            if matches!(s.1, Command::From { .. }) {
                stages.push(Vec::new());
            }
            if let Some(last) = stages.last_mut() {
                last.push(s.clone());
            }
        }
        let names: Vec<Option<String>> = stages
            .iter()
            .map(|s| match &s[0].1 {
                Command::From { name, .. } => name.clone(),
                _ => None,
            })
            .collect();
        let last = match &self.opts.target {
            Some(t) => names
                .iter()
                .position(|n| n.as_deref() == Some(t.to_ascii_lowercase().as_str()))
                .ok_or_else(|| other(format!("target stage \"{t}\" could not be found")))?,
            None => stages.len() - 1,
        };
        stages.truncate(last + 1);
        self.total = first_from + stages.iter().map(Vec::len).sum::<usize>();
        // BuildKit's automatic platform args: global, so usable in FROM and
        // by `ARG NAME` inside a stage; an ARG of the same name overrides.
        let platform = format!("linux/{}", host_arch());
        for (k, v) in [
            ("TARGETPLATFORM", platform.as_str()),
            ("TARGETOS", "linux"),
            ("TARGETARCH", host_arch()),
            ("TARGETVARIANT", ""),
            ("BUILDPLATFORM", platform.as_str()),
            ("BUILDOS", "linux"),
            ("BUILDARCH", host_arch()),
            ("BUILDVARIANT", ""),
        ] {
            self.meta_args.push((k.to_owned(), Some(v.to_owned())));
        }
        for (ins, c) in &steps[..first_from] {
            self.step_header(ins);
            if let Command::Arg(list) = c {
                for (k, def) in list {
                    let vars: Vars = self
                        .meta_args
                        .iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.clone()?)))
                        .collect();
                    let v = match self.build_args.get(k) {
                        Some(v) => Some(v.clone()),
                        None => def
                            .as_deref()
                            .map(|d| shell::process_word(d, &vars, self.escape))
                            .transpose()
                            .map_err(|e| self.line_err(ins.line, e))?,
                    };
                    self.used_args.insert(k.clone());
                    self.meta_args.retain(|(n, _)| n != k);
                    self.meta_args.push((k.clone(), v));
                }
            }
        }
        let mut result = None;
        for stage in stages {
            let st = self.run_stage(stage)?;
            result = st.image.clone();
            self.stages
                .push((st.name.clone(), st.image.clone(), st.config.clone()));
        }
        let (name, image, config) = self
            .stages
            .last()
            .cloned()
            .ok_or_else(|| other("no stage was built"))?;
        let mut id = result;
        if !self.opts.labels.is_empty() {
            let mut st = Stage {
                name,
                image: image.clone(),
                config,
                args: Vec::new(),
                cmd_set: true,
            };
            let labels = self.opts.labels.clone();
            let text = labels
                .iter()
                .map(|(k, v)| format!("{k}={v:?}"))
                .collect::<Vec<_>>()
                .join(" ");
            self.meta_step(&mut st, &format!("LABEL {text}"), |st| {
                for (k, v) in &labels {
                    if !st.cfg()["Labels"].is_object() {
                        st.cfg()["Labels"] = json!({});
                    }
                    st.cfg()["Labels"][k] = json!(v);
                }
                Ok(())
            })?;
            id = st.image.clone();
        }
        let id = match id {
            Some(id) => id,
            // FROM scratch and nothing else: an empty image.
            None => {
                let mut st = Stage {
                    name: None,
                    image: None,
                    config: scratch_config(),
                    args: Vec::new(),
                    cmd_set: false,
                };
                self.ensure_image(&mut st)?
            }
        };
        let unused: Vec<&String> = self
            .build_args
            .keys()
            .filter(|k| !self.used_args.contains(*k) && !PREDEFINED_ARGS.contains(&k.as_str()))
            .collect();
        if !unused.is_empty() {
            let list: Vec<&str> = unused.iter().map(|s| s.as_str()).collect();
            self.say(format!(
                "[Warning] One or more build-args [{}] were not consumed",
                list.join(" ")
            ));
        }
        if let Some(sink) = &self.opts.sink {
            (sink.each)(BuildEvent::Built(&id));
        }
        self.say(format!("Successfully built {}", id.short()));
        for t in &self.opts.tags {
            self.engine.tag(&id.to_string(), t)?;
            let shown = berth_image::Reference::parse(t)
                .map(|r| r.familiar())
                .unwrap_or_else(|_| t.clone());
            self.say(format!("Successfully tagged {shown}"));
        }
        Ok(id)
    }

    /// Stops the build if a signal came in.
    fn check_interrupt(&mut self) -> Result<()> {
        if let Some(sig) = self.interrupts.and_then(Interrupts::take) {
            self.interrupted = Some(sig);
        }
        if let Some(sink) = &self.opts.sink {
            if sink.cancel.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(other("the build was cancelled: its client went away"));
            }
        }
        match self.interrupted {
            Some(sig) => Err(BuildError::Interrupted(sig)),
            None => Ok(()),
        }
    }

    fn step_header(&mut self, ins: &Instruction) {
        self.step += 1;
        self.say(format!(
            "Step {}/{} : {}",
            self.step, self.total, ins.original
        ));
    }

    fn run_stage(&mut self, stage: Vec<(Instruction, Command)>) -> Result<Stage> {
        let mut it = stage.into_iter();
        let Some((
            ins,
            Command::From {
                image,
                name,
                platform,
            },
        )) = it.next()
        else {
            return Err(other("a stage must start with FROM"));
        };
        self.step_header(&ins);
        let meta: Vars = self
            .meta_args
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.clone()?)))
            .collect();
        let image = shell::process_word(&image, &meta, self.escape)
            .map_err(|e| self.line_err(ins.line, e))?;
        if image.is_empty() {
            return Err(self.line_err(ins.line, "base name (FROM) should not be blank"));
        }
        if let Some(p) = platform {
            let p = shell::process_word(&p, &meta, self.escape)
                .map_err(|e| self.line_err(ins.line, e))?;
            check_platform(&p)?;
        }
        let mut st = Stage {
            name,
            image: None,
            config: scratch_config(),
            args: Vec::new(),
            cmd_set: false,
        };
        let earlier = self
            .stages
            .iter()
            .rev()
            .find(|(n, _, _)| n.as_deref() == Some(image.to_ascii_lowercase().as_str()))
            .cloned();
        if let Some((_, img, cfg)) = earlier {
            st.image = img;
            st.config = cfg;
        } else if image != "scratch" {
            let (id, cfg) = self.base_image(&image)?;
            st.image = Some(id);
            st.config = serde_json::from_slice(&cfg)
                .map_err(|e| other(format!("the config of {image}: {e}")))?;
        }
        // Docker's builder gives a stage the default PATH when its base has
        // none (written into every image the stage commits).
        if !st.env().iter().any(|e| e.starts_with("PATH=")) {
            let mut env = st.env();
            env.push(berth_engine::spec::DEFAULT_PATH_ENV.to_owned());
            st.cfg()["Env"] = json!(env);
        }
        match &st.image {
            Some(id) => self.say(format!(" ---> {}", id.short())),
            None => self.say(" ---> "),
        }
        // ONBUILD triggers of the base run first; the new image has none.
        let triggers: Vec<String> = st.config["config"]["OnBuild"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if !triggers.is_empty() {
            st.cfg()["OnBuild"] = Value::Null;
            let n = triggers.len();
            self.say(format!(
                "# Executing {n} build trigger{}",
                if n == 1 { "" } else { "s" }
            ));
            for t in triggers {
                let df = parser::parse(&t).map_err(|e| {
                    self.line_err(ins.line, format!("ONBUILD trigger {t:?}: {}", e.msg))
                })?;
                for tins in df.instructions {
                    let c = tins.command(df.escape).map_err(|e| {
                        self.line_err(ins.line, format!("ONBUILD trigger {t:?}: {}", e.msg))
                    })?;
                    self.exec(
                        &mut st,
                        &Instruction {
                            line: ins.line,
                            ..tins
                        },
                        c,
                    )?;
                }
            }
        }
        for (ins, c) in it {
            self.step_header(&ins);
            self.exec(&mut st, &ins, c)?;
        }
        Ok(st)
    }

    /// The image a FROM (or COPY --from) names: pulled when it is not here,
    /// and with `--pull` even when it is (Docker's builder does both).
    fn base_image(&self, name: &str) -> Result<(Digest, Vec<u8>)> {
        let local = self.engine.image_config(name);
        if let (Ok(found), false) = (&local, self.opts.pull) {
            return Ok(found.clone());
        }
        let flags = berth_engine::RegistryFlags {
            platform: self.opts.platform.clone(),
            tls_verify: None,
            credentials: None,
        };
        let quiet = self.opts.quiet;
        let out = self.opts.sink.as_ref();
        let sink = move |p: berth_engine::Progress<'_>| {
            if let (false, berth_engine::Progress::Line(l)) = (quiet, p) {
                // The CLI's note, not the builder's (Docker's builder shows
                // the daemon's pull progress only).
                if !l.starts_with("Using default tag") {
                    emit(out, &format!("{l}\n"));
                }
            }
        };
        match self.engine.pull(name, &flags, &sink) {
            Ok(_) => self
                .engine
                .image_config(name)
                .map_err(|e| other(e.to_string())),
            // Here, but --pull asked for the registry's version: Docker's
            // builder fails too when it cannot ask.
            Err(e) if local.is_ok() => {
                let registry = berth_image::Reference::parse(name)
                    .map(|r| r.domain().to_owned())
                    .unwrap_or_else(|_| name.to_owned());
                let cause = e.to_string();
                let cause = cause.trim_start_matches("Error: ");
                let cause = cause.rsplit(": ").next().unwrap_or(cause);
                Err(other(format!(
                    "--pull: could not check registry {registry} for a newer {name} ({cause}); {name} is here: build without --pull to use it"
                )))
            }
            Err(e) => Err(other(format!(
                "Unable to find image '{name}' locally: {}",
                e.to_string().trim_start_matches("Error: ")
            ))),
        }
    }

    fn expand(&self, st: &Stage, ins: &Instruction, w: &str) -> Result<String> {
        shell::process_word(w, &st.vars(), self.escape).map_err(|e| self.line_err(ins.line, e))
    }

    fn clamp(&self) -> Option<u64> {
        self.opts.source_date_epoch.map(|e| e.max(0) as u64)
    }

    fn created(&self) -> String {
        match self.opts.source_date_epoch {
            Some(e) => humantime::format_rfc3339_seconds(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(e.max(0) as u64),
            )
            .to_string(),
            None => humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string(),
        }
    }

    /// Looks the step up; on a hit the stage moves to the cached image.
    fn cached(&mut self, st: &mut Stage, key: &Digest) -> Result<bool> {
        if self.opts.no_cache {
            return Ok(false);
        }
        let Some(id) = self.cache.get(key).map_err(|e| other(e.to_string()))? else {
            return Ok(false);
        };
        match self.engine.image_config(&id.to_string()) {
            Ok((id, cfg)) => {
                st.config = serde_json::from_slice(&cfg).map_err(|e| other(e.to_string()))?;
                st.image = Some(id.clone());
                self.say(" ---> Using cache");
                self.say(format!(" ---> {}", id.short()));
                Ok(true)
            }
            Err(_) => {
                self.cache.forget(key);
                Ok(false)
            }
        }
    }

    fn key(&self, st: &Stage, parts: &[&str]) -> Digest {
        let epoch = self
            .opts
            .source_date_epoch
            .map(|e| format!("SOURCE_DATE_EPOCH={e}"))
            .unwrap_or_default();
        let mut all: Vec<&str> = parts.to_vec();
        all.push(&epoch);
        Cache::key(st.image.as_ref(), &all)
    }

    /// Registers the stage's state as an image, with `work`'s changes as
    /// a layer, and records it under `key`.
    fn commit(
        &mut self,
        st: &mut Stage,
        key: &Digest,
        work: Option<&str>,
        created_by: String,
        skip_empty: bool,
    ) -> Result<()> {
        let created = self.created();
        st.config["created"] = json!(created);
        if let Some(o) = st.config.as_object_mut() {
            o.remove("container");
            o.remove("container_config");
        }
        if st.config["architecture"].is_null() {
            st.config["architecture"] = json!(host_arch());
        }
        if st.config["os"].is_null() {
            st.config["os"] = json!("linux");
        }
        let history = json!({"created": created, "created_by": created_by});
        let c = self.engine.build_commit(
            st.image.as_ref(),
            work,
            st.config.clone(),
            history,
            self.clamp(),
            skip_empty,
        )?;
        if c.new {
            self.created.push(c.id.clone());
        }
        let (id, cfg) = self.engine.image_config(&c.id.to_string())?;
        st.config = serde_json::from_slice(&cfg).map_err(|e| other(e.to_string()))?;
        st.image = Some(id.clone());
        self.cache.put(key, &id).map_err(|e| other(e.to_string()))?;
        if let Some(note) = self.note.take() {
            self.say(note);
        }
        self.say(format!(" ---> {}", id.short()));
        Ok(())
    }

    /// A step that changes the config only.
    fn meta_step(
        &mut self,
        st: &mut Stage,
        text: &str,
        edit: impl FnOnce(&mut Stage) -> Result<()>,
    ) -> Result<()> {
        let created_by = format!("{} #(nop)  {text}", st.shell().join(" "));
        let key = self.key(st, &["META", text]);
        if self.cached(st, &key)? {
            return Ok(());
        }
        edit(st)?;
        if self.cached_in_sources(st, &key, &created_by)? {
            return Ok(());
        }
        self.commit(st, &key, None, created_by, false)
    }

    /// The stage as an image, registering its config if nothing was yet
    /// (a RUN right after `FROM scratch`).
    fn ensure_image(&mut self, st: &mut Stage) -> Result<Digest> {
        if let Some(id) = &st.image {
            return Ok(id.clone());
        }
        let key = self.key(st, &["EMPTY"]);
        self.commit(st, &key, None, String::new(), false)?;
        st.image.clone().ok_or_else(|| other("no image"))
    }

    fn exec(&mut self, st: &mut Stage, ins: &Instruction, c: Command) -> Result<()> {
        self.check_interrupt()?;
        let line = ins.line;
        match c {
            Command::From { .. } => Err(self.line_err(line, "FROM inside a stage")),
            Command::Arg(list) => {
                let vars = st.vars();
                let mut text = Vec::new();
                for (k, def) in list {
                    self.used_args.insert(k.clone());
                    let v = match self.build_args.get(&k) {
                        Some(v) => Some(v.clone()),
                        None => match def {
                            Some(d) => Some(
                                shell::process_word(&d, &vars, self.escape)
                                    .map_err(|e| self.line_err(line, e))?,
                            ),
                            None => self
                                .meta_args
                                .iter()
                                .find(|(n, _)| *n == k)
                                .and_then(|(_, v)| v.clone()),
                        },
                    };
                    text.push(match &v {
                        Some(v) => format!("{k}={v}"),
                        None => k.clone(),
                    });
                    st.args.retain(|(n, _)| *n != k);
                    st.args.push((k, v));
                }
                self.meta_step(st, &format!("ARG {}", text.join(" ")), |_| Ok(()))
            }
            Command::Env(pairs) => {
                let mut done = Vec::new();
                for (k, v) in &pairs {
                    done.push((self.expand(st, ins, k)?, self.expand(st, ins, v)?));
                }
                let text = done
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" ");
                self.meta_step(st, &format!("ENV {text}"), |st| {
                    for (k, v) in &done {
                        st.set_env(k, v);
                    }
                    Ok(())
                })
            }
            Command::Label(pairs) => {
                let mut done = Vec::new();
                for (k, v) in &pairs {
                    done.push((self.expand(st, ins, k)?, self.expand(st, ins, v)?));
                }
                let text = done
                    .iter()
                    .map(|(k, v)| format!("{k}={v:?}"))
                    .collect::<Vec<_>>()
                    .join(" ");
                self.meta_step(st, &format!("LABEL {text}"), |st| {
                    if !st.cfg()["Labels"].is_object() {
                        st.cfg()["Labels"] = json!({});
                    }
                    for (k, v) in &done {
                        st.cfg()["Labels"][k] = json!(v);
                    }
                    Ok(())
                })
            }
            Command::Maintainer(m) => {
                let m = self.expand(st, ins, &m)?;
                self.meta_step(st, &format!("MAINTAINER {m}"), |st| {
                    st.config["author"] = json!(m);
                    Ok(())
                })
            }
            Command::User(u) => {
                let u = self.expand(st, ins, &u)?;
                self.meta_step(st, &format!("USER {u}"), |st| {
                    st.cfg()["User"] = json!(u);
                    Ok(())
                })
            }
            Command::StopSignal(s) => {
                let s = self.expand(st, ins, &s)?;
                self.meta_step(st, &format!("STOPSIGNAL {s}"), |st| {
                    st.cfg()["StopSignal"] = json!(s);
                    Ok(())
                })
            }
            Command::Expose(ports) => {
                let mut keys = Vec::new();
                for p in &ports {
                    let p = self.expand(st, ins, p)?;
                    keys.extend(expose_keys(&p).map_err(|e| self.line_err(line, e))?);
                }
                self.meta_step(st, &format!("EXPOSE {}", keys.join(" ")), |st| {
                    if !st.cfg()["ExposedPorts"].is_object() {
                        st.cfg()["ExposedPorts"] = json!({});
                    }
                    for k in &keys {
                        st.cfg()["ExposedPorts"][k] = json!({});
                    }
                    Ok(())
                })
            }
            Command::Volume(vols) => {
                let mut done = Vec::new();
                for v in &vols {
                    let v = self.expand(st, ins, v)?;
                    if v.trim().is_empty() {
                        return Err(
                            self.line_err(line, "VOLUME specified can not be an empty string")
                        );
                    }
                    done.push(v);
                }
                self.meta_step(st, &format!("VOLUME {done:?}"), |st| {
                    if !st.cfg()["Volumes"].is_object() {
                        st.cfg()["Volumes"] = json!({});
                    }
                    for v in &done {
                        st.cfg()["Volumes"][v] = json!({});
                    }
                    Ok(())
                })
            }
            Command::Shell(sh) => self.meta_step(st, &format!("SHELL {sh:?}"), |st| {
                st.cfg()["Shell"] = json!(sh);
                Ok(())
            }),
            Command::Cmd(c) => {
                let argv = self.argv(st, &c);
                self.meta_step(st, &format!("CMD {argv:?}"), |st| {
                    st.cfg()["Cmd"] = json!(argv);
                    st.cmd_set = true;
                    Ok(())
                })
            }
            Command::Entrypoint(c) => {
                let argv = self.argv(st, &c);
                self.meta_step(st, &format!("ENTRYPOINT {argv:?}"), |st| {
                    st.cfg()["Entrypoint"] = json!(argv);
                    // An inherited CMD does not survive a new ENTRYPOINT.
                    if !st.cmd_set {
                        st.cfg()["Cmd"] = Value::Null;
                    }
                    Ok(())
                })
            }
            Command::Healthcheck(h) => {
                let hc = match h {
                    None => json!({"Test": ["NONE"]}),
                    Some(h) => self
                        .healthcheck(st, &h)
                        .map_err(|e| self.line_err(line, e))?,
                };
                let text = match hc["Test"][0].as_str() {
                    Some("NONE") => "HEALTHCHECK NONE".to_owned(),
                    _ => format!("HEALTHCHECK &{{{hc}}}"),
                };
                self.meta_step(st, &text, |st| {
                    st.cfg()["Healthcheck"] = hc;
                    Ok(())
                })
            }
            Command::Onbuild(t) => {
                let (kw, rest) = t.split_once(char::is_whitespace).unwrap_or((&t, ""));
                let t = format!("{} {}", kw.to_ascii_uppercase(), rest.trim());
                self.meta_step(st, &format!("ONBUILD {t}"), |st| {
                    let mut list = st.cfg()["OnBuild"].as_array().cloned().unwrap_or_default();
                    list.push(json!(t));
                    st.cfg()["OnBuild"] = json!(list);
                    Ok(())
                })
            }
            Command::Workdir(w) => {
                let w = self.expand(st, ins, &w)?;
                let path = if w.starts_with('/') {
                    w
                } else {
                    format!("{}/{w}", st.workdir())
                };
                let path = format!("/{}", clean(&path));
                self.workdir(st, &path)
            }
            Command::Run {
                cmd,
                network,
                mounts,
            } => {
                let network = match network.as_deref() {
                    None | Some("default") => self.opts.network,
                    Some(n) => n.parse::<BuildNetwork>()?,
                };
                self.run_step(st, &cmd, network, &mounts)
            }
            Command::Copy(a) => self.copy(st, ins, a, false),
            Command::Add(a) => self.copy(st, ins, a, true),
        }
    }

    /// CMD/ENTRYPOINT/RUN: the shell form wrapped in the stage's SHELL.
    fn argv(&self, st: &Stage, c: &ShellOrExec) -> Vec<String> {
        match c {
            ShellOrExec::Exec(v) => v.clone(),
            ShellOrExec::Shell(s) => {
                let mut v = st.shell();
                v.push(s.clone());
                v
            }
        }
    }

    fn healthcheck(&self, st: &Stage, h: &HealthArgs) -> std::result::Result<Value, String> {
        let test = match &h.test {
            ShellOrExec::Shell(s) => json!(["CMD-SHELL", s]),
            ShellOrExec::Exec(v) => {
                let mut t = vec!["CMD".to_owned()];
                t.extend(v.iter().cloned());
                json!(t)
            }
        };
        let vars = st.vars();
        let dur = |name: &str, v: &Option<String>| -> std::result::Result<Option<i64>, String> {
            let Some(v) = v else { return Ok(None) };
            let v = shell::process_word(v, &vars, self.escape)?;
            let ns = berth_engine::options::parse_duration(&v)?;
            if ns != 0 && ns < 1_000_000 {
                return Err(format!("Interval \"{name}\" cannot be less than 1ms"));
            }
            if ns < 0 {
                return Err(format!("Interval \"{name}\" cannot be negative"));
            }
            Ok(Some(ns))
        };
        let mut hc = json!({"Test": test});
        for (k, name, v) in [
            ("Interval", "interval", &h.interval),
            ("Timeout", "timeout", &h.timeout),
            ("StartPeriod", "start-period", &h.start_period),
            ("StartInterval", "start-interval", &h.start_interval),
        ] {
            if let Some(ns) = dur(name, v)? {
                hc[k] = json!(ns);
            }
        }
        if let Some(r) = &h.retries {
            let n: i64 = r
                .parse()
                .map_err(|_| format!("invalid retries value {r:?}: not a number"))?;
            if n < 1 {
                return Err("--retries cannot be less than 1".into());
            }
            hc["Retries"] = json!(n);
        }
        Ok(hc)
    }

    fn run_step(
        &mut self,
        st: &mut Stage,
        cmd: &ShellOrExec,
        network: BuildNetwork,
        mounts: &[parser::RunMount],
    ) -> Result<()> {
        let argv = self.argv(st, cmd);
        // Build args in scope reach RUN's environment (ENV wins) and its key.
        let env_names: std::collections::HashSet<String> = st
            .env()
            .iter()
            .filter_map(|e| e.split('=').next().map(str::to_owned))
            .collect();
        let args: Vec<String> = st
            .args
            .iter()
            .filter_map(|(k, v)| Some(format!("{k}={}", v.as_ref()?)))
            .filter(|kv| !env_names.contains(kv.split('=').next().unwrap_or("")))
            .collect();
        let shown = argv.join(" ");
        let created_by = if args.is_empty() {
            shown.clone()
        } else {
            format!("|{} {} {shown}", args.len(), args.join(" "))
        };
        let net = format!("network={network:?}");
        let argv_json = json!(argv).to_string();
        let mounts_key = self.mounts_key(st, mounts)?;
        let args_text = args.join("\n");
        let mut parts = vec!["RUN", argv_json.as_str(), args_text.as_str(), net.as_str()];
        // A step without mounts keeps the key it had before they existed.
        if !mounts.is_empty() {
            parts.push(&mounts_key);
        }
        let key = self.key(st, &parts);
        if self.cached(st, &key)? || self.cached_in_sources(st, &key, &created_by)? {
            return Ok(());
        }
        let image = self.ensure_image(st)?;
        let step_mounts = self.step_mounts(st, mounts)?;
        let mut host = self.opts.run_host.clone();
        host.mounts.extend(step_mounts.mounts.iter().cloned());
        let mut env = args.clone();
        env.extend(step_mounts.env.iter().cloned());
        // With -q the output is kept aside and shown only if the step fails.
        let capture = if self.opts.quiet {
            Some(tempfile_in(self.engine.run_dir())?)
        } else {
            let _ = std::io::stdout().flush();
            None
        };
        // Both streams go where the build's output goes (stdout, or a pipe
        // to the sink), as Docker's classic builder streams them; RUN has
        // no stdin.
        let mut relay = None;
        let output = match (&capture, &self.opts.sink) {
            (Some(f), _) => f.try_clone(),
            (None, Some(sink)) => std::io::pipe().map(|(r, w)| {
                let sink = sink.clone();
                relay = Some(std::thread::spawn(move || relay_output(r, &sink)));
                std::fs::File::from(std::os::fd::OwnedFd::from(w))
            }),
            (None, None) => {
                use std::os::fd::AsFd;
                std::io::stdout()
                    .as_fd()
                    .try_clone_to_owned()
                    .map(std::fs::File::from)
            }
        }
        .map_err(|e| other(format!("the RUN step's output: {e}")))?;
        let output = Some(output);
        let quiet = self.opts.quiet;
        let out = self.opts.sink.as_ref();
        let ran = self.engine.build_run(
            BuildRun {
                image,
                argv,
                env,
                network,
                output,
                host,
            },
            &mut |id| {
                if !quiet {
                    emit(out, &format!(" ---> Running in {}\n", id.short()));
                }
            },
        );
        // The step's output is all out once its processes are gone.
        if let Some(r) = relay {
            let _ = r.join();
        }
        // The engine unblocks the signals once the step's container ends,
        // and passes on to it those that came meanwhile: they stop the build.
        if let Some(i) = self.interrupts {
            i.reblock();
        }
        if let Some(sig) = self.engine.take_forwarded_signal() {
            self.interrupted = nix::sys::signal::Signal::try_from(sig).ok();
        }
        drop(step_mounts);
        let (cid, code) = ran?;
        let res = if let Err(e) = self.check_interrupt() {
            Err(e)
        } else if code != 0 {
            if let Some(mut f) = capture {
                let mut text = String::new();
                let _ = std::io::Seek::rewind(&mut f);
                let _ = f.read_to_string(&mut text);
                match &self.opts.sink {
                    Some(sink) => (sink.each)(BuildEvent::Output(&text)),
                    None => eprint!("{text}"),
                }
            }
            Err(BuildError::RunFailed { cmd: shown, code })
        } else {
            self.note = Some(format!(
                " ---> Removed intermediate container {}",
                cid.short()
            ));
            self.commit(st, &key, Some(cid.as_str()), created_by, false)
        };
        self.note = None;
        if let Err(e) = self.engine.build_remove_container(&cid) {
            eprintln!("warning: remove build container {}: {e}", cid.short());
        }
        res
    }
}

/// Output text to the sink, or stdout (flushed: RUN steps write there too).
fn emit(sink: Option<&BuildSink>, s: &str) {
    match sink {
        Some(sink) => (sink.each)(BuildEvent::Output(s)),
        None => {
            let mut o = std::io::stdout().lock();
            let _ = o.write_all(s.as_bytes());
            let _ = o.flush();
        }
    }
}

/// A RUN step's output from its pipe to the sink, chunk by chunk (UTF-8
/// split across reads is kept for the next chunk).
fn relay_output(mut r: std::io::PipeReader, sink: &BuildSink) {
    let mut buf = vec![0u8; 32 << 10];
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        pending.extend_from_slice(&buf[..n]);
        let valid = match std::str::from_utf8(&pending) {
            Ok(_) => pending.len(),
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(_) => pending.len(),
        };
        if valid > 0 {
            let text = String::from_utf8_lossy(&pending[..valid]).into_owned();
            (sink.each)(BuildEvent::Output(&text));
            pending.drain(..valid);
        }
    }
    if !pending.is_empty() {
        (sink.each)(BuildEvent::Output(&String::from_utf8_lossy(&pending)));
    }
}

/// The build arguments Docker accepts without an ARG.
const PREDEFINED_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
    "SOURCE_DATE_EPOCH",
];

fn scratch_config() -> Value {
    json!({
        "architecture": host_arch(),
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": [],
    })
}

/// `80`, `80/udp`, `8000-8002/tcp` → `80/tcp` … keys of ExposedPorts.
fn expose_keys(p: &str) -> std::result::Result<Vec<String>, String> {
    let (ports, proto) = match p.split_once('/') {
        Some((a, b)) => (a, b.to_ascii_lowercase()),
        None => (p, "tcp".to_owned()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid proto: {proto}"));
    }
    let bad = || format!("invalid containerPort: {ports}");
    let (lo, hi) = match ports.split_once('-') {
        Some((a, b)) => (
            a.parse::<u16>().map_err(|_| bad())?,
            b.parse::<u16>().map_err(|_| bad())?,
        ),
        None => {
            let n = ports.parse::<u16>().map_err(|_| bad())?;
            (n, n)
        }
    };
    if hi < lo {
        return Err(bad());
    }
    Ok((lo..=hi).map(|n| format!("{n}/{proto}")).collect())
}

fn tempfile_in(dir: &Path) -> Result<std::fs::File> {
    std::fs::create_dir_all(dir).map_err(|e| other(format!("{}: {e}", dir.display())))?;
    let name = dir.join(format!(".build-output-{}", std::process::id()));
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&name)
        .map_err(|e| other(format!("{}: {e}", name.display())))?;
    let _ = std::fs::remove_file(&name);
    Ok(f)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn expose() {
        assert_eq!(expose_keys("80").unwrap(), vec!["80/tcp"]);
        assert_eq!(expose_keys("53/UDP").unwrap(), vec!["53/udp"]);
        assert_eq!(
            expose_keys("8000-8002").unwrap(),
            vec!["8000/tcp", "8001/tcp", "8002/tcp"]
        );
        assert!(expose_keys("x").is_err());
        assert!(expose_keys("80/icmp").is_err());
        assert!(expose_keys("9-8").is_err());
    }

    #[test]
    fn platforms() {
        assert!(check_platform(&format!("linux/{}", host_arch())).is_ok());
        assert!(check_platform("linux").is_ok());
        assert!(check_platform("windows/amd64").is_err());
        assert!(check_platform("linux/mips64").is_err());
    }
}
