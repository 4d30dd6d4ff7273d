//! Evaluation of one instruction inside a stage: ENV/ARG/LABEL substitution,
//! CMD/ENTRYPOINT/SHELL rules, EXPOSE/VOLUME/USER/WORKDIR/STOPSIGNAL values.

use std::cell::Cell;
use std::collections::HashMap;

use crate::containerfile::{Command, InstructionKind};
use crate::diag::{Diagnostic, Location, Warning};
use crate::runconfig::{signal_number, Port, RunConfig};
use crate::stages::{ArgValue, Op, Stage};
use crate::subst::{expand_word, expand_words};

use super::{resolve_path, EvalOptions, Scope};
use crate::containerfile::Containerfile;

/// A stage being evaluated.
pub(super) struct StageState {
    pub(super) stage: Stage,
    pub(super) args: Vec<(String, Option<String>)>,
    pub(super) cmd_set: bool,
}

impl StageState {
    pub(super) fn finish(self) -> Stage {
        self.stage
    }
}

/// A stage by name (case-insensitive) or index, among the first `before`.
pub(super) fn find_stage(
    names: &HashMap<String, usize>,
    key: &str,
    before: usize,
) -> Option<usize> {
    match names.get(&key.to_ascii_lowercase()) {
        Some(i) if *i < before => Some(*i),
        _ => key.parse::<usize>().ok().filter(|i| *i < before),
    }
}

/// The most text all expansions of one evaluation may produce (64 MiB):
/// `ARG A=$B$B` doubled again and again stops here with an error.
pub(crate) const EXPANSION_BUDGET: usize = 64 << 20;

pub(super) struct Evaluator<'a> {
    pub(super) file: &'a Containerfile,
    pub(super) options: &'a EvalOptions,
    pub(super) used_args: Vec<String>,
    pub(super) warnings: Vec<Warning>,
    /// Every stage name in the file (lower case) and its index.
    pub(super) names: HashMap<String, usize>,
    /// What expansions may still produce, in bytes.
    pub(super) budget: Cell<usize>,
}

impl Evaluator<'_> {
    pub(super) fn word(
        &self,
        loc: &Location,
        word: &str,
        scope: &Scope<'_>,
    ) -> Result<String, Diagnostic> {
        let out = expand_word(word, self.file.escape, &|n| scope.get(n))
            .map_err(|e| substitution_error(loc, word, &e))?;
        self.charge(loc, out.len())?;
        Ok(out)
    }

    /// Takes `bytes` from the expansion budget.
    pub(super) fn charge(&self, loc: &Location, bytes: usize) -> Result<(), Diagnostic> {
        let left = self.budget.get().checked_sub(bytes).ok_or_else(|| {
            Diagnostic::new(
                loc.clone(),
                format!(
                    "expansions produce more than {} MiB of text",
                    EXPANSION_BUDGET >> 20
                ),
            )
            .with_hint("an ARG or ENV that doubles itself grows exponentially")
        })?;
        self.budget.set(left);
        Ok(())
    }

    fn words(
        &self,
        loc: &Location,
        word: &str,
        scope: &Scope<'_>,
    ) -> Result<Vec<String>, Diagnostic> {
        let out = expand_words(word, self.file.escape, &|n| scope.get(n))
            .map_err(|e| substitution_error(loc, word, &e))?;
        self.charge(loc, out.iter().map(String::len).sum())?;
        Ok(out)
    }

    /// The value of a declared ARG: build-arg, else default, else inherited.
    pub(super) fn arg_value(
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

    pub(super) fn instruction(
        &mut self,
        st: &mut StageState,
        loc: &Location,
        kind: &InstructionKind,
        global: &[(String, Option<String>)],
        builtins: &[(String, String)],
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
                    let value = self.word(loc, v, &scope)?;
                    if key.contains(['\0', '=']) || value.contains('\0') {
                        return Err(Diagnostic::new(
                            loc.clone(),
                            format!(
                                "ENV {} cannot hold a NUL byte or a name with =",
                                crate::words::shown(&key)
                            ),
                        )
                        .with_hint(
                            "a process environment cannot carry them; check the build arguments",
                        ));
                    }
                    expanded.push((key, value));
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
            InstructionKind::Run(command) => {
                let line = super::run::RunLine {
                    command: &command.command,
                    script: super::run::heredoc_script(&command.command, &command.heredocs),
                    heredocs: command
                        .heredocs
                        .iter()
                        .map(|h| format!("{}{}\n", h.content, h.name))
                        .collect(),
                    flags: command
                        .flags
                        .iter()
                        .map(|f| (f.name.clone(), f.value.clone()))
                        .collect(),
                };
                let op = self.run(loc, &line, rc, &st.args, st.stage.index)?;
                st.stage.ops.push(Op::Run(op));
            }
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
                        // `[ip:][host:]port[/proto]`: only the container port
                        // counts (BuildKit's ExposeInvalidFormat lint).
                        let container = word.rsplit(':').next().unwrap_or_default();
                        if container.len() != word.len() {
                            self.warnings.push(Warning::at(
                                loc.clone(),
                                format!(
                                    "EXPOSE should not define an IP address or host-port mapping, found {}; only {} is exposed",
                                    crate::words::shown(&word),
                                    crate::words::shown(container)
                                ),
                            ));
                        }
                        let ports = Port::parse_spec(container).map_err(|m| {
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
                    user: rc.user.clone(),
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
                        format!("invalid stop signal {}", crate::words::shown(&sig)),
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
            InstructionKind::Onbuild(trigger) => rc.onbuild.push(trigger.clone()),
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

fn substitution_error(loc: &Location, word: &str, e: &crate::subst::SubstError) -> Diagnostic {
    Diagnostic::new(
        loc.clone(),
        format!("cannot expand {}: {e}", crate::words::shown(word)),
    )
    .with_hint("see Docker's rules: $VAR, ${VAR}, ${VAR:-default}, ${VAR:+alt}")
}
