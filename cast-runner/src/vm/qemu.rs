//! The QEMU engine: a `microvm` machine with virtio-mmio devices.
//!
//! - Kernel: the uncompressed vmlinux (PVH entry); initrd: a memfd passed by fd.
//! - Root disk: `-blockdev raw` with `offset`/`size` over the file, read-only.
//! - Network: a `virtio-net-device` on QEMU's user-mode NAT ([`crate::network`]).
//! - Channel: one `virtserialport` per port, each a socket pair end passed as an fd;
//!   the serial console likewise. No paths, nothing to clean up.
//! - Lifetime: QEMU gets `PR_SET_PDEATHSIG(SIGKILL)`, so it dies with the runner even
//!   on SIGKILL, and its own process group, so a terminal's Ctrl-C reaches only the
//!   runner (which forwards it to the guest).
//! - Host mounts: 9p shares, see `qemu_9p`.
//! - Under TCG the kernel is told the TSC rate (`tsc_early_khz`): without HPET/PM
//!   timer, microvm guests otherwise sometimes hang calibrating it.

use super::qemu_9p::{self, FileShares};
use super::{Accel, Backend, KernelImage, Vm, VmError, VmSpec};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

/// Kernel command line for fast, quiet, never-hanging boots (see ARCHITECTURE.md).
const BASE_CMDLINE: &str = "console=ttyS0 panic=-1 reboot=t tsc=reliable no_timer_check \
    i8042.noaux i8042.nokbd i8042.nopnp cryptomgr.notests random.trust_cpu=on \
    mitigations=off nokaslr audit=0 8250.nr_uarts=1 rdinit=/init";

/// Starts VMs with `qemu-system-<arch>`.
#[derive(Debug, Clone)]
pub struct Qemu {
    binary: PathBuf,
}

impl Qemu {
    /// Finds QEMU: `explicit` (CAST_QEMU) or `qemu-system-<host arch>` on PATH.
    pub fn locate(explicit: Option<&Path>) -> Result<Self, VmError> {
        let name = format!("qemu-system-{}", std::env::consts::ARCH);
        let binary = match explicit {
            Some(p) if p.is_file() => Some(p.to_owned()),
            Some(p) => {
                return Err(VmError::QemuNotFound {
                    binary: p.display().to_string(),
                })
            }
            None => find_on_path(&name),
        };
        binary
            .map(|binary| Qemu { binary })
            .ok_or(VmError::QemuNotFound { binary: name })
    }

    /// The full argument list for `spec`, with the fd numbers QEMU will see.
    fn args(&self, spec: &VmSpec, initrd_fd: RawFd, files: Option<&FileShares>) -> Vec<OsString> {
        let mut a: Vec<OsString> = Vec::new();
        let mut push = |s: String| a.push(s.into());
        for s in ["-nodefaults", "-no-user-config", "-nographic", "-no-reboot"] {
            push(s.into());
        }
        push("-M".into());
        push("microvm,x-option-roms=off".into());
        push("-accel".into());
        push(spec.accel.name().into());
        push("-cpu".into());
        push(
            if spec.accel == Accel::Tcg {
                "max"
            } else {
                "host"
            }
            .into(),
        );
        push("-smp".into());
        push(spec.cpus.to_string());
        push("-m".into());
        push(format!("{}M", spec.memory_mib));
        push("-kernel".into());
        push(match &spec.kernel {
            KernelImage::File(path) => path.display().to_string(),
            KernelImage::Memory(fd) => format!("/proc/self/fd/{}", fd.as_raw_fd()),
        });
        push("-initrd".into());
        push(format!("/proc/self/fd/{initrd_fd}"));
        let mut cmdline = BASE_CMDLINE.to_owned();
        if spec.accel == Accel::Tcg {
            if let Some(khz) = host_tsc_khz() {
                cmdline.push_str(&format!(" tsc_early_khz={khz}"));
            }
        }
        if !spec.debug {
            cmdline.push_str(" quiet");
        }
        if !spec.cmdline.is_empty() {
            cmdline.push(' ');
            cmdline.push_str(&spec.cmdline);
        }
        push("-append".into());
        push(cmdline);
        push("-chardev".into());
        push(format!("socket,id=console,fd={}", spec.console.as_raw_fd()));
        push("-serial".into());
        push("chardev:console".into());
        push("-device".into());
        // Port 0 is reserved for a virtconsole.
        push(format!(
            "virtio-serial-device,max_ports={}",
            spec.ports.len() + 1
        ));
        for (i, (name, fd)) in spec.ports.iter().enumerate() {
            push("-chardev".into());
            push(format!("socket,id=port{i},fd={}", fd.as_raw_fd()));
            push("-device".into());
            push(format!("virtserialport,chardev=port{i},name={name}"));
        }
        push("-blockdev".into());
        push(format!(
            "driver=raw,node-name=root,read-only=on,offset={},size={},file.driver=file,file.filename={},file.read-only=on",
            spec.root.offset,
            spec.root.size,
            spec.root.path.display().to_string().replace(',', ",,")
        ));
        push("-device".into());
        push("virtio-blk-device,drive=root,serial=root".into());
        for (i, disk) in spec.disks.iter().enumerate() {
            let ro = if disk.read_only { "on" } else { "off" };
            push("-blockdev".into());
            push(format!(
                "driver=raw,node-name=disk{i},read-only={ro},file.driver=file,file.filename={},file.read-only={ro}",
                disk.path.display().to_string().replace(',', ",,")
            ));
            push("-device".into());
            push(format!(
                "virtio-blk-device,drive=disk{i},serial={}",
                disk.serial.replace(',', ",,")
            ));
        }
        if let Some(net) = &spec.network {
            for arg in crate::network::qemu_args(net) {
                push(arg);
            }
        }
        for arg in qemu_9p::args(&spec.shares, files) {
            push(arg);
        }
        a
    }
}

impl Backend for Qemu {
    fn start(&self, spec: VmSpec<'_>) -> Result<Box<dyn Vm>, VmError> {
        let initrd = initrd_memfd(&spec.initrd).map_err(|source| VmError::Prepare {
            what: "the initrd",
            source,
        })?;
        let files = FileShares::prepare(&spec.shares)?;
        let args = self.args(&spec, initrd.as_raw_fd(), files.as_ref());
        let inherit: Vec<RawFd> = spec
            .ports
            .iter()
            .map(|(_, fd)| fd.as_raw_fd())
            .chain([spec.console.as_raw_fd(), initrd.as_raw_fd()])
            .chain(match &spec.kernel {
                KernelImage::Memory(fd) => Some(fd.as_raw_fd()),
                KernelImage::File(_) => None,
            })
            .chain(spec.pass_fds.iter().map(|fd| fd.as_raw_fd()))
            .collect();
        let parent = std::process::id() as i32;
        let mut cmd = Command::new(&self.binary);
        cmd.args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let hook = move || -> io::Result<()> {
            if let Some(files) = &files {
                files.enter()?;
            }
            for fd in &inherit {
                // SAFETY: plain fcntl on an fd number this process owns; clearing
                // FD_CLOEXEC lets exactly these fds through to QEMU.
                if unsafe { libc::fcntl(*fd, libc::F_SETFD, 0) } < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            // SAFETY: prctl with integer arguments only.
            if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) } < 0 {
                return Err(io::Error::last_os_error());
            }
            // The runner may have died between fork and prctl: then die now.
            if nix::unistd::getppid().as_raw() != parent {
                std::process::abort();
            }
            nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0))?;
            Ok(())
        };
        // SAFETY: the hook runs between fork and exec; it makes only async-signal-safe
        // system calls on values prepared before the fork and allocates nothing.
        unsafe { cmd.pre_exec(hook) };
        let mut child = cmd.spawn().map_err(|source| {
            if spec.shares.iter().any(|s| s.file) && source.raw_os_error() != Some(libc::ENOENT) {
                VmError::FileShareNamespace { source }
            } else {
                VmError::Spawn {
                    binary: self.binary.display().to_string(),
                    source,
                }
            }
        })?;
        // QEMU has its copies; the runner's ends of these fds are no longer needed.
        drop(spec);
        drop(initrd);
        let stderr = Arc::new(Mutex::new(Vec::new()));
        if let Some(mut pipe) = child.stderr.take() {
            let sink = stderr.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = pipe.read(&mut buf) {
                    let mut all = sink.lock().unwrap_or_else(|e| e.into_inner());
                    if all.len() < 64 * 1024 {
                        all.extend_from_slice(&buf[..n]);
                    }
                }
            });
        }
        Ok(Box::new(QemuVm {
            pid: Pid::from_raw(child.id() as i32),
            state: Mutex::new(State::Running),
            stderr,
        }))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Running,
    Reaped(i32),
}

/// A running QEMU process.
#[derive(Debug)]
struct QemuVm {
    pid: Pid,
    /// Guards the pid against reuse: `kill` only signals a process not yet reaped.
    state: Mutex<State>,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl Vm for QemuVm {
    fn wait(&self) -> io::Result<i32> {
        if let State::Reaped(code) = *self.state.lock().unwrap_or_else(|e| e.into_inner()) {
            return Ok(code);
        }
        // Wait without reaping, so the pid stays valid for `kill` until we reap it
        // under the lock.
        let flags = nix::sys::wait::WaitPidFlag::WEXITED | nix::sys::wait::WaitPidFlag::WNOWAIT;
        loop {
            match nix::sys::wait::waitid(nix::sys::wait::Id::Pid(self.pid), flags) {
                Ok(_) => break,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let State::Reaped(code) = *state {
            return Ok(code);
        }
        let code = match nix::sys::wait::waitpid(self.pid, None)? {
            nix::sys::wait::WaitStatus::Exited(_, code) => code,
            nix::sys::wait::WaitStatus::Signaled(_, sig, _) => 128 + sig as i32,
            _ => -1,
        };
        *state = State::Reaped(code);
        Ok(code)
    }

    fn kill(&self) {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if *state == State::Running {
            let _ = kill(self.pid, Signal::SIGKILL);
        }
    }

    fn diagnostics(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }
}

impl Drop for QemuVm {
    fn drop(&mut self) {
        self.kill();
        let _ = self.wait();
    }
}

/// The initrd in an anonymous memory file QEMU reads as `/proc/self/fd/N`.
fn initrd_memfd(data: &[u8]) -> io::Result<OwnedFd> {
    let fd = nix::sys::memfd::memfd_create(
        c"cast-initrd",
        nix::sys::memfd::MemFdCreateFlag::MFD_CLOEXEC,
    )?;
    let mut file = std::fs::File::from(fd);
    file.write_all(data)?;
    Ok(file.into())
}

/// The host TSC rate in kHz, from /proc/cpuinfo (`cpu MHz`); under TCG the guest TSC
/// runs at the host's rate.
pub fn host_tsc_khz() -> Option<u64> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let mhz: f64 = cpuinfo
        .lines()
        .find(|l| l.starts_with("cpu MHz"))?
        .split(':')
        .nth(1)?
        .trim()
        .parse()
        .ok()?;
    Some((mhz * 1000.0).round() as u64)
}

/// The first executable `name` in PATH.
fn find_on_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}
