//! The acceptor: one mio `Poll` over the listeners and a shutdown waker.
//! Each accepted socket gets its own connection thread at once; the acceptor
//! never reads from a socket itself.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};

use super::connection::{self, Listener};
use crate::context::ServerContext;

const SHUTDOWN: Token = Token(usize::MAX);

/// Binds a listener before anything else runs; a busy port is fatal (§1.1).
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let std_listener = std::net::TcpListener::bind(addr)?;
    std_listener.set_nonblocking(true)?;
    Ok(TcpListener::from_std(std_listener))
}

/// Accepts until shutdown is requested.
pub fn run(mut listeners: Vec<(TcpListener, Listener)>, ctx: Arc<ServerContext>) -> io::Result<()> {
    let mut poll = Poll::new()?;
    let waker = Arc::new(Waker::new(poll.registry(), SHUTDOWN)?);
    ctx.shutdown.wake_on_request(Arc::clone(&waker));
    for (i, (listener, _)) in listeners.iter_mut().enumerate() {
        poll.registry()
            .register(listener, Token(i), Interest::READABLE)?;
    }
    let mut events = Events::with_capacity(64);
    let mut next_conn_id: u64 = 1;
    // After an accept error (e.g. out of descriptors) edge-triggered readiness
    // may not repeat, so poll again soon instead of waiting for a new event.
    let mut retry_soon = false;
    loop {
        if ctx.shutdown.is_requested() {
            return Ok(());
        }
        let timeout = retry_soon.then_some(Duration::from_millis(100));
        match poll.poll(&mut events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        if ctx.shutdown.is_requested() {
            return Ok(());
        }
        retry_soon = false;
        for (listener, kind) in &listeners {
            loop {
                match listener.accept() {
                    Ok((socket, peer)) => {
                        let _ = socket.set_nodelay(true);
                        connection::spawn(socket, peer, *kind, next_conn_id, Arc::clone(&ctx));
                        next_conn_id += 1;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        ::log::warn!("accept failed: {e}");
                        retry_soon = true;
                        break;
                    }
                }
            }
        }
    }
}
