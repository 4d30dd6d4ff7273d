//! Applying OCI/Docker layer tars to an [`ImageTree`].
//!
//! A layer is a tar stream, plain or compressed with gzip or zstd (detected from the
//! magic bytes, or named by the layer's media type). Entries are applied in order:
//! regular files, directories, symlinks, hardlinks, devices and fifos, with owners,
//! modes (setuid included), mtimes (PAX sub-second ones too) and PAX `SCHILY.xattr.*`
//! extended attributes. Whiteouts (`.wh.NAME`, `.wh..wh..opq`) delete from the layers
//! below. Everything goes through the tree's chroot-like paths, and a layer whose
//! entry or hardlink target climbs above `/` is rejected, so no layer can write
//! outside the tree.

mod entry;
mod whiteout;

use std::io::{self, Cursor, Read};
use std::path::{Path, PathBuf};

use crate::tree::{AddError, ImageTree, PathError};

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Detect from the first bytes: gzip `1f 8b`, zstd `28 b5 2f fd`, else plain tar.
    Auto,
    /// Plain tar.
    None,
    /// gzip (possibly multi-member).
    Gzip,
    /// Zstandard.
    Zstd,
}

impl Compression {
    /// The compression a layer media type names (OCI and Docker schema 2 types).
    pub fn from_media_type(media_type: &str) -> Result<Self, ApplyError> {
        let t = media_type.trim();
        if t.ends_with("+gzip") || t.ends_with(".tar.gzip") || t.ends_with(".tar.gz") {
            Ok(Self::Gzip)
        } else if t.ends_with("+zstd") || t.ends_with(".tar.zstd") {
            Ok(Self::Zstd)
        } else if t.ends_with(".tar") {
            Ok(Self::None)
        } else {
            Err(ApplyError::MediaType(media_type.to_owned()))
        }
    }
}

/// Failure to apply a layer.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The media type names no layer format we know.
    #[error("unsupported layer media type {0:?}")]
    MediaType(String),
    /// The stream could not be read or decompressed, or is not a valid tar.
    #[error("cannot read the layer")]
    Read(#[source] io::Error),
    /// An entry's path climbs above the root with `..`.
    #[error("{0}: entry path escapes the image root")]
    PathEscapes(PathBuf),
    /// A hardlink's target climbs above the root with `..`.
    #[error("{path}: hardlink target {target} escapes the image root")]
    LinkEscapes {
        /// The link being created.
        path: PathBuf,
        /// Its target as written in the layer.
        target: PathBuf,
    },
    /// A hardlink's target does not exist (or is a directory).
    #[error("{path}: cannot hardlink to {target}")]
    LinkTarget {
        /// The link being created.
        path: PathBuf,
        /// Its target as written in the layer.
        target: PathBuf,
        /// Why.
        #[source]
        source: AddError,
    },
    /// An entry could not be added to the tree.
    #[error("{path}: cannot add the entry")]
    Add {
        /// The entry's path.
        path: PathBuf,
        /// Why.
        #[source]
        source: AddError,
    },
    /// A whiteout could not be applied.
    #[error("{path}: cannot apply the whiteout")]
    Whiteout {
        /// The whiteout entry's path.
        path: PathBuf,
        /// Why.
        #[source]
        source: PathError,
    },
    /// A tar entry type the image format cannot hold (e.g. GNU sparse files).
    #[error("{path}: unsupported tar entry type {kind}")]
    Unsupported {
        /// The entry's path.
        path: PathBuf,
        /// The tar type flag.
        kind: char,
    },
}

/// What applying one layer did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LayerStats {
    /// Entries added or updated.
    pub entries: u64,
    /// Whiteouts (plain and opaque) applied.
    pub whiteouts: u64,
    /// Bytes of file contents read.
    pub bytes: u64,
}

/// Applies one layer stream to `tree`.
pub fn apply_layer<'a>(
    tree: &mut ImageTree,
    reader: impl Read + 'a,
    compression: Compression,
) -> Result<LayerStats, ApplyError> {
    let stream = decompress(Box::new(reader), compression).map_err(ApplyError::Read)?;
    let mut archive = tar::Archive::new(stream);
    let mut applier = entry::Applier::new(tree);
    for item in archive.entries().map_err(ApplyError::Read)? {
        let mut item = item.map_err(ApplyError::Read)?;
        applier.apply(&mut item)?;
    }
    Ok(applier.stats())
}

/// Unpacks a plain tar archive (what a Containerfile `ADD` of a local archive
/// does) under `dest` in `tree`: same entry handling and safety as a layer, but
/// `.wh.*` entries are ordinary files and nothing is deleted.
pub fn extract_archive<'a>(
    tree: &mut ImageTree,
    reader: impl Read + 'a,
    compression: Compression,
    dest: &Path,
) -> Result<LayerStats, ApplyError> {
    let stream = decompress(Box::new(reader), compression).map_err(ApplyError::Read)?;
    let mut archive = tar::Archive::new(stream);
    let mut applier = entry::Applier::under(tree, dest);
    for item in archive.entries().map_err(ApplyError::Read)? {
        let mut item = item.map_err(ApplyError::Read)?;
        applier.apply(&mut item)?;
    }
    Ok(applier.stats())
}

/// Wraps `reader` in the right decoder.
pub fn decompress<'a>(
    mut reader: Box<dyn Read + 'a>,
    compression: Compression,
) -> io::Result<Box<dyn Read + 'a>> {
    let compression = match compression {
        Compression::Auto => {
            let mut magic = [0u8; 4];
            let mut n = 0;
            while n < magic.len() {
                match reader.read(&mut magic[n..]) {
                    Ok(0) => break,
                    Ok(k) => n += k,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            let head = magic[..n].to_vec();
            reader = Box::new(Cursor::new(head).chain(reader));
            if magic[..2] == [0x1f, 0x8b] {
                Compression::Gzip
            } else if magic == [0x28, 0xb5, 0x2f, 0xfd] {
                Compression::Zstd
            } else {
                Compression::None
            }
        }
        other => other,
    };
    Ok(match compression {
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(reader)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(reader)?),
        Compression::None | Compression::Auto => reader,
    })
}
