//! Copying a host directory into the tree (what COPY from a build context and the
//! benchmark need): files, directories, symlinks (stored, not followed), hardlinks
//! (same host inode → same tree inode), devices, fifos, sockets, with modes, owners,
//! mtimes and optionally xattrs. The host is only read, never written.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::{AddError, DeviceKind, ImageTree, InodeId, Metadata, Timestamp};

/// How to import.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// Read extended attributes too.
    pub xattrs: bool,
    /// Give every imported entry this owner and group instead of the host's.
    pub owner: Option<(u32, u32)>,
}

/// Failure to import a host directory.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A host file or directory could not be read.
    #[error("{path}: cannot read")]
    Read {
        /// Host path.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The entry could not be added to the tree.
    #[error("{path}: cannot add to the image")]
    Add {
        /// Host path.
        path: PathBuf,
        /// Why.
        #[source]
        source: AddError,
    },
}

/// What an import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportStats {
    /// Entries added.
    pub entries: u64,
    /// Bytes of file contents copied.
    pub bytes: u64,
}

impl ImageTree {
    /// Copies the host directory `src` (its contents and its own metadata) to `dest`
    /// in the tree, recursively, in sorted order.
    pub fn import_dir(
        &mut self,
        src: &Path,
        dest: impl AsRef<Path>,
        options: &ImportOptions,
    ) -> Result<ImportStats, ImportError> {
        let mut stats = ImportStats::default();
        let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();
        let mut todo = vec![(src.to_path_buf(), dest.as_ref().to_path_buf())];
        while let Some((host, inner)) = todo.pop() {
            let read = |source| ImportError::Read {
                path: host.clone(),
                source,
            };
            let md = fs::symlink_metadata(&host).map_err(read)?;
            let meta = metadata(&host, &md, options).map_err(read)?;
            let add = |source| ImportError::Add {
                path: host.clone(),
                source,
            };
            let ft = md.file_type();
            if ft.is_dir() {
                self.mkdir_p(&inner, meta.clone()).map_err(add)?;
                self.add_dir(&inner, meta).map_err(add)?;
                let mut names: Vec<_> = fs::read_dir(&host)
                    .map_err(read)?
                    .map(|e| e.map(|e| e.file_name()))
                    .collect::<Result<_, _>>()
                    .map_err(read)?;
                names.sort_by(|a, b| b.as_bytes().cmp(a.as_bytes()));
                todo.extend(names.into_iter().map(|n| (host.join(&n), inner.join(&n))));
                stats.entries += 1;
                continue;
            }
            if md.nlink() > 1 {
                if let Some(first) = links.get(&(md.dev(), md.ino())) {
                    self.add_hardlink(&inner, first).map_err(add)?;
                    stats.entries += 1;
                    continue;
                }
                links.insert((md.dev(), md.ino()), inner.clone());
            }
            let _: InodeId = if ft.is_file() {
                let mut file = File::open(&host).map_err(read)?;
                stats.bytes += md.len();
                self.add_file(&inner, &mut file, meta).map_err(add)?
            } else if ft.is_symlink() {
                let target = fs::read_link(&host).map_err(read)?;
                self.add_symlink(&inner, target, meta).map_err(add)?
            } else if ft.is_char_device() || ft.is_block_device() {
                let kind = if ft.is_char_device() {
                    DeviceKind::Char
                } else {
                    DeviceKind::Block
                };
                let (major, minor) = split_dev(md.rdev());
                self.add_device(&inner, kind, major, minor, meta)
                    .map_err(add)?
            } else if ft.is_fifo() {
                self.add_fifo(&inner, meta).map_err(add)?
            } else {
                self.add_socket(&inner, meta).map_err(add)?
            };
            stats.entries += 1;
        }
        Ok(stats)
    }
}

fn metadata(host: &Path, md: &fs::Metadata, options: &ImportOptions) -> io::Result<Metadata> {
    let (uid, gid) = options.owner.unwrap_or((md.uid(), md.gid()));
    let mut meta = Metadata {
        mode: md.mode() & 0o7777,
        uid,
        gid,
        mtime: Timestamp {
            sec: md.mtime(),
            nsec: md.mtime_nsec() as u32,
        },
        xattrs: Default::default(),
    };
    if options.xattrs && !md.file_type().is_symlink() {
        for name in xattr::list(host)? {
            if let Some(value) = xattr::get(host, &name)? {
                meta.xattrs.insert(name.as_bytes().to_vec(), value);
            }
        }
    }
    Ok(meta)
}

/// Splits a Linux `dev_t` into major and minor (glibc's layout).
fn split_dev(dev: u64) -> (u32, u32) {
    let major = ((dev & 0x000f_ff00) >> 8) | ((dev & 0xffff_f000_0000_0000) >> 32);
    let minor = (dev & 0xff) | ((dev & 0x0000_0fff_fff0_0000) >> 12);
    (major as u32, minor as u32)
}
