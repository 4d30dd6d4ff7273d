//! The spill area: where an [`ImageTree`](super::ImageTree) keeps file contents.
//!
//! Contents are appended to one anonymous temporary file owned by the tree (it has no
//! name on disk and disappears with the tree); an inode stores only offset and length.
//! Contents of at most [`INLINE_MAX`] bytes stay in memory. Reads use positioned I/O,
//! so any number of readers can share the file through `&ImageTree`.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;

/// Contents up to this many bytes are kept in memory instead of the spill file.
pub const INLINE_MAX: usize = 128;

const CHUNK: usize = 256 * 1024;

/// Where the bytes of a regular file are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// Small contents held in memory.
    Inline(Box<[u8]>),
    /// `len` bytes at `offset` in the spill file.
    Spilled {
        /// Byte offset in the spill file.
        offset: u64,
        /// Length in bytes.
        len: u64,
    },
}

impl Content {
    /// Length of the contents in bytes.
    pub fn len(&self) -> u64 {
        match self {
            Content::Inline(bytes) => bytes.len() as u64,
            Content::Spilled { len, .. } => *len,
        }
    }

    /// True when there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Failure to store contents in the spill area.
#[derive(Debug, thiserror::Error)]
pub enum SpillError {
    /// The temporary file could not be created.
    #[error("cannot create the spill file")]
    Create(#[source] io::Error),
    /// Reading the source failed.
    #[error("cannot read file contents")]
    Read(#[source] io::Error),
    /// Writing to the spill file failed.
    #[error("cannot write to the spill file")]
    Write(#[source] io::Error),
}

/// The spill file and its write position.
#[derive(Debug)]
pub struct Spill {
    file: File,
    end: u64,
    buf: Vec<u8>,
}

impl Spill {
    /// A fresh, empty spill area in the system temp directory.
    pub fn new() -> Result<Self, SpillError> {
        Ok(Self {
            file: tempfile::tempfile().map_err(SpillError::Create)?,
            end: 0,
            buf: Vec::new(),
        })
    }

    /// Total bytes written to the spill file so far.
    pub fn spilled_bytes(&self) -> u64 {
        self.end
    }

    /// Streams everything from `reader` into the spill area.
    pub fn store(&mut self, reader: &mut dyn Read) -> Result<Content, SpillError> {
        if self.buf.len() < CHUNK {
            self.buf.resize(CHUNK, 0);
        }
        let first = read_full(reader, &mut self.buf).map_err(SpillError::Read)?;
        if first <= INLINE_MAX && first < self.buf.len() {
            return Ok(Content::Inline(self.buf[..first].into()));
        }
        let offset = self.end;
        let mut len = 0u64;
        let mut filled = first;
        while filled > 0 {
            self.file
                .write_all_at(&self.buf[..filled], offset + len)
                .map_err(SpillError::Write)?;
            len += filled as u64;
            filled = read_full(reader, &mut self.buf).map_err(SpillError::Read)?;
        }
        self.end = offset + len;
        Ok(Content::Spilled { offset, len })
    }

    /// A reader over stored contents.
    pub fn reader<'a>(&'a self, content: &Content) -> ContentReader<'a> {
        match content {
            Content::Inline(bytes) => ContentReader {
                file: &self.file,
                inline: bytes.to_vec(),
                pos: 0,
                end: bytes.len() as u64,
            },
            Content::Spilled { offset, len } => ContentReader {
                file: &self.file,
                inline: Vec::new(),
                pos: *offset,
                end: offset + len,
            },
        }
    }
}

/// Reads until `buf` is full or the reader ends; returns the bytes read.
fn read_full(reader: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match reader.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Reads one file's contents back from the spill area (or memory).
#[derive(Debug)]
pub struct ContentReader<'a> {
    file: &'a File,
    inline: Vec<u8>,
    pos: u64,
    end: u64,
}

impl ContentReader<'_> {
    /// Skips `n` bytes without reading them (clamped at the end).
    pub fn skip(&mut self, n: u64) {
        self.pos = self.pos.saturating_add(n).min(self.end);
    }
}

impl Read for ContentReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.end - self.pos;
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let n = if self.inline.is_empty() {
            self.file.read_at(&mut buf[..want], self.pos)?
        } else {
            let start = self.pos as usize;
            buf[..want].copy_from_slice(&self.inline[start..start + want]);
            want
        };
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.pos += n as u64;
        Ok(n)
    }
}
