//! Test harness: runs the real `huddle` binary on a free loopback port with a
//! config written to a temp dir, and talks to it with a real tungstenite
//! client and plain TCP. Every test gets its own server process.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tungstenite::client::IntoClientRequest;
use tungstenite::http::HeaderValue;
use tungstenite::protocol::CloseFrame;
use tungstenite::{Message, WebSocket};

pub struct Server {
    pub port: u16,
    pub dir: PathBuf,
    pub config_path: PathBuf,
    child: Option<Child>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

impl Server {
    /// Starts a server whose config is `[server] ip/port` plus `extra` TOML
    /// (which must not open a `[server]` table itself; use `server_extra`).
    pub fn start(extra: &str) -> Server {
        Server::start_with("", extra)
    }

    /// `server_extra` lines go inside `[server]`; `extra` follows as more tables.
    pub fn start_with(server_extra: &str, extra: &str) -> Server {
        Server::start_in(&temp::temp_path("huddle-test"), server_extra, extra)
    }

    /// Like [`Server::start_with`], in a directory the test prepared (its `data/` is the data dir).
    pub fn start_in(dir: &std::path::Path, server_extra: &str, extra: &str) -> Server {
        let dir = dir.to_path_buf();
        std::fs::create_dir_all(&dir).expect("temp dir");
        let config_path = dir.join("huddle.toml");
        let mut server = Server {
            port: 0,
            dir,
            config_path,
            child: None,
        };
        // A free port can be taken again between our probe and the server's
        // bind (tests run in parallel), so a failed bind retries on a new one.
        for _attempt in 0..5 {
            server.port = free_port();
            let config = format!(
                "[server]\nip = \"127.0.0.1\"\nport = {}\n{server_extra}\n\n[storage]\ndata_dir = \"{}\"\n\n[log]\nlevel = \"debug\"\n\n{extra}\n",
                server.port,
                server.dir.join("data").display()
            );
            std::fs::write(&server.config_path, config).expect("write config");
            if server.spawn() {
                return server;
            }
        }
        panic!("server did not start; log:\n{}", server.log());
    }

    /// Starts the process and waits for its `listening` line; false when it
    /// exited (e.g. the port was busy).
    fn spawn(&mut self) -> bool {
        let stderr = std::fs::File::create(self.dir.join("stderr.log")).expect("stderr file");
        let child = Command::new(env!("CARGO_BIN_EXE_huddle"))
            .arg("serve")
            .arg("--config")
            .arg(&self.config_path)
            .current_dir(&self.dir)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn huddle");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.log().contains("listening on") {
                return true;
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(_)) = child.try_wait()
            {
                self.child = None;
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("server did not start; log:\n{}", self.log());
    }

    /// Starts the process again on the same port, config and data directory
    /// (after a crash or a stop).
    pub fn restart(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        assert!(self.spawn(), "server did not restart; log:\n{}", self.log());
    }

    /// The server's data directory (`storage.data_dir`).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn signal(&self, signal: &str) {
        send_signal(self.pid(), signal);
    }

    /// Waits for the process to exit and returns its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let child = self.child.as_mut()?;
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://127.0.0.1:{}{path}", self.port)
    }

    /// Connects a device with the given extra headers.
    pub fn device(&self, path: &str, headers: &[(&str, &str)]) -> Device {
        Device::connect(&self.ws_url(path), headers).unwrap_or_else(|e| panic!("connect: {e}"))
    }

    /// A device whose registration has finished: its group snapshot (sent
    /// right after the server registers it, §1.5) has arrived. For tests
    /// where another device's action must find this one online.
    #[allow(dead_code)]
    pub fn registered_device(&self, path: &str, headers: &[(&str, &str)]) -> Device {
        let mut device = self.device(path, headers);
        device.recv_until(Duration::from_secs(10), |v| {
            v["type"] == "workflow" && v["event"] == "update"
        });
        device
    }

    /// Plain HTTP request; returns (status, headers, body).
    pub fn http(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> HttpReply {
        http_request(self.port, method, target, headers, body)
    }

    /// `GET target` with no headers.
    pub fn get(&self, target: &str) -> HttpReply {
        self.http("GET", target, &[], "")
    }

    /// Polls the log until it contains `needle`.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.log().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Polls the log until `needle` occurs at least `count` times.
    pub fn wait_log_count(&self, needle: &str, count: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.log().matches(needle).count() >= count {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[derive(Debug)]
pub struct HttpReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpReply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// The `data` of a 200 `{"success":true,"data":…}` API reply; anything
    /// else fails the test.
    pub fn data(&self) -> Value {
        assert_eq!(self.status, 200, "{}", self.body);
        let v = self.json();
        assert_eq!(v["success"], true, "{v}");
        v["data"].clone()
    }

    /// The `error.code` of a `{"success":false,…}` API reply ("" when absent).
    pub fn error_code(&self) -> String {
        let v = self.json();
        assert_eq!(v["success"], false, "{v}");
        v["error"]["code"].as_str().unwrap_or_default().to_string()
    }
}

/// Polls `condition` every 20 ms until it holds or `timeout` passes; the
/// result says which. For effects that land on a background thread (the
/// journal writer, the webhook sender) after the event a test waits for.
#[allow(dead_code)]
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn http_request(
    port: u16,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> HttpReply {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut request = format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() {
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read reply");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line in {text:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    HttpReply {
        status,
        headers,
        body: body.to_string(),
    }
}

/// A device: a real WebSocket client over loopback.
pub struct Device {
    pub ws: WebSocket<TcpStream>,
}

/// What `next` saw.
#[derive(Debug)]
pub enum Received {
    Json(Value),
    Binary(Vec<u8>),
    Closed(Option<(u16, String)>),
    Timeout,
}

impl Device {
    pub fn connect(url: &str, headers: &[(&str, &str)]) -> Result<Device, tungstenite::Error> {
        let mut request = url.into_client_request()?;
        for (k, v) in headers {
            request.headers_mut().insert(
                tungstenite::http::HeaderName::from_bytes(k.as_bytes()).expect("header name"),
                HeaderValue::from_str(v).expect("header value"),
            );
        }
        let host = request.uri().host().unwrap_or("127.0.0.1").to_string();
        let port = request.uri().port_u16().unwrap_or(80);
        let stream = TcpStream::connect((host.as_str(), port)).map_err(tungstenite::Error::Io)?;
        let (ws, _response) = tungstenite::client(request, stream).map_err(|e| match e {
            tungstenite::HandshakeError::Failure(e) => e,
            tungstenite::HandshakeError::Interrupted(_) => {
                tungstenite::Error::Io(std::io::ErrorKind::WouldBlock.into())
            }
        })?;
        Ok(Device { ws })
    }

    pub fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).expect("send text");
    }

    pub fn send_json(&mut self, value: Value) {
        self.send_text(&value.to_string());
    }

    pub fn send_binary(&mut self, bytes: Vec<u8>) {
        self.ws.send(Message::binary(bytes)).expect("send binary");
    }

    /// Next data frame or close, within `timeout`.
    pub fn next(&mut self, timeout: Duration) -> Received {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Received::Timeout;
            }
            let _ = self.ws.get_mut().set_read_timeout(Some(left));
            // EINTR (a stop and continue of a loaded CI box) is read through, as the product's clients do.
            match huddle::net::blocking_ws::read(&mut self.ws) {
                Ok(Message::Text(t)) => {
                    return Received::Json(
                        serde_json::from_str(t.as_str()).expect("server sent non-JSON text"),
                    );
                }
                Ok(Message::Binary(b)) => return Received::Binary(b.to_vec()),
                Ok(Message::Close(frame)) => {
                    return Received::Closed(
                        frame.map(|f: CloseFrame| (u16::from(f.code), f.reason.to_string())),
                    );
                }
                Ok(_) => continue,
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Received::Timeout;
                }
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    return Received::Closed(None);
                }
                Err(e) => return Received::Closed(Some((0, e.to_string()))),
            }
        }
    }

    /// Next JSON message that is not an unsolicited broadcast: `stats`, or a
    /// workflow group snapshot (sent on registration and after any write to
    /// the group). Tests about those read them with [`Device::next`].
    pub fn recv(&mut self, timeout: Duration) -> Value {
        self.try_recv(timeout)
            .unwrap_or_else(|e| panic!("expected a JSON message: {e}"))
    }

    /// [`Device::recv`] that returns a binary frame, a close or a timeout as
    /// an `Err` naming it instead of failing the test.
    pub fn try_recv(&mut self, timeout: Duration) -> Result<Value, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left) {
                Received::Json(v) if is_stats(&v) || is_snapshot(&v) => continue,
                Received::Json(v) => return Ok(v),
                Received::Binary(b) => return Err(format!("binary frame of {} bytes", b.len())),
                Received::Closed(frame) => return Err(format!("connection closed: {frame:?}")),
                Received::Timeout => return Err(format!("no reply within {timeout:?}")),
            }
        }
    }

    /// Every JSON message but `server` ones (stats, acks of admin commands),
    /// in order, until `done(&seen)` holds or `timeout` passes.
    pub fn collect_until(
        &mut self,
        timeout: Duration,
        mut done: impl FnMut(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        while Instant::now() < deadline && !done(&seen) {
            if let Received::Json(v) = self.next(deadline.saturating_duration_since(Instant::now()))
                && v["type"] != "server"
            {
                seen.push(v);
            }
        }
        seen
    }

    /// Every non-`server` message that arrives within `window`.
    pub fn drain(&mut self, window: Duration) -> Vec<Value> {
        self.collect_until(window, |_| false)
    }

    /// Skips messages until one satisfies `pred`.
    pub fn recv_until(&mut self, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left) {
                Received::Json(v) if pred(&v) => return v,
                Received::Json(_) => continue,
                other => panic!("expected a matching message, got {other:?}"),
            }
        }
    }

    /// Reads until the server closes; returns the close code and reason.
    pub fn expect_close(&mut self, timeout: Duration) -> (u16, String) {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left) {
                Received::Closed(Some(frame)) => {
                    // Completes the close handshake, as a real device does.
                    let _ = self.ws.flush();
                    return frame;
                }
                Received::Closed(None) => return (0, String::new()),
                Received::Timeout => panic!("no close within {timeout:?}"),
                _ => continue,
            }
        }
    }

    pub fn hello(&mut self, version: u8) -> Value {
        self.send_json(serde_json::json!({
            "type": "hello", "version": version, "transport": "websocket",
            "features": {"mcp": true},
            "audio_params": {"format": "opus", "sample_rate": 16000, "channels": 1, "frame_duration": 60}
        }));
        self.recv_until(Duration::from_secs(5), |v| v["type"] == "hello")
    }
}

pub const SHORT: Duration = Duration::from_secs(5);

/// A `stats` broadcast.
pub fn is_stats(v: &Value) -> bool {
    v["type"] == "server" && v["event"] == "stats"
}

/// A workflow group snapshot. Acks of an `update` carry `status`; snapshots
/// do not.
pub fn is_snapshot(v: &Value) -> bool {
    v["type"] == "workflow" && v["event"] == "update" && v.get("status").is_none()
}

/// The group snapshots among `messages`.
pub fn snapshots(messages: &[Value]) -> Vec<&Value> {
    messages.iter().filter(|m| is_snapshot(m)).collect()
}

/// Sends `SIG<signal>` to `pid` with kill(1).
pub fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("kill");
    assert!(status.success(), "kill -{signal} {pid}");
}

/// One `read` that retries on EINTR (a read with a timeout ends with it when
/// the process is stopped and continued, as a loaded CI box may do); `None`
/// at end of stream or on any other error.
pub fn read_some(stream: &mut impl Read, chunk: &mut [u8]) -> Option<usize> {
    loop {
        match stream.read(chunk) {
            Ok(0) => return None,
            Ok(n) => return Some(n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return None,
        }
    }
}

pub mod asr_service;
pub mod audio;
pub mod funasr_mock;
pub mod http_receiver;
pub mod llm_stub;
pub mod meetings;
pub mod simulator;
pub mod temp;
