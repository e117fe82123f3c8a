//! The abuse limit (PROTOCOL.md §3.0): more than 20 text-message error replies
//! within 10 s closes the connection with 1008. Binary-frame errors have their
//! own, gentler rule (one reply per 10 s, never abuse).

use std::collections::VecDeque;

pub const WINDOW_MS: u64 = 10_000;
pub const MAX_ERRORS_IN_WINDOW: usize = 20;

#[derive(Debug, Default)]
pub struct AbuseWindow {
    /// Times of the error replies inside the window, oldest first; never longer
    /// than `MAX_ERRORS_IN_WINDOW + 1`, because the next one closes the socket.
    recent_ms: VecDeque<u64>,
}

impl AbuseWindow {
    /// Records one error reply; true when the limit is now exceeded.
    pub fn record(&mut self, now_ms: u64) -> bool {
        while self
            .recent_ms
            .front()
            .is_some_and(|t| now_ms.saturating_sub(*t) >= WINDOW_MS)
        {
            self.recent_ms.pop_front();
        }
        self.recent_ms.push_back(now_ms);
        self.recent_ms.len() > MAX_ERRORS_IN_WINDOW
    }
}

/// At most one binary-frame error reply per window.
#[derive(Debug, Default)]
pub struct BinaryErrorGate {
    last_reply_ms: Option<u64>,
}

impl BinaryErrorGate {
    /// True when a reply may be sent now (and records it).
    pub fn allow(&mut self, now_ms: u64) -> bool {
        match self.last_reply_ms {
            Some(last) if now_ms.saturating_sub(last) < WINDOW_MS => false,
            _ => {
                self.last_reply_ms = Some(now_ms);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_twenty_first_error_in_ten_seconds_trips() {
        let mut window = AbuseWindow::default();
        for i in 0..20 {
            assert!(!window.record(i * 100), "error {i}");
        }
        assert!(window.record(2_500));
    }

    #[test]
    fn old_errors_leave_the_window() {
        let mut window = AbuseWindow::default();
        for i in 0..20 {
            window.record(i * 100);
        }
        assert!(!window.record(10_000));
    }

    #[test]
    fn binary_errors_reply_once_per_ten_seconds() {
        let mut gate = BinaryErrorGate::default();
        assert!(gate.allow(0));
        assert!(!gate.allow(9_999));
        assert!(gate.allow(10_000));
    }
}
