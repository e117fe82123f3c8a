//! The contract every ASR engine meets.

use std::fmt;
use std::time::Instant;

/// Why recognition failed; the text goes to the log, the device only learns
/// that its turn is over (`tts stop`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AsrError {
    /// The engine could not be reached or refused the session.
    Unavailable(String),
    /// The engine answered something we cannot use.
    Protocol(String),
    /// No final result before the deadline.
    Timeout,
}

impl fmt::Display for AsrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AsrError::Unavailable(why) => write!(f, "engine unavailable: {why}"),
            AsrError::Protocol(why) => write!(f, "engine protocol error: {why}"),
            AsrError::Timeout => write!(f, "no final result before the deadline"),
        }
    }
}

impl std::error::Error for AsrError {}

/// A recognizer. Shared by every connection; `open` is called once per utterance.
pub trait AsrEngine: Send + Sync {
    /// For logs and metrics.
    fn name(&self) -> &'static str;
    /// Jobs this engine can usefully run at once (an in-process model on a
    /// 2-core box: 1; a remote service: a few).
    fn concurrency(&self) -> usize;
    /// Per-utterance time limit.
    fn timeout(&self) -> std::time::Duration;
    /// Starts a session for one utterance.
    fn open(&self) -> Result<Box<dyn AsrSession>, AsrError>;
}

/// One utterance's recognition. Dropping it closes whatever it holds open.
pub trait AsrSession: Send {
    /// 16 kHz mono samples, in order; may be called many times.
    fn feed(&mut self, pcm: &[i16]) -> Result<(), AsrError>;
    /// No more audio: returns the final text (possibly empty) by `deadline`.
    fn finish(&mut self, deadline: Instant) -> Result<String, AsrError>;
}
