//! `cargo cast cache [df|prune]`: what cargo-cast keeps under its cache root
//! (`$CAST_CACHE_DIR`, else `$XDG_CACHE_HOME/cast`, else `~/.cache/cast`), and
//! removing what can be rebuilt. `cargo cast cache` alone is `df`, as Docker's
//! `docker system df` names the table, and the table is the safe thing to show.
//!
//! The layout is read in [`scan`]; the removal and its safety rules are in
//! [`mod@prune`].

mod prune;
mod scan;

use std::path::Path;
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, Result};
use serde_json::json;

use crate::ui::{self, Ui};
use prune::{Fate, Policy};
use scan::{Area, AreaKind};

/// See and reclaim cargo-cast's caches.
#[derive(Debug, clap::Args)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "Without a subcommand: df.

Examples:
  cargo cast cache                      # one line per area: entries, size
  cargo cast cache df --json | jq .total_bytes
  cargo cast cache prune                # what no build used for 30 days
  cargo cast cache prune --all -n       # show what --all would remove"
)]
pub struct CacheArgs {
    #[command(subcommand)]
    action: Option<CacheAction>,
    #[command(flatten)]
    df: DfArgs,
}

#[derive(Debug, clap::Subcommand)]
enum CacheAction {
    Df(DfArgs),
    Prune(PruneArgs),
}

/// Show each cache area with its entries and size (-v: every entry).
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  cargo cast cache df
  cargo cast cache df -v                # every entry with its size and last use
  cargo cast cache df --json | jq '.areas[] | {name, bytes}'")]
pub struct DfArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Remove cache entries that can be rebuilt.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Removes build cache entries, image blobs, kernels from URLs, and what casted
executables unpacked, when no build or run used them for --older-than; writers'
temp files after a day. Entries in use (locked) are kept. Cargo's target dir of
`cargo cast build DIR` goes only with --all, the default kernel bundle (and the
built one) only with --default-kernel (`cargo cast kernel fetch` fetches it again,
`cargo cast kernel build` compiles the other).

Examples:
  cargo cast cache prune                   # unused for 30 days
  cargo cast cache prune --older-than 7d   # units: s m h d w
  cargo cast cache prune --all             # everything but the default kernel
  cargo cast cache prune --all --default-kernel -n   # list, remove nothing"
)]
pub struct PruneArgs {
    /// Remove entries not used for this long (0: whatever their age).
    #[arg(
        long,
        value_name = "AGE",
        default_value = "30d",
        value_parser = parse_age,
        conflicts_with = "all"
    )]
    older_than: Duration,
    /// Remove every entry whatever its age, and the target dir of `cargo cast build DIR`.
    #[arg(long)]
    all: bool,
    /// Also remove the default kernel bundles (kernel/default, kernel/built).
    #[arg(long)]
    default_kernel: bool,
    /// Show what would be removed; remove nothing.
    #[arg(short = 'n', long)]
    dry_run: bool,
}

/// Runs `cargo cast cache`.
pub fn run(args: CacheArgs, ui: &Ui) -> Result<()> {
    let root =
        cast_core::cache_root::dir().context("no cache directory: set CAST_CACHE_DIR or HOME")?;
    match args.action {
        None => df(&root, &args.df, ui),
        Some(CacheAction::Df(a)) => df(&root, &a, ui),
        Some(CacheAction::Prune(a)) => prune(&root, &a, ui),
    }
}

fn df(root: &Path, args: &DfArgs, ui: &Ui) -> Result<()> {
    let areas = scan::scan(root);
    if args.json {
        println!("{:#}", to_json(root, &areas));
    } else {
        print!("{}", table(root, &areas, ui.verbose, SystemTime::now()));
    }
    Ok(())
}

fn to_json(root: &Path, areas: &[Area]) -> serde_json::Value {
    let unix = |t: SystemTime| {
        t.duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    };
    let areas: Vec<_> = areas
        .iter()
        .map(|a| {
            let items: Vec<_> = a
                .entries
                .iter()
                .map(
                    |e| json!({"name": e.name(), "bytes": e.bytes, "last_used": unix(e.last_used)}),
                )
                .collect();
            json!({
                "name": a.kind.name(),
                "path": a.path,
                "entries": a.count,
                "bytes": a.bytes,
                "description": a.kind.description(),
                "items": items,
            })
        })
        .collect();
    json!({
        "root": root,
        "exists": root.is_dir(),
        "total_entries": areas.iter().map(|a| a["entries"].as_u64().unwrap_or(0)).sum::<u64>(),
        "total_bytes": areas.iter().map(|a| a["bytes"].as_u64().unwrap_or(0)).sum::<u64>(),
        "areas": areas,
    })
}

fn table(root: &Path, areas: &[Area], verbose: bool, now: SystemTime) -> String {
    let mut s = format!(
        "{:<18}{:>8}{:>12}  DESCRIPTION\n",
        "AREA", "ENTRIES", "SIZE"
    );
    for a in areas {
        s.push_str(&format!(
            "{:<18}{:>8}{:>12}  {}\n",
            a.kind.name(),
            a.count,
            ui::bytes(a.bytes),
            a.kind.description()
        ));
        if verbose {
            for e in &a.entries {
                s.push_str(&format!(
                    "  {:<32}{:>12}  used {}\n",
                    short(&e.name()),
                    ui::bytes(e.bytes),
                    ago(e.age(now))
                ));
            }
        }
    }
    let count: usize = areas.iter().map(|a| a.count).sum();
    let bytes: u64 = areas.iter().map(|a| a.bytes).sum();
    s.push_str(&format!(
        "{:<18}{count:>8}{:>12}\n",
        "total",
        ui::bytes(bytes)
    ));
    let missing = if root.is_dir() {
        ""
    } else {
        " (does not exist yet)"
    };
    s.push_str(&format!("\nCache root: {}{missing}\n", root.display()));
    s
}

/// A name cut to 32 characters (digests are 64).
fn short(name: &str) -> String {
    if name.chars().count() > 32 {
        format!("{}…", name.chars().take(31).collect::<String>())
    } else {
        name.to_owned()
    }
}

/// "3 days ago", "5 hours ago", "just now".
fn ago(d: Duration) -> String {
    let s = d.as_secs();
    let (n, unit) = match s {
        0..60 => return "just now".into(),
        60..3600 => (s / 60, "minute"),
        3600..86400 => (s / 3600, "hour"),
        _ => (s / 86400, "day"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

fn prune(root: &Path, args: &PruneArgs, ui: &Ui) -> Result<()> {
    let policy = Policy {
        unused_for: if args.all {
            Duration::ZERO
        } else {
            args.older_than
        },
        all: args.all,
        default_kernel: args.default_kernel,
        dry_run: args.dry_run,
    };
    let what = if args.all {
        "everything".to_owned()
    } else if args.older_than.is_zero() {
        "entries of any age".to_owned()
    } else {
        format!(
            "entries unused for {}",
            ago(args.older_than).trim_end_matches(" ago")
        )
    };
    ui.status("Pruning", format!("{} ({what})", root.display()));
    let areas = scan::scan(root);
    let actions = prune::prune(root, &areas, policy, SystemTime::now());
    let (verb, freed_verb) = if args.dry_run {
        ("Would remove", "Would free")
    } else {
        ("Removed", "Freed")
    };
    let mut freed = 0;
    let mut failures = Vec::new();
    for kind in AreaKind::ALL {
        let mine = || actions.iter().filter(move |a| a.area == kind);
        let removed: Vec<_> = mine().filter(|a| matches!(a.fate, Fate::Removed)).collect();
        let bytes: u64 = removed.iter().map(|a| a.entry.bytes).sum();
        freed += bytes;
        let entries = removed.iter().filter(|a| !a.temp).count();
        let temps = removed.len() - entries;
        if !removed.is_empty() {
            let mut line = format!("{}: {}", kind.name(), plural(entries, "entry", "entries"));
            if temps > 0 {
                let t = plural(temps, "abandoned temp file", "abandoned temp files");
                line.push_str(&format!(" and {t}"));
            }
            ui.status(verb, format!("{line}, {}", ui::bytes(bytes)));
        }
        if ui.verbose {
            for a in &removed {
                eprintln!("{:>12}   {}", "", a.entry.path.display());
            }
        }
        for a in mine() {
            match &a.fate {
                Fate::Skipped(why) => {
                    ui.status("Kept", format!("{} ({why})", a.entry.path.display()))
                }
                Fate::Failed(e) => failures.push(e),
                Fate::Removed => {}
            }
        }
    }
    let default_kernels = areas
        .iter()
        .flat_map(|a| a.entries.iter().map(move |e| (a.kind, e)))
        .filter(|(k, e)| prune::is_default_kernel(*k, e));
    for (_, e) in default_kernels.filter(|_| !args.default_kernel) {
        ui.status(
            "Kept",
            format!(
                "{} (a default kernel bundle; --default-kernel removes it)",
                e.path.display()
            ),
        );
    }
    ui.status(freed_verb, ui::bytes(freed));
    if let Some(first) = failures.first() {
        anyhow::bail!(
            "{} cache entries could not be removed; the first: {}",
            failures.len(),
            ui::report(first).trim_start_matches("error: ")
        );
    }
    Ok(())
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `30d`, `12h`, `90m`, `45s`, `2w`, or `0`.
fn parse_age(s: &str) -> Result<Duration, String> {
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{s:?}: expected a number and a unit, as 30d or 12h"))?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        "w" => 7 * 86400,
        _ => return Err(format!("{s:?}: the unit is one of s, m, h, d, w (as 30d)")),
    };
    Ok(Duration::from_secs(n.saturating_mul(secs)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_parse_with_units() {
        assert_eq!(parse_age("30d"), Ok(Duration::from_secs(30 * 86400)));
        assert_eq!(parse_age("12h"), Ok(Duration::from_secs(12 * 3600)));
        assert_eq!(parse_age("2w"), Ok(Duration::from_secs(14 * 86400)));
        assert_eq!(parse_age("0"), Ok(Duration::ZERO));
        assert!(parse_age("30").is_err());
        assert!(parse_age("d").is_err());
        assert!(parse_age("3y").is_err());
    }

    #[test]
    fn ages_read_as_words() {
        assert_eq!(ago(Duration::from_secs(5)), "just now");
        assert_eq!(ago(Duration::from_secs(3600)), "1 hour ago");
        assert_eq!(ago(Duration::from_secs(30 * 86400)), "30 days ago");
    }
}
