//! The image half of a cast build, against a real registry on 127.0.0.1: a
//! Containerfile FROM a busybox image is built into an EROFS root image through the
//! content-addressed build cache; building again with nothing changed does no image
//! work (a cache hit, timed), touching a file without changing it is still a hit,
//! and changing a used file or a build argument rebuilds; an offline build with
//! the registry gone rebuilds from the blob cache.

use std::path::Path;
use std::time::Duration;

use cast_build::cache::BuildCache;
use cast_build::config::{resolve, CastLayer};
use cast_build::image::{build_image, BuiltImage, ImageOptions};
use cast_oci::{AuthSource, ClientOptions, ResolveOptions, RetryPolicy};
use cast_tests::images::push_busybox;
use cast_tests::registry::Registry;

fn options(cache: &Path) -> ImageOptions {
    ImageOptions {
        resolve: ResolveOptions {
            client: ClientOptions {
                auth: AuthSource::anonymous(),
                retry: RetryPolicy {
                    attempts: 2,
                    initial_delay: Duration::from_millis(50),
                    max_delay: Duration::from_millis(100),
                },
                connect_timeout: Duration::from_secs(2),
                io_timeout: Duration::from_secs(20),
                ..ClientOptions::default()
            },
            progress: false,
            ..ResolveOptions::default()
        },
        blob_cache: Some(cache.join("blobs")),
        cache: BuildCache::new(cache.join("build")),
        erofs: Default::default(),
        target: None,
        secrets: Vec::new(),
        no_cache: false,
    }
}

fn build(dir: &Path, opts: &ImageOptions, args: &[(&str, &str)]) -> BuiltImage {
    let layer = CastLayer {
        containerfile: Some(dir.to_owned()),
        build_args: args
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    };
    let b = build_image(&resolve([layer], dir), opts).expect("build");
    eprintln!(
        "image build: {} in {:?} (key {})",
        if b.cache_hit { "cache hit" } else { "built" },
        b.elapsed,
        &b.key[..12]
    );
    b
}

#[test]
fn unchanged_builds_hit_the_cache() {
    let registry = Registry::start();
    let base = push_busybox(&registry);
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("app");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("Containerfile"),
        format!(
            "FROM {base}\nARG FLAVOUR=plain\nCOPY greet.sh /usr/local/bin/greet\n\
             ENV GREETING=hello FLAVOUR=$FLAVOUR\nENTRYPOINT [\"/usr/local/bin/greet\"]\n"
        ),
    )
    .unwrap();
    std::fs::write(dir.join("unused.txt"), "not copied\n").unwrap();
    let script = dir.join("greet.sh");
    std::fs::write(&script, "#!/bin/sh\necho \"$GREETING $*\"\n").unwrap();
    let opts = options(&work.path().join("cache"));

    let first = build(&dir, &opts, &[]);
    assert!(!first.cache_hit);
    assert!(std::fs::metadata(&first.root_image).unwrap().len() > 4096);
    assert_eq!(first.run_config.argv(), ["/usr/local/bin/greet"]);
    assert_eq!(first.run_config.env_var("GREETING"), Some("hello"));
    assert_eq!(
        first.run_config.env_var("PATH"),
        Some("/usr/sbin:/usr/bin:/sbin:/bin")
    );
    let inputs: Vec<_> = first
        .inputs
        .iter()
        .map(|p| p.file_name().unwrap())
        .collect();
    assert!(inputs.contains(&"greet.sh".as_ref()), "{inputs:?}");
    assert!(inputs.contains(&"Containerfile".as_ref()), "{inputs:?}");
    assert!(!inputs.contains(&"unused.txt".as_ref()), "{inputs:?}");

    let second = build(&dir, &opts, &[]);
    assert!(second.cache_hit, "nothing changed: no image work");
    assert_eq!(second.key, first.key);
    assert_eq!(second.root_image, first.root_image);

    // Same bytes, new mtime: still a hit. An unused file changing: a hit.
    std::fs::write(&script, "#!/bin/sh\necho \"$GREETING $*\"\n").unwrap();
    std::fs::write(dir.join("unused.txt"), "changed\n").unwrap();
    assert!(build(&dir, &opts, &[]).cache_hit);

    // A used file changing, or a build argument: rebuilt.
    std::fs::write(&script, "#!/bin/sh\necho \"$GREETING, $*\"\n").unwrap();
    let third = build(&dir, &opts, &[]);
    assert!(!third.cache_hit);
    assert!(build(&dir, &opts, &[]).cache_hit);
    let flavoured = build(&dir, &opts, &[("FLAVOUR", "spicy")]);
    assert!(!flavoured.cache_hit);
    assert_eq!(flavoured.run_config.env_var("FLAVOUR"), Some("spicy"));
    assert_ne!(flavoured.key, third.key);

    // Offline, with the registry gone: a new build still works from the blob cache.
    drop(registry);
    let mut offline = options(&work.path().join("cache"));
    offline.resolve.offline = true;
    let cold = build(&dir, &offline, &[("FLAVOUR", "offline")]);
    assert!(
        !cold.cache_hit,
        "a new build argument: built, from cached blobs"
    );
    assert_eq!(cold.run_config.env_var("FLAVOUR"), Some("offline"));

    // No temporary entries are left behind.
    let leftovers: Vec<_> = std::fs::read_dir(opts.cache.root())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
