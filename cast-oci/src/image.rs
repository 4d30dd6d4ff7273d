//! What resolving a source produces ([`ResolvedImage`], [`Layer`], [`Compression`]) and
//! the manifest logic shared by every source: telling an index from a manifest (OCI
//! and Docker v2 media types), choosing the [`Platform`] from an index, and mapping a
//! layer's media type to its compression.

use std::fmt;
use std::path::PathBuf;

use oci_spec::image::{ImageIndex, ImageManifest};
use serde_json::Value;

use crate::config::ImageConfig;
use crate::digest::Digest;
use crate::error::Error;

/// How a layer blob is compressed; the blob itself is a tar stream after decompression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// Plain tar.
    None,
    /// gzip (`tar+gzip`, Docker's `rootfs.diff.tar.gzip`).
    Gzip,
    /// zstd (`tar+zstd`).
    Zstd,
}

impl Compression {
    /// From a layer media type; `None` if the media type is not a layer we can apply.
    pub fn from_media_type(mt: &str) -> Option<Compression> {
        match mt {
            "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar"
            | "application/vnd.docker.image.rootfs.diff.tar" => Some(Compression::None),
            "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => {
                Some(Compression::Gzip)
            }
            "application/vnd.oci.image.layer.v1.tar+zstd"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd" => {
                Some(Compression::Zstd)
            }
            _ => None,
        }
    }

    /// From the first bytes of a blob (for archives that do not record media types).
    pub fn sniff(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

/// One layer, in application order (base first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// Digest of the blob as stored (compressed).
    pub digest: Digest,
    /// The verified blob in the blob cache.
    pub path: PathBuf,
    /// Blob size in bytes.
    pub size: u64,
    /// How the blob is compressed.
    pub compression: Compression,
    /// Digest of the uncompressed tar, from the config's `rootfs.diff_ids`, if present.
    pub diff_id: Option<Digest>,
}

/// A resolved `FROM` source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedImage {
    /// The source as given, normalised (e.g. `docker.io/library/alpine:latest`).
    pub source: String,
    /// Digest of the platform manifest, when there is one (not for `scratch`).
    pub manifest_digest: Option<Digest>,
    /// Digest of the config blob, when there is one.
    pub config_digest: Option<Digest>,
    /// The runtime config.
    pub config: ImageConfig,
    /// The platform the config declares (empty architecture for `scratch`).
    pub platform: Platform,
    /// Layers, base first.
    pub layers: Vec<Layer>,
}

/// An OS/architecture/variant triple, e.g. `linux/arm64/v8`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Platform {
    /// `linux`.
    pub os: String,
    /// GOARCH spelling: `amd64`, `arm64`, `arm`, `386`, ...
    pub architecture: String,
    /// `v7`, `v8`, ... or `None` for "any".
    pub variant: Option<String>,
}

impl Default for Platform {
    /// linux/amd64.
    fn default() -> Self {
        Platform {
            os: "linux".into(),
            architecture: "amd64".into(),
            variant: None,
        }
    }
}

impl Platform {
    /// Linux on the architecture this program was built for (the guest the VM runs
    /// natively): `linux/amd64` on x86_64, `linux/arm64` on aarch64.
    pub fn host() -> Platform {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            other => other,
        };
        Platform {
            os: "linux".into(),
            architecture: arch.into(),
            variant: None,
        }
    }

    /// Parses `os/arch[/variant]`; `x86_64` and `aarch64` are accepted as aliases.
    pub fn parse(s: &str) -> Result<Platform, Error> {
        let parts: Vec<&str> = s.split('/').collect();
        if parts.len() < 2 || parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
            return Err(Error::InvalidReference {
                input: s.into(),
                reason: "platform must be os/arch[/variant], e.g. linux/arm64/v8".into(),
            });
        }
        Ok(Platform {
            os: parts[0].to_ascii_lowercase(),
            architecture: normalize_arch(parts[1]).into(),
            variant: parts.get(2).map(|v| v.to_string()),
        })
    }

    /// Whether an index entry for (`os`, `arch`, `variant`) serves this platform.
    pub fn matches(&self, os: &str, arch: &str, variant: Option<&str>) -> bool {
        if self.os != os || self.architecture != normalize_arch(arch) {
            return false;
        }
        match (&self.variant, variant) {
            (None, _) => true,
            (Some(want), Some(have)) => want == have,
            // arm64 images often omit the (only) variant v8.
            (Some(want), None) => self.architecture == "arm64" && want == "v8",
        }
    }
}

fn normalize_arch(a: &str) -> &str {
    match a {
        "x86_64" | "x86-64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        self.variant.as_ref().map_or(Ok(()), |v| write!(f, "/{v}"))
    }
}

/// A manifest document of either kind.
#[derive(Debug)]
pub(crate) enum ManifestDoc {
    /// OCI image index or Docker manifest list.
    Index(Box<ImageIndex>),
    /// OCI image manifest or Docker v2 schema 2 manifest.
    Image(Box<ImageManifest>),
}

impl ManifestDoc {
    /// Parses manifest bytes. `content_type` is the HTTP `Content-Type`, if any; the
    /// document's own `mediaType` wins, and its shape decides when neither is given.
    pub(crate) fn parse(
        bytes: &[u8],
        content_type: Option<&str>,
        origin: &str,
    ) -> Result<ManifestDoc, Error> {
        let json = |source| Error::Json {
            what: "manifest".into(),
            origin: origin.into(),
            source,
        };
        let v: Value = serde_json::from_slice(bytes).map_err(json)?;
        let mt = v
            .get("mediaType")
            .and_then(Value::as_str)
            .or(content_type)
            .unwrap_or("");
        let is_index = match mt {
            "application/vnd.oci.image.index.v1+json"
            | "application/vnd.docker.distribution.manifest.list.v2+json" => true,
            "application/vnd.oci.image.manifest.v1+json"
            | "application/vnd.docker.distribution.manifest.v2+json" => false,
            _ if v.get("fsLayers").is_some() || mt.contains("manifest.v1") => {
                return Err(Error::Unsupported {
                    origin: origin.into(),
                    what: "manifest".into(),
                    detail: "Docker schema 1 manifests are obsolete; push the image again with a current tool".into(),
                })
            }
            _ if v.get("manifests").is_some() => true,
            _ if v.get("layers").is_some() => false,
            _ => {
                return Err(Error::Unsupported { origin: origin.into(), what: "manifest".into(), detail: format!("media type {mt:?}") })
            }
        };
        if is_index {
            Ok(ManifestDoc::Index(Box::new(
                serde_json::from_value(v).map_err(json)?,
            )))
        } else {
            Ok(ManifestDoc::Image(Box::new(
                serde_json::from_value(v).map_err(json)?,
            )))
        }
    }
}

/// Picks the manifest for `platform` from an index and returns its digest.
pub(crate) fn select_platform(
    index: &ImageIndex,
    platform: &Platform,
    reference: &str,
) -> Result<Digest, Error> {
    let mut available = Vec::new();
    for m in index.manifests() {
        let Some(p) = m.platform() else { continue };
        let (os, arch) = (p.os().to_string(), p.architecture().to_string());
        if platform.matches(&os, &arch, p.variant().as_deref()) {
            return Digest::try_from(m);
        }
        if os == "unknown" {
            continue; // attestation manifests, not images
        }
        let v = p
            .variant()
            .as_ref()
            .map(|v| format!("/{v}"))
            .unwrap_or_default();
        available.push(format!("{os}/{arch}{v}"));
    }
    Err(Error::NoMatchingPlatform {
        reference: reference.into(),
        platform: platform.to_string(),
        available: if available.is_empty() {
            "nothing usable".into()
        } else {
            available.join(", ")
        },
    })
}

/// A layer as a manifest names it: (digest, size, compression).
pub(crate) type LayerRef = (Digest, u64, Compression);

/// What a manifest names: the config blob and the layers.
pub(crate) struct ManifestParts {
    /// Digest of the config blob.
    pub config: Digest,
    /// Declared size of the config blob.
    pub config_size: u64,
    /// Layers, base first.
    pub layers: Vec<LayerRef>,
}

/// Splits an image manifest into its config and layer references.
pub(crate) fn manifest_parts(m: &ImageManifest, origin: &str) -> Result<ManifestParts, Error> {
    let mut layers = Vec::new();
    for l in m.layers() {
        let mt = l.media_type().to_string();
        let c = Compression::from_media_type(&mt).ok_or_else(|| Error::Unsupported {
            origin: origin.into(),
            what: "layer".into(),
            detail: format!("media type {mt}"),
        })?;
        layers.push((Digest::try_from(l)?, l.size(), c));
    }
    Ok(ManifestParts {
        config: Digest::try_from(m.config())?,
        config_size: m.config().size(),
        layers,
    })
}

/// `rootfs.diff_ids` of a config blob (empty if absent or unparsable).
pub(crate) fn diff_ids(config: &[u8]) -> Vec<Option<Digest>> {
    let v: Value = serde_json::from_slice(config).unwrap_or(Value::Null);
    v.pointer("/rootfs/diff_ids")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|d| d.as_str().and_then(|s| s.parse().ok()))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_matching() {
        let p = Platform::parse("linux/aarch64/v8").unwrap();
        assert_eq!(p.to_string(), "linux/arm64/v8");
        assert!(p.matches("linux", "arm64", None));
        assert!(p.matches("linux", "arm64", Some("v8")));
        assert!(!p.matches("linux", "arm", Some("v8")));
        assert!(Platform::default().matches("linux", "amd64", None));
        assert!(Platform::parse("linux").is_err());
    }

    #[test]
    fn compression() {
        assert_eq!(
            Compression::from_media_type("application/vnd.oci.image.layer.v1.tar+zstd"),
            Some(Compression::Zstd)
        );
        assert_eq!(
            Compression::from_media_type("application/vnd.docker.image.rootfs.diff.tar.gzip"),
            Some(Compression::Gzip)
        );
        assert_eq!(Compression::from_media_type("text/plain"), None);
        assert_eq!(Compression::sniff(&[0x1f, 0x8b, 8]), Compression::Gzip);
        assert_eq!(Compression::sniff(b"usr/"), Compression::None);
    }

    #[test]
    fn docker_manifest_list_selection() {
        let list = br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json",
          "manifests":[
            {"mediaType":"application/vnd.docker.distribution.manifest.v2+json","size":1,
             "digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111",
             "platform":{"architecture":"arm","os":"linux","variant":"v7"}},
            {"mediaType":"application/vnd.docker.distribution.manifest.v2+json","size":1,
             "digest":"sha256:2222222222222222222222222222222222222222222222222222222222222222",
             "platform":{"architecture":"amd64","os":"linux"}},
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","size":1,
             "digest":"sha256:3333333333333333333333333333333333333333333333333333333333333333",
             "platform":{"architecture":"unknown","os":"unknown"}}]}"#;
        let ManifestDoc::Index(ix) = ManifestDoc::parse(list, None, "r").unwrap() else {
            panic!("not an index")
        };
        assert!(select_platform(&ix, &Platform::default(), "x")
            .unwrap()
            .hex()
            .starts_with("2222"));
        let arm = Platform::parse("linux/arm/v7").unwrap();
        assert!(select_platform(&ix, &arm, "x")
            .unwrap()
            .hex()
            .starts_with("1111"));
        let e = select_platform(&ix, &Platform::parse("linux/arm/v6").unwrap(), "x")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("linux/arm/v7, linux/amd64") && !e.contains("unknown"),
            "{e}"
        );
        assert_eq!(Platform::host().os, "linux");
    }

    #[test]
    fn detects_schema1() {
        let e = ManifestDoc::parse(br#"{"schemaVersion":1,"fsLayers":[]}"#, None, "r").unwrap_err();
        assert!(e.to_string().contains("unsupported manifest"), "{e}");
    }
}
