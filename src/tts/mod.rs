//! Text-to-speech for the badge's speaker (PROTOCOL.md §2.4 downlink audio, §3.1 `tts` messages, §7
//! `[tts.<name>]`, `selected_module.tts`).
//!
//! A chat turn's answer is cut into sentences ([`crate::modes::chat::sentences`]); each sentence goes through
//! the engine [`resolve()`] picks ([`Tts::synthesize`], 16 kHz mono PCM by a deadline) and then through one
//! [`SpeechEncoder`] per turn into 60 ms Opus packets for the downlink.
//!
//! - [`engine`]: the [`Tts`] contract, [`TtsError`].
//! - [`resolve`](mod@resolve): `selected_module.tts` → engine, and the process-wide instance cache.
//! - [`espeak`]: local `espeak-ng`, one child process per sentence.
//! - [`openai`]: OpenAI-compatible `POST {base_url}/audio/speech`.
//! - [`wav`]: engine answers (streamed WAV headers included) to mono PCM.
//! - [`resample`](mod@resample): band-limited conversion of any rate to 16 kHz.
//! - [`encode`]: PCM to 60 ms Opus packets.
//! - [`notify`]: the stop-TTS notify sound (an MP3 or WAV file, or the built-in chime) as Opus packets.

pub mod encode;
pub mod engine;
pub mod espeak;
pub mod notify;
pub mod openai;
pub mod resample;
pub mod resolve;
pub mod wav;

pub use encode::{FRAME_SAMPLES, SpeechEncoder};
pub use engine::{SAMPLE_RATE, Tts, TtsError};
pub use espeak::EspeakEngine;
pub use openai::OpenAiSpeech;
pub use resolve::{TtsRegistry, cache_key, clear_cache, resolve, selected};
