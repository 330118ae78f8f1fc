//! Writing docker-archive, OCI archive and OCI directory layouts.
//!
//! Configs and layer blobs are written byte for byte (configs from the database, layers
//! from the blob store), so image IDs, blob digests and diff_ids survive a round trip.
//! A stored manifest is written as it came; an image built here gets a generated OCI
//! manifest. Tar headers are deterministic: sorted paths, mtime 0, uid/gid 0.

use super::load::{ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME};
use super::{Compression, MEDIA_OCI_CONFIG, MEDIA_OCI_MANIFEST};
use crate::blobs::{write_atomic, BlobStore};
use crate::db::Image;
use crate::reference::Reference;
use crate::{Error, Result};
use berth_digest::Digest;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveFormat {
    /// `docker save`: `manifest.json` + `repositories`, with the Docker 25+ layout
    /// (`blobs/sha256/…`, `oci-layout`, `index.json`), which older Docker and podman load.
    DockerArchive,
    /// An OCI image layout in a tar.
    OciArchive,
}

/// An image to save and the tags to write for it (none: it is saved untagged).
#[derive(Debug, Clone)]
pub struct SaveImage<'a> {
    pub image: &'a Image,
    pub tags: Vec<Reference>,
}

enum Content {
    Bytes(Vec<u8>),
    Blob(Digest),
}

/// Everything an archive holds, by path.
struct Plan {
    files: BTreeMap<String, Content>,
}

fn blob_path(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

fn to_json(v: &Value) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| Error::archive(format!("encoding archive metadata: {e}")))
}

fn plan(images: &[SaveImage<'_>], blobs: &BlobStore, docker: bool) -> Result<Plan> {
    let mut files = BTreeMap::new();
    let mut index = Vec::new();
    let mut docker_manifest = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for s in images {
        let img = s.image;
        files.insert(blob_path(&img.id), Content::Bytes(img.config_json.clone()));
        let mut layer_descs = Vec::new();
        for l in &img.layers {
            if !blobs.has(&l.blob_digest) {
                return Err(Error::archive(format!(
                    "cannot save image {}: layer blob {} is not in the blob store",
                    img.id.short(),
                    l.blob_digest
                )));
            }
            let size = blobs.size(&l.blob_digest)?;
            files.insert(
                blob_path(&l.blob_digest),
                Content::Blob(l.blob_digest.clone()),
            );
            let mt = match Compression::of_media_type(&l.media_type) {
                Some(c) if l.media_type.starts_with("application/vnd.docker.") => {
                    c.oci_media_type().to_owned()
                }
                Some(_) => l.media_type.clone(),
                None => Compression::None.oci_media_type().to_owned(),
            };
            layer_descs
                .push(json!({"mediaType": mt, "digest": l.blob_digest.to_string(), "size": size}));
        }
        let stored = img
            .manifest_json
            .as_ref()
            .zip(img.manifest_digest.as_ref())
            .filter(|(mj, _)| manifest_matches(mj, img));
        let (md, mbytes, mtype) = match stored {
            Some((mj, md)) => {
                let mt = serde_json::from_slice::<Value>(mj)
                    .ok()
                    .and_then(|v| {
                        v.get("mediaType")
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                    })
                    .unwrap_or_else(|| MEDIA_OCI_MANIFEST.to_owned());
                (md.clone(), mj.clone(), mt)
            }
            None => {
                let m = json!({
                    "schemaVersion": 2,
                    "mediaType": MEDIA_OCI_MANIFEST,
                    "config": {"mediaType": MEDIA_OCI_CONFIG, "digest": img.id.to_string(), "size": img.config_json.len()},
                    "layers": layer_descs,
                });
                let b = to_json(&m)?;
                (Digest::of(&b), b, MEDIA_OCI_MANIFEST.to_owned())
            }
        };
        files.insert(blob_path(&md), Content::Bytes(mbytes.clone()));
        let desc = |annotations: Option<Value>| {
            let mut d = Map::new();
            d.insert("mediaType".into(), json!(mtype));
            d.insert("digest".into(), json!(md.to_string()));
            d.insert("size".into(), json!(mbytes.len()));
            if let Some(a) = annotations {
                d.insert("annotations".into(), a);
            }
            Value::Object(d)
        };
        if s.tags.is_empty() {
            index.push(desc(None));
        }
        for t in &s.tags {
            let mut a = Map::new();
            a.insert(ANNOTATION_CONTAINERD_NAME.into(), json!(t.to_string()));
            a.insert(
                ANNOTATION_REF_NAME.into(),
                json!(t.tag().unwrap_or("latest")),
            );
            index.push(desc(Some(Value::Object(a))));
            if let Some(top) = img.layers.last() {
                repositories.entry(t.familiar_name()).or_default().insert(
                    t.tag().unwrap_or("latest").to_owned(),
                    top.blob_digest.hex().to_owned(),
                );
            }
        }
        docker_manifest.push(json!({
            "Config": blob_path(&img.id),
            "RepoTags": s.tags.iter().map(Reference::familiar).collect::<Vec<_>>(),
            "Layers": img.layers.iter().map(|l| blob_path(&l.blob_digest)).collect::<Vec<_>>(),
        }));
    }
    files.insert(
        "index.json".into(),
        Content::Bytes(to_json(
            &json!({"schemaVersion": 2, "mediaType": super::MEDIA_OCI_INDEX, "manifests": index}),
        )?),
    );
    files.insert(
        "oci-layout".into(),
        Content::Bytes(to_json(&json!({"imageLayoutVersion": "1.0.0"}))?),
    );
    if docker {
        files.insert(
            "manifest.json".into(),
            Content::Bytes(to_json(&Value::Array(docker_manifest))?),
        );
        files.insert(
            "repositories".into(),
            Content::Bytes(to_json(&json!(repositories))?),
        );
    }
    Ok(Plan { files })
}

/// A stored manifest is reused only if it names exactly this config and these layers.
fn manifest_matches(mj: &[u8], img: &Image) -> bool {
    let Ok(v) = serde_json::from_slice::<Value>(mj) else {
        return false;
    };
    let digest_of = |d: &Value| d.get("digest").and_then(Value::as_str).map(str::to_owned);
    let layers: Vec<String> = v
        .get("layers")
        .and_then(Value::as_array)
        .map(|ls| ls.iter().filter_map(digest_of).collect())
        .unwrap_or_default();
    v.get("config").and_then(digest_of) == Some(img.id.to_string())
        && layers
            == img
                .layers
                .iter()
                .map(|l| l.blob_digest.to_string())
                .collect::<Vec<_>>()
}

fn header(size: u64, mode: u32, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h
}

/// Writes `images` as one tar stream.
pub fn save_tar(
    images: &[SaveImage<'_>],
    format: SaveFormat,
    blobs: &BlobStore,
    w: impl Write,
) -> Result<()> {
    let plan = plan(images, blobs, format == SaveFormat::DockerArchive)?;
    let werr = |e: io::Error| Error::Io {
        path: "archive".into(),
        op: "write",
        source: e,
    };
    let mut b = tar::Builder::new(w);
    b.mode(tar::HeaderMode::Deterministic);
    for dir in ["blobs/", "blobs/sha256/"] {
        let mut h = header(0, 0o755, tar::EntryType::Directory);
        b.append_data(&mut h, dir, io::empty()).map_err(werr)?;
    }
    for (path, content) in &plan.files {
        match content {
            Content::Bytes(v) => {
                let mut h = header(v.len() as u64, 0o644, tar::EntryType::Regular);
                b.append_data(&mut h, path, &v[..]).map_err(werr)?;
            }
            Content::Blob(d) => {
                let f = blobs.open(d)?;
                let size = f
                    .metadata()
                    .map_err(|e| Error::io(&blobs.path(d), "stat blob", e))?
                    .len();
                let mut h = header(size, 0o644, tar::EntryType::Regular);
                b.append_data(&mut h, path, f).map_err(werr)?;
            }
        }
    }
    b.into_inner().and_then(|mut w| w.flush()).map_err(werr)
}

/// Writes `images` as an OCI image layout directory (created if needed; blobs already
/// there are kept, `index.json` is replaced).
pub fn save_dir(images: &[SaveImage<'_>], blobs: &BlobStore, dir: &Path) -> Result<()> {
    let plan = plan(images, blobs, false)?;
    let bdir = dir.join("blobs/sha256");
    std::fs::create_dir_all(&bdir).map_err(|e| Error::io(&bdir, "create directory", e))?;
    for (path, content) in &plan.files {
        let dest = dir.join(path);
        match content {
            Content::Bytes(v) => write_atomic(&dest, v)?,
            Content::Blob(d) => {
                if dest.exists() {
                    continue;
                }
                let mut tmp = tempfile::Builder::new()
                    .prefix(".tmp-")
                    .tempfile_in(&bdir)
                    .map_err(|e| Error::io(&bdir, "create temporary file", e))?;
                io::copy(&mut blobs.open(d)?, &mut tmp)
                    .and_then(|_| tmp.as_file().sync_all())
                    .map_err(|e| Error::io(&dest, "write", e))?;
                tmp.persist(&dest)
                    .map_err(|e| Error::io(&dest, "rename into place", e.error))?;
            }
        }
    }
    Ok(())
}
