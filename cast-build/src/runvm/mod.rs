//! RUN in build VMs: each RUN boots the same kernel and guest init as a casted
//! executable, in build mode, over the stage's tree so far, and applies what the
//! command changed as a layer.
//!
//! 1. The step's cache key: the tree's content digest (`digest`) + the RUN as
//!    evaluated (argv, env, user, workdir, mounts, network) + the platform. A hit
//!    applies the stored layer and boots nothing.
//! 2. Disks (`disks`): the tree as a plain EROFS image (the read-only lower), a
//!    sparse ext4 scratch disk (the overlay's upper: writes are bounded by the disk,
//!    not guest memory), a sparse raw disk the guest writes the layer tar onto, and
//!    one disk per bind/cache mount. No 9p: everything is a block device.
//! 3. The VM runs the command through `cast_runner::run_to_end` with output streamed
//!    to stderr and its tail kept; a non-zero exit is a [`BuildError::RunFailed`]
//!    with the RUN's location, the code and the last lines, and nothing is cached.
//! 4. The layer (whiteouts already OCI) goes into the step cache, then onto the tree
//!    through `cast_rootfs::layer::apply_layer`.

mod digest;
mod disks;
mod output;

use std::io::{Read, Seek};
use std::path::{Path, PathBuf};

use cast_core::VmSettings;
use cast_proto::{BuildMount, BuildMountKind, BuildSpec, StartSpec};
use cast_rootfs::ImageTree;
use cast_runner::{KernelImage, RunRequest};

use crate::builder::{BuildError, RunInputs, RunSteps};
use crate::cache::KeyBuilder;
use crate::config::KernelSpec;
use crate::diag::Diagnostic;
use crate::stages::{RunMount, RunOp};

pub use digest::tree_digest;

/// Runs RUN steps in build VMs (see the module documentation).
#[derive(Debug)]
pub struct VmRunner {
    kernel: Option<KernelSpec>,
    /// The kernel bundle and initrd, loaded at the first RUN that needs a VM.
    boot: Option<(cast_kernel::KernelBundle, Vec<u8>)>,
    /// `<cache>/build`: step layers live in `step-<key>/layer.tar`.
    cache_root: PathBuf,
    /// `<cache>/run-cache`: the disks of `RUN --mount=type=cache`.
    mount_cache: PathBuf,
    platform_arch: String,
    settings: VmSettings,
    /// Secrets by id (`--secret id=...,src=...`).
    secrets: Vec<crate::secret::Secret>,
    /// VMs booted so far.
    pub boots: u32,
    /// RUN steps taken from the step cache.
    pub cached_steps: u32,
    /// `--no-cache`: run every step, and let its layer replace the cached one.
    pub no_cache: bool,
}

/// Why a build VM's settings are wrong.
pub type SettingError = cast_core::SettingError;

impl VmRunner {
    /// A runner for builds of `platform_arch` (OCI name: amd64, arm64…), booting
    /// `kernel` (the default bundle when `None`), caching under `cache_root`.
    pub fn new(
        kernel: Option<KernelSpec>,
        platform_arch: &str,
        cache_root: &Path,
    ) -> Result<Self, SettingError> {
        Ok(VmRunner {
            kernel,
            boot: None,
            mount_cache: cache_root.parent().unwrap_or(cache_root).join("run-cache"),
            cache_root: cache_root.to_owned(),
            platform_arch: platform_arch.to_owned(),
            settings: VmSettings::build_vm(|k| std::env::var(k).ok())?,
            secrets: Vec::new(),
            boots: 0,
            cached_steps: 0,
            no_cache: false,
        })
    }

    /// Makes `secret` available to `RUN --mount=type=secret,id=ID` (a later one of
    /// the same id wins).
    pub fn add_secret(&mut self, secret: crate::secret::Secret) {
        self.secrets.retain(|s| s.id != secret.id);
        self.secrets.push(secret);
    }

    fn step_key(&self, tree: &ImageTree, op: &RunOp) -> std::io::Result<String> {
        let mut key = KeyBuilder::default()
            .part("tree", tree_digest(tree)?)
            .part("arch", &self.platform_arch)
            .part("argv", serde_json::to_vec(&op.argv).unwrap_or_default())
            .part("env", op.env.join("\0"))
            .part("user", format!("{:?}", op.user))
            .part("workdir", format!("{:?}", op.workdir))
            .part("mounts", format!("{:?}", op.mounts))
            .part("network", if op.network_none { "none" } else { "default" });
        for secret in &self.secrets {
            // A secret's bytes never reach the key, only that it is there (as with
            // BuildKit, a changed secret does not invalidate the step).
            let used = op
                .mounts
                .iter()
                .any(|m| matches!(m, RunMount::Secret { id, .. } if *id == secret.id));
            if used {
                key = key.part("secret", &secret.id);
            }
        }
        Ok(key.finish())
    }

    fn boot_parts(&mut self) -> Result<(PathBuf, Vec<u8>), String> {
        if self.boot.is_none() {
            let bundle = crate::kernel::bundle(self.kernel.as_ref(), None)
                .map_err(|e| crate::image::error_chain(&e))?;
            let initrd = cast_guest::initrd::build(&bundle)
                .map_err(|e| format!("cannot build the initrd: {e}"))?;
            self.boot = Some((bundle, initrd));
        }
        let (bundle, initrd) = self.boot.as_ref().expect("loaded");
        Ok((bundle.kernel_path(), initrd.clone()))
    }
}

/// The OCI architecture name of this machine.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

impl RunSteps for VmRunner {
    fn run(
        &mut self,
        tree: &mut ImageTree,
        op: &RunOp,
        inputs: &RunInputs<'_>,
    ) -> Result<(), BuildError> {
        let loc = &op.location;
        let fail = |message: String| BuildError::Invalid(Diagnostic::new(loc.clone(), message));
        let arch = inputs.platform.map_or(self.platform_arch.as_str(), |p| {
            p.split('/').nth(1).unwrap_or(p)
        });
        if arch != host_arch() {
            return Err(BuildError::Invalid(
                Diagnostic::new(
                    loc.clone(),
                    format!(
                        "RUN needs an image for this machine's architecture ({}), but this stage is {arch}",
                        host_arch()
                    ),
                )
                .with_hint("build for the host platform, or do the work in a stage FROM an image of this architecture and COPY --from it"),
            ));
        }
        if op.shell_form {
            let shell = &op.argv[0];
            if tree.lookup_follow(shell).is_err() {
                return Err(BuildError::Invalid(
                    Diagnostic::new(
                        loc.clone(),
                        format!("RUN in shell form needs {shell}, and the image has none"),
                    )
                    .with_hint("use the exec form, RUN [\"/path/to/program\", \"arg\"], or a base image with a shell"),
                ));
            }
        }
        let key = self
            .step_key(tree, op)
            .map_err(|e| fail(format!("cannot read the image tree: {e}")))?;
        let step_dir = self.cache_root.join(format!("step-{key}"));
        let cached = step_dir.join("layer.tar");
        if !self.no_cache && cached.is_file() {
            let layer = std::fs::File::open(&cached)
                .map_err(|e| fail(format!("cannot read the cached layer: {e}")))?;
            apply(tree, layer, loc)?;
            let _ = touch(&step_dir);
            self.cached_steps += 1;
            eprintln!("{loc}: RUN (cached)");
            return Ok(());
        }
        let (kernel, initrd) = self.boot_parts().map_err(fail)?;
        std::fs::create_dir_all(&self.cache_root)
            .map_err(|e| fail(format!("cannot create the build cache: {e}")))?;
        let work = tempfile::Builder::new()
            .prefix(".run-")
            .tempdir_in(&self.cache_root)
            .map_err(|e| fail(format!("cannot create a work directory: {e}")))?;
        let mut set = disks::DiskSet::new(work.path(), tree)
            .map_err(|e| fail(format!("cannot prepare the build VM's disks: {e}")))?;
        let mut mounts = Vec::new();
        for m in &op.mounts {
            mounts.push(self.mount(m, &mut set, inputs).map_err(&fail)?);
        }
        if op.network_none {
            eprintln!("{loc}: RUN {} [--network=none]", shown(op));
        } else {
            eprintln!("{loc}: RUN {}", shown(op));
        }
        let tail = output::Tail::new();
        self.boots += 1;
        let outcome = cast_runner::run_to_end(RunRequest {
            program: "cast-build".into(),
            kernel: KernelImage::File(kernel),
            initrd: initrd.into(),
            root: set.root.clone(),
            disks: set.disks.clone(),
            output: Some(cast_runner::OutputSink::new(tail.clone())),
            pass_fds: Vec::new(),
            spec: StartSpec {
                argv: op.argv.clone(),
                env: op.env.clone(),
                workdir: op.workdir.clone(),
                user: op.user.clone(),
                hostname: "buildkitsandbox".into(),
                build: Some(BuildSpec {
                    scratch_serial: disks::SCRATCH.into(),
                    diff_serial: disks::DIFF.into(),
                    mounts,
                }),
                ..Default::default()
            },
            settings: VmSettings {
                network: self.settings.network && !op.network_none,
                ..self.settings.clone()
            },
        })
        .map_err(|source| BuildError::RunVm {
            location: loc.clone(),
            source: Box::new(source),
        })?;
        let layer_bytes = match (outcome.code, outcome.layer_bytes) {
            (0, Some(n)) => n,
            (code, _) => {
                return Err(BuildError::RunFailed {
                    location: loc.clone(),
                    command: shown(op),
                    code,
                    output: tail.last_lines(20),
                })
            }
        };
        let mut diff = std::fs::File::open(&set.diff)
            .map_err(|e| fail(format!("cannot read the layer: {e}")))?;
        diff.rewind()
            .map_err(|e| fail(format!("cannot read the layer: {e}")))?;
        let staged = work.path().join("step");
        std::fs::create_dir_all(&staged)
            .and_then(|()| {
                let mut out = std::fs::File::create(staged.join("layer.tar"))?;
                std::io::copy(&mut (&mut diff).take(layer_bytes), &mut out)?;
                out.sync_all()
            })
            .map_err(|e| fail(format!("cannot store the layer: {e}")))?;
        drop(set);
        if self.no_cache && step_dir.exists() {
            // `--no-cache`: this run's layer replaces the entry (moved aside first,
            // so a reader never sees a half-removed one).
            let aside = work.path().join("old");
            if std::fs::rename(&step_dir, &aside).is_ok() {
                let _ = std::fs::remove_dir_all(&aside);
            }
        }
        // Renamed into place complete; a concurrent build that got there first wins.
        if std::fs::rename(&staged, &step_dir).is_err() && !cached.is_file() {
            return Err(fail("cannot store the layer in the build cache".into()));
        }
        let layer = std::fs::File::open(&cached)
            .map_err(|e| fail(format!("cannot read the layer: {e}")))?;
        apply(tree, layer, loc)
    }
}

impl VmRunner {
    /// Prepares one `--mount` for the guest (a disk, or content for a tmpfs).
    fn mount(
        &mut self,
        m: &RunMount,
        set: &mut disks::DiskSet,
        inputs: &RunInputs<'_>,
    ) -> Result<BuildMount, String> {
        Ok(match m {
            RunMount::Tmpfs { target, size } => BuildMount {
                target: target.clone(),
                kind: BuildMountKind::Tmpfs { size: *size },
            },
            RunMount::Secret {
                id,
                target,
                required,
                mode,
                uid,
                gid,
            } => {
                let content = match self.secrets.iter().find(|s| s.id == *id) {
                    Some(s) => s.bytes.clone(),
                    None if *required => {
                        return Err(format!(
                        "secret {id:?} is required but was not given (--secret id={id},src=FILE)"
                    ))
                    }
                    None => Vec::new(),
                };
                BuildMount {
                    target: target.clone(),
                    kind: BuildMountKind::File {
                        content,
                        mode: *mode,
                        uid: *uid,
                        gid: *gid,
                    },
                }
            }
            RunMount::Cache {
                target,
                id,
                readonly,
            } => {
                let serial = set
                    .cache_disk(&self.mount_cache, id, &self.platform_arch)
                    .map_err(|e| format!("cache {id:?}: {e}"))?;
                BuildMount {
                    target: target.clone(),
                    kind: BuildMountKind::Disk {
                        serial,
                        overlay: false,
                        readonly: *readonly,
                    },
                }
            }
            RunMount::Bind {
                target,
                from,
                source,
                rw,
            } => {
                let serial = set.bind_disk(from, source, inputs)?;
                BuildMount {
                    target: target.clone(),
                    kind: BuildMountKind::Disk {
                        serial,
                        overlay: *rw,
                        readonly: !*rw,
                    },
                }
            }
        })
    }
}

/// Applies a layer tar to the tree.
fn apply(
    tree: &mut ImageTree,
    layer: std::fs::File,
    loc: &crate::diag::Location,
) -> Result<(), BuildError> {
    cast_rootfs::layer::apply_layer(tree, layer, cast_rootfs::layer::Compression::None)
        .map(|_| ())
        .map_err(|e| {
            BuildError::Invalid(Diagnostic::new(
                loc.clone(),
                format!(
                    "cannot apply the RUN's changes: {}",
                    crate::image::error_chain(&e)
                ),
            ))
        })
}

/// Records a cache hit in the entry's mtime (for `cargo cast cache prune`).
fn touch(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.set_modified(std::time::SystemTime::now())
}

/// The command as the user wrote it: the script (shell form) or the JSON array.
fn shown(op: &RunOp) -> String {
    match (op.shell_form, op.argv.last()) {
        (true, Some(script)) => script.clone(),
        _ => serde_json::to_string(&op.argv).unwrap_or_default(),
    }
}
