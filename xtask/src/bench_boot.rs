//! `cargo xtask bench boot`: placeholder until the runtime lands.

use anyhow::Result;

/// Options of the boot benchmark.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs the benchmark.
pub fn run(_args: Args) -> Result<()> {
    anyhow::bail!("not yet")
}
