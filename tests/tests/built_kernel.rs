//! The kernel `cargo cast kernel build` makes boots and runs real software with
//! everything built in and no modules loaded: a busybox image with a static Rust
//! binary, 9p host mounts, the NAT to the host, a user namespace, and Debian bookworm
//! running python3.
//!
//! Compiling a kernel takes ~8 min of two cores, so these tests do not: they use the
//! bundle at `$CAST_BUILT_KERNEL`, else `<cache>/kernel/built` (`cargo xtask setup`
//! builds it), and are skipped (saying so) when there is none.

use cast_core::cache_root::CacheRoot;
use cast_kernel::KernelBundle;
use cast_tests::debian::debian_python_rootfs;
use cast_tests::http::Server;
use cast_tests::net::network_rootfs;
use cast_tests::Run;
use std::path::PathBuf;

fn built_kernel() -> Option<KernelBundle> {
    let dir = std::env::var_os("CAST_BUILT_KERNEL")
        .map(PathBuf::from)
        .or_else(|| CacheRoot::from_env().map(|c| c.built_kernel()))?;
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
fn the_built_kernel_runs_busybox_a_static_binary_mounts_the_network_and_a_user_namespace() {
    let Some(bundle) = built_kernel() else {
        return;
    };
    assert!(
        bundle.manifest.modules.is_empty(),
        "a built kernel has no modules"
    );
    let server = Server::start(|req| req.respond(200, &[], b"hello from the host\n"));
    let share = tempfile::tempdir().unwrap();
    std::fs::write(share.path().join("in.txt"), "shared by the host\n").unwrap();
    let script = format!(
        "uname -r; cat /data/hello.txt; test -e /proc/modules || echo no-modules
         grep -ow -e erofs -e overlay -e 9p /proc/filesystems | sort
         cat /share/in.txt; echo written in the guest > /share/out.txt
         wget -qO- {}
         udp-echo 2>&1 | grep -o 'usage: udp-echo PORT'
         unshare -Ur cat /proc/self/uid_map | tr -s ' ' | sed 's/^ //'",
        server.url("/file.txt").replace("127.0.0.1", "10.0.2.2"),
    );
    let out = Run::new(network_rootfs())
        .flag(&["--kernel", bundle.dir.to_str().unwrap()])
        .flag(&["-v", &format!("{}:/share", share.path().display())])
        .command(&["/bin/sh", "-c", &script])
        .output();
    assert_eq!(out.code, 0, "stderr: {}", out.stderr);
    let release = bundle.manifest.release.as_deref().unwrap_or_default();
    assert_eq!(
        out.stdout_text(),
        format!(
            "{release}\nhello from the image\nno-modules\n9p\nerofs\noverlay\n\
             shared by the host\nhello from the host\nusage: udp-echo PORT\n0 0 1\n"
        )
    );
    assert_eq!(
        std::fs::read_to_string(share.path().join("out.txt")).unwrap(),
        "written in the guest\n"
    );
}

#[test]
fn the_built_kernel_runs_debian_bookworm_and_python3() {
    let Some(bundle) = built_kernel() else {
        return;
    };
    let script = "import os, sqlite3, ssl, subprocess, threading\n\
        t = threading.Thread(target=lambda: None); t.start(); t.join()\n\
        db = sqlite3.connect(':memory:')\n\
        print(db.execute('select 6 * 7').fetchone()[0])\n\
        print(subprocess.run(['uname', '-r'], capture_output=True, text=True).stdout.strip())\n\
        print(open('/etc/debian_version').read().split('.')[0])\n";
    let out = Run::new(debian_python_rootfs())
        .flag(&["--kernel", bundle.dir.to_str().unwrap()])
        .command(&["python3", "-c", script])
        .output();
    assert_eq!(out.code, 0, "stderr: {}", out.stderr);
    let release = bundle.manifest.release.as_deref().unwrap_or_default();
    assert_eq!(out.stdout_text(), format!("42\n{release}\n12\n"));
}
