//! A real distribution for the RUN tests and the built kernel's compatibility
//! check: a Debian bookworm root made with `mmdebstrap` (minbase), wrapped as an OCI
//! image layout ([`bookworm_layout`]) or, with python3, written as an EROFS root
//! image ([`debian_python_rootfs`]); and a flat Debian
//! repository of `.deb`s fetched with `apt-get download` and indexed with
//! `apt-ftparchive`, which [`serve_repo`] serves on 127.0.0.1 so that the guest's
//! `apt-get` never leaves the machine.
//!
//! Both are made once and kept under `<target>/test-data/debian/`, named by a hash of
//! their inputs, so only the first test run pays for them (mmdebstrap: about half a
//! minute, downloads from the Debian mirror; the packages: a second). Each is made in
//! a temporary directory and renamed into place complete.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use sha2::{Digest as _, Sha256};

use crate::fixtures::target_dir;
use crate::http::Server;
use crate::images::write_oci_layout;

/// The Debian release of the test root and repository.
pub const SUITE: &str = "bookworm";
/// Where mmdebstrap downloads the root's packages from.
const MIRROR: &str = "http://deb.debian.org/debian";
/// The root's runtime config (as Debian's own images set it).
const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn data_dir() -> PathBuf {
    target_dir().join("test-data").join("debian")
}

fn key(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    format!("{:x}", h.finalize())[..16].to_owned()
}

/// Makes `dir` with `make` (given a temporary directory beside it) unless it exists.
fn once(dir: &Path, make: impl FnOnce(&Path)) {
    if dir.is_dir() {
        return;
    }
    let parent = dir.parent().unwrap();
    std::fs::create_dir_all(parent).unwrap();
    let tmp = tempfile::Builder::new()
        .prefix(".new-")
        .tempdir_in(parent)
        .unwrap();
    make(tmp.path());
    let tmp = tmp.keep();
    if std::fs::rename(&tmp, dir).is_err() {
        // Another test process was first.
        let _ = std::fs::remove_dir_all(&tmp);
    }
}

fn run(cmd: &mut Command, what: &str, install: &str) {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e} (run `cargo xtask setup`: {install})"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A Debian [`SUITE`] root (minbase) with python3, as an EROFS root image for
/// `cargo cast run --rootfs`. Made once per machine (per target directory).
pub fn debian_python_rootfs() -> &'static Path {
    static IMAGE: OnceLock<PathBuf> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let dir = data_dir().join(format!(
            "python-{}",
            key(&[SUITE, "minbase", "python3", MIRROR])
        ));
        once(&dir, |tmp| {
            let tree = tmp.join("tree");
            run(
                Command::new("mmdebstrap")
                    .args(["--quiet", "--variant=minbase", "--include=python3", SUITE])
                    .arg(&tree)
                    .arg(MIRROR),
                "mmdebstrap",
                "apt-get install mmdebstrap",
            );
            run(
                Command::new("mkfs.erofs")
                    .arg("--quiet")
                    .arg(tmp.join("rootfs.erofs"))
                    .arg(&tree),
                "mkfs.erofs",
                "apt-get install erofs-utils",
            );
            std::fs::remove_dir_all(&tree).unwrap();
        });
        dir.join("rootfs.erofs")
    })
}

/// An OCI image layout of a Debian [`SUITE`] root (`mmdebstrap --variant=minbase`),
/// for `FROM oci-layout:DIR`. Made once per machine (per target directory).
pub fn bookworm_layout() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = data_dir().join(format!("root-{}", key(&[SUITE, "minbase", MIRROR])));
        once(&dir, |tmp| {
            let tar = tmp.join("root.tar");
            run(
                Command::new("mmdebstrap")
                    .args(["--quiet", "--variant=minbase", "--format=tar", SUITE])
                    .arg(&tar)
                    .arg(MIRROR),
                "mmdebstrap",
                "apt-get install mmdebstrap",
            );
            write_oci_layout(
                &tmp.join("layout"),
                &tar,
                serde_json::json!({"Env": [PATH_ENV], "Cmd": ["bash"]}),
            );
            let _ = std::fs::remove_file(&tar); // moved into the layout, or copied
        });
        dir.join("layout")
    })
}

/// A flat Debian repository (`deb [trusted=yes] http://HOST/ ./`) holding
/// `packages` as `apt-get download` fetches them from the host's [`SUITE`] sources,
/// with its `Packages` and `Release` index.
pub fn repo(packages: &[&str]) -> PathBuf {
    let dir = data_dir().join(format!("repo-{}", key(packages)));
    once(&dir, |tmp| {
        run(
            Command::new("apt-get")
                .arg("download")
                .args(packages)
                .current_dir(tmp),
            "apt-get download",
            "the host's apt lists may need `apt-get update`",
        );
        let index = |args: &[&str], file: &str| {
            let out = Command::new("apt-ftparchive")
                .args(args)
                .current_dir(tmp)
                .output()
                .expect("apt-ftparchive (apt-get install apt-utils, or `cargo xtask setup`)");
            assert!(out.status.success(), "apt-ftparchive {args:?} failed");
            std::fs::write(tmp.join(file), out.stdout).unwrap();
        };
        index(&["packages", "."], "Packages");
        index(&["release", "."], "Release");
    });
    dir
}

/// Serves the files of `dir` (a [`repo`]) over HTTP on 127.0.0.1; anything else is 404.
/// The server's request log tells which files the guest fetched.
pub fn serve_repo(dir: &Path) -> Server {
    let dir = dir.to_owned();
    Server::start(move |req| {
        let rel = req.path.trim_start_matches('/').to_owned();
        let safe = !rel.is_empty() && !rel.split('/').any(|c| c == ".." || c.is_empty());
        match std::fs::read(dir.join(&rel)).ok().filter(|_| safe) {
            Some(body) if req.method == "GET" => req.respond(200, &[], &body),
            Some(_) => req.respond(200, &[], b""),
            None => req.respond(404, &[], b""),
        }
    })
}
