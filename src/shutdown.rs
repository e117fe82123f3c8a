//! The process-wide stop signal. SIGTERM/SIGINT set it; the acceptor stops
//! taking sockets and every connection is told to close with 1001.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;

/// Cloneable; all clones observe the same flag.
#[derive(Clone, Default)]
pub struct Shutdown {
    requested: Arc<AtomicBool>,
    /// Wakers of the threads that sleep in a `Poll` and must notice at once.
    wakers: Arc<Mutex<Vec<Arc<mio::Waker>>>>,
}

impl Shutdown {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_requested(&self) -> bool {
        self.requested.load(Ordering::Acquire)
    }

    /// Sets the flag and wakes every registered poller. Idempotent.
    pub fn request(&self) {
        self.requested.store(true, Ordering::Release);
        for waker in self.wakers.lock().iter() {
            let _ = waker.wake();
        }
    }

    pub fn wake_on_request(&self, waker: Arc<mio::Waker>) {
        self.wakers.lock().push(waker);
    }
}
