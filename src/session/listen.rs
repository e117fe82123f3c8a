//! `listen` (PROTOCOL.md §3.1): the listen mode and the 300 ms debounce of
//! repeated `start`/`stop`; accepted boundaries go to the audio worker.

use crate::protocol::Rejection;
use crate::protocol::inbound::{Listen, ListenMode, ListenState};

use super::{Outbox, Session};
use crate::audio::ring::Boundary;

/// A `start` or `stop` this soon after the previous one of the same kind is ignored.
pub const DEBOUNCE_MS: u64 = 300;

#[derive(Debug, Default, Clone)]
pub struct ListenTracker {
    pub mode: ListenMode,
    /// Whether the device said `start` more recently than `stop`.
    pub listening: bool,
    last_start_ms: Option<u64>,
    last_stop_ms: Option<u64>,
}

impl ListenTracker {
    /// Applies a boundary; false when it was debounced away.
    pub fn boundary(&mut self, state: ListenState, mode: Option<ListenMode>, now_ms: u64) -> bool {
        let last = match state {
            ListenState::Start => &mut self.last_start_ms,
            ListenState::Stop => &mut self.last_stop_ms,
            ListenState::Detect => return true,
        };
        if last.is_some_and(|t| now_ms.saturating_sub(t) < DEBOUNCE_MS) {
            return false;
        }
        *last = Some(now_ms);
        match state {
            ListenState::Start => {
                self.listening = true;
                if let Some(mode) = mode {
                    self.mode = mode;
                }
            }
            ListenState::Stop => self.listening = false,
            ListenState::Detect => {}
        }
        true
    }
}

pub fn handle(
    session: &mut Session,
    listen: Listen,
    now_ms: u64,
    out: &mut Outbox,
) -> Result<(), Rejection> {
    if !session.listen.boundary(listen.state, listen.mode, now_ms) {
        ::log::debug!(
            "device {} listen {:?} debounced",
            session.device_id(),
            listen.state
        );
        return Ok(());
    }
    match listen.state {
        ListenState::Start => out.boundaries.push(Boundary::Start(session.listen.mode)),
        ListenState::Stop => out.boundaries.push(Boundary::Stop),
        // `detect` carries text for the user-text pipeline (the ASR issue), not a boundary.
        ListenState::Detect => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_within_300_ms_are_ignored() {
        let mut t = ListenTracker::default();
        assert!(t.boundary(ListenState::Start, Some(ListenMode::Manual), 0));
        assert_eq!(t.mode, ListenMode::Manual);
        assert!(!t.boundary(ListenState::Start, Some(ListenMode::Auto), 299));
        assert_eq!(t.mode, ListenMode::Manual);
        assert!(t.boundary(ListenState::Stop, None, 100));
        assert!(!t.listening);
        assert!(t.boundary(ListenState::Start, Some(ListenMode::Realtime), 300));
        assert_eq!(t.mode, ListenMode::Realtime);
    }
}
