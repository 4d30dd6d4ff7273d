//! `cargo cast`: the command line. Each subcommand lives in its own module; this file
//! only parses, dispatches, and turns errors into one message and an exit code.

mod build;
mod cache;
mod cargo_build;
mod completions;
mod info;
mod kernel;
mod kernels;
mod new;
mod run;
mod run_dir;
mod sign;
mod template;
mod ui;

use clap::{Parser, Subcommand};

/// Cargo invokes `cargo-cast cast ARGS...`; the outer enum swallows that `cast`.
#[derive(Parser)]
#[command(name = "cargo", bin_name = "cargo")]
enum Cargo {
    /// Cast a Containerfile into one native executable that runs it in a microVM.
    #[command(version, about, long_about = None, after_help = "Examples:
  cargo cast build ./image -o my-tool && ./my-tool --help
  cargo cast run ./image -- arg1 arg2
  cargo cast new my-tool
  cargo cast info ./image --json
  cargo cast cache prune
  cargo cast kernel fetch
  cargo cast kernel build")]
    Cast(Cli),
}

#[derive(clap::Args)]
struct Cli {
    #[command(flatten)]
    verbosity: ui::Verbosity,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Build(ui::WithVerbosity<Box<build::BuildArgs>>),
    Run(run::RunArgs),
    New(ui::WithVerbosity<new::NewArgs>),
    Info(info::InfoArgs),
    Sign(ui::WithVerbosity<sign::SignArgs>),
    Cache(ui::WithVerbosity<cache::CacheArgs>),
    Kernel(ui::WithVerbosity<kernel::KernelArgs>),
    Completions(completions::CompletionsArgs),
}

fn main() {
    let Cargo::Cast(cli) = Cargo::parse();
    let ui = |own: ui::SubVerbosity| ui::Ui::new(cli.verbosity.or(own));
    let code = match cli.command {
        Command::Run(args) => run::run(args),
        Command::Build(a) => report(build::run(*a.args, &ui(a.verbosity))),
        Command::New(a) => report(new::run(a.args, &ui(a.verbosity))),
        Command::Info(args) => report(info::run(args)),
        Command::Sign(a) => report(sign::run(a.args, &ui(a.verbosity))),
        Command::Cache(a) => report(cache::run(a.args, &ui(a.verbosity))),
        Command::Kernel(a) => report(kernel::run(a.args, &ui(a.verbosity))),
        Command::Completions(args) => {
            completions::run::<Cargo>(args);
            0
        }
    };
    std::process::exit(code);
}

/// Prints an error (with its causes) once; 0 or 1.
fn report(result: anyhow::Result<()>) -> i32 {
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{}", ui::report(&e));
            1
        }
    }
}
