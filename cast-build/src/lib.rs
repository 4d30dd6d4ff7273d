//! From a Containerfile to the root image and run config of a casted executable,
//! in four parts, one folder each, in the order a build uses them:
//!
//! - [`frontend`]: parse a Containerfile and evaluate its stages without a
//!   filesystem into a [`Plan`] with a typed [`RunConfig`]; summarise it for
//!   `cargo cast info` ([`mod@info`]).
//! - [`image`]: build the plan into an EROFS root image through the build
//!   [`cache`]: base images ([`oci`]), the build [`context`] with its
//!   [`ignore`] files, COPY/ADD/WORKDIR applied to image trees ([`builder`]).
//! - [`config`]: the cast configuration of a crate or directory, one merge.
//! - the build-script API: [`Cast`] (config → image → [`kernel`] → payload).
//!
//! [`fetch`] downloads what both need from HTTP(S): `ADD <url>` sources and
//! kernels pinned by URL.
//!
//! The frontend and image modules are re-exported at the crate root under
//! their short names (`cast_build::containerfile`, `cast_build::cache`, …).
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
pub mod secret;

// The modules of each part, under the paths callers already use.
pub use frontend::{chmod, containerfile, diag, eval, info, stages, subst};
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
