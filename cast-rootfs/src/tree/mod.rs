//! The image tree: an in-memory model of a root filesystem that layers are applied
//! to and that the EROFS writer turns into an image.
//!
//! The tree holds inodes (directories, regular files, symlinks, devices, fifos,
//! sockets) with their metadata; directory entries point at inodes, so several paths
//! can share one inode (hardlinks). File contents never live in RAM beyond a few
//! hundred bytes: they are streamed into a spill file that the tree owns (see
//! [`spill`]). Every path given to the tree is normalised inside the root and walked
//! chroot-like (see [`path`]): no operation can reach the host filesystem.

mod import;
mod ops;
pub mod path;
pub mod spill;
mod walk;

use std::collections::BTreeMap;

pub use import::{ImportError, ImportOptions, ImportStats};
pub use ops::{AddError, SetError};
pub use path::PathError;
pub use spill::{Content, SpillError};
pub use walk::Entry;

/// Index of an inode inside an [`ImageTree`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InodeId(pub(crate) u32);

impl InodeId {
    /// The position of this inode in the tree's inode table (stable for its life).
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A point in time: seconds since the Unix epoch plus nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Timestamp {
    /// Seconds since 1970-01-01 00:00:00 UTC (may be negative).
    pub sec: i64,
    /// Nanoseconds, `0..1_000_000_000`.
    pub nsec: u32,
}

impl Timestamp {
    /// A whole-second timestamp.
    pub fn from_secs(sec: i64) -> Self {
        Self { sec, nsec: 0 }
    }
}

/// Per-inode metadata.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Metadata {
    /// Permission bits including setuid (0o4000), setgid (0o2000) and sticky (0o1000);
    /// the file type bits are taken from the node and ignored here.
    pub mode: u32,
    /// Owner user id.
    pub uid: u32,
    /// Owner group id.
    pub gid: u32,
    /// Modification time.
    pub mtime: Timestamp,
    /// Extended attributes, full name (`user.foo`, `security.capability`) → value.
    pub xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl Metadata {
    /// Metadata with the given permission bits, owned by root, at the epoch.
    pub fn with_mode(mode: u32) -> Self {
        Self {
            mode: mode & 0o7777,
            ..Self::default()
        }
    }

    /// The default for directories created implicitly: 0755, root, epoch.
    pub fn default_dir() -> Self {
        Self::with_mode(0o755)
    }
}

/// Block or character device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    /// A character device (`c`).
    Char,
    /// A block device (`b`).
    Block,
}

/// What an inode is, with its type-specific payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A directory: entry name → inode, sorted bytewise.
    Dir(BTreeMap<Vec<u8>, InodeId>),
    /// A regular file; its bytes are in the spill area or inline.
    File(Content),
    /// A symbolic link with its target, stored as given (never followed on the host).
    Symlink(Vec<u8>),
    /// A character or block device node.
    Device {
        /// Character or block.
        kind: DeviceKind,
        /// Major number.
        major: u32,
        /// Minor number.
        minor: u32,
    },
    /// A named pipe.
    Fifo,
    /// A Unix socket.
    Socket,
}

impl Node {
    /// The `S_IFMT` bits for this node type.
    pub fn type_bits(&self) -> u32 {
        match self {
            Node::Dir(_) => 0o040000,
            Node::File(_) => 0o100000,
            Node::Symlink(_) => 0o120000,
            Node::Device {
                kind: DeviceKind::Char,
                ..
            } => 0o020000,
            Node::Device {
                kind: DeviceKind::Block,
                ..
            } => 0o060000,
            Node::Fifo => 0o010000,
            Node::Socket => 0o140000,
        }
    }

    /// True for directories.
    pub fn is_dir(&self) -> bool {
        matches!(self, Node::Dir(_))
    }
}

/// One inode: what it is, its metadata and how many directory entries name it.
#[derive(Debug, Clone)]
pub struct Inode {
    /// Type and payload.
    pub node: Node,
    /// Owner, mode, times, xattrs.
    pub meta: Metadata,
    /// Number of directory entries pointing here (hardlinks); the root counts one.
    pub(crate) links: u32,
}

impl Inode {
    /// Full `st_mode`: type bits plus permission bits.
    pub fn mode(&self) -> u32 {
        self.node.type_bits() | (self.meta.mode & 0o7777)
    }

    /// Number of directory entries naming this inode (for directories: 2 plus one
    /// per subdirectory, as `stat` reports it).
    pub fn nlink(&self, tree: &ImageTree) -> u32 {
        match &self.node {
            Node::Dir(entries) => {
                2 + entries
                    .values()
                    .filter(|id| tree.inode(**id).node.is_dir())
                    .count() as u32
            }
            _ => self.links,
        }
    }
}

/// An in-memory root filesystem whose file contents live in a spill file.
#[derive(Debug)]
pub struct ImageTree {
    inodes: Vec<Inode>,
    spill: spill::Spill,
}

impl ImageTree {
    /// An empty tree: just a root directory (0755, root-owned, epoch mtime).
    pub fn new() -> Result<Self, SpillError> {
        let root = Inode {
            node: Node::Dir(BTreeMap::new()),
            meta: Metadata::default_dir(),
            links: 1,
        };
        Ok(Self {
            inodes: vec![root],
            spill: spill::Spill::new()?,
        })
    }

    /// The root directory's inode.
    pub fn root(&self) -> InodeId {
        InodeId(0)
    }

    /// The inode behind an id.
    pub fn inode(&self, id: InodeId) -> &Inode {
        &self.inodes[id.index()]
    }

    /// Mutable access to an inode's metadata.
    pub fn metadata_mut(&mut self, id: InodeId) -> &mut Metadata {
        &mut self.inodes[id.index()].meta
    }

    /// Opens a regular file's contents for reading (empty for other nodes).
    pub fn open_content(&self, id: InodeId) -> spill::ContentReader<'_> {
        match &self.inode(id).node {
            Node::File(content) => self.spill.reader(content),
            _ => self.spill.reader(&Content::Inline(Box::default())),
        }
    }

    pub(crate) fn push_inode(&mut self, node: Node, meta: Metadata) -> InodeId {
        let id = InodeId(self.inodes.len() as u32);
        self.inodes.push(Inode {
            node,
            meta,
            links: 0,
        });
        id
    }

    pub(crate) fn inode_mut(&mut self, id: InodeId) -> &mut Inode {
        &mut self.inodes[id.index()]
    }

    pub(crate) fn spill_mut(&mut self) -> &mut spill::Spill {
        &mut self.spill
    }
}
