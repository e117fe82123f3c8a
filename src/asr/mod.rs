//! Speech recognition (ASR): turns each finished utterance into text with a
//! real engine, off the connection threads, and sends the text back to the
//! connection as an event.
//!
//! - [`engine`]: the `AsrEngine`/`AsrSession` traits every engine implements
//!   (open a session → feed PCM → finish → final text → close on drop).
//! - [`stage`]: the bounded job pool fed by the audio workers, with backoff on
//!   repeated engine failures.
//! - [`openai`]: an OpenAI-compatible `POST /audio/transcriptions` service.
//! - [`funasr`]: the FunASR runtime's streaming WebSocket protocol.
//! - [`whisper`]: embedded whisper.cpp (feature `whisper`).
//! - [`wav`], [`text`], [`stats`]: WAV bodies, result cleaning, metrics.
//!
//! Every utterance gets its own session, opened when the utterance reaches the
//! stage and closed when its text is out: an upstream connection is never
//! reused after it ended or failed, which is the classic "second meeting gets
//! no recognition" failure of servers that keep one session per device.

pub mod engine;
pub mod funasr;
pub mod openai;
pub mod stage;
pub mod stats;
pub mod text;
pub mod wav;
#[cfg(feature = "whisper")]
pub mod whisper;

use std::sync::Arc;

pub use engine::{AsrEngine, AsrError, AsrSession};

use crate::config::{AsrProvider, Config, WhisperAsr};

/// The engine `selected_module.asr` names, built at start-up. `Ok(None)` means
/// recognition is off; a missing model or table is a warning, never a failed start.
pub fn resolve(config: &Config) -> Result<Option<Arc<dyn AsrEngine>>, String> {
    let name = config.selected_module.asr.as_str();
    if name == "none" {
        return Ok(None);
    }
    let provider = match config.asr.get(name) {
        Some(provider) => provider.clone(),
        // The embedded engine works without a table: its defaults point at the fetched model.
        None if name == "whisper" => AsrProvider::Whisper(WhisperAsr::default()),
        None => {
            return Err(format!(
                "selected_module.asr = {name:?} names no [asr.{name}] table; recognition is off"
            ));
        }
    };
    let engine: Arc<dyn AsrEngine> = match provider {
        AsrProvider::Openai(settings) => Arc::new(openai::OpenAiEngine::new(settings)),
        AsrProvider::Funasr(settings) => Arc::new(funasr::FunAsrEngine::new(settings)),
        AsrProvider::Whisper(settings) => whisper_engine(settings)?,
    };
    Ok(Some(engine))
}

#[cfg(feature = "whisper")]
fn whisper_engine(settings: WhisperAsr) -> Result<Arc<dyn AsrEngine>, String> {
    if !std::path::Path::new(&settings.model).exists() {
        return Err(format!(
            "asr whisper model {} not found (run tools/fetch_models.sh); recognition is off",
            settings.model
        ));
    }
    Ok(Arc::new(whisper::WhisperEngine::load(settings)?))
}

#[cfg(not(feature = "whisper"))]
fn whisper_engine(_settings: WhisperAsr) -> Result<Arc<dyn AsrEngine>, String> {
    Err("this build has no embedded whisper (feature `whisper`); recognition is off".to_string())
}
