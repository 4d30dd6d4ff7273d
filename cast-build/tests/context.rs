//! Build context: ignore-file choice, source resolution (paths, globs,
//! directories), refusal of anything outside the context, files used.

use std::fs;
use std::path::Path;

use cast_build::{BuildContext, ResolveError};

fn tree(files: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in files {
        let path = dir.path().join(f);
        if let Some(stripped) = f.strip_suffix('/') {
            fs::create_dir_all(dir.path().join(stripped)).unwrap();
            continue;
        }
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, f.as_bytes()).unwrap();
    }
    dir
}

fn rels(ctx: &BuildContext, src: &str) -> Vec<String> {
    ctx.resolve(src)
        .unwrap_or_else(|e| panic!("{src}: {e}"))
        .into_iter()
        .map(|r| r.rel)
        .collect()
}

#[test]
fn containerignore_is_preferred() {
    let dir = tree(&["a.txt", "b.txt", ".dockerignore", ".containerignore"]);
    fs::write(dir.path().join(".dockerignore"), "a.txt\n").unwrap();
    fs::write(dir.path().join(".containerignore"), "b.txt\n").unwrap();
    let ctx = BuildContext::open(dir.path()).unwrap();
    assert_eq!(
        ctx.ignore_file().unwrap().file_name().unwrap(),
        ".containerignore"
    );
    assert!(ctx.is_ignored("b.txt") && !ctx.is_ignored("a.txt"));
    fs::remove_file(dir.path().join(".containerignore")).unwrap();
    let ctx = BuildContext::open(dir.path()).unwrap();
    assert!(ctx.is_ignored("a.txt") && !ctx.is_ignored("b.txt"));
}

#[test]
fn plain_paths_and_directories() {
    let dir = tree(&["app/main.rs", "app/lib/x.rs", "README.md", "empty/"]);
    let ctx = BuildContext::open(dir.path()).unwrap();
    assert_eq!(rels(&ctx, "README.md"), ["README.md"]);
    assert_eq!(rels(&ctx, "/app/"), ["app"]);
    assert_eq!(rels(&ctx, "./app/lib/../main.rs"), ["app/main.rs"]);
    assert_eq!(rels(&ctx, "."), ["."]);
    assert!(ctx.resolve("app").unwrap()[0].is_dir);
    assert!(matches!(
        ctx.resolve("nope.txt"),
        Err(ResolveError::NotFound { .. })
    ));
    assert_eq!(
        ctx.resolve("nope.txt").unwrap_err().to_string(),
        "\"nope.txt\" not found in the build context"
    );
}

#[test]
fn globs_match_with_filepath_rules() {
    let dir = tree(&[
        "a.rs",
        "b.rs",
        "c.txt",
        "src/d.rs",
        "src/sub/e.rs",
        "dir1/f",
        "dir2/g",
    ]);
    let ctx = BuildContext::open(dir.path()).unwrap();
    assert_eq!(rels(&ctx, "*.rs"), ["a.rs", "b.rs"]);
    assert_eq!(rels(&ctx, "src/*.rs"), ["src/d.rs"]);
    assert_eq!(rels(&ctx, "?.txt"), ["c.txt"]);
    assert_eq!(rels(&ctx, "dir*"), ["dir1", "dir2"]);
    assert_eq!(
        rels(&ctx, "**/*.rs"),
        ["a.rs", "b.rs", "src/d.rs", "src/sub/e.rs"]
    );
    assert_eq!(
        ctx.resolve("*.go").unwrap_err().to_string(),
        "no files match \"*.go\""
    );
}

/// The files a COPY of `src` (minus `exclude`) reads, relative to the context.
fn used(ctx: &BuildContext, src: &str, exclude: &[String]) -> Vec<String> {
    ctx.files_used(&ctx.resolve(src).unwrap(), exclude)
        .unwrap()
        .iter()
        .map(|p| {
            p.strip_prefix(ctx.root())
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

#[test]
fn ignored_files_are_not_sources() {
    let dir = tree(&["secret.key", "src/a.rs", "src/a.tmp", "target/x"]);
    fs::write(
        dir.path().join(".dockerignore"),
        "*.key\nsrc/*.tmp\ntarget\n",
    )
    .unwrap();
    let ctx = BuildContext::open(dir.path()).unwrap();
    assert_eq!(
        ctx.resolve("secret.key").unwrap_err().to_string(),
        "\"secret.key\" is excluded by .dockerignore"
    );
    assert_eq!(rels(&ctx, "src/*"), ["src/a.rs"]);
    assert!(ctx.resolve("target/x").is_err());
    assert_eq!(
        used(&ctx, ".", &[]),
        ["", ".dockerignore", "src", "src/a.rs"]
    );
}

#[test]
fn an_ignore_file_named_after_the_containerfile_wins() {
    let dir = tree(&["a.txt", "b.txt", "build/app.Containerfile", "Containerfile"]);
    fs::write(dir.path().join(".dockerignore"), "a.txt\n").unwrap();
    fs::write(
        dir.path().join("build/app.Containerfile.containerignore"),
        "b.txt\n",
    )
    .unwrap();
    fs::write(
        dir.path().join("build/app.Containerfile.dockerignore"),
        "*\n",
    )
    .unwrap();
    let own = BuildContext::open_for(
        dir.path(),
        Some(&dir.path().join("build/app.Containerfile")),
    )
    .unwrap();
    assert_eq!(
        rels(&own, "a.txt"),
        ["a.txt"],
        "the context's file is not read"
    );
    assert_eq!(
        own.resolve("b.txt").unwrap_err().to_string(),
        "\"b.txt\" is excluded by app.Containerfile.containerignore"
    );
    // A Containerfile without one of its own uses the context's.
    let plain =
        BuildContext::open_for(dir.path(), Some(&dir.path().join("Containerfile"))).unwrap();
    assert!(plain.resolve("a.txt").is_err());
    assert_eq!(rels(&plain, "b.txt"), ["b.txt"]);
}

#[test]
fn files_used_honour_exclude_patterns() {
    let dir = tree(&["app/a.rs", "app/b.md", "app/sub/c.md"]);
    let ctx = BuildContext::open(dir.path()).unwrap();
    assert_eq!(
        used(&ctx, "app", &["*.md".into()]),
        ["app", "app/a.rs", "app/sub", "app/sub/c.md"]
    );
}

#[test]
fn sources_outside_the_context_are_refused() {
    let outer = tree(&["outside.txt", "ctx/inside.txt"]);
    let ctx = BuildContext::open(&outer.path().join("ctx")).unwrap();
    for src in ["../outside.txt", "a/../../outside.txt", ".."] {
        assert_eq!(
            ctx.resolve(src).unwrap_err().to_string(),
            format!("{src:?} is outside the build context")
        );
    }
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(
            outer.path().join("outside.txt"),
            outer.path().join("ctx/link"),
        )
        .unwrap();
        assert!(matches!(
            ctx.resolve("link"),
            Err(ResolveError::Outside { .. })
        ));
        assert!(matches!(
            ctx.resolve("li*"),
            Err(ResolveError::Outside { .. })
        ));
    }
}

#[test]
fn missing_context_is_an_error() {
    let e = BuildContext::open(Path::new("/nonexistent/ctx")).unwrap_err();
    assert_eq!(e.to_string(), "cannot open build context /nonexistent/ctx");
}
