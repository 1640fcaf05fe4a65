//! The allocator of curflow's binaries (`curflow`, `curflow-lambda`): mimalloc, with freed
//! memory returned to the operating system after 10 ms instead of mimalloc's 1 s.
//!
//! Why mimalloc: the Parquet reader allocates and frees page-sized buffers for every column of
//! every batch; with glibc's allocator a tenth of a scan's CPU time went to the kernel faulting
//! those pages back in (README, Performance). It is built with `no_thp` (workspace `Cargo.toml`):
//! with transparent huge pages every fresh arena page was a zeroed 2 MiB page.
//!
//! Why the purge delay: mimalloc 3 keeps freed memory committed for `purge_delay` = 1,000 ms
//! before returning it, so a scan that frees one file's group tables and row-group buffers and
//! allocates the next file's holds both for a second: on the realistic 10M-row month the peak
//! RSS was ~600 MiB with the default and ~430 MiB with 10 ms or less. Why not 0: returning every
//! freed page at once makes the Parquet reader fault the pages of its next column chunk in again
//! (sys time doubled); on the low-cardinality 10M-row month 0 ms was ~20 % slower than 10 ms at
//! the same peak RSS (README, Performance). The documented memory limit (`memory-limit-mb`) and
//! the Lambda's 2 GB are about RSS, so [`return_freed_memory_promptly`] runs first thing in both
//! binaries.
//!
//! This is the one crate that calls C directly: mimalloc's option API is not part of the
//! `mimalloc` crate, and the `extended` bindings of `libmimalloc-sys` lack (and misnumber) the
//! version-3 options, so the two functions are declared here against mimalloc 3's header.

use std::ffi::{c_int, c_long};

pub use mimalloc::MiMalloc;

// Linked for its static mimalloc library, whose option functions are declared below.
use libmimalloc_sys as _;

/// `mi_option_purge_delay` in mimalloc 3's `mi_option_e` (`include/mimalloc.h`): the 16th option.
/// The unit test checks that this index holds mimalloc 3's default for it (1,000 ms), so a
/// mimalloc upgrade that renumbers the options fails the test instead of setting another option.
const MI_OPTION_PURGE_DELAY: c_int = 15;

unsafe extern "C" {
    /// `void mi_option_set(mi_option_t option, long value)`.
    fn mi_option_set(option: c_int, value: c_long);
    /// `long mi_option_get(mi_option_t option)`.
    fn mi_option_get(option: c_int) -> c_long;
    /// `void mi_collect(bool force)`.
    fn mi_collect(force: bool);
}

/// The environment variable mimalloc itself reads for the purge delay (milliseconds). When it is
/// set, [`return_freed_memory_promptly`] leaves mimalloc's reading of it in place, so an operator
/// (or a benchmark) can trade RSS for fewer page faults without a rebuild.
pub const PURGE_DELAY_ENV: &str = "MIMALLOC_PURGE_DELAY";

/// curflow's purge delay (milliseconds): see the crate documentation.
pub const PURGE_DELAY_MS: c_long = 10;

/// Makes mimalloc return freed memory to the OS after [`PURGE_DELAY_MS`] instead of its 1 s,
/// unless [`PURGE_DELAY_ENV`] sets a delay. Call it first in `main`, before the work allocates.
pub fn return_freed_memory_promptly() {
    if std::env::var_os(PURGE_DELAY_ENV).is_some() {
        return;
    }
    // SAFETY: `mi_option_set` takes any option index and value (the option table is static and
    // options may be set at any time); the index is mimalloc 3's purge delay (see the constant).
    unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) }
}

/// Returns the memory this thread has freed to the OS now, without waiting for the purge delay
/// (mimalloc checks the delay only when the thread allocates or frees again). For a structure
/// moved piece by piece into a new one: each freed piece goes back before the next is copied.
pub fn return_freed_memory_now() {
    // SAFETY: `mi_collect` may be called at any time from any thread; `force` makes it purge
    // what is free without waiting.
    unsafe { mi_collect(true) }
}

/// mimalloc's current purge delay, in milliseconds.
pub fn purge_delay_ms() -> c_long {
    // SAFETY: reads a static option table entry; any index below the option count is valid.
    unsafe { mi_option_get(MI_OPTION_PURGE_DELAY) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[global_allocator]
    static ALLOCATOR: MiMalloc = MiMalloc;

    #[test]
    fn the_option_is_mimalloc_3s_purge_delay_and_is_set_to_curflows() {
        // mimalloc 3's default purge delay is 1,000 ms: the index is that option. When the
        // environment sets it, mimalloc reads that value and curflow leaves it.
        match std::env::var(PURGE_DELAY_ENV) {
            Err(_) => {
                assert_eq!(purge_delay_ms(), 1000);
                return_freed_memory_promptly();
                assert_eq!(purge_delay_ms(), PURGE_DELAY_MS);
            }
            Ok(set) => {
                return_freed_memory_promptly();
                assert_eq!(Some(purge_delay_ms()), set.trim().parse().ok());
            }
        }
        let v: Vec<u8> = vec![1; 1 << 20];
        assert_eq!(v.iter().map(|&b| u64::from(b)).sum::<u64>(), 1 << 20);
    }

    /// Resident memory of this process in bytes (Linux `/proc/self/statm`, 4 KiB pages).
    fn resident_bytes() -> u64 {
        let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
        statm.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()).unwrap_or(0) * 4096
    }

    /// What `PeriodAggregate::into_lines` relies on: memory freed in pieces is resident until the
    /// purge delay has passed *and* the thread calls mimalloc again, unless it is returned now.
    #[test]
    fn memory_freed_in_pieces_is_returned_at_once_when_asked() {
        if !std::path::Path::new("/proc/self/statm").exists() {
            return; // not Linux: nothing to measure
        }
        const PIECES: usize = 64;
        const PIECE: usize = 4 << 20;
        let pieces: Vec<Vec<u8>> = (0..PIECES).map(|i| vec![(i % 251) as u8 + 1; PIECE]).collect();
        assert!(pieces.iter().all(|p| p[PIECE - 1] != 0));
        let held = resident_bytes();
        drop(pieces);
        let freed = resident_bytes();
        return_freed_memory_now();
        let returned = resident_bytes();
        let total = (PIECES * PIECE) as u64;
        assert!(
            freed > returned && freed - returned >= total / 2,
            "{} MiB returned of {} MiB freed (resident: {} MiB held, {} MiB after the free, {} MiB after the call)",
            freed.saturating_sub(returned) >> 20,
            total >> 20,
            held >> 20,
            freed >> 20,
            returned >> 20
        );
    }
}
