//! The owned record that crosses the channel, and message truncation.

use crossbeam_channel::Sender;

/// Name recorded for threads that were spawned without a name.
pub const UNNAMED_THREAD: &str = "<unnamed>";

/// Everything the writer thread needs to print one line, owned so it can
/// outlive the caller's `format_args!` temporaries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OwnedRecord {
    pub(crate) level: ::log::Level,
    pub(crate) target: String,
    pub(crate) thread: String,
    pub(crate) message: String,
}

/// What travels from callers to the writer thread.
#[derive(Debug)]
pub(crate) enum Msg {
    /// One line to write.
    Record(OwnedRecord),
    /// Write everything received before this message, flush the sinks, then
    /// signal the sender.
    Flush(Sender<()>),
    /// Flush the sinks and end the writer thread.
    Shutdown,
}

/// Shortens `message` to at most `max_len` bytes plus a marker.
///
/// A message of `max_len` bytes or less is returned unchanged (no copy).
/// A longer one keeps its head and its tail (about half of `max_len` each, cut
/// on UTF-8 character boundaries) with `…[truncated N bytes]…` in between,
/// where `N` is the number of bytes removed. The head and tail together never
/// exceed `max_len` bytes, so the result is at most `max_len` plus the marker.
pub fn truncate_message(message: String, max_len: usize) -> String {
    let len = message.len();
    if len <= max_len {
        return message;
    }
    let head_end = floor_char_boundary(&message, max_len / 2);
    // `max_len - head_end` bytes are left for the tail; rounding the start up to
    // a boundary can only make the tail shorter.
    let tail_start = ceil_char_boundary(&message, len - (max_len - head_end));
    let removed = tail_start - head_end;
    let (head, rest) = message.split_at(head_end);
    let tail = &rest[removed..];
    format!("{head}…[truncated {removed} bytes]…{tail}")
}

/// The largest char boundary `<= index` (index clamped to the length).
fn floor_char_boundary(s: &str, index: usize) -> usize {
    let mut i = index.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The smallest char boundary `>= index` (index clamped to the length).
fn ceil_char_boundary(s: &str, index: usize) -> usize {
    let mut i = index.min(s.len());
    while !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Splits a truncated message into (head, removed count, tail).
    fn parts(out: &str) -> (&str, usize, &str) {
        let (head, rest) = out.split_once("…[truncated ").expect("marker start");
        let (count, tail) = rest.split_once(" bytes]…").expect("marker end");
        (head, count.parse().expect("count"), tail)
    }

    #[test]
    fn short_message_is_unchanged() {
        assert_eq!(truncate_message("hello".to_owned(), 2000), "hello");
        let exact = "x".repeat(2000);
        assert_eq!(truncate_message(exact.clone(), 2000), exact);
        assert_eq!(truncate_message(String::new(), 0), "");
    }

    #[test]
    fn long_message_keeps_head_tail_and_marker() {
        let message = format!("HEAD{}TAIL", "m".repeat(7115));
        let len = message.len();
        let out = truncate_message(message.clone(), 2000);
        let (head, removed, tail) = parts(&out);
        assert!(head.starts_with("HEAD"));
        assert!(tail.ends_with("TAIL"));
        assert_eq!(head.len() + tail.len(), 2000);
        assert_eq!(removed, len - 2000);
        assert!(message.starts_with(head) && message.ends_with(tail));
        assert!(out.len() <= 2000 + "…[truncated  bytes]…".len() + 20);
    }

    #[test]
    fn multi_byte_utf8_is_cut_on_char_boundaries() {
        // 'é' is 2 bytes, '😀' is 4 bytes: no limit lands on a boundary for all.
        for max_len in [0, 1, 2, 3, 5, 7, 10, 11, 101] {
            let message = "é😀a".repeat(50);
            let out = truncate_message(message.clone(), max_len);
            let (head, removed, tail) = parts(&out);
            assert!(head.len() + tail.len() <= max_len, "max_len {max_len}");
            assert_eq!(head.len() + removed + tail.len(), message.len());
            assert!(message.starts_with(head) && message.ends_with(tail));
        }
    }

    #[test]
    fn zero_limit_leaves_only_the_marker() {
        let out = truncate_message("abcdef".to_owned(), 0);
        assert_eq!(out, "…[truncated 6 bytes]…");
    }
}
