//! [`PayloadBuilder`]: kernel, initrd, root image, run config and VM defaults →
//! payload bytes, streamed.
//!
//! The root image can be gigabytes, so it is never held in memory: it is hashed in a
//! first pass (its manifest entry must come before it) and copied in a second. The
//! kernel is compressed with zstd into memory (a vmlinux is ~50 MB, ~10 MB
//! compressed). The initrd is given as bytes.
//!
//! High zstd levels take most of a minute for a kernel and a build script runs on
//! every rebuild, so the compressed kernel is cached
//! (`<cache>/payload/zstd/<vmlinux sha256>-<level>.zst`). A hit is decompressed and
//! compared with the vmlinux before use (~0.2 s), so a damaged entry is never
//! embedded. The cache is best-effort: when it cannot be written, the kernel is
//! compressed every time.

use crate::format::{
    align_up, hex, Encoding, Header, Manifest, Part, VmDefaults, ALIGN, FORMAT_VERSION, HEADER_LEN,
};
use crate::BuildError;
use cast_core::RunConfig;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// The zstd level used for the kernel unless [`PayloadBuilder::zstd_level`] says otherwise.
pub const DEFAULT_ZSTD_LEVEL: i32 = 19;

/// Collects the parts of a payload and writes it.
///
/// ```no_run
/// use cast_core::RunConfig;
/// use cast_payload::{PayloadBuilder, VmDefaults};
/// let bundle = cast_kernel::KernelBundle::locate(None).unwrap();
/// let initrd: Vec<u8> = Vec::new(); // cast_guest::initrd::build(&bundle)
/// PayloadBuilder::new(RunConfig::default(), VmDefaults::default())
///     .kernel(bundle.kernel_path(), bundle.manifest.release.clone())
///     .initrd(initrd)
///     .root_image("rootfs.erofs")
///     .write_file("payload.bin".as_ref())
///     .unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct PayloadBuilder {
    run: RunConfig,
    vm: VmDefaults,
    kernel: Option<PathBuf>,
    kernel_release: Option<String>,
    initrd: Option<Vec<u8>>,
    root: Option<PathBuf>,
    zstd_level: i32,
}

impl PayloadBuilder {
    /// Starts a payload that runs `run` with VM defaults `vm`.
    pub fn new(run: RunConfig, vm: VmDefaults) -> Self {
        PayloadBuilder {
            run,
            vm,
            kernel: None,
            kernel_release: None,
            initrd: None,
            root: None,
            zstd_level: DEFAULT_ZSTD_LEVEL,
        }
    }

    /// The uncompressed kernel (`vmlinux`) and its release, if known.
    pub fn kernel(mut self, vmlinux: impl Into<PathBuf>, release: Option<String>) -> Self {
        self.kernel = Some(vmlinux.into());
        self.kernel_release = release;
        self
    }

    /// The initrd bytes (`cast_guest::initrd::build(&bundle)`).
    pub fn initrd(mut self, bytes: Vec<u8>) -> Self {
        self.initrd = Some(bytes);
        self
    }

    /// The root image file (EROFS; padded with zeros to a multiple of 512 if needed).
    pub fn root_image(mut self, path: impl Into<PathBuf>) -> Self {
        self.root = Some(path.into());
        self
    }

    /// The zstd level for the kernel (1–22; default [`DEFAULT_ZSTD_LEVEL`]).
    pub fn zstd_level(mut self, level: i32) -> Self {
        self.zstd_level = level;
        self
    }

    /// Writes the payload to `path` (created or truncated); returns its manifest.
    pub fn write_file(&self, path: &Path) -> Result<Manifest, BuildError> {
        let io_err = |source| BuildError::Io {
            what: format!("writing {}", path.display()),
            source,
        };
        let file = File::create(path).map_err(io_err)?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        let manifest = self.write_to(&mut out)?;
        let file = out.into_inner().map_err(|e| io_err(e.into_error()))?;
        file.sync_all().map_err(io_err)?;
        Ok(manifest)
    }

    /// Writes the payload to `out`, front to back; returns its manifest.
    pub fn write_to(&self, out: &mut impl Write) -> Result<Manifest, BuildError> {
        let missing = |what| BuildError::Missing(what);
        let vmlinux = self.kernel.as_deref().ok_or(missing("kernel"))?;
        let initrd = self.initrd.as_deref().ok_or(missing("initrd"))?;
        let root = self.root.as_deref().ok_or(missing("root image"))?;

        let kernel = compressed_kernel(vmlinux, self.zstd_level)?;
        let (root_len, root_sha) = hash_file(root)?;
        if root_len == 0 {
            return Err(BuildError::Input {
                path: root.to_owned(),
                why: "the root image is empty".into(),
            });
        }
        let root_padded = root_len.div_ceil(512) * 512;
        let first_pass = root_sha.clone().finalize();
        let root_sha = if root_padded == root_len {
            root_sha
        } else {
            // The hash covers the padding too: it is what the guest reads.
            let mut h = root_sha;
            h.update(vec![0u8; (root_padded - root_len) as usize]);
            h
        };
        let root_sha = hex(&root_sha.finalize());

        let initrd_sha = hex(&Sha256::digest(initrd));
        let raw = |length: u64, sha: &str| Part {
            offset: 0,
            length,
            encoding: Encoding::Raw,
            sha256: sha.to_owned(),
            decoded_length: length,
            decoded_sha256: sha.to_owned(),
        };
        let mut manifest = Manifest {
            format: FORMAT_VERSION,
            builder: concat!("cast-payload ", env!("CARGO_PKG_VERSION")).into(),
            kernel_release: self.kernel_release.clone(),
            kernel: Part {
                offset: 0,
                length: kernel.data.len() as u64,
                encoding: Encoding::Zstd,
                sha256: hex(&Sha256::digest(&kernel.data)),
                decoded_length: kernel.decoded_length,
                decoded_sha256: kernel.decoded_sha256.clone(),
            },
            initrd: raw(initrd.len() as u64, &initrd_sha),
            root: raw(root_padded, &root_sha),
            run: self.run.clone(),
            vm: self.vm.clone(),
        };
        // Offsets depend on the manifest's length, which depends on the offsets'
        // digits: iterate until stable (twice at most in practice).
        let mut json = Vec::new();
        for _ in 0..8 {
            json = serde_json::to_vec(&manifest).expect("a manifest always serialises");
            let mut at = align_up(HEADER_LEN as u64 + json.len() as u64).expect("small");
            let before = (
                manifest.kernel.offset,
                manifest.initrd.offset,
                manifest.root.offset,
            );
            for part in [
                &mut manifest.kernel,
                &mut manifest.initrd,
                &mut manifest.root,
            ] {
                part.offset = at;
                at = align_up(at + part.length).ok_or(BuildError::TooLarge)?;
            }
            if before
                == (
                    manifest.kernel.offset,
                    manifest.initrd.offset,
                    manifest.root.offset,
                )
            {
                break;
            }
        }
        let total_len = manifest.root.offset + manifest.root.length;
        let header = Header {
            format: FORMAT_VERSION,
            manifest_len: json.len() as u64,
            total_len,
            manifest_sha256: Sha256::digest(&json).into(),
        };

        let mut w = Counting { out, written: 0 };
        let io = |source| BuildError::Io {
            what: "writing the payload".into(),
            source,
        };
        w.write_all(&header.encode()).map_err(io)?;
        w.write_all(&json).map_err(io)?;
        w.pad_to(manifest.kernel.offset).map_err(io)?;
        w.write_all(&kernel.data).map_err(io)?;
        w.pad_to(manifest.initrd.offset).map_err(io)?;
        w.write_all(initrd).map_err(io)?;
        w.pad_to(manifest.root.offset).map_err(io)?;
        let (copied, second_pass) = copy_file(root, &mut w)?;
        if copied != root_len || second_pass != first_pass {
            return Err(BuildError::Input {
                path: root.to_owned(),
                why: "it changed while the payload was being written".into(),
            });
        }
        w.pad_to(total_len).map_err(io)?;
        w.flush().map_err(io)?;
        Ok(manifest)
    }
}

/// A writer that knows how much it has written, to pad to part offsets.
struct Counting<'a, W: Write> {
    out: &'a mut W,
    written: u64,
}

impl<W: Write> Counting<'_, W> {
    fn pad_to(&mut self, offset: u64) -> io::Result<()> {
        const ZEROS: [u8; ALIGN as usize] = [0; ALIGN as usize];
        while self.written < offset {
            let n = (offset - self.written).min(ALIGN) as usize;
            self.write_all(&ZEROS[..n])?;
        }
        Ok(())
    }
}

impl<W: Write> Write for Counting<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

fn open(path: &Path) -> Result<File, BuildError> {
    File::open(path).map_err(|source| BuildError::Io {
        what: format!("opening {}", path.display()),
        source,
    })
}

/// The length and running SHA-256 of a file.
fn hash_file(path: &Path) -> Result<(u64, Sha256), BuildError> {
    let mut hasher = Sha256::new();
    let len = stream(path, "reading", |chunk| {
        hasher.update(chunk);
        Ok(())
    })?;
    Ok((len, hasher))
}

/// Copies a file into `out`; returns its length and the SHA-256 of what was copied.
fn copy_file(
    path: &Path,
    out: &mut impl Write,
) -> Result<(u64, sha2::digest::Output<Sha256>), BuildError> {
    let mut hasher = Sha256::new();
    let len = stream(path, "copying into the payload", |chunk| {
        hasher.update(chunk);
        out.write_all(chunk)
    })?;
    Ok((len, hasher.finalize()))
}

/// Feeds a file to `each` in 1 MiB chunks; returns its length.
fn stream(
    path: &Path,
    doing: &str,
    mut each: impl FnMut(&[u8]) -> io::Result<()>,
) -> Result<u64, BuildError> {
    let mut file = open(path)?;
    let fail = |source| BuildError::Io {
        what: format!("{doing} {}", path.display()),
        source,
    };
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => return Ok(len),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(fail(e)),
        };
        each(&buf[..n]).map_err(fail)?;
        len += n as u64;
    }
}

/// The kernel part's bytes and what they decode to.
#[derive(Debug, Clone)]
pub struct CompressedKernel {
    /// One zstd frame.
    pub data: Vec<u8>,
    /// Length of the vmlinux.
    pub decoded_length: u64,
    /// SHA-256 of the vmlinux, lowercase hex.
    pub decoded_sha256: String,
}

/// Compresses `vmlinux` at `level`, or takes the result from the cache.
pub fn compressed_kernel(vmlinux: &Path, level: i32) -> Result<CompressedKernel, BuildError> {
    let raw = std::fs::read(vmlinux).map_err(|source| BuildError::Io {
        what: format!("reading the kernel {}", vmlinux.display()),
        source,
    })?;
    let sha = hex(&Sha256::digest(&raw));
    let entry = cache_entry(&sha, level);
    if let Some(data) = entry.as_deref().and_then(|e| std::fs::read(e).ok()) {
        if decodes_to(&data, &raw) {
            return Ok(CompressedKernel {
                data,
                decoded_length: raw.len() as u64,
                decoded_sha256: sha,
            });
        }
    }
    let data = zstd::bulk::compress(&raw, level).map_err(|source| BuildError::Io {
        what: format!("compressing the kernel at zstd level {level}"),
        source,
    })?;
    if let Some(entry) = entry {
        let _ = cast_core::cache_entry::write_file(&entry, &data); // best-effort
    }
    Ok(CompressedKernel {
        data,
        decoded_length: raw.len() as u64,
        decoded_sha256: sha,
    })
}

fn cache_entry(sha: &str, level: i32) -> Option<PathBuf> {
    cast_core::CacheRoot::from_env().map(|c| c.payload_zstd().join(format!("{sha}-{level}.zst")))
}

fn decodes_to(data: &[u8], raw: &[u8]) -> bool {
    zstd::bulk::decompress(data, raw.len()).is_ok_and(|d| d == raw)
}
