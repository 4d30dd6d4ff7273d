//! Builds the Containerfile into a root image and links it, with a kernel and the
//! run config, into this crate's binary (see `[package.metadata.cast]`).

fn main() -> Result<(), cast_build::CastError> {
    cast_build::Cast::from_env()?.build()?;
    Ok(())
}
