//! Nothing outlives a run, not even a zombie: QEMU is killed *and reaped* before the
//! runner returns, so under a parent that never reaps (PID 1 of a container without
//! an init) no zombies pile up.
//!
//! One test in its own binary: it reads this process's children from /proc, which any
//! other test running alongside would disturb.

use cast_core::VmSettings;
use cast_runner::{DiskSlice, KernelImage, RunRequest};
use cast_tests::{busybox_rootfs, RootFs, Run};

/// Every child of this process (all threads), zombies included.
fn children() -> Vec<String> {
    let mut pids = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let list = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        pids.extend(list.split_whitespace().map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            format!("{pid}: {}", stat.trim_end())
        }));
    }
    pids
}

#[test]
fn no_qemu_is_left_behind_not_even_a_zombie() {
    // Adopt orphans as a container's PID 1 does: a QEMU its runner left unreaped
    // would become our child.
    // SAFETY: prctl with integer arguments only.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(rc, 0, "PR_SET_CHILD_SUBREAPER");
    let image = busybox_rootfs(RootFs::Erofs);

    // `cargo cast run` as a process that exits.
    let out = Run::new(image).command(&["true"]).output();
    assert_eq!(out.code, 0, "stderr: {}", out.stderr);
    assert_eq!(
        children(),
        Vec::<String>::new(),
        "left behind by cargo-cast"
    );

    // `cast_runner::run` in this process: when it returns, its QEMU is gone.
    let bundle = cast_kernel::KernelBundle::locate(None).expect("`cargo xtask kernel`");
    let code = cast_runner::run(RunRequest {
        disks: Vec::new(),
        output: None,
        program: "reaping-test".into(),
        kernel: KernelImage::File(bundle.kernel_path()),
        initrd: cast_guest::initrd::build(&bundle).unwrap().into(),
        root: DiskSlice {
            path: image.to_owned(),
            offset: 0,
            size: std::fs::metadata(image).unwrap().len(),
        },
        pass_fds: Vec::new(),
        spec: cast_proto::StartSpec {
            argv: vec!["true".into()],
            hostname: "reaping".into(),
            ..Default::default()
        },
        settings: VmSettings {
            tty: Some(false),
            interactive: false,
            ..VmSettings::default()
        },
    })
    .unwrap();
    assert_eq!(code, 0);
    assert_eq!(
        children(),
        Vec::<String>::new(),
        "left behind by cast_runner::run"
    );
}
