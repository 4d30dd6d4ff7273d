//! The kernel `cargo cast kernel build` makes boots and runs a container: everything
//! built in, no modules loaded.
//!
//! Compiling a kernel takes ~8 min of two cores, so this test does not: it uses the
//! bundle at `$CAST_BUILT_KERNEL`, else `<cache>/kernel/built`, and is skipped (saying
//! so) when there is none. Provision it with `cargo cast kernel build`.

use cast_core::cache_root::CacheRoot;
use cast_kernel::KernelBundle;
use cast_tests::{busybox_rootfs, RootFs, Run};
use std::path::PathBuf;

fn built_kernel() -> Option<KernelBundle> {
    let dir = std::env::var_os("CAST_BUILT_KERNEL")
        .map(PathBuf::from)
        .or_else(|| CacheRoot::from_env().map(|c| c.kernels().join("built")))?;
    if !dir.join("bundle.json").exists() {
        eprintln!(
            "SKIPPED: no built kernel at {} (run `cargo cast kernel build` to provision it)",
            dir.display()
        );
        return None;
    }
    Some(KernelBundle::open(&dir).expect("the built kernel bundle opens"))
}

#[test]
fn the_built_kernel_boots_a_container_with_no_modules() {
    let Some(bundle) = built_kernel() else {
        return;
    };
    assert!(
        bundle.manifest.modules.is_empty(),
        "a built kernel has no modules"
    );
    let out = Run::new(busybox_rootfs(RootFs::Erofs))
        .flag(&["--kernel"])
        .flag(&[bundle.dir.to_str().unwrap()])
        .command(&[
            "/bin/sh",
            "-c",
            "uname -r; cat /data/hello.txt; test -e /proc/modules || echo no-modules; \
             grep -ow -e erofs -e overlay -e 9p /proc/filesystems | sort",
        ])
        .output();
    assert_eq!(out.code, 0, "stderr: {}", out.stderr);
    let release = bundle.manifest.release.as_deref().unwrap_or_default();
    assert_eq!(
        out.stdout_text(),
        format!("{release}\nhello from the image\nno-modules\n9p\nerofs\noverlay\n")
    );
}
