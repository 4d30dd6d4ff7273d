//! Path handling that cannot leave the tree.
//!
//! A path is first normalised: absolute paths are taken relative to the tree's root,
//! `.` disappears and `..` clamps at `/`. Walking it then resolves every symlink met
//! in a parent position *inside the tree* (an absolute target restarts at the tree's
//! root, like a chroot), with a bound on how many links one walk may follow. The host
//! filesystem is never consulted.

use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use super::{ImageTree, InodeId, Node};

/// How many symlinks one lookup may follow before giving up (Linux uses 40).
pub const MAX_SYMLINK_HOPS: u32 = 40;

/// Failure to resolve a path inside the tree.
#[derive(Debug, thiserror::Error)]
pub enum PathError {
    /// A component does not exist.
    #[error("{0}: no such file or directory in the image")]
    NotFound(PathBuf),
    /// A parent component is not a directory.
    #[error("{0}: a parent is not a directory")]
    NotADirectory(PathBuf),
    /// Too many symlinks on the way.
    #[error("{0}: too many levels of symbolic links")]
    SymlinkLoop(PathBuf),
    /// The path names the root itself where a name is needed.
    #[error("the root directory cannot be the target here")]
    IsRoot,
    /// A component is longer than 255 bytes.
    #[error("{0}: a name is longer than 255 bytes")]
    NameTooLong(PathBuf),
    /// A component contains a NUL byte.
    #[error("{0:?}: a name contains a NUL byte")]
    NulInName(PathBuf),
}

/// The last component of a walked path: its name and, if it exists, its inode.
pub(crate) type LastName = (Vec<u8>, Option<InodeId>);

/// One outcome of walking a path.
#[derive(Debug)]
pub(crate) enum Step {
    /// The walk ended: directory stack and the last name (see `walk_path`).
    Done(Vec<InodeId>, Option<LastName>),
    /// Parent directory `name` is missing in directory `.0`.
    Missing(InodeId, Vec<u8>),
}

/// A normalised path: its components, and whether `..` tried to climb above `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalized {
    /// Components below the root, none of them `.`, `..` or empty.
    pub components: Vec<Vec<u8>>,
    /// True when some `..` was clamped at the root.
    pub escaped: bool,
}

/// Normalises `path` inside the root: `/a/../b` → `b`, `../../x` → `x` (escaped).
pub fn normalize(path: &Path) -> Normalized {
    let mut components: Vec<Vec<u8>> = Vec::new();
    let mut escaped = false;
    for comp in path.components() {
        match comp {
            Component::Normal(name) => components.push(name.as_bytes().to_vec()),
            Component::ParentDir => {
                if components.pop().is_none() {
                    escaped = true;
                }
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    Normalized {
        components,
        escaped,
    }
}

/// Turns components back into a display path (`/a/b`).
pub fn join(components: &[Vec<u8>]) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in components {
        out.push(std::ffi::OsStr::from_bytes(c));
    }
    out
}

/// Splits a symlink target into raw components (keeping `..` for the walker).
fn raw_components(target: &[u8]) -> (bool, Vec<Vec<u8>>) {
    let absolute = target.first() == Some(&b'/');
    let parts = target
        .split(|b| *b == b'/')
        .filter(|p| !p.is_empty() && *p != b".")
        .map(<[u8]>::to_vec)
        .collect();
    (absolute, parts)
}

impl ImageTree {
    /// Walks `path` from the root, following symlinks in parent positions (and in
    /// the last position when `follow_last`). Returns the directory stack (root
    /// first) and, unless the path resolves to a directory on the stack, the last
    /// name with its inode if it exists.
    pub(crate) fn walk_path(
        &self,
        path: &Path,
        follow_last: bool,
    ) -> Result<(Vec<InodeId>, Option<LastName>), PathError> {
        match self.walk_step(path, follow_last)? {
            Step::Done(stack, last) => Ok((stack, last)),
            Step::Missing(..) => Err(PathError::NotFound(path.to_path_buf())),
        }
    }

    /// Like [`Self::walk_path`], but a missing parent is reported as the directory
    /// and name where it should be created, so callers can create it and walk again.
    pub(crate) fn walk_step(&self, path: &Path, follow_last: bool) -> Result<Step, PathError> {
        let norm = normalize(path);
        let mut pending: Vec<Vec<u8>> = norm.components.into_iter().rev().collect();
        let mut stack = vec![self.root()];
        let mut hops = 0u32;
        while let Some(name) = pending.pop() {
            if name == b".." {
                if stack.len() > 1 {
                    stack.pop();
                }
                continue;
            }
            if name.len() > 255 {
                return Err(PathError::NameTooLong(path.to_path_buf()));
            }
            if name.contains(&0) {
                return Err(PathError::NulInName(path.to_path_buf()));
            }
            let dir = *stack.last().expect("stack holds the root");
            let Node::Dir(entries) = &self.inode(dir).node else {
                return Err(PathError::NotADirectory(path.to_path_buf()));
            };
            let child = entries.get(&name).copied();
            let last = pending.is_empty();
            match child.map(|id| (id, &self.inode(id).node)) {
                Some((_, Node::Symlink(target))) if !last || follow_last => {
                    hops += 1;
                    if hops > MAX_SYMLINK_HOPS {
                        return Err(PathError::SymlinkLoop(path.to_path_buf()));
                    }
                    let (absolute, parts) = raw_components(target);
                    if absolute {
                        stack.truncate(1);
                    }
                    pending.extend(parts.into_iter().rev());
                }
                Some((id, Node::Dir(_))) if !last => stack.push(id),
                Some(_) if !last => return Err(PathError::NotADirectory(path.to_path_buf())),
                None if !last => return Ok(Step::Missing(dir, name)),
                found => return Ok(Step::Done(stack, Some((name, found.map(|(id, _)| id))))),
            }
        }
        // The path resolved to the directory on top of the stack (root, `..`, or a
        // link to a directory).
        Ok(Step::Done(stack, None))
    }

    /// The inode at `path`, without following a final symlink.
    pub fn lookup(&self, path: impl AsRef<Path>) -> Result<InodeId, PathError> {
        self.lookup_inner(path.as_ref(), false)
    }

    /// The inode at `path`, following a final symlink too (inside the tree).
    pub fn lookup_follow(&self, path: impl AsRef<Path>) -> Result<InodeId, PathError> {
        self.lookup_inner(path.as_ref(), true)
    }

    fn lookup_inner(&self, path: &Path, follow: bool) -> Result<InodeId, PathError> {
        match self.walk_path(path, follow)? {
            (stack, None) => Ok(*stack.last().expect("stack holds the root")),
            (_, Some((_, Some(id)))) => Ok(id),
            (_, Some((_, None))) => Err(PathError::NotFound(path.to_path_buf())),
        }
    }

    /// True when `path` names something (a dangling final symlink counts).
    pub fn exists(&self, path: impl AsRef<Path>) -> bool {
        self.lookup(path).is_ok()
    }
}
