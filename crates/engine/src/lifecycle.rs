//! Containers: create (record + writable layer), run in the foreground
//! through the OCI runtime, remove, export, commit, diff.

use crate::containers::{random_name, Container, ContainerConfig, ContainerId, Intent, State};
use crate::error::{ConflictKind, Context, EngineError, Object, Result};
use crate::networking::NetMode;
use crate::runtime::RuntimeError;
use crate::spec::{self, ImageDefaults, RunOptions};
use crate::Engine;
use berth_digest::Digest;
use berth_image::db::chain_ids;
use berth_image::{Image, NewImage, NewLayer, Reference};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub name: Option<String>,
    pub image: String,
    pub run: RunOptions,
    /// `--rm`.
    pub auto_remove: bool,
    /// `-i`.
    pub interactive: bool,
}

/// Docker's `^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$`: two characters at least, and
/// a leading `/` (the name's form in Docker's records) allowed.
fn valid_name(n: &str) -> bool {
    let mut b = n.strip_prefix('/').unwrap_or(n).bytes();
    b.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && b.len() > 0
        && b.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// Docker's COMMAND of `ps`: the program, then its arguments, those with a space in
/// single quotes (`sh -c 'exit 2'`).
pub(crate) fn ps_command(args: &[String]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        if i > 0 && a.contains(' ') {
            out.push_str(&format!("'{a}'"));
        } else {
            out.push_str(a);
        }
    }
    out
}

/// Docker's rule for container names.
pub(crate) fn check_name(n: &str) -> Result<()> {
    if valid_name(n) {
        Ok(())
    } else {
        Err(EngineError::Invalid(invalid_name(n)))
    }
}

/// The rule for `rename`'s new name, with Docker's words: its daemon names
/// the refused name in its record form (`/z`) after "Error when allocating
/// new name". Returns the name without its leading `/`.
pub(crate) fn check_new_name(n: &str) -> Result<&str> {
    let bare = n.strip_prefix('/').unwrap_or(n);
    if valid_name(n) {
        Ok(bare)
    } else {
        Err(EngineError::Invalid(format!(
            "Error when allocating new name: {}",
            invalid_name(&format!("/{bare}"))
        )))
    }
}

fn invalid_name(n: &str) -> String {
    format!("Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
}

/// A runtime failure as Docker reports it: 127 when the program does not
/// exist, 126 when it cannot be executed, 125 otherwise.
pub(crate) fn runtime_failure(msg: String) -> EngineError {
    // Only the exec of the user's program maps to 127/126; any other file
    // missing (a cgroup, a mount source) is the engine's failure.
    let exec_failed = msg.contains("exec");
    if msg.contains("executable file not found")
        || (exec_failed && msg.contains("No such file or directory"))
    {
        EngineError::CommandNotFound(msg)
    } else if exec_failed
        && (msg.contains("Permission denied")
            || msg.contains("permission denied")
            || msg.contains("is a directory"))
    {
        EngineError::CannotExecute(msg)
    } else {
        EngineError::Other(msg)
    }
}

fn image_defaults(img: &Image) -> Result<ImageDefaults> {
    ImageDefaults::from_config_json(&img.config_json)
}

impl Engine {
    fn image_top(img: &Image) -> Option<Digest> {
        img.top_chain_id().cloned()
    }

    pub fn create(&self, opts: &CreateOptions) -> Result<ContainerId> {
        self.create_owned(opts, false)
    }

    /// `create`; with `build`, the container belongs to this process (a
    /// build's RUN step) and goes when it is gone.
    pub(crate) fn create_owned(&self, opts: &CreateOptions, build: bool) -> Result<ContainerId> {
        if self.rootless {
            crate::rootless::check_create(&opts.run.host, self.delegation())?;
        }
        let me = berth_lease::Owner::current().map_err(|e| EngineError::Other(e.to_string()))?;
        let mut t = berth_trace::span("engine", "image lookup (berth.db)");
        let img = self.images.resolve(&opts.image).map_err(|e| match e {
            // Docker's words with `--pull never` (a pull policy that fetches reports
            // "Unable to find image … locally" before it gets here).
            berth_image::Error::NoSuchImage(_) => EngineError::no_such(Object::Image, &opts.image),
            e => e.into(),
        })?;
        t.set_detail(|| format!("{} -> {}", opts.image, img.id));
        t.end();
        let defaults = image_defaults(&img)?;
        let args = spec::argv(&defaults, &opts.run)?;
        let run = self.prepare_run(&opts.run, &defaults)?;
        // An empty name is no name (Docker draws one).
        let given = opts.name.as_deref().filter(|n| !n.is_empty());
        if let Some(n) = given {
            check_name(n)?;
        }
        if let Some(w) = opts.run.workdir.as_deref() {
            if !w.is_empty() && !w.starts_with('/') {
                return Err(EngineError::Invalid(format!(
                    "the working directory '{w}' is invalid, it needs to be an absolute path"
                )));
            }
        }
        let id = ContainerId::random()?;
        let hostname = run
            .hostname
            .clone()
            .unwrap_or_else(|| id.short().to_owned());
        // (A generated name drawn again below after a clash would leave the
        // link variables naming the first draw: names rarely clash.)
        let name = given
            .map(|n| n.strip_prefix('/').unwrap_or(n).to_owned())
            .unwrap_or_else(random_name);
        let (link_hosts, link_env) = self.links_for_create(&run.host, &name)?;
        let config = ContainerConfig {
            args,
            // The user's variables win over the links', which win over the
            // image's (Docker's order).
            env: spec::merge_env(&spec::merge_env(&defaults.env, &link_env), &run.env),
            working_dir: run
                .workdir
                .clone()
                .or(defaults.working_dir.clone())
                .filter(|w| !w.is_empty())
                .unwrap_or_else(|| "/".into()),
            user: opts
                .run
                .user
                .clone()
                .or(defaults.user.clone())
                .unwrap_or_default(),
            hostname: hostname.clone(),
            tty: opts.run.tty,
            read_only: opts.run.read_only,
            entrypoint: opts.run.entrypoint.as_ref().map(|e| e.join(" ")),
            cmd: opts.run.cmd.clone(),
            auto_remove: opts.auto_remove,
            interactive: opts.interactive,
            restart: run.restart,
            stop_signal: run.stop_signal,
            stop_timeout: run.stop_timeout,
            log_driver: run.log_driver,
            log_max_size: run.log_max_size,
            log_max_files: run.log_max_files,
            host: run.host,
            labels: run.labels,
            healthcheck: run.healthcheck,
            exposed_ports: defaults.exposed_ports.clone(),
            volumes: config_volumes(&defaults.volumes, &opts.run.host.mounts),
        };
        let mut record = Container {
            id: id.clone(),
            name,
            image_id: img.id.to_string(),
            image_ref: opts.image.clone(),
            created: humantime::format_rfc3339_nanos(SystemTime::now()).to_string(),
            config,
            state: State::Created,
            exit_code: None,
            started_at: None,
            finished_at: None,
            error: None,
            // Inserted with the record: a `create` killed before its
            // writable layer exists leaves a record the next command drops.
            intent: Some(if build {
                Intent::Build(me)
            } else {
                Intent::Create(me)
            }),
        };
        // The name is reserved by the insert (a unique column); a generated
        // one that collides is drawn again.
        let mut tries = 0;
        let t = berth_trace::span("engine", "insert the container record (berth.db)")
            .detail(|| id.to_string());
        loop {
            match self.containers.insert(&record) {
                Ok(()) => break,
                Err(EngineError::Conflict {
                    kind: ConflictKind::NameInUse,
                    ..
                }) if given.is_none() && tries < 10 => {
                    tries += 1;
                    record.name = format!("{}{}", random_name(), tries);
                }
                Err(e) => return Err(e),
            }
        }
        t.end();
        let t = berth_trace::span("network", "reserve addresses, write hosts and resolv.conf");
        let (hosts, resolv_conf) =
            match self.network_for_create(&id, &record.config.host, &hostname, &link_hosts) {
                Ok(files) => files,
                Err(e) => {
                    let _ = self.network_release(&record);
                    let _ = self.containers.remove(&id);
                    return Err(e);
                }
            };
        t.end();
        let init = berth_storage::InitFiles {
            hostname: format!("{hostname}\n"),
            hosts,
            resolv_conf,
        };
        let t = berth_trace::span("storage", "writable layer and init layer")
            .detail(|| format!("on image layer {:?}", Self::image_top(&img)));
        let created =
            self.layers
                .create_container(id.as_str(), Self::image_top(&img).as_ref(), &init);
        t.end();
        if let Err(e) = created {
            let _ = self.network_release(&record);
            let _ = self.containers.remove(&id);
            return Err(e.into());
        }
        if let Err(e) = self.populate_volumes(&id, &record.config.host) {
            let _ = self.remove_container(&id);
            return Err(e);
        }
        // Docker's volume service announces every volume a container gets,
        // named ones that exist already included, before the container.
        for m in &record.config.host.mounts {
            if let (true, Some(n)) = (m.typ == "volume", &m.name) {
                self.object_event("volume", "create", n, &[("driver", "local".into())]);
            }
        }
        self.event("create", &record, &[]);
        Ok(id)
    }

    pub(crate) fn bundle_dir(&self, id: &ContainerId) -> PathBuf {
        self.run.join("containers").join(id.as_str())
    }

    /// Runs a created container in the foreground and returns its exit
    /// status; `rm` removes it afterwards.
    pub fn run(&self, opts: &CreateOptions, rm: bool) -> Result<i32> {
        // Its events go with its state's commits (a few pages of the
        // database's log instead of a commit each).
        let _batch = self.containers.batch_events();
        let id = self.create(opts)?;
        if let Ok(c) = self.containers.resolve(id.as_str()) {
            self.event("attach", &c, &[]);
        }
        let res = self.start_foreground(&id, rm);
        if rm {
            // Docker removes an --rm container's anonymous volumes with it
            // (not when `rm` without -v removes it meanwhile).
            let c = self
                .containers
                .resolve(id.as_str())
                .ok()
                .filter(|c| !matches!(c.intent, Some(crate::containers::Intent::Remove(_))));
            let t = berth_trace::span("engine", "remove the container (--rm)");
            let removed = self.remove_container(&id).is_ok();
            t.end();
            if removed {
                if let Some(c) = c {
                    self.remove_anonymous_volumes(&c);
                }
            }
        }
        res
    }

    /// `rm`: the container is removed when it exits, so its rootfs needs no
    /// sync (an overlay `volatile` mount).
    fn start_foreground(&self, id: &ContainerId, rm: bool) -> Result<i32> {
        let c = self.containers.resolve(id.as_str())?;
        // This process runs the container without a monitor: `starting`
        // says so to every other command (a concurrent `ps` must not take a
        // running record without a monitor for abandoned and tear it down).
        let starting = self.claim_start(id)?;
        // The overlay mount and the network namespace do not depend on each
        // other: both are made at once, on two threads (both joined before
        // the runtime is started: berth never forks while threaded).
        // `--network none`: no namespace kept on a bind mount (its `exec`s
        // join the init's); the runtime makes it in its clone and brings lo
        // up, as for a bare OCI bundle. That saves a thread, a mount and its
        // unmount, and a netlink socket.
        let cloned_netns =
            NetMode::of(&c.config.host) == NetMode::None && c.config.host.links.is_empty();
        if cloned_netns {
            self.pseudo_network_event("connect", "none", &c);
        }
        let mount_rootfs = || {
            let _t = berth_trace::span("storage", "mount the rootfs");
            if rm {
                self.layers.mount_container_volatile(id.as_str())
            } else {
                self.layers.mount_container(id.as_str())
            }
        };
        let (rootfs, net) = if cloned_netns {
            (mount_rootfs(), Ok(None))
        } else {
            std::thread::scope(|s| {
                let net = s.spawn(|| {
                    let _t = berth_trace::span("network", "network namespace and interfaces");
                    self.network_start(&c)
                });
                let rootfs = mount_rootfs();
                let net = net
                    .join()
                    .unwrap_or_else(|_| Err(EngineError::Other("network setup panicked".into())));
                (rootfs, net)
            })
        };
        let result = match (rootfs, net) {
            (Ok(rootfs), Ok(net)) => {
                let t = berth_trace::span("engine", "write the OCI bundle").detail(|| {
                    self.bundle_dir(&c.id)
                        .join("config.json")
                        .display()
                        .to_string()
                });
                let written = self.write_bundle_with_net(&c, &rootfs, net);
                t.end();
                written.and_then(|(dir, spec)| {
                    self.forwarding_loopback(&c, || self.run_bundle(&c, &dir, Some(spec), None))
                })
            }
            (Err(e), _) => Err(e.into()),
            (_, Err(e)) => Err(e),
        };
        let t = berth_trace::span("network", "tear down the network");
        if cloned_netns {
            self.pseudo_network_event("disconnect", "none", &c);
        } else {
            self.network_stop(&c);
        }
        t.end();
        self.retire_execs(id);
        if result.is_ok() {
            self.volume_events(&c, "unmount");
        }
        let t = berth_trace::span("storage", "unmount the rootfs");
        let _ = self.layers.unmount_container(id.as_str());
        t.end();
        let _ = std::fs::remove_file(&starting);
        result
    }

    /// Writes the container's OCI bundle (config.json for `rootfs`) into its
    /// run directory and returns the directory.
    pub(crate) fn write_bundle(&self, c: &Container, rootfs: &Path) -> Result<PathBuf> {
        let net = self.network_start(c)?;
        self.write_bundle_with_net(c, rootfs, net)
            .map(|(dir, _)| dir)
    }

    /// [`write_bundle`](Self::write_bundle) with the container's network
    /// namespace already made (`network_start`'s answer).
    fn write_bundle_with_net(
        &self,
        c: &Container,
        rootfs: &Path,
        net: Option<String>,
    ) -> Result<(PathBuf, oci_spec::runtime::Spec)> {
        let opts = RunOptions {
            cmd: c.config.args.clone(),
            entrypoint: Some(Vec::new()),
            env: c.config.env.clone(),
            workdir: Some(c.config.working_dir.clone()),
            user: Some(c.config.user.clone()).filter(|u| !u.is_empty()),
            hostname: Some(c.config.hostname.clone()),
            tty: c.config.tty,
            read_only: c.config.read_only,
            host: c.config.host.clone(),
            ns_paths: {
                let mut paths = self.namespace_paths(&c.config.host)?;
                if let Some(net) = net {
                    paths.insert("net".into(), net);
                }
                paths
            },
            ..Default::default()
        };
        let mut spec =
            spec::container_spec(c.id.as_str(), rootfs, &ImageDefaults::default(), &opts)?;
        if self.rootless {
            // Rootless: a cgroup in the subtree delegated to the user, else
            // none (the runtime then makes none).
            let path = self.delegation().map(|d| d.container_path(c.id.as_str()));
            if let Some(linux) = spec.linux_mut() {
                linux.set_cgroups_path(path.map(PathBuf::from));
            }
        }
        let dir = self.bundle_dir(&c.id);
        crate::create_private_dir_all(&dir)?;
        let config = serde_json::to_vec(&spec).map_err(|e| EngineError::Other(e.to_string()))?;
        // The environment is in it: 0600.
        crate::write_private(&dir.join("config.json"), &config)?;
        Ok((dir, spec))
    }

    /// Runs the bundle in `dir` (whose config.json holds `spec`, when
    /// given) in the foreground and returns the container's exit status. `output`: where its stdout and stderr go
    /// (stdin is then empty); None: berth's own stdio.
    pub(crate) fn run_bundle(
        &self,
        c: &Container,
        dir: &Path,
        spec: Option<oci_spec::runtime::Spec>,
        output: Option<std::fs::File>,
    ) -> Result<i32> {
        // In this process on the fast path (the output given to a build's RUN
        // step goes through the program).
        let runtime = self.foreground_runtime(c, output.is_none())?;
        let log = dir.join("runtime.log");
        let now = || humantime::format_rfc3339_nanos(SystemTime::now()).to_string();
        let t = berth_trace::span("engine", "record the container running (berth.db)");
        self.containers
            .set_state(&c.id, State::Running, None, &now())?;
        t.end();
        self.volume_events(c, "mount");
        self.event("start", c, &[]);
        if c.config.tty && output.is_none() {
            // Docker's client sizes the terminal once the container runs.
            if let Some((rows, cols)) = berth_runtime::terminal_size(&std::io::stdin())
                .or_else(|| berth_runtime::terminal_size(&std::io::stdout()))
            {
                self.event(
                    "resize",
                    c,
                    &[("height", rows.to_string()), ("width", cols.to_string())],
                );
            }
        }
        // The container never gets a terminal berth was given (see
        // berth_runtime::stdio): berth relays through pipes then.
        let stdio = match output {
            Some(out) => berth_runtime::Stdio::output(out.into()),
            None => container_stdio(c),
        };
        let stdio = match stdio {
            Ok(s) => s,
            Err(e) => {
                let err = EngineError::Other(e.to_string());
                self.containers
                    .set_start_failed(&c.id, c, 125, &err.to_string())?;
                return Err(err);
            }
        };
        // `start` is seen while the container runs.
        let _ = self.containers.flush_events();
        let res = match runtime.run(c.id.as_str(), dir, spec, &log, stdio) {
            Ok(code) => Ok(code),
            Err(RuntimeError::Failed(msg)) => Err(msg),
            Err(e @ RuntimeError::Spawn { .. }) => {
                let err = EngineError::from(e);
                self.containers
                    .set_start_failed(&c.id, c, 125, &err.to_string())?;
                return Err(err);
            }
        };
        self.record_exit(c, res)
    }

    /// Records how a foreground container ended: its exit code, or the
    /// runtime's failure (127 for a missing program, 126 for one that cannot
    /// be executed, 125 for anything else, as Docker).
    fn record_exit(&self, c: &Container, res: std::result::Result<i32, String>) -> Result<i32> {
        let now = humantime::format_rfc3339_nanos(SystemTime::now()).to_string();
        match res {
            Err(msg) => {
                let err = runtime_failure(msg);
                self.containers.set_start_failed(
                    &c.id,
                    c,
                    start_failure_code(&err),
                    &err.to_string(),
                )?;
                Err(err)
            }
            Ok(code) => {
                self.containers
                    .set_state(&c.id, State::Exited, Some(code), &now)?;
                self.event("die", c, &[("exitCode", code.to_string())]);
                Ok(code)
            }
        }
    }

    /// The diff of container (or work area) `name` streamed from a second
    /// thread through a pipe into the blob store, hashed on the way, with
    /// mtimes clamped to `clamp_mtime` when given; `what` names the
    /// operation in errors.
    pub(crate) fn diff_into_blobs(
        &self,
        name: &str,
        clamp_mtime: Option<u64>,
        what: &str,
    ) -> Result<berth_storage::AppliedLayer> {
        let (diff_reader, diff_writer) = std::io::pipe().context(|| "pipe".to_owned())?;
        let store = &self.layers;
        let (blob, applied) = std::thread::scope(|s| {
            let producer = s.spawn(move || -> Result<berth_storage::AppliedLayer> {
                let mut w = std::io::BufWriter::with_capacity(1 << 20, diff_writer);
                let r = store.write_diff_clamped(name, &mut w, clamp_mtime)?;
                w.flush().context(|| "write the diff".to_owned())?;
                Ok(r)
            });
            let blob = self.blobs.put(diff_reader, None);
            let applied = producer
                .join()
                .unwrap_or_else(|_| Err(EngineError::Other("diff writer panicked".into())));
            (blob, applied)
        });
        let applied = applied?;
        let (blob_digest, _) = blob?;
        if blob_digest != applied.diff_id {
            return Err(EngineError::Other(format!(
                "{what}: the diff's digest changed while storing it ({} vs {})",
                blob_digest, applied.diff_id
            )));
        }
        Ok(applied)
    }

    pub(crate) fn remove_container(&self, id: &ContainerId) -> Result<()> {
        if let Ok(c) = self.containers.resolve(id.as_str()) {
            self.event("destroy", &c, &[]);
            self.network_release(&c)?;
        }
        let t = berth_trace::span("storage", "unmount, move the layer to the trash");
        let removed = self.layers.remove_container(id.as_str());
        t.end();
        match removed {
            // A `create` killed between its record and its writable layer.
            Ok(()) | Err(berth_storage::Error::ContainerNotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        let logs = self.root.join("containers").join(id.as_str());
        if logs.exists() {
            std::fs::remove_dir_all(&logs).context(|| format!("remove {}", logs.display()))?;
        }
        let dir = self.bundle_dir(id);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).context(|| format!("remove {}", dir.display()))?;
        }
        let _t = berth_trace::span("engine", "delete the container record (berth.db)");
        self.containers.remove(id)
    }

    pub fn export(&self, name: &str, out: impl Write) -> Result<()> {
        let c = self.containers.resolve(name)?;
        Ok(self.layers.export(c.id.as_str(), out)?)
    }

    /// `export -o FILE`: no half archive is left if it fails.
    pub fn export_file(&self, name: &str, path: &Path) -> Result<()> {
        crate::write_file_atomically(path, |w| self.export(name, w))
    }

    pub fn diff(&self, name: &str) -> Result<Vec<(char, String)>> {
        let c = self.containers.resolve(name)?;
        Ok(self
            .layers
            .changes(c.id.as_str())?
            .into_iter()
            .map(|ch| (ch.kind.letter(), ch.path))
            .collect())
    }

    /// `berth commit`: the container's changes become a new top layer. The
    /// diff streams from a second thread through a pipe into the blob store
    /// (hashed on the way), then is unpacked as the new layer.
    ///
    /// `pause` (Docker's default): a running container is frozen (the
    /// runtime's pause, the cgroup freezer) while its files are read, and
    /// resumed afterwards, whether the commit worked or not; a container
    /// that was paused already stays paused.
    pub fn commit(
        &self,
        name: &str,
        reference: Option<&str>,
        message: Option<&str>,
        author: Option<&str>,
        changes: &[String],
        pause: bool,
    ) -> Result<Digest> {
        let c = self.container(name)?;
        let freeze = pause && c.state == State::Running && !self.live(&c).paused;
        if freeze {
            self.pause(c.id.as_str(), true)?;
        }
        let res = self.commit_files(&c, reference, message, author, changes);
        if let Ok(id) = &res {
            let tag = reference
                .and_then(|r| Reference::parse(r).ok())
                .map(|r| r.familiar());
            if let Some(t) = &tag {
                self.object_event("image", "tag", &id.to_string(), &[("name", t.clone())]);
            }
            self.event(
                "commit",
                &c,
                &[
                    ("comment", message.unwrap_or_default().to_owned()),
                    ("imageID", id.to_string()),
                    ("imageRef", tag.unwrap_or_default()),
                ],
            );
        }
        if freeze {
            let resumed = self.pause(c.id.as_str(), false);
            if res.is_ok() {
                resumed?;
            }
        }
        res
    }

    fn commit_files(
        &self,
        c: &Container,
        reference: Option<&str>,
        message: Option<&str>,
        author: Option<&str>,
        changes: &[String],
    ) -> Result<Digest> {
        let tag = reference
            .map(|r| Reference::parse(r).map_err(|e| EngineError::Invalid(e.to_string())))
            .transpose()?;
        let img = self.images.get(
            &c.image_id
                .parse::<Digest>()
                .map_err(|e| EngineError::Other(e.to_string()))?,
        )?;
        let parent_top = Self::image_top(&img);
        let applied = self.diff_into_blobs(c.id.as_str(), None, "commit")?;
        let mut diff_ids: Vec<Digest> = img.layers.iter().map(|l| l.diff_id.clone()).collect();
        diff_ids.push(applied.diff_id.clone());
        let chain = chain_ids(&diff_ids)
            .pop()
            .ok_or_else(|| EngineError::Other("empty chain".into()))?;
        if !self.layers.has_layer(&chain) {
            self.layers.apply_layer(
                &chain,
                parent_top.as_ref(),
                self.blobs.open(&applied.diff_id)?,
            )?;
        }
        let container_config = serde_json::json!({
            "Cmd": c.config.args,
            // Docker: null when the container has no variable (no PATH of berth's).
            "Env": (!c.config.env.is_empty()).then_some(&c.config.env),
            "WorkingDir": c.config.working_dir,
            "User": c.config.user,
            "Hostname": c.config.hostname,
        });
        let opts = berth_image::config::CommitOptions {
            author: author.map(str::to_owned),
            comment: message.map(str::to_owned),
            changes: changes.to_vec(),
            container_config: Some(container_config),
            created_by: Some(c.config.args.join(" ")),
        };
        let config = berth_image::config::commit_config(
            Some(&img.config_json),
            Some(&applied.diff_id),
            &opts,
        )?;
        let mut layers: Vec<NewLayer> = img
            .layers
            .iter()
            .map(|l| NewLayer {
                diff_id: l.diff_id.clone(),
                blob_digest: l.blob_digest.clone(),
                media_type: l.media_type.clone(),
                size: l.size,
            })
            .collect();
        layers.push(NewLayer {
            diff_id: applied.diff_id.clone(),
            blob_digest: applied.diff_id.clone(),
            media_type: "application/vnd.oci.image.layer.v1.tar".into(),
            size: applied.size,
        });
        let new = NewImage {
            config_json: config,
            manifest: None,
            layers,
            parent: Some(img.id.clone()),
            tags: tag.into_iter().collect(),
            digest_refs: Vec::new(),
        };
        Ok(self.images.add_image(&new)?)
    }

    pub(crate) fn inspect_container(&self, c: &Container) -> serde_json::Value {
        let mut c = c.clone();
        self.reconcile(&mut c);
        let live = self.live(&c);
        let status = match c.state {
            State::Created => "created",
            State::Running if live.paused => "paused",
            State::Running => "running",
            State::Exited => "exited",
        };
        let mut v = serde_json::json!({
            "Id": c.id.to_string(),
            "Created": c.created,
            "Path": c.config.args.first().cloned().unwrap_or_default(),
            "Args": c.config.args.iter().skip(1).collect::<Vec<_>>(),
            "State": {
                "Status": status,
                "Running": c.state == State::Running,
                "Paused": live.paused,
                "Restarting": false,
                "OOMKilled": live.oom_killed,
                "Dead": false,
                "Pid": live.pid,
                "ExitCode": c.exit_code.unwrap_or(0),
                "Error": c.error.clone().unwrap_or_default(),
                "StartedAt": c.started_at.clone().unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
                "FinishedAt": c.finished_at.clone().unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
            },
            "RestartCount": live.restarts,
            "LogPath": self.log_path(&c.id).display().to_string(),
            "Image": c.image_id,
            "Name": format!("/{}", c.name),
            "Driver": self.storage_driver(),
            "Config": {
                "Hostname": c.config.hostname,
                "User": c.config.user,
                "Tty": c.config.tty,
                "Env": c.config.env,
                "Cmd": c.config.cmd,
                "Image": c.image_ref,
                "WorkingDir": c.config.working_dir,
                "Entrypoint": c.config.entrypoint,
            },
            "HostConfig": {
                "ReadonlyRootfs": c.config.read_only,
                // berth gives every container a cgroup namespace of its own.
                "CgroupnsMode": "private",
                "ShmSize": c.config.host.shm_size.unwrap_or(crate::spec::DEFAULT_SHM_SIZE),
            },
            "GraphDriver": {
                "Name": self.layers.driver().name(),
                "Data": crate::images::graph_data(
                    self.layers.container_graph(c.id.as_str()).ok().flatten().as_ref(),
                ),
            },
        });
        // The files berth writes into the container's init layer at create.
        for (key, file) in [
            ("HostnamePath", "hostname"),
            ("HostsPath", "hosts"),
            ("ResolvConfPath", "resolv.conf"),
        ] {
            let path = self
                .layers
                .init_file_path(c.id.as_str(), file)
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            v[key] = path.into();
        }
        // Docker: null when neither the image nor the user set a variable.
        if c.config.env.is_empty() {
            v["Config"]["Env"] = serde_json::Value::Null;
        }
        v["Config"]["Volumes"] = if c.config.volumes.is_empty() {
            serde_json::Value::Null
        } else {
            c.config
                .volumes
                .iter()
                .map(|p| (p.clone(), serde_json::json!({})))
                .collect::<serde_json::Map<_, _>>()
                .into()
        };
        crate::volumes::inspect_into(&mut v, &c.config);
        self.network_inspect_into(&mut v, &c);
        if let Some(h) = self.health(&c) {
            v["State"]["Health"] = h;
        }
        docker_defaults(&mut v, &c);
        v
    }
}

/// Docker's `Config.Volumes` of a new container: the image's VOLUMEs and
/// the anonymous volumes of `-v /path`, each once, in that order.
fn config_volumes(image: &[String], mounts: &[crate::options::MountPoint]) -> Vec<String> {
    let mut out: Vec<String> = image.to_vec();
    for m in mounts {
        let anonymous_v = m.typ == "volume" && m.name.is_none() && m.create_source;
        if anonymous_v && !out.contains(&m.destination) {
            out.push(m.destination.clone());
        }
    }
    out
}

/// The keys of Docker's container inspect that stand for what berth does not model
/// (AppArmor, SELinux, kernel memory, I/O limits, …), with Docker's values for "unset";
/// a key already written is kept.
fn docker_defaults(v: &mut serde_json::Value, c: &Container) {
    let h = &c.config.host;
    let (masked, readonly) = if h.privileged {
        (serde_json::Value::Null, serde_json::Value::Null)
    } else {
        (
            serde_json::json!(crate::spec::MASKED_PATHS),
            serde_json::json!(crate::spec::READONLY_PATHS),
        )
    };
    let defaults = serde_json::json!({
        "AppArmorProfile": "", "ExecIDs": null, "MountLabel": "", "ProcessLabel": "",
        "Platform": "linux",
        "Config": {
            "Domainname": "", "AttachStdin": false, "AttachStdout": false,
            "AttachStderr": false, "OpenStdin": false, "StdinOnce": false, "OnBuild": null,
        },
        "HostConfig": {
            "ContainerIDFile": "", "VolumeDriver": "", "VolumesFrom": null,
            "ConsoleSize": [0, 0], "Cgroup": "", "CgroupParent": "", "Isolation": "",
            "OomScoreAdj": 0, "BlkioWeightDevice": [],
            "BlkioDeviceReadBps": null, "BlkioDeviceWriteBps": null,
            "BlkioDeviceReadIOps": null, "BlkioDeviceWriteIOps": null,
            "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0, "DeviceCgroupRules": null,
            "DeviceRequests": null, "KernelMemory": 0, "KernelMemoryTCP": 0,
            "OomKillDisable": false, "MemorySwappiness": null, "CpuCount": 0,
            "CpuPercent": 0, "IOMaximumIOps": 0, "IOMaximumBandwidth": 0,
            "MaskedPaths": masked, "ReadonlyPaths": readonly,
        },
    });
    fn merge(dst: &mut serde_json::Value, src: &serde_json::Value) {
        if let (Some(d), Some(s)) = (dst.as_object_mut(), src.as_object()) {
            for (k, x) in s {
                match d.get_mut(k) {
                    Some(y) if y.is_object() && x.is_object() => merge(y, x),
                    Some(_) => {}
                    None => {
                        d.insert(k.clone(), x.clone());
                    }
                }
            }
        }
    }
    merge(v, &defaults);
}

/// The signals `berth` passes on to a container it runs or is attached to,
/// as Docker's CLI proxies them.
pub const PROXIED_SIGNALS: [nix::sys::signal::Signal; 6] = [
    nix::sys::signal::Signal::SIGINT,
    nix::sys::signal::Signal::SIGTERM,
    nix::sys::signal::Signal::SIGHUP,
    nix::sys::signal::Signal::SIGQUIT,
    nix::sys::signal::Signal::SIGUSR1,
    nix::sys::signal::Signal::SIGUSR2,
];

/// The last signal [`wait_forwarding_signals`] passed on (0: none): a
/// build stops after a RUN step whose container ignored it.
pub(crate) static FORWARDED: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// What a foreground container's stdio is: with `-t` berth's own (the
/// runtime relays the container's pty itself, input only with `-i`);
/// otherwise stdin only with `-i`, and pipes relayed by berth where berth's
/// stdio is a terminal.
fn container_stdio(c: &Container) -> berth_runtime::Result<berth_runtime::Stdio> {
    if c.config.tty {
        return Ok(berth_runtime::Stdio::terminal(c.config.interactive));
    }
    berth_runtime::Stdio::caller(c.config.interactive)
}

/// Waits for the runtime, passing on the signals `berth` receives (as
/// Docker's CLI proxies them): a SIGTERM to `berth run` reaches the runtime,
/// which forwards it to the container, and berth still cleans up after.
/// Meanwhile `stdio`'s relays copy the container's output (and input).
pub(crate) fn wait_forwarding_signals(
    mut child: std::process::Child,
    stdio: &mut berth_runtime::Stdio,
) -> std::io::Result<std::process::ExitStatus> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use nix::sys::signal::{kill, SigSet, Signal};
    use nix::sys::signalfd::{SfdFlags, SignalFd};
    use std::os::fd::AsFd;
    let mut set = SigSet::empty();
    for s in PROXIED_SIGNALS.into_iter().chain([Signal::SIGCHLD]) {
        set.add(s);
    }
    // The child was spawned with an empty mask (std resets it); from here
    // on these signals queue for the signalfd instead of killing berth.
    let sfd = set
        .thread_block()
        .and_then(|()| SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK));
    let Ok(sfd) = sfd else {
        let _ = set.thread_unblock();
        let status = child.wait();
        stdio.finish();
        return status;
    };
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    loop {
        if let Some(status) = child.try_wait()? {
            stdio.finish();
            let _ = set.thread_unblock();
            return Ok(status);
        }
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        fds.extend(
            stdio
                .wanted()
                .into_iter()
                .map(|(fd, flags)| PollFd::new(fd, flags)),
        );
        // In a multi-threaded caller (the API server) SIGCHLD may be taken
        // by another thread before the signalfd sees it: look again now
        // and then (a single-threaded berth is woken by it at once).
        match poll(&mut fds, PollTimeout::from(200u8)) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        stdio.ready(&ready[1..]);
        while let Ok(Some(info)) = sfd.read_signal() {
            if let Ok(sig) = Signal::try_from(info.ssi_signo as i32) {
                if sig != Signal::SIGCHLD {
                    FORWARDED.store(sig as i32, std::sync::atomic::Ordering::Relaxed);
                    let _ = kill(pid, sig);
                }
            }
        }
    }
}

/// "2 hours" since `t`, in Docker's words (units.HumanDuration).
pub(crate) fn humantime_ago(t: SystemTime) -> String {
    human_duration(SystemTime::now().duration_since(t).unwrap_or_default())
}

/// Docker's units.HumanDuration: "Less than a second", "About a minute",
/// "3 hours", "2 weeks" …
pub fn human_duration(d: std::time::Duration) -> String {
    let s = d.as_secs();
    let h = s / 3600;
    match s {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        2..=59 => format!("{s} seconds"),
        60..=119 => "About a minute".into(),
        _ if s < 3600 => format!("{} minutes", s / 60),
        _ if h < 2 => "About an hour".into(),
        _ if h < 48 => format!("{h} hours"),
        _ if h < 24 * 7 * 2 => format!("{} days", h / 24),
        _ if h < 24 * 30 * 2 => format!("{} weeks", h / 24 / 7),
        _ if h < 24 * 365 * 2 => format!("{} months", h / 24 / 30),
        _ => format!("{} years", h / 24 / 365),
    }
}

/// The exit code Docker records for a start that failed: 127 for a
/// program that is missing, 126 for one that cannot be executed, 125 else.
pub(crate) fn start_failure_code(err: &EngineError) -> i32 {
    err.exit_code()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_dockers_pattern() {
        for ok in ["ab", "/ab", "a1", "A.b-c_d", "9z", "/ab2"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in [
            "", "/", "a", "/a", "//ab", "-ab", "_ab", ".ab", "a b", "ab/c", "ab!",
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
        assert_eq!(check_new_name("/cd").unwrap(), "cd");
        let e = check_new_name("z").unwrap_err().to_string();
        assert!(
            e.contains("Error when allocating new name: Invalid container name (/z)"),
            "{e}"
        );
    }
}
