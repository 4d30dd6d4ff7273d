//! Heredoc words (`<<EOF`, `<<-EOF`, `3<<'EOF'`, `<< EOF`) and where they are
//! in an instruction line, with BuildKit's rules: the line is split into words
//! (quotes and escapes kept, `<<` and the blanks after it glued to the next
//! word), every word of the form `[fd]<<[-][blanks]delimiter` is a heredoc,
//! in order; the delimiter loses its quotes, and any quote in it turns
//! expansion of the body off.

use serde::{Deserialize, Serialize};

/// A heredoc of a RUN, COPY or ADD line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heredoc {
    /// The delimiter, quotes removed (`EOF` for `<<'EOF'`).
    pub name: String,
    /// The file descriptor written before `<<` (`3<<EOF`), 0 when none.
    pub fd: u32,
    /// `<<-`: leading tabs are removed from the body's lines (and the
    /// delimiter line may be indented with tabs).
    pub chomp: bool,
    /// Whether `$VAR` in the body is expanded (the delimiter had no quotes).
    pub expand: bool,
    /// The body as written, every line with its newline.
    pub content: String,
}

impl Heredoc {
    /// The body as the command sees it: leading tabs removed with `chomp`.
    pub fn text(&self) -> String {
        if !self.chomp {
            return self.content.clone();
        }
        self.content
            .split_inclusive('\n')
            .map(|l| l.trim_start_matches('\t'))
            .collect()
    }
}

/// A heredoc word found in a line, before its body is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Word {
    pub(crate) name: String,
    pub(crate) fd: u32,
    pub(crate) chomp: bool,
    pub(crate) expand: bool,
    /// Byte offset of the word in the line.
    pub(crate) at: usize,
}

impl Word {
    pub(crate) fn with_body(self, content: String) -> Heredoc {
        Heredoc {
            name: self.name,
            fd: self.fd,
            chomp: self.chomp,
            expand: self.expand,
            content,
        }
    }
}

/// Every heredoc word of `line`, in order; an error for a delimiter with an
/// unterminated quote.
pub(crate) fn in_line(line: &str) -> Result<Vec<Word>, String> {
    let mut found = Vec::new();
    for (at, word) in raw_words(line) {
        if let Some(mut w) = parse(word)? {
            w.at = at;
            found.push(w);
        }
    }
    Ok(found)
}

/// `word` as a heredoc (`None` if it is not one).
pub(crate) fn parse(word: &str) -> Result<Option<Word>, String> {
    let digits = word.len() - word.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let Some(rest) = word[digits..].strip_prefix("<<") else {
        return Ok(None);
    };
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let rest = rest.trim_start();
    if rest.is_empty() || rest.contains('<') {
        return Ok(None);
    }
    let (words, quoted) = unquote(rest)?;
    let Ok([name]) = <[String; 1]>::try_from(words) else {
        return Ok(None);
    };
    Ok(Some(Word {
        name,
        fd: word[..digits].parse().unwrap_or(0),
        chomp,
        expand: !quoted,
        at: 0,
    }))
}

/// The words of a line with quotes and escapes kept; `<<` swallows the
/// blanks after it; `${...}` is one piece.
fn raw_words(line: &str) -> Vec<(usize, &str)> {
    let bytes = line.as_bytes();
    let mut words = Vec::new();
    let mut start: Option<usize> = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b.is_ascii_whitespace() {
            if let Some(s) = start.take() {
                words.push((s, &line[s..i]));
            }
            i += 1;
            continue;
        }
        start.get_or_insert(i);
        i += match b {
            b'\\' => 2,
            b'\'' | b'"' => line[i + 1..]
                .find(b as char)
                .map_or(line.len() - i, |n| n + 2),
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                line[i..].find('}').map_or(line.len() - i, |n| n + 1)
            }
            b'<' if bytes.get(i + 1) == Some(&b'<') => {
                let after = &line[i + 2..];
                2 + after.len() - after.trim_start().len()
            }
            _ => 1,
        };
        i = i.min(bytes.len());
        while !line.is_char_boundary(i) {
            i += 1;
        }
    }
    if let Some(s) = start {
        words.push((s, &line[s..]));
    }
    words
}

/// Removes quotes and escapes and splits on blanks outside quotes; says
/// whether any quote was removed.
fn unquote(text: &str) -> Result<(Vec<String>, bool), String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quoted = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                word.extend(chars.next());
                in_word = true;
            }
            '\'' | '"' => {
                quoted = true;
                in_word = true;
                loop {
                    match chars.next() {
                        None => {
                            return Err(format!("unterminated quote in heredoc delimiter {text}"))
                        }
                        Some(q) if q == c => break,
                        Some('\\') if c == '"' => word.extend(chars.next()),
                        Some(o) => word.push(o),
                    }
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok((words, quoted))
}
