//! The `cargo cast` command line without VMs: help with examples, `info` as table and
//! JSON, shell completions, and `new`'s refusals that say what to do instead.

use std::process::Command;

use cast_tests::{cargo_cast, output_of, Output};

fn cast(args: &[&str], dir: &std::path::Path) -> Output {
    let mut cmd = Command::new(cargo_cast());
    cmd.arg("cast").args(args).current_dir(dir);
    output_of(cmd, Vec::new())
}

#[test]
fn help_has_examples() {
    let tmp = tempfile::tempdir().unwrap();
    for sub in [
        "build",
        "run",
        "new",
        "info",
        "sign",
        "cache",
        "completions",
    ] {
        let out = cast(&[sub, "--help"], tmp.path());
        assert_eq!(out.code, 0, "{sub}: {}", out.stderr);
        assert!(
            out.stdout_text().contains("Examples:"),
            "{sub}: {}",
            out.stdout_text()
        );
    }
    for sub in ["df", "prune"] {
        let out = cast(&["cache", sub, "--help"], tmp.path());
        assert_eq!(out.code, 0, "cache {sub}: {}", out.stderr);
        assert!(out.stdout_text().contains("Examples:"), "cache {sub}");
    }
    let out = cast(&["--help"], tmp.path());
    assert!(out
        .stdout_text()
        .contains("cargo cast build ./image -o my-tool"));
}

#[test]
fn info_shows_the_run_config() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("Containerfile"),
        "FROM scratch\nARG V=1\nENV VERSION=$V\nENTRYPOINT [\"/app\"]\nCMD [\"--serve\"]\n",
    )
    .unwrap();
    let out = cast(&["info", "--json", "--build-arg", "V=2"], tmp.path());
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["entrypoint"], serde_json::json!(["/app"]));
    assert_eq!(v["env"]["VERSION"], "2");
    let out = cast(&["info", "."], tmp.path());
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout_text().contains("/app"), "{}", out.stdout_text());
    let out = cast(&["info", "--build-arg", "novalue"], tmp.path());
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("expected NAME=VALUE"), "{}", out.stderr);
}

#[test]
fn completions_cover_the_subcommands() {
    let tmp = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let out = cast(&["completions", shell], tmp.path());
        assert_eq!(out.code, 0, "{shell}: {}", out.stderr);
        let text = out.stdout_text();
        for word in ["build", "memory", "completions"] {
            assert!(text.contains(word), "{shell} lacks {word}");
        }
    }
}

#[test]
fn new_refuses_bad_names_and_existing_directories() {
    let tmp = tempfile::tempdir().unwrap();
    let out = cast(&["new", "My Tool"], tmp.path());
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("try \"my-tool\""), "{}", out.stderr);
    std::fs::create_dir(tmp.path().join("taken")).unwrap();
    std::fs::write(tmp.path().join("taken/file"), "x").unwrap();
    let out = cast(&["new", "taken"], tmp.path());
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("not empty"), "{}", out.stderr);
    let out = cast(&["new", "fresh", "-q"], tmp.path());
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stderr, "");
    let manifest = std::fs::read_to_string(tmp.path().join("fresh/Cargo.toml")).unwrap();
    assert!(manifest.contains("name = \"fresh\""), "{manifest}");
    assert!(manifest.contains("cast-build = { path = "), "{manifest}");
}
