//! Builds the guest init (`cast-init`) as a static binary and hands its path to the
//! crate, which embeds it (it is small) and packs it into the initrd.
//!
//! The init must be static (the guest's root image may have no libc at all), so it is
//! built by a nested `cargo build` for the target with `+crt-static`, in its own target
//! directory so it neither fights the outer build for its lock nor rebuilds when only
//! the outer profile changes. Where its source is comes from Cargo itself: `cast-init`
//! and `cast-proto` are dependencies whose build scripts report their package
//! directories (`links`, `DEP_CAST_INIT_ROOT` / `DEP_CAST_PROTO_ROOT`), so this works
//! the same from the checkout and from a registry:
//!
//! - **checkout** (`cast-init` is a member of the workspace beside it): `cargo build
//!   --locked -p cast-init` in that workspace, into `<workspace>/target/cast-init`
//!   (or `$CARGO_TARGET_DIR/cast-init`), shared by every crate built from the checkout.
//! - **registry** (the packaged sources, never written to): the package is copied to
//!   `OUT_DIR` and built there with its packaged `Cargo.lock`, `cast-proto` patched to
//!   the very source the host side is built from (one protocol on both sides), into
//!   `<outer target dir>/cast-init`.
//!
//! A host that cannot link a static Linux binary (macOS has no Linux linker) sets
//! `CAST_INIT_BINARY` to a prebuilt static `cast-init` for the guest's architecture
//! (see README.md, "Hosts without a Linux toolchain"); it is embedded as it is.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=CAST_INIT_BINARY");
    if let Some(prebuilt) = env::var_os("CAST_INIT_BINARY").filter(|v| !v.is_empty()) {
        let prebuilt = PathBuf::from(prebuilt);
        assert!(
            prebuilt.is_file(),
            "CAST_INIT_BINARY={} is not a file",
            prebuilt.display()
        );
        println!("cargo:rerun-if-changed={}", prebuilt.display());
        println!("cargo:rustc-env=CAST_INIT_PATH={}", prebuilt.display());
        return;
    }
    if env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux") {
        panic!(
            "the guest init (cast-init) is a static Linux binary, and it is only built here \
             when the target is Linux; set CAST_INIT_BINARY to a prebuilt static cast-init \
             for the guest's architecture (see cargo-cast's README, \"Hosts without a Linux \
             toolchain\")"
        );
    }
    let init_root = dep_root("DEP_CAST_INIT_ROOT");
    let proto_root = dep_root("DEP_CAST_PROTO_ROOT");
    for dir in [&init_root, &proto_root] {
        println!("cargo:rerun-if-changed={}", dir.join("src").display());
        println!(
            "cargo:rerun-if-changed={}",
            dir.join("Cargo.toml").display()
        );
    }

    let target = env::var("TARGET").unwrap();
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    let target_dir = match checkout_of(&init_root) {
        Some(workspace) => {
            println!(
                "cargo:rerun-if-changed={}",
                workspace.join("Cargo.lock").display()
            );
            cmd.current_dir(&workspace)
                .args(["build", "--locked", "--package", "cast-init"]);
            match env::var_os("CARGO_TARGET_DIR") {
                Some(dir) => PathBuf::from(dir),
                None => workspace.join("target"),
            }
        }
        None => {
            let out_dir = PathBuf::from(env::var_os("OUT_DIR").unwrap());
            let src = out_dir.join("cast-init-src");
            copy_package(&init_root, &src);
            let manifest = src.join("Cargo.toml");
            cmd.current_dir(&src)
                .arg("build")
                .arg("--manifest-path")
                .arg(&manifest)
                .arg("--config")
                .arg(format!(
                    "patch.crates-io.cast-proto.path={}",
                    toml_string(&proto_root)
                ));
            outer_target_dir(&out_dir).unwrap_or(out_dir)
        }
    }
    .join("cast-init");
    cmd.args(["--release", "--target", &target])
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
        "building the static guest init (cast-init) failed; a host that cannot build it \
         can set CAST_INIT_BINARY to a prebuilt static cast-init"
    );
    let binary = target_dir.join(&target).join("release").join("cast-init");
    println!("cargo:rustc-env=CAST_INIT_PATH={}", binary.display());
}

/// A build dependency's package directory, as its build script reported it.
fn dep_root(var: &str) -> PathBuf {
    PathBuf::from(env::var_os(var).unwrap_or_else(|| panic!("{var} unset: Cargo sets it")))
}

/// The workspace `cast-init` belongs to when it is this project's checkout (a
/// `Cargo.lock` and a `[workspace]` manifest beside the package directory).
fn checkout_of(init_root: &Path) -> Option<PathBuf> {
    let workspace = init_root.parent()?;
    let manifest = std::fs::read_to_string(workspace.join("Cargo.toml")).ok()?;
    (manifest.contains("[workspace]") && workspace.join("Cargo.lock").is_file())
        .then(|| workspace.to_owned())
}

/// The target directory of the outer build: the ancestor of `OUT_DIR` that Cargo
/// tagged with `CACHEDIR.TAG`.
fn outer_target_dir(out_dir: &Path) -> Option<PathBuf> {
    out_dir
        .ancestors()
        .find(|d| d.join("CACHEDIR.TAG").is_file())
        .map(Path::to_owned)
}

/// Copies the packaged `cast-init` (manifest, lock file, build script, sources) to
/// `dest`, made a workspace of its own so that no manifest above `OUT_DIR` claims it.
fn copy_package(from: &Path, dest: &Path) {
    let _ = std::fs::remove_dir_all(dest);
    copy_dir(from, dest);
    let manifest = dest.join("Cargo.toml");
    let mut text = std::fs::read_to_string(&manifest).expect("cast-init's Cargo.toml");
    if !text.contains("\n[workspace]") {
        text.push_str("\n[workspace]\n");
    }
    std::fs::write(&manifest, text).expect("writing cast-init's Cargo.toml");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("creating the init's source copy");
    for entry in std::fs::read_dir(from).expect("reading cast-init's source") {
        let entry = entry.unwrap();
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            if entry.file_name() != "target" {
                copy_dir(&src, &dst);
            }
        } else {
            std::fs::copy(&src, &dst).expect("copying cast-init's source");
        }
    }
}

/// `path` as a TOML string (for `--config KEY=VALUE`).
fn toml_string(path: &Path) -> String {
    let s = path.display().to_string();
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}
