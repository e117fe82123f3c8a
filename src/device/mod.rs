//! The device simulator behind `huddle device`: plays a WAV file to a server
//! the way a xiaozhi badge does, and checks the server's side of the contract.
//!
//! One run (PROTOCOL.md §1.2, §1.6, §2, §3.1):
//! 1. Connect with the firmware's headers (`Protocol-Version`, `Device-Id`,
//!    `Client-Id`, `Authorization`).
//! 2. Send the firmware hello; wait at most 10 s for the server's hello, which
//!    must echo the framing version and announce Opus/16000/1/60.
//! 3. `listen start`, the file as 60 ms Opus packets framed in the chosen
//!    version (real-time pace: 3 at once, then one per 60 ms), `listen stop`.
//! 4. Keep reading for the linger time, then close with 1000.
//!
//! Every JSON message the server sends is reported as one line prefixed with
//! the ms since the socket opened. The server misbehaves, and the run fails,
//! when it refuses the upgrade, does not answer hello in time, answers it
//! wrongly, sends any `"status":"error"` reply or a frame that breaks the
//! framing, or closes the socket before the device does.
//!
//! One WebSocket cannot be shared between a reader and a writer thread, so
//! reads are interleaved with the send schedule: while waiting for the next
//! packet's due time the socket is read with a timeout that ends at that time.
//!
//! The pieces are public so a load generator can reuse them: [`wav`] reads the
//! file, [`stream`] frames and paces packets, and [`run_frames`] drives one
//! connection with frames prepared once for many devices.

pub mod stream;
pub mod wav;

use std::fmt;
use std::io::{ErrorKind, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tungstenite::client::IntoClientRequest;
use tungstenite::http::{HeaderName, HeaderValue};
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Message, WebSocket};

use crate::audio::opus::{FRAME_MS, OpusEncoder, SAMPLE_RATE};
use crate::net::blocking_ws;
use crate::protocol::framing::{FramingVersion, decode};

/// How long the firmware waits for the server's hello (§1.6).
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on TCP connect, the upgrade, and any single blocked write.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the close handshake may take before the socket is just dropped;
/// the server's own close wait is 5 s (§1.1).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// The `mode` of `listen start` (§3.1), the same type the server parses.
pub use crate::protocol::inbound::ListenMode;

/// What one simulated device does.
#[derive(Debug, Clone)]
pub struct DeviceOptions {
    /// `ws://host:port/path`; TLS is not built in.
    pub url: String,
    /// 16 kHz mono 16-bit WAV to stream (used by [`run`], not [`run_frames`]).
    pub wav: PathBuf,
    pub mode: ListenMode,
    /// Sent as `Protocol-Version` and as the hello's `version`.
    pub version: FramingVersion,
    pub device_id: String,
    pub client_id: String,
    /// Sent as `Authorization: Bearer <token>`.
    pub token: Option<String>,
    /// Send packets as fast as possible instead of in real time.
    pub fast: bool,
    /// How long to keep reading after `listen stop` before closing.
    pub linger: Duration,
    pub hello_timeout: Duration,
}

impl DeviceOptions {
    /// Options with the defaults of `huddle device`: auto mode, framing v1, a
    /// random device-id and client-id, real-time pace, 1.5 s linger.
    pub fn new(url: impl Into<String>, wav: impl Into<PathBuf>) -> Self {
        DeviceOptions {
            url: url.into(),
            wav: wav.into(),
            mode: ListenMode::Auto,
            version: FramingVersion::V1,
            device_id: random_device_id(),
            client_id: uuid::Uuid::new_v4().to_string(),
            token: None,
            fast: false,
            linger: Duration::from_millis(1500),
            hello_timeout: HELLO_TIMEOUT,
        }
    }
}

/// A made-up Wi-Fi MAC: `02` marks it locally administered, so it can never
/// collide with a real badge's id.
pub fn random_device_id() -> String {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    format!(
        "02:00:00:{:02x}:{:02x}:{:02x}",
        bytes[0], bytes[1], bytes[2]
    )
}

/// What a successful run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceReport {
    pub session_id: String,
    pub packets_sent: usize,
    /// JSON messages (text frames and JSON-typed binary frames).
    pub messages_received: usize,
    /// Downlink audio frames.
    pub audio_frames_received: usize,
    /// From the socket opening to the end of the close handshake.
    pub elapsed: Duration,
}

impl fmt::Display for DeviceReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "sent {} packets, received {} messages in {} ms",
            self.packets_sent,
            self.messages_received,
            self.elapsed.as_millis()
        )?;
        if self.audio_frames_received > 0 {
            write!(f, " (and {} audio frames)", self.audio_frames_received)?;
        }
        Ok(())
    }
}

/// Why a run failed: the input was unusable, or the server broke the contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceError {
    /// The WAV file is missing, unreadable or in the wrong format.
    Wav(String),
    Encode(String),
    /// A URL, id or token that cannot go into a request.
    Options(String),
    Connect(String),
    /// The server answered the upgrade with an HTTP status instead of 101.
    Refused {
        status: u16,
        body: String,
    },
    Handshake(String),
    HelloTimeout(Duration),
    BadHello(String),
    /// The first `"status":"error"` reply, verbatim.
    ErrorReply(String),
    /// A frame that is not JSON text or does not parse in the framing version.
    BadFrame(String),
    /// The server closed before the device did; its close code and reason.
    ServerClosed {
        code: Option<u16>,
        reason: String,
    },
    /// The connection broke without a close frame.
    Lost(String),
}

impl fmt::Display for DeviceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceError::Wav(e) => write!(f, "{e}"),
            DeviceError::Encode(e) => write!(f, "opus encoding failed: {e}"),
            DeviceError::Options(e) => write!(f, "{e}"),
            DeviceError::Connect(e) => write!(f, "cannot connect: {e}"),
            DeviceError::Refused { status, body } => {
                write!(f, "server refused the WebSocket upgrade: HTTP {status}")?;
                if !body.is_empty() {
                    write!(f, ": {body}")?;
                }
                Ok(())
            }
            DeviceError::Handshake(e) => write!(f, "WebSocket handshake failed: {e}"),
            DeviceError::HelloTimeout(t) => write!(
                f,
                "no hello reply with transport \"websocket\" within {} ms",
                t.as_millis()
            ),
            DeviceError::BadHello(e) => write!(f, "bad hello reply: {e}"),
            DeviceError::ErrorReply(text) => write!(f, "server sent an error reply: {text}"),
            DeviceError::BadFrame(e) => write!(f, "server sent a bad frame: {e}"),
            DeviceError::ServerClosed { code, reason } => {
                write!(f, "server closed the connection before the device was done")?;
                match code {
                    Some(code) => write!(f, ": close code {code}, reason {reason:?}"),
                    None => write!(f, " ({reason})"),
                }
            }
            DeviceError::Lost(e) => write!(f, "connection lost: {e}"),
        }
    }
}

impl std::error::Error for DeviceError {}

/// Reads and encodes `options.wav`, then streams it; received messages are
/// printed to stdout, one per line.
pub fn run(options: &DeviceOptions) -> Result<DeviceReport, DeviceError> {
    let frames = prepare_frames(options)?;
    run_frames(options, &frames, &mut |line| {
        // A closed stdout (`| head`) must not abort the session mid-stream.
        let _ = writeln!(std::io::stdout(), "{line}");
    })
}

/// The WAV file as framed Opus packets, ready for [`run_frames`].
pub fn prepare_frames(options: &DeviceOptions) -> Result<Vec<Vec<u8>>, DeviceError> {
    let pcm = wav::read_pcm16(&options.wav).map_err(DeviceError::Wav)?;
    let packets = OpusEncoder::new()
        .and_then(|mut encoder| encoder.encode_all(&pcm))
        .map_err(DeviceError::Encode)?;
    Ok(stream::frame_packets(options.version, &packets))
}

/// Packets a signal of `samples` samples encodes to: whole 60 ms frames, the
/// last one padded.
pub fn packet_count(samples: usize) -> usize {
    let per_packet = (SAMPLE_RATE as usize * FRAME_MS as usize) / 1000;
    samples.div_ceil(per_packet)
}

/// Runs one device session streaming already framed packets; `report` gets
/// one line per received JSON message (`[  1234 ms] {...}`).
pub fn run_frames(
    options: &DeviceOptions,
    frames: &[Vec<u8>],
    report: &mut dyn FnMut(&str),
) -> Result<DeviceReport, DeviceError> {
    let ws = connect(options)?;
    let mut link = Link {
        ws,
        opened: Instant::now(),
        version: options.version,
        messages: 0,
        audio_frames: 0,
        hello: None,
        first_error: None,
        closing: false,
        closed: false,
        report,
    };
    let session_id = link.hello(options)?;
    link.send_json(&json!({"type": "listen", "state": "start", "mode": options.mode.as_str()}))?;

    let pacer = stream::Pacer::new(Instant::now(), options.fast);
    for (index, frame) in frames.iter().enumerate() {
        link.pump_until(pacer.due(index), |_| false)?;
        link.send(Message::binary(frame.clone()))?;
    }
    link.send_json(&json!({"type": "listen", "state": "stop"}))?;
    link.pump_until(Instant::now() + options.linger, |_| false)?;
    link.close()?;

    if let Some(error) = link.first_error.take() {
        return Err(error);
    }
    Ok(DeviceReport {
        session_id,
        packets_sent: frames.len(),
        messages_received: link.messages,
        audio_frames_received: link.audio_frames,
        elapsed: link.opened.elapsed(),
    })
}

/// Opens the TCP connection and performs the upgrade with the firmware's headers.
fn connect(options: &DeviceOptions) -> Result<WebSocket<TcpStream>, DeviceError> {
    let mut request = options
        .url
        .as_str()
        .into_client_request()
        .map_err(|e| DeviceError::Options(format!("bad URL {:?}: {e}", options.url)))?;
    if request.uri().scheme_str() != Some("ws") {
        return Err(DeviceError::Options(format!(
            "bad URL {:?}: only ws:// is supported",
            options.url
        )));
    }
    let mut headers = vec![
        // `HeaderName::from_static` wants lowercase; names are case-insensitive.
        ("protocol-version", options.version.number().to_string()),
        ("device-id", options.device_id.clone()),
        ("client-id", options.client_id.clone()),
    ];
    if let Some(token) = &options.token {
        // Like the firmware: a stored token without a space gets the scheme.
        let value = if token.contains(' ') {
            token.clone()
        } else {
            format!("Bearer {token}")
        };
        headers.push(("authorization", value));
    }
    for (name, value) in headers {
        let value = HeaderValue::from_str(&value)
            .map_err(|_| DeviceError::Options(format!("{name} {value:?} is not a valid header")))?;
        request
            .headers_mut()
            .insert(HeaderName::from_static(name), value);
    }

    let host = request.uri().host().unwrap_or_default().to_string();
    // An IPv6 literal comes bracketed from the URI; the resolver wants it bare.
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = request.uri().port_u16().unwrap_or(80);
    let addresses = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| DeviceError::Connect(format!("{host}:{port}: {e}")))?;
    let mut last_error = format!("{host}:{port}: no address");
    let mut stream = None;
    for address in addresses {
        match TcpStream::connect_timeout(&address, IO_TIMEOUT) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last_error = format!("{address}: {e}"),
        }
    }
    let stream = stream.ok_or(DeviceError::Connect(last_error))?;
    // Small frames every 60 ms: Nagle would batch them and distort the pace.
    let _ = stream.set_nodelay(true);
    stream
        .set_read_timeout(Some(IO_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(IO_TIMEOUT)))
        .map_err(|e| DeviceError::Connect(e.to_string()))?;

    match tungstenite::client(request, stream) {
        Ok((ws, _response)) => Ok(ws),
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(response))) => {
            let body = response
                .body()
                .as_deref()
                .map(|b| String::from_utf8_lossy(b).trim().to_string())
                .unwrap_or_default();
            Err(DeviceError::Refused {
                status: response.status().as_u16(),
                body,
            })
        }
        Err(tungstenite::HandshakeError::Failure(e)) => Err(DeviceError::Handshake(e.to_string())),
        // Only a non-blocking stream is interrupted; ours blocks with a
        // timeout, so this is the upgrade response not arriving in time.
        Err(tungstenite::HandshakeError::Interrupted(_)) => Err(DeviceError::Handshake(format!(
            "no upgrade response within {} s",
            IO_TIMEOUT.as_secs()
        ))),
    }
}

/// Checks the server's hello against what the device announced (§1.6) and
/// returns its `session_id`.
pub fn check_hello(hello: &Value, version: FramingVersion) -> Result<String, String> {
    if hello["transport"] != "websocket" {
        return Err(format!(
            "transport is {}, expected \"websocket\"",
            hello["transport"]
        ));
    }
    let session_id = match hello["session_id"].as_str() {
        Some(id) if !id.is_empty() => id.to_string(),
        _ => {
            return Err(format!(
                "session_id is {}, expected a string",
                hello["session_id"]
            ));
        }
    };
    if hello["version"].as_u64() != Some(u64::from(version.number())) {
        return Err(format!(
            "version is {}, the device sent {}",
            hello["version"],
            version.number()
        ));
    }
    let params = &hello["audio_params"];
    let expected = [
        ("format", json!("opus")),
        ("sample_rate", json!(16000)),
        ("channels", json!(1)),
        ("frame_duration", json!(60)),
    ];
    for (field, want) in expected {
        if params[field] != want {
            return Err(format!(
                "audio_params.{field} is {}, expected {want}",
                params[field]
            ));
        }
    }
    Ok(session_id)
}

/// One open connection and what has been seen on it.
struct Link<'a> {
    ws: WebSocket<TcpStream>,
    opened: Instant,
    version: FramingVersion,
    messages: usize,
    audio_frames: usize,
    hello: Option<Value>,
    /// The first contract breach that does not end the session at once (an
    /// error reply, a bad frame): the run continues so the whole exchange is
    /// reported, then fails with this.
    first_error: Option<DeviceError>,
    /// We sent our close frame; a close from now on is the reply.
    closing: bool,
    closed: bool,
    report: &'a mut dyn FnMut(&str),
}

impl Link<'_> {
    /// Sends the firmware hello and waits for the reply.
    fn hello(&mut self, options: &DeviceOptions) -> Result<String, DeviceError> {
        self.send_json(&json!({
            "type": "hello",
            "version": options.version.number(),
            "features": {"mcp": true},
            "transport": "websocket",
            "audio_params": {"format": "opus", "sample_rate": 16000, "channels": 1, "frame_duration": 60},
        }))?;
        let deadline = Instant::now() + options.hello_timeout;
        self.pump_until(deadline, |link| link.hello.is_some())?;
        match &self.hello {
            Some(hello) => check_hello(hello, options.version).map_err(DeviceError::BadHello),
            None => Err(DeviceError::HelloTimeout(options.hello_timeout)),
        }
    }

    fn send_json(&mut self, value: &Value) -> Result<(), DeviceError> {
        self.send(Message::text(value.to_string()))
    }

    fn send(&mut self, message: Message) -> Result<(), DeviceError> {
        match blocking_ws::send(&mut self.ws, message) {
            Ok(()) => Ok(()),
            Err(error) => {
                // A failed write usually means the server closed; its close
                // frame, if one is buffered, says why, so it wins.
                self.drain()?;
                self.closed = true;
                Err(broken(error))
            }
        }
    }

    /// Reads and handles whatever arrives until `deadline`, or until `done`
    /// holds. A deadline already past still takes what is buffered.
    fn pump_until(
        &mut self,
        deadline: Instant,
        done: impl Fn(&Self) -> bool,
    ) -> Result<(), DeviceError> {
        while !done(self) && !self.closed {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return self.drain();
            }
            // A zero timeout means "block forever" to the OS; stay above it.
            let timeout = left.max(Duration::from_millis(1));
            let _ = self.ws.get_mut().set_read_timeout(Some(timeout));
            self.read_one()?;
        }
        Ok(())
    }

    /// Handles every message already received, without waiting.
    fn drain(&mut self) -> Result<(), DeviceError> {
        if self.closed {
            return Ok(());
        }
        self.ws
            .get_mut()
            .set_nonblocking(true)
            .map_err(|e| DeviceError::Lost(e.to_string()))?;
        let result = loop {
            match self.read_one() {
                Ok(true) if !self.closed => continue,
                Ok(_) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        let _ = self.ws.get_mut().set_nonblocking(false);
        result
    }

    /// Reads one message; false when none arrived in time or the socket is done.
    fn read_one(&mut self) -> Result<bool, DeviceError> {
        if self.closed {
            return Ok(false);
        }
        match blocking_ws::read(&mut self.ws) {
            Ok(message) => {
                self.handle(message)?;
                Ok(true)
            }
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
            {
                Ok(false)
            }
            Err(error) => {
                self.closed = true;
                if self.closing {
                    // After our close frame, however the socket ends, every
                    // packet was already delivered.
                    Ok(false)
                } else {
                    Err(broken(error))
                }
            }
        }
    }

    fn handle(&mut self, message: Message) -> Result<(), DeviceError> {
        match message {
            Message::Text(text) => self.handle_json(text.as_str()),
            Message::Binary(frame) => match decode(self.version, &frame) {
                Ok(packet) => match packet.kind {
                    crate::protocol::framing::PacketKind::Opus => {
                        self.audio_frames += 1;
                        Ok(())
                    }
                    crate::protocol::framing::PacketKind::Json => {
                        let text = String::from_utf8_lossy(packet.payload).into_owned();
                        self.handle_json(&text)
                    }
                },
                Err(e) => {
                    self.note(DeviceError::BadFrame(format!(
                        "downlink binary frame is not v{} framing: {}",
                        self.version.number(),
                        e.describe()
                    )));
                    Ok(())
                }
            },
            Message::Close(frame) => {
                let (code, reason) = frame
                    .map(|f| (Some(u16::from(f.code)), f.reason.to_string()))
                    .unwrap_or((None, String::new()));
                self.closed = true;
                // tungstenite queued the close reply; send it so the server
                // sees a clean handshake either way.
                let _ = self.ws.flush();
                if self.closing {
                    Ok(())
                } else {
                    Err(DeviceError::ServerClosed {
                        code,
                        reason: if code.is_some() {
                            reason
                        } else {
                            "close frame without a code".to_string()
                        },
                    })
                }
            }
            // Pongs are answered by tungstenite itself.
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => Ok(()),
        }
    }

    fn handle_json(&mut self, text: &str) -> Result<(), DeviceError> {
        self.messages += 1;
        let line = format!("[{:>6} ms] {text}", self.elapsed_ms());
        (self.report)(&line);
        let value: Value = match serde_json::from_str(text) {
            Ok(value) => value,
            Err(e) => {
                self.note(DeviceError::BadFrame(format!(
                    "text frame is not JSON ({e})"
                )));
                return Ok(());
            }
        };
        if value["status"] == "error" {
            self.note(DeviceError::ErrorReply(text.to_string()));
        }
        if value["type"] == "hello" && self.hello.is_none() {
            self.hello = Some(value);
        }
        Ok(())
    }

    fn note(&mut self, error: DeviceError) {
        self.first_error.get_or_insert(error);
    }

    fn elapsed_ms(&self) -> u128 {
        self.opened.elapsed().as_millis()
    }

    /// Sends our close (1000) and waits for the server's reply.
    fn close(&mut self) -> Result<(), DeviceError> {
        // A close the server sent first must still count as its close.
        self.drain()?;
        if self.closed {
            return Ok(());
        }
        self.closing = true;
        let frame = CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        };
        if let Err(error) = self.ws.close(Some(frame)) {
            self.closed = true;
            return Err(DeviceError::Lost(format!("sending close: {error}")));
        }
        // No reply in time means a slow server, not lost data: still a success.
        self.pump_until(Instant::now() + CLOSE_TIMEOUT, |link| link.closed)
    }
}

/// Classifies a read or write failure that ends the session.
fn broken(error: tungstenite::Error) -> DeviceError {
    match error {
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
            DeviceError::ServerClosed {
                code: None,
                reason: "connection closed without a close frame".to_string(),
            }
        }
        tungstenite::Error::Io(e)
            if matches!(
                e.kind(),
                ErrorKind::ConnectionReset | ErrorKind::BrokenPipe | ErrorKind::UnexpectedEof
            ) =>
        {
            DeviceError::ServerClosed {
                code: None,
                reason: format!("connection dropped without a close frame: {e}"),
            }
        }
        other => DeviceError::Lost(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good_hello() -> Value {
        json!({"type":"hello","version":3,"transport":"websocket","session_id":"0b5e8a2c-4f1d-4c3e-9a7b-2d6f8e1c3a90",
               "audio_params":{"format":"opus","sample_rate":16000,"channels":1,"frame_duration":60}})
    }

    #[test]
    fn accepts_the_contract_hello_and_returns_its_session() {
        assert_eq!(
            check_hello(&good_hello(), FramingVersion::V3).unwrap(),
            "0b5e8a2c-4f1d-4c3e-9a7b-2d6f8e1c3a90"
        );
    }

    #[test]
    fn names_what_is_wrong_with_a_bad_hello() {
        let cases: [(&str, Value, &str); 5] = [
            ("version", json!(1), "version is 1, the device sent 3"),
            ("transport", json!("udp"), "transport is \"udp\""),
            ("session_id", Value::Null, "session_id is null"),
            (
                "audio_params",
                json!({"format":"opus","sample_rate":24000,"channels":1,"frame_duration":60}),
                "audio_params.sample_rate is 24000",
            ),
            ("audio_params", Value::Null, "audio_params.format is null"),
        ];
        for (field, value, expected) in cases {
            let mut hello = good_hello();
            hello[field] = value;
            let error = check_hello(&hello, FramingVersion::V3).unwrap_err();
            assert!(error.contains(expected), "{error:?} lacks {expected:?}");
        }
    }

    #[test]
    fn device_ids_are_locally_administered_macs() {
        let id = random_device_id();
        assert!(id.starts_with("02:00:00:"), "{id}");
        assert_eq!(id.len(), 17);
    }

    #[test]
    fn packet_count_rounds_up_to_whole_packets() {
        assert_eq!(packet_count(0), 0);
        assert_eq!(packet_count(960), 1);
        assert_eq!(packet_count(961), 2);
        assert_eq!(packet_count(80_000), 84);
    }

    #[test]
    fn the_summary_line_has_the_documented_shape() {
        let report = DeviceReport {
            session_id: String::new(),
            packets_sent: 136,
            messages_received: 3,
            audio_frames_received: 0,
            elapsed: Duration::from_millis(1234),
        };
        assert_eq!(
            report.to_string(),
            "sent 136 packets, received 3 messages in 1234 ms"
        );
    }
}
