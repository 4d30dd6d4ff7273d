//! Layer application: every entry type, PAX metadata, compressions, whiteouts across
//! layers; the result is written as EROFS and checked through the kernel mount.

mod common;

use std::io::Read;

use cast_rootfs::erofs::Options;
use cast_rootfs::layer::{apply_layer, extract_archive, Compression};
use cast_rootfs::{DeviceKind, ImageTree, Node, Timestamp};
use common::tarball::Layer;
use common::{compare, mount, write_and_fsck, Checks};
use tar::EntryType;

fn apply(tree: &mut ImageTree, bytes: &[u8]) {
    apply_layer(tree, bytes, Compression::Auto).unwrap();
}

fn read(tree: &ImageTree, path: &str) -> String {
    let id = tree.lookup(path).unwrap();
    let mut s = String::new();
    tree.open_content(id).read_to_string(&mut s).unwrap();
    s
}

fn base_layer() -> Layer {
    let mut l = Layer::new();
    l.dir("usr/")
        .dir("usr/bin/")
        .entry("usr/bin/su", EntryType::Regular, 0o4755, (0, 0), b"su")
        .entry("usr/bin/wall", EntryType::Regular, 0o2755, (0, 5), b"wall")
        .entry(
            "home/user/f",
            EntryType::Regular,
            0o600,
            (100_000, 70_000),
            b"mine",
        )
        .symlink("usr/bin/sh", "busybox")
        .entry("usr/bin/busybox", EntryType::Regular, 0o755, (0, 0), b"bb")
        .hardlink("usr/bin/ls", "usr/bin/busybox")
        .device("dev/null", EntryType::Char, 1, 3)
        .device("dev/vda", EntryType::Block, 254, 0)
        .raw("run/fifo", EntryType::Fifo, 0o644, "", b"");
    let long = format!("deep/{}/{}", "d".repeat(120), "f".repeat(200));
    l.file(&long, b"long name");
    let cap: &[u8] = &[1, 0, 0, 2, 0, 32, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    l.pax(&[
        ("SCHILY.xattr.user.mime", &b"text/plain"[..]),
        ("SCHILY.xattr.security.capability", cap),
        ("mtime", b"1700000000.5"),
        ("uid", b"4000000"),
    ]);
    l.file("usr/bin/ping", b"ping");
    // A PAX `path` and `linkpath` longer than the ustar fields.
    let pax_path = format!("pax/{}/file", "p".repeat(150));
    let pax_link = format!("pax/{}/link", "q".repeat(150));
    l.pax(&[("path", pax_path.as_bytes())]);
    l.raw("pax/short-name", EntryType::Regular, 0o600, "", b"pax");
    l.pax(&[
        ("path", pax_link.as_bytes()),
        ("linkpath", pax_path.as_bytes()),
    ]);
    l.raw(
        "pax/short-link",
        EntryType::Link,
        0o600,
        "pax/short-name",
        b"",
    );
    l
}

#[test]
fn every_entry_type_and_metadata() {
    let mut tree = ImageTree::new().unwrap();
    let stats = apply_layer(&mut tree, &base_layer().plain()[..], Compression::Auto).unwrap();
    assert_eq!(stats.whiteouts, 0);
    let su = tree.inode(tree.lookup("/usr/bin/su").unwrap());
    assert_eq!(su.mode(), 0o104755);
    let f = tree.inode(tree.lookup("/home/user/f").unwrap());
    assert_eq!((f.meta.uid, f.meta.gid), (100_000, 70_000));
    assert_eq!(
        tree.lookup("/usr/bin/ls").unwrap(),
        tree.lookup("/usr/bin/busybox").unwrap()
    );
    let null = tree.inode(tree.lookup("/dev/null").unwrap());
    assert_eq!(
        null.node,
        Node::Device {
            kind: DeviceKind::Char,
            major: 1,
            minor: 3
        }
    );
    let ping = tree.inode(tree.lookup("/usr/bin/ping").unwrap());
    assert_eq!(
        ping.meta.mtime,
        Timestamp {
            sec: 1_700_000_000,
            nsec: 500_000_000
        }
    );
    assert_eq!(ping.meta.uid, 4_000_000);
    assert_eq!(ping.meta.xattrs[&b"user.mime"[..]], b"text/plain");
    let long = format!("/deep/{}/{}", "d".repeat(120), "f".repeat(200));
    assert_eq!(read(&tree, &long), "long name");
    let pax_path = format!("/pax/{}/file", "p".repeat(150));
    let pax_link = format!("/pax/{}/link", "q".repeat(150));
    assert_eq!(read(&tree, &pax_path), "pax");
    assert_eq!(
        tree.lookup(&pax_link).unwrap(),
        tree.lookup(&pax_path).unwrap()
    );
    assert!(!tree.exists("/pax/short-name"));
    let (_d, img) = write_and_fsck(&tree, &Options::default());
    let m = mount(&img);
    compare(&tree, m.path(), Checks::ALL);
}

#[test]
fn compressions_are_detected_or_named() {
    for (bytes, named) in [
        (
            base_layer().plain(),
            "application/vnd.oci.image.layer.v1.tar",
        ),
        (
            base_layer().gzip(),
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
        ),
        (
            base_layer().zstd(),
            "application/vnd.oci.image.layer.v1.tar+zstd",
        ),
    ] {
        let mut auto = ImageTree::new().unwrap();
        apply_layer(&mut auto, &bytes[..], Compression::Auto).unwrap();
        let mut explicit = ImageTree::new().unwrap();
        let c = Compression::from_media_type(named).unwrap();
        apply_layer(&mut explicit, &bytes[..], c).unwrap();
        assert_eq!(read(&auto, "/usr/bin/su"), "su");
        assert_eq!(auto.inode_count(), explicit.inode_count());
    }
    assert!(Compression::from_media_type("application/json").is_err());
    let mut tree = ImageTree::new().unwrap();
    assert!(apply_layer(&mut tree, &base_layer().plain()[..], Compression::Gzip).is_err());
}

#[test]
fn whiteouts_across_three_layers() {
    let mut tree = ImageTree::new().unwrap();
    let l1 = Layer::new()
        .file("a/x", b"x1")
        .file("a/y", b"y1")
        .file("b/z", b"z1")
        .file("b/sub/deep", b"deep")
        .file("c/keep", b"keep")
        .file("d/gone", b"gone")
        .plain();
    let l2 = Layer::new()
        .raw("a/.wh.x", EntryType::Regular, 0o644, "", b"")
        .file("b/new", b"new2")
        .raw("b/.wh..wh..opq", EntryType::Regular, 0o644, "", b"")
        .file("b/after", b"after")
        .file("c/add", b"add2")
        .raw(".wh.d", EntryType::Regular, 0o644, "", b"")
        .plain();
    let l3 = Layer::new()
        .file("a/x", b"x3")
        .raw("b/.wh.new", EntryType::Regular, 0o644, "", b"")
        .raw("c/.wh.missing", EntryType::Regular, 0o644, "", b"")
        .entry("c", EntryType::Regular, 0o644, (0, 0), b"c is a file now")
        .plain();
    apply(&mut tree, &l1);
    apply(&mut tree, &l2);
    assert!(!tree.exists("/a/x"));
    assert_eq!(read(&tree, "/a/y"), "y1");
    assert!(
        !tree.exists("/b/z") && !tree.exists("/b/sub"),
        "opaque dir keeps lower entries"
    );
    assert_eq!(read(&tree, "/b/new"), "new2");
    assert_eq!(read(&tree, "/b/after"), "after");
    assert_eq!(read(&tree, "/c/keep"), "keep");
    assert!(!tree.exists("/d"));
    let stats = apply_layer(&mut tree, &l3[..], Compression::None).unwrap();
    assert_eq!(stats.whiteouts, 2);
    assert_eq!(read(&tree, "/a/x"), "x3");
    assert!(!tree.exists("/b/new"));
    assert_eq!(read(&tree, "/c"), "c is a file now");
    let names: Vec<_> = tree.iter().map(|e| e.path.display().to_string()).collect();
    assert_eq!(names, ["/", "/a", "/a/x", "/a/y", "/b", "/b/after", "/c"]);
    assert!(names.iter().all(|n| !n.contains(".wh.")));
    let (_d, img) = write_and_fsck(&tree, &Options::default());
    let m = mount(&img);
    compare(&tree, m.path(), Checks::ALL);
}

#[test]
fn directory_replaces_file_and_file_replaces_directory() {
    let mut tree = ImageTree::new().unwrap();
    apply(
        &mut tree,
        &Layer::new()
            .file("x", b"file")
            .file("y/inner", b"i")
            .plain(),
    );
    apply(
        &mut tree,
        &Layer::new().dir("x/").file("y", b"now a file").plain(),
    );
    assert!(tree.inode(tree.lookup("/x").unwrap()).node.is_dir());
    assert_eq!(read(&tree, "/y"), "now a file");
}

#[test]
fn archive_extracts_under_a_directory_without_whiteouts() {
    let mut tree = ImageTree::new().unwrap();
    apply(&mut tree, &Layer::new().file("app/keep", b"k").plain());
    let archive = Layer::new()
        .file("src/main.c", b"int main;")
        .hardlink("src/link.c", "src/main.c")
        .raw(".wh.keep", EntryType::Regular, 0o644, "", b"not a whiteout")
        .gzip();
    let dest = std::path::Path::new("/app");
    extract_archive(&mut tree, &archive[..], Compression::Auto, dest).unwrap();
    assert_eq!(read(&tree, "/app/keep"), "k");
    assert_eq!(read(&tree, "/app/src/main.c"), "int main;");
    assert_eq!(
        tree.lookup("/app/src/link.c").unwrap(),
        tree.lookup("/app/src/main.c").unwrap()
    );
    assert_eq!(read(&tree, "/app/.wh.keep"), "not a whiteout");
    let escape = Layer::new().hardlink("x", "../../etc/passwd").plain();
    assert!(extract_archive(&mut tree, &escape[..], Compression::None, dest).is_err());
}
