//! Spoken turns on the connection side (PROTOCOL.md §3.1): starts a turn on
//! the assistant workers, turns its events into the turn's messages and
//! paced audio (through [`super::playback`]), and ends it — always with
//! `tts stop` — on completion, abort, barge-in or a newer turn.
//!
//! One turn: `stt` (sent by the transcript handler) → `llm` emotion →
//! `tts start` → per sentence `sentence_start`, Opus packets, `sentence_end`
//! → `tts stop`. A muted mode (`working.disable_tts`) keeps only the text:
//! no emotion, no audio.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde_json::json;

use super::playback::Cue;
use super::{Outbox, Session, workflow};
use crate::context::ServerContext;
use crate::llm::resolve::LlmPurpose;
use crate::modes::chat::emotion::{self, Emotion};
use crate::modes::chat::service::{AssistantEvent, ReplyJob};
use crate::protocol::inbound::ModeName;
use crate::workflow::group_of_device;

/// The LLM purpose of a chat turn in the current mode (§7 `llm_by_mode`).
pub fn purpose(session: &Session) -> LlmPurpose {
    match session.mode {
        Some(ModeName::Working) => LlmPurpose::Working,
        _ => LlmPurpose::Chat,
    }
}

/// The mode mutes speech: only the turn's text messages go out.
fn muted(session: &Session) -> bool {
    match session.mode {
        Some(ModeName::Working) => session.config.working.disable_tts,
        Some(ModeName::Meeting) => session.config.meeting.disable_tts,
        _ => false,
    }
}

/// Starts a turn answering `utterance`; its events arrive later as
/// `ConnEvent::Assistant`. A turn still speaking is cut off first (§3.1: a
/// new chat turn aborts the current one).
pub fn ask(
    session: &mut Session,
    ctx: &ServerContext,
    utterance: &str,
    purpose: LlmPurpose,
    system_prompt: Option<String>,
    out: &mut Outbox,
) {
    let Some(origin) = session.handle.clone() else {
        return;
    };
    if session.playback.clear() {
        out.text(tts_state(session, "stop"));
    }
    let turn = session.turn_gate.fetch_add(1, Ordering::AcqRel) + 1;
    session.turn_in_flight = true;
    let group_tasks = match (purpose, ctx.workflow.store()) {
        (LlmPurpose::Working, Some(store)) => store.snapshot(&group_of_device(session.device_id())),
        _ => Vec::new(),
    };
    ctx.assistant.submit(ReplyJob {
        origin,
        config: Arc::clone(&session.config),
        utterance: utterance.to_string(),
        purpose,
        system_prompt,
        history: session.conversation.history(),
        group_tasks,
        turn,
        gate: Arc::clone(&session.turn_gate),
        speak: !muted(session),
        tools: session.mcp.llm_tools(),
    });
}

/// A turn for the user is being prepared or played — not the idle goodbye,
/// which must not keep the connection it says goodbye on alive.
pub fn answering_the_user(session: &Session) -> bool {
    let current = session.turn_gate.load(Ordering::Acquire);
    (session.turn_in_flight || session.playback.is_speaking())
        && session.goodbye_turn != Some(current)
}

/// PROTOCOL.md §6: during the last-chance wait before an idle close, a
/// goodbye turn answering `end_prompt.prompt` — only with `end_prompt.enable`,
/// outside meeting and working mode, and when a TTS can speak it.
pub fn say_goodbye(session: &mut Session, ctx: &ServerContext, out: &mut Outbox) {
    let config = Arc::clone(&session.config);
    if !config.end_prompt.enable
        || matches!(session.mode, Some(ModeName::Meeting | ModeName::Working))
        || crate::tts::resolve(&config).is_none()
    {
        return;
    }
    ask(
        session,
        ctx,
        &config.end_prompt.prompt,
        LlmPurpose::Chat,
        None,
        out,
    );
    session.goodbye_turn = Some(session.turn_gate.load(Ordering::Acquire));
}

/// Stops the current turn (abort message, barge-in): the workers drop it at
/// their next step, queued audio is discarded, and the device gets `tts stop`.
pub fn abort(session: &mut Session, out: &mut Outbox) {
    session.turn_gate.fetch_add(1, Ordering::AcqRel);
    session.turn_in_flight = false;
    session.playback.clear();
    out.text(tts_state(session, "stop"));
}

/// Drops a turn in progress without a word (a meeting starts: meeting mode
/// never chats); a device that was already speaking still gets `tts stop`.
pub fn cancel(session: &mut Session, out: &mut Outbox) {
    session.turn_gate.fetch_add(1, Ordering::AcqRel);
    session.turn_in_flight = false;
    if session.playback.clear() {
        out.text(tts_state(session, "stop"));
    }
}

/// One step of one of our turns; steps of superseded turns are dropped.
pub fn on_event(
    session: &mut Session,
    ctx: &ServerContext,
    event: AssistantEvent,
    now_ms: u64,
    out: &mut Outbox,
) {
    if event.turn() != session.turn_gate.load(Ordering::Acquire) {
        ::log::debug!(
            "device {}: step of superseded turn {} dropped",
            session.device_id(),
            event.turn()
        );
        return;
    }
    // An answer being prepared or played is activity: a long one is never
    // cut off by the idle timer. The goodbye is not.
    if session.goodbye_turn != Some(event.turn()) {
        session.idle.activity(now_ms);
    }
    match event {
        AssistantEvent::Command { command, .. } => {
            session.turn_in_flight = false;
            if session.mode == Some(ModeName::Working) {
                workflow::run_command(session, ctx, command, now_ms, out);
            } else {
                // Working mode ended while the intent was being recognized.
                begin_speaking(session, emotion::DEFAULT);
                let text = crate::modes::chat::fallback::chat_unavailable("");
                queue_sentence(session, text, Vec::new());
                queue_stop(session);
            }
        }
        AssistantEvent::Sentence {
            text,
            packets,
            emotion,
            ..
        } => {
            begin_speaking(session, emotion);
            queue_sentence(session, &text, packets);
        }
        AssistantEvent::Done {
            utterance,
            reply,
            notify,
            ..
        } => {
            session.turn_in_flight = false;
            begin_speaking(session, emotion::DEFAULT);
            // Off unless configured; and the mode may have turned muted since the turn began.
            if !muted(session) {
                for packet in notify.iter().flat_map(|packets| packets.iter()) {
                    session.playback.push(Cue::Audio(packet.clone()));
                }
            }
            queue_stop(session);
            if let Some(reply) = reply.filter(|r| !r.is_empty()) {
                session.conversation.record(&utterance, &reply);
            }
        }
    }
}

fn tts_state(session: &Session, state: &str) -> String {
    json!({"type": "tts", "state": state, "session_id": session.session_id}).to_string()
}

/// The turn's opening messages, once per turn: the face is the one known
/// at the turn's first sentence.
fn begin_speaking(session: &mut Session, emotion: Emotion) {
    if session.playback.is_speaking() {
        return;
    }
    session.playback.start_turn();
    if !muted(session) {
        session.playback.push(Cue::Text(
            json!({"type": "llm", "text": emotion.emoji.to_string(), "emotion": emotion.name, "session_id": session.session_id})
                .to_string(),
        ));
    }
    session
        .playback
        .push(Cue::Text(tts_state(session, "start")));
}

fn queue_sentence(session: &mut Session, text: &str, packets: Vec<Vec<u8>>) {
    let sentence = |state: &str| {
        json!({"type": "tts", "state": state, "text": text, "session_id": session.session_id})
            .to_string()
    };
    let (start, end) = (sentence("sentence_start"), sentence("sentence_end"));
    session.playback.push(Cue::Text(start));
    for packet in packets {
        session.playback.push(Cue::Audio(packet));
    }
    session.playback.push(Cue::Text(end));
}

fn queue_stop(session: &mut Session) {
    let stop = tts_state(session, "stop");
    session.playback.push(Cue::Stop(stop));
}
