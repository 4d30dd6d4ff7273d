//! Casted executables: the fixture crate built with `cargo build`, run for real
//! (QEMU/TCG), its payload verified, its kernel cache exercised.

use cast_tests::casted::{casted, damaged_copy, hello_tool, payload_range};
use cast_tests::output_of;
use std::path::Path;

fn cache() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("cast-test-cache-")
        .tempdir()
        .unwrap()
}

fn run(args: &[&str], envs: &[(&str, &str)], cache: &Path) -> cast_tests::Output {
    let mut cmd = casted(hello_tool(), cache);
    cmd.args(args).envs(envs.iter().copied());
    output_of(cmd, Vec::new())
}

fn kernel_dir_entries(cache: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(cache.join("payload/kernel"))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn it_runs_the_entrypoint_with_cmd_and_returns_the_exit_code() {
    let cache = cache();
    let out = run(&[], &[], cache.path());
    assert_eq!(out.code, 0, "stderr: {}", out.stderr);
    assert_eq!(out.stderr, "");
    let text = out.stdout_text();
    assert!(
        text.starts_with(
            "args:default-cmd\nuser:1000 pwd:/data greeting:hi host:hello-tool\ncpus:1 mem:"
        ),
        "{text}"
    );
    let out = run(&["exit=7", "--help"], &[], cache.path());
    assert_eq!(out.code, 7, "stderr: {}", out.stderr);
    // Arguments replace CMD; the entrypoint is kept; --help reaches the tool.
    assert!(
        out.stdout_text().starts_with("args:exit=7 --help\n"),
        "{}",
        out.stdout_text()
    );
}

#[test]
fn cast_variables_override_the_baked_defaults() {
    // The fixture bakes 1 vCPU, 256M and a 150 s timeout; the variables take the
    // same forms as the manifest (1.5G, 5m), which run time once refused.
    let cache = cache();
    let out = run(
        &[],
        &[
            ("CAST_CPUS", "2"),
            ("CAST_MEMORY", "1.5G"),
            ("CAST_TIMEOUT", "5m"),
        ],
        cache.path(),
    );
    assert_eq!(out.code, 0, "stderr: {}", out.stderr);
    let text = out.stdout_text();
    assert!(text.contains("cpus:2 "), "{text}");
    // MemTotal (kB) is the guest's memory less what the kernel keeps: between
    // 1.25 GiB and 1.5 GiB for 1.5G, where the baked 256M gives under 256 MiB.
    let mem: u64 = text.rsplit("mem:").next().unwrap().trim().parse().unwrap();
    assert!((1_310_720..1_572_864).contains(&mem), "MemTotal {mem} kB");
    // Bad values are refused before anything boots, naming the variable and range.
    for (var, value, says) in [
        (
            "CAST_CPUS",
            "lots",
            "not a whole number; expected a number of vCPUs from 1 to",
        ),
        ("CAST_MEMORY", "32M", "below the minimum"),
        ("CAST_TIMEOUT", "soon", "not a duration"),
    ] {
        let out = run(&[], &[(var, value)], cache.path());
        assert_eq!(out.code, 125, "{var}={value}: {}", out.stderr);
        assert!(
            out.stderr
                .starts_with(&format!("hello-tool: {var}=\"{value}\": {says}")),
            "{}",
            out.stderr
        );
    }
}

#[test]
fn cast_options_describe_the_executable_without_booting() {
    let cache = cache();
    // The effective settings: baked ones under the CAST_* variables that are set.
    let out = run(
        &["--cast-info"],
        &[("CAST_MOUNT", "/d:/data;.:/w:ro")],
        cache.path(),
    );
    assert_eq!(out.code, 0, "stderr: {}", out.stderr);
    let text = out.stdout_text();
    for line in [
        "vm mounts: /d:/data,.:/w:ro (CAST_MOUNT)\n",
        "name: hello-tool\n",
        "cmd: [\"default-cmd\"]\n",
        "env: GREETING=hi\n",
        "user: alice\n",
        "workdir: /data\n",
        "vm cpus: 1 (baked)\n",
        "vm memory: 256M (baked)\n",
        "vm timeout: 2m 30s (baked)\n",
        "vm tty: auto (default)\n",
    ] {
        assert!(text.contains(line), "{line:?} missing from:\n{text}");
    }
    assert!(text.contains("payload digest: sha256:"), "{text}");
    assert!(text.contains("part root image: offset "), "{text}");
    let (offset, _) = payload_range(hello_tool());
    assert!(
        text.contains(&format!("(payload at offset {offset})")),
        "{text}"
    );
    let out = run(&["--cast-version"], &[], cache.path());
    assert!(out
        .stdout_text()
        .starts_with("hello-tool: cargo-cast runtime "));
    let out = run(&["--cast-help"], &[], cache.path());
    assert!(out.stdout_text().contains("CAST_MEMORY"));
    // Not alone: passed to the image like any argument (no boot needed to tell).
    assert!(!kernel_dir_entries(cache.path())
        .iter()
        .any(|e| e.len() == 64));
}

#[test]
fn a_flipped_byte_anywhere_in_the_payload_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let cache = cache();
    let info = run(&["--cast-info"], &[], cache.path()).stdout_text();
    let part_offset = |name: &str| -> u64 {
        let line = info
            .lines()
            .find(|l| l.starts_with(&format!("part {name}: offset ")))
            .unwrap();
        let after = line.split(": offset ").nth(1).unwrap();
        after.split_whitespace().next().unwrap().parse().unwrap()
    };
    for (what, at, says) in [
        ("manifest", 100, "the manifest does not match"),
        (
            "kernel",
            part_offset("kernel") + 5000,
            "the kernel does not match",
        ),
        (
            "root",
            part_offset("root image") + 1030,
            "the root image does not match",
        ),
    ] {
        let exe = damaged_copy(hello_tool(), dir.path(), at);
        let out = output_of(casted(&exe, cache.path()), Vec::new());
        assert_eq!(out.code, 125, "{what}: {}", out.stderr);
        assert!(
            out.stderr
                .starts_with(&format!("hello-tool-{at}: the payload is damaged: "))
                && out.stderr.contains(says)
                && out.stderr.lines().count() == 1,
            "{what}: {}",
            out.stderr
        );
    }
}

#[test]
fn a_cut_short_or_damaged_file_is_one_message_and_exit_125_never_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let cache = cache();
    let exe = std::fs::read(hello_tool()).unwrap();
    let (offset, len) = payload_range(hello_tool());
    let run_copy = |name: &str, data: &[u8]| {
        let copy = dir.path().join(name);
        std::fs::write(&copy, data).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
        output_of(casted(&copy, cache.path()), Vec::new())
    };
    let cuts = [
        offset + 100,
        offset + len / 2,
        exe.len() as u64 - 1,
        10_000_000.min(exe.len() as u64 - 1), // the issue's `truncate -s 10000000`
    ];
    for cut in cuts {
        let out = run_copy("cut", &exe[..cut as usize]);
        assert_eq!(out.code, 125, "cut at {cut}: {}", out.stderr);
        assert!(
            out.stderr.starts_with("cut: this executable's file ")
                && out.stderr.contains(" is damaged: ")
                && out.stderr.lines().count() == 1,
            "cut at {cut}: {}",
            out.stderr
        );
    }
    // A flipped bit in the header's format number is damage, not a format version.
    let mut flipped = exe.clone();
    flipped[offset as usize + 8] ^= 0xff;
    let out = run_copy("flipped", &flipped);
    assert_eq!(out.code, 125, "{}", out.stderr);
    assert_eq!(
        out.stderr,
        "flipped: the payload is damaged: its header's format number does not match its manifest\n"
    );
}

#[test]
fn eight_concurrent_first_runs_share_one_cache_entry() {
    // Alone: eight VMs at once already load the machine to its limit.
    let alone = cast_tests::tier::alone();
    let cache = cache();
    let outs: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| cast_tests::tier::within(&alone, || run(&["exit=3"], &[], cache.path())))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for out in outs {
        assert_eq!(out.code, 3, "stderr: {}", out.stderr);
        assert_eq!(out.stderr, "");
    }
    let entries = kernel_dir_entries(cache.path());
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert!(entries[0].len() == 64 && entries[1] == format!("{}.lock", entries[0]));
}

#[test]
fn a_run_killed_while_extracting_leaves_nothing_the_next_run_trusts() {
    // The first run may write 4 MiB per file: the kernel (tens of MiB) hits the limit
    // part-way, and the kernel kills the run with SIGXFSZ in the middle of the write.
    const LIMIT: libc::rlim_t = 4 << 20;
    let cache = cache();
    let mut cmd = casted(hello_tool(), cache.path());
    let hook = || {
        let limit = libc::rlimit {
            rlim_cur: LIMIT,
            rlim_max: LIMIT,
        };
        // SAFETY: setrlimit reads one struct from a valid pointer; async-signal-safe.
        if unsafe { libc::setrlimit(libc::RLIMIT_FSIZE, &limit) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    };
    // SAFETY: the hook makes one async-signal-safe system call and allocates nothing.
    unsafe { std::os::unix::process::CommandExt::pre_exec(&mut cmd, hook) };
    let out = output_of(cmd, Vec::new());
    assert_eq!(out.code, 128 + libc::SIGXFSZ, "stderr: {}", out.stderr);
    let entries = kernel_dir_entries(cache.path());
    assert!(
        entries.iter().any(|e| e.contains(".tmp")),
        "no partial entry: {entries:?}"
    );
    assert!(
        entries.iter().all(|e| e.len() != 64),
        "a killed extraction left a complete-looking entry: {entries:?}"
    );
    let out = run(&["exit=5"], &[], cache.path());
    assert_eq!(out.code, 5, "stderr: {}", out.stderr);
    let entries = kernel_dir_entries(cache.path());
    assert!(!entries.iter().any(|e| e.contains(".tmp")), "{entries:?}");
    assert!(entries.iter().any(|e| e.len() == 64), "{entries:?}");
}

#[test]
fn an_unwritable_cache_runs_with_the_kernel_in_memory_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_dir = dir.path().join("file");
    std::fs::write(&not_a_dir, b"").unwrap();
    let out = run(&["exit=4"], &[], &not_a_dir);
    assert_eq!(out.code, 4, "stderr: {}", out.stderr);
    assert!(out.stdout_text().starts_with("args:exit=4\n"));
    assert!(
        out.stderr
            .starts_with("hello-tool: warning: cannot write the cache directory")
            && out
                .stderr
                .contains("keeping the kernel in memory for this run")
            && out.stderr.lines().count() == 1,
        "{}",
        out.stderr
    );
}

#[test]
fn a_file_modified_in_place_after_a_verified_run_is_checked_again() {
    // The first run hashes the root image and stamps this file as verified; a write
    // to the same file (same inode) must not be covered by that stamp.
    let dir = tempfile::tempdir().unwrap();
    let cache = cache();
    let exe = damaged_copy(hello_tool(), dir.path(), u64::MAX);
    let out = output_of(casted(&exe, cache.path()), Vec::new());
    assert_eq!(out.code, 0, "stderr: {}", out.stderr);
    let stamps = std::fs::read_dir(cache.path().join("payload/verified")).unwrap();
    let root_stamps = stamps
        .filter(|e| {
            !e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("kernel-")
        })
        .count();
    assert_eq!(root_stamps, 1);
    let info = run(&["--cast-info"], &[], cache.path()).stdout_text();
    let root_at: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("part root image: offset "))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap();
    let (offset, _) = payload_range(&exe);
    let file = std::fs::OpenOptions::new().write(true).open(&exe).unwrap();
    let at = offset + root_at + 2048;
    let mut byte = [0u8];
    std::os::unix::fs::FileExt::read_exact_at(&std::fs::File::open(&exe).unwrap(), &mut byte, at)
        .unwrap();
    std::os::unix::fs::FileExt::write_all_at(&file, &[byte[0] ^ 0x80], at).unwrap();
    drop(file);
    let out = output_of(casted(&exe, cache.path()), Vec::new());
    assert_eq!(out.code, 125, "stderr: {}", out.stderr);
    assert!(
        out.stderr.contains("the root image does not match"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_stripped_executable_still_finds_its_payload() {
    let dir = tempfile::tempdir().unwrap();
    let stripped = dir.path().join("hello-tool");
    let status = std::process::Command::new("strip")
        .arg("-o")
        .arg(&stripped)
        .arg(hello_tool())
        .status()
        .expect("strip (binutils)");
    assert!(status.success());
    assert!(
        std::fs::metadata(&stripped).unwrap().len()
            < std::fs::metadata(hello_tool()).unwrap().len()
    );
    let cache = cache();
    let mut cmd = casted(&stripped, cache.path());
    cmd.arg("--cast-info");
    let out = output_of(cmd, Vec::new());
    assert_eq!(out.code, 0, "stderr: {}", out.stderr);
    let (offset, _) = payload_range(&stripped);
    assert!(
        out.stdout_text().contains(&format!(
            "{} (payload at offset {offset})",
            stripped.display()
        )),
        "{}",
        out.stdout_text()
    );
}
