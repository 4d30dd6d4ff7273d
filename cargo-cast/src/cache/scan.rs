//! What is in the cast cache: its areas (`blobs`, `build`, `kernel`, `payload/*`,
//! `target`), the entries of each (the units `prune` removes), their sizes and last
//! use, and the temp files and directories of writers that may still be running.
//!
//! Reading only metadata (never contents), so a scan is not a use.
//!
//! Last use of an entry: the latest modification or access time of anything in it
//! (a directory's own mtime included, its atime not: listing it is not a use).
//! Builds also set the mtime of the blobs and build entries they use
//! (`cast_oci::BlobCache::mark_used`, `cast_build::cache::BuildCache::lookup`), so
//! this holds on `noatime` mounts too; kernels decompressed by casted executables,
//! compressed kernels, stamps and kernel bundles rely on the access time (with the
//! usual `relatime`, updated at most once a day — enough for an age in days).

use cast_core::CacheRoot;
use std::collections::HashSet;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// One part of the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AreaKind {
    /// `blobs/` (+ `refs/`, `locks/`): image blobs from registries and archives.
    Blobs,
    /// `build/`: built root images.
    Build,
    /// `kernel/`: kernel bundles.
    Kernels,
    /// `payload/kernel/`: kernels casted executables decompressed to run.
    PayloadKernels,
    /// `payload/zstd/`: compressed kernels builds reuse.
    PayloadZstd,
    /// `payload/verified/`: stamps of root images and kernels already checked.
    Stamps,
    /// `target/`: the Cargo target dir of `cargo cast build DIR`.
    Target,
    /// Anything else under the root: shown, never removed.
    Other,
}

impl AreaKind {
    /// Every area, in table order.
    pub const ALL: [AreaKind; 8] = [
        AreaKind::Build,
        AreaKind::Blobs,
        AreaKind::Kernels,
        AreaKind::PayloadKernels,
        AreaKind::PayloadZstd,
        AreaKind::Stamps,
        AreaKind::Target,
        AreaKind::Other,
    ];

    /// The name shown (a path below the root, except `other`).
    pub fn name(self) -> &'static str {
        match self {
            AreaKind::Blobs => "blobs",
            AreaKind::Build => "build",
            AreaKind::Kernels => "kernel",
            AreaKind::PayloadKernels => "payload/kernel",
            AreaKind::PayloadZstd => "payload/zstd",
            AreaKind::Stamps => "payload/verified",
            AreaKind::Target => "target",
            AreaKind::Other => "other",
        }
    }

    /// What the area holds, for the table.
    pub fn description(self) -> &'static str {
        match self {
            AreaKind::Blobs => "image layers, manifests and configs (+ refs for --offline)",
            AreaKind::Build => "root images built from Containerfiles",
            AreaKind::Kernels => "kernel bundles (cargo cast kernel list; sha256-*: URLs)",
            AreaKind::PayloadKernels => "kernels casted executables decompressed to run",
            AreaKind::PayloadZstd => "compressed kernels builds reuse",
            AreaKind::Stamps => "root images and kernels casted executables already checked",
            AreaKind::Target => "Cargo target dir of `cargo cast build DIR`",
            AreaKind::Other => "not cargo-cast's (never pruned)",
        }
    }

    /// The directory whose children are the entries (the root for `other`).
    fn entry_dir(self, root: &Path) -> PathBuf {
        let layout = CacheRoot::new(root);
        match self {
            AreaKind::Blobs => layout.blobs(),
            AreaKind::Other => root.to_owned(),
            AreaKind::PayloadKernels => layout.payload_kernels(),
            AreaKind::PayloadZstd => layout.payload_zstd(),
            AreaKind::Stamps => layout.payload_verified(),
            AreaKind::Build => layout.build(),
            AreaKind::Kernels => layout.kernels(),
            AreaKind::Target => layout.target(),
        }
    }
}

/// Names directly under the root (and under `payload/`) that belong to an area.
const KNOWN_ROOT: [&str; 7] = [
    "blobs", "refs", "locks", "build", "kernel", "payload", "target",
];
const KNOWN_PAYLOAD: [&str; 3] = ["kernel", "zstd", "verified"];

/// A part of the cache and what is in it.
#[derive(Debug)]
pub struct Area {
    /// Which part.
    pub kind: AreaKind,
    /// Its directory.
    pub path: PathBuf,
    /// Everything in it: entries, temp files, locks, refs.
    pub bytes: u64,
    /// How many entries the table shows (for `target`, the generated crates).
    pub count: usize,
    /// What `prune` may remove, one unit each.
    pub entries: Vec<Entry>,
    /// Temp files and directories of writers (maybe still running).
    pub temps: Vec<Entry>,
}

/// One removable unit: a file or a directory.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Its path.
    pub path: PathBuf,
    /// Its size (hard links counted once).
    pub bytes: u64,
    /// The latest modification or access time of anything in it.
    pub last_used: SystemTime,
    /// Lock files the writers of this entry take; `prune` holds them all.
    pub locks: Vec<PathBuf>,
}

impl Entry {
    /// The last path component.
    pub fn name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// How long ago it was last used (zero if in the future).
    pub fn age(&self, now: SystemTime) -> Duration {
        now.duration_since(self.last_used).unwrap_or_default()
    }
}

/// Whether a name is a writer's temp file or directory: `.tmp-*` (every cache
/// entry being written, see [`cast_core::cache_entry`]), `.download-*`/
/// `.kernel-work-*` (kernels from URLs), `.prune-*` (this command's own), and the
/// names earlier versions used (`.tmp*`, `<name>.tmp<pid>`, `.old-*`).
pub fn is_temp(name: &str) -> bool {
    name.starts_with('.') || name.contains(".tmp")
}

/// Scans every area under `root`; a missing root or area is empty.
pub fn scan(root: &Path) -> Vec<Area> {
    AreaKind::ALL
        .iter()
        .map(|&kind| scan_area(root, kind))
        .collect()
}

fn scan_area(root: &Path, kind: AreaKind) -> Area {
    let dir = kind.entry_dir(root);
    let mut area = Area {
        kind,
        path: if kind == AreaKind::Blobs {
            root.join("blobs")
        } else {
            dir.clone()
        },
        bytes: 0,
        count: 0,
        entries: Vec::new(),
        temps: Vec::new(),
    };
    match kind {
        AreaKind::Target => {
            if dir.is_dir() {
                let e = measure(&dir);
                area.count = children(&dir.join("cast-crates")).len();
                area.bytes = e.bytes;
                area.entries.push(Entry {
                    locks: cargo_locks(&dir),
                    ..e
                });
            }
            return area;
        }
        AreaKind::Other => {
            let mut others: Vec<PathBuf> = children(root)
                .into_iter()
                .filter(|p| !KNOWN_ROOT.contains(&file_name(p).as_str()))
                .collect();
            others.extend(
                children(&root.join("payload"))
                    .into_iter()
                    .filter(|p| !KNOWN_PAYLOAD.contains(&file_name(p).as_str())),
            );
            area.count = others.len();
            area.bytes = others.iter().map(|p| measure(p).bytes).sum();
            return area;
        }
        AreaKind::Blobs => {
            area.bytes = ["refs", "locks"]
                .iter()
                .map(|d| measure(&root.join(d)).bytes)
                .sum();
        }
        _ => {}
    }
    for path in children(&dir) {
        let name = file_name(&path);
        let e = measure(&path);
        area.bytes += e.bytes;
        if kind == AreaKind::PayloadKernels && name.ends_with(".lock") {
            continue; // never removed: see `prune`
        }
        if is_temp(&name) {
            area.temps.push(e);
            continue;
        }
        let wanted = match kind {
            AreaKind::Build | AreaKind::Kernels => path.is_dir(),
            _ => path.is_file(),
        };
        if !wanted {
            continue;
        }
        let locks = match kind {
            AreaKind::Blobs => vec![cast_oci::BlobCache::lock_path(root, &name)],
            AreaKind::PayloadKernels => vec![cast_payload::cache::kernel_lock_path(&dir, &name)],
            _ => Vec::new(),
        };
        area.entries.push(Entry { locks, ..e });
    }
    area.count = area.entries.len();
    area
}

/// Sorted children of `dir` (none if it cannot be read).
fn children(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Size and last use of a file or tree (symlinks not followed; hard links once).
pub fn measure(path: &Path) -> Entry {
    let mut bytes = 0;
    let mut last_used = SystemTime::UNIX_EPOCH;
    let mut seen = HashSet::new();
    for item in walkdir::WalkDir::new(path).into_iter().flatten() {
        let Ok(meta) = item.metadata() else { continue };
        let mut times = vec![meta.modified().ok()];
        if meta.is_file() {
            if meta.nlink() < 2 || seen.insert((meta.dev(), meta.ino())) {
                bytes += meta.len();
            }
            times.push(meta.accessed().ok());
        }
        if let Some(t) = times.into_iter().flatten().max() {
            last_used = last_used.max(t);
        }
    }
    Entry {
        path: path.to_owned(),
        bytes,
        last_used,
        locks: Vec::new(),
    }
}

/// The build locks Cargo holds in a target dir (`<profile>/.cargo-lock`, also under
/// `<triple>/`): a running `cargo build` holds one.
fn cargo_locks(target: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(target)
        .max_depth(3)
        .into_iter()
        .flatten()
        .filter(|e| {
            let n = e.file_name().to_string_lossy();
            e.file_type().is_file() && n.starts_with(".cargo") && n.ends_with("lock")
        })
        .map(|e| e.into_path())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_are_the_writers() {
        for t in [
            ".tmp-abc",
            ".tmpXyZ12",
            ".download-1.deb",
            ".kernel-work-x",
            ".old-k-12",
            ".prune-k-1",
            "ab12.tmp345",
        ] {
            assert!(is_temp(t), "{t}");
        }
        for e in ["ab12", "sha256-00ff", "default", "ab12-19.zst"] {
            assert!(!is_temp(e), "{e}");
        }
    }

    #[test]
    fn a_missing_root_is_empty() {
        let tmp = tempfile::tempdir().unwrap();
        let areas = scan(&tmp.path().join("absent"));
        assert_eq!(areas.len(), AreaKind::ALL.len());
        assert!(areas.iter().all(|a| a.bytes == 0 && a.count == 0));
    }

    #[test]
    fn hard_links_count_once() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("a"), [0u8; 1000]).unwrap();
        std::fs::hard_link(tmp.path().join("a"), tmp.path().join("b")).unwrap();
        std::fs::write(tmp.path().join("c"), [0u8; 10]).unwrap();
        assert_eq!(measure(tmp.path()).bytes, 1010);
    }
}
