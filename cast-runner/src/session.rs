//! One run, from VM start to exit code: the event loop that wires engine, channel,
//! signals and timeouts together.
//!
//! 1. Validate the root image; find QEMU ([`run`]); the rest runs on any [`Backend`]
//!    (`run_on`): pick TTY mode and the accelerator; check that every published
//!    host port can be bound.
//! 2. Catch signals; start the VM (`attempt::Attempt`).
//! 3. On the guest's Hello: send the [`StartSpec`], enter raw mode (TTY), pump stdin.
//!    A guest that does not say Hello within `CAST_BOOT_TIMEOUT` is stopped and
//!    started once more (under TCG a boot very rarely hangs; nothing has reached the
//!    guest yet, so the retry is invisible but for a message).
//! 4. Forward signals and window sizes; enforce the run timeout.
//! 5. On the exit report: wait until every output byte arrived, Ack, stop the VM,
//!    reap it, return the process's exit code.
//!
//! The host side a run talks to (stdio, signals) is a `HostIo`: the process's own in
//! [`run`], pipes and an injected signal channel in the unit tests, which drive this
//! loop with a fake engine (`vm::fake`) instead of QEMU.

use crate::attempt::{dup_stdio, Attempt, Event, Launcher};
use crate::channel;
use crate::channel::OutputSink;
use crate::error::RunError;
use crate::network;
use crate::tty::{self, RawMode};
use crate::vm::{choose_accel, qemu::Qemu, Backend, Disk, DiskSlice, KernelImage};
use cast_core::VmSettings;
use cast_proto::{GuestMsg, HostMsg, StartSpec, PROTOCOL_VERSION};
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH};
use std::borrow::Cow;
use std::fs::File;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// How long to wait for output still in flight after the exit report.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the VM may take to end after its control channel closed.
const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// Boots tried before giving up on a guest that never says Hello.
const BOOT_ATTEMPTS: u32 = 2;

/// Everything one run needs.
#[derive(Debug)]
pub struct RunRequest {
    /// The program name for messages (`cargo-cast`, or the casted tool's name).
    pub program: String,
    /// The guest kernel: a bundle's `vmlinux`, or a casted executable's extracted one.
    pub kernel: KernelImage,
    /// The initrd (`cast_guest::initrd::build(&bundle)`, or a casted executable's payload part).
    pub initrd: Cow<'static, [u8]>,
    /// The root image.
    pub root: DiskSlice,
    /// Further disks (a build VM's scratch, diff and mount disks); usually none.
    pub disks: Vec<Disk>,
    /// Where the process's stdout and stderr go; the host's own when `None`.
    pub output: Option<OutputSink>,
    /// Open files QEMU inherits (same fd numbers): a `root.path` of
    /// `/proc/self/fd/N` names one, so QEMU opens the very file the runner checked.
    pub pass_fds: Vec<std::os::fd::OwnedFd>,
    /// What to run; `tty` and `winsize` are filled in here.
    pub spec: StartSpec,
    /// VM sizing and behaviour.
    pub settings: VmSettings,
}

/// A deadline of the event loop.
#[derive(Debug, Clone, Copy)]
enum Expiry {
    /// The guest has not said Hello in time.
    Boot,
    /// `CAST_TIMEOUT` is up.
    Run,
    /// The control channel closed but the VM has not ended.
    Closed,
}

/// Where a run's stdio goes and where its signals come from.
pub(crate) struct HostIo {
    /// Read for the process's stdin (when [`VmSettings::interactive`]).
    pub stdin: File,
    /// The process's stdout goes here.
    pub stdout: File,
    /// The process's stderr goes here.
    pub stderr: File,
    /// Signals to forward.
    pub signals: SignalSource,
}

/// Where the signals a run forwards come from.
pub(crate) enum SignalSource {
    /// The runner process's own (SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1/2, SIGWINCH).
    Process,
    /// A channel (tests).
    #[cfg_attr(not(test), allow(dead_code))]
    Channel(Receiver<i32>),
}

impl HostIo {
    /// The runner process's own stdio and signals.
    fn process() -> Result<Self, RunError> {
        Ok(HostIo {
            stdin: dup_stdio(0)?,
            stdout: dup_stdio(1)?,
            stderr: dup_stdio(2)?,
            signals: SignalSource::Process,
        })
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// The process's exit code (or 126/127 when it could not run).
    pub code: i32,
    /// Build mode, the command succeeded: bytes of layer diff on the diff disk.
    pub layer_bytes: Option<u64>,
}

/// Runs the request in a QEMU VM; returns the process's exit code (or 126/127 when
/// it could not run). Runtime failures are errors; [`RunError::exit_code`] maps them.
pub fn run(req: RunRequest) -> Result<i32, RunError> {
    run_to_end(req).map(|o| o.code)
}

/// [`run`], returning the whole [`Outcome`] (a build VM's layer size too).
pub fn run_to_end(req: RunRequest) -> Result<Outcome, RunError> {
    check_root(&req.root)?;
    let engine = Qemu::locate(req.settings.qemu.as_deref())?;
    run_on(&engine, req, HostIo::process()?)
}

/// Runs the request on `engine`, with `host`'s stdio and signals.
pub(crate) fn run_on(
    engine: &dyn Backend,
    req: RunRequest,
    host: HostIo,
) -> Result<Outcome, RunError> {
    let settings = &req.settings;
    let tty = settings.tty.unwrap_or_else(tty::both_terminals);
    let accel = choose_accel(settings.accel).map_err(crate::vm::VmError::from)?;
    check_network(settings)?;
    let prepare = |what| move |source| RunError::Prepare { what, source };
    let cwd = std::env::current_dir().map_err(prepare("the current directory"))?;
    let (shares, guest_mounts) = crate::mounts::plan(&settings.mounts, &cwd)?;

    let (tx, rx) = mpsc::channel();
    let sig_tx = tx.clone();
    let signal_handle = match host.signals {
        SignalSource::Process => {
            let mut signals = signal_hook::iterator::Signals::new([
                SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH,
            ])
            .map_err(prepare("signal handling"))?;
            let handle = signals.handle();
            std::thread::spawn(move || {
                for s in signals.forever() {
                    let _ = sig_tx.send(Event::Signal(s));
                }
            });
            Some(handle)
        }
        SignalSource::Channel(signals) => {
            std::thread::spawn(move || {
                for s in signals {
                    if sig_tx.send(Event::Signal(s)).is_err() {
                        return;
                    }
                }
            });
            None
        }
    };
    let launcher = Launcher {
        backend: engine,
        accel,
        kernel: req.kernel,
        initrd: req.initrd,
        root: req.root,
        disks: req.disks,
        output: req.output,
        pass_fds: req.pass_fds,
        shares,
        settings,
        stdout: &host.stdout,
        stderr: &host.stderr,
        events: tx,
    };
    let mut session = Session {
        attempt: launcher.launch(1)?,
        started: Instant::now(),
        booted: false,
        raw: None,
        closed_at: None,
    };
    let mut spec = Some(StartSpec {
        mounts: guest_mounts,
        ..req.spec
    });
    let result = loop {
        let event = match session.next_deadline(settings) {
            Some((deadline, expiry)) => {
                match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                    Ok(event) => event,
                    Err(RecvTimeoutError::Timeout) => match expiry {
                        Expiry::Boot if session.attempt.id < BOOT_ATTEMPTS => {
                            eprintln!(
                                "{}: the VM did not come up within {:?}; starting it once more",
                                req.program, settings.boot_timeout
                            );
                            session.attempt.stop();
                            session.attempt = launcher.launch(session.attempt.id + 1)?;
                            continue;
                        }
                        expiry => break Err(session.expired(expiry, settings)),
                    },
                    Err(RecvTimeoutError::Disconnected) => {
                        unreachable!("the launcher keeps a sender")
                    }
                }
            }
            None => rx.recv().expect("the launcher keeps a sender"),
        };
        if event.attempt().is_some_and(|id| id != session.attempt.id) {
            continue; // from an abandoned boot
        }
        let attempt = &session.attempt;
        match event {
            Event::Guest(_, GuestMsg::Hello { version }) if !session.booted => {
                if version != PROTOCOL_VERSION {
                    break Err(RunError::Protocol {
                        guest: version,
                        host: PROTOCOL_VERSION,
                    });
                }
                session.booted = true;
                let mut spec = spec.take().expect("one Hello");
                spec.network = settings.network.then(network::guest_spec);
                spec.tty = tty;
                spec.winsize = if tty { tty::window_size() } else { None };
                if tty {
                    tty::add_term(&mut spec.env);
                }
                if attempt
                    .control
                    .send(&HostMsg::Start(Box::new(spec)))
                    .is_err()
                {
                    continue; // the VM is going away; its exit will be reported
                }
                if tty {
                    session.raw = RawMode::enter();
                }
                let port = attempt.stdin.try_clone().map_err(prepare("the channel"))?;
                let source = if settings.interactive {
                    host.stdin
                        .try_clone()
                        .map_err(prepare("the host's stdio"))?
                } else {
                    File::open("/dev/null").map_err(prepare("/dev/null for stdin"))?
                };
                channel::pump_stdin(source, port, attempt.control.clone(), !tty);
            }
            Event::Guest(_, GuestMsg::Exit { .. }) if !session.booted => {
                break Err(RunError::OutOfOrder("an exit report before Hello"));
            }
            Event::Guest(
                _,
                GuestMsg::Exit {
                    status,
                    stdout_bytes,
                    stderr_bytes,
                    message,
                    layer_bytes,
                },
            ) => {
                let deadline = Instant::now() + DRAIN_TIMEOUT;
                attempt.stdout.wait_for(stdout_bytes, deadline);
                attempt.stderr.wait_for(stderr_bytes, deadline);
                drop(session.raw.take());
                if let Some(message) = message {
                    session.end_guest_line(tty);
                    eprintln!("{}: {message}", req.program);
                }
                let _ = attempt.control.send(&HostMsg::Ack);
                break Ok(Outcome {
                    code: status.code(),
                    layer_bytes,
                });
            }
            Event::Guest(_, GuestMsg::Error { message }) => break Err(RunError::Guest(message)),
            Event::Guest(_, GuestMsg::Log { message }) => {
                if settings.debug {
                    eprintln!("{}: guest: {message}", req.program);
                }
            }
            Event::Guest(_, GuestMsg::Hello { .. }) => {} // a repeated Hello changes nothing
            Event::ControlClosed(_, Some(e)) => break Err(RunError::Frame(e)),
            Event::ControlClosed(_, None) => session.closed_at = Some(Instant::now()),
            Event::VmExited(_, status) => break Err(session.vm_died(status, settings)),
            Event::Signal(SIGWINCH) => {
                if let (true, Some(size)) = (tty && session.booted, tty::window_size()) {
                    let _ = attempt.control.send(&HostMsg::Resize(size));
                }
            }
            Event::Signal(signal) if session.booted => {
                let _ = attempt.control.send(&HostMsg::Signal { signal });
            }
            Event::Signal(signal) => break Err(RunError::Interrupted(signal)),
        }
    };
    drop(session.raw.take());
    session.attempt.stop();
    if let Some(handle) = signal_handle {
        handle.close();
    }
    if result.is_err() {
        session.end_guest_line(tty); // the caller prints the error next
    }
    result
}

/// Per-run state the event loop consults.
struct Session {
    attempt: Attempt,
    started: Instant,
    booted: bool,
    raw: Option<RawMode>,
    closed_at: Option<Instant>,
}

impl Session {
    /// The earliest pending deadline and what it means.
    fn next_deadline(&self, settings: &VmSettings) -> Option<(Instant, Expiry)> {
        let boot = (!self.booted)
            .then(|| self.attempt.started.checked_add(settings.boot_timeout))
            .flatten()
            .map(|at| (at, Expiry::Boot));
        let run = settings.timeout.map(|t| (self.started + t, Expiry::Run));
        let closed = self.closed_at.map(|at| (at + CLOSE_GRACE, Expiry::Closed));
        [boot, run, closed]
            .into_iter()
            .flatten()
            .min_by_key(|(at, _)| *at)
    }

    /// In TTY mode, ends the guest's unfinished last line (a prompt) on the terminal,
    /// so that a message printed next starts on a line of its own.
    fn end_guest_line(&self, tty: bool) {
        if tty && self.attempt.stdout.mid_line() {
            eprintln!();
        }
    }

    /// Stops the VM because a deadline passed, and says why.
    fn expired(&self, expiry: Expiry, settings: &VmSettings) -> RunError {
        self.attempt.vm.kill();
        match expiry {
            Expiry::Boot => RunError::BootTimeout {
                waited: self.attempt.started.elapsed(),
                console: indent_tail(&self.attempt.console.text(), 20),
            },
            Expiry::Run => RunError::TimedOut(self.started.elapsed()),
            Expiry::Closed => self.vm_died(-1, settings),
        }
    }

    /// Explains a VM that ended without an exit report.
    fn vm_died(&self, status: i32, settings: &VmSettings) -> RunError {
        let diagnostics = self.attempt.vm.diagnostics();
        if let Some(mapping) = network::failed_rule(&diagnostics, &settings.publish) {
            return RunError::Port(network::PortError {
                mapping: *mapping,
                source: std::io::ErrorKind::AddrInUse.into(),
            });
        }
        let console = self.attempt.console.text();
        if let Some(line) = console.lines().find(|l| l.contains("Kernel panic")) {
            let reason = line[line.find("Kernel panic").unwrap_or(0)..].trim_end();
            return RunError::GuestPanic(reason.to_owned());
        }
        let mut details = indent_tail(&diagnostics, 10);
        details.push_str(&indent_tail(&console, 20));
        RunError::VmDied { status, details }
    }
}

/// The last `lines` non-empty lines of `text`, each on a new indented line.
fn indent_tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .collect();
    all[all.len().saturating_sub(lines)..]
        .iter()
        .map(|l| format!("\n  {l}"))
        .collect()
}

/// Published ports need the network, and every host port must be free (checked
/// before the VM starts, so a taken port never boots a guest).
fn check_network(settings: &VmSettings) -> Result<(), RunError> {
    if settings.publish.is_empty() {
        return Ok(());
    }
    if !settings.network {
        let list: Vec<String> = settings.publish.iter().map(ToString::to_string).collect();
        return Err(RunError::PortsWithoutNetwork(list.join(", ")));
    }
    Ok(network::check_ports(&settings.publish)?)
}

/// The root image must exist, hold the slice, and be sized in 512-byte sectors.
fn check_root(root: &DiskSlice) -> Result<(), RunError> {
    let bad = |why: String| RunError::RootImage {
        path: root.path.clone(),
        why,
    };
    let len = std::fs::metadata(&root.path)
        .map_err(|e| bad(e.to_string()))?
        .len();
    if root.size == 0 || root.size % 512 != 0 {
        return Err(bad(format!(
            "its size ({} bytes) is not a non-zero multiple of 512",
            root.size
        )));
    }
    if root
        .offset
        .checked_add(root.size)
        .is_none_or(|end| end > len)
    {
        return Err(bad(format!(
            "the image ({} bytes at offset {}) extends past the end of the file ({len} bytes)",
            root.size, root.offset
        )));
    }
    Ok(())
}
