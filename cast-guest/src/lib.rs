//! cast-guest: what every cast VM boots into before its root image — the static
//! guest init (`cast-init`, built by this crate's build script from its source, or
//! taken from `CAST_INIT_BINARY`) and the initrd that carries it with the kernel
//! bundle's modules ([`initrd::build`]).
//!
//! The build (`cast-build`: the payload of a casted executable, RUN in build VMs) and
//! `cargo cast run` use it; a casted executable does not (its initrd is in its
//! payload), so `cast-runner` does not depend on it.

pub mod initrd;

/// The static guest init, built by this crate's build script.
pub static GUEST_INIT: &[u8] = include_bytes!(env!("CAST_INIT_PATH"));
