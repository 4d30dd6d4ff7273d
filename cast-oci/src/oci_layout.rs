//! `oci-layout:PATH[:TAG]`: an OCI image layout directory (`oci-layout`, `index.json`,
//! `blobs/<alg>/<hex>`), as written by skopeo, buildah, `docker buildx --output
//! type=oci` and others. The tag selects the `index.json` entry whose
//! `org.opencontainers.image.ref.name` annotation equals it (or ends in `:TAG`);
//! without a tag the index must name exactly one image, or be a multi-platform index
//! itself. Every blob is verified and copied into the blob cache.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use indicatif::ProgressBar;
use oci_spec::image::{Descriptor, ImageIndex};

use crate::assemble::{assemble, BlobSource, FetchOptions, Root};
use crate::cache::BlobCache;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::image::{Platform, ResolvedImage};

const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Resolves the image `tag` (or the only one) of the layout at `dir`.
pub(crate) fn resolve(
    dir: &Path,
    tag: Option<&str>,
    cache: &BlobCache,
    platform: &Platform,
    fetch: FetchOptions,
) -> Result<ResolvedImage> {
    let bad = |reason: String| Error::Local {
        path: dir.to_path_buf(),
        reason,
    };
    if !dir.join("oci-layout").is_file() {
        return Err(bad("not an OCI image layout: no `oci-layout` file".into()));
    }
    let index_path = dir.join("index.json");
    let index_bytes = std::fs::read(&index_path).map_err(|e| Error::io("read", &index_path, e))?;
    let index: ImageIndex = serde_json::from_slice(&index_bytes).map_err(|source| Error::Json {
        what: "index.json".into(),
        origin: dir.display().to_string(),
        source,
    })?;
    let src = Layout {
        dir: dir.to_path_buf(),
        cache,
    };
    let name = |d: &Descriptor| {
        d.annotations()
            .as_ref()
            .and_then(|a| a.get(REF_NAME))
            .cloned()
    };
    let chosen: Option<&Descriptor> = match tag {
        Some(t) => {
            let suffix = format!(":{t}");
            let found = index
                .manifests()
                .iter()
                .find(|d| name(d).is_some_and(|n| n == t || n.ends_with(&suffix)));
            if found.is_none() {
                let names: Vec<String> = index.manifests().iter().filter_map(name).collect();
                return Err(bad(format!(
                    "no image tagged {t:?} (ref names: {})",
                    list(&names)
                )));
            }
            found
        }
        None if index.manifests().len() == 1 => index.manifests().first(),
        None if !index.manifests().is_empty()
            && index.manifests().iter().all(|d| d.platform().is_some()) =>
        {
            None
        }
        None => {
            let names: Vec<String> = index.manifests().iter().filter_map(name).collect();
            return Err(bad(format!(
                "index.json lists {} images; add :TAG to choose one (ref names: {})",
                index.manifests().len(),
                list(&names)
            )));
        }
    };
    let root = match chosen {
        Some(d) => {
            let digest = Digest::try_from(d)?;
            Root {
                bytes: src.manifest(&digest)?,
                digest,
                content_type: Some(d.media_type().to_string()),
            }
        }
        // index.json itself is the multi-platform index.
        None => Root {
            digest: Digest::of(&index_bytes),
            bytes: index_bytes,
            content_type: None,
        },
    };
    let label = match tag {
        Some(t) => format!("oci-layout:{}:{t}", dir.display()),
        None => format!("oci-layout:{}", dir.display()),
    };
    assemble(&src, cache, label, root, platform, fetch)
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// Blobs of a layout directory, copied into the cache.
struct Layout<'a> {
    dir: PathBuf,
    cache: &'a BlobCache,
}

impl Layout<'_> {
    fn open(&self, digest: &Digest, what: &str) -> Result<File> {
        let p = self.dir.join("blobs").join("sha256").join(digest.hex());
        File::open(&p).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => Error::Local {
                path: self.dir.clone(),
                reason: format!("{what} blob {digest} is missing from blobs/sha256/"),
            },
            _ => Error::io("open", &p, e),
        })
    }
}

impl BlobSource for Layout<'_> {
    fn origin(&self) -> String {
        self.dir.display().to_string()
    }

    fn manifest(&self, digest: &Digest) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        self.open(digest, "manifest")?
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io("read", &self.dir, e))?;
        digest.verify(&Digest::of(&bytes), "manifest", &self.origin())?;
        Ok(bytes)
    }

    fn blob(&self, digest: &Digest, _size: u64, what: &str, bar: &ProgressBar) -> Result<PathBuf> {
        if self.cache.contains(digest) {
            return Ok(self.cache.blob_path(digest));
        }
        let mut f = self.open(digest, what)?;
        self.cache.insert_with(digest, what, &self.origin(), |w| {
            let mut w = bar.wrap_write(w);
            io::copy(&mut f, &mut w)
                .map(|_| ())
                .map_err(|e| Error::io("copy", &self.dir, e))
        })
    }
}
