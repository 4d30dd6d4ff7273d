//! Fixtures: the binary under test and root images.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The workspace directory.
pub fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

/// The workspace's target directory (`CARGO_TARGET_DIR`, else `target/`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"))
}

/// The target directory every end-to-end build shares (`<target>/e2e`), so
/// dependencies compile once and rebuilds are incremental.
pub fn e2e_target() -> PathBuf {
    target_dir().join("e2e")
}

/// The workspace's `cargo-cast` binary, built once per test process.
pub fn cargo_cast() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(workspace())
            .args([
                "build",
                "--quiet",
                "--package",
                "cargo-cast",
                "--bin",
                "cargo-cast",
            ])
            .status()
            .expect("running cargo build for cargo-cast");
        assert!(status.success(), "building cargo-cast failed");
        target_dir().join("debug").join("cargo-cast")
    })
}

/// Filesystem type of a test root image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootFs {
    /// Made with `mkfs.erofs` (erofs-utils).
    Erofs,
    /// Made with `mke2fs -d` (e2fsprogs).
    Ext4,
}

/// A root image with busybox and a passwd/group that has `root` and `alice` (1000,
/// supplementary group `wheel` 10), plus `/etc/passwd` as a non-executable file. Made
/// once per test process in a temporary directory.
pub fn busybox_rootfs(fs: RootFs) -> &'static Path {
    static EROFS: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    static EXT4: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let cell = match fs {
        RootFs::Erofs => &EROFS,
        RootFs::Ext4 => &EXT4,
    };
    &cell.get_or_init(|| make_rootfs(fs)).1
}

fn make_rootfs(fs: RootFs) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix("cast-test-rootfs-")
        .tempdir()
        .unwrap();
    let tree = dir.path().join("tree");
    busybox_tree(&tree);
    let image = dir.path().join(match fs {
        RootFs::Erofs => "rootfs.erofs",
        RootFs::Ext4 => "rootfs.ext4",
    });
    let (tool, package, args): (&str, &str, Vec<String>) = match fs {
        RootFs::Erofs => (
            "mkfs.erofs",
            "erofs-utils",
            vec![
                "--quiet".into(),
                "--all-root".into(),
                path(&image),
                path(&tree),
            ],
        ),
        RootFs::Ext4 => (
            "mke2fs",
            "e2fsprogs",
            vec![
                "-q".into(),
                "-F".into(),
                "-t".into(),
                "ext4".into(),
                "-d".into(),
                path(&tree),
                path(&image),
                "16M".into(),
            ],
        ),
    };
    let status = Command::new(tool)
        .args(&args)
        .status()
        .unwrap_or_else(|e| panic!("tests need {tool} ({e}): apt-get install {package}"));
    assert!(status.success(), "{tool} failed");
    if fs == RootFs::Erofs {
        // mkfs.erofs makes 4 KiB blocks, so the size is already a multiple of 512.
        assert_eq!(std::fs::metadata(&image).unwrap().len() % 512, 0);
    }
    (dir, image)
}

/// Writes the test root tree at `tree`: static busybox with every applet linked,
/// passwd/group with `root` and `alice` (1000, also in `wheel` 10), and
/// `/data/hello.txt`.
pub fn busybox_tree(tree: &Path) {
    for d in ["bin", "etc", "root", "home/alice", "data"] {
        std::fs::create_dir_all(tree.join(d)).unwrap();
    }
    let busybox = Path::new("/bin/busybox");
    assert!(
        busybox.exists() && is_static(busybox),
        "tests need a static /bin/busybox: apt-get install busybox-static"
    );
    std::fs::copy(busybox, tree.join("bin/busybox")).unwrap();
    let applets = Command::new(busybox).arg("--list").output().unwrap();
    for applet in String::from_utf8(applets.stdout).unwrap().lines() {
        if applet != "busybox" {
            std::os::unix::fs::symlink("busybox", tree.join("bin").join(applet)).unwrap();
        }
    }
    std::fs::write(
        tree.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000:Alice:/home/alice:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(
        tree.join("etc/group"),
        "root:x:0:\nwheel:x:10:alice\nalice:x:1000:\n",
    )
    .unwrap();
    std::fs::write(tree.join("data/hello.txt"), "hello from the image\n").unwrap();
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

/// Whether a 64-bit ELF file has no program interpreter (`PT_INTERP`), i.e. is static.
fn is_static(bin: &Path) -> bool {
    let data = std::fs::read(bin).unwrap_or_default();
    if data.len() < 64 || &data[..4] != b"\x7fELF" {
        return false;
    }
    let u16_at = |o: usize| u16::from_le_bytes([data[o], data[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(data[0x20..0x28].try_into().unwrap()) as usize;
    let (size, count) = (u16_at(0x36), u16_at(0x38));
    (0..count).all(|i| {
        let at = phoff + i * size;
        data.get(at..at + 4) != Some(&3u32.to_le_bytes()[..])
    })
}

/// A kernel bundle with 9p (host mounts): the default bundle when it has 9p,
/// else Debian's generic kernel at [`cast_kernel::generic_bundle_dir`] (`cargo xtask
/// setup` prepares it; prepared here, once, when missing). Never skipped: a test that
/// needs mounts fails when no such kernel can be had.
pub fn kernel_with_9p() -> &'static Path {
    static BUNDLE: OnceLock<PathBuf> = OnceLock::new();
    BUNDLE.get_or_init(|| {
        if let Some(default) = cast_kernel::default_bundle_dir().filter(|d| has_9p(d)) {
            return default;
        }
        let dir = cast_kernel::generic_bundle_dir().expect("a cache directory (HOME)");
        if !dir.join("bundle.json").exists() {
            let source = format!("debian:{}", cast_kernel::DEBIAN_9P_PACKAGE);
            cast_kernel::prepare(&source.parse().unwrap(), &dir).unwrap_or_else(|e| {
                panic!("mount tests need a kernel with 9p; preparing {source} failed: {e:?} (run `cargo xtask setup`)")
            });
        }
        assert!(has_9p(&dir), "{} has no 9p modules", dir.display());
        dir
    })
}

/// Whether the bundle at `dir` has 9p: as modules, or built into its kernel (whose
/// 9p client names its protocol dialect).
pub fn has_9p(dir: &Path) -> bool {
    let Ok(bundle) = cast_kernel::KernelBundle::locate(Some(dir)) else {
        return false;
    };
    bundle
        .manifest
        .modules
        .iter()
        .any(|m| m.ends_with("/9p.ko"))
        || std::fs::read(bundle.kernel_path()).is_ok_and(|k| k.windows(8).any(|w| w == b"9p2000.L"))
}
