//! Variable substitution with Docker's rules (BuildKit's `shell.Lex`).
//!
//! A word is scanned once: single quotes keep everything literal, double quotes
//! allow `$` expansion and escape only `"`, `$` and the escape character, and
//! outside quotes the escape character makes the next character literal. `$VAR`,
//! `${VAR}`, `${VAR:-word}`, `${VAR-word}`, `${VAR:+word}`, `${VAR+word}`,
//! `${VAR:?msg}` and `${VAR?msg}` are supported; the `word` part is itself
//! expanded. So are BuildKit's pattern forms: `${VAR#pat}`/`${VAR##pat}` (remove
//! the shortest/longest matching prefix), `${VAR%pat}`/`${VAR%%pat}` (suffix),
//! and `${VAR/pat/repl}`/`${VAR//pat/repl}` (replace the first/every match), where
//! `*` matches any string, `?` one character, and `\*`, `\?`, `\\` are literal.
//! Unset variables expand to nothing. Quotes are removed.

use thiserror::Error;

/// How deep `${...}` may nest inside one word.
pub const MAX_DEPTH: usize = 64;
/// The longest text one word may expand to (16 MiB).
pub const MAX_WORD_BYTES: usize = 16 << 20;

/// Why a word could not be expanded.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SubstError {
    /// A quote was opened and never closed.
    #[error("unterminated {0} quote")]
    UnterminatedQuote(&'static str),
    /// `${` without its `}`.
    #[error("syntax error: missing '}}'")]
    MissingBrace,
    /// `${}`, `${:x}` and the like.
    #[error("syntax error: bad substitution")]
    BadSubstitution,
    /// A modifier other than `-`, `+`, `?` (with or without `:`), `#`, `%` or `/`.
    #[error("unsupported modifier ({0}) in substitution")]
    UnsupportedModifier(char),
    /// `${VAR/pattern` without the `/` before the replacement.
    #[error("syntax error: missing '/' in ${{}}")]
    MissingSlash,
    /// A `#`, `%` or `/` pattern with an escape other than `\*`, `\?` or `\\`.
    #[error("invalid pattern ({pattern}) in substitution: invalid escape '\\{escaped}'")]
    BadPattern {
        /// The pattern as written.
        pattern: String,
        /// The escaped character.
        escaped: char,
    },
    /// `${A:-${A:-...}}` nested deeper than [`MAX_DEPTH`].
    #[error("substitutions nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// The expansion is longer than [`MAX_WORD_BYTES`].
    #[error("the expansion is longer than {} MiB", MAX_WORD_BYTES >> 20)]
    TooLong,
    /// `${VAR?msg}` / `${VAR:?msg}` on an unset (or empty) variable.
    #[error("{name}: {message}")]
    Required {
        /// The variable.
        name: String,
        /// The user's message or Docker's default.
        message: String,
    },
}

/// Expands one word: the result is a single string, quotes removed.
pub fn expand_word(
    word: &str,
    escape: char,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, SubstError> {
    let out = lex(word, escape, env, false)?;
    Ok(out.joined)
}

/// Expands a heredoc body as a shell does for an unquoted delimiter: `$VAR`
/// and `${...}` are expanded, quotes stay as they are, and the escape
/// character only protects `$` and itself.
pub fn expand_heredoc(
    body: &str,
    escape: char,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, SubstError> {
    let out = lex(body, escape, env, true)?;
    Ok(out.joined)
}

/// Expands a word and splits the result on unquoted whitespace (also whitespace
/// that came from an unquoted expansion), like `EXPOSE $PORTS` needs.
pub fn expand_words(
    word: &str,
    escape: char,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, SubstError> {
    let mut out = lex(word, escape, env, false)?;
    out.finish_word();
    Ok(out.words)
}

/// Runs the lexer over all of `text`.
fn lex(
    text: &str,
    escape: char,
    env: &dyn Fn(&str) -> Option<String>,
    heredoc: bool,
) -> Result<Words, SubstError> {
    let mut lexer = Lexer {
        chars: text.chars().collect(),
        pos: 0,
        escape,
        env,
        heredoc,
        depth: 0,
    };
    let mut out = Words::default();
    lexer.process_until(None, &mut out, false)?;
    Ok(out)
}

/// The result being built: the joined string and the whitespace-split words.
#[derive(Default)]
struct Words {
    joined: String,
    words: Vec<String>,
    current: String,
    in_word: bool,
}

impl Words {
    /// A character that never splits (quoted or escaped).
    fn literal(&mut self, c: char) {
        self.joined.push(c);
        self.current.push(c);
        self.in_word = true;
    }

    /// A character outside quotes: whitespace ends the current word.
    fn unquoted(&mut self, c: char) {
        self.joined.push(c);
        if c.is_whitespace() {
            self.finish_word();
        } else {
            self.current.push(c);
            self.in_word = true;
        }
    }

    /// Text outside quotes (an expansion): split on its whitespace, copied
    /// in pieces rather than character by character.
    fn unquoted_str(&mut self, s: &str) {
        self.joined.push_str(s);
        let mut rest = s;
        while let Some(i) = rest.find(char::is_whitespace) {
            if i > 0 {
                self.current.push_str(&rest[..i]);
                self.in_word = true;
            }
            self.finish_word();
            let blank = rest[i..].chars().next().map_or(1, char::len_utf8);
            rest = &rest[i + blank..];
        }
        if !rest.is_empty() {
            self.current.push_str(rest);
            self.in_word = true;
        }
    }

    fn quoted_str(&mut self, s: &str) {
        s.chars().for_each(|c| self.literal(c));
        // An empty quoted string still makes a word: `""`.
        self.in_word = true;
    }

    fn finish_word(&mut self) {
        if self.in_word {
            self.words.push(std::mem::take(&mut self.current));
            self.in_word = false;
        }
    }
}

struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    escape: char,
    env: &'a dyn Fn(&str) -> Option<String>,
    /// Heredoc body: quotes are plain characters, escapes only protect `$`
    /// and the escape character.
    heredoc: bool,
    /// How many `${` are open.
    depth: usize,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    /// Processes until `stop` (consumed) or the end; returns whether `stop` was
    /// seen. With `raw`, an escape stays in the output with the character it
    /// protects (a pattern's `\*` must reach the pattern compiler).
    fn process_until(
        &mut self,
        stop: Option<char>,
        out: &mut Words,
        raw: bool,
    ) -> Result<bool, SubstError> {
        while let Some(c) = self.peek() {
            if Some(c) == stop {
                self.pos += 1;
                return Ok(true);
            }
            if self.heredoc && stop.is_none() && c != '$' {
                self.pos += 1;
                match self.peek() {
                    Some(n) if c == self.escape && (n == '$' || n == self.escape) => {
                        self.pos += 1;
                        out.literal(n);
                    }
                    _ => out.literal(c),
                }
                continue;
            }
            match c {
                '\'' => {
                    let s = self.single_quoted()?;
                    out.quoted_str(&s);
                }
                '"' => {
                    let s = self.double_quoted()?;
                    out.quoted_str(&s);
                }
                '$' => {
                    let value = self.dollar()?;
                    if out.joined.len() + value.len() > MAX_WORD_BYTES {
                        return Err(SubstError::TooLong);
                    }
                    out.unquoted_str(&value);
                }
                _ => {
                    self.pos += 1;
                    if c == self.escape {
                        match self.next() {
                            Some(n) => {
                                if raw {
                                    out.literal(c);
                                }
                                out.literal(n);
                            }
                            None => break,
                        }
                    } else {
                        out.unquoted(c);
                    }
                }
            }
        }
        Ok(stop.is_none())
    }

    fn single_quoted(&mut self) -> Result<String, SubstError> {
        self.pos += 1;
        let mut s = String::new();
        loop {
            match self.next() {
                None => return Err(SubstError::UnterminatedQuote("single")),
                Some('\'') => return Ok(s),
                Some(c) => s.push(c),
            }
        }
    }

    fn double_quoted(&mut self) -> Result<String, SubstError> {
        self.pos += 1;
        let mut s = String::new();
        loop {
            match self.peek() {
                None => return Err(SubstError::UnterminatedQuote("double")),
                Some('"') => {
                    self.pos += 1;
                    return Ok(s);
                }
                Some('$') => {
                    let value = self.dollar()?;
                    if s.len() + value.len() > MAX_WORD_BYTES {
                        return Err(SubstError::TooLong);
                    }
                    s.push_str(&value);
                }
                Some(c) => {
                    self.pos += 1;
                    if c == self.escape {
                        match self.peek() {
                            None => continue,
                            Some(n) if n == '"' || n == '$' || n == self.escape => {
                                self.pos += 1;
                                s.push(n);
                                continue;
                            }
                            Some(_) => {}
                        }
                    }
                    s.push(c);
                }
            }
        }
    }

    fn lookup(&self, name: &str) -> Option<String> {
        (self.env)(name)
    }

    fn dollar(&mut self) -> Result<String, SubstError> {
        if self.depth >= MAX_DEPTH {
            return Err(SubstError::TooDeep);
        }
        self.depth += 1;
        let value = self.dollar_inner();
        self.depth -= 1;
        value
    }

    fn dollar_inner(&mut self) -> Result<String, SubstError> {
        self.pos += 1;
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".to_owned());
            }
            return Ok(self.lookup(&name).unwrap_or_default());
        }
        self.pos += 1;
        match self.peek() {
            None => return Err(SubstError::MissingBrace),
            Some('{' | '}' | ':') => return Err(SubstError::BadSubstitution),
            Some(_) => {}
        }
        let name = self.name();
        let value = self.lookup(&name);
        let (colon, modifier) = match self.next() {
            None => return Err(SubstError::MissingBrace),
            Some('}') => return Ok(value.unwrap_or_default()),
            Some(':') => (true, self.next().ok_or(SubstError::MissingBrace)?),
            Some('/') => return self.replace(value.unwrap_or_default()),
            Some(c @ ('#' | '%')) => {
                let pattern = self.word_until('}', true)?;
                let value = value.unwrap_or_default();
                let (greedy, pattern) = match pattern.strip_prefix(c) {
                    Some(rest) => (true, rest.to_owned()),
                    None => (false, pattern),
                };
                return if c == '#' {
                    self.trim_prefix(&pattern, &value, greedy)
                } else {
                    self.trim_suffix(&pattern, &value, greedy)
                };
            }
            Some(c) => (false, c),
        };
        if !matches!(modifier, '-' | '+' | '?') {
            return Err(SubstError::UnsupportedModifier(modifier));
        }
        let mut inner = Words::default();
        if !self.process_until(Some('}'), &mut inner, false)? {
            return Err(SubstError::MissingBrace);
        }
        let word = inner.joined;
        // With ':' an empty value counts as unset.
        let set = match &value {
            Some(v) => !colon || !v.is_empty(),
            None => false,
        };
        match modifier {
            '-' => Ok(if set { value.unwrap_or_default() } else { word }),
            '+' => Ok(if set { word } else { String::new() }),
            _ if set => Ok(value.unwrap_or_default()),
            _ => {
                let message = if !word.is_empty() {
                    word
                } else if value.is_some() {
                    "is not allowed to be empty".to_owned()
                } else {
                    "is not allowed to be unset".to_owned()
                };
                Err(SubstError::Required { name, message })
            }
        }
    }

    /// The expanded text up to `stop` (consumed); `raw` keeps escapes.
    fn word_until(&mut self, stop: char, raw: bool) -> Result<String, SubstError> {
        let mut inner = Words::default();
        if !self.process_until(Some(stop), &mut inner, raw)? {
            return Err(if stop == '/' {
                SubstError::MissingSlash
            } else {
                SubstError::MissingBrace
            });
        }
        Ok(inner.joined)
    }

    /// `${VAR/pat/repl}` and `${VAR//pat/repl}`, after the first `/`.
    fn replace(&mut self, value: String) -> Result<String, SubstError> {
        let all = self.peek() == Some('/');
        if all {
            self.pos += 1;
        }
        let pattern = self.word_until('/', true)?;
        let replacement = self.word_until('}', false)?;
        let re = self.pattern_regex(&pattern, true, false)?;
        let replacement = regex::NoExpand(&replacement);
        Ok(if all {
            re.replace_all(&value, replacement).into_owned()
        } else {
            re.replace(&value, replacement).into_owned()
        })
    }

    /// `${VAR#pat}` (shortest) and `${VAR##pat}` (longest, `greedy`).
    fn trim_prefix(&self, pattern: &str, value: &str, greedy: bool) -> Result<String, SubstError> {
        let re = self.pattern_regex(pattern, greedy, true)?;
        Ok(match re.find(value) {
            Some(m) => value[m.end()..].to_owned(),
            None => value.to_owned(),
        })
    }

    /// `${VAR%pat}` and `${VAR%%pat}`: a prefix trim of the reversed value with
    /// the reversed pattern (escapes kept in front of what they protect), since
    /// a regex finds leftmost matches only.
    fn trim_suffix(&self, pattern: &str, value: &str, greedy: bool) -> Result<String, SubstError> {
        let mut units: Vec<String> = Vec::new();
        let mut chars = pattern.chars();
        while let Some(c) = chars.next() {
            let mut unit = c.to_string();
            if c == self.escape {
                unit.extend(chars.next());
            }
            units.push(unit);
        }
        let reversed: String = units.into_iter().rev().collect();
        let value: String = value.chars().rev().collect();
        let trimmed = self.trim_prefix(&reversed, &value, greedy)?;
        Ok(trimmed.chars().rev().collect())
    }

    /// A shell pattern as a regex: `*` any string (lazy unless `greedy`), `?` one
    /// character, escaped `*`, `?` and the escape literal, `}` and `/` escapes
    /// dropped; `anchored` matches at the start only.
    fn pattern_regex(
        &self,
        pattern: &str,
        greedy: bool,
        anchored: bool,
    ) -> Result<regex::Regex, SubstError> {
        let mut re = String::from(if anchored { "^" } else { "" });
        let mut chars = pattern.chars();
        while let Some(c) = chars.next() {
            match c {
                '*' => re.push_str(if greedy { "(?s:.*)" } else { "(?s:.*?)" }),
                '?' => re.push_str("(?s:.)"),
                c if c == self.escape => match chars.next() {
                    Some(n) if matches!(n, '}' | '/' | '*' | '?') || n == self.escape => {
                        re.push_str(&regex::escape(&n.to_string()));
                    }
                    Some(n) => {
                        return Err(SubstError::BadPattern {
                            pattern: pattern.to_owned(),
                            escaped: n,
                        })
                    }
                    None => re.push_str(&regex::escape(&c.to_string())),
                },
                c => re.push_str(&regex::escape(&c.to_string())),
            }
        }
        Ok(regex::Regex::new(&re).expect("an escaped pattern is a valid regex"))
    }

    /// A variable name: digits only, one special parameter, or `[A-Za-z0-9_]+`.
    fn name(&mut self) -> String {
        let mut name = String::new();
        if let Some(c) = self.peek() {
            if c.is_ascii_digit() {
                while let Some(d) = self.peek().filter(char::is_ascii_digit) {
                    self.pos += 1;
                    name.push(d);
                }
                return name;
            }
            if matches!(c, '@' | '*' | '#' | '?' | '-' | '$' | '!') {
                self.pos += 1;
                name.push(c);
                return name;
            }
        }
        while let Some(c) = self.peek().filter(|c| c.is_alphanumeric() || *c == '_') {
            self.pos += 1;
            name.push(c);
        }
        name
    }
}
