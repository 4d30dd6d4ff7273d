//! The initrd: the guest init plus the kernel bundle's modules, as a cpio archive made
//! in memory at run time (a few MB, a few ms) and handed to QEMU as a memfd, so no
//! file is ever written.
//!
//! Layout: `/init`, `/cast/modules.list` (absent when the bundle has no modules),
//! `/cast/mod/*.ko`, and the `/dev/console`
//! node the kernel needs to give init its stdio. Each line of the list is
//! `NAME PATH DEP,DEP…` (dependencies from the module's `.modinfo`), so the guest can
//! load independent modules in parallel.

use crate::GUEST_INIT;
use cast_kernel::KernelBundle;
use cpio::newc::Builder;
use std::io::{self, Write};

const DIR: u32 = 0o040_755;
const EXEC: u32 = 0o100_755;
const FILE: u32 = 0o100_644;
const CHAR_DEV: u32 = 0o020_600;

/// Builds the initrd for `bundle` into a byte vector.
pub fn build(bundle: &KernelBundle) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(GUEST_INIT.len() + (2 << 20));
    let mut ino = 0u32;
    let mut entry =
        |out: &mut Vec<u8>, name: &str, mode: u32, data: &[u8], rdev: Option<(u32, u32)>| {
            ino += 1;
            let mut b = Builder::new(name).ino(ino).mode(mode).nlink(1);
            if let Some((major, minor)) = rdev {
                b = b.rdev_major(major).rdev_minor(minor);
            }
            let mut w = b.write(out, data.len() as u32);
            w.write_all(data)?;
            w.finish().map(|_| ())
        };
    for dir in ["dev", "proc", "sys", "cast", "cast/mod"] {
        entry(&mut out, dir, DIR, &[], None)?;
    }
    entry(&mut out, "dev/console", CHAR_DEV, &[], Some((5, 1)))?;
    entry(&mut out, "init", EXEC, GUEST_INIT, None)?;
    let mut list = String::new();
    for path in bundle.module_paths() {
        let file = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let name = file.trim_end_matches(".ko").replace('-', "_");
        let deps = cast_kernel::module_depends(&path).map_err(io::Error::other)?;
        let data = std::fs::read(&path)?;
        entry(&mut out, &format!("cast/mod/{file}"), FILE, &data, None)?;
        list.push_str(&format!("{name} /cast/mod/{file} {}\n", deps.join(",")));
    }
    // A kernel with everything built in has no modules: no list, and the init loads
    // none.
    if !list.is_empty() {
        entry(&mut out, "cast/modules.list", FILE, list.as_bytes(), None)?;
    }
    cpio::newc::trailer(&mut out)?;
    Ok(out)
}
