//! `cargo xtask bench casted`: what does running a casted executable cost next to
//! `cargo cast run --rootfs` on the same root image, and how big is it?
//!
//! Builds (release) `cargo-cast` and the casted fixture (`tests/fixtures/casted`,
//! bare: `CMD ["true"]`, no baked VM defaults, zstd level 19) from one busybox EROFS
//! root, then runs, interleaved so drift hits all alike:
//! - the casted executable with an empty cache (cold: kernel extraction and root
//!   image hashing included),
//! - the casted executable with a warm cache,
//! - `cargo cast run --rootfs ROOT -- true`.
//!
//! Reports medians side by side, and the executable's size next to root image +
//! zstd kernel (+ initrd). Then rebuilds the fixture with a 256 MiB root image and
//! reports how long writing the payload object and linking take, and the build's
//! peak RSS (with GNU time, when installed). `CAST_BENCH_RUNS` sets the runs per
//! variant (default 7).

use crate::bench_boot::{busybox_rootfs, median, timed};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One way of running `true`, timed.
type Variant<'a> = Box<dyn FnMut() -> Result<Duration> + 'a>;

/// Runs the benchmark.
pub fn run() -> Result<()> {
    let runs: usize = match std::env::var("CAST_BENCH_RUNS") {
        Ok(v) => v.parse().context("CAST_BENCH_RUNS: a number of runs")?,
        Err(_) => 7,
    };
    let work = tempfile::tempdir()?;
    let rootfs = busybox_rootfs(work.path())?;
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"));
    eprintln!(
        "building release cargo-cast and the casted fixture (zstd -19: slow once, then cached)…"
    );
    let mut cmd = cargo(workspace);
    cmd.args(["build", "--release", "--quiet", "--package", "cargo-cast"]);
    run_ok(cmd)?;
    let bench_target = target.join("bench-casted");
    let fixture = copy_fixture(workspace, &bench_target.join("fixture-casted"))?;
    let mut cmd = cargo(&fixture);
    cmd.args(["build", "--release", "--quiet", "--offline", "--target-dir"])
        .arg(&bench_target)
        .env("CAST_FIXTURE_ROOTFS", &rootfs)
        .env("CAST_FIXTURE_BARE", "1")
        .env("CAST_FIXTURE_ZSTD_LEVEL", "19");
    run_ok(cmd)?;
    let exe = bench_target.join("release/hello-tool");
    let runner = target.join("release/cargo-cast");

    let warm_cache = work.path().join("warm-cache");
    let casted = |cache: PathBuf| {
        let mut cmd = Command::new(&exe);
        cmd.env("CAST_CACHE_DIR", cache).env("CAST_ACCEL", "tcg");
        cmd
    };
    timed(casted(warm_cache.clone()), None)?; // fill the warm cache
    let mut cold_n = 0;
    let mut variants: Vec<(&str, Variant<'_>)> = vec![
        (
            "casted executable, cold (empty cache)",
            Box::new(|| {
                cold_n += 1;
                timed(casted(work.path().join(format!("cold-{cold_n}"))), None)
            }),
        ),
        (
            "casted executable, warm cache",
            Box::new(|| timed(casted(warm_cache.clone()), None)),
        ),
        (
            "cargo cast run --rootfs ROOT -- true",
            Box::new(|| {
                let mut cmd = Command::new(&runner);
                cmd.args(["cast", "run", "--rootfs"])
                    .arg(&rootfs)
                    .args(["--", "true"])
                    .env("CAST_ACCEL", "tcg");
                timed(cmd, None)
            }),
        ),
    ];
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    eprintln!("casted benchmark: {runs} interleaved runs per variant, TCG, 2 vCPUs, 512M");
    for _ in 0..runs {
        for (i, (_, run)) in variants.iter_mut().enumerate() {
            times[i].push(run()?.as_secs_f64());
        }
    }
    let base = median(&mut times[2].clone());
    println!(
        "{:<40} {:>8} {:>8} {:>8} {:>7}",
        "variant", "median", "min", "max", "ratio"
    );
    for (i, (name, _)) in variants.iter().enumerate() {
        let t = &mut times[i];
        let m = median(t);
        println!(
            "{name:<40} {m:>7.3}s {:>7.3}s {:>7.3}s {:>7.3}",
            t[0],
            t[t.len() - 1],
            m / base
        );
    }
    sizes(&exe, &rootfs)?;
    embed_large(&fixture, &bench_target, work.path())
}

/// Copies the fixture crate to `dst` with absolute paths to the workspace crates and
/// the workspace's `Cargo.lock` (as the tests do); unchanged files are left alone.
fn copy_fixture(ws: &Path, dst: &Path) -> Result<PathBuf> {
    let src = ws.join("tests/fixtures/casted");
    let manifest = std::fs::read_to_string(src.join("Cargo.toml"))?
        .replace("\"../../../", &format!("\"{}/", ws.display()));
    let files = [
        ("Cargo.toml", manifest.into_bytes()),
        ("build.rs", std::fs::read(src.join("build.rs"))?),
        ("src/main.rs", std::fs::read(src.join("src/main.rs"))?),
        ("Cargo.lock", std::fs::read(ws.join("Cargo.lock"))?),
    ];
    for (name, data) in files {
        let path = dst.join(name);
        std::fs::create_dir_all(path.parent().unwrap())?;
        if name == "Cargo.lock" || std::fs::read(&path).ok().as_ref() != Some(&data) {
            std::fs::write(&path, data)?;
        }
    }
    Ok(dst.to_owned())
}

/// Payload object + link time for a 256 MiB root image (random bytes: only the
/// build is measured, the result is not run).
fn embed_large(fixture: &Path, bench_target: &Path, work: &Path) -> Result<()> {
    let big = work.join("big.img");
    let mut src = std::fs::File::open("/dev/urandom")?;
    let mut dst = std::fs::File::create(&big)?;
    std::io::copy(&mut std::io::Read::take(&mut src, 256 << 20), &mut dst)?;
    drop(dst);
    let gnu_time = Path::new("/usr/bin/time").exists();
    let mut cmd = if gnu_time {
        let mut c = Command::new("/usr/bin/time");
        c.args(["-f", "%M"])
            .arg(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        c
    } else {
        Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
    };
    cmd.current_dir(fixture)
        .args(["build", "--release", "--quiet", "--offline", "--target-dir"])
        .arg(bench_target)
        .env("CAST_FIXTURE_ROOTFS", &big)
        .env("CAST_FIXTURE_BARE", "1")
        .env("CAST_FIXTURE_ZSTD_LEVEL", "19")
        .stderr(Stdio::piped());
    let start = Instant::now();
    let out = cmd.output()?;
    let elapsed = start.elapsed();
    if !out.status.success() {
        bail!(
            "building with a 256 MiB root image failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let peak = String::from_utf8_lossy(&out.stderr)
        .lines()
        .last()
        .and_then(|l| l.trim().parse::<u64>().ok())
        .filter(|_| gnu_time)
        .map_or("n/a (no /usr/bin/time)".into(), |kb| {
            format!("{:.0} MB", kb as f64 / 1024.0)
        });
    let exe = std::fs::metadata(bench_target.join("release/hello-tool"))?.len();
    println!(
        "256 MiB root image: payload + object + link {:.2}s, peak RSS {peak}, executable {:.1} MiB",
        elapsed.as_secs_f64(),
        exe as f64 / (1024.0 * 1024.0)
    );
    Ok(())
}

/// The executable's size against what it carries.
fn sizes(exe: &Path, rootfs: &Path) -> Result<()> {
    let out = Command::new(exe).arg("--cast-info").output()?;
    let info = String::from_utf8_lossy(&out.stdout);
    let part_len = |name: &str| -> Result<u64> {
        let line = info
            .lines()
            .find(|l| l.starts_with(&format!("part {name}: ")))
            .with_context(|| format!("no {name} in --cast-info"))?;
        let after = line.split(" length ").nth(1).context("no length")?;
        Ok(after
            .split_whitespace()
            .next()
            .context("no length")?
            .parse()?)
    };
    let mib = |n: u64| n as f64 / (1024.0 * 1024.0);
    let exe_len = std::fs::metadata(exe)?.len();
    let root_len = std::fs::metadata(rootfs)?.len();
    let kernel = part_len("kernel")?;
    let initrd = part_len("initrd")?;
    let payload: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("payload size: "))
        .context("no payload size")?
        .parse()?;
    println!("executable                  {:>8.2} MiB", mib(exe_len));
    println!("  root image                {:>8.2} MiB", mib(root_len));
    println!("  kernel (zstd -19)         {:>8.2} MiB", mib(kernel));
    println!("  initrd (init + modules)   {:>8.2} MiB", mib(initrd));
    println!(
        "  payload (incl. alignment) {:>8.2} MiB; runtime code {:.2} MiB",
        mib(payload),
        mib(exe_len - payload)
    );
    println!(
        "executable / (root image + zstd kernel) = {:.3}",
        exe_len as f64 / (root_len + kernel) as f64
    );
    Ok(())
}

fn cargo(dir: &Path) -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(dir);
    cmd
}

fn run_ok(mut cmd: Command) -> Result<()> {
    if !cmd.status()?.success() {
        bail!("{cmd:?} failed");
    }
    Ok(())
}
