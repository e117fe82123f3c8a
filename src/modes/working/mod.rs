//! Working mode (PROTOCOL.md §3.4): the shared task list driven by voice.
//!
//! - [`commands`]: voice command matching (assign, complete, refresh, with an
//!   optional task index) and picking the task a command applies to.
//! - [`intent`]: the intent LLM's prompt and answer for utterances no phrase matched.

pub mod commands;
pub mod intent;
