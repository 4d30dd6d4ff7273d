//! Support for the end-to-end tests: the `cargo-cast` binary, root images made from
//! `busybox-static`, a real registry on 127.0.0.1 ([`registry`]) with an image
//! pusher ([`push`]), child processes that can never hang a test, one HTTP test server
//! ([`http`]), and the sequential tier for load-sensitive VM tests ([`tier`]).
//!
//! Tests need, installed by `.ci/run`: qemu-system-x86, busybox-static, erofs-utils,
//! e2fsprogs, and a kernel bundle from `cargo xtask kernel`. A missing piece fails the
//! test with what to install; nothing is skipped silently.

pub mod casted;
pub mod casting;
pub mod debian;
pub mod fixtures;
pub mod http;
pub mod images;
pub mod net;
pub mod proc;
pub mod push;
pub mod registry;
pub mod tier;

pub use fixtures::{busybox_rootfs, busybox_tree, cargo_cast, has_9p, kernel_with_9p, RootFs};
pub use proc::{output_of, qemu_processes_mentioning, Output, Run};
