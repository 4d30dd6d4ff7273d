//! Making a kernel bundle from a kernel source.
//!
//! Sources are pluggable ([`KernelSource`]); every one ends as an extracted tree
//! (`boot/vmlinuz-*` + `lib/modules/<release>/`) or a bare kernel file, from which the
//! bundle is written to a temporary directory beside the destination and renamed
//! into place ([`cast_core::cache_entry`]), so a half-made bundle is never found.

use crate::bundle::{BundleManifest, KernelBundle, BUNDLE_FORMAT};
use crate::modules::{self, ModuleError, GUEST_MODULES};
use crate::vmlinux::{extract_vmlinux, VmlinuxError};
use cast_core::cache_entry::{Placed, StagedDir};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where a kernel comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelSource {
    /// A Debian package fetched with `apt-get download` (a meta package such as
    /// `linux-image-cloud-amd64` is resolved to the image package it depends on).
    Debian {
        /// The package name.
        package: String,
    },
    /// A downloaded `.deb` file.
    Deb(PathBuf),
    /// An extracted package tree (`boot/vmlinuz-*`, `lib/modules/<release>/`).
    Tree(PathBuf),
    /// A bare kernel image (bzImage or vmlinux) whose drivers are all built in.
    File(PathBuf),
}

/// The Debian kernel used when nothing else is asked for: small, virtio drivers as
/// modules, boots under TCG (see ARCHITECTURE.md).
pub const DEFAULT_DEBIAN_PACKAGE: &str = "linux-image-cloud-amd64";

/// Debian's generic kernel: like the cloud kernel, plus 9p as modules (host mounts).
pub const DEBIAN_9P_PACKAGE: &str = "linux-image-amd64";

impl std::str::FromStr for KernelSource {
    type Err = PrepareError;
    /// `debian[:PACKAGE]`, `deb:PATH`, `tree:DIR`, `file:PATH`, or a bare path (a
    /// `.deb`, a directory, or a kernel file).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (kind, rest) = s.split_once(':').unwrap_or((s, ""));
        Ok(match kind {
            "debian" if rest.is_empty() => KernelSource::Debian {
                package: DEFAULT_DEBIAN_PACKAGE.into(),
            },
            "debian" => KernelSource::Debian {
                package: rest.into(),
            },
            "deb" => KernelSource::Deb(rest.into()),
            "tree" => KernelSource::Tree(rest.into()),
            "file" => KernelSource::File(rest.into()),
            _ => {
                let path = PathBuf::from(s);
                if path.is_dir() {
                    KernelSource::Tree(path)
                } else if s.ends_with(".deb") {
                    KernelSource::Deb(path)
                } else if path.is_file() {
                    KernelSource::File(path)
                } else {
                    return Err(PrepareError::UnknownSource(s.into()));
                }
            }
        })
    }
}

/// A bundle could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// The source string names nothing.
    #[error("unknown kernel source {0:?}: use debian[:PACKAGE], deb:PATH, tree:DIR, file:PATH or an existing path")]
    UnknownSource(String),
    /// A host tool failed or is missing.
    #[error("`{command}` failed: {detail}")]
    Tool {
        /// The command line.
        command: String,
        /// Its stderr or the spawn error; says what to install when missing.
        detail: String,
    },
    /// The tree has no kernel image.
    #[error("no kernel image (boot/vmlinuz-*) in {0}")]
    NoKernel(PathBuf),
    /// File I/O failed.
    #[error("cannot write or read {path}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The kernel image is not usable.
    #[error("cannot use kernel image {path}")]
    Kernel {
        /// The image.
        path: PathBuf,
        /// Why.
        #[source]
        source: VmlinuxError,
    },
    /// The module tree is not usable.
    #[error(transparent)]
    Modules(#[from] ModuleError),
    /// A `.deb` could not be unpacked.
    #[error(transparent)]
    Deb(#[from] crate::deb::DebError),
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> PrepareError + '_ {
    move |source| PrepareError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Makes the bundle for `source` at `dest`, replacing what is there.
pub fn prepare(source: &KernelSource, dest: &Path) -> Result<KernelBundle, PrepareError> {
    let parent = dest.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(io_err(parent))?;
    let work = tempfile::Builder::new()
        .prefix(".kernel-work-")
        .tempdir_in(parent)
        .map_err(io_err(parent))?;
    let (image, module_tree, label) = match source {
        KernelSource::File(path) => (path.clone(), None, format!("file:{}", path.display())),
        KernelSource::Tree(dir) => {
            let (image, tree) = find_in_tree(dir)?;
            (image, tree, format!("tree:{}", dir.display()))
        }
        KernelSource::Deb(deb) => {
            let tree = work.path().join("tree");
            extract_deb(deb, &tree)?;
            let (image, modules) = find_in_tree(&tree)?;
            (image, modules, format!("deb:{}", deb.display()))
        }
        KernelSource::Debian { package } => {
            let deb = apt_download(package, work.path())?;
            let tree = work.path().join("tree");
            extract_deb(&deb, &tree)?;
            let (image, modules) = find_in_tree(&tree)?;
            let name = deb
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            (image, modules, format!("debian:{name}"))
        }
    };
    let release = module_tree
        .as_deref()
        .and_then(|t| t.file_name())
        .map(|n| n.to_string_lossy().into_owned());
    place_bundle(&image, module_tree.as_deref(), release, &label, dest)
}

/// Writes the bundle of `image` (and the guest modules of `module_tree`, if any) at
/// `dest` through a staged directory, replacing what is there.
pub(crate) fn place_bundle(
    image: &Path,
    module_tree: Option<&Path>,
    release: Option<String>,
    label: &str,
    dest: &Path,
) -> Result<KernelBundle, PrepareError> {
    let parent = dest.parent().unwrap_or(Path::new("."));
    let staging = StagedDir::new(dest).map_err(io_err(parent))?;
    let manifest = write_bundle(image, module_tree, release, label, staging.path())?;
    match staging.replace().map_err(io_err(dest))? {
        Placed::Ours => Ok(KernelBundle {
            dir: dest.to_owned(),
            manifest,
        }),
        // Another prepare of `dest` finished between our replace's two renames.
        Placed::Theirs => KernelBundle::open(dest).map_err(|e| PrepareError::Io {
            path: dest.to_owned(),
            source: std::io::Error::other(e),
        }),
    }
}

/// Writes vmlinux, modules and bundle.json into `out`.
fn write_bundle(
    image: &Path,
    module_tree: Option<&Path>,
    release: Option<String>,
    label: &str,
    out: &Path,
) -> Result<BundleManifest, PrepareError> {
    std::fs::create_dir_all(out.join("modules")).map_err(io_err(out))?;
    let raw = std::fs::read(image).map_err(io_err(image))?;
    let vmlinux = extract_vmlinux(&raw).map_err(|source| PrepareError::Kernel {
        path: image.to_owned(),
        source,
    })?;
    let kernel_path = out.join("vmlinux");
    std::fs::write(&kernel_path, &vmlinux).map_err(io_err(&kernel_path))?;
    let mut modules = Vec::new();
    if let Some(tree) = module_tree {
        for (name, path) in modules::resolve(tree, GUEST_MODULES)? {
            let rel = format!("modules/{name}.ko");
            std::fs::copy(&path, out.join(&rel)).map_err(io_err(&path))?;
            modules.push(rel);
        }
    }
    let manifest = BundleManifest {
        format: BUNDLE_FORMAT,
        release,
        source: label.to_owned(),
        kernel: "vmlinux".into(),
        kernel_sha256: hex(&Sha256::digest(&vmlinux)),
        modules,
    };
    let json = serde_json::to_vec_pretty(&manifest).expect("manifest serialises");
    let path = out.join("bundle.json");
    std::fs::write(&path, json).map_err(io_err(&path))?;
    Ok(manifest)
}

/// Lowercase hex of a digest.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `boot/vmlinuz-*` and the matching `lib/modules/<release>` of an extracted package.
fn find_in_tree(dir: &Path) -> Result<(PathBuf, Option<PathBuf>), PrepareError> {
    let boot = dir.join("boot");
    let entries = std::fs::read_dir(&boot).map_err(|_| PrepareError::NoKernel(dir.to_owned()))?;
    let mut images: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("vmlinuz-"))
        })
        .collect();
    images.sort();
    let image = images
        .pop()
        .ok_or_else(|| PrepareError::NoKernel(dir.to_owned()))?;
    let release = image
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .trim_start_matches("vmlinuz-");
    let modules = dir.join("lib/modules").join(release);
    Ok((image, modules.is_dir().then_some(modules)))
}

/// Runs a host tool, turning failure into a message that says what to install.
pub(crate) fn run(cmd: &mut Command, package_hint: &str) -> Result<String, PrepareError> {
    let command = format!("{cmd:?}").replace('"', "");
    let out = cmd.output().map_err(|e| PrepareError::Tool {
        command: command.clone(),
        detail: format!("{e} (install {package_hint})"),
    })?;
    if !out.status.success() {
        return Err(PrepareError::Tool {
            command,
            detail: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn extract_deb(deb: &Path, into: &Path) -> Result<(), PrepareError> {
    Ok(crate::deb::extract(deb, into)?)
}

/// Downloads `package` (resolving a meta package to the image package) into `dir`.
fn apt_download(package: &str, dir: &Path) -> Result<PathBuf, PrepareError> {
    let depends = run(Command::new("apt-cache").args(["depends", package]), "apt")?;
    let real = depends
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Depends: "))
        .find(|d| d.starts_with("linux-image-"))
        .unwrap_or(package)
        .to_owned();
    run(
        Command::new("apt-get")
            .args(["download", &real])
            .current_dir(dir),
        "apt",
    )?;
    std::fs::read_dir(dir)
        .map_err(io_err(dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .ok_or_else(|| PrepareError::Tool {
            command: format!("apt-get download {real}"),
            detail: "no .deb was written".into(),
        })
}
