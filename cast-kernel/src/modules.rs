//! Which kernel modules the guest needs, and in which order to load them.
//!
//! Dependencies come from each module's own `.modinfo` section (`depends=`), so no
//! `modules.dep` (which only `depmod` makes at install time) and no host tools are
//! needed. Modules the kernel has built in are simply absent and skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The drivers a cast guest needs: the virtio-mmio transport, the root disk, the
/// channel ports, the root filesystems and the overlay over them, and the network
/// card (`virtio_net`, which pulls in `failover` and `net_failover`); then the optional
/// ones, taken when the kernel has them as modules: a CRC32C implementation (which
/// `libcrc32c`, under erofs, finds by name, so it must load first), and 9p over virtio
/// for host mounts (Debian's generic kernel has them; its cloud kernel has no 9p).
pub const GUEST_MODULES: &[&str] = &[
    "virtio_mmio",
    "virtio_blk",
    "virtio_console",
    "crc32c_generic",
    "erofs",
    "overlay",
    "virtio_net",
    "9pnet_virtio",
    "9p",
];

/// Load-order needs that `.modinfo` does not state as `depends=` (they are
/// `softdep`s by alias): the module, and the one that must load before it when the
/// bundle has both.
pub const SOFT_DEPENDENCIES: &[(&str, &str)] = &[("libcrc32c", "crc32c_generic")];

/// The module set could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    /// Reading the module tree failed.
    #[error("cannot read kernel modules under {path}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A `.ko` is not a readable ELF object with a `.modinfo` section.
    #[error("{path} is not a kernel module")]
    NotAModule {
        /// The file.
        path: PathBuf,
    },
    /// A dependency names a module the tree does not have.
    #[error("module {module} needs {missing}, which is not in {tree}")]
    MissingDependency {
        /// The module that needs it.
        module: String,
        /// The missing one.
        missing: String,
        /// The module tree.
        tree: PathBuf,
    },
}

/// Kernel module names treat `-` and `_` alike.
fn normalise(name: &str) -> String {
    name.replace('-', "_")
}

/// Resolves `wanted` (and their dependencies) in the module tree at `tree`
/// (`lib/modules/<release>`), returning the `.ko` files dependencies first. Wanted
/// modules that are not in the tree are taken to be built in.
pub fn resolve(tree: &Path, wanted: &[&str]) -> Result<Vec<(String, PathBuf)>, ModuleError> {
    let files = index(tree)?;
    let mut order = Vec::new();
    let mut seen = BTreeSet::new();
    for name in wanted {
        let name = normalise(name);
        if files.contains_key(&name) {
            visit(&name, &files, tree, &mut seen, &mut order)?;
        }
    }
    Ok(order)
}

fn visit(
    name: &str,
    files: &BTreeMap<String, PathBuf>,
    tree: &Path,
    seen: &mut BTreeSet<String>,
    order: &mut Vec<(String, PathBuf)>,
) -> Result<(), ModuleError> {
    if !seen.insert(name.to_owned()) {
        return Ok(());
    }
    let path = &files[name];
    for dep in depends(path)? {
        let soft = SOFT_DEPENDENCIES.contains(&(name, dep.as_str()));
        if soft && !files.contains_key(&dep) {
            continue;
        }
        if !files.contains_key(&dep) {
            return Err(ModuleError::MissingDependency {
                module: name.to_owned(),
                missing: dep,
                tree: tree.to_owned(),
            });
        }
        visit(&dep, files, tree, seen, order)?;
    }
    order.push((name.to_owned(), path.clone()));
    Ok(())
}

/// Every `*.ko` under `tree`, by normalised module name.
fn index(tree: &Path) -> Result<BTreeMap<String, PathBuf>, ModuleError> {
    let mut found = BTreeMap::new();
    let mut dirs = vec![tree.to_owned()];
    while let Some(dir) = dirs.pop() {
        let io = |source| ModuleError::Io {
            path: dir.clone(),
            source,
        };
        for entry in std::fs::read_dir(&dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            if path.is_dir() {
                dirs.push(path);
            } else if let Some(stem) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".ko"))
            {
                found.insert(normalise(stem), path);
            }
        }
    }
    Ok(found)
}

/// The modules that must load before this one: the `depends=` list of its `.modinfo`
/// section (normalised names) and its [`SOFT_DEPENDENCIES`] (a loader skips those
/// the bundle does not carry).
pub fn depends(path: &Path) -> Result<Vec<String>, ModuleError> {
    use object::{Object, ObjectSection};
    let data = std::fs::read(path).map_err(|source| ModuleError::Io {
        path: path.to_owned(),
        source,
    })?;
    let not_module = || ModuleError::NotAModule {
        path: path.to_owned(),
    };
    let file = object::File::parse(&*data).map_err(|_| not_module())?;
    let modinfo = file
        .section_by_name(".modinfo")
        .and_then(|s| s.data().ok())
        .ok_or_else(not_module)?;
    Ok(modinfo
        .split(|b| *b == 0)
        .filter_map(|entry| entry.strip_prefix(b"depends="))
        .flat_map(|list| {
            String::from_utf8_lossy(list)
                .split(',')
                .map(normalise)
                .collect::<Vec<_>>()
        })
        .filter(|d| !d.is_empty())
        .chain(soft_dependencies(path))
        .collect())
}

/// The [`SOFT_DEPENDENCIES`] of the module file at `path`.
fn soft_dependencies(path: &Path) -> impl Iterator<Item = String> + '_ {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".ko"))
        .map(normalise)
        .unwrap_or_default();
    SOFT_DEPENDENCIES
        .iter()
        .filter(move |(module, _)| *module == name)
        .map(|(_, before)| before.to_string())
}
