//! The payload format: a fixed header, a JSON manifest, then the parts, each aligned
//! to [`ALIGN`] from the payload's start.
//!
//! ```text
//! offset 0   header (HEADER_LEN bytes, little-endian):
//!            magic "CASTPAYL" | format u32 | reserved u32 (0) | manifest length u64
//!            | total payload length u64 | SHA-256 of the manifest [32]
//! 64         manifest: JSON, see [`Manifest`]
//! 4096·k     kernel part (zstd-compressed vmlinux)
//! 4096·k     initrd part (newc cpio, uncompressed)
//! 4096·k     root image part (raw EROFS, length a multiple of 512; read in place)
//! ```
//!
//! Gaps between parts are zero. The manifest names every part's offset, length,
//! encoding and SHA-256 (of the stored bytes, and of the decoded bytes), the run
//! config and the VM defaults baked in at build time.

use cast_core::{RunConfig, VmUpdate};
use serde::{Deserialize, Serialize};

/// The first 8 bytes of every payload.
pub const MAGIC: [u8; 8] = *b"CASTPAYL";
/// The payload format this crate writes and reads. 2: the baked VM settings are
/// `cast_core::VmUpdate` (timeouts as durations, settings not given left out).
pub const FORMAT_VERSION: u32 = 2;
/// Length of the fixed header.
pub const HEADER_LEN: usize = 64;
/// Parts start at multiples of this (from the payload's start); the object file's
/// payload section is aligned to it too.
pub const ALIGN: u64 = 4096;
/// The largest manifest a reader accepts.
pub const MAX_MANIFEST_LEN: u64 = 1 << 20;
/// The largest decoded kernel a reader accepts.
pub const MAX_KERNEL_LEN: u64 = 1 << 30;

/// The fixed header, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// [`FORMAT_VERSION`] of the writer.
    pub format: u32,
    /// Length of the JSON manifest that follows the header.
    pub manifest_len: u64,
    /// Length of the whole payload, header included.
    pub total_len: u64,
    /// SHA-256 of the manifest bytes.
    pub manifest_sha256: [u8; 32],
}

impl Header {
    /// The header's bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[..8].copy_from_slice(&MAGIC);
        h[8..12].copy_from_slice(&self.format.to_le_bytes());
        h[16..24].copy_from_slice(&self.manifest_len.to_le_bytes());
        h[24..32].copy_from_slice(&self.total_len.to_le_bytes());
        h[32..64].copy_from_slice(&self.manifest_sha256);
        h
    }

    /// Decodes the first [`HEADER_LEN`] bytes; `None` when the magic is wrong or
    /// the reserved field is not zero. Sizes are checked by the reader.
    pub fn decode(bytes: &[u8; HEADER_LEN]) -> Option<Header> {
        let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap());
        let u64_at = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().unwrap());
        if bytes[..8] != MAGIC || u32_at(12) != 0 {
            return None;
        }
        Some(Header {
            format: u32_at(8),
            manifest_len: u64_at(16),
            total_len: u64_at(24),
            manifest_sha256: bytes[32..64].try_into().unwrap(),
        })
    }
}

/// Everything about a payload except the parts' bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT_VERSION`].
    pub format: u32,
    /// What wrote the payload, e.g. `cast-payload 0.1.0`.
    pub builder: String,
    /// The kernel's release (`uname -r` in the guest), if known.
    pub kernel_release: Option<String>,
    /// The guest kernel: zstd-compressed uncompressed vmlinux.
    pub kernel: Part,
    /// The initrd: guest init + modules, a newc cpio archive.
    pub initrd: Part,
    /// The root image, raw, read in place.
    pub root: Part,
    /// What to run and how.
    pub run: RunConfig,
    /// VM defaults baked in at build time (below `CAST_*` variables).
    pub vm: VmDefaults,
}

/// Where one part lives and what it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    /// Offset from the payload's start; a multiple of [`ALIGN`].
    pub offset: u64,
    /// Stored length.
    pub length: u64,
    /// How the stored bytes are encoded.
    pub encoding: Encoding,
    /// SHA-256 of the stored bytes, lowercase hex.
    pub sha256: String,
    /// Length once decoded (equal to `length` for [`Encoding::Raw`]).
    pub decoded_length: u64,
    /// SHA-256 of the decoded bytes (equal to `sha256` for [`Encoding::Raw`]).
    pub decoded_sha256: String,
}

/// How a part's bytes are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// As is.
    Raw,
    /// One zstd frame.
    Zstd,
}

/// Which part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PartKind {
    /// The kernel.
    Kernel,
    /// The initrd.
    Initrd,
    /// The root image.
    Root,
}

impl PartKind {
    /// All parts, in payload order.
    pub const ALL: [PartKind; 3] = [PartKind::Kernel, PartKind::Initrd, PartKind::Root];

    /// Its name in messages.
    pub fn name(self) -> &'static str {
        match self {
            PartKind::Kernel => "kernel",
            PartKind::Initrd => "initrd",
            PartKind::Root => "root image",
        }
    }
}

impl Manifest {
    /// One part's entry.
    pub fn part(&self, kind: PartKind) -> &Part {
        match kind {
            PartKind::Kernel => &self.kernel,
            PartKind::Initrd => &self.initrd,
            PartKind::Root => &self.root,
        }
    }
}

/// What the build baked in besides the run config: the tool's name and the VM
/// settings the build was given (`CAST_*` variables override them at run time;
/// settings not given keep the runtime's defaults).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct VmDefaults {
    /// The tool's name: message prefix, guest hostname, cache and `--cast-info` label.
    pub name: String,
    /// The settings given at build time; validated again when read (see
    /// `cast_core::settings`).
    pub settings: VmUpdate,
}

impl Default for VmDefaults {
    fn default() -> Self {
        VmDefaults {
            name: "cast".into(),
            settings: VmUpdate::default(),
        }
    }
}

/// Rounds `n` up to the next multiple of [`ALIGN`].
pub fn align_up(n: u64) -> Option<u64> {
    n.checked_add(ALIGN - 1).map(|v| v / ALIGN * ALIGN)
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_rejects_bad_magic() {
        let h = Header {
            format: FORMAT_VERSION,
            manifest_len: 1234,
            total_len: 1 << 33,
            manifest_sha256: [7; 32],
        };
        let bytes = h.encode();
        assert_eq!(Header::decode(&bytes), Some(h));
        let mut bad = bytes;
        bad[0] ^= 1;
        assert_eq!(Header::decode(&bad), None);
        let mut reserved = bytes;
        reserved[13] = 1;
        assert_eq!(Header::decode(&reserved), None);
    }

    #[test]
    fn alignment_rounds_up() {
        assert_eq!(align_up(0), Some(0));
        assert_eq!(align_up(1), Some(4096));
        assert_eq!(align_up(4096), Some(4096));
        assert_eq!(align_up(u64::MAX), None);
    }
}
