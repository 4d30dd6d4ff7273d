//! One tar entry → one tree operation, with its metadata from the header and PAX
//! records (uid/gid/mtime overrides, `SCHILY.xattr.*`).

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use tar::EntryType;

use super::{whiteout, ApplyError, LayerStats};
use crate::tree::path::{join, normalize};
use crate::tree::{AddError, DeviceKind, ImageTree, Metadata, Timestamp};

const XATTR_PREFIX: &str = "SCHILY.xattr.";

/// Applies the entries of one layer, remembering what this layer added (opaque
/// whiteouts must spare those).
pub(super) struct Applier<'t> {
    tree: &'t mut ImageTree,
    pub(super) added: HashSet<Vec<Vec<u8>>>,
    stats: LayerStats,
    /// Components every entry (and hardlink target) is placed under.
    prefix: Vec<Vec<u8>>,
    /// Interpret `.wh.` entries (layers) or keep them as files (plain archives).
    whiteouts: bool,
}

impl<'t> Applier<'t> {
    /// An applier for an image layer: entries at the root, whiteouts honoured.
    pub(super) fn new(tree: &'t mut ImageTree) -> Self {
        Self {
            tree,
            added: HashSet::new(),
            stats: LayerStats::default(),
            prefix: Vec::new(),
            whiteouts: true,
        }
    }

    /// An applier for a plain archive unpacked under `dest` (whiteouts are files).
    pub(super) fn under(tree: &'t mut ImageTree, dest: &std::path::Path) -> Self {
        Self {
            prefix: normalize(dest).components,
            whiteouts: false,
            ..Self::new(tree)
        }
    }

    pub(super) fn stats(&self) -> LayerStats {
        self.stats
    }

    pub(super) fn apply<R: Read>(
        &mut self,
        item: &mut tar::Entry<'_, R>,
    ) -> Result<(), ApplyError> {
        let raw_path = item.path().map_err(ApplyError::Read)?.into_owned();
        let mut norm = normalize(&raw_path);
        if norm.escaped {
            return Err(ApplyError::PathEscapes(raw_path));
        }
        norm.components.splice(0..0, self.prefix.iter().cloned());
        let kind = item.header().entry_type();
        if matches!(kind, EntryType::XGlobalHeader | EntryType::XHeader) {
            return Ok(());
        }
        if let Some(name) = norm.components.last().filter(|_| self.whiteouts) {
            if let Some(rest) = name.strip_prefix(b".wh.") {
                self.stats.whiteouts += 1;
                let parent = &norm.components[..norm.components.len() - 1];
                return whiteout::apply(self.tree, &self.added, parent, rest).map_err(|source| {
                    ApplyError::Whiteout {
                        path: raw_path,
                        source,
                    }
                });
            }
        }
        let path = join(&norm.components);
        let meta = metadata(item)?;
        let add = |source| ApplyError::Add {
            path: raw_path.clone(),
            source,
        };
        if !kind.is_dir() {
            // A non-directory replaces a directory of a lower layer.
            if let Ok(id) = self.tree.lookup(&path) {
                if self.tree.inode(id).node.is_dir() && id != self.tree.root() {
                    self.tree.remove(&path).map_err(|e| add(e.into()))?;
                }
            }
        }
        match kind {
            EntryType::Regular | EntryType::Continuous => {
                let size = item.header().size().unwrap_or(0);
                self.tree.add_file(&path, item, meta).map_err(add)?;
                self.stats.bytes += size;
            }
            EntryType::Directory => {
                self.tree.add_dir(&path, meta).map_err(add)?;
            }
            EntryType::Symlink => {
                let target = link_name(item, &raw_path)?;
                self.tree.add_symlink(&path, target, meta).map_err(add)?;
            }
            EntryType::Link => {
                let target = link_name(item, &raw_path)?;
                let mut tnorm = normalize(&target);
                tnorm.components.splice(0..0, self.prefix.iter().cloned());
                if tnorm.escaped {
                    return Err(ApplyError::LinkEscapes {
                        path: raw_path,
                        target,
                    });
                }
                self.tree
                    .add_hardlink(&path, join(&tnorm.components))
                    .map_err(|source| ApplyError::LinkTarget {
                        path: raw_path.clone(),
                        target,
                        source,
                    })?;
            }
            EntryType::Char | EntryType::Block => {
                let dev = if kind == EntryType::Char {
                    DeviceKind::Char
                } else {
                    DeviceKind::Block
                };
                let header = item.header();
                let major = header.device_major().ok().flatten().unwrap_or(0);
                let minor = header.device_minor().ok().flatten().unwrap_or(0);
                self.tree
                    .add_device(&path, dev, major, minor, meta)
                    .map_err(add)?;
            }
            EntryType::Fifo => {
                self.tree.add_fifo(&path, meta).map_err(add)?;
            }
            other => {
                return Err(ApplyError::Unsupported {
                    path: raw_path,
                    kind: other.as_byte() as char,
                })
            }
        }
        self.stats.entries += 1;
        for i in 1..=norm.components.len() {
            self.added.insert(norm.components[..i].to_vec());
        }
        Ok(())
    }
}

fn link_name<R: Read>(item: &tar::Entry<'_, R>, path: &Path) -> Result<PathBuf, ApplyError> {
    match item.link_name().map_err(ApplyError::Read)? {
        Some(target) => Ok(target.into_owned()),
        None => Err(ApplyError::LinkTarget {
            path: path.to_path_buf(),
            target: PathBuf::new(),
            source: AddError::Path(crate::tree::PathError::NotFound(PathBuf::new())),
        }),
    }
}

/// Owner, mode, mtime and xattrs of an entry, PAX records taking precedence.
fn metadata<R: Read>(item: &mut tar::Entry<'_, R>) -> Result<Metadata, ApplyError> {
    let header = item.header();
    let mut meta = Metadata {
        mode: header.mode().unwrap_or(0o644) & 0o7777,
        uid: header.uid().unwrap_or(0) as u32,
        gid: header.gid().unwrap_or(0) as u32,
        mtime: Timestamp::from_secs(header.mtime().unwrap_or(0) as i64),
        xattrs: Default::default(),
    };
    let Some(pax) = item.pax_extensions().map_err(ApplyError::Read)? else {
        return Ok(meta);
    };
    for ext in pax {
        let ext = ext.map_err(ApplyError::Read)?;
        let Ok(key) = ext.key() else { continue };
        let value = ext.value_bytes();
        let text = std::str::from_utf8(value).unwrap_or("");
        match key {
            "uid" => meta.uid = text.parse().unwrap_or(meta.uid),
            "gid" => meta.gid = text.parse().unwrap_or(meta.gid),
            "mtime" => meta.mtime = parse_pax_time(text).unwrap_or(meta.mtime),
            _ => {
                if let Some(name) = key.strip_prefix(XATTR_PREFIX) {
                    meta.xattrs.insert(name.as_bytes().to_vec(), value.to_vec());
                }
            }
        }
    }
    Ok(meta)
}

/// Parses a PAX time like `1700000000.123456789` or `-1.5`.
pub(crate) fn parse_pax_time(text: &str) -> Option<Timestamp> {
    let (neg, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (secs, frac) = text.split_once('.').unwrap_or((text, ""));
    let sec: i64 = secs.parse().ok()?;
    let digits: String = frac.chars().take(9).collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let nsec = if digits.is_empty() {
        0
    } else {
        format!("{digits:0<9}").parse::<u32>().ok()?
    };
    Some(match (neg, nsec) {
        (false, _) => Timestamp { sec, nsec },
        (true, 0) => Timestamp { sec: -sec, nsec: 0 },
        (true, n) => Timestamp {
            sec: -sec - 1,
            nsec: 1_000_000_000 - n,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_times() {
        let t = |sec, nsec| Some(Timestamp { sec, nsec });
        assert_eq!(parse_pax_time("12"), t(12, 0));
        assert_eq!(parse_pax_time("12.5"), t(12, 500_000_000));
        assert_eq!(parse_pax_time("12.123456789123"), t(12, 123_456_789));
        assert_eq!(parse_pax_time("-1.25"), t(-2, 750_000_000));
        assert_eq!(parse_pax_time("x"), None);
    }
}
