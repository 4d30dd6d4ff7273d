//! `cargo cast new NAME`: a casted crate to start from — the template's manifest
//! (with `[package.metadata.cast]`), build script, one-line `main.rs`, a
//! Containerfile with a script to run, and a `.containerignore`.

use std::path::PathBuf;

use anyhow::{bail, Result};

use crate::template::{self, Metadata};
use crate::ui::Ui;

/// Create a casted crate.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  cargo cast new my-tool && cd my-tool && cargo cast build
  cargo cast new my-tool --path tools/my-tool
  cargo install --path my-tool            # installs the casted executable")]
pub struct NewArgs {
    /// Package name.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Directory to create [default: ./NAME].
    #[arg(long, value_name = "DIR")]
    pub path: Option<PathBuf>,
}

/// Runs `cargo cast new`.
pub fn run(args: NewArgs, ui: &Ui) -> Result<()> {
    let name = template::package_name(&args.name);
    if name != args.name {
        bail!("{:?} is not a package name; try {name:?}", args.name);
    }
    let dir = args.path.unwrap_or_else(|| PathBuf::from(&args.name));
    if dir.exists() && std::fs::read_dir(&dir)?.next().is_some() {
        bail!(
            "{} already exists and is not empty; pick another NAME or --path",
            dir.display()
        );
    }
    template::write(&dir, &template::files(&name, &Metadata::default(), true))?;
    ui.status(
        "Created",
        format!("casted crate `{name}` in {}", dir.display()),
    );
    if !ui.quiet {
        eprintln!(
            "\nNext: edit {0}/Containerfile, then\n  cd {0} && cargo cast build && ./target/debug/{name} hi",
            dir.display()
        );
    }
    Ok(())
}
