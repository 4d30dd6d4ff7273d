//! cast-init: PID 1 of every cast VM.
//!
//! The boot sequence, one step per module:
//!
//! 1. [`boot`]: mount /dev, /proc, /sys in the initramfs; load the kernel modules listed
//!    in `/cast/modules` (virtio transport, block, console, erofs, overlay).
//! 2. [`ports`]: find the virtio-serial ports by name, say Hello, receive the
//!    [`StartSpec`](cast_proto::StartSpec).
//! 3. [`net`]: bring up `lo`, and `eth0` statically when the spec asks for a
//!    network (alongside the root mount).
//!    [`rootfs`]: mount the root image (EROFS or ext4, read-only) under an overlay with
//!    a tmpfs upper layer, switch into it, mount the usual API filesystems;
//!    [`mounts`]: attach the host mounts (9p) in it.
//! 4. [`user`] + [`process`]: resolve the user in the image, start the process with
//!    pipes or a pty, pump stdio over the ports, forward signals, reap zombies.
//! 5. Report the exit status, wait for the host's Ack, power off (QEMU exits).
//!
//! Any failure is reported as [`GuestMsg::Error`] when the
//! channel is up, and on the console otherwise; the VM powers off either way.

mod boot;
mod build;
mod control;
mod log;
mod mounts;
mod net;
mod ports;
mod process;
mod pumps;
mod rootfs;
mod user;

use cast_proto::{GuestMsg, HostMsg, PROTOCOL_VERSION};
use log::Log;
use std::time::Duration;

/// How long to wait for the host's Ack after reporting the exit status.
const ACK_TIMEOUT: Duration = Duration::from_secs(10);

fn main() {
    if std::process::id() != 1 {
        eprintln!("cast-init is the init of cast VMs and only runs as PID 1");
        std::process::exit(2);
    }
    let log = Log::from_kernel_cmdline();
    if let Err(e) = run(&log) {
        log.always(&format!("cast-init: {e}"));
    }
    power_off();
}

/// An error before the channel exists (printed on the console) or after (sent).
type Error = Box<dyn std::error::Error + Send + Sync>;

fn run(log: &Log) -> Result<(), Error> {
    boot::mount_early()?;
    log.step("early mounts");
    let skip_net = net::disabled_on_cmdline();
    boot::load_modules(log, |name| {
        let net_module = skip_net && net::NET_MODULES.contains(&name);
        !(mounts::is_mount_module(name) || net_module)
    })?;
    log.step("modules loaded");
    let mut channel = ports::Channel::open()?;
    log.step("ports open");
    channel.send(&GuestMsg::Hello {
        version: PROTOCOL_VERSION,
    })?;
    let spec = match channel.recv()? {
        Some(HostMsg::Start(spec)) => spec,
        other => return Err(format!("expected Start from the host, got {other:?}").into()),
    };
    log.step("start received");
    let result = match spec.build.clone() {
        None => prepare(&spec, log).and_then(|()| process::run(*spec, &mut channel, log)),
        Some(build) => run_build(*spec, &build, &mut channel, log),
    };
    // What the process wrote to host mounts and the guest still caches goes to the
    // host before the exit report: the host stops the VM once it has the report.
    nix::unistd::sync();
    match result {
        Ok(exit) => {
            channel.send(&exit)?;
            log.step("exit reported");
            channel.wait_ack(ACK_TIMEOUT);
        }
        Err(e) => {
            channel.send(&GuestMsg::Error {
                message: e.to_string(),
            })?;
            channel.wait_ack(ACK_TIMEOUT);
        }
    }
    Ok(())
}

/// The process's world: the network (brought up while the root mounts), the root,
/// then the host mounts in it.
fn prepare(spec: &cast_proto::StartSpec, log: &Log) -> Result<(), Error> {
    if !spec.mounts.is_empty() {
        boot::load_modules(log, mounts::is_mount_module)?;
        log.step("mount modules loaded");
    }
    let network = start_network(spec, log)?;
    let hosts = net::hosts_file(&spec.hostname, spec.network.as_ref());
    rootfs::enter(&spec.hostname, &hosts, None)?;
    log.step("root switched");
    network.join().map_err(|_| "network set-up panicked")??;
    log.step("network up");
    if let Some(net) = &spec.network {
        net::write_resolv_conf(net);
    }
    mounts::attach(&spec.mounts, log)?;
    Ok(())
}

/// Brings up `lo` and, when asked, configures `eth0` in a thread (a few ioctls,
/// done while the root image mounts).
fn start_network(
    spec: &cast_proto::StartSpec,
    log: &Log,
) -> Result<std::thread::JoinHandle<Result<(), net::NetError>>, Error> {
    net::loopback_up()?;
    log.step("lo up");
    let network = spec.network.clone();
    Ok(std::thread::spawn(move || match network {
        Some(network) => net::configure(&network),
        None => Ok(()),
    }))
}

/// Build mode: the network (when the RUN has one), the root over the scratch disk,
/// the sandbox files and mounts, the process, and (when it succeeded) its changes
/// written as a layer on the diff disk.
fn run_build(
    spec: cast_proto::StartSpec,
    build: &cast_proto::BuildSpec,
    channel: &mut ports::Channel,
    log: &Log,
) -> Result<GuestMsg, Error> {
    let network = start_network(&spec, log)?;
    let disks = build::Disks::find(build)?;
    rootfs::enter(&spec.hostname, "", Some(&disks))?;
    log.step("root switched");
    network.join().map_err(|_| "network set-up panicked")??;
    log.step("network up");
    let sandbox = build::sandbox_files(&spec.hostname, spec.network.as_ref());
    let mounts = build::Mounts::set_up(&sandbox, &build.mounts)?;
    let mut exit = process::run(spec, channel, log)?;
    let stubs = mounts.take_down();
    if let GuestMsg::Exit {
        status: cast_proto::ExitStatus::Code(0),
        layer_bytes,
        ..
    } = &mut exit
    {
        *layer_bytes = Some(build::write_diff(&disks, &stubs)?);
        log.step("layer written");
    }
    Ok(exit)
}

/// Ends the VM: with QEMU's `-no-reboot` a reboot makes QEMU exit at once.
fn power_off() -> ! {
    let _ = nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_AUTOBOOT);
    // Unreachable unless the reboot syscall failed; PID 1 must never exit.
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
