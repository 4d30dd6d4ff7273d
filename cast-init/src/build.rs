//! Build mode: running one Containerfile `RUN` and handing its changes back as a layer.
//!
//! ```text
//! disk "root"    (EROFS, the image so far, read-only) ─ lower ┐
//! disk "scratch" (ext4, /cast/rw/{upper,work}) ─────── upper ─┴ overlay ─ /
//! disk "diff"    (raw) ← the upper dir as an OCI layer tar, written from offset 0
//! ```
//!
//! Writes land on the scratch disk, so a RUN may write more than the guest has
//! memory. The RUN's own `/etc/hostname`, `/etc/hosts` and `/etc/resolv.conf`
//! ([`sandbox_files`], as BuildKit gives them) and its `RUN --mount`s are set up in
//! the new root before the process starts ([`Mounts::set_up`]) and taken down after
//! it ends; the directories and files made only to mount on are left out of the
//! layer. Then [`write_diff`] walks the upper
//! dir and turns overlayfs's markers into OCI whiteouts: a `0:0` character device
//! becomes `.wh.NAME`, a directory with `trusted.overlay.opaque=y` gets a
//! `.wh..wh..opq` entry.

use crate::rootfs::{fs_type, mnt};
use cast_proto::{BuildMount, BuildMountKind, BuildSpec, NetworkSpec};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{chown, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long the build disks may take to appear after virtio_blk loads.
const DISK_WAIT: Duration = Duration::from_secs(10);
/// Where the scratch disk is mounted again, after the run, to read its upper dir
/// (devtmpfs: nothing written there reaches the layer).
const UPPER_VIEW: &str = "/dev/.cast-upper";
/// Private mount points for mounts made of several parts.
const PRIVATE: &str = "/dev/.cast-mnt";

/// The build VM's disks, by their `/dev` nodes.
#[derive(Debug, Clone)]
pub struct Disks {
    /// The image so far.
    pub root: PathBuf,
    /// The ext4 scratch disk.
    pub scratch: PathBuf,
    /// The raw disk the diff goes to.
    pub diff: PathBuf,
}

impl Disks {
    /// Finds the disks `spec` names.
    pub fn find(spec: &BuildSpec) -> io::Result<Self> {
        Ok(Disks {
            root: find_disk("root")?,
            scratch: find_disk(&spec.scratch_serial)?,
            diff: find_disk(&spec.diff_serial)?,
        })
    }
}

/// The `/dev` node of the virtio disk with this serial, waiting for it to appear.
pub fn find_disk(serial: &str) -> io::Result<PathBuf> {
    let deadline = Instant::now() + DISK_WAIT;
    loop {
        if let Ok(entries) = std::fs::read_dir("/sys/block") {
            for e in entries.flatten() {
                let found = std::fs::read_to_string(e.path().join("serial"))
                    .is_ok_and(|s| s.trim_end() == serial);
                let node = Path::new("/dev").join(e.file_name());
                if found && node.exists() {
                    return Ok(node);
                }
            }
        }
        if Instant::now() >= deadline {
            return Err(io::Error::other(format!(
                "no disk with serial {serial:?} appeared"
            )));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The `RUN --mount`s in place, and what was created only to mount on.
#[derive(Debug, Default)]
pub struct Mounts {
    /// Mount points, in the order mounted.
    mounted: Vec<PathBuf>,
    /// Paths created as mount points (left out of the layer while still empty).
    stubs: Vec<PathBuf>,
}

impl Mounts {
    /// Sets up the sandbox files (see [`sandbox_files`]), then `mounts`, in the
    /// (new) root.
    pub fn set_up(sandbox: &[SandboxFile], mounts: &[BuildMount]) -> io::Result<Self> {
        let mut done = Mounts::default();
        for f in sandbox {
            done.sandbox_file(f)
                .map_err(|e| io::Error::other(format!("{}: {e}", f.path)))?;
        }
        for (i, m) in mounts.iter().enumerate() {
            done.mount_one(i, m)
                .map_err(|e| io::Error::other(format!("RUN --mount at {}: {e}", m.target)))?;
        }
        Ok(done)
    }

    fn mount_one(&mut self, i: usize, m: &BuildMount) -> io::Result<()> {
        let target = PathBuf::from(&m.target);
        match &m.kind {
            BuildMountKind::Tmpfs { size } => {
                self.stub_dir(&target)?;
                let data = size.map(|s| format!("size={s}"));
                mnt(
                    "tmpfs",
                    &m.target,
                    Some("tmpfs"),
                    MsFlags::empty(),
                    data.as_deref(),
                )?;
            }
            BuildMountKind::Disk {
                serial,
                overlay,
                readonly,
            } => {
                let dev = find_disk(serial)?;
                let fs = fs_type(&dev)?;
                let dev = dev.to_string_lossy().into_owned();
                self.stub_dir(&target)?;
                if *overlay {
                    let base = format!("{PRIVATE}/{i}");
                    mnt(
                        &dev,
                        &format!("{base}/lower"),
                        Some(fs),
                        MsFlags::MS_RDONLY,
                        None,
                    )?;
                    mnt(
                        "tmpfs",
                        &format!("{base}/rw"),
                        Some("tmpfs"),
                        MsFlags::empty(),
                        None,
                    )?;
                    std::fs::create_dir_all(format!("{base}/rw/upper"))?;
                    std::fs::create_dir_all(format!("{base}/rw/work"))?;
                    let options = format!(
                        "lowerdir={base}/lower,upperdir={base}/rw/upper,workdir={base}/rw/work"
                    );
                    mnt(
                        "overlay",
                        &m.target,
                        Some("overlay"),
                        MsFlags::empty(),
                        Some(&options),
                    )?;
                } else {
                    let flags = if *readonly {
                        MsFlags::MS_RDONLY
                    } else {
                        MsFlags::empty()
                    };
                    mnt(&dev, &m.target, Some(fs), flags, None)?;
                }
            }
            BuildMountKind::File {
                content,
                mode,
                uid,
                gid,
            } => {
                let file = private_file(&i.to_string(), content, *mode, *uid, *gid)?;
                self.bind_file_over(&file, &target)?;
            }
        }
        self.mounted.push(target);
        Ok(())
    }

    /// Mounts one sandbox file over the image's (made as an empty stub when the
    /// image has none; a symlink is followed, a dangling one left alone).
    fn sandbox_file(&mut self, f: &SandboxFile) -> io::Result<()> {
        let target = PathBuf::from(f.path);
        let is_link = std::fs::symlink_metadata(&target).is_ok_and(|m| m.is_symlink());
        if is_link && !target.exists() {
            return Ok(());
        }
        let name = f.path.trim_start_matches('/').replace('/', "-");
        let file = private_file(&name, f.content.as_bytes(), 0o644, 0, 0)?;
        self.bind_file_over(&file, &target)?;
        self.mounted.push(target);
        Ok(())
    }

    /// Binds `file` over `target`, first making `target` (and its missing parents) as
    /// empty stubs, remembered for removal, when the image has none.
    fn bind_file_over(&mut self, file: &Path, target: &Path) -> io::Result<()> {
        if let Some(parent) = target.parent() {
            self.stub_dir(parent)?;
        }
        if !target.exists() {
            File::create(target)?;
            self.stubs.push(target.to_owned());
        }
        bind(file, target)
    }

    /// Creates `dir` and its missing parents, remembering each one created.
    fn stub_dir(&mut self, dir: &Path) -> io::Result<()> {
        let mut missing = Vec::new();
        let mut at = Some(dir);
        while let Some(p) = at {
            if p.exists() {
                break;
            }
            missing.push(p.to_owned());
            at = p.parent();
        }
        for p in missing.into_iter().rev() {
            std::fs::create_dir(&p)?;
            self.stubs.push(p);
        }
        Ok(())
    }

    /// Unmounts everything (a cache disk must be clean for the next build) and
    /// returns the stub paths.
    pub fn take_down(self) -> Vec<PathBuf> {
        for target in self.mounted.iter().rev() {
            if umount2(target, MntFlags::empty()).is_err() {
                let _ = umount2(target, MntFlags::MNT_DETACH);
            }
        }
        nix::unistd::sync();
        self.stubs
    }
}

/// A file the command sees in place of the image's, never part of the layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxFile {
    /// Absolute path in the image.
    pub path: &'static str,
    /// What the command reads.
    pub content: String,
}

/// The files BuildKit gives a RUN of its own: `/etc/hostname`, `/etc/hosts` (see
/// [`crate::net::hosts_file`]) and, with a network, `/etc/resolv.conf` naming the
/// NAT's DNS (without one the image's stays). Mounted over the image's, so what a
/// RUN writes there is not kept either, as with BuildKit.
pub fn sandbox_files(hostname: &str, network: Option<&NetworkSpec>) -> Vec<SandboxFile> {
    let mut files = vec![
        SandboxFile {
            path: "/etc/hostname",
            content: format!("{hostname}\n"),
        },
        SandboxFile {
            path: "/etc/hosts",
            content: crate::net::hosts_file(hostname, network),
        },
    ];
    if let Some(net) = network {
        files.push(SandboxFile {
            path: "/etc/resolv.conf",
            content: crate::net::resolv_conf(net),
        });
    }
    files
}

/// A file with `content` on a private tmpfs (`PRIVATE/NAME/file`), to bind-mount.
fn private_file(name: &str, content: &[u8], mode: u32, uid: u32, gid: u32) -> io::Result<PathBuf> {
    let dir = format!("{PRIVATE}/{name}");
    mnt(
        "tmpfs",
        &dir,
        Some("tmpfs"),
        MsFlags::empty(),
        Some("mode=0755"),
    )?;
    let file = Path::new(&dir).join("file");
    std::fs::write(&file, content)?;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode))?;
    chown(&file, Some(uid), Some(gid))?;
    Ok(file)
}

/// Bind-mounts the file `source` on `target`.
fn bind(source: &Path, target: &Path) -> io::Result<()> {
    mount(
        Some(source),
        target,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| {
        io::Error::other(format!(
            "mounting {} on {}: {e}",
            source.display(),
            target.display()
        ))
    })
}

/// Writes the upper dir of the scratch disk as an OCI layer tar onto the diff disk;
/// returns its length. `stubs` (absolute paths in the image) are left out while
/// they are an empty directory or an empty file.
pub fn write_diff(disks: &Disks, stubs: &[PathBuf]) -> io::Result<u64> {
    nix::unistd::sync();
    mnt(
        &disks.scratch.to_string_lossy(),
        UPPER_VIEW,
        Some("ext4"),
        MsFlags::empty(), // the same superblock as the overlay's: same flags
        None,
    )?;
    let upper = Path::new(UPPER_VIEW).join("upper");
    let out = OpenOptions::new().write(true).open(&disks.diff)?;
    let counter = Counter {
        inner: BufWriter::with_capacity(1 << 20, out),
        bytes: 0,
    };
    let mut diff = Diff {
        tar: tar::Builder::new(counter),
        links: std::collections::HashMap::new(),
        stubs,
    };
    diff.dir(&upper, Path::new(""))?;
    let mut counter = diff.tar.into_inner()?;
    counter.flush()?;
    let bytes = counter.bytes;
    counter
        .inner
        .into_inner()
        .map_err(|e| e.into_error())?
        .sync_all()?;
    Ok(bytes)
}

/// Counts what goes through.
struct Counter<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The walk over the upper dir.
struct Diff<'a, W: Write> {
    tar: tar::Builder<W>,
    /// (device, inode) of regular files with several links → the first name.
    links: std::collections::HashMap<(u64, u64), PathBuf>,
    stubs: &'a [PathBuf],
}

impl<W: Write> Diff<'_, W> {
    /// Adds the entries of directory `dir` (at `rel` in the image), sorted by name.
    fn dir(&mut self, dir: &Path, rel: &Path) -> io::Result<()> {
        let mut names: Vec<_> = std::fs::read_dir(dir)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()?;
        names.sort();
        for name in names {
            let path = dir.join(&name);
            let rel = rel.join(&name);
            let meta = std::fs::symlink_metadata(&path)?;
            let ft = meta.file_type();
            if self.is_stub(&rel, &path, &meta) {
                continue;
            }
            if ft.is_char_device() && meta.rdev() == 0 {
                let mut wh = std::ffi::OsString::from(".wh.");
                wh.push(&name);
                let mut h = header(&meta, tar::EntryType::Regular);
                h.set_mode(0o600);
                self.tar
                    .append_data(&mut h, rel.with_file_name(wh), io::empty())?;
                continue;
            }
            self.xattrs(&path, &rel)?;
            if ft.is_dir() {
                let mut h = header(&meta, tar::EntryType::Directory);
                self.tar.append_data(&mut h, &rel, io::empty())?;
                if getxattr(&path, "trusted.overlay.opaque").as_deref() == Some(b"y") {
                    let mut h = header(&meta, tar::EntryType::Regular);
                    h.set_mode(0o600);
                    self.tar
                        .append_data(&mut h, rel.join(".wh..wh..opq"), io::empty())?;
                }
                self.dir(&path, &rel)?;
            } else if ft.is_symlink() {
                let target = std::fs::read_link(&path)?;
                let mut h = header(&meta, tar::EntryType::Symlink);
                self.tar.append_link(&mut h, &rel, target)?;
            } else if ft.is_file() {
                if meta.nlink() > 1 {
                    let key = (meta.dev(), meta.ino());
                    if let Some(first) = self.links.get(&key) {
                        let mut h = header(&meta, tar::EntryType::Link);
                        let first = first.clone();
                        self.tar.append_link(&mut h, &rel, first)?;
                        continue;
                    }
                    self.links.insert(key, rel.clone());
                }
                let mut h = header(&meta, tar::EntryType::Regular);
                h.set_size(meta.len());
                self.tar.append_data(&mut h, &rel, File::open(&path)?)?;
            } else if ft.is_char_device() || ft.is_block_device() {
                let kind = if ft.is_char_device() {
                    tar::EntryType::Char
                } else {
                    tar::EntryType::Block
                };
                let mut h = header(&meta, kind);
                let rdev = meta.rdev();
                h.set_device_major(libc::major(rdev))?;
                h.set_device_minor(libc::minor(rdev))?;
                self.tar.append_data(&mut h, &rel, io::empty())?;
            } else if ft.is_fifo() {
                let mut h = header(&meta, tar::EntryType::Fifo);
                self.tar.append_data(&mut h, &rel, io::empty())?;
            }
            // Sockets are not part of a layer.
        }
        Ok(())
    }

    /// A mount point made for a `RUN --mount` or a sandbox file and still empty (a
    /// directory: holding nothing but such stubs).
    fn is_stub(&self, rel: &Path, path: &Path, meta: &std::fs::Metadata) -> bool {
        let abs = Path::new("/").join(rel);
        self.stubs.contains(&abs)
            && if meta.is_dir() {
                std::fs::read_dir(path).is_ok_and(|d| {
                    d.flatten().all(|e| {
                        let (path, rel) = (e.path(), rel.join(e.file_name()));
                        std::fs::symlink_metadata(&path)
                            .is_ok_and(|m| self.is_stub(&rel, &path, &m))
                    })
                })
            } else {
                meta.is_file() && meta.len() == 0
            }
    }

    /// A PAX header with the entry's extended attributes (overlayfs's own left out).
    fn xattrs(&mut self, path: &Path, rel: &Path) -> io::Result<()> {
        let mut records = Vec::new();
        for name in listxattr(path) {
            if name.starts_with("trusted.overlay.") {
                continue;
            }
            if let Some(value) = getxattr(path, &name) {
                records.extend(pax_record(&format!("SCHILY.xattr.{name}"), &value));
            }
        }
        if records.is_empty() {
            return Ok(());
        }
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::XHeader);
        h.set_size(records.len() as u64);
        h.set_mode(0o644);
        let name = format!("PaxHeaders/{}", rel.display());
        let short: String = name.chars().take(99).collect();
        h.set_path(short)?;
        h.set_cksum();
        self.tar.append(&h, &records[..])
    }
}

/// A header with `meta`'s mode, owner and mtime.
fn header(meta: &std::fs::Metadata, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(meta.mode() & 0o7777);
    h.set_uid(meta.uid().into());
    h.set_gid(meta.gid().into());
    h.set_mtime(meta.mtime().max(0) as u64);
    h.set_size(0);
    h
}

/// One PAX record: `LEN KEY=VALUE\n`, LEN counting itself.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let body = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    let mut r = format!("{len} {key}=").into_bytes();
    r.extend_from_slice(value);
    r.push(b'\n');
    r
}

fn c_path(path: &Path) -> Option<CString> {
    CString::new(path.as_os_str().as_bytes()).ok()
}

/// The value of extended attribute `name` of `path` (not following symlinks).
fn getxattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let (p, n) = (c_path(path)?, CString::new(name).ok()?);
    let mut buf = vec![0u8; 64 * 1024];
    // SAFETY: both strings are NUL-terminated; the buffer is valid for its length.
    let len =
        unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (len >= 0).then(|| {
        buf.truncate(len as usize);
        buf
    })
}

/// The names of `path`'s extended attributes (not following symlinks).
fn listxattr(path: &Path) -> Vec<String> {
    let Some(p) = c_path(path) else {
        return Vec::new();
    };
    let mut buf = vec![0u8; 64 * 1024];
    // SAFETY: the path is NUL-terminated; the buffer is valid for its length.
    let len = unsafe { libc::llistxattr(p.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if len <= 0 {
        return Vec::new();
    }
    buf[..len as usize]
        .split(|b| *b == 0)
        .filter(|n| !n.is_empty())
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An overlay upper dir as the kernel leaves it (whiteout device, opaque dir,
    /// hard link, symlink, a mount stub) becomes the OCI entries. Needs root (mknod,
    /// trusted.* xattrs); skipped otherwise.
    #[test]
    fn upper_dirs_become_oci_layers() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let dir = tempfile_dir();
        let up = dir.join("upper");
        std::fs::create_dir_all(up.join("etc/opaque")).unwrap();
        std::fs::create_dir_all(up.join("run/secrets")).unwrap();
        std::fs::write(up.join("run/secrets/token"), "").unwrap();
        std::fs::write(up.join("etc/a"), "a").unwrap();
        std::fs::hard_link(up.join("etc/a"), up.join("etc/b")).unwrap();
        std::os::unix::fs::symlink("a", up.join("etc/link")).unwrap();
        nix::sys::stat::mknod(
            &up.join("etc/gone"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o600),
            0,
        )
        .unwrap();
        let (p, n, v) = (
            c_path(&up.join("etc/opaque")).unwrap(),
            CString::new("trusted.overlay.opaque").unwrap(),
            b"y",
        );
        // SAFETY: NUL-terminated strings and a valid buffer.
        let r = unsafe { libc::lsetxattr(p.as_ptr(), n.as_ptr(), v.as_ptr().cast(), 1, 0) };
        assert_eq!(r, 0, "{}", io::Error::last_os_error());
        let stubs = [
            PathBuf::from("/run/secrets"),
            PathBuf::from("/run/secrets/token"),
        ];
        let mut diff = Diff {
            tar: tar::Builder::new(Vec::new()),
            links: std::collections::HashMap::new(),
            stubs: &stubs,
        };
        diff.dir(&up, Path::new("")).unwrap();
        let bytes = diff.tar.into_inner().unwrap();
        let mut names = Vec::new();
        for e in tar::Archive::new(&bytes[..]).entries().unwrap() {
            let e = e.unwrap();
            let kind = e.header().entry_type();
            names.push(format!("{} {:?}", e.path().unwrap().display(), kind));
        }
        assert_eq!(
            names,
            [
                "etc Directory",
                "etc/a Regular",
                "etc/b Link",
                "etc/.wh.gone Regular",
                "etc/link Symlink",
                "etc/opaque Directory",
                "etc/opaque/.wh..wh..opq Regular",
                "run Directory",
            ]
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("cast-init-diff-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn pax_records_count_their_own_length() {
        assert_eq!(pax_record("k", b"v"), b"6 k=v\n");
        let long = vec![b'x'; 95];
        let r = pax_record("SCHILY.xattr.user.a", &long);
        let len: usize = std::str::from_utf8(&r[..r.iter().position(|b| *b == b' ').unwrap()])
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(len, r.len());
    }
}
