//! One accepted socket on its own thread: the request head under the
//! handshake deadline, then either a plain HTTP answer or identity, auth and
//! the WebSocket upgrade, after which [`super::event_loop`] takes over.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Waker};

use super::event_loop::{EventLoop, SOCKET, WAKER};
use super::handle::ConnHandle;
use super::handshake::{self, HANDSHAKE_TIMEOUT};
use super::identity;
use crate::context::ServerContext;
use crate::http::response::Response;
use crate::http::{self as api, ApiContext};
use crate::metrics::METRICS;
use crate::protocol::FramingVersion;
use crate::session::Session;
use crate::timer::unix_ms;

const STACK_SIZE: usize = 256 * 1024;

/// Where a connection was accepted: the device port serves both WebSocket and
/// HTTP; the optional API-only port refuses upgrades with 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    Device,
    ApiOnly,
}

/// Starts the connection's thread. A failed spawn drops the socket.
pub fn spawn(
    socket: TcpStream,
    peer: SocketAddr,
    listener: Listener,
    conn_id: u64,
    ctx: Arc<ServerContext>,
) {
    let spawned = std::thread::Builder::new()
        .name(format!("conn-{conn_id}"))
        .stack_size(STACK_SIZE)
        .spawn(move || {
            if let Err(e) = serve(socket, peer, listener, conn_id, &ctx) {
                ::log::debug!("connection {conn_id} from {peer} ended: {e}");
            }
            crate::alloc::release_after_close();
        });
    if let Err(e) = spawned {
        ::log::error!("cannot start a thread for connection {conn_id} from {peer}: {e}");
    }
}

fn serve(
    mut socket: TcpStream,
    peer: SocketAddr,
    listener: Listener,
    conn_id: u64,
    ctx: &Arc<ServerContext>,
) -> io::Result<()> {
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(16);
    let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
    poll.registry()
        .register(&mut socket, SOCKET, Interest::READABLE | Interest::WRITABLE)?;
    let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
    let (head, buffered) = match handshake::read_head(&mut socket, &mut poll, &mut events, deadline)
    {
        Ok(read) => read,
        Err(e) if e.kind() == io::ErrorKind::InvalidData => {
            let response = Response::error(400, "BAD_REQUEST", &e.to_string());
            let _ =
                handshake::write_response(&mut socket, &mut poll, &mut events, deadline, &response);
            return Err(e);
        }
        Err(e) => return Err(e),
    };

    if !head.is_websocket_upgrade() || listener == Listener::ApiOnly {
        let response = if head.is_websocket_upgrade() {
            Response::error(400, "BAD_REQUEST", "device connections use the device port")
        } else {
            match head.content_length() {
                Err(reason) => Response::error(400, "BAD_REQUEST", &reason),
                Ok(length) => {
                    let early = buffered[head.head_len..].to_vec();
                    let body = handshake::read_body(
                        &mut socket,
                        &mut poll,
                        &mut events,
                        deadline,
                        early,
                        length,
                    )?;
                    let config = ctx.config.current();
                    api::route(&head, &body, &api_context(ctx, &config, peer))
                }
            }
        };
        return handshake::write_response(&mut socket, &mut poll, &mut events, deadline, &response);
    }

    let identity = identity::resolve(&head);
    if identity.generated {
        ::log::warn!(
            "connection {conn_id} from {peer} named no device; using generated id {}",
            identity.device_id
        );
    }
    let config = ctx.config.current();
    let refusal = super::auth::authorize(&config, &head, &identity.device_id)
        .err()
        .map(|refused| {
            ::log::warn!(
                "device {} from {peer} refused: {}",
                identity.device_id,
                refused.detail
            );
            Response::error(401, "UNAUTHORIZED", &refused.reason)
        });
    let framing = FramingVersion::from_header(head.header("protocol-version"));
    let head_len = head.head_len;
    let Some(ws) = handshake::upgrade(
        socket,
        buffered,
        head_len,
        refusal,
        &mut poll,
        &mut events,
        deadline,
    )?
    else {
        return Ok(());
    };

    let (handle, inbox) = ConnHandle::new(conn_id, &identity.device_id, Arc::clone(&waker));
    let now_ms = ctx.timers.now_ms();
    let session = Session::new(identity, framing, config, now_ms);
    ::log::info!(
        "device {} connected from {peer} (connection {conn_id}, session {}, framing v{})",
        session.device_id(),
        session.session_id,
        framing.number()
    );
    METRICS
        .connections
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    METRICS
        .connections_total
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut connection = EventLoop::new(ws, poll, events, inbox, handle, session, Arc::clone(ctx));
    let result = connection.run();
    connection.finish();
    METRICS
        .connections
        .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    result
}

fn api_context<'a>(
    ctx: &'a ServerContext,
    config: &'a crate::config::Config,
    peer: SocketAddr,
) -> ApiContext<'a> {
    ApiContext {
        config,
        device_url: &ctx.device_url,
        uptime_ms: ctx.uptime_ms(),
        connections: ctx.registry.live_count(),
        log_records_dropped: crate::log::records_dropped_total(),
        timer_lag_ms: ctx.timers.lag_ms_max(),
        now_unix_ms: unix_ms(),
        store: ctx.meetings.store().map(|s| s.as_ref()),
        tasks: ctx.workflow.store().map(|s| s.as_ref()),
        registry: &ctx.registry,
        client_ip: peer.ip(),
        limiter: api::ratelimit::global(),
    }
}
