//! The panic hook: panics become error records instead of bare stderr text.

use std::any::Any;
use std::backtrace::{Backtrace, BacktraceStatus};
use std::io::Write;
use std::panic::PanicHookInfo;

use super::logger::AsyncLogger;
use super::record::UNNAMED_THREAD;
use super::writer::WRITER_THREAD;

/// Target used for panic records.
pub const PANIC_TARGET: &str = "panic";

/// Replaces the process panic hook (the previous one is not called).
///
/// The hook queues `thread '<name>' panicked at <location>: <payload>` at
/// error level, bypassing the level filter and the length limit: a panic is
/// never filtered out, and its payload is never cut out by truncation.
/// When the record cannot be queued (channel full, writer gone), or the
/// panicking thread is the writer itself, the line is written straight to
/// stderr instead, so a panic is never lost silently.
/// A backtrace is appended when `RUST_BACKTRACE` asks for one.
pub(crate) fn install_hook(logger: AsyncLogger) {
    std::panic::set_hook(Box::new(move |info| {
        let line = panic_line(info);
        // A panicking writer thread would never write its own record.
        let on_writer = std::thread::current().name() == Some(WRITER_THREAD);
        if on_writer
            || !logger.enqueue(
                ::log::Level::Error,
                PANIC_TARGET,
                &format_args!("{line}"),
                false,
            )
        {
            let _ = writeln!(std::io::stderr().lock(), "{line}");
        }
    }));
}

/// `thread '<name>' panicked at <location>: <payload>[\n<backtrace>]`.
pub(crate) fn panic_line(info: &PanicHookInfo) -> String {
    let current = std::thread::current();
    let thread = current.name().unwrap_or(UNNAMED_THREAD);
    let location = info
        .location()
        .map_or_else(|| "<unknown location>".to_owned(), ToString::to_string);
    let payload = payload_text(info.payload());
    let backtrace = Backtrace::capture();
    match backtrace.status() {
        BacktraceStatus::Captured => {
            format!("thread '{thread}' panicked at {location}: {payload}\n{backtrace}")
        }
        _ => format!("thread '{thread}' panicked at {location}: {payload}"),
    }
}

fn payload_text(payload: &(dyn Any + Send)) -> &str {
    if let Some(text) = payload.downcast_ref::<&'static str>() {
        text
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text
    } else {
        "Box<dyn Any>"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_text_handles_str_string_and_other() {
        let s: Box<dyn Any + Send> = Box::new("static");
        assert_eq!(payload_text(s.as_ref()), "static");
        let s: Box<dyn Any + Send> = Box::new(String::from("owned"));
        assert_eq!(payload_text(s.as_ref()), "owned");
        let s: Box<dyn Any + Send> = Box::new(42u32);
        assert_eq!(payload_text(s.as_ref()), "Box<dyn Any>");
    }
}
