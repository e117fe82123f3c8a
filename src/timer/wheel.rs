//! [`TimerWheel`]: a single-threaded hashed timer wheel (a pure data structure;
//! the thread that drives it lives in [`super::service`]).
//!
//! # Contract
//!
//! - Time is in milliseconds of some [`super::Clock`]; the wheel never reads a
//!   clock itself, callers pass `now_ms` to [`TimerWheel::advance`].
//! - [`TimerWheel::insert`] and [`TimerWheel::cancel`] are O(1) (expected,
//!   hash map).
//! - [`TimerWheel::advance`]`(now_ms, f)` calls `f` exactly once for every
//!   entry whose deadline is `<= now_ms`, and never for an entry whose deadline
//!   is later (never early). Entries fired by one call are passed in
//!   `(deadline, id)` order. A deadline already in the past at insertion fires
//!   at the next `advance`.
//! - When `advance` is called at every tick boundary, an entry fires at most one
//!   tick after its deadline.
//! - An entry further away than one revolution (`slots * tick_ms`) stays in its
//!   slot and is skipped until the revolution in which it is due.
//! - [`TimerId`]s handed out are never reused for the lifetime of the wheel.
//!
//! # Why an intrusive index rather than lazy removal
//!
//! Each live entry records the slot it sits in and its position in that slot's
//! vector, so `cancel` removes it with `swap_remove` and patches the back
//! pointer of the one entry that moved. Lazy removal (leave the id in the slot,
//! skip it when the slot comes round) would be simpler, but the dominant pattern
//! here is "push the idle deadline back on every message": a cancel + insert per
//! frame for thousands of connections. With lazy removal every such cancel
//! leaves a tombstone that lives until its slot is swept (up to a revolution),
//! so memory and sweep cost would scale with the message rate instead of with
//! the number of live timers. With the index, `len()` is exact and slot vectors
//! hold only live entries.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};

/// Default number of slots.
pub const DEFAULT_SLOTS: usize = 512;
/// Default tick length in ms.
pub const DEFAULT_TICK_MS: u64 = 10;
/// Largest accepted tick length in ms.
pub const MAX_TICK_MS: u64 = 100;

/// Identifies one scheduled timer. Never reused by the wheel (or service) that
/// issued it, so cancelling a stale id is always harmless.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerId(u64);

impl TimerId {
    /// Wraps a raw id (e.g. one logged earlier). Cancelling an id that was never
    /// issued is a no-op.
    pub const fn from_raw(raw: u64) -> Self {
        Self(raw)
    }

    /// The raw number, for logs.
    pub const fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for TimerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "timer#{}", self.0)
    }
}

/// Hasher for `TimerId` keys: ids are sequential numbers we issue ourselves
/// (no HashDoS concern), so one multiply (Fibonacci hashing, as FxHash does)
/// spreads them well and is far cheaper than SipHash.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type IdMap<V> = HashMap<TimerId, V, BuildHasherDefault<IdHasher>>;

/// One live timer.
struct Entry<T> {
    /// Absolute deadline in clock ms.
    deadline_ms: u64,
    /// Index into `TimerWheel::slots`. Invariant: `slots[slot][pos].0` is this
    /// entry's id.
    slot: usize,
    /// Position inside `slots[slot]` (see `slot`). Patched whenever a
    /// `swap_remove` moves this entry.
    pos: usize,
    value: T,
}

/// A hashed timer wheel holding payloads of type `T`. See the module docs for
/// the contract.
pub struct TimerWheel<T> {
    /// `slots.len()` is a power of two. An entry with effective tick `t` (see
    /// `next_tick`) sits in `slots[t & mask]`. Each element is
    /// `(id, deadline_ms)`; the deadline is duplicated here so a sweep can skip
    /// not-yet-due entries without a hash lookup. Holds only live entries:
    /// every id here is a key of `entries` and vice versa.
    slots: Vec<Vec<(TimerId, u64)>>,
    /// `slots.len() - 1`.
    mask: u64,
    /// Tick length in ms, `1..=MAX_TICK_MS`.
    tick_ms: u64,
    /// The first tick the next `advance` sweeps. Invariant: every live entry
    /// sits in the slot of its tick `t = max(ceil(deadline / tick_ms),
    /// next_tick at insertion)` and `t >= next_tick`. So `advance(now)` finds
    /// every entry with `deadline <= now` by sweeping ticks
    /// `next_tick..=ceil(now / tick_ms)` (at most one full revolution), and
    /// entries it leaves behind have `t >= ceil(now / tick_ms)`, the new
    /// `next_tick`. Only moves forward.
    next_tick: u64,
    /// Live entries by id (the intrusive index: each records its slot/pos).
    entries: IdMap<Entry<T>>,
    /// Next id `insert` hands out. Invariant: greater than every id ever
    /// inserted (including via `insert_with_id`), which makes ids unique.
    next_id: u64,
    /// Reused buffer for one `advance` call's fired entries; empty between calls.
    fired: Vec<(u64, TimerId, T)>,
}

impl<T> TimerWheel<T> {
    /// A wheel of `slots` slots, each `tick_ms` long (one revolution is
    /// `slots * tick_ms` ms).
    ///
    /// # Panics
    ///
    /// If `slots` is not a power of two or `tick_ms` is not in
    /// `1..=MAX_TICK_MS`. Both are programmer-chosen constants; callers taking
    /// them from configuration must validate first.
    pub fn new(slots: usize, tick_ms: u64) -> Self {
        assert!(
            slots.is_power_of_two(),
            "timer wheel slots must be a power of two, got {slots}"
        );
        assert!(
            (1..=MAX_TICK_MS).contains(&tick_ms),
            "timer wheel tick must be 1..={MAX_TICK_MS} ms, got {tick_ms}"
        );
        Self {
            slots: (0..slots).map(|_| Vec::new()).collect(),
            mask: (slots - 1) as u64,
            tick_ms,
            next_tick: 0,
            entries: IdMap::default(),
            next_id: 1,
            fired: Vec::new(),
        }
    }

    /// Tick length in ms.
    pub fn tick_ms(&self) -> u64 {
        self.tick_ms
    }

    /// Number of slots.
    pub fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// Number of live (inserted, not yet fired or cancelled) entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if no entry is live.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// True if `id` is live.
    pub fn contains(&self, id: TimerId) -> bool {
        self.entries.contains_key(&id)
    }

    /// Schedules `value` for `deadline_ms` under a fresh id. O(1).
    pub fn insert(&mut self, deadline_ms: u64, value: T) -> TimerId {
        let id = TimerId(self.next_id);
        self.place(id, deadline_ms, value);
        id
    }

    /// Schedules `value` under an id allocated by the caller (the service hands
    /// ids out from a shared counter before the entry reaches the wheel).
    ///
    /// Returns `Err(value)` if `id` is already live. The caller is responsible
    /// for never reusing an id that has fired or been cancelled.
    pub fn insert_with_id(&mut self, id: TimerId, deadline_ms: u64, value: T) -> Result<(), T> {
        if self.entries.contains_key(&id) {
            return Err(value);
        }
        self.place(id, deadline_ms, value);
        Ok(())
    }

    fn place(&mut self, id: TimerId, deadline_ms: u64, value: T) {
        let tick = deadline_ms.div_ceil(self.tick_ms).max(self.next_tick);
        let slot = (tick & self.mask) as usize;
        let bucket = &mut self.slots[slot];
        let pos = bucket.len();
        bucket.push((id, deadline_ms));
        self.entries.insert(
            id,
            Entry {
                deadline_ms,
                slot,
                pos,
                value,
            },
        );
        self.next_id = self.next_id.max(id.0.saturating_add(1));
    }

    /// Removes `id` and returns its payload, or `None` if it is not live
    /// (already fired, cancelled, or never issued). O(1).
    pub fn cancel(&mut self, id: TimerId) -> Option<T> {
        let entry = self.entries.remove(&id)?;
        self.unlink(entry.slot, entry.pos);
        Some(entry.value)
    }

    /// The deadline of live entry `id`.
    pub fn deadline_of(&self, id: TimerId) -> Option<u64> {
        self.entries.get(&id).map(|e| e.deadline_ms)
    }

    /// Removes position `pos` of slot `slot` and patches the back pointer of
    /// the entry `swap_remove` moved into its place.
    fn unlink(&mut self, slot: usize, pos: usize) {
        let bucket = &mut self.slots[slot];
        bucket.swap_remove(pos);
        if let Some(&(moved, _)) = bucket.get(pos)
            && let Some(e) = self.entries.get_mut(&moved)
        {
            e.pos = pos;
        }
    }

    /// Fires (removes and passes to `f`) every entry with `deadline <= now_ms`,
    /// in `(deadline, id)` order. `f` cannot touch the wheel; entries it wants
    /// to schedule must be inserted after `advance` returns.
    ///
    /// A `now_ms` earlier than a previous call's fires nothing new.
    pub fn advance<F>(&mut self, now_ms: u64, f: &mut F)
    where
        F: FnMut(TimerId, T),
    {
        let target = now_ms.div_ceil(self.tick_ms);
        if target >= self.next_tick {
            // Ticks next_tick..=target may hold due entries; after a long gap
            // visiting every slot once covers them all.
            let span = (target - self.next_tick).min(self.mask);
            for tick in self.next_tick..=self.next_tick + span {
                self.sweep((tick & self.mask) as usize, now_ms);
            }
            // Slot `target` may keep entries due later within that tick, so it
            // is the first one the next call revisits.
            self.next_tick = target;
        }
        if self.fired.is_empty() {
            return;
        }
        self.fired.sort_unstable_by_key(|&(d, id, _)| (d, id));
        let mut fired = std::mem::take(&mut self.fired);
        for (_, id, value) in fired.drain(..) {
            f(id, value);
        }
        // Keep the allocation for the next call (unless `f` panicked, in which
        // case the buffer is simply dropped and the wheel stays consistent).
        self.fired = fired;
    }

    /// Moves every entry of `slot` with `deadline <= now_ms` to `self.fired`.
    fn sweep(&mut self, slot: usize, now_ms: u64) {
        let mut i = 0;
        while i < self.slots[slot].len() {
            let (id, deadline) = self.slots[slot][i];
            if deadline > now_ms {
                i += 1;
                continue;
            }
            // Not advancing `i`: `unlink` swaps the last element into `i`.
            self.unlink(slot, i);
            if let Some(e) = self.entries.remove(&id) {
                self.fired.push((deadline, id, e.value));
            }
        }
    }
}

impl<T> Default for TimerWheel<T> {
    fn default() -> Self {
        Self::new(DEFAULT_SLOTS, DEFAULT_TICK_MS)
    }
}

impl<T> fmt::Debug for TimerWheel<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimerWheel")
            .field("slots", &self.slots.len())
            .field("tick_ms", &self.tick_ms)
            .field("next_tick", &self.next_tick)
            .field("len", &self.entries.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn drain(w: &mut TimerWheel<u32>, now: u64) -> Vec<u32> {
        let mut out = Vec::new();
        w.advance(now, &mut |_, v| out.push(v));
        out
    }

    /// Checks the intrusive index: every slot element is a live entry whose
    /// back pointers point at it, and the counts agree.
    fn check_index<T>(w: &TimerWheel<T>) {
        let mut n = 0;
        for (s, bucket) in w.slots.iter().enumerate() {
            for (p, &(id, d)) in bucket.iter().enumerate() {
                let e = &w.entries[&id];
                assert_eq!((e.slot, e.pos, e.deadline_ms), (s, p, d));
                n += 1;
            }
        }
        assert_eq!(n, w.len());
    }

    #[test]
    fn fires_not_before_deadline_and_within_one_tick() {
        let mut w = TimerWheel::new(64, 10);
        for d in [0u64, 1, 9, 10, 11, 25, 99, 100, 101, 333] {
            w.insert(d, d as u32);
        }
        let mut fired_at = HashMap::new();
        // Advance at every tick boundary, as the service does.
        for now in (0..=400).step_by(10) {
            w.advance(now, &mut |_, v| {
                fired_at.insert(v, now);
            });
        }
        assert!(w.is_empty());
        for (d, at) in fired_at {
            let d = u64::from(d);
            assert!(at >= d, "deadline {d} fired early at {at}");
            assert!(at < d + 10, "deadline {d} fired late at {at}");
        }
    }

    #[test]
    fn advance_fires_exactly_deadline_le_now_even_mid_tick() {
        let mut w = TimerWheel::new(8, 10);
        w.insert(12, 12);
        w.insert(15, 15);
        w.insert(16, 16);
        assert_eq!(drain(&mut w, 11), Vec::<u32>::new());
        assert_eq!(drain(&mut w, 15), vec![12, 15]);
        assert_eq!(drain(&mut w, 15), Vec::<u32>::new());
        assert_eq!(drain(&mut w, 16), vec![16]);
        check_index(&w);
    }

    #[test]
    fn past_deadline_fires_at_next_advance() {
        let mut w = TimerWheel::new(8, 10);
        assert!(drain(&mut w, 1000).is_empty());
        w.insert(5, 1);
        w.insert(1000, 2);
        assert_eq!(drain(&mut w, 1000), vec![1, 2]);
        // Mid-tick: `now` not on a boundary.
        drain(&mut w, 1234);
        w.insert(1230, 3);
        assert_eq!(drain(&mut w, 1234), vec![3]);
    }

    #[test]
    fn cancel_prevents_firing_and_returns_payload() {
        let mut w = TimerWheel::new(16, 10);
        let a = w.insert(50, 1);
        let b = w.insert(50, 2);
        let c = w.insert(50, 3);
        assert_eq!(w.cancel(b), Some(2));
        assert_eq!(w.cancel(b), None, "second cancel is a no-op");
        assert_eq!(w.len(), 2);
        check_index(&w);
        assert_eq!(drain(&mut w, 100), vec![1, 3]);
        assert_eq!(w.cancel(a), None, "cancel after firing is a no-op");
        assert_eq!(w.cancel(c), None);
        assert_eq!(w.cancel(TimerId::from_raw(9999)), None);
    }

    #[test]
    fn far_future_timers_wait_for_their_revolution() {
        // One revolution = 8 * 10 = 80 ms.
        let mut w = TimerWheel::new(8, 10);
        w.insert(85, 1); // same slot as 5, next revolution
        w.insert(5, 0);
        w.insert(250, 3); // three revolutions out
        w.insert(1_000_005, 4); // thousands of revolutions out
        let mut fired = Vec::new();
        for now in (0..=400).step_by(10) {
            w.advance(now, &mut |_, v| fired.push((v, now)));
        }
        assert_eq!(fired, vec![(0, 10), (1, 90), (3, 250)]);
        assert_eq!(w.len(), 1);
        // A big jump (many revolutions at once) still fires it, once.
        assert_eq!(drain(&mut w, 1_000_004), Vec::<u32>::new());
        assert_eq!(drain(&mut w, 2_000_000), vec![4]);
        assert!(w.is_empty());
    }

    #[test]
    fn one_advance_fires_in_deadline_order() {
        let mut w = TimerWheel::new(8, 10);
        for d in [70u64, 3, 500, 3, 41, 9, 160] {
            w.insert(d, d as u32);
        }
        assert_eq!(drain(&mut w, 1000), vec![3, 3, 9, 41, 70, 160, 500]);
    }

    #[test]
    fn many_timers_insert_cancel() {
        let mut w = TimerWheel::new(512, 10);
        let n = 100_000u32;
        let ids: Vec<TimerId> = (0..n)
            .map(|i| w.insert(u64::from(i % 20_000) * 3, i))
            .collect();
        assert_eq!(w.len(), n as usize);
        // Cancel every odd one.
        for (i, id) in ids.iter().enumerate() {
            if i % 2 == 1 {
                assert_eq!(w.cancel(*id), Some(i as u32));
            }
        }
        assert_eq!(w.len(), n as usize / 2);
        check_index(&w);
        let mut seen = HashSet::new();
        let mut last = 0;
        for now in (0..=60_000).step_by(10) {
            w.advance(now, &mut |id, v| {
                assert!(v % 2 == 0, "cancelled timer {id} fired");
                assert!(seen.insert(v), "timer {id} fired twice");
                assert!(u64::from(v % 20_000) * 3 <= now);
                last = now;
            });
        }
        assert_eq!(seen.len(), n as usize / 2);
        assert!(w.is_empty());
        assert!(last <= 60_000);
    }

    #[test]
    fn ids_are_unique_and_never_reused() {
        let mut w = TimerWheel::new(8, 10);
        let mut ids = HashSet::new();
        for round in 0..100u64 {
            for _ in 0..50 {
                assert!(ids.insert(w.insert(round, 0u32)));
            }
            drain(&mut w, round);
        }
        // Externally allocated ids push the counter past themselves.
        w.insert_with_id(TimerId::from_raw(1_000_000), 5, 0)
            .unwrap();
        assert_eq!(w.insert_with_id(TimerId::from_raw(1_000_000), 5, 7), Err(7));
        assert!(w.insert(5, 0).as_u64() > 1_000_000);
    }

    #[test]
    #[should_panic(expected = "power of two")]
    fn rejects_non_power_of_two() {
        let _ = TimerWheel::<()>::new(100, 10);
    }
}
