//! One VM attempt: the engine's VM, the host ends of its channel, and the threads
//! that serve them. A run normally makes one; a boot that hangs is retried with a
//! fresh attempt (nothing has reached the guest yet), and events from the abandoned
//! one are told apart by [`Attempt::id`].

use crate::channel::{self, ConsoleTail, ControlWriter, OutputSink, Progress};
use crate::error::RunError;
use crate::network::Network;
use crate::vm::{Accel, Backend, Disk, DiskSlice, KernelImage, Share, Vm, VmSpec};
use cast_core::VmSettings;
use cast_proto::{read_frame, FrameError, GuestMsg, HostMsg};
use std::borrow::Cow;
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Instant;

/// What the session's event loop hears about.
pub(crate) enum Event {
    /// A control message from attempt N's guest.
    Guest(u32, GuestMsg),
    /// Attempt N's control channel ended (cleanly, or with a bad frame).
    ControlClosed(u32, Option<FrameError>),
    /// Attempt N's VM ended with this engine status.
    VmExited(u32, i32),
    /// The runner caught a signal.
    Signal(i32),
}

impl Event {
    /// The attempt an event belongs to (signals belong to the run).
    pub(crate) fn attempt(&self) -> Option<u32> {
        match self {
            Event::Guest(id, _) | Event::ControlClosed(id, _) | Event::VmExited(id, _) => Some(*id),
            Event::Signal(_) => None,
        }
    }
}

/// A started VM and the host side of its channel.
pub(crate) struct Attempt {
    /// 1 for the first attempt.
    pub id: u32,
    /// The VM (killed when the last reference goes).
    pub vm: Arc<dyn Vm>,
    /// The serial console's last lines.
    pub console: ConsoleTail,
    /// Writes control messages.
    pub control: ControlWriter,
    /// The stdin port's host end, held open for the whole run: when QEMU sees a
    /// chardev socket hang up it drops what it has not yet passed to the guest.
    pub stdin: UnixStream,
    /// Bytes received on the stdout port so far.
    pub stdout: Arc<Progress>,
    /// Bytes received on the stderr port so far.
    pub stderr: Arc<Progress>,
    /// When the VM was started.
    pub started: Instant,
}

impl Attempt {
    /// Stops the VM and reaps it: a run leaves no process behind, not even a zombie
    /// (under a parent that does not reap, such as a container without an init, they
    /// would pile up).
    pub(crate) fn stop(&self) {
        self.vm.kill();
        let _ = self.vm.wait();
    }
}

/// Starts attempts with the same engine, kernel, initrd and root.
pub(crate) struct Launcher<'a> {
    pub backend: &'a dyn Backend,
    pub accel: Accel,
    pub kernel: KernelImage,
    pub initrd: Cow<'static, [u8]>,
    pub root: DiskSlice,
    pub disks: Vec<Disk>,
    /// Where output goes instead of the host's stdout/stderr.
    pub output: Option<OutputSink>,
    /// Fds every attempt's VM inherits (see [`VmSpec::pass_fds`]); open for the run.
    pub pass_fds: Vec<OwnedFd>,
    /// Host paths shared with the guest.
    pub shares: Vec<Share>,
    pub settings: &'a VmSettings,
    /// Where the process's stdout and stderr go.
    pub stdout: &'a File,
    pub stderr: &'a File,
    pub events: Sender<Event>,
}

impl Launcher<'_> {
    /// Starts attempt `id`: socket pairs, the VM, and the threads that report its
    /// control messages and end, and pump its output to the host's stdout/stderr.
    pub(crate) fn launch(&self, id: u32) -> Result<Attempt, RunError> {
        let prepare = |what| move |source| RunError::Prepare { what, source };
        let (host, guest) = channel::socket_pairs().map_err(prepare("the channel"))?;
        let settings = self.settings;
        let vm: Arc<dyn Vm> = Arc::from(
            self.backend.start(VmSpec {
                kernel: self
                    .kernel
                    .try_clone()
                    .map_err(prepare("the kernel image"))?,
                initrd: self.initrd.clone(),
                cmdline: [
                    settings.debug.then_some("cast_debug=1"),
                    (!settings.network).then_some("cast_net=0"),
                ]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" "),
                cpus: settings.cpus,
                memory_mib: settings.memory_mib,
                root: self.root.clone(),
                disks: self.disks.clone(),
                pass_fds: self.pass_fds.iter().map(|fd| fd.as_fd()).collect(),
                ports: guest.ports,
                console: guest.console,
                network: settings.network.then(|| Network {
                    publish: settings.publish.clone(),
                }),
                shares: self.shares.clone(),
                accel: self.accel,
                debug: settings.debug,
            })?,
        );
        let started = Instant::now();
        let (waiter, tx) = (vm.clone(), self.events.clone());
        std::thread::spawn(move || {
            let status = waiter.wait().unwrap_or(-1);
            let _ = tx.send(Event::VmExited(id, status));
        });
        let console = ConsoleTail::collect(host.console, settings.debug);
        let control = ControlWriter::new(host.control.try_clone().map_err(prepare("the channel"))?);
        let (mut reader, tx) = (host.control, self.events.clone());
        std::thread::spawn(move || loop {
            match read_frame::<_, GuestMsg>(&mut reader) {
                Ok(Some(msg)) => {
                    if tx.send(Event::Guest(id, msg)).is_err() {
                        return;
                    }
                }
                Ok(None) => return drop(tx.send(Event::ControlClosed(id, None))),
                Err(e) => return drop(tx.send(Event::ControlClosed(id, Some(e)))),
            }
        });
        let broken = control.clone();
        let sink = |file: &File| file.try_clone().map_err(prepare("the host's stdio"));
        let (stdout, stderr) = match &self.output {
            Some(out) => (
                channel::pump_output(host.stdout, out.clone(), || {}),
                channel::pump_output(host.stderr, out.clone(), || {}),
            ),
            None => (
                channel::pump_output(host.stdout, sink(self.stdout)?, move || {
                    let _ = broken.send(&HostMsg::CloseStdout);
                }),
                channel::pump_output(host.stderr, sink(self.stderr)?, || {}),
            ),
        };
        Ok(Attempt {
            id,
            vm,
            console,
            control,
            stdin: host.stdin,
            stdout,
            stderr,
            started,
        })
    }
}

/// A private copy of one of the host's stdio fds (so pumps own plain `File`s).
pub(crate) fn dup_stdio(fd: i32) -> Result<File, RunError> {
    // SAFETY: fds 0-2 stay open for the life of the process; the borrow ends at once.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    borrowed
        .as_fd()
        .try_clone_to_owned()
        .map(File::from)
        .map_err(|source| RunError::Prepare {
            what: "the host's stdio",
            source,
        })
}
