//! Time for the whole server: the millisecond [`Clock`] abstraction and the
//! single `timer-wheel` thread that drives idle deadlines, WebSocket pings,
//! stats broadcasts and transcript pushes.
//!
//! # Contract
//!
//! - All deadlines are milliseconds of a [`Clock`] ([`SystemClock`] in
//!   production, [`ManualClock`] in tests); [`unix_ms`] is only for
//!   timestamps in messages.
//! - [`TimerService::start`] spawns the thread and returns a [`TimerHandle`]
//!   (clone it into every connection) and a [`TimerThread`] (the owner; stop or
//!   drop it at shutdown).
//! - Callbacks run on the timer thread, never early, normally within one tick
//!   late, at most once, and must not block. See [`service`] for the full
//!   contract and [`wheel`] for the data structure.

pub mod clock;
pub mod service;
pub mod wheel;

pub use clock::{Clock, ManualClock, SystemClock, unix_ms};
pub use service::{THREAD_NAME, TimerCallback, TimerError, TimerHandle, TimerService, TimerThread};
pub use wheel::{DEFAULT_SLOTS, DEFAULT_TICK_MS, MAX_TICK_MS, TimerId, TimerWheel};
