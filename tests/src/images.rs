//! Base images for end-to-end builds: a busybox-static image (busybox, a symlink per
//! applet in `/bin`, `/etc/passwd`, `/tmp`) pushed to a test [`Registry`], so a
//! Containerfile can say `FROM 127.0.0.1:PORT/busybox:1`; and any root tar wrapped as
//! an OCI image layout ([`write_oci_layout`]) for `FROM oci-layout:DIR`.

use std::path::Path;
use std::process::Command;

use serde_json::json;

use crate::push::{
    sha256, Pusher, TestImage, TestLayer, LAYER_GZIP, LAYER_TAR, OCI_CONFIG, OCI_INDEX,
    OCI_MANIFEST,
};
use crate::registry::Registry;

/// A tar of a busybox root: `/bin/busybox` (0755), every applet as a symlink to
/// it, `/etc/passwd` and `/etc/group` with root, and `/tmp` (1777).
pub fn busybox_tar() -> Vec<u8> {
    let busybox = Path::new("/bin/busybox");
    let data = std::fs::read(busybox)
        .expect("tests need a static /bin/busybox: apt-get install busybox-static");
    let applets = Command::new(busybox)
        .arg("--list")
        .output()
        .expect("run busybox --list");
    let mut b = tar::Builder::new(Vec::new());
    let header = |kind: tar::EntryType, mode: u32, size: u64| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_mtime(1_700_000_000);
        h
    };
    for dir in ["bin", "etc", "root"] {
        b.append_data(
            &mut header(tar::EntryType::Directory, 0o755, 0),
            dir,
            &[][..],
        )
        .unwrap();
    }
    b.append_data(
        &mut header(tar::EntryType::Directory, 0o1777, 0),
        "tmp",
        &[][..],
    )
    .unwrap();
    b.append_data(
        &mut header(tar::EntryType::Regular, 0o755, data.len() as u64),
        "bin/busybox",
        &data[..],
    )
    .unwrap();
    for applet in String::from_utf8_lossy(&applets.stdout).lines() {
        if applet == "busybox" || applet.is_empty() {
            continue;
        }
        let mut h = header(tar::EntryType::Symlink, 0o777, 0);
        b.append_link(&mut h, format!("bin/{applet}"), "busybox")
            .unwrap();
    }
    for (path, text) in [
        ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"),
        ("etc/group", "root:x:0:\n"),
    ] {
        b.append_data(
            &mut header(tar::EntryType::Regular, 0o644, text.len() as u64),
            path,
            text.as_bytes(),
        )
        .unwrap();
    }
    b.into_inner().unwrap()
}

/// Pushes the busybox image as `busybox:1` and returns its reference
/// (`127.0.0.1:PORT/busybox:1`). Its config sets `PATH` and `CMD ["/bin/sh"]`.
pub fn push_busybox(registry: &Registry) -> String {
    let layer = TestLayer::from_tar(busybox_tar(), LAYER_GZIP);
    let image = TestImage::oci_with_config(
        "amd64",
        vec![layer],
        json!({"Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["/bin/sh"]}),
    );
    Pusher::new(&registry.addr, None).image("busybox", Some("1"), &image);
    format!("{}/busybox:1", registry.addr)
}

/// Writes an OCI image layout at `dir` holding one amd64 image: the root tar `tar`
/// as its only (uncompressed) layer, moved into the layout's blobs or copied when
/// it cannot be, and `runtime` as its config's `config` object.
pub fn write_oci_layout(dir: &Path, tar: &Path, runtime: serde_json::Value) {
    use sha2::Digest as _;
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let mut hasher = sha2::Sha256::new();
    let size = std::io::copy(&mut std::fs::File::open(tar).unwrap(), &mut hasher).unwrap();
    let layer = format!("sha256:{:x}", hasher.finalize());
    let blob = blobs.join(&layer["sha256:".len()..]);
    if std::fs::rename(tar, &blob).is_err() {
        std::fs::copy(tar, &blob).unwrap();
    }
    let put = |bytes: &[u8]| {
        let digest = sha256(bytes);
        std::fs::write(blobs.join(&digest["sha256:".len()..]), bytes).unwrap();
        digest
    };
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux", "config": runtime,
        "rootfs": {"type": "layers", "diff_ids": [layer]}
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": put(&config), "size": config.len()},
        "layers": [{"mediaType": LAYER_TAR, "digest": layer, "size": size}]
    }))
    .unwrap();
    let index = json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": put(&manifest), "size": manifest.len()}]
    });
    std::fs::write(dir.join("index.json"), index.to_string()).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
}
