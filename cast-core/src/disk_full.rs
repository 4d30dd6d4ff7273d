//! A full disk, told apart from other write failures so the user learns what to free.
//!
//! A build writes to three places that can fill up: the cast cache (blobs, build
//! entries, kernels), Cargo's target directory and the build script's `OUT_DIR`.
//! When a write fails with "No space left on device" (or a quota), the error chain
//! already names the file; [`hint`] adds where the cache is and how to free it.

use std::error::Error;
use std::io;
use std::path::Path;

/// Whether `err` or any error in its `source()` chain is an I/O error saying the
/// disk (or the user's quota) is full.
pub fn is_disk_full(err: &(dyn Error + 'static)) -> bool {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            if is_full_kind(io.kind()) {
                return true;
            }
        }
        cur = e.source();
    }
    false
}

/// Whether an I/O error kind means "no space left" (ENOSPC, EDQUOT).
pub fn is_full_kind(kind: io::ErrorKind) -> bool {
    matches!(
        kind,
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    )
}

/// The advice for a full disk: what to free, naming the cast cache at `cache`
/// (when known).
pub fn hint(cache: Option<&Path>) -> String {
    let cache = match cache {
        Some(c) => format!(" (the cast cache is {})", c.display()),
        None => String::new(),
    };
    format!(
        "the disk is full: free space on it, e.g. with `cargo cast cache prune` \
         (removes what no build used for 30 days; `--all` more){cache}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot write the root image /c/build/x/root.erofs")]
    struct Outer(#[source] io::Error);

    #[test]
    fn a_full_disk_is_found_anywhere_in_the_chain() {
        let full = Outer(io::Error::from_raw_os_error(28)); // ENOSPC
        assert!(is_disk_full(&full));
        let quota = io::Error::from_raw_os_error(122); // EDQUOT
        assert!(is_disk_full(&quota));
        let other = Outer(io::Error::from(io::ErrorKind::PermissionDenied));
        assert!(!is_disk_full(&other));
    }

    #[test]
    fn the_hint_names_the_cache_and_prune() {
        let h = hint(Some(Path::new("/home/u/.cache/cast")));
        assert!(h.contains("cargo cast cache prune"), "{h}");
        assert!(h.contains("/home/u/.cache/cast"), "{h}");
    }
}
