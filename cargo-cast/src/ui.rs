//! What the user sees besides the results: status lines and spinners on stderr,
//! quiet with `-q`, Cargo's own output with `-v`, and no spinner when stderr is not
//! a terminal (CI logs stay clean).

use std::io::IsTerminal as _;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// Output verbosity: before the subcommand, and after it on every subcommand but
/// `run` (where `-v` mounts a volume, as in `docker run`).
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct Verbosity {
    /// Print only errors.
    #[arg(short, long, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Show Cargo's output and more detail.
    #[arg(short, long)]
    pub verbose: bool,
}

/// [`Verbosity`] after a subcommand: also taken after that subcommand's own
/// subcommands (`cargo cast cache prune -q`).
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct SubVerbosity {
    /// Print only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Show Cargo's output and more detail.
    #[arg(short, long, global = true)]
    pub verbose: bool,
}

impl Verbosity {
    /// Either level's flags (`cargo cast -v build` and `cargo cast build -v`).
    pub fn or(self, other: SubVerbosity) -> Verbosity {
        Verbosity {
            quiet: self.quiet || other.quiet,
            verbose: self.verbose || other.verbose,
        }
    }
}

/// A subcommand's arguments with the verbosity flags.
#[derive(Debug, clap::Args)]
pub struct WithVerbosity<A: clap::Args> {
    /// The subcommand's own arguments.
    #[command(flatten)]
    pub args: A,
    /// `-q` / `-v`.
    #[command(flatten)]
    pub verbosity: SubVerbosity,
}

/// The output channel of one command.
#[derive(Debug, Clone, Copy)]
pub struct Ui {
    /// `-q`.
    pub quiet: bool,
    /// `-v`.
    pub verbose: bool,
    terminal: bool,
}

impl Ui {
    /// From the flags and whether stderr is a terminal.
    pub fn new(v: Verbosity) -> Self {
        Self {
            quiet: v.quiet,
            verbose: v.verbose,
            terminal: std::io::stderr().is_terminal(),
        }
    }

    /// A status line (`   Casting name`), unless quiet.
    pub fn status(&self, verb: &str, message: impl std::fmt::Display) {
        if !self.quiet {
            eprintln!("{verb:>12} {message}");
        }
    }

    /// A note, unless quiet.
    pub fn note(&self, message: impl std::fmt::Display) {
        if !self.quiet {
            eprintln!("note: {message}");
        }
    }

    /// A warning, always shown.
    pub fn warn(&self, message: impl std::fmt::Display) {
        eprintln!("warning: {message}");
    }

    /// A spinner, hidden unless stderr is a terminal and not quiet/verbose.
    pub fn spinner(&self, message: &str) -> ProgressBar {
        if self.quiet || self.verbose || !self.terminal {
            return ProgressBar::hidden();
        }
        let pb = ProgressBar::new_spinner();
        pb.set_style(
            ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        pb.set_message(message.to_owned());
        pb.enable_steady_tick(Duration::from_millis(120));
        pb
    }
}

/// A size for people: `512 B`, `12.3 KiB`, `120.0 MiB`, `1.9 GiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// An error and its causes, one per line, for the final message.
pub fn report(e: &anyhow::Error) -> String {
    let mut s = format!("error: {e}");
    for cause in e.chain().skip(1) {
        s.push_str(&format!("\n  caused by: {cause}"));
    }
    if e.chain().any(cast_core::disk_full::is_disk_full) {
        let cache = cast_core::cache_root::dir();
        s.push_str(&format!(
            "\n  hint: {}",
            cast_core::disk_full::hint(cache.as_deref())
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_pick_their_unit() {
        assert_eq!(super::bytes(0), "0 B");
        assert_eq!(super::bytes(1023), "1023 B");
        assert_eq!(super::bytes(1536), "1.5 KiB");
        assert_eq!(super::bytes(120 << 20), "120.0 MiB");
        assert_eq!(super::bytes(3 << 30), "3.0 GiB");
    }
}
