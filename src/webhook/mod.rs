//! Webhook delivery of final meeting summaries (PROTOCOL.md §6).
//!
//! - [`payload`]: the body, serialized once to the exact bytes that are signed and sent.
//! - [`sign`]: `X-Meeting-Signature`, lowercase hex HMAC-SHA256 over those bytes.
//! - [`delivery`]: the background sender (bounded queue, worker threads, one
//!   retry) and the `huddle_webhook_deliveries_total` counters.
//!
//! Finalize calls [`WebhookSender::deliver`], which never blocks and never
//! fails: delivery problems are logged and counted, never reported back.

pub mod delivery;
pub mod payload;
pub mod sign;

pub use delivery::{
    COUNTERS, Enqueued, PROTOCOL_HEADERS, RetryPolicy, SenderOptions, WebhookCounters, WebhookJob,
    WebhookSender, render,
};
pub use payload::{record_body, webhook_body};
pub use sign::{body_digest_prefix, signature};
