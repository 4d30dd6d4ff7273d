//! The VM engine behind a small trait, chosen at run time.
//!
//! Only QEMU exists today ([`qemu`]); a native KVM or Virtualization.framework engine
//! would implement [`Backend`] too, and nothing above this module would change. The
//! session takes the engine as a `&dyn Backend`; the unit tests give it a fake one
//! (`fake`, scripted guests speaking `cast-proto` over the same socket pairs).

mod accel;
#[cfg(test)]
pub(crate) mod fake;
pub mod qemu;
mod qemu_9p;

pub use accel::{choose as choose_accel, Accel, AccelError};

use std::borrow::Cow;
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::PathBuf;

/// A read-only slice of a file, attached as the guest's root disk (`/dev/vda`). The
/// image can live inside a larger file, e.g. the casted executable itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskSlice {
    /// The file.
    pub path: PathBuf,
    /// Where the image starts.
    pub offset: u64,
    /// Its length; a multiple of 512.
    pub size: u64,
}

/// A host path shared with the guest as a 9p share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    /// The 9p mount tag the guest finds it by.
    pub tag: String,
    /// The host directory, or a regular file to share alone (the engine puts it in
    /// a directory of its own, so the guest never sees its siblings).
    pub source: PathBuf,
    /// `source` is a regular file.
    pub file: bool,
    /// Refuse writes.
    pub read_only: bool,
}

/// A further whole-file disk for the guest, found there by its virtio `serial`
/// (`/sys/block/*/serial`): a build VM's scratch, diff and mount disks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk {
    /// The file (a raw image).
    pub path: PathBuf,
    /// The serial the guest finds it by (at most 20 bytes).
    pub serial: String,
    /// Attach it read-only.
    pub read_only: bool,
}

/// The guest kernel (uncompressed, with a PVH note) as the engine gets it.
#[derive(Debug)]
pub enum KernelImage {
    /// A file, e.g. a kernel bundle's `vmlinux` or an extraction cache entry.
    File(PathBuf),
    /// An anonymous memory file holding it (when no cache can be written); the
    /// engine opens it as `/proc/self/fd/N`.
    Memory(OwnedFd),
}

impl KernelImage {
    /// Another handle on the same kernel (for a second boot attempt).
    pub fn try_clone(&self) -> io::Result<Self> {
        Ok(match self {
            KernelImage::File(path) => KernelImage::File(path.clone()),
            KernelImage::Memory(fd) => KernelImage::Memory(fd.try_clone()?),
        })
    }
}

/// Everything an engine needs to start one VM.
#[derive(Debug)]
pub struct VmSpec<'a> {
    /// Uncompressed kernel (ELF with a PVH note).
    pub kernel: KernelImage,
    /// The initrd contents.
    pub initrd: Cow<'static, [u8]>,
    /// Extra kernel command line (appended to the engine's own).
    pub cmdline: String,
    /// vCPUs.
    pub cpus: u32,
    /// Memory in MiB.
    pub memory_mib: u32,
    /// The root disk (serial `root`).
    pub root: DiskSlice,
    /// Further disks, after the root.
    pub disks: Vec<Disk>,
    /// Further fds QEMU inherits under the same numbers (e.g. the checked executable
    /// behind a `/proc/self/fd/N` root path); the caller keeps them open, so a second
    /// boot attempt can pass them again.
    pub pass_fds: Vec<BorrowedFd<'a>>,
    /// virtio-serial ports: name and the guest-side end of a socket pair.
    pub ports: Vec<(String, OwnedFd)>,
    /// The guest-side end of the serial console's socket pair.
    pub console: OwnedFd,
    /// The network card and its NAT; `None`: no card at all.
    pub network: Option<crate::network::Network>,
    /// Host paths shared with the guest.
    pub shares: Vec<Share>,
    /// The accelerator.
    pub accel: Accel,
    /// Let the engine's own diagnostics through to stderr.
    pub debug: bool,
}

/// A VM engine.
pub trait Backend {
    /// Starts a VM. The VM must not outlive the calling process.
    fn start(&self, spec: VmSpec<'_>) -> Result<Box<dyn Vm>, VmError>;
}

/// A running VM.
pub trait Vm: Send + Sync + std::fmt::Debug {
    /// Blocks until the VM has ended; returns the engine's exit status.
    fn wait(&self) -> io::Result<i32>;
    /// Stops the VM at once; harmless when it has ended.
    fn kill(&self);
    /// What the engine printed on its own stderr (for error reports).
    fn diagnostics(&self) -> String;
}

/// A VM could not be started.
#[derive(Debug, thiserror::Error)]
pub enum VmError {
    /// No QEMU binary.
    #[error("{binary} not found: install QEMU (Debian/Ubuntu: `apt-get install qemu-system-x86`, Fedora: `dnf install qemu-system-x86`, macOS: `brew install qemu`) or set CAST_QEMU to its path")]
    QemuNotFound {
        /// The binary looked for.
        binary: String,
    },
    /// The engine failed to start.
    #[error("cannot start {binary}")]
    Spawn {
        /// The binary.
        binary: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// QEMU could not start in the private mount namespace that single-file mounts
    /// need.
    #[error("cannot share a single file: QEMU could not start in a private mount namespace (as a non-root user that takes unprivileged user namespaces); mount the file's directory instead")]
    FileShareNamespace {
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The accelerator is not usable.
    #[error(transparent)]
    Accel(#[from] AccelError),
    /// Preparing the VM's resources failed.
    #[error("cannot prepare the VM: {what}")]
    Prepare {
        /// What was being prepared.
        what: &'static str,
        /// Why.
        #[source]
        source: io::Error,
    },
}
