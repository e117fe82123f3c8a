//! The fuzz corpus as ordinary tests (issue 9): every file in
//! `fuzz/corpus/<target>/` (the hand-made seeds) and `fuzz/regressions/<target>/`
//! (inputs that once crashed a target) goes through the same entry point as
//! the `cargo fuzz` target, [`huddle::fuzzing`], and none may panic.
//!
//! The seeds are written by `seeds()` below:
//! `cargo test --test fuzz_regressions -- --ignored write_seeds` rewrites them
//! (after a format change, say). Fuzzing itself: `tools/fuzz.sh`.

use std::collections::BTreeMap;
use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::Duration;

use huddle::config::Config;
use huddle::fuzzing::{self, API_TOKEN, DEVICE_ID, DEVICE_TOKEN, FILE_SEPARATOR, SESSION_ID};
use huddle::protocol::PacketKind;
use huddle::protocol::framing::{FramingVersion, encode_into};
use huddle::store::journal::JournalWriter;
use huddle::store::meetings::MeetingStore;
use huddle::store::model::{JournalRecord, Segment};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    paths
}

/// Feeds the target every seed and regression file; all must pass, and the
/// target must have seeds at all.
fn replay(target: &str) {
    let run = fuzzing::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .map(|(_, run)| *run)
        .unwrap_or_else(|| panic!("no fuzz target {target}"));
    let seeds = files(&fuzz_dir().join("corpus").join(target));
    assert!(!seeds.is_empty(), "fuzz/corpus/{target}/ has no seeds");
    let regressions = files(&fuzz_dir().join("regressions").join(target));
    let mut failed = Vec::new();
    for path in seeds.iter().chain(&regressions) {
        let data = fs::read(path).unwrap();
        if catch_unwind(AssertUnwindSafe(|| run(&data))).is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{target}: {} of {} inputs panicked (message above): {failed:#?}",
        failed.len(),
        seeds.len() + regressions.len()
    );
}

#[test]
fn framing() {
    replay("framing");
}

#[test]
fn json_message() {
    replay("json_message");
}

#[test]
fn http_request() {
    replay("http_request");
    fuzzing::remove_http_fixture();
}

#[test]
fn journal() {
    replay("journal");
}

#[test]
fn meeting_file() {
    replay("meeting_file");
}

#[test]
fn config() {
    replay("config");
}

/// Every target in `huddle::fuzzing::TARGETS` has a test above and a fuzz target file.
#[test]
fn every_target_is_covered() {
    let this = include_str!("fuzz_regressions.rs");
    for (name, _) in fuzzing::TARGETS {
        assert!(this.contains(&format!("fn {name}()")), "no test for {name}");
        let target = fuzz_dir().join("fuzz_targets").join(format!("{name}.rs"));
        assert!(target.is_file(), "{} is missing", target.display());
    }
}

/// Rewrites `fuzz/corpus/<target>/` from [`seeds`] (removing nothing else).
#[test]
#[ignore = "rewrites the committed seed corpus"]
fn write_seeds() {
    for (target, files) in seeds() {
        let dir = fuzz_dir().join("corpus").join(target);
        fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in files {
            fs::write(dir.join(name), bytes).unwrap();
        }
    }
}

type Seeds = BTreeMap<&'static str, Vec<(String, Vec<u8>)>>;

/// Valid inputs for every target: the PROTOCOL.md examples and files written
/// by the store itself, as its tests write them.
fn seeds() -> Seeds {
    let mut seeds = Seeds::new();
    let mut add = |target: &'static str, name: &str, bytes: Vec<u8>| {
        seeds
            .entry(target)
            .or_default()
            .push((name.to_string(), bytes));
    };

    // §2.3 worked examples, byte for byte, and frames the encoder makes.
    let opus = [0x58, 0x0b, 0xe4, 0x71];
    add(
        "framing",
        "v2-worked-example.bin",
        vec![
            0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xe8, 0x00, 0x00,
            0x00, 0x04, 0x58, 0x0b, 0xe4, 0x71,
        ],
    );
    add(
        "framing",
        "v3-worked-example.bin",
        vec![0x00, 0x00, 0x00, 0x04, 0x58, 0x0b, 0xe4, 0x71],
    );
    add("framing", "v1-opus-packet.bin", opus.to_vec());
    let encoded = |version, kind, payload: &[u8]| {
        let mut out = Vec::new();
        encode_into(version, kind, payload, &mut out);
        out
    };
    add(
        "framing",
        "v3-300-byte-packet.bin",
        encoded(FramingVersion::V3, PacketKind::Opus, &[0x7c; 300]),
    );
    add(
        "framing",
        "v2-300-byte-packet.bin",
        encoded(FramingVersion::V2, PacketKind::Opus, &[0x7c; 300]),
    );
    add(
        "framing",
        "v3-json-listen.bin",
        encoded(
            FramingVersion::V3,
            PacketKind::Json,
            br#"{"type":"listen","state":"start","mode":"manual"}"#,
        ),
    );
    add(
        "framing",
        "v2-json-ping.bin",
        encoded(FramingVersion::V2, PacketKind::Json, br#"{"type":"ping"}"#),
    );

    // §3 and §9 messages as devices send them.
    for (name, text) in [
        (
            "hello",
            r#"{"type":"hello","version":3,"features":{"mcp":true,"aec":true},"transport":"websocket","audio_params":{"format":"opus","sample_rate":16000,"channels":1,"frame_duration":60}}"#,
        ),
        ("hello-bad-version", r#"{"type":"hello","version":7}"#),
        (
            "mode-start-meeting",
            r#"{"type":"mode","state":"start","mode":"meeting"}"#,
        ),
        (
            "listen-start-manual",
            r#"{"type":"listen","state":"start","mode":"manual"}"#,
        ),
        ("listen-stop", r#"{"type":"listen","state":"stop"}"#),
        (
            "listen-detect",
            r#"{"type":"listen","state":"detect","text":"你好小智"}"#,
        ),
        (
            "meeting-snippet",
            r#"{"type":"meeting","phase":"snippet","items":[{"tag":"决策","text":"放弃短信验证码方案"}]}"#,
        ),
        (
            "meeting-finalize",
            r#"{"type":"meeting","phase":"finalize"}"#,
        ),
        (
            "workflow-update",
            r#"{"type":"workflow","event":"update","groupKey":"94:a9:90","tasks":[{"id":"T-1","title":"扫码登录联调","priority":1,"status":"open","owner":"badge-07","groupKey":"94:a9:90"},{"id":"T-2","priority":9}]}"#,
        ),
        (
            "workflow-assign",
            r#"{"type":"workflow","event":"assign","id":"T-2"}"#,
        ),
        (
            "coding-log",
            r#"{"type":"coding","event":"log","level":"error","text":"cargo test: 2 failed"}"#,
        ),
        (
            "mcp-tools-list",
            r#"{"type":"mcp","payload":{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"self.audio_speaker.set_volume","description":"Set the volume","inputSchema":{"type":"object","properties":{"volume":{"type":"integer"}}}}]}}}"#,
        ),
        ("abort", r#"{"type":"abort","reason":"wake_word_detected"}"#),
        ("ping", r#"{"type":"ping"}"#),
        ("iot", r#"{"type":"iot","descriptors":[]}"#),
        (
            "server-update-config",
            r#"{"type":"server","action":"update_config","content":{"secret":"s3cr3t","config":{"meeting":{"transcript_push_interval_ms":8000}}}}"#,
        ),
        ("config-update", r#"{"type":"config_update","config":{}}"#),
        ("echo-integer", "1755480000000"),
        ("unknown-type", r#"{"type":"teleport"}"#),
    ] {
        add(
            "json_message",
            &format!("{name}.json"),
            text.as_bytes().to_vec(),
        );
    }

    // Requests on the device port: the §9.1 upgrade and the §5.2 API.
    let get = |target: &str, headers: &str| {
        format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n{headers}\r\n").into_bytes()
    };
    let post = |target: &str, body: &str| {
        format!(
            "POST {target} HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nContent-Type: application/json\r\nContent-Length: {}\r\nX-API-Token: {API_TOKEN}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    };
    add(
        "http_request",
        "upgrade.http",
        get(
            "/supie/v1/?device-id=94:A9:90:07:9D:88&client-id=7d1c2e4f",
            &format!(
                "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nProtocol-Version: 3\r\nAuthorization: Bearer {DEVICE_TOKEN}\r\n"
            ),
        ),
    );
    add(
        "http_request",
        "meetings-recent.http",
        get(
            "/meetings/recent?limit=10&deviceId=94%3Aa9&fromTs=2025-08-18T00:00:00Z&toTs=1755480060000",
            &format!("X-API-Token: {API_TOKEN}\r\n"),
        ),
    );
    add(
        "http_request",
        "meeting-detail.http",
        get(
            &format!("/supie/meetings/{SESSION_ID}?preview=5&token={API_TOKEN}"),
            "",
        ),
    );
    add(
        "http_request",
        "meeting-transcript.http",
        get(
            &format!("/meetings/{SESSION_ID}/transcript?offset=90&limit=20"),
            &format!("Authorization: Bearer {API_TOKEN}\r\n"),
        ),
    );
    add(
        "http_request",
        "workflow-list.http",
        get(
            "/workflow?groupKey=94:a9:90",
            &format!("X-API-Token: {API_TOKEN}\r\n"),
        ),
    );
    add(
        "http_request",
        "workflow-import.http",
        post(
            "/workflow/import-from-meeting",
            &format!(r#"{{"groupKey":"94:a9:90","sessionId":"{SESSION_ID}"}}"#),
        ),
    );
    add(
        "http_request",
        "ota.http",
        post(
            "/xiaozhi/ota/",
            r#"{"application":{"version":"1.6.0"},"mac_address":"94:a9:90:07:9d:88"}"#,
        ),
    );
    add("http_request", "healthz.http", get("/healthz", ""));
    add(
        "http_request",
        "options.http",
        b"OPTIONS /meetings/recent HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
    );

    // Journals as the writer leaves them, and a crash's torn last line.
    let tmp = std::env::temp_dir().join(format!("huddle-fuzz-seeds-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    let store = MeetingStore::open(&tmp).unwrap();
    let writer = JournalWriter::start(store.active_dir(), 64).unwrap();
    let handle = writer.handle();
    let segment = |i: u64, text: &str, tag: Option<&str>| {
        JournalRecord::Segment(Segment {
            ts: 1_755_480_012_000 + i * 1_000,
            text: text.to_string(),
            speaker_id: Some(DEVICE_ID.to_string()),
            tag: tag.map(str::to_string),
        })
    };
    handle
        .open(SESSION_ID, DEVICE_ID, 1_755_479_990_000)
        .unwrap();
    handle
        .append(SESSION_ID, segment(0, "登录页改成扫码", None))
        .unwrap();
    handle
        .append(SESSION_ID, segment(1, "放弃短信验证码方案", Some("决策")))
        .unwrap();
    handle
        .append(
            SESSION_ID,
            JournalRecord::Checkpoint {
                ts: 1_755_480_014_000,
                segments: 2,
            },
        )
        .unwrap();
    handle.flush(Duration::from_secs(10)).unwrap();
    let journal_path = store.active_dir().join(format!("{SESSION_ID}.jsonl"));
    let open = fs::read(&journal_path).unwrap();
    handle
        .append(
            SESSION_ID,
            JournalRecord::Finalize {
                ts: 1_755_480_020_000,
            },
        )
        .unwrap();
    handle.flush(Duration::from_secs(10)).unwrap();
    let finalized = fs::read(&journal_path).unwrap();
    writer.shutdown();
    let mut torn = open.clone();
    torn.extend_from_slice(br#"{"kind":"segment","ts":1755480015000,"te"#);
    add("journal", "open.jsonl", open);
    add("journal", "finalized.jsonl", finalized);
    add("journal", "torn-last-line.jsonl", torn);

    // Finalized meetings as the store writes them: the array layout, and the
    // sharded one with its two shards and the index (FILE_SEPARATOR between).
    let read = |path: PathBuf| fs::read(path).unwrap();
    store.save(&fuzzing::sample_meeting(SESSION_ID, 3)).unwrap();
    add(
        "meeting_file",
        "array-layout.json",
        read(store.root().join(format!("{SESSION_ID}.json"))),
    );
    store
        .save(&fuzzing::sample_meeting(SESSION_ID, 130))
        .unwrap();
    let mut sharded = read(store.root().join(format!("{SESSION_ID}.json")));
    for k in 0..2 {
        sharded.push(FILE_SEPARATOR);
        sharded.extend(read(
            store
                .root()
                .join("segments")
                .join(format!("{SESSION_ID}_shard_{k}.json")),
        ));
    }
    sharded.push(FILE_SEPARATOR);
    sharded.extend(read(store.root().join("index.json")));
    add("meeting_file", "sharded-with-index.bin", sharded);
    let _ = fs::remove_dir_all(&tmp);

    // Configs: the defaults as `check-config` shows them, a fuller file, and
    // an admin update_config partial (JSON).
    add(
        "config",
        "defaults.toml",
        Config::default().to_toml_string().into_bytes(),
    );
    add(
        "config",
        "full.toml",
        br#"[server]
http_port = 8080
admin_secret = "s3cr3t"
meeting_api_token = "t0k"
[server.auth]
enabled = true
allowed_devices = ["94:a9:90:07:9d:88"]
[[server.auth.tokens]]
token = "abc"
name = "bench"
[idle]
idle_timeout_s = 600
mode_multiplier = 3
[meeting]
industry = "tech"
[meeting.term_map."industry:tech"]
"k8s" = "Kubernetes"
[meeting.webhook]
url = "http://127.0.0.1:9/hook"
headers = { Authorization = "Bearer x" }
[llm_by_mode]
chat = "local"
meeting = { alias = "local", overrides = { temperature = 0.2 } }
[vad.earshot]
threshold = 0.6
[asr.whisper]
type = "whisper"
[asr.cloud]
type = "funasr"
hotwords = { "huddle" = 20 }
[llm.local]
type = "openai"
base_url = "http://127.0.0.1:8080/v1"
model = "qwen"
[tts.say]
type = "espeak"
rate = 170
"#
        .to_vec(),
    );
    add(
        "config",
        "update-config-partial.json",
        br#"{"meeting":{"transcript_push_interval_ms":8000},"idle":{"idle_timeout_s":300}}"#
            .to_vec(),
    );
    seeds
}
