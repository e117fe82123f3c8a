//! Waiting on one socket's readiness with a deadline, for the short phases of
//! a connection that run before its event loop (request head, HTTP answer,
//! WebSocket upgrade).

use std::io;
use std::time::Instant;

use mio::{Events, Poll};

/// Blocks until some event arrives for this connection's `Poll`, or the
/// deadline passes (`Err(TimedOut)`). Spurious wakes are fine: callers retry
/// their non-blocking operation and come back here on `WouldBlock`.
pub fn until_ready(poll: &mut Poll, events: &mut Events, deadline: Instant) -> io::Result<()> {
    let now = Instant::now();
    if now >= deadline {
        return Err(io::Error::new(io::ErrorKind::TimedOut, "deadline passed"));
    }
    match poll.poll(events, Some(deadline - now)) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(()),
        Err(e) => Err(e),
    }
}

pub fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}
