//! Process-wide allocator tuning, applied once at start-up.
//!
//! huddle runs a thread per connection. glibc's malloc gives threads their own
//! arenas (up to 8 per core), and memory freed into one arena is not reused by
//! threads bound to another, so with badges reconnecting all day the resident
//! size creeps upward while the live heap stays flat (the soak test measured
//! +16 % over 30 minutes, all of it in thread arenas). Capping the arenas
//! trades a little allocator contention — there is almost no allocation on the
//! per-frame path — for a footprint that stays put.

/// Arenas glibc may create: one per core is enough for 2-core edge boxes.
const MAX_ARENAS: i32 = 2;

/// Caps glibc's malloc arenas. A no-op on other C libraries.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes allocator parameters; it is called at
        // start-up, before the server's threads exist.
        let applied = unsafe { libc::mallopt(libc::M_ARENA_MAX, MAX_ARENAS) };
        if applied != 1 {
            ::log::warn!("mallopt(M_ARENA_MAX, {MAX_ARENAS}) was refused");
        }
    }
}
