//! The run config: what the guest runs and how, as the Containerfile left it.
//!
//! [`RunConfig`] is plain data with serde so it can travel in the executable's
//! payload. A stage starts from its base: another stage's config, an empty one
//! for `scratch`, or an image's config converted with
//! [`RunConfig::from_image_config`] from the OCI fields in [`ImageConfig`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

/// How a container is to be run: the result of a stage.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunConfig {
    /// Environment, in definition order, without duplicates.
    pub env: Vec<(String, String)>,
    /// `ENTRYPOINT`, shell form already wrapped in the shell.
    pub entrypoint: Option<Vec<String>>,
    /// `CMD`, shell form already wrapped in the shell.
    pub cmd: Option<Vec<String>>,
    /// `USER user[:group]`.
    pub user: Option<String>,
    /// `WORKDIR`, absolute.
    pub workdir: Option<String>,
    /// `LABEL`s.
    pub labels: BTreeMap<String, String>,
    /// `EXPOSE`d ports.
    pub exposed_ports: BTreeSet<Port>,
    /// `STOPSIGNAL`, as written (validated).
    pub stop_signal: Option<String>,
    /// `VOLUME`s.
    pub volumes: BTreeSet<String>,
    /// `SHELL` for shell-form commands; `None` means `["/bin/sh", "-c"]`.
    pub shell: Option<Vec<String>>,
    /// `ONBUILD` triggers, as text: they run at the start of a stage built
    /// on this one, then are dropped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub onbuild: Vec<String>,
}

/// An image config as OCI spells it, for [`RunConfig::from_image_config`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    /// `Env`: `KEY=value` strings.
    pub env: Vec<String>,
    /// `Entrypoint`.
    pub entrypoint: Option<Vec<String>>,
    /// `Cmd`.
    pub cmd: Option<Vec<String>>,
    /// `User` (empty means unset).
    pub user: String,
    /// `WorkingDir` (empty means unset).
    pub working_dir: String,
    /// `Labels`.
    pub labels: BTreeMap<String, String>,
    /// `ExposedPorts` keys: `80/tcp`.
    pub exposed_ports: Vec<String>,
    /// `StopSignal` (empty means unset).
    pub stop_signal: String,
    /// `Volumes` keys.
    pub volumes: Vec<String>,
    /// Docker's `Shell` (empty means unset).
    pub shell: Vec<String>,
    /// `OnBuild` triggers.
    #[serde(default)]
    pub on_build: Vec<String>,
}

impl RunConfig {
    /// Docker's default shell for shell-form commands.
    pub const DEFAULT_SHELL: [&'static str; 2] = ["/bin/sh", "-c"];

    /// Starts from a base image's config; unparsable ports are dropped.
    pub fn from_image_config(c: ImageConfig) -> Self {
        let mut rc = Self::default();
        for line in c.env {
            let (k, v) = line.split_once('=').unwrap_or((line.as_str(), ""));
            rc.set_env(k, v);
        }
        let non_empty = |s: String| (!s.is_empty()).then_some(s);
        rc.entrypoint = c.entrypoint;
        rc.cmd = c.cmd;
        rc.user = non_empty(c.user);
        rc.workdir = non_empty(c.working_dir);
        rc.labels = c.labels;
        rc.exposed_ports = c
            .exposed_ports
            .iter()
            .filter_map(|p| Port::parse_spec(p).ok())
            .flatten()
            .collect();
        rc.stop_signal = non_empty(c.stop_signal);
        rc.volumes = c.volumes.into_iter().collect();
        rc.shell = (!c.shell.is_empty()).then_some(c.shell);
        rc.onbuild = c.on_build;
        rc
    }

    /// The value of an environment variable.
    pub fn env_var(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Sets a variable, keeping its first position if it existed.
    pub fn set_env(&mut self, name: &str, value: &str) {
        match self.env.iter_mut().find(|(k, _)| k == name) {
            Some(slot) => value.clone_into(&mut slot.1),
            None => self.env.push((name.to_owned(), value.to_owned())),
        }
    }

    /// The shell used for shell-form commands.
    pub fn shell_or_default(&self) -> Vec<String> {
        self.shell
            .clone()
            .unwrap_or_else(|| Self::DEFAULT_SHELL.map(str::to_owned).to_vec())
    }

    /// The full command line the guest runs: entrypoint followed by cmd.
    pub fn argv(&self) -> Vec<String> {
        let mut argv = self.entrypoint.clone().unwrap_or_default();
        argv.extend(self.cmd.clone().unwrap_or_default());
        argv
    }
}

/// A transport protocol of an exposed port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    /// TCP (the default).
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

/// An exposed port, serialised as `80/tcp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Port {
    /// Port number, 1..=65535.
    pub number: u16,
    /// Protocol.
    pub protocol: Protocol,
}

impl Port {
    /// Parses `80`, `80/udp`, `8000-8010/tcp` into the ports it names.
    pub fn parse_spec(spec: &str) -> Result<Vec<Port>, String> {
        let (range, proto) = spec.split_once('/').unwrap_or((spec, "tcp"));
        let protocol = match proto.to_ascii_lowercase().as_str() {
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            "sctp" => Protocol::Sctp,
            _ => {
                return Err(format!(
                    "invalid protocol {proto:?} in port {spec:?} (tcp, udp or sctp)"
                ))
            }
        };
        let number = |s: &str| match s.parse::<u16>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!("invalid port {s:?} in {spec:?} (1 to 65535)")),
        };
        let (start, end) = match range.split_once('-') {
            Some((a, b)) => (number(a)?, number(b)?),
            None => (number(range)?, number(range)?),
        };
        if end < start {
            return Err(format!("invalid port range {range:?}: end before start"));
        }
        Ok((start..=end)
            .map(|number| Port { number, protocol })
            .collect())
    }
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let proto = match self.protocol {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        };
        write!(f, "{}/{proto}", self.number)
    }
}

impl From<Port> for String {
    fn from(p: Port) -> String {
        p.to_string()
    }
}

impl TryFrom<String> for Port {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match Port::parse_spec(&s)?.as_slice() {
            [one] => Ok(*one),
            _ => Err(format!("{s:?} is a range, not one port")),
        }
    }
}

/// Linux signal names in number order (1-based).
const SIGNALS: [&str; 31] = [
    "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2",
    "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG",
    "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
];

/// The Linux number of a STOPSIGNAL value: `SIGTERM`, `term`, `15`, `SIGRTMIN+3`.
pub fn signal_number(signal: &str) -> Option<i32> {
    if let Ok(n) = signal.parse::<i32>() {
        return (1..=64).contains(&n).then_some(n);
    }
    let upper = signal.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    let extra = |rest: &str, sign: i32, base: i32| {
        let off = if rest.is_empty() {
            0
        } else {
            rest.strip_prefix(if sign > 0 { '+' } else { '-' })?
                .parse()
                .ok()?
        };
        Some(base + sign * off).filter(|n| (34..=64).contains(n))
    };
    if let Some(rest) = name.strip_prefix("RTMIN") {
        return extra(rest, 1, 34);
    }
    if let Some(rest) = name.strip_prefix("RTMAX") {
        return extra(rest, -1, 64);
    }
    let alias = match name {
        "IOT" => "ABRT",
        "POLL" => "IO",
        "CLD" => "CHLD",
        other => other,
    };
    SIGNALS
        .iter()
        .position(|s| *s == alias)
        .and_then(|i| i32::try_from(i + 1).ok())
}
