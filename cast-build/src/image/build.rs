//! From a [`CastConfig`] to a root image and the run config it starts with:
//! [`build_image`] builds a Containerfile (base images through
//! [`cast_oci::Resolver`], layers applied with `cast_rootfs`, COPY/ADD/WORKDIR by
//! [`crate::builder`], the tree written with `cast_rootfs::erofs`) or unpacks a
//! prebuilt image, through the [`BuildCache`], so an unchanged build does no image
//! work. ADD URLs without `--checksum` are downloaded before the cache lookup, so
//! what they serve is part of the key. The crate's overrides (entrypoint, cmd, env) are applied last, outside
//! the cache.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use cast_oci::{Platform, ResolveOptions, Resolver};
use cast_rootfs::erofs;

use crate::cache::{BuildCache, CacheError, CachedImage, KeyBuilder};
use crate::config::{CastConfig, ImageSource};
use crate::oci::{chain, run_config_of, OciImages};
use crate::runconfig::RunConfig;
use crate::runvm::VmRunner;
use crate::{BuildContext, Containerfile, EvalOptions, Remote};

/// How [`build_image`] works, besides the configuration.
#[derive(Debug, Clone)]
pub struct ImageOptions {
    /// Registry and blob cache settings (the platform comes from the config).
    pub resolve: ResolveOptions,
    /// The blob cache root; the user's default when `None`.
    pub blob_cache: Option<PathBuf>,
    /// The build cache.
    pub cache: BuildCache,
    /// EROFS writer options.
    pub erofs: erofs::Options,
    /// The stage to build; the last when `None`.
    pub target: Option<String>,
    /// What `RUN --mount=type=secret` mounts ([`crate::secret`]).
    pub secrets: Vec<crate::secret::Secret>,
    /// Build every step again (`--no-cache`): cache entries are not looked up,
    /// and what is built replaces them.
    pub no_cache: bool,
}

/// Set (to anything but empty or `0`) by `cargo cast build --no-cache`. cargo cast
/// puts a fresh value in it each time, so Cargo reruns the build script.
pub const NO_CACHE_ENV: &str = "CAST_BUILD_NO_CACHE";

impl ImageOptions {
    /// The user's caches, `SOURCE_DATE_EPOCH`, progress bars when `progress`;
    /// offline (caches and local sources only) when `CAST_OFFLINE` or Cargo's
    /// `CARGO_NET_OFFLINE` is `true` or `1`.
    pub fn from_env(progress: bool) -> Result<Self, ImageError> {
        let cwd = std::env::current_dir().unwrap_or_default();
        let cache = BuildCache::default_location().ok_or(ImageError::NoCacheDir)?;
        let offline = ["CAST_OFFLINE", "CARGO_NET_OFFLINE"]
            .iter()
            .any(|k| std::env::var(k).is_ok_and(|v| matches!(v.as_str(), "1" | "true")));
        Ok(Self {
            resolve: ResolveOptions {
                progress,
                offline,
                ..ResolveOptions::default()
            },
            blob_cache: None,
            cache,
            erofs: erofs::Options::from_env(),
            target: None,
            secrets: crate::secret::from_env(|k| std::env::var(k).ok(), &cwd)
                .map_err(ImageError::Secret)?,
            no_cache: std::env::var_os(NO_CACHE_ENV).is_some_and(|v| !v.is_empty() && v != "0"),
        })
    }
}

/// A root image ready for a payload.
#[derive(Debug, Clone)]
pub struct BuiltImage {
    /// The EROFS image (inside the build cache).
    pub root_image: PathBuf,
    /// The run config with the crate's overrides applied.
    pub run_config: RunConfig,
    /// Files the build read, for `rerun-if-changed`.
    pub inputs: Vec<PathBuf>,
    /// Whether the cache had it (no image work was done).
    pub cache_hit: bool,
    /// Build VMs booted for RUN steps (0 on a cache hit).
    pub vm_boots: u32,
    /// RUN steps whose layer came from the step cache.
    pub cached_steps: u32,
    /// Time spent, resolution included.
    pub elapsed: Duration,
    /// The cache key.
    pub key: String,
}

impl BuiltImage {
    /// `N build VM boots, M RUN steps from the step cache`.
    pub fn run_summary(&self) -> String {
        run_summary(self.vm_boots, self.cached_steps)
    }
}

/// How RUN steps were done, for status lines: `N build VM boots, M RUN steps from
/// the step cache`.
pub fn run_summary(vm_boots: u32, cached_steps: u32) -> String {
    format!("{vm_boots} build VM boots, {cached_steps} RUN steps from the step cache")
}

/// Why an image could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// No cache directory (no `HOME`, no `CAST_CACHE_DIR`).
    #[error("no cache directory: set CAST_CACHE_DIR or HOME")]
    NoCacheDir,
    /// The platform does not parse.
    #[error("bad platform")]
    Platform(#[source] cast_oci::Error),
    /// The blob cache cannot be opened.
    #[error("cannot open the image blob cache")]
    BlobCache(#[source] cast_oci::Error),
    /// Building the Containerfile failed.
    #[error(transparent)]
    Build(#[from] crate::BuildFileError),
    /// A prebuilt image could not be had.
    #[error("cannot use image {image}: {why}")]
    Image {
        /// The reference.
        image: String,
        /// Why.
        why: String,
    },
    /// The build cache failed.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// A `--secret` cannot be had.
    #[error("{0}")]
    Secret(String),
    /// A build VM setting is wrong.
    #[error(transparent)]
    Settings(cast_core::SettingError),
    /// The root image could not be written.
    #[error("cannot write the root image {}", path.display())]
    Write {
        /// The file being written (in the build cache's staging directory).
        path: PathBuf,
        /// Why.
        #[source]
        source: erofs::WriteError,
    },
}

/// Builds (or finds in the cache) the root image `config` describes.
pub fn build_image(config: &CastConfig, options: &ImageOptions) -> Result<BuiltImage, ImageError> {
    let started = Instant::now();
    let platform = match &config.platform {
        Some(p) => Platform::parse(p).map_err(ImageError::Platform)?,
        None => Platform::host(),
    };
    let resolve = ResolveOptions {
        platform: platform.clone(),
        ..options.resolve.clone()
    };
    let blobs = match &options.blob_cache {
        Some(dir) => cast_oci::BlobCache::open(dir),
        None => cast_oci::BlobCache::default_root(|k| std::env::var(k).ok())
            .and_then(cast_oci::BlobCache::open),
    }
    .map_err(ImageError::BlobCache)?;
    let mut images = OciImages::new(Resolver::new(blobs, resolve.clone()), resolve);
    let key = KeyBuilder::default()
        .part("platform", format!("{platform:?}"))
        .part("erofs", format!("{:?}", options.erofs));
    let mut runs = VmRunner::new(
        config.kernel.clone(),
        &platform.architecture,
        options.cache.root(),
    )
    .map_err(ImageError::Settings)?;
    for secret in &options.secrets {
        runs.add_secret(secret.clone());
    }
    runs.no_cache = options.no_cache;
    let (cached, hit) = match &config.source {
        ImageSource::Containerfile { path, context } => {
            containerfile(path, context, config, options, &mut images, &mut runs, key)?
        }
        ImageSource::Image(image) => prebuilt(image, options, &mut images, key)?,
    };
    let mut run_config = cached.run_config.clone();
    apply_overrides(&mut run_config, config);
    Ok(BuiltImage {
        root_image: cached.root_image,
        run_config,
        inputs: cached.inputs,
        cache_hit: hit,
        vm_boots: runs.boots,
        cached_steps: runs.cached_steps,
        elapsed: started.elapsed(),
        key: cached.key,
    })
}

fn containerfile(
    path: &std::path::Path,
    context: &std::path::Path,
    config: &CastConfig,
    options: &ImageOptions,
    images: &mut OciImages,
    runs: &mut VmRunner,
    key: KeyBuilder,
) -> Result<(CachedImage, bool), ImageError> {
    use crate::BuildFileError as E;
    let file = crate::info::find_containerfile(path).map_err(E::from)?;
    let parsed = Containerfile::read(&file).map_err(E::from)?;
    let eval = EvalOptions {
        build_args: config.build_args.clone().into_iter().collect(),
        target: options.target.clone(),
    };
    let plan = crate::evaluate(&parsed, &eval, images).map_err(E::from)?;
    let text = std::fs::read(&file).unwrap_or_default();
    let mut key = key
        .part("containerfile", &text)
        .part("target", format!("{:?}", options.target))
        .part("context", context.as_os_str().as_encoded_bytes());
    for (k, v) in &config.build_args {
        key = key.part("arg", format!("{k}={v}"));
    }
    for (image, plat, digest) in images.digests() {
        key = key.part("base", format!("{image} {plat} {digest}"));
    }
    let mut remote = Remote::new(options.resolve.offline, options.resolve.progress);
    for part in remote.key_parts(&plan).map_err(E::from)? {
        key = key.part("url", part);
    }
    let key = key.finish();
    if let Some(hit) = options.cache.lookup(&key).filter(|_| !options.no_cache) {
        return Ok((hit, true));
    }
    let ctx = BuildContext::open_for(context, Some(&file)).map_err(E::from)?;
    let built = crate::build_with(&plan, &ctx, images, &mut remote, runs).map_err(E::from)?;
    let staging = options.cache.staging(&key)?;
    let path = staging.path().join("root.erofs");
    erofs::write_image_to_path(&built.tree, &options.erofs, &path)
        .map_err(|source| ImageError::Write { path, source })?;
    let file = file.canonicalize().unwrap_or(file);
    let inputs = std::iter::once(file).chain(built.context_files);
    Ok((
        options.cache.store(staging, &built.run_config, inputs)?,
        false,
    ))
}

fn prebuilt(
    image: &str,
    options: &ImageOptions,
    images: &mut OciImages,
    key: KeyBuilder,
) -> Result<(CachedImage, bool), ImageError> {
    let err = |why: String| ImageError::Image {
        image: image.to_owned(),
        why,
    };
    let resolved = images
        .resolve(image, None)
        .map_err(|e| err(e.to_string()))?
        .clone();
    let mut key = key.part("image", image);
    for (image, plat, digest) in images.digests() {
        key = key.part("base", format!("{image} {plat} {digest}"));
    }
    let key = key.finish();
    if let Some(hit) = options.cache.lookup(&key).filter(|_| !options.no_cache) {
        return Ok((hit, true));
    }
    let tree = OciImages::apply_layers(&resolved).map_err(|e| err(e.to_string()))?;
    let staging = options.cache.staging(&key)?;
    let path = staging.path().join("root.erofs");
    erofs::write_image_to_path(&tree, &options.erofs, &path)
        .map_err(|source| ImageError::Write { path, source })?;
    let rc = run_config_of(&resolved.config);
    Ok((options.cache.store(staging, &rc, Vec::new())?, false))
}

/// Applies the crate's entrypoint, cmd and env over the image's, as `docker run
/// --entrypoint` does: a new entrypoint drops the image's cmd unless cmd is set too.
pub fn apply_overrides(rc: &mut RunConfig, config: &CastConfig) {
    if let Some(ep) = &config.entrypoint {
        rc.entrypoint = Some(ep.clone());
        rc.cmd = None;
    }
    if let Some(cmd) = &config.cmd {
        rc.cmd = Some(cmd.clone());
    }
    for (k, v) in &config.env {
        rc.set_env(k, v);
    }
}

/// An error and its causes on one line (for build scripts and the CLI).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    chain(e)
}
