//! Credentials and auth challenges. Credentials come from `CAST_REGISTRY_USER` /
//! `CAST_REGISTRY_PASSWORD` (used for every registry of the build) or else from the
//! `auths` map of `config.json` in `$DOCKER_CONFIG` or `~/.docker` (the base64 `auth`
//! field, or `username`/`password`). Credential helpers (`credsStore`, `credHelpers`)
//! are not run. [`Challenge`] parses `WWW-Authenticate` headers (Basic and Bearer).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::Deserialize;

use crate::error::{Error, Result};

/// A user name and password (or token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Password or access token.
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials({}, <redacted>)", self.username)
    }
}

/// Where credentials are looked up.
#[derive(Debug, Clone, Default)]
pub struct AuthSource {
    env: Option<Credentials>,
    docker_config: Option<PathBuf>,
}

impl AuthSource {
    /// From the process environment.
    pub fn from_env() -> AuthSource {
        AuthSource::from_lookup(|k| std::env::var(k).ok())
    }

    /// From an environment given as a lookup function (tests pass their own).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> AuthSource {
        let env = match (
            lookup("CAST_REGISTRY_USER"),
            lookup("CAST_REGISTRY_PASSWORD"),
        ) {
            (Some(username), Some(password)) if !username.is_empty() => {
                Some(Credentials { username, password })
            }
            _ => None,
        };
        let dir = lookup("DOCKER_CONFIG")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                lookup("HOME")
                    .filter(|h| !h.is_empty())
                    .map(|h| Path::new(&h).join(".docker"))
            })
            .or_else(|| dirs::home_dir().map(|h| h.join(".docker")));
        AuthSource {
            env,
            docker_config: dir.map(|d| d.join("config.json")),
        }
    }

    /// No credentials at all (anonymous pulls only).
    pub fn anonymous() -> AuthSource {
        AuthSource::default()
    }

    /// The credentials for `registry` (as written in references, e.g. `docker.io`,
    /// `127.0.0.1:5000`), if any.
    pub fn credentials_for(&self, registry: &str) -> Result<Option<Credentials>> {
        if let Some(c) = &self.env {
            return Ok(Some(c.clone()));
        }
        let Some(path) = &self.docker_config else {
            return Ok(None);
        };
        let text = match std::fs::read(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("read", path, e)),
        };
        let bad = |reason: String| Error::DockerConfig {
            path: path.clone(),
            reason,
        };
        let cfg: DockerConfig = serde_json::from_slice(&text).map_err(|e| bad(e.to_string()))?;
        let want = normalize_registry(registry);
        for (key, entry) in cfg.auths {
            if normalize_registry(&key) != want {
                continue;
            }
            if let Some(auth) = entry.auth.filter(|a| !a.is_empty()) {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(auth.trim())
                    .map_err(|e| bad(format!("`auth` of {key} is not base64: {e}")))?;
                let s = String::from_utf8(raw)
                    .map_err(|_| bad(format!("`auth` of {key} is not UTF-8")))?;
                let (u, p) = s
                    .split_once(':')
                    .ok_or_else(|| bad(format!("`auth` of {key} is not user:password")))?;
                return Ok(Some(Credentials {
                    username: u.into(),
                    password: p.into(),
                }));
            }
            if let (Some(username), Some(password)) = (entry.username, entry.password) {
                return Ok(Some(Credentials { username, password }));
            }
        }
        Ok(None)
    }
}

#[derive(Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
}

#[derive(Deserialize)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

/// `https://index.docker.io/v1/` → `docker.io`, `http://host:5000/v2/` → `host:5000`.
fn normalize_registry(key: &str) -> String {
    let k = key.trim();
    let k = k
        .strip_prefix("https://")
        .or_else(|| k.strip_prefix("http://"))
        .unwrap_or(k);
    let host = k.split('/').next().unwrap_or(k).to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "docker.io".into()
        }
        _ => host,
    }
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// `Basic realm=...`.
    Basic,
    /// `Bearer realm=...,service=...,scope=...`.
    Bearer {
        /// Token endpoint URL.
        realm: String,
        /// `service` parameter, if any.
        service: Option<String>,
        /// `scope` parameter, if any.
        scope: Option<String>,
    },
}

impl Challenge {
    /// Parses one challenge; `None` for schemes we do not speak.
    pub fn parse(header: &str) -> Option<Challenge> {
        let header = header.trim();
        let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
        let params = parse_params(rest);
        let get = |k: &str| {
            params
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.clone())
        };
        match scheme.to_ascii_lowercase().as_str() {
            "basic" => Some(Challenge::Basic),
            "bearer" => Some(Challenge::Bearer {
                realm: get("realm")?,
                service: get("service"),
                scope: get("scope"),
            }),
            _ => None,
        }
    }
}

/// `a="x,y", b=z` → [(a, "x,y"), (b, z)].
fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let name: String = chars
            .by_ref()
            .take_while(|c| *c != '=')
            .collect::<String>()
            .trim()
            .to_string();
        if name.is_empty() {
            return out;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = chars
                .by_ref()
                .take_while(|c| *c != ',')
                .collect::<String>()
                .trim()
                .to_string();
        }
        out.push((name, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_challenges() {
        let h = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull,push""#;
        assert_eq!(
            Challenge::parse(h),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:a/b:pull,push".into()),
            })
        );
        assert_eq!(
            Challenge::parse(r#"Basic realm="basic-realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(Challenge::parse("Negotiate"), None);
    }

    #[test]
    fn docker_config_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
        std::fs::write(
            dir.path().join("config.json"),
            format!(r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{auth}"}},"127.0.0.1:5000":{{"username":"bob","password":"pw"}}}}}}"#),
        )
        .unwrap();
        let d = dir.path().to_str().unwrap().to_string();
        let src = AuthSource::from_lookup(|k| (k == "DOCKER_CONFIG").then(|| d.clone()));
        assert_eq!(
            src.credentials_for("docker.io").unwrap().unwrap().password,
            "s3cret"
        );
        assert_eq!(
            src.credentials_for("127.0.0.1:5000")
                .unwrap()
                .unwrap()
                .username,
            "bob"
        );
        assert_eq!(src.credentials_for("ghcr.io").unwrap(), None);
        let env = AuthSource::from_lookup(|k| match k {
            "CAST_REGISTRY_USER" => Some("u".into()),
            "CAST_REGISTRY_PASSWORD" => Some("p".into()),
            _ => None,
        });
        assert_eq!(env.credentials_for("x.io").unwrap().unwrap().username, "u");
        assert!(!format!("{:?}", src.credentials_for("docker.io")).contains("s3cret"));
        // Without DOCKER_CONFIG: $HOME/.docker/config.json.
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir(home.path().join(".docker")).unwrap();
        std::fs::copy(
            dir.path().join("config.json"),
            home.path().join(".docker/config.json"),
        )
        .unwrap();
        let h = home.path().to_str().unwrap().to_string();
        let src = AuthSource::from_lookup(|k| (k == "HOME").then(|| h.clone()));
        assert_eq!(
            src.credentials_for("index.docker.io")
                .unwrap()
                .unwrap()
                .username,
            "alice"
        );
        // A broken file is an error that names it.
        std::fs::write(home.path().join(".docker/config.json"), "{").unwrap();
        let e = src.credentials_for("docker.io").unwrap_err().to_string();
        assert!(e.contains("config.json"), "{e}");
    }
}
