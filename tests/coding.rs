//! Coding mode over the wire (PROTOCOL.md §3.5): logs in, insights out — from
//! the LLM stub when it answers well, from the heuristics when it does not —
//! never quoting the log; debounce and immediate triggers.

mod common;

use std::time::{Duration, Instant};

use common::llm_stub::LlmStub;
use common::{Device, Received, Server};
use serde_json::{Value, json};

const CARGO_LOG: &[(&str, &str)] = &[
    ("info", "   Compiling huddle v0.1.0 (/work/main)"),
    (
        "info",
        "    Finished `test` profile [unoptimized + debuginfo] target(s) in 4.21s",
    ),
    ("info", "running 12 tests"),
    ("error", "test auth::tests::token_expiry ... FAILED"),
    (
        "error",
        "thread 'auth::tests::token_expiry' panicked at src/auth.rs:88:9: assertion `left == right` failed",
    ),
    (
        "error",
        "test result: FAILED. 11 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out",
    ),
];

fn config(llm: Option<&LlmStub>) -> String {
    let mut c = String::from("[coding]\ninsight_debounce_ms = 600\n");
    if let Some(stub) = llm {
        c.push_str("[selected_module]\nllm = \"stub\"\n");
        c.push_str(&stub.toml_table("stub", "coder"));
    }
    c
}

fn start_coding(device: &mut Device) {
    device.send_json(json!({"type":"mode","state":"start","mode":"coding"}));
    assert_eq!(
        device.recv(common::SHORT),
        json!({"type":"mode","status":"ok","state":"start","mode":"coding"})
    );
}

fn send_log(device: &mut Device, lines: &[(&str, &str)]) {
    for (level, text) in lines {
        device.send_json(json!({"type":"coding","event":"log","level":level,"text":text}));
        let ack = device.recv_until(common::SHORT, |v| {
            v["status"] == "ok" || v["status"] == "error"
        });
        assert_eq!(
            ack,
            json!({"type":"coding","status":"ok","event":"log"}),
            "acks never echo the text"
        );
    }
}

fn next_insight(device: &mut Device, timeout: Duration) -> Value {
    device.recv_until(timeout, |v| {
        v["type"] == "coding" && (v["event"] == "insight" || v["event"] == "summary")
    })
}

fn all_strings(insight: &Value) -> Vec<String> {
    ["insights", "risks", "actions", "nextSteps"]
        .iter()
        .flat_map(|k| insight[*k].as_array().cloned().unwrap_or_default())
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

fn assert_no_log_line_quoted(insight: &Value) {
    for s in all_strings(insight) {
        for (_, line) in CARGO_LOG {
            let line = line.trim();
            if line.len() > 20 {
                assert!(!s.contains(line), "insight quotes the log: {s:?}");
            }
        }
    }
}

#[test]
fn a_good_llm_answer_is_sent_completed_and_never_quotes_the_log() {
    let llm = LlmStub::start();
    llm.reply(r#"{"insights":["One unit test fails: auth::tests::token_expiry"],"risks":["Token expiry regression"],"actions":["Fix the expiry comparison"],"nextSteps":["Re-run cargo test auth"]}"#);
    let server = Server::start(&config(Some(&llm)));
    let mut device = server.device("/xiaozhi/v1/", &[("Device-Id", "94:a9:90:07:9d:88")]);
    start_coding(&mut device);
    send_log(&mut device, CARGO_LOG);
    let insight = next_insight(&mut device, Duration::from_secs(10));
    assert_eq!(
        insight["insights"][0],
        "One unit test fails: auth::tests::token_expiry"
    );
    assert_eq!(insight["from"], "94:a9:90:07:9d:88");
    assert_no_log_line_quoted(&insight);
    // The model saw signals and stats, not the log lines.
    let request = llm.requests().pop().expect("LLM called");
    assert!(
        request.raw_body.contains("token_expiry"),
        "signals name the test"
    );
    assert!(
        !request.raw_body.contains("panicked at src/auth.rs:88:9"),
        "the raw log never goes to the LLM"
    );
}

#[test]
fn prose_garbage_or_no_llm_fall_back_to_heuristics_that_name_the_failure() {
    let llm = LlmStub::start();
    for answer in [
        "The build looks broken, you should probably fix it.",
        "}{ not json",
        "",
    ] {
        llm.reply(answer);
        let server = Server::start(&config(Some(&llm)));
        let mut device = server.device("/xiaozhi/v1/", &[("Device-Id", "aa:bb")]);
        start_coding(&mut device);
        send_log(&mut device, CARGO_LOG);
        let insight = next_insight(&mut device, Duration::from_secs(10));
        let text = all_strings(&insight).join(" | ");
        assert!(
            text.contains("token_expiry"),
            "names the failing test: {text}"
        );
        for key in ["risks", "actions", "nextSteps"] {
            assert!(
                !insight[key].as_array().unwrap().is_empty(),
                "{key} empty for answer {answer:?}"
            );
        }
        assert_no_log_line_quoted(&insight);
    }
    let server = Server::start(&config(None));
    let mut device = server.device("/xiaozhi/v1/", &[("Device-Id", "aa:cc")]);
    start_coding(&mut device);
    send_log(&mut device, CARGO_LOG);
    let insight = next_insight(&mut device, Duration::from_secs(10));
    assert!(all_strings(&insight).join(" ").contains("token_expiry"));
}

#[test]
fn info_lines_are_debounced_error_lines_and_phases_are_immediate() {
    let server = Server::start(&config(None));
    let mut device = server.device("/xiaozhi/v1/", &[("Device-Id", "aa:dd")]);
    start_coding(&mut device);
    // Info lines only: one insight, about 600 ms after the last line.
    let t0 = Instant::now();
    send_log(&mut device, &CARGO_LOG[..3]);
    let sent = t0.elapsed();
    let insight = next_insight(&mut device, Duration::from_secs(5));
    let after_last = t0.elapsed() - sent;
    assert!(
        after_last >= Duration::from_millis(450) && after_last <= Duration::from_millis(1200),
        "debounce {after_last:?}"
    );
    assert!(
        !matches!(device.next(Duration::from_millis(900)), Received::Json(ref v) if v["event"] == "insight"),
        "one insight for the burst"
    );
    drop(insight);
    // An error line triggers at once.
    let t1 = Instant::now();
    send_log(&mut device, &CARGO_LOG[3..4]);
    next_insight(&mut device, Duration::from_secs(5));
    assert!(
        t1.elapsed() < Duration::from_millis(450),
        "error line took {:?}",
        t1.elapsed()
    );
    // A phase triggers at once and names itself.
    device.send_json(json!({"type":"coding","event":"phase","name":"test"}));
    let insight = next_insight(&mut device, Duration::from_secs(5));
    assert_eq!(insight["phase"], "test");
    // stop → one summary.
    device.send_json(json!({"type":"coding","event":"stop"}));
    let summary = device.recv_until(Duration::from_secs(5), |v| v["event"] == "summary");
    assert_eq!(summary["phase"], "test");
}

#[test]
fn bad_coding_events_are_named() {
    let server = Server::start(&config(None));
    let mut device = server.device("/xiaozhi/v1/", &[("Device-Id", "aa:ee")]);
    device.send_json(json!({"type":"coding","event":"log","level":"fatal","text":"x"}));
    let error = device.recv(common::SHORT);
    assert_eq!(error["code"], "SCHEMA_INVALID");
    assert!(error["message"].as_str().unwrap().contains("level"));
    device.send_json(json!({"type":"coding","event":"dance"}));
    assert_eq!(device.recv(common::SHORT)["code"], "UNSUPPORTED");
}

#[test]
fn insights_are_copied_to_the_origins_group_when_broadcast_is_on() {
    let server = Server::start(&format!(
        "{}[meeting.broadcast]\nenabled = true\nmode = \"group\"\n",
        config(None)
    ));
    // The copies go to devices registered when the insight is made.
    let mut origin =
        server.registered_device("/xiaozhi/v1/", &[("Device-Id", "94:a9:90:07:9d:88")]);
    let mut same_group =
        server.registered_device("/xiaozhi/v1/", &[("Device-Id", "94:a9:90:07:9d:99")]);
    let mut other_group =
        server.registered_device("/xiaozhi/v1/", &[("Device-Id", "11:22:33:44:55:66")]);
    start_coding(&mut origin);
    send_log(&mut origin, &CARGO_LOG[3..4]);
    let own = next_insight(&mut origin, Duration::from_secs(5));
    let copy = next_insight(&mut same_group, Duration::from_secs(5));
    assert_eq!(copy["from"], "94:a9:90:07:9d:88");
    assert_eq!(copy["insights"], own["insights"]);
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        if let Received::Json(v) = other_group.next(Duration::from_millis(200)) {
            assert_ne!(v["type"], "coding", "another group got a copy: {v}");
        }
    }
}
