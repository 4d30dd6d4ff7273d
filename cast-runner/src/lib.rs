//! cast-runner: the VM runtime inside every casted executable (and `cargo cast run`).
//!
//! It boots a throwaway microVM from a kernel bundle and a read-only root image, runs
//! one process in it through the guest init, streams stdio, forwards signals, and
//! returns the process's exit code, leaving nothing behind.
//!
//! - [`vm`]: the engine trait and the QEMU engine; accelerator choice.
//! - [`network`]: the guest's NAT and published ports (host side).
//! - [`mounts`]: host mounts → the engine's 9p shares and the guest's mount list.
//! - [`channel`]: socket pairs and stdio pumps (host side of `cast-proto`).
//! - [`tty`]: raw mode and window size.
//! - [`session`]: one run, wired together → exit code.
//! - [`error`]: failures and their exit codes (125 runtime, 124 timeout).
//! - [`casted`]: `main` of a casted executable (payload → run), [`casted_main!`].

mod attempt;
pub mod casted;
pub mod channel;
pub mod error;
pub mod mounts;
pub mod network;
pub mod session;
pub mod tty;
pub mod vm;

pub use channel::OutputSink;
#[cfg(test)]
mod session_tests;

pub use error::{RunError, EXIT_RUNTIME_FAILURE, EXIT_TIMEOUT};
pub use session::{run, run_to_end, Outcome, RunRequest};
pub use vm::{Disk, DiskSlice, KernelImage};
