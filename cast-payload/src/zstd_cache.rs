//! The kernel part, compressed once: zstd at high levels takes most of a minute for a
//! ~50 MB vmlinux, and a build script runs on every rebuild, so the compressed form
//! is kept in the cache (`<cache>/payload/zstd/<vmlinux sha256>-<level>.zst`).
//!
//! A cache hit is decompressed and checked against the vmlinux's hash before use
//! (~0.2 s), so a damaged entry is never embedded; it is replaced instead. The cache
//! is best-effort: when it cannot be written, the kernel is compressed every time.

use crate::format::hex;
use crate::BuildError;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The kernel part's bytes and what they decode to.
#[derive(Debug, Clone)]
pub struct CompressedKernel {
    /// One zstd frame.
    pub data: Vec<u8>,
    /// Length of the vmlinux.
    pub decoded_length: u64,
    /// SHA-256 of the vmlinux, lowercase hex.
    pub decoded_sha256: String,
}

/// Compresses `vmlinux` at `level`, or takes the result from the cache.
pub fn compressed_kernel(vmlinux: &Path, level: i32) -> Result<CompressedKernel, BuildError> {
    let raw = std::fs::read(vmlinux).map_err(|source| BuildError::Io {
        what: format!("reading the kernel {}", vmlinux.display()),
        source,
    })?;
    let sha = hex(&Sha256::digest(&raw));
    let entry = cache_entry(&sha, level);
    if let Some(data) = entry.as_deref().and_then(|e| std::fs::read(e).ok()) {
        if decodes_to(&data, &raw) {
            return Ok(CompressedKernel {
                data,
                decoded_length: raw.len() as u64,
                decoded_sha256: sha,
            });
        }
    }
    let data = zstd::bulk::compress(&raw, level).map_err(|source| BuildError::Io {
        what: format!("compressing the kernel at zstd level {level}"),
        source,
    })?;
    if let Some(entry) = entry {
        let _ = store(&entry, &data); // best-effort
    }
    Ok(CompressedKernel {
        data,
        decoded_length: raw.len() as u64,
        decoded_sha256: sha,
    })
}

fn cache_entry(sha: &str, level: i32) -> Option<PathBuf> {
    cast_kernel::cache_dir().map(|d| {
        d.join("payload")
            .join("zstd")
            .join(format!("{sha}-{level}.zst"))
    })
}

fn decodes_to(data: &[u8], raw: &[u8]) -> bool {
    zstd::bulk::decompress(data, raw.len()).is_ok_and(|d| d == raw)
}

/// Writes `data` to `entry` through a temporary file and a rename.
fn store(entry: &Path, data: &[u8]) -> std::io::Result<()> {
    let dir = entry.parent().expect("entries live in a directory");
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(data)?;
    tmp.as_file().sync_all()?;
    tmp.persist(entry).map_err(|e| e.error)?;
    Ok(())
}
