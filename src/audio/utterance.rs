//! What the audio path hands on: one finished utterance, and the stage that
//! takes it (the ASR stage fills this; until then a log line or a test sink).

use std::sync::Arc;

use parking_lot::Mutex;

use super::segmenter::{Decider, EndReason};
use crate::net::handle::ConnHandle;
use crate::protocol::inbound::ListenMode;

#[derive(Clone)]
pub struct Utterance {
    /// The connection it came from (a reconnect of the same device is another stream).
    pub conn_id: u64,
    pub device_id: Arc<str>,
    /// Start and end on the stream's audio clock (ms since its first sample).
    pub start_ms: u64,
    pub end_ms: u64,
    /// Wall-clock time of the start, for transcript timestamps.
    pub started_at_unix_ms: u64,
    pub listen_mode: ListenMode,
    pub decided_by: Decider,
    pub reason: EndReason,
    /// Voiced time inside; a push-to-talk utterance may hold none.
    pub voiced_ms: u64,
    /// 16 kHz mono samples.
    pub pcm: Vec<i16>,
    /// The connection to send the recognized text to.
    pub reply: ConnHandle,
}

/// Samples are summarized: a test failure must not print 100k numbers.
impl std::fmt::Debug for Utterance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Utterance")
            .field("device_id", &self.device_id)
            .field("conn_id", &self.conn_id)
            .field("start_ms", &self.start_ms)
            .field("end_ms", &self.end_ms)
            .field("listen_mode", &self.listen_mode)
            .field("decided_by", &self.decided_by)
            .field("reason", &self.reason)
            .field("voiced_ms", &self.voiced_ms)
            .field("samples", &self.pcm.len())
            .finish()
    }
}

/// Receives utterances on an audio worker thread. Must not block for long:
/// slow work (ASR) belongs on its own pool, fed from here.
pub trait UtteranceSink: Send + Sync {
    fn deliver(&self, utterance: Utterance);
}

/// The sink while no ASR is configured: one log line per utterance.
pub struct LogSink;

impl UtteranceSink for LogSink {
    fn deliver(&self, u: Utterance) {
        ::log::info!(
            "utterance from {} (connection {}): {}..{} ms, {} ms voiced, {} mode, {:?} decided, ended by {:?}",
            u.device_id,
            u.conn_id,
            u.start_ms,
            u.end_ms,
            u.voiced_ms,
            u.listen_mode.as_str(),
            u.decided_by,
            u.reason
        );
    }
}

/// Keeps every utterance, for tests.
#[derive(Default)]
pub struct RecordingSink {
    pub utterances: Mutex<Vec<Utterance>>,
}

impl UtteranceSink for RecordingSink {
    fn deliver(&self, utterance: Utterance) {
        self.utterances.lock().push(utterance);
    }
}
