//! The audio path (ARCHITECTURE.md "One audio frame, end to end"): Opus
//! packets go from a connection thread through its lock-free ring to a worker
//! that decodes them, runs voice activity detection and cuts utterances.
//!
//! - [`ring`]: the per-device SPSC byte ring (connection → worker).
//! - [`worker`]: the worker pool that owns the rings' consumer ends.
//! - [`opus`]: decoder and encoder at 16 kHz mono, 60 ms.
//! - [`vad`]: the `Vad` trait and the default earshot engine.
//! - [`segmenter`]: VAD frames and listen boundaries → utterances.
//! - [`utterance`]: the finished utterance and the sink that takes it.
//! - [`stats`]: audio metrics, including the frame latency histogram.

pub mod opus;
pub mod ring;
pub mod segmenter;
pub mod stats;
pub mod utterance;
pub mod vad;
pub mod worker;
