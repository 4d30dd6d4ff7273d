//! Support for the network tests: a root image with a UDP server in it (busybox has
//! none), and free host ports.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// What `/www/index.html` in [`network_rootfs`] says.
pub const GUEST_PAGE: &str = "served from the guest\n";

/// The busybox root image plus `/bin/udp-echo` (`tests/fixtures/udp-echo`, built
/// static with rustc) and `/www/index.html` ([`GUEST_PAGE`]). Made once per test
/// process.
pub fn network_rootfs() -> &'static Path {
    static IMAGE: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &IMAGE
        .get_or_init(|| {
            let dir = tempfile::Builder::new()
                .prefix("cast-test-net-")
                .tempdir()
                .unwrap();
            let tree = dir.path().join("tree");
            crate::busybox_tree(&tree);
            build_udp_echo(&tree.join("bin/udp-echo"));
            std::fs::create_dir_all(tree.join("www")).unwrap();
            std::fs::write(tree.join("www/index.html"), GUEST_PAGE).unwrap();
            let image = dir.path().join("rootfs.erofs");
            let status = Command::new("mkfs.erofs")
                .args(["--quiet", "--all-root"])
                .arg(&image)
                .arg(&tree)
                .status()
                .expect("tests need mkfs.erofs: apt-get install erofs-utils");
            assert!(status.success(), "mkfs.erofs failed");
            (dir, image)
        })
        .1
}

/// Compiles the UDP echo server as a static executable at `out`.
fn build_udp_echo(out: &Path) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/udp-echo/main.rs");
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let status = Command::new(rustc)
        .args([
            "--edition",
            "2021",
            "-O",
            "-C",
            "target-feature=+crt-static",
            "-o",
        ])
        .arg(out)
        .arg(&src)
        .status()
        .expect("running rustc for the UDP echo fixture");
    assert!(status.success(), "building {} failed", src.display());
}

/// A port on 127.0.0.1 that was free a moment ago, for TCP and UDP alike.
pub fn free_port() -> u16 {
    loop {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}
