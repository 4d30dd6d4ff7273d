//! `cargo xtask bench build`: a Containerfile with 5 RUN steps, built cold (empty
//! caches) and again unchanged, against the same 5 commands run by one
//! `cargo cast run` of the base image. Figures: build VM boots (from the status
//! line) and wall time; every `cargo cast run DIR` also boots the built image once
//! to run `true`, so both sides include one run. A third build runs the same steps
//! with `RUN --network=none`: what the default network costs a build.

use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// The five RUN steps (busybox commands).
const STEPS: [&str; 5] = [
    "echo one > /one",
    "seq 1 200000 > /numbers",
    "mkdir -p /copy && cp -a /bin /copy/",
    // Debian's busybox-static has no adduser applet.
    "rm /one && echo bench:x:1000:1000::/home/bench:/bin/sh >> /etc/passwd && mkdir -p /home/bench",
    "wc -l /numbers > /count && sync",
];

pub fn run() -> Result<()> {
    let cargo_cast = crate::bench_boot::build_runner(true)?;
    let kernel = cast_kernel::default_bundle_dir()
        .filter(|d| d.join("bundle.json").is_file())
        .context("no kernel bundle: run `cargo xtask kernel`")?;
    let work = tempfile::tempdir()?;
    let tree = work.path().join("ctx/tree/bin");
    std::fs::create_dir_all(&tree)?;
    std::fs::copy("/bin/busybox", tree.join("busybox"))?;
    let applets = Command::new("/bin/busybox").arg("--list").output()?;
    for a in String::from_utf8_lossy(&applets.stdout).lines() {
        if a != "busybox" {
            std::os::unix::fs::symlink("busybox", tree.join(a))?;
        }
    }
    std::fs::create_dir_all(work.path().join("ctx/tree/etc"))?;
    std::fs::write(
        work.path().join("ctx/tree/etc/passwd"),
        "root:x:0:0::/root:/bin/sh\n",
    )?;
    std::fs::write(work.path().join("ctx/tree/etc/group"), "root:x:0:\n")?;
    let ctx = work.path().join("ctx");
    let base = "FROM scratch\nCOPY tree/ /\n";
    let mut file = base.to_owned();
    for s in STEPS {
        file.push_str(&format!("RUN {s}\n"));
    }
    file.push_str("CMD [\"true\"]\n");
    std::fs::write(ctx.join("Containerfile"), &file)?;
    let base_dir = work.path().join("base");
    std::fs::create_dir_all(&base_dir)?;
    // COPY cannot leave the context: the base gets its own copy of the tree.
    if !Command::new("cp")
        .arg("-a")
        .arg(ctx.join("tree"))
        .arg(&base_dir)
        .status()?
        .success()
    {
        bail!("copying the busybox tree failed");
    }
    std::fs::write(base_dir.join("Containerfile"), base)?;

    let cache = work.path().join("cache");
    let cast = |dir: &Path, extra: &[&str]| -> Result<(f64, String)> {
        let mut cmd = Command::new(&cargo_cast);
        cmd.args(["cast", "run"]).arg(dir).args(extra);
        cmd.env("CAST_CACHE_DIR", &cache)
            .env("CAST_KERNEL", &kernel)
            .env("CAST_BUILD_KERNEL", &kernel)
            .env("CAST_CPUS", "1")
            .env("CAST_BUILD_VM_CPUS", "1");
        let t = Instant::now();
        let out = cmd.output()?;
        let secs = t.elapsed().as_secs_f64();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if !out.status.success() {
            bail!("cargo cast run {} failed:\n{stderr}", dir.display());
        }
        let status = stderr
            .lines()
            .find(|l| l.contains("build VM boots"))
            .unwrap_or("")
            .to_owned();
        Ok((secs, status))
    };
    let script = STEPS.join(" && ");
    // Warm the base image's cache entry so the baseline times one run.
    cast(&base_dir, &["--", "true"])?;
    let (single, _) = cast(&base_dir, &["--", "sh", "-c", &script])?;
    let (cold, cold_status) = cast(&ctx, &[])?;
    let (cached, cached_status) = cast(&ctx, &[])?;
    // The same steps without a network card (their keys differ: all 5 run again).
    std::fs::write(
        ctx.join("Containerfile"),
        file.replace("\nRUN ", "\nRUN --network=none "),
    )?;
    let (offline, offline_status) = cast(&ctx, &[])?;
    let boots = |s: &str| {
        s.split("; ")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .unwrap_or("?")
            .to_owned()
    };
    println!("bench build: 5 RUN steps (busybox), 1 vCPU, TCG");
    println!(
        "{:<44} {:>10} {:>12} {:>8}",
        "", "wall s", "build boots", "× run"
    );
    println!(
        "{:<44} {:>10.2} {:>12} {:>8.2}",
        "one `cargo cast run` of the 5 commands", single, "-", 1.0
    );
    println!(
        "{:<44} {:>10.2} {:>12} {:>8.2}",
        "cold build + run (`cargo cast run DIR`)",
        cold,
        boots(&cold_status),
        cold / single
    );
    println!(
        "{:<44} {:>10.2} {:>12} {:>8.2}",
        "cold build + run, every RUN --network=none",
        offline,
        boots(&offline_status),
        offline / single
    );
    println!(
        "{:<44} {:>10.2} {:>12} {:>8.2}",
        "unchanged build + run",
        cached,
        boots(&cached_status),
        cached / single
    );
    Ok(())
}
