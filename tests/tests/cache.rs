//! `cargo cast cache` on a real cache layout (no VMs): build cache entries written by
//! `cast_build::cache::BuildCache`, blobs by `cast_oci::BlobCache`, kernel bundles,
//! decompressed kernels and a target dir laid out as their writers do, then aged by
//! setting their times. The table and JSON count and size them; `prune` removes the
//! old and keeps the fresh, the locked, writers' fresh temp files, the default
//! kernel bundle and the target dir; `--all` takes the rest but the default kernel
//! (and the target dir while Cargo's lock in it is held).

use std::fs::{self, File, FileTimes};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use cast_build::cache::BuildCache;
use cast_build::RunConfig;
use cast_oci::{BlobCache, Digest};
use cast_tests::{cargo_cast, output_of, Output};
use nix::fcntl::{Flock, FlockArg};

const DAY: Duration = Duration::from_secs(86400);

fn cast(root: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(cargo_cast());
    cmd.arg("cast")
        .arg("cache")
        .args(args)
        .env("CAST_CACHE_DIR", root);
    output_of(cmd, Vec::new())
}

/// Sets the access and modification times of everything under `path` to `age` ago
/// (directories last, so their times stick).
fn age(path: &Path, age: Duration) {
    let t = SystemTime::now() - age;
    let times = FileTimes::new().set_accessed(t).set_modified(t);
    let mut all: Vec<PathBuf> = walk(path);
    all.reverse(); // children before their directory
    for p in all {
        File::open(&p).unwrap().set_times(times).unwrap();
    }
}

fn walk(path: &Path) -> Vec<PathBuf> {
    let mut v = vec![path.to_owned()];
    if path.is_dir() {
        let mut kids: Vec<_> = fs::read_dir(path)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        kids.sort();
        for k in kids {
            v.extend(walk(&k));
        }
    }
    v
}

fn build_entry(cache: &BuildCache, key: &str, image_len: usize) -> PathBuf {
    let staging = cache.staging(key).unwrap();
    fs::write(staging.path().join("root.erofs"), vec![7u8; image_len]).unwrap();
    let stored = cache
        .store(staging, &RunConfig::default(), Vec::new())
        .unwrap();
    stored.root_image.parent().unwrap().to_owned()
}

fn blob(cache: &BlobCache, bytes: &[u8]) -> (Digest, PathBuf) {
    let d = Digest::of(bytes);
    let p = cache.insert_bytes(&d, bytes, "blob", "test").unwrap();
    (d, p)
}

fn bundle(dir: &Path, kernel_len: usize) {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join("bundle.json"), "{}").unwrap();
    fs::write(dir.join("vmlinuz"), vec![1u8; kernel_len]).unwrap();
}

/// The cache a test works on, and what is in it.
struct Fixture {
    root: PathBuf,
    old_build: PathBuf,
    fresh_build: PathBuf,
    old_blob: PathBuf,
    fresh_blob: PathBuf,
    locked_blob: (Digest, PathBuf),
    old_ref: PathBuf,
    default_kernel: PathBuf,
    url_kernel: PathBuf,
    run_kernel: PathBuf,
    run_kernel_lock: PathBuf,
    fresh_temp: PathBuf,
    fresh_staging: PathBuf,
    stale_temp: PathBuf,
    target: PathBuf,
    other: PathBuf,
}

fn fixture(root: &Path) -> Fixture {
    let builds = BuildCache::new(root.join("build"));
    let old_build = build_entry(&builds, "00aa", 100_000);
    let fresh_build = build_entry(&builds, "11bb", 200_000);
    age(&old_build, 60 * DAY);

    let blobs = BlobCache::open(root).unwrap();
    let (old_digest, old_blob) = blob(&blobs, &[1u8; 3000]);
    let (_, fresh_blob) = blob(&blobs, &[2u8; 5000]);
    let locked_blob = blob(&blobs, &[3u8; 7000]);
    age(&old_blob, 60 * DAY);
    age(&locked_blob.1, 60 * DAY);
    blobs
        .write_ref("registry.test", "app", "v1", &old_digest)
        .unwrap();
    let old_ref = root.join("refs/registry.test/app/v1");

    let default_kernel = root.join("kernel/default");
    bundle(&default_kernel, 40_000);
    age(&default_kernel, 90 * DAY);
    let url_kernel = root.join("kernel/sha256-00ff");
    bundle(&url_kernel, 30_000);
    age(&url_kernel, 90 * DAY);

    let payload = root.join("payload/kernel");
    fs::create_dir_all(&payload).unwrap();
    let run_kernel = payload.join("b2b9");
    fs::write(&run_kernel, vec![0u8; 50_000]).unwrap();
    age(&run_kernel, 45 * DAY);
    let run_kernel_lock = payload.join("b2b9.lock");
    fs::write(&run_kernel_lock, "").unwrap();
    let fresh_temp = payload.join(".tmp-c3c3.x4242"); // an extraction in progress
    fs::write(&fresh_temp, vec![0u8; 1000]).unwrap();

    let fresh_staging = root.join("build/.tmp-22cc.x4242"); // a build in progress
    fs::create_dir(&fresh_staging).unwrap();
    fs::write(fresh_staging.join("root.erofs"), b"half").unwrap();
    let stale_temp = root.join("build/.tmp-crashed");
    fs::create_dir(&stale_temp).unwrap();
    fs::write(stale_temp.join("root.erofs"), b"left behind").unwrap();
    age(&stale_temp, 2 * DAY);

    let target = root.join("target");
    for c in ["one-0123456789", "two-0123456789"] {
        fs::create_dir_all(target.join("cast-crates").join(c)).unwrap();
    }
    fs::create_dir_all(target.join("debug")).unwrap();
    fs::write(target.join("debug/.cargo-lock"), "").unwrap();
    fs::write(target.join("debug/big"), vec![0u8; 300_000]).unwrap();
    age(&target, 100 * DAY);

    let other = root.join("notes.txt");
    fs::write(&other, "mine").unwrap();
    age(&other, 100 * DAY);

    Fixture {
        root: root.to_owned(),
        old_build,
        fresh_build,
        old_blob,
        fresh_blob,
        locked_blob,
        old_ref,
        default_kernel,
        url_kernel,
        run_kernel,
        run_kernel_lock,
        fresh_temp,
        fresh_staging,
        stale_temp,
        target,
        other,
    }
}

fn json(out: &Output) -> serde_json::Value {
    assert_eq!(out.code, 0, "{}", out.stderr);
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", out.stdout_text()))
}

fn area<'a>(v: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    v["areas"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name)
        .unwrap_or_else(|| panic!("no area {name} in {v:#}"))
}

fn item_bytes(a: &serde_json::Value, name: &str) -> u64 {
    a["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == name)
        .unwrap_or_else(|| panic!("no item {name} in {a:#}"))["bytes"]
        .as_u64()
        .unwrap()
}

fn name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn the_table_counts_and_sizes_every_area() {
    let tmp = tempfile::tempdir().unwrap();
    let f = fixture(tmp.path());
    let v = json(&cast(&f.root, &["--json"]));
    assert_eq!(v["root"], f.root.to_str().unwrap());
    assert_eq!(v["exists"], true);
    let counts = [
        ("build", 2),
        ("blobs", 3),
        ("kernel", 2),
        ("payload/kernel", 1),
        ("target", 2),
        ("other", 1),
        ("payload/zstd", 0),
    ];
    for (n, count) in counts {
        assert_eq!(area(&v, n)["entries"], count, "{n}: {v:#}");
    }
    // Blobs are exactly their bytes; the area adds the ref (and empty lock files).
    let blobs = area(&v, "blobs");
    assert_eq!(item_bytes(blobs, &name(&f.old_blob)), 3000);
    assert_eq!(item_bytes(blobs, &name(&f.fresh_blob)), 5000);
    let ref_len = fs::metadata(&f.old_ref).unwrap().len();
    assert_eq!(blobs["bytes"], 3000 + 5000 + 7000 + ref_len);
    // A build entry is its image plus two small JSON files.
    let build = area(&v, "build");
    let old = item_bytes(build, "00aa");
    assert!((100_000..101_000).contains(&old), "{old}");
    let temps = "half".len() + "left behind".len();
    assert_eq!(
        build["bytes"].as_u64().unwrap(),
        old + item_bytes(build, "11bb") + temps as u64
    );
    assert_eq!(area(&v, "payload/kernel")["bytes"], 50_000 + 1000);
    assert_eq!(area(&v, "target")["bytes"], 300_000);
    let total: u64 = v["areas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["bytes"].as_u64().unwrap())
        .sum();
    assert_eq!(v["total_bytes"], total);

    let out = cast(&f.root, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let table = out.stdout_text();
    assert!(
        table
            .lines()
            .any(|l| l.split_whitespace().take(2).eq(["build", "2"])),
        "{table}"
    );
    assert!(table.contains(f.root.to_str().unwrap()), "{table}");
    // `cache` alone is `cache df`.
    assert_eq!(
        cast(&f.root, &["df", "--json"]).stdout,
        cast(&f.root, &["--json"]).stdout
    );
}

#[test]
fn prune_removes_what_is_old_and_keeps_what_is_used() {
    let tmp = tempfile::tempdir().unwrap();
    let f = fixture(tmp.path());
    let (locked_digest, locked_path) = &f.locked_blob;
    let lock_file = f.root.join(format!("locks/{}.lock", locked_digest.hex()));
    let held = Flock::lock(
        File::create(&lock_file).unwrap(),
        FlockArg::LockExclusiveNonblock,
    )
    .unwrap();

    let dry = cast(&f.root, &["prune", "--dry-run"]);
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert!(dry.stderr.contains("Would remove"), "{}", dry.stderr);
    assert!(f.old_build.exists() && f.old_blob.exists() && f.stale_temp.exists());

    let out = cast(&f.root, &["prune"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    for gone in [
        &f.old_build,
        &f.old_blob,
        &f.old_ref,
        &f.url_kernel,
        &f.run_kernel,
        &f.stale_temp,
    ] {
        assert!(!gone.exists(), "{} kept\n{}", gone.display(), out.stderr);
    }
    for kept in [
        &f.fresh_build,
        &f.fresh_blob,
        locked_path,
        &f.default_kernel,
        &f.run_kernel_lock,
        &f.fresh_temp,
        &f.fresh_staging,
        &f.target,
        &f.other,
    ] {
        assert!(kept.exists(), "{} removed\n{}", kept.display(), out.stderr);
    }
    assert!(
        out.stderr
            .contains(&format!("{} (in use)", locked_path.display())),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("--default-kernel"), "{}", out.stderr);
    let leftovers: Vec<_> = fs::read_dir(f.root.join("build"))
        .unwrap()
        .map(|e| name(&e.unwrap().path()))
        .filter(|n| n.starts_with(".prune-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    drop(held);
    // A `cargo build` in the target dir holds Cargo's lock: the target dir stays.
    let cargo = Flock::lock(
        File::open(f.target.join("debug/.cargo-lock")).unwrap(),
        FlockArg::LockExclusiveNonblock,
    )
    .unwrap();
    let out = cast(&f.root, &["prune", "--all"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    for gone in [&f.fresh_build, &f.fresh_blob, locked_path] {
        assert!(!gone.exists(), "{} kept\n{}", gone.display(), out.stderr);
    }
    assert!(f.target.join("debug/big").exists(), "{}", out.stderr);
    drop(cargo);
    let out = cast(&f.root, &["prune", "--all"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!f.target.exists(), "{}", out.stderr);
    for kept in [&f.default_kernel, &f.fresh_temp, &f.fresh_staging, &f.other] {
        assert!(kept.exists(), "{} removed\n{}", kept.display(), out.stderr);
    }
    assert!(lock_file.exists(), "lock files stay");
    let v = json(&cast(&f.root, &["--json"]));
    for n in ["build", "blobs", "payload/kernel", "target"] {
        assert_eq!(area(&v, n)["entries"], 0, "{n}: {v:#}");
    }
    assert_eq!(area(&v, "kernel")["entries"], 1);

    let out = cast(&f.root, &["prune", "--all", "--default-kernel", "-q"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stderr, "");
    assert!(!f.default_kernel.exists());
}

#[test]
fn the_age_is_an_option() {
    let tmp = tempfile::tempdir().unwrap();
    let f = fixture(tmp.path());
    // 50 days: the 60-day-old build entry goes, the 45-day-old kernel stays.
    let out = cast(&f.root, &["prune", "--older-than", "50d"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!f.old_build.exists());
    assert!(f.run_kernel.exists());
    let out = cast(&f.root, &["prune", "--older-than", "0"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!f.run_kernel.exists() && !f.fresh_build.exists());
    assert!(f.target.exists(), "only --all takes the target dir");
    let out = cast(&f.root, &["prune", "--older-than", "3y"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("the unit is one of"), "{}", out.stderr);
}

#[test]
fn a_missing_cache_is_empty_and_no_cache_dir_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let absent = tmp.path().join("absent");
    let v = json(&cast(&absent, &["--json"]));
    assert_eq!(v["exists"], false);
    assert_eq!(v["total_bytes"], 0);
    let out = cast(&absent, &["prune"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("Freed 0 B"), "{}", out.stderr);
    assert!(!absent.exists(), "prune does not create the cache");

    let mut cmd = Command::new(cargo_cast());
    cmd.args(["cast", "cache"])
        .env("CAST_CACHE_DIR", "")
        .env_remove("XDG_CACHE_HOME")
        .env_remove("HOME");
    let out = output_of(cmd, Vec::new());
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.starts_with("error: no cache directory"),
        "{}",
        out.stderr
    );
}
