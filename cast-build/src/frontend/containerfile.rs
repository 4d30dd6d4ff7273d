//! Parsing a Containerfile into located, owned instructions, with BuildKit's
//! frontend as the reference.
//!
//! `lines` turns the text into logical lines (directives, comments,
//! continuations, heredoc bodies), `parse` turns each line into an
//! [`Instruction`] (keyword, flags, arguments in JSON or shell form), and
//! every error is a [`Diagnostic`] with `file:line:column` and a hint. The
//! input is bounded ([`MAX_FILE_BYTES`]), must be UTF-8 and free of NUL bytes.
//! Nothing is expanded here: values are kept raw for [`crate::eval`].

use std::io::Read as _;
use std::path::{Path, PathBuf};

mod heredoc;
mod lines;
mod parse;

pub use heredoc::Heredoc;
use lines::Reader;
pub use lines::MAX_FILE_BYTES;
use parse::Parser;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::diag::{Diagnostic, Location, Warning};

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

/// An instruction flag as written: `--name=value` or `--name`, quotes removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flag {
    /// The name, without `--`.
    pub name: String,
    /// The value after `=`, unexpanded; `None` for a bare `--name`.
    pub value: Option<String>,
}

/// What a RUN line says, unexpanded.
///
/// `RUN [--mount=...] [--network=...] [--security=...] command`: the command in
/// shell form (the text after the flags, continuations joined, heredoc
/// bodies not included) or exec form (a JSON array of strings); the heredocs
/// the shell-form line opens (`<<EOF`, `<<-EOF`, `3<<'EOF'`, several per
/// line, anywhere in it), in order, with their bodies; and the flags as
/// parsed (names checked, values not interpreted here).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    /// The command.
    pub command: Command,
    /// Heredocs in the order they appear in the line (none in exec form).
    pub heredocs: Vec<Heredoc>,
    /// `--mount`, `--network`, `--security` in the order written.
    pub flags: Vec<Flag>,
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
    /// ADD `--checksum=sha256:<hex>` of a URL source.
    pub checksum: Option<String>,
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
    /// `RUN`.
    Run(Run),
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
    /// `HEALTHCHECK` (options checked; ignored with a warning).
    Healthcheck,
    /// `ONBUILD instruction`: the trigger's text (heredoc bodies appended,
    /// as an image config keeps it), run at the start of a child stage.
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
    /// Reads and parses `path` (at most [`MAX_FILE_BYTES`] are read).
    pub fn read(path: &Path) -> Result<Self, ParseError> {
        let read_error = |source| ParseError::Read {
            path: path.to_owned(),
            source,
        };
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_FILE_BYTES as u64 + 1).read_to_end(&mut bytes))
            .map_err(read_error)?;
        Ok(Self::parse_bytes(path, &bytes)?)
    }

    /// Parses raw bytes: more than [`MAX_FILE_BYTES`] or invalid UTF-8 is an
    /// error at the offending place.
    pub fn parse_bytes(path: &Path, bytes: &[u8]) -> Result<Self, Diagnostic> {
        lines::check_size(path, bytes.len())?;
        match std::str::from_utf8(bytes) {
            Ok(text) => Self::parse(path, text),
            Err(e) => {
                let valid = std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default();
                Err(
                    Diagnostic::new(Location::at(path, valid, valid.len()), "invalid UTF-8")
                        .with_hint("a Containerfile is UTF-8 text; re-save it as UTF-8"),
                )
            }
        }
    }

    /// Parses `text`; `path` is only used in locations.
    pub fn parse(path: &Path, text: &str) -> Result<Self, Diagnostic> {
        let mut parser = Parser {
            reader: Reader::new(path, text)?,
            stage_names: Default::default(),
        };
        let mut warnings = Vec::new();
        let mut syntax = None;
        for (name, value, loc) in &parser.reader.directives {
            match name.as_str() {
                "syntax" => {
                    warnings.push(Warning::at(
                        loc.clone(),
                        format!("`# syntax={value}` ignored: cargo-cast has its own frontend"),
                    ));
                    syntax = Some(value.clone());
                }
                "check" => warnings.push(Warning::at(loc.clone(), "`# check=` ignored")),
                _ => {}
            }
        }
        let mut instructions = Vec::new();
        while let Some(line) = parser.reader.next_line() {
            instructions.push(parser.instruction(&line)?);
        }
        for (loc, note) in parser.reader.notes.drain(..) {
            warnings.push(Warning::at(loc, note));
        }
        check_first_from(path, &instructions)?;
        Ok(Self {
            path: path.to_owned(),
            escape: parser.reader.escape,
            syntax,
            instructions,
            warnings,
        })
    }

    /// Parses an ONBUILD trigger from a base image's config (one instruction,
    /// heredoc bodies after it); every location and error is put at `at`,
    /// the FROM that runs it, as BuildKit does.
    pub fn trigger(at: &Location, expression: &str) -> Result<Instruction, Diagnostic> {
        let relocate = |d: Diagnostic| {
            Diagnostic::new(
                at.clone(),
                format!(
                    "ONBUILD trigger {} of the base image: {}",
                    crate::words::shown(expression.lines().next().unwrap_or_default()),
                    d.message
                ),
            )
        };
        let mut parser = Parser {
            reader: Reader::new(&at.file, expression).map_err(relocate)?,
            stage_names: Default::default(),
        };
        let mut found = Vec::new();
        while let Some(line) = parser.reader.next_line() {
            found.push(parser.instruction(&line).map_err(relocate)?);
        }
        let [mut ins] = <[Instruction; 1]>::try_from(found).map_err(|_| {
            relocate(Diagnostic::new(
                at.clone(),
                "an ONBUILD trigger must be a single instruction",
            ))
        })?;
        if matches!(
            ins.kind,
            InstructionKind::From(_) | InstructionKind::Onbuild(_) | InstructionKind::Maintainer(_)
        ) {
            return Err(relocate(Diagnostic::new(
                at.clone(),
                format!("{} isn't allowed as an ONBUILD trigger", ins.kind.keyword()),
            )));
        }
        ins.location = at.clone();
        Ok(ins)
    }
}

/// Only ARG may come before the first FROM, and there must be one.
fn check_first_from(path: &Path, instructions: &[Instruction]) -> Result<(), Diagnostic> {
    let first_other = instructions
        .iter()
        .find(|i| !matches!(i.kind, InstructionKind::Arg(_)));
    match first_other {
        Some(i) if matches!(i.kind, InstructionKind::From(_)) => Ok(()),
        other => {
            let location = other
                .or(instructions.first())
                .map(|i| i.location.clone())
                .unwrap_or_else(|| Location {
                    file: path.to_owned(),
                    line: 1,
                    column: 1,
                });
            Err(Diagnostic::new(location, "missing FROM")
                .with_hint("a Containerfile must start with FROM (only ARG may come before it)"))
        }
    }
}
