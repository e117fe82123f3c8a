//! A real HTTP/1.1 receiver on 127.0.0.1 for webhook and token-introspection tests: records every
//! request (method, path, headers, exact body bytes, arrival time) and answers
//! with a scripted sequence of replies, so retries, timeouts and dropped
//! connections are exercised over real sockets. One thread per connection, so
//! a stalled answer does not hold up the next request.

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::read_some;

/// How the receiver answers one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// `HTTP/1.1 <status>`, empty body, `Connection: close`.
    Status(u16),
    /// Reads the request, then never answers (until the receiver is dropped).
    Stall,
    /// Reads the request, then closes the connection without answering.
    Close,
    /// `HTTP/1.1 200` with this JSON body.
    Json(&'static str),
}

/// One request as it arrived.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    /// The request target, query included.
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// When the complete request had been read.
    pub at: Instant,
}

impl Recorded {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// How many headers are called `name` (a duplicate would be a bug).
    pub fn header_count(&self, name: &str) -> usize {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .count()
    }
}

struct Shared {
    requests: Mutex<Vec<Recorded>>,
    arrived: Condvar,
    script: Vec<Reply>,
    /// Answer once the script is used up.
    after: Reply,
    stop: AtomicBool,
}

pub struct HttpReceiver {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

/// A loopback port nothing listens on (bound, then released).
pub fn dead_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

impl HttpReceiver {
    /// Answers request *n* with `script[n]`, and `200` once the script is used up.
    pub fn start(script: &[Reply]) -> HttpReceiver {
        HttpReceiver::start_then(script, Reply::Status(200))
    }

    /// Like [`start`](Self::start), answering `after` once the script is used up.
    pub fn start_then(script: &[Reply], after: Reply) -> HttpReceiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind receiver");
        let addr = listener.local_addr().expect("receiver address");
        let shared = Arc::new(Shared {
            requests: Mutex::new(Vec::new()),
            arrived: Condvar::new(),
            script: script.to_vec(),
            after,
            stop: AtomicBool::new(false),
        });
        let accept_shared = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("http-receiver".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    if accept_shared.stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let shared = Arc::clone(&accept_shared);
                    let _ = std::thread::Builder::new()
                        .name("http-receiver-conn".into())
                        .spawn(move || serve(stream, &shared));
                }
            })
            .expect("receiver thread");
        HttpReceiver { addr, shared }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Everything recorded so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().clone()
    }

    /// Waits until at least `n` requests arrived; returns what arrived by then.
    pub fn wait_requests(&self, n: usize, timeout: Duration) -> Vec<Recorded> {
        let deadline = Instant::now() + timeout;
        let mut requests = self.shared.requests.lock();
        while requests.len() < n {
            if self
                .shared
                .arrived
                .wait_until(&mut requests, deadline)
                .timed_out()
            {
                break;
            }
        }
        requests.clone()
    }
}

impl Drop for HttpReceiver {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        // Wakes the blocking accept so the thread sees the flag and exits.
        let _ = TcpStream::connect(self.addr);
    }
}

/// Reads one request off a connection and answers it by the script. Every
/// answer carries `Connection: close`, so one request per connection keeps the
/// script order equal to the arrival order.
fn serve(mut stream: TcpStream, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut buf = Vec::new();
    let Some(request) = read_request(&mut stream, &mut buf) else {
        return;
    };
    let reply = {
        let mut requests = shared.requests.lock();
        let reply = shared
            .script
            .get(requests.len())
            .copied()
            .unwrap_or(shared.after);
        requests.push(request);
        shared.arrived.notify_all();
        reply
    };
    match reply {
        Reply::Status(status) => {
            let answer = format!(
                "HTTP/1.1 {status} {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                reason(status)
            );
            let _ = stream.write_all(answer.as_bytes());
            let _ = stream.flush();
        }
        Reply::Json(body) => {
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(answer.as_bytes());
            let _ = stream.flush();
        }
        Reply::Stall => {
            let until = Instant::now() + Duration::from_secs(60);
            while !shared.stop.load(Ordering::Relaxed) && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        // Dropping the stream closes it without an answer.
        Reply::Close => {}
    }
}

/// One complete request (head parsed by `httparse`, body by `Content-Length`);
/// `None` when the peer closed, timed out or sent something unparsable.
fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Recorded> {
    let mut chunk = [0u8; 4096];
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(buf) {
            Ok(httparse::Status::Complete(head_len)) => {
                let method = request.method?.to_string();
                let path = request.path?.to_string();
                let headers: Vec<(String, String)> = request
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_string(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect();
                let content_length = headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                    .map(|(_, v)| v.trim().parse::<usize>().ok())
                    .unwrap_or(Some(0))?;
                while buf.len() < head_len + content_length {
                    let n = read_some(stream, &mut chunk)?;
                    buf.extend_from_slice(&chunk[..n]);
                }
                let body = buf[head_len..head_len + content_length].to_vec();
                buf.drain(..head_len + content_length);
                return Some(Recorded {
                    method,
                    path,
                    headers,
                    body,
                    at: Instant::now(),
                });
            }
            Ok(httparse::Status::Partial) => {
                let n = read_some(stream, &mut chunk)?;
                buf.extend_from_slice(&chunk[..n]);
            }
            Err(_) => return None,
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        302 => "Found",
        400 => "Bad Request",
        404 => "Not Found",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}
