//! Meeting mode (PROTOCOL.md §3.3, ARCHITECTURE.md "One meeting, end to end").
//!
//! - [`state`]: one connection's meeting state machine and snippet guards.
//! - [`text`]: segment normalization and term maps.
//! - [`summary`]: the LLM prompt, parsing and the fallback summary.
//! - [`service`]: journal, summary workers, archive, webhook, recovery.

pub mod service;
pub mod state;
pub mod summary;
pub mod text;
