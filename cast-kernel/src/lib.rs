//! Guest kernel bundles.
//!
//! A *kernel bundle* is a directory holding everything the runtime needs from a kernel:
//!
//! ```text
//! bundle.json     release, source, SHA-256 of the kernel, modules in load order
//! vmlinux         the uncompressed kernel (its PVH entry boots faster under TCG)
//! modules/*.ko    the guest's drivers that the kernel has as modules, dependencies first
//! ```
//!
//! [`prepare`] makes a bundle from a [`KernelSource`] (a Debian package, a `.deb`, an
//! extracted package tree, or a bare kernel file); [`KernelBundle::locate`] finds one
//! at run time (`--kernel`, then `CAST_KERNEL`, then the default cache location).
//! [`build()`] compiles a kernel for the job (tinyconfig + `config/cast.config`,
//! everything built in) and writes a bundle with no modules.

mod build;
mod bundle;
mod deb;
mod modules;
mod prepare;
mod vmlinux;

pub use build::{
    build, build_label, missing_options, up_to_date, BuildError, BuildOptions, BuildSource,
    CONFIG_FRAGMENT, DEBIAN_SOURCE_TARBALL,
};
pub use bundle::{
    debian_bundle_dir, default_bundle_dir, generic_bundle_dir, BundleManifest, KernelBundle,
    LocateError,
};
pub use deb::{extract as extract_deb, DebError};
pub use modules::{depends as module_depends, ModuleError, GUEST_MODULES, SOFT_DEPENDENCIES};
pub use prepare::{prepare, KernelSource, PrepareError, DEBIAN_9P_PACKAGE, DEFAULT_DEBIAN_PACKAGE};
pub use vmlinux::{extract_vmlinux, VmlinuxError};
