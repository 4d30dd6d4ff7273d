//! Turning a root manifest into a [`ResolvedImage`], the same way for every source:
//! descend from an index to the platform's manifest, fetch and parse the config, then
//! bring every layer into the blob cache with a bounded number of threads and one
//! progress bar per layer (drawn only when stderr is a terminal). Where blobs come
//! from is the [`BlobSource`] trait.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cache::BlobCache;
use crate::config::parse_config;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::image::{
    diff_ids, manifest_parts, select_platform, Layer, LayerRef, ManifestDoc, Platform,
    ResolvedImage,
};

/// Where the blobs of one image come from (a registry, a cache, a local layout).
pub(crate) trait BlobSource: Sync {
    /// Registry host or local path, for messages.
    fn origin(&self) -> String;
    /// Manifest bytes by digest, verified (and cached where that applies).
    fn manifest(&self, digest: &Digest) -> Result<Vec<u8>>;
    /// Brings blob `digest` (declared `size` bytes) into the cache, verified; `bar`
    /// counts bytes.
    fn blob(&self, digest: &Digest, size: u64, what: &str, bar: &ProgressBar) -> Result<PathBuf>;
}

/// How to fetch layers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FetchOptions {
    /// Upper bound on concurrent layer fetches.
    pub concurrency: usize,
    /// Whether to draw progress bars (still only on a terminal).
    pub progress: bool,
}

/// The root manifest as fetched: bytes, digest and the `Content-Type` if known.
pub(crate) struct Root {
    pub bytes: Vec<u8>,
    pub digest: Digest,
    pub content_type: Option<String>,
}

/// Resolves `root` (an index or a manifest) into an image with all layers cached.
pub(crate) fn assemble(
    src: &dyn BlobSource,
    cache: &BlobCache,
    label: String,
    root: Root,
    platform: &Platform,
    opts: FetchOptions,
) -> Result<ResolvedImage> {
    let origin = src.origin();
    let Root {
        mut bytes,
        mut digest,
        content_type,
    } = root;
    let mut doc = ManifestDoc::parse(&bytes, content_type.as_deref(), &origin)?;
    if let ManifestDoc::Index(index) = &doc {
        digest = select_platform(index, platform, &label)?;
        bytes = src.manifest(&digest)?;
        doc = ManifestDoc::parse(&bytes, None, &origin)?;
    }
    let ManifestDoc::Image(manifest) = doc else {
        return Err(Error::Unsupported {
            origin,
            what: "index".into(),
            detail: format!("the entry for {platform} is itself an index"),
        });
    };
    let parts = manifest_parts(&manifest, &origin)?;
    let (config_digest, layer_refs) = (parts.config, parts.layers);
    let config_path = src.blob(
        &config_digest,
        parts.config_size,
        "config",
        &ProgressBar::hidden(),
    )?;
    let config_bytes =
        std::fs::read(&config_path).map_err(|e| Error::io("read", &config_path, e))?;
    let (config, platform) = parse_config(&config_bytes, &origin)?;
    let diffs = diff_ids(&config_bytes);
    let paths = fetch_layers(src, cache, &layer_refs, opts)?;
    let layers = layer_refs
        .into_iter()
        .zip(paths)
        .enumerate()
        .map(|(i, ((digest, size, compression), path))| Layer {
            digest,
            path,
            size,
            compression,
            diff_id: diffs.get(i).cloned().flatten(),
        })
        .collect();
    Ok(ResolvedImage {
        source: label,
        manifest_digest: Some(digest),
        config_digest: Some(config_digest),
        config,
        platform,
        layers,
    })
}

/// A progress group that draws only when asked to and stderr is a terminal.
pub(crate) fn progress_group(enabled: bool) -> MultiProgress {
    if enabled && std::io::stderr().is_terminal() {
        MultiProgress::with_draw_target(ProgressDrawTarget::stderr())
    } else {
        MultiProgress::with_draw_target(ProgressDrawTarget::hidden())
    }
}

/// Fetches every layer, at most `opts.concurrency` at once; returns paths in order.
/// After the first failure no new fetch starts. Several offline misses are reported
/// together so the user sees everything that is missing.
fn fetch_layers(
    src: &dyn BlobSource,
    cache: &BlobCache,
    layers: &[LayerRef],
    opts: FetchOptions,
) -> Result<Vec<PathBuf>> {
    let group = progress_group(opts.progress);
    let style = ProgressStyle::with_template(
        "{prefix:.bold} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
    )
    .expect("static template")
    .progress_chars("=> ");
    let bars: Vec<ProgressBar> = layers
        .iter()
        .map(|(d, size, _)| {
            let bar = group.add(ProgressBar::new(*size).with_style(style.clone()));
            bar.set_prefix(d.hex()[..12].to_string());
            bar
        })
        .collect();
    let results: Vec<Mutex<Option<Result<PathBuf>>>> =
        layers.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let workers = opts.concurrency.clamp(1, layers.len().max(1));
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= layers.len() || failed.load(Ordering::SeqCst) {
                    return;
                }
                let r = src.blob(&layers[i].0, layers[i].1, "layer", &bars[i]);
                match &r {
                    Ok(_) => bars[i].finish(),
                    Err(Error::OfflineMissing { .. }) => bars[i].abandon(),
                    Err(_) => {
                        bars[i].abandon();
                        failed.store(true, Ordering::SeqCst);
                    }
                }
                *results[i].lock().expect("result slot") = Some(r);
            });
        }
    });
    let mut paths = Vec::new();
    let mut missing = Vec::new();
    for slot in results {
        match slot.into_inner().expect("result slot") {
            Some(Ok(p)) => paths.push(p),
            Some(Err(Error::OfflineMissing { what, .. })) => missing.push(what),
            Some(Err(e)) => return Err(e),
            None => {} // not started because another layer failed
        }
    }
    match missing.len() {
        0 if paths.len() == layers.len() => Ok(paths),
        0 => unreachable!("a layer was skipped only after a failure, which returned above"),
        1 => Err(Error::OfflineMissing {
            what: missing.remove(0),
            cache: cache.root().to_path_buf(),
        }),
        n => Err(Error::OfflineMissing {
            what: format!("{n} layers ({})", missing.join(", ")),
            cache: cache.root().to_path_buf(),
        }),
    }
}
