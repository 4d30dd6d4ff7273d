//! Helpers shared by cast-build's integration tests.

pub mod http;
