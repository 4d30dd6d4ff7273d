//! Reading [`CastLayer`]s from where users write them: `[package.metadata.cast]`
//! (and its per-binary tables `[package.metadata.cast.bin.NAME]`) in a crate's
//! `Cargo.toml`, `[workspace.metadata.cast]` in the workspace root's, and
//! `CAST_BUILD_*` environment variables. VM settings go through the one parser of
//! each setting (`cast_core::VmUpdate::set`). Unknown keys and bad values are errors
//! that name the manifest, the key and what is accepted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use thiserror::Error;
use toml::{Table, Value};

use cast_core::settings::{Key, Origin, Raw, SettingError, VmUpdate};

use super::value::{self, anchored, KernelSpec};
use super::CastLayer;

/// The keys a cast table accepts besides the bakeable VM settings ([`Key::bakeable`];
/// `bin` only in `[package.metadata.cast]`).
pub const KEYS: &[&str] = &[
    "containerfile",
    "context",
    "image",
    "name",
    "entrypoint",
    "cmd",
    "env",
    "platform",
    "build-args",
    "kernel",
];

/// The build's own variables besides the VM settings' `CAST_BUILD_*`
/// ([`Key::build_env`]); [`env_layer`] reads both ([`ENV_VARS`]).
const BUILD_VARS: &[&str] = &[
    "CAST_BUILD_CONTAINERFILE",
    "CAST_BUILD_CONTEXT",
    "CAST_BUILD_IMAGE",
    "CAST_BUILD_NAME",
    "CAST_BUILD_ENTRYPOINT",
    "CAST_BUILD_PLATFORM",
    "CAST_BUILD_KERNEL",
];

/// Every environment variable [`env_layer`] reads.
pub static ENV_VARS: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
    let vm = Key::ALL.into_iter().filter_map(Key::build_env);
    BUILD_VARS.iter().copied().chain(vm).collect()
});

/// Every key a cast table accepts.
fn accepted_keys() -> impl Iterator<Item = &'static str> {
    let vm = Key::ALL.into_iter().filter(|k| k.bakeable()).map(Key::name);
    KEYS.iter().copied().chain(vm)
}

/// A configuration that cannot be used.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// A manifest could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The manifest.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A manifest is not valid TOML.
    #[error("{} is not valid TOML: {message}", path.display())]
    Toml {
        /// The manifest.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A VM setting has a value it cannot take.
    #[error(transparent)]
    Setting(#[from] SettingError),
    /// A key or value is wrong.
    #[error("{origin}: `{key}`: {message}")]
    Invalid {
        /// `Cargo.toml [package.metadata.cast]`, or the variable's name.
        origin: String,
        /// The key.
        key: String,
        /// What is wrong and what is accepted.
        message: String,
    },
}

/// The cast tables of a crate and of its workspace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManifestConfig {
    /// `[package.metadata.cast]`.
    pub package: CastLayer,
    /// `[package.metadata.cast.bin.NAME]`, by binary name.
    pub bins: BTreeMap<String, CastLayer>,
    /// `[workspace.metadata.cast]` of the workspace root (or of the crate itself).
    pub workspace: CastLayer,
}

impl ManifestConfig {
    /// Reads the crate manifest at `manifest` and, if it belongs to a workspace
    /// further up, that workspace's root manifest.
    pub fn load(manifest: &Path) -> Result<ManifestConfig, ConfigError> {
        let table = read_table(manifest)?;
        let dir = manifest.parent().unwrap_or(Path::new("."));
        let mut config = ManifestConfig::default();
        if let Some(cast) = nested(&table, &["package", "metadata", "cast"], manifest)? {
            let at = Table_::new(manifest, "package.metadata.cast");
            let (layer, bins) = parse_table(cast, dir, &at, true)?;
            config.package = layer;
            config.bins = bins;
        }
        let ws = if table.contains_key("workspace") {
            Some((manifest.to_owned(), table))
        } else {
            find_workspace_root(dir)?
        };
        if let Some((ws_manifest, ws_table)) = ws {
            let ws_dir = ws_manifest.parent().unwrap_or(Path::new("."));
            let at = Table_::new(&ws_manifest, "workspace.metadata.cast");
            if let Some(cast) = nested(&ws_table, &["workspace", "metadata", "cast"], &ws_manifest)?
            {
                config.workspace = parse_table(cast, ws_dir, &at, false)?.0;
            }
        }
        Ok(config)
    }

    /// The layers for binary `bin` (highest precedence first): its own table, the
    /// package's, the workspace's.
    pub fn layers(&self, bin: Option<&str>) -> Vec<CastLayer> {
        let own = bin.and_then(|b| self.bins.get(b)).cloned();
        own.into_iter()
            .chain([self.package.clone(), self.workspace.clone()])
            .collect()
    }
}

/// Every manifest this crate's configuration was read from (for rerun-if-changed).
pub fn manifests_read(manifest: &Path) -> Vec<PathBuf> {
    let mut v = vec![manifest.to_owned()];
    let dir = manifest.parent().unwrap_or(Path::new("."));
    if let Ok(Some((root, _))) = find_workspace_root(dir) {
        if root != manifest {
            v.push(root);
        }
    }
    v
}

fn read_table(path: &Path) -> Result<Table, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    text.parse::<Table>().map_err(|e| ConfigError::Toml {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

/// The nearest manifest above `dir` (exclusive) with a `[workspace]` table.
fn find_workspace_root(dir: &Path) -> Result<Option<(PathBuf, Table)>, ConfigError> {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_owned());
    for up in dir.ancestors().skip(1) {
        let candidate = up.join("Cargo.toml");
        if candidate.is_file() {
            let table = read_table(&candidate)?;
            if table.contains_key("workspace") {
                return Ok(Some((candidate, table)));
            }
        }
    }
    Ok(None)
}

fn nested<'a>(t: &'a Table, path: &[&str], file: &Path) -> Result<Option<&'a Table>, ConfigError> {
    let mut cur = t;
    for (i, key) in path.iter().enumerate() {
        match cur.get(*key) {
            None => return Ok(None),
            Some(Value::Table(next)) => cur = next,
            Some(_) => {
                return Err(ConfigError::Invalid {
                    origin: file.display().to_string(),
                    key: path[..=i].join("."),
                    message: "must be a table".into(),
                })
            }
        }
    }
    Ok(Some(cur))
}

type Parsed = (CastLayer, BTreeMap<String, CastLayer>);

/// Where a cast table is: its manifest and its name.
struct Table_ {
    /// `/p/Cargo.toml [package.metadata.cast]`, for messages.
    label: String,
    /// The same as a settings origin.
    origin: Origin,
}

impl Table_ {
    fn new(manifest: &Path, table: &str) -> Self {
        Table_ {
            label: format!("{} [{table}]", manifest.display()),
            origin: Origin::Manifest {
                table: table.to_owned(),
                path: manifest.to_owned(),
            },
        }
    }
}

/// Parses one cast table; `bins` allows the `bin` sub-tables.
fn parse_table(t: &Table, dir: &Path, at: &Table_, bins: bool) -> Result<Parsed, ConfigError> {
    let mut layer = CastLayer {
        origin: at.origin.clone(),
        ..CastLayer::default()
    };
    let mut bin_layers = BTreeMap::new();
    for (key, v) in t {
        let bad = |message: String| ConfigError::Invalid {
            origin: at.label.clone(),
            key: key.clone(),
            message,
        };
        if let Some(k) = Key::ALL.into_iter().find(|k| k.name() == key) {
            let raw = match v {
                Value::String(s) => Raw::Text(s),
                Value::Integer(n) => Raw::Int(*n),
                Value::Boolean(b) => Raw::Bool(*b),
                other => {
                    return Err(bad(format!(
                        "expected {}, found {}",
                        k.accepts(),
                        other.type_str()
                    )))
                }
            };
            layer.vm.set(k, raw, &at.origin)?;
            continue;
        }
        let string = || {
            v.as_str()
                .map(str::to_owned)
                .ok_or_else(|| bad(format!("expected a string, found {}", v.type_str())))
        };
        match key.as_str() {
            "containerfile" => layer.containerfile = Some(anchored(dir, &string()?)),
            "context" => layer.context = Some(anchored(dir, &string()?)),
            "image" => layer.image = Some(string()?),
            "name" => layer.name = Some(string()?),
            "entrypoint" => layer.entrypoint = Some(command(v).map_err(bad)?),
            "cmd" => layer.cmd = Some(command(v).map_err(bad)?),
            "env" => layer.env = string_map(v).map_err(bad)?,
            "build-args" => layer.build_args = string_map(v).map_err(bad)?,
            "platform" => layer.platform = Some(value::check_platform(&string()?).map_err(bad)?),
            "kernel" => layer.kernel = Some(kernel(v, dir).map_err(bad)?),
            "bin" if bins => {
                let Value::Table(per) = v else {
                    return Err(bad(
                        "expected tables: [package.metadata.cast.bin.NAME]".into()
                    ));
                };
                for (name, bt) in per {
                    let Value::Table(bt) = bt else {
                        return Err(bad(format!("`bin.{name}` must be a table of cast keys")));
                    };
                    let Origin::Manifest { table, path } = &at.origin else {
                        unreachable!("a table's origin is a manifest")
                    };
                    let bin_at = Table_::new(path, &format!("{table}.bin.{name}"));
                    bin_layers.insert(name.clone(), parse_table(bt, dir, &bin_at, false)?.0);
                }
            }
            _ => {
                let mut accepted = accepted_keys().collect::<Vec<_>>().join(", ");
                if bins {
                    accepted.push_str(", bin");
                }
                let hint = strsim_hint(key, bins);
                return Err(bad(format!("unknown key{hint}; accepted keys: {accepted}")));
            }
        }
    }
    Ok((layer, bin_layers))
}

fn strsim_hint(key: &str, bins: bool) -> String {
    accepted_keys()
        .chain(bins.then_some("bin"))
        .map(|k| (strsim::jaro_winkler(k, key), k))
        .filter(|(s, _)| *s > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| format!(" (did you mean `{k}`?)"))
        .unwrap_or_default()
}

fn command(v: &Value) -> Result<Vec<String>, String> {
    match v {
        Value::String(s) if !s.is_empty() => Ok(vec![s.clone()]),
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("expected {}", value::COMMAND_FORMS))
            })
            .collect(),
        _ => Err(format!("expected {}", value::COMMAND_FORMS)),
    }
}

fn string_map(v: &Value) -> Result<BTreeMap<String, String>, String> {
    let Value::Table(t) = v else {
        return Err("expected a table of strings, like { KEY = \"value\" }".into());
    };
    t.iter()
        .map(|(k, v)| {
            value::check_env_name(k)?;
            let s = match v {
                Value::String(s) => s.clone(),
                Value::Integer(_) | Value::Float(_) | Value::Boolean(_) => v.to_string(),
                _ => return Err(format!("`{k}`: expected a string, found {}", v.type_str())),
            };
            Ok((k.clone(), s))
        })
        .collect()
}

fn kernel(v: &Value, dir: &Path) -> Result<KernelSpec, String> {
    const FORMS: &str = "a kernel bundle path, { path = \"...\" }, or { url = \"https://...\", sha256 = \"<64 hex digits>\" }";
    match v {
        Value::String(s) => Ok(KernelSpec::Path(anchored(dir, s))),
        Value::Table(t) => {
            let get = |k: &str| t.get(k).and_then(Value::as_str);
            if let Some(k) = t
                .keys()
                .find(|k| !["path", "url", "sha256"].contains(&k.as_str()))
            {
                return Err(format!("unknown key `{k}`; expected {FORMS}"));
            }
            match (get("path"), get("url"), get("sha256")) {
                (Some(p), None, None) => Ok(KernelSpec::Path(anchored(dir, p))),
                (None, Some(url), Some(sha)) => Ok(KernelSpec::Url {
                    url: url.to_owned(),
                    sha256: value::check_sha256(sha)?,
                }),
                (None, Some(_), None) => {
                    Err(format!("a kernel URL needs its sha256; expected {FORMS}"))
                }
                _ => Err(format!("expected {FORMS}")),
            }
        }
        _ => Err(format!("expected {FORMS}")),
    }
}

/// The build's environment layer from `get` (e.g. `|k| std::env::var(k).ok()`):
/// the `CAST_BUILD_*` variables ([`ENV_VARS`]), never the run time's `CAST_*`.
/// Relative paths are anchored at `cwd`.
pub fn env_layer(
    get: impl Fn(&str) -> Option<String>,
    cwd: &Path,
) -> Result<CastLayer, ConfigError> {
    let mut l = CastLayer {
        origin: Origin::BuildEnv,
        vm: VmUpdate::from_env(&get, &Origin::BuildEnv)?,
        ..CastLayer::default()
    };
    for &var in BUILD_VARS {
        let Some(v) = get(var).filter(|v| !v.is_empty()) else {
            continue;
        };
        let bad = |message: String| ConfigError::Invalid {
            origin: "environment".into(),
            key: var.into(),
            message,
        };
        match var {
            "CAST_BUILD_CONTAINERFILE" => l.containerfile = Some(anchored(cwd, &v)),
            "CAST_BUILD_CONTEXT" => l.context = Some(anchored(cwd, &v)),
            "CAST_BUILD_IMAGE" => l.image = Some(v),
            "CAST_BUILD_NAME" => l.name = Some(v),
            "CAST_BUILD_ENTRYPOINT" => l.entrypoint = Some(vec![v]),
            "CAST_BUILD_PLATFORM" => l.platform = Some(value::check_platform(&v).map_err(bad)?),
            "CAST_BUILD_KERNEL" => l.kernel = Some(KernelSpec::Path(anchored(cwd, &v))),
            _ => unreachable!("every BUILD_VARS entry is handled"),
        }
    }
    Ok(l)
}

/// The run time's variables that are set but that a build does not read, each with
/// what the build reads instead, for a one-line note: a `CAST_MEMORY` exported for
/// running executables is not baked into the ones being built.
pub fn runtime_vars_ignored(get: impl Fn(&str) -> Option<String>) -> Vec<String> {
    let set = |var: &str| get(var).is_some_and(|v| !v.is_empty());
    let vm = Key::ALL
        .into_iter()
        .filter_map(|k| Some((k.env(), k.build_env()?, format!("--{k}"))));
    let build = BUILD_VARS.iter().map(|b| {
        let run = b.replacen("CAST_BUILD_", "CAST_", 1);
        let flag = format!("--{}", run["CAST_".len()..].to_ascii_lowercase());
        (run, *b, flag)
    });
    vm.map(|(r, b, f)| (r.to_owned(), b, f))
        .chain(build)
        .filter(|(run, _, _)| set(run))
        .map(|(run, build, flag)| {
            format!("{run} is set but a build does not read it (it is for running); to bake it in, use {flag} or {build}")
        })
        .collect()
}
