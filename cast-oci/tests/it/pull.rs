//! Pulling from a live registry: a single-platform OCI image, a Docker v2 image, a
//! multi-platform index (right platform chosen, clear error for a missing one), and
//! layers in gzip, zstd and plain tar.

use std::io::Read;

use cast_oci::{signal_number, Compression, Error, Platform, ResolvedImage};

use crate::support::push::*;
use crate::support::registry::Registry;
use crate::support::{options, resolver};

fn decompress(image: &ResolvedImage, i: usize) -> Vec<u8> {
    let l = &image.layers[i];
    let f = std::fs::File::open(&l.path).unwrap();
    let mut out = Vec::new();
    match l.compression {
        Compression::Gzip => flate2::read::GzDecoder::new(f)
            .read_to_end(&mut out)
            .unwrap(),
        Compression::Zstd => zstd::Decoder::new(f)
            .unwrap()
            .read_to_end(&mut out)
            .unwrap(),
        Compression::None => std::fs::read(&l.path)
            .map(|v| {
                out = v;
                out.len()
            })
            .unwrap(),
    };
    out
}

#[test]
fn single_platform_pull() {
    let reg = Registry::start();
    let layer = TestLayer::new(
        &[
            ("bin/hello", b"#!/bin/sh\necho hi\n"),
            ("etc/motd", b"welcome\n"),
        ],
        LAYER_GZIP,
    );
    let img = TestImage::oci("amd64", vec![layer.clone()]);
    Pusher::new(&reg.addr, None).image("test/single", Some("v1"), &img);

    let cache = tempfile::tempdir().unwrap();
    let image = resolver(cache.path(), options())
        .resolve_str(&format!("{}/test/single:v1", reg.addr))
        .unwrap();
    assert_eq!(image.source, format!("{}/test/single:v1", reg.addr));
    assert_eq!(
        image.manifest_digest.as_ref().unwrap().as_str(),
        img.digest()
    );
    assert_eq!(
        image.config_digest.as_ref().unwrap().as_str(),
        sha256(&img.config)
    );
    let c = &image.config;
    assert_eq!(c.entrypoint, Some(vec!["/bin/hello".to_string()]));
    assert_eq!(
        c.cmd,
        Some(vec!["--greet".to_string(), "world".to_string()])
    );
    assert_eq!(c.env[1], "ARCH=amd64");
    assert_eq!(c.user, "1000:1000");
    assert_eq!(c.working_dir, "/srv");
    assert_eq!(c.exposed_ports, ["8080/tcp"]);
    assert_eq!(signal_number(&c.stop_signal), Some(2));
    assert_eq!(c.volumes, ["/data"]);
    assert_eq!(c.labels["org.example.arch"], "amd64");
    assert_eq!(image.layers.len(), 1);
    let l = &image.layers[0];
    assert_eq!(l.digest.as_str(), sha256(&layer.blob));
    assert_eq!(l.size, layer.blob.len() as u64);
    assert_eq!(l.compression, Compression::Gzip);
    assert_eq!(l.diff_id.as_ref().unwrap().as_str(), sha256(&layer.tar));
    assert!(l.path.starts_with(cache.path().join("blobs/sha256")));
    assert_eq!(std::fs::read(&l.path).unwrap(), layer.blob);
    assert_eq!(decompress(&image, 0), layer.tar);

    // The same image by digest resolves to the same thing.
    let by_digest = resolver(cache.path(), options())
        .resolve_str(&format!("{}/test/single@{}", reg.addr, img.digest()))
        .unwrap();
    assert_eq!(by_digest.layers, image.layers);
}

#[test]
fn docker_v2_media_types() {
    let reg = Registry::start();
    let layer = TestLayer::new(&[("a.txt", b"docker layer\n")], DOCKER_LAYER);
    let img = TestImage::docker("amd64", vec![layer.clone()]);
    Pusher::new(&reg.addr, None).image("test/docker", Some("latest"), &img);
    let cache = tempfile::tempdir().unwrap();
    let image = resolver(cache.path(), options())
        .resolve_str(&format!("{}/test/docker", reg.addr))
        .unwrap();
    assert_eq!(image.layers[0].compression, Compression::Gzip);
    assert_eq!(
        image.config.entrypoint,
        Some(vec!["/bin/hello".to_string()])
    );
    assert_eq!(decompress(&image, 0), layer.tar);
}

#[test]
fn multi_platform_index_picks_the_right_image() {
    let reg = Registry::start();
    let pusher = Pusher::new(&reg.addr, None);
    let amd = TestImage::oci(
        "amd64",
        vec![TestLayer::new(&[("arch", b"amd64\n")], LAYER_GZIP)],
    );
    let arm = TestImage::oci(
        "arm64",
        vec![TestLayer::new(&[("arch", b"arm64\n")], LAYER_GZIP)],
    );
    pusher.image("test/multi", None, &amd);
    pusher.image("test/multi", None, &arm);
    let index = index_of(&[(&amd, "amd64"), (&arm, "arm64")]);
    pusher.manifest("test/multi", "v2", OCI_INDEX, &index);
    let r = format!("{}/test/multi:v2", reg.addr);

    let cache = tempfile::tempdir().unwrap();
    let image = resolver(cache.path(), options()).resolve_str(&r).unwrap();
    assert_eq!(
        image.manifest_digest.as_ref().unwrap().as_str(),
        amd.digest()
    );
    assert_eq!(image.platform.architecture, "amd64");
    assert_eq!(decompress(&image, 0), amd.layers[0].tar);

    let mut opts = options();
    opts.platform = Platform::parse("linux/arm64").unwrap();
    let image = resolver(cache.path(), opts).resolve_str(&r).unwrap();
    assert_eq!(
        image.manifest_digest.as_ref().unwrap().as_str(),
        arm.digest()
    );
    assert_eq!(image.platform.architecture, "arm64");
    assert_eq!(decompress(&image, 0), arm.layers[0].tar);

    let mut opts = options();
    opts.platform = Platform::parse("linux/s390x").unwrap();
    let err = resolver(cache.path(), opts).resolve_str(&r).unwrap_err();
    assert!(matches!(err, Error::NoMatchingPlatform { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("linux/s390x")
            && msg.contains("linux/amd64")
            && msg.contains("linux/arm64/v8"),
        "{msg}"
    );
}

#[test]
fn gzip_zstd_and_plain_layers() {
    let reg = Registry::start();
    let layers = vec![
        TestLayer::new(&[("one", b"gzip layer\n")], LAYER_GZIP),
        TestLayer::new(&[("two", b"zstd layer\n")], LAYER_ZSTD),
        TestLayer::new(&[("three", b"plain layer\n")], LAYER_TAR),
    ];
    let img = TestImage::oci("amd64", layers.clone());
    Pusher::new(&reg.addr, None).image("test/comp", Some("v1"), &img);
    let cache = tempfile::tempdir().unwrap();
    let image = resolver(cache.path(), options())
        .resolve_str(&format!("{}/test/comp:v1", reg.addr))
        .unwrap();
    let kinds: Vec<Compression> = image.layers.iter().map(|l| l.compression).collect();
    assert_eq!(
        kinds,
        [Compression::Gzip, Compression::Zstd, Compression::None]
    );
    for (i, l) in layers.iter().enumerate() {
        assert_eq!(
            image.layers[i].digest.as_str(),
            sha256(&l.blob),
            "layer {i} order"
        );
        assert_eq!(decompress(&image, i), l.tar, "layer {i}");
    }
}

#[test]
fn missing_repository_or_tag_is_a_clear_not_found() {
    let reg = Registry::start();
    let cache = tempfile::tempdir().unwrap();
    let err = resolver(cache.path(), options())
        .resolve_str(&format!("{}/nope/nothing:v9", reg.addr))
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains(&reg.addr) && msg.contains("nope/nothing:v9") && msg.contains("404"),
        "{msg}"
    );
}
