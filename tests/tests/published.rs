//! The published world: cargo-cast as a user gets it from a registry, with no source
//! checkout. The workspace is packaged (`cargo package`), its crates and their
//! dependencies (`cargo vendor`) are served as a directory source that replaces
//! crates-io (cargo's source replacement, offline), and then, in a temporary
//! directory with an empty cast cache:
//!
//! 1. `cargo install cargo-cast` into a temporary root;
//! 2. `cargo cast new tool` writes version requirements (no path, no `[patch]`);
//! 3. `cargo cast build` finds no kernel and provisions the default one first
//!    (Debian's package through apt), then casts the crate;
//! 4. `cargo install --path tool`, and the installed tool runs;
//! 5. a second crate pins its kernel (`kernel = { url, sha256 }`, the `.deb` served
//!    on 127.0.0.1) and is installed into another empty cache, and runs.
//!
//! Every step shares one target directory (each crate compiles once). It compiles
//! the whole product from its packaged sources: it is the slowest test; the time of
//! each step is printed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use cast_tests::casting::{build_output, BUILD_BOUND};
use cast_tests::fixtures::workspace;
use cast_tests::http::Server;
use cast_tests::proc::{output_of, without_cast_env};
use cast_tests::push::sha256;
use cast_tests::Output;

/// The crates that are published (the workspace minus `cast-tests` and `xtask`).
const UNPUBLISHED: [&str; 2] = ["cast-tests", "xtask"];

/// A SHA-256 as bare lowercase hex.
fn hex_sha256(bytes: &[u8]) -> String {
    sha256(bytes).trim_start_matches("sha256:").to_owned()
}

fn cargo() -> std::ffi::OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// Runs a bounded step, printing its time; fails the test (with its stderr) when it
/// fails.
fn step(what: &str, cmd: Command) -> Output {
    let t = Instant::now();
    let out = build_output(cmd, BUILD_BOUND);
    eprintln!("{what}: {:.1} s", t.elapsed().as_secs_f64());
    assert_eq!(out.code, 0, "{what} failed:\n{}", out.stderr);
    assert!(
        !out.stderr.contains("xtask"),
        "{what} mentions xtask:\n{}",
        out.stderr
    );
    out
}

/// A local registry: every published crate packaged, and their dependencies, as a
/// directory source at `dir`.
fn publish_into(dir: &Path, work: &Path) {
    let mut vendor = Command::new(cargo());
    vendor
        .current_dir(workspace())
        .args([
            "vendor",
            "--offline",
            "--locked",
            "--versioned-dirs",
            "--quiet",
        ])
        .arg(dir);
    step("cargo vendor", vendor);

    let target = work.join("package-target");
    let mut package = Command::new(cargo());
    package
        .current_dir(workspace())
        .args(["package", "--workspace", "--offline", "--locked"])
        .args(["--no-verify", "--allow-dirty", "--quiet"])
        .args(UNPUBLISHED.iter().flat_map(|c| ["--exclude", c]))
        .arg("--target-dir")
        .arg(&target)
        .env_remove("CARGO_TARGET_DIR");
    step("cargo package --workspace", package);

    for entry in std::fs::read_dir(target.join("package")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "crate") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
        archive.unpack(dir).unwrap();
        let stem = path.file_stem().unwrap().to_str().unwrap();
        let checksum = serde_json::json!({ "files": {}, "package": hex_sha256(&bytes) });
        std::fs::write(
            dir.join(stem).join(".cargo-checksum.json"),
            checksum.to_string(),
        )
        .unwrap();
    }
}

/// Cargo's home for the published world: crates-io replaced by `registry`, offline.
fn cargo_home(home: &Path, registry: &Path) {
    std::fs::create_dir_all(home).unwrap();
    std::fs::write(
        home.join("config.toml"),
        format!(
            "[source.crates-io]\nreplace-with = \"published\"\n\n\
             [source.published]\ndirectory = {:?}\n\n[net]\noffline = true\n",
            registry.display().to_string()
        ),
    )
    .unwrap();
}

/// The published world's environment: its own Cargo home and target directory, the
/// cast cache `cache`, nothing of the test's `CAST_*` or the outer build's wrappers.
fn world(cmd: &mut Command, work: &Path, cache: &Path) {
    without_cast_env(cmd)
        .current_dir(work)
        .env("CARGO_HOME", work.join("cargo-home"))
        .env("CARGO_TARGET_DIR", work.join("target"))
        .env("CAST_CACHE_DIR", cache)
        .env("CARGO", cargo())
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("RUSTFLAGS");
}

/// `cargo install --debug ARGS --root ROOT` in the published world.
fn install(work: &Path, cache: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(cargo());
    world(&mut cmd, work, cache);
    cmd.args(["install", "--debug", "--quiet"])
        .args(args)
        .arg("--root")
        .arg(work.join("root"));
    cmd
}

/// `cargo cast new NAME` with the installed cargo-cast, its Containerfile made
/// offline (busybox from the host, no base image to pull), one vCPU.
fn new_tool(work: &Path, cache: &Path, name: &str, metadata: &str) -> PathBuf {
    let mut cmd = Command::new(work.join("root/bin/cargo-cast"));
    world(&mut cmd, work, cache);
    cmd.args(["cast", "new", name]);
    step(&format!("cargo cast new {name}"), cmd);
    let krate = work.join(name);
    std::fs::copy("/bin/busybox", krate.join("busybox")).unwrap();
    std::fs::write(
        krate.join("Containerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\n\
         ENTRYPOINT [\"/bin/busybox\", \"sh\", \"-c\", \"echo published: $*\", \"sh\"]\n",
    )
    .unwrap();
    let manifest = std::fs::read_to_string(krate.join("Cargo.toml")).unwrap();
    std::fs::write(
        krate.join("Cargo.toml"),
        manifest.replace("# cpus = 2", &format!("cpus = 1\n{metadata}")),
    )
    .unwrap();
    krate
}

fn run_installed(work: &Path, cache: &Path, name: &str) -> Output {
    let mut cmd = Command::new(work.join("root/bin").join(name));
    without_cast_env(&mut cmd)
        .args(["from", name])
        .env("CAST_CACHE_DIR", cache);
    output_of(cmd, Vec::new())
}

#[test]
fn cargo_cast_from_a_registry_casts_and_installs_tools() {
    let started = Instant::now();
    let work = tempfile::Builder::new()
        .prefix("cast-e2e-published-")
        .tempdir()
        .unwrap();
    let work = work.path();
    let registry = work.join("registry");
    publish_into(&registry, work);
    cargo_home(&work.join("cargo-home"), &registry);
    let cache = work.join("cache");

    step(
        "cargo install cargo-cast",
        install(work, &cache, &["cargo-cast"]),
    );

    let tool = new_tool(work, &cache, "tool", "");
    let manifest = std::fs::read_to_string(tool.join("Cargo.toml")).unwrap();
    assert!(manifest.contains("cast-runner = \"0.1\""), "{manifest}");
    assert!(manifest.contains("cast-build = \"0.1\""), "{manifest}");
    assert!(
        !manifest.contains("[patch") && !manifest.contains("path ="),
        "a registry's cargo-cast points at a checkout:\n{manifest}"
    );
    assert!(
        !tool.join("Cargo.lock").exists(),
        "a lock file from nowhere"
    );

    // First use: no kernel in the empty cache; the build provisions it first.
    let mut build = Command::new(work.join("root/bin/cargo-cast"));
    world(&mut build, work, &cache);
    build.current_dir(&tool).args(["cast", "build"]);
    let out = step("cargo cast build (first use)", build);
    let default = cache.join("kernel/default");
    assert!(
        out.stderr.contains("Fetched kernel")
            && out.stderr.contains(&default.display().to_string()),
        "no line saying what was fetched and where:\n{}",
        out.stderr
    );
    assert!(default.join("bundle.json").is_file());

    step(
        "cargo install --path tool",
        install(work, &cache, &["--path", tool.to_str().unwrap()]),
    );
    let r = run_installed(work, &cache, "tool");
    assert_eq!(
        (r.code, r.stdout_text()),
        (0, "published: from tool\n".into()),
        "{}",
        r.stderr
    );

    // A crate that pins its kernel installs into an empty cache: the package the
    // first build fetched, served on 127.0.0.1.
    let bundle: serde_json::Value =
        serde_json::from_slice(&std::fs::read(default.join("bundle.json")).unwrap()).unwrap();
    let deb_name = bundle["source"]
        .as_str()
        .unwrap()
        .trim_start_matches("debian:");
    let package = deb_name.split('_').next().unwrap();
    let downloads = work.join("downloads");
    std::fs::create_dir(&downloads).unwrap();
    let mut apt = Command::new("apt-get");
    apt.current_dir(&downloads)
        .args(["download", "-qq", package]);
    step("apt-get download", apt);
    let deb = std::fs::read(downloads.join(deb_name)).unwrap();
    let digest = hex_sha256(&deb);
    let server = Server::start(move |req| req.respond(200, &[], &deb));
    let url = server.url("/linux-image.deb");
    let pinned = new_tool(
        work,
        &cache,
        "pinned",
        &format!("kernel = {{ url = {url:?}, sha256 = \"{digest}\" }}"),
    );
    let cache2 = work.join("cache2");
    step(
        "cargo install --path pinned (empty cache)",
        install(work, &cache2, &["--path", pinned.to_str().unwrap()]),
    );
    assert_eq!(
        server.requests(),
        ["GET /linux-image.deb "],
        "the pinned kernel was not fetched from its URL"
    );
    assert!(cache2
        .join(format!("kernel/sha256-{digest}/bundle.json"))
        .is_file());
    let r = run_installed(work, &cache2, "pinned");
    assert_eq!(
        (r.code, r.stdout_text()),
        (0, "published: from pinned\n".into()),
        "{}",
        r.stderr
    );
    eprintln!(
        "the published world: {:.0} s",
        started.elapsed().as_secs_f64()
    );
}
