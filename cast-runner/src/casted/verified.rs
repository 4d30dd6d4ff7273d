//! Verifying the root image without hashing gigabytes on every run.
//!
//! The root image is hashed from the executable's file (what QEMU reads), and once it
//! matched, a *stamp* records that: `<cache>/payload/verified/<payload digest>` holds
//! the file's identity (device, inode, size, mtime, ctime). Later runs of the same,
//! unmodified file skip the hash; any write to the file changes its ctime, and a copy
//! is another inode, so both are hashed again. Without a writable cache every run
//! hashes. Kernel and initrd are small and always hashed.

use super::locate::Located;
use super::CastedError;
use cast_payload::reader::verify_file_part;
use cast_payload::{PartKind, Payload};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

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
        let _ = write_stamp(&stamp, &id); // best-effort
    }
    Ok(())
}

fn stamp_path(payload: &Payload<'_>) -> Option<PathBuf> {
    cast_payload::cache::cache_root().map(|root| {
        root.join("payload")
            .join("verified")
            .join(payload.digest_hex())
    })
}

fn write_stamp(stamp: &std::path::Path, id: &str) -> std::io::Result<()> {
    let dir = stamp.parent().expect("stamps live in a directory");
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        "{}.tmp{}",
        stamp.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(id.as_bytes())?;
    drop(f);
    std::fs::rename(&tmp, stamp).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}
