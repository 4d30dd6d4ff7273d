//! The session's event loop against the fake engine (`vm::fake`): retries, drains,
//! timeouts, signals and broken guests, with no QEMU. Outcomes are asserted by what
//! the run returns, what reached the host's stdio, and how many VMs the engine
//! started and killed — never by how long something took.

use crate::error::RunError;
use crate::session::{run_on, HostIo, RunRequest, SignalSource};
use crate::vm::fake::{FakeEngine, Guest};
use crate::vm::{DiskSlice, KernelImage};
use cast_core::VmSettings;
use cast_proto::{ExitStatus, FrameError, GuestMsg, HostMsg, StartSpec, MAX_FRAME};
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::sync::mpsc;
use std::time::Duration;

/// Generous: only a guest that never answers waits this long.
const BOOT: Duration = Duration::from_secs(1);

/// One run's host side: captured stdout/stderr, and the injected signals' sender
/// (kept open for the run).
struct Host {
    stdout: File,
    stderr: File,
    _signals: mpsc::Sender<i32>,
}

impl Host {
    fn bytes(file: &File) -> Vec<u8> {
        let mut file = file.try_clone().unwrap();
        file.rewind().unwrap();
        let mut v = Vec::new();
        file.read_to_end(&mut v).unwrap();
        v
    }
    fn stdout(&self) -> Vec<u8> {
        Self::bytes(&self.stdout)
    }
    fn stderr(&self) -> Vec<u8> {
        Self::bytes(&self.stderr)
    }
}

/// Settings for fake runs: no TTY, no stdin, a short boot timeout.
fn settings() -> VmSettings {
    VmSettings {
        tty: Some(false),
        interactive: false,
        boot_timeout: BOOT,
        ..VmSettings::default()
    }
}

/// Runs `argv` on `engine` with `settings` and `stdin`; returns the result and the host.
fn run_with(
    engine: &FakeEngine,
    settings: VmSettings,
    stdin: &[u8],
    signals: impl FnOnce(&mpsc::Sender<i32>),
) -> (Result<i32, RunError>, Host) {
    let (tx, rx) = mpsc::channel();
    signals(&tx);
    let mut input = tempfile::tempfile().unwrap();
    input.write_all(stdin).unwrap();
    input.rewind().unwrap();
    let host = Host {
        stdout: tempfile::tempfile().unwrap(),
        stderr: tempfile::tempfile().unwrap(),
        _signals: tx,
    };
    let spec = StartSpec {
        argv: vec!["app".into(), "arg".into()],
        ..StartSpec::default()
    };
    let req = fake_request(spec, settings);
    let io = HostIo {
        stdin: input,
        stdout: host.stdout.try_clone().unwrap(),
        stderr: host.stderr.try_clone().unwrap(),
        signals: SignalSource::Channel(rx),
    };
    (run_on(engine, req, io).map(|o| o.code), host)
}

/// A request for the fake engine (which never opens the kernel or root files).
fn fake_request(spec: StartSpec, settings: VmSettings) -> RunRequest {
    RunRequest {
        disks: Vec::new(),
        output: None,
        program: "test".into(),
        kernel: KernelImage::File("/fake/vmlinux".into()),
        initrd: Vec::new().into(),
        root: DiskSlice {
            path: "/fake/root".into(),
            offset: 0,
            size: 512,
        },
        pass_fds: Vec::new(),
        spec,
        settings,
    }
}

fn run(engine: &FakeEngine) -> (Result<i32, RunError>, Host) {
    run_with(engine, settings(), b"", |_| {})
}

#[test]
fn a_run_returns_the_process_code_with_its_output_and_stops_the_vm() {
    let engine = FakeEngine::new(|_, g: &mut Guest| {
        let spec = g.start();
        assert_eq!(spec.argv, ["app", "arg"]);
        assert!(!spec.tty);
        g.stdout.write_all(b"out\n").unwrap();
        g.stderr.write_all(b"err\n").unwrap();
        g.exit(3, 4, 4);
        g.hang(); // QEMU keeps running until the host stops it
    });
    let (result, host) = run(&engine);
    assert_eq!(result.unwrap(), 3);
    assert_eq!(
        (&host.stdout()[..], &host.stderr()[..]),
        (&b"out\n"[..], &b"err\n"[..])
    );
    assert_eq!((engine.starts(), engine.kills()), (1, 1));
}

#[test]
fn output_sent_after_the_exit_report_is_drained_before_the_ack() {
    let data: Vec<u8> = (0..4 << 20).map(|i: u32| (i % 251) as u8).collect();
    let sent = data.clone();
    let engine = FakeEngine::new(move |_, g: &mut Guest| {
        g.start();
        g.send(&GuestMsg::Exit {
            status: ExitStatus::Signal(9),
            stdout_bytes: sent.len() as u64,
            stderr_bytes: 0,
            message: None,
            layer_bytes: None,
        });
        g.stdout.write_all(&sent).unwrap();
        g.until_ack();
    });
    let (result, host) = run(&engine);
    assert_eq!(result.unwrap(), 137);
    assert!(host.stdout() == data, "output lost or cut off");
}

#[test]
fn a_guest_claiming_more_output_than_it_sends_ends_when_its_port_closes() {
    let engine = FakeEngine::new(|_, g: &mut Guest| {
        g.start();
        g.stdout.write_all(b"short").unwrap();
        g.send(&GuestMsg::Exit {
            status: ExitStatus::Code(0),
            stdout_bytes: u64::MAX,
            stderr_bytes: 0,
            message: None,
            layer_bytes: None,
        });
        g.stdout.shutdown(std::net::Shutdown::Both).unwrap();
        g.until_ack();
    });
    let (result, host) = run(&engine);
    assert_eq!(result.unwrap(), 0);
    assert_eq!(host.stdout(), b"short");
}

#[test]
fn stdin_reaches_the_guest_and_its_end_is_reported_with_the_count() {
    let engine = FakeEngine::new(|_, g: &mut Guest| {
        g.start();
        let data = g.read_stdin(11).unwrap();
        assert_eq!(g.recv(), Some(HostMsg::StdinEof { bytes: 11 }));
        g.stdout.write_all(&data).unwrap();
        g.exit(0, 11, 0);
    });
    let settings = VmSettings {
        interactive: true,
        ..settings()
    };
    let (result, host) = run_with(&engine, settings, b"hello stdin", |_| {});
    assert_eq!(result.unwrap(), 0);
    assert_eq!(host.stdout(), b"hello stdin");
}

#[test]
fn a_boot_that_never_says_hello_is_retried_once() {
    let engine = FakeEngine::new(|attempt, g: &mut Guest| {
        if attempt == 1 {
            return g.hang();
        }
        g.start();
        g.exit(5, 0, 0);
    });
    let (result, _) = run(&engine);
    assert_eq!(result.unwrap(), 5);
    assert_eq!(engine.starts(), 2);
}

#[test]
fn a_boot_that_never_comes_up_is_reported_after_the_second_try() {
    let engine = FakeEngine::new(|_, g: &mut Guest| {
        g.console.write_all(b"early console line\n").unwrap();
        g.hang();
    });
    let (result, _) = run(&engine);
    let e = result.unwrap_err();
    assert!(matches!(e, RunError::BootTimeout { .. }), "{e:?}");
    assert_eq!(e.exit_code(), 125);
    assert!(e.to_string().contains("early console line"), "{e}");
    assert_eq!((engine.starts(), engine.kills()), (2, 2));
}

#[test]
fn a_guest_that_fails_after_hello_is_not_retried() {
    let engine = FakeEngine::new(|_, g: &mut Guest| {
        g.start();
        g.send(&GuestMsg::Error {
            message: "cannot mount the root".into(),
        });
        g.hang();
    });
    let (result, _) = run(&engine);
    let e = result.unwrap_err();
    assert_eq!(e.to_string(), "in the VM: cannot mount the root");
    assert_eq!(e.exit_code(), 125);
    assert_eq!((engine.starts(), engine.kills()), (1, 1));
}

#[test]
fn cast_timeout_stops_a_process_that_never_ends_with_124() {
    let engine = FakeEngine::new(|_, g: &mut Guest| {
        g.start();
        g.hang();
    });
    let settings = VmSettings {
        timeout: Some(Duration::from_millis(300)),
        boot_timeout: Duration::from_secs(60),
        ..settings()
    };
    let (result, _) = run_with(&engine, settings, b"", |_| {});
    let e = result.unwrap_err();
    assert!(matches!(e, RunError::TimedOut(_)), "{e:?}");
    assert_eq!(e.exit_code(), 124);
    assert_eq!(engine.kills(), 1);
}

#[test]
fn signals_after_start_are_forwarded_and_before_it_interrupt_the_boot() {
    let (signals_tx, signals_rx) = mpsc::channel::<mpsc::Sender<i32>>();
    let signals_rx = std::sync::Mutex::new(signals_rx);
    let engine = FakeEngine::new(move |_, g: &mut Guest| {
        g.start();
        let host = signals_rx.lock().unwrap().recv().unwrap();
        host.send(libc::SIGTERM).unwrap();
        host.send(libc::SIGUSR1).unwrap();
        // (The host also reports its empty stdin's end.)
        let got: Vec<_> = std::iter::from_fn(|| g.recv())
            .filter(|m| *m != HostMsg::StdinEof { bytes: 0 })
            .take(2)
            .collect();
        assert_eq!(
            got,
            [
                HostMsg::Signal {
                    signal: libc::SIGTERM
                },
                HostMsg::Signal {
                    signal: libc::SIGUSR1
                }
            ]
        );
        g.send(&GuestMsg::Exit {
            status: ExitStatus::Signal(libc::SIGTERM),
            stdout_bytes: 0,
            stderr_bytes: 0,
            message: None,
            layer_bytes: None,
        });
        g.until_ack();
    });
    let (result, _) = run_with(&engine, settings(), b"", |tx| {
        signals_tx.send(tx.clone()).unwrap()
    });
    assert_eq!(result.unwrap(), 128 + libc::SIGTERM);

    let silent = FakeEngine::new(|_, g: &mut Guest| g.hang());
    let settings = VmSettings {
        boot_timeout: Duration::from_secs(60),
        ..settings()
    };
    let (result, _) = run_with(&silent, settings, b"", |tx| tx.send(libc::SIGINT).unwrap());
    let e = result.unwrap_err();
    assert!(matches!(e, RunError::Interrupted(libc::SIGINT)), "{e:?}");
    assert_eq!(e.exit_code(), 130);
    assert_eq!((silent.starts(), silent.kills()), (1, 1));
}

/// Runs a guest that says Hello (unless `hello` is false) and then sends `bytes` raw
/// on the control port; returns the run's error.
fn broken_guest(hello: bool, bytes: Vec<u8>) -> RunError {
    let engine = FakeEngine::new(move |_, g: &mut Guest| {
        if hello {
            g.start();
        }
        g.send_raw(&bytes);
        g.hang();
    });
    let (result, _) = run(&engine);
    assert_eq!(engine.kills(), 1, "the VM was not stopped");
    result.unwrap_err()
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut f = (body.len() as u32).to_le_bytes().to_vec();
    f.extend_from_slice(body);
    f
}

#[test]
fn garbage_oversized_and_truncated_control_frames_end_the_run_with_125() {
    let e = broken_guest(true, frame(b"\xff\x00not json"));
    assert!(
        matches!(e, RunError::Frame(FrameError::Malformed(_))),
        "{e:?}"
    );
    assert_eq!(e.exit_code(), 125);
    let e = broken_guest(true, frame(br#"{"Launch":{"missiles":1}}"#));
    assert!(
        matches!(e, RunError::Frame(FrameError::Malformed(_))),
        "{e:?}"
    );
    let e = broken_guest(false, ((MAX_FRAME + 1) as u32).to_le_bytes().to_vec());
    assert!(
        matches!(e, RunError::Frame(FrameError::TooLarge(_))),
        "{e:?}"
    );
    let e = broken_guest(true, u32::MAX.to_le_bytes().to_vec());
    assert!(
        matches!(e, RunError::Frame(FrameError::TooLarge(_))),
        "{e:?}"
    );
    // A frame cut off by the guest closing its control port.
    let engine = FakeEngine::new(|_, g: &mut Guest| {
        g.start();
        g.send_raw(&[100, 0, 0, 0, b'{']);
        g.control.shutdown(std::net::Shutdown::Write).unwrap();
        g.hang();
    });
    let e = run(&engine).0.unwrap_err();
    assert!(matches!(e, RunError::Frame(FrameError::Truncated)), "{e:?}");
}

#[test]
fn out_of_order_messages_are_refused_or_ignored() {
    // An exit report before Hello: nothing was started, so nothing can have exited.
    let engine = FakeEngine::new(|_, g: &mut Guest| {
        g.send(&GuestMsg::Exit {
            status: ExitStatus::Code(0),
            stdout_bytes: 0,
            stderr_bytes: 0,
            message: None,
            layer_bytes: None,
        });
        g.hang();
    });
    let e = run(&engine).0.unwrap_err();
    assert!(matches!(e, RunError::OutOfOrder(_)), "{e:?}");
    assert_eq!(e.exit_code(), 125);
    // Another protocol version.
    let engine = FakeEngine::new(|_, g: &mut Guest| {
        g.send(&GuestMsg::Hello { version: 999 });
        g.hang();
    });
    let e = run(&engine).0.unwrap_err();
    assert!(matches!(e, RunError::Protocol { guest: 999, .. }), "{e:?}");
    // A repeated Hello changes nothing: one Start only.
    let engine = FakeEngine::new(|_, g: &mut Guest| {
        g.start();
        g.send(&GuestMsg::Hello {
            version: cast_proto::PROTOCOL_VERSION,
        });
        // (StdinEof may come before the Ack or not, as the host's stdin thread runs.)
        let before_ack = g.exit(0, 0, 0);
        assert!(
            !before_ack.iter().any(|m| matches!(m, HostMsg::Start(_))),
            "a second Start: {before_ack:?}"
        );
    });
    assert_eq!(run(&engine).0.unwrap(), 0);
}

#[test]
fn a_guest_flooding_stdout_and_the_control_port_does_not_stall_the_host() {
    let engine = FakeEngine::new(|_, g: &mut Guest| {
        g.start();
        for i in 0..10_000 {
            g.send(&GuestMsg::Log {
                message: format!("line {i}"),
            });
        }
        let chunk = vec![b'y'; 64 << 10];
        for _ in 0..256 {
            g.stdout.write_all(&chunk).unwrap();
        }
        g.exit(0, 16 << 20, 0);
    });
    let (result, host) = run(&engine);
    assert_eq!(result.unwrap(), 0);
    assert_eq!(host.stdout().len(), 16 << 20);
}

#[test]
fn a_broken_host_stdout_closes_the_guests_and_the_flood_is_discarded() {
    let engine = FakeEngine::new(|_, g: &mut Guest| {
        g.start();
        let chunk = vec![b'y'; 64 << 10];
        for _ in 0..128 {
            g.stdout.write_all(&chunk).unwrap(); // never stalls: the host discards
        }
        let mut before_ack = g.exit(141, 8 << 20, 0);
        // (The host also reports its empty stdin's end, whenever its thread gets to it.)
        before_ack.retain(|m| *m != HostMsg::StdinEof { bytes: 0 });
        assert_eq!(before_ack, [HostMsg::CloseStdout]);
    });
    let (read, write) = nix::unistd::pipe().unwrap();
    drop(read);
    let (tx, rx) = mpsc::channel();
    let stderr = tempfile::tempfile().unwrap();
    let req = fake_request(StartSpec::default(), settings());
    let io = HostIo {
        stdin: tempfile::tempfile().unwrap(),
        stdout: File::from(write),
        stderr,
        signals: SignalSource::Channel(rx),
    };
    assert_eq!(run_on(&engine, req, io).unwrap().code, 141);
    drop(tx);
}

#[test]
fn a_vm_that_dies_without_an_exit_report_is_explained() {
    let engine = FakeEngine::new(|_, g: &mut Guest| {
        g.start();
        g.console
            .write_all(b"[ 1.0] Kernel panic - not syncing: Attempted to kill init!\n")
            .unwrap();
    });
    let e = run(&engine).0.unwrap_err();
    assert_eq!(
        e.to_string(),
        "the guest kernel panicked: Kernel panic - not syncing: Attempted to kill init! \
         (CAST_DEBUG=1 shows the kernel's messages)"
    );
    let engine = FakeEngine::new(|_, g: &mut Guest| {
        g.start();
        g.console.write_all(b"some last words\n").unwrap();
    });
    let e = run(&engine).0.unwrap_err();
    assert!(matches!(e, RunError::VmDied { status: 0, .. }), "{e:?}");
    assert!(e.to_string().contains("some last words"), "{e}");
}
