//! Threads that move bytes between the process's stdio and the ports.
//!
//! Reads and writes block, which gives backpressure both ways. A pump that must
//! react to the host (stdin's end, the host's stdout breaking) polls a wake-up pipe
//! beside its data fd, so the control thread never waits on stdio.

use crate::control::Controls;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;

const CHUNK: usize = 64 * 1024;

/// Waits until `data` is readable or `wake` fires; returns true when data is ready.
fn wait_readable(data: &File, controls_wake: std::os::fd::BorrowedFd<'_>) -> bool {
    let mut fds = [
        PollFd::new(data.as_fd(), PollFlags::POLLIN),
        PollFd::new(controls_wake, PollFlags::POLLIN),
    ];
    loop {
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => break,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return true, // let the read report it
        }
    }
    fds[0].revents().is_some_and(|r| !r.is_empty())
}

/// Copies the stdin port into the process until the host's stdin has ended (the
/// control thread learns the total) or the process stops reading.
pub fn stdin(mut port: File, mut sink: File, controls: Arc<Controls>, tty: bool) {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; CHUNK];
        let mut received = 0u64;
        loop {
            if !tty && received >= controls.stdin_eof.load(Ordering::SeqCst) {
                return; // dropping `sink` closes the process's stdin
            }
            if !wait_readable(&port, controls.stdin_wake.fd()) {
                controls.stdin_wake.drain();
                continue;
            }
            let n = match port.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return,
            };
            received += n as u64;
            if sink.write_all(&buf[..n]).is_err() {
                return; // the process closed its stdin
            }
        }
    });
}

/// Copies a process output (pipe or pty master) to a port until it ends; returns the
/// byte count. With `controls`, a broken host stdout closes the pipe early.
pub fn output(
    mut source: File,
    mut port: File,
    controls: Option<Arc<Controls>>,
) -> JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; CHUNK];
        let mut sent = 0u64;
        loop {
            if let Some(c) = &controls {
                if c.close_stdout.load(Ordering::SeqCst) {
                    return sent;
                }
                if !wait_readable(&source, c.stdout_wake.fd()) {
                    continue;
                }
            }
            let n = match source.read(&mut buf) {
                Ok(0) => return sent,
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                // EIO: every pty slave is closed, which is a pty's end of file.
                Err(_) => return sent,
            };
            if port.write_all(&buf[..n]).is_err() {
                return sent;
            }
            sent += n as u64;
        }
    })
}
