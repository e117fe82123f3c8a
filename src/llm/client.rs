//! The contract every LLM backend meets: chat messages in, one assistant reply out.
//!
//! Callers (meeting summaries, chat turns, intent, coding insight) only see [`LlmClient`]; which backend answers is
//! decided by [`super::resolve()`]. Every call carries a deadline so a slow service can never hold a worker longer than
//! its caller allows.

use std::fmt;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Who said a message, in the chat-completions sense.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

/// One message of a conversation; serializes as `{"role":"user","content":"..."}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
}

impl ChatMessage {
    pub fn system(content: impl Into<String>) -> Self {
        ChatMessage {
            role: Role::System,
            content: content.into(),
        }
    }

    pub fn user(content: impl Into<String>) -> Self {
        ChatMessage {
            role: Role::User,
            content: content.into(),
        }
    }

    pub fn assistant(content: impl Into<String>) -> Self {
        ChatMessage {
            role: Role::Assistant,
            content: content.into(),
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
}

/// The assistant's answer.
#[derive(Clone, Debug, PartialEq)]
pub struct ChatReply {
    /// `choices[0].message.content`.
    pub content: String,
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
    /// A 2xx answer we cannot use (not JSON, no `choices[0].message.content`).
    BadAnswer(String),
}

impl fmt::Display for LlmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LlmError::Unavailable(why) => write!(f, "LLM unavailable: {why}"),
            LlmError::Status { status, body } => write!(f, "LLM answered HTTP {status}: {body}"),
            LlmError::Timeout => write!(f, "LLM timed out"),
            LlmError::BadAnswer(why) => write!(f, "LLM answer unusable: {why}"),
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

    /// Streamed completion: `on_delta` gets the text as it arrives and the whole reply is returned at the end.
    ///
    /// The default makes one [`chat`](Self::chat) call and delivers its content as a single delta, so every client
    /// already supports the streaming call shape; backends that can stream (chat turns) override it.
    fn chat_stream(
        &self,
        messages: &[ChatMessage],
        options: &ChatOptions,
        deadline: Instant,
        on_delta: &mut dyn FnMut(&str),
    ) -> Result<ChatReply, LlmError> {
        let reply = self.chat(messages, options, deadline)?;
        if !reply.content.is_empty() {
            on_delta(&reply.content);
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
                model: None,
                finish_reason: None,
                prompt_tokens: None,
                completion_tokens: None,
                elapsed: Duration::ZERO,
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
    fn default_stream_delivers_the_whole_reply_once() {
        let mut deltas = Vec::new();
        let reply = Echo
            .chat_stream(
                &[ChatMessage::user("hi")],
                &ChatOptions::default(),
                Instant::now() + Duration::from_secs(1),
                &mut |d| deltas.push(d.to_string()),
            )
            .unwrap();
        assert_eq!(reply.content, "hi");
        assert_eq!(deltas, ["hi"]);
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
    }
}
