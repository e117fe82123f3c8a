//! The firmware's boot-time configuration request (PROTOCOL.md §5.2): stock
//! firmware learns the server's WebSocket URL and token from this answer.

use serde_json::{Value, json};

use super::ApiContext;
use super::request::RequestHead;
use super::response::Response;

pub fn answer(_head: &RequestHead, body: &[u8], ctx: &ApiContext) -> Response {
    // The device's own version is echoed so it never sees an "upgrade"; an
    // absent or unreadable body is normal for hand-made requests.
    let version = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| {
            v.pointer("/application/version")?
                .as_str()
                .map(str::to_string)
        })
        .unwrap_or_else(|| "0.0.0".to_string());
    let server = &ctx.config.server;
    Response::json(
        200,
        json!({
            "server_time": {
                "timestamp": ctx.now_unix_ms,
                "timezone_offset": server.timezone_offset_min,
            },
            "firmware": {"version": version, "url": ""},
            "websocket": {
                "url": ctx.device_url,
                "token": server.ota_token.clone().unwrap_or_default(),
            },
        }),
    )
}
