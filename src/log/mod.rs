//! The non-blocking logger: a bounded channel to one writer thread.
//!
//! # Contract
//!
//! - **Bounded.** Records wait in a channel of fixed capacity
//!   ([`LogSettings::capacity`], default 16384), and each message is cut to
//!   [`LogSettings::max_message_length`] bytes (default 2000) plus a marker, so
//!   the memory held by pending log lines is bounded.
//! - **Never blocks.** A `log()` call filters by level, formats, truncates and
//!   `try_send`s. It never waits for the channel, the writer thread or a sink:
//!   a stalled stderr or a slow disk cannot stall a connection thread.
//! - **Drops and counts instead of waiting.** When the channel is full (or the
//!   writer is gone) the record is discarded and a counter is incremented; see
//!   [`AsyncLogger::dropped`], [`LogControl::dropped`] and
//!   [`records_dropped_total`] (the `huddle_log_records_dropped_total` metric).
//!
//! Only shutdown code waits, on purpose: [`LogControl::flush`] and
//! [`LogWriter::flush`] block the caller until what was queued is written.
//!
//! # What this module owns
//!
//! - [`AsyncLogger`] (`logger.rs`): the [`::log::Log`] implementation. Its level
//!   and length limit are atomics, so config hot reload can change them.
//! - [`LogWriter`] (`writer.rs`): the thread named `log-writer`, the only code
//!   that touches sinks. Lines are formatted by simplelog (`WriteLogger` per
//!   sink), with the caller's thread name in front of the message:
//!   `2026-05-01T09:30:12.123456789Z [INFO] huddle::net: [conn-17] hello`.
//! - The owned record and [`truncate_message`] (`record.rs`).
//! - The panic hook (`panic.rs`): panics are logged at error level.
//! - [`install`]: stderr (+ optional append-mode file) sinks, the global
//!   logger, the panic hook, and the [`LogControl`] handle.
//!
//! Inside the crate this module is `crate::log`; the `log` crate is `::log`.

mod logger;
mod panic;
mod record;
mod writer;

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ::log::LevelFilter;

pub use logger::AsyncLogger;
pub use panic::PANIC_TARGET;
pub use record::{UNNAMED_THREAD, truncate_message};
pub use writer::{LogWriter, WRITER_THREAD};

/// Logger configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    /// Records less severe than this are discarded (changeable at run time).
    pub level: LevelFilter,
    /// Longest message kept whole, in bytes; longer ones keep head and tail
    /// around a `…[truncated N bytes]…` marker (changeable at run time).
    pub max_message_length: usize,
    /// Records the channel holds before new ones are dropped (minimum 1).
    pub capacity: usize,
    /// Also append every line to this file.
    pub file: Option<PathBuf>,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            level: LevelFilter::Info,
            max_message_length: 2000,
            capacity: 16384,
            file: None,
        }
    }
}

/// Handle on the installed logger. Cheap to clone; dropping it does not stop
/// logging (the writer thread lives as long as the process).
#[derive(Debug, Clone)]
pub struct LogControl {
    logger: AsyncLogger,
    writer: Arc<LogWriter>,
}

impl LogControl {
    /// The current level filter.
    pub fn level(&self) -> LevelFilter {
        self.logger.level()
    }

    /// Changes the level filter for every thread, effective immediately.
    pub fn set_level(&self, level: LevelFilter) {
        self.logger.set_level(level);
    }

    /// Changes the message length limit (bytes), effective immediately.
    pub fn set_max_message_length(&self, max_len: usize) {
        self.logger.set_max_message_length(max_len);
    }

    /// Records dropped so far.
    pub fn dropped(&self) -> u64 {
        self.logger.dropped()
    }

    /// Blocks until everything logged before this call is written, or
    /// `timeout` passes (returns `false`). For shutdown only.
    pub fn flush(&self, timeout: Duration) -> bool {
        self.writer.flush(timeout)
    }
}

/// The installed logger's drop counter.
static DROPPED: OnceLock<Arc<AtomicU64>> = OnceLock::new();

/// Keeps the installed writer alive for the whole process.
static WRITER: OnceLock<Arc<LogWriter>> = OnceLock::new();

/// Records the installed logger has dropped (0 if none is installed).
/// Exported as `huddle_log_records_dropped_total`.
pub fn records_dropped_total() -> u64 {
    DROPPED
        .get()
        .map_or(0, |dropped| dropped.load(Ordering::Relaxed))
}

/// Parses a config level: `error`, `warn`, `info`, `debug`, `trace` or `off`
/// (case-insensitive, surrounding spaces ignored).
pub fn parse_level(s: &str) -> Option<LevelFilter> {
    match s.trim().to_ascii_lowercase().as_str() {
        "off" => Some(LevelFilter::Off),
        "error" => Some(LevelFilter::Error),
        "warn" => Some(LevelFilter::Warn),
        "info" => Some(LevelFilter::Info),
        "debug" => Some(LevelFilter::Debug),
        "trace" => Some(LevelFilter::Trace),
        _ => None,
    }
}

/// Installs the process-wide logger: sinks are stderr plus, if
/// [`LogSettings::file`] is set, that file opened for appending (created if
/// missing). Sets `::log`'s max level to `Trace` (filtering is ours) and
/// replaces the panic hook.
///
/// Fails if the file cannot be opened, the writer thread cannot be spawned or
/// a logger is already installed.
pub fn install(settings: &LogSettings) -> Result<LogControl, String> {
    let mut sinks: Vec<Box<dyn Write + Send>> = vec![Box::new(std::io::stderr())];
    if let Some(path) = &settings.file {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| format!("cannot open log file {}: {e}", path.display()))?;
        sinks.push(Box::new(file));
    }
    let (logger, writer) = AsyncLogger::with_sinks(settings, sinks)
        .map_err(|e| format!("cannot start the log writer thread: {e}"))?;
    ::log::set_boxed_logger(Box::new(logger.clone()))
        .map_err(|_| "a logger is already installed".to_owned())?;
    ::log::set_max_level(LevelFilter::Trace);
    let writer = Arc::new(writer);
    // `set_boxed_logger` succeeds once per process, so these are empty.
    let _ = DROPPED.set(logger.dropped_counter());
    let _ = WRITER.set(Arc::clone(&writer));
    panic::install_hook(logger.clone());
    Ok(LogControl { logger, writer })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_level_accepts_config_values() {
        assert_eq!(parse_level("error"), Some(LevelFilter::Error));
        assert_eq!(parse_level("warn"), Some(LevelFilter::Warn));
        assert_eq!(parse_level("info"), Some(LevelFilter::Info));
        assert_eq!(parse_level(" Debug "), Some(LevelFilter::Debug));
        assert_eq!(parse_level("TRACE"), Some(LevelFilter::Trace));
        assert_eq!(parse_level("off"), Some(LevelFilter::Off));
        assert_eq!(parse_level("warning"), None);
        assert_eq!(parse_level(""), None);
    }

    #[test]
    fn default_settings() {
        let s = LogSettings::default();
        assert_eq!(s.level, LevelFilter::Info);
        assert_eq!(s.max_message_length, 2000);
        assert_eq!(s.capacity, 16384);
        assert_eq!(s.file, None);
    }
}
