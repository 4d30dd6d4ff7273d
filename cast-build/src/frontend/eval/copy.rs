//! COPY and ADD evaluation: `--from` resolution, source and destination
//! expansion, `--chown`/`--chmod`/`--checksum` checking, heredoc content, and
//! which ADD sources are URLs (decided after expansion, so `ADD $BASE/f /f` is one).

use super::instruction::{find_stage, Evaluator};
use super::Scope;
use crate::chmod::Chmod;
use crate::containerfile::{CopyArgs, Source};
use crate::diag::{Diagnostic, Location};
use crate::stages::{CopyFrom, CopyOp, CopySource};
use crate::words::{shown, shown_bare};

impl Evaluator<'_> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn copy(
        &self,
        loc: &Location,
        add: bool,
        args: &CopyArgs,
        scope: &Scope<'_>,
        workdir: Option<&str>,
        index: usize,
    ) -> Result<CopyOp, Diagnostic> {
        let keyword = if add { "ADD" } else { "COPY" };
        let from = match &args.from {
            None => CopyFrom::Context,
            Some(raw) => {
                let f = self.word(loc, raw, scope)?;
                if f.is_empty() {
                    return Err(Diagnostic::new(
                        loc.clone(),
                        format!("{keyword} --from={} is empty", shown_bare(raw)),
                    )
                    .with_hint("give the ARG a value, or name a stage or image"));
                }
                if let Some(&later) = self.names.get(&f.to_ascii_lowercase()) {
                    if later >= index {
                        let what = if later == index {
                            "this stage itself (a cycle)"
                        } else {
                            "a stage defined later"
                        };
                        return Err(Diagnostic::new(
                            loc.clone(),
                            format!("{keyword} --from={} names {what}", shown_bare(&f)),
                        )
                        .with_hint(format!(
                            "stage {} must come before this one; move it up",
                            shown(&f)
                        )));
                    }
                }
                match find_stage(&self.names, &f, index) {
                    Some(i) => CopyFrom::Stage(i),
                    None if f.parse::<usize>().is_ok() => {
                        return Err(Diagnostic::new(
                            loc.clone(),
                            format!(
                                "--from={}: no earlier stage with that index",
                                shown_bare(&f)
                            ),
                        ));
                    }
                    None => CopyFrom::Image(f),
                }
            }
        };
        let mut sources = Vec::new();
        for s in &args.sources {
            sources.push(match s {
                Source::Path(p) => classify(loc, add, self.word(loc, p, scope)?)?,
                Source::HereDoc {
                    content,
                    expand: true,
                } => CopySource::Inline(
                    crate::subst::expand_heredoc(content, self.file.escape, &|n| scope.get(n))
                        .map_err(|e| {
                            Diagnostic::new(loc.clone(), format!("cannot expand the heredoc: {e}"))
                        })?,
                ),
                Source::HereDoc {
                    content,
                    expand: false,
                } => CopySource::Inline(content.clone()),
            });
        }
        let dest = self.word(loc, &args.dest, scope)?;
        let mut abs = resolve_path(workdir, &dest);
        if (dest.ends_with('/') || dest == "." || dest.ends_with("/.")) && !abs.ends_with('/') {
            abs.push('/');
        }
        let chown = args
            .chown
            .as_ref()
            .map(|c| self.word(loc, c, scope))
            .transpose()?;
        let chmod = match &args.chmod {
            None => None,
            Some(m) => {
                let m = self.word(loc, m, scope)?;
                Some(Chmod::parse(&m).map_err(|e| {
                    Diagnostic::new(loc.clone(), e)
                        .with_hint("use an octal mode like 755 or a symbolic one like u=rwx,go=rx")
                })?)
            }
        };
        let checksum = match &args.checksum {
            None => None,
            Some(c) => Some(checksum(loc, &self.word(loc, c, scope)?, &sources)?),
        };
        Ok(CopyOp {
            location: loc.clone(),
            add,
            from,
            sources,
            dest: abs,
            chown,
            chmod,
            exclude: args.exclude.clone(),
            checksum,
        })
    }
}

/// A path source, or for ADD a URL; git repositories are refused.
fn classify(loc: &Location, add: bool, src: String) -> Result<CopySource, Diagnostic> {
    let lower = src.to_ascii_lowercase();
    let http = lower.starts_with("http://") || lower.starts_with("https://");
    let git = ["git@", "git://", "ssh://"]
        .iter()
        .any(|p| lower.starts_with(p))
        || (http && lower.split('#').next().is_some_and(|u| u.ends_with(".git")));
    if add && git {
        return Err(Diagnostic::new(
            loc.clone(),
            format!(
                "ADD from a git repository is not supported: {}",
                shown_bare(&src)
            ),
        )
        .with_hint("clone the repository into the build context and COPY it"));
    }
    if http && !add {
        return Err(Diagnostic::new(
            loc.clone(),
            format!("COPY cannot download {}", shown_bare(&src)),
        )
        .with_hint("use ADD for URLs"));
    }
    Ok(if http {
        CopySource::Url(src)
    } else {
        CopySource::Path(src)
    })
}

/// Checks `--checksum=sha256:<hex>` and that every source is a URL; the hex, lowercased.
fn checksum(loc: &Location, value: &str, sources: &[CopySource]) -> Result<String, Diagnostic> {
    let hex = value
        .strip_prefix("sha256:")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| {
            Diagnostic::new(
                loc.clone(),
                format!("invalid --checksum={}", shown_bare(value)),
            )
            .with_hint("write --checksum=sha256:<64 hex digits>")
        })?;
    if !sources.iter().all(|s| matches!(s, CopySource::Url(_))) {
        return Err(Diagnostic::new(
            loc.clone(),
            "ADD --checksum applies only to http:// and https:// sources",
        )
        .with_hint("local files need no checksum"));
    }
    Ok(hex.to_ascii_lowercase())
}

/// Joins `path` onto `base` (default `/`) and cleans `.` and `..`.
pub fn resolve_path(base: Option<&str>, path: &str) -> String {
    let joined = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("{}/{path}", base.unwrap_or("/"))
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}
