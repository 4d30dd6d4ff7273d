//! LZ4-compressed images: compressible, incompressible and mixed files pass
//! `fsck.erofs --extract` (which decompresses every extent) and read back identically
//! through the kernel's erofs driver.

mod common;

use std::io::{Cursor, Read};

use cast_rootfs::erofs::{self, Options};
use cast_rootfs::ImageTree;
use common::{compare, extract, meta, mount, write_and_fsck, Checks};

fn noise(len: usize, mut x: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn lz4_tree() -> ImageTree {
    let mut t = ImageTree::new().unwrap();
    let text: Vec<u8> = (0..600_000u32)
        .flat_map(|i| format!("{} log line {}\n", i % 4099, i % 13).into_bytes())
        .collect();
    t.add_file(
        "/text.log",
        &mut Cursor::new(text.clone()),
        meta(0o644, 0, 0, 1),
    )
    .unwrap();
    t.add_file(
        "/zeros",
        &mut std::io::repeat(0).take(3 << 20),
        meta(0o644, 0, 0, 1),
    )
    .unwrap();
    t.add_file(
        "/noise",
        &mut Cursor::new(noise(1 << 20, 5)),
        meta(0o644, 0, 0, 1),
    )
    .unwrap();
    // Compressible and random halves alternate, so plain and LZ4 extents mix.
    let mut mixed = Vec::new();
    for i in 0..40 {
        mixed.extend_from_slice(&text[i * 9000..i * 9000 + 9000]);
        mixed.extend_from_slice(&noise(5000 + i * 37, i as u64 + 1));
    }
    t.add_file("/mixed", &mut Cursor::new(mixed), meta(0o755, 1, 2, 3))
        .unwrap();
    t.add_file(
        "/small",
        &mut Cursor::new(text[..9000].to_vec()),
        meta(0o644, 0, 0, 1),
    )
    .unwrap();
    let mut x = meta(0o644, 0, 0, 1);
    x.xattrs.insert(b"user.k".to_vec(), b"v".to_vec());
    t.add_file("/with-xattr", &mut Cursor::new(text[..100_000].to_vec()), x)
        .unwrap();
    t.add_hardlink("/text-link", "/text.log").unwrap();
    t
}

#[test]
fn lz4_image_reads_back() {
    let t = lz4_tree();
    let options = Options {
        lz4: true,
        ..Options::default()
    };
    let (_d, img) = write_and_fsck(&t, &options);
    let plain_size = {
        let mut v = Vec::new();
        erofs::write_image(&t, &Options::default(), &mut v).unwrap();
        v.len() as u64
    };
    let size = std::fs::metadata(&img).unwrap().len();
    assert!(
        size * 2 < plain_size,
        "lz4 image {size} vs plain {plain_size}"
    );
    let x = extract(&img);
    compare(
        &t,
        &x.path().join("x"),
        Checks {
            xattrs: false,
            inodes: false,
            suid: false,
            ..Checks::ALL
        },
    );
    let m = mount(&img);
    compare(&t, m.path(), Checks::ALL);
    // Random access in the middle of compressed extents.
    let f = std::fs::File::open(m.path().join("mixed")).unwrap();
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; 10_000];
    f.read_exact_at(&mut buf, 123_457).unwrap();
    let mut want = vec![0u8; 10_000];
    let mut r = t.open_content(t.lookup("/mixed").unwrap());
    std::io::copy(&mut (&mut r).take(123_457), &mut std::io::sink()).unwrap();
    r.read_exact(&mut want).unwrap();
    assert!(buf == want);
}

#[test]
fn lz4_is_deterministic() {
    let options = Options {
        lz4: true,
        ..Options::default()
    };
    let (mut a, mut b) = (Vec::new(), Vec::new());
    erofs::write_image(&lz4_tree(), &options, &mut a).unwrap();
    erofs::write_image(&lz4_tree(), &options, &mut b).unwrap();
    assert!(a == b);
}
