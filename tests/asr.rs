//! Speech recognition end to end: real Opus speech through the pipeline to an
//! ASR engine and back to the device as `stt` and `audio` `transcription`
//! (PROTOCOL.md §3.1). The FunASR client runs against a protocol mock that
//! replays the real servers' quirks.

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::Server;
use common::audio::{Fixture, InProcess, frames};
use common::funasr_mock::{FunAsrMock, Quirk, SLOW_SENTENCE};
use huddle::protocol::framing::FramingVersion;
use serde_json::{Value, json};

fn funasr_config(url: &str, timeout_s: u64) -> String {
    format!(
        "[selected_module]\nasr = \"mock\"\n[asr.mock]\ntype = \"funasr\"\nurl = \"{url}\"\ntimeout_s = {timeout_s}\nhotwords = {{ \"扫码\" = 20 }}\n"
    )
}

/// Streams the fixture and collects the device's messages until `count`
/// results arrived.
fn stream_and_collect(
    server: &InProcess,
    id: &str,
    fixture: &str,
    count: usize,
    timeout: Duration,
) -> Vec<Value> {
    let mut device = server.stream_fixture(id, fixture);
    // `audio` `transcription` follows each `stt`, so it marks a complete result.
    device.collect_until(timeout, |seen| {
        seen.iter()
            .filter(|v| v["event"] == "transcription")
            .count()
            >= count
    })
}

#[test]
fn funasr_cpp_quirk_one_session_per_utterance_and_whole_audio_delivered() {
    let mock = FunAsrMock::start(Quirk::Cpp);
    let server = InProcess::start_with_asr(&funasr_config(&mock.url(), 5));
    let messages = stream_and_collect(
        &server,
        "asr:cpp",
        "two_utterances",
        2,
        Duration::from_secs(15),
    );
    let stt: Vec<&Value> = messages.iter().filter(|v| v["type"] == "stt").collect();
    assert_eq!(stt.len(), 2, "{messages:?}");
    let samples = mock.log.samples.lock().clone();
    assert_eq!(samples.len(), 2);
    // One device's utterances are recognized in order, so texts match sessions in order.
    for (v, n) in stt.iter().zip(&samples) {
        // The offline sentence replaced the partials, and the period was trimmed.
        assert_eq!(v["text"], format!("heard {n} samples"));
        assert!(v["session_id"].is_string());
    }
    // Each utterance is about 3.1 s and 2.7 s of audio (plus pre-roll).
    assert!(
        samples[0] > 16 * 2900 && samples[0] < 16 * 3300,
        "{samples:?}"
    );
    let transcriptions: Vec<&Value> = messages
        .iter()
        .filter(|v| v["event"] == "transcription")
        .collect();
    assert_eq!(transcriptions.len(), 2);
    assert!(transcriptions[0]["ts"].as_u64().unwrap() > 1_700_000_000_000);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(mock.log.sessions_open.load(Ordering::Relaxed), 2);
    assert_eq!(
        mock.log.sessions_closed.load(Ordering::Relaxed),
        2,
        "sessions must be closed"
    );
    let config = &mock.log.configs.lock()[0];
    assert_eq!(config["chunk_size"], json!([5, 10, 5]));
    assert_eq!(config["wav_format"], "pcm");
    assert_eq!(config["audio_fs"], 16000);
    assert_eq!(config["hotwords"], "{\"扫码\":20}");
    assert_eq!(config["mode"], "2pass");
}

#[test]
fn funasr_python_quirk_and_close_after_partials() {
    let python = FunAsrMock::start(Quirk::Python);
    let server = InProcess::start_with_asr(&funasr_config(&python.url(), 5));
    let messages = stream_and_collect(
        &server,
        "asr:py",
        "two_utterances",
        2,
        Duration::from_secs(15),
    );
    let texts: Vec<&Value> = messages
        .iter()
        .filter(|v| v["type"] == "stt")
        .map(|v| &v["text"])
        .collect();
    assert_eq!(texts.len(), 2);
    assert!(
        texts[0].as_str().unwrap().starts_with("heard "),
        "{texts:?}"
    );

    let closer = FunAsrMock::start(Quirk::CloseAfterPartials);
    let server = InProcess::start_with_asr(&funasr_config(&closer.url(), 5));
    let messages = stream_and_collect(
        &server,
        "asr:close",
        "two_utterances",
        1,
        Duration::from_secs(15),
    );
    let stt = messages
        .iter()
        .find(|v| v["type"] == "stt")
        .expect("stt from partials");
    // No sentence came: the partial deltas are the text.
    assert!(
        stt["text"].as_str().unwrap().starts_with("part part"),
        "{stt}"
    );
    assert!(stt["text"].as_str().unwrap().ends_with("tail"), "{stt}");
}

/// The server is paused (a debugger, a VM snapshot) while its FunASR client
/// waits for the sentence: the read with a timeout ends with EINTR, and the
/// client must read again rather than give up the utterance. The server is a
/// child process here, so only it is paused.
#[test]
fn funasr_wait_survives_the_server_being_paused() {
    let mock = FunAsrMock::start(Quirk::Slow);
    let server = Server::start(&funasr_config(&mock.url(), 5));
    let wav = common::audio::fixtures_dir().join("two_utterances.wav");
    let run = common::simulator::run_while(
        &[
            "--url",
            &server.ws_url("/xiaozhi/v1/"),
            "--wav",
            wav.to_str().expect("utf-8 path"),
            "--protocol",
            "3",
            "--fast",
            "--linger-ms",
            "8000",
        ],
        |_| {
            let deadline = Instant::now() + Duration::from_secs(10);
            while mock.log.sessions_finishing.load(Ordering::Relaxed) == 0 {
                assert!(Instant::now() < deadline, "no utterance ended in 10 s");
                std::thread::sleep(Duration::from_millis(20));
            }
            // Inside the mock's think time: the client is blocked reading.
            std::thread::sleep(SLOW_SENTENCE / 3);
            common::send_signal(server.pid(), "STOP");
            std::thread::sleep(Duration::from_millis(200));
            common::send_signal(server.pid(), "CONT");
        },
    );
    run.assert_success();
    let texts = run.stt_texts();
    let samples = mock.log.samples.lock().clone();
    assert_eq!(texts.len(), 2, "{}", run.explain());
    for (text, n) in texts.iter().zip(&samples) {
        assert_eq!(text, &format!("heard {n} samples"));
    }
}

#[test]
fn funasr_timeout_ends_the_turn_with_tts_stop() {
    let mock = FunAsrMock::start(Quirk::Silent);
    let server = InProcess::start_with_asr(&funasr_config(&mock.url(), 1));
    let mut device = server.device("asr:slow", 3);
    for frame in frames(
        FramingVersion::V3,
        &Fixture::load("two_utterances").packets(),
    ) {
        device.send_binary(frame);
    }
    let stop = device.recv_until(Duration::from_secs(10), |v| v["type"] == "tts");
    assert_eq!(stop["state"], "stop");
    // Counters are process-wide and other tests share this process: at least ours.
    let metrics = server.metrics();
    let errors: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("huddle_asr_errors_total "))
        .and_then(|v| v.parse().ok())
        .expect("error counter");
    assert!(errors >= 1, "{metrics}");
}

#[test]
fn a_dead_engine_fails_fast_and_a_revived_one_recognizes_again() {
    let mock = FunAsrMock::start(Quirk::Cpp);
    let port = mock.port;
    mock.stop();
    drop(mock);
    let server = InProcess::start_with_asr(&funasr_config(&format!("ws://127.0.0.1:{port}"), 3));
    let messages = stream_and_collect(
        &server,
        "asr:dead",
        "two_utterances",
        1,
        Duration::from_secs(4),
    );
    // Nothing was recognized: the wait above ran to its end and saw the failure.
    assert!(
        messages
            .iter()
            .any(|v| v["type"] == "tts" && v["state"] == "stop"),
        "{messages:?}"
    );
    assert!(!messages.iter().any(|v| v["type"] == "stt"));
    // The service comes back on the same port; after the backoff pause the
    // next utterance is recognized on a fresh session.
    let revived = FunAsrMock::start_on(port, Quirk::Cpp);
    std::thread::sleep(Duration::from_secs(2));
    let messages = stream_and_collect(
        &server,
        "asr:dead2",
        "two_utterances",
        2,
        Duration::from_secs(15),
    );
    let stt = messages.iter().filter(|v| v["type"] == "stt").count();
    assert!(stt >= 1, "recognition resumed: {messages:?}");
    assert!(revived.log.sessions_open.load(Ordering::Relaxed) >= 1);
}
