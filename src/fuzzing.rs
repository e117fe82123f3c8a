//! The parser entry points behind `cargo fuzz` (`fuzz/fuzz_targets/`) and the
//! regression test that replays the committed corpus (`tests/fuzz_regressions.rs`).
//!
//! One function per fuzz target, each taking the fuzzer's raw bytes. None of
//! them may panic on any input: a panic is a bug either in the parser it drives
//! or in one of the invariants asserted here (round trips that must hold for
//! every input the parser accepts). Both the fuzz targets and the test call
//! these functions, so the two cannot drift apart.
//!
//! The store targets work on real files in a fresh directory under
//! `std::env::temp_dir()` per input (removed afterwards), so every run is
//! independent of the previous ones and a crash reproduces from its input
//! alone. `tools/fuzz.sh` points `TMPDIR` at `/dev/shm` to keep that cheap.

use std::fs;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::config::{AuthToken, Config, ConfigStore};
use crate::http::request::{HeadParse, parse_head, percent_decode};
use crate::http::response::Response;
use crate::http::{ApiContext, ratelimit::RateLimiter, route};
use crate::modes::meeting::summary::{SummaryInput, summarize_with};
use crate::net::identity::DeviceIdentity;
use crate::net::registry::Registry;
use crate::protocol::framing::{FrameError, MAX_BINARY_FRAME, decode, encode_into};
use crate::protocol::inbound::Inbound;
use crate::protocol::{FramingVersion, PacketKind, parse_text};
use crate::session::{Outbox, Session};
use crate::store::journal::{JournalWriter, read_journal, resume_candidate, scan_journals};
use crate::store::meetings::{MeetingStore, rfc3339_utc_seconds};
use crate::store::model::{
    JournalRecord, MeetingMetrics, MeetingRecord, Segment, Summary, valid_session_id,
};
use crate::workflow::store::TaskStore;
use crate::workflow::task::Task;

/// One fuzz target's entry point.
pub type Target = fn(&[u8]);

/// Every target by name, in the order `tools/fuzz.sh` runs them.
pub const TARGETS: [(&str, Target); 6] = [
    ("framing", framing),
    ("json_message", json_message),
    ("http_request", http_request),
    ("journal", journal),
    ("meeting_file", meeting_file),
    ("config", config),
];

/// The session id the store targets write their files under.
pub const SESSION_ID: &str = "3f2b9c1e-7a4d-4e8b-9c21-0d5e6f7a8b9c";
/// The device of the seeded meetings and of resumed journals.
pub const DEVICE_ID: &str = "94:a9:90:07:9d:88";
/// Separates the files of a `meeting_file` input (never valid in UTF-8 JSON).
pub const FILE_SEPARATOR: u8 = 0xff;
/// The API token of the secured config the HTTP target also routes with.
pub const API_TOKEN: &str = "fuzz-api-token";
/// The device token of that config.
pub const DEVICE_TOKEN: &str = "fuzz-device-token";

/// Start of the year 10000: RFC 3339 times from here on need five year digits.
const YEAR_10000_MS: u64 = 253_402_300_800_000;

// ---- framing ----------------------------------------------------------------

/// Binary frame decoding (PROTOCOL.md §2): the input is one WebSocket binary
/// frame, decoded as v1, v2 and v3. An accepted frame re-encodes to a frame
/// that decodes to the same packet; any payload the encoder is given decodes
/// back unless the frame is over the size limit; JSON-typed payloads go on to
/// the text parser as the session does.
pub fn framing(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = FramingVersion::from_header(Some(text));
    }
    for version in [FramingVersion::V1, FramingVersion::V2, FramingVersion::V3] {
        match decode(version, data) {
            Ok(packet) => {
                assert!(data.ends_with(packet.payload), "payload not from the frame");
                let mut out = Vec::new();
                encode_into(version, packet.kind, packet.payload, &mut out);
                assert_eq!(out.len(), data.len(), "{version:?} re-encoded length");
                let again = decode(version, &out).expect("a re-encoded frame decodes");
                assert_eq!(again.kind, packet.kind);
                assert_eq!(again.payload, packet.payload);
                // Downlink frames carry timestamp 0 (§2.3).
                assert_eq!(again.timestamp_ms, 0);
                match version {
                    FramingVersion::V1 => assert_eq!(out, data),
                    FramingVersion::V2 => {
                        assert_eq!(out[2..4], data[2..4]);
                        assert_eq!(out[12..], data[12..]);
                    }
                    FramingVersion::V3 => {
                        assert_eq!(out[0], data[0]);
                        assert_eq!(out[2..], data[2..]);
                    }
                }
                if packet.kind == PacketKind::Json
                    && let Ok(text) = std::str::from_utf8(packet.payload)
                {
                    json_text(text);
                }
            }
            Err(error) => {
                assert!(!error.describe().is_empty());
            }
        }
        for kind in [PacketKind::Opus, PacketKind::Json] {
            if version == FramingVersion::V1 && kind == PacketKind::Json {
                continue; // v1 has no type field
            }
            let mut out = Vec::new();
            encode_into(version, kind, data, &mut out);
            match decode(version, &out) {
                Ok(packet) => {
                    assert_eq!(packet.kind, kind);
                    assert_eq!(packet.payload, data);
                }
                Err(FrameError::Empty) => assert!(out.is_empty()),
                Err(FrameError::TooLarge { len }) => assert!(len > MAX_BINARY_FRAME),
                Err(other) => panic!("{version:?} refused its own frame: {other:?}"),
            }
        }
    }
}

// ---- JSON messages ------------------------------------------------------------

/// Device text frames (PROTOCOL.md §3): [`parse_text`], the reply a rejection
/// turns into, and the handlers that need no server around them (hello,
/// listen, MCP responses, workflow task validation).
pub fn json_message(data: &[u8]) {
    // WebSocket text frames are UTF-8 by the time they reach the parser.
    if let Ok(text) = std::str::from_utf8(data) {
        json_text(text);
    }
}

fn json_text(text: &str) {
    let mut session = Session::new(
        DeviceIdentity {
            device_id: DEVICE_ID.to_string(),
            client_id: DEVICE_ID.to_string(),
            generated: false,
        },
        FramingVersion::V1,
        Arc::new(Config::default()),
        1_000,
    );
    let mut out = Outbox::default();
    match parse_text(text) {
        Ok(Inbound::Echo(raw)) => assert_eq!(raw, text),
        Ok(Inbound::Hello(hello)) => {
            if let Err(rejection) = crate::session::hello::handle(&mut session, hello, &mut out) {
                check_rejection(&rejection.to_json(), rejection.code.as_str());
            }
        }
        Ok(Inbound::Listen(listen)) => {
            let _ = crate::session::listen::handle(&mut session, listen, 2_000, &mut out);
        }
        Ok(Inbound::Mcp(payload)) => {
            session.mcp.on_payload(&payload, DEVICE_ID);
            let _ = session.mcp.llm_tools();
        }
        Ok(Inbound::NotYetServed { type_name, body }) if type_name == "workflow" => {
            if let Some(tasks) = body.get("tasks").and_then(Value::as_array) {
                for (i, value) in tasks.iter().enumerate() {
                    if let Ok(task) = Task::from_value(i, value.clone()) {
                        assert_eq!(&task.to_value(), value, "a task is stored as sent");
                        let _ = (task.id(), task.title(), task.priority(), task.owner());
                    }
                }
            }
        }
        Ok(_) => {}
        Err(rejection) => check_rejection(&rejection.to_json(), rejection.code.as_str()),
    }
    for frame in &out.frames {
        if let crate::session::Outgoing::Text(reply) = frame {
            serde_json::from_str::<Value>(reply).expect("replies are JSON");
        }
    }
}

fn check_rejection(reply: &str, code: &str) {
    let reply: Value = serde_json::from_str(reply).expect("an error reply is JSON");
    assert_eq!(reply["status"], "error");
    assert_eq!(reply["code"], code);
    assert!(reply["type"].is_string());
}

// ---- HTTP -----------------------------------------------------------------------

/// The bytes of one HTTP request as read off the device port: the head parser,
/// its query parsing, identity and device auth of the upgrade path, and the
/// router (once with the default config, once with API and device tokens set)
/// against a meeting archive seeded once per process and a fresh task store.
pub fn http_request(data: &[u8]) {
    let head = match parse_head(data) {
        HeadParse::Complete(head) => head,
        HeadParse::Partial => return,
        HeadParse::Invalid(message) => {
            assert!(!message.is_empty());
            return;
        }
    };
    assert!(head.head_len <= data.len());
    let rest = &data[head.head_len..];
    let body = match head.content_length() {
        Ok(n) => &rest[..n.min(rest.len())],
        Err(_) => &[][..],
    };
    let _ = head.is_websocket_upgrade();
    for (name, value) in head.query_pairs() {
        for decoded in [&name, &value] {
            assert_eq!(&percent_decode(&percent_encode_all(decoded)), decoded);
        }
        if let Some(ms) = crate::http::meetings::parse_rfc3339_ms(&value)
            && ms < YEAR_10000_MS
        {
            let shown = rfc3339_utc_seconds(ms);
            assert_eq!(
                crate::http::meetings::parse_rfc3339_ms(&shown),
                Some(ms - ms % 1000),
                "{value:?} -> {ms} -> {shown}"
            );
        }
    }
    let identity = crate::net::identity::resolve(&head);
    assert!(!identity.device_id.is_empty());

    let fixture = http_fixture();
    let tasks_dir = TempDir::new("http");
    let tasks = TaskStore::open(tasks_dir.path()).ok();
    let limiter = RateLimiter::new();
    let registry = Registry::new();
    for config in [&fixture.open, &fixture.secured] {
        let _ = crate::net::auth::authorize(config, &head, &identity.device_id);
        let ctx = ApiContext {
            config,
            device_url: "ws://127.0.0.1:8000/xiaozhi/v1/",
            uptime_ms: 1_000,
            connections: 1,
            log_records_dropped: 0,
            timer_lag_ms: 0,
            now_unix_ms: 1_755_480_000_000,
            store: fixture.store.as_ref(),
            tasks: tasks.as_ref(),
            registry: &registry,
            client_ip: IpAddr::from([127, 0, 0, 1]),
            limiter: &limiter,
        };
        check_response(&route(&head, body, &ctx));
    }
}

/// `%XX` for every byte: what any client may send for any value.
fn percent_encode_all(s: &str) -> String {
    s.bytes().map(|b| format!("%{b:02X}")).collect()
}

fn check_response(response: &Response) {
    assert!((100..600).contains(&response.status));
    let bytes = response.to_bytes();
    assert!(bytes.starts_with(b"HTTP/1.1 "));
    if response.content_type.starts_with("application/json") {
        serde_json::from_slice::<Value>(&response.body).expect("a JSON response is JSON");
    }
}

struct HttpFixture {
    dir: TempDir,
    store: Option<MeetingStore>,
    open: Config,
    secured: Config,
}

/// Read-only for the routes (the meeting API only reads; imports write the
/// per-input task store), so one archive serves every input.
static HTTP_FIXTURE: OnceLock<HttpFixture> = OnceLock::new();

fn http_fixture() -> &'static HttpFixture {
    HTTP_FIXTURE.get_or_init(|| {
        let dir = TempDir::new("http-store");
        let store = MeetingStore::open(dir.path()).ok();
        if let Some(store) = &store {
            for record in [
                sample_meeting(SESSION_ID, 130),
                sample_meeting("short-meeting", 3),
            ] {
                let _ = store.save(&record);
            }
        }
        let mut open = Config::default();
        open.meeting.api_rate_limit = 0;
        let mut secured = open.clone();
        secured.server.meeting_api_token = Some(API_TOKEN.to_string());
        secured.server.auth.enabled = true;
        secured.server.auth.allowed_devices = vec![DEVICE_ID.to_uppercase()];
        secured.server.auth.tokens = vec![AuthToken {
            token: DEVICE_TOKEN.to_string(),
            name: "fuzz".to_string(),
        }];
        HttpFixture {
            dir,
            store,
            open,
            secured,
        }
    })
}

/// Deletes the archive [`http_request`] seeded (it lives for the process, so
/// nothing else removes it); call it once no more `http_request` calls follow.
pub fn remove_http_fixture() {
    if let Some(fixture) = HTTP_FIXTURE.get() {
        let _ = fs::remove_dir_all(fixture.dir.path());
    }
}

/// A finalized meeting like the store tests write: `n` segments (sharded
/// above 100), with actions and next steps for the workflow import.
pub fn sample_meeting(session_id: &str, n: usize) -> MeetingRecord {
    let ended_at = 1_755_480_060_000;
    MeetingRecord {
        session_id: session_id.to_string(),
        device_id: DEVICE_ID.to_string(),
        started_at: ended_at - 60_000,
        ended_at,
        duration_ms: 60_000,
        summary: Summary {
            title: "登录改版讨论".to_string(),
            duration: "00:01:00".to_string(),
            bullets: vec!["登录页改为扫码登录".to_string()],
            decisions: vec!["放弃短信验证码方案".to_string()],
            actions: vec!["扫码登录联调".to_string(), String::new()],
            risks: vec![],
            next_steps: vec!["更新接口文档".to_string()],
        },
        segments: (0..n)
            .map(|i| Segment {
                ts: ended_at - 60_000 + i as u64,
                text: format!("segment {i}"),
                speaker_id: (i % 2 == 0).then(|| DEVICE_ID.to_string()),
                tag: (i % 3 == 0).then(|| "决策".to_string()),
            })
            .collect(),
        bullets_length: 1,
        source_segments: n as u64,
        metrics: MeetingMetrics {
            segments_count: n as u64,
            checkpoint_count: 1,
            llm_elapsed_ms: 2_870,
            empty_bullets: false,
            bullets_length: 1,
            industry: Some("tech".to_string()),
            scenario: None,
        },
        recovered: false,
    }
}

// ---- meeting journal ------------------------------------------------------------

/// A meeting journal left in `meetings/active/` (PROTOCOL.md §4.3), as crash
/// recovery finds it: [`read_journal`] and [`scan_journals`] must agree, the
/// resume rule must find an unfinalized one, resuming it (the writer appending
/// to the existing file) must keep every record recovery saw and add the new
/// one, and finalizing it the way recovery does must archive a meeting that
/// reads back unchanged.
pub fn journal(data: &[u8]) {
    let dir = TempDir::new("journal");
    let store = MeetingStore::open(dir.path()).expect("open the store");
    let path = store.active_dir().join(format!("{SESSION_ID}.jsonl"));
    fs::write(&path, data).expect("write the journal");

    let first = read_journal(&path);
    let scanned = scan_journals(store.active_dir());
    match &first {
        Ok(journal) => {
            assert_eq!(scanned, vec![journal.clone()]);
            assert_eq!(journal.session_id, SESSION_ID);
            let _ = journal.window_end_ms(u64::MAX);
            let _ = journal.finalize_now(u64::MAX, u64::MAX);
            let _ = journal.finalize_now(0, 0);
            let resumed = resume_candidate(&scanned, &journal.device_id, journal.last_record_ts, 0);
            assert_eq!(resumed.is_some(), !journal.finalized);
        }
        Err(e) => {
            assert!(scanned.is_empty());
            assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        }
    }

    // A device resumes the meeting: the writer appends to the file as it is.
    let added = Segment {
        ts: 1_755_480_099_000,
        text: "resumed".to_string(),
        speaker_id: Some(DEVICE_ID.to_string()),
        tag: None,
    };
    {
        let writer = JournalWriter::start(store.active_dir(), 16).expect("journal writer");
        let handle = writer.handle();
        handle
            .open(SESSION_ID, DEVICE_ID, 1_755_480_000_000)
            .expect("open");
        handle
            .append(SESSION_ID, JournalRecord::Segment(added.clone()))
            .expect("append");
        handle.flush(Duration::from_secs(30)).expect("flush");
        assert_eq!(handle.write_errors(), 0);
        writer.shutdown();
    }
    let second = read_journal(&path);
    match (&first, &second) {
        (Ok(before), Ok(after)) => {
            let mut expected = before.segments.clone();
            expected.push(added.clone());
            assert_eq!(after.segments, expected, "resume lost or changed records");
            assert_eq!(after.device_id, before.device_id);
            assert_eq!(after.started_at, before.started_at);
            assert_eq!(after.checkpoint_count, before.checkpoint_count);
            assert_eq!(after.finalized, before.finalized);
            assert_eq!(after.last_record_ts, added.ts);
        }
        (Err(_), Ok(after)) => {
            // Only an empty file gets the start line from the writer.
            assert!(
                data.is_empty(),
                "a journal without a start line came to life"
            );
            assert_eq!(after.segments, vec![added.clone()]);
        }
        (Err(_), Err(_)) => {}
        (Ok(_), Err(e)) => panic!("resuming broke a readable journal: {e}"),
    }

    // Crash recovery finalizes it: fallback summary, archive, read back.
    if let Ok(journal) = second {
        let config = Config::default();
        let input = SummaryInput {
            segments: journal.segments.clone(),
            started_at: journal.started_at,
            ended_at: journal.last_record_ts,
            min_duration_ms: config.meeting.min_duration_ms,
            checkpoint: false,
        };
        let outcome = summarize_with(None, &config, &input, Instant::now(), &mut |_| {});
        let bullets_length = outcome.summary.bullets.len() as u64;
        let record = MeetingRecord {
            session_id: journal.session_id.clone(),
            device_id: journal.device_id.clone(),
            started_at: journal.started_at,
            ended_at: journal.last_record_ts,
            duration_ms: input.duration_ms(),
            summary: outcome.summary,
            segments: journal.segments.clone(),
            bullets_length,
            source_segments: journal.segments.len() as u64,
            metrics: MeetingMetrics {
                segments_count: journal.segments.len() as u64,
                checkpoint_count: journal.checkpoint_count,
                llm_elapsed_ms: outcome.llm_elapsed_ms,
                empty_bullets: bullets_length == 0,
                bullets_length,
                industry: None,
                scenario: None,
            },
            recovered: true,
        };
        store
            .save(&record)
            .expect("a recovered meeting is archived");
        let back = store
            .load_record(SESSION_ID)
            .expect("read the archived meeting")
            .expect("the archived meeting exists");
        assert_eq!(back, record, "the archive changed the recovered meeting");
    }
}

// ---- finalized meeting files ------------------------------------------------------

/// A finalized meeting on disk (PROTOCOL.md §4.2). The input is up to four
/// files separated by [`FILE_SEPARATOR`]: the main file
/// `meetings/<SESSION_ID>.json`, its shards 0 and 1, and `meetings/index.json`.
/// The store's reads (load, transcript pages, whole record, recent, index
/// rebuild) and the HTTP routes over them must not panic; transcript pages
/// must stay within what the main file promises; a meeting that loads must
/// save and load back unchanged.
pub fn meeting_file(data: &[u8]) {
    let mut parts = data.split(|&b| b == FILE_SEPARATOR);
    let main = parts.next().unwrap_or_default();
    let shards = [parts.next(), parts.next()];
    let index = parts.next();

    let dir = TempDir::new("meeting");
    let store = MeetingStore::open(dir.path()).expect("open the store");
    let root = store.root().to_path_buf();
    fs::write(root.join(format!("{SESSION_ID}.json")), main).expect("write main");
    for (k, shard) in shards.iter().enumerate() {
        if let Some(shard) = shard {
            let name = format!("{SESSION_ID}_shard_{k}.json");
            fs::write(root.join("segments").join(name), shard).expect("write shard");
        }
    }
    if let Some(index) = index {
        fs::write(root.join("index.json"), index).expect("write index");
    }

    let loaded = store.load(SESSION_ID);
    if let Ok(Some(meeting)) = &loaded {
        assert_eq!(meeting.has_shards, meeting.shard_count > 0);
        assert!(meeting.preview(20).len() <= 20);
        for (offset, limit) in [
            (0, 500),
            (0, 1),
            (0, 0),
            (49, 3),
            (99, 2),
            (100, 100),
            (150, 500),
            (u64::MAX, 500),
        ] {
            if let Ok(Some((items, total))) = store.transcript(SESSION_ID, offset, limit) {
                assert_eq!(total, meeting.segments_count);
                assert!(items.len() as u64 <= limit);
                if meeting.has_shards {
                    assert!(items.len() as u64 <= total.saturating_sub(offset));
                } else {
                    let expected: Vec<Segment> = meeting
                        .main_segments
                        .iter()
                        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
                        .take(usize::try_from(limit).unwrap_or(usize::MAX))
                        .cloned()
                        .collect();
                    assert_eq!(items, expected);
                }
            }
        }
    }
    let _ = store.load_record(SESSION_ID);
    let _ = store.recent(100, None, None, None);
    let _ = store.recent(1, Some(" \"94:A9\" "), Some(0), Some(u64::MAX));
    let _ = store.stored_session_ids();

    // The same files through the HTTP API.
    let mut config = Config::default();
    config.meeting.api_rate_limit = 0;
    let limiter = RateLimiter::new();
    let registry = Registry::new();
    let tasks = TaskStore::open(dir.path()).ok();
    let ctx = ApiContext {
        config: &config,
        device_url: "ws://127.0.0.1:8000/xiaozhi/v1/",
        uptime_ms: 1_000,
        connections: 0,
        log_records_dropped: 0,
        timer_lag_ms: 0,
        now_unix_ms: 1_755_480_000_000,
        store: Some(&store),
        tasks: tasks.as_ref(),
        registry: &registry,
        client_ip: IpAddr::from([127, 0, 0, 1]),
        limiter: &limiter,
    };
    for target in [
        format!("/meetings/{SESSION_ID}?preview=20"),
        format!("/meetings/{SESSION_ID}/transcript?offset=40&limit=500"),
        "/meetings/recent?limit=100".to_string(),
    ] {
        let raw = format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n");
        let HeadParse::Complete(head) = parse_head(raw.as_bytes()) else {
            unreachable!("a fixed request parses")
        };
        check_response(&route(&head, b"", &ctx));
    }
    let raw = "POST /workflow/import-from-meeting HTTP/1.1\r\nHost: x\r\n\r\n";
    let HeadParse::Complete(head) = parse_head(raw.as_bytes()) else {
        unreachable!("a fixed request parses")
    };
    let body = format!(r#"{{"groupKey":"94:a9:90","sessionId":"{SESSION_ID}"}}"#);
    check_response(&route(&head, body.as_bytes(), &ctx));

    // Without index.json the index is rebuilt from the main files: a meeting
    // that loads is listed with the count its main file gives.
    let _ = fs::remove_file(root.join("index.json"));
    // (Listed under the id the file holds, which a hand-edited file may not
    // share with its name.)
    if let Ok(rebuilt) = store.recent(100, None, None, None) {
        match &loaded {
            Ok(Some(meeting)) => {
                let entry = rebuilt
                    .iter()
                    .find(|e| e.session_id == meeting.session_id)
                    .expect("a loadable meeting is listed after a rebuild");
                assert_eq!(entry.segments_count, meeting.segments_count);
            }
            _ => assert!(rebuilt.is_empty(), "an unloadable meeting was listed"),
        }
    }

    // Save what was read and read it back.
    if let Ok(Some(record)) = store.load_record(SESSION_ID)
        && valid_session_id(&record.session_id)
        && record.session_id != "index"
    {
        store.save(&record).expect("a loaded meeting saves again");
        let back = store
            .load_record(&record.session_id)
            .expect("read back")
            .expect("the saved meeting exists");
        assert_eq!(back, record, "save and load changed the meeting");
    }
}

// ---- config -------------------------------------------------------------------------

/// `huddle.toml` (PROTOCOL.md §7): [`crate::config::parse_toml`] with
/// validation. An accepted config must survive `to_toml_string` (what
/// `huddle check-config` prints) unchanged, and what is derived from it at
/// connection time must not overflow. Input that is a JSON object also goes
/// through the admin `update_config` merge.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match crate::config::parse_toml(text) {
        Ok(config) => check_config(&config),
        Err(error) => {
            let _ = error.reply_message();
        }
    }
    if let Ok(partial @ Value::Object(_)) = serde_json::from_str::<Value>(text) {
        let store = ConfigStore::new(Config::default(), None);
        match store.apply_partial(&partial) {
            Ok(config) => check_config(&config),
            Err(error) => {
                let _ = error.reply_message();
            }
        }
    }
}

fn check_config(config: &Config) {
    let shown = config.to_toml_string();
    let again = crate::config::parse_toml(&shown)
        .unwrap_or_else(|e| panic!("the shown config does not load: {e:?}\n{shown}"));
    assert_eq!(
        &again, config,
        "the shown config loads differently:\n{shown}"
    );
    let _ = config.idle_deadline(true);
    let _ = config.idle_deadline(false);
    let _ = crate::session::idle::IdleSettings::from_config(config);
    for mode in [
        crate::protocol::inbound::ListenMode::Auto,
        crate::protocol::inbound::ListenMode::Realtime,
    ] {
        let _ = crate::audio::worker::StreamSettings::from_config(config, mode);
    }
}

// ---- temp dirs ------------------------------------------------------------------------

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("huddle-fuzz-{what}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create a temp dir");
        TempDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}
