//! The VM settings: one model for every place a user can give them.
//!
//! A setting (a [`Key`]: `cpus`, `memory`, `timeout`, …) can come from several
//! sources ([`Origin`]): the manifest's `[package.metadata.cast]`, the `cargo cast`
//! flags, `CAST_BUILD_*` variables at build time, the defaults baked into a casted
//! executable, and `CAST_*` variables at run time. Each source is read into an
//! all-optional [`VmUpdate`] through ONE parser and validator per setting
//! ([`VmUpdate::set`]), so a value means the same and is refused the same wherever it
//! is written; the error names the setting as the user wrote it (`CAST_MEMORY="32M"`,
//! `memory = "32M" in [package.metadata.cast] of …/Cargo.toml`, `--memory 32M`) and
//! the accepted range. Updates are laid over the defaults ([`VmSettings::default`],
//! defined only here) in precedence order by [`VmSettings::apply`] (Firecracker's
//! machine-config update pattern).
//!
//! Build time and run time are kept apart: a build reads the manifest, its flags and
//! `CAST_BUILD_*`, and bakes what they set ([`Key::bakeable`]) into the executable; a
//! run reads the baked defaults and `CAST_*`. A `CAST_MEMORY` exported for running is
//! never baked into a build.
//!
//! Adding a setting: a [`Key`] variant (its names, whether it can be baked, what it
//! accepts), a field in [`VmUpdate`] and [`VmSettings`], an arm in [`VmUpdate::set`]
//! and [`VmUpdate::raw`]; the compiler points at every other place (the merges
//! destructure the whole struct).

pub mod parse;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::mount::{self, Mount};
use crate::publish::PortMapping;

pub use parse::Accel;

/// Guest memory of a build VM (the one a Containerfile `RUN` runs in) in MiB:
/// package managers want more than a typical service.
pub const DEFAULT_BUILD_VM_MEMORY_MIB: u32 = 1024;

/// Default vCPUs.
pub const DEFAULT_CPUS: u32 = 2;
/// Default guest memory in MiB.
pub const DEFAULT_MEMORY_MIB: u32 = 512;
/// How long a VM may take to boot to the guest init before it is stopped (and, the
/// first time, started once more).
pub const DEFAULT_BOOT_TIMEOUT: Duration = Duration::from_secs(30);
/// The least guest memory accepted: what boots reliably with the default kernel and
/// init, with headroom. Measured (Debian 6.1 cloud kernel, QEMU 7.2 TCG, busybox
/// image, three rounds): 64M and 80M panicked every time ("System is deadlocked on
/// memory"), 88M to 128M booted every time.
pub const MIN_MEMORY_MIB: u32 = 128;
/// The most guest memory accepted (1 TiB).
pub const MAX_MEMORY_MIB: u32 = 1024 * 1024;
/// The most vCPUs accepted. QEMU's microvm takes up to 255 under TCG (more need
/// KVM's x2APIC); measured on a 2-core host under TCG: 16 vCPUs booted (51 s under
/// heavy load), 64 and 128 did not come up within a 300 s boot timeout, twice each,
/// so a larger count would fail only after the boot timeout and its retry.
pub const MAX_CPUS: u32 = 16;

/// One setting, with its names in every source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Key {
    /// vCPUs.
    Cpus,
    /// Guest memory.
    Memory,
    /// Stop the VM after this long (exit 124).
    Timeout,
    /// Stop a boot whose guest is not up after this long.
    BootTimeout,
    /// Force a terminal on or off.
    Tty,
    /// Stream the host's stdin to the process.
    Interactive,
    /// Give the guest a network.
    Network,
    /// Host ports forwarded into the guest.
    Publish,
    /// The accelerator.
    Accel,
    /// The QEMU binary.
    Qemu,
    /// Kernel messages and init timings on stderr.
    Debug,
    /// Host mounts.
    Mounts,
}

impl Key {
    /// Every setting, in the order they are listed to users.
    pub const ALL: [Key; 12] = [
        Key::Cpus,
        Key::Memory,
        Key::Timeout,
        Key::BootTimeout,
        Key::Tty,
        Key::Interactive,
        Key::Network,
        Key::Publish,
        Key::Accel,
        Key::Qemu,
        Key::Debug,
        Key::Mounts,
    ];

    /// Its name in a manifest table and as a flag (`--NAME`).
    pub fn name(self) -> &'static str {
        match self {
            Key::Cpus => "cpus",
            Key::Memory => "memory",
            Key::Timeout => "timeout",
            Key::BootTimeout => "boot-timeout",
            Key::Tty => "tty",
            Key::Interactive => "interactive",
            Key::Network => "network",
            Key::Publish => "publish",
            Key::Accel => "accel",
            Key::Qemu => "qemu",
            Key::Debug => "debug",
            Key::Mounts => "mounts",
        }
    }

    /// The variable a run reads.
    pub fn env(self) -> &'static str {
        match self {
            Key::Cpus => "CAST_CPUS",
            Key::Memory => "CAST_MEMORY",
            Key::Timeout => "CAST_TIMEOUT",
            Key::BootTimeout => "CAST_BOOT_TIMEOUT",
            Key::Tty => "CAST_TTY",
            Key::Interactive => "CAST_INTERACTIVE",
            Key::Network => "CAST_NETWORK",
            Key::Publish => "CAST_PUBLISH",
            Key::Accel => "CAST_ACCEL",
            Key::Qemu => "CAST_QEMU",
            Key::Debug => "CAST_DEBUG",
            Key::Mounts => "CAST_MOUNT",
        }
    }

    /// The variable a build reads, for a setting that can be baked in.
    pub fn build_env(self) -> Option<&'static str> {
        Some(match self {
            Key::Cpus => "CAST_BUILD_CPUS",
            Key::Memory => "CAST_BUILD_MEMORY",
            Key::Timeout => "CAST_BUILD_TIMEOUT",
            Key::Tty => "CAST_BUILD_TTY",
            Key::Interactive => "CAST_BUILD_INTERACTIVE",
            Key::Network => "CAST_BUILD_NETWORK",
            Key::Publish => "CAST_BUILD_PUBLISH",
            Key::Mounts => "CAST_BUILD_MOUNT",
            Key::BootTimeout | Key::Accel | Key::Qemu | Key::Debug => return None,
        })
    }

    /// The variable that sets it for build VMs (`RUN` steps), if it can be set there;
    /// the engine settings (`CAST_ACCEL`, `CAST_QEMU`, `CAST_DEBUG`,
    /// `CAST_BOOT_TIMEOUT`) are read as for a run.
    pub fn build_vm_env(self) -> Option<&'static str> {
        Some(match self {
            Key::Cpus => "CAST_BUILD_VM_CPUS",
            Key::Memory => "CAST_BUILD_VM_MEMORY",
            Key::Timeout => "CAST_BUILD_VM_TIMEOUT",
            _ => return None,
        })
    }

    /// Whether a build can bake it into the executable as a default; the others
    /// describe the host that runs it and are only read at run time.
    pub fn bakeable(self) -> bool {
        self.build_env().is_some()
    }

    /// What it accepts, with the range.
    pub fn accepts(self) -> String {
        match self {
            Key::Cpus => format!("a number of vCPUs from 1 to {MAX_CPUS}"),
            Key::Memory => format!(
                "a size from {} to {}, such as 512M, 1.5G, 768MiB or a number of MiB",
                parse::format_mib(MIN_MEMORY_MIB.into()),
                parse::format_mib(MAX_MEMORY_MIB.into())
            ),
            Key::Timeout | Key::BootTimeout => {
                "a duration such as 30 (seconds), 1.5s, 5m or 1h 30m; 0 for no limit".into()
            }
            Key::Tty | Key::Interactive | Key::Network | Key::Debug => {
                "true or false (1 or 0, yes or no, on or off)".into()
            }
            Key::Publish => format!(
                "port mappings {} (a list, or comma-separated)",
                crate::publish::GRAMMAR
            ),
            Key::Accel => "kvm, hvf or tcg".into(),
            Key::Qemu => "the path of a QEMU binary".into(),
            Key::Mounts => "host mounts HOST:GUEST[:ro|:rw] (a list, or one string with , or ; \
                            between mounts; GUEST absolute, not /)"
                .into(),
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a value was given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Origin {
    /// Not given anywhere: the default.
    #[default]
    Default,
    /// A manifest table.
    Manifest {
        /// The table, `package.metadata.cast`.
        table: String,
        /// The manifest.
        path: PathBuf,
    },
    /// A `cargo cast` flag.
    Flag,
    /// A `CAST_BUILD_*` variable, at build time.
    BuildEnv,
    /// A `CAST_BUILD_VM_*` variable: the build VMs that run `RUN` steps.
    BuildVmEnv,
    /// The defaults baked into the executable.
    Baked,
    /// A `CAST_*` variable, at run time.
    Env,
    /// `CAST_NO_NETWORK`, at run time.
    NoNetworkEnv,
}

impl Origin {
    /// How a user recognises where `key` came from: `CAST_MEMORY`, `--memory`,
    /// `memory in [package.metadata.cast] of /p/Cargo.toml`.
    pub fn describe(&self, key: Key) -> String {
        match self {
            Origin::Default => "default".into(),
            Origin::Manifest { table, path } => {
                format!("{key} in [{table}] of {}", path.display())
            }
            Origin::Flag => format!("--{key}"),
            Origin::BuildEnv => key.build_env().unwrap_or(key.env()).into(),
            Origin::BuildVmEnv => key.build_vm_env().unwrap_or(key.env()).into(),
            Origin::Baked => format!("{key} baked into the executable"),
            Origin::Env => key.env().into(),
            Origin::NoNetworkEnv => NO_NETWORK_ENV.into(),
        }
    }
}

/// A value as a source gives it: text (variables, flags, manifest strings), or a
/// manifest's integer or boolean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Raw<'a> {
    /// Text.
    Text(&'a str),
    /// An integer.
    Int(i64),
    /// A boolean.
    Bool(bool),
}

impl fmt::Display for Raw<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Raw::Text(s) => write!(f, "{s:?}"),
            Raw::Int(n) => write!(f, "{n}"),
            Raw::Bool(b) => write!(f, "{b}"),
        }
    }
}

/// A setting was given a value it cannot take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {problem}; expected {}", self.given(), key.accepts())]
pub struct SettingError {
    /// The setting.
    pub key: Key,
    /// Where it was given.
    pub origin: Origin,
    /// The value, as [`Raw`] displays it.
    pub value: String,
    /// What is wrong with it.
    pub problem: String,
}

impl SettingError {
    /// The setting and its value, as the user wrote them.
    fn given(&self) -> String {
        let (key, value) = (self.key, &self.value);
        match &self.origin {
            Origin::Env | Origin::BuildEnv | Origin::NoNetworkEnv | Origin::BuildVmEnv => {
                format!("{}={value}", self.origin.describe(key))
            }
            Origin::Flag => format!("--{key} {value}"),
            Origin::Manifest { table, path } => {
                format!("{key} = {value} in [{table}] of {}", path.display())
            }
            Origin::Baked => format!("{key} = {value} baked into the executable"),
            Origin::Default => format!("{key} = {value}"),
        }
    }
}

/// Settings from one source; `None` means "not set here". Also the form the defaults
/// are baked in (serialised into the payload's manifest).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct VmUpdate {
    /// vCPUs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpus: Option<u32>,
    /// Guest memory in MiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<u32>,
    /// Run timeout; zero means no limit.
    #[serde(skip_serializing_if = "Option::is_none", with = "duration_text")]
    pub timeout: Option<Duration>,
    /// Boot timeout; zero means no limit.
    #[serde(skip_serializing_if = "Option::is_none", with = "duration_text")]
    pub boot_timeout: Option<Duration>,
    /// Force a terminal on or off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tty: Option<bool>,
    /// Stream stdin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interactive: Option<bool>,
    /// Network.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<bool>,
    /// Published ports (an empty list publishes none, overriding a lower source's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publish: Option<Vec<PortMapping>>,
    /// Accelerator.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accel: Option<Accel>,
    /// QEMU binary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qemu: Option<PathBuf>,
    /// Debug output.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub debug: Option<bool>,
    /// Host mounts (host paths as written: relative ones resolve at run time).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mounts: Option<Vec<Mount>>,
}

impl VmUpdate {
    /// Sets `key` from `raw` as given at `origin`: the one parser and validator of
    /// each setting. Settings that cannot be baked are refused from build-time
    /// sources.
    pub fn set(&mut self, key: Key, raw: Raw<'_>, origin: &Origin) -> Result<(), SettingError> {
        let err = |problem: String| SettingError {
            key,
            origin: origin.clone(),
            value: raw.to_string(),
            problem,
        };
        let build_time = matches!(
            origin,
            Origin::Manifest { .. } | Origin::BuildEnv | Origin::Baked
        );
        if build_time && !key.bakeable() {
            return Err(err(format!(
                "it describes the host that runs the executable, so it is read only at run \
                 time ({})",
                key.env()
            )));
        }
        let text = |kind: &str| match raw {
            Raw::Text(s) => Ok(s),
            _ => Err(err(format!("not {kind}"))),
        };
        let boolean = || match raw {
            Raw::Bool(b) => Ok(b),
            Raw::Text(s) => parse::boolean(s).map_err(err),
            Raw::Int(_) => Err(err("not a boolean".into())),
        };
        let duration = || match raw {
            Raw::Int(n) => u64::try_from(n)
                .map(Duration::from_secs)
                .map_err(|_| err("not a duration".into())),
            Raw::Text(s) => parse::duration(s).map_err(err),
            Raw::Bool(_) => Err(err("not a duration".into())),
        };
        match key {
            Key::Cpus => {
                let n = match raw {
                    Raw::Int(n) => u64::try_from(n).map_err(|_| err("not a count".into()))?,
                    Raw::Text(s) => parse::count(s).map_err(err)?,
                    Raw::Bool(_) => return Err(err("not a number".into())),
                };
                let n =
                    parse::check_range(n, 1, MAX_CPUS.into(), |n| n.to_string()).map_err(err)?;
                self.cpus = Some(n as u32);
            }
            Key::Memory => {
                let mib = match raw {
                    Raw::Int(n) => u64::try_from(n).map_err(|_| err("not a size".into()))?,
                    Raw::Text(s) => parse::size_mib(s).map_err(err)?,
                    Raw::Bool(_) => return Err(err("not a size".into())),
                };
                let mib = parse::check_range(
                    mib,
                    MIN_MEMORY_MIB.into(),
                    MAX_MEMORY_MIB.into(),
                    parse::format_mib,
                )
                .map_err(err)?;
                self.memory_mib = Some(mib as u32);
            }
            Key::Timeout => self.timeout = Some(duration()?),
            Key::BootTimeout => self.boot_timeout = Some(duration()?),
            Key::Tty => self.tty = Some(boolean()?),
            Key::Interactive => self.interactive = Some(boolean()?),
            Key::Network => self.network = Some(boolean()?),
            Key::Publish => {
                let list = text("a list of port mappings")?;
                self.publish = Some(
                    crate::publish::parse_all([list])
                        .map_err(|e| err(format!("{:?}: {}", e.value, e.why)))?,
                );
            }
            Key::Accel => self.accel = Some(text("an accelerator")?.parse().map_err(err)?),
            Key::Qemu => self.qemu = Some(PathBuf::from(text("a path")?)),
            Key::Debug => self.debug = Some(boolean()?),
            Key::Mounts => {
                let list = text("a list of mounts")?;
                self.mounts = Some(mount::parse_list(list).map_err(|e| err(e.to_string()))?);
            }
        }
        Ok(())
    }

    /// The value of `key` as text [`VmUpdate::set`] reads back, if set.
    pub fn raw(&self, key: Key) -> Option<String> {
        let b = |v: Option<bool>| v.map(|b| b.to_string());
        match key {
            Key::Cpus => self.cpus.map(|n| n.to_string()),
            Key::Memory => self.memory_mib.map(|m| parse::format_mib(m.into())),
            Key::Timeout => self.timeout.map(parse::format_duration),
            Key::BootTimeout => self.boot_timeout.map(parse::format_duration),
            Key::Tty => b(self.tty),
            Key::Interactive => b(self.interactive),
            Key::Network => b(self.network),
            Key::Publish => self.publish.as_ref().map(|list| {
                list.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            }),
            Key::Accel => self.accel.map(|a| a.name().to_owned()),
            Key::Qemu => self.qemu.as_ref().map(|p| p.display().to_string()),
            Key::Debug => b(self.debug),
            Key::Mounts => self.mounts.as_ref().map(|m| show_mounts(m)),
        }
    }

    /// The settings that are set here.
    pub fn keys(&self) -> impl Iterator<Item = Key> + '_ {
        Key::ALL.into_iter().filter(|k| self.raw(*k).is_some())
    }

    /// Checks every value through [`VmUpdate::set`] as if given at `origin` (for
    /// typed sources such as the baked defaults, which are untrusted input).
    pub fn validate(&self, origin: &Origin) -> Result<(), SettingError> {
        let mut scratch = VmUpdate::default();
        for key in self.keys() {
            let text = self.raw(key).unwrap_or_default();
            scratch.set(key, Raw::Text(&text), origin)?;
        }
        Ok(())
    }

    /// Reads the variables of `origin` ([`Origin::Env`]: `CAST_*` of every setting;
    /// [`Origin::BuildEnv`]: `CAST_BUILD_*` of the bakeable ones) through `get`; an
    /// empty variable counts as unset.
    pub fn from_env(
        get: impl Fn(&str) -> Option<String>,
        origin: &Origin,
    ) -> Result<VmUpdate, SettingError> {
        let mut u = VmUpdate::default();
        for key in Key::ALL {
            let var = match origin {
                Origin::BuildEnv => key.build_env(),
                Origin::BuildVmEnv => key.build_vm_env(),
                _ => Some(key.env()),
            };
            if let Some(v) = var.and_then(&get).filter(|v| !v.is_empty()) {
                u.set(key, Raw::Text(&v), origin)?;
            }
        }
        // The original's off switch, kept: `CAST_NO_NETWORK=1` is `CAST_NETWORK=0`
        // (and wins over it).
        if let Some(v) = get(NO_NETWORK_ENV).filter(|v| !v.is_empty() && *origin == Origin::Env) {
            let off = parse::boolean(&v).map_err(|problem| SettingError {
                key: Key::Network,
                origin: Origin::NoNetworkEnv,
                value: Raw::Text(&v).to_string(),
                problem,
            })?;
            u.network = Some(!off);
        }
        Ok(u)
    }

    /// `self` laid over `lower`: what `self` sets wins. The whole struct is
    /// destructured so a new field does not compile until its merge is decided.
    pub fn over(self, lower: VmUpdate) -> VmUpdate {
        let VmUpdate {
            cpus,
            memory_mib,
            timeout,
            boot_timeout,
            tty,
            interactive,
            network,
            publish,
            accel,
            qemu,
            debug,
            mounts,
        } = self;
        VmUpdate {
            cpus: cpus.or(lower.cpus),
            memory_mib: memory_mib.or(lower.memory_mib),
            timeout: timeout.or(lower.timeout),
            boot_timeout: boot_timeout.or(lower.boot_timeout),
            tty: tty.or(lower.tty),
            interactive: interactive.or(lower.interactive),
            network: network.or(lower.network),
            publish: publish.or(lower.publish),
            accel: accel.or(lower.accel),
            qemu: qemu.or(lower.qemu),
            debug: debug.or(lower.debug),
            mounts: mounts.or(lower.mounts),
        }
    }
}

/// The inverted form of `CAST_NETWORK` a run also reads.
pub const NO_NETWORK_ENV: &str = "CAST_NO_NETWORK";
/// Mounts as one `CAST_MOUNT` string.
fn show_mounts(mounts: &[Mount]) -> String {
    mounts
        .iter()
        .map(Mount::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// How to size and run the VM: every setting resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct VmSettings {
    /// vCPUs.
    pub cpus: u32,
    /// Guest memory in MiB.
    pub memory_mib: u32,
    /// Stop the VM after this long (exit 124); `None`: no limit.
    pub timeout: Option<Duration>,
    /// Stop a boot whose guest has not come up after this long (the first such boot
    /// is retried once); `Duration::MAX`: no limit.
    pub boot_timeout: Duration,
    /// `Some` forces a terminal on or off; `None`: when stdin and stdout are terminals.
    pub tty: Option<bool>,
    /// Stream the host's stdin to the process; `false` gives it an empty stdin.
    pub interactive: bool,
    /// The guest has a network card behind a NAT; off, it has only `lo`.
    pub network: bool,
    /// Host ports forwarded into the guest.
    pub publish: Vec<PortMapping>,
    /// Accelerator override; `None` picks the best usable one.
    pub accel: Option<Accel>,
    /// QEMU binary override.
    pub qemu: Option<PathBuf>,
    /// Kernel messages and init timings on stderr.
    pub debug: bool,
    /// Host mounts, host paths as given (resolved when the VM starts).
    pub mounts: Vec<Mount>,
}

impl Default for VmSettings {
    fn default() -> Self {
        VmSettings {
            cpus: DEFAULT_CPUS,
            memory_mib: DEFAULT_MEMORY_MIB,
            timeout: None,
            boot_timeout: DEFAULT_BOOT_TIMEOUT,
            tty: None,
            interactive: true,
            network: true,
            publish: Vec::new(),
            accel: None,
            qemu: None,
            debug: false,
            mounts: Vec::new(),
        }
    }
}

impl VmSettings {
    /// `update` applied over `self`.
    pub fn apply(self, update: &VmUpdate) -> VmSettings {
        let VmUpdate {
            cpus,
            memory_mib,
            timeout,
            boot_timeout,
            tty,
            interactive,
            network,
            publish,
            accel,
            qemu,
            debug,
            mounts,
        } = update.clone();
        let limit = |d: Duration| (!d.is_zero()).then_some(d);
        VmSettings {
            cpus: cpus.unwrap_or(self.cpus),
            memory_mib: memory_mib.unwrap_or(self.memory_mib),
            timeout: timeout.map_or(self.timeout, limit),
            boot_timeout: boot_timeout
                .map_or(self.boot_timeout, |d| limit(d).unwrap_or(Duration::MAX)),
            tty: tty.or(self.tty),
            interactive: interactive.unwrap_or(self.interactive),
            network: network.unwrap_or(self.network),
            publish: publish.unwrap_or(self.publish),
            accel: accel.or(self.accel),
            qemu: qemu.or(self.qemu),
            debug: debug.unwrap_or(self.debug),
            mounts: mounts.unwrap_or(self.mounts),
        }
    }

    /// A build VM's settings: no terminal, no stdin, [`DEFAULT_BUILD_VM_MEMORY_MIB`],
    /// then the engine's `CAST_*` variables (accelerator, QEMU, debug, boot timeout)
    /// and `CAST_BUILD_VM_CPUS`, `CAST_BUILD_VM_MEMORY`, `CAST_BUILD_VM_TIMEOUT` (per
    /// RUN; no limit by default), read through `get`.
    pub fn build_vm(get: impl Fn(&str) -> Option<String>) -> Result<VmSettings, SettingError> {
        let base = VmSettings {
            memory_mib: DEFAULT_BUILD_VM_MEMORY_MIB,
            tty: Some(false),
            interactive: false,
            // On, as in BuildKit; a RUN turns it off with --network=none.
            network: true,
            ..VmSettings::default()
        };
        let engine = [Key::Accel, Key::Qemu, Key::Debug, Key::BootTimeout];
        let run = VmUpdate::from_env(
            |k| {
                engine
                    .iter()
                    .any(|key| key.env() == k)
                    .then(|| get(k))
                    .flatten()
            },
            &Origin::Env,
        )?;
        let own = VmUpdate::from_env(&get, &Origin::BuildVmEnv)?;
        Ok(base.apply(&run).apply(&own))
    }

    /// The defaults with `updates` applied, lowest precedence first.
    pub fn resolve<'a>(updates: impl IntoIterator<Item = &'a VmUpdate>) -> VmSettings {
        updates
            .into_iter()
            .fold(VmSettings::default(), |s, u| s.apply(u))
    }

    /// The value of `key` for people: `512M`, `5m`, `none`, `auto`.
    pub fn show(&self, key: Key) -> String {
        let onoff = |b: bool| if b { "on" } else { "off" }.to_owned();
        match key {
            Key::Cpus => self.cpus.to_string(),
            Key::Memory => parse::format_mib(self.memory_mib.into()),
            Key::Timeout => self.timeout.map_or("none".into(), parse::format_duration),
            Key::BootTimeout if self.boot_timeout == Duration::MAX => "none".into(),
            Key::BootTimeout => parse::format_duration(self.boot_timeout),
            Key::Tty => self.tty.map_or("auto".into(), onoff),
            Key::Interactive => onoff(self.interactive),
            Key::Network => onoff(self.network),
            Key::Publish if self.publish.is_empty() => "none".into(),
            Key::Publish => self
                .publish
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            Key::Accel => self.accel.map_or("auto".into(), |a| a.name().into()),
            Key::Qemu => self
                .qemu
                .as_ref()
                .map_or("from PATH".into(), |p| p.display().to_string()),
            Key::Debug => onoff(self.debug),
            Key::Mounts if self.mounts.is_empty() => "none".into(),
            Key::Mounts => show_mounts(&self.mounts),
        }
    }
}

/// Durations in the payload as text (`5m`, `1s 500ms`), read back by
/// [`parse::duration`].
mod duration_text {
    use super::parse;
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&parse::format_duration(*d)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|t| parse::duration(&t).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests;
