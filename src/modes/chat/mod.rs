//! Spoken conversation (PROTOCOL.md §3.1): what the server answers when an
//! utterance is not a meeting segment and not a task command.
//!
//! - [`conversation`]: the per-connection history sent with each turn, kept
//!   under a character budget.
//! - [`service`]: the assistant workers that call the intent and chat LLMs
//!   off the connection threads and hand back one [`service::AssistantReply`].
//! - [`emotion`]: the badge's face for an answer, from the LLM's first
//!   emotion emoji.
//! - [`sentences`]: cuts the streamed answer into speakable sentences for TTS.
//! - [`fallback`]: the reply given when no LLM is configured or it fails, so
//!   a badge is never left without an answer.

pub mod conversation;
pub mod emotion;
pub mod fallback;
pub mod sentences;
pub mod service;
