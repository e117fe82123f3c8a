//! The device's modes (PROTOCOL.md §3.2): what the server does with its
//! speech and messages beyond the protocol itself.
//!
//! - [`meeting`]: transcript, finalize, summary, archive, webhook.

pub mod meeting;
