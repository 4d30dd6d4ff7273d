//! Console diagnostics: quiet unless the kernel command line says `cast_debug=1`.

use std::io::Write;
use std::time::Instant;

/// Writes step timings to the console (the serial port) when debugging.
#[derive(Debug)]
pub struct Log {
    debug: bool,
    start: Instant,
}

impl Log {
    /// Debug mode comes from `cast_debug=1`, which the kernel hands to init as an
    /// environment variable.
    pub fn from_kernel_cmdline() -> Self {
        Log {
            debug: std::env::var("cast_debug").is_ok_and(|v| v == "1"),
            start: Instant::now(),
        }
    }

    /// Records that a boot step finished (debug only).
    pub fn step(&self, what: &str) {
        if self.debug {
            self.always(&format!(
                "cast-init: +{:.1} ms {what}",
                self.start.elapsed().as_secs_f64() * 1e3
            ));
        }
    }

    /// Prints a line on the console regardless of debug mode.
    pub fn always(&self, line: &str) {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{line}");
    }
}
