//! Audio test support: speech fixtures made by `tests/fixtures/make_fixtures.sh`
//! (espeak-ng + sox) with their truth files, real Opus packets, and an
//! in-process server whose utterances land in a recording sink.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use huddle::audio::opus::OpusEncoder;
use huddle::audio::utterance::{RecordingSink, Utterance};
use huddle::config::{ConfigStore, parse_toml};
use huddle::protocol::framing::{FramingVersion, PacketKind, encode_into};
use huddle::server::{RunningServer, ServerOptions};
use serde_json::Value;

/// Generates the fixtures once per test binary into `<target>/tmp/fixtures`
/// and returns that directory. Every test binary shares it: the script's lock
/// serializes concurrent runs and its stamp skips work already done.
pub fn fixtures_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fixtures");
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/make_fixtures.sh");
        let output = std::process::Command::new("bash")
            .arg(&script)
            .arg(&dir)
            .output()
            .expect("run make_fixtures.sh");
        assert!(
            output.status.success(),
            "make_fixtures.sh failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        dir
    })
    .clone()
}

/// A fixture's samples and its truth (`speech` intervals in ms).
pub struct Fixture {
    pub pcm: Vec<i16>,
    pub truth: Value,
}

impl Fixture {
    pub fn load(name: &str) -> Fixture {
        let dir = fixtures_dir();
        let mut reader =
            hound::WavReader::open(dir.join(format!("{name}.wav"))).expect("open fixture");
        let pcm = reader
            .samples::<i16>()
            .map(|s| s.expect("sample"))
            .collect();
        let truth = serde_json::from_str(
            &std::fs::read_to_string(dir.join(format!("{name}.json"))).expect("truth file"),
        )
        .expect("truth JSON");
        Fixture { pcm, truth }
    }

    /// Truth intervals as (start_ms, end_ms).
    pub fn speech(&self) -> Vec<(u64, u64)> {
        self.truth["speech"]
            .as_array()
            .expect("speech array")
            .iter()
            .map(|s| {
                (
                    s["start_ms"].as_u64().unwrap(),
                    s["end_ms"].as_u64().unwrap(),
                )
            })
            .collect()
    }

    /// Real Opus packets, 60 ms each.
    pub fn packets(&self) -> Vec<Vec<u8>> {
        OpusEncoder::new().unwrap().encode_all(&self.pcm).unwrap()
    }
}

/// Binary frames of `packets` in one framing version.
pub fn frames(version: FramingVersion, packets: &[Vec<u8>]) -> Vec<Vec<u8>> {
    packets
        .iter()
        .map(|p| {
            let mut out = Vec::new();
            encode_into(version, PacketKind::Opus, p, &mut out);
            out
        })
        .collect()
}

/// A server in this process, on a free port, recording utterances.
pub struct InProcess {
    pub server: Option<RunningServer>,
    pub sink: Arc<RecordingSink>,
    pub port: u16,
}

impl InProcess {
    /// Utterances go to a recorder (no ASR).
    pub fn start(extra_toml: &str) -> InProcess {
        Self::start_inner(extra_toml, true)
    }

    /// Utterances go to the ASR engine the config selects.
    pub fn start_with_asr(extra_toml: &str) -> InProcess {
        Self::start_inner(extra_toml, false)
    }

    fn start_inner(extra_toml: &str, record: bool) -> InProcess {
        let config = parse_toml(&format!(
            "[server]\nip = \"127.0.0.1\"\nport = 8000\n{extra_toml}\n"
        ))
        .expect("test config");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().unwrap().port();
        let sink = Arc::new(RecordingSink::default());
        let options = ServerOptions {
            utterance_sink: record
                .then(|| sink.clone() as Arc<dyn huddle::audio::utterance::UtteranceSink>),
            device_listener: Some(listener),
            ..ServerOptions::default()
        };
        let server = huddle::server::start(Arc::new(ConfigStore::new(config, None)), options)
            .expect("start");
        InProcess {
            server: Some(server),
            sink,
            port,
        }
    }

    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/xiaozhi/v1/", self.port)
    }

    pub fn device(&self, device_id: &str, version: u8) -> super::Device {
        super::Device::connect(
            &self.url(),
            &[
                ("Device-Id", device_id),
                ("Protocol-Version", &version.to_string()),
            ],
        )
        .expect("connect")
    }

    /// A v3 device that opened an auto-mode listen and sent all of
    /// `fixture`'s real Opus packets at once.
    pub fn stream_fixture(&self, device_id: &str, fixture: &str) -> super::Device {
        let mut device = self.device(device_id, 3);
        device.send_json(serde_json::json!({"type":"listen","state":"start","mode":"auto"}));
        for frame in frames(FramingVersion::V3, &Fixture::load(fixture).packets()) {
            device.send_binary(frame);
        }
        device
    }

    /// Utterances of one device, waiting until at least `count` arrived.
    pub fn wait_utterances(
        &self,
        device_id: &str,
        count: usize,
        timeout: Duration,
    ) -> Vec<Utterance> {
        let deadline = Instant::now() + timeout;
        loop {
            let found: Vec<Utterance> = self
                .sink
                .utterances
                .lock()
                .iter()
                .filter(|u| &*u.device_id == device_id)
                .cloned()
                .collect();
            if found.len() >= count || Instant::now() >= deadline {
                return found;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn metrics(&self) -> String {
        super::http_request(self.port, "GET", "/metrics", &[], "").body
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            let _ = server.shutdown();
        }
    }
}
