//! Instruction flags (`--platform`, `--from`, `--chown`, ...): checked per
//! instruction so a typo is an error with a "did you mean" hint, not a surprise.
//!
//! COPY and ADD are assembled here too, since most of their shape is flags;
//! flags we cannot honour are refused by name. Whether a source is a URL is
//! decided after expansion, when the plan is evaluated.

use crate::containerfile::{CopyArgs, Flag, Source};
use crate::diag::{Diagnostic, Location};
use crate::words;

/// A flag as the parser found it, with where it is.
#[derive(Debug, Clone)]
pub(crate) struct RawFlag {
    /// Name and value, quotes removed.
    pub(crate) flag: Flag,
    /// Where the `--` is.
    pub(crate) at: Location,
}

/// The flags of one instruction, checked against the names it accepts.
pub(crate) struct Flags {
    flags: Vec<RawFlag>,
}

impl Flags {
    /// Checks `options` against `allowed` (names without `--`).
    pub(crate) fn new(
        keyword: &str,
        options: &[RawFlag],
        allowed: &[&str],
    ) -> Result<Self, Diagnostic> {
        for raw in options {
            let name = &raw.flag.name;
            if !allowed.contains(&name.as_str()) {
                let diag = Diagnostic::new(
                    raw.at.clone(),
                    format!("unknown flag --{} for {keyword}", words::shown_bare(name)),
                );
                return Err(match words::nearest(name, allowed) {
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
            if raw.flag.value.is_none() && !BOOL_FLAGS.contains(&name.as_str()) {
                return Err(Diagnostic::new(
                    raw.at.clone(),
                    format!("missing a value on flag --{name}"),
                )
                .with_hint(format!("write --{name}=value")));
            }
        }
        Ok(Self {
            flags: options.to_vec(),
        })
    }

    /// The flags as parsed, for instructions that keep them (RUN).
    pub(crate) fn into_flags(self) -> Vec<Flag> {
        self.flags.into_iter().map(|r| r.flag).collect()
    }

    /// Where the last `--name` is.
    pub(crate) fn location(&self, name: &str) -> Option<Location> {
        self.flags
            .iter()
            .rev()
            .find(|r| r.flag.name == name)
            .map(|r| r.at.clone())
    }

    /// The last value of `--name=value`.
    pub(crate) fn value(&mut self, name: &str) -> Option<String> {
        self.flags
            .iter()
            .rev()
            .find(|r| r.flag.name == name)
            .and_then(|r| r.flag.value.clone())
    }

    /// All values of a repeatable flag.
    pub(crate) fn values(&self, name: &str) -> Vec<String> {
        self.flags
            .iter()
            .filter(|r| r.flag.name == name)
            .filter_map(|r| r.flag.value.clone())
            .collect()
    }

    /// A boolean flag: `--link`, `--link=true`, `--link=false`.
    pub(crate) fn bool(&self, name: &str) -> bool {
        self.flags
            .iter()
            .rev()
            .find(|r| r.flag.name == name)
            .is_some_and(|r| {
                r.flag
                    .value
                    .as_deref()
                    .is_none_or(|v| !matches!(v, "false" | "0"))
            })
    }
}

/// Flags that may be written without a value.
const BOOL_FLAGS: &[&str] = &["link", "keep-git-dir", "parents"];
/// Flags accepted by RUN, kept as parsed for the builder.
pub(crate) const RUN_FLAGS: &[&str] = &["mount", "network", "security"];
/// Flags accepted by HEALTHCHECK CMD.
pub(crate) const HEALTHCHECK_FLAGS: &[&str] = &[
    "interval",
    "timeout",
    "start-period",
    "start-interval",
    "retries",
];
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
    keyword: &str,
    options: &[RawFlag],
    sources: Vec<Source>,
    dest: String,
) -> Result<CopyArgs, Diagnostic> {
    let allowed = if keyword == "ADD" {
        ADD_FLAGS
    } else {
        COPY_FLAGS
    };
    let mut fl = Flags::new(keyword, options, allowed)?;
    for refused in ["parents", "keep-git-dir"] {
        if let Some(at) = fl.location(refused) {
            return Err(
                Diagnostic::new(at, format!("{keyword} --{refused} is not supported")).with_hint(
                    if refused == "parents" {
                        "copy each directory with its own COPY"
                    } else {
                        "git sources are not supported; clone the repository into the build context"
                    },
                ),
            );
        }
    }
    if let Some(at) = fl.location("from") {
        if fl.value("from").as_deref() == Some("") {
            return Err(
                Diagnostic::new(at, format!("{keyword} --from needs a value"))
                    .with_hint("name a stage or an image: --from=build"),
            );
        }
    }
    Ok(CopyArgs {
        sources,
        dest,
        from: fl.value("from"),
        chown: fl.value("chown"),
        chmod: fl.value("chmod"),
        link: fl.bool("link"),
        exclude: fl.values("exclude"),
        checksum: fl.value("checksum"),
    })
}
