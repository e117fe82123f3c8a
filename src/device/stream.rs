//! Uplink framing and pacing: turning Opus packets into the binary frames of
//! one framing version (PROTOCOL.md §2.2) and deciding when each one is sent.
//!
//! Both are plain functions of the packet index so a load generator can frame
//! a file once and replay it on many connections with the same schedule.

use std::time::{Duration, Instant};

use crate::audio::opus::FRAME_MS;
use crate::protocol::framing::{FramingVersion, PacketKind, encode_into};

/// Packets sent at once when a stream starts, before the 60 ms cadence; the
/// same prebuffer the server uses downlink (§2.4), so the receiver's jitter
/// buffer starts with something in it.
pub const PREBUFFER_PACKETS: usize = 3;
/// One packet per 60 ms after the prebuffer.
pub const PACKET_INTERVAL: Duration = Duration::from_millis(FRAME_MS);

/// Capture time of packet `index` in ms from the stream start: the v2 header's
/// `timestamp_ms` (§2.2), which the server keeps for AEC.
pub fn capture_ms(index: usize) -> u32 {
    // u32 ms wraps after 49 days of audio; wrapping is what the field does on
    // a device too, so no error is needed.
    (index as u64).wrapping_mul(FRAME_MS) as u32
}

/// Appends the uplink frame of packet `index` to `out`.
pub fn frame_packet(version: FramingVersion, index: usize, packet: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    encode_into(version, PacketKind::Opus, packet, out);
    if version == FramingVersion::V2 {
        // encode_into writes the downlink form, whose timestamp is 0; uplink
        // carries the capture time at bytes 8..12.
        out[start + 8..start + 12].copy_from_slice(&capture_ms(index).to_be_bytes());
    }
}

/// Frames every packet of a stream, in order.
pub fn frame_packets(version: FramingVersion, packets: &[Vec<u8>]) -> Vec<Vec<u8>> {
    packets
        .iter()
        .enumerate()
        .map(|(index, packet)| {
            let mut frame = Vec::with_capacity(packet.len() + 16);
            frame_packet(version, index, packet, &mut frame);
            frame
        })
        .collect()
}

/// Offset from the stream start at which packet `index` is due: the prebuffer
/// at 0, then one interval per packet. Each offset is computed from the index,
/// never from the previous send, so late sends do not accumulate into drift.
pub fn send_offset(index: usize) -> Duration {
    let steps = index.saturating_sub(PREBUFFER_PACKETS - 1);
    PACKET_INTERVAL.saturating_mul(u32::try_from(steps).unwrap_or(u32::MAX))
}

/// The send schedule of one stream: real time from `start`, or as fast as
/// possible.
#[derive(Debug, Clone, Copy)]
pub struct Pacer {
    start: Instant,
    fast: bool,
}

impl Pacer {
    pub fn new(start: Instant, fast: bool) -> Self {
        Pacer { start, fast }
    }

    /// When packet `index` may be sent; with `fast`, at once.
    pub fn due(&self, index: usize) -> Instant {
        if self.fast {
            self.start
        } else {
            self.start + send_offset(index)
        }
    }

    /// Time the whole stream of `count` packets takes to send, last packet
    /// included (it is sent at its due time, not after an interval).
    pub fn span(&self, count: usize) -> Duration {
        if self.fast || count == 0 {
            Duration::ZERO
        } else {
            send_offset(count - 1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::framing::decode;

    #[test]
    fn the_first_three_go_at_once_then_one_per_60_ms() {
        let offsets: Vec<u64> = (0..7).map(|i| send_offset(i).as_millis() as u64).collect();
        assert_eq!(offsets, [0, 0, 0, 60, 120, 180, 240]);
    }

    #[test]
    fn the_schedule_is_absolute_and_does_not_drift() {
        // Packet 10_002 is due exactly 10_000 intervals after the start, not a
        // rounded sum of per-packet waits.
        assert_eq!(send_offset(10_002), Duration::from_secs(600));
        let start = Instant::now();
        let pacer = Pacer::new(start, false);
        assert_eq!(pacer.due(1_002) - start, Duration::from_secs(60));
        // A 5 s file is 84 packets; the last one (index 83) is due at 81 * 60 ms.
        assert_eq!(pacer.span(84), Duration::from_millis(4_860));
        assert_eq!(pacer.span(0), Duration::ZERO);
    }

    #[test]
    fn fast_mode_is_due_at_once() {
        let start = Instant::now();
        let pacer = Pacer::new(start, true);
        assert_eq!(pacer.due(500), start);
        assert_eq!(pacer.span(500), Duration::ZERO);
    }

    #[test]
    fn frames_decode_back_with_capture_timestamps_in_v2() {
        let packets = vec![vec![0x58, 0x0b, 0xe4, 0x71]; 20];
        for version in [FramingVersion::V1, FramingVersion::V2, FramingVersion::V3] {
            let frames = frame_packets(version, &packets);
            assert_eq!(frames.len(), 20);
            for (index, frame) in frames.iter().enumerate() {
                let packet = decode(version, frame).unwrap();
                assert_eq!(packet.kind, PacketKind::Opus);
                assert_eq!(packet.payload, &packets[index][..]);
                if version == FramingVersion::V2 {
                    assert_eq!(packet.timestamp_ms, index as u32 * 60);
                }
            }
        }
        // PROTOCOL.md §2.3: the v2 example is the packet captured at 1000 ms;
        // index 16 is captured at 960 ms, and the bytes follow the layout.
        let v2 = frame_packets(FramingVersion::V2, &packets);
        assert_eq!(&v2[16][..12], &[0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0x03, 0xc0]);
    }
}
