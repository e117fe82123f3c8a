//! The `[meeting]` section: transcript timing, summary limits and prompts, term replacement, webhook and broadcast.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `[meeting]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MeetingConfig {
    /// How often accumulated transcript is pushed to the device; shorter = livelier screen, more radio traffic.
    pub transcript_push_interval_ms: u64,
    /// After a manual `listen start` with no speech, how long before the server falls back to its own VAD.
    pub manual_listen_fallback_ms: u64,
    /// Trust the badge's VAD in meetings: it hears the room better than the server's compressed stream.
    pub prefer_device_vad: bool,
    /// A meeting recorder must not talk over the meeting.
    pub disable_tts: bool,
    /// Snippets are transcript material, not questions to the chat LLM.
    pub disable_chat_on_snippet: bool,
    /// Concurrent summary jobs; bounds LLM load when many meetings end at once.
    pub threadpool_max_workers: usize,
    /// Minutes between checkpoint summaries; also how long a suspended meeting can be resumed.
    pub checkpoint_interval_min: u64,
    /// Meetings shorter than this get no summary (accidental starts).
    pub min_duration_ms: u64,
    /// Transcript characters fed to the summary LLM; keeps prompts inside small local models' context.
    pub summary_transcript_max_chars: usize,
    pub llm: MeetingLlmConfig,
    /// Language the summary is written in; unset follows the transcript.
    pub target_lang: Option<String>,
    /// Picks `prompts.templates.<industry>` and `term_map."industry:<x>"`.
    pub industry: Option<String>,
    /// Free-text hint to the summary prompt (standup, review, ...).
    pub scenario: Option<String>,
    /// ASR fixes per scope (`"*"`, `zh`, `en`, `"industry:<x>"`): term → replacement.
    pub term_map: BTreeMap<String, BTreeMap<String, String>>,
    pub prompts: PromptsConfig,
    pub webhook: WebhookConfig,
    pub broadcast: BroadcastConfig,
    /// HTTP meeting API requests per second per IP; 0 turns the limit off.
    pub api_rate_limit: u32,
}

impl Default for MeetingConfig {
    fn default() -> Self {
        Self {
            transcript_push_interval_ms: 5000,
            manual_listen_fallback_ms: 5000,
            prefer_device_vad: true,
            disable_tts: true,
            disable_chat_on_snippet: true,
            threadpool_max_workers: 2,
            checkpoint_interval_min: 10,
            min_duration_ms: 5000,
            summary_transcript_max_chars: 4000,
            llm: MeetingLlmConfig::default(),
            target_lang: None,
            industry: None,
            scenario: None,
            term_map: BTreeMap::new(),
            prompts: PromptsConfig::default(),
            webhook: WebhookConfig::default(),
            broadcast: BroadcastConfig::default(),
            api_rate_limit: 10,
        }
    }
}

/// `[meeting.llm]`: token budgets of the summary calls.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MeetingLlmConfig {
    pub max_tokens: u32,
    /// Checkpoints are interim; a smaller budget keeps them cheap.
    pub checkpoint_max_tokens: u32,
}

impl Default for MeetingLlmConfig {
    fn default() -> Self {
        Self {
            max_tokens: 800,
            checkpoint_max_tokens: 400,
        }
    }
}

/// `[meeting.prompts]`: overrides of the built-in summary prompts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PromptsConfig {
    pub system: Option<String>,
    pub user_template: Option<String>,
    pub templates: PromptTemplates,
}

/// `[meeting.prompts.templates]`: per-industry system prompts, chosen by `meeting.industry`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PromptTemplates {
    pub tech: Option<String>,
    pub finance: Option<String>,
    pub medical: Option<String>,
    pub education: Option<String>,
    pub legal: Option<String>,
}

/// `[meeting.webhook]`: where final summaries are POSTed (PROTOCOL.md §6).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookConfig {
    /// Unset = no deliveries.
    pub url: Option<String>,
    /// HMAC key for `X-Meeting-Signature`; unset = unsigned.
    pub secret: Option<String>,
    /// Extra headers (e.g. an auth token of the receiver); may not override the protocol's own headers.
    pub headers: BTreeMap<String, String>,
}

/// Who receives a meeting's transcript besides its own device.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BroadcastMode {
    #[default]
    Off,
    Group,
    Session,
}

/// `[meeting.broadcast]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BroadcastConfig {
    pub enabled: bool,
    pub mode: BroadcastMode,
    /// Device ids allowed to receive the broadcast.
    pub allowed_targets: Vec<String>,
    /// Whether the recording device also gets its own broadcast copy.
    pub include_origin: bool,
}
