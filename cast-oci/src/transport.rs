//! The HTTP side of the OCI distribution API for one repository: scheme choice (plain
//! http only for loopback or registries marked insecure), the auth handshake (answer a
//! `WWW-Authenticate` challenge with Basic credentials or an anonymous/credentialed
//! Bearer token — fetched by GET with Basic auth, or, for an identity token from a
//! credential helper, by Docker's OAuth2 refresh-token POST — then reuse the header),
//! retries with exponential backoff on transient failures (connect errors, 429, 5xx —
//! never other 4xx), and mapping of HTTP failures to errors that name the registry.

use std::io::{Read, Write};
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine as _;
use reqwest::blocking::{Client, Response};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use serde::Deserialize;

use crate::auth::{AuthSource, Challenge, Credentials};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::reference::Reference;
use crate::retry::RetryPolicy;

/// Manifest media types we ask for, most specific first.
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// `client_id` of the OAuth2 token request: a required field; Docker sends `docker`
/// (`registry.AuthClientID`), so token servers see the client they know from Docker.
const OAUTH_CLIENT_ID: &str = "docker";

/// Manifests above this size are refused (registries accept at most 4 MiB).
const MAX_MANIFEST: u64 = 8 << 20;

/// Connection settings for registries.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Registries (`host[:port]`) to talk plain http to, besides loopback.
    pub insecure_registries: Vec<String>,
    /// Credential lookup.
    pub auth: AuthSource,
    /// Retry policy for transient failures.
    pub retry: RetryPolicy,
    /// Bound on establishing a connection.
    pub connect_timeout: Duration,
    /// Bound on each read or write once connected.
    pub io_timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            insecure_registries: Vec::new(),
            auth: AuthSource::from_env(),
            retry: RetryPolicy::default(),
            connect_timeout: Duration::from_secs(10),
            io_timeout: Duration::from_secs(60),
        }
    }
}

/// A client for one repository of one registry.
#[derive(Debug)]
pub struct RegistryClient {
    http: Client,
    registry: String,
    repository: String,
    base: String,
    credentials: Option<Credentials>,
    auth_header: Mutex<Option<String>>,
    retry: RetryPolicy,
}

impl RegistryClient {
    /// A client for the repository of `reference`.
    pub fn new(reference: &Reference, opts: &ClientOptions) -> Result<RegistryClient> {
        let host = reference.host_name();
        let insecure = matches!(host, "localhost" | "127.0.0.1" | "[::1]")
            || opts
                .insecure_registries
                .iter()
                .any(|r| r == &reference.registry || r == host);
        let scheme = if insecure { "http" } else { "https" };
        let http = Client::builder()
            .user_agent(concat!("cast-oci/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(opts.connect_timeout)
            .timeout(opts.io_timeout)
            .build()
            .map_err(Error::Client)?;
        Ok(RegistryClient {
            http,
            registry: reference.registry.clone(),
            repository: reference.repository.clone(),
            base: format!("{scheme}://{}", reference.api_host()),
            credentials: opts.auth.credentials_for(&reference.registry)?,
            auth_header: Mutex::new(None),
            retry: opts.retry.clone(),
        })
    }

    /// The registry as named in references (for messages).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// Fetches a manifest by tag or digest and verifies it: against the digest asked
    /// for, or against the registry's `Docker-Content-Digest` header for a tag.
    /// Returns the bytes, their digest and the `Content-Type`.
    pub fn manifest(&self, tag_or_digest: &str) -> Result<(Vec<u8>, Digest, Option<String>)> {
        let what = format!("manifest {}:{tag_or_digest}", self.repository);
        self.retry.run(|| {
            let resp = self.get(
                &format!("manifests/{tag_or_digest}"),
                Some(MANIFEST_ACCEPT),
                &what,
            )?;
            let ctype = header(&resp, CONTENT_TYPE.as_str())
                .map(|c| c.split(';').next().unwrap_or("").trim().to_string());
            let claimed =
                header(&resp, "docker-content-digest").and_then(|d| d.parse::<Digest>().ok());
            let mut bytes = Vec::new();
            resp.take(MAX_MANIFEST + 1)
                .read_to_end(&mut bytes)
                .map_err(|source| self.interrupted(&what, source))?;
            if bytes.len() as u64 > MAX_MANIFEST {
                return Err(Error::TooLarge {
                    registry: self.registry.clone(),
                    what: what.clone(),
                    limit: MAX_MANIFEST,
                });
            }
            let actual = Digest::of(&bytes);
            let expected = tag_or_digest.parse::<Digest>().ok().or(claimed);
            if let Some(exp) = expected {
                exp.verify(&actual, &what, &self.registry)?;
            }
            Ok((bytes, actual, ctype))
        })
    }

    /// Streams blob `digest` into `sink`, calling `progress` with each chunk's length.
    /// Stops with [`Error::TooLarge`] once more than `size` bytes (the size the manifest
    /// declares) arrive. One attempt; the caller retries (it owns the sink).
    pub fn blob(
        &self,
        digest: &Digest,
        size: u64,
        sink: &mut dyn Write,
        progress: &dyn Fn(u64),
    ) -> Result<()> {
        let what = format!("blob {digest}");
        let mut resp = self.get(&format!("blobs/{digest}"), None, &what)?;
        let mut buf = vec![0u8; 128 * 1024];
        let mut total = 0u64;
        loop {
            let n = resp
                .read(&mut buf)
                .map_err(|source| self.interrupted(&what, source))?;
            if n == 0 {
                return Ok(());
            }
            total += n as u64;
            if total > size {
                return Err(Error::TooLarge {
                    registry: self.registry.clone(),
                    what,
                    limit: size,
                });
            }
            sink.write_all(&buf[..n])
                .map_err(|e| Error::io("write blob", "the blob cache", e))?;
            progress(n as u64);
        }
    }

    /// The retry policy of this client.
    pub fn retry(&self) -> &RetryPolicy {
        &self.retry
    }

    /// GET `/v2/<repo>/<path>`, answering one auth challenge if needed.
    fn get(&self, path: &str, accept: Option<&str>, what: &str) -> Result<Response> {
        let url = format!("{}/v2/{}/{path}", self.base, self.repository);
        for round in 0..2 {
            let mut req = self.http.get(&url);
            if let Some(a) = accept {
                req = req.header(ACCEPT, a);
            }
            let auth = self.auth_header.lock().expect("auth header lock").clone();
            if let Some(h) = &auth {
                req = req.header(AUTHORIZATION, h);
            }
            let resp = req.send().map_err(|e| self.send_error(what, e))?;
            let status = resp.status().as_u16();
            match status {
                200..=299 => return Ok(resp),
                401 if round == 0 => self.authenticate(&resp)?,
                401 => return Err(self.unauthorized()),
                403 => {
                    return Err(Error::Forbidden {
                        registry: self.registry.clone(),
                        repository: self.repository.clone(),
                    })
                }
                429 => {
                    return Err(Error::RateLimited {
                        registry: self.registry.clone(),
                        what: what.to_string(),
                    })
                }
                404 => {
                    return Err(Error::NotFound {
                        registry: self.registry.clone(),
                        what: what.to_string(),
                    })
                }
                _ => {
                    return Err(Error::Status {
                        registry: self.registry.clone(),
                        status,
                        what: what.to_string(),
                    })
                }
            }
        }
        Err(self.unauthorized())
    }

    fn unauthorized(&self) -> Error {
        Error::Unauthorized {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            problem: if self.credentials.is_some() {
                "rejected the credentials"
            } else {
                "needs credentials"
            },
        }
    }

    /// Answers the challenge of a 401 response by setting the auth header.
    fn authenticate(&self, resp: &Response) -> Result<()> {
        let challenges: Vec<Challenge> = resp
            .headers()
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(Challenge::parse)
            .collect();
        let bearer = challenges
            .iter()
            .find(|c| matches!(c, Challenge::Bearer { .. }));
        let header = match (bearer, &self.credentials) {
            (
                Some(Challenge::Bearer {
                    realm,
                    service,
                    scope,
                }),
                creds,
            ) => {
                let scope = scope
                    .clone()
                    .unwrap_or_else(|| format!("repository:{}:pull", self.repository));
                format!(
                    "Bearer {}",
                    self.fetch_token(realm, service.as_deref(), &scope, creds.as_ref())?
                )
            }
            (_, Some(c)) if c.identity_token.is_some() => {
                return Err(Error::Unauthorized {
                    registry: self.registry.clone(),
                    repository: self.repository.clone(),
                    problem: "offers no Bearer token auth, which the identity token from the \
                              credential helper needs",
                })
            }
            (_, Some(c)) if challenges.contains(&Challenge::Basic) => {
                let raw = format!("{}:{}", c.username, c.password);
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(raw)
                )
            }
            _ => return Err(self.unauthorized()),
        };
        *self.auth_header.lock().expect("auth header lock") = Some(header);
        Ok(())
    }

    fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: &str,
        creds: Option<&Credentials>,
    ) -> Result<String> {
        #[derive(Deserialize)]
        struct TokenReply {
            token: Option<String>,
            access_token: Option<String>,
        }
        let what = format!("token from {realm}");
        let mut query = vec![("scope", scope)];
        if let Some(s) = service {
            query.push(("service", s));
        }
        let req = match creds {
            // Docker's OAuth2 refresh-token grant (distribution's `fetchTokenWithOAuth`).
            Some(Credentials {
                identity_token: Some(token),
                ..
            }) => {
                let mut form = vec![
                    ("grant_type", "refresh_token"),
                    ("refresh_token", token.as_str()),
                    ("client_id", OAUTH_CLIENT_ID),
                    ("scope", scope),
                ];
                form.extend(service.map(|s| ("service", s)));
                self.http.post(realm).form(&form)
            }
            Some(c) => self
                .http
                .get(realm)
                .query(&query)
                .basic_auth(&c.username, Some(&c.password)),
            None => self.http.get(realm).query(&query),
        };
        let resp = req.send().map_err(|e| self.send_error(&what, e))?;
        match resp.status().as_u16() {
            200..=299 => {}
            401 | 403 => return Err(self.unauthorized()),
            status => {
                return Err(Error::Status {
                    registry: self.registry.clone(),
                    status,
                    what,
                })
            }
        }
        let bytes = resp.bytes().map_err(|e| self.transfer(&what, e))?;
        let reply: TokenReply = serde_json::from_slice(&bytes).map_err(|source| Error::Json {
            what: "token reply".into(),
            origin: realm.into(),
            source,
        })?;
        reply
            .token
            .or(reply.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::Unsupported {
                origin: realm.into(),
                what: "token reply".into(),
                detail: "no token in it".into(),
            })
    }

    fn send_error(&self, what: &str, e: reqwest::Error) -> Error {
        if e.is_connect() || e.is_timeout() || e.is_request() {
            Error::Unreachable {
                registry: self.registry.clone(),
                source: e,
            }
        } else {
            self.transfer(what, e)
        }
    }

    fn interrupted(&self, what: &str, source: std::io::Error) -> Error {
        Error::Interrupted {
            registry: self.registry.clone(),
            what: what.to_string(),
            source,
        }
    }

    fn transfer(&self, what: &str, e: reqwest::Error) -> Error {
        Error::Transfer {
            registry: self.registry.clone(),
            what: what.to_string(),
            source: e,
        }
    }
}

fn header<'a>(resp: &'a Response, name: &str) -> Option<&'a str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheme_follows_host() {
        let opts = ClientOptions {
            auth: AuthSource::anonymous(),
            insecure_registries: vec!["reg.lan:5000".into()],
            ..Default::default()
        };
        for (r, scheme) in [
            ("127.0.0.1:5000/a", "http"),
            ("localhost/a", "http"),
            ("[::1]:5/a", "http"),
            ("reg.lan:5000/a", "http"),
            ("ghcr.io/a", "https"),
            ("alpine", "https"),
        ] {
            let c = RegistryClient::new(&r.parse().unwrap(), &opts).unwrap();
            assert!(
                c.base.starts_with(&format!("{scheme}://")),
                "{r}: {}",
                c.base
            );
        }
    }
}
