//! `cargo cast build`: cast a Containerfile into one executable.
//!
//! In a crate (a directory with `Cargo.toml`), Cargo builds it with the given Cargo
//! flags; its build script (`cast_build::Cast`) does the image work. In a directory
//! with only a Containerfile, a crate is generated from the template in a build
//! directory under the target directory and built the same way, and the executable
//! is written to `-o OUTPUT` (default: the directory's name). The cast flags
//! (`--cpus`, `--memory`, ...) are checked here by the settings' own parsers and
//! reach the build script as `CAST_BUILD_*` variables, set here over the caller's,
//! which gives the precedence CLI > env > manifest. The build never reads the run
//! time's `CAST_*`. Apple targets are signed after linking ([`crate::sign`]).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use cast_build::config::value;
use cast_build::secret::{self, SecretSpec};
use cast_core::settings::{Key, Origin, Raw, VmUpdate};

use crate::cargo_build::{self, CargoFlags, Executable};
use crate::template::{self, Metadata};
use crate::ui::Ui;

/// Cast a Containerfile into one native executable.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  cargo cast build                         # in a casted crate: build its binaries
  cargo cast build --release --bin tool    # Cargo's selection and profile flags work
  cargo cast build ./image -o my-tool      # a directory holding only a Containerfile
  cargo cast build . --cpus 4 --memory 1G -o heavy-worker
  cargo cast build --image 127.0.0.1:5000/alpine:3 -t -o alpine
  cargo cast build ./image --secret id=npmrc,src=$HOME/.npmrc --secret id=token,env=TOKEN

Settings come from, highest first: these flags, CAST_BUILD_* variables
(CAST_BUILD_MEMORY=1G, ...), the crate's [package.metadata.cast],
[workspace.metadata.cast]; VM settings given nowhere keep the runtime's defaults
(2 vCPUs, 512M). The run-time CAST_* variables (CAST_MEMORY, ...) are not read by a
build: they apply when the executable runs, over what was baked in.
The image cache lives in $CAST_CACHE_DIR/build (default ~/.cache/cast/build).")]
pub struct BuildArgs {
    /// A casted crate, or a directory with a Containerfile [default: .]
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Where to write the executable [default: ./DIR-NAME for a Containerfile
    /// directory; Cargo's target directory for a crate].
    #[arg(short, long, value_name = "OUTPUT")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub cast: CastFlags,
    #[command(flatten)]
    pub cargo: CargoFlags,
}

/// The cast settings a user can give on the command line.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct CastFlags {
    /// vCPUs [default: 2].
    #[arg(long, value_name = "N", value_parser = vm_flag(Key::Cpus))]
    pub cpus: Option<String>,
    /// Guest memory: 512M, 1.5G, 768MiB, or MiB [default: 512M].
    #[arg(long, value_name = "SIZE", value_parser = vm_flag(Key::Memory))]
    pub memory: Option<String>,
    /// The tool's name (messages, guest hostname).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Replace the image's ENTRYPOINT (and drop its CMD).
    #[arg(long, value_name = "CMD")]
    pub entrypoint: Option<String>,
    /// No network for the guest: only `lo` [default: a NAT'd network card].
    #[arg(long)]
    pub no_network: bool,
    /// Publish a guest port on the host: `[ip:]host:guest[/tcp|udp]`, ranges as
    /// 8000-8010:8000-8010; the host side binds 127.0.0.1 unless an address is given
    /// (no `-p` here: that is Cargo's --package).
    #[arg(long, value_name = "[IP:]HOST:GUEST[/PROTO]", value_parser = vm_flag(Key::Publish))]
    pub publish: Vec<String>,
    /// Stream stdin to the process (the default).
    #[arg(short, long)]
    pub interactive: bool,
    /// Always give the process a terminal [default: when stdin and stdout are terminals].
    #[arg(short, long)]
    pub tty: bool,
    /// Use this image instead of building a Containerfile.
    #[arg(long, value_name = "REF")]
    pub image: Option<String>,
    /// Platform of the image [default: the host's].
    #[arg(long, value_name = "OS/ARCH", value_parser = value::check_platform)]
    pub platform: Option<String>,
    /// Stop the VM after this long (30, 1.5s, 5m, 1h 30m; 0: no limit).
    #[arg(long, value_name = "DURATION", value_parser = vm_flag(Key::Timeout))]
    pub timeout: Option<String>,
    /// Share a host path when the executable runs: `HOST:GUEST[:ro]`, repeatable; a
    /// relative HOST resolves where it runs (CAST_MOUNT replaces these).
    #[arg(long = "mount", value_name = "HOST:GUEST[:ro]", value_parser = vm_flag(Key::Mounts))]
    pub mounts: Vec<String>,
    /// A secret for `RUN --mount=type=secret,id=ID`: `id=ID,src=FILE` or
    /// `id=ID,env=VAR`, repeatable (Docker's grammar); read by the build, never
    /// stored in the image or the cache.
    #[arg(long = "secret", value_name = "id=ID,src=FILE|env=VAR", value_parser = secret_flag)]
    pub secrets: Vec<String>,
    /// Do not use the build cache: build the image and every RUN step again (what
    /// is built replaces the cached entries).
    #[arg(long)]
    pub no_cache: bool,
}

/// A `--secret`, checked, its file anchored here (the build script runs elsewhere).
fn secret_flag(s: &str) -> Result<String, String> {
    let cwd = std::env::current_dir().map_err(|e| e.to_string())?;
    SecretSpec::parse(s, &cwd).map(|spec| spec.to_string())
}

/// A flag's parser: the setting's own (as for every other source), giving the
/// value in the form `CAST_BUILD_*` carries it.
fn vm_flag(key: Key) -> impl Fn(&str) -> Result<String, String> + Clone {
    move |s| {
        let mut update = VmUpdate::default();
        update
            .set(key, Raw::Text(s), &Origin::Flag)
            .map_err(|e| format!("{}; expected {}", e.problem, key.accepts()))?;
        Ok(update.raw(key).expect("just set"))
    }
}

impl CastFlags {
    /// The `CAST_BUILD_*` variables that carry these flags to the build script.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut v = Vec::new();
        let mut set = |k: &str, val: Option<String>| {
            if let Some(val) = val {
                v.push((k.to_owned(), val));
            }
        };
        let vm = |k: Key| k.build_env().expect("a bakeable setting");
        set(vm(Key::Cpus), self.cpus.clone());
        set(vm(Key::Memory), self.memory.clone());
        set(vm(Key::Timeout), self.timeout.clone());
        set(vm(Key::Network), self.no_network.then(|| "0".into()));
        set(
            vm(Key::Publish),
            (!self.publish.is_empty()).then(|| self.publish.join(",")),
        );
        set(vm(Key::Interactive), self.interactive.then(|| "1".into()));
        set(vm(Key::Tty), self.tty.then(|| "1".into()));
        set(
            vm(Key::Mounts),
            (!self.mounts.is_empty()).then(|| self.mounts.join(",")),
        );
        set("CAST_BUILD_NAME", self.name.clone());
        set("CAST_BUILD_ENTRYPOINT", self.entrypoint.clone());
        set("CAST_BUILD_IMAGE", self.image.clone());
        set("CAST_BUILD_PLATFORM", self.platform.clone());
        set(
            secret::ENV,
            (!self.secrets.is_empty()).then(|| self.secrets.join("\n")),
        );
        // A new value every time, so Cargo reruns the build script even when
        // nothing else changed.
        set(
            cast_build::image::NO_CACHE_ENV,
            self.no_cache.then(|| {
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
                now.unwrap_or_default().as_nanos().to_string()
            }),
        );
        v
    }
}

/// Runs `cargo cast build`.
pub fn run(args: BuildArgs, ui: &Ui) -> Result<()> {
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from("."));
    if !dir.is_dir() {
        bail!(
            "{} is not a directory; give a casted crate or a directory holding a Containerfile",
            dir.display()
        );
    }
    let env = args.cast.env();
    for note in cast_build::config::runtime_vars_ignored(|k| std::env::var(k).ok()) {
        ui.note(note);
    }
    let manifest = args
        .cargo
        .manifest_path
        .clone()
        .or_else(|| Some(dir.join("Cargo.toml")).filter(|m| m.is_file()));
    if needs_default_kernel(manifest.as_deref()) {
        crate::kernels::ensure_default(ui)?;
    }
    if dir.join("Cargo.toml").is_file() && args.cargo.manifest_path.is_none() {
        let mut flags = args.cargo.clone();
        flags.manifest_path = Some(dir.join("Cargo.toml"));
        return build_crate(&flags, &env, args.output.as_deref(), ui);
    }
    if args.cargo.manifest_path.is_some() {
        return build_crate(&args.cargo, &env, args.output.as_deref(), ui);
    }
    let has_file = ["Containerfile", "Dockerfile"]
        .iter()
        .any(|f| dir.join(f).is_file());
    if !has_file && args.cast.image.is_none() {
        bail!(
            "{} has neither a Cargo.toml nor a Containerfile.\n  \
             Add a Containerfile there, pass --image REF, or start a crate with `cargo cast new NAME`",
            dir.display()
        );
    }
    build_dir(&dir, &args, &env, ui)
}

/// Whether the build will take the default kernel: no `CAST_BUILD_KERNEL`, and no
/// `kernel` in the crate's (or its workspace's) cast table. A manifest that cannot be
/// read is the build's to report.
fn needs_default_kernel(manifest: Option<&Path>) -> bool {
    if std::env::var_os("CAST_BUILD_KERNEL").is_some_and(|v| !v.is_empty()) {
        return false;
    }
    let Some(manifest) = manifest else {
        return true;
    };
    cast_build::config::ManifestConfig::load(manifest)
        .is_ok_and(|c| c.package.kernel.is_none() && c.workspace.kernel.is_none())
}

/// A crate: Cargo builds it; sign and copy what it made.
fn build_crate(
    flags: &CargoFlags,
    env: &[(String, String)],
    output: Option<&Path>,
    ui: &Ui,
) -> Result<()> {
    let exes = cargo_build::build(flags, env, ui)?;
    let casted: Vec<&Executable> = exes.iter().filter(|e| e.report.is_some()).collect();
    if casted.is_empty() {
        bail!(
            "cargo built no casted binary: the crate needs a build script calling \
             cast_build::Cast and a main.rs with cast_runner::casted_main!() \
             (see `cargo cast new`)"
        );
    }
    for exe in &casted {
        finish(exe, flags.target.as_deref(), env, ui)?;
    }
    if let Some(out) = output {
        let [one] = casted.as_slice() else {
            bail!("-o needs exactly one casted binary; select one with --bin NAME");
        };
        copy_executable(&one.path, out)?;
        ui.status("Wrote", out.display());
    }
    Ok(())
}

/// A directory with a Containerfile: generate a crate around it, then build that.
fn build_dir(dir: &Path, args: &BuildArgs, env: &[(String, String)], ui: &Ui) -> Result<()> {
    let dir = dir
        .canonicalize()
        .with_context(|| format!("cannot open {}", dir.display()))?;
    let dir_name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "cast".into());
    let package = template::package_name(args.cast.name.as_deref().unwrap_or(&dir_name));
    let target_dir = target_dir(&args.cargo)?;
    let crate_dir = target_dir
        .join("cast-crates")
        .join(format!("{package}-{}", short_hash(&dir)));
    let mut meta = Metadata::default();
    meta.set("containerfile", Some(dir.display().to_string()));
    meta.set("context", Some(dir.display().to_string()));
    meta.set(
        "name",
        Some(args.cast.name.clone().unwrap_or(dir_name.clone())),
    );
    template::write(&crate_dir, &template::files(&package, &meta, false))?;
    let mut flags = args.cargo.clone();
    flags.manifest_path = Some(crate_dir.join("Cargo.toml"));
    flags.target_dir = Some(target_dir);
    ui.status("Casting", format!("{} ({})", dir.display(), package));
    let exes = cargo_build::build(&flags, env, ui)?;
    let exe = exes
        .iter()
        .find(|e| e.name == package && e.report.is_some())
        .context("cargo did not report the casted binary")?;
    finish(exe, flags.target.as_deref(), env, ui)?;
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(&dir_name));
    copy_executable(&exe.path, &output)?;
    ui.status("Wrote", output.display());
    Ok(())
}

/// Signs (Apple targets) and reports one casted binary; `env` is what the flags
/// set, so a baked setting from a flag is shown as the flag.
fn finish(exe: &Executable, target: Option<&str>, env: &[(String, String)], ui: &Ui) -> Result<()> {
    if crate::sign::needs_signing(target) {
        crate::sign::adhoc_sign(&exe.path, &exe.name)?;
        ui.status(
            "Signed",
            format!("{} (virtualization, hypervisor)", exe.name),
        );
    }
    let payloads = exe.report.iter().flat_map(|r| &r.payloads);
    for p in payloads.filter(|p| p.bin.as_ref().is_none_or(|b| *b == exe.name)) {
        for w in &p.warnings {
            ui.warn(w);
        }
        let image = if exe.fresh {
            "up to date: nothing changed, no image work".to_owned()
        } else if p.cache_hit {
            format!("image from cache in {} ms, no build VM boots", p.image_ms)
        } else {
            format!(
                "image built in {} ms, {}",
                p.image_ms,
                cast_build::image::run_summary(p.vm_boots, p.cached_steps)
            )
        };
        ui.status(
            "Casted",
            format!(
                "{} → {} ({image}; root {}, payload {})",
                p.name,
                exe.path.display(),
                crate::ui::bytes(p.root_image_bytes),
                crate::ui::bytes(p.payload_bytes)
            ),
        );
        if !p.baked.is_empty() {
            let from_flag = |from: &str| {
                let key = Key::ALL.into_iter().find(|k| k.build_env() == Some(from))?;
                env.iter()
                    .any(|(k, _)| k == from)
                    .then(|| format!("--{key}"))
            };
            let baked: Vec<String> = p
                .baked
                .iter()
                .map(|b| {
                    let from = from_flag(&b.from).unwrap_or_else(|| b.from.clone());
                    format!("{} = {} ({from})", b.key, b.value)
                })
                .collect();
            ui.status("Baked", baked.join(", "));
        }
    }
    Ok(())
}

/// The target directory generated crates share: `--target-dir`, `CARGO_TARGET_DIR`,
/// else `<cast cache>/target` (dependencies compile once for every directory).
fn target_dir(flags: &CargoFlags) -> Result<PathBuf> {
    if let Some(d) = &flags.target_dir {
        return Ok(absolute(d));
    }
    if let Some(d) = std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        return Ok(absolute(Path::new(&d)));
    }
    let cache = cast_core::CacheRoot::from_env()
        .context("no cache directory: set CAST_CACHE_DIR or HOME")?;
    Ok(cache.target())
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_owned())
}

fn short_hash(p: &Path) -> String {
    use std::hash::{Hash, Hasher};
    // Stable within one toolchain, which is all a build directory name needs.
    let mut h = std::collections::hash_map::DefaultHasher::new();
    p.hash(&mut h);
    format!("{:016x}", h.finish())[..10].to_owned()
}

/// Copies `from` to `to` through a temporary file and a rename.
pub fn copy_executable(from: &Path, to: &Path) -> Result<()> {
    let staged = cast_core::cache_entry::StagedFile::new(to)
        .with_context(|| format!("cannot write in the directory of {}", to.display()))?;
    std::fs::copy(from, staged.path())
        .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(staged.path(), std::fs::Permissions::from_mode(0o755))?;
    staged
        .commit()
        .with_context(|| format!("cannot write {}", to.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        cast: CastFlags,
    }

    #[test]
    fn secrets_reach_the_build_script_as_specs_with_absolute_files() {
        let cli =
            Cli::try_parse_from(["x", "--secret", "id=a,src=k.txt", "--secret", "id=b,env=T"])
                .unwrap();
        let env = cli.cast.env();
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            env,
            [(
                "CAST_BUILD_SECRET".to_owned(),
                format!("id=a,src={}\nid=b,env=T", cwd.join("k.txt").display())
            )]
        );
        let e = Cli::try_parse_from(["x", "--secret", "src=k"])
            .err()
            .unwrap();
        assert!(e.to_string().contains("a secret needs id=ID"), "{e}");
    }

    #[test]
    fn no_cache_reaches_the_build_script_with_a_new_value_each_time() {
        let value = || {
            let cli = Cli::try_parse_from(["x", "--no-cache"]).unwrap();
            let env = cli.cast.env();
            assert_eq!(env.len(), 1);
            assert_eq!(env[0].0, "CAST_BUILD_NO_CACHE");
            env[0].1.clone()
        };
        let first = value();
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert_ne!(first, value(), "Cargo must see a changed variable to rerun");
        let cli = Cli::try_parse_from(["x"]).unwrap();
        assert!(cli.cast.env().is_empty());
    }
}
