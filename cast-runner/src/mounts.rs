//! Host mounts on the host side: each [`Mount`] resolved against the current
//! directory (a missing host path fails the run, naming it), then turned into what
//! the engine exports ([`Share`]) and what the guest attaches ([`GuestMount`]), tied
//! together by a 9p tag.

use crate::vm::Share;
use cast_core::mount::{Mount, MountError, SourceKind};
use cast_proto::GuestMount;
use std::path::Path;

/// The engine's shares and the guest's mounts for `mounts`, host paths resolved
/// against `cwd`.
pub fn plan(mounts: &[Mount], cwd: &Path) -> Result<(Vec<Share>, Vec<GuestMount>), MountError> {
    let mut shares = Vec::new();
    let mut guest = Vec::new();
    for (i, mount) in mounts.iter().enumerate() {
        let resolved = mount.resolve(cwd)?;
        let tag = format!("cast{i}");
        let file = resolved.kind == SourceKind::File;
        guest.push(GuestMount {
            tag: tag.clone(),
            target: resolved.target,
            read_only: resolved.read_only,
            file: file.then(|| {
                resolved
                    .source
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned()
            }),
        });
        shares.push(Share {
            tag,
            source: resolved.source,
            file,
            read_only: resolved.read_only,
        });
    }
    Ok((shares, guest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_and_directories_become_tagged_shares() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("input.txt"), "x").unwrap();
        let mounts = cast_core::mount::parse_list(".:/work,input.txt:/etc/input:ro").unwrap();
        let (shares, guest) = plan(&mounts, dir.path()).unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        assert_eq!(shares[0].source, root);
        assert!(!shares[0].file && shares[1].file && shares[1].read_only);
        assert_eq!(shares[1].source, root.join("input.txt"));
        assert_eq!(guest[0].file, None);
        assert_eq!(guest[1].file.as_deref(), Some("input.txt"));
        assert_eq!(
            (guest[1].tag.as_str(), guest[1].target.as_str()),
            ("cast1", "/etc/input")
        );
        let missing = cast_core::mount::parse_list("gone:/x").unwrap();
        assert!(plan(&missing, dir.path())
            .unwrap_err()
            .to_string()
            .contains("gone"));
    }
}
