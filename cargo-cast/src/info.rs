//! `cargo cast info [DIR|FILE] [--json]`: what a Containerfile will build (stages,
//! arguments, the run config it ends with), without building or downloading.

use std::path::PathBuf;

use anyhow::{Context as _, Result};

/// Show what a Containerfile builds.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  cargo cast info                      # ./Containerfile (or ./Dockerfile)
  cargo cast info image/Containerfile.dev
  cargo cast info . --json --build-arg VERSION=2 | jq .entrypoint")]
pub struct InfoArgs {
    /// A Containerfile, or a directory holding one [default: .]
    #[arg(value_name = "DIR|FILE")]
    pub path: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Set a build argument (NAME=VALUE).
    #[arg(long = "build-arg", value_name = "NAME=VALUE")]
    pub build_args: Vec<String>,
}

/// Runs `cargo cast info`.
pub fn run(args: InfoArgs) -> Result<()> {
    let path = args.path.unwrap_or_else(|| PathBuf::from("."));
    let build_args = args
        .build_args
        .iter()
        .map(|a| {
            a.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .with_context(|| format!("--build-arg {a:?}: expected NAME=VALUE"))
        })
        .collect::<Result<Vec<_>>>()?;
    let info = cast_build::info(&path, &build_args)?;
    if args.json {
        println!("{}", info.to_json());
    } else {
        print!("{}", info.to_table());
    }
    Ok(())
}
