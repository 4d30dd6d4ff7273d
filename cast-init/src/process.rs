//! Starting the one process, waiting for it, and collecting its exit report.
//!
//! The process gets pipes (or a pty in TTY mode) whose other ends the [`pumps`]
//! connect to the ports. When it exits, every other process in the VM is killed (the
//! "container" ends with its main process, as in Docker), zombies are reaped, the
//! pumps drain, and the exit report carries the stream totals.

use crate::control::set_winsize;
use crate::log::Log;
use crate::ports::Channel;
use crate::pumps;
use crate::user::{self, User};
use cast_proto::{ExitStatus, GuestMsg, StartSpec, WinSize};
use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{Gid, Pid, Uid};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

/// `PATH` when the run config has none (Docker's default).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Runs the process described by `spec` to its end.
pub fn run(spec: StartSpec, channel: &mut Channel, log: &Log) -> Result<GuestMsg, Error> {
    let argv0 = spec.argv.first().ok_or("the command is empty")?.clone();
    let user = user::resolve(spec.user.as_deref())?;
    let workdir = spec.workdir.clone().unwrap_or_else(|| "/".into());
    std::fs::create_dir_all(&workdir)
        .map_err(|e| format!("cannot create the working directory {workdir}: {e}"))?;
    let controls = channel.start_controls();

    let mut cmd = Command::new(&argv0);
    cmd.args(&spec.argv[1..])
        .env_clear()
        .envs(environment(&spec, &user))
        .current_dir(&workdir);
    let pty = if spec.tty {
        let size = spec.winsize.unwrap_or(WinSize { rows: 24, cols: 80 });
        let pty = nix::pty::openpty(None, None)?;
        set_winsize(pty.master.as_fd(), size);
        cmd.stdin(Stdio::from(pty.slave.try_clone()?))
            .stdout(Stdio::from(pty.slave.try_clone()?))
            .stderr(Stdio::from(pty.slave));
        Some(pty.master)
    } else {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        None
    };
    drop_privileges_on_exec(&mut cmd, &user, spec.tty);

    let oom_kills_before = oom_kills();
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => return Ok(exec_failure(&argv0, &e)),
    };
    drop(cmd); // closes the parent's copies of the pty slave
    let pid = Pid::from_raw(child.id() as i32);
    log.step("process started");

    let (stdout, stderr) = match pty {
        Some(master) => {
            let input: OwnedFd = master.try_clone()?;
            let output: OwnedFd = master.try_clone()?;
            let _ = controls.pty.set(master);
            pumps::stdin(
                channel.stdin.take().expect("stdin port"),
                input.into(),
                controls.clone(),
                true,
            );
            (
                pumps::output(
                    output.into(),
                    channel.stdout.take().expect("stdout port"),
                    None,
                ),
                None,
            )
        }
        None => {
            let child_stdin = child.stdin.take().expect("piped stdin");
            pumps::stdin(
                channel.stdin.take().expect("stdin port"),
                File::from(OwnedFd::from(child_stdin)),
                controls.clone(),
                false,
            );
            let out = child.stdout.take().expect("piped stdout");
            let err = child.stderr.take().expect("piped stderr");
            (
                pumps::output(
                    File::from(OwnedFd::from(out)),
                    channel.stdout.take().expect("stdout port"),
                    Some(controls.clone()),
                ),
                Some(pumps::output(
                    File::from(OwnedFd::from(err)),
                    channel.stderr.take().expect("stderr port"),
                    None,
                )),
            )
        }
    };
    controls.set_child(pid);

    let status = reap_until(pid)?;
    log.step("process exited");
    // The main process is gone: end everything else, as a container would.
    let _ = kill(Pid::from_raw(-1), Signal::SIGKILL);
    reap_all();
    let stdout_bytes = stdout.join().unwrap_or(0);
    let stderr_bytes = stderr.map(|h| h.join().unwrap_or(0)).unwrap_or(0);
    // Nothing on the host can send SIGKILL into the VM: a SIGKILL while the OOM
    // killer was at work is the OOM killer's.
    let oom_killed =
        status == ExitStatus::Signal(Signal::SIGKILL as i32) && oom_kills() > oom_kills_before;
    Ok(GuestMsg::Exit {
        status,
        stdout_bytes,
        stderr_bytes,
        message: oom_killed.then(|| {
            "the process was killed by the guest's OOM killer (out of memory); raise CAST_MEMORY"
                .to_owned()
        }),
        layer_bytes: None,
    })
}

/// How many processes the kernel's OOM killer has killed since boot (`oom_kill` in
/// /proc/vmstat; 0 if unreadable).
fn oom_kills() -> u64 {
    std::fs::read_to_string("/proc/vmstat")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("oom_kill "))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// The process's environment: the run config's, plus Docker's defaults for `PATH`,
/// `HOSTNAME` and `HOME` where it has none.
fn environment(spec: &StartSpec, user: &User) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = spec
        .env
        .iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (kv.clone(), String::new()),
        })
        .collect();
    for (key, value) in [
        ("PATH", DEFAULT_PATH),
        ("HOSTNAME", spec.hostname.as_str()),
        ("HOME", user.home.as_str()),
    ] {
        if !env.iter().any(|(k, _)| k == key) {
            env.push((key.to_owned(), value.to_owned()));
        }
    }
    env
}

/// In the child, after fork: new session (and the pty as controlling terminal), then
/// groups, gid, uid.
fn drop_privileges_on_exec(cmd: &mut Command, user: &User, tty: bool) {
    let groups: Vec<Gid> = user.groups.iter().map(|g| Gid::from_raw(*g)).collect();
    let (uid, gid) = (Uid::from_raw(user.uid), Gid::from_raw(user.gid));
    let hook = move || -> io::Result<()> {
        nix::unistd::setsid()?;
        if tty {
            // SAFETY: TIOCSCTTY takes an integer argument; fd 0 is the pty slave the
            // child was given as stdin.
            if unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        nix::unistd::setgroups(&groups)?;
        nix::unistd::setgid(gid)?;
        nix::unistd::setuid(uid)?;
        Ok(())
    };
    // SAFETY: the hook runs between fork and exec and only makes async-signal-safe
    // system calls on values prepared before the fork; it allocates nothing.
    unsafe { cmd.pre_exec(hook) };
}

/// The report for a command that could not be started: 127 when it does not exist,
/// 126 when it cannot be executed (Docker's codes and wording).
fn exec_failure(argv0: &str, e: &io::Error) -> GuestMsg {
    let (code, why) = match e.kind() {
        io::ErrorKind::NotFound if !argv0.contains('/') => {
            (127, "executable file not found in $PATH".to_owned())
        }
        io::ErrorKind::NotFound => (127, "no such file or directory".to_owned()),
        io::ErrorKind::PermissionDenied => (126, "permission denied".to_owned()),
        _ => (126, e.to_string()),
    };
    GuestMsg::Exit {
        status: ExitStatus::Code(code),
        stdout_bytes: 0,
        stderr_bytes: 0,
        message: Some(format!("exec: \"{argv0}\": {why}")),
        layer_bytes: None,
    }
}

/// Reaps children (adopted orphans included) until `pid` ends; returns its status.
fn reap_until(pid: Pid) -> Result<ExitStatus, Error> {
    loop {
        match waitpid(None, None) {
            Ok(WaitStatus::Exited(p, code)) if p == pid => return Ok(ExitStatus::Code(code)),
            Ok(WaitStatus::Signaled(p, sig, _)) if p == pid => {
                return Ok(ExitStatus::Signal(sig as i32))
            }
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(format!("waiting for the process: {e}").into()),
        }
    }
}

/// Reaps whatever is left until there are no children.
fn reap_all() {
    while !matches!(waitpid(None, None), Err(Errno::ECHILD)) {}
}
