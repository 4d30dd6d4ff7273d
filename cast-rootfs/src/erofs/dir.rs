//! Directory contents: sorted entries packed into 4 KiB blocks.
//!
//! Each block holds an array of 12-byte dirents followed by their names (no NUL
//! terminators; the first dirent's `nameoff` tells how many dirents the block has).
//! Entries, `.` and `..` included, are sorted bytewise across the whole directory
//! so the kernel can binary-search blocks and names. Every block but the last is
//! zero-padded to the block size; the directory's size ends at the last name.

use std::ops::Range;

use super::format::{encode_dirent, BLOCK_SIZE, DIRENT_SIZE};

/// One directory entry before NIDs are known.
#[derive(Debug, Clone)]
pub struct DirEntry {
    /// Entry name.
    pub name: Vec<u8>,
    /// Index of the target in the writer's inode plan.
    pub target: usize,
    /// `FT_*` file type.
    pub file_type: u8,
}

/// A directory's entries and how they fall into blocks.
#[derive(Debug, Clone)]
pub struct DirLayout {
    /// All entries, sorted bytewise by name.
    pub entries: Vec<DirEntry>,
    /// Entry index ranges, one per block.
    pub blocks: Vec<Range<usize>>,
    /// Directory size in bytes.
    pub size: u64,
}

impl DirLayout {
    /// Sorts `entries` and packs them into blocks.
    pub fn new(mut entries: Vec<DirEntry>) -> Self {
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        let block = BLOCK_SIZE as usize;
        let mut blocks = Vec::new();
        let mut start = 0;
        let mut used = 0;
        for (i, e) in entries.iter().enumerate() {
            let need = DIRENT_SIZE + e.name.len();
            if used + need > block {
                blocks.push(start..i);
                start = i;
                used = 0;
            }
            used += need;
        }
        blocks.push(start..entries.len());
        let size = (blocks.len() as u64 - 1) * BLOCK_SIZE + used as u64;
        Self {
            entries,
            blocks,
            size,
        }
    }

    /// Encodes block `index`; `nid_of` maps plan indexes to NIDs. Non-final blocks
    /// are padded to the block size.
    pub fn encode_block(&self, index: usize, nid_of: &dyn Fn(usize) -> u64, out: &mut Vec<u8>) {
        let range = self.blocks[index].clone();
        let start = out.len();
        let entries = &self.entries[range];
        let mut nameoff = DIRENT_SIZE * entries.len();
        for e in entries {
            encode_dirent(out, nid_of(e.target), nameoff as u16, e.file_type);
            nameoff += e.name.len();
        }
        for e in entries {
            out.extend_from_slice(&e.name);
        }
        if index + 1 < self.blocks.len() {
            out.resize(start + BLOCK_SIZE as usize, 0);
        }
    }

    /// Encodes the byte range `[from, size)` of the directory (from a block start).
    pub fn encode_from(&self, from: u64, nid_of: &dyn Fn(usize) -> u64) -> Vec<u8> {
        let mut out = Vec::new();
        for index in (from / BLOCK_SIZE) as usize..self.blocks.len() {
            self.encode_block(index, nid_of, &mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str) -> DirEntry {
        DirEntry {
            name: name.as_bytes().to_vec(),
            target: 0,
            file_type: 1,
        }
    }

    #[test]
    fn small_dir_is_one_block() {
        let d = DirLayout::new(vec![entry("b"), entry("."), entry(".."), entry("a")]);
        assert_eq!(d.blocks.len(), 1);
        assert_eq!(d.size, 4 * 12 + 1 + 2 + 1 + 1);
        let names: Vec<_> = d.entries.iter().map(|e| e.name.clone()).collect();
        assert_eq!(
            names,
            vec![b".".to_vec(), b"..".to_vec(), b"a".to_vec(), b"b".to_vec()]
        );
        let bytes = d.encode_from(0, &|_| 36);
        assert_eq!(bytes.len() as u64, d.size);
        assert_eq!(u16::from_le_bytes([bytes[8], bytes[9]]), 48);
    }

    #[test]
    fn big_dir_spans_blocks() {
        let entries = (0..5000).map(|i| entry(&format!("file-{i:05}"))).collect();
        let d = DirLayout::new(entries);
        // 12 + 10 bytes per entry → 186 per block.
        assert_eq!(d.blocks[0].len(), 4096 / 22);
        assert_eq!(d.blocks.len(), 5000usize.div_ceil(186));
        let bytes = d.encode_from(0, &|_| 40);
        assert_eq!(bytes.len() as u64, d.size);
    }
}
