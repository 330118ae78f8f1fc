//! BuildKit's `RUN --mount=type=bind|cache|tmpfs|secret|ssh` for one RUN
//! step: each becomes a mount of the step's container (a bind mount or a
//! tmpfs), so nothing under it reaches the step's layer; the mount points
//! the runtime makes are removed by the engine before the commit.

use super::{other, Builder, Result, Stage};
use crate::context;
use crate::parser::{MountKind, RunMount};
use berth_digest::Digest;
use berth_engine::options::MountPoint;
use berth_engine::Workspace;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Where a `--secret` comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    File(PathBuf),
    /// An environment variable of berth's (its value read when used).
    Env(String),
}

/// One `build --secret id=ID,src=PATH` (or `env=VAR`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildSecret {
    pub id: String,
    pub source: SecretSource,
}

/// What a RUN step's mounts need while it runs (dropped after it).
#[derive(Default)]
pub(super) struct StepMounts<'e> {
    pub mounts: Vec<MountPoint>,
    pub env: Vec<String>,
    /// Work areas over stages and images bound from (`from=`).
    _workspaces: Vec<Workspace<'e>>,
    /// Secret files (private copies; removed when dropped).
    _secrets: Vec<berth_engine::SecretFile>,
}

fn bind(source: PathBuf, target: &str, read_only: bool) -> MountPoint {
    MountPoint {
        typ: "bind".into(),
        source: source.to_string_lossy().into_owned(),
        destination: target.to_owned(),
        read_only,
        options: Vec::new(),
        name: None,
        create_source: false,
        no_copy: false,
    }
}

/// The target of a mount: absolute, relative ones under the workdir.
fn target_path(st: &Stage, t: &str) -> String {
    let t = if t.starts_with('/') {
        t.to_owned()
    } else {
        format!("{}/{t}", st.workdir())
    };
    format!("/{}", crate::ignore::clean(&t))
}

impl<'e> Builder<'e> {
    /// A key part for the step cache: what the mounts are (never a
    /// secret's content) and what binds show: the content of the context's
    /// files, or the stage's or image's ID.
    pub(super) fn mounts_key(&self, st: &Stage, mounts: &[RunMount]) -> Result<String> {
        let vars = st.vars();
        let mut parts = Vec::new();
        for m in mounts {
            parts.push(format!("{m:?}"));
            let MountKind::Bind { from, .. } = &m.kind else {
                continue;
            };
            let source = crate::shell::process_word(&m.source, &vars, self.escape)
                .map_err(|e| other(e.to_string()))?;
            match from {
                Some(f) => {
                    let f = crate::shell::process_word(f, &vars, self.escape)
                        .map_err(|e| other(e.to_string()))?;
                    let img = self.stage_or_image(&f)?;
                    parts.push(format!("from={img:?}"));
                }
                None => {
                    let tree = context::Tree::open(&self.opts.context, Some(&self.ignore))
                        .map_err(|e| other(format!("the build context: {e}")))?;
                    let rel = crate::ignore::clean(&source);
                    let mut entries = Vec::new();
                    tree.entries(&rel, Path::new(""), &mut entries)
                        .map_err(|e| {
                            other(format!(
                                "RUN --mount=type=bind: source {:?} in the build context: {e}",
                                if source.is_empty() { "." } else { &source }
                            ))
                        })?;
                    let cache = &self.cache;
                    let d = context::digest_entries(&entries, &mut |p, m, f| {
                        cache.file_digest(p, m, f)
                    })
                    .map_err(|e| other(e.to_string()))?;
                    parts.push(format!("context={d}"));
                }
            }
        }
        Ok(parts.join("\n"))
    }

    pub(super) fn step_mounts(
        &mut self,
        st: &Stage,
        mounts: &[RunMount],
    ) -> Result<StepMounts<'e>> {
        let mut out = StepMounts::default();
        let mut ssh_n = 0;
        let vars = st.vars();
        let expand = |w: &str| {
            crate::shell::process_word(w, &vars, self.escape).map_err(|e| other(e.to_string()))
        };
        for m in mounts {
            let target = target_path(st, &expand(&m.target)?);
            if target == "/" && !m.target.is_empty() {
                // BuildKit's words.
                return Err(other("invalid mount target \"/\""));
            }
            let source = expand(&m.source)?;
            match &m.kind {
                MountKind::Bind { from, rw } => {
                    let shown = if source.is_empty() { "." } else { &source };
                    let (ws, rel) = match from {
                        // The context's files (what .dockerignore leaves)
                        // copied into a work area: read through descriptors,
                        // and `rw` writes go nowhere.
                        None => {
                            let rel = crate::ignore::clean(&source);
                            let tree = context::Tree::open(&self.opts.context, Some(&self.ignore))
                                .map_err(|e| other(format!("the build context: {e}")))?;
                            let mut entries = Vec::new();
                            let found = (rel.is_empty() || !self.ignore.excluded(&rel))
                                && tree.entries(&rel, Path::new("ctx"), &mut entries).is_ok();
                            if !found {
                                return Err(other(format!(
                                    "RUN --mount=type=bind: source {shown:?} not found in the build context or excluded by .dockerignore"
                                )));
                            }
                            let ws = self.engine.build_workspace(None)?;
                            self.write_entries(&ws, &entries, context::Meta::default())?;
                            (ws, PathBuf::from("ctx"))
                        }
                        Some(f) => {
                            let f = expand(f)?;
                            let img = self.stage_or_image(&f)?;
                            let ws = self.engine.build_workspace(img.as_ref())?;
                            // Resolved inside its root: a symlink never leads out.
                            let rel =
                                context::resolve_in_root(ws.rootfs(), Path::new(&source), true)
                                    .map_err(|e| {
                                        other(format!("RUN --mount source {shown:?}: {e}"))
                                    })?;
                            if std::fs::symlink_metadata(ws.rootfs().join(&rel)).is_err() {
                                return Err(other(format!(
                                    "RUN --mount=type=bind: source {shown:?} not found in {f}"
                                )));
                            }
                            (ws, rel)
                        }
                    };
                    out.mounts.push(bind(ws.rootfs().join(rel), &target, !rw));
                    out._workspaces.push(ws);
                }
                MountKind::Cache { id, ro } => {
                    let dir = self.engine.build_cache_dir();
                    let path = dir.join(Digest::of(id.as_bytes()).hex());
                    let fail = |e: std::io::Error| other(format!("cache mount {id:?}: {e}"));
                    std::fs::create_dir_all(&dir)
                        .and_then(|()| {
                            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
                        })
                        .map_err(fail)?;
                    // Made on first use with the mount's owner and mode
                    // (BuildKit's: root, 0755 by default).
                    match std::fs::create_dir(&path) {
                        Ok(()) => {
                            std::os::unix::fs::chown(
                                &path,
                                Some(m.uid.unwrap_or(0)),
                                Some(m.gid.unwrap_or(0)),
                            )
                            .and_then(|()| {
                                std::fs::set_permissions(
                                    &path,
                                    std::fs::Permissions::from_mode(m.mode.unwrap_or(0o755)),
                                )
                            })
                            .map_err(fail)?;
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                        Err(e) => return Err(fail(e)),
                    }
                    out.mounts.push(bind(path, &target, *ro));
                }
                MountKind::Tmpfs => {
                    let mut options = Vec::new();
                    if let Some(sz) = &m.size {
                        let n = berth_engine::options::parse_bytes(&expand(sz)?)
                            .map_err(|e| other(format!("RUN --mount=type=tmpfs size: {e}")))?;
                        options.push(format!("size={n}"));
                    }
                    out.mounts.push(MountPoint {
                        typ: "tmpfs".into(),
                        source: String::new(),
                        destination: target,
                        read_only: false,
                        options,
                        name: None,
                        create_source: false,
                        no_copy: false,
                    })
                }
                MountKind::Secret { id, required } => {
                    let Some(secret) = self.opts.secrets.iter().rev().find(|s| s.id == *id) else {
                        if *required {
                            return Err(other(format!(
                                "secret {id} not found: give it with --secret id={id},src=FILE"
                            )));
                        }
                        continue;
                    };
                    let data = match &secret.source {
                        SecretSource::File(p) => std::fs::read(p)
                            .map_err(|e| other(format!("secret {id}: {}: {e}", p.display())))?,
                        SecretSource::Env(v) => std::env::var_os(v)
                            .map(|v| v.into_encoded_bytes())
                            .ok_or_else(|| {
                                other(format!("secret {id}: environment variable {v} is not set"))
                            })?,
                    };
                    // A private copy, mode and owner as asked (0400 root).
                    let file = self.engine.build_secret_file(
                        &data,
                        m.uid.unwrap_or(0),
                        m.gid.unwrap_or(0),
                        m.mode.unwrap_or(0o400),
                    )?;
                    out.mounts.push(bind(file.path().to_owned(), &target, true));
                    out._secrets.push(file);
                }
                MountKind::Ssh { id, required } => {
                    let Some((_, sock)) = self.opts.ssh.iter().rev().find(|(i, _)| i == id) else {
                        if *required {
                            return Err(other(format!(
                                "no SSH agent {id:?} given: use --ssh {id}[=SOCKET]"
                            )));
                        }
                        continue;
                    };
                    let target = if m.target.is_empty() {
                        ssh_n += 1;
                        format!("/run/buildkit/ssh_agent.{}", ssh_n - 1)
                    } else {
                        target
                    };
                    out.env.push(format!("SSH_AUTH_SOCK={target}"));
                    out.mounts.push(bind(sock.clone(), &target, true));
                }
            }
        }
        Ok(out)
    }

    /// `from=` / `COPY --from`: an earlier stage (by name or index; its
    /// image, None for an empty stage) or else an image.
    pub(super) fn stage_or_image(&self, f: &str) -> Result<Option<Digest>> {
        let lower = f.to_ascii_lowercase();
        let by_name = self
            .stages
            .iter()
            .rev()
            .find(|(n, _, _)| n.as_deref() == Some(lower.as_str()))
            .map(|(_, i, _)| i.clone());
        let by_index = f
            .parse::<usize>()
            .ok()
            .and_then(|i| self.stages.get(i).map(|(_, img, _)| img.clone()));
        match by_name.or(by_index) {
            Some(img) => Ok(img),
            None => Ok(Some(self.base_image(f)?.0)),
        }
    }
}
