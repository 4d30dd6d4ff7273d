//! Applying one COPY or ADD to a stage's tree, with Docker's rules: several
//! sources need a destination ending in `/`; a file goes to `dest/name` when
//! the destination ends in `/` or is an existing directory, else to `dest`; a
//! directory's contents (not the directory) are merged into the destination.
//! A URL source (ADD) lands like a file named by the URL's last path segment.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use cast_rootfs::{ImageTree, InodeId, Metadata, Timestamp};

use super::archive;
use super::graft::{graft, graft_contents, Override};
use super::owner::resolve_chown;
use super::remote::{self, Remote};
use super::{BaseTrees, BuildError};
use crate::context::{BuildContext, Resolved};
use crate::diag::{Diagnostic, Location};
use crate::ignore::{has_wildcards, IgnoreMatcher};
use crate::stages::{CopyFrom, CopyOp, CopySource};

/// Where COPY can read from besides the context.
pub(super) struct Sources<'a> {
    pub(super) context: &'a BuildContext,
    pub(super) stages: &'a [Option<ImageTree>],
    pub(super) images: &'a mut HashMap<String, ImageTree>,
    pub(super) bases: &'a mut dyn BaseTrees,
    pub(super) remote: &'a mut Remote,
    pub(super) platform: Option<&'a str>,
}

/// Applies `op` to `tree`, recording context files used in `files`.
pub(super) fn apply(
    tree: &mut ImageTree,
    op: &CopyOp,
    src: &mut Sources<'_>,
    files: &mut BTreeSet<PathBuf>,
) -> Result<(), BuildError> {
    let loc = &op.location;
    let owner = match &op.chown {
        Some(spec) => Some(resolve_chown(tree, spec).map_err(|m| {
            Diagnostic::new(loc.clone(), m)
                .with_hint("add the user to the image's /etc/passwd or use numeric ids")
        })?),
        None => None,
    };
    // Without --chown, context files become root's; stage files keep their owners.
    let ov = Override {
        owner,
        mode: op.chmod.clone(),
    };
    let mut dir_meta = Metadata::default_dir();
    if let Some((uid, gid)) = owner {
        (dir_meta.uid, dir_meta.gid) = (uid, gid);
    }
    let cx = Cx {
        loc,
        op,
        ov,
        dir_meta,
    };
    match &op.from {
        CopyFrom::Context => cx.copy_context(tree, src.context, src.remote, files),
        CopyFrom::Stage(i) => {
            let stage = src.stages[*i]
                .as_ref()
                .expect("needed stages are built first");
            cx.copy_tree(tree, stage)
        }
        CopyFrom::Image(image) => {
            if !src.images.contains_key(image) {
                let t = src.bases.tree(image, src.platform).map_err(|source| {
                    BuildError::BaseImage {
                        location: loc.clone(),
                        image: image.clone(),
                        source,
                    }
                })?;
                src.images.insert(image.clone(), t);
            }
            cx.copy_tree(tree, &src.images[image])
        }
    }
}

struct Cx<'a> {
    loc: &'a Location,
    op: &'a CopyOp,
    ov: Override,
    dir_meta: Metadata,
}

impl Cx<'_> {
    fn keyword(&self) -> &'static str {
        if self.op.add {
            "ADD"
        } else {
            "COPY"
        }
    }

    fn tree_err(&self, path: &Path) -> impl FnOnce(cast_rootfs::tree::AddError) -> BuildError + '_ {
        let path = path.to_owned();
        move |source| BuildError::Tree {
            location: Some(self.loc.clone()),
            path,
            source,
        }
    }

    /// The override for files that come from outside the image (the context, a
    /// URL): root-owned unless `--chown`.
    fn context_override(&self) -> Override {
        Override {
            owner: Some(self.ov.owner.unwrap_or((0, 0))),
            mode: self.ov.mode.clone(),
        }
    }

    /// The destination directory (trailing `/` dropped).
    fn dest_dir(&self) -> PathBuf {
        match self.op.dest.trim_end_matches('/') {
            "" => PathBuf::from("/"),
            d => PathBuf::from(d),
        }
    }

    /// Refuses several sources into a destination not ending in `/`.
    fn check_many(&self, count: usize) -> Result<(), BuildError> {
        if count > 1 && !self.op.dest.ends_with('/') {
            return Err(Diagnostic::new(
                self.loc.clone(),
                format!(
                    "{} with more than one source needs a directory destination",
                    self.keyword()
                ),
            )
            .with_hint(format!(
                "end the destination with a slash: {}/",
                self.op.dest
            ))
            .into());
        }
        Ok(())
    }

    /// Where a single non-directory source named `name` lands.
    fn file_target(&self, tree: &ImageTree, name: &str) -> PathBuf {
        let into_dir = self.op.dest.ends_with('/')
            || tree
                .lookup_follow(&self.op.dest)
                .is_ok_and(|id| tree.inode(id).node.is_dir());
        if into_dir {
            self.dest_dir().join(name)
        } else {
            PathBuf::from(&self.op.dest)
        }
    }

    fn inline(&self, tree: &mut ImageTree, content: &str) -> Result<(), BuildError> {
        if self.op.dest.ends_with('/') {
            return Err(Diagnostic::new(
                self.loc.clone(),
                "a heredoc source needs a file destination",
            )
            .with_hint("name the file: COPY <<EOF /path/to/file")
            .into());
        }
        let dest = PathBuf::from(&self.op.dest);
        let meta = self.ov.apply(Metadata::with_mode(0o644), false);
        tree.add_file(&dest, &mut content.as_bytes(), meta)
            .map_err(self.tree_err(&dest))?;
        Ok(())
    }

    /// ADD of a URL: a root-owned 0600 file (as in Docker) with the server's
    /// `Last-Modified` as mtime (the epoch without one), never extracted.
    fn download(
        &self,
        tree: &mut ImageTree,
        remote: &mut Remote,
        url: &str,
    ) -> Result<(), BuildError> {
        let (mut file, download) = remote.open(self.loc, url, self.op.checksum.as_deref())?;
        let meta = self.context_override().apply(
            Metadata {
                mode: 0o600,
                mtime: Timestamp {
                    sec: download.last_modified.unwrap_or(0),
                    nsec: 0,
                },
                ..Metadata::default()
            },
            false,
        );
        let target = self.file_target(tree, &remote::file_name(url));
        tree.add_file(&target, &mut file, meta)
            .map_err(self.tree_err(&target))?;
        Ok(())
    }

    fn copy_context(
        &self,
        tree: &mut ImageTree,
        ctx: &BuildContext,
        remote: &mut Remote,
        files: &mut BTreeSet<PathBuf>,
    ) -> Result<(), BuildError> {
        let exclude =
            IgnoreMatcher::from_patterns(&self.op.exclude).map_err(|e| BuildError::Source {
                location: self.loc.clone(),
                source: crate::ResolveError::BadExclude(e),
            })?;
        let mut items: Vec<Resolved> = Vec::new();
        let mut inline = Vec::new();
        let mut urls = Vec::new();
        for s in &self.op.sources {
            match s {
                CopySource::Inline(content) => inline.push(content),
                CopySource::Url(url) => urls.push(url),
                CopySource::Path(p) => {
                    let found = ctx.resolve(p).map_err(|source| BuildError::Source {
                        location: self.loc.clone(),
                        source,
                    })?;
                    items.extend(
                        found
                            .into_iter()
                            .filter(|r| r.rel == "." || !exclude.is_ignored(&r.rel)),
                    );
                }
            }
        }
        self.check_many(items.len() + inline.len() + urls.len())?;
        files.extend(ctx.files_used(&items, &self.op.exclude).map_err(|source| {
            BuildError::Source {
                location: self.loc.clone(),
                source,
            }
        })?);
        for content in inline {
            self.inline(tree, content)?;
        }
        for url in urls {
            self.download(tree, remote, url)?;
        }
        for item in &items {
            if item.is_dir {
                let dest = self.dest_dir();
                tree.mkdir_p(&dest, self.dir_meta.clone())
                    .map_err(self.tree_err(&dest))?;
                for entry in ctx.walk(&item.path).map_err(|source| BuildError::Source {
                    location: self.loc.clone(),
                    source,
                })? {
                    let inner = entry
                        .path
                        .strip_prefix(&item.path)
                        .unwrap_or(&entry.path)
                        .to_owned();
                    if exclude.is_ignored(&inner.to_string_lossy()) {
                        continue;
                    }
                    self.host_entry(tree, &entry.path, &dest.join(&inner), false)?;
                }
            } else {
                let name = item
                    .path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let target = self.file_target(tree, &name);
                self.host_entry(tree, &item.path, &target, true)?;
            }
        }
        Ok(())
    }

    /// Adds one host file, directory or symlink (followed when `top`).
    fn host_entry(
        &self,
        tree: &mut ImageTree,
        host: &Path,
        target: &Path,
        top: bool,
    ) -> Result<(), BuildError> {
        let read_err = |source| BuildError::Read {
            location: self.loc.clone(),
            path: host.to_owned(),
            source,
        };
        let md = if top {
            fs::metadata(host)
        } else {
            fs::symlink_metadata(host)
        }
        .map_err(read_err)?;
        let meta = self.context_override().apply(
            Metadata {
                mode: md.mode() & 0o7777,
                uid: 0,
                gid: 0,
                mtime: Timestamp {
                    sec: md.mtime(),
                    nsec: u32::try_from(md.mtime_nsec()).unwrap_or(0),
                },
                xattrs: Default::default(),
            },
            md.is_dir(),
        );
        let ft = md.file_type();
        if ft.is_dir() {
            tree.add_dir(target, meta).map_err(self.tree_err(target))?;
        } else if ft.is_symlink() {
            let link = fs::read_link(host).map_err(read_err)?;
            tree.add_symlink(target, link, meta)
                .map_err(self.tree_err(target))?;
        } else if ft.is_file() {
            if self.op.add && top {
                if let Some(format) = archive::detect(host).map_err(read_err)? {
                    return self.extract(tree, host, format);
                }
            }
            let mut file = fs::File::open(host).map_err(read_err)?;
            tree.add_file(target, &mut file, meta)
                .map_err(self.tree_err(target))?;
        }
        // Sockets, fifos and devices in a build context are skipped, as Docker does.
        Ok(())
    }

    fn extract(
        &self,
        tree: &mut ImageTree,
        host: &Path,
        format: archive::Format,
    ) -> Result<(), BuildError> {
        let scratch = archive::extract(host, format).map_err(|source| BuildError::Extract {
            location: self.loc.clone(),
            path: host.to_owned(),
            source: Box::new(source),
        })?;
        let dest = self.dest_dir();
        graft_contents(
            &scratch,
            scratch.root(),
            tree,
            &dest,
            self.dir_meta.clone(),
            &self.ov,
        )
        .map_err(self.tree_err(&dest))?;
        Ok(())
    }

    /// COPY --from a stage or image tree.
    fn copy_tree(&self, tree: &mut ImageTree, src: &ImageTree) -> Result<(), BuildError> {
        let mut items: Vec<(InodeId, String)> = Vec::new();
        for s in &self.op.sources {
            let CopySource::Path(p) = s else {
                return Err(Diagnostic::new(
                    self.loc.clone(),
                    "heredoc and URL sources cannot be combined with --from",
                )
                .into());
            };
            let found = if has_wildcards(p) {
                let glob =
                    IgnoreMatcher::from_patterns(&[p.trim_start_matches('/')]).map_err(|e| {
                        Diagnostic::new(self.loc.clone(), format!("bad pattern {p:?}: {e}"))
                    })?;
                let hits: Vec<(InodeId, String)> = src
                    .iter()
                    .filter(|e| {
                        glob.matches_exactly(e.path.to_string_lossy().trim_start_matches('/'))
                    })
                    .map(|e| (e.id, e.path.to_string_lossy().into_owned()))
                    .collect();
                hits
            } else {
                let id = src.lookup_follow(p).map_err(|_| {
                    Diagnostic::new(
                        self.loc.clone(),
                        format!("{p} not found in the --from source"),
                    )
                })?;
                vec![(id, p.clone())]
            };
            if found.is_empty() {
                return Err(Diagnostic::new(
                    self.loc.clone(),
                    format!("no files match {p:?} in the --from source"),
                )
                .into());
            }
            items.extend(found);
        }
        self.check_many(items.len())?;
        for (id, path) in items {
            if src.inode(id).node.is_dir() {
                let dest = self.dest_dir();
                graft_contents(src, id, tree, &dest, self.dir_meta.clone(), &self.ov)
                    .map_err(self.tree_err(&dest))?;
            } else {
                let name = Path::new(&path)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let target = self.file_target(tree, &name);
                graft(src, id, tree, &target, &self.ov).map_err(self.tree_err(&target))?;
            }
        }
        Ok(())
    }
}
