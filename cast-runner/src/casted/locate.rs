//! The payload in the executable's own file: [`locate`] parses the file with
//! `object` (headers only, on demand) for the payload section's file offset and size,
//! checks them against the file's length and the length linked into the binary,
//! and reads what the runtime keeps in memory (header, manifest, kernel, initrd)
//! with `pread`; [`verify`] checks kernel, initrd and the root image (which QEMU
//! reads in place).
//!
//! The payload section is not loaded into memory (see `cast_payload::objfile`): a
//! damaged or cut-short file reaches these checks (one message, exit 125) instead of
//! crashing the process.
//!
//! Kernel and initrd are hashed from memory (what was read from the file), the root
//! image from the file (what QEMU reads), and once all three matched, a *stamp*
//! records that: `<cache>/payload/verified/<payload digest>` holds the file's
//! identity (device, inode, size, mtime, ctime). Later runs of the same, unmodified
//! file skip every hash; any write to the file changes its ctime, and a copy is
//! another inode, so both are hashed again. Without a writable cache every run
//! hashes.

use super::CastedError;
use cast_payload::objfile::{ELF_SECTION, MACHO_SECTION};
use cast_payload::reader::{read_prefix, verify_file_part};
use cast_payload::{cache, PartKind, Payload};
use object::{Object, ObjectSection};
use std::fs::File;
use std::path::PathBuf;

/// The payload's place in the executable's file.
#[derive(Debug)]
pub struct Located {
    /// The executable, resolved (what QEMU opens).
    pub path: PathBuf,
    /// The open executable.
    pub file: File,
    /// File offset of the payload's first byte.
    pub offset: u64,
    /// The payload's length, as linked into the binary.
    pub len: u64,
}

/// The payload cannot be found in the executable's file.
#[derive(Debug, thiserror::Error)]
pub enum LocateError {
    /// The executable's own file cannot be found or read.
    #[error("cannot read this executable's file {path}")]
    Exe {
        /// The path tried.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is damaged: unparsable headers, no payload section, cut short.
    #[error("this executable's file {path} is damaged: {why}; was it cut short or overwritten?")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
}

/// The running executable's file.
pub fn current_exe() -> std::io::Result<PathBuf> {
    #[cfg(target_os = "linux")]
    {
        std::fs::read_link("/proc/self/exe")
    }
    #[cfg(not(target_os = "linux"))]
    {
        std::env::current_exe()?.canonicalize()
    }
}

/// Finds the payload of `len` bytes (the length linked into the binary) in the
/// executable's file.
pub fn locate(len: u64) -> Result<Located, LocateError> {
    let path = current_exe().map_err(|source| LocateError::Exe {
        path: "/proc/self/exe".into(),
        source,
    })?;
    let file = File::open(&path).map_err(|source| LocateError::Exe {
        path: path.clone(),
        source,
    })?;
    let damaged = |why: String| LocateError::Damaged {
        path: path.clone(),
        why,
    };
    let file_len = file
        .metadata()
        .map_err(|source| LocateError::Exe {
            path: path.clone(),
            source,
        })?
        .len();
    let (offset, size) = {
        let cache = object::ReadCache::new(&file);
        let obj = object::File::parse(&cache)
            .map_err(|e| damaged(format!("its headers are unreadable ({e})")))?;
        let section = obj
            .section_by_name(ELF_SECTION)
            .or_else(|| obj.section_by_name(MACHO_SECTION))
            .ok_or_else(|| {
                damaged(format!(
                    "it has no {ELF_SECTION} or {MACHO_SECTION} section"
                ))
            })?;
        section
            .file_range()
            .ok_or_else(|| damaged("its payload section has no file data".into()))?
    };
    let end = offset.saturating_add(size);
    if end > file_len {
        return Err(damaged(format!(
            "it is {file_len} bytes long, but its payload section ends at byte {end}"
        )));
    }
    if size < len {
        return Err(damaged(format!(
            "its payload section holds {size} bytes, the payload it was built with {len}"
        )));
    }
    Ok(Located {
        path,
        file,
        offset,
        len,
    })
}

impl Located {
    /// Reads and parses the payload's header, manifest, kernel and initrd from the
    /// file (kept for the life of the process: the initrd goes to QEMU as is).
    pub fn payload(&self) -> Result<Payload<'static>, CastedError> {
        let prefix = read_prefix(&self.file, self.offset, self.len)?;
        let payload = Payload::parse_in(prefix.leak(), self.len)?;
        if payload.len() != self.len {
            return Err(cast_payload::ReadError::Damaged(format!(
                "its header records {} bytes, the executable was built with {}",
                payload.len(),
                self.len
            ))
            .into());
        }
        Ok(payload)
    }
}

/// Checks kernel and initrd (in memory, read from the executable's file) and the root
/// image (in the file), unless a stamp says this very file was checked before.
pub fn verify(payload: &Payload<'_>, located: &mut Located) -> Result<(), CastedError> {
    let stamp =
        cast_core::CacheRoot::from_env().map(|c| c.payload_verified().join(payload.digest_hex()));
    if let Some(stamp) = &stamp {
        if cache::stamp_matches(stamp, &located.file) {
            return Ok(());
        }
    }
    payload.verify_part(PartKind::Kernel)?;
    payload.verify_part(PartKind::Initrd)?;
    verify_file_part(
        &mut located.file,
        located.offset,
        &payload.manifest,
        PartKind::Root,
    )?;
    if let Some(stamp) = stamp {
        let _ = cache::write_stamp(&stamp, &located.file); // best-effort
    }
    Ok(())
}
