//! Offline mode and cache sharing: a warm cache serves an image by tag and by digest
//! without any registry; a cold cache (or a cache missing a layer) fails naming what
//! is missing; several builds (threads, and separate processes) pulling the same image
//! into one cache at once all get a complete, verified cache and leave no temp files.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use cast_tests::output_of;

use cast_oci::Error;

use crate::support::proxy::{Proxy, ProxyState};
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

/// Deterministic incompressible-looking bytes.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    (0..len)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 56) as u8
        })
        .collect()
}

/// Child side of `concurrent_processes_share_one_cache`; fails unless run by it.
#[test]
#[ignore = "helper: run as a child process by offline::concurrent_processes_share_one_cache"]
fn child_pull() {
    let (Ok(cache), Ok(r)) = (
        std::env::var("CAST_OCI_TEST_CACHE"),
        std::env::var("CAST_OCI_TEST_REF"),
    ) else {
        panic!("only run by offline::concurrent_processes_share_one_cache");
    };
    let image = resolver(Path::new(&cache), options())
        .resolve_str(&r)
        .unwrap();
    let digests: Vec<&str> = image.layers.iter().map(|l| l.digest.as_str()).collect();
    println!("CHILD-RESULT {}", digests.join(","));
}

/// Kills and reaps child processes on drop, also when the test panics.
#[test]
fn concurrent_processes_share_one_cache() {
    let reg = Registry::start();
    let layers: Vec<TestLayer> = (0..3)
        .map(|i| TestLayer::new(&[("blob", &noise(3 << 20, i)[..])], LAYER_TAR))
        .collect();
    let img = TestImage::oci("amd64", layers);
    Pusher::new(&reg.addr, None).image("test/procs", Some("v1"), &img);
    // Through the proxy, to count how often each blob is fetched.
    let proxy = Proxy::start(&reg.addr, ProxyState::default());
    let cache = tempfile::tempdir().unwrap();
    let r = format!("{}/test/procs:v1", proxy.addr);
    let exe = std::env::current_exe().unwrap();
    // Four processes at once, each bounded, killed and reaped if it overruns.
    let outs: Vec<_> = std::thread::scope(|s| {
        let pulls: Vec<_> = (0..4)
            .map(|_| {
                let mut cmd = Command::new(&exe);
                cmd.args([
                    "offline::child_pull",
                    "--exact",
                    "--ignored",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("CAST_OCI_TEST_CACHE", cache.path())
                .env("CAST_OCI_TEST_REF", &r);
                s.spawn(move || output_of(cmd, Vec::new()))
            })
            .collect();
        pulls.into_iter().map(|p| p.join().unwrap()).collect()
    });
    let want: Vec<String> = img.layers.iter().map(|l| sha256(&l.blob)).collect();
    for out in outs {
        let stdout = out.stdout_text();
        assert_eq!(out.code, 0, "child failed:\n{stdout}\n{}", out.stderr);
        let line = stdout
            .lines()
            .find_map(|l| l.split_once("CHILD-RESULT ").map(|(_, r)| r.trim()))
            .unwrap_or_else(|| panic!("no result line from child:\n{stdout}"));
        assert_eq!(line, want.join(","));
    }
    for l in &img.layers {
        let d = sha256(&l.blob);
        assert_eq!(
            std::fs::read(cache.path().join("blobs/sha256").join(&d[7..])).unwrap(),
            l.blob
        );
    }
    assert_eq!(leftover_temp_files(cache.path()), Vec::<String>::new());
    // The per-digest lock makes each blob download happen once across all processes.
    let log = proxy.requests();
    for d in want.iter().chain([&sha256(&img.config)]) {
        let n = log
            .iter()
            .filter(|l| l.contains(&format!("/blobs/{d}")))
            .count();
        assert_eq!(n, 1, "{d} fetched {n} times: {log:#?}");
    }
}
