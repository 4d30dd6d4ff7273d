//! The build-script side: write the payload and its object file into `OUT_DIR` and
//! tell Cargo to link the object into the package's binaries.
//!
//! `cargo:rustc-link-arg-bins` reaches only the package's binaries (not its tests or
//! examples), which is why only the binary may reference the payload symbols: the
//! generated `main.rs` does, through `cast_runner::casted_main!()`. This helper
//! prints no `rerun-if-changed` lines: the caller knows its inputs.

use crate::builder::PayloadBuilder;
use crate::format::Manifest;
use crate::objfile::{write_object, ObjectTarget};
use crate::BuildError;
use std::path::{Path, PathBuf};

/// File names used in `OUT_DIR`.
pub const OBJECT_FILE: &str = "cast-payload.o";
const PAYLOAD_FILE: &str = "cast-payload.bin";

/// What [`link_payload`] produced.
#[derive(Debug, Clone)]
pub struct Linked {
    /// The object file (in `OUT_DIR`).
    pub object: PathBuf,
    /// The payload's manifest.
    pub manifest: Manifest,
    /// The payload's length in bytes.
    pub payload_len: u64,
}

/// From a build script: writes the payload for `TARGET` into `OUT_DIR`, and prints
/// `cargo:rustc-link-arg-bins=<object>`.
///
/// ```no_run
/// // build.rs
/// use cast_payload::{PayloadBuilder, RunConfig, VmDefaults};
/// let bundle = cast_kernel::KernelBundle::locate(None).unwrap();
/// let initrd: Vec<u8> = Vec::new(); // cast_runner::initrd::build(&bundle)
/// let builder = PayloadBuilder::new(RunConfig::default(), VmDefaults::default())
///     .kernel(bundle.kernel_path(), bundle.manifest.release.clone())
///     .initrd(initrd)
///     .root_image("rootfs.erofs");
/// cast_payload::link_payload(&builder).unwrap();
/// ```
pub fn link_payload(builder: &PayloadBuilder) -> Result<Linked, BuildError> {
    let env = |name: &'static str| std::env::var_os(name).ok_or(BuildError::NotInBuildScript(name));
    let out_dir = PathBuf::from(env("OUT_DIR")?);
    let target = env("TARGET")?;
    let target = ObjectTarget::from_triple(&target.to_string_lossy())?;
    let linked = write_payload_object(builder, target, &out_dir)?;
    println!("cargo:rustc-link-arg-bins={}", linked.object.display());
    Ok(linked)
}

/// Writes `<dir>/cast-payload.o` for `target` (through a temporary payload file in
/// `dir`, removed afterwards). The part of [`link_payload`] that needs no Cargo.
pub fn write_payload_object(
    builder: &PayloadBuilder,
    target: ObjectTarget,
    dir: &Path,
) -> Result<Linked, BuildError> {
    let payload = dir.join(PAYLOAD_FILE);
    let object = dir.join(OBJECT_FILE);
    let manifest = builder.write_file(&payload)?;
    let result = write_object(&payload, target, &object);
    let payload_len = std::fs::metadata(&payload).map(|m| m.len()).unwrap_or(0);
    let _ = std::fs::remove_file(&payload);
    result?;
    Ok(Linked {
        object,
        manifest,
        payload_len,
    })
}
