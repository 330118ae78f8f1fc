//! Image configs that berth writes itself: `import` (a rootfs tarball becomes a one-layer
//! image) and `commit` (a parent's config plus one layer), with Docker's `--change`
//! instructions applied.
//!
//! Configs are edited as JSON values, so fields that `oci-spec` does not model
//! (`Healthcheck`, `OnBuild`, `Shell`, `ArgsEscaped`, …) survive a commit untouched.

use crate::blobs::BlobStore;
use crate::db::{NewImage, NewLayer};
use crate::{Error, ImageId, Result};
use berth_digest::Digest;
use serde_json::{json, Map, Value};
use std::io::{BufReader, Read};

/// The `--change` instructions Docker accepts for import and commit.
pub const SUPPORTED_CHANGES: &[&str] = &[
    "CMD",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "LABEL",
    "USER",
    "VOLUME",
    "WORKDIR",
    "STOPSIGNAL",
];

/// The host's platform as OCI names it: (`amd64`, `linux`), (`arm64`, `linux`), …
pub fn host_platform() -> (&'static str, &'static str) {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "loongarch64" => "loong64",
        other => other,
    };
    (arch, "linux")
}

/// Now as RFC 3339 UTC with nanoseconds, as Docker writes `created`.
pub fn now_rfc3339() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(d.as_secs() as i64, d.subsec_nanos())
}

/// Unix seconds + nanoseconds as `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`.
pub fn rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Applies Docker `--change` lines (Dockerfile instructions) to a config's `config` object.
pub fn apply_changes(config: &mut Map<String, Value>, changes: &[String]) -> Result<()> {
    for line in changes {
        apply_change(config, line)?;
    }
    Ok(())
}

fn apply_change(c: &mut Map<String, Value>, line: &str) -> Result<()> {
    let err = |msg: String| Error::Change {
        line: line.to_owned(),
        msg,
    };
    let trimmed = line.trim();
    let (instr, rest) = match trimmed.split_once(char::is_whitespace) {
        Some((i, r)) => (i, r.trim()),
        None => (trimmed, ""),
    };
    let instr_up = instr.to_ascii_uppercase();
    if !SUPPORTED_CHANGES.contains(&instr_up.as_str()) {
        return Err(err(format!(
            "unsupported instruction {instr:?} (supported: {})",
            SUPPORTED_CHANGES.join(", ")
        )));
    }
    if rest.is_empty() {
        return Err(err(format!("{instr_up} requires at least one argument")));
    }
    match instr_up.as_str() {
        "CMD" | "ENTRYPOINT" => {
            let v = exec_or_shell(rest).map_err(err)?;
            let key = if instr_up == "CMD" {
                "Cmd"
            } else {
                "Entrypoint"
            };
            c.insert(key.into(), json!(v));
        }
        "ENV" => {
            let pairs = key_values(rest, true).map_err(err)?;
            let env = c.entry("Env").or_insert_with(|| json!([]));
            if !env.is_array() {
                *env = json!([]);
            }
            if let Some(list) = env.as_array_mut() {
                for (k, v) in pairs {
                    let entry = json!(format!("{k}={v}"));
                    let prefix = format!("{k}=");
                    match list
                        .iter_mut()
                        .find(|e| e.as_str().is_some_and(|s| s.starts_with(&prefix) || s == k))
                    {
                        Some(e) => *e = entry,
                        None => list.push(entry),
                    }
                }
            }
        }
        "LABEL" => {
            let pairs = key_values(rest, false).map_err(err)?;
            let labels = object_field(c, "Labels");
            for (k, v) in pairs {
                labels.insert(k, json!(v));
            }
        }
        "EXPOSE" => {
            let mut ports = Vec::new();
            for p in shell_words(rest).map_err(err)? {
                ports.extend(expand_port(&p).map_err(err)?);
            }
            let exposed = object_field(c, "ExposedPorts");
            for p in ports {
                exposed.insert(p, json!({}));
            }
        }
        "VOLUME" => {
            let vols = if rest.starts_with('[') {
                json_array(rest).map_err(err)?
            } else {
                shell_words(rest).map_err(err)?
            };
            if vols.iter().any(|v| v.is_empty()) {
                return Err(err("VOLUME specified can not be an empty string".into()));
            }
            let volumes = object_field(c, "Volumes");
            for v in vols {
                volumes.insert(v, json!({}));
            }
        }
        "USER" => {
            c.insert("User".into(), json!(single(rest).map_err(err)?));
        }
        "STOPSIGNAL" => {
            c.insert("StopSignal".into(), json!(single(rest).map_err(err)?));
        }
        "WORKDIR" => {
            let w = single(rest).map_err(err)?;
            let w = if w.starts_with('/') {
                w
            } else {
                let base = c.get("WorkingDir").and_then(Value::as_str).unwrap_or("/");
                format!("{}/{w}", base.trim_end_matches('/'))
            };
            c.insert("WorkingDir".into(), json!(w));
        }
        _ => {}
    }
    Ok(())
}

fn object_field<'a>(c: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let v = c.entry(key).or_insert_with(|| json!({}));
    if !v.is_object() {
        *v = json!({});
    }
    v.as_object_mut()
        .expect("the value was just made an object")
}

fn single(rest: &str) -> Result<String, String> {
    let w = shell_words(rest)?;
    match w.as_slice() {
        [one] => Ok(one.clone()),
        _ => Err(format!("expected one argument, got {}", w.len())),
    }
}

fn json_array(s: &str) -> Result<Vec<String>, String> {
    serde_json::from_str::<Vec<String>>(s).map_err(|e| format!("malformed JSON array: {e}"))
}

/// `["a","b"]` (exec form) or `a b` (shell form → `/bin/sh -c "a b"`).
fn exec_or_shell(rest: &str) -> Result<Vec<String>, String> {
    if rest.starts_with('[') {
        if let Ok(v) = serde_json::from_str::<Vec<String>>(rest) {
            return Ok(v);
        }
        // Docker falls back to the shell form for a string that is not a JSON array.
    }
    Ok(vec!["/bin/sh".into(), "-c".into(), rest.into()])
}

/// Splits on whitespace, honouring '…', "…" and backslash escapes.
fn shell_words(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(ch) = chars.next() {
        match ch {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(x) => cur.push(x),
                        None => return Err("unterminated single quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(x) => cur.push(x),
                            None => return Err("unterminated double quote".into()),
                        },
                        Some(x) => cur.push(x),
                        None => return Err("unterminated double quote".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(x) = chars.next() {
                    cur.push(x);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// `k=v k2="v 2"`; with `legacy`, also `ENV k some value`.
fn key_values(rest: &str, legacy: bool) -> Result<Vec<(String, String)>, String> {
    let words = shell_words(rest)?;
    let first_has_eq = words.first().is_some_and(|w| w.contains('='));
    if !first_has_eq {
        if legacy && words.len() >= 2 {
            let (k, v) = rest
                .split_once(char::is_whitespace)
                .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
                .unwrap_or_default();
            return Ok(vec![(k, v)]);
        }
        return Err("expected KEY=VALUE".into());
    }
    words
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
            _ => Err(format!("{w:?} is not KEY=VALUE")),
        })
        .collect()
}

/// `80` → `80/tcp`; `53/udp`; `8000-8002` → three ports.
fn expand_port(p: &str) -> Result<Vec<String>, String> {
    let (range, proto) = match p.split_once('/') {
        Some((r, proto)) => (r, proto.to_ascii_lowercase()),
        None => (p, "tcp".to_owned()),
    };
    if !["tcp", "udp", "sctp"].contains(&proto.as_str()) {
        return Err(format!("invalid protocol in port {p:?}"));
    }
    let num = |s: &str| {
        s.parse::<u16>()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| format!("invalid port {p:?}"))
    };
    let (lo, hi) = match range.split_once('-') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => {
            let n = num(range)?;
            (n, n)
        }
    };
    if lo > hi {
        return Err(format!("invalid port range {p:?}"));
    }
    Ok((lo..=hi).map(|n| format!("{n}/{proto}")).collect())
}

/// What [`import_rootfs_tar`] made: the image to register, and the layer's size.
#[derive(Debug, Clone)]
pub struct Imported {
    pub image: NewImage,
    pub id: ImageId,
    /// The uncompressed tar's digest: its blob digest and its diff_id.
    pub diff_id: Digest,
    pub size: u64,
}

/// Options of `berth import`.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    pub changes: Vec<String>,
    /// `--message`: the history entry's comment.
    pub message: Option<String>,
    /// `--platform` as (architecture, os, variant); the host's by default.
    pub platform: Option<(String, String, Option<String>)>,
}

/// `docker import`: the tarball (plain, gzip or zstd) becomes one uncompressed layer blob,
/// whose digest is also its diff_id, and a config with that layer, a history entry and the
/// `--change`s. The caller registers `image` (and has storage apply the layer).
pub fn import_rootfs_tar(
    reader: impl Read + Send,
    blobs: &BlobStore,
    opts: &ImportOptions,
) -> Result<Imported> {
    let mut config = Map::new();
    apply_changes(&mut config, &opts.changes)?;
    let stream = crate::archive::decompress(BufReader::new(reader))
        .map_err(|e| Error::Import(format!("reading the tarball: {e}")))?;
    let (diff_id, size) = blobs
        .put(stream, None)
        .map_err(|e| Error::Import(format!("storing the layer: {e}")))?;
    // It must be a tar: walk it once so garbage is refused here, not at apply time.
    if let Err(msg) = check_tar(blobs, &diff_id) {
        let _ = blobs.remove(&diff_id);
        return Err(Error::Import(format!("not a valid tar archive: {msg}")));
    }
    let (arch, os) = host_platform();
    let (arch, os, variant) = match &opts.platform {
        Some((a, o, v)) => (a.clone(), o.clone(), v.clone()),
        None => (arch.to_owned(), os.to_owned(), None),
    };
    let now = now_rfc3339();
    let mut history = Map::new();
    history.insert("created".into(), json!(now));
    history.insert("created_by".into(), json!("import"));
    if let Some(m) = &opts.message {
        history.insert("comment".into(), json!(m));
    }
    let mut doc = Map::new();
    doc.insert("architecture".into(), json!(arch));
    doc.insert("os".into(), json!(os));
    if let Some(v) = variant {
        doc.insert("variant".into(), json!(v));
    }
    doc.insert("created".into(), json!(now));
    if let Some(m) = &opts.message {
        doc.insert("comment".into(), json!(m));
    }
    doc.insert("config".into(), Value::Object(config));
    doc.insert(
        "rootfs".into(),
        json!({"type": "layers", "diff_ids": [diff_id.to_string()]}),
    );
    doc.insert("history".into(), json!([history]));
    let config_json = serde_json::to_vec(&Value::Object(doc))
        .map_err(|e| Error::Import(format!("encoding the config: {e}")))?;
    let id = blobs.put_bytes(&config_json, None)?;
    Ok(Imported {
        image: NewImage {
            digest_refs: Vec::new(),
            config_json,
            manifest: None,
            layers: vec![NewLayer {
                diff_id: diff_id.clone(),
                blob_digest: diff_id.clone(),
                media_type: crate::archive::MEDIA_OCI_LAYER.into(),
                size,
            }],
            parent: None,
            tags: Vec::new(),
        },
        id,
        diff_id,
        size,
    })
}

fn check_tar(blobs: &BlobStore, d: &Digest) -> Result<(), String> {
    let f = blobs.open(d).map_err(|e| e.to_string())?;
    let mut a = tar::Archive::new(BufReader::new(f));
    let mut n = 0;
    for e in a.entries().map_err(|e| e.to_string())? {
        let mut e = e.map_err(|e| e.to_string())?;
        std::io::copy(&mut e, &mut std::io::sink()).map_err(|e| e.to_string())?;
        n += 1;
    }
    // An empty file is a valid (empty) tar for the tar crate; Docker refuses it too.
    let len = blobs.size(d).map_err(|e| e.to_string())?;
    if n == 0 && len == 0 {
        return Err("the tarball is empty".into());
    }
    Ok(())
}

/// Options of `berth commit`.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    pub author: Option<String>,
    pub comment: Option<String>,
    pub changes: Vec<String>,
    /// The container's config (Docker's `Config` object: Cmd, Env, …) to start from;
    /// the parent image's `config` if `None`.
    pub container_config: Option<Value>,
    /// The history entry's `created_by` (Docker puts the container's command there).
    pub created_by: Option<String>,
}

/// The config of `commit`: the parent's config (or an empty one) with `new_diff_id`
/// appended to rootfs.diff_ids (`None`: an empty layer, recorded as such in history), a
/// history entry, a fresh `created`, and `--change`s applied. Returns the config bytes.
pub fn commit_config(
    parent_config: Option<&[u8]>,
    new_diff_id: Option<&Digest>,
    opts: &CommitOptions,
) -> Result<Vec<u8>> {
    let cfg_err = |msg: String| Error::Config {
        what: "of the parent image".into(),
        msg,
    };
    let mut doc: Map<String, Value> = match parent_config {
        Some(b) => {
            serde_json::from_slice(b).map_err(|e| cfg_err(format!("malformed JSON: {e}")))?
        }
        None => {
            let (arch, os) = host_platform();
            let mut m = Map::new();
            m.insert("architecture".into(), json!(arch));
            m.insert("os".into(), json!(os));
            m
        }
    };
    let mut config = match &opts.container_config {
        Some(Value::Object(m)) => m.clone(),
        Some(_) => return Err(cfg_err("the container config is not a JSON object".into())),
        None => match doc.get("config") {
            Some(Value::Object(m)) => m.clone(),
            _ => Map::new(),
        },
    };
    apply_changes(&mut config, &opts.changes)?;
    doc.insert("config".into(), Value::Object(config));
    // Docker-only fields describing the container that made the parent do not carry over.
    doc.remove("container");
    doc.remove("container_config");
    doc.remove("id");
    doc.remove("parent");
    let now = now_rfc3339();
    doc.insert("created".into(), json!(now));
    match &opts.author {
        Some(a) => {
            doc.insert("author".into(), json!(a));
        }
        None => {
            doc.remove("author");
        }
    }
    // Docker keeps the commit message at the top level too (`inspect`'s Comment).
    match &opts.comment {
        Some(c) => {
            doc.insert("comment".into(), json!(c));
        }
        None => {
            doc.remove("comment");
        }
    }
    let rootfs = doc
        .entry("rootfs")
        .or_insert_with(|| json!({"type": "layers", "diff_ids": []}));
    if let Some(d) = new_diff_id {
        match rootfs.get_mut("diff_ids").and_then(Value::as_array_mut) {
            Some(ids) => ids.push(json!(d.to_string())),
            None => return Err(cfg_err("rootfs.diff_ids is not an array".into())),
        }
    }
    let mut h = Map::new();
    h.insert("created".into(), json!(now));
    if let Some(a) = &opts.author {
        h.insert("author".into(), json!(a));
    }
    if let Some(c) = &opts.created_by {
        h.insert("created_by".into(), json!(c));
    }
    if let Some(c) = &opts.comment {
        h.insert("comment".into(), json!(c));
    }
    if new_diff_id.is_none() {
        h.insert("empty_layer".into(), json!(true));
    }
    let history = doc.entry("history").or_insert_with(|| json!([]));
    match history.as_array_mut() {
        Some(list) => list.push(Value::Object(h)),
        None => *history = json!([h]),
    }
    let bytes = serde_json::to_vec(&Value::Object(doc)).map_err(|e| cfg_err(e.to_string()))?;
    // It must still be a config oci-spec understands.
    crate::db::parse_config(&bytes, "of the committed image")?;
    Ok(bytes)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn apply(lines: &[&str]) -> Result<Map<String, Value>> {
        let mut c = Map::new();
        c.insert("Env".into(), json!(["PATH=/bin", "A=old"]));
        c.insert("WorkingDir".into(), json!("/srv"));
        apply_changes(
            &mut c,
            &lines.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )?;
        Ok(c)
    }

    #[test]
    fn changes() {
        let c = apply(&[
            r#"CMD ["echo", "hi"]"#,
            "ENTRYPOINT top -b",
            "ENV A=new B=\"two words\"",
            "env C some value",
            "EXPOSE 80 53/udp 8000-8001",
            "LABEL a=b \"c d\"=e",
            "USER nobody",
            "VOLUME /data /logs",
            r#"VOLUME ["/x"]"#,
            "WORKDIR app",
            "STOPSIGNAL SIGINT",
        ])
        .unwrap();
        assert_eq!(c["Cmd"], json!(["echo", "hi"]));
        assert_eq!(c["Entrypoint"], json!(["/bin/sh", "-c", "top -b"]));
        assert_eq!(
            c["Env"],
            json!(["PATH=/bin", "A=new", "B=two words", "C=some value"])
        );
        assert_eq!(
            c["ExposedPorts"],
            json!({"80/tcp": {}, "53/udp": {}, "8000/tcp": {}, "8001/tcp": {}})
        );
        assert_eq!(c["Labels"], json!({"a": "b", "c d": "e"}));
        assert_eq!(c["User"], json!("nobody"));
        assert_eq!(c["Volumes"], json!({"/data": {}, "/logs": {}, "/x": {}}));
        assert_eq!(c["WorkingDir"], json!("/srv/app"));
        assert_eq!(c["StopSignal"], json!("SIGINT"));
    }

    #[test]
    fn bad_changes() {
        for (line, msg) in [
            ("RUN make", "unsupported instruction \"RUN\""),
            ("FROM x", "unsupported instruction"),
            ("CMD", "requires at least one argument"),
            ("EXPOSE 99999", "invalid port"),
            ("EXPOSE 80/foo", "invalid protocol"),
            ("EXPOSE 90-80", "invalid port range"),
            ("LABEL novalue", "KEY=VALUE"),
            ("ENV =x", "KEY=VALUE"),
            ("USER a b", "expected one argument"),
            ("ENV A=\"open", "unterminated"),
            ("VOLUME [\"\"]", "empty string"),
        ] {
            let e = apply(&[line]).unwrap_err().to_string();
            assert!(e.starts_with(&format!("invalid --change {line:?}")), "{e}");
            assert!(e.contains(msg), "{line}: {e}");
        }
    }

    #[test]
    fn time_format() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc3339(951_782_400, 5), "2000-02-29T00:00:00.000000005Z");
        assert_eq!(rfc3339(1_700_000_000, 0), "2023-11-14T22:13:20.000000000Z");
        assert!(now_rfc3339().ends_with('Z'));
    }

    #[test]
    fn commit() {
        let parent = json!({
            "architecture": "amd64", "os": "linux", "author": "old",
            "config": {"Cmd": ["sh"], "Healthcheck": {"Test": ["CMD", "true"]}},
            "container_config": {"Cmd": ["x"]},
            "rootfs": {"type": "layers", "diff_ids": [Digest::of(b"a").to_string()]},
            "history": [{"created_by": "ADD a"}]
        });
        let parent = serde_json::to_vec(&parent).unwrap();
        let d = Digest::of(b"b");
        let opts = CommitOptions {
            author: Some("me".into()),
            comment: Some("msg".into()),
            changes: vec!["ENV X=1".into()],
            container_config: None,
            created_by: Some("/bin/sh -c touch f".into()),
        };
        let out: Value =
            serde_json::from_slice(&commit_config(Some(&parent), Some(&d), &opts).unwrap())
                .unwrap();
        assert_eq!(out["rootfs"]["diff_ids"].as_array().unwrap().len(), 2);
        assert_eq!(out["rootfs"]["diff_ids"][1], json!(d.to_string()));
        assert_eq!(out["config"]["Env"], json!(["X=1"]));
        assert_eq!(out["config"]["Healthcheck"]["Test"], json!(["CMD", "true"]));
        assert_eq!(out["author"], json!("me"));
        assert!(out.get("container_config").is_none());
        let h = out["history"].as_array().unwrap();
        assert_eq!(h.len(), 2);
        assert_eq!(h[1]["comment"], json!("msg"));
        assert_eq!(h[1]["created_by"], json!("/bin/sh -c touch f"));
        // No new layer: an empty_layer history entry, same diff_ids.
        let out: Value = serde_json::from_slice(
            &commit_config(Some(&parent), None, &CommitOptions::default()).unwrap(),
        )
        .unwrap();
        assert_eq!(out["rootfs"]["diff_ids"].as_array().unwrap().len(), 1);
        assert_eq!(out["history"][1]["empty_layer"], json!(true));
        assert!(commit_config(Some(b"nope"), None, &CommitOptions::default()).is_err());
    }
}
