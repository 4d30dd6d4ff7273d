//! Evaluation: ARG scoping and build args, ENV/ARG substitution, multi-stage
//! bases, the run config rules, and errors located at their instruction.

use std::path::Path;

use cast_build::{
    evaluate, Base, BaseImages, Containerfile, CopyFrom, CopySource, EvalOptions, ImageConfig,
    NoBaseImages, Op, Plan, RunConfig, RunOp,
};

fn plan_with(text: &str, build_args: &[(&str, &str)], bases: &mut dyn BaseImages) -> Plan {
    let cf =
        Containerfile::parse(Path::new("Containerfile"), text).unwrap_or_else(|e| panic!("{e}"));
    let options = EvalOptions {
        build_args: build_args
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect(),
        target: None,
    };
    evaluate(&cf, &options, bases).unwrap_or_else(|e| panic!("{e}"))
}

fn plan(text: &str) -> Plan {
    plan_with(text, &[], &mut NoBaseImages)
}

/// The RUN steps of stage `stage`, in order.
fn runs_of(plan: &Plan, stage: usize) -> Vec<&RunOp> {
    plan.stages[stage]
        .ops
        .iter()
        .filter_map(|o| match o {
            Op::Run(r) => Some(r),
            _ => None,
        })
        .collect()
}

fn rc(text: &str) -> RunConfig {
    plan(text).target_stage().run_config.clone()
}

fn error(text: &str) -> String {
    let cf =
        Containerfile::parse(Path::new("Containerfile"), text).unwrap_or_else(|e| panic!("{e}"));
    evaluate(&cf, &EvalOptions::default(), &mut NoBaseImages)
        .expect_err("should fail")
        .to_string()
}

fn strings(v: &[&str]) -> Option<Vec<String>> {
    Some(v.iter().map(|s| (*s).to_owned()).collect())
}

#[test]
fn args_before_from_are_only_for_from() {
    let p = plan("ARG TAG=3.20\nARG NAME=alpine\nFROM $NAME:${TAG}\nENV T=${TAG:-none}\n");
    assert_eq!(p.stages[0].base, Base::Image("alpine:3.20".into()));
    assert_eq!(p.target_stage().run_config.env_var("T"), Some("none"));
    // Redeclared without a value, the global default comes in.
    let p = plan("ARG TAG=3.20\nFROM alpine\nARG TAG\nENV T=$TAG\n");
    assert_eq!(p.target_stage().run_config.env_var("T"), Some("3.20"));
}

#[test]
fn build_args_override_declared_args() {
    let text = "ARG TAG=1\nFROM img:$TAG\nARG TAG\nARG OTHER=d\nENV T=$TAG O=$OTHER\n";
    let p = plan_with(
        text,
        &[("TAG", "2"), ("OTHER", "o"), ("UNUSED", "x")],
        &mut NoBaseImages,
    );
    assert_eq!(p.stages[0].base, Base::Image("img:2".into()));
    let rc = &p.target_stage().run_config;
    assert_eq!((rc.env_var("T"), rc.env_var("O")), (Some("2"), Some("o")));
    assert_eq!(p.warnings.len(), 1);
    assert_eq!(
        p.warnings[0].to_string(),
        "warning: build argument UNUSED was not consumed by any ARG"
    );
}

#[test]
fn env_wins_over_arg_and_pairs_see_the_old_env() {
    let rc = rc("FROM a\nARG V=arg\nENV V=env\nENV W=$V\nENV abc=hello\nENV abc=bye def=$abc\n");
    assert_eq!(rc.env_var("W"), Some("env"));
    assert_eq!(rc.env_var("abc"), Some("bye"));
    assert_eq!(rc.env_var("def"), Some("hello"));
    let names: Vec<&str> = rc.env.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["V", "W", "abc", "def"]);
}

#[test]
fn builtin_platform_args() {
    let rc = rc("FROM a\nARG TARGETOS\nENV OS=$TARGETOS\n");
    assert_eq!(rc.env_var("OS"), Some("linux"));
}

#[test]
fn cmd_and_entrypoint_rules() {
    let rc1 = rc("FROM a\nCMD echo hi\n");
    assert_eq!(rc1.cmd, strings(&["/bin/sh", "-c", "echo hi"]));
    let rc2 = rc("FROM a\nSHELL [\"/bin/bash\", \"-eu\", \"-c\"]\nENTRYPOINT exec app\n");
    assert_eq!(
        rc2.entrypoint,
        strings(&["/bin/bash", "-eu", "-c", "exec app"])
    );
    // ENTRYPOINT resets an inherited CMD...
    let p = plan("FROM a AS base\nCMD [\"x\"]\nFROM base\nENTRYPOINT [\"/app\"]\n");
    assert_eq!(p.stages[1].run_config.cmd, None);
    assert_eq!(p.stages[1].run_config.argv(), ["/app"]);
    // ...but not a CMD set earlier in the same stage.
    let rc3 = rc("FROM a\nCMD [\"--serve\"]\nENTRYPOINT [\"/app\"]\n");
    assert_eq!(rc3.argv(), ["/app", "--serve"]);
    // CMD [] is allowed and clears.
    assert_eq!(rc("FROM a\nCMD []\n").cmd, Some(vec![]));
}

#[test]
fn stages_inherit_from_named_stages() {
    let p = plan(
        "FROM alpine AS Base\nENV A=1\nWORKDIR /w\nFROM base AS next\nENV B=2\nFROM scratch\n",
    );
    assert_eq!(p.stages[0].name.as_deref(), Some("base"));
    assert_eq!(p.stages[1].base, Base::Stage(0));
    assert_eq!(p.stages[1].run_config.env_var("A"), Some("1"));
    assert_eq!(p.stages[1].run_config.workdir.as_deref(), Some("/w"));
    assert_eq!(p.stages[2].base, Base::Scratch);
    assert_eq!(p.target, 2);
    // Docker's default PATH, as for every base without one.
    let mut scratch = RunConfig::default();
    scratch.set_env("PATH", cast_build::eval::DEFAULT_PATH);
    assert_eq!(p.stages[2].run_config, scratch);
}

#[test]
fn base_image_config_is_the_starting_point() {
    struct Fake;
    impl BaseImages for Fake {
        fn config(&mut self, image: &str, platform: Option<&str>) -> Option<RunConfig> {
            assert_eq!((image, platform), ("debian:12", Some("linux/arm64")));
            Some(RunConfig::from_image_config(ImageConfig {
                env: vec!["PATH=/usr/bin".into(), "LANG=C".into()],
                cmd: strings(&["bash"]),
                exposed_ports: vec!["22/tcp".into()],
                ..ImageConfig::default()
            }))
        }
    }
    let p = plan_with(
        "FROM --platform=linux/arm64 debian:12\nENV LANG=C.UTF-8\nENTRYPOINT [\"/init\"]\n",
        &[],
        &mut Fake,
    );
    let rc = &p.target_stage().run_config;
    assert!(p.target_stage().base_config_known);
    assert_eq!(
        rc.env,
        [
            ("PATH".into(), "/usr/bin".into()),
            ("LANG".into(), "C.UTF-8".into())
        ]
    );
    assert_eq!(rc.cmd, None, "ENTRYPOINT resets the image's CMD");
    assert_eq!(
        rc.exposed_ports
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["22/tcp"]
    );
}

#[test]
fn workdir_user_labels_volumes_ports_signal() {
    let rc = rc("FROM a\nENV D=/srv U=app\nWORKDIR $D\nWORKDIR app/../bin\nUSER ${U}:staff\nLABEL \"x.y\"=\"a b\" n=$U\nVOLUME [\"/data\", \"$D/cache\"]\nEXPOSE 80 53/UDP 8000-8002/tcp\nSTOPSIGNAL SIGRTMIN+3\n");
    assert_eq!(rc.workdir.as_deref(), Some("/srv/bin"));
    assert_eq!(rc.user.as_deref(), Some("app:staff"));
    assert_eq!(rc.labels.get("x.y").map(String::as_str), Some("a b"));
    assert_eq!(rc.labels.get("n").map(String::as_str), Some("app"));
    assert_eq!(
        rc.volumes.iter().collect::<Vec<_>>(),
        ["/data", "/srv/cache"]
    );
    let ports: Vec<String> = rc.exposed_ports.iter().map(ToString::to_string).collect();
    assert_eq!(
        ports,
        ["53/udp", "80/tcp", "8000/tcp", "8001/tcp", "8002/tcp"]
    );
    assert_eq!(rc.stop_signal.as_deref(), Some("SIGRTMIN+3"));
    assert_eq!(
        serde_json::to_value(&rc).unwrap()["exposed_ports"][0],
        "53/udp"
    );
}

#[test]
fn copy_ops_are_expanded() {
    let p = plan("FROM a AS one\nFROM scratch\nARG F=app\nWORKDIR /opt\nCOPY --from=one --chown=1:2 --chmod=0755 /bin/$F ./\nCOPY --from=0 x y\nCOPY --from=busybox:1 /bin/sh /sh\nADD <<EOF /etc/$F.conf\nname=$F\nEOF\n");
    let ops = &p.target_stage().ops;
    let Op::Copy(c) = &ops[1] else {
        panic!("{ops:?}")
    };
    assert_eq!(c.from, CopyFrom::Stage(0));
    assert_eq!(c.sources, [CopySource::Path("/bin/app".into())]);
    assert_eq!(c.dest, "/opt/");
    assert_eq!(
        (c.chown.as_deref(), c.chmod.clone()),
        (Some("1:2"), Some(cast_build::chmod::Chmod::Octal(0o755)))
    );
    let Op::Copy(c) = &ops[2] else { panic!() };
    assert_eq!(
        (c.from.clone(), c.dest.as_str()),
        (CopyFrom::Stage(0), "/opt/y")
    );
    let Op::Copy(c) = &ops[3] else { panic!() };
    assert_eq!(c.from, CopyFrom::Image("busybox:1".into()));
    let Op::Copy(c) = &ops[4] else { panic!() };
    assert!(c.add);
    assert_eq!(
        (c.sources[0].clone(), c.dest.as_str()),
        (CopySource::Inline("name=app\n".into()), "/etc/app.conf")
    );
    assert_eq!(p.needed_stages(), [0, 1]);
}

#[test]
fn run_carries_its_command_environment_and_context() {
    let p = plan(
        "FROM a AS unused\nRUN x\nFROM b\nARG V=1\nENV E=2\nUSER app\nWORKDIR /w\n\
         RUN make $V\nSHELL [\"/bin/bash\", \"-c\"]\nRUN [\"/bin/true\", \"a\"]\nRUN echo\n",
    );
    let runs = runs_of(&p, 1);
    assert_eq!(runs[0].argv, ["/bin/sh", "-c", "make $V"]);
    assert!(runs[0].shell_form);
    assert_eq!(runs[0].env, ["E=2", "V=1"]);
    assert_eq!(
        (runs[0].user.as_deref(), runs[0].workdir.as_deref()),
        (Some("app"), Some("/w"))
    );
    assert_eq!(runs[0].location.to_string(), "Containerfile:8:1");
    assert_eq!(runs[1].argv, ["/bin/true", "a"]);
    assert!(!runs[1].shell_form);
    assert_eq!(runs[2].argv, ["/bin/bash", "-c", "echo"]);
    assert!(!runs[0].network_none, "RUN has a network by default");
    let h = plan("FROM a\nRUN <<-EOF\n\techo one\n\techo two\n\tEOF\nRUN <<EOF cat\nx\nEOF\n");
    let runs = runs_of(&h, 0);
    assert_eq!(
        runs[0].argv,
        ["/bin/sh", "-c", "echo one\necho two\n"],
        "a RUN that is only a heredoc runs its body"
    );
    assert_eq!(runs[1].argv, ["/bin/sh", "-c", "<<EOF cat\nx\nEOF\n"]);
    assert_eq!(
        error("FROM a\nRUN <<EOF\n#!/usr/bin/python3\nprint(1)\nEOF\n"),
        "Containerfile:2:1: a RUN heredoc with its own interpreter (#!) is not supported yet (hint: run it with the interpreter: RUN python3 <<EOF ... EOF)"
    );
    assert_eq!(p.needed_stages(), [1]);
}

#[test]
fn ignored_instructions_warn() {
    let p = plan("FROM a\nHEALTHCHECK CMD true\nONBUILD RUN x\nMAINTAINER me\n");
    let w: Vec<String> = p.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(w, [
        "Containerfile:2:1: warning: HEALTHCHECK is ignored: microVMs have no health checks",
        "Containerfile:4:1: warning: MAINTAINER is deprecated and ignored; use LABEL org.opencontainers.image.authors=...",
    ]);
}

#[test]
fn targets() {
    let cf = Containerfile::parse(Path::new("C"), "FROM a AS one\nFROM b AS two\n").unwrap();
    let eval = |t: &str| {
        evaluate(
            &cf,
            &EvalOptions {
                target: Some(t.into()),
                ..Default::default()
            },
            &mut NoBaseImages,
        )
    };
    assert_eq!(eval("ONE").unwrap().target, 0);
    assert_eq!(eval("1").unwrap().target, 1);
    assert_eq!(
        eval("three").unwrap_err().to_string(),
        "no stage named \"three\" (stages: one, two)"
    );
}

#[test]
fn evaluation_errors_are_located() {
    let cases = [
        ("FROM a\nEXPOSE 80/xtp\n", "Containerfile:2:1: invalid protocol \"xtp\" in port \"80/xtp\" (tcp, udp or sctp) (hint: write EXPOSE 80, 80/udp or 8000-8010/tcp)"),
        ("FROM a\nEXPOSE 0\n", "Containerfile:2:1: invalid port \"0\" in \"0\" (1 to 65535) (hint: write EXPOSE 80, 80/udp or 8000-8010/tcp)"),
        ("FROM a\nEXPOSE 90-80\n", "Containerfile:2:1: invalid port range \"90-80\": end before start (hint: write EXPOSE 80, 80/udp or 8000-8010/tcp)"),
        ("FROM a\nSTOPSIGNAL SIGFOO\n", "Containerfile:2:1: invalid stop signal \"SIGFOO\" (hint: use a name like SIGTERM or a number like 15)"),
        ("FROM a\nCOPY --chmod=u+q a b\n", "Containerfile:2:1: invalid --chmod=u+q: bad clause \"u+q\" (hint: use an octal mode like 755 or a symbolic one like u=rwx,go=rx)"),
        ("FROM a\nCOPY --from=3 a b\n", "Containerfile:2:1: --from=3: no earlier stage with that index"),
        ("FROM a\nENV A=${B\n", "Containerfile:2:1: cannot expand \"${B\": syntax error: missing '}' (hint: see Docker's rules: $VAR, ${VAR}, ${VAR:-default}, ${VAR:+alt})"),
        ("ARG IMG\nFROM $IMG\n", "Containerfile:2:1: FROM has an empty image name (hint: check the ARG used in FROM has a value)"),
        ("FROM a\nVOLUME [\"\"]\n", "Containerfile:2:1: VOLUME path must not be empty"),
        ("FROM a\nRUN --network=host true\n", "Containerfile:2:1: RUN --network=host is not supported: a build VM cannot share the host's network (hint: leave it out (the default network reaches the host's loopback as host.cast.internal) or use --network=none)"),
        ("FROM a\nENV X=${Y:?needs_Y}\n", "Containerfile:2:1: cannot expand \"${Y:?needs_Y}\": Y: needs_Y (hint: see Docker's rules: $VAR, ${VAR}, ${VAR:-default}, ${VAR:+alt})"),
    ];
    for (text, want) in cases {
        assert_eq!(error(text), want, "{text:?}");
    }
}

#[test]
fn run_config_round_trips_through_json() {
    let rc = rc("FROM a\nENV A=1\nEXPOSE 80\nCMD [\"x\"]\nUSER u\n");
    let json = serde_json::to_string(&rc).unwrap();
    assert_eq!(serde_json::from_str::<RunConfig>(&json).unwrap(), rc);
}

#[test]
fn image_config_conversion() {
    let rc = RunConfig::from_image_config(ImageConfig {
        env: vec!["A=1".into(), "B".into(), "A=2".into()],
        user: String::new(),
        working_dir: "/w".into(),
        exposed_ports: vec!["80/tcp".into(), "bad".into(), "53/udp".into()],
        stop_signal: "SIGQUIT".into(),
        volumes: vec!["/v".into()],
        shell: vec!["/bin/bash".into(), "-c".into()],
        ..ImageConfig::default()
    });
    assert_eq!(
        rc.env,
        [("A".into(), "2".into()), ("B".into(), String::new())]
    );
    assert_eq!(
        (rc.user.as_deref(), rc.workdir.as_deref()),
        (None, Some("/w"))
    );
    assert_eq!(rc.exposed_ports.len(), 2);
    assert_eq!(rc.stop_signal.as_deref(), Some("SIGQUIT"));
    assert_eq!(cast_build::runconfig::signal_number("SIGQUIT"), Some(3));
    assert_eq!(cast_build::runconfig::signal_number("rtmax-1"), Some(63));
    assert_eq!(cast_build::runconfig::signal_number("65"), None);
    assert_eq!(rc.shell_or_default(), ["/bin/bash", "-c"]);
}
