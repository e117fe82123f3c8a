//! `huddle.toml`: the typed config, its defaults, loading, validation and hot reload (PROTOCOL.md §7).
//!
//! Every key has a default so the server runs with no file at all. Loading is strict (unknown keys, wrong types and
//! out-of-range values are errors naming the key) because a typo silently falling back to a default is worse than a
//! refused start. The running config lives in a [`ConfigStore`]; readers take an `Arc<Config>` snapshot.

mod error;
mod load;
mod meeting;
mod providers;
mod sections;
mod server;
mod store;
mod validate;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use error::{ConfigError, ConfigErrorKind};
pub use load::{DEFAULT_FILE, from_toml_value, load_file, load_startup, parse_toml};
pub use meeting::{
    BroadcastConfig, BroadcastMode, MeetingConfig, MeetingLlmConfig, PromptTemplates,
    PromptsConfig, WebhookConfig,
};
pub use providers::{
    AsrProvider, EarshotConfig, EspeakTts, FunAsr, LlmProvider, OpenAiAsr, OpenAiLlm, OpenAiTts,
    SileroConfig, TtsProvider, VadConfig, WhisperAsr,
};
pub use sections::{
    AudioConfig, ChatConfig, CodingConfig, EndPromptConfig, IdleConfig, LlmByMode, LlmChoice,
    LogConfig, LogLevel, PeerConfig, SelectedModule, StorageConfig, WorkflowConfig, WorkingConfig,
};
pub use server::{AuthConfig, AuthMode, AuthToken, JwtConfig, OAuth2Config, ServerConfig};
pub use store::ConfigStore;
pub use validate::validate;

/// The whole config. `Config::default()` is exactly what runs without a file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub idle: IdleConfig,
    pub end_prompt: EndPromptConfig,
    pub chat: ChatConfig,
    pub meeting: MeetingConfig,
    pub working: WorkingConfig,
    pub workflow: WorkflowConfig,
    pub coding: CodingConfig,
    pub peer: PeerConfig,
    pub llm_by_mode: LlmByMode,
    pub log: LogConfig,
    pub selected_module: SelectedModule,
    pub vad: VadConfig,
    pub audio: AudioConfig,
    /// Named ASR backends; `selected_module.asr` picks one.
    pub asr: BTreeMap<String, AsrProvider>,
    /// Named LLM backends; `selected_module.llm` and `llm_by_mode` pick them.
    pub llm: BTreeMap<String, LlmProvider>,
    /// Named TTS backends; `selected_module.tts` picks one.
    pub tts: BTreeMap<String, TtsProvider>,
}

impl Config {
    /// Idle deadline after the last activity (PROTOCOL.md §3.8): `(idle_timeout_s + idle_buffer_s) × m`, where `m`
    /// is `idle.mode_multiplier` in meeting and working mode (`multiplier_applies`) and 1 otherwise.
    pub fn idle_deadline(&self, multiplier_applies: bool) -> Duration {
        let m = if multiplier_applies {
            u64::from(self.idle.mode_multiplier)
        } else {
            1
        };
        Duration::from_secs((self.idle.idle_timeout_s + self.idle.idle_buffer_s) * m)
    }
}
