//! Getting the uncompressed ELF `vmlinux` out of an x86 `bzImage`.
//!
//! The bzImage setup header says where the compressed kernel is (`payload_offset`,
//! `payload_length`, relative to the protected-mode code). The payload's magic says
//! how it is compressed: Debian's cloud kernel uses LZ4 (legacy frame), its generic
//! kernel XZ; zstd is handled too. The result has a PVH entry point, which QEMU boots
//! directly and which starts faster under TCG than the self-decompressing bzImage.

use std::io::{Read, Write};
use std::process::{Command, Stdio};

/// The kernel image could not be turned into a vmlinux.
#[derive(Debug, thiserror::Error)]
pub enum VmlinuxError {
    /// Neither an ELF file nor a bzImage.
    #[error("not a Linux kernel image (neither ELF nor bzImage)")]
    NotAKernel,
    /// The setup header points outside the file.
    #[error("bzImage setup header is inconsistent: payload {offset}+{length} beyond {size} bytes")]
    BadHeader {
        /// Payload offset in the file.
        offset: usize,
        /// Payload length.
        length: usize,
        /// File size.
        size: usize,
    },
    /// A compression this crate does not read.
    #[error("the bzImage payload uses an unsupported compression (magic {0:02x?}); use an LZ4, XZ or zstd kernel, or pass an uncompressed vmlinux")]
    UnsupportedCompression([u8; 4]),
    /// The compressed payload is corrupt.
    #[error("the bzImage payload does not decompress")]
    Corrupt(#[source] Box<dyn std::error::Error + Send + Sync>),
}

const ELF_MAGIC: &[u8] = b"\x7fELF";
const LZ4_LEGACY_MAGIC: [u8; 4] = [0x02, 0x21, 0x4c, 0x18];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
const XZ_MAGIC: [u8; 4] = [0xfd, b'7', b'z', b'X'];
/// Largest block of the legacy LZ4 frame (`lz4 -l`): 8 MiB.
const LZ4_LEGACY_BLOCK: usize = 8 << 20;

/// Returns the ELF vmlinux for a kernel image: an ELF image is returned as is, a
/// bzImage is decompressed.
pub fn extract_vmlinux(image: &[u8]) -> Result<Vec<u8>, VmlinuxError> {
    if image.starts_with(ELF_MAGIC) {
        return Ok(image.to_vec());
    }
    let payload = bzimage_payload(image)?;
    let magic: [u8; 4] = payload
        .get(..4)
        .and_then(|m| m.try_into().ok())
        .ok_or(VmlinuxError::NotAKernel)?;
    let corrupt = |e: Box<dyn std::error::Error + Send + Sync>| VmlinuxError::Corrupt(e);
    let out = match magic {
        LZ4_LEGACY_MAGIC => lz4_legacy(&payload[4..]).map_err(corrupt)?,
        ZSTD_MAGIC => {
            let mut out = Vec::new();
            zstd::stream::read::Decoder::new(payload)
                .and_then(|mut d| d.read_to_end(&mut out))
                .map_err(|e| corrupt(e.into()))?;
            out
        }
        XZ_MAGIC => xz(payload).map_err(corrupt)?,
        other => return Err(VmlinuxError::UnsupportedCompression(other)),
    };
    if !out.starts_with(ELF_MAGIC) {
        return Err(corrupt(
            "the decompressed payload is not an ELF file".into(),
        ));
    }
    Ok(out)
}

/// The compressed kernel inside a bzImage, from the boot protocol's setup header.
fn bzimage_payload(image: &[u8]) -> Result<&[u8], VmlinuxError> {
    if image.get(0x202..0x206) != Some(b"HdrS") {
        return Err(VmlinuxError::NotAKernel);
    }
    let u32_at = |off: usize| u32::from_le_bytes(image[off..off + 4].try_into().unwrap()) as usize;
    let setup_sects = match image[0x1f1] {
        0 => 4,
        n => n as usize,
    };
    let offset = (setup_sects + 1) * 512 + u32_at(0x248);
    let length = u32_at(0x24c);
    image
        .get(offset..offset.saturating_add(length))
        .ok_or(VmlinuxError::BadHeader {
            offset,
            length,
            size: image.len(),
        })
}

/// Decodes an XZ stream with the `xz` tool: kernels use the x86 BCJ filter, which no
/// pure-Rust XZ decoder reads; `--single-stream` ignores the size word the kernel
/// build appends.
fn xz(payload: &[u8]) -> Result<Vec<u8>, Box<dyn std::error::Error + Send + Sync>> {
    let mut child = Command::new("xz")
        .args(["--decompress", "--stdout", "--single-stream"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run xz ({e}): install xz-utils"))?;
    let mut stdin = child.stdin.take().expect("piped");
    let output = std::thread::scope(|s| {
        s.spawn(move || stdin.write_all(payload));
        child.wait_with_output()
    })?;
    if !output.status.success() {
        return Err(format!("xz: {}", String::from_utf8_lossy(&output.stderr).trim()).into());
    }
    Ok(output.stdout)
}

/// Decodes the legacy LZ4 frame (after its magic): blocks of `u32` size + data. The
/// kernel build appends the decompressed size as a final 4-byte word.
fn lz4_legacy(mut input: &[u8]) -> Result<Vec<u8>, Box<dyn std::error::Error + Send + Sync>> {
    let mut out = Vec::new();
    let mut block = vec![0u8; LZ4_LEGACY_BLOCK];
    while input.len() > 4 {
        let size = u32::from_le_bytes(input[..4].try_into().unwrap()) as usize;
        if size == u32::from_le_bytes(LZ4_LEGACY_MAGIC) as usize {
            input = &input[4..]; // concatenated frame
            continue;
        }
        let data = input.get(4..4 + size).ok_or("truncated LZ4 block")?;
        let n = lz4_flex::block::decompress_into(data, &mut block)?;
        out.extend_from_slice(&block[..n]);
        input = &input[4 + size..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elf_passes_through_and_garbage_is_refused() {
        let elf = b"\x7fELF\x02\x01\x01rest".to_vec();
        assert_eq!(extract_vmlinux(&elf).unwrap(), elf);
        assert!(matches!(
            extract_vmlinux(&[0u8; 4096]),
            Err(VmlinuxError::NotAKernel)
        ));
    }

    #[test]
    fn lz4_legacy_frames_decode() {
        let data: Vec<u8> = (0..100_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let block = lz4_flex::block::compress(&data);
        let mut frame = (block.len() as u32).to_le_bytes().to_vec();
        frame.extend_from_slice(&block);
        frame.extend_from_slice(&(data.len() as u32).to_le_bytes());
        assert_eq!(lz4_legacy(&frame).unwrap(), data);
        assert!(lz4_legacy(&frame[..frame.len() - 10]).is_err());
    }
}
