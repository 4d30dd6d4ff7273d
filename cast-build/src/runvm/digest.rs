//! A content digest of an image tree: what a RUN step's cache key starts from.
//!
//! Every path in the tree's (deterministic, name-sorted) order contributes its
//! type, mode, owner, mtime, extended attributes and payload (file bytes, link
//! target, device numbers); hard links contribute the path they share an inode
//! with. Two trees with the same digest look the same to a command run in them.

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;

use cast_rootfs::{ImageTree, InodeId, Node};
use sha2::{Digest, Sha256};

/// The SHA-256 of `tree`'s content, as lowercase hex.
pub fn tree_digest(tree: &ImageTree) -> std::io::Result<String> {
    let mut h = Sha256::new();
    let mut seen: HashMap<InodeId, Vec<u8>> = HashMap::new();
    let mut buf = vec![0u8; 1 << 16];
    for entry in tree.iter() {
        let path = entry.path.as_os_str().as_bytes();
        field(&mut h, path);
        if let Some(first) = seen.get(&entry.id) {
            field(&mut h, b"link");
            field(&mut h, first);
            continue;
        }
        if !entry.inode.node.is_dir() {
            seen.insert(entry.id, path.to_vec());
        }
        let m = &entry.inode.meta;
        field(
            &mut h,
            format!(
                "{:o} {} {} {:?} {:?}",
                entry.inode.mode(),
                m.uid,
                m.gid,
                m.mtime,
                m.xattrs
            )
            .as_bytes(),
        );
        match &entry.inode.node {
            Node::File(content) => {
                field(&mut h, content.len().to_string().as_bytes());
                let mut r = tree.open_content(entry.id);
                loop {
                    let n = r.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    h.update(&buf[..n]);
                }
            }
            Node::Symlink(target) => field(&mut h, target),
            Node::Device { major, minor, .. } => {
                field(&mut h, format!("{major}:{minor}").as_bytes())
            }
            Node::Dir(_) | Node::Fifo | Node::Socket => {}
        }
    }
    Ok(format!("{:x}", h.finalize()))
}

/// A length-prefixed field, so no two sequences of fields hash alike.
fn field(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;
    use cast_rootfs::Metadata;

    #[test]
    fn digests_follow_content_and_metadata() {
        let make = |text: &[u8], mode: u32| {
            let mut t = ImageTree::new().unwrap();
            t.add_file("/a", &mut &text[..], Metadata::with_mode(mode))
                .unwrap();
            tree_digest(&t).unwrap()
        };
        assert_eq!(make(b"x", 0o644), make(b"x", 0o644));
        assert_ne!(make(b"x", 0o644), make(b"y", 0o644));
        assert_ne!(make(b"x", 0o644), make(b"x", 0o755));
    }
}
