//! Conversion of `parse-dockerfile` output into owned, located instructions,
//! and of its errors into diagnostics with hints.

use std::path::Path;

use parse_dockerfile as pd;

use super::{Command, From, Instruction, InstructionKind, INSTRUCTIONS};
use crate::diag::{Diagnostic, Location};
use crate::flags::{self, Flags};
use crate::words::{self, PairsError};

/// Turns a parser error into a located diagnostic with a hint.
pub(super) fn parser_error(path: &Path, text: &str, e: &pd::Error) -> Diagnostic {
    let message = format!("{e:#}");
    let (line, column) = if e.line() == 0 {
        (1, 1)
    } else {
        (e.line(), e.column())
    };
    let location = Location {
        file: path.to_owned(),
        line,
        column,
    };
    let diag = Diagnostic::new(location, message.clone());
    if message == "unknown instruction ''" {
        return Diagnostic::new(diag.location, "expected an instruction")
            .with_hint("ONBUILD takes an instruction, e.g. ONBUILD COPY . /src");
    }
    if let Some(word) = message
        .strip_prefix("unknown instruction '")
        .and_then(|m| m.strip_suffix('\''))
    {
        return match words::nearest(word, INSTRUCTIONS) {
            Some(best) => diag.with_hint(format!("did you mean {best}?")),
            None => diag.with_hint(format!("valid instructions: {}", INSTRUCTIONS.join(", "))),
        };
    }
    if message == "expected FROM" || message.starts_with("expected at least one FROM") {
        let first = text.lines().position(|l| {
            let l = l.trim();
            !l.is_empty() && !l.starts_with('#')
        });
        let message = "a Containerfile must start with FROM (only ARG may come before it)";
        return Diagnostic {
            location: Location {
                file: path.to_owned(),
                line: if e.line() == 0 {
                    first.map_or(1, |l| l + 1)
                } else {
                    line
                },
                column,
            },
            message: "missing FROM".to_owned(),
            hint: Some(message.to_owned()),
        };
    }
    let hint = match message.as_str() {
        m if m.starts_with("invalid escape") => "the escape directive accepts only `\\` or `` ` ``",
        "expected JSON array" => {
            "write the arguments as a JSON array, e.g. SHELL [\"/bin/sh\", \"-c\"]"
        }
        "expected AS" => "write FROM image [AS name]",
        "expected CMD or NONE" => "write HEALTHCHECK CMD command, or HEALTHCHECK NONE",
        _ => return diag,
    };
    diag.with_hint(hint)
}

/// Conversion context: the file, its text and the escape character.
pub(crate) struct Cx<'a> {
    pub(super) path: &'a Path,
    pub(super) text: &'a str,
    pub(super) escape: char,
}

impl Cx<'_> {
    fn loc(&self, offset: usize) -> Location {
        Location::at(self.path, self.text, offset)
    }

    pub(crate) fn err(&self, offset: usize, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(self.loc(offset), message)
    }

    fn command(&self, c: &pd::Command<'_>) -> Command {
        match c {
            pd::Command::Exec(args) => {
                Command::Exec(args.value.iter().map(|s| s.value.to_string()).collect())
            }
            pd::Command::Shell(s) => {
                Command::Shell(words::join_continuations(s.value, self.escape))
            }
            _ => Command::Exec(Vec::new()),
        }
    }

    fn pairs(
        &self,
        at: usize,
        kw: &str,
        s: &pd::UnescapedString<'_>,
    ) -> Result<Vec<(String, String)>, Diagnostic> {
        words::name_values(&s.value, self.escape).map_err(|e| match e {
            PairsError::MissingValue => self
                .err(at, format!("{kw} needs a value"))
                .with_hint(format!("write `{kw} name=value`")),
            PairsError::NoEquals(w) => self
                .err(s.span.start, format!("{kw}: can't find = in {w:?}"))
                .with_hint("every word must be name=value; quote values with spaces"),
        })
    }

    pub(super) fn convert(&self, i: &pd::Instruction<'_>) -> Result<Instruction, Diagnostic> {
        use pd::Instruction as I;
        let (start, kind) = match i {
            I::From(f) => {
                let mut fl = Flags::new(self, "FROM", &f.options, &["platform"])?;
                let platform = fl.value("platform");
                let name = f.as_.as_ref().map(|(_, n)| n.value.to_string());
                if let Some((_, n)) = &f.as_ {
                    if !valid_stage_name(&n.value) {
                        return Err(self
                            .err(n.span.start, format!("invalid stage name {:?}", n.value))
                            .with_hint("stage names start with a letter and use letters, digits, '-', '_' and '.'"));
                    }
                }
                (
                    f.from.span.start,
                    InstructionKind::From(From {
                        image: f.image.value.to_string(),
                        platform,
                        name,
                    }),
                )
            }
            I::Arg(a) => (
                a.arg.span.start,
                InstructionKind::Arg(words::arg_decls(&a.arguments.value, self.escape)),
            ),
            I::Env(e) => (
                e.env.span.start,
                InstructionKind::Env(self.pairs(e.env.span.start, "ENV", &e.arguments)?),
            ),
            I::Label(l) => (
                l.label.span.start,
                InstructionKind::Label(self.pairs(l.label.span.start, "LABEL", &l.arguments)?),
            ),
            I::Run(r) => (
                r.run.span.start,
                InstructionKind::Run(self.command(&r.arguments)),
            ),
            I::Cmd(c) => {
                let command = self.command(&c.arguments);
                if command == Command::Shell(String::new()) {
                    return Err(self
                        .err(c.cmd.span.start, "CMD needs a command")
                        .with_hint("write CMD [\"program\", \"arg\"] or CMD [] to clear it"));
                }
                (c.cmd.span.start, InstructionKind::Cmd(command))
            }
            I::Entrypoint(e) => (
                e.entrypoint.span.start,
                InstructionKind::Entrypoint(self.command(&e.arguments)),
            ),
            I::Shell(s) => (
                s.shell.span.start,
                InstructionKind::Shell(s.arguments.iter().map(|a| a.value.to_string()).collect()),
            ),
            I::Expose(e) => (
                e.expose.span.start,
                InstructionKind::Expose(e.arguments.iter().map(|a| a.value.to_string()).collect()),
            ),
            I::Copy(c) => (
                c.copy.span.start,
                InstructionKind::Copy(flags::copy_args(self, "COPY", &c.options, &c.src, &c.dest)?),
            ),
            I::Add(a) => (
                a.add.span.start,
                InstructionKind::Add(flags::copy_args(self, "ADD", &a.options, &a.src, &a.dest)?),
            ),
            I::Volume(v) => {
                let list = match &v.arguments {
                    pd::JsonOrStringArray::Json(a) => {
                        a.value.iter().map(|s| s.value.to_string()).collect()
                    }
                    pd::JsonOrStringArray::String(a) => {
                        a.iter().map(|s| s.value.to_string()).collect()
                    }
                };
                (v.volume.span.start, InstructionKind::Volume(list))
            }
            I::User(u) => (
                u.user.span.start,
                InstructionKind::User(u.arguments.value.to_string()),
            ),
            I::Workdir(w) => (
                w.workdir.span.start,
                InstructionKind::Workdir(w.arguments.value.to_string()),
            ),
            I::Stopsignal(s) => (
                s.stopsignal.span.start,
                InstructionKind::Stopsignal(s.arguments.value.to_string()),
            ),
            I::Healthcheck(h) => (h.healthcheck.span.start, InstructionKind::Healthcheck),
            I::Onbuild(o) => {
                let inner = self.text[o.onbuild.span.end..].trim_start();
                let line = inner.lines().next().unwrap_or_default().trim().to_owned();
                (o.onbuild.span.start, InstructionKind::Onbuild(line))
            }
            I::Maintainer(m) => (
                m.maintainer.span.start,
                InstructionKind::Maintainer(m.name.value.to_string()),
            ),
            _ => {
                // parse-dockerfile is non-exhaustive; a new variant is an instruction we do not know.
                return Err(Diagnostic::new(
                    Location {
                        file: self.path.to_owned(),
                        line: 1,
                        column: 1,
                    },
                    "unsupported instruction",
                ));
            }
        };
        Ok(Instruction {
            location: self.loc(start),
            kind,
        })
    }
}

/// Docker's rule for `AS name`: `^[a-z][a-z0-9-_.]*$`, case-insensitive.
fn valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}
