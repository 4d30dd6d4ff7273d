//! Building layer tars in memory, including malformed and malicious ones (raw names
//! with `..`, absolute paths, links pointing anywhere).
#![allow(dead_code)]

use std::io::Write;

use tar::{EntryType, Header};

/// A layer under construction.
pub struct Layer {
    b: tar::Builder<Vec<u8>>,
}

impl Default for Layer {
    fn default() -> Self {
        Self::new()
    }
}

impl Layer {
    pub fn new() -> Self {
        Self {
            b: tar::Builder::new(Vec::new()),
        }
    }

    /// Appends an entry with the name and link written raw into the header (no path
    /// checks), so any byte string can be tested.
    pub fn raw(
        &mut self,
        name: &str,
        kind: EntryType,
        mode: u32,
        link: &str,
        data: &[u8],
    ) -> &mut Self {
        let mut h = Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h.set_size(data.len() as u64);
        let old = h.as_old_mut();
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        old.linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_cksum();
        self.b.append(&h, data).unwrap();
        self
    }

    /// Appends an entry through the tar crate's checked path (GNU long names).
    pub fn entry(
        &mut self,
        path: &str,
        kind: EntryType,
        mode: u32,
        owner: (u64, u64),
        data: &[u8],
    ) -> &mut Self {
        let mut h = Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(owner.0);
        h.set_gid(owner.1);
        h.set_mtime(1_600_000_000);
        h.set_size(data.len() as u64);
        self.b.append_data(&mut h, path, data).unwrap();
        self
    }

    pub fn file(&mut self, path: &str, data: &[u8]) -> &mut Self {
        self.entry(path, EntryType::Regular, 0o644, (0, 0), data)
    }

    pub fn dir(&mut self, path: &str) -> &mut Self {
        self.entry(path, EntryType::Directory, 0o755, (0, 0), b"")
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        self.raw(path, EntryType::Symlink, 0o777, target, b"")
    }

    pub fn hardlink(&mut self, path: &str, target: &str) -> &mut Self {
        self.raw(path, EntryType::Link, 0o644, target, b"")
    }

    pub fn device(&mut self, path: &str, kind: EntryType, major: u32, minor: u32) -> &mut Self {
        let mut h = Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(0o600);
        h.set_mtime(1);
        h.set_size(0);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        self.b.append_data(&mut h, path, &b""[..]).unwrap();
        self
    }

    /// Appends PAX records that apply to the next entry.
    pub fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
        self.b
            .append_pax_extensions(records.iter().copied())
            .unwrap();
        self
    }

    pub fn plain(&mut self) -> Vec<u8> {
        let b = std::mem::replace(&mut self.b, tar::Builder::new(Vec::new()));
        b.into_inner().unwrap()
    }

    pub fn gzip(&mut self) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&self.plain()).unwrap();
        enc.finish().unwrap()
    }

    pub fn zstd(&mut self) -> Vec<u8> {
        zstd::encode_all(&self.plain()[..], 3).unwrap()
    }
}
