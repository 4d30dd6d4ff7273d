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

/// `TERM` for a process given a terminal, unless its environment has one: the host's
/// `TERM`, else `xterm` (what Docker sets with `-t`). Full-screen programs need it.
pub fn add_term(env: &mut Vec<String>) {
    if env.iter().any(|kv| kv.starts_with("TERM=")) {
        return;
    }
    let term = std::env::var("TERM")
        .ok()
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "xterm".into());
    env.push(format!("TERM={term}"));
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

#[cfg(test)]
mod tests {
    use super::add_term;

    #[test]
    fn a_terminal_gets_a_term_unless_the_image_sets_one() {
        let mut env = vec!["A=1".to_owned()];
        add_term(&mut env);
        let term = std::env::var("TERM").ok().filter(|t| !t.is_empty());
        assert_eq!(
            env[1],
            format!("TERM={}", term.as_deref().unwrap_or("xterm"))
        );
        let mut env = vec!["TERM=vt100".to_owned()];
        add_term(&mut env);
        assert_eq!(env, ["TERM=vt100"]);
    }
}
