//! Importing a host directory (COPY from a build context): every file type, owners
//! kept or overridden, xattrs, hardlinks collapsed to one inode, symlinks stored
//! unresolved; the image then mounts with the same view as the tree.

mod common;

use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::process::Command;

use cast_rootfs::erofs::Options;
use cast_rootfs::tree::ImportOptions;
use cast_rootfs::{ImageTree, Node};
use common::{compare, mount, write_and_fsck, Checks};

#[test]
fn import_keeps_types_links_owners_and_xattrs() {
    let src = tempfile::tempdir().unwrap();
    let p = src.path();
    std::fs::create_dir_all(p.join("sub/deeper")).unwrap();
    std::fs::write(p.join("sub/a.txt"), "alpha").unwrap();
    std::fs::hard_link(p.join("sub/a.txt"), p.join("a-link")).unwrap();
    std::fs::write(p.join("tool"), "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(p.join("tool"), std::fs::Permissions::from_mode(0o4750)).unwrap();
    symlink("/etc/passwd", p.join("abs-link")).unwrap();
    symlink("../../..", p.join("sub/deeper/up")).unwrap();
    let fifo = Command::new("mkfifo").arg(p.join("pipe")).status().unwrap();
    assert!(fifo.success(), "mkfifo failed");
    xattr::set(p.join("sub/a.txt"), "user.origin", b"context").unwrap();

    let mut tree = ImageTree::new().unwrap();
    let options = ImportOptions {
        xattrs: true,
        owner: None,
    };
    let stats = tree.import_dir(p, "/app", &options).unwrap();
    assert_eq!(stats.entries, 9);
    assert_eq!(
        tree.lookup("/app/a-link").unwrap(),
        tree.lookup("/app/sub/a.txt").unwrap()
    );
    let tool = tree.inode(tree.lookup("/app/tool").unwrap());
    assert_eq!(tool.mode(), 0o104750);
    let link = tree.inode(tree.lookup("/app/abs-link").unwrap());
    assert_eq!(link.node, Node::Symlink(b"/etc/passwd".to_vec()));
    assert!(matches!(
        tree.inode(tree.lookup("/app/pipe").unwrap()).node,
        Node::Fifo
    ));
    let a = tree.inode(tree.lookup("/app/sub/a.txt").unwrap());
    assert_eq!(a.meta.xattrs[&b"user.origin"[..]], b"context");
    assert_eq!(
        a.meta.uid,
        std::fs::metadata(p.join("sub/a.txt")).unwrap().uid()
    );

    let (_d, img) = write_and_fsck(&tree, &Options::default());
    let m = mount(&img);
    compare(&tree, m.path(), Checks::ALL);

    let mut chowned = ImageTree::new().unwrap();
    let options = ImportOptions {
        xattrs: false,
        owner: Some((1000, 1001)),
    };
    chowned.import_dir(p, "/", &options).unwrap();
    for entry in chowned.iter() {
        assert_eq!(
            (entry.inode.meta.uid, entry.inode.meta.gid),
            (1000, 1001),
            "{:?}",
            entry.path
        );
        assert!(entry.inode.meta.xattrs.is_empty());
    }
}
