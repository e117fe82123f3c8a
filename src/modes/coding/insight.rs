//! Insights from the `coding` LLM (PROTOCOL.md §3.5). The model gets the
//! extracted signals and the stats as JSON — never the raw log — and must
//! answer JSON with exactly `insights`, `risks`, `actions`, `nextSteps`.
//! Weak, empty or non-JSON answers (or no LLM) fall back to the heuristics.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::heuristics::{Insight, fill_weak, finish, heuristic};
use super::signals::{Signals, Stats};
use crate::llm::{ChatMessage, ChatOptions, LlmClient};

pub const MAX_TOKENS: u32 = 512;
const TIMEOUT: Duration = Duration::from_secs(30);

const SYSTEM_PROMPT: &str = "You help a developer read their build and test output. You receive extracted \
signals and counters as JSON, not the log itself. Answer with one JSON object and nothing else, with exactly \
these keys: \"insights\" (what is going on, at most 5), \"risks\" (at most 4), \"actions\" (concrete things to do \
now, at most 6), \"nextSteps\" (at most 6); each a list of short strings. Write in the same language as the \
signals. Never quote log lines; name tests, modules, hosts and error kinds instead. Use empty lists only when \
nothing fits.";

/// The JSON the model sees, capped to `max_chars` characters.
pub fn model_input(signals: &Signals, stats: &Stats, max_chars: usize) -> String {
    let text = json!({"stats": stats, "signals": signals}).to_string();
    text.chars().take(max_chars).collect()
}

/// Parses the model's answer: strict JSON, else the outermost `{…}`.
pub fn parse(answer: &str) -> Option<Insight> {
    let candidates = [answer.trim().to_string(), outermost_object(answer)?];
    candidates.iter().find_map(|text| {
        let value: Value = serde_json::from_str(text).ok()?;
        let object = value.as_object()?;
        if !["insights", "risks", "actions", "nextSteps"]
            .iter()
            .any(|k| object.contains_key(*k))
        {
            return None;
        }
        serde_json::from_value(value).ok()
    })
}

fn outermost_object(text: &str) -> Option<String> {
    let start = text.find('{')?;
    let end = text.rfind('}')?;
    (end > start).then(|| text[start..=end].to_string())
}

/// What one insight run produced, with what its log line may say.
pub struct InsightOutcome {
    pub insight: Insight,
    pub llm_used: bool,
    pub elapsed_ms: u64,
}

/// Runs the LLM (when configured) and completes its answer from the heuristics.
pub fn build(
    client: Option<&dyn LlmClient>,
    signals: &Signals,
    stats: &Stats,
    max_chars: usize,
) -> InsightOutcome {
    let started = Instant::now();
    let fallback = heuristic(signals, stats);
    let from_llm = client.and_then(|client| {
        let messages = [
            ChatMessage::system(SYSTEM_PROMPT),
            ChatMessage::user(model_input(signals, stats, max_chars)),
        ];
        let options = ChatOptions {
            max_tokens: Some(MAX_TOKENS),
            temperature: None,
            timeout: Some(TIMEOUT),
            ..ChatOptions::default()
        };
        match client.chat(&messages, &options, Instant::now() + TIMEOUT) {
            Ok(reply) => parse(&reply.content),
            Err(e) => {
                ::log::info!("coding LLM unavailable ({e}); heuristic insight");
                None
            }
        }
    });
    let llm_used = from_llm.is_some();
    let insight = match from_llm {
        Some(answer) => fill_weak(answer, &fallback),
        None => finish(fallback),
    };
    InsightOutcome {
        insight,
        llm_used,
        elapsed_ms: started.elapsed().as_millis() as u64,
    }
}

/// First 8 hex digits of SHA-256 of the sent JSON: logs record this, not the content.
pub fn digest(json: &str) -> String {
    let hash = Sha256::digest(json.as_bytes());
    hash.iter().take(4).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_strict_and_wrapped_json() {
        let strict = r#"{"insights":["a"],"risks":["b"],"actions":["c"],"nextSteps":["d"]}"#;
        assert_eq!(parse(strict).unwrap().next_steps, vec!["d"]);
        let wrapped = format!("Here you go:\n```json\n{strict}\n```");
        assert_eq!(parse(&wrapped).unwrap().risks, vec!["b"]);
        assert!(parse("no idea").is_none());
        assert!(parse(r#"{"answer":42}"#).is_none());
    }
}
