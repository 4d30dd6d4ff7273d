//! Payload round trips: builder → bytes → reader, damage detection, object files
//! (ELF and Mach-O written and read back), and the extraction cache.

use cast_core::{RunConfig, VmUpdate};
use cast_payload::cache::{extract_kernel, kernel_entry, CacheError};
use cast_payload::format::{ALIGN, HEADER_LEN};
use cast_payload::objfile::{build_object, Arch, LEN_SYMBOL, PAYLOAD_SYMBOL};
use cast_payload::reader::read_prefix;
use cast_payload::{
    ObjectFormat, ObjectTarget, PartKind, Payload, PayloadBuilder, ReadError, VmDefaults,
};
use object::{Object, ObjectSection, ObjectSymbol};
use proptest::prelude::*;
use std::path::Path;

struct Inputs {
    dir: tempfile::TempDir,
    vmlinux: Vec<u8>,
}

fn inputs(root_len: usize) -> Inputs {
    let dir = tempfile::tempdir().unwrap();
    let vmlinux: Vec<u8> = (0..300_000u32).map(|i| (i * 7 / 13) as u8).collect();
    std::fs::write(dir.path().join("vmlinux"), &vmlinux).unwrap();
    let root: Vec<u8> = (0..root_len as u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.path().join("root.img"), root).unwrap();
    Inputs { dir, vmlinux }
}

fn builder(i: &Inputs) -> PayloadBuilder {
    let run = RunConfig {
        entrypoint: Some(vec!["/bin/echo".into()]),
        cmd: Some(vec!["hi".into()]),
        ..RunConfig::default()
    };
    let vm = VmDefaults {
        name: "tool".into(),
        settings: VmUpdate {
            cpus: Some(1),
            ..VmUpdate::default()
        },
    };
    PayloadBuilder::new(run, vm)
        .kernel(i.dir.path().join("vmlinux"), Some("6.1.0-test".into()))
        .initrd(b"initrd bytes".to_vec())
        .root_image(i.dir.path().join("root.img"))
        .zstd_level(3)
}

fn payload_bytes(i: &Inputs) -> Vec<u8> {
    let mut out = Vec::new();
    builder(i).write_to(&mut out).unwrap();
    out
}

#[test]
fn a_payload_round_trips() {
    let i = inputs(10_000); // not a multiple of 512: padded
    let bytes = payload_bytes(&i);
    let p = Payload::parse(&bytes).unwrap();
    p.verify().unwrap();
    let m = &p.manifest;
    assert_eq!(m.kernel_release.as_deref(), Some("6.1.0-test"));
    assert_eq!(m.vm.name, "tool");
    assert_eq!(m.run.argv(), ["/bin/echo", "hi"]);
    for kind in PartKind::ALL {
        assert_eq!(m.part(kind).offset % ALIGN, 0, "{kind:?}");
    }
    assert_eq!(m.root.length, 10_240);
    let root = p.part_bytes(PartKind::Root);
    assert_eq!(
        &root[..10_000],
        &std::fs::read(i.dir.path().join("root.img")).unwrap()[..]
    );
    assert!(root[10_000..].iter().all(|b| *b == 0));
    assert_eq!(p.part_bytes(PartKind::Initrd), b"initrd bytes");
    let kernel = zstd::decode_all(p.part_bytes(PartKind::Kernel)).unwrap();
    assert_eq!(kernel, i.vmlinux);
    assert_eq!(bytes.len() as u64, m.root.offset + m.root.length);
}

#[test]
fn any_flipped_byte_is_caught_by_parse_or_verify() {
    let i = inputs(8192);
    let bytes = payload_bytes(&i);
    let p = Payload::parse(&bytes).unwrap();
    let m = p.manifest.clone();
    let manifest_end = HEADER_LEN as u64 + serde_json::to_vec(&m).unwrap().len() as u64;
    let mut spots: Vec<u64> = (0..manifest_end).step_by(7).collect();
    for kind in PartKind::ALL {
        let part = m.part(kind);
        spots.extend([
            part.offset,
            part.offset + part.length / 2,
            part.offset + part.length - 1,
        ]);
    }
    for at in spots {
        let mut bad = bytes.clone();
        bad[at as usize] ^= 0x20;
        let caught = Payload::parse(&bad).and_then(|p| p.verify());
        assert!(caught.is_err(), "a flipped byte at {at} went unnoticed");
    }
    // Truncated or extended payloads.
    assert!(Payload::parse(&bytes[..bytes.len() - 1]).is_err());
    assert!(Payload::parse(&bytes[..HEADER_LEN - 1]).is_err());
    let mut longer = bytes.clone();
    longer.extend_from_slice(&[0; 100]);
    assert_eq!(Payload::parse(&longer).unwrap().len(), bytes.len() as u64);
}

/// `bytes` with its header rewritten: format `format`, manifest `json` (resealed).
fn with_header(bytes: &[u8], format: u32, json: &[u8]) -> Vec<u8> {
    let header = cast_payload::format::Header {
        format,
        manifest_len: json.len() as u64,
        total_len: bytes.len() as u64,
        manifest_sha256: <sha2::Sha256 as sha2::Digest>::digest(json).into(),
    };
    let mut out = bytes.to_vec();
    out[..HEADER_LEN].copy_from_slice(&header.encode());
    out[HEADER_LEN..HEADER_LEN + json.len()].copy_from_slice(json);
    out
}

#[test]
fn a_flipped_format_byte_is_damage_and_only_a_sealed_manifest_names_a_version() {
    let i = inputs(4096);
    let bytes = payload_bytes(&i);
    let mut flipped = bytes.clone();
    flipped[8] ^= 0xff; // the header's format field, all bits flipped
    let err = Payload::parse(&flipped).unwrap_err();
    assert!(matches!(err, ReadError::Damaged(_)), "{err}");
    assert!(
        err.to_string().starts_with("the payload is damaged"),
        "{err}"
    );
    // A payload that really is the next format: header and sealed manifest agree.
    let next = cast_payload::format::FORMAT_VERSION + 1;
    let mut m: serde_json::Value =
        serde_json::from_slice(&bytes[HEADER_LEN..][..manifest_len(&bytes)]).unwrap();
    m["format"] = next.into();
    let json = serde_json::to_vec(&m).unwrap();
    let err = Payload::parse(&with_header(&bytes, next, &json)).unwrap_err();
    assert!(
        matches!(err, ReadError::Version { found } if found == next),
        "{err}"
    );
}

fn manifest_len(bytes: &[u8]) -> usize {
    u64::from_le_bytes(bytes[16..24].try_into().unwrap()) as usize
}

#[test]
fn the_runtime_reads_all_but_the_root_image_from_a_file_and_stops_at_its_end() {
    let i = inputs(8192);
    let bytes = payload_bytes(&i);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("exe");
    let lead = vec![0x90u8; 1000]; // the payload sits somewhere inside the file
    std::fs::write(&path, [&lead[..], &bytes[..]].concat()).unwrap();
    let file = std::fs::File::open(&path).unwrap();
    let room = bytes.len() as u64;
    let prefix = read_prefix(&file, 1000, room).unwrap();
    let p = Payload::parse_in(&prefix, room).unwrap();
    assert_eq!(
        prefix.len() as u64,
        p.manifest.initrd.offset + p.manifest.initrd.length
    );
    assert_eq!(p.len(), room);
    p.verify_part(PartKind::Kernel).unwrap();
    p.verify_part(PartKind::Initrd).unwrap();
    // Cut anywhere: an error that says damaged, never a panic or a short read.
    for cut in [
        10u64,
        500,
        1000 + 30,
        1000 + 4096,
        1000 + p.manifest.initrd.offset + 5,
    ] {
        let file = tempfile::tempfile().unwrap();
        std::io::Write::write_all(
            &mut &file,
            &[&lead[..], &bytes[..]].concat()[..cut as usize],
        )
        .unwrap();
        let err = read_prefix(&file, 1000, room)
            .and_then(|b| Payload::parse_in(&b, room).map(|_| ()))
            .unwrap_err();
        assert!(
            err.to_string().starts_with("the payload is damaged"),
            "{cut}: {err}"
        );
    }
}

#[test]
fn hostile_manifests_are_rejected_not_trusted() {
    let i = inputs(4096);
    let bytes = payload_bytes(&i);
    let p = Payload::parse(&bytes).unwrap();
    let forge = |m: &cast_payload::Manifest| reseal(m, bytes.len());
    let mut m = p.manifest.clone();
    m.root.length = u64::MAX - 10;
    assert!(matches!(
        Payload::parse(&forge(&m)),
        Err(ReadError::Damaged(_))
    ));
    let mut m = p.manifest.clone();
    m.root.offset = 1;
    assert!(Payload::parse(&forge(&m)).is_err());
    let mut m = p.manifest.clone();
    m.kernel.decoded_length = u64::MAX;
    assert!(Payload::parse(&forge(&m)).is_err());
    let mut m = p.manifest.clone();
    m.initrd.offset = m.kernel.offset; // overlapping parts
    assert!(Payload::parse(&forge(&m)).is_err());
}

fn check_object(target: ObjectTarget, payload: &[u8]) {
    let obj = build_object(payload, target);
    let bytes = obj.write().unwrap();
    let file = object::File::parse(&*bytes).unwrap();
    let (section_name, prefix) = match target.format {
        ObjectFormat::Elf => (".cast_payload", ""),
        ObjectFormat::MachO => ("__cast_payload", "_"),
    };
    let section = file.section_by_name(section_name).expect("payload section");
    assert_eq!(section.align(), ALIGN);
    assert_eq!(section.data().unwrap(), payload);
    match (target.format, section.flags()) {
        // Not loaded: a damaged file reaches the runtime's checks, never a crash.
        (ObjectFormat::Elf, object::SectionFlags::Elf { sh_flags }) => {
            assert_eq!(sh_flags & u64::from(object::elf::SHF_ALLOC), 0)
        }
        (ObjectFormat::MachO, object::SectionFlags::MachO { flags }) => {
            assert_eq!(section.segment_name().unwrap(), Some("__TEXT"));
            assert_ne!(flags & object::macho::S_ATTR_NO_DEAD_STRIP, 0);
        }
        (format, flags) => panic!("{format:?} section with {flags:?}"),
    }
    let sym = file
        .symbols()
        .find(|s| s.name() == Ok(&format!("{prefix}{PAYLOAD_SYMBOL}")))
        .expect("payload symbol");
    assert!(sym.is_global() && sym.is_definition());
    assert_eq!(sym.section_index(), Some(section.index()));
    assert_eq!(sym.address(), section.address());
    let len = file
        .symbols()
        .find(|s| s.name() == Ok(&format!("{prefix}{LEN_SYMBOL}")))
        .expect("length symbol");
    let len_section = file.section_by_index(len.section_index().unwrap()).unwrap();
    let at = (len.address() - len_section.address()) as usize;
    let value = u64::from_le_bytes(len_section.data().unwrap()[at..at + 8].try_into().unwrap());
    assert_eq!(value, payload.len() as u64);
    let arch = match target.arch {
        Arch::X86_64 => object::Architecture::X86_64,
        Arch::Aarch64 => object::Architecture::Aarch64,
    };
    assert_eq!(file.architecture(), arch);
}

#[test]
fn object_files_carry_the_payload_for_every_target() {
    let i = inputs(4096);
    let bytes = payload_bytes(&i);
    for triple in [
        "x86_64-unknown-linux-gnu",
        "aarch64-unknown-linux-musl",
        "x86_64-apple-darwin",
        "aarch64-apple-darwin",
    ] {
        let target = ObjectTarget::from_triple(triple).unwrap();
        check_object(target, &bytes);
    }
    assert!(ObjectTarget::from_triple("x86_64-pc-windows-msvc").is_err());
    assert!(ObjectTarget::from_triple("riscv64gc-unknown-linux-gnu").is_err());
}

#[test]
fn the_object_file_written_through_a_map_matches() {
    let i = inputs(20_000);
    let target = ObjectTarget::from_triple("x86_64-unknown-linux-gnu").unwrap();
    let out = tempfile::tempdir().unwrap();
    let linked = cast_payload::write_payload_object(&builder(&i), target, out.path()).unwrap();
    let obj = std::fs::read(&linked.object).unwrap();
    let file = object::File::parse(&*obj).unwrap();
    let data = file
        .section_by_name(".cast_payload")
        .unwrap()
        .data()
        .unwrap();
    assert_eq!(data.len() as u64, linked.payload_len);
    Payload::parse(data).unwrap().verify().unwrap();
    assert!(!out.path().join("cast-payload.bin").exists());
}

fn cache_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir.join("payload/kernel"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn a_flipped_byte_in_a_cached_kernel_is_noticed_and_the_entry_replaced() {
    let i = inputs(4096);
    let bytes = payload_bytes(&i);
    let p = Payload::parse(&bytes).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let entry = extract_kernel(&p, cache.path()).unwrap();
    assert!(std::fs::read(&entry).unwrap() == i.vmlinux);
    // Poison the shared cache: same name, same size, one byte different.
    let mut poisoned = i.vmlinux.clone();
    poisoned[1234] ^= 0x01;
    std::fs::write(&entry, &poisoned).unwrap();
    assert_eq!(extract_kernel(&p, cache.path()).unwrap(), entry);
    assert!(
        std::fs::read(&entry).unwrap() == i.vmlinux,
        "the poisoned kernel was used"
    );
    // A replacement (another inode) with the right bytes is re-hashed and accepted.
    let copy = cache.path().join("copy");
    std::fs::write(&copy, &i.vmlinux).unwrap();
    std::fs::rename(&copy, &entry).unwrap();
    assert_eq!(extract_kernel(&p, cache.path()).unwrap(), entry);
    assert!(std::fs::read(&entry).unwrap() == i.vmlinux);
}

#[test]
fn the_cache_extracts_once_recovers_leftovers_and_reports_unwritable_dirs() {
    let i = inputs(4096);
    let bytes = payload_bytes(&i);
    let p = Payload::parse(&bytes).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let sha = p.manifest.kernel.decoded_sha256.clone();
    // A killed run's leftover and no entry.
    std::fs::create_dir_all(cache.path().join("payload/kernel")).unwrap();
    std::fs::write(
        cache.path().join(format!("payload/kernel/.tmp-{sha}.x999")),
        b"half",
    )
    .unwrap();
    let paths: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| s.spawn(|| extract_kernel(&p, cache.path()).unwrap()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(paths.iter().all(|q| *q == kernel_entry(&p, cache.path())));
    assert_eq!(std::fs::read(&paths[0]).unwrap(), i.vmlinux);
    assert_eq!(
        cache_files(cache.path()),
        [sha.clone(), format!("{sha}.lock")]
    );

    let blocker = cache.path().join("file");
    std::fs::write(&blocker, b"").unwrap();
    let err = extract_kernel(&p, &blocker).unwrap_err();
    assert!(matches!(err, CacheError::Unwritable { .. }), "{err}");
}

/// One payload for the property tests, built once.
fn fixture() -> &'static [u8] {
    static BYTES: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BYTES.get_or_init(|| payload_bytes(&inputs(4096)))
}

/// `m` sealed into a payload of `len` bytes with a correct header hash, as a forger
/// would (the parts are left zero: only the structural checks can stop it).
fn reseal(m: &cast_payload::Manifest, len: usize) -> Vec<u8> {
    let json = serde_json::to_vec(m).unwrap();
    let header = cast_payload::format::Header {
        format: cast_payload::format::FORMAT_VERSION,
        manifest_len: json.len() as u64,
        total_len: len as u64,
        manifest_sha256: sha2::Digest::finalize(sha2::Digest::chain_update(
            <sha2::Sha256 as sha2::Digest>::new(),
            &json,
        ))
        .into(),
    };
    let mut out = header.encode().to_vec();
    out.extend_from_slice(&json);
    out.resize(len.max(out.len()), 0);
    out
}

/// Sizes and offsets a forger would try: small, aligned, near the ends of `u64`.
fn forged_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        0u64..20_000,
        (0u64..8).prop_map(|n| n * ALIGN),
        (0u64..4096).prop_map(|n| u64::MAX - n),
        any::<u64>(),
    ]
}

proptest! {
    // Bounded for CI: proptest's default 256 cases (`PROPTEST_CASES` raises it).

    #[test]
    fn a_changed_byte_is_caught_or_changes_nothing(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..), 1..4),
    ) {
        let bytes = fixture();
        let orig = Payload::parse(bytes).unwrap();
        let mut bad = bytes.to_vec();
        for (at, x) in flips {
            bad[at.index(bytes.len())] ^= x;
        }
        if let Ok(p) = Payload::parse(&bad).and_then(|p| p.verify().map(|()| p)) {
            // Only padding can change unnoticed: what the runtime uses is the same.
            prop_assert_eq!(&p.manifest, &orig.manifest);
            for kind in PartKind::ALL {
                prop_assert!(p.part_bytes(kind) == orig.part_bytes(kind), "{kind:?}");
            }
        }
    }

    #[test]
    fn truncations_and_garbage_are_errors_not_panics(
        cut in any::<prop::sample::Index>(),
        garbage in proptest::collection::vec(any::<u8>(), 0..2048),
        keep_header in any::<bool>(),
    ) {
        let bytes = fixture();
        let at = cut.index(bytes.len());
        prop_assert!(Payload::parse(&bytes[..at]).is_err());
        let mut v = if keep_header { bytes[..HEADER_LEN].to_vec() } else { Vec::new() };
        v.extend(garbage);
        let _ = Payload::parse(&v).map(|p| p.verify());
    }

    #[test]
    fn a_forged_manifest_is_refused_or_stays_in_bounds(
        parts in proptest::array::uniform3((forged_u64(), forged_u64(), forged_u64())),
        len in prop_oneof![Just(0usize), 0usize..64 * 1024],
    ) {
        let bytes = fixture();
        let mut m = Payload::parse(bytes).unwrap().manifest;
        for (kind, (offset, length, decoded)) in PartKind::ALL.into_iter().zip(parts) {
            let part = match kind {
                PartKind::Kernel => &mut m.kernel,
                PartKind::Initrd => &mut m.initrd,
                PartKind::Root => &mut m.root,
            };
            part.offset = offset;
            part.length = length;
            part.decoded_length = decoded;
        }
        let forged = reseal(&m, if len == 0 { bytes.len() } else { len });
        if let Ok(p) = Payload::parse(&forged) {
            let mut ranges: Vec<(u64, u64)> = Vec::new();
            for kind in PartKind::ALL {
                let part = p.manifest.part(kind);
                let end = part.offset.checked_add(part.length);
                prop_assert!(end.is_some_and(|e| e <= p.len()), "{kind:?}");
                prop_assert_eq!(p.part_bytes(kind).len() as u64, part.length);
                ranges.push((part.offset, part.offset + part.length));
            }
            ranges.sort();
            prop_assert!(ranges.windows(2).all(|w| w[0].1 <= w[1].0), "overlap: {ranges:?}");
        }
    }
}

#[test]
fn a_kernel_that_decodes_to_the_wrong_bytes_never_enters_the_cache() {
    // Stored bytes match their hash, but the decoded kernel does not match its own:
    // a forged manifest; extraction must fail and leave no entry.
    let i = inputs(4096);
    let mut bytes = payload_bytes(&i);
    let p = Payload::parse(&bytes).unwrap();
    let mut m = p.manifest.clone();
    m.kernel.decoded_sha256 = "0".repeat(64);
    let json = serde_json::to_vec(&m).unwrap();
    let old_len = m.kernel.offset as usize - HEADER_LEN;
    assert!(json.len() <= old_len);
    let header = cast_payload::format::Header {
        format: cast_payload::format::FORMAT_VERSION,
        manifest_len: json.len() as u64,
        total_len: bytes.len() as u64,
        manifest_sha256: <sha2::Sha256 as sha2::Digest>::digest(&json).into(),
    };
    bytes[..HEADER_LEN].copy_from_slice(&header.encode());
    bytes[HEADER_LEN..HEADER_LEN + json.len()].copy_from_slice(&json);
    let p = Payload::parse(&bytes).unwrap();
    p.verify().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let err = extract_kernel(&p, cache.path()).unwrap_err();
    assert!(
        matches!(err, CacheError::Payload(ReadError::Hash(PartKind::Kernel))),
        "{err}"
    );
    assert_eq!(
        cache_files(cache.path()),
        [format!("{}.lock", "0".repeat(64))]
    );
}

#[test]
fn same_inputs_give_the_same_payload_and_object_bytes() {
    let i = inputs(6000);
    let (a, b) = (payload_bytes(&i), payload_bytes(&i));
    assert!(a == b, "payloads differ");
    for triple in ["x86_64-unknown-linux-gnu", "aarch64-apple-darwin"] {
        let target = ObjectTarget::from_triple(triple).unwrap();
        let oa = build_object(&a, target).write().unwrap();
        let ob = build_object(&b, target).write().unwrap();
        assert!(oa == ob, "{triple}: objects differ");
    }
}
