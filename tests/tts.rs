//! Text-to-speech with real parts: the installed espeak-ng, libopus, and an OpenAI-compatible speech endpoint
//! served by a plain TCP server in this file (request shape, auth, WAV answer at 24 kHz, HTTP errors, stalls);
//! engine selection from the config.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use huddle::config::{Config, EspeakTts, OpenAiTts, parse_toml};
use huddle::tts::{
    EspeakEngine, FRAME_SAMPLES, OpenAiSpeech, SAMPLE_RATE, SpeechEncoder, Tts, TtsError,
    TtsRegistry,
};
use serde_json::Value;

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(20)
}

fn rms(pcm: &[i16]) -> f64 {
    (pcm.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / pcm.len().max(1) as f64).sqrt()
}

/// A result without thousands of samples in a failure message.
fn summary(result: &Result<Vec<i16>, TtsError>) -> String {
    match result {
        Ok(pcm) => format!("Ok({} samples)", pcm.len()),
        Err(e) => format!("Err({e:?})"),
    }
}

fn espeak() -> EspeakEngine {
    EspeakEngine::from_path(
        "local",
        EspeakTts {
            voice: "en-us".to_string(),
            rate: None,
        },
    )
    .expect("espeak-ng on PATH (installed by .ci/setup)")
}

// ---- espeak-ng ----

#[test]
fn espeak_speaks_a_sentence_as_16khz_pcm() {
    let pcm = espeak()
        .synthesize("Hello from the badge.", soon())
        .unwrap();
    let seconds = pcm.len() as f64 / f64::from(SAMPLE_RATE);
    assert!((0.5..4.0).contains(&seconds), "{seconds} s of speech");
    assert!(rms(&pcm) > 500.0, "near silent: rms {}", rms(&pcm));
}

#[test]
fn espeak_rate_changes_the_duration() {
    let text = "The quick brown fox jumps over the lazy dog.";
    let slow = EspeakEngine::from_path(
        "slow",
        EspeakTts {
            voice: "en-us".to_string(),
            rate: Some(100),
        },
    )
    .unwrap()
    .synthesize(text, soon())
    .unwrap();
    let fast = EspeakEngine::from_path(
        "fast",
        EspeakTts {
            voice: "en-us".to_string(),
            rate: Some(300),
        },
    )
    .unwrap()
    .synthesize(text, soon())
    .unwrap();
    assert!(
        slow.len() > fast.len() * 2,
        "{} vs {} samples",
        slow.len(),
        fast.len()
    );
}

#[test]
fn espeak_text_that_looks_like_options_is_spoken_not_obeyed() {
    let pcm = espeak().synthesize("--version; rm -rf /", soon()).unwrap();
    assert!(
        pcm.len() > SAMPLE_RATE as usize / 2,
        "{} samples",
        pcm.len()
    );
}

#[test]
fn espeak_with_an_unknown_voice_fails_naming_espeak() {
    let engine = EspeakEngine::from_path(
        "bad",
        EspeakTts {
            voice: "nosuchvoice".to_string(),
            rate: None,
        },
    )
    .unwrap();
    match engine.synthesize("hello", soon()) {
        Err(TtsError::Failed(why)) => assert!(why.contains("espeak-ng"), "{why}"),
        other => panic!("expected Failed, got {}", summary(&other)),
    }
}

#[test]
fn espeak_is_killed_at_the_deadline() {
    let text = "This is a rather long paragraph that takes espeak a while to speak. ".repeat(200);
    let started = Instant::now();
    let result = espeak().synthesize(&text, Instant::now() + Duration::from_millis(50));
    assert!(
        matches!(result, Err(TtsError::Timeout)),
        "{}",
        summary(&result)
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn espeak_speech_encodes_to_valid_16khz_opus() {
    let pcm = espeak()
        .synthesize("Hello from the badge.", soon())
        .unwrap();
    let mut encoder = SpeechEncoder::new().unwrap();
    let packets = encoder.encode(&pcm).unwrap();
    assert_eq!(packets.len(), pcm.len().div_ceil(FRAME_SAMPLES));
    let mut decoder = opus::Decoder::new(SAMPLE_RATE, opus::Channels::Mono).unwrap();
    let mut out = [0i16; 1920];
    let mut decoded = Vec::new();
    for packet in &packets {
        // Downlink frames must fit the protocol's 4 KiB binary frame limit with header.
        assert!(packet.len() < 4096 - 16, "{} bytes", packet.len());
        let n = decoder.decode(packet, &mut out, false).unwrap();
        assert_eq!(n, FRAME_SAMPLES);
        decoded.extend_from_slice(&out[..n]);
    }
    let ratio = rms(&decoded) / rms(&pcm);
    assert!((0.5..1.5).contains(&ratio), "level ratio {ratio}");
}

// ---- OpenAI-compatible /audio/speech ----

/// What the test server saw of one request.
#[derive(Debug)]
struct Seen {
    request_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// How the test server answers.
enum Answer {
    Wav(Vec<u8>),
    Status(u16, &'static str),
    /// Reads the request, then says nothing for this long.
    Stall(Duration),
}

/// A one-request HTTP server on a free loopback port.
struct SpeechServer {
    base_url: String,
    handle: JoinHandle<Option<Seen>>,
}

impl SpeechServer {
    fn start(answer: Answer) -> SpeechServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base_url = format!("http://{}/v1", listener.local_addr().unwrap());
        let handle = thread::spawn(move || {
            let (stream, _) = listener.accept().ok()?;
            serve(stream, answer)
        });
        SpeechServer { base_url, handle }
    }

    fn seen(self) -> Seen {
        self.handle.join().unwrap().expect("a request")
    }
}

fn serve(stream: TcpStream, answer: Answer) -> Option<Seen> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).ok()?;
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (k, v) = line.split_once(':')?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let length: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    let mut stream = stream;
    match answer {
        Answer::Wav(wav) => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: audio/wav\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                wav.len()
            );
            stream.write_all(head.as_bytes()).ok()?;
            stream.write_all(&wav).ok()?;
        }
        Answer::Status(status, text) => {
            let head = format!(
                "HTTP/1.1 {status} Oops\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                text.len()
            );
            stream.write_all(head.as_bytes()).ok()?;
        }
        Answer::Stall(how_long) => thread::sleep(how_long),
    }
    Some(Seen {
        request_line: request_line.trim_end().to_string(),
        headers,
        body,
    })
}

/// `seconds` of a 300 Hz tone as a 24 kHz WAV with `channels` channels.
fn wav_24k(seconds: f64, channels: u16) -> Vec<u8> {
    let spec = hound::WavSpec {
        channels,
        sample_rate: 24_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut bytes = Vec::new();
    {
        let mut w = hound::WavWriter::new(std::io::Cursor::new(&mut bytes), spec).unwrap();
        for i in 0..(24_000.0 * seconds) as usize {
            let t = i as f64 / 24_000.0;
            let s = (8000.0 * (std::f64::consts::TAU * 300.0 * t).sin()) as i16;
            for _ in 0..channels {
                w.write_sample(s).unwrap();
            }
        }
        w.finalize().unwrap();
    }
    bytes
}

fn openai(base_url: &str, api_key: Option<&str>, voice: Option<&str>) -> OpenAiSpeech {
    OpenAiSpeech::new(
        "cloud",
        OpenAiTts {
            base_url: base_url.to_string(),
            model: "tts-test".to_string(),
            voice: voice.map(str::to_string),
            api_key: api_key.map(str::to_string),
        },
    )
}

#[test]
fn openai_request_has_the_speech_shape_and_auth_and_audio_comes_back_at_16khz() {
    let server = SpeechServer::start(Answer::Wav(wav_24k(1.5, 1)));
    let speech = openai(
        &format!("{}/", server.base_url),
        Some("sk-test"),
        Some("alloy"),
    );
    let pcm = speech.synthesize("你好, badge!", soon()).unwrap();
    assert_eq!(pcm.len(), 24_000);
    assert!(
        (rms(&pcm) - 8000.0 / 2f64.sqrt()).abs() < 300.0,
        "rms {}",
        rms(&pcm)
    );

    let seen = server.seen();
    assert_eq!(seen.request_line, "POST /v1/audio/speech HTTP/1.1");
    assert_eq!(seen.header("authorization"), Some("Bearer sk-test"));
    assert_eq!(seen.header("content-type"), Some("application/json"));
    let body: Value = serde_json::from_slice(&seen.body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"model":"tts-test","input":"你好, badge!","voice":"alloy","response_format":"wav"})
    );
}

#[test]
fn openai_stereo_is_mixed_down_and_no_key_sends_no_auth() {
    let server = SpeechServer::start(Answer::Wav(wav_24k(0.75, 2)));
    let pcm = openai(&server.base_url, None, None)
        .synthesize("Stereo please.", soon())
        .unwrap();
    assert_eq!(pcm.len(), 12_000);
    let seen = server.seen();
    assert_eq!(seen.header("authorization"), None);
    let body: Value = serde_json::from_slice(&seen.body).unwrap();
    assert!(body.get("voice").is_none(), "{body}");
}

#[test]
fn openai_http_errors_are_failures_naming_the_status_and_body() {
    let server = SpeechServer::start(Answer::Status(500, r#"{"error":"model exploded"}"#));
    match openai(&server.base_url, None, None).synthesize("hi", soon()) {
        Err(TtsError::Failed(why)) => {
            assert!(why.contains("500"), "{why}");
            assert!(why.contains("model exploded"), "{why}");
        }
        other => panic!("expected Failed, got {}", summary(&other)),
    }
    server.seen();
}

#[test]
fn openai_non_wav_answers_are_bad_audio() {
    let server = SpeechServer::start(Answer::Wav(b"ID3\x03\x00 mp3 bytes".to_vec()));
    let result = openai(&server.base_url, None, None).synthesize("hi", soon());
    assert!(
        matches!(result, Err(TtsError::BadAudio(_))),
        "{}",
        summary(&result)
    );
    server.seen();
}

#[test]
fn openai_stalled_server_times_out_by_the_deadline() {
    let server = SpeechServer::start(Answer::Stall(Duration::from_secs(5)));
    let deadline = Instant::now() + Duration::from_millis(800);
    let result = openai(&server.base_url, None, None).synthesize("hi", deadline);
    assert!(
        matches!(result, Err(TtsError::Timeout)),
        "{}",
        summary(&result)
    );
    let late = Instant::now().saturating_duration_since(deadline);
    assert!(late < Duration::from_secs(1), "{late:?} past the deadline");
}

// ---- selection ----

fn config(selected: &str) -> Config {
    parse_toml(&format!(
        "[selected_module]\ntts = \"{selected}\"\n\n[tts.local]\ntype = \"espeak\"\nvoice = \"en-us\"\nrate = 170\n"
    ))
    .unwrap()
}

#[test]
fn resolve_gives_none_for_none_and_an_engine_for_an_espeak_table() {
    let registry = TtsRegistry::new();
    assert!(registry.resolve(&Config::default()).is_none());
    assert!(registry.resolve(&config("none")).is_none());
    assert!(registry.resolve(&config("missing")).is_none());
    let engine = registry.resolve(&config("local")).unwrap();
    assert_eq!(engine.name(), "local");
    assert!(Arc::ptr_eq(
        &engine,
        &registry.resolve(&config("local")).unwrap()
    ));
    let pcm = engine.synthesize("Resolved.", soon()).unwrap();
    assert!(!pcm.is_empty());

    // The process-wide functions behave the same.
    assert!(huddle::tts::resolve(&config("none")).is_none());
    assert!(huddle::tts::resolve(&config("local")).is_some());
    huddle::tts::clear_cache();
}
