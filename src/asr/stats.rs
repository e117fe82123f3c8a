//! ASR metrics (PROTOCOL.md §5.2 names `huddle_asr_sessions_total` and
//! `huddle_asr_sessions_active`), plus errors, refusals and the latency from
//! the end of speech to the final text.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::metrics::Histogram;

const LATENCY_BUCKETS_US: [u64; 14] = [
    50_000, 100_000, 200_000, 300_000, 500_000, 750_000, 1_000_000, 1_500_000, 2_000_000,
    3_000_000, 5_000_000, 10_000_000, 30_000_000, 60_000_000,
];

pub struct AsrStats {
    pub sessions_total: AtomicU64,
    pub sessions_active: AtomicU64,
    /// Utterances that produced a (possibly empty) final text.
    pub utterances: AtomicU64,
    pub errors: AtomicU64,
    /// Utterances refused because the job queue was full or the engine was backing off.
    pub refused: AtomicU64,
    /// End of speech (the segmenter's cut) → final text.
    pub latency: Histogram,
}

pub static ASR_STATS: AsrStats = AsrStats {
    sessions_total: AtomicU64::new(0),
    sessions_active: AtomicU64::new(0),
    utterances: AtomicU64::new(0),
    errors: AtomicU64::new(0),
    refused: AtomicU64::new(0),
    latency: Histogram::new(&LATENCY_BUCKETS_US),
};

impl AsrStats {
    pub fn render(&self, out: &mut String) {
        let mut line = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        };
        line(
            "huddle_asr_sessions_total",
            "counter",
            "ASR sessions opened (one per utterance).",
            self.sessions_total.load(Relaxed),
        );
        line(
            "huddle_asr_sessions_active",
            "gauge",
            "ASR sessions open now.",
            self.sessions_active.load(Relaxed),
        );
        line(
            "huddle_asr_utterances_total",
            "counter",
            "Utterances recognized.",
            self.utterances.load(Relaxed),
        );
        line(
            "huddle_asr_errors_total",
            "counter",
            "Failed recognitions.",
            self.errors.load(Relaxed),
        );
        line(
            "huddle_asr_refused_total",
            "counter",
            "Utterances refused (queue full or engine backing off).",
            self.refused.load(Relaxed),
        );
        self.latency.render(
            out,
            "huddle_asr_latency_seconds",
            "From the end of speech to the final text.",
        );
    }
}
