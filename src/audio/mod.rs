//! The audio path (ARCHITECTURE.md "One audio frame, end to end"): Opus
//! packets go from a connection thread through its lock-free ring to a worker
//! that decodes them, runs voice activity detection and cuts utterances.
//!
//! - [`opus`]: decoder and encoder at 16 kHz mono, 60 ms.
pub mod opus;
pub mod ring;
pub mod segmenter;
pub mod vad;
