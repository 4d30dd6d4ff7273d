//! The Containerfile frontend of cargo-cast: parse a Containerfile, evaluate its
//! stages without a filesystem into a typed [`RunConfig`], resolve COPY/ADD
//! sources in the build context (honouring `.containerignore`/`.dockerignore`),
//! and summarise it all for `cargo cast info`.
//!
//! The pieces, in the order a build uses them: [`containerfile`] (parsing),
//! [`eval`] (ARG/ENV substitution, stages, run config), [`context`] (build
//! context and ignore files), [`info`] (the user-facing summary).

pub mod containerfile;
pub mod diag;
mod flags;
pub mod subst;
mod words;

pub use containerfile::{Containerfile, ParseError};
pub use diag::{Diagnostic, Location, Warning};
pub mod runconfig;
pub use runconfig::{ImageConfig, Port, Protocol, RunConfig};
pub mod eval;
pub mod stages;
pub use eval::{evaluate, BaseImages, EvalError, EvalOptions, NoBaseImages};
pub use stages::{Base, CopyFrom, CopyOp, CopySource, Op, Plan, Stage};
