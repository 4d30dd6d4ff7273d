//! `cargo xtask setup` / `cargo xtask test`: make a fresh machine ready for the tests,
//! then run them.
//!
//! The host tools the tests use are listed once, in [`TOOLS`]. On Debian/Ubuntu as root
//! the missing ones are installed with apt-get; elsewhere the command says what to
//! install. The guest kernel bundles are prepared if there are none: the default
//! (Debian's cloud kernel) and Debian's generic kernel, which has 9p for the mount
//! tests.

use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::Command;

/// (command the tests run, Debian package that provides it).
const TOOLS: &[(&str, &str)] = &[
    ("qemu-system-x86_64", "qemu-system-x86"),
    ("busybox", "busybox-static"),
    ("mkfs.erofs", "erofs-utils"),
    ("fsck.erofs", "erofs-utils"),
    ("mke2fs", "e2fsprogs"),
    ("docker-registry", "docker-registry"),
    ("htpasswd", "apache2-utils"),
    // `cargo xtask bench boot`'s baseline (bench_boot::BASELINE_TOOLS).
    ("gcc", "gcc"),
    ("cpio", "cpio"),
    ("xz", "xz-utils"),
];

fn on_path(command: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(command).is_file()))
        .unwrap_or(false)
}

/// Installs missing host tools (or says which) and prepares the kernel bundle.
pub fn setup() -> Result<()> {
    let mut missing: Vec<&str> = TOOLS
        .iter()
        .filter(|(cmd, _)| {
            !on_path(cmd) || (*cmd == "busybox" && !Path::new("/bin/busybox").exists())
        })
        .map(|(_, pkg)| *pkg)
        .collect();
    missing.dedup();
    if !missing.is_empty() {
        let root = is_root();
        if !(root && on_path("apt-get")) {
            bail!(
                "the tests need these packages: {} (Debian/Ubuntu: sudo apt-get install -y {})",
                missing.join(", "),
                missing.join(" ")
            );
        }
        eprintln!("installing {}", missing.join(" "));
        run(Command::new("apt-get").args(["update", "-qq"]))?;
        run(Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"))?;
    }
    // Both are kept when already there from Debian (`fetch` says "Fresh").
    crate::kernel(&[])?;
    // The mount tests need 9p, which the default (cloud) kernel lacks.
    crate::kernel(&[format!("debian:{}", cast_kernel::DEBIAN_9P_PACKAGE)])
}

/// Runs setup, then the workspace tests with any extra `cargo test` arguments.
pub fn test(extra: &[String]) -> Result<()> {
    setup()?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    run(Command::new(cargo)
        .args(["test", "--workspace", "--locked"])
        .args(extra))
}

fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("running {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed ({status})");
    }
    Ok(())
}

fn is_root() -> bool {
    // The effective uid of this process, from /proc (no libc needed here).
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::TOOLS;
    use std::path::Path;

    #[test]
    fn setup_installs_every_tool_the_benchmarks_run() {
        for tool in crate::bench_boot::BASELINE_TOOLS {
            assert!(
                TOOLS.iter().any(|(cmd, _)| *cmd == tool),
                "`cargo xtask bench boot` needs {tool}, which setup does not install"
            );
        }
    }

    #[test]
    fn no_cargo_alias_of_this_repository_shadows_one_of_its_subcommands() {
        // Cargo warns (and will refuse) when an alias has the name of an installed
        // `cargo-NAME`: `cargo cast` inside the repository must not be an alias.
        let ws = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let config = std::fs::read_to_string(ws.join(".cargo/config.toml")).unwrap();
        let mut in_alias = false;
        for line in config.lines().map(str::trim) {
            if line.starts_with('[') {
                in_alias = line == "[alias]";
            } else if let (true, Some((name, _))) = (in_alias, line.split_once('=')) {
                let subcommand = format!("cargo-{}", name.trim());
                assert!(
                    !ws.join(&subcommand).join("Cargo.toml").exists(),
                    "the alias `{}` shadows the workspace's own `{subcommand}`",
                    name.trim()
                );
            }
        }
    }
}
