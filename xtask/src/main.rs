//! `cargo xtask`: project automation that is not part of the product.
//!
//! - `cargo xtask kernel [--source SRC] [--out DIR]` prepares a guest kernel bundle
//!   (default: Debian's `linux-image-cloud-amd64`, into the runtime's default location).
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
use cast_kernel::{debian_bundle_dir, KernelSource};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "cargo-cast project automation")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Prepare a guest kernel bundle (kernel + guest modules).
    Kernel {
        /// debian or debian:PACKAGE, deb:PATH, tree:DIR, file:PATH, or a path.
        #[arg(long, default_value = "debian")]
        source: String,
        /// Bundle directory (default: the runtime's default, ~/.cache/cast/kernel/default).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Keep an existing bundle instead of preparing it again.
        #[arg(long)]
        if_missing: bool,
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
        Task::Kernel {
            source,
            out,
            if_missing,
        } => kernel(Some(&source), out, if_missing),
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

/// A bundle made from a Debian package (whose drivers are modules) that lacks one
/// of the modules the guest now needs, e.g. `virtio_net`, added after it was made.
fn lacks_guest_modules(dir: &std::path::Path) -> bool {
    let Ok(bundle) = cast_kernel::KernelBundle::open(dir) else {
        return false;
    };
    bundle.manifest.source.starts_with("debian")
        && !bundle
            .manifest
            .modules
            .iter()
            .any(|m| m.ends_with("/virtio_net.ko"))
}

/// Prepares the kernel bundle from `source` (default: Debian's cloud kernel) at `out`
/// (default: `kernel/default`, the runtime's default unless a kernel was built).
fn kernel(source: Option<&str>, out: Option<PathBuf>, if_missing: bool) -> Result<()> {
    let out = match out {
        Some(out) => out,
        None => debian_bundle_dir().context("no cache directory (HOME unset?)")?,
    };
    if if_missing && out.join("bundle.json").exists() {
        if !lacks_guest_modules(&out) {
            eprintln!("kernel bundle already at {}", out.display());
            return Ok(());
        }
        eprintln!(
            "kernel bundle at {} predates the guest's network driver; preparing it again",
            out.display()
        );
    }
    let source: KernelSource = source.unwrap_or("debian").parse()?;
    let bundle = cast_kernel::prepare(&source, &out)
        .with_context(|| format!("preparing the kernel bundle at {}", out.display()))?;
    let m = &bundle.manifest;
    eprintln!(
        "kernel bundle ready at {}\n  source:  {}\n  release: {}\n  modules: {}",
        out.display(),
        m.source,
        m.release.as_deref().unwrap_or("unknown"),
        m.modules.len()
    );
    Ok(())
}
