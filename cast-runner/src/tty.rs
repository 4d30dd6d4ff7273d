//! The host terminal in TTY mode: raw mode that is always restored, and its size.
//!
//! [`RawMode`] restores the saved settings when dropped, which covers normal returns,
//! errors and panics (unwinding); forwarded signals never kill the runner, so they end
//! through the normal path too.

use cast_proto::WinSize;
use nix::sys::termios::{self, SetArg, Termios};
use std::io::IsTerminal;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Whether stdin and stdout are both terminals (Docker's rule for `-t` by default).
pub fn both_terminals() -> bool {
    std::io::stdin().is_terminal() && std::io::stdout().is_terminal()
}

/// The size of the terminal on stdout (or stdin), if any.
pub fn window_size() -> Option<WinSize> {
    [1, 0].into_iter().find_map(|fd| {
        let mut ws = libc::winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCGWINSZ writes one `winsize` to the pointer, which is valid and
        // exclusively borrowed for the call.
        let rc = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) };
        (rc == 0 && ws.ws_row > 0).then_some(WinSize {
            rows: ws.ws_row,
            cols: ws.ws_col,
        })
    })
}

/// The terminal on stdin in raw mode until dropped.
#[derive(Debug)]
pub struct RawMode {
    saved: Termios,
}

impl RawMode {
    /// Puts stdin's terminal into raw mode; `None` if stdin is not a terminal.
    pub fn enter() -> Option<Self> {
        let stdin = stdin_fd();
        let saved = termios::tcgetattr(stdin).ok()?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(stdin, SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(stdin_fd(), SetArg::TCSANOW, &self.saved);
    }
}

fn stdin_fd() -> BorrowedFd<'static> {
    // SAFETY: fd 0 stays open for the life of the process; nothing here closes it.
    unsafe { BorrowedFd::borrow_raw(std::io::stdin().as_raw_fd()) }
}
