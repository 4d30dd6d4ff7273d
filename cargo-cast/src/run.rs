//! `cargo cast run --rootfs IMAGE [-- CMD ARGS...]`: boot a root image and run a
//! command in it, with the same runtime a casted executable uses. `cargo cast run
//! DIR [-- ARGS...]` first builds DIR's Containerfile into a root image (through the
//! build cache, see [`crate::run_dir`]) and runs its entrypoint the same way.

use cast_core::settings::{Key, Raw};
use cast_core::settings::{Origin, VmSettings, VmUpdate};
use cast_kernel::KernelBundle;
use cast_proto::StartSpec;
use cast_runner::{DiskSlice, KernelImage, RunError, RunRequest};
use std::path::PathBuf;

const PROGRAM: &str = "cargo-cast";

/// Run a command in a disposable microVM booted from a root image.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  cargo cast run ./image -- --help          # build ./image/Containerfile, run it
  cargo cast run --rootfs rootfs.erofs -- /bin/sh -c 'echo hello'
  echo data | cargo cast run --rootfs rootfs.erofs -e LANG=C -w /tmp -u nobody -- cat
  cargo cast run --rootfs rootfs.erofs -v .:/work -v ./in.txt:/in.txt:ro -- ls /work
  CAST_MEMORY=1.5G CAST_TIMEOUT=5m cargo cast run --rootfs rootfs.erofs -- /bin/sh
  cargo cast run -p 8080:80 --rootfs rootfs.erofs -- httpd -f -p 80

Environment: CAST_KERNEL, CAST_QEMU, CAST_ACCEL (kvm|hvf|tcg), CAST_CPUS (2),
CAST_MEMORY (512M), CAST_TIMEOUT (30, 1.5s, 5m), CAST_BOOT_TIMEOUT (30s),
CAST_TTY (0|1), CAST_INTERACTIVE (0|1), CAST_DEBUG (1), CAST_NETWORK (1|0),
CAST_NO_NETWORK (1), CAST_PUBLISH (8080:80,127.0.0.1:5353:53/udp),
CAST_MOUNT (HOST:GUEST[:ro], separated by , or ;).
Exit status: the command's; 125 runtime failure, 124 timeout, 126/127 cannot run.")]
pub struct RunArgs {
    /// A directory with a Containerfile: build it (cached) and run its entrypoint;
    /// CMD ARGS replace the image's CMD.
    #[arg(
        value_name = "DIR",
        required_unless_present = "rootfs",
        conflicts_with = "rootfs"
    )]
    pub(crate) dir: Option<PathBuf>,
    /// Root filesystem image (EROFS or ext4), attached read-only.
    #[arg(long, value_name = "IMAGE")]
    pub(crate) rootfs: Option<PathBuf>,
    /// Kernel bundle directory (default: CAST_KERNEL, then ~/.cache/cast/kernel/default).
    #[arg(long, value_name = "DIR")]
    pub(crate) kernel: Option<PathBuf>,
    /// Set an environment variable (KEY=VALUE, or KEY to pass the host's value).
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub(crate) env: Vec<String>,
    /// Working directory in the VM.
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    pub(crate) workdir: Option<String>,
    /// User in the VM: name, uid, name:group or uid:gid.
    #[arg(short = 'u', long = "user", value_name = "USER")]
    pub(crate) user: Option<String>,
    /// Share a host directory or file: `HOST:GUEST[:ro]` (a relative HOST resolves
    /// against the current directory); repeatable; replaces CAST_MOUNT.
    #[arg(short = 'v', long = "volume", value_name = "HOST:GUEST[:ro]")]
    pub(crate) volumes: Vec<cast_core::mount::Mount>,
    /// Hostname of the VM.
    #[arg(long, default_value = "cast")]
    pub(crate) hostname: String,
    /// Publish a guest port on the host: `[ip:]host:guest[/tcp|udp]`; ranges as
    /// 8000-8010:8000-8010. The host side binds 127.0.0.1 unless an address is given.
    #[arg(short = 'p', long = "publish", value_name = "[IP:]HOST:GUEST[/PROTO]")]
    pub(crate) publish: Vec<String>,
    /// No network: the guest has only `lo`.
    #[arg(long)]
    pub(crate) no_network: bool,
    /// The command and its arguments.
    #[arg(last = true, value_name = "CMD", required_unless_present = "dir")]
    pub(crate) command: Vec<String>,
}

/// Runs and returns the exit code; runtime errors are printed here, once.
pub fn run(args: RunArgs) -> i32 {
    let named =
        args.kernel.is_some() || std::env::var_os("CAST_KERNEL").is_some_and(|v| !v.is_empty());
    if !named {
        let ui = crate::ui::Ui::new(crate::ui::Verbosity::default());
        if let Err(e) = crate::kernels::ensure_default(&ui) {
            eprintln!("{}", crate::ui::report(&e));
            return cast_runner::EXIT_RUNTIME_FAILURE;
        }
    }
    match try_run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{PROGRAM}: {}", chain(&e));
            e.exit_code()
        }
    }
}

fn try_run(mut args: RunArgs) -> Result<i32, RunError> {
    if let Some(dir) = args.dir.take() {
        crate::run_dir::prepare(&dir, &mut args)?;
    }
    // clap guarantees DIR or --rootfs; a directory has just set --rootfs.
    let rootfs = args.rootfs.clone().unwrap_or_default();
    let env = VmUpdate::from_env(|k| std::env::var(k).ok(), &Origin::Env)?;
    let mut flags = VmUpdate {
        mounts: (!args.volumes.is_empty()).then(|| std::mem::take(&mut args.volumes)),
        ..VmUpdate::default()
    };
    if args.no_network {
        flags.set(Key::Network, Raw::Bool(false), &Origin::Flag)?;
    }
    if !args.publish.is_empty() {
        flags.set(
            Key::Publish,
            Raw::Text(&args.publish.join(",")),
            &Origin::Flag,
        )?;
    }
    let settings = VmSettings::resolve([&env, &flags]);
    let kernel = KernelBundle::locate(args.kernel.as_deref())?;
    let size = std::fs::metadata(&rootfs)
        .map_err(|e| RunError::RootImage {
            path: rootfs.clone(),
            why: e.to_string(),
        })?
        .len();
    let env = args
        .env
        .iter()
        .map(|kv| match kv.split_once('=') {
            Some(_) => kv.clone(),
            None => format!("{kv}={}", std::env::var(kv).unwrap_or_default()),
        })
        .collect();
    let initrd = cast_guest::initrd::build(&kernel).map_err(|source| RunError::Prepare {
        what: "the initrd from the kernel bundle",
        source,
    })?;
    cast_runner::run(RunRequest {
        program: PROGRAM.into(),
        kernel: KernelImage::File(kernel.kernel_path()),
        initrd: initrd.into(),
        root: DiskSlice {
            path: rootfs,
            offset: 0,
            size,
        },
        disks: Vec::new(),
        output: None,
        pass_fds: Vec::new(),
        spec: StartSpec {
            argv: args.command,
            env,
            workdir: args.workdir,
            user: args.user,
            hostname: args.hostname,
            ..Default::default()
        },
        settings,
    })
}

/// An error and its causes on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(&format!(": {c}"));
        cause = c.source();
    }
    s
}
