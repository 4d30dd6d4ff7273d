//! Credentials and auth challenges. [`AuthSource::credentials_for`] looks, for one
//! registry, in this order:
//!
//! 1. `CAST_REGISTRY_USER` / `CAST_REGISTRY_PASSWORD`, used for every registry of the
//!    build (cargo-cast's own override; Docker has no equivalent).
//! 2. `config.json` in `$DOCKER_CONFIG`, else `~/.docker`, read as the Docker CLI does
//!    (`docker/cli`, `cli/config/configfile/file.go`: `GetCredentialsStore` and
//!    `getConfiguredCredentialStore`): exactly one store answers for a registry —
//!    - the helper `credHelpers[registry]` if that key exists (an empty value means
//!      "the file", skipping `credsStore`),
//!    - else the helper `credsStore` if it is set (the default for every registry),
//!    - else the `auths` map (the base64 `auth` field, or `username`/`password`).
//!
//!    A helper's answer is final, as in Docker's `nativeStore.Get`: when it says
//!    "credentials not found" the pull is anonymous; `auths` is not consulted then.
//!    Keys of `credHelpers` and `auths` match after normalisation (scheme and path
//!    dropped, Docker Hub's aliases folded into `docker.io`), a little more lenient
//!    than Docker's exact `credHelpers` lookup.
//!
//! Helpers are run by [`crate::credential_helper`] with the server URL Docker would
//! pass (`https://index.docker.io/v1/` for Docker Hub, else the registry's
//! `host[:port]`), bounded by [`AuthSource::with_helper_timeout`] (30 s by default);
//! any failure of a helper is one [`Error::CredentialHelper`] naming the helper, the
//! registry and the fix. An identity token from a helper (user `<token>`) is
//! exchanged for a registry token with an OAuth2 refresh-token grant, as Docker does
//! ([`crate::transport`]); registries that only speak Basic auth cannot use it.
//!
//! [`Challenge`] parses `WWW-Authenticate` headers (Basic and Bearer).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;

use crate::credential_helper;
use crate::error::{Error, Result};

/// The server URL Docker uses for Docker Hub in its config and with helpers.
pub const DOCKER_HUB_SERVER_URL: &str = "https://index.docker.io/v1/";

/// How long a credential helper may take by default.
pub const DEFAULT_HELPER_TIMEOUT: Duration = Duration::from_secs(30);

/// A user name and password (or token) for one registry, or an identity token.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name (empty with an identity token).
    pub username: String,
    /// Password or access token (empty with an identity token).
    pub password: String,
    /// An OAuth2 refresh token ("identity token") from a credential helper, traded for a
    /// registry token at the Bearer token endpoint instead of a user name and password.
    pub identity_token: Option<String>,
}

impl Credentials {
    /// A user name and password.
    pub fn basic(username: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials {
            username: username.into(),
            password: password.into(),
            identity_token: None,
        }
    }

    /// An identity token (what a helper returns under the user name `<token>`).
    pub fn identity_token(token: impl Into<String>) -> Credentials {
        Credentials {
            username: String::new(),
            password: String::new(),
            identity_token: Some(token.into()),
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.identity_token.is_some() {
            write!(f, "Credentials(identity token <redacted>)")
        } else {
            write!(f, "Credentials({}, <redacted>)", self.username)
        }
    }
}

/// Where credentials are looked up.
#[derive(Debug, Clone)]
pub struct AuthSource {
    env: Option<Credentials>,
    docker_config: Option<PathBuf>,
    /// `PATH` to find credential helpers on (and to give them).
    helper_path: Option<OsString>,
    helper_timeout: Duration,
}

impl Default for AuthSource {
    fn default() -> Self {
        AuthSource {
            env: None,
            docker_config: None,
            helper_path: None,
            helper_timeout: DEFAULT_HELPER_TIMEOUT,
        }
    }
}

impl AuthSource {
    /// From the process environment.
    pub fn from_env() -> AuthSource {
        AuthSource::from_lookup(|k| std::env::var(k).ok())
    }

    /// From an environment given as a lookup function (tests pass their own). `PATH`
    /// from it is where credential helpers are looked for.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> AuthSource {
        let env = match (
            lookup("CAST_REGISTRY_USER"),
            lookup("CAST_REGISTRY_PASSWORD"),
        ) {
            (Some(username), Some(password)) if !username.is_empty() => {
                Some(Credentials::basic(username, password))
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
            helper_path: lookup("PATH").map(OsString::from),
            helper_timeout: DEFAULT_HELPER_TIMEOUT,
        }
    }

    /// No credentials at all (anonymous pulls only).
    pub fn anonymous() -> AuthSource {
        AuthSource::default()
    }

    /// Kill a credential helper that has not answered after `timeout`.
    pub fn with_helper_timeout(mut self, timeout: Duration) -> AuthSource {
        self.helper_timeout = timeout;
        self
    }

    /// The credentials for `registry` (as written in references, e.g. `docker.io`,
    /// `127.0.0.1:5000`), if any; may run a credential helper (see the module docs).
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
        if let Some((helper, configured_by)) = cfg.helper_for(&want) {
            return self.run_helper(helper, &configured_by, registry, &want, path);
        }
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
                return Ok(Some(Credentials::basic(u, p)));
            }
            if let (Some(username), Some(password)) = (entry.username, entry.password) {
                return Ok(Some(Credentials::basic(username, password)));
            }
        }
        Ok(None)
    }

    /// Asks `docker-credential-<helper>` for `registry` (normalised: `want`).
    fn run_helper(
        &self,
        helper: &str,
        configured_by: &str,
        registry: &str,
        want: &str,
        config: &Path,
    ) -> Result<Option<Credentials>> {
        let server_url = if want == crate::reference::DOCKER_HUB {
            DOCKER_HUB_SERVER_URL
        } else {
            registry
        };
        credential_helper::get(
            helper,
            server_url,
            self.helper_path.as_deref(),
            self.helper_timeout,
        )
        .map_err(|failure| {
            let bin = format!("{}{helper}", credential_helper::PREFIX);
            let remove = format!("remove {configured_by} from {}", config.display());
            let advice = if failure.is_missing() {
                format!("install it, or {remove}")
            } else {
                format!(
                    "check that `echo {server_url} | {bin} get` prints credentials (log in again \
                     if needed), or {remove}, or set CAST_REGISTRY_USER and CAST_REGISTRY_PASSWORD"
                )
            };
            Error::CredentialHelper {
                helper: bin,
                registry: registry.to_string(),
                problem: failure.to_string(),
                advice,
            }
        })
    }
}

#[derive(Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
}

impl DockerConfig {
    /// The helper that answers for the normalised registry `want` and what configured
    /// it, or `None` for the `auths` map (Docker's `getConfiguredCredentialStore`). The
    /// key Docker itself looks up wins over other spellings of the same registry.
    fn helper_for(&self, want: &str) -> Option<(&str, String)> {
        let docker_key = if want == crate::reference::DOCKER_HUB {
            DOCKER_HUB_SERVER_URL
        } else {
            want
        };
        let entry = self.cred_helpers.get_key_value(docker_key).or_else(|| {
            self.cred_helpers
                .iter()
                .find(|(key, _)| normalize_registry(key) == want)
        });
        match entry {
            Some((_, helper)) if helper.is_empty() => None,
            Some((key, helper)) => Some((helper, format!("the `credHelpers` entry {key:?}"))),
            None => self
                .creds_store
                .as_deref()
                .filter(|s| !s.is_empty())
                .map(|s| (s, "`credsStore`".to_string())),
        }
    }
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
    fn helper_choice_follows_docker() {
        let cfg: DockerConfig = serde_json::from_str(
            r#"{"credsStore":"desktop","credHelpers":{"docker.io":"alias","https://index.docker.io/v1/":"hub","Reg.Example:5000":"ecr-login","plain.io":""}}"#,
        )
        .unwrap();
        let name = |r: &str| cfg.helper_for(&normalize_registry(r)).map(|(h, _)| h);
        assert_eq!(name("docker.io"), Some("hub"));
        assert_eq!(name("reg.example:5000"), Some("ecr-login"));
        assert_eq!(name("reg.example"), Some("desktop"));
        // An empty credHelpers value: the file store, not credsStore.
        assert_eq!(name("plain.io"), None);
        let cfg: DockerConfig = serde_json::from_str(r#"{"credsStore":""}"#).unwrap();
        assert_eq!(cfg.helper_for("x.io"), None);
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
