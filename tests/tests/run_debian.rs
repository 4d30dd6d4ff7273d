//! RUN on a real distribution, as users have it: a Debian bookworm root made with
//! mmdebstrap (an OCI layout), `apt-get update && apt-get install` against a
//! Debian repository this test serves on 127.0.0.1 (reached from the build VM's
//! default network as `host.cast.internal`), `useradd`, and a symlink; the installed
//! program runs in the booted image. A second build whose apt RUN differs (so the
//! step cache misses) keeps the `.deb`s in its `--mount=type=cache` on
//! `/var/cache/apt`: it downloads no package, and the cache is in no layer.

use std::path::Path;

use cast_tests::casting::{cargo_cast_cmd, BUILD_BOUND};
use cast_tests::debian::{bookworm_layout, repo, serve_repo};
use cast_tests::proc::output_bounded;
use cast_tests::Output;

/// `cargo cast run DIR` with the caches in `cache`.
fn cast_run(cache: &Path, dir: &Path) -> Output {
    let mut cmd = cargo_cast_cmd(cache, &["run", dir.to_str().unwrap()]);
    cmd.env("CAST_CPUS", "1").env("CAST_BUILD_VM_CPUS", "1");
    let out = output_bounded(cmd, Vec::new(), BUILD_BOUND);
    eprintln!("cargo cast run {}:\n{}", dir.display(), out.stderr);
    out
}

/// The Containerfile: the repository as the only apt source, apt keeping what it
/// downloads (as Docker's docs have it for cache mounts), a user and a symlink, then
/// `apt-get install` with `/var/cache/apt` as a cache mount; `extra` ends the apt RUN.
fn containerfile(layout: &Path, port: &str, extra: &str) -> String {
    format!(
        "FROM oci-layout:{layout}\n\
         RUN echo 'deb [trusted=yes] http://host.cast.internal:{port}/ ./' > /etc/apt/sources.list \\\n \
         && rm -f /etc/apt/sources.list.d/* /etc/apt/apt.conf.d/docker-clean \\\n \
         && echo 'Binary::apt::APT::Keep-Downloaded-Packages \"true\";' > /etc/apt/apt.conf.d/keep-cache \\\n \
         && useradd --create-home --uid 1500 builder && ln -s /usr/bin/hello /usr/local/bin/hi\n\
         RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \\\n \
         apt-get update && apt-get install -y --no-install-recommends hello{extra}\n\
         CMD hi; id builder; stat -c %U /home/builder; ls /var/cache/apt/archives\n",
        layout = layout.display()
    )
}

fn deb_requests(log: &[String]) -> usize {
    log.iter()
        .filter(|r| r.trim_end().ends_with(".deb"))
        .count()
}

#[test]
fn apt_get_installs_from_a_local_repository_and_a_cache_mount_keeps_the_debs() {
    let layout = bookworm_layout();
    let server = serve_repo(&repo(&["hello"]));
    let port = server.addr.rsplit(':').next().unwrap().to_owned();
    let work = tempfile::tempdir().unwrap();
    let (cache, dir) = (work.path().join("cache"), work.path().join("app"));
    std::fs::create_dir(&dir).unwrap();
    let file = dir.join("Containerfile");

    std::fs::write(&file, containerfile(layout, &port, "")).unwrap();
    let first = cast_run(&cache, &dir);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let text = first.stdout_text();
    assert!(
        text.starts_with(
            "Hello, world!\nuid=1500(builder) gid=1500(builder) groups=1500(builder)\nbuilder\n"
        ),
        "the installed program runs, through the symlink, and the user exists: {text}"
    );
    assert!(
        !text.contains(".deb"),
        "the cache mount is in no layer: {text}"
    );
    let log = server.requests();
    assert!(log.iter().any(|r| r.ends_with("/Packages ")), "{log:?}");
    assert_eq!(deb_requests(&log), 1, "{log:?}");

    std::fs::write(&file, containerfile(layout, &port, " && hello -g again")).unwrap();
    let second = cast_run(&cache, &dir);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(
        second
            .stderr
            .contains("1 build VM boots, 1 RUN steps from the step cache"),
        "only the changed apt RUN runs again: {}",
        second.stderr
    );
    assert!(second.stderr.contains("again"), "{}", second.stderr);
    let log = server.requests();
    assert_eq!(
        deb_requests(&log),
        1,
        "the second apt-get install finds the .deb in the cache mount: {log:?}"
    );
    assert_eq!(second.stdout_text(), text);
}
