//! `workflow` messages (PROTOCOL.md §3.4) are handed to the workflow service
//! (the task store writes a file); snapshots for `mode start working` are read
//! from its in-memory tasks here.

use serde_json::Value;

use super::{Outbox, Session};
use crate::context::ServerContext;
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

/// The sender's group snapshot.
pub fn snapshot(session: &Session, ctx: &ServerContext, out: &mut Outbox) {
    if let Some(store) = ctx.workflow.store() {
        out.text(snapshot_message(
            store,
            &group_of_device(session.device_id()),
        ));
    }
}

/// Working mode: a recognized utterance that is a task command (§3.4 voice
/// commands). Returns false when the text is not a command.
pub fn voice_command(
    session: &mut Session,
    ctx: &ServerContext,
    text: &str,
    out: &mut Outbox,
) -> bool {
    use crate::modes::working::commands::{CommandIntent, match_command, pick_task};
    let Some(command) = match_command(text) else {
        return false;
    };
    out.text(serde_json::json!({"type": "workflow", "event": "command", "intent": command.intent.as_str()}).to_string());
    let Some(store) = ctx.workflow.store() else {
        return true;
    };
    let group = group_of_device(session.device_id());
    let speaker = alias(session);
    let target = match command.intent {
        CommandIntent::Refresh => None,
        _ => pick_task(&store.snapshot(&group), &command, &speaker),
    };
    let (Some(id), Some(origin)) = (target, session.handle.clone()) else {
        // Refresh, or nothing to act on: the device still gets its board.
        out.text(snapshot_message(store, &group));
        return true;
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
    true
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
