//! Packing inode records into metadata blocks.
//!
//! An inode record (inode, inline xattrs, inline data tail) must not cross a block
//! boundary when it has a tail (the kernel reads the tail from one block), so
//! records are placed best-fit into 4 KiB blocks in 32-byte slots: each record goes
//! to the fullest block that still has room, else a new block. Holes that a strictly
//! sequential layout would leave before big records get filled by later small ones.
//! The result depends only on the sequence of record sizes, so it is deterministic.

use std::collections::BTreeSet;

use super::format::{align_up, BLOCK_SIZE, SLOT_SIZE};

const SLOTS: usize = (BLOCK_SIZE / SLOT_SIZE) as usize;

/// Best-fit allocator over metadata blocks.
#[derive(Debug)]
pub(super) struct Packer {
    blocks: u64,
    /// `by_free[n]`: blocks with exactly `n` free slots at their end.
    by_free: Vec<BTreeSet<u64>>,
}

impl Packer {
    /// A packer whose block 0 already has `reserved` bytes in use.
    pub fn new(reserved: u64) -> Self {
        let mut p = Self {
            blocks: 1,
            by_free: vec![BTreeSet::new(); SLOTS + 1],
        };
        let free = (BLOCK_SIZE - align_up(reserved, SLOT_SIZE)) / SLOT_SIZE;
        p.by_free[free as usize].insert(0);
        p
    }

    /// Places a record of `len` bytes; returns its byte offset. Records up to a block
    /// stay within one block; longer ones start a fresh run of blocks.
    pub fn place(&mut self, len: u64) -> u64 {
        let slots = (align_up(len.max(1), SLOT_SIZE) / SLOT_SIZE) as usize;
        if slots <= SLOTS {
            for free in slots..=SLOTS {
                if let Some(block) = self.by_free[free].pop_first() {
                    let offset = block * BLOCK_SIZE + ((SLOTS - free) as u64) * SLOT_SIZE;
                    self.by_free[free - slots].insert(block);
                    return offset;
                }
            }
        }
        let start = self.blocks;
        let n = (slots as u64).div_ceil(SLOTS as u64);
        self.blocks += n;
        let left = n as usize * SLOTS - slots;
        self.by_free[left].insert(self.blocks - 1);
        start * BLOCK_SIZE
    }

    /// End of the metadata area (whole blocks).
    pub fn end(&self) -> u64 {
        self.blocks * BLOCK_SIZE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_fit_fills_holes() {
        let mut p = Packer::new(1152);
        assert_eq!(p.place(32), 1152);
        assert_eq!(p.place(4000), 4096);
        assert_eq!(p.place(3000), 8192);
        // 96 bytes left in block 1 (4096 - 4000 rounded up), 1088 in block 2,
        // 2912 in block 0: a 64-byte record goes to the fullest block that fits.
        assert_eq!(p.place(64), 4096 + 4000);
        assert_eq!(p.place(2000), 1184);
        assert_eq!(p.place(9000), 3 * 4096);
        assert_eq!(p.end(), 6 * 4096);
    }
}
