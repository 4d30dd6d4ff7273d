//! Running `cargo build` for casted crates: Cargo's own selection and profile flags
//! are passed through, executables are found in Cargo's JSON messages
//! (`compiler-artifact`), and each build script's `OUT_DIR` (`build-script-executed`)
//! is read for the cast report that says whether the image came from the cache.
//!
//! Cargo's stderr is shown as is with `-v`; otherwise it is kept (and shown only if
//! the build fails) while a spinner names the crate being compiled, on terminals.
//!
//! Cargo runs in a process group of its own, with its rustc and build-script
//! children; SIGINT, SIGTERM, SIGHUP and SIGQUIT sent to `cargo cast` are forwarded
//! to that whole group ([`Forwarder`]), and once Cargo has ended `cargo cast` dies of
//! the same signal. So killing `cargo cast build` never leaves a build running that
//! holds the target directory's lock.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context as _, Result};
use cargo_metadata::Message;
use cast_build::CastReport;

use crate::ui::Ui;

/// Cargo's flags that `cargo cast build` passes through.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct CargoFlags {
    /// Package to build (see `cargo help pkgid`).
    #[arg(
        short = 'p',
        long = "package",
        value_name = "SPEC",
        help_heading = "Cargo"
    )]
    pub package: Vec<String>,
    /// Build only this binary.
    #[arg(long = "bin", value_name = "NAME", help_heading = "Cargo")]
    pub bin: Vec<String>,
    /// Build every binary.
    #[arg(long, help_heading = "Cargo")]
    pub bins: bool,
    /// Build with the release profile.
    #[arg(short = 'r', long, help_heading = "Cargo")]
    pub release: bool,
    /// Build with this profile.
    #[arg(long, value_name = "NAME", help_heading = "Cargo")]
    pub profile: Option<String>,
    /// Build for this target triple.
    #[arg(long, value_name = "TRIPLE", help_heading = "Cargo")]
    pub target: Option<String>,
    /// Features to activate.
    #[arg(short = 'F', long, value_name = "FEATURES", help_heading = "Cargo")]
    pub features: Vec<String>,
    /// Activate all features.
    #[arg(long, help_heading = "Cargo")]
    pub all_features: bool,
    /// Do not activate the default feature.
    #[arg(long, help_heading = "Cargo")]
    pub no_default_features: bool,
    /// Path to Cargo.toml.
    #[arg(long, value_name = "PATH", help_heading = "Cargo")]
    pub manifest_path: Option<PathBuf>,
    /// Directory for all generated artifacts.
    #[arg(long, value_name = "DIR", help_heading = "Cargo")]
    pub target_dir: Option<PathBuf>,
    /// Require Cargo.lock to be up to date.
    #[arg(long, help_heading = "Cargo")]
    pub locked: bool,
    /// Run without accessing the network: Cargo and the image build (base images
    /// and pinned ADD URLs from the caches only).
    #[arg(long, help_heading = "Cargo")]
    pub offline: bool,
    /// Parallel jobs.
    #[arg(short = 'j', long, value_name = "N", help_heading = "Cargo")]
    pub jobs: Option<u32>,
}

impl CargoFlags {
    fn args(&self) -> Vec<String> {
        let mut a = Vec::new();
        let mut push = |flag: &str, v: &str| {
            a.push(flag.to_owned());
            a.push(v.to_owned());
        };
        self.package.iter().for_each(|p| push("--package", p));
        self.bin.iter().for_each(|b| push("--bin", b));
        self.features.iter().for_each(|f| push("--features", f));
        if let Some(p) = &self.profile {
            push("--profile", p);
        }
        if let Some(t) = &self.target {
            push("--target", t);
        }
        if let Some(m) = &self.manifest_path {
            push("--manifest-path", &m.display().to_string());
        }
        if let Some(d) = &self.target_dir {
            push("--target-dir", &d.display().to_string());
        }
        if let Some(j) = self.jobs {
            push("--jobs", &j.to_string());
        }
        for (on, flag) in [
            (self.bins, "--bins"),
            (self.release, "--release"),
            (self.all_features, "--all-features"),
            (self.no_default_features, "--no-default-features"),
            (self.locked, "--locked"),
            (self.offline, "--offline"),
        ] {
            if on {
                a.push(flag.to_owned());
            }
        }
        a
    }
}

/// One executable Cargo built, with the cast report of its package (if casted).
#[derive(Debug, Clone)]
pub struct Executable {
    /// The binary target's name.
    pub name: String,
    /// Where Cargo put it.
    pub path: PathBuf,
    /// The package's cast report; `None` for a package that casts nothing.
    pub report: Option<CastReport>,
    /// Whether the report predates this build: Cargo found nothing changed and did
    /// not run the build script, so no image work was even considered.
    pub fresh: bool,
}

/// Runs `cargo build` with `flags` (plus `env`), returns the binaries built.
pub fn build(flags: &CargoFlags, env: &[(String, String)], ui: &Ui) -> Result<Vec<Executable>> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--message-format=json-render-diagnostics"])
        .args(flags.args())
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    if ui.verbose {
        cmd.arg("-v").stderr(Stdio::inherit());
    } else {
        cmd.stderr(Stdio::piped());
    }
    if flags.offline {
        // The build scripts' image builds use only the caches and local sources too.
        cmd.env("CAST_OFFLINE", "1");
    }
    let started = std::time::SystemTime::now();
    cmd.process_group(0);
    let mut child = cmd.spawn().context("cannot run cargo (is it on PATH?)")?;
    let forwarder = Forwarder::start(child.id())?;
    let stderr = child.stderr.take().map(|mut e| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = e.read_to_string(&mut s);
            s
        })
    });
    let spinner = ui.spinner("building");
    let mut out_dirs = std::collections::BTreeMap::new();
    let mut bins = Vec::new();
    let stdout = BufReader::new(child.stdout.take().expect("piped"));
    for line in stdout.lines() {
        let line = line.context("reading cargo's output")?;
        let Ok(msg) = serde_json::from_str::<Message>(&line) else {
            continue;
        };
        match msg {
            Message::CompilerArtifact(a) => {
                spinner.set_message(format!("compiled {}", a.target.name));
                let is_bin = a.target.kind.iter().any(|k| k.to_string() == "bin");
                if let (true, Some(exe)) = (is_bin, a.executable) {
                    bins.push((a.package_id.repr.clone(), a.target.name.clone(), exe));
                }
            }
            Message::BuildScriptExecuted(b) => {
                spinner.set_message(format!(
                    "ran the build script of {}",
                    short(&b.package_id.repr)
                ));
                out_dirs.insert(b.package_id.repr.clone(), b.out_dir);
            }
            _ => {}
        }
    }
    let status = child.wait().context("waiting for cargo")?;
    spinner.finish_and_clear();
    forwarder.finish();
    let err_text = stderr.and_then(|t| t.join().ok()).unwrap_or_default();
    if !status.success() {
        eprint!("{err_text}");
        if let Some(note) = full_disk_note(flags, &err_text) {
            eprintln!("{note}");
        }
        bail!("cargo build failed (the errors are above)");
    }
    Ok(bins
        .into_iter()
        .map(|(pkg, name, exe)| {
            let file = out_dirs.get(&pkg).map(|d| d.join(cast_build::REPORT_FILE));
            let report = file
                .as_ref()
                .and_then(|f| std::fs::read(f).ok())
                .and_then(|b| serde_json::from_slice(&b).ok());
            let written = file
                .and_then(|f| std::fs::metadata(f).ok())
                .and_then(|m| m.modified().ok());
            Executable {
                name,
                path: exe.into_std_path_buf(),
                report,
                fresh: written.is_some_and(|w| w < started),
            }
        })
        .collect())
}

/// Forwards termination signals to Cargo's process group while the build runs.
struct Forwarder {
    handle: signal_hook::iterator::Handle,
    thread: std::thread::JoinHandle<()>,
    caught: Arc<AtomicI32>,
}

impl Forwarder {
    const SIGNALS: [i32; 4] = [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
        signal_hook::consts::SIGQUIT,
    ];

    /// Catches the signals and forwards them to the process group `pgid`.
    fn start(pgid: u32) -> Result<Self> {
        let mut signals =
            signal_hook::iterator::Signals::new(Self::SIGNALS).context("cannot catch signals")?;
        let handle = signals.handle();
        let caught = Arc::new(AtomicI32::new(0));
        let seen = caught.clone();
        let thread = std::thread::spawn(move || {
            for signal in signals.forever() {
                seen.store(signal, Ordering::SeqCst);
                // SAFETY: kill(2) with a negative pid signals the process group Cargo
                // leads (made with process_group(0)); no memory is involved.
                unsafe { libc::kill(-(pgid as i32), signal) };
            }
        });
        Ok(Forwarder {
            handle,
            thread,
            caught,
        })
    }

    /// Stops forwarding once Cargo has ended; if a signal was forwarded, ends this
    /// process by the same signal (as the shell expects of a killed command).
    fn finish(self) {
        self.handle.close();
        let _ = self.thread.join();
        let signal = self.caught.load(Ordering::SeqCst);
        if signal != 0 {
            let _ = signal_hook::low_level::emulate_default_handler(signal);
        }
    }
}

/// Below this much free space a failed build is blamed on a full disk.
const NEARLY_FULL: u64 = 64 << 20;

/// After a failed build: when the disk holding Cargo's target directory or the cast
/// cache is (nearly) full, or the errors say so, which of them and what to free. A
/// linker that runs out of space may say only "Bus error", so the free space is
/// checked rather than the message alone.
fn full_disk_note(flags: &CargoFlags, err_text: &str) -> Option<String> {
    let target = flags
        .target_dir
        .clone()
        .or_else(|| std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from))
        .or_else(|| std::env::current_dir().ok());
    let cache = cast_core::cache_root::dir();
    let said = err_text.contains("No space left on device") || err_text.contains("Disk quota");
    let mut full = Vec::new();
    for (what, dir) in [
        ("Cargo's target directory", &target),
        ("the cast cache", &cache),
    ] {
        let Some(dir) = dir else { continue };
        let Some(free) = dir.ancestors().find_map(|d| fs4::available_space(d).ok()) else {
            continue;
        };
        if free < NEARLY_FULL {
            full.push(format!(
                "{what} {} has {} free",
                dir.display(),
                crate::ui::bytes(free)
            ));
        }
    }
    if full.is_empty() && !said {
        return None;
    }
    let mut note = String::from("cargo cast: ");
    for f in &full {
        note.push_str(f);
        note.push_str("; ");
    }
    note.push_str(&cast_core::disk_full::hint(cache.as_deref()));
    Some(note)
}

fn short(package_id: &str) -> &str {
    package_id.rsplit(['/', '#']).next().unwrap_or(package_id)
}
