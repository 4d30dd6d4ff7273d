//! EROFS on-disk structures, encoded little-endian byte by byte.
//!
//! Written from the Linux on-disk format definition (`fs/erofs/erofs_fs.h`): the
//! 128-byte superblock at offset 1024, 32-byte compact and 64-byte extended inodes
//! addressed by NID (32-byte slots from the metadata start), 12-byte directory
//! entries, and the inode data layouts this writer uses (flat plain, flat inline).
//! Only features that Linux 6.1 reads are produced.

/// Magic number of the superblock.
pub const MAGIC: u32 = 0xE0F5_E1E2;
/// Byte offset of the superblock.
pub const SUPER_OFFSET: u64 = 1024;
/// Size of the superblock.
pub const SUPER_SIZE: u64 = 128;
/// log2 of the block size.
pub const BLOCK_BITS: u8 = 12;
/// Block size in bytes.
pub const BLOCK_SIZE: u64 = 1 << BLOCK_BITS;
/// One NID step: inodes sit in 32-byte slots.
pub const SLOT_SIZE: u64 = 32;
/// Size of a directory entry.
pub const DIRENT_SIZE: usize = 12;
/// Size of the inline xattr body header.
pub const XATTR_HEADER_SIZE: usize = 12;

/// Data layout: all data in blocks starting at `raw_blkaddr`.
pub const LAYOUT_FLAT_PLAIN: u16 = 0;
/// Data layout: full blocks at `raw_blkaddr`, the tail right after the inode.
pub const LAYOUT_FLAT_INLINE: u16 = 2;

/// Data layout: compressed with one 8-byte index per logical cluster.
pub const LAYOUT_COMPRESSED_FULL: u16 = 1;
/// Incompatible feature: compressed blocks are zero-padded in front.
pub const INCOMPAT_ZERO_PADDING: u32 = 0x1;
/// Logical cluster type: raw data.
pub const LCLUSTER_PLAIN: u16 = 0;
/// Logical cluster type: head of a compressed extent.
pub const LCLUSTER_HEAD1: u16 = 1;
/// Logical cluster type: inside an extent that started earlier.
pub const LCLUSTER_NONHEAD: u16 = 2;
/// Map header plus reserved bytes before full indexes.
pub const FULL_INDEX_HEADER: usize = 16;

/// Directory entry file types (the generic `FT_*` values).
pub mod file_type {
    /// Regular file.
    pub const REG: u8 = 1;
    /// Directory.
    pub const DIR: u8 = 2;
    /// Character device.
    pub const CHR: u8 = 3;
    /// Block device.
    pub const BLK: u8 = 4;
    /// Named pipe.
    pub const FIFO: u8 = 5;
    /// Socket.
    pub const SOCK: u8 = 6;
    /// Symbolic link.
    pub const SYMLINK: u8 = 7;
}

/// Superblock fields this writer sets; everything else is zero.
#[derive(Debug, Clone, Copy)]
pub struct SuperBlock {
    /// NID of the root directory (must fit 16 bits).
    pub root_nid: u16,
    /// Number of inodes.
    pub inos: u64,
    /// Build time; compact inodes take their mtime from it.
    pub build_time: u64,
    /// Nanoseconds of the build time.
    pub build_time_nsec: u32,
    /// Total blocks in the image.
    pub blocks: u32,
    /// Volume UUID.
    pub uuid: [u8; 16],
    /// Incompatible features in use (`INCOMPAT_*`).
    pub feature_incompat: u32,
}

impl SuperBlock {
    /// The 128 bytes stored at [`SUPER_OFFSET`].
    pub fn encode(&self) -> [u8; SUPER_SIZE as usize] {
        let mut b = [0u8; SUPER_SIZE as usize];
        put(&mut b, 0, &MAGIC.to_le_bytes());
        // checksum (4), feature_compat (8): 0 — no superblock checksum.
        b[12] = BLOCK_BITS;
        put(&mut b, 14, &self.root_nid.to_le_bytes());
        put(&mut b, 16, &self.inos.to_le_bytes());
        put(&mut b, 24, &self.build_time.to_le_bytes());
        put(&mut b, 32, &self.build_time_nsec.to_le_bytes());
        put(&mut b, 36, &self.blocks.to_le_bytes());
        // meta_blkaddr (40) and xattr_blkaddr (44): 0.
        put(&mut b, 48, &self.uuid);
        // volume_name (64..80): empty.
        put(&mut b, 80, &self.feature_incompat.to_le_bytes());
        // lz4_max_distance (84): 0, the default window.
        b
    }
}

/// The fields of one on-disk inode.
#[derive(Debug, Clone, Copy)]
pub struct InodeFields {
    /// Use the 64-byte form.
    pub extended: bool,
    /// [`LAYOUT_FLAT_PLAIN`] or [`LAYOUT_FLAT_INLINE`].
    pub layout: u16,
    /// `i_xattr_icount` (0 when there are no inline xattrs).
    pub xattr_icount: u16,
    /// Full `st_mode`.
    pub mode: u16,
    /// Link count.
    pub nlink: u32,
    /// Size in bytes.
    pub size: u64,
    /// `raw_blkaddr` for data, or the encoded device number.
    pub i_u: u32,
    /// 32-bit inode number for `stat` compatibility.
    pub ino: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Modification seconds (extended form only).
    pub mtime: u64,
    /// Modification nanoseconds (extended form only).
    pub mtime_nsec: u32,
}

impl InodeFields {
    /// On-disk size of this inode form.
    pub fn core_size(&self) -> usize {
        if self.extended {
            64
        } else {
            32
        }
    }

    /// Appends the encoded inode to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.resize(start + self.core_size(), 0);
        let b = &mut out[start..];
        let format = (self.layout << 1) | u16::from(self.extended);
        put(b, 0, &format.to_le_bytes());
        put(b, 2, &self.xattr_icount.to_le_bytes());
        put(b, 4, &self.mode.to_le_bytes());
        if self.extended {
            put(b, 8, &self.size.to_le_bytes());
            put(b, 16, &self.i_u.to_le_bytes());
            put(b, 20, &self.ino.to_le_bytes());
            put(b, 24, &self.uid.to_le_bytes());
            put(b, 28, &self.gid.to_le_bytes());
            put(b, 32, &self.mtime.to_le_bytes());
            put(b, 40, &self.mtime_nsec.to_le_bytes());
            put(b, 44, &self.nlink.to_le_bytes());
        } else {
            put(b, 6, &(self.nlink as u16).to_le_bytes());
            put(b, 8, &(self.size as u32).to_le_bytes());
            put(b, 16, &self.i_u.to_le_bytes());
            put(b, 20, &self.ino.to_le_bytes());
            put(b, 24, &(self.uid as u16).to_le_bytes());
            put(b, 26, &(self.gid as u16).to_le_bytes());
        }
    }
}

/// Encodes a device number the way the kernel's `new_decode_dev` reads it.
pub fn encode_dev(major: u32, minor: u32) -> u32 {
    (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & !0xff) << 12)
}

/// Appends one full logical-cluster index (`z_erofs_lcluster_index`).
pub fn encode_lcluster(out: &mut Vec<u8>, advise: u16, clusterofs: u16, u: u32) {
    out.extend_from_slice(&advise.to_le_bytes());
    out.extend_from_slice(&clusterofs.to_le_bytes());
    out.extend_from_slice(&u.to_le_bytes());
}

/// Appends one directory entry.
pub fn encode_dirent(out: &mut Vec<u8>, nid: u64, nameoff: u16, file_type: u8) {
    out.extend_from_slice(&nid.to_le_bytes());
    out.extend_from_slice(&nameoff.to_le_bytes());
    out.push(file_type);
    out.push(0);
}

fn put(buf: &mut [u8], at: usize, bytes: &[u8]) {
    buf[at..at + bytes.len()].copy_from_slice(bytes);
}

/// Rounds `v` up to a multiple of `to` (a power of two).
pub fn align_up(v: u64, to: u64) -> u64 {
    (v + to - 1) & !(to - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_fields() {
        let sb = SuperBlock {
            root_nid: 36,
            inos: 5,
            build_time: 7,
            build_time_nsec: 9,
            blocks: 3,
            uuid: [1; 16],
            feature_incompat: 0,
        }
        .encode();
        assert_eq!(&sb[0..4], &[0xe2, 0xe1, 0xf5, 0xe0]);
        assert_eq!(sb[12], 12);
        assert_eq!(u16::from_le_bytes([sb[14], sb[15]]), 36);
        let mut out = Vec::new();
        let mut f = InodeFields {
            extended: false,
            layout: LAYOUT_FLAT_INLINE,
            xattr_icount: 0,
            mode: 0o100644,
            nlink: 1,
            size: 3,
            i_u: 0,
            ino: 1,
            uid: 0,
            gid: 0,
            mtime: 0,
            mtime_nsec: 0,
        };
        f.encode(&mut out);
        assert_eq!(out.len(), 32);
        assert_eq!(u16::from_le_bytes([out[0], out[1]]), 4);
        f.extended = true;
        f.encode(&mut out);
        assert_eq!(out.len(), 96);
        assert_eq!(u16::from_le_bytes([out[32], out[33]]), 5);
        // major 8, minor 0x12345: the kernel splits minor around the major.
        assert_eq!(encode_dev(8, 0x12345), 0x45 | (8 << 8) | (0x12300 << 12));
    }
}
