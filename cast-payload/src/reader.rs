//! Reading a payload: the header and manifest parsed and validated as untrusted input
//! (every size and offset checked before use), parts verified against their SHA-256.
//!
//! [`Payload::parse`] checks structure only and is cheap; [`Payload::verify`] hashes
//! the parts held in memory. A runtime reads a payload from its executable's file
//! with [`read_prefix`] (everything but the root image) and verifies the root image
//! from the file ([`verify_file_part`]), which is what QEMU will read.

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
    /// Reading the payload from its file failed.
    #[error("cannot read the payload")]
    File(#[source] std::io::Error),
    /// Reading a part from a file failed.
    #[error("cannot read the payload's {}", .0.name())]
    Io(PartKind, #[source] std::io::Error),
}

/// A parsed, structurally valid payload.
#[derive(Debug, Clone)]
pub struct Payload<'a> {
    /// The payload's bytes at hand: all of it, or all but the root image.
    bytes: &'a [u8],
    /// The payload's length (header included).
    total_len: u64,
    /// The manifest.
    pub manifest: Manifest,
    /// SHA-256 of the manifest: it covers every part's hash, so it names the payload.
    pub digest: [u8; 32],
}

impl<'a> Payload<'a> {
    /// Parses and validates the header and manifest of `bytes` (which may extend past
    /// the payload's end).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ReadError> {
        Self::parse_in(bytes, bytes.len() as u64)
    }

    /// Like [`Payload::parse`] for a payload of which only the first bytes are at
    /// hand (what [`read_prefix`] read: everything before the root image), in a
    /// place with room for `room` bytes (its section). Only the kernel and the initrd
    /// must be in `bytes`; [`Payload::part_bytes`] then has no root image.
    pub fn parse_in(bytes: &'a [u8], room: u64) -> Result<Self, ReadError> {
        let (header, manifest, digest) = parse_described(bytes, room)?;
        let in_memory = manifest.initrd.offset + manifest.initrd.length;
        if (bytes.len() as u64) < in_memory {
            return Err(ReadError::Damaged("it is cut short".into()));
        }
        let bytes = &bytes[..header.total_len.min(bytes.len() as u64) as usize];
        Ok(Payload {
            bytes,
            total_len: header.total_len,
            manifest,
            digest,
        })
    }

    /// The payload's length in bytes, header included.
    pub fn len(&self) -> u64 {
        self.total_len
    }

    /// Whether the payload is empty (never: it has a header).
    pub fn is_empty(&self) -> bool {
        self.total_len == 0
    }

    /// A part's stored bytes (bounds were checked by [`Payload::parse`]). Panics for
    /// the root image of a payload parsed from a prefix ([`Payload::parse_in`]).
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

/// Decodes and checks the header at the start of `bytes`; `room` bounds the payload.
fn parse_header(bytes: &[u8], room: u64) -> Result<Header, ReadError> {
    let damaged = |why: &str| ReadError::Damaged(why.to_owned());
    let head: &[u8; HEADER_LEN] = bytes
        .get(..HEADER_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or_else(|| damaged("shorter than its header"))?;
    let header = Header::decode(head).ok_or_else(|| damaged("bad header magic"))?;
    if header.manifest_len == 0 || header.manifest_len > MAX_MANIFEST_LEN {
        return Err(damaged("impossible manifest length"));
    }
    if header.total_len < HEADER_LEN as u64 + header.manifest_len || header.total_len > room {
        return Err(damaged("its recorded length does not match its size"));
    }
    Ok(header)
}

/// Parses the header and manifest (the first bytes of `bytes`) and checks every
/// part's place against the payload's length.
///
/// The format number is believed only once the manifest matched its SHA-256 and
/// names the same format: a flipped bit in the header is damage, not a version.
fn parse_described(bytes: &[u8], room: u64) -> Result<(Header, Manifest, [u8; 32]), ReadError> {
    let damaged = |why: &str| ReadError::Damaged(why.to_owned());
    let header = parse_header(bytes, room)?;
    let json = bytes
        .get(HEADER_LEN..HEADER_LEN + header.manifest_len as usize)
        .ok_or_else(|| damaged("it is cut short"))?;
    let digest: [u8; 32] = Sha256::digest(json).into();
    if digest != header.manifest_sha256 {
        return Err(damaged("the manifest does not match its SHA-256"));
    }
    if header.format != FORMAT_VERSION {
        #[derive(serde::Deserialize)]
        struct Format {
            format: u32,
        }
        return Err(match serde_json::from_slice::<Format>(json) {
            Ok(m) if m.format == header.format => ReadError::Version {
                found: header.format,
            },
            _ => damaged("its header's format number does not match its manifest"),
        });
    }
    let manifest: Manifest = serde_json::from_slice(json)
        .map_err(|e| ReadError::Damaged(format!("unreadable manifest: {e}")))?;
    if manifest.format != FORMAT_VERSION {
        return Err(damaged(
            "its header's format number does not match its manifest",
        ));
    }
    let mut end_of_previous = HEADER_LEN as u64 + header.manifest_len;
    for kind in PartKind::ALL {
        let part = manifest.part(kind);
        check_part(kind, part, end_of_previous, header.total_len)?;
        end_of_previous = part.offset + part.length;
    }
    Ok((header, manifest, digest))
}

/// Reads from `file` at `offset` the part of a payload a runtime keeps in memory:
/// header, manifest, kernel and initrd (everything before the root image), checking
/// each length before reading. `room` is the space the payload may occupy (its
/// section). Parse the result with [`Payload::parse_in`].
#[cfg(unix)]
pub fn read_prefix(file: &std::fs::File, offset: u64, room: u64) -> Result<Vec<u8>, ReadError> {
    use std::os::unix::fs::FileExt;
    let mut bytes = Vec::new();
    let fill = |bytes: &mut Vec<u8>, to: u64| {
        let from = bytes.len();
        bytes.resize(to as usize, 0);
        file.read_exact_at(&mut bytes[from..], offset + from as u64)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::UnexpectedEof => {
                    ReadError::Damaged("the file ends inside it".into())
                }
                _ => ReadError::File(e),
            })
    };
    fill(&mut bytes, (HEADER_LEN as u64).min(room))?;
    let header = parse_header(&bytes, room)?;
    fill(&mut bytes, HEADER_LEN as u64 + header.manifest_len)?;
    let (_, manifest, _) = parse_described(&bytes, room)?;
    fill(&mut bytes, manifest.initrd.offset + manifest.initrd.length)?;
    Ok(bytes)
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
