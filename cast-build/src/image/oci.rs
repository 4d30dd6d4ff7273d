//! Base images from registries and local sources: [`OciImages`] implements the
//! frontend's [`BaseImages`] (configs, for evaluation) and [`BaseTrees`] (layers
//! applied to an [`ImageTree`], for building) on top of a [`cast_oci::Resolver`].
//!
//! Each image is resolved once per build and remembered, together with its
//! manifest digest: [`OciImages::digests`] lists them for the build cache key, so
//! a tag that moved to a new image rebuilds and an unchanged one does not.

use std::collections::BTreeMap;

use cast_oci::{Platform, ResolveOptions, ResolvedImage, Resolver};
use cast_rootfs::{layer, ImageTree};

use crate::builder::{BaseError, BaseTrees};
use crate::eval::BaseImages;
use crate::runconfig::RunConfig;

/// Base images resolved through a [`Resolver`].
#[derive(Debug)]
pub struct OciImages {
    resolver: Resolver,
    options: ResolveOptions,
    resolved: BTreeMap<(String, String), Result<ResolvedImage, String>>,
}

impl OciImages {
    /// Images for the default platform of `options`, blobs in `resolver`'s cache.
    pub fn new(resolver: Resolver, options: ResolveOptions) -> Self {
        Self {
            resolver,
            options,
            resolved: BTreeMap::new(),
        }
    }

    /// Resolves `image` for `platform` (the default one when `None`), once.
    pub fn resolve(
        &mut self,
        image: &str,
        platform: Option<&str>,
    ) -> Result<&ResolvedImage, BaseError> {
        let plat = match platform {
            Some(p) => Platform::parse(p)?,
            None => self.options.platform.clone(),
        };
        let key = (image.to_owned(), platform_string(&plat));
        if !self.resolved.contains_key(&key) {
            let resolver = if plat == self.options.platform {
                self.resolver.clone()
            } else {
                let options = ResolveOptions {
                    platform: plat,
                    ..self.options.clone()
                };
                Resolver::new(self.resolver.cache().clone(), options)
            };
            let r = resolver.resolve_str(image).map_err(|e| chain(&e));
            self.resolved.insert(key.clone(), r);
        }
        match &self.resolved[&key] {
            Ok(r) => Ok(r),
            Err(e) => Err(e.clone().into()),
        }
    }

    /// `(image, platform, manifest digest)` of every image resolved so far, sorted.
    pub fn digests(&self) -> Vec<(String, String, String)> {
        self.resolved
            .iter()
            .map(|((image, plat), r)| {
                let digest = match r {
                    Ok(r) => r
                        .manifest_digest
                        .as_ref()
                        .map_or_else(|| r.source.clone(), |d| d.as_str().to_owned()),
                    Err(e) => format!("error: {e}"),
                };
                (image.clone(), plat.clone(), digest)
            })
            .collect()
    }

    /// The tree of a resolved image: its layers applied in order.
    pub fn apply_layers(image: &ResolvedImage) -> Result<ImageTree, BaseError> {
        let mut tree = ImageTree::new()?;
        for l in &image.layers {
            let file = std::fs::File::open(&l.path)
                .map_err(|e| format!("cannot open layer {}: {e}", l.path.display()))?;
            layer::apply_layer(
                &mut tree,
                std::io::BufReader::new(file),
                layer::Compression::Auto,
            )
            .map_err(|e| format!("layer {}: {}", l.digest.as_str(), chain(&e)))?;
        }
        Ok(tree)
    }
}

impl BaseImages for OciImages {
    fn config(&mut self, image: &str, platform: Option<&str>) -> Option<RunConfig> {
        // An error here resurfaces, with its cause, when the tree is asked for.
        let r = self.resolve(image, platform).ok()?;
        Some(run_config_of(&r.config))
    }
}

impl BaseTrees for OciImages {
    fn tree(&mut self, image: &str, platform: Option<&str>) -> Result<ImageTree, BaseError> {
        let r = self.resolve(image, platform)?.clone();
        Self::apply_layers(&r)
    }
}

/// The run config an image's own config gives.
pub fn run_config_of(c: &cast_oci::ImageConfig) -> RunConfig {
    RunConfig::from_image_config(c.clone())
}

fn platform_string(p: &Platform) -> String {
    match &p.variant {
        Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
        None => format!("{}/{}", p.os, p.architecture),
    }
}

/// An error and its causes on one line.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}
