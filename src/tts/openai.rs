//! An OpenAI-compatible speech service (`[tts.<name>] type = "openai"`): `POST {base_url}/audio/speech` with
//! `{"model","input","voice","response_format":"wav"}`, answer a WAV file at any rate, mono or stereo, which is
//! mixed down and resampled to 16 kHz.

use std::time::Instant;

use serde::Serialize;

use super::engine::{Tts, TtsError, excerpt};
use super::{resample, wav};
use crate::config::OpenAiTts;

/// Largest answer read: a minute of 48 kHz stereo float is 23 MiB, a sentence far less.
const MAX_ANSWER_BYTES: u64 = 32 << 20;

/// Characters of a failed answer kept in the error.
const EXCERPT_CHARS: usize = 200;

/// One configured speech backend. Cheap to share: the agent pools connections and holds no call state.
pub struct OpenAiSpeech {
    alias: String,
    settings: OpenAiTts,
    url: String,
    agent: ureq::Agent,
}

/// The request body; an unset voice is left out so the service picks its default.
#[derive(Serialize)]
struct Request<'a> {
    model: &'a str,
    input: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    voice: Option<&'a str>,
    response_format: &'a str,
}

impl OpenAiSpeech {
    /// `alias` is the `[tts.<alias>]` name, used in logs.
    pub fn new(alias: impl Into<String>, settings: OpenAiTts) -> Self {
        let agent = ureq::Agent::config_builder()
            // Non-2xx answers are read and reported with their body.
            .http_status_as_error(false)
            .build()
            .into();
        let url = format!("{}/audio/speech", settings.base_url.trim_end_matches('/'));
        OpenAiSpeech {
            alias: alias.into(),
            settings,
            url,
            agent,
        }
    }

    pub fn settings(&self) -> &OpenAiTts {
        &self.settings
    }

    /// The endpoint called.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn body(&self, text: &str) -> Result<Vec<u8>, TtsError> {
        serde_json::to_vec(&Request {
            model: &self.settings.model,
            input: text,
            voice: self.settings.voice.as_deref().filter(|v| !v.is_empty()),
            response_format: "wav",
        })
        .map_err(|e| TtsError::Failed(format!("encoding the request: {e}")))
    }
}

fn transport_error(url: &str, e: ureq::Error) -> TtsError {
    match e {
        ureq::Error::Timeout(_) => TtsError::Timeout,
        ureq::Error::Io(io)
            if matches!(
                io.kind(),
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
            ) =>
        {
            TtsError::Timeout
        }
        other => TtsError::Failed(format!("{url}: {other}")),
    }
}

impl Tts for OpenAiSpeech {
    fn name(&self) -> &str {
        &self.alias
    }

    fn synthesize(&self, text: &str, deadline: Instant) -> Result<Vec<i16>, TtsError> {
        if text.trim().is_empty() {
            return Ok(Vec::new());
        }
        let budget = deadline.saturating_duration_since(Instant::now());
        if budget.is_zero() {
            return Err(TtsError::Timeout);
        }
        let body = self.body(text)?;
        let mut request = self
            .agent
            .post(&self.url)
            .config()
            // Covers connect, send, the wait for an answer and reading it: the whole call ends by the deadline.
            .timeout_global(Some(budget))
            .build()
            .header("Content-Type", "application/json")
            .header("Accept", "audio/wav");
        if let Some(key) = self.settings.api_key.as_deref().filter(|k| !k.is_empty()) {
            request = request.header("Authorization", &format!("Bearer {key}"));
        }
        let mut response = request
            .send(&body[..])
            .map_err(|e| transport_error(&self.url, e))?;
        let status = response.status().as_u16();
        let answer = response
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER_BYTES)
            .read_to_vec()
            .map_err(|e| transport_error(&self.url, e))?;
        if !(200..300).contains(&status) {
            let said = String::from_utf8_lossy(&answer);
            return Err(TtsError::Failed(format!(
                "{} answered HTTP {status}: {}",
                self.url,
                excerpt(said.trim(), EXCERPT_CHARS)
            )));
        }
        let decoded = wav::decode(&answer)?;
        Ok(resample::to_16k(&decoded.samples, decoded.sample_rate))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn settings(voice: Option<&str>) -> OpenAiTts {
        OpenAiTts {
            base_url: "http://127.0.0.1:1/v1/".to_string(),
            model: "tts-1".to_string(),
            voice: voice.map(str::to_string),
            api_key: None,
        }
    }

    #[test]
    fn url_joins_without_double_slash() {
        assert_eq!(
            OpenAiSpeech::new("a", settings(None)).url(),
            "http://127.0.0.1:1/v1/audio/speech"
        );
    }

    #[test]
    fn body_asks_for_wav_and_omits_an_unset_voice() {
        let v: Value =
            serde_json::from_slice(&OpenAiSpeech::new("a", settings(None)).body("hi").unwrap())
                .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"model":"tts-1","input":"hi","response_format":"wav"})
        );
        let v: Value = serde_json::from_slice(
            &OpenAiSpeech::new("a", settings(Some("alloy")))
                .body("你好")
                .unwrap(),
        )
        .unwrap();
        assert_eq!(v["voice"], "alloy");
        assert_eq!(v["input"], "你好");
    }

    #[test]
    fn unreachable_service_fails_and_past_deadline_times_out() {
        let speech = OpenAiSpeech::new("a", settings(None));
        let soon = Instant::now() + std::time::Duration::from_secs(5);
        assert!(matches!(
            speech.synthesize("hi", soon),
            Err(TtsError::Failed(_))
        ));
        assert_eq!(
            speech.synthesize("hi", Instant::now()),
            Err(TtsError::Timeout)
        );
        assert_eq!(speech.synthesize("", soon), Ok(Vec::new()));
    }
}
