//! Whiteouts: `.wh.NAME` deletes NAME from the layers below; `.wh..wh..opq` makes its
//! directory opaque (everything below it that this layer did not add goes). Other
//! `.wh..wh.*` entries (aufs bookkeeping) are ignored.

use std::collections::HashSet;

use crate::tree::path::join;
use crate::tree::{ImageTree, InodeId, Node, PathError};

const OPAQUE: &[u8] = b".wh..opq";

/// Applies one whiteout found in directory `parent` with the name after `.wh.`.
pub(super) fn apply(
    tree: &mut ImageTree,
    added: &HashSet<Vec<Vec<u8>>>,
    parent: &[Vec<u8>],
    name: &[u8],
) -> Result<(), PathError> {
    if name == OPAQUE {
        let dir = match tree.lookup(join(parent)) {
            Ok(id) => id,
            Err(PathError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        clear_lower(tree, added, dir, &mut parent.to_vec());
        return Ok(());
    }
    if name.starts_with(b".wh.") || name.is_empty() {
        return Ok(());
    }
    let mut target = parent.to_vec();
    target.push(name.to_vec());
    tree.remove(join(&target))?;
    Ok(())
}

/// Removes every entry below `dir` whose path this layer did not add.
fn clear_lower(
    tree: &mut ImageTree,
    added: &HashSet<Vec<Vec<u8>>>,
    dir: InodeId,
    path: &mut Vec<Vec<u8>>,
) {
    let Node::Dir(entries) = &tree.inode(dir).node else {
        return;
    };
    let children: Vec<(Vec<u8>, InodeId)> =
        entries.iter().map(|(n, id)| (n.clone(), *id)).collect();
    for (name, child) in children {
        path.push(name.clone());
        if !added.contains(path) {
            tree.unlink_child(dir, &name);
        } else if tree.inode(child).node.is_dir() {
            clear_lower(tree, added, child, path);
        }
        path.pop();
    }
}
