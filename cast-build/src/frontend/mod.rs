//! The Containerfile frontend: everything `cargo cast info` needs, and nothing
//! that touches a filesystem image.
//!
//! In the order a build uses them: [`containerfile`] parses (with `words` and
//! `flags` for instruction arguments), [`eval`] evaluates the stages (ARG/ENV
//! substitution by [`subst`]) into a [`stages::Plan`] with a typed run config,
//! [`diag`] carries errors and warnings with their file:line:column, and
//! [`mod@info`] summarises a plan for the user; [`chmod`] is the `--chmod`
//! value a plan carries to the image builder.

pub mod chmod;
pub mod containerfile;
pub mod diag;
pub mod eval;
pub(crate) mod flags;
pub mod info;
pub mod stages;
pub mod subst;
pub(crate) mod words;
