//! Word splitting of instruction arguments, as Docker's parser does it.
//!
//! ENV, LABEL and ARG arguments arrive as one string; Docker splits them on
//! whitespace outside quotes, keeping quotes and escapes in the words (they are
//! removed later, by substitution). `KEY value` (the legacy form) and
//! `KEY=value ...` are told apart by whether the first word holds a `=`.
//! Text echoed in messages goes through [`shown`]: escaped and cut short.

/// Splits on whitespace outside quotes; quotes and escapes stay in the words.
pub fn split_words(text: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == escape {
            word.push(c);
            if let Some(n) = chars.next() {
                word.push(n);
            }
            continue;
        }
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c.is_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                continue;
            }
            None => {}
        }
        word.push(c);
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// Why `KEY=value` arguments could not be split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PairsError {
    /// Legacy form with a key and no value.
    MissingValue,
    /// A later word has no `=`.
    NoEquals(String),
}

/// Parses ENV/LABEL arguments into raw (unexpanded) key/value pairs.
pub fn name_values(text: &str, escape: char) -> Result<Vec<(String, String)>, PairsError> {
    let words = split_words(text, escape);
    let Some(first) = words.first() else {
        return Err(PairsError::MissingValue);
    };
    if !first.contains('=') {
        // Legacy `KEY value with spaces`: the value is the rest of the text.
        let trimmed = text.trim_start();
        let split = trimmed
            .find(char::is_whitespace)
            .ok_or(PairsError::MissingValue)?;
        let (key, value) = trimmed.split_at(split);
        let value = value.trim();
        if value.is_empty() {
            return Err(PairsError::MissingValue);
        }
        return Ok(vec![(key.to_owned(), value.to_owned())]);
    }
    words
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) => Ok((k.to_owned(), v.to_owned())),
            None => Err(PairsError::NoEquals(w)),
        })
        .collect()
}

/// Parses ARG arguments: `NAME` or `NAME=default`, one or more.
pub fn arg_decls(text: &str, escape: char) -> Vec<(String, Option<String>)> {
    split_words(text, escape)
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
            None => (w, None),
        })
        .collect()
}

/// The longest piece of user text echoed in a message, in characters.
const SHOWN_CHARS: usize = 60;

/// User text for a message: control characters escaped, cut after 60
/// characters (a 1 MB token is not echoed whole).
pub fn shown_bare(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(SHOWN_CHARS)
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect();
    if text.chars().nth(SHOWN_CHARS).is_some() {
        out.push('…');
    }
    out
}

/// [`shown_bare`] in double quotes.
pub fn shown(text: &str) -> String {
    format!("\"{}\"", shown_bare(text))
}

/// Edit distance used for "did you mean" hints.
pub fn nearest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let upper = word.to_ascii_uppercase();
    candidates
        .iter()
        .map(|c| (strsim::levenshtein(&upper, &c.to_ascii_uppercase()), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}
