//! The meeting archive over HTTP against the real binary (PROTOCOL.md §5):
//! recent with its filters, detail, transcript paging across shards, the
//! `/supie` alias, parameter and id errors, the API token and the per-IP rate
//! limit. Meetings are seeded by writing the server's own data directory
//! through `MeetingStore`, exactly as a finalize would.

mod common;

use common::meetings::{MINUTE, NO_RATE_LIMIT, T0, meeting_record, store};
use common::{HttpReply, Server};
use huddle::store::meetings::MeetingStore;
use huddle::store::model::{MeetingMetrics, MeetingRecord, Segment};

const DEV_A: &str = "94:a9:90:07:9d:88";
const DEV_B: &str = "94:a9:90:11:22:33";
const DEV_C: &str = "aa:bb:cc:00:00:01";

/// The base record with `a1` / `n1` as its action and next step, `segments`
/// transcript lines and the metrics to match.
fn record(sid: &str, device: &str, ended_at: u64, segments: usize) -> MeetingRecord {
    let mut record = meeting_record(sid, device, ended_at);
    record.summary.actions = vec!["a1".into()];
    record.summary.next_steps = vec!["n1".into()];
    record.segments = (0..segments)
        .map(|i| Segment {
            ts: ended_at - 10 * MINUTE + i as u64,
            text: format!("{sid} line {i}"),
            speaker_id: (i % 2 == 0).then(|| "spk-1".to_string()),
            tag: None,
        })
        .collect();
    record.source_segments = segments as u64;
    record.metrics = MeetingMetrics {
        segments_count: segments as u64,
        checkpoint_count: 2,
        llm_elapsed_ms: 1234,
        empty_bullets: false,
        bullets_length: 1,
        industry: None,
        scenario: None,
    };
    record
}

/// Seeds four meetings:
/// - `big` (DEV_A, 230 segments, sharded) ended at T0,
/// - `small` (DEV_A, 10 segments) ended at T0 - 1 min,
/// - `other` (DEV_B, 3 segments) ended at T0 - 2 min,
/// - `far` (DEV_C, 1 segment, recovered) ended at T0 - 60 min.
fn seed(server: &Server) -> MeetingStore {
    let store = store(server);
    store.save(&record("big", DEV_A, T0, 230)).unwrap();
    store
        .save(&record("small", DEV_A, T0 - MINUTE, 10))
        .unwrap();
    store
        .save(&record("other", DEV_B, T0 - 2 * MINUTE, 3))
        .unwrap();
    let mut far = record("far", DEV_C, T0 - 60 * MINUTE, 1);
    far.recovered = true;
    store.save(&far).unwrap();
    store
}

fn ids(reply: &HttpReply) -> Vec<String> {
    reply
        .data()
        .as_array()
        .expect("array")
        .iter()
        .map(|e| e["sessionId"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn recent_lists_newest_first_with_filters() {
    let server = Server::start(NO_RATE_LIMIT);
    // Empty store: an empty array, not an error.
    assert_eq!(server.get("/meetings/recent").data(), serde_json::json!([]));

    seed(&server);
    let all = server.get("/meetings/recent");
    assert_eq!(ids(&all), ["big", "small", "other", "far"]);
    let first = &all.data()[0];
    assert_eq!(first["deviceId"], DEV_A);
    assert_eq!(first["title"], "title big");
    assert_eq!(first["endedAt"], T0);
    assert_eq!(first["segmentsCount"], 230);
    assert_eq!(first["shardCount"], 3);

    // limit: clamped to 1..=100.
    assert_eq!(
        ids(&server.get("/meetings/recent?limit=2")),
        ["big", "small"]
    );
    assert_eq!(ids(&server.get("/meetings/recent?limit=0")), ["big"]);
    assert_eq!(ids(&server.get("/meetings/recent?limit=1000")).len(), 4);
    // Empty values count as absent (the contract's own example URL).
    assert_eq!(
        ids(&server.get("/meetings/recent?limit=10&deviceId=&fromTs=&toTs=")).len(),
        4
    );

    // deviceId: normalized, full id or prefix.
    assert_eq!(
        ids(&server.get("/meetings/recent?deviceId=94%3AA9%3A90%3A07%3A9D%3A88")),
        ["big", "small"]
    );
    assert_eq!(
        ids(&server.get("/meetings/recent?deviceId=%2094:a9:90")),
        ["big", "small", "other"]
    );
    assert_eq!(ids(&server.get("/meetings/recent?deviceId=aa:bb")), ["far"]);
    assert!(ids(&server.get("/meetings/recent?deviceId=ff:ff")).is_empty());

    // fromTs/toTs in ms, inclusive on endedAt.
    let target = format!(
        "/meetings/recent?fromTs={}&toTs={}",
        T0 - 2 * MINUTE,
        T0 - MINUTE
    );
    assert_eq!(ids(&server.get(&target)), ["small", "other"]);
    assert_eq!(
        ids(&server.get(&format!("/meetings/recent?fromTs={T0}"))),
        ["big"]
    );
    assert_eq!(
        ids(&server.get(&format!("/meetings/recent?toTs={}", T0 - 3 * MINUTE))),
        ["far"]
    );
    // RFC 3339, Z and an offset (escaped and unescaped `+`).
    assert_eq!(
        ids(&server.get("/meetings/recent?fromTs=2025-08-18T02:41:00Z")),
        ["big", "small"]
    );
    assert_eq!(
        ids(&server.get(
            "/meetings/recent?fromTs=2025-08-18T10:40:00%2B08:00&toTs=2025-08-18T10:41:00%2B08:00"
        )),
        ["small", "other"]
    );
    assert_eq!(
        ids(&server.get("/meetings/recent?toTs=2025-08-18T10:40:00.000+08:00")),
        ["other", "far"]
    );
    // Combined with a device filter and a limit.
    assert_eq!(
        ids(&server.get("/meetings/recent?deviceId=94:a9&fromTs=2025-08-18T02:40:00Z&limit=1")),
        ["big"]
    );

    // Invalid numbers: 400 naming the parameter.
    for (target, name) in [
        ("/meetings/recent?limit=abc", "limit"),
        ("/meetings/recent?limit=-1", "limit"),
        ("/meetings/recent?fromTs=yesterday", "fromTs"),
        ("/meetings/recent?toTs=2025-13-01T00:00:00Z", "toTs"),
    ] {
        let reply = server.get(target);
        assert_eq!(reply.status, 400, "{target}");
        assert_eq!(reply.error_code(), "BAD_REQUEST");
        let message = reply.json()["error"]["message"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(message.contains(name), "{target}: {message}");
    }
}

#[test]
fn detail_with_preview_and_shards() {
    let server = Server::start(NO_RATE_LIMIT);
    seed(&server);

    let big = server.get("/meetings/big").data();
    assert_eq!(big["sessionId"], "big");
    assert_eq!(big["deviceId"], DEV_A);
    assert_eq!(big["startedAt"], T0 - 10 * MINUTE);
    assert_eq!(big["endedAt"], T0);
    assert_eq!(big["durationMs"], 10 * MINUTE);
    assert_eq!(big["segmentsCount"], 230);
    assert_eq!(big["hasShards"], true);
    assert_eq!(big["metrics"]["checkpointCount"], 2);
    assert_eq!(big["metrics"]["llmElapsedMs"], 1234);
    assert!(big.get("recovered").is_none());
    let summary = big["summary"].as_object().unwrap();
    for field in [
        "title",
        "duration",
        "bullets",
        "decisions",
        "actions",
        "risks",
        "nextSteps",
    ] {
        assert!(summary.contains_key(field), "{field}");
    }
    assert_eq!(big["summary"]["nextSteps"], serde_json::json!(["n1"]));
    // Default preview: the first 5 segments.
    let preview = big["transcriptPreview"].as_array().unwrap();
    assert_eq!(preview.len(), 5);
    assert_eq!(preview[0]["text"], "big line 0");
    assert_eq!(preview[0]["speakerId"], "spk-1");
    assert_eq!(preview[4]["text"], "big line 4");

    // preview clamped to 1..=20.
    let len = |target: &str| {
        server.get(target).data()["transcriptPreview"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(len("/meetings/big?preview=12"), 12);
    assert_eq!(len("/meetings/big?preview=100"), 20);
    assert_eq!(len("/meetings/big?preview=0"), 1);
    // A short meeting previews what it has.
    assert_eq!(len("/meetings/small?preview=20"), 10);
    let small = server.get("/meetings/small").data();
    assert_eq!(small["hasShards"], false);
    assert_eq!(small["segmentsCount"], 10);
    // `recovered` appears only when true.
    assert_eq!(server.get("/meetings/far").data()["recovered"], true);

    let reply = server.get("/meetings/big?preview=x");
    assert_eq!(reply.status, 400);
    assert_eq!(reply.error_code(), "BAD_REQUEST");
}

#[test]
fn transcript_pages_across_shards() {
    let server = Server::start(NO_RATE_LIMIT);
    seed(&server);
    let page = |target: &str| server.get(target).data();

    let v = page("/meetings/big/transcript");
    assert_eq!(v["total"], 230);
    assert_eq!(v["offset"], 0);
    assert_eq!(v["limit"], 100);
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 100);
    assert_eq!(items[0]["text"], "big line 0");
    assert_eq!(items[99]["text"], "big line 99");

    // Straddling shards 0 and 1 (and past the main file's 50-segment preview).
    let v = page("/meetings/big/transcript?offset=95&limit=10");
    let texts: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["text"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = (95..105).map(|i| format!("big line {i}")).collect();
    assert_eq!(texts, expected);

    let v = page("/meetings/big/transcript?offset=200&limit=100");
    assert_eq!(
        (v["total"].clone(), v["offset"].clone(), v["limit"].clone()),
        (230.into(), 200.into(), 100.into())
    );
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 30);
    assert_eq!(items[0]["text"], "big line 200");
    assert_eq!(items[29]["text"], "big line 229");

    // Past the end: no items, the right total.
    let v = page("/meetings/big/transcript?offset=900");
    assert_eq!(v["items"], serde_json::json!([]));
    assert_eq!(v["total"], 230);
    assert_eq!(v["offset"], 900);

    // limit clamped to 1..=500.
    let v = page("/meetings/big/transcript?limit=1000");
    assert_eq!(v["limit"], 500);
    assert_eq!(v["items"].as_array().unwrap().len(), 230);
    let v = page("/meetings/big/transcript?limit=0");
    assert_eq!(v["limit"], 1);
    assert_eq!(v["items"].as_array().unwrap().len(), 1);

    // The array layout pages the same way.
    let v = page("/meetings/small/transcript?offset=8&limit=5");
    assert_eq!(v["total"], 10);
    assert_eq!(v["items"].as_array().unwrap().len(), 2);
    assert_eq!(v["items"][1]["text"], "small line 9");

    for target in [
        "/meetings/big/transcript?offset=-1",
        "/meetings/big/transcript?limit=abc",
        "/meetings/big/transcript?offset=1.5",
        "/meetings/big/transcript?limit=-10",
    ] {
        let reply = server.get(target);
        assert_eq!(reply.status, 400, "{target}");
        assert_eq!(reply.error_code(), "BAD_REQUEST");
    }
}

#[test]
fn unknown_and_malformed_ids_are_404() {
    let server = Server::start(NO_RATE_LIMIT);
    seed(&server);
    for target in [
        "/meetings/nope",
        "/meetings/nope/transcript",
        "/meetings/index",
        "/meetings/..%2F..%2Fetc",
        "/meetings/..%2F..%2Fetc%2Fpasswd/transcript",
        "/meetings/a.b",
        "/supie/meetings/..%2Findex",
    ] {
        let reply = server.get(target);
        assert_eq!(reply.status, 404, "{target}: {}", reply.body);
        assert_eq!(reply.error_code(), "NOT_FOUND");
        assert_eq!(reply.header("Access-Control-Allow-Origin"), Some("*"));
    }
    let long = format!("/meetings/{}", "a".repeat(65));
    assert_eq!(server.get(&long).status, 404);
    let v = server.get("/meetings/nope").json();
    assert_eq!(v["error"]["message"], "meeting nope not found");
    // Unknown sub-route.
    assert_eq!(server.get("/meetings/big/shards").status, 404);
}

#[test]
fn supie_alias_and_method_checks() {
    let server = Server::start(NO_RATE_LIMIT);
    seed(&server);
    assert_eq!(
        ids(&server.get("/supie/meetings/recent?limit=2")),
        ["big", "small"]
    );
    assert_eq!(
        server.get("/supie/meetings/small").data()["segmentsCount"],
        10
    );
    let v = server
        .get("/supie/meetings/big/transcript?offset=200&limit=100")
        .data();
    assert_eq!(v["items"].as_array().unwrap().len(), 30);
    assert_eq!(v["total"], 230);

    for (method, target) in [
        ("POST", "/meetings/recent"),
        ("DELETE", "/meetings/big"),
        ("PUT", "/supie/meetings/big/transcript"),
    ] {
        let reply = server.http(method, target, &[], "");
        assert_eq!(reply.status, 405, "{method} {target}");
        assert_eq!(reply.error_code(), "METHOD_NOT_ALLOWED");
        assert_eq!(reply.header("Access-Control-Allow-Origin"), Some("*"));
    }
}

#[test]
fn api_token_is_required_when_configured() {
    let server = Server::start_with("meeting_api_token = \"s3cret\"", NO_RATE_LIMIT);
    seed(&server);

    let missing = server.get("/meetings/recent");
    assert_eq!(missing.status, 401);
    assert_eq!(missing.error_code(), "UNAUTHORIZED");
    assert_eq!(missing.header("Access-Control-Allow-Origin"), Some("*"));
    let wrong = server.http(
        "GET",
        "/meetings/recent",
        &[("Authorization", "Bearer nope")],
        "",
    );
    assert_eq!(wrong.status, 401);
    assert_eq!(server.get("/supie/meetings/big?token=nope").status, 401);
    assert_eq!(server.get("/meetings/nope").status, 401, "auth before 404");
    assert_eq!(server.get("/workflow?groupKey=x").status, 401);

    let bearer = server.http(
        "GET",
        "/meetings/recent",
        &[("Authorization", "Bearer s3cret")],
        "",
    );
    assert_eq!(ids(&bearer).len(), 4);
    let header = server.http(
        "GET",
        "/supie/meetings/big",
        &[("X-API-Token", "s3cret")],
        "",
    );
    assert_eq!(header.data()["segmentsCount"], 230);
    let query = server.get("/meetings/big/transcript?token=s3cret&offset=200");
    assert_eq!(query.data()["items"].as_array().unwrap().len(), 30);

    // Exempt: health, metrics, OTA, preflight.
    assert_eq!(server.get("/healthz").status, 200);
    assert_eq!(server.get("/metrics").status, 200);
    assert_eq!(server.http("POST", "/xiaozhi/ota/", &[], "{}").status, 200);
    assert_eq!(
        server.http("OPTIONS", "/meetings/recent", &[], "").status,
        204
    );
}

#[test]
fn rate_limit_per_client_ip() {
    let server = Server::start("[meeting]\napi_rate_limit = 5\n");
    seed(&server);

    // Preflight is never limited.
    for _ in 0..20 {
        assert_eq!(
            server.http("OPTIONS", "/meetings/recent", &[], "").status,
            204
        );
    }
    let replies: Vec<HttpReply> = (0..12).map(|_| server.get("/meetings/recent")).collect();
    let ok = replies.iter().filter(|r| r.status == 200).count();
    let limited: Vec<&HttpReply> = replies.iter().filter(|r| r.status == 429).collect();
    assert_eq!(ok + limited.len(), 12, "only 200 or 429");
    assert!(ok >= 5, "the burst of 5 passes ({ok} did)");
    assert!(
        !limited.is_empty(),
        "12 quick requests at 5/s hit the limit"
    );
    for reply in &limited {
        assert_eq!(reply.header("Retry-After"), Some("1"));
        assert_eq!(reply.error_code(), "RATE_LIMITED");
        assert_eq!(reply.header("Access-Control-Allow-Origin"), Some("*"));
    }
    // Exempt paths keep answering while the bucket is empty.
    assert_eq!(server.get("/healthz").status, 200);
    assert_eq!(server.get("/metrics").status, 200);
    assert_eq!(server.http("POST", "/supie/ota/", &[], "{}").status, 200);
    assert_eq!(
        server.http("OPTIONS", "/meetings/recent", &[], "").status,
        204
    );
    // The bucket refills within a second.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(server.get("/meetings/recent").status, 200);
}
