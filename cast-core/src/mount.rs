//! Host mounts: a host directory or file shared with the guest at a path in its root.
//!
//! One spelling everywhere, Docker's `-v`: `HOST:GUEST[:ro|:rw]`. Lists
//! (`CAST_MOUNT`) separate mounts with `,` or `;`. A relative host path (`.:/work`)
//! is kept as written and resolved against the current directory when the VM
//! starts ([`Mount::resolve`]), so a baked mount follows where the tool is run.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// A host path shared with the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The host directory or file, as written (may be relative).
    pub source: PathBuf,
    /// Where it appears in the guest: an absolute, normal path, not `/`.
    pub target: String,
    /// The guest cannot change it (enforced by the host's file server too).
    pub read_only: bool,
}

/// A mount specification is malformed, or its host path does not exist.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    /// The text is not `HOST:GUEST[:ro|:rw]`.
    #[error("mount {spec:?}: {why} (expected HOST:GUEST, HOST:GUEST:ro or HOST:GUEST:rw)")]
    Syntax {
        /// The specification.
        spec: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The host path is missing or unreadable.
    #[error("mount source {path} does not exist or cannot be read")]
    Source {
        /// The host path, made absolute.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The host path is neither a directory nor a regular file.
    #[error("mount source {path} is neither a directory nor a regular file")]
    Kind {
        /// The host path, made absolute.
        path: PathBuf,
    },
}

/// What a host path turned out to be when the VM started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// A directory, shared as it is.
    Directory,
    /// A regular file, shared alone (none of its siblings).
    File,
}

/// A [`Mount`] whose host path was found: absolute, with symlinks resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedMount {
    /// The host path, canonical.
    pub source: PathBuf,
    /// Directory or file.
    pub kind: SourceKind,
    /// Where it appears in the guest.
    pub target: String,
    /// Read-only.
    pub read_only: bool,
}

impl Mount {
    /// Resolves the host path against `cwd` and checks that it exists and is a
    /// directory or a regular file.
    pub fn resolve(&self, cwd: &Path) -> Result<ResolvedMount, MountError> {
        let joined = cwd.join(&self.source);
        let source = std::fs::canonicalize(&joined).map_err(|source| MountError::Source {
            path: joined.clone(),
            source,
        })?;
        let meta = std::fs::metadata(&source).map_err(|e| MountError::Source {
            path: joined.clone(),
            source: e,
        })?;
        let kind = if meta.is_dir() {
            SourceKind::Directory
        } else if meta.is_file() {
            SourceKind::File
        } else {
            return Err(MountError::Kind { path: joined });
        };
        Ok(ResolvedMount {
            source,
            kind,
            target: self.target.clone(),
            read_only: self.read_only,
        })
    }
}

/// Parses a list: mounts separated by `,` or `;` (empty items are skipped).
pub fn parse_list(value: &str) -> Result<Vec<Mount>, MountError> {
    value
        .split([',', ';'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::parse)
        .collect()
}

impl FromStr for Mount {
    type Err = MountError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let bad = |why| MountError::Syntax {
            spec: spec.to_owned(),
            why,
        };
        let mut parts = spec.split(':');
        let (source, target) = match (parts.next(), parts.next()) {
            (Some(s), Some(t)) => (s, t),
            _ => return Err(bad("no guest path")),
        };
        let read_only = match parts.next() {
            None | Some("rw") => false,
            Some("ro") => true,
            Some(_) => return Err(bad("the option after the guest path must be ro or rw")),
        };
        if parts.next().is_some() {
            return Err(bad("too many `:`"));
        }
        if source.is_empty() {
            return Err(bad("the host path is empty"));
        }
        let target = match target.strip_suffix('/') {
            Some(t) if !t.is_empty() => t,
            _ => target,
        };
        let normal = target
            .split('/')
            .skip(1)
            .all(|c| !c.is_empty() && c != "." && c != "..");
        if !target.starts_with('/') || !(normal || target == "/") {
            return Err(bad(
                "the guest path must be absolute, without `.`, `..` or `//`",
            ));
        }
        if target == "/" {
            return Err(bad("the guest path cannot be /"));
        }
        Ok(Mount {
            source: source.into(),
            target: target.to_owned(),
            read_only,
        })
    }
}

impl fmt::Display for Mount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.source.display(), self.target)?;
        if self.read_only {
            f.write_str(":ro")?;
        }
        Ok(())
    }
}

impl Serialize for Mount {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Mount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_like_dockers_v() {
        let m: Mount = "/host/a:/guest/a".parse().unwrap();
        assert_eq!(
            (m.source.to_str().unwrap(), m.target.as_str(), m.read_only),
            ("/host/a", "/guest/a", false)
        );
        assert!("./data:/work/:ro".parse::<Mount>().unwrap().read_only);
        assert_eq!("./d:/work/".parse::<Mount>().unwrap().target, "/work");
        assert!(!"a:/b:rw".parse::<Mount>().unwrap().read_only);
        for bad in [
            "",
            "/a",
            ":/b",
            "/a:b",
            "/a:/",
            "/a:/b:rx",
            "/a:/b:ro:x",
            "/a:/b/../c",
            "/a:/b/./c",
            "/a://b",
        ] {
            assert!(bad.parse::<Mount>().is_err(), "{bad:?}");
        }
        let e = "/a:/b:rx".parse::<Mount>().unwrap_err().to_string();
        assert!(e.contains("\"/a:/b:rx\"") && e.contains("ro or rw"), "{e}");
    }

    #[test]
    fn lists_take_commas_and_semicolons_and_round_trip() {
        let list = parse_list("/host/a:/guest/a, /host/b:/guest/b:ro;.:/work;").unwrap();
        assert_eq!(list.len(), 3);
        assert!(list[1].read_only);
        let text: Vec<String> = list.iter().map(Mount::to_string).collect();
        assert_eq!(text, ["/host/a:/guest/a", "/host/b:/guest/b:ro", ".:/work"]);
        let again: Vec<Mount> = text.iter().map(|t| t.parse().unwrap()).collect();
        assert_eq!(again, list);
    }

    #[test]
    fn relative_sources_resolve_against_the_directory_and_must_exist() {
        let dir = std::env::temp_dir();
        let m: Mount = ".:/work".parse().unwrap();
        let r = m.resolve(&dir).unwrap();
        assert_eq!(r.source, std::fs::canonicalize(&dir).unwrap());
        assert_eq!(r.kind, SourceKind::Directory);
        let missing: Mount = "no-such-cast-dir:/x".parse().unwrap();
        let e = missing.resolve(&dir).unwrap_err().to_string();
        assert!(
            e.contains(&dir.join("no-such-cast-dir").display().to_string()),
            "{e}"
        );
    }
}
