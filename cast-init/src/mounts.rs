//! Host mounts in the guest: 9p shares (virtio transport) attached in the new root.
//!
//! The 9p modules are loaded only when a run asks for mounts (before the switch to
//! the new root, while the initramfs still holds the `.ko` files), so runs without
//! mounts pay nothing for them. A directory share is mounted on its target; a
//! single-file share (a directory the host made with only that file in it) is
//! mounted on a staging directory, the file bind-mounted onto its target, and the
//! staging mount dropped. `ro` is a read-only mount here and a read-only share on
//! the host, so a guest that remounts cannot write either.

use crate::log::Log;
use cast_proto::GuestMount;
use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use std::io;
use std::path::Path;

/// The modules a 9p mount needs, when the kernel has them as modules.
pub const MODULES: &[&str] = &["netfs", "fscache", "9pnet", "9pnet_virtio", "9p"];

/// Where single-file shares are staged (in the guest's devtmpfs, removed again).
const STAGING: &str = "/dev/.cast-mount";

/// Whether `module` belongs to the mount support (loaded on demand).
pub fn is_mount_module(module: &str) -> bool {
    MODULES.contains(&module)
}

/// Attaches every mount in order, in the current root.
pub fn attach(mounts: &[GuestMount], log: &Log) -> io::Result<()> {
    for (i, m) in mounts.iter().enumerate() {
        match &m.file {
            None => attach_directory(m)?,
            Some(name) => attach_file(m, name, &format!("{STAGING}-{i}"))?,
        }
        log.step(&format!("mounted {}", m.target));
    }
    Ok(())
}

fn attach_directory(m: &GuestMount) -> io::Result<()> {
    let target = Path::new(&m.target);
    if target.exists() && !target.is_dir() {
        return Err(io::Error::other(format!(
            "cannot mount a host directory on {}: it is a file in the image",
            m.target
        )));
    }
    std::fs::create_dir_all(target)
        .map_err(|e| io::Error::other(format!("creating mount point {}: {e}", m.target)))?;
    mount_share(m, &m.target)
}

fn attach_file(m: &GuestMount, name: &str, staging: &str) -> io::Result<()> {
    let target = Path::new(&m.target);
    if target.is_dir() {
        return Err(io::Error::other(format!(
            "cannot mount a host file on {}: it is a directory in the image",
            m.target
        )));
    }
    if !target.exists() {
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::File::create(target)
            .map_err(|e| io::Error::other(format!("creating mount point {}: {e}", m.target)))?;
    }
    std::fs::create_dir_all(staging)?;
    mount_share(m, staging)?;
    let source = format!("{staging}/{name}");
    let bound = mount(
        Some(source.as_str()),
        target,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .and_then(|()| {
        if m.read_only {
            let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
            mount(None::<&str>, target, None::<&str>, flags, None::<&str>)
        } else {
            Ok(())
        }
    });
    // The bind keeps the share alive; the staging mount is no longer needed.
    let _ = umount2(staging, MntFlags::MNT_DETACH);
    let _ = std::fs::remove_dir(staging);
    bound.map_err(|e| io::Error::other(format!("binding the host file onto {}: {e}", m.target)))
}

/// Mounts the share `m.tag` on `at`.
fn mount_share(m: &GuestMount, at: &str) -> io::Result<()> {
    let flags = if m.read_only {
        MsFlags::MS_RDONLY
    } else {
        MsFlags::empty()
    };
    mount(
        Some(m.tag.as_str()),
        at,
        Some("9p"),
        flags,
        Some(cast_proto::MOUNT_OPTIONS),
    )
    .map_err(|e| match e {
        Errno::ENODEV => io::Error::other(
            "host mounts need 9p in the guest kernel, and this kernel has none: \
             use a kernel with 9p (`cargo cast kernel fetch \
             debian:linux-image-amd64`, then `cargo cast kernel use debian-generic`, \
             CAST_KERNEL=DIR or `kernel = \"DIR\"` in the cast metadata)",
        ),
        e => io::Error::other(format!("mounting the host share for {}: {e}", m.target)),
    })
}
