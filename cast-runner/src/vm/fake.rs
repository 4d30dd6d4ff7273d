//! A fake engine for unit tests: each "VM" is a thread running a scripted guest that
//! speaks `cast-proto` over the very socket pairs the session hands to QEMU, so the
//! session's retry, drain, timeout, signal and broken-guest logic is tested without
//! QEMU — and a guest can misbehave in ways a real cast-init never would.
//!
//! [`FakeVm::kill`] shuts the guest's sockets down (as QEMU's death closes its ends),
//! which also unblocks a script waiting on them; a script that returns is a VM that
//! powered off. The engine counts starts and kills so tests assert on them, not on
//! time. A script that panics (a failed assertion in the guest) powers its VM off and
//! fails the test when the engine is dropped.

use super::{Backend, Vm, VmError, VmSpec};
use cast_proto::{port, read_frame, write_frame, ExitStatus, GuestMsg, HostMsg, StartSpec};
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex};

/// A scripted guest: gets the attempt number (1, 2, …) and the guest's ends.
pub(crate) type Script = dyn Fn(u32, &mut Guest) + Send + Sync;

/// Starts [`FakeVm`]s running one script.
pub(crate) struct FakeEngine {
    script: Arc<Script>,
    counts: Arc<Counts>,
}

/// What the engine saw.
#[derive(Debug, Default)]
pub(crate) struct Counts {
    /// VMs started.
    pub starts: AtomicU32,
    /// VMs killed before their script ended.
    pub kills: AtomicU32,
    /// Scripts that panicked (a failed assertion in the guest).
    pub script_panics: AtomicU32,
}

impl FakeEngine {
    /// An engine whose guests run `script`.
    pub(crate) fn new(script: impl Fn(u32, &mut Guest) + Send + Sync + 'static) -> Self {
        FakeEngine {
            script: Arc::new(script),
            counts: Arc::default(),
        }
    }

    /// VMs started so far.
    pub(crate) fn starts(&self) -> u32 {
        self.counts.starts.load(Ordering::SeqCst)
    }

    /// VMs killed so far.
    pub(crate) fn kills(&self) -> u32 {
        self.counts.kills.load(Ordering::SeqCst)
    }
}

impl Drop for FakeEngine {
    /// A guest script's failed assertion fails the test.
    fn drop(&mut self) {
        let panics = self.counts.script_panics.load(Ordering::SeqCst);
        if panics > 0 && !std::thread::panicking() {
            panic!("{panics} guest script(s) panicked (see above)");
        }
    }
}

impl Backend for FakeEngine {
    fn start(&self, spec: VmSpec<'_>) -> Result<Box<dyn Vm>, VmError> {
        let id = self.counts.starts.fetch_add(1, Ordering::SeqCst) + 1;
        let mut ports = spec.ports.into_iter().map(|(name, fd)| (name, fd.into()));
        let mut take = |want: &str| -> UnixStream {
            let (name, stream) = ports.next().expect("four ports");
            assert_eq!(name, want, "ports come in port::ALL order");
            stream
        };
        let mut guest = Guest {
            control: take(port::CONTROL),
            stdin: take(port::STDIN),
            stdout: take(port::STDOUT),
            stderr: take(port::STDERR),
            console: spec.console.into(),
        };
        let vm = Arc::new(FakeVm {
            sockets: guest.clones(),
            ended: Mutex::new(None),
            changed: Condvar::new(),
            counts: self.counts.clone(),
        });
        let (script, end, counts) = (self.script.clone(), vm.clone(), self.counts.clone());
        std::thread::spawn(move || {
            let outcome =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| script(id, &mut guest)));
            drop(guest);
            end.end(0); // powered off (a failed script too, so the run cannot hang)
            if outcome.is_err() {
                counts.script_panics.fetch_add(1, Ordering::SeqCst);
            }
        });
        Ok(Box::new(Handle(vm)))
    }
}

/// The guest's ends of one VM's channel.
#[derive(Debug)]
pub(crate) struct Guest {
    /// Control port.
    pub control: UnixStream,
    /// Stdin port (host → guest).
    pub stdin: UnixStream,
    /// Stdout port (guest → host).
    pub stdout: UnixStream,
    /// Stderr port (guest → host).
    pub stderr: UnixStream,
    /// Serial console (guest → host).
    pub console: UnixStream,
}

impl Guest {
    fn clones(&self) -> Vec<UnixStream> {
        [
            &self.control,
            &self.stdin,
            &self.stdout,
            &self.stderr,
            &self.console,
        ]
        .iter()
        .map(|s| s.try_clone().expect("clone a socket"))
        .collect()
    }

    /// Sends a control message (ignoring a host that is gone).
    pub(crate) fn send(&mut self, msg: &GuestMsg) {
        let _ = write_frame(&mut self.control, msg);
    }

    /// The next control message; `None` once the host is gone or the VM was killed.
    pub(crate) fn recv(&mut self) -> Option<HostMsg> {
        read_frame(&mut self.control).ok().flatten()
    }

    /// Says Hello with this protocol's version and returns what the host says to run.
    pub(crate) fn start(&mut self) -> StartSpec {
        self.send(&GuestMsg::Hello {
            version: cast_proto::PROTOCOL_VERSION,
        });
        match self.recv() {
            Some(HostMsg::Start(spec)) => *spec,
            other => panic!("expected Start after Hello, got {other:?}"),
        }
    }

    /// Reports the process's exit with these stream totals and waits for the Ack, as
    /// cast-init does; returns the host messages that came before it.
    pub(crate) fn exit(&mut self, code: i32, stdout_bytes: u64, stderr_bytes: u64) -> Vec<HostMsg> {
        self.send(&GuestMsg::Exit {
            status: ExitStatus::Code(code),
            stdout_bytes,
            stderr_bytes,
            message: None,
            layer_bytes: None,
        });
        self.until_ack()
    }

    /// Host messages up to the Ack (or the end of the channel).
    pub(crate) fn until_ack(&mut self) -> Vec<HostMsg> {
        let mut before = Vec::new();
        while let Some(msg) = self.recv() {
            if msg == HostMsg::Ack {
                break;
            }
            before.push(msg);
        }
        before
    }

    /// Blocks until the VM is killed (the host's messages are read and dropped).
    pub(crate) fn hang(&mut self) {
        while self.recv().is_some() {}
    }

    /// Reads exactly `n` bytes from the stdin port.
    pub(crate) fn read_stdin(&mut self, n: usize) -> io::Result<Vec<u8>> {
        let mut data = vec![0; n];
        self.stdin.read_exact(&mut data)?;
        Ok(data)
    }

    /// Writes raw bytes on the control port (for malformed frames).
    pub(crate) fn send_raw(&mut self, bytes: &[u8]) {
        let _ = self.control.write_all(bytes);
    }
}

/// The shared state of one fake VM.
#[derive(Debug)]
struct FakeVm {
    /// Clones of the guest's ends, shut down when the VM ends.
    sockets: Vec<UnixStream>,
    /// The engine status once the VM has ended.
    ended: Mutex<Option<i32>>,
    changed: Condvar,
    counts: Arc<Counts>,
}

impl FakeVm {
    /// Ends the VM with `status` (the first end wins): its sockets close, then waiters
    /// wake, in the order QEMU's death shows them. Returns whether this call ended it.
    fn end(&self, status: i32) -> bool {
        let mut ended = self.ended.lock().unwrap_or_else(|e| e.into_inner());
        if ended.is_some() {
            return false;
        }
        for s in &self.sockets {
            let _ = s.shutdown(Shutdown::Both);
        }
        *ended = Some(status);
        self.changed.notify_all();
        true
    }
}

/// The [`Vm`] the session holds.
#[derive(Debug)]
struct Handle(Arc<FakeVm>);

impl Vm for Handle {
    fn wait(&self) -> io::Result<i32> {
        let mut ended = self.0.ended.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(status) = *ended {
                return Ok(status);
            }
            ended = self
                .0
                .changed
                .wait(ended)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    fn kill(&self) {
        if self.0.end(128 + libc::SIGKILL) {
            self.0.counts.kills.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn diagnostics(&self) -> String {
        "fake engine".into()
    }
}
