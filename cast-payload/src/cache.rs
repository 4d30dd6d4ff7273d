//! The extraction cache: what QEMU needs as a file (the decompressed kernel) is
//! written once per machine, under `<cache>/payload/kernel/<sha256 of the kernel>`,
//! where `<cache>` is `CAST_CACHE_DIR` or the platform cache dir + `cast`.
//!
//! - Concurrent first runs: an exclusive file lock (`<sha256>.lock`, never removed)
//!   serialises extraction; the others wait, then find the entry.
//! - Crashes: the kernel is decoded into a temporary beside the entry, checked
//!   against its SHA-256, fsynced, then renamed into place (and the directory
//!   fsynced), by [`cast_core::cache_entry`]. An entry exists only complete;
//!   leftovers of a killed run are removed under the lock.
//! - An entry is trusted by name and size: only this code creates it, after the hash
//!   check.
//! - A cache that cannot be written is reported as [`CacheError::Unwritable`]; the
//!   casted runtime then decodes the kernel into memory for that run instead.

use crate::format::{hex, Encoding, PartKind};
use crate::reader::{Payload, ReadError};
use cast_core::cache_entry::{self, StagedFile};
use fs4::fs_std::FileExt;
use sha2::{Digest, Sha256};
use std::fs::OpenOptions;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// The kernel could not be put into the cache.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The cache directory (or a file in it) cannot be created or written.
    #[error("cannot write the cache directory {dir}")]
    Unwritable {
        /// The directory.
        dir: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// No cache directory: neither `CAST_CACHE_DIR` nor a home directory.
    #[error("no cache directory: set CAST_CACHE_DIR or HOME")]
    NoCacheDir,
    /// The kernel part does not decode to what the manifest says.
    #[error(transparent)]
    Payload(#[from] ReadError),
}

/// Where the kernel of `payload` lives in the cache under `root`.
pub fn kernel_entry(payload: &Payload<'_>, root: &Path) -> PathBuf {
    kernel_dir(root).join(&payload.manifest.kernel.decoded_sha256)
}

/// The lock file an extraction of the kernel with SHA-256 `sha` holds, in the
/// kernel directory `dir` (also for tools that inspect the cache).
pub fn kernel_lock_path(dir: &Path, sha: &str) -> PathBuf {
    dir.join(format!("{sha}.lock"))
}

fn kernel_dir(root: &Path) -> PathBuf {
    cast_core::CacheRoot::new(root).payload_kernels()
}

/// Returns the path of the decoded kernel under `root`, extracting it first if this is
/// the first run on this machine. The kernel part should have been verified.
pub fn extract_kernel(payload: &Payload<'_>, root: &Path) -> Result<PathBuf, CacheError> {
    let part = &payload.manifest.kernel;
    let entry = kernel_entry(payload, root);
    if is_complete(&entry, part.decoded_length) {
        return Ok(entry);
    }
    let dir = kernel_dir(root);
    let unwritable = |source| CacheError::Unwritable {
        dir: dir.clone(),
        source,
    };
    std::fs::create_dir_all(&dir).map_err(unwritable)?;
    let sha = &part.decoded_sha256;
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(kernel_lock_path(&dir, sha))
        .map_err(unwritable)?;
    FileExt::lock_exclusive(&lock).map_err(unwritable)?;
    if is_complete(&entry, part.decoded_length) {
        return Ok(entry); // another run extracted it while we waited
    }
    // With the lock held, temporaries of this entry are leftovers of killed runs.
    cache_entry::remove_leftovers(&entry);
    let result = write_entry(payload, &entry, &dir);
    drop(lock); // closing the file releases the lock
    result.map(|()| entry)
}

fn write_entry(payload: &Payload<'_>, entry: &Path, dir: &Path) -> Result<(), CacheError> {
    let unwritable = |source| CacheError::Unwritable {
        dir: dir.to_owned(),
        source,
    };
    let mut staged = StagedFile::new(entry).map_err(unwritable)?;
    let mut out = BufWriter::with_capacity(1 << 20, staged.file());
    decode_kernel(payload, &mut out).map_err(|e| match e {
        DecodeError::Read(e) => CacheError::Payload(e),
        DecodeError::Write(e) => unwritable(e),
    })?; // `staged` is removed on drop
    out.into_inner().map_err(|e| unwritable(e.into_error()))?;
    staged.commit().map_err(unwritable)
}

/// Decoding the kernel failed.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The part is damaged.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The output could not be written.
    #[error("cannot write the decoded kernel")]
    Write(#[source] io::Error),
}

/// Decodes the kernel part into `out`, checking its decoded length and SHA-256.
pub fn decode_kernel(payload: &Payload<'_>, out: &mut impl Write) -> Result<(), DecodeError> {
    let part = &payload.manifest.kernel;
    let data = payload.part_bytes(PartKind::Kernel);
    let mut sink = Checked {
        out,
        hasher: Sha256::new(),
        written: 0,
        limit: part.decoded_length,
        failed: false,
    };
    let damaged = || DecodeError::Read(ReadError::Hash(PartKind::Kernel));
    let copied = match part.encoding {
        Encoding::Raw => sink.write_all(data),
        Encoding::Zstd => zstd::stream::copy_decode(data, &mut sink),
    };
    if let Err(e) = copied {
        // A damaged frame and a failing output both surface as io errors here.
        return Err(if sink.failed {
            DecodeError::Write(e)
        } else {
            damaged()
        });
    }
    if sink.written != part.decoded_length || hex(&sink.hasher.finalize()) != part.decoded_sha256 {
        return Err(damaged());
    }
    Ok(())
}

/// A writer that hashes what passes through and refuses to exceed the expected size.
struct Checked<'a, W: Write> {
    out: &'a mut W,
    hasher: Sha256,
    written: u64,
    limit: u64,
    failed: bool,
}

impl<W: Write> Write for Checked<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.written + buf.len() as u64 > self.limit {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "kernel longer than recorded",
            ));
        }
        let n = self.out.write(buf).inspect_err(|_| self.failed = true)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush().inspect_err(|_| self.failed = true)
    }
}

fn is_complete(entry: &Path, len: u64) -> bool {
    entry
        .metadata()
        .is_ok_and(|m| m.is_file() && m.len() == len)
}
