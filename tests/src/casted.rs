//! The casted-executable fixture (`tests/fixtures/casted`): a crate whose build
//! script makes a payload with the cast-payload API from the busybox EROFS root and
//! the default kernel bundle. Built once per test process with `cargo build
//! --offline` into `<target>/e2e`, a target directory shared by every test run so
//! rebuilds are incremental.
//!
//! The crate is built from a copy in `<target>/e2e/fixture-casted` with absolute
//! paths to the workspace crates and the workspace's own `Cargo.lock`, so it always
//! resolves to exactly the crates the workspace build already fetched.

use crate::fixtures::{e2e_target, workspace};
use crate::proc::without_cast_env;
use crate::{busybox_rootfs, RootFs};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The fixture's `hello-tool` executable, built once per test process.
///
/// Its run config: ENTRYPOINT `sh -c SCRIPT hello-tool`, CMD `default-cmd`,
/// `GREETING=hi`, user `alice`, workdir `/data`; VM defaults: 1 vCPU, 256 MiB, a
/// 150 s timeout. The script prints `args:$*`, the user/pwd/greeting/hostname, the
/// vCPU count and MemTotal, and exits N when its first argument is `exit=N`.
pub fn hello_tool() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let target = e2e_target();
        let crate_dir = copy_fixture(workspace(), &target.join("fixture-casted"));
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(crate_dir)
            .args(["build", "--quiet", "--offline", "--target-dir"])
            .arg(&target)
            .env("CAST_FIXTURE_ROOTFS", busybox_rootfs(RootFs::Erofs))
            // The outer build's wrappers (clippy, coverage) must not leak in.
            .env_remove("RUSTC_WORKSPACE_WRAPPER")
            .env_remove("RUSTC_WRAPPER")
            .status()
            .expect("running cargo build for the casted fixture");
        assert!(status.success(), "building the casted fixture failed");
        target.join("debug").join("hello-tool")
    })
}

/// Copies the fixture crate to `dst` (files rewritten only when they changed, so
/// builds stay incremental) and returns `dst`.
fn copy_fixture(ws: &Path, dst: &Path) -> PathBuf {
    let src = ws.join("tests/fixtures/casted");
    let ws_prefix = format!("{}/", ws.display());
    let files: [(&str, Vec<u8>); 4] = [
        (
            "Cargo.toml",
            std::fs::read_to_string(src.join("Cargo.toml"))
                .unwrap()
                .replace("\"../../../", &format!("\"{ws_prefix}"))
                .into_bytes(),
        ),
        ("build.rs", std::fs::read(src.join("build.rs")).unwrap()),
        (
            "src/main.rs",
            std::fs::read(src.join("src/main.rs")).unwrap(),
        ),
        ("Cargo.lock", std::fs::read(ws.join("Cargo.lock")).unwrap()),
    ];
    for (name, data) in files {
        let path = dst.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        // Cargo trims the lock file to the fixture's crates: compare without it.
        if name != "Cargo.lock" && std::fs::read(&path).ok().as_ref() == Some(&data) {
            continue;
        }
        std::fs::write(&path, data).unwrap();
    }
    dst.to_owned()
}

/// A command running `exe` with its cache in `cache` and no `CAST_*` settings from
/// the test's own environment.
pub fn casted(exe: &Path, cache: &Path) -> Command {
    let mut cmd = Command::new(exe);
    without_cast_env(&mut cmd).env("CAST_CACHE_DIR", cache);
    cmd
}

/// The file offset and length of the payload in an executable.
pub fn payload_range(exe: &Path) -> (u64, u64) {
    use object::{Object, ObjectSection};
    let data = std::fs::read(exe).unwrap();
    let file = object::File::parse(&*data).unwrap();
    let section = file
        .section_by_name(cast_payload::objfile::ELF_SECTION)
        .expect("a payload section");
    section.file_range().unwrap()
}

/// A copy of `exe` in `dir` with the byte at payload offset `at` flipped (none when
/// `at` is `u64::MAX`).
pub fn damaged_copy(exe: &Path, dir: &Path, at: u64) -> PathBuf {
    let (offset, _) = payload_range(exe);
    let mut data = std::fs::read(exe).unwrap();
    if at != u64::MAX {
        data[(offset + at) as usize] ^= 0x01;
    }
    let copy = dir.join(format!("hello-tool-{at}"));
    std::fs::write(&copy, data).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    copy
}
