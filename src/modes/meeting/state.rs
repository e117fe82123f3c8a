//! One connection's meeting (PROTOCOL.md §3.3): `idle → running → finalizing
//! → finalized`, the accepted segments, what is still pending a push, and the
//! snippet guards (10 items/s, ≤ 200 pending, 60 s duplicate window).
//! Pure state: the session handler does the I/O around it.

use std::collections::VecDeque;

use serde_json::Value;

use crate::store::model::Segment;

/// Snippet items accepted per second per connection.
pub const MAX_ITEMS_PER_SECOND: usize = 10;
/// Accepted but not yet pushed.
pub const MAX_PENDING: usize = 200;
/// An exact repeat of a text accepted this recently is dropped.
pub const DUPLICATE_WINDOW_MS: u64 = 60_000;
/// Segments in the final transcript after the summary.
pub const FINAL_TRANSCRIPT_SEGMENTS: usize = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Idle,
    Running,
    Finalizing,
    Finalized,
}

#[derive(Debug)]
pub struct Meeting {
    pub phase: Phase,
    /// UUIDv4 of the meeting (not the connection's `session_id`).
    pub session_id: String,
    pub started_at: u64,
    pub segments: Vec<Segment>,
    /// `segments[..pushed]` went out in a transcript push already.
    pushed: usize,
    /// (ts, text) accepted within the duplicate window, oldest first.
    recent: VecDeque<(u64, String)>,
    /// Times of snippet items accepted within the last second.
    item_times: VecDeque<u64>,
    pub checkpoint_count: u64,
    /// The final summary message, sent again (with `idempotent:true`) on repeats.
    pub cached_summary: Option<Value>,
    /// Finalize requests that came while finalizing: each gets the summary once it exists.
    pub waiting_finalizes: u32,
    /// Finalize request time: the meeting's `endedAt`.
    pub ended_at: Option<u64>,
}

impl Default for Meeting {
    fn default() -> Self {
        Meeting {
            phase: Phase::Idle,
            session_id: String::new(),
            started_at: 0,
            segments: Vec::new(),
            pushed: 0,
            recent: VecDeque::new(),
            item_times: VecDeque::new(),
            checkpoint_count: 0,
            cached_summary: None,
            waiting_finalizes: 0,
            ended_at: None,
        }
    }
}

impl Meeting {
    /// A fresh meeting.
    pub fn start(session_id: String, now_ms: u64) -> Self {
        Meeting {
            phase: Phase::Running,
            session_id,
            started_at: now_ms,
            ..Meeting::default()
        }
    }

    /// A suspended meeting taken up again: same id and start, segments restored
    /// (all count as pushed: the device saw them before it went away).
    pub fn resume(
        session_id: String,
        started_at: u64,
        segments: Vec<Segment>,
        checkpoint_count: u64,
    ) -> Self {
        let pushed = segments.len();
        Meeting {
            phase: Phase::Running,
            session_id,
            started_at,
            segments,
            pushed,
            checkpoint_count,
            ..Meeting::default()
        }
    }

    pub fn is_running(&self) -> bool {
        self.phase == Phase::Running
    }

    pub fn pending(&self) -> usize {
        self.segments.len() - self.pushed
    }

    /// Whether a snippet of `items` items may be accepted now (rejected as a whole otherwise).
    pub fn snippet_allowed(&mut self, items: usize, now_ms: u64) -> Result<(), String> {
        while self
            .item_times
            .front()
            .is_some_and(|t| now_ms.saturating_sub(*t) >= 1000)
        {
            self.item_times.pop_front();
        }
        if self.item_times.len() + items > MAX_ITEMS_PER_SECOND {
            return Err(format!(
                "more than {MAX_ITEMS_PER_SECOND} snippet items per second; wait a second"
            ));
        }
        if self.pending() + items > MAX_PENDING {
            return Err(format!(
                "more than {MAX_PENDING} segments pending a transcript push"
            ));
        }
        for _ in 0..items {
            self.item_times.push_back(now_ms);
        }
        Ok(())
    }

    /// Accepts one normalized text; `None` when empty or a duplicate within the window.
    pub fn accept(
        &mut self,
        text: String,
        speaker_id: Option<String>,
        tag: Option<String>,
        now_ms: u64,
    ) -> Option<Segment> {
        while self
            .recent
            .front()
            .is_some_and(|(t, _)| now_ms.saturating_sub(*t) >= DUPLICATE_WINDOW_MS)
        {
            self.recent.pop_front();
        }
        if text.is_empty() || self.recent.iter().any(|(_, seen)| *seen == text) {
            return None;
        }
        self.recent.push_back((now_ms, text.clone()));
        let segment = Segment {
            ts: now_ms,
            text,
            speaker_id,
            tag,
        };
        self.segments.push(segment.clone());
        Some(segment)
    }

    /// Segments accepted since the previous push; marks them pushed.
    pub fn take_push(&mut self) -> Vec<Segment> {
        let new = self.segments[self.pushed..].to_vec();
        self.pushed = self.segments.len();
        new
    }

    /// The latest segments for the final transcript.
    pub fn final_transcript(&self) -> &[Segment] {
        let from = self
            .segments
            .len()
            .saturating_sub(FINAL_TRANSCRIPT_SEGMENTS);
        &self.segments[from..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_within_sixty_seconds_are_dropped() {
        let mut m = Meeting::start("m".into(), 0);
        assert!(m.accept("a".into(), None, None, 1_000).is_some());
        assert!(m.accept("a".into(), None, None, 60_999).is_none());
        assert!(m.accept("a".into(), None, None, 61_000).is_some());
        assert!(m.accept(String::new(), None, None, 61_000).is_none());
    }

    #[test]
    fn snippet_rate_and_pending_caps() {
        let mut m = Meeting::start("m".into(), 0);
        assert!(m.snippet_allowed(10, 0).is_ok());
        assert!(
            m.snippet_allowed(1, 999)
                .unwrap_err()
                .contains("10 snippet items per second")
        );
        assert!(m.snippet_allowed(1, 1_000).is_ok());
        let mut m = Meeting::start("m".into(), 0);
        for i in 0..200 {
            m.accept(format!("t{i}"), None, None, 0);
        }
        assert!(m.snippet_allowed(1, 5_000).unwrap_err().contains("200"));
        assert_eq!(m.take_push().len(), 200);
        assert_eq!(m.pending(), 0);
        assert!(m.snippet_allowed(1, 5_000).is_ok());
    }

    #[test]
    fn pushes_carry_only_new_segments_and_resume_counts_old_ones_as_pushed() {
        let mut m = Meeting::start("m".into(), 0);
        m.accept("a".into(), None, None, 1);
        assert_eq!(m.take_push().len(), 1);
        assert!(m.take_push().is_empty());
        let resumed = Meeting::resume("m".into(), 5, m.segments.clone(), 2);
        assert_eq!(
            (
                resumed.pending(),
                resumed.started_at,
                resumed.checkpoint_count
            ),
            (0, 5, 2)
        );
    }
}
