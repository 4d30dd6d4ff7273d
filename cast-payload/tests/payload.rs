//! Payload round trips: builder → bytes → reader, damage detection, object files
//! (ELF and Mach-O written and read back), and the extraction cache.

use cast_core::{RunConfig, VmUpdate};
use cast_payload::cache::{extract_kernel, kernel_entry, CacheError};
use cast_payload::format::{ALIGN, HEADER_LEN};
use cast_payload::objfile::{build_object, Arch, LEN_SYMBOL, PAYLOAD_SYMBOL};
use cast_payload::{
    ObjectFormat, ObjectTarget, PartKind, Payload, PayloadBuilder, ReadError, VmDefaults,
};
use object::{Object, ObjectSection, ObjectSymbol};
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
    assert_eq!(Payload::parse(&longer).unwrap().bytes().len(), bytes.len());
}

#[test]
fn hostile_manifests_are_rejected_not_trusted() {
    let i = inputs(4096);
    let bytes = payload_bytes(&i);
    let p = Payload::parse(&bytes).unwrap();
    let reseal = |m: &cast_payload::Manifest| {
        // A forged manifest with a correct header hash: only the checks stop it.
        let json = serde_json::to_vec(m).unwrap();
        let header = cast_payload::format::Header {
            format: cast_payload::format::FORMAT_VERSION,
            manifest_len: json.len() as u64,
            total_len: bytes.len() as u64,
            manifest_sha256: sha2::Digest::finalize(sha2::Digest::chain_update(
                <sha2::Sha256 as sha2::Digest>::new(),
                &json,
            ))
            .into(),
        };
        let mut out = header.encode().to_vec();
        out.extend_from_slice(&json);
        out.resize(bytes.len(), 0);
        out
    };
    let mut m = p.manifest.clone();
    m.root.length = u64::MAX - 10;
    assert!(matches!(
        Payload::parse(&reseal(&m)),
        Err(ReadError::Damaged(_))
    ));
    let mut m = p.manifest.clone();
    m.root.offset = 1;
    assert!(Payload::parse(&reseal(&m)).is_err());
    let mut m = p.manifest.clone();
    m.kernel.decoded_length = u64::MAX;
    assert!(Payload::parse(&reseal(&m)).is_err());
    let mut m = p.manifest.clone();
    m.initrd.offset = m.kernel.offset; // overlapping parts
    assert!(Payload::parse(&reseal(&m)).is_err());
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
    if target.format == ObjectFormat::MachO {
        assert_eq!(section.segment_name().unwrap(), Some("__TEXT"));
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

#[test]
fn garbage_and_truncations_never_panic() {
    let i = inputs(4096);
    let bytes = payload_bytes(&i);
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for len in (0..bytes.len()).step_by(997) {
        let _ = Payload::parse(&bytes[..len]).map(|p| p.verify());
    }
    for _ in 0..2000 {
        let mut v = bytes[..4096].to_vec();
        let n = (next() % 8) as usize + 1;
        for _ in 0..n {
            let at = (next() % 4096) as usize;
            v[at] = next() as u8;
        }
        let _ = Payload::parse(&v).map(|p| p.verify());
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
