//! `pull`, `push`, `login`, `logout`: between a registry (`berth_image::registry`), the
//! blob store, the layer store and the image database.
//!
//! Pull streams every missing layer from the registry through the blob store (kept as
//! received, digest checked on the fly) and a decompressor straight into the layer
//! store, one thread per layer (up to [`PARALLEL`]); the layers are then committed bottom
//! first and the image registered in one transaction, as `load` does.

use crate::daemon_config::DaemonConfig;
use crate::error::{EngineError, Object, Result};
use crate::Engine;
use berth_digest::Digest;
use berth_image::archive::{self, Compression};
use berth_image::db::{chain_ids, config_diff_ids, parse_config};
pub use berth_image::registry::{AuthConfig, Credentials};
use berth_image::registry::{
    Client, Descriptor, DockerConfig, Download, Manifest, MountResult, Platform, RegistryError,
    RegistryOptions,
};
use berth_image::BlobStore;
use berth_image::{NewImage, NewLayer, Reference};
use berth_storage::{LayerStore, StagedLayer};
use std::collections::HashSet;
use std::io::BufReader;
use std::sync::Mutex;

/// Layers transferred at once.
pub const PARALLEL: usize = 6;
/// Configs larger than this are refused.
const MAX_CONFIG: u64 = 16 << 20;

impl From<RegistryError> for EngineError {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::ManifestUnknown { .. } => {
                EngineError::not_found(Object::Image, e.to_string())
            }
            // A repository or blob the registry does not have.
            RegistryError::Status { status: 404, .. } => {
                EngineError::not_found(Object::Image, e.to_string())
            }
            RegistryError::Unauthorized { .. } => EngineError::Unauthorized(e.to_string()),
            RegistryError::Invalid(_) => EngineError::Invalid(e.to_string()),
            e => EngineError::Other(e.to_string()),
        }
    }
}

/// What pull and push report as they go.
#[derive(Debug, Clone, Copy)]
pub enum Progress<'a> {
    /// A whole line (`latest: Pulling from library/busybox`).
    Line(&'a str),
    /// A layer's state (`Pulling fs layer`, `Downloading`, `Pull complete`, …) and, while
    /// it transfers, bytes done of total.
    Layer {
        id: &'a str,
        status: &'a str,
        current: u64,
        total: u64,
    },
}

pub type ProgressSink<'a> = &'a (dyn Fn(Progress<'_>) + Sync);

/// The flags pull and push share.
#[derive(Debug, Clone, Default)]
pub struct RegistryFlags {
    /// `--platform os/arch[/variant]`.
    pub platform: Option<String>,
    /// `--tls-verify=false`.
    pub tls_verify: Option<bool>,
    /// Credentials for this transfer (the API's X-Registry-Auth); None:
    /// those `login` stored.
    pub credentials: Option<Credentials>,
}

#[derive(Debug, Clone)]
pub struct PullResult {
    /// The full reference (`docker.io/library/busybox:latest`).
    pub reference: String,
    /// As Docker shows it (`busybox:latest`).
    pub familiar: String,
    /// The digest of the manifest (or index) the reference named.
    pub digest: Digest,
    pub id: Digest,
    /// `false`: the image was here already.
    pub downloaded: bool,
}

#[derive(Debug, Clone)]
pub struct PushResult {
    /// The tag (or digest) pushed.
    pub tag: String,
    pub digest: Digest,
    pub size: usize,
}

fn options(f: &RegistryFlags) -> Result<RegistryOptions> {
    let mut o = RegistryOptions::from_env();
    o.insecure.extend(DaemonConfig::load()?.insecure_registries);
    if f.tls_verify == Some(false) {
        o.tls_verify = false;
    }
    Ok(o)
}

fn parse(name: &str, progress: ProgressSink<'_>) -> Result<Reference> {
    let named = Reference::parse_named(name).map_err(|e| EngineError::Invalid(e.to_string()))?;
    if named.tag().is_none() && named.digest().is_none() {
        progress(Progress::Line("Using default tag: latest"));
    }
    Reference::parse(name).map_err(|e| EngineError::Invalid(e.to_string()))
}

fn short(d: &Digest) -> &str {
    d.short()
}

/// The registry domain a `login`/`logout` argument names (`https://host/v1/` → `host`).
pub fn login_domain(server: Option<&str>) -> Result<String> {
    let Some(s) = server else {
        return Ok(berth_image::reference::DEFAULT_DOMAIN.to_owned());
    };
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let host = s.split('/').next().unwrap_or(s);
    let host = match host {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => "docker.io",
        h => h,
    };
    // The host must be what a reference could name.
    Reference::parse(&format!("{host}/x"))
        .ok()
        .filter(|r| r.domain() == host)
        .map(|_| host.to_owned())
        .ok_or_else(|| {
            EngineError::Invalid(format!(
                "invalid registry address {server:?}",
                server = server.unwrap_or("")
            ))
        })
}

/// `login`: checks the credentials with the registry, then stores them.
pub fn login(domain: &str, creds: Credentials, f: &RegistryFlags) -> Result<()> {
    check_login(domain, &creds, f)?;
    let o = options(f)?;
    DockerConfig::load(&o.docker_config)?.store(domain, &creds)?;
    Ok(())
}

/// Checks credentials with the registry without storing them (the API's
/// `/auth`: the client keeps them).
pub fn check_login(domain: &str, creds: &Credentials, f: &RegistryFlags) -> Result<()> {
    let o = options(f)?;
    let client = Client::connect(domain, "", false, &o, Some(creds.clone()))?;
    client.check_login()?;
    Ok(())
}

/// `logout`: `false` when there were no credentials.
pub fn logout(domain: &str) -> Result<bool> {
    let o = RegistryOptions::from_env();
    Ok(DockerConfig::load(&o.docker_config)?.erase(domain)?)
}

type Staged<'s> = Option<StagedLayer<'s>>;

impl Engine {
    /// Whether `name` (a reference or an ID) is an image here.
    pub fn image_present(&self, name: &str) -> bool {
        self.images.resolve_id(name).is_ok()
    }

    /// `berth pull`.
    pub fn pull(
        &self,
        name: &str,
        f: &RegistryFlags,
        progress: ProgressSink<'_>,
    ) -> Result<PullResult> {
        let r = parse(name, progress)?;
        let want = match &f.platform {
            Some(p) => Some(Platform::parse(p)?),
            None => None,
        };
        let o = options(f)?;
        let client = Client::connect(r.domain(), r.path(), false, &o, f.credentials.clone())?;
        let what = match (r.digest(), r.tag()) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.to_owned(),
            (None, None) => "latest".to_owned(),
        };
        progress(Progress::Line(&format!(
            "{what}: Pulling from {}",
            r.path()
        )));
        let shown = r.familiar();
        let (bytes, ct, top_digest) = client.get_manifest(&what, &shown)?;
        let mut manifest = Manifest::parse(&bytes, ct.as_deref())?;
        let (mut mbytes, mut mdigest) = (bytes, top_digest.clone());
        let from_index = matches!(manifest, Manifest::Index { .. });
        if let Manifest::Index { manifests, .. } = &manifest {
            let want = want.clone().unwrap_or_else(Platform::host);
            let d = berth_image::registry::manifest::select_platform(manifests, &want)?;
            let (b, ct, dg) = client.get_manifest(&d.digest.to_string(), &shown)?;
            manifest = Manifest::parse(&b, ct.as_deref())?;
            (mbytes, mdigest) = (b, dg);
        }
        let Manifest::Image { config, layers, .. } = manifest else {
            return Err(EngineError::Invalid(format!(
                "{shown}: an index inside an index is not supported"
            )));
        };
        let config_json = if self.blobs.has(&config.digest) {
            self.blobs.read(&config.digest)?
        } else {
            client.get_blob_bytes(&config.digest, MAX_CONFIG)?
        };
        let id = Digest::of(&config_json);
        if id != config.digest {
            return Err(EngineError::Other(format!(
                "config blob {}: digest mismatch: got {id}",
                config.digest
            )));
        }
        let cfg = parse_config(&config_json, &id.to_string())?;
        if let (Some(w), false) = (&want, from_index) {
            let actual = Platform {
                os: cfg.os().to_string(),
                architecture: cfg.architecture().to_string(),
                variant: cfg.variant().clone(),
            };
            if !w.matches(&actual) {
                return Err(EngineError::Invalid(format!(
                    "image with reference {shown} was found but does not match the specified platform: wanted {w}, actual: {actual}"
                )));
            }
        }
        let diff_ids = config_diff_ids(&cfg, &id)?;
        if diff_ids.len() != layers.len() {
            return Err(EngineError::Invalid(format!(
                "{shown}: the manifest lists {} layers but the config's rootfs.diff_ids {}",
                layers.len(),
                diff_ids.len()
            )));
        }
        for l in &layers {
            if Compression::of_media_type(&l.media_type).is_none() {
                return Err(EngineError::Invalid(format!(
                    "{shown}: layer {} has an unsupported media type {:?}",
                    l.digest, l.media_type
                )));
            }
        }
        let tags: Vec<Reference> = if r.digest().is_none() {
            vec![r.clone()]
        } else {
            Vec::new()
        };
        let new = NewImage {
            config_json: config_json.clone(),
            manifest: Some((mdigest.clone(), mbytes.clone())),
            layers: Vec::new(),
            parent: None,
            tags,
            // Docker records `name@digest` for a pull by digest (its RepoDigests).
            digest_refs: r
                .digest()
                .map(|d| r.with_digest(d.clone()))
                .into_iter()
                .collect(),
        };
        let result = |downloaded| PullResult {
            reference: r.to_string(),
            familiar: shown.clone(),
            digest: top_digest.clone(),
            id: id.clone(),
            downloaded,
        };
        if let Ok(img) = self.images.get(&id) {
            if img
                .layers
                .iter()
                .all(|l| self.layers.has_layer(&l.chain_id))
            {
                // Up to date: Docker prints no layer lines.
                let mut new = new;
                new.layers = img
                    .layers
                    .iter()
                    .map(|l| NewLayer {
                        diff_id: l.diff_id.clone(),
                        blob_digest: l.blob_digest.clone(),
                        media_type: l.media_type.clone(),
                        size: l.size,
                    })
                    .collect();
                self.images.add_image(&new)?;
                return Ok(result(false));
            }
        }
        let sizes = self.pull_layers(&client, &layers, &diff_ids, progress)?;
        self.blobs.put_bytes(&config_json, Some(&config.digest))?;
        self.blobs.put_bytes(&mbytes, Some(&mdigest))?;
        let mut new = new;
        new.layers = layers
            .iter()
            .zip(&diff_ids)
            .zip(&sizes)
            .map(|((l, d), s)| NewLayer {
                diff_id: d.clone(),
                blob_digest: l.digest.clone(),
                media_type: l.media_type.clone(),
                size: *s,
            })
            .collect();
        self.images.add_image(&new)?;
        Ok(result(true))
    }

    /// Downloads and unpacks the layers that are not here yet; returns every layer's
    /// unpacked size. A failure leaves no layer this pull committed that no image uses
    /// (whole, verified blobs stay in the store for the next try, as do partial
    /// downloads, which it resumes).
    fn pull_layers(
        &self,
        client: &Client,
        layers: &[Descriptor],
        diff_ids: &[Digest],
        progress: ProgressSink<'_>,
    ) -> Result<Vec<u64>> {
        let chains = chain_ids(diff_ids);
        let mut todo = Vec::new();
        for (i, l) in layers.iter().enumerate() {
            let present = self.layers.has_layer(&chains[i]);
            progress(Progress::Layer {
                id: short(&l.digest),
                status: if present {
                    "Already exists"
                } else {
                    "Pulling fs layer"
                },
                current: 0,
                total: 0,
            });
            if !present {
                todo.push(i);
            }
        }
        // Docker's word for the layers that wait for a download slot.
        for &i in todo.iter().skip(PARALLEL) {
            progress(Progress::Layer {
                id: short(&layers[i].digest),
                status: "Waiting",
                current: 0,
                total: 0,
            });
        }
        let streaming = self.layers.driver().stages_independently();
        let slots: Vec<Mutex<Option<Result<Staged<'_>>>>> =
            layers.iter().map(|_| Mutex::new(None)).collect();
        let next = std::sync::atomic::AtomicUsize::new(0);
        let (blobs, store) = (&self.blobs, &self.layers);
        std::thread::scope(|s| {
            for _ in 0..todo.len().min(PARALLEL) {
                s.spawn(|| loop {
                    let k = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some(&i) = todo.get(k) else { break };
                    let parent = if i == 0 { None } else { Some(&chains[i - 1]) };
                    let res = fetch_layer(
                        blobs,
                        store,
                        client,
                        &layers[i],
                        &chains[i],
                        parent,
                        &diff_ids[i],
                        streaming,
                        progress,
                    );
                    let failed = res.is_err();
                    *slots[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(res);
                    if failed {
                        // Stop taking new layers.
                        next.store(todo.len(), std::sync::atomic::Ordering::SeqCst);
                    }
                });
            }
        });
        let mut committed: Vec<Digest> = Vec::new();
        let mut sizes = Vec::with_capacity(layers.len());
        let mut outcome = Ok(());
        // The first error (bottom first) wins; the rest are dropped (removed).
        for (i, slot) in slots.into_iter().enumerate() {
            if outcome.is_err() {
                break;
            }
            let st = slot.into_inner().unwrap_or_else(|p| p.into_inner());
            let step = (|| -> Result<u64> {
                let staged = match st {
                    Some(res) => res?,
                    None if todo.contains(&i) => {
                        return Err(EngineError::Other("a layer was not pulled".into()))
                    }
                    None => None,
                };
                let had = self.layers.has_layer(&chains[i]);
                let size = match staged {
                    Some(staged) => staged.commit()?.size,
                    None if self.layers.has_layer(&chains[i]) => {
                        self.layers.layer_size(&chains[i])?
                    }
                    None => {
                        // vfs: downloaded into the blob store; unpack on its parent now.
                        let parent = if i == 0 { None } else { Some(&chains[i - 1]) };
                        let staged =
                            self.stage_from_store(&layers[i], &chains[i], parent, &diff_ids[i])?;
                        staged.commit()?.size
                    }
                };
                if !had {
                    committed.push(chains[i].clone());
                }
                if todo.contains(&i) {
                    // Docker extracts after the download and counts the
                    // compressed bytes read; berth's layer is unpacked by
                    // now (while it streamed, with overlay): all of them.
                    let total = layers[i].size;
                    progress(Progress::Layer {
                        id: short(&layers[i].digest),
                        status: "Extracting",
                        current: total,
                        total,
                    });
                    progress(Progress::Layer {
                        id: short(&layers[i].digest),
                        status: "Pull complete",
                        current: 0,
                        total: 0,
                    });
                }
                Ok(size)
            })();
            match step {
                Ok(size) => sizes.push(size),
                Err(e) => outcome = Err(e),
            }
        }
        if let Err(e) = outcome {
            let used: HashSet<Digest> = self
                .images
                .layers()
                .map(|ls| ls.into_iter().map(|l| l.chain_id).collect())
                .unwrap_or_default();
            for c in committed.iter().rev() {
                if !used.contains(c) {
                    let _ = self.layers.remove_layer(c);
                }
            }
            return Err(e);
        }
        Ok(sizes)
    }

    /// Unpacks a layer whose blob is in the store.
    fn stage_from_store(
        &self,
        desc: &Descriptor,
        chain: &Digest,
        parent: Option<&Digest>,
        diff_id: &Digest,
    ) -> Result<StagedLayer<'_>> {
        stage_from_store(&self.blobs, &self.layers, desc, chain, parent, diff_id)
    }
}

/// Unpacks a layer whose blob is in the store.
fn stage_from_store<'s>(
    blobs: &BlobStore,
    store: &'s LayerStore,
    desc: &Descriptor,
    chain: &Digest,
    parent: Option<&Digest>,
    diff_id: &Digest,
) -> Result<StagedLayer<'s>> {
    let f = blobs.open(&desc.digest)?;
    let stream = archive::decompress(BufReader::with_capacity(1 << 20, f))
        .map_err(|e| EngineError::Other(format!("layer {}: {e}", desc.digest)))?;
    let staged = store.stage_layer(chain, parent, stream)?;
    check_diff_id(&staged, desc, diff_id)?;
    Ok(staged)
}

/// One layer: from the blob store if its blob is there, else downloaded; unpacked
/// while it streams when `stage` (overlay), else only downloaded.
#[allow(clippy::too_many_arguments)]
fn fetch_layer<'s>(
    blobs: &BlobStore,
    store: &'s LayerStore,
    client: &Client,
    desc: &Descriptor,
    chain: &Digest,
    parent: Option<&Digest>,
    diff_id: &Digest,
    stage: bool,
    progress: ProgressSink<'_>,
) -> Result<Staged<'s>> {
    let id = short(&desc.digest);
    if blobs.has(&desc.digest) {
        return if stage {
            Ok(Some(stage_from_store(
                blobs, store, desc, chain, parent, diff_id,
            )?))
        } else {
            Ok(None)
        };
    }
    let total = desc.size;
    let last = std::sync::atomic::AtomicU64::new(0);
    let report = |n: u64| {
        // About every 512 KiB, and at the end.
        let prev = last.load(std::sync::atomic::Ordering::Relaxed);
        if n == total || n >= prev + (512 << 10) {
            last.store(n, std::sync::atomic::Ordering::Relaxed);
            progress(Progress::Layer {
                id,
                status: "Downloading",
                current: n,
                total,
            });
        }
    };
    let mut dl = Download::start(client, blobs, desc, &report)?;
    let done = |progress: ProgressSink<'_>| {
        progress(Progress::Layer {
            id,
            status: "Download complete",
            current: 0,
            total: 0,
        })
    };
    let verifying = |progress: ProgressSink<'_>| {
        progress(Progress::Layer {
            id,
            status: "Verifying Checksum",
            current: 0,
            total: 0,
        })
    };
    if !stage {
        verifying(progress);
        dl.finish()?;
        done(progress);
        return Ok(None);
    }
    let staged = {
        let stream = archive::decompress(BufReader::with_capacity(1 << 20, &mut dl))
            .map_err(|e| EngineError::Other(format!("layer {}: {e}", desc.digest)));
        stream.and_then(|s| Ok(store.stage_layer(chain, parent, s)?))
    };
    match staged {
        Ok(staged) => {
            verifying(progress);
            dl.finish()?;
            done(progress);
            check_diff_id(&staged, desc, diff_id)?;
            Ok(Some(staged))
        }
        // A wrong blob explains a failed unpack best.
        Err(e) => match dl.finish() {
            Err(de) => Err(de.into()),
            Ok(_) => Err(e),
        },
    }
}

impl Engine {
    /// `berth push`.
    pub fn push(
        &self,
        name: &str,
        f: &RegistryFlags,
        progress: ProgressSink<'_>,
    ) -> Result<PushResult> {
        let r = parse(name, progress)?;
        let img = self.images.resolve(&r.to_string()).map_err(|_| {
            EngineError::not_found(
                Object::Image,
                format!(
                    "An image does not exist locally with the tag: {}",
                    r.familiar_name()
                ),
            )
        })?;
        progress(Progress::Line(&format!(
            "The push refers to repository [{}]",
            r.name()
        )));
        // Configs of committed images live in the database only.
        self.blobs.put_bytes(&img.config_json, Some(&img.id))?;
        let (mbytes, media_type, config, layers) = self.push_manifest(&img)?;
        let o = options(f)?;
        let client = Client::connect(r.domain(), r.path(), true, &o, f.credentials.clone())?;
        // Other repositories of this registry that hold the image: mount sources.
        let sources: Vec<String> = img
            .repo_tags
            .iter()
            .filter(|t| t.domain() == r.domain() && t.path() != r.path())
            .map(|t| t.path().to_owned())
            .collect();
        for l in layers.iter().rev() {
            progress(Progress::Layer {
                id: short(&l.digest),
                status: "Preparing",
                current: 0,
                total: 0,
            });
        }
        let next = std::sync::atomic::AtomicUsize::new(0);
        let errors: Mutex<Vec<(usize, EngineError)>> = Mutex::new(Vec::new());
        let blobs: Vec<&Descriptor> = layers.iter().chain([&config]).collect();
        let store = &self.blobs;
        std::thread::scope(|s| {
            for _ in 0..blobs.len().min(PARALLEL) {
                s.spawn(|| loop {
                    let k = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some(d) = blobs.get(k) else { break };
                    let shown = k < layers.len();
                    if let Err(e) = push_blob(store, &client, d, &sources, &o, shown, progress) {
                        errors
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push((k, e));
                    }
                });
            }
        });
        let mut errors = errors.into_inner().unwrap_or_else(|p| p.into_inner());
        errors.sort_by_key(|(k, _)| *k);
        if let Some((_, e)) = errors.into_iter().next() {
            return Err(e);
        }
        let reference = match (r.tag(), r.digest()) {
            (Some(t), _) => t.to_owned(),
            (None, Some(d)) => d.to_string(),
            (None, None) => "latest".to_owned(),
        };
        let digest = client.put_manifest(&reference, &media_type, &mbytes)?;
        if let Some(want) = r.digest() {
            if *want != digest {
                return Err(EngineError::Invalid(format!(
                    "{}: the image's manifest has digest {digest}",
                    r.familiar()
                )));
            }
        }
        self.blobs.put_bytes(&mbytes, Some(&digest))?;
        self.images.record_manifest(&img.id, &digest, &mbytes)?;
        Ok(PushResult {
            tag: reference,
            digest,
            size: mbytes.len(),
        })
    }

    /// The manifest to push: the one the image came with when all its blobs are here,
    /// else a Docker schema 2 manifest (OCI when a layer has an OCI media type) made from
    /// the stored blobs.
    fn push_manifest(
        &self,
        img: &berth_image::Image,
    ) -> Result<(Vec<u8>, String, Descriptor, Vec<Descriptor>)> {
        if let Some(bytes) = &img.manifest_json {
            if let Ok(Manifest::Image {
                media_type,
                config,
                layers,
            }) = Manifest::parse(bytes, None)
            {
                if config.digest == img.id && layers.iter().all(|l| self.blobs.has(&l.digest)) {
                    return Ok((bytes.clone(), media_type, config, layers));
                }
            }
        }
        let docker = img
            .layers
            .iter()
            .all(|l| l.media_type.starts_with("application/vnd.docker."));
        let mut layers = Vec::new();
        for l in &img.layers {
            let size = self.blobs.size(&l.blob_digest)?;
            let media_type = if docker {
                l.media_type.clone()
            } else {
                let c = Compression::of_media_type(&l.media_type).unwrap_or(Compression::None);
                c.oci_media_type().to_owned()
            };
            layers.push(Descriptor {
                media_type,
                digest: l.blob_digest.clone(),
                size,
                platform: None,
                urls: Vec::new(),
            });
        }
        let (mt, config_mt) = if docker {
            (archive::MEDIA_DOCKER_MANIFEST, archive::MEDIA_DOCKER_CONFIG)
        } else {
            (archive::MEDIA_OCI_MANIFEST, archive::MEDIA_OCI_CONFIG)
        };
        let config = Descriptor {
            media_type: config_mt.to_owned(),
            digest: img.id.clone(),
            size: img.config_json.len() as u64,
            platform: None,
            urls: Vec::new(),
        };
        let desc = |d: &Descriptor| serde_json::json!({"mediaType": d.media_type, "size": d.size, "digest": d.digest.to_string()});
        let json = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": mt,
            "config": desc(&config),
            "layers": layers.iter().map(desc).collect::<Vec<_>>(),
        });
        let bytes = serde_json::to_vec_pretty(&json)
            .map_err(|e| EngineError::Other(format!("manifest: {e}")))?;
        Ok((bytes, mt.to_owned(), config, layers))
    }
}

fn push_blob(
    blobs: &BlobStore,
    client: &Client,
    d: &Descriptor,
    sources: &[String],
    o: &RegistryOptions,
    shown: bool,
    progress: ProgressSink<'_>,
) -> Result<()> {
    let id = short(&d.digest);
    let say = |status: &str, current: u64| {
        if shown {
            progress(Progress::Layer {
                id,
                status,
                current,
                total: d.size,
            });
        }
    };
    if client.has_blob(&d.digest)? {
        say("Layer already exists", 0);
        return Ok(());
    }
    let mut location = None;
    for from in sources {
        match client.mount_blob(&d.digest, from) {
            Ok(MountResult::Mounted) => {
                say(&format!("Mounted from {from}"), 0);
                return Ok(());
            }
            Ok(MountResult::Upload(loc)) => {
                location = Some((loc, None));
                break;
            }
            Err(_) => continue,
        }
    }
    let (location, min) = match location {
        Some(l) => l,
        None => client.start_upload()?,
    };
    let chunk = match (o.chunk_size, min) {
        (Some(c), Some(m)) => Some(c.max(m)),
        (c, m) => c.or(m.map(|m| m.max(8 << 20))),
    };
    let path = blobs.path(&d.digest);
    let size = blobs.size(&d.digest)?;
    client.upload_blob(location, &path, size, &d.digest, chunk, &|n| {
        say("Pushing", n)
    })?;
    say("Pushed", size);
    Ok(())
}

fn check_diff_id(staged: &StagedLayer<'_>, desc: &Descriptor, want: &Digest) -> Result<()> {
    let got = &staged.applied().diff_id;
    if got != want {
        return Err(EngineError::Invalid(format!(
            "layer {}: its content has diff_id {got}, but the image config says {want}",
            desc.digest
        )));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn login_domains() {
        assert_eq!(login_domain(None).unwrap(), "docker.io");
        for (s, d) in [
            ("https://index.docker.io/v1/", "docker.io"),
            ("registry-1.docker.io", "docker.io"),
            ("localhost:5000", "localhost:5000"),
            ("http://127.0.0.1:5000/", "127.0.0.1:5000"),
            ("quay.io", "quay.io"),
        ] {
            assert_eq!(login_domain(Some(s)).unwrap(), d, "{s}");
        }
        for bad in ["bad host", "", "-x.com", "a:b:c"] {
            assert!(login_domain(Some(bad)).is_err(), "{bad}");
        }
    }
}
