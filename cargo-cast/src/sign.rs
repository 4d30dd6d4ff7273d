//! Ad-hoc signing of casted executables for Apple targets, after linking (a build
//! script runs before the final link, so it cannot sign). macOS only lets a process
//! use Virtualization.framework or Hypervisor.framework (QEMU's `hvf`) when its
//! signature carries these entitlements; an ad-hoc signature is enough to run
//! locally. Signing is done in-process by `apple-codesign` (no `codesign` tool), so
//! it works — and is tested — on Linux too.

use std::io::Write as _;
use std::path::Path;

use anyhow::{Context as _, Result};
use apple_codesign::{MachFile, MachOSigner, SettingsScope, SigningSettings};
use cast_core::cache_entry::StagedFile;

/// The entitlements every casted executable gets.
pub const ENTITLEMENTS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>com.apple.security.virtualization</key>
	<true/>
	<key>com.apple.security.hypervisor</key>
	<true/>
</dict>
</plist>
"#;

/// Whether binaries for `target` (a triple; the host's when `None`) must be signed.
pub fn needs_signing(target: Option<&str>) -> bool {
    match target {
        Some(t) => t.contains("-apple-"),
        None => cfg!(target_vendor = "apple"),
    }
}

/// Signs the Mach-O at `path` in place, ad hoc, with [`ENTITLEMENTS`] and the
/// identifier `identifier`.
pub fn adhoc_sign(path: &Path, identifier: &str) -> Result<()> {
    let data = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let signer = MachOSigner::new(&data)
        .with_context(|| format!("{} is not a Mach-O executable", path.display()))?;
    let mut settings = SigningSettings::default();
    settings.set_binary_identifier(SettingsScope::Main, identifier);
    settings
        .set_entitlements_xml(SettingsScope::Main, ENTITLEMENTS)
        .context("bad entitlements")?;
    let mut out = Vec::with_capacity(data.len() + 64 * 1024);
    signer
        .write_signed_binary(&settings, &mut out)
        .with_context(|| format!("cannot sign {}", path.display()))?;
    // Written beside and renamed, so a failure never leaves half a binary.
    let cannot = || format!("cannot replace {}", path.display());
    let mut staged = StagedFile::new(path).with_context(cannot)?;
    staged.file().write_all(&out).with_context(cannot)?;
    let mode = std::fs::metadata(path)?.permissions();
    std::fs::set_permissions(staged.path(), mode)?;
    staged.commit().with_context(cannot)?;
    Ok(())
}

/// The entitlements XML in the signature of every Mach-O in `data`.
pub fn entitlements(data: &[u8]) -> Result<Vec<String>> {
    let file = MachFile::parse(data).context("not a Mach-O file")?;
    let mut v = Vec::new();
    for macho in file.iter_macho() {
        let sig = macho
            .code_signature()?
            .context("the Mach-O has no code signature")?;
        let ent = sig
            .entitlements()?
            .context("the signature has no entitlements")?;
        v.push(ent.as_str().to_owned());
    }
    Ok(v)
}

/// Sign executables for macOS (ad hoc, with the virtualization entitlements).
#[derive(Debug, clap::Args)]
#[command(
    after_help = "`cargo cast build` signs Apple-target binaries itself; this is for
executables linked elsewhere (e.g. cross-linked on another machine).

Examples:
  cargo cast sign target/aarch64-apple-darwin/release/my-tool
  cargo cast sign --show my-tool        # print the entitlements in the signature"
)]
pub struct SignArgs {
    /// Mach-O executables to sign in place.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<std::path::PathBuf>,
    /// Print each file's entitlements instead of signing.
    #[arg(long)]
    pub show: bool,
}

/// Runs `cargo cast sign`.
pub fn run(args: SignArgs, ui: &crate::ui::Ui) -> Result<()> {
    for file in &args.files {
        if args.show {
            let data =
                std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
            for xml in entitlements(&data).with_context(|| file.display().to_string())? {
                println!("{}:\n{xml}", file.display());
            }
            continue;
        }
        let id = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "cast".into());
        adhoc_sign(file, &id)?;
        ui.status(
            "Signed",
            format!("{} (virtualization, hypervisor)", file.display()),
        );
    }
    Ok(())
}
