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
        "no guest kernel found (looked in {looked}); get one with `cargo xtask kernel`, \
         or point --kernel / CAST_KERNEL at a kernel bundle directory"
    )]
    NotFound {
        /// The places looked at, for the message.
        looked: String,
    },
    /// A bundle exists but cannot be read.
    #[error(
        "kernel bundle {dir} is unreadable or damaged; re-create it with `cargo xtask kernel`"
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
        let from_env = std::env::var_os("CAST_KERNEL").filter(|v| !v.is_empty());
        let (dir, what) = match (explicit, from_env) {
            (Some(p), _) => (p.to_owned(), "--kernel"),
            (None, Some(p)) => (PathBuf::from(p), "CAST_KERNEL"),
            (None, None) => match default_bundle_dir() {
                Some(p) => (p, "default location"),
                None => {
                    return Err(LocateError::NotFound {
                        looked: "no cache directory: HOME is unset".into(),
                    })
                }
            },
        };
        if !dir.join("bundle.json").exists() {
            return Err(LocateError::NotFound {
                looked: format!("{what}: {}", dir.display()),
            });
        }
        Self::open(&dir)
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

/// cargo-cast's cache root: `CAST_CACHE_DIR`, else the platform's cache directory +
/// `cast` (`$XDG_CACHE_HOME/cast` or `~/.cache/cast` on Linux,
/// `~/Library/Caches/cast` on macOS). `None` when not even `HOME` is set.
pub fn cache_dir() -> Option<PathBuf> {
    cache_dir_from(|k| std::env::var(k).ok())
}

/// As [`cache_dir`], reading the environment through `get` (empty counts as unset).
pub fn cache_dir_from(get: impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let get = |k: &str| get(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = get("CAST_CACHE_DIR") {
        return Some(dir);
    }
    let platform = if cfg!(target_os = "macos") {
        get("HOME").map(|h| h.join("Library/Caches"))
    } else {
        get("XDG_CACHE_HOME").or_else(|| get("HOME").map(|h| h.join(".cache")))
    };
    platform.map(|d| d.join("cast"))
}

/// Where `cargo xtask kernel` puts the bundle and the runtime looks by default.
pub fn default_bundle_dir() -> Option<PathBuf> {
    cache_dir().map(|d| d.join("kernel").join("default"))
}

/// Where `cargo xtask setup` puts the bundle of Debian's generic kernel
/// ([`DEBIAN_9P_PACKAGE`](crate::DEBIAN_9P_PACKAGE)): 9p for host mounts, which
/// the default cloud kernel lacks. The mount tests use it.
pub fn generic_bundle_dir() -> Option<PathBuf> {
    cache_dir().map(|d| d.join("kernel").join("debian-generic"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_root_follows_cast_cache_dir_then_the_platform() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        const ALL: [(&str, &str); 3] = [
            ("CAST_CACHE_DIR", "/c"),
            ("XDG_CACHE_HOME", "/x"),
            ("HOME", "/h"),
        ];
        assert_eq!(cache_dir_from(env(&ALL)), Some(PathBuf::from("/c")));
        const NO_CAST: [(&str, &str); 3] = [
            ("CAST_CACHE_DIR", ""),
            ("XDG_CACHE_HOME", "/x"),
            ("HOME", "/h"),
        ];
        const HOME_ONLY: [(&str, &str); 1] = [("HOME", "/h")];
        if cfg!(target_os = "macos") {
            assert_eq!(
                cache_dir_from(env(&HOME_ONLY)),
                Some(PathBuf::from("/h/Library/Caches/cast"))
            );
        } else {
            assert_eq!(
                cache_dir_from(env(&NO_CAST)),
                Some(PathBuf::from("/x/cast"))
            );
            assert_eq!(
                cache_dir_from(env(&HOME_ONLY)),
                Some(PathBuf::from("/h/.cache/cast"))
            );
        }
        assert_eq!(cache_dir_from(env(&[])), None);
    }
}
