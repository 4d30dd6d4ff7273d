//! Running `cargo cast run` as a child that cannot outlive or hang the test.

use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;
use wait_timeout::ChildExt as _;

/// Upper bound for one run in the tests; a run that takes longer is killed and fails.
pub const RUN_BOUND: Duration = Duration::from_secs(180);

/// A `cargo cast run` invocation being set up.
#[derive(Debug)]
pub struct Run {
    cmd: Command,
    stdin: Option<Vec<u8>>,
}

/// What a finished run produced.
#[derive(Debug)]
pub struct Output {
    /// Exit code (128 + signal if the runner itself was killed).
    pub code: i32,
    /// Everything on stdout.
    pub stdout: Vec<u8>,
    /// Everything on stderr, lossily decoded.
    pub stderr: String,
}

impl Output {
    /// Stdout as text.
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

impl Run {
    /// `cargo-cast cast run --rootfs ROOTFS [flags] -- COMMAND...`; flags are added
    /// with [`Run::flag`] before [`Run::command`].
    pub fn new(rootfs: &Path) -> Self {
        let mut cmd = Command::new(crate::cargo_cast());
        cmd.args(["cast", "run", "--rootfs"]).arg(rootfs);
        // CAST_TIMEOUT, the guard that stops the VM before the test's bound, is set
        // when the run starts ([`Run::guarded`]), from that bound.
        without_cast_env(&mut cmd);
        Run { cmd, stdin: None }
    }

    /// Adds runner flags (before the command).
    pub fn flag(mut self, args: &[&str]) -> Self {
        self.cmd.args(args);
        self
    }

    /// Sets the command to run in the VM.
    pub fn command(mut self, argv: &[&str]) -> Self {
        self.cmd.arg("--").args(argv);
        self
    }

    /// Sets an environment variable for the runner.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.cmd.env(key, value);
        self
    }

    /// Runs the runner in `dir` (where relative mount paths resolve).
    pub fn in_dir(mut self, dir: &Path) -> Self {
        self.cmd.current_dir(dir);
        self
    }

    /// Feeds these bytes to the runner's stdin (default: empty stdin).
    pub fn stdin(mut self, data: Vec<u8>) -> Self {
        self.stdin = Some(data);
        self
    }

    /// The underlying command, for tests that wire stdio themselves (guarded as a
    /// run bounded by [`RUN_BOUND`]).
    pub fn into_command(self) -> Command {
        self.guarded(RUN_BOUND).cmd
    }

    /// Sets the runner's own `CAST_TIMEOUT` 30 s inside `bound`, unless the test set
    /// one with [`Run::env`].
    fn guarded(mut self, bound: Duration) -> Self {
        let set_by_test = self
            .cmd
            .get_envs()
            .any(|(k, v)| k == "CAST_TIMEOUT" && v.is_some());
        if !set_by_test {
            let guard = bound.saturating_sub(Duration::from_secs(30)).as_secs();
            self.cmd.env("CAST_TIMEOUT", guard.to_string());
        }
        self
    }

    /// Runs to completion (bounded by [`RUN_BOUND`]) and collects the output.
    pub fn output(self) -> Output {
        self.output_within(RUN_BOUND)
    }

    /// As [`Run::output`] for a run that moves a lot of data: bounded by `bound`,
    /// with the runner's own `CAST_TIMEOUT` 30 s inside it (unless the test set one).
    pub fn output_within(self, bound: Duration) -> Output {
        let mut run = self.guarded(bound);
        let stdin = run.stdin.take().unwrap_or_default();
        output_bounded(run.cmd, stdin, bound)
    }
}

/// Runs `cmd` with `stdin` to completion (bounded by [`RUN_BOUND`]) and collects
/// its output.
pub fn output_of(cmd: Command, stdin: Vec<u8>) -> Output {
    output_bounded(cmd, stdin, RUN_BOUND)
}

/// As [`output_of`], bounded by `bound`.
pub fn output_bounded(mut cmd: Command, stdin: Vec<u8>, bound: Duration) -> Output {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = Guard::spawn(cmd);
    let mut pipe = child.0.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        let _ = pipe.write_all(&stdin);
    });
    let out = child.0.stdout.take().unwrap();
    let err = child.0.stderr.take().unwrap();
    let out_reader = read_in_background(out);
    let err_reader = read_in_background(err);
    let code = child.wait_bounded(bound);
    let _ = feeder.join();
    Output {
        code,
        stdout: out_reader.join().unwrap(),
        stderr: String::from_utf8_lossy(&err_reader.join().unwrap()).into_owned(),
    }
}

/// Reads `r` to its end on a thread (so a full pipe cannot stall the child).
pub fn read_in_background(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = r.read_to_end(&mut v);
        v
    })
}

/// A child process that is killed and reaped when dropped; it holds the
/// [`tier`](crate::tier) shared while it lives.
#[derive(Debug)]
pub struct Guard(
    pub Child,
    #[allow(dead_code, reason = "held for its Drop")] crate::tier::Shared,
);

impl Guard {
    /// Spawns `cmd`.
    pub fn spawn(mut cmd: Command) -> Self {
        let tier = crate::tier::shared();
        Guard(cmd.spawn().expect("spawning the program under test"), tier)
    }

    /// Waits at most `bound`; panics (after killing it) if the child is still running.
    pub fn wait_bounded(&mut self, bound: Duration) -> i32 {
        let status = wait_bounded(&mut self.0, bound)
            .unwrap_or_else(|| panic!("cargo-cast did not finish within {bound:?}"));
        status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
    }
}

/// Waits for `child` at most `bound`; `None` (after killing and reaping it) if it
/// was still running.
pub fn wait_bounded(child: &mut Child, bound: Duration) -> Option<ExitStatus> {
    let status = child.wait_timeout(bound).expect("waiting for a child");
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    status
}

/// Removes every `CAST_*` variable of the test's own environment from `cmd`, so a
/// developer's settings never change what a test sees.
pub fn without_cast_env(cmd: &mut Command) -> &mut Command {
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("CAST_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits at most `bound` for process `pid` (not necessarily a child) to end; whether
/// it did (or was gone already).
pub fn wait_for_exit(pid: u32, bound: Duration) -> bool {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
    }
    // SAFETY: the syscall returned a new fd that nothing else owns.
    let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) };
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    let timeout = PollTimeout::try_from(bound).unwrap_or(PollTimeout::MAX);
    poll(&mut fds, timeout).is_ok_and(|n| n == 1)
}

/// Pids of QEMU processes whose command line mentions `needle` (e.g. a test's own
/// root image path).
pub fn qemu_processes_mentioning(needle: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        if cmdline.contains("qemu-system") && cmdline.contains(needle) {
            found.push(pid);
        }
    }
    found
}
