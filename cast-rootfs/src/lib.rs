//! cast-rootfs turns container image layers into a root filesystem image for the
//! cargo-cast guest: an [`ImageTree`] models the root filesystem (contents spilled to
//! a temporary file, paths resolved chroot-like so nothing reaches the host),
//! [`layer`] applies OCI/Docker layer tars to it (whiteouts, links, devices, PAX
//! xattrs), and [`erofs`] writes it as a deterministic EROFS image — plain or LZ4 —
//! that Linux 6.1 mounts.
//!
//! ```no_run
//! use cast_rootfs::{erofs, layer, tree::ImportOptions, ImageTree, Metadata};
//! let mut tree = ImageTree::new()?;
//! let blob = std::fs::File::open("layer.tar.gz")?;
//! layer::apply_layer(&mut tree, blob, layer::Compression::Auto)?;
//! tree.mkdir_p("/app", Metadata::with_mode(0o755))?; // WORKDIR /app
//! let owner = ImportOptions { owner: Some((1000, 1000)), ..Default::default() };
//! tree.import_dir("context/src".as_ref(), "/app/src", &owner)?; // COPY --chown
//! let options = erofs::Options { lz4: true, ..erofs::Options::from_env() };
//! erofs::write_image_to_path(&tree, &options, "root.erofs".as_ref())?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The tests check every image with real tools: `fsck.erofs` (package
//! `erofs-utils`), a read-only loop mount through the host kernel's erofs driver
//! (root), `chroot` into it with `busybox-static`; `scripts/check-linux61.sh` repeats
//! the comparison inside Linux 6.1 under QEMU.

pub mod erofs;
pub mod layer;
pub mod tree;

pub use tree::{DeviceKind, ImageTree, Inode, InodeId, Metadata, Node, Timestamp};
