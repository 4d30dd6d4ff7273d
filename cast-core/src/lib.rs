//! The bottom of the cargo-cast workspace: the types every other crate shares.
//!
//! - [`run_config`]: what the guest runs ([`RunConfig`]), the OCI image config it
//!   starts from ([`ImageConfig`]), exposed ports.
//! - [`cache_entry`]: the one way a cache entry is written (temp, check, sync,
//!   rename), files and directories.
//! - [`cache_root`]: the cache root and the areas each crate writes in it.
//! - [`disk_full`]: a full disk told apart from other write failures, and what to free.
//! - [`publish`]: published ports in Docker's `-p` grammar.
//! - [`mount`]: host mounts (`HOST:GUEST[:ro]`), parsed and resolved.
//! - [`settings`]: the VM settings (cpus, memory, timeouts, …): defaults, one parser
//!   per setting, the sources and their precedence.
//!
//! Nothing here does I/O beyond finding the cache root and writing entries in it;
//! it has no dependency on another cast crate, so every crate of the flow
//! (Containerfile → image → root image → payload → executable → VM) can use it.

pub mod cache_entry;
pub mod cache_root;
pub mod disk_full;
pub mod mount;
pub mod publish;
pub mod run_config;
pub mod settings;

pub use cache_root::CacheRoot;
pub use run_config::{ImageConfig, Port, Protocol, RunConfig};
pub use settings::{Key, Origin, SettingError, VmSettings, VmUpdate};
