//! Support for `cargo cast build` end-to-end tests: the command with isolated caches
//! and the default kernel, the shared `<target>/e2e` directory every e2e build uses
//! (dependencies compile once), and a bounded run for builds that kills the whole
//! process group (cargo, rustc, build scripts) if it overruns.

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::proc::read_in_background;
use crate::{cargo_cast, Output};

/// Upper bound for one build: a cold build compiles the runtime and the image
/// builder with their dependencies on a 2-core machine.
pub const BUILD_BOUND: Duration = Duration::from_secs(1200);

/// The shared target directory of end-to-end builds.
pub fn e2e_target() -> PathBuf {
    let ws = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| ws.join("target"))
        .join("e2e")
}

/// Removes every `CAST_*` variable of the test's own environment from `cmd`.
pub fn without_cast_env(cmd: &mut Command) -> &mut Command {
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("CAST_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// `cargo-cast cast ARGS` in the [`build_env`].
pub fn cargo_cast_cmd(cache: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(cargo_cast());
    cmd.arg("cast").args(args);
    build_env(&mut cmd, cache);
    cmd
}

/// The environment of an e2e build: caches in `cache`, the default kernel bundle
/// (for the build, `CAST_BUILD_KERNEL`, and for `cargo cast run`, `CAST_KERNEL`), the
/// shared e2e target directory, and no `CAST_*` settings from the test.
pub fn build_env<'a>(cmd: &'a mut Command, cache: &Path) -> &'a mut Command {
    let kernel = std::env::var_os("CAST_KERNEL")
        .map(PathBuf::from)
        .or_else(cast_kernel::default_bundle_dir)
        .expect("a kernel bundle: run `cargo xtask kernel`");
    without_cast_env(cmd)
        .env("CAST_CACHE_DIR", cache)
        .env("CAST_BUILD_KERNEL", &kernel)
        .env("CAST_KERNEL", kernel)
        .env("CARGO_TARGET_DIR", e2e_target())
        // The outer build's wrappers (clippy, coverage) must not leak in.
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("RUSTC_WRAPPER")
}

/// Runs a build command in its own process group with no stdin, at most `bound`;
/// on overrun the whole group is killed and the test fails.
pub fn build_output(mut cmd: Command, bound: Duration) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd.spawn().expect("spawning the build");
    let pgid = child.id() as i32;
    let out = child.stdout.take().unwrap();
    let err = child.stderr.take().unwrap();
    let out_reader = read_in_background(out);
    let err_reader = read_in_background(err);
    let deadline = Instant::now() + bound;
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code().unwrap_or(128);
        }
        if Instant::now() > deadline {
            // SAFETY: kill(2) with a negative pid signals the process group this
            // function created; it touches no memory.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
            let _ = child.wait();
            panic!("the build did not finish within {bound:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        code,
        stdout: out_reader.join().unwrap(),
        stderr: String::from_utf8_lossy(&err_reader.join().unwrap()).into_owned(),
    }
}
