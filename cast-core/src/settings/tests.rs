//! The settings model: every source through one parser, precedence, errors that name
//! the source and the range, the baked form.

use super::*;
use std::path::Path;

fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
    move |k: &str| {
        pairs
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
    }
}

fn manifest() -> Origin {
    Origin::Manifest {
        table: "package.metadata.cast".into(),
        path: "/p/Cargo.toml".into(),
    }
}

#[test]
fn every_source_reads_a_value_the_same_way() {
    for origin in [manifest(), Origin::Flag, Origin::BuildEnv, Origin::Env] {
        let mut u = VmUpdate::default();
        u.set(Key::Memory, Raw::Text("1.5G"), &origin).unwrap();
        u.set(Key::Timeout, Raw::Text("5m"), &origin).unwrap();
        u.set(Key::Cpus, Raw::Text("4"), &origin).unwrap();
        assert_eq!(u.memory_mib, Some(1536), "{origin:?}");
        assert_eq!(u.timeout, Some(Duration::from_secs(300)), "{origin:?}");
        assert_eq!(u.cpus, Some(4));
    }
    let mut u = VmUpdate::default();
    u.set(Key::Memory, Raw::Int(2048), &manifest()).unwrap();
    u.set(Key::Timeout, Raw::Int(30), &manifest()).unwrap();
    u.set(Key::Tty, Raw::Bool(true), &manifest()).unwrap();
    assert_eq!(
        (u.memory_mib, u.timeout, u.tty),
        (Some(2048), Some(Duration::from_secs(30)), Some(true))
    );
}

#[test]
fn memory_that_cannot_boot_is_refused_naming_the_setting_and_range() {
    let e = VmUpdate::from_env(env(&[("CAST_MEMORY", "32M")]), &Origin::Env).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.starts_with("CAST_MEMORY=\"32M\": below the minimum"),
        "{msg}"
    );
    assert!(
        msg.contains(&parse::format_mib(MIN_MEMORY_MIB.into())),
        "{msg}"
    );

    let mut u = VmUpdate::default();
    let e = u
        .set(Key::Memory, Raw::Text("32M"), &manifest())
        .unwrap_err();
    assert!(
        e.to_string().starts_with(
            "memory = \"32M\" in [package.metadata.cast] of /p/Cargo.toml: below the minimum"
        ),
        "{e}"
    );
    let e = u.set(Key::Memory, Raw::Int(32), &Origin::Flag).unwrap_err();
    assert!(e.to_string().starts_with("--memory 32: below"), "{e}");
    let e =
        VmUpdate::from_env(env(&[("CAST_BUILD_MEMORY", "lots")]), &Origin::BuildEnv).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("CAST_BUILD_MEMORY=\"lots\": not a size; expected a size from"),
        "{e}"
    );
}

#[test]
fn cpus_beyond_what_boots_are_refused() {
    let mut u = VmUpdate::default();
    for bad in ["0", "255", "many", "-1"] {
        let e = u.set(Key::Cpus, Raw::Text(bad), &Origin::Env).unwrap_err();
        assert!(
            e.to_string().contains(&format!("from 1 to {MAX_CPUS}")),
            "{e}"
        );
    }
    u.set(Key::Cpus, Raw::Text(&MAX_CPUS.to_string()), &Origin::Env)
        .unwrap();
}

#[test]
fn host_settings_are_not_bakeable() {
    let mut u = VmUpdate::default();
    let e = u
        .set(Key::Accel, Raw::Text("tcg"), &manifest())
        .unwrap_err();
    assert!(
        e.to_string().contains("read only at run time (CAST_ACCEL)"),
        "{e}"
    );
    u.set(Key::Accel, Raw::Text("tcg"), &Origin::Env).unwrap();
    // The build's variables are CAST_BUILD_*, only for bakeable settings.
    let u = VmUpdate::from_env(
        env(&[
            ("CAST_MEMORY", "2G"),
            ("CAST_BUILD_CPUS", "3"),
            ("CAST_BUILD_ACCEL", "x"),
        ]),
        &Origin::BuildEnv,
    )
    .unwrap();
    assert_eq!(
        u,
        VmUpdate {
            cpus: Some(3),
            ..VmUpdate::default()
        }
    );
}

#[test]
fn updates_apply_over_the_defaults_in_precedence_order() {
    let baked = VmUpdate {
        cpus: Some(1),
        memory_mib: Some(256),
        timeout: Some(Duration::from_secs(150)),
        tty: Some(false),
        ..VmUpdate::default()
    };
    let run = VmUpdate::from_env(
        env(&[
            ("CAST_MEMORY", "1G"),
            ("CAST_TIMEOUT", "0"),
            ("CAST_BOOT_TIMEOUT", "0"),
        ]),
        &Origin::Env,
    )
    .unwrap();
    let s = VmSettings::resolve([&baked, &run]);
    assert_eq!((s.cpus, s.memory_mib, s.tty), (1, 1024, Some(false)));
    assert_eq!((s.timeout, s.boot_timeout), (None, Duration::MAX));
    assert_eq!(
        VmSettings::resolve([]),
        VmSettings::default(),
        "nothing set: the defaults"
    );
    assert_eq!(
        (VmSettings::default().cpus, VmSettings::default().memory_mib),
        (DEFAULT_CPUS, DEFAULT_MEMORY_MIB)
    );
    assert_eq!(run.clone().over(baked.clone()).memory_mib, Some(1024));
    assert_eq!(baked.clone().over(run).memory_mib, Some(256));
}

#[test]
fn the_baked_form_round_trips_and_is_validated_on_reading() {
    let u = VmUpdate {
        cpus: Some(3),
        memory_mib: Some(768),
        timeout: Some(Duration::from_millis(1500)),
        interactive: Some(false),
        ..VmUpdate::default()
    };
    let json = serde_json::to_string(&u).unwrap();
    assert_eq!(
        json,
        r#"{"cpus":3,"memory_mib":768,"timeout":"1s 500ms","interactive":false}"#
    );
    let back: VmUpdate = serde_json::from_str(&json).unwrap();
    assert_eq!(back, u);
    back.validate(&Origin::Baked).unwrap();
    let damaged: VmUpdate = serde_json::from_str(r#"{"memory_mib":16}"#).unwrap();
    let e = damaged.validate(&Origin::Baked).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("memory = \"16M\" baked into the executable: below"),
        "{e}"
    );
}

#[test]
fn origins_name_the_setting_as_the_user_wrote_it() {
    assert_eq!(Origin::Env.describe(Key::Memory), "CAST_MEMORY");
    assert_eq!(Origin::BuildEnv.describe(Key::Memory), "CAST_BUILD_MEMORY");
    assert_eq!(Origin::Flag.describe(Key::BootTimeout), "--boot-timeout");
    assert_eq!(
        manifest().describe(Key::Cpus),
        "cpus in [package.metadata.cast] of /p/Cargo.toml"
    );
    let s = VmSettings::default();
    assert_eq!(s.show(Key::Memory), "512M");
    assert_eq!(s.show(Key::Timeout), "none");
    assert_eq!(s.show(Key::BootTimeout), "30s");
    assert!(Path::new("/p").is_absolute());
}

#[test]
fn the_network_switches_off_three_ways_and_ports_publish_from_the_environment() {
    let run = |pairs: &'static [(&'static str, &'static str)]| {
        let baked = VmUpdate {
            publish: Some(crate::publish::parse_all(["8080:80"]).unwrap()),
            ..VmUpdate::default()
        };
        let env = VmUpdate::from_env(env(pairs), &Origin::Env).unwrap();
        VmSettings::resolve([&baked, &env])
    };
    assert!(run(&[]).network);
    assert_eq!(run(&[]).show(Key::Publish), "127.0.0.1:8080:80/tcp");
    assert!(!run(&[("CAST_NETWORK", "0")]).network);
    assert!(!run(&[("CAST_NO_NETWORK", "1")]).network);
    assert!(!run(&[("CAST_NETWORK", "1"), ("CAST_NO_NETWORK", "1")]).network);
    assert!(run(&[("CAST_NO_NETWORK", "0")]).network);
    let s = run(&[("CAST_PUBLISH", "9090:90,127.0.0.1:5353:53/udp")]);
    assert_eq!(
        s.show(Key::Publish),
        "127.0.0.1:9090:90/tcp, 127.0.0.1:5353:53/udp"
    );
    let e = VmUpdate::from_env(env(&[("CAST_PUBLISH", "8080:80/sctp")]), &Origin::Env)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with(
            "CAST_PUBLISH=\"8080:80/sctp\": \"8080:80/sctp\": the protocol must be tcp or udp"
        ),
        "{e}"
    );
    let e = VmUpdate::from_env(env(&[("CAST_NO_NETWORK", "maybe")]), &Origin::Env)
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("CAST_NO_NETWORK=\"maybe\""), "{e}");
}

#[test]
fn mounts_are_a_list_setting_baked_as_written_and_replaced_by_cast_mount() {
    let mut baked = VmUpdate::default();
    baked
        .set(
            Key::Mounts,
            Raw::Text(".:/work,/etc/a.conf:/a:ro"),
            &manifest(),
        )
        .unwrap();
    let json = serde_json::to_string(&baked).unwrap();
    assert!(
        json.contains(r#""mounts":[".:/work","/etc/a.conf:/a:ro"]"#),
        "{json}"
    );
    let back: VmUpdate = serde_json::from_str(&json).unwrap();
    back.validate(&Origin::Baked).unwrap();
    let run =
        VmUpdate::from_env(env(&[("CAST_MOUNT", "/d:/data;/e:/e:ro")]), &Origin::Env).unwrap();
    let s = VmSettings::resolve([&back, &run]);
    assert_eq!(s.show(Key::Mounts), "/d:/data,/e:/e:ro");
    assert_eq!(VmSettings::resolve([&back]).mounts.len(), 2);
    let e = VmUpdate::from_env(env(&[("CAST_MOUNT", "/d:data")]), &Origin::Env).unwrap_err();
    assert!(e.to_string().starts_with("CAST_MOUNT=\"/d:data\""), "{e}");
    assert_eq!(VmSettings::default().show(Key::Mounts), "none");
}

#[test]
fn build_vms_have_their_own_variables_and_defaults() {
    let get = env;
    let s = VmSettings::build_vm(get(&[("CAST_MEMORY", "256M"), ("CAST_ACCEL", "tcg")])).unwrap();
    assert_eq!(
        s.memory_mib, DEFAULT_BUILD_VM_MEMORY_MIB,
        "a run's memory is not a build's"
    );
    assert_eq!(
        (s.tty, s.interactive, s.accel),
        (Some(false), false, Some(Accel::Tcg))
    );
    let s = VmSettings::build_vm(get(&[
        ("CAST_BUILD_VM_MEMORY", "2G"),
        ("CAST_BUILD_VM_TIMEOUT", "5m"),
    ]))
    .unwrap();
    assert_eq!(
        (s.memory_mib, s.timeout),
        (2048, Some(Duration::from_secs(300)))
    );
    let e = VmSettings::build_vm(get(&[("CAST_BUILD_VM_CPUS", "lots")])).unwrap_err();
    assert!(
        e.to_string().starts_with("CAST_BUILD_VM_CPUS=\"lots\""),
        "{e}"
    );
}
