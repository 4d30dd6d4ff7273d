//! Image references as written after `FROM`: `[host[:port]/]repo[:tag][@digest]`, with
//! Docker Hub's conventions (`alpine` is `docker.io/library/alpine:latest`, the API of
//! `docker.io` lives at `registry-1.docker.io`). The grammar follows the distribution
//! project's reference grammar: the first path component is a registry host only if it
//! contains a `.` or a `:` or is `localhost`; repository components are lowercase.

use std::fmt;
use std::str::FromStr;

use crate::digest::Digest;
use crate::error::Error;

/// Docker Hub's name in references.
pub const DOCKER_HUB: &str = "docker.io";
/// Where Docker Hub's registry API answers.
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// A parsed, normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// Registry host with optional port, e.g. `docker.io`, `127.0.0.1:5000`, `[::1]:5000`.
    pub registry: String,
    /// Repository path, e.g. `library/alpine`.
    pub repository: String,
    /// Tag; `None` only when a digest is given without a tag.
    pub tag: Option<String>,
    /// Pinned manifest digest, if any; it takes precedence over the tag.
    pub digest: Option<Digest>,
}

impl Reference {
    /// The host (and port) to talk HTTP to.
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// Host without the port (brackets kept for IPv6).
    pub fn host_name(&self) -> &str {
        host_without_port(&self.registry)
    }

    /// The tag or digest to ask the manifest endpoint for.
    pub fn manifest_ref(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        }
    }
}

/// `host[:port]` → `host`, `[::1]:5000` → `[::1]`.
pub(crate) fn host_without_port(registry: &str) -> &str {
    if registry.starts_with('[') {
        match registry.find(']') {
            Some(i) => &registry[..=i],
            None => registry,
        }
    } else {
        registry.split(':').next().unwrap_or(registry)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl FromStr for Reference {
    type Err = Error;

    fn from_str(input: &str) -> Result<Self, Error> {
        let err = |reason: &str| Error::InvalidReference {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        if input.is_empty() {
            return Err(err("empty reference"));
        }
        if input.len() > 255 + 128 + 72 || input.chars().any(|c| c.is_whitespace()) {
            return Err(err("too long or contains whitespace"));
        }
        let (rest, digest) = match input.rsplit_once('@') {
            Some((r, d)) => (
                r,
                Some(
                    d.parse::<Digest>()
                        .map_err(|_| err("digest must be sha256:<64 lowercase hex digits>"))?,
                ),
            ),
            None => (input, None),
        };
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(t) = tag {
            if !valid_tag(t) {
                return Err(err(
                    "tag must be 1-128 of [A-Za-z0-9_.-], not starting with . or -",
                ));
            }
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, path))
                if first.contains(['.', ':']) || first == "localhost" || first.starts_with('[') =>
            {
                if !valid_host(first) {
                    return Err(err("registry must be host[:port] with a numeric port"));
                }
                let registry = if first == "index.docker.io" {
                    DOCKER_HUB
                } else {
                    first
                };
                (registry.to_string(), path.to_string())
            }
            _ => (DOCKER_HUB.to_string(), name.to_string()),
        };
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        if repository.is_empty() {
            return Err(err("missing repository name"));
        }
        if repository.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(err("repository name must be lowercase"));
        }
        if !repository.split('/').all(valid_path_component) {
            return Err(err(
                "repository components must be [a-z0-9] separated by '.', '_', '__' or '-'",
            ));
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, Some(_)) => None,
            (None, None) => Some("latest".to_string()),
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }
}

fn valid_tag(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 128
        && !t.starts_with(['.', '-'])
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

fn valid_host(h: &str) -> bool {
    let (host, port) = if let Some(rest) = h.strip_prefix('[') {
        match rest.split_once(']') {
            Some((ip6, after)) => {
                if ip6.is_empty() || !ip6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
                    return false;
                }
                match after.strip_prefix(':') {
                    Some(p) => ("x", Some(p)),
                    None if after.is_empty() => ("x", None),
                    None => return false,
                }
            }
            None => return false,
        }
    } else {
        match h.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (h, None),
        }
    };
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    let host_ok = !host.is_empty()
        && host.split('.').all(|l| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    port_ok && host_ok
}

fn valid_path_component(c: &str) -> bool {
    // [a-z0-9]+ ( ( [._] | __ | -+ ) [a-z0-9]+ )*
    let b = c.as_bytes();
    if b.is_empty() || !b[0].is_ascii_alphanumeric() || !b[b.len() - 1].is_ascii_alphanumeric() {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_lowercase() || b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !b[i].is_ascii_alphanumeric() {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Reference {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn docker_hub_defaults() {
        let r = p("alpine");
        assert_eq!(r.to_string(), "docker.io/library/alpine:latest");
        assert_eq!(r.api_host(), "registry-1.docker.io");
        assert_eq!(p("user/repo:1.0").to_string(), "docker.io/user/repo:1.0");
        assert_eq!(
            p("index.docker.io/library/busybox").to_string(),
            "docker.io/library/busybox:latest"
        );
    }

    #[test]
    fn hosts_ports_digests() {
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let r = p(&format!("127.0.0.1:5000/a/b-c:v1@{d}"));
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str()),
            ("127.0.0.1:5000", "a/b-c")
        );
        assert_eq!(r.tag.as_deref(), Some("v1"));
        assert_eq!(r.manifest_ref(), d);
        let r = p(&format!("localhost/x@{d}"));
        assert_eq!((r.registry.as_str(), r.tag.clone()), ("localhost", None));
        assert_eq!(p("[::1]:5000/x").host_name(), "[::1]");
        assert_eq!(p("localhost:5000/x").host_name(), "localhost");
        assert_eq!(p("ghcr.io/o/r:tag").api_host(), "ghcr.io");
    }

    #[test]
    fn malformed() {
        for s in [
            "",
            "Alpine",
            "alpine:",
            "alpine:-x",
            "alpine@sha256:123",
            "host:port/x",
            "a//b",
            "a/b/",
            "a b",
            "a..b",
            "[::1/x",
        ] {
            let e = s.parse::<Reference>().expect_err(s);
            assert!(e.to_string().contains("invalid image reference"), "{e}");
        }
    }
}
