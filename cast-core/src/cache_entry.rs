//! Writing a cache entry so that a reader sees all of it or none of it.
//!
//! Every cache of cargo-cast (blobs, build entries, kernel bundles, decoded
//! kernels, compressed kernels, verified stamps) writes the same way: the entry is
//! written under a temporary name in the directory it will live in
//! (`.tmp-<name>.<random>`), checked where there is something to check it against
//! (a digest), synced to disk, and renamed to its name. A rename within a
//! directory is atomic, so:
//!
//! - a crash (or kill) mid-write leaves only a temporary, which `cargo cast cache
//!   prune` and the writers' own clean-ups recognise by its leading `.tmp-`
//!   ([`is_temp`]); the entry's name never holds half an entry;
//! - a concurrent reader sees no entry, or a complete one;
//! - a failed check leaves nothing: dropping a [`StagedFile`] or [`StagedDir`]
//!   without committing it removes the temporary.
//!
//! Locks are not this module's business: a cache that takes a lock around a
//! write (so that two builds do not download the same blob twice) keeps it.
//!
//! ```
//! use std::io::Write;
//! use cast_core::cache_entry::StagedFile;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let entry = dir.path().join("entry");
//! let mut staged = StagedFile::new(&entry).unwrap();
//! staged.file().write_all(b"contents").unwrap();
//! assert!(!entry.exists()); // not there until committed
//! staged.commit().unwrap();
//! assert_eq!(std::fs::read(&entry).unwrap(), b"contents");
//! ```

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use tempfile::{NamedTempFile, TempDir};

/// How every temporary of a cache writer begins.
pub const TEMP_PREFIX: &str = ".tmp-";

/// Whether a directory entry's name is a writer's temporary (a write in
/// progress, or the leftover of one that was killed).
pub fn is_temp(name: &str) -> bool {
    name.starts_with(TEMP_PREFIX)
}

/// The prefix of the temporaries of the entry at `dest`: `.tmp-<name>.`.
fn temp_prefix(dest: &Path) -> String {
    let name = dest.file_name().unwrap_or_default().to_string_lossy();
    format!("{TEMP_PREFIX}{name}.")
}

fn parent(dest: &Path) -> &Path {
    dest.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Removes the temporaries of the entry at `dest` (files and directories).
///
/// Only for a caller that holds a lock every writer of this entry takes: then
/// they are leftovers of killed writers, not writes in progress.
pub fn remove_leftovers(dest: &Path) {
    let prefix = temp_prefix(dest);
    let Ok(entries) = std::fs::read_dir(parent(dest)) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with(&prefix) {
            let path = e.path();
            let _ = match e.file_type() {
                Ok(t) if t.is_dir() => std::fs::remove_dir_all(&path),
                _ => std::fs::remove_file(&path),
            };
        }
    }
}

/// Writes `data` as the file entry `dest` (replacing what is there).
pub fn write_file(dest: &Path, data: &[u8]) -> io::Result<()> {
    let mut staged = StagedFile::new(dest)?;
    staged.file().write_all(data)?;
    staged.commit()
}

/// Syncs the directory `dir`, so that a rename in it survives a crash of the
/// machine. Best effort: not every platform can sync a directory.
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// A file entry being written: a temporary beside `dest`, removed when dropped
/// uncommitted.
#[derive(Debug)]
pub struct StagedFile {
    tmp: NamedTempFile,
    dest: PathBuf,
}

impl StagedFile {
    /// Starts writing the file entry `dest`, creating its directory if needed.
    pub fn new(dest: &Path) -> io::Result<Self> {
        let dir = parent(dest);
        std::fs::create_dir_all(dir)?;
        let tmp = tempfile::Builder::new()
            .prefix(&temp_prefix(dest))
            .tempfile_in(dir)?;
        Ok(Self {
            tmp,
            dest: dest.to_owned(),
        })
    }

    /// The temporary file, to write the entry's contents into.
    pub fn file(&mut self) -> &mut File {
        self.tmp.as_file_mut()
    }

    /// The temporary's path, for writers that take a path.
    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// Where the entry goes.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// Syncs the contents and renames the temporary to the entry's name,
    /// replacing what is there atomically.
    pub fn commit(self) -> io::Result<()> {
        self.tmp.as_file().sync_all()?;
        self.tmp.persist(&self.dest).map_err(|e| e.error)?;
        sync_dir(parent(&self.dest));
        Ok(())
    }
}

/// Which entry is in place after [`StagedDir::commit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placed {
    /// The one just written.
    Ours,
    /// One another writer put there first; ours was removed.
    Theirs,
}

/// A directory entry being written: a temporary directory beside `dest`,
/// removed when dropped uncommitted.
#[derive(Debug)]
pub struct StagedDir {
    tmp: TempDir,
    dest: PathBuf,
}

impl StagedDir {
    /// Starts writing the directory entry `dest`, creating its parent if needed.
    pub fn new(dest: &Path) -> io::Result<Self> {
        let dir = parent(dest);
        std::fs::create_dir_all(dir)?;
        let tmp = tempfile::Builder::new()
            .prefix(&temp_prefix(dest))
            .tempdir_in(dir)?;
        Ok(Self {
            tmp,
            dest: dest.to_owned(),
        })
    }

    /// The temporary directory, to write the entry's files into.
    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// Where the entry goes.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// Syncs the files and renames the temporary to the entry's name. A complete
    /// entry already there (another writer of the same entry was first) is kept
    /// and ours removed.
    pub fn commit(self) -> io::Result<Placed> {
        sync_tree(self.tmp.path())?;
        match std::fs::rename(self.tmp.path(), &self.dest) {
            Ok(()) => {
                let _ = self.tmp.keep();
                sync_dir(parent(&self.dest));
                Ok(Placed::Ours)
            }
            // `self.tmp` is removed on return.
            Err(_) if self.dest.is_dir() => Ok(Placed::Theirs),
            Err(e) => Err(e),
        }
    }

    /// Like [`commit`](Self::commit), but an entry already at `dest` (a stale
    /// one) is replaced: moved aside to a temporary, then removed. A reader sees
    /// the old entry, no entry, or the new one; never a mix of files.
    pub fn replace(self) -> io::Result<Placed> {
        if std::fs::symlink_metadata(&self.dest).is_ok() {
            let aside = tempfile::Builder::new()
                .prefix(&temp_prefix(&self.dest))
                .tempdir_in(parent(&self.dest))?;
            // Renaming a directory over an empty one replaces it. Failing here
            // means another writer moved it first: `commit` sorts that out.
            let _ = std::fs::rename(&self.dest, aside.path());
            drop(aside);
        }
        self.commit()
    }
}

/// Syncs every file and directory under `dir`, then `dir` itself.
fn sync_tree(dir: &Path) -> io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let kind = e.file_type()?;
        if kind.is_dir() {
            sync_tree(&e.path())?;
        } else if kind.is_file() {
            File::open(e.path())?.sync_all()?;
        }
    }
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// The child half of `a_crash_mid_write_leaves_only_a_temporary`: starts an
    /// entry, writes half of it and exits without running a destructor, as a
    /// killed process does.
    #[test]
    #[ignore = "run by a_crash_mid_write_leaves_only_a_temporary"]
    fn crash_child() {
        let dir = PathBuf::from(std::env::var_os("CAST_CORE_CRASH_DIR").unwrap());
        let mut file = StagedFile::new(&dir.join("file")).unwrap();
        file.file().write_all(b"half").unwrap();
        let staged = StagedDir::new(&dir.join("dir")).unwrap();
        std::fs::write(staged.path().join("a"), b"half").unwrap();
        std::process::exit(3);
    }

    #[test]
    fn a_crash_mid_write_leaves_only_a_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "cache_entry::tests::crash_child", "--ignored"])
            .env("CAST_CORE_CRASH_DIR", dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(3), "the child did not get to its exit");
        let left = names(dir.path());
        assert_eq!(left.len(), 2, "{left:?}");
        assert!(left.iter().all(|n| is_temp(n)), "{left:?}");
        assert!(left.iter().any(|n| n.starts_with(".tmp-dir.")), "{left:?}");
        assert!(left.iter().any(|n| n.starts_with(".tmp-file.")), "{left:?}");

        // The next writer that holds the entry's lock clears them up.
        remove_leftovers(&dir.path().join("file"));
        remove_leftovers(&dir.path().join("dir"));
        assert!(names(dir.path()).is_empty());
    }

    #[test]
    fn a_failed_check_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let check = |data: &[u8]| if data == b"good" { Ok(()) } else { Err("bad") };

        let store_file = |data: &[u8]| -> Result<(), &str> {
            let mut staged = StagedFile::new(&dir.path().join("file")).unwrap();
            staged.file().write_all(data).unwrap();
            check(data)?;
            staged.commit().unwrap();
            Ok(())
        };
        let store_dir = |data: &[u8]| -> Result<(), &str> {
            let staged = StagedDir::new(&dir.path().join("dir")).unwrap();
            std::fs::write(staged.path().join("a"), data).unwrap();
            check(data)?;
            staged.commit().unwrap();
            Ok(())
        };
        assert!(store_file(b"evil").is_err());
        assert!(store_dir(b"evil").is_err());
        assert!(names(dir.path()).is_empty());

        store_file(b"good").unwrap();
        store_dir(b"good").unwrap();
        assert_eq!(names(dir.path()), ["dir", "file"]);
    }

    #[test]
    fn a_concurrent_reader_never_sees_half_an_entry() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        let entry = dir.path().join("dir");
        // What a reader sees of both entries: "none", or a whole entry's contents.
        let read = || {
            let f = std::fs::read_to_string(&file).unwrap_or_else(|_| "none".into());
            let d = match (
                std::fs::read_to_string(entry.join("a")),
                std::fs::read_to_string(entry.join("b")),
            ) {
                (Ok(a), Ok(b)) => format!("{a}{b}"),
                (Err(_), Err(_)) if !entry.exists() => "none".into(),
                (a, b) => format!("half: {a:?} {b:?}"),
            };
            format!("{f} {d}")
        };
        let (ask, asked) = mpsc::channel::<()>();
        let (tell, told) = mpsc::channel::<String>();
        std::thread::scope(|s| {
            // The reader, in another thread, looks whenever the writer asks.
            s.spawn(move || {
                for () in asked {
                    tell.send(read()).unwrap();
                }
            });
            let seen = || {
                ask.send(()).unwrap();
                told.recv().unwrap()
            };
            for (old, new) in [("none", "v1"), ("v1", "v2")] {
                let mut f = StagedFile::new(&file).unwrap();
                let d = StagedDir::new(&entry).unwrap();
                f.file().write_all(&new.as_bytes()[..1]).unwrap();
                std::fs::write(d.path().join("a"), &new[..1]).unwrap();
                assert_eq!(seen(), format!("{old} {old}"));
                f.file().write_all(&new.as_bytes()[1..]).unwrap();
                std::fs::write(d.path().join("b"), &new[1..]).unwrap();
                assert_eq!(seen(), format!("{old} {old}"));
                f.commit().unwrap();
                assert_eq!(d.replace().unwrap(), Placed::Ours);
                assert_eq!(seen(), format!("{new} {new}"));
            }
            drop(ask);
        });
        assert_eq!(names(dir.path()), ["dir", "file"]);
    }

    #[test]
    fn the_first_complete_directory_entry_wins_a_commit() {
        let dir = tempfile::tempdir().unwrap();
        let entry = dir.path().join("entry");
        let first = StagedDir::new(&entry).unwrap();
        let second = StagedDir::new(&entry).unwrap();
        std::fs::write(first.path().join("who"), "first").unwrap();
        std::fs::write(second.path().join("who"), "second").unwrap();
        assert_eq!(first.commit().unwrap(), Placed::Ours);
        assert_eq!(second.commit().unwrap(), Placed::Theirs);
        assert_eq!(std::fs::read_to_string(entry.join("who")).unwrap(), "first");
        assert_eq!(names(dir.path()), ["entry"]);
    }

    #[test]
    fn write_file_replaces_and_creates_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let entry = dir.path().join("a/b/stamp");
        write_file(&entry, b"one").unwrap();
        write_file(&entry, b"two").unwrap();
        assert_eq!(std::fs::read(&entry).unwrap(), b"two");
        assert_eq!(names(&dir.path().join("a/b")), ["stamp"]);
    }
}
