//! Signals, TTY mode, timeouts, and failures before boot: what a user sees, and
//! that no QEMU is ever left behind.

use cast_tests::proc::{wait_for_exit, Guard, RUN_BOUND};
use cast_tests::{busybox_rootfs, qemu_processes_mentioning, RootFs, Run};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

/// A private copy of the root image, so this test can find its own QEMU by path.
fn own_rootfs() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("own-rootfs.erofs");
    std::fs::copy(busybox_rootfs(RootFs::Erofs), &path).unwrap();
    (dir, path)
}

/// No QEMU mentions `image`: a runner that has exited has killed and reaped its VM.
fn assert_no_qemu_left(image: &std::path::Path) {
    let left = qemu_processes_mentioning(&image.display().to_string());
    assert_eq!(left, Vec::<u32>::new(), "QEMU outlived the runner");
}

/// Starts a script that prints `ready` once its traps are set, and waits for it.
fn start_ready(
    image: &std::path::Path,
    script: &str,
) -> (Guard, BufReader<std::process::ChildStdout>) {
    let mut cmd = Run::new(image)
        .command(&["/bin/sh", "-c", script])
        .into_command();
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = Guard::spawn(cmd);
    let mut stdout = BufReader::new(child.0.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n", "the guest process did not start");
    (child, stdout)
}

#[test]
fn sigint_and_sigterm_reach_the_process_and_nothing_is_left() {
    let (_dir, image) = own_rootfs();
    for (signal, name, code) in [(Signal::SIGTERM, "TERM", 3), (Signal::SIGINT, "INT", 4)] {
        let script = format!(
            "trap 'echo got {name}; exit {code}' {name}; echo ready; while :; do sleep 0.05; done"
        );
        let (mut child, mut stdout) = start_ready(&image, &script);
        kill(Pid::from_raw(child.0.id() as i32), signal).unwrap();
        let status = child.wait_bounded(RUN_BOUND);
        let mut rest = String::new();
        stdout.read_to_string(&mut rest).unwrap();
        assert_eq!(rest, format!("got {name}\n"));
        assert_eq!(status, code, "exit code after SIG{name}");
        assert_no_qemu_left(&image);
    }
}

#[test]
fn sigkill_of_the_runner_takes_qemu_with_it() {
    let (_dir, image) = own_rootfs();
    let (mut child, _stdout) = start_ready(&image, "echo ready; sleep 100");
    let qemu = qemu_processes_mentioning(&image.display().to_string());
    assert_eq!(qemu.len(), 1);
    child.0.kill().unwrap(); // SIGKILL: the runner gets no chance to clean up
    child.0.wait().unwrap();
    assert!(
        wait_for_exit(qemu[0], Duration::from_secs(30)),
        "QEMU outlived the runner"
    );
}

#[test]
fn cast_timeout_stops_the_vm_with_124_and_its_message_starts_on_a_new_line() {
    // In TTY mode (forced: the output is captured here), after a prompt; the guest
    // also gets the host's TERM.
    let (_dir, image) = own_rootfs();
    let out = Run::new(&image)
        .env("CAST_TIMEOUT", "15")
        .env("CAST_TTY", "1")
        .env("TERM", "xterm-256color")
        .command(&[
            "/bin/sh",
            "-c",
            "echo \"term:$TERM\"; printf 'prompt> '; sleep 100",
        ])
        .output();
    assert_eq!(out.code, 124, "stderr: {}", out.stderr);
    assert_eq!(out.stdout_text(), "term:xterm-256color\r\nprompt> ");
    assert!(
        out.stderr.starts_with("\ncargo-cast: timed out") && out.stderr.contains("CAST_TIMEOUT"),
        "{:?}",
        out.stderr
    );
    assert_no_qemu_left(&image);
}

#[test]
fn tty_mode_gives_a_terminal_follows_resizes_and_restores_the_host_one() {
    use nix::sys::termios::{tcgetattr, LocalFlags};
    let size = |rows, cols| nix::pty::Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = nix::pty::openpty(Some(&size(33, 101)), None).unwrap();
    let before = tcgetattr(&pty.slave).unwrap();
    assert!(before
        .local_flags
        .contains(LocalFlags::ECHO | LocalFlags::ICANON));
    let script = "tty; stty size; trap 'stty size; exit 7' WINCH; \
                  test -t 0 && test -t 2 && echo all-tty; while :; do sleep 0.05; done";
    let mut cmd = Run::new(busybox_rootfs(RootFs::Erofs))
        .command(&["/bin/sh", "-c", script])
        .into_command();
    cmd.stdin(Stdio::from(pty.slave.try_clone().unwrap()))
        .stdout(Stdio::from(pty.slave.try_clone().unwrap()))
        .stderr(Stdio::piped());
    let mut child = Guard::spawn(cmd);
    // Read the master until the runner exits (EIO once every slave copy is closed).
    let mut master = std::fs::File::from(pty.master.try_clone().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = master.read(&mut buf) {
            let _ = tx.send(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    });
    let mut text = String::new();
    while !text.contains("all-tty") {
        match rx.recv_timeout(RUN_BOUND) {
            Ok(chunk) => text.push_str(&chunk),
            Err(_) => panic!("no all-tty from the guest; got {text:?}"),
        }
    }
    let during = tcgetattr(&pty.slave).unwrap();
    assert!(
        !during
            .local_flags
            .intersects(LocalFlags::ECHO | LocalFlags::ICANON | LocalFlags::ISIG),
        "host terminal not in raw mode during the run"
    );
    // SAFETY: TIOCSWINSZ reads one winsize from a valid pointer; the fd is the pty master.
    unsafe {
        libc::ioctl(
            std::os::fd::AsRawFd::as_raw_fd(&pty.master),
            libc::TIOCSWINSZ,
            &size(40, 120),
        )
    };
    kill(Pid::from_raw(child.0.id() as i32), Signal::SIGWINCH).unwrap();
    let code = child.wait_bounded(RUN_BOUND);
    let after = tcgetattr(&pty.slave).unwrap();
    drop(pty.slave);
    text.extend(rx.iter());
    assert_eq!(code, 7, "the resize did not reach the guest: {text:?}");
    assert!(text.contains("/dev/pts/0\r\n"), "{text:?}");
    assert!(
        text.contains("33 101\r\n"),
        "initial window size not passed: {text:?}"
    );
    assert!(text.contains("40 120\r\n"), "resize not passed: {text:?}");
    assert_eq!(
        after.local_flags, before.local_flags,
        "host terminal not restored"
    );
    assert_eq!(
        after.input_flags, before.input_flags,
        "host terminal not restored"
    );
}

#[test]
fn a_missing_kernel_is_125_and_says_how_to_get_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = Run::new(busybox_rootfs(RootFs::Erofs))
        .env("CAST_KERNEL", dir.path().to_str().unwrap())
        .command(&["true"])
        .output();
    assert_eq!(out.code, 125);
    assert!(
        out.stderr.starts_with("cargo-cast: no guest kernel found"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("cargo cast kernel fetch"),
        "{}",
        out.stderr
    );
}

#[test]
fn missing_qemu_is_125_and_says_what_to_install() {
    let out = Run::new(busybox_rootfs(RootFs::Erofs))
        .env("CAST_QEMU", "/nonexistent/qemu-system-x86_64")
        .command(&["true"])
        .output();
    assert_eq!(out.code, 125);
    assert!(
        out.stderr.contains("apt-get install qemu-system-x86"),
        "{}",
        out.stderr
    );
    let out = Run::new(busybox_rootfs(RootFs::Erofs))
        .env("PATH", "/nonexistent")
        .command(&["true"])
        .output();
    assert_eq!(out.code, 125);
    assert!(
        out.stderr.contains("qemu-system-x86_64 not found"),
        "{}",
        out.stderr
    );
}

#[test]
fn bad_settings_are_125_and_name_the_variable() {
    // Refused before anything boots: unreadable, too little memory to boot, more
    // vCPUs than a microVM boots with.
    let (_dir, image) = own_rootfs();
    for (var, value, says) in [
        ("CAST_MEMORY", "lots", "not a size"),
        ("CAST_MEMORY", "64M", "below the minimum"),
        ("CAST_CPUS", "255", "above the maximum"),
    ] {
        let out = Run::new(&image).env(var, value).command(&["true"]).output();
        assert_eq!(out.code, 125, "{var}={value}: {}", out.stderr);
        assert!(
            out.stderr
                .starts_with(&format!("cargo-cast: {var}=\"{value}\": {says}")),
            "{}",
            out.stderr
        );
        assert!(qemu_processes_mentioning(&image.display().to_string()).is_empty());
    }
}

#[test]
fn a_guest_kernel_panic_is_125_with_the_panic_reason() {
    // The process crashes the guest kernel on purpose (magic SysRq `c`): a panic that
    // does not depend on the kernel's size or the VM's memory.
    let (_dir, image) = own_rootfs();
    let out = Run::new(&image)
        .command(&["/bin/sh", "-c", "echo c > /proc/sysrq-trigger; sleep 100"])
        .output();
    assert_eq!(out.code, 125, "stderr: {}", out.stderr);
    assert!(
        out.stderr.starts_with(
            "cargo-cast: the guest kernel panicked: Kernel panic - not syncing: sysrq triggered crash"
        ),
        "{}",
        out.stderr
    );
    assert_no_qemu_left(&image);
}

#[test]
fn hup_quit_usr1_and_usr2_are_forwarded_too() {
    let (_dir, image) = own_rootfs();
    let script =
        "for s in HUP QUIT USR1; do trap \"echo $s\" $s; done; trap 'echo USR2; exit 9' USR2; \
                  echo ready; while :; do sleep 0.05; done";
    let (mut child, mut stdout) = start_ready(&image, script);
    let runner = Pid::from_raw(child.0.id() as i32);
    for (signal, name) in [
        (Signal::SIGHUP, "HUP"),
        (Signal::SIGQUIT, "QUIT"),
        (Signal::SIGUSR1, "USR1"),
        (Signal::SIGUSR2, "USR2"),
    ] {
        kill(runner, signal).unwrap();
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert_eq!(line, format!("{name}\n"), "SIG{name} was not forwarded");
    }
    assert_eq!(child.wait_bounded(RUN_BOUND), 9);
    assert_no_qemu_left(&image);
}

#[test]
fn a_boot_that_never_comes_up_is_retried_once_then_reported() {
    // A "QEMU" that starts and never boots anything (it blocks reading a FIFO no one
    // writes): both boots time out and are stopped, whatever the machine's speed.
    let (dir, image) = own_rootfs();
    let fifo = dir.path().join("never");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let qemu = dir.path().join("qemu-system-x86_64");
    std::fs::write(
        &qemu,
        format!("#!/bin/sh\nread -r line <> '{}'\n", fifo.display()),
    )
    .unwrap();
    std::fs::set_permissions(&qemu, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = Run::new(&image)
        .env("CAST_QEMU", qemu.to_str().unwrap())
        .env("CAST_BOOT_TIMEOUT", "0.5")
        .command(&["true"])
        .output();
    assert_eq!(out.code, 125, "stderr: {}", out.stderr);
    assert_eq!(
        out.stderr.matches("starting it once more").count(),
        1,
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("the VM did not boot within"),
        "{}",
        out.stderr
    );
    assert_no_qemu_left(&image);
}
