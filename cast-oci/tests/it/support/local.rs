//! Writes test images as local sources: an OCI image layout directory, and `docker
//! save` archives in the old layout (`<id>/layer.tar`, `<hex>.json`, symlinked
//! duplicate layers) and the new one (Docker 25+: `blobs/sha256/<hex>` + index.json).

use std::fs;
use std::path::Path;

use serde_json::json;

use super::push::{sha256, TestImage};

fn hex(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap()
}

fn put_blob(dir: &Path, bytes: &[u8]) -> String {
    let d = sha256(bytes);
    let p = dir.join("blobs/sha256");
    fs::create_dir_all(&p).unwrap();
    fs::write(p.join(hex(&d)), bytes).unwrap();
    d
}

/// An OCI layout at `dir` whose index.json lists `entries` as (media type, manifest
/// bytes, ref name); every image's blobs are written too.
pub fn write_oci_layout(
    dir: &Path,
    images: &[&TestImage],
    entries: &[(&str, &[u8], Option<&str>)],
) {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    for img in images {
        put_blob(dir, &img.config);
        put_blob(dir, &img.manifest);
        for l in &img.layers {
            put_blob(dir, &l.blob);
        }
    }
    let manifests: Vec<_> = entries
        .iter()
        .map(|(mt, bytes, name)| {
            let d = put_blob(dir, bytes);
            let mut m = json!({"mediaType": mt, "digest": d, "size": bytes.len()});
            if let Some(n) = name {
                m["annotations"] = json!({"org.opencontainers.image.ref.name": n});
            }
            m
        })
        .collect();
    let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests});
    fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

fn append(b: &mut tar::Builder<fs::File>, path: &str, data: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, path, data).unwrap();
}

/// A `docker save` archive, old layout. Layers must be uncompressed (as Docker writes
/// them). A layer whose tar equals an earlier one is stored as a symlink to it.
pub fn write_docker_archive_old(path: &Path, img: &TestImage, repo_tag: &str) {
    let mut b = tar::Builder::new(fs::File::create(path).unwrap());
    let mut layer_paths: Vec<String> = Vec::new();
    for (i, l) in img.layers.iter().enumerate() {
        let id = format!("{:064x}", i + 1);
        let dup = img.layers[..i].iter().position(|e| e.tar == l.tar);
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        b.append_data(&mut h, format!("{id}/"), &[][..]).unwrap();
        match dup {
            Some(j) => {
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                h.set_mode(0o777);
                b.append_link(
                    &mut h,
                    format!("{id}/layer.tar"),
                    format!("../{:064x}/layer.tar", j + 1),
                )
                .unwrap();
            }
            None => append(&mut b, &format!("{id}/layer.tar"), &l.tar),
        }
        append(&mut b, &format!("{id}/VERSION"), b"1.0");
        append(&mut b, &format!("{id}/json"), br#"{"id":"x"}"#);
        layer_paths.push(format!("{id}/layer.tar"));
    }
    let config_name = format!("{}.json", hex(&sha256(&img.config)));
    append(&mut b, &config_name, &img.config);
    let manifest = json!([{"Config": config_name, "RepoTags": [repo_tag], "Layers": layer_paths}]);
    append(
        &mut b,
        "manifest.json",
        &serde_json::to_vec(&manifest).unwrap(),
    );
    append(&mut b, "repositories", b"{}");
    b.finish().unwrap();
}

/// A `docker save` archive, new layout (Docker 25+), holding two tagged images.
pub fn write_docker_archive_new(path: &Path, images: &[(&TestImage, &str)]) {
    let mut b = tar::Builder::new(fs::File::create(path).unwrap());
    append(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    let mut entries = Vec::new();
    let mut written = std::collections::HashSet::new();
    let mut put = |b: &mut tar::Builder<fs::File>, bytes: &[u8]| {
        let name = format!("blobs/sha256/{}", hex(&sha256(bytes)));
        if written.insert(name.clone()) {
            append(b, &name, bytes);
        }
        name
    };
    for (img, tag) in images {
        let config = put(&mut b, &img.config);
        let layers: Vec<String> = img.layers.iter().map(|l| put(&mut b, &l.tar)).collect();
        put(&mut b, &img.manifest);
        entries.push(json!({"Config": config, "RepoTags": [tag], "Layers": layers}));
    }
    append(
        &mut b,
        "index.json",
        br#"{"schemaVersion":2,"manifests":[]}"#,
    );
    append(
        &mut b,
        "manifest.json",
        &serde_json::to_vec(&entries).unwrap(),
    );
    b.finish().unwrap();
}
