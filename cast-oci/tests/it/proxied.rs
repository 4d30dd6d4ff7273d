//! Behaviour that needs the test proxy in front of the registry: Bearer-token auth
//! (anonymous and with credentials at the token endpoint), retries of transient
//! statuses (503, 429) with success afterwards, giving up after the retry budget on a
//! persistent 500, no retry of a 4xx, and a blob longer than declared refused.

use std::sync::atomic::Ordering;

use cast_oci::{AuthSource, Error};

use crate::support::proxy::{Proxy, ProxyState};
use crate::support::push::*;
use crate::support::registry::Registry;
use crate::support::{options, resolver};

fn registry_with_image(repo: &str) -> (Registry, TestImage) {
    let reg = Registry::start();
    let img = TestImage::oci(
        "amd64",
        vec![TestLayer::new(&[("f", b"proxied\n")], LAYER_GZIP)],
    );
    Pusher::new(&reg.addr, None).image(repo, Some("v1"), &img);
    (reg, img)
}

#[test]
fn bearer_token_anonymous_and_with_credentials() {
    let (reg, img) = registry_with_image("test/bearer");
    let proxy = Proxy::start(
        &reg.addr,
        ProxyState {
            bearer: true,
            ..Default::default()
        },
    );
    let cache = tempfile::tempdir().unwrap();
    let image = resolver(cache.path(), options())
        .resolve_str(&format!("{}/test/bearer:v1", proxy.addr))
        .unwrap();
    assert_eq!(
        image.manifest_digest.as_ref().unwrap().as_str(),
        img.digest()
    );
    let log = proxy.requests();
    let tokens: Vec<_> = log.iter().filter(|l| l.starts_with("GET /token")).collect();
    assert_eq!(
        tokens.len(),
        1,
        "one token, reused for every blob: {log:#?}"
    );
    assert!(
        tokens[0].contains("scope=repository%3Atest%2Fbearer%3Apull")
            && tokens[0].contains("service=cast-test"),
        "{log:#?}"
    );
    assert!(
        log.iter()
            .filter(|l| l.contains("/blobs/"))
            .all(|l| l.ends_with("Bearer")),
        "{log:#?}"
    );
    drop(proxy);

    let creds = ProxyState {
        bearer: true,
        token_credentials: Some(("bob".into(), "pw".into())),
        ..Default::default()
    };
    let proxy = Proxy::start(&reg.addr, creds);
    let r = format!("{}/test/bearer:v1", proxy.addr);
    let err = resolver(tempfile::tempdir().unwrap().path(), options())
        .resolve_str(&r)
        .unwrap_err();
    assert!(
        matches!(err, Error::Unauthorized { .. }) && err.to_string().contains("needs credentials"),
        "{err}"
    );
    let mut opts = options();
    opts.client.auth = AuthSource::from_lookup(|k| match k {
        "CAST_REGISTRY_USER" => Some("bob".into()),
        "CAST_REGISTRY_PASSWORD" => Some("pw".into()),
        _ => None,
    });
    let fresh = tempfile::tempdir().unwrap();
    let image = resolver(fresh.path(), opts).resolve_str(&r).unwrap();
    assert_eq!(
        std::fs::read(&image.layers[0].path).unwrap(),
        img.layers[0].blob
    );
}

#[test]
fn transient_statuses_are_retried() {
    let (reg, img) = registry_with_image("test/retry");
    for status in [503, 429] {
        let proxy = Proxy::start(&reg.addr, ProxyState::default());
        proxy.state.fail_status.store(status, Ordering::SeqCst);
        proxy.state.fail_next.store(2, Ordering::SeqCst); // attempts = 3 in test options
        let cache = tempfile::tempdir().unwrap();
        let image = resolver(cache.path(), options())
            .resolve_str(&format!("{}/test/retry:v1", proxy.addr))
            .unwrap();
        assert_eq!(
            image.manifest_digest.as_ref().unwrap().as_str(),
            img.digest()
        );
        let manifests = proxy
            .requests()
            .iter()
            .filter(|l| l.contains("/manifests/"))
            .count();
        assert_eq!(manifests, 3, "status {status}: {:#?}", proxy.requests());
    }
}

#[test]
fn persistent_5xx_gives_up_and_4xx_is_not_retried() {
    let (reg, _img) = registry_with_image("test/giveup");
    let proxy = Proxy::start(&reg.addr, ProxyState::default());
    proxy.state.fail_status.store(500, Ordering::SeqCst);
    proxy.state.fail_next.store(1000, Ordering::SeqCst);
    let cache = tempfile::tempdir().unwrap();
    let err = resolver(cache.path(), options())
        .resolve_str(&format!("{}/test/giveup:v1", proxy.addr))
        .unwrap_err();
    assert!(matches!(err, Error::Status { status: 500, .. }), "{err}");
    assert!(err.to_string().contains(&proxy.addr), "{err}");
    assert_eq!(proxy.requests().len(), 3, "{:#?}", proxy.requests());

    proxy.state.fail_status.store(400, Ordering::SeqCst);
    let before = proxy.requests().len();
    let err = resolver(cache.path(), options())
        .resolve_str(&format!("{}/test/giveup:v1", proxy.addr))
        .unwrap_err();
    assert!(matches!(err, Error::Status { status: 400, .. }), "{err}");
    assert_eq!(
        proxy.requests().len() - before,
        1,
        "{:#?}",
        proxy.requests()
    );

    proxy.state.fail_status.store(429, Ordering::SeqCst);
    let before = proxy.requests().len();
    let err = resolver(cache.path(), options())
        .resolve_str(&format!("{}/test/giveup:v1", proxy.addr))
        .unwrap_err();
    assert!(matches!(err, Error::RateLimited { .. }), "{err}");
    assert!(err.to_string().contains("rate-limiting"), "{err}");
    assert_eq!(
        proxy.requests().len() - before,
        3,
        "{:#?}",
        proxy.requests()
    );
}

#[test]
fn blob_longer_than_declared_is_refused() {
    let (reg, img) = registry_with_image("test/pad");
    let proxy = Proxy::start(&reg.addr, ProxyState::default());
    proxy.state.pad_blobs.store(true, Ordering::SeqCst);
    let cache = tempfile::tempdir().unwrap();
    let err = resolver(cache.path(), options())
        .resolve_str(&format!("{}/test/pad:v1", proxy.addr))
        .unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
    let config = sha256(&img.config);
    assert!(
        err.to_string().contains(&config) && err.to_string().contains(&proxy.addr),
        "{err}"
    );
    assert!(!cache
        .path()
        .join("blobs/sha256")
        .join(&config[7..])
        .exists());
    assert_eq!(
        crate::support::leftover_temp_files(cache.path()),
        Vec::<String>::new()
    );
}
