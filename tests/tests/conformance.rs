//! Dockerfile conformance in a real build: a base image in a registry on
//! 127.0.0.1 whose config has no `PATH` and two `OnBuild` triggers (a COPY
//! from the child's context and an ENV), and a Containerfile FROM it that
//! extends PATH, copies with a symbolic `--chmod` and ends lines with an
//! escaped backslash. `cargo cast run DIR` boots the image under QEMU and the
//! command prints what BuildKit would have put in the image.

use cast_tests::casting::cargo_cast_cmd;
use cast_tests::images::busybox_tar;
use cast_tests::output_of;
use cast_tests::push::{Pusher, TestImage, TestLayer, LAYER_GZIP};
use cast_tests::registry::Registry;
use serde_json::json;

#[test]
fn onbuild_path_and_env_reach_the_image() {
    let registry = Registry::start();
    let image = TestImage::oci_with_config(
        "amd64",
        vec![TestLayer::from_tar(busybox_tar(), LAYER_GZIP)],
        json!({
            "Env": ["BASE=1"],
            "OnBuild": ["COPY trigger.txt /from-trigger", "ENV FROM_TRIGGER=yes"],
        }),
    );
    Pusher::new(&registry.addr, None).image("nopath", Some("1"), &image);
    let base = format!("{}/nopath:1", registry.addr);

    let work = tempfile::Builder::new()
        .prefix("cast-e2e-conformance-")
        .tempdir()
        .unwrap();
    let cache = work.path().join("cache");
    let dir = work.path().join("app");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("trigger.txt"), "copied by the trigger\n").unwrap();
    std::fs::write(dir.join("hello"), "#!/bin/sh\necho hello from /app/bin\n").unwrap();
    std::fs::write(
        dir.join("Containerfile"),
        format!(
            "FROM {base}\n\
             ENV PATH=/app/bin:$PATH\n\
             ENV C=trailing\\\\\n\
             ENV D=x\n\
             COPY --chmod=u=rwx,go=rx hello /app/bin/hello\n\
             CMD echo \"PATH=$PATH\" && echo \"C=$C D=$D T=$FROM_TRIGGER\" \
             && cat /from-trigger && stat -c %a /app/bin/hello && hello\n"
        ),
    )
    .unwrap();

    let mut cmd = cargo_cast_cmd(&cache, &["run", dir.to_str().unwrap()]);
    cmd.env("CAST_CPUS", "1");
    let r = output_of(cmd, Vec::new());
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    assert_eq!(
        r.stdout_text(),
        "PATH=/app/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n\
         C=trailing\\ D=x T=yes\n\
         copied by the trigger\n\
         755\n\
         hello from /app/bin\n"
    );
}
