//! Builds small images in memory and pushes them with the plain distribution API:
//! monolithic blob upload (POST `/blobs/uploads/`, then PUT `?digest=`), then PUT of the
//! manifest. Also writes the same images as an OCI layout directory or a `docker save`
//! archive (old and new layouts) for the local-source tests.

use std::io::Write;

use reqwest::blocking::Client;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// A tar with `files` (path, content), mode 0644, plus their parent dirs.
pub fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, path, *data).unwrap();
    }
    b.into_inner().unwrap()
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

pub fn zstd(bytes: &[u8]) -> Vec<u8> {
    zstd::encode_all(bytes, 3).unwrap()
}

/// One layer: uncompressed tar, and the blob as pushed with its media type.
#[derive(Debug, Clone)]
pub struct TestLayer {
    pub tar: Vec<u8>,
    pub blob: Vec<u8>,
    pub media_type: &'static str,
}

impl TestLayer {
    /// A layer from a ready tar stream, compressed per `media_type`.
    pub fn from_tar(tar: Vec<u8>, media_type: &'static str) -> TestLayer {
        let blob = match media_type {
            LAYER_GZIP | DOCKER_LAYER => gzip(&tar),
            LAYER_ZSTD => zstd(&tar),
            _ => tar.clone(),
        };
        TestLayer {
            tar,
            blob,
            media_type,
        }
    }

    pub fn new(files: &[(&str, &[u8])], media_type: &'static str) -> TestLayer {
        TestLayer::from_tar(tar_of(files), media_type)
    }
}

/// An image: config JSON plus layers, and its manifest.
#[derive(Debug, Clone)]
pub struct TestImage {
    pub config: Vec<u8>,
    pub layers: Vec<TestLayer>,
    pub manifest: Vec<u8>,
    pub manifest_type: &'static str,
}

impl TestImage {
    /// An OCI image for `arch` with the given layers and a recognisable config.
    pub fn oci(arch: &str, layers: Vec<TestLayer>) -> TestImage {
        TestImage::build(arch, layers, OCI_MANIFEST, OCI_CONFIG)
    }

    /// A Docker v2 schema 2 image.
    pub fn docker(arch: &str, layers: Vec<TestLayer>) -> TestImage {
        TestImage::build(arch, layers, DOCKER_MANIFEST, DOCKER_CONFIG)
    }

    /// An OCI image for `arch` whose config's `config` object is `runtime`.
    pub fn oci_with_config(arch: &str, layers: Vec<TestLayer>, runtime: Value) -> TestImage {
        TestImage::build_with(arch, layers, OCI_MANIFEST, OCI_CONFIG, runtime)
    }

    fn build(
        arch: &str,
        layers: Vec<TestLayer>,
        manifest_type: &'static str,
        config_type: &str,
    ) -> TestImage {
        let runtime = json!({
            "Env": ["PATH=/usr/bin:/bin", format!("ARCH={arch}")],
            "Entrypoint": ["/bin/hello"], "Cmd": ["--greet", "world"],
            "User": "1000:1000", "WorkingDir": "/srv",
            "Labels": {"org.example.arch": arch},
            "ExposedPorts": {"8080/tcp": {}}, "StopSignal": "SIGINT", "Volumes": {"/data": {}}
        });
        TestImage::build_with(arch, layers, manifest_type, config_type, runtime)
    }

    fn build_with(
        arch: &str,
        layers: Vec<TestLayer>,
        manifest_type: &'static str,
        config_type: &str,
        runtime: Value,
    ) -> TestImage {
        let diff_ids: Vec<String> = layers.iter().map(|l| sha256(&l.tar)).collect();
        let config = serde_json::to_vec(&json!({
            "architecture": arch, "os": "linux",
            "config": runtime,
            "rootfs": {"type": "layers", "diff_ids": diff_ids}
        }))
        .unwrap();
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": manifest_type,
            "config": {"mediaType": config_type, "digest": sha256(&config), "size": config.len()},
            "layers": layers.iter().map(|l| json!({
                "mediaType": l.media_type, "digest": sha256(&l.blob), "size": l.blob.len()
            })).collect::<Vec<Value>>()
        }))
        .unwrap();
        TestImage {
            config,
            layers,
            manifest,
            manifest_type,
        }
    }

    pub fn digest(&self) -> String {
        sha256(&self.manifest)
    }
}

/// An OCI index over `(image, arch)` pairs.
pub fn index_of(images: &[(&TestImage, &str)]) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": images.iter().map(|(img, arch)| {
            let mut platform = json!({"os": "linux", "architecture": arch});
            if *arch == "arm64" { platform["variant"] = json!("v8"); }
            json!({"mediaType": img.manifest_type, "digest": img.digest(), "size": img.manifest.len(), "platform": platform})
        }).collect::<Vec<Value>>()
    }))
    .unwrap()
}

/// Pushes to a registry at `http://ADDR`, optionally with basic auth.
#[derive(Debug)]
pub struct Pusher {
    base: String,
    http: Client,
    auth: Option<(String, String)>,
}

impl Pusher {
    pub fn new(addr: &str, auth: Option<(&str, &str)>) -> Pusher {
        Pusher {
            base: format!("http://{addr}"),
            http: Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .unwrap(),
            auth: auth.map(|(u, p)| (u.to_string(), p.to_string())),
        }
    }

    fn req(&self, method: reqwest::Method, url: &str) -> reqwest::blocking::RequestBuilder {
        let r = self.http.request(method, url);
        match &self.auth {
            Some((u, p)) => r.basic_auth(u, Some(p)),
            None => r,
        }
    }

    pub fn blob(&self, repo: &str, bytes: &[u8]) -> String {
        let digest = sha256(bytes);
        let resp = self
            .req(
                reqwest::Method::POST,
                &format!("{}/v2/{repo}/blobs/uploads/", self.base),
            )
            .send()
            .unwrap();
        assert_eq!(
            resp.status().as_u16(),
            202,
            "start upload: {:?}",
            resp.text()
        );
        let loc = resp.headers()["location"].to_str().unwrap().to_string();
        let url = if loc.starts_with('/') {
            format!("{}{loc}", self.base)
        } else {
            loc
        };
        let sep = if url.contains('?') { '&' } else { '?' };
        let resp = self
            .req(reqwest::Method::PUT, &format!("{url}{sep}digest={digest}"))
            .header("content-type", "application/octet-stream")
            .body(bytes.to_vec())
            .send()
            .unwrap();
        assert_eq!(
            resp.status().as_u16(),
            201,
            "finish upload: {:?}",
            resp.text()
        );
        digest
    }

    pub fn manifest(&self, repo: &str, reference: &str, media_type: &str, bytes: &[u8]) {
        let resp = self
            .req(
                reqwest::Method::PUT,
                &format!("{}/v2/{repo}/manifests/{reference}", self.base),
            )
            .header("content-type", media_type)
            .body(bytes.to_vec())
            .send()
            .unwrap();
        assert_eq!(
            resp.status().as_u16(),
            201,
            "put manifest: {:?}",
            resp.text()
        );
    }

    /// Pushes blobs and manifest; tags it `tag` if given (else by digest only).
    pub fn image(&self, repo: &str, tag: Option<&str>, img: &TestImage) {
        self.blob(repo, &img.config);
        for l in &img.layers {
            self.blob(repo, &l.blob);
        }
        self.manifest(
            repo,
            tag.unwrap_or(&img.digest()),
            img.manifest_type,
            &img.manifest,
        );
    }
}
