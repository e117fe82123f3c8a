//! Recognized text arriving from the ASR stage (PROTOCOL.md §3.1): the device
//! sees `stt` and the fork's `audio` `transcription` line; the text then goes
//! to the mode in force (meeting, working and chat modes hook in here).

use serde_json::json;

use super::{Outbox, Session};
use crate::net::handle::Transcript;

pub fn on_transcript(session: &mut Session, transcript: Transcript, now_ms: u64, out: &mut Outbox) {
    if transcript.text.is_empty() {
        return;
    }
    // A non-empty result is activity, like detected voice.
    session.idle.activity(now_ms);
    out.text(
        json!({"type": "stt", "text": transcript.text, "session_id": session.session_id})
            .to_string(),
    );
    out.text(
        json!({
            "type": "audio",
            "event": "transcription",
            "text": transcript.text,
            "ts": transcript.started_at_unix_ms,
            "session_id": session.session_id,
        })
        .to_string(),
    );
}

/// Recognition failed: end the device's turn instead of leaving it listening forever.
pub fn on_asr_failed(session: &mut Session, reason: &str, out: &mut Outbox) {
    ::log::info!(
        "device {}: ASR failed ({reason}); ending its turn",
        session.device_id()
    );
    out.text(json!({"type": "tts", "state": "stop", "session_id": session.session_id}).to_string());
}
