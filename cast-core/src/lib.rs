//! The bottom of the cargo-cast workspace: the types every other crate shares.
//!
//! Nothing here does I/O beyond finding and writing the cache root; it has no
//! dependency on another cast crate, so every crate of the flow (Containerfile →
//! image → root image → payload → executable → VM) can use it.

pub mod mount;
