//! Failures: a blob corrupted in the registry's storage is caught by digest
//! verification and never enters the cache; an unreachable or silent registry fails
//! with a message naming it, a silent one after every attempt timed out.

use std::time::Duration;

use cast_tests::http;

use cast_oci::Error;

use crate::support::push::*;
use crate::support::registry::{refusing_addr, Registry};
use crate::support::{leftover_temp_files, options, resolver};

#[test]
fn corrupted_blob_is_detected_and_not_cached() {
    let reg = Registry::start();
    let layer = TestLayer::new(&[("data", &[7u8; 4096][..])], LAYER_GZIP);
    let img = TestImage::oci("amd64", vec![layer.clone()]);
    Pusher::new(&reg.addr, None).image("test/corrupt", Some("v1"), &img);
    let digest = sha256(&layer.blob);
    let data = reg.blob_data_path(digest.strip_prefix("sha256:").unwrap());
    let mut bytes = std::fs::read(&data).expect("blob in registry storage");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff; // same length, different content
    std::fs::write(&data, bytes).unwrap();

    let cache = tempfile::tempdir().unwrap();
    let err = resolver(cache.path(), options())
        .resolve_str(&format!("{}/test/corrupt:v1", reg.addr))
        .unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains(&digest) && msg.contains(&reg.addr) && msg.contains("layer"),
        "{msg}"
    );
    assert!(!cache
        .path()
        .join("blobs/sha256")
        .join(&digest[7..])
        .exists());
    assert_eq!(leftover_temp_files(cache.path()), Vec::<String>::new());
}

#[test]
fn unreachable_registry_fails_clearly() {
    let (_socket, addr) = refusing_addr(); // nothing listens there
    let cache = tempfile::tempdir().unwrap();
    let err = resolver(cache.path(), options())
        .resolve_str(&format!("{addr}/test/app:v1"))
        .unwrap_err();
    assert!(matches!(err, Error::Unreachable { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains(&addr) && msg.contains("cannot reach registry"),
        "{msg}"
    );
}

#[test]
fn registry_that_never_answers_times_out_after_every_attempt() {
    // Reads each request and never says a word.
    let held = std::sync::Mutex::new(Vec::new());
    let silent = http::Server::start(move |req| held.lock().unwrap().push(req.into_stream()));
    let mut opts = options();
    opts.client.io_timeout = Duration::from_millis(500);
    let attempts = opts.client.retry.attempts;
    let cache = tempfile::tempdir().unwrap();
    let err = resolver(cache.path(), opts)
        .resolve_str(&format!("{}/test/app:v1", silent.addr))
        .unwrap_err();
    assert!(err.to_string().contains(&silent.addr), "{err}");
    assert!(err.is_transient(), "a timeout is transient: {err}");
    let log = silent.requests();
    assert_eq!(log.len(), attempts as usize, "{log:#?}");
}
