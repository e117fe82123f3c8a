//! The device's MCP server (PROTOCOL.md §3.1): JSON-RPC 2.0 inside `mcp`
//! messages. After the first hello announcing `features.mcp` the server
//! sends `initialize` (id 1) and `tools/list` (id 2) without waiting for
//! anything; the tools the device lists are offered to the chat LLM, and a
//! call the LLM makes goes out as `tools/call` with ids counting up from 3.
//!
//! Nothing here ever blocks a turn: a device that never answers simply has
//! no tools, and a call it never answers is answered by the worker's own
//! 10 s timeout.

use std::collections::HashMap;

use crossbeam_channel::Sender;
use serde_json::{Value, json};

use super::Outbox;
use crate::modes::chat::service::{MCP_CALL_TIMEOUT, McpCall};

const INITIALIZE_ID: u64 = 1;
const TOOLS_LIST_ID: u64 = 2;
const FIRST_CALL_ID: u64 = 3;
/// Tools offered to the LLM; a device listing more gets the first ones.
const MAX_TOOLS: usize = 32;

#[derive(Debug, Default)]
pub struct McpClient {
    /// `initialize` and `tools/list` went out (once per connection).
    started: bool,
    /// The device's tools as OpenAI function tools.
    tools: Vec<Value>,
    /// Next `tools/call` id. Invariant: ≥ [`FIRST_CALL_ID`] once started.
    next_id: u64,
    /// Calls waiting for the device: id → (reply channel, sent at ms).
    pending: HashMap<u64, (Sender<Result<Value, String>>, u64)>,
}

impl McpClient {
    /// After the first hello: starts MCP when the device announced it.
    pub fn start(&mut self, features: Option<&Value>, out: &mut Outbox) {
        let wanted = features
            .and_then(|f| f.get("mcp"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if !wanted || self.started {
            return;
        }
        self.started = true;
        self.next_id = FIRST_CALL_ID;
        out.text(envelope(json!({
            "jsonrpc": "2.0", "id": INITIALIZE_ID, "method": "initialize",
            "params": {
                "protocolVersion": "2024-11-05",
                "capabilities": {"roots": {"listChanged": true}, "sampling": {}},
                "clientInfo": {"name": "XiaozhiClient", "version": "1.0.0"}
            }
        })));
        out.text(envelope(json!({
            "jsonrpc": "2.0", "id": TOOLS_LIST_ID, "method": "tools/list", "params": {}
        })));
    }

    /// The device's tools for the chat LLM (empty until it listed some).
    pub fn llm_tools(&self) -> Vec<Value> {
        self.tools.clone()
    }

    /// A `tools/call` for the LLM: sent now, answered on `call.reply` when the
    /// device replies. Calls the worker already gave up on are forgotten.
    pub fn call(&mut self, call: McpCall, now_ms: u64, out: &mut Outbox) {
        let stale_before = now_ms.saturating_sub(MCP_CALL_TIMEOUT.as_millis() as u64);
        self.pending.retain(|_, (_, sent)| *sent >= stale_before);
        if !self.started {
            let _ = call.reply.send(Err("the device has no MCP".to_string()));
            return;
        }
        let id = self.next_id;
        self.next_id += 1;
        out.text(envelope(json!({
            "jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": call.name, "arguments": call.arguments}
        })));
        self.pending.insert(id, (call.reply, now_ms));
    }

    /// An `mcp` message from the device: a response to one of our requests.
    pub fn on_payload(&mut self, payload: &Value, device_id: &str) {
        let Some(id) = payload.get("id").and_then(Value::as_u64) else {
            ::log::debug!("device {device_id}: mcp message without a numeric id ignored");
            return;
        };
        let outcome = match (payload.get("result"), payload.get("error")) {
            (Some(result), _) => Ok(result),
            (None, Some(error)) => Err(error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("tool error")
                .to_string()),
            (None, None) => Err("response without result or error".to_string()),
        };
        match id {
            INITIALIZE_ID => {
                if let Err(e) = outcome {
                    ::log::info!("device {device_id}: MCP initialize failed: {e}");
                }
            }
            TOOLS_LIST_ID => match outcome {
                Ok(result) => {
                    self.tools = function_tools(result);
                    ::log::info!(
                        "device {device_id}: {} MCP tools offered to the LLM",
                        self.tools.len()
                    );
                }
                Err(e) => ::log::info!("device {device_id}: MCP tools/list failed: {e}"),
            },
            id => match self.pending.remove(&id) {
                // The worker may have timed out already; nobody to tell then.
                Some((reply, _)) => {
                    let _ = reply.send(outcome.cloned());
                }
                None => ::log::debug!("device {device_id}: mcp answer {id} matches no call"),
            },
        }
    }
}

fn envelope(payload: Value) -> String {
    json!({"type": "mcp", "payload": payload}).to_string()
}

/// MCP `tools/list` result → OpenAI function tools (`inputSchema` becomes
/// `parameters`); entries without a name are skipped.
fn function_tools(result: &Value) -> Vec<Value> {
    let Some(tools) = result.get("tools").and_then(Value::as_array) else {
        return Vec::new();
    };
    tools
        .iter()
        .filter_map(|tool| {
            let name = tool.get("name")?.as_str()?;
            let parameters = tool
                .get("inputSchema")
                .cloned()
                .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
            Some(json!({"type": "function", "function": {
                "name": name,
                "description": tool.get("description").and_then(Value::as_str).unwrap_or(""),
                "parameters": parameters,
            }}))
        })
        .take(MAX_TOOLS)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mcp_starts_once_and_only_when_announced() {
        let mut client = McpClient::default();
        let mut out = Outbox::default();
        client.start(Some(&json!({"aec": true})), &mut out);
        assert!(out.frames.is_empty());
        client.start(Some(&json!({"mcp": true})), &mut out);
        client.start(Some(&json!({"mcp": true})), &mut out);
        assert_eq!(out.frames.len(), 2);
    }

    #[test]
    fn listed_tools_become_function_tools_and_calls_count_from_three() {
        let mut client = McpClient::default();
        let mut out = Outbox::default();
        client.start(Some(&json!({"mcp": true})), &mut out);
        client.on_payload(
            &json!({"jsonrpc":"2.0","id":2,"result":{"tools":[
                {"name":"self.audio_speaker.set_volume","description":"Set volume",
                 "inputSchema":{"type":"object","properties":{"volume":{"type":"integer"}}}},
                {"description":"nameless"}
            ]}}),
            "dev",
        );
        let tools = client.llm_tools();
        assert_eq!(tools.len(), 1);
        assert_eq!(
            tools[0]["function"]["name"],
            "self.audio_speaker.set_volume"
        );
        assert_eq!(
            tools[0]["function"]["parameters"]["properties"]["volume"]["type"],
            "integer"
        );
        let (reply, answer) = crossbeam_channel::bounded(1);
        let mut out = Outbox::default();
        client.call(
            McpCall {
                name: "self.audio_speaker.set_volume".into(),
                arguments: json!({"volume": 30}),
                reply,
            },
            1_000,
            &mut out,
        );
        let sent: Value = match &out.frames[0] {
            super::super::Outgoing::Text(t) => serde_json::from_str(t).unwrap(),
            other => panic!("{other:?}"),
        };
        assert_eq!(sent["payload"]["id"], 3);
        assert_eq!(sent["payload"]["params"]["arguments"]["volume"], 30);
        client.on_payload(
            &json!({"jsonrpc":"2.0","id":3,"result":{"content":[{"type":"text","text":"ok"}]}}),
            "dev",
        );
        assert_eq!(
            answer.try_recv().unwrap().unwrap()["content"][0]["text"],
            "ok"
        );
    }
}
