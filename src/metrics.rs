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

#[cfg(test)]
mod tests {
    use super::*;

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
