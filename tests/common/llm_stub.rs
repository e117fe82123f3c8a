//! A local OpenAI-compatible chat-completions service for tests: a real HTTP/1.1 server on `127.0.0.1:<free
//! port>` (std `TcpListener`, one thread per connection, every answer `Connection: close`).
//!
//! `POST …/chat/completions` answers with the configured [`Behavior`]:
//! - [`LlmStub::reply`]: 200 with `choices[0].message.content` = the given string (a JSON summary, prose with a
//!   fenced JSON block, garbage, ...);
//! - [`LlmStub::stream_slow`]: the same, with a pause between the chunks of a streamed answer;
//! - [`LlmStub::tool_call`]: one function call (`finish_reason` `"tool_calls"`, no content);
//! - [`LlmStub::fail`]: the given status with `{"error":{"message":"stub failure"}}`;
//! - [`LlmStub::stall`]: sleeps that long before answering (longer than the client's timeout to test it);
//! - [`LlmStub::raw`]: any status and body verbatim (bad answers);
//! - [`Behavior::RawStream`]: a `text/event-stream` body written verbatim in the given pieces (framing tests).
//!
//! A request with `"stream":true` gets `Reply`/`StreamSlow`/`ToolCall` as server-sent events the way OpenAI sends
//! them (chunked `text/event-stream`: a keep-alive comment, a role chunk, content deltas of [`WORDS_PER_DELTA`]
//! words — or characters, for text without spaces — a finish chunk, a usage chunk, `data: [DONE]`). A stream the
//! client walks away from is counted ([`LlmStub::streams_cut`]).
//!
//! [`LlmStub::set`] and friends set the standing behavior; [`LlmStub::script`] queues behaviors for the next
//! requests, one each, before the standing one answers again ("first a tool call, then the text").
//!
//! "Down" is [`LlmStub::shutdown`] (the port stops listening) or [`unreachable_base_url`]. Every request is
//! recorded ([`LlmStub::requests`]) with its method, path, lower-cased headers and body (parsed as JSON) for
//! assertions. Dropping the stub stops its threads.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::Write;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::read_some;

/// What the stub answers to the next requests.
#[derive(Clone, Debug)]
pub enum Behavior {
    /// 200 with this assistant content (streamed when asked).
    Reply(String),
    /// As `Reply`, but a streamed answer waits this long before each content delta after the first and before the
    /// finish chunk (a slow model; longer than the client's timeout, a stalled one).
    StreamSlow(String, Duration),
    /// 200 with one call of this function; `arguments` is the JSON text (streamed in a few fragments when asked).
    ToolCall { name: String, arguments: String },
    /// This status with an OpenAI-style error body.
    Fail(u16),
    /// Sleep this long, then answer as `then`.
    Stall(Duration, Box<Behavior>),
    /// This status and body, verbatim.
    Raw(u16, String),
    /// 200 `text/event-stream`, close-delimited, these byte pieces verbatim with this pause between them, whether
    /// the request asked to stream or not. Bytes, so a piece can end inside a character.
    RawStream(Vec<Vec<u8>>, Duration),
}

/// Words (or characters, for text without spaces) per streamed content delta.
pub const WORDS_PER_DELTA: usize = 4;

/// The id of the call a [`Behavior::ToolCall`] answers.
pub const STUB_CALL_ID: &str = "call_stub_0";

/// One request the stub received.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// `(lower-case name, value)`.
    pub headers: Vec<(String, String)>,
    /// The body parsed as JSON (`Value::Null` when it is not).
    pub body: Value,
    pub raw_body: String,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

struct State {
    behavior: Behavior,
    /// Behaviors for the next requests, one each, before `behavior` again.
    script: VecDeque<Behavior>,
    requests: Vec<Recorded>,
    /// Streams whose client went away before the end.
    streams_cut: usize,
}

pub struct LlmStub {
    pub port: u16,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

/// A valid seven-field summary as an LLM would write it.
pub const SUMMARY_JSON: &str = r#"{"title":"登录改版周会","duration":"","bullets":["登录页改为扫码登录，下周三前出设计稿"],"decisions":["放弃短信验证码方案"],"actions":["前端组完成扫码页开发"],"risks":[],"nextSteps":["周五联调扫码接口"]}"#;

/// `http://127.0.0.1:<port>/v1` of a port nothing listens on.
pub fn unreachable_base_url() -> String {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    format!("http://127.0.0.1:{port}/v1")
}

impl LlmStub {
    /// Starts the stub answering [`SUMMARY_JSON`].
    pub fn start() -> LlmStub {
        LlmStub::with(Behavior::Reply(SUMMARY_JSON.to_string()))
    }

    pub fn with(behavior: Behavior) -> LlmStub {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the LLM stub");
        let port = listener.local_addr().expect("stub address").port();
        let state = Arc::new(Mutex::new(State {
            behavior,
            script: VecDeque::new(),
            requests: Vec::new(),
            streams_cut: 0,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let acceptor = {
            let (state, stop) = (Arc::clone(&state), Arc::clone(&stop));
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let (state, stop) = (Arc::clone(&state), Arc::clone(&stop));
                    std::thread::spawn(move || serve(stream, &state, &stop));
                }
            })
        };
        LlmStub {
            port,
            state,
            stop,
            acceptor: Some(acceptor),
        }
    }

    /// `http://127.0.0.1:<port>/v1`, the `base_url` of an `[llm.<name>]` table.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    /// An `[llm.<alias>]` TOML table pointing at the stub.
    pub fn toml_table(&self, alias: &str, model: &str) -> String {
        format!(
            "[llm.{alias}]\ntype = \"openai\"\nbase_url = \"{}\"\nmodel = \"{model}\"\n",
            self.base_url()
        )
    }

    pub fn set(&self, behavior: Behavior) {
        self.state.lock().expect("stub state").behavior = behavior;
    }

    pub fn reply(&self, content: &str) {
        self.set(Behavior::Reply(content.to_string()));
    }

    /// Answers `content`, streamed with `delay` before each delta after the first.
    pub fn stream_slow(&self, content: &str, delay: Duration) {
        self.set(Behavior::StreamSlow(content.to_string(), delay));
    }

    /// Answers one call of `name` with these JSON `arguments`.
    pub fn tool_call(&self, name: &str, arguments: &str) {
        self.set(Behavior::ToolCall {
            name: name.to_string(),
            arguments: arguments.to_string(),
        });
    }

    /// The next chat-completions requests get these behaviors, one each, in order; after them the standing
    /// behavior answers again. Replaces what is left of an earlier script.
    pub fn script(&self, behaviors: Vec<Behavior>) {
        self.state.lock().expect("stub state").script = behaviors.into();
    }

    /// Streams the client walked away from (a cancelled or timed-out stream) so far.
    pub fn streams_cut(&self) -> usize {
        self.state.lock().expect("stub state").streams_cut
    }

    pub fn fail(&self, status: u16) {
        self.set(Behavior::Fail(status));
    }

    /// Sleeps `delay` before answering what it answered so far.
    pub fn stall(&self, delay: Duration) {
        let mut state = self.state.lock().expect("stub state");
        let then = state.behavior.clone();
        state.behavior = Behavior::Stall(delay, Box::new(then));
    }

    pub fn raw(&self, status: u16, body: &str) {
        self.set(Behavior::Raw(status, body.to_string()));
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().expect("stub state").requests.clone()
    }

    /// Stops listening; later connections are refused. Stalled answers are abandoned.
    pub fn shutdown(&mut self) {
        if let Some(acceptor) = self.acceptor.take() {
            self.stop.store(true, Ordering::SeqCst);
            // Wakes the blocking accept so the thread sees the flag and drops the listener.
            let _ = TcpStream::connect(("127.0.0.1", self.port));
            let _ = acceptor.join();
        }
    }
}

impl Drop for LlmStub {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Reads one request: head (parsed with httparse) and `Content-Length` body.
fn read_request(stream: &mut TcpStream) -> Option<Recorded> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let (head_len, method, path, headers) = loop {
        let n = read_some(stream, &mut chunk)?;
        buf.extend_from_slice(&chunk[..n]);
        let mut slots = [httparse::EMPTY_HEADER; 64];
        let mut request = httparse::Request::new(&mut slots);
        match request.parse(&buf).ok()? {
            httparse::Status::Complete(len) => {
                let headers: Vec<(String, String)> = request
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_ascii_lowercase(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect();
                break (
                    len,
                    request.method?.to_string(),
                    request.path?.to_string(),
                    headers,
                );
            }
            httparse::Status::Partial if buf.len() > 1 << 20 => return None,
            httparse::Status::Partial => continue,
        }
    };
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = buf.split_off(head_len);
    while body.len() < length {
        let n = read_some(stream, &mut chunk)?;
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    let raw_body = String::from_utf8_lossy(&body).into_owned();
    Some(Recorded {
        method,
        path,
        headers,
        body: serde_json::from_str(&raw_body).unwrap_or(Value::Null),
        raw_body,
    })
}

/// What one request gets.
enum Answer {
    /// A whole `application/json` body with this status.
    Full(u16, String),
    /// A 200 `text/event-stream` written piece by piece, each after its pause; chunked or close-delimited.
    Events {
        pieces: Vec<(Duration, Vec<u8>)>,
        chunked: bool,
    },
}

fn serve(mut stream: TcpStream, state: &Mutex<State>, stop: &AtomicBool) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let Some(request) = read_request(&mut stream) else {
        return;
    };
    let model = request.body["model"].as_str().unwrap_or("stub").to_string();
    let streamed = request.body["stream"] == json!(true);
    let routed = request.method == "POST" && request.path.ends_with("/chat/completions");
    let behavior = {
        let mut state = state.lock().expect("stub state");
        state.requests.push(request);
        let scripted = if routed {
            state.script.pop_front()
        } else {
            None
        };
        scripted.unwrap_or_else(|| state.behavior.clone())
    };
    let answer = if routed {
        answer(behavior, &model, streamed, stop)
    } else {
        Answer::Full(
            404,
            json!({"error": {"message": "no such route"}}).to_string(),
        )
    };
    if stop.load(Ordering::SeqCst) {
        return;
    }
    match answer {
        Answer::Full(status, body) => {
            let reason = if status < 300 { "OK" } else { "Error" };
            let response = format!(
                "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes());
        }
        Answer::Events { pieces, chunked } => {
            if !write_events(&mut stream, &pieces, chunked, stop) && !stop.load(Ordering::SeqCst) {
                state.lock().expect("stub state").streams_cut += 1;
            }
        }
    }
    let _ = stream.flush();
    let _ = stream.shutdown(Shutdown::Write);
}

/// Writes an event stream; `false` when the client went away first (or the stub stopped).
fn write_events(
    stream: &mut TcpStream,
    pieces: &[(Duration, Vec<u8>)],
    chunked: bool,
    stop: &AtomicBool,
) -> bool {
    let framing = if chunked {
        "Transfer-Encoding: chunked\r\n"
    } else {
        ""
    };
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n{framing}Connection: close\r\n\r\n"
    );
    if stream.write_all(head.as_bytes()).is_err() {
        return false;
    }
    for (pause, piece) in pieces {
        if !sleep_unless_stopped(*pause, stop) {
            return false;
        }
        let mut bytes = Vec::with_capacity(piece.len() + 16);
        if chunked {
            bytes.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
            bytes.extend_from_slice(piece);
            bytes.extend_from_slice(b"\r\n");
        } else {
            bytes.extend_from_slice(piece);
        }
        // A write to a connection the client dropped fails once its reset is back, i.e. by the next piece.
        if stream.write_all(&bytes).is_err() || stream.flush().is_err() {
            return false;
        }
    }
    if chunked {
        let _ = stream.write_all(b"0\r\n\r\n");
    }
    true
}

/// Sleeps `pause` in small steps; `false` when the stub stopped meanwhile.
fn sleep_unless_stopped(pause: Duration, stop: &AtomicBool) -> bool {
    let until = Instant::now() + pause;
    while Instant::now() < until {
        if stop.load(Ordering::SeqCst) {
            return false;
        }
        std::thread::sleep((until - Instant::now()).min(Duration::from_millis(10)));
    }
    !stop.load(Ordering::SeqCst)
}

fn completion(model: &str, message: Value, finish_reason: &str) -> String {
    json!({
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    })
    .to_string()
}

/// One `data:` event of a streamed answer.
fn event(model: &str, delta: Value, finish_reason: Option<&str>) -> String {
    let chunk = json!({
        "id": "chatcmpl-stub",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]
    });
    format!("data: {chunk}\n\n")
}

/// The end of every streamed answer: the finish chunk (after `pause`), usage with no choices, `[DONE]`.
fn stream_end(model: &str, finish_reason: &str, pause: Duration) -> Vec<(Duration, String)> {
    let usage = json!({
        "id": "chatcmpl-stub",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": model,
        "choices": [],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    });
    vec![
        (pause, event(model, json!({}), Some(finish_reason))),
        (Duration::ZERO, format!("data: {usage}\n\n")),
        (Duration::ZERO, "data: [DONE]\n\n".to_string()),
    ]
}

/// `content` in pieces of [`WORDS_PER_DELTA`] words (each keeping its trailing space), or of that many characters
/// when it has no spaces to split at (Chinese).
pub fn deltas_of(content: &str) -> Vec<String> {
    let mut words: Vec<String> = content
        .split_inclusive(char::is_whitespace)
        .map(str::to_string)
        .collect();
    if words.len() < 2 {
        words = content.chars().map(String::from).collect();
    }
    words
        .chunks(WORDS_PER_DELTA)
        .map(|group| group.concat())
        .collect()
}

fn streamed_reply(content: &str, model: &str, pause: Duration) -> Vec<(Duration, String)> {
    let mut pieces = vec![
        (Duration::ZERO, ": stub keep-alive\n\n".to_string()),
        (
            Duration::ZERO,
            event(model, json!({"role": "assistant", "content": ""}), None),
        ),
    ];
    for (i, delta) in deltas_of(content).into_iter().enumerate() {
        let wait = if i == 0 { Duration::ZERO } else { pause };
        pieces.push((wait, event(model, json!({"content": delta}), None)));
    }
    pieces.extend(stream_end(model, "stop", pause));
    pieces
}

fn streamed_tool_call(name: &str, arguments: &str, model: &str) -> Vec<(Duration, String)> {
    let first = json!({
        "role": "assistant",
        "content": null,
        "tool_calls": [{"index": 0, "id": STUB_CALL_ID, "type": "function",
            "function": {"name": name, "arguments": ""}}]
    });
    let mut pieces = vec![(Duration::ZERO, event(model, first, None))];
    // The arguments in three fragments, cut on character boundaries, as models emit them token by token.
    let chars: Vec<char> = arguments.chars().collect();
    for part in chars.chunks(chars.len().div_ceil(3).max(1)) {
        let fragment = json!({"tool_calls": [{"index": 0,
            "function": {"arguments": part.iter().collect::<String>()}}]});
        pieces.push((Duration::ZERO, event(model, fragment, None)));
    }
    pieces.extend(stream_end(model, "tool_calls", Duration::ZERO));
    pieces
}

fn answer(behavior: Behavior, model: &str, streamed: bool, stop: &AtomicBool) -> Answer {
    let events = |pieces: Vec<(Duration, String)>| Answer::Events {
        pieces: pieces
            .into_iter()
            .map(|(pause, piece)| (pause, piece.into_bytes()))
            .collect(),
        chunked: true,
    };
    match behavior {
        Behavior::Reply(content) | Behavior::StreamSlow(content, _) if !streamed => Answer::Full(
            200,
            completion(
                model,
                json!({"role": "assistant", "content": content}),
                "stop",
            ),
        ),
        Behavior::Reply(content) => events(streamed_reply(&content, model, Duration::ZERO)),
        Behavior::StreamSlow(content, pause) => events(streamed_reply(&content, model, pause)),
        Behavior::ToolCall { name, arguments } if streamed => {
            events(streamed_tool_call(&name, &arguments, model))
        }
        Behavior::ToolCall { name, arguments } => Answer::Full(
            200,
            completion(
                model,
                json!({"role": "assistant", "content": null, "tool_calls": [{
                    "id": STUB_CALL_ID, "type": "function",
                    "function": {"name": name, "arguments": arguments}}]}),
                "tool_calls",
            ),
        ),
        Behavior::Fail(status) => Answer::Full(
            status,
            json!({"error": {"message": "stub failure", "type": "server_error"}}).to_string(),
        ),
        Behavior::Stall(delay, then) => {
            sleep_unless_stopped(delay, stop);
            answer(*then, model, streamed, stop)
        }
        Behavior::Raw(status, body) => Answer::Full(status, body),
        Behavior::RawStream(pieces, pause) => Answer::Events {
            pieces: pieces
                .into_iter()
                .enumerate()
                .map(|(i, p)| (if i == 0 { Duration::ZERO } else { pause }, p))
                .collect(),
            chunked: false,
        },
    }
}
