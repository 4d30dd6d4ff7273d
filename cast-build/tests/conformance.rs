//! Dockerfile conformance: one minimal Containerfile per behaviour where
//! BuildKit is the reference, run through the path of `cargo cast info
//! --json` (file on disk → parse → evaluate → JSON summary). Each case says
//! what `info` must show, or the error (with `file:line:column`) it must give.

use std::path::Path;

use cast_build::info;
use serde_json::Value;

/// What a case expects.
enum Expect {
    /// JSON pointers into the info summary and their values.
    Json(&'static [(&'static str, &'static str)]),
    /// Succeeds with a warning containing this text.
    Warns(&'static str),
    /// Fails: the message contains `Containerfile:<this>`.
    Error(&'static str),
}

use Expect::{Error, Json, Warns};

const PATH_AFTER: &str = "/app/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn cases() -> Vec<(&'static str, &'static str, Expect)> {
    vec![
        // 1. An escaped escape at the end of a line is not a continuation.
        (
            "escaped backslash ends the line",
            "FROM scratch\nENV C=trailing\\\\\nENV D=x\n",
            Json(&[("/env/C", "trailing\\"), ("/env/D", "x")]),
        ),
        (
            "escaped backtick ends the line",
            "# escape=`\nFROM scratch\nENV C=a``\nENV D=x\n",
            Json(&[("/env/C", "a`"), ("/env/D", "x")]),
        ),
        (
            "a plain continuation goes on",
            "FROM scratch\nENV C=a \\\n  D=x\n",
            Json(&[("/env/C", "a"), ("/env/D", "x")]),
        ),
        (
            "comment lines inside a continuation are skipped",
            "FROM scratch\nENV C=a \\\n# note\n  D=x\n",
            Json(&[("/env/D", "x")]),
        ),
        // 2. Heredocs anywhere in a RUN line.
        (
            "heredoc in a pipeline",
            "FROM scratch\nRUN cat <<EOF | tr a-z A-Z > /x\nhello\nEOF\nENV A=1\n",
            Json(&[("/env/A", "1")]),
        ),
        (
            "two heredocs on one line",
            "FROM scratch\nRUN <<ONE cat - && <<TWO cat -\none\nONE\ntwo\nTWO\nENV A=1\n",
            Json(&[("/env/A", "1")]),
        ),
        (
            "heredoc with a file descriptor",
            "FROM scratch\nRUN 3<<EOF cat /dev/fd/3\nhello\nEOF\nENV A=1\n",
            Json(&[("/env/A", "1")]),
        ),
        (
            "space after <<",
            "FROM scratch\nRUN << EOF\nhello\nEOF\nENV A=1\n",
            Json(&[("/env/A", "1")]),
        ),
        (
            "chomped heredoc ends at a tab-indented delimiter",
            "FROM scratch\nRUN <<-EOF\n\thello\n\tEOF\nENV A=1\n",
            Json(&[("/env/A", "1")]),
        ),
        (
            "unterminated heredoc is reported where it starts",
            "FROM scratch\nRUN cat <<EOF\nhello\n",
            Error(":2:9: unterminated heredoc <<\"EOF\""),
        ),
        (
            "heredoc is not read in JSON form",
            "FROM scratch\nRUN [\"cat\", \"<<EOF\"]\nENV A=1\n",
            Json(&[("/env/A", "1")]),
        ),
        // 3. --from of a later stage or of the stage itself.
        (
            "--from a later stage",
            "FROM scratch AS a\nCOPY --from=b / /\nFROM scratch AS b\n",
            Error(":2:1: COPY --from=b names a stage defined later"),
        ),
        (
            "--from the stage itself",
            "FROM scratch AS a\nCOPY --from=a / /\n",
            Error(":2:1: COPY --from=a names this stage itself (a cycle)"),
        ),
        (
            "--from an earlier stage",
            "FROM scratch AS a\nFROM scratch\nCOPY --from=a / /\nENV A=1\n",
            Json(&[("/env/A", "1")]),
        ),
        // 4. An empty --from.
        (
            "--from of an unset ARG",
            "FROM scratch\nARG UNSET\nCOPY --from=$UNSET / /\n",
            Error(":3:1: COPY --from=$UNSET is empty"),
        ),
        (
            "--from= written empty",
            "FROM scratch\nCOPY --from= / /\n",
            Error(":2:6: COPY --from needs a value"),
        ),
        // 5. Docker's default PATH for a base without one.
        (
            "scratch gets the default PATH",
            "FROM scratch\nENV PATH=/app/bin:$PATH\n",
            Json(&[("/env/PATH", PATH_AFTER)]),
        ),
        // 6. TARGETSTAGE.
        (
            "TARGETSTAGE names the target",
            "FROM scratch AS first\nFROM scratch AS final\nARG TARGETSTAGE\nENV T=$TARGETSTAGE\n",
            Json(&[("/env/T", "final")]),
        ),
        // 7. `--` ends the flags.
        (
            "-- ends the flags",
            "FROM scratch\nCOPY -- --from=x /y\nENV A=1\n",
            Json(&[("/env/A", "1")]),
        ),
        // 8. Which malformed JSON is shell form and which is an error.
        (
            "nested JSON array is an error",
            "FROM scratch\nCMD [ \"echo\", [ \"nested\" ] ]\n",
            Error(":2:5: when using JSON array syntax, arrays must be comprised of strings only"),
        ),
        (
            "a number in a JSON array is an error",
            "FROM scratch\nENTRYPOINT [\"a\", 1]\n",
            Error(":2:12: when using JSON array syntax"),
        ),
        (
            "invalid JSON is shell form",
            "FROM scratch\nCMD [\"a\",]\n",
            Json(&[("/cmd/0", "/bin/sh"), ("/cmd/2", "[\"a\",]")]),
        ),
        (
            "JSON followed by text is shell form",
            "FROM scratch\nCMD [\"a\"] b\n",
            Json(&[("/cmd/2", "[\"a\"] b")]),
        ),
        // 9. Symbolic --chmod.
        (
            "symbolic --chmod",
            "FROM scratch\nCOPY --chmod=u=rwx,go=rx a /b\nCOPY --chmod=a+X a /c\nENV A=1\n",
            Json(&[("/env/A", "1")]),
        ),
        (
            "bad symbolic --chmod",
            "FROM scratch\nCOPY --chmod=u+q a /b\n",
            Error(":2:1: invalid --chmod=u+q"),
        ),
        (
            "octal --chmod out of range",
            "FROM scratch\nCOPY --chmod=17777 a /b\n",
            Error(":2:1: invalid chmod parameter: '17777'"),
        ),
        // 10. EXPOSE with a host mapping: a warning, the container port counts.
        (
            "EXPOSE host:container",
            "FROM scratch\nEXPOSE 8080:80/tcp\n",
            Json(&[("/exposed_ports/0", "80/tcp")]),
        ),
        (
            "EXPOSE ip:host:container",
            "FROM scratch\nEXPOSE 0.0.0.0:80:80\n",
            Warns("only \"80\" is exposed"),
        ),
        // 11. ONBUILD and HEALTHCHECK.
        (
            "ONBUILD triggers run in a child stage",
            "FROM scratch AS base\nONBUILD ENV X=from-trigger\nFROM base\n",
            Json(&[("/env/X", "from-trigger")]),
        ),
        (
            "ONBUILD FROM is refused",
            "FROM scratch\nONBUILD FROM x\n",
            Error(":2:9: FROM isn't allowed as an ONBUILD trigger"),
        ),
        (
            "ONBUILD MAINTAINER is refused",
            "FROM scratch\nONBUILD MAINTAINER me\n",
            Error(":2:9: MAINTAINER isn't allowed as an ONBUILD trigger"),
        ),
        (
            "ONBUILD ONBUILD is refused",
            "FROM scratch\nONBUILD ONBUILD RUN x\n",
            Error(":2:9: ONBUILD ONBUILD is not allowed"),
        ),
        (
            "HEALTHCHECK bad duration",
            "FROM scratch\nHEALTHCHECK --interval=5x CMD true\n",
            Error(":2:13: invalid --interval=\"5x\": not a duration"),
        ),
        (
            "HEALTHCHECK interval under 1ms",
            "FROM scratch\nHEALTHCHECK --timeout=500us CMD true\n",
            Error(":2:13: Interval \"timeout\" cannot be less than 1ms"),
        ),
        (
            "HEALTHCHECK negative retries",
            "FROM scratch\nHEALTHCHECK --retries=-1 CMD true\n",
            Error(":2:13: --retries cannot be negative (-1)"),
        ),
        (
            "HEALTHCHECK good options",
            "FROM scratch\nHEALTHCHECK --interval=1m30s --retries=3 CMD true\n",
            Warns("HEALTHCHECK is ignored"),
        ),
        (
            "HEALTHCHECK NONE takes no arguments",
            "FROM scratch\nHEALTHCHECK NONE x\n",
            Error(":2:18: HEALTHCHECK NONE takes no arguments"),
        ),
        // Neighbours: the front end's bounds (issue 14).
        (
            "continuation at the end of the file",
            "FROM scratch\nENV A=1 \\",
            Warns("ends with a line continuation"),
        ),
        (
            "NUL byte",
            "FROM scratch\nENV A=a\0b\n",
            Error(":2:8: NUL byte in the Containerfile"),
        ),
        ("deep nesting", NESTED, Error(":2:1: cannot expand")),
        (
            "duplicate stage name",
            "FROM scratch AS x\nFROM scratch AS x\n",
            Error(":2:17: duplicate stage name 'x'"),
        ),
    ]
}

const NESTED: &str = "FROM scratch\nENV A=${A:-${A:-${A:-${A:-${A:-${A:-${A:-${A:-${A:-${A:-${A:-${A:-${A:-${A:-${A:-${A:-${A:-${A:-${A:-${A:-${A:-${A:-${A:-${A:-${A:-${A:-${A:-${A:-${A:-${A:-${A:-${A:-${A:-${A:-${A:-${A:-${A:-${A:-${A:-${A:-${A:-${A:-${A:-${A:-${A:-${A:-${A:-${A:-${A:-${A:-${A:-${A:-${A:-${A:-${A:-${A:-${A:-${A:-${A:-${A:-${A:-${A:-${A:-${A:-${A:-x}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}\n";

/// Runs `info` on `text` written to `dir/Containerfile`.
fn run(dir: &Path, text: &[u8]) -> Result<Value, String> {
    let path = dir.join("Containerfile");
    std::fs::write(&path, text).unwrap();
    info::info(&path, &[])
        .map(|i| serde_json::from_str(&i.to_json()).unwrap())
        .map_err(|e| e.to_string())
}

#[test]
fn behaves_as_buildkit() {
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for (name, text, expect) in cases() {
        let got = run(dir.path(), text.as_bytes());
        let ok = match (&expect, &got) {
            (Json(checks), Ok(v)) => checks
                .iter()
                .all(|(ptr, want)| v.pointer(ptr).and_then(Value::as_str) == Some(want)),
            (Warns(w), Ok(v)) => v["warnings"]
                .as_array()
                .is_some_and(|ws| ws.iter().any(|x| x.as_str().is_some_and(|s| s.contains(w)))),
            (Error(e), Err(msg)) => msg.contains(&format!("Containerfile{e}")),
            _ => false,
        };
        if !ok {
            failures.push(format!("{name}: got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn bounds_are_located_errors() {
    let dir = tempfile::tempdir().unwrap();
    // Invalid UTF-8 names its line and column.
    let e = run(dir.path(), b"FROM scratch\nENV A=\xff\n").unwrap_err();
    assert!(e.contains("Containerfile:2:7: invalid UTF-8"), "{e}");
    // A file larger than the bound is refused without reading it all.
    let big = vec![b'#'; cast_build::containerfile::MAX_FILE_BYTES + 10];
    let e = run(dir.path(), &big).unwrap_err();
    assert!(
        e.contains("Containerfile:1:1: the file is larger than 8 MiB"),
        "{e}"
    );
    // A doubling ARG stops with an error instead of eating memory.
    let mut text = String::from("FROM scratch\nARG A0=xxxxxxxxxxxxxxxx\n");
    for i in 1..=40 {
        text.push_str(&format!("ARG A{i}=${{A{p}}}${{A{p}}}\n", p = i - 1));
    }
    let e = run(dir.path(), text.as_bytes()).unwrap_err();
    assert!(e.contains("Containerfile:") && e.contains("MiB"), "{e}");
    // Thousands of nested substitutions: an error, not a stack overflow.
    let deep = format!(
        "FROM scratch\nENV A={}x{}\n",
        "${A:-".repeat(3000),
        "}".repeat(3000)
    );
    let e = run(dir.path(), deep.as_bytes()).unwrap_err();
    assert!(
        e.contains("Containerfile:2:1: ") && e.contains("nested deeper"),
        "{e}"
    );
    // A 1 MB token is not echoed whole, and control characters are escaped.
    let token = format!("FROM scratch\nENV {}\u{1}=1 B\n", "A".repeat(1 << 20));
    let e = run(dir.path(), token.as_bytes()).unwrap_err();
    assert!(e.len() < 400, "{} bytes", e.len());
    let e = run(dir.path(), b"FROM scratch\nENV A=1 \x01\x02\n").unwrap_err();
    assert!(e.contains("\\u{1}\\u{2}"), "{e}");
    // An ENV value with a NUL from a build argument is refused at the ENV.
    let path = dir.path().join("Containerfile");
    std::fs::write(&path, "FROM scratch\nARG V\nENV A=$V\n").unwrap();
    let e = info::info(&path, &[("V".into(), "a\0b".into())]).unwrap_err();
    assert!(
        e.to_string()
            .contains("Containerfile:3:1: ENV \"A\" cannot hold a NUL byte"),
        "{e}"
    );
}

#[test]
fn many_stages_stay_linear() {
    // 100,000 stages each naming the one before: parsed and evaluated in one
    // pass (name lookups are constant time); this would take minutes if quadratic.
    let mut text = String::from("FROM scratch AS s0\n");
    for i in 1..100_000 {
        text.push_str(&format!("FROM s{} AS s{i}\n", i - 1));
    }
    let dir = tempfile::tempdir().unwrap();
    let v = run(dir.path(), text.as_bytes()).unwrap();
    assert_eq!(v["stages"].as_array().map(Vec::len), Some(100_000));
}
