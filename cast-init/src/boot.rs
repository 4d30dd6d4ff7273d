//! The first steps in the initramfs: API filesystems and kernel modules.

use nix::mount::{mount, MsFlags};
use std::ffi::CString;
use std::fs::File;
use std::io;

/// The list of modules the initrd carries, one path per line, dependencies first.
const MODULE_LIST: &str = "/cast/modules.list";

/// Mounts /dev (devtmpfs), /proc and /sys inside the initramfs.
pub fn mount_early() -> io::Result<()> {
    for (fstype, target) in [("devtmpfs", "/dev"), ("proc", "/proc"), ("sysfs", "/sys")] {
        std::fs::create_dir_all(target)?;
        mount(
            Some(fstype),
            target,
            Some(fstype),
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
            None::<&str>,
        )
        .map_err(|e| io::Error::other(format!("mounting {fstype} on {target}: {e}")))?;
    }
    Ok(())
}

/// Loads every module in [`MODULE_LIST`] in order; one already loaded is fine.
pub fn load_modules() -> io::Result<()> {
    let list = match std::fs::read_to_string(MODULE_LIST) {
        Ok(list) => list,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let no_params = CString::default();
    for path in list.lines().filter(|l| !l.is_empty()) {
        let file = File::open(path)?;
        match nix::kmod::finit_module(&file, &no_params, nix::kmod::ModuleInitFlags::empty()) {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
            Err(e) => return Err(io::Error::other(format!("loading module {path}: {e}"))),
        }
    }
    Ok(())
}
