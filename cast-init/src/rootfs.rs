//! The root filesystem: the read-only image under a throwaway overlay, then the switch.
//!
//! ```text
//! /dev/vda (EROFS or ext4, read-only) ─ /cast/lower ┐
//! tmpfs ─ /cast/rw/{upper,work} ────────────────────┴ overlay ─ /cast/root ─ becomes /
//! ```
//!
//! Every write lands in the tmpfs and is gone when the VM ends. The switch is
//! switch_root's: move /dev, /proc, /sys over, move the new root onto `/`, chroot.
//!
//! Memory: tmpfs pages cannot be swapped, so the tmpfs mounts together are capped
//! at half of the guest's memory ([`TMPFS_SIZES`]); filling them is "No space left
//! on device", never the OOM killer taking the process. `/tmp` is the image's own
//! (on the writable overlay, as in Docker), created with mode 1777 if missing.
//!
//! A build VM ([`crate::build`]) finds its root disk by serial and puts the upper
//! layer on an ext4 scratch disk instead; it keeps the image's own /tmp and /run and
//! writes no host files, so only the command's changes reach the layer.

use nix::mount::{mount, MsFlags};
use nix::unistd::{chdir, chroot, sethostname};
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::{Duration, Instant};

const ROOT_DEVICE: &str = "/dev/vda";
const LOWER: &str = "/cast/lower";
const RW: &str = "/cast/rw";
const NEW_ROOT: &str = "/cast/root";

/// Size caps of the tmpfs mounts, as shares of the guest's memory: the overlay's
/// upper layer, /dev/shm and /run; together 50%.
const TMPFS_SIZES: [(&str, &str); 3] = [(RW, "40%"), ("/dev/shm", "5%"), ("/run", "5%")];

/// The `size=` option of the tmpfs mounted on `target`.
fn tmpfs_size(target: &str) -> &'static str {
    TMPFS_SIZES
        .iter()
        .find(|(t, _)| *t == target)
        .map(|(_, size)| *size)
        .expect("every tmpfs has a size")
}

/// A filesystem the guest can mount as the root image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RootFs {
    Erofs,
    Ext4,
}

impl RootFs {
    /// Recognises the superblock magic (both live at offset 1024).
    fn detect(head: &[u8]) -> Option<Self> {
        let u32_at = |o: usize| {
            head.get(o..o + 4)
                .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
        };
        let u16_at = |o: usize| {
            head.get(o..o + 2)
                .map(|b| u16::from_le_bytes(b.try_into().unwrap()))
        };
        if u32_at(1024) == Some(0xE0F5_E1E2) {
            Some(RootFs::Erofs)
        } else if u16_at(1024 + 0x38) == Some(0xEF53) {
            Some(RootFs::Ext4)
        } else {
            None
        }
    }

    fn name(self) -> &'static str {
        match self {
            RootFs::Erofs => "erofs",
            RootFs::Ext4 => "ext4",
        }
    }
}

pub(crate) fn mnt(
    source: &str,
    target: &str,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> io::Result<()> {
    std::fs::create_dir_all(target)?;
    mount(Some(source), target, fstype, flags, data)
        .map_err(|e| io::Error::other(format!("mounting {source} on {target}: {e}")))
}

/// The filesystem type name of the disk `dev` (EROFS or ext4).
pub(crate) fn fs_type(dev: &Path) -> io::Result<&'static str> {
    let mut head = vec![0u8; 4096];
    let n = File::open(dev)?.read(&mut head)?;
    RootFs::detect(&head[..n])
        .map(RootFs::name)
        .ok_or_else(|| io::Error::other(format!("{} is neither EROFS nor ext4", dev.display())))
}

/// Mounts the root image with its overlay, switches into it, and prepares the
/// process's world (API filesystems, hostname, `hosts`: see [`crate::net::hosts_file`]).
/// `build` is a build VM's disks.
pub fn enter(hostname: &str, hosts: &str, build: Option<&crate::build::Disks>) -> io::Result<()> {
    let (device, fs) = match build {
        Some(disks) => (
            disks.root.to_string_lossy().into_owned(),
            fs_type(&disks.root)?,
        ),
        None => (ROOT_DEVICE.to_owned(), wait_and_detect()?.name()),
    };
    mnt(&device, LOWER, Some(fs), MsFlags::MS_RDONLY, None)?;
    let mut options = format!("lowerdir={LOWER},upperdir={RW}/upper,workdir={RW}/work");
    match build {
        Some(disks) => {
            mnt(
                &disks.scratch.to_string_lossy(),
                RW,
                Some("ext4"),
                MsFlags::empty(),
                None,
            )?;
            // Renamed lower directories are copied up whole, so the upper dir says
            // everything a layer needs.
            options.push_str(",redirect_dir=off,metacopy=off,index=off");
        }
        None => mnt(
            "tmpfs",
            RW,
            Some("tmpfs"),
            MsFlags::empty(),
            Some(&format!("mode=0755,size={}", tmpfs_size(RW))),
        )?,
    }
    std::fs::create_dir_all(format!("{RW}/upper"))?;
    std::fs::create_dir_all(format!("{RW}/work"))?;
    mnt(
        "overlay",
        NEW_ROOT,
        Some("overlay"),
        MsFlags::empty(),
        Some(&options),
    )?;
    for api in ["/dev", "/proc", "/sys"] {
        mnt(
            api,
            &format!("{NEW_ROOT}{api}"),
            None,
            MsFlags::MS_MOVE,
            None,
        )?;
    }
    chdir(NEW_ROOT)?;
    mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
        .map_err(|e| io::Error::other(format!("moving the new root onto /: {e}")))?;
    chroot(".")?;
    chdir("/")?;
    mount_api_filesystems(build.is_none())?;
    sethostname(hostname)?;
    if build.is_none() {
        write_host_files(hostname, hosts);
    }
    Ok(())
}

/// Waits for the root disk node (devtmpfs creates it just after the driver probes)
/// and recognises its filesystem.
fn wait_and_detect() -> io::Result<RootFs> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut file = loop {
        match File::open(ROOT_DEVICE) {
            Ok(f) => break f,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(1)),
            Err(e) => return Err(io::Error::other(format!("root disk {ROOT_DEVICE}: {e}"))),
        }
    };
    let mut head = vec![0u8; 4096];
    let n = file.read(&mut head)?;
    RootFs::detect(&head[..n]).ok_or_else(|| {
        io::Error::other("the root image is neither EROFS nor ext4 (no superblock magic)")
    })
}

/// /dev/pts, /dev/shm, /run (`run_dirs`), /tmp (the image's, created if missing,
/// with `run_dirs`) and the /dev symlinks a process expects. A build VM keeps the
/// image's own /run and /tmp and adds nothing to the layer.
fn mount_api_filesystems(run_dirs: bool) -> io::Result<()> {
    let nosuid = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    mnt(
        "devpts",
        "/dev/pts",
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620,gid=5"),
    )?;
    let shm = format!("mode=1777,size={}", tmpfs_size("/dev/shm"));
    mnt("shm", "/dev/shm", Some("tmpfs"), nosuid, Some(&shm))?;
    if run_dirs {
        let run = format!("mode=0755,size={}", tmpfs_size("/run"));
        mnt("tmpfs", "/run", Some("tmpfs"), nosuid, Some(&run))?;
    }
    if run_dirs && std::fs::symlink_metadata("/tmp").is_err() {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir("/tmp")?;
        std::fs::set_permissions("/tmp", std::fs::Permissions::from_mode(0o1777))?;
    }
    for (link, target) in [
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
    ] {
        if !Path::new(link).exists() {
            symlink(target, link)?;
        }
    }
    Ok(())
}

/// /etc/hostname and /etc/hosts as Docker provides them, in every image (an image
/// without /etc gets one in the overlay; best effort: a file in the way stays).
fn write_host_files(hostname: &str, hosts: &str) {
    let _ = std::fs::create_dir_all("/etc");
    let _ = std::fs::write("/etc/hostname", format!("{hostname}\n"));
    let _ = std::fs::write("/etc/hosts", hosts);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn superblocks_are_recognised() {
        let mut head = vec![0u8; 4096];
        assert_eq!(RootFs::detect(&head), None);
        head[1024..1028].copy_from_slice(&0xE0F5_E1E2u32.to_le_bytes());
        assert_eq!(RootFs::detect(&head), Some(RootFs::Erofs));
        let mut head = vec![0u8; 4096];
        head[1080..1082].copy_from_slice(&0xEF53u16.to_le_bytes());
        assert_eq!(RootFs::detect(&head), Some(RootFs::Ext4));
        assert_eq!(RootFs::detect(&head[..100]), None);
    }
}
