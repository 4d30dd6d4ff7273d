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

pub mod config;
pub mod fetch;
pub mod frontend;
pub mod image;
pub mod runvm;
mod script;

// The modules of each part, under the paths callers already use.
pub use frontend::{containerfile, diag, eval, info, stages, subst};
pub(crate) use frontend::{flags, words};
pub use image::{builder, cache, context, ignore, oci};
pub use script::kernel;

pub use builder::{
    build, build_file, build_with, BaseTrees, BuildError, BuildFileError, Built, NoRun, Remote,
    RunInputs, RunSteps,
};
/// The run config types live in `cast-core` (every crate shares them); the crate's
/// modules reach them as `crate::runconfig`.
pub use cast_core::run_config as runconfig;
pub use cast_core::run_config::{ImageConfig, Port, Protocol, RunConfig};
pub use containerfile::{Containerfile, ParseError};
pub use context::{BuildContext, ContextError, ResolveError};
pub use diag::{Diagnostic, Location, Warning};
pub use eval::{evaluate, BaseImages, EvalError, EvalOptions, NoBaseImages};
pub use info::{info, Info, InfoError};
pub use script::{BakedSetting, Cast, CastError, CastReport, PayloadReport, REPORT_FILE};
pub use stages::{Base, CopyFrom, CopyOp, CopySource, Op, Plan, RunMount, RunOp, Stage};
