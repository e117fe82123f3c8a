//! `workflow` messages (PROTOCOL.md §3.4) are handed to the workflow service
//! (the task store writes a file); snapshots for `mode start working` are read
//! from its in-memory tasks here.

use serde_json::Value;

use super::{Outbox, Session};
use crate::context::ServerContext;
use crate::modes::working::commands::{CommandIntent, VoiceCommand, pick_task};
use crate::protocol::{ErrorCode, Rejection};
use crate::workflow::group_of_device;
use crate::workflow::service::{WorkflowJob, snapshot_message};

pub fn handle(session: &mut Session, body: Value, ctx: &ServerContext) -> Result<(), Rejection> {
    let Some(event) = body
        .get("event")
        .and_then(Value::as_str)
        .map(str::to_string)
    else {
        return Err(Rejection::new(
            "workflow",
            ErrorCode::SchemaInvalid,
            "event must be a string",
        ));
    };
    let Some(origin) = session.handle.clone() else {
        return Ok(());
    };
    let default_owner = alias(session);
    ctx.workflow.submit(WorkflowJob {
        origin,
        event,
        body,
        default_owner,
        voice: false,
    });
    Ok(())
}

/// Snapshots for registration, hello and `mode start working` are skipped
/// when the device got any snapshot less than this long ago (§3.4).
pub const SNAPSHOT_DEBOUNCE_MS: u64 = 1_500;

/// Why a snapshot is being offered: only the automatic ones are debounced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotCause {
    /// Registration, hello or working-mode start: skipped within the debounce.
    Automatic,
    /// `list`, a refresh command, a voice command with nothing to act on: always sent.
    Requested,
}

/// The device's own group snapshot, unless `cause` is automatic and the
/// device got one less than [`SNAPSHOT_DEBOUNCE_MS`] ago.
pub fn snapshot(
    session: &mut Session,
    ctx: &ServerContext,
    cause: SnapshotCause,
    now_ms: u64,
    out: &mut Outbox,
) {
    let Some(store) = ctx.workflow.store() else {
        return;
    };
    let recent = session
        .workflow_snapshot_at_ms
        .is_some_and(|at| now_ms.saturating_sub(at) < SNAPSHOT_DEBOUNCE_MS);
    if cause == SnapshotCause::Automatic && recent {
        return;
    }
    session.workflow_snapshot_at_ms = Some(now_ms);
    out.text(snapshot_message(
        store,
        &group_of_device(session.device_id()),
    ));
}

/// Working mode: a recognized utterance that is a task command (§3.4 voice
/// commands). Returns false when the text is not a command.
pub fn voice_command(
    session: &mut Session,
    ctx: &ServerContext,
    text: &str,
    now_ms: u64,
    out: &mut Outbox,
) -> bool {
    let Some(command) = crate::modes::working::commands::match_command(text) else {
        return false;
    };
    run_command(session, ctx, command, now_ms, out);
    true
}

/// Carries out a task command (matched phrase or recognized intent): the
/// `command` event, then the change, whose snapshots follow from the
/// workflow service (or the board at once when there is nothing to change).
pub fn run_command(
    session: &mut Session,
    ctx: &ServerContext,
    command: VoiceCommand,
    now_ms: u64,
    out: &mut Outbox,
) {
    out.text(serde_json::json!({"type": "workflow", "event": "command", "intent": command.intent.as_str()}).to_string());
    let Some(store) = ctx.workflow.store() else {
        return;
    };
    let group = group_of_device(session.device_id());
    let speaker = alias(session);
    let target = match command.intent {
        CommandIntent::Refresh => None,
        _ => pick_task(&store.snapshot(&group), &command, &speaker),
    };
    let (Some(id), Some(origin)) = (target, session.handle.clone()) else {
        // Refresh, or nothing to act on: the device still gets its board.
        snapshot(session, ctx, SnapshotCause::Requested, now_ms, out);
        return;
    };
    let (event, body) = match command.intent {
        CommandIntent::Assign => ("assign", serde_json::json!({"id": id, "owner": speaker})),
        _ => ("complete", serde_json::json!({"ids": [id]})),
    };
    ctx.workflow.submit(WorkflowJob {
        origin,
        event: event.to_string(),
        body,
        default_owner: speaker,
        voice: true,
    });
}

/// The name tasks use for this device: `workflow.device_alias`, else its id.
fn alias(session: &Session) -> String {
    let device_id = session.device_id();
    session
        .config
        .workflow
        .device_alias
        .get(device_id)
        .cloned()
        .unwrap_or_else(|| device_id.to_string())
}
