//! One run, from VM start to exit code: the event loop that wires engine, channel,
//! signals and timeouts together.
//!
//! 1. Validate the root image; pick TTY mode, QEMU and the accelerator.
//! 2. Catch signals; start the VM (`attempt::Attempt`).
//! 3. On the guest's Hello: send the [`StartSpec`], enter raw mode (TTY), pump stdin.
//!    A guest that does not say Hello within `CAST_BOOT_TIMEOUT` is stopped and
//!    started once more (under TCG a boot very rarely hangs; nothing has reached the
//!    guest yet, so the retry is invisible but for a message).
//! 4. Forward signals and window sizes; enforce the run timeout.
//! 5. On the exit report: wait until every output byte arrived, Ack, stop the VM,
//!    return the process's exit code.

use crate::attempt::{dup_stdio, Attempt, Event, Launcher};
use crate::channel;
use crate::channel::OutputSink;
use crate::error::RunError;
use crate::tty::{self, RawMode};
use crate::vm::{choose_accel, qemu::Qemu, Disk, DiskSlice, KernelImage};
use cast_core::VmSettings;
use cast_proto::{GuestMsg, HostMsg, StartSpec, PROTOCOL_VERSION};
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH};
use std::borrow::Cow;
use std::fs::File;
use std::sync::mpsc::{self, RecvTimeoutError};
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
    /// The initrd (`initrd::build(&bundle)`, or a casted executable's payload part).
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

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// The process's exit code (or 126/127 when it could not run).
    pub code: i32,
    /// Build mode, the command succeeded: bytes of layer diff on the diff disk.
    pub layer_bytes: Option<u64>,
}

/// Runs the request; returns the process's exit code (or 126/127 when it could not
/// run). Runtime failures are errors; [`RunError::exit_code`] maps them.
pub fn run(req: RunRequest) -> Result<i32, RunError> {
    run_to_end(req).map(|o| o.code)
}

/// [`run`], returning the whole [`Outcome`] (a build VM's layer size too).
pub fn run_to_end(req: RunRequest) -> Result<Outcome, RunError> {
    check_root(&req.root)?;
    let settings = &req.settings;
    let tty = settings.tty.unwrap_or_else(tty::both_terminals);
    let backend = Qemu::locate(settings.qemu.as_deref())?;
    let accel = choose_accel(settings.accel).map_err(crate::vm::VmError::from)?;
    let prepare = |what| move |source| RunError::Prepare { what, source };

    let (tx, rx) = mpsc::channel();
    let mut signals = signal_hook::iterator::Signals::new([
        SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH,
    ])
    .map_err(prepare("signal handling"))?;
    let signal_handle = signals.handle();
    let sig_tx = tx.clone();
    std::thread::spawn(move || {
        for s in signals.forever() {
            let _ = sig_tx.send(Event::Signal(s));
        }
    });
    let launcher = Launcher {
        backend,
        accel,
        kernel: req.kernel,
        initrd: req.initrd,
        root: req.root,
        disks: req.disks,
        output: req.output,
        pass_fds: req.pass_fds,
        settings,
        events: tx,
    };
    let mut session = Session {
        attempt: launcher.launch(1)?,
        started: Instant::now(),
        booted: false,
        raw: None,
        closed_at: None,
    };
    let mut spec = Some(req.spec);
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
                            session.attempt.vm.kill();
                            session.attempt = launcher.launch(session.attempt.id + 1)?;
                            continue;
                        }
                        expiry => break Err(session.expired(expiry)),
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
                spec.tty = tty;
                spec.winsize = if tty { tty::window_size() } else { None };
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
                    dup_stdio(0)?
                } else {
                    File::open("/dev/null").map_err(prepare("/dev/null for stdin"))?
                };
                channel::pump_stdin(source, port, attempt.control.clone(), !tty);
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
            Event::VmExited(_, status) => break Err(session.vm_died(status)),
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
    session.attempt.vm.kill();
    signal_handle.close();
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

    /// Stops the VM because a deadline passed, and says why.
    fn expired(&self, expiry: Expiry) -> RunError {
        self.attempt.vm.kill();
        match expiry {
            Expiry::Boot => RunError::BootTimeout {
                waited: self.attempt.started.elapsed(),
                console: indent_tail(&self.attempt.console.text(), 20),
            },
            Expiry::Run => RunError::TimedOut(self.started.elapsed()),
            Expiry::Closed => self.vm_died(-1),
        }
    }

    /// Explains a VM that ended without an exit report.
    fn vm_died(&self, status: i32) -> RunError {
        let console = self.attempt.console.text();
        if let Some(line) = console.lines().find(|l| l.contains("Kernel panic")) {
            let reason = line[line.find("Kernel panic").unwrap_or(0)..].trim_end();
            return RunError::GuestPanic(reason.to_owned());
        }
        let mut details = indent_tail(&self.attempt.vm.diagnostics(), 10);
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
