//! Published ports in Docker's `-p` grammar: `[ip:]host:guest[/tcp|udp]`, with port
//! ranges of equal length (`8000-8010:8000-8010`).
//!
//! One difference from Docker, on purpose: without an address the host side binds
//! `127.0.0.1`, not every interface — a port is reachable from elsewhere only when
//! the address says so (`0.0.0.0:8080:80`).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// What the grammar says, for error messages.
pub const GRAMMAR: &str =
    "[ip:]host:guest[/tcp|udp], e.g. 8080:80, 127.0.0.1:5353:53/udp, 8000-8010:8000-8010";

/// A transport protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP (the default).
    Tcp,
    /// UDP.
    Udp,
}

impl Protocol {
    /// `tcp` or `udp`.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// One host port forwarded to one guest port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortMapping {
    /// The host address to bind (`127.0.0.1` unless given).
    pub host_ip: Ipv4Addr,
    /// The host port.
    pub host_port: u16,
    /// The port in the guest.
    pub guest_port: u16,
    /// TCP or UDP.
    pub protocol: Protocol,
}

impl fmt::Display for PortMapping {
    /// The canonical form: `127.0.0.1:8080:80/tcp`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}/{}",
            self.host_ip,
            self.host_port,
            self.guest_port,
            self.protocol.name()
        )
    }
}

/// A `-p` value or list that does not follow the grammar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a port mapping: {why} (expected {GRAMMAR})")]
pub struct PublishError {
    /// The offending value.
    pub value: String,
    /// What is wrong with it.
    pub why: String,
}

/// Parses one `-p` value (a range gives one mapping per port).
pub fn parse(value: &str) -> Result<Vec<PortMapping>, PublishError> {
    let bad = |why: &str| PublishError {
        value: value.to_owned(),
        why: why.to_owned(),
    };
    let v = value.trim();
    let (ports, protocol) = match v.rsplit_once('/') {
        Some((ports, "tcp")) => (ports, Protocol::Tcp),
        Some((ports, "udp")) => (ports, Protocol::Udp),
        Some(_) => return Err(bad("the protocol must be tcp or udp")),
        None => (v, Protocol::Tcp),
    };
    if ports.starts_with('[') {
        return Err(bad("IPv6 host addresses are not supported"));
    }
    let parts: Vec<&str> = ports.split(':').collect();
    let (host_ip, host, guest) = match parts.as_slice() {
        [host, guest] => (Ipv4Addr::LOCALHOST, *host, *guest),
        [ip, host, guest] => (
            ip.parse()
                .map_err(|_| bad(&format!("{ip:?} is not an IPv4 address")))?,
            *host,
            *guest,
        ),
        [_] => {
            return Err(bad(
                "give the host port too (host:guest); cast picks no random ports",
            ))
        }
        _ => return Err(bad("too many ':'")),
    };
    let host = range(host).map_err(|why| bad(&format!("host port {why}")))?;
    let guest = range(guest).map_err(|why| bad(&format!("guest port {why}")))?;
    if host.1 - host.0 != guest.1 - guest.0 {
        return Err(bad("the host and guest ranges differ in length"));
    }
    Ok((host.0..=host.1)
        .zip(guest.0..=guest.1)
        .map(|(host_port, guest_port)| PortMapping {
            host_ip,
            host_port,
            guest_port,
            protocol,
        })
        .collect())
}

/// Parses a comma-separated list (`CAST_PUBLISH`) or the values of repeated flags,
/// and refuses a host port given twice.
pub fn parse_all<'a>(
    values: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<PortMapping>, PublishError> {
    let mut all: Vec<PortMapping> = Vec::new();
    for value in values
        .into_iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
    {
        for m in parse(value)? {
            if let Some(other) = all.iter().find(|o| clashes(o, &m)) {
                return Err(PublishError {
                    value: value.to_owned(),
                    why: format!("host port {} is already published by {other}", m.host_port),
                });
            }
            all.push(m);
        }
    }
    Ok(all)
}

/// Two mappings that would bind the same host socket.
fn clashes(a: &PortMapping, b: &PortMapping) -> bool {
    a.protocol == b.protocol
        && a.host_port == b.host_port
        && (a.host_ip == b.host_ip || a.host_ip.is_unspecified() || b.host_ip.is_unspecified())
}

/// `N` or `N-M` (1–65535, N ≤ M).
fn range(s: &str) -> Result<(u16, u16), String> {
    let port = |p: &str| match p.trim().parse::<u16>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{p:?} is not a port number (1-65535)")),
    };
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (port(a)?, port(b)?);
            if a > b {
                return Err(format!("range {s:?} runs backwards"));
            }
            Ok((a, b))
        }
        None => port(s).map(|p| (p, p)),
    }
}

impl FromStr for PortMapping {
    type Err = PublishError;

    /// Exactly one mapping (no range).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match parse(s)?.as_slice() {
            [one] => Ok(*one),
            _ => Err(PublishError {
                value: s.to_owned(),
                why: "a single port was expected, not a range".into(),
            }),
        }
    }
}

impl Serialize for PortMapping {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PortMapping {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &str) -> String {
        let all = parse(s).unwrap();
        assert_eq!(all.len(), 1, "{s}");
        all[0].to_string()
    }

    #[test]
    fn dockers_forms_parse_and_bind_loopback_by_default() {
        assert_eq!(one("8080:80"), "127.0.0.1:8080:80/tcp");
        assert_eq!(one("0.0.0.0:8080:80/tcp"), "0.0.0.0:8080:80/tcp");
        assert_eq!(one("127.0.0.1:5353:53/udp"), "127.0.0.1:5353:53/udp");
        let range = parse("8000-8002:9000-9002/udp").unwrap();
        let shown: Vec<String> = range.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "127.0.0.1:8000:9000/udp",
                "127.0.0.1:8001:9001/udp",
                "127.0.0.1:8002:9002/udp"
            ]
        );
        let m: PortMapping = "1.2.3.4:1:2/udp".parse().unwrap();
        assert_eq!(m.to_string().parse::<PortMapping>().unwrap(), m);
    }

    #[test]
    fn bad_mappings_say_what_is_wrong() {
        for (value, why) in [
            ("80", "give the host port too"),
            ("8080:80/sctp", "tcp or udp"),
            ("0:80", "not a port number"),
            ("70000:80", "not a port number"),
            ("localhost:8080:80", "not an IPv4 address"),
            ("[::1]:8080:80", "IPv6"),
            ("8000-8010:8000-8005", "differ in length"),
            ("9-8:9-8", "runs backwards"),
            ("1:2:3:4", "too many"),
        ] {
            let e = parse(value).unwrap_err().to_string();
            assert!(e.contains(why) && e.contains(GRAMMAR), "{value}: {e}");
        }
    }

    #[test]
    fn lists_split_on_commas_and_refuse_a_port_twice() {
        let all = parse_all(["8080:80, 127.0.0.1:5353:53/udp", "9090:90"]).unwrap();
        assert_eq!(all.len(), 3);
        assert!(
            parse_all(["8080:80/udp,8080:80"]).is_ok(),
            "tcp and udp differ"
        );
        let e = parse_all(["8080:80", "0.0.0.0:8080:81"]).unwrap_err();
        assert!(
            e.why.contains("already published by 127.0.0.1:8080:80/tcp"),
            "{e}"
        );
        assert!(parse_all([""]).unwrap().is_empty());
    }
}
