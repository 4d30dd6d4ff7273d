//! Root images written by cast-rootfs's own EROFS writer, checked from inside a booted
//! guest: what the Linux 6.1 erofs driver shows is what the tree said.

use cast_rootfs::erofs::{self, Options};
use cast_rootfs::tree::ImportOptions;
use cast_rootfs::{DeviceKind, ImageTree, Metadata, Timestamp};
use cast_tests::{busybox_tree, Run};
use sha2::{Digest, Sha256};
use std::io::Cursor;

fn meta(mode: u32, uid: u32, gid: u32) -> Metadata {
    Metadata {
        mode,
        uid,
        gid,
        mtime: Timestamp::from_secs(1_234_567_890),
        ..Metadata::with_mode(mode)
    }
}

/// The busybox root plus one of every kind of entry, and what the guest should see.
fn tree_with_everything() -> (ImageTree, String) {
    let host = tempfile::tempdir().unwrap();
    busybox_tree(host.path());
    let mut tree = ImageTree::new().unwrap();
    tree.import_dir(host.path(), "/", &ImportOptions::default())
        .unwrap();
    tree.add_file(
        "/data/suid",
        &mut Cursor::new(b"x\n".to_vec()),
        meta(0o4755, 1000, 10),
    )
    .unwrap();
    tree.add_hardlink("/data/hard", "/data/suid").unwrap();
    tree.add_symlink("/data/link", "suid", meta(0o777, 0, 0))
        .unwrap();
    tree.add_device("/data/null", DeviceKind::Char, 1, 3, meta(0o666, 0, 0))
        .unwrap();
    tree.add_fifo("/data/fifo", meta(0o600, 70000, 70001))
        .unwrap();
    let big: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let big_sha = format!("{:x}", Sha256::digest(&big));
    tree.add_file("/data/big", &mut Cursor::new(big), meta(0o644, 0, 0))
        .unwrap();
    tree.mkdir_p("/data/many", meta(0o755, 0, 0)).unwrap();
    for i in 0..3000 {
        let name = format!("/data/many/file-with-a-longish-name-{i:05}");
        tree.add_file(
            &name,
            &mut Cursor::new(i.to_string().into_bytes()),
            meta(0o644, 0, 0),
        )
        .unwrap();
    }
    let expected = format!(
        "4755 1000 10 2 regular file 1234567890\n\
         4755 1000 10 2 regular file 1234567890\n\
         same inode\n\
         suid\n\
         1 3 character special file\n\
         600 70000 70001 fifo\n\
         3000\n\
         2999\n\
         {big_sha}  /data/big\n\
         x\n"
    );
    (tree, expected)
}

const CHECK: &str = "cd /data && stat -c '%a %u %g %h %F %Y' suid hard \
    && [ \"$(stat -c %i suid)\" = \"$(stat -c %i hard)\" ] && echo same inode \
    && readlink link && stat -c '%t %T %F' null && stat -c '%a %u %g %F' fifo \
    && ls many | wc -l && cat many/file-with-a-longish-name-02999 && echo \
    && sha256sum /data/big && cat link";

#[test]
fn plain_and_lz4_images_read_back_exactly_in_the_guest() {
    let (tree, expected) = tree_with_everything();
    let dir = tempfile::tempdir().unwrap();
    for lz4 in [false, true] {
        let image = dir
            .path()
            .join(if lz4 { "lz4.erofs" } else { "plain.erofs" });
        let options = Options {
            lz4,
            source_date_epoch: None,
        };
        erofs::write_image_to_path(&tree, &options, &image).unwrap();
        let out = Run::new(&image).command(&["/bin/sh", "-c", CHECK]).output();
        assert_eq!(out.code, 0, "lz4={lz4}: stderr: {}", out.stderr);
        assert_eq!(out.stdout_text(), expected, "lz4={lz4}");
    }
}
