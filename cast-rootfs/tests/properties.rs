//! Property tests of layer application, the image builder's untrusted input: any
//! sequence of tar entries (`..`, absolute and empty paths, whiteouts, links to
//! anywhere, a directory replaced by a file and back) is applied or refused with an
//! error — never a panic — and an applied tree is one the EROFS writer accepts, with
//! the same bytes every time.
//!
//! Bounded for CI: proptest's default 256 cases (`PROPTEST_CASES` raises it).

mod common;

use cast_rootfs::erofs::{write_image, Options};
use cast_rootfs::layer::{apply_layer, Compression};
use cast_rootfs::ImageTree;
use common::tarball::Layer;
use proptest::prelude::*;
use tar::EntryType;

/// A path built from a few hostile components (at most 99 bytes: a ustar name).
fn path() -> impl Strategy<Value = String> {
    let component = prop_oneof![
        Just("a"),
        Just("b"),
        Just("dir"),
        Just(".."),
        Just("."),
        Just(""),
        Just(".wh.a"),
        Just(".wh.dir"),
        Just(".wh..wh..opq"),
    ];
    (any::<bool>(), proptest::collection::vec(component, 1..5))
        .prop_map(|(absolute, parts)| {
            let joined = parts.join("/");
            if absolute {
                format!("/{joined}")
            } else {
                joined
            }
        })
        .prop_filter("a ustar name", |p| !p.is_empty() && p.len() < 100)
}

#[derive(Debug, Clone)]
struct Entry {
    path: String,
    kind: EntryType,
    mode: u32,
    link: String,
    data: Vec<u8>,
}

fn entry() -> impl Strategy<Value = Entry> {
    let kind = prop_oneof![
        Just(EntryType::Regular),
        Just(EntryType::Directory),
        Just(EntryType::Symlink),
        Just(EntryType::Link),
        Just(EntryType::Fifo),
        Just(EntryType::Char),
    ];
    (
        path(),
        kind,
        0u32..0o10000,
        path(),
        proptest::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(path, kind, mode, link, data)| {
            let data = if kind == EntryType::Regular {
                data
            } else {
                Vec::new()
            };
            Entry {
                path,
                kind,
                mode,
                link,
                data,
            }
        })
}

fn layer(entries: &[Entry]) -> Vec<u8> {
    let mut l = Layer::new();
    for e in entries {
        l.raw(&e.path, e.kind, e.mode, &e.link, &e.data);
    }
    l.plain()
}

/// Applies `layers` to a fresh tree; the image bytes if every layer applied.
fn image_of(layers: &[Vec<u8>]) -> Option<Vec<u8>> {
    let mut tree = ImageTree::new().unwrap();
    for l in layers {
        apply_layer(&mut tree, &l[..], Compression::Auto).ok()?;
    }
    let options = Options {
        source_date_epoch: Some(0),
        lz4: false,
    };
    let mut image = Vec::new();
    write_image(&tree, &options, &mut image).expect("an applied tree is a valid image");
    Some(image)
}

proptest! {
    #[test]
    fn any_entries_apply_or_are_refused_and_images_are_deterministic(
        layers in proptest::collection::vec(proptest::collection::vec(entry(), 0..8), 1..3),
    ) {
        let layers: Vec<Vec<u8>> = layers.iter().map(|l| layer(l)).collect();
        let first = image_of(&layers);
        prop_assert_eq!(first, image_of(&layers), "the same layers gave two images");
    }

    #[test]
    fn garbage_streams_are_errors_not_panics(
        bytes in proptest::collection::vec(any::<u8>(), 0..2048),
        tar_header in any::<bool>(),
    ) {
        // Half the time the garbage follows a valid entry, so the tar reader is past
        // the first header when it meets it.
        let mut stream = if tar_header {
            let mut l = Layer::new();
            l.file("ok", b"fine");
            let mut v = l.plain();
            v.truncate(1024);
            v
        } else {
            Vec::new()
        };
        stream.extend(bytes);
        let mut tree = ImageTree::new().unwrap();
        let _ = apply_layer(&mut tree, &stream[..], Compression::Auto);
    }
}
