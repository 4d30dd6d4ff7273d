//! One run, from VM start to exit code: the wiring of engine, channel, pumps,
//! signals and timeouts in one place.
//!
//! 1. Validate the root image; pick TTY mode, QEMU and the accelerator.
//! 2. Build the initrd, make the socket pairs, catch signals, start the VM.
//! 3. On the guest's Hello: send the [`StartSpec`], enter raw mode (TTY), pump stdin.
//! 4. Forward signals and window sizes; enforce the boot and run timeouts.
//! 5. On the exit report: wait until every output byte arrived, Ack, stop the VM,
//!    return the process's exit code.

use crate::channel::{self, ConsoleTail, ControlWriter};
use crate::error::RunError;
use crate::settings::VmSettings;
use crate::tty::{self, RawMode};
use crate::vm::{qemu::Qemu, Accel, Backend, DiskSlice, KernelImage, Vm, VmSpec};
use cast_proto::{read_frame, FrameError, GuestMsg, HostMsg, StartSpec, PROTOCOL_VERSION};
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH};
use std::borrow::Cow;
use std::fs::File;
use std::os::fd::AsFd;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long to wait for output still in flight after the exit report.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the VM may take to end after its control channel closed.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

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
    /// Open files QEMU inherits (same fd numbers): a `root.path` of
    /// `/proc/self/fd/N` names one, so QEMU opens the very file the runner checked.
    pub pass_fds: Vec<std::os::fd::OwnedFd>,
    /// What to run; `tty` and `winsize` are filled in here.
    pub spec: StartSpec,
    /// VM sizing and behaviour.
    pub settings: VmSettings,
}

enum Event {
    Guest(GuestMsg),
    ControlClosed(Option<FrameError>),
    VmExited(i32),
    Signal(i32),
}

/// Runs the request; returns the process's exit code (or 126/127 when it could not
/// run). Runtime failures are errors; [`RunError::exit_code`] maps them.
pub fn run(req: RunRequest) -> Result<i32, RunError> {
    check_root(&req.root)?;
    let settings = &req.settings;
    let tty = settings.tty.unwrap_or_else(tty::both_terminals);
    let backend = Qemu::locate(settings.qemu.as_deref())?;
    let accel = Accel::choose(settings.accel).map_err(crate::vm::VmError::from)?;
    let prepare = |what| move |source| RunError::Prepare { what, source };
    let (host, guest) = channel::socket_pairs().map_err(prepare("the channel"))?;

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

    let vm: Arc<dyn Vm> = Arc::from(backend.start(VmSpec {
        kernel: req.kernel,
        initrd: req.initrd,
        cmdline: if settings.debug {
            "cast_debug=1".into()
        } else {
            String::new()
        },
        cpus: settings.cpus,
        memory_mib: settings.memory_mib,
        root: req.root.clone(),
        pass_fds: req.pass_fds,
        ports: guest.ports,
        console: guest.console,
        accel,
        debug: settings.debug,
    })?);
    let waiter = vm.clone();
    let vm_tx = tx.clone();
    std::thread::spawn(move || {
        let status = waiter.wait().unwrap_or(-1);
        let _ = vm_tx.send(Event::VmExited(status));
    });

    let console = ConsoleTail::collect(host.console, settings.debug);
    let control = ControlWriter::new(host.control.try_clone().map_err(prepare("the channel"))?);
    let mut reader = host.control;
    let ctl_tx = tx;
    std::thread::spawn(move || loop {
        match read_frame::<_, GuestMsg>(&mut reader) {
            Ok(Some(msg)) => {
                if ctl_tx.send(Event::Guest(msg)).is_err() {
                    return;
                }
            }
            Ok(None) => return drop(ctl_tx.send(Event::ControlClosed(None))),
            Err(e) => return drop(ctl_tx.send(Event::ControlClosed(Some(e)))),
        }
    });
    let broken = control.clone();
    let stdout = channel::pump_output(host.stdout, dup_stdio(1)?, move || {
        let _ = broken.send(&HostMsg::CloseStdout);
    });
    let stderr = channel::pump_output(host.stderr, dup_stdio(2)?, || {});

    let mut session = Session {
        vm: &*vm,
        console: &console,
        started: Instant::now(),
        booted: false,
        raw: None,
        closed_at: None,
    };
    // Held open until the run ends: when QEMU sees a chardev socket hang up it drops
    // whatever it has not yet passed to the guest, so the stdin pump finishing must
    // not close the last copy of the host end.
    let stdin = host.stdin;
    let mut spec = Some(req.spec);
    let result = loop {
        let event = match session.next_deadline(settings) {
            Some((deadline, on_expiry)) => match rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(event) => event,
                Err(RecvTimeoutError::Timeout) => break Err(on_expiry(&session)),
                Err(RecvTimeoutError::Disconnected) => unreachable!("the VM waiter always reports"),
            },
            None => rx.recv().expect("the VM waiter always reports"),
        };
        match event {
            Event::Guest(GuestMsg::Hello { version }) if !session.booted => {
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
                if control.send(&HostMsg::Start(Box::new(spec))).is_err() {
                    continue; // the VM is going away; its exit will be reported
                }
                if tty {
                    session.raw = RawMode::enter();
                }
                let port = stdin.try_clone().map_err(prepare("the channel"))?;
                let source = if settings.interactive {
                    dup_stdio(0)?
                } else {
                    File::open("/dev/null").map_err(prepare("/dev/null for stdin"))?
                };
                channel::pump_stdin(source, port, control.clone(), !tty);
            }
            Event::Guest(GuestMsg::Exit {
                status,
                stdout_bytes,
                stderr_bytes,
                message,
            }) => {
                let deadline = Instant::now() + DRAIN_TIMEOUT;
                stdout.wait_for(stdout_bytes, deadline);
                stderr.wait_for(stderr_bytes, deadline);
                drop(session.raw.take());
                if let Some(message) = message {
                    eprintln!("{}: {message}", req.program);
                }
                let _ = control.send(&HostMsg::Ack);
                break Ok(status.code());
            }
            Event::Guest(GuestMsg::Error { message }) => break Err(RunError::Guest(message)),
            Event::Guest(GuestMsg::Log { message }) => {
                if settings.debug {
                    eprintln!("{}: guest: {message}", req.program);
                }
            }
            Event::Guest(GuestMsg::Hello { .. }) => {} // a repeated Hello changes nothing
            Event::ControlClosed(Some(e)) => break Err(RunError::Frame(e)),
            Event::ControlClosed(None) => session.closed_at = Some(Instant::now()),
            Event::VmExited(status) => break Err(session.vm_died(status)),
            Event::Signal(SIGWINCH) => {
                if let (true, Some(size)) = (tty && session.booted, tty::window_size()) {
                    let _ = control.send(&HostMsg::Resize(size));
                }
            }
            Event::Signal(signal) if session.booted => {
                let _ = control.send(&HostMsg::Signal { signal });
            }
            Event::Signal(signal) => break Err(RunError::Interrupted(signal)),
        }
    };
    drop(session.raw.take());
    vm.kill();
    signal_handle.close();
    result
}

/// Per-run state the event loop consults.
struct Session<'a> {
    vm: &'a dyn Vm,
    console: &'a ConsoleTail,
    started: Instant,
    booted: bool,
    raw: Option<RawMode>,
    closed_at: Option<Instant>,
}

type OnExpiry = fn(&Session<'_>) -> RunError;

impl Session<'_> {
    /// The earliest pending deadline and what it means when it passes.
    fn next_deadline(&self, settings: &VmSettings) -> Option<(Instant, OnExpiry)> {
        let mut deadlines: Vec<(Instant, OnExpiry)> = Vec::new();
        if !self.booted {
            if let Some(at) = self.started.checked_add(settings.boot_timeout) {
                deadlines.push((at, |s| {
                    s.vm.kill();
                    RunError::BootTimeout {
                        waited: s.started.elapsed(),
                        console: indent_tail(&s.console.text(), 20),
                    }
                }));
            }
        }
        if let Some(timeout) = settings.timeout {
            deadlines.push((self.started + timeout, |s| {
                s.vm.kill();
                RunError::TimedOut(s.started.elapsed())
            }));
        }
        if let Some(closed) = self.closed_at {
            deadlines.push((closed + CLOSE_GRACE, |s| {
                s.vm.kill();
                s.vm_died(-1)
            }));
        }
        deadlines.into_iter().min_by_key(|(at, _)| *at)
    }

    /// Explains a VM that ended without an exit report.
    fn vm_died(&self, status: i32) -> RunError {
        let console = self.console.text();
        if let Some(at) = console.find("Kernel panic") {
            let from = console[..at].rfind('\n').map_or(0, |i| i + 1);
            return RunError::GuestPanic(
                indent_tail(&console[from..], 12)
                    .trim_start_matches('\n')
                    .to_owned(),
            );
        }
        let mut details = indent_tail(&self.vm.diagnostics(), 10);
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

/// A private copy of one of the host's stdio fds (so pumps own plain `File`s).
fn dup_stdio(fd: i32) -> Result<File, RunError> {
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
