//! The millisecond clock every timer deadline is expressed in.
//!
//! # Contract
//!
//! - [`Clock::now_ms`] is *monotonic*: it never goes backwards. It counts
//!   milliseconds since the clock's own origin (not since the Unix epoch), so
//!   values from two different clocks are not comparable.
//! - Timer deadlines ([`super::TimerHandle::schedule_at`],
//!   [`super::TimerWheel::insert`]) are values of this scale.
//! - [`Clock::deadline_in`] converts a delay into such a deadline so that a timer
//!   firing once `now_ms() >= deadline` never fires before the delay has
//!   elapsed.
//! - [`SystemClock`] follows real time ([`Instant`]); [`ManualClock`] only moves
//!   when a test calls [`ManualClock::advance`] or [`ManualClock::set`], which
//!   makes timer tests deterministic.
//! - [`unix_ms`] is the *wall* clock (may jump), for timestamps in messages only;
//!   never use it for deadlines.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A monotonic millisecond time source shared by the timer thread and its users.
pub trait Clock: Send + Sync {
    /// Milliseconds since this clock's origin. Never decreases.
    fn now_ms(&self) -> u64;

    /// The deadline (in [`Clock::now_ms`] units) at which `delay` will have
    /// elapsed, rounded *up* so that `now_ms() >= deadline_in(delay)` implies at
    /// least `delay` has passed since this call.
    ///
    /// The default is `now_ms() + ceil(delay in ms)`. Because `now_ms` truncates,
    /// that can be up to 1 ms short in real time; [`SystemClock`] overrides this
    /// with sub-millisecond precision.
    fn deadline_in(&self, delay: Duration) -> u64 {
        self.now_ms().saturating_add(duration_ms_ceil(delay))
    }
}

/// `d` in whole milliseconds, rounded up, saturating at `u64::MAX`.
pub(crate) fn duration_ms_ceil(d: Duration) -> u64 {
    u64::try_from(d.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX)
}

/// Real monotonic time: milliseconds since the moment [`SystemClock::new`] ran.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    /// Time zero of this clock; `now_ms()` is `origin.elapsed()` truncated to ms.
    origin: Instant,
}

impl SystemClock {
    /// A clock whose origin is now (`now_ms()` starts at 0).
    pub fn new() -> Self {
        Self {
            origin: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn deadline_in(&self, delay: Duration) -> u64 {
        // Round the *sum* up at nanosecond precision: a later `now_ms()` (which
        // truncates) reaches this value only once `delay` has really elapsed.
        let due = self.origin.elapsed().saturating_add(delay);
        duration_ms_ceil(due)
    }
}

/// A clock that only moves when told to. For tests.
#[derive(Debug, Default)]
pub struct ManualClock {
    /// Current time in ms. Only ever increases: `advance` adds and `set`
    /// refuses to go backwards (see [`ManualClock::set`]).
    now: AtomicU64,
}

impl ManualClock {
    /// A manual clock reading `start_ms`.
    pub fn new(start_ms: u64) -> Self {
        Self {
            now: AtomicU64::new(start_ms),
        }
    }

    /// Moves the clock forward by `ms` (saturating) and returns the new time.
    pub fn advance(&self, ms: u64) -> u64 {
        let prev = self
            .now
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| {
                Some(t.saturating_add(ms))
            })
            .unwrap_or_else(|t| t);
        prev.saturating_add(ms)
    }

    /// Sets the clock to `ms`. To keep [`Clock::now_ms`] monotonic, a value
    /// earlier than the current time is ignored; returns the resulting time.
    pub fn set(&self, ms: u64) -> u64 {
        let prev = self.now.fetch_max(ms, Ordering::AcqRel);
        prev.max(ms)
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.now.load(Ordering::Acquire)
    }
}

/// Wall-clock milliseconds since the Unix epoch, for timestamps in messages.
///
/// Not monotonic (NTP may step it). Returns 0 if the system clock is set before
/// 1970.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_forward() {
        let c = ManualClock::new(5);
        assert_eq!(c.now_ms(), 5);
        assert_eq!(c.advance(10), 15);
        assert_eq!(c.set(100), 100);
        assert_eq!(c.set(50), 100, "set backwards is ignored");
        assert_eq!(c.now_ms(), 100);
        assert_eq!(c.advance(u64::MAX), u64::MAX);
    }

    #[test]
    fn manual_deadline_in_rounds_up() {
        let c = ManualClock::new(10);
        assert_eq!(c.deadline_in(Duration::from_millis(5)), 15);
        assert_eq!(c.deadline_in(Duration::from_micros(5_001)), 16);
        assert_eq!(c.deadline_in(Duration::ZERO), 10);
    }

    #[test]
    fn system_clock_is_monotonic_and_deadline_never_early() {
        let c = SystemClock::new();
        let start = Instant::now();
        let d = c.deadline_in(Duration::from_millis(3));
        let mut last = 0;
        loop {
            let n = c.now_ms();
            assert!(n >= last);
            last = n;
            if n >= d {
                break;
            }
            std::hint::spin_loop();
        }
        assert!(start.elapsed() >= Duration::from_millis(3));
    }

    #[test]
    fn unix_ms_is_recent() {
        // 2020-01-01 in ms; any sane test machine is past it.
        assert!(unix_ms() > 1_577_836_800_000);
    }
}
