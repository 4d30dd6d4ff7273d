//! Malicious layers cannot write outside the tree: `..` paths, absolute paths,
//! symlinks pointing at host directories followed by files through them, hardlinks
//! to outside or missing targets, symlink loops. Each attack aims at a real host
//! directory that must stay untouched.

mod common;

use std::io::Read;
use std::path::Path;

use cast_rootfs::layer::{apply_layer, ApplyError, Compression};
use cast_rootfs::ImageTree;
use common::tarball::Layer;
use tar::EntryType;

/// A host directory the attacks aim at; it must stay empty.
fn bait() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn assert_untouched(dir: &Path) {
    let left: Vec<_> = std::fs::read_dir(dir).unwrap().collect();
    assert!(
        left.is_empty(),
        "host directory {} was written to",
        dir.display()
    );
}

fn apply(tree: &mut ImageTree, bytes: &[u8]) -> Result<(), ApplyError> {
    apply_layer(tree, bytes, Compression::None).map(|_| ())
}

fn read(tree: &ImageTree, path: &str) -> String {
    let mut s = String::new();
    tree.open_content(tree.lookup(path).unwrap())
        .read_to_string(&mut s)
        .unwrap();
    s
}

#[test]
fn dotdot_entry_is_rejected() {
    let host = bait();
    let name = format!("../../../../../../..{}/pwned", host.path().display());
    let mut tree = ImageTree::new().unwrap();
    let layer = Layer::new()
        .raw(&name, EntryType::Regular, 0o644, "", b"x")
        .plain();
    assert!(matches!(
        apply(&mut tree, &layer),
        Err(ApplyError::PathEscapes(_))
    ));
    let layer = Layer::new()
        .raw("a/../../.wh.etc", EntryType::Regular, 0o644, "", b"")
        .plain();
    assert!(matches!(
        apply(&mut tree, &layer),
        Err(ApplyError::PathEscapes(_))
    ));
    assert_untouched(host.path());
}

#[test]
fn inner_dotdot_stays_inside() {
    let mut tree = ImageTree::new().unwrap();
    let layer = Layer::new()
        .raw("a/b/../../c", EntryType::Regular, 0o644, "", b"c")
        .plain();
    apply(&mut tree, &layer).unwrap();
    assert_eq!(read(&tree, "/c"), "c");
}

#[test]
fn absolute_path_lands_in_the_tree() {
    let host = bait();
    let name = format!("{}/pwned", host.path().display());
    let mut tree = ImageTree::new().unwrap();
    let layer = Layer::new()
        .raw(&name, EntryType::Regular, 0o644, "", b"inside")
        .plain();
    apply(&mut tree, &layer).unwrap();
    assert_eq!(read(&tree, &name), "inside");
    assert_untouched(host.path());
}

#[test]
fn file_through_symlink_to_host_dir_stays_inside() {
    let host = bait();
    let target = host.path().display().to_string();
    let mut tree = ImageTree::new().unwrap();
    let layer = Layer::new()
        .symlink("evil", &target)
        .raw("evil/pwned", EntryType::Regular, 0o644, "", b"inside")
        .symlink("up", "../../../../../..")
        .raw(
            "up/etc/shadow-test",
            EntryType::Regular,
            0o644,
            "",
            b"shadow",
        )
        .symlink("rel", "../../tmp")
        .raw("rel/x", EntryType::Regular, 0o644, "", b"x")
        .plain();
    apply(&mut tree, &layer).unwrap();
    assert_eq!(read(&tree, &format!("{target}/pwned")), "inside");
    assert_eq!(read(&tree, "/etc/shadow-test"), "shadow");
    assert_eq!(read(&tree, "/tmp/x"), "x");
    assert!(!Path::new("/etc/shadow-test").exists());
    assert_untouched(host.path());
    // The symlinks themselves are stored as given.
    let evil = tree.inode(tree.lookup("/evil").unwrap());
    assert_eq!(evil.node, cast_rootfs::Node::Symlink(target.into_bytes()));
}

#[test]
fn hardlink_outside_or_missing_is_an_error() {
    let mut tree = ImageTree::new().unwrap();
    let out = Layer::new().hardlink("h", "../../../etc/passwd").plain();
    assert!(matches!(
        apply(&mut tree, &out),
        Err(ApplyError::LinkEscapes { .. })
    ));
    // /etc/passwd exists on the host but not in the tree.
    let abs = Layer::new().hardlink("h", "/etc/passwd").plain();
    assert!(matches!(
        apply(&mut tree, &abs),
        Err(ApplyError::LinkTarget { .. })
    ));
    let through = Layer::new()
        .symlink("l", "/etc")
        .hardlink("h", "l/passwd")
        .plain();
    assert!(matches!(
        apply(&mut tree, &through),
        Err(ApplyError::LinkTarget { .. })
    ));
    let dir = Layer::new().dir("d/").hardlink("h", "d").plain();
    assert!(matches!(
        apply(&mut tree, &dir),
        Err(ApplyError::LinkTarget { .. })
    ));
    assert!(!tree.exists("/h"));
}

#[test]
fn symlink_loops_end() {
    let mut tree = ImageTree::new().unwrap();
    let layer = Layer::new()
        .symlink("a", "b")
        .symlink("b", "a")
        .symlink("self", "self/self")
        .plain();
    apply(&mut tree, &layer).unwrap();
    for name in ["a/x", "self/x"] {
        let bad = Layer::new()
            .raw(name, EntryType::Regular, 0o644, "", b"x")
            .plain();
        let err = apply(&mut tree, &bad).unwrap_err();
        assert!(matches!(err, ApplyError::Add { .. }), "{name}: {err}");
    }
    assert!(tree.lookup_follow("/a").is_err());
}

#[test]
fn tree_api_clamps_dotdot() {
    let host = bait();
    let mut tree = ImageTree::new().unwrap();
    let path = format!("/../../..{}/f", host.path().display());
    tree.add_file(
        &path,
        &mut &b"ok"[..],
        cast_rootfs::Metadata::with_mode(0o644),
    )
    .unwrap();
    assert_eq!(read(&tree, &format!("{}/f", host.path().display())), "ok");
    assert_untouched(host.path());
    tree.remove("/../..").unwrap_err();
    assert!(tree.remove("/nothing/here").is_ok_and(|removed| !removed));
}
