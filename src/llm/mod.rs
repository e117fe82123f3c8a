//! LLM clients: the [`LlmClient`] contract, the OpenAI-compatible chat-completions backend and the per-purpose
//! resolution with its process-wide instance cache (PROTOCOL.md §7 `[llm.<name>]`, `llm_by_mode`).
//!
//! Callers ask [`resolve()`] for the client of their purpose (`meeting`, `chat`, ...) and get `None` when that purpose
//! has no LLM; every call takes a deadline and fails with an [`LlmError`] naming what went wrong.

pub mod client;
pub mod openai;
pub mod resolve;

pub use client::{ChatMessage, ChatOptions, ChatReply, LlmClient, LlmError, Role, ToolCall};
pub use openai::OpenAiChat;
pub use resolve::{
    ChoiceSource, LlmPurpose, LlmRegistry, Selection, cache_key, clear_cache, effective_provider,
    resolve, select,
};
