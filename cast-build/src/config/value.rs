//! Checking the build's own configuration values (platform, names, digests, paths),
//! shared by the manifest tables and the `CAST_BUILD_*` variables; each returns the
//! accepted forms in its error so the caller can name the key. The VM settings
//! (sizes, durations, counts) have their parsers in `cast_core::settings`.

use std::path::{Path, PathBuf};

/// The guest kernel a casted executable carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelSpec {
    /// A kernel bundle directory (as `cargo cast kernel fetch` makes).
    Path(PathBuf),
    /// A kernel to download, pinned by its SHA-256.
    Url {
        /// `https://...`.
        url: String,
        /// Lowercase hex SHA-256 of the file.
        sha256: String,
    },
}

/// Accepted forms of a command.
pub const COMMAND_FORMS: &str =
    "an array of strings like [\"/bin/app\", \"--flag\"], or one string (a single word)";

/// Checks a platform string: `linux/ARCH[/VARIANT]`.
pub fn check_platform(s: &str) -> Result<String, String> {
    let parts: Vec<&str> = s.split('/').collect();
    match parts.as_slice() {
        ["linux", arch] | ["linux", arch, _] if !arch.is_empty() => Ok(s.to_owned()),
        _ => Err(format!(
            "{s:?} is not a platform (linux/amd64, linux/arm64, linux/arm64/v8, ...)"
        )),
    }
}

/// Checks an environment variable name.
pub fn check_env_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.contains('=') || name.contains('\0') {
        return Err(format!(
            "{name:?} is not a variable name (non-empty, no '=')"
        ));
    }
    Ok(())
}

/// Checks a hex SHA-256.
pub fn check_sha256(s: &str) -> Result<String, String> {
    let t = s.strip_prefix("sha256:").unwrap_or(s);
    if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(t.to_ascii_lowercase())
    } else {
        Err(format!("{s:?} is not a SHA-256 (64 hex digits)"))
    }
}

/// Joins a relative `path` to `base`.
pub fn anchored(base: &Path, path: &str) -> PathBuf {
    let p = Path::new(path);
    if p.is_absolute() {
        p.to_owned()
    } else {
        base.join(p)
    }
}
