//! [`LogWriter`]: the `log-writer` thread, the only place that touches sinks.
//!
//! Lines are produced by simplelog: each owned record is rebuilt into a
//! [`::log::Record`] and handed to a `simplelog::WriteLogger` per sink (joined
//! by a `simplelog::CombinedLogger` when there are several), so the line
//! format is simplelog's, with the caller's thread name in front of the
//! message:
//!
//! ```text
//! 2026-05-01T09:30:12.123456789Z [INFO] huddle::net: [conn-17] hello from badge 7
//! ```

use std::io::{BufWriter, Write};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use simplelog::{CombinedLogger, Config, ConfigBuilder, LevelFilter, SharedLogger, WriteLogger};

use super::record::{Msg, OwnedRecord};

/// Name of the writer thread.
pub const WRITER_THREAD: &str = "log-writer";

/// How long dropping a [`LogWriter`] waits for the thread to finish writing.
const DROP_TIMEOUT: Duration = Duration::from_secs(5);

/// Flush the sinks at least this often during a continuous stream of
/// records, so lines do not sit in the buffer while the channel never empties.
const FLUSH_EVERY: usize = 1024;

/// Owns the `log-writer` thread.
///
/// [`flush`](Self::flush) waits for everything queued so far to be written.
/// [`close`](Self::close) (or dropping) writes what is queued, stops the
/// thread and joins it; after that the logger counts every record as dropped.
#[derive(Debug)]
pub struct LogWriter {
    tx: Sender<Msg>,
    handle: Option<JoinHandle<()>>,
    /// Disconnects when the thread exits (its sender half is dropped).
    exited: Receiver<()>,
}

impl LogWriter {
    pub(crate) fn spawn(
        rx: Receiver<Msg>,
        tx: Sender<Msg>,
        sinks: Vec<Box<dyn Write + Send>>,
    ) -> std::io::Result<LogWriter> {
        let (exit_guard, exited) = crossbeam_channel::bounded::<()>(0);
        let handle = std::thread::Builder::new()
            .name(WRITER_THREAD.to_owned())
            .spawn(move || {
                let _exit_guard = exit_guard;
                run(&rx, build_logger(sinks).as_ref());
            })?;
        Ok(LogWriter {
            tx,
            handle: Some(handle),
            exited,
        })
    }

    /// Waits until every record queued before this call has been written and
    /// the sinks flushed. Returns `false` if that did not happen within
    /// `timeout` (sink stalled, writer gone).
    ///
    /// This blocks the calling thread; it is meant for shutdown and tests,
    /// never for a thread that serves devices.
    pub fn flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let (ack_tx, ack_rx) = crossbeam_channel::bounded(1);
        if self.tx.send_deadline(Msg::Flush(ack_tx), deadline).is_err() {
            return false;
        }
        ack_rx.recv_deadline(deadline).is_ok()
    }

    /// Writes what is queued, stops the thread and joins it. Returns `false`
    /// if the thread did not finish within `timeout`; it is then left
    /// running detached.
    pub fn close(mut self, timeout: Duration) -> bool {
        self.stop(timeout)
    }

    fn stop(&mut self, timeout: Duration) -> bool {
        let Some(handle) = self.handle.take() else {
            return true;
        };
        let deadline = Instant::now() + timeout;
        // An error means the thread is gone already (or stalled, see below).
        let _ = self.tx.send_deadline(Msg::Shutdown, deadline);
        match self.exited.recv_deadline(deadline) {
            Err(RecvTimeoutError::Disconnected) => handle.join().is_ok(),
            // Nothing is ever sent on `exited`; only a timeout remains.
            Ok(()) | Err(RecvTimeoutError::Timeout) => false,
        }
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        self.stop(DROP_TIMEOUT);
    }
}

/// simplelog's configuration for our lines: RFC 3339 UTC time, level and
/// target on every line; no thread (the writer's own) and no location (not
/// captured).
fn config() -> Config {
    ConfigBuilder::new()
        .set_time_format_rfc3339()
        .set_time_level(LevelFilter::Error)
        .set_target_level(LevelFilter::Error)
        .set_thread_level(LevelFilter::Off)
        .set_location_level(LevelFilter::Off)
        .build()
}

fn build_logger(sinks: Vec<Box<dyn Write + Send>>) -> Box<dyn ::log::Log> {
    let mut loggers: Vec<Box<dyn SharedLogger>> = sinks
        .into_iter()
        .map(|sink| -> Box<dyn SharedLogger> {
            WriteLogger::new(LevelFilter::Trace, config(), BufWriter::new(sink))
        })
        .collect();
    if loggers.len() == 1
        && let Some(only) = loggers.pop()
    {
        return only.as_log();
    }
    CombinedLogger::new(loggers)
}

/// The writer loop: block for one message, then drain without blocking, then
/// flush; exit on `Shutdown` or when every sender is gone.
fn run(rx: &Receiver<Msg>, logger: &dyn ::log::Log) {
    while let Ok(msg) = rx.recv() {
        let mut batch = 0usize;
        let mut next = Some(msg);
        while let Some(msg) = next {
            match msg {
                Msg::Record(record) => {
                    write_record(logger, &record);
                    batch += 1;
                    if batch.is_multiple_of(FLUSH_EVERY) {
                        logger.flush();
                    }
                }
                Msg::Flush(ack) => {
                    logger.flush();
                    let _ = ack.send(());
                }
                Msg::Shutdown => {
                    logger.flush();
                    return;
                }
            }
            next = rx.try_recv().ok();
        }
        logger.flush();
    }
    logger.flush();
}

fn write_record(logger: &dyn ::log::Log, record: &OwnedRecord) {
    logger.log(
        &::log::Record::builder()
            .args(format_args!("[{}] {}", record.thread, record.message))
            .level(record.level)
            .target(&record.target)
            .build(),
    );
}
