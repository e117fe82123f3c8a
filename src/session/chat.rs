//! Spoken turns on the connection side (PROTOCOL.md §3.1): hands an utterance
//! to the assistant workers and, when their single reply comes back, either
//! carries out the recognized task command or says the answer.
//!
//! Until a TTS engine speaks the answer (chat turns issue), the words go out
//! as the turn's text messages: `tts start`, `sentence_start`/`sentence_end`
//! carrying the sentence, `tts stop` — the badge shows them and always
//! leaves the speaking state.

use std::sync::Arc;

use serde_json::json;

use super::{Outbox, Session, workflow};
use crate::context::ServerContext;
use crate::llm::resolve::LlmPurpose;
use crate::modes::chat::service::{AssistantReply, ReplyJob, ReplyOutcome};
use crate::protocol::inbound::ModeName;
use crate::workflow::group_of_device;

/// Starts a turn for `utterance`; the answer arrives later as
/// `ConnEvent::AssistantReply`. A newer turn supersedes this one.
pub fn ask(session: &mut Session, ctx: &ServerContext, utterance: &str, purpose: LlmPurpose) {
    let Some(origin) = session.handle.clone() else {
        return;
    };
    session.turn += 1;
    let group_tasks = match (purpose, ctx.workflow.store()) {
        (LlmPurpose::Working, Some(store)) => store.snapshot(&group_of_device(session.device_id())),
        _ => Vec::new(),
    };
    ctx.assistant.submit(ReplyJob {
        origin,
        config: Arc::clone(&session.config),
        utterance: utterance.to_string(),
        purpose,
        history: session.conversation.history(),
        group_tasks,
        turn: session.turn,
    });
}

/// The assistant's answer to one of our turns.
pub fn on_reply(
    session: &mut Session,
    ctx: &ServerContext,
    reply: AssistantReply,
    now_ms: u64,
    out: &mut Outbox,
) {
    if reply.turn != session.turn {
        ::log::debug!(
            "device {}: reply to superseded turn {} dropped",
            session.device_id(),
            reply.turn
        );
        return;
    }
    match reply.outcome {
        ReplyOutcome::Command(command) if session.mode == Some(ModeName::Working) => {
            workflow::run_command(session, ctx, command, now_ms, out);
        }
        // Working mode ended while the intent was being recognized: the
        // command no longer applies, but the device still hears back.
        ReplyOutcome::Command(_) => say(
            session,
            crate::modes::chat::fallback::chat_unavailable(&reply.utterance),
            out,
        ),
        ReplyOutcome::Text { text, from_llm } => {
            if from_llm {
                session.conversation.record(&reply.utterance, &text);
            }
            say(session, &text, out);
        }
    }
}

/// The answer as one spoken turn's messages. Working mode with
/// `working.disable_tts` shows no `llm` emotion (§3.1).
fn say(session: &Session, text: &str, out: &mut Outbox) {
    let session_id = session.session_id.as_str();
    let quiet = session.mode == Some(ModeName::Working) && session.config.working.disable_tts;
    if !quiet {
        out.text(
            json!({"type": "llm", "text": "😊", "emotion": "happy", "session_id": session_id})
                .to_string(),
        );
    }
    out.text(json!({"type": "tts", "state": "start", "session_id": session_id}).to_string());
    for state in ["sentence_start", "sentence_end"] {
        out.text(
            json!({"type": "tts", "state": state, "text": text, "session_id": session_id})
                .to_string(),
        );
    }
    out.text(json!({"type": "tts", "state": "stop", "session_id": session_id}).to_string());
}
