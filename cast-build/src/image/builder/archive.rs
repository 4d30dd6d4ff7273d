//! ADD's auto-extraction of local tar archives: plain, gzip, bzip2, xz or
//! zstd, recognised by content (never by file name, as Docker does). A file
//! that is not a tar archive after decompression is copied as it is.
//!
//! Extraction goes through `cast-rootfs`' layer code into a scratch tree (so no
//! entry can escape), which is then merged into the destination directory.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek};
use std::path::Path;

use cast_rootfs::layer::{extract_archive, ApplyError, Compression};
use cast_rootfs::ImageTree;

/// How an archive is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Plain tar.
    Tar,
    /// gzip.
    Gzip,
    /// bzip2.
    Bzip2,
    /// xz.
    Xz,
    /// Zstandard.
    Zstd,
}

/// Why an archive could not be extracted.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// Reading or decompressing failed.
    #[error("cannot read the archive")]
    Io(#[from] io::Error),
    /// The tar stream is invalid or unsafe.
    #[error("cannot extract the archive")]
    Apply(#[from] ApplyError),
}

/// The compression of a tar archive at `path`, or `None` if it is not one.
pub fn detect(path: &Path) -> io::Result<Option<Format>> {
    let mut head = [0u8; 6];
    let n = read_up_to(&mut File::open(path)?, &mut head)?;
    let head = &head[..n];
    let format = if head.starts_with(&[0x1f, 0x8b]) {
        Format::Gzip
    } else if head.starts_with(b"BZh") {
        Format::Bzip2
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Format::Xz
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Format::Zstd
    } else {
        Format::Tar
    };
    // Whatever the compression, the content must be a tar archive.
    let mut block = [0u8; 512];
    let n = match open(path, format) {
        Ok(mut r) => read_up_to(&mut r, &mut block).unwrap_or(0),
        Err(_) => 0,
    };
    Ok(is_tar_header(&block[..n]).then_some(format))
}

/// Extracts the archive at `path` (compressed as `format`) into a new tree.
pub fn extract(path: &Path, format: Format) -> Result<ImageTree, ExtractError> {
    let mut tree = ImageTree::new().map_err(|e| io::Error::other(e.to_string()))?;
    // `.wh.*` entries are plain files here: an archive is not a layer.
    extract_archive(
        &mut tree,
        open(path, format)?,
        Compression::None,
        Path::new("/"),
    )?;
    Ok(tree)
}

/// A decompressing reader over the file.
fn open(path: &Path, format: Format) -> io::Result<Box<dyn Read>> {
    let file = BufReader::new(File::open(path)?);
    Ok(match format {
        Format::Tar => Box::new(file),
        Format::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(file)),
        Format::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(file)),
        Format::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(file)?),
        Format::Xz => {
            // lzma-rs decodes whole streams: decode into an anonymous temp file.
            let mut out = tempfile::tempfile()?;
            let mut input = file;
            lzma_rs::xz_decompress(&mut input, &mut out)
                .map_err(|e| io::Error::other(format!("xz: {e}")))?;
            out.rewind()?;
            Box::new(BufReader::new(out))
        }
    })
}

fn read_up_to(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// A ustar/GNU header with a valid checksum.
fn is_tar_header(block: &[u8]) -> bool {
    if block.len() < 512 || &block[257..262] != b"ustar" {
        return false;
    }
    let field = &block[148..156];
    let text = String::from_utf8_lossy(field);
    let Ok(stored) = u32::from_str_radix(text.trim_matches(['\0', ' ']), 8) else {
        return false;
    };
    let sum: u32 = block
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                u32::from(b' ')
            } else {
                u32::from(*b)
            }
        })
        .sum();
    sum == stored
}
