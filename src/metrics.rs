//! Process-wide counters, rendered as Prometheus text for `GET /metrics`
//! (PROTOCOL.md §5.2). Every counter is a relaxed atomic: they are statistics,
//! not synchronization, and bumping one must cost a connection loop nothing.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::protocol::ErrorCode;

/// HTTP statuses the server answers; anything else is counted as `other`.
const HTTP_STATUSES: [u16; 9] = [101, 200, 204, 400, 401, 404, 405, 429, 500];

pub struct Metrics {
    /// Live WebSocket connections (gauge).
    pub connections: AtomicU64,
    /// WebSocket connections ever upgraded.
    pub connections_total: AtomicU64,
    pub frames_in_text: AtomicU64,
    pub frames_in_binary: AtomicU64,
    pub frames_out_text: AtomicU64,
    pub frames_out_binary: AtomicU64,
    /// Error replies sent, indexed by [`ErrorCode::index`].
    pub ws_errors: [AtomicU64; 6],
    /// Indexed like `HTTP_STATUSES`, plus one slot for any other status.
    http_requests: [AtomicU64; HTTP_STATUSES.len() + 1],
    pub idle_closes_total: AtomicU64,
    /// Events a connection's full inbox refused (the sender dropped them).
    pub events_dropped_total: AtomicU64,
    /// Times freed memory was handed back to the system (`crate::alloc`).
    pub malloc_trims: AtomicU64,
}

pub static METRICS: Metrics = Metrics::new();

impl Metrics {
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        Metrics {
            connections: AtomicU64::new(0),
            connections_total: AtomicU64::new(0),
            frames_in_text: AtomicU64::new(0),
            frames_in_binary: AtomicU64::new(0),
            frames_out_text: AtomicU64::new(0),
            frames_out_binary: AtomicU64::new(0),
            ws_errors: [const { AtomicU64::new(0) }; 6],
            http_requests: [const { AtomicU64::new(0) }; HTTP_STATUSES.len() + 1],
            idle_closes_total: AtomicU64::new(0),
            events_dropped_total: AtomicU64::new(0),
            malloc_trims: AtomicU64::new(0),
        }
    }

    pub fn count_error(&self, code: ErrorCode) {
        self.ws_errors[code.index()].fetch_add(1, Relaxed);
    }

    pub fn count_http(&self, status: u16) {
        let slot = HTTP_STATUSES
            .iter()
            .position(|s| *s == status)
            .unwrap_or(HTTP_STATUSES.len());
        self.http_requests[slot].fetch_add(1, Relaxed);
    }

    /// Prometheus text exposition. The figures that live elsewhere (log drops,
    /// timer lag) are passed in so this module depends on nothing running.
    pub fn render(&self, log_records_dropped: u64, timer_lag_ms: u64) -> String {
        let mut out = String::with_capacity(2048);
        let mut metric = |name: &str, kind: &str, help: &str, samples: &[(String, u64)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        let plain = |v: &AtomicU64| vec![(String::new(), v.load(Relaxed))];
        metric(
            "huddle_connections",
            "gauge",
            "Live device connections.",
            &plain(&self.connections),
        );
        metric(
            "huddle_connections_total",
            "counter",
            "Device connections accepted since start.",
            &plain(&self.connections_total),
        );
        let frames = [
            ("in", "text", &self.frames_in_text),
            ("in", "binary", &self.frames_in_binary),
            ("out", "text", &self.frames_out_text),
            ("out", "binary", &self.frames_out_binary),
        ]
        .iter()
        .map(|(d, k, v)| {
            (
                format!("{{direction=\"{d}\",kind=\"{k}\"}}"),
                v.load(Relaxed),
            )
        })
        .collect::<Vec<_>>();
        metric(
            "huddle_ws_frames_total",
            "counter",
            "WebSocket data frames.",
            &frames,
        );
        let errors = ErrorCode::ALL
            .iter()
            .map(|c| {
                (
                    format!("{{code=\"{}\"}}", c.as_str()),
                    self.ws_errors[c.index()].load(Relaxed),
                )
            })
            .collect::<Vec<_>>();
        metric(
            "huddle_ws_errors_total",
            "counter",
            "Error replies sent to devices.",
            &errors,
        );
        let http = HTTP_STATUSES
            .iter()
            .map(|s| s.to_string())
            .chain(std::iter::once("other".to_string()))
            .zip(&self.http_requests)
            .map(|(s, v)| (format!("{{status=\"{s}\"}}"), v.load(Relaxed)))
            .collect::<Vec<_>>();
        metric(
            "huddle_http_requests_total",
            "counter",
            "HTTP requests answered.",
            &http,
        );
        metric(
            "huddle_idle_closes_total",
            "counter",
            "Connections closed for idleness.",
            &plain(&self.idle_closes_total),
        );
        metric(
            "huddle_connection_events_dropped_total",
            "counter",
            "Events refused by a full connection inbox.",
            &plain(&self.events_dropped_total),
        );
        metric(
            "huddle_malloc_trims_total",
            "counter",
            "Times memory freed by ended connections was returned to the system.",
            &plain(&self.malloc_trims),
        );
        metric(
            "huddle_log_records_dropped_total",
            "counter",
            "Log records dropped because the log channel was full.",
            &[(String::new(), log_records_dropped)],
        );
        let _ = writeln!(
            out,
            "# HELP huddle_timer_wheel_lag_seconds Largest timer firing lag over the last second.\n\
             # TYPE huddle_timer_wheel_lag_seconds gauge\nhuddle_timer_wheel_lag_seconds {:.3}",
            timer_lag_ms as f64 / 1000.0
        );
        out
    }
}

/// A Prometheus histogram over fixed microsecond buckets: one relaxed atomic
/// add per observation, plus a running max.
pub struct Histogram {
    /// Upper bounds in µs, ascending.
    bounds_us: &'static [u64],
    /// One count per bound, plus +Inf; `counts.len() == bounds_us.len() + 1`.
    counts: [AtomicU64; 24],
    sum_us: AtomicU64,
    max_us: AtomicU64,
}

impl Histogram {
    /// `bounds_us` holds at most 23 bounds.
    pub const fn new(bounds_us: &'static [u64]) -> Self {
        assert!(bounds_us.len() < 24);
        Histogram {
            bounds_us,
            counts: [const { AtomicU64::new(0) }; 24],
            sum_us: AtomicU64::new(0),
            max_us: AtomicU64::new(0),
        }
    }

    pub fn observe_us(&self, us: u64) {
        let slot = self
            .bounds_us
            .iter()
            .position(|bound| us <= *bound)
            .unwrap_or(self.bounds_us.len());
        self.counts[slot].fetch_add(1, Relaxed);
        self.sum_us.fetch_add(us, Relaxed);
        self.max_us.fetch_max(us, Relaxed);
    }

    pub fn max_us(&self) -> u64 {
        self.max_us.load(Relaxed)
    }

    /// Non-cumulative counts per bucket (+Inf last).
    pub fn counts(&self) -> Vec<u64> {
        self.counts[..=self.bounds_us.len()]
            .iter()
            .map(|c| c.load(Relaxed))
            .collect()
    }

    /// `name_bucket`, `name_sum`, `name_count` in seconds, and `name_max` as a gauge.
    pub fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (bound, count) in self.bounds_us.iter().zip(&self.counts) {
            cumulative += count.load(Relaxed);
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{}\"}} {cumulative}",
                *bound as f64 / 1e6
            );
        }
        cumulative += self.counts[self.bounds_us.len()].load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
        let _ = writeln!(
            out,
            "{name}_sum {:.6}\n{name}_count {cumulative}",
            self.sum_us.load(Relaxed) as f64 / 1e6
        );
        let _ = writeln!(
            out,
            "# HELP {name}_max Largest observation since start.\n# TYPE {name}_max gauge\n{name}_max {:.6}",
            self.max_us() as f64 / 1e6
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_renders_cumulative_buckets() {
        static BOUNDS: [u64; 2] = [1_000, 10_000];
        let h = Histogram::new(&BOUNDS);
        h.observe_us(500);
        h.observe_us(5_000);
        h.observe_us(50_000);
        let mut text = String::new();
        h.render(&mut text, "x_seconds", "help");
        assert!(
            text.contains("x_seconds_bucket{le=\"0.001\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("x_seconds_bucket{le=\"0.01\"} 2\n"));
        assert!(text.contains("x_seconds_bucket{le=\"+Inf\"} 3\n"));
        assert!(text.contains("x_seconds_max 0.050000\n"));
        assert_eq!(h.counts(), vec![1, 1, 1]);
    }

    #[test]
    fn renders_counters_with_labels() {
        let metrics = Metrics::new();
        metrics.connections.fetch_add(2, Relaxed);
        metrics.count_error(ErrorCode::TooLarge);
        metrics.count_http(404);
        metrics.count_http(418);
        let text = metrics.render(7, 1500);
        assert!(text.contains("\nhuddle_connections 2\n"), "{text}");
        assert!(text.contains("huddle_ws_errors_total{code=\"TOO_LARGE\"} 1\n"));
        assert!(text.contains("huddle_http_requests_total{status=\"404\"} 1\n"));
        assert!(text.contains("huddle_http_requests_total{status=\"other\"} 1\n"));
        assert!(text.contains("huddle_log_records_dropped_total 7\n"));
        assert!(text.contains("huddle_timer_wheel_lag_seconds 1.500\n"));
    }
}
