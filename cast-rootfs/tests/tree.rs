//! The image tree's API: path normalisation and chroot-like resolution, mkdir -p,
//! replacing and removing entries, hardlink counts, owners and modes, iteration.

use std::io::{Cursor, Read};
use std::path::Path;

use cast_rootfs::tree::path::normalize;
use cast_rootfs::tree::{AddError, PathError};
use cast_rootfs::{ImageTree, Metadata, Node};

fn file(tree: &mut ImageTree, path: &str, body: &str) {
    tree.add_file(
        path,
        &mut Cursor::new(body.as_bytes().to_vec()),
        Metadata::with_mode(0o644),
    )
    .unwrap();
}

fn read(tree: &ImageTree, path: &str) -> String {
    let mut s = String::new();
    tree.open_content(tree.lookup_follow(path).unwrap())
        .read_to_string(&mut s)
        .unwrap();
    s
}

#[test]
fn normalisation_clamps_at_root() {
    let n = normalize(Path::new("/a/./b/../../../c//d/"));
    assert_eq!(n.components, vec![b"c".to_vec(), b"d".to_vec()]);
    assert!(n.escaped);
    let n = normalize(Path::new("a/b/.."));
    assert_eq!(n.components, vec![b"a".to_vec()]);
    assert!(!n.escaped);
}

#[test]
fn mkdir_p_follows_symlinks_and_keeps_existing_metadata() {
    let mut t = ImageTree::new().unwrap();
    let first = t.mkdir_p("/usr/lib", Metadata::with_mode(0o700)).unwrap();
    t.add_symlink("/lib", "usr/lib", Metadata::with_mode(0o777))
        .unwrap();
    let again = t.mkdir_p("/lib", Metadata::with_mode(0o755)).unwrap();
    assert_eq!(first, again);
    assert_eq!(t.inode(first).meta.mode, 0o700);
    let deep = t.mkdir_p("/lib/x/y", Metadata::with_mode(0o750)).unwrap();
    assert_eq!(t.lookup("/usr/lib/x/y").unwrap(), deep);
    t.add_symlink("/root-link", "/", Metadata::with_mode(0o777))
        .unwrap();
    file(&mut t, "/root-link/etc/hosts", "h");
    assert_eq!(read(&t, "/etc/hosts"), "h");
    assert_eq!(t.lookup_follow("/root-link").unwrap(), t.root());
}

#[test]
fn replace_and_remove() {
    let mut t = ImageTree::new().unwrap();
    file(&mut t, "/d/f", "one");
    file(&mut t, "/d/f", "two");
    assert_eq!(read(&t, "/d/f"), "two");
    let err = t.add_fifo("/d", Metadata::with_mode(0o644)).unwrap_err();
    assert!(matches!(err, AddError::IsADirectory(_)));
    t.add_hardlink("/g", "/d/f").unwrap();
    assert_eq!(t.inode(t.lookup("/g").unwrap()).nlink(&t), 2);
    assert!(t.remove("/d").unwrap());
    assert!(!t.exists("/d/f"));
    assert_eq!(t.inode(t.lookup("/g").unwrap()).nlink(&t), 1);
    assert_eq!(read(&t, "/g"), "two");
    assert!(!t.remove("/d").unwrap());
    assert!(matches!(t.remove("/"), Err(PathError::IsRoot)));
}

#[test]
fn owners_modes_and_errors() {
    let mut t = ImageTree::new().unwrap();
    file(&mut t, "/bin/su", "su");
    t.set_mode("/bin/su", 0o104755).unwrap();
    t.set_owner("/bin/su", 0, 42).unwrap();
    let su = t.inode(t.lookup("/bin/su").unwrap());
    assert_eq!((su.mode(), su.meta.gid), (0o104755, 42));
    assert!(matches!(
        t.lookup("/bin/su/x"),
        Err(PathError::NotADirectory(_))
    ));
    assert!(matches!(t.lookup("/nope"), Err(PathError::NotFound(_))));
    let long = format!("/{}", "n".repeat(256));
    assert!(matches!(t.lookup(&long), Err(PathError::NameTooLong(_))));
    assert!(matches!(t.lookup("/a\0b"), Err(PathError::NulInName(_))));
    assert!(t.add_hardlink("/h", "/bin").is_err());
    t.add_symlink("/dangling", "/nowhere", Metadata::with_mode(0o777))
        .unwrap();
    assert!(t.exists("/dangling"));
    assert!(t.lookup_follow("/dangling").is_err());
}

#[test]
fn iteration_and_totals() {
    let mut t = ImageTree::new().unwrap();
    file(&mut t, "/b/2", "22");
    file(&mut t, "/b/1", "1");
    file(&mut t, "/a", &"x".repeat(1000));
    t.add_hardlink("/c", "/a").unwrap();
    let paths: Vec<_> = t.iter().map(|e| e.path.display().to_string()).collect();
    assert_eq!(paths, ["/", "/a", "/b", "/b/1", "/b/2", "/c"]);
    assert_eq!(t.total_size(), 1003);
    assert_eq!(t.inode_count(), 5);
    assert!(matches!(
        t.inode(t.lookup("/a").unwrap()).node,
        Node::File(_)
    ));
    assert_eq!(t.inode(t.root()).nlink(&t), 3);
}
