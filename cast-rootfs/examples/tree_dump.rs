//! Prints every entry under a directory with all the metadata an image carries (mode,
//! owner, link count, mtime with nanoseconds, device number, size, symlink target,
//! xattrs, a content hash, the inode number of regular files), one line per path in
//! sorted order. Run on a mounted image in two kernels, the outputs must be equal;
//! `scripts/check-linux61.sh` does that for Linux 6.1 against the host kernel.

use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

fn hash(path: &Path) -> std::io::Result<u64> {
    let mut f = std::fs::File::open(path)?;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(h);
        }
        for b in &buf[..n] {
            h = (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
    }
}

fn line(root: &Path, path: &Path) -> std::io::Result<String> {
    let md = std::fs::symlink_metadata(path)?;
    let rel = path.strip_prefix(root).unwrap_or(path).display();
    let mut out = format!(
        "/{rel} mode={:o} uid={} gid={} nlink={} mtime={}.{:09} rdev={:x}",
        md.mode(),
        md.uid(),
        md.gid(),
        md.nlink(),
        md.mtime(),
        md.mtime_nsec(),
        md.rdev()
    );
    if !md.is_dir() {
        out += &format!(" size={}", md.len());
    }
    if md.file_type().is_symlink() {
        out += &format!(" -> {}", std::fs::read_link(path)?.display());
    } else {
        let mut names: Vec<_> = xattr::list(path)?.collect();
        names.sort();
        for name in names {
            let value = xattr::get(path, &name)?.unwrap_or_default();
            let hex: String = value.iter().map(|b| format!("{b:02x}")).collect();
            out += &format!(" x:{}={hex}", name.to_string_lossy());
        }
    }
    if md.is_file() {
        out += &format!(" fnv={:016x} ino={}", hash(path)?, md.ino());
    }
    Ok(out)
}

fn walk(root: &Path, path: &Path) -> std::io::Result<()> {
    println!("{}", line(root, path)?);
    if std::fs::symlink_metadata(path)?.is_dir() {
        let mut names: Vec<_> = std::fs::read_dir(path)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()?;
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for name in names {
            walk(root, &path.join(name))?;
        }
    }
    Ok(())
}

fn main() -> std::io::Result<()> {
    let root = std::env::args_os().nth(1).expect("usage: tree_dump DIR");
    walk(Path::new(&root), Path::new(&root))
}
