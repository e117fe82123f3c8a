//! The contract every LLM backend meets: chat messages in, one assistant reply out.
//!
//! Callers (meeting summaries, chat turns, intent, coding insight) only see [`LlmClient`]; which backend answers is
//! decided by [`super::resolve()`]. Every call carries a deadline so a slow service can never hold a worker longer than
//! its caller allows, and a streamed call can be stopped by its caller (an aborted voice turn) at the next delta.
//!
//! Function tools follow the OpenAI shape: [`ChatOptions::tools`] offers them, [`ChatReply::tool_calls`] carries the
//! calls the model asked for, and the caller answers with [`ChatMessage::assistant_tool_calls`] followed by one
//! [`ChatMessage::tool_result`] per call before asking again.

use std::fmt;
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// Who said a message, in the chat-completions sense.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
    /// The result of a function tool, answering the assistant's call with the same `tool_call_id`.
    Tool,
}

/// One function call the model asked for. `arguments` is the JSON text the model wrote, unparsed: models do write
/// invalid JSON, and the tool's dispatcher is the one that knows what to do about it.
///
/// Serializes in the wire shape `{"id","type":"function","function":{"name","arguments"}}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "WireToolCall", from = "WireToolCall")]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

#[derive(Serialize, Deserialize)]
struct WireToolCall {
    #[serde(default)]
    id: String,
    #[serde(rename = "type", default = "function_type")]
    kind: String,
    #[serde(default)]
    function: WireFunction,
}

#[derive(Default, Serialize, Deserialize)]
struct WireFunction {
    #[serde(default)]
    name: String,
    /// A JSON string on the wire; some servers send the object itself, kept here as its JSON text.
    #[serde(default)]
    arguments: Value,
}

fn function_type() -> String {
    "function".to_string()
}

impl From<ToolCall> for WireToolCall {
    fn from(call: ToolCall) -> Self {
        WireToolCall {
            id: call.id,
            kind: function_type(),
            function: WireFunction {
                name: call.name,
                arguments: Value::String(call.arguments),
            },
        }
    }
}

impl From<WireToolCall> for ToolCall {
    fn from(wire: WireToolCall) -> Self {
        ToolCall {
            id: wire.id,
            name: wire.function.name,
            arguments: arguments_text(wire.function.arguments),
        }
    }
}

/// The arguments as JSON text, whether the service sent a string (OpenAI) or the object itself.
pub(crate) fn arguments_text(arguments: Value) -> String {
    match arguments {
        Value::String(text) => text,
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// One message of a conversation; serializes as `{"role":"user","content":"..."}`, plus `tool_calls` on an assistant
/// message that called tools and `tool_call_id` on a tool result (each left out when empty).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: Role,
    /// Always sent as a string (empty for a tool-calling assistant message): every server accepts `""`, and some
    /// reject `null`. A `null` read back becomes `""`.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub content: String,
    /// The calls an assistant message made (role `assistant` only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// Which call a tool result answers (role `tool` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

fn null_as_empty<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(deserializer)?.unwrap_or_default())
}

impl ChatMessage {
    fn plain(role: Role, content: String) -> Self {
        ChatMessage {
            role,
            content,
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }

    pub fn system(content: impl Into<String>) -> Self {
        Self::plain(Role::System, content.into())
    }

    pub fn user(content: impl Into<String>) -> Self {
        Self::plain(Role::User, content.into())
    }

    pub fn assistant(content: impl Into<String>) -> Self {
        Self::plain(Role::Assistant, content.into())
    }

    /// The assistant turn that asked for `calls`; it goes back into the conversation ahead of their results.
    pub fn assistant_tool_calls(calls: Vec<ToolCall>) -> Self {
        ChatMessage {
            tool_calls: calls,
            ..Self::plain(Role::Assistant, String::new())
        }
    }

    /// The result of the call `id` (a [`ToolCall::id`]).
    pub fn tool_result(id: impl Into<String>, content: impl Into<String>) -> Self {
        ChatMessage {
            tool_call_id: Some(id.into()),
            ..Self::plain(Role::Tool, content.into())
        }
    }
}

/// Per-call parameters. Unset fields take the provider's configured value (`[llm.<name>]`), and when that is unset
/// too they are left out of the request so the service uses its own default.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChatOptions {
    pub max_tokens: Option<u32>,
    pub temperature: Option<f64>,
    /// Replaces the provider's `timeout_s` for this call; the call's deadline still caps it.
    pub timeout: Option<Duration>,
    /// Function tools offered to the model, each `{"type":"function","function":{"name","description","parameters"}}`;
    /// sent as `"tools"` only when non-empty.
    pub tools: Vec<Value>,
}

/// The assistant's answer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChatReply {
    /// `choices[0].message.content` (streamed: the deltas concatenated); empty when the model only called tools.
    pub content: String,
    /// The function calls the model asked for, in the service's order (`finish_reason` is then usually
    /// `"tool_calls"`).
    pub tool_calls: Vec<ToolCall>,
    /// The model that answered, when the service says.
    pub model: Option<String>,
    /// `choices[0].finish_reason` (`"stop"`, `"length"`, ...), when present.
    pub finish_reason: Option<String>,
    /// `usage.prompt_tokens` / `usage.completion_tokens`, when present.
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    /// Wall time of the call.
    pub elapsed: Duration,
}

/// What failed. The text is for logs; callers only branch on the variant (e.g. a summary falls back on any of them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LlmError {
    /// The service could not be reached (refused, DNS, reset) or the request could not be sent.
    Unavailable(String),
    /// The service answered with a non-2xx status; `body` is an excerpt of what it said.
    Status { status: u16, body: String },
    /// No complete answer before the deadline or the configured timeout.
    Timeout,
    /// A 2xx answer we cannot use (not JSON, no `choices[0].message.content`, a stream cut short).
    BadAnswer(String),
    /// The caller stopped a streamed call (its `on_delta` returned [`ControlFlow::Break`]); the connection was
    /// dropped so the service stops generating.
    Cancelled,
}

impl fmt::Display for LlmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LlmError::Unavailable(why) => write!(f, "LLM unavailable: {why}"),
            LlmError::Status { status, body } => write!(f, "LLM answered HTTP {status}: {body}"),
            LlmError::Timeout => write!(f, "LLM timed out"),
            LlmError::BadAnswer(why) => write!(f, "LLM answer unusable: {why}"),
            LlmError::Cancelled => write!(f, "LLM call cancelled by the caller"),
        }
    }
}

impl std::error::Error for LlmError {}

/// A chat model. Instances are shared process-wide (see [`super::resolve()`]), so implementations are `Send + Sync`
/// and keep no per-conversation state: the caller passes the whole conversation on every call.
pub trait LlmClient: Send + Sync {
    /// The provider alias (`[llm.<name>]`), for logs and metrics.
    fn name(&self) -> &str;

    /// The model asked, for logs.
    fn model(&self) -> &str;

    /// One non-streamed completion, finished by `deadline` (else [`LlmError::Timeout`]).
    fn chat(
        &self,
        messages: &[ChatMessage],
        options: &ChatOptions,
        deadline: Instant,
    ) -> Result<ChatReply, LlmError>;

    /// Streamed completion: `on_delta` gets the content text as it arrives (never empty pieces; tool calls are only
    /// in the returned reply) and the whole reply is returned at the end, finished by `deadline`.
    ///
    /// `on_delta` returning [`ControlFlow::Break`] stops the call at once with [`LlmError::Cancelled`]: an aborted
    /// voice turn must not keep the service generating. The default makes one [`chat`](Self::chat) call and
    /// delivers its content as a single delta, so every client supports the streaming call shape; backends that can
    /// stream override it.
    fn chat_stream(
        &self,
        messages: &[ChatMessage],
        options: &ChatOptions,
        deadline: Instant,
        on_delta: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<ChatReply, LlmError> {
        let reply = self.chat(messages, options, deadline)?;
        if !reply.content.is_empty() && on_delta(&reply.content).is_break() {
            return Err(LlmError::Cancelled);
        }
        Ok(reply)
    }
}

/// The first `max` characters of `text` (on a char boundary), with `…` when cut: error bodies go to logs, and a
/// service can answer megabytes of HTML.
pub(crate) fn excerpt(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Echo;

    impl LlmClient for Echo {
        fn name(&self) -> &str {
            "echo"
        }
        fn model(&self) -> &str {
            "echo-1"
        }
        fn chat(
            &self,
            messages: &[ChatMessage],
            _options: &ChatOptions,
            _deadline: Instant,
        ) -> Result<ChatReply, LlmError> {
            Ok(ChatReply {
                content: messages
                    .last()
                    .map(|m| m.content.clone())
                    .unwrap_or_default(),
                ..ChatReply::default()
            })
        }
    }

    #[test]
    fn messages_serialize_in_the_wire_shape() {
        let v = serde_json::to_value([ChatMessage::system("s"), ChatMessage::user("u")]).unwrap();
        assert_eq!(
            v,
            serde_json::json!([{"role":"system","content":"s"},{"role":"user","content":"u"}])
        );
        assert_eq!(
            serde_json::to_value(ChatMessage::assistant("a")).unwrap()["role"],
            "assistant"
        );
    }

    #[test]
    fn tool_calls_and_results_serialize_in_the_wire_shape() {
        let call = ToolCall {
            id: "call_1".into(),
            name: "get_weather".into(),
            arguments: r#"{"city":"杭州"}"#.into(),
        };
        let conversation = [
            ChatMessage::user("天气？"),
            ChatMessage::assistant_tool_calls(vec![call.clone()]),
            ChatMessage::tool_result("call_1", "晴，25度"),
            ChatMessage::assistant("杭州晴，25度。"),
        ];
        let v = serde_json::to_value(&conversation).unwrap();
        assert_eq!(
            v,
            serde_json::json!([
                {"role":"user","content":"天气？"},
                {"role":"assistant","content":"","tool_calls":[
                    {"id":"call_1","type":"function",
                     "function":{"name":"get_weather","arguments":"{\"city\":\"杭州\"}"}}]},
                {"role":"tool","content":"晴，25度","tool_call_id":"call_1"},
                {"role":"assistant","content":"杭州晴，25度。"}
            ])
        );
        // Read back, including what services send: a null content and arguments as an object.
        let back: Vec<ChatMessage> = serde_json::from_value(v).unwrap();
        assert_eq!(back, conversation);
        let answered: ChatMessage = serde_json::from_value(serde_json::json!(
            {"role":"assistant","content":null,"tool_calls":[
                {"id":"c","type":"function","function":{"name":"f","arguments":{"a":1}}}]}
        ))
        .unwrap();
        assert_eq!(answered.content, "");
        assert_eq!(answered.tool_calls[0].arguments, r#"{"a":1}"#);
        assert_eq!(answered.tool_calls[0].name, "f");
    }

    #[test]
    fn default_stream_delivers_the_whole_reply_once() {
        let mut deltas = Vec::new();
        let reply = Echo
            .chat_stream(
                &[ChatMessage::user("hi")],
                &ChatOptions::default(),
                Instant::now() + Duration::from_secs(1),
                &mut |d| {
                    deltas.push(d.to_string());
                    ControlFlow::Continue(())
                },
            )
            .unwrap();
        assert_eq!(reply.content, "hi");
        assert_eq!(deltas, ["hi"]);
    }

    #[test]
    fn default_stream_honours_a_break() {
        let err = Echo
            .chat_stream(
                &[ChatMessage::user("hi")],
                &ChatOptions::default(),
                Instant::now() + Duration::from_secs(1),
                &mut |_| ControlFlow::Break(()),
            )
            .unwrap_err();
        assert_eq!(err, LlmError::Cancelled);
    }

    #[test]
    fn excerpts_cut_on_char_boundaries() {
        assert_eq!(excerpt("abc", 5), "abc");
        assert_eq!(excerpt("会议纪要内容", 2), "会议…");
        assert_eq!(excerpt("", 0), "");
    }

    #[test]
    fn errors_name_what_failed() {
        assert!(LlmError::Timeout.to_string().contains("timed out"));
        let s = LlmError::Status {
            status: 500,
            body: "boom".into(),
        }
        .to_string();
        assert!(s.contains("500") && s.contains("boom"));
        assert!(
            LlmError::Unavailable("refused".into())
                .to_string()
                .contains("unavailable")
        );
        assert!(
            LlmError::BadAnswer("x".into())
                .to_string()
                .contains("unusable")
        );
        assert!(LlmError::Cancelled.to_string().contains("cancelled"));
    }
}
