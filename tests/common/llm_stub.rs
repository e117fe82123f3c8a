//! A local OpenAI-compatible chat-completions service for tests: a real HTTP/1.1 server on `127.0.0.1:<free
//! port>` (std `TcpListener`, one thread per connection, every answer `Connection: close`).
//!
//! `POST …/chat/completions` answers with the configured [`Behavior`]:
//! - [`LlmStub::reply`]: 200 with `choices[0].message.content` = the given string (a JSON summary, prose with a
//!   fenced JSON block, garbage, ...);
//! - [`LlmStub::fail`]: the given status with `{"error":{"message":"stub failure"}}`;
//! - [`LlmStub::stall`]: sleeps that long before answering (longer than the client's timeout to test it);
//! - [`LlmStub::raw`]: any status and body verbatim (bad answers).
//!
//! "Down" is [`LlmStub::shutdown`] (the port stops listening) or [`unreachable_base_url`]. Every request is
//! recorded ([`LlmStub::requests`]) with its method, path, lower-cased headers and body (parsed as JSON) for
//! assertions. Dropping the stub stops its threads.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// What the stub answers to the next requests.
#[derive(Clone, Debug)]
pub enum Behavior {
    /// 200 with this assistant content.
    Reply(String),
    /// This status with an OpenAI-style error body.
    Fail(u16),
    /// Sleep this long, then answer as `then`.
    Stall(Duration, Box<Behavior>),
    /// This status and body, verbatim.
    Raw(u16, String),
}

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
    requests: Vec<Recorded>,
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
            requests: Vec::new(),
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
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
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
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
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

fn serve(mut stream: TcpStream, state: &Mutex<State>, stop: &AtomicBool) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let Some(request) = read_request(&mut stream) else {
        return;
    };
    let model = request.body["model"].as_str().unwrap_or("stub").to_string();
    let routed = request.method == "POST" && request.path.ends_with("/chat/completions");
    let behavior = {
        let mut state = state.lock().expect("stub state");
        state.requests.push(request);
        state.behavior.clone()
    };
    let (status, body) = if routed {
        answer(behavior, &model, stop)
    } else {
        (
            404,
            json!({"error": {"message": "no such route"}}).to_string(),
        )
    };
    if stop.load(Ordering::SeqCst) {
        return;
    }
    let reason = if status < 300 { "OK" } else { "Error" };
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes());
    let _ = stream.flush();
    let _ = stream.shutdown(Shutdown::Write);
}

fn answer(behavior: Behavior, model: &str, stop: &AtomicBool) -> (u16, String) {
    match behavior {
        Behavior::Reply(content) => (
            200,
            json!({
                "id": "chatcmpl-stub",
                "object": "chat.completion",
                "created": 0,
                "model": model,
                "choices": [{
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop"
                }],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
            })
            .to_string(),
        ),
        Behavior::Fail(status) => (
            status,
            json!({"error": {"message": "stub failure", "type": "server_error"}}).to_string(),
        ),
        Behavior::Stall(delay, then) => {
            let until = Instant::now() + delay;
            while Instant::now() < until && !stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(10));
            }
            answer(*then, model, stop)
        }
        Behavior::Raw(status, body) => (status, body),
    }
}
