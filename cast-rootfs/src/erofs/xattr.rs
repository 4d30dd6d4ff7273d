//! Inline extended attributes: the body stored right after an inode.
//!
//! Layout: a 12-byte header (name filter, shared count: both zero here) and one entry
//! per attribute — name length, name index (the namespace prefix), value size, the
//! name without its prefix, the value — each padded to 4 bytes. Namespaces with a
//! built-in index in Linux 6.1 are supported: `user.`, `trusted.`, `security.`,
//! `system.posix_acl_access`, `system.posix_acl_default`.

use std::collections::BTreeMap;

use super::format::XATTR_HEADER_SIZE;

/// Failure to encode an inode's extended attributes.
#[derive(Debug, thiserror::Error)]
pub enum XattrError {
    /// The name is in a namespace EROFS cannot index.
    #[error("xattr {0:?}: unsupported namespace")]
    Namespace(String),
    /// The name or value is too long for the on-disk fields.
    #[error("xattr {0:?}: name or value too long")]
    TooLong(String),
    /// All attributes of one inode exceed the inline body limit.
    #[error("extended attributes of one file exceed 256 KiB")]
    TooMany,
}

const PREFIXES: &[(&[u8], u8)] = &[
    (b"user.", 1),
    (b"system.posix_acl_access", 2),
    (b"system.posix_acl_default", 3),
    (b"trusted.", 4),
    (b"security.", 6),
];

/// Splits a full name into (index, suffix).
fn split_name(name: &[u8]) -> Option<(u8, &[u8])> {
    PREFIXES.iter().find_map(|(prefix, index)| {
        let rest = name.strip_prefix(*prefix)?;
        let whole_name = !prefix.ends_with(b".");
        (whole_name == rest.is_empty()).then_some((*index, rest))
    })
}

/// Encodes the inline xattr body; returns it and `i_xattr_icount` (empty and 0 when
/// there are no attributes).
pub fn encode(xattrs: &BTreeMap<Vec<u8>, Vec<u8>>) -> Result<(Vec<u8>, u16), XattrError> {
    if xattrs.is_empty() {
        return Ok((Vec::new(), 0));
    }
    let mut entries: Vec<(u8, &[u8], &[u8])> = Vec::with_capacity(xattrs.len());
    for (name, value) in xattrs {
        let shown = || String::from_utf8_lossy(name).into_owned();
        let (index, suffix) = split_name(name).ok_or_else(|| XattrError::Namespace(shown()))?;
        if suffix.len() > 255 || value.len() > usize::from(u16::MAX) {
            return Err(XattrError::TooLong(shown()));
        }
        entries.push((index, suffix, value));
    }
    // Deterministic order: by index, then suffix.
    entries.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    let mut body = vec![0u8; XATTR_HEADER_SIZE];
    for (index, suffix, value) in entries {
        body.push(suffix.len() as u8);
        body.push(index);
        body.extend_from_slice(&(value.len() as u16).to_le_bytes());
        body.extend_from_slice(suffix);
        body.extend_from_slice(value);
        while body.len() % 4 != 0 {
            body.push(0);
        }
    }
    let icount = (body.len() - XATTR_HEADER_SIZE) / 4 + 1;
    let icount = u16::try_from(icount).map_err(|_| XattrError::TooMany)?;
    Ok((body, icount))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_entries() {
        let mut x = BTreeMap::new();
        x.insert(b"user.foo".to_vec(), b"bar".to_vec());
        x.insert(b"system.posix_acl_access".to_vec(), vec![2, 0, 0, 0]);
        let (body, icount) = encode(&x).unwrap();
        // header 12 + user entry (4+3+3=10 → 12) + acl entry (4+0+4=8), by index
        assert_eq!(body.len(), 32);
        assert_eq!(icount, 6);
        assert_eq!(&body[12..16], &[3, 1, 3, 0]);
        assert_eq!(&body[16..22], b"foobar");
        assert_eq!(&body[24..28], &[0, 2, 4, 0]);
    }

    #[test]
    fn rejects_unknown_namespace() {
        let mut x = BTreeMap::new();
        x.insert(b"system.other".to_vec(), b"v".to_vec());
        assert!(matches!(encode(&x), Err(XattrError::Namespace(_))));
        let mut y = BTreeMap::new();
        y.insert(b"user.".to_vec(), b"v".to_vec());
        assert!(encode(&y).is_err());
    }
}
