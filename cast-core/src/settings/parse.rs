//! One parser per kind of value: sizes, durations, counts, booleans, accelerators.
//!
//! Each takes the text a user wrote (an environment variable, a flag, a manifest
//! string) and returns the value or a short problem ("below the minimum 128M");
//! the caller ([`super::VmUpdate::set`]) adds the setting's name, its source and the
//! accepted forms and range. Ranges are checked by the `check_*` functions, which the
//! typed sources (manifest integers, the baked payload) use too.

use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Parses a size in MiB: `512M`, `1.5G`, `768MiB`, `512MB`, `1T`, `2048` (a plain
/// number is MiB). Units are binary, as QEMU and Docker read them (`M` = MiB).
pub fn size_mib(s: &str) -> Result<u64, String> {
    let t = s.trim().to_ascii_lowercase();
    let digits = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(digits);
    let factor: f64 = match unit.trim() {
        "" | "m" | "mb" | "mib" => 1.0,
        "g" | "gb" | "gib" => 1024.0,
        "t" | "tb" | "tib" => 1024.0 * 1024.0,
        "k" | "kb" | "kib" => 1.0 / 1024.0,
        _ => return Err("not a size".into()),
    };
    let n: f64 = number.parse().map_err(|_| "not a size".to_owned())?;
    let mib = n * factor;
    if !mib.is_finite() || mib < 0.0 || mib > u64::MAX as f64 {
        return Err("not a size".into());
    }
    if mib.fract() != 0.0 {
        return Err("not a whole number of MiB".into());
    }
    Ok(mib as u64)
}

/// Formats MiB the way [`size_mib`] reads it back: `512M`, `1G`, `1536M`.
pub fn format_mib(mib: u64) -> String {
    if mib >= 1024 && mib % 1024 == 0 {
        format!("{}G", mib / 1024)
    } else {
        format!("{mib}M")
    }
}

/// Parses a duration: `30` or `1.5` (seconds), `30s`, `1.5s`, `500ms`, `5m`, `2h`, and
/// humantime's forms (`1h 30m`, `2min`, `1day`).
pub fn duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let bad = || "not a duration".to_owned();
    let digits = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(digits);
    let scale = match unit {
        "" | "s" => Some(1.0),
        "ms" => Some(0.001),
        "m" => Some(60.0),
        "h" => Some(3600.0),
        _ => None,
    };
    if let (Some(scale), Ok(n)) = (scale, number.parse::<f64>()) {
        return Duration::try_from_secs_f64(n * scale).map_err(|_| bad());
    }
    humantime::parse_duration(t).map_err(|_| bad())
}

/// Formats a duration the way [`duration`] reads it back: `5m`, `30s`, `1s 500ms`.
pub fn format_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// Parses a whole number.
pub fn count(s: &str) -> Result<u64, String> {
    s.trim()
        .parse::<u64>()
        .map_err(|_| "not a whole number".to_owned())
}

/// Parses a boolean: `1`/`0`, `true`/`false`, `yes`/`no`, `on`/`off`.
pub fn boolean(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err("not a boolean".into()),
    }
}

/// Checks that `n` lies in `min..=max`, saying which bound it misses.
pub fn check_range<T: PartialOrd + Copy>(
    n: T,
    min: T,
    max: T,
    show: impl Fn(T) -> String,
) -> Result<T, String> {
    if n < min {
        Err(format!("below the minimum {}", show(min)))
    } else if n > max {
        Err(format!("above the maximum {}", show(max)))
    } else {
        Ok(n)
    }
}

/// A QEMU accelerator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    /// Linux KVM with hardware virtualisation.
    Kvm,
    /// macOS Hypervisor.framework.
    Hvf,
    /// QEMU's software emulation (works everywhere, slowest).
    Tcg,
}

impl Accel {
    /// QEMU's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Hvf => "hvf",
            Accel::Tcg => "tcg",
        }
    }
}

impl FromStr for Accel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "kvm" => Ok(Accel::Kvm),
            "hvf" => Ok(Accel::Hvf),
            "tcg" => Ok(Accel::Tcg),
            _ => Err("not an accelerator".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_mib_with_binary_units() {
        for (v, mib) in [
            ("512M", 512),
            ("512", 512),
            ("2048", 2048),
            ("1G", 1024),
            ("1g", 1024),
            ("1.5G", 1536),
            ("768MiB", 768),
            ("768 MiB", 768),
            ("512MB", 512),
            ("1T", 1024 * 1024),
            ("1048576K", 1024),
        ] {
            assert_eq!(size_mib(v), Ok(mib), "{v}");
        }
        for v in ["", "abc", "G", "-1G", "1.5", "1.2.3G", "1X", "0.3M"] {
            assert!(size_mib(v).is_err(), "{v}");
        }
        assert_eq!(format_mib(512), "512M");
        assert_eq!(format_mib(2048), "2G");
        assert_eq!(format_mib(1536), "1536M");
    }

    #[test]
    fn durations_take_seconds_units_and_humantime_forms() {
        let s = Duration::from_secs;
        for (v, d) in [
            ("30", s(30)),
            ("0", s(0)),
            ("1.5", Duration::from_millis(1500)),
            ("30s", s(30)),
            ("1.5s", Duration::from_millis(1500)),
            ("500ms", Duration::from_millis(500)),
            ("5m", s(300)),
            ("2h", s(7200)),
            ("1h 30m", s(5400)),
            ("2min", s(120)),
            ("1day", s(86400)),
        ] {
            assert_eq!(duration(v), Ok(d), "{v}");
        }
        for v in ["", "soon", "-1", "5x", "1.5.5s"] {
            assert!(duration(v).is_err(), "{v}");
        }
        for d in [s(300), s(30), Duration::from_millis(1500)] {
            assert_eq!(duration(&format_duration(d)), Ok(d));
        }
    }

    #[test]
    fn counts_booleans_and_accelerators() {
        assert_eq!(count(" 4 "), Ok(4));
        assert!(count("4.5").is_err() && count("-1").is_err() && count("x").is_err());
        for v in ["1", "true", "YES", "on"] {
            assert_eq!(boolean(v), Ok(true), "{v}");
        }
        for v in ["0", "false", "no", "Off"] {
            assert_eq!(boolean(v), Ok(false), "{v}");
        }
        assert!(boolean("maybe").is_err() && boolean("").is_err());
        assert_eq!("TCG".parse::<Accel>(), Ok(Accel::Tcg));
        assert!("warp".parse::<Accel>().is_err());
        assert_eq!(
            check_range(3, 1, 2, |n| n.to_string()),
            Err("above the maximum 2".into())
        );
    }
}
