//! Iterating over a tree: every path in depth-first, name-sorted order, and totals.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use super::{ImageTree, Inode, InodeId, Node};

/// One path in the tree, as yielded by [`ImageTree::iter`].
#[derive(Debug)]
pub struct Entry<'a> {
    /// Absolute path inside the image (`/` for the root).
    pub path: PathBuf,
    /// The inode this path names (shared by hardlinks).
    pub id: InodeId,
    /// The inode itself.
    pub inode: &'a Inode,
}

/// Depth-first iterator over a tree's paths.
#[derive(Debug)]
pub struct Iter<'a> {
    tree: &'a ImageTree,
    stack: Vec<(PathBuf, InodeId)>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = Entry<'a>;

    fn next(&mut self) -> Option<Entry<'a>> {
        let (path, id) = self.stack.pop()?;
        let inode = self.tree.inode(id);
        if let Node::Dir(entries) = &inode.node {
            for (name, child) in entries.iter().rev() {
                self.stack
                    .push((path.join(OsStr::from_bytes(name)), *child));
            }
        }
        Some(Entry { path, id, inode })
    }
}

impl ImageTree {
    /// Every path in the tree, parents before children, siblings sorted bytewise.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            tree: self,
            stack: vec![(PathBuf::from("/"), self.root())],
        }
    }

    /// The reachable inodes, each once (hardlinks collapse), in iteration order.
    pub fn unique_inodes(&self) -> Vec<InodeId> {
        let mut seen = HashSet::new();
        self.iter()
            .filter(|e| seen.insert(e.id))
            .map(|e| e.id)
            .collect()
    }

    /// Total bytes of regular-file contents, counting hardlinked files once.
    pub fn total_size(&self) -> u64 {
        self.unique_inodes()
            .into_iter()
            .map(|id| match &self.inode(id).node {
                Node::File(content) => content.len(),
                _ => 0,
            })
            .sum()
    }

    /// Number of reachable inodes.
    pub fn inode_count(&self) -> usize {
        self.unique_inodes().len()
    }
}
