//! How the rest of the server reaches a connection: an event into its bounded
//! inbox, then a wake of its mio `Poll`. Nobody but the connection's own
//! thread touches its state.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use crossbeam_channel::{Receiver, Sender};
use mio::Waker;

use crate::config::Config;
use crate::metrics::METRICS;

/// Inbox capacity. A device that cannot keep up loses events (counted) rather
/// than letting the sender wait or memory grow.
///
/// The bound is checked by the sender against the queue's length, so senders
/// racing on an almost full inbox may overshoot it by one event each. The
/// channel itself is crossbeam's unbounded list flavour on purpose: a
/// `bounded(1024)` array channel allocates and writes all 1024 slots (80 KiB)
/// when the connection opens, although an inbox rarely holds more than a few
/// events; the list grows in blocks of 31 and frees them as they drain.
pub const INBOX_CAPACITY: usize = 1024;

/// Something another thread wants a connection to do.
#[derive(Debug)]
pub enum ConnEvent {
    /// A text frame built once and shared by every recipient of a broadcast.
    SendText(Arc<str>),
    /// A workflow group snapshot (§3.4); the connection notes when it got
    /// one, since register/hello/working-start snapshots are debounced.
    WorkflowSnapshot(Arc<str>),
    /// A device message was refused off the connection thread (the workflow
    /// store's validation): replied and counted like any other error, so
    /// the abuse limit sees it.
    Rejected(crate::protocol::Rejection),
    /// One of the connection's own timers fired.
    Timer(ConnTimer),
    /// A newer connection registered the same device-id (§1.5).
    Replaced,
    /// An accepted reload; applies from the connection's next timer cycle.
    ConfigReloaded(Arc<Config>),
    /// Server shutdown: close with 1001.
    Shutdown,
    /// The server VAD heard voice on this device's uplink: idle activity.
    VoiceActivity,
    /// The final text of one utterance (possibly empty).
    Transcript(Transcript),
    /// Recognition of an utterance failed; the device's turn must end anyway.
    AsrFailed(String),
    /// A step of a spoken turn from the assistant workers.
    Assistant(crate::modes::chat::service::AssistantEvent),
    /// The turn's LLM wants one of the device's MCP tools run.
    McpCall(crate::modes::chat::service::McpCall),
    /// The meeting's summary job finished; carries the final summary message.
    MeetingFinalized(serde_json::Value),
}

/// One recognized utterance, as the connection receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transcript {
    /// Cleaned of leading/trailing punctuation and emoji.
    pub text: String,
    /// Wall-clock start of the speech, the transcript line's `ts`.
    pub started_at_unix_ms: u64,
}

/// The timers a connection schedules on the wheel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnTimer {
    /// Idle deadline check; stale firings are harmless (the tracker re-checks).
    Idle,
    /// Send a WebSocket ping and check the pong deadline.
    Ping,
    /// 1.5 s after `replaced`: close with 1000 "replaced".
    ReplacedClose,
    /// The close handshake took too long: drop the socket.
    CloseWait,
    /// Push the meeting transcript (every `meeting.transcript_push_interval_ms`).
    TranscriptPush,
    /// Build a checkpoint summary (every `meeting.checkpoint_interval_min`).
    Checkpoint,
    /// The spoken turn's next paced Opus packet is due.
    Playback,
    /// The registration snapshot, when `workflow.test_mode` delays it.
    RegisterSnapshot,
    /// The coding insight debounce elapsed.
    CodingInsight,
}

/// A cheap, cloneable address of one live connection.
#[derive(Clone, Debug)]
pub struct ConnHandle {
    /// Unique per process, never reused: tells an old and a new connection of
    /// the same device apart.
    pub conn_id: u64,
    pub device_id: Arc<str>,
    inbox: Sender<ConnEvent>,
    waker: Arc<Waker>,
    /// The device is in meeting mode now: what `[meeting.broadcast] mode =
    /// "session"` selects. Written only by the connection's own thread.
    in_meeting: Arc<std::sync::atomic::AtomicBool>,
}

impl ConnHandle {
    pub fn new(conn_id: u64, device_id: &str, waker: Arc<Waker>) -> (Self, Receiver<ConnEvent>) {
        let (inbox, receiver) = crossbeam_channel::unbounded();
        let handle = ConnHandle {
            conn_id,
            device_id: Arc::from(device_id),
            inbox,
            waker,
            in_meeting: Default::default(),
        };
        (handle, receiver)
    }

    /// Whether the device is in meeting mode (see the field).
    pub fn in_meeting(&self) -> bool {
        self.in_meeting.load(Relaxed)
    }

    /// Called by the connection's thread when its mode changes.
    pub fn set_in_meeting(&self, in_meeting: bool) {
        self.in_meeting.store(in_meeting, Relaxed);
    }

    /// Delivers an event without ever blocking. Returns false when the inbox
    /// is full (the drop is counted) or the connection is gone.
    pub fn send(&self, event: ConnEvent) -> bool {
        let full = self.inbox.len() >= INBOX_CAPACITY;
        // The list channel is never full itself, so its only error is a gone
        // receiver: the connection has ended and nothing is counted.
        let delivered = !full && self.inbox.send(event).is_ok();
        if full {
            METRICS.events_dropped_total.fetch_add(1, Relaxed);
        }
        if delivered || full {
            // A failed wake means the Poll is gone, i.e. the connection is closing.
            let _ = self.waker.wake();
        }
        delivered
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_inbox_refuses_and_counts() {
        let poll = mio::Poll::new().expect("poll");
        let waker = Arc::new(Waker::new(poll.registry(), mio::Token(0)).expect("waker"));
        let (handle, inbox) = ConnHandle::new(1, "dev", waker);
        for _ in 0..INBOX_CAPACITY {
            assert!(handle.send(ConnEvent::VoiceActivity));
        }
        let dropped_before = METRICS.events_dropped_total.load(Relaxed);
        assert!(!handle.send(ConnEvent::Shutdown));
        assert!(METRICS.events_dropped_total.load(Relaxed) > dropped_before);
        assert_eq!(inbox.len(), INBOX_CAPACITY);
        // Draining makes room again.
        assert!(inbox.try_recv().is_ok());
        assert!(handle.send(ConnEvent::Shutdown));
        drop(inbox);
        assert!(
            !handle.send(ConnEvent::Shutdown),
            "a closed connection takes nothing"
        );
    }
}
