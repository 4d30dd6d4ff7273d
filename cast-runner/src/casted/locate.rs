//! The payload in the executable's own file, where QEMU reads the root image in
//! place: [`locate`] parses the file with `object` (headers only, on demand) for the
//! payload section's file offset and size and checks the bytes there against the
//! payload the loader mapped into memory; [`verify_root`] checks the root image.
//!
//! The root image is hashed from the file (what QEMU reads), and once it matched, a
//! *stamp* records that: `<cache>/payload/verified/<payload digest>` holds the
//! file's identity (device, inode, size, mtime, ctime). Later runs of the same,
//! unmodified file skip the hash; any write to the file changes its ctime, and a copy
//! is another inode, so both are hashed again. Without a writable cache every run
//! hashes. Kernel and initrd are small and always hashed (from memory).

use super::CastedError;
use cast_payload::format::HEADER_LEN;
use cast_payload::objfile::{ELF_SECTION, MACHO_SECTION};
use cast_payload::reader::verify_file_part;
use cast_payload::{PartKind, Payload};
use object::{Object, ObjectSection};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
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
    /// The file is not an object file `object` can parse, or has no payload section.
    #[error("this executable's file {path} has no usable payload section: {why}")]
    NoSection {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// The file's bytes differ from the payload in memory (replaced while running?).
    #[error("this executable's file {path} no longer holds the payload it was started with (was it replaced while running?)")]
    Mismatch {
        /// The file.
        path: PathBuf,
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

/// Finds `payload` (the bytes behind the payload symbol; `check_len` of them are
/// compared, at least the header) in the executable's file.
pub fn locate(payload: &[u8], check_len: usize) -> Result<Located, LocateError> {
    let path = current_exe().map_err(|source| LocateError::Exe {
        path: "/proc/self/exe".into(),
        source,
    })?;
    let exe_err = |source| LocateError::Exe {
        path: path.clone(),
        source,
    };
    let file = File::open(&path).map_err(exe_err)?;
    let no_section = |why: String| LocateError::NoSection {
        path: path.clone(),
        why,
    };
    let (offset, size) = {
        let cache = object::ReadCache::new(&file);
        let obj = object::File::parse(&cache).map_err(|e| no_section(e.to_string()))?;
        let section = obj
            .section_by_name(ELF_SECTION)
            .or_else(|| obj.section_by_name(MACHO_SECTION))
            .ok_or_else(|| no_section(format!("no {ELF_SECTION} or {MACHO_SECTION} section")))?;
        section
            .file_range()
            .ok_or_else(|| no_section("the section has no file data".into()))?
    };
    if size < payload.len() as u64 {
        return Err(no_section(format!(
            "the section holds {size} bytes, the payload {}",
            payload.len()
        )));
    }
    let n = check_len.clamp(HEADER_LEN.min(payload.len()), payload.len());
    let mut on_disk = vec![0u8; n];
    let mut f = &file;
    f.seek(SeekFrom::Start(offset)).map_err(exe_err)?;
    f.read_exact(&mut on_disk).map_err(exe_err)?;
    if on_disk != payload[..n] {
        return Err(LocateError::Mismatch { path });
    }
    Ok(Located { path, file, offset })
}

/// Checks the root image in the executable's file, unless a stamp says this very file
/// was checked before.
pub fn verify_root(payload: &Payload<'_>, located: &mut Located) -> Result<(), CastedError> {
    let identity = located.file.metadata().ok().map(|m| {
        format!(
            "{} {} {} {}.{} {}.{}\n",
            m.dev(),
            m.ino(),
            m.size(),
            m.mtime(),
            m.mtime_nsec(),
            m.ctime(),
            m.ctime_nsec()
        )
    });
    let stamp = stamp_path(payload);
    if let (Some(id), Some(stamp)) = (&identity, &stamp) {
        if std::fs::read_to_string(stamp).is_ok_and(|s| s == *id) {
            return Ok(());
        }
    }
    verify_file_part(
        &mut located.file,
        located.offset,
        &payload.manifest,
        PartKind::Root,
    )?;
    if let (Some(id), Some(stamp)) = (identity, stamp) {
        let _ = cast_core::cache_entry::write_file(&stamp, id.as_bytes()); // best-effort
    }
    Ok(())
}

fn stamp_path(payload: &Payload<'_>) -> Option<PathBuf> {
    cast_core::CacheRoot::from_env().map(|c| c.payload_verified().join(payload.digest_hex()))
}
