//! Building the root image: from a Containerfile's [`crate::frontend`] plan to
//! an EROFS image and the run config it starts with.
//!
//! [`build`](mod@build) is the entry point ([`build_image`]): it looks the build up in
//! the [`cache`], and on a miss resolves base images through [`oci`], resolves
//! COPY/ADD sources in the build [`context`] (honouring [`ignore`] files) and
//! applies the plan's operations to image trees with [`builder`].

pub mod build;
pub mod builder;
pub mod cache;
pub mod context;
pub mod ignore;
pub mod oci;

pub use build::{
    apply_overrides, build_image, error_chain, run_summary, BuiltImage, ImageError, ImageOptions,
    NO_CACHE_ENV,
};
