//! `kernel = { url, sha256 }`: the kernel is downloaded from a server on 127.0.0.1,
//! verified against the pin, prepared once into the cache (a second build makes no
//! request), and a wrong pin or a missing file is an error that says what to do.

use cast_build::config::KernelSpec;
use cast_build::kernel::{bundle, KernelError};
use sha2::{Digest, Sha256};

mod support;

use support::http::Server;

fn vmlinux() -> Vec<u8> {
    let b = cast_kernel::KernelBundle::locate(None)
        .expect("a kernel bundle: run `cargo cast kernel fetch`");
    std::fs::read(b.kernel_path()).unwrap()
}

#[test]
fn a_pinned_kernel_url_is_downloaded_once_and_verified() {
    let body = vmlinux();
    let sha = format!("{:x}", Sha256::digest(&body));
    let server = Server::start();
    server.serve("/vmlinux", body, &[]);
    let cache = tempfile::tempdir().unwrap();
    let spec = KernelSpec::Url {
        url: server.url("/vmlinux"),
        sha256: sha.clone(),
    };
    let b = bundle(Some(&spec), Some(cache.path())).unwrap();
    assert!(b.dir.starts_with(cache.path()));
    assert_eq!(
        b.manifest.kernel_sha256, sha,
        "the bundle's kernel is the pinned file"
    );
    let again = bundle(Some(&spec), Some(cache.path())).unwrap();
    assert_eq!(again.dir, b.dir);
    assert_eq!(server.requests(), 1, "no second download");

    let wrong = KernelSpec::Url {
        url: server.url("/vmlinux"),
        sha256: "0".repeat(64),
    };
    let e = bundle(Some(&wrong), Some(cache.path())).unwrap_err();
    assert!(matches!(e, KernelError::Mismatch { .. }), "{e}");
    assert!(e.to_string().contains(&sha) && e.to_string().contains("update `sha256`"));

    let missing = KernelSpec::Url {
        url: server.url("/nope"),
        sha256: "1".repeat(64),
    };
    // (A pinned kernel already prepared needs no network at all.)
    let e = bundle(Some(&missing), Some(cache.path())).unwrap_err();
    let message = cast_build::image::error_chain(&e);
    assert!(
        message.contains("/nope") && message.contains("HTTP 404"),
        "{message}"
    );
    // Nothing half-written is left in the cache.
    let names: Vec<String> = std::fs::read_dir(cache.path().join("kernel"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
}
