//! Image operations: load/save/import between archives, the blob store and
//! the layer store; listing, tagging, removal, history, inspection.

use crate::error::{EngineError, Object, Result};
use crate::{Engine, SaveFormat};
use berth_digest::Digest;
use berth_image::archive::{self, LayerBlob, SaveImage};
use berth_image::db::{chain_ids, ContainerUse};
use berth_image::{Image, Reference, RemovedImage};
use std::collections::HashSet;
use std::io::{Read, Write};
use std::path::Path;
use std::time::SystemTime;

/// One image a `load` registered.
#[derive(Debug, Clone)]
pub struct LoadResult {
    /// The familiar reference (`busybox:latest`), if the archive tagged it.
    pub reference: Option<String>,
    pub id: Digest,
}

#[derive(Debug, Clone)]
pub struct ImageSummary {
    pub repository: Option<String>,
    pub tag: Option<String>,
    /// `sha256:…`
    pub id: String,
    pub digest: Option<String>,
    pub created: SystemTime,
    /// As Docker prints CreatedAt: `2024-01-02 03:04:05 +0000 UTC`.
    pub created_at: String,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RmiEvent {
    Untagged(String),
    Deleted(String),
}

#[derive(Debug, Clone)]
pub struct HistoryRow {
    pub id: Option<String>,
    pub created: Option<SystemTime>,
    pub created_by: String,
    pub size: u64,
    pub comment: String,
}

/// `system df`: Docker 20.10's counts. Reclaimable is what the prunes then
/// free: layers no container's image needs (`image prune -a`), stopped
/// containers' writable layers, volumes no container uses (`volume prune -a`).
#[derive(Debug, Clone, Default)]
pub struct DiskUsage {
    /// Images as `images` lists them (a build's intermediate ones left out).
    pub images: usize,
    pub images_active: usize,
    /// Every layer once (Docker's LayersSize).
    pub images_size: u64,
    pub images_reclaimable: u64,
    pub containers: usize,
    pub containers_active: usize,
    pub containers_size: u64,
    pub containers_reclaimable: u64,
    pub volumes: usize,
    pub volumes_active: usize,
    pub volumes_size: u64,
    pub volumes_reclaimable: u64,
    /// `df -v`'s rows.
    pub image_rows: Vec<DfImage>,
    pub container_rows: Vec<DfContainer>,
    pub volume_rows: Vec<DfVolume>,
}

/// An image in `system df -v`.
#[derive(Debug, Clone)]
pub struct DfImage {
    /// Its first tag, as `repository` and `tag` (`<none>` when untagged).
    pub repository: String,
    pub tag: String,
    /// `sha256:…`
    pub id: String,
    pub created: SystemTime,
    pub size: u64,
    pub shared_size: u64,
    pub containers: usize,
}

/// A container in `system df -v`.
#[derive(Debug, Clone)]
pub struct DfContainer {
    pub summary: crate::ContainerSummary,
    /// Its volume mounts (Docker: the mounts of the local driver).
    pub local_volumes: usize,
}

/// A volume in `system df -v`.
#[derive(Debug, Clone)]
pub struct DfVolume {
    pub name: String,
    /// The containers that use it.
    pub links: usize,
    pub size: u64,
}

pub(crate) fn parse_time(s: Option<&str>) -> SystemTime {
    s.and_then(|t| humantime::parse_rfc3339_weak(t.trim_end_matches('Z').split('.').next()?).ok())
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

fn docker_time(t: SystemTime) -> String {
    let s = humantime::format_rfc3339_seconds(t).to_string();
    // 2024-01-02T03:04:05Z -> 2024-01-02 03:04:05 +0000 UTC
    format!(
        "{} +0000 UTC",
        s.trim_end_matches('Z').replacen('T', " ", 1)
    )
}

fn parse_ref(s: &str) -> Result<Reference> {
    Reference::parse(s).map_err(|e| EngineError::Invalid(e.to_string()))
}

impl Engine {
    /// Unpacks `layers` (the image's, bottom first) into the layer store,
    /// skipping those present. With overlay the layers are independent
    /// directories, so they are staged in parallel, one thread each, and then
    /// committed bottom first (a layer goes in place only after its parent);
    /// vfs copies each parent, so it goes in order. Returns the unpacked sizes.
    fn unpack_layers(&self, layers: &[LayerBlob]) -> Result<Vec<u64>> {
        let diff_ids: Vec<Digest> = layers.iter().map(|l| l.diff_id.clone()).collect();
        let chains = chain_ids(&diff_ids);
        let (store, blobs) = (&self.layers, &self.blobs);
        // `Err(size)`: the layer is there already.
        type Staged<'a> = std::result::Result<berth_storage::StagedLayer<'a>, u64>;
        let stage_one = |i: usize| -> Result<Staged<'_>> {
            if store.has_layer(&chains[i]) {
                return Ok(Err(store.layer_size(&chains[i])?));
            }
            let parent = if i == 0 { None } else { Some(&chains[i - 1]) };
            let stream = layers[i].open_uncompressed(blobs)?;
            let staged = store.stage_layer(&chains[i], parent, stream)?;
            let got = &staged.applied().diff_id;
            if *got != layers[i].diff_id {
                return Err(EngineError::Invalid(format!(
                    "layer {} ({}): its content has diff_id {}, but the image config says {}",
                    i + 1,
                    layers[i].blob_digest,
                    got,
                    layers[i].diff_id
                )));
            }
            Ok(Ok(staged))
        };
        let commit = |st: Staged<'_>| -> Result<u64> {
            match st {
                Ok(staged) => Ok(staged.commit()?.size),
                Err(size) => Ok(size),
            }
        };
        if !self.layers.driver().stages_independently() || layers.len() < 2 {
            return (0..layers.len()).map(|i| commit(stage_one(i)?)).collect();
        }
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..layers.len())
                .map(|i| s.spawn(move || stage_one(i)))
                .collect();
            let staged: Vec<Result<_>> = handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(EngineError::Other("layer unpacking panicked".into()))
                    })
                })
                .collect();
            // Bottom first; the first error drops (removes) the rest.
            let mut sizes = Vec::with_capacity(staged.len());
            for st in staged {
                sizes.push(commit(st?)?);
            }
            Ok(sizes)
        })
    }

    /// `berth load`: registers every image of a docker-archive or OCI archive.
    pub fn load(&self, input: impl Read + Send) -> Result<Vec<LoadResult>> {
        let before = self.store_contents()?;
        let loaded = archive::load_tar(input, &self.blobs)?;
        self.register_or_discard(&loaded, &before)
    }

    /// `berth load -i DIR`: an OCI image layout directory (what
    /// `save --format oci-dir` writes).
    pub fn load_dir(&self, dir: &Path) -> Result<Vec<LoadResult>> {
        let before = self.store_contents()?;
        let loaded = archive::load_dir(dir, &self.blobs)?;
        self.register_or_discard(&loaded, &before)
    }

    fn store_contents(&self) -> Result<(HashSet<Digest>, HashSet<Digest>)> {
        Ok((
            self.blobs.list()?.into_iter().collect(),
            self.layers.layers()?.into_iter().collect(),
        ))
    }

    /// The archive's blobs are in the store: unpack and register its images.
    /// On failure (a layer whose content does not match its diff_id, a corrupt
    /// compressed stream), remove the blobs and layers this load added that no
    /// registered image uses, so a failed load leaves nothing behind.
    fn register_or_discard(
        &self,
        loaded: &archive::Loaded,
        before: &(HashSet<Digest>, HashSet<Digest>),
    ) -> Result<Vec<LoadResult>> {
        let err = match self.register_loaded(loaded) {
            Ok(r) => return Ok(r),
            Err(e) => e,
        };
        let (blobs_before, layers_before) = before;
        if let Ok(used) = self.images.referenced_blobs() {
            for img in &loaded.images {
                let mine = img
                    .layers
                    .iter()
                    .map(|l| &l.blob_digest)
                    .chain([&img.config_digest])
                    .chain(img.manifest.as_ref().map(|(d, _)| d));
                for d in mine {
                    if !blobs_before.contains(d) && !used.contains(d) {
                        let _ = self.blobs.remove(d);
                    }
                }
            }
        }
        if let Ok(records) = self.images.layers() {
            let used: HashSet<&Digest> = records.iter().map(|l| &l.chain_id).collect();
            for img in &loaded.images {
                let diff_ids: Vec<Digest> = img.layers.iter().map(|l| l.diff_id.clone()).collect();
                for chain in chain_ids(&diff_ids).iter().rev() {
                    if !layers_before.contains(chain) && !used.contains(chain) {
                        let _ = self.layers.remove_layer(chain);
                    }
                }
            }
        }
        Err(err)
    }

    fn register_loaded(&self, loaded: &archive::Loaded) -> Result<Vec<LoadResult>> {
        let mut out = Vec::new();
        for img in &loaded.images {
            let sizes = self.unpack_layers(&img.layers)?;
            let mut new = img.new_image(Some(&sizes));
            new.tags = img.repo_tags.clone();
            let id = self.images.add_image(&new)?;
            if img.repo_tags.is_empty() {
                out.push(LoadResult {
                    reference: None,
                    id,
                });
            } else {
                for t in &img.repo_tags {
                    out.push(LoadResult {
                        reference: Some(t.familiar()),
                        id: id.clone(),
                    });
                }
            }
        }
        Ok(out)
    }

    fn save_list(&self, names: &[String]) -> Result<Vec<(Image, Vec<Reference>)>> {
        let mut out: Vec<(Image, Vec<Reference>)> = Vec::new();
        for n in names {
            let img = self.images.resolve(n)?;
            // Saved by name: that tag goes with it; by ID: untagged.
            let tags: Vec<Reference> = match Reference::parse(n) {
                Ok(r) if img.repo_tags.contains(&r) => vec![r],
                _ => Vec::new(),
            };
            match out.iter_mut().find(|(i, _)| i.id == img.id) {
                Some((_, t)) => t.extend(tags),
                None => out.push((img, tags)),
            }
        }
        Ok(out)
    }

    /// Calls `f` with the images `names` resolve to, as the archive writers
    /// take them.
    fn with_save_items<T>(
        &self,
        names: &[String],
        f: impl FnOnce(&[SaveImage<'_>]) -> Result<T>,
    ) -> Result<T> {
        let list = self.save_list(names)?;
        let items: Vec<SaveImage<'_>> = list
            .iter()
            .map(|(image, tags)| SaveImage {
                image,
                tags: tags.clone(),
            })
            .collect();
        f(&items)
    }

    pub fn save(&self, names: &[String], format: SaveFormat, out: impl Write) -> Result<()> {
        let f = match format {
            SaveFormat::OciArchive => archive::SaveFormat::OciArchive,
            _ => archive::SaveFormat::DockerArchive,
        };
        self.with_save_items(names, |items| {
            Ok(archive::save_tar(items, f, &self.blobs, out)?)
        })
    }

    /// `save -o FILE`: no half archive is left if it fails.
    pub fn save_file(&self, names: &[String], format: SaveFormat, path: &Path) -> Result<()> {
        crate::write_file_atomically(path, |w| self.save(names, format, w))
    }

    pub fn save_dir(&self, names: &[String], dir: &Path) -> Result<()> {
        self.with_save_items(names, |items| {
            Ok(archive::save_dir(items, &self.blobs, dir)?)
        })
    }

    /// `berth import`: a rootfs tarball becomes a one-layer image.
    pub fn import(
        &self,
        input: impl Read + Send,
        reference: Option<&str>,
        changes: &[String],
        message: Option<&str>,
    ) -> Result<Digest> {
        let tag = reference.map(parse_ref).transpose()?;
        let opts = berth_image::config::ImportOptions {
            changes: changes.to_vec(),
            message: message.map(str::to_owned),
            platform: None,
        };
        let mut imported = berth_image::config::import_rootfs_tar(input, &self.blobs, &opts)?;
        let layer = self.blobs.open(&imported.diff_id)?;
        let applied = self.layers.apply_layer(&imported.diff_id, None, layer)?;
        if let Some(l) = imported.image.layers.first_mut() {
            l.size = applied.size;
        }
        imported.image.tags = tag.into_iter().collect();
        Ok(self.images.add_image(&imported.image)?)
    }

    /// `berth images [-a] [REPOSITORY[:TAG]]`: without `all`, untagged
    /// images with children (a build's intermediate images) are left out.
    pub fn images(&self, filter: Option<&str>, all: bool) -> Result<Vec<ImageSummary>> {
        let want = match filter {
            Some(f) => {
                Some(Reference::parse_named(f).map_err(|e| EngineError::Invalid(e.to_string()))?)
            }
            None => None,
        };
        let parents = if all {
            HashSet::new()
        } else {
            self.images.parents()?
        };
        let mut out = Vec::new();
        for s in self.images.list()? {
            if s.repository == "<none>" && parents.contains(&s.id) {
                continue;
            }
            // A row is one tag of an image: match that tag, not the image's
            // other names.
            if let Some(w) = &want {
                let matches =
                    s.repository == w.familiar_name() && w.tag().is_none_or(|wt| s.tag == wt);
                if !matches {
                    continue;
                }
            }
            let created = parse_time(s.created.as_deref());
            out.push(ImageSummary {
                repository: (s.repository != "<none>").then(|| s.repository.clone()),
                tag: (s.tag != "<none>").then(|| s.tag.clone()),
                id: s.id.to_string(),
                digest: s.digest.as_ref().map(|d| d.to_string()),
                created,
                created_at: docker_time(created),
                size: s.size,
            });
        }
        Ok(out)
    }

    pub fn tag(&self, source: &str, target: &str) -> Result<()> {
        let img = self.images.resolve(source)?;
        let r = parse_ref(target)?;
        self.images.tag(&r, &img.id)?;
        self.object_event(
            "image",
            "tag",
            &img.id.to_string(),
            &[("name", r.familiar())],
        );
        Ok(())
    }

    /// Which images containers use, read once: the answer is consulted
    /// inside the image database's transactions, on the connection the
    /// container records share, so it must not query again there.
    pub(crate) fn in_use(&self) -> impl Fn(&Digest) -> Option<ContainerUse> {
        let mut users: std::collections::HashMap<String, ContainerUse> =
            std::collections::HashMap::new();
        // Oldest first, so that the first container named is the oldest.
        let mut all = self.containers.list().unwrap_or_default();
        all.reverse();
        for c in all {
            let running = c.state == crate::containers::State::Running;
            users
                .entry(c.image_id.clone())
                .and_modify(|u| u.running |= running)
                .or_insert_with(|| ContainerUse {
                    container: c.id.short().to_owned(),
                    running,
                });
        }
        move |id: &Digest| users.get(&id.to_string()).cloned()
    }

    /// Removes from storage and the blob store what the database let go of.
    pub(crate) fn collect(&self, r: &RemovedImage) -> (Vec<RmiEvent>, u64) {
        let mut reclaimed = 0;
        for l in &r.layers_to_remove {
            reclaimed += l.size;
            match self.layers.remove_layer(&l.chain_id) {
                // Already gone (what `system check --repair` mends).
                Ok(()) | Err(berth_storage::Error::LayerNotFound(_)) => {}
                Err(e) => eprintln!("warning: {e}"),
            }
        }
        for b in &r.blobs_to_remove {
            reclaimed += self.blobs.allocated(b);
            let _ = self.blobs.remove(b);
        }
        let mut ev: Vec<RmiEvent> = r
            .untagged
            .iter()
            .map(|t| RmiEvent::Untagged(t.familiar()))
            .collect();
        ev.extend(r.deleted.iter().map(|d| RmiEvent::Deleted(d.to_string())));
        // Docker's image events name the image by its ID, twice.
        for d in &r.deleted {
            let id = d.to_string();
            self.object_event("image", "delete", &id, &[("name", id.clone())]);
        }
        (ev, reclaimed)
    }

    pub fn rmi(&self, name: &str, force: bool) -> Result<Vec<RmiEvent>> {
        let in_use = self.in_use();
        let image = self.images.resolve(name).ok();
        let parent = image.as_ref().and_then(|i| i.parent.clone());
        let removed = self.images.remove(name, force, &in_use)?;
        if let Some(img) = &image {
            let id = img.id.to_string();
            for _ in &removed.untagged {
                self.object_event("image", "untag", &id, &[("name", id.clone())]);
            }
        }
        let mut events = self.collect(&removed).0;
        if !removed.deleted.is_empty() {
            events.extend(self.prune_parents(parent));
        }
        Ok(events)
    }

    pub fn image_prune(&self, all: bool) -> Result<(Vec<RmiEvent>, u64)> {
        self.image_prune_except(all, &HashSet::new())
    }

    /// [`Engine::image_prune`] keeping the images in `keep` (`sha256:…`;
    /// those a prune's `until`/`label` filters leave), as if in use.
    pub fn image_prune_except(
        &self,
        all: bool,
        keep: &HashSet<String>,
    ) -> Result<(Vec<RmiEvent>, u64)> {
        let users = self.in_use();
        let in_use = |id: &Digest| {
            users(id).or_else(|| {
                keep.contains(&id.to_string()).then(|| ContainerUse {
                    container: String::new(),
                    running: false,
                })
            })
        };
        let removed = self.images.prune(all, &in_use)?;
        let (events, mut reclaimed) = self.collect(&removed);
        reclaimed += self.collect_orphans()?;
        Ok((events, reclaimed))
    }

    /// Removes what a crashed `load`, `commit` or `build` left unregistered:
    /// staging areas and trash of processes that are gone, an older berth's
    /// temporary files, build work areas whose build is gone, layers no
    /// image record names, blobs no image needs, stale partial downloads.
    /// Unregistered layers and blobs, and partial downloads, go only when
    /// older than an hour, so that a load running right now (whose layers
    /// are not registered yet) keeps its work. Returns the bytes freed
    /// (allocated blocks; a layer counts its recorded size).
    fn collect_orphans(&self) -> Result<u64> {
        self.collect_garbage(std::time::Duration::from_secs(3600))
    }

    /// `system reset`'s last step, once every image and container is gone:
    /// whatever storage remains (unregistered layers and blobs of any age,
    /// staging areas and trash of dead processes, temporary files, partial
    /// downloads no pull holds). Returns the bytes freed.
    pub fn storage_reset(&self) -> Result<u64> {
        let mut freed = self.collect_garbage(std::time::Duration::ZERO)?;
        freed += self.blobs.remove_all_temp()?;
        self.layers.empty_pool()?;
        Ok(freed)
    }

    /// [`Engine::collect_orphans`] with another age for unregistered
    /// layers and blobs (`system reset`: zero).
    pub(crate) fn collect_garbage(&self, min_age: std::time::Duration) -> Result<u64> {
        let old = |p: &Path| {
            std::fs::symlink_metadata(p)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age >= min_age)
        };
        let mut reclaimed = self.remove_stale_workspaces(min_age);
        let leftovers = self.layers.leftovers()?;
        reclaimed += self.layers.remove_leftovers(&leftovers)?.bytes;
        for l in self.layers.dangling_links(min_age)? {
            let _ = std::fs::remove_file(l);
        }
        let known: std::collections::HashSet<Digest> = self
            .images
            .layers()?
            .into_iter()
            .map(|l| l.chain_id)
            .collect();
        // Children first: a layer whose child is also an orphan goes after it.
        let mut orphans: Vec<Digest> = self
            .layers
            .layers()?
            .into_iter()
            .filter(|id| !known.contains(id) && old(&self.layers.layer_diff(id)))
            .collect();
        orphans.sort_by_key(|id| {
            std::cmp::Reverse(self.layers.layer_chain(id).map(|c| c.len()).unwrap_or(0))
        });
        for id in orphans {
            reclaimed += self.layers.layer_size(&id).unwrap_or(0);
            let _ = self.layers.remove_layer(&id);
        }
        let keep = self.images.referenced_blobs()?;
        for b in self.blobs.list()? {
            if !keep.contains(&b) && old(&self.blobs.path(&b)) {
                reclaimed += self.blobs.allocated(&b);
                let _ = self.blobs.remove(&b);
            }
        }
        reclaimed += self.blobs.clean_temp(Some(min_age), true)?.bytes;
        Ok(reclaimed)
    }

    pub fn history(&self, name: &str) -> Result<Vec<HistoryRow>> {
        let mut rows: Vec<HistoryRow> = self
            .images
            .history(name)?
            .into_iter()
            .map(|h| HistoryRow {
                id: h.id.map(|d| d.to_string()),
                created: h.created.as_deref().map(|c| parse_time(Some(c))),
                created_by: h.created_by,
                size: h.size,
                comment: h.comment,
            })
            .collect();
        // Images built or committed here name their parents: each parent's
        // ID goes on the row of its own last history entry, as Docker shows.
        let total = rows.len();
        let mut parent = self.images.resolve(name)?.parent;
        while let Some(p) = parent {
            let Ok(img) = self.images.get(&p) else { break };
            let len = berth_image::db::history_of(&img).map_or(0, |h| h.len());
            match total.checked_sub(len).and_then(|i| rows.get_mut(i)) {
                Some(row) if len > 0 => row.id = Some(img.id.to_string()),
                _ => break,
            }
            parent = img.parent;
        }
        Ok(rows)
    }

    /// `image inspect`: an image only.
    pub fn image_inspect(&self, name: &str) -> Result<serde_json::Value> {
        match self.images.resolve(name) {
            Ok(img) => self.inspect_image(&img),
            Err(_) => Err(EngineError::no_such(Object::Image, name)),
        }
    }

    /// `container inspect`: a container only.
    pub fn container_inspect(&self, name: &str) -> Result<serde_json::Value> {
        match self.containers.resolve(name) {
            Ok(c) => Ok(self.inspect_container(&c)),
            Err(_) => Err(EngineError::no_such(Object::Container, name)),
        }
    }

    /// `inspect`: an image (Docker's shape) or else a container.
    pub fn inspect(&self, name: &str) -> Result<serde_json::Value> {
        match self.images.resolve(name) {
            Ok(img) => self.inspect_image(&img),
            Err(_) => match self.containers.resolve(name) {
                Ok(c) => Ok(self.inspect_container(&c)),
                Err(_) => Err(EngineError::no_such(Object::Any, name)),
            },
        }
    }

    fn inspect_image(&self, img: &Image) -> Result<serde_json::Value> {
        let cfg: serde_json::Value = serde_json::from_slice(&img.config_json)
            .map_err(|e| EngineError::Other(format!("image config: {e}")))?;
        let graph = match img.top_chain_id() {
            // Best effort: inspect still answers for an image whose layer
            // is gone (what `system check` reports and repairs).
            Some(top) => graph_data(self.layers.layer_graph(top).ok().flatten().as_ref()),
            None => serde_json::Value::Null,
        };
        let mut doc = serde_json::json!({
            "Id": img.id.to_string(),
            "RepoTags": img.repo_tags.iter().map(|t| t.familiar()).collect::<Vec<_>>(),
            "RepoDigests": img.repo_digests().iter().map(|t| t.familiar()).collect::<Vec<_>>(),
            "Parent": img.parent.as_ref().map(|p| p.to_string()).unwrap_or_default(),
            "Comment": cfg.get("comment").cloned().unwrap_or_else(|| "".into()),
            "Created": img.created.clone().unwrap_or_default(),
            "Author": cfg.get("author").cloned().unwrap_or_else(|| "".into()),
            "Container": cfg.get("container").cloned().unwrap_or_else(|| "".into()),
            "ContainerConfig": docker_config(cfg.get("container_config")),
            "DockerVersion": cfg.get("docker_version").cloned().unwrap_or_else(|| "".into()),
            "Config": docker_config(cfg.get("config")),
            "Architecture": cfg.get("architecture").cloned().unwrap_or_else(|| "".into()),
            "Os": cfg.get("os").cloned().unwrap_or_else(|| "".into()),
            "Size": img.size,
            "VirtualSize": img.size,
            "GraphDriver": {"Name": self.layers.driver().name(), "Data": graph},
            "RootFS": {
                "Type": "layers",
                "Layers": img.layers.iter().map(|l| l.diff_id.to_string()).collect::<Vec<_>>(),
            },
            "Metadata": {"LastTagTime": ""},
        });
        // Docker leaves Variant out when the image has none (omitempty).
        if let (Some(v), Some(o)) = (cfg.get("variant"), doc.as_object_mut()) {
            o.insert("Variant".into(), v.clone());
        }
        Ok(doc)
    }

    /// `system df`.
    pub fn disk_usage(&self) -> Result<DiskUsage> {
        let mut u = DiskUsage::default();
        let records = self.containers.list()?;
        // Images: those `images` lists, each once; the size is every layer
        // once; what no container's image needs is reclaimable.
        let mut users: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for c in &records {
            *users.entry(c.image_id.as_str()).or_default() += 1;
        }
        let listed: HashSet<String> = self
            .images(None, false)?
            .into_iter()
            .map(|i| i.id)
            .collect();
        let mut seen = HashSet::new();
        for s in self.images.list()? {
            let id = s.id.to_string();
            if !listed.contains(&id) || !seen.insert(id.clone()) {
                continue;
            }
            let containers = users.get(id.as_str()).copied().unwrap_or(0);
            u.images += 1;
            if containers > 0 {
                u.images_active += 1;
            }
            let (repository, tag) = match s.repo_tags.first() {
                Some(r) => (r.familiar_name(), r.tag().unwrap_or("<none>").to_owned()),
                None => ("<none>".to_owned(), "<none>".to_owned()),
            };
            u.image_rows.push(DfImage {
                repository,
                tag,
                id,
                created: parse_time(s.created.as_deref()),
                size: s.size,
                shared_size: s.shared_size,
                containers,
            });
        }
        u.image_rows.sort_by_key(|i| std::cmp::Reverse(i.created));
        // The size is every layer once plus the blobs berth keeps beside
        // them (the compressed layers, configs, manifests: what a prune
        // frees too). Reclaimable: what no container's image, nor an
        // ancestor of one (kept as a parent), needs.
        let layers = self.images.layers()?;
        let mut all_images = Vec::new();
        let mut seen_ids = HashSet::new();
        for s in self.images.list()? {
            if seen_ids.insert(s.id.clone()) {
                if let Ok(img) = self.images.get(&s.id) {
                    all_images.push(img);
                }
            }
        }
        let blobs_of = |img: &Image| -> Vec<Digest> {
            let mut b = vec![img.id.clone()];
            b.extend(img.manifest_digest.clone());
            b.extend(img.layers.iter().map(|l| l.blob_digest.clone()));
            b
        };
        let mut needed_layers: HashSet<Digest> = HashSet::new();
        let mut needed_blobs: HashSet<Digest> = HashSet::new();
        let by_id: std::collections::HashMap<String, &Image> =
            all_images.iter().map(|i| (i.id.to_string(), i)).collect();
        for id in users.keys() {
            let mut next = by_id.get(*id).copied();
            let mut steps = 0;
            while let Some(img) = next {
                needed_layers.extend(img.layers.iter().map(|l| l.chain_id.clone()));
                needed_blobs.extend(blobs_of(img));
                steps += 1;
                next = img
                    .parent
                    .as_ref()
                    .and_then(|p| by_id.get(&p.to_string()).copied())
                    .filter(|_| steps < 1000);
            }
        }
        let all_blobs: HashSet<Digest> = all_images.iter().flat_map(blobs_of).collect();
        for l in &layers {
            u.images_size += l.size;
            if !needed_layers.contains(&l.chain_id) {
                u.images_reclaimable += l.size;
            }
        }
        for b in &all_blobs {
            let size = self.blobs.allocated(b);
            u.images_size += size;
            if !needed_blobs.contains(b) {
                u.images_reclaimable += size;
            }
        }
        // Containers: the writable layers; a stopped one's is reclaimable.
        let volume_mounts: std::collections::HashMap<String, usize> = records
            .iter()
            .map(|c| {
                let n = c
                    .config
                    .host
                    .mounts
                    .iter()
                    .filter(|m| m.typ == "volume")
                    .count();
                (c.id.to_string(), n)
            })
            .collect();
        for c in self.containers(true)? {
            let size = c.size_rw.unwrap_or(0);
            u.containers += 1;
            u.containers_size += size;
            if matches!(c.state.as_str(), "running" | "paused" | "restarting") {
                u.containers_active += 1;
            } else {
                u.containers_reclaimable += size;
            }
            let local_volumes = volume_mounts.get(c.id.as_str()).copied().unwrap_or(0);
            u.container_rows.push(DfContainer {
                summary: c,
                local_volumes,
            });
        }
        // Volumes: one no container uses is reclaimable.
        for v in self.volume_list()? {
            let size = crate::volume_store::dir_size(&v.mountpoint);
            let links = v.in_use_by.len();
            u.volumes += 1;
            u.volumes_size += size;
            if links > 0 {
                u.volumes_active += 1;
            } else {
                u.volumes_reclaimable += size;
            }
            u.volume_rows.push(DfVolume {
                name: v.name,
                links,
                size,
            });
        }
        Ok(u)
    }
}

/// An image's `config` (or legacy `container_config`) as Docker's inspect shows it: every
/// field of Docker's container config, the image's values over the defaults.
fn docker_config(c: Option<&serde_json::Value>) -> serde_json::Value {
    let mut out = serde_json::json!({
        "Hostname": "", "Domainname": "", "User": "", "AttachStdin": false,
        "AttachStdout": false, "AttachStderr": false, "Tty": false, "OpenStdin": false,
        "StdinOnce": false, "Env": null, "Cmd": null, "Image": "", "Volumes": null,
        "WorkingDir": "", "Entrypoint": null, "OnBuild": null, "Labels": null,
    });
    if let (Some(serde_json::Value::Object(src)), Some(dst)) = (c, out.as_object_mut()) {
        for (k, v) in src {
            dst.insert(k.clone(), v.clone());
        }
    }
    out
}

/// Docker's `GraphDriver.Data` of an image or a container: overlay2's
/// directories (LowerDir only when there is a lower layer), null for vfs.
pub(crate) fn graph_data(dirs: Option<&berth_storage::GraphDirs>) -> serde_json::Value {
    let Some(d) = dirs else {
        return serde_json::Value::Null;
    };
    let s = |p: &Path| serde_json::Value::from(p.display().to_string());
    let mut m = serde_json::Map::new();
    if !d.lower.is_empty() {
        let lower: Vec<String> = d.lower.iter().map(|p| p.display().to_string()).collect();
        m.insert("LowerDir".into(), lower.join(":").into());
    }
    m.insert("MergedDir".into(), s(&d.merged));
    m.insert("UpperDir".into(), s(&d.upper));
    m.insert("WorkDir".into(), s(&d.work));
    serde_json::Value::Object(m)
}
