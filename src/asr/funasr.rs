//! The FunASR runtime's WebSocket protocol (`type = "funasr"`), the most
//! common self-hosted ASR for these badges.
//!
//! Wire: a JSON config frame (`mode`, `chunk_size` — audio is ignored without
//! three ints —, `hotwords` as a JSON string, `itn`, …), raw s16le PCM binary
//! frames, then `{"is_speaking":false}`. Results carry `mode`: `2pass-online`
//! partials are deltas to append; `2pass-offline`/`offline` sentences replace
//! the partials since the previous sentence.
//!
//! Known server quirks decide when a session ends: the C++ server sends
//! `is_final:false` even on its last result and the Python server inverts the
//! flag, so `is_final` is not trusted. An offline sentence after
//! `is_speaking:false`, the socket closing, or the deadline end the session
//! with whatever text has arrived.

use std::io::ErrorKind;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

use super::engine::{AsrEngine, AsrError, AsrSession};
use crate::config::FunAsr;
use crate::net::blocking_ws;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// 60 ms of PCM per binary frame, the stride of `chunk_size` [5, 10, 5].
const CHUNK_SAMPLES: usize = 960;

pub struct FunAsrEngine {
    settings: FunAsr,
}

impl FunAsrEngine {
    pub fn new(settings: FunAsr) -> Self {
        FunAsrEngine { settings }
    }
}

impl AsrEngine for FunAsrEngine {
    fn name(&self) -> &'static str {
        "funasr"
    }

    fn concurrency(&self) -> usize {
        4
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.settings.timeout_s)
    }

    fn open(&self) -> Result<Box<dyn AsrSession>, AsrError> {
        let url = &self.settings.url;
        let (host, port) = host_port(url)?;
        let addr = (host.as_str(), port)
            .to_socket_addrs()
            .map_err(|e| AsrError::Unavailable(format!("{url}: {e}")))?
            .next()
            .ok_or_else(|| AsrError::Unavailable(format!("{url}: no address")))?;
        let stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)
            .map_err(|e| AsrError::Unavailable(format!("{url}: {e}")))?;
        let io_timeout = Some(self.timeout());
        stream.set_read_timeout(io_timeout)?;
        stream.set_write_timeout(io_timeout)?;
        let (mut ws, _) = tungstenite::client(url.as_str(), stream).map_err(|e| match e {
            tungstenite::HandshakeError::Failure(e) => AsrError::Unavailable(format!("{url}: {e}")),
            tungstenite::HandshakeError::Interrupted(_) => {
                AsrError::Unavailable(format!("{url}: handshake interrupted"))
            }
        })?;
        let hotwords =
            serde_json::to_string(&self.settings.hotwords).unwrap_or_else(|_| "{}".to_string());
        let config = json!({
            "mode": self.settings.mode,
            "wav_name": "huddle",
            "wav_format": "pcm",
            "is_speaking": true,
            "chunk_size": self.settings.chunk_size,
            "chunk_interval": 10,
            "audio_fs": 16000,
            "hotwords": hotwords,
            "itn": self.settings.itn,
        });
        blocking_ws::send(&mut ws, Message::text(config.to_string())).map_err(ws_error)?;
        Ok(Box::new(FunAsrSession {
            ws,
            transcript: Transcript::default(),
            stopped: false,
        }))
    }
}

/// `ws://host:port/...` → (host, port); port 10095 when absent, the runtime's default.
fn host_port(url: &str) -> Result<(String, u16), AsrError> {
    let rest = url
        .strip_prefix("ws://")
        .ok_or_else(|| AsrError::Unavailable(format!("{url}: only ws:// is supported")))?;
    let authority = rest.split('/').next().unwrap_or(rest);
    match authority.rsplit_once(':') {
        Some((host, port)) => port
            .parse()
            .map(|p| (host.to_string(), p))
            .map_err(|_| AsrError::Unavailable(format!("{url}: bad port"))),
        None => Ok((authority.to_string(), 10095)),
    }
}

fn ws_error(e: tungstenite::Error) -> AsrError {
    match e {
        tungstenite::Error::Io(io)
            if matches!(io.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
        {
            AsrError::Timeout
        }
        other => AsrError::Unavailable(other.to_string()),
    }
}

/// Text assembled from 2pass results.
#[derive(Debug, Default, PartialEq)]
pub struct Transcript {
    /// Offline sentences, final.
    pub sentences: String,
    /// Online deltas since the last sentence, replaced by the next sentence.
    pub partial: String,
}

/// What one result frame means for the session.
#[derive(Debug, PartialEq, Eq)]
pub enum ResultKind {
    Partial,
    Sentence,
    Ignored,
}

impl Transcript {
    /// Applies one result frame.
    pub fn apply(&mut self, result: &Value) -> ResultKind {
        let text = result.get("text").and_then(Value::as_str).unwrap_or("");
        match result.get("mode").and_then(Value::as_str).unwrap_or("") {
            "2pass-online" | "online" => {
                self.partial.push_str(text);
                ResultKind::Partial
            }
            "2pass-offline" | "offline" => {
                self.sentences.push_str(text);
                self.partial.clear();
                ResultKind::Sentence
            }
            _ => ResultKind::Ignored,
        }
    }

    pub fn text(&self) -> String {
        format!("{}{}", self.sentences, self.partial)
    }

    fn is_empty(&self) -> bool {
        self.sentences.is_empty() && self.partial.is_empty()
    }
}

struct FunAsrSession {
    ws: WebSocket<TcpStream>,
    transcript: Transcript,
    /// `is_speaking:false` was sent.
    stopped: bool,
}

impl AsrSession for FunAsrSession {
    fn feed(&mut self, pcm: &[i16]) -> Result<(), AsrError> {
        let mut bytes = Vec::with_capacity(CHUNK_SAMPLES * 2);
        for chunk in pcm.chunks(CHUNK_SAMPLES) {
            bytes.clear();
            bytes.extend(chunk.iter().flat_map(|s| s.to_le_bytes()));
            blocking_ws::send(&mut self.ws, Message::binary(bytes.clone())).map_err(ws_error)?;
        }
        Ok(())
    }

    fn finish(&mut self, deadline: Instant) -> Result<String, AsrError> {
        blocking_ws::send(&mut self.ws, Message::text(r#"{"is_speaking":false}"#))
            .map_err(ws_error)?;
        self.stopped = true;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return self.end_by_timeout();
            }
            let _ = self.ws.get_mut().set_read_timeout(Some(left));
            match blocking_ws::read(&mut self.ws) {
                Ok(Message::Text(frame)) => {
                    let Ok(result) = serde_json::from_str::<Value>(frame.as_str()) else {
                        ::log::debug!("funasr sent non-JSON text; ignored");
                        continue;
                    };
                    if self.transcript.apply(&result) == ResultKind::Sentence && self.stopped {
                        let _ = self.ws.close(None);
                        return Ok(self.transcript.text());
                    }
                }
                Ok(Message::Close(_))
                | Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    return Ok(self.transcript.text());
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(io))
                    if matches!(io.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                {
                    return self.end_by_timeout();
                }
                // A reset after results is how some servers end: keep the text.
                Err(e) if !self.transcript.is_empty() => {
                    ::log::debug!("funasr ended with {e}");
                    return Ok(self.transcript.text());
                }
                Err(e) => return Err(ws_error(e)),
            }
        }
    }
}

impl FunAsrSession {
    fn end_by_timeout(&mut self) -> Result<String, AsrError> {
        if self.transcript.is_empty() {
            Err(AsrError::Timeout)
        } else {
            Ok(self.transcript.text())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn online_deltas_append_and_offline_sentences_replace_them() {
        let mut t = Transcript::default();
        assert_eq!(
            t.apply(&json!({"mode":"2pass-online","text":"登录"})),
            ResultKind::Partial
        );
        t.apply(&json!({"mode":"2pass-online","text":"页改"}));
        assert_eq!(t.text(), "登录页改");
        assert_eq!(
            t.apply(&json!({"mode":"2pass-offline","text":"登录页改成扫码。"})),
            ResultKind::Sentence
        );
        assert_eq!(t.text(), "登录页改成扫码。");
        t.apply(&json!({"mode":"2pass-online","text":"下周"}));
        assert_eq!(t.text(), "登录页改成扫码。下周");
        assert_eq!(
            t.apply(&json!({"mode":"bogus","text":"x"})),
            ResultKind::Ignored
        );
    }

    #[test]
    fn urls() {
        assert_eq!(
            host_port("ws://127.0.0.1:10095").unwrap(),
            ("127.0.0.1".to_string(), 10095)
        );
        assert_eq!(
            host_port("ws://asr.local/path").unwrap(),
            ("asr.local".to_string(), 10095)
        );
        assert!(host_port("wss://x:1").is_err());
    }
}
