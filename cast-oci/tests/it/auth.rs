//! Registry authentication against a registry with htpasswd basic auth: no credentials,
//! credentials from the environment variables, from a `DOCKER_CONFIG` directory, and
//! wrong credentials — each failure must name the registry and say what to do.

use base64::Engine as _;

use cast_oci::{AuthSource, Error};

use crate::support::proxy::{Proxy, ProxyState};
use crate::support::push::*;
use crate::support::registry::Registry;
use crate::support::{options, resolver};

fn env_of(pairs: Vec<(&'static str, String)>) -> impl Fn(&str) -> Option<String> {
    move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
}

#[test]
fn basic_auth_from_env_and_docker_config() {
    let reg = Registry::start_with_basic_auth("alice", "wonderland");
    let img = TestImage::oci(
        "amd64",
        vec![TestLayer::new(&[("secret", b"42\n")], LAYER_GZIP)],
    );
    Pusher::new(&reg.addr, Some(("alice", "wonderland"))).image("private/app", Some("v1"), &img);
    let r = format!("{}/private/app:v1", reg.addr);

    // No credentials at all.
    let cache = tempfile::tempdir().unwrap();
    let err = resolver(cache.path(), options())
        .resolve_str(&r)
        .unwrap_err();
    assert!(matches!(err, Error::Unauthorized { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains(&reg.addr)
            && msg.contains("needs credentials")
            && msg.contains("CAST_REGISTRY_USER"),
        "{msg}"
    );

    // From the environment variables.
    let mut opts = options();
    opts.client.auth = AuthSource::from_lookup(env_of(vec![
        ("CAST_REGISTRY_USER", "alice".into()),
        ("CAST_REGISTRY_PASSWORD", "wonderland".into()),
    ]));
    let image = resolver(cache.path(), opts).resolve_str(&r).unwrap();
    assert_eq!(image.layers[0].digest.as_str(), sha256(&img.layers[0].blob));

    // From $DOCKER_CONFIG/config.json (fresh cache so the registry is asked again).
    let docker = tempfile::tempdir().unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode("alice:wonderland");
    std::fs::write(
        docker.path().join("config.json"),
        format!(
            r#"{{"auths":{{"http://{}":{{"auth":"{auth}"}},"other.example":{{"auth":"eDp5"}}}}}}"#,
            reg.addr
        ),
    )
    .unwrap();
    let mut opts = options();
    let dir = docker.path().to_string_lossy().into_owned();
    opts.client.auth = AuthSource::from_lookup(env_of(vec![
        ("DOCKER_CONFIG", dir),
        ("HOME", "/nonexistent".into()),
    ]));
    let cache2 = tempfile::tempdir().unwrap();
    let image = resolver(cache2.path(), opts).resolve_str(&r).unwrap();
    assert_eq!(
        image.config.entrypoint,
        Some(vec!["/bin/hello".to_string()])
    );
    assert_eq!(
        std::fs::read(&image.layers[0].path).unwrap(),
        img.layers[0].blob
    );
}

#[test]
fn wrong_credentials_are_a_clear_error() {
    let reg = Registry::start_with_basic_auth("alice", "wonderland");
    let img = TestImage::oci("amd64", vec![TestLayer::new(&[("f", b"x")], LAYER_TAR)]);
    Pusher::new(&reg.addr, Some(("alice", "wonderland"))).image("private/app", Some("v1"), &img);
    // Through a proxy that passes the credentials on and counts the requests.
    let proxy = Proxy::start(&reg.addr, ProxyState::default());
    let mut opts = options();
    opts.client.auth = AuthSource::from_lookup(env_of(vec![
        ("CAST_REGISTRY_USER", "alice".into()),
        ("CAST_REGISTRY_PASSWORD", "wrong".into()),
    ]));
    let cache = tempfile::tempdir().unwrap();
    let err = resolver(cache.path(), opts)
        .resolve_str(&format!("{}/private/app:v1", proxy.addr))
        .unwrap_err();
    assert!(matches!(err, Error::Unauthorized { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains(&proxy.addr)
            && msg.contains("rejected the credentials")
            && msg.contains("401"),
        "{msg}"
    );
    // 4xx is not retried: the credentials were tried once.
    let log = proxy.requests();
    assert_eq!(
        log.iter().filter(|l| l.ends_with(" Basic")).count(),
        1,
        "{log:#?}"
    );
}
