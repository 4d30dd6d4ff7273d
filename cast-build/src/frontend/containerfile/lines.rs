//! The Containerfile's lines as BuildKit's parser reads them: parser
//! directives, comments, line continuations and heredoc bodies.
//!
//! This is the one place that knows how physical lines become instructions:
//! a line that ends with the escape character (blanks after it allowed) goes
//! on, unless that escape is itself escaped (`ENV C=trailing\\` ends the line);
//! comment lines and blank lines inside a continuation are skipped; a heredoc
//! body starts on the line after its instruction and ends at a line that is
//! exactly its delimiter (leading tabs removed for `<<-`). Every piece of a
//! [`Logical`] line keeps where it came from, so an error anywhere in an
//! instruction names its own `file:line:column`.

use std::path::Path;

use crate::diag::{Diagnostic, Location};

/// The largest Containerfile read (8 MiB): larger input is refused.
pub const MAX_FILE_BYTES: usize = 8 << 20;

/// One instruction's text, continuations joined, and where each piece is.
#[derive(Debug, Clone)]
pub(crate) struct Logical {
    /// The joined text, leading blanks of the first line removed.
    pub(crate) text: String,
    /// `(offset in text, line, offset of that line in the file, offset in the file)`
    /// for the start of every piece.
    pieces: Vec<(usize, usize, usize, usize)>,
}

impl Logical {
    /// The byte offset in the file of `offset` in the text, with its line and
    /// the offset of that line's start.
    fn source(&self, offset: usize) -> (usize, usize, usize) {
        let i = self.pieces.partition_point(|p| p.0 <= offset).max(1) - 1;
        let (text_at, line, line_start, file_at) = self.pieces[i];
        (line, line_start, file_at + (offset - text_at))
    }
}

/// A heredoc body as read from the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Body {
    /// Every line of the body with its newline, the delimiter line excluded.
    pub(crate) content: String,
}

/// Reads a Containerfile's logical lines one by one.
pub(crate) struct Reader<'a> {
    path: &'a Path,
    src: &'a str,
    /// Offset of the next physical line.
    pos: usize,
    /// Number of the next physical line, from 1.
    line: usize,
    /// The escape character in effect.
    pub(crate) escape: char,
    /// Parser directives found at the top: `(name, value, location)`.
    pub(crate) directives: Vec<(String, String, Location)>,
    /// Blank lines inside continuations and a continuation at the end of the file.
    pub(crate) notes: Vec<(Location, String)>,
}

/// One physical line: its text without the line end, its start and number.
struct Physical<'a> {
    text: &'a str,
    start: usize,
    number: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading `src`; refuses NUL bytes (they cannot reach a process
    /// through `execve` and would be echoed raw in messages).
    pub(crate) fn new(path: &'a Path, src: &'a str) -> Result<Self, Diagnostic> {
        check_size(path, src.len())?;
        if let Some(at) = src.find('\0') {
            let loc = Location::at(path, src, at);
            return Err(Diagnostic::new(loc, "NUL byte in the Containerfile")
                .with_hint("a Containerfile is text; remove the NUL byte"));
        }
        let mut reader = Self {
            path,
            src,
            pos: 0,
            line: 1,
            escape: '\\',
            directives: Vec::new(),
            notes: Vec::new(),
        };
        reader.read_directives()?;
        Ok(reader)
    }

    /// The location of byte `at` of a physical line.
    fn loc(&self, number: usize, line_start: usize, at: usize) -> Location {
        let column = self.src[line_start..at].chars().count() + 1;
        location(self.path, number, column)
    }

    /// The location of `offset` in `line`'s text.
    pub(crate) fn locate(&self, line: &Logical, offset: usize) -> Location {
        let (number, line_start, at) = line.source(offset.min(line.text.len()));
        let mut at = at.min(self.src.len());
        while !self.src.is_char_boundary(at) {
            at -= 1;
        }
        self.loc(number, line_start, at)
    }

    fn next_physical(&mut self) -> Option<Physical<'a>> {
        if self.pos >= self.src.len() {
            return None;
        }
        let rest = &self.src[self.pos..];
        let end = rest.find('\n').map_or(rest.len(), |i| i + 1);
        let raw = &rest[..end];
        let text = raw.trim_end_matches(['\r', '\n']);
        let p = Physical {
            text,
            start: self.pos,
            number: self.line,
        };
        self.pos += end;
        self.line += 1;
        Some(p)
    }

    /// `# name=value` lines at the very top; the first other line ends them.
    fn read_directives(&mut self) -> Result<(), Diagnostic> {
        // A byte-order mark is skipped.
        if self.src.starts_with('\u{feff}') {
            self.pos = 3;
        }
        loop {
            let save = (self.pos, self.line);
            let Some(p) = self.next_physical() else {
                break;
            };
            let Some((name, name_at, value, value_at)) = directive(p.text) else {
                (self.pos, self.line) = save;
                break;
            };
            let lower = name.to_ascii_lowercase();
            if !matches!(lower.as_str(), "escape" | "syntax" | "check") {
                (self.pos, self.line) = save;
                break;
            }
            let loc = self.loc(p.number, p.start, p.start + value_at);
            let name_loc = self.loc(p.number, p.start, p.start + name_at);
            if self.directives.iter().any(|(n, _, _)| *n == lower) {
                return Err(Diagnostic::new(
                    loc,
                    format!("only one {lower} parser directive can be used"),
                ));
            }
            if lower == "escape" {
                self.escape = match value {
                    "\\" => '\\',
                    "`" => '`',
                    _ => {
                        return Err(Diagnostic::new(
                            loc,
                            format!("invalid escape '{}'", crate::words::shown_bare(value)),
                        )
                        .with_hint("the escape directive accepts only `\\` or `` ` ``"))
                    }
                };
            }
            self.directives.push((lower, value.to_owned(), name_loc));
        }
        Ok(())
    }

    /// `line` without its continuation escape, or `None` if it does not go on.
    fn continued<'l>(&self, line: &'l str) -> Option<&'l str> {
        let body = line
            .trim_end_matches([' ', '\t'])
            .strip_suffix(self.escape)?;
        // An escaped escape (`\\`) is a literal character, not a continuation.
        (!body.ends_with(self.escape)).then_some(body)
    }

    /// The next instruction line, or `None` at the end of the file.
    pub(crate) fn next_line(&mut self) -> Option<Logical> {
        loop {
            let p = self.next_physical()?;
            let trimmed = p.text.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let lead = p.text.len() - trimmed.len();
            let mut line = Logical {
                text: String::new(),
                pieces: vec![(0, p.number, p.start, p.start + lead)],
            };
            let mut more = match self.continued(trimmed) {
                Some(body) => {
                    line.text.push_str(body);
                    true
                }
                None => {
                    line.text.push_str(trimmed);
                    false
                }
            };
            let mut last = p.number;
            while more {
                let Some(p) = self.next_physical() else {
                    let loc = location(self.path, last, 1);
                    self.notes.push((
                        loc,
                        "the last instruction ends with a line continuation".to_owned(),
                    ));
                    break;
                };
                last = p.number;
                let trimmed = p.text.trim_start();
                if trimmed.starts_with('#') {
                    continue;
                }
                if trimmed.is_empty() {
                    self.notes.push((
                        location(self.path, p.number, 1),
                        "empty continuation line".to_owned(),
                    ));
                    continue;
                }
                line.pieces
                    .push((line.text.len(), p.number, p.start, p.start));
                match self.continued(p.text) {
                    Some(body) => line.text.push_str(body),
                    None => {
                        line.text.push_str(p.text);
                        more = false;
                    }
                }
            }
            return Some(line);
        }
    }

    /// Reads a heredoc body up to the line `name` (leading tabs ignored with
    /// `chomp`); `None` if the file ends first.
    pub(crate) fn body(&mut self, name: &str, chomp: bool) -> Option<Body> {
        let mut content = String::new();
        loop {
            let p = self.next_physical()?;
            let candidate = if chomp {
                p.text.trim_start_matches('\t')
            } else {
                p.text
            };
            if candidate == name {
                return Some(Body { content });
            }
            let end = self.pos;
            content.push_str(&self.src[p.start..end]);
        }
    }
}

/// Refuses input longer than [`MAX_FILE_BYTES`].
pub(crate) fn check_size(path: &Path, len: usize) -> Result<(), Diagnostic> {
    if len <= MAX_FILE_BYTES {
        return Ok(());
    }
    Err(Diagnostic::new(
        location(path, 1, 1),
        format!("the file is larger than {} MiB", MAX_FILE_BYTES >> 20),
    )
    .with_hint("a Containerfile is text; check the path names the right file"))
}

fn location(path: &Path, line: usize, column: usize) -> Location {
    Location {
        file: path.to_owned(),
        line,
        column,
    }
}

/// BuildKit's directive syntax: `#` blanks `name` blanks `=` blanks `value`;
/// returns the name, its byte offset, the trimmed value and its byte offset.
fn directive(line: &str) -> Option<(&str, usize, &str, usize)> {
    let rest = line.trim_start().strip_prefix('#')?.trim_start();
    let name_len = rest
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())))
        .map_or(rest.len(), |(i, _)| i);
    if name_len == 0 {
        return None;
    }
    let name = &rest[..name_len];
    let after = rest[name_len..].trim_start().strip_prefix('=')?;
    let value = after.trim();
    if value.is_empty() {
        return None;
    }
    let offset = |s: &str| s.as_ptr() as usize - line.as_ptr() as usize;
    Some((name, offset(name), value, offset(value)))
}
