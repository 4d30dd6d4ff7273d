//! `cargo xtask bench boot`: how much slower is a full `cargo cast run -- true` than
//! raw QEMU booting a kernel with a minimal static init that prints and reboots (the
//! baseline in the environment notes)? Each kernel gets three rows — raw QEMU, and
//! `cargo cast run -- true` with 1 and 2 vCPUs — Debian's cloud kernel first (its raw
//! row is the baseline), then the built kernel (`kernel/built`) when there is one,
//! then `--kernel` bundles. Runs are interleaved so drift hits all rows alike; medians
//! are compared, against the baseline and against raw QEMU with the same kernel.
//! Also reports the runner's own peak RSS (QEMU excluded), sampled from /proc.

use anyhow::{bail, Context, Result};
use cast_kernel::KernelBundle;
use cast_runner::vm::qemu::host_tsc_khz;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Options of the boot benchmark.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Runs per variant.
    #[arg(long, default_value_t = 10)]
    runs: usize,
    /// Another kernel bundle to compare: adds a raw QEMU row and `cargo cast run`
    /// rows. Debian's kernel (the baseline) and the built one (`kernel/built`, from
    /// `cargo cast kernel build`) are always measured when present.
    #[arg(long, value_name = "DIR")]
    kernel: Vec<PathBuf>,
}

const BASELINE_INIT: &str = r#"
#include <stdio.h>
#include <unistd.h>
#include <sys/reboot.h>
int main(void) { puts("baseline init"); fflush(stdout); reboot(RB_AUTOBOOT); return 0; }
"#;

/// Runs the benchmark.
pub fn run(args: Args) -> Result<()> {
    let debian = cast_kernel::debian_bundle_dir().context("no cache directory (HOME unset?)")?;
    let debian = KernelBundle::open(&debian).context("run `cargo xtask kernel` first")?;
    let work = tempfile::tempdir()?;
    let initrd = baseline_initrd(work.path())?;
    let rootfs = busybox_rootfs(work.path())?;
    let runner = build_runner(true)?;
    let khz = host_tsc_khz().context("no `cpu MHz` in /proc/cpuinfo")?;

    // Debian's kernel first (the baseline), then the built one, then any others.
    let mut kernels = vec![debian];
    let built = cast_core::CacheRoot::from_env().map(|c| c.built_kernel());
    for dir in built
        .iter()
        .filter(|d| d.join("bundle.json").is_file())
        .chain(&args.kernel)
    {
        let bundle =
            KernelBundle::open(dir).with_context(|| format!("kernel bundle {}", dir.display()))?;
        if !kernels.iter().any(|k| k.dir == bundle.dir) {
            kernels.push(bundle);
        }
    }
    let initrd = initrd.as_path();
    let raw = |bundle: &KernelBundle| {
        let bundle = bundle.clone();
        move |_: &mut Option<u64>| -> Result<Duration> {
            let cmd = raw_qemu(&bundle, initrd, khz, 512, 1);
            timed(cmd, None)
        }
    };
    let cast = |cpus: &'static str, bundle: PathBuf| {
        let runner = runner.clone();
        let rootfs = rootfs.clone();
        move |rss: &mut Option<u64>| -> Result<Duration> {
            let mut cmd = Command::new(&runner);
            cmd.args(["cast", "run", "--rootfs"])
                .arg(&rootfs)
                .arg("--kernel")
                .arg(&bundle)
                .args(["--", "true"])
                .env("CAST_ACCEL", "tcg")
                .env("CAST_CPUS", cpus);
            timed(cmd, Some(rss))
        }
    };
    type Variant<'a> = (
        String,
        Box<dyn Fn(&mut Option<u64>) -> Result<Duration> + 'a>,
    );
    // Each variant with the index of the raw QEMU row of its kernel.
    let mut variants: Vec<(Variant, usize)> = Vec::new();
    for (i, bundle) in kernels.iter().enumerate() {
        let name = match i {
            0 => "Debian".to_owned(),
            _ => bundle
                .dir
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned(),
        };
        let raw_row = variants.len();
        let label = if i == 0 { " (baseline)" } else { "" };
        variants.push((
            (
                format!("raw QEMU + static C init, {name}{label}"),
                Box::new(raw(bundle)),
            ),
            raw_row,
        ));
        variants.push((
            (
                format!("cargo cast run -- true, {name}, 1 vCPU"),
                Box::new(cast("1", bundle.dir.clone())),
            ),
            raw_row,
        ));
        variants.push((
            (
                format!("cargo cast run -- true, {name}, 2 vCPUs (default)"),
                Box::new(cast("2", bundle.dir.clone())),
            ),
            raw_row,
        ));
    }
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    let mut peak_rss = 0u64;
    eprintln!(
        "boot benchmark: {} interleaved runs per variant, TCG; kernels: {}",
        args.runs,
        kernels
            .iter()
            .map(|k| k.dir.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    for _ in 0..args.runs {
        for (i, ((_, run), _)) in variants.iter().enumerate() {
            let mut rss = None;
            times[i].push(run(&mut rss)?.as_secs_f64());
            peak_rss = peak_rss.max(rss.unwrap_or(0));
        }
    }
    let medians: Vec<f64> = times.iter().map(|t| median(&mut t.clone())).collect();
    println!(
        "{:<52} {:>8} {:>8} {:>8} {:>7} {:>9}",
        "variant", "median", "min", "max", "ratio", "vs raw"
    );
    for (i, ((name, _), raw_row)) in variants.iter().enumerate() {
        let t = &mut times[i];
        t.sort_by(|a, b| a.total_cmp(b));
        let m = medians[i];
        let (min, max) = (t[0], t[t.len() - 1]);
        println!(
            "{name:<52} {m:>7.3}s {min:>7.3}s {max:>7.3}s {:>7.3} {:>9.3}",
            m / medians[0],
            m / medians[*raw_row]
        );
    }
    println!("ratio: against the baseline; vs raw: against raw QEMU with the same kernel");
    println!(
        "runner peak RSS (QEMU excluded): {:.1} MB",
        peak_rss as f64 / 1024.0
    );
    Ok(())
}

/// Sorts and returns the median.
pub(crate) fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Runs `cmd` to completion, timing it; with `rss`, samples the child's VmHWM (kB).
pub(crate) fn timed(mut cmd: Command, rss: Option<&mut Option<u64>>) -> Result<Duration> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd.spawn().with_context(|| format!("starting {cmd:?}"))?;
    let status_path = format!("/proc/{}/status", child.id());
    let mut hwm = 0u64;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if rss.is_some() {
            if let Some(kb) = std::fs::read_to_string(&status_path).ok().and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmHWM:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            }) {
                hwm = hwm.max(kb);
            }
        }
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{cmd:?} took over 120 s");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let elapsed = start.elapsed();
    if !status.success() {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            std::io::Read::read_to_string(&mut e, &mut err)?;
        }
        bail!("{cmd:?} failed ({status}): {err}");
    }
    if let Some(rss) = rss {
        *rss = Some(hwm);
    }
    Ok(elapsed)
}

/// The commands the baseline's fixtures need (all in `setup::TOOLS`).
pub(crate) const BASELINE_TOOLS: [&str; 4] = ["gcc", "cpio", "busybox", "mkfs.erofs"];

fn sh(cmd: &str, dir: &Path) -> Result<()> {
    let status = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .current_dir(dir)
        .status()?;
    if !status.success() {
        bail!(
            "`{cmd}` failed (needs {}; `cargo xtask setup` installs them)",
            BASELINE_TOOLS.join(", ")
        );
    }
    Ok(())
}

/// A cpio initrd whose /init is a static C program that prints and reboots.
fn baseline_initrd(dir: &Path) -> Result<PathBuf> {
    std::fs::write(dir.join("init.c"), BASELINE_INIT)?;
    sh(
        "mkdir -p initrd && gcc -static -O2 -o initrd/init init.c",
        dir,
    )?;
    sh(
        "cd initrd && echo init | cpio --quiet -o -H newc > ../init.cpio",
        dir,
    )?;
    Ok(dir.join("init.cpio"))
}

/// A root image with static busybox and every applet (`true`, `wget`, `httpd`, …).
pub(crate) fn busybox_rootfs(dir: &Path) -> Result<PathBuf> {
    sh(
        "mkdir -p tree/bin && cp /bin/busybox tree/bin/ \
         && for a in $(/bin/busybox --list | grep -vx busybox); do ln -s busybox tree/bin/$a; done \
         && mkfs.erofs --quiet rootfs.erofs tree",
        dir,
    )?;
    Ok(dir.join("rootfs.erofs"))
}

/// Builds `cargo-cast` (`release` or the dev profile) and returns its path.
pub(crate) fn build_runner(release: bool) -> Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let status = Command::new(cargo)
        .current_dir(workspace)
        .args(["build", "--quiet", "--package", "cargo-cast"])
        .args(release.then_some("--release"))
        .status()?;
    if !status.success() {
        bail!("building cargo-cast failed");
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"));
    Ok(target
        .join(if release { "release" } else { "debug" })
        .join("cargo-cast"))
}

/// The baseline every benchmark compares with: raw QEMU with the runner's machine
/// (microvm, TCG, no defaults), `kernel` and `initrd`, the kernel command line the
/// environment notes found best (TSC fixed, no i8042 probe, quiet). Callers add
/// devices.
pub(crate) fn raw_qemu(
    kernel: &KernelBundle,
    initrd: &Path,
    khz: u64,
    memory_mib: u32,
    cpus: u32,
) -> Command {
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args(["-nodefaults", "-no-user-config", "-display", "none"])
        .args(["-no-reboot", "-serial", "stdio"])
        .args(["-m", &memory_mib.to_string(), "-smp", &cpus.to_string()])
        .args(["-accel", "tcg", "-cpu", "max"])
        .args(["-M", "microvm,x-option-roms=off"])
        .arg("-kernel")
        .arg(kernel.kernel_path())
        .arg("-initrd")
        .arg(initrd)
        .arg("-append")
        .arg(format!(
            "console=ttyS0 quiet panic=-1 tsc_early_khz={khz} tsc=reliable no_timer_check \
             i8042.noaux i8042.nokbd i8042.nopnp cryptomgr.notests random.trust_cpu=on \
             mitigations=off nokaslr audit=0 8250.nr_uarts=1 reboot=t rdinit=/init"
        ));
    cmd
}
