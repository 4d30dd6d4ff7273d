//! Local sources built by the tests: an OCI image layout (by tag, the only image, a
//! multi-platform index.json, missing tag/blob errors), `docker save` archives in the
//! old and the new layout, and `scratch`. None of them touches the network, so they
//! must work offline too.

use cast_oci::{Compression, Error, Platform, Source};

use crate::support::local::*;
use crate::support::push::*;
use crate::support::{options, resolver};

#[test]
fn oci_layout_by_tag_and_platform() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let v1 = TestImage::oci(
        "amd64",
        vec![TestLayer::new(&[("v", b"one\n")], LAYER_GZIP)],
    );
    let v2 = TestImage::oci(
        "amd64",
        vec![TestLayer::new(&[("v", b"two\n")], LAYER_ZSTD)],
    );
    write_oci_layout(
        &layout,
        &[&v1, &v2],
        &[
            (OCI_MANIFEST, &v1.manifest, Some("v1")),
            (OCI_MANIFEST, &v2.manifest, Some("example.org/app:v2")),
        ],
    );
    let cache = tempfile::tempdir().unwrap();
    let mut off = options();
    off.offline = true;
    let res = resolver(cache.path(), off.clone());
    let image = res
        .resolve_str(&format!("oci-layout:{}:v2", layout.display()))
        .unwrap();
    assert_eq!(
        image.manifest_digest.as_ref().unwrap().as_str(),
        v2.digest()
    );
    assert_eq!(image.layers[0].compression, Compression::Zstd);
    assert_eq!(
        std::fs::read(&image.layers[0].path).unwrap(),
        v2.layers[0].blob
    );
    assert!(image.layers[0].path.starts_with(cache.path()));
    let image = res
        .resolve_str(&format!("oci-layout:{}:v1", layout.display()))
        .unwrap();
    assert_eq!(image.layers[0].digest.as_str(), sha256(&v1.layers[0].blob));

    let err = res
        .resolve_str(&format!("oci-layout:{}", layout.display()))
        .unwrap_err();
    assert!(
        err.to_string().contains("add :TAG") && err.to_string().contains("v1"),
        "{err}"
    );
    let err = res
        .resolve_str(&format!("oci-layout:{}:v3", layout.display()))
        .unwrap_err();
    assert!(
        matches!(err, Error::Local { .. }) && err.to_string().contains("\"v3\""),
        "{err}"
    );

    // index.json that is itself multi-platform, no tag.
    let multi = dir.path().join("multi");
    let arm = TestImage::oci(
        "arm64",
        vec![TestLayer::new(&[("arch", b"arm64\n")], LAYER_GZIP)],
    );
    let amd = TestImage::oci(
        "amd64",
        vec![TestLayer::new(&[("arch", b"amd64\n")], LAYER_GZIP)],
    );
    write_oci_layout(&multi, &[&arm, &amd], &[]);
    let index = index_of(&[(&amd, "amd64"), (&arm, "arm64")]);
    std::fs::write(multi.join("index.json"), &index).unwrap();
    let mut arm_opts = off.clone();
    arm_opts.platform = Platform::parse("linux/arm64/v8").unwrap();
    let image = resolver(cache.path(), arm_opts)
        .resolve_str(&format!("oci-layout:{}", multi.display()))
        .unwrap();
    assert_eq!(image.platform.architecture, "arm64");
    assert_eq!(
        image.manifest_digest.as_ref().unwrap().as_str(),
        arm.digest()
    );

    // A blob missing from the layout is named.
    let missing = sha256(&amd.layers[0].blob);
    std::fs::remove_file(multi.join("blobs/sha256").join(&missing[7..])).unwrap();
    let fresh = tempfile::tempdir().unwrap();
    let err = resolver(fresh.path(), off)
        .resolve_str(&format!("oci-layout:{}", multi.display()))
        .unwrap_err();
    assert!(
        err.to_string().contains(&missing) && err.to_string().contains("missing"),
        "{err}"
    );
}

#[test]
fn oci_layout_corrupt_blob_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let img = TestImage::oci(
        "amd64",
        vec![TestLayer::new(&[("f", b"content\n")], LAYER_TAR)],
    );
    write_oci_layout(
        dir.path(),
        &[&img],
        &[(OCI_MANIFEST, &img.manifest, Some("latest"))],
    );
    let d = sha256(&img.layers[0].blob);
    std::fs::write(dir.path().join("blobs/sha256").join(&d[7..]), b"tampered").unwrap();
    let cache = tempfile::tempdir().unwrap();
    let err = resolver(cache.path(), options())
        .resolve_str(&format!("oci-layout:{}", dir.path().display()))
        .unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    assert!(!cache.path().join("blobs/sha256").join(&d[7..]).exists());
}

#[test]
fn docker_archive_old_layout() {
    let dir = tempfile::tempdir().unwrap();
    let base = TestLayer::new(&[("etc/os-release", b"ID=test\n")], LAYER_TAR);
    let top = TestLayer::new(&[("app/run", b"#!/bin/sh\n")], LAYER_TAR);
    // The third layer repeats the first: stored as a symlink, as Docker does.
    let img = TestImage::docker("amd64", vec![base.clone(), top.clone(), base.clone()]);
    let tar = dir.path().join("old.tar");
    write_docker_archive_old(&tar, &img, "test/app:v1");
    let cache = tempfile::tempdir().unwrap();
    let mut off = options();
    off.offline = true;
    let image = resolver(cache.path(), off)
        .resolve_str(&format!("docker-archive:{}", tar.display()))
        .unwrap();
    assert_eq!(
        image.config.entrypoint,
        Some(vec!["/bin/hello".to_string()])
    );
    assert_eq!(
        image.config_digest.as_ref().unwrap().as_str(),
        sha256(&img.config)
    );
    assert_eq!(image.layers.len(), 3);
    for (l, want) in image.layers.iter().zip([&base, &top, &base]) {
        assert_eq!(l.compression, Compression::None);
        assert_eq!(l.digest.as_str(), sha256(&want.tar));
        assert_eq!(l.diff_id.as_ref(), Some(&l.digest));
        assert_eq!(std::fs::read(&l.path).unwrap(), want.tar);
    }
}

#[test]
fn docker_archive_new_layout_with_two_images() {
    let dir = tempfile::tempdir().unwrap();
    let a = TestImage::oci("amd64", vec![TestLayer::new(&[("who", b"a\n")], LAYER_TAR)]);
    let b = TestImage::oci("amd64", vec![TestLayer::new(&[("who", b"b\n")], LAYER_TAR)]);
    let tar = dir.path().join("new.tar");
    write_docker_archive_new(&tar, &[(&a, "test/a:1"), (&b, "test/b:2")]);
    let cache = tempfile::tempdir().unwrap();
    let res = resolver(cache.path(), options());
    let image = res
        .resolve_str(&format!("docker-archive:{}:test/b:2", tar.display()))
        .unwrap();
    assert_eq!(
        std::fs::read(&image.layers[0].path).unwrap(),
        b.layers[0].tar
    );
    let err = res
        .resolve_str(&format!("docker-archive:{}", tar.display()))
        .unwrap_err();
    assert!(
        err.to_string().contains("test/a:1") && err.to_string().contains("2 images"),
        "{err}"
    );
    let err = res
        .resolve_str(&format!(
            "docker-archive:{}",
            dir.path().join("none.tar").display()
        ))
        .unwrap_err();
    assert!(err.to_string().contains("none.tar"), "{err}");
    let gz = dir.path().join("new.tar.gz");
    std::fs::write(&gz, gzip(&std::fs::read(&tar).unwrap())).unwrap();
    let err = res
        .resolve_str(&format!("docker-archive:{}", gz.display()))
        .unwrap_err();
    assert!(err.to_string().contains("compressed"), "{err}");
}

#[test]
fn scratch_is_empty() {
    let cache = tempfile::tempdir().unwrap();
    let image = resolver(cache.path(), options())
        .resolve(&Source::Scratch)
        .unwrap();
    assert!(image.layers.is_empty());
    assert!(image.config.entrypoint.is_none() && image.config.env.is_empty());
    assert_eq!(image.platform.os, "linux");
}
