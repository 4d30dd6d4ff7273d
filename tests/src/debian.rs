//! A real distribution root for compatibility checks: Debian bookworm (minbase) with
//! python3, made with `mmdebstrap` from Debian's package mirror (the one network
//! source tests may use besides 127.0.0.1) and written as an EROFS image. Made once
//! per test process (~30 s and ~220 MB while the process runs).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The Debian bookworm + python3 root image.
pub fn debian_python_rootfs() -> &'static Path {
    static IMAGE: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &IMAGE
        .get_or_init(|| {
            let dir = tempfile::Builder::new()
                .prefix("cast-test-debian-")
                .tempdir()
                .unwrap();
            let tree = dir.path().join("tree");
            let status = Command::new(crate::registry::require_tool("mmdebstrap", "mmdebstrap"))
                .args([
                    "--quiet",
                    "--variant=minbase",
                    "--include=python3",
                    "bookworm",
                ])
                .arg(&tree)
                .status()
                .expect("running mmdebstrap");
            assert!(status.success(), "mmdebstrap failed ({status})");
            let image = dir.path().join("rootfs.erofs");
            let status = Command::new(crate::registry::require_tool("mkfs.erofs", "erofs-utils"))
                .arg("--quiet")
                .arg(&image)
                .arg(&tree)
                .status()
                .expect("running mkfs.erofs");
            assert!(status.success(), "mkfs.erofs failed");
            std::fs::remove_dir_all(&tree).unwrap();
            (dir, image)
        })
        .1
}
