//! The casted executable's runtime: what `main` does in a binary made by cargo-cast.
//!
//! 1. Find the payload section in the executable's own file ([`locate`]), read its
//!    header, manifest, kernel and initrd from there and verify them; verify the
//!    root image in the file, as QEMU will read it. The root image is attached in
//!    place, never extracted or copied; QEMU inherits the checked file and opens it
//!    as `/proc/self/fd/N`.
//! 2. (Nothing of the payload is mapped into memory: a damaged file is an error
//!    message and exit 125, never a crash.)
//! 3. Get the kernel as a file from the extraction cache (first run: decompress once);
//!    when the cache cannot be written, decode it into memory for this run.
//! 4. Combine the baked run config with the arguments (they replace CMD, ENTRYPOINT is
//!    kept, as `docker run IMAGE ARGS...`) and the baked VM defaults with `CAST_*`.
//! 5. Run; exit with the process's exit code (125 for the runtime's own failures).
//!
//! The runner's own options are only `--cast-help`, `--cast-version` and
//! `--cast-info`, and only as the sole argument; everything else goes to the image.

mod info;
pub mod locate;

use crate::error::RunError;
use crate::vm::{DiskSlice, KernelImage};
use crate::RunRequest;
use cast_core::settings::{Origin, VmUpdate};
use cast_core::{SettingError, VmSettings};
use cast_payload::cache::{self, CacheError, DecodeError};
use cast_payload::{Manifest, PartKind, Payload, ReadError};
use cast_proto::StartSpec;
use std::ffi::OsString;
use std::os::fd::AsRawFd;

/// Declares the payload length symbol the build script's object file defines (which
/// also links that object's payload section in) and runs the casted runtime: a
/// casted crate's whole `main.rs` is `cast_runner::casted_main!();`.
#[macro_export]
macro_rules! casted_main {
    () => {
        fn main() {
            extern "C" {
                static CAST_PAYLOAD_LEN: u64;
            }
            // SAFETY: the linked payload object defines CAST_PAYLOAD_LEN: a u64 of
            // read-only data, never written, for the life of the process.
            let len = unsafe { ::core::ptr::addr_of!(CAST_PAYLOAD_LEN).read() };
            $crate::casted::main(len)
        }
    };
}

/// A casted executable could not run its image.
#[derive(Debug, thiserror::Error)]
pub enum CastedError {
    /// The payload is damaged or from another format version.
    #[error(transparent)]
    Payload(#[from] ReadError),
    /// The payload cannot be found in the executable's file.
    #[error(transparent)]
    Locate(#[from] locate::LocateError),
    /// The kernel cannot be prepared.
    #[error("cannot prepare the guest kernel")]
    Kernel(#[source] std::io::Error),
    /// The arguments cannot be passed on.
    #[error("{0}")]
    Usage(String),
    /// The run itself failed.
    #[error(transparent)]
    Run(#[from] RunError),
}

impl CastedError {
    /// The exit code: the run's own mapping, else 125.
    pub fn exit_code(&self) -> i32 {
        match self {
            CastedError::Run(e) => e.exit_code(),
            _ => crate::EXIT_RUNTIME_FAILURE,
        }
    }
}

/// The casted executable's `main`: runs the image in its payload of `payload_len`
/// bytes and exits.
pub fn main(payload_len: u64) -> ! {
    let mut args = std::env::args_os();
    let argv0 = args.next().unwrap_or_default();
    let program = std::path::Path::new(&argv0)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "cast".into());
    let args: Vec<OsString> = args.collect();
    let code = match run(&program, payload_len, args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{program}: {}", chain(&e));
            e.exit_code()
        }
    };
    std::process::exit(code)
}

/// Everything in [`main`] but the exit.
pub fn run(program: &str, payload_len: u64, args: Vec<OsString>) -> Result<i32, CastedError> {
    let help = matches!(args.as_slice(), [only] if only == "--cast-help");
    if help {
        return Ok(info::help(program));
    }
    let mut located = locate::locate(payload_len)?;
    let payload = located.payload()?;
    if let [only] = args.as_slice() {
        match only.to_str() {
            Some("--cast-version") => return Ok(info::version(program, &payload)),
            Some("--cast-info") => return info::info(program, &payload, &located),
            _ => {}
        }
    }
    locate::verify(&payload, &mut located)?;

    let settings =
        settings(&payload.manifest, |k| std::env::var(k).ok()).map_err(RunError::from)?;
    let spec = start_spec(&payload.manifest, args)?;
    let kernel = kernel_image(program, &payload)?;
    // QEMU gets the file this process checked, by fd: replacing the executable on
    // disk meanwhile (a rebuild, an upgrade) cannot swap the image under it.
    let file: std::os::fd::OwnedFd = located.file.into();
    let root = DiskSlice {
        path: fd_path(file.as_raw_fd()),
        offset: located.offset + payload.manifest.root.offset,
        size: payload.manifest.root.length,
    };
    Ok(crate::run(RunRequest {
        program: program.to_owned(),
        kernel,
        initrd: payload.part_bytes(PartKind::Initrd).into(),
        root,
        disks: Vec::new(),
        output: None,
        pass_fds: vec![file],
        spec,
        settings,
    })?)
}

/// The settings of this run: the defaults, the payload's baked settings (checked
/// again: the payload is untrusted input), then the `CAST_*` variables read through
/// `get`.
pub fn settings(
    m: &Manifest,
    get: impl Fn(&str) -> Option<String>,
) -> Result<VmSettings, SettingError> {
    let baked = &m.vm.settings;
    baked.validate(&Origin::Baked)?;
    let env = VmUpdate::from_env(get, &Origin::Env)?;
    Ok(VmSettings::resolve([baked, &env]))
}

/// What the guest runs: ENTRYPOINT + (the arguments, or CMD when there are none).
pub fn start_spec(m: &Manifest, args: Vec<OsString>) -> Result<StartSpec, CastedError> {
    let rc = &m.run;
    let args = args
        .into_iter()
        .map(|a| {
            a.into_string()
                .map_err(|a| CastedError::Usage(format!("argument {a:?} is not valid UTF-8")))
        })
        .collect::<Result<Vec<String>, _>>()?;
    let mut argv = rc.entrypoint.clone().unwrap_or_default();
    if args.is_empty() {
        argv.extend(rc.cmd.clone().unwrap_or_default());
    } else {
        argv.extend(args);
    }
    if argv.is_empty() {
        return Err(CastedError::Usage(
            "the image has no ENTRYPOINT or CMD: give the command to run as arguments".into(),
        ));
    }
    Ok(StartSpec {
        argv,
        env: rc.env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        workdir: rc.workdir.clone(),
        user: rc.user.clone(),
        hostname: hostname(&m.vm.name),
        ..StartSpec::default()
    })
}

/// A valid hostname from the tool's name: letters, digits and `-`, at most 63.
fn hostname(name: &str) -> String {
    let h: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(63)
        .collect();
    let h = h.trim_matches('-');
    if h.is_empty() { "cast" } else { h }.to_owned()
}

/// The kernel from the cache, or decoded into memory when the cache is unusable.
fn kernel_image(program: &str, payload: &Payload<'_>) -> Result<KernelImage, CastedError> {
    let result = match cast_core::cache_root::dir() {
        Some(root) => cache::extract_kernel(payload, &root),
        None => Err(CacheError::NoCacheDir),
    };
    match result {
        Ok(path) => Ok(KernelImage::File(path)),
        Err(CacheError::Payload(e)) => Err(e.into()),
        Err(e) => {
            eprintln!(
                "{program}: warning: {}; keeping the kernel in memory for this run (set CAST_CACHE_DIR to a writable directory)",
                chain(&e)
            );
            kernel_in_memory(payload)
        }
    }
}

#[cfg(target_os = "linux")]
fn kernel_in_memory(payload: &Payload<'_>) -> Result<KernelImage, CastedError> {
    let fd = nix::sys::memfd::memfd_create(
        c"cast-kernel",
        nix::sys::memfd::MemFdCreateFlag::MFD_CLOEXEC,
    )
    .map_err(|e| CastedError::Kernel(e.into()))?;
    let mut file = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::from(fd));
    match cache::decode_kernel(payload, &mut file) {
        Ok(()) => {}
        Err(DecodeError::Read(e)) => return Err(e.into()),
        Err(DecodeError::Write(e)) => return Err(CastedError::Kernel(e)),
    }
    let file = file
        .into_inner()
        .map_err(|e| CastedError::Kernel(e.into_error()))?;
    Ok(KernelImage::Memory(file.into()))
}

#[cfg(not(target_os = "linux"))]
fn kernel_in_memory(_payload: &Payload<'_>) -> Result<KernelImage, CastedError> {
    Err(CastedError::Kernel(std::io::Error::other(
        "no writable cache directory",
    )))
}

/// The path under which a process reaches its own open fd.
fn fd_path(fd: i32) -> std::path::PathBuf {
    if cfg!(target_os = "linux") {
        format!("/proc/self/fd/{fd}").into()
    } else {
        format!("/dev/fd/{fd}").into()
    }
}

/// An error and its causes on one line.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(&format!(": {c}"));
        cause = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use cast_core::RunConfig;
    use cast_payload::{Encoding, Part, VmDefaults};

    fn manifest(entrypoint: Option<&[&str]>, cmd: Option<&[&str]>) -> Manifest {
        let part = Part {
            offset: 0,
            length: 0,
            encoding: Encoding::Raw,
            sha256: String::new(),
            decoded_length: 0,
            decoded_sha256: String::new(),
        };
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        Manifest {
            format: cast_payload::format::FORMAT_VERSION,
            builder: "test".into(),
            kernel_release: None,
            kernel: part.clone(),
            initrd: part.clone(),
            root: part,
            run: RunConfig {
                entrypoint: entrypoint.map(strings),
                cmd: cmd.map(strings),
                env: vec![("A".into(), "1".into()), ("B".into(), "x=y".into())],
                user: Some("alice".into()),
                workdir: Some("/w".into()),
                ..RunConfig::default()
            },
            vm: VmDefaults {
                name: "my_tool.v2".into(),
                ..VmDefaults::default()
            },
        }
    }

    fn argv(m: &Manifest, args: &[&str]) -> Result<Vec<String>, CastedError> {
        start_spec(m, args.iter().map(OsString::from).collect()).map(|s| s.argv)
    }

    #[test]
    fn arguments_replace_cmd_and_keep_the_entrypoint() {
        let both = manifest(Some(&["/bin/tool", "--flag"]), Some(&["default"]));
        assert_eq!(
            argv(&both, &[]).unwrap(),
            ["/bin/tool", "--flag", "default"]
        );
        assert_eq!(
            argv(&both, &["--help"]).unwrap(),
            ["/bin/tool", "--flag", "--help"]
        );
        let cmd_only = manifest(None, Some(&["sh", "-c", "echo"]));
        assert_eq!(argv(&cmd_only, &[]).unwrap(), ["sh", "-c", "echo"]);
        assert_eq!(argv(&cmd_only, &["ls", "/"]).unwrap(), ["ls", "/"]);
        let neither = manifest(None, None);
        assert!(matches!(argv(&neither, &[]), Err(CastedError::Usage(_))));
        assert_eq!(argv(&neither, &["true"]).unwrap(), ["true"]);
    }

    #[test]
    fn env_user_workdir_and_hostname_come_from_the_payload() {
        let spec = start_spec(&manifest(None, Some(&["x"])), Vec::new()).unwrap();
        assert_eq!(spec.env, ["A=1", "B=x=y"]);
        assert_eq!(spec.user.as_deref(), Some("alice"));
        assert_eq!(spec.workdir.as_deref(), Some("/w"));
        assert_eq!(spec.hostname, "my-tool-v2");
        assert_eq!(hostname("..."), "cast");
        assert_eq!(hostname(&"a".repeat(100)).len(), 63);
    }

    #[test]
    fn non_utf8_arguments_are_a_usage_error() {
        use std::os::unix::ffi::OsStringExt;
        let m = manifest(Some(&["/bin/tool"]), None);
        let bad = OsString::from_vec(vec![0x66, 0xff]);
        let e = start_spec(&m, vec![bad]).unwrap_err();
        assert_eq!(e.exit_code(), 125);
        assert!(e.to_string().contains("not valid UTF-8"), "{e}");
    }

    #[test]
    fn baked_settings_sit_between_the_defaults_and_the_variables() {
        use std::time::Duration;
        let mut m = manifest(None, Some(&["x"]));
        m.vm.settings = VmUpdate {
            cpus: Some(3),
            memory_mib: Some(1024),
            timeout: Some(Duration::from_secs(30)),
            tty: Some(true),
            interactive: Some(false),
            ..VmUpdate::default()
        };
        let s = settings(&m, |_| None).unwrap();
        assert_eq!((s.cpus, s.memory_mib), (3, 1024));
        assert_eq!(s.timeout, Some(Duration::from_secs(30)));
        assert_eq!((s.tty, s.interactive), (Some(true), false));
        let s = settings(&m, |k| match k {
            "CAST_TIMEOUT" => Some("5m".into()),
            "CAST_MEMORY" => Some("1.5G".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!((s.cpus, s.memory_mib), (3, 1536));
        assert_eq!(s.timeout, Some(Duration::from_secs(300)));
        // A damaged payload's settings are refused like a user's.
        m.vm.settings.memory_mib = Some(8);
        let e = settings(&m, |_| None).unwrap_err();
        assert!(e.to_string().starts_with("memory = \"8M\" baked"), "{e}");
    }
}
