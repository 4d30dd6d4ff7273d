//! The guest init is the `cast-init` binary (`src/main.rs`). This empty library
//! exists so that `cast-guest` can name the package as a build dependency and learn
//! where its source is (`links = "cast_init"`); it builds the binary from there as a
//! static executable for the guest.
