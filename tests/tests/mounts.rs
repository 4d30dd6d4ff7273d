//! Host mounts (`-v`, `CAST_MOUNT`) with a real kernel that has 9p, real QEMU.
//!
//! Three boots: everything a root user checks in one (data in and out, `ro`,
//! single files, owners, a hostile guest); the same as an unprivileged user (the
//! user-namespace path of single-file mounts); and a kernel without 9p.

use cast_tests::{busybox_rootfs, cargo_cast, has_9p, kernel_with_9p, output_of, RootFs, Run};
use sha2::{Digest, Sha256};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const BIG: usize = 256 << 20;
const SMALL_FILES: usize = 10_000;
/// A hang guard for the run that moves 256 MiB and 20,000 files through 9p under
/// emulation (a few minutes on a busy 2-core machine), not a speed requirement.
const BULK_BOUND: Duration = Duration::from_secs(1800);
/// A boot guard for machines as busy as the 2-core ones these tests run on, where
/// the default 30 s was seen to pass before the generic kernel was up.
const BOOT_BOUND: &str = "120";

fn sha256(data: &[u8]) -> String {
    format!("{:x}", Sha256::digest(data))
}

/// 10,000 small files (0–3 KiB, distinct contents) in 100 directories.
fn write_tree(root: &Path) {
    for i in 0..SMALL_FILES {
        let dir = root.join(format!("d{:02}", i % 100));
        std::fs::create_dir_all(&dir).unwrap();
        let body: Vec<u8> = (0..(i * 37) % 3072)
            .map(|j| (i * 131 + j * 7) as u8)
            .collect();
        std::fs::write(dir.join(format!("f{i}")), body).unwrap();
    }
}

/// Every file under `a` has the same bytes under `b`, and `b` has no others.
fn assert_same_tree(a: &Path, b: &Path) {
    let mut count = 0;
    for d in std::fs::read_dir(a).unwrap().flatten() {
        let names: Vec<_> = std::fs::read_dir(d.path()).unwrap().flatten().collect();
        let other = b.join(d.file_name());
        assert_eq!(
            std::fs::read_dir(&other).unwrap().count(),
            names.len(),
            "{}",
            other.display()
        );
        for f in names {
            let theirs = std::fs::read(other.join(f.file_name())).unwrap();
            assert!(
                std::fs::read(f.path()).unwrap() == theirs,
                "{} differs",
                f.path().display()
            );
            count += 1;
        }
    }
    assert_eq!(count, SMALL_FILES);
}

#[test]
fn mounts_carry_data_both_ways_enforce_ro_and_share_single_files_alone() {
    let host = tempfile::tempdir().unwrap();
    let (work, ro, etc) = (
        host.path().join("work"),
        host.path().join("ro"),
        host.path().join("etc"),
    );
    for d in [&work, &ro, &etc] {
        std::fs::create_dir(d).unwrap();
    }
    let big: Vec<u8> = (0..BIG as u32).map(|i| (i ^ (i >> 13)) as u8).collect();
    std::fs::write(work.join("big"), &big).unwrap();
    write_tree(&work.join("tree"));
    std::fs::write(work.join("input.txt"), "the user's input\n").unwrap();
    std::fs::write(ro.join("kept"), "read-only dir\n").unwrap();
    std::fs::write(etc.join("app.conf"), "setting=1\n").unwrap();
    std::fs::write(etc.join("secret.txt"), "SIBLING-SECRET\n").unwrap();
    std::fs::write(host.path().join("in.txt"), "read-only file\n").unwrap();

    // In to the guest's memory and back out, so both directions carry every byte.
    let script = r#"
        dd if=big of=/tmp/big bs=1M 2>/dev/null && dd if=/tmp/big of=big.out bs=1M 2>/dev/null
        cp -a tree /tmp/tree && mkdir out && cp -a /tmp/tree out/tree
        cat input.txt
        echo x > /ro/new 2>/dev/null && echo ro-dir-writable || echo ro-dir-refused
        mount -o remount,rw /ro 2>/dev/null; echo x > /ro/new 2>/dev/null && echo ro-remount-writable || echo ro-remount-refused
        cat /in.txt; echo x >> /in.txt 2>/dev/null && echo ro-file-writable || echo ro-file-refused
        echo setting=2 >> /etc/app.conf
        mkdir alice && chmod 777 alice && su alice -c 'echo hi > alice/by-alice' && stat -c 'guest-owner %u' alice/by-alice
        umount /etc/app.conf && mkdir -p /mnt/h && mount -t 9p -o trans=virtio,version=9p2000.L cast2 /mnt/h
        echo share: $(ls -a /mnt/h)
        cat /mnt/h/secret.txt /mnt/h/../secret.txt /mnt/h/../etc/secret.txt 2>/dev/null
        echo done
    "#;
    let out = Run::new(busybox_rootfs(RootFs::Erofs))
        .env("CAST_KERNEL", kernel_with_9p().to_str().unwrap())
        .env("CAST_MEMORY", "1G")
        .env("CAST_BOOT_TIMEOUT", BOOT_BOUND)
        .env(
            "CAST_MOUNT",
            "work:/work,ro:/ro:ro;etc/app.conf:/etc/app.conf,in.txt:/in.txt:ro",
        )
        .flag(&["-w", "/work"])
        .command(&["/bin/sh", "-c", script])
        .in_dir(host.path())
        .output_within(BULK_BOUND);
    let stdout = out.stdout_text();
    assert_eq!(out.code, 0, "stdout: {stdout}\nstderr: {}", out.stderr);
    let lines: Vec<&str> = stdout.lines().collect();
    let big_out = std::fs::read(work.join("big.out")).unwrap();
    assert_eq!(sha256(&big_out), sha256(&big), "big.out differs");
    assert_same_tree(&work.join("tree"), &work.join("out/tree"));
    for want in [
        "the user's input",
        "ro-dir-refused",
        "ro-remount-refused",
        "read-only file",
        "ro-file-refused",
        "guest-owner 1000",
        "share: . .. app.conf",
        "done",
    ] {
        assert!(lines.contains(&want), "no {want:?} in:\n{stdout}");
    }
    assert!(!stdout.contains("SIBLING-SECRET"), "{stdout}");
    assert!(!ro.join("new").exists());
    assert_eq!(
        std::fs::read_to_string(host.path().join("in.txt")).unwrap(),
        "read-only file\n"
    );
    assert_eq!(
        std::fs::read_to_string(etc.join("app.conf")).unwrap(),
        "setting=1\nsetting=2\n"
    );
    // Whoever the guest process was, the host files belong to the invoking user.
    let me = nix::unistd::geteuid().as_raw();
    for f in ["big.out", "out/tree/d07/f7", "alice/by-alice"] {
        assert_eq!(std::fs::metadata(work.join(f)).unwrap().uid(), me, "{f}");
    }
}

#[test]
fn an_unprivileged_user_shares_files_through_a_user_namespace() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("not root: the main mount test already runs as an unprivileged user");
        return;
    }
    // Everything the runner reads, readable by `nobody`.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (kernel, share) = (root.join("kernel"), root.join("share"));
    copy_dir(kernel_with_9p(), &kernel);
    std::fs::create_dir(&share).unwrap();
    std::fs::copy(busybox_rootfs(RootFs::Erofs), root.join("rootfs.erofs")).unwrap();
    std::fs::copy(cargo_cast(), root.join("cargo-cast")).unwrap();
    std::fs::write(root.join("file.txt"), "one\n").unwrap();
    std::fs::write(root.join("secret.txt"), "SIBLING-SECRET\n").unwrap();
    std::fs::create_dir(root.join("cache")).unwrap();
    let status = Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(root)
        .status()
        .unwrap();
    assert!(status.success());
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(root.join("cargo-cast"))
        .args(["cast", "run", "--rootfs", "rootfs.erofs"])
        .args(["-v", "share:/share", "-v", "file.txt:/file.txt", "--"])
        .args([
            "/bin/sh",
            "-c",
            "echo new > /share/new && echo two >> /file.txt && umount /file.txt && mkdir -p /mnt && \
             mount -t 9p -o trans=virtio cast1 /mnt && echo share: $(ls -a /mnt); \
             cat /mnt/secret.txt /mnt/../secret.txt 2>/dev/null; echo done",
        ])
        .current_dir(root)
        .env("HOME", root)
        .env("CAST_CACHE_DIR", root.join("cache"))
        .env("CAST_KERNEL", &kernel)
        .env("CAST_TIMEOUT", "150")
        .env("CAST_BOOT_TIMEOUT", BOOT_BOUND);
    let out = output_of(cmd, Vec::new());
    let stdout = out.stdout_text();
    assert_eq!(out.code, 0, "stdout: {stdout}\nstderr: {}", out.stderr);
    assert!(
        stdout.contains("share: . .. file.txt\n"),
        "stdout: {stdout}\nstderr: {}",
        out.stderr
    );
    assert!(
        stdout.ends_with("done\n") && !stdout.contains("SIBLING"),
        "{stdout}"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("file.txt")).unwrap(),
        "one\ntwo\n"
    );
    assert_eq!(std::fs::metadata(share.join("new")).unwrap().uid(), 65534);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn bad_mounts_fail_with_125_before_or_at_boot() {
    let dir = tempfile::tempdir().unwrap();
    let run = || {
        Run::new(busybox_rootfs(RootFs::Erofs))
            .in_dir(dir.path())
            .env("CAST_BOOT_TIMEOUT", BOOT_BOUND)
    };
    let out = run()
        .flag(&["-v", "no-such-dir:/x"])
        .command(&["true"])
        .output();
    assert_eq!(out.code, 125, "{}", out.stderr);
    let missing = dir.path().join("no-such-dir").display().to_string();
    assert!(out.stderr.contains(&missing), "{}", out.stderr);
    let out = run()
        .env("CAST_MOUNT", "/tmp:relative")
        .command(&["true"])
        .output();
    assert_eq!(out.code, 125, "{}", out.stderr);
    assert!(out.stderr.contains("CAST_MOUNT"), "{}", out.stderr);

    // A kernel without 9p: Debian's cloud kernel (unless it has 9p).
    let default = cast_kernel::debian_bundle_dir().unwrap();
    if has_9p(&default) {
        eprintln!("the default kernel has 9p: no kernel without it to check against");
        return;
    }
    let out = run()
        .env("CAST_KERNEL", default.to_str().unwrap())
        .flag(&["-v", ".:/x"])
        .command(&["true"])
        .output();
    assert_eq!(out.code, 125, "{}", out.stderr);
    assert!(
        out.stderr.contains("9p") && out.stderr.contains("linux-image-amd64"),
        "{}",
        out.stderr
    );
}
