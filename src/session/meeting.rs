//! `meeting` messages and `mode start|end meeting` (PROTOCOL.md §3.2, §3.3):
//! snippets, finalize, and the ASR finals that become segments. Disk, LLM and
//! webhook work is handed to the meeting service; this thread only decides.

use std::sync::Arc;

use serde_json::{Value, json};

use super::{Outbox, Session};
use crate::context::ServerContext;
use crate::modes::broadcast;
use crate::modes::meeting::service::FinalizeRequest;
use crate::modes::meeting::state::{Meeting, Phase};
use crate::modes::meeting::text::normalize;
use crate::protocol::{ErrorCode, Rejection};
use crate::store::model::Segment;

/// The entry tone the badge fork plays (no audio frames follow).
const ENTRY_TONE_URL: &str = "config/assets/evening.wav";
const ENTRY_TONE_TEXT: &str = "已进入会议模式";

/// `mode start meeting`: a new meeting, or the resume of this device's journal.
/// Returns the extra ack fields (`sessionId`, `resumed`).
pub fn start(session: &mut Session, ctx: &ServerContext, out: &mut Outbox) -> Value {
    if session.meeting.is_running() {
        return json!({"sessionId": session.meeting.session_id});
    }
    let window_ms = session.config.meeting.checkpoint_interval_min * 60_000;
    let resumed = ctx
        .meetings
        .take_resumable(session.device_id(), unix_now(), window_ms);
    let mut extra = json!({});
    session.meeting = match resumed {
        Some(journal) => {
            extra["resumed"] = Value::Bool(true);
            ::log::info!(
                "device {} resumes meeting {} ({} segments)",
                session.device_id(),
                journal.session_id,
                journal.segments.len()
            );
            ctx.meetings.journal_reopen(
                &journal.session_id,
                session.device_id(),
                journal.started_at,
            );
            Meeting::resume(
                journal.session_id,
                journal.started_at,
                journal.segments,
                journal.checkpoint_count,
            )
        }
        None => {
            let meeting = Meeting::start(uuid::Uuid::new_v4().to_string(), unix_now());
            ctx.meetings
                .journal_open(&meeting.session_id, session.device_id(), meeting.started_at);
            meeting
        }
    };
    out.text(
        json!({"type": "tts", "state": "start", "url": ENTRY_TONE_URL, "text": ENTRY_TONE_TEXT})
            .to_string(),
    );
    out.text(json!({"type": "tts", "state": "stop"}).to_string());
    if session.config.meeting.prefer_device_vad {
        session.listen.mode = crate::protocol::inbound::ListenMode::Manual;
    }
    out.start_meeting_timers = true;
    extra["sessionId"] = Value::String(session.meeting.session_id.clone());
    extra
}

/// A `meeting` message.
pub fn handle(
    session: &mut Session,
    body: Value,
    ctx: &ServerContext,
    now_ms: u64,
    out: &mut Outbox,
) -> Result<(), Rejection> {
    let phase = body.get("phase").and_then(Value::as_str).unwrap_or("");
    match phase {
        "snippet" => snippet(session, &body, ctx, out),
        "finalize" => finalize(session, ctx, now_ms, out),
        "" => Err(Rejection::new(
            "meeting",
            ErrorCode::SchemaInvalid,
            "phase must be a string",
        )),
        other => Err(Rejection::new(
            "meeting",
            ErrorCode::Unsupported,
            format!("phase {other} is not snippet or finalize"),
        )),
    }
}

/// A validated snippet item.
struct Item {
    tag: String,
    text: String,
    speaker_id: Option<String>,
}

fn parse_items(body: &Value) -> Result<Vec<Item>, String> {
    let Some(items) = body.get("items").and_then(Value::as_array) else {
        return Err("items must be array of {tag,text}".to_string());
    };
    if items.is_empty() {
        return Err("items must be a non-empty array of {tag,text}".to_string());
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let field = |name: &str| item.get(name).and_then(Value::as_str).map(str::to_string);
            let (Some(tag), Some(text)) = (field("tag"), field("text")) else {
                return Err(format!(
                    "items must be array of {{tag,text}}: items[{i}] is missing one of tag/text or they are not strings"
                ));
            };
            let speaker_id = match item.get("speakerId") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(_) => return Err(format!("items[{i}].speakerId must be a string")),
            };
            Ok(Item { tag, text, speaker_id })
        })
        .collect()
}

fn snippet(
    session: &mut Session,
    body: &Value,
    ctx: &ServerContext,
    out: &mut Outbox,
) -> Result<(), Rejection> {
    let items =
        parse_items(body).map_err(|m| Rejection::new("meeting", ErrorCode::SchemaInvalid, m))?;
    let ack = json!({"type": "meeting", "status": "ok", "phase": "snippet"}).to_string();
    match session.meeting.phase {
        Phase::Idle => {
            return Err(Rejection::new(
                "meeting",
                ErrorCode::Unsupported,
                "no active meeting",
            ));
        }
        // Late items after finalize are acknowledged and dropped.
        Phase::Finalizing | Phase::Finalized => {
            out.text(ack);
            return Ok(());
        }
        Phase::Running => {}
    }
    let now = unix_now();
    session
        .meeting
        .snippet_allowed(items.len(), now)
        .map_err(|m| Rejection::new("meeting", ErrorCode::RateLimited, m))?;
    let copies = broadcast::targets(&session.config, &ctx.registry, session.device_id());
    let mut copied = Vec::new();
    for item in items {
        if !copies.is_empty() {
            copied.push(json!({"tag": item.tag, "text": item.text}));
        }
        accept(
            session,
            ctx,
            &item.text,
            item.speaker_id,
            Some(item.tag),
            now,
        );
    }
    out.text(ack);
    let copy = json!({"type": "meeting", "phase": "snippet", "sessionId": session.meeting.session_id,
        "items": copied});
    broadcast::send_copies(&copies, &copy, session.device_id());
    Ok(())
}

/// Normalizes and accepts one text into the running meeting, journaling it.
fn accept(
    session: &mut Session,
    ctx: &ServerContext,
    text: &str,
    speaker_id: Option<String>,
    tag: Option<String>,
    now: u64,
) -> Option<Segment> {
    let meeting_config = &session.config.meeting;
    let text = normalize(
        text,
        &meeting_config.term_map,
        meeting_config.industry.as_deref(),
    );
    let segment = session.meeting.accept(text, speaker_id, tag, now)?;
    ctx.meetings
        .journal_append(&session.meeting.session_id, &segment);
    Some(segment)
}

/// An ASR final while the meeting runs: a segment spoken by the device.
pub fn on_speech(session: &mut Session, ctx: &ServerContext, text: &str) {
    if session.meeting.is_running() {
        let speaker = Some(session.device_id().to_string());
        accept(session, ctx, text, speaker, None, unix_now());
    }
}

/// Finalize (message, `mode end meeting` or a finalize phrase).
pub fn finalize(
    session: &mut Session,
    ctx: &ServerContext,
    _now_ms: u64,
    out: &mut Outbox,
) -> Result<(), Rejection> {
    let meeting = &mut session.meeting;
    match meeting.phase {
        Phase::Idle => {
            return Err(Rejection::new(
                "meeting",
                ErrorCode::Unsupported,
                "no active meeting",
            ));
        }
        Phase::Finalizing => {
            meeting.waiting_finalizes += 1;
            out.text(finalize_ack(meeting));
        }
        Phase::Finalized => {
            if let Some(summary) = &meeting.cached_summary {
                let mut again = summary.clone();
                again["idempotent"] = Value::Bool(true);
                out.text(again.to_string());
            }
        }
        Phase::Running => {
            let ended_at = unix_now();
            meeting.ended_at = Some(ended_at);
            meeting.phase = Phase::Finalizing;
            // The ack goes out before any other work (≤ 100 ms).
            out.frames
                .insert(0, super::Outgoing::Text(finalize_ack(meeting)));
            out.stop_meeting_timers = true;
            session.mode = None;
            session.listen.mode = crate::protocol::inbound::ListenMode::Auto;
            session.idle.set_long_mode(false);
            out.rearm_idle = true;
            ctx.meetings
                .finalize(summary_request(session, ctx, ended_at, false));
        }
    }
    Ok(())
}

/// The summary job of this connection's running meeting.
fn summary_request(
    session: &Session,
    ctx: &ServerContext,
    ended_at: u64,
    checkpoint: bool,
) -> FinalizeRequest {
    let meeting = &session.meeting;
    let copies = if checkpoint {
        Vec::new()
    } else {
        broadcast::targets(&session.config, &ctx.registry, session.device_id())
    };
    FinalizeRequest {
        copies,
        session_id: meeting.session_id.clone(),
        device_id: session.identity.device_id.clone(),
        started_at: meeting.started_at,
        ended_at,
        segments: meeting.segments.clone(),
        checkpoint_count: meeting.checkpoint_count,
        reply: session.handle.clone(),
        config: Arc::clone(&session.config),
        recovered: false,
        requested_ns: crate::audio::stats::mono_ns(),
        checkpoint,
    }
}

fn finalize_ack(meeting: &Meeting) -> String {
    json!({
        "type": "meeting",
        "phase": "finalize",
        "sessionId": meeting.session_id,
        "startedAt": meeting.started_at,
        "pendingCount": meeting.pending(),
    })
    .to_string()
}

/// The summary job finished: cache it, and answer finalizes that waited.
pub fn on_finalized(session: &mut Session, summary: Value, out: &mut Outbox) {
    let meeting = &mut session.meeting;
    meeting.phase = Phase::Finalized;
    meeting.segments = Vec::new();
    for _ in 0..std::mem::take(&mut meeting.waiting_finalizes) {
        let mut again = summary.clone();
        again["idempotent"] = Value::Bool(true);
        out.text(again.to_string());
    }
    meeting.cached_summary = Some(summary);
}

/// The periodic checkpoint: a summary of everything so far, built off-thread.
pub fn checkpoint(session: &mut Session, ctx: &ServerContext) {
    if !session.meeting.is_running() {
        return;
    }
    session.meeting.checkpoint_count += 1;
    ctx.meetings
        .checkpoint(summary_request(session, ctx, unix_now(), true));
}

/// The periodic transcript push (sent even when empty).
pub fn push_transcript(session: &mut Session, ctx: &ServerContext, out: &mut Outbox) {
    if !session.meeting.is_running() {
        return;
    }
    let segments = session.meeting.take_push();
    let push = json!({
        "type": "meeting",
        "phase": "transcript",
        "sessionId": session.meeting.session_id,
        "segments": segments,
        "totalSegments": session.meeting.segments.len(),
    });
    out.text(push.to_string());
    let copies = broadcast::targets(&session.config, &ctx.registry, session.device_id());
    broadcast::send_copies(&copies, &push, session.device_id());
}

/// Wall-clock ms: segment `ts` and `startedAt` are epoch times.
fn unix_now() -> u64 {
    crate::timer::unix_ms()
}
