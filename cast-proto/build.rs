//! Hands this package's source directory to `cast-guest` (`DEP_CAST_PROTO_ROOT`), so
//! the guest init it builds speaks exactly the protocol the host side was built with.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!(
        "cargo:root={}",
        std::env::var("CARGO_MANIFEST_DIR").expect("set by Cargo")
    );
}
