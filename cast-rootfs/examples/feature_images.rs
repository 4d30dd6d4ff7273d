//! Writes EROFS images that exercise every feature of the writer into a directory:
//! `features-plain.img` and `features-lz4.img` (all file types, setuid/setgid,
//! owners above 65535, nanosecond and negative mtimes, xattrs in three namespaces,
//! hardlinks, a 3000-byte symlink, a 5000-entry directory, large compressible,
//! random and zero files, busybox), and, for each extra `SRC` argument, an import of
//! that host directory as `dir-N-plain.img` / `dir-N-lz4.img`.
//! Usage: `feature_images OUT_DIR [SRC...]`.

use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

use cast_rootfs::erofs::{self, Options};
use cast_rootfs::tree::ImportOptions;
use cast_rootfs::{DeviceKind, ImageTree, Metadata, Timestamp};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn meta(mode: u32, uid: u32, gid: u32, mtime: i64) -> Metadata {
    Metadata {
        uid,
        gid,
        mtime: Timestamp::from_secs(mtime),
        ..Metadata::with_mode(mode)
    }
}

fn noise(len: usize) -> Vec<u8> {
    let mut s = 1u64;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s as u8
        })
        .collect()
}

fn features() -> Result<ImageTree> {
    let mut t = ImageTree::new()?;
    t.mkdir_p("/usr/bin", meta(0o755, 0, 0, 1_700_000_000))?;
    t.mkdir_p("/tmp", meta(0o1777, 0, 0, 1_700_000_000))?;
    let mut su = meta(0o4755, 0, 0, 1_700_000_001);
    su.mtime.nsec = 123_456_789;
    t.add_file(
        "/usr/bin/su",
        &mut Cursor::new(b"#!/bin/true\n".to_vec()),
        su,
    )?;
    t.add_file(
        "/usr/bin/sg",
        &mut Cursor::new(vec![7u8; 5000]),
        meta(0o2711, 0, 42, 5),
    )?;
    t.add_hardlink("/usr/bin/sg-link", "/usr/bin/sg")?;
    t.add_file("/empty", &mut std::io::empty(), meta(0o600, 1000, 1000, 0))?;
    let owner = meta(0o640, 100_000, 70_000, -5);
    t.add_file("/big-owner", &mut Cursor::new(b"x".to_vec()), owner)?;
    t.add_symlink("/usr/bin/sh", "busybox", meta(0o777, 0, 0, 1_700_000_000))?;
    t.add_symlink("/long-link", "a/".repeat(1500), meta(0o777, 0, 0, 9))?;
    t.add_device("/dev/null", DeviceKind::Char, 1, 3, meta(0o666, 0, 0, 1))?;
    t.add_device(
        "/dev/big",
        DeviceKind::Char,
        300,
        70_000,
        meta(0o600, 0, 0, 1),
    )?;
    t.add_device("/dev/sda", DeviceKind::Block, 8, 0, meta(0o660, 0, 6, 1))?;
    t.add_fifo("/dev/fifo", meta(0o644, 0, 0, 1))?;
    let mut x = meta(0o755, 0, 0, 1_700_000_000);
    x.xattrs.insert(b"user.comment".to_vec(), b"hello".to_vec());
    x.xattrs
        .insert(b"trusted.overlay.opaque".to_vec(), b"y".to_vec());
    let cap = vec![1, 0, 0, 2, 0, 32, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    x.xattrs.insert(b"security.capability".to_vec(), cap);
    t.add_file(
        "/usr/bin/ping",
        &mut Cursor::new(vec![1u8; 9000]),
        x.clone(),
    )?;
    t.add_dir("/xdir", x)?;
    for i in 0..5000usize {
        let name = format!("/many/entry-{:x}-{}", i * 7919 % 5000, "n".repeat(i % 40));
        let body = vec![b'a' + (i % 26) as u8; i % 300];
        t.add_file(&name, &mut Cursor::new(body), meta(0o644, 0, 0, i as i64))?;
    }
    let text: Vec<u8> = (0..2_000_000u32)
        .flat_map(|i| format!("{} log line {}\n", i % 4099, i % 13).into_bytes())
        .collect();
    t.add_file("/text.log", &mut Cursor::new(text), meta(0o644, 0, 0, 1))?;
    t.add_file(
        "/noise.bin",
        &mut Cursor::new(noise(20 << 20)),
        meta(0o644, 0, 0, 1),
    )?;
    t.add_file(
        "/zeros",
        &mut std::io::repeat(0).take(5 << 20),
        meta(0o644, 0, 0, 1),
    )?;
    if let Ok(mut busybox) = std::fs::File::open("/bin/busybox") {
        t.add_file("/bin/busybox", &mut busybox, meta(0o755, 0, 0, 1))?;
    }
    Ok(t)
}

fn write_both(tree: &ImageTree, out: &Path, name: &str) -> Result<()> {
    for (suffix, lz4) in [("plain", false), ("lz4", true)] {
        let options = Options {
            lz4,
            source_date_epoch: None,
        };
        let path = out.join(format!("{name}-{suffix}.img"));
        let stats = erofs::write_image_to_path(tree, &options, &path)?;
        println!(
            "{}: {} bytes, {} inodes",
            path.display(),
            stats.bytes,
            stats.inodes
        );
    }
    Ok(())
}

fn main() -> Result<()> {
    let mut args = std::env::args_os().skip(1);
    let out = PathBuf::from(
        args.next()
            .ok_or("usage: feature_images OUT_DIR [SRC...]")?,
    );
    std::fs::create_dir_all(&out)?;
    write_both(&features()?, &out, "features")?;
    for (i, src) in args.enumerate() {
        let mut tree = ImageTree::new()?;
        let options = ImportOptions {
            xattrs: true,
            owner: None,
        };
        tree.import_dir(Path::new(&src), "/", &options)?;
        write_both(&tree, &out, &format!("dir-{i}"))?;
    }
    Ok(())
}
