//! Offline mode and cache sharing: a warm cache serves an image by tag and by digest
//! without any registry; a cold cache (or a cache missing a layer) fails naming what
//! is missing; several builds pulling the same image into one cache at once all get a
//! complete, verified cache and leave no temp files.

use std::sync::Arc;

use cast_oci::Error;

use crate::support::push::*;
use crate::support::registry::Registry;
use crate::support::{leftover_temp_files, options, resolver};

fn three_layer_image() -> TestImage {
    TestImage::oci(
        "amd64",
        vec![
            TestLayer::new(&[("a", &[1u8; 300_000][..])], LAYER_GZIP),
            TestLayer::new(&[("b", &[2u8; 200_000][..])], LAYER_ZSTD),
            TestLayer::new(&[("c", b"small")], LAYER_TAR),
        ],
    )
}

#[test]
fn offline_with_warm_and_cold_cache() {
    let img = three_layer_image();
    let warm = tempfile::tempdir().unwrap();
    let (reference, online) = {
        let reg = Registry::start();
        Pusher::new(&reg.addr, None).image("test/off", Some("v1"), &img);
        let r = format!("{}/test/off:v1", reg.addr);
        let online = resolver(warm.path(), options()).resolve_str(&r).unwrap();
        (r, online)
    }; // registry stopped here

    let mut off = options();
    off.offline = true;
    let image = resolver(warm.path(), off.clone())
        .resolve_str(&reference)
        .unwrap();
    assert_eq!(image, online);
    let by_digest = reference.replace(":v1", &format!("@{}", img.digest()));
    assert_eq!(
        resolver(warm.path(), off.clone())
            .resolve_str(&by_digest)
            .unwrap()
            .layers,
        online.layers
    );

    let cold = tempfile::tempdir().unwrap();
    let err = resolver(cold.path(), off.clone())
        .resolve_str(&reference)
        .unwrap_err();
    assert!(matches!(err, Error::OfflineMissing { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("offline") && msg.contains("manifest of") && msg.contains("test/off:v1"),
        "{msg}"
    );

    // Remove two layers from the warm cache: both are named.
    for l in &online.layers[..2] {
        std::fs::remove_file(&l.path).unwrap();
    }
    let err = resolver(warm.path(), off)
        .resolve_str(&reference)
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::OfflineMissing { .. }), "{msg}");
    for l in &online.layers[..2] {
        assert!(msg.contains(l.digest.as_str()), "{msg}");
    }
    assert!(!msg.contains(online.layers[2].digest.as_str()), "{msg}");
}

#[test]
fn concurrent_pulls_share_one_cache_safely() {
    let reg = Registry::start();
    let img = three_layer_image();
    Pusher::new(&reg.addr, None).image("test/conc", Some("v1"), &img);
    let cache = Arc::new(tempfile::tempdir().unwrap());
    let r = format!("{}/test/conc:v1", reg.addr);
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let (cache, r) = (cache.clone(), r.clone());
                // Each "build" has its own resolver and client, as separate processes would.
                s.spawn(move || resolver(cache.path(), options()).resolve_str(&r))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let first = results[0].as_ref().unwrap();
    for r in &results {
        assert_eq!(r.as_ref().unwrap(), first);
    }
    for (l, want) in first.layers.iter().zip(&img.layers) {
        assert_eq!(std::fs::read(&l.path).unwrap(), want.blob);
    }
    assert_eq!(leftover_temp_files(cache.path()), Vec::<String>::new());
}
