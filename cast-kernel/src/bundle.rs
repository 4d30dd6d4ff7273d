//! The bundle on disk (`bundle.json` + files) and how the runtime finds it.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Version of the `bundle.json` layout.
pub const BUNDLE_FORMAT: u32 = 1;

/// The contents of `bundle.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleManifest {
    /// Layout version (`BUNDLE_FORMAT`).
    pub format: u32,
    /// The kernel release (`uname -r` in the guest), if known.
    pub release: Option<String>,
    /// Where the kernel came from, for `--cast-info` and bug reports.
    pub source: String,
    /// The kernel image file, relative to the bundle directory.
    pub kernel: String,
    /// SHA-256 of the kernel image, lowercase hex.
    pub kernel_sha256: String,
    /// Module files relative to the bundle directory, in load order (dependencies first).
    pub modules: Vec<String>,
}

/// A bundle found on disk.
#[derive(Debug, Clone)]
pub struct KernelBundle {
    /// The bundle directory.
    pub dir: PathBuf,
    /// Its manifest.
    pub manifest: BundleManifest,
}

/// No usable kernel bundle.
#[derive(Debug, thiserror::Error)]
pub enum LocateError {
    /// Nothing at any of the places looked at.
    #[error(
        "no guest kernel found (looked in {looked}); get one with `cargo cast kernel fetch`, \
         or point --kernel / CAST_KERNEL at a kernel bundle directory"
    )]
    NotFound {
        /// The places looked at, for the message.
        looked: String,
    },
    /// A bundle exists but cannot be read.
    #[error(
        "kernel bundle {dir} is unreadable or damaged; fetch it again with \
         `cargo cast kernel fetch --force`"
    )]
    Damaged {
        /// The bundle directory.
        dir: PathBuf,
        /// What is wrong with it.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl KernelBundle {
    /// Reads the bundle in `dir` and checks that its files exist.
    pub fn open(dir: &Path) -> Result<Self, LocateError> {
        let damaged = |source: Box<dyn std::error::Error + Send + Sync>| LocateError::Damaged {
            dir: dir.to_owned(),
            source,
        };
        let text = std::fs::read(dir.join("bundle.json")).map_err(|e| damaged(e.into()))?;
        let manifest: BundleManifest =
            serde_json::from_slice(&text).map_err(|e| damaged(e.into()))?;
        if manifest.format != BUNDLE_FORMAT {
            return Err(damaged(
                format!(
                    "bundle format {} (expected {BUNDLE_FORMAT})",
                    manifest.format
                )
                .into(),
            ));
        }
        for file in std::iter::once(&manifest.kernel).chain(&manifest.modules) {
            if file.contains("..") || Path::new(file).is_absolute() {
                return Err(damaged(format!("bad file name {file:?}").into()));
            }
            if !dir.join(file).is_file() {
                return Err(damaged(format!("missing {file}").into()));
            }
        }
        Ok(KernelBundle {
            dir: dir.to_owned(),
            manifest,
        })
    }

    /// Finds the bundle to use: `explicit` (a `--kernel` flag), else `CAST_KERNEL`, else
    /// [`default_bundle_dir`].
    pub fn locate(explicit: Option<&Path>) -> Result<Self, LocateError> {
        let from_env = std::env::var_os("CAST_KERNEL")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        match (explicit, from_env) {
            (Some(p), _) => Self::open_named(p, "--kernel"),
            (None, Some(p)) => Self::open_named(&p, "CAST_KERNEL"),
            (None, None) => Self::locate_default(),
        }
    }

    /// The bundle at [`default_bundle_dir`], whatever `CAST_KERNEL` says (a build
    /// takes its kernel from its own settings, not from the run time's variable).
    pub fn locate_default() -> Result<Self, LocateError> {
        let dir = default_bundle_dir().ok_or_else(|| LocateError::NotFound {
            looked: "no cache directory: HOME is unset".into(),
        })?;
        Self::open_named(&dir, "default location")
    }

    /// Opens `dir`, saying `what` named it when there is no bundle.
    fn open_named(dir: &Path, what: &str) -> Result<Self, LocateError> {
        if !dir.join("bundle.json").exists() {
            return Err(LocateError::NotFound {
                looked: format!("{what}: {}", dir.display()),
            });
        }
        Self::open(dir)
    }

    /// The kernel image path.
    pub fn kernel_path(&self) -> PathBuf {
        self.dir.join(&self.manifest.kernel)
    }

    /// Module paths in load order.
    pub fn module_paths(&self) -> impl Iterator<Item = PathBuf> + '_ {
        self.manifest.modules.iter().map(|m| self.dir.join(m))
    }
}

/// The default kernel (`cargo cast kernel fetch`/`use`), where builds and runs look
/// when nothing else is named.
pub fn default_bundle_dir() -> Option<PathBuf> {
    cast_core::cache_root::CacheRoot::from_env().map(|c| c.default_kernel())
}

/// Where Debian's cloud kernel goes by default (`kernel/default`, unless `cargo
/// cast kernel use` chose another): the boot benchmark's baseline.
pub fn debian_bundle_dir() -> Option<PathBuf> {
    cast_core::cache_root::CacheRoot::from_env().map(|c| c.default_kernel())
}

/// Where `cargo cast kernel fetch debian:linux-image-amd64` puts the bundle of
/// Debian's generic kernel ([`DEBIAN_9P_PACKAGE`](crate::DEBIAN_9P_PACKAGE)): 9p for host mounts, which
/// the default cloud kernel lacks. The mount tests use it.
pub fn generic_bundle_dir() -> Option<PathBuf> {
    cast_core::cache_root::CacheRoot::from_env().map(|c| c.generic_kernel())
}
