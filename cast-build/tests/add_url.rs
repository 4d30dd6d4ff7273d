//! `ADD <url>` against an HTTP server on 127.0.0.1: the file lands as Docker puts
//! it (named by the URL, root-owned 0600 unless --chown/--chmod, Last-Modified as
//! mtime, archives not extracted), `--checksum` is enforced, failures name the
//! instruction and the URL, and the build cache sees what a URL serves: same bytes
//! hit, new bytes rebuild, a pinned URL needs no request, and an offline build
//! refuses an unpinned URL.

mod support;

use std::io::Read;
use std::path::Path;

use cast_build::builder::{BaseError, BaseTrees};
use cast_build::cache::BuildCache;
use cast_build::config::{resolve, CastLayer};
use cast_build::image::{build_image, error_chain, BuiltImage, ImageError, ImageOptions};
use cast_build::{
    build, evaluate, BuildContext, BuildError, Built, Containerfile, EvalOptions, NoBaseImages,
};
use cast_rootfs::ImageTree;
use sha2::{Digest, Sha256};
use support::http::Server;

struct NoImages;

impl BaseTrees for NoImages {
    fn tree(&mut self, image: &str, _: Option<&str>) -> Result<ImageTree, BaseError> {
        Err(format!("{image}: no images in this test").into())
    }
}

fn try_build(text: &str) -> Result<Built, BuildError> {
    let cf =
        Containerfile::parse(Path::new("Containerfile"), text).unwrap_or_else(|e| panic!("{e}"));
    let plan =
        evaluate(&cf, &EvalOptions::default(), &mut NoBaseImages).unwrap_or_else(|e| panic!("{e}"));
    let ctx = tempfile::tempdir().unwrap();
    build(
        &plan,
        &BuildContext::open(ctx.path()).unwrap(),
        &mut NoImages,
        &mut cast_build::NoRun,
    )
}

fn eval_error(text: &str) -> String {
    let cf =
        Containerfile::parse(Path::new("Containerfile"), text).unwrap_or_else(|e| panic!("{e}"));
    evaluate(&cf, &EvalOptions::default(), &mut NoBaseImages)
        .expect_err("should be refused")
        .to_string()
}

/// Content, (uid, gid, mode) and mtime of `path`.
fn file(tree: &ImageTree, path: &str) -> (Vec<u8>, (u32, u32, u32), i64) {
    let id = tree.lookup(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut content = Vec::new();
    tree.open_content(id).read_to_end(&mut content).unwrap();
    let m = &tree.inode(id).meta;
    (content, (m.uid, m.gid, m.mode), m.mtime.sec)
}

fn tar_gz() -> Vec<u8> {
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    let mut h = tar::Header::new_gnu();
    h.set_size(2);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "inside.txt", &b"hi"[..]).unwrap();
    b.into_inner().unwrap().finish().unwrap()
}

#[test]
fn urls_land_as_docker_puts_them() {
    let server = Server::start();
    server.serve(
        "/dl/tool.sh",
        "#!/bin/sh\necho tool\n",
        &[("Last-Modified", "Wed, 21 Oct 2015 07:28:00 GMT")],
    );
    server.serve("/dl/my%20notes.txt", "notes\n", &[]);
    let archive = tar_gz();
    server.serve("/dl/bundle.tar.gz", archive.clone(), &[]);
    let text = format!(
        "FROM scratch\n\
         ARG BASE={base}\n\
         ADD ${{BASE}}/dl/tool.sh /usr/local/bin/\n\
         ADD --chown=1000:50 --chmod=755 {base}/dl/tool.sh /opt/run\n\
         ADD {base}/dl/bundle.tar.gz {base}/dl/my%20notes.txt /srv/\n",
        base = server.url("")
    );
    let tree = try_build(&text)
        .unwrap_or_else(|e| panic!("{}", error_chain(&e)))
        .tree;

    let (content, owner, mtime) = file(&tree, "/usr/local/bin/tool.sh");
    assert_eq!(content, b"#!/bin/sh\necho tool\n");
    assert_eq!(owner, (0, 0, 0o600), "root-owned 0600, as Docker does");
    assert_eq!(mtime, 1_445_412_480, "Last-Modified is the mtime");

    let (_, owner, _) = file(&tree, "/opt/run");
    assert_eq!(owner, (1000, 50, 0o755), "--chown and --chmod apply");

    let (content, _, mtime) = file(&tree, "/srv/bundle.tar.gz");
    assert_eq!(content, archive, "a downloaded archive is not extracted");
    assert_eq!(mtime, 0, "no Last-Modified: the epoch");
    assert!(tree.lookup("/srv/inside.txt").is_err());
    assert_eq!(
        file(&tree, "/srv/my notes.txt").0,
        b"notes\n",
        "the name is percent-decoded"
    );
    assert_eq!(
        server.requests(),
        3,
        "each URL is downloaded once per build"
    );
}

#[test]
fn checksums_and_failures() {
    let server = Server::start();
    server.serve("/f", "payload", &[]);
    let good = format!("{:x}", Sha256::digest(b"payload"));
    let tree = try_build(&format!(
        "FROM scratch\nADD --checksum=sha256:{good} {} /f\n",
        server.url("/f")
    ))
    .unwrap()
    .tree;
    assert_eq!(file(&tree, "/f").0, b"payload");

    let wrong = "ab".repeat(32);
    let e = try_build(&format!(
        "FROM scratch\nADD --checksum=sha256:{wrong} {} /f\n",
        server.url("/f")
    ))
    .unwrap_err();
    assert!(matches!(e, BuildError::Checksum { .. }), "{e}");
    assert_eq!(
        e.to_string(),
        format!(
            "Containerfile:2:1: {} has sha256:{good}, but --checksum expects sha256:{wrong}",
            server.url("/f")
        )
    );

    let e = try_build(&format!(
        "FROM scratch\nLABEL a=b\nADD {} /g\n",
        server.url("/missing")
    ))
    .unwrap_err();
    assert_eq!(
        error_chain(&e),
        format!(
            "Containerfile:3:1: cannot download {}: the server answered HTTP 404",
            server.url("/missing")
        )
    );

    // A server error is retried, then reported.
    let before = server.requests();
    server.reply("/flaky", 503, "busy", &[]);
    let e = try_build(&format!("FROM scratch\nADD {} /g\n", server.url("/flaky"))).unwrap_err();
    assert!(
        error_chain(&e).ends_with("the server answered HTTP 503"),
        "{}",
        error_chain(&e)
    );
    assert_eq!(server.requests() - before, 4, "503 is tried 4 times");

    // Nothing listens on a port just freed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/f");
    let e = try_build(&format!("FROM scratch\nADD {url} /g\n")).unwrap_err();
    let message = error_chain(&e);
    assert!(
        message.starts_with(&format!(
            "Containerfile:2:1: cannot download {url}: cannot reach the server ("
        )),
        "{message}"
    );
}

#[test]
fn url_sources_are_checked_when_evaluated() {
    for (text, expected) in [
        ("FROM scratch\nCOPY https://example.org/f /f\n", "Containerfile:2:1: COPY cannot download https://example.org/f (hint: use ADD for URLs)"),
        ("FROM scratch\nADD https://github.com/o/r.git /src\n", "Containerfile:2:1: ADD from a git repository is not supported: https://github.com/o/r.git (hint: clone the repository into the build context and COPY it)"),
        ("FROM scratch\nADD git@github.com:o/r /src\n", "Containerfile:2:1: ADD from a git repository is not supported: git@github.com:o/r (hint: clone the repository into the build context and COPY it)"),
        ("FROM scratch\nADD --checksum=sha256:00 https://example.org/f /f\n", "Containerfile:2:1: invalid --checksum=sha256:00 (hint: write --checksum=sha256:<64 hex digits>)"),
        (&format!("FROM scratch\nADD --checksum=sha256:{} local.txt /f\n", "0".repeat(64)), "Containerfile:2:1: ADD --checksum applies only to http:// and https:// sources (hint: local files need no checksum)"),
    ] {
        assert_eq!(eval_error(text), expected, "{text}");
    }
}

fn options(cache: &Path, offline: bool) -> ImageOptions {
    let mut o = ImageOptions {
        resolve: Default::default(),
        blob_cache: Some(cache.join("blobs")),
        cache: BuildCache::new(cache.join("build")),
        erofs: Default::default(),
        target: None,
        secrets: Vec::new(),
        no_cache: false,
    };
    o.resolve.offline = offline;
    o.resolve.progress = false;
    o
}

fn build_dir(dir: &Path, opts: &ImageOptions) -> Result<BuiltImage, ImageError> {
    let layer = CastLayer {
        containerfile: Some(dir.to_owned()),
        ..Default::default()
    };
    build_image(&resolve([layer], dir), opts)
}

#[test]
fn the_build_cache_sees_what_a_url_serves() {
    let server = Server::start();
    server.serve("/data.txt", "one\n", &[]);
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("app");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("Containerfile"),
        format!("FROM scratch\nADD {} /data.txt\n", server.url("/data.txt")),
    )
    .unwrap();
    let opts = options(&work.path().join("cache"), false);

    let first = build_dir(&dir, &opts).unwrap();
    assert!(!first.cache_hit);
    let image = std::fs::read(&first.root_image).unwrap();
    let again = build_dir(&dir, &opts).unwrap();
    assert!(
        again.cache_hit,
        "the same bytes behind the URL: a cache hit"
    );
    assert_eq!(
        server.requests(),
        2,
        "an unpinned URL is checked on every build"
    );

    server.serve("/data.txt", "two\n", &[]);
    let changed = build_dir(&dir, &opts).unwrap();
    assert!(!changed.cache_hit, "new bytes behind the URL: a rebuild");
    assert_ne!(std::fs::read(&changed.root_image).unwrap(), image);

    let offline = options(&work.path().join("cache"), true);
    let e = build_dir(&dir, &offline).unwrap_err();
    assert_eq!(
        error_chain(&e),
        format!("Containerfile:2:1: ADD {} needs the network, but the build is offline (hint: build once online, or download the file into the build context and COPY it)", server.url("/data.txt"))
            .replace("Containerfile", &dir.join("Containerfile").display().to_string()),
    );

    // Pinned: the pin is the key, so a warm cache needs no request, even offline.
    let sha = format!("{:x}", Sha256::digest(b"two\n"));
    std::fs::write(
        dir.join("Containerfile"),
        format!(
            "FROM scratch\nADD --checksum=sha256:{sha} {} /data.txt\n",
            server.url("/data.txt")
        ),
    )
    .unwrap();
    let before = server.requests();
    assert!(!build_dir(&dir, &opts).unwrap().cache_hit);
    assert_eq!(server.requests(), before + 1);
    assert!(build_dir(&dir, &offline).unwrap().cache_hit);
    assert!(build_dir(&dir, &opts).unwrap().cache_hit);
    assert_eq!(
        server.requests(),
        before + 1,
        "a pinned URL in a warm cache is not fetched"
    );
}
