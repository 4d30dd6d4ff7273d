//! Evaluating a Containerfile without a filesystem: ARG/ENV substitution,
//! build-arg overrides, multi-stage bases and the per-stage [`RunConfig`].
//!
//! Docker's scoping is followed: ARGs before the first FROM are visible only in
//! FROM lines unless a stage redeclares them; ENV wins over ARG of the same
//! name; ENV pairs on one line all see the environment from before the line;
//! ENTRYPOINT drops a CMD inherited from the base unless this stage set CMD.
//! Base image configs come from a caller-supplied [`BaseImages`]; without one
//! (as for `cargo cast info`), images contribute nothing and the stage says so.

use thiserror::Error;

use crate::containerfile::{Command, Containerfile, CopyArgs, InstructionKind, Source};
use crate::diag::{Diagnostic, Location, Warning};
use crate::runconfig::{signal_number, Port, RunConfig};
use crate::stages::{ArgValue, Base, CopyFrom, CopyOp, CopySource, Op, Plan, Stage};
use crate::subst::{expand_word, expand_words};

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

/// The platform arguments BuildKit predefines, for the host architecture.
fn builtin_args() -> Vec<(String, String)> {
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
    v
}

/// Variables visible to substitution: ENV first, then ARGs.
struct Scope<'a> {
    env: &'a [(String, String)],
    args: &'a [(String, Option<String>)],
}

impl Scope<'_> {
    fn get(&self, name: &str) -> Option<String> {
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

/// Evaluates `file` into a [`Plan`].
pub fn evaluate(
    file: &Containerfile,
    options: &EvalOptions,
    bases: &mut dyn BaseImages,
) -> Result<Plan, EvalError> {
    let mut ev = Evaluator {
        file,
        options,
        used_args: Vec::new(),
        warnings: file.warnings.clone(),
    };
    let builtins = builtin_args();
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
                let (base, run_config, known) = if let Some(prev) = stages
                    .iter()
                    .find(|s| s.name.as_deref() == Some(lower.as_str()))
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
                current = Some(StageState {
                    stage,
                    args: Vec::new(),
                    cmd_set: false,
                });
            }
            kind => {
                let Some(state) = current.as_mut() else {
                    return Err(Diagnostic::new(loc.clone(), "missing FROM").into());
                };
                ev.instruction(state, loc, kind, &global, &builtins, &stages)?;
            }
        }
    }
    if let Some(state) = current.take() {
        stages.push(state.finish());
    }
    let target = match &options.target {
        None => stages.len() - 1,
        Some(t) => {
            find_stage(&stages, t, stages.len()).ok_or_else(|| EvalError::UnknownTarget {
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

/// A stage being evaluated.
struct StageState {
    stage: Stage,
    args: Vec<(String, Option<String>)>,
    cmd_set: bool,
}

impl StageState {
    fn finish(self) -> Stage {
        self.stage
    }
}

/// A stage by name (case-insensitive) or index, among the first `before`.
fn find_stage(stages: &[Stage], key: &str, before: usize) -> Option<usize> {
    let lower = key.to_ascii_lowercase();
    if let Some(s) = stages[..before]
        .iter()
        .find(|s| s.name.as_deref() == Some(lower.as_str()))
    {
        return Some(s.index);
    }
    key.parse::<usize>().ok().filter(|i| *i < before)
}

struct Evaluator<'a> {
    file: &'a Containerfile,
    options: &'a EvalOptions,
    used_args: Vec<String>,
    warnings: Vec<Warning>,
}

impl Evaluator<'_> {
    fn word(&self, loc: &Location, word: &str, scope: &Scope<'_>) -> Result<String, Diagnostic> {
        expand_word(word, self.file.escape, &|n| scope.get(n))
            .map_err(|e| substitution_error(loc, word, &e))
    }

    fn words(
        &self,
        loc: &Location,
        word: &str,
        scope: &Scope<'_>,
    ) -> Result<Vec<String>, Diagnostic> {
        expand_words(word, self.file.escape, &|n| scope.get(n))
            .map_err(|e| substitution_error(loc, word, &e))
    }

    /// The value of a declared ARG: build-arg, else default, else inherited.
    fn arg_value(
        &mut self,
        loc: &Location,
        name: &str,
        default: Option<&str>,
        env: &[(String, String)],
        args: &[(String, Option<String>)],
        inherited: &[(String, Option<String>)],
    ) -> Result<Option<String>, Diagnostic> {
        if name.is_empty() {
            return Err(Diagnostic::new(loc.clone(), "ARG needs a name")
                .with_hint("write `ARG NAME` or `ARG NAME=default`"));
        }
        if let Some((_, v)) = self
            .options
            .build_args
            .iter()
            .rev()
            .find(|(k, _)| k == name)
        {
            self.used_args.push(name.to_owned());
            return Ok(Some(v.clone()));
        }
        match default {
            Some(d) => Ok(Some(self.word(loc, d, &Scope { env, args })?)),
            None => Ok(inherited
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .and_then(|(_, v)| v.clone())),
        }
    }

    fn instruction(
        &mut self,
        st: &mut StageState,
        loc: &Location,
        kind: &InstructionKind,
        global: &[(String, Option<String>)],
        builtins: &[(String, String)],
        earlier: &[Stage],
    ) -> Result<(), Diagnostic> {
        let env = st.stage.run_config.env.clone();
        let rc = &mut st.stage.run_config;
        match kind {
            InstructionKind::Arg(decls) => {
                for (name, default) in decls {
                    let inherited: Vec<(String, Option<String>)> = global
                        .iter()
                        .cloned()
                        .chain(builtins.iter().map(|(k, v)| (k.clone(), Some(v.clone()))))
                        .collect();
                    let value =
                        self.arg_value(loc, name, default.as_deref(), &env, &st.args, &inherited)?;
                    st.args.push((name.clone(), value.clone()));
                    st.stage.args.push(ArgValue {
                        name: name.clone(),
                        default: default.clone(),
                        value,
                    });
                }
            }
            InstructionKind::Env(pairs) => {
                let scope = Scope {
                    env: &env,
                    args: &st.args,
                };
                let mut expanded = Vec::new();
                for (k, v) in pairs {
                    let key = self.word(loc, k, &scope)?;
                    if key.is_empty() {
                        return Err(Diagnostic::new(loc.clone(), "ENV names must not be empty"));
                    }
                    expanded.push((key, self.word(loc, v, &scope)?));
                }
                expanded.iter().for_each(|(k, v)| rc.set_env(k, v));
            }
            InstructionKind::Label(pairs) => {
                let scope = Scope {
                    env: &env,
                    args: &st.args,
                };
                for (k, v) in pairs {
                    let key = self.word(loc, k, &scope)?;
                    if key.is_empty() {
                        return Err(Diagnostic::new(
                            loc.clone(),
                            "LABEL names must not be empty",
                        ));
                    }
                    let value = self.word(loc, v, &scope)?;
                    rc.labels.insert(key, value);
                }
            }
            InstructionKind::Run(_) => st.stage.ops.push(Op::Run {
                location: loc.clone(),
            }),
            InstructionKind::Cmd(c) => {
                rc.cmd = Some(command_argv(c, rc));
                st.cmd_set = true;
            }
            InstructionKind::Entrypoint(c) => {
                rc.entrypoint = Some(command_argv(c, rc));
                if !st.cmd_set {
                    rc.cmd = None;
                }
            }
            InstructionKind::Shell(shell) => {
                if shell.is_empty() {
                    return Err(
                        Diagnostic::new(loc.clone(), "SHELL needs at least one word")
                            .with_hint("write SHELL [\"/bin/sh\", \"-c\"]"),
                    );
                }
                rc.shell = Some(shell.clone());
            }
            InstructionKind::Expose(specs) => {
                let scope = Scope {
                    env: &env,
                    args: &st.args,
                };
                for spec in specs {
                    for word in self.words(loc, spec, &scope)? {
                        let ports = Port::parse_spec(&word).map_err(|m| {
                            Diagnostic::new(loc.clone(), m)
                                .with_hint("write EXPOSE 80, 80/udp or 8000-8010/tcp")
                        })?;
                        rc.exposed_ports.extend(ports);
                    }
                }
            }
            InstructionKind::Copy(args) | InstructionKind::Add(args) => {
                let add = matches!(kind, InstructionKind::Add(_));
                let scope = Scope {
                    env: &env,
                    args: &st.args,
                };
                let op = self.copy(
                    loc,
                    add,
                    args,
                    &scope,
                    rc.workdir.as_deref(),
                    earlier,
                    st.stage.index,
                )?;
                st.stage.ops.push(Op::Copy(op));
            }
            InstructionKind::Volume(list) => {
                let scope = Scope {
                    env: &env,
                    args: &st.args,
                };
                for v in list {
                    let path = self.word(loc, v, &scope)?;
                    if path.trim().is_empty() {
                        return Err(Diagnostic::new(
                            loc.clone(),
                            "VOLUME path must not be empty",
                        ));
                    }
                    rc.volumes.insert(path);
                }
            }
            InstructionKind::User(u) => {
                let user = self.word(
                    loc,
                    u,
                    &Scope {
                        env: &env,
                        args: &st.args,
                    },
                )?;
                if user.is_empty() {
                    return Err(Diagnostic::new(loc.clone(), "USER must not be empty"));
                }
                rc.user = Some(user);
            }
            InstructionKind::Workdir(w) => {
                let dir = self.word(
                    loc,
                    w,
                    &Scope {
                        env: &env,
                        args: &st.args,
                    },
                )?;
                let path = resolve_path(rc.workdir.as_deref(), &dir);
                rc.workdir = Some(path.clone());
                st.stage.ops.push(Op::Workdir {
                    location: loc.clone(),
                    path,
                });
            }
            InstructionKind::Stopsignal(s) => {
                let sig = self.word(
                    loc,
                    s,
                    &Scope {
                        env: &env,
                        args: &st.args,
                    },
                )?;
                if signal_number(&sig).is_none() {
                    return Err(Diagnostic::new(
                        loc.clone(),
                        format!("invalid stop signal {sig:?}"),
                    )
                    .with_hint("use a name like SIGTERM or a number like 15"));
                }
                rc.stop_signal = Some(sig);
            }
            InstructionKind::Healthcheck => {
                self.warnings.push(Warning::at(
                    loc.clone(),
                    "HEALTHCHECK is ignored: microVMs have no health checks",
                ));
            }
            InstructionKind::Onbuild(trigger) => {
                self.warnings.push(Warning::at(
                    loc.clone(),
                    format!("ONBUILD {trigger} is ignored"),
                ));
            }
            InstructionKind::Maintainer(_) => {
                self.warnings.push(Warning::at(
                    loc.clone(),
                    "MAINTAINER is deprecated and ignored; use LABEL org.opencontainers.image.authors=...",
                ));
            }
            InstructionKind::From(_) => {}
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn copy(
        &self,
        loc: &Location,
        add: bool,
        args: &CopyArgs,
        scope: &Scope<'_>,
        workdir: Option<&str>,
        earlier: &[Stage],
        index: usize,
    ) -> Result<CopyOp, Diagnostic> {
        let from = match &args.from {
            None => CopyFrom::Context,
            Some(f) => {
                let f = self.word(loc, f, scope)?;
                match find_stage(earlier, &f, index) {
                    Some(i) => CopyFrom::Stage(i),
                    None if f.parse::<usize>().is_ok() => {
                        return Err(Diagnostic::new(
                            loc.clone(),
                            format!("--from={f}: no earlier stage with that index"),
                        ));
                    }
                    None => CopyFrom::Image(f),
                }
            }
        };
        let mut sources = Vec::new();
        for s in &args.sources {
            sources.push(match s {
                Source::Path(p) => CopySource::Path(self.word(loc, p, scope)?),
                Source::HereDoc {
                    content,
                    expand: true,
                } => CopySource::Inline(self.word(
                    loc,
                    &escape_quotes(content, self.file.escape),
                    scope,
                )?),
                Source::HereDoc {
                    content,
                    expand: false,
                } => CopySource::Inline(content.clone()),
            });
        }
        let dest = self.word(loc, &args.dest, scope)?;
        let mut abs = resolve_path(workdir, &dest);
        if (dest.ends_with('/') || dest == "." || dest.ends_with("/.")) && !abs.ends_with('/') {
            abs.push('/');
        }
        let chown = args
            .chown
            .as_ref()
            .map(|c| self.word(loc, c, scope))
            .transpose()?;
        let chmod = match &args.chmod {
            None => None,
            Some(m) => {
                let m = self.word(loc, m, scope)?;
                Some(
                    u32::from_str_radix(&m, 8)
                        .ok()
                        .filter(|v| *v <= 0o7777)
                        .ok_or_else(|| {
                            Diagnostic::new(loc.clone(), format!("invalid --chmod={m}"))
                                .with_hint("use an octal mode like 755 or 0644")
                        })?,
                )
            }
        };
        Ok(CopyOp {
            location: loc.clone(),
            add,
            from,
            sources,
            dest: abs,
            chown,
            chmod,
            exclude: args.exclude.clone(),
        })
    }
}

/// Heredoc content is expanded like a double-quoted string minus the quotes.
fn escape_quotes(content: &str, escape: char) -> String {
    let mut out = String::with_capacity(content.len());
    for c in content.chars() {
        if c == '"' || c == '\'' {
            out.push(escape);
        }
        out.push(c);
    }
    out
}

/// The command line of a CMD/ENTRYPOINT: shell form wrapped in the shell.
fn command_argv(c: &Command, rc: &RunConfig) -> Vec<String> {
    match c {
        Command::Exec(v) => v.clone(),
        Command::Shell(s) => {
            let mut argv = rc.shell_or_default();
            argv.push(s.clone());
            argv
        }
    }
}

/// Joins `path` onto `base` (default `/`) and cleans `.` and `..`.
pub fn resolve_path(base: Option<&str>, path: &str) -> String {
    let joined = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("{}/{path}", base.unwrap_or("/"))
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

fn substitution_error(loc: &Location, word: &str, e: &crate::subst::SubstError) -> Diagnostic {
    Diagnostic::new(loc.clone(), format!("cannot expand {word:?}: {e}"))
        .with_hint("see Docker's rules: $VAR, ${VAR}, ${VAR:-default}, ${VAR:+alt}")
}
