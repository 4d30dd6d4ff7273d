//! `.containerignore` / `.dockerignore` patterns with Docker's rules.
//!
//! These are not gitignore rules: each line is cleaned like Go's
//! `filepath.Clean` (leading `/` and `./` dropped), matched against the whole
//! slash-separated path relative to the context root with `filepath.Match`
//! wildcards (`*` and `?` never cross `/`, `[...]` classes, `\` escapes) plus
//! `**` for any number of directories. A pattern also excludes everything below
//! a directory it matches; `!` re-includes; the last matching line wins. Lines
//! starting with `#` are comments.

use regex::Regex;
use thiserror::Error;

/// A malformed ignore pattern.
#[derive(Debug, Error)]
pub enum IgnoreError {
    /// A bare `!`.
    #[error("line {line}: illegal exclusion pattern \"!\"")]
    BareExclusion {
        /// 1-based line in the ignore file.
        line: usize,
    },
    /// Not a valid pattern (unclosed `[`, ...).
    #[error("line {line}: bad pattern {pattern:?}")]
    BadPattern {
        /// 1-based line in the ignore file.
        line: usize,
        /// The pattern as cleaned.
        pattern: String,
        /// Why.
        #[source]
        source: regex::Error,
    },
}

/// A compiled list of ignore patterns.
#[derive(Debug, Clone, Default)]
pub struct IgnoreMatcher {
    patterns: Vec<Pattern>,
}

#[derive(Debug, Clone)]
struct Pattern {
    exclusion: bool,
    regex: Regex,
}

impl IgnoreMatcher {
    /// Reads the text of an ignore file.
    pub fn parse(text: &str) -> Result<Self, IgnoreError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
        Self::from_lines(lines.filter(|(_, l)| !l.starts_with('#')))
    }

    /// Compiles patterns given directly (as `--exclude` flags are).
    pub fn from_patterns<S: AsRef<str>>(patterns: &[S]) -> Result<Self, IgnoreError> {
        Self::from_lines(
            patterns
                .iter()
                .enumerate()
                .map(|(i, p)| (i + 1, p.as_ref())),
        )
    }

    fn from_lines<'a>(lines: impl Iterator<Item = (usize, &'a str)>) -> Result<Self, IgnoreError> {
        let mut patterns = Vec::new();
        for (line, raw) in lines {
            let mut p = raw.trim();
            if p.is_empty() {
                continue;
            }
            let exclusion = p.starts_with('!');
            if exclusion {
                p = p[1..].trim();
                if p.is_empty() {
                    return Err(IgnoreError::BareExclusion { line });
                }
            }
            let mut cleaned = clean(p);
            if cleaned.len() > 1 && cleaned.starts_with('/') {
                cleaned.remove(0);
            }
            let regex =
                Regex::new(&to_regex(&cleaned)).map_err(|source| IgnoreError::BadPattern {
                    line,
                    pattern: cleaned.clone(),
                    source,
                })?;
            patterns.push(Pattern { exclusion, regex });
        }
        Ok(Self { patterns })
    }

    /// Whether any pattern is a `!` exception.
    pub fn has_exclusions(&self) -> bool {
        self.patterns.iter().any(|p| p.exclusion)
    }

    /// Whether there are no patterns at all.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether `path` (relative, slash-separated) is excluded: it or one of its
    /// parent directories matches, and no later `!` pattern re-includes it.
    pub fn is_ignored(&self, path: &str) -> bool {
        let path = clean(path);
        if path == "." {
            return false;
        }
        let parents: Vec<&str> = path
            .match_indices('/')
            .map(|(i, _)| &path[..i])
            .filter(|p| !p.is_empty())
            .collect();
        let mut matched = false;
        for pattern in &self.patterns {
            if pattern.exclusion != matched {
                continue;
            }
            let hit =
                pattern.regex.is_match(&path) || parents.iter().any(|p| pattern.regex.is_match(p));
            if hit {
                matched = !pattern.exclusion;
            }
        }
        matched
    }

    /// Whether `path` itself matches (no parent matching), as COPY globs need.
    pub fn matches_exactly(&self, path: &str) -> bool {
        let path = clean(path);
        let mut matched = false;
        for pattern in &self.patterns {
            if pattern.exclusion != matched {
                continue;
            }
            if pattern.regex.is_match(&path) {
                matched = !pattern.exclusion;
            }
        }
        matched
    }
}

/// Whether a path contains wildcard characters.
pub fn has_wildcards(path: &str) -> bool {
    path.contains(['*', '?', '['])
}

/// Go's `path.Clean`: drops empty, `.` and resolvable `..` elements.
pub fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                _ if rooted => {}
                _ => parts.push(".."),
            },
            p => parts.push(p),
        }
    }
    let body = parts.join("/");
    match (rooted, body.is_empty()) {
        (true, _) => format!("/{body}"),
        (false, true) => ".".to_owned(),
        (false, false) => body,
    }
}

/// Translates a cleaned pattern to an anchored regex.
fn to_regex(pattern: &str) -> String {
    let mut re = String::from("^");
    let mut chars = pattern.chars().peekable();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(n) => re.push_str(&regex::escape(&n.to_string())),
                None => re.push_str("\\\\"),
            },
            ']' if in_class => {
                re.push(']');
                in_class = false;
            }
            // Ranges and negation pass through; set operators are escaped.
            c if in_class && (c.is_alphanumeric() || c == '-' || c == '^') => re.push(c),
            c if in_class => re.push_str(&regex::escape(&c.to_string())),
            '[' => {
                re.push('[');
                in_class = true;
                if chars.peek() == Some(&'^') {
                    chars.next();
                    re.push('^');
                }
            }
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                if chars.peek() == Some(&'/') {
                    chars.next();
                }
                if chars.peek().is_none() {
                    // Trailing `**`: anything below (alone: anything at all).
                    re.push_str(".*");
                } else {
                    // `**/`: any number of directories, even none.
                    re.push_str("(?:.*/)?");
                }
            }
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    re
}
