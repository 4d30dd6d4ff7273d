//! The sequential tier: VM tests that are sensitive to load run alone.
//!
//! Every VM a test starts through this crate ([`crate::output_of`], [`crate::proc::Guard`],
//! builds through [`crate::casting::build_output`]) holds the tier *shared*, so ordinary
//! tests run in parallel as usual. A load-sensitive test (many VMs at once, a long
//! stream through TCG) calls [`alone`] first and holds it for its whole body: it
//! starts once the VMs already running have finished, and no other test of the binary
//! starts one until it is done. Cargo runs test binaries one after another, so a test
//! holding the tier alone has the machine to itself as far as the suite goes — under
//! plain `cargo test`, no special flags.

use std::cell::Cell;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

static TIER: RwLock<()> = RwLock::new(());

thread_local! {
    /// Tier guards this thread holds (alone or shared): a thread never waits on the
    /// lock it already holds.
    static HELD: Cell<usize> = const { Cell::new(0) };
}

/// Held by a load-sensitive test; see the module docs.
#[derive(Debug)]
#[must_use = "the test runs alone only while this is held"]
pub struct Alone {
    _guard: Option<RwLockWriteGuard<'static, ()>>,
}

/// Held while a VM (or build) of an ordinary test runs.
#[derive(Debug)]
pub struct Shared {
    _guard: Option<RwLockReadGuard<'static, ()>>,
}

/// Waits until no other VM of this test binary runs, and keeps it so until dropped.
pub fn alone() -> Alone {
    let guard = (HELD.get() == 0).then(|| TIER.write().unwrap_or_else(|e| e.into_inner()));
    HELD.set(HELD.get() + 1);
    Alone { _guard: guard }
}

/// Runs `f` on this thread as part of the test holding `alone` (a thread it
/// spawned): the VMs `f` starts do not wait for the tier that test holds.
pub fn within<R>(_alone: &Alone, f: impl FnOnce() -> R) -> R {
    HELD.set(HELD.get() + 1);
    let result = f();
    HELD.set(HELD.get() - 1);
    result
}

/// Joins the tier of ordinary tests (many at once, never beside an [`Alone`]).
pub fn shared() -> Shared {
    let guard = (HELD.get() == 0).then(|| TIER.read().unwrap_or_else(|e| e.into_inner()));
    HELD.set(HELD.get() + 1);
    Shared { _guard: guard }
}

impl Drop for Alone {
    fn drop(&mut self) {
        HELD.set(HELD.get() - 1);
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        HELD.set(HELD.get() - 1);
    }
}
