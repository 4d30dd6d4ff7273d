//! The cast configuration of a crate: what to build (a Containerfile or a prebuilt
//! image) and how the casted executable runs by default (command, environment,
//! kernel, and the VM settings of `cast_core::settings`: cpus, memory, timeout, TTY…).
//!
//! Each source of settings is read into an all-optional [`CastLayer`] (its VM
//! settings through the one parser of each setting, [`VmUpdate::set`]); layers are
//! merged in ONE place, [`resolve`], with this precedence (highest first):
//!
//! 1. the command line (`cargo cast build --cpus 4`, passed to the build script as
//!    `CAST_BUILD_*` variables),
//! 2. `CAST_BUILD_*` environment variables ([`manifest::env_layer`]),
//! 3. a per-binary table `[package.metadata.cast.bin.NAME]`,
//! 4. `[package.metadata.cast]`,
//! 5. `[workspace.metadata.cast]`,
//! 6. the defaults ([`CastConfig`]'s documentation lists them; the VM settings'
//!    are `cast_core::VmSettings::default`).
//!
//! The build never reads the run-time `CAST_*` variables (`CAST_MEMORY`, …): those
//! are for running the executable; one exported for a run is not baked into a
//! build ([`manifest::runtime_vars_ignored`] lists those set, for a note).
//!
//! Maps (`env`, `build-args`) merge key by key, the higher layer winning per key;
//! every other field is taken whole from the highest layer that sets it. Relative
//! paths are resolved against the directory of the manifest that wrote them (the
//! current directory for the command line and the environment).

pub mod manifest;
pub mod value;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cast_core::settings::{Key, Origin, VmUpdate};

pub use manifest::{env_layer, runtime_vars_ignored, ConfigError, ManifestConfig, ENV_VARS, KEYS};
pub use value::KernelSpec;

/// One source's settings; `None` means "not set here".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CastLayer {
    /// Where these settings were given (for messages and the build's report).
    pub origin: Origin,
    /// The Containerfile (or a directory holding one).
    pub containerfile: Option<PathBuf>,
    /// The build context directory.
    pub context: Option<PathBuf>,
    /// A prebuilt image reference to use instead of building a Containerfile.
    pub image: Option<String>,
    /// The program name used in messages and as the guest hostname.
    pub name: Option<String>,
    /// The VM settings given here (cpus, memory, timeout, TTY, …).
    pub vm: VmUpdate,
    /// Replaces the image's ENTRYPOINT (and drops its CMD unless `cmd` is set).
    pub entrypoint: Option<Vec<String>>,
    /// Replaces the image's CMD.
    pub cmd: Option<Vec<String>>,
    /// Environment added to (or overriding) the image's.
    pub env: BTreeMap<String, String>,
    /// Platform of the image, `linux/amd64`.
    pub platform: Option<String>,
    /// `ARG` values.
    pub build_args: BTreeMap<String, String>,
    /// The guest kernel.
    pub kernel: Option<KernelSpec>,
}

impl CastLayer {
    /// `self` laid over `lower`: what `self` sets wins (the result keeps `self`'s
    /// origin). The whole struct is destructured so a new field does not compile
    /// until its merge is decided.
    pub fn over(self, lower: CastLayer) -> CastLayer {
        let CastLayer {
            origin,
            containerfile,
            context,
            image,
            name,
            vm,
            entrypoint,
            cmd,
            env,
            platform,
            build_args,
            kernel,
        } = self;
        let merge = |mut low: BTreeMap<String, String>, high: BTreeMap<String, String>| {
            low.extend(high);
            low
        };
        CastLayer {
            origin,
            containerfile: containerfile.or(lower.containerfile),
            context: context.or(lower.context),
            image: image.or(lower.image),
            name: name.or(lower.name),
            vm: vm.over(lower.vm),
            entrypoint: entrypoint.or(lower.entrypoint),
            cmd: cmd.or(lower.cmd),
            env: merge(lower.env, env),
            platform: platform.or(lower.platform),
            build_args: merge(lower.build_args, build_args),
            kernel: kernel.or(lower.kernel),
        }
    }
}

/// What to build the root filesystem from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource {
    /// A Containerfile and its context directory.
    Containerfile {
        /// The file, or a directory holding `Containerfile`/`Dockerfile`.
        path: PathBuf,
        /// The build context.
        context: PathBuf,
    },
    /// A prebuilt image (registry reference, `oci-layout:DIR`, `docker-archive:FILE`).
    Image(String),
}

/// The resolved configuration of one casted binary.
///
/// Defaults: Containerfile `Containerfile` (else `Dockerfile`) in the crate
/// directory, context its directory, no name (the binary's), the image's entrypoint
/// and cmd, the host platform, the default kernel bundle; VM settings not given are
/// not baked, so the runtime's defaults (`cast_core::VmSettings::default`) apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CastConfig {
    /// The image to build or use.
    pub source: ImageSource,
    /// Program name, when set.
    pub name: Option<String>,
    /// The VM settings given (baked into the executable as its defaults).
    pub vm: VmUpdate,
    /// Where each VM setting given came from, in [`Key::ALL`] order.
    pub vm_origins: Vec<(Key, Origin)>,
    /// Entrypoint override.
    pub entrypoint: Option<Vec<String>>,
    /// Cmd override.
    pub cmd: Option<Vec<String>>,
    /// Environment added to the image's.
    pub env: BTreeMap<String, String>,
    /// Platform, `linux/amd64`; the host's when unset.
    pub platform: Option<String>,
    /// Build arguments.
    pub build_args: BTreeMap<String, String>,
    /// The kernel; the default bundle when unset.
    pub kernel: Option<KernelSpec>,
    /// Things the user asked for that will not happen as asked.
    pub warnings: Vec<String>,
}

/// Merges `layers` (highest precedence first) into a [`CastConfig`]; `crate_dir`
/// anchors the default Containerfile.
pub fn resolve(layers: impl IntoIterator<Item = CastLayer>, crate_dir: &Path) -> CastConfig {
    let layers: Vec<CastLayer> = layers.into_iter().collect();
    let vm_origins = Key::ALL
        .into_iter()
        .filter_map(|key| {
            let layer = layers.iter().find(|l| l.vm.raw(key).is_some())?;
            Some((key, layer.origin.clone()))
        })
        .collect();
    let merged = layers
        .into_iter()
        .fold(None::<CastLayer>, |acc, layer| {
            Some(match acc {
                None => layer,
                Some(high) => high.over(layer),
            })
        })
        .unwrap_or_default();
    let CastLayer {
        origin: _,
        containerfile,
        context,
        image,
        name,
        vm,
        entrypoint,
        cmd,
        env,
        platform,
        build_args,
        kernel,
    } = merged;
    let mut warnings = Vec::new();
    let source = match image {
        Some(image) => {
            if containerfile.is_some() {
                warnings.push(format!(
                    "both `image` ({image}) and `containerfile` are set: the image is used"
                ));
            }
            ImageSource::Image(image)
        }
        None => {
            // A directory is its own context; a file's context is its directory.
            let path = containerfile.unwrap_or_else(|| crate_dir.to_owned());
            let context = context.unwrap_or_else(|| {
                if path == crate_dir || path.is_dir() {
                    path.clone()
                } else {
                    path.parent()
                        .map_or_else(|| crate_dir.to_owned(), Path::to_owned)
                }
            });
            ImageSource::Containerfile { path, context }
        }
    };
    if vm.network == Some(true) {
        warnings.push(
            "network = true: the microVM has no network interface yet, so the program runs \
             without a network; remove the setting (or pass --no-network) to silence this"
                .to_owned(),
        );
    }
    CastConfig {
        source,
        name,
        vm,
        vm_origins,
        entrypoint,
        cmd,
        env,
        platform,
        build_args,
        kernel,
        warnings,
    }
}

impl CastConfig {
    /// The VM settings the executable runs with when no `CAST_*` variable is set.
    pub fn settings(&self) -> cast_core::VmSettings {
        cast_core::VmSettings::resolve([&self.vm])
    }
}
