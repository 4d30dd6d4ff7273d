//! Building image trees: COPY/ADD from the context and other stages, Docker's
//! destination and merge rules, --chown/--chmod, archive extraction, WORKDIR,
//! and located errors.

use std::fs;
use std::io::{Read, Write};
use std::path::Path;

use cast_build::builder::{BaseError, BaseTrees};
use cast_build::{
    build, evaluate, BuildContext, BuildError, Built, Containerfile, EvalOptions, NoBaseImages,
};
use cast_rootfs::{ImageTree, Metadata, Node};

/// A fake registry: `base` has users and groups, anything else is unknown.
struct Images;

impl BaseTrees for Images {
    fn tree(&mut self, image: &str, _platform: Option<&str>) -> Result<ImageTree, BaseError> {
        if image != "base" {
            return Err(format!("{image}: unknown image").into());
        }
        let mut t = ImageTree::new()?;
        let passwd =
            "root:x:0:0:root:/root:/bin/sh\n# comment\napp:x:1000:1000::/home/app:/bin/sh\n";
        t.add_file(
            "/etc/passwd",
            &mut passwd.as_bytes(),
            Metadata::with_mode(0o644),
        )?;
        t.add_file(
            "/etc/group",
            &mut "root:x:0:\nstaff:x:50:\n".as_bytes(),
            Metadata::with_mode(0o644),
        )?;
        t.add_file(
            "/bin/tool",
            &mut "tool".as_bytes(),
            Metadata::with_mode(0o755),
        )?;
        Ok(t)
    }
}

fn context(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in files {
        let path = dir.path().join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }
    dir
}

fn try_build(dir: &Path, text: &str) -> Result<Built, BuildError> {
    let cf =
        Containerfile::parse(Path::new("Containerfile"), text).unwrap_or_else(|e| panic!("{e}"));
    let plan =
        evaluate(&cf, &EvalOptions::default(), &mut NoBaseImages).unwrap_or_else(|e| panic!("{e}"));
    let ctx = BuildContext::open(dir).unwrap();
    build(&plan, &ctx, &mut Images, &mut cast_build::NoRun)
}

fn built(dir: &Path, text: &str) -> ImageTree {
    try_build(dir, text)
        .unwrap_or_else(|e| panic!("{e}: {:?}", std::error::Error::source(&e)))
        .tree
}

fn read(tree: &ImageTree, path: &str) -> String {
    let id = tree.lookup(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut s = String::new();
    tree.open_content(id).read_to_string(&mut s).unwrap();
    s
}

fn paths(tree: &ImageTree) -> Vec<String> {
    tree.iter().map(|e| e.path.display().to_string()).collect()
}

fn meta(tree: &ImageTree, path: &str) -> (u32, u32, u32) {
    let m = &tree.inode(tree.lookup(path).unwrap()).meta;
    (m.uid, m.gid, m.mode)
}

#[test]
fn copy_destinations_follow_docker_rules() {
    let dir = context(&[
        ("a.txt", "A"),
        ("b.txt", "B"),
        ("src/x.rs", "X"),
        ("src/sub/y.rs", "Y"),
    ]);
    let t = built(dir.path(), "FROM scratch\nCOPY a.txt /one\nCOPY a.txt /dir/\nCOPY b.txt /dir\nCOPY src /code\nCOPY *.txt /all/\n");
    assert_eq!(read(&t, "/one"), "A");
    assert_eq!(read(&t, "/dir/a.txt"), "A");
    assert_eq!(
        read(&t, "/dir/b.txt"),
        "B",
        "an existing directory receives the file"
    );
    assert_eq!(
        read(&t, "/code/sub/y.rs"),
        "Y",
        "a directory's contents are copied, not the directory"
    );
    assert!(!t.exists("/code/src"));
    assert_eq!(read(&t, "/all/b.txt"), "B");
    assert_eq!(meta(&t, "/one").0, 0, "context files are root's");
}

#[test]
fn directories_merge_and_files_replace() {
    let dir = context(&[
        ("v1/keep", "1"),
        ("v1/same", "old"),
        ("v2/same", "new"),
        ("v2/new", "2"),
    ]);
    let t = built(dir.path(), "FROM scratch\nCOPY v1 /app\nCOPY v2/ /app/\n");
    assert_eq!(
        paths(&t),
        ["/", "/app", "/app/keep", "/app/new", "/app/same"]
    );
    assert_eq!(read(&t, "/app/same"), "new");
}

#[test]
fn workdir_and_relative_destinations() {
    let dir = context(&[("f", "F")]);
    let t = built(
        dir.path(),
        "FROM scratch\nWORKDIR /srv/app\nCOPY f .\nCOPY f ./g\nWORKDIR empty\n",
    );
    assert_eq!(read(&t, "/srv/app/f"), "F");
    assert_eq!(read(&t, "/srv/app/g"), "F");
    assert!(t.inode(t.lookup("/srv/app/empty").unwrap()).node.is_dir());
}

#[test]
fn ignored_and_excluded_files_are_left_out() {
    let dir = context(&[
        ("app/main.rs", "m"),
        ("app/notes.md", "n"),
        ("app/target/bin", "b"),
        (".dockerignore", "app/target\n"),
    ]);
    let t = built(dir.path(), "FROM scratch\nCOPY --exclude=*.md app /app\n");
    assert_eq!(paths(&t), ["/", "/app", "/app/main.rs"]);
}

#[test]
fn chown_names_come_from_the_image() {
    let dir = context(&[("f", "F"), ("d/g", "G")]);
    let t = built(dir.path(), "FROM base\nCOPY --chown=app:staff f /f\nCOPY --chown=app d /d\nCOPY --chown=7:8 --chmod=600 f /g\n");
    assert_eq!(meta(&t, "/f"), (1000, 50, 0o644));
    assert_eq!(meta(&t, "/d/g").0, 1000);
    assert_eq!(meta(&t, "/d/g").1, 1000, "no group: the uid is the gid");
    assert_eq!(meta(&t, "/d"), (1000, 1000, 0o755));
    assert_eq!(meta(&t, "/g"), (7, 8, 0o600));
}

#[test]
fn chown_errors_are_located() {
    let dir = context(&[("f", "F")]);
    let e = try_build(dir.path(), "FROM base\n\nCOPY --chown=nobody f /f\n").unwrap_err();
    assert_eq!(e.to_string(), "Containerfile:3:1: unable to find user nobody: no matching entries in /etc/passwd (hint: add the user to the image's /etc/passwd or use numeric ids)");
    let e = try_build(dir.path(), "FROM scratch\nCOPY --chown=app:staff f /f\n").unwrap_err();
    assert_eq!(e.to_string(), "Containerfile:2:1: unable to find user app: no /etc/passwd in the image (hint: add the user to the image's /etc/passwd or use numeric ids)");
}

#[test]
fn stages_and_copy_from() {
    let dir = context(&[
        ("app", "binary"),
        ("conf/a.toml", "a"),
        ("conf/b.toml", "b"),
    ]);
    let text = "FROM base AS build\nCOPY app /out/app\nCOPY conf /out/conf\nFROM build AS more\nCOPY app /more\nFROM scratch\nCOPY --from=build /out/app /usr/bin/\nCOPY --from=1 /out/conf/*.toml /etc/\nCOPY --from=base /bin/tool /tool\n";
    let t = built(dir.path(), text);
    assert_eq!(
        paths(&t),
        [
            "/",
            "/etc",
            "/etc/a.toml",
            "/etc/b.toml",
            "/tool",
            "/usr",
            "/usr/bin",
            "/usr/bin/app"
        ]
    );
    assert_eq!(read(&t, "/tool"), "tool");
    assert_eq!(meta(&t, "/tool").2, 0o755, "modes travel with --from");
}

#[test]
fn heredocs_become_files() {
    let dir = context(&[]);
    let t = built(
        dir.path(),
        "FROM scratch\nARG NAME=world\nCOPY <<EOF /hello\nhello $NAME\nEOF\n",
    );
    assert_eq!(read(&t, "/hello"), "hello world\n");
}

fn tar_bytes() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(2);
    h.set_mode(0o640);
    h.set_uid(33);
    h.set_gid(33);
    h.set_cksum();
    b.append_data(&mut h, "pkg/data.txt", &b"hi"[..]).unwrap();
    b.into_inner().unwrap()
}

#[test]
fn add_extracts_local_archives() {
    let tar = tar_bytes();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
    bz.write_all(&tar).unwrap();
    let mut xz = Vec::new();
    lzma_rs::xz_compress(&mut &tar[..], &mut xz).unwrap();
    let zst = zstd::encode_all(&tar[..], 1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in [
        ("a.tar", tar.clone()),
        ("a.tgz", gz.finish().unwrap()),
        ("a.tbz", bz.finish().unwrap()),
        ("a.txz", xz),
        ("a.tzst", zst),
    ] {
        fs::write(dir.path().join(name), bytes).unwrap();
    }
    fs::write(dir.path().join("plain.gz"), b"\x1f\x8bnot really").unwrap();
    let text = "FROM scratch\nADD a.tar /t\nADD a.tgz /g/\nADD a.tbz /b\nADD a.txz /x\nADD a.tzst /z\nADD plain.gz /p/\nCOPY a.tar /c/\n";
    let t = built(dir.path(), text);
    for d in ["/t", "/g", "/b", "/x", "/z"] {
        assert_eq!(read(&t, &format!("{d}/pkg/data.txt")), "hi", "{d}");
        assert_eq!(
            meta(&t, &format!("{d}/pkg/data.txt")),
            (33, 33, 0o640),
            "{d}"
        );
    }
    let mut bytes = Vec::new();
    t.open_content(t.lookup("/p/plain.gz").unwrap())
        .read_to_end(&mut bytes)
        .unwrap();
    assert_eq!(
        bytes, b"\x1f\x8bnot really",
        "a non-archive is copied as it is"
    );
    assert!(
        matches!(t.inode(t.lookup("/c/a.tar").unwrap()).node, Node::File(_)),
        "COPY never extracts"
    );
}

#[test]
fn copy_errors() {
    let dir = context(&[("a", "A"), ("b", "B")]);
    let cases = [
        ("FROM scratch\nCOPY a b /dst\n", "Containerfile:2:1: COPY with more than one source needs a directory destination (hint: end the destination with a slash: /dst/)"),
        ("FROM scratch\nCOPY missing /x\n", "Containerfile:2:1: bad source"),
        ("FROM scratch\nCOPY ../a /x\n", "Containerfile:2:1: bad source"),
        ("FROM scratch\nCOPY --from=nope /x /x\n", "Containerfile:2:1: cannot get image nope"),
        ("FROM base\nFROM scratch\nCOPY --from=0 /nope /x\n", "Containerfile:3:1: /nope not found in the --from source"),
        ("FROM scratch\nCOPY <<EOF /dir/\nx\nEOF\n", "Containerfile:2:1: a heredoc source needs a file destination (hint: name the file: COPY <<EOF /path/to/file)"),
        ("FROM scratch\nCOPY a /a\nRUN true\n", "Containerfile:3:1: RUN needs build VMs, which this build has none of (hint: build with cargo cast build or cast_build::image::build_image)"),
    ];
    for (text, want) in cases {
        let e = try_build(dir.path(), text).expect_err(text);
        assert_eq!(e.to_string(), want, "{text:?}");
    }
    let e = try_build(dir.path(), "FROM scratch\nCOPY ../a /x\n").unwrap_err();
    assert_eq!(
        std::error::Error::source(&e).unwrap().to_string(),
        "\"../a\" is outside the build context"
    );
}

#[test]
fn run_config_and_context_files_are_reported() {
    let dir = context(&[
        ("a", "A"),
        ("d/b", "B"),
        (".containerignore", "d/ignored\n"),
        ("d/ignored", "I"),
        ("unused", "U"),
    ]);
    let b = try_build(
        dir.path(),
        "FROM scratch\nCOPY a d /x/\nENTRYPOINT [\"/x/a\"]\n",
    )
    .unwrap();
    assert_eq!(b.run_config.argv(), ["/x/a"]);
    let root = dir.path().canonicalize().unwrap();
    let used: Vec<String> = b
        .context_files
        .iter()
        .map(|p| p.strip_prefix(&root).unwrap().display().to_string())
        .collect();
    assert_eq!(used, [".containerignore", "a", "d", "d/b"]);
    let lines = b.rerun_if_changed();
    assert_eq!(
        lines[1],
        format!("cargo:rerun-if-changed={}", root.join("a").display())
    );
}

#[test]
fn build_file_does_everything() {
    struct Both;
    impl cast_build::BaseImages for Both {
        fn config(&mut self, image: &str, _: Option<&str>) -> Option<cast_build::RunConfig> {
            (image == "base").then(|| cast_build::RunConfig {
                user: Some("app".into()),
                ..Default::default()
            })
        }
    }
    impl BaseTrees for Both {
        fn tree(&mut self, image: &str, platform: Option<&str>) -> Result<ImageTree, BaseError> {
            Images.tree(image, platform)
        }
    }
    let dir = context(&[
        (
            "Dockerfile",
            "FROM base\nCOPY --chown=app f /f\nCMD [\"/f\"]\n",
        ),
        ("f", "F"),
    ]);
    let b = cast_build::build_file(dir.path(), None, &EvalOptions::default(), &mut Both).unwrap();
    assert_eq!(b.run_config.user.as_deref(), Some("app"));
    assert_eq!(meta(&b.tree, "/f").0, 1000);
    assert!(b
        .context_files
        .contains(&dir.path().canonicalize().unwrap().join("Dockerfile")));
    let e = cast_build::build_file(
        &dir.path().join("nope"),
        None,
        &EvalOptions::default(),
        &mut Both,
    )
    .unwrap_err();
    assert!(e.to_string().starts_with("cannot read "), "{e}");
}

#[test]
fn workdir_is_created_for_the_user() {
    let dir = context(&[]);
    let t = built(dir.path(), "FROM base\nWORKDIR /root-owned\nUSER app\nWORKDIR /home/app/work\nUSER 7:staff\nWORKDIR /seven\nUSER 1000\nWORKDIR /root-owned\n");
    assert_eq!(
        meta(&t, "/root-owned"),
        (0, 0, 0o755),
        "existing directories keep their owner"
    );
    assert_eq!(meta(&t, "/home/app/work"), (1000, 1000, 0o755));
    assert_eq!(meta(&t, "/seven"), (7, 50, 0o755));
    let e = try_build(dir.path(), "FROM scratch\nUSER nobody\nWORKDIR /w\n").unwrap_err();
    assert_eq!(e.to_string(), "Containerfile:3:1: WORKDIR for USER nobody: unable to find user nobody: no matching entries in /etc/passwd (hint: missing directories are created owned by the USER; add the user to /etc/passwd or use numeric ids)");
    let t = built(dir.path(), "FROM scratch\nUSER 5\nWORKDIR /w\n");
    assert_eq!(meta(&t, "/w"), (5, 0, 0o755));
}

#[test]
fn built_trees_write_as_erofs() {
    let dir = context(&[("app/bin", "#!/bin/sh\n"), ("app/etc/conf", "x")]);
    let t = built(
        dir.path(),
        "FROM base AS b\nCOPY app /app\nFROM b\nWORKDIR /data\n",
    );
    let mut image = Vec::new();
    let stats =
        cast_rootfs::erofs::write_image(&t, &cast_rootfs::erofs::Options::default(), &mut image)
            .unwrap();
    assert_eq!(stats.inodes, t.inode_count() as u64);
    assert_eq!(stats.bytes, image.len() as u64);
}

#[test]
fn add_keeps_whiteout_names_as_files() {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(1);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "d/.wh.x", &b"w"[..]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("w.tar"), b.into_inner().unwrap()).unwrap();
    let t = built(dir.path(), "FROM scratch\nADD w.tar /\n");
    assert_eq!(read(&t, "/d/.wh.x"), "w");
}
