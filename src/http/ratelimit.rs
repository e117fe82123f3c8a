//! Per-client-IP token bucket for the meeting and workflow API (PROTOCOL.md
//! §5.1): `meeting.api_rate_limit` requests per second, burst equal to the
//! rate, 0 disables. The rate is passed on every call, so a config reload
//! applies to the next request without rebuilding the limiter.
//!
//! The limiter is process-wide ([`global`]); the HTTP router takes it through
//! [`super::ApiContext`] so unit tests can use a private one.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Buckets idle this long are full again (burst = rate, refill = rate/s) and
/// thus indistinguishable from a fresh one, so pruning them loses nothing.
const FULL_AFTER: Duration = Duration::from_secs(1);
/// How often a request may trigger a pruning pass.
const PRUNE_EVERY: Duration = Duration::from_secs(10);
/// More tracked clients than this prunes at once, whatever the time.
const PRUNE_ABOVE: usize = 4096;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

#[derive(Debug)]
struct State {
    buckets: HashMap<IpAddr, Bucket>,
    last_prune: Instant,
}

#[derive(Debug)]
pub struct RateLimiter {
    state: Mutex<State>,
}

impl Default for RateLimiter {
    fn default() -> Self {
        RateLimiter::new()
    }
}

impl RateLimiter {
    pub fn new() -> Self {
        RateLimiter {
            state: Mutex::new(State {
                buckets: HashMap::new(),
                last_prune: Instant::now(),
            }),
        }
    }

    /// Takes one token for `ip` at `rate` requests/s; `false` means the
    /// request is over the limit (answer 429). `rate == 0` always allows.
    pub fn allow(&self, ip: IpAddr, rate: u32) -> bool {
        self.allow_at(ip, rate, Instant::now())
    }

    /// [`Self::allow`] at a given instant (for tests).
    pub fn allow_at(&self, ip: IpAddr, rate: u32, now: Instant) -> bool {
        if rate == 0 {
            return true;
        }
        let capacity = f64::from(rate);
        let mut state = self.state.lock();
        if state.buckets.len() > PRUNE_ABOVE
            || now.saturating_duration_since(state.last_prune) >= PRUNE_EVERY
        {
            state
                .buckets
                .retain(|_, b| now.saturating_duration_since(b.last) < FULL_AFTER);
            state.last_prune = now;
        }
        let bucket = state.buckets.entry(ip).or_insert(Bucket {
            tokens: capacity,
            last: now,
        });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        // `min` also shrinks a bucket filled under a higher rate before a reload.
        bucket.tokens = (bucket.tokens + elapsed * capacity).min(capacity);
        bucket.last = bucket.last.max(now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Clients currently tracked (for tests and diagnostics).
    pub fn tracked(&self) -> usize {
        self.state.lock().buckets.len()
    }
}

/// The process-wide limiter every connection thread shares.
pub fn global() -> &'static RateLimiter {
    static LIMITER: OnceLock<RateLimiter> = OnceLock::new();
    LIMITER.get_or_init(RateLimiter::new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn burst_then_refill() {
        let limiter = RateLimiter::new();
        let t0 = Instant::now();
        let allowed = (0..12).filter(|_| limiter.allow_at(A, 5, t0)).count();
        assert_eq!(allowed, 5);
        // Another client has its own bucket.
        assert!(limiter.allow_at(B, 5, t0));
        // 200 ms at 5/s refills one token.
        assert!(limiter.allow_at(A, 5, t0 + Duration::from_millis(200)));
        assert!(!limiter.allow_at(A, 5, t0 + Duration::from_millis(200)));
        // A full second refills the whole burst, never more.
        let t1 = t0 + Duration::from_secs(5);
        assert_eq!((0..12).filter(|_| limiter.allow_at(A, 5, t1)).count(), 5);
    }

    #[test]
    fn zero_disables_and_lower_rate_caps_the_bucket() {
        let limiter = RateLimiter::new();
        let t0 = Instant::now();
        assert!((0..1000).all(|_| limiter.allow_at(A, 0, t0)));
        assert!(limiter.allow_at(A, 100, t0));
        // After a reload to 2/s the bucket holds at most 2.
        assert_eq!((0..10).filter(|_| limiter.allow_at(A, 2, t0)).count(), 2);
    }

    #[test]
    fn idle_buckets_are_pruned() {
        let limiter = RateLimiter::new();
        let t0 = Instant::now();
        assert!(limiter.allow_at(A, 5, t0));
        assert!(limiter.allow_at(B, 5, t0));
        assert_eq!(limiter.tracked(), 2);
        assert!(limiter.allow_at(A, 5, t0 + PRUNE_EVERY + Duration::from_millis(1)));
        assert_eq!(limiter.tracked(), 1);
    }
}
