//! Manifests as registries serve them: Docker schema 2 and OCI image manifests, Docker
//! manifest lists and OCI indexes; choosing a platform from an index.

use super::{RegistryError, Result};
use crate::archive::{
    MEDIA_DOCKER_MANIFEST, MEDIA_DOCKER_MANIFEST_LIST, MEDIA_OCI_INDEX, MEDIA_OCI_MANIFEST,
};
use berth_digest::Digest;
use serde::Deserialize;

/// What `Accept` asks for on a manifest GET.
pub const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

/// Manifests larger than this are refused (Docker's limit is 4 MiB).
pub const MAX_MANIFEST: u64 = 4 << 20;

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default)]
    pub platform: Option<Platform>,
    #[serde(default)]
    pub urls: Vec<String>,
}

/// An image's platform: `linux/amd64`, `linux/arm64/v8`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    #[serde(default)]
    pub variant: Option<String>,
}

impl Platform {
    /// The machine berth runs on, in Go's names.
    pub fn host() -> Platform {
        let (arch, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", Some("v8")),
            "arm" => ("arm", Some("v7")),
            "x86" => ("386", None),
            "powerpc64" => ("ppc64le", None),
            "s390x" => ("s390x", None),
            "riscv64" => ("riscv64", None),
            other => (other, None),
        };
        Platform {
            os: "linux".into(),
            architecture: arch.into(),
            variant: variant.map(str::to_owned),
        }
    }

    /// Parses `os[/arch[/variant]]` as `--platform` takes it (an omitted arch is the host's).
    pub fn parse(s: &str) -> Result<Platform> {
        let bad = || {
            RegistryError::Invalid(format!(
                "invalid platform {s:?}: expected os[/arch[/variant]], e.g. linux/amd64"
            ))
        };
        let parts: Vec<&str> = s.split('/').collect();
        let ok = |p: &str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        };
        if parts.is_empty() || parts.len() > 3 || !parts.iter().all(|p| ok(p)) {
            return Err(bad());
        }
        let host = Platform::host();
        let mut p = Platform {
            os: parts[0].to_owned(),
            architecture: parts.get(1).map_or(host.architecture, |a| (*a).to_owned()),
            variant: parts.get(2).map(|v| (*v).to_owned()),
        };
        // Docker's normalization.
        match p.architecture.as_str() {
            "x86_64" | "x86-64" => p.architecture = "amd64".into(),
            "aarch64" => p.architecture = "arm64".into(),
            "i386" => p.architecture = "386".into(),
            _ => {}
        }
        if p.architecture == "arm64" && p.variant.as_deref() == Some("v8") {
            p.variant = None;
        }
        Ok(p)
    }

    /// Whether an index entry for `other` serves this platform. A wanted variant must
    /// match (arm64's `v8` is its default); no wanted variant takes any.
    pub fn matches(&self, other: &Platform) -> bool {
        let norm = |p: &Platform| match (p.architecture.as_str(), p.variant.as_deref()) {
            ("arm64", Some("v8")) => None,
            (_, v) => v.map(str::to_owned),
        };
        self.os == other.os
            && self.architecture == other.architecture
            && (norm(self).is_none() || norm(self) == norm(other))
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// A parsed manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manifest {
    Image {
        media_type: String,
        config: Descriptor,
        layers: Vec<Descriptor>,
    },
    Index {
        media_type: String,
        manifests: Vec<Descriptor>,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    #[serde(default)]
    schema_version: Option<u32>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
}

impl Manifest {
    /// Parses `bytes`, whose media type is `content_type` (the response's Content-Type,
    /// falling back to the document's own `mediaType` and shape).
    pub fn parse(bytes: &[u8], content_type: Option<&str>) -> Result<Manifest> {
        let raw: Raw = serde_json::from_slice(bytes)
            .map_err(|e| RegistryError::Invalid(format!("invalid manifest: {e}")))?;
        if raw.schema_version == Some(1) {
            return Err(RegistryError::Invalid(
                "unsupported manifest format: Docker schema 1 (push the image again with a current client)".into(),
            ));
        }
        let ct = content_type
            .map(|c| c.split(';').next().unwrap_or(c).trim())
            .filter(|c| {
                [
                    MEDIA_OCI_MANIFEST,
                    MEDIA_OCI_INDEX,
                    MEDIA_DOCKER_MANIFEST,
                    MEDIA_DOCKER_MANIFEST_LIST,
                ]
                .contains(c)
            });
        let media_type = match (ct, raw.media_type.as_deref()) {
            (Some(c), _) => c.to_owned(),
            (None, Some(m)) => m.to_owned(),
            (None, None) if raw.manifests.is_some() => MEDIA_OCI_INDEX.to_owned(),
            (None, None) => MEDIA_OCI_MANIFEST.to_owned(),
        };
        match media_type.as_str() {
            MEDIA_OCI_INDEX | MEDIA_DOCKER_MANIFEST_LIST => Ok(Manifest::Index {
                media_type,
                manifests: raw.manifests.ok_or_else(|| {
                    RegistryError::Invalid("invalid manifest list: no manifests".into())
                })?,
            }),
            MEDIA_OCI_MANIFEST | MEDIA_DOCKER_MANIFEST => Ok(Manifest::Image {
                media_type,
                config: raw
                    .config
                    .ok_or_else(|| RegistryError::Invalid("invalid manifest: no config".into()))?,
                layers: raw.layers.unwrap_or_default(),
            }),
            other => Err(RegistryError::Invalid(format!(
                "unsupported manifest media type {other:?}"
            ))),
        }
    }

    pub fn media_type(&self) -> &str {
        match self {
            Manifest::Image { media_type, .. } | Manifest::Index { media_type, .. } => media_type,
        }
    }
}

/// The entry of an index for `want` (Docker's error when there is none).
pub fn select_platform<'a>(manifests: &'a [Descriptor], want: &Platform) -> Result<&'a Descriptor> {
    manifests
        .iter()
        .find(|d| d.platform.as_ref().is_some_and(|p| want.matches(p)))
        .ok_or_else(|| {
            RegistryError::Invalid(format!(
                "no matching manifest for {want} in the manifest list entries"
            ))
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    #[test]
    fn parse_kinds() {
        let img = format!(
            r#"{{"schemaVersion":2,"mediaType":"{MEDIA_DOCKER_MANIFEST}","config":{{"mediaType":"x","digest":"{D1}","size":3}},"layers":[{{"mediaType":"l","digest":"{D2}","size":9}}]}}"#
        );
        match Manifest::parse(img.as_bytes(), None).unwrap() {
            Manifest::Image {
                media_type, layers, ..
            } => {
                assert_eq!(media_type, MEDIA_DOCKER_MANIFEST);
                assert_eq!(layers[0].size, 9);
            }
            m => panic!("{m:?}"),
        }
        let idx = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{MEDIA_OCI_MANIFEST}","digest":"{D1}","size":3,"platform":{{"os":"linux","architecture":"arm64","variant":"v8"}}}},{{"digest":"{D2}","size":3,"platform":{{"os":"linux","architecture":"amd64"}}}}]}}"#
        );
        let m = Manifest::parse(idx.as_bytes(), Some(&format!("{MEDIA_OCI_INDEX}; x=y"))).unwrap();
        let Manifest::Index { manifests, .. } = m else {
            panic!()
        };
        let pick = |s: &str| {
            select_platform(&manifests, &Platform::parse(s).unwrap()).map(|d| d.digest.to_string())
        };
        assert_eq!(pick("linux/arm64").unwrap(), D1);
        assert_eq!(pick("linux/arm64/v8").unwrap(), D1);
        assert_eq!(pick("linux/amd64").unwrap(), D2);
        let e = pick("linux/s390x").unwrap_err().to_string();
        assert_eq!(
            e,
            "no matching manifest for linux/s390x in the manifest list entries"
        );
        assert!(Manifest::parse(br#"{"schemaVersion":1}"#, None)
            .unwrap_err()
            .to_string()
            .contains("schema 1"));
        assert!(Manifest::parse(b"nope", None).is_err());
        assert!(Manifest::parse(br#"{"mediaType":"text/plain"}"#, None).is_err());
    }

    #[test]
    fn platforms() {
        assert_eq!(
            Platform::parse("linux/x86_64").unwrap().to_string(),
            "linux/amd64"
        );
        assert_eq!(
            Platform::parse("linux/arm/v7").unwrap().to_string(),
            "linux/arm/v7"
        );
        for bad in ["", "linux/", "Linux/amd64", "a/b/c/d"] {
            assert!(Platform::parse(bad).is_err(), "{bad}");
        }
        let v7 = Platform::parse("linux/arm/v7").unwrap();
        let v6 = Platform::parse("linux/arm/v6").unwrap();
        assert!(!v7.matches(&v6));
        assert!(Platform::parse("linux/arm").unwrap().matches(&v6));
    }
}
