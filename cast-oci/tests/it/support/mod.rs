//! Test support: a real registry ([`registry`]), image building and pushing
//! ([`push`], both from `cast-tests`), local-source writers ([`local`]), and resolver set-up with fast retries,
//! no progress bars and no credentials from the real environment.

pub mod local;
pub mod proxy;

// The registry and the image pusher are shared with the end-to-end tests.
pub use cast_tests::{push, registry};

use std::path::Path;
use std::time::Duration;

use cast_oci::{AuthSource, BlobCache, ClientOptions, ResolveOptions, Resolver, RetryPolicy};

/// Options for tests: anonymous, quick retries, short timeouts, no progress.
pub fn options() -> ResolveOptions {
    ResolveOptions {
        client: ClientOptions {
            insecure_registries: Vec::new(),
            auth: AuthSource::anonymous(),
            retry: RetryPolicy {
                attempts: 3,
                initial_delay: Duration::from_millis(50),
                max_delay: Duration::from_millis(200),
            },
            connect_timeout: Duration::from_secs(2),
            io_timeout: Duration::from_secs(20),
        },
        progress: false,
        ..ResolveOptions::default()
    }
}

/// A resolver over the cache at `dir` with `opts`.
pub fn resolver(dir: &Path, opts: ResolveOptions) -> Resolver {
    Resolver::new(BlobCache::open(dir).expect("open cache"), opts)
}

/// Names of temp files left in the cache's blob dir (there must be none).
pub fn leftover_temp_files(cache: &Path) -> Vec<String> {
    std::fs::read_dir(cache.join("blobs/sha256"))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(".tmp"))
                .collect()
        })
        .unwrap_or_default()
}
