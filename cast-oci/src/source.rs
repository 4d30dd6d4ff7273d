//! Where an image comes from: the text after `FROM`. Besides registry references this
//! accepts three local forms: `scratch` (no layers, empty config),
//! `oci-layout:PATH[:TAG]` (an OCI image layout directory) and
//! `docker-archive:PATH` (a `docker save` tarball).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::error::Error;
use crate::reference::Reference;

/// A parsed `FROM` source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The empty image.
    Scratch,
    /// An image in a registry.
    Registry(Reference),
    /// An OCI image layout directory, optionally picking the manifest whose
    /// `org.opencontainers.image.ref.name` annotation equals the tag.
    OciLayout {
        /// The layout directory (holding `oci-layout` and `index.json`).
        path: PathBuf,
        /// The ref name to select; `None` means "the only image in the index".
        tag: Option<String>,
    },
    /// A tarball written by `docker save`.
    DockerArchive {
        /// The `.tar` file.
        path: PathBuf,
        /// `repo:tag` to select when the archive holds several images.
        tag: Option<String>,
    },
}

impl FromStr for Source {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        if s == "scratch" {
            return Ok(Source::Scratch);
        }
        if let Some(rest) = s.strip_prefix("oci-layout:") {
            let (path, tag) = split_path_tag(rest);
            if path.is_empty() {
                return Err(Error::InvalidReference {
                    input: s.to_string(),
                    reason: "oci-layout: needs a directory, e.g. oci-layout:./img:latest".into(),
                });
            }
            return Ok(Source::OciLayout {
                path: path.into(),
                tag,
            });
        }
        if let Some(rest) = s.strip_prefix("docker-archive:") {
            if rest.is_empty() {
                return Err(Error::InvalidReference {
                    input: s.to_string(),
                    reason: "docker-archive: needs a file, e.g. docker-archive:./img.tar".into(),
                });
            }
            // `PATH.tar:repo:tag` — split only when the remainder names an image.
            let (path, tag) = match rest.find(".tar:") {
                Some(i) => (&rest[..i + 4], Some(rest[i + 5..].to_string())),
                None => (rest, None),
            };
            return Ok(Source::DockerArchive {
                path: path.into(),
                tag,
            });
        }
        Ok(Source::Registry(s.parse()?))
    }
}

/// `dir:tag` → (`dir`, `tag`); a `:` followed by a `/` belongs to the path.
fn split_path_tag(s: &str) -> (&str, Option<String>) {
    match s.rfind(':') {
        Some(i) if !s[i + 1..].contains('/') && i + 1 < s.len() => {
            (&s[..i], Some(s[i + 1..].to_string()))
        }
        Some(i) if i + 1 == s.len() => (&s[..i], None),
        _ => (s, None),
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Scratch => f.write_str("scratch"),
            Source::Registry(r) => write!(f, "{r}"),
            Source::OciLayout { path, tag } => {
                write!(f, "oci-layout:{}", path.display())?;
                tag.as_ref().map_or(Ok(()), |t| write!(f, ":{t}"))
            }
            Source::DockerArchive { path, tag } => {
                write!(f, "docker-archive:{}", path.display())?;
                tag.as_ref().map_or(Ok(()), |t| write!(f, ":{t}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_all_forms() {
        assert_eq!("scratch".parse::<Source>().unwrap(), Source::Scratch);
        assert_eq!(
            "oci-layout:/tmp/img:v1".parse::<Source>().unwrap(),
            Source::OciLayout {
                path: "/tmp/img".into(),
                tag: Some("v1".into())
            }
        );
        assert_eq!(
            "oci-layout:./img".parse::<Source>().unwrap(),
            Source::OciLayout {
                path: "./img".into(),
                tag: None
            }
        );
        assert_eq!(
            "docker-archive:/x/a.tar".parse::<Source>().unwrap(),
            Source::DockerArchive {
                path: "/x/a.tar".into(),
                tag: None
            }
        );
        assert_eq!(
            "docker-archive:/x/a.tar:foo:1".parse::<Source>().unwrap(),
            Source::DockerArchive {
                path: "/x/a.tar".into(),
                tag: Some("foo:1".into())
            }
        );
        assert!(matches!(
            "alpine".parse::<Source>().unwrap(),
            Source::Registry(_)
        ));
        assert!("oci-layout:".parse::<Source>().is_err());
        assert!("docker-archive:".parse::<Source>().is_err());
        assert_eq!(
            "oci-layout:/a:b".parse::<Source>().unwrap().to_string(),
            "oci-layout:/a:b"
        );
    }
}
