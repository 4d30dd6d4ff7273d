//! The casted-crate template (`templates/crate/` in this package, embedded at
//! compile time): rendered for `cargo cast new NAME`, and generated in a build
//! directory around a directory that holds only a Containerfile.
//!
//! The crate depends on `cast-runner` and `cast-build` by version (this cargo-cast's
//! `MAJOR.MINOR`), so it builds and publishes like any crate. Only when cargo-cast
//! runs from a source checkout ([`checkout`]) does the manifest also get a
//! `[patch.crates-io]` pointing at that checkout's crates, and its `Cargo.lock`.
//!
//! Files are written only when their bytes change, so Cargo's fingerprints (and the
//! build script's `rerun-if-changed`) see an unchanged crate as unchanged.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

macro_rules! template {
    ($file:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/templates/crate/",
            $file
        ))
    };
}

const CARGO_TOML: &str = template!("Cargo.toml.tmpl");
const BUILD_RS: &str = template!("build.rs");
const MAIN_RS: &str = template!("src/main.rs");
const CONTAINERFILE: &str = template!("Containerfile");
const HELLO_SH: &str = template!("hello.sh");
const CONTAINERIGNORE: &str = template!(".containerignore");
const README: &str = template!("README.md.tmpl");

/// The source checkout this cargo-cast was built from, if it is one and still there
/// (a registry's copy of cargo-cast has no `cast-runner` beside it).
pub fn checkout() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent()?;
    (root.join("cast-runner/Cargo.toml").is_file() && root.join("Cargo.lock").is_file())
        .then(|| root.to_owned())
}

/// The version requirement on the cast crates: this cargo-cast's `MAJOR.MINOR`.
fn requirement() -> String {
    let v = env!("CARGO_PKG_VERSION");
    v.splitn(3, '.').take(2).collect::<Vec<_>>().join(".")
}

/// The `[patch.crates-io]` table that builds the cast crates from `checkout`.
fn patch(checkout: &Path) -> String {
    let root = checkout.display();
    format!(
        "\n# cargo-cast runs from the checkout at {root}: its crates stand in for the\n\
         # published ones. Remove this table to build against crates.io.\n\
         [patch.crates-io]\n\
         cast-runner = {{ path = \"{root}/cast-runner\" }}\n\
         cast-build = {{ path = \"{root}/cast-build\" }}\n"
    )
}

/// `[package.metadata.cast]` keys, rendered as TOML in key order.
#[derive(Debug, Default)]
pub struct Metadata(BTreeMap<&'static str, toml::Value>);

impl Metadata {
    /// Sets `key` when `value` is `Some`.
    pub fn set(&mut self, key: &'static str, value: Option<impl Into<toml::Value>>) {
        if let Some(v) = value {
            self.0.insert(key, v.into());
        }
    }

    fn render(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k} = {v}\n"))
            .collect::<String>()
            .trim_end()
            .to_owned()
    }
}

/// The crate's files: (relative path, contents, executable).
pub fn files(
    name: &str,
    metadata: &Metadata,
    with_image: bool,
) -> Vec<(&'static str, String, bool)> {
    let meta = metadata.render();
    let meta = if meta.is_empty() {
        "# cpus = 2\n# memory = \"512M\"".to_owned()
    } else {
        meta
    };
    let manifest = CARGO_TOML
        .replace("{{name}}", name)
        .replace("{{version}}", &requirement())
        .replace(
            "{{patch}}",
            &checkout().map(|c| patch(&c)).unwrap_or_default(),
        )
        .replace("{{metadata}}", &meta);
    let mut v = vec![
        ("Cargo.toml", manifest, false),
        ("build.rs", BUILD_RS.to_owned(), false),
        ("src/main.rs", MAIN_RS.to_owned(), false),
    ];
    if with_image {
        v.push(("Containerfile", CONTAINERFILE.to_owned(), false));
        v.push(("hello.sh", HELLO_SH.to_owned(), true));
        v.push((".containerignore", CONTAINERIGNORE.to_owned(), false));
        v.push(("README.md", README.replace("{{name}}", name), false));
    }
    v
}

/// Writes `files` under `dir`, each only if it differs; from a checkout, also seeds
/// `Cargo.lock` from the checkout's (same dependency versions, nothing new to
/// download).
pub fn write(dir: &Path, files: &[(&'static str, String, bool)]) -> Result<()> {
    for (rel, text, exec) in files {
        let path = dir.join(rel);
        if std::fs::read(&path).ok().as_deref() == Some(text.as_bytes()) {
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        if *exec {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
        }
    }
    let lock = dir.join("Cargo.lock");
    if let Some(ours) = checkout().map(|c| c.join("Cargo.lock")) {
        if !lock.exists() {
            std::fs::copy(&ours, &lock)
                .with_context(|| format!("cannot write {}", lock.display()))?;
        }
    }
    Ok(())
}

/// A package name from a directory or file name: lowercase ASCII letters, digits,
/// `-` and `_`, starting with a letter.
pub fn package_name(raw: &str) -> String {
    let mut s: String = raw
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '-' | '_' => c,
            'A'..='Z' => c.to_ascii_lowercase(),
            _ => '-',
        })
        .collect();
    if !s.starts_with(|c: char| c.is_ascii_lowercase()) {
        s.insert_str(0, "cast-");
    }
    s
}
