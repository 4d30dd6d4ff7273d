//! Copying between image trees: a stage built on another stage, `COPY
//! --from=stage`, and archives extracted by ADD all copy a subtree of one
//! [`ImageTree`] into another.
//!
//! Files, directories, symlinks, devices, fifos and sockets are copied with
//! their metadata (xattrs included); hardlinks inside the copied subtree stay
//! hardlinks. An optional [`Override`] replaces owner and mode, as `--chown`
//! and `--chmod` do.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use cast_rootfs::tree::AddError;
use cast_rootfs::{ImageTree, InodeId, Metadata, Node};

use crate::chmod::Chmod;

/// Owner and mode to force on copied entries (`--chown`, `--chmod`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Override {
    /// `(uid, gid)` for every entry.
    pub owner: Option<(u32, u32)>,
    /// `--chmod` for every entry (directories included, as Docker does).
    pub mode: Option<Chmod>,
}

impl Override {
    /// `meta` of a directory (`is_dir`) or other entry with the overrides applied.
    pub fn apply(&self, mut meta: Metadata, is_dir: bool) -> Metadata {
        if let Some((uid, gid)) = self.owner {
            meta.uid = uid;
            meta.gid = gid;
        }
        if let Some(mode) = &self.mode {
            meta.mode = mode.apply(meta.mode, is_dir);
        }
        meta
    }
}

/// Copies the node `id` of `src` to `dst_path` in `dst`; a directory is copied
/// with everything below it. Existing directories at the destination are
/// merged into (their entries replaced one by one), as Docker does.
pub fn graft(
    src: &ImageTree,
    id: InodeId,
    dst: &mut ImageTree,
    dst_path: &Path,
    ov: &Override,
) -> Result<u64, AddError> {
    let mut links: HashMap<InodeId, PathBuf> = HashMap::new();
    let mut count = 0;
    let mut todo = vec![(id, dst_path.to_owned())];
    while let Some((id, path)) = todo.pop() {
        let inode = src.inode(id);
        count += 1;
        if !inode.node.is_dir() {
            if let Some(first) = links.get(&id) {
                dst.add_hardlink(&path, first)?;
                continue;
            }
            if inode.nlink(src) > 1 {
                links.insert(id, path.clone());
            }
        }
        let meta = ov.apply(inode.meta.clone(), inode.node.is_dir());
        match &inode.node {
            Node::Dir(entries) => {
                dst.add_dir(&path, meta)?;
                for (name, child) in entries.iter().rev() {
                    todo.push((*child, path.join(OsStr::from_bytes(name))));
                }
            }
            Node::File(_) => {
                dst.add_file(&path, &mut src.open_content(id), meta)?;
            }
            Node::Symlink(target) => {
                dst.add_symlink(&path, OsStr::from_bytes(target), meta)?;
            }
            Node::Device { kind, major, minor } => {
                dst.add_device(&path, *kind, *major, *minor, meta)?;
            }
            Node::Fifo => {
                dst.add_fifo(&path, meta)?;
            }
            Node::Socket => {
                dst.add_socket(&path, meta)?;
            }
        }
    }
    Ok(count)
}

/// Copies the children of directory `id` of `src` into `dst_dir` (the
/// directory itself keeps its metadata if it exists, else gets `dir_meta`).
pub fn graft_contents(
    src: &ImageTree,
    id: InodeId,
    dst: &mut ImageTree,
    dst_dir: &Path,
    dir_meta: Metadata,
    ov: &Override,
) -> Result<u64, AddError> {
    dst.mkdir_p(dst_dir, dir_meta)?;
    let mut count = 0;
    if let Node::Dir(entries) = &src.inode(id).node {
        for (name, child) in entries {
            count += graft(src, *child, dst, &dst_dir.join(OsStr::from_bytes(name)), ov)?;
        }
    }
    Ok(count)
}

/// A full copy of a tree (for a stage that starts from another stage).
pub fn clone_tree(src: &ImageTree) -> Result<ImageTree, crate::builder::BuildError> {
    let mut dst = ImageTree::new().map_err(crate::builder::BuildError::Spill)?;
    let root_meta = src.inode(src.root()).meta.clone();
    graft_contents(
        src,
        src.root(),
        &mut dst,
        Path::new("/"),
        root_meta.clone(),
        &Override::default(),
    )
    .map_err(|source| crate::builder::BuildError::Tree {
        location: None,
        path: PathBuf::from("/"),
        source,
    })?;
    *dst.metadata_mut(dst.root()) = root_meta;
    Ok(dst)
}
