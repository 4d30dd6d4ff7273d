//! Changing the tree: create directories, files, links, devices; remove; chown/chmod.
//!
//! Every operation resolves its path with the chroot-like walker of [`super::path`].
//! Creating an entry replaces an existing non-directory entry of the same name (like
//! a layer does); replacing a directory by a non-directory is refused so callers
//! decide explicitly (see [`ImageTree::remove`]). Missing parents are created with
//! [`Metadata::default_dir`].

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::path::{PathError, Step};
use super::{DeviceKind, ImageTree, InodeId, Metadata, Node, SpillError};

/// Failure to add an entry to the tree.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    /// The path could not be resolved.
    #[error("cannot resolve the path")]
    Path(#[from] PathError),
    /// A directory is in the way of a non-directory.
    #[error("{0}: is a directory")]
    IsADirectory(PathBuf),
    /// Hardlinks to directories are not allowed.
    #[error("{0}: cannot hardlink a directory")]
    LinkToDirectory(PathBuf),
    /// The contents could not be stored.
    #[error("cannot store file contents")]
    Spill(#[from] SpillError),
}

/// Failure to change an existing entry's metadata.
#[derive(Debug, thiserror::Error)]
pub enum SetError {
    /// The path could not be resolved.
    #[error("cannot resolve the path")]
    Path(#[from] PathError),
}

/// Bound on parents one operation may create (each walk creates one).
const MAX_CREATED_PARENTS: usize = 4096;

enum NewEntry {
    Node(Node, Metadata),
    Existing(InodeId),
}

impl ImageTree {
    /// Creates `path` and its missing parents as directories (`mkdir -p`, following
    /// symlinks inside the tree). Existing directories keep their metadata; new ones
    /// (including parents) get `meta`.
    pub fn mkdir_p(&mut self, path: impl AsRef<Path>, meta: Metadata) -> Result<InodeId, AddError> {
        let path = path.as_ref();
        for _ in 0..MAX_CREATED_PARENTS {
            match self.walk_step(path, true)? {
                Step::Done(stack, None) => return Ok(*stack.last().expect("stack holds the root")),
                Step::Done(_, Some((_, Some(id)))) if self.inode(id).node.is_dir() => {
                    return Ok(id)
                }
                Step::Done(_, Some((_, Some(_)))) => {
                    return Err(PathError::NotADirectory(path.to_path_buf()).into())
                }
                Step::Done(stack, Some((name, None))) => {
                    let dir = *stack.last().expect("stack holds the root");
                    return Ok(self.insert_child(
                        dir,
                        name,
                        NewEntry::Node(Node::Dir(BTreeMap::new()), meta),
                    ));
                }
                Step::Missing(dir, name) => {
                    self.insert_child(
                        dir,
                        name,
                        NewEntry::Node(Node::Dir(BTreeMap::new()), meta.clone()),
                    );
                }
            }
        }
        Err(PathError::NotFound(path.to_path_buf()).into())
    }

    /// Creates a directory at `path` or, when one exists, sets its metadata (what a
    /// directory entry in a layer does). Missing parents are created.
    pub fn add_dir(&mut self, path: impl AsRef<Path>, meta: Metadata) -> Result<InodeId, AddError> {
        self.add(
            path.as_ref(),
            NewEntry::Node(Node::Dir(BTreeMap::new()), meta),
        )
    }

    /// Adds a regular file whose contents are streamed from `reader` into the spill.
    pub fn add_file(
        &mut self,
        path: impl AsRef<Path>,
        reader: &mut dyn Read,
        meta: Metadata,
    ) -> Result<InodeId, AddError> {
        let content = self.spill_mut().store(reader)?;
        self.add(path.as_ref(), NewEntry::Node(Node::File(content), meta))
    }

    /// Adds a symlink; `target` is stored as given and only ever resolved in the tree.
    pub fn add_symlink(
        &mut self,
        path: impl AsRef<Path>,
        target: impl AsRef<Path>,
        meta: Metadata,
    ) -> Result<InodeId, AddError> {
        use std::os::unix::ffi::OsStrExt;
        let target = target.as_ref().as_os_str().as_bytes().to_vec();
        self.add(path.as_ref(), NewEntry::Node(Node::Symlink(target), meta))
    }

    /// Adds `path` as another name of the inode at `target` (no final symlink is
    /// followed, like `link(2)`).
    pub fn add_hardlink(
        &mut self,
        path: impl AsRef<Path>,
        target: impl AsRef<Path>,
    ) -> Result<InodeId, AddError> {
        let id = self.lookup(target.as_ref())?;
        if self.inode(id).node.is_dir() {
            return Err(AddError::LinkToDirectory(target.as_ref().to_path_buf()));
        }
        self.add(path.as_ref(), NewEntry::Existing(id))
    }

    /// Adds a character or block device node.
    pub fn add_device(
        &mut self,
        path: impl AsRef<Path>,
        kind: DeviceKind,
        major: u32,
        minor: u32,
        meta: Metadata,
    ) -> Result<InodeId, AddError> {
        let node = Node::Device { kind, major, minor };
        self.add(path.as_ref(), NewEntry::Node(node, meta))
    }

    /// Adds a named pipe.
    pub fn add_fifo(
        &mut self,
        path: impl AsRef<Path>,
        meta: Metadata,
    ) -> Result<InodeId, AddError> {
        self.add(path.as_ref(), NewEntry::Node(Node::Fifo, meta))
    }

    /// Adds a Unix socket node.
    pub fn add_socket(
        &mut self,
        path: impl AsRef<Path>,
        meta: Metadata,
    ) -> Result<InodeId, AddError> {
        self.add(path.as_ref(), NewEntry::Node(Node::Socket, meta))
    }

    /// Removes `path` (recursively for directories; a final symlink itself is removed,
    /// not its target). Returns false when nothing was there.
    pub fn remove(&mut self, path: impl AsRef<Path>) -> Result<bool, PathError> {
        let (stack, last) = match self.walk_path(path.as_ref(), false) {
            Ok(found) => found,
            Err(PathError::NotFound(_)) => return Ok(false),
            Err(e) => return Err(e),
        };
        let Some((name, Some(_))) = last else {
            return match last {
                None => Err(PathError::IsRoot),
                Some(_) => Ok(false),
            };
        };
        let dir = *stack.last().expect("stack holds the root");
        Ok(self.unlink_child(dir, &name))
    }

    /// Sets owner and group of `path` (not following a final symlink, like lchown).
    pub fn set_owner(
        &mut self,
        path: impl AsRef<Path>,
        uid: u32,
        gid: u32,
    ) -> Result<(), SetError> {
        let id = self.lookup(path)?;
        let meta = self.metadata_mut(id);
        meta.uid = uid;
        meta.gid = gid;
        Ok(())
    }

    /// Sets the permission bits (incl. setuid/setgid/sticky) of `path`.
    pub fn set_mode(&mut self, path: impl AsRef<Path>, mode: u32) -> Result<(), SetError> {
        let id = self.lookup(path)?;
        self.metadata_mut(id).mode = mode & 0o7777;
        Ok(())
    }

    /// Removes the entry `name` from directory `dir`; true if it was there.
    pub(crate) fn unlink_child(&mut self, dir: InodeId, name: &[u8]) -> bool {
        let removed = match &mut self.inode_mut(dir).node {
            Node::Dir(entries) => entries.remove(name),
            _ => None,
        };
        if let Some(id) = removed {
            self.release(id);
        }
        removed.is_some()
    }

    /// Drops one link to `id`; a directory that loses its last link releases its
    /// children. Released inodes stay in the table, unreachable.
    fn release(&mut self, id: InodeId) {
        let mut todo = vec![id];
        while let Some(id) = todo.pop() {
            let inode = self.inode_mut(id);
            inode.links = inode.links.saturating_sub(1);
            if inode.links == 0 {
                if let Node::Dir(entries) = &mut inode.node {
                    todo.extend(std::mem::take(entries).into_values());
                }
            }
        }
    }

    fn add(&mut self, path: &Path, entry: NewEntry) -> Result<InodeId, AddError> {
        match self.link_at(path, entry) {
            Err(AddError::Path(PathError::NotFound(_))) => {
                Err(AddError::Path(PathError::NotFound(path.to_path_buf())))
            }
            other => other,
        }
    }

    /// Links `entry` at `path`, creating missing parents (where symlinks lead).
    fn link_at(&mut self, path: &Path, entry: NewEntry) -> Result<InodeId, AddError> {
        let mut walked = None;
        for _ in 0..MAX_CREATED_PARENTS {
            match self.walk_step(path, false)? {
                Step::Done(stack, last) => {
                    walked = Some((stack, last));
                    break;
                }
                Step::Missing(dir, name) => {
                    let node = Node::Dir(BTreeMap::new());
                    self.insert_child(dir, name, NewEntry::Node(node, Metadata::default_dir()));
                }
            }
        }
        let (stack, last) = walked.ok_or_else(|| PathError::NotFound(path.to_path_buf()))?;
        let dir = *stack.last().expect("stack holds the root");
        let (name, existing) = match last {
            Some(found) => found,
            None => match entry {
                // The path names a directory (the root, or through a trailing link).
                NewEntry::Node(Node::Dir(_), meta) => {
                    self.inode_mut(dir).meta = meta;
                    return Ok(dir);
                }
                _ => return Err(AddError::IsADirectory(path.to_path_buf())),
            },
        };
        if let Some(old) = existing {
            let old_is_dir = self.inode(old).node.is_dir();
            match &entry {
                NewEntry::Node(Node::Dir(_), _) if old_is_dir => {
                    if let NewEntry::Node(_, meta) = entry {
                        self.inode_mut(old).meta = meta;
                    }
                    return Ok(old);
                }
                NewEntry::Existing(id) if *id == old => return Ok(old),
                _ if old_is_dir => return Err(AddError::IsADirectory(path.to_path_buf())),
                _ => {
                    self.unlink_child(dir, &name);
                }
            }
        }
        Ok(self.insert_child(dir, name, entry))
    }

    /// Puts `entry` under `name` in `dir` (which must not have that name).
    fn insert_child(&mut self, dir: InodeId, name: Vec<u8>, entry: NewEntry) -> InodeId {
        let id = match entry {
            NewEntry::Node(node, mut meta) => {
                meta.mode &= 0o7777;
                self.push_inode(node, meta)
            }
            NewEntry::Existing(id) => id,
        };
        self.inode_mut(id).links += 1;
        if let Node::Dir(entries) = &mut self.inode_mut(dir).node {
            entries.insert(name, id);
        }
        id
    }
}
