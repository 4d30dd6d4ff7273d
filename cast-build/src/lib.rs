//! The Containerfile frontend of cargo-cast: parse a Containerfile, evaluate its
//! stages without a filesystem into a typed [`RunConfig`], resolve COPY/ADD
//! sources in the build context (honouring `.containerignore`/`.dockerignore`),
//! and summarise it all for `cargo cast info`.
//!
//! The pieces, in the order a build uses them: [`containerfile`] (parsing),
//! [`eval`] (ARG/ENV substitution, stages, run config, see [`stages`]),
//! [`context`] and [`ignore`] (build context), [`builder`] (applying COPY,
//! ADD and WORKDIR to image trees), [`mod@info`] (the user-facing summary).
//!
//! ```
//! use std::path::Path;
//! use cast_build::{evaluate, Containerfile, EvalOptions, NoBaseImages};
//!
//! let text = "ARG V=1\nFROM scratch\nARG V\nENV VERSION=$V\nENTRYPOINT [\"/app\"]\n";
//! let file = Containerfile::parse(Path::new("Containerfile"), text).unwrap();
//! let plan = evaluate(&file, &EvalOptions::default(), &mut NoBaseImages).unwrap();
//! let rc = &plan.target_stage().run_config;
//! assert_eq!(rc.env_var("VERSION"), Some("1"));
//! assert_eq!(rc.argv(), ["/app"]);
//! ```

pub mod builder;
pub mod cache;
pub mod config;
pub mod containerfile;
pub mod context;
pub mod diag;
pub mod eval;
pub mod fetch;
mod flags;
pub mod ignore;
pub mod image;
pub mod info;
pub mod kernel;
pub mod oci;
pub mod runvm;
mod script;
pub mod stages;
pub mod subst;
mod words;

pub use builder::{
    build, build_file, build_with, BaseTrees, BuildError, BuildFileError, Built, NoRun, Remote,
    RunInputs, RunSteps,
};
/// The run config types live in `cast-payload` (they travel in the executable's
/// payload); re-exported here under their old path.
pub use cast_payload::run_config as runconfig;
pub use cast_payload::run_config::{ImageConfig, Port, Protocol, RunConfig};
pub use containerfile::{Containerfile, ParseError};
pub use context::{BuildContext, ContextError, ResolveError};
pub use diag::{Diagnostic, Location, Warning};
pub use eval::{evaluate, BaseImages, EvalError, EvalOptions, NoBaseImages};
pub use info::{info, Info, InfoError};
pub use script::{Cast, CastError, CastReport, PayloadReport, REPORT_FILE};
pub use stages::{Base, CopyFrom, CopyOp, CopySource, Op, Plan, RunMount, RunOp, Stage};
