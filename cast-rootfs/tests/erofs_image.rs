//! Images written from trees pass `fsck.erofs`, extract to the same tree, and mount
//! through the kernel's erofs driver with the same names, modes, owners, times,
//! contents, links and xattrs.

mod common;

use std::io::{Cursor, Read};

use cast_rootfs::erofs::{self, Options};
use cast_rootfs::{DeviceKind, ImageTree, Metadata, Timestamp};
use common::{compare, extract, meta, mount, write_and_fsck, Checks};

/// What `fsck.erofs --extract` (erofs-utils 1.5) can show: no xattrs, no hardlinks.
/// Its chown after chmod also drops setuid/setgid bits; the mount checks those.
const EXTRACTED: Checks = Checks {
    mtime: true,
    xattrs: false,
    inodes: false,
    epoch: None,
    suid: false,
};

fn check_both(tree: &ImageTree, options: &Options, checks: Checks) -> Vec<u8> {
    let (_dir, img) = write_and_fsck(tree, options);
    let x = extract(&img);
    compare(
        tree,
        &x.path().join("x"),
        Checks {
            xattrs: false,
            inodes: false,
            suid: false,
            ..checks
        },
    );
    let m = mount(&img);
    compare(tree, m.path(), checks);
    std::fs::read(&img).unwrap()
}

/// A deterministic pseudo-random byte stream.
struct Noise(u64, u64);

impl Read for Noise {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.1 as usize);
        for b in &mut buf[..n] {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            *b = self.0 as u8;
        }
        self.1 -= n as u64;
        Ok(n)
    }
}

fn all_types_tree() -> ImageTree {
    let mut t = ImageTree::new().unwrap();
    t.mkdir_p("/usr/bin", meta(0o755, 0, 0, 1_700_000_000))
        .unwrap();
    t.mkdir_p("/tmp", meta(0o1777, 0, 0, 1_700_000_000))
        .unwrap();
    let mut su = meta(0o4755, 0, 0, 1_700_000_001);
    su.mtime.nsec = 123_456_789;
    t.add_file(
        "/usr/bin/su",
        &mut Cursor::new(b"#!/bin/true\n".to_vec()),
        su,
    )
    .unwrap();
    t.add_file(
        "/usr/bin/sg",
        &mut Cursor::new(vec![7u8; 5000]),
        meta(0o2711, 0, 42, 5),
    )
    .unwrap();
    t.add_hardlink("/usr/bin/sg-link", "/usr/bin/sg").unwrap();
    t.add_hardlink("/usr/bin/sg-link2", "/usr/bin/sg").unwrap();
    t.add_file("/empty", &mut std::io::empty(), meta(0o600, 1000, 1000, 0))
        .unwrap();
    t.add_file(
        "/big-owner",
        &mut Cursor::new(b"x".to_vec()),
        meta(0o640, 100_000, 70_000, -5),
    )
    .unwrap();
    t.add_symlink("/usr/bin/sh", "busybox", meta(0o777, 0, 0, 1_700_000_000))
        .unwrap();
    t.add_symlink("/abs", "/usr/bin/su", meta(0o777, 0, 0, 9))
        .unwrap();
    t.add_symlink("/long-link", "a/".repeat(1500), meta(0o777, 0, 0, 9))
        .unwrap();
    t.mkdir_p("/dev", meta(0o755, 0, 0, 1_700_000_000)).unwrap();
    t.add_device("/dev/null", DeviceKind::Char, 1, 3, meta(0o666, 0, 0, 1))
        .unwrap();
    t.add_device("/dev/sda", DeviceKind::Block, 8, 0, meta(0o660, 0, 6, 1))
        .unwrap();
    t.add_device(
        "/dev/big",
        DeviceKind::Char,
        300,
        70_000,
        meta(0o600, 0, 0, 1),
    )
    .unwrap();
    t.add_fifo("/dev/fifo", meta(0o644, 0, 0, 1)).unwrap();
    let mut x = meta(0o755, 0, 0, 1_700_000_000);
    x.xattrs.insert(b"user.comment".to_vec(), b"hello".to_vec());
    x.xattrs
        .insert(b"trusted.overlay.opaque".to_vec(), b"y".to_vec());
    x.xattrs.insert(
        b"security.capability".to_vec(),
        vec![1, 0, 0, 2, 0, 32, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    );
    t.add_file(
        "/usr/bin/ping",
        &mut Cursor::new(vec![1u8; 9000]),
        x.clone(),
    )
    .unwrap();
    t.add_dir("/xdir", x).unwrap();
    t
}

#[test]
fn all_file_types_and_metadata() {
    let t = all_types_tree();
    check_both(&t, &Options::default(), Checks::ALL);
}

#[test]
fn deterministic_bytes() {
    let a = all_types_tree();
    let b = all_types_tree();
    let mut one = Vec::new();
    let mut two = Vec::new();
    erofs::write_image(&a, &Options::default(), &mut one).unwrap();
    erofs::write_image(&b, &Options::default(), &mut two).unwrap();
    assert!(one == two, "two writes of the same tree differ");
    let mut three = Vec::new();
    erofs::write_image(&a, &Options::default(), &mut three).unwrap();
    assert!(one == three);
}

#[test]
fn source_date_epoch_clamps_times() {
    let t = all_types_tree();
    let options = Options {
        source_date_epoch: Some(1_000_000),
        lz4: false,
    };
    let img = check_both(
        &t,
        &options,
        Checks {
            epoch: Some(1_000_000),
            ..Checks::ALL
        },
    );
    // Superblock build time at 1024 + 24.
    let build = u64::from_le_bytes(img[1048..1056].try_into().unwrap());
    assert_eq!(build, 1_000_000);
}

#[test]
fn many_small_files() {
    let mut t = ImageTree::new().unwrap();
    for d in 0..20 {
        for f in 0..100 {
            let body = format!("file {d}/{f}\n").repeat(f % 37 + 1);
            let m = meta(0o644, d, f as u32, 1_600_000_000 + i64::from(d));
            t.add_file(format!("/d{d:02}/f{f:03}.txt"), &mut body.as_bytes(), m)
                .unwrap();
        }
    }
    check_both(&t, &Options::default(), Checks::ALL);
}

#[test]
fn large_file() {
    let mut t = ImageTree::new().unwrap();
    let len = 40 * 1024 * 1024 + 1234;
    t.add_file(
        "/big.bin",
        &mut Noise(0x9e37_79b9_7f4a_7c15, len),
        meta(0o644, 0, 0, 3),
    )
    .unwrap();
    t.add_file("/exact.bin", &mut Noise(7, 3 * 4096), meta(0o644, 0, 0, 3))
        .unwrap();
    assert_eq!(t.total_size(), len + 3 * 4096);
    check_both(&t, &Options::default(), Checks::ALL);
}

#[test]
fn directory_with_5000_entries() {
    let mut t = ImageTree::new().unwrap();
    for i in 0..5000 {
        let name = format!("/many/entry-{:x}-{}", i * 7919 % 5000, "n".repeat(i % 40));
        if i % 10 == 0 {
            t.mkdir_p(&name, meta(0o700, 0, 0, 0)).unwrap();
        } else {
            t.add_file(
                &name,
                &mut Cursor::new(vec![b'a'; i % 300]),
                Metadata::with_mode(0o644),
            )
            .unwrap();
        }
    }
    check_both(&t, &Options::default(), Checks::ALL);
    // Every name must be found by lookup (the kernel binary-searches blocks).
    let (_d, img) = write_and_fsck(&t, &Options::default());
    let m = mount(&img);
    for i in (0..5000).step_by(97) {
        let name = format!("many/entry-{:x}-{}", i * 7919 % 5000, "n".repeat(i % 40));
        assert!(
            m.path().join(&name).symlink_metadata().is_ok(),
            "{name} not found"
        );
    }
}

#[test]
fn nanoseconds_and_extract_only_view() {
    let mut t = ImageTree::new().unwrap();
    let mut m = meta(0o644, 0, 0, 1_234_567_890);
    m.mtime = Timestamp {
        sec: 1_234_567_890,
        nsec: 999_999_999,
    };
    t.add_file("/n", &mut Cursor::new(b"n".to_vec()), m)
        .unwrap();
    let (_d, img) = write_and_fsck(&t, &Options::default());
    let x = extract(&img);
    compare(&t, &x.path().join("x"), EXTRACTED);
}
