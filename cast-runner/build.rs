//! Builds the guest init (`cast-init`) as a static binary and hands its path to the
//! crate, which embeds it (it is small) and packs it into the initrd at run time.
//!
//! The init must be static (the guest's root image may have no libc at all), so it is
//! built by a nested `cargo build` for the host target with `+crt-static`, in its own
//! target directory so it neither fights the outer build for its lock nor rebuilds
//! when only the outer profile changes.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let workspace = manifest_dir.parent().unwrap().to_owned();
    for dir in ["cast-init", "cast-proto"] {
        println!("cargo:rerun-if-changed={}", workspace.join(dir).display());
    }
    println!(
        "cargo:rerun-if-changed={}",
        workspace.join("Cargo.lock").display()
    );
    println!("cargo:rerun-if-env-changed=CAST_INIT_BINARY");

    // A prebuilt init may be supplied (e.g. for cross builds); it must be static.
    if let Some(prebuilt) = env::var_os("CAST_INIT_BINARY") {
        println!(
            "cargo:rustc-env=CAST_INIT_PATH={}",
            PathBuf::from(prebuilt).display()
        );
        return;
    }

    let target = env::var("TARGET").unwrap();
    let target_dir = match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => workspace.join("target"),
    }
    .join("cast-init");
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&workspace)
        .args([
            "build",
            "--release",
            "--locked",
            "--package",
            "cast-init",
            "--target",
            &target,
        ])
        // Small is fast: the initrd is unpacked by an emulated kernel on every boot.
        .args([
            "--config",
            "profile.release.strip=true",
            "--config",
            "profile.release.debug=false",
        ])
        .arg("--target-dir")
        .arg(&target_dir)
        .env("CARGO_ENCODED_RUSTFLAGS", "-Ctarget-feature=+crt-static")
        // The outer build's settings must not leak in (clippy's wrapper, its flags).
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET");
    if env::var_os("CARGO_NET_OFFLINE").is_some() {
        cmd.arg("--offline");
    }
    let status = cmd.status().expect("running cargo to build the guest init");
    assert!(
        status.success(),
        "building the static guest init (cast-init) failed"
    );
    let binary = target_dir.join(&target).join("release").join("cast-init");
    println!("cargo:rustc-env=CAST_INIT_PATH={}", binary.display());
}
