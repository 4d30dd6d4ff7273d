//! Parsing a Containerfile into located, owned instructions.
//!
//! `parse-dockerfile` does the lexing (line continuations, JSON forms, heredocs,
//! `# escape=`); this module turns its output into [`Instruction`]s that carry
//! a [`Location`] and nothing borrowed, checks flags per instruction, and turns
//! parser errors into [`Diagnostic`]s with `file:line:column` and a hint.
//! Nothing is expanded here: values are kept raw for [`crate::eval`].

use std::path::{Path, PathBuf};

use parse_dockerfile as pd;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::diag::{Diagnostic, Location, Warning};
use crate::flags::{self, Flags};
use crate::words::{self, PairsError};

/// Every instruction Docker knows, for hints.
pub const INSTRUCTIONS: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// Why a Containerfile could not be parsed.
#[derive(Debug, Error)]
pub enum ParseError {
    /// The file could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The text is not a valid Containerfile.
    #[error(transparent)]
    Syntax(#[from] Diagnostic),
}

/// A parsed Containerfile.
#[derive(Debug, Clone)]
pub struct Containerfile {
    /// The file as the user named it (used in every location).
    pub path: PathBuf,
    /// The escape character (`\` or `` ` ``).
    pub escape: char,
    /// The `# syntax=` directive, accepted and ignored.
    pub syntax: Option<String>,
    /// All instructions in order, the ARGs before the first FROM included.
    pub instructions: Vec<Instruction>,
    /// Notes from parsing (ignored directives).
    pub warnings: Vec<Warning>,
}

/// One instruction and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// Where the instruction keyword is.
    pub location: Location,
    /// What it says, unexpanded.
    pub kind: InstructionKind,
}

/// A command in exec (JSON) or shell form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// `["prog", "arg"]`.
    Exec(Vec<String>),
    /// `prog arg`, continuations joined.
    Shell(String),
}

/// `FROM [--platform=P] image [AS name]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct From {
    /// Image reference or stage name, unexpanded.
    pub image: String,
    /// `--platform`, unexpanded.
    pub platform: Option<String>,
    /// `AS name`.
    pub name: Option<String>,
}

/// A COPY or ADD source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A path or glob in the context (or the `--from` stage), unexpanded.
    Path(String),
    /// An inline heredoc file.
    HereDoc {
        /// The content.
        content: String,
        /// Whether `$VAR` in the content is expanded (unquoted delimiter).
        expand: bool,
    },
}

/// COPY and ADD arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyArgs {
    /// Sources, at least one.
    pub sources: Vec<Source>,
    /// Destination, unexpanded.
    pub dest: String,
    /// `--from` (stage name, index or image).
    pub from: Option<String>,
    /// `--chown=user[:group]`.
    pub chown: Option<String>,
    /// `--chmod=mode`.
    pub chmod: Option<String>,
    /// `--link` (accepted; every copy here is independent anyway).
    pub link: bool,
    /// `--exclude` patterns.
    pub exclude: Vec<String>,
}

/// What an instruction says, before any expansion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstructionKind {
    /// `FROM`.
    From(From),
    /// `ARG name[=default] ...`.
    Arg(Vec<(String, Option<String>)>),
    /// `ENV k=v ...` (raw values).
    Env(Vec<(String, String)>),
    /// `LABEL k=v ...` (raw values).
    Label(Vec<(String, String)>),
    /// `RUN`: refused at evaluation.
    Run(Command),
    /// `CMD`.
    Cmd(Command),
    /// `ENTRYPOINT`.
    Entrypoint(Command),
    /// `SHELL ["sh", "-c"]`.
    Shell(Vec<String>),
    /// `EXPOSE` words.
    Expose(Vec<String>),
    /// `COPY`.
    Copy(CopyArgs),
    /// `ADD`.
    Add(CopyArgs),
    /// `VOLUME` paths.
    Volume(Vec<String>),
    /// `USER user[:group]`.
    User(String),
    /// `WORKDIR path`.
    Workdir(String),
    /// `STOPSIGNAL signal`.
    Stopsignal(String),
    /// `HEALTHCHECK` (ignored with a warning).
    Healthcheck,
    /// `ONBUILD instruction` (ignored with a warning): the trigger's text.
    Onbuild(String),
    /// `MAINTAINER name` (deprecated).
    Maintainer(String),
}

impl InstructionKind {
    /// The instruction keyword, upper case.
    pub fn keyword(&self) -> &'static str {
        match self {
            Self::From(_) => "FROM",
            Self::Arg(_) => "ARG",
            Self::Env(_) => "ENV",
            Self::Label(_) => "LABEL",
            Self::Run(_) => "RUN",
            Self::Cmd(_) => "CMD",
            Self::Entrypoint(_) => "ENTRYPOINT",
            Self::Shell(_) => "SHELL",
            Self::Expose(_) => "EXPOSE",
            Self::Copy(_) => "COPY",
            Self::Add(_) => "ADD",
            Self::Volume(_) => "VOLUME",
            Self::User(_) => "USER",
            Self::Workdir(_) => "WORKDIR",
            Self::Stopsignal(_) => "STOPSIGNAL",
            Self::Healthcheck => "HEALTHCHECK",
            Self::Onbuild(_) => "ONBUILD",
            Self::Maintainer(_) => "MAINTAINER",
        }
    }
}

impl Containerfile {
    /// Reads and parses `path`.
    pub fn read(path: &Path) -> Result<Self, ParseError> {
        let text = std::fs::read_to_string(path).map_err(|source| ParseError::Read {
            path: path.to_owned(),
            source,
        })?;
        Ok(Self::parse(path, &text)?)
    }

    /// Parses `text`; `path` is only used in locations.
    pub fn parse(path: &Path, text: &str) -> Result<Self, Diagnostic> {
        // parse-dockerfile strips a BOM; spans are relative to the rest.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let file = pd::parse(text).map_err(|e| parser_error(path, text, &e))?;
        let escape = file
            .parser_directives
            .escape
            .as_ref()
            .map_or('\\', |d| d.value.value);
        let mut warnings = Vec::new();
        let syntax = file.parser_directives.syntax.as_ref().map(|d| {
            let loc = Location::at(path, text, d.span().start);
            warnings.push(Warning::at(
                loc,
                format!(
                    "`# syntax={}` ignored: cargo-cast has its own frontend",
                    d.value.value
                ),
            ));
            d.value.value.to_owned()
        });
        if let Some(check) = &file.parser_directives.check {
            let loc = Location::at(path, text, check.span().start);
            warnings.push(Warning::at(loc, "`# check=` ignored"));
        }
        let cx = Cx { path, text, escape };
        let instructions = file
            .instructions
            .iter()
            .map(|i| cx.convert(i))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            path: path.to_owned(),
            escape,
            syntax,
            instructions,
            warnings,
        })
    }
}

/// Turns a parser error into a located diagnostic with a hint.
fn parser_error(path: &Path, text: &str, e: &pd::Error) -> Diagnostic {
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
    if message.starts_with("invalid escape") {
        return diag.with_hint("the escape directive accepts only `\\` or `` ` ``");
    }
    diag
}

/// Conversion context: the file, its text and the escape character.
pub(crate) struct Cx<'a> {
    path: &'a Path,
    text: &'a str,
    escape: char,
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

    fn convert(&self, i: &pd::Instruction<'_>) -> Result<Instruction, Diagnostic> {
        use pd::Instruction as I;
        let (start, kind) = match i {
            I::From(f) => {
                let mut fl = Flags::new(self, "FROM", &f.options, &["platform"])?;
                let platform = fl.value("platform");
                let name = f.as_.as_ref().map(|(_, n)| n.value.to_string());
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
            I::Cmd(c) => (
                c.cmd.span.start,
                InstructionKind::Cmd(self.command(&c.arguments)),
            ),
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
