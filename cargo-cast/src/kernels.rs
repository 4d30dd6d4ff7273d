//! `cargo cast kernel fetch | list | use`: the guest kernels in the cast cache, one
//! bundle per directory (`<cache>/kernel/NAME/`), and the default one
//! (`kernel/default`: a bundle, or a link to a sibling bundle) that builds and runs
//! use when nothing else is named. [`ensure_default`] is the first-use check of
//! `cargo cast build` and `cargo cast run`: it provisions the default kernel before
//! anything is compiled, or fails at once with the command to run.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use cast_core::CacheRoot;
use cast_kernel::{KernelBundle, KernelSource, DEBIAN_9P_PACKAGE, DEFAULT_DEBIAN_PACKAGE};

use crate::ui::Ui;

/// Fetch a guest kernel into the cast cache (Debian's package, a `.deb`, an
/// extracted package tree, a bare kernel, or a URL pinned by its SHA-256).
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  cargo cast kernel fetch                          # Debian's linux-image-cloud-amd64 (apt)
  cargo cast kernel fetch debian:linux-image-amd64 # Debian's generic kernel (has 9p)
  cargo cast kernel fetch ./linux-image-6.1.0-28-cloud-amd64_6.1.119-1_amd64.deb
  cargo cast kernel fetch 'https://…/linux-image-…_amd64.deb#sha256=…'
  cargo cast kernel fetch ./bzImage --name mine --use")]
pub struct FetchArgs {
    /// `debian[:PACKAGE]` (through apt), a `.deb`, an extracted tree (`boot/vmlinuz-*`
    /// + `lib/modules/`), a bare kernel (drivers built in), or `URL#sha256=HEX`.
    #[arg(value_name = "SOURCE", default_value = "debian")]
    source: String,
    /// The bundle's name under `<cache>/kernel/` [default: `default` for Debian's
    /// cloud kernel, `debian-generic` for its generic one, `sha256-HEX` for a URL,
    /// else the file or directory name].
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// Make it the default kernel afterwards (the first kernel fetched always is).
    #[arg(long = "use")]
    make_default: bool,
    /// Fetch again even when the bundle is already there from the same source.
    #[arg(long)]
    force: bool,
}

/// Make a kernel in the cache (or a bundle directory) the default.
#[derive(Debug, clap::Args)]
pub struct UseArgs {
    /// A name from `cargo cast kernel list`, or a bundle directory.
    #[arg(value_name = "NAME|DIR")]
    name: String,
}

/// Where a fetch comes from.
enum Source {
    Local(KernelSource),
    Url { url: String, sha256: String },
}

impl Source {
    fn parse(s: &str) -> Result<Source> {
        if s.starts_with("https://") || s.starts_with("http://") {
            let Some((url, sha)) = s.split_once("#sha256=") else {
                bail!("a kernel URL must be pinned: write it as URL#sha256=<64 hex digits>");
            };
            let sha256 = cast_build::config::value::check_sha256(sha)
                .map_err(|e| anyhow::anyhow!("{s}: {e}"))?;
            return Ok(Source::Url {
                url: url.into(),
                sha256,
            });
        }
        Ok(Source::Local(s.parse()?))
    }

    /// The bundle name used when `--name` is not given.
    fn default_name(&self) -> String {
        let stem = |p: &Path| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            name.trim_end_matches(".deb").to_owned()
        };
        match self {
            Source::Url { sha256, .. } => format!("sha256-{sha256}"),
            Source::Local(KernelSource::Debian { package }) => match package.as_str() {
                DEFAULT_DEBIAN_PACKAGE => "default".into(),
                DEBIAN_9P_PACKAGE => "debian-generic".into(),
                other => other.into(),
            },
            Source::Local(KernelSource::Deb(p) | KernelSource::Tree(p) | KernelSource::File(p)) => {
                stem(p)
            }
        }
    }

    /// Whether the bundle already at `dir` was made from this source (and, for
    /// Debian's packages, has every driver the guest now loads).
    fn made(&self, bundle: &KernelBundle) -> bool {
        let m = &bundle.manifest;
        match self {
            Source::Url { .. } => true,
            Source::Local(KernelSource::Debian { package }) => {
                let deb = m.source.strip_prefix("debian:").unwrap_or_default();
                debian_package_is(deb, package)
                    && m.modules.iter().any(|p| p.ends_with("/virtio_net.ko"))
            }
            Source::Local(KernelSource::Deb(p)) => m.source == format!("deb:{}", p.display()),
            Source::Local(KernelSource::Tree(p)) => m.source == format!("tree:{}", p.display()),
            Source::Local(KernelSource::File(p)) => m.source == format!("file:{}", p.display()),
        }
    }
}

/// Whether the file `deb` (`NAME_VERSION_ARCH.deb`) is `package` or what the meta
/// package `package` (`linux-image-FLAVOUR`) stands for (`linux-image-RELEASE-FLAVOUR`).
fn debian_package_is(deb: &str, package: &str) -> bool {
    let name = deb.split('_').next().unwrap_or_default();
    let flavour = package.strip_prefix("linux-image-").unwrap_or(package);
    name == package
        || name
            .strip_suffix(flavour)
            .and_then(|r| r.strip_suffix('-'))
            .is_some_and(|release| release.ends_with(|c: char| c.is_ascii_digit()))
}

fn kernels_dir() -> Result<PathBuf> {
    Ok(CacheRoot::from_env()
        .context("no cache directory: set CAST_CACHE_DIR or HOME")?
        .kernels())
}

/// Runs `cargo cast kernel fetch`.
pub fn fetch(args: FetchArgs, ui: &Ui) -> Result<()> {
    let source = Source::parse(&args.source)?;
    if let (Source::Url { .. }, Some(_)) = (&source, &args.name) {
        bail!(
            "a kernel fetched from a URL is kept as sha256-HEX, where casted crates \
             pinning it look; drop --name (--use makes it the default)"
        );
    }
    let name = args.name.unwrap_or_else(|| source.default_name());
    check_name(&name)?;
    let kernels = kernels_dir()?;
    let dest = kernels.join(&name);
    let fresh = KernelBundle::open(&dest)
        .ok()
        .filter(|b| !args.force && source.made(b));
    match fresh {
        Some(_) => ui.status("Fresh", format!("kernel bundle {}", dest.display())),
        None => drop(fetch_into(&source, &dest, &args.source, ui)?),
    }
    if args.make_default || (name != "default" && KernelBundle::locate_default().is_err()) {
        select(&kernels, &name, ui)?;
    }
    Ok(())
}

/// Makes the bundle for `source` at `dest`, with a spinner and one line saying what
/// was fetched and where it went.
fn fetch_into(source: &Source, dest: &Path, label: &str, ui: &Ui) -> Result<KernelBundle> {
    let started = Instant::now();
    let spinner = ui.spinner(&format!("fetching the guest kernel ({label})"));
    let bundle = match source {
        // Kept as `sha256-HEX`, where a casted crate pinning the URL looks.
        Source::Url { url, sha256 } => {
            cast_build::kernel::fetch(url, sha256, dest.parent().unwrap_or(Path::new(".")))?
        }
        Source::Local(source) => {
            // A link made by `cargo cast kernel use` is replaced, not followed.
            if dest.is_symlink() {
                std::fs::remove_file(dest)
                    .with_context(|| format!("cannot replace {}", dest.display()))?;
            }
            cast_kernel::prepare(source, dest)
                .with_context(|| format!("preparing the kernel bundle at {}", dest.display()))?
        }
    };
    spinner.finish_and_clear();
    let m = &bundle.manifest;
    let size = std::fs::metadata(bundle.kernel_path()).map_or(0, |m| m.len());
    ui.status(
        "Fetched",
        format!(
            "kernel {} ({}, {}, {} modules) into {} in {:.1} s",
            m.release.as_deref().unwrap_or("of unknown release"),
            m.source,
            crate::ui::bytes(size),
            m.modules.len(),
            bundle.dir.display(),
            started.elapsed().as_secs_f64()
        ),
    );
    Ok(bundle)
}

/// A bundle name is one path component that `list` shows.
fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.starts_with('.') || name.contains('/') {
        bail!("{name:?} is not a kernel name: one word, not starting with `.`");
    }
    Ok(())
}

/// Runs `cargo cast kernel list`.
pub fn list() -> Result<()> {
    let kernels = kernels_dir()?;
    let default = std::fs::read_link(kernels.join("default")).ok();
    let mut rows = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&kernels) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || (name == "default" && default.is_some()) {
                continue;
            }
            if let Ok(b) = KernelBundle::open(&entry.path()) {
                rows.push((name, b));
            }
        }
    }
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    if rows.is_empty() {
        eprintln!(
            "no kernels in {}; fetch one with `cargo cast kernel fetch`",
            kernels.display()
        );
        return Ok(());
    }
    let is_default = |name: &str| match &default {
        Some(link) => link.file_name().is_some_and(|n| n == name),
        None => name == "default",
    };
    for (name, b) in rows {
        let m = &b.manifest;
        let size = std::fs::metadata(b.kernel_path()).map_or(0, |m| m.len());
        println!(
            "{} {name:<20} {:<24} {:>10}  {:>3} modules  {}",
            if is_default(&name) { "*" } else { " " },
            m.release.as_deref().unwrap_or("-"),
            crate::ui::bytes(size),
            m.modules.len(),
            m.source
        );
    }
    Ok(())
}

/// Runs `cargo cast kernel use`.
pub fn use_(args: UseArgs, ui: &Ui) -> Result<()> {
    let kernels = kernels_dir()?;
    let path = Path::new(&args.name);
    if path.components().count() > 1 || path.is_absolute() {
        let dir = std::path::absolute(path)?;
        KernelBundle::open(&dir)?;
        return link_default(&kernels, &dir, ui);
    }
    select(&kernels, &args.name, ui)
}

/// Makes `kernel/NAME` the default.
fn select(kernels: &Path, name: &str, ui: &Ui) -> Result<()> {
    check_name(name)?;
    if name == "default" {
        KernelBundle::open(&kernels.join(name))?;
        return Ok(());
    }
    KernelBundle::open(&kernels.join(name))
        .with_context(|| format!("no kernel named {name:?} (see `cargo cast kernel list`)"))?;
    link_default(kernels, Path::new(name), ui)
}

/// Points `kernel/default` at `target` (a sibling's name or an absolute directory).
/// A default that is a bundle itself, not a link, is first kept under its release.
fn link_default(kernels: &Path, target: &Path, ui: &Ui) -> Result<()> {
    let default = kernels.join("default");
    if default.is_dir() && !default.is_symlink() {
        let b = KernelBundle::open(&default)?;
        let short = &b.manifest.kernel_sha256[..12.min(b.manifest.kernel_sha256.len())];
        let keep = kernels.join(format!("was-default-{short}"));
        std::fs::rename(&default, &keep)
            .with_context(|| format!("cannot move {} aside", default.display()))?;
        ui.status(
            "Kept",
            format!("the previous default as {}", keep.display()),
        );
    }
    let temp = kernels.join(format!(".default-link.{}", std::process::id()));
    let _ = std::fs::remove_file(&temp);
    std::os::unix::fs::symlink(target, &temp)
        .with_context(|| format!("cannot write {}", temp.display()))?;
    std::fs::rename(&temp, &default)
        .with_context(|| format!("cannot write {}", default.display()))?;
    ui.status("Default", format!("kernel {}", target.display()));
    Ok(())
}

/// The first-use check: when a build or run will need the default kernel and there is
/// none, provision Debian's where the host has apt, else fail at once naming the
/// command that gets one.
pub fn ensure_default(ui: &Ui) -> Result<()> {
    match KernelBundle::locate_default() {
        Ok(_) => return Ok(()),
        Err(cast_kernel::LocateError::NotFound { .. }) => {}
        Err(damaged) => {
            return Err(damaged).context(
                "the default guest kernel is damaged; fetch it again with \
                 `cargo cast kernel fetch --force`",
            )
        }
    }
    if !(on_path("apt-get") && on_path("apt-cache")) {
        bail!(
            "no guest kernel yet, and this host has no apt to fetch Debian's; get one with\n  \
             cargo cast kernel fetch PATH/linux-image-VERSION-cloud-amd64.deb\n\
             or `cargo cast kernel fetch 'URL#sha256=HEX'` (a Debian kernel package or a \
             kernel with its drivers built in), or an extracted package tree"
        );
    }
    ui.status(
        "Fetching",
        format!("the guest kernel (first use): Debian's {DEFAULT_DEBIAN_PACKAGE} through apt"),
    );
    let kernels = kernels_dir()?;
    let source = Source::Local(KernelSource::Debian {
        package: DEFAULT_DEBIAN_PACKAGE.into(),
    });
    fetch_into(&source, &kernels.join("default"), "debian", ui).context(
        "fetching the default guest kernel failed; fetch one yourself with \
         `cargo cast kernel fetch SOURCE` (see `cargo cast kernel fetch --help`)",
    )?;
    Ok(())
}

fn on_path(command: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(command).is_file()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_debian_bundle_is_told_apart_by_its_flavour() {
        let cloud = "linux-image-6.1.0-57-cloud-amd64_6.1.192-3_amd64.deb";
        let generic = "linux-image-6.1.0-57-amd64_6.1.192-3_amd64.deb";
        assert!(debian_package_is(cloud, "linux-image-cloud-amd64"));
        assert!(!debian_package_is(cloud, "linux-image-amd64"));
        assert!(debian_package_is(generic, "linux-image-amd64"));
        assert!(!debian_package_is(generic, "linux-image-cloud-amd64"));
        assert!(debian_package_is(cloud, "linux-image-6.1.0-57-cloud-amd64"));
    }

    #[test]
    fn names_come_from_the_source() {
        let name = |s: &str| Source::parse(s).unwrap().default_name();
        assert_eq!(name("debian"), "default");
        assert_eq!(name("debian:linux-image-amd64"), "debian-generic");
        assert_eq!(
            name("deb:/tmp/linux-image-6.1_amd64.deb"),
            "linux-image-6.1_amd64"
        );
        let sha = "ab".repeat(32);
        assert_eq!(
            name(&format!("https://h/k.deb#sha256={sha}")),
            format!("sha256-{sha}")
        );
        assert!(Source::parse("https://h/k.deb").is_err());
    }
}
