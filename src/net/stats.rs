//! The `server` `stats` broadcast (PROTOCOL.md §3.7): on every register and
//! unregister and every `server.stats_interval_s`. It also keeps the firmware's
//! 120 s dead-link timer fed.
//!
//! Host load is sampled from /proc by the periodic timer only, and cached, so
//! a connection thread that broadcasts on register never touches a file.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::handle::ConnEvent;
use crate::context::ServerContext;
use crate::protocol::outbound::{self, HostLoad};
use crate::timer::unix_ms;

/// The latest host-load sample, and the CPU counters it was computed from.
#[derive(Default)]
pub struct HostLoadSampler {
    inner: Mutex<SamplerState>,
}

#[derive(Default)]
struct SamplerState {
    load: HostLoad,
    /// (busy, total) jiffies of the previous /proc/stat reading.
    previous_cpu: Option<(u64, u64)>,
}

impl HostLoadSampler {
    pub fn latest(&self) -> HostLoad {
        self.inner.lock().load
    }

    /// Reads /proc (Linux); anything unreadable stays `None` and is omitted.
    pub fn sample(&self) {
        let cpu_now = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|s| parse_cpu_jiffies(&s));
        let memory = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|s| parse_meminfo(&s));
        let mut state = self.inner.lock();
        state.load.cpu_percent = match (state.previous_cpu, cpu_now) {
            (Some((busy0, total0)), Some((busy1, total1))) if total1 > total0 => {
                Some((busy1.saturating_sub(busy0)) as f64 * 100.0 / (total1 - total0) as f64)
            }
            _ => None,
        };
        state.previous_cpu = cpu_now;
        if let Some((total_kb, available_kb)) = memory {
            let used_kb = total_kb.saturating_sub(available_kb);
            state.load.mem_total_mb = Some(total_kb / 1024);
            state.load.mem_used_mb = Some(used_kb / 1024);
            state.load.mem_percent =
                (total_kb > 0).then(|| used_kb as f64 * 100.0 / total_kb as f64);
        }
    }
}

/// `(busy, total)` jiffies from the aggregate `cpu` line.
fn parse_cpu_jiffies(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let total: u64 = fields.iter().sum();
    // idle + iowait are not busy.
    let idle = fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
    Some((total.saturating_sub(idle), total))
}

/// `(MemTotal, MemAvailable)` in kB.
fn parse_meminfo(meminfo: &str) -> Option<(u64, u64)> {
    let field = |name: &str| {
        meminfo
            .lines()
            .find(|l| l.starts_with(name))?
            .split_whitespace()
            .nth(1)?
            .parse::<u64>()
            .ok()
    };
    Some((field("MemTotal:")?, field("MemAvailable:")?))
}

/// Sends the current stats to every registered device.
pub fn broadcast(ctx: &ServerContext) {
    let text: Arc<str> = Arc::from(outbound::stats(
        unix_ms(),
        &ctx.registry.online(),
        ctx.host_load.latest(),
    ));
    ctx.registry
        .broadcast_registered(|| ConnEvent::SendText(Arc::clone(&text)));
}

/// Samples host load and broadcasts, then re-arms itself with the interval
/// read from the current config (so a reload applies from the next cycle).
pub fn schedule_periodic(ctx: &Arc<ServerContext>) {
    let interval = Duration::from_secs(ctx.config.current().server.stats_interval_s);
    let weak = Arc::downgrade(ctx);
    ctx.timers.schedule_in(
        interval,
        Box::new(move || {
            if let Some(ctx) = weak.upgrade() {
                if ctx.shutdown.is_requested() {
                    return;
                }
                ctx.host_load.sample();
                broadcast(&ctx);
                crate::alloc::release_if_pending();
                schedule_periodic(&ctx);
            }
        }),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_figures() {
        let stat = "cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 1 2 3\n";
        assert_eq!(parse_cpu_jiffies(stat), Some((200, 1000)));
        let meminfo = "MemTotal:       8000000 kB\nMemFree: 1 kB\nMemAvailable:   6000000 kB\n";
        assert_eq!(parse_meminfo(meminfo), Some((8_000_000, 6_000_000)));
        assert_eq!(parse_meminfo("nothing"), None);
    }
}
