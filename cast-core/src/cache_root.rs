//! The cache root and its layout: one directory (`$CAST_CACHE_DIR`, else the
//! platform's cache directory + `cast`) that several crates write, each in its own
//! area. The areas are named here, once; each writer keeps its own discipline inside
//! its area (temp name + rename, locks), see ARCHITECTURE.md.

use std::path::{Path, PathBuf};

/// The cache root of the current environment; `None` when not even `HOME` is set.
pub fn dir() -> Option<PathBuf> {
    dir_from(|k| std::env::var(k).ok())
}

/// As [`dir`], reading the environment through `get` (empty counts as unset):
/// `CAST_CACHE_DIR`, else `$XDG_CACHE_HOME/cast` or `~/.cache/cast` on Linux,
/// `~/Library/Caches/cast` on macOS.
pub fn dir_from(get: impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
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

/// The areas of a cache root, as paths under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheRoot {
    root: PathBuf,
}

impl CacheRoot {
    /// The layout under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        CacheRoot { root: root.into() }
    }

    /// The layout under [`dir`].
    pub fn from_env() -> Option<Self> {
        dir().map(Self::new)
    }

    /// The root itself.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// `blobs/sha256/`: image layers and configs by digest (cast-oci).
    pub fn blobs(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    /// `refs/`: tag → digest records of pulled images (cast-oci).
    pub fn refs(&self) -> PathBuf {
        self.root.join("refs")
    }

    /// `locks/`: one lock per blob digest (cast-oci).
    pub fn locks(&self) -> PathBuf {
        self.root.join("locks")
    }

    /// `build/`: built root images and run configs by cache key (cast-build).
    pub fn build(&self) -> PathBuf {
        self.root.join("build")
    }

    /// `kernel/`: kernel bundles, `default` and downloaded `sha256-*` (cast-kernel,
    /// cast-build).
    pub fn kernels(&self) -> PathBuf {
        self.root.join("kernel")
    }

    /// `kernel/default`: the default kernel (`cargo cast kernel fetch`/`use`: a
    /// bundle or a link to a sibling one), where builds and runs look by default.
    pub fn default_kernel(&self) -> PathBuf {
        self.kernels().join("default")
    }

    /// `kernel/built`: where `cargo cast kernel build` puts the kernel it compiles
    /// (chosen with `--kernel`/`CAST_KERNEL`).
    pub fn built_kernel(&self) -> PathBuf {
        self.kernels().join("built")
    }

    /// `kernel/debian-generic`: Debian's generic kernel, with 9p for host mounts
    /// (`cargo cast kernel fetch debian:linux-image-amd64`; the mount tests use it).
    pub fn generic_kernel(&self) -> PathBuf {
        self.kernels().join("debian-generic")
    }

    /// `mnt/`: an empty directory, the mount point of the private tmpfs that
    /// single-file mounts are shared from (only ever mounted on inside QEMU's own
    /// mount namespace; cast-runner).
    pub fn mount_point(&self) -> PathBuf {
        self.root.join("mnt")
    }

    /// `payload/kernel/`: decompressed kernels of casted executables (cast-payload).
    pub fn payload_kernels(&self) -> PathBuf {
        self.root.join("payload").join("kernel")
    }

    /// `payload/zstd/`: compressed kernels, reused across builds (cast-payload).
    pub fn payload_zstd(&self) -> PathBuf {
        self.root.join("payload").join("zstd")
    }

    /// `payload/verified/`: stamps of root images already hashed (cast-runner).
    pub fn payload_verified(&self) -> PathBuf {
        self.root.join("payload").join("verified")
    }

    /// `target/`: Cargo's target directory for `cargo cast build DIR` (cargo-cast).
    pub fn target(&self) -> PathBuf {
        self.root.join("target")
    }
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
        assert_eq!(dir_from(env(&ALL)), Some(PathBuf::from("/c")));
        const NO_CAST: [(&str, &str); 3] = [
            ("CAST_CACHE_DIR", ""),
            ("XDG_CACHE_HOME", "/x"),
            ("HOME", "/h"),
        ];
        const HOME_ONLY: [(&str, &str); 1] = [("HOME", "/h")];
        if cfg!(target_os = "macos") {
            assert_eq!(
                dir_from(env(&HOME_ONLY)),
                Some(PathBuf::from("/h/Library/Caches/cast"))
            );
        } else {
            assert_eq!(dir_from(env(&NO_CAST)), Some(PathBuf::from("/x/cast")));
            assert_eq!(
                dir_from(env(&HOME_ONLY)),
                Some(PathBuf::from("/h/.cache/cast"))
            );
        }
        assert_eq!(dir_from(env(&[])), None);
    }

    #[test]
    fn areas_live_under_the_root() {
        let c = CacheRoot::new("/c");
        assert_eq!(c.blobs(), Path::new("/c/blobs/sha256"));
        assert_eq!(c.default_kernel(), Path::new("/c/kernel/default"));
        assert_eq!(c.payload_kernels(), Path::new("/c/payload/kernel"));
        assert_eq!(c.target(), Path::new("/c/target"));
    }
}
