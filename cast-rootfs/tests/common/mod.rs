//! Shared test helpers: run the real erofs-utils tools and the kernel's erofs driver
//! (loop mount) on written images, and compare what they show with the tree.
#![allow(dead_code)]

pub mod tarball;

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cast_rootfs::erofs::{self, Options};
use cast_rootfs::{ImageTree, InodeId, Metadata, Node};

/// Runs a tool under `timeout 120`; panics with an install hint when it is missing.
pub fn run(tool: &str, args: &[&str], package: &str) -> Output {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "{tool} is missing: install it with `apt-get install -y {package}`"
    );
    Command::new("timeout")
        .arg("120")
        .arg(tool)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {tool}: {e}"))
}

/// Metadata with a mode, owner and mtime.
pub fn meta(mode: u32, uid: u32, gid: u32, mtime: i64) -> Metadata {
    Metadata {
        uid,
        gid,
        mtime: cast_rootfs::Timestamp::from_secs(mtime),
        ..Metadata::with_mode(mode)
    }
}

/// Writes `tree` to a temp file and checks it with `fsck.erofs`.
pub fn write_and_fsck(tree: &ImageTree, options: &Options) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("root.erofs");
    let stats = erofs::write_image_to_path(tree, options, &img).unwrap();
    assert_eq!(stats.bytes % 512, 0, "image size must be a multiple of 512");
    assert_eq!(fs::metadata(&img).unwrap().len(), stats.bytes);
    fsck(&img);
    (dir, img)
}

/// `fsck.erofs IMAGE` must succeed.
pub fn fsck(img: &Path) {
    let out = run("fsck.erofs", &[img.to_str().unwrap()], "erofs-utils");
    assert!(
        out.status.success(),
        "fsck.erofs failed: {}{}",
        stderr(&out),
        stdout(&out)
    );
}

/// Extracts with `fsck.erofs --extract` (checks every file's data on the way).
pub fn extract(img: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("x");
    let arg = format!("--extract={}", out_dir.display());
    let out = run(
        "fsck.erofs",
        &["--preserve", &arg, img.to_str().unwrap()],
        "erofs-utils",
    );
    assert!(
        out.status.success(),
        "fsck.erofs --extract failed: {}",
        stderr(&out)
    );
    dir
}

/// A read-only loop mount of an image through the host kernel's erofs driver.
pub struct Mounted {
    pub dir: tempfile::TempDir,
}

impl Mounted {
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// Mounts `img` read-only; fails with a hint when the host cannot (needs root,
/// loop devices and the erofs module, as on the project's machines and CI).
pub fn mount(img: &Path) -> Mounted {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        "mount",
        &[
            "-t",
            "erofs",
            "-o",
            "loop,ro",
            img.to_str().unwrap(),
            dir.path().to_str().unwrap(),
        ],
        "mount",
    );
    assert!(
        out.status.success(),
        "mounting the image failed (needs root, loop devices and the erofs module): {}",
        stderr(&out)
    );
    Mounted { dir }
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// What to compare besides names, types, modes, owners, sizes, contents and links.
#[derive(Debug, Clone, Copy)]
pub struct Checks {
    /// Compare mtimes (seconds and nanoseconds).
    pub mtime: bool,
    /// Compare xattrs.
    pub xattrs: bool,
    /// Compare hardlink identity (inode numbers) and link counts.
    pub inodes: bool,
    /// Clamp expected mtimes to this epoch.
    pub epoch: Option<i64>,
    /// Compare setuid/setgid bits (an extractor's chown after chmod drops them).
    pub suid: bool,
}

impl Checks {
    /// Everything, with mtimes as written.
    pub const ALL: Checks = Checks {
        mtime: true,
        xattrs: true,
        inodes: true,
        epoch: None,
        suid: true,
    };
}

/// Checks that `root` on the host shows exactly the tree.
pub fn compare(tree: &ImageTree, root: &Path, checks: Checks) {
    let mut seen_ino: HashMap<InodeId, u64> = HashMap::new();
    let mut count = 0usize;
    for entry in tree.iter() {
        count += 1;
        let host = root.join(entry.path.strip_prefix("/").unwrap());
        let md =
            fs::symlink_metadata(&host).unwrap_or_else(|e| panic!("{}: {e}", entry.path.display()));
        let inode = entry.inode;
        let what = entry.path.display();
        let mask = if checks.suid { !0 } else { !0o6000 };
        assert_eq!(md.mode() & mask, inode.mode() & mask, "{what}: mode");
        assert_eq!(
            (md.uid(), md.gid()),
            (inode.meta.uid, inode.meta.gid),
            "{what}: owner"
        );
        match &inode.node {
            Node::File(content) => {
                assert_eq!(md.len(), content.len(), "{what}: size");
                same_bytes(&mut tree.open_content(entry.id), &host, &what.to_string());
            }
            Node::Symlink(target) => {
                use std::os::unix::ffi::OsStrExt;
                let got = fs::read_link(&host).unwrap();
                assert_eq!(
                    got.as_os_str().as_bytes(),
                    &target[..],
                    "{what}: link target"
                );
            }
            Node::Device { major, minor, .. } => {
                assert!(md.file_type().is_char_device() || md.file_type().is_block_device());
                let rdev = md.rdev();
                let ma = ((rdev & 0xfff00) >> 8) | ((rdev & 0xffff_f000_0000_0000) >> 32);
                let mi = (rdev & 0xff) | ((rdev & 0x0000_0fff_fff0_0000) >> 12);
                assert_eq!(
                    (ma as u32, mi as u32),
                    (*major, *minor),
                    "{what}: device number"
                );
            }
            Node::Dir(_) | Node::Fifo | Node::Socket => {}
        }
        if checks.mtime {
            let mut want = inode.meta.mtime;
            if let Some(e) = checks.epoch {
                want = want.min(cast_rootfs::Timestamp::from_secs(e));
            }
            assert_eq!(
                (md.mtime(), md.mtime_nsec() as u32),
                (want.sec, want.nsec),
                "{what}: mtime"
            );
        }
        if checks.xattrs && !matches!(inode.node, Node::Symlink(_)) {
            let mut got: Vec<(Vec<u8>, Vec<u8>)> = xattr::list(&host)
                .unwrap()
                .map(|n| {
                    use std::os::unix::ffi::OsStrExt;
                    let v = xattr::get(&host, &n).unwrap().unwrap_or_default();
                    (n.as_bytes().to_vec(), v)
                })
                .collect();
            got.sort();
            let want: Vec<_> = inode.meta.xattrs.clone().into_iter().collect();
            assert_eq!(got, want, "{what}: xattrs");
        }
        if checks.inodes {
            assert_eq!(md.nlink(), u64::from(inode.nlink(tree)), "{what}: nlink");
            let ino = *seen_ino.entry(entry.id).or_insert(md.ino());
            assert_eq!(ino, md.ino(), "{what}: hardlinks must share one inode");
        }
    }
    let on_disk = walk_count(root);
    assert_eq!(on_disk, count, "entry count on disk vs tree");
    if checks.inodes {
        let distinct: std::collections::HashSet<_> = seen_ino.values().collect();
        assert_eq!(
            distinct.len(),
            seen_ino.len(),
            "distinct inodes must stay distinct"
        );
    }
}

fn same_bytes(tree_reader: &mut dyn Read, host: &Path, what: &str) {
    let mut f = fs::File::open(host).unwrap();
    let (mut a, mut b) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    loop {
        let n = read_full(tree_reader, &mut a);
        let m = read_full(&mut f, &mut b);
        assert_eq!(n, m, "{what}: length differs");
        assert!(a[..n] == b[..m], "{what}: contents differ");
        if n == 0 {
            break;
        }
    }
}

fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]).unwrap() {
            0 => break,
            k => n += k,
        }
    }
    n
}

fn walk_count(root: &Path) -> usize {
    let mut n = 1;
    for e in fs::read_dir(root).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            n += walk_count(&e.path());
        } else {
            n += 1;
        }
    }
    n
}
