//! `cargo xtask bench image`: how fast cast-rootfs writes an EROFS root image, how
//! big it is, and how much memory the writer needs, side by side with `mkfs.erofs`
//! on the same directory.
//!
//! The source directory is `CAST_BENCH_DIR` (default `/usr/lib/x86_64-linux-gnu`,
//! about 1 GB on the project's machines); scratch files go to `CAST_BENCH_TMP` (default
//! the system temp dir). The directory is imported into an image tree (contents go
//! to the tree's spill file), written as EROFS, checked with `fsck.erofs`, then built
//! again by `mkfs.erofs`. Peak RSS of the write phase comes from `VmHWM` after
//! resetting it through `/proc/self/clear_refs`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use cast_rootfs::erofs::{self, Options};
use cast_rootfs::tree::ImportOptions;
use cast_rootfs::ImageTree;

const MIB: f64 = 1024.0 * 1024.0;

/// Runs the image benchmark and prints a small report.
pub fn run() -> Result<()> {
    let src = std::env::var_os("CAST_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/x86_64-linux-gnu"));
    let scratch = match std::env::var_os("CAST_BENCH_TMP") {
        Some(dir) => tempfile::tempdir_in(dir),
        None => tempfile::tempdir(),
    }
    .context("cannot create a scratch directory")?;
    let mkfs = tool("mkfs.erofs")?;
    let fsck = tool("fsck.erofs")?;

    let started = Instant::now();
    let mut tree = ImageTree::new().context("cannot create the image tree")?;
    let options = ImportOptions {
        xattrs: true,
        owner: None,
    };
    let imported = tree
        .import_dir(&src, "/", &options)
        .with_context(|| format!("cannot import {}", src.display()))?;
    let import_time = started.elapsed();
    let import_hwm = vm_kib("VmHWM")?;
    let data = tree.total_size();
    println!(
        "bench image: {} — {} entries, {} inodes, {:.1} MiB of file data",
        src.display(),
        imported.entries,
        tree.inode_count(),
        data as f64 / MIB
    );

    reset_peak_rss();
    let rss_before = vm_kib("VmRSS")?;
    let ours = scratch.path().join("cast.erofs");
    let started = Instant::now();
    let stats = erofs::write_image_to_path(&tree, &Options::from_env(), &ours)
        .context("cast-rootfs could not write the image")?;
    let write_time = started.elapsed();
    let write_hwm = vm_kib("VmHWM")?;

    let started = Instant::now();
    let out = Command::new(&fsck).arg(&ours).output()?;
    let fsck_time = started.elapsed();
    if !out.status.success() {
        bail!(
            "fsck.erofs rejected our image: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let theirs = scratch.path().join("mkfs.erofs");
    let started = Instant::now();
    let out = Command::new(&mkfs).arg(&theirs).arg(&src).output()?;
    let mkfs_time = started.elapsed();
    if !out.status.success() {
        bail!(
            "mkfs.erofs failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mkfs_size = std::fs::metadata(&theirs)?.len();

    let rate = |d: Duration| data as f64 / MIB / d.as_secs_f64().max(1e-9);
    println!(
        "{:<28} {:>9} {:>10} {:>12}",
        "", "seconds", "MiB/s", "image MiB"
    );
    let row = |name: &str, d: Duration, size: u64| {
        println!(
            "{name:<28} {:>9.2} {:>10.1} {:>12.1}",
            d.as_secs_f64(),
            rate(d),
            size as f64 / MIB
        );
    };
    row("cast-rootfs write", write_time, stats.bytes);
    row(
        "cast-rootfs import + write",
        import_time + write_time,
        stats.bytes,
    );
    row("mkfs.erofs (from the dir)", mkfs_time, mkfs_size);
    println!(
        "ratio cast/mkfs: time {:.2} (write only) / {:.2} (import + write), size {:.4}",
        write_time.as_secs_f64() / mkfs_time.as_secs_f64(),
        (import_time + write_time).as_secs_f64() / mkfs_time.as_secs_f64(),
        stats.bytes as f64 / mkfs_size as f64
    );
    println!(
        "peak RSS: write phase {:.1} MiB (RSS before it {:.1} MiB); import phase {:.1} MiB",
        write_hwm as f64 / 1024.0,
        rss_before as f64 / 1024.0,
        import_hwm as f64 / 1024.0
    );
    println!(
        "metadata {:.1} MiB, {} inodes; fsck.erofs of our image: ok in {:.2} s",
        stats.metadata_bytes as f64 / MIB,
        stats.inodes,
        fsck_time.as_secs_f64()
    );
    if std::env::var_os("CAST_BENCH_KEEP").is_some() {
        println!("images kept in {}", scratch.keep().display());
    }
    Ok(())
}

/// Finds a tool on PATH or says which package provides it.
fn tool(name: &str) -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .with_context(|| format!("{name} not found: apt-get install -y erofs-utils"))
}

/// A `Vm*` field of `/proc/self/status`, in KiB.
fn vm_kib(field: &str) -> Result<u64> {
    let status = std::fs::read_to_string(Path::new("/proc/self/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no {field} in /proc/self/status"))
}

/// Resets the peak-RSS counter (Linux: writing 5 to `clear_refs`); best effort.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}
