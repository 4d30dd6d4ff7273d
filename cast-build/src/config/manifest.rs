//! Reading [`CastLayer`]s from where users write them: `[package.metadata.cast]`
//! (and its per-binary tables `[package.metadata.cast.bin.NAME]`) in a crate's
//! `Cargo.toml`, `[workspace.metadata.cast]` in the workspace root's, and `CAST_*`
//! environment variables. Unknown keys and bad values are errors that name the
//! manifest, the key and what is accepted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use thiserror::Error;
use toml::{Table, Value};

use super::value::{self, anchored, KernelSpec};
use super::CastLayer;

/// The keys a cast table accepts (`bin` only in `[package.metadata.cast]`).
pub const KEYS: &[&str] = &[
    "containerfile",
    "context",
    "image",
    "name",
    "cpus",
    "memory",
    "entrypoint",
    "cmd",
    "env",
    "network",
    "tty",
    "interactive",
    "timeout",
    "platform",
    "build-args",
    "kernel",
];

/// The environment variables [`env_layer`] reads.
pub const ENV_VARS: &[&str] = &[
    "CAST_CONTAINERFILE",
    "CAST_CONTEXT",
    "CAST_IMAGE",
    "CAST_NAME",
    "CAST_CPUS",
    "CAST_MEMORY",
    "CAST_ENTRYPOINT",
    "CAST_NETWORK",
    "CAST_NO_NETWORK",
    "CAST_TTY",
    "CAST_INTERACTIVE",
    "CAST_TIMEOUT",
    "CAST_PLATFORM",
    "CAST_KERNEL",
];

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
        let origin = |t: &str| format!("{} [{t}]", manifest.display());
        if let Some(cast) = nested(&table, &["package", "metadata", "cast"], manifest)? {
            let (layer, bins) = parse_table(cast, dir, &origin("package.metadata.cast"), true)?;
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
            let o = format!("{} [workspace.metadata.cast]", ws_manifest.display());
            if let Some(cast) = nested(&ws_table, &["workspace", "metadata", "cast"], &ws_manifest)?
            {
                config.workspace = parse_table(cast, ws_dir, &o, false)?.0;
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

/// Parses one cast table; `bins` allows the `bin` sub-tables.
fn parse_table(t: &Table, dir: &Path, origin: &str, bins: bool) -> Result<Parsed, ConfigError> {
    let mut layer = CastLayer::default();
    let mut bin_layers = BTreeMap::new();
    for (key, v) in t {
        let bad = |message: String| ConfigError::Invalid {
            origin: origin.to_owned(),
            key: key.clone(),
            message,
        };
        let string = || {
            v.as_str()
                .map(str::to_owned)
                .ok_or_else(|| bad(format!("expected a string, found {}", v.type_str())))
        };
        let boolean = || {
            v.as_bool()
                .ok_or_else(|| bad(format!("expected true or false, found {v}")))
        };
        match key.as_str() {
            "containerfile" => layer.containerfile = Some(anchored(dir, &string()?)),
            "context" => layer.context = Some(anchored(dir, &string()?)),
            "image" => layer.image = Some(string()?),
            "name" => layer.name = Some(string()?),
            "cpus" => {
                let n = v.as_integer().ok_or_else(|| {
                    bad(format!("expected a number of vCPUs (1 to 255), found {v}"))
                })?;
                layer.cpus = Some(value::check_cpus(n).map_err(bad)?);
            }
            "memory" => {
                let s = match v {
                    Value::Integer(n) => n.to_string(),
                    Value::String(s) => s.clone(),
                    other => {
                        return Err(bad(format!(
                            "expected {}, found {other}",
                            value::MEMORY_FORMS
                        )))
                    }
                };
                layer.memory_mib = Some(value::parse_memory(&s).map_err(bad)?);
            }
            "entrypoint" => layer.entrypoint = Some(command(v).map_err(bad)?),
            "cmd" => layer.cmd = Some(command(v).map_err(bad)?),
            "env" => layer.env = string_map(v).map_err(bad)?,
            "build-args" => layer.build_args = string_map(v).map_err(bad)?,
            "network" => layer.network = Some(boolean()?),
            "tty" => layer.tty = Some(boolean()?),
            "interactive" => layer.interactive = Some(boolean()?),
            "timeout" => {
                let s = match v {
                    Value::Integer(n) => n.to_string(),
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                layer.timeout_secs = Some(value::parse_timeout(&s).map_err(bad)?);
            }
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
                    let o = format!("{origin} bin.{name}");
                    bin_layers.insert(name.clone(), parse_table(bt, dir, &o, false)?.0);
                }
            }
            _ => {
                let mut accepted = KEYS.join(", ");
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
    KEYS.iter()
        .copied()
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

/// The `CAST_*` layer from `get` (e.g. `|k| std::env::var(k).ok()`); relative
/// paths are anchored at `cwd`. Each variable read is listed in [`ENV_VARS`].
pub fn env_layer(
    get: impl Fn(&str) -> Option<String>,
    cwd: &Path,
) -> Result<CastLayer, ConfigError> {
    let mut l = CastLayer::default();
    for &var in ENV_VARS {
        let Some(v) = get(var).filter(|v| !v.is_empty()) else {
            continue;
        };
        let bad = |message: String| ConfigError::Invalid {
            origin: "environment".into(),
            key: var.into(),
            message,
        };
        match var {
            "CAST_CONTAINERFILE" => l.containerfile = Some(anchored(cwd, &v)),
            "CAST_CONTEXT" => l.context = Some(anchored(cwd, &v)),
            "CAST_IMAGE" => l.image = Some(v),
            "CAST_NAME" => l.name = Some(v),
            "CAST_CPUS" => l.cpus = Some(value::parse_cpus(&v).map_err(bad)?),
            "CAST_MEMORY" => l.memory_mib = Some(value::parse_memory(&v).map_err(bad)?),
            "CAST_ENTRYPOINT" => l.entrypoint = Some(vec![v]),
            "CAST_NETWORK" => l.network = Some(value::parse_bool(&v).map_err(bad)?),
            "CAST_NO_NETWORK" => {
                if value::parse_bool(&v).map_err(bad)? {
                    l.network = Some(false);
                }
            }
            "CAST_TTY" => l.tty = Some(value::parse_bool(&v).map_err(bad)?),
            "CAST_INTERACTIVE" => l.interactive = Some(value::parse_bool(&v).map_err(bad)?),
            "CAST_TIMEOUT" => l.timeout_secs = Some(value::parse_timeout(&v).map_err(bad)?),
            "CAST_PLATFORM" => l.platform = Some(value::check_platform(&v).map_err(bad)?),
            "CAST_KERNEL" => l.kernel = Some(KernelSpec::Path(anchored(cwd, &v))),
            _ => unreachable!("every ENV_VARS entry is handled"),
        }
    }
    Ok(l)
}
