//! An OpenAI-compatible chat-completions service (`[llm.<name>] type = "openai"`):
//! `POST {base_url}/chat/completions` with `{"model","messages","max_tokens","temperature","stream":false}`, answer
//! `choices[0].message.content`. Ollama, llama.cpp's server, vLLM and hosted APIs all speak it.

use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use super::client::{ChatMessage, ChatOptions, ChatReply, LlmClient, LlmError, excerpt};
use crate::config::OpenAiLlm;

/// Largest answer body read; a chat reply is a few KiB, anything far bigger is not one.
const MAX_ANSWER_BYTES: u64 = 4 << 20;

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

    fn body(&self, messages: &[ChatMessage], options: &ChatOptions) -> Result<Vec<u8>, LlmError> {
        serde_json::to_vec(&Request {
            model: &self.settings.model,
            messages,
            max_tokens: options.max_tokens.or(self.settings.max_tokens),
            temperature: options.temperature.or(self.settings.temperature),
            stream: false,
        })
        .map_err(|e| LlmError::Unavailable(format!("encoding the request: {e}")))
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

/// `choices[0].message.content` and the optional extras of a 2xx answer.
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
    let content = choice
        .get("message")
        .and_then(|m| m.get("content"))
        .and_then(Value::as_str)
        .ok_or_else(|| {
            LlmError::BadAnswer(format!(
                "no string choices[0].message.content: {}",
                excerpt(answer, EXCERPT_CHARS)
            ))
        })?;
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    let usage = json.get("usage");
    let tokens = |key: &str| usage.and_then(|u| u.get(key)).and_then(Value::as_u64);
    Ok(ChatReply {
        content: content.to_string(),
        model: text(json.get("model")),
        finish_reason: text(choice.get("finish_reason")),
        prompt_tokens: tokens("prompt_tokens"),
        completion_tokens: tokens("completion_tokens"),
        elapsed,
    })
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
        let started = Instant::now();
        let left = deadline.saturating_duration_since(started);
        if left.is_zero() {
            return Err(LlmError::Timeout);
        }
        let limit = options
            .timeout
            .unwrap_or(Duration::from_secs(self.settings.timeout_s));
        let budget = limit.min(left);
        let body = self.body(messages, options)?;
        let mut request = self
            .agent
            .post(&self.url)
            .config()
            .timeout_global(Some(budget))
            .build()
            .header("Content-Type", "application/json")
            .header("Accept", "application/json");
        if let Some(key) = self.settings.api_key.as_deref().filter(|k| !k.is_empty()) {
            request = request.header("Authorization", &format!("Bearer {key}"));
        }
        let mut response = request.send(&body[..]).map_err(transport_error)?;
        let status = response.status().as_u16();
        let answer = response
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER_BYTES)
            .read_to_string()
            .map_err(|e| match transport_error(e) {
                LlmError::Unavailable(why) if (200..300).contains(&status) => {
                    LlmError::BadAnswer(format!("reading the answer: {why}"))
                }
                other => other,
            })?;
        if !(200..300).contains(&status) {
            return Err(LlmError::Status {
                status,
                body: excerpt(answer.trim(), EXCERPT_CHARS),
            });
        }
        parse_answer(&answer, started.elapsed())
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
        let v: Value =
            serde_json::from_slice(&chat.body(&messages, &ChatOptions::default()).unwrap())
                .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"model":"qwen","messages":[{"role":"user","content":"hi"}],
                "max_tokens":512,"stream":false})
        );
        let options = ChatOptions {
            max_tokens: Some(800),
            temperature: Some(0.2),
            timeout: None,
        };
        let v: Value = serde_json::from_slice(&chat.body(&messages, &options).unwrap()).unwrap();
        assert_eq!(v["max_tokens"], 800);
        assert_eq!(v["temperature"], 0.2);
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
