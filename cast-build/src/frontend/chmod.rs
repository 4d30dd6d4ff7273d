//! `--chmod` values as BuildKit takes them: an octal mode (`755`, `0644`,
//! at most `07777`) or a symbolic one like chmod(1)'s (`u=rwx,go=rx`, `a+X`,
//! `g-w`, `o=u`), applied to each copied file's own mode.
//!
//! Symbolic clauses are `[ugoa]*` followed by one or more `[-+=]` operations,
//! each with permissions `[rwxXst]*` or one class to copy from (`u`, `g`,
//! `o`). No class means all. `X` is execute for directories and for files
//! that already have an execute bit.

use serde::{Deserialize, Serialize};

use crate::words::{shown, shown_bare};

/// The most clauses (operations) a symbolic mode may have.
const MAX_OPS: usize = 16;

/// A parsed `--chmod`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Chmod {
    /// Octal permission bits.
    Octal(u32),
    /// A symbolic mode: operations applied in order.
    Symbolic(Vec<Op>),
}

/// One symbolic operation: `who op perms`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    /// Bits of the classes affected (`u` 0o4700, `g` 0o2070, `o` 0o1007).
    who: u32,
    /// `+`, `-` or `=`.
    op: u8,
    /// Fixed permission bits (r, w, x, s, t spread over all classes).
    perm: u32,
    /// `X`: execute if a directory or already executable somewhere.
    cond_x: bool,
    /// `u`, `g` or `o`: copy that class's current bits.
    copy: Option<u8>,
}

const USER: u32 = 0o4700;
const GROUP: u32 = 0o2070;
const OTHER: u32 = 0o1007;

impl Chmod {
    /// Parses a `--chmod` value; the error says what is wrong.
    pub fn parse(value: &str) -> Result<Self, String> {
        let octal_error = || {
            format!(
                "invalid chmod parameter: '{}'. it should be octal string and between 0 and 07777",
                shown_bare(value)
            )
        };
        if value.bytes().next().is_some_and(|b| b.is_ascii_digit()) {
            return u32::from_str_radix(value, 8)
                .ok()
                .filter(|m| *m <= 0o7777)
                .map(Chmod::Octal)
                .ok_or_else(octal_error);
        }
        let mut ops = Vec::new();
        for clause in value.split(',') {
            let bad = || {
                format!(
                    "invalid --chmod={}: bad clause {}",
                    shown_bare(value),
                    shown(clause)
                )
            };
            let mut chars = clause.chars().peekable();
            let mut who = 0;
            while let Some(&c) = chars.peek() {
                who |= match c {
                    'u' => USER,
                    'g' => GROUP,
                    'o' => OTHER,
                    'a' => USER | GROUP | OTHER,
                    _ => break,
                };
                chars.next();
            }
            let mut any = false;
            while let Some(op) = chars.next() {
                if !matches!(op, '+' | '-' | '=') {
                    return Err(bad());
                }
                any = true;
                let mut o = Op {
                    who: if who == 0 { USER | GROUP | OTHER } else { who },
                    op: op as u8,
                    ..Op::default()
                };
                while let Some(&c) = chars.peek() {
                    match c {
                        'r' => o.perm |= 0o444,
                        'w' => o.perm |= 0o222,
                        'x' => o.perm |= 0o111,
                        'X' => o.cond_x = true,
                        's' => o.perm |= 0o6000,
                        't' => o.perm |= 0o1000,
                        'u' | 'g' | 'o' if o.perm == 0 && !o.cond_x && o.copy.is_none() => {
                            o.copy = Some(c as u8)
                        }
                        '+' | '-' | '=' => break,
                        _ => return Err(bad()),
                    }
                    chars.next();
                }
                if ops.len() == MAX_OPS {
                    return Err(format!(
                        "invalid --chmod={}: more than {MAX_OPS} operations",
                        shown_bare(value)
                    ));
                }
                ops.push(o);
            }
            if !any {
                return Err(bad());
            }
        }
        Ok(Chmod::Symbolic(ops))
    }

    /// The permission bits for a file whose current bits are `mode`.
    pub fn apply(&self, mode: u32, is_dir: bool) -> u32 {
        match self {
            Chmod::Octal(m) => *m,
            Chmod::Symbolic(ops) => ops.iter().fold(mode & 0o7777, |m, o| o.apply(m, is_dir)),
        }
    }
}

impl Op {
    fn apply(&self, mode: u32, is_dir: bool) -> u32 {
        let mut perm = self.perm;
        if self.cond_x && (is_dir || mode & 0o111 != 0) {
            perm |= 0o111;
        }
        if let Some(class) = self.copy {
            let bits = match class {
                b'u' => (mode >> 6) & 7,
                b'g' => (mode >> 3) & 7,
                _ => mode & 7,
            };
            perm |= bits * 0o111;
        }
        let perm = perm & self.who;
        match self.op {
            b'+' => mode | perm,
            b'-' => mode & !perm,
            _ => (mode & !(self.who & 0o7777)) | perm,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Chmod;

    fn sym(s: &str, mode: u32, dir: bool) -> u32 {
        Chmod::parse(s).unwrap().apply(mode, dir)
    }

    #[test]
    fn symbolic_modes_follow_chmod() {
        assert_eq!(sym("u=rwx,go=rx", 0o600, false), 0o755);
        assert_eq!(sym("a+X", 0o644, false), 0o644);
        assert_eq!(sym("a+X", 0o744, false), 0o755);
        assert_eq!(sym("a+X", 0o700, true), 0o711);
        assert_eq!(sym("g-w,o=", 0o666, false), 0o640);
        assert_eq!(sym("go=u", 0o700, false), 0o777);
        assert_eq!(sym("+x", 0o600, false), 0o711);
        assert_eq!(sym("u+s", 0o755, false), 0o4755);
        assert_eq!(sym("u=rw-w", 0o777, false), 0o477);
    }

    #[test]
    fn octal_and_errors() {
        assert_eq!(Chmod::parse("0644"), Ok(Chmod::Octal(0o644)));
        assert!(Chmod::parse("17777")
            .unwrap_err()
            .contains("between 0 and 07777"));
        assert!(Chmod::parse("9").is_err());
        assert!(Chmod::parse("u").is_err());
        assert!(Chmod::parse("u+q").is_err());
        assert!(Chmod::parse("").is_err());
    }
}
