//! Parsing single configuration values, shared by the manifest tables and the
//! `CAST_*` environment variables: each parser returns the accepted forms in its
//! error so the caller can name the key and say what would have worked.

use std::path::{Path, PathBuf};

/// The guest kernel a casted executable carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelSpec {
    /// A kernel bundle directory (as `cargo xtask kernel` makes).
    Path(PathBuf),
    /// A kernel to download, pinned by its SHA-256.
    Url {
        /// `https://...`.
        url: String,
        /// Lowercase hex SHA-256 of the file.
        sha256: String,
    },
}

/// Accepted forms of a memory size.
pub const MEMORY_FORMS: &str = "a size like \"512M\", \"1G\", \"1536MiB\" or a number of MiB";
/// Accepted forms of a boolean from the environment.
pub const BOOL_FORMS: &str = "1, 0, true, false, yes, no, on or off";
/// Accepted forms of a command.
pub const COMMAND_FORMS: &str =
    "an array of strings like [\"/bin/app\", \"--flag\"], or one string (a single word)";

/// Parses `512`, `512M`, `512MiB`, `1G`, `1GiB` into MiB (1 to 16 TiB).
pub fn parse_memory(s: &str) -> Result<u32, String> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not {MEMORY_FORMS}"))?;
    let factor = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "m" | "mb" | "mib" => 1,
        "g" | "gb" | "gib" => 1024,
        "t" | "tb" | "tib" => 1024 * 1024,
        _ => return Err(format!("{s:?} has an unknown unit; use {MEMORY_FORMS}")),
    };
    n.checked_mul(factor)
        .and_then(|m| u32::try_from(m).ok())
        .filter(|m| (1..=16 * 1024 * 1024).contains(m))
        .ok_or_else(|| format!("{s:?} is out of range (1 MiB to 16 TiB)"))
}

/// Parses a boolean as environment variables spell it.
pub fn parse_bool(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        _ => Err(format!("{s:?} is not a boolean ({BOOL_FORMS})")),
    }
}

/// Parses a vCPU count, 1 to 255.
pub fn parse_cpus(s: &str) -> Result<u32, String> {
    check_cpus(
        s.trim()
            .parse::<i64>()
            .map_err(|_| format!("{s:?} is not a number of vCPUs (1 to 255)"))?,
    )
}

/// Checks a vCPU count, 1 to 255.
pub fn check_cpus(n: i64) -> Result<u32, String> {
    u32::try_from(n)
        .ok()
        .filter(|n| (1..=255).contains(n))
        .ok_or_else(|| format!("{n} vCPUs is out of range (1 to 255)"))
}

/// Parses a timeout in whole seconds (`30`, `30s`, `5m`, `1h`).
pub fn parse_timeout(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, mult) = match t.chars().last() {
        Some('s') => (&t[..t.len() - 1], 1),
        Some('m') => (&t[..t.len() - 1], 60),
        Some('h') => (&t[..t.len() - 1], 3600),
        _ => (t, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("{s:?} is not a timeout (seconds like 30, or 30s, 5m, 1h; above 0)"))
}

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
