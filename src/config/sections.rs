//! The smaller config sections: storage, idle, end_prompt, chat, working, workflow, coding, peer, llm_by_mode, log
//! and selected_module.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// `[storage]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Root of meetings, journals and memory (PROTOCOL.md §4); ⟲ because open files and recovery depend on it.
    pub data_dir: PathBuf,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data"),
        }
    }
}

/// `[idle]`: when a silent connection is warned and closed (PROTOCOL.md §3.8); badges run on batteries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdleConfig {
    pub idle_timeout_s: u64,
    /// Grace added to the timeout so a user mid-sentence is not cut off exactly at the limit.
    pub idle_buffer_s: u64,
    /// How long before the deadline the device is warned.
    pub warning_s: u64,
    /// Meetings and working sessions are long and quiet by nature, so their deadline is multiplied.
    pub mode_multiplier: u32,
}

impl Default for IdleConfig {
    fn default() -> Self {
        Self {
            idle_timeout_s: 600,
            idle_buffer_s: 60,
            warning_s: 15,
            mode_multiplier: 3,
        }
    }
}

/// `[end_prompt]`: the spoken goodbye before an idle close.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EndPromptConfig {
    pub enable: bool,
    /// Instruction to the LLM for the goodbye turn.
    pub prompt: String,
}

impl Default for EndPromptConfig {
    fn default() -> Self {
        Self {
            enable: true,
            prompt: "用一两句温暖、不舍的话和用户道别。".to_string(),
        }
    }
}

/// `[chat]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChatConfig {
    /// Wake words the firmware may send as the first text; they start a turn instead of being asked to the LLM.
    pub wakeup_words: Vec<String>,
    /// Answer a wake word with a greeting.
    pub enable_greeting: bool,
    /// Play a short sound at the end of each spoken answer, before `tts stop`, so the user knows it is their turn.
    pub enable_stop_tts_notify: bool,
    /// That sound: an MP3 or WAV file of at most 5 s; at the default path a missing file means the built-in chime.
    pub stop_tts_notify_voice: String,
    /// Utterances that end the conversation.
    pub exit_commands: Vec<String>,
}

impl Default for ChatConfig {
    fn default() -> Self {
        Self {
            wakeup_words: strings(&[
                "你好小智",
                "嘿你好呀",
                "你好小志",
                "小爱同学",
                "你好小鑫",
                "你好小新",
                "小美同学",
                "小龙小龙",
                "喵喵同学",
                "小滨小滨",
                "小冰小冰",
            ]),
            enable_greeting: true,
            enable_stop_tts_notify: false,
            stop_tts_notify_voice: crate::tts::notify::DEFAULT_PATH.to_string(),
            exit_commands: strings(&["退出", "关闭"]),
        }
    }
}

/// `[working]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkingConfig {
    /// Working mode is hands-busy task tracking; spoken answers would interrupt the work.
    pub disable_tts: bool,
}

impl Default for WorkingConfig {
    fn default() -> Self {
        Self { disable_tts: true }
    }
}

/// `[workflow]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkflowConfig {
    /// Device id → human name shown in task lists.
    pub device_alias: BTreeMap<String, String>,
    /// Enables test-only behaviour such as the register snapshot delay.
    pub test_mode: bool,
    /// Delay of the snapshot sent on register; only used with `test_mode`, to make races reproducible.
    pub snapshot_on_register_delay_ms: u64,
}

/// `[coding]`: the coding-insight assistant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CodingConfig {
    pub insight_enabled: bool,
    /// Quiet time after the last log line before an insight is requested; avoids one LLM call per line.
    pub insight_debounce_ms: u64,
    /// Longer pushed lines are truncated.
    pub per_message_max_len: usize,
    /// Lines of history kept per connection.
    pub history_max_lines: usize,
    /// Characters of history sent to the LLM.
    pub insight_max_chars: usize,
    pub insight_max_items: usize,
    pub summary_max_items: usize,
}

impl Default for CodingConfig {
    fn default() -> Self {
        Self {
            insight_enabled: true,
            insight_debounce_ms: 1200,
            per_message_max_len: 512,
            history_max_lines: 200,
            insight_max_chars: 1600,
            insight_max_items: 5,
            summary_max_items: 6,
        }
    }
}

/// `[peer]`: device-to-device messaging (phase 2; parsed now so phase-2 configs already load).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PeerConfig {
    pub enabled: bool,
    /// Let every device message every other one, ignoring roles and the allowlist.
    pub allow_all: bool,
    pub allow_broadcast: bool,
    /// Turn peer messages that look like tasks into workflow tasks.
    pub peer_task_to_workflow: bool,
    pub allowlist: Vec<String>,
    /// Fan-out cap of one message.
    pub max_targets: usize,
    /// Device id → role name.
    pub device_roles: BTreeMap<String, String>,
    /// Role → what it may reach; free-form until phase 2 fixes the shape.
    pub roles_grants: toml::Table,
    /// Group rules; free-form until phase 2 fixes the shape.
    pub group_rules: toml::Table,
}

impl Default for PeerConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            allow_all: false,
            allow_broadcast: false,
            peer_task_to_workflow: false,
            allowlist: Vec::new(),
            max_targets: 10,
            device_roles: BTreeMap::new(),
            roles_grants: toml::Table::new(),
            group_rules: toml::Table::new(),
        }
    }
}

/// Which LLM a mode uses: a bare alias (`"local"`) or `{ alias = "local", overrides = { temperature = 0.2 } }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LlmChoice {
    Alias(String),
    Table {
        alias: String,
        /// Per-mode parameter overrides merged over the `[llm.<alias>]` table; instances are shared per
        /// alias + canonical overrides.
        #[serde(default)]
        overrides: toml::Table,
    },
}

impl LlmChoice {
    pub fn alias(&self) -> &str {
        match self {
            LlmChoice::Alias(a) | LlmChoice::Table { alias: a, .. } => a,
        }
    }
}

/// `[llm_by_mode]`: per-mode LLM choice; unset falls back to `default`, then `selected_module.llm`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LlmByMode {
    pub default: Option<LlmChoice>,
    pub chat: Option<LlmChoice>,
    pub meeting: Option<LlmChoice>,
    pub coding: Option<LlmChoice>,
    pub working: Option<LlmChoice>,
    pub intent: Option<LlmChoice>,
    pub memory: Option<LlmChoice>,
}

/// `log.level` values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Error,
    Warn,
    #[default]
    Info,
    Debug,
    Trace,
    Off,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
            LogLevel::Off => "off",
        }
    }

    pub fn to_filter(self) -> log::LevelFilter {
        match self {
            LogLevel::Error => log::LevelFilter::Error,
            LogLevel::Warn => log::LevelFilter::Warn,
            LogLevel::Info => log::LevelFilter::Info,
            LogLevel::Debug => log::LevelFilter::Debug,
            LogLevel::Trace => log::LevelFilter::Trace,
            LogLevel::Off => log::LevelFilter::Off,
        }
    }
}

/// `[log]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    pub level: LogLevel,
    /// Longer messages keep head and tail, so a transcript dump cannot flood the log.
    pub max_message_length: usize,
    /// Optional log file written in addition to stderr (not in PROTOCOL.md §7; added for unattended installs).
    pub file: Option<String>,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: LogLevel::Info,
            max_message_length: 2000,
            file: None,
        }
    }
}

/// `[selected_module]`: which named provider table each pipeline stage uses; `"none"` disables the stage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SelectedModule {
    pub vad: String,
    /// `"whisper"` by default: the ASR module checks at start-up that the model file is there and, when it is
    /// not, logs a warning and runs without recognition (PROTOCOL.md §7: `"none"` unless a model is present).
    pub asr: String,
    pub llm: String,
    pub tts: String,
    /// How voice commands are recognised; `"llm"` asks the intent LLM.
    pub intent: String,
}

impl Default for SelectedModule {
    fn default() -> Self {
        Self {
            vad: "earshot".to_string(),
            asr: "whisper".to_string(),
            llm: "none".to_string(),
            tts: "none".to_string(),
            intent: "llm".to_string(),
        }
    }
}

/// `[audio]`: the audio worker pool (not in PROTOCOL.md §7; added with the audio pipeline). ⟲ because the
/// pool and the rings are sized once at start-up.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AudioConfig {
    /// Decode/VAD worker threads; 0 = one per core. More than the cores only adds context switches.
    pub workers: usize,
    /// Size of each streaming device's uplink ring in KiB. 64 KiB holds ~25 s of typical 60 ms voice packets or
    /// ~2 s of fullband CELT, so a briefly stalled worker drops nothing.
    pub ring_kib: usize,
}

impl Default for AudioConfig {
    fn default() -> Self {
        Self {
            workers: 0,
            ring_kib: 64,
        }
    }
}
