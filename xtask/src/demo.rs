//! `cargo xtask demo`: the main job on a bundled example. Sets the machine up (as
//! `cargo xtask setup`), casts `examples/hello` into `target/demo/hello` with
//! `cargo cast build`, and runs the result twice: with its baked CMD and with
//! arguments that replace it.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs the demo.
pub fn run() -> Result<()> {
    crate::setup::setup()?;
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned();
    let example = workspace.join("examples/hello");
    fill_rootfs(&example.join("rootfs"))?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"));
    let output = target.join("demo/hello");
    std::fs::create_dir_all(output.parent().unwrap())?;

    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("$ cargo cast build examples/hello -o {}", output.display());
    let status = Command::new(&cargo)
        .current_dir(&workspace)
        .args([
            "run",
            "--quiet",
            "--package",
            "cargo-cast",
            "--",
            "cast",
            "build",
        ])
        .arg(&example)
        .arg("-o")
        .arg(&output)
        .status()
        .context("running cargo cast build")?;
    if !status.success() {
        bail!("cargo cast build failed ({status})");
    }
    let size = std::fs::metadata(&output)?.len();
    eprintln!(
        "cast {} ({:.1} MiB)\n",
        output.display(),
        size as f64 / (1 << 20) as f64
    );
    for args in [&[][..], &["from", "cargo-cast"][..]] {
        eprintln!("$ {} {}", output.display(), args.join(" "));
        let status = Command::new(&output).args(args).status()?;
        eprintln!("(exit status {})\n", status.code().unwrap_or(-1));
    }
    Ok(())
}

/// The example's root: a static busybox with its applets (from busybox-static), so the
/// example needs no registry.
fn fill_rootfs(rootfs: &Path) -> Result<()> {
    let bin = rootfs.join("bin");
    std::fs::create_dir_all(&bin)?;
    std::fs::copy("/bin/busybox", bin.join("busybox")).context("copying /bin/busybox")?;
    let list = Command::new("/bin/busybox").arg("--list").output()?;
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let link = bin.join(applet);
        if applet != "busybox" && std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink("busybox", link)?;
        }
    }
    Ok(())
}
