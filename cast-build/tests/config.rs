//! Configuration: precedence CLI > CAST_BUILD_* > bin table > package > workspace >
//! defaults, map merging, path anchoring, the errors for unknown keys and bad values,
//! and the build/run split (the build never reads the run time's `CAST_*`).

use std::collections::BTreeMap;
use std::path::Path;

use std::time::Duration;

use cast_build::config::{
    env_layer, resolve, runtime_vars_ignored, CastLayer, ConfigError, ImageSource, KernelSpec,
    ManifestConfig,
};
use cast_core::settings::{Key, Origin, VmSettings, VmUpdate, MIN_MEMORY_MIB};

/// A workspace with a member crate `app`; returns (tempdir, member manifest path).
fn workspace(ws_cast: &str, pkg_cast: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Cargo.toml"),
        format!("[workspace]\nmembers = [\"app\"]\n\n[workspace.metadata.cast]\n{ws_cast}"),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("app")).unwrap();
    let manifest = dir.path().join("app/Cargo.toml");
    std::fs::write(
        &manifest,
        format!(
            "[package]\nname = \"app\"\nversion = \"0.1.0\"\n\n[package.metadata.cast]\n{pkg_cast}"
        ),
    )
    .unwrap();
    (dir, manifest)
}

fn env(vars: &[(&str, &str)]) -> CastLayer {
    let map: BTreeMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    env_layer(|k| map.get(k).cloned(), Path::new("/cwd")).unwrap()
}

fn err(ws: &str, pkg: &str) -> String {
    let (_d, manifest) = workspace(ws, pkg);
    let e: ConfigError = ManifestConfig::load(&manifest).unwrap_err();
    e.to_string()
}

#[test]
fn defaults_when_nothing_is_set() {
    let c = resolve([CastLayer::default()], Path::new("/crate"));
    // Nothing is baked: the runtime's defaults apply.
    assert_eq!(c.vm, VmUpdate::default());
    assert!(c.vm_origins.is_empty() && c.warnings.is_empty());
    assert_eq!(c.settings(), VmSettings::default());
    assert_eq!(
        c.source,
        ImageSource::Containerfile {
            path: "/crate".into(),
            context: "/crate".into()
        }
    );
}

#[test]
fn precedence_cli_env_bin_package_workspace() {
    let (dir, manifest) = workspace(
        "cpus = 1\nmemory = \"256M\"\ntimeout = 10\nplatform = \"linux/arm64\"\nenv = { A = \"ws\", W = \"ws\" }\n",
        "cpus = 3\nmemory = 1024\nenv = { A = \"pkg\" }\ncontainerfile = \"image/Containerfile\"\n\
         [package.metadata.cast.bin.tool]\ncpus = 4\nname = \"tool-vm\"\n",
    );
    let m = ManifestConfig::load(&manifest).unwrap();
    // Workspace fallback and package over workspace.
    let c = resolve(m.layers(None), Path::new("/x"));
    assert_eq!(
        (c.vm.cpus, c.vm.memory_mib, c.vm.timeout),
        (Some(3), Some(1024), Some(Duration::from_secs(10)))
    );
    // Where each baked setting came from.
    let pkg = Origin::Manifest {
        table: "package.metadata.cast".into(),
        path: manifest.clone(),
    };
    assert_eq!(c.vm_origins[0], (Key::Cpus, pkg));
    assert!(matches!(
        &c.vm_origins[2],
        (Key::Timeout, Origin::Manifest { table, .. }) if table == "workspace.metadata.cast"
    ));
    assert_eq!(c.platform.as_deref(), Some("linux/arm64"));
    assert_eq!(c.env["A"], "pkg");
    assert_eq!(c.env["W"], "ws");
    let app = dir.path().join("app");
    assert_eq!(
        c.source,
        ImageSource::Containerfile {
            path: app.join("image/Containerfile"),
            context: app.join("image")
        }
    );
    // The bin table over the package.
    let c = resolve(m.layers(Some("tool")), Path::new("/x"));
    assert_eq!((c.vm.cpus, c.name.as_deref()), (Some(4), Some("tool-vm")));
    // env over the bin table; the CLI over env.
    let e = env(&[("CAST_BUILD_CPUS", "5"), ("CAST_BUILD_MEMORY", "2G")]);
    let cli = CastLayer {
        origin: Origin::Flag,
        vm: VmUpdate {
            cpus: Some(6),
            ..VmUpdate::default()
        },
        ..Default::default()
    };
    let layers = |cli: CastLayer| {
        [cli, e.clone()]
            .into_iter()
            .chain(m.layers(Some("tool")))
            .collect::<Vec<_>>()
    };
    let c = resolve(layers(CastLayer::default()), Path::new("/x"));
    assert_eq!((c.vm.cpus, c.vm.memory_mib), (Some(5), Some(2048)));
    assert_eq!(c.vm_origins[0], (Key::Cpus, Origin::BuildEnv));
    let c = resolve(layers(cli), Path::new("/x"));
    assert_eq!((c.vm.cpus, c.vm.memory_mib), (Some(6), Some(2048)));
    assert_eq!(
        c.vm_origins[..2],
        [(Key::Cpus, Origin::Flag), (Key::Memory, Origin::BuildEnv)]
    );
}

#[test]
fn image_and_kernel_and_commands() {
    let (dir, manifest) = workspace(
        "",
        "image = \"127.0.0.1:5000/app:1\"\nentrypoint = \"/bin/app\"\ncmd = [\"-v\", \"x\"]\n\
         kernel = { url = \"https://example.invalid/k\", sha256 = \"sha256:ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789\" }\n\
         build-args = { V = 2 }\n",
    );
    let m = ManifestConfig::load(&manifest).unwrap();
    let c = resolve(m.layers(None), dir.path());
    assert_eq!(c.source, ImageSource::Image("127.0.0.1:5000/app:1".into()));
    assert_eq!(c.entrypoint, Some(vec!["/bin/app".to_string()]));
    assert_eq!(c.cmd, Some(vec!["-v".to_string(), "x".to_string()]));
    assert_eq!(c.build_args["V"], "2");
    match c.kernel.unwrap() {
        KernelSpec::Url { sha256, .. } => assert!(sha256.starts_with("abcdef")),
        other => panic!("{other:?}"),
    }
    let (_d, manifest) = workspace("", "kernel = \"k\"\n");
    let m = ManifestConfig::load(&manifest).unwrap();
    assert_eq!(
        m.package.kernel,
        Some(KernelSpec::Path(manifest.parent().unwrap().join("k")))
    );
}

#[test]
fn network_request_warns() {
    let c = resolve(
        [CastLayer {
            vm: VmUpdate {
                network: Some(true),
                ..VmUpdate::default()
            },
            ..Default::default()
        }],
        Path::new("/c"),
    );
    assert!(c.settings().network);
    assert!(
        c.warnings[0].contains("no network interface"),
        "{:?}",
        c.warnings
    );
    let c = resolve([env(&[("CAST_BUILD_NETWORK", "0")])], Path::new("/c"));
    assert!(!c.settings().network && c.warnings.is_empty());
}

#[test]
fn unknown_keys_name_manifest_key_and_accepted_keys() {
    let e = err("", "cpu = 2\n");
    assert!(e.contains("app/Cargo.toml [package.metadata.cast]"), "{e}");
    assert!(e.contains("`cpu`"), "{e}");
    assert!(e.contains("did you mean `cpus`"), "{e}");
    assert!(e.contains("accepted keys: containerfile, context"), "{e}");
    let e = err("memroy = 1\n", "");
    assert!(
        e.contains("[workspace.metadata.cast]") && e.contains("`memroy`"),
        "{e}"
    );
    // bin tables exist only at package level.
    let e = err("[workspace.metadata.cast.bin.x]\ncpus = 1\n", "");
    assert!(e.contains("`bin`"), "{e}");
    let e = err(
        "",
        "[package.metadata.cast.bin.tool]\ncpus = 1\nbogus = 2\n",
    );
    assert!(e.contains("bin.tool") && e.contains("`bogus`"), "{e}");
}

#[test]
fn bad_values_say_what_is_accepted() {
    for (pkg, key, accepted) in [
        ("memory = \"lots\"\n", "memory", "512M"),
        ("memory = \"5X\"\n", "memory", "not a size"),
        ("memory = 1.5\n", "memory", "found float"),
        ("cpus = 0\n", "cpus", "below the minimum 1"),
        ("cpus = \"two\"\n", "cpus", "vCPUs from 1 to"),
        ("network = 3\n", "network", "true or false"),
        ("timeout = \"soon\"\n", "timeout", "5m"),
        (
            "accel = \"tcg\"\n",
            "accel",
            "read only at run time (CAST_ACCEL)",
        ),
        ("platform = \"amd64\"\n", "platform", "linux/amd64"),
        ("entrypoint = []\n", "entrypoint", "array of strings"),
        ("env = [\"A=1\"]\n", "env", "table of strings"),
        ("kernel = { url = \"https://x\" }\n", "kernel", "sha256"),
        (
            "kernel = { url = \"https://x\", sha256 = \"12\" }\n",
            "kernel",
            "64 hex",
        ),
    ] {
        let e = err("", pkg);
        assert!(
            e.contains(&format!("`{key}`")) || e.starts_with(&format!("{key} = ")),
            "{pkg}: {e}"
        );
        assert!(e.contains(accepted), "{pkg}: {e}");
    }
}

#[test]
fn bad_environment_values_name_the_variable() {
    let bad = |k: &str, v: &str| {
        env_layer(|q| (q == k).then(|| v.to_string()), Path::new("/"))
            .unwrap_err()
            .to_string()
    };
    let e = bad("CAST_BUILD_MEMORY", "big");
    assert!(
        e.starts_with("CAST_BUILD_MEMORY=\"big\"") && e.contains("512M"),
        "{e}"
    );
    let e = bad("CAST_BUILD_TTY", "maybe");
    assert!(
        e.contains("CAST_BUILD_TTY") && e.contains("yes or no"),
        "{e}"
    );
    let l = env(&[
        ("CAST_BUILD_CONTAINERFILE", "sub/Containerfile"),
        ("CAST_BUILD_TIMEOUT", "2m"),
    ]);
    assert_eq!(
        l.containerfile.unwrap(),
        Path::new("/cwd/sub/Containerfile")
    );
    assert_eq!(l.vm.timeout, Some(Duration::from_secs(120)));
}

#[test]
fn invalid_toml_names_the_file() {
    let (_d, manifest) = workspace("", "cpus = \n");
    let e = ManifestConfig::load(&manifest).unwrap_err().to_string();
    assert!(e.contains("Cargo.toml is not valid TOML"), "{e}");
}

#[test]
fn memory_that_cannot_boot_is_refused_naming_memory() {
    let e = err("", "memory = \"32M\"\n");
    assert!(
        e.starts_with("memory = \"32M\" in [package.metadata.cast] of ")
            && e.contains("app/Cargo.toml: below the minimum"),
        "{e}"
    );
    assert!(e.contains(&format!("a size from {MIN_MEMORY_MIB}M")), "{e}");
    // The same parser reads every form everywhere.
    let (_d, manifest) = workspace("", "memory = \"1.5G\"\ntimeout = \"1.5s\"\n");
    let m = ManifestConfig::load(&manifest).unwrap();
    assert_eq!(m.package.vm.memory_mib, Some(1536));
    assert_eq!(m.package.vm.timeout, Some(Duration::from_millis(1500)));
}

#[test]
fn the_build_reads_cast_build_variables_never_the_run_times() {
    let vars = [
        ("CAST_MEMORY", "2G"),
        ("CAST_TIMEOUT", "5m"),
        ("CAST_IMAGE", "x"),
        ("CAST_BUILD_CPUS", "3"),
    ];
    let l = env(&vars);
    assert_eq!(l.vm.cpus, Some(3));
    assert_eq!((l.vm.memory_mib, l.vm.timeout, l.image), (None, None, None));
    let get = |k: &str| {
        vars.iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
    };
    let notes = runtime_vars_ignored(get);
    assert_eq!(notes.len(), 3, "{notes:?}");
    assert!(
        notes[0].starts_with("CAST_MEMORY is set but a build does not read it")
            && notes[0].ends_with("use --memory or CAST_BUILD_MEMORY"),
        "{notes:?}"
    );
    assert!(
        notes[2].contains("--image or CAST_BUILD_IMAGE"),
        "{notes:?}"
    );
}
