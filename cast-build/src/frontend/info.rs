//! `cargo cast info`: what a Containerfile will build, without building it.
//!
//! [`info`] parses and evaluates a Containerfile (no network: base images'
//! own settings are not known and the summary says so) and returns an
//! [`Info`], which renders as an aligned plain-text table
//! ([`Info::to_table`]) or as JSON ([`Info::to_json`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::containerfile::{Containerfile, ParseError};
use crate::diag::Warning;
use crate::eval::{evaluate, EvalError, EvalOptions, NoBaseImages};
use crate::stages::{Base, Op, Plan};

/// Why `info` failed.
#[derive(Debug, Error)]
pub enum InfoError {
    /// A directory without `Containerfile` or `Dockerfile`.
    #[error("no Containerfile or Dockerfile in {}", dir.display())]
    NotFound {
        /// The directory.
        dir: PathBuf,
    },
    /// The file does not parse.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// The file does not evaluate.
    #[error(transparent)]
    Eval(#[from] EvalError),
}

/// A summary of a Containerfile: stages, ARGs and the target's run config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Info {
    /// The Containerfile.
    pub file: PathBuf,
    /// Stages in order.
    pub stages: Vec<StageInfo>,
    /// Every ARG: global ones first, then per stage.
    pub args: Vec<ArgInfo>,
    /// Environment of the target stage.
    pub env: BTreeMap<String, String>,
    /// Exposed ports (`80/tcp`).
    pub exposed_ports: Vec<String>,
    /// Entrypoint (shell form already wrapped).
    pub entrypoint: Option<Vec<String>>,
    /// Cmd (shell form already wrapped).
    pub cmd: Option<Vec<String>>,
    /// User.
    pub user: Option<String>,
    /// Working directory.
    pub workdir: Option<String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Volumes.
    pub volumes: Vec<String>,
    /// Stop signal.
    pub stop_signal: Option<String>,
    /// Warnings, each `file:line:column: message` or just the message.
    pub warnings: Vec<String>,
}

/// One stage in the summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageInfo {
    /// `AS` name.
    pub name: Option<String>,
    /// Base image, `scratch`, or the stage it builds on.
    pub base: String,
    /// `--platform`.
    pub platform: Option<String>,
    /// Whether this is the stage that is built.
    pub target: bool,
}

/// One ARG in the summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArgInfo {
    /// Name.
    pub name: String,
    /// Default as written.
    pub default: Option<String>,
    /// Value after build args and expansion.
    pub value: Option<String>,
    /// The stage (`None`: before the first FROM).
    pub stage: Option<String>,
}

/// Finds the Containerfile for `path`: a file, or `DIR/Containerfile`, or
/// `DIR/Dockerfile`.
pub fn find_containerfile(path: &Path) -> Result<PathBuf, InfoError> {
    if !path.is_dir() {
        return Ok(path.to_owned());
    }
    ["Containerfile", "Dockerfile"]
        .iter()
        .map(|n| path.join(n))
        .find(|p| p.is_file())
        .ok_or_else(|| InfoError::NotFound {
            dir: path.to_owned(),
        })
}

/// Summarises the Containerfile at `path` (file or directory).
pub fn info(path: &Path, build_args: &[(String, String)]) -> Result<Info, InfoError> {
    let file = find_containerfile(path)?;
    let cf = Containerfile::read(&file)?;
    let options = EvalOptions {
        build_args: build_args.to_vec(),
        target: None,
    };
    let plan = evaluate(&cf, &options, &mut NoBaseImages)?;
    Ok(Info::from_plan(&file, &plan))
}

fn stage_label(plan: &Plan, i: usize) -> String {
    plan.stages[i]
        .name
        .clone()
        .unwrap_or_else(|| format!("stage {i}"))
}

impl Info {
    /// Builds the summary of an evaluated plan.
    pub fn from_plan(file: &Path, plan: &Plan) -> Self {
        let mut warnings: Vec<String> = plan.warnings.iter().map(Warning::short).collect();
        let mut args: Vec<ArgInfo> = plan
            .global_args
            .iter()
            .map(|a| ArgInfo {
                name: a.name.clone(),
                default: a.default.clone(),
                value: a.value.clone(),
                stage: None,
            })
            .collect();
        let mut stages = Vec::new();
        let needed = plan.needed_stages();
        for (i, s) in plan.stages.iter().enumerate() {
            let base = match &s.base {
                Base::Scratch => "scratch".to_owned(),
                Base::Stage(b) => format!("stage {}", stage_label(plan, *b)),
                Base::Image(img) => img.clone(),
            };
            stages.push(StageInfo {
                name: s.name.clone(),
                base,
                platform: s.platform.clone(),
                target: i == plan.target,
            });
            args.extend(s.args.iter().map(|a| ArgInfo {
                name: a.name.clone(),
                default: a.default.clone(),
                value: a.value.clone(),
                stage: Some(stage_label(plan, i)),
            }));
            for op in &s.ops {
                if let (Op::Run(run), false) = (op, needed.contains(&i)) {
                    warnings.push(format!(
                        "{}: RUN is in a stage the target does not use; it is skipped",
                        run.location
                    ));
                }
            }
        }
        let mut chain = Some(plan.target);
        while let Some(i) = chain {
            let s = &plan.stages[i];
            chain = match &s.base {
                Base::Stage(b) => Some(*b),
                Base::Image(img) if !s.base_config_known => {
                    warnings.push(format!(
                        "settings inherited from {img} are not shown (base image not fetched)"
                    ));
                    None
                }
                _ => None,
            };
        }
        let rc = &plan.target_stage().run_config;
        Self {
            file: file.to_owned(),
            stages,
            args,
            env: rc.env.iter().cloned().collect(),
            exposed_ports: rc.exposed_ports.iter().map(ToString::to_string).collect(),
            entrypoint: rc.entrypoint.clone(),
            cmd: rc.cmd.clone(),
            user: rc.user.clone(),
            workdir: rc.workdir.clone(),
            labels: rc.labels.clone(),
            volumes: rc.volumes.iter().cloned().collect(),
            stop_signal: rc.stop_signal.clone(),
            warnings,
        }
    }

    /// Pretty-printed JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// An aligned plain-text table, one field per row.
    pub fn to_table(&self) -> String {
        let mut rows: Vec<(&str, Vec<String>)> = Vec::new();
        rows.push(("file", vec![self.file.display().to_string()]));
        rows.push(("stages", self.stage_lines()));
        let args = self.args.iter().map(|a| {
            let value = a
                .value
                .as_deref()
                .map_or_else(|| "(unset)".to_owned(), |v| format!("={v}"));
            let scope = a
                .stage
                .as_deref()
                .map_or_else(|| "global".to_owned(), |s| format!("in {s}"));
            format!("{}{value}  ({scope})", a.name)
        });
        rows.push(("args", args.collect()));
        rows.push((
            "env",
            self.env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        ));
        rows.push((
            "ports",
            vec![self.exposed_ports.join(", ")]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect(),
        ));
        rows.push((
            "entrypoint",
            self.entrypoint.iter().map(|v| json_list(v)).collect(),
        ));
        rows.push(("cmd", self.cmd.iter().map(|v| json_list(v)).collect()));
        rows.push(("user", self.user.iter().cloned().collect()));
        rows.push(("workdir", self.workdir.iter().cloned().collect()));
        rows.push((
            "labels",
            self.labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect(),
        ));
        rows.push(("volumes", self.volumes.clone()));
        rows.push(("stop signal", self.stop_signal.iter().cloned().collect()));
        rows.push(("warnings", self.warnings.clone()));
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        let mut out = String::new();
        for (key, values) in rows {
            if values.is_empty() {
                let _ = writeln!(out, "{key:<width$}  -");
            }
            for (i, v) in values.iter().enumerate() {
                let k = if i == 0 { key } else { "" };
                let _ = writeln!(out, "{k:<width$}  {v}");
            }
        }
        out
    }

    fn stage_lines(&self) -> Vec<String> {
        let cells: Vec<[String; 4]> = self
            .stages
            .iter()
            .enumerate()
            .map(|(i, s)| {
                [
                    format!("#{i}"),
                    s.name.clone().unwrap_or_else(|| "-".to_owned()),
                    format!("FROM {}", s.base),
                    s.platform.clone().unwrap_or_default(),
                ]
            })
            .collect();
        let widths: Vec<usize> = (0..4)
            .map(|c| cells.iter().map(|r| r[c].len()).max().unwrap_or(0))
            .collect();
        cells
            .iter()
            .zip(&self.stages)
            .map(|(r, s)| {
                let cells: Vec<String> = r
                    .iter()
                    .zip(&widths)
                    .filter(|(_, w)| **w > 0)
                    .map(|(cell, w)| format!("{cell:<w$}"))
                    .collect();
                let mut line = cells.join("  ").trim_end().to_owned();
                if s.target {
                    line.push_str("  (target)");
                }
                line
            })
            .collect()
    }
}

fn json_list(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_default()
}
