//! The image configuration: what the runtime needs to start the entrypoint (env,
//! entrypoint, cmd, user, workdir, stop signal) and what it reports (labels, exposed
//! ports, volumes), as the light [`ImageConfig`] of `cast-core`: one type serves
//! the registry client, the Containerfile frontend and the casted executable, which
//! never links this crate. Parsed with a tolerant serde model of the OCI/Docker
//! config JSON rather than `oci_spec::image::ImageConfiguration`, which rejects
//! configs without `rootfs`/`os` and drops Docker's `Healthcheck`/`Shell`.

use std::collections::BTreeMap;

use serde::Deserialize;

pub use cast_core::run_config::{signal_number, ImageConfig, Port, Protocol};

use crate::error::Error;
use crate::image::Platform;

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
    on_build: Option<Vec<String>>,
}

/// Parses an image config blob (OCI `application/vnd.oci.image.config.v1+json` or
/// Docker `application/vnd.docker.container.image.v1+json`) into the config and the
/// platform it declares. `origin` names where it came from, for errors. Exposed
/// ports are checked (`80`, `80/tcp`, `53/udp`, `8000-8010/tcp`).
pub fn parse_config(bytes: &[u8], origin: &str) -> Result<(ImageConfig, Platform), Error> {
    let raw: RawImage = serde_json::from_slice(bytes).map_err(|source| Error::Json {
        what: "image config".into(),
        origin: origin.into(),
        source,
    })?;
    let c = raw.config.unwrap_or_default();
    let mut exposed_ports = Vec::new();
    for key in c.exposed_ports.unwrap_or_default().into_keys() {
        if Port::parse_spec(&key).is_err() {
            return Err(Error::Unsupported {
                origin: origin.into(),
                what: "exposed port".into(),
                detail: key,
            });
        }
        exposed_ports.push(key);
    }
    let config = ImageConfig {
        env: c.env.unwrap_or_default(),
        entrypoint: c.entrypoint.filter(|e| !e.is_empty()),
        cmd: c.cmd.filter(|e| !e.is_empty()),
        user: c.user.unwrap_or_default(),
        working_dir: c.working_dir.unwrap_or_default(),
        labels: c.labels.unwrap_or_default(),
        exposed_ports,
        stop_signal: c.stop_signal.unwrap_or_default(),
        volumes: c.volumes.unwrap_or_default().into_keys().collect(),
        shell: c.shell.unwrap_or_default(),
        on_build: c.on_build.unwrap_or_default(),
    };
    let platform = Platform {
        os: raw.os.unwrap_or_else(|| "linux".into()),
        architecture: raw.architecture.unwrap_or_default(),
        variant: raw.variant,
    };
    Ok((config, platform))
}

/// The platform of `scratch`: Linux, any architecture.
pub fn scratch_platform() -> Platform {
    Platform {
        os: "linux".into(),
        architecture: String::new(),
        variant: None,
    }
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
        let (c, p) = parse_config(json, "test").unwrap();
        assert_eq!(c.env[0], "PATH=/usr/bin:/bin");
        assert_eq!(c.env[2], "BARE");
        assert_eq!(c.entrypoint, Some(vec!["/bin/sh".to_string(), "-c".into()]));
        assert_eq!(c.user, "1000:web");
        assert_eq!(c.working_dir, "/srv");
        assert_eq!(c.exposed_ports, ["53/udp", "80/tcp", "8080"]);
        assert_eq!(signal_number(&c.stop_signal), Some(3));
        assert_eq!(c.volumes, ["/data"]);
        assert_eq!(p.architecture, "amd64");
        let rc = cast_core::RunConfig::from_image_config(c);
        assert_eq!(rc.env_var("EMPTY"), Some(""));
        assert_eq!(rc.exposed_ports.len(), 3);
        assert_eq!(rc.user.as_deref(), Some("1000:web"));
    }

    #[test]
    fn tolerates_minimal_and_rejects_garbage() {
        let (c, p) = parse_config(b"{}", "t").unwrap();
        assert_eq!(c, ImageConfig::default());
        assert_eq!(p, scratch_platform());
        assert!(parse_config(b"[", "t").is_err());
        assert!(parse_config(br#"{"config":{"ExposedPorts":{"http":{}}}}"#, "t").is_err());
        assert_eq!(signal_number("term"), Some(15));
        assert_eq!(signal_number("SIGRTMIN+3"), Some(37));
        assert_eq!(signal_number("NOPE"), None);
    }
}
