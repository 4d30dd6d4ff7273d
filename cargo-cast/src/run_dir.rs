//! `cargo cast run DIR [-- ARGS...]`: build DIR's Containerfile into a root image
//! (through the content-addressed build cache: an unchanged directory costs a few
//! milliseconds) and run it like the casted executable would, without compiling
//! or leaving an executable. ARGS replace the image's CMD, its ENTRYPOINT is kept;
//! the image's environment, working directory and user apply unless `-e`, `-w`,
//! `-u` say otherwise. Settings come from `CAST_*` as for `cargo cast build`.

use std::io::IsTerminal as _;
use std::path::Path;

use cast_build::config::{self, CastLayer};
use cast_build::image::{build_image, error_chain, ImageOptions};
use cast_runner::RunError;

use crate::run::RunArgs;

/// Builds `dir`'s image and rewrites `args` into a `--rootfs` run of it.
pub fn prepare(dir: &Path, args: &mut RunArgs) -> Result<(), RunError> {
    let fail = |what: String| RunError::Prepare {
        what: "the image",
        source: std::io::Error::other(what),
    };
    let cwd = std::env::current_dir().map_err(|e| fail(e.to_string()))?;
    let env =
        config::env_layer(|k| std::env::var(k).ok(), &cwd).map_err(|e| fail(error_chain(&e)))?;
    let here = CastLayer {
        containerfile: Some(dir.to_owned()),
        context: Some(dir.to_owned()),
        ..CastLayer::default()
    };
    let cfg = config::resolve([env, here], dir);
    for w in &cfg.warnings {
        eprintln!("warning: {w}");
    }
    let progress = std::io::stderr().is_terminal();
    let options = ImageOptions::from_env(progress).map_err(|e| fail(error_chain(&e)))?;
    let image = build_image(&cfg, &options).map_err(|e| fail(error_chain(&e)))?;
    let how = if image.cache_hit {
        "from the cache"
    } else {
        "built"
    };
    eprintln!(
        "cargo-cast: image {how} in {} ms; {}",
        image.elapsed.as_millis(),
        image.run_summary()
    );
    let rc = &image.run_config;
    let mut argv = rc.entrypoint.clone().unwrap_or_default();
    if args.command.is_empty() {
        argv.extend(rc.cmd.clone().unwrap_or_default());
    } else {
        argv.append(&mut args.command);
    }
    if argv.is_empty() {
        return Err(fail(format!(
            "{} sets no ENTRYPOINT or CMD: give the command after `--`",
            dir.display()
        )));
    }
    args.command = argv;
    let mut env: Vec<String> = rc.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    env.append(&mut args.env);
    args.env = env;
    if args.workdir.is_none() {
        args.workdir = rc.workdir.clone();
    }
    if args.user.is_none() {
        args.user = rc.user.clone();
    }
    if let Some(name) = &cfg.name {
        args.hostname = name.clone();
    }
    args.rootfs = Some(image.root_image);
    Ok(())
}
