//! Planning an image before writing a byte: which inodes exist, in which form, where
//! each sits (its NID), which data is inlined after its inode and which goes to
//! blocks in the data area.
//!
//! The image is: block 0 with the superblock at 1024; the metadata area right after
//! it (inodes in tree order, root first so its NID fits the superblock's 16 bits,
//! each followed by its inline xattrs and data tail); then the data area, one
//! contiguous run of blocks per inode. Directory sizes depend only on names, so all
//! positions are known before any NID is written into a directory.

use std::collections::HashMap;

use super::dir::{DirEntry, DirLayout};
use super::format::{self, align_up, file_type, InodeFields, BLOCK_SIZE, SLOT_SIZE};
use super::lz4::{Compressed, ZSpill};
use super::pack::Packer;
use super::{xattr, Options, WriteError};
use crate::tree::{ImageTree, InodeId, Node, Timestamp};

/// Where an inode's data comes from.
#[derive(Debug)]
pub(super) enum Data {
    /// No data (devices, fifos, sockets).
    None,
    /// A regular file's contents in the tree.
    File(InodeId, u64),
    /// A symlink target.
    Bytes(Vec<u8>),
    /// A directory's entries.
    Dir(DirLayout),
}

impl Data {
    fn size(&self) -> u64 {
        match self {
            Data::None => 0,
            Data::File(_, len) => *len,
            Data::Bytes(b) => b.len() as u64,
            Data::Dir(d) => d.size,
        }
    }
}

/// One inode as it will be written.
#[derive(Debug)]
pub(super) struct Planned {
    pub fields: InodeFields,
    pub xattrs: Vec<u8>,
    pub data: Data,
    /// Bytes stored inline after the inode (0 for flat plain).
    pub tail: u64,
    /// Blocks in the data area.
    pub blocks: u64,
    /// Byte offset of the inode in the image.
    pub offset: u64,
    /// First block in the data area (when `blocks > 0`).
    pub blkaddr: u64,
    /// LZ4 extents when the file is stored compressed.
    pub z: Option<Compressed>,
}

/// The whole image layout.
#[derive(Debug)]
pub(super) struct Plan {
    pub inodes: Vec<Planned>,
    pub data_start: u64,
    pub total_blocks: u64,
    pub build_time: Timestamp,
    pub uuid: [u8; 16],
    /// Compressed blocks, when compression is on.
    pub zspill: Option<ZSpill>,
}

impl Plan {
    /// NID of planned inode `i`.
    pub fn nid(&self, i: usize) -> u64 {
        self.inodes[i].offset / SLOT_SIZE
    }
}

/// Builds the plan for `tree`.
pub(super) fn plan(tree: &ImageTree, options: &Options) -> Result<Plan, WriteError> {
    let ids = tree.unique_inodes();
    let index: HashMap<InodeId, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    let mut parent = vec![0usize; ids.len()];
    let clamp = |t: Timestamp| match options.source_date_epoch {
        Some(epoch) if t > Timestamp::from_secs(epoch) => Timestamp::from_secs(epoch),
        _ => t,
    };
    let build_time = match options.source_date_epoch {
        Some(epoch) => Timestamp::from_secs(epoch),
        None => most_common_mtime(tree, &ids),
    };
    let mut zspill = if options.lz4 {
        Some(ZSpill::new().map_err(WriteError::Read)?)
    } else {
        None
    };
    let mut hash = Fnv::default();
    let mut inodes = Vec::with_capacity(ids.len());
    for (i, id) in ids.iter().enumerate() {
        let inode = tree.inode(*id);
        let mut i_u = 0;
        let data = match &inode.node {
            Node::File(content) => Data::File(*id, content.len()),
            Node::Symlink(target) => Data::Bytes(target.clone()),
            Node::Device { major, minor, .. } => {
                i_u = format::encode_dev(*major, *minor);
                Data::None
            }
            Node::Fifo | Node::Socket => Data::None,
            Node::Dir(children) => {
                let mut entries = vec![dot(".", i), dot("..", parent[i])];
                for (name, child) in children {
                    let target = index[child];
                    if tree.inode(*child).node.is_dir() {
                        parent[target] = i;
                    }
                    hash.write(name);
                    let file_type = ft(&tree.inode(*child).node);
                    entries.push(DirEntry {
                        name: name.clone(),
                        target,
                        file_type,
                    });
                }
                Data::Dir(DirLayout::new(entries))
            }
        };
        let (xattrs, xattr_icount) = xattr::encode(&inode.meta.xattrs)
            .map_err(|source| WriteError::Xattr { ino: i, source })?;
        let mtime = clamp(inode.meta.mtime);
        let (uid, gid, nlink, size) = (
            inode.meta.uid,
            inode.meta.gid,
            inode.nlink(tree),
            data.size(),
        );
        let extended = mtime != build_time
            || uid > 0xffff
            || gid > 0xffff
            || nlink > 0xffff
            || size > u64::from(u32::MAX);
        let fields = InodeFields {
            extended,
            layout: format::LAYOUT_FLAT_PLAIN,
            xattr_icount,
            mode: inode.mode() as u16,
            nlink,
            size,
            i_u,
            ino: i as u32 + 1,
            uid,
            gid,
            mtime: mtime.sec as u64,
            mtime_nsec: mtime.nsec,
        };
        for v in [
            u64::from(fields.mode),
            size,
            u64::from(uid),
            u64::from(gid),
            mtime.sec as u64,
        ] {
            hash.write(&v.to_le_bytes());
        }
        let z = match (&data, zspill.as_mut()) {
            (Data::File(id, len), Some(zs)) if *len > 2 * BLOCK_SIZE => zs
                .compress(&mut tree.open_content(*id), *len)
                .map_err(WriteError::Read)?,
            _ => None,
        };
        inodes.push(Planned {
            fields,
            xattrs,
            data,
            tail: 0,
            blocks: 0,
            offset: 0,
            blkaddr: 0,
            z,
        });
    }
    let meta_end = place_inodes(&mut inodes);
    let data_start = align_up(meta_end, BLOCK_SIZE) / BLOCK_SIZE;
    let mut next = data_start;
    for p in &mut inodes {
        if p.blocks > 0 {
            p.blkaddr = next;
            p.fields.i_u = u32::try_from(next).map_err(|_| WriteError::TooLarge)?;
            next += p.blocks;
        }
        if p.z.is_some() {
            p.fields.i_u = p.blocks as u32;
        }
    }
    u32::try_from(next).map_err(|_| WriteError::TooLarge)?;
    hash.write(&next.to_le_bytes());
    Ok(Plan {
        inodes,
        data_start,
        total_blocks: next,
        build_time,
        uuid: hash.uuid(),
        zspill,
    })
}

/// Assigns each inode its offset and decides inline tails; returns the metadata end.
/// A tail is inlined whenever inode, xattrs and tail fit one block.
fn place_inodes(inodes: &mut [Planned]) -> u64 {
    let mut packer = Packer::new(format::SUPER_OFFSET + format::SUPER_SIZE);
    for p in inodes.iter_mut() {
        let meta = (p.fields.core_size() + p.xattrs.len()) as u64;
        let size = p.fields.size;
        let tail = size % BLOCK_SIZE;
        if let Some(z) = &p.z {
            p.fields.layout = format::LAYOUT_COMPRESSED_FULL;
            p.blocks = z.blocks();
            let indexes = size.div_ceil(BLOCK_SIZE) * 8;
            let record = align_up(meta, 8) + format::FULL_INDEX_HEADER as u64 + indexes;
            p.offset = packer.place(record);
            continue;
        }
        if tail > 0 && !matches!(p.data, Data::None) && meta + tail <= BLOCK_SIZE {
            p.fields.layout = format::LAYOUT_FLAT_INLINE;
            p.tail = tail;
            p.blocks = size / BLOCK_SIZE;
        } else {
            p.blocks = size.div_ceil(BLOCK_SIZE);
        }
        p.offset = packer.place(meta + p.tail);
    }
    packer.end()
}

fn dot(name: &str, target: usize) -> DirEntry {
    DirEntry {
        name: name.as_bytes().to_vec(),
        target,
        file_type: file_type::DIR,
    }
}

fn ft(node: &Node) -> u8 {
    match node {
        Node::Dir(_) => file_type::DIR,
        Node::File(_) => file_type::REG,
        Node::Symlink(_) => file_type::SYMLINK,
        Node::Device {
            kind: crate::tree::DeviceKind::Char,
            ..
        } => file_type::CHR,
        Node::Device { .. } => file_type::BLK,
        Node::Fifo => file_type::FIFO,
        Node::Socket => file_type::SOCK,
    }
}

/// The mtime most inodes share (ties: the latest), so most inodes can be compact.
fn most_common_mtime(tree: &ImageTree, ids: &[InodeId]) -> Timestamp {
    let mut counts: HashMap<Timestamp, usize> = HashMap::new();
    for id in ids {
        *counts.entry(tree.inode(*id).meta.mtime).or_default() += 1;
    }
    counts
        .into_iter()
        .max_by_key(|(t, n)| (*n, *t))
        .map(|(t, _)| t)
        .unwrap_or_default()
}

/// FNV-1a over the layout, giving a UUID that depends only on the input.
#[derive(Debug)]
struct Fnv(u64, u64);

impl Default for Fnv {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325, 0x6c62_272e_07bb_0142)
    }
}

impl Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
            self.1 = (self.1 ^ u64::from(*b))
                .wrapping_mul(0x100_0000_01b3)
                .rotate_left(5);
        }
    }

    fn uuid(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&self.0.to_le_bytes());
        out[8..].copy_from_slice(&self.1.to_le_bytes());
        out[6] = (out[6] & 0x0f) | 0x40;
        out[8] = (out[8] & 0x3f) | 0x80;
        out
    }
}
