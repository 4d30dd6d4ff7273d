//! `cargo cast completions SHELL`: a completion script for bash, zsh, fish,
//! elvish or PowerShell, written to stdout.

use clap::CommandFactory;
use clap_complete::Shell;

/// Print a shell completion script.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  cargo cast completions bash > ~/.local/share/bash-completion/completions/cargo-cast
  cargo cast completions zsh > ~/.zfunc/_cargo-cast")]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Writes the script for `cargo` (the `cast` subcommand and everything below it).
pub fn run<C: CommandFactory>(args: CompletionsArgs) {
    let mut cmd = C::command();
    clap_complete::generate(args.shell, &mut cmd, "cargo", &mut std::io::stdout());
}
