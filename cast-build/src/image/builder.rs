//! Building: applying a [`Plan`]'s filesystem operations to image trees.
//!
//! [`build`] builds the stages the target needs, in order. A stage starts from
//! an empty tree (`scratch`), a copy of an earlier stage's tree, or a base
//! image's tree supplied by a [`BaseTrees`] (the OCI crate pulls and applies
//! the layers). COPY and ADD follow Docker: files land root-owned unless
//! `--chown` (names resolved in the image's `/etc/passwd` and `/etc/group`),
//! modes are kept unless `--chmod`, directories are merged into existing ones,
//! and ADD extracts local tar archives (plain, gzip, bzip2, xz, zstd). ADD of an
//! `http(s)://` URL downloads the file ([`Remote`]): mode 0600 unless `--chmod`,
//! the server's `Last-Modified` as its mtime, never extracted, checked against
//! `--checksum` when given. WORKDIR creates its directory. RUN goes to a
//! [`RunSteps`] (build VMs: [`crate::runvm::VmRunner`]), which applies the
//! command's changes to the tree.
//!
//! ```no_run
//! use std::path::Path;
//! use cast_build::builder::{build, BaseTrees, NoRun};
//! use cast_build::{evaluate, BuildContext, Containerfile, EvalOptions, NoBaseImages};
//!
//! struct NoImages;
//! impl BaseTrees for NoImages {
//!     fn tree(&mut self, image: &str, _: Option<&str>) -> Result<cast_rootfs::ImageTree, cast_build::builder::BaseError> {
//!         Err(format!("{image}: no registry here").into())
//!     }
//! }
//! let file = Containerfile::read(Path::new("app/Containerfile"))?;
//! let plan = evaluate(&file, &EvalOptions::default(), &mut NoBaseImages)?;
//! let context = BuildContext::open(Path::new("app"))?;
//! let built = build(&plan, &context, &mut NoImages, &mut NoRun)?;
//! println!("{} files, run {:?}", built.tree.inode_count(), built.run_config.argv());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod archive;
mod copy;
pub(crate) mod graft;
mod owner;
mod remote;

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

use cast_rootfs::tree::{AddError, SpillError};
use cast_rootfs::{ImageTree, Metadata};
use thiserror::Error;

use crate::context::ResolveError;
use crate::diag::{Diagnostic, Location};
use crate::runconfig::RunConfig;
use crate::stages::{Base, Op, Plan, RunOp};
use crate::BuildContext;

pub use archive::ExtractError;
pub use graft::Override;
pub use owner::resolve_chown;
pub use remote::Remote;

/// The error a [`BaseTrees`] implementation reports.
pub type BaseError = Box<dyn std::error::Error + Send + Sync>;

/// Supplies the root filesystems of base images.
pub trait BaseTrees {
    /// The tree of `image` for `platform`, its layers applied.
    fn tree(&mut self, image: &str, platform: Option<&str>) -> Result<ImageTree, BaseError>;
}

/// What a RUN may read besides the stage's tree (its bind mounts' sources).
#[derive(Debug, Clone, Copy)]
pub struct RunInputs<'a> {
    /// The build context.
    pub context: &'a BuildContext,
    /// The trees of the stages built so far.
    pub stages: &'a [Option<ImageTree>],
    /// The stage's `--platform`, if any.
    pub platform: Option<&'a str>,
}

/// Runs RUN steps.
pub trait RunSteps {
    /// Runs `op` over `tree` (the stage so far) and applies its changes to `tree`.
    fn run(
        &mut self,
        tree: &mut ImageTree,
        op: &RunOp,
        inputs: &RunInputs<'_>,
    ) -> Result<(), BuildError>;
}

/// A [`RunSteps`] without VMs: every RUN is an error.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoRun;

impl RunSteps for NoRun {
    fn run(&mut self, _: &mut ImageTree, op: &RunOp, _: &RunInputs<'_>) -> Result<(), BuildError> {
        Err(Diagnostic::new(
            op.location.clone(),
            "RUN needs build VMs, which this build has none of",
        )
        .with_hint("build with cargo cast build or cast_build::image::build_image")
        .into())
    }
}

/// The result of a build: the target's tree and run config, and every
/// context file it read (for `cargo:rerun-if-changed`).
#[derive(Debug)]
pub struct Built {
    /// The target stage's root filesystem.
    pub tree: ImageTree,
    /// The target stage's run config.
    pub run_config: RunConfig,
    /// Context files and directories used, and the ignore file.
    pub context_files: BTreeSet<PathBuf>,
}

impl Built {
    /// `cargo:rerun-if-changed=PATH` lines for a build script, one per context
    /// file or directory used.
    pub fn rerun_if_changed(&self) -> Vec<String> {
        self.context_files
            .iter()
            .map(|p| format!("cargo:rerun-if-changed={}", p.display()))
            .collect()
    }
}

/// Why a build failed.
#[derive(Debug, Error)]
pub enum BuildError {
    /// A RUN's command failed.
    #[error("{location}: RUN {command} failed with exit code {code}{}", output.iter().map(|l| format!("\n  | {l}")).collect::<String>())]
    RunFailed {
        /// The RUN.
        location: Location,
        /// The command (the script, for shell form).
        command: String,
        /// Its exit code.
        code: i32,
        /// Its last lines of output.
        output: Vec<String>,
    },
    /// A build VM could not run.
    #[error("{location}: the build VM failed")]
    RunVm {
        /// The RUN.
        location: Location,
        /// Why.
        #[source]
        source: Box<cast_runner::RunError>,
    },
    /// An instruction cannot be applied as written.
    #[error(transparent)]
    Invalid(#[from] Diagnostic),
    /// A base image's tree could not be had.
    #[error("{location}: cannot get image {image}")]
    BaseImage {
        /// The FROM or COPY --from.
        location: Location,
        /// The image.
        image: String,
        /// Why.
        #[source]
        source: BaseError,
    },
    /// A new tree could not be created.
    #[error("cannot create an image tree")]
    Spill(#[source] SpillError),
    /// Writing into the tree failed.
    #[error("{}cannot write {} in the image", location.as_ref().map(|l| format!("{l}: ")).unwrap_or_default(), path.display())]
    Tree {
        /// The instruction, if one.
        location: Option<Location>,
        /// The path in the image.
        path: PathBuf,
        /// Why.
        #[source]
        source: AddError,
    },
    /// A source could not be resolved in the context.
    #[error("{location}: bad source")]
    Source {
        /// The COPY/ADD.
        location: Location,
        /// Why.
        #[source]
        source: ResolveError,
    },
    /// A context file could not be read.
    #[error("{location}: cannot read {}", path.display())]
    Read {
        /// The COPY/ADD.
        location: Location,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// An ADD URL could not be downloaded.
    #[error("{location}: cannot download {url}")]
    Download {
        /// The ADD.
        location: Location,
        /// The URL.
        url: String,
        /// Why.
        #[source]
        source: crate::fetch::FetchError,
    },
    /// An ADD URL served other bytes than `--checksum` pins.
    #[error("{location}: {url} has sha256:{actual}, but --checksum expects sha256:{expected}")]
    Checksum {
        /// The ADD.
        location: Location,
        /// The URL.
        url: String,
        /// The pinned SHA-256.
        expected: String,
        /// The downloaded file's SHA-256.
        actual: String,
    },
    /// An ADD archive could not be extracted.
    #[error("{location}: cannot extract {}", path.display())]
    Extract {
        /// The ADD.
        location: Location,
        /// The archive.
        path: PathBuf,
        /// Why.
        #[source]
        source: Box<ExtractError>,
    },
}

/// Why [`build_file`] failed: the step that failed, with its own error.
#[derive(Debug, Error)]
pub enum BuildFileError {
    /// Finding or parsing the Containerfile.
    #[error(transparent)]
    Parse(#[from] crate::ParseError),
    /// A missing Containerfile in a directory.
    #[error(transparent)]
    Find(#[from] crate::InfoError),
    /// Evaluating it.
    #[error(transparent)]
    Eval(#[from] crate::EvalError),
    /// Opening the build context.
    #[error(transparent)]
    Context(#[from] crate::ContextError),
    /// Building.
    #[error(transparent)]
    Build(#[from] BuildError),
}

/// Builds a Containerfile in one call: `path` is a file or a directory (its
/// `Containerfile`, else `Dockerfile`); the context is `context_dir`, else the
/// file's directory. Base images' configs and trees come from `images`. The
/// Containerfile itself is listed in [`Built::context_files`].
pub fn build_file<I: crate::BaseImages + BaseTrees>(
    path: &std::path::Path,
    context_dir: Option<&std::path::Path>,
    options: &crate::EvalOptions,
    images: &mut I,
) -> Result<Built, BuildFileError> {
    let file = crate::info::find_containerfile(path)?;
    let containerfile = crate::Containerfile::read(&file)?;
    let plan = crate::evaluate(&containerfile, options, images)?;
    let dir = match context_dir {
        Some(d) => d.to_owned(),
        None => file.parent().map_or_else(
            || PathBuf::from("."),
            |p| {
                if p.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    p.to_owned()
                }
            },
        ),
    };
    let context = BuildContext::open_for(&dir, Some(&file))?;
    let mut built = build(&plan, &context, images, &mut NoRun)?;
    built
        .context_files
        .insert(file.canonicalize().unwrap_or(file));
    Ok(built)
}

/// Builds the target of `plan` from `context`, getting base images from `bases`,
/// running RUN steps with `runs` and downloading ADD URLs as needed.
pub fn build(
    plan: &Plan,
    context: &BuildContext,
    bases: &mut dyn BaseTrees,
    runs: &mut dyn RunSteps,
) -> Result<Built, BuildError> {
    build_with(plan, context, bases, &mut Remote::new(false, false), runs)
}

/// [`build`], taking ADD URLs from `remote` (which may hold them already).
pub fn build_with(
    plan: &Plan,
    context: &BuildContext,
    bases: &mut dyn BaseTrees,
    remote: &mut Remote,
    runs: &mut dyn RunSteps,
) -> Result<Built, BuildError> {
    let mut trees: Vec<Option<ImageTree>> = plan.stages.iter().map(|_| None).collect();
    let mut images: HashMap<String, ImageTree> = HashMap::new();
    let mut files = BTreeSet::new();
    files.extend(context.ignore_file().map(std::path::Path::to_path_buf));
    for i in plan.needed_stages() {
        let stage = &plan.stages[i];
        let mut tree = match &stage.base {
            Base::Scratch => ImageTree::new().map_err(BuildError::Spill)?,
            Base::Stage(b) => {
                graft::clone_tree(trees[*b].as_ref().expect("needed stages come in order"))?
            }
            Base::Image(image) => {
                bases
                    .tree(image, stage.platform.as_deref())
                    .map_err(|source| BuildError::BaseImage {
                        location: stage.location.clone(),
                        image: image.clone(),
                        source,
                    })?
            }
        };
        for op in &stage.ops {
            match op {
                Op::Workdir {
                    location,
                    path,
                    user,
                } => {
                    let mut meta = Metadata::default_dir();
                    if let Some(user) = user {
                        (meta.uid, meta.gid) = owner::resolve_user(&tree, user).map_err(|m| {
                            Diagnostic::new(location.clone(), format!("WORKDIR for USER {user}: {m}"))
                                .with_hint("missing directories are created owned by the USER; add the user to /etc/passwd or use numeric ids")
                        })?;
                    }
                    tree.mkdir_p(path, meta)
                        .map_err(|source| BuildError::Tree {
                            location: Some(location.clone()),
                            path: path.into(),
                            source,
                        })?;
                }
                Op::Copy(c) => {
                    let mut sources = copy::Sources {
                        context,
                        stages: &trees,
                        images: &mut images,
                        bases: &mut *bases,
                        remote: &mut *remote,
                        platform: stage.platform.as_deref(),
                    };
                    copy::apply(&mut tree, c, &mut sources, &mut files)?;
                }
                Op::Run(run) => {
                    let inputs = RunInputs {
                        context,
                        stages: &trees,
                        platform: stage.platform.as_deref(),
                    };
                    runs.run(&mut tree, run, &inputs)?;
                }
            }
        }
        trees[i] = Some(tree);
    }
    let tree = trees[plan.target].take().expect("the target is built");
    Ok(Built {
        tree,
        run_config: plan.target_stage().run_config.clone(),
        context_files: files,
    })
}
