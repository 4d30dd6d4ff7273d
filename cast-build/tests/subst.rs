//! Substitution edge cases, mirroring BuildKit's shell lexer test table.

use cast_build::subst::{expand_word, expand_words, SubstError};

fn env(name: &str) -> Option<String> {
    match name {
        "PWD" => Some("/home".into()),
        "SHELL" => Some("bash".into()),
        "KOREAN" => Some("한국어".into()),
        "NULL" => Some(String::new()),
        "LIST" => Some("80  443/udp".into()),
        _ => None,
    }
}

fn ok(word: &str) -> String {
    expand_word(word, '\\', &env).unwrap_or_else(|e| panic!("{word:?}: {e}"))
}

fn err(word: &str) -> SubstError {
    expand_word(word, '\\', &env).expect_err(word)
}

#[test]
fn quotes_and_escapes() {
    let cases = [
        ("hello", "hello"),
        ("he'll'o", "hello"),
        ("he\\'llo", "he'llo"),
        ("abc\\tdef", "abctdef"),
        ("\"abc\\tdef\"", "abc\\tdef"),
        ("\"abc\\\\tdef\"", "abc\\tdef"),
        ("'abc\\tdef'", "abc\\tdef"),
        ("hello\\", "hello"),
        ("hello\\\\", "hello\\"),
        ("\"hel'lo\"", "hel'lo"),
        ("'hello\\'", "hello\\"),
        ("\"''\"", "''"),
        ("'\"hello\"'", "\"hello\""),
        ("\"\"", ""),
    ];
    for (word, want) in cases {
        assert_eq!(ok(word), want, "{word:?}");
    }
}

#[test]
fn unterminated_quotes_are_errors() {
    for word in ["he'llo", "he\\\\'llo", "\"hello", "\"hello\\\"", "'hello"] {
        assert!(
            matches!(err(word), SubstError::UnterminatedQuote(_)),
            "{word:?}"
        );
    }
    assert_eq!(err("'x").to_string(), "unterminated single quote");
}

#[test]
fn plain_variables() {
    let cases = [
        ("$.", "$."),
        ("he$1x", "hex"),
        ("he$.x", "he$.x"),
        ("he$pwd.", "he."),
        ("he$PWD", "he/home"),
        ("he\\$PWD", "he$PWD"),
        ("he\\\\$PWD", "he\\/home"),
        ("\"he\\$PWD\"", "he$PWD"),
        ("\"he\\\\$PWD\"", "he\\/home"),
        ("he${hi}xx", "hexx"),
        ("he${PWD}", "he/home"),
        ("'he${XX}'", "he${XX}"),
        ("\"he${PWD}\"", "he/home"),
        ("\"he'$PWD'\"", "he'/home'"),
        ("'$PWD'", "$PWD"),
        ("'\\$PWD'", "\\$PWD"),
        ("$KOREAN", "한국어"),
        ("안녕$KOREAN", "안녕한국어"),
        ("\\${}", "${}"),
        ("he\\${}xx", "he${}xx"),
        ("$", "$"),
    ];
    for (word, want) in cases {
        assert_eq!(ok(word), want, "{word:?}");
    }
}

#[test]
fn modifiers() {
    let cases = [
        ("he${XXX:-000}xx", "he000xx"),
        ("he${PWD:-000}xx", "he/homexx"),
        ("he${XXX:-$PWD}xx", "he/homexx"),
        ("he${XXX:-${PWD:-yyy}}xx", "he/homexx"),
        ("he${XXX:-${YYY:-yyy}}xx", "heyyyxx"),
        ("he${NULL:-def}", "hedef"),
        ("he${NULL-def}", "he"),
        ("he${XXX-def}", "hedef"),
        ("he${PWD?}", "he/home"),
        ("he${PWD:?}", "he/home"),
        ("he${NULL?}", "he"),
        ("he${XXX:+${PWD}}xx", "hexx"),
        ("he${PWD:+${XXX}}xx", "hexx"),
        ("he${PWD:+${SHELL}}xx", "hebashxx"),
        ("he${XXX:+000}xx", "hexx"),
        ("he${PWD:+000}xx", "he000xx"),
        ("he${NULL:+alt}", "he"),
        ("he${NULL+alt}", "healt"),
        ("he${PWD:+${PWD}:}xx", "he/home:xx"),
        ("he${XXX:-\\$PWD:}xx", "he$PWD:xx"),
        ("he${XXX:-\\${PWD}z}xx", "he${PWDz}xx"),
        ("${XXX:-\"a b\"}", "a b"),
    ];
    for (word, want) in cases {
        assert_eq!(ok(word), want, "{word:?}");
    }
}

#[test]
fn substitution_errors() {
    for word in ["${}", "${}xx", "he${}", "he${}xx", "${:x}"] {
        assert_eq!(err(word), SubstError::BadSubstitution, "{word:?}");
    }
    for word in ["he${PWD", "he${PWD:-x", "${"] {
        assert_eq!(err(word), SubstError::MissingBrace, "{word:?}");
    }
    assert_eq!(err("he${.}"), SubstError::UnsupportedModifier('.'));
    assert_eq!(err("he${XXX:YYY}"), SubstError::UnsupportedModifier('Y'));
    assert_eq!(err("he${PWD:=000}xx"), SubstError::UnsupportedModifier('='));
    assert_eq!(
        err("he${XXX?}").to_string(),
        "XXX: is not allowed to be unset"
    );
    assert_eq!(
        err("he${XXX:?}").to_string(),
        "XXX: is not allowed to be unset"
    );
    assert_eq!(
        err("he${NULL:?}").to_string(),
        "NULL: is not allowed to be empty"
    );
    assert_eq!(
        err("${XXX:?set XXX first}").to_string(),
        "XXX: set XXX first"
    );
}

#[test]
fn backtick_escape() {
    let expand = |w: &str| expand_word(w, '`', &env).unwrap();
    assert_eq!(expand("a`$PWD"), "a$PWD");
    assert_eq!(expand("C:\\dir\\$SHELL"), "C:\\dir\\bash");
    assert_eq!(expand("\"`\"q`\"\""), "\"q\"");
}

#[test]
fn words_split_on_unquoted_whitespace() {
    let words = |w: &str| expand_words(w, '\\', &env).unwrap();
    assert_eq!(words("$LIST"), ["80", "443/udp"]);
    assert_eq!(words("\"$LIST\""), ["80  443/udp"]);
    assert_eq!(words("a\\ b c"), ["a b", "c"]);
    assert_eq!(words("''"), [""]);
    assert!(words("$XXX").is_empty());
}

#[test]
fn heredoc_bodies() {
    use cast_build::subst::expand_heredoc;
    let expand = |w: &str| expand_heredoc(w, '\\', &env).unwrap();
    assert_eq!(
        expand("cd \"$PWD\" && echo 'it''s' ${SHELL:-sh}\n"),
        "cd \"/home\" && echo 'it''s' bash\n"
    );
    assert_eq!(
        expand("price: \\$5, path: C:\\dir, \\\\ \\n\n"),
        "price: $5, path: C:\\dir, \\ \\n\n"
    );
    assert_eq!(expand("${XXX:-\"q\"}"), "q");
    assert!(expand_heredoc("${PWD", '\\', &env).is_err());
}

/// Variables for one case.
type Vars<'a> = &'a [(&'a str, &'a str)];

fn with(vars: Vars<'_>, word: &str) -> Result<String, SubstError> {
    let lookup = |name: &str| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    };
    expand_word(word, '\\', &lookup)
}

#[test]
fn pattern_trims_and_replacements() {
    // BuildKit's own table for `#`, `##`, `%`, `%%`, `/` and `//`.
    let cases: &[(Vars<'_>, &str, &str)] = &[
        (
            &[("FOO", "()[]{}^$.*?|\\x")],
            "${FOO#()[]{\\}^$.\\*\\?|\\\\}",
            "x",
        ),
        (&[("FOO", "xx**")], "${FOO%%\\**}", "xx"),
        (&[("FOO", "xxyy")], "${FOO#*x*y}", "y"),
        (&[("FOO", "xxyy")], "${FOO#*}", "xxyy"),
        (&[("FOO", "xxyy"), ("BAR", "x")], "${FOO#$BAR}", "xyy"),
        (&[("FOO", "xxyy"), ("BAR", "")], "${FOO#$BAR}", "xxyy"),
        (&[("FOO", "xxyy")], "${FOO#}", "xxyy"),
        (&[("FOO", "xxyy")], "${FOO##*x}", "yy"),
        (&[("FOO", "xxyy")], "${FOO##}", "xxyy"),
        (&[("FOO", "???y")], "${FOO#?\\?}", "?y"),
        (&[("FOO", "xxyy")], "${ABC:-.}${FOO%x}${ABC:-.}", ".xxyy."),
        (&[("FOO", "a***yy*")], "${FOO%%\\**\\*}", "a"),
        (&[("FOO", "xxyy")], "${FOO%}", "xxyy"),
        (&[("FOO", "a.b.txt")], "${FOO%.*}", "a.b"),
        (&[("FOO", "a.b.txt")], "${FOO%%.*}", "a"),
        (&[("FOO", "/usr/local/bin/tool")], "${FOO##*/}", "tool"),
        (
            &[("FOO", "/foo*/*/*.txt"), ("NEEDLE", "\\*/")],
            "${FOO/$NEEDLE/.} - ${FOO//$NEEDLE/.}",
            "/foo.*/*.txt - /foo..*.txt",
        ),
        (&[("V", "1.2.3")], "${V//./-}", "1-2-3"),
        (&[("V", "1.2.3")], "${V/./-}", "1-2.3"),
        (&[("V", "a/b")], "${V/\\//_}", "a_b"),
        (&[], "[${UNSET#x}][${UNSET//a/b}]", "[][]"),
    ];
    for (vars, word, want) in cases {
        assert_eq!(
            with(vars, word).unwrap_or_else(|e| panic!("{word:?}: {e}")),
            *want,
            "{word:?}"
        );
    }
    assert_eq!(
        with(&[("V", "x")], "${V:#x}").unwrap_err(),
        SubstError::UnsupportedModifier('#')
    );
    assert_eq!(
        with(&[("V", "x")], "${V/x}").unwrap_err().to_string(),
        "syntax error: missing '/' in ${}"
    );
    assert_eq!(
        with(&[("V", "x")], "${V#\\a}").unwrap_err().to_string(),
        "invalid pattern (\\a) in substitution: invalid escape '\\a'"
    );
}
