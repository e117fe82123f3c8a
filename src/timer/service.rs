//! The timer thread (`timer-wheel`) and the [`TimerHandle`] every connection
//! uses to schedule and cancel callbacks on it.
//!
//! # Contract
//!
//! - [`TimerService::start`] spawns one thread that owns a [`TimerWheel`] of
//!   callbacks. [`TimerHandle`] is cheap to clone and may be used from any
//!   thread, including from inside a timer callback.
//! - `schedule_*` never blocks and never waits for the thread: the id comes
//!   from a shared counter and the insertion travels over a channel. Ids are
//!   never reused, so a stale `cancel` is always harmless.
//! - A callback runs on the timer thread, at most once, never before
//!   `now_ms() >= deadline`, and normally within one tick after it. Callbacks
//!   must be short and non-blocking (send an event, wake a `mio::Waker`): they
//!   delay every other timer. A panicking callback is caught and logged; the
//!   thread keeps going.
//! - `cancel(id)` is fire-and-forget. It wins if the thread applies it before
//!   the timer is due; cancelling a fired or unknown id is a no-op. A cancel
//!   sent after the `schedule_*` call that returned `id` (in happens-before
//!   order, from any thread) is applied after that insertion, because the
//!   channel is FIFO in send order.
//! - [`TimerHandle::sync`] returns once the thread has applied every command
//!   sent before it and has run every callback due at the clock's time when the
//!   thread handled it. With a [`super::ManualClock`] this makes tests
//!   deterministic: `clock.advance(ms); handle.sync()`.
//! - [`TimerThread::stop`] (or dropping the [`TimerThread`]) stops and joins the
//!   thread; timers still pending are dropped unfired. Afterwards `schedule_*`
//!   and `cancel` are silent no-ops and `sync` returns
//!   [`TimerError::Stopped`].

use std::fmt;
use std::io;
use std::ops::ControlFlow;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{self, JoinHandle, ThreadId};
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};

use super::clock::Clock;
use super::wheel::{DEFAULT_SLOTS, MAX_TICK_MS, TimerId, TimerWheel};

/// What a timer runs when it fires.
pub type TimerCallback = Box<dyn FnOnce() + Send + 'static>;

/// Name of the timer thread (shows up in logs, panics and `top -H`).
pub const THREAD_NAME: &str = "timer-wheel";

/// Most commands applied per loop iteration before the wheel is advanced
/// again, so a flood of inserts cannot starve due timers.
const MAX_BATCH: usize = 4096;

/// Width of one lag window; see [`TimerHandle::lag_ms_max`].
const LAG_WINDOW_MS: u64 = 1000;

/// Why [`TimerHandle::sync`] could not wait for the timer thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerError {
    /// The timer thread has stopped (or is stopping).
    Stopped,
    /// Called from a callback on the timer thread itself, which would wait for
    /// itself forever.
    OnTimerThread,
}

impl fmt::Display for TimerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Stopped => f.write_str("timer thread stopped"),
            Self::OnTimerThread => f.write_str("cannot sync with the timer thread from itself"),
        }
    }
}

impl std::error::Error for TimerError {}

/// A request to the timer thread.
enum Command {
    Insert {
        id: TimerId,
        deadline_ms: u64,
        f: TimerCallback,
    },
    Cancel(TimerId),
    /// Reply on the sender once everything before this command is applied and
    /// everything due has fired.
    Sync(Sender<()>),
    /// Exit now; pending timers are dropped.
    Stop,
}

/// State shared by the handles, the thread and its owner.
struct Shared {
    clock: Arc<dyn Clock>,
    /// Tick length in ms (already clamped to `1..=MAX_TICK_MS`).
    tick_ms: u64,
    /// Next id to hand out. Only ever incremented (`fetch_add`), so ids are
    /// unique and never reused; starts at 1.
    next_id: AtomicU64,
    /// Callbacks run so far (including ones that panicked). Only the timer
    /// thread writes it.
    fired_total: AtomicU64,
    /// Max lag (ms between deadline and the callback starting) over the current
    /// and the previous one-second window. Only the timer thread writes it.
    lag_ms_max: AtomicU64,
    /// Live timers in the wheel after the thread's last iteration. Only the
    /// timer thread writes it.
    pending: AtomicU64,
    /// Set by `TimerThread` before it sends `Stop`; checked by the thread
    /// between commands so a backlog does not delay shutdown.
    stop: AtomicBool,
    /// The timer thread's id, set first thing on that thread; lets `sync`
    /// detect being called from a callback.
    thread_id: OnceLock<ThreadId>,
}

/// Starts the timer thread.
#[derive(Debug)]
pub struct TimerService;

impl TimerService {
    /// Spawns the `timer-wheel` thread driven by `clock`, waking every
    /// `tick_ms` (clamped to `1..=100`, with a warning if out of range).
    ///
    /// Returns a handle for scheduling and the owner that stops the thread.
    ///
    /// # Errors
    ///
    /// If the OS refuses to spawn the thread.
    pub fn start(clock: Arc<dyn Clock>, tick_ms: u64) -> io::Result<(TimerHandle, TimerThread)> {
        let clamped = tick_ms.clamp(1, MAX_TICK_MS);
        if clamped != tick_ms {
            ::log::warn!(
                "timer tick {tick_ms} ms out of range 1..={MAX_TICK_MS}; using {clamped} ms"
            );
        }
        let shared = Arc::new(Shared {
            clock,
            tick_ms: clamped,
            next_id: AtomicU64::new(1),
            fired_total: AtomicU64::new(0),
            lag_ms_max: AtomicU64::new(0),
            pending: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            thread_id: OnceLock::new(),
        });
        // Unbounded on purpose. The queue only holds commands not yet applied,
        // and producers are connection threads whose inserts are bounded by
        // live connections x timers per connection (idle deadline, ping,
        // stats, transcript: a handful each), plus cancels of those same
        // timers; the thread drains it every tick. A bounded channel would
        // force `schedule_*` to either block a connection thread or fail, and
        // it could deadlock outright: callbacks run *on* the timer thread and
        // commonly reschedule themselves (pings), so a full queue would have
        // the only consumer waiting on itself.
        let (tx, rx) = crossbeam_channel::unbounded();
        let worker = Worker {
            rx,
            wheel: TimerWheel::new(DEFAULT_SLOTS, clamped),
            shared: Arc::clone(&shared),
            syncs: Vec::new(),
            lag: LagWindow::default(),
        };
        let join = thread::Builder::new()
            .name(THREAD_NAME.to_owned())
            .spawn(move || worker.run())?;
        let handle = TimerHandle {
            tx: tx.clone(),
            shared: Arc::clone(&shared),
        };
        let owner = TimerThread {
            tx,
            shared,
            join: Some(join),
        };
        Ok((handle, owner))
    }
}

/// Schedules and cancels timers. Clone freely (an `Arc` and a channel sender).
#[derive(Clone)]
pub struct TimerHandle {
    tx: Sender<Command>,
    shared: Arc<Shared>,
}

impl fmt::Debug for TimerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimerHandle")
            .field("tick_ms", &self.shared.tick_ms)
            .field("pending", &self.pending())
            .finish_non_exhaustive()
    }
}

impl TimerHandle {
    /// Runs `f` on the timer thread once `now_ms() >= deadline_ms`. A deadline
    /// in the past fires on the thread's next iteration. Never blocks.
    pub fn schedule_at<F>(&self, deadline_ms: u64, f: F) -> TimerId
    where
        F: FnOnce() + Send + 'static,
    {
        let id = TimerId::from_raw(self.shared.next_id.fetch_add(1, Ordering::Relaxed));
        let cmd = Command::Insert {
            id,
            deadline_ms,
            f: Box::new(f),
        };
        if self.tx.send(cmd).is_err() {
            ::log::debug!("timer thread stopped; {id} dropped unfired");
        }
        id
    }

    /// Runs `f` on the timer thread once `delay` has elapsed (per
    /// [`Clock::deadline_in`]: never early). Never blocks.
    pub fn schedule_in<F>(&self, delay: Duration, f: F) -> TimerId
    where
        F: FnOnce() + Send + 'static,
    {
        self.schedule_at(self.shared.clock.deadline_in(delay), f)
    }

    /// Cancels `id` if it has not fired yet; otherwise does nothing. Never
    /// blocks and does not report whether the cancel won (check in the
    /// callback's receiver if that matters, e.g. with a generation number).
    pub fn cancel(&self, id: TimerId) {
        // Err only if the thread stopped, when nothing can fire anyway.
        let _ = self.tx.send(Command::Cancel(id));
    }

    /// The clock's current time in ms (the scale of `schedule_at` deadlines).
    pub fn now_ms(&self) -> u64 {
        self.shared.clock.now_ms()
    }

    /// The tick length in ms the thread runs with.
    pub fn tick_ms(&self) -> u64 {
        self.shared.tick_ms
    }

    /// The largest lag in ms (callback start − deadline) seen in the current
    /// and previous one-second windows of the clock, i.e. covering at least the
    /// last second. For the `huddle_timer_wheel_lag_seconds` gauge.
    pub fn lag_ms_max(&self) -> u64 {
        self.shared.lag_ms_max.load(Ordering::Relaxed)
    }

    /// Total callbacks run (including ones that panicked). Published after
    /// each batch of callbacks, so a callback may have run a moment before it
    /// is counted; after [`TimerHandle::sync`] it is exact.
    pub fn fired_total(&self) -> u64 {
        self.shared.fired_total.load(Ordering::Relaxed)
    }

    /// Live timers as of the thread's last iteration (commands still queued
    /// are not counted).
    pub fn pending(&self) -> u64 {
        self.shared.pending.load(Ordering::Relaxed)
    }

    /// Waits until the timer thread has applied every command sent before this
    /// call and run every callback due at the clock's time when it got there.
    ///
    /// # Errors
    ///
    /// [`TimerError::Stopped`] if the thread has stopped (or stops while
    /// waiting); [`TimerError::OnTimerThread`] if called from a callback.
    pub fn sync(&self) -> Result<(), TimerError> {
        if self.shared.thread_id.get() == Some(&thread::current().id()) {
            return Err(TimerError::OnTimerThread);
        }
        let (reply_tx, reply_rx) = crossbeam_channel::bounded(1);
        self.tx
            .send(Command::Sync(reply_tx))
            .map_err(|_| TimerError::Stopped)?;
        // If the thread exits first, the queued reply sender is dropped with the
        // channel and this returns Err instead of hanging.
        reply_rx.recv().map_err(|_| TimerError::Stopped)
    }
}

/// Owns the timer thread. [`TimerThread::stop`] or drop stops and joins it.
pub struct TimerThread {
    tx: Sender<Command>,
    shared: Arc<Shared>,
    /// `Some` until the thread has been stopped.
    join: Option<JoinHandle<()>>,
}

impl fmt::Debug for TimerThread {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimerThread")
            .field("running", &self.join.is_some())
            .finish_non_exhaustive()
    }
}

impl TimerThread {
    /// Stops the thread and waits for it to exit. Pending timers are dropped
    /// without running (their callbacks' captures are dropped on the timer
    /// thread). A callback already running finishes first.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let Some(join) = self.join.take() else {
            return;
        };
        self.shared.stop.store(true, Ordering::Release);
        // Wakes the thread if it is sleeping; Err means it already exited.
        let _ = self.tx.send(Command::Stop);
        if join.thread().id() == thread::current().id() {
            // Dropped from inside a callback: the thread exits after it
            // returns, but it cannot join itself.
            return;
        }
        if join.join().is_err() {
            ::log::error!("timer thread panicked");
        }
    }
}

impl Drop for TimerThread {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A timer as stored in the wheel.
struct Job {
    /// Copy of the wheel's deadline, to measure lag.
    deadline_ms: u64,
    f: TimerCallback,
}

/// Max lag over the current and previous [`LAG_WINDOW_MS`] windows.
#[derive(Default)]
struct LagWindow {
    /// `now / LAG_WINDOW_MS` of the current window.
    index: u64,
    /// Max lag seen in window `index`.
    current: u64,
    /// Max lag seen in window `index - 1` (0 if no timer fired then).
    previous: u64,
}

impl LagWindow {
    fn roll(&mut self, now_ms: u64) {
        let index = now_ms / LAG_WINDOW_MS;
        if index == self.index {
            return;
        }
        self.previous = if index == self.index + 1 {
            self.current
        } else {
            0
        };
        self.current = 0;
        self.index = index;
    }

    fn record(&mut self, lag_ms: u64) {
        self.current = self.current.max(lag_ms);
    }

    fn max(&self) -> u64 {
        self.current.max(self.previous)
    }
}

/// The timer thread's state.
struct Worker {
    rx: Receiver<Command>,
    wheel: TimerWheel<Job>,
    shared: Arc<Shared>,
    /// Sync replies owed after the current iteration's advance.
    syncs: Vec<Sender<()>>,
    lag: LagWindow,
}

impl Worker {
    fn run(mut self) {
        let _ = self.shared.thread_id.set(thread::current().id());
        ::log::debug!("timer thread started, tick {} ms", self.shared.tick_ms);
        while self.iteration().is_continue() {}
        ::log::debug!(
            "timer thread stopping; dropping {} pending timers",
            self.wheel.len()
        );
        // Dropping `self` drops the wheel (pending callbacks, unfired) and the
        // receiver, which discards queued commands and so releases any `sync`
        // waiter.
    }

    /// Sleep until the next tick boundary or a command, apply commands, fire
    /// what is due, answer syncs.
    fn iteration(&mut self) -> ControlFlow<()> {
        let tick = self.shared.tick_ms;
        let wait = tick - self.shared.clock.now_ms() % tick;
        match self.rx.recv_timeout(Duration::from_millis(wait)) {
            Ok(cmd) => {
                self.apply(cmd)?;
                for _ in 1..MAX_BATCH {
                    match self.rx.try_recv() {
                        Ok(cmd) => self.apply(cmd)?,
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Disconnected) => return ControlFlow::Break(()),
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            // Cannot happen while `TimerThread` holds a sender; exit anyway.
            Err(RecvTimeoutError::Disconnected) => return ControlFlow::Break(()),
        }
        if self.shared.stop.load(Ordering::Acquire) {
            return ControlFlow::Break(());
        }
        self.fire_due();
        self.shared
            .pending
            .store(self.wheel.len() as u64, Ordering::Relaxed);
        for reply in self.syncs.drain(..) {
            // The waiter may have given up; nothing to do then.
            let _ = reply.send(());
        }
        ControlFlow::Continue(())
    }

    fn apply(&mut self, cmd: Command) -> ControlFlow<()> {
        match cmd {
            Command::Insert { id, deadline_ms, f } => {
                if self
                    .wheel
                    .insert_with_id(id, deadline_ms, Job { deadline_ms, f })
                    .is_err()
                {
                    // Ids come from a fetch_add counter; this is a bug.
                    ::log::error!("duplicate {id}; dropping the new timer");
                }
            }
            Command::Cancel(id) => {
                // Dropping the job drops the callback's captures here.
                drop(self.wheel.cancel(id));
            }
            Command::Sync(reply) => self.syncs.push(reply),
            Command::Stop => return ControlFlow::Break(()),
        }
        if self.shared.stop.load(Ordering::Relaxed) {
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }

    fn fire_due(&mut self) {
        let clock = &*self.shared.clock;
        let now = clock.now_ms();
        self.lag.roll(now);
        let lag = &mut self.lag;
        let mut fired = 0u64;
        self.wheel.advance(now, &mut |id, job: Job| {
            let lag_ms = clock.now_ms().saturating_sub(job.deadline_ms);
            lag.record(lag_ms);
            fired += 1;
            if let Err(payload) = catch_unwind(AssertUnwindSafe(job.f)) {
                ::log::error!(
                    "timer callback {id} panicked: {}",
                    panic_message(payload.as_ref())
                );
            }
        });
        if fired > 0 {
            self.shared.fired_total.fetch_add(fired, Ordering::Relaxed);
        }
        self.shared
            .lag_ms_max
            .store(self.lag.max(), Ordering::Relaxed);
    }
}

/// The `&str`/`String` message of a panic payload, if it has one.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "<non-string panic payload>"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timer::ManualClock;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn lag_window_rolls() {
        let mut w = LagWindow::default();
        w.roll(10);
        w.record(7);
        assert_eq!(w.max(), 7);
        w.roll(1500);
        assert_eq!(w.max(), 7, "previous window still counts");
        w.record(3);
        w.roll(2100);
        assert_eq!(w.max(), 3);
        w.roll(9000);
        assert_eq!(w.max(), 0, "gap of several windows clears both");
    }

    #[test]
    fn sync_from_callback_is_refused_and_stop_is_clean() {
        let clock = Arc::new(ManualClock::new(0));
        let (h, t) = TimerService::start(clock.clone(), 10).expect("spawn");
        let (tx, rx) = crossbeam_channel::bounded(1);
        let h2 = h.clone();
        h.schedule_at(0, move || {
            let _ = tx.send(h2.sync());
        });
        h.sync().expect("running");
        assert_eq!(rx.try_recv(), Ok(Err(TimerError::OnTimerThread)));
        t.stop();
        assert_eq!(h.sync(), Err(TimerError::Stopped));
        // Scheduling after stop is a silent no-op.
        h.schedule_at(0, || panic!("must not run"));
        h.cancel(TimerId::from_raw(1));
    }

    #[test]
    fn pending_and_lag_are_reported() {
        let clock = Arc::new(ManualClock::new(0));
        let (h, _t) = TimerService::start(clock.clone(), 10).expect("spawn");
        let hits = Arc::new(AtomicUsize::new(0));
        for d in [100, 200] {
            let hits = Arc::clone(&hits);
            h.schedule_at(d, move || {
                hits.fetch_add(1, Ordering::SeqCst);
            });
        }
        h.sync().expect("running");
        assert_eq!(h.pending(), 2);
        clock.set(130);
        h.sync().expect("running");
        assert_eq!(hits.load(Ordering::SeqCst), 1);
        assert_eq!(h.lag_ms_max(), 30);
        assert_eq!(h.fired_total(), 1);
        assert_eq!(h.pending(), 1);
    }

    #[test]
    fn out_of_range_tick_is_clamped() {
        let clock = Arc::new(ManualClock::new(0));
        let (h, t) = TimerService::start(clock, 0).expect("spawn");
        assert_eq!(h.tick_ms(), 1);
        drop(t);
        let clock = Arc::new(ManualClock::new(0));
        let (h, _t) = TimerService::start(clock, 1000).expect("spawn");
        assert_eq!(h.tick_ms(), MAX_TICK_MS);
    }
}
