//! A FunASR runtime protocol mock on loopback that replays the real servers'
//! quirks (no FunASR model exists on any registry, so the client is tested
//! against the protocol). Each session answers with text that counts the PCM
//! samples it received, so a test can tell that the whole utterance arrived.

#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::{Value, json};
use tungstenite::Message;

/// How the mock behaves after `is_speaking:false`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quirk {
    /// C++ server: online partials, then an offline sentence with `is_final:false`; stays open.
    Cpp,
    /// Python server: `is_final` inverted (true on partials, false on the sentence); then closes.
    Python,
    /// Only online partials, then the socket closes.
    CloseAfterPartials,
    /// Never answers.
    Silent,
    /// Like `Cpp`, but the sentence comes [`SLOW_SENTENCE`] after `is_speaking:false`.
    Slow,
}

/// How long [`Quirk::Slow`] thinks before its sentence.
pub const SLOW_SENTENCE: Duration = Duration::from_millis(1500);

#[derive(Default)]
pub struct MockLog {
    /// Config frames received, one per session.
    pub configs: Mutex<Vec<Value>>,
    /// Samples received per session.
    pub samples: Mutex<Vec<usize>>,
    pub sessions_open: AtomicUsize,
    pub sessions_closed: AtomicUsize,
    /// Sessions that received `is_speaking:false`.
    pub sessions_finishing: AtomicUsize,
}

pub struct FunAsrMock {
    pub port: u16,
    pub log: Arc<MockLog>,
    stop: Arc<AtomicBool>,
}

impl FunAsrMock {
    pub fn start(quirk: Quirk) -> FunAsrMock {
        Self::start_on(0, quirk)
    }

    /// On a given port (0 = any), so a test can "restart the service" where it was.
    pub fn start_on(port: u16, quirk: Quirk) -> FunAsrMock {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind mock");
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(MockLog::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (log2, stop2) = (Arc::clone(&log), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let log = Arc::clone(&log2);
                        std::thread::spawn(move || serve(stream, quirk, &log));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        FunAsrMock { port, log, stop }
    }

    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    /// Stops accepting (the listener closes within a few ms).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(30));
    }
}

impl Drop for FunAsrMock {
    fn drop(&mut self) {
        self.stop();
    }
}

fn serve(stream: TcpStream, quirk: Quirk, log: &MockLog) {
    stream.set_nonblocking(false).unwrap();
    let Ok(mut ws) = tungstenite::accept(stream) else {
        return;
    };
    log.sessions_open.fetch_add(1, Ordering::Relaxed);
    let mut samples = 0usize;
    let mut frames = 0usize;
    loop {
        match ws.read() {
            Ok(Message::Text(text)) => {
                let v: Value = serde_json::from_str(text.as_str()).unwrap_or(Value::Null);
                if v.get("chunk_size").is_some() {
                    log.configs.lock().push(v);
                } else if v["is_speaking"] == false {
                    log.sessions_finishing.fetch_add(1, Ordering::Relaxed);
                    break;
                }
            }
            Ok(Message::Binary(pcm)) => {
                samples += pcm.len() / 2;
                frames += 1;
                if frames.is_multiple_of(10) && quirk != Quirk::Silent {
                    let is_final = quirk == Quirk::Python;
                    let _ = ws.send(Message::text(
                        json!({"mode":"2pass-online","text":"part ","is_final":is_final,"wav_name":"huddle"}).to_string(),
                    ));
                }
            }
            Ok(_) => {}
            Err(_) => {
                log.sessions_closed.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
    }
    log.samples.lock().push(samples);
    let sentence = json!({"mode":"2pass-offline","text":format!("heard {samples} samples."),"timestamp":"[[0,100]]","wav_name":"huddle"});
    match quirk {
        Quirk::Cpp | Quirk::Slow => {
            if quirk == Quirk::Slow {
                std::thread::sleep(SLOW_SENTENCE);
            }
            let mut s = sentence;
            s["is_final"] = json!(false);
            let _ = ws.send(Message::text(s.to_string()));
            // Stays open until the client closes.
            while ws.read().is_ok() {}
        }
        Quirk::Python => {
            let mut s = sentence;
            s["is_final"] = json!(false);
            let _ = ws.send(Message::text(s.to_string()));
            let _ = ws.close(None);
            while ws.read().is_ok() {}
        }
        Quirk::CloseAfterPartials => {
            let _ = ws.send(Message::text(
                json!({"mode":"2pass-online","text":"tail","is_final":false}).to_string(),
            ));
            let _ = ws.close(None);
            while ws.read().is_ok() {}
        }
        Quirk::Silent => while ws.read().is_ok() {},
    }
    log.sessions_closed.fetch_add(1, Ordering::Relaxed);
}
