//! The entry point: [`Resolver`] turns a [`Source`] into a [`ResolvedImage`]. For
//! registries it fetches manifests (recording tag → digest in the cache for later
//! offline builds) and blobs through [`RegistryClient`]; in offline mode it uses only
//! the cache and says exactly what is missing. Local sources are delegated to
//! [`crate::oci_layout`] and [`crate::docker_archive`].

use std::path::PathBuf;

use indicatif::ProgressBar;

use crate::assemble::{assemble, BlobSource, FetchOptions, Root};
use crate::cache::BlobCache;
use crate::config::{scratch_platform, ImageConfig};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::image::{Platform, ResolvedImage};
use crate::reference::Reference;
use crate::source::Source;
use crate::transport::{ClientOptions, RegistryClient};

/// Everything that steers resolution.
#[derive(Debug, Clone)]
pub struct ResolveOptions {
    /// Platform to pick from multi-platform images (default linux/amd64).
    pub platform: Platform,
    /// Use only the cache and local sources; never touch the network.
    pub offline: bool,
    /// Registry connection settings (insecure registries, credentials, retries).
    pub client: ClientOptions,
    /// Upper bound on concurrent layer downloads.
    pub max_concurrent_downloads: usize,
    /// Draw progress bars on stderr (only ever when it is a terminal).
    pub progress: bool,
}

impl Default for ResolveOptions {
    fn default() -> Self {
        ResolveOptions {
            platform: Platform::default(),
            offline: false,
            client: ClientOptions::default(),
            max_concurrent_downloads: 3,
            progress: true,
        }
    }
}

/// Resolves sources into images whose blobs are in one [`BlobCache`].
#[derive(Debug, Clone)]
pub struct Resolver {
    cache: BlobCache,
    options: ResolveOptions,
}

impl Resolver {
    /// A resolver over `cache`.
    pub fn new(cache: BlobCache, options: ResolveOptions) -> Resolver {
        Resolver { cache, options }
    }

    /// A resolver over the user's cache (`$CAST_CACHE_DIR`, `$XDG_CACHE_HOME/cast`,
    /// `~/.cache/cast`).
    pub fn with_default_cache(options: ResolveOptions) -> Result<Resolver> {
        let root = BlobCache::default_root(|k| std::env::var(k).ok())?;
        Ok(Resolver::new(BlobCache::open(root)?, options))
    }

    /// The cache this resolver fills.
    pub fn cache(&self) -> &BlobCache {
        &self.cache
    }

    /// Parses `source` (see [`Source`]) and resolves it.
    pub fn resolve_str(&self, source: &str) -> Result<ResolvedImage> {
        self.resolve(&source.parse()?)
    }

    /// Resolves `source`: its config, and its layers as verified files in the cache.
    pub fn resolve(&self, source: &Source) -> Result<ResolvedImage> {
        let fetch = FetchOptions {
            concurrency: self.options.max_concurrent_downloads,
            progress: self.options.progress,
        };
        match source {
            Source::Scratch => Ok(ResolvedImage {
                source: "scratch".into(),
                manifest_digest: None,
                config_digest: None,
                config: ImageConfig::default(),
                platform: scratch_platform(),
                layers: Vec::new(),
            }),
            Source::Registry(r) if self.options.offline => self.offline(r, fetch),
            Source::Registry(r) => self.online(r, fetch),
            Source::OciLayout { path, tag } => crate::oci_layout::resolve(
                path,
                tag.as_deref(),
                &self.cache,
                &self.options.platform,
                fetch,
            ),
            Source::DockerArchive { path, tag } => {
                crate::docker_archive::resolve(path, tag.as_deref(), &self.cache)
            }
        }
    }

    fn online(&self, r: &Reference, fetch: FetchOptions) -> Result<ResolvedImage> {
        let client = RegistryClient::new(r, &self.options.client)?;
        let src = Online {
            client: &client,
            cache: &self.cache,
        };
        let root = match &r.digest {
            Some(d) if self.cache.contains(d) => Root {
                bytes: self.cache.read(d)?,
                digest: d.clone(),
                content_type: None,
            },
            _ => {
                let (bytes, digest, content_type) = client.manifest(&r.manifest_ref())?;
                self.cache
                    .insert_bytes(&digest, &bytes, "manifest", client.registry())?;
                if let (None, Some(tag)) = (&r.digest, &r.tag) {
                    self.cache
                        .write_ref(&r.registry, &r.repository, tag, &digest)?;
                }
                Root {
                    bytes,
                    digest,
                    content_type,
                }
            }
        };
        assemble(
            &src,
            &self.cache,
            r.to_string(),
            root,
            &self.options.platform,
            fetch,
        )
    }

    fn offline(&self, r: &Reference, fetch: FetchOptions) -> Result<ResolvedImage> {
        let missing = |what: String| Error::OfflineMissing {
            what,
            cache: self.cache.root().to_path_buf(),
        };
        let digest = match (&r.digest, &r.tag) {
            (Some(d), _) => d.clone(),
            (None, Some(tag)) => self
                .cache
                .read_ref(&r.registry, &r.repository, tag)
                .ok_or_else(|| missing(format!("the manifest of {r}")))?,
            (None, None) => return Err(missing(format!("the manifest of {r}"))),
        };
        let src = Offline {
            cache: &self.cache,
            label: r.to_string(),
        };
        let root = Root {
            bytes: src.manifest(&digest)?,
            digest,
            content_type: None,
        };
        assemble(
            &src,
            &self.cache,
            r.to_string(),
            root,
            &self.options.platform,
            fetch,
        )
    }
}

/// Blobs from a registry, through the cache.
struct Online<'a> {
    client: &'a RegistryClient,
    cache: &'a BlobCache,
}

impl BlobSource for Online<'_> {
    fn origin(&self) -> String {
        self.client.registry().to_string()
    }

    fn manifest(&self, digest: &Digest) -> Result<Vec<u8>> {
        if self.cache.contains(digest) {
            return self.cache.read(digest);
        }
        let (bytes, actual, _) = self.client.manifest(digest.as_str())?;
        self.cache
            .insert_bytes(&actual, &bytes, "manifest", self.client.registry())?;
        Ok(bytes)
    }

    fn blob(&self, digest: &Digest, size: u64, what: &str, bar: &ProgressBar) -> Result<PathBuf> {
        self.client.retry().run(|| {
            bar.set_position(0);
            self.cache
                .insert_with(digest, what, self.client.registry(), |w| {
                    self.client.blob(digest, size, w, &|n| bar.inc(n))
                })
        })
    }
}

/// Blobs from the cache only.
struct Offline<'a> {
    cache: &'a BlobCache,
    label: String,
}

impl BlobSource for Offline<'_> {
    fn origin(&self) -> String {
        format!("the blob cache ({})", self.label)
    }

    fn manifest(&self, digest: &Digest) -> Result<Vec<u8>> {
        self.blob(digest, 0, "manifest", &ProgressBar::hidden())
            .and_then(|_| self.cache.read(digest))
    }

    fn blob(&self, digest: &Digest, _size: u64, what: &str, _bar: &ProgressBar) -> Result<PathBuf> {
        if self.cache.contains(digest) {
            self.cache.mark_used(digest);
            Ok(self.cache.blob_path(digest))
        } else {
            Err(Error::OfflineMissing {
                what: format!("{what} {digest} of {}", self.label),
                cache: self.cache.root().to_path_buf(),
            })
        }
    }
}
