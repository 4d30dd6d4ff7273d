//! A RUN's output: streamed to the build's stderr as it comes, its tail kept for
//! the error when the command fails.

use std::io::Write;
use std::sync::{Arc, Mutex};

/// Bytes of output kept.
const KEEP: usize = 16 * 1024;

/// Echoes to stderr and keeps the last [`KEEP`] bytes.
#[derive(Debug, Clone, Default)]
pub struct Tail(Arc<Mutex<Vec<u8>>>);

impl Tail {
    /// An empty tail.
    pub fn new() -> Self {
        Self::default()
    }

    /// The last `n` lines.
    pub fn last_lines(&self, n: usize) -> Vec<String> {
        let all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let text = String::from_utf8_lossy(&all);
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..]
            .iter()
            .map(|l| l.to_string())
            .collect()
    }
}

impl Write for Tail {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        all.extend_from_slice(buf);
        if all.len() > 2 * KEEP {
            let cut = all.len() - KEEP;
            all.drain(..cut);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}
