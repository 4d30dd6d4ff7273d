//! Ignore patterns, mirroring the examples of Docker's `.dockerignore`
//! documentation (Go `filepath.Match` plus `**`, `!`, last match wins), and
//! the cases where Docker differs from gitignore.

use cast_build::ignore::{clean, IgnoreMatcher};

fn matcher(text: &str) -> IgnoreMatcher {
    IgnoreMatcher::parse(text).unwrap()
}

fn check(text: &str, ignored: &[&str], kept: &[&str]) {
    let m = matcher(text);
    for p in ignored {
        assert!(m.is_ignored(p), "{p:?} should be ignored by {text:?}");
    }
    for p in kept {
        assert!(!m.is_ignored(p), "{p:?} should be kept by {text:?}");
    }
}

#[test]
fn documented_example() {
    let text = "# comment\n*/temp*\n*/*/temp*\ntemp?\n";
    check(
        text,
        &[
            "somedir/temporary.txt",
            "somedir/temp",
            "somedir/subdir/temporary.txt",
            "tempa",
            "tempb",
            "somedir/temp/inside",
        ],
        &["temporary.txt", "temp", "tempab", "a/b/c/temp", "# comment"],
    );
}

#[test]
fn double_star() {
    check("**/*.go\n", &["main.go", "a/b/c.go"], &["main.rs", "go"]);
    check(
        "a/**/b\n",
        &["a/b", "a/x/b", "a/x/y/b", "a/x/b/file"],
        &["b", "x/a/b"],
    );
    check("target/**\n", &["target/debug/x"], &["target", "targets/x"]);
    check("**\n", &["anything", "a/b"], &[]);
}

#[test]
fn exceptions_last_match_wins() {
    check(
        "*.md\n!README.md\n",
        &["CHANGES.md"],
        &["README.md", "docs/CHANGES.md"],
    );
    check(
        "*.md\n!README*.md\nREADME-secret.md\n",
        &["CHANGES.md", "README-secret.md"],
        &["README.md", "README-x.md"],
    );
    check(
        "*.md\nREADME-secret.md\n!README*.md\n",
        &["CHANGES.md"],
        &["README-secret.md", "README.md"],
    );
}

#[test]
fn a_matching_directory_excludes_its_contents() {
    check(
        "node_modules\n",
        &["node_modules", "node_modules/a/b.js"],
        &["src/node_modules"],
    );
    // Unlike gitignore, a pattern without a slash is anchored at the root.
    check("*.log\n", &["x.log"], &["logs/x.log"]);
    // An exception below an ignored directory re-includes the file.
    check(
        "docs\n!docs/keep.md\n",
        &["docs/other.md"],
        &["docs/keep.md"],
    );
}

#[test]
fn leading_slash_and_dot_are_cleaned() {
    check(
        "/secret\n./build/\nsrc/../tmp\n",
        &["secret", "build/out", "tmp"],
        &["src/tmp", "a/secret"],
    );
    assert_eq!(clean("./a//b/../c/"), "a/c");
    assert_eq!(clean("/../x"), "/x");
    assert_eq!(clean("../x"), "../x");
    assert_eq!(clean(""), ".");
}

#[test]
fn whitespace_comments_and_classes() {
    check("  spaced.txt  \n#hidden\n", &["spaced.txt"], &["#hidden"]);
    check(" # not a comment\n", &["# not a comment"], &[]);
    check(
        "file[0-9].txt\n",
        &["file1.txt"],
        &["filea.txt", "file10.txt"],
    );
    check("file[^0-9].txt\n", &["filea.txt"], &["file1.txt"]);
    check("a?c\n", &["abc"], &["a/c", "ac"]);
    check("x\\*y\n", &["x*y"], &["xzy"]);
    check("a.b+c(d)\n", &["a.b+c(d)"], &["aXb+c(d)"]);
}

#[test]
fn the_context_root_is_never_ignored() {
    assert!(!matcher("*\n").is_ignored("."));
    assert!(matcher("*\n").is_ignored("x"));
}

#[test]
fn bad_patterns_are_errors() {
    assert_eq!(
        IgnoreMatcher::parse("ok\n!\n").unwrap_err().to_string(),
        "line 2: illegal exclusion pattern \"!\""
    );
    assert!(IgnoreMatcher::parse("file[0-9\n")
        .unwrap_err()
        .to_string()
        .starts_with("line 1: bad pattern \"file[0-9\""));
}

#[test]
fn exact_matching_for_globs() {
    let m = IgnoreMatcher::from_patterns(&["src/*.rs"]).unwrap();
    assert!(m.matches_exactly("src/main.rs"));
    assert!(!m.matches_exactly("src/main.rs/inner"));
    assert!(m.is_ignored("src/main.rs/inner"));
}
