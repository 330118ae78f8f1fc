//! COPY, ADD and WORKDIR: the steps that write files into a work area
//! over the current image (no container runs), and ADD's archive checks.

use super::{other, Builder, Result, Stage};
use crate::context::{self, Entry, Kind, Meta, Source, Tree};
use crate::ignore::clean;
use crate::parser::{CopyArgs, Instruction};
use crate::shell;
use serde_json::json;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

impl Builder<'_> {
    pub(super) fn workdir(&mut self, st: &mut Stage, path: &str) -> Result<()> {
        let text = format!("WORKDIR {path}");
        let created_by = format!("{} #(nop)  {text}", st.shell().join(" "));
        let key = self.key(st, &["WORKDIR", path]);
        if self.cached(st, &key)? {
            return Ok(());
        }
        st.cfg()["WorkingDir"] = json!(path);
        let ws = self.engine.build_workspace(st.image.as_ref())?;
        let rel = context::resolve_in_root(ws.rootfs(), Path::new(path), true)
            .map_err(|e| other(format!("WORKDIR {path}: {e}")))?;
        if !ws.rootfs().join(&rel).is_dir() && !rel.as_os_str().is_empty() {
            let entry = Entry {
                source: Source::Bytes(Vec::new()),
                dest: rel,
                kind: Kind::Dir,
                mode: 0o755,
                mtime: self.now_secs(),
                size: 0,
            };
            self.write_entries(&ws, &[entry], Meta::default())?;
        }
        self.commit(st, &key, Some(ws.name()), created_by, true)
    }

    fn now_secs(&self) -> i64 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        match self.opts.source_date_epoch {
            Some(e) => now.min(e),
            None => now,
        }
    }

    pub(super) fn write_entries(
        &self,
        ws: &berth_engine::Workspace<'_>,
        entries: &[Entry],
        meta: Meta,
    ) -> Result<()> {
        let (r, w) = std::io::pipe().map_err(|e| other(format!("pipe: {e}")))?;
        std::thread::scope(|s| {
            let writer = s.spawn(move || {
                context::write_tar(entries, meta, std::io::BufWriter::with_capacity(1 << 20, w))
            });
            let res = ws.copy_in(Path::new("/"), r);
            let wres = writer
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("tar writer panicked")));
            res?;
            wres.map_err(|e| other(format!("copy: {e}")))?;
            Ok(())
        })
    }

    /// The sources of a COPY/ADD in `tree`, each with its entries
    /// (destinations relative to where the source lands).
    fn collect_sources(
        &self,
        st: &Stage,
        ins: &Instruction,
        a: &CopyArgs,
        add: bool,
        tree: &Tree<'_>,
        from_image: bool,
    ) -> Result<Vec<Src>> {
        let kw = if add { "ADD" } else { "COPY" };
        let fail = |msg: String| other(format!("{kw} failed: {msg}"));
        let mut srcs: Vec<Src> = Vec::new();
        let vars = st.vars();
        for s in &a.srcs {
            if let Some(doc) = s
                .strip_prefix("<<")
                .map(|n| {
                    n.trim_start_matches('-')
                        .trim_matches(|c| c == '"' || c == '\'')
                })
                .and_then(|n| a.heredocs.iter().find(|h| h.name == n))
            {
                let text = if doc.expand {
                    shell::expand_heredoc(&doc.text(), &vars, self.escape)
                        .map_err(|e| self.line_err(ins.line, e))?
                } else {
                    doc.text()
                };
                let size = text.len() as u64;
                srcs.push(Src {
                    name: doc.name.clone(),
                    is_dir: false,
                    archive: false,
                    entries: vec![Entry {
                        source: Source::Bytes(text.into_bytes()),
                        dest: PathBuf::new(),
                        kind: Kind::File,
                        mode: 0o644,
                        mtime: self.now_secs(),
                        size,
                    }],
                });
                continue;
            }
            let s = self.expand(st, ins, s)?;
            if add && (s.contains("://") || s.starts_with("git@")) {
                return Err(fail(format!(
                    "{s}: ADD from a URL is not supported: this builder has no network to fetch it"
                )));
            }
            let found = tree.matches(&s).map_err(|e| fail(format!("{s}: {e}")))?;
            if found.is_empty() {
                return Err(fail(if context::has_glob(&s) {
                    format!("no source files were specified (nothing matches {s})")
                } else if from_image {
                    format!("stat {s}: file does not exist")
                } else {
                    format!("file not found in build context or excluded by .dockerignore: stat {s}: file does not exist")
                }));
            }
            for rel in found {
                let mut entries = Vec::new();
                tree.entries(&rel, Path::new(""), &mut entries)
                    .map_err(|e| fail(format!("{rel}: {e}")))?;
                let is_dir = entries.first().is_some_and(|e| e.kind == Kind::Dir);
                let archive = add
                    && match entries.first().map(|e| (&e.source, &e.kind)) {
                        Some((Source::Path(p), Kind::File)) => is_archive(p),
                        _ => false,
                    };
                let name = Path::new(&rel)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| rel.clone());
                srcs.push(Src {
                    name,
                    is_dir,
                    archive,
                    entries,
                });
            }
        }
        Ok(srcs)
    }

    pub(super) fn copy(
        &mut self,
        st: &mut Stage,
        ins: &Instruction,
        a: CopyArgs,
        add: bool,
    ) -> Result<()> {
        let kw = if add { "ADD" } else { "COPY" };
        let fail = |msg: String| other(format!("{kw} failed: {msg}"));
        let dest_raw = self.expand(st, ins, &a.dest)?;
        let dest_abs = if dest_raw.starts_with('/') {
            dest_raw.clone()
        } else {
            format!("{}/{dest_raw}", st.workdir())
        };
        let dest_dir_syntax =
            dest_raw.ends_with('/') || dest_raw == "." || dest_raw.ends_with("/.");
        let dest_clean = clean(&dest_abs);
        let chown = a
            .chown
            .as_ref()
            .map(|c| self.expand(st, ins, c))
            .transpose()?;
        let chmod = match &a.chmod {
            Some(m) => {
                let m = self.expand(st, ins, m)?;
                Some(
                    u32::from_str_radix(&m, 8)
                        .ok()
                        .filter(|v| *v <= 0o7777)
                        .ok_or_else(|| {
                            self.line_err(ins.line, format!("invalid chmod parameter: {m:?}"))
                        })?,
                )
            }
            None => None,
        };
        // The source tree: the context, an earlier stage or an image.
        let from_image = match &a.from {
            None => None,
            Some(f) => {
                let f = self.expand(st, ins, f)?;
                Some(self.stage_or_image(&f)?)
            }
        };
        let from_id = from_image
            .as_ref()
            .map(|i| i.as_ref().map_or("scratch".to_owned(), |d| d.to_string()))
            .unwrap_or_default();
        let flags = format!(
            "chown={} chmod={} from={from_id}",
            chown.clone().unwrap_or_default(),
            chmod.map(|m| format!("{m:o}")).unwrap_or_default()
        );
        // What the step copies, for its key: the context's files by content;
        // an image's by the image's ID (its files never change) and the
        // sources as written, so a cached step mounts nothing.
        let ignore = self.ignore.clone();
        let (mut srcs, content) = match &from_image {
            None => {
                let tree = Tree::open(&self.opts.context, Some(&ignore))
                    .map_err(|e| fail(format!("{}: {e}", self.opts.context.display())))?;
                let srcs = self.collect_sources(st, ins, &a, add, &tree, false)?;
                let mut digest_input: Vec<Entry> = Vec::new();
                for (i, s) in srcs.iter().enumerate() {
                    for e in &s.entries {
                        let mut e = e.clone();
                        e.dest =
                            PathBuf::from(format!("{i}:{}:{}", s.name, s.archive)).join(&e.dest);
                        digest_input.push(e);
                    }
                }
                let cache = &self.cache;
                let digest = context::digest_entries(&digest_input, &mut |p, m, f| {
                    cache.file_digest(p, m, f)
                })
                .map_err(|e| fail(e.to_string()))?;
                (Some(srcs), digest)
            }
            Some(_) => {
                let mut words = Vec::new();
                for w in &a.srcs {
                    words.push(self.expand(st, ins, w)?);
                }
                for h in &a.heredocs {
                    words.push(h.text());
                }
                (
                    None,
                    berth_digest::Digest::of(format!("{words:?}").as_bytes()),
                )
            }
        };
        let what = match &srcs {
            Some(v) if v.len() == 1 && !v[0].is_dir => "file",
            _ => "dir",
        };
        let created_by = format!(
            "{} #(nop) {kw} {what}:{} in {dest_abs} ",
            st.shell().join(" "),
            content.hex()
        );
        let key = self.key(
            st,
            &[
                kw,
                &flags,
                &dest_abs,
                &dest_dir_syntax.to_string(),
                &content.to_string(),
            ],
        );
        if self.cached(st, &key)? || self.cached_in_sources(st, &key, &created_by)? {
            return Ok(());
        }
        // Not cached. Sources from an image: mounted now.
        let src_ws = match &from_image {
            Some(img) => Some(self.engine.build_workspace(img.as_ref())?),
            None => None,
        };
        if let Some(ws) = &src_ws {
            let tree = Tree::open(ws.rootfs(), None)
                .map_err(|e| fail(format!("{}: {e}", ws.rootfs().display())))?;
            srcs = Some(self.collect_sources(st, ins, &a, add, &tree, true)?);
        }
        let srcs = srcs.unwrap_or_default();
        let multiple = srcs.len() > 1;
        if multiple && !dest_dir_syntax {
            return Err(fail(format!(
                "When using {kw} with more than one source file, the destination must be a directory and end with a /"
            )));
        }
        // Not cached: place the entries in a work area over the image.
        let ws = self.engine.build_workspace(st.image.as_ref())?;
        let root = ws.rootfs().to_owned();
        let (uid, gid) = match &chown {
            Some(c) => context::resolve_chown(&root, c).map_err(fail)?,
            None => (0, 0),
        };
        let meta = Meta {
            uid,
            gid,
            chmod,
            clamp_mtime: self.opts.source_date_epoch,
        };
        let dest_rel = context::resolve_in_root(&root, Path::new(&dest_clean), true)
            .map_err(|e| fail(e.to_string()))?;
        let dest_is_dir = dest_dir_syntax || multiple || root.join(&dest_rel).is_dir();
        let mut resolved_dirs: BTreeMap<PathBuf, PathBuf> = BTreeMap::new();
        let mut place = |p: &Path| -> Result<PathBuf> {
            let parent = p.parent().unwrap_or(Path::new("")).to_owned();
            let name = p.file_name().map(|n| n.to_owned());
            let dir = match resolved_dirs.get(&parent) {
                Some(d) => d.clone(),
                None => {
                    let d = context::resolve_in_root(&root, &parent, true)
                        .map_err(|e| fail(e.to_string()))?;
                    resolved_dirs.insert(parent, d.clone());
                    d
                }
            };
            Ok(match name {
                Some(n) => dir.join(n),
                None => dir,
            })
        };
        let mut entries: Vec<Entry> = Vec::new();
        let mut archives: Vec<(context::TreeFile, PathBuf)> = Vec::new();
        for s in &srcs {
            if s.is_dir {
                for (j, e) in s.entries.iter().enumerate() {
                    // The directory itself: only when its destination is new.
                    if j == 0 && (dest_rel.as_os_str().is_empty() || root.join(&dest_rel).exists())
                    {
                        continue;
                    }
                    let mut e = e.clone();
                    e.dest = if j == 0 {
                        dest_rel.clone()
                    } else {
                        place(&dest_rel.join(&e.dest))?
                    };
                    entries.push(e);
                }
                continue;
            }
            let target = if dest_is_dir {
                place(&dest_rel.join(&s.name))?
            } else {
                dest_rel.clone()
            };
            if s.archive {
                if let Some(Source::Path(p)) = s.entries.first().map(|e| &e.source) {
                    archives.push((p.clone(), dest_rel.clone()));
                }
                continue;
            }
            if let Some(e) = s.entries.first() {
                let mut e = e.clone();
                e.dest = target;
                entries.push(e);
            }
        }
        // Missing destination directories are created with the copy's owner.
        if (dest_is_dir || !archives.is_empty())
            && !root.join(&dest_rel).is_dir()
            && !dest_rel.as_os_str().is_empty()
            && !entries.iter().any(|e| e.dest == dest_rel)
        {
            entries.insert(
                0,
                Entry {
                    source: Source::Bytes(Vec::new()),
                    dest: dest_rel.clone(),
                    kind: Kind::Dir,
                    mode: 0o755,
                    mtime: self.now_secs(),
                    size: 0,
                },
            );
        }
        if !entries.is_empty() {
            self.write_entries(&ws, &entries, meta)?;
        }
        for (archive, dir) in archives {
            let (f, _) = archive
                .open()
                .map_err(|e| fail(format!("{}: {e}", archive.abs.display())))?;
            let reader: Box<dyn Read + Send> = if is_gzip(&archive) {
                Box::new(flate2::read::MultiGzDecoder::new(std::io::BufReader::new(
                    f,
                )))
            } else {
                Box::new(std::io::BufReader::new(f))
            };
            ws.copy_in(&Path::new("/").join(&dir), reader)
                .map_err(|e| fail(format!("extract {}: {e}", archive.abs.display())))?;
        }
        drop(src_ws);
        self.commit(st, &key, Some(ws.name()), created_by, false)
    }
}

/// One source of a COPY/ADD and the entries it makes.
struct Src {
    name: String,
    is_dir: bool,
    archive: bool,
    entries: Vec<Entry>,
}

fn magic(p: &context::TreeFile) -> Vec<u8> {
    let mut buf = vec![0u8; 512];
    let n = p
        .open()
        .and_then(|(mut f, _)| {
            let mut total = 0;
            while total < buf.len() {
                let k = f.read(&mut buf[total..])?;
                if k == 0 {
                    break;
                }
                total += k;
            }
            Ok(total)
        })
        .unwrap_or(0);
    buf.truncate(n);
    buf
}

fn is_gzip(p: &context::TreeFile) -> bool {
    magic(p).starts_with(&[0x1f, 0x8b])
}

/// A local file ADD extracts: a tar, plain or gzip-compressed.
fn is_archive(p: &context::TreeFile) -> bool {
    let m = magic(p);
    if m.starts_with(&[0x1f, 0x8b]) {
        let mut head = Vec::new();
        let ok = p
            .open()
            .map(|(f, _)| {
                flate2::read::MultiGzDecoder::new(f)
                    .take(512)
                    .read_to_end(&mut head)
                    .is_ok()
            })
            .unwrap_or(false);
        return ok && head.len() >= 262 && &head[257..262] == b"ustar";
    }
    m.len() >= 262 && &m[257..262] == b"ustar"
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::io::Write;

    #[test]
    fn archives_are_recognised() {
        let d = tempfile::TempDir::new().unwrap();
        let tar_path = d.path().join("a.tar");
        let mut b = tar::Builder::new(std::fs::File::create(&tar_path).unwrap());
        let mut h = tar::Header::new_ustar();
        h.set_size(2);
        h.set_mode(0o644);
        b.append_data(&mut h, "x", &b"hi"[..]).unwrap();
        b.into_inner().unwrap();
        let tree = Tree::open(d.path(), None).unwrap();
        let file = |n: &str| tree.file(Path::new(n));
        assert!(is_archive(&file("a.tar")));
        let gz = d.path().join("a.tgz");
        let mut enc = flate2::write::GzEncoder::new(
            std::fs::File::create(&gz).unwrap(),
            flate2::Compression::fast(),
        );
        enc.write_all(&std::fs::read(&tar_path).unwrap()).unwrap();
        enc.finish().unwrap();
        assert!(is_archive(&file("a.tgz")) && is_gzip(&file("a.tgz")));
        std::fs::write(d.path().join("t.txt"), "not a tar").unwrap();
        assert!(!is_archive(&file("t.txt")));
    }
}
