//! `cargo xtask bench net`: host↔guest throughput through the NAT and through a
//! published port, `cargo cast run` against raw QEMU doing the same transfers with
//! the same network options (`cast_runner::network::qemu_args`), interleaved; and
//! what networking adds to a boot (`-- true` with and without it).
//!
//! The raw side boots the same kernel with a busybox initramfs whose shell `/init`
//! loads the same modules and configures `eth0` with `ifconfig`/`route`. Both guests
//! then run one script: download a blob from a host server on 127.0.0.1 (the host
//! times accept → the guest's close), start busybox `httpd` on port 80 with a blob in
//! tmpfs, say `ready`, and wait for a line; the host downloads the blob through the
//! published port (timed on the host), then sends the line.

use crate::bench_boot::{busybox_rootfs, median, timed};
use anyhow::{bail, Context, Result};
use cast_core::publish::PortMapping;
use cast_kernel::KernelBundle;
use cast_runner::network::{qemu_args, Network};
use cast_runner::vm::qemu::host_tsc_khz;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Options of the network benchmark.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Runs per variant.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// MiB per transfer.
    #[arg(long, default_value_t = 64)]
    mib: usize,
}

/// The modules the raw guest loads, in dependency order.
const NET_MODULES: [&str; 6] = [
    "virtio_ring",
    "virtio",
    "virtio_mmio",
    "failover",
    "net_failover",
    "virtio_net",
];

/// Runs the benchmark.
pub fn run(args: Args) -> Result<()> {
    let kernel = KernelBundle::locate(None).context("run `cargo xtask kernel` first")?;
    let work = tempfile::tempdir()?;
    let runner = crate::bench_boot::build_runner(false)?;
    let rootfs = busybox_rootfs(work.path())?;
    let server = BlobServer::start(args.mib << 20)?;
    let script = |host: &str| {
        format!(
            "wget -q -O /dev/null http://{host}:{}/blob && \
             dd if=/dev/zero of=/tmp/blob bs=1M count={} 2>/dev/null && \
             httpd -p 80 -h /tmp && echo ready && read line",
            server.port, args.mib
        )
    };
    let initrd = raw_initrd(work.path(), &kernel, &script("10.0.2.2"))?;
    let khz = host_tsc_khz().context("no `cpu MHz` in /proc/cpuinfo")?;
    let cast_script = script("host.cast.internal");

    let mut nat = [Vec::new(), Vec::new()];
    let mut published = [Vec::new(), Vec::new()];
    eprintln!(
        "network benchmark: {} interleaved runs per variant, {} MiB per transfer, TCG",
        args.runs, args.mib
    );
    for _ in 0..args.runs {
        for variant in 0..2 {
            let port = free_port()?;
            let mapping: PortMapping = format!("{port}:80").parse()?;
            let mut cmd = if variant == 0 {
                raw_qemu(
                    &kernel,
                    &initrd,
                    khz,
                    qemu_args(&Network {
                        publish: vec![mapping],
                    }),
                )
            } else {
                let mut cmd = Command::new(&runner);
                cmd.args(["cast", "run", "-p", &mapping.to_string(), "--rootfs"])
                    .arg(&rootfs)
                    .args(["--", "/bin/sh", "-c", &cast_script])
                    .env("CAST_ACCEL", "tcg");
                cmd
            };
            let (n, p) = transfer(&mut cmd, &server, port, args.mib << 20)?;
            nat[variant].push(n);
            published[variant].push(p);
        }
    }

    eprintln!("boot cost: `cargo cast run -- true`, with and without the network");
    let mut boots = [Vec::new(), Vec::new()];
    for _ in 0..args.runs.max(5) {
        for (i, network) in ["1", "0"].into_iter().enumerate() {
            let mut cmd = Command::new(&runner);
            cmd.args(["cast", "run", "--rootfs"])
                .arg(&rootfs)
                .args(["--", "true"])
                .env("CAST_ACCEL", "tcg")
                .env("CAST_NETWORK", network);
            boots[i].push(timed(cmd, None)?.as_secs_f64());
        }
    }

    let mib = args.mib as f64;
    let rate = |v: &mut Vec<f64>| mib / median(v);
    println!(
        "{:<44} {:>12} {:>12} {:>7}",
        "transfer (median)", "raw QEMU", "cargo cast", "ratio"
    );
    for (name, v) in [
        ("guest downloads from host (NAT)", &mut nat),
        ("host downloads from guest (published port)", &mut published),
    ] {
        let (raw, cast) = (rate(&mut v[0]), rate(&mut v[1]));
        println!(
            "{name:<44} {raw:>7.1} MiB/s {cast:>7.1} MiB/s {:>7.3}",
            cast / raw
        );
    }
    let (on, off) = (median(&mut boots[0]), median(&mut boots[1]));
    println!(
        "boot `-- true`: network on {on:.3}s, off {off:.3}s, network adds {:.0} ms ({:.3}x)",
        (on - off) * 1e3,
        on / off
    );
    Ok(())
}

/// One VM run of the script: (NAT seconds, published-port seconds).
fn transfer(cmd: &mut Command, server: &BlobServer, port: u16, bytes: usize) -> Result<(f64, f64)> {
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut vm = Killed(cmd.spawn().context("starting the VM")?);
    let lines = read_lines(vm.0.stdout.take().unwrap());
    let bound = Instant::now() + Duration::from_secs(300);
    loop {
        let line = lines
            .recv_timeout(bound.saturating_duration_since(Instant::now()))
            .context("the guest never said ready")?;
        if line.trim_end() == "ready" {
            break;
        }
    }
    let nat = server
        .done
        .recv_timeout(Duration::from_secs(10))
        .context("the host server saw no download")??;
    let start = Instant::now();
    let mut http = TcpStream::connect(("127.0.0.1", port))?;
    http.set_read_timeout(Some(Duration::from_secs(120)))?;
    http.write_all(b"GET /blob HTTP/1.0\r\n\r\n")?;
    let mut got = Vec::with_capacity(bytes + 1024);
    http.read_to_end(&mut got)?;
    let published = start.elapsed().as_secs_f64();
    if got.len() < bytes {
        bail!("the published port gave {} bytes, not {bytes}", got.len());
    }
    vm.0.stdin.take().unwrap().write_all(b"\n")?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while vm.0.try_wait()?.is_none() {
        if Instant::now() > deadline {
            bail!("the VM did not end");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok((nat, published))
}

/// Raw QEMU with the options the runner uses for this mapping.
fn raw_qemu(kernel: &KernelBundle, initrd: &Path, khz: u64, netdev: Vec<String>) -> Command {
    let mut cmd = crate::bench_boot::raw_qemu(kernel, initrd, khz, 512, 2);
    cmd.args(netdev);
    cmd
}

/// A cpio with static busybox, the network modules and a shell `/init`.
fn raw_initrd(dir: &Path, kernel: &KernelBundle, workload: &str) -> Result<PathBuf> {
    let mut init = String::from(
        "#!/bin/sh\nexport PATH=/bin\nmount -t proc proc /proc\nmount -t sysfs sys /sys\n\
         mount -t devtmpfs dev /dev\nmkdir -p /tmp\n",
    );
    let modules: Vec<PathBuf> = kernel.module_paths().collect();
    for name in NET_MODULES {
        if modules.iter().any(|p| {
            p.file_name()
                .is_some_and(|f| f == format!("{name}.ko").as_str())
        }) {
            init.push_str(&format!("insmod /mod/{name}.ko\n"));
        }
    }
    init.push_str(
        "ifconfig lo up\nifconfig eth0 10.0.2.15 netmask 255.255.255.0 mtu 1500 up\n\
         route add default gw 10.0.2.2\n",
    );
    init.push_str(workload);
    init.push_str("\nreboot -f\n");
    let mut out = Vec::new();
    let mut ino = 0;
    let mut entry = |name: &str, mode: u32, data: &[u8]| -> Result<()> {
        ino += 1;
        let mut b = cpio::newc::Builder::new(name).ino(ino).mode(mode).nlink(1);
        if name == "dev/console" {
            b = b.rdev_major(5).rdev_minor(1);
        }
        let mut w = b.write(&mut out, data.len() as u32);
        w.write_all(data)?;
        w.finish()?;
        Ok(())
    };
    for d in ["bin", "dev", "proc", "sys", "mod"] {
        entry(d, 0o040_755, &[])?;
    }
    entry("dev/console", 0o020_600, &[])?;
    entry("bin/busybox", 0o100_755, &std::fs::read("/bin/busybox")?)?;
    for applet in busybox_applets()? {
        entry(&format!("bin/{applet}"), 0o120_777, b"busybox")?;
    }
    entry("init", 0o100_755, init.as_bytes())?;
    for path in &modules {
        let file = path.file_name().unwrap().to_string_lossy();
        entry(&format!("mod/{file}"), 0o100_644, &std::fs::read(path)?)?;
    }
    cpio::newc::trailer(&mut out)?;
    let path = dir.join("raw.cpio");
    std::fs::write(&path, out)?;
    Ok(path)
}

fn busybox_applets() -> Result<Vec<String>> {
    let out = Command::new("/bin/busybox").arg("--list").output()?;
    Ok(String::from_utf8(out.stdout)?
        .lines()
        .filter(|a| *a != "busybox")
        .map(str::to_owned)
        .collect())
}

/// Serves `/blob` (zeros) on 127.0.0.1 and reports each download's time, from the
/// accepted connection to the client's close.
struct BlobServer {
    port: u16,
    done: mpsc::Receiver<Result<f64>>,
}

impl BlobServer {
    fn start(bytes: usize) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let (tx, done) = mpsc::channel();
        // Ends with the benchmark process (it only ever waits in accept).
        std::thread::spawn(move || {
            let blob = vec![0u8; bytes];
            for stream in listener.incoming() {
                let result = stream.map_err(anyhow::Error::from).and_then(|mut s| {
                    let start = Instant::now();
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") && s.read(&mut byte)? == 1 {
                        head.push(byte[0]);
                    }
                    write!(s, "HTTP/1.0 200 OK\r\nContent-Length: {bytes}\r\n\r\n")?;
                    s.write_all(&blob)?;
                    // The guest closes once it has every byte.
                    let _ = s.read(&mut byte);
                    Ok(start.elapsed().as_secs_f64())
                });
                if tx.send(result).is_err() {
                    return;
                }
            }
        });
        Ok(BlobServer { port, done })
    }
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The lines of `r` as they arrive.
fn read_lines(r: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// A child killed and reaped when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
