//! Embedded whisper.cpp (`type = "whisper"`, feature `whisper`): the default
//! engine, in-process and offline. Decodes one utterance at a time on the ASR
//! stage's thread (never on a connection thread) with greedy sampling and no
//! temperature fallback, so noise cannot send it into retry loops; a deadline
//! aborts a decode that runs long.

use std::time::{Duration, Instant};

use whisper_rs::{FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters};

use super::engine::{AsrEngine, AsrError, AsrSession};
use crate::config::WhisperAsr;

pub struct WhisperEngine {
    settings: WhisperAsr,
    /// The loaded model, shared by every session (each gets its own state).
    context: std::sync::Arc<WhisperContext>,
}

impl WhisperEngine {
    pub fn load(settings: WhisperAsr) -> Result<Self, String> {
        let started = Instant::now();
        let context =
            WhisperContext::new_with_params(&settings.model, WhisperContextParameters::default())
                .map_err(|e| format!("asr whisper model {}: {e}", settings.model))?;
        ::log::info!(
            "whisper model {} loaded in {} ms",
            settings.model,
            started.elapsed().as_millis()
        );
        Ok(WhisperEngine {
            settings,
            context: std::sync::Arc::new(context),
        })
    }
}

impl AsrEngine for WhisperEngine {
    fn name(&self) -> &'static str {
        "whisper"
    }

    fn concurrency(&self) -> usize {
        // ggml threads spin while they wait; on a small box one decode at a
        // time with `threads` threads beats parallel decodes fighting for cores.
        1
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.settings.timeout_s)
    }

    fn open(&self) -> Result<Box<dyn AsrSession>, AsrError> {
        Ok(Box::new(WhisperSession {
            context: std::sync::Arc::clone(&self.context),
            settings: self.settings.clone(),
            samples: Vec::new(),
        }))
    }
}

struct WhisperSession {
    context: std::sync::Arc<WhisperContext>,
    settings: WhisperAsr,
    /// whisper.cpp takes f32 in [-1, 1].
    samples: Vec<f32>,
}

impl AsrSession for WhisperSession {
    fn feed(&mut self, pcm: &[i16]) -> Result<(), AsrError> {
        self.samples
            .extend(pcm.iter().map(|s| f32::from(*s) / 32768.0));
        Ok(())
    }

    fn finish(&mut self, deadline: Instant) -> Result<String, AsrError> {
        // whisper.cpp wants at least 1 s of audio; pad short utterances with silence.
        if self.samples.len() < 16_000 {
            self.samples.resize(16_100, 0.0);
        }
        let mut state = self
            .context
            .create_state()
            .map_err(|e| AsrError::Unavailable(format!("whisper state: {e}")))?;
        let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
        params.set_n_threads(self.settings.threads as i32);
        let language =
            (self.settings.language != "auto").then_some(self.settings.language.as_str());
        params.set_language(language.or(Some("auto")));
        params.set_translate(false);
        params.set_no_context(true);
        params.set_temperature_inc(0.0);
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_special(false);
        params.set_print_timestamps(false);
        params.set_suppress_blank(true);
        params.set_abort_callback_safe(move || Instant::now() >= deadline);
        state.full(params, &self.samples).map_err(|e| {
            if Instant::now() >= deadline {
                AsrError::Timeout
            } else {
                AsrError::Protocol(format!("whisper: {e}"))
            }
        })?;
        let mut text = String::new();
        for segment in state.as_iter() {
            let Ok(segment) = segment.to_str_lossy() else {
                continue;
            };
            // whisper marks non-speech as `[BLANK_AUDIO]`, `(music)`…: not words.
            let trimmed = segment.trim();
            let annotation = (trimmed.starts_with('[') && trimmed.ends_with(']'))
                || (trimmed.starts_with('(') && trimmed.ends_with(')'));
            if !annotation {
                text.push_str(&segment);
            }
        }
        Ok(text.trim().to_string())
    }
}
