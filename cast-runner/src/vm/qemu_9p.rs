//! The QEMU engine's host mounts: QEMU's own 9p server (`-fsdev local` +
//! `virtio-9p-device`), no helper process, no shared memory.
//!
//! - Security model `mapped-xattr`: QEMU runs as the invoking user, so what the guest
//!   creates is that user's on the host; the guest's owners, modes and special files
//!   live in `user.virtfs.*` xattrs and never become real setuid bits or device
//!   nodes on the host (with `none`, a guest chmod makes real setuid files).
//!   QEMU resolves every path component without following symlinks, so a guest
//!   cannot leave the shared directory.
//! - `ro`: `readonly=on`, enforced by QEMU whatever the guest kernel does.
//! - A single file: 9p shares directories, and sharing the file's directory would
//!   expose its siblings. So QEMU starts in a private mount namespace (a user
//!   namespace too when not root) where a small tmpfs, mounted over the cache's
//!   `mnt` directory, holds one directory per file share with the file
//!   bind-mounted into it; that directory is the share. The bind works across
//!   filesystems, needs no write access near the file, leaves nothing behind (the
//!   namespace dies with QEMU), and a rename over the file fails (EBUSY) instead of
//!   silently detaching it, as in Docker.

use super::{Share, VmError};
use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// QEMU arguments for `shares`: one `-fsdev` and one `virtio-9p-device` each.
pub(super) fn args(shares: &[Share], files: Option<&FileShares>) -> Vec<String> {
    let mut a = Vec::new();
    for (i, share) in shares.iter().enumerate() {
        let path = match files {
            Some(files) if share.file => files.export_dir(i),
            _ => share.source.clone(),
        };
        a.push("-fsdev".to_owned());
        a.push(format!(
            "local,id=share{i},path={},security_model=mapped-xattr{}",
            path.display().to_string().replace(',', ",,"),
            if share.read_only { ",readonly=on" } else { "" }
        ));
        a.push("-device".to_owned());
        a.push(format!(
            "virtio-9p-device,fsdev=share{i},mount_tag={}",
            share.tag
        ));
    }
    a
}

/// The single-file shares' private mount namespace, prepared before QEMU is forked
/// (everything allocated here) and entered in the child ([`FileShares::enter`]).
#[derive(Debug)]
pub(super) struct FileShares {
    /// The tmpfs's mount point (an empty directory in the cache).
    mountpoint: PathBuf,
    mountpoint_c: CString,
    /// Root needs no user namespace.
    root: bool,
    uid_map: Vec<u8>,
    gid_map: Vec<u8>,
    files: Vec<FileShare>,
}

#[derive(Debug)]
struct FileShare {
    /// The share's directory in the tmpfs.
    dir: CString,
    /// The empty file the host file is bound onto.
    placeholder: CString,
    /// The host file.
    source: CString,
}

fn cstring(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)
}

impl FileShares {
    /// Plans the namespace for the file shares among `shares`; `None` when there are
    /// none.
    pub(super) fn prepare(shares: &[Share]) -> Result<Option<Self>, VmError> {
        if !shares.iter().any(|s| s.file) {
            return Ok(None);
        }
        let failed = |source| VmError::Prepare {
            what: "a single-file mount",
            source,
        };
        let mountpoint = cast_core::CacheRoot::from_env()
            .ok_or_else(|| failed(io::Error::other("no cache directory (set CAST_CACHE_DIR)")))?
            .mount_point();
        std::fs::create_dir_all(&mountpoint).map_err(|e| {
            failed(io::Error::new(
                e.kind(),
                format!("creating {}: {e}", mountpoint.display()),
            ))
        })?;
        let mut files = Vec::new();
        for (i, share) in shares.iter().enumerate().filter(|(_, s)| s.file) {
            let dir = mountpoint.join(i.to_string());
            let name = share.source.file_name().unwrap_or_default();
            files.push(FileShare {
                placeholder: cstring(&dir.join(name)).map_err(failed)?,
                dir: cstring(&dir).map_err(failed)?,
                source: cstring(&share.source).map_err(failed)?,
            });
        }
        let (uid, gid) = (nix::unistd::geteuid(), nix::unistd::getegid());
        Ok(Some(FileShares {
            mountpoint_c: cstring(&mountpoint).map_err(failed)?,
            mountpoint,
            root: uid.is_root(),
            uid_map: format!("{uid} {uid} 1\n").into_bytes(),
            gid_map: format!("{gid} {gid} 1\n").into_bytes(),
            files,
        }))
    }

    /// The directory QEMU shares for share number `i` (a file share).
    fn export_dir(&self, i: usize) -> PathBuf {
        self.mountpoint.join(i.to_string())
    }

    /// In the forked child, before exec: enter a private mount namespace (and user
    /// namespace, mapping only the caller's own ids, so QEMU keeps no capability
    /// after exec) and build the share directories. Makes only system calls on
    /// values prepared before the fork.
    pub(super) fn enter(&self) -> io::Result<()> {
        let check = |r: libc::c_int| {
            if r < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(())
            }
        };
        let null = std::ptr::null::<libc::c_char>();
        let namespaces = if self.root {
            libc::CLONE_NEWNS
        } else {
            libc::CLONE_NEWUSER | libc::CLONE_NEWNS
        };
        // SAFETY: unshare takes flags only.
        check(unsafe { libc::unshare(namespaces) })?;
        if !self.root {
            write_file(c"/proc/self/setgroups", b"deny")?;
            write_file(c"/proc/self/uid_map", &self.uid_map)?;
            write_file(c"/proc/self/gid_map", &self.gid_map)?;
        }
        // SAFETY: mount(2) with NUL-terminated strings that outlive the call (or
        // null where the flags ignore the argument).
        check(unsafe {
            libc::mount(
                null,
                c"/".as_ptr(),
                null,
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            )
        })?;
        // SAFETY: as above.
        check(unsafe {
            libc::mount(
                c"tmpfs".as_ptr(),
                self.mountpoint_c.as_ptr(),
                c"tmpfs".as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                c"mode=0700,size=64k".as_ptr().cast(),
            )
        })?;
        for f in &self.files {
            // SAFETY: mkdir on a NUL-terminated path prepared before the fork.
            check(unsafe { libc::mkdir(f.dir.as_ptr(), 0o700) })?;
            // SAFETY: open on a NUL-terminated path prepared before the fork.
            let fd = unsafe {
                libc::open(
                    f.placeholder.as_ptr(),
                    libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                    0o600,
                )
            };
            check(fd)?;
            // SAFETY: closing the fd just opened.
            unsafe { libc::close(fd) };
            // SAFETY: mount(2) as above; MS_BIND ignores the type and data.
            check(unsafe {
                libc::mount(
                    f.source.as_ptr(),
                    f.placeholder.as_ptr(),
                    null,
                    libc::MS_BIND,
                    std::ptr::null(),
                )
            })?;
        }
        Ok(())
    }
}

/// Writes `data` to the file at `path` (procfs id maps) with raw system calls.
fn write_file(path: &std::ffi::CStr, data: &[u8]) -> io::Result<()> {
    // SAFETY: open/write/close on a NUL-terminated path and a live buffer.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = libc::write(fd, data.as_ptr().cast(), data.len());
        let result = if n == data.len() as isize {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        };
        libc::close(fd);
        result
    }
}
