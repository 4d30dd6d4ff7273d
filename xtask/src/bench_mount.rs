//! `cargo xtask bench mount`: host mounts against raw QEMU doing the same transfer.
//!
//! Both sides boot the same kernel (the 9p bundle, as the mount tests use), share
//! the same host directory with the same QEMU options (`-fsdev local,
//! security_model=mapped-xattr` + `virtio-9p-device`), mount it with the same 9p
//! options ([`cast_proto::MOUNT_OPTIONS`]) and run the same busybox commands: a
//! 256 MiB file and a tree of 10,000 small files copied from the mount into guest
//! memory and back out. Raw QEMU's guest is a busybox initramfs whose `/init`
//! loads the modules, mounts and copies; cargo-cast's is `cargo cast run -v`. Each
//! phase is timed inside the guest (`time`), so boot cost is left out; runs are
//! interleaved and medians compared.

use crate::bench_boot::median;
use anyhow::{bail, Context, Result};
use cast_kernel::KernelBundle;
use cast_runner::vm::qemu::host_tsc_khz;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Options of the mount benchmark.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Runs per variant.
    #[arg(long, default_value_t = 1)]
    runs: usize,
}

/// The phases, each a busybox command run in the mounted directory.
const PHASES: [(&str, &str); 4] = [
    ("256 MiB in", "dd if=big of=/tmp/big bs=1M 2>/dev/null"),
    ("256 MiB out", "dd if=/tmp/big of=out/big bs=1M 2>/dev/null"),
    ("10,000 files in", "cp -a tree /tmp/tree"),
    ("10,000 files out", "cp -a /tmp/tree out/tree"),
];

/// Runs the benchmark.
pub fn run(args: Args) -> Result<()> {
    let bundle_dir = cast_kernel::generic_bundle_dir().context("no cache directory")?;
    let kernel = KernelBundle::locate(Some(&bundle_dir))
        .context("run `cargo xtask setup` first (it prepares the 9p kernel bundle)")?;
    let work = tempfile::tempdir()?;
    let share = work.path().join("share");
    write_data(&share)?;
    let rootfs = crate::bench_boot::busybox_rootfs(work.path())?;
    let initrd = raw_initrd(work.path(), &kernel)?;
    // The phases are timed inside the guest: the runner's build profile is moot.
    let runner = crate::bench_boot::build_runner(false)?;
    let script = transfer_script();
    let mut times = vec![vec![Vec::new(); PHASES.len()]; 2];
    eprintln!(
        "mount benchmark: {} interleaved run(s) per variant, TCG, 1 vCPU, 1 GiB",
        args.runs
    );
    for _ in 0..args.runs {
        let raw = raw_qemu(&kernel, &initrd, &share)?;
        let mut cast = Command::new(&runner);
        cast.args(["cast", "run", "--rootfs"])
            .arg(&rootfs)
            .arg("--kernel")
            .arg(&kernel.dir)
            .arg("-v")
            .arg(format!("{}:/work", share.display()))
            .args(["-w", "/work", "--", "/bin/sh", "-c", &script])
            .env("CAST_ACCEL", "tcg")
            .env("CAST_CPUS", "1")
            .env("CAST_MEMORY", "1G");
        let cast = phase_times(cast)?;
        for (i, t) in [raw, cast].into_iter().enumerate() {
            for (p, secs) in t.into_iter().enumerate() {
                times[i][p].push(secs);
            }
        }
    }
    println!(
        "{:<18} {:>12} {:>14} {:>7}",
        "phase", "raw QEMU", "cargo cast", "ratio"
    );
    for (p, (name, _)) in PHASES.iter().enumerate() {
        let raw = median(&mut times[0][p]);
        let cast = median(&mut times[1][p]);
        println!("{name:<18} {raw:>11.2}s {cast:>13.2}s {:>7.2}", cast / raw);
    }
    Ok(())
}

/// The shared directory: `big` (256 MiB) and `tree` (10,000 files, 0–3 KiB).
fn write_data(share: &Path) -> Result<()> {
    std::fs::create_dir_all(share)?;
    let big: Vec<u8> = (0..256u32 << 20).map(|i| (i ^ (i >> 13)) as u8).collect();
    std::fs::write(share.join("big"), big)?;
    for i in 0..10_000usize {
        let dir = share.join(format!("tree/d{:02}", i % 100));
        std::fs::create_dir_all(&dir)?;
        let body: Vec<u8> = (0..(i * 37) % 3072)
            .map(|j| (i * 131 + j * 7) as u8)
            .collect();
        std::fs::write(dir.join(format!("f{i}")), body)?;
    }
    Ok(())
}

/// Every phase under `time`, after clearing what the last run left.
fn transfer_script() -> String {
    let mut s = String::from("rm -rf out /tmp/big /tmp/tree && mkdir out");
    for (name, cmd) in PHASES {
        s.push_str(&format!(" && echo 'phase {name}' >&2 && time {cmd}"));
    }
    s.push_str(" && rm -rf out && sync");
    s
}

/// Runs `cmd` and reads the `time` of each phase from its output.
fn phase_times(mut cmd: Command) -> Result<Vec<f64>> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let times: Vec<f64> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("real"))
        .filter_map(parse_busybox_time)
        .collect();
    if !out.status.success() || times.len() != PHASES.len() {
        bail!("{cmd:?} failed ({}):\n{text}", out.status);
    }
    Ok(times)
}

/// busybox's `real\t0m 5.25s` → 5.25.
fn parse_busybox_time(t: &str) -> Option<f64> {
    let (m, s) = t.trim().split_once('m')?;
    Some(
        m.trim().parse::<f64>().ok()? * 60.0
            + s.trim().trim_end_matches('s').parse::<f64>().ok()?,
    )
}

/// A busybox initramfs whose /init loads the bundle's modules, mounts the share the
/// way cast-init does, runs the transfer script, and reboots.
fn raw_initrd(dir: &Path, kernel: &KernelBundle) -> Result<PathBuf> {
    let root = dir.join("raw");
    std::fs::create_dir_all(root.join("bin"))?;
    std::fs::create_dir_all(root.join("mod"))?;
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).context("needs busybox-static")?;
    let mut insmod = String::new();
    for m in kernel.module_paths() {
        let name = m
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        std::fs::copy(&m, root.join("mod").join(&name))?;
        insmod.push_str(&format!("insmod /mod/{name}\n"));
    }
    let init = format!(
        "#!/bin/busybox sh\n/bin/busybox --install -s /bin\n\
         mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev\n\
         {insmod}mkdir -p /work /tmp && mount -t 9p -o {} cast0 /work && cd /work\n\
         sh /script\nreboot -f\n",
        cast_proto::MOUNT_OPTIONS
    );
    std::fs::write(root.join("init"), init)?;
    for d in ["proc", "sys", "dev"] {
        std::fs::create_dir_all(root.join(d))?;
    }
    std::fs::write(root.join("script"), transfer_script())?;
    let status = Command::new("sh")
        .arg("-c")
        .arg("chmod +x init && find . | cpio --quiet -o -H newc > ../raw.cpio")
        .current_dir(&root)
        .status()?;
    if !status.success() {
        bail!("making the raw initramfs failed (needs cpio)");
    }
    Ok(dir.join("raw.cpio"))
}

/// Raw QEMU with the runner's machine and the same 9p share.
fn raw_qemu(kernel: &KernelBundle, initrd: &Path, share: &Path) -> Result<Vec<f64>> {
    let khz = host_tsc_khz().context("no `cpu MHz` in /proc/cpuinfo")?;
    let mut cmd = crate::bench_boot::raw_qemu(kernel, initrd, khz, 1024, 1);
    cmd.arg("-fsdev")
        .arg(format!(
            "local,id=share0,path={},security_model=mapped-xattr",
            share.display()
        ))
        .args(["-device", "virtio-9p-device,fsdev=share0,mount_tag=cast0"]);
    phase_times(cmd)
}
