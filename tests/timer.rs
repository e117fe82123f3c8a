//! Integration tests for `huddle::timer`: the timer thread seen through its
//! public API, with a real clock (timing bounds) and a manual clock
//! (deterministic ordering via `TimerHandle::sync`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use huddle::timer::*;
use parking_lot::Mutex;

const TICK_MS: u64 = 10;

fn manual() -> (Arc<ManualClock>, TimerHandle, TimerThread) {
    let clock = Arc::new(ManualClock::new(0));
    let (handle, thread) = TimerService::start(clock.clone(), TICK_MS).expect("spawn timer thread");
    (clock, handle, thread)
}

/// Records labels in firing order.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<&'static str>>>);

impl Log {
    fn push_on(&self, h: &TimerHandle, deadline_ms: u64, label: &'static str) -> TimerId {
        let log = self.clone();
        h.schedule_at(deadline_ms, move || log.0.lock().push(label))
    }

    fn take(&self) -> Vec<&'static str> {
        std::mem::take(&mut *self.0.lock())
    }
}

#[test]
fn system_clock_timer_fires_on_time() {
    let clock = Arc::new(SystemClock::new());
    let (h, _t) = TimerService::start(clock, TICK_MS).expect("spawn timer thread");
    let (tx, rx) = crossbeam_channel::bounded(1);
    let start = Instant::now();
    h.schedule_in(Duration::from_millis(50), move || {
        let _ = tx.send(Instant::now());
    });
    let fired = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("timer did not fire");
    let elapsed = fired - start;
    assert!(
        elapsed >= Duration::from_millis(50),
        "fired early: {elapsed:?}"
    );
    // One tick plus generous slack for a loaded 2-core CI machine.
    assert!(
        elapsed <= Duration::from_millis(50 + TICK_MS + 150),
        "fired late: {elapsed:?}"
    );
    // Counters are published after the batch of callbacks, so sync first.
    h.sync().expect("running");
    assert_eq!(h.fired_total(), 1);
    assert!(h.lag_ms_max() <= TICK_MS + 150);
}

#[test]
fn cancel_from_another_thread() {
    let (clock, h, _t) = manual();
    let fired = Arc::new(AtomicUsize::new(0));
    // The callback owns a clone of `token`; a cancel must drop it unrun.
    let token = Arc::new(());
    let (f, tok) = (Arc::clone(&fired), Arc::clone(&token));
    let id = h.schedule_at(100, move || {
        let _keep = tok;
        f.fetch_add(1, Ordering::SeqCst);
    });
    let f = Arc::clone(&fired);
    let kept = h.schedule_at(100, move || {
        f.fetch_add(10, Ordering::SeqCst);
    });
    let h2 = h.clone();
    thread::spawn(move || h2.cancel(id))
        .join()
        .expect("cancel thread");
    h.sync().expect("running");
    assert_eq!(Arc::strong_count(&token), 1, "cancelled callback dropped");
    clock.set(1_000);
    h.sync().expect("running");
    assert_eq!(
        fired.load(Ordering::SeqCst),
        10,
        "only the kept timer fired"
    );
    // Cancelling fired, cancelled and unknown ids is a no-op.
    h.cancel(kept);
    h.cancel(id);
    h.cancel(TimerId::from_raw(u64::MAX));
    h.sync().expect("running");
    assert_eq!(h.fired_total(), 1);
}

#[test]
fn ten_thousand_timers_from_four_threads_fire_exactly_once() {
    const PER_THREAD: usize = 2_500;
    const N: usize = 4 * PER_THREAD;
    let clock = Arc::new(SystemClock::new());
    let (h, _t) = TimerService::start(clock, TICK_MS).expect("spawn timer thread");
    let counts: Arc<Vec<AtomicU8>> = Arc::new((0..N).map(|_| AtomicU8::new(0)).collect());
    let ids = Arc::new(Mutex::new(Vec::with_capacity(N)));
    let producers: Vec<_> = (0..4)
        .map(|t| {
            let (h, counts, ids) = (h.clone(), Arc::clone(&counts), Arc::clone(&ids));
            thread::spawn(move || {
                for k in 0..PER_THREAD {
                    let i = t * PER_THREAD + k;
                    let counts = Arc::clone(&counts);
                    let id = h.schedule_in(Duration::from_millis((i % 200) as u64), move || {
                        counts[i].fetch_add(1, Ordering::Relaxed);
                    });
                    ids.lock().push(id);
                }
            })
        })
        .collect();
    for p in producers {
        p.join().expect("producer");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while h.fired_total() < N as u64 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    // Give any (wrong) duplicate firing a chance to show up.
    thread::sleep(Duration::from_millis(3 * TICK_MS));
    h.sync().expect("running");
    assert_eq!(h.fired_total(), N as u64);
    assert!(counts.iter().all(|c| c.load(Ordering::Relaxed) == 1));
    assert_eq!(h.pending(), 0);
    let mut ids = std::mem::take(&mut *ids.lock());
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), N, "ids are unique across threads");
}

#[test]
fn manual_clock_fires_deterministically_in_deadline_order() {
    let (clock, h, _t) = manual();
    let log = Log::default();
    log.push_on(&h, 30, "c30");
    log.push_on(&h, 10, "a10");
    log.push_on(&h, 25, "b25");
    log.push_on(&h, 5_000, "far"); // ~10 revolutions of 512 x 10 ms away
    log.push_on(&h, 10, "a10bis");
    let late = log.push_on(&h, 40, "cancelled");

    h.sync().expect("running");
    assert!(log.take().is_empty(), "nothing due at t=0");

    clock.set(9);
    h.sync().expect("running");
    assert!(log.take().is_empty(), "never early");

    clock.set(10);
    h.sync().expect("running");
    assert_eq!(log.take(), ["a10", "a10bis"], "ties in id order");

    // A callback scheduling a follow-up (like a ping re-arming itself).
    let (h2, log2) = (h.clone(), log.clone());
    h.schedule_at(20, move || {
        log2.0.lock().push("rearm");
        log2.push_on(&h2, 35, "rearmed");
    });
    h.cancel(late);
    clock.set(30);
    h.sync().expect("running");
    assert_eq!(log.take(), ["rearm", "b25", "c30"]);

    clock.set(40);
    h.sync().expect("running");
    assert_eq!(log.take(), ["rearmed"]);

    clock.set(4_999);
    h.sync().expect("running");
    assert!(log.take().is_empty());
    clock.set(5_000);
    h.sync().expect("running");
    assert_eq!(log.take(), ["far"]);

    // A deadline already in the past fires at the next sync.
    log.push_on(&h, 1, "past");
    h.sync().expect("running");
    assert_eq!(log.take(), ["past"]);
    assert_eq!(h.pending(), 0);
    assert_eq!(h.fired_total(), 8);
}

#[test]
fn panicking_callback_does_not_stop_later_timers() {
    let (clock, h, _t) = manual();
    let log = Log::default();
    h.schedule_at(10, || panic!("boom (expected by this test)"));
    log.push_on(&h, 10, "same tick");
    log.push_on(&h, 20, "next tick");
    clock.set(10);
    h.sync().expect("thread survived the panic");
    assert_eq!(log.take(), ["same tick"]);
    clock.set(20);
    h.sync().expect("running");
    assert_eq!(log.take(), ["next tick"]);
    assert_eq!(h.fired_total(), 3);
}

#[test]
fn stop_drops_pending_timers_unfired() {
    let (clock, h, t) = manual();
    let fired = Arc::new(AtomicUsize::new(0));
    let token = Arc::new(());
    let (f, tok) = (Arc::clone(&fired), Arc::clone(&token));
    h.schedule_at(100, move || {
        let _keep = tok;
        f.fetch_add(1, Ordering::SeqCst);
    });
    h.sync().expect("running");
    t.stop();
    assert_eq!(Arc::strong_count(&token), 1, "pending callback dropped");
    clock.set(1_000);
    assert_eq!(h.sync(), Err(TimerError::Stopped));
    assert_eq!(fired.load(Ordering::SeqCst), 0);
    assert_eq!(h.now_ms(), 1_000);
}

#[test]
fn unix_ms_is_wall_clock() {
    let a = unix_ms();
    let b = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64;
    assert!(b.abs_diff(a) < 1_000);
}
