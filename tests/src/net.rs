//! Support for the network tests: a root image with a UDP server in it (busybox has
//! none), and host ports to publish that nothing else is handed.

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

/// A port on 127.0.0.1, free for TCP and UDP, for a test to publish (the runner
/// binds it, so the test cannot hold it open).
///
/// It is picked *below* the kernel's ephemeral range
/// (`/proc/sys/net/ipv4/ip_local_port_range`): the kernel never hands such a port out
/// on its own (not to `bind(…:0)`, not to an outgoing connection), so between this
/// check and the runner's bind only a program binding that very number could take
/// it. Each test process starts from a different place (its pid), and each call
/// moves on, so concurrent tests do not pick the same port.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32768);
    // [10000, low): above the well-known and registered ports most services use.
    let (first, span) = (10_000, low.saturating_sub(10_000).max(1));
    let start = std::process::id().wrapping_mul(7919);
    for _ in 0..span {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let port = (first + (start.wrapping_add(n * 13)) % span) as u16;
        let tcp = std::net::TcpListener::bind(("127.0.0.1", port));
        let udp = std::net::UdpSocket::bind(("127.0.0.1", port));
        if tcp.is_ok() && udp.is_ok() {
            return port;
        }
    }
    panic!("no free port below the ephemeral range");
}
