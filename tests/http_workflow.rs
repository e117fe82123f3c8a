//! The workflow task API against the real binary (PROTOCOL.md §5.2, §3.4):
//! `GET /workflow` lists a group prefix's tasks, `POST
//! /workflow/import-from-meeting` turns a finalized meeting's actions and
//! next steps into tasks exactly once and sends the group's online devices
//! (and nobody else) their snapshot; the `/supie` alias, parameter and id
//! errors and the API token. Meetings are seeded by writing the server's own
//! data directory through `MeetingStore`, exactly as a finalize would; tasks
//! are written by devices over the WebSocket or by the import itself.

mod common;

use std::time::Duration;

use common::meetings::{MINUTE, NO_RATE_LIMIT, T0, meeting_record, store};
use common::{Device, HttpReply, Server, snapshots};
use huddle::store::model::MeetingRecord;
use serde_json::{Value, json};

const DEV_A: &str = "94:a9:90:07:9d:88";
const DEV_A2: &str = "94:a9:90:11:22:33";
const DEV_B: &str = "aa:bb:cc:00:00:01";

const SID: &str = "3f2b9c1e-7a4d-4e8b-9c21-0d5e6f7a8b9c";
const OLDER: &str = "older_meeting-1";
const NEWER: &str = "newer_meeting-2";

/// A meeting of DEV_A with one decision and risk, and the given actions and next steps.
fn record(sid: &str, ended_at: u64, actions: &[&str], next_steps: &[&str]) -> MeetingRecord {
    let mut record = meeting_record(sid, DEV_A, ended_at);
    record.summary.decisions = vec!["d1".into()];
    record.summary.actions = actions.iter().map(|s| s.to_string()).collect();
    record.summary.risks = vec!["r1".into()];
    record.summary.next_steps = next_steps.iter().map(|s| s.to_string()).collect();
    record
}

/// The meeting `SID`: two actions and one next step.
fn seed_sid(server: &Server) {
    store(server)
        .save(&record(
            SID,
            T0,
            &["扫码登录联调", "补充单元测试"],
            &["周三前出设计稿"],
        ))
        .unwrap();
}

fn import(server: &Server, body: Value) -> HttpReply {
    server.http(
        "POST",
        "/workflow/import-from-meeting",
        &[("Content-Type", "application/json")],
        &body.to_string(),
    )
}

fn item_ids(data: &Value, key: &str) -> Vec<String> {
    data[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} is not an array: {data}"))
        .iter()
        .map(|t| match t {
            Value::String(s) => s.clone(),
            other => other["id"].as_str().expect("task id").to_string(),
        })
        .collect()
}

fn meet_id(sid: &str, suffix: &str) -> String {
    format!("MEET-{sid}-{suffix}")
}

/// A connected device with its connect-time messages (the registration
/// snapshot among them) drained.
fn online(server: &Server, device_id: &str) -> Device {
    let mut device = server.registered_device("/xiaozhi/v1/", &[("Device-Id", device_id)]);
    device.drain(Duration::from_millis(200));
    device
}

/// Sends a workflow `update` and waits for its ack, so the write has landed.
fn update(device: &mut Device, tasks: Value) {
    device.send_json(json!({"type":"workflow","event":"update","tasks":tasks}));
    let ack = device.recv_until(Duration::from_secs(5), |m| {
        m["type"] == "workflow" && m.get("status").is_some()
    });
    assert_eq!(
        ack,
        json!({"type":"workflow","status":"ok","event":"update"}),
        "update ack"
    );
}

#[test]
fn list_returns_only_the_group_prefix_and_requires_group_key() {
    let server = Server::start(NO_RATE_LIMIT);
    let mut a = online(&server, DEV_A);
    let mut b = online(&server, DEV_B);
    update(
        &mut a,
        json!([
            {"id":"T-1","title":"扫码登录联调","priority":1},
            {"id":"T-2","title":"邻组任务","groupKey":"94:A9:91:00"}
        ]),
    );
    update(&mut b, json!([{"id":"T-3","title":"别组任务"}]));

    // Normalized and cut to 8 characters: 94:A9:90:07 → 94:a9:90.
    let own = server.get("/workflow?groupKey=94:A9:90:07").data();
    assert_eq!(own["groupKey"], "94:a9:90");
    assert_eq!(item_ids(&own, "items"), ["T-1"]);
    assert_eq!(own["items"][0]["title"], "扫码登录联调");
    assert_eq!(own["items"][0]["priority"], 1);
    assert_eq!(own["items"][0]["status"], "open");
    assert_eq!(own["items"][0]["groupKey"], "94:a9:90");
    // A shorter key is a prefix of both 94:a9:9x groups, never of aa:bb:cc.
    let prefix = server.get("/workflow?groupKey=94%3Aa9%3A9").data();
    assert_eq!(prefix["groupKey"], "94:a9:9");
    assert_eq!(item_ids(&prefix, "items"), ["T-1", "T-2"]);
    let other = server.get("/workflow/?groupKey=AA:BB:CC").data();
    assert_eq!(item_ids(&other, "items"), ["T-3"]);
    let none = server.get("/workflow?groupKey=12:34:56").data();
    assert_eq!(none["items"], json!([]));

    for target in [
        "/workflow",
        "/workflow?groupKey=",
        "/workflow?group=94:a9:90",
    ] {
        let reply = server.get(target);
        assert_eq!(reply.status, 400, "{target}");
        assert_eq!(reply.error_code(), "BAD_REQUEST");
        assert!(reply.body.contains("groupKey"), "{target}: {}", reply.body);
        assert_eq!(reply.header("Access-Control-Allow-Origin"), Some("*"));
    }
}

#[test]
fn import_creates_meeting_tasks_once() {
    let server = Server::start(NO_RATE_LIMIT);
    seed_sid(&server);
    let reply = import(&server, json!({"groupKey":"94:A9:90:07","sessionId":SID}));
    let v = reply.data();
    let expected = [meet_id(SID, "A1"), meet_id(SID, "A2"), meet_id(SID, "N1")];
    assert_eq!(v["imported"], 3, "{v}");
    assert_eq!(item_ids(&v, "ids"), expected);

    let listed = server.get("/workflow?groupKey=94:a9:90").data();
    assert_eq!(item_ids(&listed, "items"), expected);
    for (task, title) in listed["items"].as_array().unwrap().iter().zip([
        "扫码登录联调",
        "补充单元测试",
        "周三前出设计稿",
    ]) {
        assert_eq!(task["title"], title, "{task}");
        assert_eq!(task["priority"], 2, "{task}");
        assert_eq!(task["status"], "open", "{task}");
        assert_eq!(task["source"], "meeting", "{task}");
        assert_eq!(task["sessionId"], SID, "{task}");
        assert_eq!(task["groupKey"], "94:a9:90", "{task}");
    }
    // Persisted in tasks.json.
    let file = std::fs::read_to_string(server.dir.join("data/tasks.json")).unwrap();
    assert!(file.contains(&meet_id(SID, "N1")), "{file}");

    // Again, into the same or another group: the ids exist, nothing is imported.
    for group in ["94:a9:90", "aa:bb:cc"] {
        let again = import(&server, json!({"groupKey":group,"sessionId":SID})).data();
        assert_eq!(again, json!({"imported":0,"ids":[]}), "{group}");
    }
    assert_eq!(
        server.get("/workflow?groupKey=aa:bb:cc").data()["items"],
        json!([])
    );
    assert_eq!(
        item_ids(&server.get("/workflow?groupKey=94:a9:90").data(), "items").len(),
        3
    );
}

#[test]
fn import_without_session_id_takes_the_newest_meeting() {
    let server = Server::start(NO_RATE_LIMIT);
    // No meeting at all: nothing to import, not an error.
    assert_eq!(
        import(&server, json!({"groupKey":"94:a9:90"})).data(),
        json!({"imported":0,"ids":[]})
    );

    // Saved newest first, so the choice is by endedAt, not by save order.
    let meetings = store(&server);
    meetings
        .save(&record(NEWER, T0, &["new action"], &[]))
        .unwrap();
    meetings
        .save(&record(
            OLDER,
            T0 - 5 * MINUTE,
            &["old action"],
            &["old step"],
        ))
        .unwrap();
    let v = import(&server, json!({"groupKey":"94:a9:90"})).data();
    assert_eq!(item_ids(&v, "ids"), [meet_id(NEWER, "A1")]);

    // Query parameters are accepted; the body's groupKey wins over the query's.
    let reply = server.http(
        "POST",
        &format!("/workflow/import-from-meeting?groupKey=aa:bb:cc&sessionId={OLDER}"),
        &[],
        r#"{"groupKey":"94:a9:90"}"#,
    );
    assert_eq!(
        item_ids(&reply.data(), "ids"),
        [meet_id(OLDER, "A1"), meet_id(OLDER, "N1")]
    );
    let listed = server.get("/workflow?groupKey=94:a9:90").data();
    assert_eq!(
        item_ids(&listed, "items"),
        [
            meet_id(NEWER, "A1"),
            meet_id(OLDER, "A1"),
            meet_id(OLDER, "N1")
        ]
    );
    // Query only, no body at all.
    let reply = server.http(
        "POST",
        &format!("/workflow/import-from-meeting?groupKey=aa:bb:cc&sessionId={NEWER}"),
        &[],
        "",
    );
    assert_eq!(reply.data(), json!({"imported":0,"ids":[]}));
}

#[test]
fn unknown_sessions_404_and_bad_requests_400() {
    let server = Server::start(NO_RATE_LIMIT);
    seed_sid(&server);
    let long = "a".repeat(65);
    for sid in ["no-such-meeting", "../../etc/passwd", "a.b", long.as_str()] {
        let reply = import(&server, json!({"groupKey":"94:a9:90","sessionId":sid}));
        assert_eq!(reply.status, 404, "{sid}: {}", reply.body);
        assert_eq!(reply.error_code(), "NOT_FOUND");
    }

    // groupKey is required, in the body or the query.
    let reply = import(&server, json!({"sessionId":SID}));
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert_eq!(reply.error_code(), "BAD_REQUEST");
    assert!(reply.body.contains("groupKey"), "{}", reply.body);
    // A body that is not JSON, or the wrong shape, is a 400 saying so.
    let reply = server.http(
        "POST",
        "/workflow/import-from-meeting?groupKey=94:a9:90",
        &[],
        "{\"sessionId\":",
    );
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert!(reply.body.contains("JSON"), "{}", reply.body);
    let reply = import(&server, json!({"groupKey":7,"sessionId":SID}));
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert!(reply.body.contains("groupKey"), "{}", reply.body);
    let reply = import(&server, json!(["94:a9:90"]));
    assert_eq!(reply.status, 400, "{}", reply.body);
    // None of that imported anything.
    assert_eq!(
        server.get("/workflow?groupKey=94:a9:90").data()["items"],
        json!([])
    );

    // Wrong methods and unknown subpaths.
    for (method, target) in [
        ("DELETE", "/workflow?groupKey=94:a9:90"),
        ("PUT", "/workflow/import-from-meeting"),
        ("GET", "/supie/workflow/import-from-meeting"),
    ] {
        let reply = server.http(method, target, &[], "");
        assert_eq!(reply.status, 405, "{method} {target}");
        assert_eq!(reply.error_code(), "METHOD_NOT_ALLOWED");
        assert_eq!(reply.header("Access-Control-Allow-Origin"), Some("*"));
    }
    for target in ["/workflow/tasks", "/supie/workflow/import-from-meeting/x"] {
        let reply = server.http("POST", target, &[], "{}");
        assert_eq!(reply.status, 404, "{target}");
        assert_eq!(reply.error_code(), "NOT_FOUND");
    }
}

#[test]
fn import_snapshot_reaches_only_the_groups_online_devices() {
    let server = Server::start(NO_RATE_LIMIT);
    seed_sid(&server);
    let mut a = online(&server, DEV_A);
    let mut a2 = online(&server, DEV_A2);
    let mut b = online(&server, DEV_B);
    // B's group has a task of its own, which must not show up for A.
    update(&mut b, json!([{"id":"B-1","title":"别组任务"}]));
    b.drain(Duration::from_millis(300));
    a.drain(Duration::from_millis(100));

    let v = import(&server, json!({"groupKey":"94:a9:90","sessionId":SID})).data();
    assert_eq!(v["imported"], 3);
    let expected = [meet_id(SID, "A1"), meet_id(SID, "A2"), meet_id(SID, "N1")];
    let window = Duration::from_millis(800);
    for (name, device) in [("a", &mut a), ("a2", &mut a2)] {
        let seen = device.drain(window);
        let snaps = snapshots(&seen);
        assert_eq!(snaps.len(), 1, "{name}: {seen:?}");
        assert_eq!(snaps[0]["groupKey"], "94:a9:90", "{name}");
        assert_eq!(item_ids(snaps[0], "tasks"), expected, "{name}");
        assert_eq!(snaps[0]["tasks"][0]["source"], "meeting", "{name}");
    }
    let seen_b = b.drain(window);
    assert!(
        seen_b.iter().all(|m| m["type"] != "workflow"),
        "another group's device got workflow traffic: {seen_b:?}"
    );

    // A repeat import changes nothing and sends nobody a snapshot.
    let again = import(&server, json!({"groupKey":"94:a9:90","sessionId":SID})).data();
    assert_eq!(again["imported"], 0);
    let seen = a.drain(Duration::from_millis(600));
    assert!(snapshots(&seen).is_empty(), "{seen:?}");
}

#[test]
fn supie_alias_serves_both_routes() {
    let server = Server::start(NO_RATE_LIMIT);
    seed_sid(&server);
    let reply = server.http(
        "POST",
        "/supie/workflow/import-from-meeting",
        &[],
        &json!({"groupKey":"94:a9:90","sessionId":SID}).to_string(),
    );
    assert_eq!(reply.data()["imported"], 3);
    let listed = server.get("/supie/workflow?groupKey=94:a9:90").data();
    assert_eq!(listed["groupKey"], "94:a9:90");
    assert_eq!(item_ids(&listed, "items").len(), 3);
    let reply = server.get("/supie/workflow");
    assert_eq!(reply.status, 400);
    assert!(reply.body.contains("groupKey"));
}

#[test]
fn api_token_guards_the_workflow_routes() {
    let server = Server::start_with("meeting_api_token = \"s3cret\"", NO_RATE_LIMIT);
    seed_sid(&server);
    let body = json!({"groupKey":"94:a9:90","sessionId":SID}).to_string();

    for (method, target) in [
        ("GET", "/workflow?groupKey=94:a9:90"),
        ("GET", "/supie/workflow?groupKey=94:a9:90&token=nope"),
        ("POST", "/workflow/import-from-meeting"),
        ("POST", "/supie/workflow/import-from-meeting"),
        ("GET", "/workflow"),
    ] {
        let reply = server.http(method, target, &[], &body);
        assert_eq!(reply.status, 401, "{method} {target}");
        assert_eq!(reply.error_code(), "UNAUTHORIZED");
    }
    let wrong = server.http(
        "POST",
        "/workflow/import-from-meeting",
        &[("Authorization", "Bearer nope")],
        &body,
    );
    assert_eq!(wrong.status, 401);
    // Nothing was imported by the refused requests.
    let listed = server.http(
        "GET",
        "/workflow?groupKey=94:a9:90",
        &[("X-API-Token", "s3cret")],
        "",
    );
    assert_eq!(listed.data()["items"], json!([]));

    let imported = server.http(
        "POST",
        "/workflow/import-from-meeting",
        &[("Authorization", "Bearer s3cret")],
        &body,
    );
    assert_eq!(imported.data()["imported"], 3);
    let listed = server.get("/supie/workflow?groupKey=94:a9:90&token=s3cret");
    assert_eq!(item_ids(&listed.data(), "items").len(), 3);
    // Preflight stays exempt.
    assert_eq!(
        server
            .http("OPTIONS", "/workflow/import-from-meeting", &[], "")
            .status,
        204
    );
}
