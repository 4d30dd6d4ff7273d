//! `cargo cast run`: real kernel, real QEMU, busybox root images.
//!
//! Each test boots as few VMs as it needs; exit codes need one boot each.

use cast_tests::{busybox_rootfs, qemu_processes_mentioning, RootFs, Run};
use sha2::{Digest, Sha256};

fn erofs() -> &'static std::path::Path {
    busybox_rootfs(RootFs::Erofs)
}

fn sh(script: &str) -> Run {
    Run::new(erofs()).command(&["/bin/sh", "-c", script])
}

#[test]
fn exit_codes_are_the_processs_own() {
    for (script, code) in [("exit 1", 1), ("exit 42", 42), ("kill -KILL $$", 137)] {
        let out = sh(script).output();
        assert_eq!(out.code, code, "{script}: stderr: {}", out.stderr);
        assert_eq!(out.stderr, "", "{script}");
    }
}

#[test]
fn commands_that_cannot_run_give_126_and_127() {
    let out = Run::new(erofs())
        .command(&["no-such-command", "x"])
        .output();
    assert_eq!(out.code, 127, "stderr: {}", out.stderr);
    assert!(
        out.stderr.contains("no-such-command") && out.stderr.contains("not found in $PATH"),
        "{}",
        out.stderr
    );
    let out = Run::new(erofs()).command(&["/etc/passwd"]).output();
    assert_eq!(out.code, 126, "stderr: {}", out.stderr);
    assert!(out.stderr.contains("permission denied"), "{}", out.stderr);
}

#[test]
fn stdout_and_stderr_stay_separate() {
    let out =
        sh("echo out1; echo err1 >&2; echo out2; echo err2 >&2; cat /data/hello.txt").output();
    assert_eq!(out.code, 0, "stderr: {}", out.stderr);
    assert_eq!(out.stdout_text(), "out1\nout2\nhello from the image\n");
    assert_eq!(out.stderr, "err1\nerr2\n");
}

#[test]
fn binary_stdin_passes_through_unchanged_with_eof() {
    // Every byte value, including NUL and the terminal control characters.
    let data: Vec<u8> = (0..1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let out = Run::new(erofs())
        .command(&["cat"])
        .stdin(data.clone())
        .output();
    assert_eq!(out.code, 0, "stderr: {}", out.stderr);
    assert_eq!(out.stdout.len(), data.len());
    assert!(out.stdout == data, "stdout differs from stdin");
}

#[test]
fn a_large_stream_goes_through_cat_without_loss() {
    // 256 MiB through the VM and back: no loss, no reordering, no deadlock. (Guest
    // pipes run at a few MiB/s under TCG, so this is the longest test; 1 GiB was
    // checked by hand.) Alone: minutes of TCG work that parallel VMs would stretch
    // past the run's own timeout.
    let _alone = cast_tests::tier::alone();
    let data: Vec<u8> = (0..256 * 1024 * 1024u32)
        .map(|i| (i ^ (i >> 11)) as u8)
        .collect();
    let want = format!("{:x}", Sha256::digest(&data));
    let out = sh("cat").stdin(data).output();
    assert_eq!(out.code, 0, "stderr: {}", out.stderr);
    assert_eq!(out.stdout.len(), 256 * 1024 * 1024);
    assert_eq!(format!("{:x}", Sha256::digest(&out.stdout)), want);
}

#[test]
fn env_workdir_and_user_apply() {
    let out = Run::new(erofs())
        .flag(&["-e", "GREETING=hi there", "-w", "/srv/app", "-u", "alice"])
        .command(&[
            "/bin/sh",
            "-c",
            "echo \"$GREETING\"; pwd; id -u; id -g; id -G; echo $HOME; echo $PATH",
        ])
        .output();
    assert_eq!(out.code, 0, "stderr: {}", out.stderr);
    assert_eq!(
        out.stdout_text(),
        "hi there\n/srv/app\n1000\n1000\n1000 10\n/home/alice\n\
         /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
    );
    let out = Run::new(erofs())
        .flag(&["-u", "4242:77"])
        .command(&["/bin/sh", "-c", "id -u; id -g"])
        .output();
    assert_eq!(out.stdout_text(), "4242\n77\n");
    let out = Run::new(erofs())
        .flag(&["-u", "mallory"])
        .command(&["id"])
        .output();
    assert_eq!(out.code, 125);
    assert!(
        out.stderr.contains("unable to find user mallory"),
        "{}",
        out.stderr
    );
}

#[test]
fn writes_succeed_and_are_gone_on_the_next_run() {
    let out = sh("echo scratch > /written && cat /written && echo more >> /data/hello.txt && wc -l < /data/hello.txt").output();
    assert_eq!(out.code, 0, "stderr: {}", out.stderr);
    assert_eq!(out.stdout_text(), "scratch\n2\n");
    let out = sh("test ! -e /written && cat /data/hello.txt").output();
    assert_eq!(out.code, 0, "a write survived the VM: {}", out.stderr);
    assert_eq!(out.stdout_text(), "hello from the image\n");
}

#[test]
fn cpus_and_memory_settings_reach_the_guest() {
    let out = sh("nproc; awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo")
        .env("CAST_CPUS", "1")
        .env("CAST_MEMORY", "256M")
        .output();
    assert_eq!(out.code, 0, "stderr: {}", out.stderr);
    let text = out.stdout_text();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("1"));
    let mem: u32 = lines.next().unwrap().parse().unwrap();
    assert!(
        (180..=256).contains(&mem),
        "MemTotal {mem} MiB for CAST_MEMORY=256M"
    );
    let out = sh("nproc").output();
    assert_eq!(out.stdout_text(), "2\n", "default CAST_CPUS is 2");
}

#[test]
fn an_ext4_root_image_works_too() {
    let out = Run::new(busybox_rootfs(RootFs::Ext4))
        .command(&[
            "/bin/sh",
            "-c",
            "cat /data/hello.txt; grep ' / ' /proc/mounts | cut -d' ' -f3",
        ])
        .output();
    assert_eq!(out.code, 0, "stderr: {}", out.stderr);
    assert_eq!(out.stdout_text(), "hello from the image\noverlay\n");
}

#[test]
fn a_closed_host_stdout_ends_the_process_like_a_pipe() {
    // `yes` writes forever; once the reader is gone its writes must fail (SIGPIPE).
    let mut cmd = Run::new(erofs()).command(&["yes"]).into_command();
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cast_tests::proc::Guard::spawn(cmd);
    let mut stdout = child.0.stdout.take().unwrap();
    let mut first = [0u8; 4];
    std::io::Read::read_exact(&mut stdout, &mut first).unwrap();
    assert_eq!(&first, b"y\ny\n");
    drop(stdout);
    let code = child.wait_bounded(cast_tests::proc::RUN_BOUND);
    assert_eq!(code, 141, "yes should die of SIGPIPE (128+13)");
}

#[test]
fn a_bad_root_image_is_a_clear_runtime_failure() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.img");
    std::fs::write(&junk, vec![0x5a; 1 << 20]).unwrap();
    let out = Run::new(&junk).command(&["true"]).output();
    assert_eq!(out.code, 125);
    assert!(
        out.stderr.contains("neither EROFS nor ext4"),
        "{}",
        out.stderr
    );
    assert!(qemu_processes_mentioning(&junk.display().to_string()).is_empty());
    let odd = dir.path().join("odd.img");
    std::fs::write(&odd, vec![0; 1000]).unwrap();
    let out = Run::new(&odd).command(&["true"]).output();
    assert_eq!(out.code, 125);
    assert!(out.stderr.contains("multiple of 512"), "{}", out.stderr);
}

#[test]
fn the_images_tmp_is_kept_and_filling_every_tmpfs_is_enospc_not_the_oom_killer() {
    // The image has a file in /tmp (Docker shows it); /tmp, /dev/shm and /run filled
    // to the brim together stay below the guest's memory.
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    cast_tests::busybox_tree(&tree);
    std::fs::create_dir(tree.join("tmp")).unwrap();
    std::fs::write(tree.join("tmp/from-image"), "kept\n").unwrap();
    let image = dir.path().join("rootfs.erofs");
    let status = std::process::Command::new("mkfs.erofs")
        .args(["--quiet", "--all-root"])
        .arg(&image)
        .arg(&tree)
        .status()
        .expect("mkfs.erofs (erofs-utils)");
    assert!(status.success());
    let script = "cat /tmp/from-image; stat -c %a /tmp; \
                  for d in /tmp /dev/shm /run; do dd if=/dev/zero of=$d/fill bs=1M 2>/dev/null; done; \
                  echo survived";
    let out = Run::new(&image)
        .env("CAST_MEMORY", "256")
        .command(&["/bin/sh", "-c", script])
        .output();
    assert_eq!(out.code, 0, "stderr: {}", out.stderr);
    assert_eq!(out.stdout_text(), "kept\n755\nsurvived\n", "{}", out.stderr);
}

#[test]
fn a_process_the_oom_killer_takes_is_137_and_says_so() {
    let out = sh("exec awk 'BEGIN { while (1) a[i++] = sprintf(\"%0100000d\", i) }'")
        .env("CAST_MEMORY", "256")
        .output();
    assert_eq!(out.code, 137, "stderr: {}", out.stderr);
    assert_eq!(
        out.stderr,
        "cargo-cast: the process was killed by the guest's OOM killer (out of memory); raise CAST_MEMORY\n"
    );
}
