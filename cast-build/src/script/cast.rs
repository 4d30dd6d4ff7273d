//! The build-script API of a casted crate:
//!
//! ```no_run
//! // build.rs
//! fn main() -> Result<(), cast_build::CastError> {
//!     cast_build::Cast::from_env()?.build()?;
//!     Ok(())
//! }
//! ```
//!
//! [`Cast::from_env`] reads the crate's `[package.metadata.cast]` (with
//! `[workspace.metadata.cast]` as fallback, see [`crate::config`]) and the `CAST_*`
//! variables; [`Cast::build`] builds the root image through the build cache, adds
//! the kernel and initrd, writes the payload object into `OUT_DIR`, tells Cargo to
//! link it, and prints `rerun-if-changed` for every file the build read
//! (Containerfile, ignore file, context files, manifests, kernel bundle) and
//! `rerun-if-env-changed` for every variable it reads. It also writes
//! `OUT_DIR/cast-report.json` (cache hit or not, time, sizes) for `cargo cast build`.
//!
//! A crate with `[package.metadata.cast.bin.NAME]` tables gets one payload per such
//! binary, each linked only into its binary; otherwise one payload goes to every
//! binary of the package.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use cast_payload::{ObjectTarget, PayloadBuilder, VmDefaults};
use serde::{Deserialize, Serialize};

use crate::config::{self, manifest, CastConfig, CastLayer, ManifestConfig};
use crate::image::{build_image, error_chain, ImageError, ImageOptions};

/// File name of the report in `OUT_DIR`.
pub const REPORT_FILE: &str = "cast-report.json";

/// Variables besides [`config::ENV_VARS`] that change what a build produces.
const MORE_ENV: &[&str] = &[
    "CAST_CACHE_DIR",
    "XDG_CACHE_HOME",
    "SOURCE_DATE_EPOCH",
    crate::secret::ENV,
    crate::image::NO_CACHE_ENV,
];

/// A cast build, set up from a build script's environment.
#[derive(Debug)]
pub struct Cast {
    manifest: PathBuf,
    crate_dir: PathBuf,
    out_dir: PathBuf,
    target: String,
    package: String,
    config: ManifestConfig,
    env: CastLayer,
    /// Run-time `CAST_*` variables that are set, which the build does not read
    /// (shown as Cargo warnings; `cargo cast build` says it itself).
    notes: Vec<String>,
    overrides: CastLayer,
    image: Option<ImageOptions>,
}

/// What [`Cast::build`] did, per payload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CastReport {
    /// One entry per payload.
    pub payloads: Vec<PayloadReport>,
}

/// One payload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PayloadReport {
    /// The binary it is linked into; `None` for all of the package's binaries.
    pub bin: Option<String>,
    /// The tool's name.
    pub name: String,
    /// Whether the root image came from the build cache (no image work).
    pub cache_hit: bool,
    /// Milliseconds spent on the image (resolution included).
    pub image_ms: u64,
    /// Build VMs booted for RUN steps.
    #[serde(default)]
    pub vm_boots: u32,
    /// RUN steps whose layer came from the step cache.
    #[serde(default)]
    pub cached_steps: u32,
    /// Root image bytes.
    pub root_image_bytes: u64,
    /// Payload bytes.
    pub payload_bytes: u64,
    /// Warnings about the configuration.
    pub warnings: Vec<String>,
    /// The VM settings baked in and where each was given.
    #[serde(default)]
    pub baked: Vec<BakedSetting>,
}

/// One VM setting baked into an executable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BakedSetting {
    /// The setting, as a manifest key: `memory`.
    pub key: String,
    /// Its value: `1G`.
    pub value: String,
    /// Where it was given: `CAST_BUILD_MEMORY`, `memory in [package.metadata.cast] of …`.
    pub from: String,
}

/// Why a cast build failed. Its `Debug` prints the whole cause chain, so a build
/// script's `main` can return it.
#[derive(thiserror::Error)]
pub enum CastError {
    /// Not run by Cargo as a build script.
    #[error("{0} is not set: Cast::from_env() must run in a build script")]
    NotInBuildScript(&'static str),
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// The image could not be built.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// The kernel could not be had.
    #[error("no guest kernel")]
    Kernel(#[from] crate::kernel::KernelError),
    /// The initrd could not be made.
    #[error("cannot build the initrd")]
    Initrd(#[source] std::io::Error),
    /// The payload could not be written.
    #[error("cannot write the payload")]
    Payload(#[source] cast_payload::BuildError),
}

impl fmt::Debug for CastError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&error_chain(self))?;
        if cast_core::disk_full::is_disk_full(self) {
            let cache = cast_core::cache_root::dir();
            write!(
                f,
                "\nhint: {}",
                cast_core::disk_full::hint(cache.as_deref())
            )?;
        }
        Ok(())
    }
}

impl Cast {
    /// Reads `CARGO_MANIFEST_DIR`, `OUT_DIR`, `TARGET`, the manifests and
    /// `CAST_BUILD_*` (never the run time's `CAST_*`: see [`crate::config`]).
    pub fn from_env() -> Result<Self, CastError> {
        let var = |k: &'static str| std::env::var_os(k).ok_or(CastError::NotInBuildScript(k));
        let crate_dir = PathBuf::from(var("CARGO_MANIFEST_DIR")?);
        let out_dir = PathBuf::from(var("OUT_DIR")?);
        let target = var("TARGET")?.to_string_lossy().into_owned();
        let package = std::env::var("CARGO_PKG_NAME").unwrap_or_else(|_| "cast".into());
        let manifest = crate_dir.join("Cargo.toml");
        let config = ManifestConfig::load(&manifest)?;
        let env = config::env_layer(|k| std::env::var(k).ok(), &crate_dir)?;
        let notes = config::runtime_vars_ignored(|k| std::env::var(k).ok());
        Ok(Self {
            manifest,
            crate_dir,
            out_dir,
            target,
            package,
            config,
            env,
            notes,
            overrides: CastLayer::default(),
            image: None,
        })
    }

    /// Settings above everything else (as the command line would give).
    pub fn overrides(mut self, layer: CastLayer) -> Self {
        self.overrides = layer;
        self
    }

    /// Image options (caches, registry settings); the user's caches by default.
    pub fn image_options(mut self, options: ImageOptions) -> Self {
        self.image = Some(options);
        self
    }

    /// The resolved configuration of `bin` (`None`: the package's).
    pub fn config(&self, bin: Option<&str>) -> CastConfig {
        let layers = [self.overrides.clone(), self.env.clone()]
            .into_iter()
            .chain(self.config.layers(bin));
        config::resolve(layers, &self.crate_dir)
    }

    /// Builds and links every payload; see the module documentation.
    pub fn build(self) -> Result<CastReport, CastError> {
        let options = match self.image.clone() {
            Some(o) => o,
            None => ImageOptions::from_env(false)?,
        };
        let bins: Vec<Option<String>> = if self.config.bins.is_empty() {
            vec![None]
        } else {
            self.config.bins.keys().cloned().map(Some).collect()
        };
        let mut rerun: BTreeSet<PathBuf> = manifest::manifests_read(&self.manifest)
            .into_iter()
            .collect();
        let mut report = CastReport {
            payloads: Vec::new(),
        };
        let target = ObjectTarget::from_triple(&self.target).map_err(CastError::Payload)?;
        for bin in bins {
            let config = self.config(bin.as_deref());
            for w in config.warnings.iter().chain(&self.notes) {
                println!("cargo:warning={w}");
            }
            let image = build_image(&config, &options)?;
            rerun.extend(image.inputs.iter().cloned());
            let bundle = crate::kernel::bundle(config.kernel.as_ref(), None)?;
            rerun.insert(bundle.dir.join("bundle.json"));
            let initrd = cast_guest::initrd::build(&bundle).map_err(CastError::Initrd)?;
            let name = config
                .name
                .clone()
                .or_else(|| bin.clone())
                .unwrap_or_else(|| self.package.clone());
            let vm = VmDefaults {
                name: name.clone(),
                settings: config.vm.clone(),
            };
            let mut builder = PayloadBuilder::new(image.run_config.clone(), vm)
                .kernel(bundle.kernel_path(), bundle.manifest.release.clone())
                .initrd(initrd)
                .root_image(&image.root_image);
            // Level 19 takes most of a minute (cached once per kernel); debug builds
            // stay quick with level 3.
            if std::env::var("PROFILE").as_deref() != Ok("release") {
                builder = builder.zstd_level(3);
            }
            let dir = match &bin {
                Some(b) => self.out_dir.join(format!("cast-{b}")),
                None => self.out_dir.clone(),
            };
            std::fs::create_dir_all(&dir).map_err(|source| {
                CastError::Payload(cast_payload::BuildError::Io {
                    what: format!("creating {}", dir.display()),
                    source,
                })
            })?;
            let linked = cast_payload::write_payload_object(&builder, target, &dir)
                .map_err(CastError::Payload)?;
            match &bin {
                Some(b) => println!("cargo:rustc-link-arg-bin={b}={}", linked.object.display()),
                None => println!("cargo:rustc-link-arg-bins={}", linked.object.display()),
            }
            report.payloads.push(PayloadReport {
                bin,
                name,
                cache_hit: image.cache_hit,
                vm_boots: image.vm_boots,
                cached_steps: image.cached_steps,
                image_ms: image.elapsed.as_millis() as u64,
                root_image_bytes: file_len(&image.root_image),
                payload_bytes: linked.payload_len,
                warnings: config.warnings.clone(),
                baked: baked(&config),
            });
        }
        for path in &rerun {
            println!("cargo:rerun-if-changed={}", path.display());
        }
        for var in config::ENV_VARS.iter().chain(MORE_ENV) {
            println!("cargo:rerun-if-env-changed={var}");
        }
        let json = serde_json::to_vec_pretty(&report).expect("plain data serialises");
        let _ = std::fs::write(self.out_dir.join(REPORT_FILE), json);
        Ok(report)
    }
}

fn baked(config: &CastConfig) -> Vec<BakedSetting> {
    let settings = config.settings();
    config
        .vm_origins
        .iter()
        .map(|(key, origin)| BakedSetting {
            key: key.name().into(),
            value: settings.show(*key),
            from: origin.describe(*key),
        })
        .collect()
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}
