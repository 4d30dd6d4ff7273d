//! Signing for macOS, tested on Linux: a Mach-O executable made with apple-codesign's
//! builder is signed ad hoc by `cargo cast sign` (the step `cargo cast build` runs
//! for Apple targets) and its signature carries the virtualization and hypervisor
//! entitlements; a file that is not a Mach-O is refused with a clear error.

use apple_codesign::macho_builder::MachOBuilder;
use apple_codesign::MachFile;
use cast_tests::{cargo_cast, output_of};
use std::process::Command;

const MH_EXECUTE: u32 = 2;

fn entitlements(data: &[u8]) -> Vec<String> {
    MachFile::parse(data)
        .unwrap()
        .iter_macho()
        .map(|m| {
            let sig = m.code_signature().unwrap().expect("a code signature");
            sig.entitlements()
                .unwrap()
                .expect("entitlements")
                .as_str()
                .to_owned()
        })
        .collect()
}

#[test]
fn macho_executables_get_the_virtualization_entitlements() {
    let dir = tempfile::tempdir().unwrap();
    for (name, builder) in [
        ("tool-arm64", MachOBuilder::new_aarch64(MH_EXECUTE)),
        ("tool-x86_64", MachOBuilder::new_x86_64(MH_EXECUTE)),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, builder.write_macho().unwrap()).unwrap();
        let unsigned = std::fs::read(&path).unwrap();
        assert!(MachFile::parse(&unsigned)
            .unwrap()
            .iter_macho()
            .all(|m| m.code_signature().unwrap().is_none()));

        let mut cmd = Command::new(cargo_cast());
        cmd.args(["cast", "sign"]).arg(&path);
        let out = output_of(cmd, Vec::new());
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(out.stderr.contains("Signed"), "{}", out.stderr);

        let signed = std::fs::read(&path).unwrap();
        let ents = entitlements(&signed);
        assert_eq!(ents.len(), 1);
        for key in [
            "com.apple.security.virtualization",
            "com.apple.security.hypervisor",
        ] {
            assert!(ents[0].contains(key), "{name}: {}", ents[0]);
        }
        // `--show` prints them back.
        let mut cmd = Command::new(cargo_cast());
        cmd.args(["cast", "sign", "--show"]).arg(&path);
        let out = output_of(cmd, Vec::new());
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(out.stdout_text().contains("com.apple.security.hypervisor"));
    }
}

#[test]
fn non_macho_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("elf");
    std::fs::write(&path, b"\x7fELF not a mach-o").unwrap();
    let mut cmd = Command::new(cargo_cast());
    cmd.args(["cast", "sign"]).arg(&path);
    let out = output_of(cmd, Vec::new());
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("is not a Mach-O"), "{}", out.stderr);
    assert_eq!(std::fs::read(&path).unwrap(), b"\x7fELF not a mach-o");
}
