//! A hook through which the model hands memory it has just freed back to the operating system.
//!
//! The binaries' allocator (mimalloc, `curflow-alloc`) returns freed pages after a delay, and
//! checks the delay only when the thread allocates or frees again. When a large structure is
//! moved into a new one piece by piece ([`crate::aggregate::PeriodAggregate::into_lines`]: 4M
//! lines are 1.5 GB), the pieces freed meanwhile stayed resident until the copy was done, so the
//! copy briefly held the lines twice (measured: 3.1 GB instead of 2.2 GB on a 4M-line month).
//! The model knows nothing of the allocator: a binary installs [`set_release_hook`] at start, and
//! [`release_freed_memory`] does nothing until it has.

use std::sync::OnceLock;

static HOOK: OnceLock<fn()> = OnceLock::new();

/// Installs what [`release_freed_memory`] calls. The first hook installed stays: `false` when
/// one was installed before.
pub fn set_release_hook(hook: fn()) -> bool {
    HOOK.set(hook).is_ok()
}

/// Asks the allocator to return the memory freed so far to the operating system now; a no-op
/// without a hook.
pub fn release_freed_memory() {
    if let Some(hook) = HOOK.get() {
        hook();
    }
}
