//! Reading docker-archive and OCI layouts into the blob store.

use super::{decompress, Compression};
use super::{MEDIA_DOCKER_LAYER, MEDIA_DOCKER_LAYER_GZIP, MEDIA_DOCKER_MANIFEST};
use super::{
    MEDIA_DOCKER_MANIFEST_LIST, MEDIA_OCI_INDEX, MEDIA_OCI_LAYER_ZSTD, MEDIA_OCI_MANIFEST,
};
use crate::blobs::BlobStore;
use crate::db::{config_diff_ids, parse_config, NewImage, NewLayer};
use crate::reference::Reference;
use crate::{Error, Result};
use berth_digest::Digest;
use oci_spec::image::ImageConfiguration;
use serde::Deserialize;
use std::collections::{BTreeSet, HashMap};
use std::io::{self, BufReader, Read};
use std::path::{Component, Path, PathBuf};

/// Metadata files larger than this are refused (they are JSON of a few KiB).
const META_LIMIT: u64 = 64 << 20;
const META_FILES: &[&str] = &["manifest.json", "index.json", "oci-layout", "repositories"];
pub(crate) const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
pub(crate) const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveFormat {
    DockerArchive,
    OciArchive,
    OciDir,
}

/// What a load found.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub format: ArchiveFormat,
    pub images: Vec<LoadedImage>,
}

/// One image of an archive, its blobs in the blob store, verified.
#[derive(Debug, Clone)]
pub struct LoadedImage {
    pub config: ImageConfiguration,
    /// The config exactly as in the archive; its digest is the image ID.
    pub config_bytes: Vec<u8>,
    pub config_digest: Digest,
    /// The manifest, if the archive had one (OCI layouts, Docker 25+ archives).
    pub manifest: Option<(Digest, Vec<u8>)>,
    pub repo_tags: Vec<Reference>,
    pub layers: Vec<LayerBlob>,
}

impl LoadedImage {
    /// The record to register once storage has applied the layers. `sizes` are the
    /// uncompressed layer sizes storage measured; the blob sizes are used without them.
    pub fn new_image(&self, sizes: Option<&[u64]>) -> NewImage {
        NewImage {
            config_json: self.config_bytes.clone(),
            manifest: self.manifest.clone(),
            digest_refs: Vec::new(),
            layers: self
                .layers
                .iter()
                .enumerate()
                .map(|(i, l)| NewLayer {
                    diff_id: l.diff_id.clone(),
                    blob_digest: l.blob_digest.clone(),
                    media_type: l.media_type.clone(),
                    size: sizes.and_then(|s| s.get(i).copied()).unwrap_or(l.size),
                })
                .collect(),
            parent: None,
            tags: self.repo_tags.clone(),
        }
    }
}

/// A layer blob in the blob store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerBlob {
    pub blob_digest: Digest,
    /// The blob's size (compressed if it is).
    pub size: u64,
    pub media_type: String,
    pub compression: Compression,
    /// The uncompressed tar's digest, from the config's rootfs.diff_ids.
    pub diff_id: Digest,
}

impl LayerBlob {
    /// The layer as an uncompressed tar stream (decompressed by its magic bytes, so a
    /// docker-archive `layer.tar` that is really gzip works too).
    pub fn open_uncompressed(&self, blobs: &BlobStore) -> Result<Box<dyn Read + Send>> {
        let f = blobs.open(&self.blob_digest)?;
        decompress(BufReader::with_capacity(1 << 16, f))
            .map_err(|e| Error::io(&blobs.path(&self.blob_digest), "decompress layer", e))
    }
}

/// Fails with `UnexpectedEof` if the entry ends before its header's size: the tar crate
/// returns a short entry at the end of a truncated archive.
struct Exact<R> {
    inner: R,
    remaining: u64,
    /// Set when reading the archive failed (as opposed to writing the blob).
    failed: bool,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf).inspect_err(|_| self.failed = true)?;
        if n == 0 && self.remaining > 0 && !buf.is_empty() {
            self.failed = true;
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the archive ends in the middle of this entry",
            ));
        }
        self.remaining = self.remaining.saturating_sub(n as u64);
        Ok(n)
    }
}

/// Removes, unless disarmed, the blobs a load added.
struct NewBlobs<'a> {
    blobs: &'a BlobStore,
    created: Vec<Digest>,
    keep: Option<BTreeSet<Digest>>,
}

impl Drop for NewBlobs<'_> {
    fn drop(&mut self) {
        for d in &self.created {
            if !self.keep.as_ref().is_some_and(|k| k.contains(d)) {
                let _ = self.blobs.remove(d);
            }
        }
    }
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> Error {
    Error::archive(format!("corrupt or truncated archive: {what}: {e}"))
}

/// Loads an archive from a file or an OCI layout directory.
pub fn load_path(path: &Path, blobs: &BlobStore) -> Result<Loaded> {
    if path.is_dir() {
        return load_dir(path, blobs);
    }
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, "open archive", e))?;
    load_tar(f, blobs)
}

/// Loads a docker-archive or OCI archive (plain, gzip or zstd) read once, front to back
/// (it may be stdin): blobs go to the store as they stream by, then the manifests are
/// resolved and checked. On error nothing this load added is left in the store.
pub fn load_tar(reader: impl Read + Send, blobs: &BlobStore) -> Result<Loaded> {
    let stream =
        decompress(BufReader::with_capacity(1 << 16, reader)).map_err(|e| corrupt("header", e))?;
    let mut ar = tar::Archive::new(stream);
    let mut guard = NewBlobs {
        blobs,
        created: Vec::new(),
        keep: None,
    };
    let mut meta: HashMap<String, Vec<u8>> = HashMap::new();
    let mut files: HashMap<String, Digest> = HashMap::new();
    let mut links: HashMap<String, String> = HashMap::new();
    for entry in ar.entries().map_err(|e| corrupt("reading entries", e))? {
        let e = entry.map_err(|e| corrupt("reading an entry header", e))?;
        let raw = e.path().map_err(|e| corrupt("entry name", e))?.into_owned();
        let Some(name) = normalize(&raw) else {
            continue;
        };
        let kind = e.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            let target = e
                .link_name()
                .map_err(|e| corrupt(&name, e))?
                .map(|t| t.into_owned())
                .unwrap_or_default();
            let target = if kind.is_symlink() && !target.is_absolute() {
                Path::new(&name)
                    .parent()
                    .unwrap_or(Path::new(""))
                    .join(target)
            } else {
                target
            };
            if let Some(t) = normalize(&target) {
                links.insert(name, t);
            }
            continue;
        }
        if !(kind.is_file() || kind == tar::EntryType::Continuous) {
            continue;
        }
        let size = e.size();
        let mut e = Exact {
            inner: e,
            remaining: size,
            failed: false,
        };
        if META_FILES.contains(&name.as_str()) {
            let mut buf = Vec::new();
            (&mut e)
                .take(META_LIMIT + 1)
                .read_to_end(&mut buf)
                .map_err(|e| corrupt(&name, e))?;
            if buf.len() as u64 > META_LIMIT {
                return Err(Error::archive(format!(
                    "archive entry {name} is larger than {META_LIMIT} bytes"
                )));
            }
            meta.insert(name, buf);
            continue;
        }
        // Classic docker-archive per-layer v1 metadata: not needed.
        if name.ends_with("/json") || name.ends_with("/VERSION") {
            continue;
        }
        let expected = name
            .strip_prefix("blobs/sha256/")
            .and_then(|h| Digest::from_hex(h).ok());
        match blobs.put_tracked(&mut e, expected.as_ref()) {
            Ok((d, _, created)) => {
                if created {
                    guard.created.push(d.clone());
                }
                files.insert(name, d);
            }
            Err(Error::DigestMismatch { expected, got, .. }) => {
                return Err(Error::archive(format!(
                    "archive entry {name}: digest mismatch: expected {expected} got {got}"
                )))
            }
            Err(Error::Io { source, .. }) if e.failed => return Err(corrupt(&name, source)),
            Err(e) => return Err(e),
        }
    }
    let present: BTreeSet<Digest> = files.values().cloned().collect();
    let mut fetch = |d: &Digest| Ok(present.contains(d));
    let loaded = if meta.contains_key("manifest.json") {
        let lookup = |n: &str| resolve_name(n, &files, &links);
        Loaded {
            format: ArchiveFormat::DockerArchive,
            images: docker_images(&meta, &lookup, blobs, &mut fetch)?,
        }
    } else if meta.contains_key("index.json") || meta.contains_key("oci-layout") {
        Loaded {
            format: ArchiveFormat::OciArchive,
            images: oci_images(&meta, blobs, &mut fetch)?,
        }
    } else {
        return Err(Error::archive(
            "not an image archive: it has neither manifest.json (docker-archive) nor index.json (OCI layout)",
        ));
    };
    guard.keep = Some(referenced(&loaded));
    Ok(loaded)
}

/// Loads an OCI image layout directory, copying (and verifying) the blobs it references.
pub fn load_dir(dir: &Path, blobs: &BlobStore) -> Result<Loaded> {
    let mut meta = HashMap::new();
    for name in ["index.json", "oci-layout"] {
        let p = dir.join(name);
        match std::fs::read(&p) {
            Ok(b) => {
                meta.insert(name.to_owned(), b);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&p, "read", e)),
        }
    }
    if meta.is_empty() {
        return Err(Error::archive(format!(
            "{} is not an OCI image layout: it has no index.json",
            dir.display()
        )));
    }
    let mut guard = NewBlobs {
        blobs,
        created: Vec::new(),
        keep: None,
    };
    let mut fetch = |d: &Digest| -> Result<bool> {
        let p = dir.join("blobs/sha256").join(d.hex());
        let f = match std::fs::File::open(&p) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(Error::io(&p, "open", e)),
        };
        match blobs.put_tracked(f, Some(d)) {
            Ok((_, _, created)) => {
                if created {
                    guard.created.push(d.clone());
                }
                Ok(true)
            }
            Err(Error::DigestMismatch { expected, got, .. }) => Err(Error::archive(format!(
                "{}: digest mismatch: expected {expected} got {got}",
                p.display()
            ))),
            Err(e) => Err(e),
        }
    };
    let images = oci_images(&meta, blobs, &mut fetch)?;
    let loaded = Loaded {
        format: ArchiveFormat::OciDir,
        images,
    };
    guard.keep = Some(referenced(&loaded));
    Ok(loaded)
}

fn referenced(l: &Loaded) -> BTreeSet<Digest> {
    let mut s = BTreeSet::new();
    for i in &l.images {
        s.insert(i.config_digest.clone());
        if let Some((d, _)) = &i.manifest {
            s.insert(d.clone());
        }
        s.extend(i.layers.iter().map(|l| l.blob_digest.clone()));
    }
    s
}

/// `./a/../b` → `b`; entries escaping the root or naming it are ignored.
fn normalize(p: &Path) -> Option<String> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(x) => out.push(x),
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    let s = out.to_str()?.to_owned();
    (!s.is_empty()).then_some(s)
}

fn resolve_name(
    name: &str,
    files: &HashMap<String, Digest>,
    links: &HashMap<String, String>,
) -> Option<Digest> {
    let mut n = normalize(Path::new(name))?;
    for _ in 0..16 {
        if let Some(d) = files.get(&n) {
            return Some(d.clone());
        }
        n = links.get(&n)?.clone();
    }
    None
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifestEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    media_type: String,
    digest: String,
    size: u64,
    #[serde(default)]
    annotations: Option<HashMap<String, String>>,
    #[serde(default)]
    platform: Option<Platform>,
}

#[derive(Deserialize, Clone)]
struct Platform {
    architecture: String,
    os: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Index {
    manifests: Vec<Descriptor>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    #[serde(default)]
    media_type: Option<String>,
    config: Descriptor,
    layers: Vec<Descriptor>,
}

fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| Error::archive(format!("malformed {what}: {e}")))
}

fn digest_field(s: &str, what: &str) -> Result<Digest> {
    s.parse()
        .map_err(|e| Error::archive(format!("{what}: {e}")))
}

/// Reads a config blob and checks it against its layers.
fn read_config(
    blobs: &BlobStore,
    d: &Digest,
    what: &str,
) -> Result<(ImageConfiguration, Vec<u8>, Vec<Digest>)> {
    let bytes = blobs.read(d)?;
    let config = parse_config(&bytes, &format!("{d} ({what})"))
        .map_err(|e| Error::archive(e.to_string()))?;
    let diff_ids = config_diff_ids(&config, d).map_err(|e| Error::archive(e.to_string()))?;
    Ok((config, bytes, diff_ids))
}

type Fetch<'a> = dyn FnMut(&Digest) -> Result<bool> + 'a;

fn docker_images(
    meta: &HashMap<String, Vec<u8>>,
    lookup: &dyn Fn(&str) -> Option<Digest>,
    blobs: &BlobStore,
    fetch: &mut Fetch<'_>,
) -> Result<Vec<LoadedImage>> {
    let entries: Vec<DockerManifestEntry> = parse_json(
        meta.get("manifest.json").map_or(&[][..], |v| v),
        "manifest.json",
    )?;
    if entries.is_empty() {
        return Err(Error::archive("manifest.json lists no images"));
    }
    // Docker 25+ archives also carry OCI manifests: keep the one matching each image.
    let oci = if meta.contains_key("index.json") {
        oci_images(meta, blobs, fetch).unwrap_or_default()
    } else {
        Vec::new()
    };
    let mut out = Vec::new();
    for (n, ent) in entries.iter().enumerate() {
        let what = format!("manifest.json image {n}");
        let cd = lookup(&ent.config).ok_or_else(|| {
            Error::archive(format!(
                "archive is missing {} (config of {what})",
                ent.config
            ))
        })?;
        let (config, config_bytes, diff_ids) = read_config(blobs, &cd, &what)?;
        if diff_ids.len() != ent.layers.len() {
            return Err(Error::archive(format!(
                "{what}: Layers lists {} files but its config {cd} has {} diff_ids",
                ent.layers.len(),
                diff_ids.len()
            )));
        }
        let mut layers = Vec::new();
        for (i, (path, diff_id)) in ent.layers.iter().zip(diff_ids).enumerate() {
            let bd = lookup(path).ok_or_else(|| {
                Error::archive(format!("archive is missing {path} (layer {i} of {what})"))
            })?;
            let compression = sniff_blob(blobs, &bd, path)?;
            let media_type = match compression {
                Compression::None => MEDIA_DOCKER_LAYER,
                Compression::Gzip => MEDIA_DOCKER_LAYER_GZIP,
                Compression::Zstd => MEDIA_OCI_LAYER_ZSTD,
            };
            layers.push(LayerBlob {
                size: blobs.size(&bd)?,
                blob_digest: bd,
                media_type: media_type.to_owned(),
                compression,
                diff_id,
            });
        }
        let mut repo_tags = Vec::new();
        for t in ent.repo_tags.iter().flatten() {
            repo_tags.push(
                Reference::parse(t)
                    .map_err(|e| Error::archive(format!("{what}: RepoTags entry {t:?}: {e}")))?,
            );
        }
        let mut manifest = None;
        if let Some(m) = oci.iter().find(|o| {
            o.config_digest == cd
                && o.layers.len() == layers.len()
                && o.layers
                    .iter()
                    .zip(&layers)
                    .all(|(a, b)| a.blob_digest == b.blob_digest)
        }) {
            manifest = m.manifest.clone();
            for (l, ol) in layers.iter_mut().zip(&m.layers) {
                l.media_type = ol.media_type.clone();
            }
        }
        out.push(LoadedImage {
            config,
            config_bytes,
            config_digest: cd,
            manifest,
            repo_tags,
            layers,
        });
    }
    Ok(out)
}

fn sniff_blob(blobs: &BlobStore, d: &Digest, name: &str) -> Result<Compression> {
    let mut head = [0u8; 8];
    let mut f = blobs.open(d)?;
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) => return Err(Error::io(&blobs.path(d), "read blob", e)),
        }
    }
    Compression::sniff(&head[..n]).map_err(|c| {
        Error::archive(format!(
            "layer {name} ({d}) is {c}-compressed, which berth cannot read"
        ))
    })
}

fn oci_images(
    meta: &HashMap<String, Vec<u8>>,
    blobs: &BlobStore,
    fetch: &mut Fetch<'_>,
) -> Result<Vec<LoadedImage>> {
    let layout: serde_json::Value = parse_json(
        meta.get("oci-layout")
            .ok_or_else(|| Error::archive("not an OCI image layout: oci-layout is missing"))?,
        "oci-layout",
    )?;
    match layout.get("imageLayoutVersion").and_then(|v| v.as_str()) {
        Some(v) if v.starts_with("1.") => {}
        other => {
            return Err(Error::archive(format!(
                "oci-layout: unsupported imageLayoutVersion {other:?} (berth reads 1.x)"
            )))
        }
    }
    let index: Index = parse_json(
        meta.get("index.json")
            .ok_or_else(|| Error::archive("not an OCI image layout: index.json is missing"))?,
        "index.json",
    )?;
    let mut out: Vec<LoadedImage> = Vec::new();
    for (i, desc) in index.manifests.iter().enumerate() {
        let what = format!("index.json manifests[{i}]");
        let img = match desc.media_type.as_str() {
            MEDIA_OCI_MANIFEST | MEDIA_DOCKER_MANIFEST => oci_manifest(desc, blobs, fetch, &what)?,
            MEDIA_OCI_INDEX | MEDIA_DOCKER_MANIFEST_LIST => {
                let bytes = fetch_json(desc, blobs, fetch, &what)?;
                let nested: Index =
                    parse_json(&bytes, &format!("image index {} ({what})", desc.digest))?;
                let (arch, os) = crate::config::host_platform();
                let pick = nested
                    .manifests
                    .iter()
                    .filter(|m| {
                        m.media_type == MEDIA_OCI_MANIFEST || m.media_type == MEDIA_DOCKER_MANIFEST
                    })
                    .find(|m| {
                        m.platform
                            .as_ref()
                            .is_none_or(|p| p.architecture == arch && p.os == os)
                    })
                    .ok_or_else(|| {
                        Error::archive(format!(
                            "image index {} ({what}) has no manifest for {os}/{arch}",
                            desc.digest
                        ))
                    })?;
                oci_manifest(pick, blobs, fetch, &what)?
            }
            other => {
                return Err(Error::archive(format!(
                    "{what}: unknown media type {other:?}"
                )));
            }
        };
        let tags = ref_names(desc);
        match out
            .iter_mut()
            .find(|o| o.config_digest == img.config_digest)
        {
            Some(o) => o.repo_tags.extend(tags),
            None => {
                let mut img = img;
                img.repo_tags = tags;
                out.push(img);
            }
        }
    }
    for o in &mut out {
        o.repo_tags.sort();
        o.repo_tags.dedup();
    }
    Ok(out)
}

/// The tag a descriptor carries: containerd's full name, or an OCI ref.name that is a
/// full reference (a bare tag such as `latest` names no repository and is ignored).
fn ref_names(desc: &Descriptor) -> Vec<Reference> {
    let Some(a) = &desc.annotations else {
        return Vec::new();
    };
    let name = a.get(ANNOTATION_CONTAINERD_NAME).or_else(|| {
        a.get(ANNOTATION_REF_NAME)
            .filter(|n| n.contains(['/', ':']))
    });
    name.and_then(|n| Reference::parse(n).ok())
        .filter(|r| r.tag().is_some())
        .into_iter()
        .collect()
}

/// Makes sure a descriptor's blob is present with the declared size, and reads it.
fn fetch_json(
    desc: &Descriptor,
    blobs: &BlobStore,
    fetch: &mut Fetch<'_>,
    what: &str,
) -> Result<Vec<u8>> {
    let d = check_blob(desc, blobs, fetch, what)?;
    blobs.read(&d)
}

fn check_blob(
    desc: &Descriptor,
    blobs: &BlobStore,
    fetch: &mut Fetch<'_>,
    what: &str,
) -> Result<Digest> {
    let d = digest_field(&desc.digest, &format!("{what}: digest"))?;
    if !fetch(&d)? {
        return Err(Error::archive(format!(
            "archive is missing blob {d} ({what})"
        )));
    }
    let size = blobs.size(&d)?;
    if size != desc.size {
        return Err(Error::archive(format!(
            "blob {d} ({what}) is {size} bytes but its descriptor says {}",
            desc.size
        )));
    }
    Ok(d)
}

fn oci_manifest(
    desc: &Descriptor,
    blobs: &BlobStore,
    fetch: &mut Fetch<'_>,
    what: &str,
) -> Result<LoadedImage> {
    let md = check_blob(desc, blobs, fetch, &format!("manifest of {what}"))?;
    let bytes = blobs.read(&md)?;
    let m: Manifest = parse_json(&bytes, &format!("manifest {md}"))?;
    if let Some(mt) = &m.media_type {
        if mt != MEDIA_OCI_MANIFEST && mt != MEDIA_DOCKER_MANIFEST {
            return Err(Error::archive(format!(
                "manifest {md}: unknown media type {mt:?}"
            )));
        }
    }
    let cd = check_blob(&m.config, blobs, fetch, &format!("config of manifest {md}"))?;
    let (config, config_bytes, diff_ids) = read_config(blobs, &cd, &format!("manifest {md}"))?;
    if diff_ids.len() != m.layers.len() {
        return Err(Error::archive(format!(
            "manifest {md} lists {} layers but its config {cd} has {} diff_ids",
            m.layers.len(),
            diff_ids.len()
        )));
    }
    let mut layers = Vec::new();
    for (i, (l, diff_id)) in m.layers.iter().zip(diff_ids).enumerate() {
        let compression = Compression::of_media_type(&l.media_type).ok_or_else(|| {
            Error::archive(format!(
                "manifest {md}: layer {i} has unknown media type {:?}",
                l.media_type
            ))
        })?;
        let bd = check_blob(l, blobs, fetch, &format!("layer {i} of manifest {md}"))?;
        let actual = sniff_blob(blobs, &bd, &format!("{i} of manifest {md}"))?;
        if actual != compression && actual != Compression::None {
            return Err(Error::archive(format!(
                "manifest {md}: layer {i} ({bd}) is {actual:?}-compressed but its media type is {:?}",
                l.media_type
            )));
        }
        layers.push(LayerBlob {
            blob_digest: bd,
            size: l.size,
            media_type: l.media_type.clone(),
            compression: if actual == Compression::None {
                actual
            } else {
                compression
            },
            diff_id,
        });
    }
    Ok(LoadedImage {
        config,
        config_bytes,
        config_digest: cd,
        manifest: Some((md, bytes)),
        repo_tags: Vec::new(),
        layers,
    })
}
