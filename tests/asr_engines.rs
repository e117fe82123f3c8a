//! Real engines, offline: the embedded whisper.cpp and a real OpenAI-compatible
//! service (faster-whisper), fed real Opus speech by the device simulator or
//! a test client. Transcripts must match the fixture text with a word error
//! rate of at most 20 %.

mod common;

use std::time::Duration;

use common::asr_service::{AsrService, whisper_config, word_error_rate};
use common::audio::{Fixture, InProcess, fixtures_dir, frames};
use common::{Server, simulator};
use huddle::protocol::framing::FramingVersion;
use serde_json::{Value, json};

const MAX_WER: f64 = 0.20;

/// Recognition is CPU-bound: on a 2-core box these tests run one at a time,
/// so a slow neighbour cannot push an engine past the simulator's wait.
static ENGINES: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ENGINES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn truth_text(fixture: &str) -> String {
    Fixture::load(fixture).truth["speech"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["text"].as_str().unwrap().to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `huddle device` and returns the `stt` texts it printed, in order.
fn simulate(server: &Server, mode: &str, wav: &str, linger_ms: u64) -> Vec<String> {
    let run = simulator::stream(
        server,
        &fixtures_dir().join(wav),
        &[
            "--protocol",
            "3",
            "--fast",
            "--mode",
            mode,
            "--linger-ms",
            &linger_ms.to_string(),
            "--device-id",
            &format!("sim-{mode}"),
        ],
    );
    run.assert_success();
    run.stt_texts()
}

#[test]
fn embedded_whisper_in_auto_manual_and_realtime_modes() {
    let _serial = one_at_a_time();
    simulator_in_every_listen_mode("whisper", &whisper_config());
}

#[test]
fn openai_compatible_service_in_auto_manual_and_realtime_modes() {
    let _serial = one_at_a_time();
    let service = AsrService::start(0);
    let config = format!(
        "[selected_module]\nasr = \"fws\"\n[asr.fws]\ntype = \"openai\"\nbase_url = \"{}\"\nmodel = \"whisper-1\"\nlanguage = \"en\"\n",
        service.base_url()
    );
    simulator_in_every_listen_mode("faster-whisper service", &config);
}

fn simulator_in_every_listen_mode(engine: &str, config: &str) {
    let server = Server::start(config);
    let truth = truth_text("two_utterances");
    for mode in ["auto", "manual", "realtime"] {
        // A generous linger: under load a second result can take seconds.
        let texts = simulate(&server, mode, "two_utterances.wav", 25_000);
        let heard = texts.join(" ");
        let wer = word_error_rate(&truth, &heard);
        eprintln!("{engine} {mode}: {heard:?} (WER {:.1} %)", wer * 100.0);
        // Manual too: the press outlasts manual_listen_fallback_ms (5 s), so the
        // server VAD takes over and cuts at the pause between the sentences.
        assert_eq!(texts.len(), 2, "{mode}: {texts:?}");
        assert!(wer <= MAX_WER, "{mode}: WER {wer:.2} for {heard:?}");
    }
}

/// Streams a fixture from a test client and returns what came back until
/// `results` transcriptions or a `tts stop` arrived, or the timeout.
fn stream(
    server: &InProcess,
    id: &str,
    fixture: &str,
    results: usize,
    timeout: Duration,
) -> Vec<Value> {
    collect(&mut server.stream_fixture(id, fixture), results, timeout)
}

fn collect(device: &mut common::Device, results: usize, timeout: Duration) -> Vec<Value> {
    device.collect_until(timeout, |seen| {
        // A result is a transcription line, or a `tts stop` that ends a
        // failed utterance (one with no `tts start` before it: a chat turn's
        // answer has both).
        let state = |s: &str| {
            seen.iter()
                .filter(|v| v["type"] == "tts" && v["state"] == s)
                .count()
        };
        let done = seen
            .iter()
            .filter(|v| v["event"] == "transcription")
            .count()
            + state("stop").saturating_sub(state("start"));
        done >= results
    })
}

fn stt_text(messages: &[Value]) -> String {
    messages
        .iter()
        .filter(|v| v["type"] == "stt")
        .map(|v| v["text"].as_str().unwrap_or_default())
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn openai_compatible_service_transcribes_and_recovers_after_being_killed() {
    let _serial = one_at_a_time();
    let service = AsrService::start(0);
    let config = format!(
        "[selected_module]\nasr = \"fws\"\n[asr.fws]\ntype = \"openai\"\nbase_url = \"{}\"\nmodel = \"whisper-1\"\nlanguage = \"en\"\ntimeout_s = 20\n",
        service.base_url()
    );
    let server = InProcess::start_with_asr(&config);
    let truth = truth_text("two_utterances");
    let heard = stt_text(&stream(
        &server,
        "fws:1",
        "two_utterances",
        2,
        Duration::from_secs(40),
    ));
    let wer = word_error_rate(&truth, &heard);
    eprintln!(
        "faster-whisper service: {heard:?} (WER {:.1} %)",
        wer * 100.0
    );
    assert!(wer <= MAX_WER, "WER {wer:.2} for {heard:?}");

    // Killed while the device talks: the utterance fails and the device's
    // turn ends with `tts stop` instead of hanging.
    let mut device = server.device("fws:2", 3);
    let all = frames(
        FramingVersion::V3,
        &Fixture::load("two_utterances").packets(),
    );
    for frame in &all[..40] {
        device.send_binary(frame.clone());
    }
    let port = service.kill();
    for frame in &all[40..] {
        device.send_binary(frame.clone());
    }
    let failed = collect(&mut device, 1, Duration::from_secs(20));
    assert!(
        failed
            .iter()
            .any(|v| v["type"] == "tts" && v["state"] == "stop"),
        "{failed:?}"
    );
    assert!(!failed.iter().any(|v| v["type"] == "stt"), "{failed:?}");

    // The service comes back on its port; after the backoff pause the next
    // utterance is recognized on a fresh session.
    let _revived = AsrService::start(port);
    std::thread::sleep(Duration::from_secs(3));
    let heard = stt_text(&stream(
        &server,
        "fws:3",
        "two_utterances",
        2,
        Duration::from_secs(40),
    ));
    assert!(
        word_error_rate(&truth, &heard) <= MAX_WER,
        "after restart: {heard:?}"
    );
}

#[test]
fn a_second_meeting_on_the_same_connection_transcribes_again() {
    let _serial = one_at_a_time();
    let server = InProcess::start_with_asr(&whisper_config());
    let mut device = server.device("meet:1", 3);
    let all = frames(
        FramingVersion::V3,
        &Fixture::load("two_utterances").packets(),
    );
    for round in 0..2 {
        device.send_json(json!({"type":"mode","state":"start","mode":"meeting"}));
        // The entry tone (`tts start`/`stop`) and the ack come first.
        device.recv_until(Duration::from_secs(5), |v| v["type"] == "mode");
        // Meeting mode prefers the device's VAD: the badge brackets its speech.
        device.send_json(json!({"type":"listen","state":"start","mode":"manual"}));
        for frame in &all {
            device.send_binary(frame.clone());
        }
        device.send_json(json!({"type":"listen","state":"stop"}));
        let messages = collect(&mut device, 2, Duration::from_secs(40));
        // A meeting recorder shows no `stt` (TTS off); the transcription lines carry the text.
        let heard = messages
            .iter()
            .filter(|v| v["event"] == "transcription")
            .map(|v| v["text"].as_str().unwrap_or_default())
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            word_error_rate(&truth_text("two_utterances"), &heard) <= MAX_WER,
            "meeting {round}: {heard:?}"
        );
        device.send_json(json!({"type":"mode","state":"end","mode":"meeting"}));
        device.recv_until(Duration::from_secs(5), |v| v["type"] == "mode");
    }
}
