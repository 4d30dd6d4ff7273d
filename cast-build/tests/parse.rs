//! Parsing: every instruction is recognised, and every error names
//! `file:line:column` with a hint where one helps.

use std::path::Path;

use cast_build::containerfile::{Command, CopyArgs, From, InstructionKind as K, Source};
use cast_build::Containerfile;

fn parse(text: &str) -> Containerfile {
    Containerfile::parse(Path::new("Containerfile"), text).unwrap_or_else(|e| panic!("{e}"))
}

fn error(text: &str) -> String {
    Containerfile::parse(Path::new("Containerfile"), text)
        .expect_err("should fail")
        .to_string()
}

fn kinds(text: &str) -> Vec<K> {
    parse(text)
        .instructions
        .into_iter()
        .map(|i| i.kind)
        .collect()
}

#[test]
fn every_instruction_is_recognised() {
    let text = "\
ARG BASE=alpine
FROM --platform=linux/amd64 $BASE AS build
RUN make
CMD [\"run\"]
LABEL a=b
EXPOSE 80 53/udp
ENV K=v
ADD a.tar /x/
COPY --from=build --chown=1:2 --chmod=755 --link a b /dst/
ENTRYPOINT /bin/app --flag
VOLUME /data /cache
USER app
WORKDIR /srv
ONBUILD COPY . /src
STOPSIGNAL SIGINT
HEALTHCHECK --interval=5s CMD true
SHELL [\"/bin/bash\", \"-c\"]
MAINTAINER someone
";
    let kw: Vec<&str> = kinds(text).iter().map(K::keyword).collect();
    assert_eq!(
        kw,
        [
            "ARG",
            "FROM",
            "RUN",
            "CMD",
            "LABEL",
            "EXPOSE",
            "ENV",
            "ADD",
            "COPY",
            "ENTRYPOINT",
            "VOLUME",
            "USER",
            "WORKDIR",
            "ONBUILD",
            "STOPSIGNAL",
            "HEALTHCHECK",
            "SHELL",
            "MAINTAINER"
        ]
    );
    let k = kinds(text);
    assert_eq!(
        k[1],
        K::From(From {
            image: "$BASE".into(),
            platform: Some("linux/amd64".into()),
            name: Some("build".into())
        })
    );
    assert_eq!(k[3], K::Cmd(Command::Exec(vec!["run".into()])));
    assert_eq!(k[5], K::Expose(vec!["80".into(), "53/udp".into()]));
    assert_eq!(
        k[8],
        K::Copy(CopyArgs {
            sources: vec![Source::Path("a".into()), Source::Path("b".into())],
            dest: "/dst/".into(),
            from: Some("build".into()),
            chown: Some("1:2".into()),
            chmod: Some("755".into()),
            link: true,
            exclude: vec![],
            checksum: None,
        })
    );
    assert_eq!(
        k[9],
        K::Entrypoint(Command::Shell("/bin/app --flag".into()))
    );
    assert_eq!(k[10], K::Volume(vec!["/data".into(), "/cache".into()]));
    assert_eq!(k[13], K::Onbuild("COPY . /src".into()));
    assert_eq!(k[16], K::Shell(vec!["/bin/bash".into(), "-c".into()]));
    assert_eq!(k[17], K::Maintainer("someone".into()));
}

#[test]
fn locations_are_one_based() {
    let cf = parse("FROM a\n\n  ENV A=1 \\\n  B=2\nUSER x\n");
    let locs: Vec<(usize, usize)> = cf
        .instructions
        .iter()
        .map(|i| (i.location.line, i.location.column))
        .collect();
    assert_eq!(locs, [(1, 1), (3, 3), (5, 1)]);
    assert_eq!(cf.instructions[1].location.to_string(), "Containerfile:3:3");
}

#[test]
fn instructions_are_case_insensitive() {
    assert_eq!(kinds("from a\nuser b\n")[1], K::User("b".into()));
}

#[test]
fn env_and_label_forms() {
    assert_eq!(
        kinds("FROM a\nENV A=1 B=\"x y\"\n")[1],
        K::Env(vec![
            ("A".into(), "1".into()),
            ("B".into(), "\"x y\"".into())
        ])
    );
    assert_eq!(
        kinds("FROM a\nENV A  one two\n")[1],
        K::Env(vec![("A".into(), "one two".into())])
    );
    assert_eq!(
        kinds("FROM a\nLABEL \"k 1\"=v\n")[1],
        K::Label(vec![("\"k 1\"".into(), "v".into())])
    );
    assert_eq!(
        kinds("FROM a\nENV A=x\\ y\n")[1],
        K::Env(vec![("A".into(), "x\\ y".into())])
    );
    assert_eq!(
        kinds("ARG A B=2\nFROM a\n")[0],
        K::Arg(vec![("A".into(), None), ("B".into(), Some("2".into()))])
    );
}

#[test]
fn shell_form_joins_continuations_and_drops_comment_lines() {
    let k = kinds("FROM a\nCMD echo \\\n# a comment\n    one \\\n  two\n");
    assert_eq!(k[1], K::Cmd(Command::Shell("echo     one   two".into())));
}

#[test]
fn heredocs_are_sources() {
    let k = kinds("FROM a\nCOPY <<EOF /etc/motd\nhello $USER\nEOF\nCOPY <<'EOF' /raw\n$x\nEOF\n");
    let K::Copy(c) = &k[1] else { panic!() };
    assert_eq!(
        c.sources,
        [Source::HereDoc {
            content: "hello $USER\n".into(),
            expand: true
        }]
    );
    let K::Copy(c) = &k[2] else { panic!() };
    assert_eq!(
        c.sources,
        [Source::HereDoc {
            content: "$x\n".into(),
            expand: false
        }]
    );
}

#[test]
fn directives() {
    let cf = parse("# syntax=docker/dockerfile:1.7\n# escape=`\nFROM a\nENV A=1 `\n  B=2\n");
    assert_eq!(cf.syntax.as_deref(), Some("docker/dockerfile:1.7"));
    assert_eq!(cf.escape, '`');
    assert_eq!(
        cf.instructions[1].kind,
        K::Env(vec![("A".into(), "1".into()), ("B".into(), "2".into())])
    );
    assert_eq!(cf.warnings.len(), 1);
    assert!(cf.warnings[0]
        .to_string()
        .starts_with("Containerfile:1:3: warning: `# syntax=docker/dockerfile:1.7` ignored"));
}

#[test]
fn unknown_instruction_suggests_the_nearest() {
    assert_eq!(
        error("FROM a\nCOPPY a b\n"),
        "Containerfile:2:1: unknown instruction 'COPPY' (hint: did you mean COPY?)"
    );
    assert_eq!(
        error("FROM a\n  ENTRYPONT x\n"),
        "Containerfile:2:3: unknown instruction 'ENTRYPONT' (hint: did you mean ENTRYPOINT?)"
    );
    let far = error("FROM a\nXYZZYQ a\n");
    assert!(
        far.starts_with(
            "Containerfile:2:1: unknown instruction 'XYZZYQ' (hint: valid instructions: ADD, ARG"
        ),
        "{far}"
    );
}

#[test]
fn missing_from() {
    let hint = "(hint: a Containerfile must start with FROM (only ARG may come before it))";
    assert_eq!(
        error("ARG X\nENV A=1\n"),
        format!("Containerfile:2:1: missing FROM {hint}")
    );
    assert_eq!(
        error("# only a comment\n\nARG X\n"),
        format!("Containerfile:3:1: missing FROM {hint}")
    );
    assert_eq!(error(""), format!("Containerfile:1:1: missing FROM {hint}"));
}

#[test]
fn bad_flags() {
    assert_eq!(
        error("FROM a\nCOPY --frm=x a b\n"),
        "Containerfile:2:6: unknown flag --frm for COPY (hint: did you mean --from?)"
    );
    assert_eq!(
        error("FROM --platfrom=x a\n"),
        "Containerfile:1:6: unknown flag --platfrom for FROM (hint: did you mean --platform?)"
    );
    assert_eq!(error("FROM a\nADD --from=b a b\n"), "Containerfile:2:5: unknown flag --from for ADD (hint: ADD accepts --chown, --chmod, --link, --exclude, --checksum, --keep-git-dir)");
    assert_eq!(error("FROM a\nCOPY --parents a/b c\n"), "Containerfile:2:6: COPY --parents is not supported (hint: copy each directory with its own COPY)");
}

#[test]
fn argument_errors() {
    assert_eq!(
        error("FROM a\nLABEL a\n"),
        "Containerfile:2:1: LABEL needs a value (hint: write `LABEL name=value`)"
    );
    assert_eq!(error("FROM a\nENV A=1 B\n"), "Containerfile:2:5: ENV: can't find = in \"B\" (hint: every word must be name=value; quote values with spaces)");
    assert_eq!(
        error("FROM a\nENV\n"),
        "Containerfile:2:1: ENV instruction requires at least one argument"
    );
    assert_eq!(
        error("FROM a\nCOPY a\n"),
        "Containerfile:2:1: COPY instruction requires at least two arguments"
    );
    assert_eq!(
        error("FROM a AS b c\n"),
        "Containerfile:1:8: FROM requires either one or three arguments (hint: write FROM image [AS name])"
    );
    assert_eq!(
        error("FROM a AS x\nFROM b AS x\n"),
        "Containerfile:2:11: duplicate stage name 'x'"
    );
    assert_eq!(
        error("FROM a\nONBUILD ONBUILD RUN x\n"),
        "Containerfile:2:9: ONBUILD ONBUILD is not allowed"
    );
    // Like Docker, malformed JSON is taken as shell form.
    assert_eq!(
        parse("FROM a\nCMD [\"x\"\n").instructions[1].kind,
        K::Cmd(Command::Shell("[\"x\"".into()))
    );
}

#[test]
fn bad_escape_directive_is_refused() {
    assert_eq!(error("# escape=x\nFROM a\n"), "Containerfile:1:10: invalid escape 'x' (hint: the escape directive accepts only `\\` or `` ` ``)");
}

#[test]
fn read_errors_name_the_file() {
    let e = Containerfile::read(Path::new("/nonexistent/Containerfile")).unwrap_err();
    assert_eq!(e.to_string(), "cannot read /nonexistent/Containerfile");
}

#[test]
fn more_hints() {
    let cases = [
        ("FROM a\nSHELL /bin/bash -c\n", "Containerfile:2:7: expected JSON array (hint: write the arguments as a JSON array, e.g. SHELL [\"/bin/sh\", \"-c\"])"),
        ("FROM a AS\n", "Containerfile:1:8: FROM requires either one or three arguments (hint: write FROM image [AS name])"),
        ("FROM a AS 1x\n", "Containerfile:1:11: invalid stage name \"1x\" (hint: stage names start with a letter and use letters, digits, '-', '_' and '.')"),
        ("FROM a\nCMD\n", "Containerfile:2:1: CMD needs a command (hint: write CMD [\"program\", \"arg\"] or CMD [] to clear it)"),
        ("FROM a\nHEALTHCHECK\n", "Containerfile:2:12: expected CMD or NONE (hint: write HEALTHCHECK CMD command, or HEALTHCHECK NONE)"),
        ("FROM a\nONBUILD\n", "Containerfile:2:8: expected an instruction (hint: ONBUILD takes an instruction, e.g. ONBUILD COPY . /src)"),
        ("FROM\n", "Containerfile:1:1: FROM instruction requires at least one argument"),
        ("FROM a\nUSER\n", "Containerfile:2:1: USER instruction requires exactly one argument"),
    ];
    for (text, want) in cases {
        assert_eq!(error(text), want, "{text:?}");
    }
    assert!(parse("FROM a AS Build-1.x_y\n").instructions.len() == 1);
}

#[test]
fn run_keeps_its_command_heredocs_and_flags() {
    use cast_build::containerfile::{Flag, Heredoc, Run};
    let k = kinds(
        "FROM a\nRUN --mount=type=cache,target=/c --network=none <<ONE cat - && 3<<'TWO' cat /dev/fd/3\none $X\nONE\ntwo\nTWO\nRUN <<-EOF\n\tindented\n\tEOF\nRUN [\"echo\", \"<<EOF\"]\n",
    );
    let doc = |name: &str, fd, chomp, expand, content: &str| Heredoc {
        name: name.into(),
        fd,
        chomp,
        expand,
        content: content.into(),
    };
    assert_eq!(
        k[1],
        K::Run(Run {
            command: Command::Shell("<<ONE cat - && 3<<'TWO' cat /dev/fd/3".into()),
            heredocs: vec![
                doc("ONE", 0, false, true, "one $X\n"),
                doc("TWO", 3, false, false, "two\n")
            ],
            flags: vec![
                Flag {
                    name: "mount".into(),
                    value: Some("type=cache,target=/c".into())
                },
                Flag {
                    name: "network".into(),
                    value: Some("none".into())
                },
            ],
        })
    );
    let K::Run(chomped) = &k[2] else { panic!() };
    assert_eq!(chomped.heredocs[0].content, "\tindented\n");
    assert_eq!(chomped.heredocs[0].text(), "indented\n");
    let K::Run(exec) = &k[3] else { panic!() };
    assert_eq!(
        exec.command,
        Command::Exec(vec!["echo".into(), "<<EOF".into()])
    );
    assert!(exec.heredocs.is_empty());
    assert_eq!(
        error("FROM a\nRUN --mnt=x true\n"),
        "Containerfile:2:5: unknown flag --mnt for RUN (hint: did you mean --mount?)"
    );
}

#[test]
fn crlf_bom_and_continuation_columns() {
    let cf = parse("\u{feff}FROM a\r\nENV A=1 \\\r\n    B=2 C=3\r\n");
    assert_eq!(cf.instructions.len(), 2);
    // An error on a continuation line names that line and column.
    let e = error("FROM a\nENV A=1 \\\n    B=2 \\\n  C\n");
    assert_eq!(e, "Containerfile:2:5: ENV: can't find = in \"C\" (hint: every word must be name=value; quote values with spaces)");
    let e = error("FROM a\nCOPY \\\n  --frm=x a b\n");
    assert!(
        e.starts_with("Containerfile:3:3: unknown flag --frm"),
        "{e}"
    );
}
