//! Faults during `cargo cast build`, as an unlucky user meets them:
//!
//! - the disk holding the cast cache fills up, with Cargo's target directory
//!   elsewhere (the image write fails) and inside the cache (Cargo and the linker
//!   fail): the user is told which path is full and what to free;
//! - `cargo cast build` is killed while its build script runs: Cargo, rustc and the
//!   build script die with it (nothing keeps building or holds the target lock).
//!
//! A full disk is a tmpfs of a few MiB mounted in a private mount namespace
//! (`unshare --user --map-root-user --mount`), so nothing on the host fills up.

use std::io::Read as _;
use std::os::unix::process::ExitStatusExt as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cast_tests::casting::{build_output, cargo_cast_cmd, BUILD_BOUND};
use cast_tests::http::Server;
use cast_tests::proc::{wait_bounded, Guard};
use cast_tests::Output;

/// `cmd` run with a `size` tmpfs mounted on `dir` (in a mount namespace of its own).
fn on_small_disk(dir: &Path, size: &str, cmd: &Command) -> Command {
    std::fs::create_dir_all(dir).unwrap();
    let mut outer = Command::new("unshare");
    outer
        .args(["--user", "--map-root-user", "--mount", "--", "sh", "-c"])
        .arg(r#"mount -t tmpfs -o "size=$1" tmpfs "$2" && shift 2 && exec "$@""#)
        .args(["sh", size])
        .arg(dir)
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => outer.env(k, v),
            None => outer.env_remove(k),
        };
    }
    outer
}

/// A directory holding a Containerfile that copies a 4 MiB file into the image.
fn big_image_dir(root: &Path) -> std::path::PathBuf {
    let dir = root.join("big");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("Containerfile"), "FROM scratch\nCOPY big /big\n").unwrap();
    // Incompressible bytes, so no layer of the write path can make them small.
    let mut bytes = vec![0u8; 4 << 20];
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    for b in &mut bytes {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    std::fs::write(dir.join("big"), bytes).unwrap();
    dir
}

#[test]
fn a_full_cache_disk_names_the_path_and_what_to_free() {
    let work = tempfile::Builder::new()
        .prefix("cast-e2e-full-")
        .tempdir()
        .unwrap();
    let dir = big_image_dir(work.path());
    let cache = work.path().join("cache");
    let out = work.path().join("tool");

    // The image does not fit in the cache; Cargo's target directory is elsewhere
    // (the shared e2e target), so the build script is what fails.
    let got = build_with_full_cache(&cache, &dir, &out, true);
    assert!(
        got.stderr.contains("No space left on device"),
        "{}",
        got.stderr
    );
    assert!(
        got.stderr.contains(&format!("{}/build/", cache.display())),
        "the message names the file being written in the cache:\n{}",
        got.stderr
    );
    assert!(!got.stderr.contains("panicked"), "{}", got.stderr);
    assert!(!out.exists(), "no executable is written");

    // Cargo's target directory inside the full cache (the default for a directory
    // build): Cargo or the linker fails, and cargo cast says which disk is full.
    let got = build_with_full_cache(&cache, &dir, &out, false);
    assert!(
        got.stderr.contains(&format!(
            "Cargo's target directory {}/target has",
            cache.display()
        )),
        "the full target directory is named:\n{}",
        got.stderr
    );
}

/// `cargo cast build DIR -o OUT` with the cast cache on a 2 MiB disk and Cargo's
/// target directory elsewhere (`own_target`) or in the cache; it fails, and says
/// what to free.
fn build_with_full_cache(cache: &Path, dir: &Path, out: &Path, own_target: bool) -> Output {
    let mut cmd = cargo_cast_cmd(cache, &["build", dir.to_str().unwrap(), "-o"]);
    if !own_target {
        cmd.env_remove("CARGO_TARGET_DIR");
    }
    let mut cmd = on_small_disk(cache, "2m", &cmd);
    cmd.arg(out);
    let got = build_output(cmd, BUILD_BOUND);
    eprintln!("{}", got.stderr);
    assert_ne!(got.code, 0);
    assert!(
        got.stderr.contains("cargo cast cache prune"),
        "{}",
        got.stderr
    );
    got
}

/// The process group `pid` is in (field 5 of `/proc/PID/stat`).
fn pgid_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; it ends at the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(2)?.parse().ok()
}

/// Pids of the live (not zombie) processes in process group `pgid`.
fn group_members(pgid: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pgid_of(pid) == Some(pgid) && !is_zombie(pid))
        .collect()
}

/// Whether `pid` has ended and waits to be reaped (state `Z`).
fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| Some(s[s.rfind(')')? + 2..].starts_with('Z')))
        .unwrap_or(false)
}

/// The children of `pid` (all its threads').
fn children_of(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
    {
        let text = std::fs::read_to_string(task.unwrap().path().join("children"));
        found.extend(
            text.unwrap_or_default()
                .split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok()),
        );
    }
    found
}

#[test]
fn killing_cargo_cast_build_ends_cargo_and_the_build_script() {
    // The build script downloads an ADD URL from a server that never answers: once
    // the request arrives, the build script is certainly running.
    let (tx, rx) = mpsc::channel();
    let server = Server::start(move |req| {
        if req.path == "/stall" {
            let _ = tx.send(req.into_stream());
        } else {
            req.respond(404, &[], b"");
        }
    });
    let work = tempfile::Builder::new()
        .prefix("cast-e2e-kill-")
        .tempdir()
        .unwrap();
    let dir = work.path().join("stall");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("Containerfile"),
        format!("FROM scratch\nADD {} /stall\n", server.url("/stall")),
    )
    .unwrap();
    let cache = work.path().join("cache");
    let out = work.path().join("tool");
    let mut cmd = cargo_cast_cmd(
        &cache,
        &["build", dir.to_str().unwrap(), "-o", out.to_str().unwrap()],
    );
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut build = Guard::spawn(cmd);
    let pid = build.0.id();

    let mut stream = rx
        .recv_timeout(BUILD_BOUND)
        .expect("the build script never asked for the ADD URL");
    let cargo = children_of(pid);
    assert_eq!(cargo.len(), 1, "cargo cast runs one cargo: {cargo:?}");
    let group = pgid_of(cargo[0]).unwrap();
    assert!(
        group_members(group).len() > 1,
        "cargo and the build script run in cargo's process group"
    );

    // SAFETY: kill(2) on the pid of a child this test spawned and has not reaped.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let status = wait_bounded(&mut build.0, Duration::from_secs(60))
        .expect("cargo cast build did not end within 60 s of SIGTERM");
    assert_eq!(
        status.signal(),
        Some(libc::SIGTERM),
        "cargo cast dies of the signal it was sent: {status:?}"
    );

    // The build script is gone: its connection to the server closes.
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut buf = [0u8; 64];
    match stream.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("the build script's download still runs: {other:?}"),
    }
    // And nothing of Cargo's process group is left.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !group_members(group).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        group_members(group),
        Vec::<u32>::new(),
        "processes of the killed build are still running"
    );
    assert!(!out.exists());
}
