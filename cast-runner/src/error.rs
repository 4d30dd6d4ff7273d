//! Why a run failed, and the exit code each failure maps to (Docker's convention:
//! 125 for the runtime's own failures; 124 for `CAST_TIMEOUT`).

use crate::vm::VmError;
use cast_core::SettingError;
use cast_kernel::LocateError;
use cast_proto::FrameError;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Exit code for the runtime's own failures.
pub const EXIT_RUNTIME_FAILURE: i32 = 125;
/// Exit code when `CAST_TIMEOUT` stopped the VM.
pub const EXIT_TIMEOUT: i32 = 124;

/// A run failed before the process could report its own exit status.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// No usable kernel bundle.
    #[error(transparent)]
    Kernel(#[from] LocateError),
    /// A setting (`CAST_*`, a flag, a baked default) is invalid.
    #[error(transparent)]
    Setting(#[from] SettingError),
    /// The VM engine could not start.
    #[error(transparent)]
    Vm(#[from] VmError),
    /// The root image cannot be attached.
    #[error("cannot use root image {path}: {why}")]
    RootImage {
        /// The image file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// Building the initrd or the channel failed on the host.
    #[error("cannot prepare the VM: {what}")]
    Prepare {
        /// What was being prepared.
        what: &'static str,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The guest never came up.
    #[error("the VM did not boot within {waited:?}; run with CAST_DEBUG=1 to see the kernel's messages{console}")]
    BootTimeout {
        /// How long it was given (CAST_BOOT_TIMEOUT).
        waited: Duration,
        /// The console's last lines, prefixed with a newline, or empty.
        console: String,
    },
    /// The guest kernel panicked (the panic line).
    #[error("the guest kernel panicked: {0} (CAST_DEBUG=1 shows the kernel's messages)")]
    GuestPanic(String),
    /// The VM ended without reporting the process's exit status.
    #[error("the VM stopped before the command finished (engine exit status {status}){details}")]
    VmDied {
        /// The engine's exit status.
        status: i32,
        /// Engine diagnostics and console lines, prefixed with a newline, or empty.
        details: String,
    },
    /// The guest init reported a failure to set the run up.
    #[error("in the VM: {0}")]
    Guest(String),
    /// The guest speaks another protocol version.
    #[error("the guest init speaks channel protocol {guest}, this runner {host}; rebuild so both come from one cargo-cast version")]
    Protocol {
        /// Guest version.
        guest: u32,
        /// Host version.
        host: u32,
    },
    /// The guest sent something that is not a valid message.
    #[error("the guest sent an invalid control message")]
    Frame(#[from] FrameError),
    /// `CAST_TIMEOUT` expired.
    #[error("timed out after {0:?} (CAST_TIMEOUT); the VM was stopped")]
    TimedOut(Duration),
    /// A signal arrived before the process started.
    #[error("interrupted by signal {0} while the VM was starting")]
    Interrupted(i32),
}

impl RunError {
    /// The exit code the runner should end with.
    pub fn exit_code(&self) -> i32 {
        match self {
            RunError::TimedOut(_) => EXIT_TIMEOUT,
            RunError::Interrupted(signal) => 128 + signal,
            _ => EXIT_RUNTIME_FAILURE,
        }
    }
}
