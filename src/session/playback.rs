//! The downlink of a spoken turn (PROTOCOL.md §2.4, §3.1): turn messages and
//! Opus packets in the order the answer produced them, with the packets
//! paced — the first 3 at once, then one per 60 ms — so the badge's small
//! jitter buffer neither starves nor overflows.
//!
//! Pure state: the connection loop calls [`Playback::pump`] whenever
//! something may be due (a new cue, its playback timer) and writes what comes
//! out; nothing here does I/O or reads a clock.

use std::collections::VecDeque;

/// Packets sent back to back when a turn starts, to fill the device's buffer.
pub const BURST_PACKETS: u8 = 3;
/// One Opus packet's worth of audio.
pub const PACKET_MS: u64 = 60;
/// The closest two paced packets may go out when the schedule is behind: a
/// late timer never turns into a burst that overflows the device's buffer.
pub const MIN_GAP_MS: u64 = 55;

/// One item of a turn's downlink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cue {
    /// A JSON text message (`llm`, `tts` states); sent as soon as it is at the head.
    Text(String),
    /// One raw Opus packet (the connection adds the binary framing).
    Audio(Vec<u8>),
    /// The turn's `tts stop`: sent like `Text`, and once sent the device has
    /// left its speaking state.
    Stop(String),
}

#[derive(Debug, Default)]
pub struct Playback {
    /// Cues not yet sent, in order. Invariant: only `Audio` at the head can
    /// wait; a `Text` behind it waits with it, so order is never broken.
    queue: VecDeque<Cue>,
    /// Packets still allowed without pacing; reset to [`BURST_PACKETS`] by
    /// [`Playback::start_turn`].
    burst_left: u8,
    /// Earliest time the next paced packet may go (ms on the server clock).
    next_packet_at_ms: u64,
    /// A turn started and its [`Cue::Stop`] has not been sent: the device is
    /// (or is about to be) in its speaking state, which an abort must end.
    speaking: bool,
}

impl Playback {
    /// A new turn's downlink begins: the next packets get the initial burst.
    pub fn start_turn(&mut self) {
        self.burst_left = BURST_PACKETS;
        self.speaking = true;
    }

    pub fn push(&mut self, cue: Cue) {
        self.queue.push_back(cue);
    }

    /// The device is in the speaking state, or will be once the queue drains.
    pub fn is_speaking(&self) -> bool {
        self.speaking
    }

    /// Anything still to send.
    pub fn is_pending(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Drops everything not yet sent (abort, barge-in). Returns whether the
    /// device was speaking, i.e. whether it still needs a `tts stop`.
    pub fn clear(&mut self) -> bool {
        self.queue.clear();
        self.burst_left = 0;
        std::mem::replace(&mut self.speaking, false)
    }

    /// Moves every cue that is due at `now_ms` into `out`; returns when the
    /// next one will be due, if any is waiting.
    pub fn pump(&mut self, now_ms: u64, out: &mut Vec<Cue>) -> Option<u64> {
        while let Some(cue) = self.queue.front() {
            if let Cue::Audio(_) = cue {
                if self.burst_left > 0 {
                    self.burst_left -= 1;
                    // The paced schedule starts one packet after the burst.
                    self.next_packet_at_ms = now_ms + PACKET_MS;
                } else if now_ms >= self.next_packet_at_ms {
                    // Keep the real-time schedule, but never closer than MIN_GAP_MS.
                    self.next_packet_at_ms =
                        (self.next_packet_at_ms + PACKET_MS).max(now_ms + MIN_GAP_MS);
                } else {
                    return Some(self.next_packet_at_ms);
                }
            }
            if let Some(cue) = self.queue.pop_front() {
                if let Cue::Stop(_) = cue {
                    self.speaking = false;
                }
                out.push(cue);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn audio(n: u8) -> Cue {
        Cue::Audio(vec![n])
    }

    fn text(s: &str) -> Cue {
        Cue::Text(s.to_string())
    }

    #[test]
    fn three_packets_at_once_then_one_per_sixty_ms_in_order() {
        let mut playback = Playback::default();
        playback.start_turn();
        playback.push(text("start"));
        for n in 0..5 {
            playback.push(audio(n));
        }
        playback.push(Cue::Stop("end".into()));
        let mut out = Vec::new();
        assert_eq!(playback.pump(1_000, &mut out), Some(1_060));
        assert_eq!(out, [text("start"), audio(0), audio(1), audio(2)]);
        out.clear();
        assert_eq!(playback.pump(1_059, &mut out), Some(1_060));
        assert!(out.is_empty());
        assert_eq!(playback.pump(1_060, &mut out), Some(1_120));
        assert_eq!(out, [audio(3)]);
        out.clear();
        // The text behind the last packet goes with it.
        assert_eq!(playback.pump(1_125, &mut out), None);
        assert_eq!(out, [audio(4), Cue::Stop("end".into())]);
        assert!(!playback.is_pending());
        assert!(!playback.is_speaking());
    }

    #[test]
    fn a_late_timer_never_bursts_paced_packets() {
        let mut playback = Playback::default();
        playback.start_turn();
        for n in 0..6 {
            playback.push(audio(n));
        }
        let mut out = Vec::new();
        playback.pump(0, &mut out);
        out.clear();
        // The timer fired 100 ms late: one packet, the next 55 ms on.
        assert_eq!(playback.pump(160, &mut out), Some(215));
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn clear_drops_the_rest_and_says_whether_a_stop_is_owed() {
        let mut playback = Playback::default();
        assert!(!playback.clear());
        playback.start_turn();
        playback.push(audio(0));
        playback.push(Cue::Stop("stop".into()));
        // The queued stop is dropped with the rest, so the caller owes one.
        assert!(playback.clear());
        assert!(!playback.is_pending());
        assert!(!playback.is_speaking());
    }
}
