//! The host side of the channel: socket pairs for the ports and the console, and the
//! threads that move stdio.
//!
//! Output pumps count bytes; the session waits until the counts reach the totals in
//! the guest's exit report, so no output is lost or cut off. The stdin pump reports
//! its total when the host's stdin ends. Everything the guest sends is untrusted:
//! control frames are size-checked by [`cast_proto::read_frame`].

use cast_proto::{port, write_frame, FrameError, HostMsg};
use std::io::{ErrorKind, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

const CHUNK: usize = 64 * 1024;

/// The runner's ends of the channel.
#[derive(Debug)]
pub struct HostEnds {
    /// Control port (read half; clone it to write).
    pub control: UnixStream,
    /// Stdin port.
    pub stdin: UnixStream,
    /// Stdout port.
    pub stdout: UnixStream,
    /// Stderr port.
    pub stderr: UnixStream,
    /// Serial console.
    pub console: UnixStream,
}

/// The guest's ends of the channel, handed to the engine.
#[derive(Debug)]
pub struct GuestEnds {
    /// Port name → socket, in [`port::ALL`] order.
    pub ports: Vec<(String, OwnedFd)>,
    /// Serial console.
    pub console: OwnedFd,
}

/// Makes the socket pairs for the ports and the console.
pub fn socket_pairs() -> std::io::Result<(HostEnds, GuestEnds)> {
    let mut host = Vec::new();
    let mut guest = Vec::new();
    for name in port::ALL {
        let (h, g) = UnixStream::pair()?;
        host.push(h);
        guest.push((name.to_owned(), OwnedFd::from(g)));
    }
    let (console, console_guest) = UnixStream::pair()?;
    let mut host = host.into_iter();
    let ends = HostEnds {
        control: host.next().unwrap(),
        stdin: host.next().unwrap(),
        stdout: host.next().unwrap(),
        stderr: host.next().unwrap(),
        console,
    };
    Ok((
        ends,
        GuestEnds {
            ports: guest,
            console: console_guest.into(),
        },
    ))
}

/// Serialises control writes from several threads.
#[derive(Debug, Clone)]
pub struct ControlWriter(Arc<Mutex<UnixStream>>);

impl ControlWriter {
    /// Wraps the control socket.
    pub fn new(stream: UnixStream) -> Self {
        ControlWriter(Arc::new(Mutex::new(stream)))
    }

    /// Sends one message.
    pub fn send(&self, msg: &HostMsg) -> Result<(), FrameError> {
        let mut s = self.0.lock().unwrap_or_else(|e| e.into_inner());
        write_frame(&mut *s, msg)
    }
}

/// How far an output pump has got.
#[derive(Debug, Default)]
pub struct Progress {
    state: Mutex<PumpState>,
    changed: Condvar,
}

/// Bytes through, whether the stream ended, and whether its last line is unfinished.
#[derive(Debug, Default)]
struct PumpState {
    bytes: u64,
    ended: bool,
    mid_line: bool,
}

impl Progress {
    fn update(&self, data: &[u8], ended: bool) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.bytes += data.len() as u64;
        s.ended |= ended;
        if let Some(last) = data.last() {
            s.mid_line = *last != b'\n';
        }
        self.changed.notify_all();
    }

    /// Whether the output so far ends inside a line (a prompt, say): a message printed
    /// after it on the same terminal needs a newline first.
    pub fn mid_line(&self) -> bool {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .mid_line
    }

    /// Waits until `total` bytes went through or the stream ended, at most until
    /// `deadline`; returns the bytes seen.
    pub fn wait_for(&self, total: u64, deadline: Instant) -> u64 {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        while s.bytes < total && !s.ended {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            s = self
                .changed
                .wait_timeout(s, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        s.bytes
    }
}

/// Where a run's stdout and stderr go instead of the host's own (a build's RUN
/// output): one shared writer for both streams, as a build log shows them.
#[derive(Clone)]
pub struct OutputSink(Arc<Mutex<dyn Write + Send>>);

impl OutputSink {
    /// Wraps `w`.
    pub fn new(w: impl Write + Send + 'static) -> Self {
        OutputSink(Arc::new(Mutex::new(w)))
    }
}

impl std::fmt::Debug for OutputSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OutputSink")
    }
}

impl Write for OutputSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).flush()
    }
}

/// Copies a guest output port to `sink` (the host's stdout or stderr). If the sink
/// breaks, `on_broken` runs once and the rest is discarded, so the guest never stalls.
pub fn pump_output(
    mut port: UnixStream,
    mut sink: impl Write + Send + 'static,
    on_broken: impl FnOnce() + Send + 'static,
) -> Arc<Progress> {
    let progress = Arc::new(Progress::default());
    let p = progress.clone();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; CHUNK];
        let mut on_broken = Some(on_broken);
        loop {
            let n = match port.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            if on_broken.is_some()
                && sink
                    .write_all(&buf[..n])
                    .and_then(|()| sink.flush())
                    .is_err()
            {
                (on_broken.take().unwrap())();
            }
            p.update(&buf[..n], false);
        }
        p.update(&[], true);
    });
    progress
}

/// Copies the host's stdin to the stdin port; at its end, tells the guest the total.
pub fn pump_stdin(
    mut source: impl Read + Send + 'static,
    mut port: UnixStream,
    control: ControlWriter,
    report_eof: bool,
) {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; CHUNK];
        let mut total = 0u64;
        loop {
            match source.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if port.write_all(&buf[..n]).is_err() {
                        return; // the VM is gone
                    }
                    total += n as u64;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        if report_eof {
            let _ = control.send(&HostMsg::StdinEof { bytes: total });
        }
    });
}

/// Keeps the last bytes the guest printed on its serial console (kernel messages),
/// echoing them to stderr when debugging, for error reports.
#[derive(Debug, Clone, Default)]
pub struct ConsoleTail(Arc<Console>);

/// What a [`ConsoleTail`] shares with its reader thread.
#[derive(Debug, Default)]
struct Console {
    /// The last bytes, and whether the console has closed.
    state: Mutex<(Vec<u8>, bool)>,
    closed: Condvar,
}

impl ConsoleTail {
    const KEEP: usize = 16 * 1024;
    /// How long [`ConsoleTail::text`] waits for a console that has not closed.
    const SETTLE: Duration = Duration::from_secs(2);

    /// Starts collecting from the console socket.
    pub fn collect(mut console: UnixStream, echo: bool) -> Self {
        let tail = ConsoleTail::default();
        let shared = tail.0.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = console.read(&mut buf) {
                if echo {
                    let _ = std::io::stderr().write_all(&buf[..n]);
                }
                let mut s = shared.state.lock().unwrap_or_else(|e| e.into_inner());
                s.0.extend_from_slice(&buf[..n]);
                if s.0.len() > 2 * Self::KEEP {
                    let cut = s.0.len() - Self::KEEP;
                    s.0.drain(..cut);
                }
            }
            shared.state.lock().unwrap_or_else(|e| e.into_inner()).1 = true;
            shared.closed.notify_all();
        });
        tail
    }

    /// The last lines. Called once the VM has ended (or been killed): waits until the
    /// console has closed, so its last words are in, at most `SETTLE`.
    pub fn text(&self) -> String {
        let deadline = Instant::now() + Self::SETTLE;
        let mut s = self.0.state.lock().unwrap_or_else(|e| e.into_inner());
        while !s.1 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            s = self
                .0
                .closed
                .wait_timeout(s, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        let start = s.0.len().saturating_sub(Self::KEEP);
        String::from_utf8_lossy(&s.0[start..]).into_owned()
    }
}
