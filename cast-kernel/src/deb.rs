//! Reading a Debian package (`.deb`) without `dpkg-deb`, so a kernel package can be
//! unpacked on any host (macOS has no dpkg).
//!
//! A `.deb` is an `ar` archive holding `debian-binary`, `control.tar.*` and
//! `data.tar.*`; the files are in `data.tar`, compressed with xz (Debian's kernels),
//! zstd (Ubuntu's), gzip, or not at all. The data member is decompressed to a
//! temporary file beside the destination and unpacked with `tar`, which refuses
//! entries that would land outside it.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, Write};
use std::path::{Path, PathBuf};

/// A `.deb` could not be unpacked.
#[derive(Debug, thiserror::Error)]
pub enum DebError {
    /// Reading the package or writing the tree failed.
    #[error("cannot unpack {path}")]
    Io {
        /// The package.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The package has no `data.tar` member.
    #[error("{0} is not a Debian package: no data.tar member")]
    NoData(PathBuf),
    /// The data member is compressed in a way this reader does not know.
    #[error("{path}: data member {member} is compressed in an unknown way (xz, zst, gz or none)")]
    Compression {
        /// The package.
        path: PathBuf,
        /// The member's name.
        member: String,
    },
}

/// Unpacks the files of the package `deb` into `into` (as `dpkg-deb -x` does).
pub fn extract(deb: &Path, into: &Path) -> Result<(), DebError> {
    let io_err = |source| DebError::Io {
        path: deb.to_owned(),
        source,
    };
    let file = File::open(deb).map_err(io_err)?;
    let mut archive = ar::Archive::new(BufReader::new(file));
    std::fs::create_dir_all(into).map_err(io_err)?;
    let mut tar_file = tempfile::tempfile_in(into).map_err(io_err)?;
    let mut found = None;
    while let Some(entry) = archive.next_entry() {
        let mut entry = entry.map_err(io_err)?;
        let name = String::from_utf8_lossy(entry.header().identifier()).into_owned();
        let Some(kind) = name.strip_prefix("data.tar") else {
            continue;
        };
        match kind {
            "" => io::copy(&mut entry, &mut tar_file).map(drop),
            ".gz" => io::copy(&mut flate2::read::GzDecoder::new(entry), &mut tar_file).map(drop),
            ".zst" => zstd::stream::copy_decode(entry, &mut tar_file),
            ".xz" => lzma_rs::xz_decompress(&mut BufReader::new(entry), &mut tar_file)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string())),
            _ => {
                return Err(DebError::Compression {
                    path: deb.to_owned(),
                    member: name,
                })
            }
        }
        .map_err(io_err)?;
        found = Some(name);
        break;
    }
    if found.is_none() {
        return Err(DebError::NoData(deb.to_owned()));
    }
    tar_file.flush().map_err(io_err)?;
    tar_file.rewind().map_err(io_err)?;
    unpack(BufReader::new(tar_file), into).map_err(io_err)
}

/// Unpacks a tar stream into `into`, keeping modes but not owners.
fn unpack(tar: impl Read, into: &Path) -> io::Result<()> {
    let mut archive = tar::Archive::new(tar);
    archive.set_preserve_permissions(true);
    archive.set_overwrite(true);
    archive.unpack(into)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `.deb` as Debian lays it out, with `data` as its data.tar member.
    fn deb(member: &str, data: &[u8]) -> Vec<u8> {
        let mut b = ar::Builder::new(Vec::new());
        for (name, body) in [
            ("debian-binary", &b"2.0\n"[..]),
            ("control.tar.xz", &b""[..]),
            (member, data),
        ] {
            let header = ar::Header::new(name.as_bytes().to_vec(), body.len() as u64);
            b.append(&header, body).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn tar_with(path: &str, body: &[u8]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, path, body).unwrap();
        b.into_inner().unwrap()
    }

    fn roundtrip(member: &str, data: Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.deb");
        std::fs::write(&path, deb(member, &data)).unwrap();
        extract(&path, &dir.path().join("tree")).unwrap();
        let got = std::fs::read(dir.path().join("tree/boot/vmlinuz-6.1.0-test")).unwrap();
        assert_eq!(got, b"kernel bytes", "{member}");
    }

    #[test]
    fn every_compression_debian_uses_unpacks() {
        let tar = tar_with("./boot/vmlinuz-6.1.0-test", b"kernel bytes");
        roundtrip("data.tar", tar.clone());
        roundtrip("data.tar.zst", zstd::encode_all(&tar[..], 3).unwrap());
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        roundtrip("data.tar.gz", gz.finish().unwrap());
        let mut xz = Vec::new();
        lzma_rs::xz_compress(&mut &tar[..], &mut xz).unwrap();
        roundtrip("data.tar.xz", xz);
    }

    #[test]
    fn a_file_that_is_not_a_package_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.deb");
        std::fs::write(&path, deb("other", b"")).unwrap();
        let err = extract(&path, &dir.path().join("tree")).unwrap_err();
        assert!(matches!(err, DebError::NoData(_)), "{err}");
        std::fs::write(&path, b"not an ar archive").unwrap();
        assert!(extract(&path, &dir.path().join("tree")).is_err());
    }

    #[test]
    fn an_unknown_compression_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.deb");
        std::fs::write(&path, deb("data.tar.lzma", b"x")).unwrap();
        let err = extract(&path, &dir.path().join("tree")).unwrap_err();
        assert!(err.to_string().contains("data.tar.lzma"), "{err}");
    }
}
