//! `cargo cast`: the command line. Each subcommand lives in its own module; this file
//! only parses, dispatches, and turns errors into one message and an exit code.

mod run;

use clap::{Parser, Subcommand};

/// Cargo invokes `cargo-cast cast ARGS...`; the outer enum swallows that `cast`.
#[derive(Parser)]
#[command(name = "cargo", bin_name = "cargo")]
enum Cargo {
    /// Cast a Containerfile into one native executable that runs it in a microVM.
    #[command(version, about, long_about = None)]
    Cast(Cli),
}

#[derive(clap::Args)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Run(run::RunArgs),
}

fn main() {
    let Cargo::Cast(cli) = Cargo::parse();
    let code = match cli.command {
        Command::Run(args) => run::run(args),
    };
    std::process::exit(code);
}
