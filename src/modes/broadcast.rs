//! Broadcast copies (PROTOCOL.md §3.3, §3.5): meeting snippets, transcripts
//! and summaries and coding insights go to other devices too when
//! `[meeting.broadcast]` says so, each copy marked with `"from"`.
//!
//! The targets are picked when the message is made (a registry snapshot), and
//! each copy is one non-blocking inbox send: a target that is gone or full
//! never affects the others or the sender.

use std::sync::Arc;

use serde_json::Value;

use crate::config::{BroadcastMode, Config};
use crate::net::handle::{ConnEvent, ConnHandle};
use crate::net::identity::normalize_id;
use crate::net::registry::Registry;
use crate::workflow::group_of_device;

/// Who gets a copy of a message from `origin`: off unless enabled; `group` =
/// online devices of the origin's workflow group, `session` = online devices
/// in meeting mode; a non-empty `allowed_targets` narrows the set; the origin
/// itself only with `include_origin`.
pub fn targets(config: &Config, registry: &Registry, origin: &str) -> Vec<ConnHandle> {
    let broadcast = &config.meeting.broadcast;
    if !broadcast.enabled || broadcast.mode == BroadcastMode::Off {
        return Vec::new();
    }
    let origin_group = group_of_device(origin);
    registry
        .registered()
        .into_iter()
        .filter(|h| &*h.device_id != origin || broadcast.include_origin)
        .filter(|h| match broadcast.mode {
            BroadcastMode::Group => group_of_device(&h.device_id) == origin_group,
            BroadcastMode::Session => h.in_meeting(),
            BroadcastMode::Off => false,
        })
        .filter(|h| {
            broadcast.allowed_targets.is_empty()
                || broadcast
                    .allowed_targets
                    .iter()
                    .any(|t| normalize_id(t) == *h.device_id)
        })
        .collect()
}

/// Sends `message` with `"from": origin` to every target; one shared frame.
pub fn send_copies(targets: &[ConnHandle], message: &Value, origin: &str) {
    if targets.is_empty() {
        return;
    }
    let mut copy = message.clone();
    copy["from"] = Value::String(origin.to_string());
    let shared: Arc<str> = Arc::from(copy.to_string());
    for target in targets {
        target.send(ConnEvent::SendText(Arc::clone(&shared)));
    }
}
