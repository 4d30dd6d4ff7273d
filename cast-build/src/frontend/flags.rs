//! Instruction flags (`--platform`, `--from`, `--chown`, ...): checked per
//! instruction so a typo is an error with a "did you mean" hint, not a surprise.
//!
//! COPY and ADD are assembled here too, since most of their shape is flags;
//! flags we cannot honour are refused by name. Whether a source is a URL is
//! decided after expansion, when the plan is evaluated.

use parse_dockerfile as pd;

use crate::containerfile::{CopyArgs, Cx, Source};
use crate::diag::Diagnostic;
use crate::words;

/// The flags of one instruction, checked against the names it accepts.
pub(crate) struct Flags {
    flags: Vec<(String, Option<String>)>,
}

impl Flags {
    /// Checks `options` against `allowed` (names without `--`).
    pub(crate) fn new(
        cx: &Cx<'_>,
        keyword: &str,
        options: &[pd::Flag<'_>],
        allowed: &[&str],
    ) -> Result<Self, Diagnostic> {
        let mut flags = Vec::new();
        for flag in options {
            let name = flag.name.value.to_string();
            if !allowed.contains(&name.as_str()) {
                let diag = cx.err(
                    flag.flag_span().start,
                    format!("unknown flag --{name} for {keyword}"),
                );
                return Err(match words::nearest(&name, allowed) {
                    Some(best) => diag.with_hint(format!("did you mean --{best}?")),
                    None if allowed.is_empty() => {
                        diag.with_hint(format!("{keyword} takes no flags"))
                    }
                    None => diag.with_hint(format!(
                        "{keyword} accepts {}",
                        allowed
                            .iter()
                            .map(|a| format!("--{a}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                });
            }
            flags.push((name, flag.value.as_ref().map(|v| v.value.to_string())));
        }
        Ok(Self { flags })
    }

    /// The last value of `--name=value`.
    pub(crate) fn value(&mut self, name: &str) -> Option<String> {
        self.flags
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.clone())
    }

    /// All values of a repeatable flag.
    pub(crate) fn values(&self, name: &str) -> Vec<String> {
        self.flags
            .iter()
            .filter(|(n, _)| n == name)
            .filter_map(|(_, v)| v.clone())
            .collect()
    }

    /// A boolean flag: `--link`, `--link=true`, `--link=false`.
    pub(crate) fn bool(&self, name: &str) -> bool {
        self.flags
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .is_some_and(|(_, v)| v.as_deref().is_none_or(|v| !matches!(v, "false" | "0")))
    }
}

/// Flags accepted by COPY (`--parents` is refused separately).
const COPY_FLAGS: &[&str] = &["from", "chown", "chmod", "link", "exclude", "parents"];
/// Flags accepted by ADD.
const ADD_FLAGS: &[&str] = &[
    "chown",
    "chmod",
    "link",
    "exclude",
    "checksum",
    "keep-git-dir",
];

/// Builds COPY/ADD arguments from parser output.
pub(crate) fn copy_args(
    cx: &Cx<'_>,
    keyword: &str,
    options: &[pd::Flag<'_>],
    src: &[pd::Source<'_>],
    dest: &pd::UnescapedString<'_>,
) -> Result<CopyArgs, Diagnostic> {
    let allowed = if keyword == "ADD" {
        ADD_FLAGS
    } else {
        COPY_FLAGS
    };
    let mut fl = Flags::new(cx, keyword, options, allowed)?;
    for refused in ["parents", "keep-git-dir"] {
        if let Some(flag) = options.iter().find(|f| f.name.value == refused) {
            return Err(cx
                .err(
                    flag.flag_span().start,
                    format!("{keyword} --{refused} is not supported"),
                )
                .with_hint(if refused == "parents" {
                    "copy each directory with its own COPY"
                } else {
                    "git sources are not supported; clone the repository into the build context"
                }));
        }
    }
    let mut sources = Vec::new();
    for s in src {
        match s {
            pd::Source::Path(p) => sources.push(Source::Path(p.value.to_string())),
            pd::Source::HereDoc(h) => {
                sources.push(Source::HereDoc {
                    content: h.value.to_string(),
                    expand: h.expand,
                });
            }
            _ => return Err(cx.err(dest.span.start, format!("{keyword}: unsupported source"))),
        }
    }
    Ok(CopyArgs {
        sources,
        dest: dest.value.to_string(),
        from: fl.value("from"),
        chown: fl.value("chown"),
        chmod: fl.value("chmod"),
        link: fl.bool("link"),
        exclude: fl.values("exclude"),
        checksum: fl.value("checksum"),
    })
}
