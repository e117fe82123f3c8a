//! Recognized text arriving from the ASR stage (PROTOCOL.md §3.1): the device
//! sees `stt` and the fork's `audio` `transcription` line; the text then goes
//! to the mode in force (meeting, working and chat modes hook in here).

use serde_json::json;

use super::{CloseRequest, Outbox, Session, meeting};
use crate::context::ServerContext;
use crate::net::handle::Transcript;
use crate::protocol::inbound::{ModeName, ModeRequest, ModeState};

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
    let squeezed = squeeze(text);
    squeezed.chars().count() <= 16 && phrases.iter().any(|p| squeezed.contains(&squeeze(p)))
}

/// The phrase-matching form: no whitespace or punctuation, lowercase.
fn squeeze(s: &str) -> String {
    s.chars()
        .filter(|c| {
            !c.is_whitespace() && !c.is_ascii_punctuation() && !"，。！？、；：".contains(*c)
        })
        .flat_map(char::to_lowercase)
        .collect()
}

/// Phrases that switch to working mode from any mode but a meeting (§3.1 step 2).
const WORKING_PHRASES: [&str; 6] = [
    "进入工作模式",
    "工作模式",
    "切到工作模式",
    "切换到工作模式",
    "working mode",
    "workflow mode",
];

/// The system prompt of the turn a wake word starts (§3.1 step 3).
const GREETING_PROMPT: &str = "The user has just woken you with your wake word. Greet them \
warmly in one short spoken sentence, in the language of the wake word, and offer to help.";

/// The user text pipeline (§3.1) for one ASR final or `listen detect` text.
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
    let text = transcript.text.as_str();
    // 1. Meeting mode: a finalize phrase, else a segment. Never a chat.
    if session.meeting.is_running() {
        if matches_phrase(text, &FINALIZE_PHRASES) {
            // Finalize only fails in idle, which a running meeting is not.
            let _ = meeting::finalize(session, ctx, now_ms, out);
            return;
        }
        // A meeting recorder with TTS off shows no `stt` (§3.1).
        if !session.config.meeting.disable_tts {
            out.text(stt(session, text));
        }
        out.text(transcription_line(session, &transcript));
        meeting::on_speech(session, ctx, text);
        return;
    }
    // 2. Switch to working mode, without any TTS.
    if matches_phrase(text, &WORKING_PHRASES) {
        out.text(
            json!({"type": "stt", "text": text, "intent": "mode_switch", "target_mode": "working",
                "session_id": session.session_id})
            .to_string(),
        );
        out.text(transcription_line(session, &transcript));
        let request = ModeRequest {
            state: ModeState::Start,
            mode: ModeName::Working,
        };
        if let Err(rejection) = super::mode::handle(session, request, ctx, now_ms, out) {
            session.reject(rejection, now_ms, out);
        }
        return;
    }
    out.text(stt(session, text));
    out.text(transcription_line(session, &transcript));
    // 3. A wake word: a greeting turn, or just the end of the device's turn.
    let wake_words: Vec<&str> = session
        .config
        .chat
        .wakeup_words
        .iter()
        .map(String::as_str)
        .collect();
    if matches_phrase(text, &wake_words) {
        if session.config.chat.enable_greeting {
            let purpose = super::chat::purpose(session);
            super::chat::ask(
                session,
                ctx,
                text,
                purpose,
                Some(GREETING_PROMPT.to_string()),
                out,
            );
        } else {
            out.text(
                json!({"type": "tts", "state": "stop", "session_id": session.session_id})
                    .to_string(),
            );
        }
        return;
    }
    // 4. An exit command, matched exactly.
    if session
        .config
        .chat
        .exit_commands
        .iter()
        .any(|command| squeeze(command) == squeeze(text))
    {
        ::log::info!("device {}: exit command {text:?}", session.device_id());
        out.close = Some(CloseRequest {
            code: 1000,
            reason: "exit command",
        });
        return;
    }
    // 5. Working mode: task commands first.
    if session.mode == Some(ModeName::Working)
        && super::workflow::voice_command(session, ctx, text, now_ms, out)
    {
        return;
    }
    // 6. A chat turn (in working mode the intent LLM goes first). Never a dead end.
    let purpose = super::chat::purpose(session);
    super::chat::ask(session, ctx, text, purpose, None, out);
}

fn stt(session: &Session, text: &str) -> String {
    json!({"type": "stt", "text": text, "session_id": session.session_id}).to_string()
}

fn transcription_line(session: &Session, transcript: &Transcript) -> String {
    json!({
        "type": "audio",
        "event": "transcription",
        "text": transcript.text,
        "ts": transcript.started_at_unix_ms,
        "session_id": session.session_id,
    })
    .to_string()
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
