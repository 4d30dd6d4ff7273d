//! `cargo xtask`: project automation that is not part of the product.
//!
//! - `cargo xtask kernel [ARGS]` is `cargo cast kernel fetch [ARGS]` from this checkout
//!   (default: Debian's `linux-image-cloud-amd64`, as the default kernel).
//! - `cargo xtask demo` casts `examples/hello` and runs the result.
//! - `cargo xtask setup` installs the host tools the tests need and the kernel bundle.
//! - `cargo xtask test [ARGS]` runs setup, then `cargo test --workspace [ARGS]`.
//! - `cargo xtask bench boot` compares `cargo cast run` with raw QEMU.
//! - `cargo xtask bench mount` compares host mounts with raw QEMU's 9p.
//! - `cargo xtask bench image` compares the EROFS writer with `mkfs.erofs`.
//! - `cargo xtask bench net` measures host↔guest throughput through the NAT and a
//!   published port against raw QEMU with the same options, and the network's boot
//!   cost.
//! - `cargo xtask bench build` times 5 RUN steps (cold, cached) against one run.
//! - `cargo xtask bench casted` times a casted executable (cold, warm) against
//!   `cargo cast run --rootfs`, and compares its size with its parts.

mod bench_boot;
mod bench_build;
mod bench_casted;
mod bench_image;
mod bench_mount;
mod bench_net;
mod demo;
mod setup;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "cargo-cast project automation")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// `cargo cast kernel fetch ARGS` (default: Debian's cloud kernel, the default).
    Kernel {
        /// Passed on to `cargo cast kernel fetch`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Cast examples/hello into target/demo/hello and run it.
    Demo,
    /// Install the host tools the tests need (Debian, as root) and the kernel bundle.
    Setup,
    /// Set up, then run every test of the workspace (`cargo test --workspace ARGS`).
    Test {
        /// Passed on to `cargo test`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Benchmarks (not tests): print figures side by side with their baseline.
    Bench {
        #[command(subcommand)]
        what: Bench,
    },
}

#[derive(Subcommand)]
enum Bench {
    /// Boot + run `true` via `cargo cast run` vs raw QEMU with a minimal init.
    Boot(bench_boot::Args),
    /// EROFS writer throughput, size and peak RSS vs mkfs.erofs.
    Image,
    /// Casted executable: cold and warm runs vs `cargo cast run`, size vs its parts.
    Casted,
    /// Host↔guest throughput (NAT, published port) vs raw QEMU; network boot cost.
    Net(bench_net::Args),
    /// Host mounts: 256 MiB and 10,000 files through `-v` vs raw QEMU's 9p.
    Mount(bench_mount::Args),
    /// A Containerfile with 5 RUN steps, cold and cached, vs one run of the commands.
    Build,
}

fn main() -> Result<()> {
    match Cli::parse().task {
        Task::Kernel { args } => kernel(&args),
        Task::Setup => setup::setup(),
        Task::Demo => demo::run(),
        Task::Test { args } => setup::test(&args),
        Task::Bench { what } => match what {
            Bench::Boot(args) => bench_boot::run(args),
            Bench::Image => bench_image::run(),
            Bench::Casted => bench_casted::run(),
            Bench::Net(args) => bench_net::run(args),
            Bench::Mount(args) => bench_mount::run(args),
            Bench::Build => bench_build::run(),
        },
    }
}

/// Runs this checkout's `cargo cast kernel fetch ARGS` (one implementation: the
/// product's).
fn kernel(args: &[String]) -> Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args(["run", "--quiet", "--locked", "--package", "cargo-cast"])
        .args(["--bin", "cargo-cast", "--", "cast", "kernel", "fetch"])
        .args(args)
        .status()
        .context("running cargo")?;
    anyhow::ensure!(
        status.success(),
        "cargo cast kernel fetch failed ({status})"
    );
    Ok(())
}
