//! Reading a payload: the header and manifest parsed and validated as untrusted input
//! (every size and offset checked before use), parts verified against their SHA-256.
//!
//! [`Payload::parse`] checks structure only and is cheap; [`Payload::verify`] hashes
//! the parts held in memory. The root image can also be verified from a file
//! ([`verify_file_part`]), which is what QEMU will read.

use crate::format::{
    hex, Encoding, Header, Manifest, Part, PartKind, ALIGN, FORMAT_VERSION, HEADER_LEN,
    MAX_KERNEL_LEN, MAX_MANIFEST_LEN,
};
use sha2::{Digest, Sha256};
use std::io::{Read, Seek, SeekFrom};

/// A payload is damaged or not one this version understands.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Not a payload at all, or damaged beyond recognition.
    #[error("the payload is damaged: {0}")]
    Damaged(String),
    /// Written by an incompatible format version.
    #[error("the payload has format {found}, this runtime reads format {FORMAT_VERSION}")]
    Version {
        /// The version found.
        found: u32,
    },
    /// A part's bytes do not match their recorded hash.
    #[error("the payload is damaged: the {} does not match its SHA-256", .0.name())]
    Hash(PartKind),
    /// Reading a part from a file failed.
    #[error("cannot read the payload's {}", .0.name())]
    Io(PartKind, #[source] std::io::Error),
}

/// A parsed, structurally valid payload.
#[derive(Debug, Clone)]
pub struct Payload<'a> {
    bytes: &'a [u8],
    /// The manifest.
    pub manifest: Manifest,
    /// SHA-256 of the manifest: it covers every part's hash, so it names the payload.
    pub digest: [u8; 32],
}

impl<'a> Payload<'a> {
    /// Parses and validates the header and manifest of `bytes` (which may extend past
    /// the payload's end).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ReadError> {
        let damaged = |why: &str| ReadError::Damaged(why.to_owned());
        let head: &[u8; HEADER_LEN] = bytes
            .get(..HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or_else(|| damaged("shorter than its header"))?;
        let header = Header::decode(head).ok_or_else(|| damaged("bad header magic"))?;
        if header.format != FORMAT_VERSION {
            return Err(ReadError::Version {
                found: header.format,
            });
        }
        if header.manifest_len == 0 || header.manifest_len > MAX_MANIFEST_LEN {
            return Err(damaged("impossible manifest length"));
        }
        let manifest_end = HEADER_LEN as u64 + header.manifest_len;
        if header.total_len < manifest_end || header.total_len > bytes.len() as u64 {
            return Err(damaged("its recorded length does not match its size"));
        }
        let bytes = &bytes[..header.total_len as usize];
        let json = &bytes[HEADER_LEN..manifest_end as usize];
        let digest: [u8; 32] = Sha256::digest(json).into();
        if digest != header.manifest_sha256 {
            return Err(damaged("the manifest does not match its SHA-256"));
        }
        let manifest: Manifest = serde_json::from_slice(json)
            .map_err(|e| ReadError::Damaged(format!("unreadable manifest: {e}")))?;
        if manifest.format != FORMAT_VERSION {
            return Err(ReadError::Version {
                found: manifest.format,
            });
        }
        let mut end_of_previous = manifest_end;
        for kind in PartKind::ALL {
            check_part(kind, manifest.part(kind), end_of_previous, header.total_len)?;
            let part = manifest.part(kind);
            end_of_previous = part.offset + part.length;
        }
        Ok(Payload {
            bytes,
            manifest,
            digest,
        })
    }

    /// Length of the header and manifest: the bytes that describe the parts.
    pub fn described_len(&self) -> usize {
        self.manifest.kernel.offset.min(self.bytes.len() as u64) as usize
    }

    /// The whole payload.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// A part's stored bytes (bounds were checked by [`Payload::parse`]).
    pub fn part_bytes(&self, kind: PartKind) -> &'a [u8] {
        let p = self.manifest.part(kind);
        &self.bytes[p.offset as usize..(p.offset + p.length) as usize]
    }

    /// Checks a part held in memory against its SHA-256.
    pub fn verify_part(&self, kind: PartKind) -> Result<(), ReadError> {
        let want = &self.manifest.part(kind).sha256;
        if hex(&Sha256::digest(self.part_bytes(kind))) == *want {
            Ok(())
        } else {
            Err(ReadError::Hash(kind))
        }
    }

    /// Checks every part held in memory.
    pub fn verify(&self) -> Result<(), ReadError> {
        PartKind::ALL
            .into_iter()
            .try_for_each(|kind| self.verify_part(kind))
    }

    /// The payload's digest, lowercase hex.
    pub fn digest_hex(&self) -> String {
        hex(&self.digest)
    }
}

/// Checks `kind` as stored in `file` at `payload_offset` + its offset, reading it in
/// 1 MiB chunks (not mapping it, so the process's memory does not grow by its size).
pub fn verify_file_part(
    file: &mut (impl Read + Seek),
    payload_offset: u64,
    manifest: &Manifest,
    kind: PartKind,
) -> Result<(), ReadError> {
    let part = manifest.part(kind);
    let io = |e| ReadError::Io(kind, e);
    let start = payload_offset
        .checked_add(part.offset)
        .ok_or(ReadError::Hash(kind))?;
    file.seek(SeekFrom::Start(start)).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut left = part.length;
    let mut buf = vec![0u8; 1 << 20];
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        file.read_exact(&mut buf[..n]).map_err(io)?;
        hasher.update(&buf[..n]);
        left -= n as u64;
    }
    if hex(&hasher.finalize()) == part.sha256 {
        Ok(())
    } else {
        Err(ReadError::Hash(kind))
    }
}

fn check_part(kind: PartKind, p: &Part, min_offset: u64, total: u64) -> Result<(), ReadError> {
    let bad = |why: &str| ReadError::Damaged(format!("the {} entry {why}", kind.name()));
    if p.offset % ALIGN != 0 || p.offset < min_offset {
        return Err(bad("has a misplaced offset"));
    }
    if p.offset.checked_add(p.length).is_none_or(|end| end > total) {
        return Err(bad("extends past the payload's end"));
    }
    let is_sha =
        |s: &str| s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !is_sha(&p.sha256) || !is_sha(&p.decoded_sha256) {
        return Err(bad("has a malformed SHA-256"));
    }
    let encoding_ok = match (kind, p.encoding) {
        (PartKind::Kernel, Encoding::Zstd) => {
            p.decoded_length > 0 && p.decoded_length <= MAX_KERNEL_LEN
        }
        (_, Encoding::Raw) => p.decoded_length == p.length && p.decoded_sha256 == p.sha256,
        _ => false,
    };
    if !encoding_ok {
        return Err(bad("has an unexpected encoding or decoded size"));
    }
    if p.length == 0 || (kind == PartKind::Root && p.length % 512 != 0) {
        return Err(bad("has an impossible length"));
    }
    Ok(())
}
