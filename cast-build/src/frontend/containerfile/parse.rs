//! One instruction line into an [`Instruction`], with BuildKit's rules: the
//! keyword, then `--flags` up to the first other word (or `--`), then the
//! arguments in the shape the instruction takes (JSON or shell form, words,
//! `name=value` pairs, one string), then heredoc bodies for RUN, COPY and ADD.
//! Errors are [`Diagnostic`]s at the word they are about.

use super::heredoc::{self, Heredoc};
use super::lines::{Logical, Reader};
use super::{Command, Flag, From, Instruction, InstructionKind, Run, INSTRUCTIONS};
use crate::diag::{Diagnostic, Location};
use crate::flags::{self, Flags, RawFlag};
use crate::words::{self, PairsError};

/// Whitespace as BuildKit's `reWhitespace` has it (no newline: lines are joined).
fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\u{b}' | '\u{c}' | '\r')
}

/// The instruction parser over a reader.
pub(crate) struct Parser<'a> {
    pub(crate) reader: Reader<'a>,
    /// Stage names seen so far, lower case (a name may be used once).
    pub(crate) stage_names: std::collections::HashSet<String>,
}

/// A line being parsed: its text and the parser, for locations.
struct Cx<'p, 'a> {
    p: &'p mut Parser<'a>,
    line: &'p Logical,
    /// The heredocs the line read last.
    heredocs: Vec<Heredoc>,
}

impl Cx<'_, '_> {
    fn loc(&self, offset: usize) -> Location {
        self.p.reader.locate(self.line, offset)
    }

    fn err(&self, offset: usize, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(self.loc(offset), message)
    }
}

/// Offset of the first non-blank at or after `at`.
fn skip_blanks(text: &str, at: usize) -> usize {
    at + text[at..].len() - text[at..].trim_start_matches(is_blank).len()
}

impl Parser<'_> {
    /// Parses one logical line.
    pub(crate) fn instruction(&mut self, line: &Logical) -> Result<Instruction, Diagnostic> {
        let mut cx = Cx {
            p: self,
            line,
            heredocs: Vec::new(),
        };
        let kind = cx.kind(0, false)?;
        Ok(Instruction {
            location: cx.loc(0),
            kind,
        })
    }
}

impl Cx<'_, '_> {
    /// The instruction starting at `start` (after `ONBUILD` when `trigger`).
    fn kind(&mut self, start: usize, trigger: bool) -> Result<InstructionKind, Diagnostic> {
        let text = &self.line.text;
        let kw_end = text[start..]
            .find(is_blank)
            .map_or(text.len(), |i| start + i);
        let keyword = text[start..kw_end].to_ascii_uppercase();
        let after = skip_blanks(text, kw_end);
        if !INSTRUCTIONS.contains(&keyword.as_str()) {
            let word = words::shown_bare(&text[start..kw_end]);
            let diag = self.err(start, format!("unknown instruction '{word}'"));
            return Err(match words::nearest(&keyword, INSTRUCTIONS) {
                Some(best) => diag.with_hint(format!("did you mean {best}?")),
                None => diag.with_hint(format!("valid instructions: {}", INSTRUCTIONS.join(", "))),
            });
        }
        if keyword == "ONBUILD" {
            return self.onbuild(start, after, trigger);
        }
        let (raw_flags, args_at) = self.flags(after)?;
        let args_at = skip_blanks(text, args_at);
        let args = text[args_at..].trim_end_matches(is_blank).to_owned();
        let need =
            |cx: &Self, what: &str| cx.err(start, format!("{keyword} instruction requires {what}"));
        let no_flags = || Flags::new(&keyword, &raw_flags, &[]).map(|_| ());
        Ok(match keyword.as_str() {
            "FROM" => {
                let mut fl = Flags::new(&keyword, &raw_flags, &["platform"])?;
                let parts = split_blanks(&args, args_at);
                match parts.as_slice() {
                    [] => return Err(need(self, "at least one argument")),
                    [(image, _)] => InstructionKind::From(From {
                        image: image.to_string(),
                        platform: fl.value("platform"),
                        name: None,
                    }),
                    [(image, _), (kw, _), (name, name_at)] if kw.eq_ignore_ascii_case("as") => {
                        if !self.p.stage_names.insert(name.to_ascii_lowercase()) {
                            return Err(self.err(
                                *name_at,
                                format!("duplicate stage name '{}'", words::shown_bare(name)),
                            ));
                        }
                        if !valid_stage_name(name) {
                            return Err(self
                                .err(*name_at, format!("invalid stage name {}", words::shown(name)))
                                .with_hint("stage names start with a letter and use letters, digits, '-', '_' and '.'"));
                        }
                        InstructionKind::From(From {
                            image: image.to_string(),
                            platform: fl.value("platform"),
                            name: Some(name.to_string()),
                        })
                    }
                    [_, (_, at), ..] => {
                        return Err(self
                            .err(*at, "FROM requires either one or three arguments")
                            .with_hint("write FROM image [AS name]"))
                    }
                }
            }
            "ARG" => {
                no_flags()?;
                if args.is_empty() {
                    return Err(need(self, "at least one argument"));
                }
                InstructionKind::Arg(words::arg_decls(&args, self.p.reader.escape))
            }
            "ENV" | "LABEL" => {
                no_flags()?;
                if args.is_empty() {
                    return Err(need(self, "at least one argument"));
                }
                let pairs = self.pairs(start, args_at, &keyword, &args)?;
                if keyword == "ENV" {
                    InstructionKind::Env(pairs)
                } else {
                    InstructionKind::Label(pairs)
                }
            }
            "RUN" => {
                let fl = Flags::new(&keyword, &raw_flags, flags::RUN_FLAGS)?;
                let command = self.maybe_json(args_at, &args)?;
                if command == Command::Shell(String::new()) {
                    return Err(need(self, "at least one argument"));
                }
                let heredocs = self.heredocs(start, &command)?;
                InstructionKind::Run(Run {
                    command,
                    heredocs,
                    flags: fl.into_flags(),
                })
            }
            "CMD" | "ENTRYPOINT" => {
                no_flags()?;
                let command = self.maybe_json(args_at, &args)?;
                if keyword == "CMD" {
                    if command == Command::Shell(String::new()) {
                        return Err(self
                            .err(start, "CMD needs a command")
                            .with_hint("write CMD [\"program\", \"arg\"] or CMD [] to clear it"));
                    }
                    InstructionKind::Cmd(command)
                } else {
                    InstructionKind::Entrypoint(command)
                }
            }
            "SHELL" => {
                no_flags()?;
                match self.maybe_json(args_at, &args)? {
                    Command::Exec(v) => InstructionKind::Shell(v),
                    Command::Shell(_) => {
                        return Err(self.err(args_at, "expected JSON array").with_hint(
                            "write the arguments as a JSON array, e.g. SHELL [\"/bin/sh\", \"-c\"]",
                        ))
                    }
                }
            }
            "EXPOSE" => {
                no_flags()?;
                if args.is_empty() {
                    return Err(need(self, "at least one argument"));
                }
                InstructionKind::Expose(
                    split_blanks(&args, args_at)
                        .into_iter()
                        .map(|(w, _)| w.to_owned())
                        .collect(),
                )
            }
            "COPY" | "ADD" => {
                let list = self.list(args_at, &args)?;
                if list.len() < 2 {
                    return Err(need(self, "at least two arguments"));
                }
                let heredocs = if list.json {
                    Vec::new()
                } else {
                    self.heredocs(start, &Command::Shell(args.clone()))?
                };
                let dest = list.words.last().cloned().unwrap_or_default();
                if heredoc::parse(&dest).ok().flatten().is_some() {
                    return Err(self.err(
                        start,
                        format!("{keyword} cannot take a heredoc as a destination"),
                    ));
                }
                let mut sources = Vec::new();
                for src in &list.words[..list.words.len() - 1] {
                    sources.push(match heredoc::parse(src).ok().flatten() {
                        Some(w) => {
                            let doc = heredocs.iter().find(|h| h.name == w.name);
                            super::Source::HereDoc {
                                content: doc.map(Heredoc::text).unwrap_or_default(),
                                expand: w.expand,
                            }
                        }
                        None => super::Source::Path(src.clone()),
                    });
                }
                let args = flags::copy_args(&keyword, &raw_flags, sources, dest)?;
                if keyword == "COPY" {
                    InstructionKind::Copy(args)
                } else {
                    InstructionKind::Add(args)
                }
            }
            "VOLUME" => {
                no_flags()?;
                let list = self.list(args_at, &args)?;
                if list.words.is_empty() {
                    return Err(need(self, "at least one argument"));
                }
                InstructionKind::Volume(list.words)
            }
            "USER" | "WORKDIR" | "STOPSIGNAL" | "MAINTAINER" => {
                no_flags()?;
                if args.is_empty() {
                    return Err(need(self, "exactly one argument"));
                }
                match keyword.as_str() {
                    "USER" => InstructionKind::User(args),
                    "WORKDIR" => InstructionKind::Workdir(args),
                    "STOPSIGNAL" => InstructionKind::Stopsignal(args),
                    _ => InstructionKind::Maintainer(args),
                }
            }
            "HEALTHCHECK" => {
                self.healthcheck(after, &raw_flags, args_at, &args)?;
                InstructionKind::Healthcheck
            }
            _ => unreachable!("every keyword of INSTRUCTIONS is handled"),
        })
    }

    /// `ONBUILD instruction`: the trigger is checked as an instruction and
    /// kept as text, heredoc bodies appended, as an image config keeps it.
    fn onbuild(
        &mut self,
        start: usize,
        after: usize,
        trigger: bool,
    ) -> Result<InstructionKind, Diagnostic> {
        let text = &self.line.text;
        if after >= text.len() {
            return Err(self
                .err(after, "expected an instruction")
                .with_hint("ONBUILD takes an instruction, e.g. ONBUILD COPY . /src"));
        }
        let inner_end = text[after..]
            .find(is_blank)
            .map_or(text.len(), |i| after + i);
        let inner = text[after..inner_end].to_ascii_uppercase();
        match inner.as_str() {
            "ONBUILD" => return Err(self.err(after, "ONBUILD ONBUILD is not allowed")),
            "FROM" | "MAINTAINER" => {
                return Err(self.err(
                    after,
                    format!("{inner} isn't allowed as an ONBUILD trigger"),
                ))
            }
            _ if trigger => return Err(self.err(start, "ONBUILD ONBUILD is not allowed")),
            _ => {}
        }
        self.kind(after, true)?;
        let mut expression = self.line.text[after..].to_owned();
        for h in &self.heredocs {
            expression.push('\n');
            expression.push_str(&h.content);
            expression.push_str(&h.name);
        }
        Ok(InstructionKind::Onbuild(expression))
    }

    /// `--name[=value]` words from `at` up to the first other word or `--`
    /// (BuildKit's `extractBuilderFlags`: quotes and escapes are removed);
    /// returns them and where the arguments start.
    fn flags(&self, at: usize) -> Result<(Vec<RawFlag>, usize), Diagnostic> {
        let text = &self.line.text;
        let escape = self.p.reader.escape;
        let mut flags = Vec::new();
        let mut pos = at;
        loop {
            pos = skip_blanks(text, pos);
            if !text[pos..].starts_with("--") {
                return Ok((flags, pos));
            }
            let word_at = pos;
            let mut word = String::new();
            let mut quote: Option<char> = None;
            let mut chars = text[pos..].char_indices();
            let mut end = text.len();
            while let Some((i, c)) = chars.next() {
                match quote {
                    None if is_blank(c) => {
                        end = pos + i;
                        break;
                    }
                    None if c == '\'' || c == '"' => quote = Some(c),
                    Some(q) if c == q => quote = None,
                    _ if c == escape => {
                        if let Some((_, n)) = chars.next() {
                            word.push(n);
                        }
                    }
                    _ => word.push(c),
                }
            }
            pos = end;
            if word == "--" {
                return Ok((flags, pos));
            }
            let body = &word[2..];
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
                None => (body.to_owned(), None),
            };
            flags.push(RawFlag {
                flag: Flag { name, value },
                at: self.loc(word_at),
            });
        }
    }

    /// BuildKit's `parseMaybeJSON`: a JSON array of strings is exec form,
    /// a JSON array with anything else is an error, anything that is not
    /// valid JSON is shell form.
    fn maybe_json(&self, args_at: usize, args: &str) -> Result<Command, Diagnostic> {
        Ok(match self.json(args_at, args)? {
            Some(v) => Command::Exec(v),
            None => Command::Shell(args.to_owned()),
        })
    }

    fn json(&self, args_at: usize, args: &str) -> Result<Option<Vec<String>>, Diagnostic> {
        if !args.starts_with('[') {
            return Ok(None);
        }
        let Ok(serde_json::Value::Array(items)) = serde_json::from_str(args) else {
            return Ok(None);
        };
        items
            .into_iter()
            .map(|v| match v {
                serde_json::Value::String(s) => Ok(s),
                _ => Err(self
                    .err(
                        args_at,
                        "when using JSON array syntax, arrays must be comprised of strings only",
                    )
                    .with_hint("quote every element, e.g. [\"echo\", \"nested\"]")),
            })
            .collect::<Result<_, _>>()
            .map(Some)
    }

    /// BuildKit's `parseMaybeJSONToList`: a JSON array or blank-separated words.
    fn list(&self, args_at: usize, args: &str) -> Result<List, Diagnostic> {
        Ok(match self.json(args_at, args)? {
            Some(words) => List { words, json: true },
            None => List {
                words: split_blanks(args, args_at)
                    .into_iter()
                    .map(|(w, _)| w.to_owned())
                    .collect(),
                json: false,
            },
        })
    }

    fn pairs(
        &self,
        start: usize,
        args_at: usize,
        kw: &str,
        args: &str,
    ) -> Result<Vec<(String, String)>, Diagnostic> {
        words::name_values(args, self.p.reader.escape).map_err(|e| match e {
            PairsError::MissingValue => self
                .err(start, format!("{kw} needs a value"))
                .with_hint(format!("write `{kw} name=value`")),
            PairsError::NoEquals(w) => self
                .err(
                    args_at,
                    format!("{kw}: can't find = in {}", words::shown(&w)),
                )
                .with_hint("every word must be name=value; quote values with spaces"),
        })
    }

    /// Reads the bodies of the heredocs in a shell-form RUN/COPY/ADD line.
    fn heredocs(&mut self, start: usize, command: &Command) -> Result<Vec<Heredoc>, Diagnostic> {
        self.heredocs.clear();
        if !matches!(command, Command::Shell(_)) || !self.line.text[start..].contains("<<") {
            return Ok(Vec::new());
        }
        let found = heredoc::in_line(&self.line.text[start..]).map_err(|m| self.err(start, m))?;
        for w in found {
            let at = start + w.at;
            let Some(body) = self.p.reader.body(&w.name, w.chomp) else {
                return Err(self
                    .err(
                        at,
                        format!("unterminated heredoc <<{}", words::shown(&w.name)),
                    )
                    .with_hint(format!(
                        "end the heredoc with a line holding only {}",
                        words::shown(&w.name)
                    )));
            };
            self.heredocs.push(w.with_body(body.content));
        }
        Ok(self.heredocs.clone())
    }

    /// `HEALTHCHECK NONE` or `HEALTHCHECK [options] CMD command`: checked as
    /// BuildKit checks it (durations, retries), though never run here.
    fn healthcheck(
        &self,
        after: usize,
        raw_flags: &[RawFlag],
        args_at: usize,
        args: &str,
    ) -> Result<(), Diagnostic> {
        let typ_end = args.find(is_blank).unwrap_or(args.len());
        let typ = args[..typ_end].to_ascii_uppercase();
        let rest_at = skip_blanks(args, typ_end);
        let rest = &args[rest_at..];
        match typ.as_str() {
            "NONE" if rest.is_empty() => Ok(()),
            "NONE" => Err(self.err(args_at + rest_at, "HEALTHCHECK NONE takes no arguments")),
            "CMD" => {
                let mut fl = Flags::new("HEALTHCHECK", raw_flags, flags::HEALTHCHECK_FLAGS)?;
                let command = self.maybe_json(args_at + rest_at, rest)?;
                if matches!(&command, Command::Shell(s) if s.is_empty())
                    || matches!(&command, Command::Exec(v) if v.is_empty())
                {
                    return Err(self.err(args_at, "Missing command after HEALTHCHECK CMD"));
                }
                for name in ["interval", "timeout", "start-period", "start-interval"] {
                    if let Some(v) = fl.value(name) {
                        let at = fl.location(name).unwrap_or_else(|| self.loc(after));
                        check_interval(name, &v).map_err(|m| {
                            Diagnostic::new(at, m)
                                .with_hint("write a duration like 30s, 1m30s or 500ms")
                        })?;
                    }
                }
                if let Some(v) = fl.value("retries") {
                    let at = fl.location("retries").unwrap_or_else(|| self.loc(after));
                    match v.parse::<i32>() {
                        Ok(n) if n < 0 => {
                            return Err(Diagnostic::new(
                                at,
                                format!("--retries cannot be negative ({n})"),
                            ))
                        }
                        Ok(_) => {}
                        Err(_) => {
                            return Err(Diagnostic::new(
                                at,
                                format!("invalid --retries={}", words::shown(&v)),
                            )
                            .with_hint("write a whole number like 3"))
                        }
                    }
                }
                Ok(())
            }
            _ => Err(self
                .err(args_at, "expected CMD or NONE")
                .with_hint("write HEALTHCHECK CMD command, or HEALTHCHECK NONE")),
        }
    }
}

/// Arguments as a list: JSON or words.
struct List {
    words: Vec<String>,
    json: bool,
}

impl List {
    fn len(&self) -> usize {
        self.words.len()
    }
}

/// Blank-separated words with their offsets (`at` is the offset of `text`).
fn split_blanks(text: &str, at: usize) -> Vec<(&str, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (is_blank(c), start) {
            (true, Some(s)) => {
                out.push((&text[s..i], at + s));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((&text[s..], at + s));
    }
    out
}

/// Docker's rule for `AS name`: `^[a-z][a-z0-9-_.]*$`, case-insensitive.
fn valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// A HEALTHCHECK interval: a Go duration (`1m30s`, `500ms`, `0`) that is 0
/// or at least 1ms.
fn check_interval(name: &str, value: &str) -> Result<(), String> {
    let nanos = go_duration(value)
        .ok_or_else(|| format!("invalid --{name}={}: not a duration", words::shown(value)))?;
    if nanos != 0.0 && nanos < 1e6 {
        return Err(format!("Interval \"{name}\" cannot be less than 1ms"));
    }
    Ok(())
}

/// Parses a Go `time.Duration` string into nanoseconds.
fn go_duration(s: &str) -> Option<f64> {
    let (sign, mut rest) = match s.strip_prefix('-') {
        Some(r) => (-1.0, r),
        None => (1.0, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Some(0.0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num = &rest[..num_len];
        if num.is_empty() || num == "." {
            return None;
        }
        let value: f64 = num.parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += value * scale;
    }
    Some(sign * total)
}
