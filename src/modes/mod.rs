//! The device's modes (PROTOCOL.md §3.2): what the server does with its
//! speech and messages beyond the protocol itself.
//!
//! - [`broadcast`]: who gets `from`-marked copies of meeting and coding messages.
//! - [`chat`]: spoken answers (intent, then chat LLM, then a fallback).
//! - [`coding`]: build and test log signals, insights and next steps.
//! - [`meeting`]: transcript, finalize, summary, archive, webhook.
//! - [`working`]: workflow voice commands and the task they apply to.

pub mod broadcast;
pub mod chat;
pub mod coding;
pub mod meeting;
pub mod working;
