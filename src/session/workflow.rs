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
    let device_id = session.device_id().to_string();
    let default_owner = session
        .config
        .workflow
        .device_alias
        .get(&device_id)
        .cloned()
        .unwrap_or(device_id);
    ctx.workflow.submit(WorkflowJob {
        origin,
        event,
        body,
        default_owner,
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
