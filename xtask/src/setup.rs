//! `cargo xtask setup` / `cargo xtask test`: make a fresh machine ready for the tests,
//! then run them.
//!
//! The host tools the tests use are listed once, in [`TOOLS`]. On Debian/Ubuntu as root
//! the missing ones are installed with apt-get; elsewhere the command says what to
//! install. The guest kernel bundles are prepared if there are none: Debian's cloud
//! kernel, Debian's generic kernel (9p, for the mount tests' kernel without it), and
//! the kernel built for the job (`cargo cast kernel build`: ~8 min on 2 cores, once;
//! rebuilt only when its source or `cast-kernel/config/cast.config` changes), which
//! the runtime then uses by default.

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
    // The Debian roots of the RUN test and the built kernel's compatibility check,
    // and the RUN test's local repository (`cast_tests::debian`).
    ("mmdebstrap", "mmdebstrap"),
    ("apt-ftparchive", "apt-utils"),
    // `cargo xtask bench boot`'s baseline (bench_boot::BASELINE_TOOLS).
    ("gcc", "gcc"),
    ("cpio", "cpio"),
    ("xz", "xz-utils"),
    // Building the guest kernel (cast_kernel::build).
    ("make", "make"),
    ("bison", "bison"),
    ("flex", "flex"),
    ("bc", "bc"),
    ("timeout", "coreutils"),
];

/// (file, Debian package that provides it): what building the guest kernel needs
/// besides [`TOOLS`].
const FILES: &[(&str, &str)] = &[
    ("/usr/include/libelf.h", "libelf-dev"),
    (cast_kernel::DEBIAN_SOURCE_TARBALL, "linux-source-6.1"),
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
        .chain(
            FILES
                .iter()
                .filter(|(file, _)| !Path::new(file).exists())
                .map(|(_, pkg)| *pkg),
        )
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
    crate::kernel(&[format!("debian:{}", cast_kernel::DEBIAN_9P_PACKAGE)])?;
    build_kernel()
}

/// Builds the guest kernel into `kernel/built` unless it was built from the same
/// source and config.
fn build_kernel() -> Result<()> {
    let out = cast_core::CacheRoot::from_env()
        .context("no cache directory (HOME unset?)")?
        .built_kernel();
    let source = cast_kernel::BuildSource::default();
    if cast_kernel::up_to_date(&source, &out).is_some() {
        eprintln!("built kernel already at {}", out.display());
        return Ok(());
    }
    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get() as u32);
    eprintln!(
        "building the guest kernel at {} (make -j{jobs}; ~8 min on 2 cores)",
        out.display()
    );
    let opts = cast_kernel::BuildOptions {
        source,
        jobs,
        ..Default::default()
    };
    let bundle = cast_kernel::build(&opts, &out, &mut |step| eprintln!("  {step}"))
        .with_context(|| format!("building the kernel bundle at {}", out.display()))?;
    eprintln!(
        "built kernel {} ready at {}",
        bundle.manifest.release.as_deref().unwrap_or("unknown"),
        out.display()
    );
    Ok(())
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
