//! The bad-input table (issue 9, item 5) against the real binary: every limit
//! and error of PROTOCOL.md §3.0 and §8 — oversized, malformed and wrongly
//! typed frames, the snippet guards (§3.3), workflow task validation (§3.4),
//! admin `update_config` (§3.7), the abuse close, binary framing errors (§2.4),
//! the HTTP API's token, id pattern, parameters, routes, methods and rate limit
//! (§5.1) and invalid SIGHUP reloads (§7) — each row asserting the named error
//! (`type`, `code`, and a `message` naming the field or the limit). Afterwards
//! nothing stored is lost or corrupted: the meeting that ran through it all
//! finalizes with every acknowledged snippet, a meeting archived before is
//! byte-for-byte unchanged, `tasks.json` holds exactly the tasks written
//! before, and the connections that took (at most 20) errors still answer.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Device, Received, Server, wait_until};
use huddle::store::meetings::MeetingStore;
use huddle::store::model::{MeetingMetrics, MeetingRecord, Segment, Summary};
use serde_json::{Value, json};

/// Generous: the box also runs a soak test and a fuzzer.
const WAIT: Duration = Duration::from_secs(20);
const SECRET: &str = "s3cr3t";
const TOKEN: &str = "t0ken";
/// The meeting device; its group `94:a9:90` owns the tasks written before the bad inputs.
const DEV_A: &str = "94:a9:90:07:9d:88";
/// The device that fills its meeting up to the 200-pending cap.
const DEV_C: &str = "cc:00:00:00:00:01";
/// A meeting archived before the server starts.
const SEEDED: &str = "seeded-meeting-1";
/// §3.0: more than this many text error replies within 10 s close the connection.
const TOLERATED_ERRORS: usize = 20;
/// §3.0 / §8: text frame cap.
const MAX_TEXT: usize = 64 * 1024;

const SERVER_EXTRA: &str = "admin_secret = \"s3cr3t\"\nmeeting_api_token = \"t0ken\"";
/// Pushes every 15 s (the maximum) so the 200-pending cap is reachable
/// between two pushes; a rate limit high enough for the table's requests.
const EXTRA: &str =
    "[meeting]\ntranscript_push_interval_ms = 15000\nmin_duration_ms = 0\napi_rate_limit = 100\n";

// ------------------------------------------------------------------ rows

/// What one row sends on a device connection.
enum Input {
    Text(String),
    /// A v3 binary frame of type 1 (JSON), handled exactly like a text frame (§2.4).
    JsonFrame(Vec<u8>),
}

/// What the row's reply must be.
enum Expect {
    /// `{"type":ty,"status":"error","code":code,"message":"…names…"}`.
    Error {
        ty: String,
        code: &'static str,
        names: String,
    },
    /// Exactly this message (echoes, pongs).
    Reply(Value),
}

struct Row {
    input: Input,
    expect: Expect,
}

fn error(ty: &str, code: &'static str, names: &str) -> Expect {
    Expect::Error {
        ty: ty.to_string(),
        code,
        names: names.to_string(),
    }
}

fn raw(text: impl Into<String>, expect: Expect) -> Row {
    Row {
        input: Input::Text(text.into()),
        expect,
    }
}

fn msg(value: Value, expect: Expect) -> Row {
    raw(value.to_string(), expect)
}

fn frame(payload: &[u8], expect: Expect) -> Row {
    Row {
        input: Input::JsonFrame(payload.to_vec()),
        expect,
    }
}

fn pong() -> Expect {
    Expect::Reply(json!({"type":"pong"}))
}

/// A ping padded to exactly `total` bytes.
fn padded_ping(total: usize) -> String {
    let (head, tail) = (r#"{"type":"ping","pad":""#, r#""}"#);
    format!(
        "{head}{}{tail}",
        "x".repeat(total - head.len() - tail.len())
    )
}

fn update_config(secret: Value, config: Value) -> Value {
    json!({"type":"server","action":"update_config","content":{"secret":secret,"config":config}})
}

fn workflow_update(tasks: Value) -> Value {
    json!({"type":"workflow","event":"update","tasks":tasks})
}

fn snippet_msg(items: Value) -> Value {
    json!({"type":"meeting","phase":"snippet","items":items})
}

/// Every text-message error of §3.0–§3.7 that a connection outside any mode
/// can provoke, plus the controls next to the limits (echo, the largest
/// accepted frame). None of these rows may change anything stored.
fn text_rows(port: u16) -> Vec<Row> {
    let schema = |ty: &str, names: &str| error(ty, "SCHEMA_INVALID", names);
    let unsupported = |ty: &str, names: &str| error(ty, "UNSUPPORTED", names);
    let not_json = |names: &str| error("error", "INVALID_JSON", names);
    let ok_secret = || json!(SECRET);
    vec![
        // §3.0: frames that are not a JSON object with a string type.
        raw("{not json", not_json("invalid JSON")),
        raw("", not_json("invalid JSON")),
        raw(r#"{"type":"ping""#, not_json("invalid JSON")),
        raw("[1,2]", not_json("JSON object")),
        raw("[]", not_json("JSON object")),
        raw(r#""ping""#, not_json("JSON object")),
        raw("1.5", not_json("JSON object")),
        raw("null", not_json("JSON object")),
        raw("true", not_json("JSON object")),
        raw("42", Expect::Reply(json!(42))),
        raw("-7", Expect::Reply(json!(-7))),
        msg(json!({"type":5}), schema("error", "type must be a string")),
        msg(
            json!({"type":null}),
            schema("error", "type must be a string"),
        ),
        msg(
            json!({"state":"start"}),
            schema("error", "missing field type"),
        ),
        msg(
            json!({"type":"teleport"}),
            unsupported("teleport", "teleport"),
        ),
        msg(json!({"type":"PING"}), unsupported("PING", "PING")),
        msg(
            json!({"type":"peer","to":["aa"],"category":"task","payload":{"text":"x"}}),
            unsupported("peer", "peer"),
        ),
        // §3.0 / §8: 64 KiB text cap; the largest frame still passes.
        raw(
            padded_ping(MAX_TEXT + 1),
            error("error", "TOO_LARGE", "65536"),
        ),
        raw(padded_ping(MAX_TEXT), pong()),
        // §2.4: type-1 binary frames go the text path.
        frame(b"{bad", not_json("invalid JSON")),
        frame(&[0xff, 0xfe, b'{'], not_json("UTF-8")),
        frame(
            br#"{"type":"mode","state":"start"}"#,
            schema("mode", "mode"),
        ),
        frame(br#"{"type":"ping"}"#, pong()),
        // §1.6 / §2.1 hello.
        msg(
            json!({"type":"hello","transport":5}),
            schema("hello", "transport"),
        ),
        msg(
            json!({"type":"hello","version":9,"transport":"websocket"}),
            unsupported("hello", "version 9"),
        ),
        msg(
            json!({"type":"hello","version":"3"}),
            unsupported("hello", "version"),
        ),
        msg(
            json!({"type":"hello","version":2.5}),
            unsupported("hello", "version"),
        ),
        // §3.1 listen, abort.
        msg(json!({"type":"listen"}), schema("listen", "state")),
        msg(
            json!({"type":"listen","state":7}),
            schema("listen", "state"),
        ),
        msg(
            json!({"type":"listen","state":"sing"}),
            schema("listen", "state"),
        ),
        msg(
            json!({"type":"listen","state":"start","mode":"loud"}),
            schema("listen", "mode"),
        ),
        msg(
            json!({"type":"listen","state":"start","mode":1}),
            schema("listen", "mode"),
        ),
        msg(
            json!({"type":"listen","state":"detect","text":5}),
            schema("listen", "text"),
        ),
        msg(
            json!({"type":"abort","reason":5}),
            schema("abort", "reason"),
        ),
        // §3.2 mode.
        msg(
            json!({"type":"mode","state":"start"}),
            schema("mode", "mode"),
        ),
        msg(
            json!({"type":"mode","mode":"meeting"}),
            schema("mode", "state"),
        ),
        msg(
            json!({"type":"mode","state":"pause","mode":"meeting"}),
            schema("mode", "state"),
        ),
        msg(
            json!({"type":"mode","state":["start"],"mode":"coding"}),
            schema("mode", "state"),
        ),
        msg(
            json!({"type":"mode","state":"start","mode":"party"}),
            schema("mode", "mode"),
        ),
        msg(
            json!({"type":"mode","state":"start","mode":7}),
            schema("mode", "mode"),
        ),
        // §3.3 meeting (this connection has no meeting).
        msg(json!({"type":"meeting"}), schema("meeting", "phase")),
        msg(
            json!({"type":"meeting","phase":5}),
            schema("meeting", "phase"),
        ),
        msg(
            json!({"type":"meeting","phase":"dance"}),
            unsupported("meeting", "phase dance"),
        ),
        msg(
            json!({"type":"meeting","phase":"snippet"}),
            schema("meeting", "items"),
        ),
        msg(snippet_msg(json!("x")), schema("meeting", "items")),
        msg(snippet_msg(json!([])), schema("meeting", "non-empty")),
        msg(
            snippet_msg(json!([{"tag":"t"}])),
            schema("meeting", "items[0]"),
        ),
        msg(snippet_msg(json!(["x"])), schema("meeting", "items[0]")),
        msg(
            snippet_msg(json!([{"tag":"t","text":"ok"},{"text":"no tag"}])),
            schema("meeting", "items[1]"),
        ),
        msg(
            snippet_msg(json!([{"tag":1,"text":"x"}])),
            schema("meeting", "tag"),
        ),
        msg(
            snippet_msg(json!([{"tag":"t","text":"x","speakerId":5}])),
            schema("meeting", "items[0].speakerId"),
        ),
        msg(
            snippet_msg(json!([{"tag":"t","text":"x"}])),
            unsupported("meeting", "no active meeting"),
        ),
        msg(
            json!({"type":"meeting","phase":"finalize"}),
            unsupported("meeting", "no active meeting"),
        ),
        // §3.4 workflow: several rows aim at the stored T-1/T-2 and must leave them alone.
        msg(json!({"type":"workflow"}), schema("workflow", "event")),
        msg(
            json!({"type":"workflow","event":5}),
            schema("workflow", "event"),
        ),
        msg(
            json!({"type":"workflow","event":"dance"}),
            unsupported("workflow", "event dance"),
        ),
        msg(
            json!({"type":"workflow","event":"update"}),
            schema("workflow", "tasks"),
        ),
        msg(workflow_update(json!("x")), schema("workflow", "tasks")),
        msg(
            workflow_update(json!([{"id":"T-1","priority":4}])),
            schema("workflow", "tasks[0].priority"),
        ),
        msg(
            workflow_update(json!([{"id":"W-1","priority":-1}])),
            schema("workflow", "tasks[0].priority"),
        ),
        msg(
            workflow_update(json!([{"id":"W-1","priority":1.5}])),
            schema("workflow", "tasks[0].priority"),
        ),
        msg(
            workflow_update(json!([{"id":"W-1","priority":"1"}])),
            schema("workflow", "tasks[0].priority"),
        ),
        msg(
            workflow_update(json!([{"id":"T-1","title":""}])),
            schema("workflow", "tasks[0].title"),
        ),
        msg(
            workflow_update(json!([{"id":"W-1","title":"   "}])),
            schema("workflow", "tasks[0].title"),
        ),
        msg(
            workflow_update(json!([{"id":"W-1","title":7}])),
            schema("workflow", "tasks[0].title"),
        ),
        msg(
            workflow_update(json!([{"id":7,"title":"x"}])),
            schema("workflow", "tasks[0].id"),
        ),
        msg(
            workflow_update(json!([{"id":["T-1"],"title":"x"}])),
            schema("workflow", "tasks[0].id"),
        ),
        msg(
            workflow_update(json!([{"title":"no id"}])),
            schema("workflow", "tasks[0].id"),
        ),
        msg(
            workflow_update(json!([{"id":""}])),
            schema("workflow", "tasks[0].id"),
        ),
        // Rejected as a whole: the valid first task is not written either.
        msg(
            workflow_update(
                json!([{"id":"T-1","title":"overwritten"},{"id":"T-2","priority":"x"}]),
            ),
            schema("workflow", "tasks[1].priority"),
        ),
        msg(
            workflow_update(json!([{"id":"W-2","title":"valid"},"x"])),
            schema("workflow", "tasks[1]"),
        ),
        msg(
            workflow_update(json!([{"id":"T-2","status":"closed"}])),
            schema("workflow", "tasks[0].status"),
        ),
        msg(
            workflow_update(json!([{"id":"T-2","owner":5}])),
            schema("workflow", "tasks[0].owner"),
        ),
        msg(
            workflow_update(json!([{"id":"T-2","groupKey":""}])),
            schema("workflow", "tasks[0].groupKey"),
        ),
        msg(
            json!({"type":"workflow","event":"complete"}),
            schema("workflow", "ids"),
        ),
        msg(
            json!({"type":"workflow","event":"complete","ids":["T-1",5]}),
            schema("workflow", "ids[1]"),
        ),
        msg(
            json!({"type":"workflow","event":"delete","ids":"T-1"}),
            schema("workflow", "ids"),
        ),
        msg(
            json!({"type":"workflow","event":"delete","ids":[null]}),
            schema("workflow", "ids[0]"),
        ),
        msg(
            json!({"type":"workflow","event":"assign"}),
            schema("workflow", "id"),
        ),
        msg(
            json!({"type":"workflow","event":"assign","id":5}),
            schema("workflow", "id"),
        ),
        // §3.5 coding.
        msg(json!({"type":"coding"}), schema("coding", "event")),
        msg(
            json!({"type":"coding","event":5}),
            schema("coding", "event"),
        ),
        msg(
            json!({"type":"coding","event":"dance"}),
            unsupported("coding", "event dance"),
        ),
        msg(
            json!({"type":"coding","event":"log","level":"fatal","text":"x"}),
            schema("coding", "level"),
        ),
        msg(
            json!({"type":"coding","event":"log","text":"x"}),
            schema("coding", "level"),
        ),
        msg(
            json!({"type":"coding","event":"log","level":"info"}),
            schema("coding", "text"),
        ),
        msg(
            json!({"type":"coding","event":"log","level":"info","text":["x"]}),
            schema("coding", "text"),
        ),
        msg(
            json!({"type":"coding","event":"step"}),
            schema("coding", "name"),
        ),
        msg(
            json!({"type":"coding","event":"phase","name":5}),
            schema("coding", "name"),
        ),
        // §3.7 admin: refusals and invalid values; none may apply (checked later).
        msg(json!({"type":"server"}), schema("server", "action")),
        msg(
            json!({"type":"server","action":5}),
            schema("server", "action"),
        ),
        msg(
            json!({"type":"server","action":"dance"}),
            unsupported("server", "unknown action dance"),
        ),
        msg(
            json!({"type":"server","action":"restart","content":{"secret":SECRET}}),
            unsupported("server", "service manager"),
        ),
        msg(
            json!({"type":"server","action":"update_config"}),
            error("server", "UNAUTHORIZED", "secret"),
        ),
        msg(
            update_config(json!("wrong"), json!({"meeting":{"api_rate_limit":1}})),
            error("server", "UNAUTHORIZED", "secret"),
        ),
        msg(
            update_config(json!(""), json!({"meeting":{"api_rate_limit":1}})),
            error("server", "UNAUTHORIZED", "secret"),
        ),
        msg(
            update_config(json!(12345), json!({"meeting":{"api_rate_limit":1}})),
            error("server", "UNAUTHORIZED", "secret"),
        ),
        msg(
            json!({"type":"server","action":"update_config","content":{"secret":SECRET}}),
            schema("server", "content.config"),
        ),
        msg(
            update_config(ok_secret(), json!("api_rate_limit=1")),
            schema("server", "content.config"),
        ),
        msg(
            update_config(
                ok_secret(),
                json!({"meeting":{"api_rate_limit":1,"transcript_push_interval_ms":20000}}),
            ),
            schema(
                "server",
                "meeting.transcript_push_interval_ms: 20000 outside 3000..=15000",
            ),
        ),
        msg(
            update_config(
                ok_secret(),
                json!({"meeting":{"api_rate_limit":1,"nope":1}}),
            ),
            schema("server", "meeting.nope"),
        ),
        msg(
            update_config(ok_secret(), json!({"bogus":{"x":1}})),
            schema("server", "bogus"),
        ),
        msg(
            update_config(ok_secret(), json!({"meeting":{"api_rate_limit":"fast"}})),
            schema("server", "meeting.api_rate_limit"),
        ),
        msg(
            update_config(ok_secret(), json!({"meeting":{"api_rate_limit":-1}})),
            schema("server", "meeting.api_rate_limit"),
        ),
        msg(
            update_config(ok_secret(), json!({"meeting":{"api_rate_limit":1001}})),
            schema("server", "meeting.api_rate_limit"),
        ),
        msg(
            update_config(
                ok_secret(),
                json!({"meeting":{"api_rate_limit":1},"idle":{"warning_s":99}}),
            ),
            schema("server", "idle.warning_s"),
        ),
        msg(
            update_config(
                ok_secret(),
                json!({"meeting":{"api_rate_limit":1},"server":{"port":port.wrapping_add(1)}}),
            ),
            schema("server", "server.port"),
        ),
        msg(
            update_config(
                ok_secret(),
                json!({"meeting":{"api_rate_limit":1},"server":{"meeting_api_token":7}}),
            ),
            schema("server", "server.meeting_api_token"),
        ),
    ]
}

// ------------------------------------------------------- device helpers

fn check(reply: &Value, expect: &Expect) -> Result<(), String> {
    match expect {
        Expect::Reply(want) if reply == want => Ok(()),
        Expect::Reply(want) => Err(format!("expected {want}, got {reply}")),
        Expect::Error { ty, code, names } => {
            let named = reply["message"]
                .as_str()
                .is_some_and(|m| m.contains(names.as_str()));
            if reply["type"] == ty.as_str()
                && reply["status"] == "error"
                && reply["code"] == *code
                && named
            {
                Ok(())
            } else {
                Err(format!(
                    "expected type {ty} code {code} naming {names:?}, got {reply}"
                ))
            }
        }
    }
}

fn label(input: &Input) -> String {
    let text = match input {
        Input::Text(t) => t.clone(),
        Input::JsonFrame(b) => format!("v3 JSON frame {:?}", String::from_utf8_lossy(b)),
    };
    if text.len() > 100 {
        let head: String = text.chars().take(60).collect();
        format!("{head}… ({} bytes)", text.len())
    } else {
        text
    }
}

fn v3_json_frame(payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![1u8, 0];
    frame.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// Walks rows on a device connection. A connection takes at most 20 error
/// replies (the most §3.0 tolerates within 10 s); then it must still answer
/// a ping, and a fresh connection takes over.
struct Prober<'s> {
    server: &'s Server,
    device: Device,
    errors: usize,
    connections: usize,
    failures: Vec<String>,
}

impl<'s> Prober<'s> {
    fn new(server: &'s Server) -> Self {
        Prober {
            server,
            device: Self::connect(server, 0),
            errors: 0,
            connections: 1,
            failures: Vec::new(),
        }
    }

    fn connect(server: &Server, n: usize) -> Device {
        let id = format!("b0:ad:00:00:00:{n:02x}");
        server.registered_device(
            "/xiaozhi/v1/",
            &[("Device-Id", id.as_str()), ("Protocol-Version", "3")],
        )
    }

    fn fresh(&mut self) {
        self.device = Self::connect(self.server, self.connections);
        self.connections += 1;
        self.errors = 0;
    }

    /// The connection took its errors and still works: ping → pong.
    fn still_answers(&mut self) {
        self.device.send_json(json!({"type":"ping"}));
        match self.device.try_recv(WAIT) {
            Ok(v) if v == json!({"type":"pong"}) => {}
            other => self.failures.push(format!(
                "connection {} after {} errors: ping got {other:?}",
                self.connections, self.errors
            )),
        }
    }

    fn run(&mut self, rows: &[Row]) {
        for row in rows {
            let is_error = matches!(row.expect, Expect::Error { .. });
            if is_error && self.errors == TOLERATED_ERRORS {
                self.still_answers();
                self.fresh();
            }
            match &row.input {
                Input::Text(text) => self.device.send_text(text),
                Input::JsonFrame(payload) => self.device.send_binary(v3_json_frame(payload)),
            }
            match self.device.try_recv(WAIT) {
                Ok(reply) => {
                    if let Err(why) = check(&reply, &row.expect) {
                        self.failures.push(format!("{}: {why}", label(&row.input)));
                    }
                }
                Err(why) => {
                    self.failures.push(format!("{}: {why}", label(&row.input)));
                    self.fresh();
                    continue;
                }
            }
            if is_error {
                self.errors += 1;
            }
        }
        self.still_answers();
    }
}

fn start_meeting(device: &mut Device) -> String {
    device.send_json(json!({"type":"mode","state":"start","mode":"meeting"}));
    let ack = device.recv_until(WAIT, |v| v["type"] == "mode");
    assert_eq!(ack["status"], "ok", "{ack}");
    ack["sessionId"]
        .as_str()
        .expect("meeting ack sessionId")
        .to_string()
}

/// The reply to a `meeting` message (transcript pushes and ASR lines skipped).
fn meeting_reply(device: &mut Device) -> Value {
    device.recv_until(WAIT, |v| {
        v["type"] == "meeting" && v["phase"] != "transcript"
    })
}

fn snippet(device: &mut Device, items: Value) -> Value {
    device.send_json(snippet_msg(items));
    meeting_reply(device)
}

fn snippet_ok(device: &mut Device, items: Value) {
    let reply = snippet(device, items);
    assert_eq!(
        reply,
        json!({"type":"meeting","status":"ok","phase":"snippet"})
    );
}

fn items(texts: &[String]) -> Value {
    Value::Array(texts.iter().map(|t| json!({"tag":"t","text":t})).collect())
}

fn ping(device: &mut Device) {
    device.send_json(json!({"type":"ping"}));
    assert_eq!(device.try_recv(WAIT), Ok(json!({"type":"pong"})));
}

fn finalize(device: &mut Device) {
    device.send_json(json!({"type":"meeting","phase":"finalize"}));
    device.recv_until(Duration::from_secs(60), |v| {
        v["phase"] == "transcript" && v["final"] == true
    });
}

fn read_json(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON ({e})", path.display()))
}

fn texts(segments: &Value) -> Vec<String> {
    segments
        .as_array()
        .expect("segments array")
        .iter()
        .map(|s| s["text"].as_str().expect("segment text").to_string())
        .collect()
}

/// Waits for a finalized meeting's main file and index entry.
fn archived(data: &Path, sid: &str) -> Value {
    let main = data.join(format!("meetings/{sid}.json"));
    let index = data.join("meetings/index.json");
    assert!(
        wait_until(Duration::from_secs(30), || {
            main.exists() && std::fs::read_to_string(&index).is_ok_and(|t| t.contains(sid))
        }),
        "meeting {sid} was not archived"
    );
    let journal = data.join(format!("meetings/active/{sid}.jsonl"));
    assert!(
        wait_until(Duration::from_secs(10), || !journal.exists()),
        "journal of {sid} still present"
    );
    read_json(&main)
}

// ----------------------------------------------------------------- seed

fn seeded_record() -> MeetingRecord {
    let started_at = 1_755_479_990_000;
    MeetingRecord {
        session_id: SEEDED.into(),
        device_id: DEV_A.into(),
        started_at,
        ended_at: started_at + 600_000,
        duration_ms: 600_000,
        summary: Summary {
            title: "seeded".into(),
            duration: "00:10:00".into(),
            bullets: vec!["b1".into()],
            decisions: vec![],
            actions: vec!["seeded action".into()],
            risks: vec![],
            next_steps: vec!["seeded next step".into()],
        },
        segments: (0..3)
            .map(|i| Segment {
                ts: started_at + i,
                text: format!("seeded line {i}"),
                speaker_id: None,
                tag: None,
            })
            .collect(),
        bullets_length: 1,
        source_segments: 3,
        metrics: MeetingMetrics {
            segments_count: 3,
            ..Default::default()
        },
        recovered: false,
    }
}

/// Archives the seeded meeting and plants copies of its file where only a
/// path traversal or an id outside `[A-Za-z0-9_-]{1,64}` could reach them.
/// Returns the seeded main file's bytes.
fn seed(data: &Path) -> Vec<u8> {
    let store = MeetingStore::open(data).expect("open store");
    store.save(&seeded_record()).expect("seed meeting");
    let bytes = std::fs::read(data.join(format!("meetings/{SEEDED}.json"))).unwrap();
    for planted in [
        "leak.json".to_string(),
        "meetings/a.b.json".to_string(),
        format!("meetings/{}.json", "a".repeat(65)),
        format!("meetings/{}.json", "a".repeat(64)),
    ] {
        std::fs::write(data.join(planted), &bytes).unwrap();
    }
    bytes
}

// ----------------------------------------------------------------- HTTP

struct HttpRow {
    method: &'static str,
    target: String,
    /// Carries the right API token in `X-API-Token`.
    token: bool,
    headers: Vec<(&'static str, String)>,
    body: String,
    status: u16,
    /// Error code and a substring of its message (ignored for 2xx).
    code: &'static str,
    names: &'static str,
}

fn get(target: impl Into<String>, status: u16, code: &'static str, names: &'static str) -> HttpRow {
    HttpRow {
        method: "GET",
        target: target.into(),
        token: true,
        headers: Vec::new(),
        body: String::new(),
        status,
        code,
        names,
    }
}

fn with(method: &'static str, row: HttpRow) -> HttpRow {
    HttpRow { method, ..row }
}

fn without_token(row: HttpRow) -> HttpRow {
    HttpRow {
        token: false,
        ..row
    }
}

fn header(name: &'static str, value: &str, row: HttpRow) -> HttpRow {
    let mut row = row;
    row.headers.push((name, value.to_string()));
    row
}

fn body(text: &str, row: HttpRow) -> HttpRow {
    HttpRow {
        body: text.to_string(),
        ..row
    }
}

fn http_rows() -> Vec<HttpRow> {
    let a64 = "a".repeat(64);
    let a65 = "a".repeat(65);
    let unauthorized = |target: &str, names| without_token(get(target, 401, "UNAUTHORIZED", names));
    let not_found = |target: &str| get(target, 404, "NOT_FOUND", "");
    let bad = |target: &str, names| get(target, 400, "BAD_REQUEST", names);
    let not_allowed =
        |method, target: &str| with(method, get(target, 405, "METHOD_NOT_ALLOWED", method));
    let import = |json: &str, status, code, names| {
        body(
            json,
            with(
                "POST",
                get("/workflow/import-from-meeting", status, code, names),
            ),
        )
    };
    vec![
        // §5.1 token: missing or wrong in each of its three places; auth before 404.
        unauthorized("/meetings/recent", "required"),
        header(
            "Authorization",
            "Bearer nope",
            unauthorized("/meetings/recent", "invalid API token"),
        ),
        header(
            "X-API-Token",
            "nope",
            unauthorized("/meetings/recent", "invalid API token"),
        ),
        unauthorized("/meetings/recent?token=nope", "invalid API token"),
        unauthorized(&format!("/supie/meetings/{SEEDED}"), "required"),
        unauthorized(&format!("/meetings/{SEEDED}/transcript"), "required"),
        unauthorized("/meetings/nope", "required"),
        unauthorized("/workflow?groupKey=94:a9:90", "required"),
        without_token(import(
            &format!(r#"{{"groupKey":"94:a9:90","sessionId":"{SEEDED}"}}"#),
            401,
            "UNAUTHORIZED",
            "required",
        )),
        // The right token in each place passes.
        header(
            "Authorization",
            &format!("Bearer {TOKEN}"),
            without_token(get("/meetings/recent", 200, "", "")),
        ),
        without_token(get(
            format!("/meetings/{SEEDED}?token={TOKEN}"),
            200,
            "",
            "",
        )),
        // §5.1 sessionId pattern: traversal and out-of-pattern ids are 404,
        // although a file sits at every one of those places.
        not_found("/meetings/..%2Fleak"),
        not_found("/meetings/../leak"),
        not_found("/meetings/%2E%2E%2Fleak"),
        not_found("/meetings/..%2Fleak/transcript"),
        not_found("/meetings/..%2F..%2F..%2Fetc%2Fpasswd"),
        not_found("/supie/meetings/..%2Findex"),
        not_found("/meetings/index"),
        not_found("/meetings/a.b"),
        not_found("/meetings/a.b/transcript"),
        not_found(&format!("/meetings/{a65}")),
        not_found(&format!("/meetings/{a65}/transcript")),
        not_found("/meetings/a%00b"),
        not_found("/meetings/a%20b"),
        get(format!("/meetings/{a64}"), 200, "", ""),
        import(
            r#"{"groupKey":"94:a9:90","sessionId":"../leak"}"#,
            404,
            "NOT_FOUND",
            "",
        ),
        import(
            &format!(r#"{{"groupKey":"94:a9:90","sessionId":"{a65}"}}"#),
            404,
            "NOT_FOUND",
            "",
        ),
        import(
            r#"{"groupKey":"94:a9:90","sessionId":"a.b"}"#,
            404,
            "NOT_FOUND",
            "",
        ),
        // §5.2 parameters: 400 naming them.
        bad("/meetings/recent?limit=abc", "limit"),
        bad("/meetings/recent?limit=-1", "limit"),
        bad("/meetings/recent?limit=1.5", "limit"),
        bad("/meetings/recent?fromTs=yesterday", "fromTs"),
        bad("/meetings/recent?toTs=2025-13-01T00:00:00Z", "toTs"),
        bad(
            &format!("/meetings/{SEEDED}/transcript?offset=-1"),
            "offset",
        ),
        bad(
            &format!("/meetings/{SEEDED}/transcript?offset=abc"),
            "offset",
        ),
        bad(
            &format!("/meetings/{SEEDED}/transcript?offset=1.5"),
            "offset",
        ),
        bad(&format!("/meetings/{SEEDED}/transcript?limit=abc"), "limit"),
        bad(&format!("/meetings/{SEEDED}/transcript?limit=-10"), "limit"),
        bad(&format!("/meetings/{SEEDED}?preview=x"), "preview"),
        bad("/workflow", "groupKey"),
        bad("/workflow?groupKey=%20", "groupKey"),
        import("{x", 400, "BAD_REQUEST", "JSON"),
        import(
            &format!(r#"{{"sessionId":"{SEEDED}"}}"#),
            400,
            "BAD_REQUEST",
            "groupKey",
        ),
        // Unknown paths.
        not_found("/nope"),
        not_found("/meetings"),
        not_found(&format!("/meetings/{SEEDED}/shards")),
        not_found("/workflow/nope"),
        // Wrong methods.
        not_allowed("DELETE", "/healthz"),
        not_allowed("POST", "/"),
        not_allowed("POST", "/metrics"),
        not_allowed("POST", "/meetings/recent"),
        not_allowed("DELETE", &format!("/meetings/{SEEDED}")),
        not_allowed("PUT", &format!("/meetings/{SEEDED}/transcript")),
        not_allowed("DELETE", "/workflow"),
        not_allowed("GET", "/workflow/import-from-meeting"),
        not_allowed("PUT", "/xiaozhi/ota/"),
        // A body larger than the server reads.
        header(
            "Content-Length",
            "999999999",
            without_token(with(
                "POST",
                get("/xiaozhi/ota/", 400, "BAD_REQUEST", "limit"),
            )),
        ),
    ]
}

fn run_http(server: &Server, row: &HttpRow) -> Result<(), String> {
    let mut headers: Vec<(&str, &str)> =
        row.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    if row.token {
        headers.push(("X-API-Token", TOKEN));
    }
    let reply = server.http(row.method, &row.target, &headers, &row.body);
    let what = format!("{} {}", row.method, row.target);
    if reply.status != row.status {
        return Err(format!(
            "{what}: status {} (want {}): {}",
            reply.status, row.status, reply.body
        ));
    }
    if reply.header("Access-Control-Allow-Origin") != Some("*") {
        return Err(format!("{what}: no CORS header"));
    }
    if row.status >= 400 {
        let v: Value = serde_json::from_str(&reply.body)
            .map_err(|e| format!("{what}: not JSON ({e}): {}", reply.body))?;
        let message = v["error"]["message"].as_str().unwrap_or_default();
        if v["success"] != false || v["error"]["code"] != row.code || !message.contains(row.names) {
            return Err(format!(
                "{what}: want {} naming {:?}, got {v}",
                row.code, row.names
            ));
        }
    }
    Ok(())
}

/// `n` quick authorized requests; their statuses.
fn burst(server: &Server, n: usize) -> Vec<common::HttpReply> {
    (0..n)
        .map(|_| server.http("GET", "/meetings/recent", &[("X-API-Token", TOKEN)], ""))
        .collect()
}

fn assert_rate_limit_unchanged(server: &Server, after: &str) {
    let statuses: Vec<u16> = burst(server, 8).iter().map(|r| r.status).collect();
    assert!(
        statuses.iter().all(|s| *s == 200),
        "after {after} the old limit (100/s) must stay: {statuses:?}"
    );
    assert_eq!(
        server.http("GET", "/meetings/recent", &[], "").status,
        401,
        "after {after} the API token must still be required"
    );
}

// ------------------------------------------------------------ binary rows

/// A v3 frame: `type`, declared `payload_size`, and that many payload bytes present.
fn v3(kind: u8, declared: u16, present: usize) -> Vec<u8> {
    let mut f = vec![kind, 0];
    f.extend_from_slice(&declared.to_be_bytes());
    f.extend(std::iter::repeat_n(0x58, present));
    f
}

/// A v2 frame (16-byte header, timestamp 1000 ms).
fn v2(kind: u16, declared: u32, present: usize) -> Vec<u8> {
    let mut f = 2u16.to_be_bytes().to_vec();
    f.extend_from_slice(&kind.to_be_bytes());
    f.extend_from_slice(&0u32.to_be_bytes());
    f.extend_from_slice(&1000u32.to_be_bytes());
    f.extend_from_slice(&declared.to_be_bytes());
    f.extend(std::iter::repeat_n(0x58, present));
    f
}

/// `(framing version, frame, expected audio error code and message part)`;
/// `None` = accepted or ignored without any reply.
type BinaryRow = (u8, Vec<u8>, Option<(&'static str, &'static str)>);

fn binary_rows() -> Vec<BinaryRow> {
    vec![
        // §2.4 / §8: 4 KiB, header included.
        (
            3,
            v3(0, 4093, 4093),
            Some(("TOO_LARGE", "4097 bytes exceeds the 4096-byte limit")),
        ),
        (
            2,
            v2(0, 4081, 4081),
            Some(("TOO_LARGE", "4097 bytes exceeds the 4096-byte limit")),
        ),
        (
            1,
            vec![0x58; 4097],
            Some(("TOO_LARGE", "4097 bytes exceeds the 4096-byte limit")),
        ),
        (3, v3(0, 4092, 4092), None),
        (2, v2(0, 4080, 4080), None),
        (1, vec![0x58; 4096], None),
        // Shorter than the header.
        (
            3,
            vec![0, 0, 0],
            Some(("SCHEMA_INVALID", "shorter than its 4-byte header")),
        ),
        (
            2,
            v2(0, 0, 0)[..10].to_vec(),
            Some(("SCHEMA_INVALID", "shorter than its 16-byte header")),
        ),
        // payload_size disagrees with the bytes present.
        (
            3,
            v3(0, 9, 2),
            Some(("SCHEMA_INVALID", "payload_size 9 differs from the 2")),
        ),
        (
            3,
            v3(0, 1, 5),
            Some(("SCHEMA_INVALID", "payload_size 1 differs from the 5")),
        ),
        (
            2,
            v2(0, 100, 4),
            Some(("SCHEMA_INVALID", "payload_size 100 differs from the 4")),
        ),
        (
            2,
            v2(0, u32::MAX, 4),
            Some(("SCHEMA_INVALID", "payload_size 4294967295")),
        ),
        // Unknown types.
        (3, v3(2, 1, 1), Some(("UNSUPPORTED", "type 2"))),
        (3, v3(255, 1, 1), Some(("UNSUPPORTED", "type 255"))),
        (2, v2(7, 1, 1), Some(("UNSUPPORTED", "type 7"))),
        // Zero-length: ignored silently.
        (3, Vec::new(), None),
        (1, Vec::new(), None),
    ]
}

/// Each binary row on a fresh connection (each has its own 10 s reply gate).
fn run_binary_rows(server: &Server) -> Vec<String> {
    let mut failures = Vec::new();
    for (n, (version, frame, expect)) in binary_rows().into_iter().enumerate() {
        let id = format!("b1:00:00:00:00:{n:02x}");
        let version_header = version.to_string();
        let mut device = server.registered_device(
            "/xiaozhi/v1/",
            &[
                ("Device-Id", id.as_str()),
                ("Protocol-Version", version_header.as_str()),
            ],
        );
        let what = format!("v{version} binary frame of {} bytes", frame.len());
        device.send_binary(frame);
        let reply = match expect {
            Some((code, names)) => {
                let want = error("audio", code, names);
                device.try_recv(WAIT).and_then(|reply| check(&reply, &want))
            }
            None => {
                // No reply: the next message is the ping's pong.
                device.send_json(json!({"type":"ping"}));
                device
                    .try_recv(WAIT)
                    .and_then(|reply| check(&reply, &pong()))
            }
        };
        if let Err(why) = reply {
            failures.push(format!("{what}: {why}"));
        }
        if let Err(why) = next_ping(&mut device) {
            failures.push(format!("{what}: afterwards {why}"));
        }
    }
    failures
}

fn next_ping(device: &mut Device) -> Result<(), String> {
    device.send_json(json!({"type":"ping"}));
    device.try_recv(WAIT).and_then(|v| check(&v, &pong()))
}

// ------------------------------------------------------------ the table

#[test]
fn every_limit_and_error_is_named_and_nothing_stored_is_lost() {
    let dir = common::temp::temp_path("huddle-bad-input");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let seeded_bytes = seed(&data);
    let server = Server::start_in(&dir, SERVER_EXTRA, EXTRA);
    let mut failures: Vec<String> = Vec::new();

    // ---- Stored before the bad inputs: two tasks and a running meeting.
    let mut a = server.registered_device(
        "/xiaozhi/v1/",
        &[("Device-Id", DEV_A), ("Protocol-Version", "3")],
    );
    a.send_json(workflow_update(json!([
        {"id":"T-1","title":"扫码登录联调","priority":1,"custom":{"keep":true}},
        {"id":"T-2","title":"更新接口文档","priority":2}
    ])));
    let ack = a.recv_until(WAIT, |v| {
        v["type"] == "workflow" && v.get("status").is_some()
    });
    assert_eq!(ack["status"], "ok", "{ack}");
    let tasks_path = data.join("tasks.json");
    assert!(wait_until(WAIT, || std::fs::read_to_string(&tasks_path)
        .is_ok_and(|t| t.contains("T-2"))));
    let tasks_before = read_json(&tasks_path);
    assert_eq!(tasks_before["tasks"].as_array().map(Vec::len), Some(2));

    let sid = start_meeting(&mut a);
    let mut acked: Vec<String> = Vec::new();
    snippet_ok(
        &mut a,
        json!([{"tag":"需求","text":"登录页改成扫码","speakerId":"spk-1"}]),
    );
    acked.push("登录页改成扫码".into());
    snippet_ok(&mut a, json!([{"tag":"决策","text":"放弃短信验证码方案"}]));
    acked.push("放弃短信验证码方案".into());

    // ---- §3.0–§3.7: the text table, on connections that each take ≤ 20 errors.
    let mut prober = Prober::new(&server);
    prober.run(&text_rows(server.port));
    assert!(
        prober.connections >= 3,
        "the table should span several connections of 20 errors"
    );
    failures.append(&mut prober.failures);

    // ---- §3.3 snippet guards on the running meeting.
    // 2 KB cap: 3000 bytes of 3-byte characters keep 682 of them (2046 bytes).
    snippet_ok(&mut a, json!([{"tag":"t","text":"长".repeat(1000)}]));
    acked.push("长".repeat(682));
    // An exact repeat within 60 s is acknowledged and dropped.
    snippet_ok(&mut a, json!([{"tag":"需求","text":"登录页改成扫码"}]));
    // Schema errors while the meeting runs change nothing.
    for (items, names) in [
        (json!([{"tag":"t"}]), "items[0]"),
        (
            json!([{"tag":"t","text":"dropped with its bad sibling"},{"tag":5,"text":"x"}]),
            "items[1]",
        ),
    ] {
        let reply = snippet(&mut a, items);
        if let Err(why) = check(&reply, &error("meeting", "SCHEMA_INVALID", names)) {
            failures.push(format!("running meeting snippet: {why}"));
        }
    }
    a.send_json(json!({"type":"meeting","phase":"dance"}));
    if let Err(why) = check(
        &meeting_reply(&mut a),
        &error("meeting", "UNSUPPORTED", "phase dance"),
    ) {
        failures.push(format!("running meeting phase: {why}"));
    }
    // > 10 items/s: rejected as a whole; exactly 10 pass; the 11th in the same second does not.
    std::thread::sleep(Duration::from_millis(1100));
    let eleven: Vec<String> = (0..11).map(|i| format!("burst {i}")).collect();
    let reply = snippet(&mut a, items(&eleven));
    if let Err(why) = check(
        &reply,
        &error("meeting", "RATE_LIMITED", "10 snippet items per second"),
    ) {
        failures.push(format!("11 items at once: {why}"));
    }
    let ten: Vec<String> = (0..10).map(|i| format!("ten {i}")).collect();
    snippet_ok(&mut a, items(&ten));
    acked.extend(ten);
    let reply = snippet(&mut a, items(&["one too many".to_string()]));
    if let Err(why) = check(
        &reply,
        &error("meeting", "RATE_LIMITED", "10 snippet items per second"),
    ) {
        failures.push(format!("11th item within a second: {why}"));
    }
    // Garbage audio in the meeting: well-framed junk Opus, then an oversized frame.
    for _ in 0..3 {
        a.send_binary(v3(0, 40, 40));
    }
    a.send_binary(vec![0u8; 5000]);
    let reply = a.recv_until(WAIT, |v| v["type"] == "audio");
    if let Err(why) = check(&reply, &error("audio", "TOO_LARGE", "4096")) {
        failures.push(format!("meeting device binary: {why}"));
    }

    // 200 pending: ASR-style `listen detect` segments are not rate limited, so
    // 195 of them fill a second meeting between two pushes (15 s apart).
    let mut c = server.registered_device("/xiaozhi/v1/", &[("Device-Id", DEV_C)]);
    let sid_c = start_meeting(&mut c);
    let mut c_texts: Vec<String> = (0..195).map(|i| format!("pending line {i}")).collect();
    for text in &c_texts {
        c.send_json(json!({"type":"listen","state":"detect","text":text}));
    }
    let six: Vec<String> = (0..6).map(|i| format!("over the cap {i}")).collect();
    let reply = snippet(&mut c, items(&six));
    if let Err(why) = check(&reply, &error("meeting", "RATE_LIMITED", "200")) {
        failures.push(format!("195 pending + 6: {why}"));
    }
    let five: Vec<String> = (0..5).map(|i| format!("up to the cap {i}")).collect();
    snippet_ok(&mut c, items(&five));
    c_texts.extend(five);
    let reply = snippet(&mut c, items(&["one past the cap".to_string()]));
    if let Err(why) = check(&reply, &error("meeting", "RATE_LIMITED", "200")) {
        failures.push(format!("200 pending + 1: {why}"));
    }

    // ---- §2.4 binary frames, each on a fresh connection.
    failures.extend(run_binary_rows(&server));

    // ---- §3.0 abuse: the 21st error reply within 10 s closes with 1008,
    // whatever mix of errors it is.
    let mut abuser =
        server.registered_device("/xiaozhi/v1/", &[("Device-Id", "d0:00:00:00:00:01")]);
    let mix = [
        "{bad".to_string(),
        json!({"type":"teleport"}).to_string(),
        json!({"type":"mode","state":"start"}).to_string(),
        update_config(json!("wrong"), json!({})).to_string(),
        padded_ping(MAX_TEXT + 1),
    ];
    for n in 0..=TOLERATED_ERRORS {
        abuser.send_text(&mix[n % mix.len()]);
    }
    let mut error_replies = 0;
    let closed = loop {
        match abuser.next(WAIT) {
            Received::Json(v) if v["status"] == "error" => error_replies += 1,
            Received::Json(_) | Received::Binary(_) => {}
            Received::Closed(frame) => break frame,
            Received::Timeout => break None,
        }
    };
    let _ = abuser.ws.flush();
    if closed != Some((1008, "policy violation".to_string())) || error_replies < TOLERATED_ERRORS {
        failures.push(format!(
            "21 errors: closed with {closed:?} after {error_replies} error replies"
        ));
    }

    // §1.1 / §8: a message over 1 MiB closes with 1009.
    let mut huge = server.registered_device("/xiaozhi/v1/", &[("Device-Id", "d0:00:00:00:00:02")]);
    huge.ws.get_mut().set_write_timeout(Some(WAIT)).unwrap();
    let _ = huge
        .ws
        .send(tungstenite::Message::text(padded_ping(1024 * 1024 + 1024)));
    let (code, _) = huge.expect_close(WAIT);
    if code != 1009 {
        failures.push(format!("1 MiB message: close code {code}, want 1009"));
    }

    // ---- §5 HTTP.
    for row in http_rows() {
        if let Err(why) = run_http(&server, &row) {
            failures.push(why);
        }
    }

    // ---- §3.7: none of the refused update_config messages applied.
    assert_rate_limit_unchanged(&server, "the refused update_config messages");

    // ---- §7: invalid SIGHUP reloads are rejected and the old config stays.
    // Every bad file also lowers the rate limit to 1/s, which must not apply.
    let original = std::fs::read_to_string(&server.config_path).unwrap();
    let port_line = format!("port = {}\n", server.port);
    let moved_port = format!("port = {}\n", server.port.wrapping_add(1));
    let reloads: [(&str, &str, &str); 7] = [
        (
            "transcript_push_interval_ms = 15000",
            "transcript_push_interval_ms = 20000",
            "meeting.transcript_push_interval_ms = 20000 outside 3000..=15000",
        ),
        (
            "api_rate_limit = 1\n",
            "api_rate_limit = 1\nnope = 1\n",
            "unknown key meeting.nope",
        ),
        (
            "api_rate_limit = 1\n",
            "api_rate_limit = \"fast\"\n",
            "meeting.api_rate_limit",
        ),
        ("[meeting]", "[meeting", "TOML parse error"),
        ("[log]", "[logg]", "logg"),
        (&port_line, &moved_port, "server.port"),
        ("", "", "huddle.toml"),
    ];
    for (n, (from, to, names)) in reloads.iter().enumerate() {
        let lowered = original.replace("api_rate_limit = 100\n", "api_rate_limit = 1\n");
        if from.is_empty() {
            // The --config file is gone: not "defaults", a rejected reload.
            std::fs::remove_file(&server.config_path).unwrap();
        } else {
            assert!(lowered.contains(from), "{from:?} not in the config");
            std::fs::write(&server.config_path, lowered.replacen(from, to, 1)).unwrap();
        }
        server.signal("HUP");
        let rejected = server.wait_log_count("reload rejected", n + 1, WAIT);
        let log = server.log();
        let line = log
            .lines()
            .filter(|l| l.contains("reload rejected"))
            .nth(n)
            .unwrap_or_default()
            .to_string();
        if !rejected || !line.contains(names) {
            failures.push(format!(
                "SIGHUP with {from:?} → {to:?}: want a rejection naming {names:?}, log line {line:?}"
            ));
        }
        std::fs::write(&server.config_path, &original).unwrap();
    }
    assert!(
        !server.log().contains("SIGHUP: config reloaded"),
        "an invalid reload was accepted:\n{}",
        server.log()
    );
    assert_rate_limit_unchanged(&server, "the rejected SIGHUP reloads");

    // ---- §5.1 rate limit: 429 with Retry-After: 1, once a valid update lowers it.
    a.send_json(update_config(
        json!(SECRET),
        json!({"meeting":{"api_rate_limit":2}}),
    ));
    let ok = a.recv_until(WAIT, |v| v["type"] == "server" && v.get("status").is_some());
    assert_eq!(ok["status"], "success", "{ok}");
    let replies = burst(&server, 8);
    let limited: Vec<&common::HttpReply> = replies.iter().filter(|r| r.status == 429).collect();
    if limited.is_empty() || replies.iter().any(|r| r.status != 200 && r.status != 429) {
        failures.push(format!(
            "8 requests at 2/s: statuses {:?}",
            replies.iter().map(|r| r.status).collect::<Vec<_>>()
        ));
    }
    for reply in limited {
        let v = reply.json();
        if reply.header("Retry-After") != Some("1")
            || v["error"]["code"] != "RATE_LIMITED"
            || !v["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("2 requests per second"))
            || reply.header("Access-Control-Allow-Origin") != Some("*")
        {
            failures.push(format!("429 reply: {:?} {}", reply.headers, reply.body));
        }
    }
    a.send_json(update_config(
        json!(SECRET),
        json!({"meeting":{"api_rate_limit":100}}),
    ));
    let ok = a.recv_until(WAIT, |v| v["type"] == "server" && v.get("status").is_some());
    assert_eq!(ok["status"], "success", "{ok}");

    // ---- Nothing stored is lost or corrupted.
    // The meeting connection took errors (fewer than 20) and still works.
    ping(&mut a);
    finalize(&mut a);
    let record = archived(&data, &sid);
    assert_eq!(record["sessionId"], sid.as_str());
    assert_eq!(record["deviceId"], DEV_A);
    assert_eq!(
        texts(&record["segments"]),
        acked,
        "every acknowledged snippet, once, in order; nothing rejected"
    );
    assert_eq!(record["segments"][0]["speakerId"], "spk-1");
    assert_eq!(record["segments"][2]["text"].as_str().unwrap().len(), 2046);

    // The meeting filled to the pending cap keeps all 200 of its segments (sharded).
    ping(&mut c);
    finalize(&mut c);
    let record_c = archived(&data, &sid_c);
    assert_eq!(
        record_c["segments"]["totalCount"], 200,
        "{}",
        record_c["segments"]
    );
    assert_eq!(record_c["segments"]["shardCount"], 2);
    let mut stored_c = Vec::new();
    for k in 0..2 {
        let shard = read_json(&data.join(format!("meetings/segments/{sid_c}_shard_{k}.json")));
        stored_c.extend(texts(&shard["items"]));
    }
    assert_eq!(stored_c, c_texts);

    // The meeting archived before the server started is untouched and listed.
    assert_eq!(
        std::fs::read(data.join(format!("meetings/{SEEDED}.json"))).unwrap(),
        seeded_bytes,
        "the seeded meeting file changed"
    );
    let index = read_json(&data.join("meetings/index.json"));
    let listed: Vec<&str> = index["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["sessionId"].as_str())
        .collect();
    for id in [SEEDED, sid.as_str(), sid_c.as_str()] {
        assert!(
            listed.contains(&id),
            "{id} missing from the index: {listed:?}"
        );
    }
    let detail = server.http(
        "GET",
        &format!("/meetings/{sid}"),
        &[("X-API-Token", TOKEN)],
        "",
    );
    assert_eq!(detail.status, 200, "{}", detail.body);
    assert_eq!(detail.json()["data"]["segmentsCount"], acked.len());

    // tasks.json parses and holds exactly the tasks written before.
    let tasks_after = read_json(&tasks_path);
    assert_eq!(tasks_after, tasks_before, "tasks.json changed");
    assert_eq!(
        tasks_after["tasks"][0],
        json!({"id":"T-1","title":"扫码登录联调","priority":1,"custom":{"keep":true},"status":"open","groupKey":"94:a9:90"})
    );

    // No panic, the server still serves.
    assert_eq!(server.http("GET", "/healthz", &[], "").status, 200);
    let log = server.log();
    assert!(!log.contains("panicked"), "panic in the log:\n{log}");

    assert!(
        failures.is_empty(),
        "{} bad-input rows failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// §2.4 / §8: binary framing errors get at most one `audio` reply per 10 s per
/// connection and never count as abuse (§3.0).
#[test]
fn binary_errors_get_one_reply_per_ten_seconds_and_never_close_the_connection() {
    let server = Server::start("");
    let mut device = server.registered_device(
        "/xiaozhi/v1/",
        &[
            ("Device-Id", "b2:00:00:00:00:01"),
            ("Protocol-Version", "3"),
        ],
    );
    device.send_binary(vec![0u8; 5000]);
    let first = device.try_recv(WAIT).unwrap();
    let t0 = Instant::now();
    check(&first, &error("audio", "TOO_LARGE", "4096")).unwrap();
    // 30 more bad frames of every kind inside the window: dropped without a
    // reply, and far more than the 20 text errors that would close.
    let bad: [Vec<u8>; 4] = [vec![0u8; 5000], vec![0, 0], v3(0, 9, 2), v3(2, 1, 1)];
    for n in 0..30 {
        device.send_binary(bad[n % bad.len()].clone());
    }
    device.send_json(json!({"type":"ping"}));
    assert_eq!(
        device.try_recv(WAIT),
        Ok(json!({"type":"pong"})),
        "no audio error may come before the pong"
    );
    // After the window, the next bad frame is answered again.
    let wait = Duration::from_millis(10_300).saturating_sub(t0.elapsed());
    std::thread::sleep(wait);
    device.send_binary(v3(0, 9, 2));
    let again = device.try_recv(WAIT).unwrap();
    check(&again, &error("audio", "SCHEMA_INVALID", "payload_size 9")).unwrap();
    ping(&mut device);
}

// ------------------------------------------- regressions of fixed bugs
//
// Each test below was written against a server bug this table found (B1–B3)
// and documents the behaviour PROTOCOL.md requires; the fixes landed with it.

/// Was server bug B1. §3.0: "more than 20 text-message error replies
/// within 10 s close it with code 1008". Workflow errors are answered by the
/// workflow service thread (`src/workflow/service.rs`, `ConnEvent::SendText`),
/// which bypasses `Session::reject`: they never count toward the abuse window
/// (nor `huddle_ws_errors_total`), so a device can send invalid workflow
/// updates forever. Input: 21 × `{"type":"workflow","event":"update","tasks":[{"id":"W","priority":9}]}`;
/// server: 21 SCHEMA_INVALID replies and the connection stays open.
#[test]
fn workflow_error_replies_count_toward_the_abuse_close() {
    let server = Server::start("");
    let mut device =
        server.registered_device("/xiaozhi/v1/", &[("Device-Id", "e0:00:00:00:00:01")]);
    for _ in 0..=TOLERATED_ERRORS {
        device.send_json(workflow_update(json!([{"id":"W","priority":9}])));
    }
    let closed = loop {
        match device.next(Duration::from_secs(5)) {
            Received::Json(_) | Received::Binary(_) => {}
            Received::Closed(frame) => break frame,
            Received::Timeout => break None,
        }
    };
    assert_eq!(
        closed,
        Some((1008, "policy violation".to_string())),
        "21 workflow error replies within 10 s must close the connection"
    );
    let metrics = server.http("GET", "/metrics", &[], "").body;
    assert!(
        metrics.contains("huddle_ws_errors_total{code=\"SCHEMA_INVALID\"} 21"),
        "workflow errors must be counted:\n{metrics}"
    );
}

/// Was server bug B2. §3.0: a wrongly typed field is `SCHEMA_INVALID`;
/// §3.4 `assign` takes `id` and an optional `owner` name. The server reads
/// `owner` with `as_str()` and falls back to the sender's alias, so
/// `{"type":"workflow","event":"assign","id":"X-1","owner":5}` is acked `ok`
/// and silently gives the task to the sender, overwriting its owner.
#[test]
fn assign_with_a_wrongly_typed_owner_is_refused_and_changes_nothing() {
    let server = Server::start("");
    let mut device =
        server.registered_device("/xiaozhi/v1/", &[("Device-Id", "e1:00:00:00:00:01")]);
    device.send_json(workflow_update(
        json!([{"id":"X-1","title":"x","owner":"alice"}]),
    ));
    assert_eq!(device.try_recv(WAIT).unwrap()["status"], "ok");
    device.send_json(json!({"type":"workflow","event":"assign","id":"X-1","owner":5}));
    let reply = device.try_recv(WAIT).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let tasks = read_json(&server.dir.join("data/tasks.json"));
    assert_eq!(
        tasks["tasks"][0]["owner"], "alice",
        "the owner changed; reply {reply}"
    );
    check(&reply, &error("workflow", "SCHEMA_INVALID", "owner")).unwrap();
}

/// Was server bug B3. §3.0: a wrongly typed field is `SCHEMA_INVALID`;
/// §3.4 `update` takes an optional string `groupKey` that decides the group of
/// its new tasks. `{"type":"workflow","event":"update","groupKey":5,"tasks":[{"id":"X-2","title":"y"}]}`
/// is acked `ok` and writes X-2 into the sender's group instead.
#[test]
fn update_with_a_wrongly_typed_group_key_is_refused_and_writes_nothing() {
    let server = Server::start("");
    let mut device =
        server.registered_device("/xiaozhi/v1/", &[("Device-Id", "e1:00:00:00:00:02")]);
    device.send_json(
        json!({"type":"workflow","event":"update","groupKey":5,"tasks":[{"id":"X-2","title":"y"}]}),
    );
    let reply = device.try_recv(WAIT).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let stored = std::fs::read_to_string(server.dir.join("data/tasks.json")).unwrap_or_default();
    assert!(
        !stored.contains("X-2"),
        "the task was written: {stored}; reply {reply}"
    );
    check(&reply, &error("workflow", "SCHEMA_INVALID", "groupKey")).unwrap();
}
