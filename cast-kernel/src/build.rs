//! Building a guest kernel for the job from a kernel source tarball.
//!
//! The config is `make tinyconfig` plus the fragment kept in this repository
//! (`cast-kernel/config/cast.config`, [`CONFIG_FRAGMENT`]), settled with
//! `make olddefconfig`; every option the fragment sets to `=y` must still be `=y`
//! afterwards ([`missing_options`]), or the build stops naming them. Everything is
//! built in, so the bundle has no modules and the guest init loads none.
//!
//! The source is Debian's `linux-source-6.1` package (its tarball in `/usr/src`) or
//! a tarball at a URL pinned by its SHA-256. The tree is unpacked and built in a
//! temporary directory beside the bundle (removed afterwards); `make vmlinux` is
//! bounded by a timeout; the bundle is written through [`cast_core::cache_entry`].
//! Host needs: gcc, make, bison, flex, bc, libelf-dev, xz-utils, tar, coreutils
//! (`timeout`), curl for a URL source.

use crate::bundle::KernelBundle;
use crate::prepare::{hex, io_err, place_bundle, run, PrepareError};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The config fragment applied on top of `make tinyconfig`.
pub const CONFIG_FRAGMENT: &str = include_str!("../config/cast.config");

/// Debian's kernel source tarball (`apt-get install linux-source-6.1`).
pub const DEBIAN_SOURCE_TARBALL: &str = "/usr/src/linux-source-6.1.tar.xz";

/// How long `make vmlinux` may take before it is stopped (~8 min on an idle 2-core
/// machine; a loaded one is much slower).
pub const DEFAULT_MAKE_TIMEOUT: Duration = Duration::from_secs(3 * 3600);

/// Where the kernel source comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildSource {
    /// A local tarball (`.tar.xz`, `.tar.gz`, …) whose top directory is the tree.
    Tarball(PathBuf),
    /// A tarball downloaded from `url` and checked against `sha256` (lowercase hex).
    Url {
        /// Where to download it.
        url: String,
        /// Its expected SHA-256.
        sha256: String,
    },
}

impl Default for BuildSource {
    fn default() -> Self {
        BuildSource::Tarball(DEBIAN_SOURCE_TARBALL.into())
    }
}

impl std::str::FromStr for BuildSource {
    type Err = BuildError;
    /// `debian` (Debian's linux-source-6.1), `URL#sha256=HEX`, or a tarball path.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "debian" {
            return Ok(BuildSource::default());
        }
        if s.starts_with("https://") || s.starts_with("http://") {
            let (url, sha) = s
                .split_once("#sha256=")
                .filter(|(_, h)| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
                .ok_or_else(|| BuildError::UnpinnedUrl(s.into()))?;
            return Ok(BuildSource::Url {
                url: url.into(),
                sha256: sha.to_ascii_lowercase(),
            });
        }
        Ok(BuildSource::Tarball(s.into()))
    }
}

/// A kernel could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A URL source without its SHA-256.
    #[error("kernel source URL {0:?} is not pinned: write it as URL#sha256=<64 hex digits>")]
    UnpinnedUrl(String),
    /// The tarball is not there.
    #[error("kernel source {0} not found (Debian: `apt-get install linux-source-6.1`)")]
    NoSource(PathBuf),
    /// The download does not match its pin.
    #[error("kernel source {url} has SHA-256 {actual}, expected {expected}")]
    Digest {
        /// The URL.
        url: String,
        /// The pinned digest.
        expected: String,
        /// What was downloaded.
        actual: String,
    },
    /// Options of the fragment that `make olddefconfig` did not keep.
    #[error(
        "the kernel config lacks {} required option(s): {}; a dependency is missing from \
         cast-kernel/config/cast.config or the option does not exist in this kernel version",
        .0.len(),
        .0.join(", ")
    )]
    MissingOptions(Vec<String>),
    /// The compile failed or timed out.
    #[error(
        "`make vmlinux` failed ({status}); the end of its log (`--keep-tree` keeps the \
         tree and build.log):\n{tail}"
    )]
    Make {
        /// Exit status (124: timed out).
        status: String,
        /// The last lines of the build log.
        tail: String,
    },
    /// Tools, I/O or writing the bundle.
    #[error(transparent)]
    Prepare(#[from] PrepareError),
}

/// Options of a build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The kernel source.
    pub source: BuildSource,
    /// `make -j`.
    pub jobs: u32,
    /// Bound on `make vmlinux`.
    pub timeout: Duration,
    /// Keep the build tree (and its log) instead of removing it.
    pub keep_tree: bool,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            source: BuildSource::default(),
            jobs: 2,
            timeout: DEFAULT_MAKE_TIMEOUT,
            keep_tree: false,
        }
    }
}

/// The label a built bundle carries as its `source`: the tarball and a digest of the
/// config fragment, so a bundle built from the same inputs can be reused.
pub fn build_label(source: &BuildSource) -> String {
    let config = hex(&Sha256::digest(CONFIG_FRAGMENT.as_bytes()));
    let from = match source {
        BuildSource::Tarball(p) => p.display().to_string(),
        BuildSource::Url { sha256, .. } => format!("sha256:{sha256}"),
    };
    format!("built:{from} config:{}", &config[..16])
}

/// The bundle at `dest` if it was built from the same source and config.
pub fn up_to_date(source: &BuildSource, dest: &Path) -> Option<KernelBundle> {
    KernelBundle::open(dest)
        .ok()
        .filter(|b| b.manifest.source == build_label(source))
}

/// Builds a kernel from `opts.source` and writes its bundle (no modules) at `dest`.
/// `progress` is told each step as it starts.
pub fn build(
    opts: &BuildOptions,
    dest: &Path,
    progress: &mut dyn FnMut(&str),
) -> Result<KernelBundle, BuildError> {
    let parent = dest.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(io_err(parent))?;
    let work = tempfile::Builder::new()
        .prefix(".kernel-build-")
        .tempdir_in(parent)
        .map_err(io_err(parent))?;
    // Removed when dropped, failure or not, unless the caller keeps it.
    let (work_dir, _removed_on_drop) = if opts.keep_tree {
        let kept = work.keep();
        progress(&format!("keeping the build tree at {}", kept.display()));
        (kept, None)
    } else {
        (work.path().to_owned(), Some(work))
    };
    let tarball = match &opts.source {
        BuildSource::Tarball(p) if p.is_file() => p.clone(),
        BuildSource::Tarball(p) => return Err(BuildError::NoSource(p.clone())),
        BuildSource::Url { url, sha256 } => {
            progress(&format!("downloading {url}"));
            download(url, sha256, &work_dir)?
        }
    };
    let tree = work_dir.join("linux");
    std::fs::create_dir_all(&tree).map_err(io_err(&tree))?;
    progress(&format!("unpacking {}", tarball.display()));
    run(
        Command::new("tar")
            .arg("-xf")
            .arg(&tarball)
            .arg("--strip-components=1")
            .arg("-C")
            .arg(&tree),
        "tar and xz-utils",
    )?;
    progress("configuring (tinyconfig + cast.config)");
    configure(&tree)?;
    progress(&format!("compiling vmlinux (make -j{})", opts.jobs));
    let log = work_dir.join("build.log");
    compile(&tree, opts, &log)?;
    let release = run(make(&tree).args(["-s", "kernelrelease"]), "make and gcc")?
        .trim()
        .to_owned();
    progress("writing the bundle");
    let label = build_label(&opts.source);
    let bundle = place_bundle(&tree.join("vmlinux"), None, Some(release), &label, dest)?;
    Ok(bundle)
}

/// `make ARCH=x86_64` in `tree`.
fn make(tree: &Path) -> Command {
    let mut cmd = Command::new("make");
    cmd.arg("ARCH=x86_64").current_dir(tree);
    cmd
}

/// tinyconfig, the fragment appended, olddefconfig, then the check.
fn configure(tree: &Path) -> Result<(), BuildError> {
    let hint = "make, gcc, bison, flex (apt-get install build-essential bison flex bc libelf-dev)";
    run(make(tree).arg("tinyconfig"), hint)?;
    let config = tree.join(".config");
    let mut text = std::fs::read_to_string(&config).map_err(io_err(&config))?;
    text.push_str(CONFIG_FRAGMENT);
    std::fs::write(&config, text).map_err(io_err(&config))?;
    run(make(tree).arg("olddefconfig"), hint)?;
    let settled = std::fs::read_to_string(&config).map_err(io_err(&config))?;
    let missing = missing_options(CONFIG_FRAGMENT, &settled);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(BuildError::MissingOptions(missing))
    }
}

/// The options `fragment` sets to `=y` that `config` does not have as `=y`.
pub fn missing_options(fragment: &str, config: &str) -> Vec<String> {
    let set: std::collections::HashSet<&str> = config.lines().map(str::trim).collect();
    fragment
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("CONFIG_") && l.ends_with("=y"))
        .filter(|l| !set.contains(l))
        .map(|l| l.trim_end_matches("=y").to_owned())
        .collect()
}

/// `make -jN vmlinux` under `timeout`, output to `log`.
fn compile(tree: &Path, opts: &BuildOptions, log: &Path) -> Result<(), BuildError> {
    let out = std::fs::File::create(log).map_err(io_err(log))?;
    let err = out.try_clone().map_err(io_err(log))?;
    // `timeout` puts make in its own process group and signals all of it.
    let status = Command::new("timeout")
        .arg("--kill-after=30")
        .arg(opts.timeout.as_secs().to_string())
        .arg("make")
        .arg("ARCH=x86_64")
        .arg(format!("-j{}", opts.jobs))
        .arg("vmlinux")
        .current_dir(tree)
        .stdout(out)
        .stderr(err)
        .status()
        .map_err(|e| PrepareError::Tool {
            command: "timeout make vmlinux".into(),
            detail: format!("{e} (install coreutils and make)"),
        })?;
    if status.success() {
        return Ok(());
    }
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(20)..].join("\n");
    let status = match status.code() {
        Some(124) => format!("timed out after {} s", opts.timeout.as_secs()),
        _ => status.to_string(),
    };
    Err(BuildError::Make { status, tail })
}

/// Downloads `url` into `dir` with curl and checks its SHA-256.
fn download(url: &str, sha256: &str, dir: &Path) -> Result<PathBuf, BuildError> {
    let name = url
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty())
        .unwrap_or("linux.tar");
    let path = dir.join(name);
    run(
        Command::new("curl")
            .args(["-fsSL", "--max-time", "1800", "-o"])
            .arg(&path)
            .arg(url),
        "curl",
    )?;
    let mut hasher = Sha256::new();
    let mut file = std::fs::File::open(&path).map_err(io_err(&path))?;
    std::io::copy(&mut file, &mut hasher).map_err(io_err(&path))?;
    let actual = hex(&hasher.finalize());
    if actual != sha256 {
        return Err(BuildError::Digest {
            url: url.into(),
            expected: sha256.into(),
            actual,
        });
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_options_names_what_did_not_stick() {
        let fragment = "# comment\nCONFIG_A=y\nCONFIG_B=y\n# CONFIG_C is not set\n";
        let config = "CONFIG_A=y\n# CONFIG_B is not set\n";
        assert_eq!(missing_options(fragment, config), vec!["CONFIG_B"]);
        assert!(missing_options(fragment, "CONFIG_A=y\nCONFIG_B=y\n").is_empty());
    }

    #[test]
    fn the_fragment_builds_in_what_the_runtime_needs() {
        for needed in [
            "CONFIG_VIRTIO_MMIO=y",
            "CONFIG_VIRTIO_BLK=y",
            "CONFIG_VIRTIO_CONSOLE=y",
            "CONFIG_VIRTIO_NET=y",
            "CONFIG_9P_FS=y",
            "CONFIG_EROFS_FS_ZIP_LZMA=y",
            "CONFIG_OVERLAY_FS=y",
            "CONFIG_PVH=y",
        ] {
            assert!(CONFIG_FRAGMENT.lines().any(|l| l == needed), "{needed}");
        }
        assert!(!CONFIG_FRAGMENT.contains("=m"), "modules are never built");
    }

    #[test]
    fn sources_parse_and_urls_must_be_pinned() {
        assert_eq!(
            "debian".parse::<BuildSource>().unwrap(),
            BuildSource::default()
        );
        let pinned = format!("https://example.org/linux.tar.xz#sha256={}", "a".repeat(64));
        assert!(matches!(
            pinned.parse::<BuildSource>().unwrap(),
            BuildSource::Url { ref url, .. } if url == "https://example.org/linux.tar.xz"
        ));
        assert!(matches!(
            "https://example.org/linux.tar.xz".parse::<BuildSource>(),
            Err(BuildError::UnpinnedUrl(_))
        ));
    }
}
