//! cast-payload: what a casted executable carries and how it is written and read.
//!
//! A *payload* is one blob: a header, a JSON [`Manifest`] (parts, hashes, the
//! [`RunConfig`](cast_core::RunConfig), baked [`VmDefaults`]) and three parts aligned to 4 KiB — the
//! zstd-compressed kernel, the initrd, and the raw root image that QEMU reads in
//! place from the executable. See [`mod@format`].
//!
//! Build side (a build script): [`PayloadBuilder`] streams the parts into a payload
//! file, [`objfile`] wraps it in an ELF or Mach-O object with the `CAST_PAYLOAD` and
//! `CAST_PAYLOAD_LEN` symbols, and [`link_payload`] does both into `OUT_DIR` and
//! tells Cargo to link it. Run side (every casted executable): [`Payload`] parses
//! and verifies, [`cache`] extracts the kernel once per machine.
//!
//! This crate is linked into every casted executable: it keeps to light
//! dependencies.

pub mod builder;
pub mod cache;
pub mod format;
pub mod objfile;
pub mod reader;

pub use builder::{compressed_kernel, CompressedKernel, PayloadBuilder};
pub use format::{Encoding, Manifest, Part, PartKind, VmDefaults};
pub use objfile::{link_payload, write_payload_object, Linked, ObjectFormat, ObjectTarget};
pub use reader::{Payload, ReadError};

use std::path::PathBuf;

/// Writing a payload or its object file failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A required part was not given to the builder.
    #[error("the payload needs a {0}")]
    Missing(&'static str),
    /// An input file is unusable.
    #[error("cannot use {path}: {why}")]
    Input {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// Reading or writing failed.
    #[error("{what}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// The payload would exceed 2^64 bytes.
    #[error("the payload is too large")]
    TooLarge,
    /// The target triple has no object format here.
    #[error("cannot embed a payload for target {0}: supported are x86_64/aarch64 Linux (ELF) and macOS (Mach-O)")]
    UnsupportedTarget(String),
    /// The object writer failed.
    #[error("cannot write the payload's object file: {0}")]
    Object(String),
    /// A variable Cargo sets for build scripts is missing.
    #[error("{0} is not set: link_payload must run from a build script")]
    NotInBuildScript(&'static str),
}
