//! `cargo xtask bench image`: how fast cast-rootfs writes an EROFS root image, how
//! big it is, and how much memory the writer needs, side by side with `mkfs.erofs`
//! on the same directory, uncompressed and LZ4.
//!
//! The source directory is `CAST_BENCH_DIR` (default `/usr/lib/x86_64-linux-gnu`,
//! about 1 GB on the project's machines); scratch files go to `CAST_BENCH_TMP`
//! (default the system temp dir; set `CAST_BENCH_KEEP` to keep the images). The
//! directory is imported into an image tree (contents go to the tree's spill file),
//! written as EROFS (plain, then LZ4), each image checked with `fsck.erofs`, then
//! built again by `mkfs.erofs` (plain, `-zlz4`, `-zlz4hc`). Peak RSS of each write
//! comes from `VmHWM` after resetting it through `/proc/self/clear_refs`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use cast_rootfs::erofs::{self, Options};
use cast_rootfs::tree::ImportOptions;
use cast_rootfs::ImageTree;

const MIB: f64 = 1024.0 * 1024.0;

/// One measured way of building the image.
struct Row {
    name: String,
    time: Duration,
    size: u64,
    peak_rss_kib: Option<u64>,
}

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
        "bench image: {} — {} entries, {} inodes, {:.1} MiB of file data; import {:.2} s, \
         peak RSS {:.1} MiB",
        src.display(),
        imported.entries,
        tree.inode_count(),
        data as f64 / MIB,
        import_time.as_secs_f64(),
        import_hwm as f64 / 1024.0
    );

    let mut rows = Vec::new();
    for lz4 in [false, true] {
        let options = Options {
            lz4,
            ..Options::from_env()
        };
        let name = if lz4 {
            "cast-rootfs lz4"
        } else {
            "cast-rootfs"
        };
        let path = scratch
            .path()
            .join(format!("{name}.erofs").replace(' ', "-"));
        reset_peak_rss();
        let started = Instant::now();
        let stats = erofs::write_image_to_path(&tree, &options, &path)
            .with_context(|| format!("{name} could not write the image"))?;
        let time = started.elapsed();
        rows.push(Row {
            name: name.into(),
            time,
            size: stats.bytes,
            peak_rss_kib: Some(vm_kib("VmHWM")?),
        });
        let out = Command::new(&fsck).arg(&path).output()?;
        if !out.status.success() {
            bail!(
                "fsck.erofs rejected {name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    for args in [&[][..], &["-zlz4"][..], &["-zlz4hc"][..]] {
        let name = format!("mkfs.erofs {}", args.join(" "));
        let path = scratch.path().join(format!("mkfs{}.erofs", args.join("")));
        let started = Instant::now();
        let out = Command::new(&mkfs)
            .args(args)
            .arg(&path)
            .arg(&src)
            .output()?;
        let time = started.elapsed();
        if !out.status.success() {
            bail!("{name} failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let size = std::fs::metadata(&path)?.len();
        rows.push(Row {
            name,
            time,
            size,
            peak_rss_kib: None,
        });
    }
    report(&rows, data);
    if std::env::var_os("CAST_BENCH_KEEP").is_some() {
        println!("images kept in {}", scratch.keep().display());
    }
    Ok(())
}

/// Prints the table; ratios are against the matching `mkfs.erofs` row.
fn report(rows: &[Row], data: u64) {
    println!(
        "{:<22} {:>8} {:>9} {:>10} {:>10} {:>9}",
        "", "seconds", "MiB/s", "image MiB", "peak RSS", "vs mkfs"
    );
    for row in rows {
        let rate = data as f64 / MIB / row.time.as_secs_f64().max(1e-9);
        let rss = row
            .peak_rss_kib
            .map_or("-".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0));
        let peer = if row.name.contains("lz4") {
            "mkfs.erofs -zlz4"
        } else {
            "mkfs.erofs "
        };
        let ratio = rows
            .iter()
            .find(|r| r.name == peer && !row.name.starts_with("mkfs"))
            .map_or(String::new(), |m| {
                format!(
                    "size {:.4}, time {:.2}",
                    row.size as f64 / m.size as f64,
                    row.time.as_secs_f64() / m.time.as_secs_f64()
                )
            });
        println!(
            "{:<22} {:>8.2} {:>9.1} {:>10.1} {:>10} {}",
            row.name,
            row.time.as_secs_f64(),
            rate,
            row.size as f64 / MIB,
            rss,
            ratio
        );
    }
    println!("(cast-rootfs times exclude the import; mkfs.erofs reads the directory itself)");
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
