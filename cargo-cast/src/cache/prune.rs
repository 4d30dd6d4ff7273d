//! Removing cache entries that can be rebuilt, without breaking a build or a run
//! going on at the same time.
//!
//! Safety rules:
//! - An entry is removed only while holding, without waiting, every lock its writers
//!   take: the per-digest `locks/<hex>.lock` of a blob (`cast-oci`), the
//!   `<sha256>.lock` of a decompressed kernel (`cast-payload`), Cargo's
//!   `.cargo-lock` files in `target/`. A held lock means in use: skipped.
//! - The cache's lock files are never removed: a process waiting on a removed lock
//!   file and one creating it anew would both get "the" lock. (Cargo's go with the
//!   whole target dir under `--all`, as with `cargo clean`.)
//! - A directory is renamed to `.prune-<name>-<pid>` beside it, then removed: a
//!   reader sees the whole entry or none. A file is unlinked (atomic as it is).
//! - With an age, an entry is checked again under its locks just before removal; if
//!   it was used since the scan, it stays.
//! - Temp files and directories of writers (`.tmp-*`, `.download-*`, staging
//!   directories, ...) and of an interrupted prune (`.prune-*`) are removed only
//!   when nothing in them changed for a day.
//! - The default kernel bundle stays unless asked for (`--default-kernel`).
//!
//! Not guarded: a build cache entry or kernel has no reader lock. A build or `cargo
//! cast run DIR` that looked an entry up but has not opened its files yet when
//! `--all` removes it fails (rerunning rebuilds); a VM already running keeps its
//! open files, since Unix frees removed files only when closed.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, Result};
use fs4::fs_std::FileExt;

use super::scan::{self, Area, AreaKind, Entry};

/// A writer's temp file unchanged for this long is abandoned.
pub const STALE_TEMP: Duration = Duration::from_secs(24 * 3600);

/// What to remove.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Entries unused for at least this long (zero: any).
    pub unused_for: Duration,
    /// Every entry whatever its age, and the target dir.
    pub all: bool,
    /// The default kernel bundle too.
    pub default_kernel: bool,
    /// Only report.
    pub dry_run: bool,
}

/// What happened to one entry.
#[derive(Debug)]
pub enum Fate {
    /// Removed (or would be, in a dry run).
    Removed,
    /// In use or used since the scan: kept.
    Skipped(&'static str),
    /// Could not be removed.
    Failed(anyhow::Error),
}

/// One decision, for the report.
#[derive(Debug)]
pub struct Action {
    /// The area.
    pub area: AreaKind,
    /// The entry.
    pub entry: Entry,
    /// Whether it is a writer's abandoned temp file.
    pub temp: bool,
    /// What happened.
    pub fate: Fate,
}

/// Applies `policy` to the scanned `areas` of the cache at `root`.
pub fn prune(root: &Path, areas: &[Area], policy: Policy, now: SystemTime) -> Vec<Action> {
    let mut actions = Vec::new();
    for area in areas {
        for entry in &area.entries {
            if !selected(area.kind, entry, policy, now) {
                continue;
            }
            let check_use = !policy.all && !is_default_kernel(area.kind, entry);
            let fate = remove(entry, policy.dry_run, check_use.then_some(entry.last_used));
            actions.push(Action {
                area: area.kind,
                entry: entry.clone(),
                temp: false,
                fate,
            });
        }
        for temp in &area.temps {
            if temp.age(now) > STALE_TEMP {
                actions.push(Action {
                    area: area.kind,
                    entry: temp.clone(),
                    temp: true,
                    fate: remove(temp, policy.dry_run, None),
                });
            }
        }
        if area.kind == AreaKind::Blobs && !policy.dry_run {
            remove_dangling_refs(root);
        }
    }
    actions
}

/// Whether `entry` is a default kernel bundle: `kernel/default`, the sibling it links
/// to (`cargo cast kernel use`), or the one `cargo cast kernel build` compiled
/// (`built`, ~8 min to make again).
pub fn is_default_kernel(area: AreaKind, entry: &Entry) -> bool {
    if area != AreaKind::Kernels {
        return false;
    }
    let linked = entry
        .path
        .parent()
        .and_then(|dir| std::fs::read_link(dir.join("default")).ok());
    let name = entry.name();
    matches!(name.as_str(), "default" | "built")
        || linked.is_some_and(|l| l.file_name().is_some_and(|n| n.to_string_lossy() == name))
}

fn selected(area: AreaKind, entry: &Entry, policy: Policy, now: SystemTime) -> bool {
    match area {
        AreaKind::Other => false,
        AreaKind::Target => policy.all,
        _ if is_default_kernel(area, entry) => policy.default_kernel,
        _ => policy.all || entry.age(now) >= policy.unused_for,
    }
}

/// Removes `entry` under its locks. With `used_before`, an entry used since then
/// stays.
fn remove(entry: &Entry, dry_run: bool, used_before: Option<SystemTime>) -> Fate {
    let mut held = Vec::new();
    for lock in &entry.locks {
        match try_lock(lock) {
            Ok(Lock::Held(f)) => held.push(f),
            Ok(Lock::Absent) => {}
            Ok(Lock::Busy) => return Fate::Skipped("in use"),
            Err(e) => return Fate::Failed(e),
        }
    }
    if let Some(before) = used_before {
        if used_since(&entry.path, before) {
            return Fate::Skipped("used meanwhile");
        }
    }
    if dry_run {
        return Fate::Removed;
    }
    let fate = match remove_path(&entry.path) {
        Ok(()) => Fate::Removed,
        Err(e) => Fate::Failed(e),
    };
    drop(held); // the locks are released after the removal
    fate
}

/// A lock file, tried.
enum Lock {
    /// Taken; released when dropped.
    Held(File),
    /// Another process holds it.
    Busy,
    /// No such file: nobody holds it.
    Absent,
}

/// Takes `lock` exclusively if free. A missing lock file is held by nobody; it is
/// not created (a dry run leaves no trace).
fn try_lock(lock: &Path) -> Result<Lock> {
    let f = match OpenOptions::new().write(true).open(lock) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Lock::Absent),
        Err(e) => return Err(e).with_context(|| format!("cannot open {}", lock.display())),
    };
    let locked = FileExt::try_lock_exclusive(&f)
        .with_context(|| format!("cannot lock {}", lock.display()))?;
    Ok(if locked { Lock::Held(f) } else { Lock::Busy })
}

/// Whether the entry's own mtime (or a file's atime) is later than `before`: a build
/// marked it used after the scan.
fn used_since(path: &Path, before: SystemTime) -> bool {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return false;
    };
    let mut t = meta.modified().ok();
    if meta.is_file() {
        t = t.max(meta.accessed().ok());
    }
    t.is_some_and(|t| t > before)
}

/// Removes a file, or a directory by renaming it aside first. Gone already is fine.
fn remove_path(path: &Path) -> Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    if !meta.is_dir() {
        return ignore_gone(std::fs::remove_file(path))
            .with_context(|| format!("cannot remove {}", path.display()));
    }
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let aside = if name.starts_with(".prune-") {
        path.to_owned() // already aside
    } else {
        let aside = path.with_file_name(format!(".prune-{name}-{}", std::process::id()));
        match std::fs::rename(path, &aside) {
            Ok(()) => aside,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => {
                return Err(e).with_context(|| format!("cannot move {} aside", path.display()))
            }
        }
    };
    ignore_gone(std::fs::remove_dir_all(&aside))
        .with_context(|| format!("cannot remove {}", aside.display()))
}

fn ignore_gone(r: std::io::Result<()>) -> std::io::Result<()> {
    match r {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

/// Removes `refs/` files (tag → manifest digest, for offline builds) whose manifest
/// blob is gone. Best effort: a ref is only a hint, which an online build rewrites.
fn remove_dangling_refs(root: &Path) {
    let layout = cast_core::CacheRoot::new(root);
    let blobs = layout.blobs();
    let refs: Vec<PathBuf> = walkdir::WalkDir::new(layout.refs())
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file() && !scan::is_temp(&e.file_name().to_string_lossy()))
        .map(|e| e.into_path())
        .collect();
    for r in refs {
        let Ok(text) = std::fs::read_to_string(&r) else {
            continue;
        };
        let Some(hex) = text.trim().strip_prefix("sha256:") else {
            continue;
        };
        if !blobs.join(hex).exists() {
            let _ = std::fs::remove_file(&r);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &Path) -> Entry {
        scan::measure(path)
    }

    #[test]
    fn a_directory_is_moved_aside_then_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("key");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("root.erofs"), b"x").unwrap();
        assert!(matches!(remove(&entry(&dir), false, None), Fate::Removed));
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
        // Removed by someone else meanwhile: fine.
        assert!(matches!(remove(&entry(&dir), false, None), Fate::Removed));
    }

    #[test]
    fn a_held_lock_keeps_the_entry() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("blob");
        std::fs::write(&file, b"x").unwrap();
        let lock = tmp.path().join("blob.lock");
        let writer = File::create(&lock).unwrap();
        FileExt::lock_exclusive(&writer).unwrap();
        let e = Entry {
            locks: vec![lock.clone()],
            ..entry(&file)
        };
        assert!(matches!(remove(&e, false, None), Fate::Skipped(_)));
        assert!(file.exists());
        drop(writer);
        assert!(matches!(remove(&e, false, None), Fate::Removed));
        assert!(!file.exists());
        assert!(lock.exists(), "lock files stay");
    }

    #[test]
    fn an_entry_used_after_the_scan_stays() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("blob");
        std::fs::write(&file, b"x").unwrap();
        let long_ago = SystemTime::UNIX_EPOCH + Duration::from_secs(1 << 30);
        assert!(matches!(
            remove(&entry(&file), false, Some(long_ago)),
            Fate::Skipped(_)
        ));
        assert!(file.exists());
    }
}
