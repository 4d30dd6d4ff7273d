//! The payload as a relocatable object file the linker puts into the executable, and
//! the build-script helper that writes it into `OUT_DIR` ([`link_payload`]).
//!
//! One section ([`ELF_SECTION`] / `__TEXT,`[`MACHO_SECTION`]), aligned to 4 KiB,
//! holds the payload; the global symbol [`PAYLOAD_SYMBOL`] is defined at its start
//! with the payload's size, and [`LEN_SYMBOL`] is a little-endian `u64` holding that
//! size in the read-only data section. The binary references only the length (see
//! `cast_runner::casted_main!`) and reads the payload from its own file.
//!
//! In ELF the payload section is not loaded (no `SHF_ALLOC`, like debug info):
//! linkers place such sections after everything the program needs to run, so a
//! truncated or damaged file still runs the runtime's own checks instead of
//! crashing in missing code, and the payload never occupies the process's address
//! space. Linkers keep non-loaded sections through garbage collection. In Mach-O
//! the section stays in `__TEXT`, marked `S_ATTR_NO_DEAD_STRIP`.
//!
//! The `object` writer keeps section data in memory; the payload is handed to it as
//! a read-only memory map of the payload file (`Mmap`), so a
//! multi-gigabyte root image never lands on the heap: the writer streams it from
//! the page cache to the output.
//!
//! `cargo:rustc-link-arg-bins` reaches only the package's binaries (not its tests or
//! examples), which is why only the binary may reference the payload symbols: the
//! generated `main.rs` does, through `cast_runner::casted_main!()`. The helper
//! prints no `rerun-if-changed` lines: the caller knows its inputs.

use crate::builder::PayloadBuilder;
use crate::format::{Manifest, ALIGN};
use crate::BuildError;
use object::write::{Object, SectionFlags, StandardSection, Symbol, SymbolSection};
use object::SymbolScope;
use object::{Architecture, BinaryFormat, Endianness, SectionKind, SymbolFlags, SymbolKind};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// The symbol at the payload's first byte (Mach-O adds its leading underscore).
pub const PAYLOAD_SYMBOL: &str = "CAST_PAYLOAD";
/// The `u64` symbol holding the payload's length.
pub const LEN_SYMBOL: &str = "CAST_PAYLOAD_LEN";
/// The payload's section in ELF objects and executables.
pub const ELF_SECTION: &str = ".cast_payload";
/// The payload's section (in segment `__TEXT`) in Mach-O objects and executables.
pub const MACHO_SECTION: &str = "__cast_payload";

/// Object file flavours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectFormat {
    /// Linux and other ELF systems.
    Elf,
    /// macOS.
    MachO,
}

/// CPU architectures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// x86-64.
    X86_64,
    /// 64-bit Arm (`aarch64`, Apple's `arm64`).
    Aarch64,
}

/// What kind of object file to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectTarget {
    /// The file format.
    pub format: ObjectFormat,
    /// The architecture.
    pub arch: Arch,
}

impl ObjectTarget {
    /// From a Rust target triple (`x86_64-unknown-linux-gnu`, `aarch64-apple-darwin`, …).
    pub fn from_triple(triple: &str) -> Result<Self, BuildError> {
        let unsupported = || BuildError::UnsupportedTarget(triple.to_owned());
        let arch = match triple.split('-').next() {
            Some("x86_64") => Arch::X86_64,
            Some("aarch64" | "arm64") => Arch::Aarch64,
            _ => return Err(unsupported()),
        };
        let format = if triple.contains("-apple-") {
            ObjectFormat::MachO
        } else if triple.contains("-linux") {
            ObjectFormat::Elf
        } else {
            return Err(unsupported());
        };
        Ok(ObjectTarget { format, arch })
    }
}

/// Writes an object file holding the payload file `payload` to `out`.
pub fn write_object(payload: &Path, target: ObjectTarget, out: &Path) -> Result<(), BuildError> {
    let io = |what: String| move |source| BuildError::Io { what, source };
    let file = File::open(payload).map_err(io(format!("opening {}", payload.display())))?;
    let map = Mmap::map(&file).map_err(io(format!("mapping {}", payload.display())))?;
    let obj = build_object(map.as_slice(), target);
    let mut w = BufWriter::with_capacity(
        1 << 20,
        File::create(out).map_err(io(format!("creating {}", out.display())))?,
    );
    obj.write_stream(&mut w)
        .map_err(|e| BuildError::Object(e.to_string()))?;
    w.flush()
        .map_err(io(format!("writing {}", out.display())))?;
    Ok(())
}

/// The object for `payload` (borrowed, not copied).
pub fn build_object(payload: &[u8], target: ObjectTarget) -> Object<'_> {
    let (format, arch) = match target.format {
        ObjectFormat::Elf => (BinaryFormat::Elf, target.arch),
        ObjectFormat::MachO => (BinaryFormat::MachO, target.arch),
    };
    let architecture = match arch {
        Arch::X86_64 => Architecture::X86_64,
        Arch::Aarch64 => Architecture::Aarch64,
    };
    let mut obj = Object::new(format, architecture, Endianness::Little);
    let (segment, name) = match target.format {
        ObjectFormat::Elf => (&b""[..], ELF_SECTION.as_bytes()),
        ObjectFormat::MachO => (&b"__TEXT"[..], MACHO_SECTION.as_bytes()),
    };
    if target.format == ObjectFormat::MachO {
        obj.set_macho_build_version(macho_build_version(arch));
    }
    if target.format == ObjectFormat::Elf {
        // No executable stack: say so, as compilers do.
        obj.add_section(Vec::new(), b".note.GNU-stack".to_vec(), SectionKind::Other);
    }
    let kind = match target.format {
        ObjectFormat::Elf => SectionKind::Other, // SHT_PROGBITS without SHF_ALLOC
        ObjectFormat::MachO => SectionKind::ReadOnlyData,
    };
    let section = obj.add_section(segment.to_vec(), name.to_vec(), kind);
    obj.section_mut(section).set_data(payload, ALIGN);
    if target.format == ObjectFormat::MachO {
        obj.section_mut(section).flags = SectionFlags::MachO {
            flags: object::macho::S_REGULAR | object::macho::S_ATTR_NO_DEAD_STRIP,
        };
    }
    obj.add_symbol(Symbol {
        name: PAYLOAD_SYMBOL.as_bytes().to_vec(),
        value: 0,
        size: payload.len() as u64,
        kind: SymbolKind::Data,
        scope: SymbolScope::Linkage,
        weak: false,
        section: SymbolSection::Section(section),
        flags: SymbolFlags::None,
    });
    let len = obj.add_symbol(Symbol {
        name: LEN_SYMBOL.as_bytes().to_vec(),
        value: 0,
        size: 0,
        kind: SymbolKind::Data,
        scope: SymbolScope::Linkage,
        weak: false,
        section: SymbolSection::Undefined,
        flags: SymbolFlags::None,
    });
    let rodata = obj.section_id(StandardSection::ReadOnlyData);
    obj.add_symbol_data(len, rodata, &(payload.len() as u64).to_le_bytes(), 8);
    obj
}

/// File names used in `OUT_DIR`.
pub const OBJECT_FILE: &str = "cast-payload.o";
const PAYLOAD_FILE: &str = "cast-payload.bin";

/// What [`link_payload`] produced.
#[derive(Debug, Clone)]
pub struct Linked {
    /// The object file (in `OUT_DIR`).
    pub object: PathBuf,
    /// The payload's manifest.
    pub manifest: Manifest,
    /// The payload's length in bytes.
    pub payload_len: u64,
}

/// From a build script: writes the payload for `TARGET` into `OUT_DIR`, and prints
/// `cargo:rustc-link-arg-bins=<object>`.
///
/// ```no_run
/// // build.rs
/// use cast_core::RunConfig;
/// use cast_payload::{PayloadBuilder, VmDefaults};
/// let bundle = cast_kernel::KernelBundle::locate(None).unwrap();
/// let initrd: Vec<u8> = Vec::new(); // cast_guest::initrd::build(&bundle)
/// let builder = PayloadBuilder::new(RunConfig::default(), VmDefaults::default())
///     .kernel(bundle.kernel_path(), bundle.manifest.release.clone())
///     .initrd(initrd)
///     .root_image("rootfs.erofs");
/// cast_payload::link_payload(&builder).unwrap();
/// ```
pub fn link_payload(builder: &PayloadBuilder) -> Result<Linked, BuildError> {
    let env = |name: &'static str| std::env::var_os(name).ok_or(BuildError::NotInBuildScript(name));
    let out_dir = PathBuf::from(env("OUT_DIR")?);
    let target = env("TARGET")?;
    let target = ObjectTarget::from_triple(&target.to_string_lossy())?;
    let linked = write_payload_object(builder, target, &out_dir)?;
    println!("cargo:rustc-link-arg-bins={}", linked.object.display());
    Ok(linked)
}

/// Writes `<dir>/cast-payload.o` for `target` (through a temporary payload file in
/// `dir`, removed afterwards). The part of [`link_payload`] that needs no Cargo.
pub fn write_payload_object(
    builder: &PayloadBuilder,
    target: ObjectTarget,
    dir: &Path,
) -> Result<Linked, BuildError> {
    let payload = dir.join(PAYLOAD_FILE);
    let object = dir.join(OBJECT_FILE);
    let manifest = builder.write_file(&payload)?;
    let result = write_object(&payload, target, &object);
    let payload_len = std::fs::metadata(&payload).map(|m| m.len()).unwrap_or(0);
    let _ = std::fs::remove_file(&payload);
    result?;
    Ok(Linked {
        object,
        manifest,
        payload_len,
    })
}

fn macho_build_version(arch: Arch) -> object::write::MachOBuildVersion {
    let mut v = object::write::MachOBuildVersion::default();
    v.platform = object::macho::PLATFORM_MACOS;
    // 10.12 / 11.0 encoded as xxxx.yy.zz nibbles: the oldest Rust supports per arch.
    v.minos = match arch {
        Arch::X86_64 => 0x000a_0c00,
        Arch::Aarch64 => 0x000b_0000,
    };
    v.sdk = v.minos;
    v
}

/// A read-only, private memory map of a whole file, unmapped on drop. Only used
/// on a payload file this crate has just written and nothing else modifies.
#[derive(Debug)]
struct Mmap {
    ptr: *mut libc::c_void,
    len: usize,
}

impl Mmap {
    /// Maps all of `file` read-only. An empty file maps to an empty slice.
    fn map(file: &File) -> io::Result<Mmap> {
        let len = usize::try_from(file.metadata()?.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file too large to map"))?;
        if len == 0 {
            return Ok(Mmap {
                ptr: std::ptr::null_mut(),
                len: 0,
            });
        }
        // SAFETY: a fresh private read-only mapping of an open fd; the kernel picks the
        // address; the result is checked against MAP_FAILED before use.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mmap { ptr, len })
    }

    /// The file's bytes.
    fn as_slice(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: `ptr` is a live mapping of `len` readable bytes until drop, and the
        // returned borrow cannot outlive `self`. The file is not modified while mapped
        // (see the module docs).
        unsafe { std::slice::from_raw_parts(self.ptr.cast::<u8>(), self.len) }
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        if self.len != 0 {
            // SAFETY: unmaps exactly the mapping made in `map`; no borrow outlives self.
            unsafe { libc::munmap(self.ptr, self.len) };
        }
    }
}
