//! Threads that move bytes between the process's stdio and the ports.
//!
//! Writes block, which gives backpressure both ways. A pump that must react to the
//! host (stdin's end, the host's stdout breaking) reads its data fd without blocking
//! and, only when it is empty, polls it together with a wake-up pipe: the control
//! thread never waits on stdio, and a busy stream costs no extra system call per read
//! (under emulation every guest system call is expensive, and a virtio port yields at
//! most 4 KiB per read).

use crate::control::{Controls, Wake};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;

const CHUNK: usize = 64 * 1024;

/// Copies the stdin port into the process until the host's stdin has ended (the
/// control thread learns the total) or the process stops reading.
pub fn stdin(mut port: File, mut sink: File, controls: Arc<Controls>, tty: bool) {
    set_nonblocking(&port);
    std::thread::spawn(move || {
        let mut buf = vec![0u8; CHUNK];
        let mut received = 0u64;
        loop {
            if !tty && received >= controls.stdin_eof.load(Ordering::SeqCst) {
                return; // dropping `sink` closes the process's stdin
            }
            let n = match read_or_wake(&mut port, &mut buf, &controls.stdin_wake) {
                Ok(None) => continue,
                Ok(Some(0)) | Err(_) => return,
                Ok(Some(n)) => n,
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
pub fn output(source: File, port: File, controls: Option<Arc<Controls>>) -> JoinHandle<u64> {
    std::thread::spawn(move || {
        let sent = copy_output(source, &port, controls);
        // Closing a port tells QEMU the guest left, and data it has not yet flushed to
        // the host could go with it: the port stays open until power-off.
        std::mem::forget(port);
        sent
    })
}

fn copy_output(mut source: File, mut port: &File, controls: Option<Arc<Controls>>) -> u64 {
    if controls.is_some() {
        set_nonblocking(&source);
    }
    let mut buf = vec![0u8; CHUNK];
    let mut sent = 0u64;
    loop {
        let read = match &controls {
            Some(c) if c.close_stdout.load(Ordering::SeqCst) => return sent,
            Some(c) => match read_or_wake(&mut source, &mut buf, &c.stdout_wake) {
                Ok(None) => continue,
                Ok(Some(n)) => Ok(n),
                Err(e) => Err(e),
            },
            None => source.read(&mut buf),
        };
        let n = match read {
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
}

/// Makes `file` non-blocking (for [`read_or_wake`]).
fn set_nonblocking(file: &File) {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    if let Ok(flags) = fcntl(file.as_raw_fd(), FcntlArg::F_GETFL) {
        let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
        let _ = fcntl(file.as_raw_fd(), FcntlArg::F_SETFL(flags));
    }
}

/// Reads from the non-blocking `data`; when it is empty, waits for data or a wake-up.
/// `Ok(None)` means woken: the caller re-checks what the control thread changed.
fn read_or_wake(data: &mut File, buf: &mut [u8], wake: &Wake) -> std::io::Result<Option<usize>> {
    loop {
        match data.read(buf) {
            Ok(n) => return Ok(Some(n)),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                let mut fds = [
                    PollFd::new(data.as_fd(), PollFlags::POLLIN),
                    PollFd::new(wake.fd(), PollFlags::POLLIN),
                ];
                match poll(&mut fds, PollTimeout::NONE) {
                    Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                    Err(e) => return Err(e.into()),
                }
                let data_ready = fds[0].revents().is_some_and(|r| !r.is_empty());
                if !data_ready && fds[1].revents().is_some_and(|r| !r.is_empty()) {
                    wake.drain();
                    return Ok(None);
                }
            }
            Err(e) => return Err(e),
        }
    }
}
