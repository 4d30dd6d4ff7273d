//! `cargo cast build DIR -o OUT` end to end: a Containerfile FROM a busybox image in
//! a real registry on 127.0.0.1 (COPY a script, ENV, ENTRYPOINT) is cast into one
//! executable, which boots under QEMU/TCG, passes its arguments (even `--help`) to
//! the script and returns its exit code. Rebuilding with nothing changed does no
//! image work; rebuilding after touching the Containerfile finds the image in the
//! content-addressed cache. Also `cargo cast run DIR`.
//!
//! Generated crates build into `<target>/e2e`, shared by every e2e build.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use cast_tests::casting::{build_env, build_output, cargo_cast_cmd, BUILD_BOUND};
use cast_tests::images::push_busybox;
use cast_tests::proc::output_of;
use cast_tests::proc::without_cast_env;
use cast_tests::registry::Registry;
use cast_tests::Output;

const SCRIPT: &str = "#!/bin/sh\necho \"$GREETING from $(hostname): $*\"\nexit 3\n";

fn run_tool(exe: &Path, cache: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(exe);
    without_cast_env(&mut cmd)
        .args(args)
        .env("CAST_CACHE_DIR", cache);
    output_of(cmd, Vec::new())
}

fn build(cache: &Path, args: &[&str]) -> (Output, f64) {
    let t = Instant::now();
    let out = build_output(cargo_cast_cmd(cache, args), BUILD_BOUND);
    let secs = t.elapsed().as_secs_f64();
    eprintln!("cargo cast {args:?}: {secs:.2} s\n{}", out.stderr);
    assert_eq!(out.code, 0, "cargo cast build failed:\n{}", out.stderr);
    (out, secs)
}

#[test]
fn a_containerfile_directory_becomes_one_executable() {
    let registry = Registry::start();
    let base = push_busybox(&registry);
    let work = tempfile::Builder::new()
        .prefix("cast-e2e-build-")
        .tempdir()
        .unwrap();
    let cache = work.path().join("cache");
    let dir = work.path().join("greeter");
    std::fs::create_dir(&dir).unwrap();
    let containerfile = dir.join("Containerfile");
    std::fs::write(
        &containerfile,
        format!(
            "FROM {base}\nCOPY greet.sh /usr/local/bin/greet\nENV GREETING=hello\n\
             ENTRYPOINT [\"/usr/local/bin/greet\"]\n"
        ),
    )
    .unwrap();
    std::fs::write(dir.join("greet.sh"), SCRIPT).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.join("greet.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = work.path().join("bin/greeter");
    let out_s = out.to_str().unwrap();
    let dir_s = dir.to_str().unwrap();

    let (first, _) = build(&cache, &["build", dir_s, "-o", out_s, "--cpus", "1"]);
    assert!(first.stderr.contains("image built in"), "{}", first.stderr);
    // What was baked in, and from where.
    assert!(
        first.stderr.contains("Baked cpus = 1 (--cpus)"),
        "{}",
        first.stderr
    );

    // The executable runs the script with its arguments and returns its status.
    let r = run_tool(&out, &cache, &["a", "b"]);
    assert_eq!(r.code, 3, "stderr: {}", r.stderr);
    assert_eq!(r.stdout_text(), "hello from greeter: a b\n");
    let r = run_tool(&out, &cache, &["--help"]);
    assert_eq!(r.code, 3, "stderr: {}", r.stderr);
    assert_eq!(r.stdout_text(), "hello from greeter: --help\n");

    // Nothing changed: Cargo does not even rerun the build script.
    let (second, secs) = build(&cache, &["build", dir_s, "-o", out_s, "--cpus", "1"]);
    assert!(second.stderr.contains("no image work"), "{}", second.stderr);
    eprintln!("no-change rebuild: {secs:.2} s");

    // Same bytes, new mtime: the build script reruns and the image cache answers.
    std::fs::write(&containerfile, std::fs::read(&containerfile).unwrap()).unwrap();
    let (third, _) = build(&cache, &["build", dir_s, "-o", out_s, "--cpus", "1"]);
    assert!(
        third.stderr.contains("image from cache in"),
        "{}",
        third.stderr
    );
    let r = run_tool(&out, &cache, &["c"]);
    assert_eq!(
        (r.code, r.stdout_text()),
        (3, "hello from greeter: c\n".into())
    );

    // `cargo cast run DIR` runs the same image without making an executable.
    let mut cmd = cargo_cast_cmd(&cache, &["run", dir_s, "--", "x", "y"]);
    cmd.env("CAST_CPUS", "1");
    let r = output_of(cmd, Vec::new());
    assert_eq!(r.code, 3, "stderr: {}", r.stderr);
    assert_eq!(r.stdout_text(), "hello from cast: x y\n");
}

#[test]
fn errors_say_what_to_do() {
    let work = tempfile::tempdir().unwrap();
    let empty = work.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let r = output_of(
        cargo_cast_cmd(work.path(), &["build", empty.to_str().unwrap()]),
        Vec::new(),
    );
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains("neither a Cargo.toml nor a Containerfile")
            && r.stderr.contains("cargo cast new"),
        "{}",
        r.stderr
    );
    let r = output_of(
        cargo_cast_cmd(work.path(), &["build", ".", "--memory", "lots"]),
        Vec::new(),
    );
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("512M"), "{}", r.stderr);
    // Memory that cannot boot is refused where it is given.
    let r = output_of(
        cargo_cast_cmd(work.path(), &["build", ".", "--memory", "32M"]),
        Vec::new(),
    );
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("'--memory <SIZE>': below the minimum"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_new_crate_installs_and_runs() {
    let registry = Registry::start();
    let base = push_busybox(&registry);
    let work = tempfile::Builder::new()
        .prefix("cast-e2e-new-")
        .tempdir()
        .unwrap();
    let cache = work.path().join("cache");
    let krate = work.path().join("hello-cast");
    let mut cmd = cargo_cast_cmd(&cache, &["new", "hello-cast", "--path"]);
    cmd.arg(&krate);
    let r = output_of(cmd, Vec::new());
    assert_eq!(r.code, 0, "{}", r.stderr);
    for f in [
        "Cargo.toml",
        "build.rs",
        "src/main.rs",
        "Containerfile",
        ".containerignore",
    ] {
        assert!(krate.join(f).is_file(), "{f} missing");
    }
    let manifest = std::fs::read_to_string(krate.join("Cargo.toml")).unwrap();
    assert!(manifest.contains("[package.metadata.cast]"), "{manifest}");
    // The template's base image is on Docker Hub; tests use the local registry.
    let containerfile = std::fs::read_to_string(krate.join("Containerfile")).unwrap();
    let first_line = containerfile.lines().next().unwrap().to_owned();
    std::fs::write(
        krate.join("Containerfile"),
        containerfile.replace(&first_line, &format!("FROM {base}")),
    )
    .unwrap();
    std::fs::write(
        krate.join("Cargo.toml"),
        manifest.replace("# cpus = 2", "cpus = 1"),
    )
    .unwrap();

    // `cargo install` (debug profile: reuses the shared e2e build) into a temp root.
    let root = work.path().join("root");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    build_env(&mut cmd, &cache);
    cmd.args(["install", "--quiet", "--debug", "--offline", "--path"])
        .arg(&krate)
        .arg("--root")
        .arg(&root);
    let r = build_output(cmd, BUILD_BOUND);
    assert_eq!(r.code, 0, "cargo install failed:\n{}", r.stderr);

    let installed = root.join("bin/hello-cast");
    let r = run_tool(&installed, &cache, &["from", "an", "installed", "binary"]);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    assert_eq!(
        r.stdout_text(),
        "hello from a microVM: from an installed binary\n"
    );
}

#[test]
fn per_binary_tables_cast_each_binary() {
    let work = tempfile::Builder::new()
        .prefix("cast-e2e-bins-")
        .tempdir()
        .unwrap();
    let cache = work.path().join("cache");
    let krate = work.path().join("two");
    let mut cmd = cargo_cast_cmd(&cache, &["new", "two", "-q", "--path"]);
    cmd.arg(&krate);
    assert_eq!(output_of(cmd, Vec::new()).code, 0);
    std::fs::create_dir_all(krate.join("src/bin")).unwrap();
    std::fs::copy(krate.join("src/main.rs"), krate.join("src/bin/other.rs")).unwrap();
    std::fs::copy("/bin/busybox", krate.join("busybox")).unwrap();
    std::fs::write(
        krate.join("Containerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\n\
         ENTRYPOINT [\"/bin/busybox\", \"sh\", \"-c\", \"echo $WHO on $(/bin/busybox hostname): $*\", \"sh\"]\n",
    )
    .unwrap();
    let manifest = std::fs::read_to_string(krate.join("Cargo.toml")).unwrap();
    let tables = |other_memory: &str| {
        manifest.replace(
            "# cpus = 2\n# memory = \"512M\"",
            &format!(
                "cpus = 1\nenv = {{ WHO = \"nobody\" }}\n\n[package.metadata.cast.bin.two]\n\
                 env = {{ WHO = \"two\" }}\n\n[package.metadata.cast.bin.other]\n\
                 env = {{ WHO = \"other\" }}\nname = \"other-vm\"\nmemory = \"{other_memory}\""
            ),
        )
    };
    let build = || {
        let mut cmd = cargo_cast_cmd(&cache, &["build", "--manifest-path"]);
        cmd.arg(krate.join("Cargo.toml"));
        // Exported for running executables: never baked into a build.
        cmd.env("CAST_MEMORY", "2G");
        build_output(cmd, BUILD_BOUND)
    };
    // Memory that cannot boot fails the build naming the key and its table, before
    // any image work.
    std::fs::write(krate.join("Cargo.toml"), tables("32M")).unwrap();
    let out = build();
    assert_ne!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("memory = \"32M\" in [package.metadata.cast.bin.other] of ")
            && out.stderr.contains("below the minimum"),
        "{}",
        out.stderr
    );
    std::fs::write(krate.join("Cargo.toml"), tables("1.5G")).unwrap();
    let out = build();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("note: CAST_MEMORY is set but a build does not read it"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("Baked cpus = 1 (cpus in [package.metadata.cast] of ")
            && out
                .stderr
                .contains("memory = 1536M (memory in [package.metadata.cast.bin.other] of "),
        "{}",
        out.stderr
    );
    let bin = cast_tests::fixtures::e2e_target().join("debug");
    let r = run_tool(&bin.join("two"), &cache, &["x"]);
    assert_eq!(
        (r.code, r.stdout_text()),
        (0, "two on two: x\n".into()),
        "{}",
        r.stderr
    );
    let r = run_tool(&bin.join("other"), &cache, &[]);
    assert_eq!(
        (r.code, r.stdout_text()),
        (0, "other on other-vm:\n".into()),
        "{}",
        r.stderr
    );
}
