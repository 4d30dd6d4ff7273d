//! The guest kernel of a cast build: a kernel bundle directory, or a kernel fetched
//! from a URL pinned by its SHA-256 (`kernel = { url = "...", sha256 = "..." }`).
//!
//! A URL names a Debian kernel package (`.deb`: its modules are kept, as `cargo
//! cast kernel fetch` does) or a bare kernel image with every driver built in (anything
//! else). The download is verified before use and prepared once into
//! `<cache>/kernel/sha256-<hex>/`; later builds find it there without the network.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use cast_kernel::{KernelBundle, KernelSource};

use crate::config::KernelSpec;

/// Why no kernel bundle could be had.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// No bundle at the path or the default location.
    #[error(transparent)]
    Locate(#[from] cast_kernel::LocateError),
    /// No cache directory to download into.
    #[error("no cache directory for the kernel download: set CAST_CACHE_DIR or HOME")]
    NoCache,
    /// The download failed.
    #[error("cannot download the kernel from {url}")]
    Download {
        /// The URL.
        url: String,
        /// Why.
        #[source]
        source: crate::fetch::FetchError,
    },
    /// The download is not the pinned file.
    #[error("the kernel from {url} has SHA-256 {actual}, but the config pins {expected}; if the new file is the one you want, update `sha256`")]
    Mismatch {
        /// The URL.
        url: String,
        /// The pinned digest.
        expected: String,
        /// The downloaded file's digest.
        actual: String,
    },
    /// The downloaded kernel could not be made into a bundle.
    #[error("cannot prepare the kernel from {url}")]
    Prepare {
        /// The URL.
        url: String,
        /// Why.
        #[source]
        source: cast_kernel::PrepareError,
    },
    /// The cache could not be written.
    #[error("cannot write {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The bundle `spec` names; `None` is the default bundle in the cache (not
/// `CAST_KERNEL`: that is the run time's; a build is told `CAST_BUILD_KERNEL`). URLs are downloaded into `cache` (`cast_core::cache_root::dir()` when `None`).
pub fn bundle(
    spec: Option<&KernelSpec>,
    cache: Option<&Path>,
) -> Result<KernelBundle, KernelError> {
    match spec {
        None => Ok(KernelBundle::locate_default()?),
        Some(KernelSpec::Path(p)) => Ok(KernelBundle::locate(Some(p))?),
        Some(KernelSpec::Url { url, sha256 }) => {
            let root = match cache {
                Some(c) => c.to_owned(),
                None => cast_core::cache_root::dir().ok_or(KernelError::NoCache)?,
            };
            fetch(url, sha256, &cast_core::CacheRoot::new(root).kernels())
        }
    }
}

/// Downloads `url` (once), checks it against `sha256` and prepares a bundle under
/// `dir/sha256-<hex>`.
pub fn fetch(url: &str, sha256: &str, dir: &Path) -> Result<KernelBundle, KernelError> {
    let dest = dir.join(format!("sha256-{sha256}"));
    if let Ok(b) = KernelBundle::open(&dest) {
        return Ok(b);
    }
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| KernelError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let name = url.rsplit('/').next().unwrap_or("kernel");
    let is_deb = name.ends_with(".deb");
    let mut file = tempfile::Builder::new()
        .prefix(".download-")
        .suffix(if is_deb { ".deb" } else { "" })
        .tempfile_in(dir)
        .map_err(io(dir))?;
    let progress = std::io::stderr().is_terminal();
    let download = crate::fetch::download(url, file.as_file_mut(), progress).map_err(|source| {
        KernelError::Download {
            url: url.to_owned(),
            source,
        }
    })?;
    if download.sha256 != sha256 {
        return Err(KernelError::Mismatch {
            url: url.to_owned(),
            expected: sha256.to_owned(),
            actual: download.sha256,
        });
    }
    let source = if is_deb {
        KernelSource::Deb(file.path().to_owned())
    } else {
        KernelSource::File(file.path().to_owned())
    };
    cast_kernel::prepare(&source, &dest).map_err(|source| KernelError::Prepare {
        url: url.to_owned(),
        source,
    })
}
