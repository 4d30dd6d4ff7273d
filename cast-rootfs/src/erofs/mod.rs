//! The EROFS writer: an [`ImageTree`] becomes an EROFS image that Linux 6.1's erofs
//! driver mounts and `fsck.erofs` accepts.
//!
//! The image is planned first (the `layout` module: NIDs, inline tails, blocks),
//! then written strictly front to back to any [`Write`]: superblock, metadata
//! (inodes, inline xattrs, inline data tails or compression indexes), data blocks
//! streamed from the tree's spill file. Nothing proportional to the image's data is
//! held in memory. With [`Options::lz4`], files that shrink are stored LZ4-compressed
//! (the `lz4` module). The same tree and options always give the same bytes: order
//! follows the tree's sorted names, the UUID is derived from the layout, and with
//! `SOURCE_DATE_EPOCH` every mtime is clamped to it and the build time set to it.
//! Block size is 4096, so the image size is a multiple of 512.

mod dir;
pub mod format;
mod layout;
mod lz4;
mod pack;
mod xattr;

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

pub use xattr::XattrError;

use crate::tree::ImageTree;
use format::{align_up, SuperBlock, BLOCK_SIZE};
use layout::{Data, Plan};

/// Writer options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// Clamp every mtime to this time and use it as the build time.
    pub source_date_epoch: Option<i64>,
    /// Store files LZ4-compressed where that saves space (Linux: `EROFS_FS_ZIP`).
    pub lz4: bool,
}

impl Options {
    /// Options from the environment: `SOURCE_DATE_EPOCH` when set to an integer.
    pub fn from_env() -> Self {
        let source_date_epoch = std::env::var("SOURCE_DATE_EPOCH")
            .ok()
            .and_then(|v| v.trim().parse().ok());
        Self {
            source_date_epoch,
            lz4: false,
        }
    }
}

/// Failure to write an image.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// An inode's extended attributes cannot be stored.
    #[error("inode #{ino}: cannot store extended attributes")]
    Xattr {
        /// Position of the inode in tree order.
        ino: usize,
        /// Why.
        #[source]
        source: XattrError,
    },
    /// The image would exceed 2^32 blocks (16 TiB).
    #[error("the image would exceed 16 TiB")]
    TooLarge,
    /// Reading contents back from the tree failed.
    #[error("cannot read file contents from the tree")]
    Read(#[source] io::Error),
    /// Writing the image failed.
    #[error("cannot write the image")]
    Write(#[source] io::Error),
}

/// Facts about a written image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Inodes written.
    pub inodes: u64,
    /// Image size in bytes (a multiple of the block size).
    pub bytes: u64,
    /// Bytes of the metadata area (superblock block included, before padding).
    pub metadata_bytes: u64,
}

/// Writes `tree` as an EROFS image to `out`, front to back.
pub fn write_image(
    tree: &ImageTree,
    options: &Options,
    out: impl Write,
) -> Result<Stats, WriteError> {
    let plan = layout::plan(tree, options)?;
    let mut w = Counted {
        inner: BufWriter::with_capacity(1 << 20, out),
        pos: 0,
    };
    let nid_of = |i: usize| plan.nid(i);
    let sb = SuperBlock {
        root_nid: plan.nid(0) as u16,
        inos: plan.inodes.len() as u64,
        build_time: plan.build_time.sec as u64,
        build_time_nsec: plan.build_time.nsec,
        blocks: plan.total_blocks as u32,
        uuid: plan.uuid,
        feature_incompat: if plan.zspill.is_some() {
            format::INCOMPAT_ZERO_PADDING
        } else {
            0
        },
    };
    w.pad_to(format::SUPER_OFFSET)?;
    w.put(&sb.encode())?;
    let mut buf = Vec::new();
    let mut order: Vec<&layout::Planned> = plan.inodes.iter().collect();
    order.sort_by_key(|p| p.offset);
    for p in order {
        w.pad_to(p.offset)?;
        buf.clear();
        p.fields.encode(&mut buf);
        buf.extend_from_slice(&p.xattrs);
        if let Some(z) = &p.z {
            buf.resize(
                align_up(buf.len() as u64, 8) as usize + format::FULL_INDEX_HEADER,
                0,
            );
            buf.extend_from_slice(&z.indexes(p.fields.size, p.blkaddr));
        }
        if p.tail > 0 {
            let head = p.fields.size - p.tail;
            match &p.data {
                Data::File(id, _) => {
                    let mut reader = tree.open_content(*id);
                    reader.skip(head);
                    reader
                        .take(p.tail)
                        .read_to_end(&mut buf)
                        .map_err(WriteError::Read)?;
                }
                Data::Bytes(bytes) => buf.extend_from_slice(&bytes[head as usize..]),
                Data::Dir(d) => buf.extend_from_slice(&d.encode_from(head, &nid_of)),
                Data::None => {}
            }
        }
        w.put(&buf)?;
    }
    let metadata_bytes = w.pos;
    w.pad_to(plan.data_start * BLOCK_SIZE)?;
    write_data(tree, &plan, &mut w)?;
    w.pad_to(plan.total_blocks * BLOCK_SIZE)?;
    w.inner.flush().map_err(WriteError::Write)?;
    Ok(Stats {
        inodes: plan.inodes.len() as u64,
        bytes: w.pos,
        metadata_bytes,
    })
}

/// Writes `tree` to a new file at `path` (replacing it).
pub fn write_image_to_path(
    tree: &ImageTree,
    options: &Options,
    path: &Path,
) -> Result<Stats, WriteError> {
    let file = File::create(path).map_err(WriteError::Write)?;
    let stats = write_image(tree, options, &file)?;
    file.sync_all().map_err(WriteError::Write)?;
    Ok(stats)
}

/// Streams every inode's block data, in plan order (which is block order).
fn write_data<W: Write>(
    tree: &ImageTree,
    plan: &Plan,
    w: &mut Counted<W>,
) -> Result<(), WriteError> {
    let nid_of = |i: usize| plan.nid(i);
    for p in plan.inodes.iter().filter(|p| p.blocks > 0) {
        debug_assert_eq!(w.pos, p.blkaddr * BLOCK_SIZE);
        let len = p.fields.size - p.tail;
        if let (Some(z), Some(zs)) = (&p.z, &plan.zspill) {
            let mut block = vec![0u8; BLOCK_SIZE as usize];
            for i in 0..z.blocks() {
                zs.read_at(z.spill_offset + i * BLOCK_SIZE, &mut block)
                    .map_err(WriteError::Read)?;
                w.put(&block)?;
            }
            continue;
        }
        match &p.data {
            Data::File(id, _) => {
                let mut reader = tree.open_content(*id).take(len);
                let copied = io::copy(&mut reader, &mut w.inner).map_err(WriteError::Write)?;
                if copied != len {
                    return Err(WriteError::Read(io::ErrorKind::UnexpectedEof.into()));
                }
                w.pos += copied;
            }
            Data::Bytes(bytes) => w.put(&bytes[..len as usize])?,
            Data::Dir(d) => {
                let bytes = d.encode_from(0, &nid_of);
                w.put(&bytes[..len as usize])?;
            }
            Data::None => {}
        }
        w.pad_to(align_up(w.pos, BLOCK_SIZE))?;
    }
    Ok(())
}

/// A writer that knows its position, for padding.
struct Counted<W: Write> {
    inner: BufWriter<W>,
    pos: u64,
}

impl<W: Write> Counted<W> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), WriteError> {
        self.inner.write_all(bytes).map_err(WriteError::Write)?;
        self.pos += bytes.len() as u64;
        Ok(())
    }

    fn pad_to(&mut self, to: u64) -> Result<(), WriteError> {
        const ZEROS: [u8; 4096] = [0; 4096];
        debug_assert!(to >= self.pos, "layout went backwards");
        while self.pos < to {
            let n = (to - self.pos).min(ZEROS.len() as u64) as usize;
            self.put(&ZEROS[..n])?;
        }
        Ok(())
    }
}
