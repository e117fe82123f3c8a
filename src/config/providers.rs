//! Engine settings: `[vad.*]` and the named provider tables `[asr.<name>]`, `[llm.<name>]`, `[tts.<name>]`.
//!
//! Provider tables are maps so one file can describe several backends and `selected_module` / `llm_by_mode` pick
//! between them by name; the `type` key says which backend a table configures.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// `[vad]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VadConfig {
    /// The built-in engine, always available.
    pub earshot: EarshotConfig,
    /// Optional ONNX engine; absent unless configured because it needs a model file.
    pub silero: Option<SileroConfig>,
}

/// `[vad.earshot]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EarshotConfig {
    /// Speech probability above which a frame counts as voice.
    pub threshold: f64,
    /// Silence that ends an utterance; too short chops sentences at breaths.
    pub min_silence_duration_ms: u64,
    /// Voice shorter than this is noise (a cough, a click), not an utterance.
    pub min_speech_ms: u64,
}

impl Default for EarshotConfig {
    fn default() -> Self {
        Self {
            threshold: 0.5,
            min_silence_duration_ms: 200,
            min_speech_ms: 150,
        }
    }
}

/// `[vad.silero]`: same knobs as earshot plus the model file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SileroConfig {
    /// Path of the ONNX model; unset or missing is a startup warning and VAD falls back to earshot.
    pub model: Option<String>,
    pub threshold: f64,
    pub min_silence_duration_ms: u64,
    pub min_speech_ms: u64,
}

impl Default for SileroConfig {
    fn default() -> Self {
        let e = EarshotConfig::default();
        Self {
            model: None,
            threshold: e.threshold,
            min_silence_duration_ms: e.min_silence_duration_ms,
            min_speech_ms: e.min_speech_ms,
        }
    }
}

fn s(v: &str) -> String {
    v.to_string()
}
fn default_whisper_model() -> String {
    s("models/ggml-tiny.en-q8_0.bin")
}
fn default_auto() -> String {
    s("auto")
}
fn default_one() -> u32 {
    1
}
fn default_true() -> bool {
    true
}
fn default_timeout_30() -> u64 {
    30
}
fn default_timeout_10() -> u64 {
    10
}
fn default_timeout_60() -> u64 {
    60
}
fn default_funasr_url() -> String {
    s("ws://127.0.0.1:10095")
}
fn default_funasr_mode() -> String {
    s("2pass")
}
fn default_chunk_size() -> Vec<u32> {
    vec![5, 10, 5]
}
fn default_espeak_voice() -> String {
    s("en-us")
}

/// One `[asr.<name>]` table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum AsrProvider {
    Whisper(WhisperAsr),
    Openai(OpenAiAsr),
    Funasr(FunAsr),
}

/// `type = "whisper"`: embedded whisper.cpp.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WhisperAsr {
    /// ggml model file.
    #[serde(default = "default_whisper_model")]
    pub model: String,
    #[serde(default = "default_auto")]
    pub language: String,
    /// Threads per decode; decodes already run in parallel per connection.
    #[serde(default = "default_one")]
    pub threads: u32,
    #[serde(default = "default_timeout_30")]
    pub timeout_s: u64,
}

impl Default for WhisperAsr {
    fn default() -> Self {
        WhisperAsr {
            model: default_whisper_model(),
            language: default_auto(),
            threads: default_one(),
            timeout_s: default_timeout_30(),
        }
    }
}

/// `type = "openai"`: `POST {base_url}/audio/transcriptions`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenAiAsr {
    pub base_url: String,
    pub model: String,
    /// Local OpenAI-compatible servers usually need none.
    #[serde(default)]
    pub api_key: Option<String>,
    /// Unset lets the service detect the language.
    #[serde(default)]
    pub language: Option<String>,
    #[serde(default = "default_timeout_30")]
    pub timeout_s: u64,
}

/// `type = "funasr"`: FunASR runtime over WebSocket.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunAsr {
    #[serde(default = "default_funasr_url")]
    pub url: String,
    /// `2pass` gives fast partials and accurate finals.
    #[serde(default = "default_funasr_mode")]
    pub mode: String,
    #[serde(default = "default_chunk_size")]
    pub chunk_size: Vec<u32>,
    /// Word → boost weight.
    #[serde(default)]
    pub hotwords: BTreeMap<String, u32>,
    /// Inverse text normalization ("twenty" → "20").
    #[serde(default = "default_true")]
    pub itn: bool,
    #[serde(default = "default_timeout_10")]
    pub timeout_s: u64,
}

/// One `[llm.<name>]` table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum LlmProvider {
    Openai(OpenAiLlm),
}

/// `type = "openai"`: chat completions, streamed for chat turns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenAiLlm {
    pub base_url: String,
    pub model: String,
    #[serde(default)]
    pub api_key: Option<String>,
    #[serde(default = "default_timeout_60")]
    pub timeout_s: u64,
    /// Unset = the service default; callers such as meeting summaries pass their own.
    #[serde(default)]
    pub max_tokens: Option<u32>,
    #[serde(default)]
    pub temperature: Option<f64>,
}

/// One `[tts.<name>]` table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum TtsProvider {
    Espeak(EspeakTts),
    Openai(OpenAiTts),
}

/// `type = "espeak"`: local espeak-ng, no network needed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EspeakTts {
    #[serde(default = "default_espeak_voice")]
    pub voice: String,
    /// Words per minute; unset = espeak's default.
    #[serde(default)]
    pub rate: Option<u32>,
}

/// `type = "openai"`: `POST {base_url}/audio/speech`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenAiTts {
    pub base_url: String,
    pub model: String,
    /// Unset = the service default voice.
    #[serde(default)]
    pub voice: Option<String>,
    #[serde(default)]
    pub api_key: Option<String>,
}

/// Deserializes a table body (without `type`) as the struct of `kind`; `None` when `kind` is not a known type.
///
/// Serde's internally tagged enums buffer their content, which loses the path of an error inside a provider table;
/// the loader runs this first so such errors still name e.g. `asr.local.timeout_s`.
pub(crate) type BodyCheck = fn(&str, toml::Value) -> Option<Result<(), PathError>>;

pub(crate) type PathError = serde_path_to_error::Error<toml::de::Error>;

fn body<T: DeserializeOwned>(v: toml::Value) -> Option<Result<(), PathError>> {
    Some(serde_path_to_error::deserialize::<_, T>(v).map(|_| ()))
}

pub(crate) fn check_asr(kind: &str, v: toml::Value) -> Option<Result<(), PathError>> {
    match kind {
        "whisper" => body::<WhisperAsr>(v),
        "openai" => body::<OpenAiAsr>(v),
        "funasr" => body::<FunAsr>(v),
        _ => None,
    }
}

pub(crate) fn check_llm(kind: &str, v: toml::Value) -> Option<Result<(), PathError>> {
    match kind {
        "openai" => body::<OpenAiLlm>(v),
        _ => None,
    }
}

pub(crate) fn check_tts(kind: &str, v: toml::Value) -> Option<Result<(), PathError>> {
    match kind {
        "espeak" => body::<EspeakTts>(v),
        "openai" => body::<OpenAiTts>(v),
        _ => None,
    }
}

/// Provider sections with their accepted `type` values, for the loader's pre-check and its error messages.
pub(crate) const PROVIDER_SECTIONS: [(&str, &[&str], BodyCheck); 3] = [
    ("asr", &["whisper", "openai", "funasr"], check_asr),
    ("llm", &["openai"], check_llm),
    ("tts", &["espeak", "openai"], check_tts),
];

impl AsrProvider {
    pub fn type_name(&self) -> &'static str {
        match self {
            AsrProvider::Whisper(_) => "whisper",
            AsrProvider::Openai(_) => "openai",
            AsrProvider::Funasr(_) => "funasr",
        }
    }
}

impl LlmProvider {
    pub fn type_name(&self) -> &'static str {
        match self {
            LlmProvider::Openai(_) => "openai",
        }
    }
}

impl TtsProvider {
    pub fn type_name(&self) -> &'static str {
        match self {
            TtsProvider::Espeak(_) => "espeak",
            TtsProvider::Openai(_) => "openai",
        }
    }
}
