//! COPY and ADD evaluation: `--from` resolution, source and destination
//! expansion, `--chown`/`--chmod` checking, heredoc content.

use super::instruction::{find_stage, Evaluator};
use super::Scope;
use crate::containerfile::{CopyArgs, Source};
use crate::diag::{Diagnostic, Location};
use crate::stages::{CopyFrom, CopyOp, CopySource, Stage};

impl Evaluator<'_> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn copy(
        &self,
        loc: &Location,
        add: bool,
        args: &CopyArgs,
        scope: &Scope<'_>,
        workdir: Option<&str>,
        earlier: &[Stage],
        index: usize,
    ) -> Result<CopyOp, Diagnostic> {
        let from = match &args.from {
            None => CopyFrom::Context,
            Some(f) => {
                let f = self.word(loc, f, scope)?;
                match find_stage(earlier, &f, index) {
                    Some(i) => CopyFrom::Stage(i),
                    None if f.parse::<usize>().is_ok() => {
                        return Err(Diagnostic::new(
                            loc.clone(),
                            format!("--from={f}: no earlier stage with that index"),
                        ));
                    }
                    None => CopyFrom::Image(f),
                }
            }
        };
        let mut sources = Vec::new();
        for s in &args.sources {
            sources.push(match s {
                Source::Path(p) => CopySource::Path(self.word(loc, p, scope)?),
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
                Some(
                    u32::from_str_radix(&m, 8)
                        .ok()
                        .filter(|v| *v <= 0o7777)
                        .ok_or_else(|| {
                            Diagnostic::new(loc.clone(), format!("invalid --chmod={m}"))
                                .with_hint("use an octal mode like 755 or 0644")
                        })?,
                )
            }
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
        })
    }
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
