//! The content-addressed build cache: a built root image and its run config,
//! found again without doing any image work when nothing that went into it changed.
//!
//! An entry lives in `<cache>/build/<key>/` (`root.erofs`, `run-config.json`,
//! `inputs.json`). The key is a SHA-256 over what is known before building: the
//! tool version and cache format, the Containerfile's bytes, the target, build
//! arguments, platform, writer options, and the manifest digest of every base
//! image. Which context files a build reads is only known after it, so the entry
//! records them with a fingerprint each (SHA-256 of the contents and the mode; a
//! directory's sorted entry names; a symlink's target) and a lookup re-checks
//! them: a changed file is a miss, and the rebuild replaces the entry. Entries are
//! written to a temporary directory and renamed into place
//! ([`cast_core::cache_entry`]), so a reader never sees half an entry.
//!
//! Last use: a hit sets the entry directory's mtime to now, so `cargo cast cache
//! prune --older-than` keeps the entries builds still find.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use cast_core::cache_entry::StagedDir;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::runconfig::RunConfig;

/// Bumped whenever an entry's layout or meaning changes.
const FORMAT: u32 = 1;

/// A build cache directory.
#[derive(Debug, Clone)]
pub struct BuildCache {
    root: PathBuf,
}

/// A cache entry: a root image and what it runs.
#[derive(Debug, Clone)]
pub struct CachedImage {
    /// The EROFS root image.
    pub root_image: PathBuf,
    /// The image's run config (before the crate's overrides).
    pub run_config: RunConfig,
    /// Files the build read (Containerfile, ignore file, context files).
    pub inputs: Vec<PathBuf>,
    /// The key, hex.
    pub key: String,
}

#[derive(Serialize, Deserialize)]
struct Inputs {
    files: Vec<(PathBuf, String)>,
}

/// Builds a cache key from labelled parts.
#[derive(Debug, Clone)]
pub struct KeyBuilder(Sha256);

impl Default for KeyBuilder {
    fn default() -> Self {
        let mut h = Sha256::new();
        h.update(format!(
            "cast-build {} format {FORMAT}\0",
            env!("CARGO_PKG_VERSION")
        ));
        Self(h)
    }
}

impl KeyBuilder {
    /// Adds one labelled part (length-prefixed, so parts cannot run together).
    pub fn part(mut self, label: &str, value: impl AsRef<[u8]>) -> Self {
        let v = value.as_ref();
        self.0.update(label.as_bytes());
        self.0.update((v.len() as u64).to_le_bytes());
        self.0.update(v);
        self
    }

    /// The key, hex.
    pub fn finish(self) -> String {
        hex(&self.0.finalize())
    }
}

/// Why the cache could not be used.
#[derive(Debug, thiserror::Error)]
#[error("build cache {}: {what}", path.display())]
pub struct CacheError {
    /// The entry or directory.
    pub path: PathBuf,
    /// What was being done.
    pub what: String,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

impl BuildCache {
    /// The cache at `root` (created on first store).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// `build/` under the user's cast cache (`$CAST_CACHE_DIR`, else
    /// `$XDG_CACHE_HOME/cast`, else `~/.cache/cast`).
    pub fn default_location() -> Option<Self> {
        Some(Self::new(cast_core::CacheRoot::from_env()?.build()))
    }

    /// Where the cache lives.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The entry for `key`, if it exists and its recorded inputs are unchanged.
    pub fn lookup(&self, key: &str) -> Option<CachedImage> {
        let dir = self.root.join(key);
        let inputs: Inputs =
            serde_json::from_slice(&std::fs::read(dir.join("inputs.json")).ok()?).ok()?;
        let run_config =
            serde_json::from_slice(&std::fs::read(dir.join("run-config.json")).ok()?).ok()?;
        let root_image = dir.join("root.erofs");
        if !root_image.is_file() {
            return None;
        }
        for (path, print) in &inputs.files {
            if fingerprint(path) != *print {
                return None;
            }
        }
        mark_used(&dir);
        Some(CachedImage {
            root_image,
            run_config,
            inputs: inputs.files.into_iter().map(|(p, _)| p).collect(),
            key: key.to_owned(),
        })
    }

    /// A new entry for `key`, staged in a temporary directory in the cache: the
    /// build writes the image (`root.erofs`) into it, then [`store`](Self::store)s it.
    pub fn staging(&self, key: &str) -> Result<StagedDir, CacheError> {
        StagedDir::new(&self.root.join(key)).map_err(|source| CacheError {
            path: self.root.clone(),
            what: "create a temporary entry".into(),
            source,
        })
    }

    /// Stores `staging` (holding `root.erofs`) as its key's entry, replacing a
    /// stale one.
    pub fn store(
        &self,
        staging: StagedDir,
        run_config: &RunConfig,
        inputs: impl IntoIterator<Item = PathBuf>,
    ) -> Result<CachedImage, CacheError> {
        let target = staging.dest().to_owned();
        let key = target.file_name().unwrap_or_default().to_string_lossy();
        let err = |what: &str| {
            let path = target.clone();
            let what = what.to_owned();
            move |source| CacheError { path, what, source }
        };
        let files: Vec<(PathBuf, String)> = inputs
            .into_iter()
            .map(|p| {
                let f = fingerprint(&p);
                (p, f)
            })
            .collect();
        let dir = staging.path();
        std::fs::write(dir.join("run-config.json"), json(run_config)).map_err(err("write"))?;
        std::fs::write(dir.join("inputs.json"), json(&Inputs { files })).map_err(err("write"))?;
        // Ours, or the same key another build stored meanwhile: either will do.
        staging.replace().map_err(err("store"))?;
        self.lookup(&key).ok_or_else(|| {
            err("read back")(std::io::Error::other("an input changed while building"))
        })
    }
}

/// Sets `dir`'s mtime to now: the entry's last use. Best effort (a cache the user
/// cannot write is still readable).
fn mark_used(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.set_modified(std::time::SystemTime::now());
    }
}

fn json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec_pretty(value).expect("plain data serialises")
}

/// What a path holds, as a short string: it changes when the path's contents,
/// mode, entries (directories) or target (symlinks) change.
pub fn fingerprint(path: &Path) -> String {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return "missing".into();
    };
    let mode = meta.permissions().mode();
    if meta.file_type().is_symlink() {
        return match std::fs::read_link(path) {
            Ok(t) => format!("link {}", t.display()),
            Err(_) => "unreadable".into(),
        };
    }
    let mut h = Sha256::new();
    if meta.is_dir() {
        let mut names: Vec<String> = match std::fs::read_dir(path) {
            Ok(rd) => rd
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => return "unreadable".into(),
        };
        names.sort();
        for n in names {
            h.update(n.as_bytes());
            h.update([0]);
        }
        return format!("dir {mode:o} {}", hex(&h.finalize()));
    }
    let Ok(mut f) = std::fs::File::open(path) else {
        return "unreadable".into();
    };
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => h.update(&buf[..n]),
            Err(_) => return "unreadable".into(),
        }
    }
    format!("file {mode:o} {}", hex(&h.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hit_marks_the_entry_used() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = BuildCache::new(tmp.path().join("build"));
        let staging = cache.staging("k1").unwrap();
        std::fs::write(staging.path().join("root.erofs"), b"image").unwrap();
        let stored = cache
            .store(staging, &RunConfig::default(), Vec::new())
            .unwrap();
        let dir = stored.root_image.parent().unwrap().to_owned();
        let long_ago = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1 << 30);
        std::fs::File::open(&dir)
            .unwrap()
            .set_modified(long_ago)
            .unwrap();
        let mtime = || std::fs::metadata(&dir).unwrap().modified().unwrap();
        assert_eq!(mtime(), long_ago);
        assert!(cache.lookup("k2").is_none());
        assert_eq!(mtime(), long_ago, "a miss is no use");
        assert!(cache.lookup("k1").is_some());
        assert!(mtime() > long_ago, "a hit is a use");
    }
}
