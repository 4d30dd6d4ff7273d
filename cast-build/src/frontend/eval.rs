//! Evaluating a Containerfile without a filesystem: ARG/ENV substitution,
//! build-arg overrides, multi-stage bases and the per-stage [`RunConfig`].
//!
//! Docker's scoping is followed: ARGs before the first FROM are visible only in
//! FROM lines unless a stage redeclares them; ENV wins over ARG of the same
//! name; ENV pairs on one line all see the environment from before the line;
//! ENTRYPOINT drops a CMD inherited from the base unless this stage set CMD.
//! Base image configs come from a caller-supplied [`BaseImages`]; without one
//! (as for `cargo cast info`), images contribute nothing and the stage says so.

use std::collections::HashMap;

use thiserror::Error;

use crate::containerfile::{Containerfile, InstructionKind};
use crate::diag::{Diagnostic, Warning};
use crate::runconfig::RunConfig;
use crate::stages::{ArgValue, Base, Plan, Stage};

/// Why a Containerfile could not be evaluated.
#[derive(Debug, Error)]
pub enum EvalError {
    /// An instruction's value is invalid (bad substitution, port, signal...).
    #[error(transparent)]
    Instruction(#[from] Diagnostic),
    /// `--target` names no stage.
    #[error("no stage named {target:?} (stages: {available})")]
    UnknownTarget {
        /// The requested target.
        target: String,
        /// The stage names there are.
        available: String,
    },
}

/// Supplies the config of base images (the OCI crate implements this).
pub trait BaseImages {
    /// The config of `image` for `platform`, or `None` if unknown.
    fn config(&mut self, image: &str, platform: Option<&str>) -> Option<RunConfig>;
}

/// A [`BaseImages`] that knows nothing: images contribute no config.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoBaseImages;

impl BaseImages for NoBaseImages {
    fn config(&mut self, _image: &str, _platform: Option<&str>) -> Option<RunConfig> {
        None
    }
}

/// Inputs to evaluation besides the file.
#[derive(Debug, Default, Clone)]
pub struct EvalOptions {
    /// `--build-arg NAME=value` overrides.
    pub build_args: Vec<(String, String)>,
    /// Stage to build (name or index); the last stage when `None`.
    pub target: Option<String>,
}

/// Docker's `PATH` for a stage whose base sets none (`FROM scratch`).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The arguments BuildKit predefines: the platform ones for the host
/// architecture and `TARGETSTAGE`, the name of the stage being built.
fn builtin_args(target_stage: &str) -> Vec<(String, String)> {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "riscv64" => "riscv64",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        other => other,
    };
    let platform = format!("linux/{arch}");
    let mut v = Vec::new();
    for prefix in ["TARGET", "BUILD"] {
        v.push((format!("{prefix}PLATFORM"), platform.clone()));
        v.push((format!("{prefix}OS"), "linux".to_owned()));
        v.push((format!("{prefix}ARCH"), arch.to_owned()));
        v.push((format!("{prefix}VARIANT"), String::new()));
    }
    v.push(("TARGETSTAGE".to_owned(), target_stage.to_owned()));
    v
}

/// Variables visible to substitution: ENV first, then ARGs.
pub(crate) struct Scope<'a> {
    pub(crate) env: &'a [(String, String)],
    pub(crate) args: &'a [(String, Option<String>)],
}

impl Scope<'_> {
    pub(crate) fn get(&self, name: &str) -> Option<String> {
        if let Some((_, v)) = self.env.iter().find(|(k, _)| k == name) {
            return Some(v.clone());
        }
        self.args
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.clone())
    }
}

mod copy;
mod instruction;
mod run;

pub use copy::resolve_path;
use instruction::{find_stage, Evaluator, StageState, EXPANSION_BUDGET};

/// Evaluates `file` into a [`Plan`].
pub fn evaluate(
    file: &Containerfile,
    options: &EvalOptions,
    bases: &mut dyn BaseImages,
) -> Result<Plan, EvalError> {
    // Every stage name with its index, so `--from` and `FROM` look names up
    // in constant time and can tell a later stage from an image.
    let mut names = HashMap::new();
    let mut last_name = String::new();
    for (index, from) in file
        .instructions
        .iter()
        .filter_map(|i| match &i.kind {
            InstructionKind::From(f) => Some(f),
            _ => None,
        })
        .enumerate()
    {
        last_name = from
            .name
            .as_deref()
            .unwrap_or_default()
            .to_ascii_lowercase();
        if let Some(n) = &from.name {
            names.insert(n.to_ascii_lowercase(), index);
        }
    }
    let mut ev = Evaluator {
        file,
        options,
        used_args: Vec::new(),
        warnings: file.warnings.clone(),
        names,
        budget: std::cell::Cell::new(EXPANSION_BUDGET),
    };
    let builtins = builtin_args(options.target.as_deref().unwrap_or(&last_name));
    // Global scope: builtins, then ARGs before the first FROM.
    let mut global: Vec<(String, Option<String>)> = builtins
        .iter()
        .map(|(k, v)| (k.clone(), Some(v.clone())))
        .collect();
    let mut global_args = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    let mut current: Option<StageState> = None;
    for ins in &file.instructions {
        let loc = &ins.location;
        match &ins.kind {
            InstructionKind::Arg(decls) if current.is_none() => {
                for (name, default) in decls {
                    let value = ev.arg_value(loc, name, default.as_deref(), &[], &global, &[])?;
                    global.push((name.clone(), value.clone()));
                    global_args.push(ArgValue {
                        name: name.clone(),
                        default: default.clone(),
                        value,
                    });
                }
            }
            InstructionKind::From(from) => {
                if let Some(state) = current.take() {
                    stages.push(state.finish());
                }
                let scope = Scope {
                    env: &[],
                    args: &global,
                };
                let image = ev.word(loc, &from.image, &scope)?;
                if image.is_empty() {
                    return Err(Diagnostic::new(loc.clone(), "FROM has an empty image name")
                        .with_hint("check the ARG used in FROM has a value")
                        .into());
                }
                let platform = from
                    .platform
                    .as_ref()
                    .map(|p| ev.word(loc, p, &scope))
                    .transpose()?;
                let lower = image.to_ascii_lowercase();
                let earlier = ev.names.get(&lower).filter(|i| **i < stages.len());
                let (base, mut run_config, known) = if let Some(prev) = earlier.map(|i| &stages[*i])
                {
                    (Base::Stage(prev.index), prev.run_config.clone(), true)
                } else if lower == "scratch" {
                    (Base::Scratch, RunConfig::default(), true)
                } else {
                    match bases.config(&image, platform.as_deref()) {
                        Some(rc) => (Base::Image(image), rc, true),
                        None => (Base::Image(image), RunConfig::default(), false),
                    }
                };
                if known && run_config.env_var("PATH").is_none() {
                    run_config.set_env("PATH", DEFAULT_PATH);
                }
                let triggers = std::mem::take(&mut run_config.onbuild);
                let stage = Stage {
                    index: stages.len(),
                    name: from.name.as_ref().map(|n| n.to_ascii_lowercase()),
                    base,
                    platform,
                    location: loc.clone(),
                    base_config_known: known,
                    args: Vec::new(),
                    run_config,
                    ops: Vec::new(),
                };
                let state = current.insert(StageState {
                    stage,
                    args: Vec::new(),
                    cmd_set: false,
                });
                // A base's ONBUILD triggers run first, as instructions of this stage.
                for trigger in &triggers {
                    let ins = Containerfile::trigger(loc, trigger)?;
                    ev.instruction(state, loc, &ins.kind, &global, &builtins)?;
                }
            }
            kind => {
                let Some(state) = current.as_mut() else {
                    return Err(Diagnostic::new(loc.clone(), "missing FROM").into());
                };
                ev.instruction(state, loc, kind, &global, &builtins)?;
            }
        }
    }
    if let Some(state) = current.take() {
        stages.push(state.finish());
    }
    let target = match &options.target {
        None => stages.len() - 1,
        Some(t) => {
            find_stage(&ev.names, t, stages.len()).ok_or_else(|| EvalError::UnknownTarget {
                target: t.clone(),
                available: stages
                    .iter()
                    .filter_map(|s| s.name.clone())
                    .collect::<Vec<_>>()
                    .join(", "),
            })?
        }
    };
    for (name, _) in &options.build_args {
        if !ev.used_args.contains(name) && !builtins.iter().any(|(b, _)| b == name) {
            ev.warnings.push(Warning::general(format!(
                "build argument {name} was not consumed by any ARG"
            )));
        }
    }
    Ok(Plan {
        stages,
        target,
        global_args,
        warnings: ev.warnings,
    })
}
