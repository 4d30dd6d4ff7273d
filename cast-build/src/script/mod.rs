//! The build-script API: what a casted crate's `build.rs` calls.
//!
//! [`Cast`] reads the crate's configuration ([`crate::config`]), builds the root
//! image ([`crate::image`]), resolves the guest [`kernel`], and writes the
//! payload object Cargo links into the executable.

mod cast;
pub mod kernel;

pub use cast::{BakedSetting, Cast, CastError, CastReport, PayloadReport, REPORT_FILE};
