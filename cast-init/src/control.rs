//! The control thread: acts on host messages while the process runs.
//!
//! It must never block behind stdio, so it only flips shared state and wakes the
//! pumps ([`Wake`]); signals go straight to the process with `kill(2)`.

use cast_proto::{read_frame, HostMsg, WinSize};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

/// A pipe used to wake a thread blocked in `poll(2)`.
#[derive(Debug)]
pub struct Wake {
    read: File,
    write: File,
}

impl Wake {
    fn new() -> Self {
        let (read, write) = nix::unistd::pipe().expect("pipe for a wake-up");
        Wake {
            read: File::from(read),
            write: File::from(write),
        }
    }

    /// The end to poll for readability.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.read.as_fd()
    }

    /// Consumes pending wake-ups so `poll` blocks again.
    pub fn drain(&self) {
        let mut buf = [0u8; 64];
        let _ = (&self.read).read(&mut buf);
    }

    fn wake(&self) {
        let _ = (&self.write).write_all(&[1]);
    }
}

/// State shared between the control thread, the pumps and the main loop.
#[derive(Debug)]
pub struct Controls {
    /// The process, once started (signals arriving earlier wait in `pending`).
    child: OnceLock<Pid>,
    pending: Mutex<Vec<i32>>,
    /// Where the host's stdin ended (`u64::MAX` while it is open).
    pub stdin_eof: AtomicU64,
    /// Wakes the stdin pump when `stdin_eof` is set.
    pub stdin_wake: Wake,
    /// Set when the host's stdout broke.
    pub close_stdout: AtomicBool,
    /// Wakes the stdout pump when `close_stdout` is set.
    pub stdout_wake: Wake,
    /// The pty master in TTY mode (for window size changes).
    pub pty: OnceLock<OwnedFd>,
    acked: (Mutex<bool>, Condvar),
}

impl Controls {
    /// Starts the control thread on the control port's reading half.
    pub fn spawn(mut reader: File) -> Arc<Self> {
        let controls = Arc::new(Controls {
            child: OnceLock::new(),
            pending: Mutex::new(Vec::new()),
            stdin_eof: AtomicU64::new(u64::MAX),
            stdin_wake: Wake::new(),
            close_stdout: AtomicBool::new(false),
            stdout_wake: Wake::new(),
            pty: OnceLock::new(),
            acked: (Mutex::new(false), Condvar::new()),
        });
        let shared = controls.clone();
        std::thread::spawn(move || {
            // A broken or closed channel means the host is gone: nothing to act on.
            while let Ok(Some(msg)) = read_frame::<_, HostMsg>(&mut reader) {
                shared.handle(msg);
            }
        });
        controls
    }

    fn handle(&self, msg: HostMsg) {
        match msg {
            HostMsg::Start(_) => {} // only valid as the first message
            HostMsg::StdinEof { bytes } => {
                self.stdin_eof.store(bytes, Ordering::SeqCst);
                self.stdin_wake.wake();
            }
            HostMsg::Signal { signal } => self.signal(signal),
            HostMsg::Resize(size) => self.resize(size),
            HostMsg::CloseStdout => {
                self.close_stdout.store(true, Ordering::SeqCst);
                self.stdout_wake.wake();
            }
            HostMsg::Ack => {
                let (lock, cvar) = &self.acked;
                *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
                cvar.notify_all();
            }
        }
    }

    /// Records the started process and delivers signals that arrived before it.
    pub fn set_child(&self, pid: Pid) {
        let _ = self.child.set(pid);
        let pending = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        for signal in pending {
            self.signal(signal);
        }
    }

    fn signal(&self, signal: i32) {
        let Some(pid) = self.child.get() else {
            self.pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(signal);
            return;
        };
        if let Ok(sig) = Signal::try_from(signal) {
            let _ = kill(*pid, sig);
        }
    }

    /// Applies a window size to the pty (TTY mode only).
    pub fn resize(&self, size: WinSize) {
        if let Some(master) = self.pty.get() {
            set_winsize(master.as_fd(), size);
        }
    }

    /// Waits for the host's Ack, at most `timeout`.
    pub fn wait_ack(&self, timeout: Duration) {
        let (lock, cvar) = &self.acked;
        let guard = lock.lock().unwrap_or_else(|e| e.into_inner());
        let _ = cvar.wait_timeout_while(guard, timeout, |acked| !*acked);
    }
}

/// Sets a terminal's window size.
pub fn set_winsize(fd: BorrowedFd<'_>, size: WinSize) {
    let ws = libc::winsize {
        ws_row: size.rows,
        ws_col: size.cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one `winsize` from the pointer, which is valid for the
    // duration of the call; the fd is a live terminal descriptor.
    unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
}
