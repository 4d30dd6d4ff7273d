//! Base images for end-to-end builds: a busybox-static image (busybox, a symlink per
//! applet in `/bin`, `/etc/passwd`, `/tmp`) pushed to a test [`Registry`], so a
//! Containerfile can say `FROM 127.0.0.1:PORT/busybox:1`.

use std::path::Path;
use std::process::Command;

use serde_json::json;

use crate::push::{Pusher, TestImage, TestLayer, LAYER_GZIP};
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
