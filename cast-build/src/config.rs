//! The cast configuration of a crate: what to build (a Containerfile or a prebuilt
//! image) and how the casted executable runs by default (cpus, memory, command,
//! environment, TTY, timeout, kernel).
//!
//! Each source of settings is read into an all-optional [`CastLayer`]; layers are
//! merged in ONE place, [`resolve`], with this precedence (highest first):
//!
//! 1. the command line (`cargo cast build --cpus 4`),
//! 2. `CAST_*` environment variables ([`manifest::env_layer`]),
//! 3. a per-binary table `[package.metadata.cast.bin.NAME]`,
//! 4. `[package.metadata.cast]`,
//! 5. `[workspace.metadata.cast]`,
//! 6. the defaults ([`CastConfig`]'s documentation lists them).
//!
//! Maps (`env`, `build-args`) merge key by key, the higher layer winning per key;
//! every other field is taken whole from the highest layer that sets it. Relative
//! paths are resolved against the directory of the manifest that wrote them (the
//! current directory for the command line and the environment).

pub mod manifest;
pub mod value;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use manifest::{env_layer, ConfigError, ManifestConfig, ENV_VARS, KEYS};
pub use value::{parse_memory, KernelSpec};

/// One source's settings; `None` means "not set here".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CastLayer {
    /// The Containerfile (or a directory holding one).
    pub containerfile: Option<PathBuf>,
    /// The build context directory.
    pub context: Option<PathBuf>,
    /// A prebuilt image reference to use instead of building a Containerfile.
    pub image: Option<String>,
    /// The program name used in messages and as the guest hostname.
    pub name: Option<String>,
    /// vCPUs.
    pub cpus: Option<u32>,
    /// Guest memory in MiB.
    pub memory_mib: Option<u32>,
    /// Replaces the image's ENTRYPOINT (and drops its CMD unless `cmd` is set).
    pub entrypoint: Option<Vec<String>>,
    /// Replaces the image's CMD.
    pub cmd: Option<Vec<String>>,
    /// Environment added to (or overriding) the image's.
    pub env: BTreeMap<String, String>,
    /// Whether the guest gets a network interface.
    pub network: Option<bool>,
    /// Force a pseudo-terminal on or off (auto when unset).
    pub tty: Option<bool>,
    /// Keep stdin open.
    pub interactive: Option<bool>,
    /// Stop the VM after this many seconds.
    pub timeout_secs: Option<u64>,
    /// Platform of the image, `linux/amd64`.
    pub platform: Option<String>,
    /// `ARG` values.
    pub build_args: BTreeMap<String, String>,
    /// The guest kernel.
    pub kernel: Option<KernelSpec>,
}

impl CastLayer {
    /// `self` laid over `lower`: what `self` sets wins. The whole struct is
    /// destructured so a new field does not compile until its merge is decided.
    pub fn over(self, lower: CastLayer) -> CastLayer {
        let CastLayer {
            containerfile,
            context,
            image,
            name,
            cpus,
            memory_mib,
            entrypoint,
            cmd,
            env,
            network,
            tty,
            interactive,
            timeout_secs,
            platform,
            build_args,
            kernel,
        } = self;
        let merge = |mut low: BTreeMap<String, String>, high: BTreeMap<String, String>| {
            low.extend(high);
            low
        };
        CastLayer {
            containerfile: containerfile.or(lower.containerfile),
            context: context.or(lower.context),
            image: image.or(lower.image),
            name: name.or(lower.name),
            cpus: cpus.or(lower.cpus),
            memory_mib: memory_mib.or(lower.memory_mib),
            entrypoint: entrypoint.or(lower.entrypoint),
            cmd: cmd.or(lower.cmd),
            env: merge(lower.env, env),
            network: network.or(lower.network),
            tty: tty.or(lower.tty),
            interactive: interactive.or(lower.interactive),
            timeout_secs: timeout_secs.or(lower.timeout_secs),
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
/// directory, context its directory, no name (the binary's), 2 vCPUs, 512 MiB, the
/// image's entrypoint and cmd, no network, TTY automatic, stdin streamed, no
/// timeout, the host platform, the default kernel bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CastConfig {
    /// The image to build or use.
    pub source: ImageSource,
    /// Program name, when set.
    pub name: Option<String>,
    /// vCPUs.
    pub cpus: u32,
    /// Guest memory in MiB.
    pub memory_mib: u32,
    /// Entrypoint override.
    pub entrypoint: Option<Vec<String>>,
    /// Cmd override.
    pub cmd: Option<Vec<String>>,
    /// Environment added to the image's.
    pub env: BTreeMap<String, String>,
    /// Network requested (the runtime has no NIC yet: see `warnings`).
    pub network: bool,
    /// Forced TTY mode; `None` is automatic.
    pub tty: Option<bool>,
    /// Keep stdin open.
    pub interactive: bool,
    /// Timeout in seconds.
    pub timeout_secs: Option<u64>,
    /// Platform, `linux/amd64`; the host's when unset.
    pub platform: Option<String>,
    /// Build arguments.
    pub build_args: BTreeMap<String, String>,
    /// The kernel; the default bundle when unset.
    pub kernel: Option<KernelSpec>,
    /// Things the user asked for that will not happen as asked.
    pub warnings: Vec<String>,
}

/// Default vCPUs.
pub const DEFAULT_CPUS: u32 = 2;
/// Default guest memory, MiB.
pub const DEFAULT_MEMORY_MIB: u32 = 512;

/// Merges `layers` (highest precedence first) into a [`CastConfig`]; `crate_dir`
/// anchors the default Containerfile.
pub fn resolve(layers: impl IntoIterator<Item = CastLayer>, crate_dir: &Path) -> CastConfig {
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
        containerfile,
        context,
        image,
        name,
        cpus,
        memory_mib,
        entrypoint,
        cmd,
        env,
        network,
        tty,
        interactive,
        timeout_secs,
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
    let network = network.unwrap_or(false);
    if network {
        warnings.push(
            "network = true: the microVM has no network interface yet, so the program runs \
             without a network; remove the setting (or pass --no-network) to silence this"
                .to_owned(),
        );
    }
    CastConfig {
        source,
        name,
        cpus: cpus.unwrap_or(DEFAULT_CPUS),
        memory_mib: memory_mib.unwrap_or(DEFAULT_MEMORY_MIB),
        entrypoint,
        cmd,
        env,
        network,
        tty,
        interactive: interactive.unwrap_or(true),
        timeout_secs,
        platform,
        build_args,
        kernel,
        warnings,
    }
}
