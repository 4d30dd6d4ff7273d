//! The URL sources of ADD, downloaded for one build.
//!
//! Each URL is downloaded at most once per build, however often the plan uses
//! it, into an anonymous temp file. What a URL serves goes into the build cache
//! key ([`Remote::key_parts`]): an unpinned URL is downloaded before the cache is
//! looked up, so new bytes behind the same URL make a new image (Docker checks
//! the remote on every build too); a URL pinned by `--checksum` is keyed by the
//! pin and downloaded only when the image is actually built. An offline build
//! cannot download; it still finds pinned URLs in the build cache.

use std::collections::HashMap;
use std::fs::File;
use std::io::Seek;

use super::BuildError;
use crate::diag::{Diagnostic, Location};
use crate::fetch::{self, Download};
use crate::stages::{CopySource, Op, Plan};

/// Downloads of one build.
#[derive(Debug, Default)]
pub struct Remote {
    offline: bool,
    progress: bool,
    files: HashMap<String, (File, Download)>,
}

impl Remote {
    /// No downloads yet; `offline` refuses any, `progress` draws bars on a terminal.
    pub fn new(offline: bool, progress: bool) -> Self {
        Self {
            offline,
            progress,
            files: HashMap::new(),
        }
    }

    /// One build cache key part per URL source of the stages `plan` builds,
    /// downloading the unpinned ones: `<url> sha256:<hex>`.
    pub fn key_parts(&mut self, plan: &Plan) -> Result<Vec<String>, BuildError> {
        let mut parts = Vec::new();
        for i in plan.needed_stages() {
            for op in &plan.stages[i].ops {
                let Op::Copy(c) = op else { continue };
                for s in &c.sources {
                    let CopySource::Url(url) = s else { continue };
                    let sha256 = match &c.checksum {
                        Some(pin) => pin.clone(),
                        None => self.open(&c.location, url, None)?.1.sha256,
                    };
                    parts.push(format!("{url} sha256:{sha256}"));
                }
            }
        }
        Ok(parts)
    }

    /// The downloaded body of `url` (read from its start) and what it was,
    /// checked against `checksum` (hex) when given.
    pub(super) fn open(
        &mut self,
        location: &Location,
        url: &str,
        checksum: Option<&str>,
    ) -> Result<(File, Download), BuildError> {
        let read_err = |source| BuildError::Download {
            location: location.clone(),
            url: url.to_owned(),
            source: fetch::FetchError::Io { source },
        };
        if !self.files.contains_key(url) {
            if self.offline {
                return Err(Diagnostic::new(
                    location.clone(),
                    format!("ADD {url} needs the network, but the build is offline"),
                )
                .with_hint(
                    "build once online, or download the file into the build context and COPY it",
                )
                .into());
            }
            let mut file = tempfile::tempfile().map_err(read_err)?;
            let download = fetch::download(url, &mut file, self.progress).map_err(|source| {
                BuildError::Download {
                    location: location.clone(),
                    url: url.to_owned(),
                    source,
                }
            })?;
            self.files.insert(url.to_owned(), (file, download));
        }
        let (file, download) = &self.files[url];
        if let Some(expected) = checksum {
            if download.sha256 != expected {
                return Err(BuildError::Checksum {
                    location: location.clone(),
                    url: url.to_owned(),
                    expected: expected.to_owned(),
                    actual: download.sha256.clone(),
                });
            }
        }
        let mut file = file.try_clone().map_err(read_err)?;
        file.rewind().map_err(read_err)?;
        Ok((file, download.clone()))
    }
}

/// The file name an ADD of `url` gets in a destination directory: the last
/// segment of its path (trailing slashes dropped), percent-decoded (`__unnamed__` when there is none, as in
/// BuildKit).
pub(super) fn file_name(url: &str) -> String {
    let path = reqwest::Url::parse(url)
        .ok()
        .and_then(|u| {
            u.path()
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .map(str::to_owned)
        })
        .unwrap_or_default();
    let name = percent_encoding::percent_decode_str(&path)
        .decode_utf8_lossy()
        .into_owned();
    if name.is_empty() || name == "." || name == ".." || name.contains('/') {
        "__unnamed__".to_owned()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::file_name;

    #[test]
    fn names_come_from_the_last_path_segment() {
        for (url, name) in [
            ("http://h/a/b/tool.tar.gz", "tool.tar.gz"),
            ("https://h/dir/my%20file?x=1#frag", "my file"),
            ("http://h/", "__unnamed__"),
            ("http://h", "__unnamed__"),
            ("http://h/a/", "a"),
            ("http://h/a/%2e%2e", "__unnamed__"),
            ("http://h/a/x%2Fy", "__unnamed__"),
        ] {
            assert_eq!(file_name(url), name, "{url}");
        }
    }
}
