//! `cargo cast kernel`: `fetch`, `list` and `use` ([`crate::kernels`]), and
//! `cargo cast kernel build`: compile a guest kernel for the job (tinyconfig plus
//! `cast-kernel/config/cast.config`, everything built in, no modules) and write its
//! bundle to the cast cache (`kernel/built`) or `--out`. Use the bundle with
//! `--kernel DIR` or `CAST_KERNEL=DIR`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use cast_kernel::{BuildOptions, BuildSource};

use crate::ui::Ui;

/// Guest kernels.
#[derive(Debug, clap::Args)]
pub struct KernelArgs {
    #[command(subcommand)]
    action: KernelAction,
}

#[derive(Debug, clap::Subcommand)]
enum KernelAction {
    Fetch(crate::kernels::FetchArgs),
    /// List the kernels in the cast cache (`*`: the default).
    List,
    Use(crate::kernels::UseArgs),
    Build(BuildArgs),
}

/// Build a guest kernel with everything built in (needs gcc, make, bison, flex, bc,
/// libelf-dev and a kernel source; ~8 min on 2 idle cores).
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  apt-get install linux-source-6.1 build-essential bison flex bc libelf-dev
  cargo cast kernel build                       # Debian's linux-source-6.1
  cargo cast kernel build --source linux-6.1.tar.xz --out ./kernel
  cargo cast kernel build --source 'https://…/linux-6.1.tar.xz#sha256=…'
  CAST_KERNEL=~/.cache/cast/kernel/built cargo cast run ./image")]
pub struct BuildArgs {
    /// `debian` (/usr/src/linux-source-6.1.tar.xz), a tarball path, or
    /// `URL#sha256=HEX`.
    #[arg(long, default_value = "debian")]
    source: String,
    /// Bundle directory (default: `<cache>/kernel/built`).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Parallel compile jobs (`make -j`).
    #[arg(long, short = 'j', default_value_t = 2)]
    jobs: u32,
    /// Stop the compile after this many minutes.
    #[arg(long, value_name = "MINUTES", default_value_t = 180)]
    timeout: u64,
    /// Rebuild even when the bundle was built from the same source and config.
    #[arg(long)]
    force: bool,
    /// Keep the unpacked, built tree (and its build.log) beside the bundle.
    #[arg(long)]
    keep_tree: bool,
}

/// Runs `cargo cast kernel …`.
pub fn run(args: KernelArgs, ui: &Ui) -> Result<()> {
    match args.action {
        KernelAction::Fetch(args) => crate::kernels::fetch(args, ui),
        KernelAction::List => crate::kernels::list(),
        KernelAction::Use(args) => crate::kernels::use_(args, ui),
        KernelAction::Build(args) => build(args, ui),
    }
}

fn build(args: BuildArgs, ui: &Ui) -> Result<()> {
    let out = match args.out {
        Some(out) => out,
        None => cast_core::cache_root::CacheRoot::from_env()
            .context("no cache directory: HOME is unset; pass --out")?
            .built_kernel(),
    };
    let source: BuildSource = args.source.parse()?;
    if !args.force {
        if let Some(bundle) = cast_kernel::up_to_date(&source, &out) {
            ui.status("Fresh", format!("kernel bundle {}", bundle.dir.display()));
            return Ok(());
        }
    }
    let opts = BuildOptions {
        source,
        jobs: args.jobs.max(1),
        timeout: Duration::from_secs(args.timeout.max(1) * 60),
        keep_tree: args.keep_tree,
    };
    let started = Instant::now();
    let bundle = cast_kernel::build(&opts, &out, &mut |step| ui.status("Kernel", step))
        .with_context(|| format!("building the kernel bundle at {}", out.display()))?;
    let size = std::fs::metadata(bundle.kernel_path()).map_or(0, |m| m.len());
    ui.status(
        "Finished",
        format!(
            "kernel {} ({}, no modules) at {} in {:.0} s",
            bundle.manifest.release.as_deref().unwrap_or("unknown"),
            crate::ui::bytes(size),
            bundle.dir.display(),
            started.elapsed().as_secs_f64()
        ),
    );
    Ok(())
}
