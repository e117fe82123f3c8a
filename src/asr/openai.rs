//! An OpenAI-compatible transcription service (`type = "openai"`):
//! `POST {base_url}/audio/transcriptions` with a multipart WAV, JSON answer
//! `{"text": ...}`. faster-whisper-server, whisper.cpp's server, speaches and
//! hosted APIs all speak it.

use std::time::{Duration, Instant};

use super::engine::{AsrEngine, AsrError, AsrSession};
use super::wav::pcm16_wav;
use crate::config::OpenAiAsr;

pub struct OpenAiEngine {
    settings: OpenAiAsr,
    /// One agent for the process: it pools connections to the service.
    agent: ureq::Agent,
}

impl OpenAiEngine {
    pub fn new(settings: OpenAiAsr) -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(settings.timeout_s)))
            // Non-2xx answers are read and reported with their body.
            .http_status_as_error(false)
            .build()
            .into();
        OpenAiEngine { settings, agent }
    }

    fn endpoint(&self) -> String {
        format!(
            "{}/audio/transcriptions",
            self.settings.base_url.trim_end_matches('/')
        )
    }
}

impl AsrEngine for OpenAiEngine {
    fn name(&self) -> &'static str {
        "openai"
    }

    fn concurrency(&self) -> usize {
        // The service does the work; a few requests in flight keep it busy
        // without letting one slow service pile up threads here.
        4
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.settings.timeout_s)
    }

    fn open(&self) -> Result<Box<dyn AsrSession>, AsrError> {
        Ok(Box::new(OpenAiSession {
            engine: OpenAiRequest {
                agent: self.agent.clone(),
                url: self.endpoint(),
                settings: self.settings.clone(),
            },
            pcm: Vec::new(),
        }))
    }
}

struct OpenAiRequest {
    agent: ureq::Agent,
    url: String,
    settings: OpenAiAsr,
}

/// Buffers the utterance; the request is made on `finish`.
struct OpenAiSession {
    engine: OpenAiRequest,
    pcm: Vec<i16>,
}

impl AsrSession for OpenAiSession {
    fn feed(&mut self, pcm: &[i16]) -> Result<(), AsrError> {
        self.pcm.extend_from_slice(pcm);
        Ok(())
    }

    fn finish(&mut self, deadline: Instant) -> Result<String, AsrError> {
        if Instant::now() >= deadline {
            return Err(AsrError::Timeout);
        }
        let boundary = format!("huddle-{}", uuid::Uuid::new_v4().simple());
        let body = multipart_body(&boundary, &self.engine.settings, &pcm16_wav(&self.pcm));
        let mut request = self.engine.agent.post(&self.engine.url).header(
            "Content-Type",
            &format!("multipart/form-data; boundary={boundary}"),
        );
        if let Some(key) = &self.engine.settings.api_key {
            request = request.header("Authorization", &format!("Bearer {key}"));
        }
        let mut response = request.send(&body[..]).map_err(|e| match e {
            ureq::Error::Timeout(_) => AsrError::Timeout,
            other => AsrError::Unavailable(other.to_string()),
        })?;
        let status = response.status().as_u16();
        let answer = response
            .body_mut()
            .read_to_string()
            .map_err(|e| AsrError::Protocol(format!("reading the answer: {e}")))?;
        if !(200..300).contains(&status) {
            let excerpt: String = answer.chars().take(200).collect();
            return Err(AsrError::Unavailable(format!("HTTP {status}: {excerpt}")));
        }
        let json: serde_json::Value = serde_json::from_str(&answer)
            .map_err(|e| AsrError::Protocol(format!("answer is not JSON: {e}")))?;
        json.get("text")
            .and_then(|t| t.as_str())
            .map(str::to_string)
            .ok_or_else(|| AsrError::Protocol("answer has no string field text".to_string()))
    }
}

/// The multipart form: `file` (the WAV), `model`, `response_format=json`, and `language` when set.
fn multipart_body(boundary: &str, settings: &OpenAiAsr, wav: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(wav.len() + 512);
    let mut field = |name: &str, value: &str| {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    };
    field("model", &settings.model);
    field("response_format", "json");
    if let Some(language) = settings.language.as_deref().filter(|l| *l != "auto") {
        field("language", language);
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"utterance.wav\"\r\nContent-Type: audio/wav\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(wav);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_has_every_field_and_the_file() {
        let settings = OpenAiAsr {
            base_url: "http://x/v1".to_string(),
            model: "tiny.en".to_string(),
            api_key: None,
            language: Some("en".to_string()),
            timeout_s: 30,
        };
        let body = multipart_body("B", &settings, b"RIFFdata");
        let text = String::from_utf8_lossy(&body);
        assert!(text.starts_with(
            "--B\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\ntiny.en\r\n"
        ));
        assert!(text.contains("name=\"response_format\"\r\n\r\njson\r\n"));
        assert!(text.contains("name=\"language\"\r\n\r\nen\r\n"));
        assert!(text.contains(
            "filename=\"utterance.wav\"\r\nContent-Type: audio/wav\r\n\r\nRIFFdata\r\n--B--\r\n"
        ));
    }
}
