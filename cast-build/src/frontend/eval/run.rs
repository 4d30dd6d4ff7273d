//! RUN evaluation: the command as the build VM runs it (shell form wrapped in the
//! stage's SHELL, heredoc bodies appended to the script), its environment (ENV,
//! then the stage's ARGs that ENV does not set, as BuildKit does), and the
//! `--mount`/`--network` flags, expanded and checked.

use super::instruction::{find_stage, Evaluator};
use super::{resolve_path, Scope};
use crate::containerfile::Command;
use crate::diag::{Diagnostic, Location};
use crate::runconfig::RunConfig;
use crate::stages::{CopyFrom, RunMount, RunOp};

/// A RUN line's parts as the parser gives them.
pub(super) struct RunLine<'a> {
    pub(super) command: &'a Command,
    /// The body of a RUN that is only a heredoc (`RUN <<EOF`): the script itself.
    pub(super) script: Option<String>,
    /// Heredoc bodies as the shell reads them: body lines, then the delimiter line.
    pub(super) heredocs: Vec<String>,
    /// `--name[=value]` flags, unexpanded.
    pub(super) flags: Vec<(String, Option<String>)>,
}

impl Evaluator<'_> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn run(
        &self,
        loc: &Location,
        line: &RunLine<'_>,
        rc: &RunConfig,
        args: &[(String, Option<String>)],
        index: usize,
    ) -> Result<RunOp, Diagnostic> {
        let scope = Scope { env: &rc.env, args };
        let (argv, shell_form) = match line.command {
            Command::Exec(v) if v.is_empty() => {
                return Err(Diagnostic::new(loc.clone(), "RUN needs a command")
                    .with_hint("write RUN command or RUN [\"program\", \"arg\"]"))
            }
            Command::Exec(v) => (v.clone(), false),
            Command::Shell(_) if line.script.as_ref().is_some_and(|s| s.starts_with("#!")) => {
                return Err(Diagnostic::new(
                    loc.clone(),
                    "a RUN heredoc with its own interpreter (#!) is not supported yet",
                )
                .with_hint("run it with the interpreter: RUN python3 <<EOF ... EOF"))
            }
            Command::Shell(_) if line.script.is_some() => {
                let mut argv = rc.shell_or_default();
                argv.push(line.script.clone().unwrap_or_default());
                (argv, true)
            }
            Command::Shell(s) => {
                let mut script = s.clone();
                for body in &line.heredocs {
                    script.push('\n');
                    script.push_str(body);
                }
                if script.trim().is_empty() {
                    return Err(Diagnostic::new(loc.clone(), "RUN needs a command")
                        .with_hint("write RUN command or RUN [\"program\", \"arg\"]"));
                }
                let mut argv = rc.shell_or_default();
                argv.push(script);
                (argv, true)
            }
        };
        let mut env: Vec<String> = rc.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        for (name, value) in args {
            if let (Some(v), false) = (value, rc.env.iter().any(|(k, _)| k == name)) {
                env.retain(|kv| kv.split_once('=').map(|(k, _)| k) != Some(name));
                env.push(format!("{name}={v}"));
            }
        }
        let mut op = RunOp {
            location: loc.clone(),
            argv,
            shell_form,
            env,
            user: rc.user.clone(),
            workdir: rc.workdir.clone(),
            mounts: Vec::new(),
            network_none: false,
        };
        for (name, value) in &line.flags {
            let value = value
                .as_deref()
                .map(|v| self.word(loc, v, &scope))
                .transpose()?;
            match (name.as_str(), value) {
                ("mount", Some(v)) => op.mounts.push(mount(loc, &v, rc, &self.names, index)?),
                ("network", Some(v)) => match v.as_str() {
                    "none" => op.network_none = true,
                    "default" => {}
                    "host" => {
                        return Err(Diagnostic::new(
                            loc.clone(),
                            "RUN --network=host is not supported: a build VM cannot share the host's network",
                        )
                        .with_hint(format!(
                            "leave it out (the default network reaches the host's loopback as {}) or use --network=none",
                            cast_proto::HOST_ALIAS
                        )))
                    }
                    other => {
                        return Err(Diagnostic::new(
                            loc.clone(),
                            format!("RUN --network={other} is not supported"),
                        )
                        .with_hint("use --network=default or --network=none"))
                    }
                },
                ("security", Some(v)) if v == "sandbox" => {}
                (name, _) => {
                    return Err(Diagnostic::new(
                        loc.clone(),
                        format!("RUN --{name} is not supported here"),
                    )
                    .with_hint("RUN takes --mount=type=..., --network=default|none"))
                }
            }
        }
        Ok(op)
    }
}

/// One `--mount=type=...,target=...` value.
fn mount(
    loc: &Location,
    spec: &str,
    rc: &RunConfig,
    names: &std::collections::HashMap<String, usize>,
    index: usize,
) -> Result<RunMount, Diagnostic> {
    let bad = |m: String| {
        Diagnostic::new(loc.clone(), format!("--mount={spec}: {m}"))
            .with_hint("write --mount=type=cache|bind|tmpfs|secret,target=/path[,option=value]")
    };
    let mut kind = "bind".to_owned();
    let (mut target, mut id, mut source, mut from) = (None, None, None, None);
    let (mut rw, mut ro, mut required, mut size) = (false, false, false, None);
    let (mut mode, mut uid, mut gid) = (None, 0, 0);
    for part in spec.split(',').filter(|p| !p.is_empty()) {
        let (key, value) = match part.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim().to_owned())),
            None => (part.trim().to_ascii_lowercase(), None),
        };
        let flag = |v: &Option<String>| -> Result<bool, Diagnostic> {
            match v.as_deref() {
                None | Some("true") => Ok(true),
                Some("false") => Ok(false),
                Some(o) => Err(bad(format!("{key}={o} is not true or false"))),
            }
        };
        let number = |v: &Option<String>, radix: u32| -> Result<u32, Diagnostic> {
            v.as_deref()
                .and_then(|s| u32::from_str_radix(s, radix).ok())
                .ok_or_else(|| bad(format!("{key} needs a number")))
        };
        match key.as_str() {
            "type" => kind = value.unwrap_or_default(),
            "target" | "dst" | "destination" => target = value,
            "id" => id = value,
            "source" | "src" => source = value,
            "from" => from = value,
            "rw" | "readwrite" => rw = flag(&value)?,
            "ro" | "readonly" => ro = flag(&value)?,
            "required" => required = flag(&value)?,
            "mode" => mode = Some(number(&value, 8)?),
            "uid" => uid = number(&value, 10)?,
            "gid" => gid = number(&value, 10)?,
            "size" => {
                size =
                    Some(value.as_deref().and_then(parse_size).ok_or_else(|| {
                        bad("size needs a number of bytes (k, m, g allowed)".into())
                    })?)
            }
            "sharing" => {} // one build at a time uses a cache here
            other => return Err(bad(format!("unknown option {other:?}"))),
        }
    }
    let absolute = |t: &str| resolve_path(rc.workdir.as_deref(), t);
    let target = target.as_deref().map(absolute);
    let need_target = || {
        target
            .clone()
            .ok_or_else(|| bad("needs target=/path".into()))
    };
    Ok(match kind.as_str() {
        "bind" => RunMount::Bind {
            target: need_target()?,
            from: match from {
                None => CopyFrom::Context,
                Some(f) => match find_stage(names, &f, index) {
                    Some(i) => CopyFrom::Stage(i),
                    None => CopyFrom::Image(f),
                },
            },
            source: source.unwrap_or_else(|| "/".into()),
            rw,
        },
        "cache" => {
            let target = need_target()?;
            RunMount::Cache {
                id: id.unwrap_or_else(|| target.clone()),
                target,
                readonly: ro,
            }
        }
        "tmpfs" => RunMount::Tmpfs {
            target: need_target()?,
            size,
        },
        "secret" => {
            let id = id
                .or_else(|| {
                    target
                        .as_deref()
                        .and_then(|t| t.rsplit('/').next())
                        .map(str::to_owned)
                })
                .ok_or_else(|| bad("needs id=NAME or target=/path".into()))?;
            RunMount::Secret {
                target: target.unwrap_or_else(|| format!("/run/secrets/{id}")),
                id,
                required,
                mode: mode.unwrap_or(0o400),
                uid,
                gid,
            }
        }
        "ssh" => {
            return Err(bad(
                "type=ssh is not supported (no SSH agent in build VMs)".into()
            ))
        }
        other => return Err(bad(format!("unknown mount type {other:?}"))),
    })
}

/// `1024`, `64k`, `512m`, `1g` → bytes.
fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let s = s.strip_suffix('b').unwrap_or(&s);
    let (n, f) = match s.as_bytes().last()? {
        b'k' => (&s[..s.len() - 1], 1 << 10),
        b'm' => (&s[..s.len() - 1], 1 << 20),
        b'g' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    n.parse::<u64>().ok()?.checked_mul(f)
}

/// The script of a RUN that is nothing but one heredoc (`RUN <<EOF`, `<<-EOF`,
/// `<<'EOF'`): as in BuildKit, its body is what the shell runs (not a redirection
/// of an empty command).
pub(super) fn heredoc_script(
    command: &Command,
    heredocs: &[crate::containerfile::Heredoc],
) -> Option<String> {
    let (Command::Shell(s), [doc]) = (command, heredocs) else {
        return None;
    };
    let marker = s.trim().strip_prefix("<<")?;
    let marker = marker.strip_prefix('-').unwrap_or(marker);
    let name = marker.trim_matches(|c| c == '\'' || c == '"');
    (doc.fd == 0 && name == doc.name).then(|| doc.text())
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("64m"), Some(64 << 20));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("100"), Some(100));
        assert_eq!(parse_size("x"), None);
    }
}
