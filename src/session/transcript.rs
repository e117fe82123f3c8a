//! Recognized text arriving from the ASR stage (PROTOCOL.md §3.1): the device
//! sees `stt` and the fork's `audio` `transcription` line; the text then goes
//! to the mode in force (meeting, working and chat modes hook in here).

use serde_json::json;

use super::{Outbox, Session, meeting};
use crate::context::ServerContext;
use crate::net::handle::Transcript;

/// Phrases that end a meeting when said in meeting mode (§3.1 step 1).
const FINALIZE_PHRASES: [&str; 7] = [
    "结束会议",
    "停止录制",
    "开始总结",
    "出个纪要",
    "end meeting",
    "stop recording",
    "summarize meeting",
];

/// Phrase matching (§3.1): punctuation and whitespace stripped, lowercased,
/// only on utterances of at most 16 characters that contain the phrase.
pub fn matches_phrase(text: &str, phrases: &[&str]) -> bool {
    let squeeze = |s: &str| -> String {
        s.chars()
            .filter(|c| {
                !c.is_whitespace() && !c.is_ascii_punctuation() && !"，。！？、；：".contains(*c)
            })
            .flat_map(char::to_lowercase)
            .collect()
    };
    let squeezed = squeeze(text);
    squeezed.chars().count() <= 16 && phrases.iter().any(|p| squeezed.contains(&squeeze(p)))
}

pub fn on_transcript(
    session: &mut Session,
    ctx: &ServerContext,
    transcript: Transcript,
    now_ms: u64,
    out: &mut Outbox,
) {
    if transcript.text.is_empty() {
        return;
    }
    // A non-empty result is activity, like detected voice.
    session.idle.activity(now_ms);
    let in_meeting = session.meeting.is_running();
    if in_meeting && matches_phrase(&transcript.text, &FINALIZE_PHRASES) {
        // Finalize only fails in idle, which a running meeting is not.
        let _ = meeting::finalize(session, ctx, now_ms, out);
        return;
    }
    // A meeting recorder with TTS off shows no `stt` (§3.1); the transcript line still goes out.
    if !(in_meeting && session.config.meeting.disable_tts) {
        out.text(
            json!({"type": "stt", "text": transcript.text, "session_id": session.session_id})
                .to_string(),
        );
    }
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
    if in_meeting {
        meeting::on_speech(session, ctx, &transcript.text);
    } else if session.mode == Some(crate::protocol::inbound::ModeName::Working)
        && !super::workflow::voice_command(session, ctx, &transcript.text, now_ms, out)
    {
        // Never a dead end: the intent LLM, then chat, then a fallback answers.
        super::chat::ask(
            session,
            ctx,
            &transcript.text,
            crate::llm::resolve::LlmPurpose::Working,
        );
    }
}

/// Recognition failed: end the device's turn instead of leaving it listening forever.
pub fn on_asr_failed(session: &mut Session, reason: &str, out: &mut Outbox) {
    ::log::info!(
        "device {}: ASR failed ({reason}); ending its turn",
        session.device_id()
    );
    out.text(json!({"type": "tts", "state": "stop", "session_id": session.session_id}).to_string());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finalize_phrases_match_short_utterances_only() {
        assert!(matches_phrase("结束会议。", &FINALIZE_PHRASES));
        assert!(matches_phrase("OK, End meeting!", &FINALIZE_PHRASES));
        assert!(!matches_phrase(
            "we should not end meeting before the budget review is done",
            &FINALIZE_PHRASES
        ));
        assert!(!matches_phrase("登录页改成扫码", &FINALIZE_PHRASES));
    }
}
