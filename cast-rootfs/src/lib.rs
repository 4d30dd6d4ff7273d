//! cast-rootfs turns container image layers into a root filesystem image for the
//! cargo-cast guest: an [`ImageTree`] models the root filesystem (contents spilled to
//! a temporary file), [`layer`] applies OCI/Docker layer tars to it safely, and
//! [`erofs`] writes it as a deterministic EROFS image that Linux 6.1 mounts.
//!
//! ```no_run
//! use cast_rootfs::{erofs, layer, ImageTree};
//! let mut tree = ImageTree::new()?;
//! layer::apply_layer(&mut tree, std::fs::File::open("layer.tar.gz")?, layer::Compression::Auto)?;
//! let out = std::fs::File::create("root.erofs")?;
//! erofs::write_image(&tree, &erofs::Options::from_env(), out)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod erofs;
pub mod layer;
pub mod tree;

pub use tree::{DeviceKind, ImageTree, Inode, InodeId, Metadata, Node, Timestamp};
