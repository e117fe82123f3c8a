//! An OpenAI-compatible chat-completions service (`[llm.<name>] type = "openai"`):
//! `POST {base_url}/chat/completions` with `{"model","messages","max_tokens","temperature","tools","stream"}`.
//! Ollama, llama.cpp's server, vLLM and hosted APIs all speak it.
//!
//! [`LlmClient::chat`] asks `"stream":false` and reads `choices[0].message`. [`LlmClient::chat_stream`] asks
//! `"stream":true` and reads server-sent events (`data: {chunk}` lines up to `data: [DONE]`), handing each
//! `choices[0].delta.content` to the caller as it arrives and gathering `delta.tool_calls` fragments by index. A
//! caller's `Break` drops the connection mid-stream, which is how a service learns to stop generating. A service
//! that ignores `"stream":true` and answers in one JSON piece is read as such.

use std::collections::BTreeMap;
use std::io::Read;
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use super::client::{
    ChatMessage, ChatOptions, ChatReply, LlmClient, LlmError, ToolCall, arguments_text, excerpt,
};
use crate::config::OpenAiLlm;

/// Largest answer body read; a chat reply is a few KiB, anything far bigger is not one.
const MAX_ANSWER_BYTES: u64 = 4 << 20;

/// Largest streamed answer: every few tokens come wrapped in a ~150-byte chunk envelope.
const MAX_STREAM_BYTES: u64 = 16 << 20;

/// Longest server-sent-events line held while waiting for its end.
const MAX_LINE_BYTES: usize = 1 << 20;

/// Characters of a failed answer kept in the error.
const EXCERPT_CHARS: usize = 200;

/// One configured chat-completions backend. Cheap to share: the agent pools connections and holds no call state.
pub struct OpenAiChat {
    alias: String,
    settings: OpenAiLlm,
    url: String,
    agent: ureq::Agent,
}

/// The request body; `None` fields are left out so the service applies its defaults.
#[derive(Serialize)]
struct Request<'a> {
    model: &'a str,
    messages: &'a [ChatMessage],
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    /// Left out when no tools are offered: some servers reject an empty list.
    #[serde(skip_serializing_if = "Option::is_none")]
    tools: Option<&'a [Value]>,
    stream: bool,
}

impl OpenAiChat {
    /// `alias` is the `[llm.<alias>]` name, used in logs.
    pub fn new(alias: impl Into<String>, settings: OpenAiLlm) -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(settings.timeout_s)))
            // Non-2xx answers are read and reported with their body.
            .http_status_as_error(false)
            .build()
            .into();
        let url = format!(
            "{}/chat/completions",
            settings.base_url.trim_end_matches('/')
        );
        OpenAiChat {
            alias: alias.into(),
            settings,
            url,
            agent,
        }
    }

    /// The effective settings (after `llm_by_mode` overrides).
    pub fn settings(&self) -> &OpenAiLlm {
        &self.settings
    }

    /// The endpoint called.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn body(
        &self,
        messages: &[ChatMessage],
        options: &ChatOptions,
        stream: bool,
    ) -> Result<Vec<u8>, LlmError> {
        serde_json::to_vec(&Request {
            model: &self.settings.model,
            messages,
            max_tokens: options.max_tokens.or(self.settings.max_tokens),
            temperature: options.temperature.or(self.settings.temperature),
            tools: (!options.tools.is_empty()).then_some(options.tools.as_slice()),
            stream,
        })
        .map_err(|e| LlmError::Unavailable(format!("encoding the request: {e}")))
    }

    /// Posts the request with a global timeout of the smaller of the call's limit and what is left of `deadline`;
    /// that timeout covers reading the answer too, streamed or not. Returns the response (any status) and when the
    /// call started.
    fn send(
        &self,
        messages: &[ChatMessage],
        options: &ChatOptions,
        deadline: Instant,
        stream: bool,
    ) -> Result<(ureq::http::Response<ureq::Body>, Instant), LlmError> {
        let started = Instant::now();
        let left = deadline.saturating_duration_since(started);
        if left.is_zero() {
            return Err(LlmError::Timeout);
        }
        let limit = options
            .timeout
            .unwrap_or(Duration::from_secs(self.settings.timeout_s));
        let budget = limit.min(left);
        let body = self.body(messages, options, stream)?;
        let accept = if stream {
            "text/event-stream"
        } else {
            "application/json"
        };
        let mut request = self
            .agent
            .post(&self.url)
            .config()
            .timeout_global(Some(budget))
            .build()
            .header("Content-Type", "application/json")
            .header("Accept", accept);
        if let Some(key) = self.settings.api_key.as_deref().filter(|k| !k.is_empty()) {
            request = request.header("Authorization", &format!("Bearer {key}"));
        }
        let response = request.send(&body[..]).map_err(transport_error)?;
        Ok((response, started))
    }
}

fn transport_error(e: ureq::Error) -> LlmError {
    match e {
        ureq::Error::Timeout(_) => LlmError::Timeout,
        ureq::Error::Io(io)
            if matches!(
                io.kind(),
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
            ) =>
        {
            LlmError::Timeout
        }
        other => LlmError::Unavailable(other.to_string()),
    }
}

/// A failure while reading a 2xx answer: a timeout stays one, anything else means the answer is unusable.
fn reading_error(e: ureq::Error, what: &str) -> LlmError {
    match transport_error(e) {
        LlmError::Unavailable(why) => LlmError::BadAnswer(format!("reading {what}: {why}")),
        other => other,
    }
}

fn is_success(status: u16) -> bool {
    (200..300).contains(&status)
}

/// The whole body as text (capped), for a non-streamed answer or an error.
fn read_text(
    response: &mut ureq::http::Response<ureq::Body>,
    status: u16,
) -> Result<String, LlmError> {
    response
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER_BYTES)
        .read_to_string()
        .map_err(|e| {
            if is_success(status) {
                reading_error(e, "the answer")
            } else {
                transport_error(e)
            }
        })
}

/// The calls a service listed, in its order. A call without a name cannot be dispatched and is dropped; one
/// without an id (some local servers) gets `call_<index>` so its result can still refer to it.
fn finish_tool_calls(calls: impl IntoIterator<Item = (usize, ToolCall)>) -> Vec<ToolCall> {
    calls
        .into_iter()
        .filter(|(_, call)| !call.name.is_empty())
        .map(|(index, mut call)| {
            if call.id.is_empty() {
                call.id = format!("call_{index}");
            }
            call
        })
        .collect()
}

/// `choices[0].message` (content and tool calls) and the optional extras of a 2xx answer.
fn parse_answer(answer: &str, elapsed: Duration) -> Result<ChatReply, LlmError> {
    let json: Value = serde_json::from_str(answer).map_err(|e| {
        LlmError::BadAnswer(format!(
            "not JSON ({e}): {}",
            excerpt(answer, EXCERPT_CHARS)
        ))
    })?;
    let choice = json.get("choices").and_then(|c| c.get(0)).ok_or_else(|| {
        LlmError::BadAnswer(format!("no choices[0]: {}", excerpt(answer, EXCERPT_CHARS)))
    })?;
    let message = choice.get("message");
    // A malformed entry is skipped rather than failing the answer: the others may still be usable.
    let tool_calls = finish_tool_calls(
        message
            .and_then(|m| m.get("tool_calls"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|call| serde_json::from_value::<ToolCall>(call.clone()).ok())
            .enumerate(),
    );
    let content = match message
        .and_then(|m| m.get("content"))
        .and_then(Value::as_str)
    {
        Some(content) => content,
        // A model that only calls tools says nothing.
        None if !tool_calls.is_empty() => "",
        None => {
            return Err(LlmError::BadAnswer(format!(
                "no string choices[0].message.content: {}",
                excerpt(answer, EXCERPT_CHARS)
            )));
        }
    };
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    let usage = json.get("usage");
    let tokens = |key: &str| usage.and_then(|u| u.get(key)).and_then(Value::as_u64);
    Ok(ChatReply {
        content: content.to_string(),
        tool_calls,
        model: text(json.get("model")),
        finish_reason: text(choice.get("finish_reason")),
        prompt_tokens: tokens("prompt_tokens"),
        completion_tokens: tokens("completion_tokens"),
        elapsed,
    })
}

/// A streamed answer being read: the server-sent-events framing (lines, `data:` fields, events) and what the
/// chunks said so far.
#[derive(Default)]
struct SseStream {
    /// Bytes of the line not yet ended.
    line: Vec<u8>,
    /// The last byte was a `\r`, so a `\n` right after it ends nothing more.
    after_cr: bool,
    /// The `data:` lines of the current event, joined by `\n`, until they parse as JSON.
    data: String,
    /// `data: [DONE]` was read.
    done: bool,
    content: String,
    /// Tool-call fragments gathered by their `index`.
    tool_calls: BTreeMap<usize, ToolCall>,
    model: Option<String>,
    finish_reason: Option<String>,
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
}

type OnDelta<'a> = &'a mut dyn FnMut(&str) -> ControlFlow<()>;

impl SseStream {
    /// Reads events until `[DONE]` or the end of the body. Returns early with [`LlmError::Cancelled`] when
    /// `on_delta` breaks; the caller then drops the connection.
    fn read(&mut self, mut reader: impl Read, on_delta: OnDelta) -> Result<(), LlmError> {
        let mut buf = [0u8; 8192];
        // Nothing after [DONE] is read: a conforming service has nothing more to say, and a lingering one must not
        // hold the turn until the deadline.
        while !self.done {
            let n = match reader.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(reading_error(ureq::Error::from(e), "the stream")),
            };
            if n == 0 {
                return self.end(on_delta);
            }
            self.feed(&buf[..n], on_delta)?;
        }
        Ok(())
    }

    /// Splits bytes into lines ended by `\n`, `\r\n` or `\r`, whatever read they arrive in.
    fn feed(&mut self, bytes: &[u8], on_delta: OnDelta) -> Result<(), LlmError> {
        for &byte in bytes {
            if self.done {
                break;
            }
            let after_cr = std::mem::replace(&mut self.after_cr, byte == b'\r');
            match byte {
                b'\n' if after_cr => {}
                b'\n' | b'\r' => {
                    let line = std::mem::take(&mut self.line);
                    self.handle_line(&String::from_utf8_lossy(&line), on_delta)?;
                }
                _ if self.line.len() >= MAX_LINE_BYTES => {
                    return Err(LlmError::BadAnswer(format!(
                        "a stream line longer than {MAX_LINE_BYTES} bytes"
                    )));
                }
                _ => self.line.push(byte),
            }
        }
        Ok(())
    }

    fn handle_line(&mut self, line: &str, on_delta: OnDelta) -> Result<(), LlmError> {
        if line.is_empty() {
            // The blank line ending an event: its data must be whole by now.
            return self.dispatch(true, on_delta);
        }
        if line.starts_with(':') {
            // A comment; services send them as keep-alives.
            return Ok(());
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        if field != "data" {
            // `event:`, `id:`, `retry:` say nothing a chat-completions chunk does not.
            return Ok(());
        }
        if !self.data.is_empty() {
            self.data.push('\n');
        }
        self.data.push_str(value);
        // Handled as soon as it is whole, not at the blank line: some services never send one.
        self.dispatch(false, on_delta)
    }

    /// Handles the pending data if it is `[DONE]` or a whole JSON chunk. At an event's end (`ended`) anything else
    /// is a bad answer; before it, the event may have more `data:` lines to come.
    fn dispatch(&mut self, ended: bool, on_delta: OnDelta) -> Result<(), LlmError> {
        let data = std::mem::take(&mut self.data);
        let trimmed = data.trim();
        if trimmed.is_empty() {
            return Ok(());
        }
        if trimmed == "[DONE]" {
            self.done = true;
            return Ok(());
        }
        match serde_json::from_str::<Value>(trimmed) {
            Ok(chunk) => self.chunk(&chunk, on_delta),
            Err(_) if !ended => {
                self.data = data;
                Ok(())
            }
            Err(e) => Err(LlmError::BadAnswer(format!(
                "stream chunk not JSON ({e}): {}",
                excerpt(trimmed, EXCERPT_CHARS)
            ))),
        }
    }

    fn chunk(&mut self, chunk: &Value, on_delta: OnDelta) -> Result<(), LlmError> {
        if let Some(error) = chunk.get("error").filter(|e| !e.is_null()) {
            return Err(LlmError::BadAnswer(format!(
                "error in the stream: {}",
                excerpt(&error.to_string(), EXCERPT_CHARS)
            )));
        }
        if let Some(model) = chunk.get("model").and_then(Value::as_str) {
            self.model = Some(model.to_string());
        }
        // Usage comes in the last chunk, when the service sends it at all.
        if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
            self.prompt_tokens = usage.get("prompt_tokens").and_then(Value::as_u64);
            self.completion_tokens = usage.get("completion_tokens").and_then(Value::as_u64);
        }
        let Some(choice) = chunk.get("choices").and_then(|c| c.get(0)) else {
            return Ok(());
        };
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish_reason = Some(reason.to_string());
        }
        let Some(delta) = choice.get("delta") else {
            return Ok(());
        };
        if let Some(calls) = delta.get("tool_calls").and_then(Value::as_array) {
            for (position, call) in calls.iter().enumerate() {
                self.tool_fragment(position, call);
            }
        }
        if let Some(text) = delta
            .get("content")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            self.content.push_str(text);
            if on_delta(text).is_break() {
                return Err(LlmError::Cancelled);
            }
        }
        Ok(())
    }

    /// One `delta.tool_calls[]` fragment: the first to carry an id or a name sets it (some services repeat them in
    /// every fragment), the arguments' pieces are concatenated.
    fn tool_fragment(&mut self, position: usize, fragment: &Value) {
        let index = fragment
            .get("index")
            .and_then(Value::as_u64)
            .and_then(|i| usize::try_from(i).ok())
            .unwrap_or(position);
        let call = self.tool_calls.entry(index).or_default();
        if call.id.is_empty()
            && let Some(id) = non_empty_str(fragment.get("id"))
        {
            call.id = id.to_string();
        }
        let function = fragment.get("function");
        if call.name.is_empty()
            && let Some(name) = non_empty_str(function.and_then(|f| f.get("name")))
        {
            call.name = name.to_string();
        }
        if let Some(arguments) = function.and_then(|f| f.get("arguments")) {
            call.arguments.push_str(&arguments_text(arguments.clone()));
        }
    }

    /// The body ended: handle an unterminated last line and event, then insist the answer was finished, so a
    /// connection cut mid-answer is not taken for a short reply.
    fn end(&mut self, on_delta: OnDelta) -> Result<(), LlmError> {
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.handle_line(&String::from_utf8_lossy(&line), on_delta)?;
        }
        self.dispatch(true, on_delta)?;
        if self.done || self.finish_reason.is_some() {
            Ok(())
        } else {
            Err(LlmError::BadAnswer(
                "the stream ended before [DONE] or a finish_reason".to_string(),
            ))
        }
    }

    fn into_reply(self, elapsed: Duration) -> ChatReply {
        ChatReply {
            content: self.content,
            tool_calls: finish_tool_calls(self.tool_calls),
            model: self.model,
            finish_reason: self.finish_reason,
            prompt_tokens: self.prompt_tokens,
            completion_tokens: self.completion_tokens,
            elapsed,
        }
    }
}

fn non_empty_str(v: Option<&Value>) -> Option<&str> {
    v.and_then(Value::as_str).filter(|s| !s.is_empty())
}

impl LlmClient for OpenAiChat {
    fn name(&self) -> &str {
        &self.alias
    }

    fn model(&self) -> &str {
        &self.settings.model
    }

    fn chat(
        &self,
        messages: &[ChatMessage],
        options: &ChatOptions,
        deadline: Instant,
    ) -> Result<ChatReply, LlmError> {
        let (mut response, started) = self.send(messages, options, deadline, false)?;
        let status = response.status().as_u16();
        let answer = read_text(&mut response, status)?;
        if !is_success(status) {
            return Err(LlmError::Status {
                status,
                body: excerpt(answer.trim(), EXCERPT_CHARS),
            });
        }
        parse_answer(&answer, started.elapsed())
    }

    fn chat_stream(
        &self,
        messages: &[ChatMessage],
        options: &ChatOptions,
        deadline: Instant,
        on_delta: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<ChatReply, LlmError> {
        let (mut response, started) = self.send(messages, options, deadline, true)?;
        let status = response.status().as_u16();
        if !is_success(status) {
            let answer = read_text(&mut response, status)?;
            return Err(LlmError::Status {
                status,
                body: excerpt(answer.trim(), EXCERPT_CHARS),
            });
        }
        let json = response
            .headers()
            .get(ureq::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.contains("json"));
        if json {
            // The service ignored "stream":true and answered in one piece.
            let answer = read_text(&mut response, status)?;
            let reply = parse_answer(&answer, started.elapsed())?;
            if !reply.content.is_empty() && on_delta(&reply.content).is_break() {
                return Err(LlmError::Cancelled);
            }
            return Ok(reply);
        }
        let reader = response
            .body_mut()
            .with_config()
            .limit(MAX_STREAM_BYTES)
            .reader();
        let mut stream = SseStream::default();
        // On any error, Cancelled included, `response` is dropped unread: ureq closes the connection instead of
        // pooling it, and the service sees the client gone.
        stream.read(reader, on_delta)?;
        Ok(stream.into_reply(started.elapsed()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> OpenAiLlm {
        OpenAiLlm {
            base_url: "http://127.0.0.1:1/v1/".to_string(),
            model: "qwen".to_string(),
            api_key: None,
            timeout_s: 60,
            max_tokens: Some(512),
            temperature: None,
        }
    }

    #[test]
    fn url_joins_without_double_slash() {
        assert_eq!(
            OpenAiChat::new("a", settings()).url(),
            "http://127.0.0.1:1/v1/chat/completions"
        );
    }

    #[test]
    fn body_prefers_call_options_and_omits_unset_fields() {
        let chat = OpenAiChat::new("a", settings());
        let messages = [ChatMessage::user("hi")];
        let v: Value = serde_json::from_slice(
            &chat
                .body(&messages, &ChatOptions::default(), false)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"model":"qwen","messages":[{"role":"user","content":"hi"}],
                "max_tokens":512,"stream":false})
        );
        let tool = serde_json::json!({"type":"function","function":{"name":"f","parameters":{}}});
        let options = ChatOptions {
            max_tokens: Some(800),
            temperature: Some(0.2),
            tools: vec![tool.clone()],
            ..ChatOptions::default()
        };
        let v: Value =
            serde_json::from_slice(&chat.body(&messages, &options, true).unwrap()).unwrap();
        assert_eq!(v["max_tokens"], 800);
        assert_eq!(v["temperature"], 0.2);
        assert_eq!(v["tools"], serde_json::json!([tool]));
        assert_eq!(v["stream"], true);
    }

    #[test]
    fn answers_are_parsed_or_named_bad() {
        let ok = r#"{"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hey"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1}}"#;
        let reply = parse_answer(ok, Duration::from_millis(5)).unwrap();
        assert_eq!(reply.content, "hey");
        assert_eq!(reply.model.as_deref(), Some("m"));
        assert_eq!(reply.finish_reason.as_deref(), Some("stop"));
        assert_eq!(
            (reply.prompt_tokens, reply.completion_tokens),
            (Some(3), Some(1))
        );
        for bad in [
            "<html>oops</html>",
            r#"{"choices":[]}"#,
            r#"{"choices":[{"message":{"content":null}}]}"#,
            r#"{"error":"x"}"#,
        ] {
            assert!(
                matches!(
                    parse_answer(bad, Duration::ZERO),
                    Err(LlmError::BadAnswer(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn tool_call_answers_parse_without_content() {
        let answer = r#"{"choices":[{"message":{"role":"assistant","content":null,"tool_calls":[
            {"id":"call_a","type":"function","function":{"name":"lamp","arguments":"{\"on\":true}"}},
            {"type":"function","function":{"name":"clock","arguments":{"tz":"UTC"}}},
            {"id":"nameless","type":"function","function":{"arguments":"{}"}},
            "not a call"]},"finish_reason":"tool_calls"}]}"#;
        let reply = parse_answer(answer, Duration::ZERO).unwrap();
        assert_eq!(reply.content, "");
        assert_eq!(reply.finish_reason.as_deref(), Some("tool_calls"));
        assert_eq!(
            reply.tool_calls,
            [
                ToolCall {
                    id: "call_a".into(),
                    name: "lamp".into(),
                    arguments: r#"{"on":true}"#.into()
                },
                ToolCall {
                    id: "call_1".into(),
                    name: "clock".into(),
                    arguments: r#"{"tz":"UTC"}"#.into()
                },
            ]
        );
    }

    /// Feeds `bytes` to a stream reader in reads of at most `step` bytes.
    struct Trickle<'a> {
        bytes: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.step.min(buf.len()).min(self.bytes.len());
            buf[..n].copy_from_slice(&self.bytes[..n]);
            self.bytes = &self.bytes[n..];
            Ok(n)
        }
    }

    fn read_stream(sse: &str, step: usize, on_delta: OnDelta) -> Result<ChatReply, LlmError> {
        let mut stream = SseStream::default();
        stream.read(
            Trickle {
                bytes: sse.as_bytes(),
                step,
            },
            on_delta,
        )?;
        Ok(stream.into_reply(Duration::ZERO))
    }

    fn chunk(delta: Value, finish: Option<&str>) -> String {
        let v = serde_json::json!({"model":"m","choices":[{"index":0,"delta":delta,"finish_reason":finish}]});
        format!("data: {v}\n\n")
    }

    #[test]
    fn streams_parse_whatever_the_read_boundaries() {
        // CRLF and bare CR line ends, comments, an `event:` field, an empty data line, a chunk whose JSON spans
        // two data lines, a usage-only chunk with no choices: all as services send them.
        let sse = format!(
            ": keep-alive\r\n\r\n{}{}event: message\ndata: {{\"choices\":[{{\"delta\":\ndata: {{\"content\":\"界！\"}}}}]}}\n\ndata:\n\n{}{}\rdata: {{\"choices\":[],\"usage\":{{\"prompt_tokens\":7,\"completion_tokens\":3}}}}\r\rdata: [DONE]\n\ndata: ignored after done\n\n",
            chunk(serde_json::json!({"role":"assistant","content":""}), None),
            chunk(serde_json::json!({"content":"你好，世"}), None).replace("\n\n", "\r\n\r\n"),
            chunk(serde_json::json!({"content":" ok"}), None),
            chunk(serde_json::json!({}), Some("stop")).trim_end(),
        );
        for step in [1, 2, 3, 7, 64, 8192] {
            let mut deltas = Vec::new();
            let reply = read_stream(&sse, step, &mut |d| {
                deltas.push(d.to_string());
                ControlFlow::Continue(())
            })
            .unwrap();
            assert_eq!(deltas, ["你好，世", "界！", " ok"], "step {step}");
            assert_eq!(reply.content, "你好，世界！ ok");
            assert_eq!(reply.finish_reason.as_deref(), Some("stop"));
            assert_eq!(reply.model.as_deref(), Some("m"));
            assert_eq!(
                (reply.prompt_tokens, reply.completion_tokens),
                (Some(7), Some(3))
            );
            assert!(reply.tool_calls.is_empty());
        }
    }

    #[test]
    fn streamed_tool_call_fragments_are_gathered_by_index() {
        let fragment = |index: u64, id: Option<&str>, name: Option<&str>, args: &str| {
            let mut function = serde_json::json!({"arguments": args});
            if let Some(name) = name {
                function["name"] = name.into();
            }
            let mut call =
                serde_json::json!({"index": index, "type": "function", "function": function});
            if let Some(id) = id {
                call["id"] = id.into();
            }
            chunk(serde_json::json!({"tool_calls": [call]}), None)
        };
        let sse = [
            fragment(0, Some("call_x"), Some("set_volume"), ""),
            fragment(1, None, Some("get_time"), "{}"),
            fragment(0, None, None, "{\"lev"),
            // A repeated name is not appended twice.
            fragment(0, None, Some("set_volume"), "el\": 30}"),
            chunk(serde_json::json!({}), Some("tool_calls")),
            "data: [DONE]\n\n".to_string(),
        ]
        .concat();
        for step in [1, 5, 8192] {
            let reply = read_stream(&sse, step, &mut |_| ControlFlow::Continue(())).unwrap();
            assert_eq!(reply.content, "");
            assert_eq!(reply.finish_reason.as_deref(), Some("tool_calls"));
            assert_eq!(
                reply.tool_calls,
                [
                    ToolCall {
                        id: "call_x".into(),
                        name: "set_volume".into(),
                        arguments: r#"{"level": 30}"#.into()
                    },
                    ToolCall {
                        id: "call_1".into(),
                        name: "get_time".into(),
                        arguments: "{}".into()
                    },
                ]
            );
        }
    }

    #[test]
    fn a_break_cancels_and_reads_no_further() {
        let sse = [
            chunk(serde_json::json!({"content":"one "}), None),
            chunk(serde_json::json!({"content":"two"}), None),
            "data: [DONE]\n\n".to_string(),
        ]
        .concat();
        let mut seen = Vec::new();
        let err = read_stream(&sse, 8192, &mut |d| {
            seen.push(d.to_string());
            ControlFlow::Break(())
        })
        .unwrap_err();
        assert_eq!(err, LlmError::Cancelled);
        assert_eq!(seen, ["one "]);
    }

    #[test]
    fn broken_streams_are_bad_answers() {
        let cut = chunk(serde_json::json!({"content":"half"}), None);
        for (sse, why) in [
            (cut.as_str(), "no [DONE] nor finish_reason"),
            ("data: {not json\n\n", "a chunk that is not JSON"),
            (
                "data: {\"error\":{\"message\":\"overloaded\"}}\n\n",
                "an error chunk",
            ),
            ("", "an empty body"),
        ] {
            let result = read_stream(sse, 3, &mut |_| ControlFlow::Continue(()));
            assert!(
                matches!(result, Err(LlmError::BadAnswer(_))),
                "{why}: {result:?}"
            );
        }
        // A last line without its newline still counts.
        let unterminated = format!("{}data: [DONE]", cut);
        assert_eq!(
            read_stream(&unterminated, 4, &mut |_| ControlFlow::Continue(()))
                .unwrap()
                .content,
            "half"
        );
    }

    #[test]
    fn a_passed_deadline_fails_without_a_request() {
        let chat = OpenAiChat::new("a", settings());
        let err = chat
            .chat(
                &[ChatMessage::user("hi")],
                &ChatOptions::default(),
                Instant::now(),
            )
            .unwrap_err();
        assert_eq!(err, LlmError::Timeout);
    }
}
