//! Meeting mode end to end on the real binary (PROTOCOL.md §3.2, §3.3, §4, §6):
//! snippets, transcript pushes on schedule, finalize ack first, LLM summary
//! from a local chat-completions stub (or the fallback), archive files on
//! disk, the signed webhook to a real HTTP receiver, and crash recovery.

mod common;

use std::time::{Duration, Instant};

use common::http_receiver::{HttpReceiver, Reply};
use common::llm_stub::{Behavior, LlmStub};
use common::{Device, Server, wait_until};
use serde_json::{Value, json};

const SUMMARY_JSON: &str = r#"{"title":"登录改版讨论","bullets":["登录页改为扫码登录，下周三前出设计稿"],"decisions":["放弃短信验证码方案"],"actions":["前端组完成扫码页开发"],"risks":[],"nextSteps":["周五联调扫码接口"]}"#;

fn meeting_config(llm: Option<&LlmStub>, webhook: Option<&HttpReceiver>, push_ms: u64) -> String {
    let mut config =
        format!("[meeting]\ntranscript_push_interval_ms = {push_ms}\nmin_duration_ms = 0\n");
    if let Some(receiver) = webhook {
        config.push_str(&format!(
            "[meeting.webhook]\nurl = \"{}\"\nsecret = \"s3cr3t\"\n",
            receiver.url("/hook")
        ));
    }
    if let Some(stub) = llm {
        config.push_str("[selected_module]\nllm = \"stub\"\n");
        config.push_str(&stub.toml_table("stub", "test-model"));
    }
    config
}

fn start_meeting(device: &mut Device) -> String {
    device.send_json(json!({"type":"mode","state":"start","mode":"meeting"}));
    let tone = device.recv(common::SHORT);
    assert_eq!(
        (tone["type"].as_str(), tone["state"].as_str()),
        (Some("tts"), Some("start")),
        "{tone}"
    );
    assert_eq!(tone["url"], "config/assets/evening.wav");
    assert_eq!(
        device.recv(common::SHORT),
        json!({"type":"tts","state":"stop"})
    );
    let ack = device.recv(common::SHORT);
    assert_eq!(
        (ack["type"].as_str(), ack["status"].as_str()),
        (Some("mode"), Some("ok")),
        "{ack}"
    );
    let session_id = ack["sessionId"].as_str().expect("sessionId").to_string();
    assert_eq!(
        uuid::Uuid::parse_str(&session_id).map(|u| u.get_version_num()),
        Ok(4)
    );
    session_id
}

fn snippet(device: &mut Device, items: Value) -> Value {
    device.send_json(json!({"type":"meeting","phase":"snippet","items":items}));
    device.recv_until(common::SHORT, |v| {
        v["type"] == "meeting" && v["phase"] != "transcript"
    })
}

/// Messages until the final transcript (`final:true`) arrived.
fn until_final(device: &mut Device, timeout: Duration) -> Vec<Value> {
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        let v = device.recv(deadline.saturating_duration_since(Instant::now()));
        let done = v["final"] == true;
        seen.push(v);
        if done {
            return seen;
        }
    }
    panic!("no final transcript; saw {seen:?}");
}

#[test]
fn a_full_meeting_pushes_summarizes_archives_and_signs_its_webhook() {
    let llm = LlmStub::start();
    llm.reply(SUMMARY_JSON);
    let receiver = HttpReceiver::start(&[Reply::Status(200)]);
    let server = Server::start(&meeting_config(Some(&llm), Some(&receiver), 3000));
    let mut device = server.device("/xiaozhi/v1/", &[("Device-Id", "94:A9:90:07:9D:88")]);
    let session_id = start_meeting(&mut device);
    let started = Instant::now();

    let ack = snippet(
        &mut device,
        json!([{"tag":"需求","text":"登录页改成扫码","speakerId":"spk-1"},{"tag":"决策","text":"放弃短信验证码方案"}]),
    );
    assert_eq!(
        ack,
        json!({"type":"meeting","status":"ok","phase":"snippet"})
    );

    // Pushes every 3 s (±300 ms): the first carries both segments, the next is empty.
    let push = device.recv_until(Duration::from_secs(5), |v| v["phase"] == "transcript");
    let at = started.elapsed();
    assert!(
        at >= Duration::from_millis(2700) && at <= Duration::from_millis(3300),
        "first push at {at:?}"
    );
    assert_eq!(push["sessionId"], session_id.as_str());
    assert_eq!(push["totalSegments"], 2);
    assert_eq!(push["segments"][0]["text"], "登录页改成扫码");
    assert_eq!(push["segments"][0]["speakerId"], "spk-1");
    assert_eq!(push["segments"][1]["tag"], "决策");
    let empty = device.recv_until(Duration::from_secs(5), |v| v["phase"] == "transcript");
    let gap = started.elapsed() - at;
    assert!(
        gap >= Duration::from_millis(2700) && gap <= Duration::from_millis(3300),
        "interval {gap:?}"
    );
    assert_eq!(
        (
            empty["segments"].as_array().map(Vec::len),
            empty["totalSegments"].as_u64()
        ),
        (Some(0), Some(2))
    );

    device.send_json(json!({"type":"meeting","phase":"finalize"}));
    let messages = until_final(&mut device, Duration::from_secs(20));
    // The ack comes before any summary progress.
    assert_eq!(messages[0]["phase"], "finalize", "{messages:?}");
    assert_eq!(messages[0]["sessionId"], session_id.as_str());
    assert_eq!(messages[0]["pendingCount"], 0);
    let progress: Vec<&str> = messages
        .iter()
        .filter_map(|m| m["progress"].as_str())
        .collect();
    assert_eq!(progress, ["prepare", "llm_start", "llm_done", "done"]);
    let llm_start = messages
        .iter()
        .find(|m| m["progress"] == "llm_start")
        .unwrap();
    assert_eq!(llm_start["maxTokens"], 800);
    let summary = messages
        .iter()
        .find(|m| m["phase"] == "summary" && m.get("progress").is_none())
        .unwrap();
    assert_eq!(summary["title"], "登录改版讨论");
    assert_eq!(summary["decisions"], json!(["放弃短信验证码方案"]));
    assert_eq!(summary["checkpoint"], false);
    assert_eq!(summary["sourceSegments"], 2);
    for field in ["bullets", "decisions", "actions", "risks", "nextSteps"] {
        assert!(summary[field].is_array(), "{field} must be a list");
    }
    // No periodic push after the ack: only the final transcript.
    let pushes_after_ack = messages
        .iter()
        .filter(|m| m["phase"] == "transcript" && m["final"] != true)
        .count();
    assert_eq!(pushes_after_ack, 0, "{messages:?}");
    let last = messages.last().unwrap();
    assert_eq!(
        (last["totalSegments"].as_u64(), last["final"].as_bool()),
        (Some(2), Some(true))
    );

    // The LLM saw the transcript.
    let request = &llm.requests()[0];
    assert!(
        request.raw_body.contains("登录页改成扫码"),
        "{}",
        request.raw_body
    );

    // Archive: main file, index, metrics line; the journal is gone.
    let meetings = server.dir.join("data/meetings");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !meetings.join("index.json").exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let record: Value = serde_json::from_str(
        &std::fs::read_to_string(meetings.join(format!("{session_id}.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(record["deviceId"], "94:a9:90:07:9d:88");
    assert_eq!(record["summary"]["title"], "登录改版讨论");
    assert_eq!(record["segments"].as_array().unwrap().len(), 2);
    let index: Value =
        serde_json::from_str(&std::fs::read_to_string(meetings.join("index.json")).unwrap())
            .unwrap();
    assert_eq!(index["items"][0]["sessionId"], session_id.as_str());
    let metrics_log = std::fs::read_to_string(meetings.join("metrics.log")).unwrap();
    assert!(
        metrics_log.contains(&format!(
            "[Meeting Metrics] sessionId={session_id}, segmentsCount=2"
        )),
        "{metrics_log}"
    );
    let journal = meetings.join(format!("active/{session_id}.jsonl"));
    assert!(
        wait_until(Duration::from_secs(5), || !journal.exists()),
        "journal must be deleted once durable"
    );

    // The webhook: signed over the exact bytes received.
    let hooks = receiver.wait_requests(1, Duration::from_secs(10));
    assert_eq!(hooks.len(), 1);
    let body = &hooks[0].body;
    assert_eq!(
        hooks[0].header("X-Meeting-Signature"),
        Some(huddle::webhook::signature("s3cr3t", body).as_str())
    );
    let payload: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(payload["sessionId"], session_id.as_str());
    assert_eq!(payload["summary"]["title"], "登录改版讨论");

    // A later finalize resends the cached summary, marked idempotent.
    device.send_json(json!({"type":"meeting","phase":"finalize"}));
    let again = device.recv(common::SHORT);
    assert_eq!(
        (again["phase"].as_str(), again["idempotent"].as_bool()),
        (Some("summary"), Some(true))
    );
    assert_eq!(
        receiver.requests().len(),
        1,
        "no second webhook for an idempotent repeat"
    );
}

#[test]
fn ten_concurrent_finalizes_make_one_summary_and_nine_idempotent_repeats() {
    let llm = LlmStub::with(Behavior::Stall(
        Duration::from_millis(800),
        Box::new(Behavior::Reply(SUMMARY_JSON.into())),
    ));
    let server = Server::start(&meeting_config(Some(&llm), None, 5000));
    let mut device = server.device("/xiaozhi/v1/", &[("Device-Id", "aa:bb")]);
    start_meeting(&mut device);
    snippet(&mut device, json!([{"tag":"t","text":"one"}]));
    for _ in 0..10 {
        device.send_json(json!({"type":"meeting","phase":"finalize"}));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut summaries = Vec::new();
    while summaries.len() < 10 && Instant::now() < deadline {
        let v = device.recv(deadline.saturating_duration_since(Instant::now()));
        if v["phase"] == "summary" && v.get("progress").is_none() {
            summaries.push(v);
        }
    }
    assert_eq!(summaries.len(), 10);
    assert_eq!(
        summaries
            .iter()
            .filter(|s| s.get("idempotent").is_none())
            .count(),
        1
    );
    assert_eq!(
        summaries.iter().filter(|s| s["idempotent"] == true).count(),
        9
    );
    assert_eq!(llm.requests().len(), 1, "the summary is computed once");
}

#[test]
fn llm_down_gives_the_fallback_summary_with_all_seven_fields() {
    let mut llm = LlmStub::start();
    llm.shutdown();
    let server = Server::start(&meeting_config(Some(&llm), None, 5000));
    let mut device = server.device("/xiaozhi/v1/", &[("Device-Id", "aa:cc")]);
    start_meeting(&mut device);
    snippet(&mut device, json!([{"tag":"t","text":"one"}]));
    device.send_json(json!({"type":"mode","state":"end","mode":"meeting"}));
    let messages = until_final(&mut device, Duration::from_secs(20));
    assert_eq!(messages[0]["phase"], "finalize");
    assert_eq!(
        messages[1],
        json!({"type":"mode","status":"ok","state":"end","mode":"meeting"})
    );
    let summary = messages
        .iter()
        .find(|m| m["phase"] == "summary" && m.get("progress").is_none())
        .unwrap();
    assert_eq!(
        summary["bullets"],
        json!(["会议内容已记录", "LLM服务暂时不可用", "请稍后重试"])
    );
    for field in ["decisions", "actions", "risks", "nextSteps"] {
        assert_eq!(summary[field], json!([]), "{field}");
    }
    assert!(summary["title"].is_string() && summary["duration"].is_string());
}

#[test]
fn snippet_guards_name_the_problem() {
    let server = Server::start(&meeting_config(None, None, 5000));
    let mut device = server.device("/xiaozhi/v1/", &[("Device-Id", "aa:dd")]);
    let idle = snippet(&mut device, json!([{"tag":"t","text":"x"}]));
    assert_eq!(
        (idle["code"].as_str(), idle["message"].as_str()),
        (Some("UNSUPPORTED"), Some("no active meeting"))
    );
    start_meeting(&mut device);
    let bad = snippet(&mut device, json!([{"tag":"t"}]));
    assert_eq!(bad["code"], "SCHEMA_INVALID");
    assert!(
        bad["message"]
            .as_str()
            .unwrap()
            .starts_with("items must be array of {tag,text}"),
        "{bad}"
    );
    let empty = snippet(&mut device, json!([]));
    assert_eq!(empty["code"], "SCHEMA_INVALID");
    let eleven: Vec<Value> = (0..11)
        .map(|i| json!({"tag":"t","text":format!("item {i}")}))
        .collect();
    let limited = snippet(&mut device, json!(eleven));
    assert_eq!(limited["code"], "RATE_LIMITED");
    // A duplicate within 60 s is dropped silently (acked, not counted).
    snippet(&mut device, json!([{"tag":"t","text":"same"}]));
    snippet(&mut device, json!([{"tag":"t","text":"same"}]));
    let push = device.recv_until(Duration::from_secs(7), |v| v["phase"] == "transcript");
    assert_eq!(push["totalSegments"], 1);
}

#[test]
fn kill_dash_nine_mid_meeting_then_restart_recovers_every_acknowledged_segment() {
    let mut server = Server::start(&meeting_config(None, None, 15_000));
    let mut device = server.device("/xiaozhi/v1/", &[("Device-Id", "aa:ee")]);
    let session_id = start_meeting(&mut device);
    let mut acked = Vec::new();
    for i in 0..5 {
        let text = format!("segment number {i}");
        let ack = snippet(&mut device, json!([{"tag":"t","text":text}]));
        assert_eq!(ack["status"], "ok");
        acked.push(text);
        std::thread::sleep(Duration::from_millis(120));
    }
    // The journal is fsynced at least every second.
    std::thread::sleep(Duration::from_millis(1200));
    server.signal("KILL");
    assert!(
        server.wait_exit(Duration::from_secs(5)).is_none(),
        "SIGKILL leaves no exit code"
    );
    let journal = server
        .dir
        .join(format!("data/meetings/active/{session_id}.jsonl"));
    assert!(journal.exists());
    // A torn last line (the crash interrupted a write) is ignored.
    let mut torn = std::fs::read_to_string(&journal).unwrap();
    torn.push_str("{\"kind\":\"segment\",\"ts\":1,\"te");
    std::fs::write(&journal, torn).unwrap();

    // Restart with a resume window of 1 minute: the journal waits for its
    // device; the device comes back and resumes the same meeting.
    server.restart();
    let mut device = server.device("/xiaozhi/v1/", &[("Device-Id", "aa:ee")]);
    device.send_json(json!({"type":"mode","state":"start","mode":"meeting"}));
    let ack = device.recv_until(common::SHORT, |v| v["type"] == "mode");
    assert_eq!(ack["sessionId"], session_id.as_str());
    assert_eq!(ack["resumed"], true);
    device.send_json(json!({"type":"meeting","phase":"finalize"}));
    let messages = until_final(&mut device, Duration::from_secs(20));
    let last = messages.last().unwrap();
    let texts: Vec<&str> = last["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, acked.iter().map(String::as_str).collect::<Vec<_>>());
}

#[test]
fn a_checkpoint_summary_arrives_every_checkpoint_interval() {
    let llm = LlmStub::start();
    llm.reply(SUMMARY_JSON);
    let config = meeting_config(Some(&llm), None, 15_000).replacen(
        "[meeting]\n",
        "[meeting]\ncheckpoint_interval_min = 1\n",
        1,
    );
    let server = Server::start(&config);
    let mut device = server.device("/xiaozhi/v1/", &[("Device-Id", "aa:cp")]);
    let session_id = start_meeting(&mut device);
    snippet(
        &mut device,
        json!([{"tag":"t","text":"before the checkpoint"}]),
    );
    let started = Instant::now();
    let checkpoint = device.recv_until(Duration::from_secs(75), |v| {
        v["phase"] == "summary" && v["checkpoint"] == true
    });
    let at = started.elapsed();
    assert!(
        at >= Duration::from_secs(58) && at <= Duration::from_secs(64),
        "checkpoint after {at:?}"
    );
    assert_eq!(checkpoint["sessionId"], session_id.as_str());
    assert_eq!(checkpoint["title"], "登录改版讨论");
    let request = llm.requests().pop().unwrap();
    assert_eq!(request.body["max_tokens"], 400, "checkpoint budget");
    let journal = std::fs::read_to_string(
        server
            .dir
            .join(format!("data/meetings/active/{session_id}.jsonl")),
    )
    .unwrap();
    assert!(journal.contains("\"kind\":\"checkpoint\""), "{journal}");
}

#[test]
fn journals_found_at_startup_are_recovered_with_the_fallback_and_fire_the_webhook() {
    let receiver = HttpReceiver::start(&[Reply::Status(200)]);
    let config = meeting_config(None, Some(&receiver), 5000);
    // Two journals a crash left behind: one already finalized, one whose
    // resume window (10 min) passed long ago.
    let dir = common::temp::temp_path("huddle-recover");
    let active = dir.join("data/meetings/active");
    std::fs::create_dir_all(&active).unwrap();
    let old = 1_700_000_000_000u64;
    for (sid, finalized) in [
        ("11111111-aaaa-4bbb-8ccc-000000000001", true),
        ("11111111-aaaa-4bbb-8ccc-000000000002", false),
    ] {
        let mut lines = vec![
            json!({"kind":"start","sessionId":sid,"deviceId":"aa:rec","startedAt":old}).to_string(),
            json!({"kind":"segment","ts":old + 1000,"text":"first words","speakerId":"aa:rec"})
                .to_string(),
            json!({"kind":"segment","ts":old + 2000,"text":"second words","tag":"决策"})
                .to_string(),
        ];
        if finalized {
            lines.push(json!({"kind":"finalize","ts":old + 3000}).to_string());
        }
        std::fs::write(active.join(format!("{sid}.jsonl")), lines.join("\n") + "\n").unwrap();
    }
    let server = Server::start_in(&dir, "", &config);
    let hooks = receiver.wait_requests(2, Duration::from_secs(15));
    assert_eq!(hooks.len(), 2, "both recovered meetings fire the webhook");
    let meetings = dir.join("data/meetings");
    for (sid, ended) in [
        ("11111111-aaaa-4bbb-8ccc-000000000001", old + 3000),
        ("11111111-aaaa-4bbb-8ccc-000000000002", old + 2000),
    ] {
        let record: Value = serde_json::from_str(
            &std::fs::read_to_string(meetings.join(format!("{sid}.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(record["recovered"], true);
        assert_eq!(record["endedAt"], ended);
        assert_eq!(record["segments"].as_array().unwrap().len(), 2);
        assert_eq!(record["summary"]["bullets"][0], "会议内容已记录");
        // The journal writer thread removes the file after the archive is
        // durable, independently of the webhook sender, so give it a moment.
        let journal = active.join(format!("{sid}.jsonl"));
        assert!(
            wait_until(Duration::from_secs(5), || !journal.exists()),
            "journal {} still present after recovery",
            journal.display()
        );
    }
    let metrics = server.http("GET", "/metrics", &[], "").body;
    assert!(
        metrics.contains("huddle_meetings_finalized_total{path=\"recovered\"} 2"),
        "{metrics}"
    );
}

#[test]
fn a_reload_of_the_push_interval_applies_from_the_next_cycle() {
    let server = Server::start_with(
        "admin_secret = \"s3cr3t\"",
        &meeting_config(None, None, 3000),
    );
    let mut device = server.device("/xiaozhi/v1/", &[("Device-Id", "aa:rl")]);
    start_meeting(&mut device);
    let t0 = Instant::now();
    device.recv_until(Duration::from_secs(5), |v| v["phase"] == "transcript");
    let first = t0.elapsed();
    // Mid-cycle reload to 6 s: the cycle in progress keeps 3 s, the next uses 6 s.
    std::thread::sleep(Duration::from_millis(1000));
    device.send_json(json!({"type":"server","action":"update_config","content":{"secret":"s3cr3t","config":{"meeting":{"transcript_push_interval_ms":6000}}}}));
    device.recv_until(common::SHORT, |v| {
        v["type"] == "server" && v["status"] == "success"
    });
    device.recv_until(Duration::from_secs(5), |v| v["phase"] == "transcript");
    let second = t0.elapsed() - first;
    device.recv_until(Duration::from_secs(8), |v| v["phase"] == "transcript");
    let third = t0.elapsed() - first - second;
    assert!(
        second >= Duration::from_millis(2700) && second <= Duration::from_millis(3300),
        "cycle in progress: {second:?}"
    );
    assert!(
        third >= Duration::from_millis(5700) && third <= Duration::from_millis(6300),
        "next cycle: {third:?}"
    );
    assert!(server.wait_log("next interval=6000ms", common::SHORT));
}

#[test]
fn a_dead_webhook_receiver_counts_fail_and_the_archive_is_still_written() {
    let port = common::http_receiver::dead_port();
    let config = format!(
        "[meeting]\ntranscript_push_interval_ms = 5000\nmin_duration_ms = 0\n[meeting.webhook]\nurl = \"http://127.0.0.1:{port}/hook\"\n"
    );
    let server = Server::start(&config);
    let mut device = server.device("/xiaozhi/v1/", &[("Device-Id", "aa:wh")]);
    let session_id = start_meeting(&mut device);
    snippet(&mut device, json!([{"tag":"t","text":"kept anyway"}]));
    device.send_json(json!({"type":"meeting","phase":"finalize"}));
    until_final(&mut device, Duration::from_secs(20));
    // One attempt, a 2–5 s pause, the retry: then `fail`.
    let deadline = Instant::now() + Duration::from_secs(12);
    let mut metrics = String::new();
    while Instant::now() < deadline {
        metrics = server.http("GET", "/metrics", &[], "").body;
        if metrics.contains("huddle_webhook_deliveries_total{result=\"fail\"} 1") {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        metrics.contains("huddle_webhook_deliveries_total{result=\"fail\"} 1"),
        "{metrics}"
    );
    assert!(
        server
            .dir
            .join(format!("data/meetings/{session_id}.json"))
            .exists()
    );
}

#[test]
fn spoken_words_reach_the_transcript_through_the_real_asr_engine() {
    use common::audio::{Fixture, frames};
    use huddle::protocol::framing::FramingVersion;
    let whisper = common::asr_service::whisper_config();
    let server = Server::start(&format!("{}{whisper}", meeting_config(None, None, 4000)));
    let mut device = server.device(
        "/xiaozhi/v1/",
        &[("Device-Id", "aa:talk"), ("Protocol-Version", "3")],
    );
    start_meeting(&mut device);
    device.send_json(json!({"type":"listen","state":"start","mode":"auto"}));
    // Real-time streaming, as a badge does, while pushes keep coming.
    let packets = frames(
        FramingVersion::V3,
        &Fixture::load("two_utterances").packets(),
    );
    let start = Instant::now();
    let mut pushes = Vec::new();
    let mut transcriptions = 0;
    for (i, frame) in packets.iter().enumerate() {
        let due = start + Duration::from_millis(60 * i as u64);
        while let Some(wait) = due.checked_duration_since(Instant::now()) {
            if let common::Received::Json(v) = device.next(wait) {
                if v["phase"] == "transcript" {
                    pushes.push((start.elapsed(), v));
                } else if v["event"] == "transcription" {
                    transcriptions += 1;
                } else {
                    assert_ne!(v["type"], "stt", "meeting mode with TTS off sends no stt");
                }
            }
        }
        device.send_binary(frame.clone());
    }
    while start.elapsed() < Duration::from_secs(20) {
        if let common::Received::Json(v) = device.next(Duration::from_millis(200)) {
            if v["phase"] == "transcript" {
                pushes.push((start.elapsed(), v));
            } else if v["event"] == "transcription" {
                transcriptions += 1;
            }
        }
    }
    let words: String = pushes
        .iter()
        .flat_map(|(_, p)| p["segments"].as_array().cloned().unwrap_or_default())
        .map(|s| s["text"].as_str().unwrap_or_default().to_lowercase())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        words.contains("quick brown fox") && words.contains("design review"),
        "{words:?}"
    );
    assert!(
        transcriptions >= 2,
        "audio transcription lines still go out"
    );
    // Pushes every 4 s (±300 ms) all along.
    for pair in pushes.windows(2) {
        let gap = pair[1].0 - pair[0].0;
        assert!(
            gap >= Duration::from_millis(3700) && gap <= Duration::from_millis(4300),
            "push gap {gap:?}"
        );
    }
    let last = &pushes.last().unwrap().1;
    assert_eq!(last["totalSegments"], 2);
    assert_eq!(
        last["segments"].as_array().map(Vec::len).unwrap_or(0)
            + pushes
                .iter()
                .rev()
                .skip(1)
                .map(|(_, p)| p["segments"].as_array().map_or(0, Vec::len))
                .sum::<usize>(),
        2
    );
}

#[test]
fn a_disconnected_meeting_not_resumed_in_time_is_finalized_and_archived() {
    let receiver = HttpReceiver::start(&[Reply::Status(200)]);
    let config = meeting_config(None, Some(&receiver), 5000).replacen(
        "[meeting]\n",
        "[meeting]\ncheckpoint_interval_min = 1\n",
        1,
    );
    let server = Server::start(&config);
    let mut device = server.device("/xiaozhi/v1/", &[("Device-Id", "aa:gone")]);
    let session_id = start_meeting(&mut device);
    snippet(
        &mut device,
        json!([{"tag":"t","text":"said before leaving"}]),
    );
    drop(device);
    // Nothing is archived while the device may still come back (1 min window)...
    std::thread::sleep(Duration::from_secs(20));
    let archived = server.dir.join(format!("data/meetings/{session_id}.json"));
    assert!(!archived.exists());
    // ...and after it, the normal path runs without a device.
    let hooks = receiver.wait_requests(1, Duration::from_secs(60));
    assert_eq!(hooks.len(), 1);
    assert!(archived.exists());
    let record: Value = serde_json::from_str(&std::fs::read_to_string(&archived).unwrap()).unwrap();
    assert_eq!(record["segments"][0]["text"], "said before leaving");
    assert!(record.get("recovered").is_none());
}

/// Every `from`-marked meeting copy `device` receives within `window`.
fn copies(device: &mut Device, window: Duration) -> Vec<Value> {
    device
        .drain(window)
        .into_iter()
        .filter(|v| v["type"] == "meeting" && v.get("from").is_some())
        .collect()
}

#[test]
fn group_broadcast_copies_snippets_transcripts_and_the_summary_to_the_origins_group_only() {
    let config = format!(
        "{}[meeting.broadcast]\nenabled = true\nmode = \"group\"\n",
        meeting_config(None, None, 3000)
    );
    let server = Server::start(&config);
    let mut origin =
        server.registered_device("/xiaozhi/v1/", &[("Device-Id", "94:a9:90:07:9d:88")]);
    let mut teammate =
        server.registered_device("/xiaozhi/v1/", &[("Device-Id", "94:a9:90:07:9d:99")]);
    let mut stranger =
        server.registered_device("/xiaozhi/v1/", &[("Device-Id", "11:22:33:44:55:66")]);
    let session_id = start_meeting(&mut origin);
    snippet(
        &mut origin,
        json!([{"tag":"决策","text":"放弃短信验证码方案"}]),
    );
    origin.send_json(json!({"type":"meeting","phase":"finalize"}));
    let got = copies(&mut teammate, Duration::from_secs(8));
    let phases: Vec<&str> = got.iter().filter_map(|m| m["phase"].as_str()).collect();
    assert!(phases.contains(&"snippet"), "{got:?}");
    assert!(phases.contains(&"summary"), "{got:?}");
    for copy in &got {
        assert_eq!(copy["from"], "94:a9:90:07:9d:88");
        assert_eq!(copy["sessionId"], session_id.as_str());
    }
    let snippet_copy = got.iter().find(|m| m["phase"] == "snippet").unwrap();
    assert_eq!(snippet_copy["items"][0]["text"], "放弃短信验证码方案");
    assert!(copies(&mut stranger, Duration::from_millis(300)).is_empty());
    // The origin gets no copy of its own (include_origin is off).
    assert!(copies(&mut origin, Duration::from_millis(300)).is_empty());
}

#[test]
fn session_broadcast_copies_reach_devices_in_meeting_mode_only() {
    let config = format!(
        "{}[meeting.broadcast]\nenabled = true\nmode = \"session\"\n",
        meeting_config(None, None, 3000)
    );
    let server = Server::start(&config);
    let mut origin =
        server.registered_device("/xiaozhi/v1/", &[("Device-Id", "aa:00:00:00:00:01")]);
    let mut listener =
        server.registered_device("/xiaozhi/v1/", &[("Device-Id", "bb:00:00:00:00:02")]);
    let mut bystander =
        server.registered_device("/xiaozhi/v1/", &[("Device-Id", "cc:00:00:00:00:03")]);
    start_meeting(&mut listener);
    start_meeting(&mut origin);
    snippet(
        &mut origin,
        json!([{"tag":"t","text":"only meeting devices hear this"}]),
    );
    let got = copies(&mut listener, Duration::from_secs(1));
    assert!(
        got.iter()
            .any(|m| m["phase"] == "snippet" && m["from"] == "aa:00:00:00:00:01"),
        "{got:?}"
    );
    assert!(copies(&mut bystander, Duration::from_millis(300)).is_empty());
}
