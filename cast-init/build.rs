//! Hands this package's source directory to the crate that builds the static init
//! (`cast-guest`, as `DEP_CAST_INIT_ROOT`), wherever Cargo unpacked it: the checkout,
//! or a registry's source directory.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!(
        "cargo:root={}",
        std::env::var("CARGO_MANIFEST_DIR").expect("set by Cargo")
    );
}
