//! The blob cache: verified content addressed by digest, shared by all builds of the
//! user, under `cast_core::cache_root::dir()` (`$CAST_CACHE_DIR`, else the platform cache dir).
//!
//! Layout: `blobs/sha256/<hex>` (manifests, configs, layers), `refs/<registry>/<repo>/
//! <tag>` (last manifest digest seen for a tag, for offline builds) and `locks/<hex>.lock`.
//!
//! Concurrency argument: an entry is written to a temp file in the same directory,
//! hashed while written, checked against its digest, fsynced and then `rename`d to its
//! final name ([`cast_core::cache_entry`]). Rename within a directory is atomic, so a reader sees either no entry
//! or a complete, verified one — never a half-written file — and two writers of the
//! same digest both rename identical bytes. The per-digest `flock` only avoids
//! downloading the same blob twice at once; correctness does not depend on it.
//!
//! Last use: a blob's mtime is set to now whenever a build uses it from the cache
//! ([`BlobCache::mark_used`]), so `cargo cast cache prune --older-than` keeps what
//! builds still use. `cargo cast cache prune` takes the per-digest lock before it
//! removes a blob, and never removes lock files.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use cast_core::cache_entry::{self, StagedFile};
use cast_core::CacheRoot;
use fs4::fs_std::FileExt;

use crate::digest::{Digest, HashingWriter};
use crate::error::{Error, Result};

/// Age after which a temp file in the cache is considered abandoned.
const STALE_TEMP: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// A content-addressed blob store on disk.
#[derive(Debug, Clone)]
pub struct BlobCache {
    root: PathBuf,
}

impl BlobCache {
    /// The default cache root for the given environment (`lookup` is usually
    /// `|k| std::env::var(k).ok()`).
    pub fn default_root(lookup: impl Fn(&str) -> Option<String>) -> Result<PathBuf> {
        cast_core::cache_root::dir_from(lookup).ok_or(Error::NoCacheDir)
    }

    /// Opens (creating if needed) the cache at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<BlobCache> {
        let cache = BlobCache { root: root.into() };
        for dir in [
            cache.blob_dir(),
            cache.layout().locks(),
            cache.layout().refs(),
        ] {
            fs::create_dir_all(&dir).map_err(|e| Error::io("create cache directory", &dir, e))?;
        }
        cache.sweep_stale_temp_files();
        Ok(cache)
    }

    /// Removes temp files a crashed writer left behind (older than a day, so never
    /// one that a live build is still writing). Best effort.
    fn sweep_stale_temp_files(&self) {
        let Ok(entries) = fs::read_dir(self.blob_dir()) else {
            return;
        };
        for e in entries.flatten() {
            let stale = cache_entry::is_temp(&e.file_name().to_string_lossy())
                && e.metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > STALE_TEMP);
            if stale {
                let _ = fs::remove_file(e.path());
            }
        }
    }

    /// The cache root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn layout(&self) -> CacheRoot {
        CacheRoot::new(&self.root)
    }

    fn blob_dir(&self) -> PathBuf {
        self.layout().blobs()
    }

    /// Where the blob with `digest` lives (whether or not it is there).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blob_dir().join(digest.hex())
    }

    /// Whether the blob is in the cache.
    pub fn contains(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Reads a (small) blob, e.g. a manifest or config, and marks it used.
    pub fn read(&self, digest: &Digest) -> Result<Vec<u8>> {
        let p = self.blob_path(digest);
        let bytes = fs::read(&p).map_err(|e| Error::io("read cached blob", &p, e))?;
        self.mark_used(digest);
        Ok(bytes)
    }

    /// Records that a build used the blob: its mtime becomes now. Best effort (a
    /// cache the user cannot write is still readable).
    pub fn mark_used(&self, digest: &Digest) {
        if let Ok(f) = File::open(self.blob_path(digest)) {
            let _ = f.set_modified(std::time::SystemTime::now());
        }
    }

    /// Stores `bytes` under `digest` after checking that they hash to it.
    pub fn insert_bytes(
        &self,
        digest: &Digest,
        bytes: &[u8],
        what: &str,
        origin: &str,
    ) -> Result<PathBuf> {
        digest.verify(&Digest::of(bytes), what, origin)?;
        self.insert_with(digest, what, origin, |w| {
            w.write_all(bytes)
                .map_err(|e| Error::io("write", self.blob_dir(), e))
        })
    }

    /// Stores the blob `digest`, producing its content with `fill` unless it is already
    /// cached. `fill` writes the content into the writer it is given; what it wrote is
    /// verified against `digest` before the entry becomes visible. Holds the per-digest
    /// lock while filling, so concurrent builds fetch each blob once.
    pub fn insert_with(
        &self,
        digest: &Digest,
        what: &str,
        origin: &str,
        fill: impl FnOnce(&mut dyn Write) -> Result<()>,
    ) -> Result<PathBuf> {
        let final_path = self.blob_path(digest);
        if final_path.is_file() {
            self.mark_used(digest);
            return Ok(final_path);
        }
        let _lock = self.lock(digest)?;
        if final_path.is_file() {
            self.mark_used(digest);
            return Ok(final_path);
        }
        // With the lock held, temporaries of this blob are leftovers of killed writers.
        cache_entry::remove_leftovers(&final_path);
        let dir = self.blob_dir();
        let mut staged =
            StagedFile::new(&final_path).map_err(|e| Error::io("create temp file in", &dir, e))?;
        let mut w = HashingWriter::new(io::BufWriter::with_capacity(256 * 1024, staged.file()));
        fill(&mut w)?;
        let (actual, _, buf) = w.finish();
        buf.into_inner()
            .map_err(|e| Error::io("write", &dir, e.into_error()))?;
        digest.verify(&actual, what, origin)?; // `staged` is removed on drop
        staged
            .commit()
            .map_err(|e| Error::io("store", &final_path, e))?;
        Ok(final_path)
    }

    /// The lock file a writer of the blob with hex digest `hex` holds, in the cache
    /// at `root` (also for tools that inspect a cache without opening it).
    pub fn lock_path(root: &Path, hex: &str) -> PathBuf {
        CacheRoot::new(root).locks().join(format!("{hex}.lock"))
    }

    /// Takes the per-digest lock; released when the returned file is dropped.
    fn lock(&self, digest: &Digest) -> Result<File> {
        let p = Self::lock_path(&self.root, digest.hex());
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .map_err(|e| Error::io("open lock file", &p, e))?;
        f.lock_exclusive().map_err(|e| Error::io("lock", &p, e))?;
        Ok(f)
    }

    fn ref_path(&self, registry: &str, repository: &str, tag: &str) -> PathBuf {
        self.layout()
            .refs()
            .join(registry)
            .join(repository)
            .join(tag)
    }

    /// The manifest digest last recorded for `registry/repository:tag`.
    pub fn read_ref(&self, registry: &str, repository: &str, tag: &str) -> Option<Digest> {
        fs::read_to_string(self.ref_path(registry, repository, tag))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Records the manifest digest of a tag (atomically, last writer wins).
    pub fn write_ref(
        &self,
        registry: &str,
        repository: &str,
        tag: &str,
        digest: &Digest,
    ) -> Result<()> {
        let p = self.ref_path(registry, repository, tag);
        cache_entry::write_file(&p, digest.as_str().as_bytes())
            .map_err(|e| Error::io("store", &p, e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_verifies_and_never_leaves_partial_entries() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BlobCache::open(dir.path()).unwrap();
        let good = Digest::of(b"hello");
        let p = cache.insert_bytes(&good, b"hello", "blob", "test").unwrap();
        assert_eq!(fs::read(p).unwrap(), b"hello");
        let bad = Digest::of(b"other");
        let e = cache
            .insert_with(&bad, "layer", "test", |w| {
                w.write_all(b"not it").map_err(|e| Error::io("w", "x", e))
            })
            .unwrap_err();
        assert!(matches!(e, Error::DigestMismatch { .. }), "{e}");
        assert!(!cache.contains(&bad));
        let leftovers: Vec<_> = fs::read_dir(cache.blob_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, [std::ffi::OsString::from(good.hex())]);
        cache.write_ref("r:5000", "a/b", "v1", &good).unwrap();
        assert_eq!(cache.read_ref("r:5000", "a/b", "v1"), Some(good));
        assert_eq!(cache.read_ref("r:5000", "a/b", "v2"), None);
    }

    #[test]
    fn using_a_cached_blob_marks_it_used() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BlobCache::open(dir.path()).unwrap();
        let d = Digest::of(b"layer");
        let path = cache.insert_bytes(&d, b"layer", "blob", "test").unwrap();
        let long_ago = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1 << 30);
        let mtime = |p: &Path| fs::metadata(p).unwrap().modified().unwrap();
        let set_old = || File::open(&path).unwrap().set_modified(long_ago).unwrap();
        set_old();
        cache.read(&d).unwrap();
        assert!(mtime(&path) > long_ago, "read");
        set_old();
        cache.insert_bytes(&d, b"layer", "blob", "test").unwrap();
        assert!(mtime(&path) > long_ago, "insert of a cached blob");
    }
}
