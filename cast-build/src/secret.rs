//! Build secrets: what `RUN --mount=type=secret,id=ID` mounts, given to the build as
//! `--secret id=ID,src=FILE` or `--secret id=ID,env=VAR` (Docker's grammar; `source`
//! for `src`, `type=file|env` accepted; `id=ID` alone reads the variable `ID`).
//!
//! `cargo cast build` checks each flag ([`SecretSpec::parse`]), anchors a relative
//! file at its own directory, and hands them to the build script in
//! [`ENV`] (one spec per line), as every other build flag travels. Only the specs
//! travel: the bytes are read by the build ([`from_env`]), kept in memory, and reach
//! the build VM on a tmpfs — never a layer, the step cache key (which holds the id
//! only) or printed configuration.

use std::fmt;
use std::path::{Path, PathBuf};

/// The variable carrying the specs to the build (one per line, or `;`-separated).
pub const ENV: &str = "CAST_BUILD_SECRET";

/// Where a secret's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// A file on the build host.
    File(PathBuf),
    /// An environment variable of the build.
    Env(String),
}

/// One `--secret`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretSpec {
    /// The id `RUN --mount=type=secret,id=ID` names.
    pub id: String,
    /// Where the bytes come from.
    pub source: SecretSource,
}

impl SecretSpec {
    /// Parses `id=ID[,src=FILE|,env=VAR][,type=file|env]`; a relative file is
    /// anchored at `cwd`.
    pub fn parse(spec: &str, cwd: &Path) -> Result<SecretSpec, String> {
        let (mut id, mut src, mut env, mut kind) = (None, None, None, None);
        for part in spec.split(',').filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?} is not KEY=VALUE"))?;
            match k.trim() {
                "id" => id = Some(v.to_owned()),
                "src" | "source" => src = Some(v.to_owned()),
                "env" => env = Some(v.to_owned()),
                "type" if matches!(v, "file" | "env") => kind = Some(v.to_owned()),
                "type" => return Err(format!("type={v}: expected type=file or type=env")),
                other => return Err(format!("unknown key {other:?}")),
            }
        }
        let id = id.filter(|i| !i.is_empty()).ok_or("a secret needs id=ID")?;
        let source = match (src, env, kind.as_deref()) {
            (Some(_), Some(_), _) => return Err("give src=FILE or env=VAR, not both".into()),
            (Some(v), None, Some("env")) | (None, Some(v), _) => SecretSource::Env(v),
            (Some(f), None, _) => SecretSource::File(cwd.join(f)),
            (None, None, Some("file")) => SecretSource::File(cwd.join(&id)),
            (None, None, _) => SecretSource::Env(id.clone()),
        };
        Ok(SecretSpec { id, source })
    }

    /// The secret's bytes.
    pub fn read(&self) -> Result<Vec<u8>, String> {
        match &self.source {
            SecretSource::File(path) => std::fs::read(path)
                .map_err(|e| format!("secret {:?}: cannot read {}: {e}", self.id, path.display())),
            SecretSource::Env(var) => std::env::var_os(var)
                .map(|v| v.into_encoded_bytes())
                .ok_or_else(|| format!("secret {:?}: the variable {var} is not set", self.id)),
        }
    }
}

impl fmt::Display for SecretSpec {
    /// The spec in the form [`SecretSpec::parse`] reads (no secret bytes in it).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            SecretSource::File(p) => write!(f, "id={},src={}", self.id, p.display()),
            SecretSource::Env(v) => write!(f, "id={},env={v}", self.id),
        }
    }
}

/// A secret's id and bytes; its `Debug` shows the id only.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    /// The id.
    pub id: String,
    /// The bytes.
    pub bytes: Vec<u8>,
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({:?}, <{} bytes>)", self.id, self.bytes.len())
    }
}

/// The secrets [`ENV`] names, read through `get`, each with its bytes; relative
/// files are anchored at `cwd`.
pub fn from_env(get: impl Fn(&str) -> Option<String>, cwd: &Path) -> Result<Vec<Secret>, String> {
    let Some(text) = get(ENV) else {
        return Ok(Vec::new());
    };
    text.split(['\n', ';'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            let spec = SecretSpec::parse(s, cwd).map_err(|e| format!("{ENV}: {s:?}: {e}"))?;
            Ok(Secret {
                bytes: spec.read()?,
                id: spec.id,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockers_secret_grammar() {
        let cwd = Path::new("/work");
        let parse = |s: &str| SecretSpec::parse(s, cwd);
        let file = |id: &str, p: &str| SecretSpec {
            id: id.into(),
            source: SecretSource::File(p.into()),
        };
        let env = |id: &str, v: &str| SecretSpec {
            id: id.into(),
            source: SecretSource::Env(v.into()),
        };
        assert_eq!(parse("id=a,src=k.txt"), Ok(file("a", "/work/k.txt")));
        assert_eq!(parse("id=a,source=/k"), Ok(file("a", "/k")));
        assert_eq!(parse("id=a,env=TOKEN"), Ok(env("a", "TOKEN")));
        assert_eq!(parse("type=env,id=a,src=TOKEN"), Ok(env("a", "TOKEN")));
        assert_eq!(parse("id=TOKEN"), Ok(env("TOKEN", "TOKEN")));
        assert_eq!(parse("id=k,type=file"), Ok(file("k", "/work/k")));
        assert!(parse("src=k").unwrap_err().contains("id=ID"));
        assert!(parse("id=a,src=f,env=V").unwrap_err().contains("not both"));
        assert!(parse("id=a,type=ssh").is_err());
        assert_eq!(
            parse("id=a,src=/k").unwrap().to_string(),
            "id=a,src=/k",
            "the spec travels, not the bytes"
        );
    }

    #[test]
    fn secrets_are_read_from_the_specs_in_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("k"), "file secret").unwrap();
        let get = |k: &str| (k == ENV).then(|| "id=one,src=k;\nid=two,src=/nonexistent".into());
        let e = from_env(get, dir.path()).unwrap_err();
        assert!(
            e.contains("secret \"two\": cannot read /nonexistent"),
            "{e}"
        );
        let get = |k: &str| (k == ENV).then(|| "id=one,src=k".into());
        let read = from_env(get, dir.path()).unwrap();
        assert_eq!(
            read,
            [Secret {
                id: "one".into(),
                bytes: b"file secret".to_vec()
            }]
        );
        assert!(!format!("{read:?}").contains("file secret"));
        assert_eq!(from_env(|_| None, dir.path()).unwrap(), []);
    }
}
