//! Parsing a Containerfile into located, owned instructions.
//!
//! `parse-dockerfile` does the lexing (line continuations, JSON forms, heredocs,
//! `# escape=`); this module turns its output into [`Instruction`]s that carry
//! a [`Location`] and nothing borrowed, checks flags per instruction, and turns
//! parser errors into [`Diagnostic`]s with `file:line:column` and a hint.
//! Nothing is expanded here: values are kept raw for [`crate::eval`].

use std::path::{Path, PathBuf};

use parse_dockerfile as pd;

mod convert;

use convert::parser_error;
pub(crate) use convert::Cx;
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
