//! The first seconds of a connection (PROTOCOL.md §1.1–1.4): read the request
//! head under a 5 s deadline (a slowloris client is cut off), then either
//! answer plain HTTP or resolve identity, authenticate and let tungstenite
//! complete the upgrade.

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Poll};
use tungstenite::handshake::HandshakeError;
use tungstenite::handshake::server::{ErrorResponse, Request, Response as UpgradeResponse};
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{WebSocket, http};

use super::wait::{until_ready, would_block};
use crate::http::request::{HeadParse, RequestHead, parse_head};
use crate::http::response::Response;

/// Whole-handshake deadline, from accept to a finished upgrade or HTTP answer.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Above this a WebSocket message is refused with close code 1009 (§1.1).
pub const MAX_WS_MESSAGE: usize = 1024 * 1024;

/// A socket that first replays bytes already read while sniffing the request.
///
/// Reads return the request head alone first (tungstenite rejects bytes after
/// the head as junk if they arrive in the same read), then any early bytes,
/// then the socket.
pub struct Prefixed {
    buffered: Vec<u8>,
    /// Next byte of `buffered` to hand out.
    pos: usize,
    /// End of the request head inside `buffered`.
    head_end: usize,
    pub socket: TcpStream,
}

impl Read for Prefixed {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos < self.buffered.len() {
            let end = if self.pos < self.head_end {
                self.head_end
            } else {
                self.buffered.len()
            };
            let n = (end - self.pos).min(buf.len());
            buf[..n].copy_from_slice(&self.buffered[self.pos..self.pos + n]);
            self.pos += n;
            if self.pos == self.buffered.len() {
                // Early bytes are rare; give the memory back once replayed.
                self.buffered = Vec::new();
                self.pos = 0;
                self.head_end = 0;
            }
            return Ok(n);
        }
        self.socket.read(buf)
    }
}

impl Write for Prefixed {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.socket.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.socket.flush()
    }
}

/// Reads until a complete request head is buffered. Returns the head and
/// every byte read so far (head included).
pub fn read_head(
    socket: &mut TcpStream,
    poll: &mut Poll,
    events: &mut Events,
    deadline: Instant,
) -> io::Result<(RequestHead, Vec<u8>)> {
    let mut buffered = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        match socket.read(&mut chunk) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                buffered.extend_from_slice(&chunk[..n]);
                match parse_head(&buffered) {
                    HeadParse::Complete(head) => return Ok((head, buffered)),
                    HeadParse::Partial => continue,
                    HeadParse::Invalid(reason) => {
                        return Err(io::Error::new(io::ErrorKind::InvalidData, reason));
                    }
                }
            }
            Err(e) if would_block(&e) => until_ready(poll, events, deadline)?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Reads the rest of a request body (`already` holds bytes read with the head).
pub fn read_body(
    socket: &mut TcpStream,
    poll: &mut Poll,
    events: &mut Events,
    deadline: Instant,
    mut already: Vec<u8>,
    length: usize,
) -> io::Result<Vec<u8>> {
    let mut chunk = [0u8; 4096];
    while already.len() < length {
        match socket.read(&mut chunk) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => already.extend_from_slice(&chunk[..n]),
            Err(e) if would_block(&e) => until_ready(poll, events, deadline)?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    already.truncate(length);
    Ok(already)
}

/// Writes a whole HTTP response, then closes our side.
pub fn write_response(
    socket: &mut TcpStream,
    poll: &mut Poll,
    events: &mut Events,
    deadline: Instant,
    response: &Response,
) -> io::Result<()> {
    crate::metrics::METRICS.count_http(response.status);
    let bytes = response.to_bytes();
    let mut written = 0;
    while written < bytes.len() {
        match socket.write(&bytes[written..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => written += n,
            Err(e) if would_block(&e) => until_ready(poll, events, deadline)?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    let _ = socket.shutdown(std::net::Shutdown::Write);
    Ok(())
}

/// Bytes read from the socket at once.
const READ_BUFFER_BYTES: usize = 8 * 1024;

pub fn websocket_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(MAX_WS_MESSAGE))
        .max_frame_size(Some(MAX_WS_MESSAGE))
        // tungstenite zero-fills up to this much of its read buffer before
        // every socket read, so the default 128 KiB cost a memset per read
        // and 128 KiB resident per connection. Device frames are a few
        // hundred bytes; a bigger message reserves its own length anyway.
        .read_buffer_size(READ_BUFFER_BYTES)
        // Frames go out as soon as they are written: devices wait on replies.
        .write_buffer_size(0)
        // A device that stops reading loses frames instead of growing memory.
        .max_write_buffer_size(MAX_WS_MESSAGE)
}

/// Lets tungstenite finish the upgrade. `refusal` (from auth) makes it answer
/// that response instead of 101. `Ok(None)` means the device was refused.
// tungstenite's `Callback` trait fixes the (large) error type of the closure.
#[allow(clippy::result_large_err)]
pub fn upgrade(
    socket: TcpStream,
    buffered: Vec<u8>,
    head_len: usize,
    refusal: Option<Response>,
    poll: &mut Poll,
    events: &mut Events,
    deadline: Instant,
) -> io::Result<Option<WebSocket<Prefixed>>> {
    let stream = Prefixed {
        buffered,
        pos: 0,
        head_end: head_len,
        socket,
    };
    let refused = refusal.is_some();
    let callback = move |_request: &Request, response: UpgradeResponse| match refusal {
        None => Ok(response),
        Some(refusal) => Err(error_response(&refusal)),
    };
    let mut attempt =
        tungstenite::accept_hdr_with_config(stream, callback, Some(websocket_config()));
    loop {
        match attempt {
            Ok(ws) => {
                crate::metrics::METRICS.count_http(101);
                return Ok(Some(ws));
            }
            Err(HandshakeError::Interrupted(mid)) => {
                until_ready(poll, events, deadline)?;
                attempt = mid.handshake();
            }
            Err(HandshakeError::Failure(tungstenite::Error::Http(response))) if refused => {
                crate::metrics::METRICS.count_http(response.status().as_u16());
                return Ok(None);
            }
            Err(HandshakeError::Failure(e)) => {
                return Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string()));
            }
        }
    }
}

fn error_response(response: &Response) -> ErrorResponse {
    let mut builder = http::Response::builder()
        .status(response.status)
        .header("Content-Type", response.content_type);
    for (name, value) in crate::http::response::CORS_HEADERS {
        builder = builder.header(name, value);
    }
    let body = String::from_utf8_lossy(&response.body).into_owned();
    builder.body(Some(body)).unwrap_or_else(|_| {
        let mut fallback = ErrorResponse::new(Some("unauthorized".to_string()));
        *fallback.status_mut() = http::StatusCode::UNAUTHORIZED;
        fallback
    })
}
