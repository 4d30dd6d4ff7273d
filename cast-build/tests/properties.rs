//! Property tests of the Containerfile front end with generated inputs:
//! whatever the text, parsing and evaluating never panic, finish quickly
//! (inputs are bounded, so a case is milliseconds), and every error names
//! `file:line:column` inside the file.

use std::path::Path;

use cast_build::{evaluate, Containerfile, EvalError, EvalOptions, NoBaseImages};
use proptest::prelude::*;

/// Pieces Containerfiles are made of, tricky ones included.
const PIECES: &[&str] = &[
    "FROM ",
    "scratch",
    " AS ",
    "s1",
    "RUN ",
    "COPY ",
    "ADD ",
    "ENV ",
    "ARG ",
    "LABEL ",
    "CMD ",
    "ENTRYPOINT ",
    "SHELL ",
    "EXPOSE ",
    "ONBUILD ",
    "HEALTHCHECK ",
    "USER ",
    "WORKDIR ",
    "VOLUME ",
    "STOPSIGNAL ",
    "MAINTAINER ",
    "--from=",
    "--chmod=",
    "--interval=",
    "--",
    " -- ",
    "<<",
    "<<-",
    "3<<",
    "EOF",
    "'EOF'",
    "\"",
    "'",
    "\\",
    "`",
    "$",
    "${",
    "}",
    ":-",
    "#",
    "=",
    "[",
    "]",
    ",",
    " ",
    "\t",
    "\n",
    "\r\n",
    "\\\n",
    "\\\\\n",
    "a",
    "/x",
    "80:80",
    "u+x",
    "\u{e9}",
    "\0",
    "# escape=`\n",
    "# syntax=x\n",
    "NONE",
    "CMD",
];

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(PIECES), 0..80).prop_map(|v| v.concat())
}

/// `Containerfile:L:C: ...` with L inside the text (one past its end allowed).
fn located(message: &str, text_lines: usize) -> bool {
    let Some(rest) = message.strip_prefix("Containerfile:") else {
        return false;
    };
    let mut parts = rest.splitn(3, ':');
    let line: usize = parts.next().and_then(|l| l.parse().ok()).unwrap_or(0);
    let column: usize = parts.next().and_then(|c| c.parse().ok()).unwrap_or(0);
    (1..=text_lines + 1).contains(&line) && column >= 1
}

fn check(text: &str) -> Result<(), TestCaseError> {
    let lines = text.split('\n').count();
    match Containerfile::parse(Path::new("Containerfile"), text) {
        Err(e) => prop_assert!(located(&e.to_string(), lines), "{e}"),
        Ok(cf) => match evaluate(&cf, &EvalOptions::default(), &mut NoBaseImages) {
            Ok(_) => {}
            Err(EvalError::Instruction(e)) => {
                prop_assert!(located(&e.to_string(), lines), "{e}");
            }
            Err(e) => prop_assert!(false, "unlocated error: {e}"),
        },
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, max_shrink_iters: 2000, ..ProptestConfig::default() })]

    #[test]
    fn generated_containerfiles(body in text()) {
        check(&body)?;
        check(&format!("FROM scratch\n{body}"))?;
    }

    #[test]
    fn arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let lines = bytes.split(|b| *b == b'\n').count();
        if let Err(e) = Containerfile::parse_bytes(Path::new("Containerfile"), &bytes) {
            prop_assert!(located(&e.to_string(), lines), "{e}");
        }
    }

    #[test]
    fn substitutions(word in prop::collection::vec(
        prop::sample::select(&["$", "{", "}", "A", ":-", ":+", "?", "#", "%", "/", "*", "\\", "'", "\"", "x"][..]),
        0..60,
    )) {
        let word = word.concat();
        let text = format!("FROM scratch\nARG A=ab\nENV B={word}\n");
        check(&text)?;
    }
}
