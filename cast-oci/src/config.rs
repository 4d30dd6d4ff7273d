//! The image configuration as typed values: what the runtime needs to start the
//! entrypoint (env, entrypoint, cmd, user, workdir, stop signal) and what it reports
//! (labels, exposed ports, volumes). Parsed with a tolerant serde model of the OCI/Docker
//! config JSON rather than `oci_spec::image::ImageConfiguration`, which rejects configs
//! without `rootfs`/`os` and drops Docker's `Healthcheck`/`Shell`.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::error::Error;

/// The runtime configuration of an image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageConfig {
    /// Environment in order, as (name, value); entries without `=` get an empty value.
    pub env: Vec<(String, String)>,
    /// `ENTRYPOINT` in exec form (empty if unset).
    pub entrypoint: Vec<String>,
    /// `CMD` in exec form (empty if unset).
    pub cmd: Vec<String>,
    /// `USER`, if set.
    pub user: Option<User>,
    /// `WORKDIR`, if set (absolute in practice).
    pub working_dir: Option<String>,
    /// `LABEL`s.
    pub labels: BTreeMap<String, String>,
    /// `EXPOSE`d ports, sorted.
    pub exposed_ports: Vec<Port>,
    /// `STOPSIGNAL`, if set.
    pub stop_signal: Option<StopSignal>,
    /// `VOLUME` paths, sorted.
    pub volumes: Vec<String>,
    /// Docker's `SHELL` (empty if unset).
    pub shell: Vec<String>,
    /// Operating system the image is for (`linux` if unset).
    pub os: String,
    /// CPU architecture the image is for (empty if unset).
    pub architecture: String,
    /// Architecture variant (`v8` for arm64, ...), if set.
    pub variant: Option<String>,
}

/// `USER name[:group]`; either part may be numeric.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// User name or uid.
    pub user: String,
    /// Group name or gid, if given.
    pub group: Option<String>,
}

/// Transport protocol of an exposed port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    /// TCP (the default).
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

/// An `EXPOSE`d port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Port {
    /// Port number.
    pub port: u16,
    /// Protocol.
    pub protocol: Protocol,
}

/// A `STOPSIGNAL`: the name as written, and its Linux number when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopSignal {
    /// As written in the config, e.g. `SIGTERM`, `TERM` or `15`.
    pub name: String,
    /// The Linux signal number, if the name is known or numeric.
    pub number: Option<i32>,
}

const SIGNALS: &[(&str, i32)] = &[
    ("HUP", 1),
    ("INT", 2),
    ("QUIT", 3),
    ("ILL", 4),
    ("TRAP", 5),
    ("ABRT", 6),
    ("BUS", 7),
    ("FPE", 8),
    ("KILL", 9),
    ("USR1", 10),
    ("SEGV", 11),
    ("USR2", 12),
    ("PIPE", 13),
    ("ALRM", 14),
    ("TERM", 15),
    ("STKFLT", 16),
    ("CHLD", 17),
    ("CONT", 18),
    ("STOP", 19),
    ("TSTP", 20),
    ("TTIN", 21),
    ("TTOU", 22),
    ("URG", 23),
    ("XCPU", 24),
    ("XFSZ", 25),
    ("VTALRM", 26),
    ("PROF", 27),
    ("WINCH", 28),
    ("IO", 29),
    ("PWR", 30),
    ("SYS", 31),
];

impl StopSignal {
    /// Parses `SIGTERM`, `TERM`, `15` or `SIGRTMIN+3`.
    pub fn parse(s: &str) -> StopSignal {
        let upper = s.trim().to_ascii_uppercase();
        let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
        let number = if let Ok(n) = bare.parse::<i32>() {
            Some(n)
        } else if let Some(off) = bare.strip_prefix("RTMIN+") {
            off.parse::<i32>().ok().map(|o| 34 + o)
        } else if bare == "RTMIN" {
            Some(34)
        } else {
            SIGNALS.iter().find(|(n, _)| *n == bare).map(|(_, v)| *v)
        };
        StopSignal {
            name: s.to_string(),
            number,
        }
    }
}

#[derive(Deserialize, Default)]
struct RawImage {
    #[serde(default)]
    os: Option<String>,
    #[serde(default)]
    architecture: Option<String>,
    #[serde(default)]
    variant: Option<String>,
    #[serde(default)]
    config: Option<RawConfig>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct RawConfig {
    env: Option<Vec<String>>,
    entrypoint: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    user: Option<String>,
    working_dir: Option<String>,
    labels: Option<BTreeMap<String, String>>,
    exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    stop_signal: Option<String>,
    volumes: Option<BTreeMap<String, serde_json::Value>>,
    shell: Option<Vec<String>>,
}

impl ImageConfig {
    /// Parses an image config blob (OCI `application/vnd.oci.image.config.v1+json` or
    /// Docker `application/vnd.docker.container.image.v1+json`). `origin` names where it
    /// came from, for errors.
    pub fn from_json(bytes: &[u8], origin: &str) -> Result<ImageConfig, Error> {
        let raw: RawImage = serde_json::from_slice(bytes).map_err(|source| Error::Json {
            what: "image config".into(),
            origin: origin.into(),
            source,
        })?;
        let c = raw.config.unwrap_or_default();
        let env = c
            .env
            .unwrap_or_default()
            .into_iter()
            .map(|e| match e.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (e, String::new()),
            })
            .collect();
        let mut exposed_ports = Vec::new();
        for key in c.exposed_ports.unwrap_or_default().into_keys() {
            exposed_ports.push(parse_port(&key).ok_or_else(|| Error::Unsupported {
                origin: origin.into(),
                what: "exposed port".into(),
                detail: key.clone(),
            })?);
        }
        exposed_ports.sort();
        Ok(ImageConfig {
            env,
            entrypoint: c.entrypoint.unwrap_or_default(),
            cmd: c.cmd.unwrap_or_default(),
            user: c
                .user
                .filter(|u| !u.is_empty())
                .map(|u| match u.split_once(':') {
                    Some((user, group)) => User {
                        user: user.into(),
                        group: Some(group.into()),
                    },
                    None => User {
                        user: u,
                        group: None,
                    },
                }),
            working_dir: c.working_dir.filter(|w| !w.is_empty()),
            labels: c.labels.unwrap_or_default(),
            exposed_ports,
            stop_signal: c
                .stop_signal
                .filter(|s| !s.is_empty())
                .map(|s| StopSignal::parse(&s)),
            volumes: c.volumes.unwrap_or_default().into_keys().collect(),
            shell: c.shell.unwrap_or_default(),
            os: raw.os.unwrap_or_else(|| "linux".into()),
            architecture: raw.architecture.unwrap_or_default(),
            variant: raw.variant,
        })
    }

    /// The empty config of `scratch`.
    pub fn scratch() -> ImageConfig {
        ImageConfig {
            os: "linux".into(),
            ..ImageConfig::default()
        }
    }
}

fn parse_port(key: &str) -> Option<Port> {
    let (num, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    let protocol = match proto.to_ascii_lowercase().as_str() {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        "sctp" => Protocol::Sctp,
        _ => return None,
    };
    Some(Port {
        port: num.parse().ok()?,
        protocol,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_config() {
        let json = br#"{"architecture":"amd64","os":"linux","config":{
            "Env":["PATH=/usr/bin:/bin","EMPTY=","BARE"],
            "Entrypoint":["/bin/sh","-c"],"Cmd":["echo hi"],"User":"1000:web",
            "WorkingDir":"/srv","Labels":{"a":"b"},"ExposedPorts":{"80/tcp":{},"53/udp":{},"8080":{}},
            "StopSignal":"SIGQUIT","Volumes":{"/data":{}}},"rootfs":{"type":"layers","diff_ids":[]}}"#;
        let c = ImageConfig::from_json(json, "test").unwrap();
        assert_eq!(c.env[0], ("PATH".into(), "/usr/bin:/bin".into()));
        assert_eq!(c.env[2], ("BARE".into(), "".into()));
        assert_eq!(c.entrypoint, ["/bin/sh", "-c"]);
        assert_eq!(
            c.user,
            Some(User {
                user: "1000".into(),
                group: Some("web".into())
            })
        );
        assert_eq!(c.working_dir.as_deref(), Some("/srv"));
        assert_eq!(c.exposed_ports.len(), 3);
        assert_eq!(
            c.exposed_ports[0],
            Port {
                port: 53,
                protocol: Protocol::Udp
            }
        );
        assert_eq!(c.stop_signal.unwrap().number, Some(3));
        assert_eq!(c.volumes, ["/data"]);
        assert_eq!(c.architecture, "amd64");
    }

    #[test]
    fn tolerates_minimal_and_rejects_garbage() {
        let c = ImageConfig::from_json(b"{}", "t").unwrap();
        assert_eq!(c, ImageConfig::scratch());
        assert!(ImageConfig::from_json(b"[", "t").is_err());
        assert_eq!(StopSignal::parse("term").number, Some(15));
        assert_eq!(StopSignal::parse("9").number, Some(9));
        assert_eq!(StopSignal::parse("SIGRTMIN+3").number, Some(37));
        assert_eq!(StopSignal::parse("NOPE").number, None);
    }
}
