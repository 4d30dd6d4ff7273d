//! Runtime settings from `CAST_*` variables, validated, with their defaults.
//!
//! Callers (the `cargo cast run` CLI, the casted executable) start from
//! [`VmSettings::from_env`] and apply their own higher-precedence flags on top. A
//! casted executable starts from its baked defaults instead
//! ([`VmSettings::from_env_over`]): `CAST_*` variables override what was baked in.

use crate::vm::Accel;
use cast_core::mount::{parse_list, Mount};
use std::path::PathBuf;
use std::time::Duration;

/// Default vCPUs.
pub const DEFAULT_CPUS: u32 = 2;
/// Default guest memory in MiB.
pub const DEFAULT_MEMORY_MIB: u32 = 512;
/// How long a VM may take to boot to the guest init before it is stopped (and, the
/// first time, started once more).
pub const DEFAULT_BOOT_TIMEOUT: Duration = Duration::from_secs(30);

/// How to size and run the VM.
#[derive(Debug, Clone, PartialEq)]
pub struct VmSettings {
    /// vCPUs (`CAST_CPUS`).
    pub cpus: u32,
    /// Guest memory in MiB (`CAST_MEMORY`).
    pub memory_mib: u32,
    /// Stop the VM after this long (`CAST_TIMEOUT`, seconds; exit 124).
    pub timeout: Option<Duration>,
    /// Stop a boot whose guest has not come up after this long (`CAST_BOOT_TIMEOUT`);
    /// the first such boot is retried once.
    pub boot_timeout: Duration,
    /// Accelerator override (`CAST_ACCEL`); `None` picks the best usable one.
    pub accel: Option<Accel>,
    /// QEMU binary override (`CAST_QEMU`).
    pub qemu: Option<PathBuf>,
    /// TTY override (`CAST_TTY=0|1`); `None` means "when stdin and stdout are terminals".
    pub tty: Option<bool>,
    /// Kernel messages and init timings on stderr (`CAST_DEBUG=1`).
    pub debug: bool,
    /// Stream the host's stdin to the process; `false` gives it an empty stdin.
    pub interactive: bool,
    /// Host mounts (`CAST_MOUNT`, `HOST:GUEST[:ro]` separated by `,` or `;`); host
    /// paths are resolved against the current directory when the VM starts.
    pub mounts: Vec<Mount>,
}

impl Default for VmSettings {
    fn default() -> Self {
        VmSettings {
            cpus: DEFAULT_CPUS,
            memory_mib: DEFAULT_MEMORY_MIB,
            timeout: None,
            boot_timeout: DEFAULT_BOOT_TIMEOUT,
            accel: None,
            qemu: None,
            tty: None,
            debug: false,
            interactive: true,
            mounts: Vec::new(),
        }
    }
}

/// A setting has a value it cannot take.
#[derive(Debug, thiserror::Error)]
#[error("{name}={value:?} is not valid: expected {expected}")]
pub struct SettingError {
    /// The variable or flag.
    pub name: String,
    /// What it was set to.
    pub value: String,
    /// What it accepts.
    pub expected: &'static str,
}

impl VmSettings {
    /// Defaults overridden by the `CAST_*` variables that are set (empty counts as unset).
    pub fn from_env() -> Result<Self, SettingError> {
        Self::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// `base` (e.g. a casted executable's baked defaults) overridden by the `CAST_*`
    /// variables that are set.
    pub fn from_env_over(base: VmSettings) -> Result<Self, SettingError> {
        Self::from_lookup_over(base, |name| {
            std::env::var(name).ok().filter(|v| !v.is_empty())
        })
    }

    /// As [`VmSettings::from_env`], reading variables through `get`.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, SettingError> {
        Self::from_lookup_over(VmSettings::default(), get)
    }

    /// As [`VmSettings::from_env_over`], reading variables through `get`.
    pub fn from_lookup_over(
        base: VmSettings,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, SettingError> {
        let mut s = base;
        if let Some(v) = get("CAST_CPUS") {
            s.cpus = parse_cpus("CAST_CPUS", &v)?;
        }
        if let Some(v) = get("CAST_MEMORY") {
            s.memory_mib = parse_memory("CAST_MEMORY", &v)?;
        }
        if let Some(v) = get("CAST_TIMEOUT") {
            s.timeout = parse_seconds("CAST_TIMEOUT", &v)?;
        }
        if let Some(v) = get("CAST_BOOT_TIMEOUT") {
            s.boot_timeout = parse_seconds("CAST_BOOT_TIMEOUT", &v)?.unwrap_or(Duration::MAX);
        }
        if let Some(v) = get("CAST_ACCEL") {
            s.accel = Some(v.parse().map_err(|_| SettingError {
                name: "CAST_ACCEL".into(),
                value: v.clone(),
                expected: "kvm, hvf or tcg",
            })?);
        }
        if let Some(v) = get("CAST_QEMU") {
            s.qemu = Some(PathBuf::from(v));
        }
        if let Some(v) = get("CAST_TTY") {
            s.tty = Some(parse_bool("CAST_TTY", &v)?);
        }
        if let Some(v) = get("CAST_DEBUG") {
            s.debug = parse_bool("CAST_DEBUG", &v)?;
        }
        if let Some(v) = get("CAST_MOUNT") {
            s.mounts = parse_list(&v).map_err(|_| bad("CAST_MOUNT", &v, MOUNTS_EXPECTED))?;
        }
        Ok(s)
    }
}

/// What a mount list accepts.
const MOUNTS_EXPECTED: &str =
    "HOST:GUEST[:ro|:rw] mounts separated by , or ; (the guest path absolute, not /)";

fn bad(name: &str, value: &str, expected: &'static str) -> SettingError {
    SettingError {
        name: name.into(),
        value: value.into(),
        expected,
    }
}

/// A vCPU count, 1–255.
pub fn parse_cpus(name: &str, value: &str) -> Result<u32, SettingError> {
    match value.trim().parse::<u32>() {
        Ok(n) if (1..=255).contains(&n) => Ok(n),
        _ => Err(bad(name, value, "a number of vCPUs from 1 to 255")),
    }
}

/// A memory size in MiB: `512M`, `1G`, `1.5G`, `2048` (plain numbers are MiB).
pub fn parse_memory(name: &str, value: &str) -> Result<u32, SettingError> {
    const EXPECTED: &str = "a size such as 512M, 1G or a number of MiB (at least 64M)";
    let v = value.trim().to_ascii_lowercase();
    let v = v
        .strip_suffix("ib")
        .or_else(|| v.strip_suffix('b'))
        .unwrap_or(&v);
    let (number, factor) = match v.as_bytes().last() {
        Some(b'g') => (&v[..v.len() - 1], 1024.0),
        Some(b'm') => (&v[..v.len() - 1], 1.0),
        _ => (v, 1.0),
    };
    let mib = number
        .trim()
        .parse::<f64>()
        .map_err(|_| bad(name, value, EXPECTED))?
        * factor;
    if !(64.0..=1024.0 * 1024.0).contains(&mib) {
        return Err(bad(name, value, EXPECTED));
    }
    Ok(mib.round() as u32)
}

/// Seconds (fractions allowed); `0` means no limit.
pub fn parse_seconds(name: &str, value: &str) -> Result<Option<Duration>, SettingError> {
    match value.trim().parse::<f64>() {
        Ok(0.0) => Ok(None),
        Ok(s) if s.is_finite() && s > 0.0 => Ok(Some(Duration::from_secs_f64(s))),
        _ => Err(bad(name, value, "a number of seconds (0 for no limit)")),
    }
}

/// `1`/`0` (also `true`/`false`, `yes`/`no`, `on`/`off`).
pub fn parse_bool(name: &str, value: &str) -> Result<bool, SettingError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(bad(name, value, "1 or 0")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes_parse_like_the_docs_say() {
        for (v, mib) in [
            ("512M", 512),
            ("1G", 1024),
            ("1g", 1024),
            ("2048", 2048),
            ("1.5G", 1536),
            ("768MiB", 768),
        ] {
            assert_eq!(parse_memory("CAST_MEMORY", v).unwrap(), mib, "{v}");
        }
        for v in ["", "abc", "12", "1T", "-1G", "G"] {
            assert!(parse_memory("CAST_MEMORY", v).is_err(), "{v}");
        }
    }

    #[test]
    fn env_overrides_defaults_and_bad_values_name_the_variable() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let s = VmSettings::from_lookup(env(&[
            ("CAST_CPUS", "1"),
            ("CAST_TIMEOUT", "2.5"),
            ("CAST_TTY", "0"),
        ]))
        .unwrap();
        assert_eq!(
            (s.cpus, s.memory_mib, s.tty),
            (1, DEFAULT_MEMORY_MIB, Some(false))
        );
        assert_eq!(s.timeout, Some(Duration::from_millis(2500)));
        let e = VmSettings::from_lookup(env(&[("CAST_CPUS", "many")])).unwrap_err();
        assert!(e.to_string().starts_with("CAST_CPUS=\"many\""), "{e}");
        assert!(VmSettings::from_lookup(env(&[("CAST_ACCEL", "warp")])).is_err());
    }

    #[test]
    fn env_overrides_baked_defaults_which_override_the_runtimes() {
        let baked = VmSettings {
            cpus: 1,
            memory_mib: 256,
            tty: Some(false),
            ..VmSettings::default()
        };
        let s = VmSettings::from_lookup_over(baked.clone(), |k| {
            (k == "CAST_MEMORY").then(|| "1G".to_owned())
        })
        .unwrap();
        assert_eq!((s.cpus, s.memory_mib, s.tty), (1, 1024, Some(false)));
        assert_eq!(
            VmSettings::from_lookup_over(baked.clone(), |_| None).unwrap(),
            baked
        );
    }
}
