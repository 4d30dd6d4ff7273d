//! `cast-oci` resolves a `FROM` source into what the rest of cargo-cast needs to build
//! a root filesystem: the image's runtime config ([`ImageConfig`], the light type
//! `cast-payload` defines) and its
//! ordered layers ([`Layer`]) as verified files in a content-addressed, shared
//! [`BlobCache`]. Sources ([`Source`]) are registry references (OCI distribution API,
//! Docker Hub defaults, Basic/Bearer auth with credentials from the environment, the
//! docker config or Docker credential helpers, multi-platform indexes), `oci-layout:`
//! directories, `docker-archive:` tarballs and `scratch`. Applying layers to a tree is
//! another crate's job.
//!
//! ```no_run
//! use cast_oci::{Platform, ResolveOptions, Resolver};
//!
//! let opts = ResolveOptions { platform: Platform::parse("linux/arm64")?, ..Default::default() };
//! let image = Resolver::with_default_cache(opts)?.resolve_str("alpine:3.20")?;
//! for layer in &image.layers {
//!     println!("{} {:?} {}", layer.digest, layer.compression, layer.path.display());
//! }
//! println!("entrypoint {:?} cmd {:?}", image.config.entrypoint, image.config.cmd);
//! # Ok::<(), cast_oci::Error>(())
//! ```

mod assemble;
pub mod auth;
pub mod cache;
pub mod config;
pub mod credential_helper;
pub mod digest;
mod docker_archive;
pub mod error;
pub mod image;
mod oci_layout;
pub mod reference;
mod resolve;
pub mod retry;
pub mod source;
pub mod transport;

pub use auth::{AuthSource, Credentials};
pub use cache::BlobCache;
pub use config::{parse_config, signal_number, ImageConfig, Port, Protocol};
pub use digest::Digest;
pub use error::{Error, Result};
pub use image::{Compression, Layer, Platform, ResolvedImage};
pub use reference::Reference;
pub use resolve::{ResolveOptions, Resolver};
pub use retry::{RetryPolicy, Transient};
pub use source::Source;
pub use transport::{ClientOptions, RegistryClient};
