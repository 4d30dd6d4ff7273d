//! The runner's own options in a casted executable: `--cast-help`, `--cast-version`
//! and `--cast-info` (the baked configuration and the payload's digests).

use super::locate::Located;
use super::CastedError;
use cast_core::settings::{
    parse::format_mib, Key, Origin, VmSettings, VmUpdate, MAX_CPUS, MIN_MEMORY_MIB,
};
use cast_payload::{PartKind, Payload};
use std::fmt::Write;

/// The run-time variables, the ranges from the settings model.
fn variables() -> String {
    format!(
        "\
  CAST_CPUS          vCPUs (1 to {MAX_CPUS})
  CAST_MEMORY        guest memory: 512M, 1.5G, 768MiB or MiB (at least {})
  CAST_TIMEOUT       stop the VM after this long (exit 124): 30, 1.5s, 5m; 0: no limit
  CAST_BOOT_TIMEOUT  give up if the guest is not up after this long (default 30s)
  CAST_TTY           1/0: force terminal mode on or off (default: auto)
  CAST_INTERACTIVE   1/0: stream stdin to the process (default: 1)
  CAST_ACCEL         kvm, hvf or tcg (default: the best usable)
  CAST_QEMU          QEMU binary (default: qemu-system-<arch> on PATH)
  CAST_DEBUG         1: kernel messages and init timings on stderr
  CAST_MOUNT         host mounts HOST:GUEST[:ro], separated by , or ; (replaces baked ones)
  CAST_CACHE_DIR     cache root (default: ~/.cache/cast)",
        format_mib(MIN_MEMORY_MIB.into())
    )
}

/// `--cast-help`.
pub fn help(program: &str) -> i32 {
    println!(
        "{program}: a container image cast into an executable by cargo-cast; it runs the
image's entrypoint in a disposable microVM (QEMU).

Usage: {program} [ARGS...]
  ARGS replace the image's CMD (its ENTRYPOINT is kept), as `docker run IMAGE ARGS...`.
  stdin, stdout and stderr are streamed; the exit status is the process's own.

Runner options (only as the sole argument):
  --cast-help     this text
  --cast-version  versions of the runtime and the payload
  --cast-info     the baked run configuration, VM defaults and payload digests

Environment (overrides the defaults baked into this executable):
{}

Exit status: the process's; 125 runtime failure, 124 CAST_TIMEOUT, 126 command not
executable, 127 command not found.",
        variables()
    );
    0
}

/// `--cast-version`.
pub fn version(program: &str, payload: &Payload<'_>) -> i32 {
    println!(
        "{program}: cargo-cast runtime {}, payload format {}, built by {}",
        env!("CARGO_PKG_VERSION"),
        payload.manifest.format,
        payload.manifest.builder
    );
    0
}

/// `--cast-info`: what the payload carries (parsed, not hashed) and where it is.
pub fn info(program: &str, payload: &Payload<'_>, located: &Located) -> Result<i32, CastedError> {
    let m = &payload.manifest;
    let mut s = String::new();
    let _ = writeln!(s, "name: {}", m.vm.name);
    let _ = writeln!(s, "program: {program}");
    let _ = writeln!(s, "runtime: cargo-cast {}", env!("CARGO_PKG_VERSION"));
    let _ = writeln!(s, "builder: {}", m.builder);
    let _ = writeln!(s, "payload format: {}", m.format);
    let _ = writeln!(s, "payload digest: sha256:{}", payload.digest_hex());
    let _ = writeln!(s, "payload size: {}", payload.len());
    let _ = writeln!(
        s,
        "executable: {} (payload at offset {})",
        located.path.display(),
        located.offset
    );
    let _ = writeln!(
        s,
        "kernel release: {}",
        m.kernel_release.as_deref().unwrap_or("unknown")
    );
    for kind in PartKind::ALL {
        let p = m.part(kind);
        let _ = writeln!(
            s,
            "part {}: offset {} length {} encoding {:?} sha256:{}{}",
            kind.name(),
            p.offset,
            p.length,
            p.encoding,
            p.sha256,
            if p.decoded_sha256 != p.sha256 {
                format!(
                    " (decoded {} bytes, sha256:{})",
                    p.decoded_length, p.decoded_sha256
                )
            } else {
                String::new()
            }
        );
    }
    let rc = &m.run;
    let list = |v: &Option<Vec<String>>| v.as_ref().map_or("none".into(), |v| format!("{v:?}"));
    let _ = writeln!(s, "entrypoint: {}", list(&rc.entrypoint));
    let _ = writeln!(s, "cmd: {}", list(&rc.cmd));
    for (k, v) in &rc.env {
        let _ = writeln!(s, "env: {k}={v}");
    }
    let _ = writeln!(s, "user: {}", rc.user.as_deref().unwrap_or("(root)"));
    let _ = writeln!(s, "workdir: {}", rc.workdir.as_deref().unwrap_or("/"));
    if !rc.exposed_ports.is_empty() {
        let ports: Vec<String> = rc.exposed_ports.iter().map(|p| p.to_string()).collect();
        let _ = writeln!(s, "exposed ports: {}", ports.join(" "));
    }
    // What this executable runs with here and now: the baked defaults under the
    // CAST_* variables that are set.
    let baked = &m.vm.settings;
    let env = VmUpdate::from_env(|k| std::env::var(k).ok(), &Origin::Env)
        .map_err(|e| CastedError::Run(e.into()))?;
    let d = VmSettings::resolve([baked, &env]);
    for key in Key::ALL.into_iter().filter(|k| k.bakeable()) {
        let from = if env.raw(key).is_some() {
            key.env()
        } else if baked.raw(key).is_some() {
            "baked"
        } else {
            "default"
        };
        let _ = writeln!(s, "vm {key}: {} ({from})", d.show(key));
    }
    print!("{s}");
    Ok(0)
}
