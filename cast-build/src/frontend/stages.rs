//! The stage model: what evaluation produces and a build consumes.
//!
//! A [`Plan`] lists the stages of a Containerfile with every value expanded:
//! each [`Stage`] knows its base, its final [`RunConfig`] and the filesystem
//! operations ([`Op`]) a build applies in order; a RUN ([`RunOp`]) carries
//! everything its build VM needs (argv, environment, user, directory, mounts).

use serde::{Deserialize, Serialize};

use crate::chmod::Chmod;
use crate::diag::{Location, Warning};
use crate::runconfig::RunConfig;

/// All stages, the chosen target and what evaluation noticed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Stages in file order.
    pub stages: Vec<Stage>,
    /// Index of the target stage (the last one unless a target was named).
    pub target: usize,
    /// ARGs declared before the first FROM, with their values.
    pub global_args: Vec<ArgValue>,
    /// Warnings from parsing and evaluation.
    pub warnings: Vec<Warning>,
}

/// An ARG and the value it ended up with (`None`: declared without a value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArgValue {
    /// Name.
    pub name: String,
    /// Default as written, unexpanded.
    pub default: Option<String>,
    /// Value after build-arg overrides and expansion.
    pub value: Option<String>,
}

/// One `FROM` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stage {
    /// Position in the file, from 0.
    pub index: usize,
    /// `AS name`, lower-cased as Docker does.
    pub name: Option<String>,
    /// What the stage starts from.
    pub base: Base,
    /// `--platform`, expanded.
    pub platform: Option<String>,
    /// Where the FROM is.
    pub location: Location,
    /// Whether the base image's config was known when evaluating (false for
    /// images when no resolver was given: the run config then lacks what the
    /// image would have contributed).
    pub base_config_known: bool,
    /// ARGs declared in the stage.
    pub args: Vec<ArgValue>,
    /// The run config after the last instruction.
    pub run_config: RunConfig,
    /// Filesystem operations in order.
    pub ops: Vec<Op>,
}

/// What a stage starts from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Base {
    /// `FROM scratch`: nothing.
    Scratch,
    /// An earlier stage, by index.
    Stage(usize),
    /// An image reference, expanded.
    Image(String),
}

/// A filesystem operation of a stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// COPY or ADD.
    Copy(CopyOp),
    /// WORKDIR: the directory must exist; BuildKit creates missing
    /// directories owned by the USER in effect.
    Workdir {
        /// Where the instruction is.
        location: Location,
        /// Absolute path.
        path: String,
        /// The USER at that point, if any.
        user: Option<String>,
    },
    /// RUN: a command run in a build VM over the stage's tree so far.
    Run(RunOp),
}

/// A RUN after expansion: what the build VM runs, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunOp {
    /// Where the instruction is.
    pub location: Location,
    /// The command: exec form as written; shell form wrapped in the stage's SHELL
    /// (heredocs appended to the script).
    pub argv: Vec<String>,
    /// Shell form (the image needs its shell).
    pub shell_form: bool,
    /// `KEY=VALUE`: the stage's ENV, then its ARGs that ENV does not set.
    pub env: Vec<String>,
    /// The USER in effect.
    pub user: Option<String>,
    /// The WORKDIR in effect.
    pub workdir: Option<String>,
    /// `--mount`s, in order.
    pub mounts: Vec<RunMount>,
    /// `--network=none` (the build VM gets no network card, only `lo`).
    pub network_none: bool,
}

/// A `RUN --mount`, expanded and checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RunMount {
    /// `type=bind`: files of the context or a stage, read-only unless `rw` (then
    /// writes are thrown away).
    Bind {
        /// Absolute target.
        target: String,
        /// Where the files come from.
        from: CopyFrom,
        /// Path in the source.
        source: String,
        /// `rw`.
        rw: bool,
    },
    /// `type=cache`: a directory kept between builds, keyed by `id`.
    Cache {
        /// Absolute target.
        target: String,
        /// The cache's id (the target unless given).
        id: String,
        /// `ro`.
        readonly: bool,
    },
    /// `type=tmpfs`.
    Tmpfs {
        /// Absolute target.
        target: String,
        /// `size` in bytes.
        size: Option<u64>,
    },
    /// `type=secret`: a file from the build's secrets, never stored in the image.
    Secret {
        /// The secret's id.
        id: String,
        /// Absolute target (`/run/secrets/<id>` unless given).
        target: String,
        /// `required=true`: a missing secret is an error.
        required: bool,
        /// Mode bits (0400).
        mode: u32,
        /// Owner.
        uid: u32,
        /// Group.
        gid: u32,
    },
}

/// Where COPY --from takes its files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CopyFrom {
    /// The build context (no `--from`).
    Context,
    /// An earlier stage.
    Stage(usize),
    /// An image reference.
    Image(String),
}

/// A COPY or ADD source after expansion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CopySource {
    /// A path or glob, relative to the context or the `--from` root.
    Path(String),
    /// Inline content from a heredoc.
    Inline(String),
    /// An `http://` or `https://` URL (ADD only), downloaded at build time.
    Url(String),
}

/// A COPY or ADD after expansion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyOp {
    /// Where the instruction is.
    pub location: Location,
    /// ADD (extracts local archives) rather than COPY.
    pub add: bool,
    /// Where the sources are.
    pub from: CopyFrom,
    /// Sources, at least one.
    pub sources: Vec<CopySource>,
    /// Destination, absolute; a trailing `/` means "into this directory".
    pub dest: String,
    /// `--chown` value (`user[:group]`, names or ids).
    pub chown: Option<String>,
    /// `--chmod`, octal or symbolic.
    pub chmod: Option<Chmod>,
    /// `--exclude` patterns.
    pub exclude: Vec<String>,
    /// ADD `--checksum`: the SHA-256 (lowercase hex) every URL source must have.
    pub checksum: Option<String>,
}

impl Plan {
    /// The target stage.
    pub fn target_stage(&self) -> &Stage {
        &self.stages[self.target]
    }

    /// Indices of the stages the target needs, the target last.
    pub fn needed_stages(&self) -> Vec<usize> {
        let mut needed = vec![false; self.stages.len()];
        let mut todo = vec![self.target];
        while let Some(i) = todo.pop() {
            if std::mem::replace(&mut needed[i], true) {
                continue;
            }
            let stage = &self.stages[i];
            if let Base::Stage(b) = stage.base {
                todo.push(b);
            }
            for op in &stage.ops {
                match op {
                    Op::Copy(CopyOp {
                        from: CopyFrom::Stage(s),
                        ..
                    }) => todo.push(*s),
                    Op::Run(run) => todo.extend(run.mounts.iter().filter_map(|m| match m {
                        RunMount::Bind {
                            from: CopyFrom::Stage(s),
                            ..
                        } => Some(*s),
                        _ => None,
                    })),
                    _ => {}
                }
            }
        }
        (0..self.stages.len()).filter(|i| needed[*i]).collect()
    }
}
