//! Choosing the accelerator: KVM where it really works, HVF on macOS, TCG otherwise.
//!
//! "Does /dev/kvm open?" is not enough: nested software KVM (KVM-PVM) opens and answers
//! ioctls but emulates guest kernel code instruction by instruction, so a stock kernel
//! crawls or fails. KVM is used only with hardware virtualisation (`vmx`/`svm` in
//! /proc/cpuinfo) and without the `kvm_pvm` module.

pub use cast_core::settings::Accel;

/// An accelerator was asked for that this host cannot use.
#[derive(Debug, thiserror::Error)]
#[error("CAST_ACCEL={accel} is not usable here: {why}; unset CAST_ACCEL to pick automatically")]
pub struct AccelError {
    /// The accelerator asked for.
    pub accel: &'static str,
    /// Why not.
    pub why: String,
}

/// The accelerator to use: `requested` if usable, else the best usable one.
pub fn choose(requested: Option<Accel>) -> Result<Accel, AccelError> {
    match requested {
        Some(Accel::Tcg) => Ok(Accel::Tcg),
        Some(Accel::Kvm) => kvm_usable()
            .map(|()| Accel::Kvm)
            .map_err(|why| AccelError { accel: "kvm", why }),
        Some(Accel::Hvf) if cfg!(target_os = "macos") => Ok(Accel::Hvf),
        Some(Accel::Hvf) => Err(AccelError {
            accel: "hvf",
            why: "HVF exists only on macOS".into(),
        }),
        None if cfg!(target_os = "macos") => Ok(Accel::Hvf),
        None => Ok(if kvm_usable().is_ok() {
            Accel::Kvm
        } else {
            Accel::Tcg
        }),
    }
}

/// Whether KVM with hardware virtualisation is available, or why not.
fn kvm_usable() -> Result<(), String> {
    if !cfg!(target_os = "linux") {
        return Err("KVM exists only on Linux".into());
    }
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .map_err(|e| format!("/dev/kvm: {e}"))?;
    if std::path::Path::new("/sys/module/kvm_pvm").exists() {
        return Err("KVM here is KVM-PVM (software nesting), too slow for a stock kernel".into());
    }
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let hardware = cpuinfo
        .lines()
        .filter(|l| l.starts_with("flags"))
        .any(|l| l.split_whitespace().any(|f| f == "vmx" || f == "svm"));
    if hardware {
        Ok(())
    } else {
        Err("the CPU shows no hardware virtualisation (vmx/svm)".into())
    }
}
