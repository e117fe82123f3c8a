//! Process-wide allocator tuning: applied once at start-up, plus the
//! occasional hand-back of freed memory when connections end.
//!
//! huddle runs a thread per connection, and badges reconnect all day. glibc's
//! malloc gives threads their own arenas (up to 8 per core); memory freed into
//! one arena is reused only by threads bound to it, and freed pages in the
//! middle of an arena are never returned on their own. The soak test (200
//! badges reconnecting for 30 minutes, `perf/soak.rs`) measured the resident
//! size climbing 16 % after warm-up while the live heap stayed flat, all of it
//! in thread arenas; after every badge left, 40 MiB of free memory was still
//! resident. Three settings keep the footprint where the live heap is:
//!
//! - at most [`MAX_ARENAS`] arenas, so freed chunks are found again by the
//!   next connection thread;
//! - a fixed mmap threshold of [`MMAP_THRESHOLD`], so the per-connection audio
//!   ring (64 KiB) and other large buffers are mapped and unmapped whole
//!   instead of fragmenting an arena (a fixed value also turns off glibc's
//!   habit of raising the threshold after the first large free);
//! - `malloc_trim` after a connection ends, at most once per [`TRIM_EVERY_MS`],
//!   on the ending connection's own thread: nobody waits for that thread, so
//!   the walk over the arenas never delays a live connection. A burst of
//!   closes is trimmed by its first thread, before the others have freed
//!   anything, so the periodic stats job ([`release_if_pending`]) trims once
//!   more when connections ended since the last trim. Timed by the debug log
//!   in one manual run (not a benchmark): 30–90 µs per trim while 300 badges
//!   streamed; 3.4 ms for the catch-up trim after all 300 left at once
//!   (34 → 17 MiB RSS), inside the timer wheel's 10 ms tick.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::timer::unix_ms;

/// Arenas glibc may create: one per core is enough for 2-core edge boxes.
const MAX_ARENAS: i32 = 2;

/// Allocations of at least this many bytes get their own mapping.
const MMAP_THRESHOLD: i32 = 64 * 1024;

/// Least time between two trims: a reconnect storm ends many connections a
/// second, and one walk over the arenas returns what all of them freed.
pub const TRIM_EVERY_MS: u64 = 5_000;

/// Wall-clock millisecond of the last trim; 0 = never.
static LAST_TRIM_MS: AtomicU64 = AtomicU64::new(0);

/// A connection ended after the last trim: its memory may still be held.
static TRIM_PENDING: AtomicBool = AtomicBool::new(false);

/// Applies the arena cap and the mmap threshold. A no-op on other C
/// libraries. Call before the server's threads exist.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        for (param, value, name) in [
            (libc::M_ARENA_MAX, MAX_ARENAS, "M_ARENA_MAX"),
            (libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD, "M_MMAP_THRESHOLD"),
        ] {
            // SAFETY: mallopt only changes allocator parameters.
            let applied = unsafe { libc::mallopt(param, value) };
            if applied != 1 {
                ::log::warn!("mallopt({name}, {value}) was refused");
            }
        }
    }
}

/// Called by a connection thread as it ends: returns the memory freed by
/// ended connections to the system, unless another thread did so less than
/// [`TRIM_EVERY_MS`] ago. Returns whether this call trimmed.
pub fn release_after_close() -> bool {
    TRIM_PENDING.store(true, Ordering::Relaxed);
    trim_if_due()
}

/// Called periodically: trims if a connection ended since the last trim
/// and [`TRIM_EVERY_MS`] have passed. Returns whether this call trimmed.
pub fn release_if_pending() -> bool {
    TRIM_PENDING.load(Ordering::Relaxed) && trim_if_due()
}

fn trim_if_due() -> bool {
    let now = unix_ms();
    let last = LAST_TRIM_MS.load(Ordering::Relaxed);
    if now.saturating_sub(last) < TRIM_EVERY_MS {
        return false;
    }
    // Only the thread that moves the mark trims; the others see it moved.
    if LAST_TRIM_MS
        .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
        .is_err()
    {
        return false;
    }
    // Cleared before the walk: a close during it sets it again.
    TRIM_PENDING.store(false, Ordering::Relaxed);
    trim();
    true
}

fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let started = std::time::Instant::now();
        // SAFETY: malloc_trim only returns free pages; it takes each arena's
        // lock as it walks it.
        let released = unsafe { libc::malloc_trim(0) };
        crate::metrics::METRICS
            .malloc_trims
            .fetch_add(1, Ordering::Relaxed);
        ::log::debug!(
            "malloc_trim released={} in {} µs",
            released != 0,
            started.elapsed().as_micros()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_at_most_once_per_interval_and_catches_up_later() {
        // Other tests in this binary never call these, so the first call trims.
        assert!(release_after_close());
        assert!(!release_if_pending(), "nothing ended since");
        assert!(!release_after_close(), "within the interval");
        assert!(!release_if_pending(), "still within the interval");
        LAST_TRIM_MS.store(unix_ms() - TRIM_EVERY_MS, Ordering::Relaxed);
        assert!(release_if_pending(), "the skipped close is trimmed later");
        LAST_TRIM_MS.store(unix_ms() - TRIM_EVERY_MS, Ordering::Relaxed);
        assert!(!release_if_pending(), "only once");
        assert!(release_after_close());
    }
}
