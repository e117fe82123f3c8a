//! Real-time factor of the ASR engines on this machine: one 3.1 s utterance
//! (the first sentence of `two_utterances.wav`) per iteration, through the
//! same `AsrEngine` API the server uses. RTF = time per iteration / 3.1 s.
//! Engines measured when present: embedded whisper.cpp with each model in
//! `models/` (tools/fetch_models.sh), and the faster-whisper service of
//! tools/asr-service (its venv from tools/asr-service/setup.sh).
//! Run: `cargo bench --bench asr`.

mod support;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use huddle::asr::AsrEngine;
use huddle::asr::openai::OpenAiEngine;
use huddle::config::{OpenAiAsr, WhisperAsr};

/// The first sentence of the fixture: 1.0–4.024 s.
fn utterance() -> Vec<i16> {
    let pcm = support::speech_pcm_of("two_utterances");
    pcm[16_000..64_384].to_vec()
}

fn transcribe(engine: &dyn AsrEngine, pcm: &[i16]) -> String {
    let mut session = engine.open().expect("open");
    session.feed(pcm).expect("feed");
    session
        .finish(Instant::now() + Duration::from_secs(60))
        .expect("finish")
}

fn whisper(c: &mut Criterion) {
    let pcm = utterance();
    let mut group = c.benchmark_group("asr_3s_utterance");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for model in ["ggml-tiny.en-q8_0.bin", "ggml-base-q8_0.bin"] {
        let path = root.join("models").join(model);
        if !path.exists() {
            eprintln!("skipping whisper {model}: not in models/");
            continue;
        }
        let settings = WhisperAsr {
            model: path.display().to_string(),
            language: "en".to_string(),
            threads: 2,
            timeout_s: 60,
        };
        let engine: Arc<dyn AsrEngine> =
            Arc::new(huddle::asr::whisper::WhisperEngine::load(settings).expect("load"));
        eprintln!("whisper {model}: {:?}", transcribe(engine.as_ref(), &pcm));
        group.bench_function(format!("whisper_{model}"), |b| {
            b.iter(|| transcribe(engine.as_ref(), &pcm))
        });
    }
    if let Some((mut service, port)) = start_service() {
        let engine = OpenAiEngine::new(OpenAiAsr {
            base_url: format!("http://127.0.0.1:{port}/v1"),
            model: "whisper-1".to_string(),
            api_key: None,
            language: Some("en".to_string()),
            timeout_s: 60,
        });
        eprintln!("faster-whisper service: {:?}", transcribe(&engine, &pcm));
        group.bench_function("openai_faster_whisper_tiny_en_service", |b| {
            b.iter(|| transcribe(&engine, &pcm))
        });
        let _ = service.kill();
        let _ = service.wait();
    }
    group.finish();
}

fn start_service() -> Option<(Child, u16)> {
    let python = PathBuf::from(
        std::env::var("HUDDLE_ASR_VENV").unwrap_or_else(|_| "/opt/huddle-asr-venv".into()),
    )
    .join("bin/python");
    if !python.exists() {
        eprintln!("skipping the faster-whisper service: no venv");
        return None;
    }
    let port_file = std::env::temp_dir().join("huddle-bench-asr.port");
    let _ = std::fs::remove_file(&port_file);
    let mut child = Command::new(python)
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tools/asr-service/serve.py"))
        .args(["--port", "0", "--quiet", "--port-file"])
        .arg(&port_file)
        .env("HF_HUB_OFFLINE", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Some(port) = std::fs::read_to_string(&port_file)
            .ok()
            .and_then(|p| p.trim().parse().ok())
        {
            return Some((child, port));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

criterion_group!(benches, whisper);
criterion_main!(benches);
