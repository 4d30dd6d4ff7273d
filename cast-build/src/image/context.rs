//! The build context: the directory COPY and ADD read from.
//!
//! The context honours `.containerignore`, or `.dockerignore` when there is no
//! `.containerignore`; an ignore file named after the Containerfile and next to
//! it (`Containerfile.containerignore`, `Containerfile.dockerignore`) wins over
//! both (see [`crate::ignore`] for the rules). COPY/ADD sources
//! are resolved here: plain paths, globs (matched against every non-ignored
//! path, `filepath.Match` rules) and directories (taken whole, minus ignored
//! entries). Nothing may resolve outside the context, symlinks included. Every
//! file and directory used is recorded so a build script can ask cargo to
//! rerun when one changes.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

use thiserror::Error;
use walkdir::WalkDir;

use crate::ignore::{clean, has_wildcards, IgnoreError, IgnoreMatcher};

/// Ignore files, in order of preference.
pub const IGNORE_FILES: [&str; 2] = [".containerignore", ".dockerignore"];

/// Why the context could not be opened.
#[derive(Debug, Error)]
pub enum ContextError {
    /// The directory is missing or unreadable.
    #[error("cannot open build context {}", path.display())]
    Open {
        /// The context directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The ignore file could not be read.
    #[error("cannot read {}", path.display())]
    ReadIgnore {
        /// The ignore file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The ignore file has a bad pattern.
    #[error("{}: bad ignore pattern", path.display())]
    BadIgnore {
        /// The ignore file.
        path: PathBuf,
        /// Which line and why.
        #[source]
        source: IgnoreError,
    },
}

/// Why a COPY/ADD source could not be resolved.
#[derive(Debug, Error)]
pub enum ResolveError {
    /// The source names a path outside the context.
    #[error("{src:?} is outside the build context")]
    Outside {
        /// The source as written.
        src: String,
    },
    /// Nothing at that path.
    #[error("{src:?} not found in the build context")]
    NotFound {
        /// The source as written.
        src: String,
    },
    /// The path exists but the ignore file excludes it.
    #[error("{src:?} is excluded by {ignore_file}")]
    Ignored {
        /// The source as written.
        src: String,
        /// Which ignore file.
        ignore_file: String,
    },
    /// A glob that matched nothing.
    #[error("no files match {src:?}")]
    NoMatch {
        /// The pattern as written.
        src: String,
    },
    /// `--exclude` patterns are malformed.
    #[error("bad --exclude pattern")]
    BadExclude(#[source] IgnoreError),
    /// Walking the context failed.
    #[error("cannot read {}", path.display())]
    Io {
        /// Where.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// An opened build context.
#[derive(Debug, Clone)]
pub struct BuildContext {
    root: PathBuf,
    ignore: IgnoreMatcher,
    ignore_file: Option<PathBuf>,
}

/// A path in the context that a source resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Relative to the context root, slash-separated (`.` for the root).
    pub rel: String,
    /// On disk.
    pub path: PathBuf,
    /// Whether it is a directory (its contents are copied).
    pub is_dir: bool,
}

impl BuildContext {
    /// Opens `root` and reads its ignore file.
    pub fn open(root: &Path) -> Result<Self, ContextError> {
        Self::open_for(root, None)
    }

    /// Opens `root` for building `containerfile`: an ignore file named after it
    /// and next to it (`Containerfile.containerignore`, `app.Dockerfile.dockerignore`)
    /// wins over the context's own, as in BuildKit; only one is read.
    pub fn open_for(root: &Path, containerfile: Option<&Path>) -> Result<Self, ContextError> {
        let root = root.canonicalize().map_err(|source| ContextError::Open {
            path: root.to_owned(),
            source,
        })?;
        let own = containerfile.and_then(|f| Some((f.parent()?, f.file_name()?)));
        let candidates = own
            .into_iter()
            .flat_map(|(dir, name)| {
                IGNORE_FILES.map(|ext| {
                    let mut file = name.to_owned();
                    file.push(ext);
                    dir.join(file)
                })
            })
            .chain(IGNORE_FILES.map(|name| root.join(name)));
        for path in candidates {
            if path.is_file() {
                let text =
                    std::fs::read_to_string(&path).map_err(|source| ContextError::ReadIgnore {
                        path: path.clone(),
                        source,
                    })?;
                let ignore =
                    IgnoreMatcher::parse(&text).map_err(|source| ContextError::BadIgnore {
                        path: path.clone(),
                        source,
                    })?;
                return Ok(Self {
                    root,
                    ignore,
                    ignore_file: Some(path),
                });
            }
        }
        Ok(Self {
            root,
            ignore: IgnoreMatcher::default(),
            ignore_file: None,
        })
    }

    /// The canonical context directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The ignore file in use, if any.
    pub fn ignore_file(&self) -> Option<&Path> {
        self.ignore_file.as_deref()
    }

    /// Whether a context-relative path is excluded by the ignore file.
    pub fn is_ignored(&self, rel: &str) -> bool {
        self.ignore.is_ignored(rel)
    }

    fn ignore_name(&self) -> String {
        self.ignore_file
            .as_ref()
            .and_then(|p| p.file_name())
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    }

    /// Resolves one COPY/ADD source to the context paths it names.
    pub fn resolve(&self, src: &str) -> Result<Vec<Resolved>, ResolveError> {
        let rel = relative(src).ok_or_else(|| ResolveError::Outside {
            src: src.to_owned(),
        })?;
        if !has_wildcards(&rel) {
            if self.is_ignored(&rel) {
                return Err(ResolveError::Ignored {
                    src: src.to_owned(),
                    ignore_file: self.ignore_name(),
                });
            }
            let path = self.root.join(&rel);
            let meta = std::fs::metadata(&path).map_err(|_| ResolveError::NotFound {
                src: src.to_owned(),
            })?;
            self.check_inside(src, &path)?;
            return Ok(vec![Resolved {
                rel,
                path,
                is_dir: meta.is_dir(),
            }]);
        }
        let glob =
            IgnoreMatcher::from_patterns(&[rel.as_str()]).map_err(ResolveError::BadExclude)?;
        let mut found = Vec::new();
        for entry in self.walk(&self.root)? {
            if glob.matches_exactly(&entry.rel) {
                self.check_inside(src, &entry.path)?;
                found.push(entry);
            }
        }
        // A directory matched by the glob already brings its contents.
        let dirs: Vec<String> = found
            .iter()
            .filter(|e| e.is_dir)
            .map(|e| format!("{}/", e.rel))
            .collect();
        found.retain(|e| !dirs.iter().any(|d| e.rel.starts_with(d.as_str())));
        if found.is_empty() {
            return Err(ResolveError::NoMatch {
                src: src.to_owned(),
            });
        }
        Ok(found)
    }

    /// Every non-ignored path under `dir` (itself excluded), sorted.
    pub fn walk(&self, dir: &Path) -> Result<Vec<Resolved>, ResolveError> {
        let mut out = Vec::new();
        let mut it = WalkDir::new(dir)
            .min_depth(1)
            .sort_by_file_name()
            .into_iter();
        while let Some(entry) = it.next() {
            let entry = entry.map_err(|e| ResolveError::Io {
                path: e.path().unwrap_or(dir).to_owned(),
                source: e
                    .into_io_error()
                    .unwrap_or_else(|| std::io::Error::other("filesystem loop")),
            })?;
            let Ok(rel) = entry.path().strip_prefix(&self.root) else {
                continue;
            };
            let rel = rel.to_string_lossy().replace('\\', "/");
            if self.is_ignored(&rel) {
                // Keep walking into ignored directories only if a `!` may re-include.
                if entry.file_type().is_dir() && !self.ignore.has_exclusions() {
                    it.skip_current_dir();
                }
                continue;
            }
            out.push(Resolved {
                rel,
                path: entry.path().to_owned(),
                is_dir: entry.file_type().is_dir(),
            });
        }
        Ok(out)
    }

    /// Refuses a path whose real location (after symlinks) leaves the context.
    fn check_inside(&self, src: &str, path: &Path) -> Result<(), ResolveError> {
        match path.canonicalize() {
            Ok(real) if real.starts_with(&self.root) => Ok(()),
            Ok(_) => Err(ResolveError::Outside {
                src: src.to_owned(),
            }),
            Err(source) => Err(ResolveError::Io {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// Every file and directory a list of sources uses, for `rerun-if-changed`.
    pub fn files_used(
        &self,
        sources: &[Resolved],
        exclude: &[String],
    ) -> Result<BTreeSet<PathBuf>, ResolveError> {
        let exclude = IgnoreMatcher::from_patterns(exclude).map_err(ResolveError::BadExclude)?;
        let mut used = BTreeSet::new();
        used.extend(self.ignore_file.clone());
        for s in sources {
            used.insert(s.path.clone());
            if s.is_dir {
                for e in self.walk(&s.path)? {
                    let inner = e
                        .rel
                        .strip_prefix(&format!("{}/", s.rel))
                        .unwrap_or(&e.rel)
                        .to_owned();
                    if !exclude.is_ignored(&inner) {
                        used.insert(e.path);
                    }
                }
            }
        }
        Ok(used)
    }
}

/// Cleans a source to a context-relative path; `None` if it escapes.
fn relative(src: &str) -> Option<String> {
    let p = Path::new(src);
    if p.components().any(|c| matches!(c, Component::Prefix(_))) {
        return None;
    }
    let cleaned = clean(src.trim_start_matches('/'));
    if cleaned == ".." || cleaned.starts_with("../") {
        return None;
    }
    Some(cleaned)
}
