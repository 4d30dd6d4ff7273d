//! `docker-archive:PATH[:REPO:TAG]`: the tarball `docker save` writes. Both layouts are
//! read through `manifest.json`: the old one (`<id>/layer.tar`, `<hex>.json` config,
//! identical layers stored as symlinks) and the new one from Docker 25 on (an OCI
//! layout inside the tar, `blobs/sha256/<hex>`). The tar is indexed once; each member
//! is then read in place. Config and layers are verified where the archive names
//! their digest (file names, `rootfs.diff_ids` of uncompressed layers) and copied into
//! the blob cache.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::cache::BlobCache;
use crate::config::parse_config;
use crate::digest::{digest_reader, Digest};
use crate::error::{Error, Result};
use crate::image::{diff_ids, Compression, Layer, ResolvedImage};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Entry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// Where a member's data lies in the tar, or which member it links to.
enum Member {
    Data { offset: u64, size: u64 },
    Link(String),
}

struct Archive {
    path: PathBuf,
    members: HashMap<String, Member>,
}

impl Archive {
    fn index(path: &Path) -> Result<Archive> {
        let mut f = File::open(path).map_err(|e| Error::io("open", path, e))?;
        let mut head = [0u8; 4];
        let n = f.read(&mut head).map_err(|e| Error::io("read", path, e))?;
        if Compression::sniff(&head[..n]) != Compression::None {
            return Err(Error::Local {
                path: path.to_path_buf(),
                reason: "the archive is compressed; decompress it first (gunzip / zstd -d) — members are read in place".into(),
            });
        }
        f.seek(SeekFrom::Start(0))
            .map_err(|e| Error::io("seek in", path, e))?;
        let mut tar = tar::Archive::new(f);
        let mut members = HashMap::new();
        let entries = tar.entries().map_err(|e| Error::io("read tar", path, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("read tar", path, e))?;
            let name = normalize(
                &entry
                    .path()
                    .map_err(|e| Error::io("read tar", path, e))?
                    .to_string_lossy(),
            );
            let kind = entry.header().entry_type();
            let member = if kind.is_symlink() || kind.is_hard_link() {
                let target = entry
                    .link_name()
                    .ok()
                    .flatten()
                    .map(|t| t.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let target = if kind.is_symlink() && !target.starts_with('/') {
                    // relative to the link's directory
                    match name.rsplit_once('/') {
                        Some((dir, _)) => resolve_dots(&format!("{dir}/{target}")),
                        None => resolve_dots(&target),
                    }
                } else {
                    normalize(&target)
                };
                Member::Link(target)
            } else {
                Member::Data {
                    offset: entry.raw_file_position(),
                    size: entry.size(),
                }
            };
            members.insert(name, member);
        }
        Ok(Archive {
            path: path.to_path_buf(),
            members,
        })
    }

    /// A reader over member `name`, following links.
    fn open(&self, name: &str) -> Result<impl Read> {
        let mut name = normalize(name);
        for _ in 0..16 {
            match self.members.get(&name) {
                Some(Member::Data { offset, size }) => {
                    let mut f =
                        File::open(&self.path).map_err(|e| Error::io("open", &self.path, e))?;
                    f.seek(SeekFrom::Start(*offset))
                        .map_err(|e| Error::io("seek in", &self.path, e))?;
                    return Ok(f.take(*size));
                }
                Some(Member::Link(t)) => name = t.clone(),
                None => break,
            }
        }
        Err(Error::Local {
            path: self.path.clone(),
            reason: format!("{name} is missing from the archive"),
        })
    }

    fn read(&self, name: &str) -> Result<Vec<u8>> {
        let mut v = Vec::new();
        self.open(name)?
            .read_to_end(&mut v)
            .map_err(|e| Error::io("read", &self.path, e))?;
        Ok(v)
    }
}

fn normalize(p: &str) -> String {
    p.trim_start_matches("./")
        .trim_start_matches('/')
        .to_string()
}

fn resolve_dots(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out.join("/")
}

/// The digest a member name implies: `blobs/sha256/<hex>` or `<hex>.json`.
fn named_digest(name: &str) -> Option<Digest> {
    let file = name.rsplit('/').next()?;
    let hex = file.strip_suffix(".json").unwrap_or(file);
    format!("sha256:{hex}").parse().ok()
}

/// Resolves the image `tag` (or the only one) of the archive at `path`.
pub(crate) fn resolve(path: &Path, tag: Option<&str>, cache: &BlobCache) -> Result<ResolvedImage> {
    let bad = |reason: String| Error::Local {
        path: path.to_path_buf(),
        reason,
    };
    let archive = Archive::index(path)?;
    let origin = path.display().to_string();
    let manifest = archive
        .read("manifest.json")
        .map_err(|_| bad("no manifest.json: not a `docker save` archive".into()))?;
    let entries: Vec<Entry> = serde_json::from_slice(&manifest).map_err(|source| Error::Json {
        what: "manifest.json".into(),
        origin: origin.clone(),
        source,
    })?;
    let tags = |e: &Entry| e.repo_tags.clone().unwrap_or_default();
    let entry = match tag {
        Some(t) => entries.iter().find(|e| {
            tags(e).iter().any(|rt| {
                rt == t
                    || rt
                        .strip_prefix("docker.io/library/")
                        .or(rt.strip_prefix("docker.io/"))
                        == Some(t)
            })
        }),
        None if entries.len() == 1 => entries.first(),
        None => None,
    };
    let Some(entry) = entry else {
        let all: Vec<String> = entries.iter().flat_map(tags).collect();
        let what = tag.map_or_else(
            || format!("{} images; add :REPO:TAG to choose one", entries.len()),
            |t| format!("no image tagged {t:?}"),
        );
        return Err(bad(format!(
            "{what} (tags: {})",
            if all.is_empty() {
                "none".into()
            } else {
                all.join(", ")
            }
        )));
    };

    let config_bytes = archive.read(&entry.config)?;
    let config_digest = Digest::of(&config_bytes);
    if let Some(named) = named_digest(&entry.config) {
        named.verify(&config_digest, "config", &origin)?;
    }
    let (config, platform) = parse_config(&config_bytes, &origin)?;
    cache.insert_bytes(&config_digest, &config_bytes, "config", &origin)?;
    let diffs = diff_ids(&config_bytes);

    let mut layers = Vec::new();
    for (i, name) in entry.layers.iter().enumerate() {
        let (digest, size) =
            digest_reader(archive.open(name)?).map_err(|e| Error::io("read", path, e))?;
        if let Some(named) = named_digest(name) {
            named.verify(&digest, "layer", &origin)?;
        }
        let mut head = [0u8; 4];
        let n = archive
            .open(name)?
            .read(&mut head)
            .map_err(|e| Error::io("read", path, e))?;
        let compression = Compression::sniff(&head[..n]);
        let diff_id = diffs.get(i).cloned().flatten();
        if let (Compression::None, Some(d)) = (compression, &diff_id) {
            d.verify(&digest, "layer", &origin)?;
        }
        let blob = cache.insert_with(&digest, "layer", &origin, |w| {
            io::copy(&mut archive.open(name)?, w)
                .map(|_| ())
                .map_err(|e| Error::io("copy from", path, e))
        })?;
        layers.push(Layer {
            digest,
            path: blob,
            size,
            compression,
            diff_id,
        });
    }
    let label = match tag {
        Some(t) => format!("docker-archive:{}:{t}", path.display()),
        None => format!("docker-archive:{}", path.display()),
    };
    Ok(ResolvedImage {
        source: label,
        manifest_digest: None,
        config_digest: Some(config_digest),
        config,
        platform,
        layers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_links() {
        assert_eq!(resolve_dots("abc/../def/layer.tar"), "def/layer.tar");
        assert_eq!(normalize("./manifest.json"), "manifest.json");
        let hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(named_digest(&format!("{hex}.json")).unwrap().hex(), hex);
        assert_eq!(
            named_digest(&format!("blobs/sha256/{hex}")).unwrap().hex(),
            hex
        );
        assert_eq!(named_digest("abc/layer.tar"), None);
    }
}
