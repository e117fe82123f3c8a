//! The contract every speech engine meets ([`Tts`]) and how a synthesis fails ([`TtsError`]).

use std::fmt;
use std::time::Instant;

/// Rate of the PCM every engine returns: the protocol's audio rate (PROTOCOL.md §2.4).
pub const SAMPLE_RATE: u32 = crate::audio::opus::SAMPLE_RATE;

/// A text-to-speech backend. Shared by every connection, so calls take `&self` and hold no per-call state.
pub trait Tts: Send + Sync {
    /// The `[tts.<name>]` alias, for logs.
    fn name(&self) -> &str;

    /// Speaks `text` as 16 kHz mono s16 PCM, giving up with [`TtsError::Timeout`] once `deadline` passes.
    /// Empty text gives empty audio.
    fn synthesize(&self, text: &str, deadline: Instant) -> Result<Vec<i16>, TtsError>;
}

/// Why no audio came back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TtsError {
    /// The engine cannot run at all here (its program is not installed).
    Unavailable,
    /// The engine ran and refused or crashed; the text says how (exit status, HTTP status and body excerpt).
    Failed(String),
    /// No complete answer before the deadline; the work was cancelled.
    Timeout,
    /// An answer came back but is not audio we can read.
    BadAudio(String),
}

impl fmt::Display for TtsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TtsError::Unavailable => f.write_str("TTS engine unavailable"),
            TtsError::Failed(why) => write!(f, "TTS failed: {why}"),
            TtsError::Timeout => f.write_str("TTS timed out"),
            TtsError::BadAudio(why) => write!(f, "TTS audio unusable: {why}"),
        }
    }
}

impl std::error::Error for TtsError {}

/// Error bodies and stderr go to logs cut short, as the LLM client's are.
pub(crate) use crate::llm::client::excerpt;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_say_what_happened() {
        assert_eq!(TtsError::Unavailable.to_string(), "TTS engine unavailable");
        assert_eq!(TtsError::Timeout.to_string(), "TTS timed out");
        assert_eq!(
            TtsError::Failed("HTTP 500: boom".into()).to_string(),
            "TTS failed: HTTP 500: boom"
        );
        assert_eq!(
            TtsError::BadAudio("no data chunk".into()).to_string(),
            "TTS audio unusable: no data chunk"
        );
    }

    #[test]
    fn excerpts_cut_on_char_boundaries() {
        assert_eq!(excerpt("abc", 5), "abc");
        assert_eq!(excerpt("语音合成失败", 2), "语音…");
    }
}
