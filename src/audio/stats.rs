//! Audio-path metrics: frames processed and dropped, decoder errors, voiced
//! time, utterances, and the histogram of frame latency from socket read to
//! VAD decision. Lock-free on the hot path; per-device drop counts take a
//! lock only when a frame is dropped, which a healthy box never does.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use parking_lot::Mutex;

use crate::metrics::Histogram;

/// Upper bounds of the latency buckets, in microseconds.
pub const LATENCY_BUCKETS_US: [u64; 16] = [
    100, 250, 500, 1_000, 2_000, 3_000, 5_000, 7_500, 10_000, 15_000, 20_000, 30_000, 50_000,
    100_000, 250_000, 1_000_000,
];

pub struct AudioStats {
    pub frames_processed: AtomicU64,
    pub decode_errors: AtomicU64,
    /// Voiced VAD frames × 16 ms, in ms.
    pub voice_ms: AtomicU64,
    pub utterances: AtomicU64,
    pub streams_active: AtomicU64,
    /// Socket read → VAD decision, per packet.
    latency: Histogram,
    /// device-id → frames dropped because its ring was full.
    dropped: Mutex<BTreeMap<String, u64>>,
    dropped_total: AtomicU64,
}

pub static AUDIO_STATS: AudioStats = AudioStats::new();

/// Nanoseconds on one process-wide monotonic clock, so a timestamp taken on a
/// connection thread can be compared on a worker.
pub fn mono_ns() -> u64 {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    ORIGIN.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

impl AudioStats {
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        AudioStats {
            frames_processed: AtomicU64::new(0),
            decode_errors: AtomicU64::new(0),
            voice_ms: AtomicU64::new(0),
            utterances: AtomicU64::new(0),
            streams_active: AtomicU64::new(0),
            latency: Histogram::new(&LATENCY_BUCKETS_US),
            dropped: Mutex::new(BTreeMap::new()),
            dropped_total: AtomicU64::new(0),
        }
    }

    pub fn observe_latency_ns(&self, latency_ns: u64) {
        self.latency.observe_us(latency_ns / 1_000);
    }

    pub fn count_drop(&self, device_id: &str) {
        self.dropped_total.fetch_add(1, Relaxed);
        *self
            .dropped
            .lock()
            .entry(device_id.to_string())
            .or_insert(0) += 1;
    }

    pub fn dropped_total(&self) -> u64 {
        self.dropped_total.load(Relaxed)
    }

    pub fn dropped_for(&self, device_id: &str) -> u64 {
        self.dropped.lock().get(device_id).copied().unwrap_or(0)
    }

    pub fn latency_max_us(&self) -> u64 {
        self.latency.max_us()
    }

    /// Bucket counts (non-cumulative), for quantile estimates in tests and tools.
    pub fn latency_counts(&self) -> Vec<u64> {
        self.latency.counts()
    }

    /// Appends the audio metrics in Prometheus text format.
    pub fn render(&self, out: &mut String) {
        let mut counter = |name: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        };
        counter(
            "huddle_audio_frames_total",
            "Opus packets decoded and run through VAD.",
            self.frames_processed.load(Relaxed),
        );
        counter(
            "huddle_opus_decode_errors_total",
            "Opus packets the decoder refused (each reset the decoder).",
            self.decode_errors.load(Relaxed),
        );
        counter(
            "huddle_audio_utterances_total",
            "Utterances cut by the segmenter.",
            self.utterances.load(Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP huddle_vad_voice_seconds_total Audio the VAD judged to be voice.\n\
             # TYPE huddle_vad_voice_seconds_total counter\nhuddle_vad_voice_seconds_total {:.3}",
            self.voice_ms.load(Relaxed) as f64 / 1000.0
        );
        let _ = writeln!(
            out,
            "# HELP huddle_audio_streams_active Devices with an open uplink ring.\n\
             # TYPE huddle_audio_streams_active gauge\nhuddle_audio_streams_active {}",
            self.streams_active.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP huddle_audio_frames_dropped_total Frames dropped because a device's ring was full.\n\
             # TYPE huddle_audio_frames_dropped_total counter"
        );
        for (device, count) in self.dropped.lock().iter() {
            let _ = writeln!(
                out,
                "huddle_audio_frames_dropped_total{{device=\"{device}\"}} {count}"
            );
        }
        self.latency.render(
            out,
            "huddle_audio_frame_latency_seconds",
            "From socket read to VAD decision, per frame.",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_in_text() {
        let stats = AudioStats::new();
        stats.observe_latency_ns(50_000); // 50 µs
        stats.observe_latency_ns(4_000_000); // 4 ms
        stats.observe_latency_ns(2_000_000_000); // 2 s
        stats.count_drop("dev-a");
        stats.count_drop("dev-a");
        let mut text = String::new();
        stats.render(&mut text);
        assert!(
            text.contains("huddle_audio_frame_latency_seconds_bucket{le=\"0.0001\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("huddle_audio_frame_latency_seconds_bucket{le=\"0.005\"} 2\n"));
        assert!(text.contains("huddle_audio_frame_latency_seconds_bucket{le=\"1\"} 2\n"));
        assert!(text.contains("huddle_audio_frame_latency_seconds_bucket{le=\"+Inf\"} 3\n"));
        assert!(text.contains("huddle_audio_frames_dropped_total{device=\"dev-a\"} 2\n"));
        assert!(text.contains("huddle_audio_frame_latency_seconds_max 2.000000\n"));
        assert_eq!(stats.latency_max_us(), 2_000_000);
        assert_eq!(stats.dropped_for("dev-a"), 2);
    }
}
