//! The disks of one build VM, in a work directory that goes away with the step:
//! the tree so far as a plain EROFS image (lower), a sparse ext4 scratch disk
//! (upper), a sparse raw disk for the layer tar, and one disk per bind or cache
//! mount. Cache disks live on in the cache root, one ext4 image per id.

use std::path::{Path, PathBuf};
use std::process::Command;

use cast_rootfs::{erofs, tree::ImportOptions, ImageTree, Metadata};
use cast_runner::{Disk, DiskSlice};

use crate::builder::{graft, RunInputs};
use crate::cache::KeyBuilder;
use crate::stages::CopyFrom;

/// Serial of the scratch disk.
pub const SCRATCH: &str = "scratch";
/// Serial of the diff disk.
pub const DIFF: &str = "diff";
/// Size of the sparse scratch and diff disks: a bound, not an allocation.
const SPARSE_SIZE: u64 = 64 << 30;
/// Size of a cache mount's disk.
const CACHE_SIZE: u64 = 32 << 30;

/// A build VM's disks.
#[derive(Debug)]
pub struct DiskSet {
    work: PathBuf,
    /// The lower image.
    pub root: DiskSlice,
    /// Scratch, diff, then mount disks.
    pub disks: Vec<Disk>,
    /// The diff disk's file.
    pub diff: PathBuf,
}

impl DiskSet {
    /// Writes `tree` as the lower image and makes the scratch and diff disks.
    pub fn new(work: &Path, tree: &ImageTree) -> std::io::Result<Self> {
        let lower = work.join("lower.erofs");
        let size = write_erofs(tree, &lower)?;
        let scratch = work.join("scratch.ext4");
        mkfs_ext4(&scratch, SPARSE_SIZE)?;
        let diff = work.join("diff.tar");
        std::fs::File::create(&diff)?.set_len(SPARSE_SIZE)?;
        Ok(DiskSet {
            work: work.to_owned(),
            root: DiskSlice {
                path: lower,
                offset: 0,
                size,
            },
            disks: vec![
                Disk {
                    path: scratch,
                    serial: SCRATCH.into(),
                    read_only: false,
                },
                Disk {
                    path: diff.clone(),
                    serial: DIFF.into(),
                    read_only: false,
                },
            ],
            diff,
        })
    }

    fn add(&mut self, path: PathBuf, read_only: bool) -> String {
        let serial = format!("mount{}", self.disks.len());
        self.disks.push(Disk {
            path,
            serial: serial.clone(),
            read_only,
        });
        serial
    }

    /// The ext4 disk of cache `id` (made empty on first use); returns its serial.
    pub fn cache_disk(&mut self, dir: &Path, id: &str, arch: &str) -> std::io::Result<String> {
        let name = KeyBuilder::default()
            .part("id", id)
            .part("arch", arch)
            .finish();
        let path = dir.join(format!("{name}.ext4"));
        if !path.is_file() {
            std::fs::create_dir_all(dir)?;
            let tmp = tempfile::Builder::new()
                .prefix(".new-")
                .tempfile_in(dir)?
                .into_temp_path();
            mkfs_ext4(&tmp, CACHE_SIZE)?;
            tmp.persist(&path).map_err(|e| e.error)?;
        }
        Ok(self.add(path, false))
    }

    /// An EROFS disk of `source` in the context or a stage; returns its serial.
    pub fn bind_disk(
        &mut self,
        from: &CopyFrom,
        source: &str,
        inputs: &RunInputs<'_>,
    ) -> Result<String, String> {
        let mut tree = ImageTree::new().map_err(|e| e.to_string())?;
        match from {
            CopyFrom::Context => {
                let rel = source.trim_start_matches('/');
                if Path::new(rel)
                    .components()
                    .any(|c| matches!(c, std::path::Component::ParentDir))
                {
                    return Err(format!("source {source} is outside the build context"));
                }
                let dir = inputs.context.root().join(rel);
                tree.import_dir(&dir, "/", &ImportOptions::default())
                    .map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
            }
            CopyFrom::Stage(i) => {
                let stage = inputs.stages[*i].as_ref().ok_or("the stage is not built")?;
                let id = stage
                    .lookup_follow(source)
                    .map_err(|e| format!("{source} in stage {i}: {e}"))?;
                graft::graft_contents(
                    stage,
                    id,
                    &mut tree,
                    Path::new("/"),
                    Metadata::default_dir(),
                    &graft::Override::default(),
                )
                .map_err(|e| e.to_string())?;
            }
            CopyFrom::Image(image) => {
                return Err(format!(
                    "from={image}: bind mounts from images are not supported; use a stage (FROM {image} AS name)"
                ))
            }
        }
        let path = self.work.join(format!("bind{}.erofs", self.disks.len()));
        write_erofs(&tree, &path).map_err(|e| e.to_string())?;
        Ok(self.add(path, true))
    }
}

/// Writes `tree` as a plain EROFS image padded to 512 bytes; returns its size.
fn write_erofs(tree: &ImageTree, path: &Path) -> std::io::Result<u64> {
    let options = erofs::Options {
        lz4: false,
        ..erofs::Options::default()
    };
    erofs::write_image_to_path(tree, &options, path).map_err(std::io::Error::other)?;
    let file = std::fs::OpenOptions::new().write(true).open(path)?;
    let size = file.metadata()?.len().div_ceil(512) * 512;
    file.set_len(size)?;
    Ok(size)
}

/// A sparse file of `size` bytes formatted as ext4 (no journal: it is thrown away
/// or, for caches, only ever used by one VM at a time).
fn mkfs_ext4(path: &Path, size: u64) -> std::io::Result<()> {
    std::fs::File::create(path)?.set_len(size)?;
    let mkfs = ["/sbin/mkfs.ext4", "/usr/sbin/mkfs.ext4"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("mkfs.ext4"));
    let out = Command::new(&mkfs)
        .args(["-q", "-F", "-O", "^has_journal", "-m", "0"])
        .args(["-E", "lazy_itable_init=1,root_owner=0:0"])
        .arg(path)
        .output()
        .map_err(|e| {
            std::io::Error::other(format!(
                "cannot run {} (install e2fsprogs): {e}",
                mkfs.display()
            ))
        })?;
    if !out.status.success() {
        return Err(std::io::Error::other(format!(
            "mkfs.ext4 failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}
