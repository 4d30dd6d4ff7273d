//! Content digests. Only sha256 is accepted (it is what every registry and both image
//! formats use); a [`Digest`] is always a valid `sha256:<64 hex>` string, so it can be
//! used as a file name in the blob cache without further checks. `HashingWriter`
//! computes the digest of content while it streams through.

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

use crate::error::Error;

/// A validated `sha256:<hex>` content digest.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest::from_hasher(Sha256::new_with_prefix(bytes))
    }

    fn from_hasher(h: Sha256) -> Digest {
        Digest(format!("sha256:{:x}", h.finalize()))
    }

    /// The 64 hex digits without the `sha256:` prefix.
    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }

    /// The full `sha256:<hex>` string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Checks that `actual` equals `self`, naming `what` and `origin` otherwise.
    pub(crate) fn verify(&self, actual: &Digest, what: &str, origin: &str) -> Result<(), Error> {
        if self == actual {
            Ok(())
        } else {
            Err(Error::DigestMismatch {
                origin: origin.to_string(),
                what: what.to_string(),
                expected: self.0.clone(),
                actual: actual.0.clone(),
            })
        }
    }
}

impl FromStr for Digest {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = || Error::InvalidDigest {
            input: s.to_string(),
        };
        let hex = s.strip_prefix("sha256:").ok_or_else(bad)?;
        if hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(Digest(s.to_string()))
        } else {
            Err(bad())
        }
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.0)
    }
}

impl From<&oci_spec::image::Digest> for Digest {
    fn from(d: &oci_spec::image::Digest) -> Self {
        // oci-spec has validated the shape; we still insist on sha256 at use sites.
        Digest(d.to_string())
    }
}

impl TryFrom<&oci_spec::image::Descriptor> for Digest {
    type Error = Error;

    fn try_from(d: &oci_spec::image::Descriptor) -> Result<Self, Error> {
        d.digest().to_string().parse()
    }
}

/// A writer that hashes everything written through it and counts the bytes.
#[derive(Debug)]
pub(crate) struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    written: u64,
}

impl<W: Write> HashingWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            written: 0,
        }
    }

    /// The digest and byte count so far, and the inner writer.
    pub(crate) fn finish(self) -> (Digest, u64, W) {
        (Digest::from_hasher(self.hasher), self.written, self.inner)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Reads `reader` to its end and returns its digest and length.
pub(crate) fn digest_reader(mut reader: impl Read) -> io::Result<(Digest, u64)> {
    let mut w = HashingWriter::new(io::sink());
    io::copy(&mut reader, &mut w)?;
    let (d, n, _) = w.finish();
    Ok((d, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_of_empty() {
        let d = Digest::of(b"");
        assert_eq!(
            d.as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(d.as_str().parse::<Digest>().unwrap(), d);
    }

    #[test]
    fn rejects_bad_digests() {
        for s in [
            "sha256:abc",
            "md5:00",
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "e3b0",
        ] {
            assert!(s.parse::<Digest>().is_err(), "{s}");
        }
    }

    #[test]
    fn hashing_writer_matches() {
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(b"hello ").unwrap();
        w.write_all(b"world").unwrap();
        let (d, n, v) = w.finish();
        assert_eq!(n, 11);
        assert_eq!(d, Digest::of(b"hello world"));
        assert_eq!(digest_reader(&v[..]).unwrap(), (d, 11));
    }
}
