//! A real, runnable root: busybox-static plus applet symlinks, a layer on top with a
//! whiteout, written as LZ4-compressed EROFS, mounted through the kernel driver and used as the
//! root of a chroot that runs programs from it.

mod common;

use std::fs::File;
use std::io::Cursor;

use cast_rootfs::erofs::Options;
use cast_rootfs::layer::{apply_layer, Compression};
use cast_rootfs::{DeviceKind, ImageTree};
use common::tarball::Layer;
use common::{compare, meta, mount, run, stdout, write_and_fsck, Checks};

const BUSYBOX: &str = "/bin/busybox";

#[test]
fn busybox_root_runs_in_a_chroot() {
    let mut busybox = File::open(BUSYBOX).unwrap_or_else(|e| {
        panic!("{BUSYBOX}: {e}: install it with `apt-get install -y busybox-static`")
    });
    let mut t = ImageTree::new().unwrap();
    t.add_file(
        "/bin/busybox",
        &mut busybox,
        meta(0o755, 0, 0, 1_700_000_000),
    )
    .unwrap();
    for applet in ["sh", "ls", "cat", "echo", "wc", "test", "id", "stat"] {
        t.add_symlink(
            format!("/bin/{applet}"),
            "busybox",
            meta(0o777, 0, 0, 1_700_000_000),
        )
        .unwrap();
    }
    t.mkdir_p("/tmp", meta(0o1777, 0, 0, 0)).unwrap();
    t.add_device("/dev/null", DeviceKind::Char, 1, 3, meta(0o666, 0, 0, 0))
        .unwrap();
    t.add_file(
        "/etc/passwd",
        &mut Cursor::new(b"root:x:0:0::/root:/bin/sh\n".to_vec()),
        meta(0o644, 0, 0, 0),
    )
    .unwrap();
    let layer = Layer::new()
        .file("hello.txt", b"hello from erofs\n")
        .raw("bin/.wh.cat", tar::EntryType::Regular, 0o644, "", b"")
        .gzip();
    apply_layer(&mut t, &layer[..], Compression::Auto).unwrap();

    let options = Options {
        source_date_epoch: Some(1_650_000_000),
        lz4: true,
    };
    let (_d, img) = write_and_fsck(&t, &options);
    let m = mount(&img);
    let checks = Checks {
        epoch: Some(1_650_000_000),
        ..Checks::ALL
    };
    compare(&t, m.path(), checks);
    let script = "busybox cat /hello.txt; test -e /bin/cat || echo cat-gone; ls /bin | wc -l; \
                  stat -c '%a %F' /tmp /dev/null";
    let root = m.path().to_str().unwrap();
    let out = run("chroot", &[root, "/bin/sh", "-c", script], "coreutils");
    assert!(
        out.status.success(),
        "chroot failed: {}",
        common::stderr(&out)
    );
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    assert_eq!(
        lines,
        [
            "hello from erofs",
            "cat-gone",
            "8",
            "1777 directory",
            "666 character special file"
        ],
        "{text}"
    );
}
