//! [`AsyncLogger`]: the caller side. Filters, formats, truncates and
//! `try_send`s; never waits.

use std::fmt;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crossbeam_channel::Sender;

use super::LogSettings;
use super::record::{Msg, OwnedRecord, UNNAMED_THREAD, truncate_message};
use super::writer::LogWriter;

/// Settings that can change while the logger runs (config hot reload).
#[derive(Debug)]
struct Shared {
    /// A [`::log::LevelFilter`] as `usize` (`Off` = 0 … `Trace` = 5).
    level: AtomicUsize,
    max_message_length: AtomicUsize,
    dropped: Arc<AtomicU64>,
}

/// The non-blocking [`::log::Log`] implementation.
///
/// Cheap to clone: clones share the level, the length limit, the drop counter
/// and the channel.
#[derive(Debug, Clone)]
pub struct AsyncLogger {
    shared: Arc<Shared>,
    tx: Sender<Msg>,
}

impl AsyncLogger {
    /// A logger writing to one sink, and the writer thread that drains it.
    ///
    /// Fails only if the writer thread cannot be spawned.
    pub fn with_sink(
        settings: &LogSettings,
        sink: Box<dyn Write + Send>,
    ) -> std::io::Result<(AsyncLogger, LogWriter)> {
        Self::with_sinks(settings, vec![sink])
    }

    /// A logger writing every line to each of `sinks`, and its writer thread.
    ///
    /// Fails only if the writer thread cannot be spawned.
    pub fn with_sinks(
        settings: &LogSettings,
        sinks: Vec<Box<dyn Write + Send>>,
    ) -> std::io::Result<(AsyncLogger, LogWriter)> {
        // A zero-capacity crossbeam channel is a rendezvous: `try_send` would
        // only succeed while the writer happens to be waiting.
        let (tx, rx) = crossbeam_channel::bounded(settings.capacity.max(1));
        let writer = LogWriter::spawn(rx, tx.clone(), sinks)?;
        let shared = Shared {
            level: AtomicUsize::new(settings.level as usize),
            max_message_length: AtomicUsize::new(settings.max_message_length),
            dropped: Arc::new(AtomicU64::new(0)),
        };
        let logger = AsyncLogger {
            shared: Arc::new(shared),
            tx,
        };
        Ok((logger, writer))
    }

    /// The current level filter.
    pub fn level(&self) -> ::log::LevelFilter {
        level_from_usize(self.shared.level.load(Ordering::Relaxed))
    }

    /// Changes the level filter; takes effect for the next `log()` call.
    pub fn set_level(&self, level: ::log::LevelFilter) {
        self.shared.level.store(level as usize, Ordering::Relaxed);
    }

    /// The current message length limit in bytes.
    pub fn max_message_length(&self) -> usize {
        self.shared.max_message_length.load(Ordering::Relaxed)
    }

    /// Changes the message length limit (bytes); takes effect for the next
    /// `log()` call.
    pub fn set_max_message_length(&self, max_len: usize) {
        self.shared
            .max_message_length
            .store(max_len, Ordering::Relaxed);
    }

    /// Records dropped so far because the channel was full or the writer gone.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// The drop counter itself, shared with every clone of this logger.
    pub fn dropped_counter(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.shared.dropped)
    }

    /// Formats, truncates (if `truncate`) and queues one record without
    /// consulting the level filter. Returns `false` (and counts a drop) if it
    /// was not queued.
    pub(crate) fn enqueue(
        &self,
        level: ::log::Level,
        target: &str,
        args: &fmt::Arguments,
        truncate: bool,
    ) -> bool {
        // Cheap early out under a flood: skip formatting work that would be
        // thrown away. Racy by design (a slot may free up right after), which
        // only ever errs towards dropping, never towards waiting.
        if self.tx.is_full() {
            self.count_drop();
            return false;
        }
        let mut message = fmt::format(*args);
        if truncate {
            message = truncate_message(message, self.max_message_length());
        }
        let current = std::thread::current();
        let record = OwnedRecord {
            level,
            target: target.to_owned(),
            thread: current.name().unwrap_or(UNNAMED_THREAD).to_owned(),
            message,
        };
        match self.tx.try_send(Msg::Record(record)) {
            Ok(()) => true,
            Err(_) => {
                self.count_drop();
                false
            }
        }
    }

    fn count_drop(&self) {
        self.shared.dropped.fetch_add(1, Ordering::Relaxed);
    }
}

impl ::log::Log for AsyncLogger {
    fn enabled(&self, metadata: &::log::Metadata) -> bool {
        metadata.level() as usize <= self.shared.level.load(Ordering::Relaxed)
    }

    fn log(&self, record: &::log::Record) {
        // The `log` macros do not call `enabled`, so filter here too.
        if self.enabled(record.metadata()) {
            self.enqueue(record.level(), record.target(), record.args(), true);
        }
    }

    /// Does nothing: waiting for the writer is not allowed on a caller's
    /// thread. Use [`LogWriter::flush`] (or `LogControl::flush`) at shutdown.
    fn flush(&self) {}
}

/// Inverse of `LevelFilter as usize`.
fn level_from_usize(n: usize) -> ::log::LevelFilter {
    match n {
        0 => ::log::LevelFilter::Off,
        1 => ::log::LevelFilter::Error,
        2 => ::log::LevelFilter::Warn,
        3 => ::log::LevelFilter::Info,
        4 => ::log::LevelFilter::Debug,
        _ => ::log::LevelFilter::Trace,
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::time::Duration;

    use ::log::{Level, LevelFilter, Log, Metadata, Record};
    use parking_lot::Mutex;

    use super::*;

    /// A sink that keeps everything written to it.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock()).into_owned()
        }
    }

    fn logger(level: LevelFilter) -> (AsyncLogger, LogWriter, Captured) {
        let sink = Captured::default();
        let settings = LogSettings {
            level,
            ..LogSettings::default()
        };
        let (logger, writer) =
            AsyncLogger::with_sink(&settings, Box::new(sink.clone())).expect("spawn writer");
        (logger, writer, sink)
    }

    fn emit(logger: &AsyncLogger, level: Level, message: &str) {
        logger.log(
            &Record::builder()
                .args(format_args!("{message}"))
                .level(level)
                .target("unit")
                .build(),
        );
    }

    #[test]
    fn level_filtering() {
        let (logger, writer, sink) = logger(LevelFilter::Info);
        let meta = |level| Metadata::builder().level(level).target("t").build();
        assert!(logger.enabled(&meta(Level::Error)));
        assert!(logger.enabled(&meta(Level::Info)));
        assert!(!logger.enabled(&meta(Level::Debug)));

        emit(&logger, Level::Info, "kept-info");
        emit(&logger, Level::Debug, "filtered-debug");
        logger.set_level(LevelFilter::Trace);
        assert_eq!(logger.level(), LevelFilter::Trace);
        emit(&logger, Level::Trace, "kept-trace");
        logger.set_level(LevelFilter::Off);
        emit(&logger, Level::Error, "filtered-error");

        assert!(writer.flush(Duration::from_secs(10)));
        let text = sink.text();
        assert!(text.contains("kept-info"), "{text}");
        assert!(text.contains("kept-trace"), "{text}");
        assert!(!text.contains("filtered"), "{text}");
        assert_eq!(text.lines().count(), 2, "{text}");
        assert_eq!(logger.dropped(), 0);
    }

    #[test]
    fn captures_thread_name_level_and_target() {
        let (logger, writer, sink) = logger(LevelFilter::Trace);
        let named = logger.clone();
        std::thread::Builder::new()
            .name("badge-7".to_owned())
            .spawn(move || emit(&named, Level::Warn, "from named"))
            .expect("spawn")
            .join()
            .expect("join");
        let unnamed = logger.clone();
        std::thread::spawn(move || emit(&unnamed, Level::Info, "from unnamed"))
            .join()
            .expect("join");

        assert!(writer.flush(Duration::from_secs(10)));
        let text = sink.text();
        let named_line = text
            .lines()
            .find(|l| l.contains("from named"))
            .expect("line");
        assert!(named_line.contains("[WARN]"), "{named_line}");
        assert!(
            named_line.contains("unit: [badge-7] from named"),
            "{named_line}"
        );
        let unnamed_line = text
            .lines()
            .find(|l| l.contains("from unnamed"))
            .expect("line");
        assert!(unnamed_line.contains("[INFO]"), "{unnamed_line}");
        assert!(
            unnamed_line.contains("[<unnamed>] from unnamed"),
            "{unnamed_line}"
        );
    }

    #[test]
    fn long_messages_are_truncated_before_queueing() {
        let (logger, writer, sink) = logger(LevelFilter::Info);
        logger.set_max_message_length(100);
        let long = format!("START{}END", "z".repeat(10_000));
        emit(&logger, Level::Info, &long);
        assert!(writer.flush(Duration::from_secs(10)));
        let text = sink.text();
        assert!(text.contains("START"), "{text}");
        assert!(text.contains("END\n"), "{text}");
        assert!(text.contains("…[truncated 9908 bytes]…"), "{text}");
        assert!(text.len() < 300, "{text}");
    }

    #[test]
    fn full_channel_drops_and_counts() {
        let settings = LogSettings {
            capacity: 4,
            ..LogSettings::default()
        };
        let (gate_tx, gate_rx) = crossbeam_channel::bounded::<()>(0);
        /// Blocks every write until the gate is dropped.
        struct Stalled(crossbeam_channel::Receiver<()>);
        impl Write for Stalled {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                let _ = self.0.recv();
                Ok(buf.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                let _ = self.0.recv();
                Ok(())
            }
        }
        let (logger, writer) =
            AsyncLogger::with_sink(&settings, Box::new(Stalled(gate_rx))).expect("spawn writer");
        for i in 0..100 {
            emit(&logger, Level::Info, &format!("record {i}"));
        }
        // At most the 4 queued records plus one the writer holds got through.
        assert!(logger.dropped() >= 95, "dropped {}", logger.dropped());
        drop(gate_tx);
        assert!(writer.flush(Duration::from_secs(10)));
    }

    #[test]
    fn level_round_trips_through_usize() {
        for level in LevelFilter::iter() {
            assert_eq!(level_from_usize(level as usize), level);
        }
    }
}
